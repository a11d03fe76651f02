/* exp_backtest_loop.c - the closed loop between the simulator and the real nightly
 * (exp_backtest_loop.h).  Tables, JSON and the HTML page are in exp_backtest_loop_out.c. */
#include "exp_backtest_loop.h"

#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_conn.h"
#include "eng_stage.h"
#include "db_import.h"
#include "db_products.h"
#include "db_schema.h"
#include "eng_date.h"
#include "eng_file.h"
#include "env_action.h"
#include "exp_backtest_int.h"
#include "exp_nightly.h"

static const char *const lane_names[EXP_BTL_N_LANE] = {"engine",      "alone:dqn", "alone:ddpg", "alone:linucb",
                                                      "alone:fixed", "manual",    "oracle",     "held",
                                                      "oracle:free", "oracle:going"};
/* The agent a forced lane prices with. */
static const exp_agent lane_agent[EXP_BTL_N_LANE] = {EXP_AGENT_HISTORY, EXP_AGENT_DQN, EXP_AGENT_DDPG,
                                                     EXP_AGENT_LINUCB,  EXP_AGENT_FIXED, EXP_AGENT_HISTORY,
                                                     EXP_AGENT_HISTORY, EXP_AGENT_HISTORY, EXP_AGENT_HISTORY,
                                                     EXP_AGENT_HISTORY};

const char *exp_btl_lane_name(exp_btl_lane l) { return l >= 0 && l < EXP_BTL_N_LANE ? lane_names[l] : NULL; }
int exp_btl_lane_nightly(exp_btl_lane l) { return l >= EXP_BTL_ENGINE && l <= EXP_BTL_FIXED; }

void exp_btl_result_free(exp_btl_result *r) {
    if (!r) return;
    for (int k = 0; k < r->n_runs; k++) {
        for (int l = 0; l < EXP_BTL_N_LANE; l++) free(r->runs[k].night[l]);
        for (int a = 0; a < EXP_N_AGENTS; a++) free(r->runs[k].onestep[a]);
    }
    free(r->runs);
    r->runs = NULL;
    r->n_runs = 0;
}

/* ---- what a night decided (the nightly's on_decided hook) ------------------------------------ */
typedef struct loop_cap {
    int n_products, called;
    int n_periods;                /* periods of the history the nightly decided from */
    env_guard_cfg guard;
    double *pushed;               /* [P] the decision's guarded price; NaN = not priced */
    double *decided;              /* [P] the decided price before exploration */
    double *agent[EXP_N_AGENTS];  /* [P] each agent's guarded price; NaN = none */
    double *lo, *hi;              /* [P] the guardrails' interval around the incumbent */
} loop_cap;

static void cap_hook(void *vctx, const db_history *h, const exp_results *res, const exp_nightly_decision *d) {
    loop_cap *cc = vctx;
    cc->called = 1;
    cc->n_periods = h->n_periods;
    for (int j = 0; j < res->n_products; j++) {
        const exp_product_result *pr = &res->products[j];
        int i = pr->product_id && !strncmp(pr->product_id, "SIM", 3) ? atoi(pr->product_id + 3) - 1 : -1;
        if (i < 0 || i >= cc->n_products || pr->index < 0 || pr->index >= h->n_products || d[j].failed) continue;
        env_guard_cfg g = cc->guard;
        g.n_endings = 0;
        env_guard_bounds gb = env_guard_bounds_of(h, pr->index, pr->incumbent_price);
        double tmp;
        uint32_t why = 0;
        if (env_guard_apply(&g, &gb, pr->incumbent_price, &tmp, &why, &cc->lo[i], &cc->hi[i])) continue;
        cc->pushed[i] = d[j].price;
        cc->decided[i] = d[j].explored ? d[j].decided_price : d[j].price;
        for (int a = 0; a < EXP_N_AGENTS; a++)
            cc->agent[a][i] = (pr->agent_failed & (1u << a)) || !(isfinite(pr->price[a]) && pr->price[a] > 0)
                                  ? NAN : pr->price[a];
    }
}

/* ---- one lane --------------------------------------------------------------------------------- */
typedef struct lane {
    exp_btl_lane id;
    env_sim_market *m;   /* [P] the lane's own market */
    double *prev;        /* [P] the price in force (whole cents) */
    double *price;       /* [P] tonight's price */
    double *cum;         /* [P] cumulative expected revenue of each product in this lane */
    PGconn *c;
    char dbname[64];
    int created;
    int keep_next;       /* keep_history 2: the next night loads the whole history */
    char ckpt[1100], out[1100];
} lane;

static double cents(double x) { return round(x * 100) / 100; }
static double min_price(double p0) { return round(p0 * 50) / 100; }  /* products.csv of bt_import_history */
static double max_price(double p0) { return round(p0 * 200) / 100; }

/* The guardrails' margin (guard.min_margin) of the loop's nightlies. */
static double margin_of(const exp_btl_cfg *cfg) {
    return cfg->bt.compare ? cfg->bt.compare->guard.min_margin : env_guard_default().min_margin;
}

/* The lowest price the engine's guardrails allow product p (env_action.h, "bounds"): its min
 * bound and the margin floor cost / (1 - min_margin), the cost as products.csv holds it, in
 * whole cents.  Every reference lane (held, the oracles) is held to it too: a price below it is
 * not one the engine may charge, so it is not "the best price inside the bounds". */
static double lo_price(const env_sim_params *p, double mm) {
    const double fl = cents(p->unit_cost) / (1 - (mm >= 0 && mm < 1 ? mm : 0));
    return fmax(min_price(cents(p->base_price)), ceil(fl * 100 - 1e-6) / 100);
}

