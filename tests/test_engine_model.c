/* tests/test_engine_model.c - model groups on the CPU backend: Adam against an independent
 * reference, clipping and masks, group == P single models, determinism, target-network
 * updates, divergence checks, views and backend selection. */
#include "test_common.h"
#include "eng_model.h"

static const eng_backend *cpu(void) { return eng_backend_cpu(); }

static void fill_uniform(eng_rng *r, float *x, size_t n, double lo, double hi) {
    for (size_t k = 0; k < n; k++) x[k] = (float)(lo + (hi - lo) * eng_rng_uniform(r));
}

/* ---- Adam against tests/ref/adam_ref.py ------------------------------------------------
 * The expected values below are the printed output of `python3 tests/ref/adam_ref.py`
 * (plain Python, double precision, written independently of the C code): a 2 -> 2
 * identity layer, MSE, Adam lr 0.05, 3 steps, without clipping and with clip_norm 0.1.
 * The engine runs in float, so parameters match to 2e-6 and norms to 1e-5 relative. */
static const double ref_norm[2][3] = {{0.564187223, 0.42804822, 0.328975187}, {0.564187223, 0.428048227, 0.328451361}};
static const double ref_params[2][3][6] = {
    {{0.549999998, -0.250000002, 0.150000009, 0.449999998, 0.149999999, -0.249999992},
     {0.598781075, -0.205169038, 0.101339397, 0.499819005, 0.199224622, -0.297689863},
     {0.644758131, -0.175857862, 0.0557909135, 0.549283404, 0.246816211, -0.339574958}},
    {{0.549999986, -0.250000013, 0.150000049, 0.449999991, 0.149999992, -0.249999953},
     {0.599852576, -0.203099764, 0.100202119, 0.500032186, 0.200011978, -0.299240611},
     {0.648717879, -0.177008697, 0.0517298239, 0.550147775, 0.249832461, -0.343817057}}};

static void test_adam_reference(void **s) {
    (void)s;
    const float X[6] = {1.0f, 2.0f, -1.0f, 0.5f, 0.3f, -0.7f};
    const float T[6] = {0.5f, 1.0f, -0.5f, 0.0f, 1.0f, -1.0f};
    const float P0[6] = {0.5f, -0.3f, 0.2f, 0.4f, 0.1f, -0.2f};
    for (int c = 0; c < 2; c++) {
        eng_arch a;
        assert_int_equal(eng_arch_mlp(&a, (int[]){2, 2}, 2, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
        eng_model *m = NULL;
        assert_int_equal(eng_model_create(&m, cpu(), &a, 1, 1), ENG_OK);
        assert_int_equal(eng_model_set(m, ENG_VIEW_PARAMS, P0), ENG_OK);
        eng_adam_cfg cfg = eng_adam_default();
        cfg.lr = 0.05f;
        cfg.clip_norm = c ? 0.1f : 0.0f;
        for (int t = 0; t < 3; t++) {
            float loss, norm, p[6];
            assert_int_equal(eng_model_zero_grad(m), ENG_OK);
            assert_int_equal(eng_model_forward(m, X, 3, NULL), ENG_OK);
            assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_MSE, 0, T, NULL, &loss), ENG_OK);
            assert_int_equal(eng_model_adam_step(m, &cfg, NULL, &norm), ENG_OK);
            assert_close(norm, ref_norm[c][t], 0, 1e-5);
            assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, p), ENG_OK);
            for (int k = 0; k < 6; k++) assert_close(p[k], ref_params[c][t][k], 2e-6, 0);
        }
        assert_int_equal(eng_model_step(m), 3);
        eng_model_free(m);
    }
}

/* Defaults as documented. */
static void test_adam_default(void **s) {
    (void)s;
    eng_adam_cfg c = eng_adam_default();
    assert_true(c.lr == 1e-3f && c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f && c.clip_norm == 0.0f);
    c.beta1 = 1.0f;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){2, 2}, 2, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, cpu(), &a, 1, 1), ENG_OK);
    assert_int_equal(eng_model_adam_step(m, &c, NULL, NULL), ENG_EINVAL);
    assert_int_equal(eng_model_step(m), 0);
    eng_model_free(m);
}

/* Clipping scales each product's gradient to norm <= clip_norm independently, and the
 * mask leaves masked products' params AND moments untouched. */
