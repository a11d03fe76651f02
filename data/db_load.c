/* db_load.c - COPY loader and row validation (see db_load.h). */
#include "db_load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "db_copy.h"
#include "db_load_shard.h"
#include "db_schema.h"
#include "eng_hash.h"
#include "eng_util.h"

static const char *const reject_names[DB_REJ_COUNT] = {
    "unknown_product", "off_calendar",    "missing_value", "bad_price", "negative_units", "negative_traffic",
    "revenue_mismatch", "zero_traffic_with_sales", "duplicate_key", "bad_product"};

const char *db_reject_name(int reason) {
    return reason >= 0 && reason < DB_REJ_COUNT ? reject_names[reason] : "unknown_reason";
}

void db_load_opts_default(db_load_opts *o) {
    memset(o, 0, sizeof *o);
    o->revenue_rel_tol = 0.02;
    o->revenue_abs_tol = 0.01;
    o->min_periods = 8;
}

/* ---- product hash -------------------------------------------------------------- */

typedef struct {
    int32_t *slot; /* index into ids, -1 empty */
    size_t mask;
    char **ids;    /* not owned */
} idhash;

static int idhash_init(idhash *h, char **ids, int n) {
    size_t cap = 16;
    while (cap < (size_t)n * 2 + 2) cap *= 2;
    h->slot = eng_malloc(cap * sizeof(int32_t));
    if (!h->slot) return ENG_ENOMEM;
    memset(h->slot, 0xff, cap * sizeof(int32_t));
    h->mask = cap - 1;
    h->ids = ids;
    for (int i = 0; i < n; i++) {
        size_t k = eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, ids[i]) & h->mask;
        while (h->slot[k] >= 0) k = (k + 1) & h->mask;
        h->slot[k] = i;
    }
    return ENG_OK;
}

static int idhash_find(const idhash *h, const char *id) {
    for (size_t k = eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, id) & h->mask; h->slot[k] >= 0; k = (k + 1) & h->mask)
        if (!strcmp(h->ids[h->slot[k]], id)) return h->slot[k];
    return -1;
}

/* ---- report ---------------------------------------------------------------------- */

void db_load_report_free(db_load_report *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_rejects; i++) free(r->rejects[i].row_key);
    for (int i = 0; i < r->n_gaps; i++) free(r->gaps[i].product_id);
    for (int i = 0; i < r->n_skipped; i++) free(r->skipped[i]);
    free(r->rejects);
    free(r->gaps);
    free(r->skipped);
    memset(r, 0, sizeof *r);
}

/* Record a rejected row: key parts joined by '|'. count = rows this rejection stands for. */
static int add_reject(db_load_report *r, const char *table, int reason, int64_t count, const char *id,
                      const int32_t *day, const char *comp) {
    if (r->n_rejects == r->cap_rejects) {
        size_t nc = r->cap_rejects ? r->cap_rejects * 2 : 64;
        db_reject *nr = realloc(r->rejects, nc * sizeof *nr);
        if (!nr) return eng_err_set(ENG_ENOMEM, "out of memory recording rejected rows");
        r->rejects = nr;
        r->cap_rejects = nc;
    }
    char dbuf[16] = "";
    if (day) db_day_format(*day, dbuf);
    size_t n = strlen(id) + strlen(dbuf) + (comp ? strlen(comp) : 0) + 3;
    char *key = malloc(n);
    if (!key) return eng_err_set(ENG_ENOMEM, "out of memory recording rejected rows");
    snprintf(key, n, "%s%s%s%s%s", id, day ? "|" : "", dbuf, comp ? "|" : "", comp ? comp : "");
    r->rejects[r->n_rejects++] = (db_reject){table, key, reason};
    r->by_reason[reason] += count;
    r->n_rejected += count;
    return ENG_OK;
}

void db_load_report_print(FILE *f, const db_load_report *r) {
    fprintf(f, "rows read: products %lld, sales %lld, competitor_prices %lld; period %d day(s)\n",
            (long long)r->rows_products, (long long)r->rows_sales, (long long)r->rows_competitor, r->period_days);
    fprintf(f, "rows rejected: %lld\n", (long long)r->n_rejected);
    for (int k = 0; k < DB_REJ_COUNT; k++)
        if (r->by_reason[k]) fprintf(f, "  %-24s %lld\n", db_reject_name(k), (long long)r->by_reason[k]);
    if (r->n_gaps) fprintf(f, "products with calendar gaps: %d\n", r->n_gaps);
    for (int i = 0; i < r->n_gaps && i < 20; i++) {
        char d[16];
        db_day_format(r->gaps[i].first_missing_day, d);
        fprintf(f, "  %s: %d missing period(s), first %s\n", r->gaps[i].product_id, r->gaps[i].n_missing, d);
    }
    if (r->n_skipped) fprintf(f, "products skipped (too little clean history): %d\n", r->n_skipped);
    for (int i = 0; i < r->n_skipped && i < 20; i++) fprintf(f, "  %s\n", r->skipped[i]);
}

