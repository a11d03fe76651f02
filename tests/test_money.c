/* tests/test_money.c - money is exact end to end, and price endings never break a bound:
 *   - prices typed as 0.9574, 1.10, 19.99, 1000000000000 and 0.001 are imported, loaded,
 *     held by a nightly run and pushed back equal to what was typed (SQL numeric equality, and
 *     the same text for the 2-decimal ones); a price of 1e39 is rejected with a reason by the
 *     import and by the loader; a dry run of the import skips exactly what the real one skips;
 *   - the counts of held and repriced products agree across the run's summary (stdout),
 *     pricing_runs and recommendations.json;
 *   - price endings (.99/.49) stay inside min/max price and the agents' price band (round
 *     inside or not at all, and the reason says which); held prices are never re-rounded. */
#include "test_nightly.h"

#include <json-c/json.h>
#include <sys/stat.h>

#include "db_copy.h"
#include "db_import.h"
#include "db_push.h"
#include "exp_nightly.h"

#define DAY0 19723 /* 2024-01-01 */
#define NDAYS 30

static PGconn *conn;
static char out_dir[512], ckpt_dir[512];

static int setup(void **state) {
    (void)state;
    conn = tdb_create("money");
    snprintf(out_dir, sizeof out_dir, "%s/money_out_%d", test_tmpdir(), (int)getpid());
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/money_ckpt_%d", test_tmpdir(), (int)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

static long count1(const char *sql, const char *arg) {
    const char *v[1] = {arg};
    return tdb_long(conn, sql, arg ? 1 : 0, arg ? v : NULL);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* the typed prices, each a product held at that price for the whole history */
static const char *const typed[][2] = {
    {"M1", "0.9574"}, {"M2", "1.10"}, {"M3", "19.99"}, {"M4", "1000000000000"}, {"M5", "0.001"},
};
#define NTYPED 5

static void import_typed(void) {
    char pp[600], sp[600];
    snprintf(pp, sizeof pp, "%s/money_products_%d.csv", test_tmpdir(), (int)getpid());
    snprintf(sp, sizeof sp, "%s/money_sales_%d.csv", test_tmpdir(), (int)getpid());
    /* products: the typed prices, one beyond what the engine carries (1e39), one with no base
     * price (new: a real import skips it; so must the dry run) */
    char prod[2048] = "product_id,base_price\n";
    for (int i = 0; i < NTYPED; i++)
        snprintf(prod + strlen(prod), sizeof prod - strlen(prod), "%s,%s\n", typed[i][0], typed[i][1]);
    strcat(prod, "BIG,1e39\nNOBP,\n");
    write_file(pp, prod);
    db_import_opts o = {.table = "products", .dry_run = 1};
    db_import_report r;
    assert_int_equal(db_import_csv(conn, pp, &o, &r), 0);
    long dry_bad = r.log.bad;
    db_import_report_free(&r);
    assert_int_equal(count1("SELECT count(*) FROM products", NULL), 0); /* the dry run wrote nothing */
    o.dry_run = 0;
    assert_int_equal(db_import_csv(conn, pp, &o, &r), 0);
    assert_int_equal(r.log.bad, 2); /* BIG (1e39) and NOBP (new, no base price) */
    assert_int_equal(dry_bad, r.log.bad);
    int saw_big = 0;
    for (long i = 0; i < r.log.n_issues; i++)
        if (strstr(r.log.issues[i].reason, "1e39") && strstr(r.log.issues[i].reason, "largest price")) saw_big = 1;
    assert_true(saw_big);
    db_import_report_free(&r);
    assert_int_equal(count1("SELECT count(*) FROM products", NULL), NTYPED);

    /* sales: NDAYS days at the typed price (revenue = 10 units x price) */
    size_t cap = 1 << 16, len = 0;
    char *sales = malloc(cap);
    assert_non_null(sales);
    len += (size_t)snprintf(sales + len, cap - len, "product_id,day,price,units,revenue\n");
    for (int i = 0; i < NTYPED; i++)
        for (int t = 0; t < NDAYS; t++) {
            char day[16];
            db_day_format(DAY0 + t, day);
            len += (size_t)snprintf(sales + len, cap - len, "%s,%s,%s,%d,%.15g\n", typed[i][0], day, typed[i][1],
                                    10 + t % 3, strtod(typed[i][1], NULL) * (10 + t % 3));
        }
    write_file(sp, sales);
    free(sales);
    db_import_opts so = {.table = "sales"};
    assert_int_equal(db_import_csv(conn, sp, &so, &r), 0);
    assert_int_equal(r.log.bad, 0);
    db_import_report_free(&r);
    /* the database holds what was typed */
    for (int i = 0; i < NTYPED; i++) {
        const char *v[2] = {typed[i][0], typed[i][1]};
        assert_int_equal(tdb_long(conn, "SELECT count(*) FROM sales WHERE product_id = $1 AND price::text = $2", 2, v),
                         NDAYS);
    }
    /* a price the engine cannot carry, written straight into the table: the loader rejects it */
    tdb_exec(conn, "INSERT INTO products (product_id, base_price) VALUES ('HUGE', 5.00)", 0, NULL);
    tdb_exec(conn,
             "INSERT INTO sales (product_id, day, price, units, revenue) SELECT 'HUGE', d::date,"
             " CASE WHEN d = DATE '2024-01-10' THEN 1e39 ELSE 5.00 END, 1,"
             " CASE WHEN d = DATE '2024-01-10' THEN 1e39 ELSE 5.00 END"
             " FROM generate_series(DATE '2024-01-01', DATE '2024-01-30', interval '1 day') d",
             0, NULL);
}

static exp_nightly_cfg small_cfg(void) {
    return tnl_small_cfg(conn, DAY0 + NDAYS, NDAYS, out_dir, ckpt_dir, 50);
}

static int json_int(json_object *o, const char *k) {
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v)) fail_msg("recommendations.json: no '%s'", k);
    return json_object_get_int(v);
}

