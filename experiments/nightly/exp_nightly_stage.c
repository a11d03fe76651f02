/* exp_nightly_stage.c - rank 0 logs every rank's stage timings (see exp_nightly_stage.h). */
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "eng_stage.h"
#include "eng_util.h"
#include "exp_nightly_stage.h"

#define LINE_MAX_BYTES 2048

void exp_nightly_stage_report(const char *when, int local) {
    char line[LINE_MAX_BYTES];
    memset(line, 0, sizeof line);
    eng_stage_format(line, sizeof line);
    const int K = eng_par_size();
    if (K <= 1 || local) {
        ENG_INFO("nightly: rank %d stages %s (wall/cpu s): %s", eng_par_rank(), when, line);
        return;
    }
    char *all = NULL;
    size_t *counts = eng_calloc((size_t)K, sizeof *counts);
    int st = counts ? eng_par_gatherv(line, sizeof line, 0, &all, counts) : ENG_ENOMEM;
    if (st) {
        ENG_WARN("nightly: stage timings not gathered: %s", eng_err_msg());
        eng_err_clear();
    } else if (eng_par_rank() == 0) {
        for (int r = 0; r < K; r++) {
            char *l = all + (size_t)r * LINE_MAX_BYTES;
            l[LINE_MAX_BYTES - 1] = 0;
            ENG_INFO("nightly: rank %d stages %s (wall/cpu s): %s", r, when, l);
        }
    }
    free(all);
    free(counts);
}
