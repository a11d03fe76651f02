/* exp_backtest_cmd.c - `rlprice backtest` (experiments/backtest/exp_backtest.h, docs/backtest.md). */
#include "rlp_cmd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_parse.h"
#include "exp_backtest.h"
#include "exp_backtest_loop.h"

static void usage(FILE *f) {
    fprintf(f, "usage: rlprice backtest [--family logit|ce|ref|preset|all|LIST] [--seed S] [--seeds N]\n"
               "                        [--products 300] [--days 120] [--misset LO,HI] [--max-change PCT]\n"
               "                        [--traffic FACTOR] [--promo RATE [--promo-lift LO,HI]]\n"
               "                        [--nights N [--alone LIST|all|none] [--cold] [--keep-history 0|1|2] [--html FILE]\n"
               "                         [--explore SHARE [--explore-step S] [--explore-cost C] [--explore-mode neighbour|thompson]\n"
               "                          [--explore-temper T] [--explore-skip-carryover 0|1] [--explore-carryover-z Z]\n"
               "                          [--explore-carryover-share S] [--explore-held-only 0|1] [--explore-no-lag 0|1]]]\n"
               "                        [--gate-mode 0|1|2] [--gate-level L] [--gate-extend 0|1] [--gate-select L]\n"
               "                        [--gate-standing 0|1|H] [--gate-model-dir 0|1|2|3]\n"
               "                        [--gate-cut-standing 0..4] [--gate-plan 0|1|2] [--gate-plan-nights N] [--gate-plan-gamma G] [--gate-plan-paths 0|1]\n"
               "                        [--gate-plan-model 0|1]\n"
               "                        [--gate-support W] [--gate-min-gain G] [--endings]\n"
               "                        [--window-carryover-days N [--window-carryover-share S]]\n"
               "                        [--db CONNINFO] [--keep] [--out DIR] [--device auto|cpu|cuda]\n"
               "                        [--json FILE] [--config FILE] [--quiet] [<setting flags, e.g. --dqn.lr=0.001>]\n"
               "  simulates a history with known truth, imports it into a throwaway database, runs the nightly\n"
               "  and values every agent's next price and the pushed prices under the truth (docs/backtest.md).\n"
               "  --family all = logit,ce,ref (the default).  --gate-mode / --gate-level ...: the nightly's\n"
               "  nightly.gate_mode (0 ope, 1 model, 2 both), gate_level, ... (defaults: the nightly's).\n"
               "  --promo RATE: exogenous promotions in that share of the periods (a calendar that lifts demand\n"
               "  by a logit U(LO, HI), default 0.4,0.9, and comes with price cuts in the history; the truth values\n"
               "  the next price in a normal period; docs/backtest.md \"Promotions\").\n"
               "  --window-carryover-days N: the nightly's nightly.window_carryover_days (its own carry-over test picks\n"
               "  the last N days when more than --window-carryover-share S (0.2) of its fitted products show carry-over;\n"
               "  in the loop with --keep-history 1 it chooses between the whole history and N days).\n"
               "  --endings: the one-night run keeps the nightly's price endings (guard.endings, .99/.49 by default;\n"
               "  without it whole cents, the grid of the best price it is valued against).\n"
               "  --nights N: the closed loop (docs/backtest.md, \"Closed loop\"): N nights of the nightly, each\n"
               "  night's prices sold under the truth and loaded for the next; lanes engine, manual, oracle and\n"
               "  each agent alone (--alone dqn,ddpg,linucb,fixed; the default all); --cold: no checkpoints;\n"
               "  --keep-history 1: every night's nightly loads the whole history (nightly.window_days 0; default 0:\n"
               "  a sliding window of --days days; 2: the engine's, after a night whose exploration found carry-over in at most\n"
               "  --explore-carryover-share of the products it tested);\n"
               "  --html FILE: the cumulative curves (default <out>/loop.html); --explore SHARE: the engine's logged\n"
               "  exploration (nightly.explore.share; -step, -cost, -mode: .max_step, .max_cost, .mode; -temper,\n"
               "  -skip-carryover, -carryover-z, -carryover-share, -held-only: the same names), its cost under the truth.\n");
}

/* "logit,ce" / "all" into cfg->families.  0 or ENG_EINVAL. */
static int parse_families(const char *s, exp_bt_cfg *cfg) {
    if (!strcmp(s, "all")) {
        exp_bt_cfg d = exp_bt_default();
        cfg->n_families = d.n_families;
        memcpy(cfg->families, d.families, sizeof d.families);
        return ENG_OK;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    cfg->n_families = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        env_sim_family f;
        if (env_sim_family_parse(tok, &f)) return ENG_EINVAL;
        if (cfg->n_families >= ENV_SIM_FAMILY_COUNT) return eng_err_set(ENG_EINVAL, "--family: too many families");
        cfg->families[cfg->n_families++] = f;
    }
    return cfg->n_families ? ENG_OK : eng_err_set(ENG_EINVAL, "--family: empty list");
}

