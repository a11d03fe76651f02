/* exp_compare_agents.c - how the comparison's DQN and DDPG learn (docs/compare.md, "Agents that
 * learn to price"): the cross-product agent state and reward scale, the validation rows and
 * early stopping, the shared networks trained on every product's rows and copied into each
 * product's slot, the support constraints on the chosen price, and the distance of a price
 * from the logged support. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agt_early.h"
#include "eng_par.h"
#include "eng_rng.h"
#include "eng_util.h"
#include "exp_compare_int.h"

#define CMP_VAL_CAP 4096 /* most validation rows per slot */

/* 1 when training row r is held out for early stopping: a seeded draw per (product, period),
 * so the split does not depend on which other products are in the run. */
static int draw_val(const cmp_ctx *c, size_t r) {
    if (!(c->cfg->val_frac > 0) || !cmp_is_learn(c, r)) return 0;
    uint64_t z = eng_seed_derive(eng_seed_derive(c->cfg->seed ^ 0x7A1Du, (uint64_t)c->tr->product[r]), (uint64_t)c->tr->t[r]);
    return (double)(z >> 11) * 0x1.0p-53 < c->cfg->val_frac;
}

void cmp_agents_free_stats(cmp_ctx *c) {
    for (int v = 0; v < 1 + c->split; v++) { /* without a split av[1] holds av[0]'s pointers */
        cmp_aview *a = &c->av[v];
        free(a->ast); free(a->anx); free(a->ap); free(a->dyb); free(a->dyc); free(a->um);
    }
    for (int v = 0; v < 2; v++) c->av[v].ast = c->av[v].anx = NULL, c->av[v].ap = NULL, c->av[v].dyb = NULL, c->av[v].dyc = NULL, c->av[v].um = NULL;
    free(c->rscale); free(c->val); free(c->lvl_count);
    free(c->lo_ratio); free(c->hi_ratio); free(c->refp);
    c->rscale = c->lo_ratio = c->hi_ratio = NULL;
    c->val = NULL, c->lvl_count = NULL, c->refp = NULL;
}

void cmp_agents_free(cmp_ctx *c) {
    cmp_agents_free_stats(c);
    free(c->sh_dqn); free(c->sh_actor); free(c->sh_critic);
    free(c->ens_dqn);
    free(c->ens_actor);
    free(c->ens_critic);
    c->ens_dqn = NULL, c->ens_actor = NULL, c->ens_critic = NULL, c->ens_n = 0;
    agt_dqn_free(c->sh_agt_dqn);
    agt_ddpg_free(c->sh_agt_ddpg);
    c->sh_agt_dqn = NULL;
    c->sh_agt_ddpg = NULL;
    c->sh_dqn = c->sh_actor = c->sh_critic = NULL;
}

/* The model-based rewards' base of product p's rows in view a (a->dyb): reward - observed rate of the
 * priced period, i.e. minus the rate the reward compares with (drcr) or 0 (rcr), so that a
 * price's reward under the model is its model rate + dyb.  Only where the model's units match
 * the reward's: a conversion model needs traffic on every training row, a units model none
 * (the proxy1 fallback, revenue per period); otherwise NaN for the whole product. */
static void dyna_base(cmp_ctx *c, cmp_aview *a, int p, const float *raw, const float *raw2) {
    const size_t b = c->off[p], e = c->off[p + 1];
    const feat_agent_prod *pp = &a->ap[p];
    int ok = pp->mok;
    for (size_t r = b; r < e && ok; r++) {
        if (!cmp_is_learn(c, r) || c->val[r]) continue;
        const double v = raw2[(r - b) * FEAT_N + FEAT_TRAFFIC_1];
        if (pp->mlogit ? !(v > 0) : v > 0) ok = 0;
    }
    for (size_t r = b; r < e; r++) {
        const float *y = raw2 + (r - b) * FEAT_N;
        const double rate = pp->mlogit ? y[FEAT_REVENUE_1] / y[FEAT_TRAFFIC_1] : y[FEAT_REVENUE_1];
        a->dyb[r] = ok && isfinite(rate) && isfinite(c->tr->reward[r]) ? (double)c->tr->reward[r] - rate : NAN;
        const feat_demand_ctx x = feat_agent_model_ctx(pp, raw + (r - b) * FEAT_N, y);
        a->dyc[2 * r] = (float)x.comp, a->dyc[2 * r + 1] = (float)x.lag;
        if (a->um) /* compare.dqn_uplift: the rate the DQN's targets are measured from */
            a->um[r] = isfinite(a->dyb[r]) ? feat_agent_state_rate(pp, a->ast + r * a->SA) : NAN;
    }
}

/* Agent states of product p's transitions (rows off[p] .. off[p+1]-1) and its statistics;
 * raw, raw2 are scratch of (rows) x FEAT_N floats, pr of rows floats. */
