/* tests/test_exp_compare_hold.c - compare.hold_z (exp_compare_hold.c; docs/compare.md, "Hold
 * unless the members agree"): an ensemble whose members disagree on a move holds the incumbent,
 * one whose members agree moves, for the DQN (advantage over the incumbent's interpolated
 * Q-value) and the DDPG (the members' steps); hold_z = 0 or one member never holds; in a whole
 * comparison a rule that always holds prices the DQN and DDPG at the guarded incumbent.  The
 * setting is checked. */
#include "test_common.h"

#include "env_sim.h"
#include "exp_compare.h"
#include "exp_compare_int.h"
#include "test_compare_small.h"

#define HK 21
#define HE 5

/* A context with the grid of the loop (21 levels, band 0.5: a step of 0.05). */
static cmp_ctx hold_ctx(exp_compare_cfg *cfg, double z) {
    *cfg = exp_compare_default();
    cfg->grid.K = HK;
    cfg->grid.band = 0.5;
    cfg->hold_z = z;
    cmp_ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.K = HK;
    return c;
}

/* Members' Q-values [HE][2][HK] (two periods): flat 0, except level 12 (ratio 1.10) of member e at
 * period t, set to adv[t][e] above the incumbent's value; the incumbent ratio 1.025 lies halfway
 * between levels 10 and 11, whose values are 1 and 3 (interpolated: 2). */
static void fill_q(float *q, const double adv[2][HE]) {
    memset(q, 0, (size_t)HE * 2 * HK * sizeof *q);
    for (int e = 0; e < HE; e++)
        for (int t = 0; t < 2; t++) {
            float *r = q + ((size_t)e * 2 + t) * HK;
            r[10] = 1, r[11] = 3;
            r[12] = (float)(2 + adv[t][e]);
        }
}

static void test_hold_dqn(void **st) {
    (void)st;
    exp_compare_cfg cfg;
    cmp_ctx c = hold_ctx(&cfg, 1.0);
    /* period 0: the members agree (advantage 1 +- 0.1); period 1: they disagree (mean 0.28, sd 1.6) */
    const double adv[2][HE] = {{1.0, 1.1, 0.9, 1.05, 0.95}, {2.0, -1.5, 1.8, -1.2, 0.3}};
    float q[HE * 2 * HK];
    fill_q(q, adv);
    cmp_actions act;
    memset(&act, 0, sizeof act);
    act.ens_q = q, act.ens_q_stride = 2 * HK, act.ens_E = HE;
    assert_int_equal(cmp_hold_dqn(&c, &act, 0, 12, 1.025), 0);
    assert_int_equal(cmp_hold_dqn(&c, &act, 1, 12, 1.025), 1);
    /* the incumbent's own level: no advantage, held */
    assert_int_equal(cmp_hold_dqn(&c, &act, 0, 11, 1.05), 1);
    cfg.hold_z = 0; /* off: never held */
    assert_int_equal(cmp_hold_dqn(&c, &act, 1, 12, 1.025), 0);
    cfg.hold_z = 0.1; /* a lower bar lets the disagreeing move through (0.28 > 0.16) */
    assert_int_equal(cmp_hold_dqn(&c, &act, 1, 12, 1.025), 0);
    cfg.hold_z = 1.0;
    act.ens_E = 1; /* one member: no spread, no rule */
    assert_int_equal(cmp_hold_dqn(&c, &act, 1, 12, 1.025), 0);
    exp_compare_cfg_free(&cfg);
}

static void test_hold_ddpg(void **st) {
    (void)st;
    exp_compare_cfg cfg;
    cmp_ctx c = hold_ctx(&cfg, 1.0);
    /* actor outputs a (ratio 1 + 0.5 a) of two periods: agreeing on a cut to about 0.90, and
     * disagreeing around the incumbent 1.0 */
    const float a[HE][2] = {{-0.20f, -0.20f}, {-0.18f, 0.20f}, {-0.22f, -0.10f}, {-0.19f, 0.16f}, {-0.21f, 0.0f}};
    float am[HE * 2];
    for (int e = 0; e < HE; e++) am[e * 2] = a[e][0], am[e * 2 + 1] = a[e][1];
    cmp_actions act;
    memset(&act, 0, sizeof act);
    act.ens_a = am, act.ens_a_stride = 2, act.ens_E = HE;
    assert_int_equal(cmp_hold_ddpg(&c, &act, 0, 1.0), 0);
    assert_int_equal(cmp_hold_ddpg(&c, &act, 1, 1.0), 1);
    cfg.hold_z = 0;
    assert_int_equal(cmp_hold_ddpg(&c, &act, 1, 1.0), 0);
    exp_compare_cfg_free(&cfg);
}

/* A whole comparison (three members): with a bar no advantage clears, the DQN's and DDPG's next
 * prices are the guarded incumbent (the history agent's), from the evaluation (compare.refit 0)
 * and from the refit (compare.refit 1); without the rule they are not all. */
static exp_results *run(const db_history *h, double z, int refit) {
    exp_compare_cfg c = tcs_small_cfg(3);
    c.hold_z = z;
    c.refit = refit;
    return tcs_run(h, &c);
}

static void test_hold_run(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 6, 40, 1, 18000, 7, &h, &lg), 0);
    env_sim_log_free(lg);
    for (int refit = 0; refit <= 1; refit++) { /* the evaluation's next prices, then the refit's */
        exp_results *free_run = run(h, 0, refit), *held = run(h, 1e9, refit);
        assert_true(refit ? held->refit_products > 0 : held->refit_products == 0);
        int moved = 0;
        for (int p = 0; p < 6; p++) {
            const exp_product_result *x = &free_run->products[p], *y = &held->products[p];
            const double inc = y->price[EXP_AGENT_HISTORY];
            assert_true(y->price[EXP_AGENT_DQN] == inc && y->price[EXP_AGENT_DDPG] == inc);
            assert_true(x->price[EXP_AGENT_LINUCB] == y->price[EXP_AGENT_LINUCB]);
            moved += x->price[EXP_AGENT_DQN] != x->price[EXP_AGENT_HISTORY];
            moved += x->price[EXP_AGENT_DDPG] != x->price[EXP_AGENT_HISTORY];
        }
        assert_true(moved > 0);
        exp_results_free(free_run);
        exp_results_free(held);
    }
    db_history_free(h);
}

static void test_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    char *ok[] = {"--compare.hold_z=1.5"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, ok), 0);
    assert_true(c.hold_z == 1.5);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    char *bad[] = {"--compare.hold_z=-1"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, bad), 0);
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_dqn),
        cmocka_unit_test(test_hold_ddpg),
        cmocka_unit_test(test_hold_run),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
