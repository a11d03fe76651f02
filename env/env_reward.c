/* env_reward.c - rewards of the pricing MDP (rules in env_reward.h and README). */
#include "env_reward.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eng_util.h"

static const char *const g_kind_names[ENV_REWARD_N] = {"revenue", "rcr", "drcr", "profit", "pcr", "dpcr"};
static const char *const g_fb_names[ENV_FALLBACK_N] = {"proxy1", "level", "error"};

env_reward_cfg env_reward_default(void) {
    env_reward_cfg c = {ENV_REWARD_DRCR, 1, ENV_FALLBACK_PROXY1, 0.5};
    return c;
}

const char *env_reward_name(env_reward_kind k) {
    return (k >= 0 && k < ENV_REWARD_N) ? g_kind_names[k] : "?";
}

const char *env_fallback_name(env_fallback f) { return (f >= 0 && f < ENV_FALLBACK_N) ? g_fb_names[f] : "?"; }

int env_reward_parse(const char *s, env_reward_kind *out) {
    for (int k = 0; s && k < ENV_REWARD_N; k++)
        if (strcmp(s, g_kind_names[k]) == 0) {
            *out = (env_reward_kind)k;
            return ENG_OK;
        }
    return eng_err_set(ENG_EINVAL, "unknown reward '%s' (use revenue, rcr, drcr, profit, pcr or dpcr)", s ? s : "");
}

int env_fallback_parse(const char *s, env_fallback *out) {
    for (int k = 0; s && k < ENV_FALLBACK_N; k++)
        if (strcmp(s, g_fb_names[k]) == 0) {
            *out = (env_fallback)k;
            return ENG_OK;
        }
    return eng_err_set(ENG_EINVAL, "unknown traffic fallback '%s' (use proxy1, level or error)", s ? s : "");
}

int env_reward_cfg_check(const env_reward_cfg *cfg) {
    if (!cfg) return eng_err_set(ENG_EINVAL, "reward config: NULL");
    if (cfg->kind < 0 || cfg->kind >= ENV_REWARD_N) return eng_err_set(ENG_EINVAL, "reward config: bad kind %d", (int)cfg->kind);
    if (cfg->tau < 1) return eng_err_set(ENG_EINVAL, "reward config: tau must be >= 1 (got %d)", cfg->tau);
    if (cfg->fallback < 0 || cfg->fallback >= ENV_FALLBACK_N)
        return eng_err_set(ENG_EINVAL, "reward config: bad traffic fallback %d", (int)cfg->fallback);
    if (!(cfg->min_traffic_frac >= 0.0 && cfg->min_traffic_frac <= 1.0))
        return eng_err_set(ENG_EINVAL, "reward config: min_traffic_frac must be in [0, 1] (got %g)", cfg->min_traffic_frac);
    return ENG_OK;
}

int env_reward_needs_traffic(env_reward_kind k) {
    switch (k) {
    case ENV_REWARD_RCR:
    case ENV_REWARD_PCR: return 1;
    case ENV_REWARD_DRCR:
    case ENV_REWARD_DPCR: return 2;
    default: return 0;
    }
}

int env_reward_is_profit(env_reward_kind k) {
    return k == ENV_REWARD_PROFIT || k == ENV_REWARD_PCR || k == ENV_REWARD_DPCR;
}

/* 0: traffic > 0; 1: traffic 0 and no sales (rate 0); 2: missing. */
static int traffic_state(const env_obs *o) {
    if (isfinite(o->traffic) && o->traffic > 0.0) return 0;
    if (o->traffic == 0.0 && o->revenue == 0.0 && !(o->units > 0.0)) return 1;
    return 2;
}

static double numerator(const env_obs *o, double unit_cost, int profit) {
    if (!isfinite(o->revenue)) return NAN;
    if (!profit) return o->revenue;
    if (!isfinite(unit_cost) || !isfinite(o->units)) return NAN;
    return o->revenue - unit_cost * o->units;
}

double env_rate(const env_obs *o, double unit_cost, int profit, int proxy1) {
    double num = numerator(o, unit_cost, profit);
    if (!isfinite(num)) return NAN;
    if (proxy1) return num;
    switch (traffic_state(o)) {
    case 0: return num / o->traffic;
    case 1: return 0.0;
    default: return NAN;
    }
}

int env_reward_value(const env_reward_cfg *cfg, double unit_cost, const env_obs *cur, const env_obs *prev,
                     int use_fallback, double *r) {
    int rc = env_reward_cfg_check(cfg);
    if (rc) return rc;
    if (!cur || !r) return eng_err_set(ENG_EINVAL, "env_reward_value: NULL argument");
    int profit = env_reward_is_profit(cfg->kind);
    if (profit && !isfinite(unit_cost))
        return eng_err_set(ENG_EINVAL, "reward %s needs a unit cost", env_reward_name(cfg->kind));
    int need = env_reward_needs_traffic(cfg->kind);
    *r = NAN;
    if (need == 0) {
        *r = numerator(cur, unit_cost, profit);
        return ENG_OK;
    }
    int proxy1 = 0;
    if (use_fallback) {
        if (cfg->fallback == ENV_FALLBACK_ERROR)
            return eng_err_set(ENG_EINVAL, "reward %s needs traffic, which is missing (traffic fallback 'error')",
                               env_reward_name(cfg->kind));
        if (cfg->fallback == ENV_FALLBACK_LEVEL) {
            *r = numerator(cur, unit_cost, profit);
            return ENG_OK;
        }
        proxy1 = 1;
    }
    double a = env_rate(cur, unit_cost, profit, proxy1);
    if (need == 1) {
        *r = a;
        return ENG_OK;
    }
    if (!prev) return ENG_OK; /* NaN: no earlier period */
    double b = env_rate(prev, unit_cost, profit, proxy1);
    *r = (isfinite(a) && isfinite(b)) ? a - b : NAN;
    return ENG_OK;
}

