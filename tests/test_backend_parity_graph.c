/* tests/test_backend_parity_graph.c - graph regions (be->graph_begin / graph_end, issue 16
 * item 3) on the CUDA backend against plain launches and the CPU reference, op by op:
 *   - a region of a batched GEMM, bias + ReLU, a device copy, the gradient sums of squares,
 *     Adam with clipping (bias corrections change every step: the graph's Adam node is
 *     patched) and Polyak, run 4 times: the results equal plain CUDA launches and are within
 *     the model tolerance of the CPU; the counters show one capture and one launch per region;
 *   - another batch size means a new capture; a failing op inside a region hands back its
 *     status after the work before it ran; an upload inside a region runs it plainly;
 *   - a capture that fails (forced by eng_cuda_set_graphs(2)) falls back to plain launches
 *     with the same results, and graphs stay off.
 * Without a usable CUDA device each test prints one "SKIP: no CUDA device (...)" line and
 * calls skip().  Written without a GPU: these tests have not yet run on one. */
#include "test_common.h"
#include "test_cuda.h"

enum { P = 3, B = 16, IN = 24, OUT = 20 };

/* The buffers of one run of the step (on one backend). */
typedef struct {
    const eng_backend *be;
    float *x, *w, *y, *c, *g, *m, *v, *mask, *tw;
    double *gs;
} step_bufs;

static float *up(const eng_backend *be, const float *h, size_t n) {
    float *d = NULL;
    assert_int_equal(be->alloc(&d, n), ENG_OK);
    if (h) assert_int_equal(be->to_device(d, h, n), ENG_OK);
    return d;
}

static float *down(const eng_backend *be, const float *d, size_t n) {
    float *h = malloc(n * sizeof(float));
    assert_non_null(h);
    assert_int_equal(be->to_host(h, d, n), ENG_OK);
    return h;
}

static step_bufs bufs_make(const eng_backend *be, uint64_t seed) {
    eng_rng r;
    eng_rng_seed(&r, seed);
    const size_t nx = (size_t)P * B * IN, nw = (size_t)P * OUT * IN;
    float *hx = malloc(nx * sizeof(float)), *hw = malloc(nw * sizeof(float)), hmask[P] = {1, 0, 1};
    for (size_t k = 0; k < nx; k++) hx[k] = (float)eng_rng_normal(&r);
    for (size_t k = 0; k < nw; k++) hw[k] = (float)(0.2 * eng_rng_normal(&r));
    step_bufs s = {be, up(be, hx, nx), up(be, hw, nw), up(be, NULL, (size_t)P * B * OUT),
                   up(be, NULL, nw), up(be, NULL, nw), up(be, NULL, nw), up(be, NULL, nw), up(be, hmask, P),
                   up(be, hw, nw), NULL};
    s.gs = (double *)(void *)up(be, NULL, 2 * P);
    free(hx);
    free(hw);
    return s;
}

static void bufs_free(step_bufs *s) {
    float *all[] = {s->x, s->w, s->y, s->c, s->g, s->m, s->v, s->mask, s->tw, (float *)(void *)s->gs};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) s->be->free(all[k]);
}

/* The device work of step t (1-based) for batch b: y = relu(x w^T); g := the GEMM of y^T x
 * (a gradient-like product) copied through c; Adam with clipping and step t's bias
 * corrections; the target tw Polyak-averaged toward w. */
static int step_ops(const step_bufs *s, int t, int b) {
    const eng_backend *be = s->be;
    const size_t nw = (size_t)P * OUT * IN;
    int st;
    if ((st = be->gemm(0, 1, b, OUT, IN, 1.0f, s->x, IN, (long)B * IN, s->w, IN, (long)OUT * IN, 0.0f, s->y, OUT,
                       (long)b * OUT, P))) /* y dense [P][b][OUT], as bias_act reads it */
        return st;
    if ((st = be->bias_act(s->y, s->w, OUT * IN, P, b, OUT, ENG_ACT_RELU))) return st;
    if ((st = be->gemm(1, 0, OUT, IN, b, 1.0f / (float)b, s->y, OUT, (long)b * OUT, s->x, IN, (long)B * IN, 0.0f, s->c,
                       IN, (long)OUT * IN, P)))
        return st;
    if ((st = be->copy(s->g, s->c, nw))) return st;
    if ((st = be->sumsq_dev(s->g, OUT * IN, OUT * IN, P, s->gs))) return st;
    float bc1 = (float)(1.0 - pow(0.9, t)), bc2 = (float)(1.0 - pow(0.999, t));
    if ((st = be->adam_clip(s->w, s->g, s->m, s->v, (size_t)OUT * IN, P, s->mask, s->gs, 0.5f, 1e-2f, 0.9f, 0.999f,
                            1e-8f, bc1, bc2)))
        return st;
    return be->polyak(s->tw, s->w, nw, 0.1f);
}

