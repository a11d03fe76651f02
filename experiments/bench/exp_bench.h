/* exp_bench.h - benchmark commands (`rlprice bench ...`). */
#ifndef EXP_BENCH_H
#define EXP_BENCH_H

/* `rlprice bench engine [--device auto|cpu|cuda] [--seconds S] [--seed N]`: training-step
 * throughput of the engine's networks against the raw sgemm rate.  argv starts at "engine".
 * Prints a table to stdout; returns 0, 2 on bad flags, 1 on an engine failure. */
int exp_cmd_bench_engine(int argc, char **argv);

#include "eng_backend.h"

/* One line of backend work per step: d (a counter difference over `steps` steps) divided by
 * steps, with the issue-16 goals (<= 1 host sync and <= 1 upload per training step) and
 * PASS/MISS when goals != 0.  On the CPU the figures are the host-side structure (what a GPU
 * would be asked to do); on CUDA what the GPU did. */
void exp_bench_print_counters(const char *indent, const eng_backend_counters *d, long steps, int goals);

#endif
