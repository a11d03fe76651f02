/* env_sim_dp.c - finite-horizon optimal pricing for one product by backward induction over a
 * discretised reference-price state (see env_sim.h).
 *
 * State: (t, r).  Action: a level k of the price grid, price p_k = p0 * mult[k].
 *   Q_t(r, k) = E[V_t] * q(p_k, r, cbar0) * (p_k - cost * profit) + gamma * V_{t+1}(lambda r + (1 - lambda) p_k)
 *   V_t(r)    = max_k Q_t(r, k),  V_H = 0.
 * The immediate term is the exact expectation from the demand model: E[units | r, p] =
 * E[V_t] q, because U ~ Binomial(V, q) and V ~ Poisson(L) with E[L] = E[V_t]; traffic noise is
 * independent of the price, so it does not change the decision.
 *
 * Discretisation: V_{t+1} is stored on n_ref evenly spaced nodes over [r_lo, r_hi] =
 * [min(p_min, r0), max(p_max, r0)] and read by linear interpolation.  This interval is
 * invariant: the next reference is a convex combination of r and a grid price, so every
 * reachable r stays inside it and no extrapolation is ever needed.  V_t is Lipschitz in r
 * (q is smooth in log r except at the kink r = p, where it is still Lipschitz), so linear
 * interpolation errs by O(h^2) in smooth parts and O(h) near kinks, h = (r_hi - r_lo)/(n_ref-1),
 * and the errors add at most over the horizon.  With a few hundred nodes the error is far below
 * the Monte-Carlo noise of any evaluation; the tests check that doubling n_ref leaves V_0 almost
 * unchanged and that simulating the policy reproduces V_0.
 * Competitors enter at their mean price cbar0 (exact when their prices are constant); the policy
 * (env_sim_policy_dp) then uses the actually posted competitor prices in the immediate term.
 * Finite stock would add a state dimension and is rejected. */
#include "env_sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void env_sim_dp_free(env_sim_dp *dp) {
    if (!dp) return;
    free(dp->value);
    free(dp->policy);
    free(dp);
}

static double interp(const double *v, int n, double lo, double hi, double r) {
    if (n == 1 || hi <= lo) return v[0];
    double x = (r - lo) / (hi - lo) * (n - 1);
    if (x <= 0) return v[0];
    if (x >= n - 1) return v[n - 1];
    int j = (int)x;
    double w = x - j;
    return (1 - w) * v[j] + w * v[j + 1];
}

double env_sim_dp_value(const env_sim_dp *dp, int t, double ref) {
    if (t < 0) t = 0;
    if (t > dp->horizon) t = dp->horizon;
    return interp(dp->value + (size_t)t * dp->n_ref, dp->n_ref, dp->r_lo, dp->r_hi, ref);
}

double env_sim_dp_q(const env_sim_dp *dp, int t, double ref, double price, double cbar) {
    const env_sim_params *p = &dp->prm;
    double margin = price - (dp->profit ? p->unit_cost : 0);
    double imm = env_sim_expected_traffic(p, dp->t0 + t) * env_sim_purchase_prob(p, price, ref, cbar) * margin;
    double next = t + 1 < dp->horizon ? env_sim_dp_value(dp, t + 1, env_sim_ref_next(p, ref, price)) : 0;
    return imm + dp->gamma * next;
}

static double q_value(const env_sim_dp *dp, int t, double ref, int k, double cbar) {
    return env_sim_dp_q(dp, t, ref, dp->prm.base_price * dp->grid.mult[k], cbar);
}

int env_sim_dp_solve(const env_sim_params *p, const env_sim_grid *g, int horizon, double gamma, int n_ref,
                     int profit, env_sim_dp **out) {
    return env_sim_dp_solve_from(p, g, 0, NAN, horizon, gamma, n_ref, profit, out);
}

