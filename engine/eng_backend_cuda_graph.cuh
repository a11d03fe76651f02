/* eng_backend_cuda_graph.cuh - training steps as CUDA graphs (issue 16 item 3; docs/cuda.md
 * "Graphs").  Included once, by engine/eng_backend_cuda.cu, after the stream, counters and
 * cuBLAS handle and before the ops, which launch through cu_launch / rec_gemm / rec_copy.
 *
 * Between be->graph_begin() and be->graph_end() the calling thread's kernels, GEMMs and
 * device copies are RECORDED (eng_graph_cmd), not launched; the host code of the step runs as
 * always.  graph_end then either
 *   - replays the graph captured for an equal list (eng_graph_plan): kernel nodes whose
 *     arguments changed (Adam's lr / bias corrections every step) are updated with
 *     cudaGraphExecKernelNodeSetParams, and the whole step is ONE cudaGraphLaunch; or
 *   - captures the list anew (cudaStreamBeginCapture on the backend's stream, the commands,
 *     cudaStreamEndCapture, cudaGraphInstantiate), then launches it: at the first step, and
 *     whenever shapes, batch, buffers or the sequence of ops change; or
 *   - when graphs are off or a capture fails, launches the commands one by one (plain).
 * An op that cannot be recorded (an upload, a download, an event, a host wait, an allocation
 * or free, the scratch buffer) first launches what was recorded so far, plainly and in
 * order, and the rest of the region runs plainly: e.g. the step in which a new Adam mask is
 * uploaded.  So a region always does exactly the work of the plain launches, in their order.
 *
 * Graphs need CUDA 12 or newer (instantiate and capture-info signatures); older toolkits
 * build with graphs off.  Not yet run on a GPU (no device was lent when this was written).
 */
#ifndef ENG_BACKEND_CUDA_GRAPH_CUH
#define ENG_BACKEND_CUDA_GRAPH_CUH

#include <stdlib.h>
#include <strings.h>
#include <tuple>
#include <utility>

extern "C" {
#include "eng_graph.h"
#include "eng_log.h"
}

#if CUDART_VERSION >= 12000
#define ENG_CU_GRAPHS 1
#else
#define ENG_CU_GRAPHS 0
#endif

/* ---- the setting (process-wide) ---------------------------------------------- */

static pthread_mutex_t g_graph_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_graphs = -1;            /* -1 not decided yet, 0 off, 1 on */
static char g_graphs_text[320] = ""; /* eng_cuda_graphs_status() */
static int g_graphs_fail_next = 0;   /* eng_cuda_set_graphs(2): the next capture fails (tests) */

/* Decides once: on, unless RLPRICE_CUDA_GRAPHS is 0/off/no/false or the toolkit is too old;
 * caller holds g_graph_mu. */
static void graphs_decide(void) {
    if (g_graphs >= 0) return;
    const char *e = getenv("RLPRICE_CUDA_GRAPHS");
    if (!ENG_CU_GRAPHS) {
        g_graphs = 0;
        snprintf(g_graphs_text, sizeof g_graphs_text, "off (built with CUDA < 12)");
    } else if (e && (!strcmp(e, "0") || !strcasecmp(e, "off") || !strcasecmp(e, "no") || !strcasecmp(e, "false"))) {
        g_graphs = 0;
        snprintf(g_graphs_text, sizeof g_graphs_text, "off (RLPRICE_CUDA_GRAPHS=%s)", e);
    } else {
        g_graphs = 1;
        snprintf(g_graphs_text, sizeof g_graphs_text, "on");
    }
}

static int graphs_on(void) {
    pthread_mutex_lock(&g_graph_mu);
    graphs_decide();
    int on = g_graphs;
    pthread_mutex_unlock(&g_graph_mu);
    return on;
}

/* Graphs off for the rest of the process after a failed capture: one warning line. */
static void graphs_fail(const char *why) {
    pthread_mutex_lock(&g_graph_mu);
    g_graphs = 0;
    snprintf(g_graphs_text, sizeof g_graphs_text, "off (capture failed: %s)", why);
    pthread_mutex_unlock(&g_graph_mu);
    ENG_WARN("cuda: graph capture failed (%s); plain kernel launches from now on", why);
}

