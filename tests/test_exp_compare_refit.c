/* tests/test_exp_compare_refit.c - the next price from the agents refitted on every day
 * (compare.refit, exp_compare_refit.c; docs/compare.md, "Refit on every day for the next
 * price"): the refit changes the DQN's and DDPG's next prices and only theirs (LinUCB's and the
 * best fixed price stay), leaves every OPE value and trajectory as the training window's agents
 * gave them, says how many products it priced, and stays deterministic; with data-parallel
 * shards it is not applied; the checkpoints a refit night leaves are those of a night without
 * it, and a warm night's refit prices too.  The settings are checked. */
#include "test_common.h"

#include <unistd.h>

#include "env_sim.h"
#include "exp_compare.h"
#include "test_compare_small.h"

#define NP 6
#define NT 40

static int g_refit_carry = 1; /* compare.refit_carry of the next run */

static exp_results *run_ck(const db_history *h, int refit, int shards, const char *ckpt) {
    exp_compare_cfg c = tcs_small_cfg(2);
    c.refit_carry = g_refit_carry;
    if (ckpt) {
        char flag[700];
        snprintf(flag, sizeof flag, "--compare.ckpt_dir=%s", ckpt);
        char *fl[] = {flag};
        assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, fl), 0);
    }
    c.fqe_products = -1; /* FQE on every product: its values must not move either */
    c.fqe.iterations = 2;
    c.fqe.steps = 20;
    c.refit = refit;
    c.refit_frac = 1.0;
    c.shared_shards = shards;
    return tcs_run(h, &c);
}

static exp_results *run(const db_history *h, int refit, int shards) { return run_ck(h, refit, shards, NULL); }

/* Every OPE value of product results x and y is the same (NaN equal to NaN). */
static void same_value(const ope_value *a, const ope_value *b) {
    assert_int_equal(a->available, b->available);
    if (isfinite(a->estimate) || isfinite(b->estimate)) assert_true(a->estimate == b->estimate);
    if (isfinite(a->ci_low) || isfinite(b->ci_low)) assert_true(a->ci_low == b->ci_low && a->ci_high == b->ci_high);
}

static void same_ope(const exp_product_result *x, const exp_product_result *y) {
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        for (int e = 0; e < OPE_N_EST; e++) {
            same_value(&x->immediate[a].v[e], &y->immediate[a].v[e]);
            same_value(&x->longterm[a].v[e], &y->longterm[a].v[e]);
        }
        same_value(&x->uplift[a], &y->uplift[a]);
        same_value(&x->uplift_shrunk[a], &y->uplift_shrunk[a]);
        assert_memory_equal(x->agent_price[a], y->agent_price[a], NT * sizeof(float));
    }
}

static void test_refit_prices(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 7, &h, &lg), 0);
    env_sim_log_free(lg);
    exp_results *off = run(h, 0, 0), *a = run(h, 1, 0), *b = run(h, 1, 0);
    assert_int_equal(off->refit_products, 0);
    assert_int_equal(a->refit_products, NP);
    int differ = 0;
    for (int p = 0; p < NP; p++) {
        const exp_product_result *x = &off->products[p], *y = &a->products[p], *z = &b->products[p];
        same_ope(x, y);
        assert_true(x->price[EXP_AGENT_LINUCB] == y->price[EXP_AGENT_LINUCB]);
        assert_true(x->price[EXP_AGENT_FIXED] == y->price[EXP_AGENT_FIXED]);
        assert_true(x->price[EXP_AGENT_HISTORY] == y->price[EXP_AGENT_HISTORY]);
        for (int ag = EXP_AGENT_DQN; ag <= EXP_AGENT_DDPG; ag++) {
            assert_true(isfinite(y->price[ag]) && y->price[ag] > 0);
            assert_true(y->price[ag] == z->price[ag]); /* deterministic */
            differ += x->price[ag] != y->price[ag];
        }
    }
    assert_true(differ > 0);
    for (int a2 = 0; a2 < EXP_N_AGENTS; a2++)
        for (int e = 0; e < OPE_N_EST; e++) same_value(&off->total_immediate[a2].v[e], &a->total_immediate[a2].v[e]);
    exp_results_free(off);
    exp_results_free(a);
    exp_results_free(b);
    /* the shared networks in two data-parallel shards: no refit, the prices as without it */
    exp_results *s0 = run(h, 0, 2), *s1 = run(h, 1, 2);
    assert_int_equal(s1->refit_products, 0);
    for (int p = 0; p < NP; p++)
        for (int ag = 0; ag < EXP_N_AGENTS; ag++) assert_true(s0->products[p].price[ag] == s1->products[p].price[ag]);
    exp_results_free(s0);
    exp_results_free(s1);
    db_history_free(h);
}

/* compare.refit_carry 0 on history h: every product's DQN and DDPG prices are either the
 * training window's agents' (a night without the refit: the products whose every-day demand
 * model shows carry-over) or the refit's (as with refit_carry 1), the repriced ones counted; the
 * OPE values stay.  Returns refit_products. */
