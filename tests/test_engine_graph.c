/* test_engine_graph.c - the backend-independent part of the CUDA graph path (issue 16 item
 * 3), on the CPU: the recorded command's argument packing and the replay-or-capture decision
 * (eng_graph_plan), the setting and its status line, and graph regions on the CPU backend
 * (they change nothing: same results, same counters, the step's status handed back).  The
 * graph path itself runs in tests/test_backend_parity*.c when a CUDA device is present. */
#include "test_common.h"

#include "agt_dqn.h"
#include "eng_backend.h"
#include "eng_graph.h"
#include "eng_model.h"
#include "eng_util.h"

/* ---- argument packing ---------------------------------------------------------------- */

static void test_cmd_arg_packing(void **s) {
    (void)s;
    eng_graph_cmd c;
    memset(&c, 0, sizeof c);
    int i = 7;
    double d = 2.5;
    char ch = 'x';
    const float *ptr = (const float *)&d;
    assert_int_equal(eng_graph_cmd_arg(&c, &ch, 1, 1), ENG_OK);
    assert_int_equal(eng_graph_cmd_arg(&c, &d, sizeof d, _Alignof(double)), ENG_OK);
    assert_int_equal(eng_graph_cmd_arg(&c, &i, sizeof i, _Alignof(int)), ENG_OK);
    assert_int_equal(eng_graph_cmd_arg(&c, &ptr, sizeof ptr, _Alignof(const float *)), ENG_OK);
    assert_int_equal(c.nargs, 4);
    assert_int_equal(c.off[0], 0);
    assert_int_equal(c.off[1], 8); /* aligned up, the gap stays zero */
    assert_int_equal(c.off[2], 16);
    assert_int_equal(c.off[3], 24);
    assert_int_equal(c.size, 32);
    for (int k = 1; k < 8; k++) assert_int_equal(c.args[k], 0);
    double back;
    memcpy(&back, c.args + 8, sizeof back);
    assert_true(back == 2.5);
    const float *pb;
    memcpy(&pb, c.args + 24, sizeof pb);
    assert_ptr_equal(pb, ptr);
    /* refusals: bad alignment, too many bytes, too many arguments */
    assert_int_equal(eng_graph_cmd_arg(&c, &i, sizeof i, 3), ENG_EINVAL);
    assert_int_equal(eng_graph_cmd_arg(&c, &i, sizeof i, 32), ENG_EINVAL);
    assert_int_equal(eng_graph_cmd_arg(NULL, &i, sizeof i, 4), ENG_EINVAL);
    unsigned char big[ENG_GRAPH_ARG_BYTES];
    memset(big, 1, sizeof big);
    assert_int_equal(eng_graph_cmd_arg(&c, big, sizeof big, 1), ENG_EINVAL);
    assert_int_equal(c.nargs, 4); /* a refused argument leaves the command as it was */
    eng_graph_cmd e;
    memset(&e, 0, sizeof e);
    for (int k = 0; k < ENG_GRAPH_MAX_ARGS; k++) assert_int_equal(eng_graph_cmd_arg(&e, &ch, 1, 1), ENG_OK);
    assert_int_equal(eng_graph_cmd_arg(&e, &ch, 1, 1), ENG_EINVAL);
}

/* ---- the replay-or-capture decision ---------------------------------------------------- */

static void k_a(void) {}
static void k_b(void) {}

static eng_graph_cmd kernel_cmd(void (*f)(void), unsigned grid, float scalar, const float *ptr) {
    eng_graph_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = ENG_GRAPH_KERNEL;
    c.func = (const void *)(size_t)f;
    c.grid[0] = grid, c.grid[1] = c.grid[2] = 1;
    c.block[0] = 256, c.block[1] = c.block[2] = 1;
    assert_int_equal(eng_graph_cmd_arg(&c, &ptr, sizeof ptr, _Alignof(const float *)), ENG_OK);
    assert_int_equal(eng_graph_cmd_arg(&c, &scalar, sizeof scalar, _Alignof(float)), ENG_OK);
    return c;
}

