/* exp_backtest_loop_out.c - the closed loop's tables, JSON and HTML page (exp_backtest_loop.h). */
#include "exp_backtest_loop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "eng_file.h"
#include "exp_backtest_int.h"
#include "exp_report.h"

static int ran(const exp_btl_run *r, int l) { return (r->lanes & (1u << l)) && r->night[l]; }

double exp_btl_cum_revenue(const exp_btl_run *r, exp_btl_lane l) {
    if (!ran(r, l)) return NAN;
    double s = 0;
    for (int n = 0; n < r->n_nights; n++) s += r->night[l][n].exp_revenue;
    return s;
}

static double cum_field(const exp_btl_run *r, int l, int what) {
    if (!ran(r, l)) return NAN;
    double s = 0;
    for (int n = 0; n < r->n_nights; n++) {
        const exp_btl_night *x = &r->night[l][n];
        s += what == 0 ? x->exp_profit : what == 1 ? x->exp_traffic : (double)x->n_outside;
    }
    return s;
}

/* (lane l - manual) / (lane ref - manual), cumulative expected revenue; NaN when either did not run
 * or ref gains nothing over manual pricing. */
static double captured_vs(const exp_btl_run *r, exp_btl_lane l, exp_btl_lane ref) {
    double v = exp_btl_cum_revenue(r, l), m = exp_btl_cum_revenue(r, EXP_BTL_MANUAL), o = exp_btl_cum_revenue(r, ref);
    return isfinite(v) && isfinite(o) && o - m > 1e-9 * fabs(m) ? (v - m) / (o - m) : NAN;
}

double exp_btl_captured(const exp_btl_run *r, exp_btl_lane l) { return captured_vs(r, l, EXP_BTL_ORACLE); }
double exp_btl_captured_held(const exp_btl_run *r, exp_btl_lane l) { return captured_vs(r, l, EXP_BTL_HELD); }
double exp_btl_captured_free(const exp_btl_run *r, exp_btl_lane l) { return captured_vs(r, l, EXP_BTL_FREE); }
double exp_btl_captured_going(const exp_btl_run *r, exp_btl_lane l) { return captured_vs(r, l, EXP_BTL_GOING); }

double exp_btl_explore_share(const exp_btl_run *r) {
    const exp_btl_night *e = r->night[EXP_BTL_ENGINE];
    double c = 0, v = 0;
    for (int n = 0; e && n < r->n_nights; n++) c += e[n].explore_cost, v += e[n].exp_revenue;
    return v > 0 ? c / v : NAN;
}

static double onestep_cum(const exp_btl_run *r, int a) {
    double s = 0;
    for (int n = 0; r->onestep[a] && n < r->n_nights; n++) s += r->onestep[a][n];
    return s;
}

/* The engine's warm/cold times: cold = its first night, warm = the mean of the later nights that
 * warm-started, and each such night's ratio to the cold one (mean, max); cpu = 1: the nightly's CPU
 * seconds in this process, 0: wall seconds.  NaN when there is no such night. */
typedef struct btl_times {
    double cold, warm, mean_ratio, max_ratio;
    int n_warm;
} btl_times;

static btl_times engine_times(const exp_btl_run *r, int cpu) {
    const exp_btl_night *e = r->night[EXP_BTL_ENGINE];
    btl_times t = {NAN, NAN, NAN, NAN, 0};
    if (!e || r->n_nights < 1) return t;
    t.cold = cpu ? e[0].cpu_seconds : e[0].seconds;
    double s = 0, q = 0, mx = -INFINITY;
    for (int n = 1; n < r->n_nights; n++) {
        if (!e[n].warm_loaded) continue;
        double v = cpu ? e[n].cpu_seconds : e[n].seconds;
        s += v, q += v / t.cold, mx = fmax(mx, v / t.cold), t.n_warm++;
    }
    if (t.n_warm) t.warm = s / t.n_warm, t.mean_ratio = q / t.n_warm, t.max_ratio = mx;
    return t;
}

