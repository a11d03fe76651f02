/* tests/test_engine_counters.c - the backend work counters and the device-resident training
 * path on the CPU backend (the CPU twin of the CUDA backend): the counting rules of
 * eng_backend.h op by op; a model step's structure (uploads, host waits, the mask uploaded
 * only when it changes, statistics one step late); a DQN group step within the issue-16 goals
 * (<= 1 host sync, <= 1 upload per step); the device ops (adam_clip, sumsq_dev, loss_dev,
 * dqn_targets) equal the host-side arithmetic they replace, bit for bit; padded parameter
 * blocks. */
#include "test_common.h"

#include "agt_ddpg.h"
#include "agt_dqn.h"
#include "eng_model.h"

static const eng_backend *be(void) { return eng_backend_cpu(); }

static eng_backend_counters since(const eng_backend_counters *c0) {
    eng_backend_counters c1;
    be()->counters(&c1);
    return eng_counters_diff(&c1, c0);
}

static void test_op_rules(void **s) {
    (void)s;
    float *a = NULL, *b = NULL, h[64];
    assert_int_equal(be()->alloc(&a, 64), ENG_OK);
    assert_int_equal(be()->alloc(&b, 64), ENG_OK);
    for (int k = 0; k < 64; k++) h[k] = (float)k;
    eng_backend_counters c0, d;
    be()->counters(&c0);
    assert_int_equal(be()->to_device(a, h, 64), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.uploads, 1);
    assert_int_equal(d.bytes_up, 256);
    assert_int_equal(d.syncs, 0);
    assert_int_equal(d.launches, 0);
    be()->counters(&c0);
    assert_int_equal(be()->to_host(h, a, 16), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.downloads, 1);
    assert_int_equal(d.bytes_down, 64);
    assert_int_equal(d.syncs, 1); /* the caller needs the data now: a host wait */
    be()->counters(&c0);
    assert_int_equal(be()->copy(b, a, 64), ENG_OK);
    assert_int_equal(be()->fill(b, 1.0f, 64), ENG_OK);
    assert_int_equal(be()->polyak(b, a, 64, 0.5f), ENG_OK);
    assert_int_equal(be()->act_backward(b, a, 64, ENG_ACT_IDENTITY), ENG_OK); /* no work: not counted */
    d = since(&c0);
    assert_int_equal(d.copies, 1);
    assert_int_equal(d.launches, 2);
    assert_int_equal(d.syncs, 0);
    /* host outputs of loss and sumsq wait; the backend-memory versions do not */
    double ss[2] __attribute__((aligned(8)));
    float l[2];
    be()->counters(&c0);
    assert_int_equal(be()->loss(ENG_LOSS_MSE, 1, a, b, NULL, NULL, l, 2, 4, 8), ENG_OK);
    assert_int_equal(be()->sumsq(a, 32, 32, 2, ss), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.launches, 2);
    assert_int_equal(d.downloads, 2);
    assert_int_equal(d.syncs, 2);
    be()->counters(&c0);
    assert_int_equal(be()->loss_dev(ENG_LOSS_MSE, 1, a, b, NULL, NULL, b, 2, 4, 8), ENG_OK);
    assert_int_equal(be()->sumsq_dev(a, 32, 32, 2, (double *)(void *)b), ENG_OK);
    assert_int_equal(be()->to_host_async(h, a, 8), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.launches, 2);
    assert_int_equal(d.downloads, 1);
    assert_int_equal(d.syncs, 0);
    void *ev = NULL;
    be()->counters(&c0);
    assert_int_equal(be()->event_record(&ev), ENG_OK);
    assert_int_equal(be()->event_wait(ev), ENG_OK);
    assert_int_equal(be()->sync(), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.syncs, 2);
    be()->event_free(ev);
    assert_int_equal(be()->event_wait(NULL), ENG_EINVAL);
    be()->free(a);
    be()->free(b);
}

