/* env_sim.c - demand model, samplers, the per-product market, simple policies and policy
 * evaluation (see env_sim.h and docs/simulator.md). */
#include "env_sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ------------------------------------------------------------------------ */

int env_sim_grid_make(env_sim_grid *g, int n, double lo, double hi) {
    if (n < 1 || n > ENV_SIM_MAX_LEVELS || !(lo > 0) || !(hi >= lo) || !isfinite(hi))
        return eng_err_set(ENG_EINVAL, "env_sim_grid_make: need 1 <= n <= %d and 0 < lo <= hi (got n=%d, %g..%g)",
                           ENV_SIM_MAX_LEVELS, n, lo, hi);
    g->n = n;
    for (int k = 0; k < n; k++) g->mult[k] = n == 1 ? lo : lo + (hi - lo) * k / (n - 1);
    return ENG_OK;
}

void env_sim_params_default(env_sim_params *p) {
    static const double weekly[7] = {0.97, 0.95, 0.96, 0.98, 1.02, 1.10, 1.02};
    memset(p, 0, sizeof *p);
    p->base_price = 20.0;
    p->unit_cost = 12.0;
    p->period_days = 1;
    p->dow0 = 0;
    p->traffic_base = 800.0;
    p->traffic_trend = 0.001;
    memcpy(p->weekly, weekly, sizeof weekly);
    p->traffic_sigma = 0.15;
    p->conv_base = log(0.03 / 0.97);
    p->elasticity = -2.0;
    p->comp_coef = 0.8;
    p->ref_lambda = 0.7;
    p->ref_gain = 1.0;
    p->ref_loss = 1.5;
    p->ref0 = 1.0;
    p->promo_lift = 0.2;
    p->promo_threshold = 0.85;
    p->n_comp = 2;
    p->comp_mean[0] = 1.0;
    p->comp_mean[1] = 1.05;
    p->comp_phi = 0.8;
    p->comp_sigma = 0.03;
    p->comp_promo_prob = 0.05;
    p->comp_promo_depth = 0.2;
    p->stock = 0.0;
    p->good_mult = 1.0;
    p->log_width = 0.05;
    p->log_promo_prob = 0.08;
    p->log_comp_follow = 0.3;
}

int env_sim_params_check(const env_sim_params *p) {
#define BAD(cond, field) \
    if (cond) return eng_err_set(ENG_EINVAL, "env_sim params: bad %s", field)
    BAD(!(p->base_price > 0) || !isfinite(p->base_price), "base_price (must be > 0)");
    BAD(!(p->unit_cost >= 0) || !isfinite(p->unit_cost), "unit_cost (must be >= 0)");
    BAD(p->period_days != 1 && p->period_days != 7, "period_days (1 or 7)");
    BAD(p->dow0 < 0 || p->dow0 > 6, "dow0 (0..6)");
    BAD(!(p->traffic_base > 0) || !isfinite(p->traffic_base), "traffic_base (must be > 0)");
    BAD(!isfinite(p->traffic_trend) || fabs(p->traffic_trend) > 0.5, "traffic_trend");
    for (int d = 0; d < 7; d++) BAD(!(p->weekly[d] > 0) || !isfinite(p->weekly[d]), "weekly factor (must be > 0)");
    BAD(!(p->traffic_sigma >= 0) || p->traffic_sigma > 3, "traffic_sigma (0..3)");
    BAD(!isfinite(p->conv_base) || !isfinite(p->elasticity) || !isfinite(p->comp_coef), "conversion coefficients");
    BAD(!(p->ref_lambda >= 0 && p->ref_lambda < 1), "ref_lambda (0 <= lambda < 1)");
    BAD(!(p->ref_gain >= 0) || !(p->ref_loss >= 0) || !isfinite(p->ref_gain + p->ref_loss), "ref_gain/ref_loss (>= 0)");
    BAD(!(p->ref0 > 0) || !isfinite(p->ref0), "ref0 (> 0)");
    BAD(!isfinite(p->promo_lift) || !(p->promo_threshold > 0), "promo_lift/promo_threshold");
    BAD(!(p->promo_cal_prob >= 0 && p->promo_cal_prob <= 1) || !isfinite(p->promo_cal_lift), "promo_cal_prob/lift");
    BAD(p->n_comp < 0 || p->n_comp > ENV_SIM_MAX_COMP, "n_comp (0..4)");
    for (int k = 0; k < p->n_comp; k++) BAD(!(p->comp_mean[k] > 0) || !isfinite(p->comp_mean[k]), "comp_mean (> 0)");
    BAD(!(p->comp_phi >= 0 && p->comp_phi < 1), "comp_phi (0 <= phi < 1)");
    BAD(!(p->comp_sigma >= 0) || p->comp_sigma > 1, "comp_sigma (0..1)");
    BAD(!(p->comp_promo_prob >= 0 && p->comp_promo_prob <= 1), "comp_promo_prob (0..1)");
    BAD(!(p->comp_promo_depth >= 0 && p->comp_promo_depth < 1), "comp_promo_depth (0 <= d < 1)");
    BAD(isnan(p->stock), "stock");
    BAD(!(p->good_mult > 0) || !(p->log_width > 0), "good_mult/log_width (> 0)");
    BAD(!(p->log_promo_prob >= 0 && p->log_promo_prob <= 1), "log_promo_prob (0..1)");
    BAD(!(p->log_comp_follow >= 0 && p->log_comp_follow <= 1), "log_comp_follow (0..1)");
    BAD(p->log_uniform != 0 && p->log_uniform != 1, "log_uniform (0 or 1)");
    BAD(p->demand < ENV_SIM_DEMAND_LOGLOGIT || p->demand > ENV_SIM_DEMAND_CE, "demand (family 0..2)");
#undef BAD
    return ENG_OK;
}

