/* tests/test_exp_report_files.c - the report's command and files: `rlprice report` end to end,
 * the settings as typed, products.csv.gz and the bounded listing of the report directory (the
 * fixtures: test_exp_report_fix.h; the page and the JSON: test_exp_report.c). */
#include "test_exp_report_fix.h"

/* `rlprice report --cache FILE --out DIR` end to end on a small simulated history (small
 * budgets), then usage errors. */
static void test_command(void **state) {
    (void)state;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 3, 30, 1, 18000, 5, &h, &lg), 0);
    env_sim_log_free(lg);
    char dir[512], cache[600], out[600];
    make_dir(dir, sizeof dir, "cmd");
    snprintf(cache, sizeof cache, "%s/hist.h5", dir);
    snprintf(out, sizeof out, "%s/out", dir); /* created by the command */
    assert_int_equal(db_history_save_h5(h, cache), 0);
    db_history_free(h);
    char *argv[] = {"report", "--cache", cache, "--device", "cpu", "--out", out, "--dqn_steps", "8",
                    "--ddpg_steps=8", "--ope.n_boot", "20", "--total_boot", "30", "--dqn.hidden1", "16",
                    "--ddpg.hidden1", "16", NULL};
    assert_int_equal(exp_cmd_report((int)(sizeof argv / sizeof argv[0]) - 1, argv), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/report.json", out);
    json_object *doc = json_object_from_file(path);
    assert_non_null(doc);
    assert_int_equal(json_object_get_int(get(doc, "counts/products")), 3);
    assert_int_equal(json_object_array_length(get(doc, "products")), 3);
    must_contain(json_object_get_string(get(doc, "run/data_source")), "hist.h5");
    assert_string_equal(json_object_get_string(get(doc, "run/config/compare.dqn_steps")), "8");
    const char *w = json_object_get_string(get(doc, "winner/immediate"));
    assert_non_null(w);
    assert_true(json_object_object_get_ex(get(doc, "agents"), w, NULL));
    json_object_put(doc);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path);
    assert_non_null(html);
    must_contain(html, "<section id=\"overlap\"");
    free(html);
    /* usage: no --out; two sources; a missing cache file; an unknown setting */
    char *a1[] = {"report", "--cache", cache, NULL};
    assert_int_equal(exp_cmd_report(3, a1), 2);
    char *a2[] = {"report", "--cache", cache, "--preset", "dominicks", "--out", out, NULL};
    assert_int_equal(exp_cmd_report(7, a2), 2);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/nope.h5", dir);
    char *a3[] = {"report", "--cache", missing, "--out", out, NULL};
    assert_int_equal(exp_cmd_report(5, a3), 2);
    char *a4[] = {"report", "--cache", cache, "--no_such_setting", "1", "--out", out, NULL};
    assert_int_equal(exp_cmd_report(7, a4), 2);
}

/* secrets by whole key segment; settings printed as typed (shortest form, "none" when unset) */
static void test_settings_as_typed(void **state) {
    (void)state;
    assert_true(exp_rep_secret_key("db.password"));
    assert_true(exp_rep_secret_key("PG_PASSFILE"));
    assert_true(exp_rep_secret_key("db.passfile"));
    assert_true(exp_rep_secret_key("db.sslpassword"));
    assert_true(exp_rep_secret_key("api_secret"));
    assert_false(exp_rep_secret_key("compare.linucb_passes"));
    assert_false(exp_rep_secret_key("bypass"));
    assert_false(exp_rep_secret_key("compass.heading"));
    exp_compare_cfg c = exp_compare_default();
    c.grid.band = 0.25;
    c.train_frac = 0.8;
    char *t = exp_compare_cfg_text(&c);
    assert_non_null(t);
    assert_non_null(strstr(t, "compare.train_frac = 0.8\n"));
    assert_non_null(strstr(t, "guard.default_max_change_pct = 25\n")); /* the default limit */
    assert_null(strstr(t, "00000000"));
    assert_null(strstr(t, "99999999"));
    assert_null(strstr(t, "nan"));
    free(t);
    c.guard.default_max_change_pct = NAN; /* no limit: written "none", never "nan" */
    assert_non_null(t = exp_compare_cfg_text(&c));
    assert_non_null(strstr(t, "guard.default_max_change_pct = none\n"));
    assert_null(strstr(t, "nan"));
    free(t);
    char b[32];
    assert_string_equal(eng_fmt_float(b, 0.001f), "0.001");
    assert_string_equal(eng_fmt_double(b, 0.8), "0.8");
    assert_string_equal(eng_fmt_double(b, NAN), "none");
    exp_compare_cfg_free(&c);
}

