/* tests/test_feat_demand_asym.c - the asymmetric (gain / loss) reference column of the one demand
 * model (features/feat_demand.h, feat_demand_fit_asym): on rows from a loss-averse truth (the
 * simulator's `ref` family: a hidden reference that follows the price with memory lambda, a
 * price below it lifting the conversion by eta_gain log(r / p), one above it cutting it by
 * eta_loss log(p / r), eta_loss > eta_gain) the fit recovers gain < loss and chooses the
 * asymmetric form; on rows without a reference effect, and with the setting off, it does not. */
#include "test_common.h"

#include <string.h>

#include "eng_rng.h"
#include "eng_status.h"
#include "feat_demand.h"

#define T 150
#define LAMBDA 0.7

/* Truth: conversion logistic(a + b (p / 10 - 1) + eg max(log(r / p), 0) - el max(log(p / r), 0)). */
typedef struct truth {
    double a, b, eg, el;
} truth;

static double truth_q(const truth *tr, double p, double r) {
    const double eta = tr->a + tr->b * (p / 10 - 1) + tr->eg * fmax(log(r / p), 0) - tr->el * fmax(log(p / r), 0);
    return 1.0 / (1.0 + exp(-eta));
}

/* T periods of one product: the price moves (probability 0.3 a period) to one of seven levels
 * 0.85-1.15 x 10; the reference r is the smoothed past price (memory LAMBDA) and the rows' lag
 * column is log(r / 10), as the gate's standing fit builds it; traffic v a period. */
static void simulate(const truth *tr, double v, eng_rng *rng, feat_demand_row *rows) {
    double p = 10, r = 10;
    for (int t = 0; t < T; t++) {
        if (eng_rng_uniform(rng) < 0.3) p = 10 * (0.85 + 0.05 * eng_rng_below(rng, 7));
        const double q = truth_q(tr, p, r), mu = v * q;
        const double u = floor(mu + sqrt(mu * (1 - q)) * eng_rng_normal(rng) + 0.5);
        rows[t] = (feat_demand_row){.price = p, .units = u < 0 ? 0 : u, .traffic = v, .comp = NAN,
                                    .lag = t ? log(r / 10) : NAN, .promo = 0};
        r = LAMBDA * r + (1 - LAMBDA) * p;
    }
}

/* A loss-averse truth with plenty of traffic: the fit chooses the loss column, its gain and loss
 * are near the truth's (gain < loss), the reference carries over, and the rate of a rise above
 * the reference (and of a cut below it) is the truth's; with the setting off the same rows give
 * the symmetric model, whose rise is valued with too little loss. */
static void test_recovers_gain_loss(void **state) {
    (void)state;
    static feat_demand_row rows[T];
    const truth tr = {-3.0, -1.5, 0.5, 1.5};
    eng_rng rng;
    eng_rng_seed(&rng, 5);
    simulate(&tr, 20000, &rng, rows);
    feat_demand m, s;
    assert_int_equal(feat_demand_fit_asym(&m, rows, T, 10.0, 1, NULL, 1), 0);
    assert_int_equal(feat_demand_fit_asym(&s, rows, T, 10.0, 1, NULL, 0), 0);
    assert_true(m.ok && s.ok);
    assert_true(m.used >> FEAT_DEMAND_LOSS & 1u);
    assert_false(s.used >> FEAT_DEMAND_LOSS & 1u);
    assert_true(m.ll >= m.ll_sym + FEAT_DEMAND_ASYM_MARGIN);
    double g, l, gs, ls;
    assert_int_equal(feat_demand_gain_loss(&m, &g, &l), 1);
    assert_int_equal(feat_demand_gain_loss(&s, &gs, &ls), 0);
    print_message("gain %.3f loss %.3f (truth 0.5, 1.5); symmetric %.3f; ll %.1f vs %.1f\n", g, l, gs, m.ll, m.ll_sym);
    assert_true(g < l);
    assert_true(fabs(g - tr.eg) < 0.25 && fabs(l - tr.el) < 0.35);
    assert_true(feat_demand_lag_carries(&m, 2.0));
    /* a 10% rise over the reference 10 and a 10% cut below it, one period */
    const feat_demand_ctx ctx = {NAN, log(10.0 / 10.0)};
    for (int k = 0; k < 2; k++) {
        const double p = k ? 11.0 : 9.0, tv = p * truth_q(&tr, p, 10.0);
        const double va = feat_demand_rate(&m, p, &ctx, 0, NULL), vs = feat_demand_rate(&s, p, &ctx, 0, NULL);
        print_message("price %.1f: truth %.5f, asymmetric %.5f, symmetric %.5f\n", p, tv, va, vs);
        assert_true(fabs(va - tv) < 0.04 * tv);
        assert_true(fabs(va - tv) < fabs(vs - tv));
    }
    /* at a standing price (the reference at the price) the loss column is 0: the price's own rate */
    const feat_demand_ctx st = {NAN, log(11.0 / 10.0)};
    const double tv = 11.0 * truth_q(&tr, 11.0, 11.0), va = feat_demand_rate(&m, 11.0, &st, 0, NULL);
    assert_true(fabs(va - tv) < 0.04 * tv);
}

