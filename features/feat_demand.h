/* feat_demand.h - ONE per-product demand model, shared by the agents' model-based transitions
 * (feat_agent.h), the nightly's deploy gate (exp_gate.h) and logged exploration
 * (exp_nightly_explore.c).
 *
 * A generalised linear model of the units sold in a period:
 *   with traffic:    units ~ Binomial(traffic, q), logit(q) = eta   (conversion per visitor)
 *   without traffic: units ~ Poisson(exp(eta))                      (units per period)
 *   eta = b0 + b1 (g(price / ref) - xc) + bc comp + bl lag + bp promo
 * with g = the identity (form 1) or log (form 0), the log form only when its likelihood is clearly
 * higher (by 2 log-units: the forms are nearly collinear over a logged range, their optima are not);
 * comp = log(competitors' mean price / ref), lag = log(previous period's price / ref) (reference
 * price effects), promo = the period's promotion flag.  The state columns are STATE: they are
 * never credited to the price, and a price is valued for a NORMAL period (promo = 0) at a given
 * context (feat_demand_ctx: the current competitor prices, the incumbent as previous price).  A
 * column enters only when it varies (and is known on at least half of the rows; missing values
 * take the column's mean).  No time trend: extrapolated to the next period it cost the logit
 * family's model 11 points of captured uplift in the backtest (docs/compare.md).
 * Fitted by Newton steps with a weak N(-1, 1) prior on the price slope b1 (a downward-sloping
 * demand; it also values a product without price variation), or the night's pooled prior
 * (feat_demand_fit_prior, feat_demand_pool_*: empirical Bayes over the night's products; with
 * its nonparametric form, a fit under the weak prior first, then one under the product's
 * matched Gaussian prior, feat_demand_np_match), and a tiny ridge on the others;
 * LAPACK's Cholesky (dposv) solves each step.  Two covariances: the posterior (inverse Hessian)
 * and a robust one (per coefficient the larger of the sandwich and the dispersion-scaled
 * posterior) for the gate's intervals.
 */
#ifndef FEAT_DEMAND_H
#define FEAT_DEMAND_H

#include <stddef.h>

#include "db_history.h"
#include "eng_xsum.h"

#define FEAT_DEMAND_K 6      /* columns: 1, price, comp, lag, promo, loss (the asymmetric reference) */
#define FEAT_DEMAND_MIN_ROWS 8

/* Column indices in feat_demand.beta (a column not used has beta 0). */
enum { FEAT_DEMAND_C1 = 0, FEAT_DEMAND_PRICE, FEAT_DEMAND_COMP, FEAT_DEMAND_LAG, FEAT_DEMAND_PROMO, FEAT_DEMAND_LOSS };

/* The asymmetric (gain / loss) reference column (compare.demand_asym; docs/backtest.md, "Closed loop: an
 * asymmetric reference column ... (q13asym)").  With the lag column in the fit, the
 * column loss = max(log(price / lagged price), 0) (the lagged price being the row's lag column:
 * the previous or the smoothed past price) is tried as a sixth column: eta gains
 * bl log(lag / ref) + bk loss.  Writing log(lag / p) = gain - loss (gain = max(log(lag / p), 0)),
 * this is a gain coefficient bl and a loss coefficient bl - bk on the customers' reference
 * (feat_demand_gain_loss), the symmetric lag term when bk = 0.  It enters only when the
 * log-likelihood rises by FEAT_DEMAND_ASYM_MARGIN (a likelihood-ratio test of one degree of freedom
 * at ~5%), and loss must be positive on FEAT_DEMAND_ASYM_MIN rows and zero on as many.  At a
 * standing price (lag = price) loss is 0, so the standing slope is still price + lag.
 * feat_demand_rate computes loss from the price and ctx->lag, so every valuation that moves the
 * smoothed price night by night applies gain and loss. */
#define FEAT_DEMAND_ASYM_MARGIN 2.0
#define FEAT_DEMAND_ASYM_MIN 4

/* The process's setting for the fits that do not say (feat_demand_fit, feat_demand_fit_prior):
 * 1 try the asymmetric column, 0 not (the symmetric model of before), 2 always take it when it
 * varies (no likelihood-ratio test: the pooling pass of feat_demand_ref_pool).  Set from
 * compare.demand_asym by exp_nightly_run and exp_compare_run for their run (each puts the value
 * it found back when it returns); 0 otherwise.  Not thread-safe to change while fits run (no
 * demand fit runs in a thread).  Known limit with it on: the gate's and exploration's intervals
 * use the price (and lag) columns' variance only, not the loss column's (docs/backtest.md,
 * q13asym). */
