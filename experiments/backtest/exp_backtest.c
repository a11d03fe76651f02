/* exp_backtest.c - one backtest run: simulate, import, nightly, capture (exp_backtest.h). The
 * valuation under the truth, the tables and the JSON are in exp_backtest_value.c. */
#include "eng_date.h"
#include "exp_backtest_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_conn.h"
#include "db_import.h"
#include "db_schema.h"
#include "exp_nightly.h"
#include "env_action.h"
#include "feat_demand.h"


void exp_bt_gate_apply(const exp_bt_cfg *cfg, struct exp_nightly_cfg *nc) {
    nc->gate_mode = cfg->gate_mode;
    nc->gate_level = (float)cfg->gate_level;
    nc->gate_extend = cfg->gate_extend;
    nc->gate_standing = cfg->gate_standing;
    nc->gate_model_dir = cfg->gate_model_dir;
    nc->gate_plan = cfg->gate_plan;
    nc->gate_cut_standing = cfg->gate_cut_standing;
    nc->gate_plan_nights = cfg->gate_plan_nights;
    nc->gate_plan_paths = cfg->gate_plan_paths;
    nc->gate_plan_model = cfg->gate_plan_model;
    nc->gate_plan_gamma = (float)cfg->gate_plan_gamma;
    nc->gate_select = (float)cfg->gate_select;
    nc->gate_support_widen = (float)cfg->gate_support_widen;
    nc->gate_min_gain = (float)cfg->gate_min_gain;
    nc->window_carryover_days = cfg->window_carryover_days;
    nc->window_carryover_share = (float)cfg->window_carryover_share;
}

exp_bt_cfg exp_bt_default(void) {
    exp_bt_cfg c;
    memset(&c, 0, sizeof c);
    c.n_products = 300;
    c.n_days = 120;
    c.seed = 1;
    c.n_seeds = 1;
    c.n_families = 3;
    c.families[0] = ENV_SIM_FAMILY_LOGIT;
    c.families[1] = ENV_SIM_FAMILY_CE;
    c.families[2] = ENV_SIM_FAMILY_REF;
    c.misset_lo = 0.70;
    c.misset_hi = 1.35;
    c.max_change_pct = 15;
    c.traffic_scale = 1;
    c.promo_lift_lo = 0.4;
    c.promo_lift_hi = 0.9;
    c.like_periods = -1;
    c.out_dir = "out/backtest";
    c.device = "auto";
    exp_nightly_cfg n = exp_nightly_default();
    c.gate_mode = n.gate_mode;
    c.gate_level = n.gate_level;
    c.gate_extend = n.gate_extend;
    c.gate_standing = n.gate_standing;
    c.gate_model_dir = n.gate_model_dir;
    c.gate_plan = n.gate_plan;
    c.gate_cut_standing = n.gate_cut_standing;
    c.gate_plan_nights = n.gate_plan_nights;
    c.gate_plan_paths = n.gate_plan_paths;
    c.gate_plan_model = n.gate_plan_model;
    c.gate_plan_gamma = n.gate_plan_gamma;
    c.gate_select = n.gate_select;
    c.gate_support_widen = n.gate_support_widen;
    c.gate_min_gain = n.gate_min_gain;
    c.window_carryover_days = n.window_carryover_days;
    c.window_carryover_share = n.window_carryover_share;
    exp_compare_cfg_free(&n.compare);
    return c;
}

void exp_bt_result_free(exp_bt_result *r) {
    if (!r) return;
    free(r->runs);
    r->runs = NULL;
    r->n_runs = 0;
}

/* ---- CSV files of the history, in the layout `rlprice import` reads ------------------------ */
typedef struct csv_ctx {
    const exp_bt_cfg *cfg;
    const db_history *h;
    int n_days;
} csv_ctx;

static void day_str(int32_t day, char buf[16]) { eng_date_format(day, buf); }

