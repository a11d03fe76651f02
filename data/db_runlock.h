/* db_runlock.h - one process at a time per run id, the run's attempts, abandoned runs.
 *
 * The run lock is a session-level PostgreSQL advisory lock (bigint key: 62 bits of a 64-bit
 * FNV-1a hash of "rlprice run " + run_id) taken on a connection of its own and held for the
 * whole run.  Its own connection means it outlives a lost main connection, and the server
 * releases it when the process ends, however it ends (kill -9 included).  So a pricing_runs row
 * (or attempt) still 'running' whose lock is free belongs to a process that is gone: the next
 * run reports it as abandoned (db_runs_reap_abandoned).
 *
 * Attempts: every run of a run id (not a dry run) gets the next attempt number in
 * pricing_run_attempts ('running'); db_push marks it 'finished' inside the push transaction,
 * db_run_fail_attempt 'failed' with the reason.  The attempt number also names the run's report
 * folder (docs/nightly.md).  All SQL here takes its values as parameters.
 */
#ifndef DB_RUNLOCK_H
#define DB_RUNLOCK_H

#include <stdint.h>

#include <libpq-fe.h>

typedef struct db_runlock {
    PGconn *conn;        /* the lock's own connection (owned) */
    int64_t key;         /* advisory lock key (db_runlock_key) */
    int backend_pid;     /* PQbackendPID(conn): the session that holds the lock */
    char run_id[128];
} db_runlock;

/* The advisory lock key of a run id (non-negative). */
int64_t db_runlock_key(const char *run_id);

/* How long db_runlock_acquire waits for a lock held by someone else before it gives up: long
 * enough to ride out another run's brief probe (db_runs_reap_abandoned), far shorter than a run. */
#define DB_RUNLOCK_WAIT_MS 2000

/* Open a second connection (db_connect_again(like, conninfo)) and take run_id's lock on it,
 * waiting at most DB_RUNLOCK_WAIT_MS.  *out: malloc'd, release with db_runlock_release.
 * Returns 0, ENG_EBUSY when another session holds the lock (the message names that session's
 * application_name, e.g. "rlprice nightly pid 1234", and since when), ENG_EDB (connection or
 * server error), ENG_EINVAL (run id longer than 127 bytes), ENG_ENOMEM; *out = NULL then. */
int db_runlock_acquire(PGconn *like, const char *conninfo, const char *run_id, db_runlock **out);

/* Unlock, close the lock's connection, free l.  Safe on NULL. */
void db_runlock_release(db_runlock *l);

/* On `conn` (inside the caller's transaction, e.g. the push): 0 when l's session still holds
 * the lock; ENG_EDB "the run lock ... was lost" when it does not (its connection ended: another
 * run may have started), or on a server error. */
int db_runlock_check(PGconn *conn, const db_runlock *l);

/* Find runs left 'running' by processes that are gone: every run id with a pricing_runs row or
 * an attempt in status 'running' whose lock can be taken (l's own run id counts: l holds its
 * lock).  Each becomes row 'failed' (a finished row is left alone) and attempt 'abandoned',
 * with the reason, and is logged as a warning.  Runs on l's connection.  *n_found (may be
 * NULL) = runs reported.  Returns 0, ENG_EDB or ENG_ENOMEM. */
int db_runs_reap_abandoned(db_runlock *l, int *n_found);

/* Open the next attempt of run_id (the pricing_runs row must exist: db_run_open first):
 * inserts (run_id, max + 1, 'running').  *attempt = its number.  Returns 0 or ENG_EDB. */
int db_attempt_open(PGconn *conn, const char *run_id, int *attempt);

/* Record the failure of a run in one transaction: the pricing_runs row becomes 'failed' with
 * summary = message unless it is 'finished' (an earlier attempt's finished row and its rows
 * stay as they were), and attempt `attempt` (> 0; 0 = none) becomes 'failed' with the message.
 * Returns 0, ENG_ENOTFOUND (no such run), ENG_EDB. */
int db_run_fail_attempt(PGconn *conn, const char *run_id, int attempt, const char *message);

#endif
