/* tests/test_exp_compare.c - the agent comparison (experiments/exp_compare.h) on a few
 * simulated products with small budgets. */
#include "test_common.h"

#include <sys/stat.h>
#include <unistd.h>

#include "env_sim.h"
#include "exp_compare.h"

#define NP 5
#define NT 40
#define SHORT_P 4 /* products SHORT_P-1 and SHORT_P have little history (pooled together) */

static db_history *make_history(void) {
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, 18000, 42, &h, &lg), 0);
    env_sim_log_free(lg);
    /* products SHORT_P-1, SHORT_P: only the last 18 periods exist (5 training transitions
     * each with train_frac 0.7: too few alone, 10 together) */
    for (int p = SHORT_P - 1; p <= SHORT_P; p++)
        for (int t = 0; t < NT - 18; t++) {
            size_t c = (size_t)p * NT + t;
            h->present[c] = 0;
            h->price[c] = h->units[c] = h->revenue[c] = h->traffic[c] = NAN;
        }
    return h;
}

static exp_compare_cfg small_cfg(void) {
    exp_compare_cfg c = exp_compare_default();
    c.group_size = 2; /* several groups */
    c.dqn_steps = 15;
    c.ddpg_steps = 15;
    c.dqn.batch = c.ddpg.batch = 8;
    c.dqn.hidden1 = c.dqn.hidden2 = 16;
    c.ddpg.hidden1 = c.ddpg.hidden2 = 16;
    c.ope.n_boot = 40;
    c.total_boot = 60;
    c.ope.cross_folds = 2;
    c.guard.default_max_change_pct = 10.0;
    c.train_frac = 0.7;
    c.fqe.iterations = 4;
    c.fqe.steps = 10;
    c.fqe.batch = 16;
    c.fqe.hidden[0] = c.fqe.hidden[1] = 16;
    return c;
}

static void check_value(const ope_value *v) {
    if (!v->available) return;
    if (!isfinite(v->estimate)) fail_msg("available estimate %g (%s)", v->estimate, v->note);
    if (isfinite(v->ci_low) && isfinite(v->ci_high)) {
        assert_true(v->ci_low <= v->estimate + 1e-9 * (1 + fabs(v->estimate)));
        assert_true(v->estimate <= v->ci_high + 1e-9 * (1 + fabs(v->estimate)));
    }
}