int env_sim_dp_solve_from(const env_sim_params *p, const env_sim_grid *g, int t0, double ref_now, int horizon,
                          double gamma, int n_ref, int profit, env_sim_dp **out) {
    *out = NULL;
    int st = env_sim_params_check(p);
    if (st) return st;
    if (horizon < 1 || n_ref < 2 || !(gamma > 0 && gamma <= 1) || !g || g->n < 1 || g->n > ENV_SIM_MAX_LEVELS)
        return eng_err_set(ENG_EINVAL, "env_sim_dp_solve: need horizon >= 1, n_ref >= 2, 0 < gamma <= 1, a grid");
    if (p->stock > 0)
        return eng_err_set(ENG_EINVAL, "env_sim_dp_solve: finite stock (%g) is not supported; use unlimited stock",
                           p->stock);
    env_sim_dp *dp = eng_calloc(1, sizeof *dp);
    if (!dp) return ENG_ENOMEM;
    dp->horizon = horizon, dp->n_ref = n_ref, dp->n_levels = g->n, dp->profit = profit ? 1 : 0, dp->gamma = gamma;
    dp->t0 = t0 > 0 ? t0 : 0;
    dp->prm = *p, dp->grid = *g;
    double lo = g->mult[0], hi = g->mult[0];
    for (int k = 1; k < g->n; k++) lo = fmin(lo, g->mult[k]), hi = fmax(hi, g->mult[k]);
    dp->r_lo = p->base_price * fmin(lo, p->ref0);
    dp->r_hi = p->base_price * fmax(hi, p->ref0);
    if (isfinite(ref_now) && ref_now > 0) dp->r_lo = fmin(dp->r_lo, ref_now), dp->r_hi = fmax(dp->r_hi, ref_now);
    dp->value = eng_calloc((size_t)(horizon + 1) * n_ref, sizeof(double));
    dp->policy = eng_calloc((size_t)horizon * n_ref, sizeof(int16_t));
    if (!dp->value || !dp->policy) {
        env_sim_dp_free(dp);
        return ENG_ENOMEM;
    }
    double cbar0 = env_sim_comp_mean_price(p);
    for (int t = horizon - 1; t >= 0; t--) {
        for (int j = 0; j < n_ref; j++) {
            double r = dp->r_lo + (dp->r_hi - dp->r_lo) * j / (n_ref - 1);
            double best = -INFINITY;
            int bk = 0;
            for (int k = 0; k < g->n; k++) {
                double qv = q_value(dp, t, r, k, cbar0);
                if (qv > best) best = qv, bk = k;
            }
            dp->value[(size_t)t * n_ref + j] = best;
            dp->policy[(size_t)t * n_ref + j] = (int16_t)bk;
        }
    }
    *out = dp;
    return ENG_OK;
}

int env_sim_policy_dp(void *ctx, int product, int t, const env_sim_obs *obs, eng_rng *rng, double *price_out) {
    (void)product, (void)rng;
    const env_sim_dp *dp = ctx;
    if (t < 0 || t >= dp->horizon)
        return eng_err_set(ENG_EINVAL, "env_sim_policy_dp: period %d outside the solved horizon %d", t, dp->horizon);
    double ref = env_sim_ref_from_history(&dp->prm, obs);
    double cbar = dp->prm.base_price;
    if (dp->prm.n_comp > 0) {
        cbar = 0;
        for (int k = 0; k < dp->prm.n_comp; k++) cbar += obs->comp_now[k];
        cbar /= dp->prm.n_comp;
    }
    double best = -INFINITY;
    int bk = 0;
    for (int k = 0; k < dp->n_levels; k++) {
        double qv = q_value(dp, t, ref, k, cbar);
        if (qv > best) best = qv, bk = k;
    }
    *price_out = dp->prm.base_price * dp->grid.mult[bk];
    return ENG_OK;
}

/* ---- the optimum held to a change limit ---------------------------------------------------------
 * State (t, k, r): k the level of the price in force before period t (the previous price), r the
 * reference.  Actions: the levels k' reachable from k, level[k'] in [level[k] (1 - mc), level[k]
 * (1 + mc)] (a contiguous range: the levels ascend).
 *   W_t(r, k')   = E[V_t] q(level[k'], r, cbar0) (level[k'] - cost * profit) + gamma V_{t+1}(k', r')
 *   V_t(k, r)    = max_{k' reachable from k} W_t(r, k'),   V_H = 0,   r' = lambda r + (1 - lambda) level[k'].
 * W does not depend on k, so a period costs n_ref x n_levels evaluations of W (the purchase
 * probability and the next reference's interpolation weights are tabled once: they do not depend
 * on t) plus the maxima over the reachable ranges.  The reference interval and its interpolation
 * are those of env_sim_dp_solve_from. */
