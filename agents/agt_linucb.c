/* agt_linucb.c - see agt_linucb.h. */
#include "agt_linucb.h"

#include <cblas.h>
#include <hdf5.h>

#include "eng_h5.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* LAPACK (Fortran interface exported by OpenBLAS); trailing size_t = hidden string length. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);

struct agt_linucb {
    agt_linucb_cfg cfg;
    int P, S;        /* products; shared blocks (hybrid: 1 or P; disjoint: 0) */
    int chunk;       /* arms per stacked sgemv */
    float *sc;       /* [P][K] scores scratch for choose */
    float *ainv;     /* [P][K][d][d] */
    float *b;        /* [P][K][d] */
    float *theta;    /* [P][K][d]  (disjoint: A^{-1} b; hybrid: unused, computed on the fly) */
    long *count;     /* [P][K] */
    float *B;        /* hybrid [P][K][d][k] */
    double *A0;      /* hybrid [S][k][k] */
    float *A0inv;    /* hybrid [S][k][k] */
    double *b0;      /* hybrid [S][k] */
    float *beta;     /* hybrid [S][k] */
    /* scratch */
    float *u;        /* [K][d] */
    float *q;        /* [K] */
    float *t;        /* [d][k] */
    float *w;        /* [k] */
    float *zw;       /* [k] */
    float *kk;       /* [k][k] */
    double *work;    /* [k][k] */
};

agt_linucb_cfg agt_linucb_default(void) {
    agt_linucb_cfg c = {AGT_LINUCB_DISJOINT, 21, 32, 8, 1.0f, 1.0f, 0, 0};
    return c;
}

int agt_linucb_P(const agt_linucb *m) { return m->P; }
const agt_linucb_cfg *agt_linucb_config(const agt_linucb *m) { return &m->cfg; }
void agt_linucb_set_alpha(agt_linucb *m, float alpha) { m->cfg.alpha = alpha; }

static int check_cfg(const agt_linucb_cfg *c, int P) {
    if (P < 1) return eng_err_set(ENG_EINVAL, "linucb: P must be >= 1 (got %d)", P);
    if (c->kind != AGT_LINUCB_DISJOINT && c->kind != AGT_LINUCB_HYBRID)
        return eng_err_set(ENG_EINVAL, "linucb: unknown kind %d", (int)c->kind);
    if (c->n_arms < 1 || c->n_arms > 4096) return eng_err_set(ENG_EINVAL, "linucb: n_arms must be 1..4096 (got %d)", c->n_arms);
    if (c->d < 1 || c->d > 4096) return eng_err_set(ENG_EINVAL, "linucb: d must be 1..4096 (got %d)", c->d);
    if (c->kind == AGT_LINUCB_HYBRID && (c->k < 1 || c->k > 1024))
        return eng_err_set(ENG_EINVAL, "linucb: hybrid k must be 1..1024 (got %d)", c->k);
    if (!(c->ridge > 0) || !isfinite(c->ridge)) return eng_err_set(ENG_EINVAL, "linucb: ridge must be > 0 (got %g)", (double)c->ridge);
    if (!(c->alpha >= 0) || !isfinite(c->alpha)) return eng_err_set(ENG_EINVAL, "linucb: alpha must be >= 0 (got %g)", (double)c->alpha);
    return ENG_OK;
}

void agt_linucb_free(agt_linucb *m) {
    if (!m) return;
    free(m->ainv); free(m->b); free(m->theta); free(m->count); free(m->B); free(m->A0);
    free(m->A0inv); free(m->b0); free(m->beta); free(m->u); free(m->q); free(m->sc); free(m->t); free(m->w);
    free(m->zw); free(m->kk); free(m->work);
    free(m);
}

