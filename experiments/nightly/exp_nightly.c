/* exp_nightly.c - the nightly pricing run (see exp_nightly.h, docs/nightly.md): load, compare,
 * decide per product, report, push in one transaction, publish the report. */
#include "exp_nightly.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "db_conn.h"
#include "db_load.h"
#include "db_push.h"
#include "eng_backend.h"
#include "eng_util.h"
#include "env_action.h"
#include "exp_report.h"

static const char *hold_names[EXP_HOLD_COUNT] = {
    "hold:no_significant_uplift", "hold:diverged", "hold:short_history", "hold:poor_overlap", "hold:failed",
    "hold:no_estimate",
};

const char *exp_hold_reason_name(exp_hold_reason r) {
    return (int)r >= 0 && r < EXP_HOLD_COUNT ? hold_names[r] : NULL;
}

exp_nightly_cfg exp_nightly_default(void) {
    exp_nightly_cfg c;
    memset(&c, 0, sizeof c);
    c.date = 0;
    c.window_days = 365;
    c.min_periods = 8;
    c.out_dir = "out/nightly";
    c.ckpt_dir = "out/ckpt";
    c.device = "auto";
    c.compare = exp_compare_default();
    return c;
}

void exp_nightly_summary_free(exp_nightly_summary *s) {
    if (!s) return;
    exp_nightly_free_list(s->failed, s->n_failed);
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
    case ENG_EINVAL:
    case ENG_ENOTFOUND:
    case ENG_EFORMAT:
    case ENG_EDEVICE: return 2;
    case ENG_EDB: return 3;
    default: return 1;
    }
}

/* ---- dates (proleptic Gregorian, days since 1970-01-01) ---------------------------------- */
static int32_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const int yoe = y - era * 400;
    const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

int exp_date_parse(const char *s, int32_t *day) {
    int y, m, d, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] != '\0' || m < 1 || m > 12 || d < 1 || d > 31)
        return eng_err_set(ENG_EINVAL, "date '%s': expected YYYY-MM-DD", s ? s : "(null)");
    int32_t v = days_from_civil(y, m, d);
    char back[16];
    exp_date_format(v, back);
    if (strcmp(back, s) != 0) return eng_err_set(ENG_EINVAL, "date '%s' does not exist", s);
    *day = v;
    return ENG_OK;
}

void exp_date_format(int32_t day, char buf[16]) {
    int z = day + 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const int doe = z - era * 146097;
    const int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int mp = (5 * doy + 2) / 153;
    const int d = doy - (153 * mp + 2) / 5 + 1;
    const int m = mp + (mp < 10 ? 3 : -9);
    const int y = yoe + era * 400 + (m <= 2);
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", y, m, d);
    snprintf(buf, 16, "%.15s", tmp);
}

void exp_nightly_run_id(int32_t date, const char *config_text, char buf[64]) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)(config_text ? config_text : ""); *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    char d[16];
    exp_date_format(date, d);
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

