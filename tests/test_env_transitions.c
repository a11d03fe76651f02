/* tests/test_env_transitions.c - transitions on a history with gaps; behaviour propensities. */
#include "test_common.h"
#include "env_transitions.h"
#include "mdp_fixture.h"

/* Product 0 has gaps at t = 4 and 7; product 1 always keeps its base price.  No traffic:
 * the default reward (drcr) takes the proxy-1 fallback, i.e. the difference of revenue. */
static db_history *gappy(void) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 2, 10, 0, 1), ENG_OK);
    const float p0[10] = {2.0f, 2.0f, 1.8f, 1.8f, NAN, 1.6f, 1.6f, NAN, 2.0f, 2.0f};
    const float p1[10] = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
    const float u0[10] = {10, 12, 15, 15, 0, 20, 18, 0, 10, 11};
    const float u1[10] = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    fx_fill(h, 0, "a", 2.0, p0, u0, NULL, NULL);
    fx_fill(h, 1, "b", 3.0, p1, u1, NULL, NULL);
    return h;
}

static void test_count_shape_done(void **state) {
    (void)state;
    db_history *h = gappy();
    env_transitions_cfg cfg = env_transitions_default();
    env_transitions *tr = NULL;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    /* product 0: rewards at t = 1, 2, 3, 6, 9 (t = 5, 8 follow a gap); product 1: t = 1..9 */
    assert_int_equal(tr->n, 14);
    assert_int_equal(tr->n_features, FEAT_N);
    assert_int_equal(tr->K, 21);
    const int exp_t[14] = {1, 2, 3, 6, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int exp_done[14] = {0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    float s[FEAT_N];
    for (size_t i = 0; i < tr->n; i++) {
        assert_int_equal(tr->t[i], exp_t[i]);
        assert_int_equal(tr->product[i], i < 5 ? 0 : 1);
        assert_int_equal(tr->done[i], exp_done[i]);
        feat_state(h, tr->product[i], tr->t[i], s);
        assert_memory_equal(tr->state + i * FEAT_N, s, sizeof s);
        feat_state(h, tr->product[i], tr->t[i] + 1, s);
        assert_memory_equal(tr->next_state + i * FEAT_N, s, sizeof s);
        assert_true(tr->propensity[i] > 0.0f && tr->propensity[i] <= 1.0f);
    }
    /* actions: product 0 at t = 2 is 1.8 / 2.0 = 0.9 -> level 6; product 1 keeps level 10 */
    assert_int_equal(tr->level[1], 6);
    assert_close(tr->ratio[1], 0.9, 1e-6, 0);
    assert_int_equal(tr->inc_level[1], 10); /* incumbent p_1 = 2.0 */
    for (size_t i = 5; i < 14; i++) assert_int_equal(tr->level[i], 10);
    /* rewards: difference of revenue (traffic missing) */
    assert_close(tr->reward[0], 24 - 20, 1e-5, 0);
    assert_close(tr->reward[1], 27 - 24, 1e-5, 0);
    assert_int_equal(tr->reward_info.n_fallback_products, 2);
    assert_int_equal(tr->n_clipped, 0);
    env_transitions_free(tr);

    /* a period range: [2, 8) */
    cfg.t_begin = 2;
    cfg.t_end = 8;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    assert_int_equal(tr->n, 9); /* product 0: 2, 3, 6; product 1: 2..7 */
    assert_int_equal(tr->done[0], 0);
    assert_int_equal(tr->done[1], 1);
    assert_int_equal(tr->done[2], 1);
    assert_int_equal(tr->done[8], 1); /* t = 7: t + 1 is outside the range */
    env_transitions_free(tr);
    cfg.t_end = 11;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_EINVAL);
    assert_null(tr);
    db_history_free(h);
}

static void test_clipping_and_norm(void **state) {
    (void)state;
    db_history *h = gappy();
    h->price[1 * 10 + 5] = 4.5f; /* 1.5 x base: outside the +-25% band */
    h->revenue[1 * 10 + 5] = 4.5f * 10;
    feat_norm nm;
    assert_int_equal(feat_norm_fit(&nm, h, NULL, 0, 0, 10), ENG_OK);
    env_transitions_cfg cfg = env_transitions_default();
    cfg.norm = &nm;
    env_transitions *tr = NULL;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    assert_int_equal(tr->n_clipped, 1);
    assert_int_equal(tr->clipped[5 + 4], 1); /* product 1, t = 5 */
    assert_int_equal(tr->level[5 + 4], 20);
    assert_close(tr->ratio[5 + 4], 1.25, 1e-6, 0);
    float s[FEAT_N];
    feat_state(h, 1, 5, s);
    feat_norm_apply(&nm, s, 1);
    assert_memory_equal(tr->state + (5 + 4) * FEAT_N, s, sizeof s);
    env_transitions_free(tr);
    /* profit rewards without a unit cost are refused */
    cfg.norm = NULL;
    cfg.reward.kind = ENV_REWARD_PROFIT;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_EINVAL);
    db_history_free(h);
}

