/* tests/test_db_load.c - the COPY loader: every validation rule with a crafted bad row and its
 * rejected_rows row, gaps, skips, date window / product filter, weekly detection, odd ids. */
#include "test_db.h"

#include "db_load.h"

static PGconn *conn;
static const char WEIRD[] = "q'u\"o;te\\back\ttab\nnl; DROP TABLE sales; --";
static const char WEIRD_COMP[] = "comp\\'x\t;\n";

static const char FIXTURE[] =
    /* constraints the loader must not rely on (a view or a staging copy may lack them) */
    "ALTER TABLE sales DROP CONSTRAINT sales_pkey;"
    "ALTER TABLE sales DROP CONSTRAINT sales_product_id_fkey;"
    "ALTER TABLE competitor_prices DROP CONSTRAINT competitor_prices_pkey;"
    "INSERT INTO products (product_id, name, base_price, unit_cost, min_price, max_price) VALUES"
    " ('A', 'apple', 2, 1, 1.5, 3), ('B', 'bread', 3, NULL, NULL, NULL), ('C', 'cheese', 1, NULL, NULL, NULL),"
    " ('Z', 'zero', 0, NULL, NULL, NULL), ('W1', 'weekly', 5, NULL, NULL, NULL);"
    /* A: clean every day except 2024-01-05 (gap) */
    "INSERT INTO sales SELECT 'A', d::date, 2, 10, 20, 100, false"
    " FROM generate_series(DATE '2024-01-01', DATE '2024-01-10', '1 day') d WHERE d <> DATE '2024-01-05';"
    "INSERT INTO sales VALUES ('A', '2024-01-01', 2.1, 9, 18.9, 90, false);" /* duplicate key */
    "INSERT INTO sales VALUES"
    " ('B', '2024-01-01', 3, 10, 30, 100, false),"
    " ('B', '2024-01-02', NULL, 10, 30, 100, false),"   /* bad_price */
    " ('B', '2024-01-03', 3, -1, -3, 100, false),"      /* negative_units */
    " ('B', '2024-01-04', 3, 10, 50, 100, false),"      /* revenue_mismatch */
    " ('B', '2024-01-05', 3, 10, 30, 100, false),"
    " ('B', '2024-01-06', 3, 5, 15, 0, false),"         /* zero traffic with sales */
    " ('B', '2024-01-07', 3, 10, 30.5, 100, false),"    /* within 2% + 0.01 */
    " ('B', '2024-01-08', 3, 10, 30, NULL, false),"     /* traffic unknown: kept, NaN */
    " ('B', '2024-01-09', 2.5, 12, 30, 80, true),"
    " ('B', '2024-01-10', 3, 10, 30, -5, false),"       /* negative_traffic */
    " ('C', '2024-01-02', 1, 1, 1, 10, false), ('C', '2024-01-03', 1, 1, 1, 10, false),"
    " ('X', '2024-01-01', 1, 1, 1, 10, false);"         /* unknown_product */
    "INSERT INTO competitor_prices VALUES"
    " ('A', '2024-01-01', 'acme', 1.9), ('A', '2024-01-01', 'best', 2.1),"
    " ('A', '2024-01-02', 'acme', 1.8), ('A', '2024-01-02', 'acme', 1.7),"  /* duplicate_key */
    " ('B', '2024-01-01', 'acme', 0),"                                       /* bad_price */
    " ('Y', '2024-01-01', 'acme', 1);"                                       /* unknown_product */
    /* weekly product (March): Mondays plus one stray Wednesday */
    "INSERT INTO sales SELECT 'W1', d::date, 5, 3, 15, 40, false"
    " FROM generate_series(DATE '2024-03-04', DATE '2024-04-01', '7 days') d;"
    "INSERT INTO sales VALUES ('W1', '2024-03-13', 5, 3, 15, 40, false);";

