/* feat.h - state features for the pricing MDP, and their normalisation.
 *
 * The state of product p for period t is a fixed vector of FEAT_N floats built from a
 * db_history using ONLY information available before the price of period t is set:
 *   - sales, revenue, traffic, competitor and promo windows end at period t-1;
 *   - the "current price" is the incumbent price p_{t-1} (last observed price before t);
 *   - the calendar encodes the date of period t itself (known in advance).
 * t may equal n_periods: the state of the next, not yet priced period (the nightly run).
 *
 * Windows are counted in PERIODS: on daily data "units_7" is the last 7 days, on weekly
 * data (Dominick's) it is the last 7 weeks.  Moving averages: 3 and 12 periods.
 *
 * Missing values never produce NaN: each is imputed by a documented rule and flagged by a
 * 0/1 (or fraction) indicator feature; see README "Pricing MDP" and feat.c.
 *
 * Layout: the order and meaning of the features is fixed (enum below).  FEAT_LAYOUT_VERSION
 * names it and feat_layout_hash() fingerprints names + order, so a saved model or saved
 * normalisation can refuse a state vector of a different layout.
 */
#ifndef FEAT_H
#define FEAT_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "db_history.h"

#define FEAT_LAYOUT_VERSION "feat-v1"

enum feat_index {
    /* price group */
    FEAT_PRICE_CUR = 0,     /* incumbent price p_{t-1} (imputed, see README) */
    FEAT_PRICE_RATIO_BASE,  /* incumbent / base price */
    FEAT_PRICE_MA3,         /* mean observed price over t-3..t-1 */
    FEAT_PRICE_MA12,        /* mean observed price over t-12..t-1 */
    FEAT_DISCOUNT_DEPTH,    /* max(0, 1 - incumbent / base) */
    FEAT_PRICE_MISSING,     /* 1 when p_{t-1} was not observed (imputed) */
    /* sales group */
    FEAT_UNITS_1,           /* units sold over t-1 .. */
    FEAT_UNITS_3,           /* .. t-3..t-1 */
    FEAT_UNITS_7,           /* .. t-7..t-1 */
    FEAT_REVENUE_1,
    FEAT_REVENUE_3,
    FEAT_REVENUE_7,
    FEAT_SALES_MISSING_FRAC,/* fraction of the 7-period window without a sales row */
    /* customer traffic group */
    FEAT_TRAFFIC_1,
    FEAT_TRAFFIC_3,
    FEAT_TRAFFIC_7,
    FEAT_CONV_1,            /* units / traffic over the window */
    FEAT_CONV_7,
    FEAT_TRAFFIC_MISSING_FRAC, /* fraction of the 7-period window without known traffic */
    FEAT_CONV_MISSING,      /* 1 when the 7-period conversion rate is undefined (imputed 0) */
    /* competitiveness group */
    FEAT_COMP_REL_MIN,      /* incumbent / min competitor price */
    FEAT_COMP_REL_MEAN,     /* incumbent / mean competitor price */
    FEAT_COMP_RANK,         /* fraction of competitors cheaper (ties count half) */
    FEAT_COMP_MISSING,      /* 1 when no competitor price in t-7..t-1 (ratios 1, rank 0.5) */
    FEAT_PROMO_PREV,        /* promo flag of t-1 (0 when unknown) */
    /* calendar of period t */
    FEAT_DOW_SIN,
    FEAT_DOW_COS,
    FEAT_WOY_SIN,
    FEAT_WOY_COS,
    FEAT_N
};

/* Kind of each feature; only FEAT_KIND_CONT features are standardised. */
typedef enum { FEAT_KIND_CONT = 0, FEAT_KIND_FLAG = 1, FEAT_KIND_CYCLIC = 2 } feat_kind;

typedef struct feat_layout {
    int n;                     /* FEAT_N */
    const char *const *names;  /* [n] static strings, e.g. "price_cur" */
    const feat_kind *kinds;    /* [n] */
    const char *version;       /* FEAT_LAYOUT_VERSION */
    uint64_t hash;             /* FNV-1a over version, names and kinds */
} feat_layout;

/* The fixed layout (static storage; never freed). */
const feat_layout *feat_layout_get(void);
/* Index of a feature name, or -1. */
int feat_index_of(const char *name);
/* 0 when (n, hash) match this build's layout, else ENG_EFORMAT with a message naming
 * `what` (e.g. the checkpoint path) and both layouts. */
