/* env_action.c - price grid, continuous ratios and guardrails (see env_action.h). */
#include "env_action.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"

/* ---- grid ----------------------------------------------------------------------------- */
env_grid env_grid_default(void) {
    env_grid g = {21, 0.25};
    return g;
}

int env_grid_check(const env_grid *g) {
    if (!g || g->K < 2 || g->K > ENV_GRID_KMAX || !(g->band > 0.0 && g->band < 1.0))
        return eng_err_set(ENG_EINVAL, "price grid: need 2 <= K <= %d and 0 < band < 1 (got K %d, band %g)",
                           ENV_GRID_KMAX, g ? g->K : 0, g ? g->band : 0.0);
    return ENG_OK;
}

double env_grid_ratio(const env_grid *g, int k) {
    if (k < 0) k = 0;
    if (k > g->K - 1) k = g->K - 1;
    return (1.0 - g->band) + 2.0 * g->band * (double)k / (double)(g->K - 1);
}

int env_grid_level(const env_grid *g, double ratio, int *clipped) {
    if (!isfinite(ratio)) {
        if (clipped) *clipped = 1;
        return g->K / 2;
    }
    double step = 2.0 * g->band / (double)(g->K - 1);
    double x = (ratio - (1.0 - g->band)) / step;
    int clip = x < -0.5 - 1e-9 || x > (double)(g->K - 1) + 0.5 + 1e-9;
    double k = ceil(x - 0.5 - 1e-9); /* nearest, ties to the lower level */
    if (k < 0) k = 0;
    if (k > g->K - 1) k = g->K - 1;
    if (clipped) *clipped = clip;
    return (int)k;
}

double env_ratio_clip(const env_grid *g, double ratio, int *clipped) {
    double lo = 1.0 - g->band, hi = 1.0 + g->band;
    int clip = !isfinite(ratio) || ratio < lo - 1e-12 || ratio > hi + 1e-12;
    if (clipped) *clipped = clip;
    if (!isfinite(ratio)) return 1.0;
    return ratio < lo ? lo : ratio > hi ? hi : ratio;
}

