/* tests/test_ope_estimators.c - off-policy estimators: exact values on hand-computed data,
 * unbiasedness and interval coverage on synthetic bandits with known truth, Replay vs IPS under
 * uniform logging, kernel IPS/DR on continuous actions, PDIS/WPDIS on a tiny MDP, overlap rule,
 * ridge reward model. */
#include "test_common.h"
#include "ope.h"

/* ---- hand-computed: 3 rows, K = 2 ------------------------------------------------- */
static int act3[3] = {0, 1, 1};
static double rew3[3] = {1, 0, 1};
static double ps3[3] = {0.5, 0.5, 0.25};
static double pi3[6] = {0.2, 0.8, 0.2, 0.8, 0.5, 0.5};
static double q3[6] = {0.5, 0.3, 0.5, 0.3, 0.4, 0.6};

static ope_bandit tiny(void) {
    ope_bandit d = {.n = 3, .K = 2, .action = act3, .reward = rew3, .pscore = ps3, .pi = pi3, .q = q3};
    return d;
}

static void test_hand_computed(void **state) {
    (void)state;
    ope_bandit d = tiny();
    ope_config cfg = ope_config_default();
    cfg.switch_tau = 1.5;
    cfg.n_boot = 0;
    ope_result r;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), 0);
    /* w = 0.4, 1.6, 2 */
    assert_close(r.v[OPE_IPS].estimate, 2.4 / 3, 1e-12, 0);
    assert_close(r.v[OPE_SNIPS].estimate, 2.4 / 4, 1e-12, 0);
    assert_close(r.v[OPE_DM].estimate, 1.18 / 3, 1e-12, 0);       /* 0.34 + 0.34 + 0.5 */
    assert_close(r.v[OPE_DR].estimate, 1.7 / 3, 1e-12, 0);        /* 0.54 - 0.14 + 1.3 */
    assert_close(r.v[OPE_SWITCH_DR].estimate, 1.38 / 3, 1e-12, 0); /* 0.54 + 0.34 + 0.5 */
    assert_string_equal(r.q_source, "given");
    assert_close(r.overlap.ess, 16.0 / 6.72, 1e-12, 0);
    assert_close(r.overlap.max_w, 2.0, 1e-12, 0);
    assert_close(r.overlap.max_w_share, 0.5, 1e-12, 0);
    assert_close(r.overlap.mean_w, 4.0 / 3, 1e-12, 0);
    assert_true(r.overlap.poor); /* ESS 2.4 < 30 */
    assert_int_equal(r.recommended, OPE_DM);
    assert_true(isnan(r.v[OPE_IPS].ci_low)); /* no bootstrap asked */
    assert_false(r.v[OPE_FQE].available);

    /* without q and x the model-based estimators are omitted, not zero */
    d.q = NULL;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), 0);
    assert_false(r.v[OPE_DM].available);
    assert_false(r.v[OPE_DR].available);
    assert_true(isnan(r.v[OPE_DR].estimate));
    assert_non_null(strstr(r.v[OPE_DM].note, "no reward model"));
    assert_true(r.v[OPE_IPS].available);
}

static void test_replay_deterministic(void **state) {
    (void)state;
    int a[3] = {0, 1, 1};
    double rw[3] = {3, 5, 7}, ps[3] = {0.5, 0.5, 0.5}, pi[6] = {1, 0, 1, 0, 0, 1};
    ope_bandit d = {.n = 3, .K = 2, .action = a, .reward = rw, .pscore = ps, .pi = pi};
    ope_config cfg = ope_config_default();
    cfg.n_boot = 0;
    ope_result r;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), 0);
    assert_int_equal(r.v[OPE_REPLAY].n_used, 2); /* rows 0 and 2 match */
    assert_close(r.v[OPE_REPLAY].estimate, 5.0, 1e-12, 0);
    assert_close(r.v[OPE_IPS].estimate, (3 * 2 + 7 * 2) / 3.0, 1e-12, 0);
}

