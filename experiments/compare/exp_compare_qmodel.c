/* exp_compare_qmodel.c - the comparison's pooled one-step reward model q(s, level), used by
 * DM / DR / Switch-DR of every product and agent (docs/compare.md, "Reward model").
 *
 * One ridge regression over ALL products' TRAINING transitions (never the evaluation rows):
 *   target   y = r / scale_p            (scale_p = sd of product p's training rewards, so
 *                                        products of different sizes share one model)
 *   design   [standardised state s (FEAT_N), level one-hot (K), dk = ratio_k - 1,
 *             dc = ratio_k - ratio_incumbent, dk^2, dc^2, dk * s_j and dc * s_j for a few key
 *             features j (revenue, units, conversion, price and competitor ratios, promo)]
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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "eng_util.h"
#include "exp_compare_int.h"

extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info, size_t uplo_len);

static const int key_feat[] = {FEAT_REVENUE_1, FEAT_REVENUE_7,   FEAT_UNITS_7,       FEAT_CONV_7,
                               FEAT_PRICE_RATIO_BASE, FEAT_COMP_REL_MEAN, FEAT_DISCOUNT_DEPTH, FEAT_PROMO_PREV};
#define N_KEY ((int)(sizeof key_feat / sizeof key_feat[0]))
#define CHUNK 512
#define BACKFIT_ROUNDS 3

int cmp_qmodel_dim(int F, int K) { return 1 + F + K + 4 + 2 * N_KEY; }

/* 1 when transition r's own period ran a promotion (the history's flag), else 0. */
int cmp_row_promo(const cmp_ctx *c, size_t r) {
    const db_history *h = c->h;
    int p = c->tr->product[r], t = c->tr->t[r];
    return h->promo && p >= 0 && p < h->n_products && t >= 0 && t < h->n_periods &&
           h->promo[(size_t)p * h->n_periods + t];
}

/* Raw (unstandardised) design row of transition r at level k; z[0] = 1. */
static void design_raw(const cmp_ctx *c, size_t r, int k, double *z) {
    const int F = c->F, K = c->K;
    const float *s = c->tr->state + r * F;
    int j = 0;
    z[j++] = 1.0;
    for (int f = 0; f < F; f++) z[j++] = s[f];
    for (int l = 0; l < K; l++) z[j++] = l == k;
    double dk = env_grid_ratio(&c->cfg->grid, k) - 1.0;
    int inc = c->tr->inc_level[r];
    double rinc = inc >= 0 && inc < K ? env_grid_ratio(&c->cfg->grid, inc) : 1.0;
    double dc = env_grid_ratio(&c->cfg->grid, k) - rinc;
    z[j++] = dk;
    z[j++] = dc;
    z[j++] = dk * dk;
    z[j++] = dc * dc;
    for (int u = 0; u < N_KEY; u++) {
        z[j++] = dk * s[key_feat[u]];
        z[j++] = dc * s[key_feat[u]];
    }
}

static void design(const cmp_ctx *c, size_t r, int k, double *z) {
    const cmp_qmodel *m = &c->qm;
    design_raw(c, r, k, z);
    for (int j = 1; j < m->D; j++) z[j] = m->sd[j] > 0 ? (z[j] - m->mean[j]) / m->sd[j] : 0.0;
}

static int fold_of(const cmp_ctx *c, size_t r) {
    if (c->qm.folds <= 1) return 0;
    uint64_t h = eng_seed_derive(c->cfg->ope.seed ^ 0x716d6f64ULL, (uint64_t)r);
    return (int)(h % (uint64_t)c->qm.folds);
}

