/* tests/test_feat_agent_best.c - the agent state's best-price slots (features/feat_agent.h,
 * compare.agent_best; docs/compare.md "The model's best price as a state feature (q12best)"): on
 * a product whose conversion depends on its price and on the competitors' mean price, slots 24-25
 * of a state are the fitted demand model's own best price (log ratio to the incumbent) and its
 * relative gain, found by a brute-force search of the model in the state's context inside the
 * range and the change limit; the best price rises with the competitors' prices as the true
 * optimum does; it stays inside the change limit and the range; the first 24 slots are those of
 * the default state; a carried state (feat_agent_state_carry) gets the slots of a state built at
 * its new price; under a profit reward the slots maximise the margin rate; no incumbent or no
 * model gives 0; the setting is range-checked. */
#include "test_common.h"

#include "eng_rng.h"
#include "exp_compare.h"
#include "feat_agent.h"

#include "test_feat_agent_market.h"

#define BP -1.4 /* price slope on p / ref - 1: the optimum near the reference price (9.3 / 10.4 at competitors 9 / 11) */

static double conv(double p, double comp) { return tfm_conv(p, comp, BP); }

static feat_agent_prod fitted(void) {
    static float s1[N * FEAT_N], s2[N * FEAT_N], price[N];
    eng_rng r;
    eng_rng_seed(&r, 91);
    tfm_rows(s1, s2, price, &r, BP);
    feat_agent_prod pp;
    assert_int_equal(feat_agent_prod_fit(&pp, s1, s2, price, N, REF, 5.0, NULL), 0);
    assert_true(pp.mok && pp.mlogit);
    assert_int_equal(pp.best, 0); /* the fit's default: 24 slots */
    assert_int_equal(feat_agent_width(&pp), FEAT_AGENT_N);
    pp.best = 1, pp.blo = REF * 0.75, pp.bhi = REF * 1.25, pp.bchg = 0.15;
    assert_int_equal(feat_agent_width(&pp), FEAT_AGENT_NMAX);
    return pp;
}

/* The model's rate at price p in ctx, times the margin share 1 - cost / p when cost > 0. */
static double objective(const feat_agent_prod *pp, const feat_demand_ctx *ctx, double p, double cost) {
    const double v = feat_agent_model_rate_at(pp, p, ctx, NULL);
    return cost > 0 ? v * (1 - cost / p) : v;
}

/* Brute force: the best price of that objective (cost 0: the model's rate) on 20,001 prices of
 * [lo, hi] in the context of raw; *gain its value over the incumbent's minus 1. */
static double brute(const feat_agent_prod *pp, const float *raw, double lo, double hi, double cost, double *gain) {
    const feat_demand_ctx ctx = feat_agent_model_ctx(pp, raw, raw);
    double bp = lo, bv = -INFINITY;
    for (int k = 0; k <= 20000; k++) {
        const double p = lo + (hi - lo) * k / 20000.0, v = objective(pp, &ctx, p, cost);
        if (v > bv) bv = v, bp = p;
    }
    *gain = bv / objective(pp, &ctx, raw[FEAT_PRICE_CUR], cost) - 1.0;
    return bp;
}

/* The slots are the model's own argmax in the state's context, inside the range and limit. */
static void test_best_values(void **st) {
    (void)st;
    feat_agent_prod pp = fitted();
    const double cms[3] = {9.0, 10.0, 11.2};
    for (int i = 0; i < 3; i++) {
        float raw[FEAT_N], s[FEAT_AGENT_NMAX], s0[FEAT_AGENT_NMAX];
        const double inc = 9.6;
        tfm_state(raw, inc, 9.9, 10.1, cms[i]);
        feat_agent_state(raw, &pp, s);
        double g, gb;
        const double b = brute(&pp, raw, fmax(pp.blo, inc * 0.85), fmin(pp.bhi, inc * 1.15), 0, &gb);
        assert_close(s[FEAT_AGENT_N], 10.0 * log(b / inc), 2e-3, 0);
        assert_close(s[FEAT_AGENT_N + 1], 10.0 * gb, 1e-4, 1e-4);
        double bp;
        assert_int_equal(feat_agent_best_price(&pp, s, &bp, &g), 0);
        assert_close(bp, b, 2e-3 * b, 0);
        assert_true(g >= 0);
        feat_agent_prod p0 = pp;
        p0.best = 0;
        feat_agent_state(raw, &p0, s0);
        for (int k = 0; k < FEAT_AGENT_N; k++) assert_true(s0[k] == s[k]); /* the other slots: as before */
    }
}

/* The best price rises with the competitors' prices, as the true optimum does, and lands near the
 * truth's; a narrow change limit or range holds it at the limit. */
