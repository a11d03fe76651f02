/* exp_nightly.h - the nightly pricing run, end to end (docs/nightly.md).
 *
 *   1. open the run row in pricing_runs (run_id = <date>-<16 hex digits of a 64-bit FNV-1a hash
 *      of the configuration and product list>, so re-running a date with the same configuration
 *      replaces that run); load and validate the history window ending the day before the run
 *      date (bad rows go to rejected_rows under the run_id);
 *   2. exp_compare_run: features, training / warm start of DQN, DDPG, LinUCB (checkpoints in
 *      ckpt_dir), the best fixed price and the historical policy;
 *   3. OPE of every agent and the incumbent (inside exp_results);
 *   4. per product: deploy the agent whose one-step OPE lower confidence bound (recommended
 *      estimator) is the highest among those whose bound beats the incumbent's estimate;
 *      otherwise hold the incumbent price with a reason code; guardrails on the final price;
 *   5. write the report (HTML + JSON + recommendations.json) into a staging folder, push every
 *      recommendation and the run summary in ONE transaction (db_push, status 'finished'),
 *      then move the staging folder to <out_dir>/<run_id> (and the link <out_dir>/latest).
 * --dry-run performs no database write at all (no run row, no rejected_rows, no push): the
 * report is still written, flagged dry_run.  A per-product failure never stops the run: the
 * product is held at its guarded incumbent price with reason "hold:failed" and listed.
 */
#ifndef EXP_NIGHTLY_H
#define EXP_NIGHTLY_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "exp_compare.h"

/* Hold reasons (the text written to price_recommendations.reason before the guard codes). */
typedef enum {
    EXP_HOLD_NO_UPLIFT = 0, /* "hold:no_significant_uplift": no lower bound above the incumbent */
    EXP_HOLD_DIVERGED,      /* "hold:diverged": every learning agent diverged or failed */
    EXP_HOLD_SHORT,         /* "hold:short_history": too little history for the product */
    EXP_HOLD_OVERLAP,       /* "hold:poor_overlap": the best candidates' overlap is poor */
    EXP_HOLD_FAILED,        /* "hold:failed": the product's processing failed (listed) */
    EXP_HOLD_NO_ESTIMATE,   /* "hold:no_estimate": the incumbent's value could not be estimated */
    EXP_HOLD_COUNT
} exp_hold_reason;

/* "hold:no_significant_uplift", ...; static string, NULL for a bad value. */
const char *exp_hold_reason_name(exp_hold_reason r);

/* Progress callback of the whole run; stage is "load", "features", "train", "ope", "fqe",
 * "decide", "report", "push"; done/total count products (total 0 = not countable). */
typedef void (*exp_nightly_progress_fn)(void *ctx, const char *stage, long done, long total);

typedef struct exp_nightly_cfg {
    PGconn *conn;             /* open connection to use (not closed), or NULL: conninfo */
    const char *conninfo;     /* --db; NULL = PG* variables or the embedded cluster */
    int32_t date;             /* the day priced (days since 1970-01-01) */
    const char *const *products; /* explicit product ids (NULL = all); patterns resolved by
                                    exp_nightly_resolve_products */
    int n_products;
    int window_days;          /* history window length before the date; 0 = everything: 365 */
    int min_periods;          /* loader: fewer clean periods -> product skipped: 8 */
    int dry_run;
    const char *out_dir;      /* report folder root: "out/nightly" */
    const char *ckpt_dir;     /* checkpoints: "out/ckpt" ("" = none); the run of date D writes
                                 <ckpt_dir>/D/ and warm-starts from the newest earlier date */
    int ckpt_keep;            /* dated checkpoint folders kept (up to the run date): 3; <= 0 all */
    const char *device;       /* "auto" */
    exp_compare_cfg compare;  /* owned by the caller (exp_compare_cfg_free) */
    exp_nightly_progress_fn progress;
    void *progress_ctx;
    /* TEST HOOKS */
    int (*before_commit)(void *ctx, int attempt); /* passed to db_push */
    void *hook_ctx;
    const char *fault_product; /* this product's decision fails (as a real failure would) */
} exp_nightly_cfg;

/* Checkpoints versioned by run date (exp_nightly_ckpt.c, docs/checkpoints.md): target receives
 * "<root>/<date>" (created with root), source the newest "<root>/<YYYY-MM-DD>" folder dated
 * before `date` ("" when there is none: train from scratch).  Never `date` itself, so a retry
 * of a date starts from what its first attempt started from.  0, ENG_EINVAL (path too long),
 * ENG_EIO (cannot create), ENG_ENOMEM. */
int exp_nightly_ckpt_dirs(const char *root, int32_t date, char *target, size_t n_target, char *source,
                          size_t n_source);
/* Remove dated folders of root beyond the `keep` newest dated <= date; folders after date and
 * keep_date (the source of the run) always stay.  keep <= 0: nothing removed.  Returns the
 * number removed, -1 on allocation failure; a folder that cannot be removed is warned about. */
int exp_nightly_ckpt_prune(const char *root, int32_t date, int32_t keep_date, int keep);

