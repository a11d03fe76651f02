/* exp_nightly.c - the nightly pricing run (see exp_nightly.h, docs/nightly.md): load, compare,
 * decide per product, report, push in one transaction, publish the report. */
#include "exp_nightly.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "db_conn.h"
#include "db_load.h"
#include "db_products.h"
#include "db_push.h"
#include "eng_backend.h"
#include "eng_date.h"
#include "eng_hash.h"
#include "eng_par.h"
#include "eng_util.h"
#include "db_runlock.h"
#include "env_action.h"
#include "eng_stage.h"
#include "exp_nightly_stage.h"
#include "exp_nightly_explore.h"
#include "exp_nightly_gather.h"
#include "exp_nightly_shard.h"
#include "exp_nightly_watch.h"
#include "exp_nightly_window.h"
#include "exp_publish.h"
#include "exp_report.h"

exp_nightly_cfg exp_nightly_default(void) {
    exp_nightly_cfg c;
    memset(&c, 0, sizeof c);
    c.date = 0;
    c.window_days = 365;
    c.window_carryover_share = 0.2f; /* window_carryover_days 0: off */
    c.min_periods = 8;
    /* the gate: the demand model's 70% bound above 0.25% of the incumbent's rate and a positive
     * OPE uplift, steps along each agent's direction up to the guardrails, the best estimate
     * among the eligible moves (docs/backtest.md, "Gate trade-off": chosen on the backtest's
     * trade-off table; 70% since the pooled slope prior: docs/backtest.md, "Level 70%") */
    c.gate_level = 0.70f;
    c.gate_min_gain = 0.0025f;
    c.gate_mode = EXP_GATE_BOTH;
    c.gate_steps = 4;
    c.gate_extend = 1;
    c.gate_select = 0;
    c.gate_support_widen = -1;
    c.gate_plan = 0; /* off (docs/backtest.md, "A planning candidate for the gate") */
    c.gate_plan_nights = 20;
    c.gate_plan_gamma = 0.95f;
    c.explore.share = 0.0f; /* off */
    c.explore.max_step = 0.05f;
    c.explore.max_cost = 0.01f;
    c.explore.temper = 1.0f; /* Thompson draws from the posterior itself */
    c.explore.carryover_z = 2.0f; /* skip_carryover's test: the gate horizon's */
    c.out_dir = "out/nightly";
    c.ckpt_dir = "out/ckpt";
    c.ckpt_keep = 3;
    c.compare = exp_compare_default();
    c.fault_kill_rank = -1;
    return c;
}

void exp_nightly_summary_free(exp_nightly_summary *s) {
    if (!s) return;
    exp_nightly_free_list(s->failed, s->n_failed);
    free(s->n_decided_by_rank);
    s->n_decided_by_rank = NULL;
    s->failed = NULL;
    s->n_failed = 0;
}

void exp_nightly_free_list(char **list, int n) {
    if (!list) return;
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

int exp_nightly_exit_code(int status, const exp_nightly_summary *sum) {
    switch (status) {
    case ENG_OK: return sum && sum->n_failed > 0 ? 4 : 0;
    default: break;
    }
    if (sum && sum->rank_lost) return 3; /* a rank failed or died: the run failed, nothing pushed */
    switch (status) {
    case ENG_EINVAL:
    case ENG_ENOTFOUND:
    case ENG_EFORMAT:
    case ENG_EDEVICE: return 2;
    case ENG_EDB: return 3;
    case ENG_EBUSY: return 5;
    default: return 1;
    }
}

void exp_nightly_run_id(int32_t date, const char *config_text, char buf[64]) {
    const uint64_t h = eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, config_text);
    char d[16];
    eng_date_format(date, d);
    snprintf(buf, 64, "%s-%016llx", d, (unsigned long long)h);
}

/* ---- product lists ------------------------------------------------------------------------ */
typedef struct strlist { char **v; int n, cap; } strlist;

static int sl_push(strlist *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return eng_err_set(ENG_ENOMEM, "product list: out of memory");
        l->v = v, l->cap = cap;
    }
    char *c = eng_malloc(len + 1);
    if (!c) return ENG_ENOMEM;
    memcpy(c, s, len);
    c[len] = '\0';
    l->v[l->n++] = c;
    return ENG_OK;
}

static int has_pattern(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* All product ids of the database (for pattern matching); ids must be empty. */
static int all_products(PGconn *conn, strlist *ids) {
    int st = db_product_ids(conn, &ids->v, &ids->n);
    ids->cap = ids->n;
    return st;
}

/* One entry (id or pattern) into out. */
static int add_entry(PGconn *conn, const char *e, size_t len, strlist *all, strlist *out) {
    char pat[512];
    if (len == 0) return ENG_OK;
    if (len >= sizeof pat) return eng_err_set(ENG_EINVAL, "--products: entry longer than %zu characters", sizeof pat - 1);
    memcpy(pat, e, len);
    pat[len] = '\0';
    if (!has_pattern(pat)) return sl_push(out, pat, len);
    int st;
    if (!all->v && (st = all_products(conn, all))) return st;
    int matched = 0;
    for (int i = 0; i < all->n; i++)
        if (fnmatch(pat, all->v[i], 0) == 0) {
            if ((st = sl_push(out, all->v[i], strlen(all->v[i])))) return st;
            matched++;
        }
    if (!matched) return eng_err_set(ENG_EINVAL, "--products: pattern '%s' matches no product", pat);
    return ENG_OK;
}

int exp_nightly_resolve_products(PGconn *conn, const char *list, char ***out, int *n) {
    strlist all = {0}, res = {0};
    char *buf = NULL;
    FILE *f = NULL;
    int st = ENG_OK;
    *out = NULL;
    *n = 0;
    if (!list) return eng_err_set(ENG_EINVAL, "--products: empty list");
    if (list[0] == '@') {
        if (!(f = eng_fopen(list + 1, "r"))) { st = ENG_EIO; goto cleanup; }
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&buf, &cap, f)) >= 0) {
            while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
            if (len == 0 || buf[0] == '#') continue;
            if ((st = add_entry(conn, buf, (size_t)len, &all, &res))) goto cleanup;
        }
    } else {
        for (const char *p = list;;) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            if ((st = add_entry(conn, p, len, &all, &res))) goto cleanup;
            if (!c) break;
            p = c + 1;
        }
    }
    if (res.n == 0) st = eng_err_set(ENG_EINVAL, "--products '%s': no product given", list);
