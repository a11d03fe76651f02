/* feat_agent.h - agent states that are comparable across products, for models shared by
 * every product (one DQN / DDPG network trained on all products' transitions).
 *
 * The feat-v1 state (feat.h) holds prices, units, revenue and traffic in each product's own
 * units; one network over all products needs them on one scale.  The agent state of product
 * p at period t is built from feat_state(p, t) and a few per-product statistics of its
 * training window (feat_agent_prod, fitted by feat_agent_prod_fit):
 *   price      log(incumbent / ref), log(ma3 / ref), log(ma12 / ref), price_missing
 *              (ref = the reference price of the price grid, env_action.h);
 *   volume     log1p(units_1), log1p(units_7 / 7), log1p(traffic_1), log1p(traffic_7 / 7),
 *              each minus the product's training mean (so 0 = a usual day for the product);
 *   rate       revenue per visitor of t-1 and of the last 7 periods relative to the product's
 *              mean (value / mean - 1; revenue per period when traffic is unknown);
 *   market     log(incumbent / competitor mean), log(incumbent / competitor min),
 *              comp_missing;
 *   context    promo_prev, the sales/traffic missing fractions, the calendar (weekday and
 *              week-of-year sin/cos) - state, never part of what a price is credited with;
 *   product    two descriptors of the product's own price response in its training rows:
 *              slope and curvature of the relative revenue per visitor of period t on
 *              log(price_t / ref), ridge-shrunk towards 0 (so a product with little price
 *              variation looks like an average product); and two from the product's demand
 *              model (feat_demand.h: conversion per visitor with traffic, units per period
 *              without, the price in the better-fitting form, the competitors' prices, the
 *              previous price and the promotion flag as state): its relative revenue
 *              per visitor 10% below and 10% above the product's mean logged price.  The model itself values
 *              any price (feat_agent_model_rate): the comparison's model-based transitions.
 *              Context descriptors (pp->desc, compare.agent_desc; docs/compare.md "Context
 *              descriptors (q12desc)"): desc 1 replaces the last two by the model's relative rate
 *              10% below and above the state's INCUMBENT in the state's own context (the last
 *              period's competitors' mean price, the smoothed past price of the model's memory),
 *              10 (rate(inc e^x) / rate(inc) - 1) for x = -0.1, +0.1; desc 2 puts that at
 *              x = -0.15, -0.05, +0.05, +0.15 into the last four slots (replacing slope and
 *              curvature as well).  They are computed from the state's own price features, so a
 *              carried state (feat_agent_state_carry) gets the descriptors of its new incumbent.
 *   best       (pp->best, compare.agent_best; docs/compare.md "The model's best price as a state
 *              feature (q12best)"): two more slots after those 24, 10 log(b / inc) and
 *              10 (rate(b) / rate(inc) - 1), b the product's demand model's own best price for the
 *              state: the price of the highest one-night rate (margin rate under a profit
 *              reward, pp->bcost) in the state's context (as the
 *              context descriptors: the competitors' mean price, the smoothed past price) inside
 *              the agents' price range (pp->blo, pp->bhi: their band and support, the product's
 *              bounds) and the guard's change limit around the incumbent (pp->bchg).  A planning
 *              hint the networks may follow or not: they still learn from the rewards.  Read
 *              from the state's own price features, so a carried state gets its new incumbent's.
 * Every value is finite and clipped to [-FEAT_AGENT_CLIP, FEAT_AGENT_CLIP].
 */
#ifndef FEAT_AGENT_H
#define FEAT_AGENT_H

#include <stddef.h>

#include "feat.h"
#include "feat_demand.h"

#define FEAT_AGENT_N 24     /* the state's width without the best-price slots */
#define FEAT_AGENT_BEST_N 2 /* the best-price slots (pp->best) */
#define FEAT_AGENT_NMAX (FEAT_AGENT_N + FEAT_AGENT_BEST_N)
#define FEAT_AGENT_CLIP 10.0f

/* descriptor modes (feat_agent_prod.desc; see above) */
#define FEAT_AGENT_DESC_MEAN 0 /* slots 22-23: dlo, dhi at the mean logged price (before q12desc) */
#define FEAT_AGENT_DESC_CTX 1  /* slots 22-23: the model's relative rate at the incumbent e^-+0.1, in context */
#define FEAT_AGENT_DESC_CTX4 2 /* slots 20-23: ... at the incumbent e^{-0.15, -0.05, +0.05, +0.15} */
#define FEAT_AGENT_DESC_MAX 2