static void test_run_basic(void **state) {
    (void)state;
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    exp_results *r = NULL;
    int n_normal_only = 0, n_all_rows = 0;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    assert_non_null(r);
    assert_int_equal(r->n_products, NP);
    assert_non_null(strstr(r->config_text, "compare.group_size = 2"));
    assert_non_null(strstr(r->reward_text, "drcr"));
    for (int p = 0; p < NP; p++) {
        const exp_product_result *pr = &r->products[p];
        assert_string_equal(pr->product_id, h->product_id[p]);
        assert_int_equal(pr->n_periods, NT);
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            /* guarded: within +-10% of the incumbent (rounding stays inside the interval) */
            assert_true(pr->price[a] >= pr->incumbent_price * 0.9 - 1e-6);
            assert_true(pr->price[a] <= pr->incumbent_price * 1.1 + 1e-6);
            if (a != EXP_AGENT_HISTORY)
                for (int t = 0; t < NT; t++) assert_true(isfinite(pr->agent_price[a][t]) && pr->agent_price[a][t] > 0);
        }
        if (p >= SHORT_P - 1) continue;
        assert_int_equal(pr->status, EXP_OK);
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            const ope_result *im = &pr->immediate[a], *lt = &pr->longterm[a];
            assert_true(im->n > 0);
            assert_true(im->v[im->recommended].available);
            assert_true(im->v[OPE_DM].available);
            for (int e = 0; e < OPE_N_EST; e++) {
                check_value(&im->v[e]);
                check_value(&lt->v[e]);
            }
        }
        /* the uplift is the agent's DR minus history's on-policy mean on the same rows (history's
         * recommended one-step estimate, IPS with weights 1); the shrunk one lies inside its own
         * interval */
        assert_false(pr->uplift[EXP_AGENT_HISTORY].available);
        assert_string_equal(pr->immediate[EXP_AGENT_DQN].q_source, "pooled");
        assert_int_equal(pr->immediate[EXP_AGENT_HISTORY].recommended, OPE_IPS);
        for (int a = 1; a < EXP_N_AGENTS; a++) {
            assert_true(pr->uplift[a].available);
            /* on all evaluation rows unless the product's promotion periods were set aside (like
             * periods only: the note says "normal" and fewer rows are used) */
            if (strstr(pr->uplift[a].note, "normal")) {
                assert_true(pr->uplift[a].n_used < pr->immediate[a].n);
                n_normal_only++;
            } else {
                assert_int_equal(pr->uplift[a].n_used, pr->immediate[a].n);
                assert_close(pr->uplift[a].estimate,
                             pr->immediate[a].v[OPE_DR].estimate - pr->immediate[EXP_AGENT_HISTORY].v[OPE_IPS].estimate,
                             1e-9, 1e-9);
                n_all_rows++;
            }
            check_value(&pr->uplift[a]);
            check_value(&pr->uplift_shrunk[a]);
        }
        /* the history agent is the behaviour policy: every IPS weight is 1 */
        assert_close(pr->immediate[EXP_AGENT_HISTORY].overlap.mean_w, 1.0, 1e-6, 0);
        assert_true(pr->immediate[EXP_AGENT_DDPG].v[OPE_KIPS].available);
    }
    assert_true(n_normal_only + n_all_rows > 0);
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        ope_est e = r->total_immediate[a].recommended;
        assert_true(r->total_immediate[a].v[e].available);
        /* pooled rows of the products in the totals (short products are not in them) */
        int rows = 0;
        for (int p = 0; p < NP; p++)
            if (r->products[p].status == EXP_OK || r->products[p].status == EXP_DIVERGED)
                rows += r->products[p].immediate[a].n;
        assert_true(rows > 0);
        assert_int_equal(r->total_immediate[a].v[e].n_used, rows);
        assert_int_equal(r->total_immediate[a].overlap.n, rows);
        assert_true(r->total_immediate[a].overlap.ess > 0 && r->total_immediate[a].overlap.ess <= rows + 1e-9);
        /* DR of the historical policy on pooled rows: weights 1, so its ESS is the row count */
        if (a == EXP_AGENT_HISTORY) assert_close(r->total_immediate[a].overlap.ess, rows, 1e-6, 0);
        /* the pooled DR is the row-weighted mean of the per-product DR (same model, same rows) */
        if (a != EXP_AGENT_HISTORY) {
            assert_true(r->total_uplift[a].available);
            assert_close(r->total_uplift[a].estimate,
                         r->total_immediate[a].v[OPE_DR].estimate - r->total_immediate[EXP_AGENT_HISTORY].v[OPE_IPS].estimate,
                         1e-9, 1e-9);
        }
        for (int k = 0; k < OPE_N_EST; k++) {
            check_value(&r->total_immediate[a].v[k]);
            check_value(&r->total_longterm[a].v[k]);
        }
    }
    assert_true(r->winner_immediate >= 0 && r->winner_immediate < EXP_N_AGENTS);
    /* the winner really has the highest value on each agent's recommended estimator: one common
     * estimator for the agents, the on-policy mean (ips) for history */
    assert_int_equal(r->total_immediate[EXP_AGENT_HISTORY].recommended, OPE_IPS);
    const ope_result *tw = &r->total_immediate[r->winner_immediate];
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        const ope_result *ta = &r->total_immediate[a];
        if (a > EXP_AGENT_FIXED) assert_int_equal(ta->recommended, r->total_immediate[EXP_AGENT_FIXED].recommended);
        if (ta->v[ta->recommended].available)
            assert_true(tw->v[tw->recommended].estimate >= ta->v[ta->recommended].estimate);
    }
    exp_results_free(r);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

