/* tests/test_db_import.c - CSV import (generic mapping and the Dominick's preset) and
 * db_history_store, against a database of its own (created and dropped here). */
#include "test_common.h"

#include <unistd.h>

#include "db_conn.h"
#include "db_import.h"
#include "db_schema.h"
#include "db_store.h"
#include "eng_util.h"

static PGconn *conn;
static char dbname[64];

static int setup(void **state) {
    (void)state;
    PGconn *m = NULL;
    if (db_connect(&m, NULL) != 0) { fprintf(stderr, "maintenance connection: %s\n", eng_err_msg()); return -1; }
    snprintf(dbname, sizeof dbname, "rlprice_t_import_%d", (int)getpid());
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    PQclear(PQexec(m, sql));
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    PGresult *r = PQexec(m, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    db_disconnect(m);
    if (!ok) return -1;
    if (db_connect_dbname(&conn, NULL, dbname) != 0) return -1;
    return db_schema_apply(conn) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    db_disconnect(conn);
    PGconn *m = NULL;
    if (db_connect(&m, NULL) != 0) return -1;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    PQclear(PQexec(m, sql));
    db_disconnect(m);
    return 0;
}

static void exec_ok(const char *sql) {
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* One value of a one-row query with up to two text parameters (NULL -> "(null)"). */
static char qbuf[4096];
static const char *q(const char *sql, const char *a, const char *b) {
    const char *params[2] = {a, b};
    int n = b ? 2 : a ? 1 : 0;
    PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) fail_msg("%s: %s (%d rows)", sql, PQresultErrorMessage(r), PQntuples(r));
    snprintf(qbuf, sizeof qbuf, "%s", PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return qbuf;
}
static long ql(const char *sql, const char *a, const char *b) { return atol(q(sql, a, b)); }
static double qd(const char *sql, const char *a, const char *b) { return atof(q(sql, a, b)); }

static void clear_tables(void) { exec_ok("TRUNCATE sales, competitor_prices, products"); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- Dominick's slice ---- */
static void test_dominicks_slice(void **state) {
    (void)state;
    clear_tables();
    /* expectations computed independently from the fixture */
    FILE *f = fopen("tests/fixtures/dominicks_slice.csv", "r");
    assert_non_null(f);
    char line[1024];
    long rows = 0;
    double cost[64], price[64];
    int nk = 0;
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        rows++;
        int s, b;
        double v[20];
        if (sscanf(line, "%d,%d,%*d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &s, &b,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12],
                   &v[13], &v[14], &v[15], &v[16], &v[17], &v[18], &v[19]) == 22 && s == 5 && b == 7) {
            price[nk] = v[19];               /* own_price_per_package */
            cost[nk++] = v[19] * (1 - v[14] / 100); /* profit */
        }
    }
    fclose(f);
    assert_true(rows > 300 && nk >= 10);
    qsort(cost, (size_t)nk, sizeof(double), cmp_d);
    double med = nk % 2 ? cost[nk / 2] : 0.5 * (cost[nk / 2 - 1] + cost[nk / 2]);

    db_dominicks_opts o = {"tests/fixtures/dominicks_slice.csv", NULL, 0, 0};
    db_import_report r;
    assert_int_equal(db_import_dominicks(conn, &o, 0, &r), 0);
    assert_int_equal(r.log.bad, 0);
    assert_int_equal(r.log.records, rows);
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM products", NULL, NULL), 22);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), rows);
    assert_int_equal(ql("SELECT count(*) FROM competitor_prices", NULL, NULL), rows * 10);
    /* line "5,7,40,...,deal 1,...,37 packages, 2.49": week 40 = 1990-06-14 */
    const char *id = "dom-s5-b7";
    assert_string_equal(q("SELECT price::text FROM sales WHERE product_id = $1 AND day = '1990-06-14'", id, NULL), "2.49");
    assert_string_equal(q("SELECT units::text FROM sales WHERE product_id = $1 AND day = '1990-06-14'", id, NULL), "37");
    assert_string_equal(q("SELECT revenue::text FROM sales WHERE product_id = $1 AND day = '1990-06-14'", id, NULL), "92.13");
    assert_string_equal(q("SELECT promo::text FROM sales WHERE product_id = $1 AND day = '1990-06-14'", id, NULL), "true");
    assert_string_equal(q("SELECT traffic IS NULL FROM sales WHERE product_id = $1 AND day = '1990-06-14'", id, NULL), "t");
    assert_string_equal(q("SELECT name FROM products WHERE product_id = $1", id, NULL), "Citrus Hill 64oz, store 5");
    assert_close(qd("SELECT unit_cost FROM products WHERE product_id = $1", id, NULL), med, 1e-9, 1e-12);
    /* modal price: count the fixture's own prices */
    int best = 0;
    double mode = 0;
    for (int i = 0; i < nk; i++) {
        int c = 0;
        for (int j = 0; j < nk; j++) c += fabs(price[j] - price[i]) < 0.001;
        if (c > best || (c == best && price[i] > mode)) { best = c; mode = price[i]; }
    }
    assert_close(qd("SELECT base_price FROM products WHERE product_id = $1", id, NULL), mode, 1e-9, 0);
    /* competitor: Minute Maid 96oz at 0.0501041667 $/oz, in this 64oz product's package */
    assert_close(qd("SELECT price FROM competitor_prices WHERE product_id = $1 AND day = '1990-06-14'"
                    " AND competitor = 'Minute Maid 96oz'", id, NULL), 0.0501041667 * 64, 1e-6, 0);
    assert_int_equal(ql("SELECT count(*) FROM competitor_prices WHERE product_id = $1 AND competitor = 'Citrus Hill 64oz'", id, NULL), 0);

    /* re-import: same rows, nothing duplicated or changed */
    assert_int_equal(db_import_dominicks(conn, &o, 0, &r), 0);
    assert_int_equal(r.inserted, 0);
    assert_int_equal(r.updated, 0);
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), rows);
    assert_int_equal(ql("SELECT count(*) FROM competitor_prices", NULL, NULL), rows * 10);

    /* filters: one store, weeks 45-50 */
    clear_tables();
    db_dominicks_opts o2 = {"tests/fixtures/dominicks_slice.csv", "2", 45, 50};
    assert_int_equal(db_import_dominicks(conn, &o2, 0, &r), 0);
    assert_true(r.filtered > 0);
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM sales WHERE product_id NOT LIKE 'dom-s2-%' OR day < '1990-07-19' OR day > '1990-08-23'", NULL, NULL), 0);
    assert_true(ql("SELECT count(*) FROM sales", NULL, NULL) > 0);
}

