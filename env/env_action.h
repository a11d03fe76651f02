/* env_action.h - actions of the pricing MDP (price grid, continuous ratio) and guardrails.
 *
 * Actions are relative to a REFERENCE price (the product's base price; see
 * env_reference_price):
 *   discrete:   level k in 0..K-1, ratio_k = (1 - band) + 2 band k / (K - 1)
 *               (K = 21, band = 0.25: 0.75, 0.775, ..., 1.00 (k = 10), ..., 1.25);
 *   continuous: a ratio in [1 - band, 1 + band].
 * A historical price maps to the nearest level / the clipped ratio, with a flag when it lay
 * outside the band (the report counts them).
 *
 * Guardrails (env_guard_apply) turn ANY candidate price into a price that may be pushed.
 * The same function serves the agents, OPE and the nightly run.  Order:
 *   1. bounds: lo = max(min_price, incumbent (1 - max_change), cost / (1 - min_margin), 0.01)
 *              hi = min(max_price, incumbent (1 + max_change))
 *      (a bound that is unknown, NaN, is left out);
 *   2. conflict (lo > hi): constraints are dropped from the lowest priority up until the
 *      interval is non-empty: first the max-change limit, then the margin floor; min/max
 *      price are never dropped (min_price > max_price is ENG_EINVAL).  ENV_GR_CONFLICT
 *      is set and the dropped one is named by its ENV_GR_DROPPED_* bit;
 *   3. a non-finite or non-positive candidate is replaced by the incumbent (ENV_GR_INVALID),
 *      or by lo when there is no incumbent;
 *   4. clip to [lo, hi]; every bound the candidate violated sets its bit;
 *   5. rounding to a price ending (cents, e.g. .99 and .49): the nearest price with an
 *      allowed ending INSIDE [lo, hi]; when none exists, the nearest whole cent inside
 *      [lo, hi] (ENV_GR_ROUND_SKIPPED); the result is never outside [lo, hi] (to 1e-8:
 *      bounds are compared in cents with a 1e-6 cent tolerance).
 * So the result satisfies every bound still active after step 2, whatever the candidate.
 */
#ifndef ENV_ACTION_H
#define ENV_ACTION_H

#include <stddef.h>
#include <stdint.h>

#include "db_history.h"

/* ---- price grid ---------------------------------------------------------------- */
#define ENV_GRID_KMAX 1000 /* the most levels a grid may have (env_grid_check) */

typedef struct env_grid {
    int K;       /* levels, >= 2; default 21 */
    double band; /* half-width as a fraction of the reference, in (0, 1); default 0.25 */
} env_grid;

env_grid env_grid_default(void);
/* 0, or ENG_EINVAL for K < 2 / K > ENV_GRID_KMAX / band outside (0, 1). */
int env_grid_check(const env_grid *g);
/* Ratio of level k (k clamped to 0..K-1). */
double env_grid_ratio(const env_grid *g, int k);
/* Nearest level to a ratio (ties to the lower level); *clipped (may be NULL) = 1 when the
 * ratio lay outside [1 - band, 1 + band] by more than half a step.  NaN maps to the middle
 * level with *clipped = 1. */
int env_grid_level(const env_grid *g, double ratio, int *clipped);
/* Continuous action: ratio clipped to [1 - band, 1 + band]; *clipped as above (any excess). */
double env_ratio_clip(const env_grid *g, double ratio, int *clipped);
/* Map a price to (level, ratio) relative to ref > 0.  level/ratio/clipped may be NULL.
 * Returns 0, or ENG_EINVAL for a non-finite/non-positive price or ref. */
int env_grid_map_price(const env_grid *g, double price, double ref, int *level, double *ratio, int *clipped);

/* Reference price of product p: base_price when finite and > 0, else the median observed
 * price of the product (*from_median = 1).  ENG_EINVAL when neither exists. */
int env_reference_price(const db_history *h, int p, double *ref, int *from_median);

