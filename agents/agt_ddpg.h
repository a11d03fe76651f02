/* agt_ddpg.h - DDPG over a model group, with an optional TD3+BC behaviour-cloning term.
 *
 * Per product: an actor mu(s) = tanh(...) in [-1, 1], mapped to a price ratio
 * 1 + band * mu(s) (the continuous action of env_action.h: [1 - band, 1 + band]), and a critic
 * Q(s, a) whose input is the state with the scaled action a as the LAST column.  Target actor
 * and critic follow by Polyak averaging (tau) after every step.  One training step:
 *   sample B transitions per product (agt_replay, product p's own RNG stream);
 *   y = r + gamma (1 - done) Q'(s', mu'(s'));  critic: MSE(Q(s, a), y), Adam;
 *   actor: loss = -lambda_p Q(s, mu(s)) [+ (mu(s) - a)^2 when bc = 1], with
 *          lambda_p = bc_alpha / mean_b |Q(s_b, mu(s_b))| (held constant; TD3+BC, Fujimoto &
 *          Gu 2021) or lambda_p = 1 without bc; dQ/da comes from the critic's backward pass
 *          with dX (last input column), then flows back through the actor;  Adam;
 *   Polyak both targets; divergence check of both networks per product (as in agt_dqn.h).
 * Default bc = 1: the agents are pre-trained offline from logged prices, where an
 * unconstrained actor drifts to actions the history never tried and the critic cannot
 * judge (extrapolation error); the BC term keeps the policy near the data.  Set bc = 0 for
 * pure DDPG in the simulator.
 * Exploration (simulator training): Gaussian (noise = 0) or Ornstein-Uhlenbeck (noise = 1).
 */
#ifndef AGT_DDPG_H
#define AGT_DDPG_H

#include <stdint.h>

#include "agt_config.h"
#include "eng_model.h"

typedef struct agt_ddpg_cfg {
    int state_dim;        /* 32 */
    int hidden1, hidden2; /* 256, 256 (ReLU) */
    float actor_lr;       /* 1e-4 */
    float critic_lr;      /* 1e-3 */
    float gamma;          /* 0.99 */
    float tau;            /* Polyak rate of both targets, every step: 0.005 */
    float clip_norm;      /* per-product gradient-norm clip, 0 = off: 10 */
    int batch;            /* 64 */
    long replay;          /* per product: 100000 */
    long learn_start;     /* transitions a product needs before it trains: 32 */
    float band;           /* ratio band: 0.25 (ratio = 1 + band * a) */
    int bc;               /* 1 = TD3+BC behaviour regularisation (default), 0 = plain DDPG */
    float bc_alpha;       /* TD3+BC alpha: 2.5 */
    int noise;            /* 0 = Gaussian, 1 = Ornstein-Uhlenbeck */
    float noise_sigma;    /* 0.1 (in scaled action units) */
    float ou_theta;       /* 0.15 */
    uint64_t seed;        /* 1 */
    long product_base;    /* catalogue index of product 0 (RNG streams): 0 */
    const uint64_t *keys; /* NULL, or [P] stream keys instead of product_base + p, for the noise
                             and replay streams and the initial weights (as agt_dqn_cfg.keys).
                             Borrowed during agt_ddpg_create only; not saved */
    /* Data-parallel shared networks (the comparison's compare.shared under MPI, docs/mpi.md):
       NULL, or called after every backward (critic, then actor) and before its Adam step with the
       network, the slots that took part (mask [P]) and step_mask [P] to fill: the slots that
       then take the Adam step (eng_model_grads_tie).  With a hook a step never returns early
       (a slot without rows still calls it, so the ranks stay in step).  Not saved */
    int (*grad_hook)(void *ctx, eng_model *m, const unsigned char *mask, unsigned char *step_mask);
    void *grad_ctx;
} agt_ddpg_cfg;

agt_ddpg_cfg agt_ddpg_default(void);
/* Field table for agt_config (section "ddpg"); *n receives the count.  Static. */
const agt_cfg_field *agt_ddpg_fields(int *n);

typedef struct agt_ddpg agt_ddpg; /* opaque */

