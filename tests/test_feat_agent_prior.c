/* tests/test_feat_agent_prior.c - the agents' demand models under the night's pooled slope prior
 * (feat_agent_prod_fit_ex with a feat_demand_prior; compare.demand_pool 2 and 3, docs/compare.md
 * "The pooled prior for the agents' models (q12pool2)").  In the agents' own parameterisation
 * (their rows and reference price, the identity form's e = b1 xc) on a population whose slopes
 * lie far from the weak prior's -1: the pool computed from the agents' own fits finds the
 * population's centre; the centred prior (feat_demand_prior_centre, demand_pool 3) removes the
 * weak prior's pull towards -1 and keeps the spread of the products' slopes, where the full
 * pooled prior (demand_pool 2) narrows it (the networks then pool a second time). */
#include "test_common.h"

#include "eng_rng.h"
#include "eng_status.h"
#include "exp_compare.h"
#include "feat.h"
#include "feat_agent.h"
#include "feat_demand.h"
#include "test_demand_rows.h"

#define N 96  /* the training window's days */
#define P 120 /* products */

typedef struct fits {
    double e[P], mean, sd;
} fits;

static float g_s1[P][N * FEAT_N], g_s2[P][N * FEAT_N], g_price[P][N];
static double g_ref[P], g_b[P];

/* Fit every product's agent model under prior pr (NULL: the weak prior) into f: its slope in
 * e-units, their mean and sd over the products; the fits' own slopes into e / se when not NULL. */
static void fit_all(const feat_demand_prior *pr, fits *f, double *e, double *se, double *etrue) {
    f->mean = f->sd = 0;
    for (int i = 0; i < P; i++) {
        feat_agent_prod pp;
        assert_int_equal(feat_agent_prod_fit_ex(&pp, g_s1[i], g_s2[i], g_price[i], N, g_ref[i], 5.0, pr, 1), 0);
        assert_true(pp.mok && pp.dm.ok && pp.dm.form == 1); /* the identity form */
        f->e[i] = pp.dm.beta[FEAT_DEMAND_PRICE] * pp.dm.xc;
        if (e) assert_int_equal(feat_demand_slope_e(&pp.dm, &e[i], &se[i]), 0);
        if (etrue) etrue[i] = g_b[i] * pp.dm.xc; /* the truth's b1 on x = price / ref, times xc */
        f->mean += f->e[i] / P;
    }
    for (int i = 0; i < P; i++) f->sd += (f->e[i] - f->mean) * (f->e[i] - f->mean) / P;
    f->sd = sqrt(f->sd);
}

/* feat_demand_prior_centre: the pool's centre and reference columns, a width no narrower than
 * asked; no prior stays none. */
static void test_centre_prior(void **state) {
    (void)state;
    feat_demand_prior pr = {.mean = -2.0, .sd = 0.2, .n = 50, .ref_mean = {0.3, -0.1}, .ref_sd = {0.4, 0.5}, .ref_n = 40};
    feat_demand_prior c;
    feat_demand_prior_centre(&pr, FEAT_DEMAND_WEAK_SD, &c);
    assert_true(c.mean == -2.0 && c.sd == FEAT_DEMAND_WEAK_SD && c.n == 50);
    assert_true(c.ref_mean[0] == 0.3 && c.ref_sd[1] == 0.5 && c.ref_n == 40);
    pr.sd = 1.7; /* a wider pool keeps its width */
    feat_demand_prior_centre(&pr, FEAT_DEMAND_WEAK_SD, &c);
    assert_true(c.sd == 1.7);
    pr.n = 0;
    feat_demand_prior_centre(&pr, FEAT_DEMAND_WEAK_SD, &c);
    assert_int_equal(c.n, 0);
    feat_demand_prior_centre(NULL, FEAT_DEMAND_WEAK_SD, &c);
    assert_int_equal(c.n, 0);
}

/* Noisy products with slopes from N(-2.4, 0.3^2) in the agents' parameterisation. */
static void test_agents_fit_under_pool(void **state) {
    (void)state;
    eng_rng r;
    eng_rng_seed(&r, 31);
    const double qs = 0.05, a = log(qs / (1 - qs));
    for (int i = 0; i < P; i++) {
        g_ref[i] = 5 + 25 * eng_rng_uniform(&r);
        g_b[i] = -2.4 + 0.3 * eng_rng_normal(&r);
        tdr_rows(g_s1[i], g_s2[i], g_price[i], NULL, N, g_ref[i], a, g_b[i], 300, &r);
    }
    static double e[P], se[P], et[P];
    static fits weak, pool, cen;
    fit_all(NULL, &weak, e, se, et);
    double tm = 0;
    for (int i = 0; i < P; i++) tm += et[i] / P;
    feat_demand_prior pr, c;
    assert_int_equal(feat_demand_pool_run(e, se, P, NULL, &pr), 0);
    assert_int_equal(pr.n, P);
    feat_demand_prior_centre(&pr, FEAT_DEMAND_WEAK_SD, &c);
    fit_all(&pr, &pool, NULL, NULL, NULL);
    fit_all(&c, &cen, NULL, NULL, NULL);
    print_message("truth mean %.3f; pool N(%.3f, %.3f^2); fitted e mean / sd: weak %.3f / %.3f, pooled %.3f / %.3f, "
                  "centred %.3f / %.3f\n",
                  tm, pr.mean, pr.sd, weak.mean, weak.sd, pool.mean, pool.sd, cen.mean, cen.sd);
    /* the pool of the agents' own fits finds the population's centre */
    assert_true(fabs(pr.mean - tm) < 0.5 * fabs(weak.mean - tm) + 0.05);
    /* the weak prior pulls the slopes towards -1; the centred one does not */
    assert_true(weak.mean - tm > 0.05);
    assert_true(fabs(cen.mean - tm) < 0.5 * (weak.mean - tm));
    /* the centred prior keeps the products' spread, the full pooled prior narrows it */
    assert_true(cen.sd > 0.9 * weak.sd);
    assert_true(pool.sd < 0.8 * weak.sd);
    assert_true(cen.sd > pool.sd * 1.1);
}

/* compare.demand_pool takes 0..3 (3: the agents' models with the centred prior). */
static void test_setting(void **state) {
    (void)state;
    exp_compare_cfg c = exp_compare_default();
    char *ok[] = {"--compare.demand_pool=3"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, ok), 0);
    assert_int_equal(c.demand_pool, 3);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    char *bad[] = {"--compare.demand_pool=4"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, bad), 0);
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_centre_prior),
        cmocka_unit_test(test_agents_fit_under_pool),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