/* The graph run matches the plain CUDA run closely (same kernels) and the CPU within the model
 * tolerance: w, m, v, tw and y. */
static void expect_runs(const step_bufs *gr, const step_bufs *pl, const step_bufs *cp, const char *when) {
    const size_t nw = (size_t)P * OUT * IN, ny = (size_t)P * B * OUT;
    const float *bg[] = {gr->w, gr->m, gr->v, gr->tw, gr->y}, *bp[] = {pl->w, pl->m, pl->v, pl->tw, pl->y},
                *bc[] = {cp->w, cp->m, cp->v, cp->tw, cp->y};
    const char *names[] = {"w", "m", "v", "tw", "y"};
    assert_int_equal(g_cuda->sync(), ENG_OK);
    for (int k = 0; k < 5; k++) {
        size_t n = k == 4 ? ny : nw;
        float *hg = down(g_cuda, bg[k], n), *hp = down(g_cuda, bp[k], n), *hc = down(cpu(), bc[k], n);
        char what[96];
        snprintf(what, sizeof what, "%s: graph %s vs plain", when, names[k]);
        expect_close(what, hg, hp, n, 1e-6, 1e-5);
        snprintf(what, sizeof what, "%s: graph %s vs cpu", when, names[k]);
        expect_close(what, hg, hc, n, 1e-4, 1e-3);
        free(hg);
        free(hp);
        free(hc);
    }
}

static void test_region_replay(void **s) {
    (void)s;
    REQUIRE_CUDA();
    step_bufs gr = bufs_make(g_cuda, 5), pl = bufs_make(g_cuda, 5), cp = bufs_make(cpu(), 5);
    void *graph = NULL;
    eng_backend_counters c0, c1;
    for (int t = 1; t <= 4; t++) {
        eng_cuda_set_graphs(0);
        assert_int_equal(step_ops(&pl, t, B), ENG_OK);
        assert_int_equal(step_ops(&cp, t, B), ENG_OK);
        eng_cuda_set_graphs(1);
        g_cuda->counters(&c0);
        assert_int_equal(g_cuda->graph_begin(), ENG_OK);
        assert_int_equal(g_cuda->graph_end(&graph, step_ops(&gr, t, B)), ENG_OK);
        g_cuda->counters(&c1);
        eng_backend_counters d = eng_counters_diff(&c1, &c0);
        assert_int_equal(d.launches, 1); /* the whole step: one graph launch */
        assert_int_equal(d.graph_launches, 1);
        assert_int_equal(d.graph_captures, t == 1); /* later steps patch Adam's node */
        assert_int_equal(d.copies, 1);
        assert_int_equal(d.uploads + d.downloads + d.syncs, 0);
    }
    assert_non_null(graph);
    expect_runs(&gr, &pl, &cp, "4 steps");
    /* another batch: a new capture */
    eng_cuda_set_graphs(0);
    assert_int_equal(step_ops(&pl, 5, B / 2), ENG_OK);
    assert_int_equal(step_ops(&cp, 5, B / 2), ENG_OK);
    eng_cuda_set_graphs(1);
    g_cuda->counters(&c0);
    assert_int_equal(g_cuda->graph_begin(), ENG_OK);
    assert_int_equal(g_cuda->graph_end(&graph, step_ops(&gr, 5, B / 2)), ENG_OK);
    g_cuda->counters(&c1);
    assert_int_equal(c1.graph_captures - c0.graph_captures, 1);
    expect_runs(&gr, &pl, &cp, "batch change");
    g_cuda->graph_free(graph);
    bufs_free(&gr);
    bufs_free(&pl);
    bufs_free(&cp);
}

/* A failing op hands its status back through graph_end after the work before it ran; an upload
 * inside a region runs the region plainly (no graph launch), in order. */
