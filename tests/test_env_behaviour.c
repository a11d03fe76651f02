/* tests/test_env_behaviour.c - behaviour-policy models: valid rows, closeness to the simulator's
 * true logging propensities, determinism, edge cases (one price, missing features, tiny grids),
 * calibration diagnostic. */
#include "test_common.h"
#include "env_behaviour.h"
#include "env_sim.h"
#include "env_transitions.h"

#include <json-c/json.h>

static env_transitions *sim_transitions(int P, int T, uint64_t seed, env_behaviour_kind kind, db_history **hout) {
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, P, T, 1, 19723, seed, &h, &lg), ENG_OK);
    env_sim_log_free(lg);
    env_transitions_cfg cfg = env_transitions_default();
    cfg.behaviour.kind = kind;
    env_transitions *tr = NULL;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    if (hout) *hout = h;
    else db_history_free(h);
    return tr;
}

static void assert_row(const double *pr, int K) {
    double s = 0;
    for (int k = 0; k < K; k++) {
        assert_true(pr[k] > 0.0 && isfinite(pr[k]));
        s += pr[k];
    }
    assert_close(s, 1.0, 1e-12, 0);
}

static void test_rows_sum_to_one(void **state) {
    (void)state;
    const env_behaviour_kind kinds[2] = {ENV_BEHAV_MNL, ENV_BEHAV_COUNTS};
    for (int c = 0; c < 2; c++) {
        env_transitions *tr = sim_transitions(20, 40, 11, kinds[c], NULL);
        assert_true(tr->n > 500);
        assert_int_equal(env_behaviour_kind_of(tr->behaviour), kinds[c]);
        double pr[21];
        for (size_t i = 0; i < tr->n; i++) {
            assert_int_equal(env_behaviour_probs_state(tr->behaviour, tr->product[i], tr->state + i * FEAT_N,
                                                       tr->ref_price[i], pr),
                             ENG_OK);
            assert_row(pr, 21);
            assert_close(tr->propensity[i], pr[tr->level[i]], 1e-7, 0);
        }
        for (int p = 0; p < 20; p++)
            for (int j = 0; j < 21; j++) {
                assert_int_equal(env_behaviour_probs(tr->behaviour, p, j, pr), ENG_OK);
                assert_row(pr, 21);
            }
        assert_int_equal(env_behaviour_probs(tr->behaviour, 20, 0, pr), ENG_EINVAL);
        assert_int_equal(env_behaviour_probs_state(tr->behaviour, -1, tr->state, 1.0, pr), ENG_EINVAL);
        if (kinds[c] == ENV_BEHAV_MNL) {
            int iters = 0;
            double nll = NAN;
            env_behaviour_fit_info(tr->behaviour, &iters, &nll);
            assert_true(iters >= 1 && iters < env_behaviour_default().max_iter); /* converged before the cap */
            assert_true(nll > 0.0 && nll < log(21.0));                          /* better than uniform */
        }
        env_transitions_free(tr);
    }
}

/* Against the simulator's true propensities of the logged levels (held-out periods). */
static void test_closer_to_truth(void **state) {
    (void)state;
    env_behaviour_cfg cfg[2] = {env_behaviour_default(), env_behaviour_default()};
    cfg[0].kind = ENV_BEHAV_COUNTS;
    env_behaviour_eval e[3];
    double tll = 0;
    assert_int_equal(env_behaviour_sim_compare(100, 60, 5, 45, cfg, 2, e, &tll), ENG_OK);
    assert_int_equal(e[0].n_test, e[2].n_test);
    assert_true(e[0].n_test > 1000);
    /* uniform << mnl */
    assert_true(e[2].mae < 0.6 * e[0].mae);
    assert_true(e[2].loglik > e[0].loglik + 0.5);
    assert_true(e[2].tv < e[0].tv);
    /* counts (defaults) < mnl (margins on 3 seeds x 200 products: MAE 0.015, LL 0.08) */
    assert_true(e[2].mae < e[1].mae);
    assert_true(e[2].loglik > e[1].loglik);
    /* and no model beats the truth on log-likelihood by more than noise */
    assert_true(e[2].loglik < tll + 0.05);
    assert_int_equal(env_behaviour_sim_compare(10, 60, 5, 60, cfg, 2, e, NULL), ENG_EINVAL);
}

