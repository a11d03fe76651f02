/* eng_backend_cpu.c - the CPU backend: host memory, OpenBLAS sgemm, plain C loops.
 *
 * This is the reference implementation of eng_backend.h.  Loops are kept simple (one
 * branch-free inner loop per op, activation switch hoisted out) so that gcc -O2 can
 * vectorise them.  Reductions (loss, sumsq, bias gradient) accumulate in double where
 * the result is reported to the host, and in float for bias gradients (like cuBLAS).
 */
#include "eng_backend.h"
#include "eng_backend_cpu_rl.h"
#include "eng_cpu_pool.h"
#include "eng_util.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define CPU_HAVE_AVX 1 /* AVX versions of Adam and sumsq, chosen at run time */
static int cpu_avx(void) { return __builtin_cpu_supports("avx"); }
#endif

/* gcc -O2 uses the "very cheap" vectoriser cost model, which refuses any loop whose trip
 * count is not a known multiple of the vector width; the elementwise loops below are the
 * only hot non-BLAS code, so let the vectoriser handle them here (dynamic cost model). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#define CPU_ALIGN 64

/* ---- counters (eng_backend_counters; the rules are in eng_backend.h) ---------------------- */
static atomic_ullong g_launches, g_copies, g_uploads, g_downloads, g_syncs, g_bytes_up, g_bytes_down;
#define CNT(c, v) atomic_fetch_add_explicit(&(c), (unsigned long long)(v), memory_order_relaxed)

void eng_cpu_count_launch(void) { CNT(g_launches, 1); }

static void cpu_counters(eng_backend_counters *out) {
    out->launches = atomic_load(&g_launches);
    out->copies = atomic_load(&g_copies);
    out->uploads = atomic_load(&g_uploads);
    out->downloads = atomic_load(&g_downloads);
    out->syncs = atomic_load(&g_syncs);
    out->bytes_up = atomic_load(&g_bytes_up);
    out->bytes_down = atomic_load(&g_bytes_down);
    out->graph_launches = 0; /* no graphs on the CPU */
    out->graph_captures = 0;
}

/* Graph regions (eng_backend.h): the CPU runs every op as it comes, so a region changes
 * nothing; graph_end hands back the step's status.  Never fail. */
static int cpu_graph_begin(void) { return ENG_OK; }
static int cpu_graph_end(void **graph, int status) { return (void)graph, status; }
static void cpu_graph_free(void *graph) { (void)graph; }

/* ---- threads (see eng_cpu_set_threads in eng_backend.h) ------------------------------------
 * Thresholds measured on the 2-core dev machine (OpenBLAS 0.3.21, Haswell kernels).  On a quiet
 * machine two OpenBLAS threads beat one from about 2^22 multiply-adds per GEMM (64x256x256): the
 * 32-256-256-21 training step ran 2,958 -> 4,123 steps/s at batch 64 and 874 -> 1,305 at batch 256
 * going from a 2^26 to a 2^22 threshold.  Below 2^22 the hand-off costs more than it saves
 * (OpenBLAS's default of all cores made batch-64 steps 5x slower).  When other processes load
 * every core, two threads lose even above 2^22: `eng_cpu_set_threads(1)` (`--threads 1`) is then
 * the better setting.  Our own split across products pays off for groups from about 2^22
 * multiply-adds per call.  Fork-join on an oversubscribed machine loses whenever a worker is
 * preempted mid-chunk, so small ops, and elementwise ops of single networks below 2^20 floats,
 * always stay on the calling thread.
 * A single GEMM (batch 1, e.g. an agent's network) of >= 2^19 multiply-adds and >= 32 rows is
 * split into T row blocks (multiples of 16 rows) run on our pool, each with single-threaded
 * OpenBLAS: a row of C is computed by the same kernel arithmetic whatever the split, so this
 * equals the one-thread result bit for bit (tests/test_engine_backend.c).  Interleaved A/B on
 * the loaded dev machine (load 3-4), against OpenBLAS's own two threads from 2^22: DQN steps
 * batch 64 2,053 -> 2,445/s, batch 256 677 -> 855/s; DDPG updates batch 64 1,104 -> 1,202/s,
 * batch 256 378 -> 452/s.  Our pool's caller runs every block itself when the worker is not
 * scheduled, where OpenBLAS's caller waits for its thread. */
