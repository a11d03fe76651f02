/* tests/test_backend_parity.c - the CUDA backend against the CPU reference, op by op, plus
 * a model-level check (forward, loss/backward, Adam steps with a mask and clipping).
 *
 * Every op runs on the same random inputs on both backends; results are compared
 * elementwise with |cuda - cpu| <= atol + rtol * |cpu|:
 *   elementwise ops (fill, copy, scale, polyak, act_backward, identity/relu bias_act): exact
 *     up to one float rounding (atol 1e-6, rtol 1e-6);
 *   tanh (device tanhf vs glibc tanhf, a few ulp): atol 1e-6, rtol 1e-5;
 *   GEMM (different summation order): atol 1e-5 * K, rtol 1e-4;
 *   reductions (bias_grad, loss, sumsq; CUDA sums in double): atol 1e-5, rtol 1e-5;
 *   Adam (nvcc contracts into FMAs): atol 1e-6, rtol 1e-5;
 *   model after 5 training steps: atol 1e-4, rtol 1e-3.
 *   non-finite inputs (NaN, +-Inf): the same class on both (NaN where the CPU has NaN, the
 *     same infinity, finite values as above), e.g. ReLU backward selects 0 where the unit was
 *     off whatever dY holds;
 *   the device-resident ops (sumsq_dev, loss_dev, adam_clip, dqn_targets) as their host
 *     counterparts (the DQN and DDPG group steps: tests/test_backend_parity_agents.c).
 * Without a usable CUDA device each parity test prints one "SKIP: no CUDA device (...)"
 * line and calls skip(); the backend-selection test never skips. */
#include "test_common.h"
#include "test_cuda.h"
#include "eng_model.h"

static float *host_rand(eng_rng *r, size_t n, double lo, double hi) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t k = 0; k < n; k++) x[k] = (float)(lo + (hi - lo) * eng_rng_uniform(r));
    return x;
}

/* A backend buffer holding a copy of host[n]. */
static float *upload(const eng_backend *be, const float *host, size_t n) {
    float *d = NULL;
    assert_int_equal(be->alloc(&d, n), ENG_OK);
    assert_int_equal(be->to_device(d, host, n), ENG_OK);
    return d;
}

/* Host copy (caller frees) of a backend buffer. */
static float *download(const eng_backend *be, const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(h);
    assert_int_equal(be->sync(), ENG_OK);
    assert_int_equal(be->to_host(h, d, n), ENG_OK);
    return h;
}

/* As expect_close, but NaN must meet NaN and an infinity the same infinity. */
static void expect_close_nf(const char *what, const float *cuda, const float *ref, size_t n, double atol,
                            double rtol) {
    for (size_t k = 0; k < n; k++) {
        double a = cuda[k], b = ref[k];
        if (isnan(b) || isnan(a)) {
            if (!(isnan(a) && isnan(b))) fail_msg("%s[%zu]: cuda %.9g, cpu %.9g (NaN on one side)", what, k, a, b);
        } else if (isinf(b) || isinf(a)) {
            if (a != b) fail_msg("%s[%zu]: cuda %.9g, cpu %.9g (infinities differ)", what, k, a, b);
        } else if (!(fabs(a - b) <= atol + rtol * fabs(b))) {
            fail_msg("%s[%zu]: cuda %.9g, cpu %.9g (atol %g, rtol %g)", what, k, a, b, atol, rtol);
        }
    }
}

/* Both backends' copies of one host array. */
typedef struct {
    float *c, *g; /* cpu buffer, cuda buffer */
    size_t n;
} pair;

static pair pair_of(const float *host, size_t n) {
    pair p = {upload(cpu(), host, n), upload(g_cuda, host, n), n};
    return p;
}

static void pair_expect(const char *what, const pair *p, double atol, double rtol) {
    float *h = download(g_cuda, p->g, p->n);
    expect_close(what, h, p->c, p->n, atol, rtol);
    free(h);
}

static void pair_expect_nf(const char *what, const pair *p, double atol, double rtol) {
    float *h = download(g_cuda, p->g, p->n);
    expect_close_nf(what, h, p->c, p->n, atol, rtol);
    free(h);
}

static void pair_free(pair *p) {
    cpu()->free(p->c);
    g_cuda->free(p->g);
}

/* ---- memory ops ------------------------------------------------------------------------ */

