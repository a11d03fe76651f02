/* ope_cmd.c - `rlprice ope`: every bandit estimator on a logged CSV, as a table or JSON. */
#include "rlp_cmd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "eng_parse.h"
#include "ope.h"

static json_object *num_or_null(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

/* json_object_object_add that reports allocation failure of the value (NULL values for
 * non-finite numbers are intended and written as null). */
static int add(json_object *o, const char *k, json_object *v) { return json_object_object_add(o, k, v); }

json_object *ope_result_json(const ope_result *r) {
    json_object *root = json_object_new_object(), *omitted = json_object_new_object();
    json_object *diag = json_object_new_object(), *ov = json_object_new_object();
    if (!root || !omitted || !diag || !ov) goto fail;
    for (int e = 0; e < OPE_N_EST; e++) {
        const ope_value *v = &r->v[e];
        if (!v->available) {
            if (e <= OPE_SWITCH_DR || e == OPE_FQE)
                if (add(omitted, ope_est_name((ope_est)e), json_object_new_string(v->note))) goto fail;
            continue;
        }
        json_object *o = json_object_new_object();
        if (!o) goto fail;
        if (add(root, ope_est_name((ope_est)e), o)) {
            json_object_put(o);
            goto fail;
        }
        if (add(o, "estimate", num_or_null(v->estimate)) || add(o, "ci_low", num_or_null(v->ci_low)) ||
            add(o, "ci_high", num_or_null(v->ci_high)) || add(o, "boot_se", num_or_null(v->boot_se)) ||
            add(o, "n_used", json_object_new_int(v->n_used)) || add(o, "note", json_object_new_string(v->note)))
            goto fail;
    }
    const ope_overlap *w = &r->overlap;
    if (add(ov, "ess", json_object_new_double(w->ess)) || add(ov, "ess_frac", json_object_new_double(w->ess_frac)) ||
        add(ov, "max_weight", json_object_new_double(w->max_w)) ||
        add(ov, "max_weight_share", json_object_new_double(w->max_w_share)) ||
        add(ov, "mean_weight", json_object_new_double(w->mean_w)) ||
        add(ov, "unsupported_mass", json_object_new_double(w->unsupported_mass)) ||
        add(ov, "unsupported_rows", json_object_new_double(w->unsupported_rows)) ||
        add(ov, "support_exact", json_object_new_boolean(w->support_exact)) ||
        add(ov, "poor", json_object_new_boolean(w->poor)) || add(ov, "reason", json_object_new_string(w->reason)))
        goto fail;
    if (add(diag, "overlap", ov)) goto fail;
    ov = NULL; /* owned by diag now */
    if (add(diag, "n", json_object_new_int(r->n)) || add(diag, "bootstrap", json_object_new_int(r->n_boot)) ||
        add(diag, "alpha", json_object_new_double(r->alpha)) ||
        add(diag, "reward_model", json_object_new_string(r->q_source)) ||
        add(diag, "recommended", json_object_new_string(ope_est_name(r->recommended))) ||
        add(diag, "pscore_clipped", json_object_new_int(r->n_pscore_clipped)) ||
        add(diag, "omitted", omitted)) {
        omitted = NULL; /* may or may not be in diag: leak rather than double free on this OOM path */
        goto fail;
    }
    omitted = NULL;
    if (isfinite(r->bandwidth) && add(diag, "bandwidth", json_object_new_double(r->bandwidth))) goto fail;
    if (add(root, "diagnostics", diag)) goto fail;
    return root;
fail: /* each pointer still set is owned here */
    json_object_put(ov);
    json_object_put(omitted);
    json_object_put(diag);
    json_object_put(root);
    eng_err_set(ENG_ENOMEM, "ope: out of memory building JSON");
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: rlprice ope --logged FILE.csv [--json] [--bootstrap B] [--seed S] [--alpha A]\n"
            "                   [--tau T] [--lambda L] [--min-pscore P]\n"
            "  FILE.csv columns: action, reward, pscore, pi_0..pi_{K-1}; optional q_0..q_{K-1} (reward\n"
            "  model), mu_0..mu_{K-1} (behaviour probabilities), x_* (context for a fitted model).\n"
            "  --bootstrap B resamples (default 1000), --seed S (1), --alpha A (0.05: 95%% intervals),\n"
            "  --tau T Switch-DR weight threshold (50), --lambda L ridge penalty (1.0), --min-pscore P\n"
            "  propensity floor (1e-6: smaller pscores are clipped up to it, counted and warned about).\n"
            "  See docs/ope.md.\n");
}

/* 0 when s is a whole finite number; the caller prints the message. */
static int parse_num(const char *s, double *v) {
    *v = NAN;
    return eng_parse_decimal(s, v) == ENG_OK ? 0 : -1;
}

