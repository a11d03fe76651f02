/* tests/test_feat_norm.c - normalisation: training window only, values, flat and HDF5 round trips. */
#include "test_common.h"
#include "feat.h"
#include "mdp_fixture.h"

#include <unistd.h>

static void test_fit_values(void **state) {
    (void)state;
    db_history *h = fx_random(2, 30, 3);
    assert_non_null(h);
    feat_norm nm;
    assert_int_equal(feat_norm_fit(&nm, h, NULL, 0, 5, 20), ENG_OK);
    assert_int_equal(nm.n_rows, 2 * 15);
    /* manual mean / std of units_7 over the same states */
    double s = 0, s2 = 0;
    float x[FEAT_N];
    for (int p = 0; p < 2; p++)
        for (int t = 5; t < 20; t++) {
            feat_state(h, p, t, x);
            s += x[FEAT_UNITS_7];
            s2 += (double)x[FEAT_UNITS_7] * x[FEAT_UNITS_7];
        }
    double m = s / 30, sd = sqrt(s2 / 30 - m * m);
    assert_close(nm.mean[FEAT_UNITS_7], m, 1e-3, 1e-5);
    assert_close(nm.std[FEAT_UNITS_7], sd, 1e-3, 1e-4);
    /* flags and calendar pass through */
    assert_close(nm.mean[FEAT_PRICE_MISSING], 0, 0, 0);
    assert_close(nm.std[FEAT_PRICE_MISSING], 1, 0, 0);
    assert_close(nm.mean[FEAT_DOW_SIN], 0, 0, 0);
    /* applied to the training states, a continuous feature has mean 0 and std 1 */
    float *X = malloc(30 * FEAT_N * sizeof(float));
    for (int p = 0; p < 2; p++) feat_states(h, p, 5, 20, X + (size_t)p * 15 * FEAT_N);
    float raw_flag = X[FEAT_PROMO_PREV];
    assert_int_equal(feat_norm_apply(&nm, X, 30), ENG_OK);
    double a = 0, a2 = 0;
    for (int i = 0; i < 30; i++) {
        a += X[i * FEAT_N + FEAT_REVENUE_3];
        a2 += (double)X[i * FEAT_N + FEAT_REVENUE_3] * X[i * FEAT_N + FEAT_REVENUE_3];
    }
    assert_close(a / 30, 0, 1e-4, 0);
    assert_close(a2 / 30, 1, 1e-3, 0);
    assert_true(X[FEAT_PROMO_PREV] == raw_flag);
    /* one product only */
    int only[1] = {1};
    feat_norm n1;
    assert_int_equal(feat_norm_fit(&n1, h, only, 1, 5, 20), ENG_OK);
    assert_int_equal(n1.n_rows, 15);
    assert_true(n1.mean[FEAT_PRICE_CUR] > nm.mean[FEAT_PRICE_CUR]); /* product 1 is dearer */
    /* bad windows */
    assert_int_equal(feat_norm_fit(&nm, h, NULL, 0, 5, 5), ENG_EINVAL);
    assert_int_equal(feat_norm_fit(&nm, h, NULL, 0, 0, 31), ENG_EINVAL);
    free(X);
    db_history_free(h);
}

/* Statistics fitted on [0, 20) ignore everything from period 20 on, but not period 10. */
static void test_training_window_only(void **state) {
    (void)state;
    db_history *h = fx_random(2, 30, 4);
    feat_norm a, b;
    assert_int_equal(feat_norm_fit(&a, h, NULL, 0, 0, 20), ENG_OK);
    for (int p = 0; p < 2; p++)
        for (int t = 20; t < 30; t++) {
            size_t c = (size_t)p * 30 + t;
            h->present[c] = 1;
            h->price[c] = 1000.0f;
            h->units[c] = h->revenue[c] = h->traffic[c] = 1e6f;
        }
    assert_int_equal(feat_norm_fit(&b, h, NULL, 0, 0, 20), ENG_OK);
    assert_memory_equal(a.mean, b.mean, sizeof a.mean);
    assert_memory_equal(a.std, b.std, sizeof a.std);
    h->present[10] = 1;
    h->units[10] = 1e5f;
    assert_int_equal(feat_norm_fit(&b, h, NULL, 0, 0, 20), ENG_OK);
    assert_true(b.mean[FEAT_UNITS_1] != a.mean[FEAT_UNITS_1]);
    db_history_free(h);
}

