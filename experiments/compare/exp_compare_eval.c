/* exp_compare_eval.c - evaluation of one product's agents (guarded prices, trajectories,
 * one-step and long-term OPE) and the totals over products (exp_compare.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "exp_compare_int.h"

/* Guard a candidate price for a state with incumbent inc; level/ratio of the guarded price. */
static int guard(const cmp_ctx *c, int p, double inc, double cand, double ref, double *price, uint32_t *why,
                 int *level, double *ratio, int ddpg) {
    env_guard_bounds b = cmp_agent_bounds(c, p, inc, ddpg); /* DDPG's band (compare.ddpg_band) */
    int rc = env_guard_apply(&c->cfg->guard, &b, cand, price, why, NULL, NULL);
    if (rc) return rc;
    return env_grid_map_price(&c->cfg->grid, *price, ref, level, ratio, NULL);
}

/* Self-normalised estimators are 0/0 when the target never takes a logged action: the OPE
 * layer returns NaN; here such a value is reported as unavailable with the reason. */
static void mark_undefined(ope_result *r) {
    for (int e = 0; e < OPE_N_EST; e++) {
        ope_value *v = &r->v[e];
        if (v->available && !isfinite(v->estimate)) {
            v->available = 0;
            snprintf(v->note, sizeof v->note, "undefined: the target policy never takes a logged action");
        }
    }
}

static void copy_kernel(ope_result *dst, const ope_result *src) {
    for (int e = OPE_KIPS; e <= OPE_KDR; e++) dst->v[e] = src->v[e];
    dst->bandwidth = src->bandwidth;
}

void cmp_value_unset(ope_value *v, const char *note) {
    memset(v, 0, sizeof *v);
    v->estimate = v->ci_low = v->ci_high = v->boot_se = NAN;
    snprintf(v->note, sizeof v->note, "%s", note);
}

/* Per-row IPS / DM / DR / Switch-DR terms of agent a (d->pi holds its policy) into the
 * product's sums, and its DR terms into dr[n]. */
static void row_terms(cmp_ctx *c, int p, int a, const ope_bandit *d, const double *q, double *dr) {
    const int K = d->K;
    double *s = c->sums + ((size_t)p * EXP_N_AGENTS + a) * CMP_S_COUNT;
    memset(s, 0, CMP_S_COUNT * sizeof *s);
    for (int i = 0; i < d->n; i++) {
        const double *pi = d->pi + (size_t)i * K, *qi = q + (size_t)i * K;
        double w = pi[d->action[i]] / d->pscore[i], dm = 0;
        for (int k = 0; k < K; k++) dm += pi[k] * qi[k];
        double corr = w * (d->reward[i] - qi[d->action[i]]);
        dr[i] = dm + corr;
        s[CMP_S_N] += 1;
        s[CMP_S_W] += w;
        s[CMP_S_W2] += w * w;
        s[CMP_S_IPS] += w * d->reward[i];
        s[CMP_S_DM] += dm;
        s[CMP_S_DR] += dm + corr;
        s[CMP_S_SWDR] += w <= c->cfg->ope.switch_tau ? dm + corr : dm;
        if (w > s[CMP_S_WMAX]) s[CMP_S_WMAX] = w;
    }
}

/* Every agent's values of product pr reset: OPE results empty, uplifts unavailable. */
static void eval_reset(const exp_compare_cfg *cfg, exp_product_result *pr) {
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        ope_result_init(&pr->immediate[a], &cfg->ope, 0);
        ope_result_init(&pr->longterm[a], &cfg->ope, 0);
        cmp_value_unset(&pr->uplift[a], a == EXP_AGENT_HISTORY ? "the reference policy" : "no evaluation rows");
        cmp_value_unset(&pr->uplift_shrunk[a], a == EXP_AGENT_HISTORY ? "the reference policy" : "no evaluation rows");
    }
}

/* Guarded prices of every agent for every period's state (t = T: the next period) into pr and
 * glev/grat ([A][T+1] guarded level and ratio).  Returns 0 or the guard's / features' failure. */
static int eval_guarded_prices(cmp_ctx *c, int p, const cmp_actions *act, double ref, int *glev, double *grat) {
    const db_history *h = c->h;
    const exp_compare_cfg *cfg = c->cfg;
    const int T = c->T;
    exp_product_result *pr = &c->res->products[p];
    float raw[FEAT_N];
    int rc;
    for (int t = 0; t <= T; t++) {
        if ((rc = feat_state(h, p, t, raw))) return rc;
        double inc = raw[FEAT_PRICE_CUR];
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            double cand;
            if (a == EXP_AGENT_HISTORY || act->held[a]) cand = inc;
            else if (a == EXP_AGENT_FIXED) cand = ref * env_grid_ratio(&cfg->grid, act->fixed_level);
            else if (a == EXP_AGENT_LINUCB) cand = ref * env_grid_ratio(&cfg->grid, act->lin_level[t]);
            else if (a == EXP_AGENT_DQN)
                cand = cmp_hold_dqn(c, act, t, act->dqn_level[t], inc / ref) ? inc
                                                                             : ref * env_grid_ratio(&cfg->grid, act->dqn_level[t]);
            else cand = cmp_hold_ddpg(c, act, t, inc / ref) ? inc : ref * (double)act->ddpg_ratio[t];
            double price;
            uint32_t why = 0;
            if ((rc = guard(c, p, inc, cand, ref, &price, &why, &glev[a * (T + 1) + t], &grat[a * (T + 1) + t],
                            a == EXP_AGENT_DDPG)))
                return rc;
            if (t == T) {
                pr->price[a] = price;
                pr->guard_reasons[a] = why;
            } else {
                pr->agent_price[a][t] = (float)price;
            }
        }
        if (t < T) {
            size_t cell = (size_t)p * T + t;
            pr->hist_price[t] = h->present[cell] ? h->price[cell] : NAN;
            pr->agent_price[EXP_AGENT_HISTORY][t] = pr->hist_price[t];
        }
    }
    return ENG_OK;
}