static void test_fill_copy(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 1);
    const size_t n = 100003; /* more than one block, not a multiple of 256 */
    float *h = host_rand(&r, n, -3, 3);
    /* to_device / to_host round trip is exact, and alloc zero-fills */
    float *z = NULL;
    assert_int_equal(g_cuda->alloc(&z, n), ENG_OK);
    float *hz = download(g_cuda, z, n);
    for (size_t k = 0; k < n; k++) assert_true(hz[k] == 0.0f);
    pair p = pair_of(h, n);
    pair_expect("round trip", &p, 0, 0);
    /* device -> device copy of a middle slice */
    assert_int_equal(g_cuda->copy(z + 5, p.g + 7, n - 20), ENG_OK);
    assert_int_equal(cpu()->copy(hz + 5, p.c + 7, n - 20), ENG_OK);
    float *hz2 = download(g_cuda, z, n);
    expect_close("copy", hz2, hz, n, 0, 0);
    /* fill a slice */
    assert_int_equal(g_cuda->fill(p.g + 3, 2.5f, n - 10), ENG_OK);
    assert_int_equal(cpu()->fill(p.c + 3, 2.5f, n - 10), ENG_OK);
    pair_expect("fill", &p, 0, 0);
    pair_free(&p);
    g_cuda->free(z);
    free(h);
    free(hz);
    free(hz2);
}

/* ---- GEMM ------------------------------------------------------------------------------- */

static void gemm_case(eng_rng *r, int tA, int tB, int M, int N, int K, int batch) {
    /* stored shapes with padded leading dimensions and gaps between batch items */
    int rowsA = tA ? K : M, colsA = tA ? M : K, rowsB = tB ? N : K, colsB = tB ? K : N;
    int lda = colsA + 3, ldb = colsB + 1, ldc = N + 2;
    long sA = (long)rowsA * lda + 5, sB = (long)rowsB * ldb + 2, sC = (long)M * ldc + 7;
    size_t nA = (size_t)sA * batch, nB = (size_t)sB * batch, nC = (size_t)sC * batch;
    float *hA = host_rand(r, nA, -1, 1), *hB = host_rand(r, nB, -1, 1), *hC = host_rand(r, nC, -1, 1);
    pair A = pair_of(hA, nA), B = pair_of(hB, nB), C = pair_of(hC, nC);
    const float alpha = 0.7f, beta = 0.3f;
    assert_int_equal(cpu()->gemm(tA, tB, M, N, K, alpha, A.c, lda, sA, B.c, ldb, sB, beta, C.c, ldc, sC, batch),
                     ENG_OK);
    assert_int_equal(g_cuda->gemm(tA, tB, M, N, K, alpha, A.g, lda, sA, B.g, ldb, sB, beta, C.g, ldc, sC, batch),
                     ENG_OK);
    char what[64];
    snprintf(what, sizeof what, "gemm tA=%d tB=%d %dx%dx%d", tA, tB, M, N, K);
    /* whole buffer: padding and gaps must be untouched too */
    pair_expect(what, &C, 1e-5 * K, 1e-4);
    pair_free(&A);
    pair_free(&B);
    pair_free(&C);
    free(hA);
    free(hB);
    free(hC);
}

static void test_gemm(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 2);
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++)
            for (int rep = 0; rep < 3; rep++) {
                int M = 1 + (int)eng_rng_below(&r, 70), N = 1 + (int)eng_rng_below(&r, 70);
                int K = 1 + (int)eng_rng_below(&r, 300), batch = 1 + (int)eng_rng_below(&r, 5);
                gemm_case(&r, tA, tB, M, N, K, batch);
            }
    gemm_case(&r, 0, 1, 256, 64, 33, 7); /* layer-like shape */
    /* bad sizes are rejected by both */
    float *d = NULL;
    assert_int_equal(g_cuda->alloc(&d, 16), ENG_OK);
    assert_int_equal(g_cuda->gemm(0, 0, -1, 2, 2, 1, d, 2, 0, d, 2, 0, 0, d, 2, 0, 1), ENG_EINVAL);
    assert_int_equal(cpu()->gemm(0, 0, -1, 2, 2, 1, d, 2, 0, d, 2, 0, 0, d, 2, 0, 1), ENG_EINVAL);
    g_cuda->free(d);
}

/* ---- activations ------------------------------------------------------------------------- */

static void test_bias_act(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 3);
    const int P = 3, rows = 17, N = 37;
    const long sb = N + 5;
    const size_t n = (size_t)P * rows * N, nb = (size_t)P * sb;
    for (int act = ENG_ACT_IDENTITY; act <= ENG_ACT_TANH; act++) {
        float *hy = host_rand(&r, n, -2, 2), *hb = host_rand(&r, nb, -1, 1);
        pair Y = pair_of(hy, n), b = pair_of(hb, nb);
        assert_int_equal(cpu()->bias_act(Y.c, b.c, sb, P, rows, N, (eng_act)act), ENG_OK);
        assert_int_equal(g_cuda->bias_act(Y.g, b.g, sb, P, rows, N, (eng_act)act), ENG_OK);
        char what[32];
        snprintf(what, sizeof what, "bias_act %d", act);
        pair_expect(what, &Y, 1e-6, act == ENG_ACT_TANH ? 1e-5 : 1e-6);
        pair_free(&Y);
        pair_free(&b);
        free(hy);
        free(hb);
    }
}

