/* ope.h - offline (off-policy) evaluation: estimate a target policy's value from logged data.
 *
 * One-step (bandit) estimators over n logged rounds with K discrete actions:
 *   Replay, IPS, SNIPS, DM, DR, Switch-DR                       (ope_bandit_estimate)
 * Continuous actions (deterministic target, e.g. DDPG): kernel-smoothed IPS / SN-IPS / DR with a
 * Gaussian kernel and Silverman's bandwidth                       (ope_cont_estimate)
 * Sequential: per-decision IS (PDIS) and weighted PDIS (WPDIS)   (ope_traj_estimate)
 *
 * Every estimator is written as a ratio of per-row (per-trajectory, per-step) sums, so one
 * seeded nonparametric bootstrap (resample rows / trajectories with replacement, percentile
 * interval) gives every estimator's confidence interval from the same resamples in
 * O(B * n * estimators).
 * Definitions, the overlap rule and the CSV format are in docs/ope.md.
 *
 * Sequential, model-based: Fitted Q Evaluation on the engine's model groups, P products'
 * policies at once                                             (ope_fqe_estimate, ope_fqe.c)
 *
 * DM/DR intervals refit the ridge reward model inside every bootstrap resample when the model
 * was fitted here (ope_bandit_estimate); a reward model given by the caller is held fixed and
 * the DM note says so.
 */
#ifndef OPE_H
#define OPE_H

#include <stdint.h>

#include "eng_backend.h"
#include "eng_model.h"
#include "eng_util.h"

typedef enum {
    OPE_REPLAY = 0, /* Li et al. 2011: keep rounds where a sampled target action equals the logged one */
    OPE_IPS,        /* inverse propensity scoring */
    OPE_SNIPS,      /* self-normalised IPS */
    OPE_DM,         /* direct method (reward model) */
    OPE_DR,         /* doubly robust */
    OPE_SWITCH_DR,  /* DR with the correction dropped where the weight exceeds tau */
    OPE_KIPS,       /* kernel IPS, continuous actions */
    OPE_SNKIPS,     /* self-normalised kernel IPS */
    OPE_KDR,        /* kernel DR */
    OPE_PDIS,       /* per-decision importance sampling (trajectories) */
    OPE_WPDIS,      /* weighted (self-normalised per step) PDIS */
    OPE_FQE,        /* fitted Q evaluation (ope_fqe_estimate) */
    OPE_N_EST
} ope_est;

/* Short name ("ips", "snips", "switch_dr", ...); static string, NULL for a bad value. */
const char *ope_est_name(ope_est e);

typedef struct ope_config {
    uint64_t seed;        /* bootstrap and Replay's target-action draws (default 1) */
    int n_boot;           /* bootstrap resamples B (default 1000; 0 = no intervals) */
    double alpha;         /* interval is the [alpha/2, 1-alpha/2] percentile range (default 0.05) */
    double switch_tau;    /* Switch-DR weight threshold (default 50) */
    double ridge_lambda;  /* ridge penalty of the fitted reward model (default 1.0) */
    int cross_folds;      /* cross-fitting folds of the fitted reward model (default 5; 1 = off) */
    double gamma;         /* discount for PDIS/WPDIS (default 1.0) */
    double bandwidth;     /* kernel bandwidth for continuous actions; <= 0 = Silverman (default 0) */
    double min_ess_frac;  /* overlap is poor when ESS < min_ess_frac * n ... (default 0.05) */
    double min_ess_abs;   /* ... or ESS < min_ess_abs (default 30) ... */
    double max_unsupported; /* ... or target mass on unsupported actions > this (default 0.01) */
    double min_pscore;    /* propensity floor (default 1e-6; 0 = none): a logged pscore (bandit) or
                           * behaviour probability (trajectories) below it is clipped up to it, with
                           * one warning per estimate, and counted in ope_result.n_pscore_clipped; a
                           * pscore of 1e-300 would otherwise give weights whose squares overflow */
    int refit_boot;       /* DM/DR/Switch-DR intervals when the reward model is fitted here: the
                           * first min(n_boot, refit_boot) resamples refit the ridge model on the
                           * resample (default 200; 0 = hold the model fixed: too-narrow intervals) */
} ope_config;

