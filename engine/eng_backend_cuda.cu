/* eng_backend_cuda.cu - the CUDA backend (cuBLAS GEMM + small kernels); see eng_backend.h.
 *
 * Compiled by nvcc only when the build has CUDA (ENG_HAVE_CUDA).  Mirrors the CPU backend
 * (eng_backend_cpu.c, the reference) op by op; tests/test_backend_parity.c compares them.
 *
 * Design:
 *   - one device (device 0), the legacy default stream for everything, so ops are ordered
 *     and every op that returns host data (loss, sumsq) is synchronous;
 *   - one cuBLAS handle, created lazily by the first GEMM (under a mutex);
 *   - row-major batched GEMM through cublasSgemmStridedBatched on the column-major view
 *     (a row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T);
 *   - reductions (bias_grad, loss, sumsq) accumulate in double (the CPU uses double for
 *     loss and sumsq and float for bias_grad; double is at least as accurate);
 *   - small per-call device scratch (loss values, sums of squares, per-product scale
 *     factors, Adam mask) lives in ONE persistent device buffer, grown on demand (never per
 *     call: cudaFree synchronises the device).  Reuse is safe because every op runs on the
 *     legacy default stream: a later op's copy into the scratch is ordered after the kernels
 *     that read it.  A mutex makes concurrent callers safe (they serialise on it); growing
 *     frees the old buffer (cudaFree waits for kernels still reading it).  The buffer lives
 *     until the process exits;
 *   - every CUDA / cuBLAS call goes through cuda_check / cublas_check, which record
 *     "file:line: call: reason" with eng_err_set and yield ENG_EDEVICE.  Never exit().
 *
 * Device detection runs once: no driver, no device or a device older than sm_90 (the
 * architecture this file is compiled for) make eng_backend_cuda return ENG_EDEVICE with
 * the reason, which eng_cuda_describe() also reports.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "eng_backend.h"
#include "eng_util.h"
}

/* ---- checked wrappers ---------------------------------------------------- */

static int cuda_status_(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return ENG_OK;
    return eng_err_set(ENG_EDEVICE, "%s:%d: %s: %s (%s)", file, line, call, cudaGetErrorString(e),
                       cudaGetErrorName(e));
}

static int cublas_status_(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return ENG_OK;
    return eng_err_set(ENG_EDEVICE, "%s:%d: %s: %s", file, line, call, cublasGetStatusString(s));
}

/* Evaluate to ENG_OK or ENG_EDEVICE (message recorded with file and line). */
#define cuda_check(call) cuda_status_((call), #call, __FILE__, __LINE__)
#define cublas_check(call) cublas_status_((call), #call, __FILE__, __LINE__)
/* After a kernel launch: launch-configuration errors and earlier asynchronous faults. */
#define launch_check(name) cuda_status_(cudaGetLastError(), "launch " name, __FILE__, __LINE__)

/* ---- device detection (once) --------------------------------------------- */

static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;
static int g_probe_status = ENG_EDEVICE;
static char g_probe_msg[512];   /* error message when g_probe_status != 0 */
static char g_describe[512];    /* eng_cuda_describe() text */

