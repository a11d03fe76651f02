/* exp_bench_nightly.c - `rlprice bench nightly` (see exp_bench_nightly.h, docs/nightly.md). */
#include "exp_bench_nightly.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db_bench_gen.h"
#include "db_conn.h"
#include "db_schema.h"
#include "db_store.h"
#include "eng_util.h"
#include "env_sim.h"
#include "exp_nightly.h"
#include "exp_nightly_window.h"

#define BENCH_DAY0 19723 /* 2024-01-01 */

/* Child process: simulate and store.  Exit status 0 ok, 3 database, 1 other. */
static int simulate_child(PGconn *m, const char *dbname, int n_products, int n_days, uint64_t seed) {
    PGconn *c = NULL;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    int rc = 1;
    double t = eng_now();
    if (env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, n_products, n_days, 1, BENCH_DAY0, seed, &h, &lg)) goto done;
    printf("  simulated %d products x %d days in %.1f s\n", n_products, n_days, eng_now() - t);
    fflush(stdout);
    t = eng_now();
    rc = 3;
    if (db_connect_like(&c, m, dbname)) goto done;
    db_store_report sr;
    if (db_history_store(c, h, NULL, &sr)) goto done;
    if (db_vacuum_analyze(c)) goto done;
    printf("  stored %ld sales rows, %ld competitor prices in %.1f s\n", sr.sales_inserted, sr.comp_inserted,
           eng_now() - t);
    rc = 0;
done:
    if (rc) fprintf(stderr, "rlprice: bench nightly: %s\n", eng_err_msg());
    fflush(NULL);
    db_history_free(h);
    env_sim_log_free(lg);
    if (c) PQfinish(c);
    return rc;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Bytes of the regular files under a folder (nftw has no context argument: a file static). */