#define CPU_BLAS_MT_MACS (1L << 22)
#define CPU_ROW_SPLIT_MACS (1L << 19) /* one GEMM split into row blocks on our pool */
#define CPU_POOL_MIN_MACS (1L << 22)
#define CPU_POOL_MIN_PROD_ELEMS (1L << 17) /* per-product ops of a group */
#define CPU_POOL_MIN_ELEMS (1L << 20)      /* elementwise ops */
#define CPU_POOL_MIN_OPT_ELEMS (1L << 15)  /* Adam and Polyak passes */
#define CPU_ELEM_GRAIN 1024L
#define CPU_GEMM_ROW_GRAIN 16L /* row split of one GEMM: whole 16-row micro-panels */ /* elementwise split boundaries: multiples of 1024 floats */

extern void openblas_set_num_threads(int num_threads); /* OpenBLAS extension */
extern int openblas_get_num_threads(void);

static pthread_once_t g_threads_once = PTHREAD_ONCE_INIT;
static int g_default_threads = 1;
static atomic_int g_threads = 0; /* 0 = default */

/* The default count is OpenBLAS's at start; OpenBLAS itself is then left at one thread, and a
 * GEMM that wants more sets them and puts one back (cpu_gemm): the library's other BLAS and
 * LAPACK callers (demand fits, OPE's ridge, LinUCB) always run single-threaded, so their sums
 * do not depend on which op ran before them (a second comparison in one process gave OPE values
 * different in the last bits from the first's with OPENBLAS_NUM_THREADS unset). */
static void threads_init(void) {
    int n = openblas_get_num_threads();
    g_default_threads = n < 1 ? 1 : n > ENG_POOL_MAX_THREADS ? ENG_POOL_MAX_THREADS : n;
    openblas_set_num_threads(1);
}

int eng_cpu_threads(void) {
    pthread_once(&g_threads_once, threads_init);
    int n = atomic_load(&g_threads);
    return n > 0 ? n : g_default_threads;
}

int eng_cpu_set_threads(int n) {
    if (n < 0) return eng_err_set(ENG_EINVAL, "eng_cpu_set_threads: %d threads (need >= 0; 0 = default)", n);
    pthread_once(&g_threads_once, threads_init);
    atomic_store(&g_threads, n > ENG_POOL_MAX_THREADS ? ENG_POOL_MAX_THREADS : n);
    return ENG_OK;
}

/* Set every time (a few nanoseconds): other code may have changed OpenBLAS's count. */
static void blas_threads(int n) { openblas_set_num_threads(n); }

/* Threads for a per-product op over P products and `elems` floats in all. */
static int prod_threads(int P, long elems) {
    return P >= 2 && elems >= CPU_POOL_MIN_PROD_ELEMS ? eng_cpu_threads() : 1;
}
/* Threads for an elementwise op over n floats. */
static int elem_threads(size_t n) { return n >= (size_t)CPU_POOL_MIN_ELEMS ? eng_cpu_threads() : 1; }
/* Threads for the optimiser's elementwise passes (Adam, Polyak) over n floats: worth splitting
 * from 2^15 floats (a 32-256-256-21 network has 79k parameters; interleaved A/B under load:
 * DQN batch 64 2,470 -> 2,600 steps/s, DDPG batch 64 1,190 -> 1,365 updates/s). */
static int opt_threads(size_t n) { return n >= (size_t)CPU_POOL_MIN_OPT_ELEMS ? eng_cpu_threads() : 1; }

/* ---- OpenBLAS kernel set (see eng_cpu_blas_better_core in eng_backend.h) ---------------- */

extern char *openblas_get_corename(void); /* OpenBLAS extension */

const char *eng_cpu_blas_core(void) {
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

const char *eng_cpu_blas_better_core(void) {
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && env[0]) return NULL;
    const char *core = eng_cpu_blas_core();
    if (strcasecmp(core, "haswell") != 0 && strcasecmp(core, "zen") != 0) return NULL;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    /* libgcc checks the OS saves the AVX-512 state (XGETBV) before reporting these */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
#endif
    return NULL;
}

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

/* host memory = backend memory on the CPU */
static int cpu_host_alloc(float **out, size_t n) { return cpu_alloc(out, n); }

static int cpu_copy(float *dst, const float *src, size_t n) {
    if (n == 0 || dst == src) return ENG_OK;
    CNT(g_copies, 1);
    memmove(dst, src, n * sizeof(float));
    return ENG_OK;
}

