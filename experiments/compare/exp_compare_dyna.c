/* exp_compare_dyna.c - the shared networks' model-based rows (compare.dyna; docs/compare.md,
 * "Learning from a model"): each agent's replay gets transitions valued by its own view's
 * demand model (exp_compare_int.h, cmp_aview), and the real rows' rewards blended towards that
 * model (compare.dyna_real). */
#include <math.h>
#include <string.h>

#include "eng_rng.h"
#include "exp_compare_int.h"

long cmp_dyna_rows(const cmp_ctx *c, long n) {
    const long d = c->cfg->dyna, cap = c->cfg->dyna_max;
    return n > 0 && d > cap / n ? cap : n * d;
}

/* Model-based transitions (compare.dyna, the pooled / shared group only): for each training
 * row of a product whose model can value it (the view's dyb finite), dyna transitions (fewer, spread
 * evenly over each product's rows, when rows x dyna would exceed dyna_max; rows: the group's,
 * or g->rows_total, every shard's, for the shared networks' shards) with the row's
 * state and a price drawn uniformly inside the support the agent may choose from (the logged
 * levels' range +- support_steps; for DDPG the logged ratio range +- ddpg_support_steps steps
 * (cmp_ddpg_steps: support_steps unless set), in
 * the band), rewarded with the model's rate at that price minus dyna_kappa standard errors of
 * its extrapolation, plus the row's base (the rate the reward compares with), on the row's
 * reward scale; the next state is the logged one, or (compare.dyna_carry) the logged one carrying
 * the drawn price and the model's rate (feat_agent_state_carry), so that a discount (dqn.gamma,
 * ddpg.gamma > 0) sees what the price does to the next period's state (an agent at gamma 0 gets
 * the logged one: it never reads it).  dyna_horizon > 1: the
 * model's rate is its mean over that many nights of the price held (feat_agent_model_rate_held);
 * dyna_cut_standing: a cut below the smoothed past price at its standing rate (feat_agent_model_rate_cut).  Seeded by compare.seed
 * and the product's catalogue index, one stream per product, so the draws do not depend on
 * which other products share the group (the shared networks' shards, docs/mpi.md: one process
 * with S shards and S ranks draw the same).
 * Each agent's rows are valued by its own view's demand model (c->av[0] the DQN's, c->av[1]
 * DDPG's; the same without a split); the draws are the same either way.
 * Returns 0 or the agents' failure. */
