/* tests/test_exp_compare_dqnsup.c - compare.dqn_smooth_support (docs/compare.md, "A wider grid for
 * the DQN (q12grid)"): the DQN's support is the levels its products may choose (cmp_dqn_pick's
 * rule: the logged range +- support_steps), the union over the products for one shared network,
 * each product's own in a group of per-product slots, every level for a product with nothing
 * logged; nothing is set when the setting is 0; in a whole comparison on a grid wider than the
 * logged prices the setting moves the DQN's prices and leaves DDPG's and LinUCB's as they were;
 * the setting is checked. */
#include "test_common.h"

#include "agt_dqn.h"
#include "eng_backend.h"
#include "env_sim.h"
#include "exp_compare.h"
#include "exp_compare_int.h"
#include "test_compare_small.h"

#define KL 29
#define NPR 3
#define SD 4

/* Greedy levels of slot-per-product agents over many random states must stay in allowed [P][K]. */
static void greedy_inside(agt_dqn *q, int P, const unsigned char *allowed) {
    eng_rng r;
    eng_rng_seed(&r, 3);
    float s[NPR * SD];
    int act[NPR];
    for (int t = 0; t < 300; t++) {
        for (int i = 0; i < P * SD; i++) s[i] = (float)(6 * eng_rng_uniform(&r) - 3);
        assert_int_equal(agt_dqn_greedy(q, s, NULL, act), 0);
        for (int p = 0; p < P; p++) assert_true(allowed[p * KL + act[p]]);
    }
}

static void test_group_support(void **st) {
    (void)st;
    exp_compare_cfg cfg = exp_compare_default();
    cfg.grid.K = KL, cfg.grid.band = 0.35, cfg.dqn_support = 2, cfg.support_steps = 3;
    int cnt[NPR * KL] = {0};
    cnt[0 * KL + 10] = cnt[0 * KL + 12] = 1; /* product 0 logged at levels 10..12: support 7..15 */
    cnt[1 * KL + 14] = cnt[1 * KL + 20] = 2; /* product 1 at 14..20: 11..23 */
    /* product 2: nothing logged */
    cmp_ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = &cfg, c.K = KL, c.lvl_count = cnt;
    int prod[NPR] = {0, 1, 2};
    agt_dqn_cfg dc = agt_dqn_default();
    dc.state_dim = SD, dc.n_actions = KL, dc.hidden1 = dc.hidden2 = 16;
    /* per-product slots: each its own support, the one with nothing logged every level */
    cmp_group g;
    memset(&g, 0, sizeof g);
    g.P = NPR, g.n = NPR, g.prod = prod;
    assert_int_equal(agt_dqn_create(&g.dqn, eng_backend_cpu(), &dc, NPR), 0);
    cfg.dqn_smooth_support = 1;
    assert_int_equal(cmp_dqn_group_support(&c, &g, NULL, 0), 0);
    unsigned char al[NPR * KL];
    memset(al, 0, sizeof al);
    for (int k = 7; k <= 15; k++) al[0 * KL + k] = 1;
    for (int k = 11; k <= 23; k++) al[1 * KL + k] = 1;
    for (int k = 0; k < KL; k++) al[2 * KL + k] = 1;
    greedy_inside(g.dqn, NPR, al);
    agt_dqn_free(g.dqn);
    /* one shared network (a pooled slot): the union 7..23 */
    memset(&g, 0, sizeof g);
    g.P = 1, g.n = 2, g.prod = prod, g.pooled = 1;
    assert_int_equal(agt_dqn_create(&g.dqn, eng_backend_cpu(), &dc, 1), 0);
    assert_int_equal(cmp_dqn_group_support(&c, &g, NULL, 0), 0);
    memset(al, 0, sizeof al);
    for (int k = 7; k <= 23; k++) al[k] = 1;
    greedy_inside(g.dqn, 1, al);
    /* the levels outside the union are reachable only without the support: the untrained network's
     * greedy level over these states leaves 7..23 somewhere, so the check above was not empty */
    assert_int_equal(agt_dqn_set_support(g.dqn, NULL), 0);
    cfg.dqn_smooth_support = 0;
    assert_int_equal(cmp_dqn_group_support(&c, &g, NULL, 0), 0); /* 0: nothing set */
    eng_rng r;
    eng_rng_seed(&r, 3);
    int outside = 0, a;
    float s[SD];
    for (int t = 0; t < 300; t++) {
        for (int i = 0; i < SD; i++) s[i] = (float)(6 * eng_rng_uniform(&r) - 3);
        assert_int_equal(agt_dqn_greedy(g.dqn, s, NULL, &a), 0);
        outside += !al[a];
    }
    assert_true(outside > 0);
    agt_dqn_free(g.dqn);
    exp_compare_cfg_free(&cfg);
}

static exp_results *run(const db_history *h, int on) {
    exp_compare_cfg c = tcs_small_cfg(1);
    c.grid.band = 0.45, c.grid.K = 37; /* the default's step, wider than the logged prices */
    c.dqn_smooth_support = on;
    return tcs_run(h, &c);
}

static int same(double x, double y) { return x == y || (isnan(x) && isnan(y)); }

static void test_compare(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 6, 40, 1, 18000, 7, &h, &lg), 0);
    env_sim_log_free(lg);
    exp_results *a = run(h, 0), *b = run(h, 1);
    assert_int_equal(a->n_products, b->n_products);
    int dqn_moved = 0;
    for (int p = 0; p < a->n_products; p++) {
        const exp_product_result *x = &a->products[p], *y = &b->products[p];
        assert_true(same(x->price[EXP_AGENT_DDPG], y->price[EXP_AGENT_DDPG]));
        assert_true(same(x->price[EXP_AGENT_LINUCB], y->price[EXP_AGENT_LINUCB]));
        dqn_moved += !same(x->price[EXP_AGENT_DQN], y->price[EXP_AGENT_DQN]);
        if (x->agent_price[EXP_AGENT_DQN] && y->agent_price[EXP_AGENT_DQN])
            dqn_moved += memcmp(x->agent_price[EXP_AGENT_DQN], y->agent_price[EXP_AGENT_DQN], 40 * sizeof(float)) != 0;
    }
    assert_true(dqn_moved > 0);
    exp_results_free(a);
    exp_results_free(b);
    db_history_free(h);
}

static void test_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    assert_int_equal(c.dqn_smooth_support, 1); /* the default since session 11 (with the wider grid) */
    char *ok[] = {"--compare.dqn_smooth_support=0"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, ok), 0);
    assert_int_equal(c.dqn_smooth_support, 0);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.dqn_smooth_support = 2;
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    c.dqn_smooth_support = -1;
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    eng_err_clear();
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_support),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
