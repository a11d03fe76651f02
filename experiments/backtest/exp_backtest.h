/* exp_backtest.h - `rlprice backtest`: the real nightly on a simulated history with known truth
 * (docs/backtest.md).
 *
 * One run (a demand family and a seed): simulate n_products x (n_days + 1) periods with the
 * family's demand (env_sim_generate_ex: mis-set list prices, a history randomised over six
 * levels around the list price), write the first n_days as CSV files and load them with the
 * import a shop uses (db_import_csv) into a throwaway database (or the one given), run
 * exp_nightly_run for the next day, then value under the truth of that next day (the hidden
 * reference price and the posted competitor prices of period n_days) every agent's next price,
 * the history's next price, a random price, the incumbent and what the nightly pushed: expected
 * revenue per visitor against the best price inside the same guardrails (the product's bounds
 * and incumbent +- max_change_pct).
 */
#ifndef EXP_BACKTEST_H
#define EXP_BACKTEST_H

#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "env_sim.h"
#include "exp_compare.h"

/* Policies valued by the backtest. */
typedef enum {
    EXP_BT_DQN = 0,
    EXP_BT_DDPG,
    EXP_BT_LINUCB,
    EXP_BT_FIXED,     /* the comparison's best fixed price */
    EXP_BT_HISTORY,   /* the logging policy's price for the next day (a draw of the history) */
    EXP_BT_INCUMBENT, /* the price in force (uplift 0 by construction) */
    EXP_BT_RANDOM,    /* uniform inside the guardrails */
    EXP_BT_PUSHED,    /* what the nightly pushed (the OPE gate) */
    EXP_BT_BEST,      /* the best price inside the guardrails (100% by construction) */
    EXP_BT_MODEL,     /* the product's demand model's own best price inside the guardrails
                         (feat_demand.h, fitted on the night's history, a normal period at the
                         latest competitor prices): what the model-based agents can reach */
    EXP_BT_N_POL
} exp_bt_policy;

/* "dqn", "ddpg", "linucb", "fixed", "history", "incumbent", "random", "pushed", "best", "model". */
const char *exp_bt_policy_name(exp_bt_policy p);

/* Gate variants of the trade-off table: the nightly's gate (exp_gate.h: deploy the candidate
 * with the highest lower bound, when it is above 0) at several confidence levels, for each gate
 * mode (EXP_GATE_OPE: the shrunk OPE uplift; EXP_GATE_MODEL: the product's demand model;
 * EXP_GATE_BOTH: the model and a positive OPE uplift).  k = mode * EXP_BT_N_LEVELS + level. */
#define EXP_BT_N_LEVELS 7
#define EXP_BT_N_GATE (3 * EXP_BT_N_LEVELS)
extern const double exp_bt_gate_level[EXP_BT_N_LEVELS]; /* two-sided levels: 0.50 .. 0.99 */

/* Decision quality of one policy on one run. */
typedef struct exp_bt_stats {
    int n;                    /* products valued */
    int n_eval;               /* products whose attainable uplift >= EXP_BT_FLOOR of the incumbent's */
    int n_repriced;           /* price differs from the incumbent by a cent or more */
    int n_worse;              /* repriced with a lower expected revenue per visitor */
    int n_outside;            /* prices outside the guardrails (must be 0) */
    int n_promo_only;         /* repriced to a price the history charged only in promotion periods */
    double captured_mean;     /* mean over the n_eval products of achieved / attainable uplift */
    double captured_pooled;   /* sum of achieved / sum of attainable uplift (all products) */
    double worse_share;       /* n_worse / n_repriced (NaN when none repriced) */
    double uplift_period;     /* mean expected revenue uplift per period (E[traffic] x RPV gain) */
} exp_bt_stats;

#define EXP_BT_FLOOR 0.01

/* One (family, seed). */
typedef struct exp_bt_run {
    env_sim_family family;
    uint64_t seed;
    int n_products, n_days;
    int n_valued;             /* products the nightly priced and the backtest valued */
    exp_bt_stats pol[EXP_BT_N_POL];
    exp_bt_stats gate[EXP_BT_N_GATE]; /* [mode][level] flattened: k = mode * N_LEVELS + l */
    int gate_default;         /* the variant of the nightly's own gate (mode, level), -1: none */
    int n_gate_agree;         /* products where that variant equals what was pushed */
    int n_deployed_by[EXP_N_AGENTS];
    double attainable_period; /* mean attainable revenue uplift per period */
    double revenue_period;    /* mean logged revenue per period (the scale of the uplifts) */
    double seconds_nightly, seconds_total;
} exp_bt_run;

