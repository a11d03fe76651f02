/* ope_sim.c - off-policy estimators against the market simulator's exact truth (ope_sim.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_sim.h"
#include "ope_sim.h"

ope_sim_cfg ope_sim_cfg_default(void) {
    ope_sim_cfg c;
    memset(&c, 0, sizeof c);
    c.seed = 7;
    c.n_products = 10;
    c.n_seeds = 5;
    c.n_periods = 400;
    c.n_episodes = 300;
    c.horizon = 6;
    c.gamma = 0.9;
    c.n_boot = 200;
    c.truth_reps = 2000;
    c.sequential = 1;
    c.fqe = ope_fqe_cfg_default();
    c.fqe.gamma = c.gamma;
    return c;
}

/* ---- summary lines ------------------------------------------------------------------------ */

enum { T1_FIXED_GOOD, T1_FIXED_HIGH, T1_MYOPIC, T1_NOISY, T1_SHIFTED, T1_N };
static const char *const k_t1_name[T1_N] = {"fixed_good", "fixed_high", "myopic", "noisy_greedy", "shifted"};
#define E1_N 5
static const ope_est k_e1[E1_N] = {OPE_IPS, OPE_SNIPS, OPE_DM, OPE_DR, OPE_SWITCH_DR};
#define E2_N 3
static const ope_est k_e2[E2_N] = {OPE_PDIS, OPE_WPDIS, OPE_FQE};
#define N_LINES (T1_N * E1_N + E2_N)

typedef struct acc {
    int cases, poor, n, n_ci, covered;
    double s, s2, sabs, struth;
} acc;

static void acc_add(acc *a, const ope_value *v, int poor, double truth) {
    a->cases++;
    if (!v->available) return;
    if (poor) {
        a->poor++;
        return;
    }
    double e = (v->estimate - truth) / truth;
    a->n++;
    a->s += e, a->s2 += e * e, a->sabs += fabs(e), a->struth += truth;
    if (isfinite(v->ci_low) && isfinite(v->ci_high)) {
        a->n_ci++;
        a->covered += v->ci_low <= truth && truth <= v->ci_high;
    }
}

/* ---- one-step design ------------------------------------------------------------------------ */

static int nearest_level(const env_sim_grid *g, double mult) {
    int best = 0;
    for (int k = 1; k < g->n; k++)
        if (fabs(g->mult[k] - mult) < fabs(g->mult[best] - mult)) best = k;
    return best;
}

static double comp_bar(const env_sim_params *p, const double *comp_now) {
    if (p->n_comp <= 0) return p->base_price;
    double s = 0;
    for (int k = 0; k < p->n_comp; k++) s += comp_now[k];
    return s / p->n_comp;
}

/* Draw a level from probs by inversion. */
static int draw_level(eng_rng *r, const double *probs, int K) {
    double u = eng_rng_uniform(r), c = 0;
    int k = 0;
    for (; k < K - 1; k++) {
        c += probs[k];
        if (u < c) break;
    }
    while (k > 0 && probs[k] == 0) k--;
    return k;
}

/* The expert centred half a softmax width higher: a stochastic target that depends on the
 * observed competitor prices and overlaps the logging policy. */
static env_sim_params shifted_params(const env_sim_params *p) {
    env_sim_params s = *p;
    s.good_mult += 0.5 * p->log_width;
    return s;
}