static eng_graph_cmd blob_cmd(int kind, int value) {
    eng_graph_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    memcpy(c.args, &value, sizeof value);
    c.size = 40;
    return c;
}

static void test_plan(void **s) {
    (void)s;
    float buf[4] = {0};
    eng_graph_cmd old[4] = {kernel_cmd(k_a, 2, 1.0f, buf), blob_cmd(ENG_GRAPH_GEMM, 5),
                            kernel_cmd(k_b, 3, 0.5f, buf + 1), blob_cmd(ENG_GRAPH_COPY, 6)};
    eng_graph_cmd cur[4];
    unsigned char patch[4];
    memcpy(cur, old, sizeof cur);
    memset(patch, 9, sizeof patch);
    /* the same step: replay, nothing to patch */
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 1);
    for (int i = 0; i < 4; i++) assert_int_equal(patch[i], 0);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, NULL), 1);
    /* a kernel scalar (Adam's bias correction) or pointer changes: replay with that node patched */
    cur[2] = kernel_cmd(k_b, 3, 0.25f, buf + 1);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 1);
    assert_true(patch[0] == 0 && patch[1] == 0 && patch[2] == 1 && patch[3] == 0);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, NULL), 0); /* no patching wanted: capture */
    cur[0] = kernel_cmd(k_a, 2, 1.0f, buf + 2);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 1);
    assert_true(patch[0] == 1 && patch[2] == 1);
    /* a different launch shape, function, GEMM, copy, kind or length: capture anew */
    memcpy(cur, old, sizeof cur);
    cur[0] = kernel_cmd(k_a, 4, 1.0f, buf); /* another batch: another grid */
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 0);
    memcpy(cur, old, sizeof cur);
    cur[0] = kernel_cmd(k_b, 2, 1.0f, buf);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 0);
    memcpy(cur, old, sizeof cur);
    cur[1] = blob_cmd(ENG_GRAPH_GEMM, 7);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 0);
    memcpy(cur, old, sizeof cur);
    cur[3] = blob_cmd(ENG_GRAPH_COPY, 8);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 0);
    memcpy(cur, old, sizeof cur);
    cur[3] = blob_cmd(ENG_GRAPH_GEMM, 6);
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 0);
    memcpy(cur, old, sizeof cur);
    cur[0].block[0] = 128;
    assert_int_equal(eng_graph_plan(old, 4, cur, 4, patch), 0);
    memcpy(cur, old, sizeof cur);
    assert_int_equal(eng_graph_plan(old, 4, cur, 3, patch), 0);
    assert_int_equal(eng_graph_plan(old, 3, cur, 4, patch), 0);
    assert_int_equal(eng_graph_plan(old, 0, cur, 0, patch), 0); /* nothing recorded */
    assert_int_equal(eng_graph_plan(NULL, 4, cur, 4, patch), 0);
}

/* ---- the setting ------------------------------------------------------------------------ */

static void test_setting(void **s) {
    (void)s;
    const char *st = eng_cuda_graphs_status();
    assert_non_null(st);
    if (!strcmp(st, "not compiled in")) { /* NO_CUDA build: the setting is accepted and ignored */
        eng_cuda_set_graphs(0);
        assert_string_equal(eng_cuda_graphs_status(), "not compiled in");
        return;
    }
    eng_cuda_set_graphs(0);
    assert_string_equal(eng_cuda_graphs_status(), "off (turned off by the setting)");
    eng_cuda_set_graphs(1);
    st = eng_cuda_graphs_status();
    assert_true(!strcmp(st, "on") || !strcmp(st, "off (built with CUDA < 12)"));
}

/* ---- graph regions on the CPU backend ------------------------------------------------------ */

