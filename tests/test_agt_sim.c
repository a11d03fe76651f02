/* tests/test_agt_sim.c - DQN and DDPG trained in the market simulator (env_sim) on one
 * product with a reference-price effect (gain-seeking customers: a discount below the
 * remembered price lifts conversion more than a rise above it hurts, so a dynamic policy
 * beats every fixed price).  Each must reach >= 90% of the DP-optimal expected discounted
 * profit and beat the best fixed price.  Also: a group of products trains exactly like the
 * same products trained one by one, and a diverging product is isolated. */
#include "test_common.h"
#include "agt_ddpg.h"
#include "agt_dqn.h"
#include "env_sim.h"

#define H 20
#define GAMMA 0.95
#define NF 5

typedef struct {
    env_sim_params prm;
    env_sim_grid grid;
    double scale; /* reward scale */
} market_case;

static void make_case(market_case *c) {
    env_sim_params_default(&c->prm);
    c->prm.period_days = 7;
    c->prm.traffic_sigma = 0;
    c->prm.traffic_trend = 0;
    c->prm.comp_sigma = 0;
    c->prm.comp_promo_prob = 0;
    c->prm.promo_lift = 0;
    c->prm.ref_gain = 2.5;
    c->prm.ref_loss = 0.5;
    assert_int_equal(env_sim_grid_make(&c->grid, 21, 0.75, 1.25), ENG_OK);
    c->scale = 100.0;
}

/* Agent state from the observable price history: time left and price-memory features
 * (exponential averages of past price ratios at three decay rates, starting from 1). */
static void features(int t, const double *price_hist, double p0, float *f) {
    double e[3] = {1, 1, 1};
    const double dec[3] = {0.5, 0.7, 0.9};
    double last = 1.0;
    for (int s = 0; s < t; s++) {
        last = (double)(float)price_hist[s] / p0; /* the features an agent sees are float */
        for (int k = 0; k < 3; k++) e[k] = dec[k] * e[k] + (1 - dec[k]) * last;
    }
    f[0] = (float)((double)t / H);
    f[1] = (float)(4 * (last - 1));
    for (int k = 0; k < 3; k++) f[2 + k] = (float)(4 * (e[k] - 1));
}

typedef struct {
    int kind; /* 0 dqn, 1 ddpg */
    agt_dqn *dqn;
    agt_ddpg *ddpg;
    const market_case *mc;
} agent_policy;

static int agent_policy_fn(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out) {
    (void)product; (void)rng;
    agent_policy *ap = ctx;
    float f[NF];
    features(t, obs->price, obs->base_price, f);
    if (ap->kind == 0) {
        int a;
        int st = agt_dqn_greedy(ap->dqn, f, NULL, &a);
        if (st) return st;
        *price_out = obs->base_price * ap->mc->grid.mult[a];
    } else {
        float r;
        int st = agt_ddpg_ratio(ap->ddpg, f, &r);
        if (st) return st;
        *price_out = obs->base_price * r;
    }
    return ENG_OK;
}

/* One training episode in a fresh market; `agents` act through the callbacks below. */
static void run_episode(const market_case *mc, uint64_t seed, agt_dqn *dqn, agt_ddpg *ddpg, int train_every) {
    env_sim_market m;
    assert_int_equal(env_sim_market_init(&m, &mc->prm, seed, 0), ENG_OK);
    double hist[H];
    float f[NF], f2[NF];
    const double p0 = mc->prm.base_price;
    if (ddpg) agt_ddpg_reset_noise(ddpg, 0);
    for (int t = 0; t < H; t++) {
        features(t, hist, p0, f);
        double ratio;
        int level = 0;
        float fr = 1.0f;
        if (dqn) {
            assert_int_equal(agt_dqn_act(dqn, f, NULL, &level), ENG_OK);
            ratio = mc->grid.mult[level];
        } else {
            assert_int_equal(agt_ddpg_act(ddpg, f, &fr), ENG_OK);
            ratio = fr;
        }
        env_sim_outcome o;
        assert_int_equal(env_sim_market_step(&m, p0 * ratio, &o), ENG_OK);
        hist[t] = o.price;
        features(t + 1, hist, p0, f2);
        float r = (float)(o.profit / mc->scale);
        int done = t == H - 1;
        if (dqn) {
            assert_int_equal(agt_dqn_push(dqn, 0, f, level, r, f2, done), ENG_OK);
            if (t % train_every == 0) assert_int_equal(agt_dqn_train_step(dqn, NULL), ENG_OK);
        } else {
            assert_int_equal(agt_ddpg_push(ddpg, 0, f, fr, r, f2, done), ENG_OK);
            if (t % train_every == 0) assert_int_equal(agt_ddpg_train_step(ddpg, NULL, NULL), ENG_OK);
        }
    }
}

typedef struct { double dp, best_fixed, agent; } sim_result;

