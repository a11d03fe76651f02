/* exp_compare_int.h - internals shared by exp_compare.c (features, training, warm start; the
 * driver), exp_compare_eval.c (guarded policies, per-product OPE, totals) and exp_compare_fqe.c
 * (long-term values).  Not a public header.  exp_compare.c calls the other two; they call only
 * what this header defines inline and the layers below (no include circle). */
#ifndef EXP_COMPARE_INT_H
#define EXP_COMPARE_INT_H

#include <math.h>

#include "exp_compare.h"
#include "eng_util.h"
#include "feat.h"
#include "feat_agent.h"
#include "ope_qmodel.h"

#define CMP_ENS_MAX 16 /* compare.ensemble at most (exp_compare_cfg_check) */

/* Per product and agent: sums over the product's evaluation rows of the per-row terms, so the
 * totals can pool rows across products and bootstrap products as clusters. */
/* CMP_S_HOLD (history's slot only): the sum of the DR terms of holding the incumbent price */
enum { CMP_S_N = 0, CMP_S_W, CMP_S_W2, CMP_S_IPS, CMP_S_DM, CMP_S_DR, CMP_S_SWDR, CMP_S_WMAX, CMP_S_HOLD, CMP_S_COUNT };

/* One agent's view of the rows (DQN's or DDPG's): its demand models, states and model-row bases. */
typedef struct cmp_aview {
    int SA;                /* state width the agent sees: cmp_agent_width, or F without agent_state */
    int demand_pool;       /* its demand models' slope prior (compare.demand_pool's agent part: 2
                              the pooled prior, 3 its centre at the weak width, else none) */
    int best;              /* 1: its states carry the best-price slots (compare.agent_best) */
    feat_agent_prod *ap;   /* [n_products] agent-state statistics and demand models (agent_state = 1) */
    float *ast, *anx;      /* [tr->n][SA] agent states s, s' (agent_state = 1; else NULL) */
    double *dyb;           /* [tr->n] reward minus the period's observed rate (= -rate of the
                              period the reward compares with), NaN where the product's demand
                              model cannot value the row (compare.dyna; else NULL) */
    double *um;            /* [tr->n] the DQN's view only (compare.dqn_uplift in effect): the demand
                              model's rate at the state's incumbent (feat_agent_state_rate), NaN
                              where it or the row's dyb is unknown; else NULL */
    float *dyc;            /* [tr->n][2] the row's demand-model context (competitors, previous
                              price: feat_agent_model_ctx), with dyb */
} cmp_aview;

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
    uint8_t *row_promo;    /* [tr->n] the rows' promotion flags the model reads (owned), or NULL */
    double *sums;          /* [n_products][EXP_N_AGENTS][CMP_S_COUNT] */
    double *ess_p;         /* [n_products][EXP_N_AGENTS] per-product ESS of the agent's weights */
    double eval_res2;      /* sum of squared scaled residuals r - q(s, a) on evaluation rows */
    long eval_res_n;
    double *res2_p;        /* [n_products] each product's part of eval_res2 (summed in product
                              order by cmp_residual_total, whichever rank evaluated it) */
    long *resn_p;          /* [n_products] its part of eval_res_n */
    unsigned char *mine;   /* [n_products] 1: this rank trains and evaluates the product (all
                              1 in one process; exp_compare_shard.c under MPI) */
    int *owner;            /* [n_products] the product's shard (cmp_shard_count shards; its rank
                              under MPI): FQE's chunks and the short products' pooled models are
                              formed per shard */
    unsigned char *has_eval; /* [n_products] 1: the product has evaluation rows (its owner's
                              count, exchanged under MPI: FQE's sample is drawn from it) */
    /* DQN / DDPG learning (exp_compare_agents.c, cmp_agents_prepare): each agent's view, av[0]
     * the DQN's, av[1] the DDPG's; one view (av[1] a copy of av[0]'s pointers, owned by av[0])
     * unless compare.ddpg_demand_pool / ddpg_agent_best give DDPG a demand model and state of its
     * own (c->split = 1, cmp_view_split) */
    cmp_aview av[2];
    int split;
    float *rscale;         /* [n_products] reward divisor of the agents (1 with agent_state 0) */
    unsigned char *val;    /* [tr->n] 1: a training row held out for early stopping */
    int *lvl_count;        /* [n_products][K] training rows logged at each grid level */
    float *lo_ratio, *hi_ratio; /* [n_products] logged training ratio range (NaN: none) */
    double *refp;          /* [n_products] reference price of the grid (NaN: none) */
    /* the shared networks' parameters (compare.shared = 1), copied into every product slot */
    float *sh_dqn, *sh_actor, *sh_critic;
    int sh_loaded;         /* 1: the shared networks warm-started from the checkpoints */
    agt_dqn *sh_agt_dqn;   /* the shared networks as one-slot agents (one process, no shards;
                              else NULL): groups that only copy them evaluate with these */
    agt_ddpg *sh_agt_ddpg;
    /* compare.ensemble > 1 (exp_compare_ens.c): the other members' parameters, trained like the
     * shared networks from their own streams; the one-slot agents above price with the mean of
     * every member's Q-values / actor output */
    int ens_n;             /* members besides the shared networks (0: none) */
    float *ens_dqn, *ens_actor, *ens_critic; /* [ens_n][nparams] the members' DQN online / DDPG
                              actor / DDPG critic (the critic: compare.refit continues from it) */
} cmp_ctx;

