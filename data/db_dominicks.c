/* db_dominicks.c - the Dominick's orange-juice preset of `rlprice import` (see db_import.h,
 * docs/import.md and data/datasets/dominicks_oj/README.md).
 *
 * Mapping: one product per store x brand, id "dom-s<store>-b<brand>"; Dominick's week w
 * is the week starting 1989-09-14 + 7 (w - 1) (the chain's week calendar: week 1 = Thursday
 * 14 September 1989); price = own_price_per_package, units = packages_sold, revenue =
 * price * units, traffic unknown, promo = deal or feat; base_price = the modal weekly price
 * (ties: the higher), unit_cost = median over weeks of price * (1 - profit / 100);
 * competitor prices = the ten other brands' per-ounce shelf prices times this product's
 * package size. */
#include "db_import.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_store.h"
#include "eng_hash.h"
#include "eng_util.h"

#define DOM_BRANDS 11
#define DOM_WEEK1_DAYS 7196 /* 1989-09-14 in days since 1970-01-01 */

static const char *dom_brand_names[DOM_BRANDS] = {
    "Tropicana Premium 64oz", "Tropicana Premium 96oz", "Florida's Natural 64oz", "Tropicana 64oz",
    "Minute Maid 64oz",       "Minute Maid 96oz",       "Citrus Hill 64oz",       "Tree Fresh 64oz",
    "Florida Gold 64oz",      "Dominick's 64oz",        "Dominick's 128oz"};

typedef struct {
    int store, brand, week;
    long line, order;
    double price, units, cost, size;
    double ppo[DOM_BRANDS];
    uint8_t promo;
} dom_row;

enum { C_STORE, C_BRAND, C_WEEK, C_DEAL, C_FEAT, C_PROFIT, C_PRICE, C_UNITS, C_SIZE, C_P1, C_N = C_P1 + DOM_BRANDS };
static const char *dom_col_names[C_P1] = {"store", "brand",  "week", "deal", "feat", "profit", "own_price_per_package",
                                          "packages_sold", "size_oz"};

typedef struct {
    int col[C_N];
    dom_row *rows;
    size_t n, cap;
    int *store_ok;  /* [max_store + 1] or NULL = all */
    int max_store;
    int week_lo, week_hi;
    long filtered;
    db_csv_log *log;
} dom_ctx;

static int dom_first(void *ctx, int nf, char **f, int has_header) {
    dom_ctx *x = ctx;
    (void)has_header;
    for (int c = 0; c < C_N; c++) {
        char want[32];
        if (c < C_P1) snprintf(want, sizeof want, "%s", dom_col_names[c]);
        else snprintf(want, sizeof want, "price%d", c - C_P1 + 1);
        x->col[c] = -1;
        for (int j = 0; j < nf; j++)
            if (!strcmp(f[j], want)) x->col[c] = j;
        if (x->col[c] < 0)
            return eng_err_set(ENG_EFORMAT, "%s: no column '%s' in the header (is this oj_store_brand_week.csv?)",
                               x->log->path, want);
    }
    return ENG_OK;
}

static int parse_int(const char *s, int *v) {
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || *end || x < 0 || x > 1000000) return -1;
    *v = (int)x;
    return 0;
}

static int parse_num(const char *s, double *v) {
    *v = NAN;
    return eng_parse_decimal(s, v) == ENG_OK ? 0 : -1; /* decimal only: no "0x1", "inf", "nan" */
}

