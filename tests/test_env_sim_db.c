/* tests/test_env_sim_db.c - Dominick's elasticity fit (real CSV and malformed input) and the
 * `rlprice simulate` -> PostgreSQL round trip in a database of its own. */
#include "test_common.h"
#include "rlp_cmd.h"
#include "db_conn.h"
#include "env_sim.h"

#include <unistd.h>

static void test_fit_dominicks(void **state) {
    (void)state;
    char path[1024];
    test_data_path(path, sizeof path, "dominicks_oj/oj_store_brand_week.csv");
    test_require_data(path);
    env_sim_fit f;
    int st = env_sim_fit_dominicks(path, &f);
    if (st) fail_msg("%s", eng_err_msg());
    assert_int_equal(f.n_rows, 106139);
    assert_close(f.pooled, -3.1, 0.1, 0); /* the README's pooled within-series figure */
    for (int b = 0; b < f.n_brands; b++) {
        assert_true(f.elasticity[b] < -1.0 && f.elasticity[b] > -6.0);
        assert_true(f.se[b] > 0 && f.se[b] < 0.2);
        assert_true(f.mean_price[b] > 1 && f.mean_price[b] < 6);
    }
    /* the preset built on it gives a simulated within-product log-log slope near the real one */
    db_history *h;
    env_sim_log *lg;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DOMINICKS, &f, 220, 80, 7, 0, 3, &h, &lg), 0);
    double sxx = 0, sxy = 0;
    for (int i = 0; i < h->n_products; i++) {
        double mx = 0, my = 0;
        int n = 0;
        for (int t = 0; t < h->n_periods; t++) {
            size_t c = (size_t)i * h->n_periods + t;
            if (h->units[c] > 0) mx += log(h->price[c]), my += log(h->units[c]), n++;
        }
        if (n < 2) continue;
        mx /= n, my /= n;
        for (int t = 0; t < h->n_periods; t++) {
            size_t c = (size_t)i * h->n_periods + t;
            if (h->units[c] > 0) {
                double dx = log(h->price[c]) - mx;
                sxx += dx * dx, sxy += dx * (log(h->units[c]) - my);
            }
        }
    }
    assert_close(sxy / sxx, f.pooled, 0.5, 0);
    db_history_free(h);
    env_sim_log_free(lg);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_fit_bad_input(void **state) {
    (void)state;
    char path[600];
    env_sim_fit f;
    snprintf(path, sizeof path, "%s/oj_bad_%d.csv", test_tmpdir(), (int)getpid());
    const char *hdr = "store,brand,week,logmove,profit,own_price_per_oz,packages_sold,own_price_per_package\n";
    char text[1024];
    snprintf(text, sizeof text, "%s2,1,40,9.0,30,0.06,129,3.87\n2,1,41,8.0\n", hdr);
    write_file(path, text);
    assert_int_equal(env_sim_fit_dominicks(path, &f), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), ":3:"));
    snprintf(text, sizeof text, "%s2,1,40,9.0,30,0.06,129,3.87\n2,1,41,abc,30,0.05,100,3.2\n", hdr);
    write_file(path, text);
    assert_int_equal(env_sim_fit_dominicks(path, &f), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "logmove"));
    write_file(path, "store,brand,week\n1,1,1\n");
    assert_int_equal(env_sim_fit_dominicks(path, &f), ENG_EFORMAT);
    assert_non_null(strstr(eng_err_msg(), "header lacks"));
    unlink(path);
    assert_int_equal(env_sim_fit_dominicks("/nonexistent/oj.csv", &f), ENG_EIO);
}

static PGconn *admin;
static char dbname[64], conninfo[128];

static long query_long(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}
static double query_double(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    double v = atof(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void test_simulate_db_round_trip(void **state) {
    (void)state;
    char *argv[] = {"simulate", "--products", "6", "--days", "14", "--seed", "3", "--db", conninfo, NULL};
    assert_int_equal(env_sim_cmd_simulate(9, argv), 0);
    assert_int_equal(env_sim_cmd_simulate(9, argv), 0); /* re-run replaces, never duplicates */
    PGconn *c;
    assert_int_equal(db_connect(&c, conninfo), 0);
    db_history *h;
    env_sim_log *lg;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 6, 14, 1, 19723, 3, &h, &lg), 0);
    double units = 0, traffic = 0;
    for (int i = 0; i < 6 * 14; i++) units += h->units[i], traffic += h->traffic[i];
    assert_int_equal(query_long(c, "SELECT count(*) FROM products"), 6);
    assert_int_equal(query_long(c, "SELECT count(*) FROM sales"), 84);
    assert_close(query_double(c, "SELECT sum(units) FROM sales"), units, 1e-6, 0);
    assert_close(query_double(c, "SELECT sum(traffic) FROM sales"), traffic, 1e-6, 0);
    assert_int_equal(query_long(c, "SELECT count(*) FROM competitor_prices"), h->comp_off[84]);
    assert_int_equal(query_long(c, "SELECT count(*) FROM sim_propensities"), 84);
    assert_int_equal(query_long(c, "SELECT min(array_length(probs, 1)) FROM sim_propensities"), 13);
    assert_close(query_double(c, "SELECT max(abs((SELECT sum(x) FROM unnest(probs) x) - 1)) FROM sim_propensities"), 0,
                 1e-9, 0);
    assert_close(query_double(c, "SELECT max(abs(probs[level + 1] - propensity)) FROM sim_propensities"), 0, 1e-12, 0);
    double prop_sum = 0;
    for (int i = 0; i < 84; i++) prop_sum += lg->propensity[i];
    assert_close(query_double(c, "SELECT sum(propensity) FROM sim_propensities"), prop_sum, 1e-9, 0);
    /* prices in sales agree with the logged levels */
    assert_int_equal(query_long(c, "SELECT count(*) FROM sales s JOIN sim_propensities p USING (product_id, day)"
                                   " WHERE abs(s.price - p.price) > 1e-4"), 0);
    assert_int_equal(query_long(c, "SELECT count(*) FROM sim_params"), 6);
    assert_close(query_double(c, "SELECT elasticity FROM sim_params WHERE product_id = 'SIM000002'"),
                 lg->params[1].elasticity, 1e-12, 1e-12);
    assert_int_equal(query_long(c, "SELECT count(*) FROM sales WHERE day = '2024-01-14'"), 6);
    db_disconnect(c);
    db_history_free(h);
    env_sim_log_free(lg);
    /* bad arguments are usage errors */
    char *bad[] = {"simulate", "--products", "0", "--days", "14", "--seed", "3", NULL};
    assert_int_equal(env_sim_cmd_simulate(7, bad), 2);
}

static int setup(void **state) {
    (void)state;
    if (db_connect(&admin, NULL)) {
        fprintf(stderr, "cannot connect to the maintenance database: %s\n", eng_err_msg());
        return -1;
    }
    snprintf(dbname, sizeof dbname, "rlprice_t_env_sim_%d", (int)getpid());
    snprintf(conninfo, sizeof conninfo, "dbname=%s", dbname);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname); /* identifier built from our pid only */
    PGresult *r = PQexec(admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "%s: %s", sql, PQerrorMessage(admin));
    PQclear(r);
    return ok ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    PQclear(PQexec(admin, sql));
    db_disconnect(admin);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_dominicks),
        cmocka_unit_test(test_fit_bad_input),
        cmocka_unit_test(test_simulate_db_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
