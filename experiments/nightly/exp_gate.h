/* exp_gate.h - the nightly's deploy gate (docs/nightly.md, "Decide"; docs/backtest.md, "Gate
 * trade-off"): which candidate price, if any, replaces the incumbent.
 *
 * Two kinds of evidence:
 *   - OPE: the comparison's empirical-Bayes shrunk paired uplift of each agent over the
 *     historical policy (exp_results.h uplift_shrunk);
 *   - the product's own demand model (exp_gate_fit; the one model of features/feat_demand.h that
 *     the agents' model-based transitions use too): conversion per visitor (traffic known) or
 *     units per period, on the price (log or linear, the better fit), with the promotion flag,
 *     the previous period's price and the competitors' mean price as STATE
 *     (covariates, never credited to the price).  The uplift of a candidate price c over the
 *     incumbent i in a normal period at the current competitor prices is then
 *         rel(c) = (c / i) E[units | c] / E[units | i] - 1   (revenue; profit uses the margins)
 *     and its interval comes from the price slope's robust (sandwich) standard error.
 *     Promotion rows inform the slope only through the price variation left after the
 *     promotion's own lift, so a price seen only in promotion weeks is not credited with it.
 *
 * exp_gate_pick: per candidate agent (fixed, linucb, dqn, ddpg) and per step toward its price
 * (the whole move, then 3/4, 1/2, 1/4 of it: a smaller step with a confident sign beats a big
 * uncertain one), the guarded price is valued; the candidate with the highest lower bound is
 * chosen when that bound is above 0.  Mode OPE is the rule of before (shrunk OPE uplift only,
 * whole moves); MODEL uses the demand model's bound and requires the price to lie inside the
 * range of prices the product charged in normal periods; BOTH also requires the agent's OPE
 * shrunk uplift to be positive (the two kinds of evidence agree on the sign).
 * The price returned is always the guarded one (env_guard_apply): never outside the guardrails.
 */
#ifndef EXP_GATE_H
#define EXP_GATE_H

#include "db_history.h"
#include "env_action.h"
#include "exp_compare.h"
#include "feat_demand.h"

typedef enum { EXP_GATE_OPE = 0, EXP_GATE_MODEL = 1, EXP_GATE_BOTH = 2, EXP_GATE_N_MODES } exp_gate_mode;

/* "ope", "model", "both"; NULL for a bad value. */
const char *exp_gate_mode_name(int mode);

