/* exp_nightly_stage.h - the per-rank stage timings of a nightly (eng_stage.h) reported by rank 0
 * (docs/mpi.md, "Where the time goes"). */
#ifndef EXP_NIGHTLY_STAGE_H
#define EXP_NIGHTLY_STAGE_H

/* Collective under MPI (every rank calls it at the same point): every rank's stage table is
 * sent to rank 0, which logs one INFO line per rank, "nightly: rank R stages (wall/cpu s):
 * ...".  local = 1 (or one process): not collective, logs this process's own line only.  A failed exchange is logged as a warning and
 * otherwise ignored (timings never fail a run); nothing to free. */
void exp_nightly_stage_report(const char *when, int local);

#endif
