/* tests/test_exp_compare_dqnup.c - the DQN's uplift targets (compare.dqn_uplift; docs/compare.md,
 * "The DQN learns the uplift over the incumbent"): the rate a state's incumbent earns under the
 * demand model (feat_agent_state_rate) is read from the state alone; the DQN's real and
 * model-based rows become s (rate - m) / m (s: compare.dqn_uplift_scale), which ranks prices as
 * the logged reward does (the same best price) while the day noise of the previous period is
 * gone; DDPG keeps the logged reward; rows without a baseline are left out; the setting is
 * checked and only in effect with model-based rows and dqn.gamma 0. */
#include "test_common.h"

#include "eng_rng.h"
#include "exp_compare.h"
#include "exp_compare_int.h"
#include "feat_agent.h"
#include "test_demand_rows.h"

enum { N = 100 };

static float s1[N * FEAT_N], s2[N * FEAT_N], price[N];
static double truth[N];

/* One product's rows (4% conversion at ref 10, slope -1/(1-q)) and its fitted model. */
static void fit_product(feat_agent_prod *pp) {
    eng_rng r;
    eng_rng_seed(&r, 11);
    const double ref = 10.0, qs = 0.04, b = -1.0 / (1 - qs), a = log(qs / (1 - qs));
    tdr_rows(s1, s2, price, truth, N, ref, a, b, 800, &r);
    assert_int_equal(feat_agent_prod_fit(pp, s1, s2, price, N, ref, 5.0, NULL), 0);
    assert_true(pp->mok && pp->mlogit);
}

/* The model's rate at the state's incumbent, in the state's own context: what the model gives
 * the row's previous price with the row's own context; NaN without a model or an incumbent. */
static void test_state_rate(void **st) {
    (void)st;
    feat_agent_prod pp;
    fit_product(&pp);
    float a[FEAT_AGENT_NMAX];
    for (int i = 1; i < N; i++) {
        const float *x = s1 + (size_t)i * FEAT_N;
        feat_agent_state(x, &pp, a);
        const feat_demand_ctx ctx = feat_agent_model_ctx(&pp, x, x);
        const double want = feat_agent_model_rate_at(&pp, x[FEAT_PRICE_CUR], &ctx, NULL);
        const double got = feat_agent_state_rate(&pp, a);
        assert_true(isfinite(want) && want > 0);
        assert_close(got, want, 1e-4, 1e-4 * want); /* the state holds the prices as float log ratios */
    }
    feat_agent_state(s1 + FEAT_N, &pp, a);
    a[3] = 1.0f; /* price_missing: no incumbent */
    assert_true(isnan(feat_agent_state_rate(&pp, a)));
    feat_agent_prod none;
    assert_int_equal(feat_agent_prod_fit(&none, NULL, NULL, NULL, 0, 10.0, 5.0, NULL), 0);
    feat_agent_state(s1 + FEAT_N, &none, a);
    assert_true(isnan(feat_agent_state_rate(&none, a)));
    assert_true(isnan(feat_agent_state_rate(NULL, a)));
}

/* A minimal comparison context over the product's N rows: drcr rewards (the priced period's
 * observed rate minus the previous one's), the DQN's view with its uplift baselines. */
typedef struct fix {
    exp_compare_cfg cfg;
    env_transitions tr;
    cmp_ctx c;
    feat_agent_prod pp;
    float reward[N], ast[N * FEAT_AGENT_NMAX], dyc[2 * N], rscale[1];
    double dyb[N], um[N];
} fix;

static void fix_init(fix *f) {
    memset(f, 0, sizeof *f);
    fit_product(&f->pp);
    f->cfg = exp_compare_default();
    f->tr.n = N, f->tr.price = price, f->tr.reward = f->reward;
    f->rscale[0] = 0.05f;
    for (int i = 0; i < N; i++) {
        const float *y = s2 + (size_t)i * FEAT_N, *y0 = i ? s2 + (size_t)(i - 1) * FEAT_N : y;
        const double obs = y[FEAT_REVENUE_1] / y[FEAT_TRAFFIC_1], prev = y0[FEAT_REVENUE_1] / y0[FEAT_TRAFFIC_1];
        f->reward[i] = (float)(obs - prev);
        f->dyb[i] = (double)f->reward[i] - obs;
        feat_agent_state(s1 + (size_t)i * FEAT_N, &f->pp, f->ast + (size_t)i * FEAT_AGENT_N);
        const feat_demand_ctx x = feat_agent_model_ctx(&f->pp, s1 + (size_t)i * FEAT_N, y);
        f->dyc[2 * i] = (float)x.comp, f->dyc[2 * i + 1] = (float)x.lag;
        f->um[i] = feat_agent_state_rate(&f->pp, f->ast + (size_t)i * FEAT_AGENT_N);
    }
    f->c.cfg = &f->cfg, f->c.tr = &f->tr, f->c.rscale = f->rscale;
    cmp_aview *q = &f->c.av[0], *d = &f->c.av[1];
    q->SA = d->SA = FEAT_AGENT_N;
    q->ap = d->ap = &f->pp;
    q->ast = d->ast = f->ast;
    q->dyb = d->dyb = f->dyb, q->dyc = d->dyc = f->dyc;
    q->um = f->um; /* the DQN's view only */
}

