/* tests/test_env_sim.c - market simulator: determinism, samplers, logging propensities, the
 * DP optimum against fixed and myopic prices, and evaluation CIs against an analytic value. */
#include "test_common.h"
#include "env_sim.h"

static void test_determinism(void **state) {
    (void)state;
    db_history *a, *b, *c;
    env_sim_log *la, *lb, *lc;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 20, 30, 1, 19723, 11, &a, &la), 0);
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 20, 30, 1, 19723, 11, &b, &lb), 0);
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 20, 30, 1, 19723, 12, &c, &lc), 0);
    size_t cells = 20 * 30;
    assert_memory_equal(a->price, b->price, cells * sizeof(float));
    assert_memory_equal(a->units, b->units, cells * sizeof(float));
    assert_memory_equal(a->traffic, b->traffic, cells * sizeof(float));
    assert_int_equal(a->comp_off[cells], b->comp_off[cells]);
    assert_memory_equal(a->comp_price, b->comp_price, (size_t)a->comp_off[cells] * sizeof(float));
    assert_memory_equal(la->propensity, lb->propensity, cells * sizeof(double));
    assert_memory_equal(la->params, lb->params, 20 * sizeof(env_sim_params));
    int diff_units = 0, diff_traffic = 0;
    for (size_t i = 0; i < cells; i++) diff_units += a->units[i] != c->units[i], diff_traffic += a->traffic[i] != c->traffic[i];
    assert_true(diff_traffic > (int)cells * 9 / 10);
    assert_true(diff_units > (int)cells / 2);
    /* the history is well formed: revenue = units x price, every cell present, ids distinct */
    for (size_t i = 0; i < cells; i++) {
        assert_int_equal(a->present[i], 1);
        assert_close(a->revenue[i], a->units[i] * a->price[i], 1e-3, 1e-5);
        assert_true(a->units[i] <= a->traffic[i]);
    }
    assert_string_not_equal(a->product_id[0], a->product_id[1]);
    db_history_free(a), db_history_free(b), db_history_free(c);
    env_sim_log_free(la), env_sim_log_free(lb), env_sim_log_free(lc);
}

static void test_samplers(void **state) {
    (void)state;
    eng_rng r;
    eng_rng_seed(&r, 99);
    const double means[] = {0.7, 4.0, 25.0, 900.0};
    const int n = 20000;
    for (int m = 0; m < 4; m++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            double x = (double)env_sim_poisson(&r, means[m]);
            s += x, s2 += x * x;
        }
        double mu = s / n, var = s2 / n - mu * mu;
        assert_close(mu, means[m], 5 * sqrt(means[m] / n), 0);
        assert_close(var, means[m], 0, 0.06);
    }
    const struct { int64_t n; double q; } bc[] = {{40, 0.05}, {1000, 0.03}, {5000, 0.2}, {300, 0.9}};
    for (int m = 0; m < 4; m++) {
        double s = 0, s2 = 0, ev = bc[m].n * bc[m].q, vv = ev * (1 - bc[m].q);
        for (int i = 0; i < n; i++) {
            int64_t x = env_sim_binomial(&r, bc[m].n, bc[m].q);
            assert_true(x >= 0 && x <= bc[m].n);
            s += (double)x, s2 += (double)x * (double)x;
        }
        double mu = s / n, var = s2 / n - mu * mu;
        assert_close(mu, ev, 5 * sqrt(vv / n), 0);
        assert_close(var, vv, 0, 0.06);
    }
}

