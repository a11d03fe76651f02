/* db_import.h - load CSV sales history into the rlprice schema (`rlprice import`).
 *
 * Generic import: one CSV file into one table (products, sales or competitor_prices) with
 * a column mapping; rows are checked on the client (numbers, dates, booleans, UTF-8),
 * streamed with COPY into a staging table and upserted in one transaction (the last row
 * of a key wins; re-importing replaces, never duplicates).  Malformed lines are reported
 * with their line number and reason, counted and skipped.  See docs/import.md.
 *
 * Dominick's preset: the orange-juice store x brand x week file (shipped as
 * data/datasets/dominicks_oj/ (xz), unpacked by `make` into $(BUILD)/datasets/dominicks_oj) into products, sales and
 * competitor_prices via db_history_store. */
#ifndef DB_IMPORT_H
#define DB_IMPORT_H

#include <libpq-fe.h>

#include "db_csvread.h"
#include "db_history.h"

typedef struct db_import_opts {
    const char *table;        /* "products", "sales" or "competitor_prices" */
    const char *map;          /* "target=csvcol,target=#3,target:=constant,..." or NULL */
    const char *date_format;  /* strptime(3) format of the day column; NULL = "%Y-%m-%d" */
    char delim;               /* field separator; 0 = ',' */
    int no_header;            /* 1: no header line; sources must be #N or constants */
    int create_products;      /* sales: create unknown products (base_price = median price) */
    int strict;               /* 1: any skipped record fails the import (nothing written) */
    int dry_run;              /* 1: write nothing.  With a connection: the whole import in a
                                 transaction that is rolled back, so the skipped rows are exactly
                                 a real import's; without one (NULL): the file's checks only */
} db_import_opts;

typedef struct db_import_report {
    db_csv_log log;           /* records and per-line issues; freed by db_import_report_free */
    long inserted, updated;   /* rows of the target table(s) */
    long duplicates;          /* rows replaced by a later row with the same key */
    long products_created;    /* by create_products */
    long unknown_products;    /* competitor_prices rows whose product is not in products (kept) */
    long filtered;            /* preset: rows outside --stores/--weeks */
    long comp_rows;           /* preset: competitor_prices rows written */
    double seconds;
} db_import_report;

/* Import `path` into o->table on c.  r is filled (caller frees with db_import_report_free,
 * also after a failure).  Returns 0 when the file was read and the good rows committed
 * (skipped records are in r->log), ENG_EINVAL for a bad option or mapping, ENG_ENOTFOUND/
 * ENG_EIO/ENG_EFORMAT for an unreadable or empty file, ENG_EDB for a server error (rolled
 * back: nothing written). */
int db_import_csv(PGconn *c, const char *path, const db_import_opts *o, db_import_report *r);
void db_import_report_free(db_import_report *r);

typedef struct db_dominicks_opts {
    const char *dir;      /* folder with oj_store_brand_week.csv, or the CSV file itself;
                             NULL = RLPRICE_BUILD_DATA/dominicks_oj (build/datasets) */
    const char *stores;   /* "2,5,8-12" or NULL for every store */
    int week_lo, week_hi; /* inclusive; 0 = the data's first/last week */
} db_dominicks_opts;

#define DB_DOMINICKS_FILE "oj_store_brand_week.csv"
#define DB_DOMINICKS_WEEK1 "1989-09-14" /* Thursday that starts Dominick's week 1 */

/* Read the Dominick's file into a weekly history (one product per store x brand, see
 * docs/import.md).  *out is the caller's (db_history_free).  log collects skipped lines
 * (caller frees with db_csv_log_free); *filtered counts rows outside stores/weeks.
 * Returns 0, ENG_EINVAL (bad option), ENG_ENOTFOUND/ENG_EIO/ENG_EFORMAT (file). */
int db_dominicks_read(db_history **out, const db_dominicks_opts *o, db_csv_log *log, long *filtered);

/* db_dominicks_read + db_history_store on c (dry_run: read only; c may be NULL).
 * r as for db_import_csv. */
int db_import_dominicks(PGconn *c, const db_dominicks_opts *o, int dry_run, db_import_report *r);

#endif