/* See eng_backend.h. */
extern "C" void eng_cuda_set_graphs(int on) {
    pthread_mutex_lock(&g_graph_mu);
    if (on && !ENG_CU_GRAPHS) {
        g_graphs = 0;
        snprintf(g_graphs_text, sizeof g_graphs_text, "off (built with CUDA < 12)");
    } else {
        g_graphs = on ? 1 : 0;
        g_graphs_fail_next = on == 2;
        snprintf(g_graphs_text, sizeof g_graphs_text, on ? "on" : "off (turned off by the setting)");
    }
    pthread_mutex_unlock(&g_graph_mu);
}

/* See eng_backend.h.  The text is copied into a thread-local buffer (never NULL). */
extern "C" const char *eng_cuda_graphs_status(void) {
    static thread_local char out[320];
    pthread_mutex_lock(&g_graph_mu);
    graphs_decide();
    snprintf(out, sizeof out, "%s", g_graphs_text);
    pthread_mutex_unlock(&g_graph_mu);
    return out;
}

/* ---- the recorder (per thread) ------------------------------------------------- */

typedef struct {
    int on;             /* inside a region that is still being recorded */
    eng_graph_cmd *cmd; /* recorded commands [n], capacity cap */
    size_t n, cap;
} cu_rec_t;
static thread_local cu_rec_t g_rec;

/* The arguments of one cublasSgemmStridedBatched (zero-filled before use, so equal GEMMs are
 * equal bytes). */
typedef struct {
    const float *A, *B;
    float *C;
    long long sA, sB, sC;
    float alpha, beta;
    int opA, opB, M, N, K, lda, ldb, ldc, batch;
} cu_gemm_args;

typedef struct {
    void *dst;
    const void *src;
    size_t bytes;
} cu_copy_args;

/* A zeroed new command at the end of the list, or NULL when out of memory. */
static eng_graph_cmd *rec_push(void) {
    if (g_rec.n == g_rec.cap) {
        size_t cap = g_rec.cap ? 2 * g_rec.cap : 64;
        eng_graph_cmd *c = (eng_graph_cmd *)realloc(g_rec.cmd, cap * sizeof *c);
        if (!c) return NULL;
        g_rec.cmd = c;
        g_rec.cap = cap;
    }
    eng_graph_cmd *c = &g_rec.cmd[g_rec.n++];
    memset(c, 0, sizeof *c);
    return c;
}

/* Resolves the graph node a command just added to the capture (the stream's one dependency). */
static int capture_node(cudaGraphNode_t *node) {
#if ENG_CU_GRAPHS
    cudaStreamCaptureStatus cs;
    const cudaGraphNode_t *deps = NULL;
    size_t nd = 0;
#if CUDART_VERSION >= 13000
    int st = cuda_check(cudaStreamGetCaptureInfo(g_stream, &cs, NULL, NULL, &deps, NULL, &nd));
#else
    int st = cuda_check(cudaStreamGetCaptureInfo(g_stream, &cs, NULL, NULL, &deps, &nd));
#endif
    if (st != ENG_OK) return st;
    if (cs != cudaStreamCaptureStatusActive || nd != 1 || !deps)
        return eng_err_set(ENG_EDEVICE, "graph capture: %zu dependencies after a kernel (expected 1)", nd);
    *node = deps[0];
    return ENG_OK;
#else
    (void)node;
    return eng_err_set(ENG_EDEVICE, "graph capture: built with CUDA < 12");
#endif
}

/* The kernel parameters of command c: argv[k] points at argument k inside c->args. */
static void cmd_argv(const eng_graph_cmd *c, void **argv) {
    for (unsigned k = 0; k < c->nargs; k++) argv[k] = (void *)(c->args + c->off[k]);
}

/* Issues one recorded command on the stream.  count: count it (plain launch); node (may be
 * NULL): inside a capture, receives a kernel command's graph node.  Returns 0 or ENG_EDEVICE. */
