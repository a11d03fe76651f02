/* exp_backtest_int.h - shared between the backtest's run (exp_backtest.c) and its valuation
 * (exp_backtest_value.c); not a public interface. */
#ifndef EXP_BACKTEST_INT_H
#define EXP_BACKTEST_INT_H

#include <stdio.h>

#include <json-c/json.h>

#include "exp_backtest.h"

/* What the night decided for one simulated product (captured by the nightly's hook). */
typedef struct bt_prod {
    int valid;                       /* priced by the nightly and not failed */
    double incumbent;
    double lo, hi;                   /* the guardrails' interval around the incumbent */
    double agent_price[EXP_N_AGENTS];/* each agent's guarded next price */
    double pushed;                   /* the final (pushed) price */
    double model;                    /* the demand model's best price inside lo..hi (NaN: none) */
    int deployed;
    exp_agent agent;
    double gate_price[EXP_BT_N_GATE];/* the price of each gate variant */
} bt_prod;

/* z of a two-sided normal interval of level `level` (0.95 -> 1.96). */
double bt_level_z(double level);

/* Value the captured prices of every product under the truth of period n_days of the simulated
 * history h / lg (h has n_days + 1 periods) into run.  Returns 0 or ENG_EINVAL. */
int bt_value(const exp_bt_cfg *cfg, const db_history *h, const env_sim_log *lg, const bt_prod *prod, exp_bt_run *run);

/* The first day of every simulated history: 2024-01-01. */
#define BT_DAY0 19723

/* Write products.csv, sales.csv and competitor_prices.csv of the first n_days periods of h into
 * dir (products with cfg's change limit and wide hard bounds 0.5-2 x the list price) and import
 * them with db_import_csv, strict (any bad line fails); the files are removed.  0, ENG_EIO,
 * ENG_EDB, ENG_EFORMAT. */
int bt_import_history(PGconn *c, const char *dir, const exp_bt_cfg *cfg, const db_history *h, int n_days);
/* mkdir -p; 0 or ENG_EIO. */
int bt_mkdir_p(const char *path);

/* Write dir/<table><suffix> with writer(f, ctx) (temp file + fsync + rename), import it into
 * table with db_import_csv, strict (any bad line fails), and remove the file.  *rows (may be
 * NULL) = rows inserted + updated.  0, ENG_EIO, ENG_EDB, ENG_EFORMAT. */
int bt_write_import(PGconn *c, const char *dir, const char *table, const char *suffix,
                    int (*writer)(FILE *, void *), void *ctx, long *rows);

/* Write the JSON document root, pretty-printed, to path (temp file + fsync + rename) and release
 * root (the caller's reference) in every case.  0, ENG_EIO, ENG_ENOMEM. */
int bt_write_json_doc(const char *path, json_object *root);

#endif