ope_config ope_config_default(void);

/* One estimator's answer. */
typedef struct ope_value {
    int available;    /* 0: not computed (see note) */
    double estimate;
    double ci_low, ci_high; /* NaN when n_boot == 0 or too many resamples were undefined */
    double boot_se;         /* bootstrap standard deviation (NaN without bootstrap) */
    int n_used;             /* rows / trajectories that entered the estimate (Replay: matches) */
    char note[128];         /* why unavailable, or a caveat */
} ope_value;

/* Overlap diagnostics of the importance weights w_i = pi(a_i|x_i) / pscore_i. */
typedef struct ope_overlap {
    int n;
    double ess;               /* (sum w)^2 / sum w^2 */
    double ess_frac;          /* ess / n */
    double max_w;             /* largest weight */
    double max_w_share;       /* max_w / sum w */
    double mean_w;            /* sum w / n; about 1 when the pscores are right */
    double unsupported_mass;  /* mean over rows of target mass on actions the logger cannot take */
    double unsupported_rows;  /* share of rows with any such mass */
    int support_exact;        /* 1: from mu_* columns; 0: proxy = actions never logged in the file */
    int poor;                 /* overlap rule failed: show DM instead of the IS estimates */
    char reason[160];         /* which part of the rule failed ("" when fine) */
} ope_overlap;

typedef struct ope_result {
    ope_value v[OPE_N_EST];
    ope_overlap overlap;      /* bandit and continuous results (kernel weights for the latter) */
    int n;                    /* rows or trajectories */
    int n_boot;               /* resamples drawn */
    double alpha;
    double bandwidth;         /* continuous: the bandwidth used */
    const char *q_source;     /* "given", "ridge", "fqe" (fitted Q network) or "none" */
    ope_est recommended;      /* DR normally; DM when overlap is poor; IPS/WPDIS when no model */
    int n_pscore_clipped;     /* rows (steps) whose propensity was below cfg.min_pscore and clipped */
} ope_result;

/* ---- one-step logged bandit data with K discrete actions --------------------------- */
typedef struct ope_bandit {
    int n, K, d;        /* rows, actions, context columns (d may be 0) */
    int *action;        /* [n] logged action, 0..K-1 */
    double *reward;     /* [n] */
    double *pscore;     /* [n] behaviour probability of the logged action, in (0, 1] */
    double *pi;         /* [n][K] target policy probabilities (rows sum to 1) */
    double *q;          /* [n][K] reward model, or NULL (then fitted on x when d > 0) */
    double *x;          /* [n][d] context, or NULL */
    double *mu;         /* [n][K] full behaviour probabilities, or NULL (support diagnostics) */
    char **x_names;     /* [d] column names (from CSV), or NULL */
} ope_bandit;

/* Frees the arrays of a bandit set filled by ope_csv_load (or built with malloc by the
 * caller) and zeroes it.  Safe on a zeroed struct. */
void ope_bandit_free(ope_bandit *d);

/* Check shapes and ranges (actions in range, probabilities in [0,1], pscore > 0, pi rows
 * sum to 1 within 1e-6 relative).  Returns 0 or ENG_EINVAL naming the first bad row. */
int ope_bandit_check(const ope_bandit *d);

/* Fit q(x, a) by ridge regression per action on [standardised x, 1] (intercept unpenalised;
 * lambda on the x coefficients), solved with OpenBLAS (dsyrk + LAPACK dposv).  With folds > 1
 * the rows are dealt into `folds` groups by a seeded shuffle and each row's q comes from the
 * model fitted on the other groups (cross-fitting, so DR does not subtract a model that has
 * memorised the row's own reward); folds == 1 fits and predicts on all rows.  Actions with no
 * training rows get the training mean reward.  *q_out [n][K] is malloc'd, caller frees.
 * Returns 0, ENG_EINVAL (no context, bad lambda or folds), ENG_ENUM (singular), ENG_ENOMEM. */
