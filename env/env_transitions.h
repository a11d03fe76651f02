/* env_transitions.h - logged transitions (s_t, a_t, r_t, s_{t+1}, done) from a history,
 * and the behaviour policy (the people who set the historical prices) as P(level | state).
 *
 * A transition exists for product p and period t in [t_begin, t_end) when period t has a
 * sales row with a finite positive price (the logged action) and a finite reward r_t
 * (env_reward_series; a differenced reward also needs period t - tau).  s_t = feat_state(t)
 * and s_{t+1} = feat_state(t + 1) (which uses data up to t only).  done = 1 when period
 * t + 1 is not usable (absent, outside the range, end of history): episodes split at gaps.
 *
 * Behaviour policy (env_behaviour.h): P(level | state) of the people who set the historical
 * prices, fitted on the built transitions' raw states (cfg.behaviour: multinomial logit by
 * default, or the incumbent-level counts model); each transition stores the propensity of its
 * logged level, and `calibration` holds the in-sample calibration diagnostic.  Where rlprice
 * itself set the period's price (db_history's logged cells: docs/ope.md, "Logged propensities")
 * the logged distribution replaces the estimate for that transition (logged[] = 1).
 */
#ifndef ENV_TRANSITIONS_H
#define ENV_TRANSITIONS_H

#include <stddef.h>
#include <stdint.h>

#include "db_history.h"
#include "env_action.h"
#include "env_behaviour.h"
#include "env_reward.h"
#include "feat.h"

/* ---- transitions --------------------------------------------------------------------- */
typedef struct env_transitions_cfg {
    env_grid grid;
    env_reward_cfg reward;
    env_behaviour_cfg behaviour;
    int t_begin, t_end;     /* periods considered; t_end = -1 means n_periods */
    const feat_norm *norm;  /* NULL: raw states; else states are normalised with it */
    const unsigned char *use; /* NULL: every product; else [n_products] 0 = the product gets no
                                 transitions and is not looked at (an MPI rank's other products,
                                 docs/mpi.md; with behaviour.over_ranks the pooled fits still
                                 see every rank's rows) */
} env_transitions_cfg;
env_transitions_cfg env_transitions_default(void);

typedef struct env_transitions {
    size_t n;          /* transitions */
    int n_features;    /* FEAT_N */
    int K;             /* grid levels */
    int32_t *product;  /* [n] product index */
    int32_t *t;        /* [n] period */
    float *state;      /* [n][n_features] s_t */
    float *next_state; /* [n][n_features] s_{t+1} */
    int16_t *level;    /* [n] logged action as a grid level */
    float *ratio;      /* [n] logged price / reference, clipped to the band */
    float *price;      /* [n] logged price */
    float *ref_price;  /* [n] reference price used */
    int16_t *inc_level;/* [n] incumbent level j of s_t (behaviour model input) */
    float *reward;     /* [n] r_t */
    uint8_t *done;     /* [n] */
    uint8_t *clipped;  /* [n] 1 when the logged price lay outside the band */
    float *propensity; /* [n] P_behaviour(level | s_t) > 0 */
    float *behav_probs; /* [n][K] the full P_behaviour(. | s_t) that propensity was read from */
    uint8_t *logged;   /* [n] 1: rlprice set this period's price and logged its distribution
                          (db_history's logged cells): propensity and behav_probs are that exact
                          distribution on the grid levels (each support price's probability on
                          its level), not the fitted behaviour model's estimate */
    size_t n_logged;   /* transitions with logged[] = 1 */
    env_behaviour *behaviour; /* fitted on these transitions; owned */
    env_reward_info reward_info; /* summed over products */
    long n_clipped;    /* logged prices outside the band */
    long n_skipped_no_ref; /* products without a reference price (no transitions) */
    env_behaviour_calib calibration; /* of `behaviour` on these transitions (in-sample); owned */
} env_transitions;

/* Build every transition of h (all products).  Caller frees with env_transitions_free.
 * Returns 0, ENG_EINVAL (bad config; reward errors such as a profit kind without a unit
 * cost), ENG_ENOMEM, ENG_ENUM (behaviour fit diverged). */
int env_transitions_build(const db_history *h, const env_transitions_cfg *cfg, env_transitions **out);
void env_transitions_free(env_transitions *tr);

#endif
