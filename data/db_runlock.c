/* db_runlock.c - run lock, attempts, abandoned runs (see db_runlock.h). */
#include "db_runlock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_conn.h"
#include "db_schema.h"
#include "eng_hash.h"
#include "eng_util.h"

static const char ABANDONED_MSG[] = "abandoned: the process running it ended without recording an outcome "
                                    "(killed, or it lost the database); found by a later run";

int64_t db_runlock_key(const char *run_id) {
    const uint64_t h = eng_fnv1a_str(eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, "rlprice run "), run_id);
    return (int64_t)(h >> 2); /* 62 bits: never negative, so pg_locks' classid/objid read back plainly */
}

/* Run a parameterised statement expecting `want`; on failure ENG_EDB "what: server message".
 * *res (may be NULL) receives the result on success (caller PQclear's). */
static int run(PGconn *conn, const char *sql, int n, const char *const *vals, ExecStatusType want, const char *what,
               PGresult **res) {
    PGresult *r = PQexecParams(conn, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        char msg[1024];
        int st = eng_err_set(ENG_EDB, "%s: %s", what, db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
        PQclear(r);
        return st;
    }
    if (res) *res = r;
    else PQclear(r);
    return ENG_OK;
}

/* The session holding key (application_name, since) into buf, or "another session". */
static void holder(PGconn *conn, const char *key, char *buf, size_t n) {
    const char *v[1] = {key};
    PGresult *r = NULL;
    snprintf(buf, n, "another session");
    if (run(conn,
            "SELECT coalesce(nullif(a.application_name, ''), 'pid ' || a.pid), a.backend_start::text"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            "  AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint LIMIT 1",
            1, v, PGRES_TUPLES_OK, "run lock holder", &r) != ENG_OK) {
        eng_err_clear();
        return;
    }
    if (PQntuples(r) == 1) snprintf(buf, n, "'%s' (connected since %s)", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
}

int db_runlock_acquire(PGconn *like, const char *conninfo, const char *run_id, db_runlock **out) {
    *out = NULL;
    if (!run_id || strlen(run_id) >= sizeof((db_runlock *)0)->run_id)
        return eng_err_set(ENG_EINVAL, "run lock: bad run id");
    db_runlock *l = eng_calloc(1, sizeof *l);
    if (!l) return ENG_ENOMEM;
    snprintf(l->run_id, sizeof l->run_id, "%s", run_id);
    l->key = db_runlock_key(run_id);
    char key[32], app[64], wait[32];
    snprintf(key, sizeof key, "%lld", (long long)l->key);
    snprintf(app, sizeof app, "rlprice nightly pid %d", (int)getpid());
    snprintf(wait, sizeof wait, "%dms", DB_RUNLOCK_WAIT_MS);
    int st = db_connect_again(&l->conn, like, conninfo);
    const char *v_app[2] = {app, wait};
    if (!st)
        st = run(l->conn, "SELECT set_config('application_name', $1, false), set_config('lock_timeout', $2, false)", 2,
                 v_app, PGRES_TUPLES_OK, "run lock", NULL);
    if (st) goto fail;
    const char *v[1] = {key};
    PGresult *r = PQexecParams(l->conn, "SELECT pg_advisory_lock($1::bigint)", 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char msg[1024];
        if (code && !strcmp(code, "55P03")) { /* lock_not_available: lock_timeout passed */
            char who[256];
            PQclear(r);
            holder(l->conn, key, who, sizeof who);
            st = eng_err_set(ENG_EBUSY, "run %s is already running: its lock is held by %s; not starting a second one",
                             run_id, who);
        } else {
            st = eng_err_set(ENG_EDB, "run lock: %s", db_redact(msg, sizeof msg, PQerrorMessage(l->conn), NULL));
            PQclear(r);
        }
        goto fail;
    }
    PQclear(r);
    const char *v0[1] = {"0"};
    if ((st = run(l->conn, "SELECT set_config('lock_timeout', $1, false)", 1, v0, PGRES_TUPLES_OK, "run lock", NULL)))
        goto fail;
    l->backend_pid = PQbackendPID(l->conn);
    *out = l;
    return ENG_OK;
fail:
    if (l->conn) db_disconnect(l->conn);
    free(l);
    return st;
}

void db_runlock_release(db_runlock *l) {
    if (!l) return;
    if (l->conn && PQstatus(l->conn) == CONNECTION_OK) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)l->key);
        const char *v[1] = {key};
        PQclear(PQexecParams(l->conn, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, v, NULL, NULL, 0));
    }
    if (l->conn) db_disconnect(l->conn); /* ending the session releases the lock anyway */
    free(l);
}

int db_runlock_check(PGconn *conn, const db_runlock *l) {
    if (!conn || !l) return eng_err_set(ENG_EINVAL, "db_runlock_check: bad arguments");
    char key[32], pid[16];
    snprintf(key, sizeof key, "%lld", (long long)l->key);
    snprintf(pid, sizeof pid, "%d", l->backend_pid);
    const char *v[2] = {key, pid};
    PGresult *r = NULL;
    int st = run(conn,
                 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                 " AND pid = $2::int AND ((classid::bigint << 32) | objid::bigint) = $1::bigint",
                 2, v, PGRES_TUPLES_OK, "checking the run lock", &r);
    if (st) return st;
    int held = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "0") != 0;
    PQclear(r);
    if (!held)
        return eng_err_set(ENG_EDB, "the run lock of %s was lost (its connection ended): another run of it may have "
                                    "started, so this one does not push", l->run_id);
    return ENG_OK;
}