static int prep_agent_states(cmp_ctx *c, int p, float *raw, float *raw2, float *pr) {
    const env_transitions *tr = c->tr;
    const size_t b = c->off[p], e = c->off[p + 1];
    size_t k = 0;
    int rc;
    for (size_t r = b; r < e; r++) {
        if ((rc = feat_state(c->h, p, tr->t[r], raw + (r - b) * FEAT_N)) ||
            (rc = feat_state(c->h, p, tr->t[r] + 1 <= c->T ? tr->t[r] + 1 : c->T, raw2 + (r - b) * FEAT_N)))
            return rc;
    }
    /* statistics and the demand model from every training row the agents may learn from, the
     * validation rows included (early stopping's rows are real rows; leaving a fifth of a
     * product's ~96 training days out of its demand model cost the model-based rows more than
     * the small optimism it gives the validation loss) */
    float *ts = malloc((e - b) * FEAT_N * sizeof *ts), *ts2 = malloc((e - b) * FEAT_N * sizeof *ts2);
    if ((e > b) && (!ts || !ts2)) {
        free(ts);
        free(ts2);
        return eng_err_set(ENG_ENOMEM, "compare: out of memory (agent states)");
    }
    for (size_t r = b; r < e; r++) {
        if (!cmp_is_learn(c, r)) continue;
        memcpy(ts + k * FEAT_N, raw + (r - b) * FEAT_N, FEAT_N * sizeof *ts);
        memcpy(ts2 + k * FEAT_N, raw2 + (r - b) * FEAT_N, FEAT_N * sizeof *ts2);
        pr[k++] = tr->price[r];
    }
    /* the agents' slope prior: none (demand_pool 0, 1), the pooled one (2), its centre at the weak
     * width (3); each view its own (the DQN's, and DDPG's when split) */
    feat_demand_prior cen;
    feat_demand_prior_centre(&c->cfg->demand_prior, FEAT_DEMAND_WEAK_SD, &cen);
    rc = ENG_OK;
    for (int v = 0; !rc && v < 1 + c->split; v++) {
        cmp_aview *a = &c->av[v];
        const int dp = a->demand_pool;
        rc = feat_agent_prod_fit_ex(&a->ap[p], ts, ts2, pr, k, isfinite(c->refp[p]) ? c->refp[p] : 1.0, 5.0,
                                    dp == 2 ? &c->cfg->demand_prior : dp == 3 ? &cen : NULL, c->cfg->dyna_memory);
        if (rc) break;
        a->ap[p].desc = c->cfg->agent_desc; /* the states' descriptors (feat_agent.h) */
        cmp_agent_best_setup(c, a, p);      /* ... and best-price slots (compare.agent_best) */
        for (size_t r = b; r < e; r++) {
            feat_agent_state(raw + (r - b) * FEAT_N, &a->ap[p], a->ast + r * a->SA);
            feat_agent_state(raw2 + (r - b) * FEAT_N, &a->ap[p], a->anx + r * a->SA);
        }
        if (a->dyb) dyna_base(c, a, p, raw, raw2);
    }
    free(ts);
    free(ts2);
    return rc;
}

int cmp_agents_prepare(cmp_ctx *c) {
    const env_transitions *tr = c->tr;
    const int NP = c->h->n_products, K = c->K;
    int rc = ENG_ENOMEM;
    float *raw = NULL, *raw2 = NULL, *pr = NULL;
    cmp_view_split(c);
    c->rscale = malloc((size_t)NP * sizeof *c->rscale);
    c->val = calloc(tr->n ? tr->n : 1, 1);
    c->lvl_count = calloc((size_t)NP * K, sizeof *c->lvl_count);
    c->lo_ratio = malloc((size_t)NP * sizeof *c->lo_ratio);
    c->hi_ratio = malloc((size_t)NP * sizeof *c->hi_ratio);
    c->refp = malloc((size_t)NP * sizeof *c->refp);
    if (!c->rscale || !c->val || !c->lvl_count || !c->lo_ratio || !c->hi_ratio || !c->refp) goto fail;
    size_t maxrows = 0;
    for (int p = 0; p < NP; p++) {
        double s = 0, s2 = 0;
        long n = 0, ntr = 0;
        c->lo_ratio[p] = NAN, c->hi_ratio[p] = NAN, c->refp[p] = NAN;
        if (c->off[p + 1] - c->off[p] > maxrows) maxrows = c->off[p + 1] - c->off[p];
        for (size_t r = c->off[p]; r < c->off[p + 1]; r++) ntr += cmp_is_learn(c, r);
        for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
            c->refp[p] = tr->ref_price[r];
            if (!cmp_is_learn(c, r)) continue;
            c->val[r] = ntr >= 10 && draw_val(c, r);
            c->lvl_count[(size_t)p * K + tr->level[r]]++;
            float x = tr->ratio[r];
            if (!(x >= c->lo_ratio[p])) c->lo_ratio[p] = x;
            if (!(x <= c->hi_ratio[p])) c->hi_ratio[p] = x;
            s += tr->reward[r], s2 += (double)tr->reward[r] * tr->reward[r], n++;
        }
        double var = n > 1 ? (s2 - s * s / n) / (n - 1) : 0;
        c->rscale[p] = c->cfg->agent_state && var > 0 ? (float)sqrt(var) : 1.0f;
    }
    if (c->cfg->agent_state) {
        const int dy = cmp_model_rows_on(c->cfg);
        const size_t n1 = tr->n ? tr->n : 1;
        for (int v = 0; v < 1 + c->split; v++) {
            cmp_aview *a = &c->av[v];
            a->ap = calloc((size_t)NP, sizeof *a->ap);
            a->ast = malloc(n1 * a->SA * sizeof *a->ast);
            a->anx = malloc(n1 * a->SA * sizeof *a->anx);
            if (!a->ap || !a->ast || !a->anx) goto fail;
            if (dy && (!(a->dyb = malloc(n1 * sizeof *a->dyb)) || !(a->dyc = malloc(n1 * 2 * sizeof *a->dyc)))) goto fail;
        }
        /* the DQN's uplift targets (compare.dqn_uplift): only for a one-day decision (a baseline
         * that moves with the price would change a discounted return) */
        if (cmp_dqn_uplift_on(c->cfg) && !(c->av[0].um = malloc(n1 * sizeof *c->av[0].um)))
            goto fail;
        if (dy && c->cfg->dqn_uplift && !c->av[0].um)
            ENG_INFO("compare: compare.dqn_uplift needs dqn.gamma 0 (it is %g): the DQN learns the logged reward",
                     (double)c->cfg->dqn.gamma);
        if (!c->split) /* one view: DDPG reads the DQN's (owned by av[0]) */
            c->av[1].ap = c->av[0].ap, c->av[1].ast = c->av[0].ast, c->av[1].anx = c->av[0].anx,
            c->av[1].dyb = c->av[0].dyb, c->av[1].dyc = c->av[0].dyc;
        raw = malloc((maxrows + 1) * FEAT_N * sizeof *raw);
        raw2 = malloc((maxrows + 1) * FEAT_N * sizeof *raw2);
        pr = malloc((maxrows + 1) * sizeof *pr);
        if (!raw || !raw2 || !pr) goto fail;
        for (int p = 0; p < NP; p++)
            if ((rc = prep_agent_states(c, p, raw, raw2, pr))) goto done;
    }
    rc = ENG_OK;
    goto done;
