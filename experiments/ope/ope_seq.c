/* ope_seq.c - off-policy estimators for continuous actions (kernel-smoothed IPS / SN-IPS / DR,
 * plus DM from the given model) and for trajectories (PDIS, WPDIS). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_hash.h"
#include "ope.h"

/* quantile of sorted s (type 7) */
static double q7(const double *s, int n, double p) {
    double h = p * (n - 1);
    int lo = (int)floor(h);
    if (lo >= n - 1) return s[n - 1];
    return s[lo] + (h - lo) * (s[lo + 1] - s[lo]);
}

double ope_silverman_bandwidth(const double *a, int n) {
    if (!a || n < 2) return 0.0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return 0.0;
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += a[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (a[i] - m) * (a[i] - m);
    double sd = sqrt(v / (n - 1));
    memcpy(s, a, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, eng_cmp_double);
    double iqr = q7(s, n, 0.75) - q7(s, n, 0.25);
    free(s);
    double spread = iqr > 0 ? fmin(sd, iqr / 1.34) : sd;
    return 0.9 * spread * pow((double)n, -0.2);
}

enum { C_KIPS, C_SNKIPS, C_DM, C_KDR, C_E };
static const ope_est k_cont_est[C_E] = {OPE_KIPS, OPE_SNKIPS, OPE_DM, OPE_KDR};

int ope_cont_estimate(const ope_cont *d, const ope_config *cfg, ope_result *out) {
    if (!d || !cfg || !out || d->n <= 0 || !d->action || !d->reward || !d->density || !d->target)
        return eng_err_set(ENG_EINVAL, "ope_cont_estimate: empty or incomplete data");
    if ((d->q_target == NULL) != (d->q_logged == NULL))
        return eng_err_set(ENG_EINVAL, "ope_cont_estimate: give both q_target and q_logged, or neither");
    const int n = d->n;
    for (int i = 0; i < n; i++) {
        if (!isfinite(d->action[i]) || !isfinite(d->reward[i]) || !isfinite(d->target[i]))
            return eng_err_set(ENG_EINVAL, "ope: row %d: non-finite action, reward or target", i);
        if (!(d->density[i] > 0) || !isfinite(d->density[i]))
            return eng_err_set(ENG_EINVAL, "ope: row %d: behaviour density %g must be > 0", i, d->density[i]);
        if (d->q_target && (!isfinite(d->q_target[i]) || !isfinite(d->q_logged[i])))
            return eng_err_set(ENG_EINVAL, "ope: row %d: reward model value is not finite", i);
    }
    double h = cfg->bandwidth > 0 ? cfg->bandwidth : ope_silverman_bandwidth(d->action, n);
    if (!(h > 0))
        return eng_err_set(ENG_EINVAL, "ope: bandwidth %g is not positive (logged actions all equal?)", h);
    ope_result_init(out, cfg, n);
    out->bandwidth = h;
    out->q_source = d->q_target ? "given" : "none";
    int st = ENG_OK;
    double *num = eng_malloc((size_t)n * C_E * sizeof *num);
    double *den = eng_malloc((size_t)n * C_E * sizeof *den);
    if (!num || !den) { st = ENG_ENOMEM; goto cleanup; }
    const double norm = 1.0 / (h * sqrt(2.0 * M_PI));
    double sw = 0, sw2 = 0, mx = 0;
    for (int i = 0; i < n; i++) {
        double u = (d->action[i] - d->target[i]) / h;
        double w = norm * exp(-0.5 * u * u) / d->density[i];
        double r = d->reward[i];
        double qt = d->q_target ? d->q_target[i] : 0.0, ql = d->q_logged ? d->q_logged[i] : 0.0;
        double *nu = num + (size_t)i * C_E, *de = den + (size_t)i * C_E;
        nu[C_KIPS] = w * r;
        de[C_KIPS] = 1.0;
        nu[C_SNKIPS] = w * r;
        de[C_SNKIPS] = w;
        nu[C_DM] = qt;
        de[C_DM] = 1.0;
        nu[C_KDR] = qt + w * (r - ql);
        de[C_KDR] = 1.0;
        sw += w;
        sw2 += w * w;
        if (w > mx) mx = w;
    }
    double est[C_E], lo[C_E], hi[C_E], se[C_E];
    st = ope_boot_ratio(num, den, n, C_E, cfg->n_boot, cfg->alpha, cfg->seed, est, lo, hi, se);
    if (st) goto cleanup;
    for (int e = 0; e < C_E; e++) {
        ope_value *v = &out->v[k_cont_est[e]];
        if ((e == C_DM || e == C_KDR) && !d->q_target) {
            snprintf(v->note, sizeof v->note, "no reward model given (q_target, q_logged)");
            continue;
        }
        ope_value_set(v, est[e], lo[e], hi[e], se[e], n);
        snprintf(v->note, sizeof v->note, "Gaussian kernel, bandwidth %.4g", h);
    }
    ope_overlap *ov = &out->overlap;
    if (ope_overlap_weights(ov, n, sw, sw2, mx, cfg, "kernel", "n")) {
        static const ope_est is_based[] = {OPE_KIPS, OPE_SNKIPS, OPE_KDR};
        for (int k = 0; k < 3; k++)
            if (out->v[is_based[k]].available)
                snprintf(out->v[is_based[k]].note, sizeof out->v[is_based[k]].note, "overlap poor (%.100s)",
                         ov->reason);
    }
    out->recommended = !d->q_target ? OPE_SNKIPS : ov->poor ? OPE_DM : OPE_KDR;

cleanup:
    free(num);
    free(den);
    return st;
}

/* ---- trajectories ---------------------------------------------------------------- */

/* WPDIS from per-step sums: sum_t gamma^t num[t] / den[t] (a step with den 0 adds 0). */
static double wpdis_from(const double *num, const double *den, int T, double gamma) {
    double v = 0, g = 1;
    for (int t = 0; t < T; t++, g *= gamma)
        if (den[t] != 0.0) v += g * num[t] / den[t];
    return v;
}

/* PDIS and WPDIS of the multiset with cnt[j] copies of trajectory j.  num/den/frozen are
 * scratch of T+1 entries. */
static void traj_eval(const ope_traj *d, int T, double gamma, const double *rho, const double *G,
                      const double *last, const int *cnt, double *num, double *den, double *frozen,
                      double *pdis, double *wpdis) {
    double sg = 0;
    long tot = 0;
    memset(num, 0, (size_t)(T + 1) * sizeof *num);
    memset(den, 0, (size_t)(T + 1) * sizeof *den);
    memset(frozen, 0, (size_t)(T + 1) * sizeof *frozen);
    for (int j = 0; j < d->m; j++) {
        if (!cnt[j]) continue;
        double c = cnt[j];
        tot += cnt[j];
        sg += c * G[j];
        int L = d->start[j + 1] - d->start[j];
        for (int t = 0; t < L; t++) {
            int s = d->start[j] + t;
            num[t] += c * rho[s] * d->reward[s];
            den[t] += c * rho[s];
        }
        frozen[L] += c * last[j]; /* absorbed from step L on, weight frozen */
    }
    double acc = 0;
    for (int t = 0; t < T; t++) {
        acc += frozen[t];
        den[t] += acc;
    }
    *pdis = sg / (double)tot;
    *wpdis = wpdis_from(num, den, T, gamma);
}

int ope_traj_estimate(const ope_traj *d, const ope_config *cfg, ope_result *out) {
    if (!d || !cfg || !out || d->m <= 0 || !d->start)
        return eng_err_set(ENG_EINVAL, "ope_traj_estimate: empty or incomplete data");
    if (!(cfg->gamma >= 0 && cfg->gamma <= 1) || cfg->n_boot < 0 || !(cfg->alpha > 0 && cfg->alpha < 1))
        return eng_err_set(ENG_EINVAL, "ope: bad configuration (gamma %g, bootstrap %d, alpha %g)", cfg->gamma,
                           cfg->n_boot, cfg->alpha);
    const int m = d->m;
    if (d->start[0] != 0) return eng_err_set(ENG_EINVAL, "ope: trajectory offsets must start at 0");
    int T = 0;
    for (int j = 0; j < m; j++) {
        int L = d->start[j + 1] - d->start[j];
        if (L < 0) return eng_err_set(ENG_EINVAL, "ope: trajectory %d has negative length", j);
        if (L > T) T = L;
    }
    const int S = d->start[m];
    if (S > 0 && (!d->reward || !d->pi_prob || !d->mu_prob))
        return eng_err_set(ENG_EINVAL, "ope_traj_estimate: step arrays are NULL");
    for (int s = 0; s < S; s++) {
        if (!isfinite(d->reward[s]) || !(d->pi_prob[s] >= 0) || !isfinite(d->pi_prob[s]))
            return eng_err_set(ENG_EINVAL, "ope: step %d: bad reward or target probability", s);
        if (!(d->mu_prob[s] > 0) || !isfinite(d->mu_prob[s]))
            return eng_err_set(ENG_EINVAL, "ope: step %d: behaviour probability %g must be > 0", s, d->mu_prob[s]);
    }
    if (!(cfg->min_pscore >= 0 && cfg->min_pscore < 1))
        return eng_err_set(ENG_EINVAL, "ope: bad configuration (pscore floor %g)", cfg->min_pscore);
    ope_result_init(out, cfg, m);
    for (int s = 0; s < S; s++) out->n_pscore_clipped += d->mu_prob[s] < cfg->min_pscore;
    if (out->n_pscore_clipped)
        ENG_WARN("ope: %d of %d behaviour probabilities below the floor %g were clipped up to it (see ope.min_pscore)",
                 out->n_pscore_clipped, S, cfg->min_pscore);
    int st = ENG_OK;
    double *rho = NULL, *G = NULL, *last = NULL, *num = NULL, *den = NULL, *frozen = NULL, *bp = NULL, *bw = NULL;
    int *cnt = NULL;
    rho = eng_malloc((size_t)(S > 0 ? S : 1) * sizeof *rho); /* cumulative weight per step */
    G = eng_malloc((size_t)m * sizeof *G);                    /* PDIS return per trajectory */
    last = eng_malloc((size_t)m * sizeof *last);              /* final weight (1 when empty) */
    num = eng_malloc((size_t)(T + 1) * sizeof *num);
    den = eng_malloc((size_t)(T + 1) * sizeof *den);
    frozen = eng_malloc((size_t)(T + 1) * sizeof *frozen);
    cnt = eng_malloc((size_t)m * sizeof *cnt);
    if (!rho || !G || !last || !num || !den || !frozen || !cnt) { st = ENG_ENOMEM; goto cleanup; }
    for (int j = 0; j < m; j++) {
        double w = 1, g = 1, ret = 0;
        for (int s = d->start[j]; s < d->start[j + 1]; s++, g *= cfg->gamma) {
            w *= d->pi_prob[s] / fmax(d->mu_prob[s], cfg->min_pscore);
            rho[s] = w;
            ret += g * w * d->reward[s];
        }
        G[j] = ret;
        last[j] = w;
    }

    out->v[OPE_PDIS].n_used = out->v[OPE_WPDIS].n_used = m;
    for (int j = 0; j < m; j++) cnt[j] = 1;
    double pdis_v, wpdis_v;
    traj_eval(d, T, cfg->gamma, rho, G, last, cnt, num, den, frozen, &pdis_v, &wpdis_v);
    out->v[OPE_PDIS].estimate = pdis_v;
    out->v[OPE_WPDIS].estimate = wpdis_v;
    if (cfg->n_boot > 0) {
        bp = eng_malloc((size_t)cfg->n_boot * sizeof *bp);
        bw = eng_malloc((size_t)cfg->n_boot * sizeof *bw);
        if (!bp || !bw) { st = ENG_ENOMEM; goto cleanup; }
        eng_rng rng;
        eng_rng_seed(&rng, cfg->seed);
        for (int b = 0; b < cfg->n_boot; b++) {
            memset(cnt, 0, (size_t)m * sizeof *cnt);
            for (int k = 0; k < m; k++) cnt[eng_rng_below(&rng, (uint64_t)m)]++;
            traj_eval(d, T, cfg->gamma, rho, G, last, cnt, num, den, frozen, &bp[b], &bw[b]);
        }
        ope_boot_summary(bp, cfg->n_boot, cfg->alpha, &out->v[OPE_PDIS].ci_low, &out->v[OPE_PDIS].ci_high,
                         &out->v[OPE_PDIS].boot_se);
        ope_boot_summary(bw, cfg->n_boot, cfg->alpha, &out->v[OPE_WPDIS].ci_low, &out->v[OPE_WPDIS].ci_high,
                         &out->v[OPE_WPDIS].boot_se);
    }
    out->v[OPE_PDIS].available = out->v[OPE_WPDIS].available = 1;
    snprintf(out->v[OPE_PDIS].note, sizeof out->v[OPE_PDIS].note, "gamma %g, %d steps at most", cfg->gamma, T);
    snprintf(out->v[OPE_WPDIS].note, sizeof out->v[OPE_WPDIS].note, "gamma %g, ended trajectories absorbed",
             cfg->gamma);

    /* overlap on the final trajectory weights */
    double sw = 0, sw2 = 0, mx = 0;
    for (int j = 0; j < m; j++) {
        sw += last[j];
        sw2 += last[j] * last[j];
        if (last[j] > mx) mx = last[j];
    }
    ope_overlap *ov = &out->overlap;
    if (ope_overlap_weights(ov, m, sw, sw2, mx, cfg, "trajectory", "m")) {
        for (int e = OPE_PDIS; e <= OPE_WPDIS; e++)
            snprintf(out->v[e].note, sizeof out->v[e].note, "overlap poor (%.100s)", ov->reason);
    }
    out->recommended = OPE_WPDIS;

cleanup:
    free(rho);
    free(G);
    free(last);
    free(num);
    free(den);
    free(frozen);
    free(cnt);
    free(bp);
    free(bw);
    return st;
}
