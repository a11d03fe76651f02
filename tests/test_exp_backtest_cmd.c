/* test_exp_backtest_cmd.c - `rlprice backtest`'s flags: each numeric flag refuses a value outside
 * its range with exit code 2 and a message naming the flag, before any database is touched;
 * --help exits 0. */
#include "test_common.h"
#include "eng_util.h"
#include "rlp_cmd.h"

static int run(const char *a, const char *b) {
    char *argv[] = {(char *)"backtest", (char *)a, (char *)b, NULL};
    return exp_cmd_backtest(b ? 3 : 2, argv);
}

static void test_bad_values(void **state) {
    (void)state;
    static const char *const bad[][2] = {
        {"--gate-level", "1.5"},   {"--gate-level", "0"},     {"--gate-min-gain", "-0.1"}, {"--gate-min-gain", "1"},
        {"--gate-select", "1"},    {"--gate-support", "x"},   {"--max-change", "0"},       {"--traffic", "abc"},
        {"--promo", "1"},          {"--promo", "-0.5"},       {"--gate-mode", "x"},        {"--products", "0"},
        {"--seed", "-"},           {"--device", "gpu"},       {"--gate-mode", "3"},        {"--misset", "1.2,0.8"},
        {"--seed", " 5"},          {"--seed", "-1"},          {"--seed", "+5"},            {"--seed", "99999999999999999999999"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run(bad[i][0], bad[i][1]);
        if (rc != 2) fail_msg("%s %s: exit %d, expected 2", bad[i][0], bad[i][1], rc);
        if (strcmp(bad[i][0], "--device") && strcmp(bad[i][0], "--gate-mode") &&
            strcmp(bad[i][0], "--misset"))
            assert_non_null(strstr(eng_err_msg(), bad[i][0]));
    }
}

/* The one-night run's --promo and --endings are refused with --nights (the loop has no promotion
 * calendar and prices in whole cents), before any database is touched. */
static void test_loop_refuses_one_night_flags(void **state) {
    (void)state;
    char *promo[] = {(char *)"backtest", (char *)"--nights", (char *)"2", (char *)"--promo", (char *)"0.3", NULL};
    assert_int_equal(exp_cmd_backtest(5, promo), 2);
    assert_non_null(strstr(eng_err_msg(), "--promo"));
    char *endings[] = {(char *)"backtest", (char *)"--endings", (char *)"--nights", (char *)"2", NULL};
    assert_int_equal(exp_cmd_backtest(4, endings), 2);
    assert_non_null(strstr(eng_err_msg(), "--endings"));
}

static void test_help(void **state) {
    (void)state;
    assert_int_equal(run("--help", NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bad_values), cmocka_unit_test(test_loop_refuses_one_night_flags),
                                       cmocka_unit_test(test_help)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
