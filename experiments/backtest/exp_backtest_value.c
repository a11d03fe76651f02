/* exp_backtest_value.c - the backtest's valuation under the simulator's truth, its tables and
 * its JSON (exp_backtest.h). */
#include "exp_backtest_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "exp_nightly.h"

static const char *const pol_names[EXP_BT_N_POL] = {"dqn",       "ddpg",   "linucb", "fixed", "history",
                                                    "incumbent", "random", "pushed", "best", "model"};
const double exp_bt_gate_level[EXP_BT_N_LEVELS] = {0.50, 0.60, 0.70, 0.80, 0.90, 0.95, 0.99};

const char *exp_bt_policy_name(exp_bt_policy p) { return p >= 0 && p < EXP_BT_N_POL ? pol_names[p] : NULL; }

double bt_level_z(double level) { return exp_nightly_gate_z(level); }

/* Running sums of one policy. */
typedef struct acc {
    double ach, att, ratio, up;
    int n, n_eval, n_rep, n_worse, n_out, n_promo;
} acc;

typedef struct truth {
    const db_history *h;
    int i, T;                  /* product, the next period (the history the nightly saw ends before it) */
    const env_sim_params *p;
    double ref, cbar, inc, v_inc, att, traffic, lo, hi;
} truth;

static void acc_add(acc *a, const truth *tr, double price) {
    a->n++;
    if (!(isfinite(price) && price > 0)) price = tr->inc; /* no price: the incumbent stays */
    if (price < tr->lo - 0.005 || price > tr->hi + 0.005) a->n_out++;
    double ach = env_sim_rpv(tr->p, price, tr->ref, tr->cbar) - tr->v_inc;
    a->ach += ach;
    a->att += tr->att;
    a->up += ach * tr->traffic;
    if (tr->att >= EXP_BT_FLOOR * tr->v_inc) {
        a->n_eval++;
        a->ratio += ach / tr->att;
    }
    if (fabs(price - tr->inc) >= 0.005) {
        a->n_rep++;
        if (ach < -1e-12 * tr->v_inc) a->n_worse++;
        a->n_promo += exp_nightly_price_seen_upto(tr->h, tr->i, price, tr->T) == EXP_SEEN_PROMO_ONLY;
    }
}

static exp_bt_stats acc_stats(const acc *a) {
    exp_bt_stats s = {.n = a->n, .n_eval = a->n_eval, .n_repriced = a->n_rep, .n_worse = a->n_worse,
                      .n_outside = a->n_out, .n_promo_only = a->n_promo};
    s.captured_mean = a->n_eval ? a->ratio / a->n_eval : NAN;
    s.captured_pooled = a->att > 0 ? a->ach / a->att : NAN;
    s.worse_share = a->n_rep ? (double)a->n_worse / a->n_rep : NAN;
    s.uplift_period = a->n ? a->up / a->n : NAN;
    return s;
}

/* The truth of product i on the next day (period n_days). 0 or ENG_EINVAL. */
static int truth_of(const db_history *h, const env_sim_log *lg, int i, int T, const bt_prod *b, truth *tr) {
    size_t c = (size_t)i * h->n_periods + T;
    tr->h = h, tr->i = i, tr->T = T;
    tr->p = &lg->params[i];
    tr->ref = lg->ref[(size_t)i * lg->n_periods + T];
    const double cm = db_history_comp_mean(h, c);
    tr->cbar = isfinite(cm) ? cm : env_sim_comp_mean_price(tr->p);
    tr->inc = b->incumbent, tr->lo = b->lo, tr->hi = b->hi;
    tr->v_inc = env_sim_rpv(tr->p, tr->inc, tr->ref, tr->cbar);
    double bp, bv;
    int st = env_sim_best_price(tr->p, tr->ref, tr->cbar, tr->lo, tr->hi, &bp, &bv);
    if (st) return st;
    tr->att = bv > tr->v_inc ? bv - tr->v_inc : 0;
    tr->traffic = env_sim_expected_traffic(tr->p, T);
    return ENG_OK;
}