static int cmd_issue(const eng_graph_cmd *c, int count, cudaGraphNode_t *node) {
    int st = ENG_OK;
    if (c->kind == ENG_GRAPH_KERNEL) {
        void *argv[ENG_GRAPH_MAX_ARGS];
        cmd_argv(c, argv);
        dim3 grid(c->grid[0], c->grid[1], c->grid[2]), block(c->block[0], c->block[1], c->block[2]);
        (void)cudaGetLastError();
        st = cuda_check(cudaLaunchKernel(c->func, grid, block, argv, 0, g_stream));
        if (st == ENG_OK && count) CNT(C_LAUNCH, 1);
        if (st == ENG_OK && node) st = capture_node(node);
    } else if (c->kind == ENG_GRAPH_GEMM) {
        cu_gemm_args g;
        memcpy(&g, c->args, sizeof g);
        st = cublas_check(cublasSgemmStridedBatched(g_blas, (cublasOperation_t)g.opB, (cublasOperation_t)g.opA, g.N,
                                                    g.M, g.K, &g.alpha, g.B, g.ldb, g.sB, g.A, g.lda, g.sA, &g.beta,
                                                    g.C, g.ldc, g.sC, g.batch));
        if (st == ENG_OK && count) CNT(C_LAUNCH, 1);
    } else {
        cu_copy_args a;
        memcpy(&a, c->args, sizeof a);
        st = cuda_check(cudaMemcpyAsync(a.dst, a.src, a.bytes, cudaMemcpyDeviceToDevice, g_stream));
        if (st == ENG_OK && count) CNT(C_COPY, 1);
    }
    return st;
}

/* Ends recording for the rest of the region and launches what was recorded, plainly and in
 * order.  Every op that cannot be recorded calls it first.  Returns 0 or the first failure. */
static int rec_flush(void) {
    if (!g_rec.on) return ENG_OK;
    g_rec.on = 0;
    int st = ENG_OK;
    for (size_t i = 0; i < g_rec.n && st == ENG_OK; i++) st = cmd_issue(&g_rec.cmd[i], 1, NULL);
    g_rec.n = 0;
    return st;
}

/* At the top of every op that cannot be recorded (see the header comment). */
#define REC_FLUSH()                                                                          \
    do {                                                                                     \
        int flush_st_ = rec_flush();                                                         \
        if (flush_st_ != ENG_OK) return flush_st_;                                           \
    } while (0)

/* Records a kernel launch with the argument values in t: 0 recorded; 1 not recordable (the
 * region was flushed: launch it plainly); < 0 the flush failed. */
template <typename T, size_t... I>
static int rec_kernel(const void *k, dim3 grid, dim3 block, const T &t, std::index_sequence<I...>) {
    eng_graph_cmd *c = rec_push();
    int st = c ? ENG_OK : ENG_ENOMEM;
    if (c) {
        c->kind = ENG_GRAPH_KERNEL;
        c->func = k;
        c->grid[0] = grid.x, c->grid[1] = grid.y, c->grid[2] = grid.z;
        c->block[0] = block.x, c->block[1] = block.y, c->block[2] = block.z;
        ((st = st != ENG_OK ? st
                            : eng_graph_cmd_arg(c, &std::get<I>(t), sizeof(std::get<I>(t)),
                                                alignof(typename std::tuple_element<I, T>::type))),
         ...);
    }
    if (st == ENG_OK) return 0;
    if (c) g_rec.n--;
    st = rec_flush();
    return st != ENG_OK ? st : 1;
}

/* Launches kernel k (or records it inside a region); the arguments are converted to the
 * kernel's parameter types first, as a <<<>>> launch does.  Counted as one launch. */
template <typename... KA, typename... PA>
static int cu_launch(const char *name, const char *file, int line, void (*k)(KA...), dim3 grid, dim3 block,
                     PA... pa) {
    std::tuple<KA...> t(pa...);
    if (g_rec.on) {
        int r = rec_kernel((const void *)k, grid, block, t, std::index_sequence_for<KA...>{});
        if (r <= 0) return r;
    }
    (void)cudaGetLastError();
    std::apply([&](KA &...a) { k<<<grid, block, 0, g_stream>>>(a...); }, t);
    return launch_status_(name, file, line);
}

