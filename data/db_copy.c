/* db_copy.c - COPY text and binary format helpers and dates (see db_copy.h). */
#include "db_copy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "eng_date.h"
#include "eng_util.h"

/* ---- dates ------------------------------------------------------------------ */

void db_day_format(int32_t z, char out[16]) {
    int y, m, d;
    eng_civil_from_days(z, &y, &m, &d);
    snprintf(out, 16, "%04d-%02u-%02u", y % 100000, (unsigned)m % 100, (unsigned)d % 100);
}

int db_day_parse(const char *s, int32_t *day) {
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) { if (s[i] != '-') return ENG_EFORMAT; }
        else if (s[i] < '0' || s[i] > '9') return ENG_EFORMAT;
    }
    if (s[10] != '\0') return ENG_EFORMAT;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0')), d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    if (m < 1 || m > 12 || d < 1 || d > 31) return ENG_EFORMAT;
    *day = eng_days_from_civil(y, (int)m, (int)d);
    return ENG_OK;
}

/* ---- COPY text format ---------------------------------------------------------- */

int db_copy_escape(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t need = *len + 2 * strlen(s) + 2;
    if (need > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < need) nc *= 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return eng_err_set(ENG_ENOMEM, "out of memory building COPY data");
        *buf = nb;
        *cap = nc;
    }
    char *o = *buf + *len;
    for (; *s; s++) {
        switch (*s) {
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        default: *o++ = *s;
        }
    }
    *len = (size_t)(o - *buf);
    return ENG_OK;
}

int db_copy_send(PGconn *conn, const char *buf, size_t len, const char *what) {
    char msg[1024];
    const size_t chunk = 1 << 20;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (PQputCopyData(conn, buf + off, (int)n) != 1) {
            PQputCopyEnd(conn, "client error");
            break;
        }
    }
    int st = ENG_OK;
    if (PQputCopyEnd(conn, NULL) != 1) st = ENG_EDB;
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) st = ENG_EDB;
        PQclear(r);
    }
    if (st) return eng_err_set(ENG_EDB, "%s: %s", what, db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
    return ENG_OK;
}

/* Split a COPY text row in place into at most max fields (trailing newline removed).
 * Returns the field count. NULL fields (\N) become NULL pointers. */
int db_copy_split(char *row, int len, char **f, int max) {
    if (len > 0 && row[len - 1] == '\n') len--;
    row[len] = '\0';
    int n = 0;
    char *s = row, *end = row + len;
    for (;;) {
        char *e = s;
        while (e < end && *e != '\t') e++;
        *e = '\0';
        if (n < max) f[n] = (s[0] == '\\' && s[1] == 'N' && s[2] == '\0') ? NULL : s;
        n++;
        if (e >= end) break;
        s = e + 1;
    }
    return n;
}

/* Undo COPY text escapes in place. */
void db_copy_unescape(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) { *o++ = *s; continue; }
        s++;
        switch (*s) {
        case 't': *o++ = '\t'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'v': *o++ = '\v'; break;
        case 'x': {
            int v = 0, k = 0;
            while (k < 2 && ((s[1] >= '0' && s[1] <= '9') || ((s[1] | 32) >= 'a' && (s[1] | 32) <= 'f'))) {
                s++;
                v = v * 16 + (*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
                k++;
            }
            *o++ = (char)v;
            break;
        }
        default:
            if (*s >= '0' && *s <= '7') {
                int v = *s - '0', k = 1;
                while (k < 3 && s[1] >= '0' && s[1] <= '7') { s++; v = v * 8 + (*s - '0'); k++; }
                *o++ = (char)v;
            } else {
                *o++ = *s;
            }
        }
    }
    *o = '\0';
}

/* Numeric text -> double; NaN for NULL or unparsable.  Fast path for plain decimals. */
int db_copy_num_scale(const char *s) {
    if (!s) return -1;
    const char *dot = strchr(s, '.');
    if (!dot) return 0;
    int n = 0;
    while (dot[1 + n] >= '0' && dot[1 + n] <= '9') n++;
    return n;
}

