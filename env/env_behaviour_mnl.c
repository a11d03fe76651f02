/* env_behaviour_mnl.c - the behaviour policy's multinomial logit (env_behaviour.h): the pooled
 * Newton fit, the per-product fits shrunk toward it, and its probabilities.  How and why: the
 * comment at the top of env_behaviour.c. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"
#include "env_behaviour_int.h"
#include "feat.h"

/* 1 when cfg's pool_init is a usable start for K levels (the right length, every entry finite). */
static int pool_init_ok(const env_behaviour_cfg *cfg, int K) {
    if (!cfg->pool_init || cfg->pool_init_len != ENV_BEHAV_POOL_LEN(K)) return 0;
    for (int i = 0; i < cfg->pool_init_len; i++)
        if (!isfinite(cfg->pool_init[i])) return 0;
    return 1;
}

/* ---- small SPD solves ------------------------------------------------------------------------ */
/* In-place Cholesky A = L L' of an n x n matrix (lower triangle used and overwritten). */
static int chol(double *A, int n) {
    for (int c = 0; c < n; c++) {
        double d = A[(size_t)c * n + c];
        for (int k = 0; k < c; k++) d -= A[(size_t)c * n + k] * A[(size_t)c * n + k];
        if (!(d > 0.0) || !isfinite(d)) return ENG_ENUM;
        d = sqrt(d);
        A[(size_t)c * n + c] = d;
        for (int r = c + 1; r < n; r++) {
            double v = A[(size_t)r * n + c];
            for (int k = 0; k < c; k++) v -= A[(size_t)r * n + k] * A[(size_t)c * n + k];
            A[(size_t)r * n + c] = v / d;
        }
    }
    return ENG_OK;
}

static void chol_solve(const double *L, int n, double *b) {
    cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, L, n, b, 1);
    cblas_dtrsv(CblasRowMajor, CblasLower, CblasTrans, CblasNonUnit, n, L, n, b, 1);
}
/* ---- multinomial logit -------------------------------------------------------------------------- */
static void standardise(const env_behaviour *b, double *x) {
    for (int d = 1; d < NX; d++) x[d] = (x[d] - b->mu[d]) / b->sd[d];
}

/* In place: scores row[K] -> softmax; returns log-sum-exp. */
static double softmax_row(double *row, int K) {
    double mx = row[0];
    for (int k = 1; k < K; k++) mx = row[k] > mx ? row[k] : mx;
    double s = 0.0;
    for (int k = 0; k < K; k++) s += (row[k] = exp(row[k] - mx));
    for (int k = 0; k < K; k++) row[k] /= s;
    return mx + log(s);
}

static void add_z(double *row, int K, int j, const double *g) {
    double z[NZ];
    for (int k = 0; k < K; k++) {
        zfeat(K, j, k, z);
        row[k] += g[0] * z[0] + g[1] * z[1] + g[2] * z[2];
    }
}

/* Pooled objective at (W, gam) over m standardised rows X; S[m][K] receives the residuals
 * softmax - onehot when resid != 0. */
static double pool_obj(int K, const double *W, const double *gam, const double *X, const int16_t *J,
                       const int16_t *L, size_t m, double l2, double *S, int resid) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, K, NX, 1.0, X, NX, W, NX, 0.0, S, K);
    double f = 0.0;
    for (size_t i = 0; i < m; i++) {
        double *row = S + i * K;
        add_z(row, K, J[i], gam);
        double sl = row[L[i]];
        f += softmax_row(row, K) - sl;
        if (resid) row[L[i]] -= 1.0;
    }
    f += 0.5 * l2 * (cblas_ddot(K * NX, W, 1, W, 1) + cblas_ddot(NZ, gam, 1, gam, 1));
    return f;
}

#define POOL_CHUNK 2048
#define POOL_REUSE_GAIN 4.0 /* see mnl_fit_pool */

/* Gradient g[q] (q = K NX + NZ) of the pooled objective from the residuals S = softmax - onehot
 * of the current point: the slopes' part one dgemm, the stickiness part one pass over the rows. */
