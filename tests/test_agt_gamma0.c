/* tests/test_agt_gamma0.c - an agent that does not discount (gamma 0, the comparison's default)
 * does not run its target networks on s': the bootstrap would be multiplied by 0.  Its training
 * equals, bit for bit, that of an agent whose discount is too small to move any target (1e-30:
 * the bootstrap is computed and rounds away), with fewer backend launches; so does its
 * validation loss (agt_*_eval_loss, the early stopping's).  The DQN on both of
 * its step paths (the host path with the smoothness term, the device-resident path without),
 * DDPG on its one path. */
#include "test_common.h"

#include "agt_ddpg.h"
#include "agt_dqn.h"

enum { P = 3, S = 4, A = 5, ROWS = 20, STEPS = 20 };

static const eng_backend *be(void) { return eng_backend_cpu(); }

static unsigned long long launches_since(const eng_backend_counters *c0) {
    eng_backend_counters c1;
    be()->counters(&c1);
    return eng_counters_diff(&c1, c0).launches;
}

/* The seeded rows every agent of a test learns from: states and next states N(0, 1), rewards
 * N(0, 1), u U(0, 1) (the action), the last row of each product done. */
typedef struct rowset {
    float s[P * ROWS * S], s2[P * ROWS * S], rw[P * ROWS], u[P * ROWS];
} rowset;

static void fill_rows(uint64_t seed, rowset *o) {
    eng_rng r;
    eng_rng_seed(&r, seed);
    for (int i = 0; i < P * ROWS; i++) {
        for (int k = 0; k < S; k++)
            o->s[(size_t)i * S + k] = (float)eng_rng_normal(&r), o->s2[(size_t)i * S + k] = (float)eng_rng_normal(&r);
        o->rw[i] = (float)eng_rng_normal(&r);
        o->u[i] = (float)eng_rng_uniform(&r);
    }
}

/* One DQN trained STEPS steps on the seeded rows; its Q-values on the rows' states into qv
 * (P * ROWS * A), the launches its training took into *launches, its validation loss on the
 * rows into loss (P) and the launches that took into *eval_launches. */
static void dqn_run(float gamma, float smooth, float *qv, unsigned long long *launches, float *loss,
                    unsigned long long *eval_launches) {
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = S, c.n_actions = A, c.hidden1 = c.hidden2 = 8, c.batch = 8, c.learn_start = 4, c.replay = 50;
    c.gamma = gamma, c.smooth = smooth;
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, be(), &c, P), ENG_OK);
    static rowset d;
    fill_rows(5, &d);
    for (int i = 0; i < P * ROWS; i++)
        assert_int_equal(agt_dqn_push(q, i / ROWS, d.s + (size_t)i * S, (int)(d.u[i] * A) % A, d.rw[i],
                                      d.s2 + (size_t)i * S, i % ROWS == ROWS - 1),
                         ENG_OK);
    eng_backend_counters c0;
    be()->counters(&c0);
    for (int t = 0; t < STEPS; t++) assert_int_equal(agt_dqn_train_step(q, NULL), ENG_OK);
    *launches = launches_since(&c0);
    assert_int_equal(agt_dqn_q_values(q, d.s, ROWS, qv), ENG_OK);
    static float act[P * ROWS], done[P * ROWS], w[P * ROWS];
    for (int i = 0; i < P * ROWS; i++)
        act[i] = (float)((int)(d.u[i] * A) % A), done[i] = i % ROWS == ROWS - 1, w[i] = 1.0f;
    be()->counters(&c0);
    assert_int_equal(agt_dqn_eval_loss(q, d.s, act, d.rw, d.s2, done, w, ROWS, loss), ENG_OK);
    *eval_launches = launches_since(&c0);
    agt_dqn_free(q);
}

