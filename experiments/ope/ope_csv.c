/* ope_csv.c - load logged bandit data from CSV (libcsv), checking every field with its line. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>

#include "db_csvread.h"
#include "ope.h"

#define OPE_PI_SUM_RTOL 1e-6

enum { COL_ACTION, COL_REWARD, COL_PSCORE, COL_PI, COL_Q, COL_MU, COL_X };

typedef struct {
    const char *path;
    long line;       /* physical line being fed to the parser */
    long rec_line;   /* line on which the current record started */
    int rec;         /* records seen (0 = header) */
    int field;       /* index of the next field in the record */
    int st;          /* first error (0 = none) */
    /* header */
    int ncol, cap_col;
    char **names;
    int *kind, *idx; /* per column: COL_* and the action / x index */
    int K, nq, nmu, d;
    int col_action, col_reward, col_pscore;
    /* data */
    ope_bandit *out;
    int cap;
    double *rowvals; /* [ncol] values of the current record */
} csv_ctx;

static int fail(csv_ctx *c, int status, const char *fmt, const char *a, const char *b) {
    if (c->st) return c->st;
    char msg[400];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    c->st = eng_err_set(status, "%s:%ld: %s", c->path, c->rec_line, msg);
    return c->st;
}

static int parse_suffix(const char *name, const char *prefix, int *k) {
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0 || !(name[pl] >= '0' && name[pl] <= '9')) return 0;
    char *end;
    errno = 0;
    long v = strtol(name + pl, &end, 10);
    if (*end || errno || v < 0 || v > 100000 || (name[pl] == '0' && name[pl + 1])) return 0;
    *k = (int)v;
    return 1;
}

static void header_field(csv_ctx *c, const char *s) {
    if (c->ncol == c->cap_col) {
        int nc = c->cap_col ? 2 * c->cap_col : 16;
        char **n = realloc(c->names, (size_t)nc * sizeof *n);
        if (n) c->names = n;
        int *k = realloc(c->kind, (size_t)nc * sizeof *k);
        if (k) c->kind = k;
        int *ix = realloc(c->idx, (size_t)nc * sizeof *ix);
        if (ix) c->idx = ix;
        if (!n || !k || !ix) {
            c->st = eng_err_set(ENG_ENOMEM, "%s: out of memory reading the header", c->path);
            return;
        }
        c->cap_col = nc;
    }
    int j = c->ncol;
    c->names[j] = strdup(s);
    if (!c->names[j]) {
        c->st = eng_err_set(ENG_ENOMEM, "%s: out of memory reading the header", c->path);
        return;
    }
    c->ncol++;
    for (int i = 0; i < j; i++)
        if (!strcmp(c->names[i], s)) {
            fail(c, ENG_EFORMAT, "column '%s' appears twice in the header", s, NULL);
            return;
        }
    int k = 0;
    c->idx[j] = 0;
    if (!strcmp(s, "action")) c->kind[j] = COL_ACTION, c->col_action = j;
    else if (!strcmp(s, "reward")) c->kind[j] = COL_REWARD, c->col_reward = j;
    else if (!strcmp(s, "pscore")) c->kind[j] = COL_PSCORE, c->col_pscore = j;
    else if (parse_suffix(s, "pi_", &k)) c->kind[j] = COL_PI, c->idx[j] = k, c->K = k + 1 > c->K ? k + 1 : c->K;
    else if (parse_suffix(s, "q_", &k)) c->kind[j] = COL_Q, c->idx[j] = k, c->nq = k + 1 > c->nq ? k + 1 : c->nq;
    else if (parse_suffix(s, "mu_", &k)) c->kind[j] = COL_MU, c->idx[j] = k, c->nmu = k + 1 > c->nmu ? k + 1 : c->nmu;
    else if (!strncmp(s, "x_", 2) && s[2]) c->kind[j] = COL_X, c->idx[j] = c->d++;
    else
        fail(c, ENG_EFORMAT,
             "unknown column '%s' (expected action, reward, pscore, pi_<k>, q_<k>, mu_<k> or x_<name>)", s, NULL);
}

