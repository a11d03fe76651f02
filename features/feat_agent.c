/* feat_agent.c - see feat_agent.h. */
#include "feat_agent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"

static const char *const g_agent_names[FEAT_AGENT_NMAX] = {
    "log_price_ref", "log_ma3_ref", "log_ma12_ref", "price_missing", "units_1_rel", "units_7_rel",
    "traffic_1_rel", "traffic_7_rel", "rate_1_rel", "rate_7_rel", "log_comp_mean", "log_comp_min",
    "comp_missing", "promo_prev", "sales_missing_frac", "traffic_missing_frac", "dow_sin", "dow_cos",
    "woy_sin", "woy_cos", "price_slope", "price_curv", "demand_lo", "demand_hi", "model_best_log", "model_best_gain",
};

const char *feat_agent_name(int i) { return i >= 0 && i < FEAT_AGENT_NMAX ? g_agent_names[i] : "?"; }

static double safe_log_ratio(double a, double b) { return a > 0 && b > 0 ? log(a / b) : 0.0; }

/* Revenue per visitor over a window (revenue / traffic), or revenue per period without traffic. */
static double rate_of(double rev, double traffic, int w) {
    if (traffic > 0) return rev / traffic;
    return rev / (double)w;
}

static float clipf(double v) {
    if (!isfinite(v)) return 0.0f;
    if (v > FEAT_AGENT_CLIP) return FEAT_AGENT_CLIP;
    if (v < -FEAT_AGENT_CLIP) return -FEAT_AGENT_CLIP;
    return (float)v;
}

/* Solve the 3x3 system A x = b (symmetric positive definite after the ridge) by Gaussian
 * elimination with partial pivoting; 0 ok, -1 singular. */
static int solve3(double A[3][3], double b[3], double x[3]) {
    for (int c = 0; c < 3; c++) {
        int piv = c;
        for (int r = c + 1; r < 3; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
        if (fabs(A[piv][c]) < 1e-12) return -1;
        for (int k = 0; k < 3; k++) {
            double t = A[c][k];
            A[c][k] = A[piv][k];
            A[piv][k] = t;
        }
        double t = b[c];
        b[c] = b[piv];
        b[piv] = t;
        for (int r = c + 1; r < 3; r++) {
            double f = A[r][c] / A[c][c];
            for (int k = c; k < 3; k++) A[r][k] -= f * A[c][k];
            b[r] -= f * b[c];
        }
    }
    for (int r = 2; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < 3; k++) s -= A[r][k] * x[k];
        x[r] = s / A[r][r];
    }
    return 0;
}


/* The smoothed past price of a raw state: lam = 0 the incumbent (the previous period's price),
 * else an exponential smoothing of memory lam of the past prices built from the incumbent and
 * the 3- and 12-period moving averages, a p1 + b ma3 + c ma12 with the weights that give each
 * bucket of past periods (the last one, the two before, the nine before those and all older)
 * the smoothing's weight: a + b/3 + c/12 = 1 - lam, 2 (b/3 + c/12) = lam - lam^3, 9 c/12 =
 * lam^3 (a + b + c = 1; all >= 0 for lam <= 0.9).  A carried state (feat_agent_state_carry)
 * moves it by (1 - lam)(price - logged), as the smoothing would.  NaN when unknown. */
static double smoothed_past(const float *raw, double lam) {
    if (!raw || raw[FEAT_PRICE_MISSING] > 0.5 || !(raw[FEAT_PRICE_CUR] > 0)) return NAN;
    if (!(lam > 0) || !(raw[FEAT_PRICE_MA3] > 0) || !(raw[FEAT_PRICE_MA12] > 0)) return raw[FEAT_PRICE_CUR];
    const double l3 = lam * lam * lam, c = 4.0 * l3 / 3.0, b = 1.5 * (lam - l3) - l3 / 3.0, a = 1.0 - lam - b / 3.0 - c / 12.0;
    return a * raw[FEAT_PRICE_CUR] + b * raw[FEAT_PRICE_MA3] + c * raw[FEAT_PRICE_MA12];
}

/* Competitors' mean price and the smoothed past price of a transition, as the demand model's
 * comp = log(competitors' mean / ref) (from the next state raw2: the priced period's price over
 * its ratio to the competitors) and lag = log(smoothed past price of memory lam / ref) (state
 * raw; lam = 0: the previous price); left as they are when unknown. */
