/* test_engine_pad.c - padded parameter blocks (issue 16 item 3), on the CPU backend.
 *
 * A model group keeps each product's parameter block at a stride of nparams rounded up to a
 * multiple of 32 floats (eng_model_stride), in its one backend allocation (params, grads,
 * adam_m, adam_v views).  The padding must be invisible: the 32-64-64-21 network of issue 16
 * (7,637 parameters, stride 7,648) gives bit for bit the forward, inference, backward, input
 * gradient, loss, gradient norms and Adam steps (with clipping and a mask) of the same model
 * laid out without padding (eng_model_create_padded(.., 1)), the pad floats stay 0 in all four
 * views, and checkpoints hold [P][nparams] only: a padded and an unpadded model write files
 * that load to the same model, which continues exactly like the one saved.
 */
#include "test_common.h"

#include <unistd.h>

#include "eng_backend.h"
#include "eng_model.h"
#include "eng_model_internal.h"
#include "eng_util.h"

#define P 3
#define B 8
#define NIN 32
#define NOUT 21

static const eng_backend *be(void) { return eng_backend_cpu(); }

static void make_arch(eng_arch *a) {
    assert_int_equal(eng_arch_mlp(a, (int[]){NIN, 64, 64, NOUT}, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    eng_rng r;
    eng_rng_seed(&r, seed);
    for (size_t k = 0; k < n; k++) x[k] = (float)eng_rng_normal(&r);
}

/* The two models' views are equal bit for bit (the gradients too when grads). */
static void views_equal(const eng_model *a, const eng_model *b, int grads) {
    const size_t n = (size_t)P * eng_model_nparams(a);
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    assert_non_null(x);
    assert_non_null(y);
    for (int v = ENG_VIEW_PARAMS; v <= ENG_VIEW_ADAM_V; v++) {
        if (v == ENG_VIEW_GRADS && !grads) continue;
        assert_int_equal(eng_model_get(a, (eng_view)v, x), ENG_OK);
        assert_int_equal(eng_model_get(b, (eng_view)v, y), ENG_OK);
        assert_memory_equal(x, y, n * sizeof(float));
    }
    assert_int_equal(eng_model_step(a), eng_model_step(b));
    free(x);
    free(y);
}
#define assert_views_equal(a, b) views_equal((a), (b), 1)

/* Every pad float (block positions nparams..stride-1) of every view is exactly 0. */
static void assert_pad_zero(const eng_model *m) {
    const size_t np = eng_model_nparams(m), ld = eng_model_stride(m);
    const float *mem = eng_model_mem(m);
    assert_non_null(mem);
    for (size_t v = 0; v < 4; v++)
        for (size_t p = 0; p < P; p++)
            for (size_t k = np; k < ld; k++)
                if (mem[(v * P + p) * ld + k] != 0.0f)
                    fail_msg("view %zu product %zu pad float %zu is %g", v, p, k - np, (double)mem[(v * P + p) * ld + k]);
}

static void test_pad_stride(void **s) {
    (void)s;
    eng_arch a;
    make_arch(&a);
    eng_model *m = NULL, *u = NULL;
    assert_int_equal(eng_model_create(&m, be(), &a, P, 5), ENG_OK);
    assert_int_equal(eng_model_create_padded(&u, be(), &a, P, 5, 1), ENG_OK);
    assert_int_equal(eng_model_nparams(m), 7637); /* issue 16's example */
    assert_int_equal(eng_model_stride(m), 7648);
    assert_int_equal(eng_model_stride(m) * sizeof(float) % 16, 0); /* 16-byte batch strides */
    assert_int_equal(eng_model_stride(m) % 32, 0);
    assert_int_equal(eng_model_stride(u), 7637); /* the reference is unpadded */
    assert_views_equal(m, u);                    /* same initial weights */
    assert_pad_zero(m);
    eng_model *bad = NULL;
    assert_int_equal(eng_model_create_padded(&bad, be(), &a, P, 5, 0), ENG_EINVAL);
    assert_int_equal(eng_model_create_padded(&bad, be(), &a, P, 5, 33), ENG_EINVAL);
    assert_null(bad);
    eng_model_free(m);
    eng_model_free(u);
}

/* One training step on both models with every output compared bit for bit. */
static void step_both(eng_model *m, eng_model *u, int t) {
    float X[P * B * NIN], T[P * B * NOUT], W[P * B * NOUT], dY[P * B * NOUT];
    float Y1[P * B * NOUT], Y2[P * B * NOUT], dX1[P * B * NIN], dX2[P * B * NIN];
    float l1[P], l2[P], g1[P], g2[P];
    fill_normal(X, sizeof X / sizeof *X, 100 + t);
    fill_normal(T, sizeof T / sizeof *T, 200 + t);
    fill_normal(dY, sizeof dY / sizeof *dY, 300 + t);
    for (size_t k = 0; k < sizeof W / sizeof *W; k++) W[k] = (float)((k + t) % 3);
    /* inference and forward */
    assert_int_equal(eng_model_infer(m, X, B, Y1), ENG_OK);
    assert_int_equal(eng_model_infer(u, X, B, Y2), ENG_OK);
    assert_memory_equal(Y1, Y2, sizeof Y1);
    assert_int_equal(eng_model_forward(m, X, B, Y1), ENG_OK);
    assert_int_equal(eng_model_forward(u, X, B, Y2), ENG_OK);
    assert_memory_equal(Y1, Y2, sizeof Y1);
    /* the input gradient alone, then a backward with dX into fresh gradients */
    assert_int_equal(eng_model_backward_input(m, dY, dX1), ENG_OK);
    assert_int_equal(eng_model_backward_input(u, dY, dX2), ENG_OK);
    assert_memory_equal(dX1, dX2, sizeof dX1);
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_zero_grad(u), ENG_OK);
    assert_int_equal(eng_model_backward(m, dY, dX1), ENG_OK);
    assert_int_equal(eng_model_backward(u, dY, dX2), ENG_OK);
    assert_memory_equal(dX1, dX2, sizeof dX1);
    /* the loss's backward accumulates onto them */
    assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_HUBER, 1.0f, T, W, l1), ENG_OK);
    assert_int_equal(eng_model_loss_backward(u, ENG_LOSS_HUBER, 1.0f, T, W, l2), ENG_OK);
    assert_memory_equal(l1, l2, sizeof l1);
    assert_views_equal(m, u);
    /* Adam with clipping and a mask that changes */
    eng_adam_cfg cfg = eng_adam_default();
    cfg.clip_norm = t % 2 ? 0.5f : 0.0f;
    unsigned char mask[P] = {1, (unsigned char)(t % 3 != 0), 1};
    assert_int_equal(eng_model_adam_step(m, &cfg, mask, g1), ENG_OK);
    assert_int_equal(eng_model_adam_step(u, &cfg, mask, g2), ENG_OK);
    assert_memory_equal(g1, g2, sizeof g1);
    assert_views_equal(m, u);
}

