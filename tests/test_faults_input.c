/* tests/test_faults_input.c - hostile inputs (issue 14, items 5 and 8): a propensity of 1e-300
 * (clipped to the floor, counted; with the floor off, overflowed weights make the overlap POOR
 * instead of passing a NaN comparison), a UTF-8 byte-order mark before the header, "0x1" and
 * other non-decimal numbers, and a 10 MB CSV field read with few buffer growths. */
#include "test_common.h"

#include <time.h>

#include "db_csvread.h"
#include "eng_util.h"
#include "ope.h"

static char g_path[512];

static const char *write_file(const char *name, const char *text) {
    snprintf(g_path, sizeof g_path, "%s/faults_%s.csv", test_tmpdir(), name);
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return g_path;
}

/* 60 rows, two actions, the target always plays 0; row 8 logged action 0 with pscore `tiny`. */
static const char *tiny_pscore_file(const char *tiny) {
    static char text[8192];
    size_t o = (size_t)snprintf(text, sizeof text, "action,reward,pscore,pi_0,pi_1,q_0,q_1\n");
    for (int i = 0; i < 60; i++) {
        const char *ps = i == 8 ? tiny : "0.5";
        o += (size_t)snprintf(text + o, sizeof text - o, "%d,%d,%s,1,0,0.5,0.4\n", i % 2, (i / 3) % 2, ps);
    }
    return write_file("tiny_pscore", text);
}

static void test_pscore_1e300_is_clipped(void **state) {
    (void)state;
    ope_bandit d;
    assert_int_equal(ope_csv_load(tiny_pscore_file("1e-300"), &d), 0);
    assert_close(d.pscore[8], 1e-300, 0, 1e-12); /* the loader keeps what the file says */
    ope_config cfg = ope_config_default();
    cfg.n_boot = 50;
    ope_result r;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), 0);
    assert_int_equal(r.n_pscore_clipped, 1);
    for (int e = OPE_REPLAY; e <= OPE_SWITCH_DR; e++) {
        if (!r.v[e].available) continue;
        if (!isfinite(r.v[e].estimate)) fail_msg("%s estimate %g", ope_est_name((ope_est)e), r.v[e].estimate);
    }
    assert_true(isfinite(r.overlap.ess));
    /* the clipped weight is pi / floor = 1e6 at most: DR cannot reach 7e296 */
    assert_true(fabs(r.v[OPE_DR].estimate) < 1e6);
    assert_true(r.overlap.poor); /* one row carries almost all the weight */
    assert_int_equal(r.recommended, OPE_DM);

    /* with the floor switched off the squared weight overflows: ESS is not a number, and the
     * overlap rule must call that poor rather than let the NaN comparison pass */
    cfg.min_pscore = 0;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), 0);
    assert_int_equal(r.n_pscore_clipped, 0);
    assert_true(r.overlap.poor);
    assert_int_equal(r.recommended, OPE_DM);
    /* a floor outside [0, 1) is a configuration error */
    cfg.min_pscore = 1.5;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), ENG_EINVAL);
    cfg.min_pscore = NAN;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), ENG_EINVAL);
    ope_bandit_free(&d);
}

static void test_overlap_rule_nan(void **state) {
    (void)state;
    ope_config cfg = ope_config_default();
    ope_overlap ov;
    memset(&ov, 0, sizeof ov);
    /* weights that overflowed: sum and sum of squares infinite, ESS NaN */
    assert_int_equal(ope_overlap_weights(&ov, 1000, INFINITY, INFINITY, INFINITY, &cfg, "", "n"), 1);
    memset(&ov, 0, sizeof ov);
    assert_int_equal(ope_overlap_weights(&ov, 1000, NAN, NAN, NAN, &cfg, "", "n"), 1);
    memset(&ov, 0, sizeof ov); /* and a healthy set passes */
    assert_int_equal(ope_overlap_weights(&ov, 1000, 1000, 1000, 1, &cfg, "", "n"), 0);
}

static void test_trajectory_floor(void **state) {
    (void)state;
    int start[3] = {0, 2, 4};
    double rew[4] = {1, 1, 0, 1}, pi[4] = {1, 1, 1, 1}, mu[4] = {0.5, 1e-300, 0.5, 0.5};
    ope_traj t = {2, start, rew, pi, mu};
    ope_config cfg = ope_config_default();
    cfg.n_boot = 0;
    ope_result r;
    assert_int_equal(ope_traj_estimate(&t, &cfg, &r), 0);
    assert_int_equal(r.n_pscore_clipped, 1);
    assert_true(isfinite(r.v[OPE_PDIS].estimate));
    assert_true(r.overlap.poor); /* two trajectories: far below the ESS floor anyway */
}

static void test_bom_header(void **state) {
    (void)state;
    ope_bandit d;
    const char *p = write_file("bom", "\xEF\xBB\xBF" "action,reward,pscore,pi_0,pi_1\n1,1,0.5,0.5,0.5\n0,0,0.5,0.5,0.5\n");
    if (ope_csv_load(p, &d) != 0) fail_msg("BOM file: %s", eng_err_msg());
    assert_int_equal(d.n, 2);
    assert_int_equal(d.action[0], 1);
    ope_bandit_free(&d);
    /* a BOM anywhere else is still an unknown column (only the file's start is skipped) */
    p = write_file("bom2", "action,\xEF\xBB\xBFreward,pscore,pi_0,pi_1\n1,1,0.5,0.5,0.5\n");
    assert_int_equal(ope_csv_load(p, &d), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "unknown column"));
}

