/* exp_compare.h - the agent comparison: train DQN, DDPG and LinUCB per product on a validated
 * history, add the best fixed price and the historical policy, and evaluate all of them by
 * offline policy evaluation (experiments/ope.h).  Produces an exp_results (exp_results.h).
 *
 * Pipeline (exp_compare_run; details and the reasons for the defaults in docs/compare.md):
 *   1. features: feat_state for every period, feat_norm fitted on the TRAINING window only
 *      (periods [0, train_end)); transitions + behaviour propensities (env_transitions.h) and
 *      the reward series (env_reward.h, default drcr with the traffic-proxy-1 fallback);
 *   2. training on the training window, per product in model groups of P = group_size:
 *      DQN (grid levels), DDPG (continuous ratio, TD3+BC), LinUCB (disjoint, immediate reward);
 *      the best fixed price = the grid level with the highest mean logged reward among levels
 *      logged at least fixed_min_support times in the training window (the middle level,
 *      i.e. the reference price, when none has that support);
 *      products with fewer than min_history training transitions are trained as ONE pooled
 *      group model on all such products' transitions (status EXP_SKIP_SHORT, note says so);
 *      with no transitions at all the product is held at the incumbent;
 *   3. evaluation on the evaluation window (periods [train_end, n_periods), or every period
 *      when eval_all = 1): each agent's greedy action in every state is GUARDED
 *      (env_guard_apply) first and the guarded price mapped back to a level / ratio, so the
 *      evaluated policy is the one that would be pushed; one-step OPE (ope_bandit_estimate,
 *      kernel ope_cont_estimate for DDPG; the historical policy's value is its on-policy mean),
 *      long-term OPE (ope_traj_estimate: PDIS/WPDIS; FQE via exp_compare_fqe.c on all or a
 *      seeded sample of fqe_products products); totals over products with a bootstrap CI over
 *      products; winners by the recommended estimates.
 * A diverged agent (agt_*_diverged) is held at the incumbent for that product (bit in
 * agent_failed, status EXP_DIVERGED); the others continue.
 *
 * Warm start: with ckpt_dir set, each group's agents, feature normalisation, layout hash and
 * product list are saved there (atomically); the next run loads a group whose product list
 * and feature layout match and continues training with warm_frac of the budget, else it
 * retrains from scratch.  exp_compare_run logs which happened per group and counts them in
 * exp_compare_last_warm().
 */
#ifndef EXP_COMPARE_H
#define EXP_COMPARE_H

#include <stdint.h>

#include "agt_dqn.h"
#include "agt_ddpg.h"
#include "agt_linucb.h"
#include "db_history.h"
#include "eng_backend.h"
#include "env_action.h"
#include "env_reward.h"
#include "env_transitions.h"
#include "exp_results.h"
#include "feat_demand.h"
#include "ope.h"

/* Progress: called from exp_compare_run's thread after each unit of work of a stage
 * ("features", "train", "ope", then "fqe": the long-term values and totals); done/total count products.  May be NULL. */
typedef void (*exp_progress_fn)(void *ctx, const char *stage, long done, long total);

