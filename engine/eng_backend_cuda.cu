/* eng_backend_cuda.cu - the CUDA backend (cuBLAS GEMM + small kernels); see eng_backend.h.
 *
 * Compiled by nvcc only when the build has CUDA (ENG_HAVE_CUDA).  Mirrors the CPU backend
 * (eng_backend_cpu.c, the reference) op by op; tests/test_backend_parity.c compares them.
 * The kernels are in eng_backend_cuda_kernels.cuh.
 *
 * Design (docs/cuda.md):
 *   - one device (device 0) and ONE non-blocking stream for everything (kernels, cuBLAS via
 *     cublasSetStream, memsets and copies), so ops are ordered among themselves and never
 *     wait on the legacy default stream;
 *   - uploads go through a pinned staging area of two halves (double buffering): the host
 *     data is copied into the current half and cudaMemcpyAsync'd; a half is reused only
 *     after the event recorded when it was left has passed, so an upload never drains the
 *     stream; an upload larger than a half (a big group's minibatch) goes through its own
 *     pinned buffer, grown to fit, reused once the event after its last copy has passed;
 *   - downloads that the caller needs at once (to_host, host outputs of loss and sumsq) go
 *     through a pinned buffer and wait for the stream once; to_host_async copies straight
 *     into caller memory from host_alloc (pinned) and completes at a later event_wait;
 *   - one cuBLAS handle, created lazily by the first GEMM (under a mutex);
 *   - reductions (bias_grad, loss, sumsq) accumulate in double;
 *   - small per-call device scratch (loss values, sums of squares, scale factors, Adam mask,
 *     the temporary of an overlapping copy) lives in ONE persistent device buffer, grown on
 *     demand after a stream synchronisation; a mutex serialises its users;
 *   - every CUDA / cuBLAS call goes through cuda_check / cublas_check, which record
 *     "file:line: call: reason" with eng_err_set, clear the runtime's last error (so a failed
 *     copy is never blamed on a later kernel), and yield ENG_EDEVICE.  Never exit();
 *   - counters (eng_backend_counters) count kernels and cuBLAS calls, copies, and every host
 *     wait (stream or event synchronisation, synchronous download).
 *
 * Device detection runs once: no driver, no device, or a device this build has no code for
 * (checked by asking the runtime for a kernel's attributes) make eng_backend_cuda return
 * ENG_EDEVICE with the reason, which eng_cuda_describe() also reports.
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

#ifndef ENG_CUDA_ARCHS
#define ENG_CUDA_ARCHS "sm_90"
#endif

/* ---- counters ------------------------------------------------------------- */

static unsigned long long g_cnt[9]; /* launches, copies, uploads, downloads, syncs, bytes_up, bytes_down,
                                     * graph launches, graph captures */
enum { C_LAUNCH, C_COPY, C_UP, C_DOWN, C_SYNC, C_BUP, C_BDOWN, C_GRAPH, C_CAPTURE };
#define CNT(k, v) __atomic_fetch_add(&g_cnt[k], (unsigned long long)(v), __ATOMIC_RELAXED)

static void cu_counters(eng_backend_counters *out) {
    unsigned long long c[9];
    for (int k = 0; k < 9; k++) c[k] = __atomic_load_n(&g_cnt[k], __ATOMIC_RELAXED);
    out->launches = c[C_LAUNCH];
    out->copies = c[C_COPY];
    out->uploads = c[C_UP];
    out->downloads = c[C_DOWN];
    out->syncs = c[C_SYNC];
    out->bytes_up = c[C_BUP];
    out->bytes_down = c[C_BDOWN];
    out->graph_launches = c[C_GRAPH];
    out->graph_captures = c[C_CAPTURE];
}

/* ---- checked wrappers ---------------------------------------------------- */

/* A failed call's error stays in the runtime's "last error" until read: read it here, so the
 * next launch check (LAUNCH) sees only its own launch. */
static int cuda_status_(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return ENG_OK;
    (void)cudaGetLastError();
    return eng_err_set(ENG_EDEVICE, "%s:%d: %s: %s (%s)", file, line, call, cudaGetErrorString(e),
                       cudaGetErrorName(e));
}

static int cublas_status_(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return ENG_OK;
    (void)cudaGetLastError();
    return eng_err_set(ENG_EDEVICE, "%s:%d: %s: %s", file, line, call, cublasGetStatusString(s));
}