typedef struct feat_agent_prod {
    double ref;            /* reference price (> 0) */
    double lu1, lu7;       /* training means of log1p(units_1), log1p(units_7 / 7) */
    double lv1, lv7;       /* ... of log1p(traffic_1), log1p(traffic_7 / 7) */
    double rate;           /* mean revenue per visitor of a period (per period without traffic) */
    double slope, curv;    /* price-response descriptors (see above) */
    double dlo, dhi;       /* demand-model descriptors (see above) */
    /* the fitted demand model itself (feat_demand.h; feat_agent_model_rate): mok = 1 when
     * fitted, mlogit = 1 conversion per visitor (traffic), 0 units per period */
    feat_demand dm;
    double mcen;           /* the mean logged price (descriptors' centre) */
    int mlogit, mok;
    double lam;            /* memory of the model's lag column: 0 the previous price, else the
                              smoothed past price (feat_agent_prod_fit_ex, memory 1) */
    long n;                /* training rows used */
    int desc;              /* descriptor mode FEAT_AGENT_DESC_* (the fit sets 0; the caller may set
                              it after the fit: the states read it) */
    int best;              /* 1: the states carry the best-price slots (feat_agent_width 26); 0
                              (the fit's): 24 slots.  Set by the caller after the fit, with: */
    double blo, bhi;       /* the price range the best price is sought in (NaN / <= 0: none; the
                              incumbent's +- bchg alone, or +-25% of the incumbent without it) */
    double bchg;           /* the guard's change limit, a share of the incumbent (NaN: none) */
    double bcost;          /* > 0: the unit cost; the best price maximises the model's margin rate
                              rate x (1 - bcost / price) (a profit reward) instead of its rate
                              (NaN / <= 0: revenue) */
} feat_agent_prod;

/* The width of pp's states: FEAT_AGENT_N, plus FEAT_AGENT_BEST_N with pp->best. */
int feat_agent_width(const feat_agent_prod *pp);

/* The demand model's best price in the context of agent state st (its price and market slots;
 * as the best-price slots read it): *best the price of the highest one-night model rate inside
 * pp's range and change limit around the state's incumbent (a grid of 13 log-spaced prices,
 * refined by golden section between the best one's neighbours to 1e-6 in log price), *gain its rate over the
 * incumbent's minus 1.  With pp->bcost > 0 "rate" is the margin rate, rate x (1 - bcost / price)
 * (a profit reward's objective).  Returns 0, or -1 (*best, *gain NaN) without a model, a known
 * incumbent or a positive (margin) rate there.  No allocation. */
int feat_agent_best_price(const feat_agent_prod *pp, const float *st, double *best, double *gain);

/* The demand model's one-night rate at the incumbent of agent state st, in the state's own
 * context (as feat_agent_best_price reads it): a function of the state alone, so an agent's
 * reward may be measured from it without changing which price is best.  NaN without a model, a
 * known incumbent or a finite rate.  No allocation. */
double feat_agent_state_rate(const feat_agent_prod *pp, const float *st);

/* Fit product statistics from n training rows: raw (unnormalised) feat states s [n][FEAT_N]
 * of the periods priced, the next periods' raw states s2 [n][FEAT_N] (their revenue_1 /
 * traffic_1 are the priced period's outcome) and the prices charged, price [n].  ref > 0 is
 * the product's reference price; ridge (>= 0) shrinks the descriptors (units of rows).
 * n = 0 gives a neutral product (means 0, rate 1, descriptors 0).  prior: the demand model's
 * price-slope prior (the night's pooled one, feat_demand.h; NULL: the weak N(-1, 1)).
 * Returns 0 or ENG_EINVAL. */
int feat_agent_prod_fit(feat_agent_prod *pp, const float *s, const float *s2, const float *price, size_t n,
                        double ref, double ridge, const feat_demand_prior *prior);

/* feat_agent_prod_fit with the demand model's lag column of a memory: memory 0 the previous
 * price (feat_agent_prod_fit); 1 the memory lam in {0, 0.5, 0.7, 0.85} with the highest
 * likelihood, the lag being the log of an exponential smoothing of the past prices built from
 * the incumbent and its 3- and 12-period moving averages (a reference price customers anchor
 * on; pp->lam).  Returns 0 or ENG_EINVAL / ENG_ENOMEM. */
