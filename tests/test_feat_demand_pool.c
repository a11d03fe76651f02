/* tests/test_feat_demand_pool.c - the pooled (empirical-Bayes) prior on the demand model's price
 * slope (features/feat_demand.h, feat_demand_pool_*): on simulated products with known slopes
 * the pool recovers the population's mean and spread, the pooled prior lowers the slope error
 * of noisy products against the weak N(-1, 1), a heterogeneous population of well-measured
 * products is barely moved, too few products give no prior, and the sums add across shards
 * (the MPI path) to the one-pass result. */
#include "test_common.h"

#include "eng_rng.h"
#include "eng_status.h"
#include "feat_demand.h"

#define T 120
#define P 200

static const double LV[6] = {0.9, 0.94, 0.98, 1.02, 1.06, 1.1};

/* T periods of one product: conversion logistic(a + b (p / ref - 1)), prices on six levels
 * around ref, `traffic` visitors a period (Binomial by its normal approximation). */
static void simulate(feat_demand_row *rows, double ref, double a, double b, double traffic, eng_rng *r) {
    for (int t = 0; t < T; t++) {
        const double p = round(ref * LV[eng_rng_below(r, 6)] * 100) / 100;
        const double q = 1.0 / (1.0 + exp(-(a + b * (p / ref - 1)))), mu = traffic * q;
        const double u = floor(mu + sqrt(mu * (1 - q)) * eng_rng_normal(r) + 0.5);
        rows[t] = (feat_demand_row){.price = p, .units = u < 0 ? 0 : u, .traffic = traffic, .comp = NAN, .lag = NAN};
    }
}

/* A population of P products: slopes b (in units of price / ref), fitted at ref x 1.05 (an
 * incumbent off the centre, so xc != 1) under the weak prior; e / se their own slopes. */
typedef struct pop {
    feat_demand_row rows[P][T];
    double ref[P], b[P], e[P], se[P], fit_ref[P];
    feat_demand weak[P];
} pop;

static void make_pop(pop *x, int hetero, uint64_t seed) {
    eng_rng rng;
    eng_rng_seed(&rng, seed);
    for (int i = 0; i < P; i++) {
        x->ref[i] = 5 + 45 * eng_rng_uniform(&rng);
        x->b[i] = hetero ? -4.0 + 3.5 * eng_rng_uniform(&rng) : -2.0 + 0.3 * eng_rng_normal(&rng);
        const double traffic = hetero ? 20000 : 150 + 100 * eng_rng_uniform(&rng);
        simulate(x->rows[i], x->ref[i], -3.0, x->b[i], traffic, &rng);
        x->fit_ref[i] = x->ref[i] * 1.05;
        assert_int_equal(feat_demand_fit(&x->weak[i], x->rows[i], T, x->fit_ref[i], 1), 0);
        assert_true(x->weak[i].ok);
        assert_int_equal(feat_demand_slope_e(&x->weak[i], &x->e[i], &x->se[i]), 0);
    }
}

/* The true slope of product i on the fitted model's price scale (b1 of x = price / fit_ref). */
static double true_b1(const pop *x, int i) { return x->b[i] * x->fit_ref[i] / x->ref[i]; }

/* Noisy products from N(-2, 0.3^2): the pool finds the mean (in e-units, b1 xc ~ b) and a spread
 * near 0.3; the pooled prior cuts the slope's root-mean-square error against the weak prior. */
static void test_pool_recovers_and_shrinks(void **state) {
    (void)state;
    static pop x;
    make_pop(&x, 0, 11);
    double mse = 0, me = 0;
    for (int i = 0; i < P; i++) mse += x.se[i] * x.se[i] / P, me += true_b1(&x, i) * x.weak[i].xc / P;
    feat_demand_prior pr;
    feat_demand_pool_run(x.e, x.se, P, NULL, &pr);
    print_message("pool: n %d, mean %.3f (truth %.3f), sd %.3f (truth 0.3), mean se %.3f\n", pr.n, pr.mean, me, pr.sd,
                  sqrt(mse));
    assert_int_equal(pr.n, P);
    assert_true(sqrt(mse) > 0.25); /* noisy: each product's own slope is as uncertain as the spread */
    assert_true(fabs(pr.mean - me) < 0.15);
    assert_true(pr.sd > 0.1 && pr.sd < 0.6);
    double err_weak = 0, err_pool = 0;
    for (int i = 0; i < P; i++) {
        feat_demand m;
        assert_int_equal(feat_demand_fit_prior(&m, x.rows[i], T, x.fit_ref[i], 1, &pr), 0);
        assert_true(m.ok);
        const double tb = true_b1(&x, i);
        err_weak += pow(x.weak[i].beta[FEAT_DEMAND_PRICE] - tb, 2) / P;
        err_pool += pow(m.beta[FEAT_DEMAND_PRICE] - tb, 2) / P;
    }
    print_message("slope rmse: weak prior %.3f, pooled prior %.3f\n", sqrt(err_weak), sqrt(err_pool));
    assert_true(sqrt(err_pool) < 0.75 * sqrt(err_weak));
}

