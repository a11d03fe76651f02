/* tests/test_exp_backtest_loop.c - the closed loop (`rlprice backtest --nights N`) end to end
 * through a throwaway PostgreSQL: a tiny easy market (12 products x 40 days, list prices 70-75%
 * of the best price, ten times the usual traffic, no reference effect), 3 nights of the real
 * nightly, warm from the previous night's checkpoints, with the engine lane and the best fixed
 * price forced alone.  Asserts that every night loads one sales row per product into each
 * lane's database (and the engine's database holds the history plus the nights), that the
 * prices pushed are read back exactly, that no lane's price leaves the guardrails, that the
 * oracle (the day's best price within the same change limit) is never beaten on a market
 * without carry-over, that the engine's logged exploration draws prices and its cost is valued, that night 2 warm-started, and that the curves page and the JSON are
 * written. */
#include "test_db.h"

#include "exp_backtest_loop.h"

/* The whole file, NUL-terminated (the caller frees); fails the test when unreadable. */
static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

/* Replaying a generated history through a fresh market reproduces it (the loop's starting state). */
static void test_replay(void **state) {
    (void)state;
    env_sim_gen_opts o = env_sim_gen_opts_default();
    o.family = ENV_SIM_FAMILY_REF;
    o.seed = 3;
    o.n_levels = 6, o.level_lo = 0.85, o.level_hi = 1.15;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate_ex(&o, 5, 30, &h, &lg), 0);
    for (int i = 0; i < 5; i++) {
        env_sim_market m;
        assert_int_equal(env_sim_market_init(&m, &lg->params[i], 3, i), 0);
        for (int t = 0; t < 30; t++) {
            env_sim_outcome out;
            assert_int_equal(env_sim_market_step(&m, h->price[i * 30 + t], &out), 0);
            assert_true(out.units == h->units[i * 30 + t] && out.traffic == h->traffic[i * 30 + t]);
            assert_true(fabs(out.ref - lg->ref[i * 30 + t]) < 1e-12);
        }
    }
    db_history_free(h);
    env_sim_log_free(lg);
}

/* A one-family closed loop of P products, D days and `nights` nights on the throwaway database
 * c, written under out, with the comparison's settings cc, the lanes `lanes` beside the engine,
 * traffic x10, CPU, exploration off; the caller sets the rest (seed, change limit, exploration). */
static exp_btl_cfg tiny_loop(PGconn *c, const char *out, exp_compare_cfg *cc, env_sim_family fam, int P, int D,
                             int nights, unsigned lanes) {
    exp_btl_cfg cfg = {.bt = exp_bt_default(), .n_nights = nights, .lanes = lanes};
    cfg.bt.conn = c;
    cfg.bt.n_products = P;
    cfg.bt.n_days = D;
    cfg.bt.n_families = 1;
    cfg.bt.families[0] = fam;
    cfg.bt.traffic_scale = 10;
    cfg.bt.out_dir = out;
    cfg.bt.device = "cpu";
    cfg.bt.compare = cc;
    cfg.explore = (exp_explore_cfg){.share = 0, .max_step = 0.05f, .max_cost = 0.01f}; /* off */
    return cfg;
}

