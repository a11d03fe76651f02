/* exp_results.h - what a comparison run produces: per product and overall, the value of every
 * agent (and the historical policy) under every OPE estimator, with confidence intervals,
 * overlap diagnostics, the guarded price each agent would set next, and price trajectories.
 *
 * Producer: exp_compare.c (trains the agents on a db_history and evaluates them).
 * Consumers: exp_report.c (HTML + JSON report), exp_nightly.c (deployment decision + push).
 * Memory: an exp_results owns everything it points to; free with exp_results_free.
 */
#ifndef EXP_RESULTS_H
#define EXP_RESULTS_H

#include <stdint.h>

#include "feat_demand.h"
#include "ope.h"

typedef enum {
    EXP_AGENT_HISTORY = 0, /* the logged (incumbent, human) policy */
    EXP_AGENT_FIXED = 1,   /* best fixed price per product (chosen on the training window) */
    EXP_AGENT_LINUCB = 2,
    EXP_AGENT_DQN = 3,
    EXP_AGENT_DDPG = 4,
    EXP_N_AGENTS = 5
} exp_agent;

/* "history", "fixed", "linucb", "dqn", "ddpg". Static string. */
const char *exp_agent_name(exp_agent a);

typedef enum {
    EXP_OK = 0,          /* trained and evaluated */
    EXP_SKIP_SHORT = 1,  /* too little history: pooled model or incumbent price (see note) */
    EXP_DIVERGED = 2,    /* an agent diverged (NaN/Inf); that agent is held at the incumbent */
    EXP_FAILED = 3       /* anything else; held at the incumbent, note says why */
} exp_status;

const char *exp_status_name(exp_status s);

typedef struct exp_product_result {
    int index;                  /* product index in the db_history */
    int rank;                   /* MPI: the rank that trained and evaluated it and decides it in
                                   the nightly (its owner, docs/mpi.md); 0 in one process */
    char *product_id;           /* owned copy */
    exp_status status;
    char note[192];             /* why skipped / failed / pooled, "" when fine */
    unsigned agent_failed;      /* bit a set: agent a diverged or failed for this product */

    double incumbent_price;     /* last historical price (exact double of the database's decimal) */
    int price_scale;            /* decimals the database holds for its prices; -1 unknown */
    double price[EXP_N_AGENTS]; /* guarded price each agent would set for the next period */
    unsigned guard_reasons[EXP_N_AGENTS]; /* env_action.h reason bits of that price */
    float support_gap[EXP_N_AGENTS]; /* distance of that price from the nearest price logged in
                                    the training window, in grid steps (2 band / (K - 1) of the
                                    reference price): 0 = a logged price; NaN = no logged price */

    /* One-step value (mean immediate reward per period) and long-term value (discounted
     * return per trajectory) of each agent, from the product's logged data. */
    ope_result immediate[EXP_N_AGENTS]; /* Replay, IPS, SNIPS, DM, DR, Switch-DR (+ kernel for DDPG) */
    ope_result longterm[EXP_N_AGENTS];  /* PDIS, WPDIS, FQE */

    /* Deployment evidence (docs/compare.md, "Uplift and shrinkage"): the uplift of agent a over
     * the historical policy on the same evaluation rows (mean of the per-row differences DR_a,i
     * minus the logged reward r_i, i.e. history's on-policy mean; compare.uplift_ref = 1: minus
     * history's DR terms; percentile bootstrap CI over rows, boot_se), and its
     * empirical-Bayes (normal-normal) posterior across products: estimate = posterior mean,
     * ci_low/ci_high = 1 - alpha posterior interval, boot_se = posterior sd.  Index
     * EXP_AGENT_HISTORY is unavailable (the reference).  Unavailable with a note when the
     * product has no evaluation rows or the pooled evidence for the agent is unusable. */
    ope_value uplift[EXP_N_AGENTS];
    ope_value uplift_shrunk[EXP_N_AGENTS];

    /* Evaluation rows whose behaviour propensity is the one rlprice logged when it set that
     * period's price (exact: docs/ope.md, "Logged propensities") and those whose propensity is
     * the fitted behaviour model's estimate. */
    int n_eval_logged, n_eval_estimated;

    /* Trajectories for the report: [n_periods] historical prices and, per agent, the guarded
     * price it would have set in each period given the state then (NaN where no state). */
    int n_periods;
    float *hist_price;
    float *agent_price[EXP_N_AGENTS];
} exp_product_result;

