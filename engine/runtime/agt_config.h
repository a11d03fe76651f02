/* agt_config.h - the one key = value settings parser (shared runtime; the name is historical:
 * it started with the agents' hyperparameters).
 *
 * Each agent describes its config struct with a table of fields (key, type, offset, help).
 * The same table serves the file parser, the flag parser and the dump, so every documented
 * key is settable both ways.
 *
 * File format (one setting per line):
 *     # comment                 blank lines are ignored
 *     dqn.lr = 0.0005           <section>.<key> = <value>; spaces around '=' are ignored
 * A loader for section "dqn" applies the "dqn." lines, rejects unknown "dqn." keys and
 * malformed lines (naming file and line) and ignores other sections, so one file can hold
 * every agent's settings.  Flags: --key=value or --key value (no section prefix).
 */
#ifndef AGT_CONFIG_H
#define AGT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { AGT_CFG_INT = 0, AGT_CFG_LONG = 1, AGT_CFG_FLOAT = 2, AGT_CFG_U64 = 3 } agt_cfg_type;

typedef struct agt_cfg_field {
    const char *key;
    agt_cfg_type type;
    size_t offset; /* offsetof(struct, member) */
    const char *help;
} agt_cfg_field;

/* Set one field from text.  `where` names the source for the error ("file.cfg:12", "--lr").
 * ENG_ENOTFOUND for an unknown key, ENG_EINVAL for a value that does not parse completely
 * or overflows.  On failure obj is untouched. */
int agt_cfg_set(void *obj, const agt_cfg_field *fields, int n, const char *key, const char *value,
                const char *where);

/* Apply the "<section>." lines of a key=value file (see above).  ENG_EIO (cannot read),
 * ENG_EFORMAT (malformed line), ENG_ENOTFOUND/ENG_EINVAL (bad key/value); the message names
 * path:line.  Earlier lines stay applied when a later line fails. */
int agt_cfg_load_file(void *obj, const agt_cfg_field *fields, int n, const char *path, const char *section);

/* Same for text held in memory (e.g. a checkpoint's config string); `name` labels errors
 * ("model.h5:3").  Blank lines are skipped (line numbers then count non-empty lines). */
int agt_cfg_load_string(void *obj, const agt_cfg_field *fields, int n, const char *text, const char *section,
                        const char *name);

/* Apply flags argv[0..argc): every argument must be --key=value or --key value for a key of
 * the table.  ENG_EINVAL / ENG_ENOTFOUND naming the flag. */
int agt_cfg_parse_flags(void *obj, const agt_cfg_field *fields, int n, int argc, char **argv);

/* The line readers the table loaders above are made of, for tables of other shapes (e.g. the
 * comparison's settings): fn receives each setting with `where` naming it ("file.cfg:3", the
 * flag) and returns 0 to go on or a status that stops the reading. */
typedef int (*agt_cfg_line_fn)(void *ctx, const char *key, const char *value, const char *where);

/* Every "section.key = value" line of a file (comments and blank lines skipped).  ENG_EIO
 * (cannot read), ENG_EFORMAT (line without '=', key without "section." prefix, line too
 * long; the message names path:line) or fn's status. */
int agt_cfg_read_file(const char *path, agt_cfg_line_fn fn, void *ctx);

/* Every flag of argv[0..argc): --key=value or --key value.  ENG_EINVAL (not a flag, no value,
 * key too long) or fn's status. */
int agt_cfg_read_flags(int argc, char **argv, agt_cfg_line_fn fn, void *ctx);

/* Write "<section>.key = value" lines for every field (section may be NULL: no prefix).
 * Returns 0 or ENG_EIO. */
int agt_cfg_write(FILE *f, const void *obj, const agt_cfg_field *fields, int n, const char *section);

/* Same into a malloc'd string (caller frees); NULL with ENG_ENOMEM set on failure. */
char *agt_cfg_to_string(const void *obj, const agt_cfg_field *fields, int n, const char *section);

#endif
