/* eng_backend_cuda_ops.cuh - the ops of the CUDA backend (included once, by
 * engine/eng_backend_cuda.cu, after the stream, staging, scratch and counters it uses). */
#ifndef ENG_BACKEND_CUDA_OPS_CUH
#define ENG_BACKEND_CUDA_OPS_CUH

/* ---- ops -------------------------------------------------------------------- */

static int cu_alloc(float **out, size_t n) {
    if (!out) return eng_err_set(ENG_EINVAL, "cuda alloc: NULL output pointer");
    *out = NULL;
    if (n > SIZE_MAX / sizeof(float) - 1) return eng_err_set(ENG_ENOMEM, "cuda alloc: %zu floats overflow", n);
    REC_FLUSH(); /* the memset below goes on the stream */
    size_t bytes = (n ? n : 1) * sizeof(float);
    float *p = NULL;
    cudaError_t e = cudaMalloc((void **)&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return eng_err_set(e == cudaErrorMemoryAllocation ? ENG_ENOMEM : ENG_EDEVICE,
                           "%s:%d: cudaMalloc of %zu bytes: %s", __FILE__, __LINE__, bytes, cudaGetErrorString(e));
    }
    int st = cuda_check(cudaMemsetAsync(p, 0, bytes, g_stream));
    if (st != ENG_OK) {
        cudaFree(p);
        return st;
    }
    *out = p;
    return ENG_OK;
}

/* cudaFree waits for the device's queued work before it frees; recorded work that may use p
 * is launched first. */
static void cu_free(float *p) {
    if (!p) return;
    if (rec_flush() != ENG_OK) (void)cudaGetLastError(); /* reported again by the next call */
    cudaFree(p);
}

/* Pinned host memory (zero-filled); cu_host_free frees it. */
static int cu_host_alloc(float **out, size_t n) {
    if (!out) return eng_err_set(ENG_EINVAL, "cuda host_alloc: NULL output pointer");
    *out = NULL;
    if (n > SIZE_MAX / sizeof(float) - 1) return eng_err_set(ENG_ENOMEM, "cuda host_alloc: %zu floats overflow", n);
    size_t bytes = (n ? n : 1) * sizeof(float);
    float *p = NULL;
    int st = cuda_check(cudaMallocHost((void **)&p, bytes));
    if (st != ENG_OK) return st;
    memset(p, 0, bytes);
    *out = p;
    return ENG_OK;
}

static void cu_host_free(float *p) {
    if (p) cudaFreeHost(p);
}

static int cu_to_device(float *dst, const float *src_host, size_t n) {
    if (n == 0) return ENG_OK;
    if (!dst || !src_host) return eng_err_set(ENG_EINVAL, "cuda to_device: NULL pointer");
    REC_FLUSH();
    return stage_upload(dst, src_host, n * sizeof(float));
}

static int cu_to_host(float *dst_host, const float *src, size_t n) {
    if (n == 0) return ENG_OK;
    if (!dst_host || !src) return eng_err_set(ENG_EINVAL, "cuda to_host: NULL pointer");
    REC_FLUSH();
    return stage_download(dst_host, src, n * sizeof(float));
}

/* dst_host must be pinned (cu_host_alloc): the copy is queued on the stream. */
static int cu_to_host_async(float *dst_host, const float *src, size_t n) {
    if (n == 0) return ENG_OK;
    if (!dst_host || !src) return eng_err_set(ENG_EINVAL, "cuda to_host_async: NULL pointer");
    REC_FLUSH();
    CNT(C_DOWN, 1);
    CNT(C_BDOWN, n * sizeof(float));
    return cuda_check(cudaMemcpyAsync(dst_host, src, n * sizeof(float), cudaMemcpyDeviceToHost, g_stream));
}

/* An event and its recording number (see eng_backend.h: a wait on an earlier point than one
 * already waited for is neither made nor counted). */
typedef struct {
    cudaEvent_t e;
    unsigned long long seq;
} cu_event;

