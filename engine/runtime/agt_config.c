/* agt_config.c - see agt_config.h. */
#include "agt_config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eng_parse.h"
#include "eng_util.h"

static const agt_cfg_field *find(const agt_cfg_field *fields, int n, const char *key, size_t keylen) {
    for (int i = 0; i < n; i++)
        if (strlen(fields[i].key) == keylen && strncmp(fields[i].key, key, keylen) == 0) return &fields[i];
    return NULL;
}

static int set_field(void *obj, const agt_cfg_field *f, const char *value, const char *where) {
    char *end = NULL;
    errno = 0;
    if (!*value) return eng_err_set(ENG_EINVAL, "%s: empty value for '%s'", where, f->key);
    char *p = (char *)obj + f->offset;
    switch (f->type) {
    case AGT_CFG_INT: {
        long v = strtol(value, &end, 10);
        if (errno || *end || v < INT_MIN || v > INT_MAX)
            return eng_err_set(ENG_EINVAL, "%s: '%s' needs an integer, got '%s'", where, f->key, value);
        *(int *)p = (int)v;
        break;
    }
    case AGT_CFG_LONG: {
        long v = strtol(value, &end, 10);
        if (errno || *end) return eng_err_set(ENG_EINVAL, "%s: '%s' needs an integer, got '%s'", where, f->key, value);
        *(long *)p = v;
        break;
    }
    case AGT_CFG_U64: {
        uint64_t v; /* no sign, no blanks: " -1" would wrap to 2^64 - 1 */
        if (eng_parse_u64_c(value, &v)) return eng_err_set(ENG_EINVAL, "%s: '%s' needs a non-negative integer, got '%s'", where, f->key, value);
        *(uint64_t *)p = v;
        break;
    }
    case AGT_CFG_FLOAT: {
        float v = strtof(value, &end);
        if (errno || *end || !isfinite(v))
            return eng_err_set(ENG_EINVAL, "%s: '%s' needs a finite number, got '%s'", where, f->key, value);
        *(float *)p = v;
        break;
    }
    default: return eng_err_set(ENG_EINVAL, "%s: field '%s' has an unknown type", where, f->key);
    }
    return ENG_OK;
}

int agt_cfg_set(void *obj, const agt_cfg_field *fields, int n, const char *key, const char *value,
                const char *where) {
    if (!obj || !fields || !key || !value) return eng_err_set(ENG_EINVAL, "agt_cfg_set: NULL argument");
    const agt_cfg_field *f = find(fields, n, key, strlen(key));
    if (!f) return eng_err_set(ENG_ENOTFOUND, "%s: unknown setting '%s'", where ? where : "config", key);
    return set_field(obj, f, value, where ? where : "config");
}

/* Split one line (modified in place) into key and value and hand a setting to fn; blank and
 * comment lines are skipped.  `where` names the line.  Returns 0, ENG_EFORMAT (no '=', no
 * "section." prefix) or fn's failure. */
static int split_line(char *line, const char *where, agt_cfg_line_fn fn, void *ctx) {
    char *s = eng_trim(line);
    if (!*s || *s == '#') return ENG_OK;
    char *eq = strchr(s, '=');
    if (!eq) return eng_err_set(ENG_EFORMAT, "%s: expected 'section.key = value', got '%s'", where, s);
    *eq = '\0';
    char *key = eng_trim(s), *val = eng_trim(eq + 1);
    char *dot = strchr(key, '.');
    if (!dot || dot == key || !dot[1]) return eng_err_set(ENG_EFORMAT, "%s: key '%s' has no 'section.' prefix", where, key);
    return fn(ctx, key, val, where);
}

int agt_cfg_read_file(const char *path, agt_cfg_line_fn fn, void *ctx) {
    if (!path || !fn) return eng_err_set(ENG_EINVAL, "agt_cfg_read_file: NULL argument");
    FILE *f = eng_fopen(path, "r");
    if (!f) return ENG_EIO;
    char line[1024], where[600];
    int st = ENG_OK, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) { st = eng_err_set(ENG_EFORMAT, "%s: line longer than %zu characters", where, sizeof line - 2); break; }
        if ((st = split_line(line, where, fn, ctx)) != ENG_OK) break;
    }
    if (st == ENG_OK && ferror(f)) st = eng_err_set(ENG_EIO, "%s: read error", path);
    fclose(f);
    return st;
}

int agt_cfg_read_flags(int argc, char **argv, agt_cfg_line_fn fn, void *ctx) {
    if (!fn || (argc > 0 && !argv)) return eng_err_set(ENG_EINVAL, "agt_cfg_read_flags: NULL argument");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) return eng_err_set(ENG_EINVAL, "unexpected argument '%s' (flags are --key=value)", a);
        char key[128];
        const char *k = a + 2, *eq = strchr(k, '='), *v;
        size_t kl = eq ? (size_t)(eq - k) : strlen(k);
        if (kl >= sizeof key) return eng_err_set(ENG_EINVAL, "'%s': key too long", a);
        memcpy(key, k, kl);
        key[kl] = '\0';
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else return eng_err_set(ENG_EINVAL, "flag '%s' needs a value", a);
        int st = fn(ctx, key, v, a);
        if (st) return st;
    }
    return ENG_OK;
}