/* host -> backend: one upload */
static int cpu_to_device(float *dst, const float *src, size_t n) {
    if (n == 0) return ENG_OK;
    CNT(g_uploads, 1);
    CNT(g_bytes_up, n * sizeof(float));
    memmove(dst, src, n * sizeof(float));
    return ENG_OK;
}

/* backend -> host, complete on return: one download and one sync (what CUDA pays) */
static int cpu_to_host(float *dst, const float *src, size_t n) {
    if (n == 0) return ENG_OK;
    CNT(g_downloads, 1);
    CNT(g_bytes_down, n * sizeof(float));
    CNT(g_syncs, 1);
    memmove(dst, src, n * sizeof(float));
    return ENG_OK;
}

/* enqueued download: counted, no sync (the CPU copies at once) */
static int cpu_to_host_async(float *dst, const float *src, size_t n) {
    if (n == 0) return ENG_OK;
    CNT(g_downloads, 1);
    CNT(g_bytes_down, n * sizeof(float));
    memmove(dst, src, n * sizeof(float));
    return ENG_OK;
}

static int cpu_host_alloc(float **out, size_t n);
static void cpu_free(float *p);

/* Events: the CPU has nothing in flight, but the events keep the sequence numbers that decide
 * whether a wait counts (eng_backend.h), exactly as on CUDA. */
typedef struct {
    unsigned long long seq; /* recording number (process-wide order) */
} cpu_event;
static atomic_ullong g_ev_seq, g_ev_done; /* last recording number; newest point waited for */

static void ev_done_at_least(unsigned long long seq) {
    unsigned long long cur = atomic_load(&g_ev_done);
    while (cur < seq && !atomic_compare_exchange_weak(&g_ev_done, &cur, seq)) {
    }
}

static int cpu_event_record(void **ev) {
    if (!ev) return eng_err_set(ENG_EINVAL, "cpu event_record: NULL event");
    if (!*ev) {
        *ev = calloc(1, sizeof(cpu_event));
        if (!*ev) return eng_err_set(ENG_ENOMEM, "cpu event_record: out of memory");
    }
    ((cpu_event *)*ev)->seq = atomic_fetch_add(&g_ev_seq, 1) + 1;
    return ENG_OK;
}
static int cpu_event_wait(void *ev) {
    if (!ev) return eng_err_set(ENG_EINVAL, "cpu event_wait: event never recorded");
    const unsigned long long seq = ((cpu_event *)ev)->seq;
    if (seq <= atomic_load(&g_ev_done)) return ENG_OK; /* a later point was already waited for */
    CNT(g_syncs, 1);
    ev_done_at_least(seq);
    return ENG_OK;
}
static void cpu_event_free(void *ev) { free(ev); }

static int cpu_fill(float *dst, float value, size_t n) {
    if (n) CNT(g_launches, 1);
    for (size_t k = 0; k < n; k++) dst[k] = value;
    return ENG_OK;
}

/* ---- GEMM -------------------------------------------------------------------- */

typedef struct {
    enum CBLAS_TRANSPOSE ta, tb;
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    long sA, sB, sC;
} gemm_job;

static void gemm_range(void *ctx, long b0, long b1) {
    const gemm_job *j = ctx;
    for (long b = b0; b < b1; b++)
        cblas_sgemm(CblasRowMajor, j->ta, j->tb, j->M, j->N, j->K, j->alpha, j->A + b * j->sA, j->lda,
                    j->B + b * j->sB, j->ldb, j->beta, j->C + b * j->sC, j->ldc);
}

/* Rows [r0, r1) of the single GEMM j (batch 1): C rows r0.. from op(A) rows r0.. */
static void gemm_rows(void *ctx, long r0, long r1) {
    const gemm_job *j = ctx;
    const long a_off = j->ta == CblasNoTrans ? r0 * j->lda : r0; /* op(A) row r = A row r, or A column r */
    cblas_sgemm(CblasRowMajor, j->ta, j->tb, (int)(r1 - r0), j->N, j->K, j->alpha, j->A + a_off, j->lda, j->B,
                j->ldb, j->beta, j->C + r0 * j->ldc, j->ldc);
}

