/* exp_gate.c - the nightly's deploy gate: the product's own demand model (promotions, the
 * previous price, competitors and a trend as state), and the choice among the agents' moves
 * (exp_gate.h). */
#include "exp_gate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "env_reward.h"
#include "exp_nightly.h"
#include "ope_lapack.h"

#define GATE_MAX_COLS 6
#define GATE_MIN_ROWS 8
#define GATE_SUPPORT_TOL 0.0125 /* prices within this share count as charged (exp_nightly_sense.c) */

static const char *const mode_names[EXP_GATE_N_MODES] = {"ope", "model", "both"};

const char *exp_gate_mode_name(int mode) { return mode >= 0 && mode < EXP_GATE_N_MODES ? mode_names[mode] : NULL; }

static int profit_kind(int k) { return k == ENV_REWARD_PROFIT || k == ENV_REWARD_PCR || k == ENV_REWARD_DPCR; }

/* Mean competitor price of cell c, NaN without one. */
static double comp_mean(const db_history *h, size_t c) {
    if (!h->comp_off || h->comp_off[c + 1] <= h->comp_off[c]) return NAN;
    double s = 0;
    for (int64_t o = h->comp_off[c]; o < h->comp_off[c + 1]; o++) s += h->comp_price[o];
    return s / (double)(h->comp_off[c + 1] - h->comp_off[c]);
}

/* Inverse of the k x k symmetric positive definite a (row-major, overwritten) into inv.  0, or -1
 * when a is not positive definite. */
static int spd_inverse(double *a, int k, double *inv) {
    for (int i = 0; i < k * k; i++) inv[i] = 0;
    for (int i = 0; i < k; i++) inv[i * k + i] = 1;
    int info = 0;
    dposv_("L", &k, &k, a, &k, inv, &k, &info, 1);
    return info == 0 ? 0 : -1;
}

/* The regression of one product: X [n][GATE_MAX_COLS] (the first ncols used), units y, log
 * exposure off (log traffic, or 0); owned arrays, freed by the caller. */
typedef struct design {
    int n, ncols;
    double *X, *y, *off;
    int promo_col;  /* column of the promotion flag, -1 none */
} design;

/* The design of product p: rows with a positive price and finite units (and traffic when it is
 * used as exposure, i.e. known on >= 90% of the rows).  Columns: 1, x = price / incumbent - 1,
 * then the state columns that vary (promotion flag, previous period's x, log competitors' mean
 * / incumbent, trend).  Returns 0 or ENG_ENOMEM (the caller frees d's arrays either way). */
