/* tests/test_agt_linucb.c - LinUCB: equality with a LAPACK-inverse reference, sublinear
 * regret on a stationary linear-reward product, hybrid sanity, guardrails, save/load. */
#include "test_common.h"
#include "agt_linucb.h"

#include <unistd.h>

extern void dgetrf_(const int *m, const int *n, double *a, const int *lda, int *ipiv, int *info);
extern void dgetri_(const int *n, double *a, const int *lda, const int *ipiv, double *work, const int *lwork, int *info);

/* Reference: A accumulated in double, inverted from scratch with LAPACK (LU) every time. */
static void ref_scores(int K, int d, const double *A, const double *b, const float *x, double alpha, double *out) {
    double *inv = malloc(sizeof(double) * d * d), *work = malloc(sizeof(double) * d * 4);
    int *ipiv = malloc(sizeof(int) * d), info = 0, lwork = 4 * d;
    for (int a = 0; a < K; a++) {
        memcpy(inv, A + (size_t)a * d * d, sizeof(double) * d * d);
        dgetrf_(&d, &d, inv, &d, ipiv, &info);
        assert_int_equal(info, 0);
        dgetri_(&d, inv, &d, ipiv, work, &lwork, &info);
        assert_int_equal(info, 0);
        double mean = 0, var = 0;
        for (int i = 0; i < d; i++) {
            double th = 0, ux = 0;
            for (int j = 0; j < d; j++) {
                th += inv[(size_t)i * d + j] * b[(size_t)a * d + j]; /* symmetric: layout-free */
                ux += inv[(size_t)i * d + j] * x[j];
            }
            mean += th * x[i];
            var += ux * x[i];
        }
        out[a] = mean + alpha * sqrt(var);
    }
    free(inv); free(work); free(ipiv);
}

static void test_disjoint_matches_lapack_reference(void **state) {
    (void)state;
    const int K = 5, d = 8, P = 3, T = 300;
    agt_linucb_cfg c = agt_linucb_default();
    c.n_arms = K; c.d = d; c.alpha = 0.7f; c.ridge = 1.5f;
    agt_linucb *m = NULL;
    assert_int_equal(agt_linucb_create(&m, &c, P), ENG_OK);
    double *A = calloc((size_t)P * K * d * d, sizeof(double)), *b = calloc((size_t)P * K * d, sizeof(double));
    for (int pa = 0; pa < P * K; pa++)
        for (int i = 0; i < d; i++) A[(size_t)pa * d * d + i * d + i] = c.ridge;
    eng_rng r;
    eng_rng_seed(&r, 11);
    float x[3 * 8], scores[3 * 5], rew[3];
    int arm[3];
    double ref[5], worst = 0;
    int agree = 0, compared = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < P * d; i++) x[i] = (float)eng_rng_normal(&r);
        assert_int_equal(agt_linucb_choose(m, x, NULL, NULL, arm, scores), ENG_OK);
        for (int p = 0; p < P; p++) {
            ref_scores(K, d, A + (size_t)p * K * d * d, b + (size_t)p * K * d, x + p * d, c.alpha, ref);
            int rbest = 0;
            for (int a = 0; a < K; a++) {
                double err = fabs(scores[p * K + a] - ref[a]) / (1.0 + fabs(ref[a]));
                if (err > worst) worst = err;
                assert_close(scores[p * K + a], ref[a], 1e-5, 1e-5);
                if (ref[a] > ref[rbest]) rbest = a;
            }
            /* same choice whenever the reference's best is not a near tie */
            double second = -INFINITY;
            for (int a = 0; a < K; a++) if (a != rbest && ref[a] > second) second = ref[a];
            if (ref[rbest] - second > 1e-4) { compared++; agree += arm[p] == rbest; }
            /* fixed played sequence (not the agent's choice) keeps both sides in lockstep */
            arm[p] = (int)eng_rng_below(&r, K);
            rew[p] = (float)eng_rng_normal(&r);
            double *Ap = A + ((size_t)p * K + arm[p]) * d * d, *bp = b + ((size_t)p * K + arm[p]) * d;
            for (int i = 0; i < d; i++) {
                for (int j = 0; j < d; j++) Ap[i * d + j] += (double)x[p * d + i] * x[p * d + j];
                bp[i] += (double)rew[p] * x[p * d + i];
            }
        }
        assert_int_equal(agt_linucb_update(m, x, NULL, arm, rew, NULL), ENG_OK);
    }
    assert_true(compared > P * T / 2);
    assert_int_equal(agree, compared);
    print_message("disjoint vs LAPACK reference: worst relative score error %.3g over %d steps\n", worst, T);
    free(A); free(b);
    agt_linucb_free(m);
}

