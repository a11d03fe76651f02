/* env_behaviour.c - behaviour policy estimators (counts, multinomial logit): entry points,
 * features, the counts model; the logit's fits are in env_behaviour_mnl.c, the calibration
 * diagnostic in env_behaviour_eval.c; see env_behaviour.h for the models.
 *
 * Why a multinomial logit as the default: the simulator's price setters (like real ones)
 * respond to more than the incumbent price - competitors' prices, promotions, the calendar -
 * and the logit uses those while the stickiness features (keep / nudge / move size) keep
 * what the incumbent-conditioned counts captured.  With per-product intercepts and
 * stickiness shrunk towards a pooled fit, a product with 60 days still gets a usable
 * estimate.  The counts model stays available (cfg.kind = ENV_BEHAV_COUNTS): it needs no
 * iterative fit and is exact on tiny synthetic cases.
 *
 * Fitting.  Pooled: minimise sum_i -log softmax(score_i)[k_i] + l2/2 (|W|^2 + |gamma|^2) by
 * Newton's method with the exact Hessian (K NX + NZ = 255 unknowns on the default grid; the
 * Hessian is assembled with dsyrk over chunks of rows, see pool_grad_hess) and a backtracking
 * (Armijo) line search; it stops when the Newton decrement is ~0 (typically < 15 iterations).
 * A first version used gradient steps preconditioned by Bohning's bound: it needed > 800
 * iterations to converge on 200 products, so it was replaced.
 * Per product: Newton's method with the exact Hessian of (u_p, delta_p) (K + NZ unknowns)
 * and the prior shrink / 2 |.|^2, with backtracking.  Matrix and vector work goes through
 * cblas; the only hand-written linear algebra is the Cholesky of the small SPD systems.
 */
#include "env_behaviour.h"
#include "env_behaviour_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"
#include "feat.h"

env_behaviour_cfg env_behaviour_default(void) {
    env_behaviour_cfg c;
    memset(&c, 0, sizeof c);
    c.alpha = 5.0;
    c.beta = 1.0;
    c.kind = ENV_BEHAV_MNL;
    c.l2 = 1.0;
    c.shrink = 3.0;
    c.eps = 0.01;
    c.max_iter = 50;
    c.pool_max_rows = 200000;
    return c;
}

int env_behaviour_cfg_check(const env_behaviour_cfg *c) {
    if (!c) return eng_err_set(ENG_EINVAL, "behaviour policy: NULL config");
    if (!(c->alpha > 0.0) || !(c->beta > 0.0))
        return eng_err_set(ENG_EINVAL, "behaviour policy: need alpha > 0 and beta > 0 (got %g, %g)", c->alpha, c->beta);
    if (c->kind == ENV_BEHAV_COUNTS) return ENG_OK;
    if (c->kind != ENV_BEHAV_MNL) return eng_err_set(ENG_EINVAL, "behaviour policy: unknown kind %d", (int)c->kind);
    if (!(c->l2 >= 0.0) || !isfinite(c->l2)) return eng_err_set(ENG_EINVAL, "behaviour policy: l2 must be >= 0");
    if (!(c->shrink > 0.0) || !isfinite(c->shrink))
        return eng_err_set(ENG_EINVAL, "behaviour policy: shrink must be > 0 (got %g)", c->shrink);
    if (!(c->eps > 0.0 && c->eps < 1.0)) return eng_err_set(ENG_EINVAL, "behaviour policy: eps must be in (0, 1)");
    if (c->max_iter < 1 || c->pool_max_rows < 1)
        return eng_err_set(ENG_EINVAL, "behaviour policy: max_iter and pool_max_rows must be >= 1");
    return ENG_OK;
}

void env_behaviour_free(env_behaviour *b) {
    if (!b) return;
    free(b->pool);
    free(b->pool_row);
    free(b->off);
    free(b->tj);
    free(b->tk);
    free(b->tc);
    free(b->W);
    free(b->u);
    free(b->dg);
    free(b->xbar);
    free(b);
}

int env_behaviour_levels(const env_behaviour *b) { return b ? b->K : 0; }
env_behaviour_kind env_behaviour_kind_of(const env_behaviour *b) { return b ? b->kind : ENV_BEHAV_COUNTS; }
void env_behaviour_fit_info(const env_behaviour *b, int *pool_iters, double *pool_nll) {
    if (pool_iters) *pool_iters = b ? b->pool_iters : 0;
    if (pool_nll) *pool_nll = b ? b->pool_nll : NAN;
}

