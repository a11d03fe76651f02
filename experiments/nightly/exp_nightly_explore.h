/* exp_nightly_explore.h - the nightly's side of logged exploration (exp_nightly_explore.c): the
 * step that runs exp_nightly_explore (exp_nightly.h) and hands its distributions to the push and
 * the report, and its parts of recommendations.json.  Used by exp_nightly.c only. */
#ifndef EXP_NIGHTLY_EXPLORE_H
#define EXP_NIGHTLY_EXPLORE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "db_push.h"
#include "exp_nightly.h"

/* The exploration settings as `nightly.explore.key = value` lines for the run id's text, into
 * buf (size n, always terminated): share, max_step, max_cost, and the others only when set (a run
 * id without them is the one before they existed). */
void exp_explore_cfg_text(const exp_explore_cfg *x, char *buf, size_t n);

/* exp_nightly_explore (exp_nightly.h) in its parts, so that under MPI each rank does the
 * per-product work on its own products and rank 0 the budget (docs/mpi.md):
 *   1. exp_explore_candidate: product p's candidate (its neighbouring prices and the engine's
 *      revenue at each: p's demand model, features/feat_demand.h, fitted on p's rows of h only,
 *      a normal period at the latest competitor prices), given its decision d;
 *   2. exp_explore_apply (rank 0, on every product's candidate in catalogue order): the night's
 *      revenue and expected cost summed in catalogue order, the probability within the budget,
 *      the draws from each product's own stream, the distributions into d[0..n).
 * The result is the same as one call of exp_nightly_explore over every product. */
typedef enum {
    EXP_EXPLORE_NONE = 0,     /* no valid decided price: not in the night's revenue */
    EXP_EXPLORE_FAILED,       /* failed product: in the revenue, never explored */
    EXP_EXPLORE_PINNED,       /* products.explore = false */
    EXP_EXPLORE_NO_NEIGHBOUR, /* no neighbouring price inside the guardrails and max_step */
    EXP_EXPLORE_ELIGIBLE
} exp_explore_kind;

/* One product's exploration candidate (fixed size: it travels between ranks as bytes). */
typedef struct exp_explore_cand {
    int32_t kind;                           /* exp_explore_kind */
    int32_t m;                              /* neighbours (ELIGIBLE: > 0) */
    double nb[2 * EXP_EXPLORE_MAX_SIDE];    /* the neighbouring prices */
    double r0, r[2 * EXP_EXPLORE_MAX_SIDE]; /* revenue at the decided price and at each neighbour */
    double w0, w[2 * EXP_EXPLORE_MAX_SIDE]; /* if explored: probability of the decided price and of
                                               each neighbour (uniform mode: 0 and 1 / m) */
    double cost;                            /* expected loss if explored: sum of w[k] max(r0 - r[k], 0) */
    int32_t carry;                          /* Thompson: 1 the demand fit shows carry-over, 0 not,
                                               -1 not tested (explore.carryover_share) */
} exp_explore_cand;

/* Fills *c (kind NONE when p is outside h or d has no valid price).  Returns 0 or ENG_ENOMEM. */
int exp_explore_candidate(const exp_nightly_cfg *cfg, const db_history *h, int p, const exp_nightly_decision *d,
                          exp_explore_cand *c);
/* cand[0..n) aligned with d[0..n) and res->products.  *out may be NULL.  Returns 0. */
int exp_explore_apply(const exp_nightly_cfg *cfg, const exp_results *res, const exp_explore_cand *cand,
                      exp_nightly_decision *d, int n, exp_explore_summary *out);

/* Run exp_explore_apply on the decisions d[0..res->n_products) and their candidates into *out,
 * then copy each recommendation's price and distribution from its decision (recs[j] from
 * rdec[j]; the arrays stay the decisions', borrowed) and the night's exploration into res (for
 * the report).  Returns 0 or ENG_ENOMEM. */
int exp_nightly_explore_step(const exp_nightly_cfg *cfg, const exp_explore_cand *cand, exp_results *res,
                             exp_nightly_decision *d, db_recommendation *recs, const exp_nightly_decision *const *rdec,
                             size_t nrec, exp_explore_summary *out);

/* recommendations.json: summary.exploration (a new object, the caller owns it), and a
 * recommendation's decided_price, explored, propensity, support_prices, support_probs and
 * explore_cost_per_period added to o (prices as the database's decimals at `scale`). */
json_object *exp_explore_summary_json(const exp_explore_summary *s);
void exp_explore_decision_json(json_object *o, const exp_nightly_decision *d, int scale);

#endif