int bt_value(const exp_bt_cfg *cfg, const db_history *h, const env_sim_log *lg, const bt_prod *prod, exp_bt_run *run) {
    const int T = cfg->n_days;
    run->gate_default = -1;
    for (int l = 0; l < EXP_BT_N_LEVELS; l++)
        if (fabs(exp_bt_gate_level[l] - cfg->gate_level) < 1e-6 && cfg->gate_mode >= 0 && cfg->gate_mode < 3)
            run->gate_default = cfg->gate_mode * EXP_BT_N_LEVELS + l;
    acc pa[EXP_BT_N_POL], ga[EXP_BT_N_GATE];
    memset(pa, 0, sizeof pa);
    memset(ga, 0, sizeof ga);
    double att_up = 0, rev = 0;
    eng_rng rng;
    eng_rng_seed(&rng, eng_seed_derive(run->seed, 0x72616e64u)); /* the random policy's stream */
    for (int i = 0; i < h->n_products; i++) {
        const bt_prod *b = &prod[i];
        double u = eng_rng_uniform(&rng); /* drawn for every product: the stream does not depend on failures */
        if (!b->valid) continue;
        truth tr;
        int st = truth_of(h, lg, i, T, b, &tr);
        if (st) return st;
        double best, bv;
        env_sim_best_price(tr.p, tr.ref, tr.cbar, tr.lo, tr.hi, &best, &bv);
        double rnd = round((tr.lo + (tr.hi - tr.lo) * u) * 100) / 100;
        if (rnd < tr.lo) rnd += 0.01;
        if (rnd > tr.hi) rnd -= 0.01;
        const double price[EXP_BT_N_POL] = {
            b->agent_price[EXP_AGENT_DQN],   b->agent_price[EXP_AGENT_DDPG],
            b->agent_price[EXP_AGENT_LINUCB], b->agent_price[EXP_AGENT_FIXED],
            round(h->price[(size_t)i * h->n_periods + T] * 100) / 100,
            tr.inc, rnd, b->pushed, best, b->model};
        for (int k = 0; k < EXP_BT_N_POL; k++) acc_add(&pa[k], &tr, price[k]);
        for (int k = 0; k < EXP_BT_N_GATE; k++) acc_add(&ga[k], &tr, b->gate_price[k]);
        if (run->gate_default >= 0) run->n_gate_agree += fabs(b->gate_price[run->gate_default] - b->pushed) < 0.005;
        att_up += tr.att * tr.traffic;
        double r = 0;
        for (int t = 0; t < T; t++) r += h->revenue[(size_t)i * h->n_periods + t];
        rev += r / T;
        run->n_valued++;
    }
    for (int k = 0; k < EXP_BT_N_POL; k++) run->pol[k] = acc_stats(&pa[k]);
    for (int k = 0; k < EXP_BT_N_GATE; k++) run->gate[k] = acc_stats(&ga[k]);
    run->attainable_period = run->n_valued ? att_up / run->n_valued : NAN;
    run->revenue_period = run->n_valued ? rev / run->n_valued : NAN;
    return ENG_OK;
}

/* ---- tables ----------------------------------------------------------------------------------- */
static void pct(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, " %8.1f%%", 100 * x);
    else fprintf(f, " %9s", "-");
}

static void print_run(FILE *f, const exp_bt_run *r) {
    fprintf(f, "\nfamily %s, seed %llu: %d products x %d days, %d valued; nightly %.1f s (run %.1f s); attainable "
               "uplift %+.3f per period per product (mean revenue %.2f per period)\n",
            env_sim_family_name(r->family), (unsigned long long)r->seed, r->n_products, r->n_days, r->n_valued,
            r->seconds_nightly, r->seconds_total, r->attainable_period, r->revenue_period);
    fprintf(f, "  %-10s %9s %9s %10s %9s %8s %13s %10s\n", "policy", "captured", "pooled", "repriced", "worse", "outside",
            "uplift/period", "promo-only");
    for (int k = 0; k < EXP_BT_N_POL; k++) {
        const exp_bt_stats *s = &r->pol[k];
        fprintf(f, "  %-10s", pol_names[k]);
        pct(f, s->captured_mean);
        pct(f, s->captured_pooled);
        fprintf(f, " %5d/%-4d", s->n_repriced, s->n);
        pct(f, s->worse_share);
        fprintf(f, " %8d %+13.3f", s->n_outside, s->uplift_period);
        pct(f, s->n_repriced ? (double)s->n_promo_only / s->n_repriced : NAN);
        fputc('\n', f);
    }
    fprintf(f, "  pushed: deployed fixed %d, linucb %d, dqn %d, ddpg %d\n", r->n_deployed_by[EXP_AGENT_FIXED],
            r->n_deployed_by[EXP_AGENT_LINUCB], r->n_deployed_by[EXP_AGENT_DQN], r->n_deployed_by[EXP_AGENT_DDPG]);
}

