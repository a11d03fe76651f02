/* db_history.c - see db_history.h. */
#include "db_history.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"

int db_history_alloc(db_history **out, int n_products, int n_periods, int32_t day0, int period_days) {
    *out = NULL;
    if (n_products < 0 || n_periods < 0 || period_days <= 0)
        return eng_err_set(ENG_EINVAL, "db_history_alloc: bad shape %d x %d (period %d days)", n_products,
                           n_periods, period_days);
    db_history *h = eng_calloc(1, sizeof *h);
    if (!h) return ENG_ENOMEM;
    size_t P = (size_t)n_products, cells = (size_t)n_products * (size_t)n_periods;
    h->n_products = n_products;
    h->n_periods = n_periods;
    h->day0 = day0;
    h->period_days = period_days;
    h->product_id = eng_calloc(P, sizeof(char *));
    h->name = eng_calloc(P, sizeof(char *));
    h->base_price = eng_malloc(P * sizeof(double));
    h->unit_cost = eng_malloc(P * sizeof(double));
    h->min_price = eng_malloc(P * sizeof(double));
    h->max_price = eng_malloc(P * sizeof(double));
    h->max_change_pct = eng_malloc(P * sizeof(double));
    h->price_scale = eng_malloc(P);
    h->price = eng_malloc(cells * sizeof(double));
    h->units = eng_malloc(cells * sizeof(float));
    h->revenue = eng_malloc(cells * sizeof(float));
    h->traffic = eng_malloc(cells * sizeof(float));
    h->promo = eng_calloc(cells, 1);
    h->present = eng_calloc(cells, 1);
    h->comp_off = eng_calloc(cells + 1, sizeof(int64_t));
    if (!h->product_id || !h->name || !h->base_price || !h->unit_cost || !h->min_price || !h->max_price ||
        !h->max_change_pct || !h->price_scale || !h->price || !h->units || !h->revenue || !h->traffic || !h->promo ||
        !h->present || !h->comp_off) {
        db_history_free(h);
        return ENG_ENOMEM;
    }
    for (size_t p = 0; p < P; p++)
    {
        h->base_price[p] = h->unit_cost[p] = h->min_price[p] = h->max_price[p] = h->max_change_pct[p] = NAN;
        h->price_scale[p] = -1;
    }
    for (size_t c = 0; c < cells; c++) h->price[c] = h->units[c] = h->revenue[c] = h->traffic[c] = NAN;
    *out = h;
    return ENG_OK;
}

void db_history_free(db_history *h) {
    if (!h) return;
    if (h->product_id)
        for (int p = 0; p < h->n_products; p++) free(h->product_id[p]);
    if (h->name)
        for (int p = 0; p < h->n_products; p++) free(h->name[p]);
    if (h->competitor_names)
        for (int c = 0; c < h->n_competitors; c++) free(h->competitor_names[c]);
    free(h->product_id);
    free(h->name);
    free(h->base_price);
    free(h->unit_cost);
    free(h->min_price);
    free(h->max_price);
    free(h->max_change_pct);
    free(h->price_scale);
    free(h->price);
    free(h->units);
    free(h->revenue);
    free(h->traffic);
    free(h->promo);
    free(h->present);
    free(h->competitor_names);
    free(h->comp_off);
    free(h->comp_id);
    free(h->comp_price);
    free(h->explore_off);
    free(h->logged_cell);
    free(h->logged_prop);
    free(h->logged_off);
    free(h->logged_sprice);
    free(h->logged_sprob);
    free(h);
}

int db_history_find(const db_history *h, const char *product_id) {
    for (int p = 0; p < h->n_products; p++)
        if (h->product_id[p] && strcmp(h->product_id[p], product_id) == 0) return p;
    return -1;
}

size_t db_history_bytes(const db_history *h) {
    size_t cells = (size_t)h->n_products * (size_t)h->n_periods;
    size_t n_comp = h->comp_off ? (size_t)h->comp_off[cells] : 0;
    return cells * (4 * sizeof(float) + 2) + (cells + 1) * sizeof(int64_t) +
           n_comp * (sizeof(int32_t) + sizeof(float)) + (size_t)h->n_products * 5 * sizeof(double);
}

long db_history_logged_find(const db_history *h, int64_t cell) {
    if (!h || !h->n_logged || !h->logged_cell) return -1;
    size_t lo = 0, hi = h->n_logged;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (h->logged_cell[m] < cell) lo = m + 1;
        else hi = m;
    }
    return lo < h->n_logged && h->logged_cell[lo] == cell ? (long)lo : -1;
}

void db_history_copy_product(db_history *dst, int q, const db_history *src, int p) {
    const size_t T = (size_t)src->n_periods, d = (size_t)q * T, o = (size_t)p * T;
    dst->base_price[q] = src->base_price[p];
    dst->unit_cost[q] = src->unit_cost[p];
    dst->min_price[q] = src->min_price[p];
    dst->max_price[q] = src->max_price[p];
    dst->max_change_pct[q] = src->max_change_pct[p];
    dst->price_scale[q] = src->price_scale ? src->price_scale[p] : -1;
    memmove(dst->price + d, src->price + o, T * sizeof *dst->price);
    memmove(dst->units + d, src->units + o, T * sizeof *dst->units);
    memmove(dst->revenue + d, src->revenue + o, T * sizeof *dst->revenue);
    memmove(dst->traffic + d, src->traffic + o, T * sizeof *dst->traffic);
    memmove(dst->promo + d, src->promo + o, T * sizeof *dst->promo);
    memmove(dst->present + d, src->present + o, T * sizeof *dst->present);
}

double db_history_comp_mean(const db_history *h, size_t c) {
    if (!h->comp_off || h->comp_off[c + 1] <= h->comp_off[c]) return NAN;
    double s = 0;
    int k = 0;
    for (int64_t o = h->comp_off[c]; o < h->comp_off[c + 1]; o++)
        if (isfinite(h->comp_price[o]) && h->comp_price[o] > 0) s += h->comp_price[o], k++;
    return k ? s / k : NAN;
}
