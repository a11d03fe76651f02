/* feat_agent.c - see feat_agent.h. */
#include "feat_agent.h"

#include <math.h>
#include <string.h>

#include "eng_util.h"

static const char *const g_agent_names[FEAT_AGENT_N] = {
    "log_price_ref", "log_ma3_ref", "log_ma12_ref", "price_missing", "units_1_rel", "units_7_rel",
    "traffic_1_rel", "traffic_7_rel", "rate_1_rel", "rate_7_rel", "log_comp_mean", "log_comp_min",
    "comp_missing", "promo_prev", "sales_missing_frac", "traffic_missing_frac", "dow_sin", "dow_cos",
    "woy_sin", "woy_cos", "price_slope", "price_curv", "demand_lo", "demand_hi",
};

const char *feat_agent_name(int i) { return i >= 0 && i < FEAT_AGENT_N ? g_agent_names[i] : "?"; }

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


/* The price term of the demand model: log(price / ref) (form 0) or price / ref (form 1). */
static double model_x(int form, double price, double ref) {
    return form ? (price > 0 && ref > 0 ? price / ref : 1.0) : safe_log_ratio(price, ref);
}

/* One demand model of a product: conversion q = logistic(a + b (x - xc)) per visitor (logit,
 * weights = traffic) or units = exp(a + b (x - xc)) per period, x = model_x(form), fitted by
 * Newton steps with a N(-1, 1) prior on b (a weak downward-sloping demand).  m gets the
 * parameters, the posterior covariance and mok; returns the log-likelihood (-INFINITY when the
 * fit fails: no sales weight, a singular or non-finite step). */
static double model_fit(feat_agent_prod *m, int form, int logit, const float *s2, const float *price, size_t n,
                        double ref) {
    double a = 0, b = -1, su = 0, sw = 0, xc = 0;
    m->mok = 0;
    for (size_t i = 0; i < n; i++) {
        const float *y = s2 + i * FEAT_N;
        double v = logit ? y[FEAT_TRAFFIC_1] : 1.0, u = fmax(y[FEAT_UNITS_1], 0);
        if (!(v > 0)) continue;
        su += u, sw += v, xc += model_x(form, price[i], ref);
    }
    if (!(sw > 0)) return -INFINITY;
    xc /= (double)n;
    double mm = (su + 0.5) / (sw + 1.0), ll = 0;
    a = logit ? log(mm / (1 - fmin(mm, 0.999))) : log(mm);
    for (int it = 0; it < 9; it++) {
        double g0 = 0, g1 = -(b + 1.0), h00 = 1e-6, h01 = 0, h11 = 1.0; /* prior on b */
        ll = -0.5 * (b + 1.0) * (b + 1.0);
        for (size_t i = 0; i < n; i++) {
            const float *y = s2 + i * FEAT_N;
            double v = logit ? y[FEAT_TRAFFIC_1] : 1.0, k = fmax(y[FEAT_UNITS_1], 0);
            if (!(v > 0)) continue;
            double x = model_x(form, price[i], ref) - xc, eta = a + b * x, mu, w;
            if (logit) {
                double q = 1.0 / (1.0 + exp(-eta));
                q = fmin(fmax(q, 1e-12), 1 - 1e-12);
                mu = v * q, w = v * q * (1 - q);
                ll += k * log(q) + fmax(v - k, 0) * log1p(-q);
            } else {
                mu = exp(eta < 30 ? eta : 30), w = mu;
                ll += k * eta - mu;
            }
            g0 += k - mu, g1 += (k - mu) * x;
            h00 += w, h01 += w * x, h11 += w * x * x;
        }
        if (it == 8) break; /* the last pass only scores the final parameters */
        double det = h00 * h11 - h01 * h01;
        if (!(det > 0)) return -INFINITY;
        a += (h11 * g0 - h01 * g1) / det;
        b += (h00 * g1 - h01 * g0) / det;
        if (!isfinite(a) || !isfinite(b)) return -INFINITY;
        /* posterior covariance = inverse Hessian (of this step; the fit has converged by the end) */
        m->mcov[0] = h11 / det, m->mcov[1] = -h01 / det, m->mcov[2] = h00 / det;
    }
    m->ma = a, m->mb = b, m->mub = xc, m->mlogit = logit, m->mform = form, m->mok = isfinite(ll);
    return m->mok ? ll : -INFINITY;
}

/* pp->dlo / dhi from the fitted model: its relative rate 10% below and above pp->mcen. */
static void model_descriptors(feat_agent_prod *pp) {
    const double c = pp->mcen, r0 = feat_agent_model_rate(pp, c, NULL);
    const double rl = feat_agent_model_rate(pp, c * exp(-0.1), NULL), rh = feat_agent_model_rate(pp, c * exp(0.1), NULL);
    if (r0 > 0 && isfinite(rl) && isfinite(rh)) pp->dlo = rl / r0 - 1.0, pp->dhi = rh / r0 - 1.0;
}

/* The demand model of the product (model_fit in log price and in price; the one with the
 * higher likelihood is kept, see feat_agent.h) and its descriptors: pp->dlo / dhi = relative
 * revenue per visitor (per period) 10% below and above the mean logged price. */
static void demand_fit(feat_agent_prod *pp, const float *s2, const float *price, size_t n, double ref, double ub) {
    double sv = 0;
    for (size_t i = 0; i < n; i++) sv += fmax(s2[i * FEAT_N + FEAT_TRAFFIC_1], 0);
    const int logit = sv > 0;
    feat_agent_prod m[2];
    double ll[2];
    for (int f = 0; f < 2; f++) {
        m[f] = *pp;
        ll[f] = model_fit(&m[f], f, logit, s2, price, n, ref);
    }
    const int f = ll[1] > ll[0];
    if (!m[f].mok) return;
    *pp = m[f];
    pp->mcen = ref * exp(ub);
    model_descriptors(pp);
}

int feat_agent_prod_fit(feat_agent_prod *pp, const float *s, const float *s2, const float *price, size_t n,
                        double ref, double ridge) {
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
    demand_fit(pp, s2, price, n, ref, ub);
    return ENG_OK;
}

double feat_agent_model_rate(const feat_agent_prod *pp, double price, double *se) {
    if (se) *se = NAN;
    if (!pp || !pp->mok || !(price > 0) || !(pp->ref > 0)) return NAN;
    const double x = model_x(pp->mform, price, pp->ref) - pp->mub, eta = pp->ma + pp->mb * x;
    double rate, d; /* d = d rate / d eta */
    if (pp->mlogit) {
        const double q = 1.0 / (1.0 + exp(-eta));
        rate = price * q, d = price * q * (1 - q);
    } else {
        rate = price * exp(eta < 30 ? eta : 30), d = rate;
    }
    if (se) *se = d * fabs(x) * sqrt(fmax(pp->mcov[2], 0));
    return rate;
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
}
