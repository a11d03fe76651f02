/* rlprice.c - the `rlprice` command: parses global flags and dispatches subcommands.
 * All work lives in the layers (data/, features/, env/, agents/, experiments/); each
 * subcommand's front end is in experiments/cmd/ (rlp_cmd.h), an `int xxx_cmd_yyy(int argc,
 * char **argv)` that parses its flags and returns an exit code. This is
 * the only place (besides tests) where the process exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_backend.h"
#include "eng_util.h"
#include "rlp_cmd.h"

#define RLPRICE_VERSION "0.1.0"

typedef int (*rlp_cmd_fn)(int argc, char **argv);
typedef struct {
    const char *name;   /* first word */
    const char *sub;    /* second word, or NULL */
    rlp_cmd_fn fn;      /* receives argv starting at the (sub)command word */
    const char *help;
} rlp_cmd;

/* ---- command table: one row per subcommand (keep sorted by layer) ---- */
static int cmd_bench_all(int argc, char **argv);

static const rlp_cmd commands[] = {
    /* data */
    {"db", "init", db_cmd_init, "apply the schema (data/schema.sql) [--db CONNINFO] [--roles]"},
    {"db", "start", db_cmd_start, "start the embedded PostgreSQL cluster (.pgdata/); prints export lines"},
    {"db", "stop", db_cmd_stop, "stop the embedded PostgreSQL cluster"},
    {"db", "env", db_cmd_env, "print the embedded cluster's export PG... lines"},
    {"import", NULL, db_cmd_import, "load CSV history (--csv FILE --table T --map ...) or --preset dominicks"},
    {"cache", "save", db_cmd_cache_save, "save the validated history to an HDF5 feature store (--out FILE)"},
    {"cache", "info", db_cmd_cache_info, "describe an HDF5 feature store file"},
    /* env */
    {"simulate", NULL, env_sim_cmd_simulate, "simulated sales history with known demand (--products N --days D --seed S)"},
    {"behaviour", "eval", env_behaviour_cmd_eval, "behaviour-policy models vs true simulated propensities (--products N --days D)"},
    /* experiments */
    {"ope", NULL, ope_cmd_ope, "offline policy evaluation of a logged bandit CSV (docs/ope.md)"},
    {"compare", NULL, exp_cmd_compare, "train DQN/DDPG/LinUCB per product and compare them by OPE (docs/compare.md)"},
    {"ope-validate", NULL, ope_cmd_validate, "OPE estimators vs the simulator's truth: bias and coverage (--products N --seeds S)"},
    {"report", NULL, exp_cmd_report, "compare the agents and write an HTML + JSON report (--out DIR; docs/report.md)"},
    {"nightly", NULL, exp_cmd_nightly, "the nightly pricing run: load, train, OPE, decide, report, push (docs/nightly.md)"},
    {"backtest", NULL, exp_cmd_backtest, "the nightly on a simulated history, valued under the known truth (docs/backtest.md)"},
    {"bench", "engine", exp_cmd_bench_engine, "engine training-step throughput vs sgemm (--device, --seconds)"},
    {"bench", "db", exp_cmd_bench_db, "COPY loader vs psql \\copy, loader memory, push time [--db CONNINFO]"},
    {"bench", "agents", exp_cmd_bench_agents, "agent throughput: DQN, DDPG, LinUCB, a 1,000-product group"},
    {"bench", "nightly", exp_cmd_bench_nightly, "a whole nightly run on a simulated history (--products 40000 --days 60)"},
    {"bench", "all", cmd_bench_all, "every benchmark above, one after the other"},
    {NULL, NULL, NULL, NULL},
};

/* `bench all`: run each benchmark with no extra flags; the exit code is the first failure's. */
static int cmd_bench_all(int argc, char **argv) {
    (void)argc;
    static const rlp_cmd_fn benches[] = {exp_cmd_bench_engine, exp_cmd_bench_agents, exp_cmd_bench_db};
    int rc = 0;
    for (size_t k = 0; k < sizeof benches / sizeof benches[0]; k++) {
        char *args[] = {argv[0], NULL};
        int r = benches[k](1, args);
        fflush(stdout);
        if (r != 0 && rc == 0) rc = r;
    }
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: rlprice [--verbose|--quiet] COMMAND [ARGS]\n\ncommands:\n");
    for (const rlp_cmd *c = commands; c->name; c++) {
        char words[64];
        snprintf(words, sizeof words, "%s%s%s", c->name, c->sub ? " " : "", c->sub ? c->sub : "");
        fprintf(f, "  %-22s %s\n", words, c->help);
    }
    fprintf(f, "\nEvery command's front end is in experiments/cmd/; it calls data/ (all SQL), env/, agents/ and\n"
               "experiments/{ope,compare,nightly,report,bench}/ (README, \"Layout\"; docs/*.md per command).\n");
}

int main(int argc, char **argv) {
    /* OpenBLAS chooses its kernels when it is loaded; on AVX-512 CPUs that its version does not
     * know (eng_cpu_blas_better_core) start once more with the faster set.  The variable stays
     * set, so this happens at most once; if exec fails we simply go on with the kernels we have. */
    const char *core = eng_cpu_blas_better_core();
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) execv("/proc/self/exe", argv);
    (void)eng_mem_keep(); /* freed buffers stay for reuse (eng_time.h) */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) eng_log_set_level(ENG_LOG_DEBUG);
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) eng_log_set_level(ENG_LOG_WARN);
        else if (!strcmp(argv[i], "--version")) { printf("rlprice %s\n", RLPRICE_VERSION); return 0; }
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else { fprintf(stderr, "rlprice: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    if (i >= argc) { usage(stderr); return 2; }
    const char *name = argv[i];
    const char *sub = i + 1 < argc ? argv[i + 1] : NULL;
    for (const rlp_cmd *c = commands; c->name; c++) {
        if (strcmp(c->name, name) != 0) continue;
        if (c->sub) {
            if (!sub || strcmp(c->sub, sub) != 0) continue;
            return c->fn(argc - i - 1, argv + i + 1);
        }
        return c->fn(argc - i, argv + i);
    }
    fprintf(stderr, "rlprice: unknown command '%s%s%s'\n", name, sub ? " " : "", sub ? sub : "");
    usage(stderr);
    return 2;
}
