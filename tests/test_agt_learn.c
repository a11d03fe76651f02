/* tests/test_agt_learn.c - the pieces that make DQN and DDPG learn from logged prices: one
 * shared network over many products' rows reduces its validation loss; the support mask never
 * lets the greedy choice or the target pick an unsupported level; conservative Q-learning
 * pushes unlogged levels below the logged one; the smoothness term interpolates an unlogged
 * level from its neighbours, and with a support only over the supported levels (a level outside
 * it neither moves nor pulls them); the TD3+BC term keeps the actor at the logged action where plain
 * DDPG leaves it; early stopping stops after its patience and ignores products without a loss;
 * the agent state is the same for two products that differ only in their units. */
#include "test_common.h"

#include "agt_ddpg.h"
#include "agt_dqn.h"
#include "agt_early.h"
#include "eng_backend.h"
#include "feat_agent.h"
#include "test_demand_rows.h"

#define S 4
#define A 7

/* Synthetic products: state x in [-1,1]^S with x[3] a product descriptor d; reward of level k
 * = -(u_k - 0.3 d)^2 + 0.1 x[0] + noise, u_k = (k - 3) / 3.  The best level moves with d. */
static float synth_reward(const float *x, int k, eng_rng *r) {
    float u = (k - 3) / 3.0f, c = 0.3f * x[3];
    return -(u - c) * (u - c) + 0.1f * x[0] + 0.05f * (float)eng_rng_normal(r);
}

static void synth_state(float *x, eng_rng *r) {
    for (int i = 0; i < S; i++) x[i] = (float)(2 * eng_rng_uniform(r) - 1);
}

static agt_dqn_cfg small_dqn(void) {
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = S, c.n_actions = A, c.hidden1 = c.hidden2 = 32, c.batch = 64, c.gamma = 0.0f;
    c.replay = 8000, c.learn_start = 8, c.target_sync = 20;
    return c;
}

static void test_shared_dqn_reduces_loss(void **st) {
    (void)st;
    agt_dqn_cfg c = small_dqn();
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 1), 0);
    eng_rng r;
    eng_rng_seed(&r, 42);
    float x[S], x2[S] = {0};
    /* 40 "products" x 100 rows into one network */
    for (int i = 0; i < 4000; i++) {
        synth_state(x, &r);
        int k = (int)eng_rng_below(&r, A);
        assert_int_equal(agt_dqn_push(q, 0, x, k, synth_reward(x, k, &r), x2, 1), 0);
    }
    enum { NV = 500 };
    float *vs = malloc(sizeof(float) * NV * S), *vs2 = calloc(NV * S, sizeof(float));
    float va[NV], vr[NV], vd[NV], vw[NV];
    for (int i = 0; i < NV; i++) {
        synth_state(vs + i * S, &r);
        int k = (int)eng_rng_below(&r, A);
        va[i] = (float)k, vr[i] = synth_reward(vs + i * S, k, &r), vd[i] = 1, vw[i] = 1;
    }
    float l0, l1;
    assert_int_equal(agt_dqn_eval_loss(q, vs, va, vr, vs2, vd, vw, NV, &l0), 0);
    for (int s = 0; s < 1500; s++) assert_int_equal(agt_dqn_train_step(q, NULL), 0);
    assert_int_equal(agt_dqn_eval_loss(q, vs, va, vr, vs2, vd, vw, NV, &l1), 0);
    printf("shared DQN validation loss %.5f -> %.5f\n", (double)l0, (double)l1);
    assert_true(l1 < 0.25f * l0);
    /* the greedy level follows the descriptor: d = -1 -> level 2, d = +1 -> level 4 (u = +-0.3) */
    float lo[S] = {0, 0, 0, -1}, hi[S] = {0, 0, 0, 1};
    int al, ah;
    assert_int_equal(agt_dqn_greedy(q, lo, NULL, &al), 0);
    assert_int_equal(agt_dqn_greedy(q, hi, NULL, &ah), 0);
    assert_true(al < ah);
    free(vs);
    free(vs2);
    agt_dqn_free(q);
}