/* One product's evaluation rows and scratch (eval_buf_free frees every array). */
typedef struct eval_buf {
    int n, m;              /* evaluation rows; trajectories */
    ope_bandit d;          /* the rows as a bandit log (d.q borrowed from q) */
    int *rt;               /* [n] period of each row */
    size_t *ridx;          /* [n] transition of each evaluation row */
    double *q;             /* [n][K] reward model predictions, or NULL */
    double *cd_act, *cd_den, *cd_tgt, *cd_qt, *cd_ql; /* [n] DDPG's continuous-action log */
    double *st_r, *st_pi, *st_mu; /* [n] trajectory log */
    int *st_start;         /* [m + 1] */
    double *drt;           /* [A][n] per-row DR terms */
    double *zq;            /* design scratch of the pooled reward model */
} eval_buf;

static void eval_buf_free(eval_buf *b) {
    free(b->q);
    b->d.q = NULL;
    ope_bandit_free(&b->d);
    free(b->rt);
    free(b->cd_act);
    free(b->cd_den);
    free(b->cd_tgt);
    free(b->cd_qt);
    free(b->cd_ql);
    free(b->st_r);
    free(b->st_pi);
    free(b->st_mu);
    free(b->st_start);
    free(b->ridx);
    free(b->drt);
    free(b->zq);
}

/* The arrays of n evaluation rows.  Returns 0 or ENG_ENOMEM. */
static int eval_buf_alloc(const cmp_ctx *c, eval_buf *b, int n) {
    const int K = c->K, F = c->F;
    b->n = n;
    b->d.n = n;
    b->d.K = K;
    b->d.d = F;
    b->d.action = malloc((size_t)n * sizeof *b->d.action);
    b->d.reward = malloc((size_t)n * sizeof *b->d.reward);
    b->d.pscore = malloc((size_t)n * sizeof *b->d.pscore);
    b->d.pi = malloc((size_t)n * K * sizeof *b->d.pi);
    b->d.x = malloc((size_t)n * F * sizeof *b->d.x);
    b->d.mu = malloc((size_t)n * K * sizeof *b->d.mu);
    b->rt = malloc((size_t)n * sizeof *b->rt);
    b->cd_act = malloc((size_t)n * sizeof *b->cd_act);
    b->cd_den = malloc((size_t)n * sizeof *b->cd_den);
    b->cd_tgt = malloc((size_t)n * sizeof *b->cd_tgt);
    b->cd_qt = malloc((size_t)n * sizeof *b->cd_qt);
    b->cd_ql = malloc((size_t)n * sizeof *b->cd_ql);
    b->st_r = malloc((size_t)n * sizeof *b->st_r);
    b->st_pi = malloc((size_t)n * sizeof *b->st_pi);
    b->st_mu = malloc((size_t)n * sizeof *b->st_mu);
    b->st_start = malloc((size_t)(n + 1) * sizeof *b->st_start);
    b->ridx = malloc((size_t)n * sizeof *b->ridx);
    b->drt = malloc((size_t)EXP_N_AGENTS * n * sizeof *b->drt);
    b->zq = malloc((size_t)(c->qm.D > 0 ? c->qm.D : 1) * sizeof *b->zq);
    if (!b->ridx || !b->drt || !b->zq || !b->d.action || !b->d.reward || !b->d.pscore || !b->d.pi || !b->d.x ||
        !b->d.mu || !b->rt || !b->cd_act || !b->cd_den || !b->cd_tgt || !b->cd_qt || !b->cd_ql || !b->st_r ||
        !b->st_pi || !b->st_mu || !b->st_start)
        return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    return ENG_OK;
}

/* Product p's evaluation rows into b; trajectories: consecutive evaluation rows, split where
 * the episode ended (b->m, b->st_start). */
static void eval_rows(const cmp_ctx *c, int p, eval_buf *b) {
    const env_transitions *tr = c->tr;
    const int F = c->F, K = c->K;
    ope_bandit *d = &b->d;
    int m = 0, i = 0, prev_t = -2, prev_done = 1;
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
        if (!cmp_is_eval(c, r)) continue;
        d->action[i] = tr->level[r];
        d->reward[i] = tr->reward[r];
        d->pscore[i] = tr->propensity[r];
        for (int j = 0; j < F; j++) d->x[(size_t)i * F + j] = tr->state[r * F + j];
        /* the behaviour distribution of this very state, the one pscore was read from, so the
         * historical policy's importance weights are exactly 1 */
        for (int k = 0; k < K; k++) d->mu[(size_t)i * K + k] = tr->behav_probs[r * (size_t)K + k];
        b->rt[i] = tr->t[r];
        b->ridx[i] = r;
        if (prev_done || tr->t[r] != prev_t + 1) b->st_start[m++] = i;
        prev_t = tr->t[r];
        prev_done = tr->done[r];
        i++;
    }
    b->st_start[m] = b->n;
    b->m = m;
}