static int cu_event_record(void **ev) {
    if (!ev) return eng_err_set(ENG_EINVAL, "cuda event_record: NULL event");
    REC_FLUSH();
    if (!*ev) {
        cu_event *x = (cu_event *)calloc(1, sizeof *x);
        if (!x) return eng_err_set(ENG_ENOMEM, "cuda event_record: out of memory");
        int st = cuda_check(cudaEventCreateWithFlags(&x->e, cudaEventDisableTiming));
        if (st != ENG_OK) {
            free(x);
            return st;
        }
        *ev = x;
    }
    cu_event *x = (cu_event *)*ev;
    int st = cuda_check(cudaEventRecord(x->e, g_stream));
    if (st == ENG_OK) x->seq = __atomic_add_fetch(&g_ev_seq, 1, __ATOMIC_SEQ_CST);
    return st;
}

static int cu_event_wait(void *ev) {
    if (!ev) return eng_err_set(ENG_EINVAL, "cuda event_wait: event never recorded");
    REC_FLUSH();
    cu_event *x = (cu_event *)ev;
    if (x->seq <= __atomic_load_n(&g_ev_done, __ATOMIC_SEQ_CST)) return ENG_OK;
    CNT(C_SYNC, 1);
    int st = cuda_check(cudaEventSynchronize(x->e));
    if (st == ENG_OK) ev_done_at_least(x->seq);
    return st;
}

static void cu_event_free(void *ev) {
    cu_event *x = (cu_event *)ev;
    if (!x) return;
    cudaEventDestroy(x->e);
    free(x);
}

/* memmove semantics like the CPU: overlapping ranges go through the device scratch. */
static int cu_copy(float *dst, const float *src, size_t n) {
    if (n == 0 || dst == src) return ENG_OK;
    if (!dst || !src) return eng_err_set(ENG_EINVAL, "cuda copy: NULL pointer");
    size_t bytes = n * sizeof(float);
    int overlap = dst < src + n && src < dst + n;
    if (!overlap) {
        int r = rec_copy(dst, src, bytes); /* inside a graph region: recorded */
        if (r <= 0) return r;
        CNT(C_COPY, 1);
        return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_stream));
    }
    REC_FLUSH(); /* the scratch buffer is not recorded */
    CNT(C_COPY, 1);
    void *tmp = NULL;
    int st = scratch_acquire(bytes, &tmp);
    if (st != ENG_OK) return st;
    st = cuda_check(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, g_stream));
    if (st == ENG_OK) st = cuda_check(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, g_stream));
    scratch_release();
    return st;
}

static int cu_fill(float *dst, float value, size_t n) {
    if (n == 0) return ENG_OK;
    if (!dst) return eng_err_set(ENG_EINVAL, "cuda fill: NULL pointer");
    return LAUNCH(k_fill, grid_for(n), ENG_CU_THREADS, dst, value, n);
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
    if (g_rec.on) { /* inside a graph region: recorded (eng_backend_cuda_graph.cuh) */
        cu_gemm_args g;
        memset(&g, 0, sizeof g);
        g.A = A, g.B = B, g.C = C, g.sA = strideA, g.sB = strideB, g.sC = strideC;
        g.alpha = alpha, g.beta = beta, g.opA = (int)opA, g.opB = (int)opB;
        g.M = M, g.N = N, g.K = K, g.lda = lda < 1 ? 1 : lda, g.ldb = ldb < 1 ? 1 : ldb, g.ldc = ldc, g.batch = batch;
        int r = rec_gemm(&g);
        if (r <= 0) return r;
    }
    st = cublas_check(cublasSgemmStridedBatched(h, opB, opA, N, M, K, &alpha, B, ldb < 1 ? 1 : ldb,
                                                (long long)strideB, A, lda < 1 ? 1 : lda, (long long)strideA,
                                                &beta, C, ldc, (long long)strideC, batch));
    if (st == ENG_OK) CNT(C_LAUNCH, 1);
    return st;
}

