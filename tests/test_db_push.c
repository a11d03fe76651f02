/* tests/test_db_push.c - the push: all-or-nothing under SIGKILL before COMMIT and when the server
 * ends the pushing session before COMMIT, re-run replaces,
 * retry on serialization failure / deadlock, other errors not retried, odd ids, run bookkeeping. */
#include "test_db.h"

#include <signal.h>
#include <sys/wait.h>

#include "db_load.h"
#include "db_push.h"

static PGconn *conn;

static int setup(void **state) {
    (void)state;
    conn = tdb_create("push");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

static char ids[1000][32];

static db_recommendation *make_recs(size_t n, double price) {
    db_recommendation *r = calloc(n, sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "P%04zu", i);
        r[i] = (db_recommendation){ids[i], 19800, price + (double)i * 0.01, price, "dqn", "explore",
                                   NAN, NAN, NAN, 0, 0, NULL, NULL, 1, NAN};
    }
    return r;
}

static long run_rows(const char *run) {
    const char *v[1] = {run};
    return tdb_long(conn, "SELECT count(*) FROM price_recommendations WHERE run_id = $1", 1, v);
}

static int block_forever(void *ctx, int attempt) {
    (void)attempt;
    int fd = *(int *)ctx;
    if (write(fd, "x", 1) != 1) _exit(3);
    for (;;) pause();
    return 0;
}

static void test_kill_before_commit(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* child: own connection, push 1000 rows, block at the pre-commit hook */
        close(fds[0]);
        PGconn *c = NULL;
        if (db_connect_dbname(&c, NULL, tdb_name) != ENG_OK) _exit(2);
        db_recommendation *recs = make_recs(1000, 2.0);
        db_run run = {"killed-run", 19800, "finished", "{}", 1000, 1000, 0, 0, NULL, 0, 0, NAN, NAN};
        db_push_opts o;
        db_push_opts_default(&o);
        o.before_commit = block_forever;
        o.ctx = &fds[1];
        db_push(c, &run, recs, 1000, &o);
        _exit(4);
    }
    close(fds[1]);
    char b = 0;
    assert_int_equal(read(fds[0], &b, 1), 1); /* the child is inside the transaction, pre-COMMIT */
    close(fds[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(run_rows("killed-run"), 0);
    const char *v[1] = {"killed-run"};
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1", 1, v), 0);
}

/* The server side dies mid-push: the pre-commit hook has the test's other connection terminate
 * the pushing backend (pg_terminate_backend), then waits until that session is gone. */
typedef struct {
    PGconn *killer;
    int pid;
} term_ctx;

static int terminate_own_backend(void *ctx, int attempt) {
    (void)attempt;
    term_ctx *t = ctx;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", t->pid);
    const char *v[1] = {pid};
    assert_int_equal(tdb_long(t->killer, "SELECT pg_terminate_backend($1::int)::int", 1, v), 1);
    for (int i = 0; i < 200; i++) {
        if (tdb_long(t->killer, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, v) == 0) return 0;
        usleep(25000);
    }
    fail_msg("backend %d still alive 5 s after pg_terminate_backend", t->pid);
    return 0;
}

static void test_server_ends_session_before_commit(void **state) {
    (void)state;
    PGconn *c = NULL;
    assert_int_equal(db_connect_dbname(&c, NULL, tdb_name), ENG_OK);
    term_ctx t = {conn, PQbackendPID(c)};
    db_recommendation *recs = make_recs(1000, 3.0);
    db_run run = {"terminated-run", 19800, "finished", "{}", 1000, 1000, 0, 0, NULL, 0, 0, NAN, NAN};
    db_push_opts o;
    db_push_opts_default(&o);
    o.before_commit = terminate_own_backend;
    o.ctx = &t;
    int st = db_push(c, &run, recs, 1000, &o);
    assert_int_equal(st, ENG_EDB);
    assert_true(strlen(eng_err_msg()) > 0);
    assert_int_equal(run_rows("terminated-run"), 0);
    const char *v[1] = {"terminated-run"};
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1", 1, v), 0);
    free(recs);
    db_disconnect(c);
}

static void test_rerun_replaces(void **state) {
    (void)state;
    db_recommendation *recs = make_recs(1000, 3.0);
    db_run run = {"run-2024-01-01", 19723, NULL, "{\"seed\":1}", 1000, 900, 100, 0, "first", 0, 0, NAN, NAN};
    assert_int_equal(db_push(conn, &run, recs, 1000, NULL), ENG_OK);
    assert_int_equal(run_rows("run-2024-01-01"), 1000);
    assert_int_equal(db_push(conn, &run, recs, 1000, NULL), ENG_OK); /* same run again */
    assert_int_equal(run_rows("run-2024-01-01"), 1000);
    run.summary = "second";
    assert_int_equal(db_push(conn, &run, recs + 500, 500, NULL), ENG_OK); /* fewer rows: stale ones go */
    assert_int_equal(run_rows("run-2024-01-01"), 500);
    const char *v[2] = {"run-2024-01-01", "P0000"};
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND product_id = $2",
                              2, v), 0);
    v[1] = "P0999";
    assert_int_equal(tdb_long(conn, "SELECT round(price * 100) FROM price_recommendations WHERE run_id = $1"
                                    " AND product_id = $2", 2, v), 1299);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'"
                                    " AND summary = 'second' AND finished_at IS NOT NULL AND n_held = 100", 1, v), 1);
    /* a duplicate product inside one push is an error and leaves the earlier rows untouched */
    recs[1].product_id = recs[0].product_id;
    assert_int_equal(db_push(conn, &run, recs, 1000, NULL), ENG_EDB);
    assert_non_null(strstr(eng_err_msg(), "duplicate key"));
    assert_int_equal(run_rows("run-2024-01-01"), 500);
    free(recs);
}

