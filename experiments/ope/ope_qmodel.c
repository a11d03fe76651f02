/* ope_qmodel.c - the pooled one-step reward model q(s, level) (see ope_qmodel.h), used by the
 * comparison's DM / DR / Switch-DR of every product and agent (docs/compare.md, "Reward model").
 *
 * One ridge regression over ALL products' TRAINING transitions (never the evaluation rows):
 *   target   y = r / scale_p            (scale_p = sd of product p's training rewards, so
 *                                        products of different sizes share one model)
 *   design   [standardised state s (FEAT_N), level one-hot (K), dk = ratio_k - 1,
 *             dc = ratio_k - ratio_incumbent, dk^2, dc^2, dk * s_j and dc * s_j for a few key
 *             features j (revenue, units, conversion, price and competitor ratios, promo),
 *             the priced period's own promotion flag pr and pr * dk (as state: a
 *             promotion's lift is not credited to the prices charged with it)]
 *   plus a per-product intercept b_p shrunk towards 0 (random intercept: b_p = sum of the
 *   product's residuals / (n_p + kappa), kappa = within variance / between variance by the
 *   method of moments), fitted by backfitting (3 rounds).  Every column is standardised on the
 *   training rows; the penalty is lambda on every coefficient but the intercept.
 * Prediction: q = clip(scale_p * (z . beta + b_p), [lo_p, hi_p]) where [lo_p, hi_p] is the
 * product's training reward range (the global range for products with < min_history rows).
 * Cross-fitting: the evaluation rows are never training rows (holdout), so the model has not
 * seen the reward it is corrected with and one fit serves.  With eval_all = 1 the evaluation
 * rows ARE the training rows: the training rows are dealt into cross_folds folds (a hash of the
 * row) and each row is predicted by the model fitted without its fold.
 */
#include "ope_qmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "eng_par.h"
#include "eng_util.h"
#include "feat.h"
#include "ope_lapack.h"

static const int key_feat[] = {FEAT_REVENUE_1, FEAT_REVENUE_7,   FEAT_UNITS_7,       FEAT_CONV_7,
                               FEAT_PRICE_RATIO_BASE, FEAT_COMP_REL_MEAN, FEAT_DISCOUNT_DEPTH, FEAT_PROMO_PREV};
#define N_KEY ((int)(sizeof key_feat / sizeof key_feat[0]))
#define CHUNK 512
#define BACKFIT_ROUNDS 3

int ope_qmodel_dim(int F, int K) { return 1 + F + K + 4 + 2 * N_KEY + 2; }

static int is_train(const ope_qmodel_data *d, size_t r) { return d->tr->t[r] < d->train_end; }

/* Raw (unstandardised) design row of transition r at level k; z[0] = 1. */
static void design_raw(const ope_qmodel_data *d, size_t r, int k, double *z) {
    const int F = d->F, K = d->K;
    const float *s = d->tr->state + r * F;
    int j = 0;
    z[j++] = 1.0;
    for (int f = 0; f < F; f++) z[j++] = s[f];
    for (int l = 0; l < K; l++) z[j++] = l == k;
    double dk = env_grid_ratio(d->grid, k) - 1.0;
    int inc = d->tr->inc_level[r];
    double rinc = inc >= 0 && inc < K ? env_grid_ratio(d->grid, inc) : 1.0;
    double dc = env_grid_ratio(d->grid, k) - rinc;
    z[j++] = dk;
    z[j++] = dc;
    z[j++] = dk * dk;
    z[j++] = dc * dc;
    for (int u = 0; u < N_KEY; u++) {
        z[j++] = dk * s[key_feat[u]];
        z[j++] = dc * s[key_feat[u]];
    }
    double pr = d->promo && d->promo[r] ? 1.0 : 0.0; /* the priced period's promotion: state */
    z[j++] = pr;
    z[j++] = pr * dk;
}