/* The whole-cent interval [*lo, *hi] a rule lane may price product p in tonight: its min/max
 * bounds, the margin floor (lo_price) and the change limit around the price in force prev;
 * free_step: without the change limit (oracle:free).  Empty when *lo > *hi. */
static void rule_interval(const exp_btl_cfg *cfg, const env_sim_params *p, double prev, int free_step, double *lo,
                          double *hi) {
    const double mc = cfg->bt.max_change_pct / 100;
    *lo = ceil(fmax(lo_price(p, margin_of(cfg)), free_step ? 0 : prev * (1 - mc)) * 100 - 1e-6) / 100;
    *hi = floor(fmin(max_price(cents(p->base_price)), free_step ? INFINITY : prev * (1 + mc)) * 100 + 1e-6) / 100;
}

static double comp_mean(const env_sim_params *p, const double *comp_now) {
    if (p->n_comp <= 0) return p->base_price;
    double s = 0;
    for (int k = 0; k < p->n_comp; k++) s += comp_now[k];
    return s / p->n_comp;
}

static int going_price(const exp_btl_cfg *cfg, const env_sim_params *p, const env_sim_market *m, double prev,
                       double *price);

/* The nightly of lane L for night `night` (date day0 + n_days + night); fills cap and rec and
 * L->price (the pushed prices read back, or the forced agent's).  0 or the nightly's status. */
static int lane_nightly(const exp_btl_cfg *cfg, lane *L, const db_history *h, int night, uint64_t seed,
                        loop_cap *cap, exp_btl_night *rec) {
    const int P = h->n_products;
    exp_nightly_cfg nc = exp_nightly_default();
    exp_compare_cfg_free(&nc.compare);
    nc.compare = cfg->bt.compare ? *cfg->bt.compare : exp_compare_default();
    char *own_ckpt = cfg->bt.compare ? NULL : nc.compare.ckpt_dir;
    nc.compare.ckpt_dir = NULL;
    nc.compare.seed = seed;
    nc.compare.ope.seed = seed;
    if (cfg->bt.device) snprintf(nc.compare.device, sizeof nc.compare.device, "%s", cfg->bt.device);
    nc.conn = L->c;
    nc.date = h->day0 + (cfg->bt.n_days + night) * h->period_days;
    const int keep = cfg->keep_history == 1 || (cfg->keep_history == 2 && L->keep_next);
    nc.window_days = keep ? 0 : cfg->bt.n_days * h->period_days; /* 0: all history */
    nc.products = (const char *const *)h->product_id;
    nc.n_products = P;
    nc.out_dir = L->out;
    nc.ckpt_dir = cfg->cold ? "" : L->ckpt;
    nc.ckpt_keep = 2;
    if (L->id == EXP_BTL_ENGINE) nc.explore = cfg->explore;
    /* the gate settings of the command line (--gate-*; the nightly's defaults otherwise) */
    exp_bt_gate_apply(&cfg->bt, &nc);
    nc.on_decided = cap_hook;
    nc.decided_ctx = cap;
    cap->called = 0;
    cap->n_periods = 0;
    cap->guard = nc.compare.guard;
    for (int i = 0; i < P; i++) {
        cap->pushed[i] = cap->decided[i] = cap->lo[i] = cap->hi[i] = NAN;
        for (int a = 0; a < EXP_N_AGENTS; a++) cap->agent[a][i] = NAN;
    }
    exp_nightly_summary sum;
    double t0 = eng_now(), c0 = eng_cpu_now();
    int st = exp_nightly_run(&nc, &sum);
    rec->seconds = eng_now() - t0;
    rec->cpu_seconds = eng_cpu_now() - c0;
    rec->n_periods = cap->n_periods;
    eng_stage_format(rec->stages, sizeof rec->stages); /* the nightly reset the table at its start */
    rec->warm_loaded = sum.warm_loaded, rec->warm_fresh = sum.warm_fresh;
    exp_compare_last_fqe_warm(&rec->fqe_warm, &rec->fqe_cold); /* this thread's last comparison */
    rec->sec_train = sum.sec_train, rec->sec_ope = sum.sec_ope, rec->sec_report = sum.sec_report;
    rec->n_explored = sum.explore.n_explored, rec->explore_cost_est = sum.explore.cost;
    rec->n_carry = sum.explore.n_carry, rec->n_carry_tested = sum.explore.n_carry_tested;
    rec->window_tested = sum.window_tested, rec->window_short = sum.window_short;
    rec->window_carry = sum.window_carry, rec->window_carry_tested = sum.window_carry_tested;
    if (cfg->keep_history == 2 && L->id == EXP_BTL_ENGINE) /* the night's own carry-over test */
        L->keep_next = sum.explore.n_carry_tested > 0 &&
                       sum.explore.n_carry <= (double)cfg->explore.carryover_share * sum.explore.n_carry_tested;
    if (!st && !cap->called) st = eng_err_set(ENG_EINVAL, "backtest loop: the nightly did not reach its decisions");
    if (!st && L->id == EXP_BTL_ENGINE) { /* what the shop reads: the pushed rows */
        int found = 0;
        st = db_pushed_prices(L->c, sum.run_id, (const char *const *)h->product_id, P, L->price, &found);
        for (int i = 0; !st && i < P; i++) {
            int a = isfinite(L->price[i]), b = isfinite(cap->pushed[i]);
            rec->n_mismatch += a != b || (a && fabs(L->price[i] - cap->pushed[i]) >= 0.005);
        }
    } else if (!st) {
        exp_agent ag = lane_agent[L->id];
        for (int i = 0; i < P; i++) {
            double p = cap->agent[ag][i];
            if (isfinite(p) && isfinite(cap->lo[i])) { /* whole cents inside the guardrails */
                p = cents(p);
                if (p < cap->lo[i] - 1e-9) p += 0.01;
                if (p > cap->hi[i] + 1e-9) p -= 0.01;
            }
            L->price[i] = p;
        }
    }
    for (int i = 0; !st && i < P; i++) {
        if (!(isfinite(L->price[i]) && L->price[i] > 0)) L->price[i] = L->prev[i]; /* not priced: kept */
        else rec->n_priced++;
        if (isfinite(cap->lo[i]) && (L->price[i] < cap->lo[i] - 0.005 || L->price[i] > cap->hi[i] + 0.005))
            rec->n_outside++;
    }
    exp_nightly_summary_free(&sum);
    free(own_ckpt);
    return st;
}