void feat_demand_set_asym(int on);
int feat_demand_asym(void);

/* One observed period: price charged (> 0), units (>= 0), traffic (NaN / <= 0: unknown), comp,
 * lag (NaN: unknown), promo (0/1). */
typedef struct feat_demand_row {
    double price, units, traffic, comp, lag, promo;
} feat_demand_row;

/* The context a price is valued in: comp, lag (NaN: the column's mean); promo is 0. */
typedef struct feat_demand_ctx {
    double comp, lag;
} feat_demand_ctx;

typedef struct feat_demand {
    int ok;                /* 1: fitted */
    int logit;             /* 1: conversion per visitor (traffic known), 0: units per period */
    int form;              /* 0: g = log, 1: g = identity */
    int n;                 /* rows used */
    unsigned used;         /* bit j: column j entered the fit */
    double ref, xc;        /* price scale and the centre of g(price / ref) */
    double mean[FEAT_DEMAND_K];            /* column means (missing values, ctx NaN) */
    double beta[FEAT_DEMAND_K];
    double cov[FEAT_DEMAND_K * FEAT_DEMAND_K];  /* posterior covariance */
    double rcov[FEAT_DEMAND_K * FEAT_DEMAND_K]; /* robust covariance */
    double traffic_mean;   /* mean traffic of the rows (1 without traffic) */
    double ll;             /* log-likelihood of the chosen form */
    double prior_mean, prior_prec; /* the price slope's prior as used, in b1 units of the form */
    double ref_prior_mean[2], ref_prior_prec[2]; /* the lag and loss columns' priors as used */
    double ll_sym;         /* log-likelihood of the symmetric model (= ll unless the loss column entered) */
} feat_demand;

/* Grid of the slope's nonparametric prior (feat_demand_prior.np_x): FEAT_DEMAND_NP_CORE points
 * over the normal prior's mean +- max(5 sd, 1), and up to FEAT_DEMAND_NP_TAIL more on each side
 * out to the farthest product clearly beyond (feat_demand_pool_np); FEAT_DEMAND_NP_G at most. */
#define FEAT_DEMAND_NP_CORE 81
#define FEAT_DEMAND_NP_TAIL 10
#define FEAT_DEMAND_NP_G (FEAT_DEMAND_NP_CORE + 2 * FEAT_DEMAND_NP_TAIL)

/* A prior on the price slope in dimensionless units, e = b1 xc for the identity form (the
 * index's elasticity at the mean logged price) and e = b1 for the log form: e ~ N(mean, sd^2),
 * i.e. b1 ~ N(mean / xc, (sd / xc)^2) for the identity form.  n = 0 (or a NULL prior): the
 * weak N(-1, 1) on b1 of before.  Built by feat_demand_pool_prior from the night's products. */
typedef struct feat_demand_prior {
    double mean, sd;
    int n;                 /* products pooled; 0: none (the weak prior) */
    /* the reference columns' pooled prior (feat_demand_ref_pool; compare.demand_asym 2): the lag
       coefficient bl ~ N(ref_mean[0], ref_sd[0]^2) and the loss column's bk ~ N(ref_mean[1],
       ref_sd[1]^2) instead of the tiny ridge; ref_n = 0: none */
    double ref_mean[2], ref_sd[2];
    int ref_n;
    /* the slope's nonparametric prior (feat_demand_pool_np; compare.demand_pool_np 1): np > 0
       weights np_w on the grid np_x (e-units, ascending; g < np), estimated from the products;
       a fit under it takes the Gaussian prior that gives, for the product's own slope, the
       posterior mean (and, where it can, the variance) of this mixture (feat_demand_np_match).
       np = 0: the normal N(mean, sd^2) above */
    int np;
    double np_x[FEAT_DEMAND_NP_G], np_w[FEAT_DEMAND_NP_G];
} feat_demand_prior;

/* Pooling (empirical Bayes, DerSimonian-Laird): fewer products than this -> no pooled prior;
 * the pooled sd is at least FEAT_DEMAND_POOL_TAU_FLOOR (e-units) so that no product's slope
 * is pinned to the pool's mean. */
#define FEAT_DEMAND_POOL_MIN 20
#define FEAT_DEMAND_POOL_TAU_FLOOR 0.05
#define FEAT_DEMAND_POOL_NS 5

/* Additive sums over products (k, sum w, sum w e, sum w e^2, sum w^2, weights w = 1 / (se^2 +
 * tau2)), exact (eng_xsum) so that an MPI run's ranks can add theirs (eng_par_allreduce_xsum)
 * and get the one-process result bit for bit. */
typedef struct feat_demand_pool {
    eng_xsum s[FEAT_DEMAND_POOL_NS];
} feat_demand_pool;