int env_grid_map_price(const env_grid *g, double price, double ref, int *level, double *ratio, int *clipped) {
    if (!(isfinite(price) && price > 0.0 && isfinite(ref) && ref > 0.0))
        return eng_err_set(ENG_EINVAL, "price grid: cannot map price %g against reference %g", price, ref);
    double r = price / ref;
    int c1 = 0, c2 = 0;
    int k = env_grid_level(g, r, &c1);
    double rc = env_ratio_clip(g, r, &c2);
    if (level) *level = k;
    if (ratio) *ratio = rc;
    if (clipped) *clipped = c1 || c2;
    return ENG_OK;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int env_reference_price(const db_history *h, int p, double *ref, int *from_median) {
    if (!h || p < 0 || p >= h->n_products || !ref) return eng_err_set(ENG_EINVAL, "env_reference_price: bad product %d", p);
    if (from_median) *from_median = 0;
    double bp = h->base_price[p];
    if (isfinite(bp) && bp > 0.0) {
        *ref = bp;
        return ENG_OK;
    }
    const int T = h->n_periods;
    const size_t base = (size_t)p * (size_t)T;
    float *v = T > 0 ? malloc((size_t)T * sizeof *v) : NULL;
    int n = 0;
    if (T > 0 && !v) return eng_err_set(ENG_ENOMEM, "env_reference_price: out of memory");
    for (int t = 0; t < T; t++)
        if (h->present[base + (size_t)t] && isfinite(h->price[base + (size_t)t]) && h->price[base + (size_t)t] > 0.0f)
            v[n++] = h->price[base + (size_t)t];
    int rc = ENG_OK;
    if (n == 0) {
        rc = eng_err_set(ENG_EINVAL, "product %s: no base price and no observed price to use as reference",
                         h->product_id && h->product_id[p] ? h->product_id[p] : "?");
        goto done;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    *ref = n % 2 ? v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + (double)v[n / 2]);
    if (from_median) *from_median = 1;
done:
    free(v);
    return rc;
}

/* ---- guardrails ------------------------------------------------------------------------ */
static const char *const g_reason_names[ENV_GR_NBITS] = {
    "min_price", "max_price", "max_up",         "max_down",       "margin",         "rounded",
    "round_skipped", "invalid", "conflict", "dropped_change", "dropped_margin", "min_tick",
};

env_guard_cfg env_guard_default(void) {
    env_guard_cfg c;
    memset(&c, 0, sizeof c);
    c.min_margin = 0.0;
    c.default_max_change_pct = 25.0; /* README "What a pricing team should know" (NaN, none, before session 13) */
    c.n_endings = 2;
    c.endings_cents[0] = 99;
    c.endings_cents[1] = 49;
    return c;
}

int env_guard_cfg_check(const env_guard_cfg *cfg) {
    if (!cfg) return eng_err_set(ENG_EINVAL, "guardrails: NULL config");
    if (!(cfg->min_margin >= 0.0 && cfg->min_margin < 1.0))
        return eng_err_set(ENG_EINVAL, "guardrails: min_margin must be in [0, 1) (got %g)", cfg->min_margin);
    if (cfg->n_endings < 0 || cfg->n_endings > ENV_GUARD_MAX_ENDINGS)
        return eng_err_set(ENG_EINVAL, "guardrails: %d price endings (at most %d)", cfg->n_endings, ENV_GUARD_MAX_ENDINGS);
    for (int i = 0; i < cfg->n_endings; i++)
        if (cfg->endings_cents[i] < 0 || cfg->endings_cents[i] > 99)
            return eng_err_set(ENG_EINVAL, "guardrails: price ending %d is not 0..99 cents", cfg->endings_cents[i]);
    if (!isnan(cfg->default_max_change_pct) && !(cfg->default_max_change_pct >= 0.0))
        return eng_err_set(ENG_EINVAL, "guardrails: default max change %g%% must be >= 0 or NaN",
                           cfg->default_max_change_pct);
    return ENG_OK;
}

env_guard_bounds env_guard_bounds_of(const db_history *h, int p, double incumbent) {
    env_guard_bounds b = {h->min_price[p], h->max_price[p], h->max_change_pct[p], h->unit_cost[p], incumbent, NAN, NAN};
    return b;
}

env_guard_bounds env_guard_bounds_band(const db_history *h, int p, double incumbent, const env_grid *g) {
    env_guard_bounds b = env_guard_bounds_of(h, p, incumbent);
    double ref;
    int from_median;
    if (g && env_reference_price(h, p, &ref, &from_median) == ENG_OK) {
        b.band_lo = ref * (1.0 - g->band);
        b.band_hi = ref * (1.0 + g->band);
    } else {
        eng_err_clear();
    }
    return b;
}

/* Nearest whole-cent value in [lo_c, hi_c] to x_c among prices ending in `end` cents
 * (end < 0: any cent).  Returns -1 when none exists. */
static long long nearest_cents(double x_c, long long lo_c, long long hi_c, int end) {
    if (lo_c > hi_c) return -1;
    if (end < 0) {
        long long v = llround(x_c);
        return v < lo_c ? lo_c : v > hi_c ? hi_c : v;
    }
    long long n0 = (long long)floor((x_c - end) / 100.0);
    long long best = -1;
    double bd = INFINITY;
    for (long long n = n0; n <= n0 + 1; n++) {
        long long v = 100 * n + end;
        if (v < lo_c || v > hi_c || v <= 0) continue;
        double d = fabs((double)v - x_c);
        if (d < bd) { /* strict: ties keep the lower price */
            bd = d;
            best = v;
        }
    }
    return best;
}

int env_guard_apply(const env_guard_cfg *cfg, const env_guard_bounds *b, double candidate, double *out,
                    uint32_t *reasons, double *lo_out, double *hi_out) {
    int rc = env_guard_cfg_check(cfg);
    if (rc) return rc;
    if (!b || !out) return eng_err_set(ENG_EINVAL, "guardrails: NULL argument");
    if (isfinite(b->min_price) && isfinite(b->max_price) && b->min_price > b->max_price)
        return eng_err_set(ENG_EINVAL, "guardrails: min_price %g > max_price %g", b->min_price, b->max_price);
    if (isfinite(b->max_price) && b->max_price < 0.01)
        return eng_err_set(ENG_EINVAL, "guardrails: max_price %g is below one cent", b->max_price);
    uint32_t why = 0;
    const double tick = 0.01;
    int have_min = isfinite(b->min_price), have_max = isfinite(b->max_price);
    int have_inc = isfinite(b->incumbent) && b->incumbent > 0.0;
    double mc = isfinite(b->max_change_pct) ? b->max_change_pct : cfg->default_max_change_pct;
    int have_chg = have_inc && isfinite(mc) && mc >= 0.0;
    int have_mrg = isfinite(b->unit_cost) && b->unit_cost > 0.0;
    double chg_lo = have_chg ? b->incumbent * (1.0 - mc / 100.0) : -INFINITY;
    double chg_hi = have_chg ? b->incumbent * (1.0 + mc / 100.0) : INFINITY;
    double mrg_lo = have_mrg ? b->unit_cost / (1.0 - cfg->min_margin) : -INFINITY;
    double hard_lo = fmax(tick, have_min ? b->min_price : -INFINITY);
    double hard_hi = have_max ? b->max_price : INFINITY;

    /* 1-2: the interval, relaxing the lowest-priority constraints on conflict */
    double lo = fmax(hard_lo, fmax(mrg_lo, chg_lo)), hi = fmin(hard_hi, chg_hi);
    if (lo > hi) {
        why |= ENV_GR_CONFLICT;
        if (have_chg) {
            have_chg = 0;
            why |= ENV_GR_DROPPED_CHANGE;
            lo = fmax(hard_lo, mrg_lo);
            hi = hard_hi;
        }
        if (lo > hi && have_mrg) {
            have_mrg = 0;
            why |= ENV_GR_DROPPED_MARGIN;
            lo = hard_lo;
        }
    }
    /* 3: invalid candidate */
    double x = candidate;
    if (!isfinite(x) || x <= 0.0) {
        why |= ENV_GR_INVALID;
        x = have_inc ? b->incumbent : lo;
    }
    /* 4: clip, naming every active bound the price violated */
    if (x < lo) {
        if (have_min && x < b->min_price) why |= ENV_GR_MIN_PRICE;
        if (have_mrg && x < mrg_lo) why |= ENV_GR_MARGIN;
        if (have_chg && x < chg_lo) why |= ENV_GR_MAX_DOWN;
        if (x < tick) why |= ENV_GR_MIN_TICK;
        x = lo;
    } else if (x > hi) {
        if (have_max && x > b->max_price) why |= ENV_GR_MAX_PRICE;
        if (have_chg && x > chg_hi) why |= ENV_GR_MAX_UP;
        x = hi;
    }
    /* 5: rounding inside [lo, hi], and inside the agents' price band when the price lies in it */
    double rlo = lo, rhi = hi;
    if (b->band_lo > 0 && b->band_hi > b->band_lo && x >= b->band_lo - 1e-9 && x <= b->band_hi + 1e-9 &&
        fmax(lo, b->band_lo) <= fmin(hi, b->band_hi)) {
        rlo = fmax(lo, b->band_lo);
        rhi = fmin(hi, b->band_hi);
    }
    double x_c = x * 100.0;
    long long lo_c = (long long)ceil(rlo * 100.0 - 1e-6);
    long long hi_c = isfinite(rhi) ? (long long)floor(rhi * 100.0 + 1e-6) : LLONG_MAX / 4;
    long long best = -1;
    double bd = INFINITY;
    for (int i = 0; i < cfg->n_endings; i++) {
        long long v = nearest_cents(x_c, lo_c, hi_c, cfg->endings_cents[i]);
        if (v < 0) continue;
        double d = fabs((double)v - x_c);
        if (d < bd || (d == bd && v < best)) {
            bd = d;
            best = v;
        }
    }
    if (best < 0) {
        if (cfg->n_endings > 0) why |= ENV_GR_ROUND_SKIPPED;
        best = nearest_cents(x_c, lo_c, hi_c, -1);
    }
    double y = x;
    if (best >= 0) y = (double)best / 100.0;
    else why |= ENV_GR_ROUND_SKIPPED; /* not even a whole cent fits: keep the clipped price */
    if (fabs(y - x) > 1e-9) why |= ENV_GR_ROUNDED;
    *out = y;
    if (reasons) *reasons = why;
    if (lo_out) *lo_out = lo;
    if (hi_out) *hi_out = hi;
    return ENG_OK;
}

const char *env_guard_reason_name(uint32_t bit) {
    for (int i = 0; i < ENV_GR_NBITS; i++)
        if (bit == (1u << i)) return g_reason_names[i];
    return NULL;
}

void env_guard_reason_str(uint32_t reasons, char *buf, size_t n) {
    if (!buf || n == 0) return;
    buf[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < ENV_GR_NBITS; i++) {
        if (!(reasons & (1u << i))) continue;
        const char *s = g_reason_names[i];
        size_t need = strlen(s) + (len ? 1 : 0);
        if (len + need + 1 > n) break;
        if (len) buf[len++] = '|';
        memcpy(buf + len, s, strlen(s) + 1);
        len += strlen(s);
    }
}
