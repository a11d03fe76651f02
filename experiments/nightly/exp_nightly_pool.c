/* exp_nightly_pool.c - the night's pooled prior on the demand models' price slope
 * (exp_nightly.h, exp_nightly_pool; feat_demand.h; docs/compare.md, "A pooled prior on the
 * price slope").
 *
 * First pass: every product's gate fit (exp_gate_fit_product at its incumbent) under the weak
 * N(-1, 1); the slope its own data says (feat_demand_slope_e, the weak prior taken out) and its
 * standard error, in dimensionless units.  Then DerSimonian-Laird: tau^2 from the fixed-effect
 * sums, the mean from the random-effects weights.  The sums are exact (eng_xsum) and added over
 * the MPI ranks, so a sharded night gets the one-process prior bit for bit.  The same pass gives
 * the night's pooled lag coefficient (exp_nightly_lag_pool), each product fitted once for both. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"
#include "exp_gate.h"
#include "exp_nightly.h"
#include "feat.h"

#define LAG_POOL_MIN 20 /* fewer products with a lag coefficient: no pooled decision (0) */

/* The night's pooled sign of a reference effect (nightly.gate_cut_standing >= 3; docs/backtest.md
 * "Closed loop: a planning candidate and the value of a cut").  One product's lag coefficient
 * (the demand model's previous-price state) is rarely 2 standard errors from 0 in 90 days, even
 * on a market whose customers all anchor on recent prices; the night's products together say
 * whether they do: the mean of their lag coefficients and its standard error (the spread over
 * products / sqrt(n)). */
typedef struct lag_pool {
    int positive, n;
    double mean, se;
} lag_pool;

/* The element-wise maximum over the ranks (feat_demand_pool_np's grid tails). */
static int par_max(double *v, int n) { return eng_par_allreduce_f64(v, n, ENG_PAR_MAX); }

/* Fit every product of h once (exp_gate_fit_product at its incumbent, the weak prior) and pool
 * what is asked: the price slopes into *slope (NULL: not asked; feat_demand_pool_run) and the
 * lag coefficients into *lag (NULL: not asked).  The sums are exact (eng_xsum) and added over
 * the MPI ranks (every rank takes each exchange, whatever its own products gave), so a sharded
 * night pools as one process does.  0, ENG_ENOMEM or the exchange's failure. */
static int pool_night(const db_history *h, feat_demand_prior *slope, int np, lag_pool *lag) {
    const int n = h ? h->n_products : 0;
    double *e = NULL, *se = NULL;
    eng_xsum s[3]; /* products with a lag coefficient, their sum, their sum of squares */
    int st = ENG_OK, k = 0, mem = 1;
    eng_xsum_zero(s, 3);
    if (slope) {
        memset(slope, 0, sizeof *slope);
        e = eng_malloc((size_t)(n > 0 ? n : 1) * sizeof *e), se = eng_malloc((size_t)(n > 0 ? n : 1) * sizeof *se);
        mem = e && se;
    }
    if (lag) lag->positive = 0, lag->n = 0, lag->mean = lag->se = NAN;
    for (int p = 0; mem && p < n; p++) { /* a product that cannot be fitted is left out */
        exp_gate_fit f;
        const double inc = feat_incumbent_price(h, p, h->n_periods, NULL);
        if (!(inc > 0) || exp_gate_fit_product(h, p, inc, 0, NULL, &f)) {
            eng_err_clear();
            continue;
        }
        if (slope && f.dm.ok && !feat_demand_slope_e(&f.dm, &e[k], &se[k])) k++;
        const double b = f.dm.beta[FEAT_DEMAND_LAG];
        if (lag && f.dm.ok && (f.dm.used >> FEAT_DEMAND_LAG & 1u) && isfinite(b))
            eng_xsum_add(&s[0], 1), eng_xsum_add(&s[1], b), eng_xsum_add(&s[2], b * b);
    }
    if (slope) {
        st = feat_demand_pool_run(e, se, (size_t)k, eng_par_allreduce_xsum, slope);
        if (!st && np) st = feat_demand_pool_np(e, se, (size_t)k, eng_par_allreduce_xsum, par_max, slope);
        if (!st && !mem) st = eng_err_set(ENG_ENOMEM, "nightly: out of memory (demand pool)");
    }
    free(e);
    free(se);
    if (!lag) return st;
    const int st2 = eng_par_allreduce_xsum(s, 3); /* every rank, whatever the slope pass gave it */
    if (st || st2) return st ? st : st2;
    const double kl = eng_xsum_round(&s[0]), m = eng_xsum_round(&s[1]) / kl;
    const double var = kl > 1 ? (eng_xsum_round(&s[2]) - kl * m * m) / (kl - 1) : NAN;
    lag->n = (int)kl;
    if (!(kl >= LAG_POOL_MIN) || !(var >= 0)) return ENG_OK;
    lag->mean = m, lag->se = sqrt(var / kl);
    lag->positive = m - 2 * lag->se > 0;
    return ENG_OK;
}

