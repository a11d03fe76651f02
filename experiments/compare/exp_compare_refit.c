/* exp_compare_refit.c - the deployed next price from agents refitted on every day
 * (compare.refit; docs/compare.md, "Refit on every day for the next price").
 *
 * The comparison trains the agents on the training window and values them on the OPE holdout
 * (the last 1 - train_frac of the days).  That holdout is what keeps OPE honest, but it also
 * leaves the most recent days out of the deployed decision.  The standard practice after model
 * selection: refit on all the data for the decision.  Here, after every product was evaluated:
 *   1. the agents' per-product statistics and demand models are fitted again on every day
 *      (c->train_end := c->T; cmp_agents_prepare), so the model rows, the supports, the reward
 *      scales and the validation rows are those of every day;
 *   2. on a cold night the shared networks and each ensemble member continue training from
 *      their trained parameters (fresh Adam state and replay: every day's real rows and model
 *      rows) for refit_frac of shared_steps, early stopping on the real validation rows as a warm
 *      start does (the trained networks are the first best); on a warm night (the shared
 *      networks warm-started) and with refit_frac 0 they stay as trained tonight: the refit is
 *      every day's statistics only, which is where its gain was measured to come from, and a
 *      warm night stays cheap;
 *   3. the DQN's and DDPG's next prices of the own-model products are priced with the mean over
 *      the refitted members, guarded as the comparison guards every price.
 * The OPE values, the trajectories, FQE and the checkpoints stay the training window's agents'
 * (a saved refit network would have seen days that are tomorrow's OPE holdout). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "exp_compare_int.h"

#define RF_BATCH 256 /* rows per inference call */

/* The members that price: member e's DQN online and DDPG actor parameters at pq[e] / pa[e], the
 * trained ones (0: the shared networks, e >= 1: ensemble member e) until rf_member points them
 * at its refitted copy in buf_q / buf_a ([E][np], allocated only when the members train). */
typedef struct rf_params {
    int E;
    size_t np_q, np_a;
    const float *pq[CMP_ENS_MAX], *pa[CMP_ENS_MAX];
    float *buf_q, *buf_a;
} rf_params;

/* Member e's trained parameters (rf->pq[e], rf->pa[e] and its critic) into a fresh one-slot group
 * over prod [n], trained for `steps` with early stopping from them, then its DQN online and DDPG
 * actor into slot e of rf's buffers, where pq[e] / pa[e] then point.  *diverged := 1 when the
 * member diverged (rf untouched).  Returns 0 or a status. */
static int rf_member(cmp_ctx *c, int *prod, int n, int e, long steps, rf_params *rf, int *diverged) {
    cmp_group g;
    memset(&g, 0, sizeof g);
    g.P = 1, g.n = n, g.prod = prod, g.pooled = 1;
    snprintf(g.name, sizeof g.name, e ? "refit-e%d" : "refit", e);
    /* stream key: the member's, moved off the training's streams */
    int rc = cmp_group_create_shared(c, &g, (uint64_t)e + 0x5EF17000ULL);
    const float *q = rf->pq[e], *a = rf->pa[e];
    const size_t np_c = eng_model_nparams(agt_ddpg_critic(c->sh_agt_ddpg));
    const float *cr = e ? c->ens_critic + (size_t)(e - 1) * np_c : c->sh_critic;
    if (!rc) rc = eng_model_set_product(agt_dqn_online(g.dqn), ENG_VIEW_PARAMS, 0, q);
    if (!rc) rc = eng_model_set_product(agt_ddpg_actor(g.ddpg), ENG_VIEW_PARAMS, 0, a);
    if (!rc) rc = eng_model_set_product(agt_ddpg_critic(g.ddpg), ENG_VIEW_PARAMS, 0, cr);
    if (!rc) rc = agt_dqn_sync_target(g.dqn);
    if (!rc) rc = agt_ddpg_sync_targets(g.ddpg);
    g.loaded = 1; /* train_one: the trained networks are the first best, warm patience */
    if (!rc) rc = cmp_group_train_nets(c, &g, steps, steps, -1);
    int nb = 0, nb2 = 0;
    if (!rc) {
        agt_dqn_diverged(g.dqn, &nb);
        agt_ddpg_diverged(g.ddpg, &nb2);
        *diverged = nb || nb2;
    }
    float *bq = rf->buf_q + (size_t)e * rf->np_q, *ba = rf->buf_a + (size_t)e * rf->np_a;
    if (!rc && !*diverged) rc = eng_model_get_product(agt_dqn_online(g.dqn), ENG_VIEW_PARAMS, 0, bq);
    if (!rc && !*diverged) rc = eng_model_get_product(agt_ddpg_actor(g.ddpg), ENG_VIEW_PARAMS, 0, ba);
    if (!rc && !*diverged) rf->pq[e] = bq, rf->pa[e] = ba;
    agt_dqn_free(g.dqn);
    agt_ddpg_free(g.ddpg);
    return rc;
}