fail:
    rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (agent statistics)");
done:
    free(raw);
    free(raw2);
    free(pr);
    return rc;
}

int cmp_agent_states(const cmp_ctx *c, int p, int B, float *xq, float *xd) {
    int rc;
    if (!c->cfg->agent_state) {
        if ((rc = feat_states(c->h, p, 0, B, xq))) return rc;
        return feat_norm_apply(&c->norm, xq, (size_t)B);
    }
    const cmp_aview *q = &c->av[0], *d = &c->av[1];
    float raw[FEAT_N];
    for (int t = 0; t < B; t++) {
        if ((rc = feat_state(c->h, p, t, raw))) return rc;
        feat_agent_state(raw, &q->ap[p], xq + (size_t)t * q->SA);
        if (xd) feat_agent_state(raw, &d->ap[p], xd + (size_t)t * d->SA);
    }
    return ENG_OK;
}

/* ---- support ------------------------------------------------------------------------------ */

int cmp_dqn_pick(const cmp_ctx *c, int p, const float *q) {
    const int K = c->K, mode = c->cfg->dqn_support;
    const int *cnt = c->lvl_count + (size_t)p * K;
    int lo = K, hi = -1, best = -1;
    for (int k = 0; k < K; k++)
        if (cnt[k] > 0) lo = k < lo ? k : lo, hi = k;
    for (int k = 0; k < K; k++) {
        const int w = c->cfg->support_steps;
        int ok = mode == 0 || cnt[k] > 0 || (mode == 2 && k >= lo - w && k <= hi + w);
        if (ok && (best < 0 || q[k] > q[best])) best = k;
    }
    if (best >= 0) return best;
    best = 0; /* nothing logged in training: every level */
    for (int k = 1; k < K; k++)
        if (q[k] > q[best]) best = k;
    return best;
}

float cmp_support_gap(const cmp_ctx *c, int p, double x) {
    if (!isfinite(c->refp[p]) || !(c->refp[p] > 0) || !(x > 0)) return NAN;
    const double step = 2.0 * c->cfg->grid.band / (c->K - 1), u = x / c->refp[p];
    double best = INFINITY;
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
        if (!cmp_is_learn(c, r)) continue;
        double d = fabs(u - (double)c->tr->price[r] / c->refp[p]);
        if (d < best) best = d;
    }
    return isfinite(best) ? (float)(best / step) : NAN;
}

/* ---- creating and training the networks ----------------------------------------------------- */

static long group_rows(const cmp_ctx *c, const cmp_group *g, long *max_rows) {
    long n = 0, mx = 1;
    for (int i = 0; i < g->n; i++) {
        long k = 0;
        for (size_t r = c->off[g->prod[i]]; r < c->off[g->prod[i] + 1]; r++) k += cmp_is_learn(c, r) && !c->val[r];
        n += k;
        if (k > mx) mx = k;
    }
    *max_rows = mx;
    return n;
}

