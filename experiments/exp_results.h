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
    char *product_id;           /* owned copy */
    exp_status status;
    char note[192];             /* why skipped / failed / pooled, "" when fine */
    unsigned agent_failed;      /* bit a set: agent a diverged or failed for this product */

    double incumbent_price;     /* last historical price */
    double price[EXP_N_AGENTS]; /* guarded price each agent would set for the next period */
    unsigned guard_reasons[EXP_N_AGENTS]; /* env_action.h reason bits of that price */

    /* One-step value (mean immediate reward per period) and long-term value (discounted
     * return per trajectory) of each agent, from the product's logged data. */
    ope_result immediate[EXP_N_AGENTS]; /* Replay, IPS, SNIPS, DM, DR, Switch-DR (+ kernel for DDPG) */
    ope_result longterm[EXP_N_AGENTS];  /* PDIS, WPDIS, FQE */

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
    exp_agent winner_immediate; /* best agent by the recommended one-step estimate */
    exp_agent winner_longterm;  /* best agent by the recommended long-term estimate */

    double seconds_load, seconds_features, seconds_train, seconds_ope, seconds_report, seconds_push;
} exp_results;

void exp_results_free(exp_results *r); /* NULL is a no-op */

#endif