static void reference_values(const market_case *mc, sim_result *res) {
    env_sim_dp *dp = NULL;
    assert_int_equal(env_sim_dp_solve(&mc->prm, &mc->grid, H, GAMMA, 401, 1, &dp), ENG_OK);
    env_sim_value v;
    assert_int_equal(env_sim_evaluate(&mc->prm, &mc->grid, 0, H, GAMMA, 8, 77, env_sim_policy_dp, dp, &v), ENG_OK);
    res->dp = v.exp_disc_profit.mean;
    env_sim_dp_free(dp);
    res->best_fixed = -INFINITY;
    for (int k = 0; k < mc->grid.n; k++) {
        double mult = mc->grid.mult[k];
        assert_int_equal(env_sim_evaluate(&mc->prm, &mc->grid, 0, H, GAMMA, 8, 77, env_sim_policy_fixed, &mult, &v), ENG_OK);
        if (v.exp_disc_profit.mean > res->best_fixed) res->best_fixed = v.exp_disc_profit.mean;
    }
}

static double evaluate_agent(const market_case *mc, agent_policy *ap) {
    env_sim_value v;
    assert_int_equal(env_sim_evaluate(&mc->prm, &mc->grid, 0, H, GAMMA, 8, 77, agent_policy_fn, ap, &v), ENG_OK);
    return v.exp_disc_profit.mean;
}

static void test_dqn_reaches_dp_value(void **state) {
    (void)state;
    market_case mc;
    make_case(&mc);
    sim_result res;
    reference_values(&mc, &res);
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = NF; c.n_actions = 21; c.hidden1 = 64; c.hidden2 = 64;
    c.gamma = (float)GAMMA; c.batch = 64; c.target_sync = 200; c.replay = 50000; c.learn_start = 256;
    c.eps_start = 1.0f; c.eps_end = 0.02f; c.seed = 3;
    const int episodes = 1500;
    c.eps_decay = (long)episodes * H * 6 / 10;
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 1), ENG_OK);
    for (int e = 0; e < episodes; e++) run_episode(&mc, eng_seed_derive(1000, (uint64_t)e), q, NULL, 1);
    agent_policy ap = {0, q, NULL, &mc};
    res.agent = evaluate_agent(&mc, &ap);
    print_message("DQN: DP %.1f, best fixed %.1f (%.3f of DP), agent %.1f (%.3f of DP)\n", res.dp, res.best_fixed,
                  res.best_fixed / res.dp, res.agent, res.agent / res.dp);
    int nbad;
    agt_dqn_diverged(q, &nbad);
    assert_int_equal(nbad, 0);
    assert_true(res.agent >= 0.9 * res.dp);
    assert_true(res.agent > res.best_fixed);
    agt_dqn_free(q);
}

static void test_ddpg_reaches_dp_value(void **state) {
    (void)state;
    market_case mc;
    make_case(&mc);
    sim_result res;
    reference_values(&mc, &res);
    agt_ddpg_cfg c = agt_ddpg_default();
    c.state_dim = NF; c.hidden1 = 64; c.hidden2 = 64; c.gamma = (float)GAMMA;
    c.actor_lr = 1e-3f; c.critic_lr = 1e-3f; c.batch = 64; c.replay = 50000; c.learn_start = 256;
    c.bc = 0; c.noise_sigma = 0.3f; c.seed = 5;
    agt_ddpg *q = NULL;
    assert_int_equal(agt_ddpg_create(&q, eng_backend_cpu(), &c, 1), ENG_OK);
    const int episodes = 1500;
    for (int e = 0; e < episodes; e++) run_episode(&mc, eng_seed_derive(2000, (uint64_t)e), NULL, q, 1);
    agent_policy ap = {1, NULL, q, &mc};
    res.agent = evaluate_agent(&mc, &ap);
    print_message("DDPG: DP %.1f, best fixed %.1f (%.3f of DP), agent %.1f (%.3f of DP)\n", res.dp, res.best_fixed,
                  res.best_fixed / res.dp, res.agent, res.agent / res.dp);
    int nbad;
    agt_ddpg_diverged(q, &nbad);
    assert_int_equal(nbad, 0);
    assert_true(res.agent >= 0.9 * res.dp);
    assert_true(res.agent > res.best_fixed);
    agt_ddpg_free(q);
}

/* ---- model groups ------------------------------------------------------------------- */
#define GP 3

/* Train `P` products (catalogue indices first..first+P-1) for `episodes` episodes, all
 * products stepping together; inject NaN into group product `poison` (-1: none) after
 * episode 2. */
