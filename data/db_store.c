/* db_store.c - see db_store.h. */
#include "db_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_copybuf.h"
#include "eng_util.h"

static const db_history *cmp_ids_h;
static int cmp_ids(const void *a, const void *b) {
    return strcmp(cmp_ids_h->product_id[*(const int *)a], cmp_ids_h->product_id[*(const int *)b]);
}
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Checks ids and competitor indices; fills bp[] with the base price to write. */
static int store_check(const db_history *h, double *bp) {
    int st = ENG_OK;
    size_t T = (size_t)h->n_periods;
    int *idx = eng_malloc(((size_t)h->n_products + 1) * sizeof(int));
    float *tmp = eng_malloc((T + 1) * sizeof(float));
    if (!idx || !tmp) { st = ENG_ENOMEM; goto cleanup; }
    for (int p = 0; p < h->n_products; p++) {
        if (!h->product_id[p] || !h->product_id[p][0]) {
            st = eng_err_set(ENG_EINVAL, "db_history_store: product %d has an empty id", p);
            goto cleanup;
        }
        idx[p] = p;
    }
    cmp_ids_h = h; /* qsort has no context argument; single-threaded use */
    qsort(idx, (size_t)h->n_products, sizeof(int), cmp_ids);
    for (int i = 1; i < h->n_products; i++)
        if (strcmp(h->product_id[idx[i - 1]], h->product_id[idx[i]]) == 0) {
            st = eng_err_set(ENG_EINVAL, "db_history_store: product id '%s' appears twice", h->product_id[idx[i]]);
            goto cleanup;
        }
    for (int p = 0; p < h->n_products; p++) {
        bp[p] = h->base_price[p];
        if (isfinite(bp[p])) continue;
        size_t k = 0;
        for (size_t t = 0; t < T; t++) {
            size_t c = (size_t)p * T + t;
            if (h->present[c] && isfinite(h->price[c])) tmp[k++] = h->price[c];
        }
        if (!k) {
            st = eng_err_set(ENG_EINVAL, "db_history_store: product '%s' has no base price and no observed price",
                             h->product_id[p]);
            goto cleanup;
        }
        qsort(tmp, k, sizeof(float), cmp_float);
        bp[p] = k % 2 ? tmp[k / 2] : 0.5 * ((double)tmp[k / 2 - 1] + (double)tmp[k / 2]);
    }
    size_t cells = (size_t)h->n_products * T;
    if (h->comp_off[0] != 0) {
        st = eng_err_set(ENG_EINVAL, "db_history_store: comp_off[0] = %lld, expected 0", (long long)h->comp_off[0]);
        goto cleanup;
    }
    for (size_t c = 0; c < cells; c++) {
        if (h->comp_off[c + 1] < h->comp_off[c]) {
            st = eng_err_set(ENG_EINVAL, "db_history_store: competitor offsets decrease at cell %zu", c);
            goto cleanup;
        }
    }
    for (int64_t k = 0; k < h->comp_off[cells]; k++)
        if (h->comp_id[k] < 0 || h->comp_id[k] >= h->n_competitors || !h->competitor_names[h->comp_id[k]]) {
            st = eng_err_set(ENG_EINVAL, "db_history_store: competitor index %d out of range (%d names)",
                             h->comp_id[k], h->n_competitors);
            goto cleanup;
        }
cleanup:
    free(idx);
    free(tmp);
    return st;
}

/* Run a "WITH u AS (... RETURNING (xmax = 0) AS ins) SELECT inserted, updated" query. */
static int store_upsert(PGconn *c, const char *sql, const char *what, long *ins, long *upd) {
    PGresult *res = PQexec(c, sql);
    int st = ENG_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        st = eng_err_set(ENG_EDB, "%s: %s", what, PQresultErrorMessage(res));
    } else {
        *ins = atol(PQgetvalue(res, 0, 0));
        *upd = atol(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return st;
}

static int store_delete(PGconn *c, const char *sql, const char *lo, const char *hi, long *n) {
    const char *params[2] = {lo, hi};
    PGresult *res = PQexecParams(c, sql, 2, NULL, params, NULL, NULL, 0);
    int st = ENG_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) st = eng_err_set(ENG_EDB, "replacing the window: %s", PQresultErrorMessage(res));
    else *n = atol(PQcmdTuples(res));
    PQclear(res);
    return st;
}

/* COPY the products of h (base prices bp, category) into the staging table.  Returns 0 or
 * ENG_EDB / ENG_ENOMEM. */
static int store_copy_products(PGconn *c, const db_history *h, const double *bp, const char *category, double t0) {
    db_copybuf b;
    memset(&b, 0, sizeof b);
    int st;
    /* products */
    st = db_copybuf_begin(&b, c, "COPY rlp_st_products FROM STDIN");
    if (st) return st;
    for (int p = 0; p < h->n_products && !b.status; p++) {
        db_copybuf_text(&b, h->product_id[p]);
        db_copybuf_text(&b, h->name[p]);
        db_copybuf_double(&b, bp[p]);
        db_copybuf_double(&b, h->unit_cost[p]);
        db_copybuf_double(&b, h->min_price[p]);
        db_copybuf_double(&b, h->max_price[p]);
        db_copybuf_double(&b, h->max_change_pct[p]);
        db_copybuf_text(&b, category);
        db_copybuf_eol(&b);
    }
    st = db_copybuf_end(&b, "db_history_store: COPY products");
    ENG_DEBUG("db_history_store: %s done at %.2f s", "COPY products", eng_now() - t0);
    return st;
}