static void test_support_mask(void **st) {
    (void)st;
    enum { P = 5 };
    agt_dqn_cfg c = small_dqn();
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, P), 0);
    unsigned char sup[P * A];
    eng_rng r;
    eng_rng_seed(&r, 7);
    memset(sup, 0, sizeof sup);
    sup[2] = 1; /* product 0 has one level; nothing for product 1 -> EINVAL */
    assert_int_equal(agt_dqn_set_support(q, sup), ENG_EINVAL);
    for (int trial = 0; trial < 200; trial++) {
        for (int p = 0; p < P; p++) {
            int n = 0;
            for (int k = 0; k < A; k++) n += (sup[p * A + k] = eng_rng_uniform(&r) < 0.3);
            if (!n) sup[p * A + eng_rng_below(&r, A)] = 1;
        }
        assert_int_equal(agt_dqn_set_support(q, sup), 0);
        float s[P * S];
        int act[P];
        for (int i = 0; i < P * S; i++) s[i] = (float)(4 * eng_rng_uniform(&r) - 2);
        assert_int_equal(agt_dqn_greedy(q, s, NULL, act), 0);
        for (int p = 0; p < P; p++) assert_true(sup[p * A + act[p]]);
        assert_int_equal(agt_dqn_act(q, s, NULL, act), 0); /* exploration too */
        for (int p = 0; p < P; p++) assert_true(sup[p * A + act[p]]);
    }
    assert_int_equal(agt_dqn_set_support(q, NULL), 0);
    agt_dqn_free(q);
}

/* Only level 3 is ever logged (reward 0).  Returns Q(s, 3) minus the largest other Q. */
static float logged_margin(float cql, float smooth, float *q_out) {
    agt_dqn_cfg c = small_dqn();
    c.cql_alpha = cql, c.smooth = smooth;
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 1), 0);
    eng_rng r;
    eng_rng_seed(&r, 3);
    float x[S], x2[S] = {0};
    for (int i = 0; i < 500; i++) {
        synth_state(x, &r);
        assert_int_equal(agt_dqn_push(q, 0, x, 3, 0.0f, x2, 1), 0);
    }
    for (int s = 0; s < 400; s++) assert_int_equal(agt_dqn_train_step(q, NULL), 0);
    float s0[S] = {0.1f, -0.2f, 0.3f, 0.0f}, qv[A];
    assert_int_equal(agt_dqn_q_values(q, s0, 1, qv), 0);
    float m = -INFINITY;
    for (int k = 0; k < A; k++)
        if (k != 3 && qv[k] > m) m = qv[k];
    if (q_out) memcpy(q_out, qv, sizeof qv);
    agt_dqn_free(q);
    return qv[3] - m;
}

static void test_cql_pushes_unlogged_down(void **st) {
    (void)st;
    float with = logged_margin(1.0f, 0.0f, NULL);
    printf("CQL: Q(logged) - max Q(unlogged) = %.4f\n", (double)with);
    assert_true(with > 0.05f);
}

static void test_smoothness_interpolates(void **st) {
    (void)st;
    /* levels 2 and 4 logged with rewards 0 and 1; level 3 never: smoothness puts it between */
    agt_dqn_cfg c = small_dqn();
    c.smooth = 1.0f;
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 1), 0);
    eng_rng r;
    eng_rng_seed(&r, 5);
    float x[S], x2[S] = {0};
    for (int i = 0; i < 600; i++) {
        synth_state(x, &r);
        int k = i % 2 ? 2 : 4;
        assert_int_equal(agt_dqn_push(q, 0, x, k, k == 4 ? 1.0f : 0.0f, x2, 1), 0);
    }
    for (int s = 0; s < 800; s++) assert_int_equal(agt_dqn_train_step(q, NULL), 0);
    float s0[S] = {0.2f, 0.1f, -0.3f, 0.0f}, qv[A];
    assert_int_equal(agt_dqn_q_values(q, s0, 1, qv), 0);
    printf("smooth: Q2 %.3f Q3 %.3f Q4 %.3f\n", (double)qv[2], (double)qv[3], (double)qv[4]);
    assert_true(qv[4] - qv[2] > 0.5f);                                   /* the data's gap */
    assert_true(qv[2] < qv[3] && qv[3] < qv[4]);                         /* level 3 between */
    assert_true(fabsf(qv[3] - 0.5f * (qv[2] + qv[4])) < 0.2f * (qv[4] - qv[2]));
    agt_dqn_free(q);
}