double db_copy_num(const char *s) {
    if (!s) return NAN;
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = s;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    uint64_t m = 0;
    int digits = 0, frac = 0, seen_dot = 0;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 15) goto slow;
            m = m * 10 + (uint64_t)(*p - '0');
            frac += seen_dot;
        } else if (*p == '.' && !seen_dot) {
            seen_dot = 1;
        } else {
            goto slow;
        }
    }
    if (digits == 0) return NAN;
    {
        double v = (double)m / p10[frac];
        return neg ? -v : v;
    }
slow:;
    char *end;
    double v = strtod(s, &end);
    return *end == '\0' && end != s ? v : NAN;
}

/* ---- binary COPY ---------------------------------------------------------------- */

int32_t db_bin_int32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (int32_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3]);
}

static int db_bin_int16(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (int16_t)((uint16_t)(u[0] << 8 | u[1]));
}

int db_bin_fields(const char *msg, int len, int *header_done, const char **f, int32_t *flen, int max) {
    const char *p = msg, *end = msg + len;
    if (!*header_done) {
        static const char sig[11] = "PGCOPY\n\377\r\n";
        if (len < 19 || memcmp(p, sig, 11) != 0) return ENG_EFORMAT;
        int32_t ext = db_bin_int32(p + 15);
        if (ext < 0 || 19 + (int64_t)ext > len) return ENG_EFORMAT;
        p += 19 + ext;
        *header_done = 1;
        if (p == end) return ENG_EFORMAT; /* header alone: caller treats as malformed */
    }
    if (end - p < 2) return ENG_EFORMAT;
    int nf = db_bin_int16(p);
    p += 2;
    if (nf == -1) return -1;
    if (nf < 0) return ENG_EFORMAT;
    for (int i = 0; i < nf; i++) {
        if (end - p < 4) return ENG_EFORMAT;
        int32_t l = db_bin_int32(p);
        p += 4;
        if (l < -1 || (l > 0 && end - p < l)) return ENG_EFORMAT;
        if (i < max) { f[i] = p; flen[i] = l; }
        if (l > 0) p += l;
    }
    return nf;
}

double db_bin_numeric(const char *p, int32_t len) {
    static const double p10[] = {1, 1e4, 1e8, 1e12, 1e16, 1e20};
    if (len < 8) return NAN;
    int ndigits = db_bin_int16(p), weight = db_bin_int16(p + 2);
    unsigned sign = (unsigned)(uint16_t)db_bin_int16(p + 4);
    if (ndigits < 0 || len < 8 + 2 * ndigits) return NAN;
    if (sign == 0xC000) return NAN;
    if (sign == 0xD000) return INFINITY;
    if (sign == 0xF000) return -INFINITY;
    if (ndigits == 0) return 0.0;
    double v;
    int exp4 = weight - ndigits + 1; /* value = mantissa * 10000^exp4 */
    if (ndigits <= 4 && exp4 >= -5 && exp4 <= 5) {
        uint64_t m = 0;
        for (int i = 0; i < ndigits; i++) m = m * 10000 + (uint64_t)db_bin_int16(p + 8 + 2 * i);
        v = exp4 < 0 ? (double)m / p10[-exp4] : (double)m * p10[exp4]; /* one rounding, as strtod */
    } else {
        v = 0;
        for (int i = 0; i < ndigits; i++) v += db_bin_int16(p + 8 + 2 * i) * pow(10000.0, weight - i);
    }
    return sign == 0x4000 ? -v : v;
}

int db_bin_numeric_scale(const char *p, int32_t len) {
    if (!p || len < 8) return -1;
    int dscale = db_bin_int16(p + 6);
    return dscale >= 0 ? dscale : -1;
}