static int onestep_case(const ope_sim_cfg *c, const env_sim_params *p, const env_sim_grid *g, int prod, int rep,
                        acc *lines) {
    const int T = c->n_periods, K = g->n, D = 2;
    const double scale = p->base_price * p->traffic_base;
    int st = ENG_OK;
    ope_bandit b;
    memset(&b, 0, sizeof b);
    double *R = NULL, *piS = NULL;
    int *myo = NULL;
    b.n = T, b.K = K, b.d = D;
    b.action = eng_malloc((size_t)T * sizeof *b.action);
    b.reward = eng_malloc((size_t)T * sizeof *b.reward);
    b.pscore = eng_malloc((size_t)T * sizeof *b.pscore);
    b.pi = eng_malloc((size_t)T * K * sizeof *b.pi);
    b.mu = eng_malloc((size_t)T * K * sizeof *b.mu);
    b.x = eng_malloc((size_t)T * D * sizeof *b.x);
    R = eng_malloc((size_t)T * K * sizeof *R);
    piS = eng_malloc((size_t)T * K * sizeof *piS);
    myo = eng_malloc((size_t)T * sizeof *myo);
    if (!b.action || !b.reward || !b.pscore || !b.pi || !b.mu || !b.x || !R || !piS || !myo) { st = ENG_ENOMEM; goto cleanup; }

    uint64_t ms = eng_seed_derive(eng_seed_derive(c->seed, 0x6f6e65ULL), (uint64_t)rep);
    env_sim_market m;
    if ((st = env_sim_market_init(&m, p, ms, prod))) goto cleanup;
    eng_rng lr;
    eng_rng_seed(&lr, eng_seed_derive(eng_seed_derive(ms, (uint64_t)prod), 0x6c6f67ULL));
    env_sim_params sp = shifted_params(p);
    double prev = p->base_price;
    for (int t = 0; t < T; t++) {
        double cbar = comp_bar(p, m.comp_now), ev = env_sim_expected_traffic(p, t);
        double *mu = b.mu + (size_t)t * K, *r = R + (size_t)t * K;
        if ((st = env_sim_logging_probs(p, g, m.comp_now, mu))) goto cleanup;
        if ((st = env_sim_logging_probs(&sp, g, m.comp_now, piS + (size_t)t * K))) goto cleanup;
        int best = 0;
        for (int a = 0; a < K; a++) {
            double price = p->base_price * g->mult[a];
            r[a] = ev * env_sim_purchase_prob(p, price, m.ref, cbar) * price / scale;
            if (r[a] > r[best]) best = a;
        }
        myo[t] = best;
        int a = draw_level(&lr, mu, K);
        b.x[(size_t)t * D] = log(cbar / p->base_price);
        b.x[(size_t)t * D + 1] = log(prev / p->base_price);
        env_sim_outcome o;
        if ((st = env_sim_market_step(&m, p->base_price * g->mult[a], &o))) goto cleanup;
        b.action[t] = a;
        b.pscore[t] = mu[a];
        b.reward[t] = o.revenue / scale;
        prev = o.price;
    }
    int good = nearest_level(g, p->good_mult), high = nearest_level(g, p->good_mult + 0.15);
    ope_config oc = ope_config_default();
    oc.n_boot = c->n_boot;
    oc.refit_boot = c->n_boot;
    for (int tg = 0; tg < T1_N; tg++) {
        double truth = 0;
        for (int t = 0; t < T; t++) {
            double *pi = b.pi + (size_t)t * K;
            switch (tg) {
            case T1_FIXED_GOOD:
            case T1_FIXED_HIGH:
            case T1_MYOPIC:
                memset(pi, 0, (size_t)K * sizeof *pi);
                pi[tg == T1_FIXED_GOOD ? good : tg == T1_FIXED_HIGH ? high : myo[t]] = 1.0;
                break;
            case T1_NOISY: /* epsilon-greedy around the myopic oracle, epsilon 0.1 */
                for (int a = 0; a < K; a++) pi[a] = 0.1 / K + (a == myo[t] ? 0.9 : 0.0);
                break;
            default:
                memcpy(pi, piS + (size_t)t * K, (size_t)K * sizeof *pi);
            }
            for (int a = 0; a < K; a++) truth += pi[a] * R[(size_t)t * K + a];
        }
        truth /= T;
        oc.seed = eng_seed_derive(ms, 0x626f6f74ULL + (uint64_t)tg);
        ope_result res;
        if ((st = ope_bandit_estimate(&b, &oc, &res))) goto cleanup;
        for (int e = 0; e < E1_N; e++)
            acc_add(&lines[tg * E1_N + e], &res.v[k_e1[e]], res.overlap.poor && k_e1[e] != OPE_DM, truth);
    }

cleanup:
    ope_bandit_free(&b);
    free(R);
    free(piS);
    free(myo);
    return st;
}