/* Rows at levels 1..5 only (reward linear in the level), the support 1..5, smoothness and CQL
 * on: levels 0 and 6 lie outside.  Two agents of the same seed, one with its output units of
 * levels 0 and 6 moved far off (bias +20): the levels inside the support learn the same Q-values
 * in both (the terms run over the support only, so no level outside it pulls them), and the
 * outside units' parameters never move.  Q [2][NT][A] of NT test states into q_out. */
static void support_pull(float *q_out, float *moved_out) {
    enum { NT = 3 };
    agt_dqn_cfg c = small_dqn();
    c.smooth = 5.0f, c.cql_alpha = 0.5f;
    unsigned char sup[A] = {0, 1, 1, 1, 1, 1, 0};
    for (int v = 0; v < 2; v++) {
        agt_dqn *q = NULL;
        assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 1), 0);
        eng_model *on = agt_dqn_online(q);
        const size_t np = eng_model_nparams(on), out = np - (size_t)A * (c.hidden2 + 1); /* W [A][h2], b [A] */
        float *w0 = malloc(np * sizeof *w0), *w1 = malloc(np * sizeof *w1);
        assert_non_null(w0);
        assert_non_null(w1);
        assert_int_equal(eng_model_get_product(on, ENG_VIEW_PARAMS, 0, w0), 0);
        if (v) { /* the outside levels' biases far off */
            w0[out + (size_t)A * c.hidden2 + 0] += 20.0f;
            w0[out + (size_t)A * c.hidden2 + A - 1] += 20.0f;
            assert_int_equal(eng_model_set_product(on, ENG_VIEW_PARAMS, 0, w0), 0);
            assert_int_equal(agt_dqn_sync_target(q), 0);
        }
        assert_int_equal(agt_dqn_set_support(q, sup), 0);
        eng_rng r;
        eng_rng_seed(&r, 17);
        float x[S], x2[S] = {0};
        for (int i = 0; i < 500; i++) {
            synth_state(x, &r);
            const int k = 1 + i % 5;
            assert_int_equal(agt_dqn_push(q, 0, x, k, 0.2f * (float)(k - 3) + 0.1f * x[0], x2, 1), 0);
        }
        for (int s = 0; s < 300; s++) assert_int_equal(agt_dqn_train_step(q, NULL), 0);
        assert_int_equal(eng_model_get_product(on, ENG_VIEW_PARAMS, 0, w1), 0);
        float moved = 0; /* largest change of the outside levels' output weights and biases */
        for (int j = 0; j < A; j += A - 1) {
            for (int h = 0; h < c.hidden2; h++) {
                const size_t o = out + (size_t)j * c.hidden2 + h;
                moved = fmaxf(moved, fabsf(w1[o] - w0[o]));
            }
            const size_t o = out + (size_t)A * c.hidden2 + j;
            moved = fmaxf(moved, fabsf(w1[o] - w0[o]));
        }
        moved_out[v] = moved;
        const float ts[NT * S] = {0.1f, -0.2f, 0.3f, 0.0f, -0.5f, 0.4f, 0.0f, 0.2f, 0.7f, 0.7f, -0.6f, -0.3f};
        for (int t = 0; t < NT; t++) assert_int_equal(agt_dqn_q_values(q, ts + t * S, 1, q_out + ((size_t)v * NT + t) * A), 0);
        free(w0);
        free(w1);
        agt_dqn_free(q);
    }
}

