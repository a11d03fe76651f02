/* exp_compare.c - the comparison run: features, per-group training of DQN / DDPG / LinUCB,
 * the pooled fallback for short histories, warm start from a checkpoint folder (exp_compare_warm.c), then the
 * evaluation of every product (exp_compare_eval.c).  See exp_compare.h and docs/compare.md. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eng_h5.h"
#include "eng_hash.h"
#include "eng_par.h"
#include "eng_stage.h"
#include "eng_util.h"
#include "exp_compare_int.h"

static _Thread_local int warm_loaded, warm_fresh;

void exp_compare_last_warm(int *loaded, int *fresh) {
    if (loaded) *loaded = warm_loaded;
    if (fresh) *fresh = warm_fresh;
}

/* Fit c->qm (ope_qmodel.h) on every product's training transitions (MPI: each rank's own
 * products, the pooled sums over every rank: collective).  Returns 0, ENG_EINVAL (no usable
 * training rewards), ENG_ENUM (singular), ENG_ENOMEM, or the exchange's failure. */
static int cmp_qmodel_fit(cmp_ctx *c) {
    const exp_compare_cfg *cfg = c->cfg;
    ope_qmodel_data d = {c->tr, c->off, c->h->n_products, c->F, c->K, &cfg->grid, c->train_end, cfg->min_history,
                         cfg->eval_all && cfg->ope.cross_folds > 1 ? cfg->ope.cross_folds : 1, cfg->ope.ridge_lambda,
                         cmp_ope_seed(cfg), NULL, NULL, 0, NULL};
    if (cfg->shard_count > 1) d.use = c->mine, d.over_ranks = 1; /* MPI: each rank its own rows */
    free(c->row_promo);
    c->row_promo = NULL;
    if (cfg->promo_state && c->h->promo && c->tr->n) { /* the priced period's promotion flag of every row, as state */
        if (!(c->row_promo = malloc(c->tr->n))) return eng_err_set(ENG_ENOMEM, "compare: out of memory (promotion flags)");
        for (size_t r = 0; r < c->tr->n; r++) c->row_promo[r] = (uint8_t)cmp_row_promo(c, r);
        d.promo = c->row_promo;
    }
    return ope_qmodel_fit(&d, &c->qm);
}

/* Frees g's agents (NULL-safe) and clears the pointers. */
void cmp_group_free_agents(cmp_group *g) {
    agt_dqn_free(g->dqn);
    agt_ddpg_free(g->ddpg);
    agt_linucb_free(g->lin);
    g->dqn = NULL;
    g->ddpg = NULL;
    g->lin = NULL;
}

#define slot_of cmp_slot_of

/* ---- training ----------------------------------------------------------------------------- */

/* The group's agents: loaded from the checkpoints (warm start) or created (fresh, or set to the
 * shared networks: cmp_group_create_agents); LinUCB always fresh.  keys [g->P] the products'
 * stream keys (their positions among the own-model products; the pooled group: one key), so a
 * product's model does not depend on its group or slot (MPI, exp_compare_shard.c).  Returns 0 or
 * the agents' failure. */
static int group_agents(cmp_ctx *c, cmp_group *g, const uint64_t *keys) {
    const exp_compare_cfg *cfg = c->cfg;
    const int F = c->F, P = g->P;
    int rc;
    /* without fine-tuning (compare.shared, ft_steps 0) a group's networks ARE tonight's shared
     * ones: nothing of the group's own is worth loading (a loaded copy would be the night it was
     * saved, freezing every warm night at that night's networks); the shared group's warm start
     * is counted instead (exp_compare_run) */
    const int own_nets = !(cfg->shared && cfg->ft_steps == 0 && c->sh_dqn);
    /* such a group needs no agents of its own at all (no replay, no Adam state, no copies of the
     * shared parameters per slot): the one-slot shared agents price its products (group_eval);
     * compare.fault_diverge keeps the per-slot copies (it poisons one slot) */
    g->shared_eval = !own_nets && c->sh_agt_dqn && c->sh_agt_ddpg && cfg->fault_diverge < 0;
    g->loaded = cfg->ckpt_dir && own_nets ? cmp_group_try_load(c, g) : 0;
    if (own_nets) {
        if (g->loaded) warm_loaded++;
        else warm_fresh++;
    } else {
        ENG_INFO("compare: %s: the shared networks (compare.shared, no fine-tuning)", g->name);
    }
    if (!g->loaded && !g->shared_eval && (rc = cmp_group_create_agents(c, g, keys))) return rc;
    agt_linucb_cfg lc = cfg->linucb;
    lc.kind = AGT_LINUCB_DISJOINT;
    lc.n_arms = c->K;
    lc.d = F;
    lc.x_per_arm = 0;
    return agt_linucb_create(&g->lin, &lc, P);
}

/* DQN and DDPG: per product from scratch (dqn_steps / ddpg_steps), or fine-tuning of the shared
 * networks (ft_steps), a fraction of the budget after a warm start; early stopping decides
 * within it (cmp_group_train_nets).  compare.fault_diverge poisons its product's DQN slot before
 * the last step.  Returns 0 or the agents' failure. */
