/* tests/test_exp_gate_plan.c - the gate's planning candidate (nightly.gate_plan;
 * experiments/nightly/exp_gate_plan.c): a dynamic programme over the product's fitted demand
 * model, its carry-over included, within the change limit.  On a tiny known model whose one-night
 * response says "cut" and whose long-run response says "rise", the plan climbs within the limit
 * night after night; without carry-over, or planning one night only, it cuts.  And in the nightly's
 * decision the plan's first step replaces an agent's cut. */
#include "test_common.h"

#include "db_history.h"
#include "exp_gate.h"
#include "exp_nightly.h"
#include "test_gate_fixture.h"

/* A hand-built fit: units per period exp(log(0.03) + bp log(p / 10) + bl log(ema / 10)), the
 * smoothed past price with memory 0.7, now at 10 (the incumbent); robust standard errors 0.05. */
static exp_gate_fit toy_fit(double bp, double bl) {
    exp_gate_fit f;
    memset(&f, 0, sizeof f);
    f.ok = 1, f.cost = NAN, f.lambda = 0.7, f.ema_now = 10, f.horizon = 10, f.standing = 1, f.sfac = 1;
    f.slope = bp + bl, f.slope_se = 0.07, f.base = 0.3;
    f.sup_lo = 8.5, f.sup_hi = 11.5;
    feat_demand *m = &f.dm;
    m->ok = 1, m->logit = 0, m->form = 0, m->n = 200, m->ref = 10, m->xc = 0, m->traffic_mean = 1;
    m->used = 1u << FEAT_DEMAND_C1 | 1u << FEAT_DEMAND_PRICE | 1u << FEAT_DEMAND_LAG;
    m->beta[FEAT_DEMAND_C1] = log(0.03), m->beta[FEAT_DEMAND_PRICE] = bp, m->beta[FEAT_DEMAND_LAG] = bl;
    for (int j = 0; j < FEAT_DEMAND_K; j++) m->cov[j * FEAT_DEMAND_K + j] = m->rcov[j * FEAT_DEMAND_K + j] = 0.0025;
    f.now.comp = NAN, f.now.lag = 0;
    return f;
}

/* One-night elasticity -3 (a cut gains tonight), long-run -0.5 (revenue rises with the price):
 * the plan rises 15% (the limit) on the first night and stays above the incumbent most nights;
 * the one-step valuation of the same model would cut.  Its uplift is positive and its lower bound
 * below the estimate. */
static void test_plan_rises_within_limit(void **state) {
    (void)state;
    exp_gate_fit f = toy_fit(-3.0, 2.5);
    exp_gate_fit one = f;
    one.horizon = 0, one.standing = 0, one.slope = -3.0;
    assert_true(exp_gate_rel(&one, 10, 9, 0) > 0.05); /* the one-night trap */
    exp_gate_plan p;
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 20, 0.15, 20, 0.95, 0, 0.84, &p), 0);
    assert_true(p.ok);
    assert_close(p.price, 11.5, 1e-9, 0);             /* +15%, the change limit */
    assert_true(p.n_up >= 12 && p.n_up > 2 * p.n_down); /* mostly above the incumbent (the model's
                                                          saw-tooth may harvest the reference late) */
    assert_true(p.rel > 0.1);
    assert_true(p.rel_lo < p.rel && p.rel_lo > 0);
    /* monotone paths (paths 1): the same first step, and never below the incumbent */
    exp_gate_plan pm;
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 20, 0.15, 20, 0.95, 1, 0.84, &pm), 0);
    assert_true(pm.ok);
    assert_close(pm.price, 11.5, 1e-9, 0);
    assert_int_equal(pm.n_down, 0);
    assert_int_equal(pm.n_up, 20);
    assert_true(pm.rel > 0.1 && pm.rel <= p.rel + 1e-12); /* the DP's optimum is at least any monotone path's */
    /* a tighter limit: the first step is that limit */
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 20, 0.05, 20, 0.95, 0, 0.84, &p), 0);
    assert_close(p.price, 10.5, 1e-9, 0);
    /* an upper bound just above the incumbent: the plan's first step never passes it */
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 10.8, 0.15, 20, 0.95, 0, 0.84, &p), 0);
    assert_true(p.ok && p.price <= 10.8 + 1e-9);
}

/* The same one-night response without carry-over (bl = 0), or a myopic discount (gamma 0.01): the
 * plan cuts, within the 15% limit on the first night. */