static void test_support_smoothness(void **st) {
    (void)st;
    enum { NT = 3 };
    float qv[2 * NT * A], moved[2];
    support_pull(qv, moved);
    printf("outside units moved %.3g / %.3g; Q(1) %.4f / %.4f, Q(5) %.4f / %.4f\n", (double)moved[0], (double)moved[1],
           (double)qv[1], (double)qv[NT * A + 1], (double)qv[5], (double)qv[NT * A + 5]);
    assert_true(moved[0] == 0.0f && moved[1] == 0.0f); /* no gradient outside the support */
    for (int t = 0; t < NT; t++)
        for (int k = 1; k <= 5; k++) /* the far-off outside levels pull nothing inside */
            assert_true(fabsf(qv[t * A + k] - qv[(NT + t) * A + k]) < 1e-4f);
    for (int t = 0; t < NT; t++) /* and the support's levels learned the data's order */
        for (int k = 1; k < 5; k++) assert_true(qv[t * A + k] < qv[t * A + k + 1]);
}

/* DDPG on rows logged at a = 0 (ratio 1) whose reward rises with the action: returns mu(s). */
static float ddpg_mu(int bc, float bc_alpha) {
    agt_ddpg_cfg c = agt_ddpg_default();
    c.state_dim = S, c.hidden1 = c.hidden2 = 32, c.batch = 64, c.gamma = 0, c.replay = 4000, c.learn_start = 8;
    c.bc = bc, c.bc_alpha = bc_alpha, c.actor_lr = 1e-3f;
    agt_ddpg *d = NULL;
    assert_int_equal(agt_ddpg_create(&d, eng_backend_cpu(), &c, 1), 0);
    eng_rng r;
    eng_rng_seed(&r, 11);
    float x[S], x2[S] = {0};
    for (int i = 0; i < 1000; i++) {
        synth_state(x, &r);
        float a = (float)(0.2 * eng_rng_normal(&r)); /* logged near 0 */
        assert_int_equal(agt_ddpg_push(d, 0, x, 1.0f + c.band * a, a, x2, 1), 0); /* reward = a */
    }
    for (int s = 0; s < 600; s++) assert_int_equal(agt_ddpg_train_step(d, NULL, NULL), 0);
    float s0[S] = {0}, ratio;
    assert_int_equal(agt_ddpg_ratio(d, s0, &ratio), 0);
    agt_ddpg_free(d);
    return (ratio - 1.0f) / c.band;
}

static void test_td3bc_term(void **st) {
    (void)st;
    float plain = ddpg_mu(0, 2.5f), tight = ddpg_mu(1, 0.05f);
    printf("DDPG action: plain %.3f, TD3+BC alpha 0.05 %.3f\n", (double)plain, (double)tight);
    assert_true(plain > 0.6f);          /* the critic's slope drives plain DDPG to the edge */
    assert_true(fabsf(tight) < 0.25f);  /* the BC term holds it at the logged actions */
}

static void test_early_stopping(void **st) {
    (void)st;
    agt_early *e = NULL;
    assert_int_equal(agt_early_create(&e, 0, 3, 0.0), ENG_EINVAL);
    assert_int_equal(agt_early_create(&e, 2, 3, 0.0), 0);
    unsigned char imp[2];
    const float seq0[] = {5, 4, 3, 3.5f, 3.2f, 3.1f, 2.0f};
    int stopped_at = -1;
    for (int i = 0; i < 7; i++) {
        float l[2] = {seq0[i], NAN};
        int running = agt_early_observe(e, l, 10L * (i + 1), imp);
        assert_int_equal(imp[1], 0); /* no loss: never improves */
        if (i < 3) assert_int_equal(imp[0], 1);
        if (e->stopped[0] && stopped_at < 0) stopped_at = i;
        assert_int_equal(running, 2 - e->stopped[0]);
    }
    assert_int_equal(stopped_at, 5);           /* three checks without a new best */
    assert_int_equal(e->best_step[0], 30);     /* the best was at the third check */
    assert_true(e->best[0] == 3.0);            /* the later 2.0 came after it stopped */
    assert_int_equal(e->stopped[1], 0);        /* NaN product trains on */
    agt_early_free(e);
}