static void print_table(const char *path, const ope_bandit *d, const ope_result *r) {
    const ope_overlap *w = &r->overlap;
    printf("off-policy estimates for %s: %d rows, %d actions, reward model: %s", path, d->n, d->K, r->q_source);
    if (!strcmp(r->q_source, "ridge")) printf(" (ridge on %d x_ columns)", d->d);
    printf("\n%-10s %12s  %-29s %8s  %s\n", "estimator", "estimate", "", "n_used", "note");
    for (int e = OPE_REPLAY; e <= OPE_SWITCH_DR; e++) {
        const ope_value *v = &r->v[e];
        if (!v->available) {
            printf("%-10s %12s  %-29s %8s  omitted: %s\n", ope_est_name((ope_est)e), "-", "", "-", v->note);
            continue;
        }
        char ci[64];
        if (isfinite(v->ci_low))
            snprintf(ci, sizeof ci, "%.0f%% CI [%.6g, %.6g]", 100 * (1 - r->alpha), v->ci_low, v->ci_high);
        else
            snprintf(ci, sizeof ci, "no interval");
        printf("%-10s %12.6g  %-29s %8d  %s\n", ope_est_name((ope_est)e), v->estimate, ci, v->n_used, v->note);
    }
    printf("overlap: ESS %.1f (%.1f%% of n), largest weight %.4g (%.2f%% of the total), mean weight %.4f,\n"
           "         target mass on unsupported actions %.2f%% (%.2f%% of rows; %s)\n",
           w->ess, 100 * w->ess_frac, w->max_w, 100 * w->max_w_share, w->mean_w, 100 * w->unsupported_mass,
           100 * w->unsupported_rows, w->support_exact ? "from mu_ columns" : "proxy: actions never logged");
    if (w->poor && r->recommended == OPE_DM)
        printf("overlap: POOR (%s): the importance-weighted numbers are not trustworthy; report dm\n", w->reason);
    else if (w->poor)
        printf("overlap: POOR (%s): the importance-weighted numbers are not trustworthy, and there is no\n"
               "         reward model for dm (add q_* or x_* columns)\n", w->reason);
    if (r->n_pscore_clipped)
        printf("pscores below the floor: %d row(s) clipped up to it (see --min-pscore)\n", r->n_pscore_clipped);
    printf("recommended estimate: %s = %.6g (bootstrap B=%d, %s)\n", ope_est_name(r->recommended),
           r->v[r->recommended].estimate, r->n_boot, "percentile intervals");
}

int ope_cmd_ope(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    ope_config cfg = ope_config_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "rlprice ope: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "--logged")) path = val;
        else if (!strcmp(a, "--bootstrap")) {
            if (parse_num(val, &v) || v < 0 || v > 1e6 || v != floor(v)) {
                fprintf(stderr, "rlprice ope: --bootstrap must be an integer in 0..1000000, got '%s'\n", val);
                return 2;
            }
            cfg.n_boot = (int)v;
        } else if (!strcmp(a, "--seed")) {
            uint64_t s;
            if (eng_parse_u64(val, &s) != ENG_OK) { /* digits only: no sign, no blanks, no overflow */
                fprintf(stderr, "rlprice ope: --seed needs a non-negative integer, got '%s'\n", val);
                return 2;
            }
            cfg.seed = s;
        } else if (!strcmp(a, "--alpha")) {
            if (parse_num(val, &v) || !(v > 0 && v < 1)) {
                fprintf(stderr, "rlprice ope: --alpha must be in (0, 1), got '%s'\n", val);
                return 2;
            }
            cfg.alpha = v;
        } else if (!strcmp(a, "--tau")) {
            if (parse_num(val, &v) || !(v > 0)) {
                fprintf(stderr, "rlprice ope: --tau must be > 0, got '%s'\n", val);
                return 2;
            }
            cfg.switch_tau = v;
        } else if (!strcmp(a, "--lambda")) {
            if (parse_num(val, &v) || !(v >= 0)) {
                fprintf(stderr, "rlprice ope: --lambda must be >= 0, got '%s'\n", val);
                return 2;
            }
            cfg.ridge_lambda = v;
        } else if (!strcmp(a, "--min-pscore")) {
            if (parse_num(val, &v) || !(v >= 0 && v < 1)) {
                fprintf(stderr, "rlprice ope: --min-pscore must be in [0, 1), got '%s'\n", val);
                return 2;
            }
            cfg.min_pscore = v;
        } else {
            fprintf(stderr, "rlprice ope: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "rlprice ope: --logged FILE.csv is required\n");
        usage(stderr);
        return 2;
    }
    ope_bandit d;
    ope_result r;
    int rc = 0;
    int st = ope_csv_load(path, &d);
    if (st) {
        fprintf(stderr, "rlprice ope: %s\n", eng_err_msg());
        return 2;
    }
    st = ope_bandit_estimate(&d, &cfg, &r);
    if (st) {
        fprintf(stderr, "rlprice ope: %s\n", eng_err_msg());
        rc = st == ENG_EINVAL || st == ENG_ENUM ? 2 : 1;
        goto cleanup;
    }
    if (!json) {
        if (!d.q && d.d == 0)
            fprintf(stderr, "rlprice ope: no q_* or x_* columns: DM, DR and Switch-DR are omitted\n");
        print_table(path, &d, &r);
    } else {
        json_object *o = ope_result_json(&r);
        if (!o) {
            fprintf(stderr, "rlprice ope: %s\n", eng_err_msg());
            rc = 1;
            goto cleanup;
        }
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    }
    if (fflush(stdout) != 0) rc = 1;
cleanup:
    ope_bandit_free(&d);
    return rc;
}
