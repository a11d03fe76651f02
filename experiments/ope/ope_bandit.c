/* ope_bandit.c - one-step off-policy estimators with K discrete actions: Replay, IPS, SNIPS,
 * DM, DR, Switch-DR; the ridge reward model; overlap diagnostics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "ope.h"
#include "ope_lapack.h"

#define OPE_PI_SUM_RTOL 1e-6

void ope_bandit_free(ope_bandit *d) {
    if (!d) return;
    free(d->action);
    free(d->reward);
    free(d->pscore);
    free(d->pi);
    free(d->q);
    free(d->x);
    free(d->mu);
    if (d->x_names)
        for (int j = 0; j < d->d; j++) free(d->x_names[j]);
    free(d->x_names);
    memset(d, 0, sizeof *d);
}

static int prob_ok(double p) { return isfinite(p) && p >= 0.0 && p <= 1.0; }

int ope_bandit_check(const ope_bandit *d) {
    if (!d || d->n <= 0 || d->K <= 0 || d->d < 0 || !d->action || !d->reward || !d->pscore || !d->pi)
        return eng_err_set(ENG_EINVAL, "ope: empty or incomplete logged data (n=%d, K=%d)", d ? d->n : 0,
                           d ? d->K : 0);
    if (d->d > 0 && !d->x) return eng_err_set(ENG_EINVAL, "ope: d=%d context columns but no x array", d->d);
    for (int i = 0; i < d->n; i++) {
        if (d->action[i] < 0 || d->action[i] >= d->K)
            return eng_err_set(ENG_EINVAL, "ope: row %d: action %d outside 0..%d", i, d->action[i], d->K - 1);
        if (!isfinite(d->reward[i])) return eng_err_set(ENG_EINVAL, "ope: row %d: reward is not finite", i);
        if (!prob_ok(d->pscore[i]) || d->pscore[i] <= 0.0)
            return eng_err_set(ENG_EINVAL, "ope: row %d: pscore %g outside (0, 1]", i, d->pscore[i]);
        double s = 0;
        for (int a = 0; a < d->K; a++) {
            double p = d->pi[(size_t)i * d->K + a];
            if (!prob_ok(p)) return eng_err_set(ENG_EINVAL, "ope: row %d: pi_%d = %g outside [0, 1]", i, a, p);
            s += p;
            if (d->mu && !prob_ok(d->mu[(size_t)i * d->K + a]))
                return eng_err_set(ENG_EINVAL, "ope: row %d: mu_%d = %g outside [0, 1]", i, a,
                                   d->mu[(size_t)i * d->K + a]);
            if (d->q && !isfinite(d->q[(size_t)i * d->K + a]))
                return eng_err_set(ENG_EINVAL, "ope: row %d: q_%d is not finite", i, a);
        }
        if (fabs(s - 1.0) > OPE_PI_SUM_RTOL)
            return eng_err_set(ENG_EINVAL, "ope: row %d: pi sums to %.9g, not 1 (tolerance %g)", i, s,
                               OPE_PI_SUM_RTOL);
        for (int j = 0; j < d->d; j++)
            if (!isfinite(d->x[(size_t)i * d->d + j]))
                return eng_err_set(ENG_EINVAL, "ope: row %d: context column %d is not finite", i, j);
    }
    return ENG_OK;
}

int ope_fit_ridge_q(const ope_bandit *d, double lambda, int folds, uint64_t seed, double **q_out) {
    if (!d || !q_out || d->n <= 0 || d->K <= 0) return eng_err_set(ENG_EINVAL, "ope_fit_ridge_q: bad arguments");
    *q_out = NULL;
    if (d->d <= 0 || !d->x)
        return eng_err_set(ENG_EINVAL, "ope_fit_ridge_q: no context columns (x_*) to fit a reward model on");
    if (!(lambda >= 0.0) || !isfinite(lambda))
        return eng_err_set(ENG_EINVAL, "ope_fit_ridge_q: ridge lambda %g must be >= 0", lambda);
    if (folds < 1 || folds > d->n)
        return eng_err_set(ENG_EINVAL, "ope_fit_ridge_q: %d cross-fitting folds for %d rows", folds, d->n);
    const int n = d->n, K = d->K, p = d->d + 1; /* standardised x then a column of ones */
    int st = ENG_OK;
    double *z = NULL, *mean = NULL, *sd = NULL, *za = NULL, *ra = NULL, *A = NULL, *beta = NULL, *q = NULL;
    double *rhs = NULL, *qf = NULL;
    int *fold = NULL, *perm = NULL;
    z = eng_malloc((size_t)n * p * sizeof *z);
    mean = eng_calloc((size_t)d->d, sizeof *mean);
    sd = eng_calloc((size_t)d->d, sizeof *sd);
    za = eng_malloc((size_t)n * p * sizeof *za);
    ra = eng_malloc((size_t)n * sizeof *ra);
    A = eng_malloc((size_t)p * p * sizeof *A);
    beta = eng_calloc((size_t)p * K, sizeof *beta); /* [p][K] */
    q = eng_malloc((size_t)n * K * sizeof *q);
    rhs = eng_malloc((size_t)p * sizeof *rhs);
    fold = eng_malloc((size_t)n * sizeof *fold);
    perm = eng_malloc((size_t)n * sizeof *perm);
    qf = folds > 1 ? eng_malloc((size_t)n * K * sizeof *qf) : q;
    if (!z || !mean || !sd || !za || !ra || !A || !beta || !q || !rhs || !fold || !perm || !qf) { st = ENG_ENOMEM; goto cleanup; }

    /* standardise each column (constant columns become 0) */
    for (int j = 0; j < d->d; j++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) s += d->x[(size_t)i * d->d + j];
        mean[j] = s / n;
        for (int i = 0; i < n; i++) {
            double c = d->x[(size_t)i * d->d + j] - mean[j];
            s2 += c * c;
        }
        sd[j] = sqrt(s2 / n);
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d->d; j++)
            z[(size_t)i * p + j] = sd[j] > 0 ? (d->x[(size_t)i * d->d + j] - mean[j]) / sd[j] : 0.0;
        z[(size_t)i * p + d->d] = 1.0;
    }
    /* folds: a seeded shuffle of the rows (Fisher-Yates on perm), dealt round-robin */
    for (int i = 0; i < n; i++) perm[i] = i;
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)eng_rng_below(&rng, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int k = 0; k < n; k++) fold[perm[k]] = k % folds;

    for (int f = 0; f < folds; f++) {
        /* train on rows outside fold f (all rows when folds == 1) */
        double rmean = 0;
        int ntr = 0;
        for (int i = 0; i < n; i++)
            if (folds == 1 || fold[i] != f) rmean += d->reward[i], ntr++;
        rmean /= ntr;
        for (int a = 0; a < K; a++) {
            int na = 0;
            for (int i = 0; i < n; i++)
                if (d->action[i] == a && (folds == 1 || fold[i] != f)) {
                    memcpy(za + (size_t)na * p, z + (size_t)i * p, (size_t)p * sizeof *za);
                    ra[na++] = d->reward[i];
                }
            for (int j = 0; j < p; j++) beta[(size_t)j * K + a] = 0.0;
            if (na == 0) { /* never logged: no data, predict the mean reward */
                beta[(size_t)d->d * K + a] = rmean;
                continue;
            }
            /* A = Za^T Za + lambda * I (not on the intercept); b = Za^T ra.  The column-major
             * view of the row-major Za is Za^T, so A = (Za^T)(Za^T)^T. */
            cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, p, na, 1.0, za, p, 0.0, A, p);
            for (int j = 0; j < d->d; j++) A[(size_t)j * p + j] += lambda;
            cblas_dgemv(CblasColMajor, CblasNoTrans, p, na, 1.0, za, p, ra, 1, 0.0, rhs, 1);
            int info = 0, one = 1;
            dposv_("U", &p, &one, A, &p, rhs, &p, &info, 1);
            if (info != 0) {
                st = eng_err_set(ENG_ENUM,
                                 "ope_fit_ridge_q: normal equations for action %d are singular (LAPACK info %d, "
                                 "%d rows, lambda %g); use lambda > 0",
                                 a, info, na, lambda);
                goto cleanup;
            }
            for (int j = 0; j < p; j++) beta[(size_t)j * K + a] = rhs[j];
        }
        /* qf [n][K] = Z [n][p] * beta [p][K]; keep the rows of fold f */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, K, p, 1.0, z, p, beta, K, 0.0, qf, K);
        if (folds > 1)
            for (int i = 0; i < n; i++)
                if (fold[i] == f) memcpy(q + (size_t)i * K, qf + (size_t)i * K, (size_t)K * sizeof *q);
    }
    *q_out = q;
    q = NULL;