static void test_overlap_unsupported(void **state) {
    (void)state;
    /* action 1 is never logged; the target puts 0.1 on it in every row */
    int a[4] = {0, 0, 0, 0};
    double rw[4] = {1, 0, 1, 0}, ps[4] = {1, 1, 1, 1}, pi[8] = {0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 1, 0};
    ope_bandit d = {.n = 4, .K = 2, .action = a, .reward = rw, .pscore = ps, .pi = pi};
    ope_config cfg = ope_config_default();
    cfg.min_ess_abs = 1;
    ope_overlap ov;
    assert_int_equal(ope_overlap_compute(&d, &cfg, &ov), 0);
    assert_close(ov.unsupported_mass, 0.3 / 4, 1e-12, 0);
    assert_close(ov.unsupported_rows, 0.75, 1e-12, 0);
    assert_false(ov.support_exact);
    assert_true(ov.poor);
    assert_non_null(strstr(ov.reason, "unsupported"));
    /* exact support from mu: action 1 possible in rows 0-1 only */
    double mu[8] = {0.5, 0.5, 0.5, 0.5, 1, 0, 1, 0};
    double ps2[4] = {0.5, 0.5, 1, 1};
    d.mu = mu;
    d.pscore = ps2;
    assert_int_equal(ope_overlap_compute(&d, &cfg, &ov), 0);
    assert_true(ov.support_exact);
    assert_close(ov.unsupported_mass, 0.1 / 4, 1e-12, 0);
    assert_close(ov.unsupported_rows, 0.25, 1e-12, 0);
}

static void test_bad_data_rejected(void **state) {
    (void)state;
    ope_bandit d = tiny();
    double pi_bad[6] = {0.2, 0.8, 0.3, 0.8, 0.5, 0.5};
    d.pi = pi_bad;
    ope_config cfg = ope_config_default();
    ope_result r;
    assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "row 1"));
    d = tiny();
    double ps_bad[3] = {0.5, 0, 0.25};
    d.pscore = ps_bad;
    assert_int_equal(ope_bandit_check(&d), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "pscore"));
}

static void test_boot_ratio(void **state) {
    (void)state;
    enum { N = 400 };
    double num[N], est, lo, hi, se;
    for (int i = 0; i < N; i++) num[i] = i % 100; /* mean 49.5, sd 28.87 */
    assert_int_equal(ope_boot_ratio(num, NULL, N, 1, 2000, 0.05, 3, &est, &lo, &hi, &se), 0);
    assert_close(est, 49.5, 1e-12, 0);
    assert_close(se, 28.866 / sqrt(N), 0, 0.1);
    assert_close(hi - lo, 2 * 1.96 * 28.866 / sqrt(N), 0, 0.12);
    assert_true(lo < est && est < hi);
    /* same seed, same interval; other seed, other interval */
    double lo2, hi2, lo3, hi3;
    assert_int_equal(ope_boot_ratio(num, NULL, N, 1, 2000, 0.05, 3, &est, &lo2, &hi2, NULL), 0);
    assert_int_equal(ope_boot_ratio(num, NULL, N, 1, 2000, 0.05, 4, &est, &lo3, &hi3, NULL), 0);
    assert_true(lo == lo2 && hi == hi2);
    assert_true(lo != lo3 || hi != hi3);
    /* constant terms: the interval collapses */
    for (int i = 0; i < N; i++) num[i] = 2.5;
    assert_int_equal(ope_boot_ratio(num, NULL, N, 1, 100, 0.05, 3, &est, &lo, &hi, &se), 0);
    assert_true(lo == 2.5 && hi == 2.5 && se == 0.0);
}

/* ---- synthetic bandit with known truth ------------------------------------------------
 * x uniform on {0..4}; K = 3; behaviour mu(a|x) and target pi(a|x) softmaxes;
 * reward = f(x, a) + N(0, 0.5^2).  Truth = mean_x sum_a pi(a|x) f(x, a). */
#define SK 3
#define SX 5
static double f_true(int x, int a) { return 1.0 + 0.3 * x * (a == 0) + 0.8 * (a == 1) - 0.2 * x * (a == 2); }
static void softmax(const double *z, double *p) {
    double m = z[0], s = 0;
    for (int a = 1; a < SK; a++) m = z[a] > m ? z[a] : m;
    for (int a = 0; a < SK; a++) s += (p[a] = exp(z[a] - m));
    for (int a = 0; a < SK; a++) p[a] /= s;
}
static void mu_of(int x, double *p, int uniform) {
    double z[SK] = {0.5 * x, 0.0, 1.0 - 0.3 * x};
    if (uniform) z[0] = z[1] = z[2] = 0;
    softmax(z, p);
}
static void pi_of(int x, double *p) {
    double z[SK] = {0.2 * x, 1.0, -0.5 * x};
    softmax(z, p);
}
static double synth_truth(void) {
    double v = 0, p[SK];
    for (int x = 0; x < SX; x++) {
        pi_of(x, p);
        for (int a = 0; a < SK; a++) v += p[a] * f_true(x, a) / SX;
    }
    return v;
}
static int draw(eng_rng *g, const double *p) {
    double u = eng_rng_uniform(g), c = 0;
    for (int a = 0; a < SK; a++)
        if (u < (c += p[a])) return a;
    return SK - 1;
}