static void test_propensities_sum_to_one(void **state) {
    (void)state;
    db_history *h = fx_random(4, 60, 8);
    env_transitions_cfg cfg = env_transitions_default();
    env_transitions *tr = NULL;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    assert_true(tr->n > 100);
    double probs[21];
    for (int p = 0; p < 4; p++)
        for (int j = 0; j < 21; j++) {
            assert_int_equal(env_behaviour_probs(tr->behaviour, p, j, probs), ENG_OK);
            double s = 0;
            for (int k = 0; k < 21; k++) {
                assert_true(probs[k] > 0.0);
                s += probs[k];
            }
            assert_close(s, 1.0, 1e-12, 0);
        }
    /* the stored propensity is the model's probability of the logged level in the logged (raw) state */
    for (size_t i = 0; i < tr->n; i++) {
        assert_int_equal(env_behaviour_probs_state(tr->behaviour, tr->product[i], tr->state + i * FEAT_N,
                                                   tr->ref_price[i], probs),
                         ENG_OK);
        assert_close(tr->propensity[i], probs[tr->level[i]], 1e-7, 0);
    }
    /* the counts model's propensity depends on the incumbent level only */
    cfg.behaviour.kind = ENV_BEHAV_COUNTS;
    env_transitions_free(tr);
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    for (size_t i = 0; i < tr->n; i++) {
        assert_int_equal(env_behaviour_probs(tr->behaviour, tr->product[i], tr->inc_level[i], probs), ENG_OK);
        assert_close(tr->propensity[i], probs[tr->level[i]], 1e-7, 0);
    }
    assert_int_equal(env_behaviour_probs(tr->behaviour, 4, 0, probs), ENG_EINVAL);
    assert_int_equal(env_behaviour_probs(tr->behaviour, 0, 21, probs), ENG_EINVAL);
    env_transitions_free(tr);
    db_history_free(h);
}

static void test_behaviour_exact(void **state) {
    (void)state;
    env_grid g = {3, 0.5};
    const int32_t prod[5] = {0, 0, 0, 0, 1};
    const int16_t j[5] = {1, 1, 1, 1, 1};
    const int16_t k[5] = {1, 1, 0, 1, 2};
    env_behaviour_cfg bc = env_behaviour_default();
    bc.kind = ENV_BEHAV_COUNTS;
    env_behaviour *b = NULL;
    assert_int_equal(env_behaviour_fit(&b, &g, 2, prod, j, k, 5, &bc), ENG_OK);
    double pr[3];
    /* pool row 1: counts (1, 3, 1) -> ((1, 3, 1) + 1/3) / 6; product 0: counts (1, 3, 0), alpha 5 */
    assert_int_equal(env_behaviour_probs(b, 0, 1, pr), ENG_OK);
    assert_close(pr[0], (1 + 5 * (4.0 / 3) / 6) / 9, 1e-12, 0);
    assert_close(pr[1], (3 + 5 * (10.0 / 3) / 6) / 9, 1e-12, 0);
    assert_close(pr[2], (0 + 5 * (4.0 / 3) / 6) / 9, 1e-12, 0);
    /* an incumbent level never seen: uniform */
    assert_int_equal(env_behaviour_probs(b, 1, 0, pr), ENG_OK);
    for (int i = 0; i < 3; i++) assert_close(pr[i], 1.0 / 3, 1e-12, 0);
    env_behaviour_free(b);
    const int16_t bad[5] = {1, 1, 3, 1, 2};
    assert_int_equal(env_behaviour_fit(&b, &g, 2, prod, j, bad, 5, &bc), ENG_EINVAL);
    assert_null(b);
    bc.beta = 0;
    assert_int_equal(env_behaviour_fit(&b, &g, 2, prod, j, k, 5, &bc), ENG_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_shape_done),
        cmocka_unit_test(test_clipping_and_norm),
        cmocka_unit_test(test_propensities_sum_to_one),
        cmocka_unit_test(test_behaviour_exact),
    };
    return cmocka_run_group_tests_name("env_transitions", tests, NULL, NULL);
}