static void test_dqn(void **st) {
    (void)st;
    static float q0[P * ROWS * A], q1[P * ROWS * A];
    for (int path = 0; path < 2; path++) { /* smooth 0: the device-resident step; 0.5: the host step */
        const float smooth = path ? 0.5f : 0.0f;
        unsigned long long l0, l1, e0, e1;
        float v0[P], v1[P];
        dqn_run(0.0f, smooth, q0, &l0, v0, &e0);
        dqn_run(1e-30f, smooth, q1, &l1, v1, &e1);
        assert_memory_equal(q0, q1, sizeof q0);
        assert_true(l0 < l1); /* the target network's forward on s' is not run */
        assert_memory_equal(v0, v1, sizeof v0); /* the validation loss: y = r either way */
        assert_true(e0 < e1);
        for (int p = 0; p < P; p++) assert_true(isfinite(v0[p]) && v0[p] > 0);
        for (size_t i = 0; i < sizeof q0 / sizeof *q0; i++) assert_true(isfinite(q0[i]));
    }
}

/* One DDPG trained STEPS steps on the seeded rows; its actor's ratios on the rows' states into
 * ratio (P * ROWS), the launches its training took into *launches, its validation loss on the
 * rows into loss (P) and the launches that took into *eval_launches. */
static void ddpg_run(float gamma, float *ratio, unsigned long long *launches, float *loss,
                     unsigned long long *eval_launches) {
    agt_ddpg_cfg c = agt_ddpg_default();
    c.state_dim = S, c.hidden1 = c.hidden2 = 8, c.batch = 8, c.learn_start = 4, c.replay = 50;
    c.gamma = gamma;
    agt_ddpg *q = NULL;
    assert_int_equal(agt_ddpg_create(&q, be(), &c, P), ENG_OK);
    static rowset d;
    fill_rows(6, &d);
    for (int i = 0; i < P * ROWS; i++)
        assert_int_equal(agt_ddpg_push(q, i / ROWS, d.s + (size_t)i * S, 0.8f + 0.4f * d.u[i], d.rw[i],
                                       d.s2 + (size_t)i * S, i % ROWS == ROWS - 1),
                         ENG_OK);
    eng_backend_counters c0;
    be()->counters(&c0);
    for (int t = 0; t < STEPS; t++) assert_int_equal(agt_ddpg_train_step(q, NULL, NULL), ENG_OK);
    *launches = launches_since(&c0);
    for (int i = 0; i < ROWS; i++) { /* one state per product at a time: ratio[p * ROWS + i] */
        float sp[P * S], rp[P];
        for (int p = 0; p < P; p++) memcpy(sp + p * S, d.s + ((size_t)p * ROWS + i) * S, sizeof(float) * S);
        assert_int_equal(agt_ddpg_ratio(q, sp, rp), ENG_OK);
        for (int p = 0; p < P; p++) ratio[p * ROWS + i] = rp[p];
    }
    static float lr[P * ROWS], done[P * ROWS], w[P * ROWS];
    for (int i = 0; i < P * ROWS; i++) lr[i] = 0.8f + 0.4f * d.u[i], done[i] = i % ROWS == ROWS - 1, w[i] = 1.0f;
    be()->counters(&c0);
    assert_int_equal(agt_ddpg_eval_loss(q, d.s, lr, d.rw, d.s2, done, w, ROWS, loss), ENG_OK);
    *eval_launches = launches_since(&c0);
    agt_ddpg_free(q);
}

static void test_ddpg(void **st) {
    (void)st;
    float r0[P * ROWS], r1[P * ROWS];
    unsigned long long l0, l1, e0, e1;
    float v0[P], v1[P];
    ddpg_run(0.0f, r0, &l0, v0, &e0);
    ddpg_run(1e-30f, r1, &l1, v1, &e1);
    assert_memory_equal(r0, r1, sizeof r0);
    assert_true(l0 < l1); /* the target actor and critic are not run on s' */
    assert_memory_equal(v0, v1, sizeof v0); /* the validation loss: y = r either way */
    assert_true(e0 < e1);
    for (int p = 0; p < P; p++) assert_true(isfinite(v0[p]) && v0[p] > 0);
    for (int i = 0; i < P * ROWS; i++) assert_true(isfinite(r0[i]));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dqn),
        cmocka_unit_test(test_ddpg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