/* the preset on the real file (two stores, all weeks; data/datasets/dominicks_oj) */
static void test_dominicks_real(void **state) {
    (void)state;
    char path[1024];
    test_data_path(path, sizeof path, "dominicks_oj/" DB_DOMINICKS_FILE);
    test_require_data(path);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    char line[1024];
    long rows = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "2,", 2) || !strncmp(line, "5,", 2)) rows++;
    fclose(f);
    clear_tables();
    char dir[1024];
    test_data_path(dir, sizeof dir, "dominicks_oj");
    db_dominicks_opts o = {dir, "2,5", 0, 0};
    db_import_report r;
    assert_int_equal(db_import_dominicks(conn, &o, 0, &r), 0);
    assert_int_equal(r.log.bad, 0);
    assert_int_equal(r.log.records, 106139);
    assert_int_equal(r.filtered, 106139 - rows);
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), rows);
    assert_int_equal(ql("SELECT count(*) FROM products", NULL, NULL), 22);
    /* first line of the file: store 2, brand 1, week 40, 129 packages at 3.87 */
    assert_string_equal(q("SELECT price::text || ' ' || units::text FROM sales WHERE product_id = 'dom-s2-b1'"
                          " AND day = '1990-06-14'", NULL, NULL), "3.87 129");
    assert_string_equal(q("SELECT min(day)::text FROM sales", NULL, NULL), "1990-06-14");
}

static const char *products_csv =
    "id,title,list_price,cost\n"
    "A1,Apple juice,10.00,6.50\n"
    "A2,\"Berry, mixed\",2.00,\n"
    "A3,No price,,1\n";

