/* db_load_shard.h - what an MPI rank needs to load only its own products (docs/mpi.md):
 * the window's catalogue (every product id the loader would read, in its order, with the
 * window's calendar) and the expansion of a rank's own history into a catalogue-sized one. */
#ifndef DB_LOAD_SHARD_H
#define DB_LOAD_SHARD_H

#include <stdint.h>

#include <libpq-fe.h>

#include "db_history.h"
#include "db_load.h"

typedef struct db_catalogue {
    int n;               /* products in the products table (opts' product filter applied) */
    char **ids;          /* [n] owned, in the loader's order (ORDER BY product_id: the database's collation) */
    char **names;        /* [n] owned, NULL entries where the name is NULL */
    int period_days;     /* the window's calendar, as db_load_history detects it for opts */
    int32_t day0;
    int n_periods;
} db_catalogue;

/* Session setup and calendar detection of db_load_history (data/db_load.c) for opts: window,
 * product filter.  Return 0 or ENG_EDB / ENG_ENOMEM. */
int db_load_session(PGconn *conn, const db_load_opts *o);
int db_load_calendar(PGconn *conn, const db_load_opts *o, int *period, int32_t *day0, int *n_periods);

/* The id-only catalogue of opts (window, product filter, period_days; every value a parameter or
 * a temporary table row): c (caller's struct) filled; free with db_catalogue_free (also after a
 * failure).  Returns 0, ENG_EDB, ENG_ENOMEM, ENG_EINVAL. */
int db_load_catalogue(PGconn *conn, const db_load_opts *opts, db_catalogue *c);
void db_catalogue_free(db_catalogue *c);

/* After db_load_catalogue on the same session (its window and product filter): the rows of
 * sales and competitor_prices whose product is not in the products table, added to rep as the
 * loader's unknown_product rejects (one entry and one count per row; rows_sales /
 * rows_competitor grow by them): what no sharded load sees.  Returns 0, ENG_EDB, ENG_ENOMEM. */
int db_load_unknown(PGconn *conn, const db_load_opts *opts, db_load_report *rep);

/* Blank product p of h: no rows (present 0, NaN prices, units, revenue, traffic, promo 1, its
 * competitor prices NaN), NaN base/cost/bounds, scale -1, pinned (explore_off 1 where h has the
 * column).  What a rank holds of another rank's product.  Never fails. */
void db_history_blank_product(db_history *h, int p);

/* A history of n products (ids[i], names[i]: copied; names may be NULL) on own's calendar, own's
 * product k in slot[k] (strictly increasing, < n) with all its columns, competitor prices and
 * logged cells, every other product blank (db_history_blank_product; explore_off allocated).
 * *out: caller frees with db_history_free.  Returns 0, ENG_EINVAL (bad slots), ENG_ENOMEM. */
int db_history_expand(const db_history *own, int n, char *const *ids, char *const *names, const int *slot,
                      db_history **out);

#endif