static void test_logging_propensities(void **state) {
    (void)state;
    env_sim_grid g;
    assert_int_equal(env_sim_grid_make(&g, 13, 0.7, 1.3), 0);
    env_sim_params p;
    env_sim_params_default(&p);
    p.log_promo_prob = 0.2;
    /* a fixed state: probabilities sum to one and the sampler follows them */
    double comp[ENV_SIM_MAX_COMP] = {18.0, 23.0};
    double probs[ENV_SIM_MAX_LEVELS];
    assert_int_equal(env_sim_logging_probs(&p, &g, comp, probs), 0);
    double s = 0;
    for (int k = 0; k < g.n; k++) s += probs[k];
    assert_close(s, 1.0, 1e-12, 0);
    env_sim_logging_ctx lc = {.prm = &p};
    env_sim_obs obs = {.base_price = p.base_price, .n_comp = 2, .comp_now = comp, .grid = &g};
    eng_rng r;
    eng_rng_seed(&r, 5);
    int counts[ENV_SIM_MAX_LEVELS] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++) {
        double price;
        assert_int_equal(env_sim_policy_logging(&lc, 0, 0, &obs, &r, &price), 0);
        counts[lc.last_level]++;
        assert_close(price, p.base_price * g.mult[lc.last_level], 1e-12, 0);
        assert_close(lc.last_propensity, probs[lc.last_level], 1e-15, 0);
    }
    for (int k = 0; k < g.n; k++)
        assert_close((double)counts[k] / n, probs[k], 5 * sqrt(probs[k] * (1 - probs[k]) / n) + 1e-4, 0);
    /* in a generated history (states vary): each row's distribution sums to one, the logged
     * propensity is that of the logged level, and level counts match the summed probabilities */
    db_history *h;
    env_sim_log *lg;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 50, 60, 1, 19723, 21, &h, &lg), 0);
    int L = lg->grid.n;
    double expect[ENV_SIM_MAX_LEVELS] = {0}, varsum[ENV_SIM_MAX_LEVELS] = {0};
    int got[ENV_SIM_MAX_LEVELS] = {0};
    size_t cells = 50 * 60;
    for (size_t c = 0; c < cells; c++) {
        const double *pr = lg->probs + c * (size_t)L;
        double t = 0;
        for (int k = 0; k < L; k++) t += pr[k], expect[k] += pr[k], varsum[k] += pr[k] * (1 - pr[k]);
        assert_close(t, 1.0, 1e-12, 0);
        assert_close(lg->propensity[c], pr[lg->level[c]], 0, 0);
        assert_true(lg->propensity[c] > 0);
        got[lg->level[c]]++;
        size_t prod = c / 60;
        assert_close(h->price[c], lg->params[prod].base_price * lg->grid.mult[lg->level[c]], 1e-3, 1e-6);
    }
    for (int k = 0; k < L; k++) assert_close(got[k], expect[k], 5 * sqrt(varsum[k]) + 1, 0);
    db_history_free(h);
    env_sim_log_free(lg);
}

/* a product whose customers remember prices and reward cuts strongly (gain > loss) */
static void strong_reference(env_sim_params *p) {
    env_sim_params_default(p);
    p->n_comp = 1;
    p->comp_sigma = 0;
    p->comp_promo_prob = 0;
    p->traffic_sigma = 0.1;
    p->elasticity = -1.0;
    p->ref_gain = 2.0;
    p->ref_loss = 1.0;
    p->ref_lambda = 0.8;
    p->promo_lift = 0;
}