static const char *sales_csv =
    "sku,date,unit_price,qty,on_promo\n"                 /* 1 */
    "A1,2024-01-01,9.99,3,0\n"                           /* 2 ok */
    "A1,2024-01-02,abc,3,0\n"                            /* 3 not a number */
    "A1,2024-01-03,9.99,3\n"                             /* 4 field count */
    "A1,2024-01-0\"4,9.99,3,0\n"                         /* 5 quote in unquoted field */
    "\"A2\",2024-01-05,1.50,2,yes\n"                     /* 6 ok */
    "A2,2024-13-01,1.50,2,no\n"                          /* 7 bad date */
    "A2,\"2024-01-06\"x,1.5,2,0\n"                       /* 8 text after closing quote */
    "\n"                                                 /* 9 blank */
    "A9,2024-01-07,1.00,1,1\n"                           /* 10 unknown product */
    "\"A2,2024-01-08,1.5,2,0\n"                          /* 11 unterminated quote */
    "A2,2024-01-09,2.5,4,0\n";                           /* 12 ok */

static void test_generic_malformed(void **state) {
    (void)state;
    clear_tables();
    char pp[512], sp[512];
    snprintf(pp, sizeof pp, "%s/imp_products_%d.csv", test_tmpdir(), (int)getpid());
    snprintf(sp, sizeof sp, "%s/imp_sales_%d.csv", test_tmpdir(), (int)getpid());
    write_file(pp, products_csv);
    write_file(sp, sales_csv);

    db_import_opts po = {"products", "product_id=id,name=title,base_price=list_price,unit_cost=#4", NULL, 0, 0, 0, 0, 0};
    db_import_report r;
    assert_int_equal(db_import_csv(conn, pp, &po, &r), 0);
    assert_int_equal(r.log.records, 3);
    assert_int_equal(r.log.bad, 1); /* A3: new product without base_price */
    assert_int_equal(r.log.issues[0].line, 4);
    assert_non_null(strstr(r.log.issues[0].reason, "base_price"));
    assert_int_equal(r.inserted, 2);
    db_import_report_free(&r);
    assert_string_equal(q("SELECT name FROM products WHERE product_id = 'A2'", NULL, NULL), "Berry, mixed");
    assert_string_equal(q("SELECT unit_cost IS NULL FROM products WHERE product_id = 'A2'", NULL, NULL), "t");

    db_import_opts so = {"sales", "product_id=sku,day=date,price=unit_price,units=qty,promo=on_promo", NULL, 0, 0, 0, 0, 0};
    assert_int_equal(db_import_csv(conn, sp, &so, &r), 0);
    long want[] = {3, 4, 5, 7, 8, 11, 10}; /* parse-time issues in file order, then the unknown product */
    assert_int_equal(r.log.bad, 7);
    assert_int_equal(r.log.n_issues, 7);
    for (int i = 0; i < 7; i++) assert_int_equal(r.log.issues[i].line, want[i]);
    assert_non_null(strstr(r.log.issues[0].reason, "not a number"));
    assert_non_null(strstr(r.log.issues[1].reason, "expected 5 fields"));
    assert_non_null(strstr(r.log.issues[5].reason, "unterminated"));
    assert_non_null(strstr(r.log.issues[6].reason, "A9"));
    assert_int_equal(r.inserted, 3);
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), 3);
    assert_string_equal(q("SELECT revenue::text FROM sales WHERE product_id = 'A1'", NULL, NULL), "29.97"); /* price*units */
    assert_string_equal(q("SELECT promo::text FROM sales WHERE product_id = 'A2' AND day = '2024-01-05'", NULL, NULL), "true");
    assert_string_equal(q("SELECT units::text FROM sales WHERE product_id = 'A2' AND day = '2024-01-09'", NULL, NULL), "4");

    /* --strict: the same file writes nothing */
    exec_ok("TRUNCATE sales");
    so.strict = 1;
    assert_int_equal(db_import_csv(conn, sp, &so, &r), ENG_EFORMAT);
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), 0);

    /* a bad mapping is a clear error */
    db_import_opts bad = {"sales", "product_id=nosuch,day=date", NULL, 0, 0, 0, 0, 0};
    assert_int_equal(db_import_csv(conn, sp, &bad, &r), ENG_EINVAL);
    assert_non_null(strstr(eng_err_msg(), "nosuch"));
    db_import_report_free(&r);
    unlink(pp);
    unlink(sp);
}

