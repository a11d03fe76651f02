/* exp_bench_db.h - `rlprice bench db`: the COPY loader against psql's \copy at paper scale
 * (40,000 products x 60 days), loader memory, and the time to push 40,000 recommendations. */
#ifndef EXP_BENCH_DB_H
#define EXP_BENCH_DB_H

/* `rlprice bench db [--db CONNINFO] [--products N] [--days N] [--keep]`.
 * Creates a scratch database rlprice_bench_<pid> on the server (embedded cluster by default),
 * generates the rows server-side, prints the figures, drops the database (unless --keep).
 * Exit code 0, 2 (usage) or 3 (database error). */
int exp_cmd_bench_db(int argc, char **argv);

#endif
