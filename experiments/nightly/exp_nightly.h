/* exp_nightly.h - the nightly pricing run, end to end (docs/nightly.md).
 *
 *   1. take the run id's lock (db_runlock.h; held by a run already: ENG_EBUSY, exit 5, nothing
 *      written), report runs abandoned by dead processes, open the run row in pricing_runs
 *      (run_id = <date>-<16 hex digits of a 64-bit FNV-1a hash of the configuration and product
 *      list>, so re-running a date with the same configuration replaces that run when its push
 *      commits; a finished row is never reset before) and the next attempt; load and validate
 *      the history window ending the day before the run date;
 *   2. exp_compare_run: features, training / warm start of DQN, DDPG, LinUCB (checkpoints in
 *      ckpt_dir), the best fixed price and the historical policy;
 *   3. OPE of every agent and the incumbent (inside exp_results);
 *   4. per product: deploy the agent whose one-step OPE lower confidence bound (recommended
 *      estimator) is the highest among those whose bound beats the incumbent's estimate;
 *      otherwise hold the incumbent price with a reason code; guardrails on the final price;
 *   5. write the report (HTML + JSON + recommendations.json) into a staging folder, push every
 *      recommendation, the rejected rows, the attempt and the run summary in ONE transaction
 *      (db_push, status 'finished', the lock checked), then publish the staging folder as the
 *      attempt's folder with the links <out_dir>/<run_id> and <out_dir>/latest (exp_publish.h).
 * A failure after the run row opened is recorded (row and attempt 'failed' with the message) on
 * the run's connection, or on a new one when that is gone (EXP_NIGHTLY_FAIL_TRIES).
 * --dry-run performs no database write at all (no run row, no rejected_rows, no push): the
 * report is still written, flagged dry_run.  A per-product failure never stops the run: the
 * product is held at its guarded incumbent price with reason "hold:failed" and listed.
 */
#ifndef EXP_NIGHTLY_H
#define EXP_NIGHTLY_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "agt_config.h"
#include "exp_compare.h"
#include "exp_gate.h"

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

struct exp_nightly_decision; /* below */

/* Logged exploration (exp_nightly_explore.c, docs/nightly.md "Logged exploration"): settings
 * nightly.explore.share, .max_step, .max_cost.  Off unless share > 0. */
typedef struct exp_explore_cfg {
    float share;     /* probability that an eligible product is explored tonight (the expected
                        share of them): 0 = off (default) */
    float max_step;  /* largest exploration step, a share of the decided price: 0.05 */
    float max_cost;  /* budget: expected revenue given up, a share of the night's expected
                        revenue at the decided prices (the engine's own demand estimate): 0.01 */
    int mode;        /* exp_explore_mode: how an explored product's price is drawn */
    float temper;    /* Thompson mode: the posterior's standard deviation is scaled by this
                        (1 = the posterior itself, the default; 0.5 = a narrower, tempered
                        posterior whose draws stay nearer its mean optimum; > 0) */
    int skip_carryover; /* Thompson mode: 1 = no draw for a product whose demand fit shows
                        carry-over (the lag column's coefficient at carryover_z robust standard
                        errors from 0; at 2, the test of the gate's horizon, exp_gate_fit_ex):
                        its prices move its customers' reference, so a draw costs more than one
                        night's loss; 0 = every eligible product (the default) */
    float carryover_z; /* the test's threshold in robust standard errors: 2 (the gate's) */
    float carryover_share; /* Thompson mode: > 0 = no draw at all tonight when more than this
                        share of the products with a demand fit show carry-over (at carryover_z):
                        a market whose customers remember prices (chance alone: about 5% at
                        z 2); 0 = off (the default) */
    int held_only;   /* 1 = explore only the products the gate held (the hold turned into
                        evidence; a price the gate moved is pushed as decided); 0 = every
                        eligible product (the default) */
    int no_lag;      /* Thompson mode: 1 = the posterior of a product whose fit shows no carry-over
                        (the skip_carryover test) comes from its demand fit without the lag column,
                        so that the nights it held a price inform its slope (exp_gate_fit_product_nolag);
                        0 = the gate's fit, lag column in (the default) */
} exp_explore_cfg;