/* Well-measured products with slopes spread over [-4, -0.5]: a wide prior, and the pooled fit
 * moves each slope by a small share of its own standard error. */
static void test_heterogeneous_little_shrinkage(void **state) {
    (void)state;
    static pop x;
    make_pop(&x, 1, 12);
    feat_demand_prior pr;
    feat_demand_pool_run(x.e, x.se, P, NULL, &pr);
    double shift = 0, se = 0;
    for (int i = 0; i < P; i++) {
        feat_demand m;
        assert_int_equal(feat_demand_fit_prior(&m, x.rows[i], T, x.fit_ref[i], 1, &pr), 0);
        shift += fabs(m.beta[FEAT_DEMAND_PRICE] - x.weak[i].beta[FEAT_DEMAND_PRICE]) / P;
        se += feat_demand_slope_se(&x.weak[i], 0) / P;
    }
    print_message("heterogeneous: sd %.3f, mean shift %.4f, mean se %.4f\n", pr.sd, shift, se);
    assert_int_equal(pr.n, P);
    assert_true(pr.sd > 0.7);
    assert_true(shift < 0.25 * se);
}

/* Fewer than FEAT_DEMAND_POOL_MIN products: no prior (n = 0), and a fit under it is the weak
 * one exactly; the sums of two shards merged give the one-pass prior bit for bit. */
static void test_min_products_and_shards(void **state) {
    (void)state;
    static pop x;
    make_pop(&x, 0, 13);
    feat_demand_prior pr;
    feat_demand_pool_run(x.e, x.se, FEAT_DEMAND_POOL_MIN - 1, NULL, &pr);
    assert_int_equal(pr.n, 0);
    feat_demand m;
    assert_int_equal(feat_demand_fit_prior(&m, x.rows[0], T, x.fit_ref[0], 1, &pr), 0);
    assert_true(m.beta[FEAT_DEMAND_PRICE] == x.weak[0].beta[FEAT_DEMAND_PRICE]);
    feat_demand_pool_run(x.e, x.se, FEAT_DEMAND_POOL_MIN, NULL, &pr);
    assert_int_equal(pr.n, FEAT_DEMAND_POOL_MIN);
    /* two shards (in a different order) */
    feat_demand_prior one;
    feat_demand_pool_run(x.e, x.se, P, NULL, &one);
    feat_demand_pool a, b;
    double tau2 = 0;
    for (int pass = 0; pass < 2; pass++) {
        feat_demand_pool_zero(&a);
        feat_demand_pool_zero(&b);
        for (int i = P - 1; i >= 0; i--) feat_demand_pool_add(i % 3 ? &a : &b, x.e[i], x.se[i], tau2);
        eng_xsum_merge(a.s, b.s, FEAT_DEMAND_POOL_NS);
        if (!pass) tau2 = feat_demand_pool_tau2(&a);
    }
    feat_demand_pool_prior(&a, tau2, &pr);
    assert_true(pr.n == one.n && pr.mean == one.mean && pr.sd == one.sd);
    /* the floor: identical slopes give sd = FEAT_DEMAND_POOL_TAU_FLOOR */
    double e[30], s[30];
    for (int i = 0; i < 30; i++) e[i] = -1.5, s[i] = 0.2;
    feat_demand_pool_run(e, s, 30, NULL, &pr);
    assert_true(pr.n == 30 && fabs(pr.mean + 1.5) < 1e-12 && fabs(pr.sd - FEAT_DEMAND_POOL_TAU_FLOOR) < 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_recovers_and_shrinks),
        cmocka_unit_test(test_heterogeneous_little_shrinkage),
        cmocka_unit_test(test_min_products_and_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