static void cuda_probe(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(g_probe_msg, sizeof g_probe_msg, "no CUDA device: %s", cudaGetErrorString(e));
        (void)cudaGetLastError(); /* clear the runtime's sticky last error */
        snprintf(g_describe, sizeof g_describe, "no device: %s", cudaGetErrorString(e));
        return;
    }
    if (count <= 0) {
        snprintf(g_probe_msg, sizeof g_probe_msg, "no CUDA device: the driver reports 0 devices");
        snprintf(g_describe, sizeof g_describe, "no device: the driver reports 0 devices");
        return;
    }
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) {
        snprintf(g_probe_msg, sizeof g_probe_msg, "CUDA device 0 unusable: %s", cudaGetErrorString(e));
        snprintf(g_describe, sizeof g_describe, "no device: %s", cudaGetErrorString(e));
        return;
    }
    if (prop.major < 9) {
        snprintf(g_probe_msg, sizeof g_probe_msg,
                 "CUDA device 0 (%s, sm_%d%d) is older than sm_90, the architecture rlprice was built for",
                 prop.name, prop.major, prop.minor);
        snprintf(g_describe, sizeof g_describe, "no device: %s (sm_%d%d) is older than sm_90", prop.name,
                 prop.major, prop.minor);
        return;
    }
    /* create the context now so that a broken driver shows up here, not mid-training */
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaFree(0);
    if (e != cudaSuccess) {
        snprintf(g_probe_msg, sizeof g_probe_msg, "CUDA device 0 (%s): cannot create a context: %s", prop.name,
                 cudaGetErrorString(e));
        snprintf(g_describe, sizeof g_describe, "no device: %s: %s", prop.name, cudaGetErrorString(e));
        return;
    }
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    snprintf(g_describe, sizeof g_describe, "%s (sm_%d%d, %.1f GiB, %d SMs; runtime %d.%d, driver %d.%d)",
             prop.name, prop.major, prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             prop.multiProcessorCount, rt / 1000, (rt % 1000) / 10, drv / 1000, (drv % 1000) / 10);
    g_probe_status = ENG_OK;
}

/* ---- cuBLAS handle (lazy) ------------------------------------------------- */

static pthread_mutex_t g_blas_mu = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t g_blas = NULL;

static int blas_handle(cublasHandle_t *out) {
    int st = ENG_OK;
    pthread_mutex_lock(&g_blas_mu);
    if (!g_blas) {
        cublasHandle_t h = NULL;
        st = cublas_check(cublasCreate(&h));
        if (st == ENG_OK) {
            /* plain FP32 math (TF32 stays off) so that results match the CPU reference */
            st = cublas_check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
            if (st == ENG_OK) g_blas = h;
            else cublasDestroy(h);
        }
    }
    *out = g_blas;
    pthread_mutex_unlock(&g_blas_mu);
    return st;
}

/* ---- launch geometry ------------------------------------------------------- */

#define ENG_CU_THREADS 256
#define ENG_CU_MAX_BLOCKS 65535u

/* Blocks for a grid-stride loop over n items (at least 1). */
static unsigned grid_for(size_t n) {
    size_t b = (n + ENG_CU_THREADS - 1) / ENG_CU_THREADS;
    if (b < 1) b = 1;
    if (b > ENG_CU_MAX_BLOCKS) b = ENG_CU_MAX_BLOCKS;
    return (unsigned)b;
}

/* Blocks for a block-stride loop over nb independent block-sized jobs. */
static unsigned grid_blocks(size_t nb) {
    if (nb < 1) nb = 1;
    return (unsigned)(nb > ENG_CU_MAX_BLOCKS ? ENG_CU_MAX_BLOCKS : nb);
}

#define GRID_STRIDE(i, n)                                                                    \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                  \
         i += (size_t)gridDim.x * blockDim.x)

/* ---- device helpers ------------------------------------------------------- */

__device__ __forceinline__ float act_fwd(float x, int act) {
    if (act == ENG_ACT_RELU) return x > 0.0f ? x : 0.0f;
    if (act == ENG_ACT_TANH) return tanhf(x);
    return x;
}

/* derivative from the activation OUTPUT y */
__device__ __forceinline__ float act_deriv(float y, int act) {
    if (act == ENG_ACT_RELU) return y > 0.0f ? 1.0f : 0.0f;
    if (act == ENG_ACT_TANH) return 1.0f - y * y;
    return 1.0f;
}

__device__ __forceinline__ double loss_value(int kind, float delta, float d) {
    double dd = (double)d;
    if (kind == ENG_LOSS_HUBER) {
        double a = fabs(dd);
        return a <= (double)delta ? 0.5 * dd * dd : (double)delta * (a - 0.5 * (double)delta);
    }
    return dd * dd;
}

__device__ __forceinline__ double loss_deriv(int kind, float delta, float d) {
    double dd = (double)d;
    if (kind == ENG_LOSS_HUBER) {
        if (fabs(dd) <= (double)delta) return dd;
        return dd > 0.0 ? (double)delta : -(double)delta;
    }
    return 2.0 * dd;
}