typedef struct { const env_sim_dp *dp; int t; double ref, cbar; } dp_at;
static double dp_q_of(double price, void *ctx) {
    const dp_at *a = ctx;
    return env_sim_dp_q(a->dp, a->t, a->ref, price, a->cbar);
}

/* The whole-cent price in [lo, hi] with the highest Q of the DP oracle dp at its period t
 * (env_sim_cent_argmax, a stride of whole cents past 4,000 of them); lo on a bad interval or
 * when no price has a finite Q. */
static double dp_best_price(const env_sim_dp *dp, int t, double ref, double cbar, double lo, double hi) {
    dp_at a = {dp, t, ref, cbar};
    double bp = lo, bv;
    env_sim_cent_argmax(lo, hi, 4000, dp_q_of, &a, &bp, &bv);
    return bp;
}

/* Manual, held and oracle prices of tonight (night n) for lane L.  The oracle is myopic (the day's
 * best price within the change limit) unless plan is given (the reference-price family): then it
 * charges the price the DP held to the change limit planned for this night (dp_oracle_open), after
 * checking that the lane stands where the plan expected (its previous price and reference).
 * oracle:free (dp) charges the price, anywhere inside the product's min/max bounds (no change
 * limit), that maximises the day's expected revenue plus the DP value of the nights left (solved
 * at the loop's start, read at the actual reference).  0 or ENG_EINVAL. */
static int lane_fixed_rule(const exp_btl_cfg *cfg, lane *L, const env_sim_log *lg, int P, env_sim_dp *const *dp,
                           const double *plan, const double *standing, int n) {
    const int N = cfg->n_nights;
    for (int i = 0; i < P; i++) {
        const env_sim_params *p = &lg->params[i];
        double p0 = cents(p->base_price);
        if (L->id == EXP_BTL_MANUAL) {
            L->price[i] = p0;
            continue;
        }
        double lo, hi;
        if (L->id == EXP_BTL_HELD) { /* toward the standing optimum, at most the change limit a night */
            rule_interval(cfg, p, L->prev[i], 0, &lo, &hi);
            L->price[i] = lo > hi ? L->prev[i] : fmin(fmax(standing[i], lo), hi);
            continue;
        }
        if (L->id == EXP_BTL_GOING) { /* the truth's DP from tonight's state, its first step */
            int st = going_price(cfg, p, &L->m[i], L->prev[i], &L->price[i]);
            if (st) return st;
            continue;
        }
        if (plan) { /* [P][N][3]: the planned price, the previous price and the reference it expects */
            const double *x = plan + ((size_t)i * N + n) * 3;
            if (fabs(x[1] - L->prev[i]) > 1e-9 || fabs(x[2] - L->m[i].ref) > 1e-9 * fmax(1, x[2]))
                return eng_err_set(ENG_EINVAL, "backtest loop: the DP oracle of product %d left its plan at night %d", i + 1,
                                   n + 1);
            L->price[i] = x[0];
            continue;
        }
        const int free_step = dp && dp[i]; /* oracle:free: only the min/max bounds */
        rule_interval(cfg, p, L->prev[i], free_step, &lo, &hi);
        if (lo > hi) lo = hi = L->prev[i];
        double bp, bv;
        if (free_step) bp = dp_best_price(dp[i], n, L->m[i].ref, comp_mean(p, L->m[i].comp_now), lo, hi);
        else {
            int st = env_sim_best_price(p, L->m[i].ref, comp_mean(p, L->m[i].comp_now), lo, hi, &bp, &bv);
            if (st) return st;
        }
        L->price[i] = cents(bp);
    }
    return ENG_OK;
}

/* ---- the new day's rows, loaded as a shop loads them ------------------------------------------- */
typedef struct day_rows {
    const db_history *h;
    int32_t day;
    const double *price;      /* [P] */
    const double *units, *traffic; /* [P] */
    const double *comp;       /* [P * ENV_SIM_MAX_COMP] posted competitor prices */
    const env_sim_log *lg;
} day_rows;

static int write_day_sales(FILE *f, void *vctx) {
    const day_rows *d = vctx;
    char ds[16];
    eng_date_format(d->day, ds);
    fprintf(f, "product_id,day,price,units,revenue,traffic,promo\n");
    for (int i = 0; i < d->h->n_products; i++)
        fprintf(f, "%s,%s,%.2f,%.0f,%.2f,%.0f,false\n", d->h->product_id[i], ds, d->price[i], d->units[i],
                d->price[i] * d->units[i], d->traffic[i]);
    return ferror(f) ? ENG_EIO : ENG_OK;
}