static int setup(void **state) {
    (void)state;
    conn = tdb_create("load");
    PGresult *r = PQexec(conn, FIXTURE);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("fixture: %s", PQerrorMessage(conn));
    PQclear(r);
    /* the odd product id: values only through parameters */
    const char *v[2] = {WEIRD, WEIRD_COMP};
    tdb_exec(conn, "INSERT INTO products (product_id, base_price) VALUES ($1, 4)", 1, v);
    tdb_exec(conn,
             "INSERT INTO sales SELECT $1, d::date, 4, 2, 8, 20, false"
             " FROM generate_series(DATE '2024-02-01', DATE '2024-02-04', '1 day') d",
             1, v);
    tdb_exec(conn, "INSERT INTO competitor_prices VALUES ($1, '2024-02-02', $2, 3.5)", 2, v);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

static long rejected(const char *run, const char *table, const char *key, const char *reason) {
    const char *v[4] = {run, table, key, reason};
    return tdb_long(conn,
                    "SELECT count(*) FROM rejected_rows WHERE run_id = $1 AND table_name = $2 AND row_key = $3"
                    " AND reason = $4",
                    4, v);
}

static int day(const char *s) {
    int32_t d = 0;
    assert_int_equal(db_day_parse(s, &d), ENG_OK);
    return d;
}

/* state: NULL = binary COPY (default), non-NULL = text COPY */
static void test_validation_rules(void **state) {
    db_load_opts o;
    db_load_opts_default(&o);
    o.text_copy = *state != NULL;
    o.to = "2024-01-31";
    o.min_periods = 3;
    o.run_id = "r1";
    db_history *h = NULL;
    db_load_report rep;
    assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_OK);
    assert_int_equal(rep.period_days, 1);
    assert_int_equal(h->day0, day("2024-01-01"));
    assert_int_equal(h->n_periods, 10);
    assert_int_equal(h->n_products, 2); /* A, B; C/W1/weird too short in the window; Z bad */
    int a = db_history_find(h, "A"), b = db_history_find(h, "B");
    assert_true(a >= 0 && b >= 0);
    const int T = h->n_periods;
    /* A: the duplicated day is dropped entirely, the gap day stays absent */
    assert_int_equal(h->present[a * T + 0], 0);
    assert_int_equal(h->present[a * T + 4], 0);
    assert_int_equal(h->present[a * T + 1], 1);
    assert_close(h->price[a * T + 1], 2.0, 1e-6, 0);
    assert_close(h->revenue[a * T + 1], 20.0, 1e-6, 0);
    assert_close(h->min_price[a], 1.5, 1e-12, 0);
    assert_true(isnan(h->min_price[b]));
    const uint8_t want_b[10] = {1, 0, 0, 0, 1, 0, 1, 1, 1, 0};
    for (int t = 0; t < T; t++) assert_int_equal(h->present[b * T + t], want_b[t]);
    assert_close(h->revenue[b * T + 6], 30.5, 1e-5, 0);
    assert_true(isnan(h->traffic[b * T + 7]));
    assert_int_equal(h->promo[b * T + 8], 1);
    assert_int_equal(h->promo[b * T + 7], 0);
    assert_close(h->price[b * T + 8], 2.5, 1e-6, 0);
    /* competitor prices: A day 1 has both; A day 2 lost its duplicated pair */
    int64_t c0 = a * T + 0;
    assert_int_equal(h->comp_off[c0 + 1] - h->comp_off[c0], 2);
    assert_string_equal(h->competitor_names[h->comp_id[h->comp_off[c0]]], "acme");
    assert_close(h->comp_price[h->comp_off[c0]], 1.9, 1e-6, 0);
    assert_close(h->comp_price[h->comp_off[c0] + 1], 2.1, 1e-6, 0);
    assert_int_equal(h->comp_off[c0 + 2] - h->comp_off[c0 + 1], 0);
    /* every rule has its rejected_rows row */
    assert_int_equal(rejected("r1", "sales", "A|2024-01-01", "duplicate_key"), 1);
    assert_int_equal(rejected("r1", "sales", "B|2024-01-02", "bad_price"), 1);
    assert_int_equal(rejected("r1", "sales", "B|2024-01-03", "negative_units"), 1);
    assert_int_equal(rejected("r1", "sales", "B|2024-01-04", "revenue_mismatch"), 1);
    assert_int_equal(rejected("r1", "sales", "B|2024-01-06", "zero_traffic_with_sales"), 1);
    assert_int_equal(rejected("r1", "sales", "B|2024-01-10", "negative_traffic"), 1);
    assert_int_equal(rejected("r1", "sales", "X|2024-01-01", "unknown_product"), 1);
    assert_int_equal(rejected("r1", "products", "Z", "bad_product"), 1);
    assert_int_equal(rejected("r1", "competitor_prices", "A|2024-01-02|acme", "duplicate_key"), 1);
    assert_int_equal(rejected("r1", "competitor_prices", "B|2024-01-01|acme", "bad_price"), 1);
    assert_int_equal(rejected("r1", "competitor_prices", "Y|2024-01-01|acme", "unknown_product"), 1);
    const char *v[1] = {"r1"};
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM rejected_rows WHERE run_id = $1", 1, v), 11);
    /* counts per reason (rows, duplicates count every copy) */
    assert_int_equal(rep.by_reason[DB_REJ_DUPLICATE_KEY], 4);
    assert_int_equal(rep.by_reason[DB_REJ_BAD_PRICE], 2);
    assert_int_equal(rep.by_reason[DB_REJ_UNKNOWN_PRODUCT], 2);
    assert_int_equal(rep.by_reason[DB_REJ_REVENUE_MISMATCH], 1);
    assert_int_equal(rep.n_rejected, 13);
    /* gaps per product, and the skipped products */
    assert_int_equal(rep.n_gaps, 2);
    for (int i = 0; i < rep.n_gaps; i++) {
        if (!strcmp(rep.gaps[i].product_id, "A")) {
            assert_int_equal(rep.gaps[i].n_missing, 1);
            assert_int_equal(rep.gaps[i].first_missing_day, day("2024-01-05"));
        } else {
            assert_string_equal(rep.gaps[i].product_id, "B");
            assert_int_equal(rep.gaps[i].n_missing, 4);
            assert_int_equal(rep.gaps[i].first_missing_day, day("2024-01-02"));
        }
    }
    assert_int_equal(rep.n_skipped, 3);
    int found_c = 0;
    for (int i = 0; i < rep.n_skipped; i++) found_c += !strcmp(rep.skipped[i], "C");
    assert_int_equal(found_c, 1);
    db_history_free(h);
    db_load_report_free(&rep);

    /* a stricter tolerance rejects B's 30.5; the re-run replaces r1's rejected rows */
    o.revenue_rel_tol = 0;
    assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_OK);
    assert_int_equal(rejected("r1", "sales", "B|2024-01-07", "revenue_mismatch"), 1);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM rejected_rows WHERE run_id = $1", 1, v), 12);
    assert_int_equal(h->present[db_history_find(h, "B") * T + 6], 0);
    db_history_free(h);
    db_load_report_free(&rep);
}

