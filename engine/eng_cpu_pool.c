/* eng_cpu_pool.c - see eng_cpu_pool.h.
 *
 * One 64-bit word `claim` describes the current job: (job id << 32) | (next chunk << 16) |
 * (chunk count).  Whoever wants work (caller or worker) takes chunk `next` by a CAS that
 * bumps it; a successful CAS on the current job id means the job cannot finish (and its
 * parameters cannot change) before that chunk is done, so the job fields written before the
 * release store of `claim` are safe to read after it.  `done` counts finished chunks; the
 * caller returns when it reaches the chunk count.  Idle workers spin for POOL_SPIN_NS, nap in
 * short sleeps up to POOL_NAP_NS, then sleep on a condition variable (the caller only signals when someone sleeps; the seq_cst
 * store/load pair on claim and sleepers makes a lost wake-up impossible).
 */
#include "eng_cpu_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#define POOL_PAUSE() _mm_pause()
#else
#define POOL_PAUSE() ((void)0)
#endif

#define POOL_SPIN_NS 100000L   /* an idle worker spins this long, */
#define POOL_NAP_NS 20000000L  /* then naps (short sleeps, polling) until this long, */
#define POOL_NAP_STEP_NS 50000L /* ... of this length each, then sleeps until signalled */
#define POOL_CHUNKS_PER_THREAD 4
#define POOL_MAX_CHUNKS 0xffff

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t user;      /* one caller at a time */
    int n_started;             /* workers running; guarded by user */
    atomic_uint_fast64_t claim;
    atomic_int done;
    atomic_int sleepers;
    uint32_t job_id;           /* guarded by user */
    /* the current job (written by the caller before claim is published) */
    eng_pool_fn fn;
    void *ctx;
    long n, grain, blocks;
    int chunks;
} g_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .user = PTHREAD_MUTEX_INITIALIZER};

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

#define CLAIM_ID(w) ((uint32_t)((w) >> 32))
#define CLAIM_NEXT(w) ((int)(((w) >> 16) & 0xffff))
#define CLAIM_N(w) ((int)((w)&0xffff))

/* Claim and run chunks of job `id` until none is left. */
static void run_chunks(uint32_t id) {
    uint_fast64_t w = atomic_load_explicit(&g_pool.claim, memory_order_acquire);
    while (CLAIM_ID(w) == id && CLAIM_NEXT(w) < CLAIM_N(w)) {
        if (!atomic_compare_exchange_weak_explicit(&g_pool.claim, &w, w + (1u << 16), memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* w reloaded */
        long c = CLAIM_NEXT(w), nc = g_pool.chunks;
        long b0 = g_pool.blocks * c / nc, b1 = g_pool.blocks * (c + 1) / nc;
        long i0 = b0 * g_pool.grain, i1 = b1 * g_pool.grain;
        if (i1 > g_pool.n) i1 = g_pool.n;
        if (i0 < i1) g_pool.fn(g_pool.ctx, i0, i1);
        atomic_fetch_add_explicit(&g_pool.done, 1, memory_order_release);
        w = atomic_load_explicit(&g_pool.claim, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    uint32_t last = 0;
    for (;;) {
        uint_fast64_t w = atomic_load_explicit(&g_pool.claim, memory_order_acquire);
        if (CLAIM_ID(w) == last) {
            long t0 = now_ns();
            int spins = 0;
            while (CLAIM_ID(w = atomic_load_explicit(&g_pool.claim, memory_order_acquire)) == last) {
                POOL_PAUSE();
                if (++spins % 64 == 0 && now_ns() - t0 > POOL_SPIN_NS) break;
            }
            /* napping: a waiting caller never pays for a wake-up system call (slow on
             * virtual machines) during the short gaps between the ops of a training step */
            const struct timespec nap = {0, POOL_NAP_STEP_NS};
            while (CLAIM_ID(w = atomic_load_explicit(&g_pool.claim, memory_order_acquire)) == last &&
                   now_ns() - t0 < POOL_NAP_NS)
                nanosleep(&nap, NULL);
            if (CLAIM_ID(w) == last) {
                pthread_mutex_lock(&g_pool.mu);
                atomic_fetch_add(&g_pool.sleepers, 1);
                while (CLAIM_ID(w = atomic_load(&g_pool.claim)) == last) pthread_cond_wait(&g_pool.cv, &g_pool.mu);
                atomic_fetch_sub(&g_pool.sleepers, 1);
                pthread_mutex_unlock(&g_pool.mu);
            }
        }
        last = CLAIM_ID(w);
        run_chunks(last);
    }
    return NULL;
}

static void ensure_workers(int want) {
    while (g_pool.n_started < want) {
        pthread_t th;
        pthread_attr_t at;
        if (pthread_attr_init(&at) != 0) return;
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, worker_main, NULL);
        pthread_attr_destroy(&at);
        if (rc != 0) return;
        g_pool.n_started++;
    }
}

void eng_pool_run(eng_pool_fn fn, void *ctx, long n, long grain, int threads) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    long blocks = (n + grain - 1) / grain;
    int T = threads < 1 ? 1 : threads > ENG_POOL_MAX_THREADS ? ENG_POOL_MAX_THREADS : threads;
    if (blocks < 2 || T <= 1 || pthread_mutex_trylock(&g_pool.user) != 0) {
        fn(ctx, 0, n);
        return;
    }
    ensure_workers(T - 1); /* workers only grow; extra ones just find no chunk */
    long nc = (long)T * POOL_CHUNKS_PER_THREAD;
    if (nc > blocks) nc = blocks;
    if (nc > POOL_MAX_CHUNKS) nc = POOL_MAX_CHUNKS;
    g_pool.fn = fn;
    g_pool.ctx = ctx;
    g_pool.n = n;
    g_pool.grain = grain;
    g_pool.blocks = blocks;
    g_pool.chunks = (int)nc;
    atomic_store_explicit(&g_pool.done, 0, memory_order_relaxed);
    uint32_t id = ++g_pool.job_id;
    if (id == 0) id = ++g_pool.job_id; /* 0 is the workers' initial "seen" id */
    atomic_store(&g_pool.claim, ((uint_fast64_t)id << 32) | (uint_fast64_t)nc);
    if (atomic_load(&g_pool.sleepers) > 0) {
        pthread_mutex_lock(&g_pool.mu);
        pthread_cond_broadcast(&g_pool.cv);
        pthread_mutex_unlock(&g_pool.mu);
    }
    run_chunks(id);
    while (atomic_load_explicit(&g_pool.done, memory_order_acquire) < nc) POOL_PAUSE();
    pthread_mutex_unlock(&g_pool.user);
}
