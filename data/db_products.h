/* db_products.h - the product catalogue as the commands see it (all SQL in data/). */
#ifndef DB_PRODUCTS_H
#define DB_PRODUCTS_H

#include <libpq-fe.h>

/* Every products.product_id, sorted.  *ids (malloc'd array of malloc'd strings; free each and
 * the array, or db_product_ids_free) and *n; on failure *ids is NULL and *n 0.  Returns 0,
 * ENG_EDB (server message, redacted), ENG_ENOMEM. */
int db_product_ids(PGconn *conn, char ***ids, int *n);
void db_product_ids_free(char **ids, int n);

/* The prices run `run_id` pushed (price_recommendations.price), read back the way a shop reads
 * them, for the products ids[0..n): price_out[i] = the pushed decimal as the nearest double, NaN
 * where the run pushed nothing for ids[i].  *n_found counts the products found.  Returns 0,
 * ENG_EDB (server message, redacted), ENG_ENOMEM. */
int db_pushed_prices(PGconn *conn, const char *run_id, const char *const *ids, int n, double *price_out, int *n_found);

#endif