static int write_day_comp(FILE *f, void *vctx) {
    const day_rows *d = vctx;
    char ds[16];
    eng_date_format(d->day, ds);
    fprintf(f, "product_id,day,competitor,price\n");
    for (int i = 0; i < d->h->n_products; i++)
        for (int k = 0; k < d->lg->params[i].n_comp; k++)
            fprintf(f, "%s,%s,%s,%.2f\n", d->h->product_id[i], ds, d->h->competitor_names[k],
                    d->comp[(size_t)i * ENV_SIM_MAX_COMP + k]);
    return ferror(f) ? ENG_EIO : ENG_OK;
}

/* Write and import the day's sales and competitor prices (strict).  *rows = sales rows written
 * to the table.  0, ENG_EIO, ENG_EDB, ENG_EFORMAT. */
static int import_day(PGconn *c, const char *dir, const day_rows *d, long *rows) {
    static const char *const tables[2] = {"sales", "competitor_prices"};
    int (*writers[2])(FILE *, void *) = {write_day_sales, write_day_comp};
    for (int k = 0; k < 2; k++) {
        int st = bt_write_import(c, dir, tables[k], ".day.csv", writers[k], (void *)d, k == 0 ? rows : NULL);
        if (st) return st;
    }
    return ENG_OK;
}

/* ---- one run ---------------------------------------------------------------------------------- */
static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}
static void rm_tree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* Scratch of one run: the lanes, the capture and the day's buffers. */
typedef struct run_ctx {
    const exp_btl_cfg *cfg;
    PGconn *maint;
    db_history *h;
    env_sim_log *lg;
    lane lanes[EXP_BTL_N_LANE];
    loop_cap cap;
    env_sim_dp **dp;      /* [P] the DP free of the change limit (oracle:free, reference-price family), or NULL */
    double *plan;         /* [P][n_nights][3] the held DP oracle's price, previous price and reference, or NULL */
    double *units, *traffic, *comp;
    FILE *trace;          /* <out>/loop_trace_<family>_<seed>.csv, or NULL */
    double *standing;     /* [P] each product's standing optimum under the truth (whole cents) */
    char dir[1100];
} run_ctx;

static void quiet_notice(void *arg, const char *msg) { (void)arg, (void)msg; } /* NOTICEs of the import's temp tables */

/* Allocate lane l (markets copied from base) and, for a nightly lane, its database with the
 * history.  0, ENG_ENOMEM, ENG_EDB, ENG_EIO. */
static int lane_open(run_ctx *x, int l, int k, const env_sim_market *base) {
    const exp_btl_cfg *cfg = x->cfg;
    const int P = x->h->n_products, T = x->h->n_periods;
    lane *L = &x->lanes[l];
    L->id = (exp_btl_lane)l;
    L->m = eng_malloc((size_t)P * sizeof *L->m);
    L->prev = eng_malloc((size_t)P * sizeof *L->prev);
    L->price = eng_malloc((size_t)P * sizeof *L->price);
    L->cum = eng_calloc((size_t)P, sizeof *L->cum);
    if (!L->m || !L->prev || !L->price || !L->cum) return ENG_ENOMEM;
    memcpy(L->m, base, (size_t)P * sizeof *L->m);
    for (int i = 0; i < P; i++) L->prev[i] = cents(x->h->price[(size_t)i * T + T - 1]);
    if (!exp_btl_lane_nightly(L->id)) return ENG_OK;
    snprintf(L->dbname, sizeof L->dbname, "rlprice_btl_%d_%d_%d", (int)getpid(), k, l);
    snprintf(L->ckpt, sizeof L->ckpt, "%s/.loop.%d/ckpt-%d-%s", cfg->bt.out_dir, (int)getpid(), k, lane_names[l] + (l ? 6 : 0));
    snprintf(L->out, sizeof L->out, "%s/.loop.%d/nightly-%d-%s", cfg->bt.out_dir, (int)getpid(), k, lane_names[l] + (l ? 6 : 0));
    int st;
    if (cfg->bt.conn && l == EXP_BTL_ENGINE) L->c = cfg->bt.conn; /* the caller's database: the engine lane */
    else {
        if (!x->maint && (st = db_resolve(&x->maint, cfg->bt.conninfo))) return st;
        if ((st = db_database_create(x->maint, L->dbname))) return st;
        L->created = 1;
        if ((st = db_connect_like(&L->c, x->maint, L->dbname)) || (st = db_schema_apply(L->c))) return st;
        PQsetNoticeProcessor(L->c, quiet_notice, NULL);
    }
    return bt_import_history(L->c, x->dir, &cfg->bt, x->h, cfg->bt.n_days);
}

static void lane_close(run_ctx *x, lane *L) {
    if (L->c && L->c != x->cfg->bt.conn) db_disconnect(L->c);
    if (L->created && !x->cfg->bt.keep && db_database_drop(x->maint, L->dbname)) ENG_WARN("backtest loop: %s", eng_err_msg());
    if (!x->cfg->bt.keep && L->ckpt[0]) rm_tree(L->ckpt), rm_tree(L->out);
    free(L->m), free(L->prev), free(L->price), free(L->cum);
    memset(L, 0, sizeof *L);
}

/* Levels of the DP held to the change limit: whole-cent prices on a geometric grid of ratios around
 * the list price p0 (so p0 itself, every lane's start, is a level), DPC_STEPS steps to a change of
 * (1 + mc)^(DPC_STEPS / (DPC_STEPS + 0.5)) - the half step keeps DPC_STEPS steps up within the
 * limit after the rounding to cents - and the min/max bounds themselves, ascending, without
 * duplicates.  Returns the count (at most cap). */