/* Re-invert shared block s from A0 (Cholesky in double) and refresh beta = A0^{-1} b0. */
static int hybrid_refresh(agt_linucb *m, int s) {
    const int k = m->cfg.k;
    const double *A0 = m->A0 + (size_t)s * k * k;
    double *W = m->work;
    memcpy(W, A0, sizeof(double) * k * k);
    int info = 0;
    dpotrf_("L", &k, W, &k, &info, 1);
    if (info == 0) dpotri_("L", &k, W, &k, &info, 1);
    if (info != 0) return eng_err_set(ENG_ENUM, "linucb: shared block %d is not positive definite (LAPACK info %d)", s, info);
    /* column-major lower = row-major upper: mirror the computed triangle into a full matrix */
    float *Ai = m->A0inv + (size_t)s * k * k;
    for (int i = 0; i < k; i++)
        for (int j = 0; j <= i; j++) {
            float v = (float)W[(size_t)j * k + i]; /* column-major (i,j), i >= j */
            Ai[(size_t)i * k + j] = v;
            Ai[(size_t)j * k + i] = v;
        }
    float *beta = m->beta + (size_t)s * k;
    const double *b0 = m->b0 + (size_t)s * k;
    for (int i = 0; i < k; i++) {
        double acc = 0;
        for (int j = 0; j < k; j++) acc += (double)Ai[(size_t)i * k + j] * b0[j];
        beta[i] = (float)acc;
    }
    return ENG_OK;
}

static int alloc_state(agt_linucb *m) {
    const size_t P = (size_t)m->P, K = (size_t)m->cfg.n_arms, d = (size_t)m->cfg.d;
    const size_t k = m->cfg.kind == AGT_LINUCB_HYBRID ? (size_t)m->cfg.k : 0, S = (size_t)m->S;
    m->ainv = eng_calloc(P * K * d * d, sizeof(float));
    m->b = eng_calloc(P * K * d, sizeof(float));
    m->theta = eng_calloc(P * K * d, sizeof(float));
    m->count = eng_calloc(P * K, sizeof(long));
    m->u = eng_calloc(K * d, sizeof(float));
    m->q = eng_calloc(K, sizeof(float));
    m->sc = eng_calloc(P * K, sizeof(float));
    /* OpenBLAS runs a gemv on one thread below m * n = 9216 (2304 * GEMM_MULTITHREAD_THRESHOLD) */
    m->chunk = (int)(8192 / (d * d));
    if (m->chunk < 1) m->chunk = 1;
    if (!m->sc || !m->ainv || !m->b || !m->theta || !m->count || !m->u || !m->q) return ENG_ENOMEM;
    if (k) {
        m->B = eng_calloc(P * K * d * k, sizeof(float));
        m->A0 = eng_calloc(S * k * k, sizeof(double));
        m->A0inv = eng_calloc(S * k * k, sizeof(float));
        m->b0 = eng_calloc(S * k, sizeof(double));
        m->beta = eng_calloc(S * k, sizeof(float));
        m->t = eng_calloc(d * k, sizeof(float));
        m->w = eng_calloc(k, sizeof(float));
        m->zw = eng_calloc(k, sizeof(float));
        m->kk = eng_calloc(k * k, sizeof(float));
        m->work = eng_calloc(k * k, sizeof(double));
        if (!m->B || !m->A0 || !m->A0inv || !m->b0 || !m->beta || !m->t || !m->w || !m->zw || !m->kk || !m->work)
            return ENG_ENOMEM;
    }
    return ENG_OK;
}

