/* ope_fqe.c - Fitted Q Evaluation on the engine's model groups (see ope.h, docs/ope.md).
 *
 * One network per product in one eng_model group; every iteration computes the regression
 * targets of all logged rows from the network as it stands (the frozen target network: the
 * targets are all computed before the iteration's first step, so no copy is needed), and runs
 * `steps` Adam steps of masked Huber/MSE regression on minibatches of the logged rows.  The interval comes
 * from a few complete refits on episodes resampled with replacement. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ope.h"

ope_fqe_cfg ope_fqe_cfg_default(void) {
    ope_fqe_cfg c;
    memset(&c, 0, sizeof c);
    c.seed = 1;
    c.gamma = 0.9;
    c.iterations = 30;
    c.steps = 100;
    c.batch = 128;
    c.n_hidden = 2;
    c.hidden[0] = 64;
    c.hidden[1] = 64;
    c.lr = 1e-3f;
    c.huber_delta = 1.0f;
    c.n_boot = 0;
    c.alpha = 0.05;
    return c;
}

/* ---- Student t quantile (for the refit interval) ------------------------------------------ */

/* P(0 < T < x) for T ~ t_nu, Simpson's rule on the density (x >= 0). */
static double t_half_cdf(double x, double nu) {
    const int m = 2000; /* even */
    double c = exp(lgamma((nu + 1) / 2) - lgamma(nu / 2)) / sqrt(nu * M_PI), h = x / m, s = 0;
    for (int k = 0; k <= m; k++) {
        double u = k * h, f = c * pow(1 + u * u / nu, -(nu + 1) / 2);
        s += f * (k == 0 || k == m ? 1 : (k % 2 ? 4 : 2));
    }
    return s * h / 3;
}

