/* env_reward.h - rewards of the pricing MDP.
 *
 * For a period t with revenue R_t, units U_t, traffic (unique visitors) V_t, unit cost c:
 *   revenue  r = R_t
 *   rcr      r = RCR_t = R_t / V_t                      (revenue conversion rate)
 *   drcr     r = RCR_t - RCR_{t-tau}                    (Liu et al.; tau >= 1, default 1)
 *   profit   r = P_t = R_t - c U_t                      (needs unit cost)
 *   pcr      r = P_t / V_t                              (profit conversion rate)
 *   dpcr     r = PCR_t - PCR_{t-tau}
 *
 * Traffic rules (per period):
 *   - V_t > 0: rates as above.
 *   - V_t = 0 and R_t = 0 (and U_t = 0): nobody came, nothing sold: rate 0.
 *   - V_t = 0 with sales, V_t < 0, or V_t NaN: traffic is MISSING for that period.
 * Missing traffic, per product: if traffic is known for at least cfg.min_traffic_frac of
 * the product's present periods, the product uses rates and a period whose rate is
 * missing (t or t-tau) has NO reward (NaN; no transition).  Otherwise the whole product
 * uses cfg.fallback:
 *   ENV_FALLBACK_PROXY1   traffic proxy V = 1: rcr -> revenue, drcr -> R_t - R_{t-tau}
 *                         (difference of revenue), pcr -> profit, dpcr -> difference of profit;
 *   ENV_FALLBACK_LEVEL    the undifferenced value: revenue (or profit) itself;
 *   ENV_FALLBACK_ERROR    ENG_EINVAL naming the product.
 * revenue and profit never need traffic.  Dominick's has no traffic at all, so every
 * product takes the fallback; env_reward_describe() writes the sentence to log/report.
 */
#ifndef ENV_REWARD_H
#define ENV_REWARD_H

#include <stddef.h>

#include "db_history.h"

typedef enum {
    ENV_REWARD_REVENUE = 0,
    ENV_REWARD_RCR,
    ENV_REWARD_DRCR,
    ENV_REWARD_PROFIT,
    ENV_REWARD_PCR,
    ENV_REWARD_DPCR,
    ENV_REWARD_N
} env_reward_kind;

typedef enum { ENV_FALLBACK_PROXY1 = 0, ENV_FALLBACK_LEVEL, ENV_FALLBACK_ERROR, ENV_FALLBACK_N } env_fallback;

typedef struct env_reward_cfg {
    env_reward_kind kind;    /* default ENV_REWARD_DRCR */
    int tau;                 /* lag of the difference, >= 1; default 1 */
    env_fallback fallback;   /* default ENV_FALLBACK_PROXY1 */
    double min_traffic_frac; /* default 0.5 */
} env_reward_cfg;

env_reward_cfg env_reward_default(void);
/* "revenue", "rcr", "drcr", "profit", "pcr", "dpcr" (static); "?" when out of range. */
const char *env_reward_name(env_reward_kind k);
/* "proxy1", "level", "error". */
const char *env_fallback_name(env_fallback f);
/* Parse a name above; ENG_EINVAL listing the valid names. */
int env_reward_parse(const char *s, env_reward_kind *out);
int env_fallback_parse(const char *s, env_fallback *out);
/* 0 or ENG_EINVAL for a bad kind, tau < 1, fraction outside [0, 1]. */
int env_reward_cfg_check(const env_reward_cfg *cfg);
/* 1 when kind k rewards profit (profit, pcr, dpcr: needs the unit cost), else 0. */
int env_reward_is_profit(env_reward_kind k);
/* 1 when the kind uses a rate (rcr, drcr, pcr, dpcr), 2 when also differenced. */
int env_reward_needs_traffic(env_reward_kind k);

/* One period's observation (the simulator fills these too). */
typedef struct env_obs {
    double revenue, units, traffic; /* traffic NaN = unknown */
} env_obs;

/* Per-period rate value of an observation: the numerator (revenue, or profit when
 * profit = 1) divided by traffic under the rules above, or by 1 when proxy1 = 1.
 * Returns NaN when traffic is missing and proxy1 = 0, or unit_cost is needed and NaN. */
double env_rate(const env_obs *o, double unit_cost, int profit, int proxy1);

/* Reward of one period given its observation `cur` and the one tau periods earlier
 * (`prev`, may be NULL when the kind is not differenced).  use_fallback says whether the
 * product is in fallback mode (see above).  *r gets NaN when undefined (missing traffic,
 * prev missing).  Returns 0, or ENG_EINVAL (profit kinds with NaN unit_cost; fallback
 * ERROR requested). */
int env_reward_value(const env_reward_cfg *cfg, double unit_cost, const env_obs *cur, const env_obs *prev,
                     int use_fallback, double *r);

/* Counters over a product (or, summed with env_reward_info_add, over many). */
typedef struct env_reward_info {
    long n_products;         /* products summed */
    long n_fallback_products;/* products that took the fallback */
    long n_periods;          /* periods looked at */
    long n_present;          /* periods with a sales row */
    long n_traffic_missing;  /* present periods whose traffic is missing */
    long n_traffic_zero;     /* present periods with traffic 0 and no sales (rate 0) */
    long n_defined;          /* periods with a finite reward */
} env_reward_info;
void env_reward_info_add(env_reward_info *acc, const env_reward_info *x);

/* Reward of every period of product p into r[n_periods] (caller's buffer): NaN where the
 * period is absent or the reward undefined.  info (may be NULL) gets this product's
 * counters.  Returns 0, ENG_EINVAL (bad p/config, profit without unit cost, fallback
 * ERROR on a product with missing traffic). */
int env_reward_series(const db_history *h, int p, const env_reward_cfg *cfg, float *r, env_reward_info *info);

/* The sentence to log/report, e.g. "reward drcr (tau 1): traffic missing for 121 of 121
 * periods (913 of 913 products): those products use the difference of revenue per period
 * (traffic proxy 1) instead".  Writes at most n bytes (always NUL-terminated). */
void env_reward_describe(const env_reward_cfg *cfg, const env_reward_info *info, char *buf, size_t n);

#endif