int env_behaviour_fit_hessians(const env_behaviour *b) { return b ? b->pool_hess : 0; }

int env_behaviour_pool_coef(const env_behaviour *b, double *out, int n) {
    if (!b || b->kind != ENV_BEHAV_MNL || !b->W || !out) return 0;
    const int q = ENV_BEHAV_POOL_LEN(b->K);
    if (n < q) return 0;
    memcpy(out, b->W, (size_t)b->K * NX * sizeof *out);
    memcpy(out + (size_t)b->K * NX, b->gam, sizeof b->gam);
    return q;
}

/* ---- features ----------------------------------------------------------------------------- */
static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }
static double fin0(float v) { return isfinite(v) ? (double)v : 0.0; }

void env_behaviour_features(const float *s, double ref, double *x) {
    double pc = s[FEAT_PRICE_CUR];
    int ok = isfinite(pc) && pc > 0.0 && isfinite(ref) && ref > 0.0;
    x[0] = 1.0;
    x[1] = ok ? clampd(log(pc / ref), -1.0, 1.0) : 0.0;
    x[2] = clampd(fin0(s[FEAT_DISCOUNT_DEPTH]), 0.0, 1.0);
    double crm = s[FEAT_COMP_REL_MEAN];
    if (ok && isfinite(crm) && crm > 0.0 && !(s[FEAT_COMP_MISSING] > 0.5f)) {
        x[3] = clampd(log(pc / crm / ref), -1.0, 1.0);
        x[4] = 0.0;
    } else {
        x[3] = 0.0;
        x[4] = 1.0;
    }
    x[5] = s[FEAT_PROMO_PREV] > 0.5f ? 1.0 : 0.0;
    x[6] = fin0(s[FEAT_DOW_SIN]);
    x[7] = fin0(s[FEAT_DOW_COS]);
    x[8] = fin0(s[FEAT_WOY_SIN]);
    x[9] = fin0(s[FEAT_WOY_COS]);
    double u1 = s[FEAT_UNITS_1], u7 = s[FEAT_UNITS_7];
    x[10] = (isfinite(u1) && isfinite(u7) && u1 >= 0 && u7 >= 0) ? clampd(log1p(u1) - log1p(u7 / 7.0), -3.0, 3.0) : 0.0;
    x[11] = (!ok || s[FEAT_PRICE_MISSING] > 0.5f) ? 1.0 : 0.0;
}

int env_state_level(const env_grid *g, const float *state_raw, double ref) {
    double pc = state_raw[FEAT_PRICE_CUR];
    if (!(pc > 0.0) || !isfinite(pc) || !(ref > 0.0) || !isfinite(ref)) return g->K / 2;
    return env_grid_level(g, pc / ref, NULL);
}

/* Features of a state known only by its incumbent level j (everything else missing). */
static void level_features(const env_grid *g, int j, double *x) {
    float s[FEAT_N];
    for (int i = 0; i < FEAT_N; i++) s[i] = NAN;
    double r = env_grid_ratio(g, j);
    s[FEAT_PRICE_CUR] = (float)r;
    s[FEAT_DISCOUNT_DEPTH] = (float)(r < 1.0 ? 1.0 - r : 0.0);
    s[FEAT_PRICE_MISSING] = 0.0f;
    env_behaviour_features(s, 1.0, x);
}

void env_bhv_row_x(const rows_src *r, size_t i, double *x, int *jj) {
    if (r->state) {
        const float *s = r->state + i * FEAT_N;
        env_behaviour_features(s, r->ref[i], x);
        *jj = env_state_level(r->g, s, r->ref[i]);
    } else {
        level_features(r->g, r->j[i], x);
        *jj = r->j[i];
    }
}

/* ---- counts model ----------------------------------------------------------------------------- */
typedef struct { int32_t p; int16_t j, k; } triple;