/* ---- sequential design ---------------------------------------------------------------------- */

#define SEQ_D 3
static void seq_features(const env_sim_params *p, int t, int H, const double *comp_now, double ref, float *f) {
    f[0] = (float)(2.0 * t / H - 1.0);
    f[1] = (float)(10.0 * log(comp_bar(p, comp_now) / env_sim_comp_mean_price(p)));
    f[2] = (float)(10.0 * log(ref / p->base_price));
}

typedef struct seq_buf {
    float *s, *s_next, *s0;
    double *reward, *pi_next, *pi0, *pi_prob, *mu_prob;
    int *action, *episode, *start;
    unsigned char *done;
} seq_buf;

/* Log product `pp` (index prod) into slot pp of the buffers; PDIS/WPDIS into lines. */
static int seq_log(const ope_sim_cfg *c, const env_sim_params *p, const env_sim_grid *g, int prod, int pp, int rep,
                   double truth, seq_buf *sb, acc *lines) {
    const int M = c->n_episodes, H = c->horizon, K = g->n, n = M * H;
    const double scale = p->base_price * p->traffic_base;
    env_sim_params sp = shifted_params(p);
    double mu[ENV_SIM_MAX_LEVELS], pi[ENV_SIM_MAX_LEVELS];
    int st = ENG_OK;
    uint64_t base = eng_seed_derive(eng_seed_derive(c->seed, 0x736571ULL), (uint64_t)rep);
    size_t o = (size_t)pp * n;
    for (int e = 0; e < M; e++) {
        uint64_t ms = eng_seed_derive(base, (uint64_t)e);
        env_sim_market m;
        if ((st = env_sim_market_init(&m, p, ms, prod))) return st;
        eng_rng lr;
        eng_rng_seed(&lr, eng_seed_derive(ms, 0x6c6f67ULL));
        sb->start[e] = e * H;
        for (int t = 0; t < H; t++) {
            size_t r = o + (size_t)e * H + t;
            if ((st = env_sim_logging_probs(p, g, m.comp_now, mu))) return st;
            if ((st = env_sim_logging_probs(&sp, g, m.comp_now, pi))) return st;
            seq_features(p, t, H, m.comp_now, m.ref, sb->s + r * SEQ_D);
            if (t == 0) {
                size_t j = (size_t)pp * M + e;
                memcpy(sb->s0 + j * SEQ_D, sb->s + r * SEQ_D, SEQ_D * sizeof(float));
                memcpy(sb->pi0 + j * K, pi, (size_t)K * sizeof(double));
            }
            int a = draw_level(&lr, mu, K);
            env_sim_outcome out;
            if ((st = env_sim_market_step(&m, p->base_price * g->mult[a], &out))) return st;
            sb->action[r] = a;
            sb->reward[r] = out.revenue / scale;
            sb->episode[r] = e;
            sb->done[r] = t == H - 1;
            sb->pi_prob[r - o] = pi[a];
            sb->mu_prob[r - o] = mu[a];
            /* next state: the next period's posted competitor prices and reference */
            if ((st = env_sim_logging_probs(&sp, g, m.comp_now, sb->pi_next + r * K))) return st;
            seq_features(p, t + 1, H, m.comp_now, m.ref, sb->s_next + r * SEQ_D);
        }
    }
    sb->start[M] = n;
    ope_config oc = ope_config_default();
    oc.n_boot = c->n_boot;
    oc.gamma = c->gamma;
    oc.seed = eng_seed_derive(base, 0x70646973ULL + (uint64_t)prod);
    ope_traj tr = {.m = M, .start = sb->start, .reward = sb->reward + o, .pi_prob = sb->pi_prob, .mu_prob = sb->mu_prob};
    ope_result res;
    if ((st = ope_traj_estimate(&tr, &oc, &res))) return st;
    for (int k = 0; k < 2; k++) acc_add(&lines[T1_N * E1_N + k], &res.v[k_e2[k]], res.overlap.poor, truth);
    return ENG_OK;
}

