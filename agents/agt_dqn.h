/* agt_dqn.h - Double DQN over a model group (P products trained at once).
 *
 * Each product has its own Q-network (one eng_model group holds all P online networks, a
 * second group the P target networks), its own replay buffer and its own RNG stream, so
 * product p's training depends only on p's data and seed.  One training step:
 *   sample B transitions per product (uniform, with replacement, agt_replay);
 *   a*  = argmax_a Q_online(s', a)                         (Double DQN; plain DQN: Q_target)
 *   y   = r + gamma * (1 - done) * Q_target(s', a*)
 *   loss = Huber(Q_online(s, a_taken) - y), the untaken actions masked out by a zero weight;
 *   Adam on every product that has >= B transitions and has not diverged;
 *   target: hard copy every target_sync steps, or Polyak averaging with tau when
 *   target_sync = 0.
 * Divergence: a non-finite loss or gradient norm (checked every step) or a NaN/Inf found by
 * a scan of all online parameters (every 100 steps) flags a product; it is logged once and
 * masked out of every later Adam step (the others carry on).  Its greedy actions are then meaningless: callers should fall back (e.g. to the
 * incumbent price) for flagged products (agt_dqn_diverged).
 *
 * States are float vectors of state_dim (normalised features); actions are price levels
 * 0..n_actions-1.  All buffers are host memory laid out [P][...].
 */
#ifndef AGT_DQN_H
#define AGT_DQN_H

#include <stdint.h>

#include "agt_config.h"
#include "eng_model.h"

typedef struct agt_dqn_cfg {
    int state_dim;         /* 32 */
    int n_actions;         /* 21 (price levels) */
    int hidden1, hidden2;  /* 256, 256 (ReLU) */
    float lr;              /* Adam learning rate: 1e-3 */
    float gamma;           /* discount: 0.99 */
    float huber_delta;     /* 1.0 */
    float clip_norm;       /* per-product gradient-norm clip, 0 = off: 10 */
    int batch;             /* minibatch per product: 64 */
    int target_sync;       /* hard target copy every N steps: 100 (0 = Polyak with tau) */
    float tau;             /* Polyak rate when target_sync = 0: 0.005 */
    long replay;           /* replay capacity per product: 100000 */
    long learn_start;      /* a product trains once it holds this many transitions: 32 */
    int double_dqn;        /* 1 = Double DQN target, 0 = vanilla max over the target net */
    float eps_start;       /* exploration schedule for simulator training: 1.0 */
    float eps_end;         /* 0.05 */
    long eps_decay;        /* linear decay over this many act() calls: 10000 */
    float cql_alpha;       /* conservative Q-learning weight (Kumar et al. 2020): adds
                              alpha * (logsumexp_a Q(s, a) - Q(s, a_logged)) to each row's loss,
                              pushing down the Q-values of levels the data never took; 0 = off */
    float smooth;          /* smoothness across neighbouring price levels: adds
                              smooth * mean_k (Q_{k-1} - 2 Q_k + Q_{k+1})^2 to each row's loss, so
                              levels the data rarely took are interpolated from their
                              neighbours rather than left at their initial values; 0 = off */
    uint64_t seed;         /* 1 */
    long product_base;     /* index of product 0 of this group in the catalogue: 0 (RNG streams
                              are derived from seed and product_base + p) */
    const uint64_t *keys;  /* NULL, or [P] stream keys used at creation instead of product_base + p
                              for product p's replay stream AND initial weights, so a product's
                              model does not depend on its group or slot (the comparison keys
                              products by their catalogue position; MPI ranks, docs/mpi.md).
                              Borrowed during agt_dqn_create only; not saved */
    /* Data-parallel shared networks (the comparison's compare.shared under MPI, docs/mpi.md):
       NULL, or called after every training step's backward and before its Adam step with the
       network, the slots that took part (mask [P]) and step_mask [P] to fill: the slots that
       then take the Adam step (eng_model_grads_tie).  With a hook a step never returns early
       (a slot without rows still calls it, so the ranks stay in step).  Not saved */
    int (*grad_hook)(void *ctx, eng_model *m, const unsigned char *mask, unsigned char *step_mask);
    void *grad_ctx;
} agt_dqn_cfg;

/* The documented defaults above. */
agt_dqn_cfg agt_dqn_default(void);
/* Field table for agt_config (section "dqn"); *n receives the count. Static. */
const agt_cfg_field *agt_dqn_fields(int *n);

typedef struct agt_dqn agt_dqn; /* opaque */

/* Create P products' networks on backend be.  *out caller-freed with agt_dqn_free.
 * ENG_EINVAL for a bad config, ENG_ENOMEM, backend errors. */
int agt_dqn_create(agt_dqn **out, const eng_backend *be, const agt_dqn_cfg *cfg, int P);
void agt_dqn_free(agt_dqn *q); /* NULL is a no-op */

