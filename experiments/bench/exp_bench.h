/* exp_bench.h - benchmark commands (`rlprice bench ...`). */
#ifndef EXP_BENCH_H
#define EXP_BENCH_H

#include <stdint.h>

/* `rlprice bench engine` after its flags: the table on stdout.  Returns the exit code: 0, 2 (bad
 * device), 1 (engine failure). */
int exp_bench_engine_run(const char *device, double seconds, uint64_t seed, long threads);

#endif