static int cmp_triple(const void *a, const void *b) {
    const triple *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? -1 : 1;
    if (x->j != y->j) return x->j < y->j ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

static int counts_fit(env_behaviour *b, const int32_t *product, const int16_t *j, const int16_t *k, size_t n) {
    const int K = b->K;
    triple *tr = NULL;
    int rc = ENG_OK;
    b->pool = eng_calloc((size_t)K * K, sizeof(double));
    b->pool_row = eng_calloc((size_t)K, sizeof(double));
    b->off = eng_calloc((size_t)b->n_products + 1, sizeof(int64_t));
    tr = eng_malloc((n ? n : 1) * sizeof *tr);
    if (!b->pool || !b->pool_row || !b->off || !tr) rc = ENG_ENOMEM;
    if (b->over_ranks) rc = eng_par_agree(rc); /* collective below: every rank or none */
    if (rc) goto done;
    for (size_t i = 0; i < n; i++) {
        tr[i].p = product[i];
        tr[i].j = j[i];
        tr[i].k = k[i];
        b->pool[(size_t)j[i] * K + k[i]] += 1.0;
        b->pool_row[j[i]] += 1.0;
    }
    if (b->over_ranks) { /* the pooled counts of every rank (integers: exact) */
        int64_t *v = eng_malloc(((size_t)K * K + K) * sizeof *v);
        rc = v ? ENG_OK : ENG_ENOMEM;
        if ((rc = eng_par_agree(rc))) {
            free(v);
            goto done;
        }
        for (int i = 0; i < K * K; i++) v[i] = (int64_t)b->pool[i];
        for (int i = 0; i < K; i++) v[K * K + i] = (int64_t)b->pool_row[i];
        rc = eng_par_allreduce_i64(v, K * K + K, ENG_PAR_SUM);
        for (int i = 0; !rc && i < K * K; i++) b->pool[i] = (double)v[i];
        for (int i = 0; !rc && i < K; i++) b->pool_row[i] = (double)v[K * K + i];
        free(v);
        if (rc) goto done;
    }
    qsort(tr, n, sizeof *tr, cmp_triple);
    size_t m = 0; /* distinct triples */
    for (size_t i = 0; i < n; i++)
        if (i == 0 || cmp_triple(&tr[i], &tr[i - 1]) != 0) m++;
    b->tj = eng_malloc((m ? m : 1) * sizeof(int16_t));
    b->tk = eng_malloc((m ? m : 1) * sizeof(int16_t));
    b->tc = eng_malloc((m ? m : 1) * sizeof(int32_t));
    if (!b->tj || !b->tk || !b->tc) {
        rc = ENG_ENOMEM;
        goto done;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || cmp_triple(&tr[i], &tr[i - 1]) != 0) {
            b->tj[w] = tr[i].j;
            b->tk[w] = tr[i].k;
            b->tc[w] = 0;
            b->off[tr[i].p + 1]++;
            w++;
        }
        b->tc[w - 1]++;
    }
    for (int p = 0; p < b->n_products; p++) b->off[p + 1] += b->off[p];
done:
    free(tr);
    return rc;
}

static void counts_probs(const env_behaviour *b, int p, int j, double *probs) {
    const int K = b->K;
    double row = b->pool_row[j] + b->beta;
    for (int k = 0; k < K; k++) probs[k] = b->alpha * (b->pool[(size_t)j * K + k] + b->beta / K) / row;
    double np = 0.0;
    for (int64_t i = b->off[p]; i < b->off[p + 1]; i++)
        if (b->tj[i] == j) {
            probs[b->tk[i]] += b->tc[i];
            np += b->tc[i];
        }
    double z = np + b->alpha;
    for (int k = 0; k < K; k++) probs[k] /= z;
}

/* ---- fit entry points ---------------------------------------------------------------------------- */
static int fit_common(env_behaviour **out, const env_grid *g, int n_products, const int32_t *product,
                      const rows_src *src, const int16_t *k, size_t n, const env_behaviour_cfg *cfg) {
    int rc;
    int16_t *jj = NULL;
    env_behaviour *b = eng_calloc(1, sizeof *b);
    if (!b) return ENG_ENOMEM;
    b->kind = cfg->kind;
    b->K = g->K;
    b->grid = *g;
    b->n_products = n_products;
    b->over_ranks = cfg->over_ranks;
    b->alpha = cfg->alpha;
    b->beta = cfg->beta;
    b->eps = cfg->eps;
    if (cfg->kind == ENV_BEHAV_COUNTS) {
        const int16_t *j = src->j;
        if (!j) {
            jj = eng_malloc((n ? n : 1) * sizeof(int16_t));
            if (!jj) {
                rc = ENG_ENOMEM;
                goto fail;
            }
            for (size_t i = 0; i < n; i++) jj[i] = (int16_t)env_state_level(g, src->state + i * FEAT_N, src->ref[i]);
            j = jj;
        }
        rc = counts_fit(b, product, j, k, n);
    } else {
        rc = env_bhv_mnl_fit(b, src, product, k, n, cfg);
    }
    if (rc) goto fail;
    free(jj);
    *out = b;
    return ENG_OK;
fail:
    free(jj);
    env_behaviour_free(b);
    return rc;
}

