/* tests/test_exp_gate_standing.c - the gate's standing-price valuation (nightly.gate_standing;
 * experiments/nightly/exp_gate_standing.c): on a market whose customers anchor on a smoothed
 * past price, a price cut looks profitable for one period and loses once the reference has
 * followed it; the standing valuation sees the long-run response, the one-step one does not.
 * On a market without a reference effect both agree.  And nightly.gate_model_dir: the extension
 * steps in the demand model's direction for an agent that stands at the incumbent. */
#include "test_common.h"

#include "db_history.h"
#include "exp_gate.h"
#include "exp_nightly.h"
#include "test_gate_fixture.h"


/* Long-run revenue (p / 10) exp(b (p / 10 - 1)) (the reference settled at p) with b = -0.5 peaks
 * well above 10; for one period the reference term adds -2.5 to the slope and a 10% cut gains. */
static void test_standing_sees_the_reference(void **state) {
    (void)state;
    const double b = -0.5, g = 2.5;
    db_history *h = tgf_ref_market(200, b, g, 1e5, 0.03);
    exp_gate_fit one, st;
    assert_int_equal(exp_gate_fit_ex(h, 0, 10.0, 0, 0, NULL, &one), 0);
    assert_true(one.ok && !one.standing);
    assert_true(exp_gate_rel(&one, 10, 9, 0) > 0.05);  /* the one-period trap: a cut gains */
    assert_true(exp_gate_rel(&one, 10, 11, 0) < 0);
    assert_int_equal(exp_gate_fit_ex(h, 0, 10.0, 0, 1, NULL, &st), 0);
    assert_true(st.ok && st.standing);
    assert_close(st.lambda, 0.7, 1e-12, 0);             /* the market's memory, by likelihood */
    assert_close(st.slope, b, 0.35, 0);                 /* the long-run response, not b - g (-3) */
    assert_true(fabs(st.slope - b) < 4 * st.slope_se + 0.1);
    /* standing: the cut loses and the rise gains, as under the truth */
    assert_true(exp_gate_rel(&st, 10, 9, 0) < 0);
    assert_true(exp_gate_rel(&st, 10, 11, 0) > 0);
    assert_close(exp_gate_rel(&st, 10, 11, 0), 1.1 * exp(b * 0.1) - 1, 0.04, 0);
    /* the gate: an agent recommending 9 with a positive OPE uplift deploys one-step, is held
     * standing; one recommending 11.5 is held one-step, deployed (part of the way) standing */
    exp_product_result pr;
    tgf_only_fixed(&pr, 10.0);
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.guard.n_endings = 0;
    cfg.compare.reward.kind = ENV_REWARD_REVENUE;
    for (int standing = 0; standing < 2; standing++)
        for (int up = 0; up < 2; up++) {
            cfg.gate_standing = standing;
            exp_gate_cfg gc = exp_nightly_gate_cfg(&cfg);
            assert_int_equal(gc.standing, standing);
            pr.price[EXP_AGENT_FIXED] = up ? 11.5 : 9.0;
            exp_gate_out o;
            assert_int_equal(exp_gate_pick(&gc, h, &pr, standing ? &st : &one, &o), 0);
            if (o.deploy != (standing == up)) fail_msg("standing %d, up %d: deploy %d at %.2f", standing, up, o.deploy, o.price);
            if (o.deploy) assert_true(up ? o.price > 10 : o.price < 10);
        }
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

/* A horizon of H nights (nightly.gate_standing = H >= 2): a cut's one-night gain fades as the
 * smoothed past price follows it, so its value falls with H toward the standing one, and a rise's
 * climbs toward it; H = 2 still sees most of the one-night trap. */
static void test_horizon_between(void **state) {
    (void)state;
    db_history *h = tgf_ref_market(200, -0.5, 2.5, 1e5, 0.03);
    exp_gate_fit st, hz[3];
    static const int H[3] = {2, 6, 400};
    assert_int_equal(exp_gate_fit_ex(h, 0, 10.0, 0, 1, NULL, &st), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(exp_gate_fit_ex(h, 0, 10.0, 0, H[k], NULL, &hz[k]), 0);
        assert_true(hz[k].ok && hz[k].standing && hz[k].horizon == H[k]);
        assert_close(hz[k].lambda, st.lambda, 0, 0); /* the same fit */
        assert_true(hz[k].ema_now > 8.5 && hz[k].ema_now < 11.5);
    }
    for (int k = 0; k < 2; k++) {
        assert_true(exp_gate_rel(&hz[k], 10, 9, 0) > exp_gate_rel(&hz[k + 1], 10, 9, 0));
        assert_true(exp_gate_rel(&hz[k], 10, 11, 0) < exp_gate_rel(&hz[k + 1], 10, 11, 0));
    }
    assert_true(exp_gate_rel(&hz[0], 10, 9, 0) > 0);  /* two nights: the cut still pays */
    assert_true(exp_gate_rel(&hz[2], 10, 9, 0) < 0);  /* in the long run it loses, as standing */
    assert_close(exp_gate_rel(&hz[2], 10, 11, 0), exp_gate_rel(&st, 10, 11, 0), 0.01, 0);
    db_history_free(h);
}

/* No reference effect: the standing slope is the one-step slope within its error, and both
 * valuations agree on the sign of a 10% move either way. */
static void test_standing_without_reference(void **state) {
    (void)state;
    db_history *h = tgf_ref_market(200, -2.0, 0.0, 1e5, 0.03);
    exp_gate_fit one, st;
    assert_int_equal(exp_gate_fit_ex(h, 0, 10.0, 0, 0, NULL, &one), 0);
    assert_int_equal(exp_gate_fit_ex(h, 0, 10.0, 0, 1, NULL, &st), 0);
    assert_true(one.ok && st.ok && st.standing);
    assert_close(one.slope, -2.0, 0, 0.15);
    assert_close(st.slope, -2.0, 0, 0.2);
    assert_true(st.slope_se >= one.slope_se * 0.5);
    for (int k = 0; k < 2; k++) {
        double c = k ? 11 : 9;
        assert_true((exp_gate_rel(&one, 10, c, 0) > 0) == (exp_gate_rel(&st, 10, c, 0) > 0));
    }
    db_history_free(h);
}

/* nightly.gate_model_dir: every agent recommends the incumbent, the demand model says a higher
 * price gains (b = -0.5: revenue rises with the price).  Without the option the gate holds; with
 * it the extension steps go the model's way, the price rises and the reason says |extended. */
static void test_model_dir(void **state) {
    (void)state;
    db_history *h = tgf_ref_market(200, -0.5, 0.0, 1e5, 0.03);
    exp_product_result pr;
    tgf_product(&pr);
    for (int a = 0; a < EXP_N_AGENTS; a++)
        pr.uplift_shrunk[a] = (ope_value){.available = 1, .estimate = 0.02, .ci_low = -0.01, .ci_high = 0.05, .boot_se = 0.015};
    pr.immediate[EXP_AGENT_HISTORY].n = 50;
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.guard.n_endings = 0;
    cfg.compare.reward.kind = ENV_REWARD_REVENUE;
    exp_nightly_decision d;
    cfg.gate_model_dir = 0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);
    assert_close(d.price, 10.0, 1e-12, 0);
    cfg.gate_model_dir = 1;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_true(d.price > 10.0 && d.price <= 11.5 + 1e-9); /* up, within the 15% change limit */
    assert_non_null(strstr(d.reason, "|extended"));
    /* the model's way is down on an elastic market (b = -3) */
    db_history_free(h);
    h = tgf_ref_market(200, -3.0, 0.0, 1e5, 0.03);
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_true(d.price < 10.0 && d.price >= 8.5 - 1e-9);
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standing_sees_the_reference),
        cmocka_unit_test(test_horizon_between),
        cmocka_unit_test(test_standing_without_reference),
        cmocka_unit_test(test_model_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