/* A group of trained agents and the products they price.  Own groups: product i in slot i.
 * The pooled group: one slot shared by every short product (also the shared model: one slot
 * for every product with an own model). */
typedef struct cmp_group {
    int P;           /* slots */
    int n;           /* products */
    int *prod;       /* [n] */
    int pooled;
    char name[32];   /* checkpoint stem: "g<index>" or "pooled" */
    agt_dqn *dqn;
    agt_ddpg *ddpg;
    agt_linucb *lin;
    int loaded;      /* warm-started from ckpt_dir */
    /* the shared networks split into data-parallel shards (exp_compare_agents.c, docs/mpi.md) */
    const int *slot; /* NULL, or [n] the slot (this process's shard) of product i */
    int val_B;       /* > 0: validation rows per slot, the same on every rank; 0: the largest count */
    long rows_total; /* > 0: training rows of every shard (model-based rows per row, compare.dyna) */
    int tied;        /* 1: the slots are shards of ONE network: gradients tied, validation losses
                        combined over every shard (cmp_shared_combine_loss) */
    int shared_eval; /* 1: no networks of its own (dqn, ddpg NULL): its products are priced by
                        c->sh_agt_dqn / c->sh_agt_ddpg (compare.shared, no fine-tuning) */
} cmp_group;

/* Slot of the group's i-th product. */
static inline int cmp_slot_of(const cmp_group *g, int i) { return g->slot ? g->slot[i] : g->pooled ? 0 : i; }

/* Per-product statistics for the agents: reward scales, validation rows, logged-level counts
 * and ratio ranges, reference prices and (agent_state = 1) the agent states of every
 * transition.  Returns 0, ENG_ENOMEM, or feat_state's error. */
int cmp_agents_prepare(cmp_ctx *c);
/* Frees what cmp_agents_prepare and cmp_shared_train allocated (safe on a zeroed ctx). */
void cmp_agents_free(cmp_ctx *c);
/* Frees only what cmp_agents_prepare allocated (the per-row and per-product statistics: states,
 * reward scales, validation rows, supports, demand models, model-row bases) and clears the
 * pointers; the shared networks and the ensemble stay.  Safe on a zeroed ctx. */