/* ---- exact model pieces ------------------------------------------------------------------ */

double env_sim_expected_traffic(const env_sim_params *p, int t) {
    double s = p->period_days == 1 ? p->weekly[(p->dow0 + t) % 7] : 1.0;
    return p->traffic_base * exp(p->traffic_trend * t) * s;
}

double env_sim_comp_mean_price(const env_sim_params *p) {
    if (p->n_comp <= 0) return p->base_price;
    double s = 0;
    for (int k = 0; k < p->n_comp; k++) s += p->comp_mean[k];
    return p->base_price * s / p->n_comp;
}

double env_sim_purchase_prob(const env_sim_params *p, double price, double ref, double cbar) {
    return env_sim_purchase_prob_at(p, price, ref, cbar, 0);
}

double env_sim_purchase_prob_at(const env_sim_params *p, double price, double ref, double cbar, int promo) {
    double x = price / p->base_price;
    double z = p->conv_base + p->elasticity * (p->demand == ENV_SIM_DEMAND_LOGIT ? x - 1.0 : log(x));
    if (p->n_comp > 0) z += p->comp_coef * log(cbar / env_sim_comp_mean_price(p));
    double lr = log(ref / price);
    z += lr > 0 ? p->ref_gain * lr : p->ref_loss * lr; /* lr < 0: loss */
    if (price <= p->promo_threshold * p->base_price * (1 + 1e-9)) z += p->promo_lift;
    if (promo) z += p->promo_cal_lift;
    if (p->demand == ENV_SIM_DEMAND_CE) return z < log(0.95) ? exp(z) : 0.95;
    return 1.0 / (1.0 + exp(-z));
}

double env_sim_ref_next(const env_sim_params *p, double ref, double price) {
    return p->ref_lambda * ref + (1.0 - p->ref_lambda) * price;
}

/* ---- samplers ---------------------------------------------------------------------------- */

/* Poisson: multiplication for small means, PTRS (Hormann 1993, transformed rejection with
 * squeeze) otherwise. Both exact. */
