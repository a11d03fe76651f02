/* exp_report_int.h - internals shared by exp_report.c (HTML), exp_report_svg.c (charts,
 * escaping, number formatting) and exp_report_json.c.  Not a public interface. */
#ifndef EXP_REPORT_INT_H
#define EXP_REPORT_INT_H

#include <stddef.h>
#include <stdio.h>

#include "exp_results.h"

/* Rows shown in the HTML per-product and flagged-overlap tables before "N more in the JSON". */
#define EXP_REP_MAX_ROWS 1000
/* Products whose price trajectories are drawn. */
#define EXP_REP_MAX_TRAJ 4

/* Products listed one by one in the HTML product table and the JSON "products" array: all of
 * them up to EXP_REP_LIST_ALL; beyond, the EXP_REP_TOP with the highest and the EXP_REP_TOP with
 * the lowest deployment score (exp_rep_score) and EXP_REP_SAMPLE evenly spaced (by product
 * index) among the others.  Every product is in products.csv.gz.  This keeps both files a few
 * MB at 40,000 products. */
#define EXP_REP_LIST_ALL 200
#define EXP_REP_TOP 50
#define EXP_REP_SAMPLE 100

typedef enum { EXP_ROLE_ALL = 0, EXP_ROLE_TOP, EXP_ROLE_BOTTOM, EXP_ROLE_SAMPLE } exp_rep_role;
/* "all", "top", "bottom", "sample".  Static string. */
const char *exp_rep_role_name(int role);
/* A product's deployment score: the highest lower bound of the shrunk uplift over the
 * incumbent among the candidate agents (fixed, LinUCB, DQN, DDPG) that did not fail; NaN
 * when none has one (such products are only sampled). */
double exp_rep_score(const exp_product_result *p);
/* The listed products: *idx receives their indices in product order and *role their roles
 * (both malloc'd, caller frees; NULL when *n is 0).  Returns 0 or ENG_ENOMEM (message set). */
int exp_rep_select(const exp_results *r, int **idx, unsigned char **role, int *n);

/* Display label ("Historical prices", "Best fixed price", "LinUCB", "DQN", "DDPG") and chart
 * colour of an agent.  Static strings.  Machine keys are exp_agent_name / exp_status_name. */
const char *exp_rep_agent_label(int a);
const char *exp_rep_agent_color(int a);

/* How the number shown for one ope_result was chosen. */
typedef enum {
    EXP_SHOW_NONE = 0,     /* no estimator available: nothing shown, "n/a" with the reason */
    EXP_SHOW_NORMAL,       /* the recommended estimator, overlap fine */
    EXP_SHOW_FALLBACK,     /* overlap poor: the model-based estimate (DM or FQE) instead */
    EXP_SHOW_UNRELIABLE    /* overlap poor and no model-based estimate: IS value, flagged */
} exp_show_kind;

typedef struct exp_shown {
    exp_show_kind kind;
    int est;               /* ope_est shown (-1 for NONE) */
    double value, lo, hi;  /* NaN when absent */
} exp_shown;

/* The number the report shows for r (never a silent poor-overlap IS number). */
exp_shown exp_rep_pick(const ope_result *r);
/* Short label of a pick: "" for NORMAL, "DM fallback (poor overlap)", ... Static string. */
const char *exp_rep_pick_label(const exp_shown *s);

/* Display name of the estimator est shown for agent a: "on-policy mean" for the historical
 * policy's one-step IPS (it generated the rows: weights exactly 1), else ope_est_name.  Static. */
const char *exp_rep_est_label(int a, int est, int longterm);

/* Product counts by status. evaluated = OK + DIVERGED. */
typedef struct exp_rep_counts {
    int total, evaluated, ok, skipped, diverged, failed, poor_immediate, poor_longterm;
} exp_rep_counts;
exp_rep_counts exp_rep_count(const exp_results *r);
/* 1 when product p enters the cross-product numbers (status OK or DIVERGED). */
int exp_rep_evaluated(const exp_product_result *p);

/* Uplift of agent a over the historical policy on product p: one-step, the comparison's paired
 * uplift (p->uplift[a]: DR minus history's on-policy mean, same rows) when it has one; else, and
 * long-term, the shown estimate minus history's under the same estimator.  NaN when not
 * evaluated, the agent failed, or no estimate. */
double exp_rep_uplift(const exp_product_result *p, int a, int longterm);

/* Verdict sentences (plain text, no markup) into buf[n]. */
void exp_rep_verdict(const exp_results *r, char *buf, size_t n);

/* Numbers: 4 significant digits without exponent in [1e-4, 1e6), "%.3e" outside, "0" for 0,
 * "n/a" for NaN/inf.  Prices: "%.2f".  Shares: "12.3%". */
void exp_rep_fmt(double v, char *buf, size_t n);
void exp_rep_fmt_price(double v, char *buf, size_t n);
void exp_rep_fmt_pct(double v, char *buf, size_t n);

/* Write s HTML-escaped (& < > " ' and control characters other than tab/newline). */
void exp_rep_esc(FILE *f, const char *s);

/* The run's configuration text ("key = value" lines), line by line, for both writers: fn gets
 * each line copied into a buffer of its own (cut to 1023 bytes; fn may change it), the offset
 * of its first '=' (-1 when it has none), and secret = 1 when the value must not be shown: the
 * key names a password or secret, or the value holds a "password=" conninfo.  Stops at and
 * returns the first non-zero return of fn; 0 otherwise.  text may be NULL (no lines). */
typedef int (*exp_rep_config_fn)(void *ctx, char *line, int eq, int secret);
/* 1 when a configuration key names a secret: a whole segment of it (split at '.', '_', '-')
 * is password, passwd, passfile, passphrase, pwd, secret, sslkey, sslpassword, token, apikey or
 * credentials (any case); "compare.linucb_passes" is not one. */
int exp_rep_secret_key(const char *key);
int exp_rep_config_lines(const char *text, exp_rep_config_fn fn, void *ctx);

/* ---- inline SVG charts (exp_report_svg.c); every string argument is escaped ---- */
/* Horizontal dot-and-interval chart, one row per item; ref (NaN = none) draws a dashed line. */
void exp_rep_svg_intervals(FILE *f, const char *title, int n, const char *const *labels,
                           const char *const *colors, const double *est, const double *lo,
                           const double *hi, double ref, const char *ref_label, const char *x_label);
/* Box + strip plot, one row per group, vals[g][0..counts[g]-1] (finite values only). */
void exp_rep_svg_strips(FILE *f, const char *title, int n, const char *const *labels,
                        const char *const *colors, const double *const *vals, const int *counts,
                        const char *x_label);
/* Line chart of n series over n_points periods; NaN points break a line. */
void exp_rep_svg_lines(FILE *f, const char *title, int n, const char *const *labels,
                       const char *const *colors, const float *const *ys, int n_points,
                       const char *y_label);

#endif
