/* tests/test_env_reward.c - reward formulas, traffic 0, missing traffic and its fallback. */
#include "test_common.h"
#include "env_reward.h"
#include "mdp_fixture.h"

static db_history *four(const float *traffic, const float *units) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 1, 4, 0, 1), ENG_OK);
    const float price[4] = {2, 2, 2, 2.5f};
    fx_fill(h, 0, "sku1", 2.0, price, units, traffic, NULL);
    h->unit_cost[0] = 1.0;
    return h;
}

static const float U[4] = {10, 30, 0, 4}; /* revenue 20, 60, 0, 10 */
static const float V[4] = {100, 200, 0, 50};

static void series(db_history *h, env_reward_kind k, int tau, float *r, env_reward_info *info) {
    env_reward_cfg c = env_reward_default();
    c.kind = k;
    c.tau = tau;
    assert_int_equal(env_reward_series(h, 0, &c, r, info), ENG_OK);
}

static void test_formulas(void **state) {
    (void)state;
    db_history *h = four(V, U);
    float r[4];
    env_reward_info info;
    series(h, ENV_REWARD_REVENUE, 1, r, NULL);
    assert_close(r[0], 20, 1e-6, 0);
    assert_close(r[3], 10, 1e-6, 0);
    series(h, ENV_REWARD_RCR, 1, r, NULL);
    assert_close(r[0], 0.2, 1e-6, 0);
    assert_close(r[1], 0.3, 1e-6, 0);
    assert_close(r[2], 0.0, 0, 0); /* traffic 0, no sales: rate 0 */
    assert_close(r[3], 0.2, 1e-6, 0);
    series(h, ENV_REWARD_DRCR, 1, r, &info);
    assert_true(isnan(r[0]));
    assert_close(r[1], 0.1, 1e-6, 0);
    assert_close(r[2], -0.3, 1e-6, 0);
    assert_close(r[3], 0.2, 1e-6, 0);
    assert_int_equal(info.n_defined, 3);
    assert_int_equal(info.n_traffic_zero, 1);
    assert_int_equal(info.n_traffic_missing, 0);
    assert_int_equal(info.n_fallback_products, 0);
    series(h, ENV_REWARD_DRCR, 2, r, NULL);
    assert_true(isnan(r[1]));
    assert_close(r[2], -0.2, 1e-6, 0);
    assert_close(r[3], -0.1, 1e-6, 0);
    series(h, ENV_REWARD_PROFIT, 1, r, NULL); /* cost 1: 10, 30, 0, 6 */
    assert_close(r[1], 30, 1e-5, 0);
    assert_close(r[3], 6, 1e-5, 0);
    series(h, ENV_REWARD_PCR, 1, r, NULL);
    assert_close(r[1], 0.15, 1e-6, 0);
    assert_close(r[3], 0.12, 1e-6, 0);
    series(h, ENV_REWARD_DPCR, 1, r, NULL);
    assert_close(r[1], 0.05, 1e-6, 0);
    assert_close(r[2], -0.15, 1e-6, 0);
    assert_close(r[3], 0.12, 1e-6, 0);
    /* a gap: period 1 absent -> no reward at 1, and DRCR at 2 has no previous period */
    h->present[1] = 0;
    series(h, ENV_REWARD_DRCR, 1, r, &info);
    assert_true(isnan(r[1]) && isnan(r[2]));
    assert_close(r[3], 0.2, 1e-6, 0);
    assert_int_equal(info.n_present, 3);
    /* profit kinds need the unit cost */
    h->unit_cost[0] = NAN;
    env_reward_cfg c = env_reward_default();
    c.kind = ENV_REWARD_PCR;
    assert_int_equal(env_reward_series(h, 0, &c, r, NULL), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "sku1"));
    db_history_free(h);
}

static void test_traffic_zero_with_sales(void **state) {
    (void)state;
    const float u[4] = {10, 30, 5, 4};
    db_history *h = four(V, u); /* period 2: traffic 0 but 5 sold -> traffic missing */
    float r[4];
    env_reward_info info;
    series(h, ENV_REWARD_DRCR, 1, r, &info);
    assert_int_equal(info.n_traffic_missing, 1);
    assert_int_equal(info.n_fallback_products, 0); /* 3 of 4 known >= 0.5 */
    assert_close(r[1], 0.1, 1e-6, 0);
    assert_true(isnan(r[2]) && isnan(r[3]));
    db_history_free(h);
}

