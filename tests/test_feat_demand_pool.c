/* tests/test_feat_demand_pool.c - the pooled (empirical-Bayes) prior on the demand model's price
 * slope (features/feat_demand.h, feat_demand_pool_*): on simulated products with known slopes
 * the pool recovers the population's mean and spread, the pooled prior lowers the slope error
 * of noisy products against the weak N(-1, 1), a heterogeneous population of well-measured
 * products is barely moved, too few products give no prior, and the sums add across shards
 * (the MPI path) to the one-pass result.  The nonparametric form (feat_demand_pool_np): it finds
 * two clusters of slopes where the normal prior centres between them, its matched priors obey
 * the Gaussian algebra, and two shards exchanging their sums get the one-process weights. */
#include "test_common.h"

#include <pthread.h>

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
        x->b[i] = hetero == 1   ? -4.0 + 3.5 * eng_rng_uniform(&rng)
                  : hetero == 2 ? (i % 2 ? -3.0 : -0.8) + 0.1 * eng_rng_normal(&rng) /* two clusters */
                                : -2.0 + 0.3 * eng_rng_normal(&rng);
        const double traffic = hetero == 1 ? 20000 : hetero == 2 ? 400 + 200 * eng_rng_uniform(&rng)
                                                                  : 150 + 100 * eng_rng_uniform(&rng);
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

/* The nonparametric prior (feat_demand_pool_np) on a population of two clusters of slopes
 * (-3 and -0.8, noisy products): its weights put most of the mass near the two clusters and
 * little between them, where the normal prior centres; the products' fits under it (each its
 * matched Gaussian prior) have a smaller slope error than under the normal prior. */
static void test_np_two_clusters(void **state) {
    (void)state;
    static pop x;
    make_pop(&x, 2, 14);
    feat_demand_prior nor, np;
    assert_int_equal(feat_demand_pool_run(x.e, x.se, P, NULL, &nor), 0);
    np = nor;
    assert_int_equal(feat_demand_pool_np(x.e, x.se, P, NULL, NULL, &np), 0);
    assert_true(np.np >= FEAT_DEMAND_NP_CORE && np.np <= FEAT_DEMAND_NP_G);
    assert_true(np.n == nor.n && np.mean == nor.mean && np.sd == nor.sd); /* the normal prior kept */
    double near_lo = 0, near_hi = 0, mid = 0, tot = 0;
    for (int g = 0; g < np.np; g++) {
        const double v = np.np_x[g], w = np.np_w[g];
        tot += w;
        near_lo += fabs(v + 3.0) < 0.5 ? w : 0, near_hi += fabs(v + 0.8) < 0.5 ? w : 0;
        mid += v > -2.3 && v < -1.5 ? w : 0;
    }
    double err_nor = 0, err_np = 0;
    for (int i = 0; i < P; i++) {
        feat_demand a, b;
        assert_int_equal(feat_demand_fit_prior(&a, x.rows[i], T, x.fit_ref[i], 1, &nor), 0);
        assert_int_equal(feat_demand_fit_prior(&b, x.rows[i], T, x.fit_ref[i], 1, &np), 0);
        assert_true(a.ok && b.ok);
        err_nor += pow(a.beta[FEAT_DEMAND_PRICE] - true_b1(&x, i), 2) / P;
        err_np += pow(b.beta[FEAT_DEMAND_PRICE] - true_b1(&x, i), 2) / P;
    }
    print_message("two clusters: normal N(%.3f, %.3f^2); NPMLE mass near -3 %.3f, near -0.8 %.3f, between %.3f; "
                  "slope rmse normal %.3f, NPMLE %.3f\n",
                  nor.mean, nor.sd, near_lo, near_hi, mid, sqrt(err_nor), sqrt(err_np));
    assert_true(fabs(tot - 1) < 1e-9);
    assert_true(near_lo > 0.3 && near_hi > 0.3 && mid < 0.1);
    assert_true(sqrt(err_np) < 0.8 * sqrt(err_nor));
}

/* A product far outside the population (a slope of -9, se 0.3 as the others', among slopes near
 * -2): the grid reaches it (the tail), so its fit keeps its own slope, where a grid ending at the
 * core's edge would pull it there; a noisy product far out is not given a tail. */
