/* db_load_shard.c - the catalogue query and the catalogue-sized history of an MPI rank
 * (db_load_shard.h; docs/mpi.md "Each rank loads its shard"). */
#include "db_load_shard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "eng_util.h"

/* The loader's product query without its columns (data/db_load.c PRODUCTS_Q): same order. */
static const char Q_CAT_ALL[] = "SELECT product_id, name FROM products ORDER BY product_id";
static const char Q_CAT_FILTER[] = "SELECT product_id, name FROM products"
                                   " WHERE product_id IN (SELECT product_id FROM pg_temp.rlprice_filter)"
                                   " ORDER BY product_id";

void db_catalogue_free(db_catalogue *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) { free(c->ids ? c->ids[i] : NULL); free(c->names ? c->names[i] : NULL); }
    free(c->ids);
    free(c->names);
    memset(c, 0, sizeof *c);
}

int db_load_catalogue(PGconn *conn, const db_load_opts *opts, db_catalogue *c) {
    memset(c, 0, sizeof *c);
    if (!conn || !opts || opts->n_filter < 0 || (opts->n_filter > 0 && !opts->products) || opts->period_days < 0)
        return eng_err_set(ENG_EINVAL, "db_load_catalogue: bad options");
    db_load_opts o = *opts;
    o.shard_count = 0; /* the whole catalogue */
    o.cal_fixed = 0;
    int st = db_load_session(conn, &o);
    if (!st) st = db_load_calendar(conn, &o, &c->period_days, &c->day0, &c->n_periods);
    if (st) return st;
    PGresult *r = PQexec(conn, o.products ? Q_CAT_FILTER : Q_CAT_ALL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char msg[1024];
        st = eng_err_set(ENG_EDB, "loader catalogue: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
        PQclear(r);
        return st;
    }
    const int n = PQntuples(r);
    c->ids = eng_calloc((size_t)(n ? n : 1), sizeof(char *));
    c->names = eng_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!c->ids || !c->names) { st = ENG_ENOMEM; goto done; }
    for (int i = 0; i < n; i++, c->n++) {
        c->ids[i] = strdup(PQgetvalue(r, i, 0));
        c->names[i] = PQgetisnull(r, i, 1) ? NULL : strdup(PQgetvalue(r, i, 1));
        if (!c->ids[i] || (!PQgetisnull(r, i, 1) && !c->names[i])) { c->n++; st = eng_err_set(ENG_ENOMEM, "out of memory"); goto done; }
    }
done:
    PQclear(r);
    return st;
}

/* Rows of the window (and product filter) whose product is not in the products table: the
 * loader's unknown_product rejects, which no rank's product list reaches (the catalogue holds
 * only known products).  Text results: the key is the loader's (id|day[|competitor]). */
#define WINDOW_Q "day >= (SELECT current_setting('rlprice.from')::date) AND day <= (SELECT current_setting('rlprice.to')::date)"
#define UNKNOWN_Q " AND NOT EXISTS (SELECT 1 FROM products p WHERE p.product_id = t.product_id)"
#define FILTER_Q " AND product_id IN (SELECT product_id FROM pg_temp.rlprice_filter)"
static const char *const Q_UNKNOWN[2][2] = { /* [competitor][filtered] */
    {"SELECT product_id, day, NULL FROM sales t WHERE " WINDOW_Q UNKNOWN_Q " ORDER BY 1, 2",
     "SELECT product_id, day, NULL FROM sales t WHERE " WINDOW_Q FILTER_Q UNKNOWN_Q " ORDER BY 1, 2"},
    {"SELECT product_id, day, competitor FROM competitor_prices t WHERE " WINDOW_Q UNKNOWN_Q " ORDER BY 1, 2, 3",
     "SELECT product_id, day, competitor FROM competitor_prices t WHERE " WINDOW_Q FILTER_Q UNKNOWN_Q " ORDER BY 1, 2, 3"}};

