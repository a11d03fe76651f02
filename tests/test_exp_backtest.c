/* tests/test_exp_backtest.c - the backtest against the simulator's truth: the demand families'
 * optimum where the algebra puts it, a randomised history, and a small backtest of the real
 * nightly (40 products x 60 days, one easy market: list prices 70-75% of the best price, ten
 * times the usual traffic) asserting that the learning agents beat a random policy and the
 * historical prices, that no policy of the gate and no agent sets a price outside the
 * guardrails, and that the gate's 95% shrunk variant is the nightly's own rule. */
#include "test_db.h"

#include "exp_backtest.h"

/* The DQN of main before the shared, offline-safe agents of issue 12 captured about -23% of the
 * attainable uplift on this market, below the history (+11%); with them (branch i12agents) it
 * captures 84.6% pooled (DDPG 86.9%), so the assertion that it beats the history and a random
 * price is on. */
#ifndef BT_REQUIRE_DQN
#define BT_REQUIRE_DQN 1
#endif

/* The logit family's best price per visitor is p* = p0 / m at neutral competitors; constant
 * elasticity puts it at the bound on the side of its elasticity. */
static void test_family_truth(void **state) {
    (void)state;
    for (int i = 0; i < 30; i++) {
        env_sim_params p;
        assert_int_equal(env_sim_draw_params(ENV_SIM_PRESET_DEFAULT, NULL, 1, 19723, 9, i, &p), 0);
        assert_int_equal(env_sim_family_apply(ENV_SIM_FAMILY_LOGIT, 0.7, 1.35, 9, i, &p), 0);
        double cbar = env_sim_comp_mean_price(&p), best, bv;
        assert_int_equal(env_sim_best_price(&p, 1, cbar, 0.2 * p.base_price, 3 * p.base_price, &best, &bv), 0);
        double q = env_sim_purchase_prob(&p, best, best, cbar);
        /* first-order condition 1 + b x (1 - q) = 0 at x = best / p0, within a cent */
        double foc = 1 + p.elasticity * best / p.base_price * (1 - q);
        assert_true(fabs(foc) < 0.02);
        assert_true(best / p.base_price > 1 / 1.36 && best / p.base_price < 1 / 0.69);
        assert_true(bv >= env_sim_rpv(&p, best + 0.05, best + 0.05, cbar));
        assert_true(bv >= env_sim_rpv(&p, best - 0.05, best - 0.05, cbar));
        /* constant elasticity: revenue per visitor ~ p^(1+b) */
        assert_int_equal(env_sim_family_apply(ENV_SIM_FAMILY_CE, 0.7, 1.35, 9, i, &p), 0);
        double lo = 0.85 * p.base_price, hi = 1.15 * p.base_price;
        assert_int_equal(env_sim_best_price(&p, p.base_price, cbar, lo, hi, &best, &bv), 0);
        if (p.elasticity < -1.01) assert_true(fabs(best - lo) < 0.011);
        if (p.elasticity > -0.99) assert_true(fabs(best - hi) < 0.011);
    }
    env_sim_params p;
    env_sim_params_default(&p);
    double b, v;
    assert_int_equal(env_sim_best_price(&p, 20, 20, 5, 4, &b, &v), ENG_EINVAL);
    env_sim_family f;
    assert_int_equal(env_sim_family_parse("ce", &f), 0);
    assert_int_equal(f, ENV_SIM_FAMILY_CE);
    assert_int_equal(env_sim_family_parse("loglog", &f), ENG_EINVAL);
}

static double peak_at(double x, void *ctx) { return -fabs(x - *(const double *)ctx); }
static double flat_at(double x, void *ctx) { return (void)x, (void)ctx, 1.0; }
static double nan_below(double x, void *ctx) { return x < *(const double *)ctx ? NAN : -x; } /* NaN below the cut */

/* The one whole-cent search: the nearest cent to an interior peak, an end when the peak lies
 * outside, a stride of whole cents past max_cents, ties to the lower price, and a bad interval. */
static void test_cent_argmax(void **state) {
    (void)state;
    double peak = 3.337, bp = 0, bv = 0;
    assert_int_equal(env_sim_cent_argmax(1.0, 5.0, 20000, peak_at, &peak, &bp, &bv), 0);
    assert_true(fabs(bp - 3.34) < 1e-9 && fabs(bv + 0.003) < 1e-9);
    assert_int_equal(env_sim_cent_argmax(1.005, 2.0, 0, peak_at, &peak, &bp, &bv), 0);
    assert_true(bp == 2.0);
    peak = 0.5;
    assert_int_equal(env_sim_cent_argmax(1.005, 2.0, 0, peak_at, &peak, &bp, &bv), 0);
    assert_true(bp == 1.005); /* the end itself, not the first whole cent */
    peak = 57.123;
    assert_int_equal(env_sim_cent_argmax(1.0, 100.0, 100, peak_at, &peak, &bp, &bv), 0);
    assert_true(fabs(bp * 100 - round(bp * 100)) < 1e-6 && fabs(bp - peak) <= 1.0); /* stride of 100 cents */
    assert_int_equal(env_sim_cent_argmax(2.0, 3.0, 0, flat_at, NULL, &bp, &bv), 0);
    assert_true(bp == 2.0); /* every price ties: the lowest */
    double cut = 2.5; /* NaN at the low end: the first finite cent wins, not the NaN */
    assert_int_equal(env_sim_cent_argmax(2.0, 3.0, 0, nan_below, &cut, &bp, &bv), 0);
    assert_true(fabs(bp - 2.5) < 1e-9 && fabs(bv + 2.5) < 1e-9);
    cut = 9; /* no finite value */
    assert_int_equal(env_sim_cent_argmax(2.0, 3.0, 0, nan_below, &cut, &bp, &bv), ENG_EINVAL);
    bp = 7;
    assert_int_equal(env_sim_cent_argmax(3.0, 2.0, 0, peak_at, &peak, &bp, &bv), ENG_EINVAL);
    assert_true(bp == 7); /* nothing written */
}