/* After the header: all required columns present, pi/q/mu numbered 0..K-1 without gaps. */
static void header_done(csv_ctx *c) {
    if (c->st) return;
    const char *miss = c->col_action < 0 ? "action" : c->col_reward < 0 ? "reward" : c->col_pscore < 0 ? "pscore"
                                                                                      : c->K == 0 ? "pi_0" : NULL;
    if (miss) {
        fail(c, ENG_EFORMAT, "missing column '%s' in the header", miss, NULL);
        return;
    }
    int npi = 0, nq = 0, nmu = 0;
    for (int j = 0; j < c->ncol; j++) {
        npi += c->kind[j] == COL_PI;
        nq += c->kind[j] == COL_Q;
        nmu += c->kind[j] == COL_MU;
    }
    char buf[32];
    if (npi != c->K) {
        snprintf(buf, sizeof buf, "%d", c->K - 1);
        fail(c, ENG_EFORMAT, "pi columns must be pi_0 .. pi_%s without gaps", buf, NULL);
        return;
    }
    const char *bad = nq && (nq != c->K || c->nq != c->K) ? "q_" : nmu && (nmu != c->K || c->nmu != c->K) ? "mu_" : NULL;
    if (bad) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s0 .. %s%d (one per pi_ column)", bad, bad, c->K - 1);
        fail(c, ENG_EFORMAT, "%s columns, when given, must be %s without gaps", bad, msg);
        return;
    }
    c->nq = nq;
    c->nmu = nmu;
    ope_bandit *o = c->out;
    o->K = c->K;
    o->d = c->d;
    c->rowvals = malloc((size_t)c->ncol * sizeof *c->rowvals);
    if (c->d) o->x_names = calloc((size_t)c->d, sizeof *o->x_names);
    if (!c->rowvals || (c->d && !o->x_names)) {
        c->st = eng_err_set(ENG_ENOMEM, "%s: out of memory", c->path);
        return;
    }
    for (int j = 0; j < c->ncol; j++)
        if (c->kind[j] == COL_X && !(o->x_names[c->idx[j]] = strdup(c->names[j]))) {
            c->st = eng_err_set(ENG_ENOMEM, "%s: out of memory", c->path);
            return;
        }
}

static int grow(csv_ctx *c) {
    ope_bandit *o = c->out;
    int nc = c->cap ? 2 * c->cap : 1024;
    size_t K = (size_t)o->K;
    void *p;
#define GROW(field, per)                                                                 \
    if (!(p = realloc(o->field, (size_t)nc * (per) * sizeof *o->field))) return ENG_ENOMEM; \
    o->field = p;
    GROW(action, 1);
    GROW(reward, 1);
    GROW(pscore, 1);
    GROW(pi, K);
    if (c->nq) { GROW(q, K); }
    if (c->nmu) { GROW(mu, K); }
    if (c->d) { GROW(x, (size_t)c->d); }
#undef GROW
    c->cap = nc;
    return ENG_OK;
}

static void cb_field(void *s, size_t len, void *data) {
    csv_ctx *c = data;
    if (c->st) return;
    if (c->field == 0) c->rec_line = c->line;
    char buf[128];
    const char *txt = s ? (const char *)s : "";
    if (c->rec == 0) {
        char *name = strndup(txt, len);
        if (!name) {
            c->st = eng_err_set(ENG_ENOMEM, "%s: out of memory", c->path);
            return;
        }
        header_field(c, name);
        free(name);
        c->field++;
        return;
    }
    int j = c->field++;
    if (j >= c->ncol) return; /* counted at the end of the record */
    if (len >= sizeof buf) {
        fail(c, ENG_EFORMAT, "column '%s': field too long to be a number", c->names[j], NULL);
        return;
    }
    memcpy(buf, txt, len);
    buf[len] = '\0';
    double v = NAN; /* decimal only: "0x1", "inf", "nan" and blanks are refused */
    if (eng_parse_decimal(buf, &v) != ENG_OK) {
        fail(c, ENG_EFORMAT, "column '%s': '%s' is not a finite decimal number", c->names[j], buf);
        return;
    }
    c->rowvals[j] = v;
}