void env_sim_dpc_free(env_sim_dpc *dp) {
    if (!dp) return;
    free(dp->level);
    free(dp->k_lo);
    free(dp->k_hi);
    free(dp->value);
    free(dp);
}

int env_sim_dpc_reach(const env_sim_dpc *dp, double prev, int *k_lo, int *k_hi) {
    const double lo = prev * (1 - dp->max_change) - 1e-8, hi = prev * (1 + dp->max_change) + 1e-8;
    int a = 0, b = dp->n_levels - 1;
    while (a < dp->n_levels && dp->level[a] < lo) a++;
    while (b >= 0 && dp->level[b] > hi) b--;
    *k_lo = a, *k_hi = b;
    return a <= b;
}

double env_sim_dpc_value(const env_sim_dpc *dp, int t, int k, double ref) {
    if (t < 0) t = 0;
    if (t > dp->horizon) t = dp->horizon;
    if (k < 0 || k >= dp->n_levels) return NAN;
    return interp(dp->value + ((size_t)t * dp->n_levels + k) * dp->n_ref, dp->n_ref, dp->r_lo, dp->r_hi, ref);
}

double env_sim_dpc_q(const env_sim_dpc *dp, int t, double ref, int k, double cbar) {
    const env_sim_params *p = &dp->prm;
    const double price = dp->level[k], margin = price - (dp->profit ? p->unit_cost : 0);
    double imm = env_sim_expected_traffic(p, dp->t0 + t) * env_sim_purchase_prob(p, price, ref, cbar) * margin;
    double next = t + 1 < dp->horizon ? env_sim_dpc_value(dp, t + 1, k, env_sim_ref_next(p, ref, price)) : 0;
    return imm + dp->gamma * next;
}

int env_sim_dpc_best(const env_sim_dpc *dp, int t, double ref, double prev, double cbar, double *q_out) {
    int a, b, bk = -1;
    double best = -INFINITY;
    if (t < 0 || t >= dp->horizon || !env_sim_dpc_reach(dp, prev, &a, &b)) return -1;
    for (int k = a; k <= b; k++) {
        double qv = env_sim_dpc_q(dp, t, ref, k, cbar);
        if (qv > best) best = qv, bk = k;
    }
    if (q_out) *q_out = best;
    return bk;
}

/* One period of the backward induction: V_t from V_{t+1} (dp->value), with the tabled immediate
 * term imm0[j * L + k] (without the traffic) and the next reference's node nx[] and weight wx[]. */
static void dpc_period(env_sim_dpc *dp, int t, const double *imm0, const int *nx, const double *wx, double *w) {
    const int L = dp->n_levels, J = dp->n_ref;
    const double traffic = env_sim_expected_traffic(&dp->prm, dp->t0 + t);
    const double *vn = t + 1 < dp->horizon ? dp->value + (size_t)(t + 1) * L * J : NULL;
    double *v = dp->value + (size_t)t * L * J;
    for (int j = 0; j < J; j++) {
        for (int k = 0; k < L; k++) {
            size_t c = (size_t)j * L + k;
            double next = 0;
            if (vn) {
                const double *row = vn + (size_t)k * J;
                int n = nx[c];
                next = n + 1 < J ? (1 - wx[c]) * row[n] + wx[c] * row[n + 1] : row[J - 1];
            }
            w[k] = traffic * imm0[c] + dp->gamma * next;
        }
        for (int k = 0; k < L; k++) {
            double best = -INFINITY;
            for (int kk = dp->k_lo[k]; kk <= dp->k_hi[k]; kk++) best = fmax(best, w[kk]);
            v[(size_t)k * J + j] = best;
        }
    }
}

