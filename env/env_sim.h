/* env_sim.h - market simulator with KNOWN demand parameters (docs/simulator.md).
 *
 * One product, one period t (a day or a week):
 *   traffic   V_t ~ Poisson(L_t),  L_t = A * exp(g t) * S[dow(t)] * exp(s z_t - s^2/2),  z_t ~ N(0,1)
 *   competitors c_{k,t} = p0 * m_k * exp(x_{k,t}) * (1 - d * promo_{k,t}),  x AR(1)
 *   purchase   q_t = logistic(a + b log(p_t/p0) + g_c log(cbar_t/cbar0)
 *                             + e_gain max(log(r_t/p_t), 0) - e_loss max(log(p_t/r_t), 0)
 *                             + promo_lift * [p_t <= promo_threshold * p0])
 *   units      U_t ~ Binomial(V_t, q_t)  (capped by stock when stock is finite)
 *   reference  r_{t+1} = lambda r_t + (1 - lambda) p_t,  r_0 = ref0 * p0   (hidden)
 * E[revenue_t | state, p] = E[V_t] q_t p exactly, which the DP uses.
 *
 * Every random draw comes from eng_rng streams derived from (seed, product), so a run is
 * reproducible; the exogenous stream (traffic, competitors) is separate from the demand and
 * policy streams, so two policies see the same market (common random numbers).
 */
#ifndef ENV_SIM_H
#define ENV_SIM_H

#include <stdint.h>

#include <libpq-fe.h>

#include "db_history.h"
#include "eng_util.h"

#define ENV_SIM_MAX_COMP 4
#define ENV_SIM_MAX_LEVELS 64

/* True parameters of one product. */
typedef struct env_sim_params {
    double base_price;      /* p0, list price */
    double unit_cost;       /* cost of one unit */
    int period_days;        /* 1 daily (weekly seasonality on), 7 weekly (off) */
    int dow0;               /* weekday of period 0, 0 = Monday */
    /* traffic */
    double traffic_base;    /* A: mean visitors per period at t = 0 on an average weekday */
    double traffic_trend;   /* g: log growth per period */
    double weekly[7];       /* S: weekday factors (mean 1); ignored when period_days != 1 */
    double traffic_sigma;   /* s: lognormal sd of the intensity (0 = pure Poisson) */
    /* purchase probability */
    double conv_base;       /* a: logit at p = p0 = r, competitors at their means */
    double elasticity;      /* b < 0: own-price coefficient on log(p/p0) */
    double comp_coef;       /* g_c >= 0: cross effect of the competitors' mean price */
    double ref_lambda;      /* memory of the reference price, in [0, 1) */
    double ref_gain;        /* e_gain >= 0: lift when p < r */
    double ref_loss;        /* e_loss >= 0: loss when p > r (loss aversion: e_loss > e_gain) */
    double ref0;            /* r_0 / p0 */
    double promo_lift;      /* logit lift of a visible promotion */
    double promo_threshold; /* a price <= promo_threshold * p0 is a promotion */
    /* exogenous promotion calendar (feature, display): period t is a promotion with probability
     * promo_cal_prob, drawn from its own stream (never from the price); in a promotion period the
     * purchase logit (CE: log conversion) rises by promo_cal_lift whatever the price, and the
     * logging policy cuts the price: it draws uniformly among the levels with mult <=
     * promo_cal_hi, and in normal periods among those with mult >= normal_lo.  0: no calendar. */
    double promo_cal_prob;
    double promo_cal_lift;
    double promo_cal_hi;
    double normal_lo;
    /* competitors */
    int n_comp;
    double comp_mean[ENV_SIM_MAX_COMP]; /* m_k: mean price relative to p0 */
    double comp_phi;        /* AR(1) coefficient of log price deviation */
    double comp_sigma;      /* innovation sd (0 = constant prices) */
    double comp_promo_prob; /* chance a competitor runs a promotion in a period */
    double comp_promo_depth;/* d: its discount */
    /* inventory (markdown episodes) */
    double stock;           /* initial units; <= 0 means unlimited */
    /* logging (expert) policy of this product, see env_sim_logging_probs */
    double good_mult;       /* the expert's usual price / p0 */
    double log_width;       /* softmax width, in grid multiplier units */
    double log_promo_prob;  /* chance of a promotion period */
    double log_comp_follow; /* how much the expert follows the competitors (0..1) */
    int log_uniform;        /* 1: the expert draws uniformly over the grid (a randomised history) */
    /* demand family: how the own price enters the purchase probability (ENV_SIM_DEMAND_*) */
    int demand;
} env_sim_params;