/* Sum of `v` over the block (blockDim.x == ENG_CU_THREADS, a power of two); every thread
 * gets the total.  `sh` is ENG_CU_THREADS doubles of shared memory. */
__device__ double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double total = sh[0];
    __syncthreads(); /* sh may be reused right after */
    return total;
}

/* ---- kernels ---------------------------------------------------------------- */

__global__ void k_fill(float *x, float value, size_t n) {
    GRID_STRIDE(i, n) x[i] = value;
}

__global__ void k_bias_act(float *Y, const float *bias, long stride_bias, size_t per_product, int N,
                           size_t total, int act) {
    GRID_STRIDE(i, total) {
        size_t p = i / per_product;
        size_t j = i % (size_t)N;
        float b = bias ? bias[(long)p * stride_bias + (long)j] : 0.0f;
        Y[i] = act_fwd(Y[i] + b, act);
    }
}

__global__ void k_act_backward(float *dY, const float *Y, size_t n, int act) {
    GRID_STRIDE(i, n) dY[i] *= act_deriv(Y[i], act);
}

/* Block (32 x 8): 32 columns of one product, 8 row lanes; jobs = P * column tiles. */
#define BG_COLS 32
#define BG_ROWS 8
__global__ void k_bias_grad(float *db, long stride_db, const float *dY, int rows, int N, int ntiles,
                            size_t njobs, int accumulate) {
    __shared__ double sh[BG_ROWS][BG_COLS + 1];
    for (size_t job = blockIdx.x; job < njobs; job += gridDim.x) {
        size_t p = job / (size_t)ntiles;
        int j = (int)(job % (size_t)ntiles) * BG_COLS + (int)threadIdx.x;
        double s = 0.0;
        if (j < N) {
            const float *base = dY + p * (size_t)rows * (size_t)N;
            for (int i = (int)threadIdx.y; i < rows; i += BG_ROWS) s += (double)base[(size_t)i * N + j];
        }
        sh[threadIdx.y][threadIdx.x] = s;
        __syncthreads();
        if (threadIdx.y == 0 && j < N) {
            double t = 0.0;
            for (int y = 0; y < BG_ROWS; y++) t += sh[y][threadIdx.x];
            float *d = db + (long)p * stride_db + j;
            *d = accumulate ? (float)((double)*d + t) : (float)t;
        }
        __syncthreads();
    }
}

/* One block per product: weighted loss sum and weight sum, then the gradient. */
__global__ void k_loss(int kind, float delta, const float *pred, const float *target, const float *weight,
                       float *grad, float *loss_p, int P, size_t per) {
    __shared__ double sh[ENG_CU_THREADS];
    for (size_t p = blockIdx.x; p < (size_t)P; p += gridDim.x) {
        size_t off = p * per;
        double l = 0.0, w = 0.0;
        for (size_t k = threadIdx.x; k < per; k += blockDim.x) {
            float wk = weight ? weight[off + k] : 1.0f;
            float d = pred[off + k] - target[off + k];
            l += (double)wk * loss_value(kind, delta, d);
            w += (double)wk;
        }
        double lsum = block_sum(l, sh);
        double wsum = block_sum(w, sh);
        double denom = wsum > 1.0 ? wsum : 1.0;
        if (threadIdx.x == 0 && loss_p) loss_p[p] = (float)(lsum / denom);
        if (grad) {
            for (size_t k = threadIdx.x; k < per; k += blockDim.x) {
                float wk = weight ? weight[off + k] : 1.0f;
                float d = pred[off + k] - target[off + k];
                grad[off + k] = (float)((double)wk * loss_deriv(kind, delta, d) / denom);
            }
        }
        __syncthreads();
    }
}

__global__ void k_sumsq(const float *x, long stride, int n, int P, double *out) {
    __shared__ double sh[ENG_CU_THREADS];
    for (size_t p = blockIdx.x; p < (size_t)P; p += gridDim.x) {
        const float *xp = x + (long)p * stride;
        double s = 0.0;
        for (int k = (int)threadIdx.x; k < n; k += (int)blockDim.x) s += (double)xp[k] * (double)xp[k];
        double t = block_sum(s, sh);
        if (threadIdx.x == 0) out[p] = t;
    }
}

