/* tests/test_util.c - eng_util: RNG determinism and ranges, atomic writes, errors. */
#include "test_common.h"
#include "eng_hash.h"
#include "eng_util.h"

#include <unistd.h>

static void test_rng_deterministic(void **state) {
    (void)state;
    eng_rng a, b, c;
    eng_rng_seed(&a, 42);
    eng_rng_seed(&b, 42);
    eng_rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = eng_rng_u64(&a), y = eng_rng_u64(&b), z = eng_rng_u64(&c);
        assert_int_equal(x, y);
        differ += (x != z);
    }
    assert_true(differ > 990);
}

/* xoshiro256** written out here, independently of eng_rng.h's inline form. */
static uint64_t ref_next(uint64_t *s) {
    uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* eng_rng_u64 / eng_rng_next are xoshiro256**, and eng_rng_below_at with the limit computed once
 * draws what eng_rng_below draws (the bootstrap's inner loop relies on it), for sizes with and
 * without rejections. */
static void test_rng_inline_forms(void **state) {
    (void)state;
    eng_rng a, b;
    eng_rng_seed(&a, 99);
    b = a;
    uint64_t s[4];
    memcpy(s, a.s, sizeof s);
    for (int i = 0; i < 1000; i++) {
        uint64_t x = eng_rng_u64(&a), y = eng_rng_next(&b), z = ref_next(s);
        assert_true(x == z && y == z);
    }
    const uint64_t sizes[] = {1, 2, 3, 7, 30, 1000, (1ULL << 63) + 12345};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint64_t n = sizes[k], lim = eng_rng_below_lim(n);
        for (int i = 0; i < 2000; i++) {
            uint64_t x = eng_rng_below(&a, n), y = eng_rng_below_at(&b, n, lim);
            assert_true(x == y && x < n);
        }
    }
}

static void test_rng_moments(void **state) {
    (void)state;
    eng_rng r;
    eng_rng_seed(&r, 7);
    double s = 0, s2 = 0, u = 0;
    int counts[5] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = eng_rng_normal(&r);
        s += x;
        s2 += x * x;
        double v = eng_rng_uniform(&r);
        assert_true(v >= 0.0 && v < 1.0);
        u += v;
        counts[eng_rng_below(&r, 5)]++;
    }
    assert_close(s / n, 0.0, 0.01, 0);
    assert_close(s2 / n, 1.0, 0.02, 0);
    assert_close(u / n, 0.5, 0.005, 0);
    for (int k = 0; k < 5; k++) assert_close(counts[k], n / 5.0, n * 0.01, 0);
}

static void test_seed_derive_distinct(void **state) {
    (void)state;
    assert_true(eng_seed_derive(1, 0) != eng_seed_derive(1, 1));
    assert_true(eng_seed_derive(1, 0) != eng_seed_derive(2, 0));
    assert_int_equal(eng_seed_derive(5, 9), eng_seed_derive(5, 9));
}

static int write_hello(FILE *f, void *ctx) {
    (void)ctx;
    return fputs("hello\n", f) < 0 ? ENG_EIO : ENG_OK;
}
static int write_fail(FILE *f, void *ctx) {
    (void)ctx;
    fputs("partial", f);
    return eng_err_set(ENG_EIO, "simulated failure");
}

static void test_atomic_write(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/atomic_%d.txt", test_tmpdir(), (int)getpid());
    assert_int_equal(eng_atomic_write(path, write_hello, NULL), ENG_OK);
    /* a failing writer leaves the previous content in place and no temp file */
    assert_int_equal(eng_atomic_write(path, write_fail, NULL), ENG_EIO);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[64] = {0};
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "hello\n");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
    unlink(path);
}

static void test_fnv1a_vectors(void **state) {
    (void)state;
    /* the published FNV-1a 64 test vectors, standard offset basis */
    assert_true(eng_fnv1a_str(ENG_FNV1A_BASIS, "") == 0xcbf29ce484222325ULL);
    assert_true(eng_fnv1a_str(ENG_FNV1A_BASIS, "a") == 0xaf63dc4c8601ec8cULL);
    assert_true(eng_fnv1a_str(ENG_FNV1A_BASIS, "foobar") == 0x85944171f73967e8ULL);
    assert_true(eng_fnv1a(ENG_FNV1A_BASIS, "foobar", 6) == 0x85944171f73967e8ULL);
    /* continuing a hash equals hashing the concatenation; NULL is the empty string */
    assert_true(eng_fnv1a_str(eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, "foo"), "bar") ==
                eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, "foobar"));
    assert_true(eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, NULL) == ENG_FNV1A_BASIS_RLP);
}

static void test_cmp_double(void **state) {
    (void)state;
    double v[] = {3.5, -1.0, 2.0, -1.0, 0.0, 1e300, -1e-300};
    qsort(v, sizeof v / sizeof v[0], sizeof v[0], eng_cmp_double);
    for (size_t i = 1; i < sizeof v / sizeof v[0]; i++) assert_true(v[i - 1] <= v[i]);
    assert_true(v[0] == -1.0 && v[6] == 1e300);
}

static void test_errors(void **state) {
    (void)state;
    assert_null(eng_fopen("/nonexistent/dir/file", "r"));
    assert_non_null(strstr(eng_err_msg(), "/nonexistent/dir/file"));
    assert_int_equal(eng_err_set(ENG_EFORMAT, "x=%d", 3), ENG_EFORMAT);
    assert_string_equal(eng_err_msg(), "x=3");
    assert_string_equal(eng_status_name(ENG_EDB), "EDB");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_deterministic),
        cmocka_unit_test(test_rng_inline_forms),
        cmocka_unit_test(test_rng_moments),
        cmocka_unit_test(test_seed_derive_distinct), cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_fnv1a_vectors), cmocka_unit_test(test_cmp_double),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