static void test_act_backward(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 4);
    const size_t n = 70001;
    for (int act = ENG_ACT_IDENTITY; act <= ENG_ACT_TANH; act++) {
        float *hy = host_rand(&r, n, -1, 1), *hd = host_rand(&r, n, -2, 2);
        if (act == ENG_ACT_RELU)
            for (size_t k = 0; k < n; k += 3) hy[k] = 0.0f; /* outputs of relu: many exact zeros */
        pair Y = pair_of(hy, n), D = pair_of(hd, n);
        assert_int_equal(cpu()->act_backward(D.c, Y.c, n, (eng_act)act), ENG_OK);
        assert_int_equal(g_cuda->act_backward(D.g, Y.g, n, (eng_act)act), ENG_OK);
        char what[32];
        snprintf(what, sizeof what, "act_backward %d", act);
        pair_expect(what, &D, 1e-6, 1e-6);
        pair_free(&Y);
        pair_free(&D);
        free(hy);
        free(hd);
    }
}

static void test_bias_grad(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 5);
    const int P = 4, rows = 300, N = 45; /* N > 32: two column tiles */
    const long sd = N + 3;
    const size_t n = (size_t)P * rows * N, nd = (size_t)P * sd;
    for (int acc = 0; acc < 2; acc++) {
        float *hy = host_rand(&r, n, -1, 1), *hdb = host_rand(&r, nd, -1, 1);
        pair Y = pair_of(hy, n), db = pair_of(hdb, nd);
        assert_int_equal(cpu()->bias_grad(db.c, sd, Y.c, P, rows, N, acc), ENG_OK);
        assert_int_equal(g_cuda->bias_grad(db.g, sd, Y.g, P, rows, N, acc), ENG_OK);
        /* the gap entries between products (j >= N) keep their old value on both */
        pair_expect(acc ? "bias_grad accumulate" : "bias_grad", &db, 1e-5, 1e-5);
        pair_free(&Y);
        pair_free(&db);
        free(hy);
        free(hdb);
    }
}

/* ---- loss and reductions -------------------------------------------------------------------- */

static void test_loss(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 6);
    const int P = 5, rows = 64, N = 7;
    const size_t n = (size_t)P * rows * N;
    for (int kind = ENG_LOSS_MSE; kind <= ENG_LOSS_HUBER; kind++)
        for (int weighted = 0; weighted < 2; weighted++) {
            float *hp = host_rand(&r, n, -3, 3), *ht = host_rand(&r, n, -3, 3), *hw = host_rand(&r, n, 0, 1);
            for (size_t k = 0; k < n; k += 4) hw[k] = 0.0f;                 /* masked elements */
            for (size_t k = 0; k < (size_t)rows * N; k++) hw[2 * rows * N + k] = 0.0f; /* product 2: no weight */
            pair pr = pair_of(hp, n), tg = pair_of(ht, n), w = pair_of(hw, n);
            float *zero = calloc(n, sizeof(float));
            pair gr = pair_of(zero, n);
            float lc[5], lg[5];
            const float delta = 1.0f;
            assert_int_equal(cpu()->loss((eng_loss)kind, delta, pr.c, tg.c, weighted ? w.c : NULL, gr.c, lc, P, rows,
                                         N),
                             ENG_OK);
            assert_int_equal(g_cuda->loss((eng_loss)kind, delta, pr.g, tg.g, weighted ? w.g : NULL, gr.g, lg, P,
                                          rows, N),
                             ENG_OK);
            char what[48];
            snprintf(what, sizeof what, "loss kind=%d weighted=%d", kind, weighted);
            expect_close(what, lg, lc, P, 1e-5, 1e-5);
            if (weighted) assert_true(lc[2] == 0.0f && lg[2] == 0.0f);
            else assert_true(lc[2] > 0.0f);
            snprintf(what, sizeof what, "loss grad kind=%d weighted=%d", kind, weighted);
            pair_expect(what, &gr, 1e-6, 1e-5);
            /* loss values only (grad NULL) give the same numbers */
            float lg2[5];
            assert_int_equal(g_cuda->loss((eng_loss)kind, delta, pr.g, tg.g, weighted ? w.g : NULL, NULL, lg2, P,
                                          rows, N),
                             ENG_OK);
            expect_close("loss without grad", lg2, lg, P, 0, 0);
            pair_free(&pr);
            pair_free(&tg);
            pair_free(&w);
            pair_free(&gr);
            free(hp);
            free(ht);
            free(hw);
            free(zero);
        }
    /* a bad Huber delta is rejected */
    float l;
    float *d = NULL;
    assert_int_equal(g_cuda->alloc(&d, 4), ENG_OK);
    assert_int_equal(g_cuda->loss(ENG_LOSS_HUBER, 0.0f, d, d, NULL, NULL, &l, 1, 2, 2), ENG_EINVAL);
    g_cuda->free(d);
}

