/* tests/test_gate_fixture.h - the set-ups the gate's suites share (test_exp_gate,
 * test_exp_gate_standing, test_exp_gate_plan): one product on a market whose customers may anchor
 * on a smoothed past price, and the product's comparison result with one or every agent.
 * Include after test_common.h, db_history.h and exp_nightly.h. */
#ifndef TEST_GATE_FIXTURE_H
#define TEST_GATE_FIXTURE_H

#ifndef DAY0
#define DAY0 19000
#endif

/* One product, T periods, incumbent 10 (the last price), bounds 5..20, change limit 15%.  Prices
 * drawn from six levels 8.5..11.5 (a fixed LCG, not periodic), the last one 10; conversion
 * q0 exp(b (p / 10 - 1) + g log(r / p)) with the reference r_{t+1} = 0.7 r_t + 0.3 p_t (r_0 = 10);
 * g = 0: no reference effect.  Units = traffic x conversion, rounded.  The caller frees it
 * (db_history_free). */
static inline db_history *tgf_ref_market(int T, double b, double g, double traffic, double q0) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 1, T, DAY0, 1), 0);
    h->base_price[0] = 10, h->min_price[0] = 5, h->max_price[0] = 20, h->max_change_pct[0] = 15;
    static const double lv[6] = {8.5, 9.1, 9.7, 10.3, 10.9, 11.5};
    uint32_t s = 12345u;
    double r = 10;
    for (int t = 0; t < T; t++) {
        s = s * 1664525u + 1013904223u;
        double p = t == T - 1 ? 10.0 : lv[(s >> 16) % 6];
        double q = q0 * exp(b * (p / 10 - 1) + g * log(r / p));
        h->price[t] = p, h->units[t] = (float)round(traffic * q), h->revenue[t] = (float)(p * h->units[t]);
        h->traffic[t] = (float)traffic, h->promo[t] = 0, h->present[t] = 1;
        r = 0.7 * r + 0.3 * p;
    }
    return h;
}

/* Product P1 at incumbent 10: every agent at 10 with 50 holdout rows and no shrunk uplift. */
static inline void tgf_product(exp_product_result *pr) {
    memset(pr, 0, sizeof *pr);
    pr->index = 0, pr->product_id = "P1", pr->status = EXP_OK, pr->incumbent_price = 10.0;
    ope_config oc = ope_config_default();
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        ope_result_init(&pr->immediate[a], &oc, 50);
        pr->price[a] = 10.0;
        pr->uplift_shrunk[a].available = 0;
        pr->uplift_shrunk[a].estimate = pr->uplift_shrunk[a].ci_low = pr->uplift_shrunk[a].ci_high = NAN;
    }
}

/* As tgf_product, with only the best fixed price left (every other agent failed), at `price`,
 * with a positive shrunk OPE uplift (0.05 [0.01, 0.09]) and 50 rows of the history's own. */
static inline void tgf_only_fixed(exp_product_result *pr, double price) {
    tgf_product(pr);
    for (int a = 0; a < EXP_N_AGENTS; a++) pr->agent_failed |= a == EXP_AGENT_FIXED ? 0 : 1u << a;
    pr->price[EXP_AGENT_FIXED] = price;
    pr->uplift_shrunk[EXP_AGENT_FIXED] = (ope_value){.available = 1, .estimate = 0.05, .ci_low = 0.01, .ci_high = 0.09,
                                                      .boot_se = 0.02};
    pr->immediate[EXP_AGENT_HISTORY].n = 50;
}

#endif