/* One reward model for every agent: the pooled model fitted on every product's training rows
 * (ope_qmodel.c); the per-product ridge only when there is none (b->q NULL when that fails
 * too).  Returns 0 or ENG_ENOMEM. */
static int eval_reward_model(cmp_ctx *c, int p, eval_buf *b, uint64_t seed_p) {
    const exp_compare_cfg *cfg = c->cfg;
    const int n = b->n, K = c->K;
    if (c->qm.D > 0) {
        if (!(b->q = malloc((size_t)n * K * sizeof *b->q))) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
        for (int k = 0; k < n; k++) {
            ope_qmodel_predict(&c->qm, b->ridx[k], b->zq, b->q + (size_t)k * K);
            double e = (b->d.reward[k] - b->q[(size_t)k * K + b->d.action[k]]) / c->qm.scale[p];
            c->res2_p[p] += e * e; /* summed over products in index order by cmp_residual_total */
            c->resn_p[p]++;
        }
    } else if (ope_fit_ridge_q(&b->d, cfg->ope.ridge_lambda, cfg->ope.cross_folds < n ? cfg->ope.cross_folds : n,
                               seed_p, &b->q)) {
        ENG_DEBUG("compare: product %s: no reward model (%s)", c->res->products[p].product_id, eng_err_msg());
        b->q = NULL;
        eng_err_clear();
    }
    b->d.q = b->q;
    return ENG_OK;
}

/* DDPG's kernel estimators on the continuous ratio; behaviour density = level probability
 * spread over the level's width.  Returns 0 or ope_cont_estimate's failure. */
static int eval_kernel(const cmp_ctx *c, eval_buf *b, const int *glev, const double *grat, const ope_config *oc,
                       ope_result *out) {
    const exp_compare_cfg *cfg = c->cfg;
    const int n = b->n, K = c->K, T = c->T, a = EXP_AGENT_DDPG;
    const double step = 2.0 * cfg->grid.band / (K - 1);
    const double *q = b->q;
    for (int k = 0; k < n; k++) {
        b->cd_act[k] = env_grid_ratio(&cfg->grid, b->d.action[k]);
        b->cd_den[k] = b->d.pscore[k] / step;
        b->cd_tgt[k] = grat[a * (T + 1) + b->rt[k]];
        if (q) {
            int tl = glev[a * (T + 1) + b->rt[k]];
            b->cd_qt[k] = q[(size_t)k * K + tl];
            b->cd_ql[k] = q[(size_t)k * K + b->d.action[k]];
        }
    }
    ope_cont cd = {n, b->cd_act, b->d.reward, b->cd_den, b->cd_tgt, q ? b->cd_qt : NULL, q ? b->cd_ql : NULL};
    if (oc->bandwidth <= 0 && !(ope_silverman_bandwidth(b->cd_act, n) > 0)) {
        /* every logged ratio equal: no kernel bandwidth can be chosen from the data */
        for (int e = OPE_KIPS; e <= OPE_KDR; e++)
            snprintf(out->v[e].note, sizeof out->v[e].note, "no bandwidth: every logged price ratio is the same");
        return ENG_OK;
    }
    ope_result kr;
    int rc = ope_cont_estimate(&cd, oc, &kr);
    if (!rc) copy_kernel(out, &kr);
    return rc;
}

/* Agent a's one-step and trajectory estimates of product p on the rows in b.  Returns 0 or
 * the estimators' failure. */
static int eval_agent(cmp_ctx *c, int p, int a, eval_buf *b, const int *glev, const double *grat, uint64_t seed_p) {
    const exp_compare_cfg *cfg = c->cfg;
    const int n = b->n, K = c->K, T = c->T;
    exp_product_result *pr = &c->res->products[p];
    ope_bandit *d = &b->d;
    int rc;
    ope_config oc = cfg->ope;
    oc.seed = eng_seed_derive(seed_p, (uint64_t)a + 1);
    for (int k = 0; k < n; k++) {
        double *pi = d->pi + (size_t)k * K;
        int tl = glev[a * (T + 1) + b->rt[k]];
        if (a == EXP_AGENT_HISTORY) memcpy(pi, d->mu + (size_t)k * K, (size_t)K * sizeof *pi);
        else {
            memset(pi, 0, (size_t)K * sizeof *pi);
            pi[tl] = 1.0;
        }
        b->st_r[k] = d->reward[k];
        b->st_mu[k] = d->pscore[k];
        b->st_pi[k] = pi[d->action[k]];
    }
    if ((rc = ope_bandit_estimate(d, &oc, &pr->immediate[a]))) return rc;
    if (a == EXP_AGENT_HISTORY && pr->immediate[a].v[OPE_IPS].available) {
        /* it generated these rows: its value is the on-policy mean (weights exactly 1) */
        pr->immediate[a].recommended = OPE_IPS;
        snprintf(pr->immediate[a].v[OPE_IPS].note, sizeof pr->immediate[a].v[OPE_IPS].note,
                 "on-policy mean of the %d logged rewards (weights exactly 1)", n);
    }
    if (b->q) {
        pr->immediate[a].q_source = c->qm.D > 0 ? "pooled" : "ridge";
        row_terms(c, p, a, d, b->q, b->drt + (size_t)a * n);
    }
    if (a == EXP_AGENT_DDPG && (rc = eval_kernel(c, b, glev, grat, &oc, &pr->immediate[a]))) return rc;
    ope_traj tj = {b->m, b->st_start, b->st_r, b->st_pi, b->st_mu};
    if ((rc = ope_traj_estimate(&tj, &oc, &pr->longterm[a]))) return rc;
    mark_undefined(&pr->immediate[a]);
    mark_undefined(&pr->longterm[a]);
    return ENG_OK;
}