static void test_typed_prices_round_trip(void **state) {
    (void)state;
    import_typed();
    exp_nightly_cfg cfg = small_cfg();
    exp_nightly_summary s;
    int st = exp_nightly_run(&cfg, &s);
    if (st) fail_msg("nightly: %s", eng_err_msg());
    const char *id = s.run_id;
    assert_int_equal(s.n_products, NTYPED + 1);
    /* held at the incumbent: price and incumbent_price equal what was typed, as numerics and,
     * for the typed scale, as text */
    for (int i = 0; i < NTYPED; i++) {
        const char *v[3] = {id, typed[i][0], typed[i][1]};
        long n = tdb_long(conn,
                          "SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND product_id = $2"
                          " AND agent = 'incumbent' AND price = $3::numeric AND incumbent_price = $3::numeric"
                          " AND price::text = $3::text AND incumbent_price::text = $3::text AND reason NOT LIKE '%rounded%'",
                          3, v);
        if (n != 1) {
            PGresult *r = PQexecParams(conn,
                                       "SELECT price::text || ' ' || incumbent_price::text || ' ' || agent || ' ' || reason"
                                       " FROM price_recommendations WHERE run_id = $1 AND product_id = $2",
                                       2, NULL, v, NULL, NULL, 0);
            fail_msg("%s typed %s: pushed %s", typed[i][0], typed[i][1],
                     PQntuples(r) ? PQgetvalue(r, 0, 0) : "(no row)");
        }
    }
    /* the 1e39 sale is quarantined with a reason; the product is priced from its clean rows */
    assert_int_equal(count1("SELECT count(*) FROM rejected_rows WHERE run_id = $1 AND row_key = 'HUGE|2024-01-10'"
                            " AND reason = 'bad_price'",
                            id),
                     1);
    assert_int_equal(count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1 AND product_id = 'HUGE'"
                            " AND incumbent_price = 5",
                            id),
                     1);

    /* counts agree: the summary stdout prints, the run row and recommendations.json */
    int held = s.n_held + s.n_same, repriced = s.n_up + s.n_down;
    assert_int_equal(held + repriced, s.n_products);
    assert_int_equal(count1("SELECT n_held FROM pricing_runs WHERE run_id = $1", id), held);
    assert_int_equal(count1("SELECT n_repriced FROM pricing_runs WHERE run_id = $1", id), repriced);
    char path[1400];
    snprintf(path, sizeof path, "%s/recommendations.json", s.report_dir);
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *sm, *recs;
    assert_true(json_object_object_get_ex(root, "summary", &sm));
    assert_int_equal(json_int(sm, "n_held"), held);
    assert_int_equal(json_int(sm, "n_repriced"), repriced);
    assert_true(json_object_object_get_ex(root, "recommendations", &recs));
    assert_int_equal((int)json_object_array_length(recs),
                     (int)count1("SELECT count(*) FROM price_recommendations WHERE run_id = $1", id));
    /* the JSON carries the typed decimals too, not float noise */
    int seen = 0;
    for (size_t i = 0; i < json_object_array_length(recs); i++) {
        json_object *o = json_object_array_get_idx(recs, i), *pid, *inc;
        assert_true(json_object_object_get_ex(o, "product_id", &pid));
        assert_true(json_object_object_get_ex(o, "incumbent_price", &inc));
        if (!strcmp(json_object_get_string(pid), "M1")) {
            assert_string_equal(json_object_to_json_string(inc), "0.9574");
            seen = 1;
        }
    }
    assert_true(seen);
    json_object_put(root);
    exp_nightly_summary_free(&s);
    exp_compare_cfg_free(&cfg.compare);
}