static int cpu_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                    long strideA, const float *B, int ldb, long strideB, float beta, float *C, int ldc,
                    long strideC, int batch) {
    if (M < 0 || N < 0 || K < 0 || batch < 0)
        return eng_err_set(ENG_EINVAL, "cpu gemm: negative size (M %d N %d K %d batch %d)", M, N, K, batch);
    if (M == 0 || N == 0 || batch == 0) return ENG_OK;
    CNT(g_launches, 1);
    gemm_job j = {transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, lda, ldb, ldc,
                  alpha, beta, A, B, C, strideA, strideB, strideC};
    const long macs = (long)M * N * (K > 0 ? K : 1);
    const int T = eng_cpu_threads();
    if (T >= 2 && batch >= 2 && macs * batch >= CPU_POOL_MIN_MACS) {
        /* one product per thread at a time, each GEMM single-threaded: the same arithmetic
         * as a batch of 1, whatever the split */
        blas_threads(1);
        eng_pool_run(gemm_range, &j, batch, 1, T);
    } else if (T >= 2 && batch == 1 && macs >= CPU_ROW_SPLIT_MACS && M >= 2 * CPU_GEMM_ROW_GRAIN) {
        /* one GEMM: T row blocks on our pool, each single-threaded OpenBLAS */
        long grain = (M + T - 1) / T;
        grain = (grain + CPU_GEMM_ROW_GRAIN - 1) / CPU_GEMM_ROW_GRAIN * CPU_GEMM_ROW_GRAIN;
        blas_threads(1);
        eng_pool_run(gemm_rows, &j, M, grain, T);
    } else if (T >= 2 && macs >= CPU_BLAS_MT_MACS) {
        blas_threads(T);
        gemm_range(&j, 0, batch);
        blas_threads(1); /* every other BLAS caller single-threaded (threads_init) */
    } else {
        blas_threads(1);
        gemm_range(&j, 0, batch);
    }
    return ENG_OK;
}

/* ---- activations --------------------------------------------------------------- */

typedef struct {
    float *Y;
    const float *bias;
    long stride_bias;
    int rows, N;
    eng_act act;
} bias_act_job;

/* rows [r0, r1) of the flattened [P * rows] row index */
static void bias_act_range(void *ctx, long r0, long r1) {
    const bias_act_job *j = ctx;
    const int N = j->N;
    for (long r = r0; r < r1; r++) {
        const float *b = j->bias + (r / j->rows) * j->stride_bias;
        float *y = j->Y + r * N;
        switch (j->act) {
        case ENG_ACT_RELU:
            for (int k = 0; k < N; k++) {
                float v = y[k] + b[k];
                y[k] = v > 0.0f ? v : 0.0f;
            }
            break;
        case ENG_ACT_TANH:
            for (int k = 0; k < N; k++) y[k] = tanhf(y[k] + b[k]);
            break;
        case ENG_ACT_IDENTITY:
            for (int k = 0; k < N; k++) y[k] += b[k];
            break;
        }
    }
}

static int cpu_bias_act(float *Y, const float *bias, long stride_bias, int P, int rows, int N, eng_act act) {
    if (act != ENG_ACT_RELU && act != ENG_ACT_TANH && act != ENG_ACT_IDENTITY)
        return eng_err_set(ENG_EINVAL, "cpu bias_act: unknown activation %d", (int)act);
    if ((long)P * rows * N > 0) CNT(g_launches, 1);
    bias_act_job j = {Y, bias, stride_bias, rows, N, act};
    const long nrows = (long)P * rows;
    const long grain = N >= CPU_ELEM_GRAIN ? 1 : CPU_ELEM_GRAIN / N; /* rows per block */
    const long elems = nrows * N;
    eng_pool_run(bias_act_range, &j, nrows, grain, P >= 2 ? prod_threads(P, elems) : elem_threads((size_t)elems));
    return ENG_OK;
}

typedef struct {
    float *dY;
    const float *Y;
    eng_act act;
} act_bwd_job;

static void act_bwd_range(void *ctx, long k0, long k1) {
    const act_bwd_job *j = ctx;
    float *dY = j->dY;
    const float *Y = j->Y;
    if (j->act == ENG_ACT_RELU)
        for (long k = k0; k < k1; k++) dY[k] = Y[k] > 0.0f ? dY[k] : 0.0f;
    else if (j->act == ENG_ACT_TANH)
        for (long k = k0; k < k1; k++) dY[k] *= 1.0f - Y[k] * Y[k];
}

