/* exp_nightly_decide.c - one product's decision in the nightly (see exp_nightly.h,
 * docs/nightly.md "Decide"): the gate (exp_gate.h) picks a move or holds, a held price stays the
 * incumbent exactly, the hold reasons and the failed-product hold. */
#include "exp_nightly.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "env_action.h"
#include "eng_util.h"

static const char *hold_names[EXP_HOLD_COUNT] = {
    "hold:no_significant_uplift", "hold:diverged", "hold:short_history", "hold:poor_overlap", "hold:failed",
    "hold:no_estimate",
};

const char *exp_hold_reason_name(exp_hold_reason r) {
    return (int)r >= 0 && r < EXP_HOLD_COUNT ? hold_names[r] : NULL;
}

/* ---- decision ------------------------------------------------------------------------------- */
typedef exp_nightly_decision decision;

double exp_nightly_gate_z(double level) {
    if (!(level > 0)) return 0;
    if (!(level < 1)) return INFINITY;
    double lo = 0, hi = 40, tail = 1 - level;
    for (int k = 0; k < 200; k++) { /* bisection on the normal tail: exact to double precision */
        double m = 0.5 * (lo + hi);
        if (erfc(m / sqrt(2.0)) > tail) lo = m;
        else hi = m;
    }
    return 0.5 * (lo + hi);
}

exp_gate_cfg exp_nightly_gate_cfg(const exp_nightly_cfg *cfg) {
    exp_gate_cfg g = {.mode = cfg->gate_mode, .level = cfg->gate_level, .ope_alpha = cfg->compare.ope.alpha,
                      .steps = cfg->gate_steps, .extend = cfg->gate_extend, .support_widen = cfg->gate_support_widen, .standing = cfg->gate_standing, .model_dir = cfg->gate_model_dir, .select_level = cfg->gate_select, .min_gain = cfg->gate_min_gain,
                      .cut_standing = cfg->gate_cut_standing, .lag_pooled = cfg->gate_lag_pooled, .prior = &cfg->compare.demand_prior, .plan = cfg->gate_plan, .plan_nights = cfg->gate_plan_nights, .plan_gamma = cfg->gate_plan_gamma, .plan_paths = cfg->gate_plan_paths, .plan_model = cfg->gate_plan_model, .reward_kind = (int)cfg->compare.reward.kind,
                      .guard = cfg->compare.guard, .grid = cfg->compare.grid};
    return g;
}

/* A held price is the incumbent, exactly (the same double, so the same decimal is pushed), unless
 * a hard bound (min/max price, change limit, margin floor) moved it: rounding to a whole cent or
 * the 0.01 floor alone never changes a held price, nor does a limit the guard dropped as
 * conflicting (a change limit around a sub-cent incumbent holds no whole cent: the incumbent
 * itself is no change at all). */
static void hold_exact(decision *d) {
    if (d->guard & ~(uint32_t)(ENV_GR_ROUNDED | ENV_GR_ROUND_SKIPPED | ENV_GR_MIN_TICK | ENV_GR_CONFLICT |
                               ENV_GR_DROPPED_CHANGE | ENV_GR_DROPPED_MARGIN))
        return;
    d->price = d->incumbent;
    d->guard = 0;
}