/* Evaluate to ENG_OK or ENG_EDEVICE (message recorded with file and line). */
#define cuda_check(call) cuda_status_((call), #call, __FILE__, __LINE__)
#define cublas_check(call) cublas_status_((call), #call, __FILE__, __LINE__)

/* Launch a kernel on the backend's stream and check that launch alone: any stale last error
 * is cleared first (every earlier call was checked where it was made), and the launch is
 * counted.  A sticky error from earlier asynchronous work (e.g. an illegal address) makes
 * every later call fail; the message then says so. */
static int launch_status_(const char *name, const char *file, int line) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) {
        CNT(C_LAUNCH, 1);
        return ENG_OK;
    }
    /* errors a launch itself causes; anything else is the device failing in earlier work */
    int own = e == cudaErrorInvalidConfiguration || e == cudaErrorInvalidValue || e == cudaErrorLaunchOutOfResources ||
              e == cudaErrorInvalidDeviceFunction || e == cudaErrorNoKernelImageForDevice;
    return eng_err_set(ENG_EDEVICE, "%s:%d: launch %s: %s (%s)%s", file, line, name, cudaGetErrorString(e),
                       cudaGetErrorName(e), own ? "" : " (from earlier asynchronous work on the device)");
}
/* Kernels launch through cu_launch (eng_backend_cuda_graph.cuh), which records them instead
 * inside a graph region. */
#define LAUNCH(kernel, grid, block, ...) cu_launch(#kernel, __FILE__, __LINE__, kernel, dim3(grid), dim3(block), __VA_ARGS__)

/* ---- device detection (once) --------------------------------------------- */

static cudaStream_t g_stream = NULL;

#include "eng_backend_cuda_kernels.cuh"

static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;
static int g_probe_status = ENG_EDEVICE;
static char g_probe_msg[512];   /* error message when g_probe_status != 0 */
static char g_describe[512];    /* eng_cuda_describe() text */

/* Records why device 0 is unusable in both messages. */
static void probe_fail(const char *what, const char *why) {
    snprintf(g_probe_msg, sizeof g_probe_msg, "%s: %s", what, why);
    snprintf(g_describe, sizeof g_describe, "no device: %s", why);
    (void)cudaGetLastError();
}

static void cuda_probe(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return probe_fail("no CUDA device", cudaGetErrorString(e));
    if (count <= 0) return probe_fail("no CUDA device", "the driver reports 0 devices");
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) return probe_fail("CUDA device 0 unusable", cudaGetErrorString(e));
    char why[384];
    /* create the context now so that a broken driver shows up here, not mid-training */
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaFree(0);
    if (e != cudaSuccess) {
        snprintf(why, sizeof why, "%s: cannot create a context: %s", prop.name, cudaGetErrorString(e));
        return probe_fail("CUDA device 0", why);
    }
    /* is there device code (or PTX the driver can compile) for this GPU? */
    cudaFuncAttributes fa;
    e = cudaFuncGetAttributes(&fa, k_fill);
    if (e != cudaSuccess) {
        snprintf(why, sizeof why, "%s (sm_%d%d) has no code in this build (built for %s): %s", prop.name, prop.major,
                 prop.minor, ENG_CUDA_ARCHS, cudaGetErrorString(e));
        return probe_fail("CUDA device 0", why);
    }
    e = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        snprintf(why, sizeof why, "%s: cannot create a stream: %s", prop.name, cudaGetErrorString(e));
        return probe_fail("CUDA device 0", why);
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
static void *g_blas_ws = NULL; /* cuBLAS workspace (kept for the process) */

static int blas_handle(cublasHandle_t *out) {
    int st = ENG_OK;
    pthread_mutex_lock(&g_blas_mu);
    if (!g_blas) {
        cublasHandle_t h = NULL;
        st = cublas_check(cublasCreate(&h));
        if (st == ENG_OK) {
            /* plain FP32 math (TF32 stays off) so that results match the CPU reference */
            st = cublas_check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
            if (st == ENG_OK) st = cublas_check(cublasSetStream(h, g_stream));
            /* a fixed workspace (the sizes cuBLAS recommends: 32 MiB from sm_90, else 4 MiB), so
             * GEMMs captured into graphs never allocate (eng_backend_cuda_graph.cuh) */
            int major = 0;
            if (st == ENG_OK) st = cuda_check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
            size_t ws_bytes = (size_t)(major >= 9 ? 32 : 4) << 20;
            if (st == ENG_OK && !g_blas_ws) st = cuda_check(cudaMalloc(&g_blas_ws, ws_bytes));
            if (st == ENG_OK) st = cublas_check(cublasSetWorkspace(h, g_blas_ws, ws_bytes));
            if (st == ENG_OK) g_blas = h;
            else cublasDestroy(h);
        }
    }
    *out = g_blas;
    pthread_mutex_unlock(&g_blas_mu);
    return st;
}