int agt_linucb_create(agt_linucb **out, const agt_linucb_cfg *cfg, int P) {
    if (!out || !cfg) return eng_err_set(ENG_EINVAL, "linucb_create: NULL argument");
    *out = NULL;
    int st = check_cfg(cfg, P);
    if (st) return st;
    agt_linucb *m = eng_calloc(1, sizeof *m);
    if (!m) return ENG_ENOMEM;
    m->cfg = *cfg;
    m->P = P;
    m->S = cfg->kind == AGT_LINUCB_HYBRID ? (cfg->share_across_products ? 1 : P) : 0;
    if ((st = alloc_state(m))) goto cleanup;
    const size_t K = (size_t)cfg->n_arms, d = (size_t)cfg->d;
    const float inv = 1.0f / cfg->ridge;
    for (size_t pa = 0; pa < (size_t)P * K; pa++)
        for (size_t i = 0; i < d; i++) m->ainv[pa * d * d + i * d + i] = inv;
    if (cfg->kind == AGT_LINUCB_HYBRID) {
        const int k = cfg->k;
        for (int s = 0; s < m->S; s++) {
            for (int i = 0; i < k; i++) m->A0[(size_t)s * k * k + (size_t)i * k + i] = cfg->ridge;
            if ((st = hybrid_refresh(m, s))) goto cleanup;
        }
    }
    *out = m;
    return ENG_OK;
cleanup:
    agt_linucb_free(m);
    return st;
}

static inline const float *x_of(const agt_linucb *m, const float *x, int p, int a) {
    const size_t d = (size_t)m->cfg.d;
    return m->cfg.x_per_arm ? x + ((size_t)p * m->cfg.n_arms + a) * d : x + (size_t)p * d;
}

int agt_linucb_scores(agt_linucb *m, const float *x, const float *z, const unsigned char *allowed,
                      float *scores) {
    if (!m || !x || !scores) return eng_err_set(ENG_EINVAL, "linucb_scores: NULL argument");
    const int K = m->cfg.n_arms, d = m->cfg.d, k = m->cfg.k;
    const int hybrid = m->cfg.kind == AGT_LINUCB_HYBRID;
    if (hybrid && !z) return eng_err_set(ENG_EINVAL, "linucb_scores: hybrid model needs z");
    const float alpha = m->cfg.alpha;
    for (int p = 0; p < m->P; p++) {
        const float *Ainv = m->ainv + (size_t)p * K * d * d;
        float *sc = scores + (size_t)p * K;
        if (!hybrid && !m->cfg.x_per_arm) {
            /* one context for all arms: U = [A_1^{-1}; ...; A_K^{-1}] x, then per-arm dots */
            const float *xp = x + (size_t)p * d;
            /* in chunks small enough that OpenBLAS keeps them on one thread: forking threads
             * for a few microseconds of work costs more than it saves */
            for (int a0 = 0; a0 < K; a0 += m->chunk) {
                int na = K - a0 < m->chunk ? K - a0 : m->chunk;
                cblas_sgemv(CblasRowMajor, CblasNoTrans, na * d, d, 1.0f, Ainv + (size_t)a0 * d * d, d, xp, 1, 0.0f,
                            m->u + (size_t)a0 * d, 1);
            }
            cblas_sgemv(CblasRowMajor, CblasNoTrans, K, d, 1.0f, m->u, d, xp, 1, 0.0f, m->q, 1);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, K, d, 1.0f, m->theta + (size_t)p * K * d, d, xp, 1,
                        0.0f, sc, 1);
            for (int a = 0; a < K; a++) {
                float v = m->q[a] > 0 ? m->q[a] : 0.0f;
                sc[a] += alpha * sqrtf(v);
            }
        } else {
            const int s = hybrid ? (m->S == 1 ? 0 : p) : 0;
            for (int a = 0; a < K; a++) {
                const float *xa = x_of(m, x, p, a);
                const float *Aa = Ainv + (size_t)a * d * d;
                float *u = m->u;
                cblas_sgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0f, Aa, d, xa, 1, 0.0f, u, 1);
                float var = cblas_sdot(d, u, 1, xa, 1);
                float mean;
                if (!hybrid) {
                    mean = cblas_sdot(d, m->theta + ((size_t)p * K + a) * d, 1, xa, 1);
                } else {
                    const float *Ba = m->B + ((size_t)p * K + a) * d * k;
                    const float *za = z + ((size_t)p * K + a) * k;
                    const float *beta = m->beta + (size_t)s * k;
                    const float *A0i = m->A0inv + (size_t)s * k * k;
                    /* w = B_a^T A_a^{-1} x */
                    cblas_sgemv(CblasRowMajor, CblasTrans, d, k, 1.0f, Ba, k, u, 1, 0.0f, m->w, 1);
                    /* mean = z.beta + x^T A^{-1} (b - B beta) = z.beta + u.b - w.beta */
                    mean = cblas_sdot(k, za, 1, beta, 1) + cblas_sdot(d, u, 1, m->b + ((size_t)p * K + a) * d, 1) -
                           cblas_sdot(k, m->w, 1, beta, 1);
                    /* s = (z - w)^T A0^{-1} (z - w) + x^T A^{-1} x  (Li et al. eq. for s_{t,a}) */
                    for (int i = 0; i < k; i++) m->zw[i] = za[i] - m->w[i];
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, k, k, 1.0f, A0i, k, m->zw, 1, 0.0f, m->kk, 1);
                    var += cblas_sdot(k, m->zw, 1, m->kk, 1);
                }
                sc[a] = mean + alpha * sqrtf(var > 0 ? var : 0.0f);
            }
        }
        if (allowed)
            for (int a = 0; a < K; a++)
                if (!allowed[(size_t)p * K + a]) sc[a] = -INFINITY;
    }
    return ENG_OK;
}