/* Over 20 products each of a loss-averse truth and of a truth without a reference effect
 * (ordinary traffic): the asymmetric form is chosen on most of the first and on few of the
 * second; with the setting off (feat_demand_set_asym 0) never; with it on, feat_demand_fit_prior
 * follows it. */
static void test_choice(void **state) {
    (void)state;
    static feat_demand_row rows[T];
    eng_rng rng;
    eng_rng_seed(&rng, 9);
    int on_ref = 0, on_none = 0, off = 0, prior_on = 0;
    const int asym0 = feat_demand_asym();
    feat_demand_set_asym(1);
    for (int k = 0; k < 20; k++) {
        const truth ref = {-3.0, -1.2 - 0.6 * eng_rng_uniform(&rng), 0.2 + 0.6 * eng_rng_uniform(&rng), 0};
        truth la = ref;
        la.el = ref.eg * (2.0 + eng_rng_uniform(&rng)) + 0.5;
        const truth none = {ref.a, ref.b, 0, 0};
        feat_demand m;
        simulate(&la, 3000, &rng, rows);
        assert_int_equal(feat_demand_fit_asym(&m, rows, T, 10.0, 1, NULL, 1), 0);
        on_ref += m.ok && (m.used >> FEAT_DEMAND_LOSS & 1u);
        assert_int_equal(feat_demand_fit_prior(&m, rows, T, 10.0, 1, NULL), 0);
        prior_on += m.ok && (m.used >> FEAT_DEMAND_LOSS & 1u);
        assert_int_equal(feat_demand_fit_asym(&m, rows, T, 10.0, 1, NULL, 0), 0);
        off += m.ok && (m.used >> FEAT_DEMAND_LOSS & 1u);
        simulate(&none, 3000, &rng, rows);
        assert_int_equal(feat_demand_fit_asym(&m, rows, T, 10.0, 1, NULL, 1), 0);
        on_none += m.ok && (m.used >> FEAT_DEMAND_LOSS & 1u);
    }
    feat_demand_set_asym(asym0);
    print_message("asymmetric form chosen: loss-averse %d / 20, no reference effect %d / 20, setting off %d\n", on_ref,
                  on_none, off);
    assert_true(on_ref >= 14);
    assert_true(on_none <= 3);
    assert_int_equal(off, 0);
    assert_int_equal(prior_on, on_ref);
}

/* The reference columns' pooled prior (feat_demand_ref_pool): 40 products of a market whose
 * customers all anchor on the smoothed past price (gain = loss ~ U(0.4, 1.2)) with little traffic;
 * the pooled lag prior's mean is near the products' mean and, refitted under it, the products'
 * lag coefficients are nearer their truths than the fits without it; 10 products are too few. */
static void test_ref_pool(void **state) {
    (void)state;
    enum { NP = 40 };
    static feat_demand_row rows[NP][T];
    static feat_demand ms[NP];
    double g[NP], gm = 0;
    eng_rng rng;
    eng_rng_seed(&rng, 21);
    for (int k = 0; k < NP; k++) {
        g[k] = 0.4 + 0.8 * eng_rng_uniform(&rng), gm += g[k] / NP;
        const truth tr = {-3.0, -1.5, g[k], g[k]};
        simulate(&tr, 600, &rng, rows[k]);
        assert_int_equal(feat_demand_fit_asym(&ms[k], rows[k], T, 10.0, 1, NULL, 0), 0);
        assert_true(ms[k].ok && (ms[k].used >> FEAT_DEMAND_LAG & 1u));
    }
    feat_demand_prior pr;
    memset(&pr, 0, sizeof pr);
    assert_int_equal(feat_demand_ref_pool(ms, 10, NULL, &pr), 0);
    assert_int_equal(pr.ref_n, 0);
    assert_int_equal(feat_demand_ref_pool(ms, NP, NULL, &pr), 0);
    assert_int_equal(pr.ref_n, NP);
    assert_true(fabs(pr.ref_mean[0] - gm) < 0.25 && pr.ref_sd[0] > 0);
    assert_true(pr.ref_sd[1] == 0); /* no loss column in these fits: its prior stays the ridge */
    double e0 = 0, e1 = 0;
    for (int k = 0; k < NP; k++) {
        feat_demand m;
        assert_int_equal(feat_demand_fit_asym(&m, rows[k], T, 10.0, 1, &pr, 0), 0);
        assert_true(m.ok);
        e0 += fabs(ms[k].beta[FEAT_DEMAND_LAG] - g[k]), e1 += fabs(m.beta[FEAT_DEMAND_LAG] - g[k]);
    }
    print_message("pooled lag N(%.3f, %.3f^2) (products' mean %.3f); mean abs error %.3f -> %.3f\n", pr.ref_mean[0],
                  pr.ref_sd[0], gm, e0 / NP, e1 / NP);
    assert_true(e1 < 0.9 * e0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_gain_loss),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_ref_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
