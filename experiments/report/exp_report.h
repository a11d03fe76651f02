/* exp_report.h - the report of a comparison run (exp_results.h): one self-contained HTML page
 * (inline CSS and SVG charts, no scripts, no network) for people and one JSON file with the same
 * numbers for machines.  Sections, the poor-overlap rule and the JSON schema: docs/report.md.
 */
#ifndef EXP_REPORT_H
#define EXP_REPORT_H

#include <stdio.h>

#include "exp_results.h"

/* Write `dir`/report.html and `dir`/report.json for the run `r` (the directory must exist).
 * Each file is written to a temporary name, fsynced and renamed (eng_atomic_write), so a
 * reader sees either the old file or the complete new one, and a failure leaves no temp file.
 * html_path / json_path (either may be NULL) receive malloc'd copies of the two paths, which the
 * caller frees; they are set to NULL on failure.  Returns 0, ENG_EINVAL (NULL arguments or an
 * inconsistent exp_results), ENG_EIO (cannot write, e.g. a missing directory), ENG_ENOMEM. */
int exp_report_write(const exp_results *r, const char *dir, char **html_path, char **json_path);

/* The HTML page alone to an open stream (used by exp_report_write).  Returns 0 or ENG_EIO. */
int exp_report_html(const exp_results *r, FILE *f);

struct json_object;
/* The JSON document of the run (schema in docs/report.md).  Caller releases it with
 * json_object_put.  NULL on allocation failure (error set). */
struct json_object *exp_report_json(const exp_results *r);

#endif