static void agent_ctx(const float *raw, const float *raw2, double ref, double lam, double *comp, double *lag) {
    if (raw2 && !(raw2[FEAT_COMP_MISSING] > 0.5) && raw2[FEAT_COMP_REL_MEAN] > 0 && raw2[FEAT_PRICE_CUR] > 0)
        *comp = log(raw2[FEAT_PRICE_CUR] / raw2[FEAT_COMP_REL_MEAN] / ref);
    const double sp = smoothed_past(raw, lam);
    if (sp > 0) *lag = log(sp / ref);
}

/* The demand-model row of one training transition: the priced period's outcome (next state
 * raw2: units_1, traffic_1, the price and competitors' prices it reports, its promotion flag),
 * the smoothed past price of memory lam (state raw). */
static feat_demand_row agent_row(const float *raw, const float *raw2, double price, double ref, double lam) {
    feat_demand_row r;
    r.price = price, r.units = fmax(raw2[FEAT_UNITS_1], 0), r.traffic = raw2[FEAT_TRAFFIC_1];
    r.comp = NAN, r.lag = NAN;
    agent_ctx(raw, raw2, ref, lam, &r.comp, &r.lag);
    r.promo = raw2[FEAT_PROMO_PREV];
    return r;
}

/* pp->dlo / dhi from the fitted model: its relative rate 10% below and above pp->mcen. */
static void model_descriptors(feat_agent_prod *pp) {
    const double c = pp->mcen, r0 = feat_agent_model_rate(pp, c, NULL);
    const double rl = feat_agent_model_rate(pp, c * exp(-0.1), NULL), rh = feat_agent_model_rate(pp, c * exp(0.1), NULL);
    if (r0 > 0 && isfinite(rl) && isfinite(rh)) pp->dlo = rl / r0 - 1.0, pp->dhi = rh / r0 - 1.0;
}

/* The demand model of the product (feat_demand.h: conversion per visitor with traffic, units per
 * period without; the price form with the higher likelihood) and its descriptors: pp->dlo / dhi
 * = relative revenue per visitor (per period) 10% below and above the mean logged price.
 * memory 1: the lag column's memory pp->lam is chosen among 0 (the previous price) and
 * agent_lams by the likelihood (as the gate's standing fit, exp_gate_standing.c); 0: lam 0.
 * Returns 0 or ENG_ENOMEM. */
static int demand_fit(feat_agent_prod *pp, const float *s, const float *s2, const float *price, size_t n, double ref,
                      double ub, const feat_demand_prior *prior, int memory) {
    static const double agent_lams[] = {0.0, 0.5, 0.7, 0.85};
    double sv = 0;
    for (size_t i = 0; i < n; i++) sv += fmax(s2[i * FEAT_N + FEAT_TRAFFIC_1], 0);
    feat_demand_row *rows = eng_malloc((n ? n : 1) * sizeof *rows);
    if (!rows) return ENG_ENOMEM;
    int st = ENG_OK;
    const int nl = memory ? (int)(sizeof agent_lams / sizeof agent_lams[0]) : 1;
    for (int j = 0; j < nl && !st; j++) {
        feat_demand m;
        for (size_t i = 0; i < n; i++) rows[i] = agent_row(s + i * FEAT_N, s2 + i * FEAT_N, price[i], ref, agent_lams[j]);
        st = feat_demand_fit_prior(&m, rows, n, ref, sv > 0, prior);
        if (!st && m.ok && (!pp->dm.ok || m.ll > pp->dm.ll)) pp->dm = m, pp->lam = agent_lams[j];
    }
    free(rows);
    if (st || !pp->dm.ok) return st;
    pp->mok = 1, pp->mlogit = pp->dm.logit;
    pp->mcen = ref * exp(ub);
    model_descriptors(pp);
    return ENG_OK;
}

int feat_agent_prod_fit(feat_agent_prod *pp, const float *s, const float *s2, const float *price, size_t n,
                        double ref, double ridge, const feat_demand_prior *prior) {
    return feat_agent_prod_fit_ex(pp, s, s2, price, n, ref, ridge, prior, 0);
}