/* mean [min, max] of a field over the runs selected by fam (-1: all). */
typedef double (*field_fn)(const exp_bt_run *r, int k);
static double f_cap(const exp_bt_run *r, int k) { return r->pol[k].captured_mean; }
static double f_pool(const exp_bt_run *r, int k) { return r->pol[k].captured_pooled; }
static double f_worse(const exp_bt_run *r, int k) { return r->pol[k].worse_share; }
static double f_promo(const exp_bt_run *r, int k) {
    return r->pol[k].n_repriced ? (double)r->pol[k].n_promo_only / r->pol[k].n_repriced : NAN;
}
static double f_rep(const exp_bt_run *r, int k) { return r->pol[k].n ? (double)r->pol[k].n_repriced / r->pol[k].n : NAN; }
static double g_cap(const exp_bt_run *r, int k) { return r->gate[k].captured_mean; }
static double g_pool(const exp_bt_run *r, int k) { return r->gate[k].captured_pooled; }
static double g_worse(const exp_bt_run *r, int k) { return r->gate[k].worse_share; }
static double g_rep(const exp_bt_run *r, int k) { return r->gate[k].n ? (double)r->gate[k].n_repriced / r->gate[k].n : NAN; }

static void span(const exp_bt_result *res, int fam, field_fn fn, int k, double *mean, double *lo, double *hi) {
    double s = 0;
    int n = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = 0; i < res->n_runs; i++) {
        if (fam >= 0 && (int)res->runs[i].family != fam) continue;
        double x = fn(&res->runs[i], k);
        if (!isfinite(x)) continue;
        s += x, n++;
        *lo = fmin(*lo, x), *hi = fmax(*hi, x);
    }
    *mean = n ? s / n : NAN;
    if (!n) *lo = *hi = NAN;
}

static void span_print(FILE *f, const exp_bt_result *res, int fam, field_fn fn, int k) {
    double m, lo, hi;
    span(res, fam, fn, k, &m, &lo, &hi);
    if (isfinite(m)) fprintf(f, " %6.1f%% [%5.1f, %5.1f]", 100 * m, 100 * lo, 100 * hi);
    else fprintf(f, " %22s", "-");
}

static void print_summary(FILE *f, const exp_bt_result *res, int fam) {
    int outside = 0, n = 0;
    for (int i = 0; i < res->n_runs; i++)
        if (fam < 0 || (int)res->runs[i].family == fam) {
            n++;
            for (int k = 0; k < EXP_BT_N_POL; k++)
                if (k != EXP_BT_HISTORY && k != EXP_BT_INCUMBENT) /* not decisions: the price in force can lie outside
                                                                     the band of a deep promotion */
                    outside += res->runs[i].pol[k].n_outside;
        }
    fprintf(f, "\nsummary, %s (%d runs): mean [min, max] over runs\n", fam < 0 ? "every family" : env_sim_family_name(fam), n);
    fprintf(f, "  %-10s %22s %22s %22s %22s %22s\n", "policy", "captured (mean)", "captured (pooled)", "made worse",
            "repriced", "to promo-only prices");
    for (int k = 0; k < EXP_BT_N_POL; k++) {
        fprintf(f, "  %-10s", pol_names[k]);
        span_print(f, res, fam, f_cap, k);
        span_print(f, res, fam, f_pool, k);
        span_print(f, res, fam, f_worse, k);
        span_print(f, res, fam, f_rep, k);
        span_print(f, res, fam, f_promo, k);
        fputc('\n', f);
    }
    fprintf(f, "  prices outside the guardrails (agents, random, pushed, best): %d (goal 0)\n", outside);
}