static void pool_grad(int K, const double *W, const double *gam, const double *X, const int16_t *J, size_t m,
                      double l2, const double *S, double *g) {
    const int qw = K * NX;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, NX, (int)m, 1.0, S, K, X, NX, 0.0, g, NX);
    cblas_daxpy(qw, l2, W, 1, g, 1);
    for (int a = 0; a < NZ; a++) g[qw + a] = l2 * gam[a];
    for (size_t i = 0; i < m; i++) {
        const double *res = S + i * K;
        for (int k = 0; k < K; k++) {
            double z[NZ];
            zfeat(K, J[i], k, z);
            for (int a = 0; a < NZ; a++) g[qw + a] += res[k] * z[a];
        }
    }
}

/* Gradient g[q] and Hessian H[q][q] (lower triangle; q = K NX + NZ) of the pooled objective
 * from the residuals S = softmax - onehot of the current point.  Row i of the design is
 * A_i = [e_k (x) x_i, z_ik] per level k, so H = l2 I + sum_i A_i' diag(pi_i) A_i - v_i v_i'
 * with v_i = A_i' pi_i: the v v' part is one dsyrk per chunk of rows, the diagonal part one
 * weighted dsyrk per level (block k, k) plus the small z blocks. */
static void pool_grad_hess(int K, const double *W, const double *gam, const double *X, const int16_t *J,
                           const int16_t *L, size_t m, double l2, const double *S, double *g, double *H, double *V,
                           double *Xk) {
    const int q = K * NX + NZ, qw = K * NX;
    pool_grad(K, W, gam, X, J, m, l2, S, g);
    memset(H, 0, (size_t)q * q * sizeof(double));
    for (int a = 0; a < q; a++) H[(size_t)a * q + a] = l2 + 1e-9 * ((double)m + 1.0);
    for (size_t c0 = 0; c0 < m; c0 += POOL_CHUNK) {
        size_t rows = m - c0 < POOL_CHUNK ? m - c0 : POOL_CHUNK;
        for (size_t r = 0; r < rows; r++) {
            size_t i = c0 + r;
            const double *x = X + i * NX, *res = S + i * K;
            double *v = V + r * q, zs[NZ] = {0, 0, 0};
            for (int k = 0; k < K; k++) {
                double pk = res[k] + (k == L[i]), z[NZ];
                zfeat(K, J[i], k, z);
                for (int d = 0; d < NX; d++) v[k * NX + d] = pk * x[d];
                for (int a = 0; a < NZ; a++) {
                    zs[a] += pk * z[a];
                    for (int d = 0; d < NX; d++) H[(size_t)(qw + a) * q + k * NX + d] += pk * z[a] * x[d];
                    for (int c = 0; c <= a; c++) H[(size_t)(qw + a) * q + qw + c] += pk * z[a] * z[c];
                }
            }
            for (int a = 0; a < NZ; a++) v[qw + a] = zs[a];
        }
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, q, (int)rows, -1.0, V, q, 1.0, H, q);
        for (int k = 0; k < K; k++) {
            for (size_t r = 0; r < rows; r++) {
                size_t i = c0 + r;
                double w = sqrt(S[i * K + k] + (k == L[i]));
                for (int d = 0; d < NX; d++) Xk[r * NX + d] = w * X[i * NX + d];
            }
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, NX, (int)rows, 1.0, Xk, NX, 1.0,
                        H + (size_t)(k * NX) * q + k * NX, q);
        }
    }
}