static int group_train_nets(cmp_ctx *c, cmp_group *g) {
    const exp_compare_cfg *cfg = c->cfg;
    if (g->shared_eval) return ENG_OK; /* nothing of its own to train (ft_steps 0) */
    long dsteps = cfg->shared ? cfg->ft_steps : cfg->dqn_steps, psteps = cfg->shared ? cfg->ft_steps : cfg->ddpg_steps;
    if (g->loaded) {
        dsteps = (long)llround(cfg->warm_frac * (double)dsteps);
        psteps = (long)llround(cfg->warm_frac * (double)psteps);
    }
    int poison = -1;
    if (cfg->fault_diverge >= 0)
        for (int i = 0; i < g->n; i++)
            if (g->prod[i] == cfg->fault_diverge) poison = slot_of(g, i);
    if (poison >= 0 && dsteps < 1) dsteps = 1; /* the hook needs a step to act */
    return cmp_group_train_nets(c, g, dsteps, psteps, poison);
}

/* LinUCB: the training transitions in period order, product by product (round r feeds each
 * slot its r-th transition); immediate reward, the state as the context.  Returns 0,
 * ENG_ENOMEM or LinUCB's failure. */
static int group_train_linucb(cmp_ctx *c, cmp_group *g) {
    const exp_compare_cfg *cfg = c->cfg;
    const env_transitions *tr = c->tr;
    const int F = c->F, P = g->P;
    int rc = 0;
    float *x = calloc((size_t)P * F, sizeof *x);
    float *rw = calloc((size_t)P, sizeof *rw);
    int *arm = calloc((size_t)P, sizeof *arm);
    unsigned char *active = calloc((size_t)P, 1);
    size_t *cur = calloc((size_t)g->n, sizeof *cur);
    if (!x || !rw || !arm || !active || !cur) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (LinUCB)");
        goto done;
    }
    for (int pass = 0; pass < cfg->linucb_passes; pass++) {
        for (int i = 0; i < g->n; i++) cur[i] = c->off[g->prod[i]];
        if (g->pooled) { /* one slot: feed the products one after the other */
            for (int i = 0; i < g->n; i++)
                for (size_t r = c->off[g->prod[i]]; r < c->off[g->prod[i] + 1]; r++) {
                    if (!cmp_is_learn(c, r)) continue;
                    int a = tr->level[r];
                    float rr = tr->reward[r];
                    if ((rc = agt_linucb_update(g->lin, tr->state + r * F, NULL, &a, &rr, NULL))) goto done;
                }
            continue;
        }
        for (;;) {
            int any = 0;
            memset(active, 0, (size_t)P);
            for (int i = 0; i < g->n; i++) {
                size_t end = c->off[g->prod[i] + 1];
                while (cur[i] < end && !cmp_is_learn(c, cur[i])) cur[i]++;
                if (cur[i] >= end) continue;
                size_t r = cur[i]++;
                memcpy(x + (size_t)i * F, tr->state + r * F, (size_t)F * sizeof *x);
                arm[i] = tr->level[r];
                rw[i] = tr->reward[r];
                active[i] = 1;
                any = 1;
            }
            if (!any) break;
            if ((rc = agt_linucb_update(g->lin, x, NULL, arm, rw, active))) goto done;
        }
    }
done:
    free(x);
    free(rw);
    free(arm);
    free(active);
    free(cur);
    return rc;
}

/* Train (or warm-start) the group's DQN, DDPG and LinUCB and save the checkpoints.  Returns 0
 * or the first failure; the agents stay in g (group_free_agents). */
static int group_train(cmp_ctx *c, cmp_group *g, const uint64_t *keys) {
    int rc;
    if ((rc = group_agents(c, g, keys))) return rc;
    if ((rc = group_train_nets(c, g))) return rc;
    if ((rc = group_train_linucb(c, g))) return rc;
    /* a group priced by the shared agents has nothing of its own to save: the shared networks
     * are saved as shared.* (cmp_shared_train) */
    if (c->cfg->ckpt_dir && !g->shared_eval && (rc = cmp_group_save(c, g))) return rc;
    return ENG_OK;
}

#define CMP_EVAL_BATCH 256 /* rows per inference call of the shared agents (group_eval) */