static void test_deterministic(void **state) {
    (void)state;
    env_transitions *a = sim_transitions(15, 50, 3, ENV_BEHAV_MNL, NULL);
    env_transitions *b = sim_transitions(15, 50, 3, ENV_BEHAV_MNL, NULL);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->propensity, b->propensity, a->n * sizeof(float));
    double pa[21], pb[21];
    for (int j = 0; j < 21; j++) {
        assert_int_equal(env_behaviour_probs(a->behaviour, 4, j, pa), ENG_OK);
        assert_int_equal(env_behaviour_probs(b->behaviour, 4, j, pb), ENG_OK);
        assert_memory_equal(pa, pb, sizeof pa);
    }
    env_transitions_free(a);
    env_transitions_free(b);
}

/* Transitions of a simulated history with the pooled mnl fit started from init (len doubles). */
static env_transitions *build_from(const db_history *h, const double *init, int len) {
    env_transitions_cfg cfg = env_transitions_default();
    cfg.behaviour.pool_init = init;
    cfg.behaviour.pool_init_len = len;
    env_transitions *tr = NULL;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    return tr;
}

/* The warm start of the pooled fit (a warm night starts from last night's coefficients): only
 * the path changes.  From another market's coefficients it converges to the cold fit's
 * propensities (to the Newton tolerance: 1e-5) in fewer steps; from the cold fit's own it stops at
 * once; an unusable start (non-finite, another length) is ignored: exactly the cold fit. */
static void test_warm_start(void **state) {
    (void)state;
    db_history *h = NULL, *other = NULL;
    env_transitions *cold = sim_transitions(30, 60, 7, ENV_BEHAV_MNL, &h);
    env_transitions *o = sim_transitions(30, 61, 8, ENV_BEHAV_MNL, &other);
    const int q = ENV_BEHAV_POOL_LEN(21);
    double *c0 = malloc((size_t)q * sizeof *c0), *c1 = malloc((size_t)q * sizeof *c1);
    assert_int_equal(env_behaviour_pool_coef(cold->behaviour, c0, q), q);
    assert_int_equal(env_behaviour_pool_coef(o->behaviour, c1, q), q);
    assert_int_equal(env_behaviour_pool_coef(cold->behaviour, c0, q - 1), 0); /* too small */
    int it_cold = 0, it_warm = 0, it_same = 0, it_bad = 0;
    env_behaviour_fit_info(cold->behaviour, &it_cold, NULL);
    env_transitions *w = build_from(h, c1, q), *same = build_from(h, c0, q);
    env_behaviour_fit_info(w->behaviour, &it_warm, NULL);
    env_behaviour_fit_info(same->behaviour, &it_same, NULL);
    /* the work is the Hessians assembled (a step may reuse the last factor and cost one gradient) */
    int h_cold = env_behaviour_fit_hessians(cold->behaviour), h_warm = env_behaviour_fit_hessians(w->behaviour);
    print_message("  pooled Newton steps (Hessians): cold %d (%d), from another market's fit %d (%d), from its own %d (%d)\n",
                  it_cold, h_cold, it_warm, h_warm, it_same, env_behaviour_fit_hessians(same->behaviour));
    assert_true(h_warm < h_cold);
    assert_true(h_cold <= it_cold + 1 && h_cold >= 1);
    assert_int_equal(it_same, 0);
    assert_int_equal(w->n, cold->n);
    double worst = 0;
    for (size_t i = 0; i < cold->n; i++) {
        double d = fabs((double)w->propensity[i] - cold->propensity[i]);
        worst = d > worst ? d : worst;
        assert_true(fabs((double)same->propensity[i] - cold->propensity[i]) <= 1e-6);
    }
    print_message("  largest propensity difference warm vs cold: %.3g\n", worst);
    /* both stop within the Newton tolerance (decrement <= 1e-10 of the objective) of the one
     * optimum, so they differ by about the cold fit's own distance from it (6.3e-6 here) */
    assert_true(worst <= 1e-5);
    c1[5] = NAN; /* unusable: from zero, the cold fit to the bit */
    env_transitions *bad = build_from(h, c1, q), *len = build_from(h, c0, q - 1);
    env_behaviour_fit_info(bad->behaviour, &it_bad, NULL);
    assert_int_equal(it_bad, it_cold);
    assert_memory_equal(bad->propensity, cold->propensity, cold->n * sizeof(float));
    assert_memory_equal(len->propensity, cold->propensity, cold->n * sizeof(float));
    env_transitions_free(cold), env_transitions_free(o), env_transitions_free(w), env_transitions_free(same);
    env_transitions_free(bad), env_transitions_free(len);
    db_history_free(h), db_history_free(other);
    free(c0), free(c1);
}

