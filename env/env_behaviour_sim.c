/* env_behaviour_sim.c - behaviour models against the simulator's true logging propensities
 * (env_behaviour_sim_compare, see env_behaviour.h): above env_transitions.c, which it uses. */
#include "env_behaviour.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "env_sim.h"
#include "env_transitions.h"
#include "feat.h"

/* ---- comparison with the simulator's truth --------------------------------------------------------- */
#define SIM_DAY0 19723 /* 2024-01-01 */

/* True distribution of transition i on the MDP grid: the simulator's level probabilities summed
 * over the grid level each simulator price maps to. */
static int true_row(const env_transitions *tr, const db_history *h, const env_sim_log *lg, const env_grid *g, size_t i,
                    double *row) {
    const int K = g->K, L = lg->grid.n, p = tr->product[i];
    const double *sp = lg->probs + ((size_t)p * lg->n_periods + (size_t)tr->t[i]) * (size_t)L;
    for (int k = 0; k < K; k++) row[k] = 0.0;
    for (int m = 0; m < L; m++) {
        int lvl = 0;
        float price = (float)(h->base_price[p] * lg->grid.mult[m]); /* as the history stores it */
        int rc = env_grid_map_price(g, price, tr->ref_price[i], &lvl, NULL, NULL);
        if (rc) return rc;
        row[lvl] += sp[m];
    }
    return ENG_OK;
}

int env_behaviour_sim_compare(int n_products, int n_days, uint64_t seed, int split, const env_behaviour_cfg *cfgs,
                              int n_cfg, env_behaviour_eval *out, double *true_loglik) {
    if (n_products < 1 || n_days < 3 || split < 1 || split >= n_days || n_cfg < 0 || (n_cfg && !cfgs) || !out)
        return eng_err_set(ENG_EINVAL, "behaviour eval: need products >= 1, days >= 3, 1 <= split < days (got %d, %d, %d)",
                           n_products, n_days, split);
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    env_transitions *tr = NULL;
    env_behaviour *b = NULL;
    int32_t *prod = NULL;
    float *st = NULL, *ref = NULL;
    int16_t *lev = NULL;
    double *probs = NULL, *trow = NULL;
    int rc;
    if ((rc = env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, n_products, n_days, 1, SIM_DAY0, seed, &h, &lg)))
        goto done;
    env_transitions_cfg tc = env_transitions_default();
    tc.behaviour.kind = ENV_BEHAV_COUNTS; /* the build's own fit is not used here */
    if ((rc = env_transitions_build(h, &tc, &tr))) goto done;
    const int K = tc.grid.K;
    size_t n_train = 0, n_test = 0;
    for (size_t i = 0; i < tr->n; i++) {
        if (tr->t[i] < split) n_train++;
        else n_test++;
    }
    if (!n_train || !n_test) {
        rc = eng_err_set(ENG_EINVAL, "behaviour eval: split %d leaves %zu training and %zu test transitions", split,
                         n_train, n_test);
        goto done;
    }
    prod = eng_malloc(n_train * sizeof(int32_t));
    st = eng_malloc(n_train * FEAT_N * sizeof(float));
    ref = eng_malloc(n_train * sizeof(float));
    lev = eng_malloc(n_train * sizeof(int16_t));
    probs = eng_malloc((size_t)K * sizeof(double));
    trow = eng_malloc((size_t)K * sizeof(double));
    if (!prod || !st || !ref || !lev || !probs || !trow) {
        rc = ENG_ENOMEM;
        goto done;
    }
    for (size_t i = 0, w = 0; i < tr->n; i++) {
        if (tr->t[i] >= split) continue;
        prod[w] = tr->product[i];
        memcpy(st + w * FEAT_N, tr->state + i * FEAT_N, FEAT_N * sizeof(float));
        ref[w] = tr->ref_price[i];
        lev[w] = tr->level[i];
        w++;
    }
    double tll = 0.0;
    for (int c = -1; c < n_cfg; c++) {
        if (c >= 0 &&
            (rc = env_behaviour_fit_states(&b, &tc.grid, h->n_products, prod, st, ref, lev, n_train, &cfgs[c])))
            goto done;
        env_behaviour_eval *e = &out[c + 1];
        memset(e, 0, sizeof *e);
        e->n_train = (long)n_train;
        e->n_test = (long)n_test;
        for (size_t i = 0; i < tr->n; i++) {
            if (tr->t[i] < split) continue;
            if ((rc = true_row(tr, h, lg, &tc.grid, i, trow))) goto done;
            if (c < 0) {
                for (int k = 0; k < K; k++) probs[k] = 1.0 / K;
                tll += log(trow[tr->level[i]]);
            } else if ((rc = env_behaviour_probs_state(b, tr->product[i], tr->state + i * FEAT_N, tr->ref_price[i],
                                                       probs))) {
                goto done;
            }
            int l = tr->level[i];
            e->mae += fabs(probs[l] - trow[l]);
            e->loglik += log(probs[l]);
            double tv = 0.0;
            for (int k = 0; k < K; k++) tv += fabs(probs[k] - trow[k]);
            e->tv += 0.5 * tv;
        }
        e->mae /= (double)n_test;
        e->loglik /= (double)n_test;
        e->tv /= (double)n_test;
        env_behaviour_free(b);
        b = NULL;
    }
    if (true_loglik) *true_loglik = tll / (double)n_test;
done:
    env_behaviour_free(b);
    env_transitions_free(tr);
    db_history_free(h);
    env_sim_log_free(lg);
    free(prod);
    free(st);
    free(ref);
    free(lev);
    free(probs);
    free(trow);
    return rc;
}
