/* exp_bench_nightly.h - `rlprice bench nightly`: a whole nightly run at paper scale. */
#ifndef EXP_BENCH_NIGHTLY_H
#define EXP_BENCH_NIGHTLY_H

/* `rlprice bench nightly [--db CONNINFO] [--products 40000] [--days 60] [--device D] [--seed S]
 *  [--out DIR] [--keep]`.  argv[0] is "nightly".  Creates a scratch database
 * rlprice_bnight_<pid> (embedded cluster by default), simulates the history into it in a child
 * process (so its memory does not count), runs exp_nightly_run from cold checkpoints and prints
 * the time per stage and the peak RSS; drops the database unless --keep.
 * Exit code 0, 2 (usage), 3 (database), 1 (other failure), 4 (some products failed). */
int exp_cmd_bench_nightly(int argc, char **argv);

#endif
