/* tests/test_engine_bench.c - `rlprice bench engine` flag handling and a very short run
 * (no timing is asserted: only exit codes). */
#include "test_common.h"
#include "rlp_cmd.h"
#include "exp_bench.h"
#include "eng_backend.h"
#include "eng_util.h"

static int run(int argc, const char **argv) { return exp_cmd_bench_engine(argc, (char **)argv); }

static void test_bench_bad_flags(void **s) {
    (void)s;
    const char *a1[] = {"engine", "--seconds", "abc"};
    assert_int_equal(run(3, a1), 2);
    const char *a2[] = {"engine", "--seconds", "-1"};
    assert_int_equal(run(3, a2), 2);
    const char *a3[] = {"engine", "--device", "tpu"};
    assert_int_equal(run(3, a3), 2);
    const char *a4[] = {"engine", "--frobnicate"};
    assert_int_equal(run(2, a4), 2);
    const char *a5[] = {"engine", "--seed"};
    assert_int_equal(run(2, a5), 2);
    const char *a6[] = {"engine", "--seed", "x1"};
    assert_int_equal(run(3, a6), 2);
    const char *a7[] = {"engine", "--seed", " 5"}; /* strtoull would skip the space */
    assert_int_equal(run(3, a7), 2);
    const char *a8[] = {"engine", "--seed", "99999999999999999999999"}; /* ERANGE, not UINT64_MAX */
    assert_int_equal(run(3, a8), 2);
    const char *a9[] = {"engine", "--seed", "-1"};
    assert_int_equal(run(3, a9), 2);
}

static void test_bench_short_run(void **s) {
    (void)s;
    const char *a[] = {"engine", "--device", "cpu", "--seconds", "0.01", "--seed", "3"};
    assert_int_equal(run(7, a), 0);
    const eng_backend *cuda = NULL;
    if (eng_backend_cuda(&cuda) != ENG_OK) {
        const char *c[] = {"engine", "--device", "cuda", "--seconds", "0.01"};
        assert_int_equal(run(5, c), 1); /* no device: a clear error, exit code 1 */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_bad_flags),
        cmocka_unit_test(test_bench_short_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
