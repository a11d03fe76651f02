/* eng_backend.h - the compute backend interface (ggml-style struct of function pointers).
 *
 * One backend is chosen once at start-up (eng_backend_select) and passed to every model.
 * All tensors are float32, row-major, and live in *backend memory* (host memory for the
 * CPU backend, device memory for CUDA).  Every op exists on both backends; the CPU one is
 * the reference (tests/test_backend_parity.c compares them op by op).
 *
 * Batched layout: "P" independent problems (one per product of a model group) are laid
 * out at a constant stride, so one call does P independent products of work.
 * All functions return 0 or a negative ENG_E* status (message via eng_err_msg()).
 */
#ifndef ENG_BACKEND_H
#define ENG_BACKEND_H

#include <stddef.h>

typedef enum { ENG_ACT_IDENTITY = 0, ENG_ACT_RELU = 1, ENG_ACT_TANH = 2 } eng_act;
typedef enum { ENG_LOSS_MSE = 0, ENG_LOSS_HUBER = 1 } eng_loss;
typedef enum { ENG_BACKEND_CPU = 0, ENG_BACKEND_CUDA = 1 } eng_backend_kind;

/* Work counters of a backend (cumulative since the process started, all threads; read with
 * be->counters and subtract two readings).  Both backends count by the same rules, so the CPU
 * figures show the host-side structure of a step and the CUDA figures are what the GPU sees:
 *   launches   compute ops that did work (one kernel or cuBLAS call each on CUDA: fill, gemm,
 *              bias_act, act_backward, bias_grad, loss, sumsq, scale, adam, polyak, dqn_targets)
 *   copies     backend -> backend copies (copy)
 *   uploads    host -> backend copies (to_device, a host mask or scale handed to an op), bytes_up
 *   downloads  backend -> host copies (to_host, to_host_async, host outputs of loss / sumsq),
 *              bytes_down
 *   syncs      times the host waited for the backend: sync(), event_wait(), and every op that
 *              returns host data at once (to_host, loss with loss_host, sumsq)
 *   graph_launches, graph_captures  (CUDA only; 0 on the CPU) training steps replayed as one
 *              CUDA graph, and graphs captured (see graph_begin).  A graph launch counts as ONE
 *              launch, whatever kernels and GEMMs it holds; the device copies it holds still
 *              count as copies. */
typedef struct eng_backend_counters {
    unsigned long long launches, copies, uploads, downloads, syncs, bytes_up, bytes_down;
    unsigned long long graph_launches, graph_captures;
} eng_backend_counters;

/* b - a, field by field (a counter difference between two readings). */
eng_backend_counters eng_counters_diff(const eng_backend_counters *b, const eng_backend_counters *a);