int agt_linucb_choose(agt_linucb *m, const float *x, const float *z, const unsigned char *allowed,
                      int *arm, float *scores) {
    if (!m || !arm) return eng_err_set(ENG_EINVAL, "linucb_choose: NULL argument");
    const int K = m->cfg.n_arms;
    float *sc = scores ? scores : m->sc;
    int st = agt_linucb_scores(m, x, z, allowed, sc);
    if (st) goto cleanup;
    for (int p = 0; p < m->P; p++) {
        const float *s = sc + (size_t)p * K;
        int best = -1;
        for (int a = 0; a < K; a++) {
            if (allowed && !allowed[(size_t)p * K + a]) continue;
            if (best < 0 || s[a] > s[best]) best = a; /* strict: lowest index wins ties */
        }
        if (best < 0) { st = eng_err_set(ENG_EINVAL, "linucb_choose: product %d has no allowed price level", p); goto cleanup; }
        arm[p] = best;
    }
cleanup:
    return st;
}

/* Sherman-Morrison: Ainv <- Ainv - (Ainv x)(Ainv x)^T / (1 + x^T Ainv x) (Ainv symmetric). */
static void sm_update(float *Ainv, const float *x, float *u, int d) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0f, Ainv, d, x, 1, 0.0f, u, 1);
    float den = 1.0f + cblas_sdot(d, u, 1, x, 1);
    cblas_sger(CblasRowMajor, d, d, -1.0f / den, u, 1, u, 1, Ainv, d);
}

/* A0 += sign * B^T A^{-1} B and b0 += sign * B^T A^{-1} b for one arm (hybrid). */
static void hybrid_fold(agt_linucb *m, int s, const float *Ainv, const float *Ba, const float *ba, double sign) {
    const int d = m->cfg.d, k = m->cfg.k;
    /* T = A^{-1} B  (d x k), then kk = B^T T (k x k) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, k, d, 1.0f, Ainv, d, Ba, k, 0.0f, m->t, k);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, d, 1.0f, Ba, k, m->t, k, 0.0f, m->kk, k);
    double *A0 = m->A0 + (size_t)s * k * k;
    for (int i = 0; i < k * k; i++) A0[i] += sign * (double)m->kk[i];
    /* B^T A^{-1} b = T^T b */
    cblas_sgemv(CblasRowMajor, CblasTrans, d, k, 1.0f, m->t, k, ba, 1, 0.0f, m->w, 1);
    double *b0 = m->b0 + (size_t)s * k;
    for (int i = 0; i < k; i++) b0[i] += sign * (double)m->w[i];
}