static int create_agents(cmp_ctx *c, cmp_group *g, const uint64_t *keys, int batch) {
    const exp_compare_cfg *cfg = c->cfg;
    long max_rows, n_rows = group_rows(c, g, &max_rows);
    /* replay capacity: every training row fits, no more (the buffers are [P][capacity]) */
    if (g->pooled && c->av[0].dyb) n_rows += cmp_dyna_rows(c, n_rows); /* room for the model-based rows */
    long cap = g->pooled ? (n_rows > 0 ? n_rows : 1) : max_rows;
    agt_dqn_cfg dq = cfg->dqn;
    dq.state_dim = c->av[0].SA;
    dq.n_actions = c->K;
    dq.seed = eng_seed_derive(cfg->seed, 1001);
    dq.keys = keys;
    if (batch > 0) dq.batch = batch;
    if (dq.replay > cap || g->pooled) dq.replay = cap;
    agt_ddpg_cfg dd = cfg->ddpg;
    dd.state_dim = c->av[1].SA;
    dd.band = (float)cmp_ddpg_band(cfg);
    dd.seed = eng_seed_derive(cfg->seed, 1002);
    dd.keys = keys;
    if (batch > 0) dd.batch = batch;
    if (dd.replay > cap || g->pooled) dd.replay = cap;
    int rc = agt_dqn_create(&g->dqn, c->be, &dq, g->P);
    return rc ? rc : agt_ddpg_create(&g->ddpg, c->be, &dd, g->P);
}

int cmp_group_create_shared(cmp_ctx *c, cmp_group *g, uint64_t key) {
    return create_agents(c, g, &key, c->cfg->shared_batch);
}

int cmp_group_create_agents(cmp_ctx *c, cmp_group *g, const uint64_t *keys) {
    int rc = create_agents(c, g, keys, 0);
    if (rc || !c->sh_dqn) return rc;
    return cmp_group_set_shared(c, g);
}

int cmp_group_set_shared(cmp_ctx *c, cmp_group *g) {
    int rc;
    if (!c->sh_dqn) return ENG_OK;
    for (int s = 0; s < g->P; s++) {
        if ((rc = eng_model_set_product(agt_dqn_online(g->dqn), ENG_VIEW_PARAMS, s, c->sh_dqn)) ||
            (rc = eng_model_set_product(agt_ddpg_actor(g->ddpg), ENG_VIEW_PARAMS, s, c->sh_actor)) ||
            (rc = eng_model_set_product(agt_ddpg_critic(g->ddpg), ENG_VIEW_PARAMS, s, c->sh_critic)))
            return rc;
    }
    if ((rc = agt_dqn_sync_target(g->dqn))) return rc;
    return agt_ddpg_sync_targets(g->ddpg);
}

/* Validation rows of a group: [P][Bv] arrays (weight 0 pads). */
typedef struct cmp_val {
    int B;
    float *s, *s2, *a, *ratio, *r, *done, *w;
    int *n; /* [P] rows filled per slot */
} cmp_val;

static void val_free(cmp_val *v) {
    free(v->s); free(v->s2); free(v->a); free(v->ratio); free(v->r); free(v->done); free(v->w); free(v->n);
    memset(v, 0, sizeof *v);
}

/* The target of validation row r (product p) for agent `which`: the logged reward on the agents'
 * scale; the DQN's with compare.dqn_uplift in effect the uplift (cmp_dqn_uplift) of the demand
 * model's rate at the logged price, so its learning curve follows what the model rows teach rather
 * than one day's noise (docs/compare.md, "The DQN learns the uplift over the incumbent"); NaN:
 * the row is left out. */
static double val_target(const cmp_ctx *c, int which, int p, size_t r) {
    const cmp_aview *a = &c->av[0];
    if (which || !a->um) return c->tr->reward[r] / c->rscale[p];
    const feat_demand_ctx x = {a->dyc[2 * r], a->dyc[2 * r + 1]};
    return cmp_dqn_uplift(c, r, feat_agent_model_rate_at(&a->ap[p], c->tr->price[r], &x, NULL));
}

/* The validation rows of agent `which` (0 DQN, 1 DDPG: states of its view) of group g into v. */
static int val_build(const cmp_ctx *c, const cmp_group *g, int which, cmp_val *v) {
    memset(v, 0, sizeof *v);
    const int P = g->P, S = c->av[which].SA;
    int *cnt = calloc((size_t)P, sizeof *cnt);
    if (!cnt) return eng_err_set(ENG_ENOMEM, "compare: out of memory (validation rows)");
    for (int i = 0; i < g->n; i++)
        for (size_t r = c->off[g->prod[i]]; r < c->off[g->prod[i] + 1]; r++)
            if (c->val[r] && isfinite(val_target(c, which, g->prod[i], r))) cnt[cmp_slot_of(g, i)]++;
    int B = 0;
    for (int s = 0; s < P; s++) B = cnt[s] > B ? cnt[s] : B;
    if (B > CMP_VAL_CAP) B = CMP_VAL_CAP;
    if (g->val_B > 0) B = g->val_B; /* shards: the same shape on every rank */
    v->B = B;
    if (!B) {
        free(cnt);
        return ENG_OK;
    }
    const size_t PB = (size_t)P * B;
    v->s = calloc(PB * S, sizeof(float)), v->s2 = calloc(PB * S, sizeof(float));
    v->a = calloc(PB, sizeof(float)), v->ratio = calloc(PB, sizeof(float)), v->r = calloc(PB, sizeof(float));
    v->done = calloc(PB, sizeof(float)), v->w = calloc(PB, sizeof(float)), v->n = calloc((size_t)P, sizeof(int));
    if (!v->s || !v->s2 || !v->a || !v->ratio || !v->r || !v->done || !v->w || !v->n) {
        free(cnt);
        val_free(v);
        return eng_err_set(ENG_ENOMEM, "compare: out of memory (validation rows)");
    }
    int *fill = calloc((size_t)P, sizeof *fill), *seen = calloc((size_t)P, sizeof *seen);
    if (!fill || !seen) {
        free(cnt), free(fill), free(seen);
        val_free(v);
        return eng_err_set(ENG_ENOMEM, "compare: out of memory (validation rows)");
    }
    for (int i = 0; i < g->n; i++) {
        const int p = g->prod[i], s = cmp_slot_of(g, i);
        for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
            const double y = c->val[r] ? val_target(c, which, p, r) : NAN;
            if (!isfinite(y)) continue;
            /* more rows than fit: every k-th (an even thinning, deterministic) */
            long k = seen[s]++;
            if (cnt[s] > B && (k * (long)B) / cnt[s] == ((k - 1) * (long)B) / cnt[s] && k > 0) continue;
            if (fill[s] >= B) continue;
            const size_t o = (size_t)s * B + fill[s]++;
            memcpy(v->s + o * S, cmp_row_state(c, which, r), (size_t)S * sizeof(float));
            memcpy(v->s2 + o * S, cmp_row_next(c, which, r), (size_t)S * sizeof(float));
            v->a[o] = (float)c->tr->level[r];
            v->ratio[o] = c->tr->ratio[r];
            v->r[o] = (float)y;
            v->done[o] = (float)c->tr->done[r];
            v->w[o] = 1.0f;
        }
    }
    memcpy(v->n, fill, (size_t)P * sizeof *fill);
    free(cnt);
    free(fill);
    free(seen);
    return ENG_OK;
}

