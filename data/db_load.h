/* db_load.h - load a validated sales history from PostgreSQL into a db_history.
 *
 * Rows stream with COPY ... TO STDOUT (no row-at-a-time queries).  The date window and the
 * product list never enter the SQL text: the window goes through set_config() parameters
 * (rlprice.from / rlprice.to) and the list through a temporary table filled by COPY FROM STDIN.
 *
 * Validation (each bad row is counted, listed in the report and, when opts.run_id is set,
 * written to rejected_rows; the load continues with the clean rows):
 *   products:          bad_product (base_price <= 0 / NaN, or min_price > max_price)
 *   sales:             unknown_product, off_calendar, missing_value (NULL/unparsable units,
 *                      revenue or day), bad_price (NULL, NaN or <= 0), negative_units,
 *                      negative_traffic, revenue_mismatch (|revenue - price*units| >
 *                      rel_tol*|price*units| + abs_tol), zero_traffic_with_sales,
 *                      duplicate_key (a (product, day) seen twice: every copy is dropped)
 *   competitor_prices: unknown_product, off_calendar, bad_price, duplicate_key
 * Calendar gaps (periods missing inside a product's first..last clean period) are reported
 * per product; those cells stay present = 0.  A product with fewer than opts.min_periods
 * clean periods is listed in report.skipped and left out of the history.
 */
#ifndef DB_LOAD_H
#define DB_LOAD_H

#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "db_copy.h"
#include "db_history.h"

enum {
    DB_REJ_UNKNOWN_PRODUCT = 0,
    DB_REJ_OFF_CALENDAR,
    DB_REJ_MISSING_VALUE,
    DB_REJ_BAD_PRICE,
    DB_REJ_NEGATIVE_UNITS,
    DB_REJ_NEGATIVE_TRAFFIC,
    DB_REJ_REVENUE_MISMATCH,
    DB_REJ_ZERO_TRAFFIC,
    DB_REJ_DUPLICATE_KEY,
    DB_REJ_BAD_PRODUCT,
    DB_REJ_COUNT
};
/* "unknown_product", ... (the text stored in rejected_rows.reason); static string. */
const char *db_reject_name(int reason);

typedef struct db_load_opts {
    const char *from;             /* first day "YYYY-MM-DD" (inclusive), NULL = unbounded */
    const char *to;               /* last day (inclusive), NULL = unbounded */
    const char *const *products;  /* product ids to load, NULL = all */
    int n_filter;                 /* entries in products[] */
    double revenue_rel_tol;       /* default 0.02 */
    double revenue_abs_tol;       /* default 0.01 */
    int min_periods;              /* fewer clean periods -> product skipped; default 8 */
    int period_days;              /* 0 = detect (most common gap between distinct days) */
    const char *run_id;           /* non-NULL: rejected rows stored under this run (replacing
                                     that run's earlier ones), in one COPY */
    int shard_count;              /* > 1: load only shard shard_index of shard_count: the
                                     products with md5(product_id)'s first 32 bits equal to
                                     shard_index modulo shard_count (an MPI rank's share,
                                     docs/mpi.md); the calendar (day0, periods) stays that of
                                     every product, so all shards share one period grid.
                                     0 or 1 (default): everything */
    int shard_index;
    int cal_fixed;                /* 1: use this calendar (day0, cal_n_periods periods of period_days,
                                     which must be > 0) instead of detecting it from the rows: an
                                     MPI rank loading its products with the catalogue's calendar */
    int32_t cal_day0;
    int cal_n_periods;
    int text_copy;                /* 1: stream sales in COPY text format; 0 (default): binary
                                     format when server and client encodings agree */
} db_load_opts;

void db_load_opts_default(db_load_opts *o);

typedef struct db_reject {
    const char *table;            /* static: "sales", "competitor_prices", "products" */
    char *row_key;                /* owned: product_id|day[|competitor] or product_id */
    int reason;                   /* DB_REJ_* */
} db_reject;

typedef struct db_gap {
    char *product_id;             /* owned */
    int n_missing;                /* missing periods inside the product's range */
    int32_t first_missing_day;    /* days since 1970-01-01 */
} db_gap;

typedef struct db_load_report {
    int64_t rows_products, rows_sales, rows_competitor; /* rows read */
    int64_t n_rejected;                                  /* rows rejected, all reasons */
    int64_t by_reason[DB_REJ_COUNT];
    db_reject *rejects;  size_t n_rejects, cap_rejects;  /* one entry per (table, key, reason): what
                                                            rejected_rows stores (a duplicated key
                                                            once, however many copies) */
    db_gap *gaps;        int n_gaps, cap_gaps;
    char **skipped;      int n_skipped, cap_skipped;     /* product ids, too little history */
    int period_days;                                     /* detected or forced */
    double sec_products, sec_sales, sec_competitor;      /* wall time per phase */
} db_load_report;

/* Free what a report owns (not the struct itself); safe on a zeroed report. */
void db_load_report_free(db_load_report *r);
/* Human-readable summary: counts per reason, gaps, skipped products. */
void db_load_report_print(FILE *f, const db_load_report *r);

/* Load the history.  *out: caller frees with db_history_free; rep (caller's struct, zeroed
 * by this call) is filled even on failure as far as the load got; free with
 * db_load_report_free.  Returns 0, or ENG_EDB (server message), ENG_ENOMEM, ENG_EINVAL;
 * *out = NULL on failure. */
int db_load_history(PGconn *conn, const db_load_opts *opts, db_history **out, db_load_report *rep);

/* What rlprice logged, into h (data/db_logged.c; called by db_load_history on its session,
 * whose window and product filter it uses): h->explore_off (products.explore = false) and the
 * logged cells (db_history.h): periods whose price the last finished run's recommendation for
 * that day set (charged price = recommended price), with its propensity and distribution.  Rows
 * with an unusable distribution are left out (estimated) with a warning; a database made before
 * these columns loads none (a warning: run `rlprice db init`).  Returns 0, ENG_EDB, ENG_ENOMEM. */
int db_load_logged(PGconn *conn, const db_load_opts *o, db_history *h);

/* Sort rep's rejects and keep one per (table, key, reason), as rejected_rows stores them
 * (db_load_history does this before it returns).  Never fails. */
void db_load_unique_rejects(db_load_report *rep);

/* Replace run_id's rejected_rows by rep's rejects (already one per (table, key, reason) after
 * db_load_history, so rep->n_rejects is exactly the number of rows stored).  Inside the
 * caller's transaction when one is open (db_push), else in one of its own.  Returns 0 or
 * ENG_EDB / ENG_ENOMEM. */
int db_load_store_rejects(PGconn *conn, const char *run_id, const db_load_report *rep);

#endif