/* Greedy actions of the group's products for every period's state, then their evaluation. */
static int group_eval(cmp_ctx *c, cmp_group *g) {
    const int F = c->F, K = c->K, T = c->T, P = g->P, B = T + 1, SA = c->av[0].SA, SD = c->av[1].SA;
    int rc = 0;
    /* batches: own group = all products at once; pooled = one product per batch.  X: LinUCB's
     * states (feat-v1, normalised), XA: the DQN / DDPG states (the same unless agent_state) */
    const int per = g->pooled ? 1 : g->n;
    float *X = malloc((size_t)P * B * F * sizeof *X), *qv = malloc((size_t)P * B * K * sizeof *qv);
    float *XA = c->cfg->agent_state ? malloc((size_t)P * B * SA * sizeof *XA) : X;
    float *XD = c->split ? malloc((size_t)P * B * SD * sizeof *XD) : XA; /* DDPG's states (its own view) */
    float *xa = malloc((size_t)P * SD * sizeof *xa);
    float *xs = malloc((size_t)P * F * sizeof *xs), *ratio = malloc((size_t)P * sizeof *ratio);
    int *arm = malloc((size_t)P * sizeof *arm);
    int *dl = malloc((size_t)per * B * sizeof *dl), *ll = malloc((size_t)per * B * sizeof *ll);
    float *dr = malloc((size_t)per * B * sizeof *dr);
    /* priced by the one-slot shared agents: every product's B states in one batch */
    agt_dqn *qa = g->shared_eval ? c->sh_agt_dqn : g->dqn;
    agt_ddpg *da = g->shared_eval ? c->sh_agt_ddpg : g->ddpg;
    float *rall = g->shared_eval ? malloc((size_t)P * B * sizeof *rall) : NULL;
    /* compare.hold_z: every member's outputs (exp_compare_hold.c) */
    const int hE = g->shared_eval && c->cfg->hold_z > 0 && c->ens_n > 0 ? c->ens_n + 1 : 0;
    float *hq = hE ? malloc((size_t)hE * P * B * K * sizeof *hq) : NULL;
    float *ha = hE ? malloc((size_t)hE * P * B * sizeof *ha) : NULL;
    if (hE && (!hq || !ha)) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (hold rule)");
        goto done;
    }
    if (!X || !XA || !XD || !xa || !qv || !xs || !ratio || !arm || !dl || !ll || !dr || (g->shared_eval && !rall)) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (evaluation)");
        goto done;
    }
    agt_linucb_set_alpha(g->lin, 0.0f); /* evaluate the greedy (posterior mean) policy */
    int n_bad_q = 0, n_bad_d = 0;
    /* the shared agents never diverged (cmp_shared_train fails the run when they do) */
    const unsigned char *bad_q = g->shared_eval ? NULL : agt_dqn_diverged(g->dqn, &n_bad_q);
    const unsigned char *bad_d = g->shared_eval ? NULL : agt_ddpg_diverged(g->ddpg, &n_bad_d);
    for (int b0 = 0; b0 < g->n; b0 += per) {
        int m = g->n - b0 < per ? g->n - b0 : per;
        memset(X, 0, (size_t)P * B * F * sizeof *X);
        for (int i = 0; i < m; i++) {
            int p = g->prod[b0 + i], s = slot_of(g, b0 + i);
            float *xp = X + (size_t)s * B * F;
            if ((rc = feat_states(c->h, p, 0, B, xp)) || (rc = feat_norm_apply(&c->norm, xp, (size_t)B))) goto done;
            if (XA != X && (rc = cmp_agent_states(c, p, B, XA + (size_t)s * B * SA,
                                                  XD != XA ? XD + (size_t)s * B * SD : NULL)))
                goto done;
        }
        if (XA != X && m < P) memset(XA + (size_t)m * B * SA, 0, (size_t)(P - m) * B * SA * sizeof *XA);
        if (XD != XA && m < P) memset(XD + (size_t)m * B * SD, 0, (size_t)(P - m) * B * SD * sizeof *XD);
        if (g->shared_eval) { /* [P][B] rows = one slot's P * B rows, in batches of at most
                                 * CMP_EVAL_BATCH rows (the networks' buffers stay small) */
            /* (compare.ensemble: the mean over the members) */
            if ((rc = cmp_ens_infer(c, XA, XD, m * B, CMP_EVAL_BATCH, qv, rall, hq, ha))) goto done; /* hq, ha: hold_z */
            const float band = agt_ddpg_config(da)->band;
            for (int k = 0; k < m * B; k++) rall[k] = 1.0f + band * rall[k]; /* agt_ddpg_ratio */
        } else if ((rc = agt_dqn_q_values(qa, XA, B, qv))) {
            goto done;
        }
        for (int i = 0; i < m; i++) {
            int s = slot_of(g, b0 + i), p = g->prod[b0 + i];
            for (int t = 0; t < B; t++) dl[(size_t)i * B + t] = cmp_dqn_pick(c, p, qv + ((size_t)s * B + t) * K);
        }
        for (int t = 0; t < B; t++) {
            for (int s = 0; s < P; s++) {
                memcpy(xs + (size_t)s * F, X + ((size_t)s * B + t) * F, (size_t)F * sizeof *xs);
                memcpy(xa + (size_t)s * SD, XD + ((size_t)s * B + t) * SD, (size_t)SD * sizeof *xa);
            }
            if ((!g->shared_eval && (rc = agt_ddpg_ratio(da, xa, ratio))) ||
                (rc = agt_linucb_choose(g->lin, xs, NULL, NULL, arm, NULL)))
                goto done;
            for (int i = 0; i < m; i++) {
                int s = slot_of(g, b0 + i);
                float rt = g->shared_eval ? rall[(size_t)s * B + t] : ratio[s];
                dr[(size_t)i * B + t] = cmp_ddpg_clip(c, g->prod[b0 + i], rt);
                ll[(size_t)i * B + t] = arm[s];
            }
        }
        for (int i = 0; i < m; i++) {
            int p = g->prod[b0 + i], s = slot_of(g, b0 + i);
            exp_product_result *pr = &c->res->products[p];
            cmp_actions act;
            memset(&act, 0, sizeof act);
            act.dqn_level = dl + (size_t)i * B;
            act.lin_level = ll + (size_t)i * B;
            act.ddpg_ratio = dr + (size_t)i * B;
            act.fixed_level = cmp_fixed_level(c, p);
            if (hE) { /* member e's rows of slot s: [e][m * B] */
                act.ens_E = hE;
                act.ens_q = hq + (size_t)s * B * K, act.ens_q_stride = (size_t)m * B * K;
                act.ens_a = ha + (size_t)s * B, act.ens_a_stride = (size_t)m * B;
            }
            if (bad_q && bad_q[s]) {
                act.held[EXP_AGENT_DQN] = 1;
                pr->agent_failed |= 1u << EXP_AGENT_DQN;
            }
            if (bad_d && bad_d[s]) {
                act.held[EXP_AGENT_DDPG] = 1;
                pr->agent_failed |= 1u << EXP_AGENT_DDPG;
            }
            if (pr->agent_failed) {
                if (pr->status == EXP_OK) pr->status = EXP_DIVERGED;
                snprintf(pr->note, sizeof pr->note, "%s%s diverged in training: held at the incumbent price",
                         (pr->agent_failed >> EXP_AGENT_DQN) & 1 ? "dqn " : "",
                         (pr->agent_failed >> EXP_AGENT_DDPG) & 1 ? "ddpg " : "");
            }
            if ((rc = cmp_eval_product(c, p, &act))) goto done;
            for (int a = 0; a < EXP_N_AGENTS; a++) pr->support_gap[a] = cmp_support_gap(c, p, pr->price[a]);
        }
    }