static void test_agent_state_scale_free(void **st) {
    (void)st;
    float a[FEAT_N], b[FEAT_N], sa[FEAT_AGENT_N], sb[FEAT_AGENT_N];
    eng_rng r;
    eng_rng_seed(&r, 9);
    for (int i = 0; i < FEAT_N; i++) a[i] = (float)(1 + eng_rng_uniform(&r));
    memcpy(b, a, sizeof a);
    /* product b: prices x10, units and traffic x7 (same rates per visitor x10) */
    const int pr[] = {FEAT_PRICE_CUR, FEAT_PRICE_MA3, FEAT_PRICE_MA12};
    for (int i = 0; i < 3; i++) b[pr[i]] *= 10;
    const int vol[] = {FEAT_UNITS_1, FEAT_UNITS_3, FEAT_UNITS_7, FEAT_TRAFFIC_1, FEAT_TRAFFIC_3, FEAT_TRAFFIC_7};
    for (int i = 0; i < 6; i++) b[vol[i]] *= 7;
    b[FEAT_REVENUE_1] *= 70, b[FEAT_REVENUE_3] *= 70, b[FEAT_REVENUE_7] *= 70;
    feat_agent_prod pa, pb;
    float price_a[1] = {a[FEAT_PRICE_CUR]}, price_b[1] = {b[FEAT_PRICE_CUR]};
    assert_int_equal(feat_agent_prod_fit(&pa, a, a, price_a, 1, 1.5, 5.0, NULL), 0);
    assert_int_equal(feat_agent_prod_fit(&pb, b, b, price_b, 1, 15.0, 5.0, NULL), 0);
    feat_agent_state(a, &pa, sa);
    feat_agent_state(b, &pb, sb);
    for (int i = 0; i < FEAT_AGENT_N; i++) {
        if (i >= 4 && i <= 7) continue; /* log1p volumes differ by the +1, centred on their own means */
        assert_close(sa[i], sb[i], 1e-4, 1e-4);
    }
    for (int i = 4; i <= 7; i++) assert_close(sa[i], 0.0, 1e-5, 0); /* a usual day for each */
    for (int i = 4; i <= 7; i++) assert_close(sb[i], 0.0, 1e-5, 0);
}

/* The demand model behind the descriptors and the model-based transitions: fitted on a
 * product's rows it values prices like the truth (revenue per visitor), its optimum lies near
 * the true one, its uncertainty grows away from the logged prices, and without traffic it is a
 * units model of revenue per period. */
static void test_demand_model(void **st) {
    (void)st;
    enum { N = 120 };
    static float s1[N * FEAT_N], s2[N * FEAT_N], price[N];
    eng_rng r;
    eng_rng_seed(&r, 21);
    const double ref = 10.0, qs = 0.05, b = -1.0 / (1 - qs), a = log(qs / (1 - qs)); /* optimum at p = ref */
    tdr_rows(s1, s2, price, NULL, N, ref, a, b, 8000, &r);
    feat_agent_prod pp;
    assert_int_equal(feat_agent_prod_fit(&pp, s1, s2, price, N, ref, 5.0, NULL), 0);
    assert_true(pp.mok && pp.mlogit);
    double best = 0, bv = -1;
    for (int k = 0; k <= 60; k++) {
        const double p = ref * (0.85 + 0.005 * k), tq = 1.0 / (1.0 + exp(-(a + b * (p / ref - 1))));
        double se, v = feat_agent_model_rate(&pp, p, &se);
        assert_close(v, p * tq, 0.08 * p * tq, 0); /* revenue per visitor, as the truth */
        if (v > bv) bv = v, best = p;
    }
    assert_true(fabs(best / ref - 1.0) < 0.08);
    double se0, se1, se2;
    (void)feat_agent_model_rate(&pp, pp.mcen, &se0);
    (void)feat_agent_model_rate(&pp, ref * 1.1, &se1);
    (void)feat_agent_model_rate(&pp, ref * 1.3, &se2);
    assert_true(se0 < 1e-3 * bv && se1 > se0 && se2 > se1);
    assert_true(isnan(feat_agent_model_rate(&pp, -1.0, NULL)));
    /* no traffic: units per period, revenue per period */
    tdr_rows(s1, s2, price, NULL, N, ref, a, b, 0, &r);
    assert_int_equal(feat_agent_prod_fit(&pp, s1, s2, price, N, ref, 5.0, NULL), 0);
    assert_true(pp.mok && !pp.mlogit);
    const double tq = 1.0 / (1.0 + exp(-a));
    assert_close(feat_agent_model_rate(&pp, ref, NULL), ref * 800 * tq, 0.1 * ref * 800 * tq, 0);
    /* nothing to fit */
    assert_int_equal(feat_agent_prod_fit(&pp, NULL, NULL, NULL, 0, ref, 5.0, NULL), 0);
    assert_true(!pp.mok && isnan(feat_agent_model_rate(&pp, ref, NULL)));
}