typedef struct exp_compare_cfg {
    uint64_t seed;              /* every random stream derives from it: 1 */
    char device[16];            /* "auto", "cpu", "cuda" (used by the command): "auto" */
    env_reward_cfg reward;      /* env_reward_default(): drcr, tau 1, fallback proxy1 */
    env_grid grid;              /* K 29, band 0.35 (exp_compare_default since session 11; env_grid_default's
                                   21, 0.25 before): the DQN's levels, LinUCB's arms, the fixed price's
                                   levels, DDPG's band (ddpg_band 0) and the nightly gate's band */
    env_guard_cfg guard;        /* env_guard_default(): margin 0, 25% change limit, .99/.49 */
    env_behaviour_cfg behaviour;/* env_behaviour_default(): alpha 5, beta 1 */
    double train_frac;          /* training window = first train_frac of the periods: 0.8 */
    int eval_all;               /* 1: evaluate on every period instead of the holdout: 0 */
    int min_history;            /* training transitions for a product's own model, else
                                   pooled: 8 */
    int fixed_min_support;      /* logged rows a level needs to be the fixed price: 3 */
    int pooled_q;               /* 1: DM/DR use the pooled reward model fitted on every product's
                                   training rows (exp_compare_qmodel.c); 0: a ridge model per
                                   product on its evaluation rows (cross-fitted; the old way,
                                   kept for comparison): 1 */
    int uplift_ref;             /* the per-product uplift of agent a is DR_a minus, on the same
                                   rows, 0: history's on-policy mean reward (its importance
                                   weights are exactly 1); 1: history's DR (paired DR
                                   difference, the former way); 2: the DR of holding the
                                   incumbent price (the thing a deploy replaces): 0 */
    int like_periods;           /* 1: prices are compared within like periods: the best fixed
                                   price, what LinUCB, DQN and DDPG learn from (and their
                                   support) and the deployment uplift use the product's normal
                                   (non-promotion) periods (the fixed price and the uplift only
                                   when it has enough of them), so a promotion's lift (feature,
                                   display) is not credited to its price; for data whose
                                   promotion flag marks an exogenous promotion (Dominick's
                                   deal/feature; the backtest's --promo).  0: every period (for
                                   data whose "promotion" IS the price cut, as in the default
                                   simulator preset).  Data without promotion flags are the
                                   same either way: 1 (docs/compare.md, "Promotions") */
    int promo_state;            /* 1: the pooled DM/DR reward model reads the priced period's own
                                   promotion flag as state (ope_qmodel_data.promo); 0: blind: 1 */
    int group_size;             /* P products per model group: 256 */
    long dqn_steps;             /* DQN training steps per group (each step trains every
                                   product of the group on one minibatch): 60 */
    long ddpg_steps;            /* DDPG steps per group: 60 */
    double warm_frac;           /* share of the step budget used after a warm start: 0.25 */
    int warm_patience;          /* early-stopping patience (validation checks) after a warm start;
                                   the loaded networks' own validation loss is the first best, so
                                   1 stops at the first check that does not improve on it: 1 */
    int fqe_warm_iterations;    /* FQE target refreshes when a chunk starts from the previous
                                   night's networks (docs/nightly.md, "Warm nights"): 1 */
    int fqe_chunk;              /* products per FQE chunk (one ope_fqe_estimate call of 4 x chunk
                                   discrete networks and one of chunk DDPG networks; smaller chunks
                                   keep the networks' working set in cache); 0: group_size: 64 */
    int linucb_passes;          /* passes of LinUCB over the training transitions: 1 */
    /* How DQN and DDPG learn (docs/compare.md, "Agents that learn to price"). */
    int agent_state;            /* 1: the cross-product agent state (feat_agent.h) and rewards
                                   divided by the product's training reward sd; 0: the feat-v1
                                   state normalised over all products, raw rewards */
    int shared;                 /* 1: one DQN and one DDPG trained on every product's training
                                   rows (needs agent_state = 1), copied into each product's slot
                                   and fine-tuned there for up to ft_steps; 0: a network per
                                   product trained from scratch for dqn_steps / ddpg_steps */
    long shared_steps;          /* most steps of the shared networks (early stopping decides) */
    int shared_batch;           /* minibatch of the shared networks */
    int shared_shards;          /* data-parallel shards of the shared networks (docs/mpi.md):
                                   0 = one per MPI rank (1 in one process); S > 1: the products
                                   are split by the hash of their id into S shards, each step
                                   draws shared_batch / S rows from every shard and averages the
                                   shards' gradients in shard order (eng_model_grads_tie).  One
                                   process with S shards gives bit-identical networks to S
                                   ranks; under MPI S must be 0 or the rank count */
    long ft_steps;              /* most per-product fine-tuning steps after the shared model
                                   (0 = the shared model as it is) */
    double val_frac;            /* share of each product's training rows held out for early
                                   stopping (a seeded draw per row; 0 = no early stopping) */
    int es_every;               /* steps between validation checks */
    int es_patience;            /* checks without improvement before a product stops */
    int dqn_support;            /* DQN's levels: 0 all, 1 levels logged in training, 2 the
                                   logged range (lowest to highest logged level) widened by
                                   support_steps grid steps on either side */
    int dqn_smooth_support;     /* 1: the DQN's smoothness (and CQL) terms run over the levels the
                                   products of its network may choose (dqn_support's levels, their
                                   union for a shared network), not every grid level: a level no
                                   row reaches does not pull the chosen ones (docs/compare.md, "A
                                   wider grid for the DQN (q12grid)"); 0: every level (before) */
    int ddpg_support;           /* 1: DDPG's ratio clipped to the logged training range widened
                                   by support_steps grid steps; 0 off */
    int support_steps;          /* grid steps the supports above reach beyond the logged range */
    int dyna;                   /* model-based transitions per training row for the shared
                                   networks (0 = off): each product's fitted demand model
                                   (feat_agent_model_rate) values a price drawn inside the
                                   support (docs/compare.md, "Learning from a model") */
    double dyna_kappa;          /* their uncertainty penalty in standard errors of the model */
    long dyna_max;              /* most model-based transitions in all (memory bound: fewer per
                                   row, spread evenly, when rows x dyna would exceed it) */
    int dyna_carry;             /* 1: a model-based transition's next state carries its price
                                   (feat_agent_state_carry: incumbent, moving averages, the
                                   model's rate); 0: the logged next state (before q13carry) */
    int dyna_memory;            /* 1: the agents' demand model values the previous prices as a
                                   smoothed past price of a memory chosen by its likelihood
                                   (feat_agent_prod_fit_ex); 0: the previous price alone */
    double ddpg_band;           /* DDPG's price band: ratio = 1 + ddpg_band x action, its model rows'
                                   ratios and its guarded price inside ref (1 -+ ddpg_band); 0 =
                                   grid.band (the default, as before q12desc) */
    int ddpg_support_steps;     /* DDPG's support (its clip and its model rows' ratios): the
                                   logged ratio range +- this many grid steps; -1 = support_steps
                                   (as before session 8; the default is 6) */
    int agent_desc;             /* the agent state's demand-model descriptors (feat_agent.h,
                                   FEAT_AGENT_DESC_*): 0 at the product's mean logged price (before
                                   q12desc), 1 / 2 the model's relative rates around the state's
                                   incumbent in its own context (2 or 4 price ratios) */
    int agent_best;             /* 1: the agent state gets two more slots, its demand model's own
                                   best price for the state in the state's context (log ratio to
                                   the incumbent) and its relative gain there (feat_agent.h;
                                   docs/compare.md "The model's best price as a state feature
                                   (q12best)"); 0: not (the default) */
    int ddpg_demand_pool;       /* DDPG's own demand models' slope prior (the agents' part of
                                   demand_pool: 2 the night's pooled prior, 3 its centre at the
                                   weak width, 0 / 1 none; the default 2); -1 = demand_pool's
                                   (one model for both agents, before session 14).  A value other
                                   than the DQN's gives DDPG its own demand models, states, model
                                   rows and checkpoints (docs/compare.md "A demand model per
                                   agent") */
    int ddpg_agent_best;        /* DDPG's best-price slots (as agent_best; the default 1); -1 =
                                   agent_best's.  Both: no effect without agent_state (one view),
                                   and without a pooled prior (demand_pool 0) 2 / 3 are the weak
                                   prior */
    int dyna_horizon;           /* nights a model row's price is valued over, held
                                   (feat_agent_model_rate_held: the mean rate as the model's
                                   smoothed past price moves toward it); 1: that day only */
    int dyna_cut_standing;      /* 1: a model row's price below the row's smoothed past price is
                                   valued at its standing rate (no transitional lift), a price at
                                   or above it over dyna_horizon nights held, where the product's
                                   model shows carry-over (feat_agent_model_rate_cut; docs/backtest.md
                                   "Long horizon: ... (q13long)"); 0 = feat_agent_model_rate_held */
    int dqn_uplift;             /* 1: the DQN learns each price's relative uplift over its demand
                                   model's rate at the state's incumbent, s (rate - m) / m (s:
                                   dqn_uplift_scale), instead of the logged reward (a baseline known
                                   at the decision: the same best price, less noise; docs/compare.md
                                   "The DQN learns the uplift over the incumbent"); only with
                                   model-based rows and dqn.gamma 0, else the logged reward; 0 = the
                                   logged reward */
    double dqn_uplift_scale;    /* the uplift targets' scale s: s (rate - m) / m (a state's prices
                                   rank alike at any s; it sets how the Huber loss, dqn.huber_delta,
                                   and the smoothness term weigh the targets' differences); 1000 (10
                                   before session 16) */
    double dyna_real;           /* in [0, 1]: the real training rows' reward blends the observed
                                   rate of the priced period with the demand model's expected
                                   rate at the logged price in the row's context (0 = observed,
                                   1 = the model's; docs/compare.md, "Denoised real rows") */
    int ensemble;               /* members of the shared networks (1 = one; docs/compare.md, "An
                                   ensemble of the shared networks"): E trained from their own
                                   streams, the next price from their mean Q-values / actor
                                   outputs; one process without shards or fine-tuning only */
    int refit;                  /* 1: the DQN's and DDPG's next prices come from the agents
                                   refitted on every day (training window and OPE holdout: the
                                   demand models, statistics and model rows; the shared networks
                                   and ensemble members continue from their trained parameters);
                                   the OPE values stay the training window's agents'; 0: the
                                   training window's agents price (before q12refit).  One process
                                   without shards only (docs/compare.md, "Refit on every day") */
    int refit_carry;            /* 1: compare.refit reprices every product; 0: a product whose
                                   every-day demand model shows carry-over (feat_demand_lag_carries,
                                   z 2) keeps the training window's agents' price (q13long) */
    double refit_frac;          /* the refit's step budget on a cold night: this share of
                                   shared_steps (0, and every warm night: no steps, the refit is
                                   every day's statistics and demand models only) */
    double hold_z;              /* >= 0: the agents' next price holds the incumbent unless the
                                   ensemble's members agree on the move: the DQN's advantage
                                   Q(new) - Q(incumbent) and the DDPG's step (members' ratio -
                                   incumbent's) must exceed hold_z times its spread across the
                                   members (exp_compare_hold.c; docs/compare.md, "Hold unless the
                                   members agree"); 0 = off (before q13hold); needs ensemble >= 2 */
    int demand_pool;            /* the night's pooled (empirical-Bayes) prior on the demand
                                   models' price slope (feat_demand.h, feat_demand_prior;
                                   docs/compare.md, "A pooled prior on the price slope"):
                                   0 off (the weak N(-1, 1) everywhere); 1 the decisions' fits
                                   (the gate, exploration, the backtest's model row); 2 also
                                   the agents' demand models; 3 the decisions' fits as 1 and
                                   the agents' models with the pooled centre at the weak
                                   prior's width (feat_demand_prior_centre; docs/compare.md,
                                   "The pooled prior for the agents' models (q12pool2)") */
    int demand_asym;            /* 1: the one demand model tries the asymmetric (gain / loss)
                                   reference column (feat_demand.h, feat_demand_set_asym;
                                   docs/backtest.md "q13asym"); 0 the symmetric lag of before */
    int demand_ref_pool;        /* 1: the night's pooled (empirical-Bayes) prior on the demand
                                   model's reference columns (lag, loss) for the decisions' fits
                                   (the gate, exploration; the agents' with demand_pool 2 or 3;
                                   feat_demand_ref_pool); 0 the tiny ridge of before */
    double demand_pool_tau_scale; /* the night's pooled slope prior's sd (tau, DerSimonian-Laird)
                                   times this (1: as estimated, the default; > 1 pools less, < 1
                                   more; docs/backtest.md "q13logit3") */
    int demand_pool_np;         /* 1: the night's pooled slope prior is nonparametric (the
                                   NPMLE of the slopes' distribution; each fit takes the matched
                                   Gaussian prior of its product, feat_demand_pool_np; docs/backtest.md
                                   "A nonparametric pooled prior on the slope (session 18)"); 0 the
                                   normal (DerSimonian-Laird) prior alone (the default: over 14
                                   held-out backtest sets the option moved neither agent and
                                   raised the pushed prices' made-worse share).  With demand_pool
                                   on only; demand_pool_tau_scale applies to the normal prior (1
                                   with this) */
    feat_demand_prior demand_prior; /* the night's pooled prior (set by the nightly, not a
                                   setting; n = 0: none) for the agents' demand models */
    agt_dqn_cfg dqn;            /* agt_dqn_default() with hidden 64x64, batch 32, replay 4096,
                                   learn_start 8, target_sync 20 (state_dim, n_actions, seed
                                   are set by the run) */
    agt_ddpg_cfg ddpg;          /* agt_ddpg_default() with hidden 64x64, batch 32, replay 4096,
                                   learn_start 8, tau 0.05 (state_dim, band, seed set by the run) */
    agt_linucb_cfg linucb;      /* agt_linucb_default(): disjoint, alpha 1, ridge 1 (n_arms, d
                                   set by the run) */
    ope_config ope;             /* ope_config_default() with n_boot 200 and gamma 0.9 */
    int fqe_products;           /* FQE of the long-term value on this many products, a seeded
                                   random sample of those in the totals; -1 = all, 0 = off.
                                   1000: FQE costs ~20-30 ms per product (5 agents), so 1000
                                   products add under a minute to the 40,000-product night
                                   (docs/compare.md, time budget) */
    ope_fqe_cfg fqe;            /* ope_fqe_cfg_default() with the smaller budget of
                                   exp_compare_default (gamma = ope.gamma, seed derived) */
    int total_boot;             /* bootstrap resamples of the totals over products: 1000 */
    char *ckpt_dir;             /* warm-start folder (owned, exp_compare_cfg_free); NULL = none */
    const char *ckpt_from;      /* where warm starts are read from (not owned; NULL = ckpt_dir,
                                   "" = nowhere: train from scratch, still save into ckpt_dir).
                                   The nightly reads the previous date's folder and writes the
                                   run date's (docs/checkpoints.md, "Versions by run date") */
    int shard_count;            /* MPI (docs/mpi.md): > 1 = this process is rank shard_index of
                                   shard_count; it trains and evaluates its share of the
                                   products and exp_compare_run sends them to rank 0, whose
                                   results are complete (the other ranks' hold their share
                                   only, without totals).  Set by the nightly, not a setting: 0 */
    int shard_index;
    int fault_kill_rank;        /* TEST HOOK: this rank SIGKILLs itself before sending its
                                   products (the dead-rank test); -1 = off */
    int fault_diverge;          /* TEST HOOK: product index whose DQN is poisoned with NaN
                                   before its last training step; -1 = off (default) */
} exp_compare_cfg;

