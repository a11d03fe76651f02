/* exp_gate.c - the nightly's deploy gate: the product's own demand model (promotions, the
 * previous price and competitors as state; features/feat_demand.h), and the choice among the agents' moves
 * (exp_gate.h). */
#include "exp_gate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "env_reward.h"
#include "exp_nightly.h"

#define GATE_MIN_ROWS 8
#define GATE_SUPPORT_TOL 0.0125 /* prices within this share count as charged (exp_nightly_sense.c) */

static const char *const mode_names[EXP_GATE_N_MODES] = {"ope", "model", "both"};

const char *exp_gate_mode_name(int mode) { return mode >= 0 && mode < EXP_GATE_N_MODES ? mode_names[mode] : NULL; }

/* The fitted demand model's rate (revenue per visitor, or per period) at price c in a normal
 * period now, with the price slope shifted by k robust standard errors of f->slope. */
static double gate_rate(const exp_gate_fit *f, double c, double k) {
    feat_demand_ctx ctx = f->now;
    if (f->cut_standing == 2 && f->has_cut && c < f->dm.ref * (1 - 1e-9)) { /* a cut: the standing fit's */
        ctx.lag = log(c / f->cut_dm.ref);
        return feat_demand_rate(&f->cut_dm, c, &ctx, k * f->cut_dse, NULL);
    }
    if (f->horizon >= 2 && f->cut_standing == 1 && c < f->dm.ref * (1 - 1e-9)) { /* a cut: standing, no transitional lift */
        ctx.lag = log(c / f->dm.ref);
        return feat_demand_rate(&f->dm, c, &ctx, k * f->slope_se / f->sfac, NULL);
    }
    if (f->horizon >= 2) { /* the mean over the nights, the smoothed price moving toward c */
        double s = 0, ema = f->ema_now;
        for (int n = 0; n < f->horizon; n++) {
            ctx.lag = log(ema / f->dm.ref);
            s += feat_demand_rate(&f->dm, c, &ctx, k * f->slope_se / f->sfac, NULL);
            ema = f->lambda * ema + (1 - f->lambda) * c;
        }
        return s / f->horizon;
    }
    if (f->standing) ctx.lag = log(c / f->dm.ref); /* a standing price is also the previous price */
    return feat_demand_rate(&f->dm, c, &ctx, k * f->slope_se / f->sfac, NULL);
}

/* exp_gate_fit_product's body; no_lag 1: the lag column left out (every row's lag unknown). */
static int gate_fit_product(const db_history *h, int p, double incumbent, int reward_kind, const feat_demand_prior *prior,
                            int no_lag, exp_gate_fit *f) {
    memset(f, 0, sizeof *f);
    f->slope = f->slope_se = f->base = f->sup_lo = f->sup_hi = NAN;
    f->cost = env_reward_is_profit((env_reward_kind)reward_kind) && isfinite(h->unit_cost[p]) ? h->unit_cost[p] : NAN;
    if (!(incumbent > 0)) return ENG_OK;
    const int T = h->n_periods;
    for (int t = 0; t < T; t++) { /* the normal-period support */
        size_t c = (size_t)p * T + t;
        if (!h->present[c] || !(h->price[c] > 0) || (h->promo && h->promo[c])) continue;
        if (!(h->price[c] >= f->sup_lo)) f->sup_lo = h->price[c];
        if (!(h->price[c] <= f->sup_hi)) f->sup_hi = h->price[c];
    }
    feat_demand_row *rows = eng_malloc((size_t)(T > 0 ? T : 1) * sizeof *rows);
    if (!rows) return ENG_ENOMEM;
    size_t n = 0;
    feat_demand_rows_history(h, p, incumbent, incumbent, rows, &n, &f->now);
    for (size_t i = 0; no_lag && i < n; i++) rows[i].lag = NAN; /* a column of unknowns does not enter */
    double xs = 0, xx = 0; /* a slope needs the product's own price variation (not the prior) */
    for (size_t i = 0; i < n; i++) xs += rows[i].price / incumbent, xx += pow(rows[i].price / incumbent, 2);
    int st = n >= GATE_MIN_ROWS && xx / n - pow(xs / n, 2) > 1e-8 ? feat_demand_fit_prior(&f->dm, rows, n, incumbent, -1, prior) : 0;
    free(rows);
    if (st || !f->dm.ok) return st;
    f->n = f->dm.n;
    f->n_cols = 0;
    for (int j = 0; j < FEAT_DEMAND_K; j++) f->n_cols += f->dm.used >> j & 1u;
    /* the slope as d log E[units] / d (price / incumbent) at the incumbent: b1 g'(1) (1 - q) */
    const double r0 = feat_demand_rate(&f->dm, incumbent, &f->now, 0, NULL);
    f->sfac = f->dm.logit ? 1 - r0 / incumbent : 1.0;
    f->slope = f->dm.beta[FEAT_DEMAND_PRICE] * f->sfac;
    f->slope_se = feat_demand_slope_se(&f->dm, 1) * f->sfac;
    /* money per period at the incumbent in a normal period now */
    double margin = isfinite(f->cost) ? incumbent - f->cost : incumbent;
    f->base = r0 / incumbent * f->dm.traffic_mean * margin;
    f->ok = isfinite(f->slope) && isfinite(f->slope_se) && f->slope_se > 0 && f->sfac > 0 && isfinite(f->base);
    return ENG_OK;
}

