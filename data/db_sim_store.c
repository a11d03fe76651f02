/* db_sim_store.c - the simulator's side tables sim_propensities and sim_params (see
 * db_sim_store.h): their definitions and their one-transaction COPY. */
#include "db_sim_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eng_util.h"

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

int db_copybuf_array(db_copybuf *b, const double *v, int n) {
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

int db_sim_store_side(PGconn *c, const db_history *h, const db_sim_side *sd) {
    int st;
    db_copybuf b;
    char seedtxt[32];
    snprintf(seedtxt, sizeof seedtxt, "%llu", (unsigned long long)sd->seed);
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
    const int L = sd->n_levels;
    if ((st = db_copybuf_begin(&b, c, "COPY sim_propensities (product_id, day, price, level, propensity, probs) FROM STDIN")))
        goto fail;
    for (int i = 0; i < h->n_products; i++)
        for (int t = 0; t < h->n_periods; t++) {
            size_t cell = (size_t)i * h->n_periods + t;
            db_copybuf_text(&b, h->product_id[i]);
            db_copybuf_date(&b, h->day0 + t * h->period_days);
            db_copybuf_double(&b, h->price[cell]);
            db_copybuf_long(&b, sd->level[cell]);
            db_copybuf_double(&b, sd->propensity[cell]);
            db_copybuf_array(&b, sd->probs + cell * (size_t)L, L);
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
        db_copybuf_text(&b, h->product_id[i]);
        db_copybuf_text(&b, sd->preset);
        db_copybuf_text(&b, seedtxt);
        sd->param_cols(&b, i, sd->ctx);
        db_copybuf_array(&b, sd->grid, L);
        db_copybuf_eol(&b);
    }
    if ((st = db_copybuf_end(&b, "copy sim_params"))) goto fail;
    return db_copybuf_exec(c, "COMMIT", "commit sim tables");
fail:
    PQclear(PQexec(c, "ROLLBACK"));
    return st;
}
