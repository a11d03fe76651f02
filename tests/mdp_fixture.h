/* tests/mdp_fixture.h - hand-made histories for the feat_/env_ suites. */
#ifndef MDP_FIXTURE_H
#define MDP_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_history.h"
#include "eng_util.h"

/* Set product p's columns from arrays of length n_periods; a NaN price marks an absent row. */
static inline void fx_fill(db_history *h, int p, const char *id, double base, const float *price, const float *units,
                           const float *traffic, const uint8_t *promo) {
    h->product_id[p] = strdup(id);
    h->base_price[p] = base;
    for (int t = 0; t < h->n_periods; t++) {
        size_t c = (size_t)p * h->n_periods + t;
        if (isnan(price[t])) continue;
        h->present[c] = 1;
        h->price[c] = price[t];
        h->units[c] = units[t];
        h->revenue[c] = price[t] * units[t];
        h->traffic[c] = traffic ? traffic[t] : NAN;
        h->promo[c] = promo ? promo[t] : 0;
    }
}

/* Competitor prices: counts[c] prices for cell c taken in order from prices[] (all cells). */
static inline void fx_comp(db_history *h, const int *counts, const float *prices) {
    size_t cells = (size_t)h->n_products * h->n_periods;
    int64_t tot = 0;
    for (size_t c = 0; c < cells; c++) {
        h->comp_off[c] = tot;
        tot += counts[c];
    }
    h->comp_off[cells] = tot;
    h->n_competitors = 1;
    h->competitor_names = calloc(1, sizeof(char *));
    h->competitor_names[0] = strdup("rival");
    h->comp_id = calloc((size_t)(tot ? tot : 1), sizeof(int32_t));
    h->comp_price = calloc((size_t)(tot ? tot : 1), sizeof(float));
    for (int64_t i = 0; i < tot; i++) h->comp_price[i] = prices[i];
}

/* A reproducible random history: P products x T periods, ~10% absent rows, ~20% missing
 * traffic, 0..3 competitor prices per cell. */
static inline db_history *fx_random(int P, int T, uint64_t seed) {
    db_history *h = NULL;
    if (db_history_alloc(&h, P, T, 19000, 1)) return NULL;
    eng_rng r;
    eng_rng_seed(&r, seed);
    size_t cells = (size_t)P * T;
    int *counts = calloc(cells, sizeof(int));
    float *cp = calloc(cells * 3 + 1, sizeof(float));
    int64_t k = 0;
    for (int p = 0; p < P; p++) {
        char id[32];
        snprintf(id, sizeof id, "P%d", p);
        h->product_id[p] = strdup(id);
        h->base_price[p] = 2.0 + p;
        h->unit_cost[p] = 1.0 + 0.5 * p;
        for (int t = 0; t < T; t++) {
            size_t c = (size_t)p * T + t;
            counts[c] = (int)eng_rng_below(&r, 4);
            for (int i = 0; i < counts[c]; i++) cp[k++] = (float)(h->base_price[p] * (0.8 + 0.4 * eng_rng_uniform(&r)));
            if (eng_rng_uniform(&r) < 0.1) continue;
            h->present[c] = 1;
            h->price[c] = (float)(h->base_price[p] * (0.8 + 0.4 * eng_rng_uniform(&r)));
            h->units[c] = (float)eng_rng_below(&r, 30);
            h->revenue[c] = h->price[c] * h->units[c];
            h->traffic[c] = eng_rng_uniform(&r) < 0.2 ? NAN : (float)(100 + eng_rng_below(&r, 100));
            h->promo[c] = eng_rng_uniform(&r) < 0.3;
        }
    }
    fx_comp(h, counts, cp);
    free(counts);
    free(cp);
    return h;
}

#endif