int exp_gate_fit_product(const db_history *h, int p, double incumbent, int reward_kind, const feat_demand_prior *prior,
                         exp_gate_fit *f) {
    return gate_fit_product(h, p, incumbent, reward_kind, prior, 0, f);
}

int exp_gate_fit_product_nolag(const db_history *h, int p, double incumbent, int reward_kind,
                               const feat_demand_prior *prior, exp_gate_fit *f) {
    return gate_fit_product(h, p, incumbent, reward_kind, prior, 1, f);
}

double exp_gate_rel(const exp_gate_fit *f, double incumbent, double c, double k) {
    if (!f->ok || !(incumbent > 0) || !(c > 0)) return NAN;
    double m = isfinite(f->cost) ? (c - f->cost) / (incumbent - f->cost) : c / incumbent;
    if (!(m > 0) || !(incumbent - (isfinite(f->cost) ? f->cost : 0) > 0)) return NAN;
    /* units ratio under the model at the shifted slope, times the margin ratio */
    const double rc = gate_rate(f, c, k), ri = gate_rate(f, incumbent, k);
    return m * (rc / c) / (ri / incumbent) - 1;
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
    if (!(r_lo > fmax(cfg->min_gain, 0) && score > *best)) return ENG_OK;
    *best = score;
    double pa = pr->price[a];
    o->deploy = 1, o->agent = a, o->by_model = 1;
    /* the agent stood still or pointed the other way: a model move */
    o->frac = fabs(pa - inc) >= 0.005 && (gp - inc) * (pa - inc) > 0 ? (gp - inc) / (pa - inc) : INFINITY;
    o->uplift = exp_gate_rel(fit, inc, gp, 0) * fit->base;
    o->lo = r_lo * fit->base, o->hi = exp_gate_rel(fit, inc, gp, z * dir) * fit->base;
    o->price = gp;
    return ENG_OK;
}

/* The demand model's direction at the incumbent: +1 / -1 where a 1% move that way gains under
 * the model's estimate, 0 when neither does. */
static int model_dir_of(const exp_gate_fit *fit, double inc) {
    double up = exp_gate_rel(fit, inc, inc * 1.01, 0), down = exp_gate_rel(fit, inc, inc * 0.99, 0);
    if (!(up > 0 || down > 0)) return 0;
    return up > down ? 1 : -1;
}

/* 1 when product pr's incumbent lies within one grid step of the agents' price band's edge on
 * side dir (+1 the top, -1 the bottom) or beyond it: the agents cannot recommend a price further
 * that way, so their pointing back carries no evidence about that side.  0 without a band. */
static int at_band_edge(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr, int dir) {
    env_guard_bounds b = env_guard_bounds_band(h, pr->index, pr->incumbent_price, &cfg->grid);
    if (!(b.band_lo > 0 && b.band_hi > b.band_lo) || cfg->grid.K < 2) return 0;
    const double step = (b.band_hi - b.band_lo) / (cfg->grid.K - 1), inc = pr->incumbent_price;
    return dir > 0 ? inc >= b.band_hi - step - 1e-9 : inc <= b.band_lo + step + 1e-9;
}

