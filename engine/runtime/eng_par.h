/* eng_par.h - the processes of one run (MPI ranks) and what they exchange (docs/mpi.md).
 *
 * Two twins implement it: eng_par_mpi.c (built when the Makefile finds Open MPI) and
 * eng_par_none.c (the plain build: one process, every exchange a copy).  A program started
 * without an MPI launcher is one process in either build.
 *
 * Every exchange is collective (all ranks call it in the same order) and waits at most the
 * timeout (eng_par_set_timeout, default 600 s): a rank that died or hangs makes the others
 * return ENG_EIO ("no answer ...") instead of waiting forever; the exchange layer is then
 * broken (eng_par_broken) and only eng_par_finalize may follow, which then skips
 * MPI_Finalize.  Functions return 0 or a negative ENG_E* status with the message set. */
#ifndef ENG_PAR_H
#define ENG_PAR_H

#include <stddef.h>
#include <stdint.h>

#include "eng_xsum.h"

/* 1 when this build has MPI. */
int eng_par_built(void);
/* Start MPI when the process was started by an MPI launcher (mpirun/srun environment), else
 * nothing (one process).  Call once at the start of main.  0 or ENG_EIO. */
int eng_par_init(int *argc, char ***argv);
/* End MPI (when started and not broken).  Safe to call always. */
void eng_par_finalize(void);
/* After a broken exchange: end every rank now with exit code `code` (MPI_Abort; mpirun then
 * exits with it).  Returns only when MPI is not running. */
void eng_par_abort(int code);
int eng_par_rank(void);       /* 0 .. size-1 */
int eng_par_size(void);       /* 1 without MPI */
int eng_par_local_rank(void); /* rank among the processes of this machine (GPU choice) */
int eng_par_broken(void);     /* an exchange timed out or failed */
/* "Open MPI v4.1.4, rank 0 of 2 (local 0) on host" or "one process (no MPI in this build)"
 * into buf. */
void eng_par_describe(char *buf, size_t n);
void eng_par_set_timeout(double seconds); /* <= 0: the default 600 s */

typedef enum { ENG_PAR_SUM = 0, ENG_PAR_MIN, ENG_PAR_MAX } eng_par_op;

int eng_par_barrier(void);
/* In place over every rank: v[i] = op over ranks of v[i]. */
int eng_par_allreduce_i64(int64_t *v, int n, eng_par_op op);
int eng_par_allreduce_f64(double *v, int n, eng_par_op op); /* MIN / MAX (exact); SUM not offered */
/* Exact sums over every rank: x[i] = the exact sum of every rank's x[i] (eng_xsum.h). */
int eng_par_allreduce_xsum(eng_xsum *x, size_t n);
/* Root's n bytes into everyone's buf. */
int eng_par_bcast(void *buf, size_t n, int root);
/* Every rank's n bytes, concatenated in rank order, into *out (malloc'd, caller frees; on the
 * root only for gather, everywhere for allgather; NULL elsewhere) and counts[size] (caller's
 * array of eng_par_size() entries; filled where *out is).  Totals must stay below 2 GiB. */
int eng_par_gatherv(const void *buf, size_t n, int root, char **out, size_t *counts);
int eng_par_allgatherv(const void *buf, size_t n, char **out, size_t *counts);
/* Agree on a status: every rank passes its own (0 = fine) and, when failing, the message of
 * eng_err_msg().  Returns 0 when every rank passed 0; else the status of the lowest failing
 * rank, whose message ("rank R: ...") is then set as this rank's error.  A timeout returns
 * ENG_EIO with the timeout message. */
int eng_par_agree(int status);

#endif