/* copy has memmove semantics for overlapping ranges (the CUDA backend matches it) */
static void test_copy_overlap(void **s) {
    (void)s;
    float *a = NULL, h[40], ref[40];
    assert_int_equal(be()->alloc(&a, 40), ENG_OK);
    for (int k = 0; k < 40; k++) h[k] = ref[k] = (float)k;
    assert_int_equal(be()->to_device(a, h, 40), ENG_OK);
    assert_int_equal(be()->copy(a + 3, a, 30), ENG_OK);
    memmove(ref + 3, ref, 30 * sizeof(float));
    assert_int_equal(be()->copy(a, a + 5, 30), ENG_OK);
    memmove(ref, ref + 5, 30 * sizeof(float));
    assert_int_equal(be()->to_host(h, a, 40), ENG_OK);
    assert_memory_equal(h, ref, sizeof h);
    be()->free(a);
}

/* adam_clip == scale (clip factors computed on the host) then adam, bit for bit, with the mask
 * in backend memory; sumsq_dev == sumsq; loss_dev == loss. */
static void test_device_ops_equal_host_path(void **s) {
    (void)s;
    const int P = 3;
    const size_t per = 100, n = P * per;
    float w1[300], g1[300], m1[300], v1[300], w2[300], g2[300], m2[300], v2[300];
    eng_rng r;
    eng_rng_seed(&r, 7);
    for (size_t k = 0; k < n; k++) {
        w1[k] = w2[k] = (float)eng_rng_normal(&r);
        g1[k] = g2[k] = (float)(3.0 * eng_rng_normal(&r));
        m1[k] = m2[k] = 0.01f * (float)eng_rng_normal(&r);
        v1[k] = v2[k] = 0.01f * (float)eng_rng_uniform(&r);
    }
    for (size_t k = per; k < 2 * per; k++) g1[k] = g2[k] = 0.001f; /* product 1 under the clip */
    const unsigned char mask[3] = {1, 1, 0};
    const float maskf[3] = {1, 1, 0};
    const float clip = 2.0f;
    double ss[3], ssd[3];
    assert_int_equal(be()->sumsq(g1, (long)per, (int)per, P, ss), ENG_OK);
    assert_int_equal(be()->sumsq_dev(g2, (long)per, (int)per, P, ssd), ENG_OK);
    assert_memory_equal(ss, ssd, sizeof ss);
    float sc[3];
    for (int p = 0; p < P; p++) {
        double norm = sqrt(ss[p]);
        sc[p] = norm > clip ? (float)(clip / norm) : 1.0f;
    }
    assert_true(sc[0] < 1.0f && sc[1] == 1.0f && sc[2] < 1.0f);
    assert_int_equal(be()->scale(g1, (long)per, (int)per, P, sc), ENG_OK);
    assert_int_equal(be()->adam(w1, g1, m1, v1, per, P, mask, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.001f), ENG_OK);
    assert_int_equal(be()->adam_clip(w2, g2, m2, v2, per, P, maskf, ssd, clip, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.001f),
                     ENG_OK);
    assert_memory_equal(g1, g2, sizeof g1); /* the clipped gradient is written back, masked product too */
    assert_memory_equal(w1, w2, sizeof w1);
    assert_memory_equal(m1, m2, sizeof m1);
    assert_memory_equal(v1, v2, sizeof v1);
    float l1[3], l2[3], gr1[300], gr2[300];
    assert_int_equal(be()->loss(ENG_LOSS_HUBER, 0.5f, w1, m1, v1, gr1, l1, P, 10, 10), ENG_OK);
    assert_int_equal(be()->loss_dev(ENG_LOSS_HUBER, 0.5f, w1, m1, v1, gr2, l2, P, 10, 10), ENG_OK);
    assert_memory_equal(l1, l2, sizeof l1);
    assert_memory_equal(gr1, gr2, sizeof gr1);
}

