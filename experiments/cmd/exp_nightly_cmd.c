/* exp_nightly_cmd.c - `rlprice nightly`: flags, configuration file, the progress line. */
#include "rlp_cmd.h"
#include "eng_date.h"
#include "exp_nightly.h"

#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agt_config.h"
#include "db_conn.h"
#include "eng_par.h"
#include "eng_util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rlprice nightly [--db CONNINFO] [--date YYYY-MM-DD] [--config FILE] [--products LIST]\n"
            "                       [--dry-run] [--out DIR] [--ckpt DIR] [--ckpt-keep N] [--device auto|cpu|cuda]\n"
            "                       [--quiet|--verbose] [--window-days N] [<setting flags, e.g. --dqn.lr=0.001>]\n"
            "  --date      the day priced (default today); the history ends the day before\n"
            "  --products  ids, patterns (dom-s2-*) or @FILE, comma-separated\n"
            "  --out       report folder root (default out/nightly; links DIR/<run_id> and DIR/latest point at\n"
            "              the attempt's folder DIR/<run_id>.attempt-<N>)\n"
            "  --ckpt      checkpoint folder (default out/ckpt; \"\" = none): the run saves DIR/<date> and\n"
            "              warm-starts from the newest earlier DIR/<date>; --ckpt-keep N dates kept (3; 0 = all)\n"
            "  --dry-run   everything except database writes (no run row, no rejected_rows, no push)\n"
            "  --mpi-timeout S  under mpirun: fail the run when a rank does not answer in S seconds (600)\n"
            "exit codes: 0 ok, 2 bad configuration/usage, 3 database failure, 4 some products failed,\n"
            "            5 another run of the same run id is in progress (nothing done), 1 other failure\n"
            "See docs/nightly.md.\n");
}

/* ---- progress line ---------------------------------------------------------------------- */
typedef struct prog_state {
    int tty;            /* redraw one line with \r */
    int quiet;
    char stage[16];
    double t_stage, t_last;
    double t_prev;      /* time of the previous progress event (0: none yet): a stage's time
                           runs from the previous event, whatever stage reported it */
    int line_open;
    /* time spent in each stage so far: stages interleave (train and ope alternate per model
     * group), so a stage's elapsed time and rate add up its segments */
    int n_stages;
    char names[12][16];
    double acc[12];
    int cur;            /* index of p->stage in names, -1 none */
} prog_state;

/* Index of a stage in p's table (added when new; the last slot is shared when full). */
static int prog_stage_index(prog_state *p, const char *stage) {
    for (int i = 0; i < p->n_stages; i++)
        if (!strcmp(p->names[i], stage)) return i;
    if (p->n_stages < 12) {
        snprintf(p->names[p->n_stages], sizeof p->names[0], "%s", stage);
        p->acc[p->n_stages] = 0;
        return p->n_stages++;
    }
    return 11;
}