#define DPC_STEPS 12
static int dpc_levels(double p0, double lo, double mc, double *lv, int cap) {
    const double hi = max_price(p0), s = log1p(mc) / (DPC_STEPS + 0.5);
    int n = 0;
    lv[n++] = lo;
    for (int j = (int)floor(log(lo / p0) / s); n < cap - 1; j++) {
        double x = cents(p0 * exp(s * j));
        if (x >= hi) break;
        if (x > lv[n - 1] + 1e-9) lv[n++] = x;
    }
    if (hi > lv[n - 1] + 1e-9) lv[n++] = hi;
    return n;
}

/* The DP held to the change limit for product p (the oracle's and oracle:going's): on the levels
 * dpc_levels (from the margin floor lo_price), from market m's period and reference, over the
 * next cfg->n_nights nights, undiscounted, on 151 reference nodes.  *out is freed by the caller
 * with env_sim_dpc_free.  0, ENG_EINVAL or ENG_ENOMEM (then *out = NULL). */
static int dpc_open(const exp_btl_cfg *cfg, const env_sim_params *p, const env_sim_market *m, env_sim_dpc **out) {
    double lv[512];
    const double mc = cfg->bt.max_change_pct / 100;
    const int n = dpc_levels(cents(p->base_price), lo_price(p, margin_of(cfg)), mc, lv, (int)(sizeof lv / sizeof lv[0]));
    return env_sim_dpc_solve(p, lv, n, mc, m->t, m->ref, cfg->n_nights, 1.0, 151, 0, out);
}

/* oracle:going's price for product p tonight (EXP_BTL_GOING): the DP held to the change limit
 * (dpc_open) solved from the lane's market m as it stands; *price = its best level within the
 * change limit of prev.  0, ENG_EINVAL or ENG_ENOMEM. */
static int going_price(const exp_btl_cfg *cfg, const env_sim_params *p, const env_sim_market *m, double prev,
                       double *price) {
    env_sim_dpc *dc = NULL;
    int st = dpc_open(cfg, p, m, &dc);
    if (st) return st;
    const int k = env_sim_dpc_best(dc, 0, m->ref, prev, comp_mean(p, m->comp_now), NULL);
    if (k >= 0) *price = dc->level[k];
    env_sim_dpc_free(dc);
    return k >= 0 ? ENG_OK : eng_err_set(ENG_EINVAL, "backtest loop: no DP level within the change limit of %.2f", prev);
}

/* The oracles of the reference-price family, per product, over the n_nights days after the history,
 * undiscounted (the loop's cumulative expected revenue), from the market's period and reference
 * after the history, on 151 reference nodes:
 *   - x->plan: the DP held to the change limit (env_sim_dpc, state = reference x the price in force,
 *     levels dpc_levels), its policy played forward on a copy of the market (the competitors' posted
 *     prices are common random numbers and the reference follows from its own prices, so the lane
 *     retraces this path exactly; lane_fixed_rule checks it);
 *   - x->dp: the DP free of the change limit over 64 even levels from the lowest to the highest
 *     allowed price (oracle:free).
 * 0, ENG_ENOMEM or ENG_EINVAL. */
static int dp_oracle_open(run_ctx *x, const env_sim_market *base, int n_nights, exp_btl_run *run) {
    const int P = x->h->n_products;
    const double c0 = eng_cpu_now();
    long nl = 0;
    if (!(x->dp = eng_calloc((size_t)P, sizeof *x->dp))) return ENG_ENOMEM;
    if (!(x->plan = eng_malloc((size_t)P * n_nights * 3 * sizeof *x->plan))) return ENG_ENOMEM;
    for (int i = 0; i < P; i++) {
        const env_sim_params *p = &x->lg->params[i];
        double p0 = cents(p->base_price);
        env_sim_grid g;
        const double lo = lo_price(p, margin_of(x->cfg));
        int st = env_sim_grid_make(&g, ENV_SIM_MAX_LEVELS, lo / p->base_price, max_price(p0) / p->base_price);
        if (!st) st = env_sim_dp_solve_from(p, &g, base[i].t, base[i].ref, n_nights, 1.0, 151, 0, &x->dp[i]);
        env_sim_dpc *dc = NULL;
        if (!st) st = dpc_open(x->cfg, p, &base[i], &dc);
        env_sim_market m = base[i];
        double prev = cents(x->h->price[(size_t)i * x->h->n_periods + x->h->n_periods - 1]);
        for (int t = 0; !st && t < n_nights; t++) {
            int k = env_sim_dpc_best(dc, t, m.ref, prev, comp_mean(p, m.comp_now), NULL);
            if (k < 0) {
                st = eng_err_set(ENG_EINVAL, "backtest loop: no DP level within the change limit of %.2f", prev);
                break;
            }
            double *y = x->plan + ((size_t)i * n_nights + t) * 3;
            y[0] = dc->level[k], y[1] = prev, y[2] = m.ref;
            env_sim_outcome o;
            st = env_sim_market_step(&m, y[0], &o);
            prev = y[0];
        }
        if (dc) nl += dc->n_levels;
        env_sim_dpc_free(dc);
        if (st) return st;
    }
    run->dp_levels = (int)lround((double)nl / P);
    run->dp_cpu_seconds = eng_cpu_now() - c0;
    return ENG_OK;
}

typedef struct { const env_sim_params *p; double cbar; } standing_at;
static double standing_rpv(double price, void *ctx) { /* the reference settled at the price */
    const standing_at *a = ctx;
    return env_sim_rpv(a->p, price, price, a->cbar);
}