int ope_fit_ridge_q(const ope_bandit *d, double lambda, int folds, uint64_t seed, double **q_out);

/* The weight part of an overlap summary, shared by the bandit, kernel, trajectory and pooled
 * estimators: from n weights' sum `sw`, sum of squares `sw2` and maximum `max_w`, fill n, ess,
 * ess_frac, max_w, max_w_share and mean_w, and apply the ESS rule: overlap is poor when n == 0 or
 * ESS < max(min_ess_abs, min_ess_frac * n), with "<what> ESS x < need (...)" in reason (`unit`
 * names what n counts, e.g. "n" rows or "m" trajectories).  The support fields are left as they
 * are.  Returns ov->poor. */
int ope_overlap_weights(ope_overlap *ov, int n, double sw, double sw2, double max_w, const ope_config *cfg,
                        const char *what, const char *unit);

/* Overlap diagnostics and the poor-overlap rule of cfg.  Unsupported actions: with d->mu,
 * per row (mu[i][a] == 0 at that row's context); without it, a per-FILE proxy (actions never
 * logged in any row), which cannot see context-dependent support (an action possible in some
 * contexts but not in others) and says so in `reason` when the rule fails on it.  Give mu
 * whenever the logging policy's full distribution is known (the simulator's is).
 * Returns 0 or ENG_EINVAL. */
int ope_overlap_compute(const ope_bandit *d, const ope_config *cfg, ope_overlap *out);

/* All bandit estimators with bootstrap intervals.  DM/DR/Switch-DR use d->q when present,
 * else a ridge model fitted on d->x, else they are unavailable with a note.  With a fitted
 * model their intervals come from min(n_boot, refit_boot) resamples that each refit the model
 * (same lambda and folds), so they include the model's fitting variability; with a given q
 * the model is fixed and the notes say that the interval covers row sampling only.  `out` is
 * caller-owned.  Returns 0 or a negative status (bad data, no memory). */
int ope_bandit_estimate(const ope_bandit *d, const ope_config *cfg, ope_result *out);

/* ---- continuous actions, deterministic target ------------------------------------- */
typedef struct ope_cont {
    int n;
    const double *action;   /* [n] logged action */
    const double *reward;   /* [n] */
    const double *density;  /* [n] behaviour density of the logged action, > 0 */
    const double *target;   /* [n] target policy's action for the row's context */
    const double *q_target; /* [n] reward model at the target action, or NULL (no KDR) */
    const double *q_logged; /* [n] reward model at the logged action, or NULL (no KDR) */
} ope_cont;

/* Silverman's rule of thumb on the logged actions:
 * h = 0.9 * min(sd, IQR / 1.34) * n^(-1/5) (sd alone when IQR is 0).  Returns 0 on n < 2. */
double ope_silverman_bandwidth(const double *a, int n);

/* KIPS, SNKIPS and (with q_target/q_logged) KDR with bootstrap intervals.  The kernel is
 * Gaussian, K_h(u) = exp(-u^2 / 2h^2) / (h sqrt(2 pi)), h = cfg->bandwidth or Silverman's.
 * Overlap diagnostics use the kernel weights K_h(a_i - t_i) / density_i.  Returns 0 or a
 * negative status. */
int ope_cont_estimate(const ope_cont *d, const ope_config *cfg, ope_result *out);

/* ---- trajectories ---------------------------------------------------------------- */
typedef struct ope_traj {
    int m;                 /* trajectories */
    const int *start;      /* [m+1] step offsets: trajectory j is steps start[j] .. start[j+1]-1 */
    const double *reward;  /* [steps] */
    const double *pi_prob; /* [steps] target probability (or density) of the logged action */
    const double *mu_prob; /* [steps] behaviour probability of the logged action, > 0 */
} ope_traj;

