/* tests/test_exp_nightly.c - the nightly run end to end against a real PostgreSQL database:
 * rows in pricing_runs / price_recommendations / rejected_rows, guardrails on pushed prices,
 * report files, re-run without duplicates, SIGKILL during the push (all-or-nothing, clean
 * re-run), unreachable database (exit 3, nothing written), a failing product (exit 4, listed),
 * dry run (no database writes), usage errors, dates and run ids. */
#include "test_nightly.h"
#include "rlp_cmd.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "db_store.h"
#include "env_sim.h"
#include "eng_date.h"
#include "exp_nightly.h"

#define DAY0 19723 /* 2024-01-01 */
#define NDAYS 40
#define NPROD 6

static PGconn *conn;
static char out_dir[512], ckpt_dir[512];

static int setup(void **state) {
    (void)state;
    conn = tdb_create("nightly");
    tnl_store_sim(conn, NPROD, NDAYS, 1, DAY0, 7);
    /* a bad row for the quarantine, and tight change limits on two products */
    tdb_exec(conn, "UPDATE sales SET units = -3 WHERE product_id = 'SIM000001' AND day = DATE '2024-01-20'", 0, NULL);
    tdb_exec(conn, "UPDATE products SET max_change_pct = 3 WHERE product_id IN ('SIM000002', 'SIM000003')", 0, NULL);
    snprintf(out_dir, sizeof out_dir, "%s/nightly_out_%d", test_tmpdir(), (int)getpid());
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/nightly_ckpt_%d", test_tmpdir(), (int)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

/* Small budgets so a run takes about a second. */
static exp_nightly_cfg small_cfg(PGconn *c) {
    return tnl_small_cfg(c, DAY0 + NDAYS, NDAYS, out_dir, ckpt_dir, 50);
}

static long count1(const char *sql, const char *arg) {
    const char *v[1] = {arg};
    return tdb_long(conn, sql, arg ? 1 : 0, arg ? v : NULL);
}

static int file_exists(const char *dir, const char *name) {
    char p[1500];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
}

/* Every pushed price of the run lies inside the product's guardrails. */
static void check_guardrails(const char *run_id) {
    const char *v[1] = {run_id};
    PGresult *r = PQexecParams(conn,
                               "SELECT r.price, r.incumbent_price, p.min_price, p.max_price, p.max_change_pct, r.reason,"
                               " r.agent, r.ci_low FROM price_recommendations r JOIN products p USING (product_id)"
                               " WHERE r.run_id = $1",
                               1, NULL, v, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) > 0);
    for (int i = 0; i < PQntuples(r); i++) {
        double price = atof(PQgetvalue(r, i, 0)), inc = atof(PQgetvalue(r, i, 1));
        assert_true(price > 0);
        if (!PQgetisnull(r, i, 2)) assert_true(price >= atof(PQgetvalue(r, i, 2)) - 1e-9);
        if (!PQgetisnull(r, i, 3)) assert_true(price <= atof(PQgetvalue(r, i, 3)) + 1e-9);
        if (!PQgetisnull(r, i, 4)) {
            double pct = atof(PQgetvalue(r, i, 4));
            assert_true(price <= inc * (1 + pct / 100) + 1e-9 && price >= inc * (1 - pct / 100) - 1e-9);
        }
        const char *reason = PQgetvalue(r, i, 5), *agent = PQgetvalue(r, i, 6);
        if (!strncmp(reason, "deploy:", 7)) {
            /* deployed only when the uplift's lower bound is above zero */
            assert_false(PQgetisnull(r, i, 7));
            assert_true(atof(PQgetvalue(r, i, 7)) > 0);
            assert_true(strncmp(reason + 7, agent, strlen(agent)) == 0);
        } else {
            assert_true(!strncmp(reason, "hold:", 5));
            assert_string_equal(agent, "incumbent");
        }
    }
    PQclear(r);
}

