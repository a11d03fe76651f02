/* env_behaviour.h - the behaviour policy: how likely the people who set the historical prices
 * were to pick each grid level in a given state, P(level | state), for offline evaluation.
 *
 * Two estimators (cfg.kind):
 *
 *  counts  conditions on the state's incumbent level j only (price_cur / reference on the grid)
 *          and smooths per-product counts towards a pooled, uniformly smoothed estimate
 *          (a hierarchical Dirichlet model):
 *            P_pool(k | j) = (N(j, k) + beta / K) / (N(j) + beta)
 *            P_p(k | j)    = (n_p(j, k) + alpha P_pool(k | j)) / (n_p(j) + alpha)
 *
 *  mnl     (default) a multinomial logit on ENV_BEHAV_NX state features x(s) (see
 *          env_behaviour_features) plus ENV_BEHAV_NZ level-specific features z_k(j) of the
 *          incumbent level j (k == j: keep the price; |k - j| == 1: a one-step nudge;
 *          |ratio_k - ratio_j| / band: size of the move):
 *            score_pk(s) = W_k . x~(s) + u_pk + (gamma + delta_p) . z_k(j)
 *            P_p(k | s)  = (1 - eps) softmax_k(score_p(s)) + eps / K
 *          x~ is x standardised with the fitting rows' mean and sd.  The pooled (W, gamma) is
 *          fitted on all products (ridge l2 / 2 ||.||^2) by Newton's method with a
 *          backtracking line search; then per product the intercept offsets u_p (K) and the
 *          stickiness offsets delta_p are fitted by Newton's method with the prior
 *          shrink / 2 ||(u_p, delta_p)||^2, i.e. shrunk towards the pooled model (a product
 *          with no rows gets exactly the pooled model).  eps mixes with uniform so that every
 *          probability is >= eps / K > 0; rows sum to one.  Deterministic: no random draws;
 *          the pooled fit subsamples every m-th row (fixed stride) beyond pool_max_rows.
 *
 * Why mnl is the default: on simulated histories with known logging propensities it is closer
 * to the truth and has a higher held-out log-likelihood than counts (README "Pricing MDP",
 * `rlprice behaviour eval`); on real data where price setters mostly keep the incumbent, the
 * stickiness features carry what the counts model conditions on.
 *
 * The grid must have K >= 2 (env_grid_check); a grid of one level is rejected (ENG_EINVAL).
 */
#ifndef ENV_BEHAVIOUR_H
#define ENV_BEHAVIOUR_H

#include <stddef.h>
#include <stdint.h>

#include "env_action.h"

#define ENV_BEHAV_NX 12 /* state features, including the intercept (index 0) */
#define ENV_BEHAV_NZ 3  /* level-specific features: keep, one-step nudge, move size */
#define ENV_BEHAV_CALIB_BINS 10

typedef struct env_behaviour env_behaviour; /* opaque */

typedef enum { ENV_BEHAV_COUNTS = 0, ENV_BEHAV_MNL = 1 } env_behaviour_kind;

