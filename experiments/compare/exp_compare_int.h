/* exp_compare_int.h - internals shared by exp_compare.c (features, training, warm start; the
 * driver), exp_compare_eval.c (guarded policies, per-product OPE, totals) and exp_compare_fqe.c
 * (long-term values).  Not a public header.  exp_compare.c calls the other two; they call only
 * what this header defines inline and the layers below (no include circle). */
#ifndef EXP_COMPARE_INT_H
#define EXP_COMPARE_INT_H

#include "exp_compare.h"
#include "feat.h"
#include "ope_qmodel.h"

/* Per product and agent: sums over the product's evaluation rows of the per-row terms, so the
 * totals can pool rows across products and bootstrap products as clusters. */
/* CMP_S_HOLD (history's slot only): the sum of the DR terms of holding the incumbent price */
enum { CMP_S_N = 0, CMP_S_W, CMP_S_W2, CMP_S_IPS, CMP_S_DM, CMP_S_DR, CMP_S_SWDR, CMP_S_WMAX, CMP_S_HOLD, CMP_S_COUNT };

typedef struct cmp_ctx {
    const db_history *h;
    const exp_compare_cfg *cfg;
    const eng_backend *be;
    env_transitions *tr;   /* every transition of h, states normalised with norm */
    size_t *off;           /* [n_products + 1]: product p's transitions are off[p] .. off[p+1]-1 */
    int T, F, K, train_end;
    feat_norm norm;
    exp_results *res;
    ope_qmodel qm;         /* fitted before training (cmp_qmodel_fit); qm.D == 0: none */
    double *sums;          /* [n_products][EXP_N_AGENTS][CMP_S_COUNT] */
    double *ess_p;         /* [n_products][EXP_N_AGENTS] per-product ESS of the agent's weights */
    double eval_res2;      /* sum of squared scaled residuals r - q(s, a) on evaluation rows */
    long eval_res_n;
    double *res2_p;        /* [n_products] each product's part of eval_res2 (summed in product
                              order by cmp_residual_total, whichever rank evaluated it) */
    long *resn_p;          /* [n_products] its part of eval_res_n */
    unsigned char *mine;   /* [n_products] 1: this rank trains and evaluates the product (all
                              1 in one process; exp_compare_shard.c under MPI) */
} cmp_ctx;

/* An unavailable value with NaN numbers and the note. */
void cmp_value_unset(ope_value *v, const char *note);

/* 1 when transition r's own period ran a promotion (db_history.promo), else 0. */
int cmp_row_promo(const cmp_ctx *c, size_t r);
/* The uplift of every agent of product p on its n evaluation rows (d: the rows, q the reward
 * model; drt [A][n] the agents' DR terms; ridx the rows' transitions) into res->products[p]
 * .uplift, and history's CMP_S_HOLD sum (exp_compare_uplift.c).  Returns 0 or ENG_ENOMEM. */
int cmp_paired_uplift(cmp_ctx *c, int p, int n, const double *drt, const ope_bandit *d, const size_t *ridx,
                      uint64_t seed_p);

/* 1 when transition i belongs to the training window / the evaluation window. */
static inline int cmp_is_train(const cmp_ctx *c, size_t i) { return c->tr->t[i] < c->train_end; }
static inline int cmp_is_eval(const cmp_ctx *c, size_t i) { return c->cfg->eval_all || c->tr->t[i] >= c->train_end; }

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

/* FQE of every agent's long-term value (exp_compare_fqe.c) on all or a seeded sample of
 * compare.fqe_products products, after every product was evaluated: fills
 * longterm[a].v[OPE_FQE] (others: unavailable with the reason), res->fqe_products,
 * fqe_eligible and seconds_fqe.  Returns 0 or a negative status (FQE's). */
int cmp_fqe_run(cmp_ctx *c);

/* eval_res2 / eval_res_n from the per-product parts, in product order. */
void cmp_residual_total(cmp_ctx *c);

/* MPI (exp_compare_shard.c, docs/mpi.md): the rank that trains and evaluates product p when
 * the run is split over cfg->shard_count ranks: FNV-1a 64 of the product id modulo the count;
 * products with too short a history (the pooled model) belong to rank 0. */
int cmp_shard_owner(const cmp_ctx *c, int p, int is_short);
/* Agree on the status over the ranks, then send every product this rank evaluated to rank 0,
 * which copies them into c->res, res2_p/resn_p, sums and ess_p.  Returns 0 or the first
 * failing rank's status (message "rank R: ..."), ENG_EIO when a rank does not answer. */
int cmp_shard_gather(cmp_ctx *c, int status);

/* MPI: 1 when FQE chunk `chunk` (of compare.group_size sample products, in sample order) is
 * this rank's (round-robin; always 1 in one process). */
int cmp_shard_fqe_mine(const cmp_ctx *c, int chunk);
/* MPI: agree on status, then send the FQE values of this rank's chunks of the sample el[want]
 * to rank 0.  Returns 0 or the first failure. */
int cmp_shard_fqe_gather(cmp_ctx *c, const int *el, int want, int status);

/* Totals over products and the winners into c->res.  Returns 0 or a negative status. */
int cmp_totals(cmp_ctx *c);

#endif
