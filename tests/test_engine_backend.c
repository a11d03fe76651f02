/* tests/test_engine_backend.c - the CPU backend op by op against naive double-precision
 * loops written here (batched GEMM in all transpose cases with padded leading dimensions,
 * bias+activation, activation derivatives, bias gradients, losses, reductions, Adam, Polyak). */
#include "test_common.h"
#include "eng_backend.h"
#include "eng_util.h"

static const eng_backend *be(void) { return eng_backend_cpu(); }

static void fill_uniform(eng_rng *r, float *x, size_t n, double lo, double hi) {
    for (size_t k = 0; k < n; k++) x[k] = (float)(lo + (hi - lo) * eng_rng_uniform(r));
}

static void test_memory(void **s) {
    (void)s;
    float *a = NULL, *b = NULL;
    assert_int_equal(be()->alloc(&a, 1000), ENG_OK);
    assert_int_equal(be()->alloc(&b, 1000), ENG_OK);
    for (int k = 0; k < 1000; k++) assert_true(a[k] == 0.0f);
    assert_int_equal(be()->fill(a, 2.5f, 1000), ENG_OK);
    assert_int_equal(be()->copy(b, a, 999), ENG_OK);
    assert_true(b[998] == 2.5f && b[999] == 0.0f);
    float h[3] = {1, 2, 3}, g[3];
    assert_int_equal(be()->to_device(a, h, 3), ENG_OK);
    assert_int_equal(be()->to_host(g, a, 3), ENG_OK);
    assert_memory_equal(g, h, sizeof h);
    assert_int_equal(be()->sync(), ENG_OK);
    be()->free(a);
    be()->free(b);
    be()->free(NULL);
    float *z = NULL;
    assert_int_equal(be()->alloc(&z, 0), ENG_OK); /* zero floats: a valid, freeable pointer */
    be()->free(z);
}

/* C_b = alpha op(A_b) op(B_b) + beta C_b for every transpose combination, with leading
 * dimensions larger than the matrix widths and batch strides with gaps. */
static void test_gemm(void **s) {
    (void)s;
    eng_rng r;
    eng_rng_seed(&r, 1);
    const int M = 5, N = 7, K = 3, batch = 3;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
            int lda = acols + 2, ldb = bcols + 1, ldc = N + 3;
            long sA = (long)arows * lda + 4, sB = (long)brows * ldb + 1, sC = (long)M * ldc + 2;
            float *A = malloc(sizeof(float) * sA * batch), *B = malloc(sizeof(float) * sB * batch);
            float *C = malloc(sizeof(float) * sC * batch), *C0 = malloc(sizeof(float) * sC * batch);
            fill_uniform(&r, A, sA * batch, -1, 1);
            fill_uniform(&r, B, sB * batch, -1, 1);
            fill_uniform(&r, C, sC * batch, -1, 1);
            memcpy(C0, C, sizeof(float) * sC * batch);
            const float alpha = 0.7f, beta = -0.4f;
            assert_int_equal(be()->gemm(ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch), ENG_OK);
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double acc = 0;
                        for (int k = 0; k < K; k++) {
                            double av = ta ? A[b * sA + k * lda + i] : A[b * sA + i * lda + k];
                            double bv = tb ? B[b * sB + j * ldb + k] : B[b * sB + k * ldb + j];
                            acc += av * bv;
                        }
                        double want = alpha * acc + beta * C0[b * sC + i * ldc + j];
                        assert_close(C[b * sC + i * ldc + j], want, 1e-5, 1e-5);
                    }
                /* padding columns are untouched */
                for (int i = 0; i < M; i++)
                    for (int j = N; j < ldc; j++) assert_true(C[b * sC + i * ldc + j] == C0[b * sC + i * ldc + j]);
            }
            free(A); free(B); free(C); free(C0);
        }
    assert_int_equal(be()->gemm(0, 0, -1, 1, 1, 1, NULL, 1, 0, NULL, 1, 0, 0, NULL, 1, 0, 1), ENG_EINVAL);
}

/* A single large GEMM on two threads (split into row blocks, eng_backend_cpu.c) equals the
 * one-thread result bit for bit, in every transpose case, for a row count that is and one
 * that is not a multiple of the block size; and both are right. */