static void test_generic_reimport(void **state) {
    (void)state;
    clear_tables();
    char pp[512], sp[512];
    snprintf(pp, sizeof pp, "%s/imp2_products_%d.csv", test_tmpdir(), (int)getpid());
    snprintf(sp, sizeof sp, "%s/imp2_sales_%d.csv", test_tmpdir(), (int)getpid());
    write_file(pp, "product_id;base_price\nP1;5\nP2;7\n");
    db_import_opts po = {"products", NULL, NULL, ';', 0, 0, 0, 0};
    db_import_report r;
    assert_int_equal(db_import_csv(conn, pp, &po, &r), 0);
    db_import_report_free(&r);
    /* European dates, no header, a constant column */
    write_file(sp, "P1,01/02/2024,5.00,10\nP1,02/02/2024,4.50,12\nP2,01/02/2024,7,1\n");
    db_import_opts so = {"sales", "product_id=#1,day=#2,price=#3,units=#4,promo:=false", "%d/%m/%Y", 0, 1, 0, 0, 0};
    assert_int_equal(db_import_csv(conn, sp, &so, &r), 0);
    assert_int_equal(r.inserted, 3);
    db_import_report_free(&r);
    assert_string_equal(q("SELECT day::text FROM sales WHERE product_id = 'P1' AND price = 4.5", NULL, NULL), "2024-02-02");
    assert_int_equal(db_import_csv(conn, sp, &so, &r), 0);
    assert_int_equal(r.inserted, 0);
    assert_int_equal(r.updated, 0); /* same values: untouched */
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), 3);
    /* changed price and a duplicate key inside the file: last row wins */
    write_file(sp, "P1,01/02/2024,5.25,10\nP2,01/02/2024,6,1\nP2,01/02/2024,6.5,2\n");
    assert_int_equal(db_import_csv(conn, sp, &so, &r), 0);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(r.inserted, 0);
    assert_int_equal(r.updated, 2);
    db_import_report_free(&r);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), 3);
    assert_string_equal(q("SELECT price::text || '/' || units::text FROM sales WHERE product_id = 'P2'", NULL, NULL), "6.5/2");
    assert_string_equal(q("SELECT price::text FROM sales WHERE product_id = 'P1' AND day = '2024-02-01'", NULL, NULL), "5.25");
    /* updating products with only some columns leaves the others alone */
    write_file(pp, "product_id,unit_cost\nP1,3\n");
    db_import_opts po2 = {"products", NULL, NULL, 0, 0, 0, 0, 0};
    assert_int_equal(db_import_csv(conn, pp, &po2, &r), 0);
    assert_int_equal(r.updated, 1);
    db_import_report_free(&r);
    assert_string_equal(q("SELECT base_price::text || '/' || unit_cost::text FROM products WHERE product_id = 'P1'", NULL, NULL), "5/3");
    /* --create-products: sales for an unknown product create it at the median price */
    write_file(sp, "P7,01/02/2024,3,1\nP7,02/02/2024,5,1\nP7,03/02/2024,4,1\n");
    so.create_products = 1;
    assert_int_equal(db_import_csv(conn, sp, &so, &r), 0);
    assert_int_equal(r.products_created, 1);
    assert_int_equal(r.log.bad, 0);
    db_import_report_free(&r);
    assert_close(qd("SELECT base_price FROM products WHERE product_id = 'P7'", NULL, NULL), 4.0, 1e-9, 0);
    unlink(pp);
    unlink(sp);
}

/* ---- db_history_store with ids that would break naive quoting ---- */
static const char *tricky[3] = {"it's \"q\"; DROP TABLE sales;--", "back\\slash\ttab", "new\nline \xE2\x98\x95"};