cleanup:
    if (f) fclose(f);
    free(buf);
    exp_nightly_free_list(all.v, all.n);
    if (st) exp_nightly_free_list(res.v, res.n);
    else *out = res.v, *n = res.n;
    return st;
}

typedef exp_nightly_decision decision;

/* ---- report side files ------------------------------------------------------------------------ */
typedef struct rec_json_ctx {
    const exp_nightly_summary *sum;
    const db_recommendation *recs;
    const decision *const *rdec; /* [n] the decision behind each recommendation */
    size_t n;
    int dry_run;
    int gate_mode;
} rec_json_ctx;

static json_object *jnum(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

/* A price as the exact decimal the database holds (db_price_format), not %.17g float noise. */
static json_object *jprice(double v, int scale) {
    char t[48];
    return isfinite(v) ? json_object_new_double_s(v, db_price_format(t, sizeof t, v, scale)) : NULL;
}

static int write_recs_json(FILE *f, void *vctx) {
    const rec_json_ctx *c = vctx;
    const exp_nightly_summary *s = c->sum;
    json_object *root = json_object_new_object(), *sm = json_object_new_object(), *arr = json_object_new_array();
    json_object *holds = json_object_new_object(), *failed = json_object_new_array();
    json_object_object_add(root, "run_id", json_object_new_string(s->run_id));
    json_object_object_add(root, "run_date", json_object_new_string(s->run_date));
    json_object_object_add(root, "dry_run", json_object_new_boolean(c->dry_run));
    json_object_object_add(sm, "n_products", json_object_new_int(s->n_products));
    json_object_object_add(sm, "n_up", json_object_new_int(s->n_up));
    json_object_object_add(sm, "n_down", json_object_new_int(s->n_down));
    json_object_object_add(sm, "n_same", json_object_new_int(s->n_same));
    /* held = every product not repriced (held by a reason, or deployed at the incumbent price):
     * the same count as stdout's summary and pricing_runs.n_held */
    json_object_object_add(sm, "n_repriced", json_object_new_int(s->n_up + s->n_down));
    json_object_object_add(sm, "n_held", json_object_new_int(s->n_held + s->n_same));
    for (int k = 0; k < EXP_HOLD_COUNT; k++) json_object_object_add(holds, exp_hold_reason_name((exp_hold_reason)k), json_object_new_int(s->n_hold[k]));
    json_object_object_add(sm, "held_by_reason", holds);
    json_object_object_add(sm, "n_skipped_short", json_object_new_int(s->n_skipped));
    json_object_object_add(sm, "n_rejected_rows", json_object_new_int64(s->n_rejected_rows));
    for (int i = 0; i < s->n_failed; i++) json_object_array_add(failed, json_object_new_string(s->failed[i]));
    json_object_object_add(sm, "failed", failed);
    json_object_object_add(sm, "winner", json_object_new_string(exp_agent_name(s->winner)));
    json_object *seen = json_object_new_object();
    for (int k = EXP_SEEN_NORMAL; k < EXP_SEEN_COUNT; k++)
        json_object_object_add(seen, exp_seen_name(k), json_object_new_int(s->n_seen[k]));
    json_object_object_add(sm, "repriced_new_price_seen", seen);
    json_object_object_add(sm, "n_uplift_capped", json_object_new_int(s->n_capped));
    json_object_object_add(sm, "n_uplift_above_mean", json_object_new_int(s->n_above_mean));
    json_object_object_add(sm, "gate", json_object_new_string(exp_gate_mode_name(c->gate_mode)));
    json_object_object_add(sm, "n_partial_moves", json_object_new_int(s->n_partial));
    json_object_object_add(sm, "exploration", exp_explore_summary_json(&s->explore));
    json_object_object_add(sm, "ope_rows_logged_propensity", json_object_new_int64(s->n_eval_logged));
    json_object_object_add(sm, "ope_rows_estimated_propensity", json_object_new_int64(s->n_eval_estimated));
    json_object_object_add(root, "summary", sm);
    for (size_t i = 0; i < c->n; i++) {
        const db_recommendation *r = &c->recs[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "product_id", json_object_new_string(r->product_id));
        json_object_object_add(o, "price", jprice(r->price, r->price_scale));
        json_object_object_add(o, "incumbent_price", jprice(r->incumbent_price, r->price_scale));
        json_object_object_add(o, "agent", json_object_new_string(r->agent));
        json_object_object_add(o, "reason", json_object_new_string(r->reason ? r->reason : ""));
        json_object_object_add(o, "expected_uplift", jnum(r->expected_uplift));
        json_object_object_add(o, "ci_low", jnum(r->ci_low));
        json_object_object_add(o, "ci_high", jnum(r->ci_high));
        const decision *d = c->rdec[i];
        json_object_object_add(o, "new_price_seen", json_object_new_string(exp_seen_name(d->seen)));
        json_object_object_add(o, "expected_uplift_per_period", jnum(r->expected_uplift * d->per_unit));
        json_object_object_add(o, "ci_low_per_period", jnum(r->ci_low * d->per_unit));
        json_object_object_add(o, "ci_high_per_period", jnum(r->ci_high * d->per_unit));
        json_object_object_add(o, "mean_per_period", jnum(d->mean_period));
        json_object_object_add(o, "plausible_per_period", jnum(d->plausible));
        json_object_object_add(o, "uplift_capped", json_object_new_boolean(d->capped));
        json_object_object_add(o, "uplift_above_mean", json_object_new_boolean(exp_nightly_above_mean(d)));
        json_object_object_add(o, "evidence", json_object_new_string(d->hold >= 0 ? "none" : d->by_model ? "demand_model" : "ope"));
        json_object_object_add(o, "move_share", jnum(d->hold < 0 ? d->frac : NAN));
        exp_explore_decision_json(o, d, r->price_scale);
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "recommendations", arr);
    /* one decision per product: without indentation past 1,000 (about 180 bytes per product) */
    const char *txt = json_object_to_json_string_ext(root, c->n > 1000 ? JSON_C_TO_STRING_PLAIN : JSON_C_TO_STRING_PRETTY);
    int st = txt && fputs(txt, f) >= 0 && fputc('\n', f) != EOF ? ENG_OK : eng_err_set(ENG_EIO, "writing recommendations.json");
    json_object_put(root);
    return st;
}

/* ---- the run --------------------------------------------------------------------------------- */
typedef struct prog_relay { const exp_nightly_cfg *cfg; } prog_relay;

static void relay(void *ctx, const char *stage, long done, long total) {
    const exp_nightly_cfg *cfg = ((prog_relay *)ctx)->cfg;
    if (cfg->progress) cfg->progress(cfg->progress_ctx, stage, done, total);
}

static void progress(const exp_nightly_cfg *cfg, const char *stage, long done, long total) {
    if (cfg->progress) cfg->progress(cfg->progress_ctx, stage, done, total);
}


/* JSON stored in pricing_runs.config. */
static char *config_json(const exp_nightly_cfg *cfg, const char *text, const char *run_id) {
    json_object *o = json_object_new_object();
    char d[16];
    eng_date_format(cfg->date, d);
    json_object_object_add(o, "run_id", json_object_new_string(run_id));
    json_object_object_add(o, "date", json_object_new_string(d));
    json_object_object_add(o, "window_days", json_object_new_int(cfg->window_days));
    if (cfg->window_carryover_days > 0) json_object_object_add(o, "window_carryover_days", json_object_new_int(cfg->window_carryover_days));
    json_object_object_add(o, "n_products_requested", json_object_new_int(cfg->products ? cfg->n_products : -1));
    json_object_object_add(o, "device", json_object_new_string(cfg->compare.device));
    json_object_object_add(o, "settings", json_object_new_string(text));
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    char *r = s ? strdup(s) : NULL;
    json_object_put(o);
    if (!r) eng_err_set(ENG_ENOMEM, "config json: out of memory");
    return r;
}

static void summary_text(const exp_nightly_summary *s, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "repriced %d (up %d, down %d), held %d", s->n_up + s->n_down, s->n_up, s->n_down,
                                s->n_held + s->n_same);
    for (int k = 0; k < EXP_HOLD_COUNT && o < n; k++)
        if (s->n_hold[k]) o += (size_t)snprintf(buf + o, n - o, ", %s %d", exp_hold_reason_name((exp_hold_reason)k), s->n_hold[k]);
    if (s->n_same && o < n) o += (size_t)snprintf(buf + o, n - o, ", deployed at the incumbent price %d", s->n_same);
    if (o < n) o += (size_t)snprintf(buf + o, n - o, "; skipped (short history) %d; rejected rows %lld; winner %s",
                                     s->n_skipped, (long long)s->n_rejected_rows, exp_agent_name(s->winner));
    if (o < n)
        o += (size_t)snprintf(buf + o, n - o, "; OPE rows with logged propensities %ld, estimated %ld", s->n_eval_logged,
                              s->n_eval_estimated);
    if (s->explore.on && o < n)
        o += (size_t)snprintf(buf + o, n - o, "; explored %d of %d eligible (probability %.4g), expected revenue given "
                              "up %.4g per period (%.3f%%)", s->explore.n_explored, s->explore.n_eligible,
                              s->explore.prob, s->explore.cost, 100.0 * s->explore.cost_share);
    if (s->n_failed && o < n) {
        o += (size_t)snprintf(buf + o, n - o, "; FAILED %d:", s->n_failed);
        for (int i = 0; i < s->n_failed && o + 40 < n; i++) o += (size_t)snprintf(buf + o, n - o, " %s", s->failed[i]);
    }
}

