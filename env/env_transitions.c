/* env_transitions.c - logged transitions and their behaviour propensities (see env_transitions.h;
 * the behaviour models are in env_behaviour.c). */
#include "env_transitions.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"

/* ---- transitions ------------------------------------------------------------------------ */
env_transitions_cfg env_transitions_default(void) {
    env_transitions_cfg c;
    memset(&c, 0, sizeof c);
    c.grid = env_grid_default();
    c.reward = env_reward_default();
    c.behaviour = env_behaviour_default();
    c.t_begin = 0;
    c.t_end = -1;
    c.norm = NULL;
    return c;
}

void env_transitions_free(env_transitions *tr) {
    if (!tr) return;
    free(tr->product);
    free(tr->t);
    free(tr->state);
    free(tr->next_state);
    free(tr->level);
    free(tr->ratio);
    free(tr->price);
    free(tr->ref_price);
    free(tr->inc_level);
    free(tr->reward);
    free(tr->done);
    free(tr->clipped);
    free(tr->propensity);
    free(tr->behav_probs);
    free(tr->logged);
    env_behaviour_free(tr->behaviour);
    env_behaviour_calib_free(&tr->calibration);
    free(tr);
}

/* Transition i's behaviour distribution from what rlprice logged for its period, when it did
 * (db_history's logged cells): each support price's probability added to the grid level it maps
 * to (a deterministic push: all on the logged level), into acc[K] (double).  Returns 1 when used,
 * 0 when the period is not logged or its distribution does not give the logged level a positive
 * probability (then the estimate stays). */
static int logged_probs(const db_history *h, const env_grid *g, const env_transitions *tr, size_t i, double ref,
                        double *acc) {
    long li = db_history_logged_find(h, (int64_t)tr->product[i] * h->n_periods + tr->t[i]);
    if (li < 0) return 0;
    for (int k = 0; k < g->K; k++) acc[k] = 0;
    const int32_t a = h->logged_off[li], b = h->logged_off[li + 1];
    if (a == b) acc[tr->level[i]] = 1.0;
    for (int32_t j = a; j < b; j++) {
        int lvl = 0;
        if (env_grid_map_price(g, h->logged_sprice[j], ref, &lvl, NULL, NULL)) {
            eng_err_clear();
            return 0;
        }
        acc[lvl] += h->logged_sprob[j];
    }
    return acc[tr->level[i]] > 0;
}

static int usable(const db_history *h, const float *rew, size_t c) {
    return h->present[c] && isfinite(h->price[c]) && h->price[c] > 0.0f && isfinite(rew[c]);
}

