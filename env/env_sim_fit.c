/* env_sim_fit.c - own-price elasticities from the Dominick's orange-juice CSV (libcsv).
 *
 * Model per brand b:  log(units_{s,b,w}) = alpha_{s,b} + e_b log(price_{s,b,w}) + noise, with a
 * fixed effect per store-brand series (the within estimator: both sides demeaned per series),
 * plus the pooled slope over all brands with the same fixed effects.  Units are ounces (logmove)
 * and price is per ounce; within a series the package size is constant, so the slope is the
 * same as for packages and package prices. */
#include "env_sim.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_csvread.h"

enum { C_STORE, C_BRAND, C_WEEK, C_LOGMOVE, C_PROFIT, C_PRICE_OZ, C_PACKAGES, C_PRICE_PKG, C_N };
static const char *col_names[C_N] = {"store", "brand", "week", "logmove", "profit", "own_price_per_oz",
                                     "packages_sold", "own_price_per_package"};

typedef struct row { int store, brand; double y, x, profit, packages, price_pkg; } row;

typedef struct parse_ctx {
    const char *path;
    long line;           /* current record's line (1 = header) */
    int field;           /* index of the current field in the record */
    int n_header;
    int col[C_N];        /* column index of each needed field */
    double val[C_N];
    int st;              /* first error */
    row *rows;
    size_t n_rows, cap;
} parse_ctx;

static void on_field(void *s, size_t len, void *data) {
    parse_ctx *c = data;
    int f = c->field++;
    if (c->st) return;
    if (c->line == 1) {
        for (int k = 0; k < C_N; k++)
            if (len == strlen(col_names[k]) && memcmp(s, col_names[k], len) == 0) c->col[k] = f;
        c->n_header = f + 1;
        return;
    }
    for (int k = 0; k < C_N; k++) {
        if (c->col[k] != f) continue;
        const char *txt = s; /* CSV_APPEND_NULL: NUL-terminated */
        double v = NAN;
        if (len == 0 || strlen(txt) != len || eng_parse_decimal(txt, &v) != ENG_OK) {
            c->st = eng_err_set(ENG_EFORMAT, "%s:%ld: column '%s' is not a number: '%.40s'", c->path, c->line,
                                col_names[k], txt);
            return;
        }
        c->val[k] = v;
    }
}

static void on_record(int term, void *data) {
    (void)term;
    parse_ctx *c = data;
    int nf = c->field;
    c->field = 0;
    if (c->st) {
        c->line++;
        return;
    }
    if (c->line == 1) {
        for (int k = 0; k < C_N; k++)
            if (c->col[k] < 0) {
                c->st = eng_err_set(ENG_EFORMAT, "%s:1: header lacks column '%s'", c->path, col_names[k]);
                break;
            }
        c->line++;
        return;
    }
    if (nf != c->n_header) {
        c->st = eng_err_set(ENG_EFORMAT, "%s:%ld: %d fields, the header has %d", c->path, c->line, nf, c->n_header);
        c->line++;
        return;
    }
    int brand = (int)c->val[C_BRAND], store = (int)c->val[C_STORE];
    if (brand < 1 || brand > ENV_SIM_DOM_BRANDS || brand != c->val[C_BRAND] || store < 0 || store > 100000 ||
        store != c->val[C_STORE]) {
        c->st = eng_err_set(ENG_EFORMAT, "%s:%ld: store %g / brand %g out of range (brand 1..%d)", c->path, c->line,
                            c->val[C_STORE], c->val[C_BRAND], ENV_SIM_DOM_BRANDS);
    } else if (!(c->val[C_PRICE_OZ] > 0) || !(c->val[C_PRICE_PKG] > 0)) {
        c->st = eng_err_set(ENG_EFORMAT, "%s:%ld: price must be positive", c->path, c->line);
    } else {
        if (c->n_rows == c->cap) {
            size_t ncap = c->cap ? 2 * c->cap : 4096;
            row *nr = realloc(c->rows, ncap * sizeof *nr);
            if (!nr) {
                c->st = eng_err_set(ENG_ENOMEM, "out of memory reading %s", c->path);
                c->line++;
                return;
            }
            c->rows = nr, c->cap = ncap;
        }
        c->rows[c->n_rows++] = (row){store, brand - 1, c->val[C_LOGMOVE], log(c->val[C_PRICE_OZ]), c->val[C_PROFIT],
                                     c->val[C_PACKAGES], c->val[C_PRICE_PKG]};
    }
    c->line++;
}

