/* exp_nightly_lagpool.c - the night's pooled sign of a reference effect (nightly.gate_cut_standing
 * = 3; exp_nightly.h exp_nightly_lag_pool; docs/backtest.md "Closed loop: a planning candidate and
 * the value of a cut").
 *
 * One product's lag coefficient (the demand model's previous-price state) is rarely 2 standard
 * errors from 0 in 90 days, even on a market whose customers all anchor on recent prices; the
 * night's products together say whether they do.  Every product's one-step gate fit (at its
 * incumbent, the weak prior) gives its lag coefficient; their mean and its standard error (the
 * spread over products / sqrt(n)) decide.  The sums are exact (eng_xsum) and added over the MPI
 * ranks, so a sharded night decides as one process does. */
#include <math.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"
#include "exp_gate.h"
#include "exp_nightly.h"
#include "feat.h"

#define LAG_POOL_MIN 20 /* fewer products with a lag coefficient: no pooled decision (0) */

int exp_nightly_lag_pool(const db_history *h, int *positive, double *mean, double *se, int *n_out) {
    const int n = h ? h->n_products : 0;
    eng_xsum s[3]; /* products, sum of coefficients, sum of squares */
    eng_xsum_zero(s, 3);
    *positive = 0, *mean = *se = NAN, *n_out = 0;
    for (int p = 0; p < n; p++) {
        exp_gate_fit f;
        const double inc = feat_incumbent_price(h, p, h->n_periods, NULL);
        if (!(inc > 0) || exp_gate_fit_product(h, p, inc, 0, NULL, &f)) {
            eng_err_clear();
            continue;
        }
        const double b = f.dm.beta[FEAT_DEMAND_LAG];
        if (!f.dm.ok || !(f.dm.used >> FEAT_DEMAND_LAG & 1u) || !isfinite(b)) continue;
        eng_xsum_add(&s[0], 1), eng_xsum_add(&s[1], b), eng_xsum_add(&s[2], b * b);
    }
    int st = eng_par_allreduce_xsum(s, 3); /* every rank takes the exchange */
    if (st) return st;
    const double k = eng_xsum_round(&s[0]), m = eng_xsum_round(&s[1]) / k;
    const double var = k > 1 ? (eng_xsum_round(&s[2]) - k * m * m) / (k - 1) : NAN;
    *n_out = (int)k;
    if (!(k >= LAG_POOL_MIN) || !(var >= 0)) return ENG_OK;
    *mean = m, *se = sqrt(var / k);
    *positive = m - 2 * *se > 0;
    return ENG_OK;
}