typedef struct env_behaviour_cfg {
    double alpha;             /* counts: per-product shrinkage towards the pool, > 0; default 5 */
    double beta;              /* counts: pooled smoothing towards uniform, > 0; default 1 */
    env_behaviour_kind kind;  /* estimator; default ENV_BEHAV_MNL */
    double l2;                /* mnl: ridge on the pooled coefficients, >= 0; default 1 */
    double shrink;            /* mnl: prior precision of the product offsets, > 0; default 3 */
    double eps;               /* mnl: uniform mixing, in (0, 1); default 0.01 */
    int max_iter;             /* mnl: pooled Newton iterations, >= 1; default 50 */
    long pool_max_rows;       /* mnl: rows used by the pooled fit (stride subsample), >= 1; default 200000 */
    /* Split fits (an MPI run whose ranks each hold some products' rows, docs/mpi.md); 0 / NULL:
     * one process holds every row.  over_ranks = 1 makes the fit collective: the pooled parts
     * (counts: the pooled counts; mnl: the feature standardisation, summed exactly, and the
     * stride subsample of the pooled fit, taken by each row's position in the catalogue's row
     * order and exchanged) come from every rank's rows, so every rank gets the pooled model one
     * process would fit on all rows in catalogue order; the per-product parts stay local.
     * The rows must be grouped by product, each product's rows in period order. */
    int over_ranks;
    const int *gidx;          /* [n_products] each product's catalogue index (NULL: its index) */
    int n_catalogue;          /* products in the catalogue (every rank's), > every gidx */
    /* mnl: where the pooled Newton fit starts (ENV_BEHAV_POOL_LEN doubles: the slopes W [K][NX]
     * then the stickiness [NZ], e.g. last night's env_behaviour_pool_coef); NULL, another K or a
     * non-finite entry: zero.  Only the path changes: the objective is strictly convex (l2 > 0),
     * so the fit converges to the same optimum (to the Newton tolerance) from any start. */
    const double *pool_init;
    int pool_init_len;        /* doubles in pool_init */
} env_behaviour_cfg;
/* Length of the pooled mnl coefficients of a grid of K levels. */
#define ENV_BEHAV_POOL_LEN(K) ((K) * ENV_BEHAV_NX + ENV_BEHAV_NZ)
env_behaviour_cfg env_behaviour_default(void);
/* 0, or ENG_EINVAL naming the bad field. */
int env_behaviour_cfg_check(const env_behaviour_cfg *cfg);

/* State features of a RAW (unnormalised) state vector s[FEAT_N] with reference price ref, into
 * x[ENV_BEHAV_NX]: 1, log(price_cur / ref), discount depth, log(competitor mean / ref),
 * competitor missing, promo_prev, dow sin, dow cos, woy sin, woy cos, units trend
 * log(1 + units_1) - log(1 + units_7 / 7), price missing.  A non-finite or missing input
 * gives 0 for its feature (and the competitor/price missing flag 1); logs are clipped to
 * [-1, 1], the trend to [-3, 3].  Never fails. */
void env_behaviour_features(const float *s, double ref, double *x);
/* Incumbent level of a (raw, unnormalised) state vector: price_cur / ref on the grid; the
 * middle level when price_cur or ref is missing. */
int env_state_level(const env_grid *g, const float *state_raw, double ref);

/* Fit from n logged pairs (product[i], incumbent level j[i], logged level k[i]) for a history
 * of n_products products on grid g.  With kind = mnl only the incumbent enters: the state
 * features are those of a state whose price is at level j and whose other features are
 * missing.  Caller frees with env_behaviour_free.  ENG_EINVAL for out-of-range entries or a
 * bad cfg, ENG_ENOMEM. */
int env_behaviour_fit(env_behaviour **out, const env_grid *g, int n_products, const int32_t *product,
                      const int16_t *j, const int16_t *k, size_t n, const env_behaviour_cfg *cfg);
/* Fit from n logged rows with their RAW states (state_raw[n][FEAT_N]) and reference prices
 * ref[n] > 0.  The counts model uses the incumbent level of each state.  Caller frees with
 * env_behaviour_free.  ENG_EINVAL (bad product/level/ref, bad cfg), ENG_ENOMEM, ENG_ENUM (the
 * fit produced non-finite numbers). */
int env_behaviour_fit_states(env_behaviour **out, const env_grid *g, int n_products, const int32_t *product,
                             const float *state_raw, const float *ref, const int16_t *k, size_t n,
                             const env_behaviour_cfg *cfg);
void env_behaviour_free(env_behaviour *b);

/* P(. | product p, state) into probs[K] (caller's buffer); every entry > 0, sum 1.
 * state_raw: a raw state vector [FEAT_N]; ref its reference price.  ENG_EINVAL for a bad p. */
int env_behaviour_probs_state(const env_behaviour *b, int p, const float *state_raw, double ref, double *probs);
/* P(. | product p, incumbent level j).  counts: exact; mnl: the state features other than the
 * incumbent's are set to product p's mean over its fitting rows (the pooled mean for a product
 * without rows).  ENG_EINVAL for a bad p or j. */
int env_behaviour_probs(const env_behaviour *b, int p, int j, double *probs);
/* Levels, kind, and (mnl) pooled fit diagnostics: iterations used and the final mean
 * penalised negative log-likelihood; either pointer may be NULL. */
