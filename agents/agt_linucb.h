/* agt_linucb.h - LinUCB contextual bandits over discrete price levels (Li, Chu, Langford,
 * Schapire 2010, "A Contextual-Bandit Approach to Personalized News Article Recommendation").
 *
 * Arms are the K price levels of a product.  Two variants:
 *   disjoint  one ridge regression per (product, arm): theta_a = A_a^{-1} b_a, score
 *             x^T theta_a + alpha * sqrt(x^T A_a^{-1} x)                      (Algorithm 1)
 *   hybrid    shared coefficients beta on features z_{t,a} (common to all arms of a product,
 *             or to all products of the group with share_across_products) plus per-arm
 *             theta_a on x_{t,a}                                              (Algorithm 2)
 *
 * A group holds P independent products, stored contiguously product by product:
 *   Ainv [P][K][d][d]  b [P][K][d]  theta [P][K][d]  count [P][K]
 *   hybrid adds B [P][K][d][k] and, per shared block, A0 [k][k] (double), A0inv, b0, beta.
 * A^{-1} is kept explicitly and updated by Sherman-Morrison rank-one updates; all matrix-vector
 * work is cblas (OpenBLAS).  The hybrid's k x k block A0 is re-inverted after each update by a
 * LAPACK Cholesky (dpotrf/dpotri).  Ties between arms go to the LOWEST arm index.
 *
 * Contexts: x is [P][d] (one context shared by every arm) or, with x_per_arm, [P][K][d];
 * z (hybrid only) is always per arm, [P][K][k].  Every function returns 0 or a negative ENG_E*
 * status with a message (eng_err_msg()).
 */
#ifndef AGT_LINUCB_H
#define AGT_LINUCB_H

#include <stdint.h>

#include "eng_util.h"

typedef enum { AGT_LINUCB_DISJOINT = 0, AGT_LINUCB_HYBRID = 1 } agt_linucb_kind;

typedef struct agt_linucb_cfg {
    agt_linucb_kind kind;      /* AGT_LINUCB_DISJOINT */
    int n_arms;                /* K, price levels: 21 */
    int d;                     /* per-arm features x: 32 */
    int k;                     /* hybrid shared features z: 8 (ignored by disjoint) */
    float alpha;               /* exploration width: 1.0 */
    float ridge;               /* lambda: A = lambda*I at start: 1.0 */
    int x_per_arm;             /* 0: x is [P][d]; 1: x is [P][K][d] */
    int share_across_products; /* hybrid: one beta for the whole group (1) or one per product (0) */
} agt_linucb_cfg;

/* Defaults as documented above (disjoint, K=21, d=32, k=8, alpha=1, ridge=1). */
agt_linucb_cfg agt_linucb_default(void);

typedef struct agt_linucb agt_linucb; /* opaque */

/* Create a group of P products, every model at its prior (A = ridge*I, b = 0).
 * *out is caller-freed with agt_linucb_free.  EINVAL on bad sizes, ENOMEM. */
int agt_linucb_create(agt_linucb **out, const agt_linucb_cfg *cfg, int P);
void agt_linucb_free(agt_linucb *m); /* NULL is a no-op */

int agt_linucb_P(const agt_linucb *m);
const agt_linucb_cfg *agt_linucb_config(const agt_linucb *m);
void agt_linucb_set_alpha(agt_linucb *m, float alpha);

/* Upper-confidence scores of every arm: scores [P][K] (caller's buffer).  allowed [P][K]
 * (may be NULL = all) marks arms a guardrail permits; a disallowed arm scores -INFINITY. */
int agt_linucb_scores(agt_linucb *m, const float *x, const float *z, const unsigned char *allowed,
                      float *scores);

/* Choose one arm per product: arm [P] receives argmax of the scores (lowest index on ties).
 * scores [P][K] may be NULL.  EINVAL when a product has no allowed arm. */
int agt_linucb_choose(agt_linucb *m, const float *x, const float *z, const unsigned char *allowed,
                      int *arm, float *scores);

/* Observe rewards: for each product p with active[p] != 0 (active may be NULL = all), arm[p]
 * was played in context x (and z) and earned reward[p].  Non-finite rewards or contexts are
 * rejected with ENG_ENUM before anything changes. */
int agt_linucb_update(agt_linucb *m, const float *x, const float *z, const int *arm,
                      const float *reward, const unsigned char *active);

/* Copy product p / arm a's current estimate theta_a (d floats) and, for the hybrid, beta
 * (k floats; may be NULL).  Plays so far of that arm go to *count (may be NULL). */
int agt_linucb_get_arm(const agt_linucb *m, int p, int a, float *theta, float *beta, long *count);
/* Copy product p / arm a's A^{-1} (d*d floats, row-major). */
int agt_linucb_get_ainv(const agt_linucb *m, int p, int a, float *ainv);

/* Save the group to an HDF5 file atomically (temp file, fsync, rename). */
int agt_linucb_save(const agt_linucb *m, const char *path);
/* Load a group saved by agt_linucb_save; *out caller-freed.  Missing, truncated or
 * inconsistent files give ENG_EIO / ENG_EFORMAT with a message naming the file. */
int agt_linucb_load(agt_linucb **out, const char *path);

#endif