/* Records a GEMM (already checked, handle made) inside a region: 0 recorded, 1 not (plain),
 * < 0 a failed flush. */
static int rec_gemm(const cu_gemm_args *g) {
    if (!g_rec.on) return 1;
    eng_graph_cmd *c = rec_push();
    if (!c) {
        int st = rec_flush();
        return st != ENG_OK ? st : 1;
    }
    c->kind = ENG_GRAPH_GEMM;
    memcpy(c->args, g, sizeof *g);
    c->size = (unsigned short)sizeof *g;
    return 0;
}

/* Records a device -> device copy of non-overlapping ranges: as rec_gemm. */
static int rec_copy(void *dst, const void *src, size_t bytes) {
    if (!g_rec.on) return 1;
    eng_graph_cmd *c = rec_push();
    if (!c) {
        int st = rec_flush();
        return st != ENG_OK ? st : 1;
    }
    cu_copy_args a;
    memset(&a, 0, sizeof a);
    a.dst = dst;
    a.src = src;
    a.bytes = bytes;
    c->kind = ENG_GRAPH_COPY;
    memcpy(c->args, &a, sizeof a);
    c->size = (unsigned short)sizeof a;
    return 0;
}

/* ---- graphs ------------------------------------------------------------------------ */

/* One captured step: the commands it was captured from (kernel arguments as last patched),
 * the graph, its executable and each kernel command's node. */
typedef struct {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    eng_graph_cmd *cmd;
    cudaGraphNode_t *node;
    unsigned char *patch;
    size_t n, cap;
} cu_graph;

static void graph_drop(cu_graph *g) {
#if ENG_CU_GRAPHS
    if (g->exec) cudaGraphExecDestroy(g->exec);
    if (g->graph) cudaGraphDestroy(g->graph);
#endif
    g->exec = NULL;
    g->graph = NULL;
    g->n = 0;
}

static void cu_graph_free(void *p) {
    cu_graph *g = (cu_graph *)p;
    if (!g) return;
    graph_drop(g);
    free(g->cmd);
    free(g->node);
    free(g->patch);
    free(g);
}

/* Room for n commands in g (keeps the current contents). */
static int graph_reserve(cu_graph *g, size_t n) {
    if (n <= g->cap) return ENG_OK;
    eng_graph_cmd *c = (eng_graph_cmd *)realloc(g->cmd, n * sizeof *c);
    if (c) g->cmd = c;
    cudaGraphNode_t *nd = c ? (cudaGraphNode_t *)realloc(g->node, n * sizeof *nd) : NULL;
    if (nd) g->node = nd;
    unsigned char *pt = nd ? (unsigned char *)realloc(g->patch, n) : NULL;
    if (pt) g->patch = pt;
    if (!pt) return eng_err_set(ENG_ENOMEM, "graph: out of memory for %zu commands", n);
    g->cap = n;
    return ENG_OK;
}

#if ENG_CU_GRAPHS
/* Replays g for the recorded list (eng_graph_plan said yes): patches the changed kernel
 * nodes, then one launch.  Returns 0, 1 when a patch was refused (capture anew), or a
 * launch failure. */
static int graph_replay(cu_graph *g) {
    for (size_t i = 0; i < g_rec.n; i++) {
        if (!g->patch[i]) continue;
        const eng_graph_cmd *c = &g_rec.cmd[i];
        void *argv[ENG_GRAPH_MAX_ARGS];
        cmd_argv(c, argv);
        cudaKernelNodeParams kp{}; /* sharedMemBytes 0, extra NULL */
        kp.func = (void *)c->func;
        kp.gridDim = dim3(c->grid[0], c->grid[1], c->grid[2]);
        kp.blockDim = dim3(c->block[0], c->block[1], c->block[2]);
        kp.kernelParams = argv;
        if (cudaGraphExecKernelNodeSetParams(g->exec, g->node[i], &kp) != cudaSuccess) {
            (void)cudaGetLastError();
            return 1;
        }
        g->cmd[i] = *c;
    }
    int st = cuda_check(cudaGraphLaunch(g->exec, g_stream));
    if (st != ENG_OK) return st;
    CNT(C_LAUNCH, 1);
    CNT(C_GRAPH, 1);
    for (size_t i = 0; i < g_rec.n; i++)
        if (g_rec.cmd[i].kind == ENG_GRAPH_COPY) CNT(C_COPY, 1);
    return ENG_OK;
}