/* One guarded next price: the price, the guard's reasons and the support gap. */
typedef struct rf_out {
    double price;
    uint32_t why;
    float gap;
} rf_out;

/* The guarded next price of product p for candidate `cand` into *o.  Returns 0 or the guard's
 * failure (*o untouched). */
static int rf_guard(const cmp_ctx *c, int p, double inc, double cand, rf_out *o, int ddpg) {
    env_guard_bounds b = cmp_agent_bounds(c, p, inc, ddpg); /* DDPG's band (compare.ddpg_band) */
    double price;
    uint32_t why = 0;
    int rc = env_guard_apply(&c->cfg->guard, &b, cand, &price, &why, NULL, NULL);
    if (rc) return rc;
    o->price = price, o->why = why, o->gap = cmp_support_gap(c, p, price);
    return ENG_OK;
}

/* The next prices of the products prod [n] (status EXP_OK, with a reference price) from rf:
 * DQN's supported argmax of the mean Q-values, DDPG's clipped mean actor output; with
 * compare.hold_z the incumbent where the refitted members do not agree on the move (the rule
 * of the evaluation, exp_compare_hold.c).  *priced := the products repriced.  Returns 0 or a
 * status. */
static int rf_price(cmp_ctx *c, const int *prod, int n, const rf_params *rf, int *priced) {
    const int K = c->K, SQ = c->av[0].SA, SD = c->av[1].SA;
    float *x = malloc((size_t)(n ? n : 1) * SQ * sizeof *x), *qv = malloc((size_t)(n ? n : 1) * K * sizeof *qv);
    float *act = malloc((size_t)(n ? n : 1) * sizeof *act);
    float *xd = c->split ? malloc((size_t)(n ? n : 1) * SD * sizeof *xd) : x; /* DDPG's states (its own view) */
    int *use = malloc((size_t)(n ? n : 1) * sizeof *use);
    const int hold = c->cfg->hold_z > 0 && rf->E >= 2;
    float *qm = hold ? malloc((size_t)rf->E * (n ? n : 1) * K * sizeof *qm) : NULL;
    float *am = hold ? malloc((size_t)rf->E * (n ? n : 1) * sizeof *am) : NULL;
    int rc = !x || !xd || !qv || !act || !use || (hold && (!qm || !am)) ? eng_err_set(ENG_ENOMEM, "compare: out of memory (refit)")
                                                                 : ENG_OK;
    int m = 0;
    float raw[FEAT_N];
    for (int i = 0; !rc && i < n; i++) {
        const int p = prod[i];
        double ref;
        int med;
        if (c->res->products[p].status != EXP_OK || env_reference_price(c->h, p, &ref, &med)) {
            eng_err_clear();
            continue;
        }
        if ((rc = feat_state(c->h, p, c->T, raw))) break;
        feat_agent_state(raw, &c->av[0].ap[p], x + (size_t)m * SQ);
        if (c->split) feat_agent_state(raw, &c->av[1].ap[p], xd + (size_t)m * SD);
        use[m++] = p;
    }
    if (!rc && m) rc = cmp_members_infer(c, rf->E, rf->pq, rf->pa, x, xd, m, RF_BATCH, qv, act, qm, am);
    cmp_actions ha; /* the hold rule's view of the members: row i is "period" i */
    memset(&ha, 0, sizeof ha);
    if (hold) ha.ens_E = rf->E, ha.ens_q = qm, ha.ens_q_stride = (size_t)m * K, ha.ens_a = am, ha.ens_a_stride = (size_t)m;
    const float band = (float)cmp_ddpg_band(c->cfg);
    rf_out *out = rc ? NULL : malloc((size_t)(m ? m : 1) * 2 * sizeof *out); /* [m][DQN, DDPG] */
    if (!rc && !out) rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (refit)");
    for (int i = 0; !rc && i < m; i++) {
        const int p = use[i];
        double ref;
        int med;
        if ((rc = env_reference_price(c->h, p, &ref, &med)) || (rc = feat_state(c->h, p, c->T, raw))) break;
        const double inc = raw[FEAT_PRICE_CUR];
        const int lv = cmp_dqn_pick(c, p, qv + (size_t)i * K);
        const float rt = cmp_ddpg_clip(c, p, 1.0f + band * act[i]);
        const double qc = cmp_hold_dqn(c, &ha, i, lv, inc / ref) ? inc : ref * env_grid_ratio(&c->cfg->grid, lv);
        const double dc = cmp_hold_ddpg(c, &ha, i, inc / ref) ? inc : ref * (double)rt;
        if ((rc = rf_guard(c, p, inc, qc, &out[2 * i], 0)) || (rc = rf_guard(c, p, inc, dc, &out[2 * i + 1], 1))) break;
    }
    for (int i = 0; !rc && i < m; i++) /* every product's prices or none */
        for (int k = 0; k < 2; k++) {
            exp_product_result *pr = &c->res->products[use[i]];
            const int a = k ? EXP_AGENT_DDPG : EXP_AGENT_DQN;
            pr->price[a] = out[2 * i + k].price;
            pr->guard_reasons[a] = out[2 * i + k].why;
            pr->support_gap[a] = out[2 * i + k].gap;
        }
    *priced = rc ? 0 : m;
    free(out);
    if (xd != x) free(xd);
    free(x);
    free(qv);
    free(act);
    free(use);
    free(qm);
    free(am);
    return rc;
}