static int add_unknown(db_load_report *rep, const char *table, const char *id, const char *day, const char *comp) {
    if (rep->n_rejects == rep->cap_rejects) {
        size_t nc = rep->cap_rejects ? rep->cap_rejects * 2 : 64;
        db_reject *nr = realloc(rep->rejects, nc * sizeof *nr);
        if (!nr) return ENG_ENOMEM;
        rep->rejects = nr;
        rep->cap_rejects = nc;
    }
    size_t n = strlen(id) + (day ? strlen(day) : 0) + (comp ? strlen(comp) : 0) + 3;
    char *key = malloc(n);
    if (!key) return ENG_ENOMEM;
    snprintf(key, n, "%s%s%s%s%s", id, day ? "|" : "", day ? day : "", comp ? "|" : "", comp ? comp : "");
    rep->rejects[rep->n_rejects++] = (db_reject){table, key, DB_REJ_UNKNOWN_PRODUCT};
    rep->by_reason[DB_REJ_UNKNOWN_PRODUCT]++;
    rep->n_rejected++;
    return ENG_OK;
}

int db_load_unknown(PGconn *conn, const db_load_opts *opts, db_load_report *rep) {
    int st = ENG_OK;
    for (int comp = 0; comp < 2 && !st; comp++) {
        PGresult *r = PQexec(conn, Q_UNKNOWN[comp][opts->products != NULL]);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            char msg[1024];
            st = eng_err_set(ENG_EDB, "loader unknown products: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
        }
        const int n = st ? 0 : PQntuples(r);
        for (int i = 0; i < n && !st; i++)
            st = add_unknown(rep, comp ? "competitor_prices" : "sales", PQgetvalue(r, i, 0),
                             PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1), comp ? PQgetvalue(r, i, 2) : NULL);
        if (comp) rep->rows_competitor += n;
        else rep->rows_sales += n;
        PQclear(r);
    }
    return st == ENG_ENOMEM ? eng_err_set(ENG_ENOMEM, "out of memory recording rejected rows") : st;
}