void cmp_agents_free_stats(cmp_ctx *c);
/* The shared DQN and DDPG on the training rows of the n products in prod (one slot), with
 * early stopping on their pooled validation rows; parameters kept in c->sh_*.  Returns 0 or
 * a negative status. */
int cmp_shared_train(cmp_ctx *c, int *prod, int n);
/* The shared networks' validation loss over every shard (exp_compare_agents.c): loss [P] the
 * per-slot mean losses of this process's shards over n [P] rows; every entry := the row-weighted
 * mean over every rank's shards, summed in double in shard order (so one process with S shards
 * and S ranks agree to the bit).  Collective under MPI.  Returns 0 or eng_par's failure. */
int cmp_shared_combine_loss(float *loss, const int *n, int P);
/* Create the group's DQN and DDPG (slots P, keys [P] the products' stream keys): fresh, or with
 * every slot set to the shared parameters when compare.shared = 1.  Returns 0 or a status. */
int cmp_group_create_agents(cmp_ctx *c, cmp_group *g, const uint64_t *keys);
/* The one-slot DQN and DDPG of the shared networks' group g (g->P = 1, pooled): fresh, with
 * stream key `key` and the shared batch; the replays hold g's training rows and their model
 * rows.  Returns 0 or the agents' failure (g's agents, possibly partly made, are the caller's). */
int cmp_group_create_shared(cmp_ctx *c, cmp_group *g, uint64_t key);
/* Every slot of the group's DQN and DDPG (and their targets) := tonight's shared parameters
 * (nothing without them).  Returns 0 or a status. */
int cmp_group_set_shared(cmp_ctx *c, cmp_group *g);
/* Fill the group's replays with its products' training rows (validation rows left out) and
 * train DQN for up to dqn_max steps and DDPG for up to ddpg_max steps, with early stopping on
 * each slot's validation rows when val_frac > 0 (the best parameters are restored).  poison:
 * the slot whose DQN gets NaN parameters before its last step (test hook), -1 none.
 * Returns 0 or a negative status. */
int cmp_group_train_nets(cmp_ctx *c, cmp_group *g, long dqn_max, long ddpg_max, int poison);
/* The input states of product p for periods 0..B-1: the DQN's view into xq [B][c->av[0].SA]
 * and, when xd is not NULL, DDPG's into xd [B][c->av[1].SA] from the same period features
 * (without agent_state: the normalised feat-v1 states into xq).  Returns 0 or feat_state's
 * error. */
int cmp_agent_states(const cmp_ctx *c, int p, int B, float *xq, float *xd);
/* Greedy DQN level of product p from its Q-values q [K] under compare.dqn_support. */
int cmp_dqn_pick(const cmp_ctx *c, int p, const float *q);
/* DDPG's ratio of product p under compare.ddpg_support: the logged ratio range +- cmp_ddpg_steps
 * grid steps. */
float cmp_ddpg_clip(const cmp_ctx *c, int p, float ratio);
/* compare.dqn_smooth_support 1: the support of group g's DQN (agt_dqn_set_support), the levels
 * cmp_dqn_pick may choose under compare.dqn_support: a pooled or tied group's every slot the union
 * over the products all [n_all] (NULL: the group's own), else each slot its product's; a slot
 * with no logged level (or dqn_support 0) every level.  So the DQN's smoothness and CQL terms
 * run over the levels its products may choose.  No-op when the setting is 0.  Returns 0,
 * ENG_ENOMEM or agt_dqn_set_support's failure. */
int cmp_dqn_group_support(const cmp_ctx *c, cmp_group *g, const int *all, int n_all);

/* DDPG's support width in grid steps: compare.ddpg_support_steps, or support_steps when it is
 * -1. */