/* Defaults above; compare = exp_compare_default().  Caller frees with exp_compare_cfg_free
 * (&cfg->compare). */
exp_nightly_cfg exp_nightly_default(void);

typedef struct exp_nightly_summary {
    char run_id[64];
    char run_date[16];
    char report_dir[1280];    /* <out_dir>/<run_id> ("" until published) */
    int status;               /* 0 or the run's failure status */
    int n_products;           /* products priced (in the comparison) */
    int n_up, n_down;         /* deployed with a higher / lower price than the incumbent */
    int n_same;               /* deployed, guarded price equal to the incumbent */
    int n_held;               /* held (all reasons, failures included) */
    int n_hold[EXP_HOLD_COUNT];
    int n_skipped;            /* loader: too little clean history, not priced */
    int64_t n_rejected_rows;
    int n_failed;
    char **failed;            /* [n_failed] product ids, owned (exp_nightly_summary_free) */
    int n_deployed_by[EXP_N_AGENTS];
    exp_agent winner;         /* best agent by the recommended one-step estimate */
    double total_est[EXP_N_AGENTS], total_lo[EXP_N_AGENTS], total_hi[EXP_N_AGENTS];
    int warm_loaded, warm_fresh;
    double sec_load, sec_features, sec_train, sec_ope, sec_decide, sec_report, sec_push, sec_total;
    size_t peak_rss;
} exp_nightly_summary;

void exp_nightly_summary_free(exp_nightly_summary *s); /* frees failed[]; safe when zeroed */

/* Run the night (see the top of this file).  *sum (caller's struct, zeroed here) is filled as
 * far as the run got; free with exp_nightly_summary_free.  Returns 0 when the run finished
 * (per-product failures are in sum->failed, not an error), or ENG_EDB (database; the run row
 * is marked failed when the database still answers), ENG_EINVAL (configuration, empty
 * window), ENG_EDEVICE, ENG_EIO (report folder), ENG_ENOMEM. */
int exp_nightly_run(const exp_nightly_cfg *cfg, exp_nightly_summary *sum);

/* One product's decision (exp_nightly_decide). */
typedef struct exp_nightly_decision {
    int failed;          /* 1: the product failed (EXP_FAILED in the comparison) */
    int hold;            /* -1: deployed; else the exp_hold_reason */
    exp_agent agent;     /* deployed agent (EXP_AGENT_HISTORY when held) */
    double price;        /* guarded final price */
    double incumbent;
    double uplift, lo, hi; /* deployed: agent estimate / CI minus the incumbent's estimate; NaN held */
    uint32_t guard;      /* env_action.h ENV_GR_* bits of the final price */
    char reason[160];    /* "deploy:dqn|rounded", "hold:poor_overlap", ... */
    char note[192];      /* why it failed */
} exp_nightly_decision;

/* Decide product pr (of history h): candidates are fixed, linucb, dqn, ddpg without their
 * agent_failed bit, with an available recommended one-step estimate and acceptable overlap; the
 * one with the highest lower bound is deployed when that bound is above the incumbent's
 * (historical policy's) recommended estimate; the final price (agent's or incumbent) goes
 * through env_guard_apply with cfg->compare.guard.  Fills *d.  Returns 0, or ENG_EINVAL (no
 * valid incumbent price, bad index, guard configuration, the fault_product hook): the caller
 * counts the product as failed. */
int exp_nightly_decide(const exp_nightly_cfg *cfg, const db_history *h, const exp_product_result *pr,
                       exp_nightly_decision *d);

/* The process exit code for a run: 0 ok, 2 configuration/usage, 3 database, 4 some products
 * failed, 1 anything else. */
int exp_nightly_exit_code(int status, const exp_nightly_summary *sum);

/* Expand a product list: comma-separated ids, "@FILE" (one id per line), and patterns with
 * '*' / '?' matched (fnmatch) against products.product_id.  *out (malloc'd array of malloc'd
 * strings, free with exp_nightly_free_list) and *n; an entry matching nothing is ENG_EINVAL.
 * Returns 0, ENG_EINVAL, ENG_EIO (file), ENG_EDB, ENG_ENOMEM. */
int exp_nightly_resolve_products(PGconn *conn, const char *list, char ***out, int *n);
void exp_nightly_free_list(char **list, int n);

/* "YYYY-MM-DD" <-> days since 1970-01-01.  Parse: 0 or ENG_EINVAL. */
int exp_date_parse(const char *s, int32_t *day);
void exp_date_format(int32_t day, char buf[16]);

/* The run id for a date and configuration: "<YYYY-MM-DD>-<16 hex>" into buf[64]. */
void exp_nightly_run_id(int32_t date, const char *config_text, char buf[64]);

/* `rlprice nightly [--db CONNINFO] [--date YYYY-MM-DD] [--config FILE] [--products LIST]
 *  [--dry-run] [--out DIR] [--ckpt DIR] [--device auto|cpu|cuda] [--quiet|--verbose]
 *  [<setting flags>]`.  argv[0] is "nightly".  Exit code as exp_nightly_exit_code. */
int exp_cmd_nightly(int argc, char **argv);

#endif
