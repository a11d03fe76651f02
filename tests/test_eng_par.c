/* tests/test_eng_par.c - exact sums (eng_xsum.h) and the rank exchanges (eng_par.h).
 *   - eng_xsum: exact (1e16 + 1 - 1e16 = 1), the same double for any order or split of the
 *     terms, merge = adding everything, NaN / Inf;
 *   - one process: size 1, gathers are copies, agree returns the status;
 *   - under mpirun (this binary runs itself with `mpirun -np 2`; SKIP without MPI): exact
 *     all-reduce of split sums equals the one-process sum bit for bit, integer / min / max
 *     all-reduce, broadcast, gather and allgather in rank order, agree naming the failing
 *     rank, the gradient all-reduce of a shared model (eng_model_grads_allreduce: both ranks get
 *     the same gradient, the full batch's up to rounding), the cross-product fits of a split
 *     history (feature normalisation, pooled reward model, the demand models' pooled slope prior
 *     in its normal and nonparametric forms) equal to the one-process fits bit for bit, and a rank that stays silent past the timeout makes the other return ENG_EIO
 *     instead of waiting. */
#include "test_common.h"

#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eng_backend.h"
#include "eng_model.h"
#include "eng_par.h"
#include "eng_util.h"
#include "eng_xsum.h"
#include "env_behaviour.h"
#include "env_sim.h"
#include "env_transitions.h"
#include "feat.h"
#include "feat_demand.h"
#include "ope_qmodel.h"

#define NV 20000

/* Terms of every magnitude and sign (fixed seed). */
static void terms(double *v, int n) {
    eng_rng r;
    eng_rng_seed(&r, 42);
    for (int i = 0; i < n; i++) {
        double m = 2 * eng_rng_uniform(&r) - 1;
        int e = (int)eng_rng_below(&r, 120) - 60;
        v[i] = ldexp(m, e);
    }
    v[7] = 1e300, v[8] = -1e300, v[9] = 4.9e-324; /* huge pair cancels; a subnormal */
}

static void test_xsum_exact(void **state) {
    (void)state;
    eng_xsum x;
    eng_xsum_zero(&x, 1);
    eng_xsum_add(&x, 1e16);
    eng_xsum_add(&x, 1.0);
    eng_xsum_add(&x, -1e16);
    assert_true(eng_xsum_round(&x) == 1.0); /* naive double addition gives 0 */
    eng_xsum_zero(&x, 1);
    eng_xsum_add(&x, 0.1);
    eng_xsum_add(&x, -0.1);
    assert_true(eng_xsum_round(&x) == 0.0);
    eng_xsum_add(&x, -2.5);
    assert_true(eng_xsum_round(&x) == -2.5);
    /* integers times 2^-30: the exact sum is known */
    eng_xsum_zero(&x, 1);
    int64_t exact = 0;
    for (int i = 1; i <= 100000; i++) {
        int64_t k = (i % 7 == 0 ? -1 : 1) * (int64_t)i * 12345;
        exact += k;
        eng_xsum_add(&x, ldexp((double)k, -30));
    }
    assert_true(eng_xsum_round(&x) == ldexp((double)exact, -30));
}

static void test_xsum_order_free(void **state) {
    (void)state;
    static double v[NV];
    terms(v, NV);
    eng_xsum f, b, s[3], m;
    eng_xsum_zero(&f, 1), eng_xsum_zero(&b, 1), eng_xsum_zero(s, 3), eng_xsum_zero(&m, 1);
    double naive_f = 0, naive_b = 0;
    for (int i = 0; i < NV; i++) eng_xsum_add(&f, v[i]), naive_f += v[i];
    for (int i = NV - 1; i >= 0; i--) eng_xsum_add(&b, v[i]), naive_b += v[i];
    for (int i = 0; i < NV; i++) eng_xsum_add(&s[(i * 7919) % 3], v[i]); /* any split */
    for (int k = 2; k >= 0; k--) eng_xsum_merge(&m, &s[k], 1);
    double rf = eng_xsum_round(&f), rb = eng_xsum_round(&b), rm = eng_xsum_round(&m);
    assert_true(rf == rb && rf == rm);
    printf("exact sum %.17g; naive forward %.17g, backward %.17g\n", rf, naive_f, naive_b);
    eng_xsum_add(&f, INFINITY);
    assert_true(isinf(eng_xsum_round(&f)) && eng_xsum_round(&f) > 0);
    eng_xsum_add(&f, -INFINITY);
    assert_true(isnan(eng_xsum_round(&f)));
}


