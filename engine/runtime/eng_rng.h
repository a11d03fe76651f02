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
/* Derive an independent stream for index `i` (e.g. product i) from a base seed. */
uint64_t eng_seed_derive(uint64_t base, uint64_t i);

#endif
