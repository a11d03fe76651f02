/* exp_compare_int.h - internals shared by exp_compare.c (features, training, warm start) and
 * exp_compare_eval.c (guarded policies, per-product OPE, totals).  Not a public header. */
#ifndef EXP_COMPARE_INT_H
#define EXP_COMPARE_INT_H

#include "exp_compare.h"
#include "feat.h"

typedef struct cmp_ctx {
    const db_history *h;
    const exp_compare_cfg *cfg;
    const eng_backend *be;
    env_transitions *tr;   /* every transition of h, states normalised with norm */
    size_t *off;           /* [n_products + 1]: product p's transitions are off[p] .. off[p+1]-1 */
    int T, F, K, train_end;
    feat_norm norm;
    exp_results *res;
} cmp_ctx;

/* 1 when transition i belongs to the training window / the evaluation window. */
int cmp_is_train(const cmp_ctx *c, size_t i);
int cmp_is_eval(const cmp_ctx *c, size_t i);

/* Greedy actions of one product for the states of periods 0..T (T+1 entries): levels of
 * DQN and LinUCB, DDPG's ratio, the fixed level; held[a] = 1 makes agent a hold the
 * incumbent (divergence, no model). */
typedef struct cmp_actions {
    int *dqn_level;     /* [T+1] */
    int *lin_level;     /* [T+1] */
    float *ddpg_ratio;  /* [T+1] */
    int fixed_level;
    int held[EXP_N_AGENTS];
} cmp_actions;

/* Best fixed level of product p from its training transitions (see exp_compare.h). */
int cmp_fixed_level(const cmp_ctx *c, int p);

/* Fill c->res->products[p] (prices, trajectories, OPE) from the actions.  Status and note
 * are set by the caller before.  Returns 0 or a negative status. */
int cmp_eval_product(cmp_ctx *c, int p, const cmp_actions *act);

/* Totals over products and the winners into c->res.  Returns 0 or a negative status. */
int cmp_totals(cmp_ctx *c);

#endif