void db_history_blank_product(db_history *h, int p) {
    const int T = h->n_periods;
    h->base_price[p] = h->unit_cost[p] = h->min_price[p] = h->max_price[p] = h->max_change_pct[p] = NAN;
    if (h->price_scale) h->price_scale[p] = -1;
    if (h->explore_off) h->explore_off[p] = 1;
    for (int t = 0; t < T; t++) {
        size_t c = (size_t)p * T + t;
        h->price[c] = NAN;
        h->units[c] = h->revenue[c] = h->traffic[c] = NAN;
        if (h->promo) h->promo[c] = 1;
        h->present[c] = 0;
        if (h->comp_off)
            for (int64_t o = h->comp_off[c]; o < h->comp_off[c + 1]; o++) h->comp_price[o] = NAN;
    }
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Competitor prices and names of own into h (own's product k at slot[k]). */
static int expand_comp(const db_history *own, const int *slot, db_history *h) {
    const size_t T = (size_t)h->n_periods, total = own->comp_off ? (size_t)own->comp_off[(size_t)own->n_products * T] : 0;
    h->comp_id = eng_malloc((total ? total : 1) * sizeof(int32_t));
    h->comp_price = eng_malloc((total ? total : 1) * sizeof(float));
    h->competitor_names = eng_calloc((size_t)(own->n_competitors ? own->n_competitors : 1), sizeof(char *));
    if (!h->comp_id || !h->comp_price || !h->competitor_names) return ENG_ENOMEM;
    for (int k = 0; k < own->n_competitors; k++, h->n_competitors++)
        if (!(h->competitor_names[k] = strdup(own->competitor_names[k]))) return ENG_ENOMEM;
    int64_t o = 0;
    int k = 0;
    for (int p = 0; p < h->n_products; p++) {
        const int mine = k < own->n_products && slot[k] == p;
        for (size_t t = 0; t < T; t++) {
            const size_t c = (size_t)p * T + t;
            h->comp_off[c] = o;
            if (!mine || !own->comp_off) continue;
            const size_t oc = (size_t)k * T + t;
            for (int64_t j = own->comp_off[oc]; j < own->comp_off[oc + 1]; j++, o++) {
                h->comp_id[o] = own->comp_id[j];
                h->comp_price[o] = own->comp_price[j];
            }
        }
        k += mine;
    }
    h->comp_off[(size_t)h->n_products * T] = o;
    return ENG_OK;
}

/* Logged cells of own into h, re-indexed (ascending stays ascending: slots increase). */
static int expand_logged(const db_history *own, const int *slot, db_history *h) {
    const size_t n = own->n_logged, T = (size_t)h->n_periods;
    if (!n || !own->logged_cell) return ENG_OK;
    const size_t ns = (size_t)own->logged_off[n];
    h->logged_cell = eng_malloc(n * sizeof(int64_t));
    h->logged_prop = eng_malloc(n * sizeof(double));
    h->logged_off = eng_malloc((n + 1) * sizeof(int32_t));
    h->logged_sprice = eng_malloc((ns ? ns : 1) * sizeof(double));
    h->logged_sprob = eng_malloc((ns ? ns : 1) * sizeof(double));
    if (!h->logged_cell || !h->logged_prop || !h->logged_off || !h->logged_sprice || !h->logged_sprob) return ENG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const int64_t c = own->logged_cell[i];
        h->logged_cell[i] = (int64_t)slot[c / (int64_t)T] * (int64_t)T + c % (int64_t)T;
        h->logged_prop[i] = own->logged_prop[i];
    }
    memcpy(h->logged_off, own->logged_off, (n + 1) * sizeof(int32_t));
    if (ns) {
        memcpy(h->logged_sprice, own->logged_sprice, ns * sizeof(double));
        memcpy(h->logged_sprob, own->logged_sprob, ns * sizeof(double));
    }
    h->n_logged = n;
    return ENG_OK;
}

int db_history_expand(const db_history *own, int n, char *const *ids, char *const *names, const int *slot,
                      db_history **out) {
    *out = NULL;
    if (!own || n < own->n_products || !ids || (own->n_products && !slot))
        return eng_err_set(ENG_EINVAL, "db_history_expand: bad arguments");
    for (int k = 0; k < own->n_products; k++)
        if (slot[k] < 0 || slot[k] >= n || (k && slot[k] <= slot[k - 1]))
            return eng_err_set(ENG_EINVAL, "db_history_expand: slots must increase within the catalogue");
    db_history *h = NULL;
    int st = db_history_alloc(&h, n, own->n_periods, own->day0, own->period_days);
    if (st) return st;
    h->explore_off = eng_calloc((size_t)(n ? n : 1), 1);
    if (!h->explore_off) { st = ENG_ENOMEM; goto done; }
    int k = 0;
    for (int p = 0; p < n; p++) {
        if (!(h->product_id[p] = strdup(ids[p])) || (names && names[p] && !(h->name[p] = strdup(names[p])))) {
            st = ENG_ENOMEM;
            goto done;
        }
        if (!(k < own->n_products && slot[k] == p)) { db_history_blank_product(h, p); continue; }
        free(h->name[p]); /* own's name (the same row of products) */
        if (own->name[k] && !(h->name[p] = dup_or_null(own->name[k]))) { st = ENG_ENOMEM; goto done; }
        if (!own->name[k]) h->name[p] = NULL;
        db_history_copy_product(h, p, own, k);
        h->explore_off[p] = own->explore_off ? own->explore_off[k] : 0;
        k++;
    }
    if ((st = expand_comp(own, slot, h))) goto done;
    if ((st = expand_logged(own, slot, h))) goto done;
    *out = h;
    h = NULL;
done:
    db_history_free(h);
    return st == ENG_ENOMEM ? eng_err_set(ENG_ENOMEM, "out of memory expanding the history") : st;
}
