/* eng_time.c - see eng_time.h. */
#include "eng_time.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

double eng_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t eng_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u;
}

int eng_mem_keep(void) {
    const char *env = getenv("RLPRICE_MALLOC_KEEP");
    if (env && !strcmp(env, "0")) return 0;
#ifdef __GLIBC__
    /* a fixed threshold also stops glibc's own adjustment of it */
    return mallopt(M_MMAP_THRESHOLD, (int)ENG_MEM_MMAP_MAX) == 1 && mallopt(M_TRIM_THRESHOLD, (int)ENG_MEM_TRIM) == 1;
#else
    return 0;
#endif
}