static void test_dp_beats_fixed_and_myopic(void **state) {
    (void)state;
    env_sim_params p;
    strong_reference(&p);
    env_sim_grid g;
    env_sim_grid_make(&g, 13, 0.7, 1.3);
    const int H = 30, reps = 100;
    env_sim_dp *dp, *dp2;
    assert_int_equal(env_sim_dp_solve(&p, &g, H, 0.99, 201, 0, &dp), 0);
    assert_int_equal(env_sim_dp_solve(&p, &g, H, 0.99, 401, 0, &dp2), 0);
    double v0 = env_sim_dp_value(dp, 0, p.base_price);
    /* discretisation: doubling the reference nodes barely moves the optimum */
    assert_close(env_sim_dp_value(dp2, 0, p.base_price), v0, 0, 1e-3);
    env_sim_value vd, vm, vf;
    assert_int_equal(env_sim_evaluate(&p, &g, 0, H, 0.99, reps, 17, env_sim_policy_dp, dp, &vd), 0);
    /* the DP value is what its policy earns (expected discounted revenue along the path) */
    assert_close(vd.exp_disc_revenue.mean, v0, 0, 2e-3);
    assert_close(vd.disc_revenue.mean, v0, 2 * vd.disc_revenue.ci, 0);
    env_sim_myopic_ctx mc = {.prm = &p, .profit = 0};
    assert_int_equal(env_sim_evaluate(&p, &g, 0, H, 0.99, reps, 17, env_sim_policy_myopic, &mc, &vm), 0);
    assert_true(vd.revenue.mean - vd.revenue.ci > vm.revenue.mean + vm.revenue.ci);
    for (int k = 0; k < g.n; k++) {
        double m = g.mult[k];
        assert_int_equal(env_sim_evaluate(&p, &g, 0, H, 0.99, reps, 17, env_sim_policy_fixed, &m, &vf), 0);
        if (!(vd.revenue.mean - vd.revenue.ci > vf.revenue.mean + vf.revenue.ci))
            fail_msg("fixed %.2f: %.1f +- %.1f vs DP %.1f +- %.1f", m, vf.revenue.mean, vf.revenue.ci, vd.revenue.mean,
                     vd.revenue.ci);
        assert_true(vd.disc_revenue.mean > vf.disc_revenue.mean);
    }
    /* the optimal policy is not constant: it moves the price (hi-lo) */
    double r = p.base_price;
    int lv_prev = -1, moves = 0;
    for (int t = 0; t < H; t++) {
        double price;
        int best = 0;
        double bq = -1;
        for (int k = 0; k < g.n; k++) {
            double pk = p.base_price * g.mult[k];
            double qv = env_sim_expected_traffic(&p, t) * env_sim_purchase_prob(&p, pk, r, p.base_price * p.comp_mean[0]) * pk +
                        0.99 * env_sim_dp_value(dp, t + 1, env_sim_ref_next(&p, r, pk));
            if (qv > bq) bq = qv, best = k;
        }
        price = p.base_price * g.mult[best];
        moves += lv_prev >= 0 && best != lv_prev;
        lv_prev = best;
        r = env_sim_ref_next(&p, r, price);
    }
    assert_true(moves >= 2);
    env_sim_dp_free(dp);
    env_sim_dp_free(dp2);
}

/* Exhaustive search over every price path within the change limit (exact reference recursion):
 * the best cumulative money of periods t..H-1 from the level in force k and the reference r. */
static double dpc_brute(const env_sim_params *p, const double *lv, int n, double mc, int t, int H, int k, double r) {
    if (t == H) return 0;
    double best = -INFINITY, cbar = env_sim_comp_mean_price(p);
    for (int kk = 0; kk < n; kk++) {
        if (lv[kk] < lv[k] * (1 - mc) - 1e-8 || lv[kk] > lv[k] * (1 + mc) + 1e-8) continue;
        double v = env_sim_expected_traffic(p, t) * env_sim_purchase_prob(p, lv[kk], r, cbar) * lv[kk] +
                   dpc_brute(p, lv, n, mc, t + 1, H, kk, env_sim_ref_next(p, r, lv[kk]));
        best = fmax(best, v);
    }
    return best;
}

/* The optimum held to a change limit: without a binding limit it is the unconstrained DP on the
 * same levels (to rounding); with a limit it equals the exhaustive search over the paths the
 * limit allows (to the reference grid's interpolation), lies below the unconstrained optimum and
 * above keeping the list price; its policy never leaves the limit. */