/* The state of one run, shared by its stages; everything owned is freed by nightly_cleanup. */
typedef struct nightly_run {
    const exp_nightly_cfg *cfg; /* the caller's, then pcfg (with the night's pooled demand prior) */
    exp_nightly_cfg pcfg;
    exp_nightly_summary *sum;
    PGconn *own, *conn;        /* own: opened here (closed in cleanup); conn: the one used */
    db_history *h;
    db_load_report rep;
    exp_results *res;
    db_recommendation *recs;   /* [n_products + 1]; strings borrowed from res and dec */
    size_t nrec;
    decision *dec;             /* [n_products + 1], catalogue order (rank 0: every product's) */
    exp_explore_cand *cand;    /* [n_products + 1] exploration candidates, aligned with dec */
    const decision **rdec;     /* [nrec] the decision behind each recommendation */
    char *ctext, *cjson, *html, *json, *sumtxt;
    char staging[1200];        /* "" when there is no staging folder to remove */
    char name[128];            /* the published folder's name */
    int run_opened;            /* the run row is open: mark it failed on error */
    db_runlock *lock;          /* the run id's lock, held from before the run row opens to the end */
    int attempt;               /* this attempt's number (pricing_run_attempts); 0 on a dry run */
    int pushed;                /* the push committed: nothing after it may fail the run */
    const eng_backend *be;
    double t0;
    int ckpt_used;             /* checkpoints saved into <ckpt_dir>/<date> */
    int32_t ckpt_src_date;     /* the date warm-started from (-1: none) */
} nightly_run;

