/* tests/test_exp_compare_carry.c - a model row's carried next state (compare.dyna_carry;
 * exp_compare_dyna.c cmp_push_model_rows, docs/compare.md settings): an agent reads its next
 * states only through its discount, so at gamma 0 the carried state is not built (the logged one
 * is pushed) and its prices equal those of dyna_carry 0 bit for bit; at a discount the carried
 * state is read and the prices move.  Each agent by its own discount. */
#include "test_common.h"

#include "env_sim.h"
#include "exp_compare.h"
#include "test_compare_small.h"

#define NP 20
#define NT 40

/* A comparison of h with the small budget, carry on or off, the two agents' discounts. */
static exp_results *run(const db_history *h, int carry, float dqn_gamma, float ddpg_gamma) {
    exp_compare_cfg c = tcs_small_cfg(1);
    c.dyna_carry = carry;
    c.dqn.gamma = dqn_gamma, c.ddpg.gamma = ddpg_gamma;
    return tcs_run(h, &c);
}

static void test_carry_by_discount(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 11, &h, &lg), 0);
    env_sim_log_free(lg);
    /* both at gamma 0 (the defaults): the carry changes nothing */
    exp_results *a1 = run(h, 1, 0.0f, 0.0f), *a0 = run(h, 0, 0.0f, 0.0f);
    for (int a = 0; a < EXP_N_AGENTS; a++) tcs_same_agent(a1, a0, a, NP, NT);
    /* the DQN discounts, DDPG does not: only the DQN's prices move with the carry */
    exp_results *q1 = run(h, 1, 0.5f, 0.0f), *q0 = run(h, 0, 0.5f, 0.0f);
    assert_true(tcs_differ(q1, q0, EXP_AGENT_DQN, NP, NT) > 0);
    tcs_same_agent(q1, q0, EXP_AGENT_DDPG, NP, NT);
    tcs_same_agent(q1, a1, EXP_AGENT_DDPG, NP, NT); /* and DDPG's are the defaults' */
    /* DDPG discounts, the DQN does not */
    exp_results *d1 = run(h, 1, 0.0f, 0.5f), *d0 = run(h, 0, 0.0f, 0.5f);
    assert_true(tcs_differ(d1, d0, EXP_AGENT_DDPG, NP, NT) > 0);
    tcs_same_agent(d1, d0, EXP_AGENT_DQN, NP, NT);
    tcs_same_agent(d1, a1, EXP_AGENT_DQN, NP, NT);
    exp_results_free(a1);
    exp_results_free(a0);
    exp_results_free(q1);
    exp_results_free(q0);
    exp_results_free(d1);
    exp_results_free(d0);
    db_history_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_carry_by_discount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
