/* exp_compare_uplift.c - the comparison's like-period pieces: a row's promotion flag, the best
 * fixed price, and the paired uplift of every agent that the nightly's gate deploys on
 * (exp_compare.h, docs/compare.md "Uplift"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "exp_compare_int.h"

/* 1 when transition r's own period ran a promotion. */
int cmp_row_promo(const cmp_ctx *c, size_t r) {
    const db_history *h = c->h;
    int p = c->tr->product[r], t = c->tr->t[r];
    return h->promo && p >= 0 && p < h->n_products && t >= 0 && t < h->n_periods &&
           h->promo[(size_t)p * h->n_periods + t];
}

/* Best fixed level of product p: the highest mean logged reward among levels with
 * fixed_min_support training rows; with compare.like_periods only the product's normal
 * (non-promotion) periods count, so a promotion's lift is not credited to its price
 * (docs/compare.md), unless no level has that support among them.  The reference level when
 * no level has support at all. */
int cmp_fixed_level(const cmp_ctx *c, int p) {
    const int K = c->K;
    double sum[2][1024];
    long cnt[2][1024];
    memset(sum, 0, sizeof sum);
    memset(cnt, 0, sizeof cnt);
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
        if (!cmp_is_train(c, r)) continue;
        int promo = cmp_row_promo(c, r);
        int k = c->tr->level[r];
        sum[0][k] += c->tr->reward[r], cnt[0][k]++;
        if (!promo) sum[1][k] += c->tr->reward[r], cnt[1][k]++;
    }
    for (int pass = c->cfg->like_periods ? 1 : 0; pass >= 0; pass--) { /* normal periods first, then all */
        int best = -1;
        for (int k = 0; k < K; k++)
            if (cnt[pass][k] >= c->cfg->fixed_min_support &&
                (best < 0 || sum[pass][k] / cnt[pass][k] > sum[pass][best] / cnt[pass][best]))
                best = k;
        if (best >= 0) return best;
    }
    return env_grid_level(&c->cfg->grid, 1.0, NULL); /* no support: the reference price */
}

/* The uplift of every agent on the same rows, against compare.uplift_ref: 0 = history's
 * on-policy value (DR_a,i - r_i; its weights are exactly 1), 1 = history's DR (DR_a,i -
 * DR_history,i), 2 = the INCUMBENT price, the thing a deploy replaces (DR_a,i - DR_hold,i with
 * hold = the row's incumbent level j: q_ij + 1[a_i = j] / pscore_i (r_i - q_i,a_i)).  With
 * compare.like_periods, when the product has promotion periods among its evaluation rows and
 * at least max(8, n / 4) normal ones, only the normal rows count (a recommendation for a
 * normal period is valued on normal periods).  Percentile bootstrap over the rows used. */
int cmp_paired_uplift(cmp_ctx *c, int p, int n, const double *drt, const ope_bandit *d, const size_t *ridx,
                         uint64_t seed_p) {
    exp_product_result *pr = &c->res->products[p];
    const ope_config *oc = &c->cfg->ope;
    const int K = d->K, ref = c->cfg->uplift_ref;
    double *diff = malloc((size_t)n * sizeof *diff), *base = malloc((size_t)n * sizeof *base);
    int *use = malloc((size_t)n * sizeof *use);
    int rc = 0, n_norm = 0, m = 0;
    if (!diff || !base || !use) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
        goto done;
    }
    double *hs = c->sums + ((size_t)p * EXP_N_AGENTS + EXP_AGENT_HISTORY) * CMP_S_COUNT;
    hs[CMP_S_HOLD] = 0;
    for (int i = 0; i < n; i++) {
        n_norm += !cmp_row_promo(c, ridx[i]);
        const double *qi = d->q + (size_t)i * K;
        int j = c->tr->inc_level[ridx[i]];
        hs[CMP_S_HOLD] += j >= 0 && j < K ? qi[j] + (d->action[i] == j ? (d->reward[i] - qi[d->action[i]]) / d->pscore[i] : 0.0)
                                          : d->reward[i];
    }
    const int normal_only = c->cfg->like_periods && n_norm < n && n_norm >= (n / 4 > 8 ? n / 4 : 8);
    for (int i = 0; i < n; i++) {
        if (normal_only && cmp_row_promo(c, ridx[i])) continue;
        const double *qi = d->q + (size_t)i * K;
        int j = c->tr->inc_level[ridx[i]];
        if (ref == 2 && j >= 0 && j < K)
            base[m] = qi[j] + (d->action[i] == j ? (d->reward[i] - qi[d->action[i]]) / d->pscore[i] : 0.0);
        else if (ref == 1) base[m] = drt[(size_t)EXP_AGENT_HISTORY * n + i];
        else base[m] = d->reward[i];
        use[m++] = i;
    }
    static const char *const ref_text[3] = {"DR minus the on-policy mean", "paired DR difference",
                                            "paired DR difference to the incumbent price"};
    for (int a = 0; a < EXP_N_AGENTS && m > 0; a++) {
        if (a == EXP_AGENT_HISTORY) continue;
        for (int k = 0; k < m; k++) diff[k] = drt[(size_t)a * n + use[k]] - base[k];
        ope_value *v = &pr->uplift[a];
        double est, lo, hi, se;
        if ((rc = ope_boot_ratio(diff, NULL, m, 1, oc->n_boot, oc->alpha, eng_seed_derive(seed_p, 0x75706cULL + a),
                                 &est, &lo, &hi, &se)))
            break;
        v->available = isfinite(est);
        v->estimate = est;
        v->ci_low = lo;
        v->ci_high = hi;
        v->boot_se = se;
        v->n_used = m;
        snprintf(v->note, sizeof v->note, "%s over %d %sevaluation rows", ref_text[ref >= 0 && ref <= 2 ? ref : 0], m,
                 normal_only ? "normal (non-promotion) " : "");
        const double *s = c->sums + ((size_t)p * EXP_N_AGENTS + a) * CMP_S_COUNT;
        c->ess_p[(size_t)p * EXP_N_AGENTS + a] = s[CMP_S_W2] > 0 ? s[CMP_S_W] * s[CMP_S_W] / s[CMP_S_W2] : 0.0;
    }
done:
    free(diff);
    free(base);
    free(use);
    return rc;
}
