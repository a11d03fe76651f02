/* db_logged.c - what rlprice itself logged, loaded beside a history (db_load_logged in
 * db_load.h; docs/ope.md, "Logged propensities"): the products a pricing team pinned
 * (products.explore = false) and the periods whose price rlprice set, with the probability that
 * price was drawn with and its whole distribution (price_recommendations.propensity,
 * support_prices, support_probs). */
#include "db_load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "db_copy.h"
#include "eng_util.h"

/* The window is the loader's session settings rlprice.from / rlprice.to (set from parameters by
 * db_load_history); of several finished runs that recommended a price for the same product and
 * day, the last finished one counts, and only when the charged price equals it (numeric
 * equality, exact). */
#define LOGGED_Q(F)                                                                                                \
    "COPY (SELECT r.product_id, r.effective_day - DATE '1970-01-01', r.propensity, r.support_prices,"             \
    "  r.support_probs FROM (SELECT DISTINCT ON (x.product_id, x.effective_day) x.product_id, x.effective_day,"   \
    "  x.price, x.propensity, x.support_prices, x.support_probs FROM price_recommendations x"                     \
    "  JOIN pricing_runs u ON u.run_id = x.run_id WHERE u.status = 'finished'"                                    \
    "  AND x.effective_day >= (SELECT current_setting('rlprice.from')::date)"                                    \
    "  AND x.effective_day <= (SELECT current_setting('rlprice.to')::date)" F                                     \
    "  ORDER BY x.product_id, x.effective_day, u.finished_at DESC, x.run_id DESC) r"                             \
    " JOIN sales s ON s.product_id = r.product_id AND s.day = r.effective_day AND s.price = r.price"              \
    " WHERE r.propensity IS NOT NULL) TO STDOUT"
static const char *const Q_LOGGED[2] = {
    LOGGED_Q(""), LOGGED_Q(" AND x.product_id IN (SELECT product_id FROM pg_temp.rlprice_filter)")};
static const char Q_PINNED[] = "COPY (SELECT product_id FROM products WHERE explore IS FALSE) TO STDOUT";

/* Product ids of h sorted, for the lookup of COPY rows. */
typedef struct id_ent { const char *id; int p; } id_ent;
typedef struct id_ix { id_ent *e; int n; } id_ix;

static int cmp_ent(const void *a, const void *b) { return strcmp(((const id_ent *)a)->id, ((const id_ent *)b)->id); }

static int ix_find(const id_ix *x, const char *id) {
    int lo = 0, hi = x->n;
    while (lo < hi) {
        int m = lo + (hi - lo) / 2, c = strcmp(x->e[m].id, id);
        if (c == 0) return x->e[m].p;
        if (c < 0) lo = m + 1;
        else hi = m;
    }
    return -1;
}

/* Parse a COPY text array "{a,b,...}" of numbers into v (grown); *n entries.  0 or ENG_EFORMAT /
 * ENG_ENOMEM. */
static int parse_array(const char *s, double **v, size_t *n, size_t *cap) {
    *n = 0;
    if (!s || *s != '{') return eng_err_set(ENG_EFORMAT, "logged propensities: bad array '%s'", s ? s : "NULL");
    s++;
    while (*s && *s != '}') {
        char *end = NULL;
        double x = strtod(s, &end);
        if (end == s) return eng_err_set(ENG_EFORMAT, "logged propensities: bad array element in '%s'", s);
        if (*n == *cap) {
            size_t nc = *cap ? 2 * *cap : 16;
            double *nv = realloc(*v, nc * sizeof *nv);
            if (!nv) return eng_err_set(ENG_ENOMEM, "out of memory loading logged propensities");
            *v = nv, *cap = nc;
        }
        (*v)[(*n)++] = x;
        s = end;
        if (*s == ',') s++;
    }
    return ENG_OK;
}

/* Growing arrays of the rows read (before sorting by cell). */
typedef struct logged_buf {
    size_t n, cap, ns, scap;
    int64_t *cell;
    double *prop;
    int32_t *off;  /* [cap + 1] */
    double *sp, *sq;
} logged_buf;

static void buf_free(logged_buf *b) {
    free(b->cell), free(b->prop), free(b->off), free(b->sp), free(b->sq);
}