/* price text: shortest exact form, padded to the database's scale */
static void test_price_format(void **state) {
    (void)state;
    char b[48];
    assert_string_equal(db_price_format(b, sizeof b, 0.9574, 2), "0.9574");
    assert_string_equal(db_price_format(b, sizeof b, 1.1, 2), "1.10");
    assert_string_equal(db_price_format(b, sizeof b, 19.99, 2), "19.99");
    assert_string_equal(db_price_format(b, sizeof b, 1e12, 0), "1000000000000");
    assert_string_equal(db_price_format(b, sizeof b, 1e12, 2), "1000000000000.00");
    assert_string_equal(db_price_format(b, sizeof b, 0.001, 3), "0.001");
    assert_string_equal(db_price_format(b, sizeof b, 9999999999999.99, 2), "9999999999999.99");
    assert_string_equal(db_price_format(b, sizeof b, 0.99, 4), "0.9900");
    /* through float32 0.9574 would be 0.957400023937225: the format must never see one */
    assert_string_not_equal(db_price_format(b, sizeof b, (double)0.9574f, 4), "0.9574");
}

/* decide_grid's guard.default_max_change_pct when g_change_set (NaN: no limit); else the default's */
static int g_change_set = 0;
static double g_change_limit = NAN;

/* Decisions on one product of a one-product history, the comparison's grid K levels over +-band. */
static exp_nightly_decision decide_grid(int K, double band, double base, double min_p, double max_p, double incumbent,
                                        double agent_price, int deploy) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 1, 10, DAY0, 1), 0);
    h->base_price[0] = base, h->min_price[0] = min_p, h->max_price[0] = max_p;
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.compare.grid.K = K, cfg.compare.grid.band = band;
    if (g_change_set) cfg.compare.guard.default_max_change_pct = g_change_limit;
    cfg.gate_mode = EXP_GATE_OPE; /* deployed on the hand-set OPE uplift (no history to fit here) */
    cfg.gate_level = 0.95f;
    exp_product_result pr;
    memset(&pr, 0, sizeof pr);
    pr.product_id = "P1";
    pr.status = EXP_OK;
    pr.incumbent_price = incumbent;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        ope_config oc = ope_config_default();
        ope_result_init(&pr.immediate[a], &oc, 50);
        pr.price[a] = incumbent;
        ope_value *v = &pr.uplift_shrunk[a];
        memset(v, 0, sizeof *v);
        v->estimate = v->ci_low = v->ci_high = NAN;
        pr.uplift[a] = *v;
    }
    if (deploy) {
        ope_value *v = &pr.uplift_shrunk[EXP_AGENT_DQN];
        v->available = 1, v->estimate = 0.5, v->ci_low = 0.2, v->ci_high = 0.8;
        pr.uplift[EXP_AGENT_DQN] = *v;
        pr.price[EXP_AGENT_DQN] = agent_price;
    }
    exp_nightly_decision d;
    assert_int_equal(exp_nightly_decide(&cfg, h, &pr, &d), 0);
    db_history_free(h);
    exp_compare_cfg_free(&cfg.compare);
    return d;
}

/* The same on the grid of 21 levels over +-0.25 the cases below are worked out on (29 levels over
 * +-0.35 by default since session 11; test_endings_default_band). */
static exp_nightly_decision decide(double base, double min_p, double max_p, double incumbent, double agent_price,
                                   int deploy) {
    return decide_grid(21, 0.25, base, min_p, max_p, incumbent, agent_price, deploy);
}

/* The default grid's band (+-0.35: 0.65..1.35 x 2.98 = 1.937..4.023) without a change limit: the
 * band's floor rounds to the ending inside it, 1.99, and never below the band; with a change limit
 * of 25% of the incumbent (2.235..3.725; the default since session 13) the move stops at the
 * limit and rounds to the ending inside it, 2.49. */
