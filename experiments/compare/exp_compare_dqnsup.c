/* exp_compare_dqnsup.c - compare.dqn_smooth_support: the DQN trains its smoothness (and CQL)
 * terms over the levels its products may choose, not over every grid level (docs/compare.md,
 * "A wider grid for the DQN (q12grid)").  A level outside every product's support gets no row
 * and no pick; with the smoothness over every level its output (whatever the shared hidden
 * layers make of it) pulled the support's edge levels through the second differences. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "env_action.h"
#include "exp_compare_int.h"

/* Marks in m [K] the levels product p may choose under compare.dqn_support (cmp_dqn_pick's
 * rule).  Returns the count of levels marked (0: nothing logged in training). */
static int mark_levels(const cmp_ctx *c, int p, unsigned char *m) {
    const int K = c->K, mode = c->cfg->dqn_support, w = c->cfg->support_steps;
    const int *cnt = c->lvl_count + (size_t)p * K;
    int lo = K, hi = -1, n = 0;
    for (int k = 0; k < K; k++)
        if (cnt[k] > 0) lo = k < lo ? k : lo, hi = k;
    if (hi < 0) return 0;
    for (int k = 0; k < K; k++) {
        const int ok = mode == 0 || cnt[k] > 0 || (mode == 2 && k >= lo - w && k <= hi + w);
        if (ok && !m[k]) m[k] = 1, n++;
    }
    return n;
}

int cmp_dqn_group_support(const cmp_ctx *c, cmp_group *g, const int *all, int n_all) {
    if (!c->cfg->dqn_smooth_support || !g->dqn) return ENG_OK;
    const int K = c->K, P = g->P;
    unsigned char *m = calloc((size_t)P * K, 1);
    if (!m) return eng_err_set(ENG_ENOMEM, "compare: out of memory (DQN support)");
    if (g->pooled || g->tied) { /* one network: the union over every product, in every slot */
        const int *pr = all ? all : g->prod, n = all ? n_all : g->n;
        for (int i = 0; i < n; i++) mark_levels(c, pr[i], m);
        if (g->tied && eng_par_size() > 1) { /* tied shards: every rank's products (collective; no
                                                * allocation, so no rank can fail before it) */
            int64_t v[ENV_GRID_KMAX];
            for (int k = 0; k < K; k++) v[k] = m[k];
            int rc = eng_par_allreduce_i64(v, K, ENG_PAR_MAX);
            if (rc) { free(m); return rc; }
            for (int k = 0; k < K; k++) m[k] = v[k] ? 1 : 0;
        }
        for (int s = 1; s < P; s++) memcpy(m + (size_t)s * K, m, (size_t)K);
    } else {
        for (int i = 0; i < g->n; i++) mark_levels(c, g->prod[i], m + (size_t)cmp_slot_of(g, i) * K);
    }
    for (int s = 0; s < P; s++) {
        int any = 0;
        for (int k = 0; k < K; k++) any |= m[(size_t)s * K + k];
        if (!any) memset(m + (size_t)s * K, 1, (size_t)K); /* nothing logged: every level */
    }
    int rc = agt_dqn_set_support(g->dqn, m);
    free(m);
    return rc;
}