/* A model-based transition's next state carrying its price (feat_agent_state_carry): the state
 * of the next period built from the raw state the shop would have seen had it charged `price`
 * (incumbent, moving averages, competitor ratios, units and revenue at the model's rate) is the
 * logged next state carried to that price; at the logged price and rate it is the logged state. */
static void test_agent_state_carry(void **st) {
    (void)st;
    enum { N = 120 };
    static float s1[N * FEAT_N], s2[N * FEAT_N], price[N];
    eng_rng r;
    eng_rng_seed(&r, 33);
    const double ref = 10.0;
    tdr_rows(s1, s2, price, NULL, N, ref, log(0.05 / 0.95), -1.0 / 0.95, 8000, &r);
    feat_agent_prod pp;
    assert_int_equal(feat_agent_prod_fit(&pp, s1, s2, price, N, ref, 5.0, NULL), 0);
    assert_true(pp.mok && pp.mlogit);
    /* a logged next state: priced at 1.06 ref, 8100 visitors, conversion 0.045 */
    const double pl = 10.6, v = 8100, ql = 0.045, ma3 = 10.3, ma12 = 10.1, cm = 10.2, cmin = 9.7;
    float raw[FEAT_N] = {0}, alt[FEAT_N], a[FEAT_AGENT_N], b[FEAT_AGENT_N], c[FEAT_AGENT_N];
    raw[FEAT_PRICE_CUR] = (float)pl, raw[FEAT_PRICE_MA3] = (float)ma3, raw[FEAT_PRICE_MA12] = (float)ma12;
    raw[FEAT_TRAFFIC_1] = (float)v, raw[FEAT_TRAFFIC_7] = (float)(7 * v);
    raw[FEAT_UNITS_1] = (float)(v * ql), raw[FEAT_REVENUE_1] = (float)(v * ql * pl);
    raw[FEAT_UNITS_7] = (float)(7 * v * 0.05), raw[FEAT_REVENUE_7] = (float)(7 * v * 0.05 * 10.0) + raw[FEAT_REVENUE_1];
    raw[FEAT_COMP_REL_MEAN] = (float)(pl / cm), raw[FEAT_COMP_REL_MIN] = (float)(pl / cmin);
    raw[FEAT_DOW_SIN] = 0.4f, raw[FEAT_WOY_COS] = -0.3f;
    feat_agent_state(raw, &pp, a);
    /* the same state had the period been charged 0.9 ref, sold at the model's rate there */
    const double p = 9.0, rate = feat_agent_model_rate(&pp, p, NULL);
    assert_true(rate > 0);
    memcpy(alt, raw, sizeof raw);
    alt[FEAT_PRICE_CUR] = (float)p;
    alt[FEAT_PRICE_MA3] = (float)(ma3 + (p - pl) / 3), alt[FEAT_PRICE_MA12] = (float)(ma12 + (p - pl) / 12);
    alt[FEAT_UNITS_1] = (float)(rate * v / p), alt[FEAT_REVENUE_1] = (float)(rate * v);
    alt[FEAT_UNITS_7] = raw[FEAT_UNITS_7] + alt[FEAT_UNITS_1] - raw[FEAT_UNITS_1];
    alt[FEAT_REVENUE_7] = raw[FEAT_REVENUE_7] + alt[FEAT_REVENUE_1] - raw[FEAT_REVENUE_1];
    alt[FEAT_COMP_REL_MEAN] = (float)(p / cm), alt[FEAT_COMP_REL_MIN] = (float)(p / cmin);
    feat_agent_state(alt, &pp, b);
    feat_agent_state_carry(a, &pp, pl, p, rate, c);
    assert_close(c[0], 10.0 * log(p / ref), 1e-4, 0); /* the next incumbent is the chosen price */
    assert_true(fabsf(c[0] - a[0]) > 1.0f);           /* not the logged one */
    for (int i = 0; i < FEAT_AGENT_N; i++) assert_close(c[i], b[i], 2e-3, 2e-3);
    /* at the logged price and its own rate: the logged state */
    feat_agent_state_carry(a, &pp, pl, pl, ql * pl, c);
    for (int i = 0; i < FEAT_AGENT_N; i++) assert_close(c[i], a[i], 1e-4, 1e-4);
    /* in place, a bad price copies the state, no rate leaves the rates as logged */
    memcpy(c, a, sizeof a);
    feat_agent_state_carry(c, &pp, pl, -1.0, rate, c);
    for (int i = 0; i < FEAT_AGENT_N; i++) assert_true(c[i] == a[i]);
    feat_agent_state_carry(a, &pp, pl, p, NAN, c);
    assert_true(c[8] == a[8] && c[4] == a[4] && c[0] == b[0]);
}