static void test_short_pooled(void **state) {
    (void)state;
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    exp_results *r = NULL;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    const exp_product_result *pr = &r->products[SHORT_P];
    assert_int_equal(pr->status, EXP_SKIP_SHORT);
    assert_non_null(strstr(pr->note, "pooled model of 2 short products"));
    assert_int_equal(r->products[SHORT_P - 1].status, EXP_SKIP_SHORT);
    assert_true(isfinite(pr->price[EXP_AGENT_DQN]) && pr->price[EXP_AGENT_DQN] > 0);
    /* the pooled model is evaluated on the product's own holdout */
    assert_true(pr->immediate[EXP_AGENT_DQN].n > 0);
    assert_true(pr->immediate[EXP_AGENT_DQN].v[OPE_DM].available);
    exp_results_free(r);
    /* min_history above what even the pool holds: every product held at the incumbent */
    cfg.min_history = 1000;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    for (int p = 0; p < NP; p++) {
        const exp_product_result *q = &r->products[p];
        assert_int_equal(q->status, EXP_SKIP_SHORT);
        assert_non_null(strstr(q->note, "held at the incumbent"));
        for (int a = 0; a < EXP_N_AGENTS; a++) assert_close(q->price[a], q->price[EXP_AGENT_HISTORY], 1e-9, 0);
    }
    exp_results_free(r);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

static void test_divergence_held(void **state) {
    (void)state;
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    cfg.fault_diverge = 1;
    exp_results *r = NULL;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    const exp_product_result *pr = &r->products[1];
    assert_int_equal(pr->status, EXP_DIVERGED);
    assert_true(pr->agent_failed & (1u << EXP_AGENT_DQN));
    assert_false(pr->agent_failed & (1u << EXP_AGENT_DDPG));
    assert_non_null(strstr(pr->note, "dqn"));
    /* held at the incumbent: the same guarded price as the historical policy */
    assert_close(pr->price[EXP_AGENT_DQN], pr->price[EXP_AGENT_HISTORY], 1e-9, 0);
    /* its group neighbour and the other products carry on */
    assert_int_equal(r->products[0].status, EXP_OK);
    assert_int_equal(r->products[0].agent_failed, 0);
    assert_int_equal(r->products[2].status, EXP_OK);
    /* a diverged product still counts in the totals */
    int rows = 0;
    for (int p = 0; p < NP - 2; p++) rows += r->products[p].immediate[EXP_AGENT_DQN].n;
    assert_int_equal(r->total_immediate[EXP_AGENT_DQN].v[OPE_DM].n_used, rows);
    assert_true(r->products[1].uplift[EXP_AGENT_DQN].available);
    exp_results_free(r);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

/* FQE of every agent's long-term value: on every product in the totals by default, on a seeded
 * sample with compare.fqe_products, off with 0; the total says over how many products. */
static void test_fqe(void **state) {
    (void)state;
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    exp_results *r = NULL;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    const int n_el = SHORT_P - 1; /* the short products are not in the totals */
    assert_int_equal(r->fqe_eligible, n_el);
    assert_int_equal(r->fqe_products, n_el);
    double rmax = 0;
    for (size_t c = 0; c < (size_t)NP * NT; c++)
        if (h->present[c] && isfinite(h->revenue[c]) && h->traffic[c] > 0)
            rmax = fmax(rmax, fabs(h->revenue[c] / h->traffic[c]));
    for (int p = 0; p < NP; p++)
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            const ope_value *v = &r->products[p].longterm[a].v[OPE_FQE];
            if (p >= n_el) {
                assert_false(v->available);
                continue;
            }
            assert_true(v->available);
            /* a discounted return of drcr rewards (|r| <= 2 max RCR) is bounded by 2 rmax / (1 - gamma) */
            assert_true(isfinite(v->estimate) && fabs(v->estimate) <= 2 * rmax / (1 - cfg.ope.gamma));
        }
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        assert_true(r->total_longterm[a].v[OPE_FQE].available);
        assert_int_equal(r->total_longterm[a].v[OPE_FQE].n_used, n_el);
        assert_non_null(strstr(r->total_longterm[a].v[OPE_FQE].note, "(all of 3"));
    }
    exp_results_free(r);
    /* a seeded sample of 2 products: the third says why it has none; the total is over 2 */
    cfg.fqe_products = 2;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r->fqe_products, 2);
    int with = 0;
    for (int p = 0; p < n_el; p++) {
        const ope_value *v = &r->products[p].longterm[EXP_AGENT_DQN].v[OPE_FQE];
        with += v->available;
        if (!v->available) assert_non_null(strstr(v->note, "not in the FQE sample"));
        for (int a = 0; a < EXP_N_AGENTS; a++)
            assert_int_equal(r->products[p].longterm[a].v[OPE_FQE].available, v->available);
    }
    assert_int_equal(with, 2);
    assert_int_equal(r->total_longterm[EXP_AGENT_DQN].v[OPE_FQE].n_used, 2);
    assert_non_null(strstr(r->total_longterm[EXP_AGENT_DQN].v[OPE_FQE].note, "seeded sample of 3"));
    exp_results_free(r);
    /* off */
    cfg.fqe_products = 0;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r->fqe_products, 0);
    assert_false(r->total_longterm[EXP_AGENT_HISTORY].v[OPE_FQE].available);
    assert_non_null(strstr(r->products[0].longterm[EXP_AGENT_HISTORY].v[OPE_FQE].note, "FQE off"));
    exp_results_free(r);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

