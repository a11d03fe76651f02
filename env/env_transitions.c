/* env_transitions.c - logged transitions and the behaviour policy (see env_transitions.h).
 *
 * Why a smoothed count model for the behaviour policy rather than a multinomial logit:
 * human price setters mostly keep the incumbent price or move it by a step, so the
 * incumbent level is by far the most informative state feature; counts conditioned on it
 * capture that directly, need no iterative fit, and with pooling across products stay
 * usable for products with a handful of periods (60 days in the paper's setting).
 * Every probability is > 0 because the pooled estimate is smoothed towards uniform.
 */
#include "env_transitions.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"

struct env_behaviour {
    int K, n_products;
    double alpha, beta;
    double *pool;       /* [K][K] pooled counts N(j, k) */
    double *pool_row;   /* [K] N(j) */
    int64_t *off;       /* [n_products + 1] into the triples */
    int16_t *tj, *tk;   /* per-product (j, k) pairs, sorted */
    int32_t *tc;        /* counts */
};

env_behaviour_cfg env_behaviour_default(void) {
    env_behaviour_cfg c = {5.0, 1.0};
    return c;
}

void env_behaviour_free(env_behaviour *b) {
    if (!b) return;
    free(b->pool);
    free(b->pool_row);
    free(b->off);
    free(b->tj);
    free(b->tk);
    free(b->tc);
    free(b);
}

typedef struct { int32_t p; int16_t j, k; } triple;