/* ---- queries (constant text; values only through parameters/temp tables) ---------- */

/* scalar subqueries: evaluated once per query (InitPlan), not once per row */
#define WINDOW "day >= (SELECT current_setting('rlprice.from')::date) AND day <= (SELECT current_setting('rlprice.to')::date)"
#define FILTER " AND product_id IN (SELECT product_id FROM pg_temp.rlprice_filter)"

static const char Q_DAYS_ALL[] = /* loose index scan over sales_day_idx: one probe per distinct day */
    "WITH RECURSIVE d(day) AS ("
    " SELECT min(day) FROM sales WHERE " WINDOW
    " UNION ALL SELECT (SELECT min(s.day) FROM sales s WHERE s.day > d.day"
    "  AND s.day <= (SELECT current_setting('rlprice.to')::date)) FROM d WHERE d.day IS NOT NULL)"
    " SELECT day - DATE '1970-01-01' FROM d WHERE day IS NOT NULL ORDER BY 1";
static const char Q_DAYS_FILTER[] =
    "SELECT DISTINCT day - DATE '1970-01-01' FROM sales WHERE " WINDOW FILTER " ORDER BY 1";
/* The shard of an MPI run (docs/mpi.md): rank i of n loads the products whose stable hash,
 * the first 32 bits of md5(product_id), is i modulo n.  n and i are parameters (set_config of
 * rlprice.shard_n / rlprice.shard_i), never text of the query. */
#define SHARD                                                                                         \
    " AND ('x' || substr(md5(product_id), 1, 8))::bit(32)::bigint"                                    \
    " % (SELECT current_setting('rlprice.shard_n')::bigint) = (SELECT current_setting('rlprice.shard_i')::bigint)"
#define PRODUCTS_Q(W) "COPY (SELECT product_id, name, base_price, unit_cost, min_price, max_price, max_change_pct" \
                      " FROM products WHERE true" W " ORDER BY product_id) TO STDOUT"
#define SALES_Q(W, F) "COPY (SELECT product_id, day, price, units, revenue, traffic, promo FROM sales WHERE " WINDOW W \
                      ") TO STDOUT" F
#define COMP_Q(W) "COPY (SELECT product_id, day, competitor, price FROM competitor_prices WHERE " WINDOW W ") TO STDOUT"
/* [sharded][filtered] */
static const char *const Q_PRODUCTS[2][2] = {{PRODUCTS_Q(""), PRODUCTS_Q(FILTER)},
                                             {PRODUCTS_Q(SHARD), PRODUCTS_Q(FILTER SHARD)}};
static const char *const Q_SALES[2][2] = {{SALES_Q("", ""), SALES_Q(FILTER, "")},
                                          {SALES_Q(SHARD, ""), SALES_Q(FILTER SHARD, "")}};
static const char *const Q_SALES_BIN[2][2] = {{SALES_Q("", " (FORMAT binary)"), SALES_Q(FILTER, " (FORMAT binary)")},
                                              {SALES_Q(SHARD, " (FORMAT binary)"), SALES_Q(FILTER SHARD, " (FORMAT binary)")}};
static const char *const Q_COMP[2][2] = {{COMP_Q(""), COMP_Q(FILTER)}, {COMP_Q(SHARD), COMP_Q(FILTER SHARD)}};

static int sharded(const db_load_opts *o) { return o->shard_count > 1; }

static int server_err(PGconn *conn, const char *what) {
    char msg[1024];
    return eng_err_set(ENG_EDB, "%s: %s", what, db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
}

/* Start a COPY TO STDOUT. */
static int copy_out_begin(PGconn *conn, const char *sql, const char *what) {
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_OUT;
    PQclear(r);
    return ok ? ENG_OK : server_err(conn, what);
}

/* Next COPY row (caller PQfreemem's *row); returns >0 length, 0 at the end, or ENG_EDB. */
static int copy_out_next(PGconn *conn, char **row, const char *what) {
    int n = PQgetCopyData(conn, row, 0);
    if (n >= 0) return n == 0 ? 1 : n; /* 0 never happens in sync mode */
    int st = ENG_OK;
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) st = ENG_EDB;
        PQclear(r);
    }
    if (n == -2 || st) return server_err(conn, what);
    return 0;
}

/* Drain a COPY that we abandon on an error path. */
static void copy_out_drain(PGconn *conn) {
    char *row;
    while (PQgetCopyData(conn, &row, 0) >= 0) PQfreemem(row);
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) PQclear(r);
}