/* Stage 0: check the configuration, select the device, compute the run id and the stored
 * configuration JSON.  Returns 0 or the failure (ENG_EINVAL, ENG_EDEVICE, ENG_ENOMEM). */
static int nightly_prepare(nightly_run *r) {
    const exp_nightly_cfg *cfg = r->cfg;
    exp_nightly_summary *sum = r->sum;
    int st;
    eng_date_format(cfg->date, sum->run_date);
    if (cfg->window_days < 0 || cfg->min_periods < 1 || !(cfg->gate_level > 0 && cfg->gate_level < 1) ||
        cfg->gate_mode < 0 || cfg->gate_mode >= EXP_GATE_N_MODES || cfg->gate_steps < 1 || cfg->gate_steps > 20 ||
        !(cfg->gate_min_gain >= 0 && cfg->gate_min_gain < 1) || cfg->gate_model_dir < 0 || cfg->gate_model_dir > 3 ||
        cfg->gate_plan < 0 || cfg->gate_plan > 2 || cfg->gate_cut_standing < 0 || cfg->gate_cut_standing > 4 || cfg->gate_plan_nights < 1 || cfg->gate_plan_nights > 200 ||
        !(cfg->gate_plan_gamma > 0 && cfg->gate_plan_gamma <= 1) || cfg->gate_plan_paths < 0 || cfg->gate_plan_paths > 1 || cfg->gate_plan_model < 0 || cfg->gate_plan_model > 1)
        return eng_err_set(ENG_EINVAL, "nightly: window_days must be >= 0, min_periods >= 1, 0 < gate_level < 1, "
                                       "gate_mode 0 (ope), 1 (model) or 2 (both), 1 <= gate_steps <= 20, 0 <= gate_min_gain < 1, "
                                       "gate_model_dir 0..3, gate_cut_standing 0..4, gate_plan 0..2, 1 <= gate_plan_nights <= 200, 0 < gate_plan_gamma <= 1, gate_plan_paths 0..1, gate_plan_model 0..1");
    if (!(cfg->explore.share >= 0 && cfg->explore.share <= 1) || !(cfg->explore.max_step > 0 && cfg->explore.max_step < 1) ||
        !(cfg->explore.max_cost >= 0 && cfg->explore.max_cost <= 1) ||
        (cfg->explore.mode != EXP_EXPLORE_NEIGHBOUR && cfg->explore.mode != EXP_EXPLORE_THOMPSON) ||
        !(cfg->explore.temper >= 0 && cfg->explore.temper <= 1) || !(cfg->explore.carryover_z >= 0 && cfg->explore.carryover_z <= 10) ||
        !(cfg->explore.carryover_share >= 0 && cfg->explore.carryover_share <= 1) ||
        (cfg->explore.skip_carryover != 0 && cfg->explore.skip_carryover != 1) || (cfg->explore.held_only != 0 && cfg->explore.held_only != 1) ||
        (cfg->explore.no_lag != 0 && cfg->explore.no_lag != 1))
        return eng_err_set(ENG_EINVAL, "nightly: explore.share must be in [0, 1], explore.max_step in (0, 1), "
                           "explore.max_cost in [0, 1], explore.mode 0 or 1, explore.temper in [0, 1] (0: 1), "
                           "explore.carryover_z in [0, 10] (0: 2), explore.carryover_share in [0, 1], "
                           "explore.skip_carryover, explore.held_only and explore.no_lag 0 or 1");
    if ((st = exp_nightly_window_check(cfg))) return st;
    if ((st = exp_compare_cfg_check(&cfg->compare))) return st;
    if ((st = env_guard_cfg_check(&cfg->compare.guard))) return st;
    if ((st = eng_backend_select(cfg->compare.device, &r->be))) return st;
    if (!(r->ctext = exp_nightly_config_text(cfg))) return ENG_ENOMEM;
    exp_nightly_run_id(cfg->date, r->ctext, sum->run_id);
    if (!(r->cjson = config_json(cfg, r->ctext, sum->run_id))) return ENG_ENOMEM;
    return ENG_OK;
}

/* Stage 1: connect, open the run row (not on a dry run), load and validate the window.
 * Returns 0, ENG_EDB, ENG_EINVAL (no product with enough clean history), ENG_ENOMEM. */