/* A family history: six levels 0.85..1.15 of the list price, each with propensity 1/6, and
 * the same seed gives the same history. */
static void test_randomised_history(void **state) {
    (void)state;
    env_sim_gen_opts o = env_sim_gen_opts_default();
    o.family = ENV_SIM_FAMILY_REF;
    o.seed = 5;
    o.n_levels = 6, o.level_lo = 0.85, o.level_hi = 1.15;
    db_history *h = NULL, *h2 = NULL;
    env_sim_log *lg = NULL, *lg2 = NULL;
    assert_int_equal(env_sim_generate_ex(&o, 12, 50, &h, &lg), 0);
    assert_int_equal(env_sim_generate_ex(&o, 12, 50, &h2, &lg2), 0);
    int seen[6] = {0};
    for (int c = 0; c < 12 * 50; c++) {
        assert_true(fabs(lg->propensity[c] - 1.0 / 6) < 1e-12);
        seen[lg->level[c]]++;
        assert_true(h->price[c] == h2->price[c] && h->units[c] == h2->units[c]);
        assert_int_equal(h->promo[c], 0);
    }
    for (int k = 0; k < 6; k++) assert_true(seen[k] > 60 && seen[k] < 140);
    for (int i = 0; i < 12; i++) assert_int_equal(lg->params[i].demand, ENV_SIM_DEMAND_LOGIT);
    o.seed = 6;
    db_history_free(h2);
    env_sim_log_free(lg2);
    assert_int_equal(env_sim_generate_ex(&o, 12, 50, &h2, &lg2), 0);
    int differ = 0;
    for (int c = 0; c < 12 * 50; c++) differ += h->price[c] != h2->price[c];
    assert_true(differ > 100);
    db_history_free(h);
    db_history_free(h2);
    env_sim_log_free(lg);
    env_sim_log_free(lg2);
}

static void test_small_backtest(void **state) {
    (void)state;
    PGconn *c = tdb_create("backtest");
    char out[512];
    snprintf(out, sizeof out, "%s/backtest_%d", test_tmpdir(), (int)getpid());
    exp_compare_cfg cc = exp_compare_default();
    exp_bt_cfg cfg = exp_bt_default();
    cfg.conn = c;
    cfg.n_products = 40;
    cfg.n_days = 60;
    cfg.n_families = 1;
    cfg.families[0] = ENV_SIM_FAMILY_LOGIT;
    cfg.misset_lo = 0.70, cfg.misset_hi = 0.75;
    cfg.traffic_scale = 10;
    cfg.out_dir = out;
    cfg.device = "cpu";
    cfg.compare = &cc;
    exp_bt_result r;
    assert_int_equal(exp_backtest_run(&cfg, &r), 0);
    assert_int_equal(r.n_runs, 1);
    const exp_bt_run *run = &r.runs[0];
    exp_backtest_print(stdout, &cfg, &r);
    assert_int_equal(run->n_valued, 40);
    /* the yardsticks */
    assert_true(fabs(run->pol[EXP_BT_BEST].captured_pooled - 1) < 1e-12);
    assert_true(fabs(run->pol[EXP_BT_INCUMBENT].captured_pooled) < 1e-12);
    assert_int_equal(run->pol[EXP_BT_INCUMBENT].n_repriced, 0);
    assert_true(run->attainable_period > 0);
    /* nothing the engine prices leaves the guardrails; the history's own next price may */
    for (int k = 0; k < EXP_BT_N_POL; k++)
        if (k != EXP_BT_HISTORY) assert_int_equal(run->pol[k].n_outside, 0);
    for (int k = 0; k < EXP_BT_N_GATE; k++) assert_int_equal(run->gate[k].n_outside, 0);
    /* the 95% shrunk gate variant is exactly the nightly's rule */
    assert_int_equal(run->n_gate_agree, run->n_valued);
    /* the learning agents beat a random price and the history's prices under the truth */
    const double rnd = run->pol[EXP_BT_RANDOM].captured_pooled, his = run->pol[EXP_BT_HISTORY].captured_pooled;
    assert_true(run->pol[EXP_BT_DDPG].captured_pooled > rnd);
    assert_true(run->pol[EXP_BT_DDPG].captured_pooled > his);
    if (BT_REQUIRE_DQN) {
        assert_true(run->pol[EXP_BT_DQN].captured_pooled > rnd);
        assert_true(run->pol[EXP_BT_DQN].captured_pooled > his);
    }
    /* the JSON */
    char path[600];
    snprintf(path, sizeof path, "%s/bt.json", out);
    assert_int_equal(exp_backtest_write_json(path, &cfg, &r), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[256] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_non_null(strchr(buf, '{'));
    exp_bt_result_free(&r);
    exp_compare_cfg_free(&cc);
    tdb_drop(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_truth),
        cmocka_unit_test(test_cent_argmax),
        cmocka_unit_test(test_randomised_history),
        cmocka_unit_test(test_small_backtest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