static int session_setup(PGconn *conn, const db_load_opts *o) {
    int st = db_exec(conn, "SET DateStyle = ISO", PGRES_COMMAND_OK, "loader setup");
    if (st) return st;
    const char *vals[2] = {o->from && *o->from ? o->from : "-infinity", o->to && *o->to ? o->to : "infinity"};
    PGresult *r = PQexecParams(conn,
                               "SELECT set_config('rlprice.from', $1::date::text, false),"
                               " set_config('rlprice.to', $2::date::text, false)",
                               2, NULL, vals, NULL, NULL, 0);
    st = PQresultStatus(r) == PGRES_TUPLES_OK ? ENG_OK : server_err(conn, "loader date window");
    PQclear(r);
    if (!st) {
        char n[16], i[16];
        snprintf(n, sizeof n, "%d", o->shard_count > 1 ? o->shard_count : 1);
        snprintf(i, sizeof i, "%d", o->shard_count > 1 ? o->shard_index : 0);
        const char *sv[2] = {n, i};
        r = PQexecParams(conn,
                         "SELECT set_config('rlprice.shard_n', $1::int::text, false),"
                         " set_config('rlprice.shard_i', $2::int::text, false)",
                         2, NULL, sv, NULL, NULL, 0);
        st = PQresultStatus(r) == PGRES_TUPLES_OK ? ENG_OK : server_err(conn, "loader shard");
        PQclear(r);
    }
    if (st || !o->products) return st;
    st = db_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS rlprice_filter (product_id text)", PGRES_COMMAND_OK,
                 "loader product filter");
    if (!st) st = db_exec(conn, "TRUNCATE pg_temp.rlprice_filter", PGRES_COMMAND_OK, "loader product filter");
    if (!st) st = db_exec(conn, "COPY pg_temp.rlprice_filter FROM STDIN", PGRES_COPY_IN, "loader product filter");
    if (st) return st;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < o->n_filter && !st; i++) {
        st = db_copy_escape(&buf, &len, &cap, o->products[i]);
        if (!st) buf[len++] = '\n';
    }
    if (st) { PQputCopyEnd(conn, "out of memory"); copy_out_drain(conn); free(buf); return st; }
    st = db_copy_send(conn, buf, len, "loader product filter");
    free(buf);
    if (!st) st = db_exec(conn, "ANALYZE pg_temp.rlprice_filter", PGRES_COMMAND_OK, "loader product filter");
    return st;
}

int db_load_session(PGconn *conn, const db_load_opts *o) { return session_setup(conn, o); }

/* Distinct days -> period, day0, n_periods. */
static int detect_calendar(PGconn *conn, const db_load_opts *o, int *period, int32_t *day0, int *n_periods) {
    PGresult *r = PQexec(conn, o->products ? Q_DAYS_FILTER : Q_DAYS_ALL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) { PQclear(r); return server_err(conn, "loader calendar"); }
    int n = PQntuples(r), st = ENG_OK;
    int32_t *d = eng_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!d) { PQclear(r); return ENG_ENOMEM; }
    for (int i = 0; i < n; i++) d[i] = (int32_t)strtol(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    *n_periods = 0;
    *day0 = 0;
    *period = o->period_days > 0 ? o->period_days : 1;
    if (n == 0) goto done;
    if (o->period_days <= 0 && n > 1) { /* most common gap, ties to the smaller */
        int counts[367] = {0}, best = 0;
        for (int i = 1; i < n; i++) {
            int g = d[i] - d[i - 1];
            if (g > 0 && g <= 366) counts[g]++;
        }
        for (int g = 1; g <= 366; g++)
            if (counts[g] > counts[best]) best = g;
        *period = best > 0 ? best : 1;
    }
    /* most common residue (day mod period) fixes the grid */
    int P = *period, best_res = 0;
    int *res = eng_calloc((size_t)P, sizeof(int));
    if (!res) { st = ENG_ENOMEM; goto done; }
    for (int i = 0; i < n; i++) res[((d[i] % P) + P) % P]++;
    for (int k = 1; k < P; k++)
        if (res[k] > res[best_res]) best_res = k;
    free(res);
    int32_t first = 0, last = 0;
    int found = 0;
    for (int i = 0; i < n; i++) {
        if (((d[i] % P) + P) % P != best_res) continue;
        if (!found) first = d[i];
        last = d[i];
        found = 1;
    }
    *day0 = first;
    *n_periods = (last - first) / P + 1;
done:
    free(d);
    return st;
}

/* ---- the load ----------------------------------------------------------------------- */

enum { PL_W = 6 };
typedef struct {
    char **ids, **names;
    double *v;   /* [n][PL_W]: base, cost, min, max, max_change, the base price's scale */
    int n, cap;
} product_list;

static void product_list_free(product_list *pl) {
    for (int i = 0; i < pl->n; i++) { free(pl->ids[i]); free(pl->names[i]); }
    free(pl->ids);
    free(pl->names);
    free(pl->v);
}