void exp_backtest_print(FILE *f, const exp_bt_cfg *cfg, const exp_bt_result *r) {
    (void)cfg;
    fprintf(f, "backtest: captured = achieved / attainable uplift of expected revenue per visitor on the next day "
               "(truth), attainable = best price inside the guardrails minus the incumbent; 'captured' is the mean "
               "over products whose attainable uplift is >= %.0f%% of the incumbent's, 'pooled' the ratio of sums; "
               "'worse' = share of repriced products made worse\n",
            100 * EXP_BT_FLOOR);
    for (int i = 0; i < r->n_runs; i++) print_run(f, &r->runs[i]);
    int seen[ENV_SIM_FAMILY_COUNT] = {0}, n_fam = 0;
    for (int i = 0; i < r->n_runs; i++)
        if (!seen[r->runs[i].family]++) n_fam++;
    for (int fam = 0; fam < ENV_SIM_FAMILY_COUNT && n_fam > 1; fam++)
        if (seen[fam]) print_summary(f, r, fam);
    print_summary(f, r, -1);
    fprintf(f, "  goals: dqn and ddpg >= 80%% captured and above fixed and linucb; pushed >= 60%% with <= 5%% of repriced "
               "products made worse; 0 outside the guardrails\n");
    fprintf(f, "\ngate trade-off, every run: deploy the candidate with the highest lower bound of the uplift when it is "
               "above 0 (ope: shrunk OPE uplift, whole moves; model: the product's demand model, steps toward each "
               "agent's price inside the normal-period support; both: model and a positive OPE uplift)\n");
    fprintf(f, "  %-8s %-6s %22s %22s %22s %22s\n", "gate", "level", "captured (mean)", "captured (pooled)",
            "made worse", "repriced");
    for (int k = 0; k < EXP_BT_N_GATE; k++) {
        fprintf(f, "  %-8s %5.0f%%", exp_gate_mode_name(k / EXP_BT_N_LEVELS), 100 * exp_bt_gate_level[k % EXP_BT_N_LEVELS]);
        span_print(f, r, -1, g_cap, k);
        span_print(f, r, -1, g_pool, k);
        span_print(f, r, -1, g_worse, k);
        span_print(f, r, -1, g_rep, k);
        fputc('\n', f);
    }
    /* the suggested default: the highest captured (pooled, mean over runs) among the variants
     * whose made-worse share meets the goal (<= 5%); when none does, the variant with the
     * lowest made-worse share (ties: the higher captured) */
    int pick = -1, meets = 0;
    double pick_cap = -INFINITY, pick_w = INFINITY;
    for (int k = 0; k < EXP_BT_N_GATE; k++) {
        double c, w, lo, hi;
        span(r, -1, g_pool, k, &c, &lo, &hi);
        span(r, -1, g_worse, k, &w, &lo, &hi);
        if (!isfinite(c)) continue;
        if (!isfinite(w)) w = 0; /* nothing repriced: nothing made worse */
        int ok = w <= 0.05;
        if (ok && (!meets || c > pick_cap)) pick = k, pick_cap = c, pick_w = w, meets = 1;
        else if (!meets && (w < pick_w - 1e-12 || (fabs(w - pick_w) <= 1e-12 && c > pick_cap)))
            pick = k, pick_cap = c, pick_w = w;
    }
    if (pick >= 0)
        fprintf(f, "  suggested nightly.gate_mode = %d (%s), nightly.gate_level = %.2f: captured %.1f%%, made worse %.1f%% "
                   "over every run (%s)\n",
                pick / EXP_BT_N_LEVELS, exp_gate_mode_name(pick / EXP_BT_N_LEVELS), exp_bt_gate_level[pick % EXP_BT_N_LEVELS],
                100 * pick_cap, 100 * pick_w,
                meets ? "the most captured with <= 5% made worse"
                      : "no level keeps made worse <= 5%: the level with the least made worse");
    int agree = 0, valued = 0;
    for (int i = 0; i < r->n_runs; i++) agree += r->runs[i].n_gate_agree, valued += r->runs[i].n_valued;
    if (r->n_runs && r->runs[0].gate_default >= 0)
        fprintf(f, "  (the %s %.0f%% row is the nightly's rule: it matches the pushed price on %d of %d products)\n",
                exp_gate_mode_name(r->runs[0].gate_default / EXP_BT_N_LEVELS),
                100 * exp_bt_gate_level[r->runs[0].gate_default % EXP_BT_N_LEVELS], agree, valued);
}

