/* exp_bench.h - benchmark commands (`rlprice bench ...`). */
#ifndef EXP_BENCH_H
#define EXP_BENCH_H

/* `rlprice bench engine [--device auto|cpu|cuda] [--seconds S] [--seed N]`: training-step
 * throughput of the engine's networks against the raw sgemm rate.  argv starts at "engine".
 * Prints a table to stdout; returns 0, 2 on bad flags, 1 on an engine failure. */
int exp_cmd_bench_engine(int argc, char **argv);

#endif