/* Snapshots of the best parameters of each slot for up to two networks. */
typedef struct cmp_snap {
    eng_model *m[2];
    int n;
    size_t np[2];
    float *buf[2]; /* [P][np] */
    unsigned char *have; /* [P] */
} cmp_snap;

static int snap_init(cmp_snap *sn, eng_model *a, eng_model *b, int P) {
    memset(sn, 0, sizeof *sn);
    sn->m[0] = a, sn->m[1] = b, sn->n = b ? 2 : 1;
    sn->have = calloc((size_t)P, 1);
    if (!sn->have) return eng_err_set(ENG_ENOMEM, "compare: out of memory (snapshots)");
    for (int k = 0; k < sn->n; k++) {
        sn->np[k] = eng_model_nparams(sn->m[k]);
        if (!(sn->buf[k] = malloc((size_t)P * sn->np[k] * sizeof(float))))
            return eng_err_set(ENG_ENOMEM, "compare: out of memory (snapshots)");
    }
    return ENG_OK;
}

static void snap_free(cmp_snap *sn) {
    free(sn->buf[0]);
    free(sn->buf[1]);
    free(sn->have);
}

static int snap_take(cmp_snap *sn, int s) {
    int rc;
    for (int k = 0; k < sn->n; k++)
        if ((rc = eng_model_get_product(sn->m[k], ENG_VIEW_PARAMS, s, sn->buf[k] + (size_t)s * sn->np[k]))) return rc;
    sn->have[s] = 1;
    return ENG_OK;
}

static int snap_restore(cmp_snap *sn, int P, const unsigned char *bad) {
    int rc;
    for (int s = 0; s < P; s++) {
        if (!sn->have[s] || (bad && bad[s])) continue;
        for (int k = 0; k < sn->n; k++)
            if ((rc = eng_model_set_product(sn->m[k], ENG_VIEW_PARAMS, s, sn->buf[k] + (size_t)s * sn->np[k]))) return rc;
    }
    return ENG_OK;
}

static int poison_slot(agt_dqn *q, int s) {
    eng_model *on = agt_dqn_online(q);
    size_t np = eng_model_nparams(on);
    float *nanbuf = malloc(np * sizeof *nanbuf);
    if (!nanbuf) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    for (size_t k = 0; k < np; k++) nanbuf[k] = NAN;
    int rc = eng_model_set_product(on, ENG_VIEW_PARAMS, s, nanbuf);
    free(nanbuf);
    return rc;
}

/* Agent `which` (0 DQN, 1 DDPG)'s validation loss [P] on v (combined over the shards when tied). */
static int val_loss(cmp_group *g, int which, const cmp_val *v, float *loss) {
    int rc = which ? agt_ddpg_eval_loss(g->ddpg, v->s, v->ratio, v->r, v->s2, v->done, v->w, v->B, loss)
                   : agt_dqn_eval_loss(g->dqn, v->s, v->a, v->r, v->s2, v->done, v->w, v->B, loss);
    if (!rc && g->tied) rc = cmp_shared_combine_loss(loss, v->n, g->P);
    return rc;
}

/* Train one agent (0 DQN, 1 DDPG) of the group for up to max_steps with early stopping on v.
 * A warm-started group (g->loaded) counts its loaded networks' validation loss as the first
 * best and stops after compare.warm_patience checks without improvement (the loaded networks
 * are kept when none improved). */