static void test_pad_identical(void **s) {
    (void)s;
    eng_arch a;
    make_arch(&a);
    eng_model *m = NULL, *u = NULL, *mt = NULL, *ut = NULL;
    assert_int_equal(eng_model_create(&m, be(), &a, P, 9), ENG_OK);
    assert_int_equal(eng_model_create_padded(&u, be(), &a, P, 9, 1), ENG_OK);
    assert_int_equal(eng_model_create(&mt, be(), &a, P, 10), ENG_OK);
    assert_int_equal(eng_model_create_padded(&ut, be(), &a, P, 10, 1), ENG_OK);
    for (int t = 0; t < 6; t++) {
        step_both(m, u, t);
        /* target networks: Polyak and hard copies */
        assert_int_equal(eng_model_polyak(mt, m, 0.1f), ENG_OK);
        assert_int_equal(eng_model_polyak(ut, u, 0.1f), ENG_OK);
        if (t == 3) {
            assert_int_equal(eng_model_copy_params(mt, m), ENG_OK);
            assert_int_equal(eng_model_copy_params(ut, u), ENG_OK);
        }
        assert_views_equal(mt, ut);
    }
    /* asynchronous statistics and the parameter scan */
    float l1[P], l2[P], g1[P], g2[P];
    assert_int_equal(eng_model_stats_post(m, 1), ENG_OK);
    assert_int_equal(eng_model_stats_post(u, 1), ENG_OK);
    assert_int_equal(eng_model_stats_fetch(m, l1, g1, NULL), 0);
    assert_int_equal(eng_model_stats_fetch(u, l2, g2, NULL), 0);
    assert_memory_equal(l1, l2, sizeof l1);
    assert_memory_equal(g1, g2, sizeof g1);
    assert_pad_zero(m);
    assert_pad_zero(mt);
    /* a poisoned product is found in both layouts, and the pad stays clean */
    float *nanp = malloc(eng_model_nparams(m) * sizeof(float));
    assert_non_null(nanp);
    for (size_t k = 0; k < eng_model_nparams(m); k++) nanp[k] = NAN;
    assert_int_equal(eng_model_set_product(m, ENG_VIEW_PARAMS, 1, nanp), ENG_OK);
    assert_int_equal(eng_model_set_product(u, ENG_VIEW_PARAMS, 1, nanp), ENG_OK);
    unsigned char b1[P], b2[P];
    assert_int_equal(eng_model_check_finite(m, b1), 1);
    assert_int_equal(eng_model_check_finite(u, b2), 1);
    assert_memory_equal(b1, b2, sizeof b1);
    assert_true(b1[1] == 1 && b1[0] == 0 && b1[2] == 0);
    assert_pad_zero(m);
    free(nanp);
    eng_model_free(m);
    eng_model_free(u);
    eng_model_free(mt);
    eng_model_free(ut);
}