int agt_dqn_P(const agt_dqn *q);
const agt_dqn_cfg *agt_dqn_config(const agt_dqn *q);
/* The online / target groups (borrowed; owned by q).  For inspection, checkpoints and tests. */
eng_model *agt_dqn_online(agt_dqn *q);
eng_model *agt_dqn_target(agt_dqn *q);
/* Copy the online parameters into the target networks (e.g. after setting parameters). */
int agt_dqn_sync_target(agt_dqn *q);

/* Store one transition of product p (s, s2: state_dim floats).  ENG_EINVAL for a bad product
 * or level, ENG_ENUM for non-finite numbers (nothing stored). */
int agt_dqn_push(agt_dqn *q, int p, const float *s, int action, float reward, const float *s2, int done);
long agt_dqn_replay_size(const agt_dqn *q, int p);

/* One training step for every product (see above).  loss [P] (may be NULL) receives each
 * product's mean Huber loss (NaN for products that did not train).  Returns 0 or a negative
 * status; divergence of some products is NOT an error (see agt_dqn_diverged). */
int agt_dqn_train_step(agt_dqn *q, float *loss);

/* Q-values of B states per product: s [P][B][state_dim] -> qv [P][B][n_actions]. */
int agt_dqn_q_values(agt_dqn *q, const float *s, int B, float *qv);

/* Greedy level per product for states s [P][state_dim]; allowed [P][n_actions] (may be
 * NULL) restricts the levels (guardrails).  Ties go to the lowest level.  EINVAL when a
 * product has no allowed level. */
int agt_dqn_greedy(agt_dqn *q, const float *s, const unsigned char *allowed, int *action);

/* Support constraint: allowed [P][n_actions] (copied; NULL clears it) restricts, per product,
 * the levels the Double-DQN target may pick at s' and the levels agt_dqn_greedy / agt_dqn_act
 * may return (on top of their own `allowed`), e.g. the levels the behaviour policy logged; the
 * smoothness and CQL terms then run over the allowed levels only (a level outside gets no
 * gradient and pulls none inside).  A product whose row allows nothing is ENG_EINVAL (nothing
 * changed). */
int agt_dqn_set_support(agt_dqn *q, const unsigned char *allowed);

/* Freeze (on = 1) or release product p: a frozen product takes no Adam step and keeps its
 * parameters (early stopping); unlike divergence it is not an error.  EINVAL for a bad p. */
int agt_dqn_freeze(agt_dqn *q, int p, int on);

/* Validation loss without training: for B rows per product (s, s2 [P][B][state_dim],
 * action, reward, done, weight [P][B]; weight 0 skips a row) the weighted mean Huber loss of
 * Q_online(s, a) against r + gamma (1 - done) Q_target(s', a*) with a* as in training,
 * into loss [P] (NaN for a product without weight).  At gamma 0 the target is r and no network
 * runs on s'.  Touches no training state. */
int agt_dqn_eval_loss(agt_dqn *q, const float *s, const float *action, const float *reward, const float *s2,
                      const float *done, const float *weight, int B, float *loss);

/* Epsilon-greedy action for simulator training, advancing the epsilon schedule by one call:
 * with probability eps a uniformly random allowed level (product p's RNG), else greedy. */
int agt_dqn_act(agt_dqn *q, const float *s, const unsigned char *allowed, int *action);
float agt_dqn_epsilon(const agt_dqn *q);

/* Flags [P] (borrowed): 1 for products whose training diverged.  *n_bad (may be NULL). */
const unsigned char *agt_dqn_diverged(const agt_dqn *q, int *n_bad);

/* Save the online networks (parameters, Adam moments, step) and the config to an HDF5
 * checkpoint (eng_ckpt_save: temp file, fsync, rename).  The replay buffers and the per-product
 * RNG streams are not saved: a checkpoint serves scoring and warm starts, not bit-exact
 * resumption.  Returns 0 or ENG_EIO / ENG_ENOMEM. */
int agt_dqn_save(agt_dqn *q, const char *path);
/* The same, holding only what a warm start needs (eng_ckpt_opts {0, 0, 1}): the online
 * parameters as IEEE half, no Adam moments (they restart), no /layers copies.  About 2 bytes
 * per parameter.  Returns 0 or ENG_EIO / ENG_ENOMEM. */
int agt_dqn_save_warm(agt_dqn *q, const char *path);
/* Load an agent saved by agt_dqn_save(_warm) onto backend be (target = online, empty replay).
 * A file with a non-finite or implausible value, a checksum mismatch or a shape that does not
 * match its config is refused (ENG_EFORMAT, one line naming the file).  *out caller-freed.
 * ENG_EIO / ENG_EFORMAT on a bad file, ENG_ENOTFOUND when it is missing. */
int agt_dqn_load(agt_dqn **out, const eng_backend *be, const char *path);

/* Steps taken by agt_dqn_train_step. */
long agt_dqn_steps(const agt_dqn *q);

#endif
