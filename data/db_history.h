/* db_history.h - a validated sales history held in memory, per-product contiguous columns.
 *
 * This is the hand-off between the data layer (which fills it from PostgreSQL, CSV or the
 * HDF5 feature store, and which the market simulator also fills) and features/env.
 *
 * Calendar: all products share one calendar of n_periods periods starting at day0, each
 * period_days long (1 = daily, 7 = weekly).  Column arrays are [n_products][n_periods]
 * (index p * n_periods + t).  A (p, t) without a clean sales row has present = 0 and NaN
 * in the float columns.  Missing traffic (NULL in the database, or a source without
 * traffic) is NaN with present = 1.
 *
 * Competitor prices are ragged: for cell c = p * n_periods + t, the prices are
 * comp_price[comp_off[c] .. comp_off[c + 1]), with competitor ids in comp_id[] indexing
 * competitor_names[].
 */
#ifndef DB_HISTORY_H
#define DB_HISTORY_H

#include <stddef.h>
#include <stdint.h>

/* The largest price the engine carries exactly: a double holds 15 significant digits, so a
 * price below 1e13 keeps its cents (9,999,999,999,999.99).  Loaders and the import reject
 * larger prices (reason bad_price / bad_product) instead of pushing a rounded one. */
#define DB_PRICE_MAX 1e13
/* Prices are written back with at most this many decimals (the database's scale, capped). */
#define DB_PRICE_SCALE_MAX 10

typedef struct db_history {
    int n_products;
    int n_periods;
    int32_t day0;          /* first period's date, days since 1970-01-01 */
    int period_days;       /* 1 daily, 7 weekly */

    /* per product [n_products]; NaN where the database has NULL */
    char **product_id;     /* owned strings */
    char **name;           /* owned strings, may be NULL entries */
    double *base_price;
    double *unit_cost;
    double *min_price;
    double *max_price;
    double *max_change_pct;

    int8_t *price_scale;   /* decimal digits the database holds for the product's prices
                              (the largest scale of its sales prices and base price: 1.10 -> 2,
                              0.9574 -> 4); -1 = unknown (prices are written in shortest form) */

    /* per (product, period) [n_products * n_periods] */
    double *price;         /* exact: the double nearest the database's decimal, never a float */
    float *units;
    float *revenue;
    float *traffic;        /* NaN = unknown */
    uint8_t *promo;
    uint8_t *present;      /* 1 = a clean sales row exists */

    /* competitor prices, ragged (see above) */
    int n_competitors;
    char **competitor_names; /* [n_competitors], owned */
    int64_t *comp_off;       /* [n_products * n_periods + 1] */
    int32_t *comp_id;        /* [comp_off[last]] */
    float *comp_price;       /* [comp_off[last]] */

    /* What rlprice itself logged (db_load_logged, data/db_logged.c; all NULL / 0 for histories
     * from other sources, the simulator's included):
     *   explore_off[p] = 1: the pricing team pinned product p (products.explore = false): the
     *   nightly never explores its price.  NULL = none pinned.
     *   Logged cells: periods whose price rlprice set (the product's recommendation for that day
     *   was pushed by a finished run and the charged price equals it), ascending by cell
     *   c = p * n_periods + t, with the probability that price was drawn with (logged_prop) and
     *   the whole distribution: support prices logged_sprice[logged_off[i] .. logged_off[i+1])
     *   with probabilities logged_sprob[...] (a deterministic push: {price}, {1}). */
    uint8_t *explore_off;
    size_t n_logged;
    int64_t *logged_cell;    /* [n_logged] */
    double *logged_prop;     /* [n_logged] */
    int32_t *logged_off;     /* [n_logged + 1] */
    double *logged_sprice;   /* [logged_off[n_logged]] */
    double *logged_sprob;    /* [logged_off[n_logged]] */
} db_history;

/* Allocate an empty history with all columns (present = 0, floats NaN, comp lists empty).
 * Caller frees with db_history_free.  Returns 0 or ENG_ENOMEM/ENG_EINVAL. */
int db_history_alloc(db_history **out, int n_products, int n_periods, int32_t day0, int period_days);
void db_history_free(db_history *h);

/* Copy product p of src into slot q of dst: its per-product numbers (base price, cost, price
 * bounds, change limit, price scale: -1 where src has none) and its per-period columns (price,
 * units, revenue, traffic, promo, present).  Not its id and name, competitor prices, pin or
 * logged cells (their layout differs per caller).  dst and src must have the same n_periods;
 * dst may be src (q's columns are moved, overlap allowed).  Never fails. */
void db_history_copy_product(db_history *dst, int q, const db_history *src, int p);

/* Index of a product id, or -1. (Linear scan is fine for tests; loaders keep a hash.) */
int db_history_find(const db_history *h, const char *product_id);

/* Index i of the logged cell c = p * n_periods + t (binary search), or -1 when rlprice did not
 * set that period's price (or the history has no logged cells). */
long db_history_logged_find(const db_history *h, int64_t cell);

/* The mean of cell c's (c = p * n_periods + t) posted competitor prices, over those finite and
 * > 0; NaN when the cell has none (or the history no competitor lists).  Pure. */
double db_history_comp_mean(const db_history *h, size_t c);

/* Bytes held by the column arrays (for the memory figure in `bench db`). */
size_t db_history_bytes(const db_history *h);

#endif
