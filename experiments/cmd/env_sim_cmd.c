/* env_sim_cmd.c - `rlprice simulate`: simulated histories into the rlprice schema, plus the
 * side tables sim_propensities and sim_params (see docs/simulator.md). */
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

#define SIM_DAY0 19723 /* 2024-01-01, a Monday */

static const char *sim_ddl =
    "SET LOCAL client_min_messages = warning;"
    "CREATE TABLE IF NOT EXISTS sim_propensities ("
    " product_id text NOT NULL, day date NOT NULL, price float8 NOT NULL, level integer NOT NULL,"
    " propensity float8 NOT NULL, probs float8[] NOT NULL, PRIMARY KEY (product_id, day));"
    "CREATE TABLE IF NOT EXISTS sim_params ("
    " product_id text PRIMARY KEY, preset text, seed text, base_price float8, unit_cost float8,"
    " period_days integer, dow0 integer, traffic_base float8, traffic_trend float8, weekly float8[],"
    " traffic_sigma float8, conv_base float8, elasticity float8, comp_coef float8, ref_lambda float8,"
    " ref_gain float8, ref_loss float8, ref0 float8, promo_lift float8, promo_threshold float8,"
    " n_comp integer, comp_mean float8[], comp_phi float8, comp_sigma float8, comp_promo_prob float8,"
    " comp_promo_depth float8, stock float8, good_mult float8, log_width float8, log_promo_prob float8,"
    " log_comp_follow float8, grid float8[]);"
    "COMMENT ON TABLE sim_propensities IS 'Logging-policy propensity of each simulated price: level of the grid, its probability and the full distribution.';"
    "COMMENT ON TABLE sim_params IS 'True demand parameters of each simulated product (docs/simulator.md).';";

/* '{a,b,c}' array literal of doubles (numbers only) into the COPY stream. */
static int copy_array(db_copybuf *b, const double *v, int n) {
    size_t cap = (size_t)n * 32 + 4, len = 0;
    char *s = eng_malloc(cap);
    if (!s) return b->status = ENG_ENOMEM;
    s[len++] = '{';
    for (int i = 0; i < n; i++) {
        char num[40];
        db_copybuf_fmt_double(num, v[i]);
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", num);
    }
    s[len++] = '}';
    s[len] = '\0';
    int st = db_copybuf_text(b, s);
    free(s);
    return st;
}