__global__ void k_scale(float *x, long stride, int n, size_t total, const float *scale) {
    GRID_STRIDE(i, total) {
        size_t p = i / (size_t)n;
        size_t k = i % (size_t)n;
        x[(long)p * stride + (long)k] *= scale[p];
    }
}

/* Same expression as the CPU reference: step = lr / bc1 and inv_bc2 = 1 / bc2 come from
 * the host, w -= step * m / (sqrt(v * inv_bc2) + eps). */
__global__ void k_adam(float *w, const float *g, float *m, float *v, size_t per_product, size_t n,
                       const unsigned char *mask, float beta1, float beta2, float eps, float step,
                       float inv_bc2) {
    const float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
    GRID_STRIDE(i, n) {
        if (mask && !mask[i / per_product]) continue;
        float gi = g[i];
        float mi = beta1 * m[i] + a1 * gi;
        float vi = beta2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrtf(vi * inv_bc2) + eps);
    }
}

__global__ void k_polyak(float *dst, const float *src, size_t n, float tau) {
    GRID_STRIDE(i, n) dst[i] = tau * src[i] + (1.0f - tau) * dst[i];
}

/* ---- ops -------------------------------------------------------------------- */

static int cu_alloc(float **out, size_t n) {
    if (!out) return eng_err_set(ENG_EINVAL, "cuda alloc: NULL output pointer");
    *out = NULL;
    if (n > SIZE_MAX / sizeof(float) - 1) return eng_err_set(ENG_ENOMEM, "cuda alloc: %zu floats overflow", n);
    size_t bytes = (n ? n : 1) * sizeof(float);
    float *p = NULL;
    cudaError_t e = cudaMalloc((void **)&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return eng_err_set(e == cudaErrorMemoryAllocation ? ENG_ENOMEM : ENG_EDEVICE,
                           "%s:%d: cudaMalloc of %zu bytes: %s", __FILE__, __LINE__, bytes, cudaGetErrorString(e));
    }
    int st = cuda_check(cudaMemset(p, 0, bytes));
    if (st != ENG_OK) {
        cudaFree(p);
        return st;
    }
    *out = p;
    return ENG_OK;
}

static void cu_free(float *p) {
    if (p) cudaFree(p);
}

static int cu_to_device(float *dst, const float *src_host, size_t n) {
    if (n == 0) return ENG_OK;
    if (!dst || !src_host) return eng_err_set(ENG_EINVAL, "cuda to_device: NULL pointer");
    return cuda_check(cudaMemcpy(dst, src_host, n * sizeof(float), cudaMemcpyHostToDevice));
}

static int cu_to_host(float *dst_host, const float *src, size_t n) {
    if (n == 0) return ENG_OK;
    if (!dst_host || !src) return eng_err_set(ENG_EINVAL, "cuda to_host: NULL pointer");
    return cuda_check(cudaMemcpy(dst_host, src, n * sizeof(float), cudaMemcpyDeviceToHost));
}

static int cu_copy(float *dst, const float *src, size_t n) {
    if (n == 0 || dst == src) return ENG_OK;
    if (!dst || !src) return eng_err_set(ENG_EINVAL, "cuda copy: NULL pointer");
    return cuda_check(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice));
}

static int cu_fill(float *dst, float value, size_t n) {
    if (n == 0) return ENG_OK;
    if (!dst) return eng_err_set(ENG_EINVAL, "cuda fill: NULL pointer");
    k_fill<<<grid_for(n), ENG_CU_THREADS>>>(dst, value, n);
    return launch_check("k_fill");
}

