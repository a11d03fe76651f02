/* tests/test_exp_promo.c - promotions are state, never credited to a price (issue 12 item 5,
 * docs/compare.md "Promotions"): a market whose promotion weeks are exogenous (a calendar that
 * lifts demand 2.5x whatever the price) and come with a price cut to 8.00 that normal weeks never
 * charge.  In normal weeks revenue per visitor RISES with the price (8.00 is worse than 10.50);
 * a promotion-blind reward model and a blind fixed-price pick credit the promotion's lift to
 * 8.00, the promotion-aware ones do not.  Also the simulator's exogenous calendar. */
#include "test_common.h"

#include "env_sim.h"
#include "env_transitions.h"
#include "exp_compare.h"
#include "mdp_fixture.h"
#include "ope_qmodel.h"

#define NP 8
#define NT 80

/* Normal weeks: 9.50 / 10.00 / 10.50 at random; promotion weeks (t % 10 in 3, 6, 9): 8.00, 9.50
 * or 10.00.  Conversion 5% x (price / 10)^-0.5 (x 2.5 in a promotion week) of 1000 visitors,
 * with a little noise; the last period is a normal week at 10.00. */
static db_history *promo_history(void) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, NP, NT, 19000, 7), ENG_OK);
    eng_rng r;
    eng_rng_seed(&r, 77);
    float price[NT], units[NT], traffic[NT];
    uint8_t promo[NT];
    for (int p = 0; p < NP; p++) {
        for (int t = 0; t < NT; t++) {
            int pr = t % 10 == 3 || t % 10 == 6 || t % 10 == 9;
            const double normal[3] = {9.5, 10.0, 10.5}, deal[3] = {8.0, 8.0, 9.5};
            double x = t == NT - 1 ? 10.0 : pr ? (t % 10 == 9 ? 10.0 : deal[eng_rng_below(&r, 3)]) : normal[eng_rng_below(&r, 3)];
            double q = 0.05 * pow(x / 10.0, -0.5) * (pr && t != NT - 1 ? 2.5 : 1.0);
            promo[t] = (uint8_t)(pr && t != NT - 1);
            price[t] = (float)x;
            traffic[t] = 1000;
            units[t] = (float)round(1000 * q * exp(0.03 * eng_rng_normal(&r)));
        }
        char id[16];
        snprintf(id, sizeof id, "P%d", p);
        fx_fill(h, p, id, 10.0, price, units, traffic, promo);
    }
    return h;
}

/* Mean over the normal-week rows of q(level 0.80) - q(level 1.05) under the pooled reward model
 * fitted with (aware) or without the promotion flag; the truth is negative. */
static double qmodel_gap(const env_transitions *tr, const db_history *h, int aware) {
    size_t off[NP + 1] = {0};
    for (size_t r = 0; r < tr->n; r++) off[tr->product[r] + 1]++;
    for (int p = 0; p < NP; p++) off[p + 1] += off[p];
    uint8_t *pf = malloc(tr->n);
    assert_non_null(pf);
    for (size_t r = 0; r < tr->n; r++) pf[r] = h->promo[(size_t)tr->product[r] * NT + tr->t[r]];
    env_grid g = env_grid_default();
    ope_qmodel_data d = {tr, off, NP, FEAT_N, g.K, &g, NT, 8, 1, 1e-3, 5, NULL, NULL, 0, aware ? pf : NULL};
    ope_qmodel m = {0};
    assert_int_equal(ope_qmodel_fit(&d, &m), ENG_OK);
    double *z = malloc((size_t)ope_qmodel_dim(FEAT_N, g.K) * sizeof *z), q[64], s = 0;
    assert_non_null(z);
    int n = 0, k08 = env_grid_level(&g, 0.80, NULL), k105 = env_grid_level(&g, 1.05, NULL);
    for (size_t r = 0; r < tr->n; r++) {
        if (pf[r]) continue;
        ope_qmodel_predict(&m, r, z, q);
        s += q[k08] - q[k105], n++;
    }
    ope_qmodel_free(&m);
    free(z);
    free(pf);
    return s / n;
}

