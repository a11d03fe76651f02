/* db_cmd.c - `rlprice db init|start|stop|env` (see rlp_cmd.h): the schema and the embedded
 * PostgreSQL cluster. */
#include "rlp_cmd.h"

#include <stdio.h>
#include <string.h>

#include "db_conn.h"
#include "db_schema.h"
#include "eng_util.h"

int db_cmd_init(int argc, char **argv) {
    const char *db = NULL;
    int roles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--roles")) roles = 1;
        else {
            fprintf(stderr, "usage: rlprice db init [--db CONNINFO] [--roles]\n");
            return 2;
        }
    }
    PGconn *conn = NULL;
    int rc = 3;
    if (db_resolve(&conn, db) != ENG_OK) goto done;
    if (db_schema_apply(conn) != ENG_OK) goto done;
    if (roles && db_roles_apply(conn) != ENG_OK) goto done;
    printf("schema applied to %s%s\n", db_describe(conn), roles ? " (with role rlprice_app)" : "");
    rc = 0;
done:
    if (rc) fprintf(stderr, "rlprice: %s\n", eng_err_msg());
    db_disconnect(conn);
    return rc;
}

static void print_env(const db_embedded *e) {
    printf("export PGHOST='%s' PGPORT=%s PGUSER=%s PGDATABASE=%s\n", e->host, e->port, e->user, e->dbname);
}

int db_cmd_start(int argc, char **argv) {
    (void)argv;
    if (argc != 1) { fprintf(stderr, "usage: rlprice db start\n"); return 2; }
    db_embedded e;
    if (db_embedded_start(&e) != ENG_OK) { fprintf(stderr, "rlprice: %s\n", eng_err_msg()); return 3; }
    print_env(&e);
    return 0;
}

int db_cmd_stop(int argc, char **argv) {
    (void)argv;
    if (argc != 1) { fprintf(stderr, "usage: rlprice db stop\n"); return 2; }
    db_embedded e;
    if (db_embedded_stop(&e) != ENG_OK) { fprintf(stderr, "rlprice: %s\n", eng_err_msg()); return 3; }
    return 0;
}

int db_cmd_env(int argc, char **argv) {
    (void)argv;
    if (argc != 1) { fprintf(stderr, "usage: rlprice db env\n"); return 2; }
    db_embedded e;
    if (db_embedded_locate(&e) != ENG_OK) { fprintf(stderr, "rlprice: %s\n", eng_err_msg()); return 2; }
    print_env(&e);
    return 0;
}
