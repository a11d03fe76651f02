/* db_schema.c - apply the embedded schema / role scripts (the `rlprice db ...` commands are in
 * experiments/cmd/db_cmd.c). */
#include "db_schema.h"

#include <stdio.h>

#include "db_conn.h"
#include "eng_util.h"

int db_exec(PGconn *conn, const char *sql, ExecStatusType want, const char *what) {
    PGresult *r = PQexec(conn, sql);
    int st = ENG_OK;
    if (PQresultStatus(r) != want) {
        char msg[1024];
        db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL);
        st = eng_err_set(ENG_EDB, "%s: %s", what, msg);
    }
    PQclear(r);
    return st;
}

static int apply_script(PGconn *conn, const char *sql, const char *name) {
    int st = db_exec(conn, "BEGIN", PGRES_COMMAND_OK, name);
    if (st) return st;
    /* serialise concurrent `db init` runs (CREATE ... IF NOT EXISTS can race) */
    st = db_exec(conn, "SELECT pg_advisory_xact_lock(hashtext('rlprice db init'))", PGRES_TUPLES_OK, name);
    if (!st) st = db_exec(conn, "SET LOCAL client_min_messages = warning", PGRES_COMMAND_OK, name);
    if (!st) st = db_exec(conn, sql, PGRES_COMMAND_OK, name);
    if (!st) st = db_exec(conn, "COMMIT", PGRES_COMMAND_OK, name);
    if (st) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    return st;
}

int db_schema_apply(PGconn *conn) { return apply_script(conn, db_schema_sql, "applying data/schema.sql"); }

int db_roles_apply(PGconn *conn) { return apply_script(conn, db_roles_sql, "applying data/roles.sql"); }