static int dom_row_cb(void *ctx, long line, int nf, char **f) {
    (void)nf;
    dom_ctx *x = ctx;
    dom_row r;
    memset(&r, 0, sizeof r);
    r.line = line;
    int deal = 0, feat = 0;
    double profit = 0;
    if (parse_int(f[x->col[C_STORE]], &r.store) || parse_int(f[x->col[C_BRAND]], &r.brand) ||
        parse_int(f[x->col[C_WEEK]], &r.week)) {
        db_csv_log_bad(x->log, line, "store/brand/week must be non-negative integers ('%.20s', '%.20s', '%.20s')",
                       f[x->col[C_STORE]], f[x->col[C_BRAND]], f[x->col[C_WEEK]]);
        return 1;
    }
    if (r.brand < 1 || r.brand > DOM_BRANDS || r.week < 1) {
        db_csv_log_bad(x->log, line, "brand %d or week %d out of range (brands 1..11, weeks >= 1)", r.brand, r.week);
        return 1;
    }
    for (int c = C_DEAL; c < C_N; c++) {
        double v;
        if (parse_num(f[x->col[c]], &v)) {
            db_csv_log_bad(x->log, line, "%s: '%.40s' is not a number",
                           c < C_P1 ? dom_col_names[c] : "competitor price", f[x->col[c]]);
            return 1;
        }
        if (c >= C_P1) r.ppo[c - C_P1] = v;
        else if (c == C_DEAL) deal = v != 0;
        else if (c == C_FEAT) feat = v != 0;
        else if (c == C_PROFIT) profit = v;
        else if (c == C_PRICE) r.price = v;
        else if (c == C_UNITS) r.units = v;
        else if (c == C_SIZE) r.size = v;
    }
    if (!(r.price > 0) || r.units < 0 || !(r.size > 0)) {
        db_csv_log_bad(x->log, line, "price %g must be > 0, packages_sold %g >= 0, size_oz %g > 0", r.price, r.units, r.size);
        return 1;
    }
    if ((x->store_ok && (r.store > x->max_store || !x->store_ok[r.store])) || (x->week_lo && r.week < x->week_lo) ||
        (x->week_hi && r.week > x->week_hi)) {
        x->filtered++;
        return 0;
    }
    r.promo = (uint8_t)(deal || feat);
    r.cost = r.price * (1.0 - profit / 100.0);
    if (x->n == x->cap) {
        size_t nc = x->cap ? 2 * x->cap : 4096;
        dom_row *nr = realloc(x->rows, nc * sizeof *nr);
        if (!nr) return eng_err_set(ENG_ENOMEM, "dominicks: out of memory (%zu rows)", nc);
        x->rows = nr;
        x->cap = nc;
    }
    r.order = (long)x->n;
    x->rows[x->n++] = r;
    return 0;
}

static int cmp_rows(const void *a, const void *b) {
    const dom_row *x = a, *y = b;
    if (x->store != y->store) return x->store < y->store ? -1 : 1;
    if (x->brand != y->brand) return x->brand < y->brand ? -1 : 1;
    if (x->week != y->week) return x->week < y->week ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}
/* "2,5,8-12" -> store_ok[] */
static int parse_stores(dom_ctx *x, const char *s) {
    if (!s || !*s) return ENG_OK;
    x->max_store = 100000;
    x->store_ok = eng_calloc((size_t)x->max_store + 1, sizeof(int));
    if (!x->store_ok) return ENG_ENOMEM;
    const char *p = s;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || a < 0 || a > x->max_store) return eng_err_set(ENG_EINVAL, "--stores '%s': expected a list like 2,5,8-12", s);
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || b < a || b > x->max_store) return eng_err_set(ENG_EINVAL, "--stores '%s': bad range", s);
            p = end;
        }
        for (long k = a; k <= b; k++) x->store_ok[k] = 1;
        if (*p == ',') p++;
        else if (*p) return eng_err_set(ENG_EINVAL, "--stores '%s': unexpected '%c'", s, *p);
    }
    return ENG_OK;
}

/* Duplicates (same store, brand, week) in the sorted rows: the later line wins, the earlier is
 * reported to log. */
static void dom_dedup(dom_ctx *x, db_csv_log *log) {
    size_t m = 0;
    for (size_t i = 0; i < x->n; i++) {
        if (m && x->rows[m - 1].store == x->rows[i].store && x->rows[m - 1].brand == x->rows[i].brand &&
            x->rows[m - 1].week == x->rows[i].week) {
            db_csv_log_bad(log, x->rows[m - 1].line, "store %d brand %d week %d appears again on line %ld, which replaces it",
                           x->rows[i].store, x->rows[i].brand, x->rows[i].week, x->rows[i].line);
            x->rows[m - 1] = x->rows[i];
        } else {
            x->rows[m++] = x->rows[i];
        }
    }
    x->n = m;
}

