/* tests/test_faults_db.c - the faults a real night meets (issue 14), against a throwaway
 * PostgreSQL: the run's backend terminated mid-load, during training and mid-push (pg_terminate_
 * backend from a second connection; the row ends 'failed' with the reason, recorded on a fresh
 * connection), every backend gone (a server restart), the run lock's own connection lost, two runs
 * of one run id at once (exactly one pushes, the other exits 5 having touched nothing), a run
 * killed between the publish steps (the real name and `latest` always point at a complete
 * report), a failed re-run of a finished run (the finished row and its rows stay as they were),
 * a killed run reported as abandoned by the next one, and n_rejected_rows against what
 * rejected_rows stores. */
#include "test_nightly.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "db_load.h"
#include "db_runlock.h"
#include "db_store.h"
#include "env_sim.h"
#include "exp_nightly.h"
#include "exp_publish.h"

#define DAY0 19723 /* 2024-01-01 */
#define NDAYS 40
#define NPROD 4

static PGconn *conn;
static char out_dir[512], ckpt_dir[512];

static int setup(void **state) {
    (void)state;
    conn = tdb_create("faults");
    tnl_store_sim(conn, NPROD, NDAYS, 1, DAY0, 11);
    /* one bad row, and one duplicated (product, day): two copies rejected, one rejected_rows row */
    tdb_exec(conn, "UPDATE sales SET units = -3 WHERE product_id = 'SIM000001' AND day = DATE '2024-01-20'", 0, NULL);
    tdb_exec(conn, "ALTER TABLE sales DROP CONSTRAINT sales_pkey", 0, NULL);
    tdb_exec(conn, "INSERT INTO sales SELECT * FROM sales WHERE product_id = 'SIM000002' AND day = DATE '2024-01-25'", 0,
             NULL);
    snprintf(out_dir, sizeof out_dir, "%s/faults_out_%d", test_tmpdir(), (int)getpid());
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/faults_ckpt_%d", test_tmpdir(), (int)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

/* Small budgets; `window` picks the run id (each test its own). */
static exp_nightly_cfg small_cfg(PGconn *c, int window) {
    return tnl_small_cfg(c, DAY0 + NDAYS, window, out_dir, ckpt_dir, 30);
}

static PGconn *own_conn(void) {
    PGconn *c = NULL;
    if (db_connect_dbname(&c, NULL, tdb_name) != ENG_OK) fail_msg("connect: %s", eng_err_msg());
    return c;
}

static long q1(const char *sql, const char *arg) {
    const char *v[1] = {arg};
    return tdb_long(conn, sql, arg ? 1 : 0, arg ? v : NULL);
}

/* Terminate backend `pid` and wait until it is gone. */
static void terminate(int pid) {
    char p[16];
    snprintf(p, sizeof p, "%d", pid);
    const char *v[1] = {p};
    tdb_exec(conn, "SELECT pg_terminate_backend($1::int, 5000)", 1, v);
}

/* The run's row and attempt ended 'failed' with a reason containing `needle`; nothing pushed,
 * no row left 'running', the lock free again. */
static void expect_failed(const char *id, const char *needle) {
    const char *v[2] = {id, needle};
    if (tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'failed'"
                       " AND finished_at IS NOT NULL AND strpos(summary, $2) > 0", 2, v) != 1) {
        PGresult *r = PQexecParams(conn, "SELECT status || ': ' || coalesce(summary, '') FROM pricing_runs WHERE run_id = $1",
                                   1, NULL, v, NULL, NULL, 0);
        fail_msg("run %s: '%s', expected failed with '%s'", id, PQntuples(r) ? PQgetvalue(r, 0, 0) : "(no row)", needle);
    }
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_run_attempts WHERE run_id = $1 AND status = 'failed'"
                                    " AND strpos(message, $2) > 0", 2, v), 1);
    assert_int_equal(q1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id), 0);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE status = 'running'", NULL), 0);
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)db_runlock_key(id));
    const char *k[1] = {key};
    assert_int_equal(tdb_long(conn, "SELECT pg_try_advisory_lock($1::bigint)::int", 1, k), 1);
    tdb_exec(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, k);
}