int feat_agent_prod_fit_ex(feat_agent_prod *pp, const float *s, const float *s2, const float *price, size_t n,
                           double ref, double ridge, const feat_demand_prior *prior, int memory);

/* Agent state out [feat_agent_width(pp)] of one raw feat state raw [FEAT_N]. */
void feat_agent_state(const float *raw, const feat_agent_prod *pp, float *out);

/* The agent state of the next period had the priced period been charged `price` instead of the
 * logged price `logged` (the carry-over of a model-based transition; docs/compare.md, "Learning
 * from a model"): next [FEAT_AGENT_N] is the logged next state (feat_agent_state of the priced
 * period's successor), rate the rate the model gives `price` (revenue per visitor with traffic,
 * per period without; NaN: the rate features are left as logged).  In out [FEAT_AGENT_N] (may
 * equal next): the incumbent price feature is `price`, the 3- and 12-period moving averages move
 * by (price - logged) / 3 and / 12, the competitor ratios by price / logged, the last period's
 * rate is `rate` (the 7-period one moves by a seventh of the change), the units sold follow
 * (rate x traffic / price with traffic, rate / price without); the rest is copied.  price ==
 * logged and rate == the logged rate give next back (up to rounding).  The context descriptors and
 * the best-price slots are those of the carried prices.  next and out hold feat_agent_width(pp)
 * values.  No allocation; bad prices (<= 0 or NaN) copy next unchanged. */
void feat_agent_state_carry(const float *next, const feat_agent_prod *pp, double logged, double price, double rate,
                            float *out);

/* The fitted demand model's expected rate at `price` (> 0): revenue per visitor
 * (price x conversion) with traffic, revenue per period without; *se (may be NULL) gets the
 * delta-method standard error of its change from the model's centre (the mean logged price):
 * the extrapolation uncertainty from the slope's posterior variance.  Returns NaN (and *se NaN)
 * when no model was fitted (too few rows, no sales) or price <= 0. */
double feat_agent_model_rate(const feat_agent_prod *pp, double price, double *se);

/* The demand model's context of one transition: the competitors' prices of the priced period
 * (next raw state raw2) and the previous price (raw state raw; the smoothed past price of memory
 * pp->lam when that is > 0); NULL or unknown -> NaN (the rows' means). */
feat_demand_ctx feat_agent_model_ctx(const feat_agent_prod *pp, const float *raw, const float *raw2);

/* feat_agent_model_rate for a normal (non-promotion) period in context ctx (NULL: the rows'
 * means). */
double feat_agent_model_rate_at(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, double *se);

/* The model's mean rate over h nights (h >= 1) of `price` held from the context ctx on: night 0
 * in ctx, each later night with the lag column's smoothed past price moved toward the price by
 * the model's memory (ema' = lam ema + (1 - lam) price; lam = pp->lam, 0: the previous price,
 * i.e. the price itself from night 1 on).  h = 1, a model without a lag column, a lag
 * coefficient within 2 robust standard errors of 0 (no carry-over to value, as the gate's
 * horizon) or an unknown ctx->lag give feat_agent_model_rate_at.  *se (may be NULL): night 0's.  NaN as
 * feat_agent_model_rate_at. */
double feat_agent_model_rate_held(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, int h, double *se);

/* The model's value of `price` under the cut-standing rule (compare.dyna_cut_standing; the
 * agents' twin of the gate's nightly.gate_cut_standing 1): where the product's model shows
 * carry-over (as feat_agent_model_rate_held), a price below the smoothed past price of ctx is
 * valued at its standing rate (the smoothed past price at the price itself: no credit for the
 * transitional lift of a price below the customers' reference), a price at or above it as
 * feat_agent_model_rate_held over h nights (its transitional loss counted; h = 1: the first
 * night's).  No carry-over, or an unknown ctx->lag: feat_agent_model_rate_at, the one-step value.
 * *se (may be NULL): the valued context's.  NaN as feat_agent_model_rate_at. */
double feat_agent_model_rate_cut(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, int h, double *se);

/* Feature names (static), for logs and tests. */
const char *feat_agent_name(int i);

#endif