/* How an explored product's price is drawn (nightly.explore.mode). */
typedef enum {
    EXP_EXPLORE_NEIGHBOUR = 0, /* uniformly among the neighbouring grid levels (epsilon-greedy) */
    EXP_EXPLORE_THOMPSON = 1   /* posterior sampling: the price slope drawn from the product's
                                  demand fit (exp_gate_fit), the price nearest the sampled optimum
                                  among the support inside max_step (exp_explore_thompson) */
} exp_explore_mode;

/* Neighbouring levels on each side a product's exploration may reach, at most. */
#define EXP_EXPLORE_MAX_SIDE 4
#define EXP_EXPLORE_MAX_SUPPORT (1 + 2 * EXP_EXPLORE_MAX_SIDE)

/* What the exploration did tonight. */
typedef struct exp_explore_summary {
    int on;              /* share > 0 */
    int n_eligible;      /* products with a decided price and at least one neighbour to explore */
    int n_pinned;        /* products the team pinned (products.explore = false): never explored */
    int n_no_neighbour;  /* no neighbouring level inside the guardrails and max_step */
    int n_explored;      /* products whose pushed price is a draw other than the decided one */
    double prob;         /* the per-product exploration probability used: share, or lower when
                            max_cost binds */
    double revenue;      /* expected revenue per period at the decided prices, all products */
    double cost;         /* expected revenue per period given up by the draws made (the engine's
                            estimate; a draw it expects to gain counts negative) */
    double cost_share;   /* cost / revenue */
    int n_carry_tested;  /* Thompson with a carry-over rule: products whose fit was tested for
                            carry-over (explore.skip_carryover / carryover_share) */
    int n_carry;         /* ... of which show it (the lag column's test) */
    double cost_expected;/* before the draws: prob x the eligible products' expected loss (each
                            neighbour's revenue below the decided price's, 0 when above): what
                            the budget max_cost bounds */
} exp_explore_summary;