/* ---- lost connections ---------------------------------------------------------------------- */
typedef struct kill_ctx { const char *stage; int pid; int done; int all; } kill_ctx;

/* Progress hook: at the first report of `stage`, terminate the run's backend (all = every
 * backend of the database but ours: a server restart as the run sees it). */
static void kill_at_stage(void *vctx, const char *stage, long done, long total) {
    (void)done, (void)total;
    kill_ctx *k = vctx;
    if (k->done || strcmp(stage, k->stage) != 0) return;
    k->done = 1;
    if (k->all)
        tdb_exec(conn, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND pid <> pg_backend_pid()", 0, NULL);
    else
        terminate(k->pid);
}

static int kill_before_commit(void *vctx, int attempt) {
    (void)attempt;
    kill_ctx *k = vctx;
    k->done = 1;
    terminate(k->pid);
    return 0;
}

static void run_with_lost_connection(int window, const char *stage, int all, int in_push) {
    PGconn *c = own_conn();
    exp_nightly_cfg cfg = small_cfg(c, window);
    kill_ctx k = {stage, PQbackendPID(c), 0, all};
    if (in_push) {
        cfg.before_commit = kill_before_commit;
        cfg.hook_ctx = &k;
    } else {
        cfg.progress = kill_at_stage;
        cfg.progress_ctx = &k;
    }
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    assert_true(k.done);
    if (st != ENG_EDB) fail_msg("status %d (%s), expected EDB", st, eng_err_msg());
    assert_int_equal(exp_nightly_exit_code(st, &s), 3);
    assert_int_equal(s.attempt, 1);
    expect_failed(s.run_id, "terminat"); /* "terminating connection due to administrator command" */
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
    db_disconnect(c);
}

static void test_backend_terminated_mid_load(void **state) {
    (void)state;
    run_with_lost_connection(31, "load", 0, 0);
}

static void test_backend_terminated_during_training(void **state) {
    (void)state;
    /* the connection dies while it is idle: the failure shows at the push */
    PGconn *c = own_conn();
    exp_nightly_cfg cfg = small_cfg(c, 32);
    kill_ctx k = {"train", PQbackendPID(c), 0, 0};
    cfg.progress = kill_at_stage;
    cfg.progress_ctx = &k;
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    assert_true(k.done);
    assert_int_equal(st, ENG_EDB);
    expect_failed(s.run_id, "db_push");
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
    db_disconnect(c);
}

static void test_backend_terminated_mid_push(void **state) {
    (void)state;
    run_with_lost_connection(33, NULL, 0, 1);
}

static void test_every_backend_gone(void **state) {
    (void)state;
    /* the run's and the lock's sessions both end (as in a server restart) mid-load: the failure is
     * still recorded, on a new connection */
    run_with_lost_connection(34, "load", 1, 0);
}

/* Progress hook: at the first "train", terminate the run lock's session (found by its name). */
static void kill_lock_session(void *vctx, const char *stage, long done, long total) {
    (void)done, (void)total;
    kill_ctx *k = vctx;
    if (k->done || strcmp(stage, "train") != 0) return;
    k->done = 1;
    char app[64];
    snprintf(app, sizeof app, "rlprice nightly pid %d", (int)getpid());
    const char *v[1] = {app};
    assert_int_equal(tdb_long(conn, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                                    " WHERE application_name = $1", 1, v), 1);
}

static void test_lock_connection_lost(void **state) {
    (void)state;
    PGconn *c = own_conn();
    exp_nightly_cfg cfg = small_cfg(c, 35);
    kill_ctx k = {"train", 0, 0, 0};
    cfg.progress = kill_lock_session;
    cfg.progress_ctx = &k;
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    assert_true(k.done);
    assert_int_equal(st, ENG_EDB); /* another run could have started: no push */
    expect_failed(s.run_id, "lock");
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
    db_disconnect(c);
}

/* ---- two runs of one run id ----------------------------------------------------------------- */
typedef struct gate { int ready_w, go_r; } gate;

/* before_commit of the first run: say "inside the push", wait for the word to go on. */
static int hold_in_push(void *vctx, int attempt) {
    (void)attempt;
    gate *g = vctx;
    char b = 0;
    if (write(g->ready_w, "r", 1) != 1 || read(g->go_r, &b, 1) != 1) return 1;
    return 0;
}

/* Fork a child running the nightly (window); it exits with the run's exit code. */
static pid_t fork_run(int window, gate *g) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        PGconn *c = NULL;
        if (db_connect_dbname(&c, NULL, tdb_name) != ENG_OK) _exit(90);
        exp_nightly_cfg cfg = small_cfg(c, window);
        if (g) {
            cfg.before_commit = hold_in_push;
            cfg.hook_ctx = g;
        }
        exp_nightly_summary s;
        int st = exp_nightly_run(&cfg, &s);
        int rc = exp_nightly_exit_code(st, &s);
        if (st) fprintf(stderr, "child %d: %s\n", (int)getpid(), eng_err_msg());
        _exit(rc);
    }
    return pid;
}

