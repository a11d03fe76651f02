/* env_behaviour_eval.c - calibration diagnostic of a behaviour model, its comparison against the
 * simulator's true logging propensities, and `rlprice behaviour eval` (see env_behaviour.h). */
#include "env_behaviour.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "env_sim.h"
#include "env_transitions.h"
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

/* ---- command ---------------------------------------------------------------------------------------- */
static int parse_long(const char *s, long lo, long hi, long *v) {
    char *end;
    long x = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

static int parse_dbl(const char *s, double *v) {
    char *end;
    double x = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

int env_behaviour_cmd_eval(int argc, char **argv) {
    long products = 200, days = 60, seed = 1, split = -1;
    env_behaviour_cfg cfg[2];
    cfg[0] = env_behaviour_default();
    cfg[0].kind = ENV_BEHAV_COUNTS;
    cfg[1] = env_behaviour_default();
    cfg[1].kind = ENV_BEHAV_MNL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = !v;
        if (!strcmp(a, "--products")) bad = bad || parse_long(v, 1, 10000000, &products);
        else if (!strcmp(a, "--days")) bad = bad || parse_long(v, 3, 100000, &days);
        else if (!strcmp(a, "--seed")) bad = bad || parse_long(v, 0, 0x7fffffffL, &seed);
        else if (!strcmp(a, "--split")) bad = bad || parse_long(v, 1, 100000, &split);
        else if (!strcmp(a, "--shrink")) bad = bad || parse_dbl(v, &cfg[1].shrink);
        else if (!strcmp(a, "--eps")) bad = bad || parse_dbl(v, &cfg[1].eps);
        else if (!strcmp(a, "--l2")) bad = bad || parse_dbl(v, &cfg[1].l2);
        else if (!strcmp(a, "--alpha")) bad = bad || parse_dbl(v, &cfg[0].alpha);
        else {
            fprintf(stderr, "behaviour eval: unknown option '%s'\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "behaviour eval: bad or missing value for %s\n", a);
            return 2;
        }
        i++;
    }
    if (split < 0) split = days * 3 / 4;
    if (split >= days) {
        fprintf(stderr, "behaviour eval: --split must be below --days\n");
        return 2;
    }
    for (int c = 0; c < 2; c++)
        if (env_behaviour_cfg_check(&cfg[c])) {
            fprintf(stderr, "behaviour eval: %s\n", eng_err_msg());
            return 2;
        }
    env_behaviour_eval e[3];
    double tll = NAN;
    int rc = env_behaviour_sim_compare((int)products, (int)days, (uint64_t)seed, (int)split, cfg, 2, e, &tll);
    if (rc) {
        fprintf(stderr, "behaviour eval: %s\n", eng_err_msg());
        return rc == ENG_EINVAL ? 2 : 1;
    }
    printf("behaviour models on %ld simulated products x %ld days (seed %ld), fit t < %ld, test t >= %ld\n", products,
           days, seed, split, split);
    printf("train %ld, test %ld transitions; true propensities' held-out log-likelihood %.4f\n", e[0].n_train,
           e[0].n_test, tll);
    printf("%-28s %12s %14s %12s\n", "model", "MAE(logged)", "held-out LL", "mean TV");
    char counts_name[64];
    snprintf(counts_name, sizeof counts_name, "counts (alpha %g, beta %g)", cfg[0].alpha, cfg[0].beta);
    const char *names[3] = {"uniform", counts_name, "mnl"};
    for (int c = 0; c < 3; c++) printf("%-28s %12.5f %14.4f %12.4f\n", names[c], e[c].mae, e[c].loglik, e[c].tv);
    printf("mnl: shrink %g, l2 %g, eps %g\n", cfg[1].shrink, cfg[1].l2, cfg[1].eps);
    return 0;
}