static void test_three_nights(void **state) {
    (void)state;
    PGconn *c = tdb_create("btloop");
    char out[512];
    snprintf(out, sizeof out, "%s/btloop_%d", test_tmpdir(), (int)getpid());
    exp_compare_cfg cc = exp_compare_default();
    const int P = 12, D = 40;
    exp_btl_cfg cfg = tiny_loop(c, out, &cc, ENV_SIM_FAMILY_LOGIT, P, D, 3, 1u << EXP_BTL_FIXED);
    cfg.bt.misset_lo = 0.70, cfg.bt.misset_hi = 0.75;
    cfg.explore = (exp_explore_cfg){.share = 0.3f, .max_step = 0.05f, .max_cost = 0.05f}; /* logged exploration on */
    exp_btl_result r;
    assert_int_equal(exp_backtest_loop_run(&cfg, &r), 0);
    exp_backtest_loop_print(stdout, &cfg, &r);
    assert_int_equal(r.n_runs, 1);
    const exp_btl_run *run = &r.runs[0];
    assert_int_equal(run->lanes, (1u << EXP_BTL_ENGINE) | (1u << EXP_BTL_FIXED) | (1u << EXP_BTL_MANUAL) |
                                     (1u << EXP_BTL_ORACLE) | (1u << EXP_BTL_HELD));
    for (int n = 0; n < 3; n++) {
        for (int l = 0; l < EXP_BTL_N_LANE; l++) {
            if (!(run->lanes & (1u << l))) continue;
            const exp_btl_night *x = &run->night[l][n];
            assert_true(x->exp_revenue > 0 && x->exp_traffic > 0);
            /* a market without carry-over: the day's best price within the change limit wins (the
               held reference follows a path of its own, so it may stand where the oracle cannot) */
            if (l != EXP_BTL_HELD)
                assert_true(run->night[EXP_BTL_ORACLE][n].exp_revenue >= x->exp_revenue * (1 - 1e-9));
            if (!exp_btl_lane_nightly((exp_btl_lane)l)) continue;
            assert_int_equal(x->rows_loaded, P);
            assert_int_equal(x->n_outside, 0);
            assert_int_equal(x->n_priced, P);
            assert_true(x->seconds > 0);
        }
        assert_int_equal(run->night[EXP_BTL_ENGINE][n].n_mismatch, 0);
        /* the list price stays, from night 1 on: every lane starts from the list price (the
           history's last day is sold at it), as a shop's current price */
        assert_int_equal(run->night[EXP_BTL_MANUAL][n].n_repriced, 0);
    }
    /* the engine explored, inside the guardrails (n_outside above), and its cost was valued */
    int nx = 0;
    for (int n = 0; n < 3; n++) nx += run->night[EXP_BTL_ENGINE][n].n_explored;
    assert_true(nx > 0);
    assert_true(isfinite(exp_btl_explore_share(run)));
    /* night 1 trains from scratch, night 2 continues from night 1's checkpoints */
    assert_int_equal(run->night[EXP_BTL_ENGINE][0].warm_loaded, 0);
    assert_true(run->night[EXP_BTL_ENGINE][1].warm_loaded > 0);
    /* the engine's database holds the history and one day per night */
    assert_int_equal(tdb_long(c, "SELECT count(*) FROM sales", 0, NULL), (long)P * (D + 3));
    assert_int_equal(tdb_long(c, "SELECT count(DISTINCT run_id) FROM pricing_runs WHERE status = 'finished'", 0, NULL), 3);
    /* the best fixed price beats the list prices on this market (list prices 25-30% too low), and
       so does the held reference, which moves toward the standing optimum within the change limit */
    assert_true(exp_btl_cum_revenue(run, EXP_BTL_FIXED) > exp_btl_cum_revenue(run, EXP_BTL_MANUAL));
    assert_true(exp_btl_cum_revenue(run, EXP_BTL_HELD) > exp_btl_cum_revenue(run, EXP_BTL_MANUAL));
    assert_true(run->night[EXP_BTL_HELD][0].n_repriced > 0);
    assert_int_equal(run->oracle_dp, 0); /* no carry-over: the myopic oracle is the optimum */
    double cap = exp_btl_captured(run, EXP_BTL_ORACLE);
    assert_true(fabs(cap - 1) < 1e-12);
    /* the JSON and the curves page */
    char path[600];
    snprintf(path, sizeof path, "%s/loop.json", out);
    assert_int_equal(exp_backtest_loop_write_json(path, &cfg, &r), 0);
    char *txt = read_all(path);
    assert_non_null(strstr(txt, "backtest_loop"));
    assert_non_null(strstr(txt, "\"alone:fixed\""));
    free(txt);
    snprintf(path, sizeof path, "%s/loop.html", out);
    assert_int_equal(exp_backtest_loop_write_html(path, &cfg, &r), 0);
    txt = read_all(path);
    assert_non_null(strstr(txt, "<svg"));
    assert_null(strstr(txt, "<script"));
    assert_null(strstr(txt, "src=\"http"));
    assert_null(strstr(txt, "href=\"http"));
    free(txt);
    exp_btl_result_free(&r);
    exp_compare_cfg_free(&cc);
    tdb_drop(c);
}