static void test_clip_and_mask(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){3, 4, 2}, 3, ENG_ACT_TANH, ENG_ACT_IDENTITY), ENG_OK);
    const int P = 3, B = 4;
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, cpu(), &a, P, 11), ENG_OK);
    size_t np = eng_model_nparams(m);
    float X[3 * 4 * 3], T[3 * 4 * 2];
    eng_rng r;
    eng_rng_seed(&r, 5);
    fill_uniform(&r, X, sizeof X / sizeof *X, -1, 1);
    fill_uniform(&r, T, sizeof T / sizeof *T, -1, 1);
    for (int k = 0; k < 8; k++) T[8 + k] *= 50.0f; /* product 1 gets a huge gradient */
    float *before = malloc(sizeof(float) * P * np), *after = malloc(sizeof(float) * P * np);
    float *g = malloc(sizeof(float) * P * np), *mom = malloc(sizeof(float) * P * np);
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, before), ENG_OK);
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_forward(m, X, B, NULL), ENG_OK);
    assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_MSE, 0, T, NULL, NULL), ENG_OK);
    eng_adam_cfg cfg = eng_adam_default();
    cfg.clip_norm = 1.0f;
    float norms[3];
    const unsigned char mask[3] = {1, 1, 0};
    assert_int_equal(eng_model_adam_step(m, &cfg, mask, norms), ENG_OK);
    assert_true(norms[1] > 10.0f); /* reported before clipping */
    /* the stored gradients were clipped per product */
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g), ENG_OK);
    for (int p = 0; p < P; p++) {
        double ss = 0;
        for (size_t k = 0; k < np; k++) ss += (double)g[p * np + k] * g[p * np + k];
        if (norms[p] > 1.0f) assert_close(sqrt(ss), 1.0, 1e-5, 0);
        else assert_close(sqrt(ss), norms[p], 1e-6, 1e-5);
    }
    /* masked product 2: params identical, moments still zero; others moved */
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, after), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_ADAM_M, mom), ENG_OK);
    assert_memory_equal(after + 2 * np, before + 2 * np, np * sizeof(float));
    for (size_t k = 0; k < np; k++) assert_true(mom[2 * np + k] == 0.0f);
    for (int p = 0; p < 2; p++) assert_memory_not_equal(after + p * np, before + p * np, np * sizeof(float));
    /* first Adam step moves each weight by ~lr regardless of gradient scale (clipped or not) */
    double maxstep = 0;
    for (size_t k = 0; k < 2 * np; k++) maxstep = fmax(maxstep, fabs(after[k] - before[k]));
    assert_close(maxstep, 1e-3, 1e-6, 0);
    eng_model_free(m);
    free(before); free(after); free(g); free(mom);
}

/* ---- a group of P networks equals P single networks trained one by one ----------------
 * On the CPU backend the group runs exactly the same sgemm calls (same M, N, K, lda) per
 * product as a P = 1 model does, and every other op is elementwise or a per-product
 * reduction in the same order, so the results are required to be BIT-IDENTICAL.
 * (On CUDA the batched kernels may sum in another order; there 1e-6 would be the bar.) */
static void train_steps(eng_model *m, const float *X, const float *T, const float *W, int B, int steps,
                        const unsigned char *mask) {
    eng_adam_cfg cfg = eng_adam_default();
    cfg.lr = 1e-2f;
    cfg.clip_norm = 0.5f;
    for (int t = 0; t < steps; t++) {
        assert_int_equal(eng_model_zero_grad(m), ENG_OK);
        assert_int_equal(eng_model_forward(m, X, B, NULL), ENG_OK);
        assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_HUBER, 1.0f, T, W, NULL), ENG_OK);
        assert_int_equal(eng_model_adam_step(m, &cfg, mask, NULL), ENG_OK);
    }
}