int feat_agent_prod_fit_ex(feat_agent_prod *pp, const float *s, const float *s2, const float *price, size_t n,
                           double ref, double ridge, const feat_demand_prior *prior, int memory) {
    if (!pp || (n && (!s || !s2 || !price)) || !(ref > 0) || !(ridge >= 0))
        return eng_err_set(ENG_EINVAL, "feat_agent_prod_fit: bad argument");
    memset(pp, 0, sizeof *pp);
    pp->ref = ref;
    pp->rate = 1.0;
    pp->n = (long)n;
    if (!n) return ENG_OK;
    double su1 = 0, su7 = 0, sv1 = 0, sv7 = 0, sr = 0;
    for (size_t i = 0; i < n; i++) {
        const float *x = s + i * FEAT_N, *y = s2 + i * FEAT_N;
        su1 += log1p(fmax(x[FEAT_UNITS_1], 0));
        su7 += log1p(fmax(x[FEAT_UNITS_7] / 7.0, 0));
        sv1 += log1p(fmax(x[FEAT_TRAFFIC_1], 0));
        sv7 += log1p(fmax(x[FEAT_TRAFFIC_7] / 7.0, 0));
        sr += rate_of(y[FEAT_REVENUE_1], y[FEAT_TRAFFIC_1], 1);
    }
    pp->lu1 = su1 / n, pp->lu7 = su7 / n, pp->lv1 = sv1 / n, pp->lv7 = sv7 / n;
    pp->rate = sr / n > 0 ? sr / n : 1.0;
    /* descriptors: y = rate_t / mean - 1 on [1, u, u^2], u = log(price / ref) centred */
    double ub = 0;
    for (size_t i = 0; i < n; i++) ub += safe_log_ratio(price[i], ref);
    ub /= n;
    double A[3][3] = {{0}}, b[3] = {0}, beta[3] = {0};
    for (size_t i = 0; i < n; i++) {
        const float *y = s2 + i * FEAT_N;
        double u = safe_log_ratio(price[i], ref) - ub, z[3] = {1.0, u, u * u};
        double yy = rate_of(y[FEAT_REVENUE_1], y[FEAT_TRAFFIC_1], 1) / pp->rate - 1.0;
        for (int r = 0; r < 3; r++) {
            b[r] += z[r] * yy;
            for (int k = 0; k < 3; k++) A[r][k] += z[r] * z[k];
        }
    }
    /* ridge in the units of a typical price move (0.1 in log price): ridge rows' worth */
    A[1][1] += ridge * 0.01;
    A[2][2] += ridge * 1e-4;
    if (solve3(A, b, beta) == 0) {
        pp->slope = beta[1] * 0.1; /* relative rate change per 10% price move */
        pp->curv = beta[2] * 0.01;
    }
    return demand_fit(pp, s, s2, price, n, ref, ub, prior, memory);
}

double feat_agent_model_rate(const feat_agent_prod *pp, double price, double *se) {
    return feat_agent_model_rate_at(pp, price, NULL, se);
}

feat_demand_ctx feat_agent_model_ctx(const feat_agent_prod *pp, const float *raw, const float *raw2) {
    feat_demand_ctx ctx = {NAN, NAN};
    if (pp && pp->ref > 0) agent_ctx(raw, raw2, pp->ref, pp->lam, &ctx.comp, &ctx.lag);
    return ctx;
}

double feat_agent_model_rate_at(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, double *se) {
    if (se) *se = NAN;
    if (!pp || !pp->mok) return NAN;
    return feat_demand_rate(&pp->dm, price, ctx, 0.0, se);
}

double feat_agent_model_rate_held(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, int h, double *se) {
    const double v0 = feat_agent_model_rate_at(pp, price, ctx, se);
    if (h <= 1 || !isfinite(v0) || !ctx || !isfinite(ctx->lag) || !feat_demand_lag_carries(&pp->dm, 2.0))
        return v0; /* no carry-over to value (as the gate's horizon) */
    const double ref = pp->ref > 0 ? pp->ref : 1.0;
    double ema = ref * exp(ctx->lag), sum = v0;
    feat_demand_ctx c = *ctx;
    for (int k = 1; k < h; k++) {
        ema = pp->lam * ema + (1.0 - pp->lam) * price;
        c.lag = log(ema / ref);
        sum += feat_agent_model_rate_at(pp, price, &c, NULL);
    }
    return sum / h;
}