static int wait_rc(pid_t pid) {
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status)) fail_msg("child %d did not exit normally (status 0x%x)", (int)pid, status);
    return WEXITSTATUS(status);
}

static void test_two_runs_same_id(void **state) {
    (void)state;
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    gate g = {ready[1], go[0]};
    pid_t a = fork_run(36, &g);
    char b = 0;
    assert_int_equal(read(ready[0], &b, 1), 1); /* A holds the lock and sits inside its push */
    /* B: the same run id, in this process: refused, nothing touched (the timeout turns a
     * missing lock, which would wait on A's row forever, into a failure) */
    exp_nightly_cfg cfg = small_cfg(conn, 36);
    exp_nightly_summary s;
    tdb_exec(conn, "SET statement_timeout = '20s'", 0, NULL);
    int st = exp_nightly_run(&cfg, &s);
    tdb_exec(conn, "SET statement_timeout = 0", 0, NULL);
    assert_int_equal(st, ENG_EBUSY);
    assert_int_equal(exp_nightly_exit_code(st, &s), 5);
    assert_non_null(strstr(eng_err_msg(), "already running"));
    assert_non_null(strstr(eng_err_msg(), "rlprice nightly pid")); /* names the holder */
    const char *id = s.run_id;
    assert_int_equal(q1("SELECT count(*) FROM pricing_run_attempts WHERE run_id = $1", id), 1);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'running'", id), 1);
    /* A goes on: commits, publishes, exits 0 */
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(wait_rc(a), 0);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'", id), 1);
    assert_int_equal(q1("SELECT count(*) FROM pricing_run_attempts WHERE run_id = $1 AND status = 'finished'", id), 1);
    assert_int_equal(q1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id), NPROD);
    close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);

    /* started together, freely: every run ends 0 (it ran, alone) or 5 (it found the other),
     * never an error, and the database is consistent */
    pid_t p1 = fork_run(37, NULL), p2 = fork_run(37, NULL);
    int r1 = wait_rc(p1), r2 = wait_rc(p2);
    assert_true((r1 == 0 || r1 == 5) && (r2 == 0 || r2 == 5));
    assert_true(r1 == 0 || r2 == 0);
    PGresult *r = PQexec(conn, "SELECT run_id FROM pricing_runs WHERE config LIKE '%\"window_days\":37,%'");
    assert_int_equal(PQntuples(r), 1);
    char id2[64];
    snprintf(id2, sizeof id2, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'", id2), 1);
    assert_int_equal(q1("SELECT count(*) FROM pricing_run_attempts WHERE run_id = $1 AND status <> 'finished'", id2), 0);
    assert_int_equal(q1("SELECT count(*) FROM pricing_run_attempts WHERE run_id = $1", id2), (r1 == 0) + (r2 == 0));
    assert_int_equal(q1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id2), NPROD);
}

