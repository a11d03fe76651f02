/* db_conn.h - PostgreSQL connections (libpq).
 * conninfo: a libpq conninfo string or URI; NULL or "" uses the standard PG* environment
 * variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, ...).
 * Passwords never appear in logs or error messages: messages name host/port/dbname/user only. */
#ifndef DB_CONN_H
#define DB_CONN_H

#include <libpq-fe.h>

/* Connect; on failure returns ENG_EDB with the server's message (password redacted) and
 * *out = NULL.  Caller closes with db_disconnect. */
int db_connect(PGconn **out, const char *conninfo);
void db_disconnect(PGconn *conn);

/* "user@host:port/dbname" for logs (never the password).  Static per-thread buffer. */
const char *db_describe(PGconn *conn);

#endif