/* ---- guardrails ------------------------------------------------------------------ */
enum {
    ENV_GR_MIN_PRICE = 1u << 0,      /* candidate below min_price */
    ENV_GR_MAX_PRICE = 1u << 1,      /* candidate above max_price */
    ENV_GR_MAX_UP = 1u << 2,         /* rise above max_change of the incumbent */
    ENV_GR_MAX_DOWN = 1u << 3,       /* cut below max_change of the incumbent */
    ENV_GR_MARGIN = 1u << 4,         /* below the margin floor cost / (1 - min_margin) */
    ENV_GR_ROUNDED = 1u << 5,        /* moved to an allowed price ending (or a whole cent) */
    ENV_GR_ROUND_SKIPPED = 1u << 6,  /* no allowed ending inside the bounds (min/max price,
                                        change limit, margin floor, price band): whole cent */
    ENV_GR_INVALID = 1u << 7,        /* candidate NaN/inf/<= 0: replaced (see step 3) */
    ENV_GR_CONFLICT = 1u << 8,       /* the bounds contradicted each other */
    ENV_GR_DROPPED_CHANGE = 1u << 9, /* .. and the max-change limit was dropped */
    ENV_GR_DROPPED_MARGIN = 1u << 10,/* .. and the margin floor was dropped */
    ENV_GR_MIN_TICK = 1u << 11,      /* candidate below the 0.01 absolute floor */
    ENV_GR_NBITS = 12
};

#define ENV_GUARD_MAX_ENDINGS 8

typedef struct env_guard_cfg {
    double min_margin;               /* (price - cost) / price >= this; in [0, 1); default 0 */
    double default_max_change_pct;   /* used when the product has none; NaN = no limit; 25 by default */
    int n_endings;                   /* 0 = round to whole cents only */
    int endings_cents[ENV_GUARD_MAX_ENDINGS]; /* e.g. {99, 49}: prices n.99 or n.49 */
} env_guard_cfg;

/* min_margin 0, no default change limit, endings {99, 49}. */
env_guard_cfg env_guard_default(void);
/* 0 or ENG_EINVAL (margin outside [0,1), endings outside 0..99, too many endings). */
int env_guard_cfg_check(const env_guard_cfg *cfg);

/* Per-product bounds; NaN = unknown (bound not applied). */
typedef struct env_guard_bounds {
    double min_price, max_price;
    double max_change_pct; /* percent of the incumbent, e.g. 10 = +-10% */
    double unit_cost;
    double incumbent;      /* price in force now */
    double band_lo, band_hi; /* the agents' price band, ref * (1 -+ band); applied only when
                                0 < band_lo < band_hi (zero or NaN = none): a price inside the
                                band is never rounded out of it */
} env_guard_bounds;

/* Bounds of product p from the history, with the given incumbent price (NaN = none); no band. */
env_guard_bounds env_guard_bounds_of(const db_history *h, int p, double incumbent);
/* The same with the agents' price band of grid g around p's reference price (no band when p has
 * no reference price). */
env_guard_bounds env_guard_bounds_band(const db_history *h, int p, double incumbent, const env_grid *g);

/* Apply the guardrails to `candidate`.  *out = the guarded price; *reasons (may be NULL)
 * = ENV_GR_* bits; lo_out/hi_out (may be NULL) = the final interval.  Returns 0, or
 * ENG_EINVAL when min_price > max_price or the config is bad (*out untouched). */
int env_guard_apply(const env_guard_cfg *cfg, const env_guard_bounds *b, double candidate, double *out,
                    uint32_t *reasons, double *lo_out, double *hi_out);

/* Name of one reason bit ("min_price", "max_price", "max_up", "max_down", "margin",
 * "rounded", "round_skipped", "invalid", "conflict", "dropped_change", "dropped_margin",
 * "min_tick"), NULL for an unknown bit. */
const char *env_guard_reason_name(uint32_t bit);
/* "min_price|rounded" ("" when no bit) into buf[n] (NUL-terminated, truncated if short). */
void env_guard_reason_str(uint32_t reasons, char *buf, size_t n);

#endif