typedef struct exp_gate_cfg {
    int mode;           /* exp_gate_mode */
    double level;       /* two-sided level of the interval whose lower bound must be above 0 */
    double ope_alpha;   /* the comparison's ope.alpha: at level 1 - alpha the OPE rule uses the
                           interval's own bound (as before), else estimate - z sd */
    int steps;          /* fractions k / steps of each move, k = steps..1 (MODEL/BOTH); 1 = whole */
    double select_level;/* among the eligible moves of the model gate, the one with the highest
                           lower bound at this level (0: the highest estimate; < 0: the gate's
                           own level) */
    double support_widen; /* the model gate's moves stay inside the normal-period price range
                           widened by this share (0: the range; < 0: no support limit) */
    int extend;         /* 1: also k / 8 of the way to the guardrails' edge in each agent's direction */
    int standing;       /* 1: value prices as standing prices (exp_gate_fit_ex); 0: one period */
    int model_dir;      /* 1 (with extend): an agent whose price is the incumbent's gets the
                           extension steps in the demand model's direction (the side where a 1%
                           move gains under the model); its reason says |extended.  2: also an
                           agent whose price points the other way (its band and history pull it
                           back): the extension steps reach the guardrails' edge, never past
                           them, and the model's interval decides.  3: as 2, only when the
                           incumbent is within one grid step of the band's edge on the model's
                           side, or beyond it (the agents cannot point further that way) */
    const feat_demand_prior *prior; /* the night's pooled slope prior (NULL: the weak one), for refits */
    int lag_pooled;     /* the night's products share a positive lag coefficient (exp_nightly_lag_pool) */
    int cut_standing;   /* 4: as 1, and when lag_pooled the horizon fit skips its lag test (every
                           product whose lag column entered is valued over the horizon: its rises
                           too; exp_gate_fit_lagtest, called by the nightly's decision).
                           3: as 2 when lag_pooled, else as 1.
                           2 (with the horizon, standing >= 2): every product's cut is valued as a
                           standing price under the standing fit (exp_gate_cut_fit), also when the
                           horizon's lag test failed (the fit is then the one-step one, whose cut
                           keeps the whole one-night lift), its interval the standing slope's.
                           1 (with the horizon, standing >= 2): a cut is valued as a standing price,
                           without the transitional lift of a price below the customers'
                           reference (which loss-averse customers give less of than a symmetric
                           fit says); rises keep the horizon's valuation.  0: every move over the
                           horizon */
    int plan;           /* 0: off; 1: the planning candidate (exp_gate_plan_solve; needs the horizon
                           fit, standing >= 2, whose lag is significant) is deployed when the lower
                           bound of its plan's uplift over holding the incumbent is above min_gain,
                           else the agents' moves as before; 2: as 1, and when the plan's first
                           step is the incumbent the agents' moves are not tried (the plan holds) */
    int plan_nights;    /* the plan's horizon in nights (>= 1) */
    double plan_gamma;  /* its discount per night, in (0, 1] */
    int plan_paths;     /* 0: any path (the DP); 1: monotone paths toward a target, then held */
    int plan_model;     /* 0: the gate's fit; 1: the kinked reference model (exp_gate_plan_kinked) */
    double min_gain;    /* the model gate deploys a move only when the lower bound of its uplift
                           is above this share of the incumbent's rate (0: above 0) */
    int reward_kind;    /* env_reward_kind: profit kinds value margins */
    env_guard_cfg guard;
    env_grid grid;      /* the agents' price band (env_guard_bounds_band) */
} exp_gate_cfg;

/* Product p's demand fit (exp_gate_fit). */
typedef struct exp_gate_fit {
    int ok;             /* 1: slope and base are usable */
    int n;              /* rows used */
    int n_cols;         /* regression columns used */
    double slope;       /* d log E[units] / d (price / incumbent) at the incumbent */
    double slope_se;    /* its robust standard error (the larger of sandwich and quasi-Poisson) */
    double base;        /* fitted money per period at the incumbent in a normal period (revenue,
                           or profit for the profit kinds with a known unit cost) */
    double cost;        /* unit cost used for margins (NaN: revenue) */
    double sup_lo, sup_hi; /* lowest / highest price charged in a normal (non-promotion) period */
    feat_demand dm;     /* the product's demand model (feat_demand.h), price scale = incumbent */
    feat_demand_ctx now;/* the next period: latest competitor prices, the incumbent as previous price */
    double sfac;        /* slope = dm's price coefficient x sfac (1 - conversion at the incumbent) */
    int standing;       /* 1: a price is valued with the previous-price state at itself (a standing
                           price; exp_gate_fit_ex): slope = price + lag coefficients */
    double lambda;      /* standing: memory of the smoothed past price in the lag column (0: the
                           previous period's price) */
    int horizon;        /* >= 2: a price is valued over this many nights from now (exp_gate_fit_ex
                           with standing = horizon): the lag state starts at the smoothed past
                           price ema_now and moves toward the price night by night; 0: not */
    double ema_now;     /* horizon: the smoothed past price before the next period (memory lambda) */
    int cut_standing;   /* horizon: 1 values a price below the incumbent as a standing price (the
                           reference settled at it: no credit for the lift of a price below the
                           customers' reference), a rise over the horizon (exp_gate_cfg cut_standing) */
    int has_cut;        /* cut_standing 2 (exp_gate_cut_fit): 1 when cut_dm is usable */
    feat_demand cut_dm; /* the standing fit (exp_gate_fit_ex, standing 1) a cut is valued with */
    double cut_dse;     /* its standing slope's robust standard error, in price-coefficient units */
    int kinked;         /* 1: dm is the planner's kinked reference model (exp_gate_plan_kinked):
                           lag = log(smoothed past price / price), promo = max(log(price /
                           smoothed past price), 0); only exp_gate_plan_solve reads it */
} exp_gate_fit;