/* The full table beside the report: every product, documented columns, quoting, decisions. */
static void test_products_csv(void **state) {
    (void)state;
    exp_results *r = make_results();
    char dir[512], path[700];
    make_dir(dir, sizeof dir, "csv");
    exp_report_decision dec[5];
    for (int i = 0; i < 5; i++) dec[i] = (exp_report_decision){"incumbent", "hold:no_significant_uplift", 2.49 + i, NAN, NAN, NAN};
    dec[1] = (exp_report_decision){"linucb", "deploy:linucb|rounded", 3.99, 0.0142, 0.0031, 0.0253};
    assert_int_equal(exp_report_write_ex(r, dec, dir, NULL, NULL), ENG_OK);
    snprintf(path, sizeof path, "%s/products.csv.gz", dir);
    char *csv = gunzip_file(path);
    assert_non_null(csv);
    assert_int_equal(count_lines(csv), 6); /* header + 5 products */
    assert_true(!strncmp(csv, "product_id,status,incumbent_price,history_value,history_longterm,fixed_price,fixed_guard,"
                              "fixed_value,fixed_longterm,fixed_uplift,fixed_uplift_low,fixed_uplift_high,fixed_uplift_raw,"
                              "fixed_poor_overlap,fixed_failed,linucb_price,",
                         200));
    must_contain(csv, ",dqn_price,");
    must_contain(csv, ",ddpg_price,");
    must_contain(csv, ",decision_agent,decision_price,decision_reason,decision_uplift,decision_ci_low,decision_ci_high,"
                      "note\n");
    must_contain(csv, "\n\"<b>o&j\"\"'s</b>\",ok,2.49,"); /* quoted, the quote doubled */
    must_contain(csv, "\nB-200,ok,3.49,");
    must_contain(csv, ",linucb,3.99,deploy:linucb|rounded,0.0142,0.0031,0.0253,\n");
    must_contain(csv, ",max_up|rounded,"); /* the DQN guard reasons */
    must_contain(csv, "\nE-div,diverged,6.49,");
    must_contain(csv, ",incumbent,6.49,hold:no_significant_uplift,,,,DDPG diverged");
    free(csv);
    /* without decisions (rlprice report) the decision columns are empty */
    assert_int_equal(exp_report_write(r, dir, NULL, NULL), ENG_OK);
    csv = gunzip_file(path);
    assert_non_null(csv);
    must_contain(csv, "\nB-200,ok,3.49,");
    assert_null(strstr(csv, "deploy:linucb"));
    free(csv);
    exp_results_free(r);
}

/* At scale the HTML and JSON list 200 products (top, bottom, a sample); the CSV has them all. */
static void test_bounded_listing(void **state) {
    (void)state;
    exp_results *r = make_results();
    const int N = 1000;
    exp_product_result *ps = calloc((size_t)N, sizeof *ps);
    assert_non_null(ps);
    for (int i = 0; i < N; i++) {
        ps[i] = r->products[1]; /* flat apart from the id (no trajectory) */
        char id[32];
        snprintf(id, sizeof id, "P%04d", i);
        ps[i].product_id = dupstr(id);
        ps[i].index = i;
        /* LinUCB's shrunk lower bound rises with the index, shuffled a little */
        double lo = 0.001 * ((i * 7) % N) - 0.5;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB] = (ope_value){0};
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].available = 1;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].estimate = lo + 0.01;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].ci_low = lo;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].ci_high = lo + 0.02;
    }
    for (int i = 0; i < r->n_products; i++) free(r->products[i].product_id), free(r->products[i].hist_price);
    for (int a = 0; a < EXP_N_AGENTS; a++) free(r->products[0].agent_price[a]);
    free(r->products);
    r->products = ps;
    r->n_products = N;
    char dir[512], path[700];
    make_dir(dir, sizeof dir, "bounded");
    char *hp = NULL, *jp = NULL;
    assert_int_equal(exp_report_write(r, dir, &hp, &jp), ENG_OK);
    json_object *doc = json_object_from_file(jp);
    assert_non_null(doc);
    assert_int_equal(json_object_get_int(get(doc, "product_list/total")), N);
    assert_int_equal(json_object_get_int(get(doc, "product_list/listed")), 200);
    assert_string_equal(json_object_get_string(get(doc, "product_list/file")), "products.csv.gz");
    json_object *prods = get(doc, "products");
    assert_int_equal(json_object_array_length(prods), 200);
    int n_role[4] = {0};
    for (int k = 0; k < 200; k++) {
        json_object *p = json_object_array_get_idx(prods, (size_t)k);
        const char *role = json_object_get_string(get(p, "listed_as"));
        int idx = json_object_get_int(get(p, "index"));
        double lo = 0.001 * ((idx * 7) % N) - 0.5;
        if (!strcmp(role, "top")) { /* the 50 highest: 0.450 .. 0.499 */
            n_role[1]++;
            assert_true(lo > 0.4495);
        } else if (!strcmp(role, "bottom")) { /* the 50 lowest: -0.500 .. -0.451 */
            n_role[2]++;
            assert_true(lo < -0.4505);
        } else if (!strcmp(role, "sample")) {
            n_role[3]++;
            assert_true(lo > -0.4505 && lo < 0.4495);
        } else {
            n_role[0]++;
        }
    }
    assert_int_equal(n_role[0], 0);
    assert_int_equal(n_role[1], 50);
    assert_int_equal(n_role[2], 50);
    assert_int_equal(n_role[3], 100);
    json_object_put(doc);
    char *html = slurp(hp);
    assert_non_null(html);
    must_contain(html, "id=\"product-selection\"");
    must_contain(html, "200 of 1000 products are listed");
    int rows = 0;
    for (const char *q = strstr(html, "id=\"product-table\""); q && (q = strstr(q + 1, "<tr><td class=\"pid\">"));)
        rows++;
    assert_int_equal(rows, 200);
    free(html);
    snprintf(path, sizeof path, "%s/products.csv.gz", dir);
    char *csv = gunzip_file(path);
    assert_non_null(csv);
    assert_int_equal(count_lines(csv), N + 1);
    must_contain(csv, "\nP0001,ok,");
    free(csv);
    free(hp);
    free(jp);
    exp_results_free(r);
}
int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command),         cmocka_unit_test(test_products_csv),
        cmocka_unit_test(test_bounded_listing), cmocka_unit_test(test_settings_as_typed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
