/* exp_report.h - the report of a comparison run (exp_results.h): one self-contained HTML page
 * (inline CSS and SVG charts, no scripts, no network) for people and one JSON file with the same
 * numbers for machines.  Sections, the poor-overlap rule and the JSON schema: docs/report.md.
 */
#ifndef EXP_REPORT_H
#define EXP_REPORT_H

#include <stdio.h>

#include "exp_results.h"

/* Write `dir`/report.html, `dir`/report.json (both bounded: at most EXP_REP_LIST_ALL products
 * listed one by one, see docs/report.md) and `dir`/products.csv.gz (every product) for the run
 * `r` (the directory must exist).
 * Each file is written to a temporary name, fsynced and renamed (eng_atomic_write), so a
 * reader sees either the old file or the complete new one, and a failure leaves no temp file.
 * html_path / json_path (either may be NULL) receive malloc'd copies of the two paths, which the
 * caller frees; they are set to NULL on failure.  Returns 0, ENG_EINVAL (NULL arguments or an
 * inconsistent exp_results), ENG_EIO (cannot write, e.g. a missing directory), ENG_ENOMEM. */
int exp_report_write(const exp_results *r, const char *dir, char **html_path, char **json_path);

/* The decision taken for one product (the nightly's), for the products.csv.gz columns
 * decision_*.  Strings are borrowed. */
typedef struct exp_report_decision {
    const char *agent;          /* deployed agent ("dqn", ...) or "incumbent"; NULL = no decision */
    const char *reason;         /* e.g. "deploy:dqn|max_up", "hold:poor_overlap" (NULL = "") */
    double price;               /* the price pushed (NaN = none) */
    double uplift, ci_low, ci_high; /* expected uplift and its interval (NaN = none) */
} exp_report_decision;

/* exp_report_write, plus dec ([r->n_products], aligned with r->products; NULL = no decisions,
 * empty decision columns).  Both write `dir`/products.csv.gz beside the two report files:
 * every product, one row each (exp_report_products_csv).  Same returns as exp_report_write. */
int exp_report_write_ex(const exp_results *r, const exp_report_decision *dec, const char *dir, char **html_path,
                        char **json_path);

/* The full per-product table as gzip-compressed CSV (RFC 4180, header row; columns in
 * docs/report.md) at `path`: temp file, fsync, rename.  dec may be NULL.  Returns 0, ENG_EIO,
 * ENG_ENOMEM, ENG_EINVAL (NULL arguments). */
int exp_report_products_csv(const exp_results *r, const exp_report_decision *dec, const char *path);

/* The HTML page alone to an open stream (used by exp_report_write).  Returns 0 or ENG_EIO. */
int exp_report_html(const exp_results *r, FILE *f);

struct json_object;
/* The JSON document of the run (schema in docs/report.md).  Caller releases it with
 * json_object_put.  NULL on allocation failure (error set). */
struct json_object *exp_report_json(const exp_results *r);

/* One line chart of a curves page (exp_report_curves_html): n series of n_points values; the
 * strings and arrays are borrowed. */
typedef struct exp_report_chart {
    const char *title, *y_label;
    int n, n_points;
    const char *const *labels;
    const float *const *ys;     /* [n][n_points]; NaN breaks a line, a NULL series is listed as (none) */
} exp_report_chart;

/* A self-contained HTML page (inline CSS and SVG, no scripts, no network) at `path` (atomic
 * write): a title, paragraphs of plain text (escaped; NULL-terminated list, may be NULL) and the
 * charts.  Returns 0, ENG_EINVAL (NULL arguments) or ENG_EIO. */
int exp_report_curves_html(const char *path, const char *title, const char *const *paragraphs, int n_charts,
                           const exp_report_chart *charts);

#endif