int env_behaviour_levels(const env_behaviour *b);
env_behaviour_kind env_behaviour_kind_of(const env_behaviour *b);
void env_behaviour_fit_info(const env_behaviour *b, int *pool_iters, double *pool_nll);
/* (mnl) Hessians the pooled fit assembled (a step may reuse the last one's factor); 0 otherwise. */
int env_behaviour_fit_hessians(const env_behaviour *b);
/* The pooled mnl coefficients (W then the stickiness, ENV_BEHAV_POOL_LEN(K) doubles) into out
 * (caller's, n doubles); returns how many were written: 0 for the counts model or when n is
 * too small. */
int env_behaviour_pool_coef(const env_behaviour *b, double *out, int n);

/* ---- calibration diagnostic ----------------------------------------------------------------
 * Over n rows: per level, the expected count sum_i P(k | s_i) and the observed count of
 * logged level k; and for every (row, level) pair bucketed by predicted probability
 * (ENV_BEHAV_CALIB_BINS equal bins of [0, 1]) the mean prediction and the observed frequency.
 * A calibrated model has expected ~ observed in both views (in-sample the per-level totals of
 * a model with free intercepts match almost by construction; evaluate on held-out rows). */
typedef struct env_behaviour_calib {
    int K;
    long n;
    double *expected;   /* [K] */
    double *observed;   /* [K] */
    double mean_loglik; /* mean log P(logged level | s_i) */
    double max_gap;     /* max_k |expected_k - observed_k| / n */
    double chi2;        /* sum_k (observed - expected)^2 / expected */
    double bin_pred[ENV_BEHAV_CALIB_BINS];  /* mean predicted probability in the bin */
    double bin_freq[ENV_BEHAV_CALIB_BINS];  /* fraction of the bin's pairs that were logged */
    long bin_count[ENV_BEHAV_CALIB_BINS];   /* (row, level) pairs in the bin */
} env_behaviour_calib;

/* Calibration of b on n rows (product, raw state, ref, logged level k).  Fills *out; free its
 * arrays with env_behaviour_calib_free.  ENG_EINVAL (bad row), ENG_ENOMEM. */
int env_behaviour_calibration(const env_behaviour *b, const int32_t *product, const float *state_raw,
                              const float *ref, const int16_t *k, size_t n, env_behaviour_calib *out);
/* Frees the arrays (not c itself); safe on a zeroed struct. */
void env_behaviour_calib_free(env_behaviour_calib *c);
struct json_object;
/* JSON form {"n", "mean_loglik", "max_gap", "chi2", "levels": [{"level", "ratio",
 * "expected", "observed"}], "bins": [{"lo", "hi", "pairs", "mean_pred", "freq"}]}; caller
 * releases with json_object_put; NULL on allocation failure (error set).  g gives the ratios
 * (NULL: left out). */
struct json_object *env_behaviour_calib_json(const env_behaviour_calib *c, const env_grid *g);

/* ---- comparison on simulated histories (env_behaviour_cmd.c) ---------------------------------- */
typedef struct env_behaviour_eval {
    long n_train, n_test;   /* transitions with t < split, t >= split */
    double mae;             /* mean |P_hat(logged) - P_true(logged)| over test rows */
    double loglik;          /* mean log P_hat(logged) over test rows */
    double tv;              /* mean total variation between the estimated and true rows (test) */
} env_behaviour_eval;

/* Simulate n_products x n_days (env_sim default preset, daily, seed), build transitions on the
 * default grid and reward, fit each of the n_cfg configurations on periods t < split and
 * evaluate on t >= split against the simulator's true logging propensities mapped onto the
 * grid (the sum of the true probabilities of the simulator's levels that map to each grid
 * level).  out[0] = uniform 1/K, out[1 + c] = cfgs[c].  *true_loglik (may be NULL) = mean log
 * P_true(logged) on the test rows, the ceiling.  Returns 0, ENG_EINVAL (sizes, split leaving no
 * test or train rows), ENG_ENOMEM, or a fit error. */
int env_behaviour_sim_compare(int n_products, int n_days, uint64_t seed, int split, const env_behaviour_cfg *cfgs,
                              int n_cfg, env_behaviour_eval *out, double *true_loglik);

#endif