/* The trigger raises `code` for the first `n` inserts into pricing_runs (sequences ignore rollback). */
static void arm_failures(const char *code, const char *n) {
    const char *v[2] = {code, n};
    tdb_exec(conn, "SELECT set_config('rlprice_test.code', $1, false), set_config('rlprice_test.n', $2, false)", 2, v);
    tdb_exec(conn, "CREATE SEQUENCE IF NOT EXISTS fail_seq", 0, NULL);
    tdb_exec(conn, "SELECT setval('fail_seq', 1, false)", 0, NULL);
    PGresult *r = PQexec(conn,
        "CREATE OR REPLACE FUNCTION fail_first() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
        "  IF nextval('fail_seq') <= current_setting('rlprice_test.n')::int THEN"
        "    RAISE EXCEPTION 'simulated failure %', current_setting('rlprice_test.code')"
        "      USING ERRCODE = current_setting('rlprice_test.code'); END IF; RETURN NEW; END $f$;"
        "CREATE OR REPLACE TRIGGER fail_first BEFORE INSERT ON pricing_runs FOR EACH ROW EXECUTE FUNCTION fail_first();");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("trigger: %s", PQerrorMessage(conn));
    PQclear(r);
}

static void test_retry(void **state) {
    (void)state;
    db_recommendation *recs = make_recs(10, 1.0);
    db_run run = {"retry-run", 19800, "finished", NULL, -1, -1, -1, -1, NULL, 0, 0, NAN, NAN};
    int attempts = 0;
    db_push_opts o;
    db_push_opts_default(&o);
    o.backoff_s = 0.001;
    o.attempts_out = &attempts;
    arm_failures("40001", "2"); /* serialization failure twice, then success */
    assert_int_equal(db_push(conn, &run, recs, 10, &o), ENG_OK);
    assert_int_equal(attempts, 3);
    assert_int_equal(run_rows("retry-run"), 10);
    run.run_id = "deadlock-run";
    arm_failures("40P01", "1");
    assert_int_equal(db_push(conn, &run, recs, 10, &o), ENG_OK);
    assert_int_equal(attempts, 2);
    run.run_id = "bounded-run"; /* more failures than retries: gives up, nothing written */
    o.max_retries = 2;
    arm_failures("40001", "100");
    assert_int_equal(db_push(conn, &run, recs, 10, &o), ENG_EDB);
    assert_int_equal(attempts, 3);
    assert_int_equal(run_rows("bounded-run"), 0);
    run.run_id = "other-error-run"; /* other errors: no retry, the server's message */
    arm_failures("22012", "1");
    assert_int_equal(db_push(conn, &run, recs, 10, &o), ENG_EDB);
    assert_int_equal(attempts, 1);
    assert_non_null(strstr(eng_err_msg(), "simulated failure 22012"));
    tdb_exec(conn, "DROP TRIGGER fail_first ON pricing_runs", 0, NULL);
    free(recs);
}

static void test_odd_id_and_bookkeeping(void **state) {
    (void)state;
    const char *weird = "q'u\"o;te\\back\ttab\nnl \\N";
    db_recommendation rec = {weird, 19800, 4.25, NAN, "linucb", "a\tb\\c", 0.5, 0.1, 0.9, 0, 0, NULL, NULL, 1, NAN};
    assert_int_equal(db_run_open(conn, "odd-run", 19800, "{\"k\":\"v\"}"), ENG_OK);
    const char *v[2] = {"odd-run", weird};
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'running'", 1, v), 1);
    db_run run = {"odd-run", 19800, "running", "{\"k\":\"v\"}", 1, 1, 0, 0, NULL, 0, 0, NAN, NAN};
    assert_int_equal(db_push(conn, &run, &rec, 1, NULL), ENG_OK);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND product_id = $2"
                                    " AND incumbent_price IS NULL AND reason = E'a\\tb\\\\c' AND price = 4.25", 2, v), 1);
    run.summary = "done";
    assert_int_equal(db_run_finish(conn, &run), ENG_OK);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'"
                                    " AND summary = 'done' AND finished_at >= started_at", 1, v), 1);
    /* a failure after the run finished (a failed re-run) leaves the finished row as it was */
    assert_int_equal(db_run_fail(conn, "odd-run", "boom"), ENG_OK);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'"
                                    " AND summary = 'done'", 1, v), 1);
    /* and so does opening it again: only the next push replaces it */
    assert_int_equal(db_run_open(conn, "odd-run", 19800, "{\"k\":\"v2\"}"), ENG_OK);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'"
                                    " AND summary = 'done' AND n_products = 1", 1, v), 1);
    assert_int_equal(db_run_open(conn, "odd-run-2", 19800, NULL), ENG_OK);
    assert_int_equal(db_run_fail(conn, "odd-run-2", "boom"), ENG_OK);
    const char *v2[1] = {"odd-run-2"};
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'failed'"
                                    " AND summary = 'boom'", 1, v2), 1);
    assert_int_equal(db_run_fail(conn, "no-such-run", "x"), ENG_ENOTFOUND);
    /* bad records are refused before any SQL */
    rec.price = -1;
    assert_int_equal(db_push(conn, &run, &rec, 1, NULL), ENG_EINVAL);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM price_recommendations WHERE run_id = $1", 1, v), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_before_commit), cmocka_unit_test(test_server_ends_session_before_commit),
        cmocka_unit_test(test_rerun_replaces),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_odd_id_and_bookkeeping),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
