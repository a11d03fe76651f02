/* exp_gate_plan.c - the gate's PLANNING candidate (nightly.gate_plan; exp_gate.h exp_gate_plan_solve;
 * docs/backtest.md "Closed loop: a planning candidate and the value of a cut").  Off by default:
 * in the closed loop it lowered the `ref` family's figure in every form measured.
 *
 * The gate values one price held for a while (one night, standing, or over H nights).  On a
 * market whose customers anchor on recent prices the best policy is a path: rises within the
 * change limit lift the customers' reference, and a price is worth what it does to the nights
 * after it.  Here a finite-horizon dynamic programme over the product's own fitted demand model
 * (the horizon fit of exp_gate_standing.c: the lag column is the log of the smoothed past price,
 * memory lambda) finds that path: state (smoothed past price, price in force), actions the price
 * levels within the change limit of the price in force, inside the product's hard bounds, margin
 * floor and the prices charged in normal periods (the model's support); reward the fitted money
 * per period; discount gamma; after the last night the price in force is held for ever (the
 * terminal value).  Levels are a log grid anchored at the incumbent, PLAN_STEPS steps per change
 * limit; the smoothed price lives on the same grid (linear interpolation between nodes).  paths 1
 * replaces the DP by the best monotone path (toward one level, then held); plan_model 1 refits
 * the model with a kink at the smoothed reference (exp_gate_plan_kinked).
 * The plan's first price is the candidate; its value is the plan's discounted money against
 * holding the incumbent, and its interval comes from the delta method over the price, lag and
 * kink coefficients (their robust covariance). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_gate.h"

#define PLAN_STEPS 6    /* grid steps per change limit (the held DP oracle's resolution) */
#define PLAN_MAX_LEVELS 400
#define PLAN_TAIL 20 /* nights of the terminal hold valued exactly (then standing) */

/* The kinked reference model's rate (exp_gate_plan_kinked): eta = b0 + b1 (g(p / ref) - xc) + bc comp
 * + bl log(ema / p) + bk max(log(p / ema), 0) (the promo column holds the kink), the columns
 * centred at their means as in feat_demand_rate. */
static double plan_rate_kinked(const feat_demand *m, const feat_demand_ctx *now, double p, double ema) {
    const int C = FEAT_DEMAND_COMP, L = FEAT_DEMAND_LAG, K = FEAT_DEMAND_PROMO;
    double eta = m->beta[0] + m->beta[FEAT_DEMAND_PRICE] * ((m->form ? p / m->ref : log(p / m->ref)) - m->xc);
    if ((m->used >> C & 1u) && isfinite(now->comp)) eta += m->beta[C] * (now->comp - m->mean[C]);
    if (m->used >> L & 1u) eta += m->beta[L] * (log(ema / p) - m->mean[L]);
    if (m->used >> K & 1u) eta += m->beta[K] * (fmax(log(p / ema), 0) - m->mean[K]);
    return m->logit ? p / (1 + exp(-eta)) : p * exp(eta < 30 ? eta : 30);
}

/* Money per period at price p with smoothed past price ema under model m (a copy of the fit's,
 * possibly with shifted coefficients): the fitted rate, times margin / price for profit. */
static double plan_money(const exp_gate_fit *f, const feat_demand *m, double p, double ema) {
    double r;
    if (f->kinked) r = plan_rate_kinked(m, &f->now, p, ema);
    else {
        feat_demand_ctx ctx = f->now;
        ctx.lag = log(ema / m->ref);
        r = feat_demand_rate(m, p, &ctx, 0, NULL);
    }
    return isfinite(f->cost) ? r * (p - f->cost) / p : r;
}

/* The plan's terminal value: the discounted money of holding price p for ever from smoothed price
 * ema (the smoothed price converging to p), PLAN_TAIL nights exactly, then p standing; 0 when
 * gamma is 1 (a plain finite horizon). */
static double plan_tail(const exp_gate_fit *f, const feat_demand *m, double p, double ema, double gamma) {
    if (!(gamma < 1)) return 0;
    double v = 0, g = 1, e = ema;
    for (int s = 0; s < PLAN_TAIL; s++) {
        v += g * plan_money(f, m, p, e);
        e = f->lambda * e + (1 - f->lambda) * p;
        g *= gamma;
    }
    return v + g * plan_money(f, m, p, p) / (1 - gamma);
}

