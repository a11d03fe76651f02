/* tests/test_exp_nightly_ckpt.c - the nightly's checkpoints against a real PostgreSQL database:
 * versioned by run date (a retry of a finished date warm-starts from the previous date, never
 * from its own, and pushes identical prices, compared as numeric in SQL), and poisoned
 * checkpoints (NaN, huge values, truncated files, random bytes, a corrupt norm.h5) detected in
 * one line without HDF5's error stack, the group retrained and the bad file never written again. */
#include "test_nightly.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agt_ddpg.h"
#include "agt_dqn.h"
#include "db_store.h"
#include "env_sim.h"
#include "exp_nightly.h"

#define DAY0 19723 /* 2024-01-01 */
#define NDAYS 40
#define NPROD 6
#define D1 (DAY0 + NDAYS)     /* first priced date: 2024-02-10 */
#define D2 (DAY0 + NDAYS + 7) /* a week later */

static PGconn *conn;
static char out_dir[600], tmp[512];

static int setup(void **state) {
    (void)state;
    conn = tdb_create("nightly_ckpt");
    tnl_store_sim(conn, NPROD, NDAYS + 7, 1, DAY0, 11);
    snprintf(tmp, sizeof tmp, "%s/nightly_ckpt_%d", test_tmpdir(), (int)getpid());
    snprintf(out_dir, sizeof out_dir, "%s/out", tmp);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

/* Small budgets so a run takes about a second; checkpoints under ckpt. */
static exp_nightly_cfg small_cfg(const char *ckpt, int32_t date) {
    return tnl_small_cfg(conn, date, NDAYS, out_dir, ckpt, 50);
}

static void run_ok(const char *ckpt, int32_t date, exp_nightly_summary *s) {
    exp_nightly_cfg cfg = small_cfg(ckpt, date);
    int st = exp_nightly_run(&cfg, s);
    if (st) fail_msg("nightly: %s", eng_err_msg());
    assert_int_equal(exp_nightly_exit_code(st, s), 0);
    assert_int_equal(s->n_products, NPROD);
    exp_compare_cfg_free(&cfg.compare);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A retry of a finished date starts from the previous date's checkpoints, never its own: the
 * pushed prices are identical (numeric equality in SQL), row for row. */
static void test_retry_same_night(void **state) {
    (void)state;
    char ckpt[600], p[700];
    snprintf(ckpt, sizeof ckpt, "%s/retry_ckpt", tmp);
    exp_nightly_summary s0, s1, s2;
    run_ok(ckpt, D1, &s0); /* cold: nothing earlier */
    assert_int_equal(s0.warm_loaded, 0);
    snprintf(p, sizeof p, "%s/2024-02-10", ckpt);
    assert_true(is_dir(p));
    run_ok(ckpt, D2, &s1); /* warm from 2024-02-10 */
    assert_true(s1.warm_loaded > 0);
    snprintf(p, sizeof p, "%s/2024-02-17", ckpt);
    assert_true(is_dir(p));
    const char *id[1] = {s1.run_id};
    tdb_exec(conn, "DROP TABLE IF EXISTS first_try", 0, NULL);
    tdb_exec(conn,
             "CREATE TABLE first_try AS SELECT product_id, price, incumbent_price, agent, reason"
             " FROM price_recommendations WHERE run_id = $1",
             1, id);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM first_try", 0, NULL), NPROD);

    run_ok(ckpt, D2, &s2); /* the retry */
    assert_string_equal(s2.run_id, s1.run_id);
    assert_int_equal(s2.warm_loaded, s1.warm_loaded); /* from 2024-02-10 again */
    assert_int_equal(s2.warm_fresh, s1.warm_fresh);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM price_recommendations WHERE run_id = $1", 1, id), NPROD);
    assert_int_equal(tdb_long(conn,
                              "SELECT count(*) FROM price_recommendations r JOIN first_try f USING (product_id)"
                              " WHERE r.run_id = $1 AND r.price = f.price AND r.incumbent_price = f.incumbent_price"
                              " AND r.agent = f.agent AND r.reason = f.reason",
                              1, id),
                     NPROD);
    tdb_exec(conn, "DROP TABLE first_try", 0, NULL);
    exp_nightly_summary_free(&s0);
    exp_nightly_summary_free(&s1);
    exp_nightly_summary_free(&s2);

    /* the folders by date: listing, source choice and pruning */
    char tgt[800], src[800];
    assert_int_equal(exp_nightly_ckpt_dirs(ckpt, D2 + 1, tgt, sizeof tgt, src, sizeof src), ENG_OK);
    snprintf(p, sizeof p, "%s/2024-02-17", ckpt);
    assert_string_equal(src, p);
    assert_int_equal(exp_nightly_ckpt_dirs(ckpt, D1, tgt, sizeof tgt, src, sizeof src), ENG_OK);
    assert_string_equal(src, ""); /* nothing before the first date */
    assert_int_equal(exp_nightly_ckpt_prune(ckpt, D2 + 1, -1, 1), 2); /* keeps only 2024-02-18 */
    snprintf(p, sizeof p, "%s/2024-02-10", ckpt);
    assert_false(is_dir(p));
    snprintf(p, sizeof p, "%s/2024-02-18", ckpt);
    assert_true(is_dir(p));
}

/* ---- poisoned checkpoints ---------------------------------------------------------------- */

typedef enum { P_NAN, P_HUGE, P_TRUNC, P_RANDOM, P_NORM } poison_kind;

static long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static char *slurp(const char *p, long *n) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n + 1);
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    if (b) b[*n > 0 ? *n : 0] = 0;
    fclose(f);
    return b;
}

