/* tests/test_exp_explore.c - logged exploration and exact propensities (issue 13, items 1 and 2):
 * the distribution of each push written and read back exactly through a real PostgreSQL; the
 * history's logged cells (the last finished run's price for that day, charged) and only those;
 * OPE's propensity for those rows is the logged one, so a wrong logged propensity changes the
 * estimate; exploration stays inside the guardrails, max_step and the cost budget, never touches
 * a pinned product, and is reproducible by seed; a nightly run with exploration pushes the
 * distributions and the next night's OPE counts the rows it logged. */
#include "test_nightly.h"

#include "db_load.h"
#include "db_push.h"
#include "db_store.h"
#include "env_action.h"
#include "env_sim.h"
#include "env_transitions.h"
#include "eng_rng.h"
#include "exp_gate.h"
#include "exp_nightly.h"
#include "ope.h"

static PGconn *conn;

static int setup(void **state) {
    (void)state;
    conn = tdb_create("explore");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

#define D0 19723 /* 2024-01-01 */

static long q1(const char *sql) { return tdb_long(conn, sql, 0, NULL); }

/* Three products, 20 daily rows at 1.99 (P3 pinned by the team); run `run_id` pushes recs. */
static void fixture(void) {
    tdb_exec(conn,
             "INSERT INTO products (product_id, name, base_price, unit_cost, explore) VALUES"
             " ('P1', 'one', 2.00, 1.0, NULL), ('P2', 'two', 2.00, 1.0, true), ('P3', 'three', 2.00, 1.0, false)",
             0, NULL);
    tdb_exec(conn,
             "INSERT INTO sales SELECT p, DATE '2024-01-01' + g, 1.99, 10 + g % 3, 1.99 * (10 + g % 3), 100 + g, false"
             " FROM unnest(ARRAY['P1', 'P2', 'P3']) p, generate_series(0, 19) g",
             0, NULL);
}

static void push(const char *run_id, const db_recommendation *recs, size_t n) {
    db_run run = {run_id, D0 + 14, "finished", "{}", (int)n, 0, (int)n, 0, NULL, 0, 0, NAN, NAN};
    if (db_push(conn, &run, recs, n, NULL)) fail_msg("push: %s", eng_err_msg());
}

static db_history *load(void) {
    db_load_opts o;
    db_load_opts_default(&o);
    o.from = "2024-01-01";
    o.to = "2024-01-20";
    db_history *h = NULL;
    db_load_report rep;
    if (db_load_history(conn, &o, &h, &rep)) fail_msg("load: %s", eng_err_msg());
    db_load_report_free(&rep);
    return h;
}

static const double SP[3] = {1.99, 2.09, 1.89};
static const double SQ[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};

static void test_push_and_read_back(void **state) {
    (void)state;
    fixture();
    /* day 14: P1's price 2.09 was drawn with probability 1/3 from {1.99, 2.09, 1.89}; P2's was
     * deterministic (1.99, charged); day 15: P2 recommended 2.05 but 1.99 was charged */
    db_recommendation r[2] = {
        {"P1", D0 + 14, 2.09, 1.99, "dqn", "hold:x|explore", NAN, NAN, NAN, 2, 3, SP, SQ, 1.0 / 3, 1.99},
        {"P2", D0 + 14, 1.99, 1.99, "incumbent", "hold:x", NAN, NAN, NAN, 2, 0, NULL, NULL, 1, NAN},
    };
    push("run-a", r, 2);
    db_recommendation r2 = {"P2", D0 + 15, 2.05, 1.99, "dqn", "deploy:dqn", NAN, NAN, NAN, 2, 0, NULL, NULL, 1, NAN};
    push("run-b", &r2, 1);
    tdb_exec(conn, "UPDATE sales SET price = 2.09, revenue = 2.09 * units WHERE product_id = 'P1' AND day = DATE '2024-01-15'",
             0, NULL);
    /* the database holds the decimals pushed and the probabilities exactly */
    assert_int_equal(q1("SELECT count(*) FROM price_recommendations WHERE product_id = 'P1' AND run_id = 'run-a'"
                        " AND support_prices::text = '{1.99,2.09,1.89}' AND propensity = 1::float8 / 3"
                        " AND support_probs = ARRAY[1::float8 / 3, 1::float8 / 3, 1::float8 / 3]"
                        " AND decided_price::text = '1.99' AND price::text = '2.09'"), 1);
    assert_int_equal(q1("SELECT count(*) FROM price_recommendations WHERE product_id = 'P2' AND run_id = 'run-a'"
                        " AND propensity = 1 AND support_prices::text = '{1.99}' AND support_probs = '{1}'"), 1);
    db_history *h = load();
    int p1 = db_history_find(h, "P1"), p2 = db_history_find(h, "P2"), p3 = db_history_find(h, "P3");
    assert_true(p1 >= 0 && p2 >= 0 && p3 >= 0);
    assert_non_null(h->explore_off);
    assert_int_equal(h->explore_off[p1], 0);
    assert_int_equal(h->explore_off[p2], 0);
    assert_int_equal(h->explore_off[p3], 1);
    assert_int_equal(h->n_logged, 2); /* P1 and P2 on day 14; not P2 on day 15 (2.05 not charged) */
    long i1 = db_history_logged_find(h, (int64_t)p1 * h->n_periods + 14);
    long i2 = db_history_logged_find(h, (int64_t)p2 * h->n_periods + 14);
    assert_true(i1 >= 0 && i2 >= 0);
    assert_int_equal(db_history_logged_find(h, (int64_t)p2 * h->n_periods + 15), -1);
    assert_int_equal(db_history_logged_find(h, (int64_t)p1 * h->n_periods + 13), -1);
    assert_true(h->logged_prop[i1] == 1.0 / 3); /* bit for bit */
    assert_int_equal(h->logged_off[i1 + 1] - h->logged_off[i1], 3);
    for (int k = 0; k < 3; k++) {
        assert_true(h->logged_sprice[h->logged_off[i1] + k] == SP[k]);
        assert_true(h->logged_sprob[h->logged_off[i1] + k] == SQ[k]);
    }
    assert_true(h->logged_prop[i2] == 1.0);
    assert_int_equal(h->logged_off[i2 + 1] - h->logged_off[i2], 0); /* deterministic: {charged price}, {1} */
    db_history_free(h);
    /* a later finished run's recommendation for the same day is the one that counts */
    const double sq2[2] = {0.75, 0.25}, sp2[2] = {1.99, 2.09};
    db_recommendation r3 = {"P1", D0 + 14, 2.09, 1.99, "dqn", "explore", NAN, NAN, NAN, 2, 2, sp2, sq2, 0.25, 1.99};
    push("run-c", &r3, 1);
    h = load();
    i1 = db_history_logged_find(h, (int64_t)db_history_find(h, "P1") * h->n_periods + 14);
    assert_true(i1 >= 0 && h->logged_prop[i1] == 0.25);
    db_history_free(h);
    /* inconsistent distributions are refused before any SQL */
    db_recommendation bad = r[0];
    bad.propensity = 0.5; /* not the probability of 2.09 */
    assert_int_equal(db_push(conn, &(db_run){"run-d", D0, "finished", NULL, 1, 0, 1, 0, NULL, 0, 0, NAN, NAN}, &bad, 1, NULL),
                     ENG_EINVAL);
    const double sq3[3] = {0.5, 1.0 / 3, 1.0 / 3};
    bad = r[0];
    bad.support_prob = sq3; /* sums to 7/6 */
    assert_int_equal(db_push(conn, &(db_run){"run-d", D0, "finished", NULL, 1, 0, 1, 0, NULL, 0, 0, NAN, NAN}, &bad, 1, NULL),
                     ENG_EINVAL);
    assert_int_equal(q1("SELECT count(*) FROM pricing_runs WHERE run_id = 'run-d'"), 0);
}

/* IPS of "always the level of 2.09" on every transition of h (the logged rows carry the logged
 * propensity); *n_logged receives the transitions whose propensity was logged. */
static double ips_of_209(const db_history *h, size_t *n_logged, float *prop_p1) {
    env_transitions_cfg tc = env_transitions_default();
    env_transitions *tr = NULL;
    if (env_transitions_build(h, &tc, &tr)) fail_msg("transitions: %s", eng_err_msg());
    int lvl = 0;
    assert_int_equal(env_grid_map_price(&tc.grid, 2.09, 2.00, &lvl, NULL, NULL), 0);
    const int K = tr->K, n = (int)tr->n;
    ope_bandit d = {n, K, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    d.action = calloc((size_t)n, sizeof *d.action);
    d.reward = calloc((size_t)n, sizeof *d.reward);
    d.pscore = calloc((size_t)n, sizeof *d.pscore);
    d.pi = calloc((size_t)n * K, sizeof *d.pi);
    assert_true(d.action && d.reward && d.pscore && d.pi);
    *prop_p1 = NAN;
    for (int i = 0; i < n; i++) {
        d.action[i] = tr->level[i];
        d.reward[i] = tr->reward[i];
        d.pscore[i] = tr->propensity[i];
        d.pi[(size_t)i * K + lvl] = 1;
        if (tr->product[i] == db_history_find(h, "P1") && tr->t[i] == 14) {
            assert_int_equal(tr->logged[i], 1);
            assert_int_equal(tr->level[i], lvl);
            *prop_p1 = tr->propensity[i];
        }
    }
    *n_logged = tr->n_logged;
    ope_config oc = ope_config_default();
    oc.n_boot = 0;
    ope_result res;
    if (ope_bandit_estimate(&d, &oc, &res)) fail_msg("ope: %s", eng_err_msg());
    double v = res.v[OPE_IPS].estimate;
    free(d.action), free(d.reward), free(d.pscore), free(d.pi);
    env_transitions_free(tr);
    return v;
}

static void test_ope_uses_logged(void **state) {
    (void)state; /* the database of test_push_and_read_back: run-c logged P1's 2.09 on day 14 at 0.25 */
    db_history *h = load();
    size_t nl = 0;
    float prop = NAN;
    double right = ips_of_209(h, &nl, &prop);
    assert_int_equal(nl, 2);
    assert_true(prop == 0.25f); /* {1.99: 0.75, 2.09: 0.25}: the level of 2.09 has 0.25 */
    db_history_free(h);
    /* the same rows with a wrong logged propensity (0.5): IPS halves exactly on that row, the only
     * one on the target level */
    tdb_exec(conn, "UPDATE price_recommendations SET propensity = 0.5, support_probs = '{0.5,0.5}' WHERE run_id = 'run-c'",
             0, NULL);
    h = load();
    double wrong = ips_of_209(h, &nl, &prop);
    assert_true(prop == 0.5f);
    assert_true(isfinite(right) && right != 0);
    assert_close(wrong, right / 2, 1e-12, 1e-9);
    db_history_free(h);
    /* without the logged row (its run not finished) the estimated behaviour policy is used again */
    tdb_exec(conn, "UPDATE pricing_runs SET status = 'failed' WHERE run_id IN ('run-a', 'run-c')", 0, NULL);
    h = load();
    assert_int_equal(h->n_logged, 0);
    env_transitions_cfg tc = env_transitions_default();
    env_transitions *tr = NULL;
    if (env_transitions_build(h, &tc, &tr)) fail_msg("transitions: %s", eng_err_msg());
    assert_int_equal(tr->n_logged, 0);
    for (size_t i = 0; i < tr->n; i++)
        if (tr->product[i] == db_history_find(h, "P1") && tr->t[i] == 14) assert_true(tr->propensity[i] != 0.25f && tr->propensity[i] != 0.5f);
    env_transitions_free(tr);
    db_history_free(h);
    tdb_exec(conn, "UPDATE pricing_runs SET status = 'finished' WHERE run_id IN ('run-a', 'run-c')", 0, NULL);
}

/* ---- exploration without a database ------------------------------------------------------ */
#define NP 60
#define NT 30

typedef struct xfix {
    db_history *h;
    exp_results res;
    exp_nightly_decision d[NP];
} xfix;

/* 60 products at base price 2.00 with demand units = 100 (p / 2)^-2.5 at prices 1.79 .. 2.19;
 * product 5k+1 pinned by the team, 5k+2 pinned by its bounds (min = max), 5k+3 a 3% change
 * limit, 5k+4 bounds [1.97, 2.02].  Every decision holds the incumbent 1.99. */
static void xfix_make(xfix *x) {
    memset(x, 0, sizeof *x);
    if (db_history_alloc(&x->h, NP, NT, D0, 1)) fail_msg("%s", eng_err_msg());
    db_history *h = x->h;
    h->explore_off = calloc(NP, 1);
    x->res.n_products = NP;
    x->res.products = calloc(NP, sizeof *x->res.products);
    assert_true(h->explore_off && x->res.products);
    for (int p = 0; p < NP; p++) {
        char id[16];
        snprintf(id, sizeof id, "X%03d", p);
        h->product_id[p] = strdup(id);
        h->base_price[p] = 2.00;
        h->unit_cost[p] = 1.0;
        h->price_scale[p] = 2;
        if (p % 5 == 1) h->explore_off[p] = 1;
        if (p % 5 == 2) h->min_price[p] = h->max_price[p] = 1.99;
        if (p % 5 == 3) h->max_change_pct[p] = 3;
        if (p % 5 == 4) h->min_price[p] = 1.97, h->max_price[p] = 2.02;
        for (int t = 0; t < NT; t++) {
            size_t c = (size_t)p * NT + t;
            double pr = t == NT - 1 ? 1.99 : 1.79 + 0.02 * ((t * 7 + p) % 21);
            h->price[c] = pr;
            h->units[c] = (float)(100 * pow(pr / 2.0, -2.5));
            h->revenue[c] = (float)(pr * h->units[c]);
            h->traffic[c] = 500;
            h->present[c] = 1;
        }
        x->res.products[p].index = p;
        x->res.products[p].product_id = h->product_id[p];
        exp_nightly_decision *d = &x->d[p];
        d->hold = 0;
        d->agent = EXP_AGENT_HISTORY;
        d->price = d->incumbent = 1.99;
        snprintf(d->reason, sizeof d->reason, "hold:no_significant_uplift");
    }
}

static void xfix_reset(xfix *x) {
    for (int p = 0; p < NP; p++) {
        x->d[p].price = 1.99;
        snprintf(x->d[p].reason, sizeof x->d[p].reason, "hold:no_significant_uplift");
    }
}

static void xfix_free(xfix *x) {
    for (int p = 0; p < NP; p++) x->h->product_id[p] = x->res.products[p].product_id, x->res.products[p].product_id = NULL;
    free(x->res.products);
    db_history_free(x->h);
}

static exp_nightly_cfg xcfg(uint64_t seed, float share) {
    exp_nightly_cfg c = exp_nightly_default();
    c.date = D0 + NT;
    c.compare.seed = seed;
    c.compare.guard.n_endings = 0; /* whole cents: .99/.49 endings leave 1.99 no neighbour within 5% */
    c.explore.share = share;
    c.explore.max_cost = 1.0f;
    return c;
}

/* Every decision's distribution is consistent and inside the guardrails. */
static void check_distributions(const xfix *x, const exp_nightly_cfg *c) {
    for (int p = 0; p < NP; p++) {
        const exp_nightly_decision *d = &x->d[p];
        assert_true(d->decided_price == 1.99);
        if (d->n_support == 0) {
            assert_true(d->propensity == 1.0 && d->price == 1.99 && !d->explored);
            continue;
        }
        assert_true(p % 5 != 1 && p % 5 != 2); /* pinned products have no distribution */
        double sum = 0, pp = -1;
        for (int k = 0; k < d->n_support; k++) {
            double q = d->support_price[k];
            sum += d->support_prob[k];
            if (q == d->price) pp = d->support_prob[k];
            assert_true(fabs(q - 1.99) <= c->explore.max_step * 1.99 + 1e-9); /* max_step */
            assert_true(q >= 1.50 - 1e-9 && q <= 2.50 + 1e-9);                /* the agents' band */
            assert_true(fabs(q * 100 - round(q * 100)) < 1e-6);               /* whole cents */
            if (p % 5 == 3) assert_true(fabs(q / 1.99 - 1) <= 0.03 + 1e-9);  /* change limit */
            if (p % 5 == 4) assert_true(q >= 1.97 - 1e-9 && q <= 2.02 + 1e-9); /* min/max price */
        }
        assert_close(sum, 1.0, 1e-12, 0);
        assert_true(pp == d->propensity);
        assert_int_equal(d->explored, d->price != 1.99);
        if (d->explored) assert_non_null(strstr(d->reason, "|explore"));
    }
}

static void test_explore_budget_pins_seed(void **state) {
    (void)state;
    xfix x;
    xfix_make(&x);
    /* off: nothing changes, every propensity is 1 */
    exp_nightly_cfg c = xcfg(7, 0);
    exp_explore_summary s;
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    assert_int_equal(s.on, 0);
    assert_int_equal(s.n_explored, 0);
    for (int p = 0; p < NP; p++) assert_true(x.d[p].n_support == 0 && x.d[p].propensity == 1.0 && x.d[p].price == 1.99);
    /* on: pinned products (team or bounds) never explored; the others inside every bound */
    c = xcfg(7, 0.5f);
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    check_distributions(&x, &c);
    assert_int_equal(s.n_pinned, NP / 5);
    assert_int_equal(s.n_no_neighbour, NP / 5); /* min = max */
    assert_int_equal(s.n_eligible, 3 * NP / 5);
    assert_true(s.prob == 0.5f);
    assert_true(s.n_explored > 0 && s.n_explored < s.n_eligible);
    double p1[NP], w1[NP];
    for (int p = 0; p < NP; p++) p1[p] = x.d[p].price, w1[p] = x.d[p].propensity;
    /* the same seed draws the same prices; another seed other ones */
    xfix_reset(&x);
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    for (int p = 0; p < NP; p++) assert_true(x.d[p].price == p1[p] && x.d[p].propensity == w1[p]);
    xfix_reset(&x);
    c = xcfg(8, 0.5f);
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    int diff = 0;
    for (int p = 0; p < NP; p++) diff += x.d[p].price != p1[p];
    assert_true(diff > 0);
    /* the probabilities are the decimals set (0.2, not the float 0.2000000029...) */
    xfix_reset(&x);
    c = xcfg(7, 0.2f);
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    assert_true(s.prob == 0.2);
    for (int p = 0; p < NP; p++) {
        const exp_nightly_decision *d = &x.d[p];
        if (d->n_support == 0) continue;
        assert_true(d->support_prob[0] == 1 - 0.2);
        assert_true(d->propensity == (d->explored ? 0.2 / (d->n_support - 1) : 1 - 0.2));
    }
    /* a tight budget lowers the probability so that the expected cost fits it */
    xfix_reset(&x);
    c = xcfg(7, 0.5f);
    c.explore.max_cost = 0.0005f;
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    check_distributions(&x, &c);
    assert_true(s.prob < 0.5 && s.prob > 0);
    assert_true(s.revenue > 0);
    assert_true(s.cost_expected <= 0.0005 * s.revenue * (1 + 1e-12));
    /* with .99/.49 endings no neighbour of 1.99 lies within 5%: nothing to explore */
    xfix_reset(&x);
    c = xcfg(7, 0.5f);
    c.compare.guard.n_endings = 2;
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    assert_int_equal(s.n_explored, 0);
    assert_int_equal(s.n_eligible, 0);
    xfix_free(&x);
}

/* Thompson mode: the logged probabilities are the exact law of "draw the slope from the demand
 * fit's posterior, price at the support price nearest the sampled optimum" (checked against a
 * Monte-Carlo of that recipe), the distributions stay inside every bound, the draw is
 * reproducible, and on this elastic market (elasticity -2.5: the best price is far below) the
 * mass lies below the decided price. */
static void test_explore_thompson(void **state) {
    (void)state;
    xfix x;
    xfix_make(&x);
    for (int p = 0; p < NP; p++) /* noise, so the slope's posterior has width */
        for (int t = 0; t < NT - 1; t++) {
            size_t c = (size_t)p * NT + t;
            x.h->units[c] = (float)round(x.h->units[c] * exp(0.35 * sin(1.7 * t + 0.3 * p)));
            x.h->revenue[c] = (float)(x.h->price[c] * x.h->units[c]);
        }
    exp_nightly_cfg c = xcfg(7, 1.0f);
    c.explore.mode = EXP_EXPLORE_THOMPSON;
    c.explore.max_step = 0.08f;
    exp_explore_summary s;
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    check_distributions(&x, &c);
    assert_int_equal(s.n_pinned, NP / 5);
    assert_true(s.n_eligible > 0 && s.n_explored > 0);
    double below = 0, above = 0;
    for (int p = 0; p < NP; p++) {
        const exp_nightly_decision *d = &x.d[p];
        for (int k = 0; k < d->n_support; k++) {
            if (d->support_price[k] < 1.985) below += d->support_prob[k];
            if (d->support_price[k] > 1.995) above += d->support_prob[k];
        }
    }
    assert_true(below > 3 * above);
    /* the exact law against a Monte-Carlo of the recipe, for product 0 (no bound but the band) */
    exp_gate_fit fit;
    assert_int_equal(exp_gate_fit_product(x.h, 0, 1.99, (int)c.compare.reward.kind, NULL, &fit), 0);
    assert_true(fit.ok && fit.slope_se > 0);
    const exp_nightly_decision *d = &x.d[0];
    assert_true(d->n_support >= 3);
    double sp[EXP_EXPLORE_MAX_SUPPORT], cnt[EXP_EXPLORE_MAX_SUPPORT] = {0};
    int n = d->n_support;
    for (int k = 0; k < n; k++) sp[k] = d->support_price[k];
    eng_rng rng;
    eng_rng_seed(&rng, 99);
    const int N = 200000;
    const double c0 = isfinite(fit.cost) ? fit.cost : 0;
    for (int i = 0; i < N; i++) {
        double b = fit.slope + fit.slope_se * eng_rng_normal(&rng);
        double target = b < 0 ? 1.99 * (c0 / 1.99 - 1 / b) : 1e9; /* b >= 0: no interior optimum, the highest */
        int best = 0;
        for (int k = 1; k < n; k++)
            if (fabs(sp[k] - target) < fabs(sp[best] - target)) best = k;
        cnt[best] += 1;
    }
    for (int k = 0; k < n; k++) assert_close(cnt[k] / N, d->support_prob[k], 0.006, 0);
    /* the same seed, the same draws */
    double p1 = d->price, w1 = d->propensity;
    xfix_reset(&x);
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    assert_true(x.d[0].price == p1 && x.d[0].propensity == w1);
    xfix_free(&x);
}

/* The fixture with noise and, when lag > 0, carry-over: units also scale as (yesterday's price /
 * today's)^lag (customers who remember yesterday's price). */
static void xfix_carry(xfix *x, double lag) {
    xfix_make(x);
    for (int p = 0; p < NP; p++)
        for (int t = 0; t < NT - 1; t++) {
            size_t c = (size_t)p * NT + t;
            double carry = t > 0 ? pow(x->h->price[c - 1] / x->h->price[c], lag) : 1.0;
            x->h->units[c] = (float)round(x->h->units[c] * carry * exp(0.35 * sin(1.7 * t + 0.3 * p)));
            x->h->revenue[c] = (float)(x->h->price[c] * x->h->units[c]);
        }
}

/* Product 0's Thompson law (max_step 0.08, share 1, seed 7) with explore.temper = t and
 * explore.no_lag = no_lag on the fixture with carry-over `lag` (xfix_carry) whose periods
 * NT - 13 .. NT - 2 hold the price 2.15 when held = 1 (selling as if demand rose with the price),
 * into sp/pr (returns the support's size),
 * checked against a Monte Carlo of the recipe with the slope drawn from N(slope, (t se)^2)
 * (t = 0: unset, read as 1) of the fit without the lag column when no_lag and the product shows
 * no carry-over, else of the gate's fit; *mean_k: the support price nearest the posterior mean's
 * optimum; *se (may be NULL): that slope's standard error. */
static int thompson_law_ex(float t, int no_lag, double lag, int held, double *sp, double *pr, int *mean_k, double *se) {
    xfix x;
    xfix_carry(&x, lag);
    for (int p = 0; held && p < NP; p++)
        for (int k = NT - 13; k < NT - 1; k++) {
            size_t c = (size_t)p * NT + k;
            x.h->price[c] = 2.15;
            x.h->units[c] = (float)round(100 * pow(2.15 / 2.0, 1.0) * exp(0.35 * sin(1.7 * k + 0.3 * p)));
            x.h->revenue[c] = (float)(x.h->price[c] * x.h->units[c]);
        }
    exp_nightly_cfg c = xcfg(7, 1.0f);
    c.explore.mode = EXP_EXPLORE_THOMPSON;
    c.explore.max_step = 0.08f;
    c.explore.temper = t;
    c.explore.no_lag = no_lag;
    exp_explore_summary s;
    assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
    check_distributions(&x, &c);
    exp_gate_fit fit, one;
    assert_int_equal(exp_gate_fit_ex(x.h, 0, 1.99, (int)c.compare.reward.kind, 1, NULL, &one), 0);
    const int carries = one.ok && feat_demand_lag_carries(&one.dm, 2.0);
    if (no_lag && !carries) assert_int_equal(exp_gate_fit_product_nolag(x.h, 0, 1.99, (int)c.compare.reward.kind, NULL, &fit), 0);
    else assert_int_equal(exp_gate_fit_product(x.h, 0, 1.99, (int)c.compare.reward.kind, NULL, &fit), 0);
    assert_true(fit.ok && fit.slope_se > 0 && fit.slope < 0);
    if (se) *se = fit.slope_se;
    const exp_nightly_decision *d = &x.d[0];
    const int n = d->n_support;
    assert_true(n >= 3);
    double cnt[EXP_EXPLORE_MAX_SUPPORT] = {0};
    for (int k = 0; k < n; k++) sp[k] = d->support_price[k], pr[k] = d->support_prob[k];
    const double c0 = isfinite(fit.cost) ? fit.cost : 0, xm = 1.99 * (c0 / 1.99 - 1 / fit.slope);
    *mean_k = 0;
    for (int k = 1; k < n; k++)
        if (fabs(sp[k] - xm) < fabs(sp[*mean_k] - xm)) *mean_k = k;
    eng_rng rng;
    eng_rng_seed(&rng, 99);
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        double b = fit.slope + (t > 0 ? t : 1.0) * fit.slope_se * eng_rng_normal(&rng); /* 0: unset, the posterior */
        double target = b < 0 ? 1.99 * (c0 / 1.99 - 1 / b) : 1e9;
        int best = 0;
        for (int k = 1; k < n; k++)
            if (fabs(sp[k] - target) < fabs(sp[best] - target)) best = k;
        cnt[best] += 1;
    }
    for (int k = 0; k < n; k++) assert_close(cnt[k] / N, pr[k], 0.006, 0);
    xfix_free(&x);
    return n;
}

/* thompson_law_ex on the noisy fixture without carry-over, the gate's fit. */
static int thompson_law(float t, double *sp, double *pr, int *mean_k) {
    return thompson_law_ex(t, 0, 0.0, 0, sp, pr, mean_k, NULL);
}

/* explore.temper: a tempered posterior (t < 1) is the same recipe with a narrower slope law, so
 * the price nearest the posterior mean's optimum gains probability and the others lose it; t = 1
 * is the default law to the digit. */
static void test_explore_thompson_temper(void **state) {
    (void)state;
    double s1[EXP_EXPLORE_MAX_SUPPORT], p1[EXP_EXPLORE_MAX_SUPPORT], s4[EXP_EXPLORE_MAX_SUPPORT], p4[EXP_EXPLORE_MAX_SUPPORT];
    double sd[EXP_EXPLORE_MAX_SUPPORT], pd[EXP_EXPLORE_MAX_SUPPORT];
    int k1 = 0, k4 = 0, kd = 0;
    const int n1 = thompson_law(1.0f, s1, p1, &k1), n4 = thompson_law(0.4f, s4, p4, &k4);
    const int nd = thompson_law(0.0f, sd, pd, &kd); /* 0 (unset, as in a hand-made cfg): the posterior itself */
    assert_int_equal(n1, nd);
    for (int k = 0; k < n1; k++) assert_true(s1[k] == sd[k] && p1[k] == pd[k]);
    assert_int_equal(n1, n4);
    assert_int_equal(k1, k4);
    assert_true(p4[k4] > p1[k1] + 0.05);
    double tail1 = 0, tail4 = 0; /* the mass two or more support prices away from the mean's */
    for (int k = 0; k < n1; k++)
        if (abs(k - k1) >= 2) tail1 += p1[k], tail4 += p4[k];
    assert_true(tail4 < tail1);
}

/* explore.skip_carryover and explore.carryover_share: with carry-over in every product's sales
 * the test finds it (at z 2) and no product is drawn, whether product by product (skip) or for
 * the whole night (share 0.2), with the gate's horizon on or off; the same history without carry-over is drawn under share 0.2, and
 * with carry-over under share 1 (every product may show it). */
static void test_explore_carryover(void **state) {
    (void)state;
    struct { double lag; int skip; float share; int drawn, standing; } cases[] = { /* standing: nightly.gate_standing */
        {3.0, 1, 0.0f, 0, 0}, {3.0, 1, 0.0f, 0, 10}, {3.0, 0, 0.2f, 0, 0}, {0.0, 0, 0.2f, 1, 0}, {0.0, 0, 0.2f, 1, 10},
        {3.0, 0, 1.0f, 1, 0}, {3.0, 0, 0.0f, 1, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        xfix x;
        xfix_carry(&x, cases[k].lag);
        exp_nightly_cfg c = xcfg(7, 1.0f);
        c.explore.mode = EXP_EXPLORE_THOMPSON;
        c.explore.max_step = 0.08f;
        c.explore.skip_carryover = cases[k].skip;
        c.explore.carryover_share = cases[k].share;
        c.gate_standing = cases[k].standing; /* >= 2: the test read from the horizon's fit */
        exp_explore_summary s;
        assert_int_equal(exp_nightly_explore(&c, x.h, &x.res, x.d, NP, &s), 0);
        check_distributions(&x, &c);
        if (cases[k].drawn) assert_true(s.n_explored > 0);
        else assert_int_equal(s.n_explored, 0);
        if (cases[k].skip) assert_int_equal(s.n_eligible, 0);               /* product by product */
        if (!cases[k].skip && !cases[k].drawn) assert_true(s.n_eligible > 0 && s.prob == 0); /* the night */
        xfix_free(&x);
    }
}

/* explore.no_lag: on a history whose last periods held one price (and sold more there than the
 * other periods' slope says), the fit without the lag column reads the slope from that level too
 * (a narrower posterior than the gate's fit, whose lag column takes the held level); the draws
 * follow that fit's law exactly, and differ from the default's.  A product whose fit shows carry-over keeps the gate's fit: the default law. */
static void test_explore_no_lag(void **state) {
    (void)state;
    double s0[EXP_EXPLORE_MAX_SUPPORT], p0[EXP_EXPLORE_MAX_SUPPORT], s1[EXP_EXPLORE_MAX_SUPPORT], p1[EXP_EXPLORE_MAX_SUPPORT];
    double se0 = 0, se1 = 0;
    int k0 = 0, k1 = 0;
    const int n0 = thompson_law_ex(1.0f, 0, 0.0, 1, s0, p0, &k0, &se0), n1 = thompson_law_ex(1.0f, 1, 0.0, 1, s1, p1, &k1, &se1);
    print_message("no_lag: slope se %.4f -> %.4f\n", se0, se1);
    assert_true(se1 < se0);
    double diff = fabs((double)(n0 - n1));
    for (int k = 0; k < n0 && k < n1; k++) diff += fabs(p0[k] - p1[k]) + fabs(s0[k] - s1[k]);
    print_message("no_lag: law moved by %.4f\n", diff);
    assert_true(diff > 0.1);
    /* carry-over shown: no refit, the default law to the digit */
    const int c0 = thompson_law_ex(1.0f, 0, 3.0, 0, s0, p0, &k0, NULL), c1 = thompson_law_ex(1.0f, 1, 3.0, 0, s1, p1, &k1, NULL);
    assert_int_equal(c0, c1);
    for (int k = 0; k < c0; k++) assert_true(s0[k] == s1[k] && p0[k] == p1[k]);
}

/* ---- the nightly with exploration, through PostgreSQL ----------------------------------------- */
/* 1 when file dir/name contains text. */
static int file_has(const char *dir, const char *name, const char *text) {
    char p[1600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

#define NDAYS 40
#define NPROD 6

static void test_nightly_explores_and_logs(void **state) {
    (void)state;
    char first[sizeof tdb_name];
    memcpy(first, tdb_name, sizeof first);
    PGconn *c2 = tdb_create("explore_nightly"); /* a database of its own (tdb_name names it until dropped) */
    tnl_store_sim(c2, NPROD, NDAYS, 1, D0, 7);
    tdb_exec(c2, "UPDATE products SET explore = false WHERE product_id = 'SIM000001'", 0, NULL);
    char out[512];
    snprintf(out, sizeof out, "%s/explore_out_%d", test_tmpdir(), (int)getpid());
    exp_nightly_cfg cfg = tnl_small_cfg(c2, D0 + NDAYS, NDAYS, out, "", 20);
    cfg.compare.fqe_products = 0;
    cfg.compare.guard.n_endings = 0;
    cfg.explore.share = 1.0f; /* every eligible product explored */
    exp_nightly_summary s;
    assert_int_equal(exp_nightly_run(&cfg, &s), 0);
    assert_true(s.explore.on);
    assert_true(s.explore.n_explored >= 1);
    assert_int_equal(s.explore.n_pinned, 1);
    const char *v[1] = {s.run_id};
    /* every eligible product has a distribution (propensity < 1 whether drawn or not); the
     * explored ones were pushed at a price other than the decided one */
    assert_int_equal(tdb_long(c2, "SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND propensity < 1", 1, v),
                     s.explore.n_eligible);
    assert_int_equal(tdb_long(c2, "SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND price <> decided_price",
                              1, v), s.explore.n_explored);
    assert_true(s.explore.cost_expected <= 0.01 * s.explore.revenue * (1 + 1e-12)); /* max_cost 0.01, as typed */
    /* recommendations.json and the report say it too */
    assert_true(file_has(s.report_dir, "recommendations.json", "\"support_probs\""));
    assert_true(file_has(s.report_dir, "recommendations.json", "\"exploration\""));
    assert_true(file_has(s.report_dir, "report.json", "\"exploration\""));
    assert_true(file_has(s.report_dir, "report.html", "id=\"exploration\""));
    assert_true(file_has(s.report_dir, "report.html", "id=\"propensities\""));
    /* the logged propensity is the probability of the pushed price in the logged distribution */
    assert_int_equal(tdb_long(c2, "SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND"
                                  " propensity = support_probs[array_position(support_prices, price)]", 1, v),
                     s.n_products);
    assert_int_equal(tdb_long(c2, "SELECT count(*) FROM price_recommendations WHERE run_id = $1"
                                  " AND product_id = 'SIM000001' AND propensity = 1 AND price = decided_price", 1, v), 1);
    assert_int_equal(tdb_long(c2, "SELECT n_explored FROM pricing_runs WHERE run_id = $1 AND explore_cost IS NOT NULL"
                                  " AND explore_cost_share IS NOT NULL", 1, v), s.explore.n_explored);
    /* the shop charges the pushed prices on the run date; the next night's OPE uses their
     * logged propensities on those rows (the newest period is in its evaluation window) */
    tdb_exec(c2, "INSERT INTO sales (product_id, day, price, units, revenue, traffic, promo)"
                 " SELECT s.product_id, r.effective_day, r.price, s.units, r.price * s.units, s.traffic, false"
                 " FROM price_recommendations r JOIN sales s ON s.product_id = r.product_id"
                 "  AND s.day = r.effective_day - 7 WHERE r.run_id = $1", 1, v);
    exp_nightly_summary s2;
    exp_nightly_cfg cfg2 = cfg;
    cfg2.date = D0 + NDAYS + 7;
    cfg2.window_days = NDAYS + 7;
    cfg2.explore.share = 0;
    assert_int_equal(exp_nightly_run(&cfg2, &s2), 0);
    assert_true(s2.n_eval_logged >= 1 && s2.n_eval_logged <= s.n_products);
    assert_true(s2.n_eval_estimated > 0);
    char txt[64];
    snprintf(txt, sizeof txt, "%ld evaluation rows with the propensity rlprice logged", s2.n_eval_logged);
    assert_true(file_has(s2.report_dir, "report.html", txt));
    const char *v2[1] = {s2.run_id};
    assert_int_equal(tdb_long(c2, "SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND propensity = 1"
                                  " AND price = decided_price", 1, v2), s2.n_products);
    assert_int_equal(tdb_long(c2, "SELECT count(*) FROM pricing_runs WHERE run_id = $1 AND n_explored IS NULL", 1, v2), 1);
    exp_nightly_summary_free(&s);
    exp_nightly_summary_free(&s2);
    exp_compare_cfg_free(&cfg.compare);
    tdb_drop(c2);
    memcpy(tdb_name, first, sizeof tdb_name);
}

/* A database made before these columns: the history loads (every propensity estimated, a
 * warning), `db init` (db_schema_apply) adds the columns, and the old rows' NULL propensity
 * stays unknown (estimated), never taken for 1. */
static void test_migration(void **state) {
    (void)state;
    tdb_exec(conn, "ALTER TABLE price_recommendations DROP COLUMN propensity, DROP COLUMN support_prices,"
                   " DROP COLUMN support_probs, DROP COLUMN decided_price", 0, NULL);
    tdb_exec(conn, "ALTER TABLE products DROP COLUMN explore", 0, NULL);
    tdb_exec(conn, "ALTER TABLE pricing_runs DROP COLUMN n_explored, DROP COLUMN explore_cost,"
                   " DROP COLUMN explore_cost_share", 0, NULL);
    db_history *h = load();
    assert_int_equal(h->n_logged, 0);
    assert_int_equal(h->explore_off[db_history_find(h, "P3")], 0);
    db_history_free(h);
    assert_int_equal(db_schema_apply(conn), ENG_OK);
    assert_int_equal(q1("SELECT count(*) FROM price_recommendations WHERE propensity IS NULL"),
                     q1("SELECT count(*) FROM price_recommendations"));
    h = load();
    assert_int_equal(h->n_logged, 0);
    db_history_free(h);
    /* a push after the migration logs again */
    db_recommendation r = {"P1", D0 + 14, 2.09, 1.99, "dqn", "explore", NAN, NAN, NAN, 2, 3, SP, SQ, 1.0 / 3, 1.99};
    push("run-e", &r, 1);
    h = load();
    long i = db_history_logged_find(h, (int64_t)db_history_find(h, "P1") * h->n_periods + 14);
    assert_true(i >= 0 && h->logged_prop[i] == 1.0 / 3);
    db_history_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_and_read_back),
        cmocka_unit_test(test_ope_uses_logged),
        cmocka_unit_test(test_explore_budget_pins_seed),
        cmocka_unit_test(test_explore_thompson),
        cmocka_unit_test(test_explore_thompson_temper),
        cmocka_unit_test(test_explore_carryover),
        cmocka_unit_test(test_explore_no_lag),
        cmocka_unit_test(test_nightly_explores_and_logs),
        cmocka_unit_test(test_migration),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