typedef struct exp_nightly_cfg {
    PGconn *conn;             /* open connection to use (not closed), or NULL: conninfo */
    const char *conninfo;     /* --db; NULL = PG* variables or the embedded cluster */
    int32_t date;             /* the day priced (days since 1970-01-01) */
    const char *const *products; /* explicit product ids (NULL = all); patterns resolved by
                                    exp_nightly_resolve_products */
    int n_products;
    int window_days;          /* history window length before the date; 0 = everything: 365 */
    int window_carryover_days;/* > 0 (with window_days 0 or longer): the night tests the products of
                                 its window for carry-over (exp_nightly_window.h) and, when more than
                                 window_carryover_share of those with a fit show it, prices from the
                                 last window_carryover_days days only; 0 = off (the default) */
    float window_carryover_share; /* that share: 0.2 */
    int min_periods;          /* loader: fewer clean periods -> product skipped: 8 */
    exp_explore_cfg explore;  /* nightly.explore.*: logged exploration, off by default */
    float gate_level;         /* two-sided level of the uplift interval whose lower bound must
                                 be above 0 (gate_min_gain) to deploy: 0.80 (docs/backtest.md, gate trade-off) */
    int gate_mode;            /* exp_gate_mode: the evidence the gate needs (exp_gate.h) */
    int gate_steps;           /* steps of a move the model gate tries (4: 1, 3/4, 1/2, 1/4) */
    float gate_select;        /* the model gate picks the eligible move with the highest lower
                                 bound at this level (0: estimate; -1: gate_level) */
    float gate_min_gain;      /* the model gate needs the lower bound of a move's uplift above
                                 this share of the incumbent's rate: 0.0025 (docs/backtest.md) */
    float gate_support_widen; /* the model gate's moves stay inside the normal-period price
                                 range widened by this share (0; < 0: no limit) */
    int gate_extend;          /* 1: the model gate also tries steps to the guardrails' edge in
                                 each agent's direction (exp_gate.h) */
    int gate_standing;        /* 1: the model gate (and Thompson exploration) value a price as a
                                 standing price, the reference state at the price itself
                                 (exp_gate_fit_ex); 0: one period at the incumbent's state;
                                 H >= 2: the mean over H nights of charging it, the smoothed
                                 past price moving toward it (a horizon) */
    int gate_cut_standing;    /* 1 (with gate_standing >= 2): the gate values a cut as a standing
                                 price (no credit for the transitional lift below the customers'
                                 reference), a rise over the horizon; 2: every product's cut under
                                 its standing fit; 3: 2 when the night pools to a reference effect
                                 (gate_lag_pooled), else 1; 4: 1, and with a pooled reference
                                 effect no lag test for the horizon (exp_gate.h cut_standing);
                                 0 (default): every move over the horizon */
    int gate_lag_pooled;      /* set by the night (exp_nightly_pool_cfg) with gate_cut_standing 3:
                                 1 when its products' mean lag coefficient is positive by 2 standard
                                 errors (exp_nightly_lag_pool); not a setting */
    int gate_plan;            /* 0 (default): off; 1: the planning candidate (exp_gate.h plan: a
                                 DP over the demand model's carry-over within the change limit,
                                 needs gate_standing >= 2) deploys when its bound clears; 2: as 1,
                                 and a plan that holds first holds the product */
    int gate_plan_nights;     /* the plan's horizon in nights: 20 */
    float gate_plan_gamma;    /* its discount per night: 0.95 */
    int gate_plan_paths;      /* 0: any path (the DP); 1: monotone paths toward a target, then held */
    int gate_plan_model;      /* 0: the gate's demand fit; 1: the kinked reference model (loss aversion) */
    int gate_model_dir;       /* 1: an agent that recommends the incumbent gets the extension
                                 steps in the demand model's direction (exp_gate.h model_dir);
                                 2: also an agent that points the other way; 3: as 2 only with
                                 the incumbent at the agents' band edge (exp_gate.h) */
    int dry_run;
    const char *out_dir;      /* report folder root: "out/nightly" */
    const char *ckpt_dir;     /* checkpoints: "out/ckpt" ("" = none); the run of date D writes
                                 <ckpt_dir>/D/ and warm-starts from the newest earlier date */
    int ckpt_keep;            /* dated checkpoint folders kept (up to the run date): 3; <= 0 all */
    exp_compare_cfg compare;  /* owned by the caller (exp_compare_cfg_free); the device is
                                 compare.device ("auto"), the one place it is stored */
    exp_nightly_progress_fn progress;
    void *progress_ctx;
    /* Called once after the decisions, before the report (NULL = none), with the loaded
     * history, the comparison and the decisions [res->n_products], all owned by the run and
     * valid only during the call (the backtest values them under the simulator's truth). */
    void (*on_decided)(void *ctx, const db_history *h, const exp_results *res, const struct exp_nightly_decision *d);
    void *decided_ctx;
    /* TEST HOOKS */
    int (*before_commit)(void *ctx, int attempt); /* passed to db_push */
    void *hook_ctx;
    const char *fault_product; /* this product's decision fails (as a real failure would) */
    int fault_kill_rank;       /* under MPI: this rank SIGKILLs itself mid-run (-1 = off) */
    int test_drop_foreign;     /* after the comparison each rank blanks the history rows of the
                                  products it does not own (exp_nightly_drop_foreign_rows) */
    void (*publish_hook)(void *ctx, int step); /* called after publish steps 1..3 (exp_publish.h) */
} exp_nightly_cfg;

/* Recording a failure when the run's connection is gone: fresh connections tried this many
 * times, the first wait this long, doubling (about 8 s in all: a server restart). */