/* products.csv: wide hard bounds, the change limit of the backtest. 0 or ENG_EIO. */
static int write_products(FILE *f, void *vctx) {
    const csv_ctx *c = vctx;
    fprintf(f, "product_id,name,base_price,unit_cost,min_price,max_price,max_change_pct,category\n");
    for (int i = 0; i < c->h->n_products; i++) {
        double p0 = c->h->base_price[i];
        fprintf(f, "%s,%s,%.2f,%.2f,%.2f,%.2f,%g,backtest\n", c->h->product_id[i], c->h->name[i], p0,
                c->h->unit_cost[i], round(p0 * 50) / 100, round(p0 * 200) / 100, c->cfg->max_change_pct);
    }
    return ferror(f) ? ENG_EIO : ENG_OK;
}

/* sales.csv: the first n_days periods; prices in whole cents, revenue = units x that price. */
static int write_sales(FILE *f, void *vctx) {
    const csv_ctx *c = vctx;
    const db_history *h = c->h;
    fprintf(f, "product_id,day,price,units,revenue,traffic,promo\n");
    for (int i = 0; i < h->n_products; i++)
        for (int t = 0; t < c->n_days; t++) {
            size_t k = (size_t)i * h->n_periods + t;
            char d[16];
            day_str(h->day0 + t * h->period_days, d);
            double p = round(h->price[k] * 100) / 100;
            fprintf(f, "%s,%s,%.2f,%.0f,%.2f,%.0f,%s\n", h->product_id[i], d, p, h->units[k], p * h->units[k],
                    h->traffic[k], h->promo[k] ? "true" : "false");
        }
    return ferror(f) ? ENG_EIO : ENG_OK;
}

static int write_comp(FILE *f, void *vctx) {
    const csv_ctx *c = vctx;
    const db_history *h = c->h;
    fprintf(f, "product_id,day,competitor,price\n");
    for (int i = 0; i < h->n_products; i++)
        for (int t = 0; t < c->n_days; t++) {
            size_t k = (size_t)i * h->n_periods + t;
            char d[16];
            day_str(h->day0 + t * h->period_days, d);
            for (int64_t o = h->comp_off[k]; o < h->comp_off[k + 1]; o++)
                fprintf(f, "%s,%s,%s,%.2f\n", h->product_id[i], d, h->competitor_names[h->comp_id[o]], h->comp_price[o]);
        }
    return ferror(f) ? ENG_EIO : ENG_OK;
}

int bt_write_import(PGconn *c, const char *dir, const char *table, const char *suffix,
                    int (*writer)(FILE *, void *), void *ctx, long *rows) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s%s", dir, table, suffix);
    int st = eng_atomic_write(path, writer, ctx);
    if (st) return st;
    db_import_opts o;
    memset(&o, 0, sizeof o);
    o.table = table;
    o.strict = 1;
    db_import_report r;
    memset(&r, 0, sizeof r);
    st = db_import_csv(c, path, &o, &r);
    if (rows) *rows = r.inserted + r.updated;
    db_import_report_free(&r);
    unlink(path);
    return st;
}

static int write_text(FILE *f, void *ctx) {
    fputs((const char *)ctx, f);
    fputc('\n', f);
    return ferror(f) ? ENG_EIO : ENG_OK;
}

int bt_write_json_doc(const char *path, json_object *root) {
    const char *s = root ? json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY) : NULL;
    int st = s ? eng_atomic_write(path, write_text, (void *)s) : ENG_ENOMEM;
    json_object_put(root);
    return st;
}

int bt_import_history(PGconn *c, const char *dir, const exp_bt_cfg *cfg, const db_history *h, int n_days) {
    const csv_ctx ctx = {cfg, h, n_days}, *cc = &ctx;
    static const char *const tables[3] = {"products", "sales", "competitor_prices"};
    int (*writers[3])(FILE *, void *) = {write_products, write_sales, write_comp};
    for (int k = 0; k < 3; k++) {
        int st = bt_write_import(c, dir, tables[k], ".csv", writers[k], (void *)cc, NULL);
        if (st) return st;
    }
    return ENG_OK;
}

/* ---- capture of the night's prices (the nightly's on_decided hook) ------------------------ */
typedef struct capture_ctx {
    const exp_bt_cfg *cfg;
    bt_prod *prod;      /* [n_products] by simulated index */
    int n_products;
    env_guard_cfg guard;
    exp_gate_cfg gate;  /* the nightly's gate settings (mode and level replaced per variant) */
    int called;
} capture_ctx;