static int nightly_load(nightly_run *r) {
    const exp_nightly_cfg *cfg = r->cfg;
    exp_nightly_summary *sum = r->sum;
    char from[16], to[16];
    int st = ENG_OK; /* under MPI every rank reaches the sharded load (collective), failed or not */
    if (!r->conn) {
        st = db_resolve(&r->own, cfg->conninfo);
        r->conn = r->own;
    }
    if (!st)
        ENG_INFO("nightly: run %s on %s%s", sum->run_id, db_describe(r->conn), cfg->dry_run ? " (dry run: no database writes)" : "");
    if (!st && !cfg->dry_run && eng_par_rank() == 0) { /* one process per run id (a second one stops here:
                                                           ENG_EBUSY, exit 5); under MPI rank 0 owns the run */
        st = db_runlock_acquire(r->conn, cfg->conninfo, sum->run_id, &r->lock);
        if (!st) st = db_runs_reap_abandoned(r->lock, &sum->n_abandoned);
        if (!st) st = db_run_open(r->conn, sum->run_id, cfg->date, r->cjson);
        if (!st) r->run_opened = 1;
        if (!st) st = db_attempt_open(r->conn, sum->run_id, &r->attempt);
        if (!st) sum->attempt = r->attempt;
    }
    progress(cfg, "load", 0, 0);
    double t = eng_now();
    db_load_opts lo;
    db_load_opts_default(&lo);
    eng_date_format(cfg->date - 1, to);
    eng_date_format(cfg->date - cfg->window_days, from);
    lo.from = cfg->window_days > 0 ? from : NULL;
    lo.to = to;
    lo.products = cfg->products;
    lo.n_filter = cfg->products ? cfg->n_products : 0;
    lo.min_periods = cfg->min_periods;
    lo.run_id = NULL; /* the rejected rows are stored by the push, in its transaction */
    /* MPI: each rank reads only its own products (exp_nightly_shard.c); one process: everything */
    if ((st = exp_nightly_load_shard(r->conn, &lo, &r->h, &r->rep, st))) return st;
    sum->n_rejected_rows = (int64_t)r->rep.n_rejects; /* what rejected_rows stores: a duplicate once */
    sum->n_skipped = r->rep.n_skipped;
    sum->sec_load = eng_now() - t;
    /* the first and last dates of the periods loaded (not the window asked for) */
    char first[16] = "-", last[16] = "-";
    if (r->h->n_periods > 0) {
        eng_date_format(r->h->day0, first);
        eng_date_format(r->h->day0 + (r->h->n_periods - 1) * r->h->period_days, last);
    }
    ENG_INFO("nightly: loaded %d products x %d %s periods (%s .. %s) in %.1f s; %lld rows rejected, %d products with "
             "too little history",
             r->h->n_products, r->h->n_periods, r->h->period_days == 1 ? "daily" : r->h->period_days == 7 ? "weekly" : "multi-day",
             first, last, sum->sec_load, (long long)r->rep.n_rejected, r->rep.n_skipped);
    if (r->h->n_periods > 0 && r->h->period_days > 1) {
        int32_t off = cfg->date - r->h->day0, pd = r->h->period_days;
        int32_t rem = ((off % pd) + pd) % pd;
        if (rem != 0) {
            char prev[16], next[16];
            eng_date_format(cfg->date - rem, prev);
            eng_date_format(cfg->date - rem + pd, next);
            ENG_WARN("nightly: --date %s is off the data's %d-day period grid (periods start on %s, ... %s; the "
                     "nearest period starts are %s and %s): the prices are for the period the date falls in",
                     sum->run_date, pd, first, last, prev, next);
        }
    }
    progress(cfg, "load", r->h->n_products, r->h->n_products);
    if (r->h->n_products == 0)
        return eng_err_set(ENG_EINVAL, "nightly: no product has %d clean periods in the window %s .. %s",
                           cfg->min_periods, lo.from ? lo.from : "start", to);
    return ENG_OK;
}

/* Stages 2 + 3: features, training (warm start), OPE; the results carry the run's id and date.
 * Returns 0 or exp_compare_run's failure, ENG_EIO (checkpoint folder), ENG_ENOMEM. */