int env_transitions_build(const db_history *h, const env_transitions_cfg *cfg, env_transitions **out) {
    *out = NULL;
    if (!h || !cfg) return eng_err_set(ENG_EINVAL, "env_transitions_build: NULL argument");
    int rc;
    if ((rc = env_grid_check(&cfg->grid)) || (rc = env_reward_cfg_check(&cfg->reward))) return rc;
    if ((rc = env_behaviour_cfg_check(&cfg->behaviour))) return rc;
    const int P = h->n_products, T = h->n_periods, K = cfg->grid.K;
    const int t0 = cfg->t_begin, t1 = cfg->t_end < 0 ? T : cfg->t_end;
    if (t0 < 0 || t1 < t0 || t1 > T)
        return eng_err_set(ENG_EINVAL, "transitions: bad period range [%d, %d) for %d periods", t0, t1, T);
    if (cfg->norm && (rc = feat_layout_check(cfg->norm->n, cfg->norm->layout_hash, "transitions normalisation")))
        return rc;
    size_t cells = (size_t)P * (size_t)T;
    int in_fit = 0;
    float *rew = eng_malloc((cells ? cells : 1) * sizeof(float));
    double *refs = eng_malloc((P ? (size_t)P : 1) * sizeof(double));
    double *probs = eng_malloc((size_t)K * sizeof(double));
    env_transitions *tr = eng_calloc(1, sizeof *tr);
    if (!rew || !refs || !probs || !tr) {
        rc = ENG_ENOMEM;
        goto fail;
    }
    tr->n_features = FEAT_N;
    tr->K = K;
    size_t n = 0;
    for (int p = 0; p < P; p++) {
        env_reward_info info;
        if (cfg->use && !cfg->use[p]) { /* another rank's product: no rows here */
            refs[p] = NAN;
            continue;
        }
        if ((rc = env_reward_series(h, p, &cfg->reward, rew + (size_t)p * T, &info))) goto fail;
        env_reward_info_add(&tr->reward_info, &info);
        if (env_reference_price(h, p, &refs[p], NULL) != ENG_OK) {
            eng_err_clear();
            refs[p] = NAN;
            tr->n_skipped_no_ref++;
            continue;
        }
        for (int t = t0; t < t1; t++) n += usable(h, rew, (size_t)p * T + t);
    }
    tr->n = n;
    size_t nn = n ? n : 1;
    tr->product = eng_malloc(nn * sizeof(int32_t));
    tr->t = eng_malloc(nn * sizeof(int32_t));
    tr->state = eng_malloc(nn * FEAT_N * sizeof(float));
    tr->next_state = eng_malloc(nn * FEAT_N * sizeof(float));
    tr->level = eng_malloc(nn * sizeof(int16_t));
    tr->ratio = eng_malloc(nn * sizeof(float));
    tr->price = eng_malloc(nn * sizeof(float));
    tr->ref_price = eng_malloc(nn * sizeof(float));
    tr->inc_level = eng_malloc(nn * sizeof(int16_t));
    tr->reward = eng_malloc(nn * sizeof(float));
    tr->done = eng_malloc(nn);
    tr->clipped = eng_malloc(nn);
    tr->propensity = eng_malloc(nn * sizeof(float));
    tr->behav_probs = eng_malloc(nn * (size_t)cfg->grid.K * sizeof(float));
    tr->logged = eng_calloc(nn, 1);
    if (!tr->logged || !tr->product || !tr->t || !tr->state || !tr->next_state || !tr->level || !tr->ratio || !tr->price ||
        !tr->ref_price || !tr->inc_level || !tr->reward || !tr->done || !tr->clipped || !tr->propensity ||
        !tr->behav_probs) {
        rc = ENG_ENOMEM;
        goto fail;
    }
    size_t i = 0;
    for (int p = 0; p < P; p++) {
        if (!isfinite(refs[p])) continue;
        const size_t base = (size_t)p * T;
        for (int t = t0; t < t1; t++) {
            if (!usable(h, rew, base + t)) continue;
            float *s = tr->state + i * FEAT_N, *s2 = tr->next_state + i * FEAT_N;
            if ((rc = feat_state(h, p, t, s)) || (rc = feat_state(h, p, t + 1, s2))) goto fail;
            int lvl = 0, clip = 0;
            double ratio = 1.0;
            if ((rc = env_grid_map_price(&cfg->grid, h->price[base + t], refs[p], &lvl, &ratio, &clip))) goto fail;
            tr->product[i] = p;
            tr->t[i] = t;
            tr->level[i] = (int16_t)lvl;
            tr->ratio[i] = (float)ratio;
            tr->price[i] = h->price[base + t];
            tr->ref_price[i] = (float)refs[p];
            tr->inc_level[i] = (int16_t)env_state_level(&cfg->grid, s, refs[p]);
            tr->reward[i] = rew[base + t];
            tr->done[i] = !(t + 1 < t1 && usable(h, rew, base + t + 1));
            tr->clipped[i] = (uint8_t)clip;
            tr->n_clipped += clip;
            i++;
        }
    }
    /* the behaviour model reads the raw states, so it is fitted before normalisation */
    in_fit = 1; /* (collective with behaviour.over_ranks: from here every rank is in it) */
    if ((rc = env_behaviour_fit_states(&tr->behaviour, &cfg->grid, P, tr->product, tr->state, tr->ref_price,
                                       tr->level, n, &cfg->behaviour)))
        goto fail;
    for (i = 0; i < n; i++) {
        if ((rc = env_behaviour_probs_state(tr->behaviour, tr->product[i], tr->state + i * FEAT_N, tr->ref_price[i],
                                            probs)))
            goto fail;
        if (h->n_logged && logged_probs(h, &cfg->grid, tr, i, refs[tr->product[i]], probs)) { /* exact */
            tr->logged[i] = 1;
            tr->n_logged++;
        }
        tr->propensity[i] = (float)probs[tr->level[i]];
        for (int k = 0; k < cfg->grid.K; k++) tr->behav_probs[i * (size_t)cfg->grid.K + k] = (float)probs[k];
    }
    if ((rc = env_behaviour_calibration(tr->behaviour, tr->product, tr->state, tr->ref_price, tr->level, n,
                                        &tr->calibration)))
        goto fail;
    if (cfg->norm && ((rc = feat_norm_apply(cfg->norm, tr->state, n)) || (rc = feat_norm_apply(cfg->norm, tr->next_state, n))))
        goto fail;
    free(rew);
    free(refs);
    free(probs);
    *out = tr;
    return ENG_OK;
fail:
    if (cfg->behaviour.over_ranks && !in_fit) (void)eng_par_agree(rc); /* the others wait in the fit */
    free(rew);
    free(refs);
    free(probs);
    env_transitions_free(tr);
    return rc;
}