static void design(const ope_qmodel *m, size_t r, int k, double *z) {
    design_raw(&m->d, r, k, z);
    for (int j = 1; j < m->D; j++) z[j] = m->sd[j] > 0 ? (z[j] - m->mean[j]) / m->sd[j] : 0.0;
}

/* Fold of training row r: a hash of its product's key and its period (not of its position in
 * the rows, so it is the same whichever rows sit beside it). */
static int fold_of(const ope_qmodel *m, size_t r) {
    if (m->folds <= 1) return 0;
    int p = m->d.tr->product[r];
    uint64_t k = m->d.key ? m->d.key[p] : (uint64_t)p;
    uint64_t h = eng_seed_derive(eng_seed_derive(m->d.seed ^ 0x716d6f64ULL, k), (uint64_t)m->d.tr->t[r]);
    return (int)(h % (uint64_t)m->folds);
}

static int used(const ope_qmodel_data *d, int p) { return !d->use || d->use[p]; }

/* Over the ranks when the fit is split (d->over_ranks): exact sums x [nx], integer sums
 * v [nv].  0 or the exchange's failure. */
static int qm_reduce(const ope_qmodel_data *d, eng_xsum *x, size_t nx, int64_t *v, int nv) {
    int rc = ENG_OK;
    if (!d->over_ranks) return rc;
    if (nx && (rc = eng_par_allreduce_xsum(x, nx))) return rc;
    if (nv) rc = eng_par_allreduce_i64(v, nv, ENG_PAR_SUM);
    return rc;
}

void ope_qmodel_free(ope_qmodel *m) {
    if (!m) return;
    free(m->beta);
    free(m->mean);
    free(m->sd);
    free(m->icpt);
    free(m->scale);
    free(m->lo);
    free(m->hi);
    memset(m, 0, sizeof *m);
}

void ope_qmodel_predict(const ope_qmodel *m, size_t r, double *z, double *q) {
    int p = m->d.tr->product[r];
    int f = is_train(&m->d, r) ? fold_of(m, r) : 0;
    const double *b = m->beta + (size_t)f * m->D;
    for (int k = 0; k < m->d.K; k++) {
        design(m, r, k, z);
        double v = m->scale[p] * (cblas_ddot(m->D, z, 1, b, 1) + m->icpt[(size_t)f * m->d.n_products + p]);
        if (v < m->lo[p]) v = m->lo[p];
        if (v > m->hi[p]) v = m->hi[p];
        q[k] = v;
    }
}

/* Flush a chunk of standardised rows into the Gram matrices of every fold but the rows' own. */
static void flush(ope_qmodel *m, double *G, double *Zc, const int *fc, int nc) {
    if (nc == 0) return;
    if (m->folds == 1) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, m->D, nc, 1.0, Zc, m->D, 1.0, G, m->D);
        return;
    }
    /* per-fold Gram of the chunk's rows, later subtracted from the total */
    for (int i = 0; i < nc; i++)
        cblas_dsyr(CblasRowMajor, CblasUpper, m->D, 1.0, Zc + (size_t)i * m->D, 1,
                   G + (size_t)(1 + fc[i]) * m->D * m->D, m->D);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, m->D, nc, 1.0, Zc, m->D, 1.0, G, m->D);
}

/* Scratch of one fit (qm_work_free frees every array; NG Gram matrices: the total and, with
 * folds, each fold's own). */
typedef struct qm_work {
    double *G, *A, *Zc, *rhs, *res_sum, *res_n, *z;
    int *fc;
    long *np;
    int NG;
} qm_work;

static void qm_work_free(qm_work *w) {
    free(w->G);
    free(w->A);
    free(w->Zc);
    free(w->fc);
    free(w->rhs);
    free(w->res_sum);
    free(w->res_n);
    free(w->np);
    free(w->z);
}