static int load_products(PGconn *conn, const db_load_opts *o, product_list *pl, db_load_report *rep) {
    int st = copy_out_begin(conn, Q_PRODUCTS[sharded(o)][o->products != NULL], "loading products");
    if (st) return st;
    char *row = NULL;
    int n;
    while ((n = copy_out_next(conn, &row, "loading products")) > 0) {
        char *f[8];
        int nf = db_copy_split(row, n, f, 8);
        rep->rows_products++;
        if (nf != 7 || !f[0]) { PQfreemem(row); copy_out_drain(conn); return eng_err_set(ENG_EDB, "products: unexpected COPY row"); }
        db_copy_unescape(f[0]);
        double v[PL_W];
        for (int k = 0; k < 5; k++) v[k] = db_copy_num(f[2 + k]);
        v[5] = db_copy_num_scale(f[2]);
        if (!(v[0] > 0) || !(v[0] <= DB_PRICE_MAX) || (v[2] > v[3])) {
            st = add_reject(rep, "products", DB_REJ_BAD_PRODUCT, 1, f[0], NULL, NULL);
            PQfreemem(row);
            if (st) { copy_out_drain(conn); return st; }
            continue;
        }
        if (pl->n == pl->cap) {
            int nc = pl->cap ? pl->cap * 2 : 256;
            char **ni = realloc(pl->ids, (size_t)nc * sizeof(char *));
            if (ni) pl->ids = ni;
            char **nn = realloc(pl->names, (size_t)nc * sizeof(char *));
            if (nn) pl->names = nn;
            double *nv = realloc(pl->v, (size_t)nc * PL_W * sizeof(double));
            if (nv) pl->v = nv;
            if (!ni || !nn || !nv) { PQfreemem(row); copy_out_drain(conn); return eng_err_set(ENG_ENOMEM, "out of memory loading products"); }
            pl->cap = nc;
        }
        if (f[1]) db_copy_unescape(f[1]);
        pl->ids[pl->n] = strdup(f[0]);
        pl->names[pl->n] = f[1] ? strdup(f[1]) : NULL;
        memcpy(pl->v + PL_W * pl->n, v, sizeof v);
        pl->n++;
        PQfreemem(row);
        if (!pl->ids[pl->n - 1] || (f[1] && !pl->names[pl->n - 1])) { copy_out_drain(conn); return eng_err_set(ENG_ENOMEM, "out of memory"); }
    }
    return n < 0 ? n : ENG_OK;
}

enum { CELL_EMPTY = 0, CELL_CLEAN = 1, CELL_BAD = 2, CELL_DUP = 3 };

/* One sales row, decoded from either COPY format. */
typedef struct {
    char *id;            /* NUL-terminated product id */
    int day_ok;
    int32_t day;
    double price, units, revenue, traffic; /* NaN when NULL/unparsable */
    int price_scale;     /* digits after the point of the price (-1 NULL) */
    int traffic_null, promo;
} sales_row;

/* Decode a text-format row in place.  Returns 0 or ENG_EDB. */
static int sales_from_text(char *msg, int len, sales_row *r) {
    char *f[8];
    if (db_copy_split(msg, len, f, 8) != 7 || !f[0]) return eng_err_set(ENG_EDB, "sales: unexpected COPY row");
    db_copy_unescape(f[0]);
    r->id = f[0];
    r->day_ok = f[1] && db_day_parse(f[1], &r->day) == ENG_OK;
    r->price = db_copy_num(f[2]);
    r->price_scale = db_copy_num_scale(f[2]);
    r->units = db_copy_num(f[3]);
    r->revenue = db_copy_num(f[4]);
    r->traffic = db_copy_num(f[5]);
    r->traffic_null = !f[5];
    r->promo = f[6] && f[6][0] == 't';
    return ENG_OK;
}

/* Decode a binary-format message; the id is copied into idbuf (grown as needed).
 * Returns 1 for a row, 0 for the trailer, or ENG_EDB. */
static int sales_from_binary(const char *msg, int len, int *header_done, char **idbuf, size_t *idcap, sales_row *r) {
    const char *f[8];
    int32_t fl[8];
    int nf = db_bin_fields(msg, len, header_done, f, fl, 8);
    if (nf == -1) return 0;
    if (nf != 7 || fl[0] < 0) return eng_err_set(ENG_EDB, "sales: unexpected binary COPY row");
    if ((size_t)fl[0] + 1 > *idcap) {
        size_t nc = (size_t)fl[0] + 64;
        char *nb = realloc(*idbuf, nc);
        if (!nb) return eng_err_set(ENG_ENOMEM, "out of memory");
        *idbuf = nb;
        *idcap = nc;
    }
    memcpy(*idbuf, f[0], (size_t)fl[0]);
    (*idbuf)[fl[0]] = '\0';
    r->id = *idbuf;
    r->day_ok = fl[1] == 4;
    if (r->day_ok) {
        int32_t d = db_bin_int32(f[1]);
        r->day_ok = d != INT32_MAX && d != INT32_MIN; /* +-infinity */
        r->day = d + DB_BIN_DATE_EPOCH;
    }
    r->price = fl[2] < 0 ? NAN : db_bin_numeric(f[2], fl[2]);
    r->price_scale = fl[2] < 0 ? -1 : db_bin_numeric_scale(f[2], fl[2]);
    r->units = fl[3] < 0 ? NAN : db_bin_numeric(f[3], fl[3]);
    r->revenue = fl[4] < 0 ? NAN : db_bin_numeric(f[4], fl[4]);
    r->traffic_null = fl[5] < 0;
    r->traffic = fl[5] < 0 ? NAN : db_bin_numeric(f[5], fl[5]);
    r->promo = fl[6] == 1 && f[6][0] != 0;
    return 1;
}

