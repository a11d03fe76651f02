/* tests/test_exp_compare_ens.c - an ensemble of the shared networks (compare.ensemble,
 * exp_compare_ens.c; docs/compare.md, "An ensemble of the shared networks"): the members change
 * the DQN's and DDPG's prices (the mean over three streams is not the first stream's), only
 * theirs (LinUCB and the best fixed price are the same), and the run stays deterministic.  The
 * setting is checked. */
#include "test_common.h"

#include "env_sim.h"
#include "exp_compare.h"
#include "test_compare_small.h"

#define NP 6
#define NT 40

static exp_results *run(const db_history *h, int members) {
    exp_compare_cfg cfg = tcs_small_cfg(members);
    return tcs_run(h, &cfg);
}

static void test_ensemble_prices(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 7, &h, &lg), 0);
    env_sim_log_free(lg);
    exp_results *one = run(h, 1), *a = run(h, 3), *b = run(h, 3);
    int differ = 0;
    for (int p = 0; p < NP; p++) {
        const exp_product_result *x = &one->products[p], *y = &a->products[p], *z = &b->products[p];
        assert_memory_equal(y->agent_price[EXP_AGENT_DQN], z->agent_price[EXP_AGENT_DQN], NT * sizeof(float));
        assert_memory_equal(y->agent_price[EXP_AGENT_DDPG], z->agent_price[EXP_AGENT_DDPG], NT * sizeof(float));
        assert_memory_equal(x->agent_price[EXP_AGENT_LINUCB], y->agent_price[EXP_AGENT_LINUCB], NT * sizeof(float));
        assert_true(x->price[EXP_AGENT_FIXED] == y->price[EXP_AGENT_FIXED]);
        for (int t = 0; t < NT; t++) {
            assert_true(isfinite(y->agent_price[EXP_AGENT_DQN][t]) && isfinite(y->agent_price[EXP_AGENT_DDPG][t]));
            differ += x->agent_price[EXP_AGENT_DDPG][t] != y->agent_price[EXP_AGENT_DDPG][t];
            differ += x->agent_price[EXP_AGENT_DQN][t] != y->agent_price[EXP_AGENT_DQN][t];
        }
    }
    assert_true(differ > 0);
    exp_results_free(one);
    exp_results_free(a);
    exp_results_free(b);
    db_history_free(h);
}

static void test_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    assert_true(c.ensemble >= 1);
    char *ok[] = {"--compare.ensemble=4"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, ok), 0);
    assert_int_equal(c.ensemble, 4);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    char *bad[] = {"--compare.ensemble=0"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, bad), 0);
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ensemble_prices),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