static void test_group_equals_singles(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){6, 16, 12, 4}, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    const int P = 4, B = 8, in = 6, out = 4, steps = 5;
    const uint64_t seed = 2024;
    eng_rng r;
    eng_rng_seed(&r, 77);
    float *X = malloc(sizeof(float) * P * B * in), *T = malloc(sizeof(float) * P * B * out);
    float *W = malloc(sizeof(float) * P * B * out);
    fill_uniform(&r, X, (size_t)P * B * in, -1, 1);
    fill_uniform(&r, T, (size_t)P * B * out, -2, 2);
    fill_uniform(&r, W, (size_t)P * B * out, 0, 1);
    eng_model *g = NULL;
    assert_int_equal(eng_model_create(&g, cpu(), &a, P, seed), ENG_OK);
    train_steps(g, X, T, W, B, steps, NULL);
    size_t np = eng_model_nparams(g);
    float *gp = malloc(sizeof(float) * P * np), *sp = malloc(sizeof(float) * np);
    float *gy = malloc(sizeof(float) * P * B * out), *sy = malloc(sizeof(float) * B * out);
    assert_int_equal(eng_model_get(g, ENG_VIEW_PARAMS, gp), ENG_OK);
    assert_int_equal(eng_model_forward(g, X, B, gy), ENG_OK);
    for (int p = 0; p < P; p++) {
        /* product p of the group and a P = 1 model created at product index p draw the
         * same initial weights (stream eng_seed_derive(seed, p)) */
        eng_model *one = NULL;
        assert_int_equal(eng_model_create_at(&one, cpu(), &a, 1, seed, p), ENG_OK);
        train_steps(one, X + (size_t)p * B * in, T + (size_t)p * B * out, W + (size_t)p * B * out, B, steps, NULL);
        assert_int_equal(eng_model_get(one, ENG_VIEW_PARAMS, sp), ENG_OK);
        assert_memory_equal(sp, gp + (size_t)p * np, np * sizeof(float));
        assert_int_equal(eng_model_forward(one, X + (size_t)p * B * in, B, sy), ENG_OK);
        assert_memory_equal(sy, gy + (size_t)p * B * out, (size_t)B * out * sizeof(float));
        eng_model_free(one);
    }
    eng_model_free(g);
    free(X); free(T); free(W); free(gp); free(sp); free(gy); free(sy);
}

/* The CPU backend splits large groups across threads by product (eng_cpu_set_threads): the
 * pricing-network shape at P = 8, batch 64 is above the split thresholds for every op, so
 * a 2-thread group must still equal single networks run on 1 thread, bit for bit, and a
 * masked product must stay untouched. */
static void test_group_threads_equal_singles(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){32, 256, 256, 21}, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    const int P = 8, B = 64, in = 32, out = 21, steps = 3;
    const uint64_t seed = 99;
    eng_rng r;
    eng_rng_seed(&r, 78);
    float *X = malloc(sizeof(float) * P * B * in), *T = malloc(sizeof(float) * P * B * out);
    float *W = malloc(sizeof(float) * P * B * out);
    fill_uniform(&r, X, (size_t)P * B * in, -1, 1);
    fill_uniform(&r, T, (size_t)P * B * out, -2, 2);
    fill_uniform(&r, W, (size_t)P * B * out, 0, 1);
    unsigned char mask[8] = {1, 1, 1, 0, 1, 1, 1, 1};
    eng_model *g = NULL, *init = NULL;
    assert_int_equal(eng_cpu_set_threads(2), ENG_OK);
    assert_int_equal(eng_cpu_threads(), 2);
    assert_int_equal(eng_model_create(&g, cpu(), &a, P, seed), ENG_OK);
    assert_int_equal(eng_model_create(&init, cpu(), &a, P, seed), ENG_OK);
    train_steps(g, X, T, W, B, steps, mask);
    size_t np = eng_model_nparams(g);
    float *gp = malloc(sizeof(float) * P * np), *sp = malloc(sizeof(float) * np);
    float *ip = malloc(sizeof(float) * P * np);
    assert_int_equal(eng_model_get(g, ENG_VIEW_PARAMS, gp), ENG_OK);
    assert_int_equal(eng_model_get(init, ENG_VIEW_PARAMS, ip), ENG_OK);
    assert_int_equal(eng_cpu_set_threads(1), ENG_OK);
    for (int p = 0; p < P; p++) {
        eng_model *one = NULL;
        assert_int_equal(eng_model_create_at(&one, cpu(), &a, 1, seed, p), ENG_OK);
        train_steps(one, X + (size_t)p * B * in, T + (size_t)p * B * out, W + (size_t)p * B * out, B, steps,
                    mask + p);
        assert_int_equal(eng_model_get(one, ENG_VIEW_PARAMS, sp), ENG_OK);
        assert_memory_equal(sp, gp + (size_t)p * np, np * sizeof(float));
        if (!mask[p]) assert_memory_equal(sp, ip + (size_t)p * np, np * sizeof(float)); /* untouched */
        else assert_memory_not_equal(sp, ip + (size_t)p * np, np * sizeof(float));
        eng_model_free(one);
    }
    assert_int_equal(eng_cpu_set_threads(0), ENG_OK);
    assert_int_equal(eng_cpu_set_threads(-1), ENG_EINVAL);
    eng_model_free(g);
    eng_model_free(init);
    free(X); free(T); free(W); free(gp); free(sp); free(ip);
}

