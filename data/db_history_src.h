/* db_history_src.h - where the comparison commands (`rlprice compare`, `rlprice report`) get
 * their history: the database (db_load_history), an HDF5 cache (db_history_load_h5) or the
 * Dominick's preset (db_dominicks_read, in memory), optionally restricted to listed products. */
#ifndef DB_HISTORY_SRC_H
#define DB_HISTORY_SRC_H

#include <stddef.h>

#include "db_history.h"

typedef struct db_history_src {
    const char *db;        /* connection string; NULL with cache and preset NULL: PG* / embedded */
    const char *cache;     /* HDF5 history cache */
    const char *preset;    /* "dominicks" */
    const char *const *products; /* ids to keep (in this order), or NULL = all */
    int n_products;
} db_history_src;

/* Load the history of s into *h (caller frees with db_history_free) and a description of the
 * source into desc[n] ("postgres:user@host/db", "HDF5 cache F", "Dominick's orange juice preset
 * (...)").  At most one of db, cache, preset may be set.  Returns a command exit code: 0 ok,
 * 2 usage (two sources, unknown preset, unreadable cache, unknown product id), 3 database,
 * 1 other; on failure *h is NULL and eng_err_msg() says why (nothing is printed). */
int db_history_src_load(const db_history_src *s, db_history **h, char *desc, size_t n);

#endif
