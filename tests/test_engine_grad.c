/* tests/test_engine_grad.c - gradient checks for model groups on the CPU backend.
 *
 * The reference is an independent forward pass written here in double precision
 * (ref_forward/ref_loss).  Numerical gradients are central differences of that double
 * reference with h = 1e-6 (truncation ~h^2, rounding ~1e-16/h: ~1e-9 abs), so the only
 * sizeable error is the float arithmetic of the engine itself.  Tolerance on each
 * gradient element: |analytic - numeric| <= 2e-4 + 2e-3 * |numeric|.
 * A ReLU kink inside [x-h, x+h] would break a check; with random float data its
 * probability is ~1e-6 per element and the seeds are fixed, so the tests are stable.
 */
#include "test_common.h"
#include "eng_model.h"

#define ATOL 2e-4
#define RTOL 2e-3

/* ---- independent double-precision reference ----------------------------------------- */

static double ref_act(double v, eng_act a) {
    switch (a) {
    case ENG_ACT_RELU: return v > 0 ? v : 0;
    case ENG_ACT_TANH: return tanh(v);
    default: return v;
    }
}

/* One network (params w in eng_model layout: W_l [out][in] then b_l) on one input row. */
static void ref_forward(const eng_arch *a, const double *w, const double *x, double *y) {
    double buf[2][64];
    const double *in = x;
    size_t off = 0;
    for (int l = 0; l < a->n_layers; l++) {
        int ni = a->sizes[l], no = a->sizes[l + 1];
        double *o = buf[l % 2];
        const double *W = w + off, *b = w + off + (size_t)ni * no;
        for (int j = 0; j < no; j++) {
            double s = b[j];
            for (int k = 0; k < ni; k++) s += W[(size_t)j * ni + k] * in[k];
            o[j] = ref_act(s, a->acts[l]);
        }
        off += (size_t)ni * no + no;
        in = o;
    }
    memcpy(y, in, sizeof(double) * a->sizes[a->n_layers]);
}

/* Scalar objective for one product over its batch:
 *   lossmode 0: sum_ij G_ij * y_ij            (for eng_model_backward with dY = G)
 *   lossmode 1: MSE, 2: Huber(delta)          (weighted mean, as in eng_backend.h) */
static double ref_objective(const eng_arch *a, const double *w, const double *X, int B, const double *T,
                            const double *Wt, const double *G, int lossmode, double delta) {
    int ni = a->sizes[0], no = a->sizes[a->n_layers];
    double acc = 0, wsum = 0, y[64];
    for (int i = 0; i < B; i++) {
        ref_forward(a, w, X + (size_t)i * ni, y);
        for (int j = 0; j < no; j++) {
            size_t k = (size_t)i * no + j;
            if (lossmode == 0) {
                acc += G[k] * y[j];
                continue;
            }
            double d = y[j] - T[k], wk = Wt ? Wt[k] : 1.0, l;
            if (lossmode == 1) l = d * d;
            else l = fabs(d) <= delta ? 0.5 * d * d : delta * (fabs(d) - 0.5 * delta);
            acc += wk * l;
            wsum += wk;
        }
    }
    if (lossmode == 0) return acc;
    return acc / (wsum > 1 ? wsum : 1);
}

static void fill_uniform(eng_rng *r, float *x, size_t n, double lo, double hi) {
    for (size_t k = 0; k < n; k++) x[k] = (float)(lo + (hi - lo) * eng_rng_uniform(r));
}

/* Runs a full check for one arch / loss configuration with P products.
 * lossmode 0 uses eng_model_backward with random dY and also checks dX. */
