/* db_copybuf.c - see db_copybuf.h. */
#include "db_copybuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_date.h"
#include "eng_util.h"

#define COPYBUF_FLUSH (1u << 20)

static int cb_fail(db_copybuf *b, int st) {
    if (!b->status) b->status = st;
    return b->status;
}

static int cb_flush(db_copybuf *b) {
    if (b->status || !b->len) return b->status;
    if (b->conn && PQputCopyData(b->conn, b->buf, (int)b->len) != 1)
        return cb_fail(b, eng_err_set(ENG_EDB, "COPY: sending data failed: %s", PQerrorMessage(b->conn)));
    b->len = 0;
    return 0;
}

static int cb_reserve(db_copybuf *b, size_t extra) {
    if (b->status) return b->status;
    if (b->len + extra <= b->cap) return 0;
    if (b->len >= COPYBUF_FLUSH && cb_flush(b)) return b->status;
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < b->len + extra) cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) return cb_fail(b, eng_err_set(ENG_ENOMEM, "COPY buffer: out of memory (%zu bytes)", cap));
    b->buf = nb;
    b->cap = cap;
    return 0;
}

static int cb_put(db_copybuf *b, const char *s, size_t n) {
    if (cb_reserve(b, n + 1)) return b->status;
    if (b->col++ > 0) b->buf[b->len++] = '\t';
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return 0;
}

int db_copybuf_exec(PGconn *conn, const char *sql, const char *what) {
    PGresult *r = PQexec(conn, sql);
    ExecStatusType s = PQresultStatus(r);
    int st = ENG_OK;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        st = eng_err_set(ENG_EDB, "%s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return st;
}

int db_copybuf_begin(db_copybuf *b, PGconn *conn, const char *copy_sql) {
    memset(b, 0, sizeof *b);
    b->conn = conn;
    if (!conn) return ENG_OK;
    PGresult *r = PQexec(conn, copy_sql);
    int st = ENG_OK;
    if (PQresultStatus(r) != PGRES_COPY_IN)
        st = eng_err_set(ENG_EDB, "starting COPY failed: %s", PQresultErrorMessage(r));
    PQclear(r);
    return st;
}

int db_copybuf_text(db_copybuf *b, const char *s) {
    if (!s) return db_copybuf_null(b);
    size_t n = strlen(s);
    if (cb_reserve(b, 2 * n + 2)) return b->status;
    if (b->col++ > 0) b->buf[b->len++] = '\t';
    for (size_t i = 0; i < n; i++) {
        char c = s[i], e = 0;
        switch (c) {
        case '\\': e = '\\'; break;
        case '\t': e = 't'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        default: break;
        }
        if (e) {
            b->buf[b->len++] = '\\';
            b->buf[b->len++] = e;
        } else {
            b->buf[b->len++] = c;
        }
    }
    return 0;
}

int db_copybuf_null(db_copybuf *b) { return cb_put(b, "\\N", 2); }

void db_copybuf_fmt_float(char *out, float v) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)v);
        if (strtof(out, NULL) == v) return;
    }
}

void db_copybuf_fmt_double(char *out, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

int db_copybuf_float(db_copybuf *b, float v) {
    if (!isfinite(v)) return db_copybuf_null(b);
    char t[32];
    db_copybuf_fmt_float(t, v);
    return cb_put(b, t, strlen(t));
}

int db_copybuf_double(db_copybuf *b, double v) {
    if (!isfinite(v)) return db_copybuf_null(b);
    char t[32];
    db_copybuf_fmt_double(t, v);
    return cb_put(b, t, strlen(t));
}

int db_copybuf_long(db_copybuf *b, long v) {
    char t[32];
    int n = snprintf(t, sizeof t, "%ld", v);
    return cb_put(b, t, (size_t)n);
}

/* days since 1970-01-01 -> "YYYY-MM-DD" (eng_date.h's conversion; written without printf:
 * this runs once per COPY row) */
void db_copybuf_fmt_date(char out[11], int32_t days) {
    int yi, mi, di;
    eng_civil_from_days(days, &yi, &mi, &di);
    long y = yi, m = mi, d = di;
    y = y < 0 ? 0 : y % 10000;
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

int db_copybuf_date(db_copybuf *b, int32_t days) {
    char t[11];
    db_copybuf_fmt_date(t, days);
    return cb_put(b, t, 10);
}

int db_copybuf_bool(db_copybuf *b, int v) {
    if (v < 0) return db_copybuf_null(b);
    return cb_put(b, v ? "t" : "f", 1);
}

int db_copybuf_eol(db_copybuf *b) {
    if (cb_reserve(b, 1)) return b->status;
    b->buf[b->len++] = '\n';
    b->col = 0;
    b->rows++;
    if (b->len >= COPYBUF_FLUSH) cb_flush(b);
    return b->status;
}

int db_copybuf_end(db_copybuf *b, const char *what) {
    int st = b->status;
    if (!st && b->conn) st = cb_flush(b);
    if (b->conn) {
        if (st) {
            PQputCopyEnd(b->conn, "aborted by rlprice");
        } else if (PQputCopyEnd(b->conn, NULL) != 1) {
            st = eng_err_set(ENG_EDB, "%s: ending COPY failed: %s", what, PQerrorMessage(b->conn));
        }
        PGresult *r;
        while ((r = PQgetResult(b->conn)) != NULL) {
            if (!st && PQresultStatus(r) != PGRES_COMMAND_OK)
                st = eng_err_set(ENG_EDB, "%s: %s", what, PQresultErrorMessage(r));
            PQclear(r);
        }
    }
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
    return st;
}

void db_copybuf_abort(db_copybuf *b) {
    if (b->conn) {
        PQputCopyEnd(b->conn, "aborted by rlprice");
        PGresult *r;
        while ((r = PQgetResult(b->conn)) != NULL) PQclear(r);
    }
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}