/* Each product's standing optimum (x->standing): the whole-cent price inside its min/max bounds
 * with the highest revenue per visitor under the truth when the reference price equals it, at the
 * market's mean competitor prices (on a market without a reference effect: the myopic optimum
 * there; the list price when the margin floor lies above the max bound).  0 or ENG_ENOMEM. */
static int standing_open(run_ctx *x) {
    const int P = x->h->n_products;
    if (!(x->standing = eng_malloc((size_t)P * sizeof *x->standing))) return ENG_ENOMEM;
    for (int i = 0; i < P; i++) {
        const env_sim_params *p = &x->lg->params[i];
        const double p0 = cents(p->base_price);
        standing_at a = {p, env_sim_comp_mean_price(p)};
        const double lo = lo_price(p, margin_of(x->cfg)), hi = max_price(p0);
        double bp = p0, bv;
        if (lo <= hi) env_sim_cent_argmax(lo, hi, 0, standing_rpv, &a, &bp, &bv); /* else the list price */
        x->standing[i] = bp;
    }
    return ENG_OK;
}

/* The per-product trace (docs/backtest.md, "Closed loop"): one row per night, product and lane -
 * the price in force before the night, the night's price, the hidden reference before the day,
 * the day's expected revenue and the cumulative one - and a header row of each product's list
 * price and its standing optimum under the truth (the price that maximises revenue per visitor
 * when the reference has settled at it, at the market's mean competitor prices).  x->trace is
 * closed by run_one.  0 or ENG_EIO. */
static int trace_open(run_ctx *x, env_sim_family fam, uint64_t seed) {
    char path[1200];
    snprintf(path, sizeof path, "%s/loop_trace_%s_%llu.csv", x->cfg->bt.out_dir, env_sim_family_name(fam),
             (unsigned long long)seed);
    if (!(x->trace = fopen(path, "w"))) return eng_err_set(ENG_EIO, "backtest loop: cannot write %s", path);
    fprintf(x->trace, "night,product,lane,prev_price,price,ref,exp_revenue,cum_exp_revenue\n");
    for (int i = 0; i < x->h->n_products; i++) { /* night 0: list price and the standing optimum */
        const env_sim_params *p = &x->lg->params[i];
        const double p0 = cents(p->base_price), bp = x->standing[i];
        fprintf(x->trace, "0,%d,standing_opt,%.2f,%.2f,%.4f,%.6f,0\n", i + 1, p0, bp, bp,
                env_sim_rpv(p, bp, bp, env_sim_comp_mean_price(p)));
    }
    return ferror(x->trace) ? eng_err_set(ENG_EIO, "backtest loop: cannot write %s", path) : ENG_OK;
}

/* Sell night n's day in every lane at its prices; import the rows of the nightly lanes. */
static int sell_day(run_ctx *x, exp_btl_run *run, int n) {
    const int P = x->h->n_products;
    for (int l = 0; l < EXP_BTL_N_LANE; l++) {
        if (!(run->lanes & (1u << l))) continue;
        lane *L = &x->lanes[l];
        exp_btl_night *rec = &run->night[l][n];
        for (int i = 0; i < P; i++) {
            env_sim_market *m = &L->m[i];
            const env_sim_params *p = &x->lg->params[i];
            if (l == EXP_BTL_ENGINE) {
                double cbar = comp_mean(p, m->comp_now), ev = env_sim_expected_traffic(p, m->t);
                for (int a = 0; a < EXP_N_AGENTS; a++) {
                    double pa = isfinite(x->cap.agent[a][i]) ? x->cap.agent[a][i] : L->prev[i];
                    if (a == EXP_AGENT_HISTORY) pa = L->prev[i]; /* holding the incumbent */
                    run->onestep[a][n] += ev * env_sim_rpv(p, pa, m->ref, cbar);
                }
                double dp = x->cap.decided[i];
                if (isfinite(dp) && fabs(dp - L->price[i]) >= 0.005) /* an exploration draw: what it gave up */
                    rec->explore_cost += ev * (env_sim_rpv(p, dp, m->ref, cbar) - env_sim_rpv(p, L->price[i], m->ref, cbar));
            }
            if (!exp_btl_lane_nightly(L->id) && L->id != EXP_BTL_FREE) { /* the rule lanes' guardrails */
                double lo, hi;
                rule_interval(x->cfg, p, L->prev[i], 0, &lo, &hi);
                rec->n_outside += L->price[i] < lo - 0.005 || L->price[i] > hi + 0.005;
            }
            memcpy(x->comp + (size_t)i * ENV_SIM_MAX_COMP, m->comp_now, sizeof m->comp_now);
            env_sim_outcome o;
            const double ref_before = m->ref;
            int st = env_sim_market_step(m, L->price[i], &o);
            if (st) return st;
            if (x->trace)
                fprintf(x->trace, "%d,%d,%s,%.2f,%.2f,%.4f,%.4f,%.4f\n", n + 1, i + 1, lane_names[l], L->prev[i],
                        L->price[i], ref_before, o.exp_revenue, L->cum[i] + o.exp_revenue);
            rec->exp_revenue += o.exp_revenue, rec->exp_profit += o.exp_profit, rec->exp_traffic += o.exp_traffic;
            L->cum[i] += o.exp_revenue;
            rec->n_repriced += fabs(L->price[i] - L->prev[i]) >= 0.005;
            x->units[i] = o.units, x->traffic[i] = o.traffic;
            L->prev[i] = L->price[i];
        }
        if (!exp_btl_lane_nightly(L->id)) continue;
        day_rows d = {x->h, x->h->day0 + (x->cfg->bt.n_days + n) * x->h->period_days, L->price, x->units, x->traffic,
                      x->comp, x->lg};
        int st = import_day(L->c, x->dir, &d, &rec->rows_loaded);
        if (st) return st;
    }
    return ENG_OK;
}