/* Demand families (env_sim_purchase_prob); x = p / p0, C = g_c log(cbar/cbar0), R = the
 * reference terms, L = the promotion lift:
 *   LOGLOGIT  q = logistic(a + b log x + C + R + L)          (the original model, b < 0)
 *   LOGIT     q = logistic(a + b (x - 1) + C + R + L)        (utility linear in price: an interior
 *             revenue-per-visitor optimum at b x (1 - q) = -1 even at low conversion)
 *   CE        q = min(0.95, exp(a + b log x + C + R + L))    (constant elasticity b: revenue per
 *             visitor ~ p^(1+b), so the best price is at a bound of the allowed interval) */
enum { ENV_SIM_DEMAND_LOGLOGIT = 0, ENV_SIM_DEMAND_LOGIT = 1, ENV_SIM_DEMAND_CE = 2 };

/* Discrete price grid shared by the logging policy and the DP: price_k = p0 * mult[k]. */
typedef struct env_sim_grid {
    int n;
    double mult[ENV_SIM_MAX_LEVELS];
} env_sim_grid;

/* Even grid of n multipliers from lo to hi. Returns 0 or ENG_EINVAL. */
int env_sim_grid_make(env_sim_grid *g, int n, double lo, double hi);

/* Generic e-commerce product: daily, ~800 visitors, 3% conversion, elasticity -2, a
 * reference effect with loss aversion, 2 competitors. */
void env_sim_params_default(env_sim_params *p);
/* Checks ranges; returns 0 or ENG_EINVAL naming the bad field. */
int env_sim_params_check(const env_sim_params *p);

/* ---- exact model pieces --------------------------------------------------------------- */
/* E[V_t] (traffic) for period t. */
double env_sim_expected_traffic(const env_sim_params *p, int t);
/* Purchase probability at price `price`, reference `ref`, competitor mean price `cbar`, in a
 * NORMAL period (no calendar promotion; the price-threshold promo_lift applies as always). */
double env_sim_purchase_prob(const env_sim_params *p, double price, double ref, double cbar);
/* The same in a period whose calendar promotion flag is `promo` (adds promo_cal_lift when 1). */
double env_sim_purchase_prob_at(const env_sim_params *p, double price, double ref, double cbar, int promo);
/* Mean competitor price at their long-run means (cbar0). */
double env_sim_comp_mean_price(const env_sim_params *p);
/* Next reference price. */
double env_sim_ref_next(const env_sim_params *p, double ref, double price);

/* Samplers (exact): Poisson (PTRS for large means) and binomial (BTRS for large n q). */
int64_t env_sim_poisson(eng_rng *r, double mean);
int64_t env_sim_binomial(eng_rng *r, int64_t n, double q);

/* ---- one product's market, stepped period by period ------------------------------------ */
typedef struct env_sim_market {
    env_sim_params prm;
    int t;
    double ref;             /* hidden reference price */
    double stock_left;      /* INFINITY when unlimited */
    double comp_x[ENV_SIM_MAX_COMP];
    double comp_now[ENV_SIM_MAX_COMP]; /* this period's competitor prices (posted) */
    double intensity;       /* this period's L_t */
    int promo_now;          /* this period is on the promotion calendar (exogenous) */
    eng_rng exo, dem, cal;
} env_sim_market;

/* Per-period outcome. */
typedef struct env_sim_outcome {
    double price, traffic, units, revenue, profit;
    double prob;            /* q_t */
    double exp_traffic;     /* E[V_t] */
    double exp_revenue;     /* E[V_t] q_t p_t: expected revenue given the state and the price */
    double exp_profit;
    double ref;             /* reference before the step (hidden) */
    int promo;
} env_sim_outcome;

