/* db_copybuf.h - a buffered writer for PostgreSQL COPY ... FROM STDIN (text format).
 *
 * Fields are escaped for COPY's text format (backslash, tab, newline, carriage return), so
 * any text, including ids with quotes, semicolons, backslashes, tabs or newlines, arrives
 * intact.  NaN floats and NULL strings become \N.  Floats are written in the shortest
 * decimal form that reads back to the same float (3.87f -> "3.87", not "3.86999989").
 * Used by the CSV import (db_import.c) and db_history_store (db_store.c). */
#ifndef DB_COPYBUF_H
#define DB_COPYBUF_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct db_copybuf {
    PGconn *conn;   /* borrowed; NULL = collect only (tests, dry runs) */
    char *buf;      /* owned */
    size_t len, cap;
    int col;        /* fields written on the current row */
    int status;     /* first failure (sticky), 0 while fine */
    long rows;      /* rows ended */
} db_copybuf;

/* Start a COPY: runs `copy_sql` ("COPY t (a, b) FROM STDIN") on conn (which must be inside
 * a transaction or autocommit) and prepares the buffer.  Returns 0 or ENG_EDB/ENG_ENOMEM;
 * on failure the buffer holds nothing to free.  Finish with db_copybuf_end or _abort. */
int db_copybuf_begin(db_copybuf *b, PGconn *conn, const char *copy_sql);

/* Append one field (a tab goes before every field but the first of a row).  All return the
 * sticky status (0 while fine); data is flushed to the server every ~1 MiB. */
int db_copybuf_text(db_copybuf *b, const char *s);   /* NULL -> \N */
int db_copybuf_null(db_copybuf *b);
int db_copybuf_float(db_copybuf *b, float v);        /* NaN/inf -> \N */
int db_copybuf_double(db_copybuf *b, double v);      /* NaN/inf -> \N */
int db_copybuf_long(db_copybuf *b, long v);
int db_copybuf_date(db_copybuf *b, int32_t days);    /* days since 1970-01-01 -> YYYY-MM-DD */
int db_copybuf_bool(db_copybuf *b, int v);           /* <0 -> \N */
int db_copybuf_eol(db_copybuf *b);                   /* ends the row */

/* Flush, end the COPY and read its result.  Returns 0 or ENG_EDB with the server's message
 * prefixed by `what`.  Frees the buffer either way. */
int db_copybuf_end(db_copybuf *b, const char *what);
/* Abandon the COPY (the server discards it) and free the buffer; returns nothing useful. */
void db_copybuf_abort(db_copybuf *b);

/* Run one parameterless SQL command; ENG_EDB with "what: server message" on failure. */
int db_copybuf_exec(PGconn *conn, const char *sql, const char *what);

/* Format a date (days since 1970-01-01) as YYYY-MM-DD into out[11]. */
void db_copybuf_fmt_date(char out[11], int32_t days);
/* Shortest %.*g text of v that parses back to exactly v (float or double). out >= 32 bytes. */
void db_copybuf_fmt_float(char *out, float v);
void db_copybuf_fmt_double(char *out, double v);

#endif
