/* db_products.c - the product catalogue (see db_products.h). */
#include "db_products.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "eng_util.h"

void db_product_ids_free(char **ids, int n) {
    if (!ids) return;
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

int db_product_ids(PGconn *conn, char ***ids, int *n) {
    *ids = NULL;
    *n = 0;
    PGresult *r = PQexecParams(conn, "SELECT product_id FROM products ORDER BY product_id", 0, NULL, NULL, NULL, NULL, 0);
    char **v = NULL;
    int st = ENG_OK, k = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char msg[1024];
        st = eng_err_set(ENG_EDB, "listing products: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
        goto cleanup;
    }
    const int rows = PQntuples(r);
    if (!(v = eng_calloc((size_t)rows + 1, sizeof *v))) { st = ENG_ENOMEM; goto cleanup; }
    for (; k < rows; k++)
        if (!(v[k] = strdup(PQgetvalue(r, k, 0)))) { st = eng_err_set(ENG_ENOMEM, "product list: out of memory"); goto cleanup; }
cleanup:
    PQclear(r);
    if (st) db_product_ids_free(v, k);
    else *ids = v, *n = k;
    return st;
}

/* Index of id in the sorted copy; -1 when absent. */
typedef struct pushed_key { const char *id; int i; } pushed_key;
static int pushed_cmp(const void *a, const void *b) {
    return strcmp(((const pushed_key *)a)->id, ((const pushed_key *)b)->id);
}

int db_pushed_prices(PGconn *conn, const char *run_id, const char *const *ids, int n, double *price_out, int *n_found) {
    *n_found = 0;
    for (int i = 0; i < n; i++) price_out[i] = NAN;
    const char *params[1] = {run_id};
    PGresult *r = PQexecParams(conn, "SELECT product_id, price::text FROM price_recommendations WHERE run_id = $1", 1,
                               NULL, params, NULL, NULL, 0);
    pushed_key *keys = NULL;
    int st = ENG_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char msg[1024];
        st = eng_err_set(ENG_EDB, "reading pushed prices: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
        goto cleanup;
    }
    if (!(keys = eng_malloc((size_t)(n > 0 ? n : 1) * sizeof *keys))) { st = ENG_ENOMEM; goto cleanup; }
    for (int i = 0; i < n; i++) keys[i] = (pushed_key){ids[i], i};
    qsort(keys, (size_t)n, sizeof *keys, pushed_cmp);
    for (int k = 0; k < PQntuples(r); k++) {
        pushed_key q = {PQgetvalue(r, k, 0), -1};
        const pushed_key *hit = bsearch(&q, keys, (size_t)n, sizeof *keys, pushed_cmp);
        if (!hit || isfinite(price_out[hit->i])) continue;
        price_out[hit->i] = strtod(PQgetvalue(r, k, 1), NULL);
        (*n_found)++;
    }
cleanup:
    PQclear(r);
    free(keys);
    return st;
}