static void test_endings_default_band(void **state) {
    (void)state;
    exp_compare_cfg dc = exp_compare_default();
    assert_close(dc.guard.default_max_change_pct, 25.0, 0, 0);
    exp_nightly_decision d = decide_grid(dc.grid.K, dc.grid.band, 2.98, NAN, NAN, 2.98, 2.98 * (1 - dc.grid.band), 1);
    assert_int_equal(d.hold, -1);
    assert_close(d.price, 2.49, 1e-12, 0);
    assert_non_null(strstr(d.reason, "max_down"));
    g_change_set = 1, g_change_limit = NAN; /* no limit */
    d = decide_grid(dc.grid.K, dc.grid.band, 2.98, NAN, NAN, 2.98, 2.98 * (1 - dc.grid.band), 1);
    g_change_set = 0;
    assert_int_equal(d.hold, -1);
    assert_true(d.price >= 2.98 * (1 - dc.grid.band) - 1e-9 && d.price <= 2.98 * (1 + dc.grid.band) + 1e-9);
    assert_close(d.price, 1.99, 1e-12, 0);
    assert_non_null(strstr(d.reason, "rounded"));
    exp_compare_cfg_free(&dc);
}

static void test_endings_inside_bounds(void **state) {
    (void)state;
    /* bounds 2.52..2.58 sit between the endings 2.49 and 2.99: no ending fits, the price stays
     * a whole cent inside, and the reason says the ending was skipped */
    exp_nightly_decision d = decide(2.55, 2.52, 2.58, 2.55, 2.57, 1);
    assert_int_equal(d.hold, -1);
    assert_true(d.price >= 2.52 && d.price <= 2.58);
    assert_close(d.price, 2.57, 1e-12, 0);
    assert_non_null(strstr(d.reason, "round_skipped"));
    /* a price above the band the ending would pick (2.58 -> 2.49? no: 2.49 < min) stays inside */
    d = decide(2.55, 2.52, 2.58, 2.55, 2.70, 1);
    assert_true(d.price >= 2.52 && d.price <= 2.58);
    assert_non_null(strstr(d.reason, "max_price"));
    /* the agents' band (0.75..1.25 x 2.98 = 2.235..3.725): the band's floor is not rounded down
     * to 1.99 (the nearest ending, outside the band) but to an ending inside it */
    d = decide(2.98, NAN, NAN, 2.98, 2.235, 1);
    assert_int_equal(d.hold, -1);
    assert_true(d.price >= 2.235 && d.price <= 3.725);
    assert_close(d.price, 2.49, 1e-12, 0);
    assert_non_null(strstr(d.reason, "rounded"));
    /* inside bounds and band an ending is still applied */
    d = decide(10, NAN, NAN, 10, 11.0, 1);
    assert_close(d.price, 10.99, 1e-12, 0);
}

static void test_held_price_is_the_incumbent(void **state) {
    (void)state;
    /* held: exactly the incumbent, not re-rounded to a cent, no |rounded */
    exp_nightly_decision d = decide(1.0, NAN, NAN, 0.9574, 0, 0);
    assert_true(d.hold >= 0);
    assert_true(d.price == 0.9574);
    assert_null(strstr(d.reason, "rounded"));
    g_change_set = 1, g_change_limit = NAN; /* no change limit */
    d = decide(0.001, NAN, NAN, 0.001, 0, 0);
    g_change_set = 0;
    assert_true(d.price == 0.001);
    assert_null(strstr(d.reason, "min_tick"));
    /* with a change limit too: 0.00075..0.00125 holds no whole cent, the guard drops the limit as
     * conflicting, and the held price is still the incumbent (it was lifted to 0.01 before) */
    g_change_set = 1, g_change_limit = 25.0;
    d = decide(0.001, NAN, NAN, 0.001, 0, 0);
    g_change_set = 0;
    assert_true(d.price == 0.001);
    assert_null(strstr(d.reason, "min_tick"));
    assert_null(strstr(d.reason, "dropped_change"));
    d = decide(1e12, NAN, NAN, 1e12, 0, 0);
    assert_true(d.price == 1e12);
    /* a hard bound still moves a held price */
    d = decide(1.0, 1.00, NAN, 0.9574, 0, 0);
    assert_close(d.price, 1.00, 1e-12, 0);
    assert_non_null(strstr(d.reason, "min_price"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_price_format),
        cmocka_unit_test(test_endings_inside_bounds),
        cmocka_unit_test(test_endings_default_band),
        cmocka_unit_test(test_held_price_is_the_incumbent),
        cmocka_unit_test(test_typed_prices_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