int exp_nightly_decide(const exp_nightly_cfg *cfg, const db_history *h, const exp_product_result *pr, decision *d) {
    memset(d, 0, sizeof *d);
    d->hold = EXP_HOLD_NO_UPLIFT;
    d->agent = EXP_AGENT_HISTORY;
    d->uplift = d->lo = d->hi = NAN;
    d->per_unit = d->mean_period = d->plausible = NAN;
    d->incumbent = pr->incumbent_price;
    int st;
    if (cfg->fault_product && pr->product_id && !strcmp(cfg->fault_product, pr->product_id))
        return eng_err_set(ENG_EINVAL, "injected failure (test hook fault_product)");
    if (pr->index < 0 || pr->index >= h->n_products)
        return eng_err_set(ENG_EINVAL, "product index %d outside the history", pr->index);
    if (!(isfinite(d->incumbent) && d->incumbent > 0))
        return eng_err_set(ENG_EINVAL, "no valid incumbent price");
    if ((st = exp_nightly_sense_scale(h, pr->index, d->incumbent, (int)cfg->compare.reward.kind, &d->per_unit,
                                      &d->mean_period, &d->plausible)))
        return st;
    exp_gate_cfg gc = exp_nightly_gate_cfg(cfg);
    exp_gate_out go;
    int planned = 0; /* the gate's planning candidate decided (exp_gate_out planned) */
    if (pr->status == EXP_FAILED) {
        d->failed = 1;
        d->hold = EXP_HOLD_FAILED;
        snprintf(d->note, sizeof d->note, "%s", pr->note[0] ? pr->note : "comparison failed");
    } else if (pr->status == EXP_SKIP_SHORT) {
        d->hold = EXP_HOLD_SHORT;
    } else if (pr->immediate[EXP_AGENT_HISTORY].n <= 0) {
        d->hold = EXP_HOLD_NO_ESTIMATE; /* no evaluation rows: nothing to compare on */
    } else {
        /* the gate (exp_gate.h): the candidate with the highest lower bound of its uplift over
         * the incumbent (OPE shrunk uplift and/or the product's demand model), deployed when
         * that bound is above 0 */
        exp_gate_fit fit;
        const int lag_test = !(gc.cut_standing == 4 && gc.lag_pooled); /* a pooled reference effect: no lag test */
        if (gc.mode != EXP_GATE_OPE && (st = exp_gate_fit_lagtest(h, pr->index, d->incumbent, gc.reward_kind, gc.standing,
                                                              lag_test, &cfg->compare.demand_prior, &fit)))
            return st;
        if ((st = exp_gate_pick(&gc, h, pr, gc.mode != EXP_GATE_OPE ? &fit : NULL, &go))) return st;
        planned = go.planned;
        if (go.deploy) {
            d->hold = -1;
            d->agent = go.agent;
            d->frac = go.frac;
            d->by_model = go.by_model;
            /* the model's uplift is money per period; the decision keeps reward units */
            double k = go.by_model ? (d->per_unit > 0 ? 1 / d->per_unit : NAN) : 1;
            d->uplift = go.uplift * k, d->lo = go.lo * k, d->hi = go.hi * k;
        } else if (go.n_learn_ok == 0) d->hold = EXP_HOLD_DIVERGED;
        else if (go.n_usable == 0 && go.n_unusable > 0) d->hold = EXP_HOLD_OVERLAP;
        else d->hold = EXP_HOLD_NO_UPLIFT;
    }
    if (d->hold >= 0) { /* a held price keeps the incumbent unless a hard bound moves it */
        env_guard_cfg g_cfg = cfg->compare.guard;
        g_cfg.n_endings = 0;
        env_guard_bounds b = env_guard_bounds_band(h, pr->index, d->incumbent, &cfg->compare.grid);
        if ((st = env_guard_apply(&g_cfg, &b, d->incumbent, &d->price, &d->guard, NULL, NULL))) return st;
        hold_exact(d);
    } else {
        d->price = go.price;
        d->guard = go.guard;
    }
    if (!(isfinite(d->price) && d->price > 0)) /* never counted as "same price" by a false comparison */
        return eng_err_set(ENG_ENUM, "guarded price %g is not a positive number", d->price);
    /* what the product's own history says about the new price and the uplift, in money */
    d->seen = fabs(d->price - d->incumbent) >= 0.005 ? exp_nightly_price_seen(h, pr->index, d->price) : EXP_SEEN_UNCHANGED;
    if (d->hold < 0 && isfinite(d->plausible) && d->per_unit > 0 && d->uplift * d->per_unit > d->plausible) {
        double cap = d->plausible / d->per_unit; /* no more than the history makes plausible */
        d->uplift = cap;
        if (d->lo > cap) d->lo = cap;
        d->capped = 1;
    }
    char g[128] = "";
    env_guard_reason_str(d->guard, g, sizeof g);
    char head[64];
    if (d->hold < 0) snprintf(head, sizeof head, "deploy:%s", exp_agent_name(d->agent));
    else snprintf(head, sizeof head, "%s", hold_names[d->hold]);
    /* stated reasons a pricing team should check: the uplift claims more than the product's whole
     * mean period (even after the cap), the new price was charged only in promotion periods */
    snprintf(d->reason, sizeof d->reason, "%s%s%s%s%s%s%s%s", head,
             d->hold < 0 && d->frac < 0.999 ? "|partial" : d->hold < 0 && d->frac > 1.001 ? "|extended" : "",
             planned == 1 && d->hold < 0 ? "|planned" : planned == 2 && d->hold >= 0 ? "|plan_held" : "", g[0] ? "|" : "",
             g, d->capped ? "|uplift_capped" : "", exp_nightly_above_mean(d) ? "|uplift_above_mean" : "",
             d->hold < 0 && d->seen == EXP_SEEN_PROMO_ONLY ? "|promo_only_price" : "");
    return ENG_OK;
}

/* A product whose decision failed: held at its guarded incumbent price when there is one
 * (NaN price otherwise), reason "hold:failed", the error message in d->note. */
void exp_nightly_hold_failed(const exp_nightly_cfg *cfg, const db_history *h, const exp_product_result *p, decision *d) {
    char why[256];
    snprintf(why, sizeof why, "%s", eng_err_msg());
    memset(d, 0, sizeof *d);
    d->failed = 1;
    d->hold = EXP_HOLD_FAILED;
    d->incumbent = p->incumbent_price;
    d->uplift = d->lo = d->hi = NAN;
    d->per_unit = d->mean_period = d->plausible = NAN;
    snprintf(d->note, sizeof d->note, "%.180s", why);
    d->price = NAN;
    if (isfinite(d->incumbent) && d->incumbent > 0 && p->index >= 0 && p->index < h->n_products) {
        env_guard_cfg g_cfg = cfg->compare.guard;
        g_cfg.n_endings = 0;
        env_guard_bounds b = env_guard_bounds_of(h, p->index, d->incumbent);
        if (env_guard_apply(&g_cfg, &b, d->incumbent, &d->price, &d->guard, NULL, NULL)) d->price = NAN;
        else hold_exact(d);
    }
    char g[128] = "";
    env_guard_reason_str(d->guard, g, sizeof g);
    snprintf(d->reason, sizeof d->reason, "hold:failed%s%s", g[0] ? "|" : "", g);
}