/* The sales cells and product ids / names of h from the sorted rows (weeks from wlo, T
 * periods).  Returns 0 or ENG_ENOMEM. */
static int dom_cells(const dom_ctx *x, db_history *h, int wlo, int T) {
    /* cells first (rows are sorted by product then week) */
    int p = -1;
    for (size_t i = 0; i < x->n; i++) {
        const dom_row *r = &x->rows[i];
        if (!i || r->store != x->rows[i - 1].store || r->brand != x->rows[i - 1].brand) {
            p++;
            char id[64], name[128];
            snprintf(id, sizeof id, "dom-s%d-b%d", r->store, r->brand);
            snprintf(name, sizeof name, "%s, store %d", dom_brand_names[r->brand - 1], r->store);
            h->product_id[p] = strdup(id);
            h->name[p] = strdup(name);
            if (!h->product_id[p] || !h->name[p]) return eng_err_set(ENG_ENOMEM, "dominicks: out of memory");
        }
        size_t c = (size_t)p * (size_t)T + (size_t)(r->week - wlo);
        h->present[c] = 1;
        h->price[c] = r->price;
        h->units[c] = (float)r->units;
        h->revenue[c] = (float)(r->price * r->units);
        h->promo[c] = r->promo;
    }
    return ENG_OK;
}

/* The competitor entries of h in cell order (every other brand's price of the same store and
 * week). */
static void dom_competitors(const dom_ctx *x, db_history *h, int P, int T) {
    /* competitor entries in cell order: walk cells, find each present cell's row */
    size_t ri = 0;
    int64_t k = 0;
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++) {
            size_t c = (size_t)p * (size_t)T + (size_t)t;
            h->comp_off[c] = k;
            if (!h->present[c]) continue;
            const dom_row *r = &x->rows[ri++];
            for (int b = 0; b < DOM_BRANDS; b++) {
                if (b == r->brand - 1 || !(r->ppo[b] > 0)) continue;
                h->comp_id[k] = b;
                h->comp_price[k] = (float)(r->ppo[b] * r->size);
                k++;
            }
        }
    h->comp_off[(size_t)P * (size_t)T] = k;

}

/* Per product: modal price (cents, ties -> higher) as base price and median cost; tmp and
 * prices are scratch of the longest product's row count. */
static void dom_product_prices(const dom_ctx *x, db_history *h, int P, double *tmp, long *prices) {
    size_t ri = 0;
    for (int p = 0; p < P; p++) {
        size_t n = 0;
        while (ri + n < x->n && (n == 0 || (x->rows[ri + n].store == x->rows[ri].store && x->rows[ri + n].brand == x->rows[ri].brand))) {
            tmp[n] = x->rows[ri + n].cost;
            prices[n] = lround(x->rows[ri + n].price * 100.0);
            n++;
        }
        qsort(tmp, n, sizeof(double), eng_cmp_double);
        h->unit_cost[p] = n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
        for (size_t i = 0; i < n; i++) tmp[i] = (double)prices[i];
        qsort(tmp, n, sizeof(double), eng_cmp_double);
        double best = tmp[0];
        size_t best_n = 0;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && tmp[j] == tmp[i]) j++;
            if (j - i >= best_n) { best_n = j - i; best = tmp[i]; } /* >=: ties go to the higher price */
            i = j;
        }
        h->base_price[p] = best / 100.0;
        ri += n;
    }
}