static db_history *make_history(void) {
    db_history *h = NULL;
    assert_int_equal(db_history_alloc(&h, 3, 4, 19723 /* 2024-01-01 */, 1), 0);
    h->n_competitors = 2;
    h->competitor_names = calloc(2, sizeof(char *));
    h->competitor_names[0] = strdup("rival\\one\t\"x\"");
    h->competitor_names[1] = strdup("rival;two");
    for (int p = 0; p < 3; p++) {
        h->product_id[p] = strdup(tricky[p]);
        h->name[p] = p == 1 ? NULL : strdup("name 'x'");
        h->base_price[p] = 10 + p;
        h->unit_cost[p] = p == 2 ? NAN : 5;
    }
    int64_t k = 0;
    h->comp_id = malloc(24 * sizeof(int32_t));
    h->comp_price = malloc(24 * sizeof(float));
    for (int c = 0; c < 12; c++) {
        h->comp_off[c] = k;
        if (c % 4 == 3) continue; /* t = 3 absent */
        h->present[c] = 1;
        h->price[c] = 9.99 + (double)c;
        h->units[c] = (float)c;
        h->revenue[c] = h->price[c] * h->units[c];
        h->traffic[c] = c % 2 ? NAN : 100.0f;
        h->promo[c] = (uint8_t)(c % 3 == 0);
        for (int j = 0; j < 2; j++) {
            h->comp_id[k] = j;
            h->comp_price[k++] = 8.5f + (float)j;
        }
    }
    h->comp_off[12] = k;
    return h;
}

static void test_store_roundtrip(void **state) {
    (void)state;
    clear_tables();
    db_history *h = make_history();
    db_store_report r;
    assert_int_equal(db_history_store(conn, h, NULL, &r), 0);
    assert_int_equal(r.products_inserted, 3);
    assert_int_equal(r.sales_inserted, 9);
    assert_int_equal(r.comp_inserted, 18);
    PGresult *res = PQexec(conn, "SELECT product_id FROM products ORDER BY product_id");
    assert_int_equal(PQntuples(res), 3);
    int seen[3] = {0};
    for (int i = 0; i < 3; i++)
        for (int p = 0; p < 3; p++) seen[p] += !strcmp(PQgetvalue(res, i, 0), tricky[p]);
    PQclear(res);
    for (int p = 0; p < 3; p++) assert_int_equal(seen[p], 1);
    assert_int_equal(ql("SELECT count(*) FROM sales WHERE product_id = $1", tricky[1], NULL), 3);
    assert_string_equal(q("SELECT price::text FROM sales WHERE product_id = $1 AND day = '2024-01-02'", tricky[0], NULL), "10.99");
    assert_string_equal(q("SELECT traffic IS NULL FROM sales WHERE product_id = $1 AND day = '2024-01-02'", tricky[0], NULL), "t");
    assert_string_equal(q("SELECT name IS NULL FROM products WHERE product_id = $1", tricky[1], NULL), "t");
    assert_string_equal(q("SELECT unit_cost IS NULL FROM products WHERE product_id = $1", tricky[2], NULL), "t");
    assert_int_equal(ql("SELECT count(*) FROM competitor_prices WHERE competitor = $1", "rival\\one\t\"x\"", NULL), 9);
    /* storing again changes nothing */
    assert_int_equal(db_history_store(conn, h, NULL, &r), 0);
    assert_int_equal(r.sales_inserted + r.sales_updated + r.comp_inserted + r.products_inserted, 0);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), 9);
    /* a changed value is replaced; replace_range drops a cell h no longer has */
    h->price[0] = 1.25f;
    h->present[1] = 0;
    db_store_opts o = {1, "juice"};
    assert_int_equal(db_history_store(conn, h, &o, &r), 0);
    assert_int_equal(r.sales_updated, 1);
    assert_int_equal(r.sales_deleted, 1);
    assert_int_equal(r.comp_deleted, 2);
    assert_int_equal(ql("SELECT count(*) FROM sales", NULL, NULL), 8);
    assert_string_equal(q("SELECT price::text FROM sales WHERE product_id = $1 AND day = '2024-01-01'", tricky[0], NULL), "1.25");
    assert_string_equal(q("SELECT category FROM products WHERE product_id = $1", tricky[2], NULL), "juice");
    /* duplicate ids are refused before anything is written */
    free(h->product_id[2]);
    h->product_id[2] = strdup(tricky[0]);
    assert_int_equal(db_history_store(conn, h, NULL, &r), ENG_EINVAL);
    assert_int_equal(ql("SELECT count(*) FROM products", NULL, NULL), 3);
    db_history_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dominicks_slice), cmocka_unit_test(test_dominicks_real),
        cmocka_unit_test(test_generic_malformed), cmocka_unit_test(test_generic_reimport),
        cmocka_unit_test(test_store_roundtrip),
    };
    eng_log_set_level(ENG_LOG_ERROR);
    return cmocka_run_group_tests_name("db_import", tests, setup, teardown);
}