static int train_one(cmp_ctx *c, cmp_group *g, int which, long max_steps, const cmp_val *v, int poison) {
    const int P = g->P, es = v->B > 0;
    int rc = ENG_OK;
    agt_early *e = NULL;
    cmp_snap sn;
    memset(&sn, 0, sizeof sn);
    float *loss = malloc((size_t)P * sizeof *loss);
    unsigned char *imp = malloc((size_t)P);
    if (!loss || !imp) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (training)");
        goto done;
    }
    if (es) {
        if ((rc = agt_early_create(&e, P, g->loaded ? c->cfg->warm_patience : c->cfg->es_patience, 1e-3))) goto done;
        if ((rc = which ? snap_init(&sn, agt_ddpg_actor(g->ddpg), agt_ddpg_critic(g->ddpg), P)
                        : snap_init(&sn, agt_dqn_online(g->dqn), NULL, P)))
            goto done;
        if (g->loaded && max_steps > 0) { /* the loaded networks are the first best */
            if ((rc = val_loss(g, which, v, loss))) goto done;
            agt_early_observe(e, loss, 0, imp);
            for (int k = 0; k < P; k++)
                if (imp[k] && (rc = snap_take(&sn, k))) goto done;
        }
    }
    long s = 0;
    for (; s < max_steps; s++) {
        if (!which && poison >= 0 && s == max_steps - 1 && (rc = poison_slot(g->dqn, poison))) goto done;
        rc = which ? agt_ddpg_train_step(g->ddpg, NULL, NULL) : agt_dqn_train_step(g->dqn, NULL);
        if (rc) goto done;
        if (!es || (s + 1) % c->cfg->es_every) continue;
        if ((rc = val_loss(g, which, v, loss))) goto done;
        if (P == 1) ENG_INFO("compare: %s %s step %ld validation loss %.5g", g->name, which ? "ddpg" : "dqn", s + 1, (double)loss[0]);
        int running = agt_early_observe(e, loss, s + 1, imp);
        for (int k = 0; k < P; k++) {
            if (imp[k] && (rc = snap_take(&sn, k))) goto done;
            if (e->stopped[k]) rc = which ? agt_ddpg_freeze(g->ddpg, k, 1) : agt_dqn_freeze(g->dqn, k, 1);
            if (rc) goto done;
        }
        if (!running) {
            s++;
            break;
        }
    }
    if (es) {
        const unsigned char *bad = which ? agt_ddpg_diverged(g->ddpg, NULL) : agt_dqn_diverged(g->dqn, NULL);
        if ((rc = snap_restore(&sn, P, bad))) goto done;
        rc = which ? agt_ddpg_sync_targets(g->ddpg) : agt_dqn_sync_target(g->dqn);
        double ms = 0;
        int nb = 0;
        for (int k = 0; k < P; k++)
            if (e->best_step[k] >= 0) ms += (double)e->best_step[k], nb++;
        ENG_INFO("compare: %s %s: %ld steps run, best validation at step %.0f (mean over %d slots)", g->name,
                 which ? "ddpg" : "dqn", s, nb ? ms / nb : 0.0, nb);
    }
done:
    agt_early_free(e);
    snap_free(&sn);
    free(loss);
    free(imp);
    return rc;
}

int cmp_group_train_nets(cmp_ctx *c, cmp_group *g, long dqn_max, long ddpg_max, int poison) {
    const env_transitions *tr = c->tr;
    int rc;
    if (dqn_max <= 0 && ddpg_max <= 0) return ENG_OK;
    for (int i = 0; i < g->n; i++) {
        const int p = g->prod[i], s = cmp_slot_of(g, i);
        for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
            if (!cmp_is_learn(c, r) || c->val[r]) continue;
            const float rq = cmp_real_row_reward(c, 0, p, r), rd = cmp_real_row_reward(c, 1, p, r);
            if ((isfinite(rq) && /* NaN: no uplift target for the DQN (compare.dqn_uplift) */
                 (rc = agt_dqn_push(g->dqn, s, cmp_row_state(c, 0, r), tr->level[r], rq, cmp_row_next(c, 0, r), tr->done[r]))) ||
                (rc = agt_ddpg_push(g->ddpg, s, cmp_row_state(c, 1, r), tr->ratio[r], rd, cmp_row_next(c, 1, r), tr->done[r])))
                return rc;
        }
    }
    if (g->pooled && c->av[0].dyb && (rc = cmp_push_model_rows(c, g))) return rc;
    if (!g->tied && (rc = cmp_dqn_group_support(c, g, NULL, 0))) return rc; /* tied shards: set by their caller */
    cmp_val v, vd; /* the DQN's validation rows, and DDPG's (its own when split or compare.dqn_uplift) */
    memset(&vd, 0, sizeof vd);
    if ((rc = val_build(c, g, 0, &v))) return rc;
    const int vsep = c->split || c->av[0].um; /* DDPG's own rows: its states, or the DQN's targets are uplifts */
    if (vsep && (rc = val_build(c, g, 1, &vd))) {
        val_free(&v);
        return rc;
    }
    if ((rc = train_one(c, g, 0, dqn_max, &v, poison)) == ENG_OK) rc = train_one(c, g, 1, ddpg_max, vsep ? &vd : &v, -1);
    val_free(&v);
    val_free(&vd);
    return rc;
}

/* ---- the shared networks, one process or data-parallel shards (docs/mpi.md) ------------------ */