/* PDIS and WPDIS with discount cfg->gamma, bootstrap over trajectories.  A trajectory that
 * ended before step t is treated as absorbed (reward 0, weight frozen at its last value).
 * Returns 0 or a negative status. */
int ope_traj_estimate(const ope_traj *d, const ope_config *cfg, ope_result *out);

/* ---- Fitted Q Evaluation (ope_fqe.c) -------------------------------------------------- *
 * P products, each with n logged transitions (s, a, r, s', done) on d state features, are
 * evaluated at once: one network per product in one eng_model group.
 *   discrete (K > 0):   Q(s, .) has K outputs; regression target for the logged action
 *                       y = r + gamma (1 - done) sum_a' pi(a'|s') Qbar(s', a')  (other outputs
 *                       masked with weight 0);  value = mean_j sum_a pi(a|s0_j) Q(s0_j, a)
 *   continuous (K == 0): Q(s, a) has d + 1 inputs (the action last) and one output;
 *                       y = r + gamma (1 - done) Qbar(s', pi(s'));  value = mean_j Q(s0_j, pi(s0_j))
 * Qbar is a copy of Q refreshed at the start of every iteration.  Rewards are divided per
 * product by a scale (mean |r|) and the network learns (1 - gamma) Q / scale, so targets are
 * O(1) whatever the currency; the value is scaled back.  State features should be roughly
 * standardised by the caller (continuous actions roughly in [-1, 1], as DDPG's tanh output). */
typedef struct ope_fqe_data {
    int P, n, d;               /* products, transitions per product, state features */
    int K;                     /* discrete actions; 0 = continuous (deterministic target) */
    const float *s;            /* [P][n][d] state */
    const float *s_next;       /* [P][n][d] next state (ignored where done) */
    const double *reward;      /* [P][n] */
    const unsigned char *done; /* [P][n] 1 = episode ended after this step; NULL = never */
    const unsigned char *valid;/* [P][n] 0 = padding row (products with fewer rows); NULL = all */
    const int *action;         /* [P][n] logged action 0..K-1 (K > 0) */
    const double *pi_next;     /* [P][n][K] target probabilities at s_next (K > 0) */
    const float *action_cont;  /* [P][n] logged action (K == 0) */
    const float *target_next;  /* [P][n] target action at s_next (K == 0) */
    const int *episode;        /* [P][n] episode id of each row (bootstrap unit); NULL = rows */
    int n0;                    /* initial states per product */
    const float *s0;           /* [P][n0][d] */
    const double *pi0;         /* [P][n0][K] target probabilities at s0 (K > 0) */
    const float *target0;      /* [P][n0] target action at s0 (K == 0) */
} ope_fqe_data;

typedef struct ope_fqe_cfg {
    uint64_t seed;      /* weights, minibatches, bootstrap (default 1) */
    double gamma;       /* discount, in [0, 1) (default 0.9) */
    int iterations;     /* target refreshes (default 30) */
    int steps;          /* Adam steps per iteration (default 100) */
    int batch;          /* minibatch rows per product (default 128; capped at n) */
    int n_hidden;       /* hidden layers, 1..ENG_MAX_LAYERS-1 (default 2) */
    int hidden[ENG_MAX_LAYERS - 1]; /* their sizes (default 64, 64) */
    float lr;           /* Adam learning rate (default 1e-3) */
    float huber_delta;  /* > 0: Huber loss with this delta; 0: MSE (default 1.0) */
    int n_boot;         /* refits on episodes resampled with replacement, for the interval;
                         * 0 = no interval (default 0; each refit costs a full fit) */
#define OPE_FQE_PERCENTILE_MIN_BOOT 100 /* from this many refits: percentile interval */
    double alpha;       /* interval level (default 0.05) */
    /* Warm start (docs/nightly.md, "Warm nights"; both NULL by default): init_params [P][np] (np =
     * ope_fqe_nparams) starts the main fit's Q networks from these parameters instead of the
     * seeded initialisation (the bootstrap refits always start fresh); final_params [P][np]
     * receives the main fit's parameters.  Not owned. */
    const float *init_params;
    float *final_params;
} ope_fqe_cfg;