/* The documented defaults above.  Free with exp_compare_cfg_free (ckpt_dir). */
exp_compare_cfg exp_compare_default(void);

/* Frees ckpt_dir and sets it to NULL; the struct itself is the caller's. */
void exp_compare_cfg_free(exp_compare_cfg *cfg);

/* Set one setting by its full key: "compare.<key>" (or a bare "<key>"), "dqn.<key>",
 * "ddpg.<key>", "linucb.<key>", "ope.<key>", "reward.<key>", "guard.<key>", "grid.<key>",
 * "behaviour.<key>".  `where` labels errors ("file.cfg:3", "--seed").  ENG_ENOTFOUND for an
 * unknown key, ENG_EINVAL for a bad value (cfg untouched). */
int exp_compare_cfg_set(exp_compare_cfg *cfg, const char *key, const char *value, const char *where);

/* Apply a key=value file (agt_config.h format, sections as above; lines of other sections,
 * e.g. "nightly.", are ignored).  Errors name path:line; earlier lines stay applied. */
int exp_compare_cfg_load_file(exp_compare_cfg *cfg, const char *path);

/* Apply flags argv[0..argc): each --key=value or --key value with the keys of
 * exp_compare_cfg_set.  ENG_ENOTFOUND / ENG_EINVAL naming the flag (earlier flags stay
 * applied). */