static void print_run(FILE *f, const exp_btl_run *r) {
    fprintf(f, "\nfamily %s, seed %llu: %d products, %d days of history, %d nights (%.0f s); oracle: %s\n",
            env_sim_family_name(r->family), (unsigned long long)r->seed, r->n_products, r->n_days, r->n_nights,
            r->seconds_total,
            r->oracle_dp ? "DP over the nights held to the change limit (state: reference x price in force)"
                         : "myopic (the day's best price)");
    if (r->oracle_dp)
        fprintf(f, "  DP oracles: %d price levels per product held to the change limit, 64 free; %.2f s cpu for both\n",
                r->dp_levels, r->dp_cpu_seconds);
    fprintf(f, "  expected revenue per night (sum over products, under the truth)\n  %5s", "night");
    for (int l = 0; l < EXP_BTL_N_LANE; l++)
        if (ran(r, l)) fprintf(f, " %12s", exp_btl_lane_name((exp_btl_lane)l));
    fprintf(f, " %9s %8s %8s %6s %6s\n", "repriced", "seconds", "cpu s", "warm", "rows");
    for (int n = 0; n < r->n_nights; n++) {
        fprintf(f, "  %5d", n + 1);
        for (int l = 0; l < EXP_BTL_N_LANE; l++)
            if (ran(r, l)) fprintf(f, " %12.1f", r->night[l][n].exp_revenue);
        const exp_btl_night *e = &r->night[EXP_BTL_ENGINE][n];
        fprintf(f, " %9d %8.1f %8.1f %6s %6ld\n", e->n_repriced, e->seconds, e->cpu_seconds, e->warm_loaded ? "yes" : "no",
                e->rows_loaded);
    }
    fprintf(f, "  cumulative over %d nights:\n  %-13s %14s %10s %14s %10s %9s %8s\n", r->n_nights, "lane", "exp. revenue",
            "rev/visit", "exp. profit", "vs manual", "captured", "outside");
    double man = exp_btl_cum_revenue(r, EXP_BTL_MANUAL);
    for (int l = 0; l < EXP_BTL_N_LANE; l++) {
        if (!ran(r, l)) continue;
        double v = exp_btl_cum_revenue(r, (exp_btl_lane)l), cap = exp_btl_captured(r, (exp_btl_lane)l);
        fprintf(f, "  %-13s %14.1f %10.4f %14.1f %+9.2f%% ", exp_btl_lane_name((exp_btl_lane)l), v,
                v / cum_field(r, l, 1), cum_field(r, l, 0), 100 * (v / man - 1));
        if (isfinite(cap)) fprintf(f, "%8.1f%%", 100 * cap);
        else fprintf(f, "%9s", "-");
        if (exp_btl_lane_nightly((exp_btl_lane)l)) fprintf(f, " %8.0f\n", cum_field(r, l, 2));
        else fprintf(f, " %8s\n", "-");
    }
    double o = exp_btl_cum_revenue(r, EXP_BTL_ORACLE);
    if (ran(r, EXP_BTL_HELD))
        fprintf(f, "  held reference (the standing optimum approached within the change limit, not the goal's oracle): "
                   "%+.2f%% vs manual; the engine captures %.1f%% of its gain\n",
                100 * (exp_btl_cum_revenue(r, EXP_BTL_HELD) / man - 1), 100 * exp_btl_captured_held(r, EXP_BTL_ENGINE));
    if (ran(r, EXP_BTL_FREE))
        fprintf(f, "  oracle:free (the DP NOT held to the change limit, the ref yardstick before q13dp; no lane held to "
                   "the limit can reach it): %+.2f%% vs manual; the engine captures %.1f%% of its gain, the held DP "
                   "oracle %.1f%%\n",
                100 * (exp_btl_cum_revenue(r, EXP_BTL_FREE) / man - 1), 100 * exp_btl_captured_free(r, EXP_BTL_ENGINE),
                100 * exp_btl_captured_free(r, EXP_BTL_ORACLE));
    if (ran(r, EXP_BTL_GOING))
        fprintf(f, "  oracle:going (the truth's DP held to the change limit, re-planned every night over the next %d nights: a "
                   "going concern, without the oracle's cuts at the loop's end): %+.2f%% vs manual, %.1f%% of the oracle's "
                   "gain; the engine captures %.1f%% of its gain\n",
                r->n_nights, 100 * (exp_btl_cum_revenue(r, EXP_BTL_GOING) / man - 1), 100 * exp_btl_captured(r, EXP_BTL_GOING),
                100 * exp_btl_captured_going(r, EXP_BTL_ENGINE));
    fprintf(f, "  each agent's price on the engine's own path (one night each, no carry-over), captured:");
    static const exp_agent shown[] = {EXP_AGENT_HISTORY, EXP_AGENT_DQN, EXP_AGENT_DDPG, EXP_AGENT_LINUCB, EXP_AGENT_FIXED};
    for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++)
        fprintf(f, " %s %.1f%%", shown[k] == EXP_AGENT_HISTORY ? "hold" : exp_agent_name(shown[k]),
                100 * (onestep_cum(r, shown[k]) - man) / (o - man));
    btl_times tw = engine_times(r, 0), tc = engine_times(r, 1);
    int mism = 0;
    for (int n = 0; n < r->n_nights; n++) mism += r->night[EXP_BTL_ENGINE][n].n_mismatch;
    int nx = 0;
    double est = 0, rev = exp_btl_cum_revenue(r, EXP_BTL_ENGINE);
    for (int n = 0; n < r->n_nights; n++) nx += r->night[EXP_BTL_ENGINE][n].n_explored, est += r->night[EXP_BTL_ENGINE][n].explore_cost_est;
    fprintf(f, "\n  exploration: %d draws over %d nights; cost under the truth %.1f = %.3f%% of the engine's revenue "
               "(the nightly's own estimate %.1f)",
            nx, r->n_nights, exp_btl_explore_share(r) * rev, 100 * exp_btl_explore_share(r), est);
    int wt = 0, ws = 0;
    double wlo = INFINITY, whi = -INFINITY;
    for (int n = 0; n < r->n_nights; n++) {
        const exp_btl_night *e = &r->night[EXP_BTL_ENGINE][n];
        if (!e->window_tested) continue;
        wt++, ws += e->window_short;
        const double sh = e->window_carry_tested > 0 ? (double)e->window_carry / e->window_carry_tested : NAN;
        if (isfinite(sh)) wlo = fmin(wlo, sh), whi = fmax(whi, sh);
    }
    if (wt && wlo <= whi)
        fprintf(f, "\n  window (nightly.window_carryover_days): %d of %d nights tested chose the short window; carry-over "
                   "in %.0f-%.0f%% of the fitted products a night", ws, wt, 100 * wlo, 100 * whi);
    else if (wt) /* no night fitted a product: no share to show */
        fprintf(f, "\n  window (nightly.window_carryover_days): %d of %d nights tested chose the short window; no "
                   "product fitted", ws, wt);
    fprintf(f, "\n  harm: %d of %d products with a lower cumulative expected revenue than manual pricing's (%d by more "
               "than 1%%)", r->n_worse, r->n_products, r->n_worse1);
    fprintf(f, "\n  engine nightly: night 1 %.1f s wall, %.1f s cpu (cold); %d warm nights %.1f s wall, %.1f s cpu on "
               "average; warm/cold per night: wall mean %.0f%% max %.0f%%, cpu mean %.0f%% max %.0f%% (goal <= 20%%); "
               "pushed prices read back unlike the decisions: %d\n",
            tw.cold, tc.cold, tw.n_warm, tw.warm, tc.warm, 100 * tw.mean_ratio, 100 * tw.max_ratio, 100 * tc.mean_ratio,
            100 * tc.max_ratio, mism);
}