/* eng_model_infer gives forward's outputs bit for bit and leaves the cached activations
 * alone: infer on other data between a forward and its backward changes no gradient. */
static void test_infer(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){5, 9, 7, 3}, 4, ENG_ACT_TANH, ENG_ACT_IDENTITY), ENG_OK);
    const int P = 3, B = 6;
    eng_rng r;
    eng_rng_seed(&r, 5);
    float X[3 * 6 * 5], X2[3 * 6 * 5], T[3 * 6 * 3], Y1[3 * 6 * 3], Y2[3 * 6 * 3];
    fill_uniform(&r, X, sizeof X / sizeof X[0], -1, 1);
    fill_uniform(&r, X2, sizeof X2 / sizeof X2[0], -1, 1);
    fill_uniform(&r, T, sizeof T / sizeof T[0], -1, 1);
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, cpu(), &a, P, 8), ENG_OK);
    size_t np = eng_model_nparams(m);
    float *g1 = malloc(sizeof(float) * P * np), *g2 = malloc(sizeof(float) * P * np);
    /* reference gradients: forward + backward */
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_forward(m, X, B, Y1), ENG_OK);
    assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_MSE, 1.0f, T, NULL, NULL), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g1), ENG_OK);
    /* infer == forward */
    assert_int_equal(eng_model_infer(m, X, B, Y2), ENG_OK);
    assert_memory_equal(Y1, Y2, sizeof Y1);
    /* forward, infer on X2 (smaller batch too), backward: same gradients */
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_forward(m, X, B, NULL), ENG_OK);
    assert_int_equal(eng_model_infer(m, X2, B, Y2), ENG_OK);
    assert_int_equal(eng_model_infer(m, X2, 2, Y2), ENG_OK);
    assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_MSE, 1.0f, T, NULL, NULL), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g2), ENG_OK);
    assert_memory_equal(g1, g2, sizeof(float) * P * np);
    assert_int_equal(eng_model_infer(m, X, 0, Y2), ENG_EINVAL);
    assert_int_equal(eng_model_infer(m, X, B, NULL), ENG_EINVAL);
    eng_model_free(m);
    free(g1);
    free(g2);
}

/* eng_model_backward_input gives eng_model_backward's dX bit for bit and leaves the
 * parameter gradients exactly as they were (here: a previous step's gradients). */
static void test_backward_input(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){5, 9, 7, 2}, 4, ENG_ACT_RELU, ENG_ACT_TANH), ENG_OK);
    const int P = 3, B = 6;
    eng_rng r;
    eng_rng_seed(&r, 11);
    float X[3 * 6 * 5], T[3 * 6 * 2], dY[3 * 6 * 2], dX1[3 * 6 * 5], dX2[3 * 6 * 5];
    fill_uniform(&r, X, sizeof X / sizeof X[0], -1, 1);
    fill_uniform(&r, T, sizeof T / sizeof T[0], -1, 1);
    fill_uniform(&r, dY, sizeof dY / sizeof dY[0], -1, 1);
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, cpu(), &a, P, 12), ENG_OK);
    size_t np = eng_model_nparams(m);
    float *g1 = malloc(sizeof(float) * P * np), *g2 = malloc(sizeof(float) * P * np);
    /* some gradients in the view */
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_forward(m, X, B, NULL), ENG_OK);
    assert_int_equal(eng_model_loss_backward(m, ENG_LOSS_MSE, 1.0f, T, NULL, NULL), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g1), ENG_OK);
    /* input gradient only: grads untouched */
    memset(dX2, 0, sizeof dX2);
    assert_int_equal(eng_model_backward_input(m, dY, dX2), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g2), ENG_OK);
    assert_memory_equal(g1, g2, sizeof(float) * P * np);
    /* full backward: same dX, and its parameter gradients are added */
    assert_int_equal(eng_model_backward(m, dY, dX1), ENG_OK);
    assert_memory_equal(dX1, dX2, sizeof dX1);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g2), ENG_OK);
    assert_memory_not_equal(g1, g2, sizeof(float) * P * np);
    /* a lazily zeroed view stays zero */
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_backward_input(m, dY, dX2), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g2), ENG_OK);
    for (size_t k = 0; k < P * np; k++) assert_true(g2[k] == 0.0f);
    assert_memory_equal(dX1, dX2, sizeof dX1);
    assert_int_equal(eng_model_backward_input(m, dY, NULL), ENG_EINVAL);
    eng_model *fresh = NULL;
    assert_int_equal(eng_model_create(&fresh, cpu(), &a, P, 12), ENG_OK);
    assert_int_equal(eng_model_backward_input(fresh, dY, dX2), ENG_EINVAL); /* no forward */
    eng_model_free(fresh);
    eng_model_free(m);
    free(g1);
    free(g2);
}