/* Discounted money of the price path path[0..n-1] from smoothed price ema0 under model m, and
 * the terminal value of holding its last price after it. */
static double plan_path_value(const exp_gate_fit *f, const feat_demand *m, const double *path, int n, double gamma,
                              double ema0) {
    double v = 0, g = 1, e = ema0;
    for (int t = 0; t < n; t++) {
        v += g * plan_money(f, m, path[t], e);
        e = f->lambda * e + (1 - f->lambda) * path[t];
        g *= gamma;
    }
    return v + g * plan_tail(f, m, path[n - 1], e, gamma);
}

/* Relative uplift of path over holding the incumbent (hold[]) under model m. */
static double plan_rel(const exp_gate_fit *f, const feat_demand *m, const double *path, const double *hold, int n,
                       double gamma) {
    const double vp = plan_path_value(f, m, path, n, gamma, f->ema_now);
    const double vh = plan_path_value(f, m, hold, n, gamma, f->ema_now);
    return vh > 0 && isfinite(vp) ? vp / vh - 1 : NAN; /* a hold worth <= 0 (profit below cost): no ratio */
}

/* Fractional grid index of price x (levels inc exp(delta (k + kmin))), clamped to [0, N - 1];
 * *j lower node, *w weight of the upper one. */
static void plan_node(double x, double inc, double delta, int kmin, int N, int *j, double *w) {
    double u = log(x / inc) / delta - kmin;
    if (!(u > 0)) u = 0;
    if (u > N - 1) u = N - 1;
    *j = (int)floor(u);
    if (*j >= N - 1) *j = N - 1, *w = 0;
    else *w = u - *j;
}

/* The grid of one plan: levels inc exp(delta (a + kmin)), a = 0..N-1, of which a plan may charge
 * the incumbent's (k0) and those inside [lo, hi] (ka..kb, plan_allowed); the money table M[j][a] at
 * the smoothed price's node j, and for each (j, a) the next smoothed price's node nj and weight nw. */
typedef struct plan_grid {
    double inc, delta, gamma;
    int kmin, N, up, dn;
    int k0, ka, kb;        /* the incumbent's level; the levels inside [lo, hi] (ka..kb) */
    double *M, *nw;
    int *nj;
} plan_grid;

/* 1 when a plan may charge level a: the incumbent's, or a level inside [lo, hi]. */
static int plan_allowed(const plan_grid *G, int a) { return a == G->k0 || (a >= G->ka && a <= G->kb); }

/* The best action from smoothed price ema (node j >= 0: the tables; j < 0: exact) and price level k
 * at a stage whose next values are next ([N ema][N k]; NULL: the last stage): the level, its value
 * in *q. */
static int plan_best(const exp_gate_fit *f, const plan_grid *G, const double *next, int j, double ema, int k, double *q) {
    const int N = G->N;
    int best = k;
    double bq = -INFINITY;
    for (int a = k - G->dn; a <= k + G->up; a++) {
        if (a < 0 || a >= N || !plan_allowed(G, a)) continue;
        const double p = G->inc * exp(G->delta * (a + G->kmin));
        double v = j >= 0 ? G->M[(size_t)j * N + a] : plan_money(f, &f->dm, p, ema);
        if (next) {
            int nj;
            double w;
            if (j >= 0) nj = G->nj[(size_t)j * N + a], w = G->nw[(size_t)j * N + a];
            else plan_node(f->lambda * ema + (1 - f->lambda) * p, G->inc, G->delta, G->kmin, N, &nj, &w);
            v += G->gamma * ((1 - w) * next[(size_t)nj * N + a] + (w > 0 ? w * next[(size_t)(nj + 1) * N + a] : 0));
        }
        if (v > bq) bq = v, best = a;
    }
    *q = bq;
    return best;
}

/* The DP's path from (ema_now, the incumbent at level k0) into path[0..nights-1] (the caller's).
 * Allocates its value and model tables (G->M, G->nj) and frees them before returning.  0 or
 * ENG_ENOMEM (nothing left allocated). */