/* mean [min, max] of lane l's captured share by yardstick cap (exp_btl_captured, _held, _free)
 * over the runs of family fam (-1: all) where it is finite; returns their count. */
static int cap_stats(const exp_btl_result *r, int fam, int l, double (*cap)(const exp_btl_run *, exp_btl_lane),
                     double *mean, double *mn, double *mx) {
    int k = 0;
    double s = 0;
    *mn = INFINITY, *mx = -INFINITY;
    for (int i = 0; i < r->n_runs; i++) {
        if (fam >= 0 && r->runs[i].family != (env_sim_family)fam) continue;
        double c = cap(&r->runs[i], (exp_btl_lane)l);
        if (!isfinite(c)) continue;
        s += c, k++;
        *mn = fmin(*mn, c), *mx = fmax(*mx, c);
    }
    *mean = k ? s / k : NAN;
    return k;
}

void exp_backtest_loop_print(FILE *f, const exp_btl_cfg *cfg, const exp_btl_result *r) {
    fprintf(f, "closed loop: %d products, %d days of history, %d nights, change limit %g%%, %s nights after the first%s\n",
            cfg->bt.n_products, cfg->bt.n_days, cfg->n_nights, cfg->bt.max_change_pct, cfg->cold ? "cold" : "warm",
            cfg->keep_history == 1   ? ", every night the whole history"
            : cfg->keep_history == 2 ? ", the whole history after a night without carry-over (engine)"
                                     : "");
    for (int i = 0; i < r->n_runs; i++) print_run(f, &r->runs[i]);
    if (!r->n_runs) return;
    fprintf(f, "\nsummary: captured = (lane - manual) / (oracle - manual), cumulative expected revenue; "
               "mean [min, max] over runs\n  %-13s", "lane");
    for (int fam = 1; fam < ENV_SIM_FAMILY_COUNT; fam++) fprintf(f, " %24s", env_sim_family_name((env_sim_family)fam));
    fprintf(f, " %24s\n", "all runs");
    for (int l = 0; l < EXP_BTL_N_LANE; l++) {
        int any = 0;
        for (int i = 0; i < r->n_runs; i++) any |= ran(&r->runs[i], l);
        if (!any || l == EXP_BTL_MANUAL || l == EXP_BTL_ORACLE) continue;
        fprintf(f, "  %-13s", exp_btl_lane_name((exp_btl_lane)l));
        for (int fam = 1; fam <= ENV_SIM_FAMILY_COUNT; fam++) {
            double m, lo, hi;
            int k = cap_stats(r, fam == ENV_SIM_FAMILY_COUNT ? -1 : fam, l, exp_btl_captured, &m, &lo, &hi);
            char b[64] = "-";
            if (k) snprintf(b, sizeof b, "%.1f%% [%.1f, %.1f]", 100 * m, 100 * lo, 100 * hi);
            fprintf(f, " %24s", b);
        }
        fputc('\n', f);
    }
    /* goals */
    double m, lo, hi, ws = 0, wmax = -INFINITY;
    int nw = 0;
    cap_stats(r, -1, EXP_BTL_ENGINE, exp_btl_captured, &m, &lo, &hi);
    fprintf(f, "\ngoals (issue 13):\n  engine captures >= 70%% of the oracle's gain over manual pricing: %.1f%% on "
               "average, %.1f%% in the worst run: %s\n",
            100 * m, 100 * lo, isfinite(lo) && lo >= 0.70 ? "met" : "NOT MET");
    double bm, blo, bhi;
    if (cap_stats(r, -1, EXP_BTL_ENGINE, exp_btl_captured_held, &bm, &blo, &bhi))
        fprintf(f, "  beside it (not the goal): the engine's share of the held reference's gain (standing optimum within the "
                   "change limit): %.1f%% [%.1f, %.1f]\n", 100 * bm, 100 * blo, 100 * bhi);
    if (cap_stats(r, -1, EXP_BTL_ENGINE, exp_btl_captured_free, &bm, &blo, &bhi))
        fprintf(f, "  beside it on ref (not the goal): the engine's share of the gain of the DP free of the change limit "
                   "(oracle:free, the yardstick before q13dp): %.1f%% [%.1f, %.1f]\n", 100 * bm, 100 * blo, 100 * bhi);
    if (cap_stats(r, -1, EXP_BTL_ENGINE, exp_btl_captured_going, &bm, &blo, &bhi))
        fprintf(f, "  beside it on ref (not the goal): the engine's share of the going concern's gain (oracle:going, the "
                   "truth's DP re-planned every night): %.1f%% [%.1f, %.1f]\n", 100 * bm, 100 * blo, 100 * bhi);
    double xs = -INFINITY;
    for (int i = 0; i < r->n_runs; i++) xs = fmax(xs, exp_btl_explore_share(&r->runs[i]));
    if (cfg->explore.share > 0)
        fprintf(f, "  exploration cost <= 1%% of revenue (share %g, max step %g, budget %g): at most %.3f%% in a run: %s\n",
                cfg->explore.share, cfg->explore.max_step, cfg->explore.max_cost, 100 * xs, xs <= 0.01 ? "met" : "NOT MET");
    else
        fprintf(f, "  exploration cost <= 1%% of revenue: exploration was off in this run (--explore SHARE turns it on)\n");
    for (int i = 0; i < r->n_runs; i++) {
        const exp_btl_run *x = &r->runs[i];
        btl_times tc = engine_times(x, 1);
        if (tc.n_warm && tc.cold > 0) ws += tc.mean_ratio, wmax = fmax(wmax, tc.max_ratio), nw++;
        if (x->family != ENV_SIM_FAMILY_REF || !ran(x, EXP_BTL_DQN) || !ran(x, EXP_BTL_LINUCB)) continue;
        double one = fmax(exp_btl_cum_revenue(x, EXP_BTL_LINUCB), exp_btl_cum_revenue(x, EXP_BTL_FIXED));
        double dq = exp_btl_cum_revenue(x, EXP_BTL_DQN), dd = exp_btl_cum_revenue(x, EXP_BTL_DDPG);
        fprintf(f, "  ref seed %llu: long-horizon alone (dqn %.1f, ddpg %.1f) >= best one-step alone (%.1f): dqn %s, "
                   "ddpg %s\n",
                (unsigned long long)x->seed, dq, dd, one, dq >= one ? "met" : "NOT MET", dd >= one ? "met" : "NOT MET");
    }
    if (nw)
        fprintf(f, "  warm night <= 20%% of a cold one (cpu seconds of the nightly, per warm night): %.0f%% on average over "
                   "%d runs, %.0f%% at most: %s\n", 100 * ws / nw, nw, 100 * wmax, ws / nw <= 0.20 ? "met" : "NOT MET");
}