static int cpu_act_backward(float *dY, const float *Y, size_t n, eng_act act) {
    if (act == ENG_ACT_IDENTITY) return ENG_OK;
    if (act != ENG_ACT_RELU && act != ENG_ACT_TANH)
        return eng_err_set(ENG_EINVAL, "cpu act_backward: unknown activation %d", (int)act);
    if (n) CNT(g_launches, 1);
    act_bwd_job j = {dY, Y, act};
    eng_pool_run(act_bwd_range, &j, (long)n, CPU_ELEM_GRAIN, elem_threads(n));
    return ENG_OK;
}

typedef struct {
    float *db;
    long stride_db;
    const float *dY;
    int rows, N, accumulate;
} bias_grad_job;

static void bias_grad_range(void *ctx, long p0, long p1) {
    const bias_grad_job *j = ctx;
    const int N = j->N;
    for (long p = p0; p < p1; p++) {
        float *d = j->db + p * j->stride_db;
        const float *g = j->dY + p * j->rows * N;
        if (!j->accumulate)
            for (int k = 0; k < N; k++) d[k] = 0.0f;
        for (int i = 0; i < j->rows; i++, g += N)
            for (int k = 0; k < N; k++) d[k] += g[k];
    }
}

static int cpu_bias_grad(float *db, long stride_db, const float *dY, int P, int rows, int N, int accumulate) {
    if (P > 0 && N > 0) CNT(g_launches, 1);
    bias_grad_job j = {db, stride_db, dY, rows, N, accumulate};
    eng_pool_run(bias_grad_range, &j, P, 1, prod_threads(P, (long)P * rows * N));
    return ENG_OK;
}

/* ---- loss ---------------------------------------------------------------------- */

typedef struct {
    eng_loss kind;
    float delta;
    const float *pred, *target, *weight;
    float *grad, *loss_host;
    long n; /* rows * N */
} loss_job;

static void loss_range(void *ctx, long p0, long p1) {
    const loss_job *j = ctx;
    const long n = j->n;
    const float delta = j->delta;
    for (long p = p0; p < p1; p++) {
        const float *x = j->pred + p * n, *t = j->target + p * n;
        const float *w = j->weight ? j->weight + p * n : NULL;
        float *gr = j->grad ? j->grad + p * n : NULL;
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
            if (j->kind == ENG_LOSS_MSE) {
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
            if (gr) gr[k] = wk * dl * inv;
        }
        if (j->loss_host) j->loss_host[p] = (float)(acc / norm);
    }
}

static int cpu_loss(eng_loss kind, float delta, const float *pred, const float *target, const float *weight,
                    float *grad, float *loss_host, int P, int rows, int N) {
    if (kind != ENG_LOSS_MSE && kind != ENG_LOSS_HUBER)
        return eng_err_set(ENG_EINVAL, "cpu loss: unknown loss kind %d", (int)kind);
    if (kind == ENG_LOSS_HUBER && !(delta > 0.0f))
        return eng_err_set(ENG_EINVAL, "cpu loss: Huber delta must be > 0 (got %g)", (double)delta);
    loss_job j = {kind, delta, pred, target, weight, grad, loss_host, (long)rows * N};
    if (P > 0) {
        CNT(g_launches, 1);
        if (loss_host) {
            CNT(g_downloads, 1);
            CNT(g_bytes_down, (size_t)P * sizeof(float));
            CNT(g_syncs, 1);
        }
    }
    eng_pool_run(loss_range, &j, P, 1, prod_threads(P, (long)P * rows * N));
    return ENG_OK;
}

/* loss values into backend memory (host memory here): no download, no sync */
static int cpu_loss_dev(eng_loss kind, float delta, const float *pred, const float *target, const float *weight,
                        float *grad, float *loss_dev, int P, int rows, int N) {
    if (kind != ENG_LOSS_MSE && kind != ENG_LOSS_HUBER)
        return eng_err_set(ENG_EINVAL, "cpu loss: unknown loss kind %d", (int)kind);
    if (kind == ENG_LOSS_HUBER && !(delta > 0.0f))
        return eng_err_set(ENG_EINVAL, "cpu loss: Huber delta must be > 0 (got %g)", (double)delta);
    loss_job j = {kind, delta, pred, target, weight, grad, loss_dev, (long)rows * N};
    if (P > 0) CNT(g_launches, 1);
    eng_pool_run(loss_range, &j, P, 1, prod_threads(P, (long)P * rows * N));
    return ENG_OK;
}

/* ---- reductions and optimiser ---------------------------------------------------- */

typedef struct {
    float *x; /* const for sumsq */
    long stride;
    int n;
    double *out;
    const float *scale;
} red_job;

