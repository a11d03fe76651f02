/* eng_model_par.c - data-parallel training of a SHARED model over MPI ranks (docs/mpi.md):
 * the gradient all-reduce hook (see eng_model.h, eng_model_grads_allreduce). */
#include <stdlib.h>
#include <string.h>

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

int eng_model_grads_tie(eng_model *m, const unsigned char *mask, unsigned char *step_mask) {
    if (!m || !mask || !step_mask) return eng_err_set(ENG_EINVAL, "eng_model_grads_tie: NULL argument");
    const int P = eng_model_P(m), R = eng_par_size();
    const size_t np = eng_model_nparams(m), rec = sizeof(float) * np + 1; /* [mask byte][grads] per slot */
    char *mine = eng_malloc((size_t)P * rec), *all = NULL;
    float *g = eng_malloc((size_t)P * np * sizeof *g);
    double *sum = eng_calloc(np, sizeof *sum);
    size_t *counts = eng_calloc((size_t)R, sizeof *counts);
    int rc = !mine || !g || !sum || !counts ? ENG_ENOMEM : eng_model_get(m, ENG_VIEW_GRADS, g);
    if (rc) goto cleanup;
    for (int p = 0; p < P; p++) {
        mine[(size_t)p * rec] = (char)(mask[p] != 0);
        memcpy(mine + (size_t)p * rec + 1, g + (size_t)p * np, np * sizeof *g);
    }
    if ((rc = eng_par_allgatherv(mine, (size_t)P * rec, &all, counts))) goto cleanup;
    size_t total = 0;
    for (int r = 0; r < R; r++) total += counts[r];
    long active = 0;
    for (size_t o = 0; o + rec <= total; o += rec) { /* rank order, then slot order */
        if (!all[o]) continue;
        float v;
        for (size_t i = 0; i < np; i++) {
            memcpy(&v, all + o + 1 + i * sizeof v, sizeof v);
            sum[i] += (double)v;
        }
        active++;
    }
    for (size_t i = 0; i < np; i++) g[i] = active ? (float)(sum[i] / (double)active) : 0.0f;
    for (int p = 1; p < P; p++) memcpy(g + (size_t)p * np, g, np * sizeof *g);
    for (int p = 0; p < P; p++) step_mask[p] = active > 0;
    rc = eng_model_set(m, ENG_VIEW_GRADS, g);
cleanup:
    free(mine);
    free(all);
    free(g);
    free(sum);
    free(counts);
    return rc;
}