static int design_build(const db_history *h, int p, double inc, design *d) {
    const int T = h->n_periods;
    int n_rows = 0, n_traffic = 0;
    for (int t = 0; t < T; t++) {
        size_t c = (size_t)p * T + t;
        if (!h->present[c] || !(h->price[c] > 0) || !isfinite(h->units[c]) || h->units[c] < 0) continue;
        n_rows++;
        n_traffic += isfinite(h->traffic[c]) && h->traffic[c] > 0;
    }
    const int use_traffic = n_rows > 0 && n_traffic >= 0.9 * n_rows;
    d->X = eng_malloc((size_t)(n_rows ? n_rows : 1) * GATE_MAX_COLS * sizeof *d->X);
    d->y = eng_malloc((size_t)(n_rows ? n_rows : 1) * sizeof *d->y);
    d->off = eng_malloc((size_t)(n_rows ? n_rows : 1) * sizeof *d->off);
    if (!d->X || !d->y || !d->off) return ENG_ENOMEM;
    /* candidate state columns: promo, lag x, log comp ratio, trend; kept when they vary */
    int n = 0;
    double prev_x = NAN;
    for (int t = 0; t < T; t++) {
        size_t c = (size_t)p * T + t;
        int ok = h->present[c] && h->price[c] > 0 && isfinite(h->units[c]) && h->units[c] >= 0;
        double x = h->price[c] / inc - 1;
        if (ok && (!use_traffic || (isfinite(h->traffic[c]) && h->traffic[c] > 0))) {
            double *r = d->X + (size_t)n * GATE_MAX_COLS;
            double cm = comp_mean(h, c);
            r[0] = 1, r[1] = x;
            r[2] = h->promo ? h->promo[c] : 0;
            r[3] = isfinite(prev_x) ? prev_x : NAN;
            r[4] = isfinite(cm) && cm > 0 ? log(cm / inc) : NAN;
            r[5] = (double)t / (T > 1 ? T - 1 : 1) - 0.5;
            d->y[n] = h->units[c];
            d->off[n] = use_traffic ? log(h->traffic[c]) : 0;
            n++;
        }
        prev_x = h->present[c] && h->price[c] > 0 ? x : NAN;
    }
    /* missing lag / competitor values take the column's mean; a column without variation goes */
    int keep[GATE_MAX_COLS] = {1, 1, 0, 0, 0, 0};
    for (int j = 2; j < GATE_MAX_COLS; j++) {
        double s = 0, lo = INFINITY, hi = -INFINITY;
        int m = 0;
        for (int i = 0; i < n; i++) {
            double v = d->X[(size_t)i * GATE_MAX_COLS + j];
            if (isfinite(v)) s += v, m++, lo = fmin(lo, v), hi = fmax(hi, v);
        }
        keep[j] = m >= n / 2 && hi - lo > 1e-6;
        double mean = m ? s / m : 0;
        for (int i = 0; i < n; i++)
            if (!isfinite(d->X[(size_t)i * GATE_MAX_COLS + j])) d->X[(size_t)i * GATE_MAX_COLS + j] = mean;
    }
    /* compact the kept columns to the front of each row */
    int nc = 0, map[GATE_MAX_COLS];
    d->promo_col = -1;
    for (int j = 0; j < GATE_MAX_COLS; j++)
        if (keep[j]) {
            if (j == 2) d->promo_col = nc;
            map[nc++] = j;
        }
    for (int i = 0; i < n; i++) {
        double *r = d->X + (size_t)i * GATE_MAX_COLS, tmp[GATE_MAX_COLS];
        for (int j = 0; j < nc; j++) tmp[j] = r[map[j]];
        memcpy(r, tmp, (size_t)nc * sizeof *r);
    }
    d->n = n, d->ncols = nc;
    return ENG_OK;
}

/* The fitted mean of row i of d at beta (k columns): exp(offset + x'beta), the exponent capped at
 * 700 so it stays finite. */
static double design_mu(const design *d, const double *beta, int k, int i) {
    const double *x = d->X + (size_t)i * GATE_MAX_COLS;
    double eta = d->off[i];
    for (int j = 0; j < k; j++) eta += beta[j] * x[j];
    return exp(fmin(eta, 700));
}

/* Poisson IRLS (Newton) of d; beta[ncols], V = robust covariance [ncols^2].  0, or -1 when it
 * did not converge / a matrix was singular. */