/* Stationary product: expected reward of level a in context x is theta*_a . x. */
static double run_regret(agt_linucb_kind kind, int T, double *regret_at, int n_marks, const int *marks) {
    const int K = 6, d = 5, k = 3;
    agt_linucb_cfg c = agt_linucb_default();
    c.kind = kind; c.n_arms = K; c.d = d; c.k = k; c.alpha = 1.0f; c.x_per_arm = 0;
    agt_linucb *m = NULL;
    assert_int_equal(agt_linucb_create(&m, &c, 1), ENG_OK);
    eng_rng r;
    eng_rng_seed(&r, 2024);
    double th[6][5];
    for (int a = 0; a < K; a++) for (int i = 0; i < d; i++) th[a][i] = eng_rng_normal(&r) * 0.5;
    float x[5], z[6 * 3];
    double reg = 0;
    int mk = 0;
    for (int t = 1; t <= T; t++) {
        x[0] = 1.0f;
        for (int i = 1; i < d; i++) x[i] = (float)(eng_rng_uniform(&r) * 2 - 1);
        for (int a = 0; a < K; a++) for (int j = 0; j < k; j++) z[a * k + j] = (float)(j == 0 ? a / (double)K : x[j] * a / (double)K);
        int arm;
        assert_int_equal(agt_linucb_choose(m, x, z, NULL, &arm, NULL), ENG_OK);
        double best = -INFINITY, mu[6];
        for (int a = 0; a < K; a++) {
            mu[a] = 0;
            for (int i = 0; i < d; i++) mu[a] += th[a][i] * x[i];
            if (mu[a] > best) best = mu[a];
        }
        reg += best - mu[arm];
        float rw = (float)(mu[arm] + 0.3 * eng_rng_normal(&r));
        assert_int_equal(agt_linucb_update(m, x, z, &arm, &rw, NULL), ENG_OK);
        if (mk < n_marks && t == marks[mk]) regret_at[mk++] = reg;
    }
    agt_linucb_free(m);
    return reg;
}

static void test_disjoint_regret_sublinear(void **state) {
    (void)state;
    const int T = 500;
    int marks[2] = {T, 4 * T};
    double at[2];
    run_regret(AGT_LINUCB_DISJOINT, 4 * T, at, 2, marks);
    print_message("disjoint regret(T=%d) = %.2f, regret(4T) = %.2f\n", T, at[0], at[1]);
    assert_true(at[0] > 0);
    assert_true(at[1] < 4 * at[0] * 0.7);
    assert_true(at[1] / (4 * T) < 0.5 * at[0] / T); /* average regret falls markedly */
}

static void test_hybrid_sanity(void **state) {
    (void)state;
    /* hybrid learns the same stationary product with sublinear regret too */
    const int T = 500;
    int marks[2] = {T, 4 * T};
    double at[2];
    run_regret(AGT_LINUCB_HYBRID, 4 * T, at, 2, marks);
    print_message("hybrid regret(T=%d) = %.2f, regret(4T) = %.2f\n", T, at[0], at[1]);
    assert_true(at[1] < 4 * at[0] * 0.7);

    /* shared coefficients: reward = beta* . z exactly, so a hybrid model whose per-arm part
     * has nothing to explain recovers beta* from plays of arms 0 and 1 and generalises to an
     * arm (2) it has never played */
    const int K = 3, d = 2, k = 2;
    agt_linucb_cfg c = agt_linucb_default();
    c.kind = AGT_LINUCB_HYBRID; c.n_arms = K; c.d = d; c.k = k; c.alpha = 0.0f; c.ridge = 0.01f;
    agt_linucb *m = NULL;
    assert_int_equal(agt_linucb_create(&m, &c, 1), ENG_OK);
    eng_rng r;
    eng_rng_seed(&r, 5);
    const float bstar[2] = {2.0f, -1.0f};
    float x[2] = {0, 0}, z[3 * 2], sc[3];
    for (int t = 0; t < 400; t++) {
        for (int a = 0; a < K; a++) { z[a * k] = (float)(eng_rng_uniform(&r) + a); z[a * k + 1] = (float)eng_rng_normal(&r); }
        int arm = t % 2;
        float rw = bstar[0] * z[arm * k] + bstar[1] * z[arm * k + 1];
        assert_int_equal(agt_linucb_update(m, x, z, &arm, &rw, NULL), ENG_OK);
    }
    float beta[2];
    long cnt;
    assert_int_equal(agt_linucb_get_arm(m, 0, 2, NULL, beta, &cnt), ENG_OK);
    assert_int_equal(cnt, 0);
    assert_close(beta[0], bstar[0], 1e-2, 0);
    assert_close(beta[1], bstar[1], 1e-2, 0);
    z[4] = 3.0f; z[5] = 0.5f;
    assert_int_equal(agt_linucb_scores(m, x, z, NULL, sc), ENG_OK);
    assert_close(sc[2], 2.0 * 3.0 - 0.5, 2e-2, 0);
    agt_linucb_free(m);
}