typedef struct {
    int n;
    int *a;
    double *r, *ps, *pi, *x;
} synth;

static void synth_fill(synth *s, uint64_t seed, int uniform) {
    eng_rng g;
    eng_rng_seed(&g, seed);
    for (int i = 0; i < s->n; i++) {
        int x = (int)eng_rng_below(&g, SX);
        double mu[SK];
        mu_of(x, mu, uniform);
        pi_of(x, s->pi + (size_t)i * SK);
        int a = draw(&g, mu);
        s->a[i] = a;
        s->ps[i] = mu[a];
        s->r[i] = f_true(x, a) + 0.5 * eng_rng_normal(&g);
        s->x[i] = x;
    }
}

static void run_synthetic(int uniform, int reps, int n, int B, double *mean, double *sd, double *cover) {
    synth s = {.n = n};
    s.a = malloc(n * sizeof *s.a);
    s.r = malloc(n * sizeof *s.r);
    s.ps = malloc(n * sizeof *s.ps);
    s.pi = malloc((size_t)n * SK * sizeof *s.pi);
    s.x = malloc(n * sizeof *s.x);
    double truth = synth_truth();
    double sum[OPE_N_EST] = {0}, sum2[OPE_N_EST] = {0};
    int cov[OPE_N_EST] = {0};
    for (int rep = 0; rep < reps; rep++) {
        synth_fill(&s, eng_seed_derive(1000 + uniform, rep), uniform);
        ope_bandit d = {.n = n, .K = SK, .d = 1, .action = s.a, .reward = s.r, .pscore = s.ps, .pi = s.pi, .x = s.x};
        ope_config cfg = ope_config_default();
        cfg.n_boot = B;
        cfg.seed = eng_seed_derive(77, rep);
        ope_result r;
        assert_int_equal(ope_bandit_estimate(&d, &cfg, &r), 0);
        assert_string_equal(r.q_source, "ridge");
        for (int e = OPE_REPLAY; e <= OPE_SWITCH_DR; e++) {
            sum[e] += r.v[e].estimate;
            sum2[e] += r.v[e].estimate * r.v[e].estimate;
            cov[e] += r.v[e].ci_low <= truth && truth <= r.v[e].ci_high;
        }
    }
    for (int e = 0; e < OPE_N_EST; e++) {
        mean[e] = sum[e] / reps;
        sd[e] = sqrt(fmax(0, sum2[e] / reps - mean[e] * mean[e]));
        cover[e] = (double)cov[e] / reps;
    }
    free(s.a);
    free(s.r);
    free(s.ps);
    free(s.pi);
    free(s.x);
}

static void test_synthetic_unbiased_and_coverage(void **state) {
    (void)state;
    const int reps = 200;
    double mean[OPE_N_EST], sd[OPE_N_EST], cover[OPE_N_EST], truth = synth_truth();
    run_synthetic(0, reps, 400, 200, mean, sd, cover);
    print_message("snips  mean %.4f coverage %.3f\n", mean[OPE_SNIPS], cover[OPE_SNIPS]);
    static const ope_est unbiased[] = {OPE_IPS, OPE_DR};
    for (int k = 0; k < 2; k++) {
        ope_est e = unbiased[k];
        print_message("%-6s mean %.4f (truth %.4f) sd %.4f coverage %.3f\n", ope_est_name(e), mean[e], truth, sd[e],
                      cover[e]);
        /* mean of 200 unbiased estimates: within 4 standard errors of the truth */
        assert_close(mean[e], truth, 4 * sd[e] / sqrt(reps), 0);
    }
    /* SNIPS is consistent, bias O(1/n): same test with a small allowance */
    assert_close(mean[OPE_SNIPS], truth, 4 * sd[OPE_SNIPS] / sqrt(reps) + 0.01, 0);
    assert_true(cover[OPE_IPS] >= 0.90);
    assert_true(cover[OPE_SNIPS] >= 0.90);
    assert_true(cover[OPE_DR] >= 0.90);
    /* DR with a (misspecified, linear-in-x) fitted model still has lower variance than IPS */
    assert_true(sd[OPE_DR] < sd[OPE_IPS]);
    /* Replay under non-uniform logging is biased: it is NOT expected to match here */
}