static void test_np_outlier(void **state) {
    (void)state;
    double e[60], se[60];
    for (int i = 0; i < 60; i++) e[i] = -2.0 + 0.3 * sin(1.3 * i), se[i] = 0.3;
    e[59] = -9.0, se[59] = 0.3;
    feat_demand_prior pr;
    assert_int_equal(feat_demand_pool_run(e, se, 60, NULL, &pr), 0);
    assert_int_equal(feat_demand_pool_np(e, se, 60, NULL, NULL, &pr), 0);
    const double core_lo = pr.mean - fmax(5 * pr.sd, 1.0);
    feat_demand_prior m;
    feat_demand_np_match(&pr, -9.0, 0.3, &m);
    const double dp = 1 / 0.09, pp = 1 / (m.sd * m.sd), post = (-9.0 * dp + m.mean * pp) / (dp + pp);
    print_message("outlier: core from %.2f, grid from %.2f (%d points); its posterior mean %.3f\n", core_lo, pr.np_x[0],
                  pr.np, post);
    assert_true(core_lo > -8.0);
    assert_true(pr.np == FEAT_DEMAND_NP_CORE + FEAT_DEMAND_NP_TAIL && pr.np_x[0] == -9.0);
    assert_true(fabs(post + 9.0) < 0.3);
    se[59] = 50; /* the same slope, noisy: no tail */
    assert_int_equal(feat_demand_pool_run(e, se, 60, NULL, &pr), 0);
    assert_int_equal(feat_demand_pool_np(e, se, 60, NULL, NULL, &pr), 0);
    assert_int_equal(pr.np, FEAT_DEMAND_NP_CORE);
}

/* feat_demand_np_match against the Gaussian algebra: under the matched prior, a slope observed
 * as (e, se) has the mixture's posterior mean (computed here directly) and, where the mixture's
 * posterior is narrower than the data, its variance; no slope of its own: the mixture's
 * moments; a normal prior (np = 0) passes through unchanged. */
static void test_np_match(void **state) {
    (void)state;
    feat_demand_prior pr;
    memset(&pr, 0, sizeof pr);
    pr.n = 50, pr.mean = -1.5, pr.sd = 0.8;
    feat_demand_prior out;
    feat_demand_np_match(&pr, -1.0, 0.3, &out);
    assert_true(out.np == 0 && out.mean == pr.mean && out.sd == pr.sd);
    pr.np = FEAT_DEMAND_NP_CORE;
    for (int g = 0; g < pr.np; g++) pr.np_x[g] = -4.0 + 0.05 * g;
    pr.np_w[20] = 0.5, pr.np_w[64] = 0.5; /* atoms at -3.0 and -0.8 */
    const double es[4] = {-2.6, -1.9, -1.0, -0.2}, ses[4] = {0.3, 0.6, 0.2, 1.5};
    for (int k = 0; k < 4; k++) {
        const double e = es[k], se = ses[k];
        const double l0 = exp(-0.5 * pow((e + 3.0) / se, 2)), l1 = exp(-0.5 * pow((e + 0.8) / se, 2));
        const double m = (l0 * -3.0 + l1 * -0.8) / (l0 + l1);
        const double v = fmax(l0 * l1 / pow(l0 + l1, 2) * 2.2 * 2.2, 0.05 * 0.05);
        feat_demand_np_match(&pr, e, se, &out);
        const double dp = 1 / (se * se), pp = 1 / (out.sd * out.sd);
        const double post_m = (e * dp + out.mean * pp) / (dp + pp), post_v = 1 / (dp + pp);
        print_message("match e %.2f se %.2f: mixture posterior %.4f (var %.4f), matched %.4f (var %.4f)\n", e, se, m,
                      v, post_m, post_v);
        assert_int_equal(out.np, 0);
        assert_true(fabs(post_m - m) < 1e-9);
        if (v < se * se * 0.8) assert_true(fabs(post_v - v) < 1e-9 * (1 + v));
        else assert_true(fabs(pp - 0.25 * dp) < 1e-9 * dp); /* wider than the data: the floor */
    }
    feat_demand_np_match(&pr, NAN, 0.3, &out); /* no slope: the mixture's moments */
    assert_true(fabs(out.mean + 1.9) < 1e-12 && fabs(out.sd - 1.1) < 1e-12);
}