/* dqn_targets against the host loop agt_dqn.c used to run, NaNs included */
static void test_dqn_targets(void **s) {
    (void)s;
    enum { P = 2, B = 3, A = 4 };
    float qs[P * B * A], qt[P * B * A], qc[P * B * A], act[P * B], r[P * B], done[P * B];
    const float mask[P] = {1, 0};
    eng_rng g;
    eng_rng_seed(&g, 3);
    for (int k = 0; k < P * B * A; k++) {
        qs[k] = (float)eng_rng_normal(&g);
        qt[k] = (float)eng_rng_normal(&g);
        qc[k] = (float)eng_rng_normal(&g);
    }
    for (int i = 0; i < P * B; i++) {
        act[i] = (float)(i % A);
        r[i] = (float)eng_rng_normal(&g);
        done[i] = i == 4 ? 1.0f : 0.0f;
    }
    qs[0] = NAN;            /* NaN first: the host loop keeps a* = 0 */
    qs[A + 2] = NAN;        /* NaN later: never chosen */
    qt[2 * A + 1] = INFINITY;
    float tgt[P * B * A], w[P * B * A];
    assert_int_equal(be()->dqn_targets(qs, qt, qc, act, r, done, mask, 0.9f, P, B, A, tgt, w), ENG_OK);
    for (int i = 0; i < P * B; i++) {
        int best = -1;
        for (int a = 0; a < A; a++)
            if (best < 0 || qs[i * A + a] > qs[i * A + best]) best = a;
        float boot = done[i] != 0.0f ? 0.0f : 0.9f * qt[i * A + best];
        float y = r[i] + boot;
        for (int j = 0; j < A; j++) {
            float te = j == (int)act[i] ? y : qc[i * A + j];
            float we = j == (int)act[i] ? mask[i / B] : 0.0f;
            assert_memory_equal(&tgt[i * A + j], &te, sizeof te);
            assert_true(w[i * A + j] == we);
        }
    }
    assert_int_equal(be()->dqn_targets(qs, qt, qc, act, r, done, mask, 0.9f, P, B, 0, tgt, w), ENG_EINVAL);
}

/* A model step: no host wait without statistics; stats one step late cost one wait; the mask
 * is uploaded when it changes only; padded blocks; fetched stats equal the synchronous ones. */