int cmp_eval_product(cmp_ctx *c, int p, const cmp_actions *act) {
    const int T = c->T;
    exp_product_result *pr = &c->res->products[p];
    int rc = 0;
    float raw[FEAT_N];
    double ref;
    int from_median;
    int *glev = NULL;      /* [A][T] guarded level of each agent per period */
    double *grat = NULL;   /* [A][T] guarded ratio */
    eval_buf b;
    memset(&b, 0, sizeof b);

    eval_reset(c->cfg, pr);
    if ((rc = feat_state(c->h, p, T, raw))) return rc;
    pr->incumbent_price = feat_incumbent_price(c->h, p, T, NULL); /* exact, not the float feature */
    pr->price_scale = c->h->price_scale[p];
    if (env_reference_price(c->h, p, &ref, &from_median)) {
        /* no price at all: nothing to evaluate, every agent holds the (imputed) incumbent */
        for (int t = 0; t < T; t++) {
            pr->hist_price[t] = NAN;
            for (int a = 0; a < EXP_N_AGENTS; a++) pr->agent_price[a][t] = NAN;
        }
        for (int a = 0; a < EXP_N_AGENTS; a++) pr->price[a] = pr->incumbent_price;
        pr->status = EXP_FAILED;
        snprintf(pr->note, sizeof pr->note, "no reference price (no base price and no observed price)");
        eng_err_clear();
        return 0;
    }
    glev = malloc((size_t)EXP_N_AGENTS * (T + 1) * sizeof *glev);
    grat = malloc((size_t)EXP_N_AGENTS * (T + 1) * sizeof *grat);
    if (!glev || !grat) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
        goto done;
    }
    if ((rc = eval_guarded_prices(c, p, act, ref, glev, grat))) goto done;

    /* evaluation rows */
    int n = 0;
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) n += cmp_is_eval(c, r);
    if (n == 0) {
        size_t len = strlen(pr->note);
        snprintf(pr->note + len, sizeof pr->note - len, "%sno transitions in the evaluation window",
                 len ? "; " : "");
        goto done;
    }
    pr->n_eval_logged = 0; /* rows whose propensity rlprice logged (exact) and the others (estimated) */
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) pr->n_eval_logged += cmp_is_eval(c, r) && c->tr->logged[r];
    pr->n_eval_estimated = n - pr->n_eval_logged;
    if ((rc = eval_buf_alloc(c, &b, n))) goto done;
    eval_rows(c, p, &b);
    uint64_t seed_p = eng_seed_derive(cmp_ope_seed(c->cfg), (uint64_t)p);
    if ((rc = eval_reward_model(c, p, &b, seed_p))) goto done;
    for (int a = 0; a < EXP_N_AGENTS && !rc; a++) rc = eval_agent(c, p, a, &b, glev, grat, seed_p);
    if (!rc && b.q) rc = cmp_paired_uplift(c, p, n, b.drt, &b.d, b.ridx, seed_p);
done:
    free(glev);
    free(grat);
    eval_buf_free(&b);
    return rc;
}

/* ---- totals ------------------------------------------------------------------------------ */

static ope_est mode_est(const int *count) {
    int best = 0;
    for (int e = 1; e < OPE_N_EST; e++)
        if (count[e] > count[best]) best = e;
    return (ope_est)best;
}

static int total_one(cmp_ctx *c, int longterm, int a, ope_result *out) {
    const exp_compare_cfg *cfg = c->cfg;
    exp_results *res = c->res;
    int rc = 0, cnt[OPE_N_EST] = {0};
    double *num = malloc((size_t)res->n_products * sizeof *num);
    if (!num) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    ope_result_init(out, &cfg->ope, 0);
    out->n_boot = cfg->total_boot;
    out->q_source = "per product";
    for (int p = 0; p < res->n_products; p++) {
        const exp_product_result *pr = &res->products[p];
        if (pr->status != EXP_OK && pr->status != EXP_DIVERGED) continue;
        const ope_result *r = longterm ? &pr->longterm[a] : &pr->immediate[a];
        if (r->n > 0) cnt[r->recommended]++;
    }
    for (int e = 0; e < OPE_N_EST; e++) {
        int n = 0;
        for (int p = 0; p < res->n_products; p++) {
            const exp_product_result *pr = &res->products[p];
            if (pr->status != EXP_OK && pr->status != EXP_DIVERGED) continue;
            const ope_result *r = longterm ? &pr->longterm[a] : &pr->immediate[a];
            if (!r->v[e].available || !isfinite(r->v[e].estimate)) continue;
            num[n++] = r->v[e].estimate;
        }
        if (n == 0) continue;
        ope_value *v = &out->v[e];
        double est, lo, hi, se;
        uint64_t seed = eng_seed_derive(cfg->seed, 7000 + 100 * (uint64_t)longterm + 10 * (uint64_t)a + (uint64_t)e);
        if ((rc = ope_boot_ratio(num, NULL, n, 1, cfg->total_boot, cfg->ope.alpha, seed, &est, &lo, &hi, &se)))
            break;
        v->available = 1;
        v->estimate = est;
        v->ci_low = lo;
        v->ci_high = hi;
        v->boot_se = se;
        v->n_used = n;
        snprintf(v->note, sizeof v->note, "mean over %d products", n);
        if (n > out->n) out->n = n;
    }
    out->recommended = mode_est(cnt);
    free(num);
    return rc;
}