int env_sim_dpc_solve(const env_sim_params *p, const double *levels, int n_levels, double max_change, int t0,
                      double ref_now, int horizon, double gamma, int n_ref, int profit, env_sim_dpc **out) {
    *out = NULL;
    int st = env_sim_params_check(p);
    if (st) return st;
    if (horizon < 1 || n_ref < 2 || !(gamma > 0 && gamma <= 1) || !levels || n_levels < 1 || !(max_change >= 0))
        return eng_err_set(ENG_EINVAL, "env_sim_dpc_solve: need horizon >= 1, n_ref >= 2, 0 < gamma <= 1, levels, "
                                       "max_change >= 0");
    for (int k = 0; k < n_levels; k++)
        if (!(levels[k] > 0 && isfinite(levels[k])) || (k && !(levels[k] > levels[k - 1])))
            return eng_err_set(ENG_EINVAL, "env_sim_dpc_solve: the levels must be positive and ascending");
    if (p->stock > 0)
        return eng_err_set(ENG_EINVAL, "env_sim_dpc_solve: finite stock (%g) is not supported", p->stock);
    const int L = n_levels, J = n_ref;
    env_sim_dpc *dp = eng_calloc(1, sizeof *dp);
    double *imm0 = NULL, *wx = NULL, *w = NULL;
    int *nx = NULL;
    if (!dp) return ENG_ENOMEM;
    dp->horizon = horizon, dp->n_ref = J, dp->n_levels = L, dp->profit = profit ? 1 : 0, dp->gamma = gamma;
    dp->t0 = t0 > 0 ? t0 : 0, dp->max_change = max_change, dp->prm = *p;
    dp->r_lo = fmin(levels[0], p->base_price * p->ref0);
    dp->r_hi = fmax(levels[L - 1], p->base_price * p->ref0);
    if (isfinite(ref_now) && ref_now > 0) dp->r_lo = fmin(dp->r_lo, ref_now), dp->r_hi = fmax(dp->r_hi, ref_now);
    dp->level = eng_malloc((size_t)L * sizeof *dp->level);
    dp->k_lo = eng_malloc((size_t)L * sizeof *dp->k_lo);
    dp->k_hi = eng_malloc((size_t)L * sizeof *dp->k_hi);
    dp->value = eng_calloc((size_t)(horizon + 1) * L * J, sizeof *dp->value);
    imm0 = eng_malloc((size_t)L * J * sizeof *imm0);
    wx = eng_malloc((size_t)L * J * sizeof *wx);
    nx = eng_malloc((size_t)L * J * sizeof *nx);
    w = eng_malloc((size_t)L * sizeof *w);
    if (!dp->level || !dp->k_lo || !dp->k_hi || !dp->value || !imm0 || !wx || !nx || !w) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    memcpy(dp->level, levels, (size_t)L * sizeof *levels);
    for (int k = 0; k < L; k++)
        if (!env_sim_dpc_reach(dp, levels[k], &dp->k_lo[k], &dp->k_hi[k])) dp->k_lo[k] = dp->k_hi[k] = k;
    const double cbar0 = env_sim_comp_mean_price(p), h = (dp->r_hi - dp->r_lo) / (J - 1);
    for (int j = 0; j < J; j++) {
        double r = dp->r_lo + h * j;
        for (int k = 0; k < L; k++) {
            size_t c = (size_t)j * L + k;
            imm0[c] = env_sim_purchase_prob(p, levels[k], r, cbar0) * (levels[k] - (dp->profit ? p->unit_cost : 0));
            double x = h > 0 ? (env_sim_ref_next(p, r, levels[k]) - dp->r_lo) / h : 0;
            x = fmin(fmax(x, 0), J - 1);
            nx[c] = (int)x, wx[c] = x - nx[c];
        }
    }
    for (int t = horizon - 1; t >= 0; t--) dpc_period(dp, t, imm0, nx, wx, w);
    *out = dp;
    dp = NULL;
cleanup:
    env_sim_dpc_free(dp);
    free(imm0), free(wx), free(nx), free(w);
    return st;
}