int env_sim_store_side(PGconn *c, const db_history *h, const env_sim_log *lg, const char *preset, uint64_t seed) {
    int st;
    db_copybuf b;
    char seedtxt[32];
    snprintf(seedtxt, sizeof seedtxt, "%llu", (unsigned long long)seed);
    if ((st = db_copybuf_exec(c, "BEGIN", "begin"))) return st;
    if ((st = db_copybuf_exec(c, sim_ddl, "create sim tables"))) goto fail;
    if ((st = db_copybuf_exec(c, "CREATE TEMP TABLE sim_ids (product_id text) ON COMMIT DROP", "temp ids"))) goto fail;
    if ((st = db_copybuf_begin(&b, c, "COPY sim_ids (product_id) FROM STDIN"))) goto fail;
    for (int i = 0; i < h->n_products; i++) db_copybuf_text(&b, h->product_id[i]), db_copybuf_eol(&b);
    if ((st = db_copybuf_end(&b, "copy sim_ids"))) goto fail;
    if ((st = db_copybuf_exec(c, "DELETE FROM sim_propensities s USING sim_ids i WHERE s.product_id = i.product_id",
                              "clear sim_propensities")) ||
        (st = db_copybuf_exec(c, "DELETE FROM sim_params s USING sim_ids i WHERE s.product_id = i.product_id",
                              "clear sim_params")))
        goto fail;
    const int L = lg->grid.n;
    if ((st = db_copybuf_begin(&b, c, "COPY sim_propensities (product_id, day, price, level, propensity, probs) FROM STDIN")))
        goto fail;
    for (int i = 0; i < h->n_products; i++)
        for (int t = 0; t < h->n_periods; t++) {
            size_t cell = (size_t)i * h->n_periods + t;
            db_copybuf_text(&b, h->product_id[i]);
            db_copybuf_date(&b, h->day0 + t * h->period_days);
            db_copybuf_double(&b, h->price[cell]);
            db_copybuf_long(&b, lg->level[cell]);
            db_copybuf_double(&b, lg->propensity[cell]);
            copy_array(&b, lg->probs + cell * (size_t)L, L);
            db_copybuf_eol(&b);
        }
    if ((st = db_copybuf_end(&b, "copy sim_propensities"))) goto fail;
    if ((st = db_copybuf_begin(&b, c,
                               "COPY sim_params (product_id, preset, seed, base_price, unit_cost, period_days, dow0,"
                               " traffic_base, traffic_trend, weekly, traffic_sigma, conv_base, elasticity, comp_coef,"
                               " ref_lambda, ref_gain, ref_loss, ref0, promo_lift, promo_threshold, n_comp, comp_mean,"
                               " comp_phi, comp_sigma, comp_promo_prob, comp_promo_depth, stock, good_mult, log_width,"
                               " log_promo_prob, log_comp_follow, grid) FROM STDIN")))
        goto fail;
    for (int i = 0; i < h->n_products; i++) {
        const env_sim_params *p = &lg->params[i];
        db_copybuf_text(&b, h->product_id[i]);
        db_copybuf_text(&b, preset);
        db_copybuf_text(&b, seedtxt);
        db_copybuf_double(&b, p->base_price), db_copybuf_double(&b, p->unit_cost);
        db_copybuf_long(&b, p->period_days), db_copybuf_long(&b, p->dow0);
        db_copybuf_double(&b, p->traffic_base), db_copybuf_double(&b, p->traffic_trend);
        copy_array(&b, p->weekly, 7);
        db_copybuf_double(&b, p->traffic_sigma), db_copybuf_double(&b, p->conv_base);
        db_copybuf_double(&b, p->elasticity), db_copybuf_double(&b, p->comp_coef);
        db_copybuf_double(&b, p->ref_lambda), db_copybuf_double(&b, p->ref_gain), db_copybuf_double(&b, p->ref_loss);
        db_copybuf_double(&b, p->ref0), db_copybuf_double(&b, p->promo_lift), db_copybuf_double(&b, p->promo_threshold);
        db_copybuf_long(&b, p->n_comp);
        copy_array(&b, p->comp_mean, p->n_comp);
        db_copybuf_double(&b, p->comp_phi), db_copybuf_double(&b, p->comp_sigma);
        db_copybuf_double(&b, p->comp_promo_prob), db_copybuf_double(&b, p->comp_promo_depth);
        db_copybuf_double(&b, p->stock > 0 ? p->stock : NAN);
        db_copybuf_double(&b, p->good_mult), db_copybuf_double(&b, p->log_width);
        db_copybuf_double(&b, p->log_promo_prob), db_copybuf_double(&b, p->log_comp_follow);
        copy_array(&b, lg->grid.mult, L);
        db_copybuf_eol(&b);
    }
    if ((st = db_copybuf_end(&b, "copy sim_params"))) goto fail;
    return db_copybuf_exec(c, "COMMIT", "commit sim tables");
fail:
    PQclear(PQexec(c, "ROLLBACK"));
    return st;
}

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

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
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
            if (parse_long(v, 1, 10000000, &n_products)) return fprintf(stderr, "rlprice simulate: bad --products '%s'\n", v), 2;
        } else if (!strcmp(a, "--days")) {
            if (parse_long(v, 1, 100000, &days)) return fprintf(stderr, "rlprice simulate: bad --days '%s'\n", v), 2;
        } else if (!strcmp(a, "--seed")) {
            if (parse_long(v, 0, 0x7fffffffffffffffL, &seed)) return fprintf(stderr, "rlprice simulate: bad --seed '%s'\n", v), 2;
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