/* The model's arrays and the scratch.  Returns 0 or ENG_ENOMEM. */
static int qm_alloc(ope_qmodel *m, qm_work *w) {
    const int P = m->d.n_products, D = m->D, NF = m->folds, NG = w->NG;
    m->beta = calloc((size_t)NF * D, sizeof *m->beta);
    m->mean = calloc((size_t)D, sizeof *m->mean);
    m->sd = calloc((size_t)D, sizeof *m->sd);
    m->icpt = calloc((size_t)NF * P, sizeof *m->icpt);
    m->scale = malloc((size_t)P * sizeof *m->scale);
    m->lo = malloc((size_t)P * sizeof *m->lo);
    m->hi = malloc((size_t)P * sizeof *m->hi);
    w->G = calloc((size_t)NG * D * D, sizeof *w->G);
    w->A = malloc((size_t)D * D * sizeof *w->A);
    w->Zc = malloc((size_t)CHUNK * D * sizeof *w->Zc);
    w->fc = malloc((size_t)CHUNK * sizeof *w->fc);
    w->rhs = calloc((size_t)NG * D, sizeof *w->rhs);
    w->res_sum = calloc((size_t)NG * P, sizeof *w->res_sum);
    w->res_n = calloc((size_t)NG * P, sizeof *w->res_n);
    w->np = calloc((size_t)P, sizeof *w->np);
    w->z = malloc((size_t)D * sizeof *w->z);
    if (!m->beta || !m->mean || !m->sd || !m->icpt || !m->scale || !m->lo || !m->hi || !w->G || !w->A || !w->Zc ||
        !w->fc || !w->rhs || !w->res_sum || !w->res_n || !w->np || !w->z)
        return eng_err_set(ENG_ENOMEM, "compare: out of memory (reward model)");
    return ENG_OK;
}

/* Per-product scale and clip range from the training rewards, global fallbacks.  Returns 0
 * or ENG_EINVAL (fewer than two training rows with distinct rewards). */
static int qm_scales(ope_qmodel *m, long *np) {
    const ope_qmodel_data *d = &m->d;
    const env_transitions *tr = d->tr;
    double glo = INFINITY, ghi = -INFINITY;
    eng_xsum gx[2]; /* sum y, sum y^2 */
    eng_xsum_zero(gx, 2);
    int64_t gn = 0;
    int rc;
    for (int p = 0; p < d->n_products; p++) {
        double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t r = d->off[p]; used(d, p) && r < d->off[p + 1]; r++) {
            if (!is_train(d, r)) continue;
            double y = tr->reward[r];
            s += y, s2 += y * y;
            if (y < lo) lo = y;
            if (y > hi) hi = y;
            np[p]++;
        }
        eng_xsum_add(&gx[0], s), eng_xsum_add(&gx[1], s2), gn += np[p];
        if (lo < glo) glo = lo;
        if (hi > ghi) ghi = hi;
        double var = np[p] > 1 ? (s2 - s * s / np[p]) / (np[p] - 1) : 0;
        m->scale[p] = np[p] >= d->min_history && var > 0 ? sqrt(var) : NAN;
        m->lo[p] = np[p] >= d->min_history ? lo : NAN;
        m->hi[p] = np[p] >= d->min_history ? hi : NAN;
    }
    if ((rc = qm_reduce(d, gx, 2, &gn, 1))) return rc;
    if (d->over_ranks && ((rc = eng_par_allreduce_f64(&glo, 1, ENG_PAR_MIN)) ||
                          (rc = eng_par_allreduce_f64(&ghi, 1, ENG_PAR_MAX))))
        return rc;
    m->n_train = (long)gn;
    if (gn < 2 || !(ghi > glo))
        return eng_err_set(ENG_EINVAL, "compare: %ld training transitions with distinct rewards: no reward model",
                           (long)gn);
    double gs = eng_xsum_round(&gx[0]), gs2 = eng_xsum_round(&gx[1]);
    double gvar = (gs2 - gs * gs / gn) / (gn - 1), gsd = sqrt(gvar > 0 ? gvar : 0);
    for (int p = 0; p < d->n_products; p++) {
        if (!(m->scale[p] > 1e-3 * gsd)) m->scale[p] = gsd;
        if (!isfinite(m->lo[p])) m->lo[p] = glo, m->hi[p] = ghi;
    }
    m->global_sd = gsd;
    return ENG_OK;
}

