/* exp_bench_engine.c - `rlprice bench engine`: how close a training step of the pricing
 * network comes to the raw sgemm rate of the machine.
 *
 * Network: 32 -> 256 -> 256 -> 21 (ReLU hidden, identity output), MSE loss, Adam, one full
 * step = zero_grad + forward + loss/backward + Adam, with the host -> backend copy of the
 * batch and targets included (that is what the agents pay).
 *
 * FLOP count per step (multiply-add = 2 FLOPs; elementwise ops, loss and Adam not counted):
 *     forward   2 B sum_l in_l out_l
 *     dW        2 B sum_l in_l out_l
 *     dX        2 B sum_{l>0} in_l out_l     (no dX for the first layer: inputs need none)
 * i.e. 2 B (3 S - in_0 out_0) with S = sum_l in_l out_l.
 * The reference rate is cblas_sgemm (or the backend's GEMM on CUDA) on 256 x 256 x 256; on
 * the CPU it is measured with one OpenBLAS thread and with all of them, and the better of
 * the two is the reference (the goal: a batch-256 training step >= 70% of it).
 *
 * Timing: each figure runs for about --seconds in windows of ~1/8 of that; the figure is the
 * best window (a shared machine's other load only ever slows a window down), and the mean
 * over all windows is printed beside it.
 */
#include "exp_bench.h"

#include "eng_model.h"
#include "eng_util.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int k_sizes[4] = {32, 256, 256, 21};

static double step_flops(const eng_arch *a, int B) {
    double s = 0;
    for (int l = 0; l < a->n_layers; l++) s += (double)a->sizes[l] * a->sizes[l + 1];
    return 2.0 * B * (3.0 * s - (double)a->sizes[0] * a->sizes[1]);
}

#define BENCH_WINDOWS 8
#define BENCH_GOAL_PCT 70.0

extern void openblas_set_num_threads(int num_threads); /* OpenBLAS extension */

/* Best-window and mean GFLOP/s of n x n x n GEMMs for about `seconds` (one warm-up call).
 * blas_threads > 0 (CPU only): plain cblas_sgemm with that many OpenBLAS threads; 0: the
 * backend's GEMM with its own thread policy. */
static int bench_gemm(const eng_backend *be, int n, double seconds, int blas_threads, double *best, double *mean) {
    float *A = NULL, *B = NULL, *C = NULL;
    int rc = ENG_OK;
    size_t nn = (size_t)n * n;
    if ((rc = be->alloc(&A, nn)) || (rc = be->alloc(&B, nn)) || (rc = be->alloc(&C, nn))) goto cleanup;
    if ((rc = be->fill(A, 0.5f, nn)) || (rc = be->fill(B, 0.25f, nn))) goto cleanup;
    if (blas_threads > 0) openblas_set_num_threads(blas_threads);
#define GEMM_ONE()                                                                                              \
    (blas_threads > 0 ? (cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, \
                                     C, n),                                                                     \
                         ENG_OK)                                                                                \
                      : be->gemm(0, 0, n, n, n, 1.0f, A, n, 0, B, n, 0, 0.0f, C, n, 0, 1))
    if ((rc = GEMM_ONE()) || (rc = be->sync())) goto cleanup;
    long total = 0;
    double t_all = 0, b = 0;
    for (int w = 0; w < BENCH_WINDOWS; w++) {
        long iters = 0;
        double t0 = eng_now(), t = 0;
        do {
            for (int k = 0; k < 4; k++)
                if ((rc = GEMM_ONE()) != ENG_OK) goto cleanup;
            iters += 4;
            if ((rc = be->sync()) != ENG_OK) goto cleanup;
            t = eng_now() - t0;
        } while (t < seconds / BENCH_WINDOWS);
        double g = 2.0 * n * nn * iters / t / 1e9;
        if (g > b) b = g;
        total += iters;
        t_all += t;
    }
#undef GEMM_ONE
    *best = b;
    *mean = 2.0 * n * nn * total / t_all / 1e9;
cleanup:
    be->free(A);
    be->free(B);
    be->free(C);
    return rc;
}

/* Training steps per second (best window and mean) of a group of P copies of the bench
 * network at batch B; *gflops is the best window's rate. */