static void test_deterministic(void **state) {
    (void)state;
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    exp_results *a = NULL, *b = NULL;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &a), 0);
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &b), 0);
    for (int p = 0; p < NP; p++) {
        const exp_product_result *x = &a->products[p], *y = &b->products[p];
        assert_memory_equal(x->price, y->price, sizeof x->price);
        for (int g = 0; g < EXP_N_AGENTS; g++) {
            assert_memory_equal(x->agent_price[g], y->agent_price[g], NT * sizeof(float));
            for (int e = 0; e < OPE_N_EST; e++) {
                assert_memory_equal(&x->immediate[g].v[e].estimate, &y->immediate[g].v[e].estimate, sizeof(double));
                assert_memory_equal(&x->longterm[g].v[e].ci_low, &y->longterm[g].v[e].ci_low, sizeof(double));
                assert_memory_equal(&x->longterm[g].v[e].estimate, &y->longterm[g].v[e].estimate, sizeof(double));
            }
        }
    }
    assert_string_equal(a->run_id, b->run_id);
    /* another seed gives other networks (their prices, or where both sit at the same support
     * edges - the model-based rows can put them there - their values) */
    exp_results_free(b);
    cfg.seed = 99;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &b), 0);
    int differ = 0;
    for (int p = 0; p < NP; p++)
        for (int t = 0; t < NT; t++)
            differ |= a->products[p].agent_price[EXP_AGENT_DDPG][t] != b->products[p].agent_price[EXP_AGENT_DDPG][t] ||
                      a->products[p].agent_price[EXP_AGENT_DQN][t] != b->products[p].agent_price[EXP_AGENT_DQN][t];
    for (int p = 0; p < NP; p++)
        for (int e = 0; e < OPE_N_EST; e++)
            differ |= a->products[p].longterm[EXP_AGENT_DDPG].v[e].estimate != b->products[p].longterm[EXP_AGENT_DDPG].v[e].estimate;
    assert_true(differ);
    assert_string_not_equal(a->run_id, b->run_id);
    exp_results_free(a);
    exp_results_free(b);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

/* compare.shared_shards in one process (docs/mpi.md): the shared networks trained as 4
 * data-parallel shards of 5 products (some shards with one product or none: their slots sit
 * steps out without blocking the others) give finite prices for every product and are
 * deterministic; the run with 4 shards is another training run than the plain network (the
 * minibatches are stratified over the shards), printed, not asserted. */
static void test_shared_shards(void **state) {
    (void)state;
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    cfg.shared_shards = 4;
    cfg.shared_steps = 200;
    exp_results *a = NULL, *b = NULL, *one = NULL;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &a), 0);
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &b), 0);
    int differ = 0;
    for (int p = 0; p < NP; p++) {
        const exp_product_result *x = &a->products[p], *y = &b->products[p];
        for (int g = 0; g < EXP_N_AGENTS; g++) {
            assert_true(isfinite(x->price[g]) && x->price[g] > 0);
            assert_memory_equal(x->agent_price[g], y->agent_price[g], NT * sizeof(float));
        }
    }
    cfg.shared_shards = 1;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &one), 0);
    for (int p = 0; p < NP; p++)
        for (int t = 0; t < NT; t++)
            differ |= a->products[p].agent_price[EXP_AGENT_DQN][t] != one->products[p].agent_price[EXP_AGENT_DQN][t] ||
                      a->products[p].agent_price[EXP_AGENT_DDPG][t] != one->products[p].agent_price[EXP_AGENT_DDPG][t];
    printf("4 shards vs the plain shared network: agent prices %s\n", differ ? "differ" : "equal");
    cfg.shared_shards = -1;
    assert_int_not_equal(exp_compare_cfg_check(&cfg), 0);
    exp_results_free(a);
    exp_results_free(b);
    exp_results_free(one);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

/* --seed (compare.seed) reaches the per-product OPE bootstrap: the historical policy's
 * one-step value does not depend on any training, so with the data unchanged its estimate is
 * the same under every seed while its bootstrap interval moves with compare.seed (and only
 * with it: the same seed gives the identical interval). */