/* Binary COPY sends text in the server encoding: use it only when no conversion is due. */
static int use_binary(PGconn *conn, const db_load_opts *o) {
    const char *se = PQparameterStatus(conn, "server_encoding"), *ce = PQparameterStatus(conn, "client_encoding");
    return !o->text_copy && se && ce && !strcmp(se, ce);
}

/* Stream sales into h; state[] tracks each cell for duplicate detection. */
static int load_sales(PGconn *conn, const db_load_opts *o, db_history *h, const idhash *ix, uint8_t *state,
                      db_load_report *rep) {
    int binary = use_binary(conn, o);
    const char *q = (binary ? Q_SALES_BIN : Q_SALES)[sharded(o)][o->products != NULL];
    int st = copy_out_begin(conn, q, "loading sales");
    if (st) return st;
    const int T = h->n_periods, P = h->period_days;
    int last_p = -1, header_done = 0;
    const char *last_id = NULL;
    char *row = NULL, *idbuf = NULL;
    size_t idcap = 0;
    int n;
    while ((n = copy_out_next(conn, &row, "loading sales")) > 0) {
        sales_row r;
        if (binary) {
            st = sales_from_binary(row, n, &header_done, &idbuf, &idcap, &r);
            if (st == 0) goto next; /* trailer */
            if (st < 0) goto next;
            st = ENG_OK;
        } else if ((st = sales_from_text(row, n, &r))) {
            goto next;
        }
        rep->rows_sales++;
        int p = last_id && !strcmp(last_id, r.id) ? last_p : idhash_find(ix, r.id); /* rows come grouped */
        if (p >= 0) { last_p = p; last_id = ix->ids[p]; }
        if (p < 0) { st = add_reject(rep, "sales", DB_REJ_UNKNOWN_PRODUCT, 1, r.id, r.day_ok ? &r.day : NULL, NULL); goto next; }
        if (!r.day_ok) { st = add_reject(rep, "sales", DB_REJ_MISSING_VALUE, 1, r.id, NULL, NULL); goto next; }
        int32_t off = r.day - h->day0;
        if (off < 0 || off % P != 0 || off / P >= T) {
            st = add_reject(rep, "sales", DB_REJ_OFF_CALENDAR, 1, r.id, &r.day, NULL);
            goto next;
        }
        size_t c = (size_t)p * (size_t)T + (size_t)(off / P);
        if (state[c] != CELL_EMPTY) { /* duplicate key: every copy goes */
            if (state[c] != CELL_DUP) {
                int64_t cnt = state[c] == CELL_CLEAN ? 2 : 1;
                st = add_reject(rep, "sales", DB_REJ_DUPLICATE_KEY, cnt, r.id, &r.day, NULL);
                state[c] = CELL_DUP;
                h->present[c] = 0;
                h->price[c] = h->units[c] = h->revenue[c] = h->traffic[c] = NAN;
                h->promo[c] = 0;
            } else {
                rep->by_reason[DB_REJ_DUPLICATE_KEY]++;
                rep->n_rejected++;
            }
            goto next;
        }
        const double price = r.price, units = r.units, revenue = r.revenue, traffic = r.traffic;
        const int has_traffic = !r.traffic_null;
        int reason = -1;
        if (!(price > 0) || !(price <= DB_PRICE_MAX)) reason = DB_REJ_BAD_PRICE;
        else if (!isfinite(units) || !isfinite(revenue) || (has_traffic && !isfinite(traffic)))
            reason = DB_REJ_MISSING_VALUE;
        else if (units < 0) reason = DB_REJ_NEGATIVE_UNITS;
        else if (has_traffic && traffic < 0) reason = DB_REJ_NEGATIVE_TRAFFIC;
        else if (fabs(revenue - price * units) > o->revenue_rel_tol * fabs(price * units) + o->revenue_abs_tol)
            reason = DB_REJ_REVENUE_MISMATCH;
        else if (has_traffic && traffic == 0 && units > 0) reason = DB_REJ_ZERO_TRAFFIC;
        if (reason >= 0) {
            state[c] = CELL_BAD;
            st = add_reject(rep, "sales", reason, 1, r.id, &r.day, NULL);
            goto next;
        }
        state[c] = CELL_CLEAN;
        h->present[c] = 1;
        h->price[c] = price;
        if (r.price_scale > h->price_scale[p]) h->price_scale[p] = (int8_t)(r.price_scale < DB_PRICE_SCALE_MAX ? r.price_scale : DB_PRICE_SCALE_MAX);
        h->units[c] = (float)units;
        h->revenue[c] = (float)revenue;
        h->traffic[c] = has_traffic ? (float)traffic : NAN;
        h->promo[c] = (uint8_t)r.promo;
    next:
        PQfreemem(row);
        row = NULL;
        if (st) { copy_out_drain(conn); free(idbuf); return st; }
    }
    free(idbuf);
    return n < 0 ? n : ENG_OK;
}