/* Fit m from n rows at price scale ref (> 0).  logit: 1 conversion with traffic as trials
 * (rows without traffic are skipped), 0 Poisson units per period, -1 choose (traffic known on
 * >= 90% of the rows -> 1).  m->ok = 0 with fewer than FEAT_DEMAND_MIN_ROWS usable rows, no
 * sales or a failed fit (not an error).  No allocation.  Returns 0 or ENG_EINVAL. */
int feat_demand_fit(feat_demand *m, const feat_demand_row *rows, size_t n, double ref, int logit);

/* feat_demand_fit with the price slope's prior pr (NULL or pr->n == 0: the weak N(-1, 1)). */
int feat_demand_fit_prior(feat_demand *m, const feat_demand_row *rows, size_t n, double ref, int logit,
                          const feat_demand_prior *pr);

/* feat_demand_fit_prior with the asymmetric column asked explicitly: asym 1 try it, 0 never
 * (whatever feat_demand_set_asym says). */
int feat_demand_fit_asym(feat_demand *m, const feat_demand_row *rows, size_t n, double ref, int logit,
                         const feat_demand_prior *pr, int asym);

/* The reference effect of m as the truth's eta_gain, eta_loss (docs/simulator.md): *gain = bl,
 * *loss = bl - bk (bk = 0 without the loss column).  Returns 1 when the loss column entered, 0
 * when only the symmetric lag did (*gain = *loss = bl), -1 without a lag column (both NaN). */
int feat_demand_gain_loss(const feat_demand *m, double *gain, double *loss);

/* The reference columns' pooled prior (empirical Bayes, DerSimonian-Laird as the slope's) from n
 * fitted models ms (models without a lag column are skipped; the loss column's from the models
 * where it entered): sets pr->ref_mean, ref_sd, ref_n (ref_n = 0 with fewer than
 * FEAT_DEMAND_POOL_MIN models with a lag column; the loss prior needs as many with the loss
 * column, else it stays the ridge: ref_sd[1] = 0).  reduce as feat_demand_pool_run; out of memory
 * still takes every exchange (MPI ranks do not wait on it).  Returns 0, ENG_ENOMEM (no prior) or
 * reduce's failure. */
int feat_demand_ref_pool(const feat_demand *ms, size_t n, int (*reduce)(eng_xsum *s, size_t ns), feat_demand_prior *pr);

/* The width (sd, e-units) of the weak slope prior N(-1, 1) (b1 units; e = b1 xc with xc ~ 1 for
 * the identity form). */
#define FEAT_DEMAND_WEAK_SD 1.0

/* The pooled prior's centre at a width no narrower than sd (e-units): *out = *pr (its reference
 * columns' prior included) with out->sd = max(pr->sd, sd) and the normal form (out->np = 0).
 * pr NULL or without a slope prior (n = 0): out->n = 0 (the weak prior).  The agents' demand
 * models with compare.demand_pool 3 (docs/compare.md, "The pooled prior for the agents' models
 * (q12pool2)"): the shared networks
 * pool the products themselves, so a pooled width stacked on theirs over-shrinks the products'
 * best prices; the centre alone removes the weak prior's pull towards -1.  No allocation. */
void feat_demand_prior_centre(const feat_demand_prior *pr, double sd, feat_demand_prior *out);

/* The price slope the product's own data says, without the prior it was fitted with (the
 * Gaussian approximation: the posterior's precision less the prior's), in e-units (see
 * feat_demand_prior) into *e and its standard error into *se.  0, or -1 (not ok, or the data
 * carry no information on the slope: no price variation). */
int feat_demand_slope_e(const feat_demand *m, double *e, double *se);

/* 1 when m shows carry-over: its lag column entered the fit and its coefficient is at least z
 * robust standard errors from 0, or the asymmetric loss column entered (its likelihood-ratio
 * test passed: the reference matters) (z = 2: the test of the gate's horizon, the agents' held
 * valuation and exploration's carry-over skip).  Pure. */
int feat_demand_lag_carries(const feat_demand *m, double z);

/* Zero the sums; add one product's (e, se) with weight 1 / (se^2 + tau2) (skipped when not
 * finite or se <= 0). */
void feat_demand_pool_zero(feat_demand_pool *p);
void feat_demand_pool_add(feat_demand_pool *p, double e, double se, double tau2);
/* DerSimonian-Laird between-product variance tau^2 from sums added with tau2 = 0:
 * max(floor^2, (Q - (k - 1)) / (W - sum w^2 / W)), Q = sum w (e - e_w)^2.  NaN with no product. */