static void test_plan_cuts_without_carry_over(void **state) {
    (void)state;
    exp_gate_fit f = toy_fit(-3.0, 0.0);
    exp_gate_plan p;
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 20, 0.15, 20, 0.95, 0, 0.84, &p), 0);
    assert_true(p.ok && p.price < 10);
    assert_true(p.price >= 8.5 - 1e-9);
    assert_int_equal(p.n_up, 0);
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 20, 0.15, 20, 0.95, 1, 0.84, &p), 0);
    assert_true(p.ok && p.price < 10 && p.n_up == 0);
    /* the incumbent above its max bound (8), every allowed price beyond one night's cut: the plan
     * charges no price between the bound and the incumbent (it holds), in either form */
    for (int paths = 0; paths < 2; paths++) {
        assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 8, 0.15, 20, 0.95, paths, 0.84, &p), 0);
        assert_true(p.price == 10 && p.n_down == 0 && p.n_up == 0);
    }
    f = toy_fit(-3.0, 2.5);
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 20, 0.15, 20, 0.01, 0, 0.84, &p), 0);
    assert_true(p.ok && p.price < 10);
    /* a fit that is not usable: no plan */
    f.ok = 0;
    assert_int_equal(exp_gate_plan_solve(&f, 10, 5, 20, 0.15, 20, 0.95, 0, 0.84, &p), 0);
    assert_false(p.ok);
}

/* One product on a market whose customers anchor on a smoothed past price (test_exp_gate_standing's
 * market: conversion 0.03 exp(-0.5 (p / 10 - 1) + 2.5 log(r / p)), r_{t+1} = 0.7 r_t + 0.3 p_t).
 * The only agent recommends a 10% cut with a positive OPE uplift.  With the planning candidate
 * (gate_plan 1, the horizon fit gate_standing 10) the nightly's decision rises instead, within the
 * change limit. */

static void test_plan_in_the_decision(void **state) {
    (void)state;
    db_history *h = tgf_ref_market(200, -0.5, 2.5, 1e5, 0.03);
    exp_product_result pr;
    tgf_only_fixed(&pr, 9.0);
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.guard.n_endings = 0;
    cfg.compare.reward.kind = ENV_REWARD_REVENUE;
    cfg.gate_standing = 2; /* two nights: the horizon still sees most of the cut's one-night gain */
    exp_nightly_decision d;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_true(d.price < 10.0); /* without the plan: the agent's cut */
    cfg.gate_plan = 1;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    if (!(d.price > 10.0 && d.price <= 11.5 + 1e-9)) fail_msg("planned price %.4f (reason %s)", d.price, d.reason);
    assert_non_null(strstr(d.reason, "|planned"));
    /* gate_plan 2 on a market without carry-over: the lag is not significant, the fit has no
     * horizon and the decision is the gate's own */
    db_history_free(h);
    h = tgf_ref_market(200, -0.5, 0.0, 1e5, 0.03);
    cfg.gate_plan = 2;
    exp_nightly_decision d0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    cfg.gate_plan = 0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d0), 0);
    assert_close(d.price, d0.price, 0, 0);
    assert_int_equal(d.hold, d0.hold);
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

/* nightly.gate_cut_standing: over a two-night horizon a 10% cut still pays on the reference market
 * (its lift below the customers' reference); valued as a standing price it loses, and a rise is
 * valued as before.  In the decision the agent's cut is then held (modes 1 and 2); on an elastic
 * market without a reference effect it is deployed in both. */
static void test_cut_standing(void **state) {
    (void)state;
    db_history *h = tgf_ref_market(200, -0.5, 2.5, 1e5, 0.03);
    exp_gate_fit hz;
    assert_int_equal(exp_gate_fit_ex(h, 0, 10.0, 0, 2, NULL, &hz), 0);
    assert_true(hz.ok && hz.horizon == 2);
    const double cut = exp_gate_rel(&hz, 10, 9, 0), rise = exp_gate_rel(&hz, 10, 11, 0);
    assert_true(cut > 0);
    hz.cut_standing = 1;
    assert_true(exp_gate_rel(&hz, 10, 9, 0) < 0);
    assert_close(exp_gate_rel(&hz, 10, 11, 0), rise, 1e-12, 0);
    exp_product_result pr;
    tgf_only_fixed(&pr, 9.0);
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.guard.n_endings = 0;
    cfg.compare.reward.kind = ENV_REWARD_REVENUE;
    cfg.gate_standing = 2;
    exp_nightly_decision d;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_true(d.hold == -1 && d.price < 10.0);
    cfg.gate_cut_standing = 1;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    if (d.hold == -1 && d.price < 10.0) fail_msg("the cut deployed at %.2f (%s)", d.price, d.reason);
    cfg.gate_cut_standing = 2; /* the standing fit's valuation of every cut: held too */
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    if (d.hold == -1 && d.price < 10.0) fail_msg("cut_standing 2: the cut deployed at %.2f (%s)", d.price, d.reason);
    /* an elastic market without a reference effect: the cut pays standing too, both modes deploy it */
    db_history_free(h);
    h = tgf_ref_market(200, -3.0, 0.0, 1e5, 0.03);
    for (int mode = 1; mode <= 2; mode++) {
        cfg.gate_cut_standing = mode;
        assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
        if (!(d.hold == -1 && d.price < 10.0)) fail_msg("mode %d, no reference effect: held (%s)", mode, d.reason);
    }
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

/* nightly.gate_cut_standing 3: the night's products pooled say whether customers anchor on
 * recent prices.  24 products of the reference market (each its own price sequence) -> a positive
 * mean lag coefficient; the same without a reference effect -> not. */
static db_history *ref_markets(int P, int T, double b, double g) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, P, T, DAY0, 1), 0);
    static const double lv[6] = {8.5, 9.1, 9.7, 10.3, 10.9, 11.5};
    for (int p = 0; p < P; p++) {
        h->base_price[p] = 10, h->min_price[p] = 5, h->max_price[p] = 20, h->max_change_pct[p] = 15;
        uint32_t s = 12345u + 7919u * (uint32_t)p;
        double r = 10;
        for (int t = 0; t < T; t++) {
            const size_t c = (size_t)p * T + t;
            s = s * 1664525u + 1013904223u;
            double pr = t == T - 1 ? 10.0 : lv[(s >> 16) % 6];
            double q = 0.03 * exp(b * (pr / 10 - 1) + g * log(r / pr));
            h->price[c] = pr, h->units[c] = (float)round(2000 * q), h->revenue[c] = (float)(pr * h->units[c]);
            h->traffic[c] = 2000, h->promo[c] = 0, h->present[c] = 1;
            r = 0.7 * r + 0.3 * pr;
        }
    }
    return h;
}