/* A table and its section, for the table loaders below. */
typedef struct table_ctx {
    void *obj;
    const agt_cfg_field *fields;
    int n;
    const char *section;
} table_ctx;

/* Apply a "section.key" setting of the table's section; other sections are skipped. */
static int table_line(void *vctx, const char *key, const char *val, const char *where) {
    const table_ctx *t = vctx;
    const size_t sl = strlen(t->section);
    const char *dot = strchr(key, '.');
    if ((size_t)(dot - key) != sl || strncmp(key, t->section, sl) != 0) return ENG_OK; /* another section */
    return agt_cfg_set(t->obj, t->fields, t->n, dot + 1, val, where);
}

int agt_cfg_load_file(void *obj, const agt_cfg_field *fields, int n, const char *path, const char *section) {
    if (!obj || !fields || !path || !section) return eng_err_set(ENG_EINVAL, "agt_cfg_load_file: NULL argument");
    table_ctx t = {obj, fields, n, section};
    return agt_cfg_read_file(path, table_line, &t);
}

int agt_cfg_load_string(void *obj, const agt_cfg_field *fields, int n, const char *text, const char *section,
                        const char *name) {
    if (!obj || !fields || !text || !section) return eng_err_set(ENG_EINVAL, "agt_cfg_load_string: NULL argument");
    char *copy = strdup(text);
    if (!copy) return eng_err_set(ENG_ENOMEM, "agt_cfg_load_string: out of memory");
    char where[600];
    int st = ENG_OK, lineno = 0;
    char *save = NULL;
    table_ctx t = {obj, fields, n, section};
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", name ? name : "config", lineno);
        if ((st = split_line(ln, where, table_line, &t)) != ENG_OK) break;
    }
    free(copy);
    return st;
}

int agt_cfg_parse_flags(void *obj, const agt_cfg_field *fields, int n, int argc, char **argv) {
    if (!obj || !fields || (argc > 0 && !argv)) return eng_err_set(ENG_EINVAL, "agt_cfg_parse_flags: NULL argument");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) return eng_err_set(ENG_EINVAL, "unexpected argument '%s' (flags are --key=value)", a);
        const char *k = a + 2, *eq = strchr(k, '=');
        size_t kl = eq ? (size_t)(eq - k) : strlen(k);
        const agt_cfg_field *f = find(fields, n, k, kl);
        if (!f) return eng_err_set(ENG_ENOTFOUND, "unknown flag '%.*s'", (int)kl + 2, a);
        const char *v;
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else return eng_err_set(ENG_EINVAL, "flag '%s' needs a value", a);
        int st = set_field(obj, f, v, a);
        if (st) return st;
    }
    return ENG_OK;
}

static int fmt_field(char *buf, size_t n, const void *obj, const agt_cfg_field *f, const char *section) {
    const char *p = (const char *)obj + f->offset;
    const char *pre = section ? section : "", *dot = section ? "." : "";
    switch (f->type) {
    case AGT_CFG_INT: return snprintf(buf, n, "%s%s%s = %d\n", pre, dot, f->key, *(const int *)p);
    case AGT_CFG_LONG: return snprintf(buf, n, "%s%s%s = %ld\n", pre, dot, f->key, *(const long *)p);
    case AGT_CFG_U64: return snprintf(buf, n, "%s%s%s = %" PRIu64 "\n", pre, dot, f->key, *(const uint64_t *)p);
    case AGT_CFG_FLOAT: {
        char num[32];
        return snprintf(buf, n, "%s%s%s = %s\n", pre, dot, f->key, eng_fmt_float(num, *(const float *)p));
    }
    }
    return 0;
}

int agt_cfg_write(FILE *out, const void *obj, const agt_cfg_field *fields, int n, const char *section) {
    char buf[512];
    for (int i = 0; i < n; i++) {
        fmt_field(buf, sizeof buf, obj, &fields[i], section);
        if (fputs(buf, out) < 0) return eng_err_set(ENG_EIO, "writing config: %s", strerror(errno));
    }
    return ENG_OK;
}

char *agt_cfg_to_string(const void *obj, const agt_cfg_field *fields, int n, const char *section) {
    size_t cap = 256 * (size_t)(n + 1), len = 0;
    char *s = eng_malloc(cap);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        int w = fmt_field(s + len, cap - len, obj, &fields[i], section);
        if (w > 0 && (size_t)w < cap - len) len += (size_t)w;
    }
    return s;
}