int64_t env_sim_poisson(eng_rng *r, double mean) {
    if (!(mean > 0)) return 0;
    if (mean < 10) {
        double L = exp(-mean), prod = eng_rng_uniform(r);
        int64_t k = 0;
        while (prod > L) {
            k++;
            prod *= eng_rng_uniform(r);
        }
        return k;
    }
    double slam = sqrt(mean), loglam = log(mean);
    double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
    double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
        double u = eng_rng_uniform(r) - 0.5, v = eng_rng_uniform(r);
        double us = 0.5 - fabs(u);
        double k = floor((2 * a / us + b) * u + mean + 0.43);
        if (us >= 0.07 && v <= vr) return (int64_t)k;
        if (k < 0 || (us < 0.013 && v > us)) continue;
        if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <= -mean + k * loglam - lgamma(k + 1)) return (int64_t)k;
    }
}

/* Binomial: inversion for small n q, BTRS (Hormann 1993) otherwise; symmetric for q > 1/2. */
int64_t env_sim_binomial(eng_rng *r, int64_t n, double q) {
    if (n <= 0 || !(q > 0)) return 0;
    if (q >= 1) return n;
    if (q > 0.5) return n - env_sim_binomial(r, n, 1 - q);
    double nq = (double)n * q;
    if (nq < 10) {
        /* inversion by sequential search on the pmf */
        double s = q / (1 - q), pk = exp((double)n * log1p(-q)), u = eng_rng_uniform(r), cdf = pk;
        int64_t k = 0;
        while (u > cdf && k < n) {
            pk *= s * (double)(n - k) / (double)(k + 1);
            k++;
            cdf += pk;
            if (pk < 1e-300 && cdf < u) break; /* numerical tail: stop (probability ~0) */
        }
        return k;
    }
    double spq = sqrt(nq * (1 - q));
    double b = 1.15 + 2.53 * spq, a = -0.0873 + 0.0248 * b + 0.01 * q, c = nq + 0.5;
    double vr = 0.92 - 4.2 / b, alpha = (2.83 + 5.1 / b) * spq, lpq = log(q / (1 - q));
    double m = floor((double)(n + 1) * q);
    double h = lgamma(m + 1) + lgamma((double)n - m + 1);
    for (;;) {
        double u = eng_rng_uniform(r) - 0.5, v = eng_rng_uniform(r);
        double us = 0.5 - fabs(u);
        double k = floor((2 * a / us + b) * u + c);
        if (k < 0 || k > (double)n) continue;
        if (us >= 0.07 && v <= vr) return (int64_t)k;
        v = log(v * alpha / (a / (us * us) + b));
        if (v <= h - lgamma(k + 1) - lgamma((double)n - k + 1) + (k - m) * lpq) return (int64_t)k;
    }
}

/* ---- market -------------------------------------------------------------------------- */

static void draw_exo(env_sim_market *m) {
    const env_sim_params *p = &m->prm;
    double z = eng_rng_normal(&m->exo);
    double s = p->traffic_sigma;
    m->intensity = env_sim_expected_traffic(p, m->t) * exp(s * z - 0.5 * s * s);
    for (int k = 0; k < p->n_comp; k++) {
        double e = eng_rng_normal(&m->exo);
        if (m->t == 0) /* stationary start */
            m->comp_x[k] = p->comp_sigma * e / sqrt(1 - p->comp_phi * p->comp_phi);
        else
            m->comp_x[k] = p->comp_phi * m->comp_x[k] + p->comp_sigma * e;
        int promo = eng_rng_uniform(&m->exo) < p->comp_promo_prob;
        m->comp_now[k] = p->base_price * p->comp_mean[k] * exp(m->comp_x[k]) * (promo ? 1 - p->comp_promo_depth : 1);
    }
    /* the promotion calendar: its own stream, so the other draws are as without it */
    m->promo_now = p->promo_cal_prob > 0 && eng_rng_uniform(&m->cal) < p->promo_cal_prob;
}

int env_sim_market_init(env_sim_market *m, const env_sim_params *p, uint64_t seed, int product) {
    memset(m, 0, sizeof *m);
    int st = env_sim_params_check(p);
    if (st) return st;
    m->prm = *p;
    uint64_t ps = eng_seed_derive(seed, (uint64_t)product);
    eng_rng_seed(&m->exo, eng_seed_derive(ps, 1));
    eng_rng_seed(&m->dem, eng_seed_derive(ps, 2));
    eng_rng_seed(&m->cal, eng_seed_derive(ps, 7));
    m->ref = p->ref0 * p->base_price;
    m->stock_left = p->stock > 0 ? p->stock : INFINITY;
    draw_exo(m);
    return ENG_OK;
}