static int sequential(const ope_sim_cfg *c, const env_sim_params *prm, const env_sim_grid *g, const eng_backend *be,
                      acc *lines) {
    const int P = c->n_products, M = c->n_episodes, H = c->horizon, K = g->n, n = M * H;
    int st = ENG_OK;
    seq_buf sb;
    memset(&sb, 0, sizeof sb);
    double *truth = NULL;
    ope_result *res = NULL;
    sb.s = eng_malloc((size_t)P * n * SEQ_D * sizeof *sb.s);
    sb.s_next = eng_malloc((size_t)P * n * SEQ_D * sizeof *sb.s_next);
    sb.s0 = eng_malloc((size_t)P * M * SEQ_D * sizeof *sb.s0);
    sb.reward = eng_malloc((size_t)P * n * sizeof *sb.reward);
    sb.pi_next = eng_malloc((size_t)P * n * K * sizeof *sb.pi_next);
    sb.pi0 = eng_malloc((size_t)P * M * K * sizeof *sb.pi0);
    sb.pi_prob = eng_malloc((size_t)n * sizeof *sb.pi_prob);
    sb.mu_prob = eng_malloc((size_t)n * sizeof *sb.mu_prob);
    sb.action = eng_malloc((size_t)P * n * sizeof *sb.action);
    sb.episode = eng_malloc((size_t)P * n * sizeof *sb.episode);
    sb.start = eng_malloc(((size_t)M + 1) * sizeof *sb.start);
    sb.done = eng_malloc((size_t)P * n);
    truth = eng_malloc((size_t)P * sizeof *truth);
    res = eng_malloc((size_t)P * sizeof *res);
    if (!sb.s || !sb.s_next || !sb.s0 || !sb.reward || !sb.pi_next || !sb.pi0 || !sb.pi_prob || !sb.mu_prob ||
        !sb.action || !sb.episode || !sb.start || !sb.done || !truth || !res) { st = ENG_ENOMEM; goto cleanup; }
    /* truth: online runs of the shifted expert (Rao-Blackwellised expected revenue) */
    for (int i = 0; i < P; i++) {
        env_sim_params sp = shifted_params(&prm[i]);
        env_sim_logging_ctx lc = {.prm = &sp};
        env_sim_value v;
        if ((st = env_sim_evaluate(&prm[i], g, i, H, c->gamma, c->truth_reps, eng_seed_derive(c->seed, 0x747275ULL),
                                   env_sim_policy_logging, &lc, &v)))
            goto cleanup;
        truth[i] = v.exp_disc_revenue.mean / (prm[i].base_price * prm[i].traffic_base);
    }
    int reps = c->seq_seeds > 0 ? c->seq_seeds : c->n_seeds;
    for (int rep = 0; rep < reps; rep++) {
        for (int i = 0; i < P; i++)
            if ((st = seq_log(c, &prm[i], g, i, i, rep, truth[i], &sb, lines))) goto cleanup;
        if (c->fqe.iterations <= 0) continue;
        ope_fqe_data fd = {.P = P, .n = n, .d = SEQ_D, .K = K, .s = sb.s, .s_next = sb.s_next, .reward = sb.reward,
                           .done = sb.done, .action = sb.action, .pi_next = sb.pi_next, .episode = sb.episode,
                           .n0 = M, .s0 = sb.s0, .pi0 = sb.pi0};
        ope_fqe_cfg fc = c->fqe;
        fc.gamma = c->gamma;
        fc.seed = eng_seed_derive(c->seed, 0x667165ULL + (uint64_t)rep);
        if ((st = ope_fqe_estimate(&fd, &fc, be, res))) goto cleanup;
        for (int i = 0; i < P; i++) acc_add(&lines[T1_N * E1_N + 2], &res[i].v[OPE_FQE], 0, truth[i]);
    }

cleanup:
    free(sb.s);
    free(sb.s_next);
    free(sb.s0);
    free(sb.reward);
    free(sb.pi_next);
    free(sb.pi0);
    free(sb.pi_prob);
    free(sb.mu_prob);
    free(sb.action);
    free(sb.episode);
    free(sb.start);
    free(sb.done);
    free(truth);
    free(res);
    return st;
}