/* Simulate the history, replay it into the markets, open the lanes, run the nights. */
static int run_one(const exp_btl_cfg *cfg, env_sim_family fam, uint64_t seed, int k, exp_btl_run *run) {
    const exp_bt_cfg *bt = &cfg->bt;
    run_ctx x;
    memset(&x, 0, sizeof x);
    x.cfg = cfg;
    env_sim_market *base = NULL;
    int st = ENG_OK, P = bt->n_products, D = bt->n_days;
    double t0 = eng_now();
    run->family = fam, run->seed = seed, run->n_products = P, run->n_days = D, run->n_nights = cfg->n_nights;
    const unsigned ref_lanes = (1u << EXP_BTL_FREE) | (1u << EXP_BTL_GOING);
    run->lanes = (cfg->lanes & ~ref_lanes) | (1u << EXP_BTL_ENGINE) | (1u << EXP_BTL_MANUAL) | (1u << EXP_BTL_ORACLE) |
                 (1u << EXP_BTL_HELD) | (fam == ENV_SIM_FAMILY_REF ? ref_lanes : 0);
    env_sim_gen_opts go = exp_bt_gen_opts(bt, fam, seed); /* the one-night run's history (no promotions: checked) */
    if ((st = env_sim_generate_ex(&go, P, D, &x.h, &x.lg))) goto cleanup;
    if (!(base = eng_malloc((size_t)P * sizeof *base))) { st = ENG_ENOMEM; goto cleanup; }
    for (int i = 0; i < P && !st; i++) { /* replay the history: the market as it stands after day D */
        if ((st = env_sim_market_init(&base[i], &x.lg->params[i], seed, i))) break;
        for (int t = 0; t < D && !st; t++) {
            env_sim_outcome o;
            size_t c = (size_t)i * D + t;
            if (t == D - 1) { /* the shop's current price: the last day of the history is sold at the list
                                 price, so every lane starts from the same incumbent as manual pricing */
                x.h->price[c] = cents(x.lg->params[i].base_price);
                if (!(st = env_sim_market_step(&base[i], x.h->price[c], &o)))
                    x.h->units[c] = (float)o.units, x.h->traffic[c] = (float)o.traffic, x.h->promo[c] = 0,
                    x.h->revenue[c] = (float)(x.h->price[c] * o.units);
                continue;
            }
            if (!(st = env_sim_market_step(&base[i], x.h->price[c], &o)) && o.units != x.h->units[c])
                st = eng_err_set(ENG_EINVAL, "backtest loop: the replay of product %d diverged at day %d", i, t);
        }
    }
    if (st) goto cleanup;
    x.cap.n_products = P;
    x.cap.pushed = eng_malloc((size_t)P * sizeof(double));
    x.cap.decided = eng_malloc((size_t)P * sizeof(double));
    x.cap.lo = eng_malloc((size_t)P * sizeof(double));
    x.cap.hi = eng_malloc((size_t)P * sizeof(double));
    x.units = eng_malloc((size_t)P * sizeof(double));
    x.traffic = eng_malloc((size_t)P * sizeof(double));
    x.comp = eng_calloc((size_t)P * ENV_SIM_MAX_COMP, sizeof(double));
    int ok = x.cap.pushed && x.cap.decided && x.cap.lo && x.cap.hi && x.units && x.traffic && x.comp;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        ok = ok && (x.cap.agent[a] = eng_malloc((size_t)P * sizeof(double))) != NULL;
        ok = ok && (run->onestep[a] = eng_calloc((size_t)cfg->n_nights, sizeof(double))) != NULL;
    }
    for (int l = 0; l < EXP_BTL_N_LANE; l++)
        if (run->lanes & (1u << l)) ok = ok && (run->night[l] = eng_calloc((size_t)cfg->n_nights, sizeof(exp_btl_night)));
    if (!ok) { st = ENG_ENOMEM; goto cleanup; }
    snprintf(x.dir, sizeof x.dir, "%s/.loop.%d", bt->out_dir, (int)getpid());
    if ((st = bt_mkdir_p(x.dir))) goto cleanup;
    for (int l = 0; l < EXP_BTL_N_LANE && !st; l++)
        if (run->lanes & (1u << l)) st = lane_open(&x, l, k, base);
    if (!st && fam == ENV_SIM_FAMILY_REF) st = dp_oracle_open(&x, base, cfg->n_nights, run);
    if (!st) st = standing_open(&x);
    if (!st) st = trace_open(&x, fam, seed);
    run->oracle_dp = x.dp != NULL;
    for (int n = 0; n < cfg->n_nights && !st; n++) {
        for (int l = 0; l < EXP_BTL_N_LANE && !st; l++) {
            if (!(run->lanes & (1u << l))) continue;
            lane *L = &x.lanes[l];
            if (!exp_btl_lane_nightly(L->id))
                st = lane_fixed_rule(cfg, L, x.lg, P, L->id == EXP_BTL_FREE ? x.dp : NULL,
                                     L->id == EXP_BTL_ORACLE ? x.plan : NULL, x.standing, n);
            else if (l != EXP_BTL_ENGINE) st = lane_nightly(cfg, L, x.h, n, seed, &x.cap, &run->night[l][n]);
        }
        /* the engine last, so that the capture holds its night when the day is sold */
        if (!st) st = lane_nightly(cfg, &x.lanes[EXP_BTL_ENGINE], x.h, n, seed, &x.cap, &run->night[EXP_BTL_ENGINE][n]);
        if (!st) st = sell_day(&x, run, n);
        if (!st && bt->verbose) {
            const exp_btl_night *e = &run->night[EXP_BTL_ENGINE][n];
            fprintf(stderr, "  night %d/%d: engine %.0f (manual %.0f, oracle %.0f), %d repriced, nightly %.1f s, cpu %.1f s (train %.1f, "
                            "ope %.1f, report %.1f)%s, FQE warm %d cold %d\n    stages (wall/cpu s): %s\n", n + 1, cfg->n_nights, e->exp_revenue,
                    run->night[EXP_BTL_MANUAL][n].exp_revenue, run->night[EXP_BTL_ORACLE][n].exp_revenue, e->n_repriced,
                    e->seconds, e->cpu_seconds, e->sec_train, e->sec_ope, e->sec_report, e->warm_loaded ? " warm" : " cold",
                    e->fqe_warm, e->fqe_cold, e->stages);
        }
    }
    if (!st) /* harm: products whose cumulative expected revenue in the engine lane is below manual pricing's */
        for (int i = 0; i < P; i++) {
            double e = x.lanes[EXP_BTL_ENGINE].cum[i], m = x.lanes[EXP_BTL_MANUAL].cum[i];
            run->n_worse += e < m * (1 - 1e-9);
            run->n_worse1 += e < m * 0.99;
        }
