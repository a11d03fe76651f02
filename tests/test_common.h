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

/* Path under the shared real-data folder (../shared/data by default). */
static inline void test_data_path(char *buf, size_t n, const char *rel) {
    const char *d = getenv("RLPRICE_DATA_DIR");
    snprintf(buf, n, "%s/%s", d && *d ? d : "../shared/data", rel);
}

/* Assert |a - b| <= atol + rtol * |b| with a readable message. */
#define assert_close(a, b, atol, rtol)                                                       \
    do {                                                                                     \
        double a_ = (double)(a), b_ = (double)(b);                                           \
        if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_)))                                  \
            fail_msg("%s = %.9g, %s = %.9g (atol %g, rtol %g)", #a, a_, #b, b_, (double)(atol), \
                     (double)(rtol));                                                        \
    } while (0)

#endif
