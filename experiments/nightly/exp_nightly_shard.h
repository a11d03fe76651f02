/* exp_nightly_shard.h - under MPI each rank loads only its own products (docs/mpi.md). */
#ifndef EXP_NIGHTLY_SHARD_H
#define EXP_NIGHTLY_SHARD_H

#include <libpq-fe.h>

#include "db_history.h"
#include "db_load.h"

/* Collective (every rank calls it; one process: the plain db_load_history).  Each rank reads the
 * window's catalogue (db_load_catalogue: ids in the loader's order and its calendar; checked to be
 * the same on every rank), loads through lo's window only the ids whose shard
 * (exp_compare_shard_of_id: FNV-1a 64 mod ranks) is its own, on the catalogue's calendar, agrees
 * with the other ranks which products survived validation (one all-reduce of a flag per catalogue
 * product) and expands its history to every survivor in catalogue order (db_history_expand: the
 * other ranks' products blank).  rep: the row and reject counts and skipped products are every
 * rank's (all-reduced); the rejects themselves are gathered to rank 0 (one per (table, key,
 * reason), as one process stores them); gaps stay the rank's own.  lo->run_id must be NULL.
 * status: this rank's failure so far (nonzero: it loads nothing but still agrees, so every rank
 * fails together).
 * *out: caller frees with db_history_free; rep (caller's, zeroed here): db_load_report_free.
 * Returns 0 or the first failing rank's status (ENG_EDB, ENG_ENOMEM, ENG_EFORMAT when the ranks
 * read different catalogues, ENG_EIO when a rank is lost); *out NULL on failure. */
int exp_nightly_load_shard(PGconn *conn, const db_load_opts *lo, db_history **out, db_load_report *rep, int status);

#endif