static void test_sumsq_scale(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 7);
    const int P = 6, n = 1500;
    const long stride = n + 11;
    const size_t tot = (size_t)P * stride;
    float *hx = host_rand(&r, tot, -2, 2);
    pair x = pair_of(hx, tot);
    double sc[6], sg[6];
    assert_int_equal(cpu()->sumsq(x.c, stride, n, P, sc), ENG_OK);
    assert_int_equal(g_cuda->sumsq(x.g, stride, n, P, sg), ENG_OK);
    for (int p = 0; p < P; p++) {
        assert_true(sc[p] > 100.0);
        assert_close(sg[p], sc[p], 1e-5, 1e-6);
    }
    const float scale[6] = {0.5f, 1.0f, -2.0f, 0.0f, 3.25f, 1e-3f};
    assert_int_equal(cpu()->scale(x.c, stride, n, P, scale), ENG_OK);
    assert_int_equal(g_cuda->scale(x.g, stride, n, P, scale), ENG_OK);
    pair_expect("scale", &x, 0, 1e-6); /* gaps between products untouched */
    pair_free(&x);
    free(hx);
}

/* ---- optimiser ------------------------------------------------------------------------------ */

static void test_adam_polyak(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 8);
    const int P = 5;
    const size_t per = 777, n = (size_t)P * per;
    const unsigned char mask[5] = {1, 0, 1, 1, 0};
    float *hw = host_rand(&r, n, -1, 1), *hm = host_rand(&r, n, -0.1, 0.1), *hv = host_rand(&r, n, 0, 0.01);
    pair w = pair_of(hw, n), m = pair_of(hm, n), v = pair_of(hv, n);
    for (int t = 1; t <= 3; t++) {
        float *hg = host_rand(&r, n, -1, 1);
        pair g = pair_of(hg, n);
        float bc1 = (float)(1.0 - pow(0.9, t)), bc2 = (float)(1.0 - pow(0.999, t));
        assert_int_equal(cpu()->adam(w.c, g.c, m.c, v.c, per, P, mask, 1e-2f, 0.9f, 0.999f, 1e-8f, bc1, bc2), ENG_OK);
        assert_int_equal(g_cuda->adam(w.g, g.g, m.g, v.g, per, P, mask, 1e-2f, 0.9f, 0.999f, 1e-8f, bc1, bc2),
                         ENG_OK);
        pair_free(&g);
        free(hg);
    }
    pair_expect("adam w", &w, 1e-6, 1e-5);
    pair_expect("adam m", &m, 1e-6, 1e-5);
    pair_expect("adam v", &v, 1e-7, 1e-5);
    /* masked products are bit-for-bit untouched on the device */
    float *gw = download(g_cuda, w.g, n);
    for (size_t k = per; k < 2 * per; k++) assert_true(gw[k] == hw[k]);
    for (size_t k = 4 * per; k < 5 * per; k++) assert_true(gw[k] == hw[k]);
    assert_true(gw[0] != hw[0]);
    free(gw);
    /* no mask: all products move */
    assert_int_equal(cpu()->adam(w.c, m.c, m.c, v.c, per, P, NULL, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.5f, 0.5f), ENG_OK);
    assert_int_equal(g_cuda->adam(w.g, m.g, m.g, v.g, per, P, NULL, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.5f, 0.5f), ENG_OK);
    pair_expect("adam w (no mask)", &w, 1e-6, 1e-5);
    /* polyak */
    float *hs = host_rand(&r, n, -1, 1);
    pair src = pair_of(hs, n);
    assert_int_equal(cpu()->polyak(w.c, src.c, n, 0.05f), ENG_OK);
    assert_int_equal(g_cuda->polyak(w.g, src.g, n, 0.05f), ENG_OK);
    pair_expect("polyak", &w, 1e-6, 1e-5);
    pair_free(&w);
    pair_free(&m);
    pair_free(&v);
    pair_free(&src);
    free(hw);
    free(hm);
    free(hv);
    free(hs);
}

/* ---- model level --------------------------------------------------------------------------- */