static int cu_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                   long strideA, const float *B, int ldb, long strideB, float beta, float *C, int ldc,
                   long strideC, int batch) {
    if (M < 0 || N < 0 || K < 0 || batch < 0)
        return eng_err_set(ENG_EINVAL, "cuda gemm: negative size (M=%d N=%d K=%d batch=%d)", M, N, K, batch);
    if (M == 0 || N == 0 || batch == 0) return ENG_OK;
    /* row-major leading dimensions of the stored matrices */
    int needA = transA ? M : K, needB = transB ? K : N;
    if (lda < needA || ldb < needB || ldc < N)
        return eng_err_set(ENG_EINVAL, "cuda gemm: leading dimension too small (lda=%d need %d, ldb=%d need %d, "
                                       "ldc=%d need %d)", lda, needA, ldb, needB, ldc, N);
    if (!A || !B || !C) return eng_err_set(ENG_EINVAL, "cuda gemm: NULL matrix");
    cublasHandle_t h = NULL;
    int st = blas_handle(&h);
    if (st != ENG_OK) return st;
    /* Row-major C (M x N) is column-major C^T (N x M): C^T = op(B)^T op(A)^T, where the
     * column-major view of a stored row-major matrix is its transpose; so B goes first with
     * its own trans flag, and A second with its own. */
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    return cublas_check(cublasSgemmStridedBatched(h, opB, opA, N, M, K, &alpha, B, ldb < 1 ? 1 : ldb,
                                                  (long long)strideB, A, lda < 1 ? 1 : lda, (long long)strideA,
                                                  &beta, C, ldc, (long long)strideC, batch));
}

static int cu_bias_act(float *Y, const float *bias, long stride_bias, int P, int rows, int N, eng_act act) {
    if (P < 0 || rows < 0 || N < 0)
        return eng_err_set(ENG_EINVAL, "cuda bias_act: negative size (P=%d rows=%d N=%d)", P, rows, N);
    if ((int)act < ENG_ACT_IDENTITY || (int)act > ENG_ACT_TANH)
        return eng_err_set(ENG_EINVAL, "cuda bias_act: unknown activation %d", (int)act);
    size_t per = (size_t)rows * (size_t)N, total = per * (size_t)P;
    if (total == 0) return ENG_OK;
    if (!Y) return eng_err_set(ENG_EINVAL, "cuda bias_act: NULL Y");
    k_bias_act<<<grid_for(total), ENG_CU_THREADS>>>(Y, bias, stride_bias, per, N, total, (int)act);
    return launch_check("k_bias_act");
}

static int cu_act_backward(float *dY, const float *Y, size_t n, eng_act act) {
    if ((int)act < ENG_ACT_IDENTITY || (int)act > ENG_ACT_TANH)
        return eng_err_set(ENG_EINVAL, "cuda act_backward: unknown activation %d", (int)act);
    if (n == 0 || act == ENG_ACT_IDENTITY) return ENG_OK;
    if (!dY || !Y) return eng_err_set(ENG_EINVAL, "cuda act_backward: NULL pointer");
    k_act_backward<<<grid_for(n), ENG_CU_THREADS>>>(dY, Y, n, (int)act);
    return launch_check("k_act_backward");
}

static int cu_bias_grad(float *db, long stride_db, const float *dY, int P, int rows, int N, int accumulate) {
    if (P < 0 || rows < 0 || N < 0)
        return eng_err_set(ENG_EINVAL, "cuda bias_grad: negative size (P=%d rows=%d N=%d)", P, rows, N);
    if (P == 0 || N == 0) return ENG_OK;
    if (!db || (rows > 0 && !dY)) return eng_err_set(ENG_EINVAL, "cuda bias_grad: NULL pointer");
    int ntiles = (N + BG_COLS - 1) / BG_COLS;
    size_t njobs = (size_t)P * (size_t)ntiles;
    dim3 block(BG_COLS, BG_ROWS);
    k_bias_grad<<<grid_blocks(njobs), block>>>(db, stride_db, dY, rows, N, ntiles, njobs, accumulate);
    return launch_check("k_bias_grad");
}

/* ---- persistent scratch (see the header comment) ---- */
static pthread_mutex_t g_scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static void *g_scratch = NULL;
static size_t g_scratch_bytes = 0;

/* Locks the scratch mutex and returns a device buffer of >= bytes in *out; on success the
 * caller must call scratch_release() when it has enqueued its last use.  On failure the
 * mutex is released and ENG_EDEVICE returned. */
