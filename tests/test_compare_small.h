/* tests/test_compare_small.h - the small shared-network comparison the ensemble suites share
 * (test_exp_compare_ens, test_exp_compare_hold, test_exp_compare_refit, test_exp_compare_support,
 * test_exp_compare_view, test_exp_compare_carry): 16-unit networks, 150 steps at batch 32, few
 * bootstrap draws, a 70% training window, no FQE, `members` members; and two comparisons of
 * their prices.
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

/* Periods (of the first nt) and products (of the first np) where agent a's prices in x and y
 * differ. */
static inline int tcs_differ(const exp_results *x, const exp_results *y, int a, int np, int nt) {
    int n = 0;
    for (int p = 0; p < np; p++)
        for (int t = 0; t < nt; t++) n += x->products[p].agent_price[a][t] != y->products[p].agent_price[a][t];
    return n;
}

/* Agent a's prices in x and y equal bit for bit: every period's and the next price. */
static inline void tcs_same_agent(const exp_results *x, const exp_results *y, int a, int np, int nt) {
    for (int p = 0; p < np; p++) {
        assert_memory_equal(x->products[p].agent_price[a], y->products[p].agent_price[a], (size_t)nt * sizeof(float));
        assert_true(x->products[p].price[a] == y->products[p].price[a] ||
                    (isnan(x->products[p].price[a]) && isnan(y->products[p].price[a])));
    }
}

#endif