cleanup:
    free(z);
    free(mean);
    free(sd);
    free(za);
    free(ra);
    free(A);
    free(beta);
    if (folds > 1) free(qf); /* else qf aliases q */
    free(q);
    free(rhs);
    free(fold);
    free(perm);
    return st;
}


int ope_overlap_weights(ope_overlap *ov, int n, double sw, double sw2, double max_w, const ope_config *cfg,
                        const char *what, const char *unit) {
    ov->n = n;
    ov->ess = sw2 > 0 ? sw * sw / sw2 : 0.0;
    ov->ess_frac = n > 0 ? ov->ess / n : 0.0;
    ov->max_w = max_w;
    ov->max_w_share = sw > 0 ? max_w / sw : 0.0;
    ov->mean_w = n > 0 ? sw / n : 0.0;
    double need = fmax(cfg->min_ess_abs, cfg->min_ess_frac * n);
    if (n == 0 || !(ov->ess >= need)) { /* NaN (overflowed weights) is poor, never fine */
        ov->poor = 1;
        snprintf(ov->reason, sizeof ov->reason, "%s%sESS %.1f < %.1f (max(%g, %g*%s))", what, *what ? " " : "",
                 ov->ess, need, cfg->min_ess_abs, cfg->min_ess_frac, unit);
    }
    return ov->poor;
}
int ope_overlap_compute(const ope_bandit *d, const ope_config *cfg, ope_overlap *out) {
    if (!d || !cfg || !out || d->n <= 0 || d->K <= 0) return eng_err_set(ENG_EINVAL, "ope_overlap_compute: bad arguments");
    memset(out, 0, sizeof *out);
    const int n = d->n, K = d->K;
    int st = ENG_OK;
    int *logged = NULL;
    if (!d->mu) {
        logged = eng_calloc((size_t)K, sizeof *logged);
        if (!logged) return ENG_ENOMEM;
        for (int i = 0; i < n; i++) logged[d->action[i]]++;
    }
    double sw = 0, sw2 = 0, mx = 0, mass = 0;
    int rows = 0;
    for (int i = 0; i < n; i++) {
        const double *pi = d->pi + (size_t)i * K;
        double w = pi[d->action[i]] / d->pscore[i];
        sw += w;
        sw2 += w * w;
        if (w > mx) mx = w;
        double m = 0;
        for (int a = 0; a < K; a++) {
            int unsupported = d->mu ? d->mu[(size_t)i * K + a] <= 0.0 : logged[a] == 0;
            if (unsupported) m += pi[a];
        }
        mass += m;
        rows += m > 0;
    }
    out->unsupported_mass = mass / n;
    out->unsupported_rows = (double)rows / n;
    out->support_exact = d->mu != NULL;
    if (!ope_overlap_weights(out, n, sw, sw2, mx, cfg, "", "n") && !(out->unsupported_mass <= cfg->max_unsupported)) {
        out->poor = 1;
        snprintf(out->reason, sizeof out->reason, "%.1f%% of target mass on unsupported actions (> %.1f%%)%s",
                 100 * out->unsupported_mass, 100 * cfg->max_unsupported,
                 d->mu ? "" : " [proxy: never logged in the file; give mu_* for per-row support]");
    }
    free(logged);
    return st;
}