static int nightly_compare(nightly_run *r) {
    const exp_nightly_cfg *cfg = r->cfg;
    exp_nightly_summary *sum = r->sum;
    int st;
    exp_compare_cfg cc = cfg->compare;
    char ckpt[1100] = "", ckpt_src[1100] = "";
    cc.ckpt_dir = NULL;
    r->ckpt_src_date = -1;
    if (cfg->ckpt_dir && cfg->ckpt_dir[0]) { /* write <ckpt>/<date>, read the newest earlier date */
        if ((st = exp_nightly_ckpt_dirs(cfg->ckpt_dir, cfg->date, ckpt, sizeof ckpt, ckpt_src, sizeof ckpt_src)))
            return st;
        cc.ckpt_dir = ckpt;
        cc.ckpt_from = ckpt_src;
        r->ckpt_used = 1;
        if (ckpt_src[0]) eng_date_parse(strrchr(ckpt_src, '/') + 1, &r->ckpt_src_date);
        ENG_INFO("nightly: checkpoints: warm start from %s, saved to %s", ckpt_src[0] ? ckpt_src : "(none earlier)",
                 ckpt);
    }
    if (eng_par_size() > 1) { /* MPI: this rank's share of the products (exp_compare_shard.c) */
        cc.shard_count = eng_par_size();
        cc.shard_index = eng_par_rank();
        cc.fault_kill_rank = cfg->fault_kill_rank;
    }
    prog_relay pr = {cfg};
    double t = eng_now();
    if ((st = exp_compare_run(r->h, &cc, r->be, relay, &pr, &r->res))) return st;
    exp_results *res = r->res;
    exp_compare_last_warm(&sum->warm_loaded, &sum->warm_fresh);
    sum->sec_features = res->seconds_features;
    sum->sec_train = res->seconds_train;
    sum->sec_ope = res->seconds_ope;
    if (sum->sec_features + sum->sec_train + sum->sec_ope <= 0) sum->sec_train = eng_now() - t;
    res->seconds_load = sum->sec_load;
    res->window_tested = sum->window_tested, res->window_short = sum->window_short;
    res->window_carry = sum->window_carry, res->window_carry_tested = sum->window_carry_tested;
    res->window_days = sum->window_short ? r->cfg->window_carryover_days : r->cfg->window_days;
    if (!res->run_id || strcmp(res->run_id, sum->run_id) != 0) {
        free(res->run_id);
        if (!(res->run_id = strdup(sum->run_id))) return eng_err_set(ENG_ENOMEM, "out of memory");
    }
    free(res->run_date);
    if (!(res->run_date = strdup(sum->run_date))) return eng_err_set(ENG_ENOMEM, "out of memory");
    return ENG_OK;
}

/* Count decision d in the summary. */
static void count_decision(exp_nightly_summary *sum, const decision *d) {
    if (d->hold >= 0) {
        sum->n_held++;
        sum->n_hold[d->hold]++;
    } else {
        sum->n_deployed_by[d->agent]++;
        double cents = round(d->price * 100) - round(d->incumbent * 100);
        if (cents > 0) sum->n_up++;
        else if (cents < 0) sum->n_down++;
        else sum->n_same++;
        if (cents != 0) sum->n_seen[d->seen]++;
        sum->n_capped += d->capped;
        sum->n_above_mean += exp_nightly_above_mean(d);
        sum->n_partial += d->frac < 0.999;
        sum->n_by_model += d->by_model;
    }
}

static int nightly_agree(int st, exp_nightly_summary *sum);

/* Stage 4a, every rank (collective under MPI): each rank decides its own products, the
 * decisions gathered to rank 0 (exp_nightly_decide_gather).  status: the run's so far (agreed
 * over the ranks first).  Returns 0 or the failure (agreed; rank_lost when it was elsewhere). */
static int nightly_decide_own(nightly_run *r, int status) {
    double t = eng_now();
    int st = exp_nightly_decide_gather(r->cfg, r->h, r->res, &r->dec, &r->cand, r->sum, status);
    st = nightly_agree(st, r->sum); /* a bad record on rank 0 stops every rank */
    r->sum->sec_decide = eng_now() - t;
    return st;
}

/* Stage 4b, rank 0: count the gathered decisions (a product's failure holds it, never stops the
 * run), the exploration budget and draws over every product's candidate, the recommendations
 * and the summary text.  Reads no history.  Returns 0 or ENG_ENOMEM. */
static int nightly_decide_all(nightly_run *r) {
    const exp_nightly_cfg *cfg = r->cfg;
    exp_nightly_summary *sum = r->sum;
    const exp_results *res = r->res;
    double t = eng_now();
    sum->n_products = res->n_products;
    sum->winner = res->winner_immediate;
    for (int i = 0; i < res->n_products; i++) {
        sum->n_eval_logged += res->products[i].n_eval_logged;
        sum->n_eval_estimated += res->products[i].n_eval_estimated;
    }
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        const ope_result *o = &res->total_immediate[a];
        const ope_value *v = &o->v[o->recommended];
        sum->total_est[a] = v->available ? v->estimate : NAN;
        sum->total_lo[a] = v->available ? v->ci_low : NAN;
        sum->total_hi[a] = v->available ? v->ci_high : NAN;
    }
    r->recs = eng_calloc((size_t)res->n_products + 1, sizeof *r->recs);
    r->rdec = eng_calloc((size_t)res->n_products + 1, sizeof *r->rdec);
    if (!r->recs || !r->rdec) return ENG_ENOMEM;
    strlist failed = {0};
    for (int i = 0; i < res->n_products; i++) {
        const exp_product_result *p = &res->products[i];
        decision *d = &r->dec[i];
        if (d->failed) {
            ENG_WARN("nightly: product %s failed: %s", p->product_id, d->note);
            if (sl_push(&failed, p->product_id, strlen(p->product_id))) {
                exp_nightly_free_list(failed.v, failed.n);
                return ENG_ENOMEM;
            }
        }
        count_decision(sum, d);
        if (isfinite(d->price) && d->price > 0)
            r->rdec[r->nrec] = d, r->recs[r->nrec++] = (db_recommendation){p->product_id, cfg->date, d->price, d->incumbent,
                                                     d->hold < 0 ? exp_agent_name(d->agent) : "incumbent", d->reason,
                                                     d->uplift, d->lo, d->hi, p->price_scale > 0 ? p->price_scale : 0, 0, NULL, NULL, 1, NAN};
    }
    sum->failed = failed.v;
    sum->n_failed = failed.n;
    /* logged exploration: the budget and the draws over every product's candidate (exp_nightly_explore.c) */
    if (exp_nightly_explore_step(cfg, r->cand, r->res, r->dec, r->recs, (const decision *const *)r->rdec, r->nrec,
                                 &sum->explore))
        return ENG_ENOMEM;
    sum->sec_decide += eng_now() - t;
    if (cfg->on_decided) cfg->on_decided(cfg->decided_ctx, r->h, res, r->dec);
    if (!(r->sumtxt = eng_malloc(4096))) return ENG_ENOMEM;
    summary_text(sum, r->sumtxt, 4096);
    return ENG_OK;
}

