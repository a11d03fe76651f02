/* env_sim_gen.c - the logging (expert) policy with exact propensities, per-product parameter
 * presets, and histories for many products (see env_sim.h). */
#include "env_sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- logging policy ---------------------------------------------------------------------- */

int env_sim_logging_probs(const env_sim_params *p, const env_sim_grid *g, const double *comp_now, double *probs) {
    return env_sim_logging_probs_at(p, g, comp_now, 0, probs);
}

/* Uniform over the levels with lo <= mult <= hi; 0 or ENG_EINVAL when none. */
static int uniform_between(const env_sim_grid *g, double lo, double hi, double *probs) {
    int n = 0;
    for (int k = 0; k < g->n; k++) n += g->mult[k] >= lo * (1 - 1e-9) && g->mult[k] <= hi * (1 + 1e-9);
    if (!n) return eng_err_set(ENG_EINVAL, "env_sim_logging_probs: no grid level in [%g, %g]", lo, hi);
    for (int k = 0; k < g->n; k++)
        probs[k] = g->mult[k] >= lo * (1 - 1e-9) && g->mult[k] <= hi * (1 + 1e-9) ? 1.0 / n : 0.0;
    return ENG_OK;
}

int env_sim_logging_probs_at(const env_sim_params *p, const env_sim_grid *g, const double *comp_now, int promo,
                             double *probs) {
    if (!g || g->n < 1 || g->n > ENV_SIM_MAX_LEVELS)
        return eng_err_set(ENG_EINVAL, "env_sim_logging_probs: bad grid");
    double centre = p->good_mult;
    if (p->n_comp > 0 && comp_now) {
        double cbar = 0;
        for (int k = 0; k < p->n_comp; k++) cbar += comp_now[k];
        cbar /= p->n_comp;
        centre *= pow(cbar / env_sim_comp_mean_price(p), p->log_comp_follow);
    }
    if (p->promo_cal_prob > 0 && promo) return uniform_between(g, 0, p->promo_cal_hi, probs);
    if (p->promo_cal_prob > 0 && p->log_uniform) return uniform_between(g, p->normal_lo, INFINITY, probs);
    if (p->log_uniform) { /* a randomised history: every level equally likely */
        for (int k = 0; k < g->n; k++) probs[k] = 1.0 / g->n;
        return ENG_OK;
    }
    double mx = -INFINITY;
    for (int k = 0; k < g->n; k++) {
        double d = (g->mult[k] - centre) / p->log_width;
        probs[k] = -0.5 * d * d;
        mx = fmax(mx, probs[k]);
    }
    double s = 0;
    for (int k = 0; k < g->n; k++) s += (probs[k] = exp(probs[k] - mx));
    int n_promo = 0;
    for (int k = 0; k < g->n; k++) n_promo += g->mult[k] <= p->promo_threshold * (1 + 1e-9);
    double eps = p->log_promo_prob;
    for (int k = 0; k < g->n; k++) {
        double promo_k = n_promo ? (g->mult[k] <= p->promo_threshold * (1 + 1e-9)) / (double)n_promo : (k == 0);
        probs[k] = (1 - eps) * probs[k] / s + eps * promo_k;
    }
    return ENG_OK;
}

int env_sim_policy_logging(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out) {
    (void)product, (void)t;
    env_sim_logging_ctx *c = ctx;
    const env_sim_grid *g = obs->grid;
    int st = env_sim_logging_probs_at(c->prm, g, obs->comp_now, obs->promo_now, c->last_probs);
    if (st) return st;
    double u = eng_rng_uniform(rng), cdf = 0;
    int k = 0;
    for (; k < g->n - 1; k++) {
        cdf += c->last_probs[k];
        if (u < cdf) break;
    }
    while (k > 0 && c->last_probs[k] == 0) k--; /* rounding at the top end: never pick a zero-probability level */
    c->last_level = k;
    c->last_propensity = c->last_probs[k];
    *price_out = c->prm->base_price * g->mult[k];
    return ENG_OK;
}

/* ---- presets ---------------------------------------------------------------------------- */

static double unif(eng_rng *r, double a, double b) { return a + (b - a) * eng_rng_uniform(r); }