static void grad_check(const eng_arch *a, int P, int B, int lossmode, double delta, int weighted) {
    const eng_backend *be = eng_backend_cpu();
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, be, a, P, 1234), ENG_OK);
    const int ni = a->sizes[0], no = a->sizes[a->n_layers];
    const size_t np = eng_model_nparams(m);
    eng_rng r;
    eng_rng_seed(&r, 99);
    float *X = malloc(sizeof(float) * P * B * ni), *T = malloc(sizeof(float) * P * B * no);
    float *Wt = malloc(sizeof(float) * P * B * no), *G = malloc(sizeof(float) * P * B * no);
    float *dX = malloc(sizeof(float) * P * B * ni), *grads = malloc(sizeof(float) * P * np);
    float *params = malloc(sizeof(float) * P * np), *loss = malloc(sizeof(float) * P);
    double *wd = malloc(sizeof(double) * np), *Xd = malloc(sizeof(double) * B * ni);
    double *Td = malloc(sizeof(double) * B * no), *Wd = malloc(sizeof(double) * B * no);
    double *Gd = malloc(sizeof(double) * B * no);
    fill_uniform(&r, X, (size_t)P * B * ni, -1.5, 1.5);
    fill_uniform(&r, T, (size_t)P * B * no, -3, 3); /* with delta 0.5 many |d| > delta */
    fill_uniform(&r, G, (size_t)P * B * no, -1, 1);
    for (int k = 0; k < P * B * no; k++) Wt[k] = (k % 3 == 0) ? 0.0f : (float)(0.5 + eng_rng_uniform(&r));
    /* non-zero biases so that their gradients flow through a realistic net */
    assert_int_equal(eng_model_get(m, ENG_VIEW_PARAMS, params), ENG_OK);
    for (size_t k = 0; k < (size_t)P * np; k++) params[k] += (float)(0.1 * (eng_rng_uniform(&r) - 0.5));
    assert_int_equal(eng_model_set(m, ENG_VIEW_PARAMS, params), ENG_OK);

    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_forward(m, X, B, NULL), ENG_OK);
    if (lossmode == 0)
        assert_int_equal(eng_model_backward(m, G, dX), ENG_OK);
    else
        assert_int_equal(eng_model_loss_backward(m, lossmode == 1 ? ENG_LOSS_MSE : ENG_LOSS_HUBER, (float)delta, T,
                                                 weighted ? Wt : NULL, loss), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, grads), ENG_OK);

    int huber_outside = 0;
    for (int p = 0; p < P; p++) {
        for (size_t k = 0; k < np; k++) wd[k] = params[(size_t)p * np + k];
        for (int k = 0; k < B * ni; k++) Xd[k] = X[(size_t)p * B * ni + k];
        for (int k = 0; k < B * no; k++) {
            Td[k] = T[(size_t)p * B * no + k];
            Wd[k] = Wt[(size_t)p * B * no + k];
            Gd[k] = G[(size_t)p * B * no + k];
        }
        const double *wptr = weighted ? Wd : NULL;
        if (lossmode != 0) {
            double L = ref_objective(a, wd, Xd, B, Td, wptr, Gd, lossmode, delta);
            assert_close(loss[p], L, 1e-5, 1e-4);
            double y[64];
            for (int i = 0; i < B; i++) {
                ref_forward(a, wd, Xd + (size_t)i * ni, y);
                for (int j = 0; j < no; j++) huber_outside += fabs(y[j] - Td[i * no + j]) > delta;
            }
        }
        const double h = 1e-6;
        for (size_t k = 0; k < np; k++) {
            double keep = wd[k];
            wd[k] = keep + h;
            double up = ref_objective(a, wd, Xd, B, Td, wptr, Gd, lossmode, delta);
            wd[k] = keep - h;
            double dn = ref_objective(a, wd, Xd, B, Td, wptr, Gd, lossmode, delta);
            wd[k] = keep;
            double num = (up - dn) / (2 * h);
            double ana = grads[(size_t)p * np + k];
            if (!(fabs(ana - num) <= ATOL + RTOL * fabs(num)))
                fail_msg("product %d param %zu: analytic %.8g numeric %.8g", p, k, ana, num);
        }
        if (lossmode == 0) {
            for (int k = 0; k < B * ni; k++) {
                double keep = Xd[k];
                Xd[k] = keep + h;
                double up = ref_objective(a, wd, Xd, B, Td, wptr, Gd, 0, delta);
                Xd[k] = keep - h;
                double dn = ref_objective(a, wd, Xd, B, Td, wptr, Gd, 0, delta);
                Xd[k] = keep;
                double num = (up - dn) / (2 * h);
                double ana = dX[(size_t)p * B * ni + k];
                if (!(fabs(ana - num) <= ATOL + RTOL * fabs(num)))
                    fail_msg("product %d input %d: analytic dX %.8g numeric %.8g", p, k, ana, num);
            }
        }
    }
    if (lossmode == 2 && delta < 1.0) assert_true(huber_outside > 0); /* the linear branch was exercised */
    eng_model_free(m);
    free(X); free(T); free(Wt); free(G); free(dX); free(grads); free(params); free(loss);
    free(wd); free(Xd); free(Td); free(Wd); free(Gd);
}

static void arch3(eng_arch *a, eng_act hidden, eng_act out) {
    assert_int_equal(eng_arch_mlp(a, (int[]){5, 7, 6, 3}, 4, hidden, out), ENG_OK);
}

