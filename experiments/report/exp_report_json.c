/* exp_report_json.c - the machine-readable report (json-c): the same numbers as the HTML page.
 * Schema: docs/report.md.  Non-finite numbers are written as null. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "eng_util.h"
#include "env_action.h"
#include "exp_report.h"
#include "exp_report_int.h"

/* Attach v to o under k; a NULL v is written as null.  Non-zero when json-c could not add it
 * (v is then released here). */
static int put(json_object *o, const char *k, json_object *v) {
    if (json_object_object_add(o, k, v) == 0) return 0;
    json_object_put(v);
    return -1;
}
/* Strings must exist (NULL means out of memory); numbers may be null on purpose. */
static int put_str(json_object *o, const char *k, const char *s) {
    json_object *v = json_object_new_string(s ? s : "");
    return v ? put(o, k, v) : -1;
}
/* numbers in their shortest exact form (a price 0.9574 reads "0.9574", not 0.95740000000000003) */
static int put_num(json_object *o, const char *k, double x) {
    char t[32];
    return put(o, k, isfinite(x) ? json_object_new_double_s(x, eng_fmt_double(t, x)) : NULL);
}
static int put_int(json_object *o, const char *k, int64_t x) {
    json_object *v = json_object_new_int64(x);
    return v ? put(o, k, v) : -1;
}
static int put_bool(json_object *o, const char *k, int b) {
    json_object *v = json_object_new_boolean(b);
    return v ? put(o, k, v) : -1;
}
/* Attach a freshly created container; NULL (allocation failure) is an error. */
static json_object *put_new(json_object *o, const char *k, json_object *child) {
    if (!child) return NULL;
    return put(o, k, child) ? NULL : child;
}
static int arr_add(json_object *a, json_object *v) {
    if (json_object_array_add(a, v) == 0) return 0;
    json_object_put(v);
    return -1;
}

static const char *kind_key(exp_show_kind k) {
    switch (k) {
    case EXP_SHOW_NORMAL: return "recommended";
    case EXP_SHOW_FALLBACK: return "model_fallback";
    case EXP_SHOW_UNRELIABLE: return "unreliable";
    default: return "none";
    }
}

