/* exp_backtest_int.h - shared between the backtest's run (exp_backtest.c) and its valuation
 * (exp_backtest_value.c); not a public interface. */
#ifndef EXP_BACKTEST_INT_H
#define EXP_BACKTEST_INT_H

#include "exp_backtest.h"

/* What the night decided for one simulated product (captured by the nightly's hook). */
typedef struct bt_prod {
    int valid;                       /* priced by the nightly and not failed */
    double incumbent;
    double lo, hi;                   /* the guardrails' interval around the incumbent */
    double agent_price[EXP_N_AGENTS];/* each agent's guarded next price */
    double pushed;                   /* the final (pushed) price */
    int deployed;
    exp_agent agent;
    double gate_price[EXP_BT_N_GATE];/* the price of each gate variant */
} bt_prod;

/* z of a two-sided normal interval of level `level` (0.95 -> 1.96). */
double bt_level_z(double level);

/* Value the captured prices of every product under the truth of period n_days of the simulated
 * history h / lg (h has n_days + 1 periods) into run.  Returns 0 or ENG_EINVAL. */
int bt_value(const exp_bt_cfg *cfg, const db_history *h, const env_sim_log *lg, const bt_prod *prod, exp_bt_run *run);

#endif
