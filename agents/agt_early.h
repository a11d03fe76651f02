/* agt_early.h - early stopping for P products trained at once (a model group).
 *
 * The caller computes each product's validation loss every few steps and hands it to
 * agt_early_observe, which says which products improved on their best loss so far (the
 * caller then keeps a copy of their parameters) and stops a product after `patience`
 * consecutive checks without improvement (the caller then freezes it: agt_dqn_freeze /
 * agt_ddpg_freeze).  A product whose loss is not finite (no validation rows, or diverged)
 * neither improves nor runs out of patience: it trains to the step budget.
 */
#ifndef AGT_EARLY_H
#define AGT_EARLY_H

typedef struct agt_early {
    int P, patience;
    double min_rel;          /* an improvement must beat best by this share of |best| */
    double *best;            /* [P] best validation loss (INFINITY before the first) */
    long *best_step;         /* [P] step of the best loss (-1: none) */
    int *since;              /* [P] checks since the last improvement */
    unsigned char *stopped;  /* [P] */
} agt_early;

/* P products, patience >= 1 checks, min_rel >= 0.  *out caller-freed with agt_early_free.
 * ENG_EINVAL, ENG_ENOMEM. */
int agt_early_create(agt_early **out, int P, int patience, double min_rel);
void agt_early_free(agt_early *e); /* NULL is a no-op */

/* One check at `step`: loss [P]; improved [P] (caller's, may be NULL) receives 1 where the
 * loss is a new best.  Products already stopped are ignored.  Returns the number of products
 * still running (not stopped). */
int agt_early_observe(agt_early *e, const float *loss, long step, unsigned char *improved);

#endif