static void test_seed_bootstrap(void **state) {
    (void)state;
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    exp_results *a = NULL, *b = NULL, *c = NULL;
    cfg.seed = 1;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &a), 0);
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &b), 0);
    cfg.seed = 2; /* ope.seed unchanged */
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &c), 0);
    int n = 0, moved = 0;
    for (int p = 0; p < NP; p++) {
        const ope_value *va = &a->products[p].immediate[EXP_AGENT_HISTORY].v[OPE_IPS];
        const ope_value *vb = &b->products[p].immediate[EXP_AGENT_HISTORY].v[OPE_IPS];
        const ope_value *vc = &c->products[p].immediate[EXP_AGENT_HISTORY].v[OPE_IPS];
        if (!va->available || !isfinite(va->ci_low)) continue;
        n++;
        assert_memory_equal(&va->ci_low, &vb->ci_low, sizeof(double));
        assert_memory_equal(&va->ci_high, &vb->ci_high, sizeof(double));
        assert_true(vc->available);
        assert_true(va->estimate == vc->estimate); /* same rows, same on-policy mean */
        moved += va->ci_low != vc->ci_low || va->ci_high != vc->ci_high;
    }
    assert_true(n >= 3);
    assert_int_equal(moved, n); /* every product's interval moved with the seed */
    exp_results_free(a);
    exp_results_free(b);
    exp_results_free(c);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

static void test_warm_start(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/exp_compare_ckpt_%ld", test_tmpdir(), (long)getpid());
    db_history *h = make_history();
    exp_compare_cfg cfg = small_cfg();
    cfg.ckpt_dir = strdup(dir);
    /* every group with networks of its own: with compare.shared and no fine-tuning the groups'
     * networks are the shared ones, and only those warm-start (counted once; tests/test_exp_warm.c) */
    cfg.shared = 0;
    exp_results *r = NULL;
    int loaded, fresh;
    /* 4 own products in 2 groups + the pooled group */
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    exp_compare_last_warm(&loaded, &fresh);
    assert_int_equal(loaded, 0);
    assert_int_equal(fresh, 3);
    char path[600];
    snprintf(path, sizeof path, "%s/g0.meta", dir);
    assert_int_equal(access(path, R_OK), 0);
    exp_results_free(r);
    /* same products and layout: every group loads */
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    exp_compare_last_warm(&loaded, &fresh);
    assert_int_equal(loaded, 3);
    assert_int_equal(fresh, 0);
    exp_results_free(r);
    /* a renamed product: its group retrains, the others load */
    free(h->product_id[0]);
    h->product_id[0] = strdup("renamed\tproduct");
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    exp_compare_last_warm(&loaded, &fresh);
    assert_int_equal(loaded, 2);
    assert_int_equal(fresh, 1);
    exp_results_free(r);
    /* agents trained for another reward are not continued: everything retrains */
    cfg.reward.kind = ENV_REWARD_REVENUE;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    exp_compare_last_warm(&loaded, &fresh);
    assert_int_equal(loaded, 0);
    assert_int_equal(fresh, 3);
    exp_results_free(r);
    /* and the checkpoints now written for that reward load again */
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    exp_compare_last_warm(&loaded, &fresh);
    assert_int_equal(loaded, 3);
    exp_results_free(r);
    /* another network shape: everything retrains */
    cfg.dqn.hidden1 = 24;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    exp_compare_last_warm(&loaded, &fresh);
    assert_int_equal(loaded, 0);
    assert_int_equal(fresh, 3);
    exp_results_free(r);
    /* without ckpt_dir: nothing */
    free(cfg.ckpt_dir);
    cfg.ckpt_dir = NULL;
    assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
    exp_compare_last_warm(&loaded, &fresh);
    assert_int_equal(loaded + fresh, 3); /* counted, but nothing saved or loaded from disk */
    exp_results_free(r);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    exp_compare_cfg_free(&cfg);
    db_history_free(h);
}

