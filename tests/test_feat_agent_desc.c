/* tests/test_feat_agent_desc.c - the agent state's context descriptors (features/feat_agent.h,
 * compare.agent_desc; docs/compare.md "Context descriptors (q12desc)"): on a product whose
 * conversion depends on its price and on the competitors' mean price, the descriptors of a
 * state are the fitted demand model's relative rates around the state's incumbent in the
 * state's own context (desc 1: 10% below and above; desc 2: four ratios), they move with the
 * competitors' prices the way the true demand does (a rise pays more when the competitors are
 * dearer), the other slots are those of the default mode, the default mode keeps the mean-price
 * descriptors, a carried state (feat_agent_state_carry) gets the descriptors of a state built
 * at its new price, and a state without an incumbent or a product without a model gets 0. */
#include "test_common.h"

#include "eng_rng.h"
#include "feat_agent.h"

#include "test_feat_agent_market.h"

#define BP -3.0 /* price slope on p / ref - 1 */

static double conv(double p, double comp) { return tfm_conv(p, comp, BP); }

/* The model's relative rate 10 (rate(inc e^x) / rate(inc) - 1) in the context of raw. */
static double expect(const feat_agent_prod *pp, const float *raw, double x) {
    const feat_demand_ctx ctx = feat_agent_model_ctx(pp, raw, raw);
    const double inc = raw[FEAT_PRICE_CUR];
    return 10.0 * (feat_agent_model_rate_at(pp, inc * exp(x), &ctx, NULL) / feat_agent_model_rate_at(pp, inc, &ctx, NULL) - 1.0);
}

static feat_agent_prod fitted(void) {
    static float s1[N * FEAT_N], s2[N * FEAT_N], price[N];
    eng_rng r;
    eng_rng_seed(&r, 77);
    tfm_rows(s1, s2, price, &r, BP);
    feat_agent_prod pp;
    assert_int_equal(feat_agent_prod_fit(&pp, s1, s2, price, N, REF, 5.0, NULL), 0);
    assert_true(pp.mok && pp.mlogit);
    assert_int_equal(pp.desc, FEAT_AGENT_DESC_MEAN); /* the fit's default */
    return pp;
}

/* The descriptors are the model's rates around the incumbent in the state's context. */
static void test_desc_values(void **st) {
    (void)st;
    feat_agent_prod pp = fitted();
    float raw[FEAT_N], d0[FEAT_AGENT_N], d1[FEAT_AGENT_N], d2[FEAT_AGENT_N];
    tfm_state(raw, 10.8, 10.5, 10.2, 11.2);
    feat_agent_state(raw, &pp, d0);
    assert_close(d0[22], 10.0 * pp.dlo, 1e-5, 1e-5); /* mode 0: the mean-price descriptors */
    assert_close(d0[23], 10.0 * pp.dhi, 1e-5, 1e-5);
    pp.desc = FEAT_AGENT_DESC_CTX;
    feat_agent_state(raw, &pp, d1);
    assert_close(d1[22], expect(&pp, raw, -0.1), 2e-4, 2e-4);
    assert_close(d1[23], expect(&pp, raw, 0.1), 2e-4, 2e-4);
    assert_true(fabs(d1[23] - d0[23]) > 0.05); /* not the mean-price one in this context */
    for (int i = 0; i < 22; i++) assert_true(d1[i] == d0[i]);
    pp.desc = FEAT_AGENT_DESC_CTX4;
    feat_agent_state(raw, &pp, d2);
    const double xs[4] = {-0.15, -0.05, 0.05, 0.15};
    for (int k = 0; k < 4; k++) assert_close(d2[20 + k], expect(&pp, raw, xs[k]), 2e-4, 2e-4);
    for (int i = 0; i < 20; i++) assert_true(d2[i] == d0[i]);
    assert_true(d2[20] < d2[21] || d2[22] < d2[21]); /* a curve, not a constant */
}

/* They move with the context as the truth does: with dearer competitors the conversion is
 * higher and a 10% rise loses fewer buyers, so its relative revenue is higher. */
static void test_desc_context(void **st) {
    (void)st;
    feat_agent_prod pp = fitted();
    pp.desc = FEAT_AGENT_DESC_CTX;
    float lo[FEAT_N], hi[FEAT_N], dl[FEAT_AGENT_N], dh[FEAT_AGENT_N];
    tfm_state(lo, 10.0, 10.0, 10.0, 8.8);
    tfm_state(hi, 10.0, 10.0, 10.0, 11.4);
    feat_agent_state(lo, &pp, dl);
    feat_agent_state(hi, &pp, dh);
    const double p = 10.0, up = p * exp(0.1);
    const double tl = 10.0 * (up * conv(up, 8.8) / (p * conv(p, 8.8)) - 1), th = 10.0 * (up * conv(up, 11.4) / (p * conv(p, 11.4)) - 1);
    assert_true(th > tl + 0.1);
    assert_true(dh[23] > dl[23] + 0.5 * (th - tl)); /* the fitted model moves most of the way */
    assert_close(dh[23], th, 0.5, 0);
    assert_close(dl[23], tl, 0.5, 0);
}

/* A carried state gets the descriptors of the state built at its new price; nothing known, 0. */
static void test_desc_carry_missing(void **st) {
    (void)st;
    feat_agent_prod pp = fitted();
    for (int m = FEAT_AGENT_DESC_CTX; m <= FEAT_AGENT_DESC_MAX; m++) {
        pp.desc = m;
        const double pl = 10.6, p = 9.2, ma3 = 10.3, ma12 = 10.1, cm = 10.4;
        float raw[FEAT_N], alt[FEAT_N], a[FEAT_AGENT_N], b[FEAT_AGENT_N], c[FEAT_AGENT_N];
        tfm_state(raw, pl, ma3, ma12, cm);
        tfm_state(alt, p, ma3 + (p - pl) / 3, ma12 + (p - pl) / 12, cm);
        feat_agent_state(raw, &pp, a);
        feat_agent_state(alt, &pp, b);
        feat_agent_state_carry(a, &pp, pl, p, NAN, c);
        for (int i = 20; i < FEAT_AGENT_N; i++) assert_close(c[i], b[i], 2e-3, 2e-3);
        assert_true(fabsf(c[23] - a[23]) > 1e-3); /* they did move with the incumbent */
        raw[FEAT_PRICE_MISSING] = 1.0f;
        feat_agent_state(raw, &pp, a);
        for (int i = FEAT_AGENT_N - 2 * m; i < FEAT_AGENT_N; i++) assert_true(a[i] == 0.0f);
    }
    feat_agent_prod none;
    assert_int_equal(feat_agent_prod_fit(&none, NULL, NULL, NULL, 0, REF, 5.0, NULL), 0);
    none.desc = FEAT_AGENT_DESC_CTX4;
    float raw[FEAT_N], a[FEAT_AGENT_N];
    tfm_state(raw, 10.0, 10.0, 10.0, 10.0);
    feat_agent_state(raw, &none, a);
    for (int i = 20; i < FEAT_AGENT_N; i++) assert_true(a[i] == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_desc_values),
        cmocka_unit_test(test_desc_context),
        cmocka_unit_test(test_desc_carry_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