/* Column standardisation on the training rows at their logged level, then the Gram matrices
 * (all training rows; with folds, also each fold's own rows).  Returns 0, ENG_ENOMEM or the
 * exchange's failure (over_ranks). */
static int qm_gram(ope_qmodel *m, qm_work *w) {
    const ope_qmodel_data *d = &m->d;
    const int D = m->D, NG = w->NG, DT = D * (D + 1) / 2;
    const long gn = m->n_train;
    int rc = ENG_OK;
    eng_xsum *x = malloc((size_t)(NG * DT > 2 * D ? NG * DT : 2 * D) * sizeof *x);
    double *part = malloc((size_t)NG * D * D * sizeof *part);
    if (!x || !part) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (reward model)");
        goto done;
    }
    /* 1. column means and sds: per product in row order, exactly across products */
    eng_xsum_zero(x, (size_t)2 * D);
    for (int p = 0; p < d->n_products; p++) {
        if (!used(d, p)) continue;
        memset(part, 0, (size_t)2 * D * sizeof *part);
        for (size_t r = d->off[p]; r < d->off[p + 1]; r++) {
            if (!is_train(d, r)) continue;
            design_raw(d, r, d->tr->level[r], w->z);
            for (int j = 1; j < D; j++) part[j] += w->z[j], part[D + j] += w->z[j] * w->z[j];
        }
        for (int j = 1; j < D; j++) eng_xsum_add(&x[j], part[j]), eng_xsum_add(&x[D + j], part[D + j]);
    }
    if ((rc = qm_reduce(d, x, (size_t)2 * D, NULL, 0))) goto done;
    for (int j = 1; j < D; j++) {
        m->mean[j] = eng_xsum_round(&x[j]) / gn;
        double v = eng_xsum_round(&x[D + j]) / gn - m->mean[j] * m->mean[j];
        m->sd[j] = v > 1e-12 ? sqrt(v) : 0.0;
    }
    /* 2. the Gram matrices (upper triangles): each product's, added exactly */
    eng_xsum_zero(x, (size_t)NG * DT);
    for (int p = 0; p < d->n_products; p++) {
        if (!used(d, p)) continue;
        memset(part, 0, (size_t)NG * D * D * sizeof *part);
        int nc = 0;
        for (size_t r = d->off[p]; r < d->off[p + 1]; r++) {
            if (!is_train(d, r)) continue;
            design(m, r, d->tr->level[r], w->Zc + (size_t)nc * D);
            w->fc[nc++] = fold_of(m, r);
            if (nc == CHUNK) flush(m, part, w->Zc, w->fc, nc), nc = 0;
        }
        if (d->off[p + 1] == d->off[p]) continue;
        flush(m, part, w->Zc, w->fc, nc);
        for (int g = 0, k = 0; g < NG; g++)
            for (int i = 0; i < D; i++)
                for (int j = i; j < D; j++, k++) eng_xsum_add(&x[k], part[(size_t)g * D * D + (size_t)i * D + j]);
    }
    if ((rc = qm_reduce(d, x, (size_t)NG * DT, NULL, 0))) goto done;
    for (int g = 0, k = 0; g < NG; g++)
        for (int i = 0; i < D; i++)
            for (int j = i; j < D; j++, k++) w->G[(size_t)g * D * D + (size_t)i * D + j] = eng_xsum_round(&x[k]);
done:
    free(x);
    free(part);
    return rc;
}