static void test_non_decimal_numbers(void **state) {
    (void)state;
    static const char *bad[] = {"0x1", "0X1", "inf", "nan", "+", "1e", "0x1p0", "1e999", "--1"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char text[256];
        snprintf(text, sizeof text, "action,reward,pscore,pi_0,pi_1\n%s,1,0.5,0.5,0.5\n", bad[k]);
        ope_bandit d;
        int st = ope_csv_load(write_file("nondec", text), &d);
        if (st != ENG_EFORMAT) fail_msg("action '%s': status %d, expected EFORMAT (%s)", bad[k], st, eng_err_msg());
        assert_non_null(strstr(eng_err_msg(), "column 'action'"));
        assert_null(d.action);
    }
    double v = 0;
    assert_int_equal(eng_parse_decimal("1", &v), 0);
    assert_close(v, 1, 0, 0);
    assert_int_equal(eng_parse_decimal("-.5e-3", &v), 0);
    assert_close(v, -0.0005, 1e-18, 0);
    assert_int_equal(eng_parse_decimal("1.", &v), 0);
    assert_close(v, 1, 0, 0);
    assert_int_equal(eng_parse_decimal("0x1", &v), ENG_EFORMAT);
    assert_int_equal(eng_parse_decimal("", &v), ENG_EFORMAT);
    assert_int_equal(eng_parse_decimal(".", &v), ENG_EFORMAT);
    /* a seed: digits only, no sign, no blanks, no overflow (bench --seed) */
    uint64_t u = 7;
    assert_int_equal(eng_parse_u64("18446744073709551615", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(eng_parse_u64("0", &u), 0);
    assert_true(u == 0);
    static const char *badu[] = {"", " 5", "-1", "+5", "5x", "18446744073709551616", "0x10"};
    for (size_t k = 0; k < sizeof badu / sizeof *badu; k++) {
        u = 7;
        if (eng_parse_u64(badu[k], &u) != ENG_EINVAL || u != 7) fail_msg("eng_parse_u64('%s') accepted", badu[k]);
    }
    /* the configs' 64-bit keys: C's prefixes too, still no sign and no blanks */
    assert_int_equal(eng_parse_u64_c("0x10", &u), 0);
    assert_true(u == 16);
    assert_int_equal(eng_parse_u64_c("010", &u), 0);
    assert_true(u == 8);
    static const char *badc[] = {"", " 5", "-1", "+5", " -5", "5x", "18446744073709551616", "0x"};
    for (size_t k = 0; k < sizeof badc / sizeof *badc; k++) {
        u = 7;
        if (eng_parse_u64_c(badc[k], &u) != ENG_EINVAL || u != 7) fail_msg("eng_parse_u64_c('%s') accepted", badc[k]);
    }
}

/* ---- a 10 MB field through the import reader --------------------------------------------- */
typedef struct big_ctx { size_t len; int ok, rows; } big_ctx;

static int big_first(void *ctx, int nf, char **f, int has_header) {
    (void)ctx, (void)f, (void)has_header;
    return nf == 3 ? 0 : -1;
}

static int big_row(void *vctx, long line, int nf, char **f) {
    (void)line, (void)nf;
    big_ctx *c = vctx;
    c->rows++;
    if (c->rows == 1) {
        c->len = strlen(f[1]);
        c->ok = !strcmp(f[0], "P1") && !strcmp(f[2], "tail");
        for (size_t i = 0; c->ok && i < c->len; i++) c->ok = f[1][i] == (char)('a' + i % 26);
    }
    return 0;
}

static void test_ten_megabyte_field(void **state) {
    (void)state;
    const size_t N = 10u << 20;
    snprintf(g_path, sizeof g_path, "%s/faults_bigfield.csv", test_tmpdir());
    FILE *f = fopen(g_path, "wb");
    assert_non_null(f);
    fputs("id,name,note\nP1,\"", f);
    for (size_t i = 0; i < N; i++) fputc('a' + (int)(i % 26), f);
    fputs("\",tail\nP2,short,x\n", f);
    fclose(f);
    big_ctx c = {0, 0, 0};
    db_csv_log lg;
    memset(&lg, 0, sizeof lg);
    long g0 = db_csv_buffer_grows();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_t c0 = clock();
    int st = db_csv_read(g_path, NULL, big_first, big_row, &c, &lg);
    clock_t c1 = clock();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long grows = db_csv_buffer_grows() - g0;
    db_csv_log_free(&lg);
    if (st) fail_msg("read: %s", eng_err_msg());
    assert_int_equal(c.rows, 2);
    assert_int_equal(c.len, N);
    assert_true(c.ok);
    /* libcsv grows a field buffer by its block size: 128-byte steps meant ~82,000 reallocations
     * (and copies) for this field; DB_CSV_BLK_SIZE steps need about N / 1 MiB */
    if (grows > (long)(N / DB_CSV_BLK_SIZE) + 4) fail_msg("%ld field-buffer reallocations for a 10 MB field", grows);
    print_message("10 MB field: %ld buffer growths, %.3f s wall, %.3f s CPU (figures only; not asserted)\n", grows,
                  (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                  (double)(c1 - c0) / CLOCKS_PER_SEC);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pscore_1e300_is_clipped), cmocka_unit_test(test_overlap_rule_nan),
        cmocka_unit_test(test_trajectory_floor),        cmocka_unit_test(test_bom_header),
        cmocka_unit_test(test_non_decimal_numbers),     cmocka_unit_test(test_ten_megabyte_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