static double comp_bar(const env_sim_params *p, const double *comp_now) {
    if (p->n_comp <= 0) return p->base_price;
    double s = 0;
    for (int k = 0; k < p->n_comp; k++) s += comp_now[k];
    return s / p->n_comp;
}

int env_sim_market_step(env_sim_market *m, double price, env_sim_outcome *out) {
    if (!(price > 0) || !isfinite(price))
        return eng_err_set(ENG_EINVAL, "env_sim_market_step: price %g at period %d is not a positive number", price,
                           m->t);
    const env_sim_params *p = &m->prm;
    memset(out, 0, sizeof *out);
    double q = env_sim_purchase_prob_at(p, price, m->ref, comp_bar(p, m->comp_now), m->promo_now);
    int64_t v = env_sim_poisson(&m->dem, m->intensity);
    double u = (double)env_sim_binomial(&m->dem, v, q);
    if (u > m->stock_left) u = m->stock_left;
    if (isfinite(m->stock_left)) m->stock_left -= u;
    out->price = price;
    out->traffic = (double)v;
    out->units = u;
    out->revenue = u * price;
    out->profit = u * (price - p->unit_cost);
    out->prob = q;
    out->exp_traffic = env_sim_expected_traffic(p, m->t);
    out->exp_revenue = out->exp_traffic * q * price;
    out->exp_profit = out->exp_traffic * q * (price - p->unit_cost);
    out->ref = m->ref;
    out->promo = m->promo_now || price <= p->promo_threshold * p->base_price * (1 + 1e-9);
    m->ref = env_sim_ref_next(p, m->ref, price);
    m->t++;
    draw_exo(m);
    return ENG_OK;
}

/* ---- simple policies ------------------------------------------------------------------- */

int env_sim_policy_fixed(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out) {
    (void)product, (void)t, (void)rng;
    *price_out = *(const double *)ctx * obs->base_price;
    return ENG_OK;
}

double env_sim_ref_from_history(const env_sim_params *p, const env_sim_obs *obs) {
    double r = p->ref0 * p->base_price;
    for (int i = 0; i < obs->t; i++) r = env_sim_ref_next(p, r, obs->price[i]);
    return r;
}

int env_sim_policy_myopic(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out) {
    (void)product, (void)t, (void)rng;
    const env_sim_myopic_ctx *c = ctx;
    const env_sim_params *p = c->prm;
    double ref = env_sim_ref_from_history(p, obs), cbar = comp_bar(p, obs->comp_now);
    double best = -INFINITY, best_price = p->base_price;
    for (int k = 0; k < obs->grid->n; k++) {
        double price = p->base_price * obs->grid->mult[k];
        double r = env_sim_purchase_prob(p, price, ref, cbar) * (price - (c->profit ? p->unit_cost : 0));
        if (r > best) best = r, best_price = price;
    }
    *price_out = best_price;
    return ENG_OK;
}

/* ---- evaluation ----------------------------------------------------------------------------- */

typedef struct acc { double s, s2; } acc;
static void acc_add(acc *a, double x) { a->s += x, a->s2 += x * x; }
static env_sim_metric acc_get(const acc *a, int n) {
    env_sim_metric m = {a->s / n, 0};
    if (n > 1) {
        double var = (a->s2 - a->s * a->s / n) / (n - 1);
        m.ci = 1.959964 * sqrt(var > 0 ? var : 0) / sqrt((double)n);
    }
    return m;
}