/* An ope_value as {estimate, ci_low, ci_high, note}, or JSON null when unavailable. */
static json_object *value_json(const ope_value *v) {
    if (!v->available || !isfinite(v->estimate)) return NULL;
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    if (put_num(o, "estimate", v->estimate) || put_num(o, "ci_low", v->ci_low) || put_num(o, "ci_high", v->ci_high) ||
        put_num(o, "sd", v->boot_se) || put_str(o, "note", v->note)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* The estimate shown for one result plus its overlap numbers. */
static json_object *shown_json(const ope_result *r, int a, int lt) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    exp_shown s = exp_rep_pick(r);
    const ope_overlap *w = &r->overlap;
    if (put(o, "estimator", s.est >= 0 ? json_object_new_string(ope_est_name((ope_est)s.est)) : NULL) ||
        put_num(o, "estimate", s.value) || put_num(o, "ci_low", s.lo) || put_num(o, "ci_high", s.hi) ||
        put_str(o, "estimator_label", s.est >= 0 ? exp_rep_est_label(a, s.est, lt) : "none") ||
        put_str(o, "shown_as", kind_key(s.kind)) || put_str(o, "label", exp_rep_pick_label(&s)) ||
        put_bool(o, "poor_overlap", w->poor) || put_str(o, "overlap_reason", w->reason) ||
        put_num(o, "ess_frac", w->n > 0 ? w->ess_frac : NAN) ||
        put_num(o, "max_weight_share", w->n > 0 ? w->max_w_share : NAN) ||
        put_num(o, "unsupported_mass", w->n > 0 ? w->unsupported_mass : NAN) || put_int(o, "n", r->n)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* {"shown": ..., "estimators": ope_result_json(...)} */
static json_object *total_json(const ope_result *r, int a, int lt) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    ope_result c = *r; /* a zeroed result (never initialised by the producer) has no q_source */
    if (!c.q_source) c.q_source = "none";
    if (!put_new(o, "shown", shown_json(r, a, lt)) || !put_new(o, "estimators", ope_result_json(&c))) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* One configuration line as a "key": "value" member (lines without '=' or key are left out). */
static int config_entry(void *ctx, char *line, int eq, int secret) {
    if (eq < 0) return 0;
    line[eq] = 0;
    char *k = line, *v = line + eq + 1;
    while (*k == ' ') k++;
    for (char *e = k + strlen(k); e > k && e[-1] == ' ';) *--e = 0;
    while (*v == ' ') v++;
    return *k && put_str(ctx, k, secret ? "***" : v) ? -1 : 0;
}

static int run_json(json_object *root, const exp_results *r) {
    json_object *run = put_new(root, "run", json_object_new_object());
    if (!run || put_str(run, "id", r->run_id) || put_str(run, "date", r->run_date) ||
        put_str(run, "data_source", r->data_source) || put_str(run, "reward", r->reward_text))
        return -1;
    json_object *cfg = put_new(run, "config", json_object_new_object());
    if (!cfg) return -1;
    /* key = value lines; values of keys naming a password or secret are replaced */
    if (exp_rep_config_lines(r->config_text, config_entry, cfg)) return -1;
    json_object *t = put_new(run, "seconds", json_object_new_object());
    if (!t || put_num(t, "load", r->seconds_load) || put_num(t, "features", r->seconds_features) ||
        put_num(t, "train", r->seconds_train) || put_num(t, "ope", r->seconds_ope) ||
        put_num(t, "report", r->seconds_report) || put_num(t, "push", r->seconds_push) ||
        put_num(t, "fqe", r->seconds_fqe))
        return -1;
    /* long-term FQE: over all evaluated products or a seeded sample of them */
    json_object *fq = put_new(run, "fqe", json_object_new_object());
    if (!fq || put_int(fq, "products", r->fqe_products) || put_int(fq, "eligible", r->fqe_eligible) ||
        put_bool(fq, "sampled", r->fqe_products > 0 && r->fqe_products < r->fqe_eligible))
        return -1;
    /* compare.refit: products whose DQN / DDPG next prices came from the agents refitted on every day */
    if (put_int(run, "refit_products", r->refit_products)) return -1;
    long nl = 0, ne = 0;
    for (int i = 0; i < r->n_products; i++) nl += r->products[i].n_eval_logged, ne += r->products[i].n_eval_estimated;
    json_object *pp = put_new(run, "propensities", json_object_new_object());
    if (!pp || put_int(pp, "rows_logged", nl) || put_int(pp, "rows_estimated", ne)) return -1;
    json_object *ex = put_new(run, "exploration", json_object_new_object());
    if (!ex || put_bool(ex, "on", r->explore_on) || put_int(ex, "eligible", r->n_explore_eligible) ||
        put_int(ex, "explored", r->n_explored) || put_num(ex, "probability", r->explore_prob) ||
        put_num(ex, "cost", r->explore_cost) || put_num(ex, "cost_share", r->explore_cost_share))
        return -1;
    /* nightly.window_carryover_days: the night's window test and the window it priced from
     * (days 0: the whole history); null when the night did not test */
    if (!r->window_tested) {
        if (put(run, "window", NULL)) return -1;
    } else {
        json_object *wi = put_new(run, "window", json_object_new_object());
        if (!wi || put_int(wi, "tested", r->window_carry_tested) || put_int(wi, "carry_over", r->window_carry) ||
            put_bool(wi, "short", r->window_short) || put_int(wi, "days", r->window_days))
            return -1;
    }
    exp_rep_counts c = exp_rep_count(r);
    json_object *n = put_new(root, "counts", json_object_new_object());
    if (!n || put_int(n, "products", c.total) || put_int(n, "evaluated", c.evaluated) || put_int(n, "ok", c.ok) ||
        put_int(n, "skipped", c.skipped) || put_int(n, "diverged", c.diverged) || put_int(n, "failed", c.failed) ||
        put_int(n, "poor_overlap_immediate", c.poor_immediate) || put_int(n, "poor_overlap_longterm", c.poor_longterm))
        return -1;
    json_object *w = put_new(root, "winner", json_object_new_object());
    char verdict[2048];
    exp_rep_verdict(r, verdict, sizeof verdict);
    if (!w || put_str(w, "immediate", exp_agent_name(r->winner_immediate)) ||
        put_str(w, "longterm", exp_agent_name(r->winner_longterm)) || put_str(root, "verdict", verdict))
        return -1;
    json_object *ag = put_new(root, "agents", json_object_new_object());
    if (!ag) return -1;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        json_object *o = put_new(ag, exp_agent_name((exp_agent)a), json_object_new_object());
        if (!o || put_str(o, "label", exp_rep_agent_label(a)) ||
            !put_new(o, "immediate", total_json(&r->total_immediate[a], a, 0)) ||
            !put_new(o, "longterm", total_json(&r->total_longterm[a], a, 1)))
            return -1;
        /* pooled evidence: rows and ESS of the pooled evaluation rows, the pooled uplift over the
         * historical prices (null for history itself) and the empirical-Bayes prior */
        const ope_overlap *w = &r->total_immediate[a].overlap;
        if (put_int(o, "pooled_rows", w->n) || put_num(o, "pooled_ess", w->ess) ||
            put(o, "uplift_pooled", value_json(&r->total_uplift[a])) ||
            (a != EXP_AGENT_HISTORY &&
             (put_num(o, "eb_prior_mean", r->eb_mean[a]) || put_num(o, "eb_tau2", r->eb_tau2[a]) ||
              put_int(o, "eb_products", r->eb_n[a]))))
            return -1;
    }
    return 0;
}

static json_object *product_json(const exp_product_result *p) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    json_object *fa = NULL, *ag = NULL;
    if (put_str(o, "id", p->product_id) || put_int(o, "index", p->index) ||
        put_str(o, "status", exp_status_name(p->status)) || put_str(o, "note", p->note) ||
        put_num(o, "incumbent_price", p->incumbent_price) || !(fa = put_new(o, "failed_agents", json_object_new_array())) ||
        !(ag = put_new(o, "agents", json_object_new_object())))
        goto fail;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        if ((p->agent_failed & (1u << a)) && arr_add(fa, json_object_new_string(exp_agent_name((exp_agent)a)))) goto fail;
        json_object *x = put_new(ag, exp_agent_name((exp_agent)a), json_object_new_object()), *gr = NULL;
        if (!x || put_num(x, "price", a == EXP_AGENT_HISTORY ? p->incumbent_price : p->price[a]) ||
            put_int(x, "guard_bits", (int64_t)p->guard_reasons[a]) ||
            put_num(x, "support_gap", a == EXP_AGENT_HISTORY ? 0.0 : (double)p->support_gap[a]) ||
            !(gr = put_new(x, "guard_reasons", json_object_new_array())))
            goto fail;
        for (int b = 0; b < ENV_GR_NBITS; b++) {
            const char *nm = env_guard_reason_name(1u << b);
            if ((p->guard_reasons[a] & (1u << b)) && nm && arr_add(gr, json_object_new_string(nm))) goto fail;
        }
        if (!put_new(x, "immediate", shown_json(&p->immediate[a], a, 0)) ||
            !put_new(x, "longterm", shown_json(&p->longterm[a], a, 1)))
            goto fail;
        if (a != EXP_AGENT_HISTORY &&
            (put_num(x, "uplift_immediate", exp_rep_uplift(p, a, 0)) ||
             put_num(x, "uplift_longterm", exp_rep_uplift(p, a, 1)) ||
             put(x, "uplift_raw", value_json(&p->uplift[a])) || put(x, "uplift_shrunk", value_json(&p->uplift_shrunk[a]))))
            goto fail;
    }
    return o;
fail:
    json_object_put(o);
    return NULL;
}

