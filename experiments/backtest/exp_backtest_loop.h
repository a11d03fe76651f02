/* exp_backtest_loop.h - `rlprice backtest --nights N`: the closed loop between the market
 * simulator and the real nightly through PostgreSQL (docs/backtest.md, "Closed loop").
 *
 * One run (a demand family and a seed): simulate n_days of history (the randomised history of
 * the one-night backtest), then for each of n_nights nights and each LANE:
 *   - a nightly lane loads its own throwaway database (the history through db_import_csv, as a
 *     shop loads it), runs the real exp_nightly_run for the next day (warm from the previous
 *     night's checkpoints unless cold), and takes its prices: `engine` the prices it pushed, read
 *     back from price_recommendations; `alone:<agent>` the agent's guarded price for every
 *     product (the agent forced alone, whatever the gate says);
 *   - `manual` keeps the list price; `oracle` charges the best price inside the product's bounds
 *     and the change limit around its own previous price: the day's best whole-cent price
 *     (myopic) on logit/ce, the DP optimum over the nights held to the change limit on ref (where
 *     `oracle:free`, the DP free of the change limit, is shown beside it);
 *   - each lane's own copy of the market (the hidden reference price carries over; traffic and
 *     competitors are common random numbers) sells the day at those prices; a nightly lane
 *     imports that one day's sales and competitor prices (the same import) and the next night runs.
 * Reported per night and cumulative: the expected revenue (E[visitors] x q(price) x price under
 * the truth), revenue per visitor and profit of every lane; for the engine also each agent's
 * price valued on the engine's own path (one night, no carry-over) and the time per night.
 */
#ifndef EXP_BACKTEST_LOOP_H
#define EXP_BACKTEST_LOOP_H

#include <stdio.h>

#include "exp_backtest.h"
#include "exp_nightly.h"

/* Lanes of the loop. */
typedef enum {
    EXP_BTL_ENGINE = 0, /* the nightly as it is: what it pushed */
    EXP_BTL_DQN,        /* alone:dqn ... alone:fixed: the agent's guarded price for every product */
    EXP_BTL_DDPG,
    EXP_BTL_LINUCB,
    EXP_BTL_FIXED,
    EXP_BTL_MANUAL,     /* the list price every day */
    EXP_BTL_ORACLE,     /* the best price inside the bounds and the change limit: the day's best
                           (myopic) on logit/ce, the DP optimum over the nights held to the change
                           limit on the reference-price family (env_sim_dpc) */
    EXP_BTL_HELD,       /* a second reference held to the guardrails: each night the price moves
                           toward the product's standing optimum under the truth (the best price
                           once the reference has settled at it) by at most the change limit */
    EXP_BTL_FREE,       /* reference-price family only: the DP optimum over the nights NOT held to
                           the change limit (only the min/max bounds), shown beside the oracle: an
                           upper bound no lane held to the change limit can reach */
    EXP_BTL_GOING,      /* reference-price family only: the truth's DP held to the change limit,
                           solved again every night from the lane's own state over the next
                           n_nights nights and its first step taken - a going concern, which never
                           reaches the horizon's end and so never makes the oracle's last-night cuts
                           into the customers' reference; shown beside the oracle (docs/backtest.md,
                           "Closed loop: what the `ref` yardstick rewards") */
    EXP_BTL_N_LANE
} exp_btl_lane;

/* "engine", "alone:dqn", "alone:ddpg", "alone:linucb", "alone:fixed", "manual", "oracle",
 * "held", "oracle:free". */
const char *exp_btl_lane_name(exp_btl_lane l);
/* 1 for the lanes that run the nightly. */
int exp_btl_lane_nightly(exp_btl_lane l);

/* One lane on one night (sums over the products). */
typedef struct exp_btl_night {
    double exp_revenue, exp_profit, exp_traffic; /* under the truth at the lane's prices */
    double seconds;          /* the nightly (nightly lanes; 0 otherwise) */
    double sec_train, sec_ope, sec_report; /* its stages (exp_nightly_summary) */
    double cpu_seconds;      /* the nightly's CPU seconds in this process (the database server's
                                are not counted): the warm/cold ratio on a loaded machine */
    char stages[640];        /* the nightly's per-stage "name wall/cpu" seconds (eng_stage_format) */
    int warm_loaded, warm_fresh; /* checkpoint groups warm-started / trained from scratch */
    int fqe_warm, fqe_cold;  /* FQE calls started from the previous night's networks / fresh */
    int n_priced;            /* products the nightly priced (the rest kept their price) */
    int n_repriced;          /* price differs from the lane's previous price by a cent or more */
    int n_outside;           /* prices outside the guardrails of the night (must be 0) */
    int n_mismatch;          /* engine: pushed prices read back that differ from the decisions */
    long rows_loaded;        /* sales rows imported after the night (nightly lanes) */
    int n_periods;           /* periods of the history the night's nightly loaded (its window;
                                nightly lanes) */
    int n_carry, n_carry_tested; /* engine: products whose exploration fit showed carry-over, of
                                those tested (exp_explore_summary) */
    int window_tested, window_short; /* nightly.window_carryover_days: the night tested its window /
                                chose the short one (exp_nightly_summary window_*) */
    int window_carry, window_carry_tested; /* ... its products that showed carry-over, of those fitted */
    int n_explored;          /* engine: products whose pushed price is an exploration draw */
    double explore_cost;     /* engine: expected revenue given up by the draws under the truth
                                (decided price's minus the drawn price's; a lucky draw counts
                                negative) */
    double explore_cost_est; /* engine: the same as the nightly estimated it (its demand fit) */
} exp_btl_night;

