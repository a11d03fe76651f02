/* env_behaviour_int.h - what env_behaviour.c (the estimators' entry points, counts model,
 * features) and env_behaviour_mnl.c (the multinomial logit's fits) share; not for other layers. */
#ifndef ENV_BEHAVIOUR_INT_H
#define ENV_BEHAVIOUR_INT_H

#include <stdint.h>
#include <stdlib.h>

#include "env_behaviour.h"

#define NX ENV_BEHAV_NX
#define NZ ENV_BEHAV_NZ

struct env_behaviour {
    env_behaviour_kind kind;
    int K, n_products;
    int over_ranks;     /* fitted over every rank's rows (cfg.over_ranks) */
    env_grid grid;
    /* counts */
    double alpha, beta;
    double *pool;       /* [K][K] pooled counts N(j, k) */
    double *pool_row;   /* [K] N(j) */
    int64_t *off;       /* [n_products + 1] into the triples */
    int16_t *tj, *tk;   /* per-product (j, k) pairs, sorted */
    int32_t *tc;        /* counts */
    /* mnl */
    double eps;
    double mu[NX], sd[NX]; /* standardisation of the raw features */
    double *W;             /* [K][NX] pooled slopes (on standardised features) */
    double gam[NZ];        /* pooled stickiness */
    double *u;             /* [n_products][K] product intercept offsets */
    double *dg;            /* [n_products][NZ] product stickiness offsets */
    double *xbar;          /* [n_products][NX] raw feature means of the product's rows */
    double xbar_pool[NX];
    int pool_iters, pool_hess; /* Newton steps, Hessians assembled */
    double pool_nll;
};

/* A row source: raw states or incumbent levels. */
typedef struct {
    const env_grid *g;
    const float *state, *ref;
    const int16_t *j;
} rows_src;

/* Level-specific features of level k when the incumbent is at level j. */
static inline void zfeat(int K, int j, int k, double *z) {
    int d = abs(k - j);
    z[0] = d == 0;
    z[1] = d == 1;
    z[2] = 2.0 * d / (K - 1);
}

/* Raw features x[NX] and incumbent level *jj of row i of r. */
void env_bhv_row_x(const rows_src *r, size_t i, double *x, int *jj);

/* The multinomial logit fitted into b (b->W, u, dg, gam, mu, sd, xbar... allocated here, freed by
 * env_behaviour_free) from n rows of src with chosen levels lev (env_behaviour_mnl.c).  Returns 0,
 * ENG_ENOMEM or ENG_ENUM (a singular system), with a message. */
int env_bhv_mnl_fit(env_behaviour *b, const rows_src *src, const int32_t *product, const int16_t *lev, size_t n,
                    const env_behaviour_cfg *cfg);

/* P(. | product p, raw features xraw[NX], incumbent level j) into probs[K] under the fitted logit. */
void env_bhv_mnl_probs(const env_behaviour *b, int p, const double *xraw, int j, double *probs);

#endif
