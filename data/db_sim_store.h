/* db_sim_store.h - the simulator's side tables (docs/simulator.md): sim_propensities (the
 * logging policy's level, propensity and full distribution of every simulated price) and
 * sim_params (each product's true demand parameters).  Their definitions and SQL live here;
 * the simulator (env_sim_store_side) supplies the values. */
#ifndef DB_SIM_STORE_H
#define DB_SIM_STORE_H

#include <stdint.h>

#include <libpq-fe.h>

#include "db_copybuf.h"
#include "db_history.h"

typedef struct db_sim_side {
    const int16_t *level;      /* [P * T] chosen level */
    const double *propensity;  /* [P * T] its probability */
    const double *probs;       /* [P * T * n_levels] full distribution */
    int n_levels;
    const double *grid;        /* [n_levels] price multipliers */
    const char *preset;        /* recorded in sim_params.preset */
    uint64_t seed;             /* recorded in sim_params.seed */
    /* Writes product i's columns base_price .. log_comp_follow of sim_params (the order of the
     * COPY column list in db_sim_store.c) into b. */
    int (*param_cols)(db_copybuf *b, int i, void *ctx);
    void *ctx;
} db_sim_side;

/* Create the tables when missing and replace the rows of h's products, in one transaction;
 * every value goes through COPY.  Returns 0 or ENG_EDB (rolled back, message from the server)
 * / ENG_ENOMEM. */
int db_sim_store_side(PGconn *c, const db_history *h, const db_sim_side *s);

/* '{a,b,c}' array literal of doubles into the COPY stream.  Returns 0 or b's status. */
int db_copybuf_array(db_copybuf *b, const double *v, int n);

#endif
