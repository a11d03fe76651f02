/* db_store.h - write a db_history into the rlprice schema (products, sales,
 * competitor_prices) with COPY, in one transaction.
 *
 * Semantics (upsert, so storing the same history twice leaves the same rows, never
 * duplicates; a row that already holds the same values is left alone and counted as
 * neither inserted nor updated):
 *   - products: one row per product of h, keyed by product_id.  Existing rows are updated:
 *     base_price, unit_cost, min_price, max_price and max_change_pct are replaced (NaN ->
 *     NULL); name and category are replaced only when given (non-NULL), otherwise kept.
 *     A NaN base_price is replaced by the median of the product's observed prices (a
 *     product with neither is an error: products.base_price is NOT NULL).
 *   - sales: one row per present cell (present[c] = 1), day = day0 + t * period_days,
 *     keyed by (product_id, day); an existing row for the key is replaced.  NaN -> NULL.
 *   - competitor_prices: one row per ragged entry of a present cell, keyed by (product_id,
 *     day, competitor); an existing row is replaced.
 *   - with opts->replace_range = 1, rows of h's products whose day lies in h's calendar
 *     [day0, day0 + n_periods * period_days) but that h does not hold are deleted first, so
 *     the database then holds exactly h for that window (what a re-simulation wants).
 * Every value travels in the COPY stream (text format, escaped), so ids with quotes,
 * semicolons, backslashes, tabs or newlines round-trip unchanged. */
#ifndef DB_STORE_H
#define DB_STORE_H

#include <libpq-fe.h>

#include "db_history.h"

typedef struct db_store_opts {
    int replace_range;       /* 1: delete h's products' rows in h's window first (see above) */
    const char *category;    /* products.category for every product, or NULL to keep */
} db_store_opts;

typedef struct db_store_report {
    long products_inserted, products_updated;
    long sales_inserted, sales_updated;
    long comp_inserted, comp_updated;
    long sales_deleted, comp_deleted; /* by replace_range */
    double seconds;
} db_store_report;

/* Store h on connection c (which must not be inside a transaction: this function runs
 * BEGIN ... COMMIT itself).  o and r may be NULL.  Returns 0, or ENG_EINVAL (bad history:
 * duplicate/empty product id, no base price), ENG_EDB (server error; the transaction is
 * rolled back, nothing is written) or ENG_ENOMEM.  Nothing to free. */
int db_history_store(PGconn *c, const db_history *h, const db_store_opts *o, db_store_report *r);

#endif