/* ---- JSON ------------------------------------------------------------------------------------- */
static json_object *arr_of(const exp_btl_night *x, int n, int what) {
    json_object *a = json_object_new_array();
    for (int k = 0; a && k < n; k++) {
        const exp_btl_night *e = &x[k];
        double v = what == 0   ? e->exp_revenue
                   : what == 1 ? e->exp_profit
                   : what == 2 ? e->exp_traffic
                   : what == 3 ? e->seconds
                   : what == 4 ? e->n_repriced
                   : what == 5 ? e->n_outside
                   : what == 6 ? e->rows_loaded
                   : what == 7 ? e->warm_loaded
                   : what == 8 ? e->n_mismatch
                   : what == 9 ? e->n_explored
                   : what == 10 ? e->explore_cost
                   : what == 11 ? e->explore_cost_est
                   : what == 12 ? e->sec_train
                   : what == 13 ? e->sec_ope
                   : what == 14 ? e->cpu_seconds
                                : e->n_periods;
        json_object_array_add(a, json_object_new_double(v));
    }
    return a;
}

static json_object *run_json(const exp_btl_run *r) {
    static const char *const fields[] = {"exp_revenue", "exp_profit",  "exp_traffic",       "seconds",
                                         "repriced",    "outside",     "rows_loaded",       "warm_groups",
                                         "readback_mismatch", "explored", "explore_cost", "explore_cost_est",
                                         "sec_train",   "sec_ope",     "cpu_seconds", "periods_loaded"};
    json_object *o = json_object_new_object(), *lanes = json_object_new_object(), *one = json_object_new_object();
    json_object_object_add(o, "family", json_object_new_string(env_sim_family_name(r->family)));
    json_object_object_add(o, "seed", json_object_new_int64((int64_t)r->seed));
    json_object_object_add(o, "products", json_object_new_int(r->n_products));
    json_object_object_add(o, "days", json_object_new_int(r->n_days));
    json_object_object_add(o, "nights", json_object_new_int(r->n_nights));
    json_object_object_add(o, "seconds_total", json_object_new_double(r->seconds_total));
    json_object_object_add(o, "oracle", json_object_new_string(r->oracle_dp ? "dp_change_limit" : "myopic"));
    if (r->oracle_dp) {
        json_object_object_add(o, "oracle_free", json_object_new_string("dp"));
        json_object_object_add(o, "dp_levels", json_object_new_int(r->dp_levels));
        json_object_object_add(o, "dp_cpu_seconds", json_object_new_double(r->dp_cpu_seconds));
    }
    json_object_object_add(o, "products_worse_than_manual", json_object_new_int(r->n_worse));
    json_object_object_add(o, "products_worse_than_manual_1pct", json_object_new_int(r->n_worse1));
    for (int l = 0; l < EXP_BTL_N_LANE; l++) {
        if (!ran(r, l)) continue;
        json_object *x = json_object_new_object();
        for (int w = 0; w < (int)(sizeof fields / sizeof fields[0]); w++) json_object_object_add(x, fields[w], arr_of(r->night[l], r->n_nights, w));
        json_object_object_add(x, "cum_exp_revenue", json_object_new_double(exp_btl_cum_revenue(r, (exp_btl_lane)l)));
        double c = exp_btl_captured(r, (exp_btl_lane)l);
        json_object_object_add(x, "captured", isfinite(c) ? json_object_new_double(c) : NULL);
        c = exp_btl_captured_held(r, (exp_btl_lane)l);
        json_object_object_add(x, "captured_vs_held", isfinite(c) ? json_object_new_double(c) : NULL);
        if (ran(r, EXP_BTL_FREE)) {
            c = exp_btl_captured_free(r, (exp_btl_lane)l);
            json_object_object_add(x, "captured_vs_free", isfinite(c) ? json_object_new_double(c) : NULL);
        }
        if (ran(r, EXP_BTL_GOING)) {
            c = exp_btl_captured_going(r, (exp_btl_lane)l);
            json_object_object_add(x, "captured_vs_going", isfinite(c) ? json_object_new_double(c) : NULL);
        }
        json_object_object_add(lanes, exp_btl_lane_name((exp_btl_lane)l), x);
    }
    json_object_object_add(o, "lanes", lanes);
    json_object *stg = json_object_new_array(); /* the engine's per-stage "name wall/cpu" seconds per night */
    for (int n = 0; r->night[EXP_BTL_ENGINE] && n < r->n_nights; n++)
        json_object_array_add(stg, json_object_new_string(r->night[EXP_BTL_ENGINE][n].stages));
    json_object_object_add(o, "engine_stages", stg);
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        json_object *x = json_object_new_array();
        for (int n = 0; r->onestep[a] && n < r->n_nights; n++) json_object_array_add(x, json_object_new_double(r->onestep[a][n]));
        json_object_object_add(one, a == EXP_AGENT_HISTORY ? "hold" : exp_agent_name((exp_agent)a), x);
    }
    json_object_object_add(o, "onestep_on_engine_path", one);
    return o;
}

