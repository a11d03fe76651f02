/* ope_boot.c - shared pieces of offline evaluation: names, defaults, the ratio bootstrap, filling a result. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ope.h"

static const char *const k_names[OPE_N_EST] = {
    "replay", "ips", "snips", "dm", "dr", "switch_dr", "kips", "snkips", "kdr", "pdis", "wpdis", "fqe",
};

const char *ope_est_name(ope_est e) {
    return (int)e >= 0 && e < OPE_N_EST ? k_names[e] : NULL;
}

ope_config ope_config_default(void) {
    ope_config c;
    memset(&c, 0, sizeof c);
    c.seed = 1;
    c.n_boot = 1000;
    c.alpha = 0.05;
    c.switch_tau = 50.0;
    c.ridge_lambda = 1.0;
    c.cross_folds = 5;
    c.gamma = 1.0;
    c.bandwidth = 0.0;
    c.min_ess_frac = 0.05;
    c.min_ess_abs = 30.0;
    c.max_unsupported = 0.01;
    c.min_pscore = 1e-6;
    c.refit_boot = 200;
    return c;
}

/* The k-th smallest of v[0..m-1] (0-based; v finite), by selection: v is reordered so that
 * v[k] holds it, everything before is <= and everything after >= it.  Expected O(m). */
static double select_kth(double *v, int m, int k) {
    int l = 0, r = m - 1;
    while (l < r) {
        double x = v[l + (r - l) / 2];
        int i = l, j = r;
        while (i <= j) {
            while (v[i] < x) i++;
            while (v[j] > x) j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j], v[j] = t;
                i++, j--;
            }
        }
        if (k <= j) r = j;
        else if (k >= i) l = i;
        else break; /* j < k < i: v[k] == x */
    }
    return v[k];
}

/* Percentile of v[0..m-1] (finite, any order; reordered) at probability p, linear
 * interpolation between order statistics (Hyndman-Fan type 7): the numbers a full sort gives,
 * by selecting the two order statistics needed. */
static double percentile_select(double *v, int m, double p) {
    if (m == 1) return v[0];
    double h = p * (m - 1);
    int lo = (int)floor(h);
    if (lo >= m - 1) return select_kth(v, m, m - 1);
    double f = h - lo, a = select_kth(v, m, lo), b = v[lo + 1];
    for (int k = lo + 2; k < m; k++) /* the next order statistic: the least of the upper part */
        if (v[k] < b) b = v[k];
    return a + f * (b - a);
}

void ope_boot_summary(double *vals, int B, double alpha, double *lo, double *hi, double *se) {
    int m = 0;
    double s = 0, s2 = 0;
    for (int b = 0; b < B; b++)
        if (isfinite(vals[b])) {
            vals[m++] = vals[b];
            s += vals[b];
        }
    if (m == 0 || (double)(B - m) > 0.05 * B) {
        *lo = *hi = NAN;
        if (se) *se = NAN;
        return;
    }
    double mean = s / m;
    for (int k = 0; k < m; k++) s2 += (vals[k] - mean) * (vals[k] - mean);
    *lo = percentile_select(vals, m, alpha / 2);
    *hi = percentile_select(vals, m, 1 - alpha / 2);
    if (se) *se = m > 1 ? sqrt(s2 / (m - 1)) : 0.0;
}

int ope_boot_ratio(const double *num, const double *den, int n, int E, int B, double alpha,
                   uint64_t seed, double *est, double *lo, double *hi, double *se) {
    if (!num || n <= 0 || E <= 0 || B < 0 || !est || !(alpha > 0 && alpha < 1))
        return eng_err_set(ENG_EINVAL, "ope_boot_ratio: bad arguments (n=%d E=%d B=%d alpha=%g)", n, E, B,
                           alpha);
    if (B > 0 && (!lo || !hi))
        return eng_err_set(ENG_EINVAL, "ope_boot_ratio: interval outputs are NULL");
    int st = ENG_OK;
    double *sn = NULL, *sd = NULL, *boot = NULL, *col = NULL;
    sn = eng_calloc((size_t)E, sizeof *sn);
    sd = eng_calloc((size_t)E, sizeof *sd);
    if (!sn || !sd) { st = ENG_ENOMEM; goto cleanup; }

    for (int i = 0; i < n; i++)
        for (int e = 0; e < E; e++) {
            sn[e] += num[(size_t)i * E + e];
            sd[e] += den ? den[(size_t)i * E + e] : 1.0;
        }
    for (int e = 0; e < E; e++) est[e] = sd[e] != 0.0 ? sn[e] / sd[e] : NAN;
    if (B == 0) {
        for (int e = 0; e < E; e++) {
            if (lo) lo[e] = NAN;
            if (hi) hi[e] = NAN;
            if (se) se[e] = NAN;
        }
        goto cleanup;
    }

    boot = eng_malloc((size_t)B * E * sizeof *boot);
    col = eng_malloc((size_t)B * sizeof *col);
    if (!boot || !col) { st = ENG_ENOMEM; goto cleanup; }
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    const uint64_t lim = eng_rng_below_lim((uint64_t)n); /* eng_rng_below's draws, the limit once */
    for (int b = 0; b < B; b++) {
        memset(sn, 0, (size_t)E * sizeof *sn);
        memset(sd, 0, (size_t)E * sizeof *sd);
        for (int i = 0; i < n; i++) {
            size_t j = (size_t)eng_rng_below_at(&rng, (uint64_t)n, lim);
            const double *nj = num + j * E;
            for (int e = 0; e < E; e++) sn[e] += nj[e];
            if (den) {
                const double *dj = den + j * E;
                for (int e = 0; e < E; e++) sd[e] += dj[e];
            }
        }
        for (int e = 0; e < E; e++)
            boot[(size_t)b * E + e] = den ? (sd[e] != 0.0 ? sn[e] / sd[e] : NAN) : sn[e] / n;
    }
    for (int e = 0; e < E; e++) {
        for (int b = 0; b < B; b++) col[b] = boot[(size_t)b * E + e];
        ope_boot_summary(col, B, alpha, &lo[e], &hi[e], se ? &se[e] : NULL);
    }

cleanup:
    free(sn);
    free(sd);
    free(boot);
    free(col);
    return st;
}

void ope_value_set(ope_value *v, double est, double lo, double hi, double se, int n_used) {
    v->available = 1;
    v->estimate = est;
    v->ci_low = lo;
    v->ci_high = hi;
    v->boot_se = se;
    v->n_used = n_used;
}
