/* exp_compare_ens.c - an ensemble of the shared networks (compare.ensemble; docs/compare.md,
 * "An ensemble of the shared networks"): E members trained on the same rows from their own
 * random streams (initial weights, minibatches), the next price from the mean of their
 * Q-values (DQN) and of their actors' outputs (DDPG).  One member's price moves by several
 * grid steps from stream to stream; the mean over members is steadier. */
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "exp_compare_int.h"

/* Member e's networks (group "shared-e<e>": warm-started from its checkpoint like the shared
 * networks, else fresh with stream key e) trained, saved (compare.ckpt_dir) and their
 * parameters copied into slot e - 1 of c->ens_dqn / c->ens_actor / c->ens_critic (np_q / np_a /
 * np_c floats each).
 * Returns 0 or a status. */
static int ens_member(cmp_ctx *c, int *prod, int n, int e, size_t np_q, size_t np_a, size_t np_c) {
    const exp_compare_cfg *cfg = c->cfg;
    cmp_group g;
    memset(&g, 0, sizeof g);
    g.P = 1, g.n = n, g.prod = prod, g.pooled = 1;
    snprintf(g.name, sizeof g.name, "shared-e%d", e);
    int rc = cmp_group_train_warm(c, &g, (uint64_t)e);
    if (!rc) {
        int nb = 0, nb2 = 0;
        agt_dqn_diverged(g.dqn, &nb);
        agt_ddpg_diverged(g.ddpg, &nb2);
        if (nb || nb2) rc = eng_err_set(ENG_ENUM, "compare: ensemble member %d's %s diverged", e, nb ? "DQN" : "DDPG");
    }
    if (!rc && cfg->ckpt_dir) rc = cmp_group_save(c, &g);
    if (!rc) rc = eng_model_get_product(agt_dqn_online(g.dqn), ENG_VIEW_PARAMS, 0, c->ens_dqn + (size_t)(e - 1) * np_q);
    if (!rc) rc = eng_model_get_product(agt_ddpg_actor(g.ddpg), ENG_VIEW_PARAMS, 0, c->ens_actor + (size_t)(e - 1) * np_a);
    if (!rc) rc = eng_model_get_product(agt_ddpg_critic(g.ddpg), ENG_VIEW_PARAMS, 0, c->ens_critic + (size_t)(e - 1) * np_c);
    agt_dqn_free(g.dqn);
    agt_ddpg_free(g.ddpg);
    return rc;
}

int cmp_ens_train(cmp_ctx *c, int *prod, int n) {
    const int E = c->cfg->ensemble;
    /* one process, one shard only: under MPI each rank's one-slot agents are its shard of ONE
     * network (tied gradients); members trained per rank would differ from the one-process
     * night's */
    if (E <= 1 || !c->sh_agt_dqn || !c->sh_agt_ddpg || c->cfg->ft_steps > 0 || c->cfg->fault_diverge >= 0 ||
        c->cfg->shard_count > 1 || c->cfg->shared_shards > 1)
        return ENG_OK;
    const size_t np_q = eng_model_nparams(agt_dqn_online(c->sh_agt_dqn));
    const size_t np_a = eng_model_nparams(agt_ddpg_actor(c->sh_agt_ddpg));
    c->ens_dqn = malloc((size_t)(E - 1) * np_q * sizeof *c->ens_dqn);
    const size_t np_c = eng_model_nparams(agt_ddpg_critic(c->sh_agt_ddpg));
    c->ens_actor = malloc((size_t)(E - 1) * np_a * sizeof *c->ens_actor);
    c->ens_critic = malloc((size_t)(E - 1) * np_c * sizeof *c->ens_critic);
    if (!c->ens_dqn || !c->ens_actor || !c->ens_critic) return eng_err_set(ENG_ENOMEM, "compare: out of memory (ensemble)");
    for (int e = 1; e < E; e++) {
        int rc = ens_member(c, prod, n, e, np_q, np_a, np_c);
        if (rc) return rc;
        c->ens_n = e;
    }
    ENG_INFO("compare: shared networks: an ensemble of %d members", E);
    return ENG_OK;
}