ope_fqe_cfg ope_fqe_cfg_default(void);
/* Parameters per product of the Q network FQE fits for state width d and K actions (K = 0:
 * continuous, one action input) under cfg's layers; 0 when the shape is invalid. */
size_t ope_fqe_nparams(int d, int K, const ope_fqe_cfg *cfg);

/* Fit FQE for all P products on backend `be` (NULL = CPU) and fill out[p].v[OPE_FQE]
 * (out is caller-owned, [P]; each out[p] is reset with ope_result_init first).  With
 * n_boot = B > 0, the whole fit is repeated on B resamples of episodes (rows when
 * d->episode is NULL) drawn with replacement.  The interval is the percentile interval of the
 * B refit values when B >= OPE_FQE_PERCENTILE_MIN_BOOT, as for every other estimator; with
 * fewer refits the tails of B values are too coarse, so it is estimate +- t_{B-1} * sd of the
 * refits (normal approximation).  The note says which, and how many refits it rests on.  Returns 0, ENG_EINVAL (bad shapes, probabilities, config; message names the
 * product and row), ENG_ENOMEM, ENG_ENUM (a network diverged), or a backend error. */
int ope_fqe_estimate(const ope_fqe_data *d, const ope_fqe_cfg *cfg, const eng_backend *be, ope_result *out);

/* ---- bootstrap (shared) ------------------------------------------------------------ */
/* Estimates of the form  sum_i num[i][e] / sum_i den[i][e]  for E estimators over n units
 * (den NULL = plain means).  Writes est[e], and with B > 0 the percentile interval
 * lo[e]/hi[e] and bootstrap sd se[e] from B seeded resamples of the n units; a resample whose
 * denominator is 0 is undefined and skipped (more than 5% skipped gives NaN intervals).
 * Returns 0 or ENG_EINVAL / ENG_ENOMEM. */
int ope_boot_ratio(const double *num, const double *den, int n, int E, int B, double alpha,
                   uint64_t seed, double *est, double *lo, double *hi, double *se);

/* Percentile interval [alpha/2, 1-alpha/2] (linear interpolation between order statistics)
 * and standard deviation of B bootstrap values; NaN values are dropped and when more than 5%
 * are NaN the outputs are NaN.  Reorders `vals` in place.  se may be NULL. */
void ope_boot_summary(double *vals, int B, double alpha, double *lo, double *hi, double *se);

/* Reset a result: every estimator unavailable with NaN values, q_source "none".  Used by the
 * estimate functions; exposed so callers can build results of their own. */
void ope_result_init(ope_result *out, const ope_config *cfg, int n);

/* Mark v available with estimate est, interval [lo, hi], bootstrap sd se over n_used units
 * (the outputs of ope_boot_ratio for one estimator); the note is left to the caller. */
void ope_value_set(ope_value *v, double est, double lo, double hi, double se, int n_used);

/* ---- CSV and the command ----------------------------------------------------------- */
/* Load a logged-bandit CSV (format in docs/ope.md): action, reward, pscore, pi_0..pi_{K-1},
 * optional q_0..q_{K-1}, mu_0..mu_{K-1}, x_* columns.  Fills *out (caller frees with
 * ope_bandit_free).  Errors name the file and line: ENG_ENOTFOUND/EIO (cannot read),
 * ENG_EFORMAT (missing column, wrong field count, non-numeric), ENG_EINVAL (out of range). */
int ope_csv_load(const char *path, ope_bandit *out);

struct json_object;
/* JSON object keyed by estimator name ({estimate, ci_low, ci_high, boot_se, n_used, note}),
 * with "diagnostics" (overlap, n, bootstrap, recommended).  Caller releases with
 * json_object_put.  Returns NULL on allocation failure (error set). */
struct json_object *ope_result_json(const ope_result *r);

#endif
