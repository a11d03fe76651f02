/* db_rejects.c - rejected rows: one per (table, key, reason), stored under a run id (see db_load.h). */
#include "db_load.h"

#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "db_copy.h"
#include "db_schema.h"
#include "eng_util.h"

static int rej_server_err(PGconn *conn) {
    char msg[1024];
    return eng_err_set(ENG_EDB, "storing rejected rows: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
}

/* qsort order: table, key, reason. */
static int cmp_reject(const void *a, const void *b) {
    const db_reject *x = a, *y = b;
    int c = strcmp(x->table, y->table);
    if (!c) c = strcmp(x->row_key, y->row_key);
    if (!c) c = (x->reason > y->reason) - (x->reason < y->reason);
    return c;
}

void db_load_unique_rejects(db_load_report *rep) {
    if (rep->n_rejects > 1) {
        qsort(rep->rejects, rep->n_rejects, sizeof *rep->rejects, cmp_reject);
        size_t w = 1;
        for (size_t i = 1; i < rep->n_rejects; i++) {
            if (cmp_reject(&rep->rejects[i], &rep->rejects[w - 1]) == 0) free(rep->rejects[i].row_key);
            else rep->rejects[w++] = rep->rejects[i];
        }
        rep->n_rejects = w;
    }
}

int db_load_store_rejects(PGconn *conn, const char *run_id, const db_load_report *rep) {
    if (!conn || !run_id || !rep) return eng_err_set(ENG_EINVAL, "db_load_store_rejects: bad arguments");
    int own_tx = PQtransactionStatus(conn) == PQTRANS_IDLE, st = ENG_OK;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (own_tx && (st = db_exec(conn, "BEGIN", PGRES_COMMAND_OK, "storing rejected rows"))) return st;
    const char *vals[1] = {run_id};
    /* two writers of one run id take turns (else both DELETE nothing, and the second COPY hits
     * the first's keys: "duplicate key ... rejected_rows_pkey"); released at COMMIT / ROLLBACK */
    PGresult *r = PQexecParams(conn, "SELECT pg_advisory_xact_lock(hashtextextended('rlprice rejected_rows ' || $1, 0))",
                               1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) st = rej_server_err(conn);
    PQclear(r);
    if (st) goto done;
    r = PQexecParams(conn, "DELETE FROM rejected_rows WHERE run_id = $1", 1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) st = rej_server_err(conn);
    PQclear(r);
    if (st) goto done;
    for (size_t i = 0; i < rep->n_rejects && !st; i++) {
        const db_reject *j = &rep->rejects[i];
        st = db_copy_escape(&buf, &len, &cap, run_id);
        if (!st) { buf[len++] = '\t'; st = db_copy_escape(&buf, &len, &cap, j->table); }
        if (!st) { buf[len++] = '\t'; st = db_copy_escape(&buf, &len, &cap, j->row_key); }
        if (!st) { buf[len++] = '\t'; st = db_copy_escape(&buf, &len, &cap, db_reject_name(j->reason)); }
        if (!st) buf[len++] = '\n';
    }
    if (st) goto done;
    st = db_exec(conn, "COPY rejected_rows (run_id, table_name, row_key, reason) FROM STDIN", PGRES_COPY_IN,
                 "storing rejected rows");
    if (!st) st = db_copy_send(conn, buf, len, "storing rejected rows");
done:
    free(buf);
    if (own_tx) {
        if (!st) st = db_exec(conn, "COMMIT", PGRES_COMMAND_OK, "storing rejected rows");
        else { PGresult *rb = PQexec(conn, "ROLLBACK"); PQclear(rb); }
    }
    return st;
}

