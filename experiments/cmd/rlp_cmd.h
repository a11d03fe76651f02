/* rlp_cmd.h - the command-line front ends of `rlprice` (experiments/cmd/), one entry point per
 * subcommand, dispatched by rlprice.c.  Each receives argv starting at its (sub)command word,
 * parses its own flags, calls the layers below and returns the process exit code (0 ok,
 * 2 usage / configuration, 3 database, 1 other; exceptions are stated).  No argument parsing
 * lives anywhere else. */
#ifndef RLP_CMD_H
#define RLP_CMD_H

/* ---- data ---- */
/* `rlprice db init [--db CONNINFO] [--roles]`; exit code 0/2/3. */
int db_cmd_init(int argc, char **argv);
/* `rlprice db start|stop|env`: the embedded cluster; start and env print `export PG...`. */
int db_cmd_start(int argc, char **argv);
int db_cmd_stop(int argc, char **argv);
int db_cmd_env(int argc, char **argv);

/* `rlprice import ...` (see docs/import.md); exit code 0 ok, 1 skipped records with
 * --strict or other failure, 2 usage, 3 database. */
int db_cmd_import(int argc, char **argv);

/* `rlprice cache info FILE` and `rlprice cache save --out FILE [--db CONNINFO]`. */
int db_cmd_cache_info(int argc, char **argv);
/* `rlprice cache save --out FILE [--db CONNINFO] [--from DAY] [--to DAY]`: load the validated
 * history (db_load_history) and save it; exit code 0, 1 (file), 2 (usage), 3 (database). */
int db_cmd_cache_save(int argc, char **argv);

/* ---- env ---- */
/* `rlprice simulate ...` (env_sim_cmd.c); exit code 0 ok, 2 usage, 3 database, 1 other. */
int env_sim_cmd_simulate(int argc, char **argv);

/* `rlprice behaviour eval [--products N] [--days D] [--seed S] [--split T] [--shrink X]
 * [--eps E]`: prints the comparison table; exit 0 ok, 2 usage, 1 other. */
int env_behaviour_cmd_eval(int argc, char **argv);

/* ---- experiments ---- */
/* `rlprice ope --logged FILE.csv [--json] [--bootstrap B] [--seed S] [--alpha A] [--tau T]
 *  [--lambda L]`.  argv[0] is "ope".  Exit 0 ok, 2 usage or bad file, 1 other failure. */
int ope_cmd_ope(int argc, char **argv);

/* `rlprice ope-validate [--products N] [--seeds S] [--periods T] [--episodes M] [--horizon H]
 *  [--seq-seeds S] [--bootstrap B] [--fqe-boot B] [--no-fqe] [--no-seq] [--seed S] [--device cpu|cuda|auto]`: prints the
 * table.  argv[0] is "ope-validate".  Exit 0 ok, 2 usage, 1 other failure. */
int ope_cmd_validate(int argc, char **argv);

/* `rlprice compare [--db CONNINFO | --cache FILE.h5 | --preset dominicks] [--config FILE]
 *  [--products LIST] [--json OUT] [--device D] [<setting flags>]`.  argv[0] is "compare".
 * Exit 0 ok, 2 usage/config error, 3 database error, 1 other. */
int exp_cmd_compare(int argc, char **argv);

/* `rlprice report [--db CONNINFO | --cache FILE.h5 | --preset dominicks] [--config FILE]
 *  [--device D] [--<setting> VALUE ...] --out DIR`: load the history, run exp_compare_run and
 * write DIR/report.html and DIR/report.json.  argv[0] is "report".  Exit 0 ok, 2 usage/config
 * error, 3 database error, 1 other. */
int exp_cmd_report(int argc, char **argv);

/* `rlprice nightly [--db CONNINFO] [--date YYYY-MM-DD] [--config FILE] [--products LIST]
 *  [--dry-run] [--out DIR] [--ckpt DIR] [--device auto|cpu|cuda] [--quiet|--verbose]
 *  [<setting flags>]`.  argv[0] is "nightly".  Exit code as exp_nightly_exit_code. */
int exp_cmd_nightly(int argc, char **argv);

/* `rlprice backtest [--family logit|ce|ref|preset|all] [--seed S] [--seeds N] [--products N]
 *  [--days D] [--db CONNINFO] [--keep] [--out DIR] [--device D] [--json FILE] [--config FILE]
 *  [<setting flags>]`; argv[0] is "backtest".  Exit 0 ok, 2 usage, 3 database, 1 other. */
int exp_cmd_backtest(int argc, char **argv);

/* ---- benchmarks ---- */
/* `rlprice bench engine [--device auto|cpu|cuda] [--seconds S] [--seed N]`: training-step
 * throughput of the engine's networks against the raw sgemm rate.  argv starts at "engine".
 * Prints a table to stdout; returns 0, 2 on bad flags, 1 on an engine failure. */
int exp_cmd_bench_engine(int argc, char **argv);

/* Command: rlprice bench agents [--device cpu|cuda|auto] [--seconds S] [--products N]
 *                               [--budget STEPS] [--only dqn|ddpg|linucb|group]
 * Prints one line per figure to stdout.  Returns 0, 2 (usage), 1 (failure). */
int exp_cmd_bench_agents(int argc, char **argv);

/* `rlprice bench db [--db CONNINFO] [--products N] [--days N] [--keep]`.
 * Creates a scratch database rlprice_bench_<pid> on the server (embedded cluster by default),
 * generates the rows server-side, prints the figures, drops the database (unless --keep).
 * Exit code 0, 2 (usage) or 3 (database error). */
int exp_cmd_bench_db(int argc, char **argv);

/* `rlprice bench nightly [--db CONNINFO] [--products 40000] [--days 60] [--device D] [--seed S]
 *  [--out DIR] [--keep]`.  argv[0] is "nightly".  Creates a scratch database
 * rlprice_bnight_<pid> (embedded cluster by default), simulates the history into it in a child
 * process (so its memory does not count), runs exp_nightly_run from cold checkpoints and prints
 * the time per stage and the peak RSS; drops the database unless --keep.
 * Exit code 0, 2 (usage), 3 (database), 1 (other failure), 4 (some products failed). */
int exp_cmd_bench_nightly(int argc, char **argv);

#endif
