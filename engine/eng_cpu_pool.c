/* eng_cpu_pool.c - see eng_cpu_pool.h.
 *
 * Each worker w (1..ENG_POOL_MAX_THREADS-1) owns a generation counter; the caller publishes
 * the job (fn, ctx, ranges) and then bumps the counters of the workers taking part, so a
 * worker only ever reads a job meant for it and the caller waits for exactly those workers
 * (`pending`) before the job fields can change again.  Release/acquire on the counters orders
 * the job fields; the mutex/condition variable is only used by workers that went to sleep.
 */
#include "eng_cpu_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#define POOL_PAUSE() _mm_pause()
#else
#define POOL_PAUSE() ((void)0)
#endif

#define POOL_SPIN_NS 200000L /* a worker spins this long after a job before sleeping */

typedef struct {
    atomic_ulong gen; /* bumped by the caller for each job this worker takes part in */
    unsigned long seen;
    long begin, end;  /* this worker's range, written before gen is bumped */
} pool_worker;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t user;   /* one caller at a time */
    int n_started;          /* workers 1..n_started exist; guarded by user */
    atomic_int pending;     /* workers still running the current job */
    eng_pool_fn fn;
    void *ctx;
    pool_worker w[ENG_POOL_MAX_THREADS];
} g_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .user = PTHREAD_MUTEX_INITIALIZER};

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *worker_main(void *arg) {
    pool_worker *me = arg;
    for (;;) {
        unsigned long g = atomic_load_explicit(&me->gen, memory_order_acquire);
        if (g == me->seen) {
            long t0 = now_ns();
            int spins = 0;
            while ((g = atomic_load_explicit(&me->gen, memory_order_acquire)) == me->seen) {
                POOL_PAUSE();
                if (++spins % 64 == 0 && now_ns() - t0 > POOL_SPIN_NS) break;
            }
            if (g == me->seen) {
                pthread_mutex_lock(&g_pool.mu);
                while ((g = atomic_load_explicit(&me->gen, memory_order_acquire)) == me->seen)
                    pthread_cond_wait(&g_pool.cv, &g_pool.mu);
                pthread_mutex_unlock(&g_pool.mu);
            }
        }
        me->seen = g;
        g_pool.fn(g_pool.ctx, me->begin, me->end);
        atomic_fetch_sub_explicit(&g_pool.pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

/* Make sure workers 1..T-1 exist; returns how many threads can take part (>= 1). */
static int ensure_workers(int T) {
    while (g_pool.n_started < T - 1) {
        int w = g_pool.n_started + 1;
        pthread_t th;
        pthread_attr_t at;
        if (pthread_attr_init(&at) != 0) break;
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, worker_main, &g_pool.w[w]);
        pthread_attr_destroy(&at);
        if (rc != 0) break;
        g_pool.n_started = w;
    }
    return g_pool.n_started + 1 < T ? g_pool.n_started + 1 : T;
}

void eng_pool_run(eng_pool_fn fn, void *ctx, long n, long grain, int threads) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    long blocks = (n + grain - 1) / grain;
    int T = threads < 1 ? 1 : threads > ENG_POOL_MAX_THREADS ? ENG_POOL_MAX_THREADS : threads;
    if (blocks < T) T = (int)blocks;
    if (T <= 1 || pthread_mutex_trylock(&g_pool.user) != 0) {
        fn(ctx, 0, n);
        return;
    }
    T = ensure_workers(T);
    if (T <= 1) {
        pthread_mutex_unlock(&g_pool.user);
        fn(ctx, 0, n);
        return;
    }
    /* part t covers blocks [t*blocks/T, (t+1)*blocks/T) */
    g_pool.fn = fn;
    g_pool.ctx = ctx;
    atomic_store_explicit(&g_pool.pending, T - 1, memory_order_relaxed);
    for (int t = 1; t < T; t++) {
        long b0 = (long)((long long)blocks * t / T), b1 = (long)((long long)blocks * (t + 1) / T);
        g_pool.w[t].begin = b0 * grain;
        g_pool.w[t].end = b1 * grain < n ? b1 * grain : n;
    }
    pthread_mutex_lock(&g_pool.mu);
    for (int t = 1; t < T; t++) atomic_fetch_add_explicit(&g_pool.w[t].gen, 1, memory_order_release);
    pthread_cond_broadcast(&g_pool.cv);
    pthread_mutex_unlock(&g_pool.mu);
    long end0 = (long)((long long)blocks / T) * grain;
    fn(ctx, 0, end0 < n ? end0 : n);
    while (atomic_load_explicit(&g_pool.pending, memory_order_acquire) > 0) POOL_PAUSE();
    pthread_mutex_unlock(&g_pool.user);
}
