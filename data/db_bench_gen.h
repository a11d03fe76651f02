/* db_bench_gen.h - synthetic data for `rlprice bench db`: products, sales and competitor prices
 * generated server-side (generate_series), and the psql \\copy the loader is timed against. */
#ifndef DB_BENCH_GEN_H
#define DB_BENCH_GEN_H

#include <libpq-fe.h>

/* psql's \\copy of the rows and columns the loader's sales phase streams. */
extern const char db_bench_psql_copy[];

/* Fill an empty rlprice database with gen[0] products x gen[1] days (decimal text, passed as
 * parameters) and VACUUM ANALYZE the tables.  Returns 0 or ENG_EDB (server message). */
int db_bench_generate(PGconn *c, const char *const gen[2]);

/* VACUUM ANALYZE of the whole database (after a bulk load).  Returns 0 or ENG_EDB. */
int db_vacuum_analyze(PGconn *c);

#endif