/* Product 0 of any group is initialised like a P = 1 model with the same seed, and
 * product p of a group is the same whatever P is (streams are per product). */
static void test_init_per_product_streams(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){8, 10, 3}, 3, ENG_ACT_RELU, ENG_ACT_TANH), ENG_OK);
    eng_model *g3 = NULL, *g5 = NULL, *one = NULL;
    assert_int_equal(eng_model_create(&g3, cpu(), &a, 3, 9), ENG_OK);
    assert_int_equal(eng_model_create(&g5, cpu(), &a, 5, 9), ENG_OK);
    assert_int_equal(eng_model_create(&one, cpu(), &a, 1, 9), ENG_OK);
    size_t np = eng_model_nparams(one);
    float *x = malloc(sizeof(float) * np), *y = malloc(sizeof(float) * np);
    for (int p = 0; p < 3; p++) {
        assert_int_equal(eng_model_get_product(g3, ENG_VIEW_PARAMS, p, x), ENG_OK);
        assert_int_equal(eng_model_get_product(g5, ENG_VIEW_PARAMS, p, y), ENG_OK);
        assert_memory_equal(x, y, np * sizeof(float));
    }
    assert_int_equal(eng_model_get_product(g3, ENG_VIEW_PARAMS, 0, x), ENG_OK);
    assert_int_equal(eng_model_get(one, ENG_VIEW_PARAMS, y), ENG_OK);
    assert_memory_equal(x, y, np * sizeof(float));
    /* He-uniform limits: layer 0 (ReLU, fan_in 8) within sqrt(6/8); layer 1 (tanh) within
     * sqrt(6/13); biases 0; layer 0 weights spread over most of the range */
    double lim0 = sqrt(6.0 / 8), lim1 = sqrt(6.0 / 13), mx = 0;
    for (int k = 0; k < 80; k++) {
        assert_true(fabs(y[k]) <= lim0);
        mx = fmax(mx, fabs(y[k]));
    }
    assert_true(mx > 0.8 * lim0);
    for (int k = 80; k < 90; k++) assert_true(y[k] == 0.0f);
    for (int k = 90; k < 120; k++) assert_true(fabs(y[k]) <= lim1);
    for (int k = 120; k < 123; k++) assert_true(y[k] == 0.0f);
    assert_int_equal(np, 123);
    assert_int_equal(eng_model_get_product(g3, ENG_VIEW_PARAMS, 3, x), ENG_EINVAL);
    eng_model_free(g3); eng_model_free(g5); eng_model_free(one);
    free(x); free(y);
}

/* Same seed twice -> identical parameters after N steps; a different seed -> different. */
static void test_determinism(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){5, 12, 3}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    const int P = 3, B = 6;
    float X[3 * 6 * 5], T[3 * 6 * 3];
    eng_rng r;
    eng_rng_seed(&r, 1);
    fill_uniform(&r, X, sizeof X / sizeof *X, -1, 1);
    fill_uniform(&r, T, sizeof T / sizeof *T, -1, 1);
    float *res[3];
    const uint64_t seeds[3] = {42, 42, 43};
    size_t np = 0;
    for (int i = 0; i < 3; i++) {
        eng_model *m = NULL;
        assert_int_equal(eng_model_create(&m, cpu(), &a, P, seeds[i]), ENG_OK);
        np = eng_model_nparams(m);
        train_steps(m, X, T, NULL, B, 20, NULL);
        res[i] = malloc(sizeof(float) * P * np);
        assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, res[i]), ENG_OK);
        eng_model_free(m);
    }
    assert_memory_equal(res[0], res[1], P * np * sizeof(float));
    int differ = 0;
    for (size_t k = 0; k < P * np; k++) differ += res[0][k] != res[2][k];
    assert_true(differ > (int)(P * np / 2));
    for (int i = 0; i < 3; i++) free(res[i]);
}