static int in_totals(const exp_product_result *pr) { return pr->status == EXP_OK || pr->status == EXP_DIVERGED; }

/* IPS, SNIPS, DM, DR, Switch-DR of agent a on the pooled evaluation rows of the products in
 * the totals, bootstrap over products (clusters); the pooled rows' overlap. */
static int total_pooled(cmp_ctx *c, int a, ope_result *out) {
    const exp_compare_cfg *cfg = c->cfg;
    exp_results *res = c->res;
    enum { E = 6 };
    static const ope_est est_of[E - 1] = {OPE_IPS, OPE_SNIPS, OPE_DM, OPE_DR, OPE_SWITCH_DR};
    const int P = res->n_products;
    double *num = malloc((size_t)P * E * sizeof *num), *den = malloc((size_t)P * E * sizeof *den);
    int rc = 0, m = 0;
    double sw = 0, sw2 = 0, wmax = 0, nrows = 0;
    if (!num || !den) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
        goto done;
    }
    for (int p = 0; p < P; p++) {
        if (!in_totals(&res->products[p])) continue;
        const double *s = c->sums + ((size_t)p * EXP_N_AGENTS + a) * CMP_S_COUNT;
        const double *h = c->sums + ((size_t)p * EXP_N_AGENTS + EXP_AGENT_HISTORY) * CMP_S_COUNT;
        if (!(s[CMP_S_N] > 0)) continue;
        double *nu = num + (size_t)m * E, *de = den + (size_t)m * E;
        nu[0] = s[CMP_S_IPS], de[0] = s[CMP_S_N];
        nu[1] = s[CMP_S_IPS], de[1] = s[CMP_S_W];
        nu[2] = s[CMP_S_DM], de[2] = s[CMP_S_N];
        nu[3] = s[CMP_S_DR], de[3] = s[CMP_S_N];
        nu[4] = s[CMP_S_SWDR], de[4] = s[CMP_S_N];
        /* uplift on the same rows: against history's on-policy mean (IPS with weights 1), its DR
         * or holding the incumbent price (compare.uplift_ref) */
        nu[5] = s[CMP_S_DR] - (cfg->uplift_ref == 2 ? h[CMP_S_HOLD] : cfg->uplift_ref == 1 ? h[CMP_S_DR] : h[CMP_S_IPS]),
        de[5] = s[CMP_S_N];
        sw += s[CMP_S_W], sw2 += s[CMP_S_W2], nrows += s[CMP_S_N];
        if (s[CMP_S_WMAX] > wmax) wmax = s[CMP_S_WMAX];
        m++;
    }
    if (m == 0) goto done;
    double est[E], lo[E], hi[E], se[E];
    if ((rc = ope_boot_ratio(num, den, m, E, cfg->total_boot, cfg->ope.alpha,
                             eng_seed_derive(cfg->seed, 7500 + (uint64_t)a), est, lo, hi, se)))
        goto done;
    for (int e = 0; e < E; e++) {
        ope_value *v = e < E - 1 ? &out->v[est_of[e]] : &res->total_uplift[a];
        if (!isfinite(est[e])) continue;
        if (e == E - 1 && a == EXP_AGENT_HISTORY) continue;
        ope_value_set(v, est[e], lo[e], hi[e], se[e], (int)nrows);
        snprintf(v->note, sizeof v->note, "pooled %.0f rows of %d products, bootstrap over products", nrows, m);
    }
    ope_overlap *o = &out->overlap;
    memset(o, 0, sizeof *o);
    o->support_exact = 1;
    ope_overlap_weights(o, (int)nrows, sw, sw2, wmax, &cfg->ope, "pooled", "rows");
    out->n = (int)nrows;
    out->q_source = c->qm.D > 0 ? "pooled" : "ridge";
done:
    free(num);
    free(den);
    return rc;
}