done:
    if (XD != XA) free(XD);
    if (XA != X) free(XA);
    free(rall);
    free(hq);
    free(ha);
    free(xa);
    free(X);
    free(qv);
    free(xs);
    free(ratio);
    free(arm);
    free(dl);
    free(ll);
    free(dr);
    return rc;
}

/* A product without any model: every agent holds the incumbent. */
static int eval_held(cmp_ctx *c, int p) {
    const int B = c->T + 1;
    int rc = 0;
    int *lv = calloc((size_t)B, sizeof *lv);
    float *rt = calloc((size_t)B, sizeof *rt);
    if (!lv || !rt) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
        goto done;
    }
    cmp_actions act;
    memset(&act, 0, sizeof act);
    act.dqn_level = lv;
    act.lin_level = lv;
    act.ddpg_ratio = rt;
    act.fixed_level = -1;
    act.held[EXP_AGENT_FIXED] = act.held[EXP_AGENT_LINUCB] = act.held[EXP_AGENT_DQN] = act.held[EXP_AGENT_DDPG] = 1;
    rc = cmp_eval_product(c, p, &act);
    for (int a = 0; a < EXP_N_AGENTS; a++) c->res->products[p].support_gap[a] = cmp_support_gap(c, p, c->res->products[p].price[a]);
done:
    free(lv);
    free(rt);
    return rc;
}

/* ---- the run ------------------------------------------------------------------------------- */

static char *dup_str(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) eng_err_set(ENG_ENOMEM, "compare: out of memory");
    return d;
}

static int ensure_dir(const char *d) {
    if (mkdir(d, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    }
    return eng_err_set(ENG_EIO, "%s: cannot create checkpoint folder: %s", d, strerror(errno));
}

static int results_alloc(cmp_ctx *c) {
    const db_history *h = c->h;
    exp_results *r = calloc(1, sizeof *r);
    if (!r) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    c->res = r;
    r->demand_prior = c->cfg->demand_prior;
    r->n_products = h->n_products;
    r->products = calloc((size_t)h->n_products, sizeof *r->products);
    if (!r->products) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    for (int p = 0; p < h->n_products; p++) {
        exp_product_result *pr = &r->products[p];
        pr->index = p;
        pr->n_periods = c->T;
        if (!(pr->product_id = dup_str(h->product_id[p]))) return ENG_ENOMEM;
        pr->hist_price = malloc((size_t)c->T * sizeof *pr->hist_price);
        if (!pr->hist_price) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            pr->agent_price[a] = malloc((size_t)c->T * sizeof(float));
            if (!pr->agent_price[a]) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
        }
    }
    /* run date = the date of the next, not yet priced period */
    time_t day = (time_t)((int64_t)h->day0 + (int64_t)c->T * h->period_days) * 86400;
    struct tm tmv;
    char date[32];
    gmtime_r(&day, &tmv);
    strftime(date, sizeof date, "%Y-%m-%d", &tmv);
    if (!(r->run_date = dup_str(date))) return ENG_ENOMEM;
    if (!(r->config_text = exp_compare_cfg_text(c->cfg))) return ENG_ENOMEM;
    char id[96];
    snprintf(id, sizeof id, "compare-%s-%08llx", date,
             (unsigned long long)(eng_fnv1a(ENG_FNV1A_BASIS_RLP, r->config_text, strlen(r->config_text)) & 0xffffffffULL));
    if (!(r->run_id = dup_str(id))) return ENG_ENOMEM;
    if (!(r->data_source = dup_str("db_history"))) return ENG_ENOMEM;
    return 0;
}