int cmp_push_model_rows(cmp_ctx *c, cmp_group *g) {
    const exp_compare_cfg *cfg = c->cfg;
    const env_transitions *tr = c->tr;
    const int K = c->K, w = cfg->support_steps;
    const double step = 2.0 * cfg->grid.band / (K - 1), kap = cfg->dyna_kappa;
    const int H = cfg->dyna_horizon, Hc = H > 1 || cfg->dyna_cut_standing; /* the value is not one night's */
    double (*const value)(const feat_agent_prod *, double, const feat_demand_ctx *, int, double *) =
        cfg->dyna_cut_standing ? feat_agent_model_rate_cut : feat_agent_model_rate_held;
    const int wd = cmp_ddpg_steps(cfg); /* DDPG's own width (compare.ddpg_support_steps) and band */
    const double dband = cmp_ddpg_band(cfg);
    eng_rng rng;
    float cs2[FEAT_AGENT_NMAX]; /* a transition's next state carrying its price (compare.dyna_carry) */
    /* a next state is read only through a discount: at gamma 0 its value is multiplied by 0, so the
     * carried state (a best-price search per row) is not built and the logged one is pushed */
    const int carry_q = cfg->dyna_carry && cfg->dqn.gamma > 0, carry_d = cfg->dyna_carry && cfg->ddpg.gamma > 0;
    long n = 0, rows = g->rows_total, seen = 0;
    int rc;
    for (int i = 0; !g->rows_total && i < g->n; i++)
        for (size_t r = c->off[g->prod[i]]; r < c->off[g->prod[i] + 1]; r++)
            rows += cmp_is_learn(c, r) && !c->val[r];
    const double per = rows > 0 ? (double)cmp_dyna_rows(c, rows) / (double)rows : 0; /* transitions per row */
    for (int i = 0; i < g->n; i++) {
        const int p = g->prod[i], s = cmp_slot_of(g, i);
        const int *cnt = c->lvl_count + (size_t)p * K;
        eng_rng_seed(&rng, eng_seed_derive(eng_seed_derive(cfg->seed, 0xD7A1u), (uint64_t)p));
        seen = 0; /* the spreading, too, per product */
        int lo = K, hi = -1;
        for (int k = 0; k < K; k++)
            if (cnt[k] > 0) lo = k < lo ? k : lo, hi = k;
        if (hi < 0 || !isfinite(c->lo_ratio[p]) || !(c->refp[p] > 0)) continue;
        lo = lo - w < 0 ? 0 : lo - w, hi = hi + w > K - 1 ? K - 1 : hi + w;
        double rlo = fmax(c->lo_ratio[p] - wd * step, 1.0 - dband);
        double rhi = fmin(c->hi_ratio[p] + wd * step, 1.0 + dband);
        const float sc = c->rscale[p];
        const cmp_aview *aq = &c->av[0], *ad = &c->av[1];
        const feat_agent_prod *pq = &aq->ap[p], *pd = &ad->ap[p];
        for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
            const int okq = isfinite(aq->dyb[r]), okd = isfinite(ad->dyb[r]);
            if (!cmp_is_learn(c, r) || c->val[r] || !(okq || okd)) continue;
            const long nm = (long)floor((double)(seen + 1) * per + 1e-9) - (long)floor((double)seen * per + 1e-9);
            seen++;
            const feat_demand_ctx cq = {aq->dyc[2 * r], aq->dyc[2 * r + 1]}, cd = {ad->dyc[2 * r], ad->dyc[2 * r + 1]};
            for (long m = 0; m < nm; m++) {
                int k = lo + (int)(eng_rng_uniform(&rng) * (hi - lo + 1));
                if (k > hi) k = hi;
                const double pk = c->refp[p] * env_grid_ratio(&cfg->grid, k);
                double se = NAN, v = okq ? value(pq, pk, &cq, H, &se) : NAN;
                double x = rlo + (rhi - rlo) * eng_rng_uniform(&rng), se2 = NAN;
                double v2 = okd ? value(pd, c->refp[p] * x, &cd, H, &se2) : NAN;
                /* the DQN's reward: the model's rate on the agents' scale, or its uplift over the
                 * incumbent's (compare.dqn_uplift; NaN there: no row) */
                const float rw = !(isfinite(v) && isfinite(se)) ? NAN
                                 : aq->um ? (float)cmp_dqn_uplift(c, r, v - kap * se)
                                          : (float)((v - kap * se + aq->dyb[r]) / sc);
                if (isfinite(rw)) {
                    const float *s2 = cmp_row_next(c, 0, r);
                    if (carry_q) /* the next period's own rate, not the H-night mean */
                        feat_agent_state_carry(s2, pq, tr->price[r], pk, Hc ? feat_agent_model_rate_at(pq, pk, &cq, NULL) : v, cs2);
                    if ((rc = agt_dqn_push(g->dqn, s, cmp_row_state(c, 0, r), k, rw, carry_q ? cs2 : s2, tr->done[r])))
                        return rc;
                    n++;
                }
                if (isfinite(v2) && isfinite(se2)) {
                    const float *s2 = cmp_row_next(c, 1, r);
                    float rw = (float)((v2 - kap * se2 + ad->dyb[r]) / sc);
                    if (carry_d)
                        feat_agent_state_carry(s2, pd, tr->price[r], c->refp[p] * x,
                                               Hc ? feat_agent_model_rate_at(pd, c->refp[p] * x, &cd, NULL) : v2, cs2);
                    const float *nx = carry_d ? cs2 : s2;
                    if ((rc = agt_ddpg_push(g->ddpg, s, cmp_row_state(c, 1, r), (float)x, rw, nx, tr->done[r]))) return rc;
                }
            }
        }
    }
    ENG_INFO("compare: %s: %ld model-based transitions (dyna %d, kappa %g)", g->name, n, cfg->dyna, kap);
    return ENG_OK;
}

double cmp_real_reward(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, double reward,
                       double base, double lam) {
    if (!(lam > 0) || !isfinite(base) || !isfinite(reward)) return reward;
    const double m = feat_agent_model_rate_at(pp, price, ctx, NULL);
    return isfinite(m) ? reward - lam * (reward - base - m) : reward;
}

float cmp_real_row_reward(const cmp_ctx *c, int which, int p, size_t r) {
    const cmp_aview *a = &c->av[which ? 1 : 0];
    double rw = c->tr->reward[r];
    if (a->dyb && c->cfg->dyna_real > 0) {
        const feat_demand_ctx ctx = {a->dyc[2 * r], a->dyc[2 * r + 1]};
        rw = cmp_real_reward(&a->ap[p], c->tr->price[r], &ctx, rw, a->dyb[r], c->cfg->dyna_real);
    }
    if (!which && a->um) return (float)cmp_dqn_uplift(c, r, rw - a->dyb[r]); /* compare.dqn_uplift */
    return (float)(rw / c->rscale[p]);
}
