/* eng_stage.h - wall-clock and CPU seconds per named stage of a run, per process (one MPI rank):
 * where a multi-rank nightly spends its time (docs/mpi.md, "Where the time goes").
 *
 * A stage is timed between eng_stage_begin and eng_stage_end; the same name used again adds to
 * its totals (first use appends it, at most ENG_STAGE_MAX names; later new names are dropped).
 * The table is per thread (_Thread_local), so parallel runs in one process do not mix.  CPU
 * time is the process's (CLOCK_PROCESS_CPUTIME_ID): with one BLAS thread per rank it is the
 * rank's own work; wall minus CPU is waiting (for a core on a loaded machine, or for the other
 * ranks in an exchange).  Nothing here allocates or fails. */
#ifndef ENG_STAGE_H
#define ENG_STAGE_H

#include <stddef.h>

#define ENG_STAGE_MAX 32

typedef struct eng_stage_mark {
    double wall, cpu;
} eng_stage_mark;

/* CPU seconds this process has used (0 when the clock is unavailable). */
double eng_cpu_now(void);
/* The current wall and CPU clocks, to pass to eng_stage_end. */
eng_stage_mark eng_stage_begin(void);
/* Add the time since m to stage `name` (a string literal or one that outlives the table). */
void eng_stage_end(const char *name, eng_stage_mark m);
/* Forget every stage (start of a run). */
void eng_stage_reset(void);
/* "name wall/cpu name wall/cpu ..." in seconds with two decimals, into buf (always
 * terminated; truncated when short).  Returns the length written. */
size_t eng_stage_format(char *buf, size_t n);

#endif