/* Mark one run abandoned (row 'failed' unless finished, running attempts 'abandoned'). */
static int mark_abandoned(PGconn *conn, const char *id) {
    const char *v[2] = {id, ABANDONED_MSG};
    int st = db_exec(conn, "BEGIN", PGRES_COMMAND_OK, "abandoned run");
    if (!st) st = run(conn,
                      "UPDATE pricing_runs SET status = 'failed', finished_at = now(), summary = $2"
                      " WHERE run_id = $1 AND status = 'running'",
                      2, v, PGRES_COMMAND_OK, "abandoned run", NULL);
    if (!st) st = run(conn,
                      "UPDATE pricing_run_attempts SET status = 'abandoned', finished_at = now(), message = $2"
                      " WHERE run_id = $1 AND status = 'running'",
                      2, v, PGRES_COMMAND_OK, "abandoned run", NULL);
    if (!st) st = db_exec(conn, "COMMIT", PGRES_COMMAND_OK, "abandoned run");
    if (st) PQclear(PQexec(conn, "ROLLBACK"));
    return st;
}

int db_runs_reap_abandoned(db_runlock *l, int *n_found) {
    if (n_found) *n_found = 0;
    if (!l || !l->conn) return eng_err_set(ENG_EINVAL, "db_runs_reap_abandoned: no lock");
    PGresult *r = NULL;
    int st = run(l->conn,
                 "SELECT run_id FROM pricing_runs WHERE status = 'running'"
                 " UNION SELECT run_id FROM pricing_run_attempts WHERE status = 'running' ORDER BY 1",
                 0, NULL, PGRES_TUPLES_OK, "looking for abandoned runs", &r);
    if (st) return st;
    for (int i = 0; !st && i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        int own = !strcmp(id, l->run_id), got = own;
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)db_runlock_key(id));
        const char *v[1] = {key};
        PGresult *t = NULL;
        if (!own) { /* never waits: a live run holds its lock */
            if ((st = run(l->conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, v, PGRES_TUPLES_OK,
                          "looking for abandoned runs", &t)))
                break;
            got = !strcmp(PQgetvalue(t, 0, 0), "t");
            PQclear(t);
        }
        if (!got) continue;
        st = mark_abandoned(l->conn, id);
        if (!st) {
            ENG_WARN("run %s was abandoned: it was left 'running' by a process that is gone (killed, or it lost the "
                     "database); marked failed",
                     id);
            if (n_found) (*n_found)++;
        }
        if (!own) PQclear(PQexecParams(l->conn, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, v, NULL, NULL, 0));
    }
    PQclear(r);
    return st;
}

int db_attempt_open(PGconn *conn, const char *run_id, int *attempt) {
    *attempt = 0;
    const char *v[1] = {run_id};
    PGresult *r = NULL;
    int st = run(conn,
                 "INSERT INTO pricing_run_attempts (run_id, attempt, status)"
                 " SELECT $1, coalesce(max(attempt), 0) + 1, 'running' FROM pricing_run_attempts WHERE run_id = $1"
                 " RETURNING attempt",
                 1, v, PGRES_TUPLES_OK, "opening the run's attempt", &r);
    if (st) return st;
    *attempt = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return ENG_OK;
}

int db_run_fail_attempt(PGconn *conn, const char *run_id, int attempt, const char *message) {
    if (!conn || !run_id) return eng_err_set(ENG_EINVAL, "db_run_fail: bad arguments");
    char a[16];
    snprintf(a, sizeof a, "%d", attempt);
    const char *v[3] = {run_id, message, a};
    PGresult *r = NULL;
    int st = db_exec(conn, "BEGIN", PGRES_COMMAND_OK, "db_run_fail");
    if (!st) st = run(conn,
                      "UPDATE pricing_runs SET status = CASE WHEN status = 'finished' THEN status ELSE 'failed' END,"
                      " finished_at = CASE WHEN status = 'finished' THEN finished_at ELSE now() END,"
                      " summary = CASE WHEN status = 'finished' THEN summary ELSE $2 END"
                      " WHERE run_id = $1 RETURNING status",
                      2, v, PGRES_TUPLES_OK, "db_run_fail", &r);
    int found = st ? 0 : PQntuples(r);
    PQclear(r);
    if (!st && attempt > 0)
        st = run(conn,
                 "UPDATE pricing_run_attempts SET status = 'failed', finished_at = now(), message = $2"
                 " WHERE run_id = $1 AND attempt = $3::int",
                 3, v, PGRES_COMMAND_OK, "db_run_fail", NULL);
    if (!st && !found) st = eng_err_set(ENG_ENOTFOUND, "db_run_fail: no pricing run '%s'", run_id);
    if (!st) st = db_exec(conn, "COMMIT", PGRES_COMMAND_OK, "db_run_fail");
    if (st && PQstatus(conn) == CONNECTION_OK) PQclear(PQexec(conn, "ROLLBACK"));
    return st;
}