/* A 4-8-2 model of P slots, every slot with the parameters of seed 5's slot 0, its gradient of
 * the MSE on rows [first, first + 4) of a fixed batch of 8 (slot p: rows first + 4p ..). */
static eng_model *tie_model(int P, int first) {
    eng_arch a;
    eng_model *m = NULL, *m0 = NULL;
    if (eng_arch_mlp(&a, (int[]){4, 8, 2}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY) ||
        eng_model_create(&m, eng_backend_cpu(), &a, P, 5) || eng_model_create(&m0, eng_backend_cpu(), &a, 1, 5))
        return NULL;
    float w[256], X[8 * 4], Y[8 * 2];
    eng_model_get_product(m0, ENG_VIEW_PARAMS, 0, w);
    for (int p = 0; p < P; p++) eng_model_set_product(m, ENG_VIEW_PARAMS, p, w);
    eng_model_free(m0);
    eng_rng rr;
    eng_rng_seed(&rr, 9);
    for (int i = 0; i < 8 * 4; i++) X[i] = (float)(2 * eng_rng_uniform(&rr) - 1);
    for (int i = 0; i < 8 * 2; i++) Y[i] = (float)eng_rng_uniform(&rr);
    if (eng_model_zero_grad(m) || eng_model_forward(m, X + first * 4, 4, NULL) ||
        eng_model_loss_backward(m, ENG_LOSS_MSE, 1.0f, Y + first * 2, NULL, NULL)) {
        eng_model_free(m);
        return NULL;
    }
    return m;
}

/* eng_model_grads_tie in one process: the slots that took part are averaged into every slot;
 * none: no step. */
static void test_grads_tie_one_process(void **state) {
    (void)state;
    eng_model *two = tie_model(2, 0), *one = tie_model(1, 0);
    assert_non_null(two);
    assert_non_null(one);
    const size_t np = eng_model_nparams(two);
    float g2[512], g1[256];
    unsigned char step[2] = {0, 0};
    assert_int_equal(eng_model_grads_tie(two, (const unsigned char[]){1, 0}, step), ENG_OK); /* slot 0 only */
    assert_true(step[0] && step[1]);
    assert_int_equal(eng_model_get(two, ENG_VIEW_GRADS, g2), ENG_OK);
    assert_int_equal(eng_model_get(one, ENG_VIEW_GRADS, g1), ENG_OK);
    assert_memory_equal(g2, g1, np * sizeof(float));
    assert_memory_equal(g2 + np, g1, np * sizeof(float));
    assert_int_equal(eng_model_grads_tie(two, (const unsigned char[]){0, 0}, step), ENG_OK);
    assert_true(!step[0] && !step[1]);
    eng_model_free(two);
    eng_model_free(one);
}

static void test_par_one_process(void **state) {
    (void)state;
    assert_int_equal(eng_par_init(NULL, NULL), ENG_OK); /* not under mpirun: one process */
    assert_int_equal(eng_par_size(), 1);
    assert_int_equal(eng_par_rank(), 0);
    char *out = NULL;
    size_t counts[1];
    assert_int_equal(eng_par_gatherv("abc", 3, 0, &out, counts), ENG_OK);
    assert_int_equal(counts[0], 3);
    assert_memory_equal(out, "abc", 3);
    free(out);
    assert_int_equal(eng_par_agree(ENG_EDB), ENG_EDB);
    assert_int_equal(eng_par_agree(ENG_OK), ENG_OK);
    eng_par_finalize();
}