/* MPI: the reward counters (the reward text of the report) summed over every rank.  0 or the
 * exchange's failure. */
static int reward_info_reduce(env_reward_info *ri) {
    int64_t v[7] = {ri->n_products, ri->n_fallback_products, ri->n_periods, ri->n_present, ri->n_traffic_missing,
                    ri->n_traffic_zero, ri->n_defined};
    int rc = eng_par_allreduce_i64(v, 7, ENG_PAR_SUM);
    if (rc) return rc;
    ri->n_products = (long)v[0], ri->n_fallback_products = (long)v[1], ri->n_periods = (long)v[2];
    ri->n_present = (long)v[3], ri->n_traffic_missing = (long)v[4], ri->n_traffic_zero = (long)v[5];
    ri->n_defined = (long)v[6];
    return ENG_OK;
}

/* Stage 1: features, rewards, transitions (c->tr, c->off), the reward text, the per-row sums
 * and the pooled reward model of DM / DR (training rows only; a failure other than memory
 * falls back to per-product ridge models).  Returns 0 or the failure. */
static int cmp_prepare(cmp_ctx *c) {
    const db_history *h = c->h;
    const exp_compare_cfg *cfg = c->cfg;
    int rc;
    eng_stage_mark sm = eng_stage_begin();
    if ((rc = cmp_norm_prepare(c))) return rc;
    eng_stage_end("cmp.norm", sm);
    sm = eng_stage_begin();
    env_transitions_cfg tc = env_transitions_default();
    tc.grid = cfg->grid;
    tc.reward = cfg->reward;
    tc.behaviour = cfg->behaviour;
    tc.t_begin = 0;
    tc.t_end = -1;
    tc.norm = &c->norm;
    if (cfg->shard_count > 1) { /* MPI: this rank's products' rows; the pooled fits over every rank */
        tc.use = c->mine;
        tc.behaviour.over_ranks = 1;
        tc.behaviour.n_catalogue = h->n_products;
    }
    rc = cmp_transitions_build(c, &tc); /* one process: the behaviour fit starts from last night's */
    if (cfg->shard_count > 1 && !(rc = eng_par_agree(rc))) rc = reward_info_reduce(&c->tr->reward_info);
    if (rc) return rc;
    if (cfg->shard_count > 1) { /* what this rank built, and every rank together */
        int64_t v[4] = {0, (int64_t)c->tr->n, 0, 0};
        for (int p = 0; p < h->n_products; p++) v[0] += c->mine[p];
        v[2] = v[0], v[3] = v[1];
        if ((rc = eng_par_allreduce_i64(v + 2, 2, ENG_PAR_SUM))) return rc;
        ENG_INFO("compare: rank %d of %d: features and transitions of its own %lld of %d products (%lld rows; all "
                 "ranks: %lld products, %lld rows)",
                 cfg->shard_index, cfg->shard_count, (long long)v[0], h->n_products, (long long)v[1],
                 (long long)v[2], (long long)v[3]);
    }
    eng_stage_end("cmp.transitions", sm);
    c->off = calloc((size_t)h->n_products + 1, sizeof *c->off);
    if (!c->off) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    for (size_t i = 0; i < c->tr->n; i++) {
        if (i && c->tr->product[i] < c->tr->product[i - 1])
            return eng_err_set(ENG_EINVAL, "compare: transitions are not ordered by product");
        c->off[c->tr->product[i] + 1]++;
    }
    for (int p = 0; p < h->n_products; p++) c->off[p + 1] += c->off[p];
    char why[512];
    env_reward_describe(&cfg->reward, &c->tr->reward_info, why, sizeof why);
    if (!(c->res->reward_text = dup_str(why))) return ENG_ENOMEM;
    c->sums = calloc((size_t)h->n_products * EXP_N_AGENTS * CMP_S_COUNT, sizeof *c->sums);
    c->ess_p = calloc((size_t)h->n_products * EXP_N_AGENTS, sizeof *c->ess_p);
    c->res2_p = calloc((size_t)h->n_products, sizeof *c->res2_p);
    c->resn_p = calloc((size_t)h->n_products, sizeof *c->resn_p);
    if (!c->sums || !c->ess_p || !c->res2_p || !c->resn_p) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    sm = eng_stage_begin();
    int qst = cfg->pooled_q ? cmp_qmodel_fit(c) : 0;
    eng_stage_end("cmp.qmodel", sm);
    if (qst) {
        if (qst == ENG_ENOMEM || (cfg->shard_count > 1 && eng_par_broken())) return qst;
        ENG_WARN("compare: no pooled reward model (%s): per-product ridge models instead", eng_err_msg());
        eng_err_clear();
    }
    sm = eng_stage_begin();
    rc = cmp_agents_prepare(c);
    eng_stage_end("cmp.agent_prep", sm);
    return rc;
}

/* Progress of the run: the caller's callback and the products done so far. */
typedef struct cmp_progress {
    exp_progress_fn fn;
    void *ctx;
    long done;
} cmp_progress;

