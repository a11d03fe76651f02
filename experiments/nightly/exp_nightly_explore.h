/* exp_nightly_explore.h - the nightly's side of logged exploration (exp_nightly_explore.c): the
 * step that runs exp_nightly_explore (exp_nightly.h) and hands its distributions to the push and
 * the report, and its parts of recommendations.json.  Used by exp_nightly.c only. */
#ifndef EXP_NIGHTLY_EXPLORE_H
#define EXP_NIGHTLY_EXPLORE_H

#include <stddef.h>

#include <json-c/json.h>

#include "db_push.h"
#include "exp_nightly.h"

/* Run exp_nightly_explore on the decisions d[0..res->n_products) into *out, then copy each
 * recommendation's price and distribution from its decision (recs[j] from rdec[j]; the arrays stay
 * the decisions', borrowed) and the night's exploration into res (for the report).  Returns 0 or
 * ENG_ENOMEM. */
int exp_nightly_explore_step(const exp_nightly_cfg *cfg, const db_history *h, exp_results *res, exp_nightly_decision *d,
                             db_recommendation *recs, const exp_nightly_decision *const *rdec, size_t nrec,
                             exp_explore_summary *out);

/* recommendations.json: summary.exploration (a new object, the caller owns it), and a
 * recommendation's decided_price, explored, propensity, support_prices, support_probs and
 * explore_cost_per_period added to o (prices as the database's decimals at `scale`). */
json_object *exp_explore_summary_json(const exp_explore_summary *s);
void exp_explore_decision_json(json_object *o, const exp_nightly_decision *d, int scale);

#endif
