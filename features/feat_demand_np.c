/* feat_demand_np.c - the nonparametric pooled prior on the demand models' price slope
 * (feat_demand.h: feat_demand_pool_np, feat_demand_np_match; docs/backtest.md "A nonparametric
 * pooled prior on the slope (session 18)").
 *
 * The normal pooled prior (DerSimonian-Laird) pulls every product's slope towards one centre
 * with one width.  Where the products' slopes spread widely or unevenly (the `ce` family's
 * elasticities, uniform over 0.3-2.5) it pulls the steep and the flat ones across the middle.
 * The NPMLE estimates the slopes' distribution itself, as weights on a grid, by EM on the
 * products' Gaussian likelihoods; a product's fit then takes the Gaussian prior that reproduces
 * its posterior mean under that distribution, so every consumer keeps one parameter vector. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "feat_demand.h"

#define G FEAT_DEMAND_NP_G
#define FIX_ONE 4294967296.0           /* 2^32: a posterior weight's fixed-point unit */
#define FLUSH_EVERY ((size_t)1 << 20)  /* products per int64 partial sum (< 2^53 before a flush) */

/* The product's posterior weights over the grid (lo, step, pi) for a slope observed as e with
 * standard error se into post[G] (sum 1); e or se unusable: pi itself.  Pure. */
static void np_post(const double *pi, double lo, double step, double e, double se, double *post) {
    const int obs = isfinite(e) && se > 0 && isfinite(se);
    double mx = -INFINITY, s = 0;
    for (int g = 0; g < G; g++) {
        const double z = obs ? (e - (lo + g * step)) / se : 0.0;
        post[g] = pi[g] > 0 ? log(pi[g]) - 0.5 * z * z : -INFINITY;
        if (post[g] > mx) mx = post[g];
    }
    for (int g = 0; g < G; g++) s += post[g] = isfinite(mx) ? exp(post[g] - mx) : 1.0;
    for (int g = 0; g < G; g++) post[g] /= s;
}

/* One EM step's sums over this part's k products (L rows: the products' likelihoods over the
 * grid, each row's maximum 1): xs[g] += the sum of their posterior weights at pi, in fixed
 * point (FIX_ONE) so that the sum is exact in any order. */
static void em_sums(const double *L, size_t k, const double *pi, eng_xsum *xs) {
    int64_t acc[G];
    memset(acc, 0, sizeof acc);
    for (size_t i = 0; i < k; i++) {
        const double *l = L + i * G;
        double s = 0, w[G];
        for (int g = 0; g < G; g++) s += w[g] = l[g] * pi[g];
        if (!(s > 0)) continue;
        for (int g = 0; g < G; g++) acc[g] += (int64_t)llround(w[g] / s * FIX_ONE);
        if ((i + 1) % FLUSH_EVERY == 0 || i + 1 == k)
            for (int g = 0; g < G; g++) eng_xsum_add(&xs[g], (double)acc[g]), acc[g] = 0;
    }
}

int feat_demand_pool_np(const double *e, const double *se, size_t n, int (*reduce)(eng_xsum *s, size_t ns),
                        feat_demand_prior *pr) {
    pr->np = 0;
    if (pr->n <= 0 || !isfinite(pr->mean) || !(pr->sd > 0)) return ENG_OK; /* the same on every rank */
    const double h = fmax(5.0 * pr->sd, 1.0), lo = pr->mean - h, step = 2.0 * h / (G - 1);
    double *L = eng_malloc((n ? n : 1) * G * sizeof *L), pi[G];
    eng_xsum xs[G];
    size_t k = 0;
    for (size_t i = 0; L && i < n; i++) { /* each usable product's likelihood row, its maximum 1 */
        if (!isfinite(e[i]) || !(se[i] > 0) || !isfinite(se[i])) continue;
        double *l = L + k++ * G, zmin = INFINITY;
        for (int g = 0; g < G; g++) zmin = fmin(zmin, fabs(e[i] - (lo + g * step)) / se[i]);
        for (int g = 0; g < G; g++) {
            const double z = (e[i] - (lo + g * step)) / se[i];
            l[g] = exp(-0.5 * (z * z - zmin * zmin));
        }
    }
    for (int g = 0; g < G; g++) pi[g] = 1.0 / G;
    int st = ENG_OK;
    for (int it = 0; it < FEAT_DEMAND_NP_ITERS; it++) { /* out of memory: no products, every exchange taken */
        eng_xsum_zero(xs, G);
        em_sums(L, L ? k : 0, pi, xs);
        if (reduce && (st = reduce(xs, G))) break;
        double tot = 0, v[G];
        for (int g = 0; g < G; g++) tot += v[g] = eng_xsum_round(&xs[g]);
        if (!(tot > 0)) break; /* no product anywhere: the uniform weights stay (np stays 0 below) */
        for (int g = 0; g < G; g++) pi[g] = v[g] / tot;
    }
    free(L);
    if (!st && !L) st = eng_err_set(ENG_ENOMEM, "feat_demand_pool_np: out of memory");
    if (st) return st;
    pr->np = G, pr->np_lo = lo, pr->np_step = step;
    memcpy(pr->np_w, pi, sizeof pi);
    return ENG_OK;
}

void feat_demand_np_match(const feat_demand_prior *pr, double e, double se, feat_demand_prior *out) {
    *out = *pr;
    if (pr->np <= 0) return;
    out->np = 0;
    double post[G], m = 0, v = 0;
    np_post(pr->np_w, pr->np_lo, pr->np_step, e, se, post);
    for (int g = 0; g < G; g++) m += post[g] * (pr->np_lo + g * pr->np_step);
    for (int g = 0; g < G; g++) {
        const double d = pr->np_lo + g * pr->np_step - m;
        v += post[g] * d * d;
    }
    const double fl = FEAT_DEMAND_POOL_TAU_FLOOR * FEAT_DEMAND_POOL_TAU_FLOOR;
    v = fmax(v, fl);
    if (!(isfinite(e) && se > 0 && isfinite(se))) { /* no slope of its own: the mixture's moments */
        out->mean = m, out->sd = sqrt(v);
        return;
    }
    const double dp = 1.0 / (se * se); /* the data's precision; the prior's matches the posterior's */
    const double pp = fmax(1.0 / v - dp, 0.25 * dp);
    out->mean = (m * (pp + dp) - e * dp) / pp;
    out->sd = 1.0 / sqrt(pp);
}