int agt_linucb_update(agt_linucb *m, const float *x, const float *z, const int *arm,
                      const float *reward, const unsigned char *active) {
    if (!m || !x || !arm || !reward) return eng_err_set(ENG_EINVAL, "linucb_update: NULL argument");
    const int K = m->cfg.n_arms, d = m->cfg.d, k = m->cfg.k;
    const int hybrid = m->cfg.kind == AGT_LINUCB_HYBRID;
    if (hybrid && !z) return eng_err_set(ENG_EINVAL, "linucb_update: hybrid model needs z");
    /* validate everything first so a bad row changes nothing */
    for (int p = 0; p < m->P; p++) {
        if (active && !active[p]) continue;
        if (arm[p] < 0 || arm[p] >= K) return eng_err_set(ENG_EINVAL, "linucb_update: product %d: arm %d outside 0..%d", p, arm[p], K - 1);
        if (!isfinite(reward[p])) return eng_err_set(ENG_ENUM, "linucb_update: product %d: non-finite reward", p);
        const float *xa = x_of(m, x, p, arm[p]);
        for (int i = 0; i < d; i++)
            if (!isfinite(xa[i])) return eng_err_set(ENG_ENUM, "linucb_update: product %d: non-finite context x[%d]", p, i);
        if (hybrid) {
            const float *za = z + ((size_t)p * K + arm[p]) * k;
            for (int i = 0; i < k; i++)
                if (!isfinite(za[i])) return eng_err_set(ENG_ENUM, "linucb_update: product %d: non-finite z[%d]", p, i);
        }
    }
    for (int p = 0; p < m->P; p++) {
        if (active && !active[p]) continue;
        const int a = arm[p];
        const float *xa = x_of(m, x, p, a);
        float *Ainv = m->ainv + ((size_t)p * K + a) * d * d;
        float *ba = m->b + ((size_t)p * K + a) * d;
        if (!hybrid) {
            sm_update(Ainv, xa, m->u, d);
            cblas_saxpy(d, reward[p], xa, 1, ba, 1);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0f, Ainv, d, ba, 1, 0.0f,
                        m->theta + ((size_t)p * K + a) * d, 1);
        } else {
            const int s = m->S == 1 ? 0 : p;
            float *Ba = m->B + ((size_t)p * K + a) * d * k;
            const float *za = z + ((size_t)p * K + a) * k;
            hybrid_fold(m, s, Ainv, Ba, ba, +1.0);
            sm_update(Ainv, xa, m->u, d);
            cblas_sger(CblasRowMajor, d, k, 1.0f, xa, 1, za, 1, Ba, k);
            cblas_saxpy(d, reward[p], xa, 1, ba, 1);
            double *A0 = m->A0 + (size_t)s * k * k, *b0 = m->b0 + (size_t)s * k;
            for (int i = 0; i < k; i++) {
                for (int j = 0; j < k; j++) A0[(size_t)i * k + j] += (double)za[i] * za[j];
                b0[i] += (double)reward[p] * za[i];
            }
            hybrid_fold(m, s, Ainv, Ba, ba, -1.0);
            int st = hybrid_refresh(m, s);
            if (st) return st;
            /* theta_a for inspection: A^{-1}(b - B beta) */
            float *th = m->theta + ((size_t)p * K + a) * d;
            memcpy(m->u, ba, sizeof(float) * d);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, d, k, -1.0f, Ba, k, m->beta + (size_t)s * k, 1, 1.0f, m->u, 1);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0f, Ainv, d, m->u, 1, 0.0f, th, 1);
        }
        m->count[(size_t)p * K + a]++;
    }
    return ENG_OK;
}

