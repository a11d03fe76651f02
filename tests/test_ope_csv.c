/* tests/test_ope_csv.c - the logged-bandit CSV loader (errors name file and line) and the
 * `rlprice ope` command (table, JSON keys, exit codes). */
#include "test_common.h"
#include "rlp_cmd.h"
#include "ope.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <unistd.h>

static char g_path[512];

static const char *write_file(const char *name, const char *text) {
    snprintf(g_path, sizeof g_path, "%s/ope_%s.csv", test_tmpdir(), name);
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return g_path;
}

/* Load `text`; expect status `st` and an error containing "<path>:<line>:" and `needle`. */
static void expect_error(const char *name, const char *text, int st, int line, const char *needle) {
    const char *p = write_file(name, text);
    ope_bandit d;
    int got = ope_csv_load(p, &d);
    if (got != st) fail_msg("%s: status %d, expected %d (%s)", name, got, st, eng_err_msg());
    char want[600];
    if (line > 0) {
        snprintf(want, sizeof want, "%s:%d:", p, line);
        if (!strstr(eng_err_msg(), want)) fail_msg("%s: '%s' does not name '%s'", name, eng_err_msg(), want);
    }
    if (!strstr(eng_err_msg(), needle)) fail_msg("%s: '%s' lacks '%s'", name, eng_err_msg(), needle);
    assert_null(d.action); /* nothing half-loaded is handed back */
}

static const char *k_good = "action,reward,pscore,pi_0,pi_1,q_0,q_1,x_age\n"
                            "0,1,0.5,0.2,0.8,0.5,0.3,1.5\n"
                            "1,0,0.5,0.2,0.8,0.5,0.3,2\n"
                            "\n"
                            "1,1,0.25,0.5,0.5,0.4,0.6,-1e-1\n";

static void test_load_good(void **state) {
    (void)state;
    ope_bandit d;
    assert_int_equal(ope_csv_load(write_file("good", k_good), &d), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.K, 2);
    assert_int_equal(d.d, 1);
    assert_string_equal(d.x_names[0], "x_age");
    assert_int_equal(d.action[2], 1);
    assert_close(d.pscore[2], 0.25, 0, 0);
    assert_close(d.pi[1], 0.8, 0, 0);
    assert_close(d.q[5], 0.6, 0, 0);
    assert_close(d.x[2], -0.1, 1e-15, 0);
    assert_null(d.mu);
    ope_config cfg = ope_config_default();
    cfg.switch_tau = 1.5;
    ope_result r;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), 0);
    assert_close(r.v[OPE_DR].estimate, 1.7 / 3, 1e-12, 0); /* same numbers as the hand test */
    ope_bandit_free(&d);
    assert_null(d.action);
}