static void test_model_step_structure(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){7, 13, 5}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    const int P = 3, B = 4;
    eng_model *m = NULL, *m2 = NULL;
    assert_int_equal(eng_model_create(&m, be(), &a, P, 11), ENG_OK);
    assert_int_equal(eng_model_create(&m2, be(), &a, P, 11), ENG_OK);
    assert_int_equal(eng_model_nparams(m), 7 * 13 + 13 + 13 * 5 + 5);
    assert_int_equal(eng_model_stride(m) % 32, 0);
    assert_true(eng_model_stride(m) >= eng_model_nparams(m));
    float X[3 * 4 * 7], T[3 * 4 * 5];
    eng_rng r;
    eng_rng_seed(&r, 2);
    for (size_t k = 0; k < sizeof X / sizeof *X; k++) X[k] = (float)eng_rng_normal(&r);
    for (size_t k = 0; k < sizeof T / sizeof *T; k++) T[k] = (float)eng_rng_normal(&r);
    eng_adam_cfg cfg = eng_adam_default();
    cfg.clip_norm = 0.1f;
    unsigned char mask[3] = {1, 0, 1};
    eng_backend_counters c0, d;
    float loss_sync[3], gn_sync[3], loss[3], gn[3];
    for (int t = 0; t < 4; t++) {
        if (t == 2) mask[1] = 1;
        /* m2: the synchronous reference */
        assert_int_equal(eng_model_zero_grad(m2), ENG_OK);
        assert_int_equal(eng_model_forward(m2, X, B, NULL), ENG_OK);
        assert_int_equal(eng_model_loss_backward(m2, ENG_LOSS_MSE, 0, T, NULL, loss_sync), ENG_OK);
        assert_int_equal(eng_model_adam_step(m2, &cfg, mask, gn_sync), ENG_OK);
        be()->counters(&c0);
        assert_int_equal(eng_model_zero_grad(m), ENG_OK);
        assert_int_equal(eng_model_forward(m, X, B, NULL), ENG_OK);
        assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_MSE, 0, T, NULL, NULL), ENG_OK);
        assert_int_equal(eng_model_adam_step(m, &cfg, mask, NULL), ENG_OK);
        d = since(&c0);
        assert_int_equal(d.syncs, 0);
        /* X and T, plus the mask on the first step and when it changed */
        assert_int_equal(d.uploads, 2 + (t == 0 || t == 2));
        assert_int_equal(d.downloads, 0);
        be()->counters(&c0);
        assert_int_equal(eng_model_stats_post(m, t == 3), ENG_OK);
        assert_int_equal(eng_model_stats_post(m, 0), ENG_EINVAL); /* one at a time */
        assert_int_equal(eng_model_stats_fetch(m, loss, gn, NULL), 0);
        d = since(&c0);
        assert_int_equal(d.syncs, 1);
        assert_int_equal(d.downloads, 1);
        assert_memory_equal(loss, loss_sync, sizeof loss);
        assert_memory_equal(gn, gn_sync, sizeof gn);
    }
    assert_int_equal(eng_model_stats_fetch(m, loss, gn, NULL), ENG_EINVAL); /* nothing posted */
    /* same parameters as the synchronous path, and get/set round-trip the padded layout */
    const size_t tot = (size_t)P * eng_model_nparams(m);
    float *p1 = malloc(tot * sizeof(float)), *p2 = malloc(tot * sizeof(float));
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, p1), ENG_OK);
    assert_int_equal(eng_model_get(m2, ENG_VIEW_PARAMS, p2), ENG_OK);
    assert_memory_equal(p1, p2, tot * sizeof(float));
    for (size_t k = 0; k < tot; k++) p1[k] = (float)k;
    assert_int_equal(eng_model_set(m, ENG_VIEW_ADAM_M, p1), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_ADAM_M, p2), ENG_OK);
    assert_memory_equal(p1, p2, tot * sizeof(float));
    float one[200];
    assert_int_equal(eng_model_get_product(m, ENG_VIEW_ADAM_M, 2, one), ENG_OK);
    assert_memory_equal(one, p1 + 2 * eng_model_nparams(m), eng_model_nparams(m) * sizeof(float));
    free(p1);
    free(p2);
    /* the parameter scan rides on the same copy: a poisoned product is reported */
    float nanp[200];
    for (int k = 0; k < 200; k++) nanp[k] = NAN;
    assert_int_equal(eng_model_set_product(m, ENG_VIEW_PARAMS, 1, nanp), ENG_OK);
    unsigned char badp[3] = {9, 9, 9};
    assert_int_equal(eng_model_stats_post(m, 0), ENG_OK);
    assert_int_equal(eng_model_stats_fetch(m, NULL, NULL, badp), 0); /* no scan asked */
    assert_true(badp[0] == 0 && badp[1] == 0 && badp[2] == 0);
    be()->counters(&c0);
    assert_int_equal(eng_model_stats_post(m, 1), ENG_OK);
    assert_int_equal(eng_model_stats_fetch(m, NULL, NULL, badp), 1);
    d = since(&c0);
    assert_int_equal(d.syncs, 1);
    assert_int_equal(d.downloads, 1);
    assert_true(badp[0] == 0 && badp[1] == 1 && badp[2] == 0);
    eng_model_free(m);
    eng_model_free(m2);
}

