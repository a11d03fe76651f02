/* tests/test_db.h - per-suite PostgreSQL databases for the db suites.
 * Each suite creates its own database rlprice_t_<suite>_<pid> through the maintenance
 * connection (the runner's PG* variables), applies the schema and drops it at the end. */
#ifndef TEST_DB_H
#define TEST_DB_H

#include "test_common.h"

#include <unistd.h>

#include "db_conn.h"
#include "db_schema.h"
#include "eng_util.h"

static char tdb_name[128];

/* Create + connect + schema.  Returns the connection (caller: tdb_drop). */
static inline PGconn *tdb_create(const char *suite) {
    PGconn *m = NULL;
    if (db_connect(&m, NULL) != ENG_OK) fail_msg("maintenance connection: %s", eng_err_msg());
    snprintf(tdb_name, sizeof tdb_name, "rlprice_t_%s_%d", suite, (int)getpid());
    char *ident = PQescapeIdentifier(m, tdb_name, strlen(tdb_name));
    char sql[512];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
    PQclear(PQexec(m, sql));
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", ident);
    PQfreemem(ident);
    PGresult *r = PQexec(m, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("create database: %s", PQerrorMessage(m));
    PQclear(r);
    db_disconnect(m);
    PGconn *c = NULL;
    if (db_connect_dbname(&c, NULL, tdb_name) != ENG_OK) fail_msg("connect: %s", eng_err_msg());
    if (db_schema_apply(c) != ENG_OK) fail_msg("schema: %s", eng_err_msg());
    return c;
}

static inline void tdb_drop(PGconn *c) {
    db_disconnect(c);
    PGconn *m = NULL;
    if (db_connect(&m, NULL) != ENG_OK) return;
    char *ident = PQescapeIdentifier(m, tdb_name, strlen(tdb_name));
    char sql[512];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
    PQfreemem(ident);
    PQclear(PQexec(m, sql));
    db_disconnect(m);
}

/* Run SQL with text parameters; fail the test unless it succeeds. */
static inline void tdb_exec(PGconn *c, const char *sql, int n, const char *const *vals) {
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* First column of the first row as a long (the query must return one row). */
static inline long tdb_long(PGconn *c, const char *sql, int n, const char *const *vals) {
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) fail_msg("%s: %s", sql, PQerrorMessage(c));
    long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

#endif