typedef struct exp_bt_result {
    int n_runs;
    exp_bt_run *runs;         /* [n_runs], owned (exp_bt_result_free) */
} exp_bt_result;
void exp_bt_result_free(exp_bt_result *r);

typedef struct exp_bt_cfg {
    PGconn *conn;             /* database to use as it is (schema applied, no other SIM products),
                                 or NULL: a throwaway database per run on `conninfo`'s server */
    const char *conninfo;     /* NULL = PG* variables or the embedded cluster */
    int keep;                 /* keep the throwaway databases */
    int n_products, n_days;   /* 300 x 120 */
    uint64_t seed;            /* first seed; run k uses seed + k */
    int n_seeds;              /* 1 */
    int n_families;
    env_sim_family families[ENV_SIM_FAMILY_COUNT]; /* logit, ce, ref */
    double misset_lo, misset_hi; /* list price / best price: 0.70 .. 1.35 */
    double max_change_pct;    /* products.max_change_pct: 15 */
    double traffic_scale;     /* multiplies the simulated traffic: 1 */
    double promo_rate;        /* share of exogenous promotion periods (env_sim_gen_opts): 0 = none */
    double promo_lift_lo, promo_lift_hi; /* their logit lift range: 0.4 .. 0.9 */
    int like_periods;         /* compare.like_periods for the nightly; -1 = the comparison's default */
    int endings;              /* 1: the nightly keeps its price endings (guard.endings, .99/.49 by
                                 default); 0 (default): whole cents, the grid the best price, the
                                 model's and the random price are valued on (one night only) */
    const char *out_dir;      /* reports and scratch CSV: "out/backtest" */
    const char *device;       /* "auto" */
    const exp_compare_cfg *compare; /* the nightly's settings (NULL = defaults); seeds are set per run */
    int gate_mode;            /* the nightly's nightly.gate_mode (its default) */
    double gate_level;        /* the nightly's nightly.gate_level (its default) */
    int gate_extend;          /* the nightly's nightly.gate_extend (its default) */
    int gate_standing;        /* the nightly's nightly.gate_standing (its default) */
    int gate_model_dir;       /* the nightly's nightly.gate_model_dir (its default) */
    int gate_cut_standing;    /* the nightly's nightly.gate_cut_standing (its default) */
    int gate_plan, gate_plan_nights, gate_plan_paths, gate_plan_model; /* the nightly's nightly.gate_plan, _nights, _paths, _model (its defaults) */
    double gate_plan_gamma;   /* the nightly's nightly.gate_plan_gamma (its default) */
    double gate_select;       /* the nightly's nightly.gate_select (its default) */
    double gate_support_widen;/* the nightly's nightly.gate_support_widen (its default) */
    double gate_min_gain;     /* the nightly's nightly.gate_min_gain (its default) */
    int window_carryover_days;/* the nightly's nightly.window_carryover_days (its default, 0: off) */
    double window_carryover_share; /* the nightly's nightly.window_carryover_share (its default) */
    int verbose;              /* per-run progress lines on stderr */
} exp_bt_cfg;

/* The defaults above. */
exp_bt_cfg exp_bt_default(void);

struct exp_nightly_cfg;
/* Copy cfg's gate settings (gate_mode ... gate_min_gain) and window_carryover_* into the nightly configuration nc, so
 * the one-night run and every nightly of the closed loop use the same gate.  Nothing allocated. */
void exp_bt_gate_apply(const exp_bt_cfg *cfg, struct exp_nightly_cfg *nc);

/* The simulator's options for the one-night run of family fam and seed seed: the history of
 * cfg's run (six levels 0.85 .. 1.15 of the list price, cfg's mis-set range, traffic factor and
 * promotions, the backtest's calendar).  Nothing allocated; cfg is not checked. */
env_sim_gen_opts exp_bt_gen_opts(const exp_bt_cfg *cfg, env_sim_family fam, uint64_t seed);

/* Run every (family, seed); *out (zeroed here) holds the runs that finished, free with
 * exp_bt_result_free also after a failure.  Returns 0, ENG_EINVAL (configuration), ENG_EDB,
 * ENG_EIO, ENG_ENOMEM or the nightly's failure status. */
int exp_backtest_run(const exp_bt_cfg *cfg, exp_bt_result *out);

/* The tables (per run, then mean [min, max] over seeds per family and over everything, then the
 * gate trade-off) on f. */
void exp_backtest_print(FILE *f, const exp_bt_cfg *cfg, const exp_bt_result *r);
/* The result as JSON (atomic write).  Returns 0, ENG_EIO or ENG_ENOMEM. */
int exp_backtest_write_json(const char *path, const exp_bt_cfg *cfg, const exp_bt_result *r);

#endif
