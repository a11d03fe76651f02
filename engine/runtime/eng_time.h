/* eng_time.h - monotonic time and peak memory (part of the shared runtime, see eng_util.h). */
#ifndef ENG_TIME_H
#define ENG_TIME_H

#include <stddef.h>

/* ---- time ------------------------------------------------------------------ */
double eng_now(void); /* monotonic seconds */
/* Peak resident set size of this process in bytes (0 when unknown). */
size_t eng_peak_rss(void);
/* Keep freed memory in the process for reuse (glibc: blocks up to ENG_MEM_MMAP_MAX from the heap,
 * which is trimmed only beyond ENG_MEM_TRIM): a night allocates and frees the same large
 * buffers many times (networks, minibatches, replay buffers), and memory handed back to the
 * system costs a page fault and a zeroed page per 4 KiB at every reuse.  Call once at start
 * (the command line does); RLPRICE_MALLOC_KEEP=0 in the environment leaves the allocator's
 * defaults.  Returns 1 when the settings were applied, 0 otherwise.  Never fails. */
int eng_mem_keep(void);
#define ENG_MEM_MMAP_MAX (128u << 20)
#define ENG_MEM_TRIM (512u << 20)

#endif