enum { B_REPLAY, B_IPS, B_SNIPS, B_DM, B_DR, B_SDR, B_E };
static const ope_est k_bandit_est[B_E] = {OPE_REPLAY, OPE_IPS, OPE_SNIPS, OPE_DM, OPE_DR, OPE_SWITCH_DR};

void ope_result_init(ope_result *out, const ope_config *cfg, int n) {
    memset(out, 0, sizeof *out);
    for (int e = 0; e < OPE_N_EST; e++) {
        out->v[e].estimate = out->v[e].ci_low = out->v[e].ci_high = out->v[e].boot_se = NAN;
        snprintf(out->v[e].note, sizeof out->v[e].note, "not applicable to this data");
    }
    snprintf(out->v[OPE_FQE].note, sizeof out->v[OPE_FQE].note, "not computed: fitted Q evaluation needs transitions (ope_fqe_estimate)");
    out->n = n;
    out->n_boot = cfg->n_boot;
    out->alpha = cfg->alpha;
    out->bandwidth = NAN;
    out->q_source = "none";
}

/* DM, DR and Switch-DR on Bm resamples of the rows, refitting the ridge model on each (same
 * lambda and folds), so the interval includes the model's own fitting variability.  lo/hi/se
 * are indexed B_DM..B_SDR - B_DM.  A resample whose fit fails (e.g. singular with lambda 0)
 * counts as undefined (NaN), like an undefined ratio in ope_boot_ratio. */
