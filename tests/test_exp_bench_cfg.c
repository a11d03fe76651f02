/* tests/test_exp_bench_cfg.c - `rlprice bench nightly`'s comparison settings
 * (experiments/bench/exp_bench_nightly.h, exp_bench_nightly_config): --device and --seed reach the
 * night's comparison, an explicit --compare.device= / --compare.seed= given beside them wins, other
 * settings pass through, --nightly.KEY=VALUE settings reach the nightly's fields, and a bad
 * device or setting is refused with a message. */
#include "test_common.h"

#include "eng_status.h"
#include "exp_bench_nightly.h"
#include "exp_compare.h"
#include "exp_nightly.h"

/* --seed and --device alone reach cfg.compare. */
static void test_flags_reach_compare(void **state) {
    (void)state;
    exp_nightly_cfg cfg = exp_nightly_default();
    assert_int_equal(exp_bench_nightly_config(&cfg, "cpu", 42, 0, NULL), 0);
    assert_true(cfg.compare.seed == 42);
    assert_string_equal(cfg.compare.device, "cpu");
    exp_compare_cfg_free(&cfg.compare);
}

/* A setting given beside the flags wins over them; an unrelated setting passes through. */
static void test_settings_win(void **state) {
    (void)state;
    exp_nightly_cfg cfg = exp_nightly_default();
    const int pool0 = cfg.compare.demand_pool;
    char *set[] = {"--compare.seed=7", "--compare.device=cpu", "--compare.demand_pool=1"};
    assert_int_equal(exp_bench_nightly_config(&cfg, "auto", 42, 3, set), 0);
    assert_true(cfg.compare.seed == 7);
    assert_string_equal(cfg.compare.device, "cpu");
    assert_int_equal(cfg.compare.demand_pool, 1);
    assert_int_not_equal(pool0, 1); /* the setting moved it off its default */
    exp_compare_cfg_free(&cfg.compare);
}

/* A bad device or an unknown setting is refused with a message. */
static void test_bad_input(void **state) {
    (void)state;
    exp_nightly_cfg cfg = exp_nightly_default();
    assert_int_not_equal(exp_bench_nightly_config(&cfg, "tpu", 1, 0, NULL), 0);
    assert_non_null(strstr(eng_err_msg(), "tpu"));
    exp_compare_cfg_free(&cfg.compare);
    cfg = exp_nightly_default();
    char *set[] = {"--compare.no_such_key=1"};
    assert_int_not_equal(exp_bench_nightly_config(&cfg, "cpu", 1, 1, set), 0);
    assert_non_null(strstr(eng_err_msg(), "no_such_key"));
    exp_compare_cfg_free(&cfg.compare);
}

/* --nightly.KEY=VALUE settings reach the nightly's own fields, mixed with the comparison's;
 * an unknown nightly key, a value out of range or one without '=' is refused. */
static void test_nightly_settings(void **state) {
    (void)state;
    exp_nightly_cfg cfg = exp_nightly_default();
    assert_int_equal(cfg.window_carryover_days, 0);
    char *set[] = {"--nightly.window_carryover_days=30", "--compare.demand_pool=1", "--nightly.gate_level=0.8"};
    assert_int_equal(exp_bench_nightly_config(&cfg, "cpu", 1, 3, set), 0);
    assert_int_equal(cfg.window_carryover_days, 30);
    assert_close(cfg.gate_level, 0.8, 1e-6, 0);
    assert_int_equal(cfg.compare.demand_pool, 1);
    exp_compare_cfg_free(&cfg.compare);
    char *bad[][1] = {{"--nightly.no_such_key=1"},
                      {"--nightly.window_carryover_days=-5"},
                      {"--nightly.window_days"},
                      {"--nightly.window_days=30"}}; /* the bench's window is its --days */
    const char *says[] = {"no_such_key", "window_carryover_days", "nightly.KEY=VALUE", "--days"};
    for (int i = 0; i < 4; i++) {
        cfg = exp_nightly_default();
        assert_int_not_equal(exp_bench_nightly_config(&cfg, "cpu", 1, 1, bad[i]), 0);
        if (!strstr(eng_err_msg(), says[i])) fail_msg("case %d: '%s' lacks '%s'", i, eng_err_msg(), says[i]);
        exp_compare_cfg_free(&cfg.compare);
    }
    /* not a --nightly. flag (shorter than the prefix, too): refused, nothing read past its end */
    cfg = exp_nightly_default();
    assert_int_equal(exp_nightly_set_flag(&cfg, "--x", "1"), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "not a --nightly.KEY flag"));
    assert_int_equal(exp_nightly_set_flag(&cfg, "--nightly.gate_level", "0.7"), 0); /* the value beside it */
    assert_close(cfg.gate_level, 0.7, 1e-6, 0);
    exp_compare_cfg_free(&cfg.compare);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_reach_compare),
        cmocka_unit_test(test_settings_win),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_nightly_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