#define EXP_NIGHTLY_FAIL_TRIES 6
#define EXP_NIGHTLY_FAIL_BACKOFF_S 0.25

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
    char report_dir[1280];    /* <out_dir>/<run_id>, a symlink to the attempt's folder ("" until
                                 published, and when publishing failed after the push) */
    int attempt;              /* this attempt at the run id (1, 2, ...; 0 on a dry run) */
    int n_abandoned;          /* runs found left 'running' by a dead process, marked failed */
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
    int n_seen[4];            /* repriced products by where the history charged the new price
                                 (EXP_SEEN_*): normal period, only promotion periods, never */
    int n_capped;             /* deployments whose expected uplift was capped at the plausible */
    int n_above_mean;         /* deployments whose expected uplift (after the cap) exceeds the
                                 product's mean revenue per period (reason |uplift_above_mean) */
    int n_partial;            /* deployments taking part of the agent's move (exp_gate.h) */
    int n_by_model;           /* deployments on the demand model's evidence */
    exp_explore_summary explore; /* logged exploration (zero when off) */
    int window_tested;        /* window_carryover_days: 1 when the night tested its window */
    int window_carry, window_carry_tested; /* ... products that showed carry-over, of those fitted */
    int window_short;         /* 1: the night priced from the short window (window_carryover_days) */
    long n_eval_logged;       /* OPE evaluation rows with the propensity rlprice logged (exact) */
    long n_eval_estimated;    /* ... and with the behaviour model's estimate */
    exp_agent winner;         /* best agent by the recommended one-step estimate */
    double total_est[EXP_N_AGENTS], total_lo[EXP_N_AGENTS], total_hi[EXP_N_AGENTS];
    int warm_loaded, warm_fresh;
    double sec_load, sec_features, sec_train, sec_ope, sec_decide, sec_report, sec_push, sec_total;
    size_t peak_rss;
    int n_ranks;              /* MPI ranks of the run (1 without mpirun) */
    int rank_lost;            /* the run failed because a rank failed, died or did not answer */
    int n_decided_here;       /* products this process decided (its own: docs/mpi.md) */
    int *n_decided_by_rank;   /* rank 0 under MPI: [n_ranks] products each rank decided (owned;
                                 NULL in one process: n_decided_here) */
} exp_nightly_summary;

void exp_nightly_summary_free(exp_nightly_summary *s); /* frees failed[]; safe when zeroed */

/* Under mpirun (eng_par.h, docs/mpi.md) every rank calls exp_nightly_run with the same
 * configuration: each loads the history and fits the cross-product models, trains and
 * evaluates its share of the products (exp_compare.h, shard_count), and rank 0 alone opens the
 * run row, decides, writes the report and pushes.  A rank that fails, dies or stays silent
 * past the timeout fails the run on every rank (rank_lost; rank 0 marks the row failed with
 * the reason; nothing is pushed).  On the other ranks *sum holds the status only.
 * Run the night (see the top of this file).  *sum (caller's struct, zeroed here) is filled as
 * far as the run got; free with exp_nightly_summary_free.  Returns 0 when the run finished
 * (per-product failures are in sum->failed, not an error), or ENG_EBUSY (the run id is locked by
 * another run), ENG_EDB (database; the run row is marked failed, on a new connection if need be), ENG_EINVAL (configuration, empty
 * window), ENG_EDEVICE, ENG_EIO (report folder), ENG_ENOMEM. */
int exp_nightly_run(const exp_nightly_cfg *cfg, exp_nightly_summary *sum);

/* The table of the nightly.* settings (agt_config.h: agt_cfg_set / agt_cfg_load_file with
 * section "nightly"), *n its length; static, never freed. */
const agt_cfg_field *exp_nightly_fields(int *n);
/* One nightly setting from a flag: "--nightly.KEY=VALUE" (value unused) or "--nightly.KEY" with
 * its value in `value` (NULL: none).  Returns 0, ENG_EINVAL (not a --nightly. flag, no value, a
 * key too long) or agt_cfg_set's status (ENG_ENOTFOUND unknown key, ENG_EINVAL bad value; cfg
 * untouched on failure). */
