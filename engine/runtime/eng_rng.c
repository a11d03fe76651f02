/* eng_rng.c - see eng_rng.h. */
#include "eng_rng.h"

#include <math.h>

/* splitmix64 */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void eng_rng_seed(eng_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}


uint64_t eng_rng_u64(eng_rng *r) { return eng_rng_next(r); }

double eng_rng_uniform(eng_rng *r) { return (double)(eng_rng_u64(r) >> 11) * 0x1.0p-53; }

double eng_rng_normal(eng_rng *r) {
    double u1 = eng_rng_uniform(r), u2 = eng_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t eng_rng_below(eng_rng *r, uint64_t n) {
    if (n == 0) return 0;
    return eng_rng_below_at(r, n, eng_rng_below_lim(n));
}

uint64_t eng_seed_derive(uint64_t base, uint64_t i) {
    uint64_t x = base ^ (0xd1b54a32d192ed03ULL * (i + 1));
    splitmix64(&x);
    return splitmix64(&x);
}

