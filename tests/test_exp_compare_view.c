/* tests/test_exp_compare_view.c - a demand model per agent (compare.ddpg_demand_pool,
 * compare.ddpg_agent_best; exp_compare_best.c cmp_view_split, docs/compare.md "A demand model per
 * agent"): with DDPG's own view the DQN prices exactly as with the defaults and DDPG exactly as
 * when both agents read that view; DDPG's own view equal to the DQN's is no split at all; the
 * run stays deterministic.  The settings are checked. */
#include "test_common.h"

#include "env_sim.h"
#include "exp_compare.h"
#include "test_compare_small.h"

#define NP 6
#define NT 40

/* A comparison of h with the small budget and the night's pooled prior set by hand (the
 * nightly computes it; exp_compare_run alone has none), then:
 *   pool, best            the DQN's view (compare.demand_pool, agent_best)
 *   dpool, dbest          DDPG's (-1: the DQN's) */
static exp_results *run(const db_history *h, int pool, int best, int dpool, int dbest) {
    exp_compare_cfg c = tcs_small_cfg(2);
    c.demand_prior = (feat_demand_prior){.mean = -2.0, .sd = 0.3, .n = 40};
    c.demand_pool = pool, c.agent_best = best;
    c.ddpg_demand_pool = dpool, c.ddpg_agent_best = dbest;
    return tcs_run(h, &c);
}

static void test_views(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 11, &h, &lg), 0);
    env_sim_log_free(lg);
    exp_results *def = run(h, 3, 0, -1, -1);    /* one view: the DQN's defaults' */
    exp_results *both = run(h, 2, 1, -1, -1);   /* one view: the pooled model, best slots */
    exp_results *split = run(h, 3, 0, 2, 1);    /* the DQN the defaults', DDPG the pooled one */
    exp_results *split2 = run(h, 3, 0, 2, 1);
    exp_results *same = run(h, 3, 0, 3, 0);     /* DDPG's own view = the DQN's: no split */
    /* the DQN does not see DDPG's view, DDPG is what it is when both read that view */
    tcs_same_agent(def, split, EXP_AGENT_DQN, NP, NT);
    tcs_same_agent(both, split, EXP_AGENT_DDPG, NP, NT);
    assert_true(tcs_differ(def, split, EXP_AGENT_DDPG, NP, NT) > 0);  /* DDPG's view matters ... */
    assert_true(tcs_differ(both, split, EXP_AGENT_DQN, NP, NT) > 0);  /* ... and so does the DQN's */
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        tcs_same_agent(split, split2, a, NP, NT); /* deterministic */
        tcs_same_agent(def, same, a, NP, NT);     /* no split: the defaults to the bit */
    }
    tcs_same_agent(def, split, EXP_AGENT_LINUCB, NP, NT);
    tcs_same_agent(def, split, EXP_AGENT_FIXED, NP, NT);
    exp_results_free(def);
    exp_results_free(both);
    exp_results_free(split);
    exp_results_free(split2);
    exp_results_free(same);
    db_history_free(h);
}

static void check_refused(exp_compare_cfg *c, const char *msg) {
    assert_int_equal(exp_compare_cfg_check(c), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), msg));
    eng_err_clear();
}

static void test_settings(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    assert_int_equal(c.ddpg_demand_pool, 2); /* the defaults: DDPG's own view */
    assert_int_equal(c.ddpg_agent_best, 1);
    c.ddpg_demand_pool = -1, c.ddpg_agent_best = -1;
    char *ok[] = {"--compare.ddpg_demand_pool=2", "--compare.ddpg_agent_best=1"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 2, ok), 0);
    assert_int_equal(c.ddpg_demand_pool, 2);
    assert_int_equal(c.ddpg_agent_best, 1);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.ddpg_demand_pool = 4;
    check_refused(&c, "compare.ddpg_demand_pool must be");
    c.ddpg_demand_pool = -2;
    check_refused(&c, "compare.ddpg_demand_pool must be");
    c.ddpg_demand_pool = 2, c.ddpg_agent_best = 2;
    check_refused(&c, "compare.ddpg_agent_best must be");
    c.ddpg_agent_best = -2;
    check_refused(&c, "compare.ddpg_agent_best must be");
    /* the defaults stay valid where they have no effect: no agent state (one view), no pooled prior */
    c.ddpg_agent_best = 1, c.agent_state = 0, c.shared = 0;
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.agent_state = 1, c.shared = 1, c.demand_pool = 0;
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
