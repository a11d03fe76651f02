/* tests/test_env_action.c - price grid, continuous ratio, reference price and guardrails. */
#include "test_common.h"
#include "env_action.h"
#include "mdp_fixture.h"

static void test_grid(void **state) {
    (void)state;
    env_grid g = env_grid_default();
    assert_int_equal(g.K, 21);
    assert_int_equal(env_grid_check(&g), ENG_OK);
    assert_close(env_grid_ratio(&g, 0), 0.75, 1e-12, 0);
    assert_close(env_grid_ratio(&g, 10), 1.0, 1e-12, 0);
    assert_close(env_grid_ratio(&g, 20), 1.25, 1e-12, 0);
    assert_close(env_grid_ratio(&g, 1), 0.775, 1e-12, 0);
    int clip = -1;
    assert_int_equal(env_grid_level(&g, 1.0, &clip), 10);
    assert_int_equal(clip, 0);
    assert_int_equal(env_grid_level(&g, 0.78, &clip), 1);
    assert_int_equal(env_grid_level(&g, 0.789, &clip), 2); /* 0.8 is nearer */
    assert_int_equal(env_grid_level(&g, 0.74, &clip), 0);  /* within half a step of the band */
    assert_int_equal(clip, 0);
    assert_int_equal(env_grid_level(&g, 0.70, &clip), 0);
    assert_int_equal(clip, 1);
    assert_int_equal(env_grid_level(&g, 2.0, &clip), 20);
    assert_int_equal(clip, 1);
    assert_int_equal(env_grid_level(&g, NAN, &clip), 10);
    assert_int_equal(clip, 1);
    for (int k = 0; k < g.K; k++) assert_int_equal(env_grid_level(&g, env_grid_ratio(&g, k), NULL), k);
    env_grid g3 = {3, 0.5}; /* 0.5, 1, 1.5: 0.75 is an exact tie -> lower level */
    assert_int_equal(env_grid_level(&g3, 0.75, NULL), 0);
    assert_int_equal(env_grid_level(&g3, 0.7500001, NULL), 1);
    /* continuous */
    assert_close(env_ratio_clip(&g, 1.1, &clip), 1.1, 0, 0);
    assert_int_equal(clip, 0);
    assert_close(env_ratio_clip(&g, 0.6, &clip), 0.75, 0, 0);
    assert_int_equal(clip, 1);
    /* prices */
    int lvl;
    double ratio;
    assert_int_equal(env_grid_map_price(&g, 1.5, 2.0, &lvl, &ratio, &clip), ENG_OK);
    assert_int_equal(lvl, 0);
    assert_close(ratio, 0.75, 1e-12, 0);
    assert_int_equal(clip, 0);
    assert_int_equal(env_grid_map_price(&g, 3.0, 2.0, &lvl, &ratio, &clip), ENG_OK);
    assert_int_equal(lvl, 20);
    assert_close(ratio, 1.25, 1e-12, 0);
    assert_int_equal(clip, 1);
    assert_int_equal(env_grid_map_price(&g, NAN, 2.0, &lvl, &ratio, &clip), ENG_EINVAL);
    assert_int_equal(env_grid_map_price(&g, 1.0, 0.0, &lvl, &ratio, &clip), ENG_EINVAL);
    env_grid bad = {1, 0.25};
    assert_int_equal(env_grid_check(&bad), ENG_EINVAL);
    bad.K = 5;
    bad.band = 1.0;
    assert_int_equal(env_grid_check(&bad), ENG_EINVAL);
}

static void test_reference(void **state) {
    (void)state;
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 2, 4, 0, 1), ENG_OK);
    const float pr[4] = {3, 1, NAN, 2};
    const float un[4] = {1, 1, 1, 1};
    fx_fill(h, 0, "a", 5.0, pr, un, NULL, NULL);
    fx_fill(h, 1, "b", NAN, pr, un, NULL, NULL);
    double ref;
    int med;
    assert_int_equal(env_reference_price(h, 0, &ref, &med), ENG_OK);
    assert_close(ref, 5.0, 0, 0);
    assert_int_equal(med, 0);
    assert_int_equal(env_reference_price(h, 1, &ref, &med), ENG_OK);
    assert_close(ref, 2.0, 0, 0); /* median of 3, 1, 2 */
    assert_int_equal(med, 1);
    for (int t = 0; t < 4; t++) h->present[4 + t] = 0;
    assert_int_equal(env_reference_price(h, 1, &ref, &med), ENG_EINVAL);
    db_history_free(h);
}

static const env_guard_bounds NOB = {NAN, NAN, NAN, NAN, NAN, NAN, NAN};

static double guard(const env_guard_cfg *c, env_guard_bounds b, double cand, uint32_t *why) {
    double out = -1;
    assert_int_equal(env_guard_apply(c, &b, cand, &out, why, NULL, NULL), ENG_OK);
    return out;
}

