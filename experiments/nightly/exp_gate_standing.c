/* exp_gate_standing.c - the gate's STANDING-price valuation (nightly.gate_standing; exp_gate.h,
 * exp_gate_fit_ex; docs/nightly.md, "Decide").
 *
 * The one-step valuation (exp_gate_fit_product) compares a candidate c with the incumbent i for
 * ONE period with the previous price held at i.  A price the nightly pushes is charged night after
 * night, so on a market whose customers anchor on recent prices its value is the one it has once
 * the customers' reference has settled at it: the previous-price state equal to c itself.  Here the
 * state column "lag" is the log of an exponentially smoothed past price (memory lambda, chosen
 * among a few values by the likelihood, lambda = 0 being the previous price of the one-step fit),
 * and a price is valued with that state at the price itself.  The slope is then the sum of the
 * price and lag coefficients (its robust standard error from their joint covariance): the
 * long-run price response.  On a market without a reference effect the lag coefficient is about
 * 0 and the valuation is the one-step one with a slightly wider interval. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_gate.h"

static const double standing_lambdas[] = {0.5, 0.7, 0.85}; /* besides 0 (the one-step fit) */

/* Overwrite the lag of product p's rows (built by feat_demand_rows_history at price scale ref,
 * in the same order; n may be 0) with log(EMA_lambda of the prices before the period / ref).
 * Returns the EMA after the last period: the smoothed past price before the next one (NaN with
 * no price). */
static double ema_lags(const db_history *h, int p, double ref, double lambda, feat_demand_row *rows, size_t n) {
    const int T = h->n_periods;
    double ema = NAN;
    size_t k = 0;
    for (int t = 0; t < T; t++) {
        const size_t c = (size_t)p * T + t;
        const int row = h->present[c] && h->price[c] > 0 && isfinite(h->units[c]) && h->units[c] >= 0;
        if (row && k < n) rows[k++].lag = isfinite(ema) ? log(ema / ref) : NAN;
        if (h->present[c] && h->price[c] > 0) ema = isfinite(ema) ? lambda * ema + (1 - lambda) * h->price[c] : h->price[c];
    }
    return ema;
}

/* Slope, standard error, base and context of f for the standing valuation at incumbent inc. */
static void standing_finish(exp_gate_fit *f, double inc) {
    const feat_demand *m = &f->dm;
    const int K = FEAT_DEMAND_K, P = FEAT_DEMAND_PRICE, L = FEAT_DEMAND_LAG;
    const int lag = m->used >> L & 1u;
    f->standing = 1;
    f->now.lag = 0; /* log(inc / ref): the incumbent standing */
    const double r0 = feat_demand_rate(m, inc, &f->now, 0, NULL);
    f->sfac = m->logit ? 1 - r0 / inc : 1.0;
    const double b = m->beta[P] + (lag ? m->beta[L] : 0);
    const double v = m->rcov[P * K + P] + (lag ? m->rcov[L * K + L] + 2 * m->rcov[P * K + L] : 0);
    f->slope = b * f->sfac;
    f->slope_se = v > 0 ? sqrt(v) * f->sfac : NAN;
    const double margin = isfinite(f->cost) ? inc - f->cost : inc;
    f->base = r0 / inc * m->traffic_mean * margin;
    f->ok = isfinite(f->slope) && isfinite(f->slope_se) && f->slope_se > 0 && f->sfac > 0 && isfinite(f->base);
}

int exp_gate_fit_ex(const db_history *h, int p, double incumbent, int reward_kind, int standing,
                    const feat_demand_prior *prior, exp_gate_fit *f) {
    return exp_gate_fit_lagtest(h, p, incumbent, reward_kind, standing, 1, prior, f);
}

int exp_gate_fit_lagtest(const db_history *h, int p, double incumbent, int reward_kind, int standing, int lag_test,
                         const feat_demand_prior *prior, exp_gate_fit *f) {
    int st = exp_gate_fit_product(h, p, incumbent, reward_kind, prior, f);
    if (st || !standing || !f->ok) return st;
    const exp_gate_fit one_step = *f;
    const int T = h->n_periods;
    feat_demand_row *rows = eng_malloc((size_t)(T > 0 ? T : 1) * sizeof *rows);
    if (!rows) return ENG_ENOMEM;
    size_t n = 0;
    feat_demand_ctx now;
    feat_demand_rows_history(h, p, incumbent, incumbent, rows, &n, &now);
    feat_demand best = f->dm, m;
    f->lambda = 0;
    double ema_end = ema_lags(h, p, incumbent, 0.0, NULL, 0); /* lambda 0: the last price */
    for (size_t j = 0; j < sizeof standing_lambdas / sizeof standing_lambdas[0]; j++) {
        const double e = ema_lags(h, p, incumbent, standing_lambdas[j], rows, n);
        if ((st = feat_demand_fit_prior(&m, rows, n, incumbent, best.logit, prior))) break;
        if (m.ok && m.ll > best.ll) best = m, f->lambda = standing_lambdas[j], ema_end = e;
    }
    free(rows);
    if (st) return st;
    f->dm = best;
    standing_finish(f, incumbent);
    if (standing >= 2 && !f->ok) *f = one_step; /* horizon: the one-step fit when this one failed */
    else if (standing >= 2) { /* horizon: the smoothed past price before the next period */
        f->horizon = standing;
        f->ema_now = isfinite(ema_end) && ema_end > 0 ? ema_end : incumbent;
        f->now.lag = log(f->ema_now / incumbent);
        /* the interval: the slope of the horizon's mean, price + w lag with w the mean share of
           the way the smoothed price has moved over the nights, (1/H) sum_h (1 - lambda^h) */
        const feat_demand *m = &f->dm;
        const int K = FEAT_DEMAND_K, P = FEAT_DEMAND_PRICE, L = FEAT_DEMAND_LAG, lag = m->used >> L & 1u;
        if (!lag || (lag_test && !feat_demand_lag_carries(m, 2.0))) { /* no carry-over to value */
            *f = one_step;
            return ENG_OK;
        }
        double w = 0, lh = 1;
        for (int n = 0; n < standing; n++) w += 1 - lh, lh *= f->lambda;
        w /= standing;
        const double v = m->rcov[P * K + P] + w * w * m->rcov[L * K + L] + 2 * w * m->rcov[P * K + L];
        f->slope = (m->beta[P] + w * m->beta[L]) * f->sfac;
        f->slope_se = v > 0 ? sqrt(v) * f->sfac : NAN;
        f->ok = isfinite(f->slope) && isfinite(f->slope_se) && f->slope_se > 0;
    }
    return ENG_OK;
}

int exp_gate_cut_fit(const db_history *h, int p, double incumbent, int reward_kind, const feat_demand_prior *prior,
                     exp_gate_fit *f) {
    f->has_cut = 0;
    exp_gate_fit sf;
    int st = exp_gate_fit_ex(h, p, incumbent, reward_kind, 1, prior, &sf);
    if (st || !sf.ok || !(sf.sfac > 0)) return st;
    f->cut_dm = sf.dm;
    f->cut_dse = sf.slope_se / sf.sfac; /* the standing slope's se in price-coefficient units */
    f->has_cut = isfinite(f->cut_dse) && f->cut_dse > 0;
    f->cut_standing = f->has_cut ? 2 : 0;
    return ENG_OK;
}