static void train_group(const market_case *mcs, int first, int P, agt_dqn *dqn, agt_ddpg *ddpg, int episodes, int poison) {
    env_sim_market m[GP];
    double hist[GP][H];
    float f[GP][NF], f2[NF];
    for (int e = 0; e < episodes; e++) {
        if (e == 2 && poison >= 0) {
            eng_model *mod = dqn ? agt_dqn_online(dqn) : agt_ddpg_actor(ddpg);
            size_t np = eng_model_nparams(mod);
            float *buf = malloc(sizeof(float) * np);
            assert_int_equal(eng_model_get_product(mod, ENG_VIEW_PARAMS, poison, buf), ENG_OK);
            buf[np / 2] = NAN;
            assert_int_equal(eng_model_set_product(mod, ENG_VIEW_PARAMS, poison, buf), ENG_OK);
            free(buf);
        }
        for (int p = 0; p < P; p++) {
            assert_int_equal(env_sim_market_init(&m[p], &mcs[first + p].prm, eng_seed_derive(55, (uint64_t)e), first + p), ENG_OK);
            if (ddpg) agt_ddpg_reset_noise(ddpg, p);
        }
        for (int t = 0; t < H; t++) {
            int lv[GP];
            float fr[GP];
            for (int p = 0; p < P; p++) features(t, hist[p], mcs[first + p].prm.base_price, f[p]);
            if (dqn) assert_int_equal(agt_dqn_act(dqn, &f[0][0], NULL, lv), ENG_OK);
            else assert_int_equal(agt_ddpg_act(ddpg, &f[0][0], fr), ENG_OK);
            for (int p = 0; p < P; p++) {
                const market_case *mc = &mcs[first + p];
                double ratio = dqn ? mc->grid.mult[lv[p]] : (isfinite(fr[p]) ? fr[p] : 1.0);
                env_sim_outcome o;
                assert_int_equal(env_sim_market_step(&m[p], mc->prm.base_price * ratio, &o), ENG_OK);
                hist[p][t] = o.price;
                features(t + 1, hist[p], mc->prm.base_price, f2);
                float r = (float)(o.profit / mc->scale);
                if (dqn) assert_int_equal(agt_dqn_push(dqn, p, f[p], lv[p], r, f2, t == H - 1), ENG_OK);
                else assert_int_equal(agt_ddpg_push(ddpg, p, f[p], (float)ratio, r, f2, t == H - 1), ENG_OK);
            }
            if (dqn) assert_int_equal(agt_dqn_train_step(dqn, NULL), ENG_OK);
            else assert_int_equal(agt_ddpg_train_step(ddpg, NULL, NULL), ENG_OK);
        }
    }
}

static void group_cases(market_case *mcs) {
    for (int p = 0; p < GP; p++) {
        make_case(&mcs[p]);
        mcs[p].prm.elasticity = -1.5 - 0.5 * p;
        mcs[p].prm.base_price = 10.0 + 5.0 * p;
        mcs[p].prm.unit_cost = 0.6 * mcs[p].prm.base_price;
    }
}

static void copy_product(eng_model *dst, int pd, eng_model *src, int ps) {
    size_t np = eng_model_nparams(src);
    float *buf = malloc(sizeof(float) * np);
    assert_int_equal(eng_model_get_product(src, ENG_VIEW_PARAMS, ps, buf), ENG_OK);
    assert_int_equal(eng_model_set_product(dst, ENG_VIEW_PARAMS, pd, buf), ENG_OK);
    free(buf);
}

static void assert_same_product(eng_model *a, int pa, eng_model *b, int pb) {
    size_t np = eng_model_nparams(a);
    float *x = malloc(sizeof(float) * np), *y = malloc(sizeof(float) * np);
    assert_int_equal(eng_model_get_product(a, ENG_VIEW_PARAMS, pa, x), ENG_OK);
    assert_int_equal(eng_model_get_product(b, ENG_VIEW_PARAMS, pb, y), ENG_OK);
    assert_memory_equal(x, y, sizeof(float) * np); /* bitwise */
    free(x); free(y);
}

static agt_dqn_cfg small_dqn(void) {
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = NF; c.hidden1 = 32; c.hidden2 = 32; c.gamma = (float)GAMMA; c.batch = 16;
    c.target_sync = 25; c.replay = 1000; c.learn_start = 16; c.eps_decay = 200; c.seed = 9;
    return c;
}
static agt_ddpg_cfg small_ddpg(void) {
    agt_ddpg_cfg c = agt_ddpg_default();
    c.state_dim = NF; c.hidden1 = 32; c.hidden2 = 32; c.gamma = (float)GAMMA; c.batch = 16;
    c.replay = 1000; c.learn_start = 16; c.bc = 1; c.noise = 1; c.seed = 9;
    return c;
}

