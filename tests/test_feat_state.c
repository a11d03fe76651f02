/* tests/test_feat_state.c - feature values on a hand-made history, missing values, calendar,
 * layout, and the no-leakage guarantee. */
#include "test_common.h"
#include "feat.h"
#include "mdp_fixture.h"

#define N_ NAN
/* 1 product, 10 daily periods from 1970-01-01; t = 4 absent; t = 2 traffic unknown. */
static db_history *hand_history(void) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 1, 10, 0, 1), ENG_OK);
    const float price[10] = {2.0f, 2.0f, 1.8f, 1.8f, N_, 1.6f, 1.6f, 2.2f, 2.0f, 2.0f};
    const float units[10] = {10, 12, 15, 15, 0, 20, 18, 8, 10, 11};
    const float traffic[10] = {100, 100, N_, 120, 0, 160, 150, 80, 100, 110};
    const uint8_t promo[10] = {0, 0, 0, 0, 0, 1, 1, 0, 0, 0};
    fx_fill(h, 0, "oj", 2.0, price, units, traffic, promo);
    /* competitor prices: t=3: {2.0}; t=5: {1.5, 1.7} */
    const int counts[10] = {0, 0, 0, 1, 0, 2, 0, 0, 0, 0};
    const float cp[3] = {2.0f, 1.5f, 1.7f};
    fx_comp(h, counts, cp);
    return h;
}

static void test_values_exact(void **state) {
    (void)state;
    db_history *h = hand_history();
    float x[FEAT_N];
    assert_int_equal(feat_state(h, 0, 7, x), ENG_OK);
    assert_close(x[FEAT_PRICE_CUR], 1.6, 1e-6, 0);
    assert_close(x[FEAT_PRICE_RATIO_BASE], 0.8, 1e-6, 0);
    assert_close(x[FEAT_PRICE_MA3], 1.6, 1e-6, 0);          /* t=4 absent: (1.6+1.6)/2 */
    assert_close(x[FEAT_PRICE_MA12], 10.8 / 6, 1e-6, 0);    /* t=0..6 without t=4 */
    assert_close(x[FEAT_DISCOUNT_DEPTH], 0.2, 1e-6, 0);
    assert_close(x[FEAT_PRICE_MISSING], 0, 0, 0);
    assert_close(x[FEAT_UNITS_1], 18, 1e-5, 0);
    assert_close(x[FEAT_UNITS_3], 57, 1e-4, 0);             /* (20+18) * 3/2 */
    assert_close(x[FEAT_UNITS_7], 105, 1e-4, 0);            /* 90 * 7/6 */
    assert_close(x[FEAT_REVENUE_1], 28.8, 1e-4, 0);
    assert_close(x[FEAT_REVENUE_3], 91.2, 1e-4, 0);
    assert_close(x[FEAT_REVENUE_7], 158.8 * 7 / 6, 1e-3, 0);
    assert_close(x[FEAT_SALES_MISSING_FRAC], 1.0 / 7, 1e-6, 0);
    assert_close(x[FEAT_TRAFFIC_1], 150, 1e-4, 0);
    assert_close(x[FEAT_TRAFFIC_3], 465, 1e-3, 0);
    assert_close(x[FEAT_TRAFFIC_7], 882, 1e-3, 0);          /* 630 * 7/5 */
    assert_close(x[FEAT_TRAFFIC_MISSING_FRAC], 2.0 / 7, 1e-6, 0);
    assert_close(x[FEAT_CONV_1], 0.12, 1e-6, 0);
    assert_close(x[FEAT_CONV_7], 75.0 / 630, 1e-6, 0);
    assert_close(x[FEAT_CONV_MISSING], 0, 0, 0);
    assert_close(x[FEAT_COMP_REL_MIN], 1.6 / 1.5, 1e-6, 0); /* t=6 has none: latest is t=5 */
    assert_close(x[FEAT_COMP_REL_MEAN], 1.0, 1e-6, 0);
    assert_close(x[FEAT_COMP_RANK], 0.5, 1e-6, 0);
    assert_close(x[FEAT_COMP_MISSING], 0, 0, 0);
    assert_close(x[FEAT_PROMO_PREV], 1, 0, 0);
    /* 1970-01-08 is a Thursday (Monday = 0 -> 3), day of year 7 -> week 1 */
    assert_close(x[FEAT_DOW_SIN], sin(2 * M_PI * 3 / 7), 1e-6, 0);
    assert_close(x[FEAT_DOW_COS], cos(2 * M_PI * 3 / 7), 1e-6, 0);
    assert_close(x[FEAT_WOY_SIN], sin(2 * M_PI * 1 / 53), 1e-6, 0);
    assert_close(x[FEAT_WOY_COS], cos(2 * M_PI * 1 / 53), 1e-6, 0);
    db_history_free(h);
}