static int boot_refit(const ope_bandit *d, const ope_config *cfg, int Bm, double *lo, double *hi, double *se) {
    const int n = d->n, K = d->K, dd = d->d;
    int st = ENG_OK;
    ope_bandit r;
    memset(&r, 0, sizeof r);
    r.n = n, r.K = K, r.d = dd;
    double *vals = NULL, *q = NULL;
    r.action = eng_malloc((size_t)n * sizeof *r.action);
    r.reward = eng_malloc((size_t)n * sizeof *r.reward);
    r.pscore = eng_malloc((size_t)n * sizeof *r.pscore);
    r.pi = eng_malloc((size_t)n * K * sizeof *r.pi);
    r.x = eng_malloc((size_t)n * dd * sizeof *r.x);
    vals = eng_malloc((size_t)3 * Bm * sizeof *vals);
    if (!r.action || !r.reward || !r.pscore || !r.pi || !r.x || !vals) { st = ENG_ENOMEM; goto cleanup; }
    eng_rng rng;
    eng_rng_seed(&rng, eng_seed_derive(cfg->seed, 0x72656669ULL));
    for (int b = 0; b < Bm; b++) {
        for (int i = 0; i < n; i++) {
            size_t j = (size_t)eng_rng_below(&rng, (uint64_t)n);
            r.action[i] = d->action[j];
            r.reward[i] = d->reward[j];
            r.pscore[i] = d->pscore[j];
            memcpy(r.pi + (size_t)i * K, d->pi + j * K, (size_t)K * sizeof *r.pi);
            memcpy(r.x + (size_t)i * dd, d->x + j * dd, (size_t)dd * sizeof *r.x);
        }
        st = ope_fit_ridge_q(&r, cfg->ridge_lambda, cfg->cross_folds, eng_seed_derive(cfg->seed, 0x71666974ULL + 1 + (uint64_t)b), &q);
        if (st == ENG_ENOMEM) goto cleanup;
        if (st) { /* this resample has no usable model */
            st = ENG_OK;
            vals[b] = vals[Bm + b] = vals[2 * Bm + b] = NAN;
            continue;
        }
        double dm = 0, dr = 0, sdr = 0;
        for (int i = 0; i < n; i++) {
            const double *pi = r.pi + (size_t)i * K, *qi = q + (size_t)i * K;
            double v = 0, w = pi[r.action[i]] / r.pscore[i], c = r.reward[i] - qi[r.action[i]];
            for (int a = 0; a < K; a++) v += pi[a] * qi[a];
            dm += v;
            dr += v + w * c;
            sdr += v + (w <= cfg->switch_tau ? w * c : 0.0);
        }
        vals[b] = dm / n, vals[Bm + b] = dr / n, vals[2 * Bm + b] = sdr / n;
        free(q);
        q = NULL;
    }
    for (int e = 0; e < 3; e++) ope_boot_summary(vals + (size_t)e * Bm, Bm, cfg->alpha, &lo[e], &hi[e], &se[e]);

cleanup:
    free(q);
    free(vals);
    free(r.action);
    free(r.reward);
    free(r.pscore);
    free(r.pi);
    free(r.x);
    return st;
}

/* Propensities below cfg->min_pscore: none -> 0 and *clipped = NULL; else a malloc'd copy of
 * d->pscore clipped up to the floor in *clipped (caller frees), one warning, and the count.
 * ENG_ENOMEM on allocation failure. */
