/* env_sim_store.c - the simulator's side tables (env_sim_store_side, see env_sim.h): the values
 * of db_sim_store_side (data/db_sim_store.c holds the tables and the SQL). */
#include "env_sim.h"

#include <math.h>

#include "db_sim_store.h"

/* Product i's sim_params columns from base_price to log_comp_follow (db_sim_store.h). */
static int sim_param_cols(db_copybuf *b, int i, void *ctx) {
    const env_sim_params *p = &((const env_sim_log *)ctx)->params[i];
    db_copybuf_double(b, p->base_price), db_copybuf_double(b, p->unit_cost);
    db_copybuf_long(b, p->period_days), db_copybuf_long(b, p->dow0);
    db_copybuf_double(b, p->traffic_base), db_copybuf_double(b, p->traffic_trend);
    db_copybuf_array(b, p->weekly, 7);
    db_copybuf_double(b, p->traffic_sigma), db_copybuf_double(b, p->conv_base);
    db_copybuf_double(b, p->elasticity), db_copybuf_double(b, p->comp_coef);
    db_copybuf_double(b, p->ref_lambda), db_copybuf_double(b, p->ref_gain), db_copybuf_double(b, p->ref_loss);
    db_copybuf_double(b, p->ref0), db_copybuf_double(b, p->promo_lift), db_copybuf_double(b, p->promo_threshold);
    db_copybuf_long(b, p->n_comp);
    db_copybuf_array(b, p->comp_mean, p->n_comp);
    db_copybuf_double(b, p->comp_phi), db_copybuf_double(b, p->comp_sigma);
    db_copybuf_double(b, p->comp_promo_prob), db_copybuf_double(b, p->comp_promo_depth);
    db_copybuf_double(b, p->stock > 0 ? p->stock : NAN);
    db_copybuf_double(b, p->good_mult), db_copybuf_double(b, p->log_width);
    db_copybuf_double(b, p->log_promo_prob), db_copybuf_double(b, p->log_comp_follow);
    return b->status;
}

int env_sim_store_side(PGconn *c, const db_history *h, const env_sim_log *lg, const char *preset, uint64_t seed) {
    db_sim_side sd = {lg->level, lg->propensity, lg->probs, lg->grid.n, lg->grid.mult, preset, seed,
                      sim_param_cols, (void *)lg};
    return db_sim_store_side(c, h, &sd);
}
