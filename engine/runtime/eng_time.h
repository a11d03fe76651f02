/* eng_time.h - monotonic time and peak memory (part of the shared runtime, see eng_util.h). */
#ifndef ENG_TIME_H
#define ENG_TIME_H

#include <stddef.h>

/* ---- time ------------------------------------------------------------------ */
double eng_now(void); /* monotonic seconds */
/* Peak resident set size of this process in bytes (0 when unknown). */
size_t eng_peak_rss(void);

#endif