/* Start a market for (seed, product) and draw period 0's exogenous state. Returns 0 or EINVAL. */
int env_sim_market_init(env_sim_market *m, const env_sim_params *p, uint64_t seed, int product);
/* Sell at `price` (> 0) in the current period, fill *out, advance to the next period and draw
 * its exogenous state. Returns 0 or ENG_EINVAL for a non-positive/non-finite price. */
int env_sim_market_step(env_sim_market *m, double price, env_sim_outcome *out);

/* ---- policies ------------------------------------------------------------------------ */
/* What a retailer sees when it sets the price of period t: the past (periods 0..t-1) and
 * this period's posted competitor prices. The reference price is NOT in it (it is a
 * customers' memory); oracle policies that know lambda rebuild it from the price history. */
typedef struct env_sim_obs {
    int t, horizon, dow;            /* dow = -1 for weekly periods */
    double base_price, unit_cost;
    double stock_left;              /* INFINITY when unlimited */
    const double *price;            /* [t] */
    const float *units, *revenue, *traffic; /* [t] */
    const uint8_t *promo;           /* [t] */
    int n_comp;
    const float *comp_hist;         /* [t * n_comp], period-major */
    const double *comp_now;         /* [n_comp] */
    const env_sim_grid *grid;
    int promo_now;                  /* this period is on the promotion calendar (known in advance) */
} env_sim_obs;

/* A pricing policy: set *price_out (> 0) for period t. Return 0 or a negative status (the run
 * stops with it). `rng` is the policy's own stream. */
typedef int (*env_sim_policy_fn)(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng,
                                 double *price_out);

/* Fixed price: ctx is a `double *` multiplier of p0. */
int env_sim_policy_fixed(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out);

/* Myopic oracle: maximises the immediate expected reward over the grid with the true parameters
 * and the current competitor prices, ignoring the effect of today's price on tomorrow's reference. */
typedef struct env_sim_myopic_ctx {
    const env_sim_params *prm;
    int profit;             /* 1: maximise profit, 0: revenue */
} env_sim_myopic_ctx;
int env_sim_policy_myopic(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out);

/* Rebuild the hidden reference from r_0 and the observed prices (what an oracle knows). */
double env_sim_ref_from_history(const env_sim_params *p, const env_sim_obs *obs);

/* ---- logging (expert) policy ------------------------------------------------------------ */
/* Action distribution at a state: a softmax over the grid centred on the expert's price
 * good_mult (shifted toward the competitors by log_comp_follow), mixed with probability
 * log_promo_prob with a uniform draw among the promotion levels (mult <= promo_threshold *
 * good_mult / ...). probs[grid->n] sums to one. Returns 0 or ENG_EINVAL. */
int env_sim_logging_probs(const env_sim_params *p, const env_sim_grid *g, const double *comp_now, double *probs);
/* The same in a period whose calendar promotion flag is `promo` (promo_cal_prob > 0): uniform
 * over the levels <= promo_cal_hi in a promotion period; with log_uniform, uniform over the
 * levels >= normal_lo in a normal one.  0 or ENG_EINVAL (also when no level qualifies). */
int env_sim_logging_probs_at(const env_sim_params *p, const env_sim_grid *g, const double *comp_now, int promo,
                             double *probs);
/* Policy form; ctx is an env_sim_logging_ctx; it records the level and propensity it chose. */
typedef struct env_sim_logging_ctx {
    const env_sim_params *prm;
    int last_level;
    double last_propensity;
    double last_probs[ENV_SIM_MAX_LEVELS];
} env_sim_logging_ctx;
int env_sim_policy_logging(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out);

/* ---- episodes and evaluation --------------------------------------------------------------- */
/* Value of a policy: mean over replications and the 95% normal half-width. */
typedef struct env_sim_metric { double mean, ci; } env_sim_metric;
typedef struct env_sim_value {
    int n_reps, horizon;
    double gamma;
    env_sim_metric revenue, disc_revenue, profit, disc_profit, rcr, units;
    /* the same with the realised outcome replaced by its expectation given state and price
     * (Rao-Blackwellised; unbiased, less noisy) */
    env_sim_metric exp_revenue, exp_disc_revenue, exp_profit, exp_disc_profit;
} env_sim_value;

/* Run `n_reps` episodes of `horizon` periods of product `product` under `policy`; replication i
 * uses market seed eng_seed_derive(seed, i). gamma in (0, 1] discounts. Fills *out. Returns 0,
 * ENG_EINVAL, ENG_ENOMEM or the policy's error. */
