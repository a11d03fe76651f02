/* bench_cmd.c - `rlprice bench engine|agents|db|nightly` (see rlp_cmd.h): the flags of the
 * benchmarks in experiments/bench/, which run them (exp_bench_*_run). */
#include "rlp_cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_parse.h"
#include "exp_bench.h"
#include "exp_bench_agents.h"
#include "exp_bench_db.h"
#include "exp_bench_nightly.h"

static int usage_engine(void) {
    fprintf(stderr, "usage: rlprice bench engine [--device auto|cpu|cuda] [--seconds S] [--seed N] [--threads N]\n");
    return 2;
}

int exp_cmd_bench_engine(int argc, char **argv) {
    const char *device = "auto";
    double seconds = 2.0;
    uint64_t seed = 1;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            device = argv[++i];
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = strtod(argv[++i], &end);
            if (*end || !(seconds > 0 && seconds <= 3600)) {
                fprintf(stderr, "rlprice: bench engine: --seconds wants a number in (0, 3600], got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = strtol(argv[++i], &end, 10);
            if (*end || !argv[i][0] || threads < 1 || threads > 1024) {
                fprintf(stderr, "rlprice: bench engine: --threads wants a positive integer, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (eng_parse_u64(argv[++i], &seed)) {
                fprintf(stderr, "rlprice: bench engine: --seed wants a non-negative integer, got '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "rlprice: bench engine: unknown or incomplete option '%s'\n", argv[i]);
            return usage_engine();
        }
    }
    return exp_bench_engine_run(device, seconds, seed, threads);
}

int exp_cmd_bench_agents(int argc, char **argv) {
    double seconds = 2.0;
    int products = 1000, budget = 200, threads = 0;
    const char *device = "auto", *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--device") && v) { device = v; i++; }
        else if (!strcmp(a, "--seconds") && v) { seconds = atof(v); i++; }
        else if (!strcmp(a, "--products") && v) { products = atoi(v); i++; }
        else if (!strcmp(a, "--budget") && v) { budget = atoi(v); i++; }
        else if (!strcmp(a, "--only") && v) { only = v; i++; }
        else if (!strcmp(a, "--threads") && v) { threads = atoi(v); i++; if (threads < 1) threads = -1; }
        else {
            fprintf(stderr, "usage: rlprice bench agents [--device cpu|cuda|auto] [--seconds S] [--products N] "
                            "[--budget STEPS] [--only dqn|ddpg|linucb|group] [--threads N]\n");
            return 2;
        }
    }
    if (!(seconds > 0) || products < 1 || budget < 1 || threads < 0) {
        fprintf(stderr, "rlprice: bench agents: --seconds, --products, --budget and --threads must be positive\n");
        return 2;
    }
    return exp_bench_agents_run(device, seconds, products, budget, only, threads);
}

int exp_cmd_bench_db(int argc, char **argv) {
    const char *dbarg = NULL;
    int n_products = 40000, n_days = 60, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) dbarg = argv[++i];
        else if (!strcmp(argv[i], "--products") && i + 1 < argc) n_products = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--days") && i + 1 < argc) n_days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else { fprintf(stderr, "usage: rlprice bench db [--db CONNINFO] [--products N] [--days N] [--keep]\n"); return 2; }
    }
    if (n_products <= 0 || n_days <= 0) { fprintf(stderr, "rlprice: --products and --days must be > 0\n"); return 2; }
    return exp_bench_db_run(dbarg, n_products, n_days, keep);
}

int exp_cmd_bench_nightly(int argc, char **argv) {
    const char *dbarg = NULL, *device = "auto", *out = "out/bench-nightly";
    int n_products = 40000, n_days = 60, keep = 0, ns = 0;
    uint64_t seed = 1;
    char **settings = calloc((size_t)(argc > 0 ? argc : 1), sizeof *settings); /* the --section.key=value flags */
    if (!settings) { fprintf(stderr, "rlprice: out of memory\n"); return 1; }
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strncmp(argv[i], "--", 2) && strchr(argv[i], '.') && strchr(argv[i], '=')) settings[ns++] = argv[i];
        else if (!strcmp(argv[i], "--db") && v) dbarg = v, i++;
        else if (!strcmp(argv[i], "--products") && v) n_products = atoi(v), i++;
        else if (!strcmp(argv[i], "--days") && v) n_days = atoi(v), i++;
        else if (!strcmp(argv[i], "--device") && v) device = v, i++;
        else if (!strcmp(argv[i], "--seed") && v) {
            i++;
            if (eng_parse_u64(v, &seed)) {
                fprintf(stderr, "rlprice: bench nightly: --seed wants a non-negative integer, got '%s'\n", v);
                free(settings);
                return 2;
            }
        } else if (!strcmp(argv[i], "--out") && v) out = v, i++;
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else {
            fprintf(stderr, "usage: rlprice bench nightly [--db CONNINFO] [--products 40000] [--days 60] [--device D]\n"
                            "                             [--seed S] [--out DIR] [--keep] [--compare.KEY=VALUE ...] [--nightly.KEY=VALUE ...]\n"
                            "  (--compare.seed= / --compare.device= given beside --seed / --device win)\n");
            free(settings);
            return 2;
        }
    }
    if (n_products <= 0 || n_days < 10) {
        fprintf(stderr, "rlprice: --products must be > 0 and --days >= 10\n");
        free(settings);
        return 2;
    }
    int rc = exp_bench_nightly_run(dbarg, device, out, n_products, n_days, keep, seed, ns, settings);
    free(settings);
    return rc;
}