static void test_window_and_filter(void **state) {
    (void)state;
    const char *ids[] = {"B", "not-a-product"};
    db_load_opts o;
    db_load_opts_default(&o);
    o.from = "2024-01-03";
    o.to = "2024-01-08";
    o.products = ids;
    o.n_filter = 2;
    o.min_periods = 1;
    db_history *h = NULL;
    db_load_report rep;
    assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_OK);
    assert_int_equal(h->n_products, 1);
    assert_string_equal(h->product_id[0], "B");
    assert_int_equal(h->day0, day("2024-01-03"));
    assert_int_equal(h->n_periods, 6);
    const uint8_t want[6] = {0, 0, 1, 0, 1, 1}; /* 01-03 .. 01-08 */
    for (int t = 0; t < 6; t++) assert_int_equal(h->present[t], want[t]);
    assert_int_equal(rep.rows_sales, 6);     /* only B's rows in the window were streamed */
    assert_int_equal(rep.rows_products, 1);
    assert_int_equal(rep.by_reason[DB_REJ_UNKNOWN_PRODUCT], 0);
    db_history_free(h);
    db_load_report_free(&rep);
    /* a malformed date is the server's error, not a crash or a silent full load */
    o.from = "2024-13-45";
    assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_EDB);
    assert_null(h);
    assert_non_null(strstr(eng_err_msg(), "2024-13-45"));
    db_load_report_free(&rep);
}