/* ---- publish ---------------------------------------------------------------------------------- */
/* `dir` (a path, followed through links) holds a complete report. */
static int complete_report(const char *dir) {
    static const char *files[] = {"report.html", "report.json", "recommendations.json"};
    for (int i = 0; i < 3; i++) {
        char p[1500];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) return 0;
    }
    return 1;
}

static void die_at_step(void *ctx, int step) {
    if (step == *(int *)ctx) raise(SIGKILL);
}

static void test_kill_between_publish_steps(void **state) {
    (void)state;
    char real[1200], latest[1200];
    snprintf(latest, sizeof latest, "%s/latest", out_dir);
    exp_nightly_cfg cfg = small_cfg(conn, 38);
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("%s", eng_err_msg());
    char id[64];
    snprintf(id, sizeof id, "%s", s.run_id);
    exp_nightly_summary_free(&s);
    snprintf(real, sizeof real, "%s/%s", out_dir, id);
    assert_true(complete_report(real));
    struct stat sb;
    assert_int_equal(lstat(real, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));

    for (int step = 1; step <= 3; step++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            PGconn *c = NULL;
            if (db_connect_dbname(&c, NULL, tdb_name) != ENG_OK) _exit(90);
            exp_nightly_cfg cc = small_cfg(c, 38);
            cc.publish_hook = die_at_step;
            cc.hook_ctx = &step;
            exp_nightly_summary cs;
            exp_nightly_run(&cc, &cs);
            _exit(91); /* not reached: killed in publish */
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) fail_msg("step %d: child status 0x%x", step, status);
        /* the push committed before the publish: the run is finished, and both names lead to a
         * complete report (the previous one or the new one) */
        assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'", id), 1);
        if (!complete_report(real)) fail_msg("killed after publish step %d: %s is not a complete report", step, real);
        if (!complete_report(latest)) fail_msg("killed after publish step %d: latest is not a complete report", step);
    }
    /* a clean run afterwards leaves one attempt folder of the name, pointed at by both links */
    st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("%s", eng_err_msg());
    assert_true(complete_report(real) && complete_report(latest));
    char target[256], ltarget[256];
    ssize_t n1 = readlink(real, target, sizeof target - 1), n2 = readlink(latest, ltarget, sizeof ltarget - 1);
    assert_true(n1 > 0 && n2 > 0);
    target[n1] = ltarget[n2] = '\0';
    assert_string_equal(target, ltarget);
    char want[128];
    snprintf(want, sizeof want, "%s.attempt-%d", id, s.attempt);
    assert_string_equal(target, want);
    assert_int_equal(s.attempt, 5); /* 1 + three killed + this one */
    DIR *d = opendir(out_dir);
    assert_non_null(d);
    int folders = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, id, strlen(id)) && strstr(e->d_name, ".attempt-")) folders++;
    closedir(d);
    assert_int_equal(folders, 1);
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

