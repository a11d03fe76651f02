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

#define GMAX FEAT_DEMAND_NP_G
#define FIX_ONE 4294967296.0           /* 2^32: a posterior weight's fixed-point unit */
#define FLUSH_EVERY ((size_t)1 << 20)  /* products per int64 partial sum (< 2^53 before a flush) */

/* 1 when the pair is a usable slope observation. */
static int usable(double e, double se) { return isfinite(e) && se > 0 && isfinite(se); }

/* The product's posterior weights over the grid x[0..ng) with prior weights pi for a slope
 * observed as e with standard error se into post[ng] (sum 1); e or se unusable: pi itself.
 * Pure. */
static void np_post(const double *x, const double *pi, int ng, double e, double se, double *post) {
    const int obs = usable(e, se);
    double mx = -INFINITY, s = 0;
    for (int g = 0; g < ng; g++) {
        const double z = obs ? (e - x[g]) / se : 0.0;
        post[g] = pi[g] > 0 ? log(pi[g]) - 0.5 * z * z : -INFINITY;
        if (post[g] > mx) mx = post[g];
    }
    for (int g = 0; g < ng; g++) s += post[g] = isfinite(mx) ? exp(post[g] - mx) : 1.0;
    for (int g = 0; g < ng; g++) post[g] /= s;
}

/* One EM step's sums over this part's k products (L rows of ng: the products' likelihoods over
 * the grid, each row's maximum 1): xs[g] += the sum of their posterior weights at pi, in fixed
 * point (FIX_ONE) so that the sum is exact in any order. */
static void em_sums(const double *L, size_t k, int ng, const double *pi, eng_xsum *xs) {
    int64_t acc[GMAX];
    memset(acc, 0, sizeof acc);
    for (size_t i = 0; i < k; i++) {
        const double *l = L + i * ng;
        double s = 0, w[GMAX];
        for (int g = 0; g < ng; g++) s += w[g] = l[g] * pi[g];
        if (s > 0)
            for (int g = 0; g < ng; g++) acc[g] += (int64_t)llround(w[g] / s * FIX_ONE);
        if ((i + 1) % FLUSH_EVERY == 0 || i + 1 == k)
            for (int g = 0; g < ng; g++) eng_xsum_add(&xs[g], (double)acc[g]), acc[g] = 0;
    }
}

/* The grid into x (ascending; returns its size): FEAT_DEMAND_NP_CORE points over c +- h, and
 * FEAT_DEMAND_NP_TAIL evenly spaced points beyond each edge out to lo (< c - h) or hi (> c + h)
 * where those are finite. */
static int np_grid(double c, double h, double lo, double hi, double *x) {
    int ng = 0;
    const int T = FEAT_DEMAND_NP_TAIL, C = FEAT_DEMAND_NP_CORE;
    if (isfinite(lo) && lo < c - h)
        for (int t = T; t >= 1; t--) x[ng++] = c - h - (c - h - lo) * t / T;
    for (int g = 0; g < C; g++) x[ng++] = c - h + 2.0 * h * g / (C - 1);
    if (isfinite(hi) && hi > c + h)
        for (int t = 1; t <= T; t++) x[ng++] = c + h + (hi - c - h) * t / T;
    return ng;
}

int feat_demand_pool_np(const double *e, const double *se, size_t n, int (*reduce)(eng_xsum *s, size_t ns),
                        int (*rmax)(double *v, int n), feat_demand_prior *pr) {
    pr->np = 0;
    if (pr->n <= 0 || !isfinite(pr->mean) || !(pr->sd > 0)) return ENG_OK; /* the same on every rank */
    const double c = pr->mean, h = fmax(5.0 * pr->sd, 1.0);
    double ext[2] = {-INFINITY, -INFINITY}; /* -(lowest), highest slope more than 2 se beyond the core */
    for (size_t i = 0; i < n; i++) {
        if (!usable(e[i], se[i])) continue;
        if (e[i] + 2 * se[i] < c - h) ext[0] = fmax(ext[0], -e[i]);
        if (e[i] - 2 * se[i] > c + h) ext[1] = fmax(ext[1], e[i]);
    }
    int st = rmax ? rmax(ext, 2) : ENG_OK;
    double x[GMAX], pi[GMAX];
    const int ng = np_grid(c, h, -ext[0], ext[1], x);
    double *L = st ? NULL : eng_malloc((n ? n : 1) * (size_t)ng * sizeof *L);
    eng_xsum xs[GMAX];
    size_t k = 0;
    for (size_t i = 0; L && i < n; i++) { /* each usable product's likelihood row, its maximum 1 */
        if (!usable(e[i], se[i])) continue;
        double *l = L + k++ * ng, zmin = INFINITY;
        for (int g = 0; g < ng; g++) zmin = fmin(zmin, fabs(e[i] - x[g]) / se[i]);
        for (int g = 0; g < ng; g++) {
            const double z = (e[i] - x[g]) / se[i];
            l[g] = exp(-0.5 * (z * z - zmin * zmin));
        }
    }
    for (int g = 0; g < ng; g++) pi[g] = 1.0 / ng;
    for (int it = 0; !st && it < FEAT_DEMAND_NP_ITERS; it++) { /* out of memory: no products, every exchange taken */
        eng_xsum_zero(xs, (size_t)ng);
        em_sums(L, L ? k : 0, ng, pi, xs);
        if (reduce && (st = reduce(xs, (size_t)ng))) break;
        double tot = 0, v[GMAX];
        for (int g = 0; g < ng; g++) tot += v[g] = eng_xsum_round(&xs[g]);
        if (!(tot > 0)) break; /* no product anywhere: the uniform weights stay */
        for (int g = 0; g < ng; g++) pi[g] = v[g] / tot;
    }
    const int oom = !st && !L;
    free(L);
    if (oom) st = eng_err_set(ENG_ENOMEM, "feat_demand_pool_np: out of memory");
    if (st) return st;
    pr->np = ng;
    memcpy(pr->np_x, x, (size_t)ng * sizeof *x);
    memcpy(pr->np_w, pi, (size_t)ng * sizeof *pi);
    return ENG_OK;
}

void feat_demand_np_match(const feat_demand_prior *pr, double e, double se, feat_demand_prior *out) {
    *out = *pr;
    if (pr->np <= 0) return;
    out->np = 0;
    double post[GMAX], m = 0, v = 0;
    np_post(pr->np_x, pr->np_w, pr->np, e, se, post);
    for (int g = 0; g < pr->np; g++) m += post[g] * pr->np_x[g];
    for (int g = 0; g < pr->np; g++) v += post[g] * (pr->np_x[g] - m) * (pr->np_x[g] - m);
    const double fl = FEAT_DEMAND_POOL_TAU_FLOOR * FEAT_DEMAND_POOL_TAU_FLOOR;
    v = fmax(v, fl);
    if (!usable(e, se)) { /* no slope of its own: the mixture's moments */
        out->mean = m, out->sd = sqrt(v);
        return;
    }
    const double dp = 1.0 / (se * se); /* the data's precision; the prior's matches the posterior's */
    const double pp = fmax(1.0 / v - dp, 0.25 * dp);
    out->mean = (m * (pp + dp) - e * dp) / pp;
    out->sd = 1.0 / sqrt(pp);
}
