/* agt_replay.h - per-product experience replay for a model group.
 *
 * P ring buffers of `capacity` transitions each, stored contiguously product by product:
 *   state [P][cap][S]  next [P][cap][S]  action [P][cap][A]  reward [P][cap]  done [P][cap]
 * (A = 1 for the DQN, which stores the level index as a float; A = 1 for the DDPG's scaled
 * action).  When a product's buffer is full the oldest transition is overwritten.
 * Sampling is uniform over a product's stored transitions, with replacement, drawn from the
 * caller's per-product eng_rng, so product p's minibatches depend only on p's data and seed.
 */
#ifndef AGT_REPLAY_H
#define AGT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "eng_util.h"

typedef struct agt_replay {
    int P, S, A;
    long cap;
    float *state, *next, *action, *reward;
    unsigned char *done;
    long *size, *head; /* [P] stored count, next write slot */
} agt_replay;

/* Allocate P empty buffers; *out caller-freed with agt_replay_free.  EINVAL, ENOMEM. */
int agt_replay_create(agt_replay **out, int P, int S, int A, long capacity);
void agt_replay_free(agt_replay *r);

/* Append one transition to product p.  Non-finite numbers are rejected (ENG_ENUM) and
 * nothing is stored. */
int agt_replay_push(agt_replay *r, int p, const float *s, const float *a, float reward, const float *s2, int done);

/* Draw B transitions of product p into the p-th slices of the batch arrays
 * (s [P][B][S], a [P][B][A], r [P][B], s2 [P][B][S], done [P][B]); arrays not needed may be
 * NULL.  ENG_EINVAL when the product's buffer is empty. */
int agt_replay_sample(const agt_replay *r, int p, eng_rng *rng, int B, float *s, float *a, float *rew,
                      float *s2, float *done);

/* One training minibatch for the whole group.  Product p trains (mask[p] = 1) when it is not
 * flagged in bad[p] and holds at least learn_start transitions; its B transitions are drawn
 * from rng[p] into its slices as agt_replay_sample does.  An idle product (mask[p] = 0) gets
 * zeroed slices: harmless inputs for the group's forward pass (its loss weight is the
 * caller's to zero).  mask [P] and the batch arrays are caller-owned; s, a, rew, s2 and done
 * are all required here.  *any = 1 when some product trains.  Returns 0 or a sampling error. */
int agt_replay_sample_group(const agt_replay *r, eng_rng *rng, const unsigned char *bad, long learn_start, int B,
                            unsigned char *mask, int *any, float *s, float *a, float *rew, float *s2, float *done);

#endif
