/* eng_cpu_pool.h - a tiny persistent thread pool for the CPU backend (internal to engine/).
 *
 * eng_pool_run(fn, ctx, n, grain, threads) splits the index range [0, n) into a few chunks
 * per thread (contiguous, boundaries at multiples of `grain`, the last chunk takes the rest).
 * The calling thread and up to threads-1 pool workers claim chunks from a shared counter until
 * none is left; the call returns when every chunk is done.  The caller never waits for a
 * worker to start: on a busy machine where the worker is not scheduled in time, the caller
 * simply runs every chunk itself (the cost is then the serial time, not a wake-up).  The split never changes what is computed for an index, only which thread does it,
 * so callers that give every index (a product, a row, a block of elements) work that does not
 * depend on the others get bit-identical results for any thread count.
 *
 * Workers are created on first use, spin briefly after a job (the next op of a training step
 * follows within microseconds) and then sleep on a condition variable; they live until the
 * process exits.  One caller at a time uses the workers: a second thread calling while the
 * pool is busy runs its whole range itself (same results, no parallelism), so the pool is
 * safe to share.  Nothing here allocates after the workers exist and nothing can fail: if a
 * worker cannot be created, the range is run on fewer threads.
 */
#ifndef ENG_CPU_POOL_H
#define ENG_CPU_POOL_H

#define ENG_POOL_MAX_THREADS 16

/* Work on indices [begin, end); ctx is the caller's. */
typedef void (*eng_pool_fn)(void *ctx, long begin, long end);

/* Run fn over [0, n) on up to `threads` threads (clamped to 1..ENG_POOL_MAX_THREADS; 1, or
 * n <= grain, runs fn(ctx, 0, n) directly).  grain >= 1. */
void eng_pool_run(eng_pool_fn fn, void *ctx, long n, long grain, int threads);

#endif