static int mnl_fit_pool(env_behaviour *b, const double *X, const int16_t *J, const int16_t *L, size_t m,
                        const env_behaviour_cfg *cfg) {
    const int K = b->K, q = K * NX + NZ, qw = K * NX;
    const double l2 = cfg->l2;
    int rc = ENG_OK;
    size_t chunk = m < POOL_CHUNK ? (m ? m : 1) : POOL_CHUNK;
    double *S = eng_malloc((m ? m : 1) * (size_t)K * sizeof(double));
    double *g = eng_malloc((size_t)q * sizeof(double));
    double *d = eng_malloc((size_t)q * sizeof(double));
    double *th = eng_malloc((size_t)q * sizeof(double));
    double *H = eng_malloc((size_t)q * q * sizeof(double));
    double *V = eng_malloc(chunk * (size_t)q * sizeof(double));
    double *Xk = eng_malloc(chunk * NX * sizeof(double));
    if (!S || !g || !d || !th || !H || !V || !Xk) {
        rc = ENG_ENOMEM;
        goto done;
    }
    if (pool_init_ok(cfg, K)) { /* a warm start (e.g. last night's fit): the same optimum, fewer steps */
        memcpy(b->W, cfg->pool_init, (size_t)qw * sizeof(double));
        memcpy(b->gam, cfg->pool_init + qw, sizeof b->gam);
    } else {
        memset(b->W, 0, (size_t)qw * sizeof(double));
        memset(b->gam, 0, sizeof b->gam);
    }
    double f = pool_obj(K, b->W, b->gam, X, J, L, m, l2, S, 1);
    if (!isfinite(f)) { /* a start the objective cannot value: from zero */
        memset(b->W, 0, (size_t)qw * sizeof(double));
        memset(b->gam, 0, sizeof b->gam);
        f = pool_obj(K, b->W, b->gam, X, J, L, m, l2, S, 1);
    }
    /* Newton with the factor of the Hessian kept for the next step while it still works (a full
     * step that shrank the decrement at least POOL_REUSE_GAIN-fold): the steps then cost one
     * gradient instead of an assembly.  Any direction from a positive definite matrix descends, the
     * gradient is exact and the stop is the same test, so the optimum is the same (to the Newton
     * tolerance); a step that fails with a kept factor is retried with a fresh Hessian. */
    int it = 0, fresh = 0, have = 0; /* have: H holds a factor; fresh: of the current point's Hessian */
    double prev_dec = INFINITY;
    b->pool_hess = 0;
    for (; it < cfg->max_iter; it++) {
        if (!have) {
            pool_grad_hess(K, b->W, b->gam, X, J, L, m, l2, S, g, H, V, Xk);
            if (chol(H, q)) {
                rc = eng_err_set(ENG_ENUM, "behaviour policy: pooled Hessian not positive definite");
                goto done;
            }
            have = fresh = 1;
            b->pool_hess++;
        } else {
            pool_grad(K, b->W, b->gam, X, J, m, l2, S, g);
            fresh = 0;
        }
        for (int a = 0; a < q; a++) d[a] = -g[a];
        chol_solve(H, q, d);
        double slope = cblas_ddot(q, g, 1, d, 1);
        if (!(-slope > 1e-10 * (fabs(f) + 1.0))) break; /* Newton decrement ~ 0: converged */
        double step = 1.0, fn = f;
        int accepted = 0;
        for (int bt = 0; bt < 40; bt++, step *= 0.5) {
            memcpy(th, b->W, (size_t)qw * sizeof(double));
            memcpy(th + qw, b->gam, sizeof b->gam);
            cblas_daxpy(q, step, d, 1, th, 1);
            fn = pool_obj(K, th, th + qw, X, J, L, m, l2, S, 1);
            if (isfinite(fn) && fn <= f + 1e-4 * step * slope) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) { /* no descent left: restore the residuals at the current point */
            f = pool_obj(K, b->W, b->gam, X, J, L, m, l2, S, 1);
            if (fresh) break;
            have = 0; /* a kept factor: retry with the Hessian here */
            continue;
        }
        memcpy(b->W, th, (size_t)qw * sizeof(double));
        memcpy(b->gam, th + qw, sizeof b->gam);
        f = fn;
        have = step == 1.0 && (fresh || -slope * POOL_REUSE_GAIN <= prev_dec);
        prev_dec = -slope;
    }
    b->pool_iters = it;
    b->pool_nll = m ? f / (double)m : 0.0;
    for (int i = 0; i < qw; i++)
        if (!isfinite(b->W[i])) {
            rc = eng_err_set(ENG_ENUM, "behaviour policy: pooled fit diverged");
            goto done;
        }
done:
    free(S);
    free(g);
    free(d);
    free(th);
    free(H);
    free(V);
    free(Xk);
    return rc;
}

/* Product objective at offsets th = (u[K], delta[NZ]) given base scores B[m][K]; when H != NULL
 * also the gradient g[q] and Hessian H[q][q] (q = K + NZ; lower triangle filled). pi: [K] work. */