int ope_sim_validate(const ope_sim_cfg *c, const eng_backend *be, ope_sim_stat **stats, int *n_stats) {
    if (!c || !stats || !n_stats) return eng_err_set(ENG_EINVAL, "ope_sim_validate: NULL argument");
    *stats = NULL;
    *n_stats = 0;
    if (c->n_products < 1 || c->n_seeds < 1 || c->n_periods < 10 || c->n_boot < 0 || c->truth_reps < 2 ||
        (c->sequential && (c->n_episodes < 10 || c->horizon < 1 || !(c->gamma > 0 && c->gamma < 1))))
        return eng_err_set(ENG_EINVAL,
                           "ope_sim_validate: need products, seeds >= 1, periods >= 10, bootstrap >= 0, truth runs >= 2, "
                           "and for the sequential design episodes >= 10, horizon >= 1, 0 < gamma < 1");
    int st = ENG_OK;
    env_sim_params *prm = eng_malloc((size_t)c->n_products * sizeof *prm);
    acc *lines = eng_calloc(N_LINES, sizeof *lines);
    ope_sim_stat *out = eng_calloc(N_LINES, sizeof *out);
    if (!prm || !lines || !out) { st = ENG_ENOMEM; goto cleanup; }
    env_sim_grid g;
    if ((st = env_sim_grid_make(&g, 13, 0.70, 1.30))) goto cleanup; /* the grid of env_sim_generate */
    for (int i = 0; i < c->n_products; i++)
        if ((st = env_sim_draw_params(ENV_SIM_PRESET_DEFAULT, NULL, 7, 0, c->seed, i, &prm[i]))) goto cleanup;
    for (int rep = 0; rep < c->n_seeds; rep++)
        for (int i = 0; i < c->n_products; i++)
            if ((st = onestep_case(c, &prm[i], &g, i, rep, lines))) goto cleanup;
    if (c->sequential && (st = sequential(c, prm, &g, be, lines))) goto cleanup;
    int k = 0;
    for (int l = 0; l < N_LINES; l++) {
        const acc *a = &lines[l];
        if (a->cases == 0) continue;
        ope_sim_stat *s = &out[k++];
        int seq = l >= T1_N * E1_N;
        s->design = seq ? "sequential" : "one-step";
        s->target = seq ? "shifted" : k_t1_name[l / E1_N];
        s->est = seq ? k_e2[l - T1_N * E1_N] : k_e1[l % E1_N];
        s->n_cases = a->cases, s->n_poor = a->poor, s->n = a->n;
        s->mean_rel = a->n ? a->s / a->n : NAN;
        double var = a->n > 1 ? (a->s2 - a->s * a->s / a->n) / (a->n - 1) : NAN;
        s->se_rel = a->n > 1 ? sqrt(var > 0 ? var : 0) / sqrt((double)a->n) : NAN;
        s->mean_abs_rel = a->n ? a->sabs / a->n : NAN;
        s->coverage = a->n_ci ? (double)a->covered / a->n_ci : NAN;
        s->mean_truth = a->n ? a->struth / a->n : NAN;
    }
    *stats = out;
    *n_stats = k;
    out = NULL;

cleanup:
    free(prm);
    free(lines);
    free(out);
    return st;
}