/* Captures the recorded list into g (replacing what it held) and instantiates it.  0, or a
 * status with the reason in eng_err_msg(); g is then empty and the stream out of capture. */
static int graph_capture(cu_graph *g) {
    graph_drop(g);
    int st = graph_reserve(g, g_rec.n);
    if (st != ENG_OK) return st;
    st = cuda_check(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal));
    if (st != ENG_OK) return st;
    for (size_t i = 0; i < g_rec.n && st == ENG_OK; i++)
        st = cmd_issue(&g_rec.cmd[i], 0, g_rec.cmd[i].kind == ENG_GRAPH_KERNEL ? &g->node[i] : NULL);
    cudaGraph_t graph = NULL;
    int end = cuda_check(cudaStreamEndCapture(g_stream, &graph)); /* always: leaves capture mode */
    if (st == ENG_OK) st = end;
    pthread_mutex_lock(&g_graph_mu);
    if (st == ENG_OK && g_graphs_fail_next) /* eng_cuda_set_graphs(2): the fallback under test */
        st = eng_err_set(ENG_EDEVICE, "failure forced by eng_cuda_set_graphs(2)");
    g_graphs_fail_next = 0;
    pthread_mutex_unlock(&g_graph_mu);
    if (st == ENG_OK) st = cuda_check(cudaGraphInstantiate(&g->exec, graph, 0));
    if (st != ENG_OK) {
        if (graph) cudaGraphDestroy(graph);
        g->exec = NULL;
        return st;
    }
    g->graph = graph;
    memcpy(g->cmd, g_rec.cmd, g_rec.n * sizeof *g->cmd);
    g->n = g_rec.n;
    CNT(C_CAPTURE, 1);
    return ENG_OK;
}
#endif

/* See eng_backend.h (graph_begin): an unfinished region is launched plainly first. */
static int cu_graph_begin(void) {
    int st = rec_flush();
    if (st != ENG_OK) return st;
    g_rec.n = 0;
    g_rec.on = graphs_on() == 1;
    return ENG_OK;
}

/* See eng_backend.h (graph_end): replay, capture or plain launches of the recorded step. */
static int cu_graph_end(void **graph, int status) {
    if (!g_rec.on) return status; /* graphs off, or the region was flushed (ran plainly) */
    if (status != ENG_OK || !graph || g_rec.n == 0) {
        int st = rec_flush(); /* the work before the failure, as plain launches would have done */
        return status != ENG_OK ? status : st;
    }
#if ENG_CU_GRAPHS
    g_rec.on = 0;
    cu_graph *g = (cu_graph *)*graph;
    if (!g) {
        g = (cu_graph *)calloc(1, sizeof *g);
        if (!g) {
            g_rec.on = 1;
            return rec_flush();
        }
        *graph = g;
    }
    int st = ENG_OK;
    if (g->exec && (st = graph_reserve(g, g_rec.n)) == ENG_OK && eng_graph_plan(g->cmd, g->n, g_rec.cmd, g_rec.n, g->patch)) {
        st = graph_replay(g);
        if (st <= 0) {
            g_rec.n = 0;
            return st;
        }
    }
    st = graph_capture(g);
    if (st == ENG_OK) {
        memset(g->patch, 0, g_rec.n); /* nothing to patch: the graph holds this step */
        st = graph_replay(g);
    }
    if (st == ENG_OK) {
        g_rec.n = 0;
        return ENG_OK;
    }
    char why[256];
    snprintf(why, sizeof why, "%s", eng_err_msg());
    eng_err_clear();
    graphs_fail(why);
    graph_drop(g);
    g_rec.on = 1;
    return rec_flush();
#else
    return rec_flush();
#endif
}

#endif