/* Upper 1 - alpha/2 quantile of t_nu, by bisection (nu >= 1). */
static double t_quantile(double alpha, double nu) {
    double lo = 0, hi = 1000, want = 0.5 - alpha / 2;
    for (int it = 0; it < 60; it++) {
        double mid = 0.5 * (lo + hi);
        if (t_half_cdf(mid, nu) < want) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* ---- checks --------------------------------------------------------------------------- */

static int check_probs(const double *pi, int K, const char *what, int p, int i) {
    double s = 0;
    for (int a = 0; a < K; a++) {
        if (!(pi[a] >= 0 && pi[a] <= 1))
            return eng_err_set(ENG_EINVAL, "ope_fqe: product %d row %d: %s[%d] = %g outside [0, 1]", p, i, what, a, pi[a]);
        s += pi[a];
    }
    if (fabs(s - 1) > 1e-6)
        return eng_err_set(ENG_EINVAL, "ope_fqe: product %d row %d: %s sums to %.9g, not 1", p, i, what, s);
    return ENG_OK;
}

static int check_data(const ope_fqe_data *d, const ope_fqe_cfg *c) {
    if (!d || d->P < 1 || d->n < 1 || d->d < 1 || d->K < 0 || d->n0 < 1 || !d->s || !d->s_next || !d->reward || !d->s0)
        return eng_err_set(ENG_EINVAL, "ope_fqe: need P, n, d, n0 >= 1 and s, s_next, reward, s0 (P=%d n=%d d=%d n0=%d)",
                           d ? d->P : 0, d ? d->n : 0, d ? d->d : 0, d ? d->n0 : 0);
    if (d->K > 0 && (!d->action || !d->pi_next || !d->pi0))
        return eng_err_set(ENG_EINVAL, "ope_fqe: discrete actions (K=%d) need action, pi_next and pi0", d->K);
    if (d->K == 0 && (!d->action_cont || !d->target_next || !d->target0))
        return eng_err_set(ENG_EINVAL, "ope_fqe: continuous actions need action_cont, target_next and target0");
    if (!c || !(c->gamma >= 0 && c->gamma < 1) || c->iterations < 1 || c->steps < 1 || c->batch < 1 ||
        c->n_hidden < 1 || c->n_hidden > ENG_MAX_LAYERS - 1 || !(c->lr > 0) || !(c->huber_delta >= 0) ||
        c->n_boot < 0 || c->n_boot == 1 || !(c->alpha > 0 && c->alpha < 1))
        return eng_err_set(ENG_EINVAL,
                           "ope_fqe: bad configuration (gamma in [0,1), iterations/steps/batch >= 1, 1..%d hidden "
                           "layers, lr > 0, huber_delta >= 0, n_boot 0 or >= 2, alpha in (0,1))",
                           ENG_MAX_LAYERS - 1);
    for (int h = 0; h < c->n_hidden; h++)
        if (c->hidden[h] < 1) return eng_err_set(ENG_EINVAL, "ope_fqe: hidden layer %d has size %d", h, c->hidden[h]);
    const int P = d->P, n = d->n, dd = d->d, K = d->K;
    for (int p = 0; p < P; p++) {
        int nv = 0;
        for (int i = 0; i < n; i++) {
            size_t r = (size_t)p * n + i;
            if (d->valid && !d->valid[r]) continue;
            nv++;
            if (!isfinite(d->reward[r])) return eng_err_set(ENG_EINVAL, "ope_fqe: product %d row %d: reward not finite", p, i);
            for (int j = 0; j < dd; j++)
                if (!isfinite(d->s[r * dd + j]) || !isfinite(d->s_next[r * dd + j]))
                    return eng_err_set(ENG_EINVAL, "ope_fqe: product %d row %d: state feature %d not finite", p, i, j);
            int st;
            if (K > 0) {
                if (d->action[r] < 0 || d->action[r] >= K)
                    return eng_err_set(ENG_EINVAL, "ope_fqe: product %d row %d: action %d outside 0..%d", p, i, d->action[r], K - 1);
                if ((st = check_probs(d->pi_next + r * K, K, "pi_next", p, i))) return st;
            } else if (!isfinite(d->action_cont[r]) || !isfinite(d->target_next[r])) {
                return eng_err_set(ENG_EINVAL, "ope_fqe: product %d row %d: action not finite", p, i);
            }
        }
        if (nv == 0) return eng_err_set(ENG_EINVAL, "ope_fqe: product %d has no valid rows", p);
        for (int j = 0; j < d->n0; j++) {
            size_t r = (size_t)p * d->n0 + j;
            for (int k = 0; k < dd; k++)
                if (!isfinite(d->s0[r * dd + k]))
                    return eng_err_set(ENG_EINVAL, "ope_fqe: product %d initial state %d: feature %d not finite", p, j, k);
            int st;
            if (K > 0 && (st = check_probs(d->pi0 + r * K, K, "pi0", p, j))) return st;
            if (K == 0 && !isfinite(d->target0[r]))
                return eng_err_set(ENG_EINVAL, "ope_fqe: product %d initial state %d: target action not finite", p, j);
        }
    }
    return ENG_OK;
}

/* ---- one fit ---------------------------------------------------------------------------- */

/* Row sample of one fit: rows[p][0..cnt[p]-1] (with repetitions under the bootstrap) and
 * initial states s0idx[p][0..n0-1]. */
typedef struct fit_sample {
    int **rows;
    int *cnt;
    int *s0idx; /* [P][n0] */
} fit_sample;

/* Network input of row (p, i) at state s (len d) and continuous action a. */
static void put_input(float *dst, const float *s, int d, int K, float a) {
    memcpy(dst, s, (size_t)d * sizeof *dst);
    if (K == 0) dst[d] = a;
}

size_t ope_fqe_nparams(int d, int K, const ope_fqe_cfg *cfg) {
    if (!cfg || d < 1 || K < 0 || cfg->n_hidden < 1 || cfg->n_hidden > ENG_MAX_LAYERS - 1) return 0;
    size_t n = 0;
    int prev = d + (K == 0);
    for (int h = 0; h <= cfg->n_hidden; h++) {
        int next = h < cfg->n_hidden ? cfg->hidden[h] : (K > 0 ? K : 1);
        if (next < 1) return 0;
        n += (size_t)prev * next + (size_t)next;
        prev = next;
    }
    return n;
}

/* Fit once on sample `sm`; value_out[P] in reward units.  warm = 1: the main fit (start from
 * c->init_params and return c->final_params when set); 0: a bootstrap refit (fresh). */
static int fit_once(const ope_fqe_data *d, const ope_fqe_cfg *c, const eng_backend *be, const fit_sample *sm,
                    uint64_t seed, double *value_out, int warm) {
    const int P = d->P, n = d->n, dd = d->d, K = d->K, in = dd + (K == 0), out = K > 0 ? K : 1;
    const double g = c->gamma;
    int st = ENG_OK;
    eng_model *q = NULL;
    float *X = NULL, *Y = NULL, *T = NULL, *W = NULL, *ytar = NULL;
    double *scale = NULL;
    int chunk = c->batch;
    int sizes[ENG_MAX_LAYERS + 1];
    sizes[0] = in;
    for (int h = 0; h < c->n_hidden; h++) sizes[h + 1] = c->hidden[h];
    sizes[c->n_hidden + 1] = out;
    eng_arch arch;
    if ((st = eng_arch_mlp(&arch, sizes, c->n_hidden + 2, ENG_ACT_RELU, ENG_ACT_IDENTITY))) return st;
    if ((st = eng_model_create(&q, be, &arch, P, seed))) goto cleanup;
    if (warm && c->init_params) {
        if (eng_model_nparams(q) != ope_fqe_nparams(d->d, K, c)) {
            st = eng_err_set(ENG_EINVAL, "ope_fqe: warm-start parameters of another shape");
            goto cleanup;
        }
        if ((st = eng_model_set(q, ENG_VIEW_PARAMS, c->init_params))) goto cleanup;
    }
    X = eng_malloc((size_t)P * chunk * in * sizeof *X);
    Y = eng_malloc((size_t)P * chunk * out * sizeof *Y);
    T = eng_calloc((size_t)P * chunk * out, sizeof *T);
    W = eng_calloc((size_t)P * chunk * out, sizeof *W);
    ytar = eng_malloc((size_t)P * n * sizeof *ytar);
    scale = eng_malloc((size_t)P * sizeof *scale);
    if (!X || !Y || !T || !W || !ytar || !scale) { st = ENG_ENOMEM; goto cleanup; }

    /* reward scale per product: mean |r| over the sample (1 when all rewards are 0) */
    for (int p = 0; p < P; p++) {
        double s = 0;
        for (int k = 0; k < sm->cnt[p]; k++) s += fabs(d->reward[(size_t)p * n + sm->rows[p][k]]);
        s /= sm->cnt[p];
        scale[p] = s > 0 ? s : 1.0;
    }
    eng_rng rng;
    eng_rng_seed(&rng, eng_seed_derive(seed, 0x6671656dULL));
    eng_adam_cfg adam = eng_adam_default();
    adam.lr = c->lr;
    adam.clip_norm = 10.0f;
    eng_loss kind = c->huber_delta > 0 ? ENG_LOSS_HUBER : ENG_LOSS_MSE;

    for (int it = 0; it < c->iterations; it++) {
        /* targets of all rows from the frozen network (q before this iteration's steps: every
         * target is computed before the first step, so q itself serves, without a copy), chunk
         * rows of every product at once */
        for (int i0 = 0; i0 < n; i0 += chunk) {
            int b = n - i0 < chunk ? n - i0 : chunk;
            for (int p = 0; p < P; p++)
                for (int k = 0; k < b; k++) {
                    size_t r = (size_t)p * n + i0 + k;
                    put_input(X + ((size_t)p * b + k) * in, d->s_next + r * dd, dd, K, K == 0 ? d->target_next[r] : 0.0f);
                }
            if ((st = eng_model_forward(q, X, b, Y))) goto cleanup;
            for (int p = 0; p < P; p++)
                for (int k = 0; k < b; k++) {
                    size_t r = (size_t)p * n + i0 + k;
                    const float *y = Y + ((size_t)p * b + k) * out;
                    double v = 0;
                    if (K > 0)
                        for (int a = 0; a < K; a++) v += d->pi_next[r * K + a] * y[a];
                    else
                        v = y[0];
                    if (d->done && d->done[r]) v = 0;
                    ytar[r] = (float)((1 - g) * d->reward[r] / scale[p] + g * v);
                }
        }
        /* regression on minibatches of the sample */
        int b = chunk;
        for (int step = 0; step < c->steps; step++) {
            for (int p = 0; p < P; p++)
                for (int k = 0; k < b; k++) {
                    int i = sm->rows[p][eng_rng_below(&rng, (uint64_t)sm->cnt[p])];
                    size_t r = (size_t)p * n + i, o = ((size_t)p * b + k) * out;
                    put_input(X + ((size_t)p * b + k) * in, d->s + r * dd, dd, K, K == 0 ? d->action_cont[r] : 0.0f);
                    if (K > 0) {
                        memset(W + o, 0, (size_t)K * sizeof *W);
                        W[o + d->action[r]] = 1.0f;
                        T[o + d->action[r]] = ytar[r];
                    } else {
                        W[o] = 1.0f;
                        T[o] = ytar[r];
                    }
                }
            if ((st = eng_model_forward(q, X, b, NULL))) goto cleanup;
            if ((st = eng_model_zero_grad(q))) goto cleanup;
            if ((st = eng_model_loss_backward(q, kind, c->huber_delta, T, W, NULL))) goto cleanup;
            if ((st = eng_model_adam_step(q, &adam, NULL, NULL))) goto cleanup;
        }
    }
    int bad = eng_model_check_finite(q, NULL);
    if (bad < 0) { st = bad; goto cleanup; }
    if (bad > 0) {
        st = eng_err_set(ENG_ENUM, "ope_fqe: %d of %d products' Q networks diverged (lower lr or gamma)", bad, P);
        goto cleanup;
    }
    if (warm && c->final_params && (st = eng_model_get(q, ENG_VIEW_PARAMS, c->final_params))) goto cleanup;
    /* value: mean over the sample's initial states of the target's Q */
    for (int p = 0; p < P; p++) value_out[p] = 0;
    for (int j0 = 0; j0 < d->n0; j0 += chunk) {
        int b = d->n0 - j0 < chunk ? d->n0 - j0 : chunk;
        for (int p = 0; p < P; p++)
            for (int k = 0; k < b; k++) {
                size_t r = (size_t)p * d->n0 + sm->s0idx[(size_t)p * d->n0 + j0 + k];
                put_input(X + ((size_t)p * b + k) * in, d->s0 + r * dd, dd, K, K == 0 ? d->target0[r] : 0.0f);
            }
        if ((st = eng_model_forward(q, X, b, Y))) goto cleanup;
        for (int p = 0; p < P; p++)
            for (int k = 0; k < b; k++) {
                size_t r = (size_t)p * d->n0 + sm->s0idx[(size_t)p * d->n0 + j0 + k];
                const float *y = Y + ((size_t)p * b + k) * out;
                double v = 0;
                if (K > 0)
                    for (int a = 0; a < K; a++) v += d->pi0[r * K + a] * y[a];
                else
                    v = y[0];
                value_out[p] += v;
            }
    }
    for (int p = 0; p < P; p++) value_out[p] = value_out[p] / d->n0 * scale[p] / (1 - g);

cleanup:
    eng_model_free(q);
    free(X);
    free(Y);
    free(T);
    free(W);
    free(ytar);
    free(scale);
    return st;
}

/* ---- episodes for the bootstrap ----------------------------------------------------------- */

typedef struct ep_row { int ep, row; } ep_row;
static int cmp_ep_row(const void *a, const void *b) {
    const ep_row *x = a, *y = b;
    if (x->ep != y->ep) return (x->ep > y->ep) - (x->ep < y->ep);
    return (x->row > y->row) - (x->row < y->row);
}

/* Resample the episodes of product p with replacement into rows/cnt (rows grown as needed).
 * order[]: the product's valid rows sorted by episode; ep_start[0..ne]: group offsets. */
static int resample_rows(eng_rng *rng, const int *order, const int *ep_start, int ne, int **rows, int *cnt, int *cap) {
    *cnt = 0;
    for (int e = 0; e < ne; e++) {
        int pick = (int)eng_rng_below(rng, (uint64_t)ne), len = ep_start[pick + 1] - ep_start[pick];
        if (*cnt + len > *cap) {
            int nc = 2 * (*cnt + len);
            int *nr = realloc(*rows, (size_t)nc * sizeof **rows);
            if (!nr) return eng_err_set(ENG_ENOMEM, "ope_fqe: out of memory resampling episodes");
            *rows = nr, *cap = nc;
        }
        memcpy(*rows + *cnt, order + ep_start[pick], (size_t)len * sizeof **rows);
        *cnt += len;
    }
    return ENG_OK;
}

int ope_fqe_estimate(const ope_fqe_data *d, const ope_fqe_cfg *c, const eng_backend *be, ope_result *out) {
    if (!out) return eng_err_set(ENG_EINVAL, "ope_fqe_estimate: NULL result");
    int st = check_data(d, c);
    if (st) return st;
    if (!be) be = eng_backend_cpu();
    const int P = d->P, n = d->n, n0 = d->n0, B = c->n_boot;
    fit_sample sm = {0};
    int *cap = NULL, **order = NULL, **ep_start = NULL, *ne = NULL;
    double *val = NULL, *boot = NULL;
    sm.rows = eng_calloc((size_t)P, sizeof *sm.rows);
    sm.cnt = eng_calloc((size_t)P, sizeof *sm.cnt);
    sm.s0idx = eng_malloc((size_t)P * n0 * sizeof *sm.s0idx);
    cap = eng_calloc((size_t)P, sizeof *cap);
    order = eng_calloc((size_t)P, sizeof *order);
    ep_start = eng_calloc((size_t)P, sizeof *ep_start);
    ne = eng_calloc((size_t)P, sizeof *ne);
    val = eng_malloc((size_t)P * sizeof *val);
    boot = eng_malloc((size_t)(B > 0 ? B : 1) * P * sizeof *boot);
    if (!sm.rows || !sm.cnt || !sm.s0idx || !cap || !order || !ep_start || !ne || !val || !boot) { st = ENG_ENOMEM; goto cleanup; }

    /* the full sample: every valid row once, every initial state once */
    for (int p = 0; p < P; p++) {
        sm.rows[p] = eng_malloc((size_t)n * sizeof **sm.rows);
        order[p] = eng_malloc((size_t)n * sizeof **order);
        ep_start[p] = eng_malloc(((size_t)n + 1) * sizeof **ep_start);
        if (!sm.rows[p] || !order[p] || !ep_start[p]) { st = ENG_ENOMEM; goto cleanup; }
        cap[p] = n;
        for (int i = 0; i < n; i++)
            if (!d->valid || d->valid[(size_t)p * n + i]) sm.rows[p][sm.cnt[p]++] = i;
        for (int j = 0; j < n0; j++) sm.s0idx[(size_t)p * n0 + j] = j;
        /* episode groups (each row its own episode when d->episode is NULL) */
        int m = sm.cnt[p];
        memcpy(order[p], sm.rows[p], (size_t)m * sizeof **order);
        if (d->episode) {
            ep_row *er = eng_malloc((size_t)m * sizeof *er);
            if (!er) { st = ENG_ENOMEM; goto cleanup; }
            for (int k = 0; k < m; k++) er[k] = (ep_row){d->episode[(size_t)p * n + order[p][k]], order[p][k]};
            qsort(er, (size_t)m, sizeof *er, cmp_ep_row);
            for (int k = 0; k < m; k++) order[p][k] = er[k].row;
            free(er);
        }
        ne[p] = 0;
        for (int k = 0; k < m; k++)
            if (k == 0 || !d->episode || d->episode[(size_t)p * n + order[p][k]] != d->episode[(size_t)p * n + order[p][k - 1]])
                ep_start[p][ne[p]++] = k;
        ep_start[p][ne[p]] = m;
    }
    if ((st = fit_once(d, c, be, &sm, eng_seed_derive(c->seed, 0), val, 1))) goto cleanup;

    eng_rng rng;
    eng_rng_seed(&rng, eng_seed_derive(c->seed, 0x626f6f74ULL));
    for (int b = 0; b < B; b++) {
        for (int p = 0; p < P; p++) {
            if ((st = resample_rows(&rng, order[p], ep_start[p], ne[p], &sm.rows[p], &sm.cnt[p], &cap[p]))) goto cleanup;
            for (int j = 0; j < n0; j++) sm.s0idx[(size_t)p * n0 + j] = (int)eng_rng_below(&rng, (uint64_t)n0);
        }
        if ((st = fit_once(d, c, be, &sm, eng_seed_derive(c->seed, (uint64_t)b + 1), boot + (size_t)b * P, 0))) goto cleanup;
    }

    ope_config oc = ope_config_default();
    oc.n_boot = B;
    oc.alpha = c->alpha;
    oc.gamma = c->gamma;
    double tq = B >= 2 ? t_quantile(c->alpha, B - 1) : NAN;
    for (int p = 0; p < P; p++) {
        ope_result_init(&out[p], &oc, ne[p]);
        ope_value *v = &out[p].v[OPE_FQE];
        v->available = 1;
        v->estimate = val[p];
        v->n_used = sm.cnt[p];
        if (B >= OPE_FQE_PERCENTILE_MIN_BOOT) {
            /* enough refits for the percentile interval every other estimator reports */
            double *col = eng_malloc((size_t)B * sizeof *col);
            if (!col) { st = ENG_ENOMEM; goto cleanup; }
            for (int b = 0; b < B; b++) col[b] = boot[(size_t)b * P + p];
            ope_boot_summary(col, B, c->alpha, &v->ci_low, &v->ci_high, &v->boot_se);
            free(col);
            snprintf(v->note, sizeof v->note, "interval: percentile of %d episode-resample refits; model bias not covered", B);
        } else if (B >= 2) {
            double s = 0, s2 = 0;
            for (int b = 0; b < B; b++) s += boot[(size_t)b * P + p];
            double mean = s / B;
            for (int b = 0; b < B; b++) s2 += (boot[(size_t)b * P + p] - mean) * (boot[(size_t)b * P + p] - mean);
            v->boot_se = sqrt(s2 / (B - 1));
            v->ci_low = val[p] - tq * v->boot_se;
            v->ci_high = val[p] + tq * v->boot_se;
            snprintf(v->note, sizeof v->note, "interval: estimate +- t(%d) sd of %d episode-resample refits; model bias not covered",
                     B - 1, B);
        } else {
            snprintf(v->note, sizeof v->note, "no interval (n_boot = 0); gamma %g, %d iterations", c->gamma, c->iterations);
        }
        out[p].recommended = OPE_FQE;
        out[p].q_source = "fqe";
    }

cleanup:
    if (sm.rows)
        for (int p = 0; p < P; p++) free(sm.rows[p]);
    if (order)
        for (int p = 0; p < P; p++) free(order[p]);
    if (ep_start)
        for (int p = 0; p < P; p++) free(ep_start[p]);
    free(sm.rows);
    free(sm.cnt);
    free(sm.s0idx);
    free(cap);
    free(order);
    free(ep_start);
    free(ne);
    free(val);
    free(boot);
    return st;
}
