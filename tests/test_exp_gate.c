/* tests/test_exp_gate.c - the nightly's deploy gate (experiments/nightly/exp_gate.h): the
 * product's demand model recovers a known price slope, a promotion-only price is not credited
 * with the promotion's lift, a move whose whole step is harmful is shortened, the demand model's
 * direction reaches past the agents' band (gate_model_dir 2, and 3 at the band's edge), and no gate variant ever returns a
 * price outside the guardrails. */
#include "test_common.h"

#include "db_history.h"
#include "eng_rng.h"
#include "exp_gate.h"
#include "exp_nightly.h"
#include "test_gate_fixture.h"

/* One product, T periods, incumbent 10 (the last price), bounds 5..20, change limit 15%. */
static db_history *one_product(int T) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 1, T, DAY0, 1), 0);
    h->base_price[0] = 10, h->min_price[0] = 5, h->max_price[0] = 20, h->max_change_pct[0] = 15;
    return h;
}

static void set_row(db_history *h, int t, double price, double units, double traffic, int promo) {
    h->price[t] = price, h->units[t] = (float)units, h->revenue[t] = (float)(price * units);
    h->traffic[t] = (float)traffic, h->promo[t] = (uint8_t)promo, h->present[t] = 1;
}

/* Six logged levels 0.85..1.15 of 10 in turn, the last period at the incumbent 10; demand
 * traffic x q0 exp(b (p / 10 - 1)), rounded. */
static db_history *exp_demand(int T, double b, double traffic, double q0) {
    db_history *h = one_product(T);
    static const double lv[6] = {8.5, 9.1, 9.7, 10.3, 10.9, 11.5};
    for (int t = 0; t < T; t++) {
        double p = t == T - 1 ? 10.0 : lv[(t * 5) % 6];
        set_row(h, t, p, round(traffic * q0 * exp(b * (p / 10 - 1))), traffic, 0);
    }
    return h;
}


static void set_ope(exp_product_result *pr, exp_agent a, double est, double se) {
    ope_value *v = &pr->uplift_shrunk[a];
    v->available = 1, v->estimate = est, v->boot_se = se;
    v->ci_low = est - 1.96 * se, v->ci_high = est + 1.96 * se;
}

/* the fit recovers a known slope and its interval covers it */
static void test_fit_recovers_slope(void **state) {
    (void)state;
    db_history *h = exp_demand(120, -2.0, 1e4, 0.05);
    exp_gate_fit f;
    assert_int_equal(exp_gate_fit_product(h, 0, 10.0, 0, NULL, &f), 0);
    assert_true(f.ok);
    assert_close(f.slope, -2.0, 0.05, 0);
    assert_true(f.slope_se > 0 && f.slope_se < 0.2);
    assert_true(fabs(f.slope + 2.0) < 3 * f.slope_se + 0.01);
    assert_close(f.sup_lo, 8.5, 1e-12, 0);
    assert_close(f.sup_hi, 11.5, 1e-12, 0);
    /* base: revenue per period at the incumbent = traffic x q0 x 10 */
    assert_close(f.base, 1e4 * 0.05 * 10, 0, 0.01);
    /* elasticity 2 at the incumbent: a price cut of 10% gains, a rise of 10% loses */
    assert_true(exp_gate_rel(&f, 10, 9, 0) > 0);
    assert_true(exp_gate_rel(&f, 10, 11, 0) < 0);
    assert_close(exp_gate_rel(&f, 10, 9, 0), 0.9 * exp(0.2) - 1, 0, 0.05);
    /* no price variation: not ok (never a made-up slope) */
    for (int t = 0; t < 120; t++) set_row(h, t, 10.0, 500, 1e4, 0);
    assert_int_equal(exp_gate_fit_product(h, 0, 10.0, 0, NULL, &f), 0);
    assert_false(f.ok);
    db_history_free(h);
}

/* Normal weeks at 10.00 and 10.50 sell the same (no price effect); promotion weeks, charged
 * 9.00, sell twice as much: the lift belongs to the promotion, not to the price.  An agent
 * recommending 9.00 with a (confounded) positive OPE uplift deploys under the OPE rule of
 * before; the demand-model gate does not credit the promotion's lift to the price, values 9.00
 * as a normal week (a 10% cut that sells no more) and holds. */