static int cu_bias_act(float *Y, const float *bias, long stride_bias, int P, int rows, int N, eng_act act) {
    if (P < 0 || rows < 0 || N < 0)
        return eng_err_set(ENG_EINVAL, "cuda bias_act: negative size (P=%d rows=%d N=%d)", P, rows, N);
    if ((int)act < ENG_ACT_IDENTITY || (int)act > ENG_ACT_TANH)
        return eng_err_set(ENG_EINVAL, "cuda bias_act: unknown activation %d", (int)act);
    size_t per = (size_t)rows * (size_t)N, total = per * (size_t)P;
    if (total == 0) return ENG_OK;
    if (!Y) return eng_err_set(ENG_EINVAL, "cuda bias_act: NULL Y");
    return LAUNCH(k_bias_act, grid_for(total), ENG_CU_THREADS, Y, bias, stride_bias, per, N, total, (int)act);
}

static int cu_act_backward(float *dY, const float *Y, size_t n, eng_act act) {
    if ((int)act < ENG_ACT_IDENTITY || (int)act > ENG_ACT_TANH)
        return eng_err_set(ENG_EINVAL, "cuda act_backward: unknown activation %d", (int)act);
    if (n == 0 || act == ENG_ACT_IDENTITY) return ENG_OK;
    if (!dY || !Y) return eng_err_set(ENG_EINVAL, "cuda act_backward: NULL pointer");
    return LAUNCH(k_act_backward, grid_for(n), ENG_CU_THREADS, dY, Y, n, (int)act);
}

static int cu_bias_grad(float *db, long stride_db, const float *dY, int P, int rows, int N, int accumulate) {
    if (P < 0 || rows < 0 || N < 0)
        return eng_err_set(ENG_EINVAL, "cuda bias_grad: negative size (P=%d rows=%d N=%d)", P, rows, N);
    if (P == 0 || N == 0) return ENG_OK;
    if (!db || (rows > 0 && !dY)) return eng_err_set(ENG_EINVAL, "cuda bias_grad: NULL pointer");
    int ntiles = (N + BG_COLS - 1) / BG_COLS;
    size_t njobs = (size_t)P * (size_t)ntiles;
    dim3 block(BG_COLS, BG_ROWS);
    return LAUNCH(k_bias_grad, grid_blocks(njobs), block, db, stride_db, dY, rows, N, ntiles, njobs, accumulate);
}

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
        REC_FLUSH(); /* a download and the scratch buffer */
        st = scratch_acquire((size_t)P * sizeof(float), (void **)&d_loss);
        if (st != ENG_OK) return st;
        held = 1;
    }
    st = LAUNCH(k_loss, grid_blocks((size_t)P), ENG_CU_THREADS, (int)kind, delta, pred, target, weight, grad, d_loss, P,
                per);
    if (st != ENG_OK) goto cleanup;
    if (loss_host) st = stage_download(loss_host, d_loss, (size_t)P * sizeof(float));
cleanup:
    if (held) scratch_release();
    return st;
}

static int cu_sumsq(const float *x, long stride, int n, int P, double *out_host) {
    if (n < 0 || P < 0) return eng_err_set(ENG_EINVAL, "cuda sumsq: negative size (n=%d P=%d)", n, P);
    if (P == 0) return ENG_OK;
    if (!out_host || (n > 0 && !x)) return eng_err_set(ENG_EINVAL, "cuda sumsq: NULL pointer");
    REC_FLUSH();
    double *d_out = NULL;
    int st = scratch_acquire((size_t)P * sizeof(double), (void **)&d_out);
    if (st != ENG_OK) return st;
    st = LAUNCH(k_sumsq, grid_blocks((size_t)P), ENG_CU_THREADS, x, stride, n, P, d_out);
    if (st != ENG_OK) goto cleanup;
    st = stage_download(out_host, d_out, (size_t)P * sizeof(double));
cleanup:
    scratch_release();
    return st;
}

