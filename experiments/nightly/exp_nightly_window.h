/* exp_nightly_window.h - the night's history window chosen by its own carry-over test
 * (nightly.window_carryover_days, window_carryover_share; docs/nightly.md "Window by carry-over";
 * docs/backtest.md "q13window").
 *
 * A long window keeps old price variation, which informs every product's price slope; on a market
 * whose customers remember prices (carry-over: the demand model's lag column) the old rows were
 * sold under other reference prices and a long window's fit serves the decision less well.  With
 * window_carryover_days N > 0 the night loads its window (window_days; 0 = all) as before, fits
 * each product's standing demand model (exp_gate_fit_ex, standing 1, under the night's pooled
 * prior) and counts the products whose lag coefficient is at least explore.carryover_z robust
 * standard errors from 0 - the test logged exploration's carry-over rules use.  When more than
 * window_carryover_share of the fitted products show carry-over, the night reloads the last N days
 * only (the same loader, the same options) and pools its prior again on them; otherwise it keeps
 * the long window.  Nothing here knows the market: the choice is the night's own evidence. */
#ifndef EXP_NIGHTLY_WINDOW_H
#define EXP_NIGHTLY_WINDOW_H

#include <libpq-fe.h>

#include "db_history.h"
#include "db_load.h"
#include "exp_nightly.h"

/* The settings' ranges: window_carryover_days in [0, 36500], window_carryover_share in [0, 1].
 * 0 or ENG_EINVAL (message set). */
int exp_nightly_window_check(const exp_nightly_cfg *cfg);

/* 1 when the rule can shorten cfg's window: window_carryover_days > 0 and shorter than
 * window_days (or window_days 0: everything). */
int exp_nightly_window_on(const exp_nightly_cfg *cfg);

/* Count h's products whose standing demand fit (exp_gate_fit_ex standing 1 at the product's
 * incumbent, cfg->compare.demand_prior, cfg->compare.reward.kind) is ok (*n_tested) and shows
 * carry-over at cfg->explore.carryover_z (0: 2) (*n_carry).  A product that cannot be fitted is
 * not counted.  Under MPI the counts are every rank's (collective: every rank calls it).
 * Returns 0, ENG_ENOMEM when a fit ran out of memory (on this rank or, under MPI, another: every
 * rank returns it; an out-of-memory fit is never counted as "cannot be fitted") or the
 * exchange's failure (counts 0). */
int exp_nightly_window_test(const exp_nightly_cfg *cfg, const db_history *h, int *n_carry, int *n_tested);

/* 1 when the test's counts choose the short window: n_tested > 0 and n_carry > share x n_tested. */
int exp_nightly_window_short(const exp_nightly_cfg *cfg, int n_carry, int n_tested);

/* The rule for one night, after the first pool (exp_nightly_pool_cfg(cfg, *h, pcfg)): test *h
 * under pcfg's prior; when the short window is chosen, load the last window_carryover_days days
 * (cfg's products, min_periods, date) into a new history and report that replace *h and *rep
 * (the old ones freed) and pool again into *pcfg.  sum->window_* and the load counts
 * (n_rejected_rows, n_skipped, sec_load) follow.  Nothing happens when exp_nightly_window_on is
 * 0.  Collective under MPI.  Returns 0, or the loader's / pool's failure (ENG_EDB, ENG_ENOMEM,
 * ENG_EINVAL when no product has min_periods clean periods in the short window); on failure *h
 * and *rep are either the old ones or the new ones, never freed twice. */
int exp_nightly_window_pick(const exp_nightly_cfg *cfg, exp_nightly_cfg *pcfg, PGconn *conn, db_history **h,
                            db_load_report *rep, exp_nightly_summary *sum);

#endif