/* The model's context of an agent state st whose price and market features are set: the
 * incumbent, its moving averages and the competitors' mean price are read back from st (so a
 * state and its carried twin give the same values for the same prices), the context is that of a
 * raw state with those prices (agent_ctx).  *inc the incumbent.  -1 when the incumbent is missing
 * or no model was fitted, else 0. */
static int state_ctx(const feat_agent_prod *pp, const float *st, double *inc, feat_demand_ctx *ctx) {
    const double ref = pp->ref > 0 ? pp->ref : 1.0;
    if (st[3] > 0.5f || !pp->mok) return -1;
    float raw[FEAT_N] = {0};
    *inc = ref * exp((double)st[0] / 10.0);
    raw[FEAT_PRICE_CUR] = (float)*inc;
    raw[FEAT_PRICE_MA3] = (float)(ref * exp((double)st[1] / 10.0));
    raw[FEAT_PRICE_MA12] = (float)(ref * exp((double)st[2] / 10.0));
    raw[FEAT_COMP_MISSING] = st[12];
    raw[FEAT_COMP_REL_MEAN] = (float)exp((double)st[10] / 10.0);
    ctx->comp = NAN, ctx->lag = NAN;
    agent_ctx(raw, raw, ref, pp->lam, &ctx->comp, &ctx->lag);
    return 0;
}

/* The context descriptors (pp->desc 1 or 2; 0: nothing) of an agent state out [FEAT_AGENT_N]
 * whose price and market features are set (state_ctx): slot k gets 10 (rate(inc e^x_k) /
 * rate(inc) - 1).  0 when the incumbent is missing or the model gives no positive rate there.
 * No allocation. */
static void ctx_descriptors(const feat_agent_prod *pp, float *out) {
    static const double x2[2] = {-0.1, 0.1}, x4[4] = {-0.15, -0.05, 0.05, 0.15};
    if (pp->desc != FEAT_AGENT_DESC_CTX && pp->desc != FEAT_AGENT_DESC_CTX4) return;
    const int nk = pp->desc == FEAT_AGENT_DESC_CTX ? 2 : 4, at = FEAT_AGENT_N - nk;
    const double *xs = nk == 2 ? x2 : x4;
    for (int k = 0; k < nk; k++) out[at + k] = 0.0f;
    double inc;
    feat_demand_ctx ctx;
    if (state_ctx(pp, out, &inc, &ctx)) return;
    const double r0 = feat_agent_model_rate_at(pp, inc, &ctx, NULL);
    if (!(r0 > 0) || !isfinite(r0)) return;
    for (int k = 0; k < nk; k++) {
        const double rk = feat_agent_model_rate_at(pp, inc * exp(xs[k]), &ctx, NULL);
        out[at + k] = isfinite(rk) ? clipf(10.0 * (rk / r0 - 1.0)) : 0.0f;
    }
}

int feat_agent_width(const feat_agent_prod *pp) { return pp && pp->best ? FEAT_AGENT_NMAX : FEAT_AGENT_N; }

/* The best price's objective at price c in ctx: the model's rate, times the margin share
 * 1 - bcost / c with a unit cost (pp->bcost > 0); NaN where the model gives none. */
static double best_objective(const feat_agent_prod *pp, double c, const feat_demand_ctx *ctx) {
    const double v = feat_agent_model_rate_at(pp, c, ctx, NULL);
    return pp->bcost > 0 ? v * (1.0 - pp->bcost / c) : v;
}

/* best_objective at log price u, -inf where it gives none. */
static double rate_u(const feat_agent_prod *pp, double u, const feat_demand_ctx *ctx) {
    const double v = best_objective(pp, exp(u), ctx);
    return isfinite(v) ? v : -INFINITY;
}

double feat_agent_state_rate(const feat_agent_prod *pp, const float *st) {
    double inc;
    feat_demand_ctx ctx;
    if (!pp || !st || state_ctx(pp, st, &inc, &ctx)) return NAN;
    const double v = feat_agent_model_rate_at(pp, inc, &ctx, NULL);
    return isfinite(v) ? v : NAN;
}