/* Stage 2a: the products with their own models that this rank takes (c->mine: all in one
 * process), trained and evaluated in groups of compare.group_size.  Product own_all[i]'s stream
 * key is i.  Returns 0 or the first failure. */
static int cmp_run_own(cmp_ctx *c, const int *own_all, int n_own_all, cmp_progress *pg) {
    const exp_compare_cfg *cfg = c->cfg;
    const int P = c->h->n_products;
    cmp_group g;
    memset(&g, 0, sizeof g);
    int rc = ENG_OK, n_own = 0;
    int *own = malloc((size_t)(n_own_all ? n_own_all : 1) * sizeof *own);
    uint64_t *keys = malloc((size_t)(n_own_all ? n_own_all : 1) * sizeof *keys);
    if (!own || !keys) rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
    for (int i = 0; !rc && i < n_own_all; i++)
        if (c->mine[own_all[i]]) keys[n_own] = (uint64_t)i, own[n_own++] = own_all[i];
    for (int g0 = 0; g0 < n_own && !rc; g0 += cfg->group_size) {
        g.n = g.P = n_own - g0 < cfg->group_size ? n_own - g0 : cfg->group_size;
        g.prod = own + g0;
        g.pooled = 0;
        if (cfg->shard_count > 1) /* per-rank checkpoint names: a warm start needs the same ranks */
            snprintf(g.name, sizeof g.name, "r%dof%d-g%d", cfg->shard_index, cfg->shard_count, g0 / cfg->group_size);
        else snprintf(g.name, sizeof g.name, "g%d", g0 / cfg->group_size);
        double ts = eng_now();
        eng_stage_mark sm = eng_stage_begin();
        if ((rc = group_train(c, &g, keys + g0))) break;
        eng_stage_end("cmp.own_train", sm);
        double te = eng_now();
        c->res->seconds_train += te - ts;
        if (pg->fn) pg->fn(pg->ctx, "train", pg->done + g.n, P);
        sm = eng_stage_begin();
        if ((rc = group_eval(c, &g))) break;
        eng_stage_end("cmp.own_ope", sm);
        c->res->seconds_ope += eng_now() - te;
        pg->done += g.n;
        if (pg->fn) pg->fn(pg->ctx, "ope", pg->done, P);
        cmp_group_free_agents(&g);
    }
    cmp_group_free_agents(&g);
    free(own);
    free(keys);
    return rc;
}

/* Stage 2b: the products with too little history (of one shard) share one pooled model (stream
 * key `key`, checkpoint stem `name`) when the pooled rows reach min_history; otherwise every
 * agent holds their incumbent price.  Returns 0 or the first failure. */
static int cmp_run_short(cmp_ctx *c, int *shortp, int n_short, uint64_t key, long pooled_rows, const char *name,
                         cmp_progress *pg) {
    const exp_compare_cfg *cfg = c->cfg;
    cmp_group g;
    memset(&g, 0, sizeof g);
    int rc = ENG_OK;
    double ts = eng_now();
    eng_stage_mark sm = eng_stage_begin();
    int pooled_ok = pooled_rows >= cfg->min_history;
    for (int i = 0; i < n_short; i++) {
        exp_product_result *pr = &c->res->products[shortp[i]];
        pr->status = EXP_SKIP_SHORT;
        long n = 0;
        for (size_t r = c->off[shortp[i]]; r < c->off[shortp[i] + 1]; r++) n += cmp_is_train(c, r);
        if (pooled_ok)
            snprintf(pr->note, sizeof pr->note,
                     "%ld training transitions < min_history %d: pooled model of %d short products (%ld rows)", n,
                     cfg->min_history, n_short, pooled_rows);
        else
            snprintf(pr->note, sizeof pr->note,
                     "%ld training transitions, and only %ld pooled over %d short products (< %d): held at the "
                     "incumbent price", n, pooled_rows, n_short, cfg->min_history);
    }
    if (pooled_ok) {
        g.n = n_short;
        g.P = 1;
        g.prod = shortp;
        g.pooled = 1;
        snprintf(g.name, sizeof g.name, "%s", name);
        ENG_INFO("compare: %s: one model for %d short-history products (%ld training rows)", name, n_short, pooled_rows);
        if ((rc = group_train(c, &g, &key))) goto done;
        double te = eng_now();
        c->res->seconds_train += te - ts;
        if ((rc = group_eval(c, &g))) goto done;
        c->res->seconds_ope += eng_now() - te;
    } else {
        for (int i = 0; i < n_short; i++)
            if ((rc = eval_held(c, shortp[i]))) goto done;
        c->res->seconds_ope += eng_now() - ts;
    }
    pg->done += n_short;
    if (pg->fn) pg->fn(pg->ctx, "ope", pg->done, c->h->n_products);
    eng_stage_end("cmp.short", sm);
done:
    cmp_group_free_agents(&g);
    return rc;
}

/* The short-history products per shard (cmp_shard_count shards; under MPI this rank's shard
 * only): each shard's short products share one pooled model (one shard: all of them, as
 * before), stream key n_own + shard.  ntr [n_products] the training-row counts.  Returns 0 or
 * the first failure. */
