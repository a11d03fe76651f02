/* exp_bench_agents.c - see exp_bench_agents.h.
 *
 * Workloads (the project's reference shapes):
 *   DQN     32->256->256->21 ReLU, Adam 1e-3, Huber, gamma 0.99, target sync every 100 steps,
 *           replay of 100,000 random transitions; batch 64 and 256; steps per second
 *   DDPG    actor 32->256->256->1 tanh, critic 33->256->256->1, Adam 1e-4 / 1e-3, tau 0.005
 *           every step; batch 64 and 256; updates per second
 *   LinUCB  disjoint, d = 32, 21 arms, alpha 1; one decision plus one update per round
 *   group   DQN model group of N products (default 1,000) with 60 transitions each, batch 64;
 *           products trained per minute for a per-product budget of STEPS Adam steps,
 *           extrapolated from the measured time of a few group steps.
 * Each timed section runs for about --seconds (default 2) after one warm-up step, in 8 windows;
 * the figure is the best window (other load on a shared machine only slows windows down) and
 * the mean over all windows follows in brackets.  --threads N sets the CPU backend's threads. */
#include "exp_bench_agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agt_ddpg.h"
#include "agt_dqn.h"
#include "agt_linucb.h"
#include "eng_backend.h"
#include "eng_util.h"
#include "exp_bench.h"

typedef struct {
    const eng_backend *be;
    double seconds;
    int products;
    int budget;
} bench_opts;

#define BENCH_WINDOWS 8

static void line(const char *what, double value, double mean, const char *unit, double goal) {
    char v[64];
    if (mean > 0) snprintf(v, sizeof v, "%.0f (%.0f)", value, mean);
    else snprintf(v, sizeof v, "%.0f", value);
    if (goal > 0)
        printf("  %-44s %20s %-14s goal >= %-8.0f %s\n", what, v, unit, goal, value >= goal ? "PASS" : "MISS");
    else
        printf("  %-44s %20s %s\n", what, v, unit);
    fflush(stdout);
}

/* Best-window and mean rate of `step` over about `seconds`, in chunks of `chunk` calls. */
typedef int (*step_fn)(void *ctx);
static int timed(step_fn step, void *ctx, double seconds, int chunk, double *best, double *mean) {
    long total = 0;
    double t_all = 0;
    *best = 0;
    for (int w = 0; w < BENCH_WINDOWS; w++) {
        long n = 0;
        double t0 = eng_now(), t = t0;
        while (t - t0 < seconds / BENCH_WINDOWS) {
            for (int k = 0; k < chunk; k++, n++) {
                int st = step(ctx);
                if (st) return st;
            }
            t = eng_now();
        }
        if (n / (t - t0) > *best) *best = n / (t - t0);
        total += n;
        t_all += t - t0;
    }
    *mean = total / t_all;
    return ENG_OK;
}

static int dqn_step(void *q) { return agt_dqn_train_step(q, NULL); }
static int ddpg_step(void *q) { return agt_ddpg_train_step(q, NULL, NULL); }

/* Backend work per step over `steps` more calls of step(ctx), printed under the rate. */
static int per_step_counters(const eng_backend *be, step_fn step, void *ctx, long steps) {
    eng_backend_counters c0, c1;
    be->counters(&c0);
    for (long k = 0; k < steps; k++) {
        int st = step(ctx);
        if (st) return st;
    }
    be->counters(&c1);
    eng_backend_counters d = eng_counters_diff(&c1, &c0);
    exp_bench_print_counters("      ", &d, steps, 1);
    return ENG_OK;
}

static void random_state(eng_rng *r, float *s, int n) {
    for (int i = 0; i < n; i++) s[i] = (float)eng_rng_normal(r);
}