static int cu_scale(float *x, long stride, int n, int P, const float *scale_host) {
    if (n < 0 || P < 0) return eng_err_set(ENG_EINVAL, "cuda scale: negative size (n=%d P=%d)", n, P);
    size_t total = (size_t)n * (size_t)P;
    if (total == 0) return ENG_OK;
    if (!x || !scale_host) return eng_err_set(ENG_EINVAL, "cuda scale: NULL pointer");
    REC_FLUSH();
    float *d_scale = NULL;
    int st = scratch_acquire((size_t)P * sizeof(float), (void **)&d_scale);
    if (st != ENG_OK) return st;
    st = stage_upload(d_scale, scale_host, (size_t)P * sizeof(float));
    if (st != ENG_OK) goto cleanup;
    st = LAUNCH(k_scale, grid_for(total), ENG_CU_THREADS, x, stride, n, total, d_scale);
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
    REC_FLUSH(); /* a host mask goes up through the scratch buffer */
    unsigned char *d_mask = NULL;
    int st = ENG_OK, held = 0;
    if (mask_host) {
        st = scratch_acquire((size_t)P, (void **)&d_mask);
        if (st != ENG_OK) return st;
        held = 1;
        st = stage_upload(d_mask, mask_host, (size_t)P);
        if (st != ENG_OK) goto cleanup;
    }
    st = LAUNCH(k_adam, grid_for(n), ENG_CU_THREADS, w, g, m, v, per_product, n, d_mask, beta1, beta2, eps, lr / bc1,
                1.0f / bc2);
cleanup:
    if (held) scratch_release();
    return st;
}

static int cu_polyak(float *dst, const float *src, size_t n, float tau) {
    if (n == 0) return ENG_OK;
    if (!dst || !src) return eng_err_set(ENG_EINVAL, "cuda polyak: NULL pointer");
    return LAUNCH(k_polyak, grid_for(n), ENG_CU_THREADS, dst, src, n, tau);
}

static int cu_sync(void) {
    REC_FLUSH();
    unsigned long long seq = __atomic_load_n(&g_ev_seq, __ATOMIC_SEQ_CST);
    int st = stream_wait();
    if (st == ENG_OK) ev_done_at_least(seq);
    return st;
}

/* ---- device-resident variants (eng_backend.h) ---- */

static int cu_sumsq_dev(const float *x, long stride, int n, int P, double *out) {
    if (n < 0 || P < 0) return eng_err_set(ENG_EINVAL, "cuda sumsq_dev: negative size (n=%d P=%d)", n, P);
    if (P == 0) return ENG_OK;
    if (!out || (n > 0 && !x)) return eng_err_set(ENG_EINVAL, "cuda sumsq_dev: NULL pointer");
    if ((uintptr_t)out % sizeof(double)) return eng_err_set(ENG_EINVAL, "cuda sumsq_dev: output not 8-byte aligned");
    return LAUNCH(k_sumsq, grid_blocks((size_t)P), ENG_CU_THREADS, x, stride, n, P, out);
}

static int cu_loss_dev(eng_loss kind, float delta, const float *pred, const float *target, const float *weight,
                       float *grad, float *loss_dev, int P, int rows, int N) {
    if (P < 0 || rows < 0 || N < 0)
        return eng_err_set(ENG_EINVAL, "cuda loss: negative size (P=%d rows=%d N=%d)", P, rows, N);
    if (kind != ENG_LOSS_MSE && kind != ENG_LOSS_HUBER)
        return eng_err_set(ENG_EINVAL, "cuda loss: unknown loss kind %d", (int)kind);
    if (kind == ENG_LOSS_HUBER && !(delta > 0.0f))
        return eng_err_set(ENG_EINVAL, "cuda loss: Huber delta must be > 0 (got %g)", (double)delta);
    if (P == 0) return ENG_OK;
    size_t per = (size_t)rows * (size_t)N;
    if (per > 0 && (!pred || !target)) return eng_err_set(ENG_EINVAL, "cuda loss: NULL pred or target");
    return LAUNCH(k_loss, grid_blocks((size_t)P), ENG_CU_THREADS, (int)kind, delta, pred, target, weight, grad, loss_dev,
                  P, per);
}

static int cu_adam_clip(float *w, float *g, float *m, float *v, size_t per_product, int P, const float *mask,
                        const double *sumsq, float clip_norm, float lr, float beta1, float beta2, float eps,
                        float bc1, float bc2) {
    if (P < 0) return eng_err_set(ENG_EINVAL, "cuda adam: negative P=%d", P);
    if (!(bc1 > 0.0f) || !(bc2 > 0.0f))
        return eng_err_set(ENG_EINVAL, "cuda adam: bias corrections must be > 0 (bc1 %g, bc2 %g)", (double)bc1,
                           (double)bc2);
    size_t n = per_product * (size_t)P;
    if (n == 0) return ENG_OK;
    if (!w || !g || !m || !v) return eng_err_set(ENG_EINVAL, "cuda adam: NULL pointer");
    return LAUNCH(k_adam_clip, grid_for(n), ENG_CU_THREADS, w, g, m, v, per_product, n, mask, sumsq, clip_norm, beta1,
                  beta2, eps, lr / bc1, 1.0f / bc2);
}