int cmp_shared_combine_loss(float *loss, const int *n, int P) {
    typedef struct { double loss; int64_t n; } part;
    part *mine = malloc((size_t)P * sizeof *mine);
    size_t *counts = calloc((size_t)eng_par_size(), sizeof *counts);
    char *all = NULL;
    int rc = !mine || !counts ? eng_err_set(ENG_ENOMEM, "compare: out of memory (validation loss)") : ENG_OK;
    for (int s = 0; !rc && s < P; s++) mine[s] = (part){n[s] > 0 ? (double)loss[s] : 0.0, n[s]};
    if (!rc) rc = eng_par_allgatherv(mine, (size_t)P * sizeof *mine, &all, counts);
    if (!rc) {
        size_t total = 0;
        for (int r = 0; r < eng_par_size(); r++) total += counts[r];
        double sum = 0;
        int64_t rows = 0;
        for (size_t o = 0; o + sizeof(part) <= total; o += sizeof(part)) { /* rank order, then slot order */
            part q;
            memcpy(&q, all + o, sizeof q);
            if (q.n > 0) sum += q.loss * (double)q.n, rows += q.n;
        }
        for (int s = 0; s < P; s++) loss[s] = rows ? (float)(sum / (double)rows) : NAN;
    }
    free(mine);
    free(counts);
    free(all);
    return rc;
}

/* The agents' gradient hook of the shared shards (agt_*_cfg.grad_hook): tie the slots' and
 * ranks' gradients (eng_model_grads_tie). */
static int shared_tie_hook(void *ctx, eng_model *m, const unsigned char *mask, unsigned char *step_mask) {
    (void)ctx;
    return eng_model_grads_tie(m, mask, step_mask);
}

/* Every shard starts from the same parameters: slot 0's (key 0: shard 0's stream) into every
 * slot, then rank 0's to every rank; the targets follow.  Returns 0 or a status. */
static int shared_init_sync(cmp_group *g) {
    eng_model *m[3] = {agt_dqn_online(g->dqn), agt_ddpg_actor(g->ddpg), agt_ddpg_critic(g->ddpg)};
    int rc = ENG_OK;
    for (int k = 0; k < 3 && !rc; k++) {
        const size_t np = eng_model_nparams(m[k]);
        float *w = malloc(np * sizeof *w);
        if (!w) return eng_err_set(ENG_ENOMEM, "compare: out of memory (shared networks)");
        rc = eng_model_get_product(m[k], ENG_VIEW_PARAMS, 0, w);
        if (!rc) rc = eng_par_bcast(w, np * sizeof *w, 0);
        for (int s = 0; !rc && s < g->P; s++) rc = eng_model_set_product(m[k], ENG_VIEW_PARAMS, s, w);
        free(w);
    }
    if (!rc) rc = agt_dqn_sync_target(g->dqn);
    return rc ? rc : agt_ddpg_sync_targets(g->ddpg);
}

/* The shared networks as S data-parallel shards: this process holds its shards (all S in one
 * process, its own under MPI: shard = rank) as slots of one group, each slot's replay the rows of
 * the shard's products; every step draws shared_batch / S rows per shard (per-shard streams,
 * keyed by the shard) and the hook averages the shards' gradients; early stopping on the
 * validation loss combined over every shard.  Replay capacity and validation shape are the
 * largest over every shard, so every slot has the same shapes in one process and on S ranks.
 * The result (slot 0) goes to the agents of group g (created here).  Returns 0 or a status. */
static int shared_train_shards(cmp_ctx *c, const int *prod, int n, int S, cmp_group *g) {
    const exp_compare_cfg *cfg = c->cfg;
    const int ranks = cfg->shard_count > 1 ? cfg->shard_count : 1, L = S / ranks, first = ranks > 1 ? cfg->shard_index : 0;
    int rc = ENG_OK;
    int *gp = malloc((size_t)(n ? n : 1) * sizeof *gp), *slot = malloc((size_t)(n ? n : 1) * sizeof *slot);
    uint64_t *keys = malloc((size_t)L * sizeof *keys);
    int64_t lim[2] = {1, 0}; /* largest training rows, largest validation rows of a shard */
    int64_t all_rows = 0;   /* training rows of every shard (the model rows' share per row) */
    int64_t *rows = calloc((size_t)L, sizeof *rows), *vrows = calloc((size_t)L, sizeof *vrows);
    if (!gp || !slot || !keys || !rows || !vrows) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (shared shards)");
        goto done;
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        const int k = cmp_shard_of(c, prod[i], S) - first;
        if (k < 0 || k >= L) continue;
        gp[m] = prod[i], slot[m++] = k;
        for (size_t r = c->off[prod[i]]; r < c->off[prod[i] + 1]; r++)
            if (cmp_is_learn(c, r)) c->val[r] ? vrows[k]++ : rows[k]++;
    }
    for (int k = 0; k < L; k++) {
        keys[k] = (uint64_t)(first + k);
        all_rows += rows[k];
        if (c->av[0].dyb) rows[k] += cmp_dyna_rows(c, rows[k]); /* room for the model-based rows */
        lim[0] = rows[k] > lim[0] ? rows[k] : lim[0];
        lim[1] = vrows[k] > lim[1] ? vrows[k] : lim[1];
    }
    if ((rc = eng_par_allreduce_i64(lim, 2, ENG_PAR_MAX)) || (rc = eng_par_allreduce_i64(&all_rows, 1, ENG_PAR_SUM)))
        goto done;
    g->rows_total = all_rows > 0 ? (long)all_rows : 0;
    g->P = L, g->n = m, g->prod = gp, g->slot = slot, g->tied = 1;
    g->val_B = lim[1] > CMP_VAL_CAP ? CMP_VAL_CAP : (int)lim[1];
    agt_dqn_cfg dq = cfg->dqn;
    dq.state_dim = c->av[0].SA, dq.n_actions = c->K, dq.seed = eng_seed_derive(cfg->seed, 1001), dq.keys = keys;
    dq.batch = cfg->shared_batch / S > 0 ? cfg->shared_batch / S : 1, dq.replay = lim[0];
    dq.grad_hook = shared_tie_hook;
    agt_ddpg_cfg dd = cfg->ddpg;
    dd.state_dim = c->av[1].SA, dd.band = (float)cmp_ddpg_band(cfg), dd.seed = eng_seed_derive(cfg->seed, 1002), dd.keys = keys;
    dd.batch = dq.batch, dd.replay = lim[0];
    dd.grad_hook = shared_tie_hook;
    if ((rc = agt_dqn_create(&g->dqn, c->be, &dq, L)) || (rc = agt_ddpg_create(&g->ddpg, c->be, &dd, L)) ||
        (rc = shared_init_sync(g)) || (rc = cmp_dqn_group_support(c, g, prod, n)))
        goto done;
    ENG_INFO("compare: shared networks in %d data-parallel shards (%d here, %d products), %d rows per shard and step",
             S, L, m, dq.batch);
    rc = cmp_group_train_nets(c, g, cfg->shared_steps, cfg->shared_steps, -1);
