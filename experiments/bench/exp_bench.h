/* exp_bench.h - benchmark commands (`rlprice bench ...`). */
#ifndef EXP_BENCH_H
#define EXP_BENCH_H

#include <stdint.h>

/* `rlprice bench engine` after its flags: the table on stdout.  Returns the exit code: 0, 2 (bad
 * device), 1 (engine failure). */
int exp_bench_engine_run(const char *device, double seconds, uint64_t seed, long threads);

#include "eng_backend.h"

/* One line of backend work per step: d (a counter difference over `steps` steps) divided by
 * steps, with the issue-16 goals (<= 1 host sync and <= 1 upload per training step) and
 * PASS/MISS when goals != 0.  On the CPU the figures are the host-side structure (what a GPU
 * would be asked to do); on CUDA what the GPU did. */
void exp_bench_print_counters(const char *indent, const eng_backend_counters *d, long steps, int goals);

#endif