static void fmt_dur(double s, char *b, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(b, n, "?");
    else if (s < 10) snprintf(b, n, "%.1fs", s);
    else if (s < 60) snprintf(b, n, "%.0fs", s);
    else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(b, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void on_progress(void *ctx, const char *stage, long done, long total) {
    prog_state *p = ctx;
    if (p->quiet) return;
    double now = eng_now();
    if (strcmp(p->stage, stage) != 0 || p->n_stages == 0) {
        if (p->line_open) fputc('\n', stderr), p->line_open = 0;
        double seg0 = p->t_prev > 0 ? p->t_prev : now;
        if (p->n_stages > 0 && p->cur >= 0) p->acc[p->cur] += seg0 - p->t_stage; /* close the segment */
        snprintf(p->stage, sizeof p->stage, "%s", stage);
        p->cur = prog_stage_index(p, stage);
        p->t_stage = seg0;
        p->t_last = 0;
    }
    p->t_prev = now;
    const int final = total > 0 && done >= total;
    if (!final && now - p->t_last < (p->tty ? 0.2 : 10.0)) return;
    if (!p->tty && (total <= 0 || done == 0)) return; /* nothing countable to say in a log */
    p->t_last = now;
    double el = p->acc[p->cur] + (now - p->t_stage), rate = el > 0 ? (double)done / el : NAN;
    char eta[16], els[16], etab[24];
    fmt_dur(rate > 0 ? (double)(total - done) / rate : NAN, eta, sizeof eta);
    fmt_dur(el, els, sizeof els);
    char rs[24];
    if (isfinite(rate) && rate >= 10) snprintf(rs, sizeof rs, "%.0f", rate);
    else if (isfinite(rate)) snprintf(rs, sizeof rs, "%.2g", rate);
    else snprintf(rs, sizeof rs, "?");
    char line[160];
    if (total > 0)
        snprintf(line, sizeof line, "%-8s %ld/%ld products  %s/s  %s%s%s", stage, done, total, rs,
                 final ? "took " : "elapsed ", els, final ? "" : (snprintf(etab, sizeof etab, ", ETA %s", eta), etab));
    else
        snprintf(line, sizeof line, "%-8s ... %s", stage, els);
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        p->line_open = 1;
        if (final) fputc('\n', stderr), p->line_open = 0;
    } else {
        fprintf(stderr, "rlprice: nightly: %s\n", line);
    }
    fflush(stderr);
}

static int32_t today(void) {
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    char b[16];
    strftime(b, sizeof b, "%Y-%m-%d", &tmv);
    int32_t d = 0;
    eng_date_parse(b, &d);
    return d;
}

static void print_summary(const exp_nightly_summary *s, int dry_run) {
    printf("nightly %s: run %s for %s\n", dry_run ? "(dry run, nothing pushed)" : "finished", s->run_id, s->run_date);
    printf("  products priced %d: repriced up %d, down %d; held %d", s->n_products, s->n_up, s->n_down,
           s->n_held + s->n_same);
    if (s->n_same) printf(" (%d deployed at the incumbent price)", s->n_same);
    printf("\n");
    for (int k = 0; k < EXP_HOLD_COUNT; k++)
        if (s->n_hold[k]) printf("    %-28s %d\n", exp_hold_reason_name((exp_hold_reason)k), s->n_hold[k]);
    printf("  deployed by agent:");
    for (int a = 1; a < EXP_N_AGENTS; a++) printf(" %s %d", exp_agent_name((exp_agent)a), s->n_deployed_by[a]);
    if (s->n_by_model || s->n_partial)
        printf(" (on the demand model's evidence %d; part of the agent's move %d)", s->n_by_model, s->n_partial);
    printf("\n");
    int n_rep = s->n_up + s->n_down;
    if (n_rep)
        printf("  new prices charged before: in a normal period %d, only in promotion periods %d (%.0f%% of the %d "
               "repriced), never %d; expected uplifts capped at what the history makes plausible %d, still above the "
               "product's mean period %d (reasons |uplift_capped, |uplift_above_mean, |promo_only_price)\n",
               s->n_seen[EXP_SEEN_NORMAL], s->n_seen[EXP_SEEN_PROMO_ONLY], 100.0 * s->n_seen[EXP_SEEN_PROMO_ONLY] / n_rep,
               n_rep, s->n_seen[EXP_SEEN_NEVER], s->n_capped, s->n_above_mean);
    if (s->explore.on)
        printf("  exploration: %d of %d eligible products explored (probability %.4g; %d pinned, %d without a "
               "neighbour); expected revenue given up %.4g per period = %.3f%% of %.4g\n",
               s->explore.n_explored, s->explore.n_eligible, s->explore.prob, s->explore.n_pinned,
               s->explore.n_no_neighbour, s->explore.cost, 100.0 * s->explore.cost_share, s->explore.revenue);
    printf("  skipped (too little history) %d; rejected input rows %lld\n", s->n_skipped, (long long)s->n_rejected_rows);
    printf("  OPE rows: %ld with the propensity rlprice logged when it set the price (exact IPS), %ld with the "
           "estimated behaviour policy\n", s->n_eval_logged, s->n_eval_estimated);
    printf("  OPE (mean one-step value per product, recommended estimator, 95%% CI):\n");
    for (int a = 0; a < EXP_N_AGENTS; a++)
        printf("    %-8s %+.6g [%+.6g, %+.6g]%s\n", exp_agent_name((exp_agent)a), s->total_est[a], s->total_lo[a],
               s->total_hi[a], (exp_agent)a == s->winner ? "  <- best" : "");
    printf("  warm start: %d groups loaded, %d trained from scratch\n", s->warm_loaded, s->warm_fresh);
    printf("  time: load %.1fs, features %.1fs, train %.1fs, ope %.1fs, decide %.1fs, report %.1fs, push %.1fs, "
           "total %.1fs; peak RSS %.0f MiB\n",
           s->sec_load, s->sec_features, s->sec_train, s->sec_ope, s->sec_decide, s->sec_report, s->sec_push, s->sec_total,
           (double)s->peak_rss / 1048576.0);
    if (s->n_ranks > 1 && s->n_decided_by_rank) {
        printf("  decided on the owner rank:");
        for (int k = 0; k < s->n_ranks; k++) printf(" rank %d %d", k, s->n_decided_by_rank[k]);
        printf("\n");
    }
    printf("  report: %s\n", s->report_dir);
    if (s->n_failed) {
        printf("  FAILED products (%d):", s->n_failed);
        for (int i = 0; i < s->n_failed; i++) printf(" %s", s->failed[i]);
        printf("\n");
    }
}

/* Under mpirun with several ranks on a machine: rank with local rank L uses GPU L mod G (G =
 * the GPUs the NVIDIA driver lists in /proc/driver/nvidia/gpus), by setting
 * CUDA_VISIBLE_DEVICES before the CUDA runtime starts.  A CUDA_VISIBLE_DEVICES set by the user
 * (or the batch system) is left alone.  Writes what it did into msg. */
static void pick_gpu(char *msg, size_t n) {
    msg[0] = '\0';
    if (eng_par_size() <= 1 || getenv("CUDA_VISIBLE_DEVICES")) return;
    int g = 0;
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    for (struct dirent *e; d && (e = readdir(d));) g += e->d_name[0] != '.';
    if (d) closedir(d);
    if (g <= 0) return;
    char v[16];
    snprintf(v, sizeof v, "%d", eng_par_local_rank() % g);
    setenv("CUDA_VISIBLE_DEVICES", v, 1);
    snprintf(msg, n, "GPU %s of %d (local rank %d)", v, g, eng_par_local_rank());
}

/* Under MPI: each rank's GPU and the split, once; ranks other than 0 quiet unless verbose. */
static void mpi_announce(int rank, int verbose) {
    if (eng_par_size() <= 1) return;
    char d[512], gpu[128];
    pick_gpu(gpu, sizeof gpu);
    if (gpu[0]) ENG_INFO("nightly: rank %d uses %s", rank, gpu);
    eng_par_describe(d, sizeof d);
    if (rank == 0) ENG_INFO("nightly: %s: products split over %d ranks (docs/mpi.md)", d, eng_par_size());
    if (rank != 0 && !verbose) eng_log_set_level(ENG_LOG_WARN); /* one voice: rank 0's */
}

/* Run the night with progress lines on ps, print the outcome (rank 0's summary, or why it failed)
 * and return the command's exit code (exp_nightly_exit_code).  *sum is the caller's to free. */
static int run_and_report(exp_nightly_cfg *cfg, exp_nightly_summary *sum, prog_state *ps, int rank) {
    ps->tty = isatty(fileno(stderr));
    ps->quiet = eng_log_get_level() < ENG_LOG_INFO || rank != 0;
    cfg->progress = on_progress;
    cfg->progress_ctx = ps;
    int st = exp_nightly_run(cfg, sum);
    if (ps->line_open) fputc('\n', stderr);
    if (st == ENG_EBUSY) {
        fprintf(stderr, "rlprice: nightly not started (exit code 5): %s\n", eng_err_msg());
    } else if (st) {
        fprintf(stderr, "rlprice: nightly failed%s: %s\n", rank ? " (a rank other than 0)" : "", eng_err_msg());
    } else if (rank == 0) {
        print_summary(sum, cfg->dry_run);
        if (sum->n_failed) fprintf(stderr, "rlprice: nightly: %d product(s) failed (exit code 4); see above\n", sum->n_failed);
    }
    return exp_nightly_exit_code(st, sum);
}

int exp_cmd_nightly(int argc, char **argv) {
    int n_fields = 0; /* the nightly.* settings (experiments/nightly/exp_nightly_fields.c) */
    const agt_cfg_field *nightly_fields = exp_nightly_fields(&n_fields);
    exp_nightly_cfg cfg = exp_nightly_default();
    exp_nightly_summary sum;
    memset(&sum, 0, sizeof sum);
    const char *date = NULL, *config = NULL, *products = NULL, *device = NULL;
    char **plist = NULL, **rest = NULL;
    int np = 0, nrest = 0, rc = 2, st;
    PGconn *conn = NULL;
    prog_state ps = {0};
    ps.t_prev = eng_now(); /* the first stage starts with the command */
    if (!(rest = calloc((size_t)argc + 1, sizeof *rest))) { fprintf(stderr, "rlprice: out of memory\n"); return 1; }
    if (eng_par_init(NULL, NULL)) { fprintf(stderr, "rlprice: %s\n", eng_err_msg()); free(rest); return 1; }
    const int rank = eng_par_rank();
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); rc = 0; goto done; }
        else if (!strcmp(a, "--dry-run")) cfg.dry_run = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) eng_log_set_level(ENG_LOG_WARN);
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) eng_log_set_level(ENG_LOG_DEBUG), verbose = 1;
#define TAKE(dst)                                                                     \
    do {                                                                              \
        if (!v) { eng_err_set(ENG_EINVAL, "%s needs a value", a); goto bad; }         \
        dst = v;                                                                      \
        i++;                                                                          \
    } while (0)
        else if (!strcmp(a, "--db")) TAKE(cfg.conninfo);
        else if (!strcmp(a, "--date")) TAKE(date);
        else if (!strcmp(a, "--config")) TAKE(config);
        else if (!strcmp(a, "--products")) TAKE(products);
        else if (!strcmp(a, "--out")) TAKE(cfg.out_dir);
        else if (!strcmp(a, "--ckpt")) TAKE(cfg.ckpt_dir);
        else if (!strcmp(a, "--device")) TAKE(device);
        else if (!strcmp(a, "--mpi-timeout") || !strcmp(a, "--test-kill-rank")) {
            char *end = NULL;
            double x = v ? strtod(v, &end) : 0;
            if (!v || end == v || *end || (a[2] == 'm' && !(x > 0))) {
                eng_err_set(ENG_EINVAL, "%s needs a number%s", a, a[2] == 'm' ? " of seconds > 0" : "");
                goto bad;
            }
            if (a[2] == 'm') eng_par_set_timeout(x);
            else cfg.fault_kill_rank = (int)x;
            i++;
        } else if (!strcmp(a, "--test-drop-foreign-rows")) {
            cfg.test_drop_foreign = 1;
        } else if (!strcmp(a, "--ckpt-keep")) {
            char *end = NULL;
            long k = v ? strtol(v, &end, 10) : -1;
            if (!v || *end || end == v || k < 0 || k > 100000) {
                eng_err_set(ENG_EINVAL, "--ckpt-keep needs a count >= 0 (0 = keep all)");
                goto bad;
            }
            cfg.ckpt_keep = (int)k;
            i++;
        } else if (!strcmp(a, "--window-days")) {
            if (!v || agt_cfg_set(&cfg, nightly_fields, n_fields, "window_days", v, "--window-days")) {
                if (!v) eng_err_set(ENG_EINVAL, "--window-days needs a value");
                goto bad;
            }
            i++;
        } else if (!strncmp(a, "--nightly.", 10)) { /* --nightly.key=value or --nightly.key value */
            if (exp_nightly_set_flag(&cfg, a, v)) goto bad;
            if (!strchr(a, '=')) i++;
        } else rest[nrest++] = argv[i];