int env_sim_draw_params(env_sim_preset preset, const env_sim_fit *fit, int period_days, int32_t day0,
                        uint64_t seed, int i, env_sim_params *out) {
    if (period_days != 1 && period_days != 7)
        return eng_err_set(ENG_EINVAL, "env_sim_draw_params: period must be 1 (day) or 7 (week) days, not %d",
                           period_days);
    if (preset == ENV_SIM_PRESET_DOMINICKS && (!fit || fit->n_brands < 1))
        return eng_err_set(ENG_EINVAL, "env_sim_draw_params: the Dominick's preset needs fitted elasticities");
    if (preset != ENV_SIM_PRESET_DEFAULT && preset != ENV_SIM_PRESET_DOMINICKS)
        return eng_err_set(ENG_EINVAL, "env_sim_draw_params: unknown preset %d", (int)preset);
    eng_rng r;
    eng_rng_seed(&r, eng_seed_derive(eng_seed_derive(seed, (uint64_t)i), 4));
    env_sim_params *p = out;
    env_sim_params_default(p);
    p->period_days = period_days;
    p->dow0 = (int)((((int64_t)day0 + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    double wsum = 0;
    for (int d = 0; d < 7; d++) wsum += (p->weekly[d] *= exp(0.03 * eng_rng_normal(&r)));
    for (int d = 0; d < 7; d++) p->weekly[d] *= 7.0 / wsum;
    p->traffic_trend = 0.002 * eng_rng_normal(&r) / period_days;
    p->traffic_sigma = unif(&r, 0.05, 0.3);
    p->comp_coef = unif(&r, 0.3, 1.2);
    p->ref_lambda = unif(&r, 0.5, 0.9);
    p->ref_gain = unif(&r, 0.0, 1.5);
    p->ref_loss = p->ref_gain * unif(&r, 1.0, 2.5);
    p->promo_lift = unif(&r, 0.0, 0.4);
    p->n_comp = 1 + (int)eng_rng_below(&r, 3);
    for (int k = 0; k < p->n_comp; k++) p->comp_mean[k] = unif(&r, 0.9, 1.15);
    p->comp_sigma = unif(&r, 0.01, 0.05);
    p->good_mult = unif(&r, 0.95, 1.05);
    p->log_width = unif(&r, 0.03, 0.08);
    p->log_promo_prob = unif(&r, 0.03, 0.15);
    p->log_comp_follow = unif(&r, 0.0, 0.6);
    double q0;
    if (preset == ENV_SIM_PRESET_DEFAULT) {
        p->base_price = round(exp(log(20.0) + 0.8 * eng_rng_normal(&r)) * 100) / 100;
        if (p->base_price < 0.5) p->base_price = 0.5;
        p->unit_cost = p->base_price * unif(&r, 0.5, 0.75);
        p->traffic_base = exp(log(300.0) + 1.0 * eng_rng_normal(&r)) * period_days;
        q0 = unif(&r, 0.01, 0.08);
        p->elasticity = -unif(&r, 0.6, 3.0) / (1 - q0);
    } else {
        /* Dominick's orange juice: product i is brand i mod 11 in a store of its own; weekly */
        int b = i % fit->n_brands;
        p->base_price = round(fit->mean_price[b] * exp(0.05 * eng_rng_normal(&r)) * 100) / 100;
        double margin = fit->mean_margin[b] / 100;
        p->unit_cost = p->base_price * (1 - (margin > 0 && margin < 0.9 ? margin : 0.3));
        q0 = 0.05; /* conversion of an OJ-aisle visitor: not in the data, an assumption */
        p->traffic_base = fit->mean_units[b] / q0 * exp(0.3 * eng_rng_normal(&r));
        /* The fitted slope is the short-run response to the logged price moves, which are mostly
         * temporary deals, so it includes the reference gain; take the gain/loss midpoint out of
         * it so the simulated log-log slope comes back near the fitted one. */
        p->ref_gain = unif(&r, 0.3, 0.8);
        p->ref_loss = p->ref_gain * unif(&r, 1.0, 1.5);
        double own = fit->elasticity[b] + 0.75 * (p->ref_gain + p->ref_loss);
        if (own > -0.3) own = -0.3;
        p->elasticity = own / (1 - q0);
        p->ref_lambda = unif(&r, 0.6, 0.85);
        p->log_promo_prob = unif(&r, 0.2, 0.4); /* deals in 45% of the real rows */
        p->promo_threshold = 0.9;
        p->n_comp = 3;
        for (int k = 0; k < p->n_comp; k++) p->comp_mean[k] = unif(&r, 0.8, 1.2);
        p->comp_promo_prob = 0.25;
        p->comp_sigma = unif(&r, 0.02, 0.06);
    }
    p->conv_base = log(q0 / (1 - q0));
    return env_sim_params_check(p);
}

/* ---- histories ---------------------------------------------------------------------------- */

void env_sim_log_free(env_sim_log *l) {
    if (!l) return;
    free(l->params);
    free(l->level);
    free(l->propensity);
    free(l->probs);
    free(l->ref);
    free(l);
}

static char *dup_printf(const char *fmt, int v) {
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    char *s = eng_malloc(strlen(buf) + 1);
    if (s) strcpy(s, buf);
    return s;
}

int env_sim_generate(env_sim_preset preset, const env_sim_fit *fit, int n_products, int n_periods,
                     int period_days, int32_t day0, uint64_t seed, db_history **hist_out, env_sim_log **log_out) {
    env_sim_gen_opts o = env_sim_gen_opts_default();
    o.preset = preset;
    o.fit = fit;
    o.period_days = period_days;
    o.day0 = day0;
    o.seed = seed;
    return env_sim_generate_ex(&o, n_products, n_periods, hist_out, log_out);
}

env_sim_gen_opts env_sim_gen_opts_default(void) {
    env_sim_gen_opts o = {.preset = ENV_SIM_PRESET_DEFAULT, .family = ENV_SIM_FAMILY_NONE, .period_days = 1,
                          .day0 = 19723, .seed = 1, .n_levels = 13, .level_lo = 0.70, .level_hi = 1.30,
                          .misset_lo = 0.70, .misset_hi = 1.35, .traffic_scale = 1.0,
                          .promo_rate = 0, .promo_lift_lo = 0.4, .promo_lift_hi = 0.9, .promo_hi = 0.86,
                          .normal_lo = 0.84};
    return o;
}

int env_sim_generate_ex(const env_sim_gen_opts *o, int n_products, int n_periods, db_history **hist_out,
                        env_sim_log **log_out) {
    const env_sim_preset preset = o->preset;
    const env_sim_fit *fit = o->fit;
    const int period_days = o->period_days;
    const int32_t day0 = o->day0;
    const uint64_t seed = o->seed;
    *hist_out = NULL;
    *log_out = NULL;
    if (n_products < 1 || n_periods < 1)
        return eng_err_set(ENG_EINVAL, "env_sim_generate: need at least one product and one period (got %d x %d)",
                           n_products, n_periods);
    int st = ENG_OK;
    db_history *h = NULL;
    env_sim_log *lg = eng_calloc(1, sizeof *lg);
    float *comp_buf = NULL;
    if (!lg) return ENG_ENOMEM;
    size_t P = (size_t)n_products, T = (size_t)n_periods, cells = P * T;
    lg->n_products = n_products, lg->n_periods = n_periods;
    if ((st = env_sim_grid_make(&lg->grid, o->n_levels, o->level_lo, o->level_hi))) goto cleanup;
    const int L = lg->grid.n;
    lg->params = eng_calloc(P, sizeof *lg->params);
    lg->level = eng_malloc(cells * sizeof(int16_t));
    lg->propensity = eng_malloc(cells * sizeof(double));
    lg->probs = eng_malloc(cells * (size_t)L * sizeof(double));
    lg->ref = eng_malloc(cells * sizeof(double));
    comp_buf = eng_malloc(T * ENV_SIM_MAX_COMP * sizeof(float));
    if (!lg->params || !lg->level || !lg->propensity || !lg->probs || !lg->ref || !comp_buf) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    int max_comp = 0;
    int64_t n_comp_vals = 0;
    for (int i = 0; i < n_products; i++) {
        if ((st = env_sim_draw_params(preset, fit, period_days, day0, seed, i, &lg->params[i]))) goto cleanup;
        if (o->family != ENV_SIM_FAMILY_NONE &&
            (st = env_sim_family_apply(o->family, o->misset_lo, o->misset_hi, seed, i, &lg->params[i])))
            goto cleanup;
        if (o->traffic_scale != 1.0) {
            if (!(o->traffic_scale > 0) || !isfinite(o->traffic_scale)) {
                st = eng_err_set(ENG_EINVAL, "env_sim_generate_ex: traffic_scale must be > 0");
                goto cleanup;
            }
            lg->params[i].traffic_base *= o->traffic_scale;
        }
        if (o->promo_rate > 0) { /* exogenous promotions with a known lift (own stream: seed, i, 6) */
            eng_rng r;
            eng_rng_seed(&r, eng_seed_derive(eng_seed_derive(seed, (uint64_t)i), 6));
            env_sim_params *q = &lg->params[i];
            q->promo_cal_prob = o->promo_rate;
            q->promo_cal_lift = o->promo_lift_lo + (o->promo_lift_hi - o->promo_lift_lo) * eng_rng_uniform(&r);
            q->promo_cal_hi = o->promo_hi;
            q->normal_lo = o->normal_lo;
            if ((st = env_sim_params_check(q))) goto cleanup;
        }
        if (lg->params[i].n_comp > max_comp) max_comp = lg->params[i].n_comp;
        n_comp_vals += (int64_t)lg->params[i].n_comp * n_periods;
    }
    if ((st = db_history_alloc(&h, n_products, n_periods, day0, period_days))) goto cleanup;
    h->n_competitors = max_comp;
    h->competitor_names = eng_calloc((size_t)(max_comp ? max_comp : 1), sizeof(char *));
    h->comp_id = eng_malloc((size_t)(n_comp_vals ? n_comp_vals : 1) * sizeof(int32_t));
    h->comp_price = eng_malloc((size_t)(n_comp_vals ? n_comp_vals : 1) * sizeof(float));
    if (!h->competitor_names || !h->comp_id || !h->comp_price) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    for (int k = 0; k < max_comp; k++)
        if (!(h->competitor_names[k] = dup_printf("comp%d", k + 1))) {
            st = ENG_ENOMEM;
            goto cleanup;
        }
    int64_t off = 0;
    for (int i = 0; i < n_products; i++) {
        const env_sim_params *p = &lg->params[i];
        size_t base = (size_t)i * T;
        if (!(h->product_id[i] = dup_printf("SIM%06d", i + 1)) || !(h->name[i] = dup_printf("simulated product %d", i + 1))) {
            st = ENG_ENOMEM;
            goto cleanup;
        }
        h->base_price[i] = p->base_price;
        h->unit_cost[i] = p->unit_cost;
        h->min_price[i] = p->base_price * lg->grid.mult[0];
        h->max_price[i] = p->base_price * lg->grid.mult[L - 1];
        env_sim_market m;
        if ((st = env_sim_market_init(&m, p, seed, i))) goto cleanup;
        eng_rng prng;
        eng_rng_seed(&prng, eng_seed_derive(eng_seed_derive(seed, (uint64_t)i), 3));
        env_sim_logging_ctx lc = {.prm = p};
        for (int t = 0; t < n_periods; t++) {
            size_t c = base + (size_t)t;
            env_sim_obs obs = {.t = t, .horizon = n_periods, .dow = period_days == 1 ? (p->dow0 + t) % 7 : -1,
                               .base_price = p->base_price, .unit_cost = p->unit_cost, .stock_left = m.stock_left,
                               .price = h->price + base, .units = h->units + base, .revenue = h->revenue + base,
                               .traffic = h->traffic + base, .promo = h->promo + base, .n_comp = p->n_comp,
                               .comp_hist = comp_buf, .comp_now = m.comp_now, .grid = &lg->grid,
                               .promo_now = m.promo_now};
            double price;
            if ((st = env_sim_policy_logging(&lc, i, t, &obs, &prng, &price))) goto cleanup;
            h->comp_off[c] = off;
            for (int k = 0; k < p->n_comp; k++) {
                comp_buf[(size_t)t * p->n_comp + k] = (float)m.comp_now[k];
                h->comp_id[off] = k;
                h->comp_price[off++] = (float)m.comp_now[k];
            }
            env_sim_outcome o;
            if ((st = env_sim_market_step(&m, price, &o))) goto cleanup;
            h->price[c] = o.price, h->units[c] = (float)o.units, h->revenue[c] = (float)o.revenue;
            h->traffic[c] = (float)o.traffic, h->promo[c] = (uint8_t)o.promo, h->present[c] = 1;
            lg->level[c] = (int16_t)lc.last_level;
            lg->propensity[c] = lc.last_propensity;
            memcpy(lg->probs + c * (size_t)L, lc.last_probs, (size_t)L * sizeof(double));
            lg->ref[c] = o.ref;
        }
    }
    h->comp_off[cells] = off;
cleanup:
    free(comp_buf);
    if (st) {
        db_history_free(h);
        env_sim_log_free(lg);
        return st;
    }
    *hist_out = h;
    *log_out = lg;
    return ENG_OK;
}