/* The points k / 8 (k = 8..1) of the way from the incumbent to the guardrails' edge (bounds,
 * change limit, margin floor: never the agents' band) on side dir, each tried by model_try for
 * agent a.  0 or ENG_EINVAL. */
static int model_extend(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr,
                        const exp_gate_fit *fit, exp_agent a, double dir, double z, double zs, double *best_lo,
                        exp_gate_out *o) {
    const double inc = pr->incumbent_price;
    env_guard_bounds b = env_guard_bounds_band(h, pr->index, inc, &cfg->grid);
    env_guard_cfg g = cfg->guard;
    double tmp, lo, hi;
    int st = env_guard_apply(&g, &b, inc, &tmp, NULL, &lo, &hi);
    if (st) return st;
    double edge = dir > 0 ? hi : lo;
    for (int k = 8; k >= 1; k--)
        if ((st = model_try(cfg, h, pr, fit, a, inc + k / 8.0 * (edge - inc), z, zs, best_lo, o))) return st;
    return ENG_OK;
}

/* The moves tried for agent a: k / steps of its move (k = steps..1), and with cfg->extend the
 * points k / 8 of the way from the incumbent to the guardrails' edge in its direction (the
 * model sets the step size, the agent the direction).  model_dir 1: an agent at the incumbent
 * takes the demand model's direction; model_dir 2: also an agent that points the other way (its
 * price band and its history pull it back) gets the extension in the model's direction, the
 * model's interval deciding; model_dir 3: as 2, only when the incumbent stands at (one grid step
 * of) the band's edge on the model's side or beyond it.  0 or ENG_EINVAL. */
static int model_moves(const exp_gate_cfg *cfg, const db_history *h, const exp_product_result *pr,
                       const exp_gate_fit *fit, exp_agent a, double z, double *best_lo, exp_gate_out *o) {
    const double zs = cfg->select_level > 0 ? exp_nightly_gate_z(cfg->select_level) : cfg->select_level == 0 ? 0 : z;
    const double inc = pr->incumbent_price, pa = pr->price[a];
    const int steps = cfg->steps > 1 ? cfg->steps : 1;
    int st;
    for (int s = steps; s >= 1; s--)
        if ((st = model_try(cfg, h, pr, fit, a, inc + (double)s / steps * (pa - inc), z, zs, best_lo, o))) return st;
    if (!cfg->extend) return ENG_OK;
    double dir = fabs(pa - inc) < 0.005 ? 0 : pa > inc ? 1 : -1;
    int mdir = cfg->model_dir ? model_dir_of(fit, inc) : 0;
    if (dir != 0 && (st = model_extend(cfg, h, pr, fit, a, dir, z, zs, best_lo, o))) return st;
    /* the model's own direction: for an agent standing still (model_dir 1), or pointing the other
     * way (model_dir 2) */
    if (mdir != 0 && (dir == 0 || (dir != mdir && (cfg->model_dir == 2 || (cfg->model_dir == 3 && at_band_edge(cfg, h, pr, mdir))))))
        return model_extend(cfg, h, pr, fit, a, mdir, z, zs, best_lo, o);
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
    exp_gate_fit fc; /* the fit with the gate's cut valuation (cfg->cut_standing) */
    if (fit_ok && (cfg->cut_standing == 1 || cfg->cut_standing == 4 || (cfg->cut_standing == 3 && !cfg->lag_pooled)) &&
        fit->horizon >= 2) {
        fc = *fit;
        fc.cut_standing = 1;
        fit = &fc;
    } else if (fit_ok && (cfg->cut_standing == 2 || (cfg->cut_standing == 3 && cfg->lag_pooled)) && cfg->standing >= 2) {
        fc = *fit;
        int st = exp_gate_cut_fit(h, pr->index, pr->incumbent_price, cfg->reward_kind, cfg->prior, &fc);
        if (st) return st;
        fit = &fc;
    }
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
    if (cfg->plan > 0 && model && fit_ok) { /* the planning candidate (exp_gate_plan.c) */
        int st = exp_gate_plan_pick(cfg, h, pr, fit, z, o);
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