int exp_nightly_pool(const db_history *h, feat_demand_prior *out) { return pool_night(h, out, 0, NULL); }

int exp_nightly_lag_pool(const db_history *h, int *positive, double *mean, double *se, int *n_out) {
    lag_pool lp;
    int st = pool_night(h, NULL, 0, &lp);
    *positive = lp.positive, *mean = lp.mean, *se = lp.se, *n_out = lp.n;
    return st;
}

/* The reference columns' pooled prior (compare.demand_ref_pool; docs/backtest.md "q13asym"): every
 * product's standing fit (exp_gate_fit_ex, standing 1: the lag column the smoothed past price of
 * the memory the likelihood chooses) under the night's slope prior pr, with the loss column taken
 * whenever it varies when compare.demand_asym is on (feat_demand_set_asym 2 for this pass: its
 * coefficient pooled over every product, not only those whose likelihood-ratio test passes), then
 * feat_demand_ref_pool into pr->ref_*.  Collective under MPI.  0, ENG_ENOMEM (out of memory
 * here or, under MPI, on another rank: every rank returns it before the pool's exchanges; an
 * out-of-memory fit is never taken for a product that cannot be fitted) or an exchange's
 * failure. */
static int pool_ref(const exp_nightly_cfg *cfg, const db_history *h, feat_demand_prior *pr) {
    const int asym0 = feat_demand_asym();
    int n = h ? h->n_products : 0;
    feat_demand *ms = eng_calloc((size_t)(n > 0 ? n : 1), sizeof *ms);
    int st = ms ? ENG_OK : ENG_ENOMEM; /* out of memory: no fits, but the agreement below is taken */
    feat_demand_set_asym(cfg->compare.demand_asym ? 2 : 0);
    for (int p = 0; !st && p < n; p++) { /* a product that cannot be fitted is left out (ok = 0) */
        exp_gate_fit f;
        const double inc = feat_incumbent_price(h, p, h->n_periods, NULL);
        if (!(inc > 0)) continue;
        if (!(st = exp_gate_fit_ex(h, p, inc, 0, 1, pr, &f)) && f.ok) ms[p] = f.dm; /* its only failure: ENOMEM */
    }
    feat_demand_set_asym(asym0);
    if (eng_par_size() > 1) st = eng_par_agree(st); /* every rank learns of a failure before the pool's exchanges */
    if (st) {
        free(ms);
        return st;
    }
    st = feat_demand_ref_pool(ms, (size_t)n, eng_par_allreduce_xsum, pr);
    free(ms);
    if (!st && pr->ref_n > 0)
        ENG_INFO("nightly: reference columns pooled over %d products: lag N(%.3f, %.3f^2), loss column N(%.3f, %.3f^2)",
                 pr->ref_n, pr->ref_mean[0], pr->ref_sd[0], pr->ref_mean[1], pr->ref_sd[1]);
    return st;
}

int exp_nightly_pool_cfg(const exp_nightly_cfg *cfg, const db_history *h, exp_nightly_cfg *out) {
    *out = *cfg;
    memset(&out->compare.demand_prior, 0, sizeof out->compare.demand_prior);
    out->gate_lag_pooled = 0;
    const int want_lag = cfg->gate_cut_standing >= 3; /* the night's sign of a reference effect */
    lag_pool lp;
    int st = cfg->compare.demand_pool || want_lag
                 ? pool_night(h, cfg->compare.demand_pool ? &out->compare.demand_prior : NULL,
                              cfg->compare.demand_pool_np, want_lag ? &lp : NULL)
                 : ENG_OK;
    if (!st && out->compare.demand_prior.n > 0 && cfg->compare.demand_pool_tau_scale != 1.0)
        out->compare.demand_prior.sd *= cfg->compare.demand_pool_tau_scale; /* before the reference pool's fits */
    if (!st && want_lag) {
        out->gate_lag_pooled = lp.positive;
        ENG_INFO("nightly: lag coefficients pooled over %d products: mean %.3f (se %.3f): %s", lp.n, lp.mean, lp.se,
                 lp.positive ? "a reference effect" : "no pooled reference effect");
    }
    const feat_demand_prior *pr = &out->compare.demand_prior;
    if (cfg->compare.demand_ref_pool) { /* collective: every rank, knowing how the slope pass went */
        if (eng_par_size() > 1) st = eng_par_agree(st);
        if (!st) st = pool_ref(cfg, h, &out->compare.demand_prior);
    }
    if (!cfg->compare.demand_pool) return st;
    if (!st && pr->n > 0)
        ENG_INFO("nightly: price slopes pooled over %d products: elasticity prior N(%.3f, %.3f^2)%s", pr->n, pr->mean,
                 pr->sd, pr->np > 0 ? ", and its nonparametric form (NPMLE)" : "");
    else if (!st)
        ENG_INFO("nightly: price slopes not pooled (fewer than %d products with a slope): the weak prior",
                 FEAT_DEMAND_POOL_MIN);
    return st;
}