/* *out = v as a float in [lo, hi]; 0 or ENG_EINVAL (out untouched). */
static int parse_float(const char *flag, const char *v, float lo, float hi, float *out) {
    char *end = NULL;
    float x = v ? strtof(v, &end) : 0;
    if (!v || *end || !(x >= lo && x <= hi)) return eng_err_set(ENG_EINVAL, "%s: expected a number in [%g, %g]", flag, lo, hi);
    *out = x;
    return ENG_OK;
}

/* A whole positive number or ENG_EINVAL. */
static int parse_int(const char *flag, const char *v, int lo, int *out) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > 10000000) return eng_err_set(ENG_EINVAL, "%s: expected a whole number >= %d", flag, lo);
    *out = (int)x;
    return ENG_OK;
}

/* A real number v of flag into *out, inside the interval (lo, hi) - each end included when its
 * flag lo_in / hi_in is 1 - else ENG_EINVAL "flag: expected <expect>" and *out unchanged. */
static int parse_real(const char *flag, const char *v, double lo, int lo_in, double hi, int hi_in, const char *expect,
                      double *out) {
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || !(lo_in ? x >= lo : x > lo) || !(hi_in ? x <= hi : x < hi))
        return eng_err_set(ENG_EINVAL, "%s: expected %s", flag, expect);
    *out = x;
    return ENG_OK;
}

/* The closed loop's exploration flags (--explore*) into e: 1 with *st set when a is one of them,
 * else 0. */
static int parse_explore(const char *a, const char *v, exp_explore_cfg *e, int *st) {
    if (strncmp(a, "--explore", 9)) return 0;
    if (!strcmp(a, "--explore-temper")) *st = parse_float(a, v, 1e-6, 1, &e->temper);
    else if (!strcmp(a, "--explore-carryover-z")) *st = parse_float(a, v, 1e-6, 10, &e->carryover_z);
    else if (!strcmp(a, "--explore-carryover-share")) *st = parse_float(a, v, 0, 1, &e->carryover_share);
    else if (!strcmp(a, "--explore-skip-carryover") || !strcmp(a, "--explore-held-only") || !strcmp(a, "--explore-no-lag")) {
        int *o = a[10] == 's' ? &e->skip_carryover : a[10] == 'h' ? &e->held_only : &e->no_lag;
        *st = parse_int(a, v, 0, o);
        if (!*st && *o > 1) *st = eng_err_set(ENG_EINVAL, "%s: expected 0 or 1", a);
    } else if (!strcmp(a, "--explore") || !strcmp(a, "--explore-step") || !strcmp(a, "--explore-cost")) {
        char *end = NULL;
        float x = strtof(v, &end);
        if (*end || !(x >= 0 && x <= 1)) *st = eng_err_set(ENG_EINVAL, "%s: expected a share in [0, 1]", a);
        else if (!strcmp(a, "--explore")) e->share = x;
        else if (!strcmp(a, "--explore-step")) e->max_step = x;
        else e->max_cost = x;
    } else if (!strcmp(a, "--explore-mode")) {
        if (!strcmp(v, "neighbour") || !strcmp(v, "0")) e->mode = EXP_EXPLORE_NEIGHBOUR;
        else if (!strcmp(v, "thompson") || !strcmp(v, "1")) e->mode = EXP_EXPLORE_THOMPSON;
        else *st = eng_err_set(ENG_EINVAL, "--explore-mode: expected neighbour or thompson");
    } else return 0;
    return 1;
}