static void test_group_equals_one_by_one(void **state) {
    (void)state;
    market_case mcs[GP];
    group_cases(mcs);
    /* DQN */
    agt_dqn_cfg c = small_dqn();
    agt_dqn *g = NULL;
    assert_int_equal(agt_dqn_create(&g, eng_backend_cpu(), &c, GP), ENG_OK);
    agt_dqn *single[GP];
    for (int p = 0; p < GP; p++) {
        agt_dqn_cfg cs = c;
        cs.product_base = p;
        assert_int_equal(agt_dqn_create(&single[p], eng_backend_cpu(), &cs, 1), ENG_OK);
        copy_product(agt_dqn_online(single[p]), 0, agt_dqn_online(g), p);
        assert_int_equal(agt_dqn_sync_target(single[p]), ENG_OK);
    }
    train_group(mcs, 0, GP, g, NULL, 8, -1);
    for (int p = 0; p < GP; p++) {
        train_group(mcs, p, 1, single[p], NULL, 8, -1);
        assert_true(agt_dqn_steps(single[p]) > 100);
        assert_same_product(agt_dqn_online(g), p, agt_dqn_online(single[p]), 0);
        agt_dqn_free(single[p]);
    }
    agt_dqn_free(g);
    /* DDPG */
    agt_ddpg_cfg d = small_ddpg();
    agt_ddpg *gd = NULL, *sd[GP];
    assert_int_equal(agt_ddpg_create(&gd, eng_backend_cpu(), &d, GP), ENG_OK);
    for (int p = 0; p < GP; p++) {
        agt_ddpg_cfg ds = d;
        ds.product_base = p;
        assert_int_equal(agt_ddpg_create(&sd[p], eng_backend_cpu(), &ds, 1), ENG_OK);
        copy_product(agt_ddpg_actor(sd[p]), 0, agt_ddpg_actor(gd), p);
        copy_product(agt_ddpg_critic(sd[p]), 0, agt_ddpg_critic(gd), p);
        assert_int_equal(agt_ddpg_sync_targets(sd[p]), ENG_OK);
    }
    train_group(mcs, 0, GP, NULL, gd, 8, -1);
    for (int p = 0; p < GP; p++) {
        train_group(mcs, p, 1, NULL, sd[p], 8, -1);
        assert_same_product(agt_ddpg_actor(gd), p, agt_ddpg_actor(sd[p]), 0);
        assert_same_product(agt_ddpg_critic(gd), p, agt_ddpg_critic(sd[p]), 0);
        agt_ddpg_free(sd[p]);
    }
    agt_ddpg_free(gd);
}

static void test_divergence_isolated(void **state) {
    (void)state;
    market_case mcs[GP];
    group_cases(mcs);
    agt_dqn_cfg c = small_dqn();
    agt_dqn *clean = NULL, *poisoned = NULL;
    assert_int_equal(agt_dqn_create(&clean, eng_backend_cpu(), &c, GP), ENG_OK);
    assert_int_equal(agt_dqn_create(&poisoned, eng_backend_cpu(), &c, GP), ENG_OK);
    train_group(mcs, 0, GP, clean, NULL, 6, -1);
    train_group(mcs, 0, GP, poisoned, NULL, 6, 1);
    int nbad;
    const unsigned char *bad = agt_dqn_diverged(poisoned, &nbad);
    assert_int_equal(nbad, 1);
    assert_int_equal(bad[1], 1);
    agt_dqn_diverged(clean, &nbad);
    assert_int_equal(nbad, 0);
    /* the healthy products trained exactly as without the poisoned one */
    assert_same_product(agt_dqn_online(clean), 0, agt_dqn_online(poisoned), 0);
    assert_same_product(agt_dqn_online(clean), 2, agt_dqn_online(poisoned), 2);
    agt_dqn_free(clean);
    agt_dqn_free(poisoned);

    agt_ddpg_cfg d = small_ddpg();
    agt_ddpg *dc = NULL, *dp = NULL;
    assert_int_equal(agt_ddpg_create(&dc, eng_backend_cpu(), &d, GP), ENG_OK);
    assert_int_equal(agt_ddpg_create(&dp, eng_backend_cpu(), &d, GP), ENG_OK);
    train_group(mcs, 0, GP, NULL, dc, 6, -1);
    train_group(mcs, 0, GP, NULL, dp, 6, 2);
    bad = agt_ddpg_diverged(dp, &nbad);
    assert_int_equal(nbad, 1);
    assert_int_equal(bad[2], 1);
    assert_same_product(agt_ddpg_actor(dc), 0, agt_ddpg_actor(dp), 0);
    assert_same_product(agt_ddpg_critic(dc), 1, agt_ddpg_critic(dp), 1);
    agt_ddpg_free(dc);
    agt_ddpg_free(dp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dqn_reaches_dp_value),
        cmocka_unit_test(test_ddpg_reaches_dp_value),
        cmocka_unit_test(test_group_equals_one_by_one),
        cmocka_unit_test(test_divergence_isolated),
    };
    return cmocka_run_group_tests_name("agt_sim", tests, NULL, NULL);
}