static long long du_total;
static int du_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)p, (void)ftw;
    if (flag == FTW_F) du_total += (long long)sb->st_size;
    return 0;
}
static long long dir_bytes(const char *dir) {
    du_total = 0;
    return nftw(dir, du_cb, 16, FTW_PHYS) == 0 ? du_total : -1;
}
static long long file_bytes(const char *dir, const char *name) {
    char p[1500];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The sizes of what one night leaves on disk, beside the goals (docs/nightly.md): the report
 * (report.html + report.json, bounded by construction), the side files, and the checkpoints the
 * night saved (<ckpt>/<date>/), per product. */
static void print_sizes(const exp_nightly_summary *sum, const char *ckpt_root) {
    const double MB = 1e6;
    long long html = file_bytes(sum->report_dir, "report.html"), json = file_bytes(sum->report_dir, "report.json");
    long long csv = file_bytes(sum->report_dir, "products.csv.gz");
    long long recs = file_bytes(sum->report_dir, "recommendations.json");
    char dated[1100];
    snprintf(dated, sizeof dated, "%s/%s", ckpt_root, sum->run_date);
    long long ck = dir_bytes(dated);
    const int n = sum->n_products > 0 ? sum->n_products : 1;
    printf("  report: html %.2f MB + json %.2f MB = %.2f MB (%.0f bytes/product; goal <= 5 MB at 40,000 products: "
           "the per-product part is bounded, at most %d products listed)\n",
           (double)html / MB, (double)json / MB, (double)(html + json) / MB, (double)(html + json) / n, 200);
    printf("  beside it: products.csv.gz %.2f MB (%.0f bytes/product), recommendations.json %.2f MB (%.0f "
           "bytes/product)\n",
           (double)csv / MB, (double)csv / n, (double)recs / MB, (double)recs / n);
    printf("  checkpoints %s: %.2f MB, %.1f KB/product (goal <= 50 KB/product); at 40,000 products %.2f GB\n", dated,
           (double)ck / MB, (double)ck / n / 1000.0, (double)ck / n * 40000.0 / 1e9);
}

int exp_bench_nightly_config(exp_nightly_cfg *cfg, const char *device, uint64_t seed, int n_settings, char **settings) {
    /* --device and --seed first, so a --compare.device= / --compare.seed= setting given beside them
     * wins (the more specific flag; --seed still seeds the simulated history). */
    if (eng_device_check(device, "bench nightly --device")) return ENG_EINVAL;
    snprintf(cfg->compare.device, sizeof cfg->compare.device, "%s", device);
    cfg->compare.seed = seed;
    /* --nightly.KEY=VALUE: the nightly's own table; every other --section.KEY=VALUE: the
     * comparison's (in their order within each kind) */
    int nc = 0, st = ENG_OK;
    for (int i = 0; i < n_settings && !st; i++) {
        const char *a = settings[i];
        if (strncmp(a, "--nightly.", 10) != 0)
            settings[nc++] = settings[i]; /* kept in place for the comparison's parse below */
        else if (!strncmp(a, "--nightly.window_days=", 22)) /* the bench sets it from --days */
            return eng_err_set(ENG_EINVAL, "%s: the bench's window is its --days", a);
        else
            st = exp_nightly_set_flag(cfg, a, NULL);
    }
    if (!st && nc > 0) st = exp_compare_cfg_parse_flags(&cfg->compare, nc, settings);
    if (st) return st;
    if ((st = exp_nightly_window_check(cfg))) return st;
    return exp_compare_cfg_check(&cfg->compare);
}

int exp_bench_nightly_run(const char *dbarg, const char *device, const char *out, int n_products, int n_days, int keep,
                          uint64_t seed, int n_settings, char **settings) {
    PGconn *m = NULL, *c = NULL;
    exp_nightly_cfg cfg = exp_nightly_default();
    exp_nightly_summary sum;
    memset(&sum, 0, sizeof sum);
    int rc = 3, created = 0;
    char dbname[64], ckpt[1024];
    if (exp_bench_nightly_config(&cfg, device, seed, n_settings, settings)) {
        fprintf(stderr, "rlprice: bench nightly: %s\n", eng_err_msg());
        exp_compare_cfg_free(&cfg.compare);
        return 2;
    }
    snprintf(dbname, sizeof dbname, "rlprice_bnight_%d", (int)getpid());
    if (db_resolve(&m, dbarg)) goto done;
    if (db_database_create(m, dbname)) goto done;
    created = 1;
    if (db_connect_like(&c, m, dbname) || db_schema_apply(c)) goto done;
    printf("bench nightly: %s, database %s, %d products x %d days\n", db_describe(m), dbname, n_products, n_days);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { eng_err_set(ENG_EIO, "fork failed"); rc = 1; goto done; }
    if (pid == 0) _exit(simulate_child(m, dbname, n_products, n_days, seed));
    int wst = 0;
    if (waitpid(pid, &wst, 0) != pid || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
        eng_err_set(ENG_EDB, "simulating the history failed (see above)");
        rc = WIFEXITED(wst) ? WEXITSTATUS(wst) : 1;
        goto done;
    }
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", out);
    nftw(ckpt, rm_cb, 16, FTW_DEPTH | FTW_PHYS); /* cold start: pre-train from scratch */
    cfg.conn = c;
    cfg.date = BENCH_DAY0 + n_days;
    cfg.window_days = n_days;
    cfg.out_dir = out;
    cfg.ckpt_dir = ckpt;
    size_t rss0 = eng_peak_rss();
    int st = exp_nightly_run(&cfg, &sum);
    rc = exp_nightly_exit_code(st, &sum);
    if (st) goto done;
    const double stages[] = {sum.sec_load, sum.sec_features, sum.sec_train, sum.sec_ope, sum.sec_decide, sum.sec_report,
                             sum.sec_push};
    const char *names[] = {"load + validate", "features", "train (DQN, DDPG, LinUCB)", "OPE", "decide + guard",
                           "report", "push"};
    printf("  stage                        seconds\n");
    for (int k = 0; k < 7; k++) printf("  %-28s %8.1f\n", names[k], stages[k]);
    printf("  %-28s %8.1f  (%.1f min; goal <= 30 min)\n", "whole night", sum.sec_total, sum.sec_total / 60.0);
    printf("  peak RSS %.0f MiB (before the run %.0f MiB; goal <= 8192 MiB)\n", (double)sum.peak_rss / 1048576.0,
           (double)rss0 / 1048576.0);
    printf("  products %d: up %d, down %d, held %d, failed %d; report %s\n", sum.n_products, sum.n_up, sum.n_down,
           sum.n_held + sum.n_same, sum.n_failed, sum.report_dir);
    print_sizes(&sum, ckpt);
done:
    if (rc && rc != 4) fprintf(stderr, "rlprice: bench nightly: %s\n", eng_err_msg());
    if (c) PQfinish(c);
    if (created && !keep && db_database_drop(m, dbname))
        fprintf(stderr, "rlprice: %s\n", eng_err_msg());
    if (m) db_disconnect(m);
    exp_nightly_summary_free(&sum);
    exp_compare_cfg_free(&cfg.compare);
    return rc;
}