static void test_par_two_ranks(void **state) {
    (void)state;
    if (!eng_par_built()) {
        printf("SKIP: this build has no MPI (Open MPI not found at build time, or NO_MPI=1)\n");
        skip();
    }
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        printf("SKIP: mpirun not on PATH (apt-get install openmpi-bin)\n");
        skip();
    }
    char self[1024], cmd[4096], log[700];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    snprintf(log, sizeof log, "%s/eng_par_workers.log", test_tmpdir());
    /* under ASan: Open MPI's own allocations outlive MPI_Finalize, so no leak report */
    snprintf(cmd, sizeof cmd,
             "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" timeout 120 mpirun --allow-run-as-root "
             "--oversubscribe -x ASAN_OPTIONS -np 2 '%s' >'%s' 2>&1", self, log);
    int rc = system(cmd);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    printf("%s", buf);
    (void)rc; /* the silent-rank case ends without MPI_Finalize, so mpirun's status is not asked */
    assert_non_null(strstr(buf, "rank 0: exchanges ok"));
    assert_non_null(strstr(buf, "rank 1: exchanges ok"));
    assert_non_null(strstr(buf, "rank 0: gradient all-reduce ok"));
    assert_non_null(strstr(buf, "rank 1: gradient all-reduce ok"));
    assert_non_null(strstr(buf, "rank 0: shard tie ok"));
    assert_non_null(strstr(buf, "rank 1: shard tie ok"));
    assert_non_null(strstr(buf, "rank 0: split fits ok"));
    assert_non_null(strstr(buf, "rank 1: split fits ok"));
    assert_non_null(strstr(buf, "rank 0: silent rank detected"));
}

/* The element-wise maximum over the ranks (feat_demand_pool_np's grid tails). */
static int par_max(double *v, int n) { return eng_par_allreduce_f64(v, n, ENG_PAR_MAX); }

/* The cross-product fits of a split history (docs/mpi.md): rank r passes the products p with
 * p % 2 == r (over_ranks = 1); the fits must equal the one-process fits on every product bit
 * for bit: the feature normalisation, the pooled reward model (with 1 and with 3 folds) and
 * the behaviour model (mnl on every row and on a stride subsample; counts), the last from this
 * rank's rows alone.
 * 0 when equal, else the line of the first difference. */