static int cmp_run_short_shards(cmp_ctx *c, const int *shortp, int n_short, int n_own, const int64_t *ntr,
                                cmp_progress *pg) {
    const exp_compare_cfg *cfg = c->cfg;
    const int S = cmp_shard_count(c);
    int rc = ENG_OK;
    int *sp = malloc((size_t)(n_short ? n_short : 1) * sizeof *sp);
    if (!sp) return eng_err_set(ENG_ENOMEM, "compare: out of memory");
    for (int s = 0; s < S && !rc; s++) {
        if (cfg->shard_count > 1 && s != cfg->shard_index) continue;
        int m = 0;
        long rows = 0;
        for (int i = 0; i < n_short; i++)
            if (S <= 1 || c->owner[shortp[i]] == s) sp[m++] = shortp[i], rows += (long)ntr[shortp[i]];
        if (!m) continue;
        char name[32];
        if (S <= 1) snprintf(name, sizeof name, "pooled");
        else if (cfg->shard_count > 1) snprintf(name, sizeof name, "r%dof%d-pooled", s, S);
        else snprintf(name, sizeof name, "pooled-s%dof%d", s, S);
        rc = cmp_run_short(c, sp, m, (uint64_t)n_own + (uint64_t)s, rows, name, pg);
    }
    free(sp);
    return rc;
}

/* The run's context from the history and configuration (no allocation).  Returns 0,
 * ENG_EINVAL (empty history, configuration), ENG_EIO (checkpoint folder). */
static int cmp_ctx_init(cmp_ctx *c, const db_history *h, const exp_compare_cfg *cfg, const eng_backend *be) {
    int rc;
    memset(c, 0, sizeof *c);
    if (!h || h->n_products < 1 || h->n_periods < 2)
        return eng_err_set(ENG_EINVAL, "compare: empty history (need at least one product and two periods)");
    if ((rc = exp_compare_cfg_check(cfg))) return rc;
    c->h = h;
    c->cfg = cfg;
    c->be = be ? be : eng_backend_cpu();
    c->T = h->n_periods;
    c->F = FEAT_N;
    c->K = cfg->grid.K;
    c->train_end = (int)floor(cfg->train_frac * c->T);
    if (c->train_end < 1) c->train_end = 1;
    if (c->train_end > c->T) c->train_end = c->T;
    if (cfg->ckpt_dir && (rc = ensure_dir(cfg->ckpt_dir))) return rc;
    return ENG_OK;
}

/* The shared networks and the ensemble's members, trained on the own-model products own [n_own]
 * (warm from their checkpoints when they fit).  Returns 0 or a status. */
static int shared_stage(cmp_ctx *c, int *own, int n_own) {
    double ts = eng_now();
    eng_stage_mark sm = eng_stage_begin();
    int rc = cmp_shared_train(c, own, n_own);
    if (!rc) rc = cmp_ens_train(c, own, n_own);
    if (rc) return rc;
    eng_stage_end("cmp.shared", sm);
    if (c->cfg->hold_z > 0 && c->ens_n == 0)
        ENG_INFO("compare: compare.hold_z %g has no members to agree (compare.ensemble 1, or shards / MPI ranks): "
                 "not applied", c->cfg->hold_z);
    if (c->cfg->ft_steps == 0) { /* the groups' networks are these (group_agents) */
        if (c->sh_loaded) warm_loaded++;
        else warm_fresh++;
    }
    c->res->seconds_train += eng_now() - ts;
    return ENG_OK;
}

/* After the evaluation: FQE's long-term values (MPI: every rank its chunks, the values to rank 0),
 * then the next prices from the agents refitted on every day (compare.refit; the OPE values are
 * done).  Returns 0 or a status. */
static int fqe_and_refit(cmp_ctx *c, const int *own, int n_own) {
    eng_stage_mark sm = eng_stage_begin();
    int rc = cmp_fqe_run(c);
    eng_stage_end("cmp.fqe", sm);
    if (rc || !c->cfg->shared || !c->cfg->refit || n_own <= 0) return rc;
    double t0 = eng_now();
    sm = eng_stage_begin();
    rc = cmp_refit_run(c, own, n_own);
    eng_stage_end("cmp.refit", sm);
    c->res->seconds_train += eng_now() - t0;
    return rc;
}