/* The gate variant k's price for product pr: exp_gate_pick at the variant's mode and level with
 * the nightly's other settings (fit: the product's demand model, or NULL). */
static double gate_price(const capture_ctx *cc, const db_history *h, const exp_product_result *pr,
                         const exp_gate_fit *fit, int k) {
    exp_gate_cfg g = cc->gate;
    g.mode = k / EXP_BT_N_LEVELS;
    g.level = exp_bt_gate_level[k % EXP_BT_N_LEVELS];
    if (!((pr->status == EXP_OK || pr->status == EXP_DIVERGED) && pr->immediate[EXP_AGENT_HISTORY].n > 0))
        g.mode = EXP_GATE_OPE, g.level = 1 - 1e-12; /* held: the incumbent, guarded */
    exp_gate_out o;
    if (exp_gate_pick(&g, h, pr, g.mode == EXP_GATE_OPE ? NULL : fit, &o)) return NAN;
    if (!o.deploy && !(o.guard & ~(uint32_t)(ENV_GR_ROUNDED | ENV_GR_ROUND_SKIPPED | ENV_GR_MIN_TICK)))
        return pr->incumbent_price; /* held exactly, as the nightly does */
    return o.price;
}

/* The demand model's own best price for product p inside [lo, hi] (a normal period at the
 * latest competitor prices, feat_demand.h; prior: the night's pooled slope prior, or none);
 * rows: scratch of h->n_periods rows.  NaN: no model. */
static double model_price(const db_history *h, int p, double inc, double lo, double hi, const feat_demand_prior *prior,
                          feat_demand_row *rows) {
    size_t n = 0;
    feat_demand_ctx now;
    feat_demand m;
    feat_demand_rows_history(h, p, inc, inc, rows, &n, &now);
    if (feat_demand_fit_prior(&m, rows, n, inc, -1, prior) || !m.ok) {
        eng_err_clear();
        return NAN;
    }
    double bp = NAN, bv = -INFINITY;
    for (int k = 0; k <= 400; k++) {
        double c = round((lo + (hi - lo) * k / 400.0) * 100) / 100, v = feat_demand_rate(&m, c, &now, 0, NULL);
        if (c >= lo - 1e-9 && c <= hi + 1e-9 && v > bv) bv = v, bp = c;
    }
    return bp;
}

static void on_decided(void *vctx, const db_history *h, const exp_results *res, const exp_nightly_decision *d) {
    capture_ctx *cc = vctx;
    cc->called = 1;
    feat_demand_row *rows = malloc((size_t)(h->n_periods > 0 ? h->n_periods : 1) * sizeof *rows);
    const feat_demand_prior *prior = &res->demand_prior; /* the night's pooled prior, or none */
    for (int j = 0; j < res->n_products; j++) {
        const exp_product_result *pr = &res->products[j];
        int i = pr->product_id && !strncmp(pr->product_id, "SIM", 3) ? atoi(pr->product_id + 3) - 1 : -1;
        if (i < 0 || i >= cc->n_products || pr->index < 0 || pr->index >= h->n_products) continue;
        bt_prod *b = &cc->prod[i];
        b->incumbent = pr->incumbent_price;
        if (d[j].failed || !(isfinite(b->incumbent) && b->incumbent > 0)) continue;
        env_guard_cfg g = cc->guard;
        g.n_endings = 0;
        env_guard_bounds gb = env_guard_bounds_of(h, pr->index, b->incumbent);
        double tmp;
        uint32_t why = 0;
        if (env_guard_apply(&g, &gb, b->incumbent, &tmp, &why, &b->lo, &b->hi)) continue;
        for (int a = 0; a < EXP_N_AGENTS; a++) b->agent_price[a] = pr->price[a];
        b->pushed = d[j].price;
        b->deployed = d[j].hold < 0;
        b->agent = d[j].agent;
        exp_gate_fit fit;
        if (exp_gate_fit_product(h, pr->index, b->incumbent, cc->gate.reward_kind, prior, &fit)) fit.ok = 0;
        for (int k = 0; k < EXP_BT_N_GATE; k++) b->gate_price[k] = gate_price(cc, h, pr, &fit, k);
        b->model = rows ? model_price(h, pr->index, b->incumbent, b->lo, b->hi, prior, rows) : NAN;
        b->valid = 1;
    }
    free(rows);
}

