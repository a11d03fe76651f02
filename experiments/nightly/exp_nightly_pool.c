/* exp_nightly_pool.c - the night's pooled prior on the demand models' price slope
 * (exp_nightly.h, exp_nightly_pool; feat_demand.h; docs/compare.md, "A pooled prior on the
 * price slope").
 *
 * First pass: every product's gate fit (exp_gate_fit_product at its incumbent) under the weak
 * N(-1, 1); the slope its own data says (feat_demand_slope_e, the weak prior taken out) and its
 * standard error, in dimensionless units.  Then DerSimonian-Laird: tau^2 from the fixed-effect
 * sums, the mean from the random-effects weights.  The sums are exact (eng_xsum) and added over
 * the MPI ranks, so a sharded night gets the one-process prior bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"
#include "exp_gate.h"
#include "exp_nightly.h"
#include "feat.h"

int exp_nightly_pool(const db_history *h, feat_demand_prior *out) {
    const int n = h ? h->n_products : 0;
    double *e = eng_malloc((size_t)(n > 0 ? n : 1) * sizeof *e), *se = eng_malloc((size_t)(n > 0 ? n : 1) * sizeof *se);
    int st = ENG_OK, k = 0;
    memset(out, 0, sizeof *out);
    for (int p = 0; e && se && p < n; p++) { /* a product that cannot be fitted is left out */
        exp_gate_fit f;
        const double inc = feat_incumbent_price(h, p, h->n_periods, NULL);
        if (!(inc > 0) || exp_gate_fit_product(h, p, inc, 0, NULL, &f)) {
            eng_err_clear();
            continue;
        }
        if (f.dm.ok && !feat_demand_slope_e(&f.dm, &e[k], &se[k])) k++;
    }
    /* under MPI every rank takes both exchanges, whatever its own products gave */
    st = feat_demand_pool_run(e, se, (size_t)k, eng_par_allreduce_xsum, out);
    if (!st && (!e || !se)) st = eng_err_set(ENG_ENOMEM, "nightly: out of memory (demand pool)");
    free(e);
    free(se);
    return st;
}

int exp_nightly_pool_cfg(const exp_nightly_cfg *cfg, const db_history *h, exp_nightly_cfg *out) {
    *out = *cfg;
    memset(&out->compare.demand_prior, 0, sizeof out->compare.demand_prior);
    out->gate_lag_pooled = 0;
    int st = cfg->compare.demand_pool ? exp_nightly_pool(h, &out->compare.demand_prior) : ENG_OK;
    if (!st && cfg->gate_cut_standing >= 3) { /* the night's sign of a reference effect */
        double m, se;
        int n;
        st = exp_nightly_lag_pool(h, &out->gate_lag_pooled, &m, &se, &n);
        if (!st)
            ENG_INFO("nightly: lag coefficients pooled over %d products: mean %.3f (se %.3f): %s", n, m, se,
                     out->gate_lag_pooled ? "a reference effect" : "no pooled reference effect");
    }
    const feat_demand_prior *pr = &out->compare.demand_prior;
    if (!cfg->compare.demand_pool) return st;
    if (!st && pr->n > 0)
        ENG_INFO("nightly: price slopes pooled over %d products: elasticity prior N(%.3f, %.3f^2)", pr->n, pr->mean,
                 pr->sd);
    else if (!st)
        ENG_INFO("nightly: price slopes not pooled (fewer than %d products with a slope): the weak prior",
                 FEAT_DEMAND_POOL_MIN);
    return st;
}