/* Lower 1 - alpha/2 quantile of the standard normal by bisection on erfc. */
static double z_quantile(double alpha) {
    double lo = 0, hi = 10;
    for (int i = 0; i < 80; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(mid / sqrt(2.0)) > alpha / 2) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Empirical-Bayes shrinkage of agent a's per-product uplifts (docs/compare.md).  In units of
 * the product's reward scale: y_p = uplift / scale_p with variance
 * v_p = max(se_p^2, s2 (1 / n_p + 1 / (4 ESS_p))), s2 = the reward model's scaled residual
 * variance on the evaluation rows, ESS_p the product's ESS of the agent's weights.  The prior
 * is a meta-regression on the product's support share x_p = ESS_p / n_p:
 * y_p ~ N(b0 + b1 x_p, tau2 + v_p) (products whose agent departs further from the logged
 * prices have less support AND larger uplifts, so one common mean would be pulled towards the
 * well-supported products); tau2 by the method of moments of the weighted regression
 * (DerSimonian-Laird generalised); posterior mean (1 - B) y_p + B m_p, B = v_p / (v_p + tau2),
 * m_p = b0 + b1 x_p with variance c_p = x'(X'WX)^-1 x; posterior variance
 * tau2 v_p / (v_p + tau2) + B^2 c_p; a product with no supported row gets N(m_p, tau2 + c_p).
 * In the posterior tau2 is tau2(x_p) = max(tau2_DL, t0 + t1 x_p), the between-product variance
 * as a function of the support share (location-scale meta-regression: the squared residuals
 * minus v_p regressed on [1, x_p]); products far from the logged prices differ more.  Below the
 * smallest support share in the fit (x_min; a product with no supported row has x_p = 0, which
 * no fitted product has) neither line is extrapolated: m_p = b0 + b1 x_min, c_p gets the
 * squared gap (b1 (x_min - x_p))^2 to the extrapolated value, and tau2 is tau2(x_min)
 * (docs/compare.md, "Products without support in the uplift shrinkage"). */
#define VFLOOR(s2, ess, n) ((s2) * (1.0 / (n) + 0.25 / (ess)))

/* Weighted least squares of y on [1, x] with weights w over k points: coefficients b, the
 * inverse of X'WX (as [3] = {i00, i01, i11}), and the weighted residual sum of squares. */
typedef struct wls2 {
    double s0, sx, sxx, sy, sxy, syy;
} wls2;
static int wls2_solve(const wls2 *m, double *b0, double *b1, double inv[3]) {
    double det = m->s0 * m->sxx - m->sx * m->sx;
    if (!(m->s0 > 0)) return -1;
    if (!(det > 1e-12 * m->s0 * m->sxx)) { /* no spread in x: the mean only */
        *b0 = m->sy / m->s0, *b1 = 0;
        inv[0] = 1.0 / m->s0, inv[1] = inv[2] = 0;
        return 0;
    }
    inv[0] = m->sxx / det, inv[1] = -m->sx / det, inv[2] = m->s0 / det;
    *b0 = inv[0] * m->sy + inv[1] * m->sxy;
    *b1 = inv[1] * m->sy + inv[2] * m->sxy;
    return 0;
}

/* Product p's observation of agent a's uplift, whether or not the product is in the totals:
 * y, its variance v and its support share x; returns 1, or 2 without a supported row (y and x
 * set, v not). */
static int shrink_obs(const cmp_ctx *c, int p, int a, double s2, double *y, double *v, double *x) {
    const exp_product_result *pr = &c->res->products[p];
    double sc = c->qm.scale[p], ess = c->ess_p[(size_t)p * EXP_N_AGENTS + a], n = pr->uplift[a].n_used;
    *y = pr->uplift[a].estimate / sc;
    *x = n > 0 ? ess / n : 0;
    if (!(ess > 1e-9)) return 2; /* no supported row */
    double se = pr->uplift[a].boot_se / sc;
    *v = VFLOOR(s2, ess, n);
    if (isfinite(se) && se * se > *v) *v = se * se;
    return 1;
}

/* shrink_obs for the products in the prior's fit (in the totals, with an uplift); 0 for the rest. */
static int shrink_input(const cmp_ctx *c, int p, int a, double s2, double *y, double *v, double *x) {
    const exp_product_result *pr = &c->res->products[p];
    if (!in_totals(pr) || !pr->uplift[a].available) return 0;
    return shrink_obs(c, p, a, s2, y, v, x);
}

/* The random-effects prior of agent a's per-product uplifts (see shrink). */
typedef struct shrink_fit {
    double b0, b1, inv[3]; /* prior mean b0 + b1 x (x = support share) and its covariance */
    double tau2;           /* pooled between-product variance */
    double t0, t1;         /* location-scale variance: tau2(x) = max(tau2, t0 + t1 x) */
    double xmin;           /* the smallest support share in the fit (the prior is not extrapolated below it) */
    int k;                 /* products in the fit */
    int unusable;
} shrink_fit;

/* Fit the prior: fixed-effect fit, Q statistic, random-effects fit, then the between-product
 * variance as a function of the support share; fills res->eb_*[a] and *f. */