double feat_demand_pool_tau2(const feat_demand_pool *p);
/* The prior from sums added with weights at tau2: mean = sum w e / sum w, sd = sqrt(tau2),
 * n = products; n = 0 (no pooling) with fewer than FEAT_DEMAND_POOL_MIN products. */
void feat_demand_pool_prior(const feat_demand_pool *p, double tau2, feat_demand_prior *out);
/* Both passes over n products' (e, se) (pairs with a non-finite value or se <= 0 are skipped).
 * reduce (may be NULL: one process) adds the sums of every part of a split run after each pass,
 * e.g. eng_par_allreduce_xsum over MPI ranks, each rank passing its own products.  Returns 0 or
 * reduce's failure (then *out is the empty prior). */
int feat_demand_pool_run(const double *e, const double *se, size_t n, int (*reduce)(eng_xsum *s, size_t ns),
                         feat_demand_prior *out);

/* The nonparametric pooled prior on the price slope (features/feat_demand_np.c; docs/backtest.md
 * "A nonparametric pooled prior on the slope (session 18)"): from n products' (e, se) (the
 * slopes their own data say; pairs with a non-finite value or se <= 0 are skipped) and pr's
 * normal prior (feat_demand_pool_run; pr->n > 0, else nothing is done and no exchange is taken),
 * the grid's weights by FEAT_DEMAND_NP_ITERS EM steps of the nonparametric maximum likelihood
 * (NPMLE) on the products' Gaussian likelihoods N(e; x, se^2), into pr->np, np_x, np_w.  The
 * grid: FEAT_DEMAND_NP_CORE points over pr->mean +- h, h = max(5 pr->sd, 1), and where a
 * product's slope lies more than 2 se beyond an edge, FEAT_DEMAND_NP_TAIL evenly spaced points
 * out to the farthest such product on that side, so that no product's own clear slope is
 * clipped to the core's edge.  reduce (may be NULL) adds every part's sums after each step, as
 * feat_demand_pool_run's (each product's posterior weights are summed in fixed point, 2^-32, so
 * any split of the products gives the one-process weights bit for bit); rmax (may be NULL) takes
 * the element-wise maximum of v[0..n) over the parts, once, for the tails (e.g.
 * eng_par_allreduce_f64 with ENG_PAR_MAX).  Out of memory still takes every exchange.  Returns
 * 0, ENG_ENOMEM or an exchange's failure (then pr->np = 0: the normal prior stays). */
#define FEAT_DEMAND_NP_ITERS 300
int feat_demand_pool_np(const double *e, const double *se, size_t n, int (*reduce)(eng_xsum *s, size_t ns),
                        int (*rmax)(double *v, int n), feat_demand_prior *pr);

/* The Gaussian prior a product's fit takes under pr's nonparametric prior: *out = *pr with
 * out->np = 0 and (mean, sd) such that a slope observed as e (standard error se: the product's
 * own data, feat_demand_slope_e) gets the mixture's posterior mean exactly and its posterior
 * variance where the mixture's posterior is narrower than the data alone (else a prior of
 * precision 1 / (4 se^2), the mean still matched); the posterior sd is at least
 * FEAT_DEMAND_POOL_TAU_FLOOR.  e not finite or se not > 0 (no price variation): the mixture's
 * own mean and sd.  pr->np = 0: *out = *pr.  No allocation. */
void feat_demand_np_match(const feat_demand_prior *pr, double e, double se, feat_demand_prior *out);

/* Expected rate at `price` for a normal period in context ctx (NULL: the rows' means): revenue
 * per visitor (price x conversion) with traffic, revenue per period without.  dslope shifts the
 * price slope b1 (e.g. k robust standard errors for an interval).  *se (may be NULL): the
 * delta-method standard error (posterior) of the rate's change from the centre xc.  NaN when
 * m is not ok or price <= 0. */
double feat_demand_rate(const feat_demand *m, double price, const feat_demand_ctx *ctx, double dslope, double *se);

/* Robust and posterior standard errors of the price slope b1 (NaN when not ok). */
double feat_demand_slope_se(const feat_demand *m, int robust);

/* Rows of product p in h over its present periods (price > 0, units >= 0): comp from the
 * period's competitor prices, lag from the previous period's price, promo.  rows holds
 * h->n_periods entries (caller's); *n gets the count; *now (may be NULL) gets the context of the
 * next period at incumbent `inc` (the latest competitor prices, lag = log(inc / ref)).  ref > 0.
 * No allocation. */
void feat_demand_rows_history(const db_history *h, int p, double ref, double inc, feat_demand_row *rows, size_t *n,
                              feat_demand_ctx *now);

#endif
