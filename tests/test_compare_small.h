/* tests/test_compare_small.h - the small shared-network comparison the ensemble suites share
 * (test_exp_compare_ens, test_exp_compare_hold, test_exp_compare_refit, test_exp_compare_support,
 * test_exp_compare_view): 16-unit networks, 150 steps at batch 32, few bootstrap draws, a 70%
 * training window, no FQE, `members` members.
 * Include after test_common.h and exp_compare.h. */
#ifndef TEST_COMPARE_SMALL_H
#define TEST_COMPARE_SMALL_H

/* The defaults with the small budget above; the caller frees it (exp_compare_cfg_free). */
static inline exp_compare_cfg tcs_small_cfg(int members) {
    exp_compare_cfg c = exp_compare_default();
    c.shared_steps = 150;
    c.shared_batch = 32;
    c.dqn.hidden1 = c.dqn.hidden2 = 16;
    c.ddpg.hidden1 = c.ddpg.hidden2 = 16;
    c.ope.n_boot = 20;
    c.total_boot = 30;
    c.train_frac = 0.7;
    c.fqe_products = 0;
    c.ensemble = members;
    return c;
}

/* One comparison of h with *c (asserted to succeed), then c freed; the caller frees the
 * results (exp_results_free). */
static inline exp_results *tcs_run(const db_history *h, exp_compare_cfg *c) {
    exp_results *r = NULL;
    assert_int_equal(exp_compare_run(h, c, NULL, NULL, NULL, &r), 0);
    exp_compare_cfg_free(c);
    return r;
}

#endif