done:
    g->prod = NULL, g->slot = NULL;
    free(gp);
    free(slot);
    free(keys);
    free(rows);
    free(vrows);
    return rc;
}

int cmp_group_train_warm(cmp_ctx *c, cmp_group *g, uint64_t key) {
    const exp_compare_cfg *cfg = c->cfg;
    /* warm start: the previous night's networks continue with warm_frac of the budget */
    g->loaded = cfg->ckpt_dir ? cmp_group_try_load(c, g) : 0; /* also the warm early stopping (train_one) */
    int rc = g->loaded ? ENG_OK : create_agents(c, g, &key, cfg->shared_batch);
    long steps = cfg->shared_steps;
    if (g->loaded && (steps = (long)llround(cfg->warm_frac * (double)steps)) < 1) steps = 1;
    return rc ? rc : cmp_group_train_nets(c, g, steps, steps, -1);
}

int cmp_shared_train(cmp_ctx *c, int *prod, int n) {
    const exp_compare_cfg *cfg = c->cfg;
    const int S = cfg->shared_shards > 0 ? cfg->shared_shards : cfg->shard_count > 1 ? cfg->shard_count : 1;
    cmp_group g;
    memset(&g, 0, sizeof g);
    g.P = 1, g.n = n, g.prod = prod, g.pooled = 1;
    snprintf(g.name, sizeof g.name, "shared");
    int rc = 0;
    if (cfg->shard_count > 1 && S != cfg->shard_count)
        rc = eng_err_set(ENG_EINVAL, "compare: compare.shared_shards = %d under %d MPI ranks (0 or %d)", S,
                         cfg->shard_count, cfg->shard_count);
    else if (S > 1) /* data-parallel shards: every rank, even one without products (no warm start yet) */
        rc = shared_train_shards(c, prod, n, S, &g);
    else {
        rc = cmp_group_train_warm(c, &g, 0);
        c->sh_loaded = g.loaded; /* counted by the run */
        if (!rc && cfg->ckpt_dir && (cfg->shard_count <= 1 || cfg->shard_index == 0)) rc = cmp_group_save(c, &g);
    }
    if (!rc) {
        eng_model *m[3] = {agt_dqn_online(g.dqn), agt_ddpg_actor(g.ddpg), agt_ddpg_critic(g.ddpg)};
        float **dst[3] = {&c->sh_dqn, &c->sh_actor, &c->sh_critic};
        for (int k = 0; k < 3 && !rc; k++) {
            if (!(*dst[k] = malloc(eng_model_nparams(m[k]) * sizeof(float)))) rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
            else rc = eng_model_get_product(m[k], ENG_VIEW_PARAMS, 0, *dst[k]);
        }
        int nb = 0;
        agt_dqn_diverged(g.dqn, &nb);
        int nb2 = 0;
        agt_ddpg_diverged(g.ddpg, &nb2);
        if (!rc && (nb || nb2)) rc = eng_err_set(ENG_ENUM, "compare: the shared %s diverged", nb ? "DQN" : "DDPG");
    }
    if (!rc && g.P == 1 && agt_dqn_P(g.dqn) == 1 && agt_ddpg_P(g.ddpg) == 1) { /* kept for the groups' evaluation */
        c->sh_agt_dqn = g.dqn, c->sh_agt_ddpg = g.ddpg;
        return rc;
    }
    agt_dqn_free(g.dqn);
    agt_ddpg_free(g.ddpg);
    return rc;
}
