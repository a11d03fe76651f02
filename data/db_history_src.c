/* db_history_src.c - the history loader shared by `rlprice compare` and `rlprice report`
 * (db_history_src.h). */
#include "db_history_src.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "db_csvread.h"
#include "db_h5store.h"
#include "db_import.h"
#include "db_load.h"
#include "eng_util.h"

/* A copy of h restricted to the listed products (in list order).  Unknown id: ENG_ENOTFOUND. */
static int history_subset(const db_history *h, const char *const *ids, int n, db_history **out) {
    db_history *s = NULL;
    int rc = db_history_alloc(&s, n, h->n_periods, h->day0, h->period_days);
    if (rc) return rc;
    const size_t T = (size_t)h->n_periods;
    size_t n_comp = 0;
    int *src = malloc((size_t)n * sizeof *src);
    if (!src) {
        rc = eng_err_set(ENG_ENOMEM, "history: out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        if ((src[i] = db_history_find(h, ids[i])) < 0) {
            rc = eng_err_set(ENG_ENOTFOUND, "--products: no product '%s' in the history", ids[i]);
            goto fail;
        }
        n_comp += (size_t)(h->comp_off[(src[i] + 1) * T] - h->comp_off[src[i] * T]);
    }
    s->n_competitors = 0;
    if (h->n_competitors) {
        s->competitor_names = calloc((size_t)h->n_competitors, sizeof *s->competitor_names);
        if (!s->competitor_names) goto oom;
        s->n_competitors = h->n_competitors;
        for (int k = 0; k < h->n_competitors; k++)
            if (!(s->competitor_names[k] = strdup(h->competitor_names[k]))) goto oom;
    }
    free(s->comp_id);
    free(s->comp_price);
    s->comp_id = malloc((n_comp ? n_comp : 1) * sizeof *s->comp_id);
    s->comp_price = malloc((n_comp ? n_comp : 1) * sizeof *s->comp_price);
    if (!s->comp_id || !s->comp_price) goto oom;
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        int p = src[i];
        free(s->product_id[i]);
        if (!(s->product_id[i] = strdup(h->product_id[p]))) goto oom;
        if (h->name[p] && !(s->name[i] = strdup(h->name[p]))) goto oom;
        db_history_copy_product(s, i, h, p);
        for (size_t t = 0; t < T; t++) {
            size_t c = p * T + t;
            s->comp_off[i * T + t] = (int64_t)w;
            for (int64_t j = h->comp_off[c]; j < h->comp_off[c + 1]; j++, w++) {
                s->comp_id[w] = h->comp_id[j];
                s->comp_price[w] = h->comp_price[j];
            }
        }
    }
    s->comp_off[(size_t)n * T] = (int64_t)w;
    free(src);
    *out = s;
    return 0;
oom:
    rc = eng_err_set(ENG_ENOMEM, "history: out of memory");
fail:
    free(src);
    db_history_free(s);
    return rc;
}

int db_history_src_load(const db_history_src *s, db_history **h, char *desc, size_t n) {
    *h = NULL;
    if (n) desc[0] = 0;
    if (!!s->db + !!s->cache + !!s->preset > 1) {
        eng_err_set(ENG_EINVAL, "give at most one of --db, --cache, --preset");
        return 2;
    }
    int st, code = 0;
    PGconn *conn = NULL;
    if (s->cache) {
        if ((st = db_history_load_h5(h, s->cache)) != ENG_OK) code = st == ENG_ENOTFOUND || st == ENG_EFORMAT ? 2 : 1;
        snprintf(desc, n, "HDF5 cache %s", s->cache);
    } else if (s->preset) {
        if (strcmp(s->preset, "dominicks") != 0) {
            eng_err_set(ENG_EINVAL, "unknown preset '%s' (known: dominicks)", s->preset);
            return 2;
        }
        db_dominicks_opts o;
        db_csv_log log;
        memset(&o, 0, sizeof o);
        memset(&log, 0, sizeof log);
        long filtered = 0;
        st = db_dominicks_read(h, &o, &log, &filtered);
        char sum[512] = "";
        db_csv_log_summary(&log, sum, sizeof sum);
        db_csv_log_free(&log);
        if (st != ENG_OK) code = 2;
        snprintf(desc, n, "Dominick's orange juice preset (read in memory%s%s)", *sum ? "; " : "", sum);
    } else {
        if (db_resolve(&conn, s->db) != ENG_OK) return 3;
        db_load_opts o;
        db_load_opts_default(&o);
        o.products = s->products;
        o.n_filter = s->products ? s->n_products : 0;
        db_load_report rep;
        memset(&rep, 0, sizeof rep);
        st = db_load_history(conn, &o, h, &rep);
        db_load_report_free(&rep);
        snprintf(desc, n, "postgres:%s", db_describe(conn));
        db_disconnect(conn);
        if (st != ENG_OK) code = st == ENG_EDB ? 3 : st == ENG_EINVAL ? 2 : 1;
        conn = NULL;
    }
    if (code) {
        db_history_free(*h);
        *h = NULL;
        return code;
    }
    if (s->products && (s->cache || s->preset)) { /* the database filtered while loading */
        db_history *sub = NULL;
        if ((st = history_subset(*h, s->products, s->n_products, &sub))) {
            db_history_free(*h);
            *h = NULL;
            return st == ENG_ENOTFOUND ? 2 : 1;
        }
        db_history_free(*h);
        *h = sub;
    }
    return 0;
}