/* On the reference-price market the oracle is the DP over the nights held to the change limit
 * (state: reference x price in force): its cumulative expected revenue is at least every lane's
 * held to the same limit - the engine, each agent forced alone, manual pricing, the held
 * reference (a myopic oracle would not be: today's best price lowers tomorrow's reference) - and
 * at most that of the DP free of the change limit (oracle:free), which runs beside it. */
static void test_ref_dp_oracle(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/btloop_ref_%d", test_tmpdir(), (int)getpid());
    exp_compare_cfg cc = exp_compare_default();
    const int P = 8;
    PGconn *c = tdb_create("btloopref");
    exp_btl_cfg cfg = tiny_loop(c, out, &cc, ENV_SIM_FAMILY_REF, P, 30, 4, (1u << EXP_BTL_FIXED) | (1u << EXP_BTL_LINUCB));
    cfg.bt.seed = 3;
    exp_btl_result r;
    int st = exp_backtest_loop_run(&cfg, &r);
    if (st) fail_msg("backtest loop: %s", eng_err_msg());
    exp_backtest_loop_print(stdout, &cfg, &r);
    const exp_btl_run *run = &r.runs[0];
    assert_int_equal(run->oracle_dp, 1);
    assert_true(run->lanes & (1u << EXP_BTL_FREE));
    assert_true(run->lanes & (1u << EXP_BTL_GOING));
    assert_true(run->dp_levels > 2);
    /* oracle:going is the oracle's DP solved again every night from the lane's own state: on the
     * first night both stand in the same state, so they charge the same prices */
    assert_close(run->night[EXP_BTL_GOING][0].exp_revenue, run->night[EXP_BTL_ORACLE][0].exp_revenue, 1e-9, 0);
    assert_true(isfinite(exp_btl_captured_going(run, EXP_BTL_ENGINE)));
    double o = exp_btl_cum_revenue(run, EXP_BTL_ORACLE), fr = exp_btl_cum_revenue(run, EXP_BTL_FREE);
    for (int l = 0; l < EXP_BTL_N_LANE; l++)
        if ((run->lanes & (1u << l)) && l != EXP_BTL_FREE) {
            assert_true(o >= exp_btl_cum_revenue(run, (exp_btl_lane)l) * (1 - 1e-9));
            for (int n = 0; n < cfg.n_nights; n++) /* held to the change limit */
                assert_int_equal(run->night[l][n].n_outside, 0);
        }
    assert_true(fr >= o * (1 - 1e-9));
    assert_true(o > exp_btl_cum_revenue(run, EXP_BTL_MANUAL)); /* it moves: the reference effect pays */
    for (int n = 0; n < cfg.n_nights; n++) assert_int_equal(run->night[EXP_BTL_MANUAL][n].n_repriced, 0);
    exp_btl_result_free(&r);
    exp_compare_cfg_free(&cc);
    tdb_drop(c);
}

/* On constant elasticity the revenue-maximising price of an elastic product lies at the lowest
 * allowed price: the oracle and the held reference must stop at the engine's margin floor
 * (cost / (1 - guard.min_margin)), not at the min bound below it - n_outside counts a rule lane's
 * price below the floor; and the myopic oracle still wins every night. */
static void test_margin_floor(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/btloop_floor_%d", test_tmpdir(), (int)getpid());
    exp_compare_cfg cc = exp_compare_default();
    cc.guard.min_margin = 0.2;
    PGconn *c = tdb_create("btloopfloor");
    exp_btl_cfg cfg = tiny_loop(c, out, &cc, ENV_SIM_FAMILY_CE, 10, 30, 3, 0);
    cfg.bt.seed = 5;
    cfg.bt.max_change_pct = 50; /* three nights reach the floor */
    exp_btl_result r;
    int st = exp_backtest_loop_run(&cfg, &r);
    if (st) fail_msg("backtest loop: %s", eng_err_msg());
    const exp_btl_run *run = &r.runs[0];
    int moved = 0;
    for (int n = 0; n < cfg.n_nights; n++)
        for (int l = 0; l < EXP_BTL_N_LANE; l++) {
            if (!(run->lanes & (1u << l))) continue;
            assert_int_equal(run->night[l][n].n_outside, 0);
            if (l != EXP_BTL_HELD)
                assert_true(run->night[EXP_BTL_ORACLE][n].exp_revenue >= run->night[l][n].exp_revenue * (1 - 1e-9));
            moved += l == EXP_BTL_ORACLE ? run->night[l][n].n_repriced : 0;
        }
    assert_true(moved > 0);
    exp_btl_result_free(&r);
    exp_compare_cfg_free(&cc);
    tdb_drop(c);
}

