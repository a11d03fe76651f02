/* tests/test_exp_warm.c - warm nights (docs/nightly.md, "Warm nights") against a real PostgreSQL
 * database: night 2 continues from night 1's checkpoints (the shared networks and the stored FQE
 * Q networks, a few refreshes), adds one day, and stays a correct night: every price inside its
 * guardrails, the history's on-policy values equal to a cold run's (the same rows), the FQE total
 * within a stated 10% of a cold run's.  What the warm start reuses is keyed and refused when it
 * no longer fits (another product list, a corrupt file, another compare.agent_desc,
 * compare.ddpg_band, compare.agent_best or compare.dqn_uplift), and nothing is served stale: a changed
 * old row changes the warm night's values exactly as it changes a cold night's. */
#include "test_nightly.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_date.h"
#include "env_action.h"
#include "exp_compare.h"

#define DAY0 19723 /* 2024-01-01 */
#define NDAYS 40
#define NPROD 8
#define D1 (DAY0 + NDAYS) /* 2024-02-10: the history 2024-01-01 .. 02-09 */
#define D2 (D1 + 1)       /* the next night: one more day, the window slid by one */
#define FQE_TOL 0.10      /* warm vs cold FQE total of the history's value (see docs/nightly.md) */

static PGconn *conn;
static char out_dir[600], tmp[512];
static int g_desc;      /* compare.agent_desc of the nights (test_warm_desc) */
static double g_band;   /* compare.ddpg_band of the nights (test_warm_desc) */
static int g_nobest;    /* 1: compare.agent_best 0 (the DQN without the best-price slots, so DDPG gets
                           a view of its own; test_warm_desc); 0: the default (1) */
static int g_noup;      /* 1: compare.dqn_uplift 0 (the DQN learns the logged reward); 0: the default */
static int g_upscale;   /* 1: compare.dqn_uplift_scale 250 (never the default); 0: the default */