static void test_run_then_rerun(void **state) {
    (void)state;
    exp_nightly_cfg cfg = small_cfg(conn);
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("nightly: %s", eng_err_msg());
    assert_int_equal(exp_nightly_exit_code(st, &s), 0);
    assert_int_equal(s.n_products, NPROD);
    assert_int_equal(s.n_up + s.n_down + s.n_same + s.n_held, NPROD);
    assert_int_equal(s.n_failed, 0);
    assert_string_equal(s.run_date, "2024-02-10");
    assert_true(!strncmp(s.run_id, "2024-02-10-", 11));
    const char *id = s.run_id;
    assert_int_equal(count1("SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'"
                            " AND run_date = DATE '2024-02-10' AND n_products = 6 AND finished_at IS NOT NULL",
                            id),
                     1);
    assert_int_equal(count1("SELECT n_repriced FROM pricing_runs WHERE run_id = $1", id), s.n_up + s.n_down);
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1"
                            " AND effective_day = DATE '2024-02-10'",
                            id),
                     NPROD);
    assert_int_equal(count1("SELECT count(*) FROM rejected_rows WHERE run_id = $1 AND table_name = 'sales'"
                            " AND row_key = 'SIM000001|2024-01-20' AND reason = 'negative_units'",
                            id),
                     1);
    assert_int_equal(count1("SELECT n_rejected_rows FROM pricing_runs WHERE run_id = $1", id), 1);
    check_guardrails(id);
    assert_true(file_exists(s.report_dir, "report.html"));
    assert_true(file_exists(s.report_dir, "report.json"));
    assert_true(file_exists(s.report_dir, "recommendations.json"));
    char latest[600];
    snprintf(latest, sizeof latest, "%s/latest", out_dir);
    assert_true(file_exists(latest, "report.html"));

    /* the same date and configuration again: same run id, rows replaced, nothing duplicated */
    exp_nightly_summary s2;
    st = exp_nightly_run(&cfg, &s2);
    if (st) fail_msg("nightly again: %s", eng_err_msg());
    assert_string_equal(s2.run_id, s.run_id);
    assert_int_equal(s2.warm_loaded, 0); /* a retry never starts from its own date's checkpoints */
    assert_int_equal(count1("SELECT count(*) FROM pricing_runs WHERE run_id = $1", id), 1);
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id), NPROD);
    assert_int_equal(count1("SELECT count(*) FROM rejected_rows WHERE run_id = $1", id), 1);
    assert_int_equal(count1("SELECT count(*) FROM (SELECT product_id FROM price_recommendations WHERE run_id = $1"
                            " GROUP BY product_id HAVING count(*) > 1) d",
                            id),
                     0);
    assert_true(file_exists(s2.report_dir, "report.html"));
    /* another configuration is another run */
    cfg.window_days = NDAYS - 1;
    exp_nightly_summary s3;
    st = exp_nightly_run(&cfg, &s3);
    if (st) fail_msg("nightly other config: %s", eng_err_msg());
    assert_string_not_equal(s3.run_id, s.run_id);
    exp_nightly_summary_free(&s);
    exp_nightly_summary_free(&s2);
    exp_nightly_summary_free(&s3);
    exp_compare_cfg_free(&cfg.compare);
}

typedef struct block_ctx { int fd; } block_ctx;

static int block_forever(void *ctx, int attempt) {
    (void)attempt;
    if (write(((block_ctx *)ctx)->fd, "x", 1) != 1) _exit(3);
    for (;;) pause();
    return 0;
}