int feat_layout_check(int n, uint64_t hash, const char *what);

/* State of product p at period t (0 <= t <= n_periods) into out[FEAT_N] (caller's buffer).
 * Every value is finite.  Returns 0, or ENG_EINVAL for a bad p/t. */
int feat_state(const db_history *h, int p, int t, float *out);

/* The incumbent price before period t, exactly as the history holds it (a double, never a float):
 * the last clean observed price in periods 0..t-1, else the base price, else 0.  *missing (may be
 * NULL) = 1 when period t-1 has no clean price.  Out-of-range p/t give NaN. */
double feat_incumbent_price(const db_history *h, int p, int t, int *missing);

/* States of product p for periods t0..t1-1 into out[(t1-t0) * FEAT_N] (caller's buffer);
 * 0 <= t0 <= t1 <= n_periods + 1.  Returns 0 or ENG_EINVAL. */
int feat_states(const db_history *h, int p, int t0, int t1, float *out);

/* ---- normalisation ---------------------------------------------------------------
 * x' = clamp((x - mean) / std, -FEAT_NORM_CLIP, FEAT_NORM_CLIP) for continuous features;
 * flags and calendar features pass through (mean 0, std 1).  A std below 1e-6 (a constant
 * feature in the training window) is stored as 1. */
#define FEAT_NORM_CLIP 10.0f
#define FEAT_NORM_FLAT_LEN (2 + 2 * FEAT_N) /* see feat_norm_to_array */

typedef struct feat_norm {
    int n;                 /* FEAT_N */
    uint64_t layout_hash;  /* feat_layout_get()->hash when fitted */
    int t_begin, t_end;    /* training periods the statistics came from */
    long n_rows;           /* states used */
    float mean[FEAT_N];
    float std[FEAT_N];
} feat_norm;

/* Fit on the states of periods t in [t_begin, t_end) of the listed products (products =
 * NULL: all).  State t uses data up to t-1 only, so nothing at or after t_end is read.
 * Requires 0 <= t_begin < t_end <= n_periods.  Returns 0 or ENG_EINVAL. */
int feat_norm_fit(feat_norm *nm, const db_history *h, const int *products, int n_products, int t_begin,
                  int t_end);
/* feat_norm_fit, exact: each product's sums in period order, combined across products exactly
 * (eng_xsum; two passes, the mean then the squared deviations), so the statistics are the same
 * for any order or split of the products.  over_ranks = 1 (an MPI run whose ranks each hold a
 * share of the products, docs/mpi.md): collective, the sums are over every rank's products
 * (a rank may pass none) and every rank gets the same statistics.  feat_norm_fit = over_ranks
 * 0.  Returns 0, ENG_EINVAL, or (over_ranks) the failure of any rank / the exchange. */
int feat_norm_fit_ex(feat_norm *nm, const db_history *h, const int *products, int n_products, int t_begin, int t_end,
                     int over_ranks);
/* Normalise n_rows state vectors [n_rows][FEAT_N] in place.  ENG_EFORMAT on a layout
 * mismatch (norm fitted by another layout). */
int feat_norm_apply(const feat_norm *nm, float *x, size_t n_rows);

/* Flat float form: [0] = FEAT_N, [1] = low 24 bits of the layout hash (exact in a float),
 * [2..2+FEAT_N) means, then stds.  buf holds FEAT_NORM_FLAT_LEN floats.  from_array checks
 * n and hash (ENG_EFORMAT on mismatch); t_begin/t_end/n_rows come back as -1. */
void feat_norm_to_array(const feat_norm *nm, float *buf);
int feat_norm_from_array(feat_norm *nm, const float *buf, size_t len);

/* Save as group `name` under an open HDF5 file or group `loc`: datasets "mean", "std"
 * (float[FEAT_N]) and "names" (strings), attributes layout_version, layout_hash, t_begin,
 * t_end, n_rows.  Fails (ENG_EIO) if `name` exists.  The caller owns loc. */
int feat_norm_save_h5(const feat_norm *nm, hid_t loc, const char *name);
/* Load what feat_norm_save_h5 wrote; ENG_EFORMAT when the layout differs, ENG_ENOTFOUND
 * when `name` is absent, ENG_EIO on HDF5 errors. */
int feat_norm_load_h5(feat_norm *nm, hid_t loc, const char *name);

#endif