static int poisson_fit(const design *d, double *beta, double *V) {
    const int k = d->ncols, n = d->n;
    double A[GATE_MAX_COLS * GATE_MAX_COLS], Ai[GATE_MAX_COLS * GATE_MAX_COLS], g[GATE_MAX_COLS];
    double ys = 0, es = 0;
    for (int i = 0; i < n; i++) ys += d->y[i], es += exp(d->off[i]);
    if (!(ys > 0)) return -1;
    memset(beta, 0, (size_t)k * sizeof *beta);
    beta[0] = log(ys / es);
    int conv = 0;
    for (int it = 0; it < 50 && !conv; it++) {
        memset(A, 0, sizeof A);
        memset(g, 0, sizeof g);
        for (int i = 0; i < n; i++) {
            const double *x = d->X + (size_t)i * GATE_MAX_COLS;
            double mu = design_mu(d, beta, k, i);
            for (int a = 0; a < k; a++) {
                g[a] += x[a] * (d->y[i] - mu);
                for (int b = 0; b <= a; b++) A[a * k + b] += mu * x[a] * x[b];
            }
        }
        for (int a = 0; a < k; a++)
            for (int b = 0; b < a; b++) A[b * k + a] = A[a * k + b];
        for (int a = 0; a < k; a++) A[a * k + a] += 1e-9 * (1 + A[a * k + a]);
        int info = 0, one = 1;
        dposv_("L", &k, &one, A, &k, g, &k, &info, 1);
        if (info) return -1;
        double step = 0;
        for (int j = 0; j < k; j++) {
            double s = fmax(-5, fmin(5, g[j])); /* damped: the first steps from a flat start */
            beta[j] += s;
            step = fmax(step, fabs(s));
        }
        conv = step < 1e-8;
    }
    if (!conv) return -1;
    /* robust covariance: A^-1 B A^-1 x n / (n - k), and the quasi-Poisson A^-1 x phi */
    double B[GATE_MAX_COLS * GATE_MAX_COLS], phi = 0;
    memset(A, 0, sizeof A);
    memset(B, 0, sizeof B);
    for (int i = 0; i < n; i++) {
        const double *x = d->X + (size_t)i * GATE_MAX_COLS;
        double mu = design_mu(d, beta, k, i), r = d->y[i] - mu;
        phi += mu > 0 ? r * r / mu : 0;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) A[a * k + b] += mu * x[a] * x[b], B[a * k + b] += r * r * x[a] * x[b];
    }
    phi /= (n - k);
    if (spd_inverse(A, k, Ai)) return -1;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double s = 0;
            for (int u = 0; u < k; u++)
                for (int v = 0; v < k; v++) s += Ai[a * k + u] * B[u * k + v] * Ai[v * k + b];
            double sand = s * n / (n - k), quasi = Ai[a * k + b] * fmax(phi, 1.0);
            V[a * k + b] = a == b ? fmax(sand, quasi) : sand;
        }
    return 0;
}

int exp_gate_fit_product(const db_history *h, int p, double incumbent, int reward_kind, exp_gate_fit *f) {
    memset(f, 0, sizeof *f);
    f->slope = f->slope_se = f->base = f->sup_lo = f->sup_hi = NAN;
    f->cost = profit_kind(reward_kind) && isfinite(h->unit_cost[p]) ? h->unit_cost[p] : NAN;
    if (!(incumbent > 0)) return ENG_OK;
    const int T = h->n_periods;
    for (int t = 0; t < T; t++) { /* the normal-period support */
        size_t c = (size_t)p * T + t;
        if (!h->present[c] || !(h->price[c] > 0) || (h->promo && h->promo[c])) continue;
        if (!(h->price[c] >= f->sup_lo)) f->sup_lo = h->price[c];
        if (!(h->price[c] <= f->sup_hi)) f->sup_hi = h->price[c];
    }
    design d = {0};
    int st = design_build(h, p, incumbent, &d);
    if (st) goto cleanup;
    f->n = d.n, f->n_cols = d.ncols;
    double xs = 0, xx = 0;
    for (int i = 0; i < d.n; i++) xs += d.X[(size_t)i * GATE_MAX_COLS + 1], xx += pow(d.X[(size_t)i * GATE_MAX_COLS + 1], 2);
    if (d.n < GATE_MIN_ROWS || d.n <= d.ncols + 2 || !(xx / d.n - pow(xs / d.n, 2) > 1e-8)) goto cleanup;
    double beta[GATE_MAX_COLS], V[GATE_MAX_COLS * GATE_MAX_COLS];
    if (poisson_fit(&d, beta, V)) goto cleanup;
    f->slope = beta[1];
    f->slope_se = sqrt(V[1 * d.ncols + 1]);
    /* money per period at the incumbent in a normal period: the rows' own state, x = 0, no promotion */
    double s = 0;
    for (int i = 0; i < d.n; i++) {
        const double *x = d.X + (size_t)i * GATE_MAX_COLS;
        double eta = d.off[i] + beta[0];
        for (int j = 2; j < d.ncols; j++) eta += j == d.promo_col ? 0 : beta[j] * x[j];
        s += exp(fmin(eta, 700));
    }
    double margin = isfinite(f->cost) ? incumbent - f->cost : incumbent;
    f->base = s / d.n * margin;
    f->ok = isfinite(f->slope) && isfinite(f->slope_se) && f->slope_se > 0 && isfinite(f->base);
cleanup:
    free(d.X);
    free(d.y);
    free(d.off);
    return st;
}