static double prod_obj(int K, const double *B, const int16_t *J, const int16_t *L, size_t m, double tau,
                       const double *th, double *pi, double *g, double *H) {
    const int q = K + NZ;
    double f = 0.5 * tau * cblas_ddot(q, th, 1, th, 1);
    if (H) {
        memset(H, 0, (size_t)q * q * sizeof(double));
        for (int a = 0; a < q; a++) {
            g[a] = tau * th[a];
            H[(size_t)a * q + a] = tau;
        }
    }
    for (size_t i = 0; i < m; i++) {
        memcpy(pi, B + i * K, (size_t)K * sizeof(double));
        cblas_daxpy(K, 1.0, th, 1, pi, 1);
        add_z(pi, K, J[i], th + K);
        double sl = pi[L[i]];
        f += softmax_row(pi, K) - sl;
        if (!H) continue;
        double pz[NZ] = {0, 0, 0};
        for (int k = 0; k < K; k++) {
            double z[NZ];
            zfeat(K, J[i], k, z);
            double r = pi[k] - (k == L[i]);
            g[k] += r;
            for (int a = 0; a < NZ; a++) {
                g[K + a] += r * z[a];
                pz[a] += pi[k] * z[a];
            }
        }
        /* uu block: diag(pi) - pi pi' */
        cblas_dsyr(CblasRowMajor, CblasLower, K, -1.0, pi, 1, H, q);
        for (int k = 0; k < K; k++) H[(size_t)k * q + k] += pi[k];
        /* (delta, u) and (delta, delta) blocks */
        for (int k = 0; k < K; k++) {
            double z[NZ];
            zfeat(K, J[i], k, z);
            for (int a = 0; a < NZ; a++) {
                H[(size_t)(K + a) * q + k] += pi[k] * (z[a] - pz[a]);
                for (int c = 0; c <= a; c++) H[(size_t)(K + a) * q + K + c] += pi[k] * z[a] * z[c];
            }
        }
        for (int a = 0; a < NZ; a++)
            for (int c = 0; c <= a; c++) H[(size_t)(K + a) * q + K + c] -= pz[a] * pz[c];
    }
    return f;
}

/* Newton fit of product offsets; th[q] in/out (starts at 0). work: pi[K], g[q], H[q*q], d[q], tt[q]. */
static int mnl_fit_product(int K, const double *B, const int16_t *J, const int16_t *L, size_t m, double tau,
                           double *th, double *pi, double *g, double *H, double *d, double *tt) {
    const int q = K + NZ;
    for (int it = 0; it < 30; it++) {
        double f = prod_obj(K, B, J, L, m, tau, th, pi, g, H);
        if (chol(H, q)) return eng_err_set(ENG_ENUM, "behaviour policy: product Hessian not positive definite");
        for (int a = 0; a < q; a++) d[a] = -g[a];
        chol_solve(H, q, d);
        double slope = cblas_ddot(q, g, 1, d, 1);
        if (!(slope < -1e-12 * (fabs(f) + 1.0))) break;
        double step = 1.0, fn = f;
        int ok = 0;
        for (int bt = 0; bt < 40; bt++, step *= 0.5) {
            memcpy(tt, th, (size_t)q * sizeof(double));
            cblas_daxpy(q, step, d, 1, tt, 1);
            fn = prod_obj(K, B, J, L, m, tau, tt, pi, NULL, NULL);
            if (isfinite(fn) && fn <= f + 1e-4 * step * slope) {
                ok = 1;
                break;
            }
        }
        if (!ok) break;
        memcpy(th, tt, (size_t)q * sizeof(double));
        if (step * fabs(d[cblas_idamax(q, d, 1)]) < 1e-8) break;
    }
    for (int a = 0; a < q; a++)
        if (!isfinite(th[a])) return eng_err_set(ENG_ENUM, "behaviour policy: product fit diverged");
    return ENG_OK;
}

/* One row of the pooled subsample as it crosses between ranks: its position in the catalogue's
 * row order, its standardised features, incumbent level and logged level. */
typedef struct pool_rec {
    int64_t g;
    double x[NX];
    int32_t j, l;
} pool_rec;

static int cmp_pool_rec(const void *a, const void *b) {
    const pool_rec *x = a, *y = b;
    return (x->g > y->g) - (x->g < y->g);
}