/* COPY the present sales cells of h into the staging table.  Returns 0 or ENG_EDB / ENG_ENOMEM. */
static int store_copy_sales(PGconn *c, const db_history *h, double t0) {
    db_copybuf b;
    memset(&b, 0, sizeof b);
    const size_t T = (size_t)h->n_periods;
    int st;
    /* sales */
    st = db_copybuf_begin(&b, c, "COPY rlp_st_sales FROM STDIN");
    if (st) return st;
    for (int p = 0; p < h->n_products && !b.status; p++)
        for (size_t t = 0; t < T; t++) {
            size_t cell = (size_t)p * T + t;
            if (!h->present[cell]) continue;
            db_copybuf_text(&b, h->product_id[p]);
            db_copybuf_date(&b, h->day0 + (int32_t)t * h->period_days);
            db_copybuf_double(&b, h->price[cell]);
            db_copybuf_float(&b, h->units[cell]);
            db_copybuf_float(&b, h->revenue[cell]);
            db_copybuf_float(&b, h->traffic[cell]);
            db_copybuf_bool(&b, h->promo[cell] != 0);
            db_copybuf_eol(&b);
        }
    st = db_copybuf_end(&b, "db_history_store: COPY sales");
    ENG_DEBUG("db_history_store: %s done at %.2f s", "COPY sales", eng_now() - t0);
    return st;
}

/* COPY the competitor prices of h into the staging table.  Returns 0 or ENG_EDB / ENG_ENOMEM. */
static int store_copy_comp(PGconn *c, const db_history *h, double t0) {
    db_copybuf b;
    memset(&b, 0, sizeof b);
    const size_t T = (size_t)h->n_periods;
    int st;
    /* competitor prices (a competitor listed twice in a cell: the last entry wins) */
    st = db_copybuf_begin(&b, c, "COPY rlp_st_comp FROM STDIN");
    if (st) return st;
    for (int p = 0; p < h->n_products && !b.status; p++)
        for (size_t t = 0; t < T; t++) {
            size_t cell = (size_t)p * T + t;
            if (!h->present[cell]) continue;
            for (int64_t k = h->comp_off[cell]; k < h->comp_off[cell + 1]; k++) {
                int later = 0;
                for (int64_t j = k + 1; j < h->comp_off[cell + 1]; j++) later |= h->comp_id[j] == h->comp_id[k];
                if (later) continue;
                db_copybuf_text(&b, h->product_id[p]);
                db_copybuf_date(&b, h->day0 + (int32_t)t * h->period_days);
                db_copybuf_text(&b, h->competitor_names[h->comp_id[k]]);
                db_copybuf_float(&b, h->comp_price[k]);
                db_copybuf_eol(&b);
            }
        }
    st = db_copybuf_end(&b, "db_history_store: COPY competitor_prices");
    ENG_DEBUG("db_history_store: %s done at %.2f s", "COPY competitor_prices", eng_now() - t0);
    return st;
}

/* Delete the stored rows of h's products in h's window that the staged data does not have
 * (replace_range).  Returns 0 or ENG_EDB. */
static int store_replace_window(PGconn *c, const db_history *h, db_store_report *rep) {
    char lo[11], hi[11];
    db_copybuf_fmt_date(lo, h->day0);
    db_copybuf_fmt_date(hi, h->day0 + (int32_t)(h->n_periods * h->period_days));
    int st = store_delete(c,
                      "DELETE FROM competitor_prices t USING rlp_st_products p WHERE t.product_id = p.product_id"
                      " AND t.day >= $1::date AND t.day < $2::date AND NOT EXISTS (SELECT 1 FROM rlp_st_comp s"
                      " WHERE s.product_id = t.product_id AND s.day = t.day AND s.competitor = t.competitor)",
                      lo, hi, &rep->comp_deleted);
    if (!st)
        st = store_delete(c,
                          "DELETE FROM sales t USING rlp_st_products p WHERE t.product_id = p.product_id"
                          " AND t.day >= $1::date AND t.day < $2::date AND NOT EXISTS (SELECT 1 FROM rlp_st_sales s"
                          " WHERE s.product_id = t.product_id AND s.day = t.day)",
                          lo, hi, &rep->sales_deleted);
    return st;
}


/* Upsert the staged products, sales and competitor prices into the tables, counting inserted
 * and updated rows into rep.  Returns 0 or ENG_EDB. */