int env_sim_evaluate(const env_sim_params *p, const env_sim_grid *g, int product, int horizon, double gamma,
                     int n_reps, uint64_t seed, env_sim_policy_fn policy, void *ctx, env_sim_value *out);

/* ---- dynamic programming -------------------------------------------------------------- */
/* Finite-horizon optimum over the reference-price state (see env_sim_dp.c for the grid). */
typedef struct env_sim_dp {
    int horizon, n_ref, n_levels, profit;
    int t0;                 /* the market's period of the DP's t = 0 (traffic season and trend) */
    double gamma, r_lo, r_hi;
    double *value;          /* [(horizon + 1) * n_ref], V_t(r_j) */
    int16_t *policy;        /* [horizon * n_ref], argmax level */
    env_sim_params prm;
    env_sim_grid grid;
} env_sim_dp;

/* Solve by backward induction on n_ref reference nodes (>= 2). Requires unlimited stock.
 * Competitors enter at their mean price (exact when comp_sigma = comp_promo_prob = 0). Caller
 * frees with env_sim_dp_free. Returns 0, ENG_EINVAL or ENG_ENOMEM. */
int env_sim_dp_solve(const env_sim_params *p, const env_sim_grid *g, int horizon, double gamma, int n_ref,
                     int profit, env_sim_dp **out);
/* The same from the market's period t0 on (expected traffic at t0 + t), with the reference
 * interval widened to hold ref_now (NaN: r_0 = ref0 p0 only), e.g. a market already running. */
int env_sim_dp_solve_from(const env_sim_params *p, const env_sim_grid *g, int t0, double ref_now, int horizon,
                          double gamma, int n_ref, int profit, env_sim_dp **out);
void env_sim_dp_free(env_sim_dp *dp);
/* Q_t(ref, price): the expected money of charging `price` (any price, not only a grid level) at
 * DP period t with competitors' mean cbar, plus gamma V_{t+1} of the next reference. */
double env_sim_dp_q(const env_sim_dp *dp, int t, double ref, double price, double cbar);
/* V_t(ref), linearly interpolated; t in [0, horizon]. */
double env_sim_dp_value(const env_sim_dp *dp, int t, double ref);
/* Policy: ctx is an env_sim_dp. One-step lookahead with V_{t+1} and the current competitor
 * prices (equal to the tabled policy when competitors are constant). */
int env_sim_policy_dp(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out);

/* Finite-horizon optimum HELD TO A CHANGE LIMIT (env_sim_dp.c): the state is the reference node and
 * the price level in force (the previous price); the actions are the levels within max_change
 * (a fraction, e.g. 0.15) of it: level[k'] in [prev (1 - max_change), prev (1 + max_change)],
 * with a 1e-8 tolerance for prices in whole cents.  Each period's revenue (profit) and the
 * reference as in env_sim_dp; competitors at their mean price in the backward induction. */
typedef struct env_sim_dpc {
    int horizon, n_ref, n_levels, profit;
    int t0;                 /* the market's period of t = 0 */
    double gamma, r_lo, r_hi, max_change;
    double *level;          /* [n_levels] the prices, ascending */
    int *k_lo, *k_hi;       /* [n_levels] the levels reachable from level k: k_lo[k] .. k_hi[k] */
    double *value;          /* [(horizon + 1) * n_levels * n_ref]: V_t(k, r_j), k the price in force */
    env_sim_params prm;
} env_sim_dpc;

/* Solve over the ascending price levels[n_levels] (copied), from the market's period t0 with the
 * reference interval widened to hold ref_now (NaN: none).  Requires unlimited stock.  Caller frees
 * *out with env_sim_dpc_free.  Returns 0, ENG_EINVAL or ENG_ENOMEM (then *out = NULL). */
int env_sim_dpc_solve(const env_sim_params *p, const double *levels, int n_levels, double max_change, int t0,
                      double ref_now, int horizon, double gamma, int n_ref, int profit, env_sim_dpc **out);
void env_sim_dpc_free(env_sim_dpc *dp);
/* The levels within the change limit of the price `prev` (any price, not only a level):
 * *k_lo .. *k_hi.  Returns 1, or 0 when no level is (then *k_lo > *k_hi). */