/* ---- stream synchronisation (counted) -------------------------------------- */

/* Event recording numbers (cu_event_record) and the newest one known to have passed. */
static unsigned long long g_ev_seq = 0, g_ev_done = 0;

static void ev_done_at_least(unsigned long long seq) {
    unsigned long long cur = __atomic_load_n(&g_ev_done, __ATOMIC_SEQ_CST);
    while (cur < seq && !__atomic_compare_exchange_n(&g_ev_done, &cur, seq, 1, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
}

static int stream_wait(void) {
    CNT(C_SYNC, 1);
    return cuda_check(cudaStreamSynchronize(g_stream));
}

/* ---- pinned staging (see the header comment) -------------------------------- */

#define STAGE_HALF ((size_t)4 << 20) /* bytes per upload half; downloads use one such buffer */

static pthread_mutex_t g_stage_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *g_up = NULL;   /* pinned, 2 * STAGE_HALF */
static unsigned char *g_down = NULL; /* pinned, STAGE_HALF */
static cudaEvent_t g_up_ev[2];
static int g_up_live[2];             /* g_up_ev[h] was recorded when half h was left */
static int g_up_cur = 0;
static size_t g_up_off = 0;
static unsigned char *g_big = NULL; /* pinned, for uploads larger than a half */
static size_t g_big_bytes = 0;
static cudaEvent_t g_big_ev;
static int g_big_live = 0;          /* g_big_ev follows the last copy out of g_big */

/* Allocates the staging buffers and events on first use; caller holds g_stage_mu. */
static int stage_init(void) {
    if (g_up) return ENG_OK;
    int st = cuda_check(cudaMallocHost((void **)&g_down, STAGE_HALF));
    if (st == ENG_OK) st = cuda_check(cudaEventCreateWithFlags(&g_up_ev[0], cudaEventDisableTiming));
    if (st == ENG_OK) st = cuda_check(cudaEventCreateWithFlags(&g_up_ev[1], cudaEventDisableTiming));
    if (st == ENG_OK) st = cuda_check(cudaEventCreateWithFlags(&g_big_ev, cudaEventDisableTiming));
    if (st == ENG_OK) st = cuda_check(cudaMallocHost((void **)&g_up, 2 * STAGE_HALF));
    return st;
}

/* Waits (counted) until `ev` has passed, unless it already has; caller holds g_stage_mu. */
static int stage_event_wait(cudaEvent_t ev) {
    if (cudaEventQuery(ev) == cudaSuccess) return ENG_OK;
    (void)cudaGetLastError(); /* cudaErrorNotReady is not an error */
    CNT(C_SYNC, 1);
    return cuda_check(cudaEventSynchronize(ev));
}

/* An upload larger than a half, through g_big; caller holds g_stage_mu. */
static int stage_upload_big(void *dst, const void *src, size_t bytes) {
    int st = g_big_live ? stage_event_wait(g_big_ev) : ENG_OK;
    if (st == ENG_OK && bytes > g_big_bytes) {
        if (g_big) cudaFreeHost(g_big);
        g_big = NULL;
        g_big_bytes = 0;
        size_t want = bytes + bytes / 4;
        st = cuda_check(cudaMallocHost((void **)&g_big, want));
        if (st == ENG_OK) g_big_bytes = want;
        else g_big = NULL;
    }
    if (st != ENG_OK) return st;
    memcpy(g_big, src, bytes);
    st = cuda_check(cudaMemcpyAsync(dst, g_big, bytes, cudaMemcpyHostToDevice, g_stream));
    if (st == ENG_OK) st = cuda_check(cudaEventRecord(g_big_ev, g_stream));
    g_big_live = st == ENG_OK;
    return st;
}

/* One upload of `bytes` from host memory through the staging halves (or g_big); never waits
 * for the stream unless the buffer is still being read by an earlier copy. */
static int stage_upload(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return ENG_OK;
    pthread_mutex_lock(&g_stage_mu);
    int st = stage_init();
    CNT(C_UP, 1);
    CNT(C_BUP, bytes);
    if (st == ENG_OK && bytes > STAGE_HALF) {
        st = stage_upload_big(dst, src, bytes);
        pthread_mutex_unlock(&g_stage_mu);
        return st;
    }
    if (st == ENG_OK && g_up_off + bytes > STAGE_HALF) {
        /* leave this half (its copies finish at the event) and take the other one */
        st = cuda_check(cudaEventRecord(g_up_ev[g_up_cur], g_stream));
        if (st == ENG_OK) {
            g_up_live[g_up_cur] = 1;
            g_up_cur ^= 1;
            g_up_off = 0;
            if (g_up_live[g_up_cur]) st = stage_event_wait(g_up_ev[g_up_cur]);
        }
    }
    if (st == ENG_OK) {
        unsigned char *stage = g_up + (size_t)g_up_cur * STAGE_HALF + g_up_off;
        memcpy(stage, src, bytes);
        st = cuda_check(cudaMemcpyAsync(dst, stage, bytes, cudaMemcpyHostToDevice, g_stream));
        g_up_off += (bytes + 255) / 256 * 256;
    }
    pthread_mutex_unlock(&g_stage_mu);
    return st;
}

/* One download the caller needs now: waits for the stream once (through the pinned buffer
 * for up to STAGE_HALF bytes; larger ones straight into dst). */
static int stage_download(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return ENG_OK;
    CNT(C_DOWN, 1);
    CNT(C_BDOWN, bytes);
    if (bytes > STAGE_HALF) {
        int st = cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream));
        return st == ENG_OK ? stream_wait() : st;
    }
    pthread_mutex_lock(&g_stage_mu);
    int st = stage_init();
    if (st == ENG_OK) st = cuda_check(cudaMemcpyAsync(g_down, src, bytes, cudaMemcpyDeviceToHost, g_stream));
    if (st == ENG_OK) st = stream_wait();
    if (st == ENG_OK) memcpy(dst, g_down, bytes);
    pthread_mutex_unlock(&g_stage_mu);
    return st;
}