typedef struct exp_results {
    char *run_id;               /* owned */
    char *run_date;             /* "YYYY-MM-DD", owned */
    char *config_text;          /* the full configuration as key=value lines, owned */
    char *reward_text;          /* sentence on how the reward was formed (traffic fallback), owned */
    char *data_source;          /* e.g. "postgres:user@host/db" or "dominicks preset", owned */
    int n_products;
    exp_product_result *products; /* [n_products] */

    /* Across products (products with status EXP_OK or EXP_DIVERGED): mean per-product value
     * per agent and estimator, with a bootstrap CI over products. */
    ope_result total_immediate[EXP_N_AGENTS];
    ope_result total_longterm[EXP_N_AGENTS];
    /* IPS, SNIPS, DM, DR and Switch-DR of total_immediate are computed on the POOLED
     * evaluation rows of those products (per-row terms, bootstrap over products as clusters;
     * total_immediate[a].overlap is the pooled rows' overlap, its ess the pooled ESS); Replay,
     * the kernel estimators and total_longterm are means of per-product values. */
    ope_value total_uplift[EXP_N_AGENTS]; /* pooled uplift over history (as uplift[]), same rows */
    double eb_mean[EXP_N_AGENTS];   /* empirical-Bayes prior mean of the scaled uplift at the mean
                                       support share (NaN: none) */
    double eb_slope[EXP_N_AGENTS];  /* prior mean's slope in the support share ESS_p / n_p */
    double eb_tau2[EXP_N_AGENTS];   /* its between-product variance (method of moments) */
    double eb_tau2_icpt[EXP_N_AGENTS], eb_tau2_slope[EXP_N_AGENTS]; /* the variance used for a
                                       product of support share x: max(eb_tau2, icpt + slope x) */
    double eb_var_mean[EXP_N_AGENTS]; /* variance of eb_mean */
    int eb_n[EXP_N_AGENTS];         /* products with finite evidence behind mean and tau2 */
    exp_agent winner_immediate; /* best agent by the recommended one-step estimate */
    exp_agent winner_longterm;  /* best agent by the recommended long-term estimate */

    int fqe_products;           /* products whose long-term FQE was computed (the FQE total is
                                   over these: all, or a seeded sample of compare.fqe_products) */
    int fqe_eligible;           /* products that could have been (in the totals, evaluation rows) */
    double seconds_fqe;         /* part of seconds_ope spent in FQE */
    /* The nightly's logged exploration, set by exp_nightly before its report (explore_on 0
     * otherwise): products eligible and explored, the probability used, the expected revenue
     * per period given up by the draws (engine's estimate) and its share of the night's. */
    int explore_on, n_explore_eligible, n_explored;
    /* The price-slope prior the comparison's demand models ran with (compare.demand_prior: the
     * night's pooled one; n = 0: the weak N(-1, 1)), for whoever values prices after the night
     * with the same models (the backtest). */
    feat_demand_prior demand_prior;
    /* compare.refit: the products whose DQN and DDPG next prices came from the agents refitted
     * on every day (their OPE values are the training window's agents'); 0: none */
    int refit_products;
    double explore_prob, explore_cost, explore_cost_share;
    /* nightly.window_carryover_days, set by exp_nightly before its report (window_tested 0
     * otherwise): the products fitted by the window's carry-over test, those that showed
     * carry-over, whether the night priced from the short window and its days */
    int window_tested, window_carry_tested, window_carry, window_short, window_days;
    double seconds_load, seconds_features, seconds_train, seconds_ope, seconds_report, seconds_push;
} exp_results;

void exp_results_free(exp_results *r); /* NULL is a no-op */

#endif