int env_behaviour_fit(env_behaviour **out, const env_grid *g, int n_products, const int32_t *product,
                      const int16_t *j, const int16_t *k, size_t n, const env_behaviour_cfg *cfg) {
    *out = NULL;
    int rc = env_grid_check(g);
    if (rc) return rc;
    if ((rc = env_behaviour_cfg_check(cfg))) return rc;
    if (n_products < 0 || (n && (!product || !j || !k)))
        return eng_err_set(ENG_EINVAL, "behaviour policy: need the logged pairs");
    for (size_t i = 0; i < n; i++)
        if (product[i] < 0 || product[i] >= n_products || j[i] < 0 || j[i] >= g->K || k[i] < 0 || k[i] >= g->K)
            return eng_err_set(ENG_EINVAL, "behaviour policy: pair %zu out of range (product %d, levels %d -> %d, K %d)",
                               i, (int)product[i], (int)j[i], (int)k[i], g->K);
    rows_src src = {g, NULL, NULL, j};
    return fit_common(out, g, n_products, product, &src, k, n, cfg);
}

int env_behaviour_fit_states(env_behaviour **out, const env_grid *g, int n_products, const int32_t *product,
                             const float *state_raw, const float *ref, const int16_t *k, size_t n,
                             const env_behaviour_cfg *cfg) {
    *out = NULL;
    int rc = env_grid_check(g);
    if (rc) return rc;
    if ((rc = env_behaviour_cfg_check(cfg))) return rc;
    if (n_products < 0 || (n && (!product || !state_raw || !ref || !k)))
        return eng_err_set(ENG_EINVAL, "behaviour policy: need the logged rows (product, state, ref, level)");
    for (size_t i = 0; !rc && i < n; i++) {
        if (product[i] < 0 || product[i] >= n_products || k[i] < 0 || k[i] >= g->K)
            rc = eng_err_set(ENG_EINVAL, "behaviour policy: row %zu out of range (product %d of %d, level %d, K %d)", i,
                             (int)product[i], n_products, (int)k[i], g->K);
        else if (!(ref[i] > 0.0f) || !isfinite(ref[i]))
            rc = eng_err_set(ENG_EINVAL, "behaviour policy: row %zu has reference price %g (need > 0)", i,
                             (double)ref[i]);
    }
    if (cfg->over_ranks) rc = eng_par_agree(rc); /* the fit is collective: every rank or none */
    if (rc) return rc;
    rows_src src = {g, state_raw, ref, NULL};
    return fit_common(out, g, n_products, product, &src, k, n, cfg);
}

int env_behaviour_probs_state(const env_behaviour *b, int p, const float *state_raw, double ref, double *probs) {
    if (!b || !probs || !state_raw || p < 0 || p >= b->n_products)
        return eng_err_set(ENG_EINVAL, "behaviour policy: product %d out of range (or NULL argument)", p);
    int j = env_state_level(&b->grid, state_raw, ref);
    if (b->kind == ENV_BEHAV_COUNTS) {
        counts_probs(b, p, j, probs);
        return ENG_OK;
    }
    double x[NX];
    env_behaviour_features(state_raw, ref, x);
    env_bhv_mnl_probs(b, p, x, j, probs);
    return ENG_OK;
}

int env_behaviour_probs(const env_behaviour *b, int p, int j, double *probs) {
    if (!b || !probs || p < 0 || p >= b->n_products || j < 0 || j >= b->K)
        return eng_err_set(ENG_EINVAL, "behaviour policy: product %d / level %d out of range", p, j);
    if (b->kind == ENV_BEHAV_COUNTS) {
        counts_probs(b, p, j, probs);
        return ENG_OK;
    }
    double x[NX], xl[NX];
    memcpy(x, b->xbar + (size_t)p * NX, sizeof x);
    level_features(&b->grid, j, xl);
    x[1] = xl[1], x[2] = xl[2], x[11] = 0.0;
    env_bhv_mnl_probs(b, p, x, j, probs);
    return ENG_OK;
}