/* Hard copy and Polyak averaging of target networks; shape mismatch is refused. */
static void test_polyak_copy(void **s) {
    (void)s;
    eng_arch a, b;
    assert_int_equal(eng_arch_mlp(&a, (int[]){4, 5, 2}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    assert_int_equal(eng_arch_mlp(&b, (int[]){4, 6, 2}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    eng_model *src = NULL, *dst = NULL, *other = NULL;
    assert_int_equal(eng_model_create(&src, cpu(), &a, 2, 1), ENG_OK);
    assert_int_equal(eng_model_create(&dst, cpu(), &a, 2, 2), ENG_OK);
    assert_int_equal(eng_model_create(&other, cpu(), &b, 2, 2), ENG_OK);
    size_t n = 2 * eng_model_nparams(src);
    float *ps = malloc(sizeof(float) * n), *pd = malloc(sizeof(float) * n), *pr = malloc(sizeof(float) * n);
    assert_int_equal(eng_model_get(src, ENG_VIEW_PARAMS, ps), ENG_OK);
    assert_int_equal(eng_model_get(dst, ENG_VIEW_PARAMS, pd), ENG_OK);
    assert_int_equal(eng_model_polyak(dst, src, 0.25f), ENG_OK);
    assert_int_equal(eng_model_get(dst, ENG_VIEW_PARAMS, pr), ENG_OK);
    for (size_t k = 0; k < n; k++) assert_close(pr[k], 0.25 * ps[k] + 0.75 * pd[k], 1e-7, 1e-6);
    assert_int_equal(eng_model_copy_params(dst, src), ENG_OK);
    assert_int_equal(eng_model_get(dst, ENG_VIEW_PARAMS, pr), ENG_OK);
    assert_memory_equal(pr, ps, n * sizeof(float));
    assert_int_equal(eng_model_polyak(dst, other, 0.5f), ENG_EINVAL);
    assert_int_equal(eng_model_copy_params(dst, other), ENG_EINVAL);
    assert_int_equal(eng_model_polyak(dst, src, 1.5f), ENG_EINVAL);
    eng_model_free(src); eng_model_free(dst); eng_model_free(other);
    free(ps); free(pd); free(pr);
}

/* check_finite flags exactly the products holding a NaN or Inf. */
static void test_check_finite(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){4, 5, 2}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, cpu(), &a, 5, 1), ENG_OK);
    size_t np = eng_model_nparams(m);
    unsigned char bad[5];
    assert_int_equal(eng_model_check_finite(m, bad), 0);
    float *w = malloc(sizeof(float) * np);
    assert_int_equal(eng_model_get_product(m, ENG_VIEW_PARAMS, 3, w), ENG_OK);
    w[np - 1] = NAN;
    assert_int_equal(eng_model_set_product(m, ENG_VIEW_PARAMS, 3, w), ENG_OK);
    assert_int_equal(eng_model_check_finite(m, bad), 1);
    for (int p = 0; p < 5; p++) assert_int_equal(bad[p], p == 3);
    assert_int_equal(eng_model_get_product(m, ENG_VIEW_PARAMS, 0, w), ENG_OK);
    w[0] = INFINITY;
    assert_int_equal(eng_model_set_product(m, ENG_VIEW_PARAMS, 0, w), ENG_OK);
    assert_int_equal(eng_model_check_finite(m, bad), 2);
    for (int p = 0; p < 5; p++) assert_int_equal(bad[p], p == 3 || p == 0);
    /* large but finite values are not flagged */
    assert_int_equal(eng_model_get_product(m, ENG_VIEW_PARAMS, 0, w), ENG_OK);
    for (size_t k = 0; k < np; k++) w[k] = 3e38f;
    assert_int_equal(eng_model_set_product(m, ENG_VIEW_PARAMS, 0, w), ENG_OK);
    assert_int_equal(eng_model_check_finite(m, bad), 1);
    assert_int_equal(bad[0], 0);
    eng_model_free(m);
    free(w);
}

/* Views round-trip and are separate; step counter set/get; batch size can change. */
static void test_views_and_batches(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){3, 4, 2}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, cpu(), &a, 2, 1), ENG_OK);
    size_t n = 2 * eng_model_nparams(m);
    float *buf = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    for (eng_view v = ENG_VIEW_PARAMS; v <= ENG_VIEW_ADAM_V; v++) {
        for (size_t k = 0; k < n; k++) buf[k] = (float)(v * 1000 + k);
        assert_int_equal(eng_model_set(m, v, buf), ENG_OK);
    }
    for (eng_view v = ENG_VIEW_PARAMS; v <= ENG_VIEW_ADAM_V; v++) {
        assert_int_equal(eng_model_get(m, v, got), ENG_OK);
        for (size_t k = 0; k < n; k++) assert_true(got[k] == (float)(v * 1000 + k));
    }
    assert_int_equal(eng_model_get(m, (eng_view)4, got), ENG_EINVAL);
    eng_model_set_step(m, 17);
    assert_int_equal(eng_model_step(m), 17);
    /* outputs for a row do not depend on the batch it is in (buffers regrow / shrink) */
    eng_rng r;
    eng_rng_seed(&r, 4);
    float X[2 * 9 * 3], Y9[2 * 9 * 2], Y1[2 * 2];
    fill_uniform(&r, buf, n, -0.5, 0.5);
    assert_int_equal(eng_model_set(m, ENG_VIEW_PARAMS, buf), ENG_OK);
    fill_uniform(&r, X, sizeof X / sizeof *X, -1, 1);
    float X1[2 * 3];
    memcpy(X1, X, 3 * sizeof(float));            /* product 0, row 0 */
    memcpy(X1 + 3, X + 9 * 3, 3 * sizeof(float)); /* product 1, row 0 */
    assert_int_equal(eng_model_forward(m, X1, 1, Y1), ENG_OK);
    assert_int_equal(eng_model_forward(m, X, 9, Y9), ENG_OK);
    assert_close(Y9[0], Y1[0], 1e-6, 1e-5);
    assert_close(Y9[1], Y1[1], 1e-6, 1e-5);
    assert_close(Y9[18], Y1[2], 1e-6, 1e-5);
    assert_close(Y9[19], Y1[3], 1e-6, 1e-5);
    assert_int_equal(eng_model_forward(m, X1, 1, Y1), ENG_OK);
    assert_close(Y9[18], Y1[2], 1e-6, 1e-5);
    eng_model_free(m);
    free(buf);
    free(got);
}