/* ---- JSON ---------------------------------------------------------------------------------------- */
static json_object *jnum(double x) { return isfinite(x) ? json_object_new_double(x) : json_object_new_null(); }

static json_object *stats_json(const exp_bt_stats *s) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "n", json_object_new_int(s->n));
    json_object_object_add(o, "n_eval", json_object_new_int(s->n_eval));
    json_object_object_add(o, "n_repriced", json_object_new_int(s->n_repriced));
    json_object_object_add(o, "n_worse", json_object_new_int(s->n_worse));
    json_object_object_add(o, "n_outside", json_object_new_int(s->n_outside));
    json_object_object_add(o, "n_promo_only", json_object_new_int(s->n_promo_only));
    json_object_object_add(o, "captured_mean", jnum(s->captured_mean));
    json_object_object_add(o, "captured_pooled", jnum(s->captured_pooled));
    json_object_object_add(o, "worse_share", jnum(s->worse_share));
    json_object_object_add(o, "uplift_per_period", jnum(s->uplift_period));
    return o;
}

static json_object *run_json(const exp_bt_run *r) {
    json_object *o = json_object_new_object(), *pol = json_object_new_object(), *gate = json_object_new_array();
    json_object_object_add(o, "family", json_object_new_string(env_sim_family_name(r->family)));
    json_object_object_add(o, "seed", json_object_new_int64((int64_t)r->seed));
    json_object_object_add(o, "n_products", json_object_new_int(r->n_products));
    json_object_object_add(o, "n_days", json_object_new_int(r->n_days));
    json_object_object_add(o, "n_valued", json_object_new_int(r->n_valued));
    json_object_object_add(o, "attainable_per_period", jnum(r->attainable_period));
    json_object_object_add(o, "revenue_per_period", jnum(r->revenue_period));
    json_object_object_add(o, "seconds_nightly", jnum(r->seconds_nightly));
    for (int k = 0; k < EXP_BT_N_POL; k++) json_object_object_add(pol, pol_names[k], stats_json(&r->pol[k]));
    json_object_object_add(o, "policies", pol);
    for (int k = 0; k < EXP_BT_N_GATE; k++) {
        json_object *g = stats_json(&r->gate[k]);
        json_object_object_add(g, "gate", json_object_new_string(exp_gate_mode_name(k / EXP_BT_N_LEVELS)));
        json_object_object_add(g, "level", json_object_new_double(exp_bt_gate_level[k % EXP_BT_N_LEVELS]));
        json_object_array_add(gate, g);
    }
    json_object_object_add(o, "gate", gate);
    json_object *dep = json_object_new_object();
    for (int a = 1; a < EXP_N_AGENTS; a++)
        json_object_object_add(dep, exp_agent_name((exp_agent)a), json_object_new_int(r->n_deployed_by[a]));
    json_object_object_add(o, "deployed_by", dep);
    json_object_object_add(o, "n_gate_agree", json_object_new_int(r->n_gate_agree));
    json_object_object_add(o, "gate_default", json_object_new_int(r->gate_default));
    return o;
}

int exp_backtest_write_json(const char *path, const exp_bt_cfg *cfg, const exp_bt_result *r) {
    json_object *root = json_object_new_object(), *runs = json_object_new_array();
    if (!root || !runs) {
        json_object_put(root);
        json_object_put(runs);
        return ENG_ENOMEM;
    }
    json_object_object_add(root, "schema", json_object_new_string("rlprice.backtest/1"));
    json_object_object_add(root, "misset_lo", json_object_new_double(cfg->misset_lo));
    json_object_object_add(root, "misset_hi", json_object_new_double(cfg->misset_hi));
    json_object_object_add(root, "max_change_pct", json_object_new_double(cfg->max_change_pct));
    json_object_object_add(root, "floor", json_object_new_double(EXP_BT_FLOOR));
    json_object_object_add(root, "promo_rate", json_object_new_double(cfg->promo_rate));
    json_object_object_add(root, "like_periods", json_object_new_int(cfg->like_periods));
    for (int i = 0; i < r->n_runs; i++) json_object_array_add(runs, run_json(&r->runs[i]));
    json_object_object_add(root, "runs", runs);
    return bt_write_json_doc(path, root);
}
