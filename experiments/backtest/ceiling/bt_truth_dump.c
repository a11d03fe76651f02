/* bt_truth_dump.c - write the one-night backtest's simulated history and its hidden truth as CSV,
 * for the ceiling analysis (experiments/backtest/ceiling/ceiling.py; docs/backtest.md, "The
 * `logit` ceiling").  Not part of the product: a tool beside the backtest, built by `make` into
 * $(BUILD)/tools/bt_truth_dump.
 *
 *   bt_truth_dump FAMILY SEED PRODUCTS DAYS OUTDIR
 *
 * simulates exactly the history `rlprice backtest --family FAMILY --seed SEED --products PRODUCTS
 * --days DAYS` simulates for that seed (exp_bt_gen_opts with the backtest's defaults: DAYS days of
 * history plus the day the next price is valued on) and writes
 *   OUTDIR/truth.csv    one row per product: list price p0, unit cost, the purchase logit's
 *                       intercept a, price coefficient b, competitor coefficient gc, the
 *                       competitors' mean price, the reference memory / gain / loss and the hidden
 *                       reference price on the valued day;
 *   OUTDIR/periods.csv  one row per (product, day 0 .. DAYS): the price as simulated (the
 *                       backtest imports it in whole cents), traffic, units and the competitors'
 *                       mean posted price; day DAYS is the valued day (its price is the logging
 *                       policy's draw, not used).
 * Exit status 0, 1 on a failure (message on stderr), 2 on bad arguments. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_history.h"
#include "eng_status.h"
#include "env_sim.h"
#include "exp_backtest.h"

/* Open dir/name for writing; NULL with a message on stderr. */
static FILE *open_out(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "bt_truth_dump: %s: %s\n", path, strerror(errno));
    return f;
}

/* The two files of one simulated history.  0, or 1 after a message on stderr. */
static int write_csv(const char *dir, const db_history *h, const env_sim_log *lg) {
    FILE *ft = open_out(dir, "truth.csv"), *fp = ft ? open_out(dir, "periods.csv") : NULL;
    int rc = 1;
    if (!ft || !fp) goto cleanup;
    const int P = h->n_products, T = h->n_periods;
    fprintf(ft, "product,p0,cost,a,b,gc,comp_mean,ref_lambda,ref_gain,ref_loss,ref_valued\n");
    for (int i = 0; i < P; i++) {
        const env_sim_params *p = &lg->params[i];
        fprintf(ft, "%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", i, p->base_price, p->unit_cost,
                p->conv_base, p->elasticity, p->n_comp > 0 ? p->comp_coef : 0.0, env_sim_comp_mean_price(p), p->ref_lambda,
                p->ref_gain, p->ref_loss, lg->ref[(size_t)i * T + (T - 1)]);
    }
    fprintf(fp, "product,day,price,traffic,units,comp_mean_price\n");
    for (int i = 0; i < P; i++)
        for (int t = 0; t < T; t++) {
            const size_t c = (size_t)i * T + t;
            const double cm = db_history_comp_mean(h, c);
            fprintf(fp, "%d,%d,%.17g,%.9g,%.9g,%.17g\n", i, t, h->price[c], h->traffic[c], h->units[c],
                    isfinite(cm) ? cm : 0.0);
        }
    rc = 0;
cleanup:
    if (fp && fclose(fp)) rc = 1;
    if (ft && fclose(ft)) rc = 1;
    if (rc) fprintf(stderr, "bt_truth_dump: could not write the files in %s\n", dir);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: bt_truth_dump FAMILY SEED PRODUCTS DAYS OUTDIR\n");
        return 2;
    }
    env_sim_family fam;
    char *end = NULL;
    unsigned long long seed = strtoull(argv[2], &end, 10);
    int P = atoi(argv[3]), D = atoi(argv[4]);
    if (env_sim_family_parse(argv[1], &fam) || fam == ENV_SIM_FAMILY_NONE || !end || *end || P < 1 || D < 2) {
        fprintf(stderr, "bt_truth_dump: need a family (logit, ce, ref), a seed, products >= 1 and days >= 2\n");
        return 2;
    }
    exp_bt_cfg cfg = exp_bt_default();
    env_sim_gen_opts go = exp_bt_gen_opts(&cfg, fam, seed);
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    int rc = 1;
    if (env_sim_generate_ex(&go, P, D + 1, &h, &lg)) {
        fprintf(stderr, "bt_truth_dump: %s\n", eng_err_msg());
        goto cleanup;
    }
    rc = write_csv(argv[5], h, lg);
cleanup:
    db_history_free(h);
    env_sim_log_free(lg);
    return rc;
}