/* All product ids of the database (for pattern matching). */
static int all_products(PGconn *conn, strlist *ids) {
    PGresult *r = PQexecParams(conn, "SELECT product_id FROM products ORDER BY product_id", 0, NULL, NULL, NULL, NULL, 0);
    int st = ENG_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char msg[1024];
        st = eng_err_set(ENG_EDB, "listing products: %s", db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
    }
    for (int i = 0; !st && i < PQntuples(r); i++) st = sl_push(ids, PQgetvalue(r, i, 0), strlen(PQgetvalue(r, i, 0)));
    PQclear(r);
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

/* ---- files -------------------------------------------------------------------------------- */
static int mkdir_p(const char *path) {
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return eng_err_set(ENG_EINVAL, "path too long: %s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return eng_err_set(ENG_EIO, "mkdir %s: %s", tmp, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return ENG_OK;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* Remove staging / old folders (".<name>.tmp.<pid>", ".<name>.old.<pid>") left by runs that
 * were killed: the pid is no longer alive. */
static void clean_stale(const char *out_dir) {
    DIR *d = opendir(out_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.' || (!strstr(e->d_name, ".tmp.") && !strstr(e->d_name, ".old."))) continue;
        const char *dot = strrchr(e->d_name, '.');
        long pid = dot ? strtol(dot + 1, NULL, 10) : 0;
        if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
        ENG_DEBUG("nightly: removing %s left by an interrupted run", p);
        rm_rf(p);
    }
    closedir(d);
}

/* Move the staging folder to out_dir/name (replacing an older one) and point out_dir/latest
 * at it.  The real name always holds a complete report: the old one until the rename. */
static int publish(const char *out_dir, const char *staging, const char *name, char *final_out, size_t n) {
    char fin[1200], old[1300], lnk[1300], lnk_tmp[1300];
    snprintf(fin, sizeof fin, "%s/%s", out_dir, name);
    snprintf(old, sizeof old, "%s/.%s.old.%d", out_dir, name, (int)getpid());
    struct stat sb;
    int had_old = 0;
    if (lstat(fin, &sb) == 0) {
        if (rename(fin, old) != 0) return eng_err_set(ENG_EIO, "rename %s: %s", fin, strerror(errno));
        had_old = 1;
    }
    if (rename(staging, fin) != 0) {
        int e = errno;
        if (had_old) rename(old, fin);
        return eng_err_set(ENG_EIO, "rename %s -> %s: %s", staging, fin, strerror(e));
    }
    if (had_old) rm_rf(old);
    snprintf(lnk, sizeof lnk, "%s/latest", out_dir);
    snprintf(lnk_tmp, sizeof lnk_tmp, "%s/.latest.tmp.%d", out_dir, (int)getpid());
    unlink(lnk_tmp);
    if (symlink(name, lnk_tmp) != 0 || rename(lnk_tmp, lnk) != 0) {
        unlink(lnk_tmp);
        ENG_WARN("nightly: could not update %s: %s", lnk, strerror(errno));
    }
    snprintf(final_out, n, "%s", fin);
    return ENG_OK;
}

/* ---- decision ------------------------------------------------------------------------------- */
typedef exp_nightly_decision decision;

static const exp_agent candidates[] = {EXP_AGENT_FIXED, EXP_AGENT_LINUCB, EXP_AGENT_DQN, EXP_AGENT_DDPG};

/* A held price is the incumbent, exactly (the same double, so the same decimal is pushed), unless
 * a hard bound (min/max price, change limit, margin floor) moved it: rounding to a whole cent or
 * the 0.01 floor alone never changes a held price. */
static void hold_exact(decision *d) {
    if (d->guard & ~(uint32_t)(ENV_GR_ROUNDED | ENV_GR_ROUND_SKIPPED | ENV_GR_MIN_TICK)) return;
    d->price = d->incumbent;
    d->guard = 0;
}

int exp_nightly_decide(const exp_nightly_cfg *cfg, const db_history *h, const exp_product_result *pr, decision *d) {
    memset(d, 0, sizeof *d);
    d->hold = EXP_HOLD_NO_UPLIFT;
    d->agent = EXP_AGENT_HISTORY;
    d->uplift = d->lo = d->hi = NAN;
    d->incumbent = pr->incumbent_price;
    if (cfg->fault_product && pr->product_id && !strcmp(cfg->fault_product, pr->product_id))
        return eng_err_set(ENG_EINVAL, "injected failure (test hook fault_product)");
    if (pr->index < 0 || pr->index >= h->n_products)
        return eng_err_set(ENG_EINVAL, "product index %d outside the history", pr->index);
    if (!(isfinite(d->incumbent) && d->incumbent > 0))
        return eng_err_set(ENG_EINVAL, "no valid incumbent price");
    double candidate = d->incumbent;
    if (pr->status == EXP_FAILED) {
        d->failed = 1;
        d->hold = EXP_HOLD_FAILED;
        snprintf(d->note, sizeof d->note, "%s", pr->note[0] ? pr->note : "comparison failed");
    } else if (pr->status == EXP_SKIP_SHORT) {
        d->hold = EXP_HOLD_SHORT;
    } else if (pr->immediate[EXP_AGENT_HISTORY].n <= 0) {
        d->hold = EXP_HOLD_NO_ESTIMATE; /* no evaluation rows: nothing to compare on */
    } else {
        /* the chosen agent = the highest lower bound of the SHRUNK paired uplift over the
         * incumbent (same rows); deployed when that bound is above 0 */
        int n_learn_ok = 0, n_unusable = 0, n_usable = 0;
        double best_lo = -INFINITY;
        for (size_t k = 0; k < sizeof candidates / sizeof candidates[0]; k++) {
            exp_agent a = candidates[k];
            if (pr->agent_failed & (1u << a)) continue;
            if (a != EXP_AGENT_FIXED) n_learn_ok++;
            const ope_value *v = &pr->uplift_shrunk[a];
            if (!v->available || !isfinite(v->estimate) || !isfinite(v->ci_low)) {
                n_unusable++;
                continue;
            }
            n_usable++;
            if (!(v->ci_low > 0 && v->ci_low > best_lo)) continue;
            if (!(isfinite(pr->price[a]) && pr->price[a] > 0)) continue;
            best_lo = v->ci_low;
            d->hold = -1;
            d->agent = a;
            candidate = pr->price[a];
            d->uplift = v->estimate;
            d->lo = v->ci_low;
            d->hi = isfinite(v->ci_high) ? v->ci_high : NAN;
        }
        if (d->hold >= 0) {
            if (n_learn_ok == 0) d->hold = EXP_HOLD_DIVERGED;
            else if (n_usable == 0 && n_unusable > 0) d->hold = EXP_HOLD_OVERLAP;
            else d->hold = EXP_HOLD_NO_UPLIFT;
        }
    }
    /* a held price keeps the incumbent unless a hard bound moves it: no re-rounding to endings */
    env_guard_cfg g_cfg = cfg->compare.guard;
    if (d->hold >= 0) g_cfg.n_endings = 0;
    env_guard_bounds b = env_guard_bounds_band(h, pr->index, d->incumbent, &cfg->compare.grid);
    int st = env_guard_apply(&g_cfg, &b, candidate, &d->price, &d->guard, NULL, NULL);
    if (st) return st;
    if (d->hold >= 0) hold_exact(d);
    char g[128] = "";
    env_guard_reason_str(d->guard, g, sizeof g);
    char head[64];
    if (d->hold < 0) snprintf(head, sizeof head, "deploy:%s", exp_agent_name(d->agent));
    else snprintf(head, sizeof head, "%s", hold_names[d->hold]);
    snprintf(d->reason, sizeof d->reason, "%s%s%s", head, g[0] ? "|" : "", g);
    return ENG_OK;
}

/* ---- report side files ------------------------------------------------------------------------ */
typedef struct rec_json_ctx {
    const exp_nightly_summary *sum;
    const db_recommendation *recs;
    size_t n;
    int dry_run;
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
    for (int k = 0; k < EXP_HOLD_COUNT; k++) json_object_object_add(holds, hold_names[k], json_object_new_int(s->n_hold[k]));
    json_object_object_add(sm, "held_by_reason", holds);
    json_object_object_add(sm, "n_skipped_short", json_object_new_int(s->n_skipped));
    json_object_object_add(sm, "n_rejected_rows", json_object_new_int64(s->n_rejected_rows));
    for (int i = 0; i < s->n_failed; i++) json_object_array_add(failed, json_object_new_string(s->failed[i]));
    json_object_object_add(sm, "failed", failed);
    json_object_object_add(sm, "winner", json_object_new_string(exp_agent_name(s->winner)));
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
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "recommendations", arr);
    const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
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

/* The configuration text the run id hashes (without paths, device or verbosity). */
static char *config_text(const exp_nightly_cfg *cfg) {
    exp_compare_cfg c = cfg->compare;
    c.ckpt_dir = NULL;
    memset(c.device, 0, sizeof c.device);
    char *ct = exp_compare_cfg_text(&c);
    if (!ct) return NULL;
    size_t len = strlen(ct) + 256;
    for (int i = 0; i < cfg->n_products; i++) len += strlen(cfg->products[i]) + 1;
    char *t = eng_malloc(len);
    if (!t) { free(ct); return NULL; }
    size_t o = (size_t)snprintf(t, len, "%snightly.window_days = %d\nnightly.min_periods = %d\nproducts = ", ct,
                                cfg->window_days, cfg->min_periods);
    if (!cfg->products) o += (size_t)snprintf(t + o, len - o, "*");
    for (int i = 0; i < cfg->n_products; i++) o += (size_t)snprintf(t + o, len - o, "%s%s", i ? "," : "", cfg->products[i]);
    snprintf(t + o, len - o, "\n");
    free(ct);
    return t;
}

/* JSON stored in pricing_runs.config. */
static char *config_json(const exp_nightly_cfg *cfg, const char *text, const char *run_id) {
    json_object *o = json_object_new_object();
    char d[16];
    exp_date_format(cfg->date, d);
    json_object_object_add(o, "run_id", json_object_new_string(run_id));
    json_object_object_add(o, "date", json_object_new_string(d));
    json_object_object_add(o, "window_days", json_object_new_int(cfg->window_days));
    json_object_object_add(o, "n_products_requested", json_object_new_int(cfg->products ? cfg->n_products : -1));
    json_object_object_add(o, "device", json_object_new_string(cfg->device ? cfg->device : "auto"));
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
        if (s->n_hold[k]) o += (size_t)snprintf(buf + o, n - o, ", %s %d", hold_names[k], s->n_hold[k]);
    if (s->n_same && o < n) o += (size_t)snprintf(buf + o, n - o, ", deployed at the incumbent price %d", s->n_same);
    if (o < n) o += (size_t)snprintf(buf + o, n - o, "; skipped (short history) %d; rejected rows %lld; winner %s",
                                     s->n_skipped, (long long)s->n_rejected_rows, exp_agent_name(s->winner));
    if (s->n_failed && o < n) {
        o += (size_t)snprintf(buf + o, n - o, "; FAILED %d:", s->n_failed);
        for (int i = 0; i < s->n_failed && o + 40 < n; i++) o += (size_t)snprintf(buf + o, n - o, " %s", s->failed[i]);
    }
}

int exp_nightly_run(const exp_nightly_cfg *cfg, exp_nightly_summary *sum) {
    memset(sum, 0, sizeof *sum);
    PGconn *own = NULL, *conn = cfg->conn;
    db_history *h = NULL;
    db_load_report rep;
    memset(&rep, 0, sizeof rep);
    exp_results *res = NULL;
    db_recommendation *recs = NULL;
    decision *dec = NULL;
    char *ctext = NULL, *cjson = NULL, *html = NULL, *json = NULL, *sumtxt = NULL;
    char staging[1200] = "", from[16], to[16];
    int st = ENG_OK, run_opened = 0;
    const eng_backend *be = NULL;
    const double t0 = eng_now();
    double t;

    exp_date_format(cfg->date, sum->run_date);
    if (cfg->window_days < 0 || cfg->min_periods < 1) {
        st = eng_err_set(ENG_EINVAL, "nightly: window_days must be >= 0 and min_periods >= 1");
        goto cleanup;
    }
    if ((st = exp_compare_cfg_check(&cfg->compare))) goto cleanup;
    if ((st = env_guard_cfg_check(&cfg->compare.guard))) goto cleanup;
    if ((st = eng_backend_select(cfg->device ? cfg->device : "auto", &be))) goto cleanup;
    if (!(ctext = config_text(cfg))) { st = ENG_ENOMEM; goto cleanup; }
    exp_nightly_run_id(cfg->date, ctext, sum->run_id);
    if (!(cjson = config_json(cfg, ctext, sum->run_id))) { st = ENG_ENOMEM; goto cleanup; }

    /* 1. connect, open the run, load */
    if (!conn) {
        if ((st = db_resolve(&own, cfg->conninfo))) goto cleanup;
        conn = own;
    }
    ENG_INFO("nightly: run %s on %s%s", sum->run_id, db_describe(conn), cfg->dry_run ? " (dry run: no database writes)" : "");
    if (!cfg->dry_run) {
        if ((st = db_run_open(conn, sum->run_id, cfg->date, cjson))) goto cleanup;
        run_opened = 1;
    }
    progress(cfg, "load", 0, 0);
    t = eng_now();
    db_load_opts lo;
    db_load_opts_default(&lo);
    exp_date_format(cfg->date - 1, to);
    exp_date_format(cfg->date - cfg->window_days, from);
    lo.from = cfg->window_days > 0 ? from : NULL;
    lo.to = to;
    lo.products = cfg->products;
    lo.n_filter = cfg->products ? cfg->n_products : 0;
    lo.min_periods = cfg->min_periods;
    lo.run_id = cfg->dry_run ? NULL : sum->run_id;
    if ((st = db_load_history(conn, &lo, &h, &rep))) goto cleanup;
    sum->n_rejected_rows = rep.n_rejected;
    sum->n_skipped = rep.n_skipped;
    sum->sec_load = eng_now() - t;
    ENG_INFO("nightly: loaded %d products x %d periods (%s .. %s) in %.1f s; %lld rows rejected, %d products with too "
             "little history",
             h->n_products, h->n_periods, lo.from ? lo.from : "start", to, sum->sec_load, (long long)rep.n_rejected,
             rep.n_skipped);
    progress(cfg, "load", h->n_products, h->n_products);
    if (h->n_products == 0) {
        st = eng_err_set(ENG_EINVAL, "nightly: no product has %d clean periods in the window %s .. %s", cfg->min_periods,
                         lo.from ? lo.from : "start", to);
        goto cleanup;
    }

    /* 2 + 3. features, training (warm start), OPE */
    exp_compare_cfg cc = cfg->compare;
    char ckpt[1024] = "";
    if (cfg->ckpt_dir && cfg->ckpt_dir[0]) {
        snprintf(ckpt, sizeof ckpt, "%s", cfg->ckpt_dir);
        if ((st = mkdir_p(ckpt))) goto cleanup;
        cc.ckpt_dir = ckpt;
    } else {
        cc.ckpt_dir = NULL;
    }
    snprintf(cc.device, sizeof cc.device, "%s", cfg->device ? cfg->device : "auto");
    prog_relay pr = {cfg};
    t = eng_now();
    if ((st = exp_compare_run(h, &cc, be, relay, &pr, &res))) goto cleanup;
    exp_compare_last_warm(&sum->warm_loaded, &sum->warm_fresh);
    sum->sec_features = res->seconds_features;
    sum->sec_train = res->seconds_train;
    sum->sec_ope = res->seconds_ope;
    if (sum->sec_features + sum->sec_train + sum->sec_ope <= 0) sum->sec_train = eng_now() - t;
    res->seconds_load = sum->sec_load;
    if (!res->run_id || strcmp(res->run_id, sum->run_id) != 0) {
        free(res->run_id);
        if (!(res->run_id = strdup(sum->run_id))) { st = eng_err_set(ENG_ENOMEM, "out of memory"); goto cleanup; }
    }
    free(res->run_date);
    if (!(res->run_date = strdup(sum->run_date))) { st = eng_err_set(ENG_ENOMEM, "out of memory"); goto cleanup; }

    /* 4. decisions */
    t = eng_now();
    sum->n_products = res->n_products;
    sum->winner = res->winner_immediate;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        const ope_result *o = &res->total_immediate[a];
        const ope_value *v = &o->v[o->recommended];
        sum->total_est[a] = v->available ? v->estimate : NAN;
        sum->total_lo[a] = v->available ? v->ci_low : NAN;
        sum->total_hi[a] = v->available ? v->ci_high : NAN;
    }
    recs = eng_calloc((size_t)res->n_products + 1, sizeof *recs);
    dec = eng_calloc((size_t)res->n_products + 1, sizeof *dec);
    if (!recs || !dec) { st = ENG_ENOMEM; goto cleanup; }
    strlist failed = {0};
    size_t nrec = 0;
    for (int i = 0; i < res->n_products; i++) {
        const exp_product_result *p = &res->products[i];
        decision *d = &dec[i];
        int pst = exp_nightly_decide(cfg, h, p, d);
        if (pst) { /* a failure of this product only: hold it at its guarded incumbent if possible */
            char why[256];
            snprintf(why, sizeof why, "%s", eng_err_msg());
            memset(d, 0, sizeof *d);
            d->failed = 1;
            d->hold = EXP_HOLD_FAILED;
            d->incumbent = p->incumbent_price;
            d->uplift = d->lo = d->hi = NAN;
            snprintf(d->note, sizeof d->note, "%.180s", why);
            d->price = NAN;
            if (isfinite(d->incumbent) && d->incumbent > 0 && p->index >= 0 && p->index < h->n_products) {
                env_guard_cfg g_cfg = cfg->compare.guard;
                g_cfg.n_endings = 0;
                env_guard_bounds b = env_guard_bounds_of(h, p->index, d->incumbent);
                if (env_guard_apply(&g_cfg, &b, d->incumbent, &d->price, &d->guard, NULL, NULL)) d->price = NAN;
                else hold_exact(d);
            }
            char g[128] = "";
            env_guard_reason_str(d->guard, g, sizeof g);
            snprintf(d->reason, sizeof d->reason, "hold:failed%s%s", g[0] ? "|" : "", g);
        }
        if (d->failed) {
            ENG_WARN("nightly: product %s failed: %s", p->product_id, d->note);
            if (sl_push(&failed, p->product_id, strlen(p->product_id))) {
                exp_nightly_free_list(failed.v, failed.n);
                st = ENG_ENOMEM;
                goto cleanup;
            }
        }
        if (d->hold >= 0) {
            sum->n_held++;
            sum->n_hold[d->hold]++;
        } else {
            sum->n_deployed_by[d->agent]++;
            double cents = round(d->price * 100) - round(d->incumbent * 100);
            if (cents > 0) sum->n_up++;
            else if (cents < 0) sum->n_down++;
            else sum->n_same++;
        }
        if (isfinite(d->price) && d->price > 0)
            recs[nrec++] = (db_recommendation){p->product_id, cfg->date, d->price, d->incumbent,
                                               d->hold < 0 ? exp_agent_name(d->agent) : "incumbent", d->reason,
                                               d->uplift, d->lo, d->hi, p->price_scale > 0 ? p->price_scale : 0};
        if ((i + 1) % 1024 == 0 || i + 1 == res->n_products) progress(cfg, "decide", i + 1, res->n_products);
    }
    sum->failed = failed.v;
    sum->n_failed = failed.n;
    sum->sec_decide = eng_now() - t;
    if (!(sumtxt = eng_malloc(4096))) { st = ENG_ENOMEM; goto cleanup; }
    summary_text(sum, sumtxt, 4096);

    /* 5. report into a staging folder, push, publish */
    t = eng_now();
    progress(cfg, "report", 0, 0);
    if ((st = mkdir_p(cfg->out_dir))) goto cleanup;
    clean_stale(cfg->out_dir);
    char name[128];
    snprintf(name, sizeof name, "%s%s", cfg->dry_run ? "dry-run-" : "", sum->run_id);
    snprintf(staging, sizeof staging, "%s/.%s.tmp.%d", cfg->out_dir, name, (int)getpid());
    rm_rf(staging);
    if ((st = mkdir_p(staging))) goto cleanup;
    if ((st = exp_report_write(res, staging, &html, &json))) goto cleanup;
    char path[1400];
    snprintf(path, sizeof path, "%s/recommendations.json", staging);
    rec_json_ctx rc = {sum, recs, nrec, cfg->dry_run};
    if ((st = eng_atomic_write(path, write_recs_json, &rc))) goto cleanup;
    sum->sec_report = eng_now() - t;

    if (!cfg->dry_run) {
        t = eng_now();
        progress(cfg, "push", 0, (long)nrec);
        db_run run = {sum->run_id, cfg->date, "finished", cjson, sum->n_products, sum->n_up + sum->n_down,
                      sum->n_products - sum->n_up - sum->n_down, (int)sum->n_rejected_rows, sumtxt};
        db_push_opts po;
        db_push_opts_default(&po);
        po.before_commit = cfg->before_commit;
        po.ctx = cfg->hook_ctx;
        if ((st = db_push(conn, &run, recs, nrec, &po))) goto cleanup;
        run_opened = 0; /* finished */
        sum->sec_push = eng_now() - t;
        progress(cfg, "push", (long)nrec, (long)nrec);
    }
    if ((st = publish(cfg->out_dir, staging, name, sum->report_dir, sizeof sum->report_dir))) goto cleanup;
    staging[0] = '\0';
    sum->sec_total = eng_now() - t0;
    ENG_INFO("nightly: %s", sumtxt);

cleanup:
    if (st && conn && run_opened) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", eng_err_msg());
        int keep = st;
        if (PQstatus(conn) == CONNECTION_OK && db_run_fail(conn, sum->run_id, msg) != ENG_OK)
            ENG_WARN("nightly: could not mark run %s failed", sum->run_id);
        eng_err_set(keep, "%s", msg);
    }
    if (staging[0]) rm_rf(staging);
    sum->status = st;
    sum->peak_rss = eng_peak_rss();
    if (!sum->sec_total) sum->sec_total = eng_now() - t0;
    free(html);
    free(json);
    free(sumtxt);
    free(recs);
    free(dec);
    free(ctext);
    free(cjson);
    exp_results_free(res);
    db_history_free(h);
    db_load_report_free(&rep);
    if (own) db_disconnect(own);
    return st;
}