static void test_traffic_missing_fallback(void **state) {
    (void)state;
    db_history *h = four(NULL, U); /* no traffic at all, like Dominick's */
    float r[4];
    env_reward_info info;
    env_reward_cfg c = env_reward_default();
    assert_int_equal(env_reward_series(h, 0, &c, r, &info), ENG_OK);
    assert_int_equal(info.n_fallback_products, 1);
    assert_true(isnan(r[0]));
    assert_close(r[1], 40, 1e-5, 0); /* difference of revenue */
    assert_close(r[2], -60, 1e-5, 0);
    assert_close(r[3], 10, 1e-5, 0);
    char msg[512];
    env_reward_describe(&c, &info, msg, sizeof msg);
    assert_non_null(strstr(msg, "traffic missing for 4 of 4"));
    assert_non_null(strstr(msg, "difference of revenue"));
    assert_non_null(strstr(msg, "1 of 1 products"));
    c.fallback = ENV_FALLBACK_LEVEL;
    assert_int_equal(env_reward_series(h, 0, &c, r, &info), ENG_OK);
    assert_close(r[0], 20, 1e-5, 0);
    assert_close(r[1], 60, 1e-5, 0);
    env_reward_describe(&c, &info, msg, sizeof msg);
    assert_non_null(strstr(msg, "revenue per period itself"));
    c.fallback = ENV_FALLBACK_ERROR;
    assert_int_equal(env_reward_series(h, 0, &c, r, &info), ENG_EINVAL);
    /* revenue never needs traffic */
    c.kind = ENV_REWARD_REVENUE;
    assert_int_equal(env_reward_series(h, 0, &c, r, &info), ENG_OK);
    assert_close(r[0], 20, 1e-5, 0);
    /* one period of four known: below 0.5 -> the whole product takes proxy1 */
    h->traffic[1] = 200;
    c = env_reward_default();
    assert_int_equal(env_reward_series(h, 0, &c, r, &info), ENG_OK);
    assert_int_equal(info.n_fallback_products, 1);
    assert_close(r[1], 40, 1e-5, 0);
    /* threshold 0.2: rates are used, periods without traffic get no reward */
    c.min_traffic_frac = 0.2;
    assert_int_equal(env_reward_series(h, 0, &c, r, &info), ENG_OK);
    assert_int_equal(info.n_fallback_products, 0);
    assert_int_equal(info.n_defined, 0);
    series(h, ENV_REWARD_RCR, 1, r, NULL); /* default threshold: fallback, rcr -> revenue */
    assert_close(r[3], 10, 1e-5, 0);
    db_history_free(h);
}

static void test_value_and_names(void **state) {
    (void)state;
    env_reward_cfg c = env_reward_default();
    assert_int_equal(c.kind, ENV_REWARD_DRCR);
    assert_int_equal(c.tau, 1);
    env_obs cur = {60, 30, 200}, prev = {20, 10, 100};
    double r;
    assert_int_equal(env_reward_value(&c, NAN, &cur, &prev, 0, &r), ENG_OK);
    assert_close(r, 0.1, 1e-12, 0);
    assert_int_equal(env_reward_value(&c, NAN, &cur, NULL, 0, &r), ENG_OK);
    assert_true(isnan(r));
    assert_int_equal(env_reward_value(&c, NAN, &cur, &prev, 1, &r), ENG_OK);
    assert_close(r, 40, 1e-12, 0);
    env_obs nt = {60, 30, NAN};
    assert_true(isnan(env_rate(&nt, NAN, 0, 0)));
    assert_close(env_rate(&nt, NAN, 0, 1), 60, 0, 0);
    c.tau = 0;
    assert_int_equal(env_reward_value(&c, NAN, &cur, &prev, 0, &r), ENG_EINVAL);
    env_reward_kind k;
    for (int i = 0; i < ENV_REWARD_N; i++) {
        assert_int_equal(env_reward_parse(env_reward_name((env_reward_kind)i), &k), ENG_OK);
        assert_int_equal(k, i);
    }
    assert_string_equal(env_reward_name(ENV_REWARD_DRCR), "drcr");
    assert_int_equal(env_reward_parse("rcrx", &k), ENG_EINVAL);
    env_fallback f;
    assert_int_equal(env_fallback_parse("proxy1", &f), ENG_OK);
    assert_int_equal(f, ENV_FALLBACK_PROXY1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formulas),
        cmocka_unit_test(test_traffic_zero_with_sales),
        cmocka_unit_test(test_traffic_missing_fallback),
        cmocka_unit_test(test_value_and_names),
    };
    return cmocka_run_group_tests_name("env_reward", tests, NULL, NULL);
}