double exp_gate_rel(const exp_gate_fit *f, double incumbent, double c, double k) {
    if (!f->ok || !(incumbent > 0) || !(c > 0)) return NAN;
    double x = c / incumbent - 1, b = f->slope + k * f->slope_se;
    double m = isfinite(f->cost) ? (c - f->cost) / (incumbent - f->cost) : c / incumbent;
    if (!(m > 0) || !(incumbent - (isfinite(f->cost) ? f->cost : 0) > 0)) return NAN;
    return m * exp(b * x) - 1;
}

/* Guarded price of candidate c for product pr; 0 or ENG_EINVAL. */
static int guarded(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr, double c, double *out,
                   uint32_t *why) {
    env_guard_bounds b = env_guard_bounds_band(h, pr->index, pr->incumbent_price, &cfg->grid);
    return env_guard_apply(&cfg->guard, &b, c, out, why, NULL, NULL);
}

/* OPE gate bound of an agent's shrunk uplift (the interval's own bound at 1 - ope_alpha). */
static double ope_lo(const exp_gate_cfg *cfg, const ope_value *v) {
    if (fabs(cfg->level - (1 - cfg->ope_alpha)) < 1e-6 || !(isfinite(v->boot_se) && v->boot_se > 0)) return v->ci_low;
    return v->estimate - exp_nightly_gate_z(cfg->level) * v->boot_se;
}

/* Value the guarded price of candidate c (agent a) under the demand model: eligible when its
 * lower bound at the gate's level (z) is above 0; kept in *o when its score (the lower bound at
 * the selection level, zs; zs = 0: the estimate) is above *best.  0 or ENG_EINVAL (guardrails). */
static int model_try(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr,
                     const exp_gate_fit *fit, exp_agent a, double c, double z, double zs, double *best,
                     exp_gate_out *o) {
    const double inc = pr->incumbent_price;
    double gp;
    uint32_t why = 0;
    int st = guarded(cfg, h, pr, c, &gp, &why);
    if (st) return st;
    if (fabs(gp - inc) < 0.005) return ENG_OK; /* no move left */
    const double tol = GATE_SUPPORT_TOL + cfg->support_widen;
    if (cfg->support_widen >= 0 && !(gp >= fit->sup_lo * (1 - tol) && gp <= fit->sup_hi * (1 + tol)))
        return ENG_OK; /* outside the prices charged in normal periods (widened by support_widen) */
    double dir = gp > inc ? 1 : -1;
    /* the lower bound of the uplift: the slope at its unfavourable end */
    double r_lo = exp_gate_rel(fit, inc, gp, -z * dir), score = exp_gate_rel(fit, inc, gp, -zs * dir);
    if (!(r_lo > 0 && score > *best)) return ENG_OK;
    *best = score;
    double pa = pr->price[a];
    o->deploy = 1, o->agent = a, o->by_model = 1;
    o->frac = fabs(pa - inc) > 0 ? (gp - inc) / (pa - inc) : 1;
    o->uplift = exp_gate_rel(fit, inc, gp, 0) * fit->base;
    o->lo = r_lo * fit->base, o->hi = exp_gate_rel(fit, inc, gp, z * dir) * fit->base;
    o->price = gp;
    return ENG_OK;
}

/* The moves tried for agent a: k / steps of its move (k = steps..1), and with cfg->extend the
 * points k / 8 of the way from the incumbent to the guardrails' edge in its direction (the
 * model sets the step size, the agent the direction).  0 or ENG_EINVAL. */
