/* agt_early.c - see agt_early.h. */
#include "agt_early.h"

#include <math.h>
#include <stdlib.h>

#include "eng_util.h"

int agt_early_create(agt_early **out, int P, int patience, double min_rel) {
    if (!out) return eng_err_set(ENG_EINVAL, "early_create: NULL argument");
    *out = NULL;
    if (P < 1 || patience < 1 || !(min_rel >= 0))
        return eng_err_set(ENG_EINVAL, "early_create: need P >= 1, patience >= 1, min_rel >= 0");
    agt_early *e = eng_calloc(1, sizeof *e);
    if (!e) return ENG_ENOMEM;
    e->P = P, e->patience = patience, e->min_rel = min_rel;
    e->best = eng_calloc((size_t)P, sizeof *e->best);
    e->best_step = eng_calloc((size_t)P, sizeof *e->best_step);
    e->since = eng_calloc((size_t)P, sizeof *e->since);
    e->stopped = eng_calloc((size_t)P, 1);
    if (!e->best || !e->best_step || !e->since || !e->stopped) {
        agt_early_free(e);
        return ENG_ENOMEM;
    }
    for (int p = 0; p < P; p++) e->best[p] = INFINITY, e->best_step[p] = -1;
    *out = e;
    return ENG_OK;
}

void agt_early_free(agt_early *e) {
    if (!e) return;
    free(e->best);
    free(e->best_step);
    free(e->since);
    free(e->stopped);
    free(e);
}

int agt_early_observe(agt_early *e, const float *loss, long step, unsigned char *improved) {
    int running = 0;
    for (int p = 0; p < e->P; p++) {
        if (improved) improved[p] = 0;
        if (e->stopped[p]) continue;
        const double l = loss[p];
        if (isfinite(l)) {
            if (!isfinite(e->best[p]) || l < e->best[p] - e->min_rel * fabs(e->best[p])) {
                e->best[p] = l;
                e->best_step[p] = step;
                e->since[p] = 0;
                if (improved) improved[p] = 1;
            } else if (++e->since[p] >= e->patience) {
                e->stopped[p] = 1;
            }
        }
        running += !e->stopped[p];
    }
    return running;
}