/* The nightly's gate flags (--gate-*) into cfg: 1 with *st set when a is one of them, else 0. */
static int parse_gate(const char *a, const char *v, exp_bt_cfg *cfg, int *st) {
    if (!strcmp(a, "--gate-mode")) *st = parse_int(a, v, 0, &cfg->gate_mode);
    else if (!strcmp(a, "--gate-extend")) *st = parse_int(a, v, 0, &cfg->gate_extend);
    else if (!strcmp(a, "--gate-standing")) *st = parse_int(a, v, 0, &cfg->gate_standing);
    else if (!strcmp(a, "--gate-model-dir")) *st = parse_int(a, v, 0, &cfg->gate_model_dir);
    else if (!strcmp(a, "--gate-cut-standing")) *st = parse_int(a, v, 0, &cfg->gate_cut_standing);
    else if (!strcmp(a, "--gate-plan")) *st = parse_int(a, v, 0, &cfg->gate_plan);
    else if (!strcmp(a, "--gate-plan-paths")) *st = parse_int(a, v, 0, &cfg->gate_plan_paths);
    else if (!strcmp(a, "--gate-plan-model")) *st = parse_int(a, v, 0, &cfg->gate_plan_model);
    else if (!strcmp(a, "--gate-plan-nights")) *st = parse_int(a, v, 1, &cfg->gate_plan_nights);
    else if (!strcmp(a, "--gate-plan-gamma")) *st = parse_real(a, v, 0, 0, 1, 1, "0 < G <= 1", &cfg->gate_plan_gamma);
    else if (!strcmp(a, "--gate-support"))
        *st = parse_real(a, v, -INFINITY, 0, INFINITY, 0, "a share (< 0: no limit)", &cfg->gate_support_widen);
    else if (!strcmp(a, "--gate-min-gain")) *st = parse_real(a, v, 0, 1, 1, 0, "0 <= G < 1", &cfg->gate_min_gain);
    else if (!strcmp(a, "--gate-select")) *st = parse_real(a, v, -INFINITY, 0, 1, 0, "L < 1", &cfg->gate_select);
    else if (!strcmp(a, "--gate-level")) *st = parse_real(a, v, 0, 0, 1, 0, "0 < L < 1", &cfg->gate_level);
    else if (!strcmp(a, "--window-carryover-days")) {
        if (!(*st = parse_int(a, v, 0, &cfg->window_carryover_days)) && cfg->window_carryover_days > 36500)
            *st = eng_err_set(ENG_EINVAL, "%s: expected 0 .. 36500 days", a);
    } else if (!strcmp(a, "--window-carryover-share"))
        *st = parse_real(a, v, 0, 1, 1, 1, "a share in [0, 1]", &cfg->window_carryover_share);
    else return 0;
    return 1;
}

/* "dqn,linucb" / "all" / "none" into lane bits.  0 or ENG_EINVAL. */
static int parse_alone(const char *s, unsigned *lanes) {
    *lanes = 0;
    if (!strcmp(s, "all")) { *lanes = EXP_BTL_ALL_LANES; return ENG_OK; }
    if (!strcmp(s, "none")) return ENG_OK;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int hit = 0;
        for (int l = EXP_BTL_DQN; l <= EXP_BTL_FIXED; l++)
            if (!strcmp(tok, exp_btl_lane_name((exp_btl_lane)l) + 6)) *lanes |= 1u << l, hit = 1;
        if (!hit) return eng_err_set(ENG_EINVAL, "--alone: unknown agent '%s' (dqn, ddpg, linucb, fixed, all, none)", tok);
    }
    return ENG_OK;
}

