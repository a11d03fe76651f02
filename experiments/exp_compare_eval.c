/* exp_compare_eval.c - evaluation of one product's agents (guarded prices, trajectories,
 * one-step and long-term OPE) and the totals over products (exp_compare.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "exp_compare_int.h"

int cmp_fixed_level(const cmp_ctx *c, int p) {
    const int K = c->K;
    double sum[1024];
    long cnt[1024];
    memset(sum, 0, sizeof(double) * (size_t)K);
    memset(cnt, 0, sizeof(long) * (size_t)K);
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
        if (!cmp_is_train(c, r)) continue;
        sum[c->tr->level[r]] += c->tr->reward[r];
        cnt[c->tr->level[r]]++;
    }
    int best = -1;
    for (int k = 0; k < K; k++)
        if (cnt[k] >= c->cfg->fixed_min_support && (best < 0 || sum[k] / cnt[k] > sum[best] / cnt[best])) best = k;
    return best >= 0 ? best : env_grid_level(&c->cfg->grid, 1.0, NULL); /* no support: the reference price */
}

/* Guard a candidate price for a state with incumbent inc; level/ratio of the guarded price. */
static int guard(const cmp_ctx *c, int p, double inc, double cand, double ref, double *price, uint32_t *why,
                 int *level, double *ratio) {
    env_guard_bounds b = env_guard_bounds_of(c->h, p, inc);
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

int cmp_eval_product(cmp_ctx *c, int p, const cmp_actions *act) {
    const db_history *h = c->h;
    const env_transitions *tr = c->tr;
    const exp_compare_cfg *cfg = c->cfg;
    const int T = c->T, F = c->F, K = c->K;
    exp_product_result *pr = &c->res->products[p];
    int rc = 0;
    float raw[FEAT_N];
    double ref;
    int from_median;
    int *glev = NULL;      /* [A][T] guarded level of each agent per period */
    double *grat = NULL;   /* [A][T] guarded ratio */
    ope_bandit d;
    memset(&d, 0, sizeof d);
    double *q = NULL, *cd_act = NULL, *cd_den = NULL, *cd_tgt = NULL, *cd_qt = NULL, *cd_ql = NULL;
    double *st_r = NULL, *st_pi = NULL, *st_mu = NULL;
    int *st_start = NULL;

    for (int a = 0; a < EXP_N_AGENTS; a++) {
        ope_result_init(&pr->immediate[a], &cfg->ope, 0);
        ope_result_init(&pr->longterm[a], &cfg->ope, 0);
    }
    if ((rc = feat_state(h, p, T, raw))) return rc;
    pr->incumbent_price = raw[FEAT_PRICE_CUR];
    if (env_reference_price(h, p, &ref, &from_median)) {
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
    /* guarded prices of every agent for every period's state (t = T: the next period) */
    for (int t = 0; t <= T; t++) {
        if ((rc = feat_state(h, p, t, raw))) goto done;
        double inc = raw[FEAT_PRICE_CUR];
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            double cand;
            if (a == EXP_AGENT_HISTORY || act->held[a]) cand = inc;
            else if (a == EXP_AGENT_FIXED) cand = ref * env_grid_ratio(&cfg->grid, act->fixed_level);
            else if (a == EXP_AGENT_LINUCB) cand = ref * env_grid_ratio(&cfg->grid, act->lin_level[t]);
            else if (a == EXP_AGENT_DQN) cand = ref * env_grid_ratio(&cfg->grid, act->dqn_level[t]);
            else cand = ref * (double)act->ddpg_ratio[t];
            double price;
            uint32_t why = 0;
            if ((rc = guard(c, p, inc, cand, ref, &price, &why, &glev[a * (T + 1) + t], &grat[a * (T + 1) + t])))
                goto done;
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

    /* evaluation rows */
    int n = 0;
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) n += cmp_is_eval(c, r);
    if (n == 0) {
        size_t len = strlen(pr->note);
        snprintf(pr->note + len, sizeof pr->note - len, "%sno transitions in the evaluation window",
                 len ? "; " : "");
        goto done;
    }
    d.n = n;
    d.K = K;
    d.d = F;
    d.action = malloc((size_t)n * sizeof *d.action);
    d.reward = malloc((size_t)n * sizeof *d.reward);
    d.pscore = malloc((size_t)n * sizeof *d.pscore);
    d.pi = malloc((size_t)n * K * sizeof *d.pi);
    d.x = malloc((size_t)n * F * sizeof *d.x);
    d.mu = malloc((size_t)n * K * sizeof *d.mu);
    int *rt = malloc((size_t)n * sizeof *rt);
    cd_act = malloc((size_t)n * sizeof *cd_act);
    cd_den = malloc((size_t)n * sizeof *cd_den);
    cd_tgt = malloc((size_t)n * sizeof *cd_tgt);
    cd_qt = malloc((size_t)n * sizeof *cd_qt);
    cd_ql = malloc((size_t)n * sizeof *cd_ql);
    st_r = malloc((size_t)n * sizeof *st_r);
    st_pi = malloc((size_t)n * sizeof *st_pi);
    st_mu = malloc((size_t)n * sizeof *st_mu);
    st_start = malloc((size_t)(n + 1) * sizeof *st_start);
    if (!d.action || !d.reward || !d.pscore || !d.pi || !d.x || !d.mu || !rt || !cd_act || !cd_den || !cd_tgt ||
        !cd_qt || !cd_ql || !st_r || !st_pi || !st_mu || !st_start) {
        free(rt);
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
        goto done;
    }
    /* trajectories: consecutive evaluation rows, split where the episode ended */
    int m = 0, i = 0, prev_t = -2, prev_done = 1;
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
        if (!cmp_is_eval(c, r)) continue;
        d.action[i] = tr->level[r];
        d.reward[i] = tr->reward[r];
        d.pscore[i] = tr->propensity[r];
        for (int j = 0; j < F; j++) d.x[(size_t)i * F + j] = tr->state[r * F + j];
        if ((rc = env_behaviour_probs(tr->behaviour, p, tr->inc_level[r], d.mu + (size_t)i * K))) {
            free(rt);
            goto done;
        }
        rt[i] = tr->t[r];
        if (prev_done || tr->t[r] != prev_t + 1) st_start[m++] = i;
        prev_t = tr->t[r];
        prev_done = tr->done[r];
        i++;
    }
    st_start[m] = n;
    /* one reward model for every agent: ridge on the state features, cross-fitted */
    int folds = cfg->ope.cross_folds < n ? cfg->ope.cross_folds : n;
    uint64_t seed_p = eng_seed_derive(cfg->ope.seed, (uint64_t)p);
    if (ope_fit_ridge_q(&d, cfg->ope.ridge_lambda, folds, seed_p, &q)) {
        ENG_DEBUG("compare: product %s: no reward model (%s)", pr->product_id, eng_err_msg());
        q = NULL;
        eng_err_clear();
    }
    d.q = q;
    double step = 2.0 * cfg->grid.band / (K - 1);
    for (int a = 0; a < EXP_N_AGENTS && !rc; a++) {
        ope_config oc = cfg->ope;
        oc.seed = eng_seed_derive(seed_p, (uint64_t)a + 1);
        for (int k = 0; k < n; k++) {
            double *pi = d.pi + (size_t)k * K;
            int tl = glev[a * (T + 1) + rt[k]];
            if (a == EXP_AGENT_HISTORY) memcpy(pi, d.mu + (size_t)k * K, (size_t)K * sizeof *pi);
            else {
                memset(pi, 0, (size_t)K * sizeof *pi);
                pi[tl] = 1.0;
            }
            st_r[k] = d.reward[k];
            st_mu[k] = d.pscore[k];
            st_pi[k] = pi[d.action[k]];
        }
        if ((rc = ope_bandit_estimate(&d, &oc, &pr->immediate[a]))) break;
        if (a == EXP_AGENT_DDPG) {
            /* the continuous ratio: kernel estimators; behaviour density = level probability
             * spread over the level's width */
            for (int k = 0; k < n; k++) {
                cd_act[k] = env_grid_ratio(&cfg->grid, d.action[k]);
                cd_den[k] = d.pscore[k] / step;
                cd_tgt[k] = grat[a * (T + 1) + rt[k]];
                if (q) {
                    int tl = glev[a * (T + 1) + rt[k]];
                    cd_qt[k] = q[(size_t)k * K + tl];
                    cd_ql[k] = q[(size_t)k * K + d.action[k]];
                }
            }
            ope_cont cd = {n, cd_act, d.reward, cd_den, cd_tgt, q ? cd_qt : NULL, q ? cd_ql : NULL};
            if (oc.bandwidth <= 0 && !(ope_silverman_bandwidth(cd_act, n) > 0)) {
                /* every logged ratio equal: no kernel bandwidth can be chosen from the data */
                for (int e = OPE_KIPS; e <= OPE_KDR; e++)
                    snprintf(pr->immediate[a].v[e].note, sizeof pr->immediate[a].v[e].note,
                             "no bandwidth: every logged price ratio is the same");
            } else {
                ope_result kr;
                if ((rc = ope_cont_estimate(&cd, &oc, &kr))) break;
                copy_kernel(&pr->immediate[a], &kr);
            }
        }
        ope_traj tj = {m, st_start, st_r, st_pi, st_mu};
        if ((rc = ope_traj_estimate(&tj, &oc, &pr->longterm[a]))) break;
        mark_undefined(&pr->immediate[a]);
        mark_undefined(&pr->longterm[a]);
        /* FQE call site: when the `fqe` branch (experiments/ope_fqe.c) is merged, estimate
         * the same policy here with
         *     ope_fqe_estimate(&tj_with_states, &fqe_arch, &oc, &fqe_result);
         * and copy fqe_result.v[OPE_FQE] into pr->longterm[a].v[OPE_FQE]. */
    }
    free(rt);
done:
    free(glev);
    free(grat);
    free(q);
    d.q = NULL;
    ope_bandit_free(&d);
    free(cd_act);
    free(cd_den);
    free(cd_tgt);
    free(cd_qt);
    free(cd_ql);
    free(st_r);
    free(st_pi);
    free(st_mu);
    free(st_start);
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

int cmp_totals(cmp_ctx *c) {
    exp_results *res = c->res;
    int rc;
    for (int lt = 0; lt < 2; lt++) {
        ope_result *tot = lt ? res->total_longterm : res->total_immediate;
        for (int a = 0; a < EXP_N_AGENTS; a++)
            if ((rc = total_one(c, lt, a, &tot[a]))) return rc;
        /* the winner is compared on ONE estimator: the one most products recommend */
        int cnt[OPE_N_EST] = {0};
        for (int a = 0; a < EXP_N_AGENTS; a++) cnt[tot[a].recommended] += tot[a].n;
        ope_est e = mode_est(cnt);
        int best = EXP_AGENT_HISTORY;
        double bv = -INFINITY;
        for (int a = 0; a < EXP_N_AGENTS; a++)
            if (tot[a].v[e].available && tot[a].v[e].estimate > bv) {
                bv = tot[a].v[e].estimate;
                best = a;
            }
        for (int a = 0; a < EXP_N_AGENTS; a++) tot[a].recommended = e;
        if (lt) res->winner_longterm = (exp_agent)best;
        else res->winner_immediate = (exp_agent)best;
    }
    return 0;
}