static int plan_dp(const exp_gate_fit *f, plan_grid *G, int k0, int nights, double *path) {
    const int N = G->N;
    const size_t NN = (size_t)N * N;
    const double inc = G->inc, delta = G->delta;
    const int kmin = G->kmin;
    double *V = eng_malloc((size_t)(nights + 1) * NN * sizeof *V);
    G->M = eng_malloc(2 * NN * sizeof *G->M);
    G->nj = eng_malloc(NN * sizeof *G->nj);
    if (!V || !G->M || !G->nj) {
        free(V), free(G->M), free(G->nj);
        return ENG_ENOMEM;
    }
    G->nw = G->M + NN;
    for (int j = 0; j < N; j++)
        for (int a = 0; a < N; a++) {
            const double e = inc * exp(delta * (j + kmin)), p = inc * exp(delta * (a + kmin));
            G->M[(size_t)j * N + a] = plan_money(f, &f->dm, p, e);
            plan_node(f->lambda * e + (1 - f->lambda) * p, inc, delta, kmin, N, &G->nj[(size_t)j * N + a], &G->nw[(size_t)j * N + a]);
            /* V_nights: holding the price in force for ever */
            V[(size_t)nights * NN + (size_t)j * N + a] = plan_tail(f, &f->dm, p, e, G->gamma);
        }
    for (int t = nights - 1; t >= 0; t--) /* V_t(ema node j, level k) */
        for (int j = 0; j < N; j++)
            for (int k = 0; k < N; k++)
                plan_best(f, G, V + (size_t)(t + 1) * NN, j, 0, k, &V[(size_t)t * NN + (size_t)j * N + k]);
    /* the plan from the actual state: smoothed price ema_now (exact), the incumbent in force */
    double e = f->ema_now > 0 ? f->ema_now : inc, q;
    int k = k0;
    for (int t = 0; t < nights; t++) {
        k = plan_best(f, G, V + (size_t)(t + 1) * NN, -1, e, k, &q);
        path[t] = k == k0 ? inc : inc * exp(delta * (k + kmin));
        e = f->lambda * e + (1 - f->lambda) * path[t];
    }
    free(V), free(G->M), free(G->nj);
    return ENG_OK;
}

/* The best MONOTONE path: toward one target level as fast as the change limit allows, then held
 * (every allowed level a target whose steps are allowed too, the incumbent always); into
 * path[0..nights-1]. */
static void plan_target(const exp_gate_fit *f, const plan_grid *G, int k0, int nights, double *path, double *tmp) {
    double best = -INFINITY;
    for (int a = 0; a < G->N; a++) {
        if (!plan_allowed(G, a)) continue;
        int k = k0, ok = 1;
        for (int t = 0; t < nights && ok; t++) {
            k = a > k ? (a - k > G->up ? k + G->up : a) : (k - a > G->dn ? k - G->dn : a);
            ok = plan_allowed(G, k); /* a path through a level outside [lo, hi] cannot be charged */
            tmp[t] = k == k0 ? G->inc : G->inc * exp(G->delta * (k + G->kmin));
        }
        if (!ok) continue;
        const double v = plan_path_value(f, &f->dm, tmp, nights, G->gamma, f->ema_now > 0 ? f->ema_now : G->inc);
        if (v > best) best = v, memcpy(path, tmp, (size_t)nights * sizeof *path);
    }
}