static void cb_record(int term, void *data) {
    (void)term;
    csv_ctx *c = data;
    if (c->st) return;
    if (c->field == 0) return; /* empty line */
    if (c->rec == 0) {
        c->rec = 1;
        c->field = 0;
        header_done(c);
        return;
    }
    int nf = c->field;
    c->field = 0;
    c->rec++;
    char a[32], b[64];
    if (nf != c->ncol) {
        snprintf(a, sizeof a, "%d", nf);
        snprintf(b, sizeof b, "%d", c->ncol);
        fail(c, ENG_EFORMAT, "%s fields, but the header has %s", a, b);
        return;
    }
    ope_bandit *o = c->out;
    if (o->n == c->cap && grow(c)) {
        c->st = eng_err_set(ENG_ENOMEM, "%s: out of memory at line %ld", c->path, c->rec_line);
        return;
    }
    size_t i = (size_t)o->n, K = (size_t)o->K;
    double act = c->rowvals[c->col_action];
    if (act != floor(act) || act < 0 || act >= o->K) {
        snprintf(a, sizeof a, "%g", act);
        snprintf(b, sizeof b, "0..%d", o->K - 1);
        fail(c, ENG_EINVAL, "action %s is not an integer in %s", a, b);
        return;
    }
    o->action[i] = (int)act;
    o->reward[i] = c->rowvals[c->col_reward];
    o->pscore[i] = c->rowvals[c->col_pscore];
    if (!(o->pscore[i] > 0 && o->pscore[i] <= 1)) {
        snprintf(a, sizeof a, "%g", o->pscore[i]);
        fail(c, ENG_EINVAL, "pscore %s outside (0, 1] (the logged action must have had a chance)", a, NULL);
        return;
    }
    for (int j = 0; j < c->ncol; j++) {
        double v = c->rowvals[j];
        size_t k = (size_t)c->idx[j];
        switch (c->kind[j]) {
        case COL_PI:
        case COL_MU:
            if (v < 0 || v > 1) {
                snprintf(a, sizeof a, "%g", v);
                fail(c, ENG_EINVAL, "column '%s': probability %s outside [0, 1]", c->names[j], a);
                return;
            }
            if (c->kind[j] == COL_PI) o->pi[i * K + k] = v;
            else o->mu[i * K + k] = v;
            break;
        case COL_Q: o->q[i * K + k] = v; break;
        case COL_X: o->x[i * (size_t)o->d + k] = v; break;
        default: break;
        }
    }
    double s = 0;
    for (size_t k = 0; k < K; k++) s += o->pi[i * K + k];
    if (fabs(s - 1.0) > OPE_PI_SUM_RTOL) {
        snprintf(a, sizeof a, "%.9g", s);
        fail(c, ENG_EINVAL, "pi_* sum to %s, not 1 (tolerance 1e-6)", a, NULL);
        return;
    }
    if (c->nmu && o->mu[i * K + (size_t)o->action[i]] <= 0) {
        fail(c, ENG_EINVAL, "mu of the logged action is 0", NULL, NULL);
        return;
    }
    o->n++;
}

int ope_csv_load(const char *path, ope_bandit *out) {
    if (!path || !out) return eng_err_set(ENG_EINVAL, "ope_csv_load: NULL argument");
    memset(out, 0, sizeof *out);
    csv_ctx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.out = out;
    c.col_action = c.col_reward = c.col_pscore = -1;
    struct csv_parser p;
    int parser_ok = 0;
    char *line = NULL;
    size_t cap = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        c.st = eng_err_set(e == ENOENT ? ENG_ENOTFOUND : ENG_EIO, "%s: cannot open: %s", path, strerror(e));
        goto cleanup;
    }
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        c.st = eng_err_set(ENG_ENOMEM, "%s: cannot start the CSV parser", path);
        goto cleanup;
    }
    parser_ok = 1;
    db_csv_parser_setup(&p);
    ssize_t len;
    while (!c.st && (len = getline(&line, &cap, f)) > 0) {
        c.line++;
        size_t skip = c.line == 1 ? db_csv_bom_len(line, (size_t)len) : 0; /* a UTF-8 BOM is no part of 'action' */
        if (csv_parse(&p, line + skip, (size_t)len - skip, cb_field, cb_record, &c) != (size_t)len - skip && !c.st)
            c.st = eng_err_set(ENG_EFORMAT, "%s:%ld: CSV syntax error: %s", path, c.line,
                               csv_strerror(csv_error(&p)));
    }
    if (!c.st && ferror(f)) c.st = eng_err_set(ENG_EIO, "%s: read error: %s", path, strerror(errno));
    if (!c.st && csv_fini(&p, cb_field, cb_record, &c) != 0 && !c.st)
        c.st = eng_err_set(ENG_EFORMAT, "%s:%ld: CSV syntax error at end of file: %s", path, c.line,
                           csv_strerror(csv_error(&p)));
    if (!c.st && c.rec == 0) c.st = eng_err_set(ENG_EFORMAT, "%s: empty file (no header)", path);
    if (!c.st && out->n == 0) c.st = eng_err_set(ENG_EFORMAT, "%s: header but no data rows", path);

cleanup:
    if (parser_ok) csv_free(&p);
    if (f) fclose(f);
    free(line);
    for (int j = 0; j < c.ncol; j++) free(c.names[j]);
    free(c.names);
    free(c.kind);
    free(c.idx);
    free(c.rowvals);
    if (c.st) ope_bandit_free(out);
    return c.st;
}