static void test_reward_model_promo_state(void **state) {
    (void)state;
    db_history *h = promo_history();
    env_transitions_cfg cfg = env_transitions_default();
    env_transitions *tr = NULL;
    assert_int_equal(env_transitions_build(h, &cfg, &tr), ENG_OK);
    double blind = qmodel_gap(tr, h, 0), aware = qmodel_gap(tr, h, 1);
    print_message("reward model, normal week: q(8.00) - q(10.50) blind %+.4f, promotion-aware %+.4f (truth < 0)\n",
                  blind, aware);
    assert_true(blind > 0);  /* the promotion's lift credited to 8.00 */
    assert_true(aware < 0);  /* not credited */
    env_transitions_free(tr);
    db_history_free(h);
}

static exp_compare_cfg small_cfg(int like, int promo_state) {
    exp_compare_cfg c = exp_compare_default();
    c.dqn_steps = c.ddpg_steps = 10;
    c.dqn.batch = c.ddpg.batch = 8;
    c.dqn.hidden1 = c.dqn.hidden2 = c.ddpg.hidden1 = c.ddpg.hidden2 = 16;
    c.ope.n_boot = 20;
    c.total_boot = 20;
    c.fqe_products = 0;
    c.guard.default_max_change_pct = 30.0;
    c.like_periods = like;
    c.promo_state = promo_state;
    return c;
}

/* The best fixed price: the promotion-blind pick moves to 8.00 (seen only in promotion weeks);
 * within like periods it never does. */
static void test_fixed_price_like_periods(void **state) {
    (void)state;
    db_history *h = promo_history();
    int n_low[2] = {0, 0};
    for (int like = 0; like <= 1; like++) {
        exp_compare_cfg cfg = small_cfg(like, like);
        exp_results *r = NULL;
        assert_int_equal(exp_compare_run(h, &cfg, NULL, NULL, NULL, &r), 0);
        for (int p = 0; p < NP; p++) n_low[like] += r->products[p].price[EXP_AGENT_FIXED] < 9.0;
        exp_results_free(r);
        exp_compare_cfg_free(&cfg);
    }
    print_message("fixed price below 9.00: blind %d of %d products, like periods %d\n", n_low[0], NP, n_low[1]);
    assert_true(n_low[0] >= NP / 2);
    assert_int_equal(n_low[1], 0);
    db_history_free(h);
}

/* The simulator's calendar: exogenous (the other draws are as without it), in about the asked
 * share of periods, the deep levels only in promotion periods, and the lift in the realised
 * demand but not in the normal-week truth (env_sim_rpv). */
static void test_sim_calendar(void **state) {
    (void)state;
    env_sim_gen_opts o = env_sim_gen_opts_default();
    o.family = ENV_SIM_FAMILY_LOGIT;
    o.n_levels = 8, o.level_lo = 0.73, o.level_hi = 1.15;
    db_history *h0 = NULL, *h1 = NULL;
    env_sim_log *l0 = NULL, *l1 = NULL;
    assert_int_equal(env_sim_generate_ex(&o, 20, 100, &h0, &l0), ENG_OK);
    o.promo_rate = 0.3, o.promo_hi = 0.86, o.normal_lo = 0.84;
    assert_int_equal(env_sim_generate_ex(&o, 20, 100, &h1, &l1), ENG_OK);
    long n = 0, np = 0;
    for (size_t c = 0; c < 2000; c++) {
        assert_int_equal(h0->promo[c], 0);
        assert_float_equal(h0->comp_price[h0->comp_off[c]], h1->comp_price[h1->comp_off[c]], 0); /* same exogenous draws */
        double mult = l1->grid.mult[l1->level[c]];
        if (h1->promo[c]) np++, assert_true(mult <= 0.86);
        else assert_true(mult >= 0.84);
        n++;
    }
    assert_true(np > 0.25 * n && np < 0.35 * n);
    const env_sim_params *p = &l1->params[0];
    assert_true(p->promo_cal_lift >= 0.4 && p->promo_cal_lift <= 0.9);
    double x = p->base_price, cb = env_sim_comp_mean_price(p);
    assert_true(env_sim_purchase_prob_at(p, x, x, cb, 1) > env_sim_purchase_prob_at(p, x, x, cb, 0));
    assert_float_equal(env_sim_rpv(p, x, x, cb), env_sim_purchase_prob_at(p, x, x, cb, 0) * x, 1e-12);
    db_history_free(h0), db_history_free(h1);
    env_sim_log_free(l0), env_sim_log_free(l1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reward_model_promo_state),
        cmocka_unit_test(test_fixed_price_like_periods),
        cmocka_unit_test(test_sim_calendar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
