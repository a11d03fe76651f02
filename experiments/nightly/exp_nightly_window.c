/* exp_nightly_window.c - the night's history window chosen by its own carry-over test
 * (exp_nightly_window.h). */
#include "exp_nightly_window.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "eng_date.h"
#include "eng_par.h"
#include "eng_time.h"
#include "eng_util.h"
#include "exp_gate.h"
#include "exp_nightly_shard.h"
#include "feat.h"
#include "feat_demand.h"

int exp_nightly_window_check(const exp_nightly_cfg *cfg) {
    if (cfg->window_carryover_days < 0 || cfg->window_carryover_days > 36500 ||
        !(cfg->window_carryover_share >= 0 && cfg->window_carryover_share <= 1))
        return eng_err_set(ENG_EINVAL, "nightly: window_carryover_days must be in [0, 36500] (0: off), "
                                       "window_carryover_share in [0, 1]");
    return ENG_OK;
}

int exp_nightly_window_on(const exp_nightly_cfg *cfg) {
    return cfg->window_carryover_days > 0 && (cfg->window_days <= 0 || cfg->window_carryover_days < cfg->window_days);
}

int exp_nightly_window_test(const exp_nightly_cfg *cfg, const db_history *h, int *n_carry, int *n_tested) {
    const double z = cfg->explore.carryover_z > 0 ? (double)cfg->explore.carryover_z : 2.0;
    int64_t c[2] = {0, 0}; /* tested, showing carry-over */
    int st = ENG_OK;
    for (int p = 0; h && p < h->n_products; p++) {
        const double inc = feat_incumbent_price(h, p, h->n_periods, NULL);
        if (!(inc > 0)) continue; /* no price to test from: not counted */
        exp_gate_fit f;
        /* the fit's only failure is out of memory: it stops the test (a product that cannot be
         * fitted is f.ok == 0, not counted); the other ranks learn of it through the agreement below */
        if ((st = exp_gate_fit_ex(h, p, inc, (int)cfg->compare.reward.kind, 1, &cfg->compare.demand_prior, &f))) break;
        if (!f.ok) continue;
        c[0]++;
        c[1] += feat_demand_lag_carries(&f.dm, z) != 0;
    }
    if (eng_par_size() > 1) { /* every rank fails together (the lowest failing rank's message), or sums */
        st = eng_par_agree(st);
        if (!st) st = eng_par_allreduce_i64(c, 2, ENG_PAR_SUM);
    }
    *n_tested = st ? 0 : (int)c[0];
    *n_carry = st ? 0 : (int)c[1];
    return st;
}

int exp_nightly_window_short(const exp_nightly_cfg *cfg, int n_carry, int n_tested) {
    return n_tested > 0 && n_carry > (double)cfg->window_carryover_share * n_tested;
}

/* Load the last cfg->window_carryover_days days before cfg->date into *out / *rep (collective).
 * 0 or the loader's failure (*out NULL). */
static int load_short(const exp_nightly_cfg *cfg, PGconn *conn, db_history **out, db_load_report *rep) {
    char from[16], to[16];
    db_load_opts lo;
    db_load_opts_default(&lo);
    eng_date_format(cfg->date - 1, to);
    eng_date_format(cfg->date - cfg->window_carryover_days, from);
    lo.from = from;
    lo.to = to;
    lo.products = cfg->products;
    lo.n_filter = cfg->products ? cfg->n_products : 0;
    lo.min_periods = cfg->min_periods;
    lo.run_id = NULL; /* the rejected rows are stored by the push, in its transaction */
    return exp_nightly_load_shard(conn, &lo, out, rep, ENG_OK);
}

int exp_nightly_window_pick(const exp_nightly_cfg *cfg, exp_nightly_cfg *pcfg, PGconn *conn, db_history **h,
                            db_load_report *rep, exp_nightly_summary *sum) {
    if (!exp_nightly_window_on(cfg)) return ENG_OK;
    int nc = 0, nt = 0, st = exp_nightly_window_test(pcfg, *h, &nc, &nt);
    if (st) return st;
    sum->window_tested = 1, sum->window_carry = nc, sum->window_carry_tested = nt;
    sum->window_short = exp_nightly_window_short(cfg, nc, nt);
    ENG_INFO("nightly: window: %d of %d fitted products show carry-over (limit %.3g of them): %s", nc, nt,
             (double)cfg->window_carryover_share, sum->window_short ? "the short window" : "the whole window");
    if (!sum->window_short) return ENG_OK;
    const double t = eng_now();
    db_history *h2 = NULL;
    db_load_report r2;
    memset(&r2, 0, sizeof r2);
    if ((st = load_short(cfg, conn, &h2, &r2))) {
        db_load_report_free(&r2);
        return st;
    }
    db_history_free(*h);
    db_load_report_free(rep);
    *h = h2, *rep = r2;
    sum->n_rejected_rows = (int64_t)rep->n_rejects;
    sum->n_skipped = rep->n_skipped;
    sum->sec_load += eng_now() - t;
    ENG_INFO("nightly: window: reloaded %d products x %d periods of the last %d days", h2->n_products, h2->n_periods,
             cfg->window_carryover_days);
    if (h2->n_products == 0)
        return eng_err_set(ENG_EINVAL, "nightly: no product has %d clean periods in the last %d days", cfg->min_periods,
                           cfg->window_carryover_days);
    return exp_nightly_pool_cfg(cfg, h2, pcfg); /* the night's prior on the rows it prices from */
}
