/* eng_backend_cuda_kernels.cuh - the device code of the CUDA backend (included once, by
 * engine/eng_backend_cuda.cu; see there and eng_backend.h for what each op computes). */
#ifndef ENG_BACKEND_CUDA_KERNELS_CUH
#define ENG_BACKEND_CUDA_KERNELS_CUH

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

/* derivative from the activation OUTPUT y (tanh and identity; ReLU selects, see k_act_backward) */
__device__ __forceinline__ float act_deriv(float y, int act) {
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

/* ReLU selects (dY where Y > 0, else 0) like the CPU, so a NaN or Inf in dY where the unit
 * was off becomes 0 on both backends; tanh multiplies. */
__global__ void k_act_backward(float *dY, const float *Y, size_t n, int act) {
    if (act == ENG_ACT_RELU) {
        GRID_STRIDE(i, n) dY[i] = Y[i] > 0.0f ? dY[i] : 0.0f;
    } else {
        GRID_STRIDE(i, n) dY[i] *= act_deriv(Y[i], act);
    }
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

/* Adam with the per-product clip factor computed on the device from sumsq (double, as the
 * host computed it before) and a float mask in device memory; the scaled gradient is written
 * back (every product, masked or not, as ->scale did). */
__global__ void k_adam_clip(float *w, float *g, float *m, float *v, size_t per_product, size_t n,
                            const float *mask, const double *sumsq, float clip, float beta1, float beta2, float eps,
                            float step, float inv_bc2) {
    const float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
    GRID_STRIDE(i, n) {
        size_t p = i / per_product;
        float gi = g[i];
        if (sumsq && clip > 0.0f) {
            double norm = sqrt(sumsq[p]);
            if (norm > (double)clip) {
                gi = __fmul_rn(gi, (float)((double)clip / norm));
                g[i] = gi;
            }
        }
        if (mask && mask[p] == 0.0f) continue;
        float mi = beta1 * m[i] + a1 * gi;
        float vi = beta2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrtf(vi * inv_bc2) + eps);
    }
}

/* DQN targets, one thread per row (see eng_backend.h); the bootstrap is rounded like the host
 * loop (no fused multiply-add). */
__global__ void k_dqn_targets(const float *q_sel, const float *q_tgt, const float *q_cur, const float *act,
                              const float *r, const float *done, const float *mask, float gamma, int B, int A,
                              size_t rows, float *tgt, float *w) {
    GRID_STRIDE(i, rows) {
        const float *sel = q_sel + i * (size_t)A;
        int astar = 0;
        for (int j = 1; j < A; j++)
            if (sel[j] > sel[astar]) astar = j;
        float boot = done[i] != 0.0f ? 0.0f : __fmul_rn(gamma, q_tgt[i * (size_t)A + astar]);
        float y = __fadd_rn(r[i], boot);
        int a = (int)act[i];
        a = a < 0 ? 0 : a >= A ? A - 1 : a;
        float *trow = tgt + i * (size_t)A, *wrow = w + i * (size_t)A;
        const float *qrow = q_cur + i * (size_t)A;
        for (int j = 0; j < A; j++) {
            trow[j] = qrow[j];
            wrow[j] = 0.0f;
        }
        trow[a] = y;
        wrow[a] = mask[i / (size_t)B] != 0.0f ? 1.0f : 0.0f;
    }
}

__global__ void k_concat_cols(float *dst, const float *a, int na, const float *b, int nb, size_t total) {
    const size_t w = (size_t)na + (size_t)nb;
    GRID_STRIDE(k, total) {
        size_t i = k / w, j = k % w;
        dst[k] = j < (size_t)na ? a[i * (size_t)na + j] : b[i * (size_t)nb + (j - (size_t)na)];
    }
}

__global__ void k_ddpg_critic_target(float *y, const float *r, const float *done, const float *q, float gamma,
                                     size_t n) {
    GRID_STRIDE(i, n) y[i] = __fadd_rn(r[i], done[i] != 0.0f ? 0.0f : __fmul_rn(gamma, q[i]));
}

/* One block per product: sums of |q| and q in double, then the product's dq. */
__global__ void k_ddpg_actor_dq(float *dq, float *q_mean, const float *q, const float *mask, int bc, float bc_alpha,
                                int P, int B) {
    __shared__ double sh[ENG_CU_THREADS];
    for (size_t p = blockIdx.x; p < (size_t)P; p += gridDim.x) {
        const float *qp = q + p * (size_t)B;
        double a = 0.0, s = 0.0;
        for (int b = (int)threadIdx.x; b < B; b += (int)blockDim.x) {
            a += fabs((double)qp[b]);
            s += (double)qp[b];
        }
        double sabs = block_sum(a, sh);
        double sq = block_sum(s, sh);
        if (threadIdx.x == 0 && q_mean) q_mean[p] = (float)(sq / B);
        float lambda = 1.0f;
        if (bc) lambda = (float)((double)bc_alpha / fmax(sabs / B, 1e-6));
        const float g = mask[p] != 0.0f ? __fdiv_rn(-lambda, (float)B) : 0.0f;
        for (int b = (int)threadIdx.x; b < B; b += (int)blockDim.x) dq[p * (size_t)B + b] = g;
    }
}

__global__ void k_ddpg_action_grad(float *da, const float *dx, int dx_stride, int dx_col, const float *mu,
                                   const float *a, const float *mask, int bc, int B, size_t n) {
    GRID_STRIDE(i, n) {
        float g = dx[i * (size_t)dx_stride + dx_col];
        if (bc) g = __fadd_rn(g, __fdiv_rn(__fmul_rn(2.0f, __fsub_rn(mu[i], a[i])), (float)B));
        da[i] = mask[i / (size_t)B] != 0.0f ? g : 0.0f;
    }
}

__global__ void k_polyak(float *dst, const float *src, size_t n, float tau) {
    GRID_STRIDE(i, n) dst[i] = tau * src[i] + (1.0f - tau) * dst[i];
}

#endif