/* --keep-history: the nightly of every night loads the whole history (nightly.window_days 0), so
 * night n (from 0) decides from the D days and the n nights sold since; without it a sliding
 * window of D days (every night D periods); 2: the engine loads the whole history after a night
 * whose exploration found carry-over in at most carryover_share of the products it tested (a
 * market without carry-over: it does on some night), else D periods. */
static void test_keep_history(void **state) {
    (void)state;
    char out[512];
    exp_compare_cfg cc = exp_compare_default();
    { /* checked before anything runs: the range, mode 2 needs the Thompson carry-over test, and
       * the one-night run's promotions and endings are refused */
        exp_btl_cfg bad = {.bt = exp_bt_default(), .n_nights = 3, .keep_history = 3};
        bad.bt.out_dir = test_tmpdir();
        exp_btl_result r;
        assert_int_equal(exp_backtest_loop_run(&bad, &r), ENG_EINVAL);
        exp_btl_result_free(&r);
        bad.keep_history = 2; /* exploration off */
        assert_int_equal(exp_backtest_loop_run(&bad, &r), ENG_EINVAL);
        exp_btl_result_free(&r);
        bad.keep_history = 0; /* the one-night run's promotions and endings: refused, not ignored */
        assert_int_equal(exp_backtest_loop_check(&bad), ENG_OK);
        bad.bt.promo_rate = 0.3;
        assert_int_equal(exp_backtest_loop_run(&bad, &r), ENG_EINVAL);
        exp_btl_result_free(&r);
        bad.bt.promo_rate = 0, bad.bt.endings = 1;
        assert_int_equal(exp_backtest_loop_check(&bad), ENG_EINVAL);
        eng_err_clear();
    }
    for (int keep = 0; keep <= 2; keep++) {
        snprintf(out, sizeof out, "%s/btloop_keep%d_%d", test_tmpdir(), keep, (int)getpid());
        PGconn *c = tdb_create("btloopkeep");
        exp_btl_cfg cfg = tiny_loop(c, out, &cc, ENV_SIM_FAMILY_LOGIT, 6, 24, 3, 0);
        cfg.keep_history = keep;
        cfg.bt.seed = 7;
        if (keep == 2)
            cfg.explore = (exp_explore_cfg){.share = 1, .max_step = 0.15f, .max_cost = 0.01f, .mode = EXP_EXPLORE_THOMPSON,
                                            .temper = 0.1f, .carryover_share = 0.2f, .carryover_z = 2};
        exp_btl_result r;
        int st = exp_backtest_loop_run(&cfg, &r);
        if (st) fail_msg("backtest loop: %s", eng_err_msg());
        const exp_btl_run *run = &r.runs[0];
        int kept = 0;
        for (int n = 0; n < cfg.n_nights; n++) {
            const exp_btl_night *e = &run->night[EXP_BTL_ENGINE][n], *b = n ? e - 1 : NULL;
            const int whole = keep == 1 || (keep == 2 && b && b->n_carry_tested > 0 && b->n_carry <= 0.2 * b->n_carry_tested);
            assert_int_equal(e->n_periods, cfg.bt.n_days + (whole ? n : 0));
            kept += whole;
        }
        if (keep) assert_true(kept > 0);
        exp_btl_result_free(&r);
        tdb_drop(c);
    }
    exp_compare_cfg_free(&cc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_three_nights),
        cmocka_unit_test(test_ref_dp_oracle),
        cmocka_unit_test(test_margin_floor),
        cmocka_unit_test(test_keep_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