static void test_config(void **state) {
    (void)state;
    exp_compare_cfg a = exp_compare_default(), b = exp_compare_default();
    assert_int_equal(exp_compare_cfg_check(&a), 0);
    assert_int_equal(a.dqn.hidden1, 64);
    char *argv[] = {"--seed=7", "--dqn.lr", "0.01", "--reward.kind=revenue", "--guard.endings=95", "--ckpt_dir=/x/y"};
    assert_int_equal(exp_compare_cfg_parse_flags(&a, 6, argv), 0);
    assert_int_equal(a.seed, 7);
    assert_close(a.dqn.lr, 0.01, 1e-9, 0);
    assert_int_equal(a.reward.kind, ENV_REWARD_REVENUE);
    assert_int_equal(a.guard.n_endings, 1);
    assert_string_equal(a.ckpt_dir, "/x/y");
    char *text = exp_compare_cfg_text(&a);
    assert_non_null(text);
    char path[512];
    snprintf(path, sizeof path, "%s/exp_compare_cfg_%ld.cfg", test_tmpdir(), (long)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# round trip\nnightly.whatever = 3\n%s", text);
    fclose(f);
    assert_int_equal(exp_compare_cfg_load_file(&b, path), 0);
    char *text2 = exp_compare_cfg_text(&b);
    assert_string_equal(text, text2);
    free(text);
    free(text2);
    /* errors name the line */
    f = fopen(path, "w");
    fprintf(f, "compare.seed = 3\ncompare.group_size = many\n");
    fclose(f);
    assert_int_equal(exp_compare_cfg_load_file(&b, path), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), ":2"));
    f = fopen(path, "w");
    fprintf(f, "compare.nosuchkey = 1\n");
    fclose(f);
    assert_int_equal(exp_compare_cfg_load_file(&b, path), ENG_ENOTFOUND);
    unlink(path);
    char *bad[] = {"--grid.K=1"};
    assert_int_equal(exp_compare_cfg_parse_flags(&b, 1, bad), 0);
    assert_int_equal(exp_compare_cfg_check(&b), ENG_EINVAL);
    /* seeds: a blank or a sign is refused (strtoull alone would wrap " -5" to 2^64 - 5) */
    static const char *const badseed[] = {"--compare.seed= -5", "--compare.seed=+5", "--compare.seed=",
                                          "--dqn.seed= -1", "--ddpg.seed=-1"};
    for (size_t k = 0; k < sizeof badseed / sizeof badseed[0]; k++) {
        char *one[] = {(char *)badseed[k]};
        if (exp_compare_cfg_parse_flags(&b, 1, one) == 0) fail_msg("%s accepted", badseed[k]);
    }
    char *hex[] = {"--compare.seed=0x10", "--dqn.seed=12"};
    assert_int_equal(exp_compare_cfg_parse_flags(&b, 2, hex), 0);
    assert_true(b.seed == 16 && b.dqn.seed == 12);
    exp_compare_cfg_free(&a);
    exp_compare_cfg_free(&b);
}

/* The configurations the repository ships load without error and set what their comments say
 * (a renamed key would fail here, not on a user's night). */
static void test_shipped_configs(void **st) {
    (void)st;
    exp_compare_cfg c = exp_compare_default();
    assert_int_equal(exp_compare_cfg_load_file(&c, "scripts/long_horizon.cfg"), 0);
    assert_int_equal(c.dyna_horizon, 30);
    assert_int_equal(c.dyna_cut_standing, 1);
    assert_true(c.hold_z == 2.0);
    assert_int_equal(c.refit, 0);
    assert_int_equal(c.dqn_uplift, 0);
    assert_int_equal(c.demand_pool, 3);
    assert_int_equal(c.agent_best, 0);
    assert_true(c.dqn.smooth == 5.0f);
    assert_int_equal(c.support_steps, 2);
    assert_int_equal(c.ddpg_support_steps, -1);
    assert_int_equal(c.ddpg_demand_pool, -1);
    assert_int_equal(c.ddpg_agent_best, -1);
    assert_true(c.ddpg.bc_alpha == 1.0f);
    assert_int_equal(exp_compare_cfg_check(&c), 0);
    exp_compare_cfg_free(&c);
    exp_compare_cfg d = exp_compare_default();
    assert_int_equal(exp_compare_cfg_load_file(&d, "scripts/demo.cfg"), 0);
    assert_true(d.ope.min_ess_abs == 10);
    assert_int_equal(exp_compare_cfg_check(&d), 0);
    exp_compare_cfg_free(&d);
}

int main(void) {
    eng_log_set_level(ENG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),         cmocka_unit_test(test_run_basic),
        cmocka_unit_test(test_short_pooled),   cmocka_unit_test(test_divergence_held),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_seed_bootstrap),
        cmocka_unit_test(test_fqe),  cmocka_unit_test(test_warm_start),
        cmocka_unit_test(test_shared_shards), cmocka_unit_test(test_shipped_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
