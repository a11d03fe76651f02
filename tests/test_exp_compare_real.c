/* tests/test_exp_compare_real.c - the real training rows' reward blended towards the demand
 * model (compare.dyna_real, cmp_real_reward; docs/compare.md, "Denoised real rows"): with the
 * blend the rows' rewards lie much closer to the true expected reward of the logged price than
 * the observed ones (whose day noise is what the agents would otherwise learn), 0 leaves them
 * as logged, and rows the model cannot value keep their reward.  The setting is checked. */
#include "test_common.h"

#include "eng_rng.h"
#include "exp_compare.h"
#include "exp_compare_int.h"
#include "feat_agent.h"
#include "test_demand_rows.h"

enum { N = 100 };

/* drcr-like rewards (the priced period's rate minus the previous one's): the blend removes the
 * priced period's noise, so the rewards' error against the truth (true rate of the logged price
 * minus the same previous rate) falls to a fraction; the exact blend is reward - lam (observed -
 * model). */
static void test_blend_denoises(void **st) {
    (void)st;
    static float s1[N * FEAT_N], s2[N * FEAT_N], price[N];
    static double truth[N];
    eng_rng r;
    eng_rng_seed(&r, 5);
    const double ref = 10.0, qs = 0.04, b = -1.0 / (1 - qs), a = log(qs / (1 - qs));
    tdr_rows(s1, s2, price, truth, N, ref, a, b, 800, &r);
    feat_agent_prod pp;
    assert_int_equal(feat_agent_prod_fit(&pp, s1, s2, price, N, ref, 5.0, NULL), 0);
    assert_true(pp.mok && pp.mlogit);
    double e_obs = 0, e_one = 0, e_half = 0;
    for (int i = 1; i < N; i++) {
        const float *y = s2 + (size_t)i * FEAT_N, *y0 = s2 + (size_t)(i - 1) * FEAT_N;
        const double obs = y[FEAT_REVENUE_1] / y[FEAT_TRAFFIC_1], prev = y0[FEAT_REVENUE_1] / y0[FEAT_TRAFFIC_1];
        const double reward = obs - prev, base = -prev, want = truth[i] - prev;
        const feat_demand_ctx ctx = feat_agent_model_ctx(&pp, s1 + (size_t)i * FEAT_N, y);
        const double m = feat_agent_model_rate_at(&pp, price[i], &ctx, NULL);
        assert_true(isfinite(m));
        assert_true(cmp_real_reward(&pp, price[i], &ctx, reward, base, 0.0) == reward);
        const double r1 = cmp_real_reward(&pp, price[i], &ctx, reward, base, 1.0);
        const double rh = cmp_real_reward(&pp, price[i], &ctx, reward, base, 0.5);
        assert_close(r1, m + base, 1e-9, 1e-9);
        assert_close(rh, 0.5 * (reward + m + base), 1e-9, 1e-9);
        assert_true(cmp_real_reward(&pp, price[i], &ctx, reward, NAN, 1.0) == reward); /* no base */
        e_obs += (reward - want) * (reward - want);
        e_one += (r1 - want) * (r1 - want);
        e_half += (rh - want) * (rh - want);
    }
    /* 800 visitors at 4%: the day's noise is several times the model's error */
    assert_true(e_one < 0.1 * e_obs);
    assert_true(e_half < 0.4 * e_obs && e_half > e_one);
    /* a product without a model keeps its rewards */
    feat_agent_prod none;
    assert_int_equal(feat_agent_prod_fit(&none, NULL, NULL, NULL, 0, ref, 5.0, NULL), 0);
    assert_true(cmp_real_reward(&none, ref, NULL, 0.25, -0.5, 1.0) == 0.25);
}

static void test_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    assert_true(c.dyna_real >= 0 && c.dyna_real <= 1);
    char *ok[] = {"--compare.dyna_real=0.5"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, ok), 0);
    assert_close(c.dyna_real, 0.5, 0, 0);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    char *bad[] = {"--compare.dyna_real=1.5"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, bad), 0);
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blend_denoises),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