static void test_replay_matches_ips_uniform(void **state) {
    (void)state;
    const int reps = 100;
    double mean[OPE_N_EST], sd[OPE_N_EST], cover[OPE_N_EST], truth = synth_truth();
    run_synthetic(1, reps, 600, 0, mean, sd, cover);
    print_message("uniform logging: replay %.4f ips %.4f truth %.4f\n", mean[OPE_REPLAY], mean[OPE_IPS], truth);
    double tol = 4 * sqrt((sd[OPE_REPLAY] * sd[OPE_REPLAY] + sd[OPE_IPS] * sd[OPE_IPS]) / reps);
    assert_close(mean[OPE_REPLAY], mean[OPE_IPS], tol, 0);
    assert_close(mean[OPE_REPLAY], truth, 4 * sd[OPE_REPLAY] / sqrt(reps), 0);
}

/* ---- ridge reward model -------------------------------------------------------------- */
static void test_ridge_recovers_linear(void **state) {
    (void)state;
    enum { N = 60, K = 3, D = 2 };
    int a[N];
    double r[N], ps[N], pi[N * K], x[N * D];
    eng_rng g;
    eng_rng_seed(&g, 5);
    for (int i = 0; i < N; i++) {
        a[i] = i % 2; /* action 2 never logged */
        x[i * D] = eng_rng_normal(&g);
        x[i * D + 1] = 3 + 2 * eng_rng_normal(&g);
        r[i] = a[i] == 0 ? 1 + 2 * x[i * D] - x[i * D + 1] : 3 - x[i * D];
        ps[i] = 0.5;
        pi[i * K] = pi[i * K + 1] = pi[i * K + 2] = 1.0 / 3;
    }
    ope_bandit d = {.n = N, .K = K, .d = D, .action = a, .reward = r, .pscore = ps, .pi = pi, .x = x};
    double *q = NULL, rmean = 0;
    for (int i = 0; i < N; i++) rmean += r[i] / N;
    assert_int_equal(ope_fit_ridge_q(&d, 1e-10, 1, 0, &q), 0);
    for (int i = 0; i < N; i++) {
        assert_close(q[i * K], 1 + 2 * x[i * D] - x[i * D + 1], 1e-6, 0);
        assert_close(q[i * K + 1], 3 - x[i * D], 1e-6, 0);
        assert_close(q[i * K + 2], rmean, 1e-9, 0);
    }
    free(q);
    /* a large penalty shrinks the slopes toward 0: predictions near each action's mean */
    assert_int_equal(ope_fit_ridge_q(&d, 1e9, 1, 0, &q), 0);
    double m0 = 0;
    for (int i = 0; i < N; i += 2) m0 += r[i] / (N / 2);
    assert_close(q[0], m0, 1e-3, 0);
    free(q);
    /* cross-fitting: exact data is still recovered by every fold's model ... */
    assert_int_equal(ope_fit_ridge_q(&d, 1e-10, 5, 42, &q), 0);
    for (int i = 0; i < N; i++) assert_close(q[i * K + 1], 3 - x[i * D], 1e-6, 0);
    double q0_cross = q[0];
    free(q);
    /* ... and a row's prediction does not see its own reward, while the in-sample one does */
    assert_int_equal(ope_fit_ridge_q(&d, 1e-3, 1, 0, &q), 0);
    double q0_in = q[0];
    free(q);
    r[0] += 10;
    assert_int_equal(ope_fit_ridge_q(&d, 1e-10, 5, 42, &q), 0);
    assert_close(q[0], q0_cross, 1e-9, 0);
    free(q);
    assert_int_equal(ope_fit_ridge_q(&d, 1e-3, 1, 0, &q), 0);
    assert_true(fabs(q[0] - q0_in) > 0.1);
    free(q);
    r[0] -= 10;
    d.d = 0;
    assert_int_equal(ope_fit_ridge_q(&d, 1.0, 1, 0, &q), ENG_EINVAL);
    assert_null(q);
}

/* ---- continuous actions ------------------------------------------------------------- */
static void test_silverman(void **state) {
    (void)state;
    double a[5] = {5, 1, 4, 2, 3};
    /* sd = sqrt(2.5), IQR = 4 - 2 = 2 -> min(1.5811, 1.4925) */
    assert_close(ope_silverman_bandwidth(a, 5), 0.9 * (2 / 1.34) * pow(5, -0.2), 1e-12, 0);
    double c[5] = {1, 1, 5, 1, 1}; /* IQR 0: sd alone, sd = sqrt(12.8 / 4) */
    assert_close(ope_silverman_bandwidth(c, 5), 0.9 * sqrt(3.2) * pow(5, -0.2), 1e-12, 0);
}

