/* exp_nightly_gather.h - the nightly's decisions made where the products live (docs/mpi.md,
 * "Decide on the owner rank"; exp_nightly_gather.c).
 *
 * After the comparison every rank decides its own products (exp_product_result.rank): the
 * gate, the hold reasons, the guardrails, the "seen" classification, the money scale and the
 * exploration candidate, each from that product's rows of the rank's history only, after one
 * small exchange (rank 0's shrunk uplifts of the other ranks' products).  The decisions then travel
 * to rank 0 as compact records (exp_nightly_gather_decisions), where the global rules (the
 * exploration budget and draws), the report and the push follow.  In one process the same code
 * runs: every product is rank 0's, and the records are packed and unpacked all the same.
 * Every function here is collective under MPI: all ranks call it, in the same order. */
#ifndef EXP_NIGHTLY_GATHER_H
#define EXP_NIGHTLY_GATHER_H

#include "exp_nightly.h"
#include "exp_nightly_explore.h"

/* MPI: rank 0 sends every product's shrunk uplifts (exp_product_result.uplift_shrunk: estimate,
 * interval, sd, availability; computed on rank 0 from the gathered results) to the ranks that
 * own them; each rank keeps those of its own products.  Starts with an agreement on `status`
 * (a failure anywhere returns it everywhere).  One process: returns status.  0 or the failure. */
int exp_nightly_share_shrunk(exp_results *res, int status);

/* Decide this rank's products (res->products[i].rank == this rank) into dec[i] (the others are
 * left as they are): exp_nightly_decide, a failed decision held by exp_nightly_hold_failed; with
 * exploration on, cand[i] filled (exp_explore_candidate; its failure agreed over the ranks).  Reads only the own products' rows of h.  *n_own = products decided
 * here.  Starts with an agreement on `status` (MPI).  Returns 0 or the failure (ENG_ENOMEM, an
 * exchange's; agreed over the ranks). */
int exp_nightly_decide_own(const exp_nightly_cfg *cfg, const db_history *h, const exp_results *res,
                           exp_nightly_decision *dec, exp_explore_cand *cand, int *n_own, int status);

/* Send every rank's decisions (and candidates) to rank 0 as records: a fixed-size head (index,
 * deciding rank, the decision's numbers and flags, the lengths of its reason and note), the
 * candidate when exploration is on, then the two strings.  On rank 0, dec[0..n) and cand[0..n)
 * are rewritten from the records in catalogue order and by_rank[eng_par_size()] (caller's
 * array) counts the products each rank decided; every product must arrive exactly once
 * (ENG_EFORMAT otherwise).  Starts with an agreement on `status`.  0 or the failure. */
int exp_nightly_gather_decisions(const exp_nightly_cfg *cfg, const exp_results *res, exp_nightly_decision *dec,
                                 exp_explore_cand *cand, int *by_rank, int status);

/* The whole step, every rank: exp_nightly_share_shrunk, *dec and *cand allocated ([n_products
 * + 1], zeroed; the caller frees them, also on failure), the test hook cfg->test_drop_foreign, exp_nightly_decide_own,
 * exp_nightly_gather_decisions, and on rank 0 the log line "decisions made per rank" and,
 * under MPI only, sum->n_decided_by_rank (freed by exp_nightly_summary_free; NULL in one
 * process, so a one-process summary owns nothing new).
 * h, res: the run's (res untouched when status != 0, may then be NULL).  Returns 0 or the
 * failure (agreed over the ranks). */
int exp_nightly_decide_gather(const exp_nightly_cfg *cfg, db_history *h, exp_results *res, exp_nightly_decision **dec,
                              exp_explore_cand **cand, exp_nightly_summary *sum, int status);

/* TEST HOOK (--test-drop-foreign-rows): blank in h every row and per-product field of the
 * products other ranks own (present 0, prices and amounts NaN, pinned), as a rank-local load
 * would leave them absent: a decision that read another rank's rows would then change. */
void exp_nightly_drop_foreign_rows(db_history *h, const exp_results *res);

#endif