/* The pooled fit's stride subsample over every rank's rows (cfg->over_ranks): each product's
 * first row's position in the catalogue's row order (product rows counted in catalogue order,
 * one allgather of (catalogue index, rows)), then the rows at positions 0, stride, 2 stride, ...
 * (stride from every rank's row count, as one process would take them), gathered to every rank
 * and put in position order.  *X [m][NX] (standardised), *J, *L [m]: malloc'd, the caller
 * frees.  Collective.  Returns 0, ENG_ENOMEM, ENG_EINVAL (catalogue index out of range) or the
 * exchange's failure. */
static int pool_sample_split(const env_behaviour *b, const rows_src *src, const int16_t *lev, const size_t *order,
                             const size_t *poff, const env_behaviour_cfg *cfg, double **X, int16_t **J,
                             int16_t **L, size_t *m_out) {
    const int P = b->n_products, NC = cfg->n_catalogue;
    int rc = ENG_OK;
    int64_t *mine = eng_malloc((size_t)(P ? P : 1) * 2 * sizeof *mine), *start = eng_calloc((size_t)NC + 1, sizeof *start);
    size_t *counts = eng_calloc((size_t)eng_par_size(), sizeof *counts), total = 0;
    char *all = NULL, *sel_all = NULL;
    pool_rec *sel = NULL;
    if (!mine || !start || !counts) rc = ENG_ENOMEM;
    for (int p = 0; !rc && p < P; p++) {
        mine[2 * p] = cfg->gidx ? cfg->gidx[p] : p;
        mine[2 * p + 1] = (int64_t)(poff[p + 1] - poff[p]);
        if (mine[2 * p] < 0 || mine[2 * p] >= NC)
            rc = eng_err_set(ENG_EINVAL, "behaviour policy: catalogue index %lld of %d", (long long)mine[2 * p], NC);
    }
    if ((rc = eng_par_agree(rc))) goto done;
    if ((rc = eng_par_allgatherv(mine, (size_t)P * 2 * sizeof *mine, &all, counts))) goto done;
    for (int r = 0; r < eng_par_size(); r++) total += counts[r];
    for (size_t o = 0; o + 2 * sizeof(int64_t) <= total; o += 2 * sizeof(int64_t)) {
        int64_t e[2];
        memcpy(e, all + o, sizeof e);
        if (e[0] >= 0 && e[0] < NC) start[e[0] + 1] += e[1];
    }
    for (int i = 0; i < NC; i++) start[i + 1] += start[i];
    const int64_t n_all = start[NC];
    int64_t stride = (n_all + cfg->pool_max_rows - 1) / cfg->pool_max_rows;
    if (stride < 1) stride = 1;
    size_t ns = 0;
    for (int p = 0; p < P; p++) { /* this rank's rows of the subsample */
        int64_t g0 = start[mine[2 * p]], k0 = (stride - g0 % stride) % stride;
        if (k0 < mine[2 * p + 1]) ns += (size_t)((mine[2 * p + 1] - 1 - k0) / stride + 1);
    }
    sel = eng_malloc((ns ? ns : 1) * sizeof *sel);
    rc = eng_par_agree(sel ? ENG_OK : ENG_ENOMEM);
    if (rc) goto done;
    size_t k = 0;
    for (int p = 0; p < P; p++) {
        int64_t g0 = start[mine[2 * p]];
        for (int64_t q = (stride - g0 % stride) % stride; q < mine[2 * p + 1]; q += stride, k++) {
            size_t i = order[poff[p] + (size_t)q];
            int j;
            memset(&sel[k], 0, sizeof sel[k]);
            sel[k].g = g0 + q;
            env_bhv_row_x(src, i, sel[k].x, &j);
            standardise(b, sel[k].x);
            sel[k].j = j;
            sel[k].l = lev[i];
        }
    }
    if ((rc = eng_par_allgatherv(sel, ns * sizeof *sel, &sel_all, counts))) goto done;
    total = 0;
    for (int r = 0; r < eng_par_size(); r++) total += counts[r];
    const size_t m = total / sizeof(pool_rec);
    pool_rec *rec = (pool_rec *)(void *)sel_all;
    qsort(rec, m, sizeof *rec, cmp_pool_rec);
    *X = eng_malloc((m ? m : 1) * NX * sizeof **X);
    *J = eng_malloc((m ? m : 1) * sizeof **J);
    *L = eng_malloc((m ? m : 1) * sizeof **L);
    if (!*X || !*J || !*L) rc = ENG_ENOMEM;
    if ((rc = eng_par_agree(rc))) goto done;
    for (size_t r = 0; r < m; r++) {
        memcpy(*X + r * NX, rec[r].x, sizeof rec[r].x);
        (*J)[r] = (int16_t)rec[r].j;
        (*L)[r] = (int16_t)rec[r].l;
    }
    *m_out = m;
done:
    free(mine);
    free(start);
    free(counts);
    free(all);
    free(sel);
    free(sel_all);
    return rc;
}

