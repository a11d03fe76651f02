/* exp_nightly_sense.c - checks a pricing team can make of a recommendation from the product's
 * own history (docs/nightly.md, "Promotions and plausibility"): was the new price ever charged
 * in a normal (non-promotion) period, the expected uplift in money per period beside the
 * product's mean, and the largest uplift the history makes plausible. */
#include "exp_nightly.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "env_reward.h"

/* Prices within this share of each other are "the same price" (half a default grid step). */
#define SENSE_TOL 0.0125

const char *exp_seen_name(int seen) {
    static const char *const n[EXP_SEEN_COUNT] = {"unchanged", "normal", "promo_only", "never"};
    return seen >= 0 && seen < EXP_SEEN_COUNT ? n[seen] : "?";
}

/* Where the product's history charged `price`: in a normal period, only in promotion periods,
 * or never (EXP_SEEN_*). */
int exp_nightly_price_seen(const db_history *h, int p, double price) {
    return exp_nightly_price_seen_upto(h, p, price, h->n_periods);
}

/* The same over periods 0 .. n_periods - 1 only. */
int exp_nightly_price_seen_upto(const db_history *h, int p, double price, int n_periods) {
    int promo = 0;
    if (n_periods > h->n_periods) n_periods = h->n_periods;
    for (int t = 0; t < n_periods; t++) {
        size_t c = (size_t)p * h->n_periods + t;
        if (!h->present[c] || !(h->price[c] > 0) || fabs(h->price[c] - price) > SENSE_TOL * price) continue;
        if (!h->promo || !h->promo[c]) return EXP_SEEN_NORMAL;
        promo = 1;
    }
    return promo ? EXP_SEEN_PROMO_ONLY : EXP_SEEN_NEVER;
}

/* Value of period c in money: revenue, or profit for the profit kinds (unit cost known). */
static double money(const db_history *h, int p, size_t c, int profit) {
    double v = h->revenue[c];
    if (profit && isfinite(h->unit_cost[p])) v -= h->units[c] * h->unit_cost[p];
    return v;
}

typedef struct pv { double price, value; } pv;

static int pv_cmp(const void *a, const void *b) {
    double x = ((const pv *)a)->price, y = ((const pv *)b)->price;
    return x < y ? -1 : x > y;
}

/* Per-period money scale of product p's reward (mean traffic for the per-visitor kinds, 1 for
 * the per-period ones and without traffic: the proxy of one visitor), its mean money per
 * period, and the largest uplift per period its normal periods make plausible: the best mean
 * of a price cluster (prices within 2 x SENSE_TOL of the cluster's lowest) charged in >= 2
 * normal periods, minus the mean of the incumbent's price (or of all normal periods when the
 * incumbent was charged fewer than twice).  NaN where the history cannot say.  Returns 0 or
 * ENG_ENOMEM (outputs NaN). */
int exp_nightly_sense_scale(const db_history *h, int p, double incumbent, int reward_kind, double *per_unit,
                            double *mean_period, double *plausible) {
    const int profit = env_reward_is_profit((env_reward_kind)reward_kind);
    const int per_visitor = reward_kind != ENV_REWARD_REVENUE && reward_kind != ENV_REWARD_PROFIT;
    *per_unit = *mean_period = *plausible = NAN;
    pv *a = eng_malloc((size_t)(h->n_periods ? h->n_periods : 1) * sizeof *a);
    if (!a) return ENG_ENOMEM;
    double tsum = 0, msum = 0, nsum = 0, inc_sum = 0;
    long tn = 0, mn = 0, inc_n = 0;
    int nn = 0;
    for (int t = 0; t < h->n_periods; t++) {
        size_t c = (size_t)p * h->n_periods + t;
        if (!h->present[c] || !isfinite(h->revenue[c])) continue;
        double v = money(h, p, c, profit);
        msum += v, mn++;
        if (isfinite(h->traffic[c]) && h->traffic[c] > 0) tsum += h->traffic[c], tn++;
        if ((h->promo && h->promo[c]) || !(h->price[c] > 0)) continue;
        nsum += v;
        a[nn++] = (pv){h->price[c], v};
        if (fabs(h->price[c] - incumbent) <= SENSE_TOL * incumbent) inc_sum += v, inc_n++;
    }
    qsort(a, (size_t)nn, sizeof *a, pv_cmp);
    double best = -INFINITY;
    for (int i = 0; i < nn;) {
        int j = i;
        double s = 0;
        while (j < nn && a[j].price <= a[i].price * (1 + 2 * SENSE_TOL)) s += a[j++].value;
        if (j - i >= 2 && s / (j - i) > best) best = s / (j - i);
        i = j;
    }
    free(a);
    *per_unit = per_visitor && tn ? tsum / tn : 1.0;
    *mean_period = mn ? msum / mn : NAN;
    double base = inc_n >= 2 ? inc_sum / inc_n : nn ? nsum / nn : NAN;
    *plausible = isfinite(best) && isfinite(base) ? fmax(best - base, 0.0) : NAN;
    return ENG_OK;
}

int exp_nightly_above_mean(const exp_nightly_decision *d) {
    return d->hold < 0 && d->per_unit > 0 && isfinite(d->mean_period) && d->mean_period > 0 &&
           d->uplift * d->per_unit > d->mean_period;
}