int exp_compare_run(const db_history *h, const exp_compare_cfg *cfg, const eng_backend *be,
                    exp_progress_fn progress, void *ctx, exp_results **out) {
    int rc;
    cmp_ctx c;
    int *own = NULL, *shortp = NULL;
    int64_t *ntr = NULL; /* [n_products] training rows of each product (every rank's) */
    int gathered = 0; /* MPI: the ranks have agreed (a failure before must still tell them) */
    warm_loaded = warm_fresh = 0;
    if (!out) return eng_err_set(ENG_EINVAL, "exp_compare_run: NULL out");
    *out = NULL;
    const int asym0 = feat_demand_asym(); /* put back on return: the setting is this run's */
    if ((rc = cmp_ctx_init(&c, h, cfg, be))) { /* checks cfg */
        if (cfg && cfg->shard_count > 1) { /* tell the other ranks */
            c.cfg = cfg;
            (void)cmp_shard_gather(&c, rc);
        }
        return rc;
    }
    feat_demand_set_asym(cfg->demand_asym); /* the one demand model's reference form */
    if ((rc = results_alloc(&c))) goto fail;
    /* which shard (MPI: rank) owns each product: FNV-1a 64 of its id (exp_compare_shard.c) */
    c.mine = calloc((size_t)h->n_products, 1);
    c.owner = calloc((size_t)h->n_products, sizeof *c.owner);
    c.has_eval = calloc((size_t)h->n_products, 1);
    if (!c.mine || !c.owner || !c.has_eval) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
        goto fail;
    }
    for (int p = 0; p < h->n_products; p++) {
        c.owner[p] = cmp_shard_owner(&c, p);
        c.res->products[p].rank = cfg->shard_count <= 1 ? 0 : c.owner[p];
        c.mine[p] = cfg->shard_count <= 1 || c.owner[p] == cfg->shard_index;
    }

    /* 1. features, rewards, transitions, the reward model */
    double t0 = eng_now();
    if ((rc = cmp_prepare(&c))) goto fail;
    c.res->seconds_features = eng_now() - t0;
    if (progress) progress(ctx, "features", h->n_products, h->n_products);

    /* 2. partition: own models vs the pooled fallback (MPI: the training-row counts of every
     * rank's products, so every rank has the same lists and stream keys) */
    own = malloc((size_t)h->n_products * sizeof *own);
    shortp = malloc((size_t)h->n_products * sizeof *shortp);
    ntr = calloc((size_t)h->n_products + 1, sizeof *ntr);
    if (!own || !shortp || !ntr) rc = eng_err_set(ENG_ENOMEM, "compare: out of memory");
    if (cfg->shard_count > 1) rc = eng_par_agree(rc);
    if (rc) goto fail;
    for (int p = 0; p < h->n_products; p++)
        for (size_t r = c.off[p]; r < c.off[p + 1]; r++) ntr[p] += cmp_is_train(&c, r);
    if (cfg->shard_count > 1 && (rc = eng_par_allreduce_i64(ntr, h->n_products, ENG_PAR_SUM))) goto fail;
    int n_own = 0, n_short = 0;
    for (int p = 0; p < h->n_products; p++) {
        if (ntr[p] >= cfg->min_history) own[n_own++] = p;
        else shortp[n_short++] = p;
    }
    cmp_progress pg = {progress, ctx, 0};
    if (cfg->shared && n_own > 0 && (rc = shared_stage(&c, own, n_own))) goto fail;
    rc = cmp_run_own(&c, own, n_own, &pg);
    if (!rc && n_short) rc = cmp_run_short_shards(&c, shortp, n_short, n_own, ntr, &pg);
    for (int p = 0; p < h->n_products; p++) /* FQE's sample: who has evaluation rows (own products) */
        for (size_t r = c.off[p]; c.mine[p] && !c.has_eval[p] && r < c.off[p + 1]; r++) c.has_eval[p] = cmp_is_eval(&c, r);
    if (cfg->shard_count > 1) { /* every rank, failed or not */
        eng_stage_mark sm = eng_stage_begin();
        rc = cmp_shard_gather(&c, rc);
        eng_stage_end("cmp.gather", sm);
    }
    gathered = 1;
    if (rc) goto fail;
    cmp_residual_total(&c);

    /* 3. long-term values, the refit's next prices, totals */
    double t3 = eng_now();
    if ((rc = fqe_and_refit(&c, own, n_own))) goto fail;
    if (cfg->shard_count > 1 && cfg->shard_index != 0) { /* every product's results, no totals */
        *out = c.res;
        c.res = NULL;
        goto fail;
    }
    eng_stage_mark sm3 = eng_stage_begin();
    if ((rc = cmp_totals(&c))) goto fail;
    eng_stage_end("cmp.totals", sm3);
    c.res->seconds_ope += eng_now() - t3;
    if (progress) progress(ctx, "fqe", h->n_products, h->n_products); /* its own stage in the progress lines */
    ENG_INFO("compare: %d products (%d own models in %d groups, %d short), features %.2fs, train %.2fs, ope %.2fs",
             h->n_products, n_own, (n_own + cfg->group_size - 1) / cfg->group_size, n_short,
             c.res->seconds_features, c.res->seconds_train, c.res->seconds_ope);
    *out = c.res;
    c.res = NULL;
fail:
    if (rc && cfg->shard_count > 1 && !gathered) (void)cmp_shard_gather(&c, rc);
    exp_results_free(c.res);
    env_transitions_free(c.tr);
    ope_qmodel_free(&c.qm);
    free(c.row_promo);
    cmp_agents_free(&c);
    free(c.sums);
    free(c.ess_p);
    free(c.res2_p);
    free(c.resn_p);
    free(c.mine);
    free(c.owner);
    free(c.has_eval);
    free(ntr);
    free(c.off);
    free(own);
    free(shortp);
    feat_demand_set_asym(asym0);
    return rc;
}