int exp_cmd_backtest(int argc, char **argv) {
    exp_bt_cfg cfg = exp_bt_default();
    exp_compare_cfg cc = exp_compare_default();
    exp_bt_result res = {0};
    const char *json = NULL, *config = NULL, *html = NULL;
    exp_btl_cfg lc = {.n_nights = 0, .lanes = EXP_BTL_ALL_LANES};
    {
        exp_nightly_cfg nd = exp_nightly_default(); /* the nightly's exploration defaults (off) */
        lc.explore = nd.explore;
        exp_compare_cfg_free(&nd.compare);
    }
    exp_btl_result lres = {0};
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, rc = 2, quiet = 0;
    if (!rest) { fprintf(stderr, "rlprice: out of memory\n"); exp_compare_cfg_free(&cc); return 1; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int st = ENG_OK, took = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); rc = 0; goto done; }
        else if (!strcmp(a, "--keep")) cfg.keep = 1, took = 0;
        else if (!strcmp(a, "--endings")) cfg.endings = 1, took = 0;
        else if (!strcmp(a, "--cold")) lc.cold = 1, took = 0;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1, took = 0;
        else if (!v && !strncmp(a, "--", 2) && !strchr(a, '=') && !strchr(a, '.')) st = eng_err_set(ENG_EINVAL, "%s needs a value", a);
        else if (!strcmp(a, "--family")) st = parse_families(v, &cfg);
        else if (!strcmp(a, "--seed")) {
            uint64_t s;
            if (eng_parse_u64(v, &s) != ENG_OK) st = eng_err_set(ENG_EINVAL, "--seed: expected a whole number (digits only), got '%s'", v);
            else cfg.seed = s;
        } else if (!strcmp(a, "--seeds")) st = parse_int(a, v, 1, &cfg.n_seeds);
        else if (!strcmp(a, "--products")) st = parse_int(a, v, 1, &cfg.n_products);
        else if (!strcmp(a, "--days")) st = parse_int(a, v, 16, &cfg.n_days);
        else if (!strcmp(a, "--misset")) {
            if (sscanf(v, "%lf,%lf", &cfg.misset_lo, &cfg.misset_hi) != 2 || !(cfg.misset_lo > 0) ||
                !(cfg.misset_hi >= cfg.misset_lo))
                st = eng_err_set(ENG_EINVAL, "--misset: expected LO,HI with 0 < LO <= HI");
        } else if (!strcmp(a, "--max-change")) st = parse_real(a, v, 0, 0, INFINITY, 0, "a percent > 0", &cfg.max_change_pct);
        else if (!strcmp(a, "--traffic")) st = parse_real(a, v, 0, 0, INFINITY, 0, "a factor > 0", &cfg.traffic_scale);
        else if (!strcmp(a, "--promo")) st = parse_real(a, v, 0, 1, 1, 0, "a share in [0, 1)", &cfg.promo_rate);
        else if (!strcmp(a, "--promo-lift")) {
            if (sscanf(v, "%lf,%lf", &cfg.promo_lift_lo, &cfg.promo_lift_hi) != 2 || !(cfg.promo_lift_hi >= cfg.promo_lift_lo))
                st = eng_err_set(ENG_EINVAL, "--promo-lift: expected LO,HI with LO <= HI");
        } else if (parse_gate(a, v, &cfg, &st)) {
        } else if (!strcmp(a, "--nights")) st = parse_int(a, v, 1, &lc.n_nights);
        else if (!strcmp(a, "--alone")) st = parse_alone(v, &lc.lanes);
        else if (!strcmp(a, "--keep-history")) {
            if (!(st = parse_int(a, v, 0, &lc.keep_history)) && lc.keep_history > 2)
                st = eng_err_set(ENG_EINVAL, "--keep-history: expected 0, 1 or 2");
        }
        else if (!strcmp(a, "--html")) html = v;
        else if (parse_explore(a, v, &lc.explore, &st)) {
        }
        else if (!strcmp(a, "--db")) cfg.conninfo = v;
        else if (!strcmp(a, "--out")) cfg.out_dir = v;
        else if (!strcmp(a, "--device")) cfg.device = v;
        else if (!strcmp(a, "--json")) json = v;
        else if (!strcmp(a, "--config")) config = v;
        else rest[nrest++] = argv[i], took = 0;
        if (st) goto bad;
        i += took;
    }
    if (strcmp(cfg.device, "auto") && strcmp(cfg.device, "cpu") && strcmp(cfg.device, "cuda")) {
        eng_err_set(ENG_EINVAL, "--device '%s': expected auto, cpu or cuda", cfg.device);
        goto bad;
    }
    if (cfg.gate_mode > 2) {
        eng_err_set(ENG_EINVAL, "--gate-mode: expected 0 (ope), 1 (model) or 2 (both)");
        goto bad;
    }
    if (config && exp_compare_cfg_load_file(&cc, config)) goto bad;
    if (nrest && exp_compare_cfg_parse_flags(&cc, nrest, rest)) goto bad;
    if (exp_compare_cfg_check(&cc)) goto bad;
    cfg.compare = &cc;
    cfg.verbose = !quiet;
    eng_log_set_level(ENG_LOG_WARN); /* the nightly's info lines would bury the tables */
    lc.bt = cfg;
    if (lc.n_nights > 0 && exp_backtest_loop_check(&lc)) goto bad; /* a usage error, before any database */
    if (lc.n_nights > 0) {
        int st = exp_backtest_loop_run(&lc, &lres);
        exp_backtest_loop_print(stdout, &lc, &lres);
        char hbuf[1100];
        if (!html) snprintf(hbuf, sizeof hbuf, "%s/loop.html", cfg.out_dir), html = hbuf;
        if (!st && (st = exp_backtest_loop_write_html(html, &lc, &lres)) == ENG_OK) printf("\nwrote %s\n", html);
        if (!st && json && (st = exp_backtest_loop_write_json(json, &lc, &lres)) == ENG_OK) printf("wrote %s\n", json);
        if (st) fprintf(stderr, "rlprice: backtest failed: %s\n", eng_err_msg());
        rc = st ? (st == ENG_EDB ? 3 : 1) : 0;
        goto done;
    }
    if (html || lc.cold || lc.explore.share > 0 || lc.keep_history) {
        eng_err_set(ENG_EINVAL, "--html, --cold, --keep-history and --explore belong to the closed loop (--nights N)");
        goto bad;
    }
    int st = exp_backtest_run(&cfg, &res);
    exp_backtest_print(stdout, &cfg, &res);
    if (!st && json && (st = exp_backtest_write_json(json, &cfg, &res)) == ENG_OK) printf("\nwrote %s\n", json);
    if (st) {
        fprintf(stderr, "rlprice: backtest failed: %s\n", eng_err_msg());
        rc = st == ENG_EDB ? 3 : 1;
    } else {
        rc = 0;
    }
    goto done;
bad:
    fprintf(stderr, "rlprice backtest: %s\n", eng_err_msg());
    usage(stderr);
    rc = 2;
done:
    exp_bt_result_free(&res);
    exp_btl_result_free(&lres);
    exp_compare_cfg_free(&cc);
    free(rest);
    return rc;
}