static void test_region_edges(void **s) {
    (void)s;
    REQUIRE_CUDA();
    eng_cuda_set_graphs(1);
    float *a = up(g_cuda, NULL, 64), *b = up(g_cuda, NULL, 64);
    void *graph = NULL;
    eng_backend_counters c0, c1;
    g_cuda->counters(&c0);
    assert_int_equal(g_cuda->graph_begin(), ENG_OK);
    int st = g_cuda->fill(a, 3.0f, 64);
    if (st == ENG_OK) st = g_cuda->gemm(0, 0, -1, 1, 1, 1.0f, a, 1, 0, a, 1, 0, 0.0f, a, 1, 0, 1); /* refused */
    assert_int_equal(st, ENG_EINVAL);
    assert_int_equal(g_cuda->graph_end(&graph, st), ENG_EINVAL);
    g_cuda->counters(&c1);
    assert_int_equal(c1.graph_launches - c0.graph_launches, 0);
    float *h = down(g_cuda, a, 64);
    assert_true(h[0] == 3.0f && h[63] == 3.0f); /* the fill before the failure ran */
    free(h);
    /* an upload in the middle: everything runs, plainly, in order */
    float host[64];
    for (int k = 0; k < 64; k++) host[k] = (float)k;
    g_cuda->counters(&c0);
    assert_int_equal(g_cuda->graph_begin(), ENG_OK);
    assert_int_equal(g_cuda->fill(b, 1.0f, 64), ENG_OK);
    assert_int_equal(g_cuda->to_device(a, host, 64), ENG_OK);
    assert_int_equal(g_cuda->polyak(b, a, 64, 0.5f), ENG_OK); /* b = 0.5 a + 0.5 */
    assert_int_equal(g_cuda->graph_end(&graph, ENG_OK), ENG_OK);
    g_cuda->counters(&c1);
    assert_int_equal(c1.graph_launches - c0.graph_launches, 0);
    assert_int_equal(c1.launches - c0.launches, 2);
    h = down(g_cuda, b, 64);
    for (int k = 0; k < 64; k++) assert_true(h[k] == 0.5f * (float)k + 0.5f);
    free(h);
    g_cuda->graph_free(graph);
    g_cuda->free(a);
    g_cuda->free(b);
}

/* A failed capture: one warning line, the step done by plain launches (same results as the
 * plain run), graphs off from then on; the setting turns them back on. */
static void test_capture_failure(void **s) {
    (void)s;
    REQUIRE_CUDA();
    step_bufs gr = bufs_make(g_cuda, 6), pl = bufs_make(g_cuda, 6), cp = bufs_make(cpu(), 6);
    void *graph = NULL;
    eng_cuda_set_graphs(0);
    assert_int_equal(step_ops(&pl, 1, B), ENG_OK);
    assert_int_equal(step_ops(&cp, 1, B), ENG_OK);
    eng_cuda_set_graphs(2); /* on, and the next capture fails */
    eng_backend_counters c0, c1;
    g_cuda->counters(&c0);
    assert_int_equal(g_cuda->graph_begin(), ENG_OK);
    assert_int_equal(g_cuda->graph_end(&graph, step_ops(&gr, 1, B)), ENG_OK);
    g_cuda->counters(&c1);
    eng_backend_counters d = eng_counters_diff(&c1, &c0);
    assert_int_equal(d.graph_launches, 0);
    assert_int_equal(d.graph_captures, 0);
    assert_true(d.launches > 1); /* plain launches */
    const char *why = eng_cuda_graphs_status();
    if (strncmp(why, "off (capture failed: ", 21) != 0) fail_msg("graphs status after a failed capture: %s", why);
    expect_runs(&gr, &pl, &cp, "after a failed capture");
    /* graphs stay off: the next region runs plainly too */
    g_cuda->counters(&c0);
    assert_int_equal(g_cuda->graph_begin(), ENG_OK);
    assert_int_equal(g_cuda->graph_end(&graph, step_ops(&gr, 2, B)), ENG_OK);
    g_cuda->counters(&c1);
    assert_int_equal(c1.graph_launches - c0.graph_launches, 0);
    eng_cuda_set_graphs(1);
    assert_string_equal(eng_cuda_graphs_status(), "on");
    g_cuda->graph_free(graph);
    bufs_free(&gr);
    bufs_free(&pl);
    bufs_free(&cp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_replay),
        cmocka_unit_test(test_region_edges),
        cmocka_unit_test(test_capture_failure),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