/* Stage 5a: the report and recommendations.json into a fresh staging folder (r->staging).
 * Returns 0, ENG_EIO, ENG_ENOMEM. */
static int nightly_report(nightly_run *r) {
    const exp_nightly_cfg *cfg = r->cfg;
    exp_nightly_summary *sum = r->sum;
    int st;
    double t = eng_now();
    progress(cfg, "report", 0, 0);
    if ((st = eng_mkdir_p(cfg->out_dir))) return st;
    exp_pub_clean_stale(cfg->out_dir);
    snprintf(r->name, sizeof r->name, "%s%s", cfg->dry_run ? "dry-run-" : "", sum->run_id);
    snprintf(r->staging, sizeof r->staging, "%s/.%s.tmp.%d", cfg->out_dir, r->name, (int)getpid());
    eng_rm_rf(r->staging);
    if ((st = eng_mkdir_p(r->staging))) return st;
    /* the decisions for the decision_* columns of products.csv.gz (aligned with res->products) */
    exp_report_decision *rd = eng_calloc((size_t)r->res->n_products + 1, sizeof *rd);
    if (!rd) return ENG_ENOMEM;
    for (int i = 0; i < r->res->n_products; i++) {
        const decision *d = &r->dec[i];
        rd[i] = (exp_report_decision){d->hold < 0 ? exp_agent_name(d->agent) : "incumbent", d->reason, d->price,
                                      d->uplift, d->lo, d->hi};
    }
    st = exp_report_write_ex(r->res, rd, r->staging, &r->html, &r->json);
    free(rd);
    if (st) return st;
    char path[1400];
    snprintf(path, sizeof path, "%s/recommendations.json", r->staging);
    rec_json_ctx rc = {sum, r->recs, (const decision *const *)r->rdec, r->nrec, cfg->dry_run, cfg->gate_mode};
    if ((st = eng_atomic_write(path, write_recs_json, &rc))) return st;
    sum->sec_report = eng_now() - t;
    progress(cfg, "report", sum->n_products, sum->n_products);
    return ENG_OK;
}

/* Stage 5b: push the run row and every recommendation in one transaction (db_push).
 * Returns 0 or db_push's failure. */
static int nightly_push(nightly_run *r) {
    const exp_nightly_cfg *cfg = r->cfg;
    exp_nightly_summary *sum = r->sum;
    double t = eng_now();
    progress(cfg, "push", 0, (long)r->nrec);
    db_run run = {sum->run_id, cfg->date, "finished", r->cjson, sum->n_products, sum->n_up + sum->n_down,
                  sum->n_products - sum->n_up - sum->n_down, (int)sum->n_rejected_rows, r->sumtxt, 0, 0, NAN, NAN};
    if (sum->explore.on) {
        run.has_explore = 1;
        run.n_explored = sum->explore.n_explored;
        run.explore_cost = sum->explore.cost;
        run.explore_cost_share = sum->explore.cost_share;
    }
    db_push_opts po;
    db_push_opts_default(&po);
    po.before_commit = cfg->before_commit;
    po.ctx = cfg->hook_ctx;
    po.lock = r->lock;
    po.attempt = r->attempt;
    po.rejects = &r->rep;
    int st = db_push(r->conn, &run, r->recs, r->nrec, &po);
    if (st) return st;
    r->run_opened = 0; /* finished */
    r->pushed = 1;
    sum->sec_push = eng_now() - t;
    progress(cfg, "push", (long)r->nrec, (long)r->nrec);
    return ENG_OK;
}

/* Record the failure `msg` of the open run: on the run's connection while it answers, else on
 * a fresh one (a terminated backend, a restarted server), retried with backoff.  A finished row
 * of an earlier attempt is left as it was (db_run_fail_attempt).  Logs when it cannot. */
static void record_failure(nightly_run *r, const char *msg) {
    const char *id = r->sum->run_id;
    if (PQstatus(r->conn) == CONNECTION_OK && db_run_fail_attempt(r->conn, id, r->attempt, msg) == ENG_OK) return;
    ENG_WARN("nightly: the run's connection is gone (%s); recording the failure on a new connection", eng_err_msg());
    PGconn *c = NULL;
    int st = db_connect_retry(&c, r->conn, r->cfg->conninfo, EXP_NIGHTLY_FAIL_TRIES, EXP_NIGHTLY_FAIL_BACKOFF_S);
    if (!st) st = db_run_fail_attempt(c, id, r->attempt, msg);
    if (st) ENG_ERROR("nightly: could not mark run %s failed: %s", id, eng_err_msg());
    db_disconnect(c);
}

/* Mark a failed run (st != 0) in the database (record_failure), release the run lock, remove
 * the staging folder, fill the summary's status / timings and free everything r owns. */
