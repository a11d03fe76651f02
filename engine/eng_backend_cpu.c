/* eng_backend_cpu.c - the CPU backend: host memory, OpenBLAS sgemm, plain C loops.
 *
 * This is the reference implementation of eng_backend.h.  Loops are kept simple (one
 * branch-free inner loop per op, activation switch hoisted out) so that gcc -O2 can
 * vectorise them.  Reductions (loss, sumsq, bias gradient) accumulate in double where
 * the result is reported to the host, and in float for bias gradients (like cuBLAS).
 */
#include "eng_backend.h"
#include "eng_util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* gcc -O2 uses the "very cheap" vectoriser cost model, which refuses any loop whose trip
 * count is not a known multiple of the vector width; the elementwise loops below are the
 * only hot non-BLAS code, so let the vectoriser handle them here (dynamic cost model). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#define CPU_ALIGN 64

/* ---- memory ---------------------------------------------------------------- */

static int cpu_alloc(float **out, size_t n) {
    *out = NULL;
    if (n > ((size_t)-1 - CPU_ALIGN) / sizeof(float))
        return eng_err_set(ENG_ENOMEM, "cpu backend: allocation of %zu floats overflows", n);
    size_t bytes = n * sizeof(float);
    bytes = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    if (bytes == 0) bytes = CPU_ALIGN;
    float *p = aligned_alloc(CPU_ALIGN, bytes);
    if (!p) return eng_err_set(ENG_ENOMEM, "cpu backend: out of memory allocating %zu floats", n);
    memset(p, 0, bytes);
    *out = p;
    return ENG_OK;
}

static void cpu_free(float *p) { free(p); }

static int cpu_copy(float *dst, const float *src, size_t n) {
    if (n && dst != src) memmove(dst, src, n * sizeof(float));
    return ENG_OK;
}

static int cpu_fill(float *dst, float value, size_t n) {
    for (size_t k = 0; k < n; k++) dst[k] = value;
    return ENG_OK;
}

/* ---- GEMM -------------------------------------------------------------------- */

static int cpu_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                    long strideA, const float *B, int ldb, long strideB, float beta, float *C, int ldc,
                    long strideC, int batch) {
    if (M < 0 || N < 0 || K < 0 || batch < 0)
        return eng_err_set(ENG_EINVAL, "cpu gemm: negative size (M %d N %d K %d batch %d)", M, N, K, batch);
    if (M == 0 || N == 0 || batch == 0) return ENG_OK;
    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = transB ? CblasTrans : CblasNoTrans;
    for (int b = 0; b < batch; b++)
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A + (long)b * strideA, lda, B + (long)b * strideB, ldb,
                    beta, C + (long)b * strideC, ldc);
    return ENG_OK;
}

/* ---- activations --------------------------------------------------------------- */

static int cpu_bias_act(float *Y, const float *bias, long stride_bias, int P, int rows, int N, eng_act act) {
    for (int p = 0; p < P; p++) {
        const float *b = bias + (long)p * stride_bias;
        float *y = Y + (long)p * rows * N;
        for (int i = 0; i < rows; i++, y += N) {
            switch (act) {
            case ENG_ACT_RELU:
                for (int j = 0; j < N; j++) {
                    float v = y[j] + b[j];
                    y[j] = v > 0.0f ? v : 0.0f;
                }
                break;
            case ENG_ACT_TANH:
                for (int j = 0; j < N; j++) y[j] = tanhf(y[j] + b[j]);
                break;
            case ENG_ACT_IDENTITY:
                for (int j = 0; j < N; j++) y[j] += b[j];
                break;
            default:
                return eng_err_set(ENG_EINVAL, "cpu bias_act: unknown activation %d", (int)act);
            }
        }
    }
    return ENG_OK;
}

static int cpu_act_backward(float *dY, const float *Y, size_t n, eng_act act) {
    switch (act) {
    case ENG_ACT_RELU:
        for (size_t k = 0; k < n; k++) dY[k] = Y[k] > 0.0f ? dY[k] : 0.0f;
        return ENG_OK;
    case ENG_ACT_TANH:
        for (size_t k = 0; k < n; k++) dY[k] *= 1.0f - Y[k] * Y[k];
        return ENG_OK;
    case ENG_ACT_IDENTITY:
        return ENG_OK;
    }
    return eng_err_set(ENG_EINVAL, "cpu act_backward: unknown activation %d", (int)act);
}

static int cpu_bias_grad(float *db, long stride_db, const float *dY, int P, int rows, int N, int accumulate) {
    for (int p = 0; p < P; p++) {
        float *d = db + (long)p * stride_db;
        const float *g = dY + (long)p * rows * N;
        if (!accumulate)
            for (int j = 0; j < N; j++) d[j] = 0.0f;
        for (int i = 0; i < rows; i++, g += N)
            for (int j = 0; j < N; j++) d[j] += g[j];
    }
    return ENG_OK;
}

/* ---- loss ---------------------------------------------------------------------- */