/* The demand model's memory (feat_agent_prod_fit_ex, memory 1): on rows of a market whose
 * customers anchor on an exponentially smoothed past price (memory 0.7, gain = loss = 2), the lag
 * column of a smoothed past price fits better than the previous price alone, and the model's
 * lag coefficient is positive (a higher past price lifts today's demand); memory 0 keeps lam 0.
 * A price held over nights (feat_agent_model_rate_held) moves the smoothed past price to it. */
static void test_demand_memory(void **st) {
    (void)st;
    enum { N = 150 };
    static float s1[N * FEAT_N], s2[N * FEAT_N], price[N];
    double hist[N + 1];
    eng_rng r;
    eng_rng_seed(&r, 41);
    const double ref = 10.0, a = log(0.05 / 0.95), b = -1.0, g = 2.0, v = 6000;
    double rp = ref;
    memset(s1, 0, sizeof s1);
    memset(s2, 0, sizeof s2);
    hist[0] = ref;
    for (int i = 0; i < N; i++) {
        const double p = ref * (0.85 + 0.06 * (int)(eng_rng_uniform(&r) * 6));
        const double q = 1.0 / (1.0 + exp(-(a + b * (p / ref - 1) + g * log(rp / p))));
        double u = floor(v * q + sqrt(v * q * (1 - q)) * eng_rng_normal(&r) + 0.5);
        float *x = s1 + (size_t)i * FEAT_N, *y = s2 + (size_t)i * FEAT_N;
        double m3 = 0, m12 = 0;
        for (int k = 0; k < 12; k++) {
            const double h = i - k >= 0 ? hist[i - k] : ref;
            m12 += h / 12, m3 += k < 3 ? h / 3 : 0;
        }
        x[FEAT_PRICE_CUR] = (float)hist[i], x[FEAT_PRICE_MA3] = (float)m3, x[FEAT_PRICE_MA12] = (float)m12;
        y[FEAT_TRAFFIC_1] = (float)v, y[FEAT_UNITS_1] = (float)fmax(u, 0), y[FEAT_REVENUE_1] = (float)(fmax(u, 0) * p);
        y[FEAT_PRICE_CUR] = (float)p;
        price[i] = (float)p;
        hist[i + 1] = p;
        rp = 0.7 * rp + 0.3 * p;
    }
    feat_agent_prod p0, p1;
    assert_int_equal(feat_agent_prod_fit_ex(&p0, s1, s2, price, N, ref, 5.0, NULL, 0), 0);
    assert_int_equal(feat_agent_prod_fit_ex(&p1, s1, s2, price, N, ref, 5.0, NULL, 1), 0);
    printf("demand memory: lam %.2f (ll %.1f) vs previous price (ll %.1f); lag coefficient %.3f vs %.3f\n", p1.lam,
           p1.dm.ll, p0.dm.ll, p1.dm.beta[FEAT_DEMAND_LAG], p0.dm.beta[FEAT_DEMAND_LAG]);
    assert_true(p0.mok && p1.mok && p0.lam == 0.0);
    assert_true(p1.lam >= 0.5 && p1.dm.ll > p0.dm.ll + 2.0);
    assert_true(p1.dm.beta[FEAT_DEMAND_LAG] > 0);
    /* a cut held (feat_agent_model_rate_held): worth less over 10 nights than on its first day, as
       the smoothed past price follows it down; over many nights it tends to the standing value */
    const feat_demand_ctx ctx = {NAN, 0.0}; /* smoothed past price = ref */
    const double cut = 0.85 * ref, d0 = feat_agent_model_rate_at(&p1, cut, &ctx, NULL);
    const double h10 = feat_agent_model_rate_held(&p1, cut, &ctx, 10, NULL);
    const feat_demand_ctx st_ctx = {NAN, log(0.85)};
    const double stand = feat_agent_model_rate_at(&p1, cut, &st_ctx, NULL);
    assert_true(feat_agent_model_rate_held(&p1, cut, &ctx, 1, NULL) == d0);
    assert_true(h10 < d0 && h10 > stand);
    assert_close(feat_agent_model_rate_held(&p1, cut, &ctx, 60, NULL), stand, 0.1 * (d0 - stand), 0);
    /* a lag coefficient within 2 robust standard errors of 0: no carry-over to value */
    feat_agent_prod vague = p1;
    vague.dm.rcov[FEAT_DEMAND_LAG * FEAT_DEMAND_K + FEAT_DEMAND_LAG] = 0.3 * p1.dm.beta[FEAT_DEMAND_LAG] * p1.dm.beta[FEAT_DEMAND_LAG];
    assert_true(feat_agent_model_rate_held(&vague, cut, &ctx, 10, NULL) == d0);
    /* the cut-standing rule (feat_agent_model_rate_cut, compare.dyna_cut_standing): a cut below
       the smoothed past price at its standing value, no transitional lift; a rise over the
       nights held, its transitional loss counted; no carry-over: the one-step value exactly */
    const double cs = feat_agent_model_rate_cut(&p1, cut, &ctx, 10, NULL);
    assert_true(cs == stand && cs < d0 && cs < h10);
    const double rise = 1.1 * ref;
    const feat_demand_ctx rs_ctx = {NAN, log(1.1)};
    const double r0 = feat_agent_model_rate_at(&p1, rise, &ctx, NULL), rst = feat_agent_model_rate_at(&p1, rise, &rs_ctx, NULL);
    assert_true(feat_agent_model_rate_cut(&p1, rise, &ctx, 10, NULL) == feat_agent_model_rate_held(&p1, rise, &ctx, 10, NULL));
    assert_true(feat_agent_model_rate_cut(&p1, rise, &ctx, 10, NULL) < rst);
    assert_true(feat_agent_model_rate_cut(&p1, rise, &ctx, 1, NULL) == r0 && r0 < rst);
    assert_true(feat_agent_model_rate_cut(&vague, cut, &ctx, 10, NULL) == d0);
    assert_true(feat_agent_model_rate_cut(&vague, rise, &ctx, 10, NULL) == r0);
    const feat_demand_ctx unk = {NAN, NAN};
    assert_true(feat_agent_model_rate_cut(&p1, cut, &unk, 10, NULL) == feat_agent_model_rate_at(&p1, cut, &unk, NULL));
    /* the previous-price model (lam 0): the price itself is the lag from night 1 on */
    const double h2 = feat_agent_model_rate_held(&p0, cut, &ctx, 2, NULL);
    assert_close(h2, 0.5 * (feat_agent_model_rate_at(&p0, cut, &ctx, NULL) + feat_agent_model_rate_at(&p0, cut, &st_ctx, NULL)), 1e-12, 1e-9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_dqn_reduces_loss),
        cmocka_unit_test(test_support_mask),
        cmocka_unit_test(test_cql_pushes_unlogged_down),
        cmocka_unit_test(test_smoothness_interpolates),
        cmocka_unit_test(test_support_smoothness),
        cmocka_unit_test(test_td3bc_term),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_agent_state_scale_free),
        cmocka_unit_test(test_demand_model),
        cmocka_unit_test(test_agent_state_carry),
        cmocka_unit_test(test_demand_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