static void put_file(const char *dir, const char *name, const char *text) {
    char p[1500];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_publish_takes_over_a_legacy_folder(void **state) {
    (void)state;
    char dir[600], staging[700], real[700], p[800];
    snprintf(dir, sizeof dir, "%s/faults_legacy_%d", test_tmpdir(), (int)getpid());
    snprintf(real, sizeof real, "%s/run1", dir);
    snprintf(staging, sizeof staging, "%s/.run1.tmp.%d", dir, (int)getpid());
    assert_int_equal(eng_mkdir_p(real), 0); /* the layout before attempt folders */
    put_file(real, "report.html", "old");
    assert_int_equal(eng_mkdir_p(staging), 0);
    put_file(staging, "report.html", "new");
    char fin[1300];
    assert_int_equal(exp_pub_publish(dir, staging, "run1", 3, NULL, NULL, fin, sizeof fin), 0);
    assert_string_equal(fin, real);
    struct stat sb;
    assert_int_equal(lstat(real, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    snprintf(p, sizeof p, "%s/report.html", real);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char buf[8] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "new");
    snprintf(p, sizeof p, "%s/run1.attempt-3", dir);
    assert_int_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/run1.attempt-0", dir); /* the legacy folder went with step 4 */
    assert_int_not_equal(stat(p, &sb), 0);
    assert_int_equal(stat(staging, &sb) == 0, 0);
    /* a staging folder that cannot be renamed: an error, links untouched */
    assert_int_equal(exp_pub_publish(dir, staging, "run1", 4, NULL, NULL, fin, sizeof fin), ENG_EIO);
    snprintf(p, sizeof p, "%s/report.html", real);
    assert_int_equal(stat(p, &sb), 0);
    eng_rm_rf(dir);
}

/* ---- a failed re-run, an abandoned run, the rejected-row count -------------------------------- */
static int refuse_commit(void *ctx, int attempt) {
    (void)ctx, (void)attempt;
    return 1;
}

static void test_failed_rerun_keeps_finished(void **state) {
    (void)state;
    exp_nightly_cfg cfg = small_cfg(conn, 39);
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("%s", eng_err_msg());
    const char *id = s.run_id;
    PGresult *before = PQexecParams(conn,
                                    "SELECT (SELECT string_agg(r::text, ';' ORDER BY run_id) FROM pricing_runs r WHERE run_id = $1),"
                                    " (SELECT string_agg(p::text, ';' ORDER BY product_id) FROM price_recommendations p"
                                    "  WHERE run_id = $1),"
                                    " (SELECT string_agg(j::text, ';' ORDER BY row_key, reason) FROM rejected_rows j"
                                    "  WHERE run_id = $1)",
                                    1, NULL, &id, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(before), PGRES_TUPLES_OK);
    /* the re-run fails at its push: the finished row, its recommendations and its rejected rows
     * are exactly as they were; the attempt says why */
    exp_nightly_summary s2;
    cfg.before_commit = refuse_commit;
    st = exp_nightly_run(&cfg, &s2);
    assert_int_not_equal(st, ENG_OK);
    assert_int_equal(s2.attempt, 2);
    PGresult *after = PQexecParams(conn,
                                   "SELECT (SELECT string_agg(r::text, ';' ORDER BY run_id) FROM pricing_runs r WHERE run_id = $1),"
                                   " (SELECT string_agg(p::text, ';' ORDER BY product_id) FROM price_recommendations p"
                                   "  WHERE run_id = $1),"
                                   " (SELECT string_agg(j::text, ';' ORDER BY row_key, reason) FROM rejected_rows j"
                                   "  WHERE run_id = $1)",
                                   1, NULL, &id, NULL, NULL, 0);
    for (int col = 0; col < 3; col++) {
        assert_false(PQgetisnull(before, 0, col) && col < 2);
        assert_string_equal(PQgetvalue(after, 0, col), PQgetvalue(before, 0, col));
    }
    PQclear(before);
    PQclear(after);
    assert_int_equal(q1("SELECT count(*) FROM pricing_run_attempts WHERE run_id = $1 AND attempt = 2 AND status = 'failed'"
                        " AND message LIKE '%before-commit%'",
                        id),
                     1);
    exp_nightly_summary_free(&s);
    exp_nightly_summary_free(&s2);
    exp_compare_cfg_free(&cfg.compare);
}

static void test_abandoned_run_reported(void **state) {
    (void)state;
    /* a run killed with SIGKILL inside its push leaves its row 'running' */
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    gate g = {ready[1], go[0]};
    pid_t a = fork_run(29, &g);
    char b = 0;
    assert_int_equal(read(ready[0], &b, 1), 1);
    assert_int_equal(kill(a, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(a, &status, 0), a);
    /* its lock is released by the server once the session ends */
    for (int i = 0; i < 100 && q1("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'rlprice nightly pid %'",
                                  NULL) > 0; i++)
        usleep(50000);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE status = 'running'", NULL), 1);
    /* the next run (another run id) reports it as abandoned and marks it failed */
    exp_nightly_cfg cfg = small_cfg(conn, 28);
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("%s", eng_err_msg());
    assert_int_equal(s.n_abandoned, 1);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE status = 'running'", NULL), 0);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE status = 'failed' AND summary LIKE 'abandoned:%'", NULL), 1);
    assert_int_equal(q1("SELECT count(*) FROM pricing_run_attempts WHERE status = 'abandoned'", NULL), 1);
    close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

static void test_rejected_row_count(void **state) {
    (void)state;
    exp_nightly_cfg cfg = small_cfg(conn, 27);
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("%s", eng_err_msg());
    const char *id = s.run_id;
    /* stored: negative_units once, duplicate_key once (for its two copies) */
    assert_int_equal(q1("SELECT count(*) FROM rejected_rows WHERE run_id = $1", id), 2);
    assert_int_equal(q1("SELECT count(*) FROM rejected_rows WHERE run_id = $1 AND reason = 'duplicate_key'"
                        " AND row_key = 'SIM000002|2024-01-25'",
                        id),
                     1);
    assert_int_equal(s.n_rejected_rows, 2);
    assert_int_equal(q1("SELECT n_rejected_rows FROM pricing_runs WHERE run_id = $1", id), 2);
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

static void test_rejects_stored_twice_at_once(void **state) {
    (void)state;
    /* the old race: two writers of one run's rejected rows at the same time (DELETE, then COPY) */
    db_history *h = NULL;
    db_load_report rep;
    db_load_opts o;
    db_load_opts_default(&o);
    assert_int_equal(db_load_history(conn, &o, &h, &rep), 0);
    assert_int_equal(rep.n_rejects, 2);
    tdb_exec(conn, "BEGIN", 0, NULL);
    assert_int_equal(db_load_store_rejects(conn, "race-run", &rep), 0); /* inside our open transaction */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        PGconn *c = NULL;
        if (db_connect_dbname(&c, NULL, tdb_name) != ENG_OK) _exit(90);
        PQclear(PQexec(c, "SET application_name = 'rejects race'"));
        int st = db_load_store_rejects(c, "race-run", &rep);
        if (st) fprintf(stderr, "second writer: %s\n", eng_err_msg());
        _exit(st ? 1 : 0);
    }
    /* the second writer waits for our transaction (a lock wait, not an error); watched from a
     * third session, since our transaction sees one snapshot of the statistics */
    PGconn *watch = own_conn();
    int waited = 0;
    for (int i = 0; i < 200 && !waited; i++) {
        waited = tdb_long(watch, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rejects race'"
                                 " AND wait_event_type = 'Lock'", 0, NULL) == 1;
        if (!waited) usleep(20000);
    }
    db_disconnect(watch);
    if (!waited) tdb_exec(conn, "ROLLBACK", 0, NULL);
    assert_true(waited);
    tdb_exec(conn, "COMMIT", 0, NULL);
    assert_int_equal(wait_rc(pid), 0);
    assert_int_equal(q1("SELECT count(*) FROM rejected_rows WHERE run_id = $1", "race-run"), 2);
    db_history_free(h);
    db_load_report_free(&rep);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_terminated_mid_load), cmocka_unit_test(test_backend_terminated_during_training),
        cmocka_unit_test(test_backend_terminated_mid_push), cmocka_unit_test(test_every_backend_gone),
        cmocka_unit_test(test_lock_connection_lost),        cmocka_unit_test(test_two_runs_same_id),
        cmocka_unit_test(test_kill_between_publish_steps),  cmocka_unit_test(test_publish_takes_over_a_legacy_folder),
        cmocka_unit_test(test_failed_rerun_keeps_finished),
        cmocka_unit_test(test_abandoned_run_reported),      cmocka_unit_test(test_rejected_row_count),
        cmocka_unit_test(test_rejects_stored_twice_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