static int bench_dqn(const bench_opts *o, int batch, double goal) {
    agt_dqn_cfg c = agt_dqn_default(); /* 32->256->256->21, lr 1e-3, gamma 0.99, sync 100, replay 1e5 */
    c.batch = batch;
    agt_dqn *q = NULL;
    int st = agt_dqn_create(&q, o->be, &c, 1);
    if (st) return st;
    eng_rng r;
    eng_rng_seed(&r, 1);
    float s[32], s2[32];
    for (long i = 0; i < c.replay && !st; i++) {
        random_state(&r, s, 32);
        random_state(&r, s2, 32);
        st = agt_dqn_push(q, 0, s, (int)eng_rng_below(&r, 21), (float)eng_rng_normal(&r), s2, eng_rng_below(&r, 60) == 0);
    }
    if (!st) st = agt_dqn_train_step(q, NULL);
    double best = 0, mean = 0;
    if (!st) st = timed(dqn_step, q, o->seconds, 10, &best, &mean);
    if (!st) {
        char what[96];
        snprintf(what, sizeof what, "DQN train step, batch %d", batch);
        line(what, best, mean, "steps/s", goal);
        st = per_step_counters(o->be, dqn_step, q, 20);
    }
    agt_dqn_free(q);
    return st;
}

static int bench_ddpg(const bench_opts *o, int batch, double goal) {
    agt_ddpg_cfg c = agt_ddpg_default(); /* 32->256->256->1 tanh, critic 33->..->1, 1e-4/1e-3, tau 0.005 */
    c.batch = batch;
    agt_ddpg *q = NULL;
    int st = agt_ddpg_create(&q, o->be, &c, 1);
    if (st) return st;
    eng_rng r;
    eng_rng_seed(&r, 2);
    float s[32], s2[32];
    for (long i = 0; i < c.replay && !st; i++) {
        random_state(&r, s, 32);
        random_state(&r, s2, 32);
        st = agt_ddpg_push(q, 0, s, (float)(0.75 + 0.5 * eng_rng_uniform(&r)), (float)eng_rng_normal(&r), s2,
                           eng_rng_below(&r, 60) == 0);
    }
    if (!st) st = agt_ddpg_train_step(q, NULL, NULL);
    double best = 0, mean = 0;
    if (!st) st = timed(ddpg_step, q, o->seconds, 5, &best, &mean);
    if (!st) {
        char what[96];
        snprintf(what, sizeof what, "DDPG update (critic + actor), batch %d", batch);
        line(what, best, mean, "updates/s", goal);
        st = per_step_counters(o->be, ddpg_step, q, 20);
    }
    agt_ddpg_free(q);
    return st;
}

static int bench_linucb(const bench_opts *o) {
    agt_linucb_cfg c = agt_linucb_default(); /* disjoint, K 21, d 32, alpha 1 */
    agt_linucb *m = NULL;
    int st = agt_linucb_create(&m, &c, 1);
    if (st) return st;
    enum { NX = 1024 };
    float *x = eng_malloc(sizeof(float) * NX * 32), *rw = eng_malloc(sizeof(float) * NX);
    if (!x || !rw) { st = ENG_ENOMEM; goto cleanup; }
    eng_rng r;
    eng_rng_seed(&r, 3);
    for (int i = 0; i < NX * 32; i++) x[i] = (float)(eng_rng_normal(&r) / 5.6);
    for (int i = 0; i < NX; i++) rw[i] = (float)eng_rng_uniform(&r);
    long n = 0, total = 0;
    double best = 0, t_all = 0;
    for (int w = 0; w < BENCH_WINDOWS && !st; w++) {
        long n0 = n;
        double t0 = eng_now(), t = t0;
        while (!st && t - t0 < o->seconds / BENCH_WINDOWS) {
            for (int k = 0; k < 500 && !st; k++, n++) {
                const float *xi = x + (size_t)(n % NX) * 32;
                int arm;
                st = agt_linucb_choose(m, xi, NULL, NULL, &arm, NULL);
                if (!st) st = agt_linucb_update(m, xi, NULL, &arm, &rw[n % NX], NULL);
            }
            t = eng_now();
        }
        if ((n - n0) / (t - t0) > best) best = (n - n0) / (t - t0);
        total += n - n0;
        t_all += t - t0;
    }
    if (!st) line("LinUCB disjoint d=32 K=21: decide + update", best, total / t_all, "rounds/s", 500000);
cleanup:
    free(x);
    free(rw);
    agt_linucb_free(m);
    return st;
}