static void test_kernel_ips_known_truth(void **state) {
    (void)state;
    enum { N = 20000 };
    double *a = malloc(N * sizeof *a), *r = malloc(N * sizeof *r), *dens = malloc(N * sizeof *dens);
    double *t = malloc(N * sizeof *t), *qt = malloc(N * sizeof *qt), *ql = malloc(N * sizeof *ql);
    eng_rng g;
    eng_rng_seed(&g, 11);
    /* logged a ~ N(0, 1); reward 1 - (a - 0.5)^2 + N(0, 0.1^2); deterministic target 0.3 */
    for (int i = 0; i < N; i++) {
        a[i] = eng_rng_normal(&g);
        dens[i] = exp(-0.5 * a[i] * a[i]) / sqrt(2 * M_PI);
        r[i] = 1 - (a[i] - 0.5) * (a[i] - 0.5) + 0.1 * eng_rng_normal(&g);
        t[i] = 0.3;
        qt[i] = 1 - (0.3 - 0.5) * (0.3 - 0.5);
        ql[i] = 1 - (a[i] - 0.5) * (a[i] - 0.5);
    }
    ope_cont d = {.n = N, .action = a, .reward = r, .density = dens, .target = t, .q_target = qt, .q_logged = ql};
    ope_config cfg = ope_config_default();
    cfg.n_boot = 300;
    ope_result res;
    assert_int_equal(ope_cont_estimate(&d, &cfg, &res), 0);
    double h = res.bandwidth, truth = 0.96;
    assert_close(h, ope_silverman_bandwidth(a, N), 1e-12, 0);
    /* the kernel-smoothed target of a quadratic is r(t) - h^2 exactly */
    print_message("kips %.4f (smoothed truth %.4f, h %.4f) se %.4f; kdr %.4f\n", res.v[OPE_KIPS].estimate,
                  truth - h * h, h, res.v[OPE_KIPS].boot_se, res.v[OPE_KDR].estimate);
    assert_close(res.v[OPE_KIPS].estimate, truth - h * h, 4 * res.v[OPE_KIPS].boot_se, 0);
    assert_close(res.v[OPE_SNKIPS].estimate, truth - h * h, 4 * res.v[OPE_SNKIPS].boot_se + 0.005, 0);
    assert_true(res.v[OPE_KIPS].ci_low < truth - h * h && truth - h * h < res.v[OPE_KIPS].ci_high);
    /* KDR with the true model has no smoothing bias */
    assert_close(res.v[OPE_KDR].estimate, truth, 4 * res.v[OPE_KDR].boot_se, 0);
    assert_close(res.v[OPE_DM].estimate, truth, 1e-12, 0);
    assert_false(res.overlap.poor);
    /* a tiny bandwidth leaves few effective samples: flagged */
    cfg.bandwidth = 1e-4;
    cfg.n_boot = 0;
    assert_int_equal(ope_cont_estimate(&d, &cfg, &res), 0);
    assert_true(res.overlap.poor);
    assert_int_equal(res.recommended, OPE_DM);
    free(a);
    free(r);
    free(dens);
    free(t);
    free(qt);
    free(ql);
}

/* ---- trajectories ------------------------------------------------------------------- */
static void test_pdis_hand(void **state) {
    (void)state;
    int start[3] = {0, 2, 3};
    double rw[3] = {1, 2, 3}, pi[3] = {0.5, 1, 0.25}, mu[3] = {0.25, 0.5, 0.5};
    ope_traj d = {.m = 2, .start = start, .reward = rw, .pi_prob = pi, .mu_prob = mu};
    ope_config cfg = ope_config_default();
    cfg.gamma = 0.9;
    cfg.n_boot = 50;
    ope_result r;
    assert_int_equal(ope_traj_estimate(&d, &cfg, &r), 0);
    /* rho: 2, 4 | 0.5.  G_A = 2 + 0.9*8 = 9.2, G_B = 1.5 */
    assert_close(r.v[OPE_PDIS].estimate, (9.2 + 1.5) / 2, 1e-12, 0);
    /* t0: (2*1 + 0.5*3)/(2 + 0.5) = 1.4; t1: 0.9 * (4*2)/(4 + 0.5 frozen) = 1.6 */
    assert_close(r.v[OPE_WPDIS].estimate, 3.0, 1e-12, 0);
    assert_true(r.v[OPE_PDIS].ci_low <= r.v[OPE_PDIS].ci_high);
    assert_false(r.v[OPE_IPS].available);
}

