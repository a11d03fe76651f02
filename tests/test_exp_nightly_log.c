/* tests/test_exp_nightly_log.c - what `rlprice nightly` writes to a plain log (stderr not a
 * terminal): every stage's closing progress line has a real rate and its elapsed time, the load
 * line gives the first and last dates of the data, a --date off the weekly period grid is warned
 * about, and the CUDA fallback (with --device auto on a machine without one) is one clean line. */
#include "test_nightly.h"

#include <fcntl.h>

#include "db_store.h"
#include "env_sim.h"
#include "exp_nightly.h"
#include "rlp_cmd.h"

#define DAY0 19723 /* 2024-01-01, a Monday */
#define NWEEKS 30
#define NPROD 4

static PGconn *conn;

static int setup(void **state) {
    (void)state;
    conn = tdb_create("nightly_log");
    tnl_store_sim(conn, NPROD, NWEEKS, 7, DAY0, 5);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

/* Run the command with stderr into a file; returns the file's text (caller frees). */
static char *run_logged(int argc, char **argv, int *rc) {
    char path[600];
    snprintf(path, sizeof path, "%s/nightly_log_%d.txt", test_tmpdir(), (int)getpid());
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    *rc = exp_cmd_nightly(argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *t = calloc((size_t)n + 1, 1);
    assert_non_null(t);
    assert_int_equal(fread(t, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    fputs(t, stdout); /* shown in the suite's output */
    return t;
}

static void test_plain_log(void **state) {
    (void)state;
    char db[300], out[600], ckpt[600];
    snprintf(db, sizeof db, "dbname=%s", tdb_name);
    snprintf(out, sizeof out, "%s/nightly_log_out_%d", test_tmpdir(), (int)getpid());
    snprintf(ckpt, sizeof ckpt, "%s/nightly_log_ckpt_%d", test_tmpdir(), (int)getpid());
    /* the data's weeks start on Mondays (2024-01-01 + 7k); 2024-07-31 is a Wednesday */
    char *argv[] = {"nightly", "--db", db, "--date", "2024-07-31", "--dry-run", "--out", out, "--ckpt", ckpt,
                    "--device", "auto", "--compare.dqn_steps=10", "--compare.ddpg_steps=10",
                    "--ope.n_boot=30", "--compare.total_boot=30", NULL};
    int rc;
    char *log = run_logged((int)(sizeof argv / sizeof argv[0]) - 1, argv, &rc);
    assert_true(rc == 0 || rc == 4);
    /* the load line: first and last dates of the data loaded, not "start" */
    assert_non_null(strstr(log, "weekly periods (2024-01-01 .. "));
    assert_null(strstr(log, "(start .."));
    /* the date off the weekly grid is warned about */
    assert_non_null(strstr(log, "--date 2024-07-31 is off the data's 7-day period grid"));
    /* one clean CUDA fallback line (this suite runs without a GPU, or with one: then none) */
    assert_null(strstr(log, "no CUDA device (no CUDA device"));
    /* every closing progress line: a number per second and the time it took */
    int n_final = 0;
    for (const char *l = log; (l = strstr(l, "rlprice: nightly: ")); l++) {
        const char *eol = strchr(l, '\n');
        char line[300];
        snprintf(line, sizeof line, "%.*s", (int)(eol ? eol - l : (long)strlen(l)), l);
        if (!strstr(line, " took ")) continue;
        n_final++;
        if (strstr(line, "?/s") || strstr(line, " took ?")) fail_msg("progress line without a rate or time: %s", line);
        const char *rate = strstr(line, "/s");
        assert_non_null(rate);
        assert_true(rate[-1] >= '0' && rate[-1] <= '9');
    }
    /* every stage of a dry run closes with such a line */
    static const char *const stages[] = {"load", "features", "train", "ope", "fqe", "decide", "report"};
    for (size_t k = 0; k < sizeof stages / sizeof stages[0]; k++) {
        char want[64];
        snprintf(want, sizeof want, "rlprice: nightly: %-8s %d/%d products", stages[k], NPROD, NPROD);
        if (!strstr(log, want)) fail_msg("no closing progress line for stage %s", stages[k]);
    }
    assert_true(n_final >= 7);
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