static void test_model_parity(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){9, 48, 40, 6}, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    a.acts[1] = ENG_ACT_TANH;
    const int P = 4, B = 33, in = 9, out = 6;
    eng_model *mc = NULL, *mg = NULL;
    assert_int_equal(eng_model_create(&mc, cpu(), &a, P, 99), ENG_OK);
    assert_int_equal(eng_model_create(&mg, g_cuda, &a, P, 99), ENG_OK);
    const size_t np = eng_model_nparams(mc), tot = (size_t)P * np;
    float *pc = malloc(tot * sizeof(float)), *pg = malloc(tot * sizeof(float));
    assert_int_equal(eng_model_get(mc, ENG_VIEW_PARAMS, pc), ENG_OK);
    assert_int_equal(eng_model_get(mg, ENG_VIEW_PARAMS, pg), ENG_OK);
    assert_memory_equal(pc, pg, tot * sizeof(float)); /* initialisation happens on the host */
    eng_rng r;
    eng_rng_seed(&r, 10);
    eng_adam_cfg cfg = eng_adam_default();
    cfg.clip_norm = 0.5f;
    const unsigned char mask[4] = {1, 1, 0, 1};
    const size_t nx = (size_t)P * B * in, ny = (size_t)P * B * out;
    float yc[4 * 33 * 6], yg[4 * 33 * 6], dxc[4 * 33 * 9], dxg[4 * 33 * 9];
    for (int t = 0; t < 5; t++) {
        float *X = host_rand(&r, nx, -1, 1), *T = host_rand(&r, ny, -1, 1), *W = host_rand(&r, ny, 0, 1);
        float lc[4], lg[4], nc[4], ng[4];
        assert_int_equal(eng_model_zero_grad(mc), ENG_OK);
        assert_int_equal(eng_model_zero_grad(mg), ENG_OK);
        assert_int_equal(eng_model_forward(mc, X, B, yc), ENG_OK);
        assert_int_equal(eng_model_forward(mg, X, B, yg), ENG_OK);
        expect_close("model forward", yg, yc, ny, 1e-4, 1e-3);
        eng_loss kind = t % 2 ? ENG_LOSS_HUBER : ENG_LOSS_MSE;
        assert_int_equal(eng_model_loss_backward(mc, kind, 0.5f, T, W, lc), ENG_OK);
        assert_int_equal(eng_model_loss_backward(mg, kind, 0.5f, T, W, lg), ENG_OK);
        expect_close("model loss", lg, lc, P, 1e-5, 1e-4);
        if (t == 4) { /* explicit backward with dX as well */
            assert_int_equal(eng_model_backward(mc, T, dxc), ENG_OK);
            assert_int_equal(eng_model_backward(mg, T, dxg), ENG_OK);
            expect_close("model dX", dxg, dxc, nx, 1e-4, 1e-3);
        }
        assert_int_equal(eng_model_adam_step(mc, &cfg, mask, nc), ENG_OK);
        assert_int_equal(eng_model_adam_step(mg, &cfg, mask, ng), ENG_OK);
        expect_close("model grad norm", ng, nc, P, 1e-5, 1e-4);
        free(X);
        free(T);
        free(W);
    }
    assert_int_equal(eng_model_get(mc, ENG_VIEW_PARAMS, pc), ENG_OK);
    assert_int_equal(eng_model_get(mg, ENG_VIEW_PARAMS, pg), ENG_OK);
    expect_close("model params", pg, pc, tot, 1e-4, 1e-3);
    assert_int_equal(eng_model_get(mc, ENG_VIEW_ADAM_V, pc), ENG_OK);
    assert_int_equal(eng_model_get(mg, ENG_VIEW_ADAM_V, pg), ENG_OK);
    expect_close("model adam_v", pg, pc, tot, 1e-6, 1e-3);
    /* the masked product kept its adam moments at zero on the device */
    for (size_t k = 2 * np; k < 3 * np; k++) assert_true(pg[k] == 0.0f);
    assert_int_equal(eng_model_step(mg), 5);
    /* Polyak target update on both */
    eng_model *tc = NULL, *tg = NULL;
    assert_int_equal(eng_model_create(&tc, cpu(), &a, P, 5), ENG_OK);
    assert_int_equal(eng_model_create(&tg, g_cuda, &a, P, 5), ENG_OK);
    assert_int_equal(eng_model_polyak(tc, mc, 0.1f), ENG_OK);
    assert_int_equal(eng_model_polyak(tg, mg, 0.1f), ENG_OK);
    assert_int_equal(eng_model_get(tc, ENG_VIEW_PARAMS, pc), ENG_OK);
    assert_int_equal(eng_model_get(tg, ENG_VIEW_PARAMS, pg), ENG_OK);
    expect_close("model polyak", pg, pc, tot, 1e-4, 1e-3);
    eng_model_free(tc);
    eng_model_free(tg);
    eng_model_free(mc);
    eng_model_free(mg);
    free(pc);
    free(pg);
}