int exp_gate_plan_solve(const exp_gate_fit *f, double inc, double lo, double hi, double max_change, int nights,
                        double gamma, int paths, double z, exp_gate_plan *out) {
    memset(out, 0, sizeof *out);
    out->price = inc;
    out->rel = out->rel_lo = NAN;
    if (!f->ok || !f->dm.ok || !(inc > 0) || nights < 1 || !(gamma > 0 && gamma <= 1) || !(max_change > 0) ||
        !(lo > 0) || !(hi >= lo))
        return ENG_OK;
    const double delta = log(1 + max_change) / PLAN_STEPS;
    const int up = PLAN_STEPS, dn = (int)floor(-log(1 - fmin(max_change, 0.99)) / delta + 1e-9);
    int kmin = (int)ceil(log(fmin(lo, inc) / inc) / delta - 1e-9), kmax = (int)floor(log(fmax(hi, inc) / inc) / delta + 1e-9);
    if (kmin < -PLAN_MAX_LEVELS / 2) kmin = -PLAN_MAX_LEVELS / 2;
    if (kmax > PLAN_MAX_LEVELS / 2) kmax = PLAN_MAX_LEVELS / 2;
    const int N = kmax - kmin + 1, k0 = -kmin;
    if (N < 2) return ENG_OK;
    /* the incumbent is a level (k0) even outside [lo, hi]; a plan charges the others only inside */
    plan_grid G = {.inc = inc, .delta = delta, .gamma = gamma, .kmin = kmin, .N = N, .up = up, .dn = dn, .k0 = k0,
                   .ka = (int)ceil(log(lo / inc) / delta - 1e-9) - kmin, .kb = (int)floor(log(hi / inc) / delta + 1e-9) - kmin};
    double *path = eng_malloc(3 * (size_t)nights * sizeof *path);
    if (!path) return ENG_ENOMEM;
    double *hold = path + nights, *tmp = path + 2 * (size_t)nights;
    int st = ENG_OK;
    if (paths == 1) plan_target(f, &G, k0, nights, path, tmp);
    else if ((st = plan_dp(f, &G, k0, nights, path))) {
        free(path);
        return st;
    }
    for (int t = 0; t < nights; t++) {
        hold[t] = inc;
        if (path[t] > inc * 1.0001) out->n_up++;
        else if (path[t] < inc * 0.9999) out->n_down++;
    }
    out->price = path[0];
    out->nights = nights;
    out->rel = plan_rel(f, &f->dm, path, hold, nights, gamma);
    /* delta method over the price, lag and (kinked) kink coefficients: gradient by central
     * differences of one robust standard error each, their robust covariance */
    const int K = FEAT_DEMAND_K, asym = !f->kinked && (f->dm.used >> FEAT_DEMAND_LOSS & 1u);
    const int cols[3] = {FEAT_DEMAND_PRICE, FEAT_DEMAND_LAG, asym ? FEAT_DEMAND_LOSS : FEAT_DEMAND_PROMO};
    const int nc = f->kinked || asym ? 3 : 2; /* the kink: the kinked refit's, or the one model's loss column */
    double g[3] = {0, 0, 0}, var = 0;
    for (int i = 0; i < nc; i++) {
        const int c = cols[i];
        const double sd = (f->dm.used >> c & 1u) && f->dm.rcov[c * K + c] > 0 ? sqrt(f->dm.rcov[c * K + c]) : 0;
        if (!(sd > 0)) continue;
        feat_demand mp = f->dm, mm = f->dm;
        mp.beta[c] += sd, mm.beta[c] -= sd;
        g[i] = (plan_rel(f, &mp, path, hold, nights, gamma) - plan_rel(f, &mm, path, hold, nights, gamma)) / (2 * sd);
    }
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < nc; j++) var += g[i] * g[j] * f->dm.rcov[cols[i] * K + cols[j]];
    out->rel_sd = var > 0 ? sqrt(var) : 0;
    out->rel_lo = out->rel - z * out->rel_sd;
    out->ok = isfinite(out->rel) && isfinite(out->rel_lo);
    free(path);
    return ENG_OK;
}