int exp_compare_cfg_parse_flags(exp_compare_cfg *cfg, int argc, char **argv);

/* 0 or ENG_EINVAL naming the bad setting. */
int exp_compare_cfg_check(const exp_compare_cfg *cfg);

/* The whole configuration as "section.key = value" lines (malloc'd, caller frees); NULL with
 * ENG_ENOMEM set on failure.  Recorded in exp_results.config_text. */
char *exp_compare_cfg_text(const exp_compare_cfg *cfg);

/* Train and evaluate every product of h (see the top of this file).  be: the backend for
 * the networks (NULL = CPU).  *out receives a new exp_results (caller frees with
 * exp_results_free); on failure *out is NULL.  Per-product problems (divergence, short
 * history) are NOT errors: they are recorded per product.  Returns 0, ENG_EINVAL (bad
 * config, empty history), ENG_ENOMEM, ENG_EIO (checkpoint folder), backend errors. */
int exp_compare_run(const db_history *h, const exp_compare_cfg *cfg, const eng_backend *be,
                    exp_progress_fn progress, void *ctx, exp_results **out);

/* Warm-start outcome of the last exp_compare_run on this thread: groups loaded from
 * ckpt_dir and groups trained from scratch (0, 0 without ckpt_dir). */
void exp_compare_last_warm(int *loaded, int *fresh);
/* FQE calls of the last exp_compare_run on this thread that started from the previous night's
 * networks (compare.fqe_warm_iterations refreshes) and those fitted from scratch. */
void exp_compare_last_fqe_warm(int *warm, int *cold);

/* The shard (0 .. count-1) of a product: FNV-1a 64 of its id modulo count (0 when count <= 1).
 * The comparison's owner rank (cmp_shard_owner) and the nightly's sharded load use this one
 * function, so a rank loads exactly the products it then owns.  Never fails. */
int exp_compare_shard_of_id(const char *product_id, int count);

#endif
