/* tests/test_exp_nightly_window.c - the night's history window chosen by its own carry-over test
 * (nightly.window_carryover_days, exp_nightly_window.h; docs/nightly.md "Window by carry-over"):
 * on a market whose customers remember yesterday's price the test finds carry-over in most
 * products and the night prices from the short window; on the same prices without carry-over it
 * keeps the whole window; with the rule off (the default) every night loads the whole window.
 * report.json's run.window says which window the night priced from. */
#include "test_nightly.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "eng_rng.h"
#include "exp_nightly_window.h"

#define D0 19723 /* 2024-01-01 */
#define NP 40
#define NT 60
#define SHORT 20

/* A simulated catalogue (NP products x NT days, the default preset: its prices, traffic and
 * competitors) whose units are replaced by 30 (p / 2)^-2.5 x (yesterday's price / today's)^lag
 * x lognormal noise (sd 0.3; seed 5): carry-over when lag > 0.  Caller frees (db_history_free). */
static db_history *market(double lag) {
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    if (env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, NP, NT, 1, D0, 3, &h, &lg)) fail_msg("%s", eng_err_msg());
    env_sim_log_free(lg);
    eng_rng rng;
    eng_rng_seed(&rng, 5);
    for (int p = 0; p < NP; p++)
        for (int t = 0; t < NT; t++) {
            const size_t c = (size_t)p * NT + t;
            const double pr = h->price[c], base = h->base_price[p] > 0 ? h->base_price[p] : pr;
            const double carry = t > 0 ? pow(h->price[c - 1] / pr, lag) : 1.0;
            const double mu = 30 * pow(pr / base, -2.5) * carry * exp(0.3 * eng_rng_normal(&rng));
            h->units[c] = (float)round(mu);
            h->revenue[c] = (float)(pr * h->units[c]);
            if (h->traffic[c] < 10 * h->units[c]) h->traffic[c] = 10 * h->units[c] + 100;
        }
    return h;
}

/* The test's counts on a history in memory: with carry-over (lag 3) more than 20% of the fitted
 * products show it and the short window is chosen; without (lag 0) at most 20% and the whole
 * window stays.  The boundary: exactly the share is not above it. */
static void test_window_counts(void **state) {
    (void)state;
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.window_days = 0;
    cfg.window_carryover_days = SHORT;
    int nc = 0, nt = 0;
    db_history *h = market(3.0);
    assert_int_equal(exp_nightly_window_test(&cfg, h, &nc, &nt), 0);
    assert_true(nt >= NP / 2);
    assert_true(exp_nightly_window_short(&cfg, nc, nt));
    db_history_free(h);
    h = market(0.0);
    assert_int_equal(exp_nightly_window_test(&cfg, h, &nc, &nt), 0);
    assert_true(nt >= NP / 2);
    assert_false(exp_nightly_window_short(&cfg, nc, nt));
    db_history_free(h);
    assert_false(exp_nightly_window_short(&cfg, 2, 10)); /* 20% of them: not more than the share */
    assert_true(exp_nightly_window_short(&cfg, 3, 10));
    assert_false(exp_nightly_window_short(&cfg, 0, 0)); /* nothing fitted: the whole window */
    assert_true(exp_nightly_window_on(&cfg));
    cfg.window_days = SHORT; /* the short window is no shorter: nothing to choose */
    assert_false(exp_nightly_window_on(&cfg));
    cfg.window_days = 0, cfg.window_carryover_days = 0; /* the default: off */
    assert_false(exp_nightly_window_on(&cfg));
    char *t0 = exp_nightly_config_text(&cfg); /* the run id's text: the setting only when on */
    assert_non_null(t0);
    assert_null(strstr(t0, "window_carryover"));
    cfg.window_carryover_days = SHORT;
    char *t1 = exp_nightly_config_text(&cfg);
    assert_non_null(t1);
    assert_non_null(strstr(t1, "nightly.window_carryover_days = 20\nnightly.window_carryover_share = 0.2\n"));
    free(t0);
    free(t1);
    cfg.window_carryover_days = 0;
    cfg.window_carryover_share = 1.5f;
    assert_int_equal(exp_nightly_window_check(&cfg), ENG_EINVAL);
    cfg.window_carryover_share = 0.2f, cfg.window_carryover_days = -1;
    assert_int_equal(exp_nightly_window_check(&cfg), ENG_EINVAL);
    exp_compare_cfg_free(&cfg.compare);
}