static void test_guard_each_bound(void **state) {
    (void)state;
    env_guard_cfg c = env_guard_default();
    uint32_t why;
    env_guard_bounds b = NOB;
    assert_close(guard(&c, b, 3.99, &why), 3.99, 1e-12, 0);
    assert_int_equal(why, 0);
    assert_close(guard(&c, b, 3.97, &why), 3.99, 1e-12, 0);
    assert_int_equal(why, ENV_GR_ROUNDED);
    assert_close(guard(&c, b, 3.70, &why), 3.49, 1e-12, 0); /* .49 nearer than .99 */
    b.min_price = 2.00;
    assert_close(guard(&c, b, 1.50, &why), 2.49, 1e-12, 0); /* 1.99 would break the minimum */
    assert_int_equal(why, ENV_GR_MIN_PRICE | ENV_GR_ROUNDED);
    b = NOB;
    b.max_price = 3.00;
    assert_close(guard(&c, b, 3.50, &why), 2.99, 1e-12, 0);
    assert_int_equal(why, ENV_GR_MAX_PRICE | ENV_GR_ROUNDED);
    b = NOB;
    b.incumbent = 10.00;
    b.max_change_pct = 10;
    assert_close(guard(&c, b, 12.0, &why), 10.99, 1e-12, 0);
    assert_int_equal(why, ENV_GR_MAX_UP | ENV_GR_ROUNDED);
    assert_close(guard(&c, b, 5.0, &why), 9.49, 1e-12, 0);
    assert_int_equal(why, ENV_GR_MAX_DOWN | ENV_GR_ROUNDED);
    b.max_change_pct = NAN; /* no product limit: the config default applies */
    c.default_max_change_pct = 20;
    assert_close(guard(&c, b, 5.0, &why), 8.49, 1e-12, 0);
    assert_int_equal(why, ENV_GR_MAX_DOWN | ENV_GR_ROUNDED);
    c = env_guard_default();
    b = NOB;
    b.unit_cost = 4.0;
    c.min_margin = 0.2; /* floor 5.00 */
    assert_close(guard(&c, b, 4.5, &why), 5.49, 1e-12, 0);
    assert_int_equal(why, ENV_GR_MARGIN | ENV_GR_ROUNDED);
    b = NOB;
    c = env_guard_default();
    assert_close(guard(&c, b, 0.001, &why), 0.49, 1e-12, 0);
    assert_int_equal(why, ENV_GR_MIN_TICK | ENV_GR_ROUNDED);
    /* invalid candidates */
    b.incumbent = 3.99;
    assert_close(guard(&c, b, NAN, &why), 3.99, 1e-12, 0);
    assert_int_equal(why, ENV_GR_INVALID);
    b = NOB;
    b.min_price = 1.49;
    assert_close(guard(&c, b, -1, &why), 1.49, 1e-12, 0);
    assert_int_equal(why, ENV_GR_INVALID);
    /* no endings: whole cents */
    c.n_endings = 0;
    b = NOB;
    assert_close(guard(&c, b, 3.456, &why), 3.46, 1e-12, 0);
    assert_int_equal(why, ENV_GR_ROUNDED);
}

static void test_guard_conflicts(void **state) {
    (void)state;
    env_guard_cfg c = env_guard_default();
    uint32_t why;
    env_guard_bounds b = NOB;
    b.incumbent = 10;
    b.max_change_pct = 5; /* [9.5, 10.5] */
    b.max_price = 8;      /* contradicts: the change limit goes */
    assert_close(guard(&c, b, 10, &why), 7.99, 1e-12, 0);
    assert_int_equal(why, ENV_GR_CONFLICT | ENV_GR_DROPPED_CHANGE | ENV_GR_MAX_PRICE | ENV_GR_ROUNDED);
    b = NOB;
    b.unit_cost = 9; /* floor 9 > max 8: the margin floor goes */
    b.max_price = 8;
    assert_close(guard(&c, b, 8.5, &why), 7.99, 1e-12, 0);
    assert_int_equal(why, ENV_GR_CONFLICT | ENV_GR_DROPPED_MARGIN | ENV_GR_MAX_PRICE | ENV_GR_ROUNDED);
    b.incumbent = 10;
    b.max_change_pct = 5;
    b.unit_cost = 9.2;
    b.max_price = 9.0; /* both must go */
    double lo, hi, out;
    assert_int_equal(env_guard_apply(&c, &b, 9.7, &out, &why, &lo, &hi), ENG_OK);
    assert_close(out, 8.99, 1e-12, 0);
    assert_int_equal(why & (ENV_GR_DROPPED_CHANGE | ENV_GR_DROPPED_MARGIN), ENV_GR_DROPPED_CHANGE | ENV_GR_DROPPED_MARGIN);
    assert_close(hi, 9.0, 0, 0);
    /* min above max is a configuration error */
    b = NOB;
    b.min_price = 5;
    b.max_price = 4;
    out = -7;
    assert_int_equal(env_guard_apply(&c, &b, 4.5, &out, &why, NULL, NULL), ENG_EINVAL);
    assert_close(out, -7, 0, 0);
    c.min_margin = 1.0;
    b = NOB;
    assert_int_equal(env_guard_apply(&c, &b, 4.5, &out, &why, NULL, NULL), ENG_EINVAL);
}