static void test_gemm_row_split(void **s) {
    (void)s;
    eng_rng r;
    eng_rng_seed(&r, 7);
    const int N = 256, K = 256, Ms[2] = {96, 70};
    for (int mi = 0; mi < 2; mi++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int M = Ms[mi];
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
                float *C0 = malloc(sizeof(float) * nc), *C1 = malloc(sizeof(float) * nc), *C2 = malloc(sizeof(float) * nc);
                fill_uniform(&r, A, na, -1, 1);
                fill_uniform(&r, B, nb, -1, 1);
                fill_uniform(&r, C0, nc, -1, 1);
                memcpy(C1, C0, sizeof(float) * nc);
                memcpy(C2, C0, sizeof(float) * nc);
                assert_int_equal(eng_cpu_set_threads(1), ENG_OK);
                assert_int_equal(be()->gemm(ta, tb, M, N, K, 0.5f, A, lda, 0, B, ldb, 0, 0.25f, C1, ldc, 0, 1), ENG_OK);
                assert_int_equal(eng_cpu_set_threads(2), ENG_OK);
                assert_int_equal(be()->gemm(ta, tb, M, N, K, 0.5f, A, lda, 0, B, ldb, 0, 0.25f, C2, ldc, 0, 1), ENG_OK);
                assert_memory_equal(C1, C2, sizeof(float) * nc);
                for (int i = 0; i < M; i += 13)
                    for (int j = 0; j < ldc; j += 17) {
                        if (j >= N) { /* padding untouched */
                            assert_true(C2[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
                            continue;
                        }
                        double acc = 0;
                        for (int k = 0; k < K; k++)
                            acc += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                                   (double)(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                        assert_close(C2[(size_t)i * ldc + j], 0.5 * acc + 0.25 * C0[(size_t)i * ldc + j], 1e-4, 1e-5);
                    }
                free(A); free(B); free(C0); free(C1); free(C2);
            }
    assert_int_equal(eng_cpu_set_threads(0), ENG_OK);
}

static void test_bias_act_and_backward(void **s) {
    (void)s;
    eng_rng r;
    eng_rng_seed(&r, 2);
    const int P = 2, rows = 3, N = 5;
    const long sb = 11;
    float bias[2 * 11], Y[2 * 3 * 5], Y0[2 * 3 * 5], dY[30], dY0[30];
    fill_uniform(&r, bias, 22, -1, 1);
    fill_uniform(&r, Y0, 30, -2, 2);
    fill_uniform(&r, dY0, 30, -1, 1);
    for (int act = 0; act < 3; act++) {
        memcpy(Y, Y0, sizeof Y);
        assert_int_equal(be()->bias_act(Y, bias, sb, P, rows, N, (eng_act)act), ENG_OK);
        memcpy(dY, dY0, sizeof dY);
        assert_int_equal(be()->act_backward(dY, Y, 30, (eng_act)act), ENG_OK);
        for (int p = 0; p < P; p++)
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < N; j++) {
                    int k = (p * rows + i) * N + j;
                    double z = (double)Y0[k] + bias[p * sb + j], y, d;
                    if (act == ENG_ACT_RELU) { y = z > 0 ? z : 0; d = z > 0; }
                    else if (act == ENG_ACT_TANH) { y = tanh(z); d = 1 - y * y; }
                    else { y = z; d = 1; }
                    assert_close(Y[k], y, 1e-6, 1e-6);
                    assert_close(dY[k], dY0[k] * d, 1e-6, 1e-5);
                }
    }
    assert_int_equal(be()->bias_act(Y, bias, sb, P, rows, N, (eng_act)7), ENG_EINVAL);
    assert_int_equal(be()->act_backward(dY, Y, 30, (eng_act)7), ENG_EINVAL);
}

static void test_bias_grad(void **s) {
    (void)s;
    const int P = 2, rows = 4, N = 3;
    float dY[24], db[2 * 5];
    for (int k = 0; k < 24; k++) dY[k] = (float)(k + 1);
    for (int k = 0; k < 10; k++) db[k] = 100.0f;
    assert_int_equal(be()->bias_grad(db, 5, dY, P, rows, N, 0), ENG_OK);
    /* product 0, column j: sum of (i*3 + j + 1) over i = 0..3 = 18 + 4(j+1) */
    for (int j = 0; j < 3; j++) {
        assert_true(db[j] == (float)(18 + 4 * (j + 1)));
        assert_true(db[5 + j] == (float)(18 + 4 * (j + 1) + 4 * 12));
    }
    assert_true(db[3] == 100.0f && db[4] == 100.0f); /* outside N: untouched */
    assert_int_equal(be()->bias_grad(db, 5, dY, P, rows, N, 1), ENG_OK);
    assert_true(db[0] == 2.0f * 22);
}

/* Loss values and gradients against the formula in eng_backend.h, including weights that
 * are all zero for one product (normaliser max(1, sum w)) and Huber's linear branch. */
static void test_loss(void **s) {
    (void)s;
    eng_rng r;
    eng_rng_seed(&r, 3);
    const int P = 3, rows = 4, N = 2, n = rows * N;
    float pred[24], tgt[24], w[24], grad[24], loss[3];
    fill_uniform(&r, pred, 24, -2, 2);
    fill_uniform(&r, tgt, 24, -2, 2);
    fill_uniform(&r, w, 24, 0, 0.3); /* product sums < 1 for some, to test max(1, .) */
    for (int k = 0; k < 8; k++) w[16 + k] = 0.0f;                /* product 2 fully masked */
    for (int k = 0; k < 8; k++) w[k] = (float)(0.5 + k % 3);     /* product 0 sum > 1 */
    for (int kind = 0; kind < 2; kind++)
        for (int weighted = 0; weighted < 2; weighted++) {
            const float delta = 0.7f;
            assert_int_equal(be()->loss((eng_loss)kind, delta, pred, tgt, weighted ? w : NULL, grad, loss, P, rows, N),
                             ENG_OK);
            int outside = 0;
            for (int p = 0; p < P; p++) {
                double acc = 0, ws = 0;
                for (int k = 0; k < n; k++) ws += weighted ? w[p * n + k] : 1.0;
                double norm = ws > 1 ? ws : 1;
                for (int k = 0; k < n; k++) {
                    double d = (double)pred[p * n + k] - tgt[p * n + k], wk = weighted ? w[p * n + k] : 1.0, l, dl;
                    if (kind == ENG_LOSS_MSE) { l = d * d; dl = 2 * d; }
                    else if (fabs(d) <= delta) { l = 0.5 * d * d; dl = d; }
                    else { l = delta * (fabs(d) - 0.5 * delta); dl = d > 0 ? delta : -delta; outside++; }
                    acc += wk * l;
                    assert_close(grad[p * n + k], wk * dl / norm, 1e-6, 1e-5);
                }
                assert_close(loss[p], acc / norm, 1e-6, 1e-5);
            }
            if (kind == ENG_LOSS_HUBER) assert_true(outside > 0);
            if (weighted) assert_true(loss[2] == 0.0f);
        }
    /* grad and loss_host may be NULL */
    assert_int_equal(be()->loss(ENG_LOSS_MSE, 1, pred, tgt, NULL, NULL, loss, P, rows, N), ENG_OK);
    assert_int_equal(be()->loss(ENG_LOSS_MSE, 1, pred, tgt, NULL, grad, NULL, P, rows, N), ENG_OK);
    assert_int_equal(be()->loss(ENG_LOSS_HUBER, 0, pred, tgt, NULL, grad, NULL, P, rows, N), ENG_EINVAL);
    assert_int_equal(be()->loss((eng_loss)5, 1, pred, tgt, NULL, grad, NULL, P, rows, N), ENG_EINVAL);
}

static void test_sumsq_scale_polyak(void **s) {
    (void)s;
    float x[2 * 6];
    for (int k = 0; k < 12; k++) x[k] = (float)(k - 3);
    double ss[2];
    assert_int_equal(be()->sumsq(x, 6, 4, 2, ss), ENG_OK); /* first 4 of each block of 6 */
    assert_close(ss[0], 9 + 4 + 1 + 0, 0, 0);
    assert_close(ss[1], 9 + 16 + 25 + 36, 0, 0);
    const float sc[2] = {2.0f, -1.0f};
    assert_int_equal(be()->scale(x, 6, 4, 2, sc), ENG_OK);
    assert_true(x[0] == -6.0f && x[3] == 0.0f && x[4] == 1.0f); /* x[4] outside n */
    assert_true(x[6] == -3.0f && x[9] == -6.0f && x[10] == 7.0f);
    float d[4] = {1, 2, 3, 4}, src[4] = {5, 6, 7, 8};
    assert_int_equal(be()->polyak(d, src, 4, 0.1f), ENG_OK);
    for (int k = 0; k < 4; k++) assert_close(d[k], 0.1 * src[k] + 0.9 * (k + 1), 1e-6, 1e-6);
}

/* One Adam step on two products, product 1 masked, against the formula. */
/* Adam and sumsq over a long odd-length block (the vector loops and their scalar tails, and
 * Adam's thread split of a single network) against double-precision loops. */
static void test_adam_sumsq_long(void **s) {
    (void)s;
    enum { N = 40003 };
    float *w = malloc(sizeof(float) * N), *g = malloc(sizeof(float) * N), *m = malloc(sizeof(float) * N);
    float *v = malloc(sizeof(float) * N), *w0 = malloc(sizeof(float) * N), *m0 = malloc(sizeof(float) * N);
    float *v0 = malloc(sizeof(float) * N);
    eng_rng r;
    eng_rng_seed(&r, 9);
    fill_uniform(&r, w, N, -1, 1);
    fill_uniform(&r, g, N, -1, 1);
    fill_uniform(&r, m, N, -0.1, 0.1);
    fill_uniform(&r, v, N, 0, 0.01);
    memcpy(w0, w, sizeof(float) * N); memcpy(m0, m, sizeof(float) * N); memcpy(v0, v, sizeof(float) * N);
    double ss = 0, want = 0;
    for (int k = 0; k < N; k++) want += (double)g[k] * g[k];
    assert_int_equal(be()->sumsq(g, N, N, 1, &ss), ENG_OK);
    assert_close(ss, want, 0, 1e-12);
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, bc1 = 0.19f, bc2 = 0.002f;
    assert_int_equal(eng_cpu_set_threads(2), ENG_OK);
    assert_int_equal(be()->adam(w, g, m, v, N, 1, NULL, lr, b1, b2, eps, bc1, bc2), ENG_OK);
    assert_int_equal(eng_cpu_set_threads(0), ENG_OK);
    for (int k = 0; k < N; k++) {
        double mk = b1 * (double)m0[k] + (1 - b1) * (double)g[k];
        double vk = b2 * (double)v0[k] + (1 - b2) * (double)g[k] * g[k];
        double wk = w0[k] - lr * (mk / bc1) / (sqrt(vk / bc2) + eps);
        assert_close(m[k], mk, 1e-8, 1e-5);
        assert_close(v[k], vk, 1e-9, 1e-5);
        assert_close(w[k], wk, 1e-6, 1e-5);
    }
    free(w); free(g); free(m); free(v); free(w0); free(m0); free(v0);
}

static void test_adam_op(void **s) {
    (void)s;
    float w[6] = {1, -1, 0.5f, 2, 2, 2}, g[6] = {0.1f, -0.2f, 0.3f, 1, 1, 1};
    float m[6] = {0.01f, 0.02f, -0.03f, 0, 0, 0}, v[6] = {1e-3f, 2e-3f, 3e-3f, 0, 0, 0};
    float w0[6], m0[6], v0[6];
    memcpy(w0, w, sizeof w); memcpy(m0, m, sizeof m); memcpy(v0, v, sizeof v);
    const unsigned char mask[2] = {1, 0};
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float bc1 = 1 - 0.9f * 0.9f, bc2 = 1 - 0.999f * 0.999f; /* as at step t = 2 */
    assert_int_equal(be()->adam(w, g, m, v, 3, 2, mask, lr, b1, b2, eps, bc1, bc2), ENG_OK);
    for (int k = 0; k < 3; k++) {
        double mk = b1 * (double)m0[k] + (1 - b1) * (double)g[k];
        double vk = b2 * (double)v0[k] + (1 - b2) * (double)g[k] * g[k];
        double wk = w0[k] - lr * (mk / bc1) / (sqrt(vk / bc2) + eps);
        assert_close(m[k], mk, 1e-8, 1e-6);
        assert_close(v[k], vk, 1e-9, 1e-6);
        assert_close(w[k], wk, 1e-6, 1e-6);
    }
    for (int k = 3; k < 6; k++) assert_true(w[k] == 2.0f && m[k] == 0.0f && v[k] == 0.0f);
    assert_int_equal(be()->adam(w, g, m, v, 3, 2, NULL, lr, b1, b2, eps, bc1, bc2), ENG_OK);
    for (int k = 3; k < 6; k++) assert_true(w[k] < 2.0f && m[k] > 0.0f);
    assert_int_equal(be()->adam(w, g, m, v, 3, 2, NULL, lr, b1, b2, eps, 0.0f, bc2), ENG_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_gemm_row_split),
        cmocka_unit_test(test_bias_act_and_backward),
        cmocka_unit_test(test_bias_grad),
        cmocka_unit_test(test_loss),
        cmocka_unit_test(test_sumsq_scale_polyak),
        cmocka_unit_test(test_adam_op),
        cmocka_unit_test(test_adam_sumsq_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