/* Fit product p's demand model over its present rows of h (see the top) under the price
 * slope's prior `prior` (the night's pooled prior, feat_demand.h; NULL or n == 0: the weak
 * N(-1, 1)).  *f filled; f->ok = 0 when too few rows (< 8), no price variation, or the fit did
 * not converge (not an error).  Returns 0 or ENG_ENOMEM. */
int exp_gate_fit_product(const db_history *h, int p, double incumbent, int reward_kind, const feat_demand_prior *prior,
                         exp_gate_fit *f);

/* exp_gate_fit_product without the lag column (the previous period's price): the model of a
 * market without carry-over, whose slope then also learns from the level of a price held for
 * many periods (with the lag column in, a held price informs the sum of the two coefficients,
 * not the slope).  Same ownership and returns as exp_gate_fit_product. */
int exp_gate_fit_product_nolag(const db_history *h, int p, double incumbent, int reward_kind,
                               const feat_demand_prior *prior, exp_gate_fit *f);

/* exp_gate_fit_product, and with standing = 1 the standing-price valuation
 * (experiments/nightly/exp_gate_standing.c): the lag state is the log of an exponentially
 * smoothed past price (memory 0, 0.5, 0.7 or 0.85, the highest likelihood) and every price is
 * valued as if it had been charged long enough for that state to settle at it (f->standing = 1;
 * slope and slope_se of the price and lag coefficients together).  Returns 0 or ENG_ENOMEM. */
/* standing >= 2 is a HORIZON of that many nights instead: the same fit, and a price c is valued by
 * its mean rate over nights 0..H-1 of charging it, the lag state on night h at the smoothed price
 * EMA_h (EMA_0 = the history's smoothed past price before the next period, EMA_{h+1} = lambda
 * EMA_h + (1 - lambda) c): the carry-over the lag column implies over the nights, between the
 * one-step valuation (H = 1) and the standing one (H large).  slope and slope_se are those of the
 * horizon's mean: the price coefficient plus w times the lag coefficient, w = (1/H) sum_h
 * (1 - lambda^h) the mean share of the way the smoothed price has moved.  When the lag column
 * did not enter or its coefficient is within 2 robust standard errors of 0 (no carry-over to
 * value) the fit is the one-step one (f->standing = f->horizon = 0). */
int exp_gate_fit_ex(const db_history *h, int p, double incumbent, int reward_kind, int standing,
                    const feat_demand_prior *prior, exp_gate_fit *f);

/* exp_gate_fit_ex with the horizon's lag test on (lag_test 1, exp_gate_fit_ex) or off (0: the
 * horizon whenever the lag column entered, e.g. when the night's products pool to a reference
 * effect: gate_cut_standing 4).  Returns 0 or ENG_ENOMEM. */
int exp_gate_fit_lagtest(const db_history *h, int p, double incumbent, int reward_kind, int standing, int lag_test,
                         const feat_demand_prior *prior, exp_gate_fit *f);

/* Relative uplift of price c over the incumbent under fit f, at the slope b + k slope_se
 * (k = 0: the estimate; k = -z / +z: the bound of the move's direction).  NaN when f is not ok
 * or a margin is not positive. */
double exp_gate_rel(const exp_gate_fit *f, double incumbent, double c, double k);