static void ckpt_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/pad_%d_%s.h5", test_tmpdir(), (int)getpid(), name);
}

static void test_pad_checkpoint(void **s) {
    (void)s;
    eng_arch a;
    make_arch(&a);
    eng_model *m = NULL, *u = NULL, *lm = NULL, *lu = NULL;
    assert_int_equal(eng_model_create(&m, be(), &a, P, 21), ENG_OK);
    assert_int_equal(eng_model_create_padded(&u, be(), &a, P, 21, 1), ENG_OK);
    for (int t = 0; t < 3; t++) step_both(m, u, t);
    char pm[512], pu[512];
    ckpt_path(pm, sizeof pm, "padded");
    ckpt_path(pu, sizeof pu, "unpadded");
    assert_int_equal(eng_ckpt_save(m, pm, NULL, "pad"), ENG_OK);
    assert_int_equal(eng_ckpt_save(u, pu, NULL, "pad"), ENG_OK);
    /* both files load to the saved model (padded on load), and to each other */
    assert_int_equal(eng_ckpt_load(&lm, be(), pm, NULL, NULL), ENG_OK);
    assert_int_equal(eng_ckpt_load(&lu, be(), pu, NULL, NULL), ENG_OK);
    assert_int_equal(eng_model_stride(lm), 7648);
    assert_int_equal(eng_model_stride(lu), 7648);
    views_equal(lm, m, 0); /* checkpoints do not hold gradients */
    views_equal(lu, u, 0);
    assert_views_equal(lm, lu);
    assert_pad_zero(lm);
    /* the loaded model continues exactly like the one saved */
    for (int t = 3; t < 5; t++) {
        step_both(m, u, t);
        step_both(lm, lu, t);
        assert_views_equal(lm, m);
    }
    unlink(pm);
    unlink(pu);
    eng_model_free(m);
    eng_model_free(u);
    eng_model_free(lm);
    eng_model_free(lu);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_stride),
        cmocka_unit_test(test_pad_identical),
        cmocka_unit_test(test_pad_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