static void test_dpc_change_limit(void **state) {
    (void)state;
    env_sim_params p;
    strong_reference(&p);
    env_sim_grid g;
    env_sim_grid_make(&g, 13, 0.7, 1.3);
    double lv[13];
    for (int k = 0; k < 13; k++) lv[k] = p.base_price * g.mult[k];
    const int H = 20, J = 201, k0 = 6; /* lv[6] = the list price */
    env_sim_dp *dp;
    env_sim_dpc *free_c, *lim;
    assert_int_equal(env_sim_dp_solve(&p, &g, H, 1.0, J, 0, &dp), 0);
    assert_int_equal(env_sim_dpc_solve(&p, lv, 13, 10.0, 0, NAN, H, 1.0, J, 0, &free_c), 0);
    assert_int_equal(env_sim_dpc_solve(&p, lv, 13, 0.15, 0, NAN, H, 1.0, J, 0, &lim), 0);
    for (int t = 0; t < H; t++)
        for (int j = 0; j < J; j += 20) {
            double r = dp->r_lo + (dp->r_hi - dp->r_lo) * j / (J - 1), v = env_sim_dp_value(dp, t, r);
            for (int k = 0; k < 13; k++) assert_close(env_sim_dpc_value(free_c, t, k, r), v, 0, 1e-9);
        }
    const double r0 = p.base_price * p.ref0, vl = env_sim_dpc_value(lim, 0, k0, r0), vf = env_sim_dp_value(dp, 0, r0);
    double vlist = 0, r = r0;
    for (int t = 0; t < H; t++)
        vlist += env_sim_expected_traffic(&p, t) * env_sim_purchase_prob(&p, lv[k0], r, env_sim_comp_mean_price(&p)) * lv[k0],
            r = env_sim_ref_next(&p, r, lv[k0]);
    assert_true(vl >= vlist * (1 - 1e-9));
    assert_true(vl < vf); /* the limit binds on this market: the free optimum jumps further than 15% */
    /* the exhaustive search over 5 periods, from levels around the list price */
    env_sim_dpc *short_h;
    assert_int_equal(env_sim_dpc_solve(&p, lv, 13, 0.15, 0, NAN, 5, 1.0, 2001, 0, &short_h), 0);
    for (int k = 4; k <= 8; k++)
        assert_close(env_sim_dpc_value(short_h, 0, k, r0), dpc_brute(&p, lv, 13, 0.15, 0, 5, k, r0), 0, 1e-4);
    /* the policy along the path stays within the limit, and its money is the DP's value */
    double prev = lv[k0], money = 0;
    r = r0;
    for (int t = 0; t < H; t++) {
        int k = env_sim_dpc_best(lim, t, r, prev, env_sim_comp_mean_price(&p), NULL);
        assert_true(k >= 0 && lv[k] >= prev * 0.85 - 1e-8 && lv[k] <= prev * 1.15 + 1e-8);
        money += env_sim_expected_traffic(&p, t) * env_sim_purchase_prob(&p, lv[k], r, env_sim_comp_mean_price(&p)) * lv[k];
        r = env_sim_ref_next(&p, r, lv[k]), prev = lv[k];
    }
    assert_close(money, vl, 0, 1e-3);
    assert_int_equal(env_sim_dpc_best(lim, H, r0, lv[k0], p.base_price, NULL), -1);
    env_sim_dpc *bad = lim; /* set to NULL on failure */
    double desc[2] = {2, 1};
    assert_int_equal(env_sim_dpc_solve(&p, desc, 2, 0.15, 0, NAN, H, 1.0, J, 0, &bad), ENG_EINVAL);
    assert_null(bad);
    env_sim_dp_free(dp);
    env_sim_dpc_free(free_c);
    env_sim_dpc_free(lim);
    env_sim_dpc_free(short_h);
}