/* The device-resident forward / infer / loss equal the host-memory calls bit for bit. */
static void test_dev_calls_equal_host_calls(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){6, 9, 9, 3}, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    const int P = 2, B = 5;
    eng_model *m1 = NULL, *m2 = NULL;
    assert_int_equal(eng_model_create(&m1, be(), &a, P, 4), ENG_OK);
    assert_int_equal(eng_model_create(&m2, be(), &a, P, 4), ENG_OK);
    float X[2 * 5 * 6], T[2 * 5 * 3], Y1[2 * 5 * 3], Y2[2 * 5 * 3];
    eng_rng r;
    eng_rng_seed(&r, 9);
    for (size_t k = 0; k < sizeof X / sizeof *X; k++) X[k] = (float)eng_rng_normal(&r);
    for (size_t k = 0; k < sizeof T / sizeof *T; k++) T[k] = (float)eng_rng_normal(&r);
    float *dX = NULL, *dT = NULL, *dY = NULL;
    assert_int_equal(be()->alloc(&dX, sizeof X / sizeof *X), ENG_OK);
    assert_int_equal(be()->alloc(&dT, sizeof T / sizeof *T), ENG_OK);
    assert_int_equal(be()->alloc(&dY, sizeof T / sizeof *T), ENG_OK);
    assert_int_equal(be()->to_device(dX, X, sizeof X / sizeof *X), ENG_OK);
    assert_int_equal(be()->to_device(dT, T, sizeof T / sizeof *T), ENG_OK);
    assert_int_equal(eng_model_infer(m1, X, B, Y1), ENG_OK);
    assert_int_equal(eng_model_infer_dev(m2, dX, B, dY), ENG_OK);
    assert_int_equal(be()->to_host(Y2, dY, sizeof Y2 / sizeof *Y2), ENG_OK);
    assert_memory_equal(Y1, Y2, sizeof Y1);
    assert_null(eng_model_output_dev(m2));
    eng_adam_cfg cfg = eng_adam_default();
    for (int t = 0; t < 3; t++) {
        assert_int_equal(eng_model_zero_grad(m1), ENG_OK);
        assert_int_equal(eng_model_zero_grad(m2), ENG_OK);
        assert_int_equal(eng_model_forward(m1, X, B, Y1), ENG_OK);
        assert_int_equal(eng_model_forward_dev(m2, dX, B), ENG_OK);
        assert_int_equal(be()->to_host(Y2, eng_model_output_dev(m2), sizeof Y2 / sizeof *Y2), ENG_OK);
        assert_memory_equal(Y1, Y2, sizeof Y1);
        assert_int_equal(eng_model_loss_backward(m1, ENG_LOSS_HUBER, 1, T, NULL, NULL), ENG_OK);
        assert_int_equal(eng_model_loss_backward_dev(m2, ENG_LOSS_HUBER, 1, dT, NULL), ENG_OK);
        assert_int_equal(eng_model_adam_step(m1, &cfg, NULL, NULL), ENG_OK);
        assert_int_equal(eng_model_adam_step(m2, &cfg, NULL, NULL), ENG_OK);
    }
    float p1[2 * 200], p2[2 * 200];
    assert_int_equal(eng_model_get(m1, ENG_VIEW_PARAMS, p1), ENG_OK);
    assert_int_equal(eng_model_get(m2, ENG_VIEW_PARAMS, p2), ENG_OK);
    assert_memory_equal(p1, p2, (size_t)P * eng_model_nparams(m1) * sizeof(float));
    assert_int_equal(eng_model_loss_backward_dev(m2, ENG_LOSS_HUBER, 1, NULL, NULL), ENG_EINVAL);
    be()->free(dX);
    be()->free(dT);
    be()->free(dY);
    eng_model_free(m1);
    eng_model_free(m2);
}

/* A DQN group step: one upload, one host wait (the last step's statistics), no downloads
 * beyond that one, once the mask is steady. */
