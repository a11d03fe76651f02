/* exp_bench_nightly.h - `rlprice bench nightly`: a whole nightly run at paper scale. */
#ifndef EXP_BENCH_NIGHTLY_H
#define EXP_BENCH_NIGHTLY_H

#include <stdint.h>

/* `rlprice bench nightly` after its flags.  Returns the exit code: 0, 3 (database), 1 (other),
 * 4 (some products failed). */
int exp_bench_nightly_run(const char *dbarg, const char *device, const char *out, int n_products, int n_days, int keep,
                          uint64_t seed);

#endif