int feat_agent_best_price(const feat_agent_prod *pp, const float *st, double *best, double *gain) {
    enum { NG = 13 }; /* grid steps of <= 2.5% over the +-15% of a change limit */
    *best = *gain = NAN;
    double inc;
    feat_demand_ctx ctx;
    if (!pp || !st || state_ctx(pp, st, &inc, &ctx)) return -1;
    const double r0 = best_objective(pp, inc, &ctx);
    if (!(r0 > 0) || !isfinite(r0)) return -1;
    /* the range: the agents' (blo, bhi) and the change limit around the incumbent; where they do
     * not meet (an incumbent far outside the range), the range alone, as the guard drops the limit */
    const double chg = pp->bchg >= 0 && pp->bchg < 1 ? pp->bchg : NAN;
    double lo = pp->blo > 0 ? pp->blo : 0, hi = pp->bhi > 0 ? pp->bhi : INFINITY;
    if (isfinite(chg) && fmax(lo, inc * (1 - chg)) <= fmin(hi, inc * (1 + chg)))
        lo = fmax(lo, inc * (1 - chg)), hi = fmin(hi, inc * (1 + chg));
    if (!(lo > 0)) lo = inc * 0.75;
    if (!isfinite(hi)) hi = inc * 1.25;
    if (!(hi >= lo)) return -1;
    const double ul = log(lo), uh = log(hi), du = (uh - ul) / (NG - 1);
    int kb = 0;
    double vb = -INFINITY;
    for (int k = 0; k < NG; k++) {
        const double v = rate_u(pp, ul + du * k, &ctx);
        if (v > vb) vb = v, kb = k;
    }
    if (!isfinite(vb)) return -1;
    double a = ul + du * (kb > 0 ? kb - 1 : 0), b = ul + du * (kb < NG - 1 ? kb + 1 : NG - 1), ub = ul + du * kb;
    const double gr = 0.5 * (sqrt(5.0) - 1.0);
    double x1 = b - gr * (b - a), x2 = a + gr * (b - a), f1 = rate_u(pp, x1, &ctx), f2 = rate_u(pp, x2, &ctx);
    for (int it = 0; it < 40 && b - a > 1e-6; it++) {
        if (f1 >= f2)
            b = x2, x2 = x1, f2 = f1, x1 = b - gr * (b - a), f1 = rate_u(pp, x1, &ctx);
        else
            a = x1, x1 = x2, f1 = f2, x2 = a + gr * (b - a), f2 = rate_u(pp, x2, &ctx);
    }
    const double um = 0.5 * (a + b), vm = rate_u(pp, um, &ctx);
    if (vm > vb) vb = vm, ub = um;
    *best = exp(ub);
    *gain = vb / r0 - 1.0;
    return 0;
}

/* The best-price slots (pp->best; out[FEAT_AGENT_N], [FEAT_AGENT_N + 1]) of an agent state whose
 * price and market features are set: 10 log(best / inc) and 10 gain (feat_agent_best_price);
 * 0 and 0 without a best price.  No allocation. */
static void best_descriptors(const feat_agent_prod *pp, float *out) {
    if (!pp->best) return;
    double b, gain;
    out[FEAT_AGENT_N] = out[FEAT_AGENT_N + 1] = 0.0f;
    if (feat_agent_best_price(pp, out, &b, &gain)) return;
    const double inc = (pp->ref > 0 ? pp->ref : 1.0) * exp((double)out[0] / 10.0);
    out[FEAT_AGENT_N] = clipf(10.0 * log(b / inc));
    out[FEAT_AGENT_N + 1] = clipf(10.0 * gain);
}

double feat_agent_model_rate_cut(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, int h, double *se) {
    const double ref = pp->ref > 0 ? pp->ref : 1.0;
    /* a rise, no carry-over or no lag: feat_agent_model_rate_held, which values those itself */
    if (!ctx || !isfinite(ctx->lag) || !feat_demand_lag_carries(&pp->dm, 2.0) ||
        !(price < ref * exp(ctx->lag) * (1 - 1e-9)))
        return feat_agent_model_rate_held(pp, price, ctx, h, se);
    const double v0 = feat_agent_model_rate_at(pp, price, ctx, se);
    if (!isfinite(v0)) return v0;
    feat_demand_ctx c = *ctx; /* a cut: standing, the smoothed past price at the price itself */
    c.lag = log(price / ref);
    return feat_agent_model_rate_at(pp, price, &c, se);
}