typedef struct eng_backend {
    const char *name;      /* "cpu" or "cuda" */
    eng_backend_kind kind;

    /* ---- memory (n counts floats) ---- */
    int (*alloc)(float **out, size_t n);                      /* zero-filled; free with ->free */
    void (*free)(float *p);                                   /* NULL is a no-op */
    int (*to_device)(float *dst, const float *src_host, size_t n);
    int (*to_host)(float *dst_host, const float *src, size_t n);
    int (*copy)(float *dst, const float *src, size_t n);      /* backend -> backend */
    int (*fill)(float *dst, float value, size_t n);

    /* ---- batched row-major GEMM ----
     * for b in [0, batch): C_b = alpha * op(A_b) * op(B_b) + beta * C_b
     * op(A_b) is M x K, op(B_b) is K x N, C_b is M x N; X_b = X + b * strideX;
     * trans* != 0 means the stored matrix is the transpose (lda etc. are row-major
     * leading dimensions of the stored matrices).  beta == 0 must not read C (BLAS
     * convention): eng_model relies on it to overwrite stale gradients after zero_grad. */
    int (*gemm)(int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, long strideA,
                const float *B, int ldb, long strideB,
                float beta, float *C, int ldc, long strideC, int batch);

    /* Y[p][i][j] = act(Y[p][i][j] + bias[p * stride_bias + j]),  Y is [P][rows][N] dense. */
    int (*bias_act)(float *Y, const float *bias, long stride_bias, int P, int rows, int N, eng_act act);
    /* dY[k] *= act'(x_k) for k < n, where the derivative is computed from the activation
     * OUTPUT Y[k] (relu: Y>0; tanh: 1-Y^2; identity: 1). */
    int (*act_backward)(float *dY, const float *Y, size_t n, eng_act act);
    /* db[p * stride_db + j] = (accumulate ? db[..] : 0) + sum_i dY[p][i][j]; dY is [P][rows][N]. */
    int (*bias_grad)(float *db, long stride_db, const float *dY, int P, int rows, int N, int accumulate);

    /* Loss per product over a [P][rows][N] block:
     *   L_p = sum_{i,j} w_pij * l(pred_pij - target_pij) / max(1, sum_{i,j} w_pij)
     * with w = 1 when weight == NULL; MSE l(d) = d^2; Huber l(d) = d^2/2 if |d| <= delta
     * else delta*(|d| - delta/2).  grad (same shape, may be NULL) receives dL_p/dpred.
     * loss_host[P] (host memory, may be NULL) receives L_p. */
    int (*loss)(eng_loss kind, float delta, const float *pred, const float *target,
                const float *weight, float *grad, float *loss_host, int P, int rows, int N);

    /* out_host[p] = sum_{k<n} x[p * stride + k]^2  (host array of P doubles). */
    int (*sumsq)(const float *x, long stride, int n, int P, double *out_host);
    /* x[p * stride + k] *= scale_host[p] for k < n (host array of P floats). */
    int (*scale)(float *x, long stride, int n, int P, const float *scale_host);

    /* Adam with bias correction over n elements:
     *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
     *   w -= lr * (m / bc1) / (sqrt(v / bc2) + eps)      (bc1 = 1-b1^t, bc2 = 1-b2^t)
     * Elements whose mask_host product is 0 are left untouched: mask is NULL (all
     * products train) or a host array of P bytes, each product owning `per_product`
     * consecutive elements (n = P * per_product). */
    int (*adam)(float *w, const float *g, float *m, float *v, size_t per_product, int P,
                const unsigned char *mask_host, float lr, float beta1, float beta2, float eps,
                float bc1, float bc2);

    /* dst = tau * src + (1 - tau) * dst (Polyak / soft target update). */
    int (*polyak)(float *dst, const float *src, size_t n, float tau);

    /* Wait for queued work (no-op on CPU). */
    int (*sync)(void);

    /* ---- added for device-resident training steps (issue 16); every op above keeps its
     * meaning.  "backend memory" is memory from ->alloc. ---- */

    /* The counters (see eng_backend_counters); never fails. */
    void (*counters)(eng_backend_counters *out);

    /* Host memory the backend copies to and from without staging (pinned on CUDA, 64-byte
     * aligned on the CPU); zero-filled; free with ->host_free (NULL is a no-op). */
    int (*host_alloc)(float **out, size_t n);
    void (*host_free)(float *p);

    /* Enqueue a copy of n floats of backend memory into dst_host, which must come from
     * ->host_alloc.  dst_host is complete after a later event_wait on an event recorded
     * after this call (or sync()); the CPU copies at once. */
    int (*to_host_async)(float *dst_host, const float *src, size_t n);

    /* Events: *ev is created on first use (*ev == NULL) and records the point reached by the
     * work queued so far; event_wait blocks the host until that point is reached (one sync),
     * unless a wait on a LATER recorded point (or a sync()) has already returned since it was
     * recorded: the work is then known to be done, and nothing is waited or counted (one
     * stream orders everything); event_free releases it (NULL is a no-op). */
    int (*event_record)(void **ev);
    int (*event_wait)(void *ev);
    void (*event_free)(void *ev);

    /* sumsq with the results left in backend memory: out[p] (doubles; out must be 8-byte
     * aligned backend memory, e.g. 2 P floats from ->alloc) = sum_{k<n} x[p*stride+k]^2. */
    int (*sumsq_dev)(const float *x, long stride, int n, int P, double *out);

    /* loss with the per-product values left in backend memory: loss_dev [P] (may be NULL);
     * otherwise as ->loss. */
    int (*loss_dev)(eng_loss kind, float delta, const float *pred, const float *target, const float *weight,
                    float *grad, float *loss_dev, int P, int rows, int N);

    /* Adam (as ->adam) with the gradient-norm clip folded in and its inputs in backend memory:
     * mask [P] floats (NULL = all train; 0 = product p is left untouched); sumsq [P] doubles
     * (NULL = no clipping): when clip_norm > 0 and norm_p = sqrt(sumsq[p]) > clip_norm, the
     * product's gradient is first multiplied by (float)(clip_norm / norm_p), and the scaled
     * gradient is written back to g (exactly what ->scale then ->adam did). */
    int (*adam_clip)(float *w, float *g, float *m, float *v, size_t per_product, int P, const float *mask,
                     const double *sumsq, float clip_norm, float lr, float beta1, float beta2, float eps,
                     float bc1, float bc2);

    /* Double-DQN / DQN bootstrap targets, all in backend memory, row i = p * B + b of P * B:
     *   a* = argmax_j q_sel[i][j] (first maximum); y = r[i] + (done[i] != 0 ? 0 : gamma q_tgt[i][a*]);
     *   tgt[i][j] = q_cur[i][j] except tgt[i][act[i]] = y;  w[i][j] = 0 except
     *   w[i][act[i]] = mask[p] != 0 ? 1 : 0.
     * q_sel, q_tgt, q_cur, tgt, w are [P*B][A]; act (level as a float), r, done are [P*B];
     * mask is [P].  The argmax makes the host loop's comparisons (start at j = 0, move on when
     * q_sel[i][j] > the best so far), so NaNs pick exactly what that loop picked. */
    int (*dqn_targets)(const float *q_sel, const float *q_tgt, const float *q_cur, const float *act,
                       const float *r, const float *done, const float *mask, float gamma, int P, int B, int A,
                       float *tgt, float *w);

    /* dst[i] = [a[i][0..na), b[i][0..nb)] for i < rows (row concatenation, e.g. the DDPG
     * critic input [state, action]); dst must not overlap a or b.  Backend memory. */
    int (*concat_cols)(float *dst, const float *a, int na, const float *b, int nb, size_t rows);

    /* The DDPG pieces (backend memory; i = p * B + b):
     * ddpg_critic_target: y[i] = r[i] + (done[i] != 0 ? 0 : gamma q[i])  (float, no fused
     *   multiply-add), i < n.
     * ddpg_actor_dq: per product, lambda_p = bc ? (float)(bc_alpha / max(mean_b |q[i]|, 1e-6))
     *   : 1 (sums in double); dq[i] = mask[p] != 0 ? -lambda_p / B : 0; q_mean [P] (may be NULL)
     *   = (float)(sum_b q[i] / B).
     * ddpg_action_grad: g = dx[i * dx_stride + dx_col] (+ 2 (mu[i] - a[i]) / B when bc);
     *   da[i] = mask[p] != 0 ? g : 0. */
    int (*ddpg_critic_target)(float *y, const float *r, const float *done, const float *q, float gamma, size_t n);
    int (*ddpg_actor_dq)(float *dq, float *q_mean, const float *q, const float *mask, int bc, float bc_alpha, int P,
                         int B);
    int (*ddpg_action_grad)(float *da, const float *dx, int dx_stride, int dx_col, const float *mu, const float *a,
                            const float *mask, int bc, int P, int B);

    /* ---- CUDA graphs (issue 16 item 3; docs/cuda.md "Graphs") ----
     * graph_begin() opens a region on the calling thread; graph_end(&graph, status) closes it.
     * On CUDA with graphs on, the region's kernels, GEMMs and device copies are recorded
     * instead of launched, and graph_end launches them as ONE graph: the graph captured for
     * the same sequence of ops (same shapes, batch and buffers; kernel arguments that changed,
     * such as Adam's bias corrections, are patched into it) or, the first time and after any
     * change, a newly captured one.  An op that needs the host inside the region (an upload,
     * a download, a wait, an allocation) launches what was recorded so far and the rest of the
     * region plainly, so the work and its order are always those of plain launches.  With
     * graphs off, after a failed capture (one warning line, then plain launches for the rest
     * of the process) and on the CPU, both calls do nothing.  *graph (NULL at first) is the
     * caller's, one per call site and model set, freed with graph_free (NULL is a no-op).
     * graph_end returns `status` when it is not 0 (the recorded work before the failure is
     * launched plainly, as it would have been), else 0 or a launch failure.  Regions do not
     * nest: graph_begin inside a region launches the open one plainly first. */
    int (*graph_begin)(void);
    int (*graph_end)(void **graph, int status);
    void (*graph_free)(void *graph);
} eng_backend;