static int cmp_triple(const void *a, const void *b) {
    const triple *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? -1 : 1;
    if (x->j != y->j) return x->j < y->j ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

int env_behaviour_fit(env_behaviour **out, const env_grid *g, int n_products, const int32_t *product,
                      const int16_t *j, const int16_t *k, size_t n, const env_behaviour_cfg *cfg) {
    *out = NULL;
    int rc = env_grid_check(g);
    if (rc) return rc;
    if (!cfg || !(cfg->alpha > 0.0) || !(cfg->beta > 0.0) || n_products < 0 || (n && (!product || !j || !k)))
        return eng_err_set(ENG_EINVAL, "behaviour policy: need alpha > 0, beta > 0 and the logged pairs");
    const int K = g->K;
    triple *tr = NULL;
    env_behaviour *b = eng_calloc(1, sizeof *b);
    if (!b) return ENG_ENOMEM;
    b->K = K;
    b->n_products = n_products;
    b->alpha = cfg->alpha;
    b->beta = cfg->beta;
    b->pool = eng_calloc((size_t)K * K, sizeof(double));
    b->pool_row = eng_calloc((size_t)K, sizeof(double));
    b->off = eng_calloc((size_t)n_products + 1, sizeof(int64_t));
    tr = eng_malloc((n ? n : 1) * sizeof *tr);
    if (!b->pool || !b->pool_row || !b->off || !tr) {
        rc = ENG_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (product[i] < 0 || product[i] >= n_products || j[i] < 0 || j[i] >= K || k[i] < 0 || k[i] >= K) {
            rc = eng_err_set(ENG_EINVAL, "behaviour policy: pair %zu out of range (product %d, levels %d -> %d, K %d)", i,
                             (int)product[i], (int)j[i], (int)k[i], K);
            goto fail;
        }
        tr[i].p = product[i];
        tr[i].j = j[i];
        tr[i].k = k[i];
        b->pool[(size_t)j[i] * K + k[i]] += 1.0;
        b->pool_row[j[i]] += 1.0;
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
        goto fail;
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
    for (int p = 0; p < n_products; p++) b->off[p + 1] += b->off[p];
    free(tr);
    *out = b;
    return ENG_OK;
fail:
    free(tr);
    env_behaviour_free(b);
    return rc;
}

int env_behaviour_probs(const env_behaviour *b, int p, int j, double *probs) {
    if (!b || !probs || p < 0 || p >= b->n_products || j < 0 || j >= b->K)
        return eng_err_set(ENG_EINVAL, "behaviour policy: product %d / level %d out of range", p, j);
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
    return ENG_OK;
}

int env_state_level(const env_grid *g, const float *state_raw, double ref) {
    double pc = state_raw[FEAT_PRICE_CUR];
    if (!(pc > 0.0) || !(ref > 0.0)) return g->K / 2;
    return env_grid_level(g, pc / ref, NULL);
}

/* ---- transitions ------------------------------------------------------------------------ */
env_transitions_cfg env_transitions_default(void) {
    env_transitions_cfg c;
    memset(&c, 0, sizeof c);
    c.grid = env_grid_default();
    c.reward = env_reward_default();
    c.behaviour = env_behaviour_default();
    c.t_begin = 0;
    c.t_end = -1;
    c.norm = NULL;
    return c;
}

void env_transitions_free(env_transitions *tr) {
    if (!tr) return;
    free(tr->product);
    free(tr->t);
    free(tr->state);
    free(tr->next_state);
    free(tr->level);
    free(tr->ratio);
    free(tr->price);
    free(tr->ref_price);
    free(tr->inc_level);
    free(tr->reward);
    free(tr->done);
    free(tr->clipped);
    free(tr->propensity);
    env_behaviour_free(tr->behaviour);
    free(tr);
}

static int usable(const db_history *h, const float *rew, size_t c) {
    return h->present[c] && isfinite(h->price[c]) && h->price[c] > 0.0f && isfinite(rew[c]);
}

int env_transitions_build(const db_history *h, const env_transitions_cfg *cfg, env_transitions **out) {
    *out = NULL;
    if (!h || !cfg) return eng_err_set(ENG_EINVAL, "env_transitions_build: NULL argument");
    int rc;
    if ((rc = env_grid_check(&cfg->grid)) || (rc = env_reward_cfg_check(&cfg->reward))) return rc;
    if (!(cfg->behaviour.alpha > 0.0) || !(cfg->behaviour.beta > 0.0))
        return eng_err_set(ENG_EINVAL, "transitions: behaviour alpha and beta must be > 0");
    const int P = h->n_products, T = h->n_periods, K = cfg->grid.K;
    const int t0 = cfg->t_begin, t1 = cfg->t_end < 0 ? T : cfg->t_end;
    if (t0 < 0 || t1 < t0 || t1 > T)
        return eng_err_set(ENG_EINVAL, "transitions: bad period range [%d, %d) for %d periods", t0, t1, T);
    if (cfg->norm && (rc = feat_layout_check(cfg->norm->n, cfg->norm->layout_hash, "transitions normalisation")))
        return rc;
    size_t cells = (size_t)P * (size_t)T;
    float *rew = eng_malloc((cells ? cells : 1) * sizeof(float));
    double *refs = eng_malloc((P ? (size_t)P : 1) * sizeof(double));
    double *probs = eng_malloc((size_t)K * sizeof(double));
    env_transitions *tr = eng_calloc(1, sizeof *tr);
    if (!rew || !refs || !probs || !tr) {
        rc = ENG_ENOMEM;
        goto fail;
    }
    tr->n_features = FEAT_N;
    tr->K = K;
    size_t n = 0;
    for (int p = 0; p < P; p++) {
        env_reward_info info;
        if ((rc = env_reward_series(h, p, &cfg->reward, rew + (size_t)p * T, &info))) goto fail;
        env_reward_info_add(&tr->reward_info, &info);
        if (env_reference_price(h, p, &refs[p], NULL) != ENG_OK) {
            eng_err_clear();
            refs[p] = NAN;
            tr->n_skipped_no_ref++;
            continue;
        }
        for (int t = t0; t < t1; t++) n += usable(h, rew, (size_t)p * T + t);
    }
    tr->n = n;
    size_t nn = n ? n : 1;
    tr->product = eng_malloc(nn * sizeof(int32_t));
    tr->t = eng_malloc(nn * sizeof(int32_t));
    tr->state = eng_malloc(nn * FEAT_N * sizeof(float));
    tr->next_state = eng_malloc(nn * FEAT_N * sizeof(float));
    tr->level = eng_malloc(nn * sizeof(int16_t));
    tr->ratio = eng_malloc(nn * sizeof(float));
    tr->price = eng_malloc(nn * sizeof(float));
    tr->ref_price = eng_malloc(nn * sizeof(float));
    tr->inc_level = eng_malloc(nn * sizeof(int16_t));
    tr->reward = eng_malloc(nn * sizeof(float));
    tr->done = eng_malloc(nn);
    tr->clipped = eng_malloc(nn);
    tr->propensity = eng_malloc(nn * sizeof(float));
    if (!tr->product || !tr->t || !tr->state || !tr->next_state || !tr->level || !tr->ratio || !tr->price ||
        !tr->ref_price || !tr->inc_level || !tr->reward || !tr->done || !tr->clipped || !tr->propensity) {
        rc = ENG_ENOMEM;
        goto fail;
    }
    size_t i = 0;
    for (int p = 0; p < P; p++) {
        if (!isfinite(refs[p])) continue;
        const size_t base = (size_t)p * T;
        for (int t = t0; t < t1; t++) {
            if (!usable(h, rew, base + t)) continue;
            float *s = tr->state + i * FEAT_N, *s2 = tr->next_state + i * FEAT_N;
            if ((rc = feat_state(h, p, t, s)) || (rc = feat_state(h, p, t + 1, s2))) goto fail;
            int lvl = 0, clip = 0;
            double ratio = 1.0;
            if ((rc = env_grid_map_price(&cfg->grid, h->price[base + t], refs[p], &lvl, &ratio, &clip))) goto fail;
            tr->product[i] = p;
            tr->t[i] = t;
            tr->level[i] = (int16_t)lvl;
            tr->ratio[i] = (float)ratio;
            tr->price[i] = h->price[base + t];
            tr->ref_price[i] = (float)refs[p];
            tr->inc_level[i] = (int16_t)env_state_level(&cfg->grid, s, refs[p]);
            tr->reward[i] = rew[base + t];
            tr->done[i] = !(t + 1 < t1 && usable(h, rew, base + t + 1));
            tr->clipped[i] = (uint8_t)clip;
            tr->n_clipped += clip;
            i++;
        }
    }
    if ((rc = env_behaviour_fit(&tr->behaviour, &cfg->grid, P, tr->product, tr->inc_level, tr->level, n,
                                &cfg->behaviour)))
        goto fail;
    for (i = 0; i < n; i++) {
        if ((rc = env_behaviour_probs(tr->behaviour, tr->product[i], tr->inc_level[i], probs))) goto fail;
        tr->propensity[i] = (float)probs[tr->level[i]];
    }
    if (cfg->norm && ((rc = feat_norm_apply(cfg->norm, tr->state, n)) || (rc = feat_norm_apply(cfg->norm, tr->next_state, n))))
        goto fail;
    free(rew);
    free(refs);
    free(probs);
    *out = tr;
    return ENG_OK;
fail:
    free(rew);
    free(refs);
    free(probs);
    env_transitions_free(tr);
    return rc;
}
