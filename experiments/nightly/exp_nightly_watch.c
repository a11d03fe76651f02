/* exp_nightly_watch.c - rank 0 of an MPI nightly marks its run failed when the launcher
 * terminates it (docs/mpi.md, "When a rank dies").
 *
 * By default mpirun ends the whole job when one rank dies: it sends SIGTERM to the others and
 * SIGKILL a second later (odls_base_sigkill_timeout).  Rank 0 would then leave its run row
 * 'running' without a word.  While the watch is on, SIGTERM (and SIGINT) only write a byte to
 * a pipe (async-signal-safe); a thread waiting on that pipe, on its own connection (opened when
 * the watch starts, so only the UPDATE is left to do in the second mpirun allows), marks the
 * run and its attempt 'failed' with the reason (db_run_fail_attempt: a run that finished
 * meanwhile keeps its row), and re-raises the
 * signal with its default action, so the process ends as the signal meant it to. */
#include "exp_nightly_watch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db_conn.h"
#include "db_runlock.h"
#include "eng_util.h"

static int watch_pipe[2] = {-1, -1};
static pthread_t watch_thread;
static int watch_on;
static struct sigaction old_term, old_int;
static char watch_conninfo[2048], watch_run[64];
static int watch_has_conninfo, watch_attempt;
static PGconn *watch_conn; /* opened at start: on the signal only the UPDATE is left to do */

static void on_signal(int sig) {
    char c = (char)sig;
    int e = errno;
    if (write(watch_pipe[1], &c, 1) < 0) { /* nothing more can be done in a handler */
    }
    errno = e;
}

static void *watch_main(void *arg) {
    (void)arg;
    char c = 0;
    ssize_t n;
    while ((n = read(watch_pipe[0], &c, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1 || c == 0) return NULL; /* stopped */
    char msg[256];
    snprintf(msg, sizeof msg,
             "terminated by signal %d (the MPI launcher ends the job when a rank dies or the job is cancelled); "
             "nothing was pushed", (int)c);
    PGconn *conn = watch_conn;
    if (conn || db_resolve(&conn, watch_has_conninfo ? watch_conninfo : NULL) == ENG_OK) {
        if (db_run_fail_attempt(conn, watch_run, watch_attempt, msg) == ENG_OK)
            fprintf(stderr, "rlprice: nightly: run %s marked failed: %s\n", watch_run, msg);
    }
    signal(c, SIG_DFL);
    raise(c);
    return NULL;
}

int exp_nightly_watch_start(const char *conninfo, const char *run_id, int attempt) {
    if (watch_on) return ENG_OK;
    watch_attempt = attempt;
    snprintf(watch_run, sizeof watch_run, "%s", run_id);
    watch_has_conninfo = conninfo != NULL;
    snprintf(watch_conninfo, sizeof watch_conninfo, "%s", conninfo ? conninfo : "");
    if (db_resolve(&watch_conn, watch_has_conninfo ? watch_conninfo : NULL) != ENG_OK) { /* connect later */
        watch_conn = NULL;
        eng_err_clear();
    }
    int st = ENG_OK;
    if (pipe(watch_pipe)) {
        st = eng_err_set(ENG_EIO, "nightly: watch pipe: %s", strerror(errno));
    } else if (pthread_create(&watch_thread, NULL, watch_main, NULL)) {
        close(watch_pipe[0]);
        close(watch_pipe[1]);
        st = eng_err_set(ENG_EIO, "nightly: watch thread could not start");
    }
    if (st) {
        if (watch_conn) db_disconnect(watch_conn);
        watch_conn = NULL;
        return st;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    watch_on = 1;
    return ENG_OK;
}

void exp_nightly_watch_stop(void) {
    if (!watch_on) return;
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    char c = 0;
    if (write(watch_pipe[1], &c, 1) == 1) pthread_join(watch_thread, NULL);
    else pthread_detach(watch_thread);
    close(watch_pipe[0]);
    close(watch_pipe[1]);
    watch_pipe[0] = watch_pipe[1] = -1;
    if (watch_conn) db_disconnect(watch_conn);
    watch_conn = NULL;
    watch_on = 0;
}