int agt_linucb_get_arm(const agt_linucb *m, int p, int a, float *theta, float *beta, long *count) {
    if (!m || p < 0 || p >= m->P || a < 0 || a >= m->cfg.n_arms)
        return eng_err_set(ENG_EINVAL, "linucb_get_arm: product %d / arm %d out of range", p, a);
    const size_t d = (size_t)m->cfg.d, K = (size_t)m->cfg.n_arms;
    if (theta) memcpy(theta, m->theta + ((size_t)p * K + a) * d, sizeof(float) * d);
    if (beta && m->cfg.kind == AGT_LINUCB_HYBRID)
        memcpy(beta, m->beta + (size_t)(m->S == 1 ? 0 : p) * m->cfg.k, sizeof(float) * m->cfg.k);
    if (count) *count = m->count[(size_t)p * K + a];
    return ENG_OK;
}

int agt_linucb_get_ainv(const agt_linucb *m, int p, int a, float *ainv) {
    if (!m || !ainv || p < 0 || p >= m->P || a < 0 || a >= m->cfg.n_arms)
        return eng_err_set(ENG_EINVAL, "linucb_get_ainv: product %d / arm %d out of range", p, a);
    const size_t d = (size_t)m->cfg.d, K = (size_t)m->cfg.n_arms;
    memcpy(ainv, m->ainv + ((size_t)p * K + a) * d * d, sizeof(float) * d * d);
    return ENG_OK;
}

/* ---- HDF5 -------------------------------------------------------------------------- */

#define LINUCB_FORMAT_VERSION 1

static int h5_write(hid_t f, const char *name, hid_t mem_type, hid_t file_type, const void *buf, hsize_t n) {
    hid_t sp = H5Screate_simple(1, &n, NULL);
    if (sp < 0) return -1;
    hid_t ds = H5Dcreate2(f, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = ds < 0 ? -1 : H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return e < 0 ? -1 : 0;
}

/* Read dataset `name` of exactly n elements; -1 when missing or of the wrong size. */
static int h5_read(hid_t f, const char *name, hid_t mem_type, void *buf, hsize_t n) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return -1;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    int rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    hsize_t dim = 0;
    int ok = rank == 1 && H5Sget_simple_extent_dims(sp, &dim, NULL) == 1 && dim == n;
    if (sp >= 0) H5Sclose(sp);
    herr_t e = ok ? H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
    H5Dclose(ds);
    return e < 0 ? -1 : 0;
}

int agt_linucb_save(const agt_linucb *m, const char *path) {
    if (!m || !path) return eng_err_set(ENG_EINVAL, "linucb_save: NULL argument");
    size_t n = strlen(path) + 32;
    char *tmp = eng_malloc(n);
    if (!tmp) return ENG_ENOMEM;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int st = ENG_OK;
    eng_h5_quiet q;
    eng_h5_quiet_begin(&q);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) { st = eng_err_set(ENG_EIO, "linucb_save: cannot create '%s'", tmp); goto cleanup; }
    const agt_linucb_cfg *c = &m->cfg;
    int hdr[10] = {LINUCB_FORMAT_VERSION, (int)c->kind, c->n_arms, c->d, c->k, c->x_per_arm,
                   c->share_across_products, m->P, m->S, 0};
    float fh[2] = {c->alpha, c->ridge};
    const hsize_t P = (hsize_t)m->P, K = (hsize_t)c->n_arms, d = (hsize_t)c->d, k = (hsize_t)c->k, S = (hsize_t)m->S;
    int e = h5_write(f, "header", H5T_NATIVE_INT, H5T_STD_I32LE, hdr, 10);
    e |= h5_write(f, "hyper", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, fh, 2);
    e |= h5_write(f, "ainv", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, m->ainv, P * K * d * d);
    e |= h5_write(f, "b", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, m->b, P * K * d);
    e |= h5_write(f, "theta", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, m->theta, P * K * d);
    e |= h5_write(f, "count", H5T_NATIVE_LONG, H5T_STD_I64LE, m->count, P * K);
    if (c->kind == AGT_LINUCB_HYBRID) {
        e |= h5_write(f, "B", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, m->B, P * K * d * k);
        e |= h5_write(f, "A0", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, m->A0, S * k * k);
        e |= h5_write(f, "b0", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, m->b0, S * k);
    }
    if (H5Fclose(f) < 0) e = -1;
    f = -1;
    if (e) { unlink(tmp); st = eng_err_set(ENG_EIO, "linucb_save: writing '%s' failed", tmp); goto cleanup; }
    st = eng_atomic_commit(tmp, path);
