/* exp_nightly_watch.h - rank 0 of an MPI nightly marks its run failed when the launcher
 * terminates it (see exp_nightly_watch.c). */
#ifndef EXP_NIGHTLY_WATCH_H
#define EXP_NIGHTLY_WATCH_H

/* From now on SIGTERM / SIGINT mark run_id and its attempt failed (through a new connection to
 * conninfo, NULL = PG* variables; a finished run keeps its row), then end the process as the
 * signal would.  Strings are copied.  Returns 0 or ENG_EIO (no pipe or thread: the run goes on
 * unwatched). */
int exp_nightly_watch_start(const char *conninfo, const char *run_id, int attempt);
/* Restore the signal actions and end the thread.  Safe when not started. */
void exp_nightly_watch_stop(void);

#endif