int cmp_ddpg_steps(const exp_compare_cfg *cfg);
/* DDPG's price band: compare.ddpg_band, or grid.band when 0 (the default). */
double cmp_ddpg_band(const exp_compare_cfg *cfg);
/* The grid with DDPG's band (for guarding DDPG's prices: env_guard_bounds_band). */
env_grid cmp_ddpg_grid(const exp_compare_cfg *cfg);
/* The guardrails' bounds of an agent's price for product p with incumbent inc: the grid's band,
 * DDPG's (cmp_ddpg_grid) when ddpg != 0.  No allocation, no failure. */
env_guard_bounds cmp_agent_bounds(const cmp_ctx *c, int p, double inc, int ddpg);
/* 1 when the shared networks get model-based rows (compare.dyna with agent_state, shared and an
 * rcr / drcr reward: the views' dyb), and when the DQN learns uplift targets besides
 * (compare.dqn_uplift with dqn.gamma 0).  Pure. */
int cmp_model_rows_on(const exp_compare_cfg *cfg);
int cmp_dqn_uplift_on(const exp_compare_cfg *cfg);
/* The agents' state width: FEAT_AGENT_N, plus FEAT_AGENT_BEST_N with the best-price slots
 * (best: compare.agent_best, or DDPG's compare.ddpg_agent_best; exp_compare_best.c). */
int cmp_agent_width(int best);
/* The views' settings (exp_compare_best.c): av[0] (DQN) compare.demand_pool / agent_best, av[1]
 * (DDPG) compare.ddpg_demand_pool / ddpg_agent_best where set (>= 0); c->split := 1 when they
 * differ from the DQN's (agent_state only).  No allocation, no failure. */
void cmp_view_split(cmp_ctx *c);
/* Product p's best-price slots in view v (feat_agent.h, v->best) after its fit: v->ap[p].best and
 * the range its model's best price is sought in: the product's min / max price and margin floor,
 * the wider of DQN's and DDPG's bands and (both agents' supports on) of their supports around
 * the logged ratios; the change limit of the guard.  Needs c->refp, lo_ratio, hi_ratio.  No
 * allocation, no failure. */
void cmp_agent_best_setup(const cmp_ctx *c, const cmp_aview *v, int p);
/* Distance of price x from product p's logged training prices, in grid steps (NaN: none). */
float cmp_support_gap(const cmp_ctx *c, int p, double x);

/* The shared networks' training of one process (cmp_shared_train, and each ensemble member in
 * exp_compare_ens.c): group g (g->name names its checkpoint) warm-starts from compare.ckpt_dir
 * when its manifest matches (g->loaded = 1; then warm_frac of the budget), else gets fresh agents
 * with stream key `key` and the shared batch; then trained with compare.shared_steps on g's
 * products.  Saves nothing.  Returns 0 or a status (g's agents, possibly partly made, are the
 * caller's to free). */
int cmp_group_train_warm(cmp_ctx *c, cmp_group *g, uint64_t key);

/* compare.ensemble: train the other members of the shared networks (members 1..E-1, stream
 * keys 1..E-1; fresh with the shared budget, or warm-started from its own checkpoint shared-e<k>
 * with warm_frac of it) on the products prod [n] and keep their
 * parameters (c->ens_*).  Only with the one-slot shared agents of one process (c->sh_agt_dqn, no
 * MPI ranks, no shards, no fine-tuning, no fault_diverge); otherwise nothing.  Returns 0 or a
 * status (a diverged member fails). */
int cmp_ens_train(cmp_ctx *c, int *prod, int n);

/* compare.refit (exp_compare_refit.c; docs/compare.md, "Refit on every day for the next
 * price"): after every product was evaluated (FQE included), the agents' statistics and demand
 * models are refitted on every day (training window and OPE holdout; c->train_end := c->T), the
 * shared networks and each ensemble member continue training from their trained parameters
 * for refit_frac of shared_steps on a cold night (none on a warm night), and the DQN's and
 * DDPG's NEXT prices of the n products
 * prod (the own-model products, priced by the shared agents) are set from them; the OPE values,
 * the trajectories and the checkpoints stay the training window's.  Nothing without compare.refit,
 * under MPI, with shards, fine-tuning or compare.fault_diverge, or without a holdout.  A refit
 * member that diverges, or any failure of the refit (out of memory included), leaves every next
 * price as it was (a warning; the error is cleared): the evaluation's prices stand.  Returns 0. */