/* Sum of squares in double with 8 independent partial sums (the order depends only on n, so
 * it is the same for every product and thread split); the compiler can vectorise it. */
#ifdef CPU_HAVE_AVX
/* The same sums with AVX (4 doubles a vector, lanes k mod 8 as below; no FMA, so each
 * product and sum is rounded exactly as in the plain loop). */
__attribute__((target("avx"))) static double sumsq_one_avx(const float *v, int n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(v + k)), b = _mm256_cvtps_pd(_mm_loadu_ps(v + k + 4));
        lo = _mm256_add_pd(lo, _mm256_mul_pd(a, a));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(b, b));
    }
    double s[8];
    _mm256_storeu_pd(s, lo);
    _mm256_storeu_pd(s + 4, hi);
    double t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; k < n; k++) t += (double)v[k] * (double)v[k];
    return t;
}
#endif

static double sumsq_one(const float *v, int n) {
#ifdef CPU_HAVE_AVX
    if (cpu_avx()) return sumsq_one_avx(v, n);
#endif
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int i = 0; i < 8; i++) s[i] += (double)v[k + i] * (double)v[k + i];
    double t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; k < n; k++) t += (double)v[k] * (double)v[k];
    return t;
}

static void sumsq_range(void *ctx, long p0, long p1) {
    const red_job *j = ctx;
    for (long p = p0; p < p1; p++) j->out[p] = sumsq_one(j->x + p * j->stride, j->n);
}

static int cpu_sumsq(const float *x, long stride, int n, int P, double *out_host) {
    red_job j = {(float *)x, stride, n, out_host, NULL};
    if (P > 0) {
        CNT(g_launches, 1);
        CNT(g_downloads, 1);
        CNT(g_bytes_down, (size_t)P * sizeof(double));
        CNT(g_syncs, 1);
    }
    eng_pool_run(sumsq_range, &j, P, 1, prod_threads(P, (long)P * n));
    return ENG_OK;
}

static void scale_range(void *ctx, long p0, long p1) {
    const red_job *j = ctx;
    for (long p = p0; p < p1; p++) {
        float *v = j->x + p * j->stride;
        const float s = j->scale[p];
        if (s == 1.0f) continue;
        for (int k = 0; k < j->n; k++) v[k] *= s;
    }
}

/* sums of squares left in backend memory (host memory here) */
static int cpu_sumsq_dev(const float *x, long stride, int n, int P, double *out) {
    red_job j = {(float *)x, stride, n, out, NULL};
    if (P > 0) CNT(g_launches, 1);
    eng_pool_run(sumsq_range, &j, P, 1, prod_threads(P, (long)P * n));
    return ENG_OK;
}

static int cpu_scale(float *x, long stride, int n, int P, const float *scale_host) {
    red_job j = {x, stride, n, NULL, scale_host};
    if ((long)P * n > 0) {
        CNT(g_launches, 1);
        CNT(g_uploads, 1);
        CNT(g_bytes_up, (size_t)P * sizeof(float));
    }
    eng_pool_run(scale_range, &j, P, 1, prod_threads(P, (long)P * n));
    return ENG_OK;
}

typedef struct {
    float *w, *m, *v;
    const float *g;
    size_t per_product;
    int P;
    const unsigned char *mask;
    float beta1, beta2, a1, a2, step, inv_bc2, eps;
    const float *fmask; /* adam_clip: backend-memory mask [P] (NULL = all) */
} adam_job;

#ifdef CPU_HAVE_AVX
/* The SSE loop of adam_span 8 at a time (no FMA: the same roundings); returns where it stopped. */
__attribute__((target("avx"))) static size_t adam_avx(const adam_job *j, float *wp, const float *gp, float *mp,
                                                      float *vp, size_t k, size_t k1) {
    const __m256 vb1 = _mm256_set1_ps(j->beta1), vb2 = _mm256_set1_ps(j->beta2), va1 = _mm256_set1_ps(j->a1),
                 va2 = _mm256_set1_ps(j->a2), vstep = _mm256_set1_ps(j->step), vinv = _mm256_set1_ps(j->inv_bc2),
                 veps = _mm256_set1_ps(j->eps);
    for (; k + 8 <= k1; k += 8) {
        __m256 gk = _mm256_loadu_ps(gp + k);
        __m256 mk = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(mp + k)), _mm256_mul_ps(va1, gk));
        __m256 vk = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(vp + k)), _mm256_mul_ps(_mm256_mul_ps(va2, gk), gk));
        _mm256_storeu_ps(mp + k, mk);
        _mm256_storeu_ps(vp + k, vk);
        __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vk, vinv)), veps);
        _mm256_storeu_ps(wp + k, _mm256_sub_ps(_mm256_loadu_ps(wp + k), _mm256_div_ps(_mm256_mul_ps(vstep, mk), den)));
    }
    return k;
}
#endif