static int carry_check(const db_history *h) {
    exp_results *off = run(h, 0, 0), *all = run(h, 1, 0);
    g_refit_carry = 0;
    exp_results *keep = run(h, 1, 0);
    g_refit_carry = 1;
    const int n = keep->refit_products;
    int as_off = 0, as_all = 0;
    for (int p = 0; p < NP; p++) {
        const exp_product_result *x = &off->products[p], *y = &all->products[p], *z = &keep->products[p];
        same_ope(x, z);
        const int o = x->price[EXP_AGENT_DQN] == z->price[EXP_AGENT_DQN] && x->price[EXP_AGENT_DDPG] == z->price[EXP_AGENT_DDPG];
        const int a = y->price[EXP_AGENT_DQN] == z->price[EXP_AGENT_DQN] && y->price[EXP_AGENT_DDPG] == z->price[EXP_AGENT_DDPG];
        assert_true(o || a);
        as_off += o, as_all += a;
    }
    assert_true(as_all >= n && as_off >= NP - n);
    exp_results_free(off);
    exp_results_free(all);
    exp_results_free(keep);
    return n;
}

/* compare.refit_carry 0: on a loss-averse reference-price market (4x traffic) the products show
 * carry-over and keep the training window's agents' prices; on the default market (40 days, the
 * reference effect not significant) every product is repriced as with refit_carry 1. */
static void test_refit_carry(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    env_sim_gen_opts o = env_sim_gen_opts_default();
    o.family = ENV_SIM_FAMILY_REF, o.day0 = 18000, o.seed = 7, o.traffic_scale = 4.0;
    assert_int_equal(env_sim_generate_ex(&o, NP, NT, &h, &lg), 0);
    env_sim_log_free(lg);
    const int n_ref = carry_check(h);
    db_history_free(h);
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 7, &h, &lg), 0);
    env_sim_log_free(lg);
    const int n_def = carry_check(h);
    db_history_free(h);
    printf("refit_carry 0: %d / %d of %d products repriced (ref / default market)\n", n_ref, n_def, NP);
    assert_true(n_ref < NP && n_def == NP);
}

/* Warm nights: the refit networks are not saved (a night with the refit leaves the same
 * checkpoints as one without: the warm nights from them price the trajectories alike), and a warm
 * night's refit (every day's statistics, no steps) still prices every product. */
static void test_refit_warm(void **st) {
    (void)st;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 9, &h, &lg), 0);
    env_sim_log_free(lg);
    char d0[600], d1[600];
    snprintf(d0, sizeof d0, "%s/refit_ck0_%d", test_tmpdir(), (int)getpid());
    snprintf(d1, sizeof d1, "%s/refit_ck1_%d", test_tmpdir(), (int)getpid());
    exp_results *c0 = run_ck(h, 0, 0, d0), *c1 = run_ck(h, 1, 0, d1);
    exp_results *w0 = run_ck(h, 0, 0, d0), *w1 = run_ck(h, 1, 0, d1);
    int loaded = 0, fresh = 0;
    exp_compare_last_warm(&loaded, &fresh);
    assert_true(loaded >= 1); /* the last night was a warm one */
    assert_int_equal(c1->refit_products, NP);
    assert_int_equal(w1->refit_products, NP);
    for (int p = 0; p < NP; p++) {
        same_ope(&w0->products[p], &w1->products[p]);
        for (int ag = EXP_AGENT_DQN; ag <= EXP_AGENT_DDPG; ag++)
            assert_true(isfinite(w1->products[p].price[ag]) && w1->products[p].price[ag] > 0);
    }
    exp_results_free(c0);
    exp_results_free(c1);
    exp_results_free(w0);
    exp_results_free(w1);
    db_history_free(h);
}

static void test_setting(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    char *ok[] = {"--compare.refit=1", "--compare.refit_frac=0.5"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 2, ok), 0);
    assert_int_equal(c.refit, 1);
    assert_true(c.refit_frac == 0.5);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    char *bad[] = {"--compare.refit=2"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 1, bad), 0);
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    c.refit = 1;
    char *ok2[] = {"--compare.refit_carry=0", "--compare.dyna_cut_standing=1"};
    assert_int_equal(exp_compare_cfg_parse_flags(&c, 2, ok2), 0);
    assert_true(c.refit_carry == 0 && c.dyna_cut_standing == 1);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    c.refit_carry = 2;
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    c.refit_carry = 1, c.dyna_cut_standing = -1;
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    c.dyna_cut_standing = 0;
    c.refit = 0;
    c.refit_frac = 1.5;
    assert_int_equal(exp_compare_cfg_check(&c), ENG_EINVAL);
    exp_compare_cfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refit_prices),
        cmocka_unit_test(test_refit_carry),
        cmocka_unit_test(test_refit_warm),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