int exp_nightly_set_flag(exp_nightly_cfg *cfg, const char *flag, const char *value);

/* z of a two-sided normal interval of `level` (0.95 -> 1.95996...). */
double exp_nightly_gate_z(double level);

/* Where the history charged a recommended price (exp_nightly_price_seen). */
enum { EXP_SEEN_UNCHANGED = 0, EXP_SEEN_NORMAL, EXP_SEEN_PROMO_ONLY, EXP_SEEN_NEVER, EXP_SEEN_COUNT };
/* "unchanged", "normal", "promo_only", "never". */
const char *exp_seen_name(int seen);
/* EXP_SEEN_NORMAL when product p's history charged `price` (within 1.25%) in a period without a
 * promotion, EXP_SEEN_PROMO_ONLY when only in promotion periods, else EXP_SEEN_NEVER. */
int exp_nightly_price_seen(const db_history *h, int p, double price);
/* The same over product p's periods 0 .. n_periods - 1 only (a backtest's history holds the
 * period after the night too). */
int exp_nightly_price_seen_upto(const db_history *h, int p, double price, int n_periods);
/* Product p's money scale (exp_nightly_sense.c): *per_unit converts its reward to money per
 * period (mean traffic for the per-visitor kinds, else 1), *mean_period = its mean revenue (or
 * profit) per period, *plausible = the largest uplift per period its normal periods make
 * plausible (best price cluster's mean minus the incumbent's); NaN where unknown.  Returns 0 or
 * ENG_ENOMEM. */
int exp_nightly_sense_scale(const db_history *h, int p, double incumbent, int reward_kind, double *per_unit,
                            double *mean_period, double *plausible);

/* One product's decision (exp_nightly_decide). */
typedef struct exp_nightly_decision {
    int failed;          /* 1: the product failed (EXP_FAILED in the comparison) */
    int hold;            /* -1: deployed; else the exp_hold_reason */
    exp_agent agent;     /* deployed agent (EXP_AGENT_HISTORY when held) */
    double price;        /* guarded final price */
    double incumbent;
    double uplift, lo, hi; /* deployed: agent estimate / CI minus the incumbent's estimate; NaN held */
    uint32_t guard;      /* env_action.h ENV_GR_* bits of the final price */
    int seen;            /* EXP_SEEN_*: where the history charged the final price */
    double per_unit;     /* reward -> money per period (exp_nightly_sense_scale) */
    double mean_period;  /* the product's mean revenue (profit) per period */
    double plausible;    /* the largest uplift per period its normal periods make plausible */
    double frac;         /* deployed: share of the agent's move taken (< 1: "|partial") */
    int by_model;        /* deployed on the demand model's evidence (exp_gate.h) */
    int capped;          /* 1: uplift, lo, hi were capped at `plausible` (reason "|uplift_capped") */
    char reason[160];    /* "deploy:dqn|rounded", "hold:poor_overlap", ... ("|explore" appended
                            when the price is an exploration draw) */
    char note[192];      /* why it failed */
    /* Logged exploration (exp_nightly_explore): the distribution `price` was drawn from. */
    int explored;        /* 1: price is a draw other than the decided price */
    double decided_price;/* the decision's guarded price before exploration */
    double propensity;   /* probability of `price` under the distribution (1: deterministic) */
    int n_support;       /* support size; 0 = deterministic ({price}, {1}) */
    double support_price[EXP_EXPLORE_MAX_SUPPORT];
    double support_prob[EXP_EXPLORE_MAX_SUPPORT];
    double explore_cost; /* expected revenue per period given up by the draw (engine's estimate) */
} exp_nightly_decision;

/* 1 when decision d is deployed and its expected uplift in money per period exceeds the
 * product's mean revenue (profit) per period: more than its whole average period. */
int exp_nightly_above_mean(const exp_nightly_decision *d);