static agt_dqn *dqn_filled(void) {
    agt_dqn_cfg c = agt_dqn_default();
    c.state_dim = 5; c.n_actions = 6; c.hidden1 = 16; c.hidden2 = 16; c.batch = 8; c.learn_start = 4;
    c.replay = 32; c.target_sync = 2;
    agt_dqn *q = NULL;
    assert_int_equal(agt_dqn_create(&q, eng_backend_cpu(), &c, 3), ENG_OK);
    eng_rng r;
    eng_rng_seed(&r, 8);
    float st[5], st2[5];
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < 20; i++) {
            for (int k = 0; k < 5; k++) {
                st[k] = (float)eng_rng_normal(&r);
                st2[k] = (float)eng_rng_normal(&r);
            }
            assert_int_equal(agt_dqn_push(q, p, st, (int)eng_rng_below(&r, 6), (float)eng_rng_normal(&r), st2, 0),
                             ENG_OK);
        }
    return q;
}

/* A region on the CPU runs the ops as they come: begin/end count nothing, graph_end hands
 * back the step's status (a failure stays a failure), graph_free takes anything. */
static void test_cpu_region(void **s) {
    (void)s;
    const eng_backend *be = eng_backend_cpu();
    eng_backend_counters c0, c1;
    void *g = NULL;
    float *x = NULL;
    assert_int_equal(be->alloc(&x, 64), ENG_OK);
    be->counters(&c0);
    assert_int_equal(be->graph_begin(), ENG_OK);
    assert_int_equal(be->fill(x, 2.0f, 64), ENG_OK);
    assert_float_equal(x[63], 2.0f, 0.0f); /* done at once, not deferred */
    assert_int_equal(be->graph_end(&g, ENG_OK), ENG_OK);
    be->counters(&c1);
    eng_backend_counters d = eng_counters_diff(&c1, &c0);
    assert_int_equal(d.launches, 1);
    assert_int_equal(d.graph_launches, 0);
    assert_int_equal(d.graph_captures, 0);
    assert_null(g);
    assert_int_equal(be->graph_begin(), ENG_OK);
    assert_int_equal(be->graph_end(&g, ENG_EINVAL), ENG_EINVAL);
    be->graph_free(g);
    be->graph_free(NULL);
    be->free(x);
}

/* The DQN step (which runs its device work inside a region) is bit for bit the same with the
 * setting on and off on the CPU, and counts the same. */
static void test_cpu_dqn_setting_neutral(void **s) {
    (void)s;
    agt_dqn *a = dqn_filled(), *b = dqn_filled();
    const eng_backend *be = eng_backend_cpu();
    eng_backend_counters c0, c1, c2;
    be->counters(&c0);
    eng_cuda_set_graphs(1);
    for (int t = 0; t < 5; t++) assert_int_equal(agt_dqn_train_step(a, NULL), ENG_OK);
    be->counters(&c1);
    eng_cuda_set_graphs(0);
    for (int t = 0; t < 5; t++) assert_int_equal(agt_dqn_train_step(b, NULL), ENG_OK);
    be->counters(&c2);
    eng_cuda_set_graphs(1);
    eng_backend_counters da = eng_counters_diff(&c1, &c0), db = eng_counters_diff(&c2, &c1);
    assert_memory_equal(&da, &db, sizeof da);
    assert_int_equal(da.graph_launches, 0);
    eng_model *ma = agt_dqn_online(a), *mb = agt_dqn_online(b);
    const size_t n = (size_t)eng_model_P(ma) * eng_model_nparams(ma);
    float *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
    assert_int_equal(eng_model_get(ma, ENG_VIEW_PARAMS, pa), ENG_OK);
    assert_int_equal(eng_model_get(mb, ENG_VIEW_PARAMS, pb), ENG_OK);
    assert_memory_equal(pa, pb, n * sizeof(float));
    free(pa);
    free(pb);
    agt_dqn_free(a);
    agt_dqn_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_arg_packing),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_setting),
        cmocka_unit_test(test_cpu_region),
        cmocka_unit_test(test_cpu_dqn_setting_neutral),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