int cmp_refit_run(cmp_ctx *c, const int *prod, int n);

/* The outputs of E members (1 <= E <= CMP_ENS_MAX) for the agent states xq [rows][av[0].SA]
 * (the DQN's) and xa [rows][av[1].SA] (the DDPG's; xq again without a split), computed
 * with the one-slot shared agents in batches of `batch` rows: member e's DQN online and DDPG actor
 * parameters at pq[e] / pa[e].  qv [rows][K] Q-values and act [rows] actor outputs (the tanh
 * output, before the band): the mean over the members (NULL: not wanted); qm [E][rows][K] and
 * am [E][rows]: each member's own (NULL: not wanted); all caller-allocated.  The shared agents get
 * their parameters back (c->sh_dqn, c->sh_actor).  Returns 0 or a status. */
int cmp_members_infer(cmp_ctx *c, int E, const float *const *pq, const float *const *pa, const float *xq,
                      const float *xa, int rows, int batch, float *qv, float *act, float *qm, float *am);
/* cmp_members_infer over the ensemble's members: member 0 the shared networks, then the c->ens_n
 * others (one member without an ensemble: the shared agents' own); qm / am [ens_n + 1][...]. */
int cmp_ens_infer(cmp_ctx *c, const float *xq, const float *xa, int rows, int batch, float *qv, float *act, float *qm,
                  float *am);

/* Agent `which` (0 DQN, 1 DDPG)'s state s / next state s' of transition r: its view's agent
 * states, or the transitions' own (normalised feat-v1) without agent_state.  Borrowed. */
static inline const float *cmp_row_state(const cmp_ctx *c, int which, size_t r) {
    const cmp_aview *a = &c->av[which ? 1 : 0];
    return a->ast ? a->ast + r * a->SA : c->tr->state + r * c->F;
}
static inline const float *cmp_row_next(const cmp_ctx *c, int which, size_t r) {
    const cmp_aview *a = &c->av[which ? 1 : 0];
    return a->anx ? a->anx + r * a->SA : c->tr->next_state + r * c->F;
}

/* The DQN's target for a price of row r whose rate (revenue per visitor, or per period for a
 * units model) is `rate`, with compare.dqn_uplift in effect (c->av[0].um): s (rate - m) / m, s
 * compare.dqn_uplift_scale, m the model's rate at the row's incumbent; NaN where m is unknown (the
 * row is left out).  Pure. */
static inline double cmp_dqn_uplift(const cmp_ctx *c, size_t r, double rate) {
    const double m = c->av[0].um[r];
    return isfinite(m) && m > 0 && isfinite(rate) ? c->cfg->dqn_uplift_scale * (rate - m) / m : NAN;
}

/* Most model-based transitions for n training rows: n x dyna, at most dyna_max (exp_compare_dyna.c). */
long cmp_dyna_rows(const cmp_ctx *c, long n);
/* The model-based transitions of the pooled / shared group g (compare.dyna), each agent's from
 * its own view's demand model (exp_compare_dyna.c).  Returns 0 or the agents' failure. */
int cmp_push_model_rows(cmp_ctx *c, cmp_group *g);
/* The reward a real training row r of product p enters agent `which`'s replay with, on the
 * agents' scale: the logged reward, or (model-based rows on) its observed rate blended towards
 * the view's model by compare.dyna_real (cmp_real_reward); the DQN's, with compare.dqn_uplift in
 * effect, that row's rate as cmp_dqn_uplift (NaN: the row stays out of the DQN's replay).  The
 * validation rows keep the logged reward (the DQN's: exp_compare_agents.c, val_build).  Pure. */