void feat_agent_state(const float *raw, const feat_agent_prod *pp, float *out) {
    const double ref = pp->ref > 0 ? pp->ref : 1.0, inc = raw[FEAT_PRICE_CUR];
    out[0] = clipf(safe_log_ratio(inc, ref) * 10.0);
    out[1] = clipf(safe_log_ratio(raw[FEAT_PRICE_MA3], ref) * 10.0);
    out[2] = clipf(safe_log_ratio(raw[FEAT_PRICE_MA12], ref) * 10.0);
    out[3] = clipf(raw[FEAT_PRICE_MISSING]);
    out[4] = clipf(log1p(fmax(raw[FEAT_UNITS_1], 0)) - pp->lu1);
    out[5] = clipf(log1p(fmax(raw[FEAT_UNITS_7] / 7.0, 0)) - pp->lu7);
    out[6] = clipf(log1p(fmax(raw[FEAT_TRAFFIC_1], 0)) - pp->lv1);
    out[7] = clipf(log1p(fmax(raw[FEAT_TRAFFIC_7] / 7.0, 0)) - pp->lv7);
    const double rate = pp->rate > 0 ? pp->rate : 1.0;
    out[8] = clipf(rate_of(raw[FEAT_REVENUE_1], raw[FEAT_TRAFFIC_1], 1) / rate - 1.0);
    out[9] = clipf(rate_of(raw[FEAT_REVENUE_7], raw[FEAT_TRAFFIC_7], 7) / rate - 1.0);
    out[10] = clipf(log(fmax(raw[FEAT_COMP_REL_MEAN], 1e-6)) * 10.0);
    out[11] = clipf(log(fmax(raw[FEAT_COMP_REL_MIN], 1e-6)) * 10.0);
    out[12] = clipf(raw[FEAT_COMP_MISSING]);
    out[13] = clipf(raw[FEAT_PROMO_PREV]);
    out[14] = clipf(raw[FEAT_SALES_MISSING_FRAC]);
    out[15] = clipf(raw[FEAT_TRAFFIC_MISSING_FRAC]);
    out[16] = clipf(raw[FEAT_DOW_SIN]);
    out[17] = clipf(raw[FEAT_DOW_COS]);
    out[18] = clipf(raw[FEAT_WOY_SIN]);
    out[19] = clipf(raw[FEAT_WOY_COS]);
    out[20] = clipf(pp->slope * 10.0);
    out[21] = clipf(pp->curv * 10.0);
    out[22] = clipf(pp->dlo * 10.0);
    out[23] = clipf(pp->dhi * 10.0);
    ctx_descriptors(pp, out);
    best_descriptors(pp, out);
}

/* A log-price feature (10 log(x / ref)) moved to the price x + dx (x > 0), clipped. */
static float carry_ma(float f, double ref, double dx) {
    const double x = ref * exp((double)f / 10.0) + dx;
    return x > 0 ? clipf(log(x / ref) * 10.0) : f;
}

void feat_agent_state_carry(const float *next, const feat_agent_prod *pp, double logged, double price, double rate,
                            float *out) {
    if (out != next) memcpy(out, next, (size_t)feat_agent_width(pp) * sizeof *out);
    if (!(logged > 0) || !(price > 0) || !isfinite(logged) || !isfinite(price)) return;
    const double ref = pp->ref > 0 ? pp->ref : 1.0, dx = price - logged, dl = log(price / logged) * 10.0;
    out[0] = clipf(log(price / ref) * 10.0);
    out[1] = carry_ma(next[1], ref, dx / 3.0);
    out[2] = carry_ma(next[2], ref, dx / 12.0);
    out[10] = clipf(next[10] + dl);
    out[11] = clipf(next[11] + dl);
    ctx_descriptors(pp, out);
    best_descriptors(pp, out);
    if (!isfinite(rate)) return;
    const double mr = pp->rate > 0 ? pp->rate : 1.0, r0 = ((double)next[8] + 1.0) * mr;
    const double traffic = expm1((double)next[6] + pp->lv1);
    const double u0 = expm1((double)next[4] + pp->lu1), u7 = expm1((double)next[5] + pp->lu7);
    const double units = fmax(pp->mlogit ? rate * fmax(traffic, 0) / price : rate / price, 0);
    out[4] = clipf(log1p(units) - pp->lu1);
    out[5] = clipf(log1p(fmax(u7 + (units - u0) / 7.0, 0)) - pp->lu7);
    out[8] = clipf(rate / mr - 1.0);
    out[9] = clipf(next[9] + (rate - r0) / (7.0 * mr));
}