int env_sim_dpc_reach(const env_sim_dpc *dp, double prev, int *k_lo, int *k_hi);
/* V_t(k, ref), linearly interpolated in ref; t in [0, horizon]; NaN for a bad k. */
double env_sim_dpc_value(const env_sim_dpc *dp, int t, int k, double ref);
/* Q_t(ref, level k): the period's expected money at competitors' mean cbar plus gamma V_{t+1}. */
double env_sim_dpc_q(const env_sim_dpc *dp, int t, double ref, int k, double cbar);
/* The best level to charge at period t from the price in force `prev`, reference ref and
 * competitors' mean cbar (*q_out its Q, may be NULL).  Returns the level, or -1 when t is outside
 * the horizon or no level is within the change limit of prev. */
int env_sim_dpc_best(const env_sim_dpc *dp, int t, double ref, double prev, double cbar, double *q_out);

/* ---- histories for many products ------------------------------------------------------- */
typedef enum { ENV_SIM_PRESET_DEFAULT = 0, ENV_SIM_PRESET_DOMINICKS = 1 } env_sim_preset;

/* Fitted own-price elasticities (env_sim_fit_dominicks). */
#define ENV_SIM_DOM_BRANDS 11
typedef struct env_sim_fit {
    int n_brands;
    long n_rows;
    double elasticity[ENV_SIM_DOM_BRANDS];  /* within store-brand log-log slope per brand */
    double se[ENV_SIM_DOM_BRANDS];
    double mean_price[ENV_SIM_DOM_BRANDS];  /* dollars per package */
    double mean_units[ENV_SIM_DOM_BRANDS];  /* packages per store-week */
    double mean_margin[ENV_SIM_DOM_BRANDS]; /* profit percent */
    long n_obs[ENV_SIM_DOM_BRANDS];
    double pooled, pooled_se;               /* all brands, store-brand fixed effects */
} env_sim_fit;

/* Estimate elasticities from the Dominick's store x brand x week CSV (libcsv). Bad rows are an
 * ENG_EFORMAT error naming the file and line. Returns 0, ENG_EIO, ENG_EFORMAT or ENG_ENOMEM. */
int env_sim_fit_dominicks(const char *csv_path, env_sim_fit *out);

/* Draw product `i`'s true parameters from a preset (deterministic in seed, i). `fit` is
 * required by the Dominick's preset (NULL otherwise). Returns 0 or ENG_EINVAL. */
int env_sim_draw_params(env_sim_preset preset, const env_sim_fit *fit, int period_days, int32_t day0,
                        uint64_t seed, int i, env_sim_params *out);

/* Logged data that go with a simulated history. */
typedef struct env_sim_log {
    int n_products, n_periods;
    env_sim_grid grid;
    env_sim_params *params;   /* [n_products] true parameters */
    int16_t *level;           /* [P * T] chosen level */
    double *propensity;       /* [P * T] probability of the chosen level */
    double *probs;            /* [P * T * grid.n] full action distribution */
    double *ref;              /* [P * T] hidden reference price (for analysis) */
} env_sim_log;
void env_sim_log_free(env_sim_log *l);

/* ---- demand families of the backtest (env_sim_family.c) ---------------------------------- */
typedef enum {
    ENV_SIM_FAMILY_NONE = 0, /* the preset's draw as it is (log-log logit with a reference effect) */
    ENV_SIM_FAMILY_LOGIT,    /* logit conversion per visitor, linear in price, competitor effect */
    ENV_SIM_FAMILY_CE,       /* constant elasticity, competitor effect */
    ENV_SIM_FAMILY_REF,      /* the LOGIT family plus a reference-price effect with loss aversion */
    ENV_SIM_FAMILY_COUNT
} env_sim_family;

/* "preset", "logit", "ce", "ref"; NULL for a bad value. */
const char *env_sim_family_name(env_sim_family f);
/* Name -> family; 0 or ENG_EINVAL. */
int env_sim_family_parse(const char *s, env_sim_family *out);