static void shrink_prior(cmp_ctx *c, int a, double s2, shrink_fit *f) {
    exp_results *res = c->res;
    const int P = res->n_products;
    memset(f, 0, sizeof *f);
    const ope_overlap *po = &res->total_immediate[a].overlap;
    int unusable = !(po->ess >= c->cfg->ope.min_ess_abs) || c->qm.D == 0;
    double b0 = 0, b1 = 0, *inv = f->inv, tau2 = 0, xmin = INFINITY;
    int k = 0;
    for (int pass = 0; pass < 3 && !unusable; pass++) {
        /* pass 0: fixed-effect fit (w = 1/v); 1: Q statistic and the trace term; 2: random-effects
         * fit (w = 1/(v + tau2)) */
        wls2 m = {0, 0, 0, 0, 0, 0};
        double Q = 0, sw2[3] = {0, 0, 0};
        k = 0;
        for (int p = 0; p < P; p++) {
            double y, v, x;
            if (shrink_input(c, p, a, s2, &y, &v, &x) != 1) continue;
            k++;
            if (x < xmin) xmin = x;
            if (pass == 1) {
                double w = 1.0 / v, r = y - b0 - b1 * x;
                Q += w * r * r;
                sw2[0] += w * w, sw2[1] += w * w * x, sw2[2] += w * w * x * x;
                continue;
            }
            double w = 1.0 / (v + (pass == 2 ? tau2 : 0));
            m.s0 += w, m.sx += w * x, m.sxx += w * x * x, m.sy += w * y, m.sxy += w * x * y;
        }
        if (k < 3) {
            unusable = 1;
            break;
        }
        if (pass == 1) {
            /* E[Q] = (k - 2) + tau2 (sum w - tr((X'WX)^-1 X'W^2X)) for the fixed-effect fit */
            double tr = inv[0] * sw2[0] + 2 * inv[1] * sw2[1] + inv[2] * sw2[2];
            double sw = 0;
            for (int p = 0; p < P; p++) {
                double y, v, x;
                if (shrink_input(c, p, a, s2, &y, &v, &x) == 1) sw += 1.0 / v;
            }
            double t = (Q - (k - 2)) / (sw - tr);
            tau2 = t > 0 ? t : 0;
        } else if (wls2_solve(&m, &b0, &b1, inv)) {
            unusable = 1;
        } else if (pass == 2) {
            double xbar = m.sx / m.s0;
            res->eb_tau2[a] = tau2;
            res->eb_mean[a] = b0 + b1 * xbar;
            res->eb_slope[a] = b1;
            res->eb_var_mean[a] = inv[0] + 2 * xbar * inv[1] + xbar * xbar * inv[2];
            res->eb_n[a] = k;
        }
    }
    /* between-product variance as a function of the support share (location-scale
     * meta-regression, method of moments): e_p^2 - v_p = t0 + t1 x_p + noise, e_p the residual
     * of the random-effects fit; tau2(x) = max(tau2_DL, t0 + t1 x) */
    double t0 = 0, t1 = 0;
    if (!unusable) {
        wls2 m = {0, 0, 0, 0, 0, 0};
        for (int p = 0; p < P; p++) {
            double y, v, x;
            if (shrink_input(c, p, a, s2, &y, &v, &x) != 1) continue;
            double e = y - b0 - b1 * x, zz = e * e - v;
            m.s0 += 1, m.sx += x, m.sxx += x * x, m.sy += zz, m.sxy += x * zz;
        }
        double ib[3];
        if (wls2_solve(&m, &t0, &t1, ib)) t0 = t1 = 0;
        res->eb_tau2_icpt[a] = t0;
        res->eb_tau2_slope[a] = t1;
    }
    f->b0 = b0, f->b1 = b1, f->tau2 = tau2, f->t0 = t0, f->t1 = t1, f->k = k, f->unusable = unusable;
    f->xmin = isfinite(xmin) ? xmin : 0;
}

/* Every product's shrunk uplift of agent a from the prior f: posterior mean and interval
 * (z = the normal quantile), or unavailable with the reason when the pooled evidence is unusable. */
static void shrink_apply(cmp_ctx *c, int a, double s2, double z, const shrink_fit *f) {
    exp_results *res = c->res;
    const int P = res->n_products;
    const ope_overlap *po = &res->total_immediate[a].overlap;
    const int unusable = f->unusable, k = f->k;
    const double b0 = f->b0, b1 = f->b1, *inv = f->inv, tau2 = f->tau2, t0 = f->t0, t1 = f->t1;
#define TAU2_AT(x) (t0 + t1 * (x) > tau2 ? t0 + t1 * (x) : tau2)
    for (int p = 0; p < P; p++) {
        exp_product_result *pr = &res->products[p];
        ope_value *o = &pr->uplift_shrunk[a];
        if (!pr->uplift[a].available) continue; /* keeps its note */
        if (unusable) {
            cmp_value_unset(o, "");
            snprintf(o->note, sizeof o->note, "pooled evidence unusable: pooled ESS %.1f, %d products with support",
                     po->ess, k);
            continue;
        }
        double y = 0, v = 0, x = 0, sc = c->qm.scale[p];
        /* a product outside the totals: its own ESS and support share still apply */
        const int kind = shrink_obs(c, p, a, s2, &y, &v, &x);
        /* below the fitted support shares (no supported row: x = 0) the lines are not
         * extrapolated: their values at the smallest fitted share, the mean's gap to the
         * extrapolation as variance */
        const double xm = x < f->xmin ? f->xmin : x, gap = b1 * (xm - x);
        double mp = b0 + b1 * xm, cp = inv[0] + 2 * xm * inv[1] + xm * xm * inv[2] + gap * gap;
        double post, var, B, tx = TAU2_AT(xm);
        if (kind == 1) {
            B = v / (v + tx);
            post = (1 - B) * y + B * mp;
            var = tx * v / (v + tx) + B * B * cp;
        } else { /* no supported row: the prior */
            B = 1;
            post = mp;
            var = tx + cp;
        }
        double sd = sqrt(var);
        o->available = 1;
        o->estimate = post * sc;
        o->ci_low = (post - z * sd) * sc;
        o->ci_high = (post + z * sd) * sc;
        o->boot_se = sd * sc;
        o->n_used = pr->uplift[a].n_used;
        if (kind == 1)
            snprintf(o->note, sizeof o->note, "empirical Bayes: weight %.2f on the prior (%d products)", B, k);
        else /* the report says why the interval is wide */
            snprintf(o->note, sizeof o->note, "empirical Bayes: no supported row, the prior alone at support share %.3g, "
                     "the smallest of its %d products", f->xmin, k);
    }
#undef TAU2_AT
}