static int buf_add(logged_buf *b, int64_t cell, double prop, const double *sp, const double *sq, size_t m) {
    if (b->n + 1 >= b->cap) {
        size_t nc = b->cap ? 2 * b->cap : 1024;
        int64_t *c = realloc(b->cell, nc * sizeof *c);
        if (c) b->cell = c;
        double *p = realloc(b->prop, nc * sizeof *p);
        if (p) b->prop = p;
        int32_t *o = realloc(b->off, (nc + 1) * sizeof *o);
        if (o) b->off = o;
        if (!c || !p || !o) return eng_err_set(ENG_ENOMEM, "out of memory loading logged propensities");
        b->cap = nc;
    }
    if (b->ns + m > b->scap) {
        size_t nc = b->scap ? 2 * b->scap : 1024;
        while (nc < b->ns + m) nc *= 2;
        double *x = realloc(b->sp, nc * sizeof *x);
        if (x) b->sp = x;
        double *y = realloc(b->sq, nc * sizeof *y);
        if (y) b->sq = y;
        if (!x || !y) return eng_err_set(ENG_ENOMEM, "out of memory loading logged propensities");
        b->scap = nc;
    }
    if (b->n == 0) b->off[0] = 0;
    b->cell[b->n] = cell;
    b->prop[b->n] = prop;
    if (m) { /* a deterministic row has no support arrays (sp, sq may be NULL) */
        memcpy(b->sp + b->ns, sp, m * sizeof *sp);
        memcpy(b->sq + b->ns, sq, m * sizeof *sq);
    }
    b->ns += m;
    b->off[++b->n] = (int32_t)b->ns;
    return ENG_OK;
}

/* Run a COPY TO STDOUT; each row goes to fn.  A missing column or table (a database made before
 * these columns: SQLSTATE 42703 / 42P01) is *old = 1 and no error.  0, ENG_EDB or fn's failure. */