static int count_staging(void) {
    DIR *d = opendir(out_dir);
    int n = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void test_kill_during_push(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        PGconn *c = NULL;
        if (db_connect_dbname(&c, NULL, tdb_name) != ENG_OK) _exit(2);
        exp_nightly_cfg cfg = small_cfg(c);
        cfg.window_days = 30; /* a run id of its own */
        block_ctx bc = {fds[1]};
        cfg.before_commit = block_forever;
        cfg.hook_ctx = &bc;
        exp_nightly_summary s;
        exp_nightly_run(&cfg, &s);
        _exit(5);
    }
    close(fds[1]);
    char b = 0;
    assert_int_equal(read(fds[0], &b, 1), 1); /* the child is inside the push, before COMMIT */
    close(fds[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* the run was opened (status running) but nothing of its push is there */
    PGresult *r = PQexec(conn, "SELECT run_id FROM pricing_runs WHERE status = 'running'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    char id[64];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id), 0);
    char real[1200];
    struct stat sb;
    snprintf(real, sizeof real, "%s/%s", out_dir, id);
    assert_int_not_equal(stat(real, &sb), 0); /* no report under the real name */
    assert_int_equal(count_staging(), 1);     /* the killed run's staging folder */

    /* re-run: finishes cleanly, replaces the run, removes the dead run's staging folder */
    exp_nightly_cfg cfg = small_cfg(conn);
    cfg.window_days = 30;
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("re-run after kill: %s", eng_err_msg());
    assert_string_equal(s.run_id, id);
    assert_int_equal(count1("SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'", id), 1);
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id), NPROD);
    assert_int_equal(stat(real, &sb), 0);
    assert_int_equal(count_staging(), 0);
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

static void test_database_unreachable(void **state) {
    (void)state;
    char nodb[600], out2[600], conninfo[700];
    snprintf(nodb, sizeof nodb, "%s/no_server_here", test_tmpdir());
    mkdir(nodb, 0700);
    snprintf(conninfo, sizeof conninfo, "host=%s dbname=rlprice connect_timeout=2", nodb);
    snprintf(out2, sizeof out2, "%s/nightly_unreachable", test_tmpdir());
    exp_nightly_cfg cfg = small_cfg(NULL);
    cfg.conninfo = conninfo;
    cfg.out_dir = out2;
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    assert_int_equal(st, ENG_EDB);
    assert_int_equal(exp_nightly_exit_code(st, &s), 3);
    struct stat sb;
    assert_int_not_equal(stat(out2, &sb), 0); /* not even the report folder was created */
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
    /* the command says the same with its exit code */
    char *argv[] = {"nightly", "--db", conninfo, "--date", "2024-02-10", "--out", out2, "--quiet", NULL};
    assert_int_equal(exp_cmd_nightly(8, argv), 3);
    assert_int_not_equal(stat(out2, &sb), 0);
}

static void test_product_failure(void **state) {
    (void)state;
    exp_nightly_cfg cfg = small_cfg(conn);
    cfg.window_days = 35;
    cfg.fault_product = "SIM000004";
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("nightly: %s", eng_err_msg());
    assert_int_equal(s.n_failed, 1);
    assert_string_equal(s.failed[0], "SIM000004");
    assert_int_equal(s.n_hold[EXP_HOLD_FAILED], 1);
    assert_int_equal(exp_nightly_exit_code(st, &s), 4);
    /* the night went on: every product has its row, the failed one held at its incumbent */
    const char *id = s.run_id;
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id), NPROD);
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND product_id = 'SIM000004'"
                            " AND agent = 'incumbent' AND reason LIKE 'hold:failed%'",
                            id),
                     1);
    assert_int_equal(count1("SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND status = 'finished'"
                            " AND summary LIKE '%FAILED 1: SIM000004%'",
                            id),
                     1);
    check_guardrails(id);
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