/* Logged exploration, a step of its own after the decisions (docs/nightly.md, "Logged
 * exploration"): every decision d[0..n) gets decided_price = price and propensity 1; with
 * cfg->explore.share > 0, each product that is not failed, not pinned (h->explore_off) and has
 * neighbouring prices (the grid levels next to its decided price, each through the same
 * guardrails as a deployment and within max_step of it) is explored with probability q = share,
 * lowered so that q x (the products' expected loss: the mean over their neighbours of the revenue
 * below the decided price's) stays within max_cost of the night's expected revenue; an explored product's price is drawn uniformly from its neighbours.  The
 * whole distribution ({decided: 1 - q, each neighbour: q / m}) and the drawn price's
 * probability are kept in d.  Revenue at a price is the engine's own estimate: a log-log demand
 * fit of the product's history (elasticity clipped to [-6, 0]; the median of the products' fits
 * where a product's own cannot be made).  Draws use a stream per product derived from
 * cfg->compare.seed, the date and the product id: the same seed gives the same prices, whatever
 * the other products.  *out (may be NULL) receives the counts and costs.  Returns 0 or ENG_ENOMEM. */
int exp_nightly_explore(const exp_nightly_cfg *cfg, const db_history *h, const exp_results *res,
                        exp_nightly_decision *d, int n, exp_explore_summary *out);

/* Thompson support of product p around its decided price d->price (explore.mode thompson): the
 * decided price and the guarded prices d->price (1 + max_step j / EXP_EXPLORE_MAX_SIDE),
 * j = +-1..+-EXP_EXPLORE_MAX_SIDE (each through the deployment's guardrails, kept within max_step
 * and a cent apart), and the probability of each under posterior sampling: the price slope b of
 * the product's demand fit (exp_gate_fit_product, around the incumbent i) drawn from
 * N(slope, (temper slope_se)^2) (temper = cfg->explore.temper, 1 by default), the sampled optimum i x*(b) (x* = c/i - 1/b for b < 0 with c the unit
 * cost of the profit kinds, 0 for revenue; +infinity for b >= 0), the support price nearest it.
 * x* is monotone in b, so each price's probability is a difference of two normal CDFs: exact,
 * no sampling.  Writes the decided price's probability to *w0 and the m others to nb[] / w[]
 * (m <= 2 EXP_EXPLORE_MAX_SIDE; probabilities below 1e-9 dropped and the rest renormalised).
 * *carry (may be NULL): -1 not tested, else 1 when the fit shows carry-over (tested when
 * explore.skip_carryover or explore.carryover_share is on).  With explore.no_lag, a product whose
 * fit shows no carry-over takes slope and slope_se from its fit without the lag column
 * (exp_gate_fit_product_nolag; the gate's fit when that one is not usable).
 * Returns m (0: no fit, no other price, carry-over with explore.skip_carryover, or out of memory). */
int exp_explore_thompson(const exp_nightly_cfg *cfg, const db_history *h, int p, const exp_nightly_decision *d,
                         double *w0, double *nb, double *w, int *carry);

/* Decide product pr (of history h) with the gate (exp_gate.h, nightly.gate_mode / gate_level /
 * gate_steps ...): the candidates are the agents (fixed, linucb, dqn, ddpg) without their
 * agent_failed bit; the gate values steps along each agent's move against the incumbent (the
 * product's demand model and/or the OPE shrunk uplift) and deploys the chosen one when its lower
 * bound is above 0; otherwise the product is held at its incumbent price (exactly, unless a hard
 * bound moves it).  Every final price is guarded (env_guard_apply with cfg->compare.guard); an
 * uplift above what the product's history makes plausible is capped (reason |uplift_capped).
 * Fills *d.  Returns 0, or ENG_EINVAL (no valid incumbent price, bad index, guard configuration,
 * the fault_product hook) or ENG_ENUM (the guarded price is not a positive finite number): the
 * caller counts the product as failed (exp_nightly_hold_failed). */
