/* db_schema.h - the rlprice schema (data/schema.sql) and the least-privilege role
 * (data/roles.sql), embedded in the binary at build time (scripts/sql2c.sh). */
#ifndef DB_SCHEMA_H
#define DB_SCHEMA_H

#include <libpq-fe.h>

extern const char db_schema_sql[]; /* text of data/schema.sql */
extern const char db_roles_sql[];  /* text of data/roles.sql */

/* Apply data/schema.sql in one transaction, serialised against concurrent `db init` by an
 * advisory lock.  Idempotent.  Returns 0 or ENG_EDB with the server's message. */
int db_schema_apply(PGconn *conn);

/* Create/refresh the rlprice_app role and its grants (data/roles.sql); needs the right to
 * create roles.  Idempotent.  Returns 0 or ENG_EDB with the server's message. */
int db_roles_apply(PGconn *conn);

/* Run one statement without parameters (constant SQL only), expecting `want` status
 * (PGRES_COMMAND_OK or PGRES_TUPLES_OK).  Returns 0 or ENG_EDB "<what>: <server message>". */
int db_exec(PGconn *conn, const char *sql, ExecStatusType want, const char *what);

#endif