static void test_missing_rules(void **state) {
    (void)state;
    db_history *h = hand_history();
    float x[FEAT_N];
    /* t = 5: period 4 absent -> incumbent is p_3 = 1.8, flagged */
    assert_int_equal(feat_state(h, 0, 5, x), ENG_OK);
    assert_close(x[FEAT_PRICE_CUR], 1.8, 1e-6, 0);
    assert_close(x[FEAT_PRICE_MISSING], 1, 0, 0);
    assert_close(x[FEAT_UNITS_1], 0, 0, 0);            /* nothing observed in the window */
    assert_close(x[FEAT_TRAFFIC_1], 0, 0, 0);
    /* takes conv_7: periods 0, 1, 3 (traffic of 2 unknown) */
    assert_close(x[FEAT_CONV_1], (10.0 + 12 + 15) / (100.0 + 100 + 120), 1e-6, 0);
    assert_close(x[FEAT_PROMO_PREV], 0, 0, 0);
    assert_close(x[FEAT_COMP_REL_MIN], 0.9, 1e-6, 0);  /* t=3: {2.0} */
    assert_close(x[FEAT_COMP_RANK], 0.0, 0, 0);
    /* t = 0: nothing known at all */
    assert_int_equal(feat_state(h, 0, 0, x), ENG_OK);
    assert_close(x[FEAT_PRICE_CUR], 2.0, 0, 0);        /* base price */
    assert_close(x[FEAT_PRICE_MISSING], 1, 0, 0);
    assert_close(x[FEAT_SALES_MISSING_FRAC], 1, 0, 0);
    assert_close(x[FEAT_TRAFFIC_MISSING_FRAC], 1, 0, 0);
    assert_close(x[FEAT_CONV_MISSING], 1, 0, 0);
    assert_close(x[FEAT_CONV_7], 0, 0, 0);
    assert_close(x[FEAT_COMP_MISSING], 1, 0, 0);
    assert_close(x[FEAT_COMP_REL_MIN], 1, 0, 0);
    assert_close(x[FEAT_COMP_RANK], 0.5, 0, 0);
    /* t = 10 (the next, unpriced period) is allowed; 11 is not */
    assert_int_equal(feat_state(h, 0, 10, x), ENG_OK);
    assert_close(x[FEAT_PRICE_CUR], 2.0, 0, 0);
    assert_close(x[FEAT_COMP_MISSING], 0, 0, 0);       /* window 3..9: latest competitor prices at t=5 */
    assert_close(x[FEAT_COMP_REL_MIN], 2.0 / 1.5, 1e-6, 0);
    assert_close(x[FEAT_COMP_RANK], 1.0, 0, 0);
    assert_int_equal(feat_state(h, 0, 11, x), ENG_EINVAL);
    assert_int_equal(feat_state(h, 1, 3, x), ENG_EINVAL);
    /* no base price, no history: ratio 1, price 0, never NaN */
    h->base_price[0] = NAN;
    assert_int_equal(feat_state(h, 0, 0, x), ENG_OK);
    assert_close(x[FEAT_PRICE_CUR], 0, 0, 0);
    assert_close(x[FEAT_PRICE_RATIO_BASE], 1, 0, 0);
    assert_close(x[FEAT_DISCOUNT_DEPTH], 0, 0, 0);
    db_history_free(h);
}

static void test_all_finite_random(void **state) {
    (void)state;
    db_history *h = fx_random(3, 50, 11);
    assert_non_null(h);
    h->base_price[1] = NAN;
    float *x = malloc(51 * FEAT_N * sizeof(float));
    for (int p = 0; p < 3; p++) {
        assert_int_equal(feat_states(h, p, 0, 51, x), ENG_OK);
        for (int i = 0; i < 51 * FEAT_N; i++) assert_true(isfinite(x[i]));
    }
    free(x);
    db_history_free(h);
}