/* ---- non-finite inputs ------------------------------------------------------------------------ */

/* Sprinkles NaN, +Inf and -Inf over x[n] (every 7th, 11th and 13th element). */
static void poison(float *x, size_t n) {
    for (size_t k = 0; k < n; k += 7) x[k] = NAN;
    for (size_t k = 3; k < n; k += 11) x[k] = INFINITY;
    for (size_t k = 5; k < n; k += 13) x[k] = -INFINITY;
}

static void test_nonfinite(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 21);
    const int P = 3, rows = 17, N = 29;
    const size_t n = (size_t)P * rows * N;
    /* ReLU backward selects: NaN / Inf in dY where Y == 0 become 0 on both */
    float *hy = host_rand(&r, n, -1, 1), *hd = host_rand(&r, n, -2, 2);
    for (size_t k = 0; k < n; k++)
        if (hy[k] < 0) hy[k] = 0.0f;
    poison(hd, n);
    for (int act = ENG_ACT_RELU; act <= ENG_ACT_TANH; act++) {
        pair Y = pair_of(hy, n), D = pair_of(hd, n);
        assert_int_equal(cpu()->act_backward(D.c, Y.c, n, (eng_act)act), ENG_OK);
        assert_int_equal(g_cuda->act_backward(D.g, Y.g, n, (eng_act)act), ENG_OK);
        pair_expect_nf(act == ENG_ACT_RELU ? "relu backward (NaN/Inf dY)" : "tanh backward (NaN/Inf dY)", &D, 1e-6,
                       1e-6);
        if (act == ENG_ACT_RELU) {
            float *h = download(g_cuda, D.g, n);
            for (size_t k = 0; k < n; k++)
                if (hy[k] == 0.0f) assert_true(h[k] == 0.0f);
            free(h);
        }
        pair_free(&Y);
        pair_free(&D);
    }
    /* bias + activation on NaN / Inf pre-activations */
    float *hx = host_rand(&r, n, -2, 2), *hb = host_rand(&r, (size_t)P * N, -1, 1);
    poison(hx, n);
    for (int act = ENG_ACT_IDENTITY; act <= ENG_ACT_TANH; act++) {
        pair X = pair_of(hx, n), Bi = pair_of(hb, (size_t)P * N);
        assert_int_equal(cpu()->bias_act(X.c, Bi.c, N, P, rows, N, (eng_act)act), ENG_OK);
        assert_int_equal(g_cuda->bias_act(X.g, Bi.g, N, P, rows, N, (eng_act)act), ENG_OK);
        pair_expect_nf("bias_act (NaN/Inf)", &X, 1e-6, 1e-5);
        pair_free(&X);
        pair_free(&Bi);
    }
    /* losses and gradients, sums of squares */
    float *ht = host_rand(&r, n, -2, 2);
    for (size_t k = 0; k < n; k++) hx[k] = (float)(4.0 * eng_rng_uniform(&r) - 2.0);
    for (size_t k = (size_t)rows * N; k < 2 * (size_t)rows * N; k += 5) hx[k] = INFINITY; /* product 1: Inf */
    hx[2 * (size_t)rows * N + 4] = NAN;                                                 /* product 2: NaN */
    pair X = pair_of(hx, n), T = pair_of(ht, n), Gc = pair_of(ht, n);
    for (int kind = ENG_LOSS_MSE; kind <= ENG_LOSS_HUBER; kind++) {
        float lc[3], lg[3];
        assert_int_equal(cpu()->loss((eng_loss)kind, 1.0f, X.c, T.c, NULL, Gc.c, lc, P, rows, N), ENG_OK);
        assert_int_equal(g_cuda->loss((eng_loss)kind, 1.0f, X.g, T.g, NULL, Gc.g, lg, P, rows, N), ENG_OK);
        expect_close_nf("loss (NaN/Inf)", lg, lc, 3, 1e-5, 1e-5);
        assert_true(isfinite(lc[0]) && isinf(lc[1]) && isnan(lc[2]));
        pair_expect_nf("loss gradient (NaN/Inf)", &Gc, 1e-6, 1e-5);
    }
    double sc[3], sg[3];
    assert_int_equal(cpu()->sumsq(X.c, (long)rows * N, rows * N, P, sc), ENG_OK);
    assert_int_equal(g_cuda->sumsq(X.g, (long)rows * N, rows * N, P, sg), ENG_OK);
    assert_true(isfinite(sg[0]) && isinf(sg[1]) && isnan(sg[2]));
    assert_true(fabs(sg[0] - sc[0]) <= 1e-5 * sc[0]);
    pair_free(&X);
    pair_free(&T);
    pair_free(&Gc);
    free(hy);
    free(hd);
    free(hx);
    free(hb);
    free(ht);
}