/* Gaps, too-little-history skips and in-place compaction of the product axis.
 * remap[old] = new index or -1 (skipped).  Skipped ids move to rep->skipped. */
static int finalize_products(db_history *h, const db_load_opts *o, int *remap, db_load_report *rep) {
    const size_t T = (size_t)h->n_periods;
    int q = 0;
    for (int p = 0; p < h->n_products; p++) {
        const uint8_t *pr = h->present + (size_t)p * T;
        int clean = 0, first = -1, last = -1;
        for (size_t t = 0; t < T; t++)
            if (pr[t]) { clean++; if (first < 0) first = (int)t; last = (int)t; }
        if (clean < o->min_periods || clean == 0) {
            if (rep->n_skipped == rep->cap_skipped) {
                int nc = rep->cap_skipped ? rep->cap_skipped * 2 : 16;
                char **ns = realloc(rep->skipped, (size_t)nc * sizeof(char *));
                if (!ns) return eng_err_set(ENG_ENOMEM, "out of memory");
                rep->skipped = ns;
                rep->cap_skipped = nc;
            }
            rep->skipped[rep->n_skipped++] = h->product_id[p];
            h->product_id[p] = NULL;
            free(h->name[p]);
            h->name[p] = NULL;
            remap[p] = -1;
            continue;
        }
        int missing = last - first + 1 - clean;
        if (missing > 0) {
            if (rep->n_gaps == rep->cap_gaps) {
                int nc = rep->cap_gaps ? rep->cap_gaps * 2 : 16;
                db_gap *ng = realloc(rep->gaps, (size_t)nc * sizeof *ng);
                if (!ng) return eng_err_set(ENG_ENOMEM, "out of memory");
                rep->gaps = ng;
                rep->cap_gaps = nc;
            }
            int t0 = first;
            while (pr[t0]) t0++;
            char *id = strdup(h->product_id[p]);
            if (!id) return eng_err_set(ENG_ENOMEM, "out of memory");
            rep->gaps[rep->n_gaps++] = (db_gap){id, missing, h->day0 + t0 * h->period_days};
        }
        remap[p] = q;
        if (q != p) {
            db_history_copy_product(h, q, h, p);
            h->product_id[q] = h->product_id[p];
            h->name[q] = h->name[p];
            h->product_id[p] = h->name[p] = NULL;
        }
        q++;
    }
    h->n_products = q;
    return ENG_OK;
}

/* Competitor names: growable list + hash. */
typedef struct {
    char **names;
    int n, cap;
    idhash ix;
} name_set;

static int name_set_get(name_set *s, const char *name) {
    if (s->ix.slot) {
        int k = idhash_find(&s->ix, name);
        if (k >= 0) return k;
    }
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 8;
        char **nn = realloc(s->names, (size_t)nc * sizeof(char *));
        if (!nn) return eng_err_set(ENG_ENOMEM, "out of memory");
        s->names = nn;
        s->cap = nc;
    }
    if (!(s->names[s->n] = strdup(name))) return eng_err_set(ENG_ENOMEM, "out of memory");
    s->n++;
    free(s->ix.slot);
    s->ix.slot = NULL;
    int st = idhash_init(&s->ix, s->names, s->n); /* rebuild: competitor names are few */
    return st ? st : s->n - 1;
}

/* Counting sort of n staged rows by cell, in place: off[c + 1] counts become end indices,
 * scell becomes each row's destination and the cycles are followed (scomp, sprice moved). */
static void comp_sort_by_cell(int64_t *off, uint32_t *scell, int32_t *scomp, float *sprice, size_t n, size_t cells) {
    memset(off, 0, (cells + 1) * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) off[scell[i] + 1]++;
    for (size_t c = 0; c < cells; c++) off[c + 1] += off[c];
    for (size_t i = 0; i < n; i++) scell[i] = (uint32_t)off[scell[i]]++;
    for (size_t i = 0; i < n; i++) {
        while (scell[i] != i) {
            uint32_t j = scell[i];
            int32_t tc = scomp[i]; scomp[i] = scomp[j]; scomp[j] = tc;
            float tp = sprice[i]; sprice[i] = sprice[j]; sprice[j] = tp;
            scell[i] = scell[j];
            scell[j] = j;
        }
    }
}

/* Per cell: sort by competitor, drop duplicated keys (every copy, reported), compact; off[c]
 * becomes each cell's new start and *w_out the kept count.  Returns 0 or add_reject's status. */