static void test_targets(void **st) {
    (void)st;
    static fix f;
    fix_init(&f);
    /* what the price earns (its true rate) explains more of the uplift targets than of the logged
     * rewards, whose previous-day rate is noise the network would have to learn away */
    double sx = 0, sxx = 0, su = 0, suu = 0, sxu = 0, sr = 0, srr = 0, sxr = 0;
    for (int i = 1; i < N; i++) {
        const double obs = f.reward[i] - f.dyb[i], m = f.um[i];
        assert_true(isfinite(m) && m > 0);
        const float q = cmp_real_row_reward(&f.c, 0, 0, (size_t)i), d = cmp_real_row_reward(&f.c, 1, 0, (size_t)i);
        const double sc = f.cfg.dqn_uplift_scale; /* s (rate - m) / m */
        assert_close(q, sc * (obs - m) / m, 1e-6 * sc, 1e-5);
        assert_close(d, f.reward[i] / f.rscale[0], 1e-5, 1e-5); /* DDPG: the logged reward */
        sx += truth[i], sxx += truth[i] * truth[i];
        su += q, suu += (double)q * q, sxu += truth[i] * q;
        sr += d, srr += (double)d * d, sxr += truth[i] * d;
    }
    const double n = N - 1, vx = sxx - sx * sx / n;
    const double c_up = (sxu - sx * su / n) / sqrt(vx * (suu - su * su / n));
    const double c_raw = (sxr - sx * sr / n) / sqrt(vx * (srr - sr * sr / n));
    assert_true(c_up > c_raw); /* a small effect on a real row (today's noise stays): 0.17 vs 0.11 */
    /* the model-based rows (8 per real row by default): a drawn price's target against its model
     * rate; the uplift's follows it (the incumbent's rate varies little), the logged reward's
     * carries the previous day's noise */
    eng_rng g;
    eng_rng_seed(&g, 3);
    sx = sxx = su = suu = sxu = sr = srr = sxr = 0;
    int nm = 0;
    for (int i = 1; i < N; i++)
        for (int j = 0; j < 8; j++, nm++) {
            const feat_demand_ctx xi = {f.dyc[2 * i], f.dyc[2 * i + 1]};
            const double v = feat_agent_model_rate_at(&f.pp, 10.0 * (0.8 + 0.4 * eng_rng_uniform(&g)), &xi, NULL);
            const double q = cmp_dqn_uplift(&f.c, (size_t)i, v), d = (v + f.dyb[i]) / f.rscale[0];
            sx += v, sxx += v * v, su += q, suu += q * q, sxu += v * q, sr += d, srr += d * d, sxr += v * d;
        }
    const double n2 = nm, vx2 = sxx - sx * sx / n2;
    const double m_up = (sxu - sx * su / n2) / sqrt(vx2 * (suu - su * su / n2));
    const double m_raw = (sxr - sx * sr / n2) / sqrt(vx2 * (srr - sr * sr / n2));
    print_message("corr(target, rate of the price): real rows uplift %.3f / logged %.3f, model rows %.3f / %.3f\n",
                  c_up, c_raw, m_up, m_raw);
    assert_true(m_up > 0.6 && m_raw < 0.3); /* 0.75 and 0.04 */
    /* the same best price: the targets of one state's prices rank as its model's rates do */
    const size_t r = 7;
    const feat_demand_ctx x = {f.dyc[2 * r], f.dyc[2 * r + 1]};
    int best_up = -1, best_raw = -1;
    double v_up = -INFINITY, v_raw = -INFINITY;
    for (int k = 0; k < 21; k++) {
        const double pk = 10.0 * (0.75 + 0.025 * k), v = feat_agent_model_rate_at(&f.pp, pk, &x, NULL);
        const double up = cmp_dqn_uplift(&f.c, r, v), raw = (v + f.dyb[r]) / f.rscale[0];
        if (up > v_up) v_up = up, best_up = k;
        if (raw > v_raw) v_raw = raw, best_raw = k;
        assert_true(up > -f.cfg.dqn_uplift_scale); /* above -100% */
    }
    assert_int_equal(best_up, best_raw);
    assert_true(best_up > 0 && best_up < 20); /* an interior optimum, not an edge by accident */
    /* the incumbent itself earns an uplift of 0 */
    const double inc = s1[r * FEAT_N + FEAT_PRICE_CUR];
    const feat_demand_ctx own = feat_agent_model_ctx(&f.pp, s1 + r * FEAT_N, s1 + r * FEAT_N);
    assert_close(cmp_dqn_uplift(&f.c, r, feat_agent_model_rate_at(&f.pp, inc, &own, NULL)), 0.0, 1e-3, 0);
    /* no baseline: the row is left out (NaN), never a reward on another scale */
    f.um[3] = NAN;
    assert_true(isnan(cmp_real_row_reward(&f.c, 0, 0, 3)));
    assert_true(isfinite(cmp_real_row_reward(&f.c, 1, 0, 3)));
    assert_true(isnan(cmp_dqn_uplift(&f.c, 3, 1.0)));
    /* with the real rows valued by the model (compare.dyna_real 1) the target is the model's */
    f.cfg.dyna_real = 1.0;
    const feat_demand_ctx x9 = {f.dyc[18], f.dyc[19]};
    const double m9 = feat_agent_model_rate_at(&f.pp, price[9], &x9, NULL);
    const double sc = f.cfg.dqn_uplift_scale;
    assert_close(cmp_real_row_reward(&f.c, 0, 0, 9), sc * (m9 - f.um[9]) / f.um[9], 1e-6 * sc, 1e-5);
    /* the scale multiplies every target and nothing else (compare.dqn_uplift_scale) */
    const double u10 = cmp_dqn_uplift(&f.c, 9, m9);
    f.cfg.dqn_uplift_scale = 3.0 * sc;
    assert_close(cmp_dqn_uplift(&f.c, 9, m9), 3.0 * u10, 1e-12 * sc, 1e-12);
    assert_close(cmp_real_row_reward(&f.c, 0, 0, 9), 3.0 * u10, 1e-6 * sc, 1e-5);
    assert_true(isnan(cmp_dqn_uplift(&f.c, 3, 1.0)));
    exp_compare_cfg_free(&f.cfg);
}