static int cpu_loss(eng_loss kind, float delta, const float *pred, const float *target, const float *weight,
                    float *grad, float *loss_host, int P, int rows, int N) {
    if (kind != ENG_LOSS_MSE && kind != ENG_LOSS_HUBER)
        return eng_err_set(ENG_EINVAL, "cpu loss: unknown loss kind %d", (int)kind);
    if (kind == ENG_LOSS_HUBER && !(delta > 0.0f))
        return eng_err_set(ENG_EINVAL, "cpu loss: Huber delta must be > 0 (got %g)", (double)delta);
    const long n = (long)rows * N;
    for (int p = 0; p < P; p++) {
        const float *x = pred + p * n, *t = target + p * n;
        const float *w = weight ? weight + p * n : NULL;
        double wsum = 0.0;
        if (w)
            for (long k = 0; k < n; k++) wsum += w[k];
        else
            wsum = (double)n;
        const double norm = wsum > 1.0 ? wsum : 1.0;
        const float inv = (float)(1.0 / norm);
        double acc = 0.0;
        for (long k = 0; k < n; k++) {
            float d = x[k] - t[k];
            float wk = w ? w[k] : 1.0f;
            float l, dl;
            if (kind == ENG_LOSS_MSE) {
                l = d * d;
                dl = 2.0f * d;
            } else {
                float a = fabsf(d);
                if (a <= delta) {
                    l = 0.5f * d * d;
                    dl = d;
                } else {
                    l = delta * (a - 0.5f * delta);
                    dl = d > 0.0f ? delta : -delta;
                }
            }
            acc += (double)wk * (double)l;
            if (grad) grad[p * n + k] = wk * dl * inv;
        }
        if (loss_host) loss_host[p] = (float)(acc / norm);
    }
    return ENG_OK;
}

/* ---- reductions and optimiser ---------------------------------------------------- */

static int cpu_sumsq(const float *x, long stride, int n, int P, double *out_host) {
    for (int p = 0; p < P; p++) {
        const float *v = x + (long)p * stride;
        double s = 0.0;
        for (int k = 0; k < n; k++) s += (double)v[k] * (double)v[k];
        out_host[p] = s;
    }
    return ENG_OK;
}

static int cpu_scale(float *x, long stride, int n, int P, const float *scale_host) {
    for (int p = 0; p < P; p++) {
        float *v = x + (long)p * stride;
        const float s = scale_host[p];
        if (s == 1.0f) continue;
        for (int k = 0; k < n; k++) v[k] *= s;
    }
    return ENG_OK;
}

static int cpu_adam(float *w, const float *g, float *m, float *v, size_t per_product, int P,
                    const unsigned char *mask_host, float lr, float beta1, float beta2, float eps, float bc1,
                    float bc2) {
    if (!(bc1 > 0.0f) || !(bc2 > 0.0f))
        return eng_err_set(ENG_EINVAL, "cpu adam: bias corrections must be > 0 (bc1 %g, bc2 %g)", (double)bc1,
                           (double)bc2);
    const float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
    const float step = lr / bc1, inv_bc2 = 1.0f / bc2;
    for (int p = 0; p < P; p++) {
        if (mask_host && !mask_host[p]) continue;
        size_t o = (size_t)p * per_product;
        float *wp = w + o, *mp = m + o, *vp = v + o;
        const float *gp = g + o;
        size_t k = 0;
#ifdef __SSE2__
        /* sqrtf keeps errno semantics at -O2, which stops the vectoriser; do 4 at a time */
        const __m128 vb1 = _mm_set1_ps(beta1), vb2 = _mm_set1_ps(beta2), va1 = _mm_set1_ps(a1),
                     va2 = _mm_set1_ps(a2), vstep = _mm_set1_ps(step), vinv = _mm_set1_ps(inv_bc2),
                     veps = _mm_set1_ps(eps);
        for (; k + 4 <= per_product; k += 4) {
            __m128 gk = _mm_loadu_ps(gp + k);
            __m128 mk = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(mp + k)), _mm_mul_ps(va1, gk));
            __m128 vk = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(vp + k)), _mm_mul_ps(_mm_mul_ps(va2, gk), gk));
            _mm_storeu_ps(mp + k, mk);
            _mm_storeu_ps(vp + k, vk);
            __m128 den = _mm_add_ps(_mm_sqrt_ps(_mm_mul_ps(vk, vinv)), veps);
            _mm_storeu_ps(wp + k, _mm_sub_ps(_mm_loadu_ps(wp + k), _mm_div_ps(_mm_mul_ps(vstep, mk), den)));
        }
#endif
        for (; k < per_product; k++) {
            float gk = gp[k];
            float mk = beta1 * mp[k] + a1 * gk;
            float vk = beta2 * vp[k] + a2 * gk * gk;
            mp[k] = mk;
            vp[k] = vk;
            wp[k] -= step * mk / (sqrtf(vk * inv_bc2) + eps);
        }
    }
    return ENG_OK;
}

static int cpu_polyak(float *dst, const float *src, size_t n, float tau) {
    const float keep = 1.0f - tau;
    for (size_t k = 0; k < n; k++) dst[k] = tau * src[k] + keep * dst[k];
    return ENG_OK;
}

static int cpu_sync(void) { return ENG_OK; }

static const eng_backend g_cpu = {
    .name = "cpu",
    .kind = ENG_BACKEND_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .gemm = cpu_gemm,
    .bias_act = cpu_bias_act,
    .act_backward = cpu_act_backward,
    .bias_grad = cpu_bias_grad,
    .loss = cpu_loss,
    .sumsq = cpu_sumsq,
    .scale = cpu_scale,
    .adam = cpu_adam,
    .polyak = cpu_polyak,
    .sync = cpu_sync,
};

const eng_backend *eng_backend_cpu(void) { return &g_cpu; }
