/* exp_nightly_thompson.c - the Thompson (posterior-sampling) support of logged exploration
 * (exp_explore_thompson in exp_nightly.h; docs/nightly.md, "Logged exploration"). */
#include <math.h>
#include <stdlib.h>

#include "eng_hash.h"
#include "eng_util.h"
#include "env_action.h"
#include "exp_gate.h"
#include "exp_nightly.h"

/* 1 when product p's demand fit around inc shows carry-over: the lag column's coefficient of
 * the standing fit (exp_gate_fit_ex, standing 1: the memory chosen by the likelihood) at least
 * z = explore.carryover_z robust standard errors from 0 (z 2: the gate horizon's test, read from
 * fit when it was made with a horizon).  0 on any failure (no fit: no carry-over shown). */
static int thm_carryover(const exp_nightly_cfg *cfg, const db_history *h, int p, double inc, const exp_gate_fit *fit) {
    const double z = cfg->explore.carryover_z > 0 ? (double)cfg->explore.carryover_z : 2.0;
    if (cfg->gate_standing >= 2 && z == 2.0) return fit->horizon >= 2;
    exp_gate_fit f;
    if (exp_gate_fit_ex(h, p, inc, (int)cfg->compare.reward.kind, 1, &cfg->compare.demand_prior, &f)) {
        eng_err_clear();
        return 0;
    }
    return f.ok && feat_demand_lag_carries(&f.dm, z);
}

/* no_lag: *fit replaced by product p's fit without the lag column when that one is usable (else
 * kept).  0, or ENG_ENOMEM (the error left set). */
static int thm_fit_nolag(const exp_nightly_cfg *cfg, const db_history *h, int p, double inc, exp_gate_fit *fit) {
    exp_gate_fit f;
    const int st = exp_gate_fit_product_nolag(h, p, inc, (int)cfg->compare.reward.kind, &cfg->compare.demand_prior, &f);
    if (st) return st;
    if (f.ok && isfinite(f.slope) && isfinite(f.slope_se) && f.slope_se > 0) *fit = f;
    return 0;
}

/* P(the sampled optimum lies below price m): b < -i / (m - c) when m > c, else 0. */
static double thm_below(double m, double inc, double c0, double b, double se) {
    if (!(m > c0)) return 0.0;
    double beta = -inc / (m - c0);
    return 0.5 * erfc(-(beta - b) / (se * sqrt(2.0)));
}

int exp_explore_thompson(const exp_nightly_cfg *cfg, const db_history *h, int p, const exp_nightly_decision *d,
                         double *w0, double *nb, double *w, int *carry) {
    *w0 = 1.0;
    const double inc = d->incumbent, p0 = d->price;
    if (!(inc > 0 && p0 > 0)) return 0;
    exp_gate_fit fit;
    if (carry) *carry = -1;
    if (exp_gate_fit_ex(h, p, inc, (int)cfg->compare.reward.kind, cfg->gate_standing, &cfg->compare.demand_prior, &fit) || !fit.ok ||
        !(isfinite(fit.slope) && isfinite(fit.slope_se) && fit.slope_se > 0)) {
        eng_err_clear();
        return 0;
    }
    if (cfg->explore.skip_carryover || cfg->explore.carryover_share > 0 || cfg->explore.no_lag) {
        const int co = thm_carryover(cfg, h, p, inc, &fit);
        if (carry && (cfg->explore.skip_carryover || cfg->explore.carryover_share > 0)) *carry = co;
        if (co && cfg->explore.skip_carryover) return 0;
        if (!co && cfg->explore.no_lag && thm_fit_nolag(cfg, h, p, inc, &fit)) {
            eng_err_clear(); /* out of memory: no draw for this product */
            return 0;
        }
    }
    const double c0 = isfinite(fit.cost) && fit.cost > 0 ? fit.cost : 0.0;
    const double tmp = cfg->explore.temper > 0 ? (double)cfg->explore.temper : 1.0, sd = fit.slope_se * tmp;
    const double step = (double)cfg->explore.max_step, lim = step * p0 + 1e-9;
    const env_grid *g = &cfg->compare.grid;
    env_guard_bounds b = env_guard_bounds_band(h, p, inc, g);
    double s[EXP_EXPLORE_MAX_SUPPORT];
    int n = 0;
    s[n++] = p0;
    for (int j = -EXP_EXPLORE_MAX_SIDE; j <= EXP_EXPLORE_MAX_SIDE; j++) {
        double q = NAN;
        if (!j) continue;
        if (env_guard_apply(&cfg->compare.guard, &b, p0 * (1 + step * j / EXP_EXPLORE_MAX_SIDE), &q, NULL, NULL, NULL)) {
            eng_err_clear();
            continue;
        }
        if (!(q > 0) || fabs(q - p0) > lim) continue;
        int dup = 0;
        for (int k = 0; k < n; k++) dup |= fabs(s[k] - q) < 0.005;
        if (!dup && n < EXP_EXPLORE_MAX_SUPPORT) s[n++] = q;
    }
    if (n < 2) return 0;
    qsort(s, (size_t)n, sizeof *s, eng_cmp_double);
    double pr[EXP_EXPLORE_MAX_SUPPORT], lo = 0.0, tot = 0.0;
    for (int k = 0; k < n; k++) { /* nearest support price: the mid-points between neighbours split the slopes */
        double hi = k + 1 < n ? thm_below(0.5 * (s[k] + s[k + 1]), inc, c0, fit.slope, sd) : 1.0;
        pr[k] = hi - lo > 1e-9 ? hi - lo : 0.0;
        tot += pr[k];
        lo = hi > lo ? hi : lo;
    }
    if (!(tot > 0)) return 0;
    int m = 0;
    *w0 = 0.0;
    for (int k = 0; k < n; k++) {
        if (fabs(s[k] - p0) < 0.005) *w0 = pr[k] / tot;
        else if (pr[k] > 0) nb[m] = s[k], w[m] = pr[k] / tot, m++;
    }
    return m;
}