float cmp_real_row_reward(const cmp_ctx *c, int which, int p, size_t r);

/* The reward of a real training row with its observed rate blended towards the demand model
 * (compare.dyna_real): reward - lam (observed - model), where observed = reward - base is the
 * priced period's observed rate (base: c->dyb) and model = feat_agent_model_rate_at(pp, price,
 * ctx).  lam 0, a non-finite base or a model that cannot value the price return reward as it is.
 * Pure; nothing to free. */
double cmp_real_reward(const feat_agent_prod *pp, double price, const feat_demand_ctx *ctx, double reward,
                       double base, double lam);

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
/* The base seed of the per-product OPE streams (bootstrap, Replay draws, ridge and pooled
 * reward-model cross-fit folds): derived from compare.seed, so --seed changes every stream, and
 * mixed with ope.seed. */
static inline uint64_t cmp_ope_seed(const exp_compare_cfg *cfg) {
    return eng_seed_derive(eng_seed_derive(cfg->seed, 0x6f7065ULL), cfg->ope.seed);
}

static inline int cmp_is_train(const cmp_ctx *c, size_t i) { return c->tr->t[i] < c->train_end; }
/* 1 when an agent learns from transition i: a training row, and under compare.like_periods a
 * normal (non-promotion) period, so the agents compare prices within like periods and never
 * credit a promotion's lift to its price (their support is the normal periods' prices too). */
static inline int cmp_is_learn(const cmp_ctx *c, size_t i) {
    return cmp_is_train(c, i) && !(c->cfg->like_periods && cmp_row_promo(c, i));
}
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
    /* compare.hold_z > 0 with an ensemble (exp_compare_hold.c): every member's outputs for this
     * product's T+1 states, member e's at ens_q + e * ens_q_stride ([T+1][K] Q-values) and
     * ens_a + e * ens_a_stride ([T+1] actor outputs in [-1, 1]); ens_E = 0: no hold rule */
    const float *ens_q, *ens_a;
    size_t ens_q_stride, ens_a_stride;
    int ens_E;
} cmp_actions;

/* compare.hold_z (exp_compare_hold.c; docs/compare.md, "Hold unless the members agree"): 1 when
 * the DQN's pick `level` at period t should give way to the incumbent ratio u (incumbent /
 * reference price): the members' advantage Q_e(level) - Q_e(u) (Q_e at u interpolated between
 * the neighbouring levels) has a mean <= hold_z times its standard deviation across the members;
 * 0 otherwise (also without members or with hold_z = 0).  Pure; allocates nothing. */
int cmp_hold_dqn(const cmp_ctx *c, const cmp_actions *act, int t, int level, double u);
/* The same for the DDPG at period t: 1 when the members' steps r_e - u (r_e = 1 + band * a_e,
 * their actor outputs as ratios) have |mean| <= hold_z times their standard deviation (a
 * non-finite output holds).  Pure. */
int cmp_hold_ddpg(const cmp_ctx *c, const cmp_actions *act, int t, double u);

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

/* MPI (exp_compare_shard.c, docs/mpi.md): the shard (under MPI: the rank) that trains and
 * evaluates product p when the run is split over cmp_shard_count shards: FNV-1a 64 of the
 * product id modulo the count (the short-history products too: one pooled model per shard). */
int cmp_shard_owner(const cmp_ctx *c, int p);
/* The shard (0 .. count-1) of product p among `count`: FNV-1a 64 of its id modulo count (the
 * same hash as cmp_shard_owner, so shard r of the shared networks is rank r's products). */
int cmp_shard_of(const cmp_ctx *c, int p, int count);
/* Agree on the status over the ranks, then send every product this rank evaluated to rank 0,
 * which copies them into c->res, res2_p/resn_p, sums and ess_p (gatherv), and every product's
 * status, prices and price trajectories to every rank (allgatherv: FQE).  Returns 0 or the first
 * failing rank's status (message "rank R: ..."), ENG_EIO when a rank does not answer. */