static void test_guardrail_and_ties(void **state) {
    (void)state;
    agt_linucb_cfg c = agt_linucb_default();
    c.n_arms = 4; c.d = 2;
    agt_linucb *m = NULL;
    assert_int_equal(agt_linucb_create(&m, &c, 2), ENG_OK);
    float x[4] = {1, 0, 0, 1};
    int arm[2];
    /* fresh models: all scores equal -> lowest index */
    assert_int_equal(agt_linucb_choose(m, x, NULL, NULL, arm, NULL), ENG_OK);
    assert_int_equal(arm[0], 0);
    assert_int_equal(arm[1], 0);
    unsigned char allowed[8] = {0, 0, 1, 1, 0, 0, 0, 1};
    assert_int_equal(agt_linucb_choose(m, x, NULL, allowed, arm, NULL), ENG_OK);
    assert_int_equal(arm[0], 2);
    assert_int_equal(arm[1], 3);
    unsigned char none[8] = {0};
    assert_int_equal(agt_linucb_choose(m, x, NULL, none, arm, NULL), ENG_EINVAL);
    /* bad input changes nothing */
    int bad_arm[2] = {1, 7};
    float rw[2] = {1, 1};
    assert_int_equal(agt_linucb_update(m, x, NULL, bad_arm, rw, NULL), ENG_EINVAL);
    float nanrw[2] = {1, NAN};
    int ok_arm[2] = {1, 1};
    assert_int_equal(agt_linucb_update(m, x, NULL, ok_arm, nanrw, NULL), ENG_ENUM);
    long cnt;
    assert_int_equal(agt_linucb_get_arm(m, 0, 1, NULL, NULL, &cnt), ENG_OK);
    assert_int_equal(cnt, 0);
    agt_linucb_cfg badc = c;
    badc.ridge = 0;
    agt_linucb *m2 = NULL;
    assert_int_equal(agt_linucb_create(&m2, &badc, 1), ENG_EINVAL);
    assert_null(m2);
    agt_linucb_free(m);
}

static void test_save_load_roundtrip(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        agt_linucb_cfg c = agt_linucb_default();
        c.kind = (agt_linucb_kind)kind; c.n_arms = 4; c.d = 3; c.k = 2;
        agt_linucb *m = NULL, *m2 = NULL;
        assert_int_equal(agt_linucb_create(&m, &c, 2), ENG_OK);
        eng_rng r;
        eng_rng_seed(&r, 9);
        float x[6], z[2 * 4 * 2], rw[2], s1[8], s2[8];
        int arm[2];
        for (int t = 0; t < 50; t++) {
            for (int i = 0; i < 6; i++) x[i] = (float)eng_rng_normal(&r);
            for (int i = 0; i < 16; i++) z[i] = (float)eng_rng_normal(&r);
            assert_int_equal(agt_linucb_choose(m, x, z, NULL, arm, NULL), ENG_OK);
            rw[0] = (float)eng_rng_normal(&r); rw[1] = (float)eng_rng_normal(&r);
            assert_int_equal(agt_linucb_update(m, x, z, arm, rw, NULL), ENG_OK);
        }
        char path[512];
        snprintf(path, sizeof path, "%s/linucb_%d_%d.h5", test_tmpdir(), kind, (int)getpid());
        assert_int_equal(agt_linucb_save(m, path), ENG_OK);
        assert_int_equal(agt_linucb_load(&m2, path), ENG_OK);
        assert_int_equal(agt_linucb_scores(m, x, z, NULL, s1), ENG_OK);
        assert_int_equal(agt_linucb_scores(m2, x, z, NULL, s2), ENG_OK);
        assert_memory_equal(s1, s2, sizeof s1);
        agt_linucb_free(m2);
        m2 = NULL;
        /* truncated file: clear error, no crash */
        assert_int_equal(truncate(path, 300), 0);
        assert_int_not_equal(agt_linucb_load(&m2, path), ENG_OK);
        assert_null(m2);
        assert_non_null(strstr(eng_err_msg(), path));
        unlink(path);
        assert_int_equal(agt_linucb_load(&m2, path), ENG_ENOTFOUND);
        agt_linucb_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disjoint_matches_lapack_reference),
        cmocka_unit_test(test_disjoint_regret_sublinear),
        cmocka_unit_test(test_hybrid_sanity),
        cmocka_unit_test(test_guardrail_and_ties),
        cmocka_unit_test(test_save_load_roundtrip),
    };
    return cmocka_run_group_tests_name("agt_linucb", tests, NULL, NULL);
}