/* Create P products' actor/critic pairs and targets on backend be; *out caller-freed with
 * agt_ddpg_free.  ENG_EINVAL (config), ENG_ENOMEM, backend errors. */
int agt_ddpg_create(agt_ddpg **out, const eng_backend *be, const agt_ddpg_cfg *cfg, int P);
void agt_ddpg_free(agt_ddpg *q);

int agt_ddpg_P(const agt_ddpg *q);
const agt_ddpg_cfg *agt_ddpg_config(const agt_ddpg *q);
eng_model *agt_ddpg_actor(agt_ddpg *q);  /* borrowed */
eng_model *agt_ddpg_critic(agt_ddpg *q); /* borrowed */
/* Copy actor/critic parameters into their targets. */
int agt_ddpg_sync_targets(agt_ddpg *q);

/* Store a transition of product p with the price RATIO taken (clipped to the band and
 * scaled to [-1, 1]).  ENG_EINVAL / ENG_ENUM on bad input (nothing stored). */
int agt_ddpg_push(agt_ddpg *q, int p, const float *s, float ratio, float reward, const float *s2, int done);
long agt_ddpg_replay_size(const agt_ddpg *q, int p);

/* One training step for all products (see above).  critic_loss / actor_q [P] (may be NULL)
 * receive the critic's MSE and the mean Q(s, mu(s)); NaN for idle products. */
int agt_ddpg_train_step(agt_ddpg *q, float *critic_loss, float *actor_q);

/* Freeze (on = 1) or release product p: no Adam step for its actor or critic while frozen
 * (early stopping); not an error, unlike divergence.  EINVAL for a bad p. */
int agt_ddpg_freeze(agt_ddpg *q, int p, int on);

/* Validation loss without training: the weighted mean squared error of the critic Q(s, a)
 * against r + gamma (1 - done) Q'(s', mu'(s')) over B rows per product (s, s2 [P][B][S];
 * ratio, reward, done, weight [P][B]; the logged price ratio is clipped and scaled as in
 * agt_ddpg_push; weight 0 skips a row) into loss [P] (NaN without weight).  At gamma 0 the
 * target is r and the target networks do not run on s'.  Touches no training state. */
int agt_ddpg_eval_loss(agt_ddpg *q, const float *s, const float *ratio, const float *reward, const float *s2,
                       const float *done, const float *weight, int B, float *loss);

/* Deterministic price ratios mu(s) for states s [P][state_dim] -> ratio [P]. */
int agt_ddpg_ratio(agt_ddpg *q, const float *s, float *ratio);
/* Exploratory ratios: mu(s) + noise (Gaussian or OU), clipped to the band. */
int agt_ddpg_act(agt_ddpg *q, const float *s, float *ratio);
/* Reset product p's OU noise state (episode start). */
void agt_ddpg_reset_noise(agt_ddpg *q, int p);

/* Save actor (to `path`) and critic (to `path`.critic), each with Adam state and the config,
 * through eng_ckpt_save (temp file, fsync, rename each; the critic is written first, so a
 * crash between the two leaves the previous actor next to a newer critic, never a torn file).
 * Replay buffers, noise state and RNG streams are not saved.  Returns 0 or a negative status. */
int agt_ddpg_save(agt_ddpg *q, const char *path);
/* The same pair holding only what a warm start needs (eng_ckpt_opts {0, 0, 1}: parameters as
 * IEEE half, no Adam moments, no /layers copies).  Returns 0 or a negative status. */
int agt_ddpg_save_warm(agt_ddpg *q, const char *path);
/* Load a pair saved by agt_ddpg_save(_warm) (targets = online, empty replay); *out
 * caller-freed.  ENG_EIO / ENG_EFORMAT naming the file on a bad (non-finite or implausible
 * values, checksum mismatch) or mismatched pair. */
int agt_ddpg_load(agt_ddpg **out, const eng_backend *be, const char *path);

const unsigned char *agt_ddpg_diverged(const agt_ddpg *q, int *n_bad);
long agt_ddpg_steps(const agt_ddpg *q);

#endif