/* Adam on elements [k0, k1) of one product block (pointers already offset). */
static void adam_span(const adam_job *j, float *wp, const float *gp, float *mp, float *vp, size_t k0, size_t k1) {
    const float beta1 = j->beta1, beta2 = j->beta2, a1 = j->a1, a2 = j->a2, step = j->step, inv_bc2 = j->inv_bc2,
                eps = j->eps;
    size_t k = k0;
#ifdef CPU_HAVE_AVX
    if (cpu_avx()) k = adam_avx(j, wp, gp, mp, vp, k, k1);
#endif
#ifdef __SSE2__
    /* sqrtf keeps errno semantics at -O2, which stops the vectoriser; do 4 at a time (the
     * SSE sqrt and divide are correctly rounded, so this equals the scalar loop bit for bit) */
    const __m128 vb1 = _mm_set1_ps(beta1), vb2 = _mm_set1_ps(beta2), va1 = _mm_set1_ps(a1), va2 = _mm_set1_ps(a2),
                 vstep = _mm_set1_ps(step), vinv = _mm_set1_ps(inv_bc2), veps = _mm_set1_ps(eps);
    for (; k + 4 <= k1; k += 4) {
        __m128 gk = _mm_loadu_ps(gp + k);
        __m128 mk = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(mp + k)), _mm_mul_ps(va1, gk));
        __m128 vk = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(vp + k)), _mm_mul_ps(_mm_mul_ps(va2, gk), gk));
        _mm_storeu_ps(mp + k, mk);
        _mm_storeu_ps(vp + k, vk);
        __m128 den = _mm_add_ps(_mm_sqrt_ps(_mm_mul_ps(vk, vinv)), veps);
        _mm_storeu_ps(wp + k, _mm_sub_ps(_mm_loadu_ps(wp + k), _mm_div_ps(_mm_mul_ps(vstep, mk), den)));
    }
#endif
    for (; k < k1; k++) {
        float gk = gp[k];
        float mk = beta1 * mp[k] + a1 * gk;
        float vk = beta2 * vp[k] + a2 * gk * gk;
        mp[k] = mk;
        vp[k] = vk;
        wp[k] -= step * mk / (sqrtf(vk * inv_bc2) + eps);
    }
}

/* range over products */
static void adam_prod_range(void *ctx, long p0, long p1) {
    const adam_job *j = ctx;
    for (long p = p0; p < p1; p++) {
        if ((j->mask && !j->mask[p]) || (j->fmask && j->fmask[p] == 0.0f)) continue;
        size_t o = (size_t)p * j->per_product;
        adam_span(j, j->w + o, j->g + o, j->m + o, j->v + o, 0, j->per_product);
    }
}

/* range over the elements of a single product */
static void adam_elem_range(void *ctx, long k0, long k1) {
    const adam_job *j = ctx;
    adam_span(j, j->w, j->g, j->m, j->v, (size_t)k0, (size_t)k1);
}

static int cpu_adam(float *w, const float *g, float *m, float *v, size_t per_product, int P,
                    const unsigned char *mask_host, float lr, float beta1, float beta2, float eps, float bc1,
                    float bc2) {
    if (!(bc1 > 0.0f) || !(bc2 > 0.0f))
        return eng_err_set(ENG_EINVAL, "cpu adam: bias corrections must be > 0 (bc1 %g, bc2 %g)", (double)bc1,
                           (double)bc2);
    adam_job j = {w, m, v, g, per_product, P, mask_host, beta1, beta2, 1.0f - beta1, 1.0f - beta2, lr / bc1,
                  1.0f / bc2, eps, NULL};
    if (per_product * (size_t)P > 0) {
        CNT(g_launches, 1);
        if (mask_host) {
            CNT(g_uploads, 1);
            CNT(g_bytes_up, (size_t)P);
        }
    }
    if (P == 1) {
        if (mask_host && !mask_host[0]) return ENG_OK;
        eng_pool_run(adam_elem_range, &j, (long)per_product, CPU_ELEM_GRAIN, opt_threads(per_product));
    } else {
        eng_pool_run(adam_prod_range, &j, P, 1, prod_threads(P, (long)P * (long)per_product));
    }
    return ENG_OK;
}

