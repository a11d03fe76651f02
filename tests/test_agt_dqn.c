/* tests/test_agt_dqn.c - Double DQN on a known MDP (Q* in closed form), replay buffers, the
 * hyperparameter config parser (file + flags), bad input. */
#include "test_common.h"
#include "agt_config.h"
#include "agt_ddpg.h"
#include "agt_dqn.h"
#include "agt_replay.h"

#include <unistd.h>

/* Chain of 5 cells; action 1 moves right, action 0 left (cell 0 stays).  Entering cell 4
 * pays 1 and ends the episode.  Q*(s, 1) = g^(3 - s), Q*(s, 0) = g^(4 - max(s - 1, 0)). */
static void test_dqn_learns_chain_q_star(void **state) {
    (void)state;
    const float g = 0.9f;
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = 5; c.n_actions = 2; c.hidden1 = 32; c.hidden2 = 32; c.gamma = g;
    c.batch = 32; c.target_sync = 50; c.replay = 1000; c.learn_start = 8; c.lr = 2e-3f; c.seed = 4;
    for (int dd = 0; dd < 2; dd++) {
        c.double_dqn = dd;
        agt_dqn *q = NULL;
        assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 1), ENG_OK);
        float s[5], s2[5];
        for (int rep = 0; rep < 4; rep++)
            for (int x = 0; x < 4; x++)
                for (int a = 0; a < 2; a++) {
                    int nx = a ? x + 1 : (x > 0 ? x - 1 : 0);
                    memset(s, 0, sizeof s); memset(s2, 0, sizeof s2);
                    s[x] = 1; s2[nx] = 1;
                    assert_int_equal(agt_dqn_push(q, 0, s, a, nx == 4 ? 1.0f : 0.0f, s2, nx == 4), ENG_OK);
                }
        for (int it = 0; it < 2500; it++) assert_int_equal(agt_dqn_train_step(q, NULL), ENG_OK);
        float S[4 * 5] = {0}, Q[4 * 2];
        for (int x = 0; x < 4; x++) S[x * 5 + x] = 1;
        assert_int_equal(agt_dqn_q_values(q, S, 4, Q), ENG_OK);
        for (int x = 0; x < 4; x++) {
            double q1 = pow(g, 3 - x), q0 = pow(g, 4 - (x > 0 ? x - 1 : 0));
            assert_close(Q[x * 2 + 1], q1, 0.05, 0);
            assert_close(Q[x * 2 + 0], q0, 0.05, 0);
        }
        int act;
        float s0[5] = {0, 0, 1, 0, 0};
        assert_int_equal(agt_dqn_greedy(q, s0, NULL, &act), ENG_OK);
        assert_int_equal(act, 1);
        unsigned char allowed[2] = {1, 0};
        assert_int_equal(agt_dqn_greedy(q, s0, allowed, &act), ENG_OK);
        assert_int_equal(act, 0);
        agt_dqn_free(q);
    }
}

static void test_dqn_bad_input(void **state) {
    (void)state;
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = 2; c.n_actions = 3; c.hidden1 = 4; c.hidden2 = 4; c.replay = 3;
    agt_dqn *q = NULL;
    c.gamma = 1.5f;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 1), ENG_EINVAL);
    assert_null(q);
    c.gamma = 0.9f;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 2), ENG_OK);
    float s[2] = {1, 2}, bad[2] = {1, NAN};
    assert_int_equal(agt_dqn_push(q, 0, s, 3, 0, s, 0), ENG_EINVAL);
    assert_int_equal(agt_dqn_push(q, 2, s, 0, 0, s, 0), ENG_EINVAL);
    assert_int_equal(agt_dqn_push(q, 0, s, 0, NAN, s, 0), ENG_ENUM);
    assert_int_equal(agt_dqn_push(q, 0, s, 0, 0, bad, 0), ENG_ENUM);
    assert_int_equal(agt_dqn_replay_size(q, 0), 0);
    /* ring buffer keeps the newest `replay` transitions */
    for (int i = 0; i < 5; i++) assert_int_equal(agt_dqn_push(q, 1, s, i % 3, (float)i, s, 0), ENG_OK);
    assert_int_equal(agt_dqn_replay_size(q, 1), 3);
    /* a product with no data does not train; the call still succeeds */
    float loss[2];
    assert_int_equal(agt_dqn_train_step(q, loss), ENG_OK);
    assert_true(isnan(loss[0]) && isnan(loss[1]));
    unsigned char none[6] = {0};
    int act[2];
    float s2[4] = {0};
    assert_int_equal(agt_dqn_greedy(q, s2, none, act), ENG_EINVAL);
    agt_dqn_free(q);
}