static int clip_pscores(const ope_bandit *d, const ope_config *cfg, double **clipped, int *count) {
    *clipped = NULL;
    *count = 0;
    for (int i = 0; i < d->n; i++) *count += d->pscore[i] < cfg->min_pscore;
    if (!*count) return ENG_OK;
    double *p = eng_malloc((size_t)d->n * sizeof *p);
    if (!p) return ENG_ENOMEM;
    for (int i = 0; i < d->n; i++) p[i] = d->pscore[i] < cfg->min_pscore ? cfg->min_pscore : d->pscore[i];
    ENG_WARN("ope: %d of %d logged pscores below the floor %g were clipped up to it (their weights are capped "
             "at pi / %g; see ope.min_pscore)",
             *count, d->n, cfg->min_pscore, cfg->min_pscore);
    *clipped = p;
    return ENG_OK;
}

/* The per-row numerators and denominators num/den [n][B_E] (caller's) of every bandit estimator:
 * the Replay match (the target's action drawn from its own stream of cfg->seed), IPS, SNIPS, DM,
 * DR and Switch-DR (q NULL: DM/DR terms 0). *matches / *switched get the matching rounds and the
 * rows whose weight is above the switch threshold. No allocation, no failure. */
static void bandit_rows(const ope_bandit *d, const double *q, const ope_config *cfg, double *num, double *den,
                        int *matches_out, int *switched_out) {
    const int n = d->n, K = d->K;
    eng_rng rng; /* Replay's target-action draws: a stream separate from the bootstrap */
    eng_rng_seed(&rng, eng_seed_derive(cfg->seed, 0x7265706cULL));
    int matches = 0, switched = 0;
    for (int i = 0; i < n; i++) {
        const double *pi = d->pi + (size_t)i * K;
        int a = d->action[i];
        double r = d->reward[i], w = pi[a] / d->pscore[i];
        /* sample the target's action by inversion (deterministic targets always hit theirs) */
        double u = eng_rng_uniform(&rng), c = 0;
        int t = K - 1;
        for (int k = 0; k < K; k++) {
            c += pi[k];
            if (u < c) { t = k; break; }
        }
        while (pi[t] <= 0.0 && t > 0) t--; /* rounding past the last positive entry */
        double match = t == a;
        matches += t == a;
        double *nu = num + (size_t)i * B_E, *de = den + (size_t)i * B_E;
        nu[B_REPLAY] = match * r;
        de[B_REPLAY] = match;
        nu[B_IPS] = w * r;
        de[B_IPS] = 1.0;
        nu[B_SNIPS] = w * r;
        de[B_SNIPS] = w;
        double dm = 0, qa = 0;
        if (q) {
            const double *qi = q + (size_t)i * K;
            for (int k = 0; k < K; k++) dm += pi[k] * qi[k];
            qa = qi[a];
        }
        nu[B_DM] = dm;
        de[B_DM] = 1.0;
        nu[B_DR] = dm + w * (r - qa);
        de[B_DR] = 1.0;
        int keep = w <= cfg->switch_tau;
        switched += !keep;
        nu[B_SDR] = dm + (keep ? w * (r - qa) : 0.0);
        de[B_SDR] = 1.0;
    }
    *matches_out = matches;
    *switched_out = switched;
}