int db_dominicks_read(db_history **out, const db_dominicks_opts *o, db_csv_log *log, long *filtered) {
    *out = NULL;
    dom_ctx x;
    memset(&x, 0, sizeof x);
    x.log = log;
    x.week_lo = o ? o->week_lo : 0;
    x.week_hi = o ? o->week_hi : 0;
    db_history *h = NULL;
    double *tmp = NULL;
    long *prices = NULL;
    char path[4096];
    int st = ENG_OK;
    const char *dir = o && o->dir && *o->dir ? o->dir : RLPRICE_BUILD_DATA "/dominicks_oj";
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/%s", dir, DB_DOMINICKS_FILE);
    else snprintf(path, sizeof path, "%s", dir);
    if (x.week_lo < 0 || x.week_hi < 0 || (x.week_hi && x.week_lo > x.week_hi)) {
        st = eng_err_set(ENG_EINVAL, "--weeks %d-%d: expected FIRST-LAST with FIRST <= LAST", x.week_lo, x.week_hi);
        goto cleanup;
    }
    st = parse_stores(&x, o ? o->stores : NULL);
    if (st) goto cleanup;
    st = db_csv_read(path, NULL, dom_first, dom_row_cb, &x, log);
    if (st) goto cleanup;
    if (!x.n) {
        st = eng_err_set(ENG_EFORMAT, "%s: no usable rows for the chosen stores/weeks", path);
        goto cleanup;
    }
    qsort(x.rows, x.n, sizeof *x.rows, cmp_rows);
    dom_dedup(&x, log);
    int wlo = x.week_lo, whi = x.week_hi, P = 0;
    for (size_t i = 0; i < x.n; i++) {
        if (!x.week_lo && (!wlo || x.rows[i].week < wlo)) wlo = x.rows[i].week;
        if (!x.week_hi && x.rows[i].week > whi) whi = x.rows[i].week;
        if (!i || x.rows[i].store != x.rows[i - 1].store || x.rows[i].brand != x.rows[i - 1].brand) P++;
    }
    int T = whi - wlo + 1;
    st = db_history_alloc(&h, P, T, DOM_WEEK1_DAYS + 7 * (wlo - 1), 7);
    if (st) goto cleanup;
    h->n_competitors = DOM_BRANDS;
    h->competitor_names = eng_calloc(DOM_BRANDS, sizeof(char *));
    h->comp_id = eng_malloc(x.n * (DOM_BRANDS - 1) * sizeof(int32_t) + 1);
    h->comp_price = eng_malloc(x.n * (DOM_BRANDS - 1) * sizeof(float) + 1);
    tmp = eng_malloc(((size_t)T + 1) * sizeof(double));
    prices = eng_malloc(((size_t)T + 1) * sizeof(long));
    if (!h->competitor_names || !h->comp_id || !h->comp_price || !tmp || !prices) { st = ENG_ENOMEM; goto cleanup; }
    for (int b = 0; b < DOM_BRANDS; b++)
        if (!(h->competitor_names[b] = strdup(dom_brand_names[b]))) { st = eng_err_set(ENG_ENOMEM, "dominicks: out of memory"); goto cleanup; }

    if ((st = dom_cells(&x, h, wlo, T))) goto cleanup;
    dom_competitors(&x, h, P, T);
    dom_product_prices(&x, h, P, tmp, prices);
    *out = h;
    h = NULL;
cleanup:
    if (filtered) *filtered = x.filtered;
    db_history_free(h);
    free(x.rows);
    free(x.store_ok);
    free(tmp);
    free(prices);
    return st;
}

int db_import_dominicks(PGconn *c, const db_dominicks_opts *o, int dry_run, db_import_report *r) {
    memset(r, 0, sizeof *r);
    double t0 = eng_now();
    db_history *h = NULL;
    int st = db_dominicks_read(&h, o, &r->log, &r->filtered);
    if (st) goto cleanup;
    r->comp_rows = (long)h->comp_off[(size_t)h->n_products * (size_t)h->n_periods];
    if (!dry_run) {
        if (!c) { st = eng_err_set(ENG_EINVAL, "import: no database connection"); goto cleanup; }
        db_store_opts so = {0, "refrigerated orange juice"};
        db_store_report sr;
        st = db_history_store(c, h, &so, &sr);
        if (st) goto cleanup;
        r->inserted = sr.sales_inserted;
        r->updated = sr.sales_updated;
        r->products_created = sr.products_inserted;
    }
cleanup:
    db_history_free(h);
    r->seconds = eng_now() - t0;
    return st;
}
