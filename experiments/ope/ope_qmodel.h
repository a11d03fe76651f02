/* ope_qmodel.h - the pooled one-step reward model q(s, level) over many products' logged
 * transitions, used by DM / DR / Switch-DR of the agent comparison (docs/compare.md, "Reward
 * model"; the method is described at the top of ope_qmodel.c). */
#ifndef OPE_QMODEL_H
#define OPE_QMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "env_action.h"
#include "env_transitions.h"

/* What the model is fitted on; every pointer is borrowed and must outlive the model. */
typedef struct ope_qmodel_data {
    const env_transitions *tr; /* the logged transitions (normalised states) */
    const size_t *off;         /* [n_products + 1]: product p's rows are off[p] .. off[p+1]-1 */
    int n_products, F, K;      /* products, state features, price levels */
    const env_grid *grid;      /* the price grid (level -> ratio) */
    int train_end;             /* rows with t < train_end are training rows */
    int min_history;           /* fewer training rows: the global scale and clip range */
    int folds;                 /* 1 = one fit (holdout); > 1 = cross-fitted over the training rows */
    double ridge_lambda;       /* penalty (at least 1e-6) */
    uint64_t seed;             /* the fold assignment's stream */
    /* Split fits (docs/mpi.md).  Every sum over products is each product's sum in row order,
     * combined across products exactly (eng_xsum), so the fit does not depend on the order or
     * split of the products: */
    const unsigned char *use;  /* NULL: every product; else [n_products] 1 = the product's rows
                                  count here (0: skipped, its scale and clip range global) */
    const uint64_t *key;       /* NULL: the index; else [n_products] each product's key for the
                                  fold assignment (a product's folds then do not depend on where
                                  its rows sit) */
    int over_ranks;            /* 1: collective; the sums are over every rank's rows (each rank
                                  passes its products), every rank gets the same coefficients */
    const uint8_t *promo;      /* [tr->n] 1 when the transition's own (priced) period ran a
                                  promotion, as state: columns promo and promo * dk,
                                  so its lift is not credited to the prices charged with it;
                                  NULL = no promotion data (the columns are 0) */
} ope_qmodel_data;

typedef struct ope_qmodel {
    ope_qmodel_data d; /* copy of the fit's data description */
    int D, folds;     /* design columns; 1 = one fit (holdout), > 1 = cross-fitted (eval_all) */
    double *beta;     /* [folds][D] on standardised columns (column 0 = intercept) */
    double *mean, *sd;/* [D] column standardisation */
    double *icpt;     /* [folds][n_products] shrunk per-product intercepts (scaled units) */
    double *scale;    /* [n_products] reward scale (sd of the product's training rewards) */
    double *lo, *hi;  /* [n_products] clip range of the predictions */
    double kappa;     /* intercept shrinkage: within / between variance */
    double resid_var; /* residual variance on the training rows (scaled units) */
    double global_sd; /* sd of all training rewards */
    long n_train;
} ope_qmodel;

/* Columns of the reward model's design for F features and K levels. */
int ope_qmodel_dim(int F, int K);

/* Fit *m (freed first; zeroed or a fitted model) on every product's training transitions.
 * Returns 0, ENG_EINVAL (no usable training rewards), ENG_ENUM (singular), ENG_ENOMEM; on
 * failure *m is freed (zeroed). */
int ope_qmodel_fit(const ope_qmodel_data *d, ope_qmodel *m);

/* q[k] (k < K) for transition r; z is scratch of ope_qmodel_dim entries. */
void ope_qmodel_predict(const ope_qmodel *m, size_t r, double *z, double *q);

/* Frees the model's arrays and zeroes it; safe on a zeroed model. */
void ope_qmodel_free(ope_qmodel *m);

#endif
