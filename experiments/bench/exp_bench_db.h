/* exp_bench_db.h - `rlprice bench db`: the COPY loader against psql's \copy at paper scale
 * (40,000 products x 60 days), loader memory, and the time to push 40,000 recommendations. */
#ifndef EXP_BENCH_DB_H
#define EXP_BENCH_DB_H

/* `rlprice bench db` after its flags.  Returns the exit code: 0 or 3 (database). */
int exp_bench_db_run(const char *dbarg, int n_products, int n_days, int keep);

#endif