static void test_promotion_price_not_credited(void **state) {
    (void)state;
    const int T = 100;
    db_history *h = one_product(T);
    for (int t = 0; t < T; t++) {
        int promo = t % 5 == 2;
        double p = promo ? 9.0 : (t % 2 ? 10.5 : 10.0);
        set_row(h, t, p, (promo ? 200 : 100) + (t % 3) - 1, NAN, promo);
    }
    set_row(h, T - 1, 10.0, 100, NAN, 0);
    exp_gate_fit f;
    assert_int_equal(exp_gate_fit_product(h, 0, 10.0, 0, NULL, &f), 0);
    assert_true(f.ok);
    assert_true(fabs(f.slope) < 0.5); /* without the promotion flag the slope would be about -7 */
    assert_true(exp_gate_rel(&f, 10.0, 9.0, 0) < -0.05);
    assert_int_equal(exp_nightly_price_seen(h, 0, 9.0), EXP_SEEN_PROMO_ONLY);
    exp_product_result pr;
    tgf_product(&pr);
    pr.price[EXP_AGENT_DQN] = 9.0;
    set_ope(&pr, EXP_AGENT_DQN, 50.0, 5.0);
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.guard.n_endings = 0;
    cfg.compare.reward.kind = ENV_REWARD_REVENUE;
    exp_nightly_decision d;
    cfg.gate_mode = EXP_GATE_OPE;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1); /* the old rule is fooled */
    assert_close(d.price, 9.0, 1e-9, 0);
    for (int mode = EXP_GATE_MODEL; mode <= EXP_GATE_BOTH; mode++)
        for (int v = 0; v < 4; v++) { /* with and without extension and the support limit */
            cfg.gate_mode = mode, cfg.gate_extend = v & 1, cfg.gate_support_widen = v & 2 ? -1.0f : 0.0f;
            assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
            assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);
            assert_close(d.price, 10.0, 1e-12, 0);
        }
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

/* Revenue (p / 10) exp(b (p / 10 - 1)) peaks at +5% for b = -1 / 1.05: an agent's whole move to
 * +15% loses a little, a quarter of it gains.  The model gate takes the confident short step;
 * the reason says so, and the expected uplift is in money per period beside the truth. */
static void test_partial_step(void **state) {
    (void)state;
    const double b = -1 / 1.05;
    db_history *h = exp_demand(120, b, 1e7, 0.05);
    exp_product_result pr;
    tgf_product(&pr);
    pr.price[EXP_AGENT_DDPG] = 11.5;
    set_ope(&pr, EXP_AGENT_DDPG, 0.01, 0.001);
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.guard.n_endings = 0;
    cfg.compare.reward.kind = ENV_REWARD_REVENUE;
    cfg.gate_mode = EXP_GATE_MODEL;
    cfg.gate_level = 0.95f, cfg.gate_steps = 4, cfg.gate_extend = 0, cfg.gate_select = -1;
    cfg.gate_min_gain = 0; /* any confident gain (the best possible here is +0.12%) */
    exp_nightly_decision d;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_int_equal(d.agent, EXP_AGENT_DDPG);
    assert_true(d.by_model);
    assert_true(d.frac < 1 && d.price > 10.0 && d.price < 11.0);
    assert_non_null(strstr(d.reason, "|partial"));
    double truth = d.price / 10 * exp(b * (d.price / 10 - 1)) - 1;
    assert_true(truth > 0);
    assert_close(d.uplift, truth * 1e7 * 0.05 * 10, 0, 0.2); /* money per period (per_unit 1) */
    /* the whole move is worse than the incumbent under the truth: steps = 1 holds */
    cfg.gate_steps = 1;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);
    /* extended (the defaults): steps to the guard's edge in the agent's direction; the best
     * estimate among the confident ones lies near the optimum +5%, never past the whole move's
     * harm */
    exp_nightly_cfg def = exp_nightly_default();
    cfg.gate_steps = def.gate_steps, cfg.gate_extend = 1, cfg.gate_select = 0;
    exp_compare_cfg_free(&def.compare);
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_true(d.price > 10.2 && d.price < 11.0);
    assert_true(d.price / 10 * exp(b * (d.price / 10 - 1)) - 1 > 0);
    /* the default minimum gain (0.25% of the incumbent's rate): a confident gain of at most
     * +0.12% is not worth a move, the price is held */
    cfg.gate_min_gain = def.gate_min_gain;
    assert_true(cfg.gate_min_gain > 0.0012);
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);
    assert_close(d.price, 10.0, 1e-12, 0);
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

/* The engine has walked a product's price down to 7.60, at the edge of the agents' band (base
 * price 10, band 0.25: 7.50..12.50); demand is elastic (b = -3: revenue peaks at 3.33, below
 * the hard minimum 5), so every cut gains.  The agents, trained on a history around 10, all
 * point back up to 8.50.  With gate_model_dir 1 no agent stands still, so the model's direction
 * is never tried and the gate holds; with gate_model_dir 2 the demand model's direction is tried
 * to the guardrails' edge (the change limit 15%: 6.46) past the agents' band, and its interval
 * deploys a cut below 7.50 that gains under the truth (gate_model_dir 3: only at the band's
 * edge). */