static void test_flat_roundtrip(void **state) {
    (void)state;
    db_history *h = fx_random(1, 20, 5);
    feat_norm a, b;
    assert_int_equal(feat_norm_fit(&a, h, NULL, 0, 0, 20), ENG_OK);
    float buf[FEAT_NORM_FLAT_LEN];
    feat_norm_to_array(&a, buf);
    assert_int_equal(feat_norm_from_array(&b, buf, FEAT_NORM_FLAT_LEN), ENG_OK);
    assert_memory_equal(a.mean, b.mean, sizeof a.mean);
    assert_memory_equal(a.std, b.std, sizeof a.std);
    assert_int_equal(feat_norm_from_array(&b, buf, FEAT_NORM_FLAT_LEN - 1), ENG_EFORMAT);
    buf[1] += 1.0f; /* another layout */
    assert_int_equal(feat_norm_from_array(&b, buf, FEAT_NORM_FLAT_LEN), ENG_EFORMAT);
    buf[1] -= 1.0f;
    buf[2 + FEAT_N] = 0.0f; /* a zero std */
    assert_int_equal(feat_norm_from_array(&b, buf, FEAT_NORM_FLAT_LEN), ENG_EFORMAT);
    db_history_free(h);
}

static void test_h5_roundtrip(void **state) {
    (void)state;
    db_history *h = fx_random(2, 20, 6);
    feat_norm a, b;
    assert_int_equal(feat_norm_fit(&a, h, NULL, 0, 2, 18), ENG_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/norm_%d.h5", test_tmpdir(), (int)getpid());
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t g = H5Gcreate2(f, "agent", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_int_equal(feat_norm_save_h5(&a, g, "norm"), ENG_OK);
    assert_int_equal(feat_norm_save_h5(&a, g, "norm"), ENG_EIO); /* exists */
    H5Gclose(g);
    H5Fclose(f);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    g = H5Gopen2(f, "agent", H5P_DEFAULT);
    assert_int_equal(feat_norm_load_h5(&b, g, "norm"), ENG_OK);
    assert_memory_equal(a.mean, b.mean, sizeof a.mean);
    assert_memory_equal(a.std, b.std, sizeof a.std);
    assert_int_equal(b.t_begin, 2);
    assert_int_equal(b.t_end, 18);
    assert_int_equal(b.n_rows, 32);
    assert_int_equal(feat_norm_load_h5(&b, g, "absent"), ENG_ENOTFOUND);
    /* a checkpoint of another layout is refused */
    hid_t ng = H5Gopen2(g, "norm", H5P_DEFAULT);
    hid_t at = H5Aopen(ng, "layout_hash", H5P_DEFAULT);
    unsigned long long bad = feat_layout_get()->hash ^ 0x10;
    H5Awrite(at, H5T_NATIVE_ULLONG, &bad);
    H5Aclose(at);
    H5Gclose(ng);
    assert_int_equal(feat_norm_load_h5(&b, g, "norm"), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "layout mismatch"));
    H5Gclose(g);
    H5Fclose(f);
    unlink(path);
    /* a norm of another layout cannot be applied */
    a.layout_hash ^= 1;
    float x[FEAT_N] = {0};
    assert_int_equal(feat_norm_apply(&a, x, 1), ENG_EFORMAT);
    db_history_free(h);
}

/* The statistics do not depend on the order of the products (exact sums across products:
 * the same for any split over MPI ranks, docs/mpi.md): reversed order, bit-identical. */
static void test_order_free(void **state) {
    (void)state;
    db_history *h = fx_random(9, 40, 21);
    assert_non_null(h);
    int rev[9];
    for (int i = 0; i < 9; i++) rev[i] = 8 - i;
    feat_norm a, b;
    assert_int_equal(feat_norm_fit(&a, h, NULL, 0, 3, 35), ENG_OK);
    assert_int_equal(feat_norm_fit(&b, h, rev, 9, 3, 35), ENG_OK);
    assert_memory_equal(a.mean, b.mean, sizeof a.mean);
    assert_memory_equal(a.std, b.std, sizeof a.std);
    assert_int_equal(a.n_rows, 9 * 32);
    /* over_ranks in one process = the plain fit */
    assert_int_equal(feat_norm_fit_ex(&b, h, NULL, 0, 3, 35, 1), ENG_OK);
    assert_memory_equal(a.mean, b.mean, sizeof a.mean);
    assert_memory_equal(a.std, b.std, sizeof a.std);
    db_history_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_free),
        cmocka_unit_test(test_fit_values),     cmocka_unit_test(test_training_window_only),
        cmocka_unit_test(test_flat_roundtrip), cmocka_unit_test(test_h5_roundtrip),
    };
    return cmocka_run_group_tests_name("feat_norm", tests, NULL, NULL);
}