static int bench_group(const bench_opts *o) {
    agt_dqn_cfg c = agt_dqn_default();
    c.replay = 60;      /* about 60 days of history per product */
    c.learn_start = 1;
    const int P = o->products;
    agt_dqn *q = NULL;
    double tc = eng_now();
    int st = agt_dqn_create(&q, o->be, &c, P);
    if (st) return st;
    tc = eng_now() - tc;
    eng_rng r;
    eng_rng_seed(&r, 4);
    float s[32], s2[32];
    for (int p = 0; p < P && !st; p++)
        for (int i = 0; i < 60 && !st; i++) {
            random_state(&r, s, 32);
            random_state(&r, s2, 32);
            st = agt_dqn_push(q, p, s, (int)eng_rng_below(&r, 21), (float)eng_rng_normal(&r), s2, i == 59);
        }
    if (!st) st = agt_dqn_train_step(q, NULL);
    long n = 0;
    eng_backend_counters c0, c1;
    o->be->counters(&c0);
    double t0 = eng_now(), t = t0;
    while (!st && (n < 2 || t - t0 < o->seconds)) {
        st = agt_dqn_train_step(q, NULL);
        n++;
        t = eng_now();
    }
    o->be->counters(&c1);
    if (!st) {
        eng_backend_counters d = eng_counters_diff(&c1, &c0);
        double per_step = (t - t0) / (double)n;
        char what[128];
        snprintf(what, sizeof what, "DQN group of %d products: group step, batch 64", P);
        printf("  %-44s %12.2f steps/s\n", what, 1.0 / per_step);
        exp_bench_print_counters("      ", &d, n, 1);
        snprintf(what, sizeof what, "  = per-product steps (P x steps/s)");
        line(what, (double)P / per_step, 0, "steps/s", 0);
        snprintf(what, sizeof what, "products trained per minute (%d steps each)", o->budget);
        line(what, 60.0 * P / (per_step * o->budget + tc), 0, "products/min", 0);
        printf("  (group creation %.2f s, peak RSS %.0f MiB)\n", tc, (double)eng_peak_rss() / 1048576.0);
    }
    agt_dqn_free(q);
    return st;
}

int exp_bench_agents_run(const char *device, double seconds, int products, int budget, const char *only, int threads) {
    bench_opts o = {NULL, seconds, products, budget};
    if (eng_backend_select(device, &o.be) != ENG_OK) {
        fprintf(stderr, "rlprice: bench agents: %s\n", eng_err_msg());
        return 2;
    }
    if (threads > 0) eng_cpu_set_threads(threads);
    printf("bench agents (backend %s, ~%.1f s per figure, best of %d windows, mean in brackets", o.be->name, o.seconds,
           BENCH_WINDOWS);
    if (o.be->kind == ENG_BACKEND_CPU)
        printf(", %d CPU thread%s, OpenBLAS %s kernels", eng_cpu_threads(), eng_cpu_threads() > 1 ? "s" : "",
               eng_cpu_blas_core());
    /* CUDA graphs (issue 16 item 3): a training step is one graph launch when on */
    printf(", CUDA graphs %s", o.be->kind == ENG_BACKEND_CUDA ? eng_cuda_graphs_status() : "n/a (CPU backend)");
    printf(")\n");
    printf("  (\"per step\": backend work of one training step over 20 more steps; on the CPU the host-side\n"
           "   structure a GPU would see, on CUDA what it did)\n");
    int st = ENG_OK;
#define WANT(x) (!only || !strcmp(only, x))
    if (!st && WANT("dqn")) st = bench_dqn(&o, 64, 3000);
    if (!st && WANT("dqn")) st = bench_dqn(&o, 256, 820);
    if (!st && WANT("ddpg")) st = bench_ddpg(&o, 64, 1150);
    if (!st && WANT("ddpg")) st = bench_ddpg(&o, 256, 320);
    if (!st && WANT("linucb")) st = bench_linucb(&o);
    if (!st && WANT("group")) st = bench_group(&o);
#undef WANT
    if (threads > 0) eng_cpu_set_threads(0);
    if (st) {
        fprintf(stderr, "rlprice: bench agents: %s\n", eng_err_msg());
        return 1;
    }
    return 0;
}