static int bench_steps(const eng_backend *be, int P, int B, double seconds, uint64_t seed, double *steps_per_s,
                       double *mean_steps_per_s, double *gflops) {
    eng_arch a;
    eng_model *m = NULL;
    float *X = NULL, *T = NULL;
    int rc = eng_arch_mlp(&a, k_sizes, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    if (rc != ENG_OK) return rc;
    if ((rc = eng_model_create(&m, be, &a, P, seed)) != ENG_OK) return rc;
    size_t nx = (size_t)P * B * k_sizes[0], nt = (size_t)P * B * k_sizes[3];
    X = eng_malloc(nx * sizeof(float));
    T = eng_malloc(nt * sizeof(float));
    if (!X || !T) {
        rc = ENG_ENOMEM;
        goto cleanup;
    }
    eng_rng r;
    eng_rng_seed(&r, seed ^ 0x5eedULL);
    for (size_t k = 0; k < nx; k++) X[k] = (float)(2.0 * eng_rng_uniform(&r) - 1.0);
    for (size_t k = 0; k < nt; k++) T[k] = (float)eng_rng_normal(&r);
    eng_adam_cfg cfg = eng_adam_default();
    long total = 0;
    double t_all = 0, best = 0;
    /* window -1: 3 warm-up steps (buffers allocated, caches and threads woken), not counted */
    for (int w = -1; w < BENCH_WINDOWS; w++) {
        long steps = 0;
        double t0 = eng_now(), t = 0;
        do {
            if ((rc = eng_model_zero_grad(m)) || (rc = eng_model_forward(m, X, B, NULL)) ||
                (rc = eng_model_loss_backward(m, ENG_LOSS_MSE, 0, T, NULL, NULL)) ||
                (rc = eng_model_adam_step(m, &cfg, NULL, NULL)))
                goto cleanup;
            steps++;
            if ((steps & 3) == 0 && (rc = be->sync()) != ENG_OK) goto cleanup;
            t = eng_now() - t0;
        } while (w < 0 ? steps < 3 : t < seconds / BENCH_WINDOWS);
        if ((rc = be->sync()) != ENG_OK) goto cleanup;
        t = eng_now() - t0;
        if (w < 0) continue;
        if (steps / t > best) best = steps / t;
        total += steps;
        t_all += t;
    }
    *steps_per_s = best;
    *mean_steps_per_s = total / t_all;
    *gflops = step_flops(&a, B) * P * best / 1e9;
cleanup:
    free(X);
    free(T);
    eng_model_free(m);
    return rc;
}

void exp_bench_print_counters(const char *indent, const eng_backend_counters *d, long steps, int goals) {
    const double n = steps > 0 ? (double)steps : 1.0;
    const double syncs = (double)d->syncs / n, ups = (double)d->uploads / n;
    printf("%sper step: %.1f launches, %.1f copies, %.1f uploads (%.1f KiB), %.1f downloads (%.1f KiB), %.1f syncs",
           indent, (double)d->launches / n, (double)d->copies / n, ups, (double)d->bytes_up / n / 1024.0,
           (double)d->downloads / n, (double)d->bytes_down / n / 1024.0, syncs);
    if (d->graph_launches || d->graph_captures) /* CUDA graphs: each graph launch is one of the launches */
        printf(" (%.1f graph launches, %llu captures)", (double)d->graph_launches / n, d->graph_captures);
    if (goals)
        printf("  goal <= 1 sync, <= 1 upload: %s", syncs <= 1.0 && ups <= 1.0 ? "PASS" : "MISS");
    printf("\n");
}

/* Counters of `steps` plain training steps (forward + loss/backward + Adam, batch B, the
 * statistics posted and fetched one step late as an agent does), printed per step. */
static int bench_step_counters(const eng_backend *be, int P, int B, uint64_t seed) {
    eng_arch a;
    eng_model *m = NULL;
    float *X = NULL, *T = NULL, *loss = NULL, *gn = NULL;
    int rc = eng_arch_mlp(&a, k_sizes, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    if (rc != ENG_OK) return rc;
    if ((rc = eng_model_create(&m, be, &a, P, seed)) != ENG_OK) return rc;
    size_t nx = (size_t)P * B * k_sizes[0], nt = (size_t)P * B * k_sizes[3];
    X = eng_calloc(nx, sizeof(float));
    T = eng_calloc(nt, sizeof(float));
    loss = eng_calloc((size_t)P, sizeof(float));
    gn = eng_calloc((size_t)P, sizeof(float));
    if (!X || !T || !loss || !gn) {
        rc = ENG_ENOMEM;
        goto cleanup;
    }
    eng_adam_cfg cfg = eng_adam_default();
    cfg.clip_norm = 10.0f;
    const long steps = 20;
    eng_backend_counters c0, c1;
    for (long k = -1; k < steps; k++) { /* step -1: warm-up, not counted */
        if (k == 0) be->counters(&c0);
        if ((rc = eng_model_zero_grad(m)) || (rc = eng_model_forward(m, X, B, NULL)) ||
            (rc = eng_model_loss_backward(m, ENG_LOSS_MSE, 0, T, NULL, NULL)) ||
            (rc = eng_model_adam_step(m, &cfg, NULL, NULL)))
            goto cleanup;
        if (k >= 0 && (rc = eng_model_stats_fetch(m, loss, gn, NULL)) < 0) goto cleanup;
        if ((rc = eng_model_stats_post(m, 0))) goto cleanup;
    }
    be->counters(&c1);
    eng_backend_counters d = eng_counters_diff(&c1, &c0);
    exp_bench_print_counters("    ", &d, steps, 0);
    rc = eng_model_stats_fetch(m, loss, gn, NULL);
    if (rc > 0) rc = ENG_OK;
cleanup:
    free(X);
    free(T);
    free(loss);
    free(gn);
    eng_model_free(m);
    return rc;
}

int exp_bench_engine_run(const char *device, double seconds, uint64_t seed, long threads) {
    const eng_backend *be = NULL;
    int rc = eng_backend_select(device, &be);
    if (rc != ENG_OK) {
        fprintf(stderr, "rlprice: bench engine: %s\n", eng_err_msg());
        return rc == ENG_EINVAL ? 2 : 1;
    }
    if (threads > 0) eng_cpu_set_threads((int)threads);
    double gemm = 0, g1 = 0, g1m = 0, gt = 0, gtm = 0;
    const int T = eng_cpu_threads();
    if (be->kind == ENG_BACKEND_CPU) {
        if ((rc = bench_gemm(be, 256, seconds, 1, &g1, &g1m)) != ENG_OK) goto fail;
        if (T > 1 && (rc = bench_gemm(be, 256, seconds, T, &gt, &gtm)) != ENG_OK) goto fail;
        gemm = g1 > gt ? g1 : gt;
    } else if ((rc = bench_gemm(be, 256, seconds, 0, &g1, &g1m)) != ENG_OK) {
        goto fail;
    } else {
        gemm = g1;
    }
    printf("bench engine: backend %s, %g s per figure (best of %d windows; mean in brackets), seed %llu\n",
           be->name, seconds, BENCH_WINDOWS, (unsigned long long)seed);
    if (be->kind == ENG_BACKEND_CPU) printf("  cpu: %s; %d thread%s\n", openblas_get_config(), T, T > 1 ? "s" : "");
    else printf("  device: %s\n", eng_cuda_describe());
    printf("  net 32-256-256-21 relu/identity, MSE, Adam; FLOPs/step = 2B(3*sum(in*out) - in0*out0)\n");
    printf("  \"per step\": backend work of one step (clip 10, loss and gradient norms fetched one step late);\n"
           "  X and targets are two uploads (the agents upload one packed batch)\n");
    if (be->kind == ENG_BACKEND_CPU) {
        printf("  %-34s %12.1f GFLOP/s (%.1f)\n", "sgemm 256x256x256, 1 thread", g1, g1m);
        if (T > 1) {
            char label[64];
            snprintf(label, sizeof label, "sgemm 256x256x256, %d threads", T);
            printf("  %-34s %12.1f GFLOP/s (%.1f)\n", label, gt, gtm);
        }
        printf("  %-34s %12.1f GFLOP/s\n", "reference (the better one)", gemm);
    } else {
        printf("  %-34s %12.1f GFLOP/s (%.1f)\n", "gemm 256x256x256", g1, g1m);
    }
    const int batches[2] = {64, 256};
    for (int k = 0; k < 2; k++) {
        double sps = 0, msps = 0, gf = 0;
        if ((rc = bench_steps(be, 1, batches[k], seconds, seed, &sps, &msps, &gf)) != ENG_OK) goto fail;
        char label[64];
        snprintf(label, sizeof label, "train step, batch %d", batches[k]);
        double pct = 100.0 * gf / gemm;
        printf("  %-34s %12.1f steps/s (%.1f) %8.1f GFLOP/s  %5.1f%% of sgemm", label, sps, msps, gf, pct);
        if (batches[k] == 256) printf("  goal >= %.0f%%: %s", BENCH_GOAL_PCT, pct >= BENCH_GOAL_PCT ? "PASS" : "MISS");
        printf("\n");
        if ((rc = bench_step_counters(be, 1, batches[k], seed)) != ENG_OK) goto fail;
    }
    {
        double sps = 0, msps = 0, gf = 0;
        const int P = 64, B = 64;
        if ((rc = bench_steps(be, P, B, seconds, seed, &sps, &msps, &gf)) != ENG_OK) goto fail;
        printf("  %-34s %12.1f steps/s (%.1f) %8.1f GFLOP/s  %5.1f%% of sgemm  (%.0f product-steps/s)\n",
               "group P=64, batch 64", sps, msps, gf, 100.0 * gf / gemm, sps * P);
        if ((rc = bench_step_counters(be, P, B, seed)) != ENG_OK) goto fail;
    }
    if (threads > 0) eng_cpu_set_threads(0);
    return 0;
fail:
    if (threads > 0) eng_cpu_set_threads(0);
    fprintf(stderr, "rlprice: bench engine: %s\n", eng_err_msg());
    return 1;
}