static int comp_dedupe(db_history *h, int64_t *off, size_t cells, size_t T, const name_set *names, db_load_report *rep,
                       int64_t *w_out) {
    int st = ENG_OK;
    int64_t w = 0;
    for (size_t c = 0; c < cells; c++) {
        int64_t a = off[c], b = off[c + 1];
        for (int64_t i = a + 1; i < b; i++) { /* insertion sort: cells hold few competitors */
            int32_t id = h->comp_id[i];
            float pr = h->comp_price[i];
            int64_t j = i - 1;
            while (j >= a && h->comp_id[j] > id) { h->comp_id[j + 1] = h->comp_id[j]; h->comp_price[j + 1] = h->comp_price[j]; j--; }
            h->comp_id[j + 1] = id;
            h->comp_price[j + 1] = pr;
        }
        off[c] = w;
        for (int64_t i = a; i < b;) {
            int64_t j = i + 1;
            while (j < b && h->comp_id[j] == h->comp_id[i]) j++;
            if (j - i > 1) {
                int32_t day = h->day0 + (int32_t)(c % T) * h->period_days;
                st = add_reject(rep, "competitor_prices", DB_REJ_DUPLICATE_KEY, j - i, h->product_id[c / T], &day,
                                names->names[h->comp_id[i]]);
                if (st) return st;
            } else {
                h->comp_id[w] = h->comp_id[i];
                h->comp_price[w] = h->comp_price[i];
                w++;
            }
            i = j;
        }
    }
    *w_out = w;
    return st;
}

static int load_competitors(PGconn *conn, const db_load_opts *o, db_history *h, const idhash *ix,
                            const int *remap, db_load_report *rep) {
    const size_t T = (size_t)h->n_periods, cells = (size_t)h->n_products * T;
    if (cells > UINT32_MAX) return eng_err_set(ENG_EINVAL, "history too large (%zu cells)", cells);
    name_set names = {0};
    uint32_t *scell = NULL; /* cell of each row, later its destination index */
    int32_t *scomp = NULL;  /* becomes h->comp_id (rows in arrival order until permuted) */
    float *sprice = NULL;   /* becomes h->comp_price */
    size_t n = 0, cap = 0;
    int last_p0 = -1;
    char *last_id = NULL;
    int st = copy_out_begin(conn, Q_COMP[sharded(o)][o->products != NULL], "loading competitor_prices");
    if (st) return st;
    char *row = NULL;
    int len;
    while ((len = copy_out_next(conn, &row, "loading competitor_prices")) > 0) {
        char *f[6];
        int nf = db_copy_split(row, len, f, 6);
        rep->rows_competitor++;
        if (nf != 4 || !f[0] || !f[2]) { st = eng_err_set(ENG_EDB, "competitor_prices: unexpected COPY row"); goto next; }
        db_copy_unescape(f[0]);
        db_copy_unescape(f[2]);
        int32_t day = 0;
        int day_ok = f[1] && db_day_parse(f[1], &day) == ENG_OK;
        int p0 = last_id && !strcmp(last_id, f[0]) ? last_p0 : idhash_find(ix, f[0]);
        if (p0 >= 0) { last_p0 = p0; last_id = ix->ids[p0]; }
        if (p0 < 0) { st = add_reject(rep, "competitor_prices", DB_REJ_UNKNOWN_PRODUCT, 1, f[0], day_ok ? &day : NULL, f[2]); goto next; }
        int p = remap[p0];
        if (p < 0) goto next; /* product skipped (listed in the report) */
        int32_t off = day - h->day0;
        if (!day_ok || off < 0 || off % h->period_days != 0 || (size_t)(off / h->period_days) >= T) {
            st = add_reject(rep, "competitor_prices", DB_REJ_OFF_CALENDAR, 1, f[0], day_ok ? &day : NULL, f[2]);
            goto next;
        }
        double price = db_copy_num(f[3]);
        if (!(price > 0) || isinf(price)) { st = add_reject(rep, "competitor_prices", DB_REJ_BAD_PRICE, 1, f[0], &day, f[2]); goto next; }
        int comp = name_set_get(&names, f[2]);
        if (comp < 0) { st = comp; goto next; }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4096;
            uint32_t *a = realloc(scell, nc * sizeof *a);
            if (a) scell = a;
            int32_t *b = realloc(scomp, nc * sizeof *b);
            if (b) scomp = b;
            float *c = realloc(sprice, nc * sizeof *c);
            if (c) sprice = c;
            if (!a || !b || !c) { st = eng_err_set(ENG_ENOMEM, "out of memory staging competitor prices"); goto next; }
            cap = nc;
        }
        scell[n] = (uint32_t)((size_t)p * T + (size_t)(off / h->period_days));
        scomp[n] = comp;
        sprice[n] = (float)price;
        n++;
    next:
        PQfreemem(row);
        row = NULL;
        if (st) { copy_out_drain(conn); goto done; }
    }
    if (len < 0) { st = len; goto done; }
    int64_t *off = h->comp_off;
    comp_sort_by_cell(off, scell, scomp, sprice, n, cells);
    free(scell);
    scell = NULL;
    h->comp_id = scomp ? scomp : eng_malloc(sizeof(int32_t));
    h->comp_price = sprice ? sprice : eng_malloc(sizeof(float));
    scomp = NULL;
    sprice = NULL;
    if (!h->comp_id || !h->comp_price) { st = ENG_ENOMEM; goto done; }
    for (size_t c = cells; c > 0; c--) off[c] = off[c - 1]; /* shift back: off[c] = start */
    off[0] = 0;
    int64_t w = 0;
    if ((st = comp_dedupe(h, off, cells, T, &names, rep, &w))) goto done;
    off[cells] = w;
    if (w > 0 && (size_t)w < n) { /* give back what duplicates freed (shrinking cannot lose data) */
        int32_t *a = realloc(h->comp_id, (size_t)w * sizeof(int32_t));
        if (a) h->comp_id = a;
        float *b = realloc(h->comp_price, (size_t)w * sizeof(float));
        if (b) h->comp_price = b;
    }
    h->n_competitors = names.n;
    h->competitor_names = names.names;
    names.names = NULL;
    names.n = 0;