static void test_ci_covers_analytic(void **state) {
    (void)state;
    env_sim_params p;
    env_sim_params_default(&p);
    p.n_comp = 0;
    p.ref_gain = p.ref_loss = 0;
    p.traffic_sigma = 0;
    p.traffic_trend = 0.01;
    p.promo_lift = 0;
    env_sim_grid g;
    env_sim_grid_make(&g, 13, 0.7, 1.3);
    const int H = 21;
    double m = 1.1, price = m * p.base_price, gamma = 0.95;
    double q = 1.0 / (1.0 + exp(-(p.conv_base + p.elasticity * log(m))));
    double rev = 0, drev = 0, d = 1;
    for (int t = 0; t < H; t++) {
        double v = p.traffic_base * exp(0.01 * t) * p.weekly[t % 7] * q * price;
        rev += v, drev += d * v, d *= gamma;
    }
    env_sim_value v;
    assert_int_equal(env_sim_evaluate(&p, &g, 3, H, gamma, 400, 8, env_sim_policy_fixed, &m, &v), 0);
    assert_close(v.exp_revenue.mean, rev, 0, 1e-9);       /* exact expectation */
    assert_close(v.exp_disc_revenue.mean, drev, 0, 1e-9);
    assert_true(v.revenue.ci > 0 && v.revenue.ci < 0.02 * rev);
    if (fabs(v.revenue.mean - rev) > v.revenue.ci)
        fail_msg("CI %.2f +- %.2f misses the analytic %.2f", v.revenue.mean, v.revenue.ci, rev);
    if (fabs(v.disc_revenue.mean - drev) > v.disc_revenue.ci)
        fail_msg("discounted CI %.2f +- %.2f misses %.2f", v.disc_revenue.mean, v.disc_revenue.ci, drev);
    double prof = rev * (price - p.unit_cost) / price;
    assert_true(fabs(v.profit.mean - prof) <= v.profit.ci);
}

static void test_bad_input(void **state) {
    (void)state;
    env_sim_params p;
    env_sim_params_default(&p);
    env_sim_market m;
    assert_int_equal(env_sim_market_init(&m, &p, 1, 0), 0);
    env_sim_outcome o;
    assert_int_equal(env_sim_market_step(&m, 0.0, &o), ENG_EINVAL);
    assert_int_equal(env_sim_market_step(&m, NAN, &o), ENG_EINVAL);
    assert_int_equal(env_sim_market_step(&m, 19.0, &o), 0);
    assert_int_equal(m.t, 1);
    env_sim_grid g;
    env_sim_grid_make(&g, 5, 0.8, 1.2);
    env_sim_dp *dp = NULL;
    p.stock = 100;
    assert_int_equal(env_sim_dp_solve(&p, &g, 10, 1.0, 50, 0, &dp), ENG_EINVAL);
    assert_null(dp);
    p.stock = 0;
    p.ref_lambda = 1.0;
    assert_int_equal(env_sim_market_init(&m, &p, 1, 0), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "ref_lambda"));
    assert_int_equal(env_sim_grid_make(&g, 0, 0.8, 1.2), ENG_EINVAL);
    db_history *h;
    env_sim_log *lg;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DOMINICKS, NULL, 2, 5, 7, 0, 1, &h, &lg), ENG_EINVAL);
    assert_null(h);
}

static void test_stock_caps_sales(void **state) {
    (void)state;
    env_sim_params p;
    env_sim_params_default(&p);
    p.stock = 50;
    env_sim_market m;
    assert_int_equal(env_sim_market_init(&m, &p, 4, 0), 0);
    double sold = 0;
    env_sim_outcome o;
    for (int t = 0; t < 20; t++) {
        assert_int_equal(env_sim_market_step(&m, p.base_price, &o), 0);
        sold += o.units;
    }
    assert_close(sold, 50, 0, 0); /* ~24 a day: sold out, never beyond */
    assert_close(m.stock_left, 0, 0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),           cmocka_unit_test(test_samplers),
        cmocka_unit_test(test_logging_propensities),  cmocka_unit_test(test_dp_beats_fixed_and_myopic),
        cmocka_unit_test(test_ci_covers_analytic),    cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_stock_caps_sales),       cmocka_unit_test(test_dpc_change_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