static int store_merge(PGconn *c, db_store_report *rep, double t0) {
    int st;
    st = store_upsert(c,
                  "WITH u AS (INSERT INTO products AS t (product_id, name, base_price, unit_cost, min_price,"
                  " max_price, max_change_pct, category) SELECT * FROM rlp_st_products"
                  " ON CONFLICT (product_id) DO UPDATE SET name = COALESCE(EXCLUDED.name, t.name),"
                  " base_price = EXCLUDED.base_price, unit_cost = EXCLUDED.unit_cost,"
                  " min_price = EXCLUDED.min_price, max_price = EXCLUDED.max_price,"
                  " max_change_pct = EXCLUDED.max_change_pct, category = COALESCE(EXCLUDED.category, t.category)"
                  " WHERE (t.name, t.base_price, t.unit_cost, t.min_price, t.max_price, t.max_change_pct, t.category)"
                  " IS DISTINCT FROM (COALESCE(EXCLUDED.name, t.name), EXCLUDED.base_price, EXCLUDED.unit_cost,"
                  " EXCLUDED.min_price, EXCLUDED.max_price, EXCLUDED.max_change_pct,"
                  " COALESCE(EXCLUDED.category, t.category)) RETURNING (xmax = 0) AS ins)"
                  " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM u",
                  "db_history_store: writing products", &rep->products_inserted, &rep->products_updated);
    ENG_DEBUG("db_history_store: %s done at %.2f s", "upsert products", eng_now() - t0);
    if (st) return st;
    st = store_upsert(c,
                  "WITH u AS (INSERT INTO sales AS t (product_id, day, price, units, revenue, traffic, promo)"
                  " SELECT * FROM rlp_st_sales ON CONFLICT (product_id, day) DO UPDATE SET"
                  " price = EXCLUDED.price, units = EXCLUDED.units, revenue = EXCLUDED.revenue,"
                  " traffic = EXCLUDED.traffic, promo = EXCLUDED.promo WHERE (t.price, t.units, t.revenue, t.traffic, t.promo)"
                  " IS DISTINCT FROM (EXCLUDED.price, EXCLUDED.units, EXCLUDED.revenue, EXCLUDED.traffic, EXCLUDED.promo)"
                  " RETURNING (xmax = 0) AS ins)"
                  " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM u",
                  "db_history_store: writing sales", &rep->sales_inserted, &rep->sales_updated);
    ENG_DEBUG("db_history_store: %s done at %.2f s", "upsert sales", eng_now() - t0);
    if (st) return st;
    st = store_upsert(c,
                  "WITH u AS (INSERT INTO competitor_prices AS t (product_id, day, competitor, price)"
                  " SELECT * FROM rlp_st_comp ON CONFLICT (product_id, day, competitor) DO UPDATE SET"
                  " price = EXCLUDED.price WHERE t.price IS DISTINCT FROM EXCLUDED.price RETURNING (xmax = 0) AS ins)"
                  " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM u",
                  "db_history_store: writing competitor_prices", &rep->comp_inserted, &rep->comp_updated);
    ENG_DEBUG("db_history_store: %s done at %.2f s", "upsert competitor_prices", eng_now() - t0);
    return st;
}

int db_history_store(PGconn *c, const db_history *h, const db_store_opts *o, db_store_report *r) {
    db_store_opts defaults = {0, NULL};
    db_store_report rep;
    memset(&rep, 0, sizeof rep);
    if (!o) o = &defaults;
    if (!c || !h) return eng_err_set(ENG_EINVAL, "db_history_store: NULL connection or history");
    double t0 = eng_now();
    int st = ENG_OK, in_tx = 0;
    double *bp = eng_malloc(((size_t)h->n_products + 1) * sizeof(double));
    if (!bp) return ENG_ENOMEM;
    st = store_check(h, bp);
    if (st) goto cleanup;

    st = db_copybuf_exec(c, "BEGIN", "db_history_store: BEGIN");
    if (st) goto cleanup;
    in_tx = 1;
    st = db_copybuf_exec(c,
                         "CREATE TEMP TABLE rlp_st_products (product_id text, name text, base_price numeric,"
                         " unit_cost numeric, min_price numeric, max_price numeric, max_change_pct numeric,"
                         " category text) ON COMMIT DROP;"
                         "CREATE TEMP TABLE rlp_st_sales (product_id text, day date, price numeric, units numeric,"
                         " revenue numeric, traffic numeric, promo boolean) ON COMMIT DROP;"
                         "CREATE TEMP TABLE rlp_st_comp (product_id text, day date, competitor text, price numeric)"
                         " ON COMMIT DROP",
                         "db_history_store: creating staging tables");
    if (st) goto cleanup;

    if ((st = store_copy_products(c, h, bp, o->category, t0))) goto cleanup;
    if ((st = store_copy_sales(c, h, t0))) goto cleanup;
    if ((st = store_copy_comp(c, h, t0))) goto cleanup;
    if (o->replace_range && (st = store_replace_window(c, h, &rep))) goto cleanup;
    if ((st = store_merge(c, &rep, t0))) goto cleanup;
    st = db_copybuf_exec(c, "COMMIT", "db_history_store: COMMIT");
    in_tx = 0;
    if (st) goto cleanup;
    rep.seconds = eng_now() - t0;
    if (r) *r = rep;
cleanup:
    if (in_tx) {
        PGresult *res = PQexec(c, "ROLLBACK");
        PQclear(res);
    }
    free(bp);
    return st;
}