/* ---- copies with overlapping ranges (memmove semantics) ------------------------------------ */

static void test_copy_overlap(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 22);
    const size_t n = 50000;
    float *h = host_rand(&r, n, -1, 1);
    pair p = pair_of(h, n);
    assert_int_equal(cpu()->copy(p.c + 1000, p.c, n - 2000), ENG_OK); /* forward overlap */
    assert_int_equal(g_cuda->copy(p.g + 1000, p.g, n - 2000), ENG_OK);
    pair_expect("copy overlapping forward", &p, 0, 0);
    assert_int_equal(cpu()->copy(p.c, p.c + 3, n - 3), ENG_OK); /* backward overlap */
    assert_int_equal(g_cuda->copy(p.g, p.g + 3, n - 3), ENG_OK);
    pair_expect("copy overlapping backward", &p, 0, 0);
    pair_free(&p);
    free(h);
}

/* ---- the device-resident ops ------------------------------------------------------------------- */

static void test_device_ops(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_rng r;
    eng_rng_seed(&r, 23);
    const int P = 4;
    const size_t per = 1000, n = (size_t)P * per;
    float *hw = host_rand(&r, n, -1, 1), *hg = host_rand(&r, n, -1, 1), *hm = host_rand(&r, n, -0.1, 0.1),
          *hv = host_rand(&r, n, 0, 0.01);
    hg[2 * per + 5] = INFINITY; /* product 2: infinite norm, clip factor 0 */
    const float hmask[4] = {1, 0, 1, 1};
    pair w = pair_of(hw, n), g = pair_of(hg, n), m = pair_of(hm, n), v = pair_of(hv, n), mk = pair_of(hmask, 4);
    float *ssc = NULL, *ssg = NULL; /* 2 P floats = P doubles */
    assert_int_equal(cpu()->alloc(&ssc, 2 * (size_t)P), ENG_OK);
    assert_int_equal(g_cuda->alloc(&ssg, 2 * (size_t)P), ENG_OK);
    assert_int_equal(cpu()->sumsq_dev(g.c, (long)per, (int)per, P, (double *)(void *)ssc), ENG_OK);
    assert_int_equal(g_cuda->sumsq_dev(g.g, (long)per, (int)per, P, (double *)(void *)ssg), ENG_OK);
    double hc[4], hgd[4];
    memcpy(hc, ssc, sizeof hc);
    assert_int_equal(g_cuda->sync(), ENG_OK);
    assert_int_equal(g_cuda->to_host((float *)(void *)hgd, ssg, 2 * (size_t)P), ENG_OK);
    for (int p = 0; p < P; p++)
        if (p == 2) assert_true(isinf(hgd[p]) && isinf(hc[p]));
        else assert_true(fabs(hgd[p] - hc[p]) <= 1e-5 * hc[p]);
    assert_int_equal(cpu()->adam_clip(w.c, g.c, m.c, v.c, per, P, mk.c, (double *)(void *)ssc, 5.0f, 1e-2f, 0.9f,
                                      0.999f, 1e-8f, 0.1f, 0.001f),
                     ENG_OK);
    assert_int_equal(g_cuda->adam_clip(w.g, g.g, m.g, v.g, per, P, mk.g, (double *)(void *)ssg, 5.0f, 1e-2f, 0.9f,
                                       0.999f, 1e-8f, 0.1f, 0.001f),
                     ENG_OK);
    pair_expect_nf("adam_clip g", &g, 1e-6, 1e-5);
    pair_expect_nf("adam_clip w", &w, 1e-6, 1e-5);
    pair_expect_nf("adam_clip m", &m, 1e-6, 1e-5);
    pair_expect_nf("adam_clip v", &v, 1e-7, 1e-5);
    /* loss into backend memory */
    float *lc = NULL, *lg = NULL;
    assert_int_equal(cpu()->alloc(&lc, (size_t)P), ENG_OK);
    assert_int_equal(g_cuda->alloc(&lg, (size_t)P), ENG_OK);
    assert_int_equal(cpu()->loss_dev(ENG_LOSS_HUBER, 0.3f, w.c, m.c, v.c, NULL, lc, P, 10, 100), ENG_OK);
    assert_int_equal(g_cuda->loss_dev(ENG_LOSS_HUBER, 0.3f, w.g, m.g, v.g, NULL, lg, P, 10, 100), ENG_OK);
    float *hl = download(g_cuda, lg, (size_t)P);
    expect_close_nf("loss_dev", hl, lc, (size_t)P, 1e-5, 1e-5);
    free(hl);
    /* DQN targets (exact: no fused multiply-add on the device) */
    const int Pq = 3, B = 7, A = 5;
    const size_t rows = (size_t)Pq * B, na = rows * A;
    float *qs = host_rand(&r, na, -1, 1), *qt = host_rand(&r, na, -1, 1), *qc = host_rand(&r, na, -1, 1);
    float *act = host_rand(&r, rows, 0, 1), *rw = host_rand(&r, rows, -1, 1), *dn = host_rand(&r, rows, 0, 1);
    const float qmask[3] = {1, 0, 1};
    for (size_t i = 0; i < rows; i++) {
        act[i] = (float)(i % A);
        dn[i] = dn[i] < 0.2f ? 1.0f : 0.0f;
    }
    qs[0] = NAN;
    qs[A + 3] = NAN;
    qt[2 * A + 1] = INFINITY;
    pair Qs = pair_of(qs, na), Qt = pair_of(qt, na), Qc = pair_of(qc, na), Ac = pair_of(act, rows),
         Rw = pair_of(rw, rows), Dn = pair_of(dn, rows), Mq = pair_of(qmask, 3), Tg = pair_of(qc, na),
         Wt = pair_of(qc, na);
    assert_int_equal(cpu()->dqn_targets(Qs.c, Qt.c, Qc.c, Ac.c, Rw.c, Dn.c, Mq.c, 0.97f, Pq, B, A, Tg.c, Wt.c), ENG_OK);
    assert_int_equal(g_cuda->dqn_targets(Qs.g, Qt.g, Qc.g, Ac.g, Rw.g, Dn.g, Mq.g, 0.97f, Pq, B, A, Tg.g, Wt.g),
                     ENG_OK);
    pair_expect_nf("dqn_targets tgt", &Tg, 0, 0);
    pair_expect_nf("dqn_targets w", &Wt, 0, 0);
    pair *all[] = {&w, &g, &m, &v, &mk, &Qs, &Qt, &Qc, &Ac, &Rw, &Dn, &Mq, &Tg, &Wt};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) pair_free(all[k]);
    cpu()->free(ssc);
    g_cuda->free(ssg);
    cpu()->free(lc);
    g_cuda->free(lg);
    float *hs[] = {hw, hg, hm, hv, qs, qt, qc, act, rw, dn};
    for (size_t k = 0; k < sizeof hs / sizeof *hs; k++) free(hs[k]);
}