/* Shards (an MPI rank's share, docs/mpi.md): shards 0..2 of 3 split the products (each exactly
 * once, by md5(product_id)) and share the calendar of the whole load; rows streamed add up. */
static void test_shards_split_products(void **state) {
    (void)state;
    db_load_opts o;
    db_load_opts_default(&o);
    o.min_periods = 1;
    db_history *all = NULL, *h = NULL;
    db_load_report rep;
    assert_int_equal(db_load_history(conn, &o, &all, &rep), ENG_OK);
    int64_t sales = rep.rows_sales;
    db_load_report_free(&rep);
    int seen = 0;
    int64_t sales_sum = 0;
    for (int k = 0; k < 3; k++) {
        o.shard_count = 3;
        o.shard_index = k;
        assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_OK);
        assert_int_equal(h->day0, all->day0);
        assert_int_equal(h->n_periods, all->n_periods);
        for (int p = 0; p < h->n_products; p++) {
            int found = 0;
            for (int q = 0; q < all->n_products; q++) found += !strcmp(h->product_id[p], all->product_id[q]);
            assert_int_equal(found, 1);
        }
        seen += h->n_products;
        sales_sum += rep.rows_sales;
        db_history_free(h);
        db_load_report_free(&rep);
    }
    assert_int_equal(seen, all->n_products);
    assert_true(sales_sum == sales);
    o.shard_index = 3; /* outside 0..count-1 */
    assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_EINVAL);
    db_history_free(all);
}

static void test_weekly_and_off_calendar(void **state) {
    (void)state;
    const char *ids[] = {"W1"};
    db_load_opts o;
    db_load_opts_default(&o);
    o.from = "2024-03-01";
    o.products = ids;
    o.n_filter = 1;
    o.min_periods = 2;
    o.run_id = "rw";
    db_history *h = NULL;
    db_load_report rep;
    assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_OK);
    assert_int_equal(h->period_days, 7);
    assert_int_equal(h->day0, day("2024-03-04"));
    assert_int_equal(h->n_periods, 5);
    for (int t = 0; t < 5; t++) assert_int_equal(h->present[t], 1);
    assert_int_equal(rejected("rw", "sales", "W1|2024-03-13", "off_calendar"), 1);
    assert_int_equal(rep.by_reason[DB_REJ_OFF_CALENDAR], 1);
    db_history_free(h);
    db_load_report_free(&rep);
}

static void test_odd_product_id(void **state) {
    const char *ids[] = {WEIRD};
    db_load_opts o;
    db_load_opts_default(&o);
    o.text_copy = *state != NULL;
    o.products = ids;
    o.n_filter = 1;
    o.min_periods = 4;
    db_history *h = NULL;
    db_load_report rep;
    assert_int_equal(db_load_history(conn, &o, &h, &rep), ENG_OK);
    assert_int_equal(h->n_products, 1);
    assert_string_equal(h->product_id[0], WEIRD);
    assert_int_equal(h->n_periods, 4);
    assert_int_equal(h->n_competitors, 1);
    assert_string_equal(h->competitor_names[0], WEIRD_COMP);
    assert_int_equal(h->comp_off[2] - h->comp_off[1], 1);
    assert_close(h->comp_price[h->comp_off[1]], 3.5, 1e-6, 0);
    db_history_free(h);
    db_load_report_free(&rep);
    /* the sales table survived the id's "DROP TABLE" */
    assert_true(tdb_long(conn, "SELECT count(*) FROM sales", 0, NULL) > 20);
}

static const int text_mode = 1;

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_validation_rules, NULL),
        cmocka_unit_test_prestate(test_validation_rules, (void *)&text_mode),
        cmocka_unit_test(test_window_and_filter),
        cmocka_unit_test(test_weekly_and_off_calendar),
        cmocka_unit_test(test_shards_split_products),
        cmocka_unit_test_prestate(test_odd_product_id, NULL),
        cmocka_unit_test_prestate(test_odd_product_id, (void *)&text_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