int exp_nightly_decide(const exp_nightly_cfg *cfg, const db_history *h, const exp_product_result *pr,
                       exp_nightly_decision *d);

/* The decision for a product whose exp_nightly_decide failed (the error message of eng_err_msg()
 * goes into d->note): held at its guarded incumbent price when there is one (NaN price
 * otherwise), reason "hold:failed".  Fills *d; nothing to free. */
void exp_nightly_hold_failed(const exp_nightly_cfg *cfg, const db_history *h, const exp_product_result *pr,
                             exp_nightly_decision *d);

/* The gate settings of a nightly configuration (mode, level, steps, reward kind, guard, grid). */
exp_gate_cfg exp_nightly_gate_cfg(const exp_nightly_cfg *cfg);

/* The process exit code for a run: 0 ok, 2 configuration/usage, 3 database, 4 some products
 * failed, 5 another run of the same run id holds its lock (ENG_EBUSY), 1 anything else. */
int exp_nightly_exit_code(int status, const exp_nightly_summary *sum);

/* Expand a product list: comma-separated ids, "@FILE" (one id per line), and patterns with
 * '*' / '?' matched (fnmatch) against products.product_id.  *out (malloc'd array of malloc'd
 * strings, free with exp_nightly_free_list) and *n; an entry matching nothing is ENG_EINVAL.
 * Returns 0, ENG_EINVAL, ENG_EIO (file), ENG_EDB, ENG_ENOMEM. */
int exp_nightly_resolve_products(PGconn *conn, const char *list, char ***out, int *n);
void exp_nightly_free_list(char **list, int n);

/* The run id for a date and configuration: "<YYYY-MM-DD>-<16 hex>" into buf[64]. */
void exp_nightly_run_id(int32_t date, const char *config_text, char buf[64]);

/* The configuration text the run id hashes (experiments/nightly/exp_nightly_text.c): the
 * comparison's and the nightly's decision settings and the product list, without paths, device
 * or verbosity.  Returns a malloc'd string the caller frees, or NULL (out of memory). */
char *exp_nightly_config_text(const exp_nightly_cfg *cfg);

/* The night's pooled prior on the demand models' price slope (compare.demand_pool;
 * experiments/nightly/exp_nightly_pool.c): every product of h fitted at its incumbent under the
 * weak N(-1, 1), its own slope estimate and standard error in dimensionless units
 * (feat_demand_slope_e), pooled by DerSimonian-Laird into *out (n = 0: fewer than
 * FEAT_DEMAND_POOL_MIN products, no pooling; the normal form only, out->np = 0).  Under MPI
 * collective: every rank passes its own products and gets the same prior.  Returns 0, ENG_ENOMEM
 * or an exchange's failure (ENG_EIO). */
int exp_nightly_pool(const db_history *h, feat_demand_prior *out);
/* *out = *cfg with compare.demand_prior the night's pooled prior when compare.demand_pool is on
 * (else none; with compare.demand_pool_np also its nonparametric form, feat_demand_pool_np; its
 * sd times compare.demand_pool_tau_scale) and gate_lag_pooled the night's pooled sign of a reference effect when
 * gate_cut_standing >= 3 (else 0), both from one fit of each product; logs them.  Collective
 * under MPI as exp_nightly_pool.  0 or its failure. */
int exp_nightly_pool_cfg(const exp_nightly_cfg *cfg, const db_history *h, exp_nightly_cfg *out);

/* The night's pooled sign of a reference effect (experiments/nightly/exp_nightly_pool.c): the
 * mean over h's products of the one-step demand fit's lag coefficient, its standard error (spread
 * / sqrt(n)) and n; *positive = 1 when the mean is above 0 by 2 standard errors (and n >= 20).
 * Collective under MPI (every rank calls it with its own products).  Allocates nothing.  Returns
 * 0 or the reduction's failure. */
int exp_nightly_lag_pool(const db_history *h, int *positive, double *mean, double *se, int *n);

#endif