/* Two "ranks" (threads) each with a part of the products, exchanging their sums through reduce
 * as MPI's allreduce would: the weights equal the one-process ones bit for bit. */
typedef struct np_shard {
    const double *e, *se;
    size_t n;
    int rank;
    feat_demand_prior pr;
    int st;
} np_shard;

static pthread_barrier_t g_bar;
static eng_xsum g_part[2][FEAT_DEMAND_NP_G];

static int np_reduce(eng_xsum *s, size_t ns, int rank) {
    memcpy(g_part[rank], s, ns * sizeof *s);
    pthread_barrier_wait(&g_bar);
    eng_xsum_merge(s, g_part[1 - rank], ns);
    pthread_barrier_wait(&g_bar); /* both have read before either writes the next step's */
    return 0;
}
static int np_reduce0(eng_xsum *s, size_t ns) { return np_reduce(s, ns, 0); }
static int np_reduce1(eng_xsum *s, size_t ns) { return np_reduce(s, ns, 1); }

static double g_max[2][2];
static int np_max(double *v, int n, int rank) {
    memcpy(g_max[rank], v, (size_t)n * sizeof *v);
    pthread_barrier_wait(&g_bar);
    for (int i = 0; i < n; i++) v[i] = fmax(v[i], g_max[1 - rank][i]);
    pthread_barrier_wait(&g_bar);
    return 0;
}
static int np_max0(double *v, int n) { return np_max(v, n, 0); }
static int np_max1(double *v, int n) { return np_max(v, n, 1); }

static void *np_shard_run(void *arg) {
    np_shard *a = arg;
    a->st = feat_demand_pool_np(a->e, a->se, a->n, a->rank ? np_reduce1 : np_reduce0, a->rank ? np_max1 : np_max0,
                                &a->pr);
    return NULL;
}

static void test_np_shards(void **state) {
    (void)state;
    static pop x;
    make_pop(&x, 2, 15);
    x.e[150] = -12.0, x.se[150] = 0.2; /* a clear outlier on rank 1's part: the grid's lower tail */
    feat_demand_prior one;
    assert_int_equal(feat_demand_pool_run(x.e, x.se, P, NULL, &one), 0);
    np_shard sh[2] = {{.e = x.e, .se = x.se, .n = 77, .rank = 0, .pr = one},
                      {.e = x.e + 77, .se = x.se + 77, .n = P - 77, .rank = 1, .pr = one}};
    assert_int_equal(feat_demand_pool_np(x.e, x.se, P, NULL, NULL, &one), 0);
    assert_int_equal(one.np, FEAT_DEMAND_NP_CORE + FEAT_DEMAND_NP_TAIL);
    assert_true(one.np_x[0] == -12.0);
    pthread_barrier_init(&g_bar, NULL, 2);
    pthread_t th[2];
    for (int r = 0; r < 2; r++) assert_int_equal(pthread_create(&th[r], NULL, np_shard_run, &sh[r]), 0);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g_bar);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(sh[r].st, 0);
        assert_int_equal(sh[r].pr.np, one.np);
        assert_memory_equal(sh[r].pr.np_x, one.np_x, (size_t)one.np * sizeof *one.np_x);
        assert_memory_equal(sh[r].pr.np_w, one.np_w, (size_t)one.np * sizeof *one.np_w);
    }
    /* no normal prior (too few products): nothing estimated, no exchange taken */
    feat_demand_prior none;
    memset(&none, 0, sizeof none);
    assert_int_equal(feat_demand_pool_np(x.e, x.se, 5, np_reduce0, np_max0, &none), 0);
    assert_int_equal(none.np, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_recovers_and_shrinks),
        cmocka_unit_test(test_heterogeneous_little_shrinkage),
        cmocka_unit_test(test_min_products_and_shards),
        cmocka_unit_test(test_np_two_clusters),
        cmocka_unit_test(test_np_match),
        cmocka_unit_test(test_np_outlier),
        cmocka_unit_test(test_np_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
