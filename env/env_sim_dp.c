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