cleanup:
    for (int l = 0; l < EXP_BTL_N_LANE; l++) lane_close(&x, &x.lanes[l]);
    if (x.dir[0]) rm_tree(x.dir);
    if (x.trace && fclose(x.trace) && !st) st = eng_err_set(ENG_EIO, "backtest loop: the trace file");
    if (x.maint) db_disconnect(x.maint);
    free(x.cap.pushed), free(x.cap.decided), free(x.cap.lo), free(x.cap.hi), free(x.units), free(x.traffic), free(x.comp);
    for (int a = 0; a < EXP_N_AGENTS; a++) free(x.cap.agent[a]);
    for (int i = 0; x.dp && i < P; i++) env_sim_dp_free(x.dp[i]);
    free(x.standing);
    free(x.dp);
    free(x.plan);
    free(base);
    db_history_free(x.h);
    env_sim_log_free(x.lg);
    run->seconds_total = eng_now() - t0;
    return st;
}

int exp_backtest_loop_check(const exp_btl_cfg *cfg) {
    const exp_bt_cfg *bt = &cfg->bt;
    if (bt->n_products < 1 || bt->n_days < 16 || bt->n_seeds < 1 || bt->n_families < 1 ||
        bt->n_families > ENV_SIM_FAMILY_COUNT || !(bt->max_change_pct > 0) || !bt->out_dir || cfg->n_nights < 1)
        return eng_err_set(ENG_EINVAL, "backtest loop: need products >= 1, days >= 16, nights >= 1, seeds >= 1, a "
                                       "family, max_change_pct > 0 and an out folder");
    if (cfg->keep_history < 0 || cfg->keep_history > 2)
        return eng_err_set(ENG_EINVAL, "backtest loop: keep_history must be 0, 1 or 2, not %d", cfg->keep_history);
    if (cfg->keep_history == 2 && !(cfg->explore.share > 0 && cfg->explore.mode == EXP_EXPLORE_THOMPSON &&
                                     cfg->explore.carryover_share > 0)) /* else no night tests carry-over */
        return eng_err_set(ENG_EINVAL, "backtest loop: --keep-history 2 needs Thompson exploration with "
                                       "explore.carryover_share > 0 (its carry-over test decides)");
    if (bt->promo_rate > 0 || bt->endings)
        return eng_err_set(ENG_EINVAL, "--promo and --endings belong to the one-night run: the closed loop (--nights N) "
                                       "simulates no promotion calendar and prices in whole cents");
    return ENG_OK;
}

int exp_backtest_loop_run(const exp_btl_cfg *cfg, exp_btl_result *out) {
    memset(out, 0, sizeof *out);
    const exp_bt_cfg *bt = &cfg->bt;
    int st = exp_backtest_loop_check(cfg);
    if (st) return st;
    int n = bt->n_families * bt->n_seeds;
    if (!(out->runs = eng_calloc((size_t)n, sizeof *out->runs))) return ENG_ENOMEM;
    if ((st = bt_mkdir_p(bt->out_dir))) return st;
    for (int f = 0; f < bt->n_families && !st; f++)
        for (int s = 0; s < bt->n_seeds && !st; s++) {
            uint64_t seed = bt->seed + (uint64_t)s;
            if (bt->verbose)
                fprintf(stderr, "backtest loop: family %s, seed %llu, %d products, %d days then %d nights ...\n",
                        env_sim_family_name(bt->families[f]), (unsigned long long)seed, bt->n_products, bt->n_days,
                        cfg->n_nights);
            exp_btl_run *r = &out->runs[out->n_runs];
            st = run_one(cfg, bt->families[f], seed, out->n_runs, r);
            out->n_runs++; /* kept also after a failure: its arrays are freed with the result */
            if (st) { /* a failed run is not reported */
                for (int l = 0; l < EXP_BTL_N_LANE; l++) free(r->night[l]), r->night[l] = NULL;
                for (int a = 0; a < EXP_N_AGENTS; a++) free(r->onestep[a]), r->onestep[a] = NULL;
                out->n_runs--;
            }
        }
    return st;
}