/* ---- persistent device scratch ---------------------------------------------- */
static pthread_mutex_t g_scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static void *g_scratch = NULL;
static size_t g_scratch_bytes = 0;

/* Locks the scratch mutex and returns a device buffer of >= bytes in *out; on success the
 * caller must call scratch_release() when it has enqueued its last use.  Growing waits for
 * the stream first (kernels may still read the old buffer).  On failure the mutex is
 * released and ENG_EDEVICE returned. */
static int scratch_acquire(size_t bytes, void **out) {
    *out = NULL;
    pthread_mutex_lock(&g_scratch_mu);
    if (bytes > g_scratch_bytes) {
        size_t want = bytes < 4096 ? 4096 : bytes + bytes / 2;
        int st = g_scratch ? stream_wait() : ENG_OK;
        if (g_scratch) cudaFree(g_scratch);
        g_scratch = NULL;
        g_scratch_bytes = 0;
        if (st == ENG_OK) st = cuda_check(cudaMalloc(&g_scratch, want));
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

#include "eng_backend_cuda_graph.cuh"
#include "eng_backend_cuda_ops.cuh"

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
    cu_counters,       /* counters */
    cu_host_alloc,     /* host_alloc */
    cu_host_free,      /* host_free */
    cu_to_host_async,  /* to_host_async */
    cu_event_record,   /* event_record */
    cu_event_wait,     /* event_wait */
    cu_event_free,     /* event_free */
    cu_sumsq_dev,      /* sumsq_dev */
    cu_loss_dev,       /* loss_dev */
    cu_adam_clip,      /* adam_clip */
    cu_dqn_targets,    /* dqn_targets */
    cu_concat_cols,    /* concat_cols */
    cu_ddpg_critic_target, /* ddpg_critic_target */
    cu_ddpg_actor_dq,  /* ddpg_actor_dq */
    cu_ddpg_action_grad, /* ddpg_action_grad */
    cu_graph_begin,    /* graph_begin */
    cu_graph_end,      /* graph_end */
    cu_graph_free,     /* graph_free */
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