static void test_bad_files(void **state) {
    (void)state;
    expect_error("nocol", "action,reward,pi_0,pi_1\n0,1,0.5,0.5\n", ENG_EFORMAT, 1, "missing column 'pscore'");
    expect_error("gap", "action,reward,pscore,pi_0,pi_2\n0,1,0.5,0.5,0.5\n", ENG_EFORMAT, 1, "without gaps");
    expect_error("unknown", "action,reward,pscore,pi_0,pi_1,foo\n", ENG_EFORMAT, 1, "unknown column 'foo'");
    expect_error("dup", "action,reward,pscore,pi_0,pi_0\n", ENG_EFORMAT, 1, "appears twice");
    expect_error("range", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,0.5,0.5\n2,1,0.5,0.5,0.5\n", ENG_EINVAL, 3,
                 "action 2");
    expect_error("frac", "action,reward,pscore,pi_0,pi_1\n0.5,1,0.5,0.5,0.5\n", ENG_EINVAL, 2, "not an integer");
    expect_error("prob", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,1.5,-0.5\n", ENG_EINVAL, 2, "pi_0");
    expect_error("pscore", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,0.5,0.5\n0,1,0,0.5,0.5\n", ENG_EINVAL, 3,
                 "pscore 0");
    expect_error("sum",
                 "action,reward,pscore,pi_0,pi_1\n0,1,0.5,0.5,0.5\n0,1,0.5,0.5,0.5\n"
                 "0,1,0.5,0.5,0.50001\n",
                 ENG_EINVAL, 4, "sum to 1.00001");
    expect_error("nonnum", "action,reward,pscore,pi_0,pi_1\n0,abc,0.5,0.5,0.5\n", ENG_EFORMAT, 2,
                 "column 'reward': 'abc'");
    expect_error("empty", "action,reward,pscore,pi_0,pi_1\n0,,0.5,0.5,0.5\n", ENG_EFORMAT, 2, "column 'reward'");
    expect_error("count", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,0.5,0.5\n\n0,1,0.5,0.5\n", ENG_EFORMAT, 4,
                 "4 fields, but the header has 5");
    expect_error("count2", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,0.5,0.5,7\n", ENG_EFORMAT, 2, "6 fields");
    expect_error("quote", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,\"0.5\"x,0.5\n", ENG_EFORMAT, 2, "CSV syntax");
    expect_error("nodata", "action,reward,pscore,pi_0,pi_1\n", ENG_EFORMAT, 0, "no data rows");
    expect_error("qpart", "action,reward,pscore,pi_0,pi_1,q_0\n0,1,0.5,0.5,0.5,1\n", ENG_EFORMAT, 1, "q_0 .. q_1");
    ope_bandit d;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/ope_does_not_exist.csv", test_tmpdir());
    assert_int_equal(ope_csv_load(missing, &d), ENG_ENOTFOUND);
    assert_non_null(strstr(eng_err_msg(), "ope_does_not_exist.csv"));
}

/* Run `rlprice ope ARGS` with stdout captured into a file; returns the exit code and leaves
 * the output in `out` (caller frees). */
static int run_cmd(int argc, char **argv, char **out) {
    char cap[512];
    snprintf(cap, sizeof cap, "%s/ope_stdout.txt", test_tmpdir());
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = ope_cmd_ope(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    FILE *f = fopen(cap, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = calloc((size_t)n + 1, 1);
    assert_int_equal(fread(*out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return rc;
}

static void test_cmd_json(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", write_file("cmd", k_good));
    char *argv[] = {"ope", "--logged", path, "--json", "--bootstrap", "300", "--seed", "9", "--tau", "1.5", NULL};
    char *out = NULL;
    assert_int_equal(run_cmd(10, argv, &out), 0);
    json_object *o = json_tokener_parse(out);
    if (!o) fail_msg("not JSON: %s", out);
    static const char *names[] = {"replay", "ips", "snips", "dm", "dr", "switch_dr"};
    for (int k = 0; k < 6; k++) {
        json_object *e, *v;
        if (!json_object_object_get_ex(o, names[k], &e)) fail_msg("no key '%s' in %s", names[k], out);
        assert_true(json_object_object_get_ex(e, "estimate", &v));
        assert_true(json_object_object_get_ex(e, "ci_low", &v));
        assert_true(json_object_object_get_ex(e, "ci_high", &v));
    }
    json_object *e, *v, *diag, *ov;
    assert_true(json_object_object_get_ex(o, "dr", &e));
    assert_true(json_object_object_get_ex(e, "estimate", &v));
    assert_close(json_object_get_double(v), 1.7 / 3, 1e-12, 0);
    assert_true(json_object_object_get_ex(o, "diagnostics", &diag));
    assert_true(json_object_object_get_ex(diag, "overlap", &ov));
    assert_true(json_object_object_get_ex(ov, "ess", &v));
    assert_close(json_object_get_double(v), 16.0 / 6.72, 1e-12, 0);
    assert_true(json_object_object_get_ex(ov, "poor", &v));
    assert_true(json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(diag, "recommended", &v));
    assert_string_equal(json_object_get_string(v), "dm");
    assert_true(json_object_object_get_ex(diag, "reward_model", &v));
    assert_string_equal(json_object_get_string(v), "given");
    json_object_put(o);
    free(out);

    /* same seed: byte-identical output */
    char *again = NULL, *first = NULL;
    assert_int_equal(run_cmd(10, argv, &first), 0);
    assert_int_equal(run_cmd(10, argv, &again), 0);
    assert_string_equal(first, again);
    free(first);
    free(again);
}

static void test_cmd_table_and_errors(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", write_file("noq", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,0.5,0.5\n1,0,0.5,0.5,0.5\n"));
    char *argv[] = {"ope", "--logged", path, "--bootstrap", "50", NULL};
    char *out = NULL;
    assert_int_equal(run_cmd(5, argv, &out), 0);
    assert_non_null(strstr(out, "ips"));
    assert_non_null(strstr(out, "omitted: no reward model"));
    free(out);
    /* JSON without a model: dm listed under diagnostics.omitted, not as a number */
    char *argvj[] = {"ope", "--logged", path, "--json", NULL};
    assert_int_equal(run_cmd(4, argvj, &out), 0);
    json_object *o = json_tokener_parse(out), *diag, *om, *v;
    assert_non_null(o);
    assert_false(json_object_object_get_ex(o, "dm", &v));
    assert_true(json_object_object_get_ex(o, "diagnostics", &diag));
    assert_true(json_object_object_get_ex(diag, "omitted", &om));
    assert_true(json_object_object_get_ex(om, "dm", &v));
    json_object_put(o);
    free(out);

    char bad[512];
    snprintf(bad, sizeof bad, "%s", write_file("cmdbad", "action,reward,pscore,pi_0,pi_1\n0,1,0.5,0.5,0.5\n5,1,0.5,0.5,0.5\n"));
    char *argvb[] = {"ope", "--logged", bad, NULL};
    assert_int_equal(run_cmd(3, argvb, &out), 2);
    free(out);
    char *argvu[] = {"ope", "--bootstrap", "x", "--logged", path, NULL};
    assert_int_equal(run_cmd(5, argvu, &out), 2);
    free(out);
    char *argvn[] = {"ope", NULL};
    assert_int_equal(run_cmd(1, argvn, &out), 2);
    free(out);
    /* --seed takes digits only: strtoull alone would skip the blank and wrap the sign */
    static const char *const badseed[] = {" 5", "-1", "+5", "99999999999999999999999", ""};
    for (size_t k = 0; k < sizeof badseed / sizeof badseed[0]; k++) {
        char *argvs[] = {"ope", "--logged", path, "--seed", (char *)badseed[k], NULL};
        if (run_cmd(5, argvs, &out) != 2) fail_msg("rlprice ope --seed '%s' accepted", badseed[k]);
        free(out);
        char *argvv[] = {"ope-validate", "--seed", (char *)badseed[k], NULL}; /* refused before it simulates */
        if (ope_cmd_validate(3, argvv) != 2) fail_msg("rlprice ope-validate --seed '%s' accepted", badseed[k]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_cmd_json),
        cmocka_unit_test(test_cmd_table_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