typedef struct {
    float *g;
    size_t per_product;
    const double *sumsq;
    float clip;
} clip_job;

/* The clip of adam_clip over products [p0, p1): the factor computed exactly as
 * eng_model_adam_step computed it on the host before (double norm, float factor). */
static void clip_range(void *ctx, long p0, long p1) {
    const clip_job *j = ctx;
    for (long p = p0; p < p1; p++) {
        double norm = sqrt(j->sumsq[p]);
        if (!(norm > (double)j->clip)) continue;
        const float f = (float)((double)j->clip / norm);
        float *v = j->g + (size_t)p * j->per_product;
        for (size_t k = 0; k < j->per_product; k++) v[k] *= f;
    }
}

static int cpu_adam_clip(float *w, float *g, float *m, float *v, size_t per_product, int P, const float *mask,
                         const double *sumsq, float clip_norm, float lr, float beta1, float beta2, float eps,
                         float bc1, float bc2) {
    if (!(bc1 > 0.0f) || !(bc2 > 0.0f))
        return eng_err_set(ENG_EINVAL, "cpu adam: bias corrections must be > 0 (bc1 %g, bc2 %g)", (double)bc1,
                           (double)bc2);
    if (per_product * (size_t)P == 0) return ENG_OK;
    CNT(g_launches, 1);
    if (sumsq && clip_norm > 0.0f) {
        clip_job c = {g, per_product, sumsq, clip_norm};
        eng_pool_run(clip_range, &c, P, 1, prod_threads(P, (long)P * (long)per_product));
    }
    adam_job j = {w, m, v, g, per_product, P, NULL, beta1, beta2, 1.0f - beta1, 1.0f - beta2, lr / bc1,
                  1.0f / bc2, eps, mask};
    if (P == 1) {
        if (mask && mask[0] == 0.0f) return ENG_OK;
        eng_pool_run(adam_elem_range, &j, (long)per_product, CPU_ELEM_GRAIN, opt_threads(per_product));
    } else {
        eng_pool_run(adam_prod_range, &j, P, 1, prod_threads(P, (long)P * (long)per_product));
    }
    return ENG_OK;
}

typedef struct {
    float *dst;
    const float *src;
    float tau;
} polyak_job;

static void polyak_range(void *ctx, long k0, long k1) {
    const polyak_job *j = ctx;
    const float tau = j->tau, keep = 1.0f - tau;
    for (long k = k0; k < k1; k++) j->dst[k] = tau * j->src[k] + keep * j->dst[k];
}

static int cpu_polyak(float *dst, const float *src, size_t n, float tau) {
    polyak_job j = {dst, src, tau};
    if (n) CNT(g_launches, 1);
    eng_pool_run(polyak_range, &j, (long)n, CPU_ELEM_GRAIN, opt_threads(n));
    return ENG_OK;
}

static int cpu_sync(void) {
    CNT(g_syncs, 1);
    ev_done_at_least(atomic_load(&g_ev_seq));
    return ENG_OK;
}

static const eng_backend g_cpu = {
    .name = "cpu",
    .kind = ENG_BACKEND_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_to_device,
    .to_host = cpu_to_host,
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
    .counters = cpu_counters,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_free,
    .to_host_async = cpu_to_host_async,
    .event_record = cpu_event_record,
    .event_wait = cpu_event_wait,
    .event_free = cpu_event_free,
    .sumsq_dev = cpu_sumsq_dev,
    .loss_dev = cpu_loss_dev,
    .adam_clip = cpu_adam_clip,
    .dqn_targets = eng_cpu_dqn_targets,
    .concat_cols = eng_cpu_concat_cols,
    .ddpg_critic_target = eng_cpu_ddpg_critic_target,
    .ddpg_actor_dq = eng_cpu_ddpg_actor_dq,
    .ddpg_action_grad = eng_cpu_ddpg_action_grad,
    .graph_begin = cpu_graph_begin,
    .graph_end = cpu_graph_end,
    .graph_free = cpu_graph_free,
};

const eng_backend *eng_backend_cpu(void) {
    pthread_once(&g_threads_once, threads_init); /* OpenBLAS at one thread outside the GEMMs */
    return &g_cpu;
}
