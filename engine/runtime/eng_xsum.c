/* eng_xsum.c - exact sums of doubles (see eng_xsum.h). */
#include "eng_xsum.h"

#include <math.h>
#include <string.h>

#define XS_MASK 0xffffffffLL
#define XS_BIAS 1074 /* limb 0's lowest bit weighs 2^-1074 (the smallest subnormal) */

void eng_xsum_zero(eng_xsum *x, size_t n) { memset(x, 0, n * sizeof *x); }

void eng_xsum_normalize(eng_xsum *x) {
    for (int i = 0; i < ENG_XSUM_LIMBS - 1; i++) {
        int64_t carry = x->limb[i] >> 32; /* arithmetic shift: floor division by 2^32 */
        x->limb[i] -= carry * ((int64_t)1 << 32);
        x->limb[i + 1] += carry;
    }
    x->pending = 0;
}

void eng_xsum_add(eng_xsum *x, double v) {
    if (!isfinite(v)) {
        if (isnan(v)) x->n_nan++;
        else if (v > 0) x->n_pinf++;
        else x->n_ninf++;
        return;
    }
    if (v == 0) return;
    int e;
    double m = frexp(fabs(v), &e); /* |v| = m 2^e, m in [0.5, 1) */
    /* integer mantissa M (53 bits) and exponent E of |v| = M 2^E, E >= -1074 */
    int E = e - 53;
    uint64_t M = (uint64_t)ldexp(m, 53);
    if (E < -XS_BIAS) { /* subnormal: M has trailing zeros to drop */
        M >>= (-XS_BIAS - E);
        E = -XS_BIAS;
    }
    int shift = E + XS_BIAS, i = shift / 32, off = shift % 32;
    unsigned __int128 w = (unsigned __int128)M << off; /* at most 53 + 31 bits */
    int64_t p0 = (int64_t)(uint64_t)(w & XS_MASK), p1 = (int64_t)(uint64_t)((w >> 32) & XS_MASK),
            p2 = (int64_t)(uint64_t)(w >> 64);
    if (v < 0) p0 = -p0, p1 = -p1, p2 = -p2;
    x->limb[i] += p0;
    if (i + 1 < ENG_XSUM_LIMBS) x->limb[i + 1] += p1;
    if (i + 2 < ENG_XSUM_LIMBS) x->limb[i + 2] += p2;
    if (++x->pending >= ((int64_t)1 << 30)) eng_xsum_normalize(x);
}

void eng_xsum_merge(eng_xsum *dst, const eng_xsum *src, size_t n) {
    for (size_t k = 0; k < n; k++) {
        eng_xsum s = src[k];
        eng_xsum_normalize(&s);
        eng_xsum_normalize(&dst[k]);
        for (int i = 0; i < ENG_XSUM_LIMBS; i++) dst[k].limb[i] += s.limb[i];
        dst[k].n_nan += s.n_nan;
        dst[k].n_pinf += s.n_pinf;
        dst[k].n_ninf += s.n_ninf;
        eng_xsum_normalize(&dst[k]);
    }
}

double eng_xsum_round(const eng_xsum *in) {
    if (in->n_nan || (in->n_pinf && in->n_ninf)) return NAN;
    if (in->n_pinf) return INFINITY;
    if (in->n_ninf) return -INFINITY;
    eng_xsum x = *in;
    eng_xsum_normalize(&x);
    double sign = 1;
    if (x.limb[ENG_XSUM_LIMBS - 1] < 0) { /* negate: the digits below are then a positive value */
        for (int i = 0; i < ENG_XSUM_LIMBS; i++) x.limb[i] = -x.limb[i];
        eng_xsum_normalize(&x);
        sign = -1;
    }
    /* from the top: the first three non-zero limbs carry all 53 significant bits (96 bits) */
    double r = 0;
    int used = 0;
    for (int i = ENG_XSUM_LIMBS - 1; i >= 0 && used < 4; i--) {
        if (!x.limb[i] && !used) continue;
        r += ldexp((double)x.limb[i], 32 * i - XS_BIAS);
        used++;
    }
    return sign * r;
}
