/* feat.c - state features (see feat.h for the contract, README "Pricing MDP" for the rules).
 *
 * Missing-value rules (all computed from periods < t):
 *   incumbent price  last observed price (present, finite, > 0) before t; when p_{t-1} itself
 *                    is not observed, price_missing = 1 and the last earlier observed price is
 *                    used; with none at all, the base price; with no base price either, 0.
 *   price ratios     need a finite base price > 0; otherwise ratio 1 and discount 0.
 *   moving averages  mean of the observed prices in the window; none -> the incumbent.
 *   window sums      sum over observed periods scaled to the window length
 *                    (sum * w / n_observed), i.e. mean imputation; none observed -> 0.
 *                    Periods before the first period of the history count as missing.
 *   conversion       sum units / sum traffic over periods with both known; undefined
 *                    (no known traffic or traffic sum 0) -> conv_7 = 0 and conv_missing = 1;
 *                    an undefined conv_1 takes conv_7.
 *   competitors      prices of the latest period in t-7..t-1 with any finite competitor
 *                    price > 0; none -> rel_min = rel_mean = 1, rank = 0.5, comp_missing = 1.
 *   promo_prev       promo of t-1 when that row is present, else 0.
 */
#include "feat.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "eng_date.h"
#include "eng_hash.h"
#include "eng_util.h"

static const char *const g_names[FEAT_N] = {
    "price_cur",     "price_ratio_base", "price_ma3",     "price_ma12",      "discount_depth",
    "price_missing", "units_1",          "units_3",       "units_7",         "revenue_1",
    "revenue_3",     "revenue_7",        "sales_missing_frac", "traffic_1",  "traffic_3",
    "traffic_7",     "conv_1",           "conv_7",        "traffic_missing_frac", "conv_missing",
    "comp_rel_min",  "comp_rel_mean",    "comp_rank",     "comp_missing",    "promo_prev",
    "dow_sin",       "dow_cos",          "woy_sin",       "woy_cos",
};

static const feat_kind g_kinds[FEAT_N] = {
    FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_CONT,
    FEAT_KIND_FLAG, FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_CONT,
    FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_FLAG, FEAT_KIND_CONT, FEAT_KIND_CONT,
    FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_FLAG, FEAT_KIND_FLAG,
    FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_CONT, FEAT_KIND_FLAG, FEAT_KIND_FLAG,
    FEAT_KIND_CYCLIC, FEAT_KIND_CYCLIC, FEAT_KIND_CYCLIC, FEAT_KIND_CYCLIC,
};

static feat_layout g_layout;
static pthread_once_t g_layout_once = PTHREAD_ONCE_INIT;

static void layout_init(void) {
    {
        uint64_t h = ENG_FNV1A_BASIS;
        h = eng_fnv1a(h, FEAT_LAYOUT_VERSION, sizeof FEAT_LAYOUT_VERSION);
        for (int i = 0; i < FEAT_N; i++) {
            h = eng_fnv1a(h, g_names[i], strlen(g_names[i]) + 1);
            unsigned char k = (unsigned char)g_kinds[i];
            h = eng_fnv1a(h, &k, 1);
        }
        g_layout.n = FEAT_N;
        g_layout.names = g_names;
        g_layout.kinds = g_kinds;
        g_layout.version = FEAT_LAYOUT_VERSION;
        g_layout.hash = h;
    }
}

const feat_layout *feat_layout_get(void) {
    pthread_once(&g_layout_once, layout_init);
    return &g_layout;
}

int feat_index_of(const char *name) {
    for (int i = 0; i < FEAT_N; i++)
        if (name && strcmp(g_names[i], name) == 0) return i;
    return -1;
}

int feat_layout_check(int n, uint64_t hash, const char *what) {
    const feat_layout *L = feat_layout_get();
    if (n != L->n || hash != L->hash)
        return eng_err_set(ENG_EFORMAT,
                           "%s: feature layout mismatch: saved %d features (hash %016llx), this build has %d "
                           "features of layout %s (hash %016llx)",
                           what ? what : "(input)", n, (unsigned long long)hash, L->n, L->version,
                           (unsigned long long)L->hash);
    return ENG_OK;
}