/* One (family, seed). */
typedef struct exp_btl_run {
    env_sim_family family;
    uint64_t seed;
    int n_products, n_days, n_nights;
    unsigned lanes;                         /* bit l: lane l ran */
    int n_worse, n_worse1;                  /* products whose cumulative expected revenue in the
                                               engine lane is below manual pricing's (by > 1%) */
    int oracle_dp;                          /* 1: the oracle lane is the DP optimum over the nights
                                               held to the change limit and the lane oracle:free
                                               the DP free of it (reference-price family), 0: myopic */
    int dp_levels;                          /* the held DP's price levels per product (mean) */
    double dp_cpu_seconds;                  /* CPU seconds of both DPs' solves and plans */
    exp_btl_night *night[EXP_BTL_N_LANE];   /* [n_nights] per lane that ran, owned */
    double *onestep[EXP_N_AGENTS];          /* engine lane: expected revenue of each agent's
                                               price on the engine's own path, [n_nights] */
    double seconds_total;
} exp_btl_run;

typedef struct exp_btl_result {
    int n_runs;
    exp_btl_run *runs;       /* [n_runs], owned */
} exp_btl_result;
void exp_btl_result_free(exp_btl_result *r);

typedef struct exp_btl_cfg {
    exp_bt_cfg bt;           /* the market, database, out folder and nightly settings of the
                                one-night backtest (n_days = the history before the first night) */
    int n_nights;            /* >= 1 */
    unsigned lanes;          /* bit per exp_btl_lane; engine, manual and oracle always run */
    int cold;                /* 1: every night from scratch (no checkpoints), to time cold nights */
    int keep_history;        /* 1: every nightly loads the whole history (nightly.window_days 0:
                                the D days and every night sold since, growing by a day a night);
                                2: the engine lane loads it on a night after one whose exploration
                                found carry-over in at most explore.carryover_share of its tested
                                products (exp_explore_summary n_carry / n_carry_tested; none
                                tested: no), else the sliding window, as the agents' lanes;
                                0 (the default): a sliding window of the history's D days */
    exp_explore_cfg explore; /* the engine lane's logged exploration (nightly.explore.*; share 0 =
                                off, as in the nightly) */
} exp_btl_cfg;

/* Lanes run by default: engine, manual, oracle, held, every agent alone (and oracle:free on ref). */
#define EXP_BTL_ALL_LANES ((1u << EXP_BTL_N_LANE) - 1u)

/* 0, or ENG_EINVAL naming what cfg lacks (sizes, keep_history, the exploration keep_history 2
 * needs) or holds that the loop cannot honour (the one-night run's promo_rate and endings).  Touches
 * nothing; exp_backtest_loop_run calls it first. */
int exp_backtest_loop_check(const exp_btl_cfg *cfg);

/* Run every (family, seed) of cfg->bt.  *out (zeroed here) holds the runs that finished; free
 * with exp_btl_result_free also after a failure.  Returns 0, ENG_EINVAL, ENG_EDB, ENG_EIO,
 * ENG_ENOMEM or the nightly's failure status. */
int exp_backtest_loop_run(const exp_btl_cfg *cfg, exp_btl_result *out);

/* Per-night and cumulative tables, the summary over runs and the goals, on f. */
void exp_backtest_loop_print(FILE *f, const exp_btl_cfg *cfg, const exp_btl_result *r);
/* JSON (`rlprice.backtest_loop/1`, atomic write).  0, ENG_EIO or ENG_ENOMEM. */
int exp_backtest_loop_write_json(const char *path, const exp_btl_cfg *cfg, const exp_btl_result *r);
/* The HTML page of the cumulative curves (one chart per run: cumulative expected revenue minus
 * manual pricing's, per lane).  0, ENG_EIO or ENG_ENOMEM. */
int exp_backtest_loop_write_html(const char *path, const exp_btl_cfg *cfg, const exp_btl_result *r);

/* Captured share of a run: (lane - manual) / (oracle - manual), cumulative expected revenue
 * over the nights; NaN when the lane did not run or the oracle gains nothing. */
double exp_btl_captured(const exp_btl_run *r, exp_btl_lane l);
/* The same against the held reference: (lane - manual) / (held - manual); NaN likewise. */
double exp_btl_captured_held(const exp_btl_run *r, exp_btl_lane l);
/* The same against the DP free of the change limit (the `ref` yardstick before 2026-12-02 q13dp):
 * (lane - manual) / (oracle:free - manual); NaN likewise (also on logit/ce: no such lane). */
double exp_btl_captured_free(const exp_btl_run *r, exp_btl_lane l);
/* The same against the going concern (oracle:going): (lane - manual) / (oracle:going - manual);
 * NaN likewise (also on logit/ce: no such lane). */
double exp_btl_captured_going(const exp_btl_run *r, exp_btl_lane l);
/* Exploration cost of a run under the truth: cumulative cost / the engine's cumulative expected
 * revenue (0 when exploration was off). */
double exp_btl_explore_share(const exp_btl_run *r);
/* Cumulative expected revenue of a lane over the run's nights (NaN when it did not run). */
double exp_btl_cum_revenue(const exp_btl_run *r, exp_btl_lane l);

#endif