static void test_calendar_weekly(void **state) {
    (void)state;
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 1, 3, 19783, 7), ENG_OK); /* 2024-03-01, a Friday */
    h->product_id[0] = strdup("x");
    float x[FEAT_N];
    assert_int_equal(feat_state(h, 0, 0, x), ENG_OK);
    assert_close(x[FEAT_DOW_SIN], sin(2 * M_PI * 4 / 7), 1e-6, 0);
    assert_close(x[FEAT_WOY_SIN], sin(2 * M_PI * 8 / 53), 1e-6, 0); /* day of year 60 (leap) */
    assert_int_equal(feat_state(h, 0, 2, x), ENG_OK);                /* 2024-03-15: day 74 */
    assert_close(x[FEAT_WOY_COS], cos(2 * M_PI * 10 / 53), 1e-6, 0);
    assert_close(x[FEAT_DOW_SIN], sin(2 * M_PI * 4 / 7), 1e-6, 0);
    h->day0 = 19722; /* 2023-12-31: day of year 364 -> week 52 */
    assert_int_equal(feat_state(h, 0, 0, x), ENG_OK);
    assert_close(x[FEAT_WOY_SIN], sin(2 * M_PI * 52 / 53), 1e-6, 0);
    db_history_free(h);
}

static void test_layout(void **state) {
    (void)state;
    const feat_layout *L = feat_layout_get();
    assert_int_equal(L->n, FEAT_N);
    assert_string_equal(L->version, FEAT_LAYOUT_VERSION);
    for (int i = 0; i < FEAT_N; i++) {
        assert_non_null(L->names[i]);
        assert_int_equal(feat_index_of(L->names[i]), i); /* unique names */
    }
    assert_int_equal(feat_index_of("price_cur"), FEAT_PRICE_CUR);
    assert_int_equal(feat_index_of("nope"), -1);
    assert_int_equal(feat_layout_check(FEAT_N, L->hash, "m"), ENG_OK);
    assert_int_equal(feat_layout_check(FEAT_N, L->hash ^ 1, "model.h5"), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "model.h5"));
    assert_int_equal(feat_layout_check(FEAT_N - 1, L->hash, "m"), ENG_EFORMAT);
}

/* State t must not change when anything at t or later changes, and must change with t-1. */
static void perturb_from(db_history *h, int p, int t_from, eng_rng *r) {
    const int T = h->n_periods;
    for (int u = t_from; u < T; u++) {
        size_t c = (size_t)p * T + u;
        h->present[c] = (uint8_t)eng_rng_below(r, 2);
        h->price[c] = (float)(0.5 + 5 * eng_rng_uniform(r));
        h->units[c] = (float)eng_rng_below(r, 100);
        h->revenue[c] = (float)(100 * eng_rng_uniform(r));
        h->traffic[c] = eng_rng_uniform(r) < 0.5 ? NAN : (float)eng_rng_below(r, 500);
        h->promo[c] = (uint8_t)eng_rng_below(r, 2);
        for (int64_t k = h->comp_off[c]; k < h->comp_off[c + 1]; k++) h->comp_price[k] = (float)(0.5 + 5 * eng_rng_uniform(r));
    }
}

static void test_no_leakage(void **state) {
    (void)state;
    eng_rng r;
    eng_rng_seed(&r, 99);
    const int T = 40;
    for (int t = 1; t <= T; t++) {
        db_history *h = fx_random(2, T, 5);
        assert_non_null(h);
        float a[FEAT_N], b[FEAT_N];
        assert_int_equal(feat_state(h, 1, t, a), ENG_OK);
        perturb_from(h, 1, t, &r);
        perturb_from(h, 0, 0, &r); /* other products never matter */
        assert_int_equal(feat_state(h, 1, t, b), ENG_OK);
        assert_memory_equal(a, b, sizeof a);
        /* changing the price of t-1 changes the state */
        size_t c = (size_t)1 * T + (t - 1);
        h->present[c] = 1;
        h->price[c] = 123.0f;
        assert_int_equal(feat_state(h, 1, t, b), ENG_OK);
        assert_true(b[FEAT_PRICE_CUR] == 123.0f);
        /* and so does the traffic of t-1 */
        h->traffic[c] = 777.0f;
        float d[FEAT_N];
        assert_int_equal(feat_state(h, 1, t, d), ENG_OK);
        assert_true(d[FEAT_TRAFFIC_1] == 777.0f);
        db_history_free(h);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_exact),   cmocka_unit_test(test_missing_rules),
        cmocka_unit_test(test_all_finite_random), cmocka_unit_test(test_calendar_weekly),
        cmocka_unit_test(test_layout),         cmocka_unit_test(test_no_leakage),
    };
    return cmocka_run_group_tests_name("feat_state", tests, NULL, NULL);
}