static void test_dry_run(void **state) {
    (void)state;
    long runs = count1("SELECT count(*) FROM pricing_runs", NULL);
    long recs = count1("SELECT count(*) FROM price_recommendations", NULL);
    long rej = count1("SELECT count(*) FROM rejected_rows", NULL);
    exp_nightly_cfg cfg = small_cfg(conn);
    cfg.window_days = 33;
    cfg.dry_run = 1;
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("dry run: %s", eng_err_msg());
    assert_int_equal(count1("SELECT count(*) FROM pricing_runs", NULL), runs);
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations", NULL), recs);
    assert_int_equal(count1("SELECT count(*) FROM rejected_rows", NULL), rej);
    assert_non_null(strstr(s.report_dir, "dry-run-"));
    assert_true(file_exists(s.report_dir, "recommendations.json"));
    assert_true(file_exists(s.report_dir, "report.html"));
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

static void test_usage_errors(void **state) {
    (void)state;
    char *a1[] = {"nightly", "--date", "2024-02-30", NULL};
    assert_int_equal(exp_cmd_nightly(3, a1), 2);
    char *a2[] = {"nightly", "--no-such-flag=3", NULL};
    assert_int_equal(exp_cmd_nightly(2, a2), 2);
    char *a3[] = {"nightly", "--device", "tpu", NULL};
    assert_int_equal(exp_cmd_nightly(3, a3), 2);
    char *a4[] = {"nightly", "--date", NULL};
    assert_int_equal(exp_cmd_nightly(2, a4), 2);
}

static void test_products_and_dates(void **state) {
    (void)state;
    char **l = NULL;
    int n = 0;
    assert_int_equal(exp_nightly_resolve_products(conn, "SIM00000[12],SIM000005", &l, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(l[0], "SIM000001");
    assert_string_equal(l[1], "SIM000002");
    assert_string_equal(l[2], "SIM000005");
    exp_nightly_free_list(l, n);
    assert_int_equal(exp_nightly_resolve_products(conn, "NOPE*", &l, &n), ENG_EINVAL);
    assert_null(l);
    int32_t d = 0;
    assert_int_equal(eng_date_parse("1992-10-08", &d), 0);
    char b[16];
    eng_date_format(d, b);
    assert_string_equal(b, "1992-10-08");
    assert_int_equal(eng_date_parse("2024-01-01", &d), 0);
    assert_int_equal(d, DAY0);
    assert_int_equal(eng_date_parse("2023-02-29", &d), ENG_EINVAL);
    assert_int_equal(eng_date_parse("2024-1-1x", &d), ENG_EINVAL);
    char id1[64], id2[64], id3[64];
    exp_nightly_run_id(DAY0, "a = 1\n", id1);
    exp_nightly_run_id(DAY0, "a = 1\n", id2);
    exp_nightly_run_id(DAY0, "a = 2\n", id3);
    assert_string_equal(id1, id2);
    assert_string_not_equal(id1, id3);
    assert_int_equal(strlen(id1), 10 + 1 + 16);
    /* the hashed text keeps its last line with every option on (it once had a fixed 512 bytes
     * for the nightly's lines and cut the exploration's tail off), and a setting at its end
     * still changes the run id */
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.gate_standing = 10, cfg.gate_model_dir = 3, cfg.gate_cut_standing = 4, cfg.gate_plan = 1, cfg.gate_min_gain = 0.01;
    cfg.explore.share = 1, cfg.explore.mode = EXP_EXPLORE_THOMPSON, cfg.explore.temper = 0.25f;
    cfg.explore.skip_carryover = 1, cfg.explore.carryover_share = 0.2f, cfg.explore.held_only = 1, cfg.explore.no_lag = 1;
    char *t1 = exp_nightly_config_text(&cfg);
    assert_non_null(t1);
    assert_non_null(strstr(t1, "nightly.explore.held_only = 1\n"));
    assert_non_null(strstr(t1, "nightly.explore.no_lag = 1\n"));
    cfg.explore.no_lag = 0;
    char *t2 = exp_nightly_config_text(&cfg);
    assert_non_null(t2);
    cfg.explore.no_lag = 1, cfg.explore.held_only = 0; /* and the one before it */
    char *t3 = exp_nightly_config_text(&cfg);
    assert_non_null(t3);
    assert_null(strstr(t3, "nightly.explore.held_only")); /* printed only when on */
    exp_nightly_run_id(DAY0, t1, id1);
    exp_nightly_run_id(DAY0, t2, id2);
    exp_nightly_run_id(DAY0, t3, id3);
    assert_string_not_equal(id1, id2);
    assert_string_not_equal(id1, id3);
    free(t1);
    free(t2);
    free(t3);
    exp_compare_cfg_free(&cfg.compare);
}


/* ---- the decision rule on hand-made results ---------------------------------------------- */
/* Agent a's shrunk paired uplift over the incumbent: estimate and interval; usable = 0 makes it
 * unavailable as when the pooled evidence is unusable. */
static void set_uplift(exp_product_result *pr, exp_agent a, double est, double lo, double hi, int usable) {
    ope_value *v = &pr->uplift_shrunk[a];
    memset(v, 0, sizeof *v);
    v->available = usable;
    v->estimate = usable ? est : NAN, v->ci_low = usable ? lo : NAN, v->ci_high = usable ? hi : NAN;
    pr->uplift[a] = *v;
}

static void fresh_product(exp_product_result *pr) {
    memset(pr, 0, sizeof *pr);
    pr->index = 0;
    pr->product_id = "P1";
    pr->status = EXP_OK;
    pr->incumbent_price = 10.0;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        ope_config oc = ope_config_default();
        ope_result_init(&pr->immediate[a], &oc, 50); /* 50 evaluation rows */
        pr->price[a] = 10.0;
        set_uplift(pr, (exp_agent)a, 0, 0, 0, 0);
    }
}

static void test_decision_rule(void **state) {
    (void)state;
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 1, 10, DAY0, 1), 0);
    h->base_price[0] = 10, h->min_price[0] = 9, h->max_price[0] = 12, h->max_change_pct[0] = 5;
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.gate_mode = EXP_GATE_OPE; /* the OPE rule (the demand-model gate: tests/test_exp_gate.c) */
    cfg.gate_level = 0.95f;
    exp_product_result pr;
    exp_nightly_decision d;

    /* deployed: shrunk uplift 0.5 with lower bound 0.2 > 0; the price is guarded (+5% cap,
     * then .49) */
    fresh_product(&pr);
    set_uplift(&pr, EXP_AGENT_DQN, 0.5, 0.2, 0.8, 1);
    pr.price[EXP_AGENT_DQN] = 11.0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, -1);
    assert_int_equal(d.agent, EXP_AGENT_DQN);
    assert_close(d.price, 10.49, 1e-9, 0);
    assert_true(d.guard & ENV_GR_MAX_UP);
    assert_true(!strncmp(d.reason, "deploy:dqn|", 11) && strstr(d.reason, "max_up"));
    assert_close(d.uplift, 0.5, 1e-12, 0);
    assert_close(d.lo, 0.2, 1e-12, 0);
    assert_close(d.hi, 0.8, 1e-12, 0);

    /* the highest lower bound wins among eligible agents, not the highest estimate */
    set_uplift(&pr, EXP_AGENT_LINUCB, 0.4, 0.3, 0.5, 1);
    pr.price[EXP_AGENT_LINUCB] = 9.0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.agent, EXP_AGENT_LINUCB);
    assert_close(d.price, 9.99, 1e-9, 0); /* -5% cap = 9.50, then the nearest .49/.99 inside */

    /* the per-product (unshrunk) uplift is not what decides: a large raw bound with a shrunk
     * bound below 0 holds */
    fresh_product(&pr);
    set_uplift(&pr, EXP_AGENT_DQN, 0.5, -0.05, 1.0, 1);
    pr.uplift[EXP_AGENT_DQN].ci_low = 0.4;
    pr.price[EXP_AGENT_DQN] = 11.0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);
    assert_string_equal(d.reason, "hold:no_significant_uplift");
    assert_close(d.price, 10.0, 1e-9, 0);
    assert_true(isnan(d.uplift));

    /* a lower bound of exactly 0 is not above 0 */
    set_uplift(&pr, EXP_AGENT_DQN, 0.5, 0.0, 1.0, 1);
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);

    /* no candidate with usable (pooled) evidence: hold:poor_overlap */
    fresh_product(&pr);
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_OVERLAP);
    assert_string_equal(d.reason, "hold:poor_overlap");

    /* one usable candidate below 0 next to unusable ones: no significant uplift */
    set_uplift(&pr, EXP_AGENT_FIXED, -0.1, -0.3, 0.1, 1);
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_UPLIFT);

    /* no evaluation rows at all: hold:no_estimate */
    fresh_product(&pr);
    set_uplift(&pr, EXP_AGENT_DQN, 3.0, 2.0, 4.0, 1);
    pr.immediate[EXP_AGENT_HISTORY].n = 0;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_NO_ESTIMATE);

    /* every learning agent diverged */
    fresh_product(&pr);
    set_uplift(&pr, EXP_AGENT_DQN, 3.0, 2.0, 4.0, 1);
    pr.status = EXP_DIVERGED;
    pr.agent_failed = (1u << EXP_AGENT_LINUCB) | (1u << EXP_AGENT_DQN) | (1u << EXP_AGENT_DDPG);
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_DIVERGED);

    /* short history, failure, a held incumbent outside a bound, no incumbent */
    fresh_product(&pr);
    pr.status = EXP_SKIP_SHORT;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.hold, EXP_HOLD_SHORT);
    pr.status = EXP_FAILED;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_int_equal(d.failed, 1);
    assert_int_equal(d.hold, EXP_HOLD_FAILED);
    fresh_product(&pr);
    pr.incumbent_price = 8.0; /* below min_price 9: the held price is lifted to the bound */
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    assert_close(d.price, 9.0, 1e-9, 0);
    assert_non_null(strstr(d.reason, "min_price"));
    pr.incumbent_price = NAN;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), ENG_EINVAL);
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_products_and_dates), cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_decision_rule),
        cmocka_unit_test(test_run_then_rerun),     cmocka_unit_test(test_kill_during_push),
        cmocka_unit_test(test_product_failure),    cmocka_unit_test(test_dry_run),
        cmocka_unit_test(test_database_unreachable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
