/* env_sim_cmd.c - `rlprice simulate`: simulated histories into the rlprice schema, plus the
 * side tables sim_propensities and sim_params (see docs/simulator.md). */
#include "rlp_cmd.h"
#include "env_sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "db_copybuf.h"
#include "db_schema.h"
#include "db_store.h"
#include "eng_parse.h"

#define SIM_DAY0 19723 /* 2024-01-01, a Monday */

static int usage(void) {
    fprintf(stderr,
            "usage: rlprice simulate --products N --days D --seed S [--db CONNINFO] [--period day|week]\n"
            "                        [--preset default|dominicks] [--data PATH]\n"
            "  --days D is the calendar length in days (weeks = ceil(D / 7) with --period week);\n"
            "  --preset dominicks fits elasticities from PATH (default\n"
            "  " RLPRICE_BUILD_DATA "/dominicks_oj/oj_store_brand_week.csv, unpacked by `make` from\n"
            "  data/datasets/dominicks_oj) and simulates its brands.\n");
    return 2;
}

int env_sim_cmd_simulate(int argc, char **argv) {
    long n_products = -1, days = -1, seed = -1, period_days = 1;
    const char *conninfo = NULL, *preset_name = "default";
    const char *data = RLPRICE_BUILD_DATA "/dominicks_oj/oj_store_brand_week.csv";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(), 0;
        if (!v) {
            fprintf(stderr, "rlprice simulate: '%s' needs a value (or is unknown)\n", a);
            return usage();
        }
        i++;
        if (!strcmp(a, "--products")) {
            if (eng_parse_long(v, 1, 10000000, &n_products)) return fprintf(stderr, "rlprice simulate: bad --products '%s'\n", v), 2;
        } else if (!strcmp(a, "--days")) {
            if (eng_parse_long(v, 1, 100000, &days)) return fprintf(stderr, "rlprice simulate: bad --days '%s'\n", v), 2;
        } else if (!strcmp(a, "--seed")) {
            if (eng_parse_long(v, 0, 0x7fffffffffffffffL, &seed)) return fprintf(stderr, "rlprice simulate: bad --seed '%s'\n", v), 2;
        } else if (!strcmp(a, "--db")) {
            conninfo = v;
        } else if (!strcmp(a, "--period")) {
            if (!strcmp(v, "day")) period_days = 1;
            else if (!strcmp(v, "week")) period_days = 7;
            else return fprintf(stderr, "rlprice simulate: --period must be day or week, not '%s'\n", v), 2;
        } else if (!strcmp(a, "--preset")) {
            if (strcmp(v, "default") && strcmp(v, "dominicks"))
                return fprintf(stderr, "rlprice simulate: --preset must be default or dominicks, not '%s'\n", v), 2;
            preset_name = v;
        } else if (!strcmp(a, "--data")) {
            data = v;
        } else {
            fprintf(stderr, "rlprice simulate: unknown option '%s'\n", a);
            return usage();
        }
    }
    if (n_products < 0 || days < 0 || seed < 0) {
        fprintf(stderr, "rlprice simulate: --products, --days and --seed are required\n");
        return usage();
    }
    int rc = 0, st;
    PGconn *conn = NULL;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    env_sim_fit fit;
    env_sim_preset preset = ENV_SIM_PRESET_DEFAULT;
    if (!strcmp(preset_name, "dominicks")) {
        preset = ENV_SIM_PRESET_DOMINICKS;
        if ((st = env_sim_fit_dominicks(data, &fit))) {
            fprintf(stderr, "rlprice simulate: %s\n", eng_err_msg());
            return st == ENG_EIO ? 2 : 1;
        }
        printf("Dominick's fit: %ld rows, pooled within-series elasticity %.3f (se %.3f)\n", fit.n_rows, fit.pooled,
               fit.pooled_se);
        for (int b = 0; b < fit.n_brands; b++)
            printf("  brand %2d: elasticity %.3f (se %.3f), mean price %.2f, mean units %.1f\n", b + 1,
                   fit.elasticity[b], fit.se[b], fit.mean_price[b], fit.mean_units[b]);
    }
    int n_periods = (int)(period_days == 7 ? (days + 6) / 7 : days);
    double t0 = eng_now();
    if ((st = env_sim_generate(preset, preset == ENV_SIM_PRESET_DOMINICKS ? &fit : NULL, (int)n_products, n_periods,
                               (int)period_days, SIM_DAY0, (uint64_t)seed, &h, &lg))) {
        fprintf(stderr, "rlprice simulate: %s\n", eng_err_msg());
        rc = st == ENG_EINVAL ? 2 : 1;
        goto cleanup;
    }
    double t1 = eng_now();
    if (db_resolve(&conn, conninfo) || db_schema_apply(conn)) {
        fprintf(stderr, "rlprice simulate: %s\n", eng_err_msg());
        rc = 3;
        goto cleanup;
    }
    db_store_opts o = {.replace_range = 1, .category = "simulated"};
    db_store_report r;
    if ((st = db_history_store(conn, h, &o, &r)) || (st = env_sim_store_side(conn, h, lg, preset_name, (uint64_t)seed))) {
        fprintf(stderr, "rlprice simulate: %s\n", eng_err_msg());
        rc = st == ENG_EDB ? 3 : 1;
        goto cleanup;
    }
    double units = 0, rev = 0, traffic = 0;
    long promos = 0;
    size_t cells = (size_t)h->n_products * h->n_periods;
    for (size_t c = 0; c < cells; c++) units += h->units[c], rev += h->revenue[c], traffic += h->traffic[c], promos += h->promo[c];
    printf("simulated %d products x %d %s (seed %ld, preset %s) in %.2fs; stored in %.2fs on %s\n", h->n_products,
           h->n_periods, period_days == 7 ? "weeks" : "days", seed, preset_name, t1 - t0, eng_now() - t1,
           db_describe(conn));
    printf("  sales rows %ld (+%ld new), competitor prices %ld; promo share %.3f; mean units %.2f; revenue per visitor %.4f\n",
           r.sales_inserted + r.sales_updated, r.sales_inserted, r.comp_inserted + r.comp_updated,
           (double)promos / (double)cells, units / (double)cells, traffic > 0 ? rev / traffic : 0.0);
cleanup:
    if (conn) db_disconnect(conn);
    db_history_free(h);
    env_sim_log_free(lg);
    return rc;
}