void cmp_qmodel_free(cmp_qmodel *m) {
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

void cmp_qmodel_predict(const cmp_ctx *c, size_t r, double *z, double *q) {
    const cmp_qmodel *m = &c->qm;
    int p = c->tr->product[r];
    int f = cmp_is_train(c, r) ? fold_of(c, r) : 0;
    const double *b = m->beta + (size_t)f * m->D;
    for (int k = 0; k < c->K; k++) {
        design(c, r, k, z);
        double v = m->scale[p] * (cblas_ddot(m->D, z, 1, b, 1) + m->icpt[(size_t)f * c->h->n_products + p]);
        if (v < m->lo[p]) v = m->lo[p];
        if (v > m->hi[p]) v = m->hi[p];
        q[k] = v;
    }
}

/* Flush a chunk of standardised rows into the Gram matrices of every fold but the rows' own. */
static void flush(cmp_qmodel *m, double *G, double *Zc, const int *fc, int nc) {
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

int cmp_qmodel_fit(cmp_ctx *c) {
    const env_transitions *tr = c->tr;
    const int P = c->h->n_products, K = c->K;
    cmp_qmodel *m = &c->qm;
    int rc = 0;
    double *G = NULL, *A = NULL, *Zc = NULL, *rhs = NULL, *res_sum = NULL, *res_n = NULL, *z = NULL;
    int *fc = NULL;
    long *np = NULL;
    cmp_qmodel_free(m);
    m->D = cmp_qmodel_dim(c->F, K);
    m->folds = c->cfg->eval_all && c->cfg->ope.cross_folds > 1 ? c->cfg->ope.cross_folds : 1;
    const int D = m->D, NF = m->folds, NG = NF == 1 ? 1 : NF + 1;
    m->beta = calloc((size_t)NF * D, sizeof *m->beta);
    m->mean = calloc((size_t)D, sizeof *m->mean);
    m->sd = calloc((size_t)D, sizeof *m->sd);
    m->icpt = calloc((size_t)NF * P, sizeof *m->icpt);
    m->scale = malloc((size_t)P * sizeof *m->scale);
    m->lo = malloc((size_t)P * sizeof *m->lo);
    m->hi = malloc((size_t)P * sizeof *m->hi);
    G = calloc((size_t)NG * D * D, sizeof *G);
    A = malloc((size_t)D * D * sizeof *A);
    Zc = malloc((size_t)CHUNK * D * sizeof *Zc);
    fc = malloc((size_t)CHUNK * sizeof *fc);
    rhs = calloc((size_t)NG * D, sizeof *rhs);
    res_sum = calloc((size_t)NG * P, sizeof *res_sum);
    res_n = calloc((size_t)NG * P, sizeof *res_n);
    np = calloc((size_t)P, sizeof *np);
    z = malloc((size_t)D * sizeof *z);
    if (!m->beta || !m->mean || !m->sd || !m->icpt || !m->scale || !m->lo || !m->hi || !G || !A || !Zc || !fc ||
        !rhs || !res_sum || !res_n || !np || !z) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (reward model)");
        goto done;
    }
    /* per-product scale and clip range from the training rewards; global fallbacks */
    double gs = 0, gs2 = 0, glo = INFINITY, ghi = -INFINITY;
    long gn = 0;
    for (int p = 0; p < P; p++) {
        double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
            if (!cmp_is_train(c, r)) continue;
            double y = tr->reward[r];
            s += y, s2 += y * y;
            if (y < lo) lo = y;
            if (y > hi) hi = y;
            np[p]++;
        }
        gs += s, gs2 += s2, gn += np[p];
        if (lo < glo) glo = lo;
        if (hi > ghi) ghi = hi;
        double var = np[p] > 1 ? (s2 - s * s / np[p]) / (np[p] - 1) : 0;
        m->scale[p] = np[p] >= c->cfg->min_history && var > 0 ? sqrt(var) : NAN;
        m->lo[p] = np[p] >= c->cfg->min_history ? lo : NAN;
        m->hi[p] = np[p] >= c->cfg->min_history ? hi : NAN;
    }
    m->n_train = gn;
    if (gn < 2 || !(ghi > glo)) {
        rc = eng_err_set(ENG_EINVAL, "compare: %ld training transitions with distinct rewards: no reward model", gn);
        goto done;
    }
    double gvar = (gs2 - gs * gs / gn) / (gn - 1), gsd = sqrt(gvar > 0 ? gvar : 0);
    for (int p = 0; p < P; p++) {
        if (!(m->scale[p] > 1e-3 * gsd)) m->scale[p] = gsd;
        if (!isfinite(m->lo[p])) m->lo[p] = glo, m->hi[p] = ghi;
    }
    m->global_sd = gsd;
    /* column standardisation on the training rows at their logged level */
    for (size_t r = 0; r < tr->n; r++) {
        if (!cmp_is_train(c, r)) continue;
        design_raw(c, r, tr->level[r], z);
        for (int j = 1; j < D; j++) m->mean[j] += z[j], m->sd[j] += z[j] * z[j];
    }
    for (int j = 1; j < D; j++) {
        m->mean[j] /= gn;
        double v = m->sd[j] / gn - m->mean[j] * m->mean[j];
        m->sd[j] = v > 1e-12 ? sqrt(v) : 0.0;
    }
    /* Gram matrices (all training rows; with folds, also each fold's own rows) */
    int nc = 0;
    for (size_t r = 0; r < tr->n; r++) {
        if (!cmp_is_train(c, r)) continue;
        design(c, r, tr->level[r], Zc + (size_t)nc * D);
        fc[nc++] = fold_of(c, r);
        if (nc == CHUNK) flush(m, G, Zc, fc, nc), nc = 0;
    }
    flush(m, G, Zc, fc, nc);
    const double lambda = c->cfg->ope.ridge_lambda > 1e-6 ? c->cfg->ope.ridge_lambda : 1e-6;
    double kappa = 0;
    for (int round = 0; round < BACKFIT_ROUNDS; round++) {
        /* right-hand sides with the current intercepts removed */
        memset(rhs, 0, (size_t)NG * D * sizeof *rhs);
        for (size_t r = 0; r < tr->n; r++) {
            if (!cmp_is_train(c, r)) continue;
            int p = tr->product[r], f = fold_of(c, r);
            design(c, r, tr->level[r], z);
            for (int g = 0; g < NF; g++) {
                if (NF > 1 && g == f) continue;
                double y = tr->reward[r] / m->scale[p] - m->icpt[(size_t)g * P + p];
                cblas_daxpy(D, y, z, 1, rhs + (size_t)g * D, 1);
            }
        }
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
            memcpy(b, rhs + (size_t)g * D, (size_t)D * sizeof *b);
            /* row-major symmetric = column-major symmetric: "U" of one is "L" of the other */
            dposv_("L", &n, &one, A, &n, b, &n, &info, 1);
            if (info != 0) {
                rc = eng_err_set(ENG_ENUM, "compare: reward model: singular normal equations (dposv info %d)", info);
                goto done;
            }
        }
        /* per-product intercepts from the residuals, shrunk: b_p = sum e / (n_p + kappa) */
        memset(res_sum, 0, (size_t)NG * P * sizeof *res_sum);
        memset(res_n, 0, (size_t)NG * P * sizeof *res_n);
        double sse = 0;
        long ne = 0;
        for (size_t r = 0; r < tr->n; r++) {
            if (!cmp_is_train(c, r)) continue;
            int p = tr->product[r], f = fold_of(c, r);
            design(c, r, tr->level[r], z);
            for (int g = 0; g < NF; g++) {
                if (NF > 1 && g == f) continue;
                double e = tr->reward[r] / m->scale[p] - cblas_ddot(D, z, 1, m->beta + (size_t)g * D, 1);
                res_sum[(size_t)g * P + p] += e;
                res_n[(size_t)g * P + p] += 1;
                if (g == (NF == 1 ? 0 : (f + 1) % NF)) sse += e * e, ne++; /* each row once */
            }
        }
        /* method of moments on the fold-0 (or only) model's residuals */
        const int g0 = 0;
        double sb = 0, sbb = 0, nbar = 0;
        int kp = 0;
        for (int p = 0; p < P; p++) {
            double n = res_n[(size_t)g0 * P + p];
            if (n < 2) continue;
            double mb = res_sum[(size_t)g0 * P + p] / n;
            sb += mb, sbb += mb * mb, nbar += n, kp++;
        }
        double s2w = ne > 1 ? sse / ne : 0;
        double tau2 = 0;
        if (kp > 1) {
            nbar /= kp;
            double vb = (sbb - sb * sb / kp) / (kp - 1);
            tau2 = vb - s2w / nbar;
        }
        kappa = tau2 > 1e-12 ? s2w / tau2 : 1e12;
        for (int g = 0; g < NF; g++)
            for (int p = 0; p < P; p++) {
                double n = res_n[(size_t)g * P + p];
                m->icpt[(size_t)g * P + p] = n > 0 ? res_sum[(size_t)g * P + p] / (n + kappa) : 0.0;
            }
        m->resid_var = s2w;
    }
    m->kappa = kappa;
    ENG_INFO("compare: pooled reward model on %ld training rows, %d columns, %d fold(s), intercept shrinkage "
             "kappa %.3g, residual variance %.3g (scaled units)",
             gn, D, NF, kappa, m->resid_var);
done:
    free(G);
    free(A);
    free(Zc);
    free(fc);
    free(rhs);
    free(res_sum);
    free(res_n);
    free(np);
    free(z);
    if (rc) cmp_qmodel_free(m);
    return rc;
}
