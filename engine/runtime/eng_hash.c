/* eng_hash.c - FNV-1a 64 and the double comparator (eng_hash.h). */
#include "eng_hash.h"

#define FNV_PRIME 1099511628211ULL

uint64_t eng_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

uint64_t eng_fnv1a_str(uint64_t h, const char *s) {
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) h = (h ^ *c) * FNV_PRIME;
    return h;
}

int eng_cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