static void test_lag_pool(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        db_history *h = ref_markets(24, 90, -1.0, k ? 0.0 : 1.5);
        int pos = -1, n = 0;
        double m, se;
        assert_int_equal(exp_nightly_lag_pool(h, &pos, &m, &se, &n), 0);
        assert_int_equal(n, 24);
        if (pos != !k) fail_msg("g %s: mean lag %.3f (se %.3f), positive %d", k ? "0" : "1.5", m, se, pos);
        db_history_free(h);
    }
    /* gate_cut_standing 4's fit: without the lag test a product whose lag is not significant (no
     * reference effect here) is still valued over the horizon; with it, one step */
    db_history *h1 = tgf_ref_market(200, -2.0, 0.0, 1e5, 0.03);
    exp_gate_fit a, b;
    assert_int_equal(exp_gate_fit_lagtest(h1, 0, 10.0, 0, 10, 1, NULL, &a), 0);
    assert_int_equal(exp_gate_fit_lagtest(h1, 0, 10.0, 0, 10, 0, NULL, &b), 0);
    assert_true(a.ok && b.ok);
    assert_int_equal(a.horizon, 0);
    assert_int_equal(b.horizon, 10);
    db_history_free(h1);
    db_history *h = ref_markets(10, 90, -1.0, 1.5); /* too few products: no pooled decision */
    int pos = -1, n = 0;
    double m, se;
    assert_int_equal(exp_nightly_lag_pool(h, &pos, &m, &se, &n), 0);
    assert_int_equal(pos, 0);
    db_history_free(h);
}

/* compare.demand_pool_tau_scale: the night's pooled slope prior (exp_nightly_pool_cfg) keeps its
 * mean and takes its sd (tau) times the scale; 1 leaves the estimate as it was.  It scales the
 * normal prior, so the configuration check refuses it with the nonparametric prior on
 * (compare.demand_pool_np 1, which the night then builds beside the normal one: np grid points),
 * and not with 0 (the default). */
static void test_pool_tau_scale(void **state) {
    (void)state;
    db_history *h = ref_markets(24, 90, -1.0, 0.0);
    double sd[2], mean[2];
    for (int k = 0; k < 2; k++) {
        exp_nightly_cfg cfg = exp_nightly_default(), out;
        assert_int_equal(cfg.compare.demand_pool_np, 0);
        cfg.compare.demand_pool_np = 1;
        cfg.compare.demand_pool = 1;
        cfg.compare.demand_pool_tau_scale = k ? 2.5 : 1.0;
        if (k) {
            assert_int_equal(exp_compare_cfg_check(&cfg.compare), ENG_EINVAL);
            assert_non_null(strstr(eng_err_msg(), "compare.demand_pool_np 0"));
            cfg.compare.demand_pool_np = 0;
        }
        assert_int_equal(exp_compare_cfg_check(&cfg.compare), 0);
        assert_int_equal(exp_nightly_pool_cfg(&cfg, h, &out), 0);
        assert_int_equal(out.compare.demand_prior.n, 24);
        if (k) assert_int_equal(out.compare.demand_prior.np, 0);
        else assert_true(out.compare.demand_prior.np >= FEAT_DEMAND_NP_CORE);
        sd[k] = out.compare.demand_prior.sd, mean[k] = out.compare.demand_prior.mean;
        exp_compare_cfg_free(&cfg.compare);
    }
    assert_true(sd[0] > 0);
    assert_float_equal(sd[1], 2.5 * sd[0], 1e-12);
    assert_float_equal(mean[1], mean[0], 1e-12);
    db_history_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_rises_within_limit),
        cmocka_unit_test(test_plan_cuts_without_carry_over),
        cmocka_unit_test(test_plan_in_the_decision),
        cmocka_unit_test(test_cut_standing),
        cmocka_unit_test(test_lag_pool),
        cmocka_unit_test(test_pool_tau_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