cleanup:
    eng_h5_quiet_end(&q);
    free(tmp);
    return st;
}

int agt_linucb_load(agt_linucb **out, const char *path) {
    if (!out || !path) return eng_err_set(ENG_EINVAL, "linucb_load: NULL argument");
    *out = NULL;
    int st = ENG_OK;
    agt_linucb *m = NULL;
    eng_h5_quiet q;
    eng_h5_quiet_begin(&q);
    hid_t f = -1;
    if (access(path, R_OK) != 0) { st = eng_err_set(ENG_ENOTFOUND, "linucb_load: cannot read '%s'", path); goto cleanup; }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) { st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s' is not a readable HDF5 file", path); goto cleanup; }
    int hdr[10];
    float fh[2];
    if (h5_read(f, "header", H5T_NATIVE_INT, hdr, 10) || h5_read(f, "hyper", H5T_NATIVE_FLOAT, fh, 2)) {
        st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s' has no LinUCB header", path); goto cleanup;
    }
    if (hdr[0] != LINUCB_FORMAT_VERSION) {
        st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s' has format version %d (expected %d)", path, hdr[0], LINUCB_FORMAT_VERSION);
        goto cleanup;
    }
    agt_linucb_cfg c = {(agt_linucb_kind)hdr[1], hdr[2], hdr[3], hdr[4], fh[0], fh[1], hdr[5], hdr[6]};
    if ((st = agt_linucb_create(&m, &c, hdr[7])) != ENG_OK) {
        st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s': bad header (%s)", path, eng_err_msg()); goto cleanup;
    }
    if (m->S != hdr[8]) { st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s': inconsistent shared-block count", path); goto cleanup; }
    const hsize_t P = (hsize_t)m->P, K = (hsize_t)c.n_arms, d = (hsize_t)c.d, k = (hsize_t)c.k, S = (hsize_t)m->S;
    int e = h5_read(f, "ainv", H5T_NATIVE_FLOAT, m->ainv, P * K * d * d);
    e |= h5_read(f, "b", H5T_NATIVE_FLOAT, m->b, P * K * d);
    e |= h5_read(f, "theta", H5T_NATIVE_FLOAT, m->theta, P * K * d);
    e |= h5_read(f, "count", H5T_NATIVE_LONG, m->count, P * K);
    if (c.kind == AGT_LINUCB_HYBRID) {
        e |= h5_read(f, "B", H5T_NATIVE_FLOAT, m->B, P * K * d * k);
        e |= h5_read(f, "A0", H5T_NATIVE_DOUBLE, m->A0, S * k * k);
        e |= h5_read(f, "b0", H5T_NATIVE_DOUBLE, m->b0, S * k);
    }
    if (e) { st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s': missing or mis-sized dataset", path); goto cleanup; }
    for (size_t i = 0; i < P * K * d * d; i++)
        if (!isfinite(m->ainv[i])) { st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s': non-finite A^-1", path); goto cleanup; }
    for (int s = 0; s < m->S; s++)
        if ((st = hybrid_refresh(m, s))) { st = eng_err_set(ENG_EFORMAT, "linucb_load: '%s': %s", path, eng_err_msg()); goto cleanup; }
    *out = m;
    m = NULL;
cleanup:
    if (f >= 0) H5Fclose(f);
    eng_h5_quiet_end(&q);
    agt_linucb_free(m);
    return st;
}