static void test_replay_sampling(void **state) {
    (void)state;
    agt_replay *r = NULL;
    assert_int_equal(agt_replay_create(&r, 2, 1, 1, 4), ENG_OK);
    float x, a = 0;
    for (int i = 0; i < 6; i++) { x = (float)i; assert_int_equal(agt_replay_push(r, 0, &x, &a, (float)i, &x, 0), ENG_OK); }
    eng_rng g;
    eng_rng_seed(&g, 1);
    float s[2 * 200], rw[2 * 200];
    assert_int_equal(agt_replay_sample(r, 0, &g, 200, s, NULL, rw, NULL, NULL), ENG_OK);
    int seen[6] = {0};
    for (int i = 0; i < 200; i++) { assert_true(s[i] >= 2 && s[i] <= 5); assert_true(s[i] == rw[i]); seen[(int)s[i]]++; }
    for (int i = 2; i < 6; i++) assert_true(seen[i] > 20); /* uniform over the 4 newest */
    assert_int_equal(agt_replay_sample(r, 1, &g, 4, s, NULL, NULL, NULL, NULL), ENG_EINVAL); /* empty product */
    agt_replay_free(r);
}

static void test_config_file_and_flags(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/agents_%d.cfg", test_tmpdir(), (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# agent settings\n\ndqn.lr = 0.0005\n  dqn.batch=128\nddpg.bc = 0\nlinucb.alpha = 2\n"
          "dqn.seed = 77\ndqn.replay = 5000\n", f);
    fclose(f);
    int n;
    const agt_cfg_field *fields = agt_dqn_fields(&n);
    agt_dqn_cfg c = agt_dqn_default();
    assert_int_equal(agt_cfg_load_file(&c, fields, n, path, "dqn"), ENG_OK);
    assert_close(c.lr, 0.0005, 1e-9, 0);
    assert_int_equal(c.batch, 128);
    assert_int_equal(c.seed, 77);
    assert_int_equal(c.replay, 5000);
    assert_close(c.gamma, 0.99, 1e-7, 0); /* untouched default */
    const agt_cfg_field *dfields = agt_ddpg_fields(&n);
    agt_ddpg_cfg d = agt_ddpg_default();
    assert_int_equal(d.bc, 1);
    assert_int_equal(agt_cfg_load_file(&d, dfields, n, path, "ddpg"), ENG_OK);
    assert_int_equal(d.bc, 0);
    /* flags */
    fields = agt_dqn_fields(&n);
    char *argv[] = {"--gamma=0.9", "--target_sync", "7"};
    assert_int_equal(agt_cfg_parse_flags(&c, fields, n, 3, argv), ENG_OK);
    assert_close(c.gamma, 0.9, 1e-7, 0);
    assert_int_equal(c.target_sync, 7);
    char *bad1[] = {"--gamma=abc"};
    assert_int_equal(agt_cfg_parse_flags(&c, fields, n, 1, bad1), ENG_EINVAL);
    assert_close(c.gamma, 0.9, 1e-7, 0);
    char *bad2[] = {"--nosuch=1"};
    assert_int_equal(agt_cfg_parse_flags(&c, fields, n, 1, bad2), ENG_ENOTFOUND);
    char *bad3[] = {"--batch"};
    assert_int_equal(agt_cfg_parse_flags(&c, fields, n, 1, bad3), ENG_EINVAL);
    /* round trip through the dump */
    char *dump = agt_cfg_to_string(&c, fields, n, "dqn");
    assert_non_null(strstr(dump, "dqn.target_sync = 7\n"));
    f = fopen(path, "w");
    fputs(dump, f);
    fclose(f);
    free(dump);
    agt_dqn_cfg c2 = agt_dqn_default();
    assert_int_equal(agt_cfg_load_file(&c2, fields, n, path, "dqn"), ENG_OK);
    assert_memory_equal(&c, &c2, sizeof c);
    /* errors name file and line */
    f = fopen(path, "w");
    fputs("dqn.lr = 0.1\ndqn.batch = 12x\n", f);
    fclose(f);
    assert_int_equal(agt_cfg_load_file(&c2, fields, n, path, "dqn"), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), ":2:"));
    f = fopen(path, "w");
    fputs("dqn.lr 0.1\n", f);
    fclose(f);
    assert_int_equal(agt_cfg_load_file(&c2, fields, n, path, "dqn"), ENG_EFORMAT);
    f = fopen(path, "w");
    fputs("dqn.learning_rate = 0.1\n", f);
    fclose(f);
    assert_int_equal(agt_cfg_load_file(&c2, fields, n, path, "dqn"), ENG_ENOTFOUND);
    assert_non_null(strstr(eng_err_msg(), "learning_rate"));
    unlink(path);
    assert_int_equal(agt_cfg_load_file(&c2, fields, n, path, "dqn"), ENG_EIO);
}