int cmp_members_infer(cmp_ctx *c, int E, const float *const *pq, const float *const *pa, const float *xq,
                      const float *xa, int rows, int batch, float *qv, float *act, float *qm, float *am) {
    const int K = c->K, SQ = c->av[0].SA, SD = c->av[1].SA;
    eng_model *mq = agt_dqn_online(c->sh_agt_dqn), *ma = agt_ddpg_actor(c->sh_agt_ddpg);
    float *tq = malloc((size_t)batch * K * sizeof *tq), *ta = malloc((size_t)batch * sizeof *ta);
    int rc = E < 1 || !tq || !ta ? eng_err_set(E < 1 ? ENG_EINVAL : ENG_ENOMEM, "compare: member inference (%d members)", E)
                                 : ENG_OK;
    for (int e = 0; !rc && e < E; e++) {
        rc = eng_model_set_product(mq, ENG_VIEW_PARAMS, 0, pq[e]);
        if (!rc) rc = eng_model_set_product(ma, ENG_VIEW_PARAMS, 0, pa[e]);
        for (int r0 = 0; !rc && r0 < rows; r0 += batch) {
            const int nb = rows - r0 < batch ? rows - r0 : batch;
            rc = agt_dqn_q_values(c->sh_agt_dqn, xq + (size_t)r0 * SQ, nb, tq);
            if (!rc) rc = eng_model_infer(ma, xa + (size_t)r0 * SD, nb, ta);
            if (rc) break;
            if (qm) memcpy(qm + ((size_t)e * rows + r0) * K, tq, (size_t)nb * K * sizeof *tq);
            if (am) memcpy(am + (size_t)e * rows + r0, ta, (size_t)nb * sizeof *ta);
            if (qv) /* the sum in member order; member 0 written */
                for (size_t i = 0; i < (size_t)nb * K; i++) qv[(size_t)r0 * K + i] = e ? qv[(size_t)r0 * K + i] + tq[i] : tq[i];
            if (act)
                for (int i = 0; i < nb; i++) act[r0 + i] = e ? act[r0 + i] + ta[i] : ta[i];
        }
    }
    /* the shared networks back (their parameters: c->sh_dqn, c->sh_actor) */
    int rc2 = eng_model_set_product(mq, ENG_VIEW_PARAMS, 0, c->sh_dqn);
    if (!rc2) rc2 = eng_model_set_product(ma, ENG_VIEW_PARAMS, 0, c->sh_actor);
    free(tq);
    free(ta);
    if (rc || rc2) return rc ? rc : rc2;
    if (E > 1) {
        const float inv = 1.0f / (float)E;
        for (size_t i = 0; qv && i < (size_t)rows * K; i++) qv[i] *= inv;
        for (int i = 0; act && i < rows; i++) act[i] *= inv;
    }
    return ENG_OK;
}

int cmp_ens_infer(cmp_ctx *c, const float *xq, const float *xa, int rows, int batch, float *qv, float *act, float *qm,
                  float *am) {
    const float *pq[CMP_ENS_MAX], *pa[CMP_ENS_MAX];
    const size_t np_q = eng_model_nparams(agt_dqn_online(c->sh_agt_dqn));
    const size_t np_a = eng_model_nparams(agt_ddpg_actor(c->sh_agt_ddpg));
    const int E = c->ens_n + 1 <= CMP_ENS_MAX ? c->ens_n + 1 : CMP_ENS_MAX;
    pq[0] = c->sh_dqn, pa[0] = c->sh_actor;
    for (int e = 1; e < E; e++) pq[e] = c->ens_dqn + (size_t)(e - 1) * np_q, pa[e] = c->ens_actor + (size_t)(e - 1) * np_a;
    return cmp_members_infer(c, E, pq, pa, xq, xa, rows, batch, qv, act, qm, am);
}
