/* db_conn.h - PostgreSQL connections (libpq).
 * conninfo: a libpq conninfo string or URI; NULL or "" uses the standard PG* environment
 * variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, ...).
 * Passwords never appear in logs or error messages: messages name host/port/dbname/user only,
 * and any server or libpq text is passed through db_redact() first. */
#ifndef DB_CONN_H
#define DB_CONN_H

#include <stddef.h>

#include <libpq-fe.h>

/* Connect; on failure returns ENG_EDB with the server's message (password redacted) and
 * *out = NULL.  Caller closes with db_disconnect. */
int db_connect(PGconn **out, const char *conninfo);
void db_disconnect(PGconn *conn);

/* "user@host:port/dbname" for logs (never the password).  Static per-thread buffer. */
const char *db_describe(PGconn *conn);

/* ---- additions (data helper) ---- */

/* Like db_connect, but with the database name replaced by `dbname` (the other settings of
 * `conninfo`, or of the PG* variables when it is NULL/"", are kept).  Same ownership and
 * failure contract as db_connect. */
int db_connect_dbname(PGconn **out, const char *conninfo, const char *dbname);

/* Connect to `dbname` with the host, port, user and password of the open connection `like`
 * (e.g. a scratch database made from a maintenance connection).  Same ownership and failure
 * contract as db_connect. */
int db_connect_like(PGconn **out, PGconn *like, const char *dbname);

/* A second connection to the same database as `like`: through `conninfo` when it is non-empty
 * (all its settings kept), else with like's host, port, user, password and database (the
 * embedded cluster, a caller's connection).  `like` may be a connection whose server session
 * is gone: only its settings are read.  Same ownership and failure contract as db_connect. */
int db_connect_again(PGconn **out, PGconn *like, const char *conninfo);

/* db_connect_again, retried: up to `tries` attempts, sleeping backoff_s, 2 backoff_s, ...
 * between them (a server restarting).  Logs each failed attempt as a warning.  Returns 0 or
 * the last attempt's failure (ENG_EDB). */
int db_connect_retry(PGconn **out, PGconn *like, const char *conninfo, int tries, double backoff_s);

/* CREATE DATABASE / DROP DATABASE IF EXISTS ... WITH (FORCE) on the connection `m`; the name is
 * quoted by libpq (an identifier cannot be a parameter).  0 or ENG_EDB/ENG_ENOMEM. */
int db_database_create(PGconn *m, const char *name);
int db_database_drop(PGconn *m, const char *name);

/* The connection a command should use:
 *   conninfo non-empty                  -> that (--db);
 *   else any of PGHOST/PGDATABASE/PGSERVICE/PGPORT set -> the PG* environment;
 *   else the embedded cluster (started if needed, see db_embedded_start).
 * Caller closes *out with db_disconnect.  Returns 0, or ENG_EDB (*out = NULL). */
int db_resolve(PGconn **out, const char *conninfo_or_null);

/* Copy `msg` into buf (size n, always NUL-terminated) with passwords removed: the value of
 * every `password=...` setting, the password part of `scheme://user:password@host` URIs, and
 * any literal occurrence (3+ chars) of the password found in `conninfo` (may be NULL) or in
 * $PGPASSWORD.  Trailing newlines are dropped.  Returns buf. */
char *db_redact(char *buf, size_t n, const char *msg, const char *conninfo);

/* Embedded (throwaway) cluster in `<repo>/.pgdata` (or $RLPRICE_PGDATA), run by
 * scripts/pgtmp.sh: reachable only by unix socket, user and database `rlprice`. */
typedef struct db_embedded {
    char dir[1024];   /* cluster folder */
    char host[1100];  /* socket directory (PGHOST) */
    char port[16];
    char user[64];
    char dbname[64];
} db_embedded;

/* Start the embedded cluster (initdb the first time) and fill *e.  Returns 0, ENG_ENOTFOUND
 * when scripts/pgtmp.sh cannot be found (searched upward from the current directory and from
 * the executable's folder), or ENG_EDB when the script fails (its messages go to stderr). */
int db_embedded_start(db_embedded *e);
/* Stop it (fast shutdown).  Returns 0 or ENG_ENOTFOUND/ENG_EDB as above. */
int db_embedded_stop(db_embedded *e);
/* Fill *e without starting anything (for `rlprice db env`).  Returns 0 or ENG_ENOTFOUND. */
int db_embedded_locate(db_embedded *e);

#endif