int exp_backtest_loop_write_json(const char *path, const exp_btl_cfg *cfg, const exp_btl_result *r) {
    json_object *root = json_object_new_object(), *runs = json_object_new_array();
    if (!root || !runs) {
        json_object_put(root);
        json_object_put(runs);
        return ENG_ENOMEM;
    }
    json_object_object_add(root, "schema", json_object_new_string("rlprice.backtest_loop/1"));
    json_object_object_add(root, "nights", json_object_new_int(cfg->n_nights));
    json_object_object_add(root, "cold", json_object_new_boolean(cfg->cold));
    json_object_object_add(root, "keep_history", json_object_new_int(cfg->keep_history));
    json_object_object_add(root, "explore_share", json_object_new_double(cfg->explore.share));
    json_object_object_add(root, "explore_max_step", json_object_new_double(cfg->explore.max_step));
    json_object_object_add(root, "explore_max_cost", json_object_new_double(cfg->explore.max_cost));
    json_object_object_add(root, "max_change_pct", json_object_new_double(cfg->bt.max_change_pct));
    json_object_object_add(root, "misset_lo", json_object_new_double(cfg->bt.misset_lo));
    json_object_object_add(root, "misset_hi", json_object_new_double(cfg->bt.misset_hi));
    for (int i = 0; i < r->n_runs; i++) json_object_array_add(runs, run_json(&r->runs[i]));
    json_object_object_add(root, "runs", runs);
    return bt_write_json_doc(path, root);
}