int env_sim_fit_dominicks(const char *csv_path, env_sim_fit *out) {
    memset(out, 0, sizeof *out);
    parse_ctx c = {.path = csv_path, .line = 1};
    for (int k = 0; k < C_N; k++) c.col[k] = -1;
    struct csv_parser parser;
    int st = ENG_OK, parser_ok = 0;
    double *gsum = NULL;
    FILE *f = eng_fopen(csv_path, "rb");
    if (!f) return ENG_EIO;
    if (csv_init(&parser, CSV_APPEND_NULL) != 0) {
        st = eng_err_set(ENG_ENOMEM, "csv_init failed");
        goto cleanup;
    }
    parser_ok = 1;
    db_csv_parser_setup(&parser);
    char buf[65536];
    size_t n;
    for (int first = 1; !c.st && (n = fread(buf, 1, sizeof buf, f)) > 0; first = 0) {
        size_t skip = first ? db_csv_bom_len(buf, n) : 0; /* a UTF-8 BOM is no part of 'store' */
        if (csv_parse(&parser, buf + skip, n - skip, on_field, on_record, &c) != n - skip && !c.st)
            c.st = eng_err_set(ENG_EFORMAT, "%s:%ld: %s", csv_path, c.line, csv_strerror(csv_error(&parser)));
    }
    if (ferror(f) && !c.st) c.st = eng_err_set(ENG_EIO, "read error on %s", csv_path);
    if (!c.st && csv_fini(&parser, on_field, on_record, &c) != 0)
        c.st = eng_err_set(ENG_EFORMAT, "%s:%ld: %s", csv_path, c.line, csv_strerror(csv_error(&parser)));
    if ((st = c.st)) goto cleanup;
    if (c.n_rows < 3) {
        st = eng_err_set(ENG_EFORMAT, "%s: only %zu data rows", csv_path, c.n_rows);
        goto cleanup;
    }
    /* series means per (store, brand) */
    int max_store = 0;
    for (size_t i = 0; i < c.n_rows; i++) max_store = c.rows[i].store > max_store ? c.rows[i].store : max_store;
    size_t n_groups = (size_t)(max_store + 1) * ENV_SIM_DOM_BRANDS;
    gsum = eng_calloc(n_groups * 3, sizeof(double)); /* n, sum x, sum y */
    if (!gsum) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < c.n_rows; i++) {
        double *g = gsum + 3 * ((size_t)c.rows[i].store * ENV_SIM_DOM_BRANDS + c.rows[i].brand);
        g[0] += 1, g[1] += c.rows[i].x, g[2] += c.rows[i].y;
    }
    double sxx[ENV_SIM_DOM_BRANDS] = {0}, sxy[ENV_SIM_DOM_BRANDS] = {0}, syy[ENV_SIM_DOM_BRANDS] = {0};
    long series[ENV_SIM_DOM_BRANDS] = {0};
    for (size_t gi = 0; gi < n_groups; gi++)
        if (gsum[3 * gi] > 0) series[gi % ENV_SIM_DOM_BRANDS]++;
    for (size_t i = 0; i < c.n_rows; i++) {
        const row *r = &c.rows[i];
        const double *g = gsum + 3 * ((size_t)r->store * ENV_SIM_DOM_BRANDS + r->brand);
        double dx = r->x - g[1] / g[0], dy = r->y - g[2] / g[0];
        int b = r->brand;
        sxx[b] += dx * dx, sxy[b] += dx * dy, syy[b] += dy * dy;
        out->n_obs[b]++;
        out->mean_price[b] += r->price_pkg, out->mean_units[b] += r->packages, out->mean_margin[b] += r->profit;
    }
    double SXX = 0, SXY = 0, SYY = 0;
    long N = 0, G = 0;
    out->n_brands = ENV_SIM_DOM_BRANDS;
    out->n_rows = (long)c.n_rows;
    out->pooled = out->pooled_se = NAN;
    for (int b = 0; b < ENV_SIM_DOM_BRANDS; b++) {
        long nb = out->n_obs[b];
        if (nb == 0 || !(sxx[b] > 0)) {
            st = eng_err_set(ENG_EFORMAT, "%s: brand %d has no price variation within its series (%ld rows)", csv_path,
                             b + 1, nb);
            goto cleanup;
        }
        out->mean_price[b] /= nb, out->mean_units[b] /= nb, out->mean_margin[b] /= nb;
        out->elasticity[b] = sxy[b] / sxx[b];
        long dof = nb - series[b] - 1;
        double ssr = syy[b] - sxy[b] * sxy[b] / sxx[b];
        out->se[b] = dof > 0 ? sqrt(ssr / dof / sxx[b]) : NAN;
        SXX += sxx[b], SXY += sxy[b], SYY += syy[b], N += nb, G += series[b];
    }
    out->pooled = SXY / SXX;
    out->pooled_se = N - G - 1 > 0 ? sqrt((SYY - SXY * SXY / SXX) / (double)(N - G - 1) / SXX) : NAN;
cleanup:
    if (parser_ok) csv_free(&parser);
    fclose(f);
    free(c.rows);
    free(gsum);
    return st;
}