static int copy_rows(PGconn *conn, const char *sql, int *old, int (*fn)(void *, char *, int), void *ctx) {
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        int st = ENG_OK;
        if (code && (!strcmp(code, "42703") || !strcmp(code, "42P01"))) *old = 1;
        else {
            char msg[1024];
            st = eng_err_set(ENG_EDB, "loading logged propensities: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
        }
        PQclear(r);
        return st;
    }
    PQclear(r);
    int st = ENG_OK, n;
    char *row = NULL;
    while ((n = PQgetCopyData(conn, &row, 0)) > 0) {
        if (!st) st = fn(ctx, row, n);
        PQfreemem(row);
    }
    while ((r = PQgetResult(conn))) {
        if (!st && PQresultStatus(r) != PGRES_COMMAND_OK) {
            char msg[1024];
            st = eng_err_set(ENG_EDB, "loading logged propensities: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
        }
        PQclear(r);
    }
    return st;
}

typedef struct row_ctx {
    db_history *h;
    id_ix ix;
    logged_buf b;
    double *sp, *sq;
    size_t spc, sqc;
    long n_bad;
} row_ctx;

static int pinned_row(void *vc, char *row, int n) {
    row_ctx *c = vc;
    char *f[2];
    if (db_copy_split(row, n, f, 2) != 1 || !f[0]) return eng_err_set(ENG_EDB, "pinned products: unexpected COPY row");
    db_copy_unescape(f[0]);
    int p = ix_find(&c->ix, f[0]);
    if (p >= 0) c->h->explore_off[p] = 1;
    return ENG_OK;
}

/* One logged row: product, day, propensity, support prices, probabilities. */
static int logged_row(void *vc, char *row, int n) {
    row_ctx *c = vc;
    db_history *h = c->h;
    char *f[6];
    if (db_copy_split(row, n, f, 6) != 5 || !f[0] || !f[1] || !f[2])
        return eng_err_set(ENG_EDB, "logged propensities: unexpected COPY row");
    db_copy_unescape(f[0]);
    int p = ix_find(&c->ix, f[0]);
    long day = strtol(f[1], NULL, 10), off = day - h->day0;
    if (p < 0 || off < 0 || off % h->period_days) return ENG_OK; /* not in this history */
    long t = off / h->period_days;
    if (t >= h->n_periods) return ENG_OK;
    size_t cell = (size_t)p * h->n_periods + (size_t)t;
    if (!h->present[cell]) return ENG_OK; /* a rejected sales row: no transition either */
    double prop = strtod(f[2], NULL);
    size_t ns = 0, nq = 0;
    int st;
    if (f[3] && (st = parse_array(f[3], &c->sp, &ns, &c->spc))) return st;
    if (f[4] && (st = parse_array(f[4], &c->sq, &nq, &c->sqc))) return st;
    if (ns != nq || !(prop > 0 && prop <= 1)) { /* cannot be trusted: estimate that row instead */
        c->n_bad++;
        return ENG_OK;
    }
    if (ns == 1 && prop == 1.0 && c->sq[0] == 1.0) ns = 0; /* deterministic: {charged price}, {1} implied */
    return buf_add(&c->b, (int64_t)cell, prop, c->sp, c->sq, ns);
}

typedef struct cell_ent { int64_t cell; size_t j; } cell_ent;
static int cmp_cell(const void *a, const void *b) {
    int64_t x = ((const cell_ent *)a)->cell, y = ((const cell_ent *)b)->cell;
    return x < y ? -1 : x > y;
}

/* Move the rows of b into h, ascending by cell.  0 or ENG_ENOMEM. */
static int install(db_history *h, const logged_buf *b) {
    size_t n = b->n;
    cell_ent *ord = eng_malloc((n ? n : 1) * sizeof *ord);
    h->logged_cell = eng_malloc((n ? n : 1) * sizeof *h->logged_cell);
    h->logged_prop = eng_malloc((n ? n : 1) * sizeof *h->logged_prop);
    h->logged_off = eng_malloc((n + 1) * sizeof *h->logged_off);
    h->logged_sprice = eng_malloc((b->ns ? b->ns : 1) * sizeof *h->logged_sprice);
    h->logged_sprob = eng_malloc((b->ns ? b->ns : 1) * sizeof *h->logged_sprob);
    if (!ord || !h->logged_cell || !h->logged_prop || !h->logged_off || !h->logged_sprice || !h->logged_sprob) {
        free(ord);
        return ENG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) ord[i] = (cell_ent){b->cell[i], i};
    qsort(ord, n, sizeof *ord, cmp_cell);
    size_t o = 0;
    h->logged_off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = ord[i].j;
        h->logged_cell[i] = b->cell[j];
        h->logged_prop[i] = b->prop[j];
        for (int32_t k = b->off[j]; k < b->off[j + 1]; k++, o++) h->logged_sprice[o] = b->sp[k], h->logged_sprob[o] = b->sq[k];
        h->logged_off[i + 1] = (int32_t)o;
    }
    h->n_logged = n;
    free(ord);
    return ENG_OK;
}

int db_load_logged(PGconn *conn, const db_load_opts *o, db_history *h) {
    row_ctx c;
    memset(&c, 0, sizeof c);
    c.h = h;
    int st = ENG_OK, old = 0;
    c.ix.n = h->n_products;
    c.ix.e = eng_malloc((size_t)(h->n_products ? h->n_products : 1) * sizeof *c.ix.e);
    h->explore_off = eng_calloc((size_t)(h->n_products ? h->n_products : 1), 1);
    if (!c.ix.e || !h->explore_off) { st = ENG_ENOMEM; goto done; }
    for (int p = 0; p < h->n_products; p++) c.ix.e[p] = (id_ent){h->product_id[p], p};
    qsort(c.ix.e, (size_t)h->n_products, sizeof *c.ix.e, cmp_ent);
    if ((st = copy_rows(conn, Q_PINNED, &old, pinned_row, &c))) goto done;
    if (!old && (st = copy_rows(conn, Q_LOGGED[o && o->products ? 1 : 0], &old, logged_row, &c))) goto done;
    if (old) {
        ENG_WARN("history: the database predates logged propensities (price_recommendations.propensity, "
                 "products.explore): run `rlprice db init` to add them; every propensity is estimated");
        goto done;
    }
    if (c.n_bad)
        ENG_WARN("history: %ld logged propensit%s unusable (support and probabilities differ in length, or not in (0, 1]): "
                 "estimated there", c.n_bad, c.n_bad == 1 ? "y is" : "ies are");
    st = install(h, &c.b);
done:
    free(c.ix.e);
    free(c.sp);
    free(c.sq);
    buf_free(&c.b);
    return st;
}