static void test_dqn_step_within_goals(void **s) {
    (void)s;
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = 4; c.n_actions = 5; c.hidden1 = 8; c.hidden2 = 8; c.batch = 8; c.learn_start = 4; c.replay = 50;
    const int P = 3;
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, be(), &c, P), ENG_OK);
    eng_rng r;
    eng_rng_seed(&r, 5);
    float st[4], st2[4];
    for (int p = 0; p < P; p++)
        for (int i = 0; i < 20; i++) {
            for (int k = 0; k < 4; k++) {
                st[k] = (float)eng_rng_normal(&r);
                st2[k] = (float)eng_rng_normal(&r);
            }
            assert_int_equal(agt_dqn_push(q, p, st, (int)eng_rng_below(&r, 5), (float)eng_rng_normal(&r), st2, 0), ENG_OK);
        }
    assert_int_equal(agt_dqn_train_step(q, NULL), ENG_OK);
    assert_int_equal(agt_dqn_train_step(q, NULL), ENG_OK);
    eng_backend_counters c0, d;
    be()->counters(&c0);
    const int steps = 10;
    for (int t = 0; t < steps; t++) assert_int_equal(agt_dqn_train_step(q, NULL), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.uploads, steps);   /* the packed minibatch */
    assert_int_equal(d.syncs, steps);     /* the previous step's loss and gradient norms */
    assert_int_equal(d.downloads, steps); /* ... in one copy */
    /* a loss request waits for this step at once */
    float loss[3];
    be()->counters(&c0);
    assert_int_equal(agt_dqn_train_step(q, loss), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.syncs, 2);
    for (int p = 0; p < P; p++) assert_true(isfinite(loss[p]));
    int nbad = -1;
    agt_dqn_diverged(q, &nbad);
    assert_int_equal(nbad, 0);
    agt_dqn_free(q);
}

/* A DDPG group update: one upload, one host wait (the critic's and the actor's statistics of
 * the last update: the second event is known complete after the first wait). */
static void test_ddpg_step_within_goals(void **s) {
    (void)s;
    agt_ddpg_cfg c = agt_ddpg_default();
    c.state_dim = 4; c.hidden1 = 8; c.hidden2 = 8; c.batch = 8; c.learn_start = 4; c.replay = 50;
    const int P = 3;
    agt_ddpg *q = NULL;
    assert_int_equal(agt_ddpg_create(&q, be(), &c, P), ENG_OK);
    eng_rng r;
    eng_rng_seed(&r, 6);
    float st[4], st2[4];
    for (int p = 0; p < P; p++)
        for (int i = 0; i < 20; i++) {
            for (int k = 0; k < 4; k++) {
                st[k] = (float)eng_rng_normal(&r);
                st2[k] = (float)eng_rng_normal(&r);
            }
            assert_int_equal(agt_ddpg_push(q, p, st, (float)(0.8 + 0.4 * eng_rng_uniform(&r)), (float)eng_rng_normal(&r),
                                           st2, 0),
                             ENG_OK);
        }
    assert_int_equal(agt_ddpg_train_step(q, NULL, NULL), ENG_OK);
    assert_int_equal(agt_ddpg_train_step(q, NULL, NULL), ENG_OK);
    eng_backend_counters c0, d;
    be()->counters(&c0);
    const int steps = 10;
    for (int t = 0; t < steps; t++) assert_int_equal(agt_ddpg_train_step(q, NULL, NULL), ENG_OK);
    d = since(&c0);
    assert_int_equal(d.uploads, steps);
    assert_int_equal(d.syncs, steps);
    assert_int_equal(d.downloads, 2 * steps); /* critic's and actor's statistics */
    float cl[3], aq[3];
    assert_int_equal(agt_ddpg_train_step(q, cl, aq), ENG_OK);
    for (int p = 0; p < P; p++) assert_true(isfinite(cl[p]) && isfinite(aq[p]));
    int nbad = -1;
    agt_ddpg_diverged(q, &nbad);
    assert_int_equal(nbad, 0);
    agt_ddpg_free(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_rules),
        cmocka_unit_test(test_copy_overlap),
        cmocka_unit_test(test_device_ops_equal_host_path),
        cmocka_unit_test(test_dqn_targets),
        cmocka_unit_test(test_model_step_structure),
        cmocka_unit_test(test_dev_calls_equal_host_calls),
        cmocka_unit_test(test_dqn_step_within_goals),
        cmocka_unit_test(test_ddpg_step_within_goals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