/* One backfitting round's coefficients: every fold's ridge solve with the current intercepts
 * removed from the targets.  Returns 0, ENG_ENUM (singular normal equations), ENG_ENOMEM or the
 * exchange's failure. */
static int qm_solve(ope_qmodel *m, qm_work *w, double lambda) {
    const env_transitions *tr = m->d.tr;
    const int D = m->D, NF = m->folds, P = m->d.n_products;
    double *z = w->z, *A = w->A, *G = w->G;
    /* right-hand sides with the current intercepts removed: each product's in row order,
     * added exactly across products */
    int rc;
    eng_xsum *x = malloc((size_t)NF * D * sizeof *x);
    if (!x) return eng_err_set(ENG_ENOMEM, "compare: out of memory (reward model)");
    eng_xsum_zero(x, (size_t)NF * D);
    for (int p = 0; p < P; p++) {
        if (!used(&m->d, p)) continue;
        memset(w->rhs, 0, (size_t)NF * D * sizeof *w->rhs);
        for (size_t r = m->d.off[p]; r < m->d.off[p + 1]; r++) {
            if (!is_train(&m->d, r)) continue;
            int f = fold_of(m, r);
            design(m, r, tr->level[r], z);
            for (int g = 0; g < NF; g++) {
                if (NF > 1 && g == f) continue;
                double y = tr->reward[r] / m->scale[p] - m->icpt[(size_t)g * P + p];
                cblas_daxpy(D, y, z, 1, w->rhs + (size_t)g * D, 1);
            }
        }
        for (int k = 0; k < NF * D; k++) eng_xsum_add(&x[k], w->rhs[k]);
    }
    rc = qm_reduce(&m->d, x, (size_t)NF * D, NULL, 0);
    for (int k = 0; !rc && k < NF * D; k++) w->rhs[k] = eng_xsum_round(&x[k]);
    free(x);
    if (rc) return rc;
    for (int g = 0; g < NF; g++) {
        /* A = G_total - G_fold (upper triangle) + lambda on the non-intercept diagonal */
        for (int i = 0; i < D; i++)
            for (int j = i; j < D; j++) {
                double v = G[(size_t)i * D + j];
                if (NF > 1) v -= G[(size_t)(1 + g) * D * D + (size_t)i * D + j];
                A[(size_t)i * D + j] = A[(size_t)j * D + i] = v;
            }
        for (int i = 1; i < D; i++) A[(size_t)i * D + i] += lambda;
        if (A[0] <= 0) A[0] = 1.0; /* no rows at all in this fold's complement */
        int n = D, one = 1, info = 0;
        double *b = m->beta + (size_t)g * D;
        memcpy(b, w->rhs + (size_t)g * D, (size_t)D * sizeof *b);
        /* row-major symmetric = column-major symmetric: "U" of one is "L" of the other */
        dposv_("L", &n, &one, A, &n, b, &n, &info, 1);
        if (info != 0)
            return eng_err_set(ENG_ENUM, "compare: reward model: singular normal equations (dposv info %d)", info);
    }
    return ENG_OK;
}

/* One backfitting round's per-product intercepts from the residuals, shrunk:
 * b_p = sum e / (n_p + kappa), kappa by the method of moments, into *kappa_out.  Returns 0 or the
 * exchange's failure (over_ranks). */