void env_reward_info_add(env_reward_info *acc, const env_reward_info *x) {
    acc->n_products += x->n_products;
    acc->n_fallback_products += x->n_fallback_products;
    acc->n_periods += x->n_periods;
    acc->n_present += x->n_present;
    acc->n_traffic_missing += x->n_traffic_missing;
    acc->n_traffic_zero += x->n_traffic_zero;
    acc->n_defined += x->n_defined;
}

static env_obs obs_at(const db_history *h, size_t c) {
    env_obs o = {h->revenue[c], h->units[c], h->traffic[c]};
    return o;
}

int env_reward_series(const db_history *h, int p, const env_reward_cfg *cfg, float *r, env_reward_info *info) {
    int rc = env_reward_cfg_check(cfg);
    if (rc) return rc;
    if (!h || !r || p < 0 || p >= h->n_products)
        return eng_err_set(ENG_EINVAL, "env_reward_series: product %d out of range", p);
    const int T = h->n_periods;
    const size_t base = (size_t)p * (size_t)T;
    const char *pid = h->product_id && h->product_id[p] ? h->product_id[p] : "?";
    double cost = h->unit_cost[p];
    if (env_reward_is_profit(cfg->kind) && !isfinite(cost))
        return eng_err_set(ENG_EINVAL, "product %s: reward %s needs a unit cost, which is missing", pid,
                           env_reward_name(cfg->kind));
    env_reward_info in = {1, 0, T, 0, 0, 0, 0};
    for (int t = 0; t < T; t++) {
        if (!h->present[base + (size_t)t]) continue;
        in.n_present++;
        env_obs o = obs_at(h, base + (size_t)t);
        int ts = traffic_state(&o);
        in.n_traffic_missing += (ts == 2);
        in.n_traffic_zero += (ts == 1);
    }
    int use_fallback = 0;
    if (env_reward_needs_traffic(cfg->kind) && in.n_present > 0) {
        double known = (double)(in.n_present - in.n_traffic_missing) / (double)in.n_present;
        use_fallback = known < cfg->min_traffic_frac || in.n_traffic_missing == in.n_present;
        if (use_fallback && cfg->fallback == ENV_FALLBACK_ERROR)
            return eng_err_set(ENG_EINVAL,
                               "product %s: reward %s needs traffic, missing for %ld of %ld periods (traffic fallback "
                               "'error')",
                               pid, env_reward_name(cfg->kind), in.n_traffic_missing, in.n_present);
    }
    in.n_fallback_products = use_fallback;
    for (int t = 0; t < T; t++) {
        r[t] = NAN;
        size_t c = base + (size_t)t;
        if (!h->present[c]) continue;
        env_obs cur = obs_at(h, c), prev;
        const env_obs *pp = NULL;
        if (t - cfg->tau >= 0 && h->present[c - (size_t)cfg->tau]) {
            prev = obs_at(h, c - (size_t)cfg->tau);
            pp = &prev;
        }
        double v;
        rc = env_reward_value(cfg, cost, &cur, pp, use_fallback, &v);
        if (rc) return rc;
        if (isfinite(v)) {
            r[t] = (float)v;
            in.n_defined++;
        }
    }
    if (info) *info = in;
    return ENG_OK;
}

void env_reward_describe(const env_reward_cfg *cfg, const env_reward_info *info, char *buf, size_t n) {
    if (!buf || n == 0) return;
    const char *kn = env_reward_name(cfg->kind);
    int need = env_reward_needs_traffic(cfg->kind);
    char head[64];
    if (need == 2) snprintf(head, sizeof head, "reward %s (tau %d)", kn, cfg->tau);
    else snprintf(head, sizeof head, "reward %s", kn);
    if (need == 0) {
        snprintf(buf, n, "%s: does not use traffic; %ld of %ld periods have a reward", head, info->n_defined,
                 info->n_periods);
        return;
    }
    if (info->n_traffic_missing == 0) {
        snprintf(buf, n, "%s: traffic known in all %ld present periods (%ld with zero traffic and no sales count as "
                 "rate 0); %ld periods have a reward", head, info->n_present, info->n_traffic_zero, info->n_defined);
        return;
    }
    const char *what;
    int profit = env_reward_is_profit(cfg->kind);
    if (cfg->fallback == ENV_FALLBACK_LEVEL) what = profit ? "profit per period itself" : "revenue per period itself";
    else if (need == 2) what = profit ? "the difference of profit per period (traffic proxy 1)"
                                      : "the difference of revenue per period (traffic proxy 1)";
    else what = profit ? "profit per period (traffic proxy 1)" : "revenue per period (traffic proxy 1)";
    snprintf(buf, n,
             "%s: traffic missing for %ld of %ld present periods: %ld of %ld products use %s instead of %s; in the "
             "other products periods without traffic have no reward",
             head, info->n_traffic_missing, info->n_present, info->n_fallback_products, info->n_products, what, kn);
}