/* Product 0 always keeps level 10; product 1 moves around; product 2 has no rows. */
static void test_single_price_and_empty_product(void **state) {
    (void)state;
    enum { N = 80 };
    int32_t prod[N];
    int16_t j[N], k[N];
    for (int i = 0; i < N; i++) {
        prod[i] = i < 40 ? 0 : 1;
        j[i] = i < 40 ? 10 : (int16_t)(4 + (i * 7) % 13);
        k[i] = i < 40 ? 10 : (int16_t)(4 + (i * 5) % 13);
    }
    env_grid g = env_grid_default();
    env_behaviour_cfg cfg = env_behaviour_default();
    env_behaviour *b = NULL;
    assert_int_equal(env_behaviour_fit(&b, &g, 3, prod, j, k, N, &cfg), ENG_OK);
    double p0[21], p1[21], p2[21];
    assert_int_equal(env_behaviour_probs(b, 0, 10, p0), ENG_OK);
    assert_int_equal(env_behaviour_probs(b, 1, 10, p1), ENG_OK);
    assert_int_equal(env_behaviour_probs(b, 2, 10, p2), ENG_OK);
    assert_row(p0, 21), assert_row(p1, 21), assert_row(p2, 21);
    for (int l = 0; l < 21; l++) assert_true(p0[l] <= p0[10]);
    assert_true(p0[10] > 0.6);
    assert_true(p0[10] > p1[10] + 0.2);
    for (int l = 0; l < 21; l++) assert_true(p0[l] >= 0.01 / 21 - 1e-15); /* the eps floor */
    env_behaviour_free(b);
    /* a history where every product has one price: still a valid, finite model */
    for (int i = 0; i < N; i++) j[i] = k[i] = 10;
    assert_int_equal(env_behaviour_fit(&b, &g, 3, prod, j, k, N, &cfg), ENG_OK);
    assert_int_equal(env_behaviour_probs(b, 1, 10, p1), ENG_OK);
    assert_row(p1, 21);
    assert_true(p1[10] > 0.9);
    assert_int_equal(env_behaviour_probs(b, 1, 3, p1), ENG_OK); /* an incumbent never seen */
    assert_row(p1, 21);
    env_behaviour_free(b);
    /* no rows at all */
    assert_int_equal(env_behaviour_fit(&b, &g, 2, prod, j, k, 0, &cfg), ENG_OK);
    assert_int_equal(env_behaviour_probs(b, 1, 3, p1), ENG_OK);
    for (int l = 0; l < 21; l++) assert_close(p1[l], 1.0 / 21, 1e-12, 0);
    env_behaviour_free(b);
}