static void test_grad_relu_backward_dx(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    grad_check(&a, 3, 4, 0, 0, 0);
}
static void test_grad_tanh_backward_dx(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_TANH, ENG_ACT_TANH);
    grad_check(&a, 2, 5, 0, 0, 0);
}
static void test_grad_identity_backward_dx(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_IDENTITY, ENG_ACT_IDENTITY);
    grad_check(&a, 2, 3, 0, 0, 0);
}
static void test_grad_mixed_acts(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){4, 6, 5, 4, 2}, 5, ENG_ACT_RELU, ENG_ACT_TANH), ENG_OK);
    a.acts[1] = ENG_ACT_TANH; /* relu, tanh, relu, tanh */
    a.acts[2] = ENG_ACT_RELU;
    grad_check(&a, 2, 4, 0, 0, 0);
}
static void test_grad_single_layer(void **s) {
    (void)s;
    eng_arch a;
    assert_int_equal(eng_arch_mlp(&a, (int[]){6, 4}, 2, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_OK);
    grad_check(&a, 2, 3, 0, 0, 0);
    grad_check(&a, 2, 3, 1, 0, 1);
}
static void test_grad_mse(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    grad_check(&a, 3, 4, 1, 0, 0);
}
static void test_grad_mse_weighted(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_TANH, ENG_ACT_IDENTITY);
    grad_check(&a, 3, 4, 1, 0, 1);
}
static void test_grad_huber(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    grad_check(&a, 2, 6, 2, 0.5, 0);
}
static void test_grad_huber_weighted(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    grad_check(&a, 2, 6, 2, 0.5, 1);
    grad_check(&a, 2, 6, 2, 100.0, 1); /* all inside the quadratic branch */
}

/* Backward accumulates: two backward passes give twice the gradient; zero_grad clears. */
static void test_grad_accumulates(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, eng_backend_cpu(), &a, 2, 5), ENG_OK);
    size_t np = eng_model_nparams(m);
    float X[2 * 3 * 5], G[2 * 3 * 3], *g1 = malloc(sizeof(float) * 2 * np), *g2 = malloc(sizeof(float) * 2 * np);
    eng_rng r;
    eng_rng_seed(&r, 3);
    fill_uniform(&r, X, 30, -1, 1);
    fill_uniform(&r, G, 18, -1, 1);
    assert_int_equal(eng_model_forward(m, X, 3, NULL), ENG_OK);
    assert_int_equal(eng_model_backward(m, G, NULL), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g1), ENG_OK);
    assert_int_equal(eng_model_backward(m, G, NULL), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g2), ENG_OK);
    double nz = 0;
    for (size_t k = 0; k < 2 * np; k++) {
        assert_close(g2[k], 2.0 * g1[k], 1e-6, 1e-6);
        nz += fabs(g1[k]);
    }
    assert_true(nz > 0);
    /* zero_grad then backward: exactly one pass's gradient (the lazy zeroing overwrites) */
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_backward(m, G, NULL), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g2), ENG_OK);
    assert_memory_equal(g2, g1, 2 * np * sizeof(float));
    assert_int_equal(eng_model_zero_grad(m), ENG_OK);
    assert_int_equal(eng_model_get(m, ENG_VIEW_GRADS, g2), ENG_OK);
    for (size_t k = 0; k < 2 * np; k++) assert_true(g2[k] == 0.0f);
    eng_model_free(m);
    free(g1);
    free(g2);
}

/* Errors: backward without forward, bad sizes, bad arch. */
static void test_grad_errors(void **s) {
    (void)s;
    eng_arch a;
    arch3(&a, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    eng_model *m = NULL;
    assert_int_equal(eng_model_create(&m, eng_backend_cpu(), &a, 1, 5), ENG_OK);
    float G[3] = {0};
    assert_int_equal(eng_model_backward(m, G, NULL), ENG_EINVAL);
    assert_true(strstr(eng_err_msg(), "forward") != NULL);
    assert_int_equal(eng_model_forward(m, G, 0, NULL), ENG_EINVAL);
    eng_model_free(m);
    assert_int_equal(eng_arch_mlp(&a, (int[]){5, 0, 3}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_EINVAL);
    assert_int_equal(eng_arch_mlp(&a, (int[]){5}, 1, ENG_ACT_RELU, ENG_ACT_IDENTITY), ENG_EINVAL);
    arch3(&a, ENG_ACT_RELU, ENG_ACT_IDENTITY);
    assert_int_equal(eng_model_create(&m, eng_backend_cpu(), &a, 0, 5), ENG_EINVAL);
    assert_null(m);
    assert_int_equal(eng_arch_nparams(&a), 7 * (5 + 1) + 6 * (7 + 1) + 3 * (6 + 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_relu_backward_dx),
        cmocka_unit_test(test_grad_tanh_backward_dx),
        cmocka_unit_test(test_grad_identity_backward_dx),
        cmocka_unit_test(test_grad_mixed_acts),
        cmocka_unit_test(test_grad_single_layer),
        cmocka_unit_test(test_grad_mse),
        cmocka_unit_test(test_grad_mse_weighted),
        cmocka_unit_test(test_grad_huber),
        cmocka_unit_test(test_grad_huber_weighted),
        cmocka_unit_test(test_grad_accumulates),
        cmocka_unit_test(test_grad_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