static void nightly_cleanup(nightly_run *r, int st) {
    exp_nightly_summary *sum = r->sum;
    if (st && r->conn && r->run_opened) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", eng_err_msg());
        record_failure(r, msg);
        eng_err_set(st, "%s", msg);
    }
    db_runlock_release(r->lock); /* after the outcome is recorded: the row is never 'running' unlocked */
    r->lock = NULL;
    if (r->staging[0]) eng_rm_rf(r->staging);
    sum->status = st;
    sum->peak_rss = eng_peak_rss();
    if (!sum->sec_total) sum->sec_total = eng_now() - r->t0;
    free(r->html);
    free(r->json);
    free(r->sumtxt);
    free(r->recs);
    free(r->dec);
    free(r->cand);
    free(r->rdec);
    free(r->ctext);
    free(r->cjson);
    exp_results_free(r->res);
    db_history_free(r->h);
    db_load_report_free(&r->rep);
    if (r->own) db_disconnect(r->own);
    exp_nightly_watch_stop();
}

/* 1 when the current error names another rank ("rank R: ..." from eng_par_agree). */
static int failed_elsewhere(void) {
    int r = -1;
    return sscanf(eng_err_msg(), "rank %d:", &r) == 1 && r != eng_par_rank();
}

/* MPI: every rank passes its status; returns the first failing rank's (its message "rank R:
 * ...", rank_lost set when that is another rank or none answered).  One process: st. */
static int nightly_agree(int st, exp_nightly_summary *sum) {
    if (sum->n_ranks <= 1) return st;
    int all = eng_par_agree(st);
    if (all && (!st || eng_par_broken() || failed_elsewhere())) sum->rank_lost = 1;
    return all;
}

int exp_nightly_run(const exp_nightly_cfg *cfg, exp_nightly_summary *sum) {
    memset(sum, 0, sizeof *sum);
    nightly_run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.sum = sum;
    r.conn = cfg->conn;
    r.t0 = eng_now();
    (void)eng_backend_cpu(); /* OpenBLAS at one thread outside the engine's GEMMs (eng_backend_cpu.c threads_init) */
    const int asym0 = feat_demand_asym(); /* put back on return: the setting is this night's */
    feat_demand_set_asym(cfg->compare.demand_asym); /* the one demand model's reference form */
    sum->n_ranks = eng_par_size();
    eng_stage_reset();
    int st = nightly_prepare(&r);
    eng_stage_mark sm = eng_stage_begin();
    if (!st) st = nightly_load(&r);
    eng_stage_end("load", sm);
    if (!st && r.run_opened && sum->n_ranks > 1 && exp_nightly_watch_start(cfg->conninfo, sum->run_id, r.attempt))
        ENG_WARN("nightly: %s; a launcher's SIGTERM would leave the run row 'running'", eng_err_msg());
    sm = eng_stage_begin();
    st = nightly_agree(st, sum);            /* MPI: every rank loaded, or the run stops */
    eng_stage_end("agree", sm);
    sm = eng_stage_begin();
    if (!st) st = exp_nightly_pool_cfg(cfg, r.h, &r.pcfg), r.cfg = &r.pcfg; /* every rank (collective) */
    if (!st && cfg->window_carryover_days > 0) /* the window by the night's carry-over test (collective) */
        st = exp_nightly_window_pick(cfg, &r.pcfg, r.conn, &r.h, &r.rep, sum);
    eng_stage_end("pool", sm);
    sm = eng_stage_begin();
    if (!st) st = nightly_compare(&r);      /* under MPI: ends with every rank's products on rank 0 */
    eng_stage_end("compare", sm);
    /* MPI: collective, failed or not: every rank gets here (the comparison's exchanges end
     * together; only rank 0 works after them) unless an exchange broke (a rank lost: skip) */
    if (sum->n_ranks > 1 && !eng_par_broken()) exp_nightly_stage_report("to the gather", 0);
    if (st && sum->n_ranks > 1 && (eng_par_broken() || failed_elsewhere())) sum->rank_lost = 1;
    sm = eng_stage_begin();
    if (!eng_par_broken()) st = nightly_decide_own(&r, st); /* every rank: its own products */
    if (!st && eng_par_rank() != 0) { /* MPI: the other ranks are done */
        eng_stage_end("decide", sm);
        nightly_cleanup(&r, st);
        feat_demand_set_asym(asym0);
        return st;
    }
    if (!st) st = nightly_decide_all(&r); /* rank 0: the gathered decisions */
    eng_stage_end("decide", sm);
    sm = eng_stage_begin();
    if (!st) st = nightly_report(&r);
    eng_stage_end("report", sm);
    sm = eng_stage_begin();
    if (!st && !cfg->dry_run) st = nightly_push(&r);
    eng_stage_end("push", sm);
    if (!st) {
        st = exp_pub_publish(cfg->out_dir, r.staging, r.name, r.attempt, cfg->publish_hook, cfg->hook_ctx,
                             sum->report_dir, sizeof sum->report_dir);
        if (st && r.pushed) { /* the run is finished in the database: report, do not fail it */
            ENG_ERROR("nightly: run %s is pushed and finished, but its report was not published: %s", sum->run_id,
                      eng_err_msg());
            sum->report_dir[0] = '\0';
            st = ENG_OK;
        }
    }
    if (!st) {
        r.staging[0] = '\0';
        if (r.ckpt_used) exp_nightly_ckpt_prune(cfg->ckpt_dir, cfg->date, r.ckpt_src_date, cfg->ckpt_keep);
        sum->sec_total = eng_now() - r.t0;
        ENG_INFO("nightly: %s", r.sumtxt);
        exp_nightly_stage_report("of the night", 1); /* this process (rank 0) only */
    }
    nightly_cleanup(&r, st);
    feat_demand_set_asym(asym0);
    return st;
}