int env_sim_evaluate(const env_sim_params *p, const env_sim_grid *g, int product, int horizon, double gamma,
                     int n_reps, uint64_t seed, env_sim_policy_fn policy, void *ctx, env_sim_value *out) {
    memset(out, 0, sizeof *out);
    if (horizon < 1 || n_reps < 1 || !(gamma > 0 && gamma <= 1) || !policy || !g)
        return eng_err_set(ENG_EINVAL, "env_sim_evaluate: need horizon >= 1, n_reps >= 1, 0 < gamma <= 1, a policy, a grid");
    int st = env_sim_params_check(p);
    if (st) return st;
    int nc = p->n_comp;
    float *buf = eng_malloc((size_t)horizon * (4 + (size_t)(nc > 0 ? nc : 1)) * sizeof(float));
    uint8_t *promo = eng_malloc((size_t)horizon);
    double *hp = eng_malloc((size_t)horizon * sizeof(double));
    if (!buf || !promo || !hp) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    float *hu = buf + horizon, *hr = buf + 2 * horizon, *ht = buf + 3 * horizon, *hc = buf + 4 * horizon;
    acc a_rev = {0}, a_drev = {0}, a_pro = {0}, a_dpro = {0}, a_rcr = {0}, a_units = {0};
    acc e_rev = {0}, e_drev = {0}, e_pro = {0}, e_dpro = {0};
    for (int rep = 0; rep < n_reps; rep++) {
        uint64_t rs = eng_seed_derive(seed, (uint64_t)rep);
        env_sim_market m;
        if ((st = env_sim_market_init(&m, p, rs, product))) goto cleanup;
        eng_rng prng;
        eng_rng_seed(&prng, eng_seed_derive(eng_seed_derive(rs, (uint64_t)product), 3));
        double rev = 0, drev = 0, pro = 0, dpro = 0, traffic = 0, units = 0, erev = 0, edrev = 0, epro = 0, edpro = 0;
        double disc = 1;
        for (int t = 0; t < horizon; t++) {
            env_sim_obs obs = {.t = t, .horizon = horizon, .dow = p->period_days == 1 ? (p->dow0 + t) % 7 : -1,
                               .base_price = p->base_price, .unit_cost = p->unit_cost, .stock_left = m.stock_left,
                               .price = hp, .units = hu, .revenue = hr, .traffic = ht, .promo = promo,
                               .n_comp = nc, .comp_hist = hc, .comp_now = m.comp_now, .grid = g,
                               .promo_now = m.promo_now};
            double price = NAN;
            if ((st = policy(ctx, product, t, &obs, &prng, &price))) goto cleanup;
            env_sim_outcome o;
            if ((st = env_sim_market_step(&m, price, &o))) goto cleanup;
            hp[t] = o.price, hu[t] = (float)o.units, hr[t] = (float)o.revenue, ht[t] = (float)o.traffic;
            promo[t] = (uint8_t)o.promo;
            for (int k = 0; k < nc; k++) hc[(size_t)t * nc + k] = (float)obs.comp_now[k];
            rev += o.revenue, pro += o.profit, drev += disc * o.revenue, dpro += disc * o.profit;
            erev += o.exp_revenue, epro += o.exp_profit, edrev += disc * o.exp_revenue, edpro += disc * o.exp_profit;
            traffic += o.traffic, units += o.units;
            disc *= gamma;
        }
        acc_add(&a_rev, rev), acc_add(&a_drev, drev), acc_add(&a_pro, pro), acc_add(&a_dpro, dpro);
        acc_add(&a_rcr, traffic > 0 ? rev / traffic : 0), acc_add(&a_units, units);
        acc_add(&e_rev, erev), acc_add(&e_drev, edrev), acc_add(&e_pro, epro), acc_add(&e_dpro, edpro);
    }
    out->n_reps = n_reps, out->horizon = horizon, out->gamma = gamma;
    out->revenue = acc_get(&a_rev, n_reps), out->disc_revenue = acc_get(&a_drev, n_reps);
    out->profit = acc_get(&a_pro, n_reps), out->disc_profit = acc_get(&a_dpro, n_reps);
    out->rcr = acc_get(&a_rcr, n_reps), out->units = acc_get(&a_units, n_reps);
    out->exp_revenue = acc_get(&e_rev, n_reps), out->exp_disc_revenue = acc_get(&e_drev, n_reps);
    out->exp_profit = acc_get(&e_pro, n_reps), out->exp_disc_profit = acc_get(&e_dpro, n_reps);
cleanup:
    free(buf);
    free(hp);
    free(promo);
    return st;
}