static int model_moves(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr,
                       const exp_gate_fit *fit, exp_agent a, double z, double *best_lo, exp_gate_out *o) {
    const double zs = cfg->select_level > 0 ? exp_nightly_gate_z(cfg->select_level) : cfg->select_level == 0 ? 0 : z;
    const double inc = pr->incumbent_price, pa = pr->price[a];
    const int steps = cfg->steps > 1 ? cfg->steps : 1;
    int st;
    for (int s = steps; s >= 1; s--)
        if ((st = model_try(cfg, h, pr, fit, a, inc + (double)s / steps * (pa - inc), z, zs, best_lo, o))) return st;
    if (!cfg->extend || fabs(pa - inc) < 0.005) return ENG_OK;
    env_guard_bounds b = env_guard_bounds_band(h, pr->index, inc, &cfg->grid);
    env_guard_cfg g = cfg->guard;
    double tmp, lo, hi;
    if ((st = env_guard_apply(&g, &b, inc, &tmp, NULL, &lo, &hi))) return st;
    double edge = pa > inc ? hi : lo;
    for (int k = 8; k >= 1; k--)
        if ((st = model_try(cfg, h, pr, fit, a, inc + k / 8.0 * (edge - inc), z, zs, best_lo, o))) return st;
    return ENG_OK;
}

static const exp_agent gate_cands[] = {EXP_AGENT_FIXED, EXP_AGENT_LINUCB, EXP_AGENT_DQN, EXP_AGENT_DDPG};

int exp_gate_pick(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr, const exp_gate_fit *fit,
                  exp_gate_out *o) {
    memset(o, 0, sizeof *o);
    o->agent = EXP_AGENT_HISTORY;
    o->frac = 0;
    o->uplift = o->lo = o->hi = NAN;
    const double inc = pr->incumbent_price, z = exp_nightly_gate_z(cfg->level);
    const int model = cfg->mode != EXP_GATE_OPE;
    const int fit_ok = fit && fit->ok;
    double best_lo = -INFINITY;
    for (size_t j = 0; j < sizeof gate_cands / sizeof gate_cands[0]; j++) {
        exp_agent a = gate_cands[j];
        if (pr->agent_failed & (1u << a)) continue;
        if (a != EXP_AGENT_FIXED) o->n_learn_ok++;
        const ope_value *v = &pr->uplift_shrunk[a];
        int ope_ok = v->available && isfinite(v->estimate) && isfinite(v->ci_low);
        if (model ? !fit_ok || (cfg->mode == EXP_GATE_BOTH && !ope_ok) : !ope_ok) {
            o->n_unusable++;
            continue;
        }
        o->n_usable++;
        if (!(isfinite(pr->price[a]) && pr->price[a] > 0)) continue;
        if (!model) {
            double lo = ope_lo(cfg, v);
            if (!(lo > 0 && lo > best_lo)) continue;
            best_lo = lo;
            o->deploy = 1, o->agent = a, o->frac = 1, o->by_model = 0;
            o->uplift = v->estimate, o->lo = v->ci_low, o->hi = isfinite(v->ci_high) ? v->ci_high : NAN;
            o->price = pr->price[a];
            continue;
        }
        if (cfg->mode == EXP_GATE_BOTH && !(v->estimate > 0)) continue; /* OPE disagrees on the sign */
        int st = model_moves(cfg, h, pr, fit, a, z, &best_lo, o);
        if (st) return st;
    }
    double cand = o->deploy ? o->price : inc;
    env_guard_cfg g = cfg->guard;
    if (!o->deploy) g.n_endings = 0; /* a held price is not re-rounded */
    env_guard_bounds b = env_guard_bounds_band(h, pr->index, inc, &cfg->grid);
    int st = env_guard_apply(&g, &b, cand, &o->price, &o->guard, NULL, NULL);
    if (st) return st;
    if (!o->deploy) o->uplift = o->lo = o->hi = NAN;
    return ENG_OK;
}