/* Sticky setters: the keep / nudge features carry the incumbent, like the counts model does. */
static void test_stickiness(void **state) {
    (void)state;
    enum { N = 600 };
    int32_t prod[N];
    int16_t j[N], k[N];
    eng_rng r;
    eng_rng_seed(&r, 42);
    for (int i = 0; i < N; i++) { /* keep 70%, one step up 20%, one step down 10% */
        prod[i] = i % 3;
        j[i] = (int16_t)(3 + eng_rng_below(&r, 15));
        double u = eng_rng_uniform(&r);
        k[i] = (int16_t)(u < 0.7 ? j[i] : u < 0.9 ? j[i] + 1 : j[i] - 1);
    }
    env_grid g = env_grid_default();
    env_behaviour_cfg cfg = env_behaviour_default();
    env_behaviour *b = NULL;
    assert_int_equal(env_behaviour_fit(&b, &g, 3, prod, j, k, N, &cfg), ENG_OK);
    double pr[21];
    for (int jj = 4; jj <= 16; jj++) {
        assert_int_equal(env_behaviour_probs(b, 1, jj, pr), ENG_OK);
        assert_true(pr[jj] > 0.5 && pr[jj] < 0.9);
        assert_true(pr[jj + 1] > 0.08 && pr[jj - 1] > 0.03);
        assert_true(pr[jj + 1] > pr[jj + 3] && pr[jj - 1] > pr[jj - 3]);
    }
    env_behaviour_free(b);
}

static void test_missing_features_and_bad_input(void **state) {
    (void)state;
    float s[FEAT_N];
    double x[ENV_BEHAV_NX];
    for (int i = 0; i < FEAT_N; i++) s[i] = NAN;
    env_behaviour_features(s, NAN, x);
    for (int d = 0; d < ENV_BEHAV_NX; d++) assert_true(isfinite(x[d]));
    assert_close(x[0], 1, 0, 0);
    assert_close(x[4], 1, 0, 0);  /* competitor missing */
    assert_close(x[11], 1, 0, 0); /* price missing */
    /* fit on states that are all missing except one row per product */
    enum { N = 30 };
    float st[N * FEAT_N], ref[N];
    int32_t prod[N];
    int16_t k[N];
    for (int i = 0; i < N; i++) {
        for (int f = 0; f < FEAT_N; f++) st[i * FEAT_N + f] = NAN;
        if (i % 10 == 0) st[i * FEAT_N + FEAT_PRICE_CUR] = 2.0f;
        ref[i] = 2.0f;
        prod[i] = i % 2;
        k[i] = (int16_t)(8 + i % 5);
    }
    env_grid g = env_grid_default();
    env_behaviour_cfg cfg = env_behaviour_default();
    env_behaviour *b = NULL;
    assert_int_equal(env_behaviour_fit_states(&b, &g, 2, prod, st, ref, k, N, &cfg), ENG_OK);
    double pr[21];
    assert_int_equal(env_behaviour_probs_state(b, 0, s, NAN, pr), ENG_OK);
    assert_row(pr, 21);
    env_behaviour_free(b);
    /* a non-positive reference price is an error naming the row */
    ref[7] = 0.0f;
    assert_int_equal(env_behaviour_fit_states(&b, &g, 2, prod, st, ref, k, N, &cfg), ENG_EINVAL);
    assert_null(b);
    assert_non_null(strstr(eng_err_msg(), "row 7"));
    ref[7] = 2.0f;
    k[3] = 21;
    assert_int_equal(env_behaviour_fit_states(&b, &g, 2, prod, st, ref, k, N, &cfg), ENG_EINVAL);
    k[3] = 9;
    /* bad configurations */
    env_behaviour_cfg bad = cfg;
    bad.eps = 0;
    assert_int_equal(env_behaviour_fit_states(&b, &g, 2, prod, st, ref, k, N, &bad), ENG_EINVAL);
    bad = cfg, bad.shrink = 0;
    assert_int_equal(env_behaviour_cfg_check(&bad), ENG_EINVAL);
    bad = cfg, bad.kind = (env_behaviour_kind)7;
    assert_int_equal(env_behaviour_cfg_check(&bad), ENG_EINVAL);
    /* K = 1 is not a grid (env_grid_check): rejected, nothing allocated; K = 2 works */
    env_grid g1 = {1, 0.25};
    int16_t k0[N] = {0};
    assert_int_equal(env_behaviour_fit_states(&b, &g1, 2, prod, st, ref, k0, N, &cfg), ENG_EINVAL);
    assert_null(b);
    assert_int_equal(env_behaviour_fit(&b, &g1, 2, prod, k0, k0, N, &cfg), ENG_EINVAL);
    assert_null(b);
    env_grid g2 = {2, 0.25};
    for (int i = 0; i < N; i++) k0[i] = (int16_t)(i % 3 == 0);
    assert_int_equal(env_behaviour_fit_states(&b, &g2, 2, prod, st, ref, k0, N, &cfg), ENG_OK);
    double p2[2];
    assert_int_equal(env_behaviour_probs_state(b, 1, st, 2.0, p2), ENG_OK);
    assert_row(p2, 2);
    assert_true(p2[0] > p2[1]);
    env_behaviour_free(b);
}

