/* eng_rng.h - the reproducible random number generator and seed derivation (part of the
 * shared runtime, see eng_util.h). */
#ifndef ENG_RNG_H
#define ENG_RNG_H

#include <stdint.h>

/* ---- RNG: xoshiro256** seeded by splitmix64; fully reproducible ------------ */
typedef struct eng_rng { uint64_t s[4]; } eng_rng;
void eng_rng_seed(eng_rng *r, uint64_t seed);
uint64_t eng_rng_u64(eng_rng *r);
double eng_rng_uniform(eng_rng *r);           /* [0, 1) */
double eng_rng_normal(eng_rng *r);            /* N(0, 1), Box-Muller */
uint64_t eng_rng_below(eng_rng *r, uint64_t n); /* uniform in [0, n), unbiased */
/* Inner-loop forms of the two above, the same numbers: eng_rng_next is eng_rng_u64; with
 * lim = eng_rng_below_lim(n) computed once, eng_rng_below_at(r, n, lim) is eng_rng_below(r, n)
 * (its rejection limit is the division a draw would otherwise repeat). n >= 1. */
static inline uint64_t eng_rng_next(eng_rng *r) {
    uint64_t *s = r->s, x = s[1] * 5, t = s[1] << 17;
    uint64_t result = ((x << 7) | (x >> 57)) * 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}
static inline uint64_t eng_rng_below_lim(uint64_t n) { return UINT64_MAX - UINT64_MAX % n; }
static inline uint64_t eng_rng_below_at(eng_rng *r, uint64_t n, uint64_t lim) {
    uint64_t x;
    do x = eng_rng_next(r);
    while (x >= lim);
    return x % n;
}
/* Derive an independent stream for index `i` (e.g. product i) from a base seed. */
uint64_t eng_seed_derive(uint64_t base, uint64_t i);

#endif