/* ---- helpers ------------------------------------------------------------------------ */
static int cell_ok(const db_history *h, size_t c) { return h->present[c] != 0; }

static int price_ok(const db_history *h, size_t c) {
    return cell_ok(h, c) && isfinite(h->price[c]) && h->price[c] > 0.0f;
}

/* Sum of col over t-w..t-1 with mean imputation; *n_obs = observed periods. */
static double window_sum(const db_history *h, const float *col, size_t base, int t, int w, int *n_obs) {
    double s = 0.0;
    int n = 0;
    for (int u = t - w; u < t; u++) {
        if (u < 0) continue;
        size_t c = base + (size_t)u;
        if (!cell_ok(h, c) || !isfinite(col[c]) || col[c] < 0.0f) continue;
        s += col[c];
        n++;
    }
    if (n_obs) *n_obs = n;
    return n > 0 ? s * (double)w / (double)n : 0.0;
}

/* Conversion over t-w..t-1: units / traffic over periods with both known; -1 if undefined. */
static double window_conv(const db_history *h, size_t base, int t, int w) {
    double su = 0.0, sv = 0.0;
    int n = 0;
    for (int u = t - w; u < t; u++) {
        if (u < 0) continue;
        size_t c = base + (size_t)u;
        if (!cell_ok(h, c) || !isfinite(h->units[c]) || !isfinite(h->traffic[c]) || h->traffic[c] < 0.0f ||
            h->units[c] < 0.0f)
            continue;
        su += h->units[c];
        sv += h->traffic[c];
        n++;
    }
    if (n == 0 || sv <= 0.0) return -1.0;
    return su / sv;
}

static double price_ma(const db_history *h, size_t base, int t, int w, double fallback) {
    double s = 0.0;
    int n = 0;
    for (int u = t - w; u < t; u++) {
        if (u < 0) continue;
        if (!price_ok(h, base + (size_t)u)) continue;
        s += h->price[base + (size_t)u];
        n++;
    }
    return n > 0 ? s / n : fallback;
}

/* Day of the year (0-based) of a day count since 1970-01-01 (proleptic Gregorian). */
static int day_of_year(int64_t z) {
    int y, m, d;
    eng_civil_from_days((int32_t)z, &y, &m, &d);
    return (int)(z - eng_days_from_civil(y, 1, 1));
}

double feat_incumbent_price(const db_history *h, int p, int t, int *missing) {
    if (missing) *missing = 1;
    if (!h || p < 0 || p >= h->n_products || t < 0 || t > h->n_periods) return NAN;
    const size_t base = (size_t)p * (size_t)h->n_periods;
    for (int u = t - 1; u >= 0; u--) {
        if (price_ok(h, base + (size_t)u)) {
            if (missing) *missing = (u != t - 1);
            return h->price[base + (size_t)u];
        }
    }
    double bp = h->base_price[p];
    return isfinite(bp) && bp > 0.0 ? bp : 0.0;
}