static int setup(void **state) {
    (void)state;
    conn = tdb_create("exp_warm");
    tnl_store_sim(conn, NPROD, NDAYS + 2, 1, DAY0, 23);
    snprintf(tmp, sizeof tmp, "%s/exp_warm_%d", test_tmpdir(), (int)getpid());
    snprintf(out_dir, sizeof out_dir, "%s/out", tmp);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

/* What a night decided, per product (by index in the results). */
typedef struct night_cap {
    env_guard_cfg guard;
    int n, outside, priced;
    char id[NPROD][32];
    double hist_imm[NPROD], fqe_hist[NPROD], fqe_dqn[NPROD];
    int fqe_warm, fqe_cold, warm_loaded;
} night_cap;

static void hook(void *vctx, const db_history *h, const exp_results *res, const exp_nightly_decision *d) {
    night_cap *c = vctx;
    c->n = res->n_products < NPROD ? res->n_products : NPROD;
    for (int j = 0; j < c->n; j++) {
        const exp_product_result *pr = &res->products[j];
        snprintf(c->id[j], sizeof c->id[j], "%s", pr->product_id);
        c->hist_imm[j] = pr->immediate[EXP_AGENT_HISTORY].v[OPE_IPS].estimate;
        c->fqe_hist[j] = pr->longterm[EXP_AGENT_HISTORY].v[OPE_FQE].estimate;
        c->fqe_dqn[j] = pr->longterm[EXP_AGENT_DQN].v[OPE_FQE].estimate;
        if (d[j].failed) continue;
        env_guard_cfg g = c->guard;
        g.n_endings = 0;
        env_guard_bounds gb = env_guard_bounds_of(h, pr->index, pr->incumbent_price);
        double tmpp, lo = NAN, hi = NAN;
        uint32_t why = 0;
        if (env_guard_apply(&g, &gb, pr->incumbent_price, &tmpp, &why, &lo, &hi)) continue;
        c->priced++;
        if (!(isfinite(d[j].price) && d[j].price >= lo - 0.005 && d[j].price <= hi + 0.005)) c->outside++;
    }
}

/* The shared networks' manifest of the night dated `date` under checkpoint dir `dir` into buf
 * (NUL-terminated; asserted readable). */
static void read_meta(const char *dir, const char *date, char *buf, size_t cap) {
    char f[800];
    snprintf(f, sizeof f, "%s/%s/shared.meta", dir, date);
    FILE *fp = fopen(f, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = 0;
}

/* Night `date` with checkpoints under ckpt ("" none), products: 0 all, or the first n; fqe_extra
 * more FQE refreshes than the default. */
static void night_x(const char *ckpt, int32_t date, int n_products, int fqe_extra, night_cap *cap) {
    static const char *ids[NPROD] = {"SIM000001", "SIM000002", "SIM000003", "SIM000004",
                                     "SIM000005", "SIM000006", "SIM000007", "SIM000008"};
    exp_nightly_cfg cfg = tnl_small_cfg(conn, date, NDAYS, out_dir, ckpt, 20);
    cfg.compare.shared_steps = 300;
    cfg.compare.fqe.iterations += fqe_extra;
    cfg.compare.agent_desc = g_desc;
    cfg.compare.ddpg_band = g_band;
    if (g_nobest) cfg.compare.agent_best = 0;
    if (g_noup) cfg.compare.dqn_uplift = 0;
    if (g_upscale) cfg.compare.dqn_uplift_scale = 250;
    if (n_products > 0) cfg.products = (const char *const *)ids, cfg.n_products = n_products;
    memset(cap, 0, sizeof *cap);
    cap->guard = cfg.compare.guard;
    cfg.on_decided = hook;
    cfg.decided_ctx = cap;
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("nightly: %s", eng_err_msg());
    exp_compare_last_fqe_warm(&cap->fqe_warm, &cap->fqe_cold);
    cap->warm_loaded = s.warm_loaded;
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

static void night(const char *ckpt, int32_t date, int n_products, night_cap *cap) {
    night_x(ckpt, date, n_products, 0, cap);
}

static int exists(const char *root, int32_t date, const char *file) {
    char d[16], p[1400];
    struct stat sb;
    eng_date_format(date, d);
    snprintf(p, sizeof p, "%s/%s/%s", root, d, file);
    return stat(p, &sb) == 0;
}

static int idx_of(const night_cap *c, const char *id) {
    for (int j = 0; j < c->n; j++)
        if (!strcmp(c->id[j], id)) return j;
    return -1;
}

/* Night 1 cold, night 2 warm from it (shared networks and FQE reused), night 2 cold for
 * comparison, with as many FQE refreshes as the warm chain ran (night 1's and night 2's): FQE
 * starts near zero and each refresh moves the values a factor gamma closer to the fixed point,
 * so a cold fit with fewer refreshes is further from it (docs/nightly.md). */
static void test_warm_night(void **state) {
    (void)state;
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt_a", tmp);
    night_cap c1, w2, c2;
    night(ckpt, D1, 0, &c1);
    assert_int_equal(c1.warm_loaded, 0);
    assert_int_equal(c1.fqe_warm, 0);
    assert_true(c1.fqe_cold >= 2); /* the discrete policies and DDPG */
    assert_true(exists(ckpt, D1, "fqe-c0-disc.bin") && exists(ckpt, D1, "fqe-c0-cont.bin"));
    assert_true(exists(ckpt, D1, "shared.dqn.h5"));
    assert_true(exists(ckpt, D1, "behav-pool.bin")); /* the behaviour model's pooled coefficients */
    assert_false(exists(ckpt, D1, "g0.dqn.h5"));     /* the groups only copy the shared networks */

    night(ckpt, D2, 0, &w2);
    assert_true(w2.warm_loaded >= 1);
    assert_int_equal(w2.fqe_cold, 0);
    assert_true(w2.fqe_warm >= 2);
    assert_true(exists(ckpt, D2, "fqe-c0-disc.bin"));
    assert_int_equal(w2.n, NPROD);
    assert_true(w2.priced > 0);
    assert_int_equal(w2.outside, 0); /* a warm night is a correct night: prices inside the guardrails */

    exp_compare_cfg dc = exp_compare_default();
    night_x("", D2, 0, dc.fqe_warm_iterations, &c2);
    exp_compare_cfg_free(&dc);
    assert_int_equal(c2.fqe_warm, 0);
    assert_int_equal(c2.n, w2.n);
    double sw = 0, sc = 0;
    for (int j = 0; j < c2.n; j++) {
        assert_string_equal(w2.id[j], c2.id[j]);
        /* the history's on-policy value: the same rows, so the same number */
        if (isfinite(c2.hist_imm[j])) assert_true(fabs(w2.hist_imm[j] - c2.hist_imm[j]) <= 1e-9 * (1 + fabs(c2.hist_imm[j])));
        if (isfinite(c2.fqe_hist[j]) && isfinite(w2.fqe_hist[j])) sw += w2.fqe_hist[j], sc += c2.fqe_hist[j];
    }
    print_message("  FQE total of the history's value: warm %.6g, cold %.6g (%.2f%% apart; tolerance %.0f%%)\n", sw,
                  sc, 100 * fabs(sw - sc) / fabs(sc), 100 * FQE_TOL);
    assert_true(fabs(sc) > 0);
    assert_true(fabs(sw - sc) <= FQE_TOL * fabs(sc));
}

/* The stored FQE networks are refused when they do not fit: another product list (another key)
 * or a damaged file (one warning, fitted from scratch, never copied forward). */
static void test_warm_refused(void **state) {
    (void)state;
    char a[700], b[700], cmd[4000], d1[16];
    snprintf(a, sizeof a, "%s/ckpt_r", tmp);
    night_cap c, x;
    night(a, D1, 0, &c);
    night(a, D2, NPROD - 1, &x); /* one product fewer: another chunk, another key */
    assert_int_equal(x.fqe_warm, 0);
    assert_true(x.fqe_cold >= 2);
    /* a corrupt parameter in the stored discrete chunk: refused; DDPG's chunk still warm */
    eng_date_format(D1, d1);
    snprintf(b, sizeof b, "%s/ckpt_bad", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp -r '%s/%s' '%s/%s'", b, b, a, d1, b, d1);
    assert_int_equal(system(cmd), 0);
    char f[1400];
    snprintf(f, sizeof f, "%s/%s/fqe-c0-disc.bin", b, d1);
    FILE *fp = fopen(f, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, -40, SEEK_END), 0);
    unsigned char byte = 0;
    assert_int_equal(fread(&byte, 1, 1, fp), 1);
    byte ^= 0x5a;
    assert_int_equal(fseek(fp, -40, SEEK_END), 0);
    assert_int_equal(fwrite(&byte, 1, 1, fp), 1);
    fclose(fp);
    /* and a flipped byte in the behaviour model's stored coefficients: ignored (its pooled
     * fit starts from zero), the night the same as with a good file up to the fit's tolerance */
    snprintf(f, sizeof f, "%s/%s/behav-pool.bin", b, d1);
    fp = fopen(f, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, -20, SEEK_END), 0);
    assert_int_equal(fread(&byte, 1, 1, fp), 1);
    byte ^= 0x5a;
    assert_int_equal(fseek(fp, -20, SEEK_END), 0);
    assert_int_equal(fwrite(&byte, 1, 1, fp), 1);
    fclose(fp);
    night(b, D2, 0, &x);
    assert_int_equal(x.fqe_cold, 1);
    assert_int_equal(x.fqe_warm, 1);
    assert_int_equal(x.outside, 0);
    assert_true(exists(b, D2, "behav-pool.bin")); /* tonight's, written fresh */
}

/* A setting whose networks differ from the defaults' (*flag := 1; agent_best 0, dqn_uplift 0,
 * another dqn_uplift_scale): in <tmp>/ckpt_<stem> a default night, then one with the setting:
 * the default checkpoints are refused (a cold night, priced, none outside) and its manifest has
 * (want 1) or lacks (want 0) `line`; in <tmp>/ckpt_<stem>1 two nights with the setting: the
 * first cold, the second warm.  *flag is 0 again afterwards. */
static void mode_switch(const char *stem, int *flag, const char *line, int want) {
    char e[700], d2[16], buf[4096];
    night_cap c, x;
    eng_date_format(D2, d2);
    snprintf(e, sizeof e, "%s/ckpt_%s", tmp, stem);
    night(e, D1, 0, &c);
    *flag = 1;
    night(e, D2, 0, &x); /* the default checkpoints: refused */
    assert_int_equal(x.warm_loaded, 0);
    assert_int_equal(x.outside, 0);
    assert_true(x.priced > 0);
    read_meta(e, d2, buf, sizeof buf);
    if (want)
        assert_non_null(strstr(buf, line));
    else
        assert_null(strstr(buf, line));
    snprintf(e, sizeof e, "%s/ckpt_%s1", tmp, stem);
    night(e, D1, 0, &c);
    night(e, D2, 0, &x); /* the same setting: warm */
    *flag = 0;
    assert_int_equal(c.warm_loaded, 0);
    assert_true(x.warm_loaded >= 1);
    assert_int_equal(x.outside, 0);
}

/* The agent state's descriptors (compare.agent_desc) change what the networks' inputs mean in
 * the same slots: a night with another mode than the checkpoints' trains its networks from
 * scratch (the manifest differs; one line), a night with the same mode warm-starts, and the
 * default mode's manifest is the one of before (no line added).  Likewise DDPG's own band
 * (compare.ddpg_band). */
static void test_warm_desc(void **state) {
    (void)state;
    char a[700], b[700], d1[16];
    snprintf(a, sizeof a, "%s/ckpt_d0", tmp);
    snprintf(b, sizeof b, "%s/ckpt_d1", tmp);
    night_cap c, x;
    g_desc = 0;
    night(a, D1, 0, &c);
    eng_date_format(D1, d1);
    char buf[4096];
    read_meta(a, d1, buf, sizeof buf);
    assert_null(strstr(buf, "agent_desc"));
    g_desc = 1;
    night(a, D2, 0, &x); /* the mode-0 checkpoints: refused */
    assert_int_equal(x.warm_loaded, 0);
    assert_int_equal(x.outside, 0);
    night(b, D1, 0, &c);
    assert_int_equal(c.warm_loaded, 0);
    night(b, D2, 0, &x); /* the same mode: warm */
    assert_true(x.warm_loaded >= 1);
    assert_int_equal(x.outside, 0);
    g_desc = 0;
    /* DDPG's own band (compare.ddpg_band): its actions mean other ratios, likewise refused */
    char d[700], d2[16];
    snprintf(d, sizeof d, "%s/ckpt_band", tmp);
    night(d, D1, 0, &c);
    g_band = 0.35;
    night(d, D2, 0, &x);
    g_band = 0;
    assert_int_equal(x.warm_loaded, 0);
    assert_int_equal(x.outside, 0);
    eng_date_format(D2, d2);
    read_meta(d, d2, buf, sizeof buf);
    assert_non_null(strstr(buf, "ddpg_band 0.35"));
    /* the defaults: one view for both agents with the best-price slots, the DQN's uplift targets;
     * the manifest (of the band's first, default night) says so */
    eng_date_format(D1, d2);
    read_meta(d, d2, buf, sizeof buf);
    assert_non_null(strstr(buf, "agent_best 1"));
    assert_non_null(strstr(buf, "dqn_uplift 1"));
    assert_null(strstr(buf, "ddpg_view"));
    /* without the best-price slots (compare.agent_best 0): the DQN's state is narrower and DDPG
     * gets a view of its own; the default checkpoints are refused, its own are warm */
    mode_switch("nobest", &g_nobest, "ddpg_view 2 1", 1);
    /* the DQN learning the logged reward (compare.dqn_uplift 0): its Q-values mean another thing */
    mode_switch("noup", &g_noup, "dqn_uplift", 0);
    /* the uplift on another scale (compare.dqn_uplift_scale): its Q-values are on another scale */
    mode_switch("upscale", &g_upscale, "dqn_uplift 1 scale 250", 1);
}

/* Nothing stale: change an old row inside night 2's window; the warm night's values of that
 * product move as a cold night's do (from the same checkpoints as without the change). */
static void test_changed_row(void **state) {
    (void)state;
    char a[700], b[700], cmd[4000], d1[16];
    snprintf(a, sizeof a, "%s/ckpt_a", tmp); /* night 1 of test_warm_night */
    snprintf(b, sizeof b, "%s/ckpt_c", tmp);
    eng_date_format(D1, d1);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp -r '%s/%s' '%s/%s'", b, b, a, d1, b, d1);
    assert_int_equal(system(cmd), 0);
    night_cap before, again, after, cold;
    night(b, D2, 0, &before);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/2024-02-11'", b);
    assert_int_equal(system(cmd), 0);
    night(b, D2, 0, &again); /* the control: the same start and rows give the same values */
    for (int k = 0; k < NPROD; k++) assert_true(again.fqe_hist[k] == before.fqe_hist[k]);
    tdb_exec(conn,
             "UPDATE sales SET units = units + 7, revenue = price * (units + 7) WHERE product_id = 'SIM000002' AND "
             "day = DATE '2024-02-05'",
             0, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/2024-02-11'", b); /* the same start as `before` */
    assert_int_equal(system(cmd), 0);
    night(b, D2, 0, &after);
    night("", D2, 0, &cold);
    assert_true(after.fqe_warm >= 2);
    int j = idx_of(&after, "SIM000002");
    assert_true(j >= 0 && idx_of(&before, "SIM000002") == j && idx_of(&cold, "SIM000002") == j);
    print_message("  SIM000002 history value before/after the change: on-policy %.6g -> %.6g (cold %.6g), FQE %.6g -> "
                  "%.6g (cold %.6g)\n",
                  before.hist_imm[j], after.hist_imm[j], cold.hist_imm[j], before.fqe_hist[j], after.fqe_hist[j],
                  cold.fqe_hist[j]);
    assert_true(after.fqe_hist[j] != before.fqe_hist[j]);
    if (isfinite(cold.hist_imm[j])) assert_true(fabs(after.hist_imm[j] - cold.hist_imm[j]) <= 1e-9 * (1 + fabs(cold.hist_imm[j])));
    assert_int_equal(after.outside, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warm_night),
        cmocka_unit_test(test_warm_refused),
        cmocka_unit_test(test_warm_desc),
        cmocka_unit_test(test_changed_row),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
