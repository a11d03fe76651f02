/* exp_compare_support.c - DDPG's support and band (docs/compare.md, "Agents that learn to price"
 * and "Context descriptors (q12desc)"): the width of its clip around the logged ratio range and
 * the band its actor's ratio, its model rows and its guarded price live in
 * (compare.ddpg_support_steps, 6 by default; compare.ddpg_band, the grid's by default). */
#include <math.h>

#include "exp_compare_int.h"

double cmp_ddpg_band(const exp_compare_cfg *cfg) { return cfg->ddpg_band > 0 ? cfg->ddpg_band : cfg->grid.band; }

env_grid cmp_ddpg_grid(const exp_compare_cfg *cfg) {
    env_grid g = cfg->grid;
    g.band = cmp_ddpg_band(cfg);
    return g;
}

env_guard_bounds cmp_agent_bounds(const cmp_ctx *c, int p, double inc, int ddpg) {
    const env_grid dg = cmp_ddpg_grid(c->cfg);
    return env_guard_bounds_band(c->h, p, inc, ddpg ? &dg : &c->cfg->grid);
}

int cmp_ddpg_steps(const exp_compare_cfg *cfg) {
    return cfg->ddpg_support_steps >= 0 ? cfg->ddpg_support_steps : cfg->support_steps;
}

float cmp_ddpg_clip(const cmp_ctx *c, int p, float ratio) {
    if (!c->cfg->ddpg_support || !isfinite(c->lo_ratio[p])) return ratio;
    const float step = (float)(2.0 * c->cfg->grid.band / (c->K - 1)) * (float)cmp_ddpg_steps(c->cfg);
    const float lo = c->lo_ratio[p] - step, hi = c->hi_ratio[p] + step;
    return ratio < lo ? lo : ratio > hi ? hi : ratio;
}