/* Device selection without CUDA: auto -> cpu, cuda -> ENG_EDEVICE with a reason. */
static void test_backend_select(void **s) {
    (void)s;
    const eng_backend *be = NULL;
    assert_int_equal(eng_backend_select("cpu", &be), ENG_OK);
    assert_ptr_equal(be, eng_backend_cpu());
    assert_string_equal(be->name, "cpu");
    assert_int_equal(eng_backend_select("gpu0", &be), ENG_EINVAL);
    assert_null(be);
    assert_true(strstr(eng_err_msg(), "gpu0") != NULL);
    const eng_backend *cuda = NULL;
    int rc = eng_backend_cuda(&cuda);
    assert_int_equal(eng_backend_select("auto", &be), ENG_OK);
    assert_non_null(be);
    if (rc != ENG_OK) {
        assert_int_equal(rc, ENG_EDEVICE);
        assert_null(cuda);
        assert_ptr_equal(be, eng_backend_cpu());
        assert_int_equal(eng_backend_select("cuda", &be), ENG_EDEVICE);
        assert_null(be);
        assert_true(strstr(eng_err_msg(), "cuda") != NULL);
    } else {
        assert_int_equal(be->kind, ENG_BACKEND_CUDA);
    }
    assert_non_null(eng_cuda_describe());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_reference),
        cmocka_unit_test(test_adam_default),
        cmocka_unit_test(test_clip_and_mask),
        cmocka_unit_test(test_group_equals_singles),
        cmocka_unit_test(test_group_threads_equal_singles),
        cmocka_unit_test(test_infer),
        cmocka_unit_test(test_backward_input),
        cmocka_unit_test(test_init_per_product_streams),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_polyak_copy),
        cmocka_unit_test(test_check_finite),
        cmocka_unit_test(test_views_and_batches),
        cmocka_unit_test(test_backend_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
