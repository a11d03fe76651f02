/* tests/test_common.h - shared helpers for the cmocka suites. */
#ifndef TEST_COMMON_H
#define TEST_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Folder for a test's files (created by tests/run_tests.sh; /tmp otherwise). */
static inline const char *test_tmpdir(void) {
    const char *d = getenv("RLPRICE_TEST_TMP");
    return d && *d ? d : "/tmp";
}

/* Path under the real-data folder: the repository's data/datasets/ files, unpacked by `make` into
 * $(BUILD)/datasets (RLPRICE_BUILD_DATA, relative to the repository root where the tests run);
 * RLPRICE_DATA_DIR overrides it. */
static inline void test_data_path(char *buf, size_t n, const char *rel) {
    const char *d = getenv("RLPRICE_DATA_DIR");
    snprintf(buf, n, "%s/%s", d && *d ? d : RLPRICE_BUILD_DATA, rel);
}

/* A test on the real data calls this with the file it reads.  The data ships in the repository,
 * so a missing or unreadable file FAILS the test (run `make` to unpack it); it never skips. */
#define test_require_data(path)                                                                   \
    do {                                                                                          \
        FILE *f_ = fopen((path), "rb");                                                           \
        if (f_) { fclose(f_); break; }                                                            \
        fail_msg("cannot open %s (the real data ships in data/datasets/; `make` unpacks it)", (path)); \
    } while (0)

/* Assert |a - b| <= atol + rtol * |b| with a readable message. */
#define assert_close(a, b, atol, rtol)                                                       \
    do {                                                                                     \
        double a_ = (double)(a), b_ = (double)(b);                                           \
        if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_)))                                  \
            fail_msg("%s = %.9g, %s = %.9g (atol %g, rtol %g)", #a, a_, #b, b_, (double)(atol), \
                     (double)(rtol));                                                        \
    } while (0)

#endif