static void periods_hook(void *ctx, const db_history *h, const exp_results *res, const exp_nightly_decision *d) {
    (void)res, (void)d;
    *(int *)ctx = h->n_periods;
}

/* One nightly on a fresh database holding market(lag), the whole history as its window
 * (window_days 0) and window_carryover_days `days`: the periods it priced from; *s its summary
 * (caller frees). */
static int night_periods(double lag, int days, exp_nightly_summary *s) {
    PGconn *c = tdb_create("nightly_window");
    db_history *h = market(lag);
    if (db_history_store(c, h, NULL, NULL)) fail_msg("%s", eng_err_msg());
    db_history_free(h);
    char out[512];
    snprintf(out, sizeof out, "%s/window_out_%d", test_tmpdir(), (int)getpid());
    exp_nightly_cfg cfg = tnl_small_cfg(c, D0 + NT, 0, out, "", 20);
    cfg.compare.fqe_products = 0;
    cfg.window_carryover_days = days;
    int periods = -1;
    cfg.on_decided = periods_hook;
    cfg.decided_ctx = &periods;
    assert_int_equal(exp_nightly_run(&cfg, s), 0);
    exp_compare_cfg_free(&cfg.compare);
    tdb_drop(c);
    return periods;
}

/* report.json's run.window for the night s: NULL when it is null; else sets *tested, *carry,
 * *is_short, *days and returns the document (caller frees with json_object_put). */
static json_object *report_window(const exp_nightly_summary *s, int *tested, int *carry, int *is_short, int *days) {
    char path[sizeof s->report_dir + 16];
    snprintf(path, sizeof path, "%s/report.json", s->report_dir);
    json_object *doc = json_object_from_file(path), *run = NULL, *w = NULL, *v = NULL;
    if (!doc || !json_object_object_get_ex(doc, "run", &run) || !json_object_object_get_ex(run, "window", &w))
        fail_msg("%s: no run.window", path);
    if (!w) {
        json_object_put(doc);
        return NULL;
    }
    const char *k[4] = {"tested", "carry_over", "short", "days"};
    int *o[4] = {tested, carry, is_short, days};
    for (int i = 0; i < 4; i++) {
        if (!json_object_object_get_ex(w, k[i], &v)) fail_msg("%s: run.window lacks %s", path, k[i]);
        *o[i] = json_object_get_int(v);
    }
    return doc;
}

/* The nightly's window follows the evidence: carry-over -> the last SHORT days; none -> the
 * whole history; the rule off -> the whole history whatever the market. */
static void test_window_nightly(void **state) {
    (void)state;
    exp_nightly_summary s;
    assert_int_equal(night_periods(3.0, SHORT, &s), SHORT);
    assert_true(s.window_tested && s.window_short && s.window_carry > s.window_carry_tested / 5);
    int nt = -1, nc = -1, sh = -1, days = -1; /* the report says the same */
    json_object *doc = report_window(&s, &nt, &nc, &sh, &days);
    assert_non_null(doc);
    assert_true(nt == s.window_carry_tested && nc == s.window_carry && sh == 1 && days == SHORT);
    json_object_put(doc);
    exp_nightly_summary_free(&s);
    assert_int_equal(night_periods(0.0, SHORT, &s), NT);
    assert_true(s.window_tested && !s.window_short && s.window_carry_tested > 0);
    assert_non_null(doc = report_window(&s, &nt, &nc, &sh, &days));
    assert_true(nt == s.window_carry_tested && nc == s.window_carry && sh == 0 && days == 0);
    json_object_put(doc);
    exp_nightly_summary_free(&s);
    assert_int_equal(night_periods(3.0, 0, &s), NT); /* without the rule */
    assert_true(!s.window_tested && !s.window_short);
    assert_null(report_window(&s, &nt, &nc, &sh, &days)); /* run.window is null */
    exp_nightly_summary_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_counts),
        cmocka_unit_test(test_window_nightly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