/* ---- selection (never skipped) ------------------------------------------------------------ */

static void test_select(void **s) {
    (void)s;
    const eng_backend *be = (const eng_backend *)&be; /* any non-NULL value */
    const char *desc = eng_cuda_describe();
    assert_non_null(desc);
    assert_true(strlen(desc) > 0);
    if (!g_cuda) {
        /* no device: "cuda" is an error naming the reason, "auto" falls back to the CPU */
        assert_int_equal(eng_backend_cuda(&be), ENG_EDEVICE);
        assert_null(be);
        assert_true(strlen(eng_err_msg()) > 0);
        be = (const eng_backend *)&be;
        assert_int_equal(eng_backend_select("cuda", &be), ENG_EDEVICE);
        assert_null(be);
        assert_non_null(strstr(eng_err_msg(), "cuda"));
        assert_true(strlen(eng_err_msg()) > strlen("--device cuda requested"));
        assert_int_equal(eng_backend_select("auto", &be), ENG_OK);
        assert_ptr_equal(be, eng_backend_cpu());
        assert_int_equal(be->kind, ENG_BACKEND_CPU);
        printf("CUDA: %s\n", desc);
    } else {
        assert_int_equal(eng_backend_select("cuda", &be), ENG_OK);
        assert_ptr_equal(be, g_cuda);
        assert_int_equal(be->kind, ENG_BACKEND_CUDA);
        assert_string_equal(be->name, "cuda");
        assert_int_equal(eng_backend_select("auto", &be), ENG_OK);
        assert_ptr_equal(be, g_cuda);
    }
    assert_int_equal(eng_backend_select("cpu", &be), ENG_OK);
    assert_ptr_equal(be, eng_backend_cpu());
    assert_int_equal(eng_backend_select("tpu", &be), ENG_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_fill_copy),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_bias_act),
        cmocka_unit_test(test_act_backward),
        cmocka_unit_test(test_bias_grad),
        cmocka_unit_test(test_loss),
        cmocka_unit_test(test_sumsq_scale),
        cmocka_unit_test(test_adam_polyak),
        cmocka_unit_test(test_model_parity),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_copy_overlap),
        cmocka_unit_test(test_device_ops),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
