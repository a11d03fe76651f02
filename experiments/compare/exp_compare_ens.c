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

/* The current parameters' outputs of rows x [rows][SA] added into qv, act (add = 1) or written
 * (add = 0), in batches of `batch` rows.  Returns 0 or a status. */
static int ens_pass(cmp_ctx *c, const float *x, int rows, int batch, float *qv, float *act, int add, float *tq, float *ta) {
    const int K = c->K, SA = c->SA;
    for (int r0 = 0; r0 < rows; r0 += batch) {
        const int nb = rows - r0 < batch ? rows - r0 : batch;
        float *q = add ? tq : qv + (size_t)r0 * K, *a = add ? ta : act + r0;
        int rc = agt_dqn_q_values(c->sh_agt_dqn, x + (size_t)r0 * SA, nb, q);
        if (!rc) rc = eng_model_infer(agt_ddpg_actor(c->sh_agt_ddpg), x + (size_t)r0 * SA, nb, a);
        if (rc) return rc;
        if (!add) continue;
        for (size_t i = 0; i < (size_t)nb * K; i++) qv[(size_t)r0 * K + i] += tq[i];
        for (int i = 0; i < nb; i++) act[r0 + i] += ta[i];
    }
    return ENG_OK;
}

int cmp_ens_infer(cmp_ctx *c, const float *x, int rows, int batch, float *qv, float *act) {
    const int K = c->K, M = c->ens_n;
    int rc = ens_pass(c, x, rows, batch, qv, act, 0, NULL, NULL);
    if (rc || M == 0) return rc;
    eng_model *mq = agt_dqn_online(c->sh_agt_dqn), *ma = agt_ddpg_actor(c->sh_agt_ddpg);
    const size_t np_q = eng_model_nparams(mq), np_a = eng_model_nparams(ma);
    float *tq = malloc((size_t)batch * K * sizeof *tq), *ta = malloc((size_t)batch * sizeof *ta);
    if (!tq || !ta) rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (ensemble)");
    for (int e = 0; !rc && e < M; e++) {
        rc = eng_model_set_product(mq, ENG_VIEW_PARAMS, 0, c->ens_dqn + (size_t)e * np_q);
        if (!rc) rc = eng_model_set_product(ma, ENG_VIEW_PARAMS, 0, c->ens_actor + (size_t)e * np_a);
        if (!rc) rc = ens_pass(c, x, rows, batch, qv, act, 1, tq, ta);
    }
    /* the shared networks back (their parameters: c->sh_dqn, c->sh_actor) */
    int rc2 = eng_model_set_product(mq, ENG_VIEW_PARAMS, 0, c->sh_dqn);
    if (!rc2) rc2 = eng_model_set_product(ma, ENG_VIEW_PARAMS, 0, c->sh_actor);
    free(tq);
    free(ta);
    if (rc) return rc;
    if (rc2) return rc2;
    const float inv = 1.0f / (float)(M + 1);
    for (size_t i = 0; i < (size_t)rows * K; i++) qv[i] *= inv;
    for (int i = 0; i < rows; i++) act[i] *= inv;
    return ENG_OK;
}

int cmp_ens_members(cmp_ctx *c, const float *x, int rows, int batch, float *qm, float *am) {
    const int K = c->K, M = c->ens_n;
    int rc = ens_pass(c, x, rows, batch, qm, am, 0, NULL, NULL);
    if (rc || M == 0) return rc;
    eng_model *mq = agt_dqn_online(c->sh_agt_dqn), *ma = agt_ddpg_actor(c->sh_agt_ddpg);
    const size_t np_q = eng_model_nparams(mq), np_a = eng_model_nparams(ma);
    for (int e = 0; !rc && e < M; e++) {
        rc = eng_model_set_product(mq, ENG_VIEW_PARAMS, 0, c->ens_dqn + (size_t)e * np_q);
        if (!rc) rc = eng_model_set_product(ma, ENG_VIEW_PARAMS, 0, c->ens_actor + (size_t)e * np_a);
        if (!rc) rc = ens_pass(c, x, rows, batch, qm + (size_t)(e + 1) * rows * K, am + (size_t)(e + 1) * rows, 0, NULL, NULL);
    }
    int rc2 = eng_model_set_product(mq, ENG_VIEW_PARAMS, 0, c->sh_dqn); /* the shared networks back */
    if (!rc2) rc2 = eng_model_set_product(ma, ENG_VIEW_PARAMS, 0, c->sh_actor);
    return rc ? rc : rc2;
}