/* The CPU backend (OpenBLAS); static, never NULL, never freed. */
const eng_backend *eng_backend_cpu(void);

/* CPU backend threads (process-wide).  n >= 1 sets the count, 0 restores the default
 * (OpenBLAS's own count: OPENBLAS_NUM_THREADS or the cores), capped at 16.  Policy: a batched
 * GEMM of several products and the per-product / elementwise ops of large groups are split
 * across threads by product (or element block), each running single-threaded OpenBLAS, so a
 * product's arithmetic never depends on the thread count; one GEMM of >= 2^19 multiply-adds
 * and >= 32 rows is split into row blocks across threads (each single-threaded OpenBLAS, same
 * bits as one thread); anything smaller runs on one thread (thread hand-off costs more than
 * it saves there).  Note: this sets OpenBLAS's global thread count before each GEMM, which
 * also applies to other cblas calls of the process.  Returns ENG_EINVAL for n < 0. */
int eng_cpu_set_threads(int n);
/* The thread count the CPU backend uses now (>= 1). */
int eng_cpu_threads(void);

/* OpenBLAS kernels.  OpenBLAS picks its kernel set once, when the library is loaded, from the
 * CPU or the OPENBLAS_CORETYPE environment variable.  OpenBLAS 0.3.21 (Debian 12) does not
 * know AMD Zen 4 / Zen 5 and runs its AVX2 "Haswell" kernels there although the CPU has
 * AVX-512; its "SkylakeX" kernels ran the 32-256-256-21 DQN step 1.5x faster on the dev
 * machine (Zen 5, one thread).  eng_cpu_blas_core() is the name OpenBLAS reports for the
 * kernels in use (static string, never NULL).  eng_cpu_blas_better_core() returns the
 * OPENBLAS_CORETYPE value worth starting the process with ("SkylakeX") when OpenBLAS chose
 * Haswell/Zen kernels on a CPU (and OS) with AVX-512 F/BW/DQ/VL and OPENBLAS_CORETYPE is not
 * set; NULL otherwise (nothing to gain, or the user chose).  Only a new process can act on it
 * (rlprice's main re-executes itself once). */