static int cu_dqn_targets(const float *q_sel, const float *q_tgt, const float *q_cur, const float *act,
                          const float *r, const float *done, const float *mask, float gamma, int P, int B, int A,
                          float *tgt, float *w) {
    if (P < 0 || B < 0 || A < 1) return eng_err_set(ENG_EINVAL, "cuda dqn_targets: bad size (P %d B %d A %d)", P, B, A);
    size_t rows = (size_t)P * (size_t)B;
    if (rows == 0) return ENG_OK;
    if (!q_sel || !q_tgt || !q_cur || !act || !r || !done || !mask || !tgt || !w)
        return eng_err_set(ENG_EINVAL, "cuda dqn_targets: NULL pointer");
    return LAUNCH(k_dqn_targets, grid_for(rows), ENG_CU_THREADS, q_sel, q_tgt, q_cur, act, r, done, mask, gamma, B, A,
                  rows, tgt, w);
}

/* ---- row concatenation and the DDPG pieces ---- */

static int cu_concat_cols(float *dst, const float *a, int na, const float *b, int nb, size_t rows) {
    if (na < 0 || nb < 0) return eng_err_set(ENG_EINVAL, "cuda concat_cols: negative width");
    size_t total = rows * ((size_t)na + (size_t)nb);
    if (total == 0) return ENG_OK;
    if (!dst || (na && !a) || (nb && !b)) return eng_err_set(ENG_EINVAL, "cuda concat_cols: NULL pointer");
    return LAUNCH(k_concat_cols, grid_for(total), ENG_CU_THREADS, dst, a, na, b, nb, total);
}

static int cu_ddpg_critic_target(float *y, const float *r, const float *done, const float *q, float gamma, size_t n) {
    if (n == 0) return ENG_OK;
    if (!y || !r || !done || !q) return eng_err_set(ENG_EINVAL, "cuda ddpg_critic_target: NULL pointer");
    return LAUNCH(k_ddpg_critic_target, grid_for(n), ENG_CU_THREADS, y, r, done, q, gamma, n);
}

static int cu_ddpg_actor_dq(float *dq, float *q_mean, const float *q, const float *mask, int bc, float bc_alpha, int P,
                            int B) {
    if (P < 0 || B < 1) return eng_err_set(ENG_EINVAL, "cuda ddpg_actor_dq: bad size (P %d B %d)", P, B);
    if (P == 0) return ENG_OK;
    if (!dq || !q || !mask) return eng_err_set(ENG_EINVAL, "cuda ddpg_actor_dq: NULL pointer");
    return LAUNCH(k_ddpg_actor_dq, grid_blocks((size_t)P), ENG_CU_THREADS, dq, q_mean, q, mask, bc, bc_alpha, P, B);
}

static int cu_ddpg_action_grad(float *da, const float *dx, int dx_stride, int dx_col, const float *mu, const float *a,
                               const float *mask, int bc, int P, int B) {
    if (P < 0 || B < 1 || dx_col < 0 || dx_col >= dx_stride)
        return eng_err_set(ENG_EINVAL, "cuda ddpg_action_grad: bad size (P %d B %d col %d of %d)", P, B, dx_col,
                           dx_stride);
    size_t n = (size_t)P * (size_t)B;
    if (n == 0) return ENG_OK;
    if (!da || !dx || !mu || !a || !mask) return eng_err_set(ENG_EINVAL, "cuda ddpg_action_grad: NULL pointer");
    return LAUNCH(k_ddpg_action_grad, grid_for(n), ENG_CU_THREADS, da, dx, dx_stride, dx_col, mu, a, mask, bc, B, n);
}

#endif
