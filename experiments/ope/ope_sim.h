/* ope_sim.h - validation of the off-policy estimators against the market simulator's truth.
 *
 * Two designs, over products x seeds (docs/ope.md, "Validation against the simulator"):
 *  one-step:   one long logged run per (product, seed) under the expert logging policy with
 *              its exact propensities; targets fixed_good, fixed_high, myopic, noisy_greedy,
 *              shifted; estimators IPS, SNIPS, DM, DR, Switch-DR; truth = mean over the logged
 *              rows of the target's exact expected reward at that row's hidden state.
 *  sequential: episodes of `horizon` periods from a fresh market; target shifted (the expert
 *              centred half a softmax width higher); PDIS, WPDIS and FQE; truth =
 *              env_sim_evaluate's discounted expected revenue over truth_reps online runs.
 * Reward = revenue / (p0 * traffic_base), so every product's values are O(conversion rate).
 * Errors are relative, (estimate - truth) / truth, so products of different sizes pool.
 */
#ifndef OPE_SIM_H
#define OPE_SIM_H

#include <stdint.h>

#include "eng_backend.h"
#include "ope.h"

typedef struct ope_sim_cfg {
    uint64_t seed;     /* products' parameters and every stream (default 7) */
    int n_products;    /* default 10 */
    int n_seeds;       /* repetitions per product (default 5) */
    int n_periods;     /* one-step: logged rows per (product, seed) (default 400) */
    int n_episodes;    /* sequential: logged episodes per (product, seed) (default 300) */
    int horizon;       /* sequential: periods per episode (default 6) */
    double gamma;      /* sequential discount (default 0.9) */
    int n_boot;        /* bootstrap resamples of the one-step and PDIS intervals (default 200) */
    int truth_reps;    /* online runs for the sequential truth (default 2000) */
    int sequential;    /* 1: run the sequential design too (default 1) */
    int seq_seeds;     /* repetitions of the sequential design (default 0 = n_seeds) */
    ope_fqe_cfg fqe;   /* FQE settings (default ope_fqe_cfg_default with gamma = gamma); set
                        * fqe.iterations = 0 to skip FQE */
} ope_sim_cfg;

ope_sim_cfg ope_sim_cfg_default(void);

/* One (design, target, estimator) line of the summary.  Statistics over the cases whose
 * overlap was adequate (overlap.poor == 0; FQE counts every case). */
typedef struct ope_sim_stat {
    const char *design;   /* "one-step" or "sequential" (static) */
    const char *target;   /* static name */
    ope_est est;
    int n_cases;          /* cases run */
    int n_poor;           /* cases with poor overlap (excluded below) */
    int n;                /* cases in the statistics */
    double mean_rel;      /* mean relative error */
    double se_rel;        /* its standard error, sd / sqrt(n) */
    double mean_abs_rel;  /* mean |relative error| */
    double coverage;      /* share of cases whose interval holds the truth (NaN: no intervals) */
    double mean_truth;    /* mean true value */
} ope_sim_stat;

/* Run both designs.  *stats (malloc'd, caller frees) receives *n_stats lines.  `be` runs
 * FQE (NULL = CPU).  Returns 0, ENG_EINVAL (bad config), ENG_ENOMEM, or an estimator's
 * or the simulator's error. */
int ope_sim_validate(const ope_sim_cfg *cfg, const eng_backend *be, ope_sim_stat **stats, int *n_stats);

#endif