static int split_fits(int r) {
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    env_transitions *tr = NULL;
    int bad = 0;
    if (env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 7, 60, 1, 19723, 5, &h, &lg)) return __LINE__;
    env_sim_log_free(lg);
    int mine[7], nm = 0;
    unsigned char use[7];
    for (int p = 0; p < h->n_products; p++) {
        use[p] = p % 2 == r;
        if (use[p]) mine[nm++] = p;
    }
    feat_norm all, split;
    if (feat_norm_fit(&all, h, NULL, 0, 0, 45) || feat_norm_fit_ex(&split, h, mine, nm, 0, 45, 1)) bad = __LINE__;
    if (!bad && (memcmp(all.mean, split.mean, sizeof all.mean) || memcmp(all.std, split.std, sizeof all.std) ||
                 all.n_rows != split.n_rows))
        bad = __LINE__;
    env_transitions_cfg tc = env_transitions_default();
    tc.norm = &all;
    if (!bad && env_transitions_build(h, &tc, &tr)) bad = __LINE__;
    size_t off[8] = {0};
    for (size_t i = 0; !bad && i < tr->n; i++) off[tr->product[i] + 1]++;
    for (int p = 0; p < 7; p++) off[p + 1] += off[p];
    env_grid grid = tc.grid;
    for (int folds = 1; !bad && folds <= 3; folds += 2) {
        ope_qmodel_data d = {tr, off, 7, FEAT_N, grid.K, &grid, 45, 10, folds, 1.0, 77, NULL, NULL, 0, NULL};
        ope_qmodel qa, qs;
        memset(&qa, 0, sizeof qa), memset(&qs, 0, sizeof qs);
        if (ope_qmodel_fit(&d, &qa)) bad = __LINE__;
        d.use = use, d.over_ranks = 1;
        if (!bad && ope_qmodel_fit(&d, &qs)) bad = __LINE__;
        if (!bad && (memcmp(qa.beta, qs.beta, (size_t)folds * qa.D * sizeof *qa.beta) ||
                     memcmp(qa.mean, qs.mean, (size_t)qa.D * sizeof *qa.mean) ||
                     memcmp(qa.sd, qs.sd, (size_t)qa.D * sizeof *qa.sd) || qa.kappa != qs.kappa ||
                     qa.resid_var != qs.resid_var || qa.n_train != qs.n_train))
            bad = __LINE__;
        for (int p = 0; !bad && p < 7; p++) {
            if (!use[p]) continue;
            if (qa.scale[p] != qs.scale[p] || qa.lo[p] != qs.lo[p] || qa.hi[p] != qs.hi[p]) bad = __LINE__;
            for (int g = 0; g < folds; g++)
                if (qa.icpt[(size_t)g * 7 + p] != qs.icpt[(size_t)g * 7 + p]) bad = __LINE__;
        }
        ope_qmodel_free(&qa);
        ope_qmodel_free(&qs);
    }
    env_transitions_free(tr);
    tr = NULL;
    /* the behaviour model on raw states: this rank's products' rows only (local product
     * indices, catalogue indices in gidx), pooled parts over both ranks */
    tc.norm = NULL;
    if (!bad && env_transitions_build(h, &tc, &tr)) bad = __LINE__;
    size_t n = bad ? 0 : tr->n, nl = 0;
    int32_t *pl = malloc((n + 1) * sizeof *pl);
    float *st = malloc((n + 1) * FEAT_N * sizeof *st), *ref = malloc((n + 1) * sizeof *ref);
    int16_t *lev = malloc((n + 1) * sizeof *lev);
    int loc[7];
    for (int i = 0; i < nm; i++) loc[mine[i]] = i;
    for (size_t i = 0; i < n; i++) {
        int p = tr->product[i];
        if (!use[p]) continue;
        pl[nl] = loc[p], ref[nl] = tr->ref_price[i], lev[nl] = tr->level[i];
        memcpy(st + nl * FEAT_N, tr->state + i * FEAT_N, FEAT_N * sizeof *st);
        nl++;
    }
    for (int v = 0; !bad && v < 3; v++) { /* mnl, mnl on a stride subsample, counts */
        env_behaviour_cfg bc = env_behaviour_default();
        if (v == 1) bc.pool_max_rows = 37;
        if (v == 2) bc.kind = ENV_BEHAV_COUNTS;
        env_behaviour *ba = NULL, *bs = NULL;
        if (env_behaviour_fit_states(&ba, &grid, 7, tr->product, tr->state, tr->ref_price, tr->level, n, &bc))
            bad = __LINE__;
        bc.over_ranks = 1, bc.gidx = mine, bc.n_catalogue = 7;
        if (!bad && env_behaviour_fit_states(&bs, &grid, nm, pl, st, ref, lev, nl, &bc)) bad = __LINE__;
        double pa[64], ps[64];
        for (size_t i = 0; !bad && i < nl; i++) {
            if (env_behaviour_probs_state(ba, mine[pl[i]], st + i * FEAT_N, ref[i], pa) ||
                env_behaviour_probs_state(bs, pl[i], st + i * FEAT_N, ref[i], ps) ||
                memcmp(pa, ps, (size_t)grid.K * sizeof *pa))
                bad = __LINE__;
        }
        env_behaviour_free(ba);
        env_behaviour_free(bs);
    }
    free(pl), free(st), free(ref), free(lev);
    env_transitions_free(tr);
    db_history_free(h);
    /* the demand models' pooled slope prior, normal and nonparametric (feat_demand_pool_run,
       feat_demand_pool_np), from this rank's half of 90 products' slopes */
    double e[90], se[90], me[45], mse[45];
    int k = 0;
    for (int i = 0; i < 90; i++) {
        e[i] = (i % 3 ? -2.6 : -0.9) + 0.3 * sin(1.7 * i), se[i] = 0.15 + 0.4 * fabs(cos(0.9 * i));
        if (i == 41) e[i] = -14.0, se[i] = 0.2; /* rank 1's outlier: the grid's tail (its maximum exchange) */
        if (i % 2 == r) me[k] = e[i], mse[k++] = se[i];
    }
    feat_demand_prior one, part;
    if (!bad && (feat_demand_pool_run(e, se, 90, NULL, &one) || feat_demand_pool_np(e, se, 90, NULL, NULL, &one)))
        bad = __LINE__;
    if (!bad && (feat_demand_pool_run(me, mse, (size_t)k, eng_par_allreduce_xsum, &part) ||
                 feat_demand_pool_np(me, mse, (size_t)k, eng_par_allreduce_xsum, par_max, &part)))
        bad = __LINE__;
    if (!bad && (one.np <= FEAT_DEMAND_NP_CORE || part.np != one.np || part.n != one.n || part.mean != one.mean ||
                 part.sd != one.sd || memcmp(part.np_x, one.np_x, (size_t)one.np * sizeof *one.np_x) ||
                 memcmp(part.np_w, one.np_w, (size_t)one.np * sizeof *one.np_w)))
        bad = __LINE__;
    return bad;
}