int feat_state(const db_history *h, int p, int t, float *out) {
    if (!h || !out || p < 0 || p >= h->n_products || t < 0 || t > h->n_periods)
        return eng_err_set(ENG_EINVAL, "feat_state: product %d / period %d out of range (%d x %d)", p, t,
                           h ? h->n_products : 0, h ? h->n_periods : 0);
    const size_t base = (size_t)p * (size_t)h->n_periods;
    double bp = h->base_price[p];
    int have_base = isfinite(bp) && bp > 0.0;

    /* price group */
    int missing = 1;
    double inc = feat_incumbent_price(h, p, t, &missing);
    double ratio = have_base ? inc / bp : 1.0;
    out[FEAT_PRICE_CUR] = (float)inc;
    out[FEAT_PRICE_RATIO_BASE] = (float)ratio;
    out[FEAT_PRICE_MA3] = (float)price_ma(h, base, t, 3, inc);
    out[FEAT_PRICE_MA12] = (float)price_ma(h, base, t, 12, inc);
    out[FEAT_DISCOUNT_DEPTH] = (float)(ratio < 1.0 ? 1.0 - ratio : 0.0);
    out[FEAT_PRICE_MISSING] = (float)missing;

    /* sales group */
    static const int wins[3] = {1, 3, 7};
    int n_obs = 0;
    for (int i = 0; i < 3; i++) {
        out[FEAT_UNITS_1 + i] = (float)window_sum(h, h->units, base, t, wins[i], &n_obs);
        out[FEAT_REVENUE_1 + i] = (float)window_sum(h, h->revenue, base, t, wins[i], NULL);
    }
    /* n_obs is now the 7-window count of known units */
    out[FEAT_SALES_MISSING_FRAC] = (float)(7 - n_obs) / 7.0f;

    /* traffic group */
    for (int i = 0; i < 3; i++) out[FEAT_TRAFFIC_1 + i] = (float)window_sum(h, h->traffic, base, t, wins[i], &n_obs);
    out[FEAT_TRAFFIC_MISSING_FRAC] = (float)(7 - n_obs) / 7.0f;
    double c7 = window_conv(h, base, t, 7), c1 = window_conv(h, base, t, 1);
    out[FEAT_CONV_MISSING] = c7 < 0.0 ? 1.0f : 0.0f;
    if (c7 < 0.0) c7 = 0.0;
    if (c1 < 0.0) c1 = c7;
    out[FEAT_CONV_1] = (float)c1;
    out[FEAT_CONV_7] = (float)c7;

    /* competitiveness */
    double cmin = INFINITY, csum = 0.0, below = 0.0;
    int nc = 0;
    for (int u = t - 1; u >= 0 && u >= t - 7 && nc == 0; u--) {
        size_t c = base + (size_t)u;
        for (int64_t k = h->comp_off[c]; k < h->comp_off[c + 1]; k++) {
            double cp = h->comp_price[k];
            if (!isfinite(cp) || cp <= 0.0) continue;
            nc++;
            csum += cp;
            if (cp < cmin) cmin = cp;
            if (cp < inc) below += 1.0;
            else if (cp == inc) below += 0.5;
        }
    }
    if (nc > 0 && inc > 0.0) {
        out[FEAT_COMP_REL_MIN] = (float)(inc / cmin);
        out[FEAT_COMP_REL_MEAN] = (float)(inc / (csum / nc));
        out[FEAT_COMP_RANK] = (float)(below / nc);
        out[FEAT_COMP_MISSING] = 0.0f;
    } else {
        out[FEAT_COMP_REL_MIN] = 1.0f;
        out[FEAT_COMP_REL_MEAN] = 1.0f;
        out[FEAT_COMP_RANK] = 0.5f;
        out[FEAT_COMP_MISSING] = 1.0f;
    }
    out[FEAT_PROMO_PREV] = (t >= 1 && cell_ok(h, base + (size_t)(t - 1)) && h->promo[base + (size_t)(t - 1)]) ? 1.0f : 0.0f;

    /* calendar of period t */
    int64_t day = (int64_t)h->day0 + (int64_t)t * h->period_days;
    int dow = (int)(((day + 3) % 7 + 7) % 7); /* 0 = Monday (1970-01-01 was a Thursday) */
    int woy = day_of_year(day) / 7;           /* 0..52 */
    const double two_pi = 6.283185307179586;
    out[FEAT_DOW_SIN] = (float)sin(two_pi * dow / 7.0);
    out[FEAT_DOW_COS] = (float)cos(two_pi * dow / 7.0);
    out[FEAT_WOY_SIN] = (float)sin(two_pi * woy / 53.0);
    out[FEAT_WOY_COS] = (float)cos(two_pi * woy / 53.0);
    return ENG_OK;
}

int feat_states(const db_history *h, int p, int t0, int t1, float *out) {
    if (!h || t0 < 0 || t1 < t0 || t1 > h->n_periods + 1)
        return eng_err_set(ENG_EINVAL, "feat_states: bad period range [%d, %d)", t0, t1);
    for (int t = t0; t < t1; t++) {
        int rc = feat_state(h, p, t, out + (size_t)(t - t0) * FEAT_N);
        if (rc) return rc;
    }
    return ENG_OK;
}