static int qm_intercepts(ope_qmodel *m, qm_work *w, double *kappa_out) {
    const env_transitions *tr = m->d.tr;
    const int D = m->D, NF = m->folds, P = m->d.n_products;
    double *res_sum = w->res_sum, *res_n = w->res_n, *z = w->z;
    memset(res_sum, 0, (size_t)w->NG * P * sizeof *res_sum);
    memset(res_n, 0, (size_t)w->NG * P * sizeof *res_n);
    eng_xsum x[4]; /* sse, and over products: mean residual, its square, rows */
    int64_t v[2] = {0, 0}; /* ne, products with >= 2 rows */
    eng_xsum_zero(x, 4);
    const int g0 = 0; /* method of moments on the fold-0 (or only) model's residuals */
    for (int p = 0; p < P; p++) {
        if (!used(&m->d, p)) continue;
        double sse = 0;
        for (size_t r = m->d.off[p]; r < m->d.off[p + 1]; r++) {
            if (!is_train(&m->d, r)) continue;
            int f = fold_of(m, r);
            design(m, r, tr->level[r], z);
            for (int g = 0; g < NF; g++) {
                if (NF > 1 && g == f) continue;
                double e = tr->reward[r] / m->scale[p] - cblas_ddot(D, z, 1, m->beta + (size_t)g * D, 1);
                res_sum[(size_t)g * P + p] += e;
                res_n[(size_t)g * P + p] += 1;
                if (g == (NF == 1 ? 0 : (f + 1) % NF)) sse += e * e, v[0]++; /* each row once */
            }
        }
        eng_xsum_add(&x[0], sse);
        double n = res_n[(size_t)g0 * P + p];
        if (n < 2) continue;
        double mb = res_sum[(size_t)g0 * P + p] / n;
        eng_xsum_add(&x[1], mb), eng_xsum_add(&x[2], mb * mb), eng_xsum_add(&x[3], n), v[1]++;
    }
    int rc = qm_reduce(&m->d, x, 4, v, 2);
    if (rc) return rc;
    const int64_t ne = v[0], kp = v[1];
    double sb = eng_xsum_round(&x[1]), sbb = eng_xsum_round(&x[2]), nbar = eng_xsum_round(&x[3]);
    double s2w = ne > 1 ? eng_xsum_round(&x[0]) / ne : 0;
    double tau2 = 0;
    if (kp > 1) {
        nbar /= kp;
        double vb = (sbb - sb * sb / kp) / (kp - 1);
        tau2 = vb - s2w / nbar;
    }
    double kappa = tau2 > 1e-12 ? s2w / tau2 : 1e12;
    for (int g = 0; g < NF; g++)
        for (int p = 0; p < P; p++) {
            double n = res_n[(size_t)g * P + p];
            m->icpt[(size_t)g * P + p] = n > 0 ? res_sum[(size_t)g * P + p] / (n + kappa) : 0.0;
        }
    m->resid_var = s2w;
    *kappa_out = kappa;
    return ENG_OK;
}

int ope_qmodel_fit(const ope_qmodel_data *d, ope_qmodel *m) {
    qm_work w;
    memset(&w, 0, sizeof w);
    ope_qmodel_free(m);
    m->d = *d;
    m->D = ope_qmodel_dim(d->F, d->K);
    m->folds = d->folds > 1 ? d->folds : 1;
    w.NG = m->folds == 1 ? 1 : m->folds + 1;
    int rc = qm_alloc(m, &w);
    if (d->over_ranks) rc = eng_par_agree(rc); /* a rank out of memory stops every rank */
    if (!rc) rc = qm_scales(m, w.np);
    if (!rc) rc = qm_gram(m, &w);
    if (rc) goto done;
    const double lambda = d->ridge_lambda > 1e-6 ? d->ridge_lambda : 1e-6;
    double kappa = 0;
    for (int round = 0; round < BACKFIT_ROUNDS; round++) {
        if ((rc = qm_solve(m, &w, lambda)) || (rc = qm_intercepts(m, &w, &kappa))) goto done;
    }
    m->kappa = kappa;
    ENG_INFO("compare: pooled reward model on %ld training rows, %d columns, %d fold(s), intercept shrinkage "
             "kappa %.3g, residual variance %.3g (scaled units)",
             m->n_train, m->D, m->folds, kappa, m->resid_var);
done:
    qm_work_free(&w);
    if (rc) ope_qmodel_free(m);
    return rc;
}
