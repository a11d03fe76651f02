/* exp_compare_best.c - the agents' views (the DQN's and DDPG's demand-model settings:
 * compare.demand_pool / agent_best and DDPG's own, docs/compare.md "A demand model per agent")
 * and the best-price slots of their states (feat_agent.h, docs/compare.md "The model's best
 * price as a state feature (q12best)"): the state's width and the price range each product's
 * demand model seeks its best price in; whether the model rows and the DQN's uplift targets are on. */
#include <math.h>

#include "exp_compare_int.h"

int cmp_model_rows_on(const exp_compare_cfg *cfg) {
    const env_reward_kind rk = cfg->reward.kind;
    return cfg->agent_state && cfg->shared && cfg->dyna > 0 && (rk == ENV_REWARD_RCR || rk == ENV_REWARD_DRCR);
}

int cmp_dqn_uplift_on(const exp_compare_cfg *cfg) {
    return cmp_model_rows_on(cfg) && cfg->dqn_uplift && cfg->dqn.gamma == 0;
}

int cmp_agent_width(int best) { return best ? FEAT_AGENT_N + FEAT_AGENT_BEST_N : FEAT_AGENT_N; }

void cmp_view_split(cmp_ctx *c) {
    const exp_compare_cfg *cfg = c->cfg;
    cmp_aview *q = &c->av[0], *d = &c->av[1];
    q->demand_pool = cfg->demand_pool, q->best = cfg->agent_state && cfg->agent_best;
    d->demand_pool = cfg->ddpg_demand_pool >= 0 ? cfg->ddpg_demand_pool : cfg->demand_pool;
    d->best = cfg->agent_state && (cfg->ddpg_agent_best >= 0 ? cfg->ddpg_agent_best : cfg->agent_best);
    /* the agents' part of demand_pool: 0 and 1 both mean no prior for the agents' models */
    const int pq = q->demand_pool >= 2 ? q->demand_pool : 0, pd = d->demand_pool >= 2 ? d->demand_pool : 0;
    c->split = cfg->agent_state && (pq != pd || q->best != d->best);
    q->SA = cfg->agent_state ? cmp_agent_width(q->best) : c->F;
    d->SA = cfg->agent_state ? cmp_agent_width(d->best) : c->F;
}

void cmp_agent_best_setup(const cmp_ctx *c, const cmp_aview *v, int p) {
    const exp_compare_cfg *cfg = c->cfg;
    const db_history *h = c->h;
    feat_agent_prod *pp = &v->ap[p];
    pp->best = v->best ? 1 : 0;
    pp->blo = pp->bhi = pp->bchg = pp->bcost = NAN;
    if (!pp->best) return;
    /* a profit reward: the hint maximises the margin rate */
    if (env_reward_is_profit(cfg->reward.kind) && isfinite(h->unit_cost[p]) && h->unit_cost[p] > 0)
        pp->bcost = h->unit_cost[p];
    double lo = 0.01, hi = INFINITY;
    if (isfinite(h->min_price[p])) lo = fmax(lo, h->min_price[p]);
    if (isfinite(h->max_price[p])) hi = fmin(hi, h->max_price[p]);
    if (isfinite(h->unit_cost[p]) && h->unit_cost[p] > 0) lo = fmax(lo, h->unit_cost[p] / (1.0 - cfg->guard.min_margin));
    const double ref = c->refp[p];
    if (ref > 0) {
        /* the wider of the two agents' bands, and of their supports around the logged ratios */
        const double band = fmax(cfg->grid.band, cmp_ddpg_band(cfg)), step = 2.0 * cfg->grid.band / (c->K - 1);
        lo = fmax(lo, ref * (1.0 - band)), hi = fmin(hi, ref * (1.0 + band));
        const int ws = cmp_ddpg_steps(cfg) > cfg->support_steps ? cmp_ddpg_steps(cfg) : cfg->support_steps;
        if (cfg->dqn_support && cfg->ddpg_support && isfinite(c->lo_ratio[p]) && isfinite(c->hi_ratio[p]))
            lo = fmax(lo, ref * (c->lo_ratio[p] - ws * step)), hi = fmin(hi, ref * (c->hi_ratio[p] + ws * step));
    }
    if (lo <= hi) pp->blo = lo, pp->bhi = hi;
    const double mc = isfinite(h->max_change_pct[p]) ? h->max_change_pct[p] : cfg->guard.default_max_change_pct;
    if (isfinite(mc) && mc >= 0 && mc < 100) pp->bchg = mc / 100.0;
}
