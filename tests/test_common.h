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

/* A test on the shared real data (../shared/data) calls this with the file it reads.  When
 * tests/run_tests.sh found the data folder it sets RLPRICE_DATA_REQUIRED=1, and a missing or
 * unreadable file FAILS the test; when the folder is absent altogether (a checkout without
 * shared/ beside it) the test prints SKIP with the path and is counted as skipped. */
#define test_require_data(path)                                                                   \
    do {                                                                                          \
        FILE *f_ = fopen((path), "rb");                                                           \
        if (f_) { fclose(f_); break; }                                                            \
        const char *req_ = getenv("RLPRICE_DATA_REQUIRED");                                       \
        if (req_ && !strcmp(req_, "1"))                                                           \
            fail_msg("cannot open %s (the shared data folder is there; is the file missing?)", (path)); \
        print_message("SKIP: shared data not found: %s (set RLPRICE_DATA_DIR)\n", (path));        \
        skip();                                                                                   \
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