/* The planning candidate (experiments/nightly/exp_gate_plan.c): a dynamic programme over fit f's
 * demand model (the horizon fit: f->lambda, f->ema_now) for `nights` nights with discount gamma,
 * state (smoothed past price, price in force), actions the levels of a log grid anchored at the
 * incumbent (6 steps per change limit) within the change limit max_change (a share, e.g. 0.15) of
 * the price in force and inside [lo, hi] (bounds, margin floor, support); after the last night the
 * price in force is held for ever (its discounted value the terminal one; none when gamma is 1).  out->price = the plan's
 * first price (the incumbent when the plan holds first), rel / rel_lo = the estimate and the lower
 * bound (z robust standard errors of the price and lag coefficients, delta method) of the plan's
 * discounted money over holding the incumbent as a share of it; paths 1: instead of the DP, the
 * best MONOTONE path (toward one level as fast as the limit allows, then held: no cycles, which a
 * fitted model without loss aversion may over-value); out->ok = 0 when f is not usable
 * or the arguments are bad (not an error).  Allocates and frees its own tables.  Returns 0 or
 * ENG_ENOMEM. */
typedef struct exp_gate_plan {
    int ok;
    int nights;
    double price;       /* the first step */
    double rel, rel_sd, rel_lo;
    int n_up, n_down;   /* nights of the plan above / below the incumbent */
} exp_gate_plan;

int exp_gate_plan_solve(const exp_gate_fit *f, double inc, double lo, double hi, double max_change, int nights,
                        double gamma, int paths, double z, exp_gate_plan *out);

/* The planner's KINKED reference model of product p (plan_model 1): fit's model refitted at its
 * memory lambda with lag = log(EMA / price) and the promo column max(log(price / EMA), 0), so that
 * a price above the customers' smoothed reference may cost more than a price below it gains
 * (loss aversion).  *out = *fit with that model and out->kinked = 1; *out = *fit unchanged when
 * fit has no horizon, the product has promotion periods (the column is taken) or the refit failed
 * or dropped a column.  Returns 0 or ENG_ENOMEM. */
int exp_gate_plan_kinked(const db_history *h, int p, const exp_gate_fit *fit, exp_gate_fit *out);

/* cut_standing 2: f->cut_dm = product p's standing fit (exp_gate_fit_ex with standing 1, prior
 * may be NULL), f->cut_dse its slope's robust standard error in price-coefficient units,
 * f->has_cut = 1 and f->cut_standing = 2 when that fit is ok; else f->has_cut = 0 (the cut is
 * valued by f itself).  Returns 0 or ENG_ENOMEM. */
int exp_gate_cut_fit(const db_history *h, int p, double incumbent, int reward_kind, const feat_demand_prior *prior,
                     exp_gate_fit *f);

/* The gate's choice for one product. */
typedef struct exp_gate_out {
    int deploy;         /* 1: price replaces the incumbent */
    exp_agent agent;    /* the candidate behind it */
    double frac;        /* share of the agent's move taken (1 = whole) */
    double price;       /* guarded price (the incumbent, guarded, when not deployed) */
    uint32_t guard;     /* its ENV_GR_* bits */
    int by_model;       /* 1: uplift / lo / hi are the demand model's (money per period) */
    int planned;        /* 1: the price is the planning candidate's first step (cfg plan); 2: the
                           plan held and overruled the agents' moves (plan 2) */
    double uplift, lo, hi; /* deployed: OPE shrunk uplift (reward units), or the model's uplift
                              in money per period (by_model); NaN when held */
    int n_usable, n_unusable, n_learn_ok; /* candidates with / without usable evidence, learning
                                             agents not failed (for the hold reason) */
} exp_gate_out;

/* The planning candidate's part of exp_gate_pick (cfg->plan > 0): o holds the agents' choice and
 * is replaced by the plan's first step when its bound clears cfg->min_gain (o->planned = 1), or
 * held (plan 2, the plan's first step the incumbent: o->planned = 2).  Nothing changes when the
 * fit has no horizon (no significant carry-over).  Returns 0, ENG_EINVAL (guardrails) or
 * ENG_ENOMEM. */
int exp_gate_plan_pick(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr,
                       const exp_gate_fit *fit, double z, exp_gate_out *o);

/* Choose for product pr (history h) under cfg; fit may be NULL in mode OPE.  Returns 0, or
 * ENG_EINVAL from the guardrails (bad bounds or configuration). */
int exp_gate_pick(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr, const exp_gate_fit *fit,
                  exp_gate_out *out);

#endif