const char *eng_cpu_blas_core(void);
const char *eng_cpu_blas_better_core(void);

/* The CUDA backend.  Returns ENG_EDEVICE (with a message) when rlprice was built without
 * CUDA or no usable device is present; *out is then NULL. */
int eng_backend_cuda(const eng_backend **out);

/* CUDA graphs (see graph_begin), process-wide: on by default when the build has CUDA 12 or
 * newer; off with eng_cuda_set_graphs(0) or RLPRICE_CUDA_GRAPHS=0 (or off/no/false) in the
 * environment, and for the rest of the process after a capture failed.  For tests,
 * eng_cuda_set_graphs(2) turns graphs on and makes the next capture fail (the fallback path).
 * eng_cuda_graphs_status(): "on", "off (<why>)" or "not compiled in" (never NULL; a
 * thread-local copy valid until the next call on the thread). */
void eng_cuda_set_graphs(int on);
const char *eng_cuda_graphs_status(void);

/* Select by name: "cpu", "cuda" (error if no device) or "auto" (CUDA when a device is
 * present; otherwise logs one info line and returns the CPU backend). */
int eng_backend_select(const char *device, const eng_backend **out);

/* The one check of a device name: 0 for "auto", "cpu", "cuda"; ENG_EINVAL otherwise, the
 * message naming `where` ("--device", "file.cfg:3: compare.device"). */
int eng_device_check(const char *device, const char *where);

/* Human-readable one-line description of the CUDA situation ("not compiled in",
 * "no device: <reason>", "NVIDIA H100 ... (sm_90)").  Static string. */
const char *eng_cuda_describe(void);

#endif
