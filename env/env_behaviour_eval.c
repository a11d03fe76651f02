/* env_behaviour_eval.c - calibration diagnostic of a behaviour model (see env_behaviour.h; the
 * comparison against the simulator's truth is env_behaviour_sim.c, `rlprice behaviour eval`
 * experiments/cmd/env_behaviour_cmd.c).  Uses no transitions: env_transitions.c calls it. */
#include "env_behaviour.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "feat.h"

/* ---- calibration ------------------------------------------------------------------------------ */
void env_behaviour_calib_free(env_behaviour_calib *c) {
    if (!c) return;
    free(c->expected);
    free(c->observed);
    c->expected = c->observed = NULL;
}

int env_behaviour_calibration(const env_behaviour *b, const int32_t *product, const float *state_raw,
                              const float *ref, const int16_t *k, size_t n, env_behaviour_calib *out) {
    memset(out, 0, sizeof *out);
    if (!b || (n && (!product || !state_raw || !ref || !k)))
        return eng_err_set(ENG_EINVAL, "behaviour calibration: NULL argument");
    const int K = env_behaviour_levels(b);
    int rc = ENG_OK;
    double *probs = eng_malloc((size_t)K * sizeof(double));
    double bin_sum[ENV_BEHAV_CALIB_BINS] = {0}, bin_hit[ENV_BEHAV_CALIB_BINS] = {0};
    out->K = K;
    out->n = (long)n;
    out->expected = eng_calloc((size_t)K, sizeof(double));
    out->observed = eng_calloc((size_t)K, sizeof(double));
    if (!probs || !out->expected || !out->observed) {
        rc = ENG_ENOMEM;
        goto done;
    }
    double ll = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < 0 || k[i] >= K) {
            rc = eng_err_set(ENG_EINVAL, "behaviour calibration: row %zu has level %d (K %d)", i, (int)k[i], K);
            goto done;
        }
        if ((rc = env_behaviour_probs_state(b, product[i], state_raw + i * FEAT_N, ref[i], probs))) goto done;
        for (int l = 0; l < K; l++) {
            out->expected[l] += probs[l];
            int bin = (int)(probs[l] * ENV_BEHAV_CALIB_BINS);
            if (bin >= ENV_BEHAV_CALIB_BINS) bin = ENV_BEHAV_CALIB_BINS - 1;
            if (bin < 0) bin = 0;
            out->bin_count[bin]++;
            bin_sum[bin] += probs[l];
            bin_hit[bin] += (l == k[i]);
        }
        out->observed[k[i]] += 1.0;
        ll += log(probs[k[i]]);
    }
    out->mean_loglik = n ? ll / (double)n : NAN;
    for (int l = 0; l < K; l++) {
        double gap = fabs(out->expected[l] - out->observed[l]);
        if (n && gap / (double)n > out->max_gap) out->max_gap = gap / (double)n;
        if (out->expected[l] > 0) out->chi2 += gap * gap / out->expected[l];
    }
    for (int q = 0; q < ENV_BEHAV_CALIB_BINS; q++) {
        out->bin_pred[q] = out->bin_count[q] ? bin_sum[q] / (double)out->bin_count[q] : NAN;
        out->bin_freq[q] = out->bin_count[q] ? bin_hit[q] / (double)out->bin_count[q] : NAN;
    }
done:
    free(probs);
    if (rc) env_behaviour_calib_free(out);
    return rc;
}

static json_object *num(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

json_object *env_behaviour_calib_json(const env_behaviour_calib *c, const env_grid *g) {
    json_object *root = json_object_new_object(), *levels = json_object_new_array(), *bins = json_object_new_array();
    if (!root || !levels || !bins) goto oom;
    json_object_object_add(root, "n", json_object_new_int64(c->n));
    json_object_object_add(root, "mean_loglik", num(c->mean_loglik));
    json_object_object_add(root, "max_gap", num(c->max_gap));
    json_object_object_add(root, "chi2", num(c->chi2));
    for (int l = 0; l < c->K && c->expected && c->observed; l++) {
        json_object *o = json_object_new_object();
        if (!o || json_object_array_add(levels, o)) {
            json_object_put(o);
            goto oom;
        }
        json_object_object_add(o, "level", json_object_new_int(l));
        if (g) json_object_object_add(o, "ratio", json_object_new_double(env_grid_ratio(g, l)));
        json_object_object_add(o, "expected", json_object_new_double(c->expected[l]));
        json_object_object_add(o, "observed", json_object_new_double(c->observed[l]));
    }
    for (int q = 0; q < ENV_BEHAV_CALIB_BINS; q++) {
        json_object *o = json_object_new_object();
        if (!o || json_object_array_add(bins, o)) {
            json_object_put(o);
            goto oom;
        }
        json_object_object_add(o, "lo", json_object_new_double((double)q / ENV_BEHAV_CALIB_BINS));
        json_object_object_add(o, "hi", json_object_new_double((double)(q + 1) / ENV_BEHAV_CALIB_BINS));
        json_object_object_add(o, "pairs", json_object_new_int64(c->bin_count[q]));
        json_object_object_add(o, "mean_pred", num(c->bin_pred[q]));
        json_object_object_add(o, "freq", num(c->bin_freq[q]));
    }
    json_object_object_add(root, "levels", levels);
    json_object_object_add(root, "bins", bins);
    return root;
oom:
    json_object_put(root);
    json_object_put(levels);
    json_object_put(bins);
    eng_err_set(ENG_ENOMEM, "behaviour calibration: out of memory building JSON");
    return NULL;
}