int env_bhv_mnl_fit(env_behaviour *b, const rows_src *src, const int32_t *product, const int16_t *lev, size_t n,
                   const env_behaviour_cfg *cfg) {
    const int K = b->K, P = b->n_products, q = K + NZ;
    int rc = ENG_OK;
    size_t stride = (size_t)(((long long)n + cfg->pool_max_rows - 1) / cfg->pool_max_rows);
    if (stride < 1) stride = 1;
    size_t m = n ? (n - 1) / stride + 1 : 0;
    double *X = NULL, *B = NULL, *work = NULL, *cnt = NULL, *sq = NULL;
    int16_t *J = NULL, *Lv = NULL;
    size_t *order = NULL, *poff = NULL;
    b->W = eng_calloc((size_t)K * NX, sizeof(double));
    b->u = eng_calloc((size_t)(P ? P : 1) * K, sizeof(double));
    b->dg = eng_calloc((size_t)(P ? P : 1) * NZ, sizeof(double));
    b->xbar = eng_calloc((size_t)(P ? P : 1) * NX, sizeof(double));
    cnt = eng_calloc((size_t)(P ? P : 1), sizeof(double));
    sq = eng_calloc((size_t)(P ? P : 1) * NX, sizeof(double));
    poff = eng_calloc((size_t)P + 1, sizeof(size_t));
    order = eng_malloc((n ? n : 1) * sizeof(size_t));
    X = eng_malloc((m ? m : 1) * NX * sizeof(double));
    J = eng_malloc((m ? m : 1) * sizeof(int16_t));
    Lv = eng_malloc((m ? m : 1) * sizeof(int16_t));
    work = eng_malloc(((size_t)K + (size_t)q * (q + 4)) * sizeof(double));
    if (!b->W || !b->u || !b->dg || !b->xbar || !cnt || !sq || !poff || !order || !X || !J || !Lv || !work)
        rc = ENG_ENOMEM;
    if (cfg->over_ranks) rc = eng_par_agree(rc); /* collective below: every rank or none */
    if (rc) goto done;
    /* pass 1: feature means and sds over all rows (each product's sums in row order, added
     * exactly across products), per-product means; rows grouped by product */
    double x[NX];
    for (size_t i = 0; i < n; i++) {
        int j;
        env_bhv_row_x(src, i, x, &j);
        double *xb = b->xbar + (size_t)product[i] * NX, *xq = sq + (size_t)product[i] * NX;
        for (int d = 0; d < NX; d++) {
            xb[d] += x[d];
            xq[d] += x[d] * x[d];
        }
        cnt[product[i]] += 1.0;
        poff[product[i] + 1]++;
    }
    eng_xsum acc[2 * NX];
    int64_t n_all = (int64_t)n;
    eng_xsum_zero(acc, 2 * NX);
    for (int p = 0; p < P; p++)
        for (int d = 0; d < NX; d++) eng_xsum_add(&acc[d], b->xbar[(size_t)p * NX + d]), eng_xsum_add(&acc[NX + d], sq[(size_t)p * NX + d]);
    if (cfg->over_ranks &&
        ((rc = eng_par_allreduce_xsum(acc, 2 * NX)) || (rc = eng_par_allreduce_i64(&n_all, 1, ENG_PAR_SUM))))
        goto done;
    for (int d = 0; d < NX; d++) {
        b->mu[d] = n_all ? eng_xsum_round(&acc[d]) / (double)n_all : 0.0;
        double v = n_all ? eng_xsum_round(&acc[NX + d]) / (double)n_all - b->mu[d] * b->mu[d] : 0.0;
        b->sd[d] = v > 1e-12 ? sqrt(v) : 1.0;
        b->xbar_pool[d] = b->mu[d];
    }
    b->mu[0] = 0.0, b->sd[0] = 1.0;
    for (int p = 0; p < P; p++) {
        double *xb = b->xbar + (size_t)p * NX;
        if (cnt[p] > 0) cblas_dscal(NX, 1.0 / cnt[p], xb, 1);
        else memcpy(xb, b->xbar_pool, sizeof b->xbar_pool);
        poff[p + 1] += poff[p];
    }
    for (size_t i = 0; i < n; i++) order[poff[product[i]]++] = i; /* poff[p] walks to the end of p's block */
    for (int p = P; p > 0; p--) poff[p] = poff[p - 1]; /* restore the starts */
    poff[0] = 0;
    /* pass 2: pooled fit on the stride subsample (split: of every rank's rows, exchanged) */
    if (cfg->over_ranks) {
        free(X), free(J), free(Lv);
        X = NULL, J = NULL, Lv = NULL;
        if ((rc = pool_sample_split(b, src, lev, order, poff, cfg, &X, &J, &Lv, &m))) goto done;
    } else {
        for (size_t r = 0; r < m; r++) {
            int j;
            env_bhv_row_x(src, r * stride, X + r * NX, &j);
            standardise(b, X + r * NX);
            J[r] = (int16_t)j;
            Lv[r] = lev[r * stride];
        }
    }
    if ((rc = mnl_fit_pool(b, X, J, Lv, m, cfg))) goto done;
    /* pass 3: product offsets (rows of p in order[poff[p] .. poff[p + 1])) */
    size_t maxp = 0;
    for (int p = 0; p < P; p++)
        if (poff[p + 1] - poff[p] > maxp) maxp = poff[p + 1] - poff[p];
    if (maxp > m) {
        free(X), free(J), free(Lv);
        X = eng_malloc(maxp * NX * sizeof(double));
        J = eng_malloc(maxp * sizeof(int16_t));
        Lv = eng_malloc(maxp * sizeof(int16_t));
        if (!X || !J || !Lv) {
            rc = ENG_ENOMEM;
            goto done;
        }
    }
    B = eng_malloc((maxp ? maxp : 1) * (size_t)K * sizeof(double));
    if (!B) {
        rc = ENG_ENOMEM;
        goto done;
    }
    double *pi = work, *g = pi + K, *H = g + q, *d = H + (size_t)q * q, *tt = d + q, *th = tt + q;
    for (int p = 0; p < P; p++) {
        size_t mp = poff[p + 1] - poff[p];
        if (!mp) continue;
        for (size_t r = 0; r < mp; r++) {
            size_t i = order[poff[p] + r];
            int j;
            env_bhv_row_x(src, i, X + r * NX, &j);
            standardise(b, X + r * NX);
            J[r] = (int16_t)j;
            Lv[r] = lev[i];
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mp, K, NX, 1.0, X, NX, b->W, NX, 0.0, B, K);
        for (size_t r = 0; r < mp; r++) add_z(B + r * K, K, J[r], b->gam);
        memset(th, 0, (size_t)q * sizeof(double));
        if ((rc = mnl_fit_product(K, B, J, Lv, mp, cfg->shrink, th, pi, g, H, d, tt))) goto done;
        memcpy(b->u + (size_t)p * K, th, (size_t)K * sizeof(double));
        memcpy(b->dg + (size_t)p * NZ, th + K, NZ * sizeof(double));
    }
done:
    free(X);
    free(B);
    free(J);
    free(Lv);
    free(work);
    free(cnt);
    free(sq);
    free(order);
    free(poff);
    return rc;
}

/* P(. | p, raw features x, incumbent level j) of the mnl model. */
void env_bhv_mnl_probs(const env_behaviour *b, int p, const double *xraw, int j, double *probs) {
    const int K = b->K;
    double x[NX], g[NZ];
    memcpy(x, xraw, sizeof x);
    standardise(b, x);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, K, NX, 1.0, b->W, NX, x, 1, 0.0, probs, 1);
    cblas_daxpy(K, 1.0, b->u + (size_t)p * K, 1, probs, 1);
    for (int a = 0; a < NZ; a++) g[a] = b->gam[a] + b->dg[(size_t)p * NZ + a];
    add_z(probs, K, j, g);
    softmax_row(probs, K);
    for (int k = 0; k < K; k++) probs[k] = (1.0 - b->eps) * probs[k] + b->eps / K;
}