done:
    for (int i = 0; i < names.n; i++) free(names.names[i]);
    free(names.names);
    free(names.ix.slot);
    free(scell);
    free(scomp);
    free(sprice);
    return st;
}

int db_load_history(PGconn *conn, const db_load_opts *opts, db_history **out, db_load_report *rep) {
    *out = NULL;
    memset(rep, 0, sizeof *rep);
    db_load_opts dflt;
    if (!opts) { db_load_opts_default(&dflt); opts = &dflt; }
    if (!conn || opts->revenue_rel_tol < 0 || opts->revenue_abs_tol < 0 || opts->min_periods < 0 ||
        opts->n_filter < 0 || (opts->n_filter > 0 && !opts->products) || opts->period_days < 0 ||
        (opts->shard_count > 1 && (opts->shard_index < 0 || opts->shard_index >= opts->shard_count)) ||
        (opts->cal_fixed && (opts->cal_n_periods < 0 || opts->period_days <= 0)))
        return eng_err_set(ENG_EINVAL, "db_load_history: bad options");
    product_list pl = {0};
    db_history *h = NULL;
    idhash ix = {0};
    char **ids0 = NULL;
    uint8_t *state = NULL;
    int *remap = NULL;
    int st = session_setup(conn, opts);
    if (st) goto done;
    double t0 = eng_now();
    int period = 1, T = 0;
    int32_t day0 = 0;
    if (opts->cal_fixed) { /* the caller's calendar (an MPI rank: the catalogue's, db_load_catalogue) */
        period = opts->period_days > 0 ? opts->period_days : 1;
        day0 = opts->cal_day0;
        T = opts->cal_n_periods;
    } else if ((st = detect_calendar(conn, opts, &period, &day0, &T))) goto done;
    rep->period_days = period;
    if ((st = load_products(conn, opts, &pl, rep))) goto done;
    if ((st = db_history_alloc(&h, pl.n, T, day0, period))) goto done;
    ids0 = eng_malloc((size_t)(pl.n ? pl.n : 1) * sizeof(char *));
    remap = eng_malloc((size_t)(pl.n ? pl.n : 1) * sizeof(int));
    if (!ids0 || !remap) { st = ENG_ENOMEM; goto done; }
    for (int p = 0; p < pl.n; p++) {
        ids0[p] = h->product_id[p] = pl.ids[p];
        h->name[p] = pl.names[p];
        pl.ids[p] = pl.names[p] = NULL;
        const double *v = pl.v + PL_W * p;
        h->base_price[p] = v[0];
        h->unit_cost[p] = v[1];
        h->min_price[p] = v[2];
        h->max_price[p] = v[3];
        h->max_change_pct[p] = v[4];
        h->price_scale[p] = (int8_t)fmin(v[5], DB_PRICE_SCALE_MAX);
    }
    if ((st = idhash_init(&ix, ids0, pl.n))) goto done;
    double t1 = eng_now();
    rep->sec_products = t1 - t0;
    state = eng_calloc((size_t)pl.n * (size_t)T + 1, 1);
    if (!state) { st = ENG_ENOMEM; goto done; }
    if ((st = load_sales(conn, opts, h, &ix, state, rep))) goto done;
    free(state);
    state = NULL;
    double t2 = eng_now();
    rep->sec_sales = t2 - t1;
    if ((st = finalize_products(h, opts, remap, rep))) goto done;
    if ((st = load_competitors(conn, opts, h, &ix, remap, rep))) goto done;
    if ((st = db_load_logged(conn, opts, h))) goto done;
    rep->sec_competitor = eng_now() - t2;
    db_load_unique_rejects(rep);
    if (opts->run_id && (st = db_load_store_rejects(conn, opts->run_id, rep))) goto done;
    if (rep->n_rejected || rep->n_gaps || rep->n_skipped)
        ENG_WARN("history: %lld row(s) rejected, %d product(s) with calendar gaps, %d product(s) skipped",
                 (long long)rep->n_rejected, rep->n_gaps, rep->n_skipped);
    *out = h;
    h = NULL;
done:
    free(ix.slot);
    free(ids0);
    free(remap);
    free(state);
    product_list_free(&pl);
    db_history_free(h);
    return st;
}

int db_load_calendar(PGconn *conn, const db_load_opts *o, int *period, int32_t *day0, int *n_periods) {
    return detect_calendar(conn, o, period, day0, n_periods);
}