static int scratch_acquire(size_t bytes, void **out) {
    *out = NULL;
    pthread_mutex_lock(&g_scratch_mu);
    if (bytes > g_scratch_bytes) {
        size_t want = bytes < 4096 ? 4096 : bytes + bytes / 2;
        if (g_scratch) cudaFree(g_scratch);
        g_scratch = NULL;
        g_scratch_bytes = 0;
        int st = cuda_check(cudaMalloc(&g_scratch, want));
        if (st != ENG_OK) {
            g_scratch = NULL;
            pthread_mutex_unlock(&g_scratch_mu);
            return st;
        }
        g_scratch_bytes = want;
    }
    *out = g_scratch;
    return ENG_OK;
}

static void scratch_release(void) { pthread_mutex_unlock(&g_scratch_mu); }

static int cu_loss(eng_loss kind, float delta, const float *pred, const float *target, const float *weight,
                   float *grad, float *loss_host, int P, int rows, int N) {
    if (P < 0 || rows < 0 || N < 0)
        return eng_err_set(ENG_EINVAL, "cuda loss: negative size (P=%d rows=%d N=%d)", P, rows, N);
    if (kind != ENG_LOSS_MSE && kind != ENG_LOSS_HUBER)
        return eng_err_set(ENG_EINVAL, "cuda loss: unknown loss kind %d", (int)kind);
    if (kind == ENG_LOSS_HUBER && !(delta > 0.0f))
        return eng_err_set(ENG_EINVAL, "cuda loss: Huber delta must be > 0 (got %g)", (double)delta);
    if (P == 0) return ENG_OK;
    size_t per = (size_t)rows * (size_t)N;
    if (per > 0 && (!pred || !target)) return eng_err_set(ENG_EINVAL, "cuda loss: NULL pred or target");
    float *d_loss = NULL;
    int st = ENG_OK, held = 0;
    if (loss_host) {
        st = scratch_acquire((size_t)P * sizeof(float), (void **)&d_loss);
        if (st != ENG_OK) return st;
        held = 1;
    }
    k_loss<<<grid_blocks((size_t)P), ENG_CU_THREADS>>>((int)kind, delta, pred, target, weight, grad, d_loss, P,
                                                       per);
    st = launch_check("k_loss");
    if (st != ENG_OK) goto cleanup;
    if (loss_host) st = cuda_check(cudaMemcpy(loss_host, d_loss, (size_t)P * sizeof(float), cudaMemcpyDeviceToHost));
cleanup:
    if (held) scratch_release();
    return st;
}

static int cu_sumsq(const float *x, long stride, int n, int P, double *out_host) {
    if (n < 0 || P < 0) return eng_err_set(ENG_EINVAL, "cuda sumsq: negative size (n=%d P=%d)", n, P);
    if (P == 0) return ENG_OK;
    if (!out_host || (n > 0 && !x)) return eng_err_set(ENG_EINVAL, "cuda sumsq: NULL pointer");
    double *d_out = NULL;
    int st = scratch_acquire((size_t)P * sizeof(double), (void **)&d_out);
    if (st != ENG_OK) return st;
    k_sumsq<<<grid_blocks((size_t)P), ENG_CU_THREADS>>>(x, stride, n, P, d_out);
    st = launch_check("k_sumsq");
    if (st != ENG_OK) goto cleanup;
    st = cuda_check(cudaMemcpy(out_host, d_out, (size_t)P * sizeof(double), cudaMemcpyDeviceToHost));
cleanup:
    scratch_release();
    return st;
}

static int cu_scale(float *x, long stride, int n, int P, const float *scale_host) {
    if (n < 0 || P < 0) return eng_err_set(ENG_EINVAL, "cuda scale: negative size (n=%d P=%d)", n, P);
    size_t total = (size_t)n * (size_t)P;
    if (total == 0) return ENG_OK;
    if (!x || !scale_host) return eng_err_set(ENG_EINVAL, "cuda scale: NULL pointer");
    float *d_scale = NULL;
    int st = scratch_acquire((size_t)P * sizeof(float), (void **)&d_scale);
    if (st != ENG_OK) return st;
    st = cuda_check(cudaMemcpy(d_scale, scale_host, (size_t)P * sizeof(float), cudaMemcpyHostToDevice));
    if (st != ENG_OK) goto cleanup;
    k_scale<<<grid_for(total), ENG_CU_THREADS>>>(x, stride, n, total, d_scale);
    st = launch_check("k_scale");
cleanup:
    scratch_release();
    return st;
}

