/* tests/test_exp_compare_support.c - DDPG's own support width and band (compare.ddpg_support_steps,
 * compare.ddpg_band; docs/compare.md "Context descriptors (q12desc)"): DDPG's ratio is clipped to
 * the logged ratio range +- ddpg_support_steps grid steps (support_steps when -1), its
 * band is ddpg_band (grid.band when 0, the default), the DQN's choice is left alone; in a whole comparison a
 * DDPG width or band of its own changes the DDPG's prices and not the DQN's (the model rows of
 * the two agents are drawn apart), and the settings are checked. */
#include "test_common.h"

#include "env_sim.h"
#include "exp_compare.h"
#include "exp_compare_int.h"
#include "test_compare_small.h"

#define NP 6
#define NT 40

/* The clip of one product logged at ratios 0.95..1.05 on the grid of 21 levels over +-0.25 (a
 * step of 0.025; the default before session 11, whose 29 levels over +-0.35 have the same step). */
static void test_clip(void **st) {
    (void)st;
    exp_compare_cfg cfg = exp_compare_default();
    cfg.grid.K = 21, cfg.grid.band = 0.25;
    float lo = 0.95f, hi = 1.05f;
    cmp_ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = &cfg, c.K = cfg.grid.K, c.lo_ratio = &lo, c.hi_ratio = &hi;
    cfg.support_steps = 3;
    cfg.ddpg_support_steps = -1, cfg.ddpg_band = 0.0; /* -1: support_steps; 0: grid.band */
    assert_int_equal(cmp_ddpg_steps(&cfg), 3);
    assert_close(cmp_ddpg_clip(&c, 0, 0.80f), 0.875, 1e-6, 0);
    assert_close(cmp_ddpg_clip(&c, 0, 1.20f), 1.125, 1e-6, 0);
    assert_close(cmp_ddpg_clip(&c, 0, 0.99f), 0.99, 1e-6, 0);
    cfg.ddpg_support_steps = 6;
    assert_int_equal(cmp_ddpg_steps(&cfg), 6);
    assert_close(cmp_ddpg_clip(&c, 0, 0.80f), 0.80, 1e-6, 0);
    assert_close(cmp_ddpg_clip(&c, 0, 0.70f), 0.80, 1e-6, 0);
    assert_close(cmp_ddpg_clip(&c, 0, 1.30f), 1.20, 1e-6, 0);
    cfg.ddpg_support_steps = 0;
    assert_close(cmp_ddpg_clip(&c, 0, 0.80f), 0.95, 1e-6, 0);
    /* the DQN's support is support_steps' whatever DDPG's */
    int cnt[21] = {0};
    cnt[8] = cnt[12] = 1; /* levels 0.95 and 1.05 */
    c.lvl_count = cnt;
    float q[21] = {0};
    q[0] = 5, q[5] = 4, q[20] = 3; /* level 5 = 0.875: the support's edge (8 - 3) */
    assert_int_equal(cmp_dqn_pick(&c, 0, q), 5);
    /* DDPG's band: the grid's unless set; the grid for its guard carries it */
    assert_close(cmp_ddpg_band(&cfg), 0.25, 1e-12, 0);
    cfg.ddpg_band = 0.4;
    assert_close(cmp_ddpg_band(&cfg), 0.4, 1e-12, 0);
    const env_grid dg = cmp_ddpg_grid(&cfg);
    assert_close(dg.band, 0.4, 1e-12, 0);
    assert_int_equal(dg.K, cfg.grid.K);
    assert_close(cfg.grid.band, 0.25, 1e-12, 0);
    exp_compare_cfg_free(&cfg);
}

static exp_results *run(const db_history *h, int w, double band) {
    exp_compare_cfg c = tcs_small_cfg(1);
    c.ddpg_support_steps = w;
    c.ddpg_band = band;
    /* the DQN without the best-price slots: those are sought over both agents' ranges, so with
     * them (the default since session 15) DDPG's width moves the DQN's hint as well; what this
     * checks is that the two agents' model rows are drawn apart */
    c.agent_best = 0;
    return tcs_run(h, &c);
}

static void test_compare(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 7, &h, &lg), 0);
    env_sim_log_free(lg);
    exp_results *a = run(h, -1, 0.0), *r[2] = {run(h, 0, 0.0), run(h, 12, 0.45)};
    for (int k = 0; k < 2; k++) {
        const exp_results *b = r[k];
        assert_int_equal(a->n_products, b->n_products);
        int ddpg_moved = 0;
        for (int p = 0; p < a->n_products; p++) {
            const exp_product_result *x = &a->products[p], *y = &b->products[p];
            assert_true(x->price[EXP_AGENT_DQN] == y->price[EXP_AGENT_DQN] ||
                        (isnan(x->price[EXP_AGENT_DQN]) && isnan(y->price[EXP_AGENT_DQN])));
            assert_true(x->price[EXP_AGENT_LINUCB] == y->price[EXP_AGENT_LINUCB] ||
                        (isnan(x->price[EXP_AGENT_LINUCB]) && isnan(y->price[EXP_AGENT_LINUCB])));
            if (x->agent_price[EXP_AGENT_DQN] && y->agent_price[EXP_AGENT_DQN])
                assert_memory_equal(x->agent_price[EXP_AGENT_DQN], y->agent_price[EXP_AGENT_DQN], NT * sizeof(float));
            if (x->agent_price[EXP_AGENT_DDPG] && y->agent_price[EXP_AGENT_DDPG])
                ddpg_moved += memcmp(x->agent_price[EXP_AGENT_DDPG], y->agent_price[EXP_AGENT_DDPG], NT * sizeof(float)) != 0;
            ddpg_moved += x->price[EXP_AGENT_DDPG] != y->price[EXP_AGENT_DDPG];
        }
        assert_true(ddpg_moved > 0);
    }
    exp_results_free(a);
    exp_results_free(r[0]);
    exp_results_free(r[1]);
    db_history_free(h);
}

static void test_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    char *ok[] = {"--compare.ddpg_support_steps=6"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, ok), 0);
    assert_int_equal(c.ddpg_support_steps, 6);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.ddpg_support_steps = -2;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.ddpg_support_steps = 101;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.ddpg_support_steps = -1;
    c.agent_desc = 3;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.agent_desc = 2;
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    char *bd[] = {"--compare.ddpg_band=0.35"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, bd), 0);
    assert_close(c.ddpg_band, 0.35, 1e-12, 0);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.ddpg_band = 0.005;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.ddpg_band = 0.95;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.ddpg_band = -0.1;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.grid.band = 0.5, c.ddpg_band = 0.35; /* narrower than the grid: the logged ratios would be clamped */
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    c.ddpg_band = 0; /* the grid's */
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.grid.band = 0.25;
    eng_err_clear();
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
