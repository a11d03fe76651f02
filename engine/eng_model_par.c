/* eng_model_par.c - data-parallel training of a SHARED model over MPI ranks (docs/mpi.md):
 * the gradient all-reduce hook (see eng_model.h, eng_model_grads_allreduce). */
#include <stdlib.h>

#include "eng_model.h"
#include "eng_par.h"
#include "eng_util.h"
#include "eng_xsum.h"

int eng_model_grads_allreduce(eng_model *m, double scale) {
    if (!m) return eng_err_set(ENG_EINVAL, "eng_model_grads_allreduce: NULL model");
    if (eng_par_size() == 1 && scale == 1.0) return ENG_OK;
    const size_t n = (size_t)eng_model_P(m) * eng_model_nparams(m);
    float *g = eng_malloc(n * sizeof *g);
    eng_xsum *x = eng_calloc(n, sizeof *x);
    int rc = !g || !x ? ENG_ENOMEM : eng_model_get(m, ENG_VIEW_GRADS, g);
    if (rc) goto cleanup;
    for (size_t i = 0; i < n; i++) eng_xsum_add(&x[i], (double)g[i]); /* float -> double is exact */
    if ((rc = eng_par_allreduce_xsum(x, n))) goto cleanup;
    for (size_t i = 0; i < n; i++) g[i] = (float)(eng_xsum_round(&x[i]) * scale);
    rc = eng_model_set(m, ENG_VIEW_GRADS, g);
cleanup:
    free(g);
    free(x);
    return rc;
}