static void test_guard_rounding_boundary(void **state) {
    (void)state;
    env_guard_cfg c = env_guard_default();
    uint32_t why;
    env_guard_bounds b = NOB;
    b.min_price = 5.00;
    b.max_price = 5.40; /* no .49 / .99 inside: whole cents */
    assert_close(guard(&c, b, 5.304, &why), 5.30, 1e-12, 0);
    assert_int_equal(why, ENV_GR_ROUND_SKIPPED | ENV_GR_ROUNDED);
    b.min_price = 4.99;
    b.max_price = 5.00;
    assert_close(guard(&c, b, 5.20, &why), 4.99, 1e-12, 0);
    assert_int_equal(why, ENV_GR_MAX_PRICE | ENV_GR_ROUNDED);
    assert_close(guard(&c, b, 4.99, &why), 4.99, 1e-12, 0); /* exactly on the bound */
    assert_int_equal(why, 0);
    b.min_price = 5.001;
    b.max_price = 5.009; /* no whole cent fits: the clipped price is kept */
    double out = guard(&c, b, 5.5, &why);
    assert_close(out, 5.009, 1e-12, 0);
    assert_true(why & ENV_GR_ROUND_SKIPPED);
    /* a change limit whose bound is 9.000000000000002 in floating point still allows 9.49 */
    b = NOB;
    b.incumbent = 10;
    b.max_change_pct = 10;
    assert_close(guard(&c, b, 9.0, &why), 9.49, 1e-12, 0);
    char s[64];
    env_guard_reason_str(ENV_GR_MIN_PRICE | ENV_GR_ROUNDED, s, sizeof s);
    assert_string_equal(s, "min_price|rounded");
    env_guard_reason_str(0, s, sizeof s);
    assert_string_equal(s, "");
    env_guard_reason_str(ENV_GR_CONFLICT | ENV_GR_DROPPED_MARGIN, s, 12); /* truncated cleanly */
    assert_string_equal(s, "conflict");
    assert_string_equal(env_guard_reason_name(ENV_GR_MAX_DOWN), "max_down");
    assert_null(env_guard_reason_name(3));
}

/* Whatever the candidate and bounds, the result honours every bound still active. */
static void test_guard_property(void **state) {
    (void)state;
    eng_rng r;
    eng_rng_seed(&r, 2024);
    env_guard_cfg c = env_guard_default();
    for (int i = 0; i < 20000; i++) {
        env_guard_bounds b = NOB;
        double u = eng_rng_uniform(&r);
        if (u < 0.7) b.min_price = 0.5 + 10 * eng_rng_uniform(&r);
        if (eng_rng_uniform(&r) < 0.7) b.max_price = (isfinite(b.min_price) ? b.min_price : 0.5) + 5 * eng_rng_uniform(&r);
        if (eng_rng_uniform(&r) < 0.7) b.incumbent = 0.5 + 12 * eng_rng_uniform(&r);
        if (eng_rng_uniform(&r) < 0.7) b.max_change_pct = 30 * eng_rng_uniform(&r);
        if (eng_rng_uniform(&r) < 0.7) b.unit_cost = 10 * eng_rng_uniform(&r);
        c.min_margin = eng_rng_uniform(&r) < 0.5 ? 0.0 : 0.3 * eng_rng_uniform(&r);
        double cand = eng_rng_uniform(&r) < 0.02 ? NAN : 20 * eng_rng_uniform(&r) - 1;
        double out, lo, hi;
        uint32_t why;
        assert_int_equal(env_guard_apply(&c, &b, cand, &out, &why, &lo, &hi), ENG_OK);
        const double eps = 1e-8;
        assert_true(out >= lo - eps && out <= hi + eps);
        assert_true(out >= 0.01 - eps);
        if (isfinite(b.min_price)) assert_true(out >= b.min_price - eps);
        if (isfinite(b.max_price)) assert_true(out <= b.max_price + eps);
        if (!(why & ENV_GR_DROPPED_CHANGE) && isfinite(b.incumbent) && isfinite(b.max_change_pct))
            assert_true(fabs(out - b.incumbent) <= b.incumbent * b.max_change_pct / 100 + eps);
        if (!(why & ENV_GR_DROPPED_MARGIN) && isfinite(b.unit_cost) && b.unit_cost > 0)
            assert_true(out >= b.unit_cost / (1 - c.min_margin) - eps);
        if (!(why & ENV_GR_ROUND_SKIPPED)) {
            long long cents = llround(out * 100) % 100;
            assert_true(cents == 99 || cents == 49);
            assert_close(out * 100, llround(out * 100), 1e-6, 0);
        }
        /* a candidate already inside and on an ending comes back unchanged */
        uint32_t why2;
        double again;
        assert_int_equal(env_guard_apply(&c, &b, out, &again, &why2, NULL, NULL), ENG_OK);
        assert_close(again, out, 1e-9, 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_guard_each_bound),
        cmocka_unit_test(test_guard_conflicts),
        cmocka_unit_test(test_guard_rounding_boundary),
        cmocka_unit_test(test_guard_property),
    };
    return cmocka_run_group_tests_name("env_action", tests, NULL, NULL);
}