static void test_calibration(void **state) {
    (void)state;
    env_transitions *tr = sim_transitions(30, 60, 9, ENV_BEHAV_MNL, NULL);
    const env_behaviour_calib *c = &tr->calibration;
    assert_int_equal(c->K, 21);
    assert_int_equal(c->n, (long)tr->n);
    double se = 0, so = 0;
    long pairs = 0;
    for (int l = 0; l < 21; l++) se += c->expected[l], so += c->observed[l];
    for (int q = 0; q < ENV_BEHAV_CALIB_BINS; q++) pairs += c->bin_count[q];
    assert_close(se, (double)tr->n, 1e-6, 0);
    assert_close(so, (double)tr->n, 0, 0);
    assert_int_equal(pairs, (long)tr->n * 21);
    assert_true(c->max_gap < 0.02); /* in-sample, free intercepts */
    double ll = 0;
    for (size_t i = 0; i < tr->n; i++) ll += log(tr->propensity[i]);
    assert_close(c->mean_loglik, ll / tr->n, 1e-5, 0);
    /* the diagnostic sees a miscalibrated model: logged levels shifted up by 3 */
    int16_t *shifted = malloc(tr->n * sizeof(int16_t));
    assert_non_null(shifted);
    for (size_t i = 0; i < tr->n; i++) shifted[i] = (int16_t)(tr->level[i] + 3 > 20 ? 20 : tr->level[i] + 3);
    env_behaviour_calib bad;
    assert_int_equal(env_behaviour_calibration(tr->behaviour, tr->product, tr->state, tr->ref_price, shifted, tr->n, &bad),
                     ENG_OK);
    assert_true(bad.max_gap > 5 * c->max_gap && bad.max_gap > 0.05);
    assert_true(bad.chi2 > 10 * c->chi2);
    assert_true(bad.mean_loglik < c->mean_loglik - 1.0);
    env_behaviour_calib_free(&bad);
    free(shifted);
    env_grid g = env_grid_default();
    json_object *js = env_behaviour_calib_json(c, &g);
    assert_non_null(js);
    json_object *lv = NULL, *bins = NULL;
    assert_true(json_object_object_get_ex(js, "levels", &lv));
    assert_true(json_object_object_get_ex(js, "bins", &bins));
    assert_int_equal(json_object_array_length(lv), 21);
    assert_int_equal(json_object_array_length(bins), ENV_BEHAV_CALIB_BINS);
    json_object_put(js);
    env_transitions_free(tr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_sum_to_one),
        cmocka_unit_test(test_closer_to_truth),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_warm_start),
        cmocka_unit_test(test_single_price_and_empty_product),
        cmocka_unit_test(test_stickiness),
        cmocka_unit_test(test_missing_features_and_bad_input),
        cmocka_unit_test(test_calibration),
    };
    return cmocka_run_group_tests_name("env_behaviour", tests, NULL, NULL);
}