static void test_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    assert_int_equal(c.dqn_uplift, 1); /* the default since session 15 */
    assert_true(cmp_model_rows_on(&c) && cmp_dqn_uplift_on(&c));
    char *off[] = {"--compare.dqn_uplift=0"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, off), 0);
    assert_int_equal(c.dqn_uplift, 0);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    assert_false(cmp_dqn_uplift_on(&c));
    c.dqn_uplift = 2;
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "compare.dqn_uplift must be 0 or 1"));
    c.dqn_uplift = 1;
    const double s0 = c.dqn_uplift_scale;
    char *sc[] = {"--compare.dqn_uplift_scale=250"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, sc), 0);
    assert_true(c.dqn_uplift_scale == 250.0);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    const double bad[] = {0.0, -1.0, 2e6, NAN};
    for (int i = 0; i < 4; i++) {
        c.dqn_uplift_scale = bad[i];
        assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
        assert_non_null(strstr(eng_err_msg(), "compare.dqn_uplift_scale must be in (0, 1e6]"));
        eng_err_clear();
    }
    c.dqn_uplift_scale = s0;
    /* not in effect (and not an error) where it cannot be: a discounted DQN, no model rows */
    c.dqn.gamma = 0.9f;
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    assert_false(cmp_dqn_uplift_on(&c));
    c.dqn.gamma = 0.0f, c.dyna = 0;
    assert_false(cmp_model_rows_on(&c) || cmp_dqn_uplift_on(&c));
    c.dyna = 8, c.shared = 0;
    assert_false(cmp_dqn_uplift_on(&c));
    c.shared = 1, c.agent_state = 0;
    assert_false(cmp_dqn_uplift_on(&c));
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_rate),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