static json_object *floats_json(const float *v, int n) {
    json_object *a = json_object_new_array();
    if (!a) return NULL;
    char b[32];
    for (int t = 0; t < n; t++) /* a float in its shortest form: 2.49, not 2.4900000095367432 */
        if (json_object_array_add(a, isfinite(v[t]) ? json_object_new_double_s(v[t], eng_fmt_float(b, v[t])) : NULL)) {
            json_object_put(a);
            return NULL;
        }
    return a;
}

json_object *exp_report_json(const exp_results *r) {
    if (!r) {
        eng_err_set(ENG_EINVAL, "exp_report_json: NULL results");
        return NULL;
    }
    json_object *root = json_object_new_object(), *prods = NULL, *traj = NULL, *pl = NULL;
    int *idx = NULL, n_listed = 0;
    unsigned char *role = NULL;
    if (exp_rep_select(r, &idx, &role, &n_listed)) {
        json_object_put(root);
        return NULL;
    }
    if (!root || put_str(root, "schema", "rlprice.report/2") || run_json(root, r) ||
        !(pl = put_new(root, "product_list", json_object_new_object())) || put_int(pl, "total", r->n_products) ||
        put_int(pl, "listed", n_listed) || put_int(pl, "top", EXP_REP_TOP) || put_int(pl, "bottom", EXP_REP_TOP) ||
        put_int(pl, "sample", EXP_REP_SAMPLE) || put_int(pl, "all_up_to", EXP_REP_LIST_ALL) ||
        put_str(pl, "file", "products.csv.gz") ||
        !(prods = put_new(root, "products", json_object_new_array())) ||
        !(traj = put_new(root, "trajectories", json_object_new_array())))
        goto fail;
    for (int k = 0; k < n_listed; k++) {
        json_object *pj = product_json(&r->products[idx[k]]);
        if (!pj || arr_add(prods, pj) || put_str(pj, "listed_as", exp_rep_role_name(role[k]))) goto fail;
    }
    int shown = 0;
    for (int i = 0; i < r->n_products; i++) {
        const exp_product_result *p = &r->products[i];
        /* the same example products as the HTML page */
        if (shown >= EXP_REP_MAX_TRAJ || !exp_rep_evaluated(p) || p->n_periods < 2 || !p->hist_price) continue;
        shown++;
        json_object *t = json_object_new_object(), *ag = NULL;
        if (!t || arr_add(traj, t) || put_str(t, "id", p->product_id) || put_int(t, "periods", p->n_periods) ||
            !put_new(t, "history", floats_json(p->hist_price, p->n_periods)) ||
            !(ag = put_new(t, "agents", json_object_new_object())))
            goto fail;
        for (int a = 1; a < EXP_N_AGENTS; a++)
            if (p->agent_price[a] && !put_new(ag, exp_agent_name((exp_agent)a), floats_json(p->agent_price[a], p->n_periods)))
                goto fail;
    }
    free(idx);
    free(role);
    return root;
fail:
    free(idx);
    free(role);
    json_object_put(root);
    eng_err_set(ENG_ENOMEM, "report: out of memory building JSON");
    return NULL;
}