int ope_bandit_estimate(const ope_bandit *d_in, const ope_config *cfg, ope_result *out) {
    if (!cfg || !out) return eng_err_set(ENG_EINVAL, "ope_bandit_estimate: NULL argument");
    int st = ope_bandit_check(d_in);
    if (st) return st;
    if (cfg->n_boot < 0 || !(cfg->alpha > 0 && cfg->alpha < 1) || !(cfg->switch_tau > 0) ||
        !(cfg->min_pscore >= 0 && cfg->min_pscore < 1))
        return eng_err_set(ENG_EINVAL, "ope: bad configuration (bootstrap %d, alpha %g, tau %g, pscore floor %g)",
                           cfg->n_boot, cfg->alpha, cfg->switch_tau, cfg->min_pscore);
    const int n = d_in->n, K = d_in->K;
    ope_result_init(out, cfg, n);
    double *qfit = NULL, *num = NULL, *den = NULL, *clipped = NULL;
    ope_bandit dc = *d_in;
    const ope_bandit *d = &dc;
    if ((st = clip_pscores(d_in, cfg, &clipped, &out->n_pscore_clipped))) goto cleanup;
    if (clipped) dc.pscore = clipped;
    const double *q = d->q;
    char qnote[128] = "";
    if (q) {
        out->q_source = "given";
    } else if (d->d > 0) {
        st = ope_fit_ridge_q(d, cfg->ridge_lambda, cfg->cross_folds, eng_seed_derive(cfg->seed, 0x71666974ULL), &qfit);
        if (st) goto cleanup;
        q = qfit;
        out->q_source = "ridge";
    } else {
        snprintf(qnote, sizeof qnote, "no reward model: give q_0..q_%d or x_* context columns to fit one", K - 1);
    }
    st = ope_overlap_compute(d, cfg, &out->overlap);
    if (st) goto cleanup;

    num = eng_malloc((size_t)n * B_E * sizeof *num);
    den = eng_malloc((size_t)n * B_E * sizeof *den);
    if (!num || !den) { st = ENG_ENOMEM; goto cleanup; }
    int matches = 0, switched = 0;
    bandit_rows(d, q, cfg, num, den, &matches, &switched);
    double est[B_E], lo[B_E], hi[B_E], se[B_E];
    st = ope_boot_ratio(num, den, n, B_E, cfg->n_boot, cfg->alpha, cfg->seed, est, lo, hi, se);
    if (st) goto cleanup;
    for (int e = 0; e < B_E; e++) {
        ope_value *v = &out->v[k_bandit_est[e]];
        ope_value_set(v, est[e], lo[e], hi[e], se[e], n);
        v->note[0] = '\0';
    }
    out->v[OPE_REPLAY].n_used = matches;
    snprintf(out->v[OPE_REPLAY].note, sizeof out->v[OPE_REPLAY].note,
             "%d matching rounds; unbiased only under uniform logging", matches);
    if (matches == 0) {
        out->v[OPE_REPLAY].available = 0;
        snprintf(out->v[OPE_REPLAY].note, sizeof out->v[OPE_REPLAY].note, "no round where the target's action matched");
    }
    int Bm = cfg->n_boot < cfg->refit_boot ? cfg->n_boot : cfg->refit_boot;
    if (qfit && Bm > 0) { /* the model was fitted here: refit it inside the resamples */
        double rl[3], rh[3], rs[3];
        if ((st = boot_refit(d, cfg, Bm, rl, rh, rs))) goto cleanup;
        for (int e = B_DM; e <= B_SDR; e++) {
            ope_value *v = &out->v[k_bandit_est[e]];
            v->ci_low = rl[e - B_DM], v->ci_high = rh[e - B_DM], v->boot_se = rs[e - B_DM];
        }
        snprintf(out->v[OPE_DM].note, sizeof out->v[OPE_DM].note,
                 "interval: %d resamples, ridge model refitted on each", Bm);
        snprintf(out->v[OPE_DR].note, sizeof out->v[OPE_DR].note,
                 "interval: %d resamples, ridge model refitted on each", Bm);
    } else if (q && cfg->n_boot > 0) {
        snprintf(out->v[OPE_DM].note, sizeof out->v[OPE_DM].note,
                 "reward model %s and held fixed: interval covers row sampling only (too narrow)",
                 qfit ? "fitted once" : "given");
    }
    if (!q) {
        for (int e = B_DM; e <= B_SDR; e++) {
            ope_value *v = &out->v[k_bandit_est[e]];
            v->available = 0;
            v->estimate = v->ci_low = v->ci_high = v->boot_se = NAN;
            snprintf(v->note, sizeof v->note, "%s", qnote);
        }
    } else {
        snprintf(out->v[OPE_SWITCH_DR].note, sizeof out->v[OPE_SWITCH_DR].note,
                 "tau %g: correction dropped on %d of %d rows", cfg->switch_tau, switched, n);
    }
    if (out->overlap.poor) {
        static const ope_est is_based[] = {OPE_REPLAY, OPE_IPS, OPE_SNIPS, OPE_DR, OPE_SWITCH_DR};
        for (size_t k = 0; k < sizeof is_based / sizeof *is_based; k++) {
            ope_value *v = &out->v[is_based[k]];
            if (v->available)
                snprintf(v->note, sizeof v->note, "overlap poor (%.100s)", out->overlap.reason);
        }
    }
    out->recommended = !q ? OPE_SNIPS : out->overlap.poor ? OPE_DM : OPE_DR;

cleanup:
    free(qfit);
    free(num);
    free(den);
    free(clipped);
    return st;
}