/* Under mpirun: every check on both ranks; prints "rank R: exchanges ok" when all pass. */
static int worker(void) {
    if (eng_par_init(NULL, NULL) || eng_par_size() != 2) return 1;
    const int r = eng_par_rank();
#define CHECK(c)                                                                      \
    do {                                                                              \
        if (!(c)) {                                                                   \
            printf("rank %d: FAILED %s (line %d): %s\n", r, #c, __LINE__, eng_err_msg()); \
            fflush(stdout);                                                           \
            return 1;                                                                 \
        }                                                                             \
    } while (0)
    static double v[NV];
    terms(v, NV);
    eng_xsum all, part;
    eng_xsum_zero(&all, 1), eng_xsum_zero(&part, 1);
    for (int i = 0; i < NV; i++) {
        eng_xsum_add(&all, v[i]);
        if ((i * 31 + 7) % 5 < 2 ? r == 0 : r == 1) eng_xsum_add(&part, v[i]); /* an uneven split */
    }
    CHECK(eng_par_allreduce_xsum(&part, 1) == ENG_OK);
    CHECK(eng_xsum_round(&part) == eng_xsum_round(&all));
    int64_t iv[2] = {r + 1, 10 * r};
    CHECK(eng_par_allreduce_i64(iv, 1, ENG_PAR_SUM) == ENG_OK && iv[0] == 3);
    CHECK(eng_par_allreduce_i64(iv + 1, 1, ENG_PAR_MAX) == ENG_OK && iv[1] == 10);
    double dv = r ? -1.5 : 2.0;
    CHECK(eng_par_allreduce_f64(&dv, 1, ENG_PAR_MIN) == ENG_OK && dv == -1.5);
    char b[8] = "";
    if (r == 1) snprintf(b, sizeof b, "bcast");
    CHECK(eng_par_bcast(b, sizeof b, 1) == ENG_OK && !strcmp(b, "bcast"));
    char *out = NULL;
    size_t counts[2] = {0, 0};
    CHECK(eng_par_gatherv(r ? "bb" : "a", r ? 2 : 1, 0, &out, counts) == ENG_OK);
    if (r == 0) CHECK(out && counts[0] == 1 && counts[1] == 2 && !memcmp(out, "abb", 3));
    else CHECK(out == NULL);
    free(out);
    CHECK(eng_par_allgatherv(r ? "bb" : "a", r ? 2 : 1, &out, counts) == ENG_OK && !memcmp(out, "abb", 3));
    free(out);
    if (r == 1) eng_err_set(ENG_EDB, "boom");
    int st = eng_par_agree(r == 1 ? ENG_EDB : ENG_OK);
    CHECK(st == ENG_EDB && !strcmp(eng_err_msg(), "rank 1: boom"));
    CHECK(eng_par_agree(ENG_OK) == ENG_OK);
    printf("rank %d: exchanges ok\n", r);
    fflush(stdout);
    /* a shared model trained data-parallel: each rank the gradient of its half of the batch,
     * all-reduced (mean); equal on both ranks bit for bit, and the full batch's gradient up to
     * float rounding */
    {
        eng_arch a;
        CHECK(eng_arch_mlp(&a, (int[]){4, 8, 2}, 3, ENG_ACT_RELU, ENG_ACT_IDENTITY) == ENG_OK);
        eng_model *half = NULL, *full = NULL;
        CHECK(eng_model_create(&half, eng_backend_cpu(), &a, 1, 5) == ENG_OK);
        CHECK(eng_model_create(&full, eng_backend_cpu(), &a, 1, 5) == ENG_OK);
        float X[8 * 4], Y[8 * 2];
        eng_rng rr;
        eng_rng_seed(&rr, 9);
        for (int i = 0; i < 8 * 4; i++) X[i] = (float)(2 * eng_rng_uniform(&rr) - 1);
        for (int i = 0; i < 8 * 2; i++) Y[i] = (float)eng_rng_uniform(&rr);
        CHECK(eng_model_zero_grad(half) == ENG_OK && eng_model_zero_grad(full) == ENG_OK);
        CHECK(eng_model_forward(half, X + r * 4 * 4, 4, NULL) == ENG_OK);
        CHECK(eng_model_loss_backward(half, ENG_LOSS_MSE, 1.0f, Y + r * 4 * 2, NULL, NULL) == ENG_OK);
        CHECK(eng_model_forward(full, X, 8, NULL) == ENG_OK);
        CHECK(eng_model_loss_backward(full, ENG_LOSS_MSE, 1.0f, Y, NULL, NULL) == ENG_OK);
        CHECK(eng_model_grads_allreduce(half, 0.5) == ENG_OK);
        size_t np = eng_model_nparams(half);
        float gh[256], gf[256], g0[256];
        CHECK(np <= 256);
        CHECK(eng_model_get(half, ENG_VIEW_GRADS, gh) == ENG_OK && eng_model_get(full, ENG_VIEW_GRADS, gf) == ENG_OK);
        memcpy(g0, gh, np * sizeof *g0);
        CHECK(eng_par_bcast(g0, np * sizeof *g0, 0) == ENG_OK);
        CHECK(memcmp(g0, gh, np * sizeof *g0) == 0); /* the same gradient on every rank */
        double worst = 0, scale = 0;
        for (size_t i = 0; i < np; i++) {
            double d = fabs((double)gh[i] - gf[i]);
            if (d > worst) worst = d;
            if (fabs(gf[i]) > scale) scale = fabs(gf[i]);
        }
        CHECK(scale > 0 && worst <= 1e-5 * scale);
        printf("rank %d: gradient all-reduce ok (largest difference from the full batch %.3g of %.3g)\n", r, worst, scale);
        fflush(stdout);
        eng_model_free(half);
        eng_model_free(full);
    }
    /* the shared networks' shards (eng_model_grads_tie): rank r holds shard r as its one slot;
     * one process holding both shards as two slots gets the same gradient to the bit */
    {
        eng_model *mine = tie_model(1, 4 * r), *both = tie_model(2, 0);
        CHECK(mine && both);
        unsigned char s1[1];
        CHECK(eng_model_grads_tie(mine, (const unsigned char[]){1}, s1) == ENG_OK && s1[0]);
        { /* the one-process twin: both shards' slots summed in double in shard order, halved */
            float gm[256], gb[512];
            const size_t np = eng_model_nparams(mine);
            double sum[256];
            CHECK(eng_model_get(both, ENG_VIEW_GRADS, gb) == ENG_OK && eng_model_get(mine, ENG_VIEW_GRADS, gm) == ENG_OK);
            for (size_t i = 0; i < np; i++) sum[i] = (double)gb[i], sum[i] += (double)gb[np + i];
            int same = 1;
            for (size_t i = 0; i < np; i++) same &= (float)(sum[i] / 2.0) == gm[i];
            CHECK(same);
            printf("rank %d: shard tie ok\n", r);
            fflush(stdout);
        }
        eng_model_free(mine);
        eng_model_free(both);
    }
    {
        int line = split_fits(r);
        CHECK(line == 0);
        printf("rank %d: split fits ok\n", r);
        fflush(stdout);
    }
    /* a silent rank: rank 1 comes 3 s late, rank 0 waits at most 1 s */
    eng_par_set_timeout(r == 0 ? 1 : 10);
    if (r == 1) sleep(3);
    st = eng_par_barrier();
    if (r == 0) {
        CHECK(st == ENG_EIO && eng_par_broken());
        printf("rank 0: silent rank detected: %s\n", eng_err_msg());
        fflush(stdout);
        _exit(0); /* broken: no MPI_Finalize */
    }
    _exit(0);
#undef CHECK
}

int main(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE")) return worker();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xsum_exact),
        cmocka_unit_test(test_xsum_order_free),
        cmocka_unit_test(test_par_one_process),
        cmocka_unit_test(test_grads_tie_one_process),
        cmocka_unit_test(test_par_two_ranks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