static void shrink(cmp_ctx *c, int a) {
    exp_results *res = c->res;
    const double alpha = c->cfg->ope.alpha, z = z_quantile(alpha);
    const double s2 = c->eval_res_n > 1 ? c->eval_res2 / c->eval_res_n : c->qm.resid_var;
    res->eb_mean[a] = NAN;
    res->eb_slope[a] = NAN;
    res->eb_tau2[a] = NAN;
    res->eb_tau2_icpt[a] = res->eb_tau2_slope[a] = NAN;
    res->eb_n[a] = 0;
    res->eb_var_mean[a] = NAN;
    shrink_fit f;
    shrink_prior(c, a, s2, &f);
    const ope_overlap *po = &res->total_immediate[a].overlap;
    const int unusable = f.unusable, k = f.k;
    const double t0 = f.t0, t1 = f.t1, tau2 = f.tau2;
#define TAU2_AT(x) (t0 + t1 * (x) > tau2 ? t0 + t1 * (x) : tau2)
    if (!unusable)
        ENG_INFO("compare: %s: between-product sd %.3g at support share 0, %.3g at 1 (never below the pooled %.3g)",
                 exp_agent_name((exp_agent)a), sqrt(TAU2_AT(0.0)), sqrt(TAU2_AT(1.0)), sqrt(tau2));
    ENG_INFO("compare: %s: uplift shrinkage over %d products: prior mean %.4g (sd %.3g) + %.4g x (support share "
             "ESS/n), between-product sd %.3g (reward-scale units), residual variance %.3g, pooled ESS %.1f%s",
             exp_agent_name((exp_agent)a), k, res->eb_mean[a], sqrt(res->eb_var_mean[a]), res->eb_slope[a],
             sqrt(res->eb_tau2[a]), s2, po->ess, unusable ? ": unusable" : "");
#undef TAU2_AT
    shrink_apply(c, a, s2, z, &f);
}

int cmp_totals(cmp_ctx *c) {
    exp_results *res = c->res;
    int rc;
    for (int a = 0; a < EXP_N_AGENTS; a++) cmp_value_unset(&res->total_uplift[a], "not computed");
    for (int lt = 0; lt < 2; lt++) {
        ope_result *tot = lt ? res->total_longterm : res->total_immediate;
        for (int a = 0; a < EXP_N_AGENTS; a++)
            if ((rc = total_one(c, lt, a, &tot[a]))) return rc;
        if (lt)
            for (int a = 0; a < EXP_N_AGENTS; a++) {
                ope_value *v = &tot[a].v[OPE_FQE];
                if (v->available)
                    snprintf(v->note, sizeof v->note, "mean over %d products (%s of %d, compare.fqe_products)",
                             v->n_used, res->fqe_products < res->fqe_eligible ? "seeded sample" : "all",
                             res->fqe_eligible);
            }
        if (!lt && c->sums)
            for (int a = 0; a < EXP_N_AGENTS; a++) {
                if ((rc = total_pooled(c, a, &tot[a]))) return rc;
                tot[a].recommended = tot[a].overlap.poor ? OPE_DM : OPE_DR;
            }
        /* the winner is compared on ONE estimator: the one most products recommend */
        int cnt[OPE_N_EST] = {0};
        for (int a = 0; a < EXP_N_AGENTS; a++) cnt[tot[a].recommended] += tot[a].n;
        ope_est e = mode_est(cnt);
        int best = EXP_AGENT_HISTORY;
        double bv = -INFINITY;
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            /* the historical policy's one-step value is its on-policy mean (IPS with weights
             * exactly 1), not a model-based estimate */
            ope_est ea = !lt && a == EXP_AGENT_HISTORY ? OPE_IPS : e;
            if (tot[a].v[ea].available && tot[a].v[ea].estimate > bv) {
                bv = tot[a].v[ea].estimate;
                best = a;
            }
        }
        for (int a = 0; a < EXP_N_AGENTS; a++) tot[a].recommended = !lt && a == EXP_AGENT_HISTORY ? OPE_IPS : e;
        if (!lt && tot[EXP_AGENT_HISTORY].v[OPE_IPS].available)
            snprintf(tot[EXP_AGENT_HISTORY].v[OPE_IPS].note, sizeof tot[EXP_AGENT_HISTORY].v[OPE_IPS].note,
                     "on-policy mean of %d logged rewards (weights exactly 1), bootstrap over products",
                     tot[EXP_AGENT_HISTORY].v[OPE_IPS].n_used);
        if (lt) res->winner_longterm = (exp_agent)best;
        else res->winner_immediate = (exp_agent)best;
    }
    if (c->sums)
        for (int a = 0; a < EXP_N_AGENTS; a++)
            if (a != EXP_AGENT_HISTORY) shrink(c, a);
    return 0;
}