/* ---- HTML: cumulative expected revenue minus manual pricing's, one chart per run -------------- */
int exp_backtest_loop_write_html(const char *path, const exp_btl_cfg *cfg, const exp_btl_result *r) {
    int st = ENG_OK, nc = r->n_runs;
    exp_report_chart *ch = eng_calloc((size_t)(nc ? nc : 1), sizeof *ch);
    float *buf = eng_calloc((size_t)(nc ? nc : 1) * EXP_BTL_N_LANE * (size_t)cfg->n_nights, sizeof(float));
    const float **ys = eng_calloc((size_t)(nc ? nc : 1) * EXP_BTL_N_LANE, sizeof *ys);
    const char **labels = eng_calloc((size_t)(nc ? nc : 1) * EXP_BTL_N_LANE, sizeof *labels);
    char (*titles)[160] = eng_calloc((size_t)(nc ? nc : 1), sizeof *titles);
    if (!ch || !buf || !ys || !labels || !titles) { st = ENG_ENOMEM; goto cleanup; }
    for (int i = 0; i < nc; i++) {
        const exp_btl_run *x = &r->runs[i];
        int ns = 0;
        for (int l = 0; l < EXP_BTL_N_LANE; l++) {
            if (!ran(x, l) || l == EXP_BTL_MANUAL) continue;
            float *y = buf + ((size_t)i * EXP_BTL_N_LANE + ns) * cfg->n_nights;
            double s = 0;
            for (int n = 0; n < x->n_nights && n < cfg->n_nights; n++)
                y[n] = (float)((s += x->night[l][n].exp_revenue - x->night[EXP_BTL_MANUAL][n].exp_revenue) / 1000);
            ys[i * EXP_BTL_N_LANE + ns] = y;
            labels[i * EXP_BTL_N_LANE + ns++] = exp_btl_lane_name((exp_btl_lane)l);
        }
        snprintf(titles[i], sizeof titles[i], "%s, seed %llu: cumulative expected revenue minus manual pricing's",
                 env_sim_family_name(x->family), (unsigned long long)x->seed);
        ch[i] = (exp_report_chart){titles[i], "over manual, thousands", ns, x->n_nights, labels + i * EXP_BTL_N_LANE,
                                   ys + i * EXP_BTL_N_LANE};
    }
    char intro[512];
    snprintf(intro, sizeof intro,
             "%d products, %d days of simulated history, then %d nights of the real nightly in a closed loop "
             "(docs/backtest.md, \"Closed loop\"). Each curve is a lane's cumulative expected revenue under the "
             "simulator's truth minus that of keeping the list prices (manual pricing), in thousands; the x "
             "axis counts nights (\"period\").",
             cfg->bt.n_products, cfg->bt.n_days, cfg->n_nights);
    const char *paras[] = {intro, NULL};
    st = exp_report_curves_html(path, "rlprice closed-loop backtest", paras, nc, ch);
cleanup:
    free(ch), free(buf), free(ys), free(labels), free(titles);
    return st;
}