static void test_model_dir_past_band(void **state) {
    (void)state;
    const double b = -3.0;
    const int T = 120;
    db_history *h = exp_demand(T, b, 1e5, 0.05);
    const double walk[3] = {8.6, 8.0, 7.6};
    for (int i = 0; i < 3; i++) {
        double p = walk[i];
        set_row(h, T - 3 + i, p, round(1e5 * 0.05 * exp(b * (p / 10 - 1))), 1e5, 0);
    }
    exp_product_result pr;
    tgf_product(&pr);
    pr.incumbent_price = 7.6;
    for (int a = 0; a < EXP_N_AGENTS; a++) pr.price[a] = a == EXP_AGENT_HISTORY ? 7.6 : 8.5;
    for (int a = 1; a < EXP_N_AGENTS; a++) set_ope(&pr, (exp_agent)a, 0.02, 0.005);
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.guard.n_endings = 0;
    cfg.compare.reward.kind = ENV_REWARD_REVENUE;
    cfg.compare.grid.band = 0.25;
    cfg.gate_mode = EXP_GATE_BOTH, cfg.gate_extend = 1, cfg.gate_support_widen = -1;
    exp_nightly_decision d;
    cfg.gate_model_dir = 1;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);
    assert_close(d.price, 7.6, 1e-12, 0);
    cfg.gate_model_dir = 2;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_true(d.by_model);
    assert_true(d.price < 7.5 - 1e-9);              /* past the agents' band */
    assert_true(d.price >= 7.6 * 0.85 - 1e-9);      /* never past the change limit */
    assert_non_null(strstr(d.reason, "|extended"));
    assert_true(d.price / 7.6 * exp(b * (d.price - 7.6) / 10) - 1 > 0); /* gains under the truth */
    /* gate_model_dir 3: the same, the incumbent being within one grid step (0.25) of the band's
     * edge 7.50; with a band of 0.5 (5.00..15.00, steps of 0.50) the incumbent is well inside it,
     * the agents' pointing back is evidence, and 3 holds where 2 still moves */
    double p2 = d.price;
    cfg.gate_model_dir = 3;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_close(d.price, p2, 1e-12, 0);
    cfg.compare.grid.band = 0.5;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);
    cfg.gate_model_dir = 2;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    cfg.compare.grid.band = 0.25;
    /* the hard minimum binds before the change limit: the cut stops at 7.00 */
    h->min_price[0] = 7.0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_true(d.price >= 7.0 - 1e-9 && d.price < 7.5);
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

/* Whatever the history, the agents' prices, the mode, level, steps, extension and guard
 * settings (the model's direction included), the gate's price lies inside the guardrails'
 * interval. */
static void test_never_outside_guardrails(void **state) {
    (void)state;
    eng_rng r;
    eng_rng_seed(&r, 12);
    int n_deployed = 0;
    for (int trial = 0; trial < 300; trial++) {
        double b = -4 + 5 * eng_rng_uniform(&r);
        db_history *h = exp_demand(40 + trial % 60, b, trial % 2 ? 1e3 : 1e6, 0.05);
        h->max_change_pct[0] = (double[]){5, 10, 15, 30}[trial % 4];
        h->min_price[0] = trial % 3 ? 9.3 : 5, h->max_price[0] = trial % 5 ? 20 : 10.4;
        exp_product_result pr;
        tgf_product(&pr);
        for (int a = 1; a < EXP_N_AGENTS; a++) {
            pr.price[a] = 10 * (0.5 + 1.5 * eng_rng_uniform(&r));
            set_ope(&pr, (exp_agent)a, eng_rng_uniform(&r) - 0.3, 0.1);
        }
        exp_gate_cfg g = {.mode = trial % 3, .level = (double[]){0.5, 0.8, 0.95}[trial % 3 == 2 ? 0 : trial % 3],
                          .ope_alpha = 0.05, .steps = 1 + trial % 5, .extend = trial % 2, .model_dir = trial / 2 % 4,
                          .reward_kind = ENV_REWARD_REVENUE, .guard = env_guard_default(), .grid = env_grid_default()};
        if (trial % 7 == 0) g.guard.n_endings = 0;
        exp_gate_fit f;
        assert_int_equal(exp_gate_fit_product(h, 0, 10.0, g.reward_kind, NULL, &f), 0);
        exp_gate_out o;
        assert_int_equal(exp_gate_pick(&g, h, &pr, &f, &o), 0);
        env_guard_bounds gb = env_guard_bounds_band(h, 0, 10.0, &g.grid);
        double tmp, lo, hi;
        assert_int_equal(env_guard_apply(&g.guard, &gb, 10.0, &tmp, NULL, &lo, &hi), 0);
        if (!(o.price >= lo - 1e-9 && o.price <= hi + 1e-9))
            fail_msg("trial %d: price %.4f outside [%.4f, %.4f]", trial, o.price, lo, hi);
        n_deployed += o.deploy;
        db_history_free(h);
    }
    assert_true(n_deployed > 30); /* the check saw deployed prices, not only held ones */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_recovers_slope),
        cmocka_unit_test(test_promotion_price_not_credited),
        cmocka_unit_test(test_partial_step),
        cmocka_unit_test(test_model_dir_past_band),
        cmocka_unit_test(test_never_outside_guardrails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