/* ---- one run ---------------------------------------------------------------------------------- */
int bt_mkdir_p(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) && errno != EEXIST) return eng_err_set(ENG_EIO, "mkdir %s: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) return eng_err_set(ENG_EIO, "mkdir %s: %s", buf, strerror(errno));
    return ENG_OK;
}

/* The nightly on connection c for the simulated products; fills cc via the hook. */
static int run_nightly(const exp_bt_cfg *cfg, PGconn *c, const db_history *h, int n_days, uint64_t seed,
                       capture_ctx *cc, exp_bt_run *run) {
    exp_nightly_cfg nc = exp_nightly_default();
    exp_compare_cfg_free(&nc.compare);
    nc.compare = cfg->compare ? *cfg->compare : exp_compare_default();
    char *own_ckpt = cfg->compare ? NULL : nc.compare.ckpt_dir;
    nc.compare.ckpt_dir = NULL;
    nc.compare.seed = seed;
    nc.compare.ope.seed = seed;
    if (cfg->like_periods >= 0) nc.compare.like_periods = cfg->like_periods;
    /* whole cents unless asked: with .99/.49 endings a cheap product's allowed prices are 50 cents
     * apart (6% of a 7.99 price, inside a +-15% guard), so the best whole-cent price the run is
     * valued against is out of reach for every policy the engine prices (docs/backtest.md) */
    if (!cfg->endings) nc.compare.guard.n_endings = 0;
    cc->guard = nc.compare.guard;
    exp_bt_gate_apply(cfg, &nc);
    cc->gate = exp_nightly_gate_cfg(&nc);
    char out[1100];
    snprintf(out, sizeof out, "%s/nightly", cfg->out_dir);
    nc.conn = c;
    nc.date = h->day0 + n_days * h->period_days;
    nc.window_days = n_days * h->period_days;
    nc.products = (const char *const *)h->product_id;
    nc.n_products = h->n_products;
    nc.out_dir = out;
    nc.ckpt_dir = "";
    if (cfg->device) snprintf(nc.compare.device, sizeof nc.compare.device, "%s", cfg->device);
    nc.on_decided = on_decided;
    nc.decided_ctx = cc;
    exp_nightly_summary sum;
    double t = eng_now();
    int st = exp_nightly_run(&nc, &sum);
    run->seconds_nightly = eng_now() - t;
    for (int a = 0; a < EXP_N_AGENTS; a++) run->n_deployed_by[a] = sum.n_deployed_by[a];
    exp_nightly_summary_free(&sum);
    free(own_ckpt);
    if (!st && !cc->called) st = eng_err_set(ENG_EINVAL, "backtest: the nightly did not reach its decisions");
    return st;
}

/* The one-night run's history options (exp_backtest.h); also the ceiling tool's. */
env_sim_gen_opts exp_bt_gen_opts(const exp_bt_cfg *cfg, env_sim_family fam, uint64_t seed) {
    env_sim_gen_opts go = env_sim_gen_opts_default();
    go.family = fam;
    go.seed = seed;
    go.day0 = BT_DAY0;
    go.n_levels = 6, go.level_lo = 0.85, go.level_hi = 1.15;
    if (cfg->promo_rate > 0) { /* promotions: two deeper levels (0.73, 0.79), charged only in promotion
                                  periods with 0.85; normal periods keep the six levels 0.85 .. 1.15 */
        go.n_levels = 8, go.level_lo = 0.73;
        go.promo_rate = cfg->promo_rate;
        go.promo_lift_lo = cfg->promo_lift_lo, go.promo_lift_hi = cfg->promo_lift_hi;
        go.promo_hi = 0.86, go.normal_lo = 0.84;
    }
    go.misset_lo = cfg->misset_lo, go.misset_hi = cfg->misset_hi;
    go.traffic_scale = cfg->traffic_scale;
    return go;
}