/* compare.refit_carry 0: keeps in prod [n] (in order, in place) the products whose every-day
 * demand model (c->ap, refitted) shows no carry-over; the others keep the training window's
 * agents' prices.  refit_carry 1: all.  Returns the count kept. */
static int rf_keep(const cmp_ctx *c, int *prod, int n) {
    if (c->cfg->refit_carry) return n;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!(c->av[0].ap[prod[i]].mok && feat_demand_lag_carries(&c->av[0].ap[prod[i]].dm, 2.0))) prod[m++] = prod[i];
    if (m < n) ENG_INFO("compare: compare.refit_carry 0: %d of %d products show carry-over and keep the training window's agents' prices", n - m, n);
    return m;
}

int cmp_refit_run(cmp_ctx *c, const int *prod, int n) {
    const exp_compare_cfg *cfg = c->cfg;
    if (!cfg->refit || n <= 0) return ENG_OK;
    if (!cfg->shared || !cfg->agent_state || !c->sh_agt_dqn || !c->sh_agt_ddpg || !c->sh_dqn || cfg->ft_steps > 0 ||
        cfg->fault_diverge >= 0 || cfg->shard_count > 1 || cfg->shared_shards > 1) {
        ENG_INFO("compare: compare.refit: not applied (needs the one-process shared networks without shards, "
                 "fine-tuning or fault_diverge); the next prices are the training window's agents'");
        return ENG_OK;
    }
    if (c->train_end >= c->T) return ENG_OK; /* no holdout: the agents saw every day */
    double t0 = eng_now();
    /* 1. every day's statistics and demand models (the training window's are not used after
     * the evaluation, FQE included) */
    cmp_agents_free_stats(c);
    const int te = c->train_end;
    c->train_end = c->T;
    int rc = cmp_agents_prepare(c);
    int *pr = malloc((size_t)n * sizeof *pr);
    /* 2. every member continues for refit_frac of the budget on a cold night; after a warm
     * start (a warm night: cheap) and with refit_frac 0, the networks stay as trained tonight and
     * only the statistics are every day's (where the refit's gain was measured to come from) */
    const long steps = c->sh_loaded ? 0 : (long)llround(cfg->refit_frac * (double)cfg->shared_steps);
    rf_params rf;
    memset(&rf, 0, sizeof rf);
    rf.E = 1 + c->ens_n <= CMP_ENS_MAX ? 1 + c->ens_n : CMP_ENS_MAX;
    rf.np_q = eng_model_nparams(agt_dqn_online(c->sh_agt_dqn));
    rf.np_a = eng_model_nparams(agt_ddpg_actor(c->sh_agt_ddpg));
    rf.pq[0] = c->sh_dqn, rf.pa[0] = c->sh_actor;
    for (int e = 1; e < rf.E; e++)
        rf.pq[e] = c->ens_dqn + (size_t)(e - 1) * rf.np_q, rf.pa[e] = c->ens_actor + (size_t)(e - 1) * rf.np_a;
    if (steps > 0) {
        rf.buf_q = malloc((size_t)rf.E * rf.np_q * sizeof *rf.buf_q);
        rf.buf_a = malloc((size_t)rf.E * rf.np_a * sizeof *rf.buf_a);
    }
    if (!rc && (!pr || (steps > 0 && (!rf.buf_q || !rf.buf_a)))) rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (refit)");
    if (!rc) memcpy(pr, prod, (size_t)n * sizeof *pr);
    int diverged = 0, priced = 0;
    for (int e = 0; !rc && steps > 0 && !diverged && e < rf.E; e++) rc = rf_member(c, pr, n, e, steps, &rf, &diverged);
    /* 3. the next prices */
    if (!rc && diverged)
        ENG_WARN("compare: compare.refit: a refitted member diverged; the next prices stay the training window's agents'");
    else if (!rc)
        rc = rf_price(c, pr, rf_keep(c, pr, n), &rf, &priced);
    c->train_end = te;
    if (rc) { /* the evaluation is done and its prices stand: a failed refit costs the refit only */
        ENG_WARN("compare: compare.refit failed (%s); the next prices stay the training window's agents'", eng_err_msg());
        eng_err_clear();
        rc = ENG_OK, priced = 0;
    } else if (!diverged) {
        c->res->refit_products = priced;
        ENG_INFO("compare: compare.refit: the DQN's and DDPG's next prices of %d products come from the agents refitted "
                 "on every day (%d periods; %d members, %ld more steps at most each, %.2fs); OPE values the training "
                 "window's (%d periods)",
                 priced, c->T, rf.E, steps, eng_now() - t0, te);
    }
    free(pr);
    free(rf.buf_q);
    free(rf.buf_a);
    return rc;
}