static void test_save_load(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/dqn_%d.h5", test_tmpdir(), (int)getpid());
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = 3; c.n_actions = 4; c.hidden1 = 8; c.hidden2 = 8; c.batch = 4; c.learn_start = 4; c.seed = 12;
    c.gamma = 0.8f;
    agt_dqn *q = NULL, *q2 = NULL;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 2), ENG_OK);
    float s[3] = {0.1f, -0.2f, 0.3f};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(agt_dqn_push(q, 0, s, i % 4, 1.0f, s, 0), ENG_OK);
        assert_int_equal(agt_dqn_push(q, 1, s, 3 - i % 4, 0.5f, s, 1), ENG_OK);
    }
    for (int i = 0; i < 5; i++) assert_int_equal(agt_dqn_train_step(q, NULL), ENG_OK);
    assert_int_equal(agt_dqn_save(q, path), ENG_OK);
    assert_int_equal(agt_dqn_load(&q2, eng_backend_cpu(), path), ENG_OK);
    assert_close(agt_dqn_config(q2)->gamma, 0.8, 1e-7, 0);
    float S[6] = {0.1f, 0.2f, 0.3f, -1, 0, 1}, q1[8], qq[8];
    assert_int_equal(agt_dqn_q_values(q, S, 1, q1), ENG_OK);
    assert_int_equal(agt_dqn_q_values(q2, S, 1, qq), ENG_OK);
    assert_memory_equal(q1, qq, sizeof q1);
    agt_dqn_free(q2);
    q2 = NULL;
    /* a corrupt file is a clear error */
    assert_int_equal(truncate(path, 200), 0);
    assert_int_not_equal(agt_dqn_load(&q2, eng_backend_cpu(), path), ENG_OK);
    assert_null(q2);
    unlink(path);
    agt_dqn_free(q);

    /* DDPG pair */
    agt_ddpg_cfg d = agt_ddpg_default();
    d.state_dim = 3; d.hidden1 = 8; d.hidden2 = 8; d.batch = 4; d.learn_start = 4; d.band = 0.2f;
    agt_ddpg *a = NULL, *a2 = NULL;
    assert_int_equal(agt_ddpg_create(&a, eng_backend_cpu(), &d, 2), ENG_OK);
    for (int i = 0; i < 8; i++)
        for (int p = 0; p < 2; p++) assert_int_equal(agt_ddpg_push(a, p, s, 0.9f + 0.05f * (i % 3), 1.0f, s, 0), ENG_OK);
    for (int i = 0; i < 5; i++) assert_int_equal(agt_ddpg_train_step(a, NULL, NULL), ENG_OK);
    assert_int_equal(agt_ddpg_save(a, path), ENG_OK);
    assert_int_equal(agt_ddpg_load(&a2, eng_backend_cpu(), path), ENG_OK);
    float r1[2], r2[2];
    assert_int_equal(agt_ddpg_ratio(a, S, r1), ENG_OK);
    assert_int_equal(agt_ddpg_ratio(a2, S, r2), ENG_OK);
    assert_memory_equal(r1, r2, sizeof r1);
    assert_true(r1[0] >= 0.8f && r1[0] <= 1.2f);
    assert_close(agt_ddpg_config(a2)->band, 0.2, 1e-7, 0);
    agt_ddpg_free(a2);
    char cpath[600];
    snprintf(cpath, sizeof cpath, "%s.critic", path);
    unlink(cpath);
    a2 = NULL;
    assert_int_not_equal(agt_ddpg_load(&a2, eng_backend_cpu(), path), ENG_OK); /* critic missing */
    assert_null(a2);
    unlink(path);
    agt_ddpg_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dqn_learns_chain_q_star),
        cmocka_unit_test(test_dqn_bad_input),
        cmocka_unit_test(test_replay_sampling),
        cmocka_unit_test(test_config_file_and_flags),
        cmocka_unit_test(test_save_load),
    };
    return cmocka_run_group_tests_name("agt_dqn", tests, NULL, NULL);
}
