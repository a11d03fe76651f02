/* tests/test_cuda.h - the CUDA side of the parity suites (tests/test_backend_parity*.c): the
 * device probe run once per group, the SKIP rule, and the elementwise closeness check.
 * Include after test_common.h, once per test binary (it defines static state). */
#ifndef TEST_CUDA_H
#define TEST_CUDA_H

#include <math.h>
#include <string.h>

#include "eng_backend.h"
#include "eng_util.h"

static const eng_backend *g_cuda;
static char g_reason[512];

/* cmocka group setup: probes the CUDA backend once; without a device g_cuda stays NULL and
 * g_reason says why (the probe's "no CUDA device: " prefix removed). */
static int group_setup(void **s) {
    (void)s;
    if (eng_backend_cuda(&g_cuda) != ENG_OK) {
        g_cuda = NULL;
        const char *msg = eng_err_msg(), *pre = "no CUDA device: ";
        if (!strncmp(msg, pre, strlen(pre))) msg += strlen(pre);
        snprintf(g_reason, sizeof g_reason, "%s", msg);
    }
    return 0;
}

/* In a test: print one "SKIP: no CUDA device (...)" line and skip() when there is no device. */
#define REQUIRE_CUDA()                                                  \
    do {                                                                \
        if (!g_cuda) {                                                  \
            printf("SKIP: no CUDA device (%s)\n", g_reason);            \
            fflush(stdout);                                             \
            skip();                                                     \
        }                                                               \
    } while (0)

static const eng_backend *cpu(void) { return eng_backend_cpu(); }

/* Fails unless |cuda - ref| <= atol + rtol * |ref| for every element (NaN never passes). */
static void expect_close(const char *what, const float *cuda, const float *ref, size_t n, double atol,
                         double rtol) {
    for (size_t k = 0; k < n; k++) {
        double a = cuda[k], b = ref[k];
        if (!(fabs(a - b) <= atol + rtol * fabs(b)))
            fail_msg("%s[%zu]: cuda %.9g, cpu %.9g (atol %g, rtol %g)", what, k, a, b, atol, rtol);
    }
}
#endif