int cmp_shard_gather(cmp_ctx *c, int status);

/* The number of shards of the run: the MPI ranks, else compare.shared_shards (> 1: one process
 * doing what that many ranks would), else 1. */
int cmp_shard_count(const cmp_ctx *c);
/* MPI: agree on status, then send the FQE values of this rank's products of the sample
 * el[want] (c->mine) to rank 0.  Returns 0 or the first failure. */
int cmp_shard_fqe_gather(cmp_ctx *c, const int *el, int want, int status);

/* Totals over products and the winners into c->res.  Returns 0 or a negative status. */
int cmp_totals(cmp_ctx *c);

/* Frees g's DQN, DDPG and LinUCB (NULL-safe) and clears the pointers (exp_compare.c). */
void cmp_group_free_agents(cmp_group *g);

/* The state normalisation (exp_compare_warm.c): read from the source checkpoint folder when
 * usable, else fitted on the training window (MPI: over every rank, collective); saved into
 * ckpt_dir by temp file + rename.  0 or the fit's / the save's failure. */
int cmp_norm_prepare(cmp_ctx *c);

/* Warm start of a group (exp_compare_warm.c): load g's DQN and DDPG from the source checkpoint
 * folder when its manifest (layout, normalisation, shapes, product list) matches: 1 loaded, 0
 * not (logged; g has no agents then).  Save g's agents and manifest into ckpt_dir: 0 or a
 * status (a diverged group is not saved). */
int cmp_group_try_load(const cmp_ctx *c, cmp_group *g);
int cmp_group_save(const cmp_ctx *c, cmp_group *g);

/* Warm nights (exp_compare_warm.c): the FQE networks of a chunk (nets networks of np
 * parameters each, for the m products prod and K actions, 0 continuous) stored as <stem>.bin.
 * load: 1 and *out (malloc'd, caller frees) when the source checkpoint folder holds the chunk
 * under the same key, else 0 (*out NULL; a bad file is logged, never an error).  save: into
 * ckpt_dir atomically (nothing without ckpt_dir, or when a parameter is not finite); 0 or
 * ENG_EIO.  count: one chunk fitted warm (1) or cold (0) for exp_compare_last_fqe_warm; reset:
 * the counts at the start of a run. */
int cmp_fqe_warm_load(const cmp_ctx *c, const char *stem, const int *prod, int m, int K, int nets, size_t np,
                      float **out);
int cmp_fqe_warm_save(const cmp_ctx *c, const char *stem, const int *prod, int m, int K, int nets, size_t np,
                      const float *params);
void cmp_fqe_warm_count(int warm);
void cmp_fqe_warm_reset(void);
/* The behaviour model's pooled coefficients stored as behav-pool.bin (exp_compare_warm.c): only
 * the start of tonight's pooled Newton fit (env_behaviour_cfg.pool_init), never a result.
 * load: the number of doubles in *out (malloc'd, caller frees) when the source checkpoint folder
 * holds them for this grid and feature layout, else 0 (*out NULL; a bad file is logged, never an
 * error).  save: tonight's (env_behaviour_pool_coef) into ckpt_dir atomically; 0 or ENG_EIO
 * (nothing without ckpt_dir or for the counts model). */
int cmp_behav_warm_load(const cmp_ctx *c, double **out);
int cmp_behav_warm_save(const cmp_ctx *c, const env_behaviour *b);
/* env_transitions_build of c->h with tc into c->tr; in one process (no MPI shards) the
 * behaviour model's pooled fit starts from the stored coefficients (cmp_behav_warm_load) and
 * tonight's are stored.  Returns 0 or the build's (or the save's) failure. */
int cmp_transitions_build(cmp_ctx *c, env_transitions_cfg *tc);

#endif