static int cu_adam(float *w, const float *g, float *m, float *v, size_t per_product, int P,
                   const unsigned char *mask_host, float lr, float beta1, float beta2, float eps, float bc1,
                   float bc2) {
    if (P < 0) return eng_err_set(ENG_EINVAL, "cuda adam: negative P=%d", P);
    if (!(bc1 > 0.0f) || !(bc2 > 0.0f))
        return eng_err_set(ENG_EINVAL, "cuda adam: bias corrections must be > 0 (bc1 %g, bc2 %g)", (double)bc1,
                           (double)bc2);
    size_t n = per_product * (size_t)P;
    if (n == 0) return ENG_OK;
    if (!w || !g || !m || !v) return eng_err_set(ENG_EINVAL, "cuda adam: NULL pointer");
    unsigned char *d_mask = NULL;
    int st = ENG_OK, held = 0;
    if (mask_host) {
        st = scratch_acquire((size_t)P, (void **)&d_mask);
        if (st != ENG_OK) return st;
        held = 1;
        st = cuda_check(cudaMemcpy(d_mask, mask_host, (size_t)P, cudaMemcpyHostToDevice));
        if (st != ENG_OK) goto cleanup;
    }
    k_adam<<<grid_for(n), ENG_CU_THREADS>>>(w, g, m, v, per_product, n, d_mask, beta1, beta2, eps, lr / bc1,
                                            1.0f / bc2);
    st = launch_check("k_adam");
cleanup:
    if (held) scratch_release();
    return st;
}

static int cu_polyak(float *dst, const float *src, size_t n, float tau) {
    if (n == 0) return ENG_OK;
    if (!dst || !src) return eng_err_set(ENG_EINVAL, "cuda polyak: NULL pointer");
    k_polyak<<<grid_for(n), ENG_CU_THREADS>>>(dst, src, n, tau);
    return launch_check("k_polyak");
}

static int cu_sync(void) { return cuda_check(cudaDeviceSynchronize()); }

/* Positional initialisation, in the field order of struct eng_backend. */
static const eng_backend g_cuda_backend = {
    "cuda",            /* name */
    ENG_BACKEND_CUDA,  /* kind */
    cu_alloc,          /* alloc */
    cu_free,           /* free */
    cu_to_device,      /* to_device */
    cu_to_host,        /* to_host */
    cu_copy,           /* copy */
    cu_fill,           /* fill */
    cu_gemm,           /* gemm */
    cu_bias_act,       /* bias_act */
    cu_act_backward,   /* act_backward */
    cu_bias_grad,      /* bias_grad */
    cu_loss,           /* loss */
    cu_sumsq,          /* sumsq */
    cu_scale,          /* scale */
    cu_adam,           /* adam */
    cu_polyak,         /* polyak */
    cu_sync,           /* sync */
};

/* ---- public entry points ------------------------------------------------------ */

/* See eng_backend.h.  *out is a static backend (never freed); ENG_EDEVICE with the reason
 * when there is no usable device (*out is then NULL). */
extern "C" int eng_backend_cuda(const eng_backend **out) {
    if (!out) return eng_err_set(ENG_EINVAL, "eng_backend_cuda: NULL output pointer");
    *out = NULL;
    pthread_once(&g_probe_once, cuda_probe);
    if (g_probe_status != ENG_OK) return eng_err_set(g_probe_status, "%s", g_probe_msg);
    *out = &g_cuda_backend;
    return ENG_OK;
}

/* See eng_backend.h.  Static string: device name, compute capability and memory, or
 * "no device: <reason>". */
extern "C" const char *eng_cuda_describe(void) {
    pthread_once(&g_probe_once, cuda_probe);
    return g_describe;
}
