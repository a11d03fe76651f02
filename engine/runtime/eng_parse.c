/* eng_parse.c - see eng_parse.h. */
#include "eng_parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_status.h"

char *eng_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

int eng_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return ENG_EINVAL;
    *out = v;
    return ENG_OK;
}

/* eng_parse_u64 / eng_parse_u64_c in strtoull's base (10, or 0: C's prefixes). */
static int parse_u64(const char *s, int base, uint64_t *out) {
    char *end;
    if (!isdigit((unsigned char)*s)) return ENG_EINVAL; /* strtoull would take a sign or blanks */
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end) return ENG_EINVAL; /* ERANGE: above ULLONG_MAX (64 bits here) */
    *out = (uint64_t)v;
    return ENG_OK;
}

int eng_parse_u64(const char *s, uint64_t *out) { return parse_u64(s, 10, out); }

int eng_parse_u64_c(const char *s, uint64_t *out) { return parse_u64(s, 0, out); }

int eng_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno == ERANGE) return ENG_EINVAL;
    *out = x;
    return ENG_OK;
}

int eng_parse_decimal(const char *s, double *out) {
    if (!s) return ENG_EFORMAT;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return ENG_EFORMAT;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return ENG_EFORMAT;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return ENG_EFORMAT;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0)) return ENG_EFORMAT;
    *out = v;
    return ENG_OK;
}

/* The fewest significant digits (1..max) whose %g text reads back as v (max when none does).
 * Reading back exactly is monotone in the digits (more digits are never further from v), so a
 * binary search finds the same shortest text the linear search from 1 did, in about 4 tries. */
static char *fmt_shortest(char out[32], double v, int max, int is_float) {
    int lo = 1, hi = max; /* the answer lies in [lo, hi]; hi always reads back (or is max) */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(out, 32, "%.*g", mid, v);
        int ok = is_float ? strtof(out, NULL) == (float)v : strtod(out, NULL) == v;
        if (ok) hi = mid;
        else lo = mid + 1;
    }
    snprintf(out, 32, "%.*g", lo, v);
    return out;
}

char *eng_fmt_double(char out[32], double v) {
    if (isnan(v)) { snprintf(out, 32, "none"); return out; }
    return fmt_shortest(out, v, 17, 0);
}

char *eng_fmt_float(char out[32], float v) {
    if (isnan(v)) { snprintf(out, 32, "none"); return out; }
    return fmt_shortest(out, (double)v, 9, 1);
}