#undef TAKE
    }
    if (date) {
        if (eng_date_parse(date, &cfg.date)) goto bad;
    } else {
        cfg.date = today();
    }
    if (config) {
        if (exp_compare_cfg_load_file(&cfg.compare, config)) goto bad;
        if (agt_cfg_load_file(&cfg, nightly_fields, n_fields, config, "nightly")) goto bad;
    }
    if (nrest && exp_compare_cfg_parse_flags(&cfg.compare, nrest, rest)) goto bad;
    /* --device overrides the configuration's compare.device; without it the file's line holds */
    if (device && exp_compare_cfg_set(&cfg.compare, "compare.device", device, "--device")) goto bad;
    if (exp_compare_cfg_check(&cfg.compare)) goto bad;
    if (products) { /* patterns need the database */
        if ((st = db_resolve(&conn, cfg.conninfo))) { rc = 3; fprintf(stderr, "rlprice: %s\n", eng_err_msg()); goto done; }
        if ((st = exp_nightly_resolve_products(conn, products, &plist, &np))) {
            rc = st == ENG_EDB ? 3 : 2;
            fprintf(stderr, "rlprice: %s\n", eng_err_msg());
            goto done;
        }
        cfg.products = (const char *const *)plist;
        cfg.n_products = np;
        cfg.conn = conn;
    }
    mpi_announce(rank, verbose);
    rc = run_and_report(&cfg, &sum, &ps, rank);
    goto done;
bad:
    fprintf(stderr, "rlprice nightly: %s\n", eng_err_msg());
    usage(stderr);
    rc = 2;
done:
    exp_nightly_summary_free(&sum);
    exp_nightly_free_list(plist, np);
    exp_compare_cfg_free(&cfg.compare);
    free(rest);
    if (conn) db_disconnect(conn);
    if (eng_par_broken()) eng_par_abort(rc); /* a rank is gone: end the job with our code */
    eng_par_finalize();
    return rc;
}