/* 2 states, 2 actions, horizon 3, start in state 0, next state = action taken,
 * reward R[s][a] + N(0, 0.1^2).  Behaviour: 50/50.  Target: P(a=1|s) = 0.7 (s=0), 0.2 (s=1). */
static const double R[2][2] = {{1.0, 0.0}, {2.0, 0.5}};
static const double PT1[2] = {0.7, 0.2};
static double mdp_truth(double gamma) {
    /* value by backward induction */
    double V[2] = {0, 0};
    for (int t = 2; t >= 0; t--) {
        double nv[2];
        for (int s = 0; s < 2; s++)
            nv[s] = (1 - PT1[s]) * (R[s][0] + gamma * V[0]) + PT1[s] * (R[s][1] + gamma * V[1]);
        V[0] = nv[0];
        V[1] = nv[1];
    }
    return V[0];
}

static void test_pdis_tiny_mdp(void **state) {
    (void)state;
    enum { M = 1000, H = 3, REPS = 60 };
    int start[M + 1];
    double rw[M * H], pi[M * H], mu[M * H];
    const double gamma = 0.9, truth = mdp_truth(gamma);
    double sp = 0, sp2 = 0, sw = 0;
    int cov = 0;
    for (int rep = 0; rep < REPS; rep++) {
        eng_rng g;
        eng_rng_seed(&g, eng_seed_derive(99, rep));
        for (int j = 0; j < M; j++) {
            start[j] = j * H;
            int s = 0;
            for (int t = 0; t < H; t++) {
                int a = eng_rng_uniform(&g) < 0.5;
                int k = j * H + t;
                mu[k] = 0.5;
                pi[k] = a ? PT1[s] : 1 - PT1[s];
                rw[k] = R[s][a] + 0.1 * eng_rng_normal(&g);
                s = a;
            }
        }
        start[M] = M * H;
        ope_traj d = {.m = M, .start = start, .reward = rw, .pi_prob = pi, .mu_prob = mu};
        ope_config cfg = ope_config_default();
        cfg.gamma = gamma;
        cfg.n_boot = 200;
        cfg.seed = rep + 1;
        ope_result r;
        assert_int_equal(ope_traj_estimate(&d, &cfg, &r), 0);
        sp += r.v[OPE_PDIS].estimate;
        sp2 += r.v[OPE_PDIS].estimate * r.v[OPE_PDIS].estimate;
        sw += r.v[OPE_WPDIS].estimate;
        cov += r.v[OPE_PDIS].ci_low <= truth && truth <= r.v[OPE_PDIS].ci_high;
    }
    double mp = sp / REPS, sdp = sqrt(fmax(0, sp2 / REPS - mp * mp));
    print_message("tiny MDP: truth %.4f, PDIS mean %.4f (sd %.4f), WPDIS mean %.4f, PDIS coverage %d/%d\n", truth, mp,
                  sdp, sw / REPS, cov, REPS);
    assert_close(mp, truth, 4 * sdp / sqrt(REPS), 0);
    assert_close(sw / REPS, truth, 0.02, 0);
    assert_true(cov >= (int)(0.85 * REPS));
}

static void test_traj_bad_input(void **state) {
    (void)state;
    int start[2] = {0, 1};
    double rw[1] = {1}, pi[1] = {0.5}, mu[1] = {0};
    ope_traj d = {.m = 1, .start = start, .reward = rw, .pi_prob = pi, .mu_prob = mu};
    ope_config cfg = ope_config_default();
    ope_result r;
    assert_int_equal(ope_traj_estimate(&d, &cfg, &r), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "step 0"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_replay_deterministic),
        cmocka_unit_test(test_overlap_unsupported),
        cmocka_unit_test(test_bad_data_rejected),
        cmocka_unit_test(test_boot_ratio),
        cmocka_unit_test(test_synthetic_unbiased_and_coverage),
        cmocka_unit_test(test_replay_matches_ips_uniform),
        cmocka_unit_test(test_ridge_recovers_linear),
        cmocka_unit_test(test_silverman),
        cmocka_unit_test(test_kernel_ips_known_truth),
        cmocka_unit_test(test_pdis_hand),
        cmocka_unit_test(test_pdis_tiny_mdp),
        cmocka_unit_test(test_traj_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