/* Simulate, load, run the nightly and value one (family, seed) into *run. */
static int run_one(const exp_bt_cfg *cfg, PGconn *maint, env_sim_family fam, uint64_t seed, int k, exp_bt_run *run) {
    int st = ENG_OK, created = 0;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    PGconn *c = cfg->conn;
    bt_prod *prod = NULL;
    char dbname[64], dir[1100] = "";
    double t0 = eng_now();
    memset(run, 0, sizeof *run);
    run->family = fam, run->seed = seed, run->n_products = cfg->n_products, run->n_days = cfg->n_days;

    env_sim_gen_opts go = exp_bt_gen_opts(cfg, fam, seed);
    if ((st = env_sim_generate_ex(&go, cfg->n_products, cfg->n_days + 1, &h, &lg))) goto cleanup;
    if (!c) {
        snprintf(dbname, sizeof dbname, "rlprice_bt_%d_%d", (int)getpid(), k);
        if ((st = db_database_create(maint, dbname))) goto cleanup;
        created = 1;
        if ((st = db_connect_like(&c, maint, dbname)) || (st = db_schema_apply(c))) goto cleanup;
    }
    snprintf(dir, sizeof dir, "%s/.csv.%d", cfg->out_dir, (int)getpid());
    if ((st = bt_mkdir_p(dir))) goto cleanup;
    if ((st = bt_import_history(c, dir, cfg, h, cfg->n_days))) goto cleanup;
    if (!(prod = eng_calloc((size_t)cfg->n_products, sizeof *prod))) { st = ENG_ENOMEM; goto cleanup; }
    capture_ctx cc = {.cfg = cfg, .prod = prod, .n_products = cfg->n_products};
    if ((st = run_nightly(cfg, c, h, cfg->n_days, seed, &cc, run))) goto cleanup;
    st = bt_value(cfg, h, lg, prod, run);
cleanup:
    if (dir[0]) rmdir(dir);
    if (c && c != cfg->conn) db_disconnect(c);
    if (created && !cfg->keep && db_database_drop(maint, dbname)) ENG_WARN("backtest: %s", eng_err_msg());
    free(prod);
    db_history_free(h);
    env_sim_log_free(lg);
    run->seconds_total = eng_now() - t0;
    return st;
}

int exp_backtest_run(const exp_bt_cfg *cfg, exp_bt_result *out) {
    memset(out, 0, sizeof *out);
    if (cfg->n_products < 1 || cfg->n_days < 16 || cfg->n_seeds < 1 || cfg->n_families < 1 ||
        cfg->n_families > ENV_SIM_FAMILY_COUNT || !(cfg->max_change_pct > 0) || !cfg->out_dir)
        return eng_err_set(ENG_EINVAL, "backtest: need products >= 1, days >= 16, seeds >= 1, a family, "
                                       "max_change_pct > 0 and an out folder");
    int n = cfg->n_families * cfg->n_seeds, st = ENG_OK;
    PGconn *maint = NULL;
    if (!(out->runs = eng_calloc((size_t)n, sizeof *out->runs))) return ENG_ENOMEM;
    if ((st = bt_mkdir_p(cfg->out_dir))) return st;
    if (!cfg->conn && (st = db_resolve(&maint, cfg->conninfo))) return st;
    for (int f = 0; f < cfg->n_families && !st; f++)
        for (int s = 0; s < cfg->n_seeds && !st; s++) {
            uint64_t seed = cfg->seed + (uint64_t)s;
            if (cfg->verbose)
                fprintf(stderr, "backtest: family %s, seed %llu, %d products x %d days ...\n",
                        env_sim_family_name(cfg->families[f]), (unsigned long long)seed, cfg->n_products, cfg->n_days);
            st = run_one(cfg, maint, cfg->families[f], seed, out->n_runs, &out->runs[out->n_runs]);
            if (!st) out->n_runs++;
        }
    if (maint) db_disconnect(maint);
    return st;
}