/* Overwrite the demand of a drawn product with family f (own stream: seed, i, 5): no promotion
 * lift, a randomised history (log_uniform); LOGIT/REF: the list price p0 is mis-set, p0 = m p*
 * with m ~ U(misset_lo, misset_hi) and p* the revenue-per-visitor-maximising price at neutral
 * competitors and reference, conversion at p* ~ U(2%, 8%); REF keeps the drawn reference
 * effect, LOGIT and CE have none; CE: elasticity ~ -U(0.3, 2.5), conversion at p0 ~ U(1%, 8%).
 * Returns 0 or ENG_EINVAL (bad family or range). */
int env_sim_family_apply(env_sim_family f, double misset_lo, double misset_hi, uint64_t seed, int i, env_sim_params *p);

/* The truth: expected revenue per visitor at `price` given the reference and the competitors'
 * mean price (q(price) * price). */
double env_sim_rpv(const env_sim_params *p, double price, double ref, double cbar);
/* The one whole-cent search of the simulator's yardsticks: the price in [lo, hi] with the highest
 * f(price, ctx) among both ends and every whole cent inside (a stride of whole cents when the
 * interval holds more than max_cents > 0 of them); ties keep the lower price; non-finite values
 * never win.  *best_price, *best_value.  Returns 0 or ENG_EINVAL (empty or non-finite interval, or
 * no finite value; nothing written). */
int env_sim_cent_argmax(double lo, double hi, long max_cents, double (*f)(double price, void *ctx), void *ctx,
                        double *best_price, double *best_value);
/* The price in [lo, hi] with the highest env_sim_rpv (env_sim_cent_argmax, at most 20,000 cents
 * searched one by one); *best_price, *best_rpv.  Returns 0 or ENG_EINVAL (empty or non-finite
 * interval). */
int env_sim_best_price(const env_sim_params *p, double ref, double cbar, double lo, double hi, double *best_price,
                       double *best_rpv);

/* Options of env_sim_generate_ex. */
typedef struct env_sim_gen_opts {
    env_sim_preset preset;
    const env_sim_fit *fit;     /* the Dominick's preset's fit (NULL otherwise) */
    env_sim_family family;      /* NONE: the preset as it is */
    int period_days;            /* 1 or 7 */
    int32_t day0;               /* first day (days since 1970-01-01) */
    uint64_t seed;
    int n_levels;               /* logging grid: n_levels multipliers of p0 from level_lo to level_hi */
    double level_lo, level_hi;
    double misset_lo, misset_hi;/* list price / best price range of the families */
    double traffic_scale;       /* multiplies every product's traffic (1: as drawn) */
    /* exogenous promotions (env_sim_params.promo_cal_*): share of calendar promotion periods
     * (0: none, the default), the lift range U(lo, hi) (own stream seed, i, 6), the promotion
     * levels (mult <= promo_hi) and the normal ones (mult >= normal_lo) */
    double promo_rate, promo_lift_lo, promo_lift_hi, promo_hi, normal_lo;
} env_sim_gen_opts;
/* The defaults: default preset, no family, daily from 2024-01-01, seed 1, grid 13 x 0.70..1.30,
 * mis-set 0.70..1.35, traffic as drawn. */
env_sim_gen_opts env_sim_gen_opts_default(void);
/* env_sim_generate with options; same outputs and errors. */
int env_sim_generate_ex(const env_sim_gen_opts *o, int n_products, int n_periods, db_history **hist_out,
                        env_sim_log **log_out);

/* Simulate n_products x n_periods under the logging policy. *hist_out (db_history_free) holds
 * prices, units, revenue, traffic, promo and competitor prices; *log_out (env_sim_log_free)
 * the propensities and true parameters. Returns 0, ENG_EINVAL or ENG_ENOMEM. */
int env_sim_generate(env_sim_preset preset, const env_sim_fit *fit, int n_products, int n_periods,
                     int period_days, int32_t day0, uint64_t seed, db_history **hist_out, env_sim_log **log_out);

/* Write sim_propensities and sim_params (created if missing) for the products of h, replacing
 * their earlier rows, in one transaction; every value goes through COPY.  `preset` and `seed`
 * are recorded.  Returns 0 or ENG_EDB (rolled back, message from the server) / ENG_ENOMEM. */
int env_sim_store_side(PGconn *c, const db_history *h, const env_sim_log *lg, const char *preset, uint64_t seed);

#endif