int exp_gate_plan_pick(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr,
                       const exp_gate_fit *fit, double z, exp_gate_out *o) {
    if (!(fit->horizon >= 2)) return ENG_OK; /* no carry-over to plan over: the gate as it was */
    const double inc = pr->incumbent_price;
    env_guard_bounds b = env_guard_bounds_band(h, pr->index, inc, &cfg->grid);
    double lo = 0.01, hi = INFINITY;
    if (isfinite(b.min_price)) lo = fmax(lo, b.min_price);
    if (isfinite(b.unit_cost) && b.unit_cost > 0) lo = fmax(lo, b.unit_cost / (1 - cfg->guard.min_margin));
    if (isfinite(b.max_price)) hi = b.max_price;
    if (cfg->support_widen >= 0) { /* the model's support: prices charged in normal periods */
        const double tol = 0.0125 + cfg->support_widen;
        lo = fmax(lo, fit->sup_lo * (1 - tol)), hi = fmin(hi, fit->sup_hi * (1 + tol));
    }
    if (!isfinite(hi)) hi = 4 * inc;
    const double mc = isfinite(b.max_change_pct) ? b.max_change_pct : cfg->guard.default_max_change_pct;
    exp_gate_fit kf;
    int st = cfg->plan_model == 1 ? exp_gate_plan_kinked(h, pr->index, fit, &kf) : (kf = *fit, ENG_OK);
    if (st) return st;
    exp_gate_plan plan;
    st = exp_gate_plan_solve(&kf, inc, lo, hi, isfinite(mc) && mc > 0 ? mc / 100 : 1.0, cfg->plan_nights,
                                 cfg->plan_gamma, cfg->plan_paths, z, &plan);
    if (st || !plan.ok) return st;
    if (fabs(plan.price - inc) < 0.005) { /* the plan holds first */
        if (cfg->plan >= 2 && o->deploy) {
            o->deploy = 0, o->planned = 2, o->agent = EXP_AGENT_HISTORY, o->frac = 0;
            o->uplift = o->lo = o->hi = NAN;
        }
        return ENG_OK;
    }
    if (!(plan.rel_lo > fmax(cfg->min_gain, 0))) return ENG_OK;
    double gp;
    uint32_t why = 0;
    if ((st = env_guard_apply(&cfg->guard, &b, plan.price, &gp, &why, NULL, NULL))) return st;
    if (fabs(gp - inc) < 0.005) return ENG_OK;
    /* attributed to the agent whose move points the plan's way (else the first usable one) */
    exp_agent a = EXP_AGENT_FIXED;
    for (int j = EXP_AGENT_FIXED; j < EXP_N_AGENTS; j++)
        if (!(pr->agent_failed & (1u << j)) && (pr->price[j] - inc) * (gp - inc) > 0) { a = (exp_agent)j; break; }
    const double pa = pr->price[a];
    o->deploy = 1, o->agent = a, o->by_model = 1, o->planned = 1;
    o->frac = fabs(pa - inc) >= 0.005 && (gp - inc) * (pa - inc) > 0 ? (gp - inc) / (pa - inc) : INFINITY;
    /* money per period: the plan's uplift per night of the horizon, in units of the base */
    o->uplift = plan.rel * fit->base, o->lo = plan.rel_lo * fit->base, o->hi = (2 * plan.rel - plan.rel_lo) * fit->base;
    o->price = gp;
    return ENG_OK;
}

int exp_gate_plan_kinked(const db_history *h, int p, const exp_gate_fit *fit, exp_gate_fit *out) {
    *out = *fit;
    if (!fit->ok || !(fit->horizon >= 2)) return ENG_OK;
    const int T = h->n_periods;
    const double inc = fit->dm.ref;
    for (int t = 0; t < T; t++)
        if (h->promo && h->promo[(size_t)p * T + t] && h->present[(size_t)p * T + t]) return ENG_OK; /* promo in use */
    feat_demand_row *rows = eng_malloc((size_t)(T > 0 ? T : 1) * sizeof *rows);
    if (!rows) return ENG_ENOMEM;
    size_t n = 0, k = 0;
    feat_demand_rows_history(h, p, inc, inc, rows, &n, NULL);
    double ema = NAN; /* the smoothed past price before each row (memory fit->lambda), as exp_gate_standing.c */
    for (int t = 0; t < T; t++) {
        const size_t c = (size_t)p * T + t;
        const int row = h->present[c] && h->price[c] > 0 && isfinite(h->units[c]) && h->units[c] >= 0;
        if (row && k < n) {
            feat_demand_row *r = &rows[k++];
            r->lag = isfinite(ema) ? log(ema / r->price) : NAN;
            r->promo = isfinite(ema) ? fmax(log(r->price / ema), 0) : NAN;
        }
        if (h->present[c] && h->price[c] > 0)
            ema = isfinite(ema) ? fit->lambda * ema + (1 - fit->lambda) * h->price[c] : h->price[c];
    }
    feat_demand m;
    int st = feat_demand_fit_asym(&m, rows, n, inc, fit->dm.logit, NULL, 0); /* its own kink (promo slot) */
    free(rows);
    if (st) return st;
    const unsigned need = 1u << FEAT_DEMAND_LAG | 1u << FEAT_DEMAND_PROMO;
    if (!m.ok || (m.used & need) != need) return ENG_OK; /* the symmetric model stays */
    out->dm = m;
    out->kinked = 1;
    return ENG_OK;
}