static void test_best_context_limits(void **st) {
    (void)st;
    feat_agent_prod pp = fitted();
    float lo[FEAT_N], hi[FEAT_N], sl[FEAT_AGENT_NMAX], sh[FEAT_AGENT_NMAX];
    tfm_state(lo, 10.0, 10.0, 10.0, 9.0);
    tfm_state(hi, 10.0, 10.0, 10.0, 11.0);
    feat_agent_state(lo, &pp, sl);
    feat_agent_state(hi, &pp, sh);
    double tl = 0, th = 0, vl = -1, vh = -1; /* the truth's optima on a fine grid */
    for (int k = 0; k <= 3000; k++) {
        const double p = 8.5 + 3.0 * k / 3000.0, a = p * conv(p, 9.0), b = p * conv(p, 11.0);
        if (a > vl) vl = a, tl = p;
        if (b > vh) vh = b, th = p;
    }
    assert_true(th > tl + 0.2);
    const double bl = 10.0 * exp(sl[FEAT_AGENT_N] / 10.0), bh = 10.0 * exp(sh[FEAT_AGENT_N] / 10.0);
    assert_true(bh > bl + 0.5 * (th - tl));
    assert_close(bl, tl, 0.03 * tl, 0);
    assert_close(bh, th, 0.03 * th, 0);
    /* a 2% change limit: the best price is the limit in the optimum's direction */
    pp.bchg = 0.02;
    feat_agent_state(hi, &pp, sh);
    const double lim = th > 10.0 ? 10.2 : 9.8;
    assert_close(10.0 * exp(sh[FEAT_AGENT_N] / 10.0), lim, 1e-3, 0);
    /* a range that ends below the incumbent's limit: the range's edge */
    pp.bchg = 0.15, pp.bhi = 10.05;
    feat_agent_state(hi, &pp, sh);
    assert_true(10.0 * exp(sh[FEAT_AGENT_N] / 10.0) <= 10.05 + 1e-3);
}

/* Under a profit reward (pp->bcost, the unit cost) the slots are the model's best MARGIN rate,
 * rate x (1 - cost / price): brute force of that objective; the price is higher than the revenue
 * hint's and its gain is the margin rate's over the incumbent's. */
static void test_best_margin(void **st) {
    (void)st;
    feat_agent_prod pp = fitted();
    float raw[FEAT_N], sr[FEAT_AGENT_NMAX], sm[FEAT_AGENT_NMAX];
    const double inc = 9.6, cost = 6.0;
    tfm_state(raw, inc, 9.9, 10.1, 10.0);
    feat_agent_state(raw, &pp, sr); /* revenue */
    assert_true(isnan(pp.bcost) || pp.bcost == 0);
    pp.bcost = cost;
    feat_agent_state(raw, &pp, sm);
    double gb;
    const double bp = brute(&pp, raw, fmax(pp.blo, inc * 0.85), fmin(pp.bhi, inc * 1.15), cost, &gb);
    assert_close(sm[FEAT_AGENT_N], 10.0 * log(bp / inc), 2e-3, 0);
    assert_close(sm[FEAT_AGENT_N + 1], 10.0 * gb, 1e-4, 1e-4);
    assert_true(sm[FEAT_AGENT_N] > sr[FEAT_AGENT_N] + 0.05f); /* a margin pushes the price up */
    pp.bcost = 20.0; /* a cost above every price in range: no positive margin at the incumbent */
    feat_agent_state(raw, &pp, sm);
    assert_true(sm[FEAT_AGENT_N] == 0.0f && sm[FEAT_AGENT_N + 1] == 0.0f);
}

/* A carried state gets the slots of the state built at its new price; nothing known: 0. */
static void test_best_carry_missing(void **st) {
    (void)st;
    feat_agent_prod pp = fitted();
    const double pl = 10.6, p = 9.2, ma3 = 10.3, ma12 = 10.1, cm = 10.4;
    float raw[FEAT_N], alt[FEAT_N], a[FEAT_AGENT_NMAX], b[FEAT_AGENT_NMAX], c[FEAT_AGENT_NMAX];
    tfm_state(raw, pl, ma3, ma12, cm);
    tfm_state(alt, p, ma3 + (p - pl) / 3, ma12 + (p - pl) / 12, cm);
    feat_agent_state(raw, &pp, a);
    feat_agent_state(alt, &pp, b);
    feat_agent_state_carry(a, &pp, pl, p, NAN, c);
    for (int i = FEAT_AGENT_N; i < FEAT_AGENT_NMAX; i++) assert_close(c[i], b[i], 3e-3, 3e-3);
    assert_true(fabsf(c[FEAT_AGENT_N] - a[FEAT_AGENT_N]) > 0.1); /* they moved with the incumbent */
    raw[FEAT_PRICE_MISSING] = 1.0f;
    feat_agent_state(raw, &pp, a);
    assert_true(a[FEAT_AGENT_N] == 0.0f && a[FEAT_AGENT_N + 1] == 0.0f);
    double bp, g;
    assert_int_equal(feat_agent_best_price(&pp, a, &bp, &g), -1);
    assert_true(isnan(bp) && isnan(g));
    feat_agent_prod none;
    assert_int_equal(feat_agent_prod_fit(&none, NULL, NULL, NULL, 0, REF, 5.0, NULL), 0);
    none.best = 1, none.blo = none.bhi = none.bchg = NAN;
    tfm_state(raw, 10.0, 10.0, 10.0, 10.0);
    feat_agent_state(raw, &none, a);
    assert_true(a[FEAT_AGENT_N] == 0.0f && a[FEAT_AGENT_N + 1] == 0.0f);
    assert_string_equal(feat_agent_name(FEAT_AGENT_N), "model_best_log");
}

static void test_best_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    assert_int_equal(c.agent_best, 1); /* the default since session 15 */
    char *ok[] = {"--compare.agent_best=0"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, ok), 0);
    assert_int_equal(c.agent_best, 0);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.agent_best = 2;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.agent_best = -1;
    assert_int_not_equal(exp_compare_cfg_check(&c), 0);
    c.agent_best = 1, c.agent_state = 0, c.shared = 0; /* nothing reads the slots: the default stays valid */
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.agent_best = 0;
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_values),
        cmocka_unit_test(test_best_context_limits),
        cmocka_unit_test(test_best_margin),
        cmocka_unit_test(test_best_carry_missing),
        cmocka_unit_test(test_best_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
