/* db_products.c - the product catalogue (see db_products.h). */
#include "db_products.h"

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