/* Rewrite /params of an HDF5 checkpoint: NaN (as stored, through the library, so its checksum is
 * right) or a float32 /params holding 1e30 in one place. */
static void poison_values(const char *path, int huge) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "params", H5P_DEFAULT), sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[2];
    assert_int_equal(H5Sget_simple_extent_ndims(sp), 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t n = (size_t)(dims[0] * dims[1]);
    if (!huge) {
        assert_int_equal((int)H5Tget_size(t), 2); /* a warm save stores IEEE half */
        uint16_t *h = malloc(n * sizeof *h);
        assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, h) >= 0);
        h[n / 2] = 0x7e00; /* half NaN */
        assert_true(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, h) >= 0);
        free(h);
        H5Dclose(d);
    } else {
        float *v = malloc(n * sizeof *v);
        assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
        H5Dclose(d);
        assert_true(H5Ldelete(f, "params", H5P_DEFAULT) >= 0);
        v[n - 1] = 1e30f;
        hid_t d2 = H5Dcreate2(f, "params", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d2 >= 0);
        assert_true(H5Dwrite(d2, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
        H5Dclose(d2);
        free(v);
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
}

/* 256 bytes of a fixed pseudo-random pattern over the middle of the file. */
static void poison_random(const char *path) {
    long n = file_size(path);
    assert_true(n > 1024);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    unsigned char b[256];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 256; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    assert_int_equal(pwrite(fd, b, sizeof b, n / 2), (ssize_t)sizeof b);
    close(fd);
}

/* Run D2 with stderr captured in log_path. */
static void run_captured(const char *ckpt, const char *log_path, exp_nightly_summary *s) {
    fflush(stderr);
    int saved = dup(2), fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    exp_nightly_cfg cfg = small_cfg(ckpt, D2);
    int st = exp_nightly_run(&cfg, s);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (st) fail_msg("nightly with a poisoned checkpoint: %s", eng_err_msg());
    assert_int_equal(s->n_products, NPROD);
    exp_compare_cfg_free(&cfg.compare);
}

static void check_poison(poison_kind kind, const char *base) {
    static const char *names[] = {"nan", "huge", "trunc", "random", "norm"};
    char ckpt[700], cmd[3000], bad[800], logp[800], fresh[800];
    snprintf(ckpt, sizeof ckpt, "%s/poison_%s", tmp, names[kind]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp -r '%s' '%s/2024-02-10'", ckpt, ckpt, base, ckpt);
    assert_int_equal(system(cmd), 0);
    snprintf(bad, sizeof bad, "%s/2024-02-10/%s", ckpt, kind == P_NORM ? "norm.h5" : "shared.dqn.h5");
    switch (kind) {
    case P_NAN: poison_values(bad, 0); break;
    case P_HUGE: poison_values(bad, 1); break;
    case P_TRUNC: assert_int_equal(truncate(bad, file_size(bad) / 2), 0); break;
    case P_RANDOM: poison_random(bad); break;
    case P_NORM: assert_int_equal(truncate(bad, file_size(bad) / 2), 0); break;
    }
    long n_before = 0, n_after = 0;
    char *before = slurp(bad, &n_before);
    assert_non_null(before);

    snprintf(logp, sizeof logp, "%s/poison_%s.log", tmp, names[kind]);
    exp_nightly_summary s;
    run_captured(ckpt, logp, &s);
    long n_log = 0;
    char *log = slurp(logp, &n_log);
    assert_non_null(log);
    /* reported in one line naming the file, without HDF5's own error stack */
    int lines = 0;
    for (char *l = log; l && *l;) {
        char *e = strchr(l, '\n');
        if (e) *e = 0;
        if (strstr(l, bad)) {
            lines++;
            assert_non_null(strstr(l, "unusable"));
            print_message("  %s: %s\n", names[kind], l);
        }
        l = e ? e + 1 : NULL;
    }
    assert_int_equal(lines, 1);
    assert_null(strstr(log, "HDF5-DIAG"));
    assert_null(strstr(log, "#000:"));
    /* retrained: the group did not warm-start */
    assert_true(s.warm_fresh >= 1);
    if (kind == P_NORM) assert_int_equal(s.warm_loaded, 0); /* a new normalisation: every group */
    /* the bad file is never written again, and what was saved for 2024-02-17 loads cleanly */
    char *after = slurp(bad, &n_after);
    assert_non_null(after);
    assert_int_equal(n_after, n_before);
    assert_memory_equal(after, before, (size_t)n_before);
    /* (the groups only copy the shared networks: those are what is saved, as shared.*) */
    snprintf(fresh, sizeof fresh, "%s/2024-02-17/shared.dqn.h5", ckpt);
    agt_dqn *q = NULL;
    if (agt_dqn_load(&q, eng_backend_cpu(), fresh)) fail_msg("%s", eng_err_msg());
    int n_bad = -1;
    agt_dqn_diverged(q, &n_bad);
    assert_int_equal(n_bad, 0);
    agt_dqn_free(q);
    snprintf(fresh, sizeof fresh, "%s/2024-02-17/shared.ddpg.h5", ckpt);
    agt_ddpg *a = NULL;
    if (agt_ddpg_load(&a, eng_backend_cpu(), fresh)) fail_msg("%s", eng_err_msg());
    agt_ddpg_free(a);
    free(before);
    free(after);
    free(log);
    exp_nightly_summary_free(&s);
}

static void test_poisoned_checkpoints(void **state) {
    (void)state;
    char base_root[600], base[700];
    snprintf(base_root, sizeof base_root, "%s/poison_base", tmp);
    exp_nightly_summary s0;
    run_ok(base_root, D1, &s0);
    exp_nightly_summary_free(&s0);
    snprintf(base, sizeof base, "%s/2024-02-10", base_root);
    /* the clean copy warm-starts every group (the control for the cases below) */
    char ctl[700], cmd[3000];
    snprintf(ctl, sizeof ctl, "%s/poison_control", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp -r '%s' '%s/2024-02-10'", ctl, ctl, base, ctl);
    assert_int_equal(system(cmd), 0);
    exp_nightly_summary s;
    run_ok(ctl, D2, &s);
    assert_true(s.warm_loaded >= 1);
    assert_int_equal(s.warm_fresh, 0);
    exp_nightly_summary_free(&s);
    check_poison(P_NAN, base);
    check_poison(P_HUGE, base);
    check_poison(P_TRUNC, base);
    check_poison(P_RANDOM, base);
    check_poison(P_NORM, base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_same_night),
        cmocka_unit_test(test_poisoned_checkpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
