/* tests/test_db_load.c - the COPY loader: every validation rule with a crafted bad row and its
 * rejected_rows row, gaps, skips, date window / product filter, weekly detection, odd ids. */
#include "test_db.h"

#include "db_load.h"
#include "db_load_shard.h"

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

/* Two bit patterns equal (NaN == NaN). */
static int same_f(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* Product p of e equals product q of a: every column, competitor prices by name. */
static void assert_same_product(const db_history *e, int p, const db_history *a, int q) {
    const int T = a->n_periods;
    assert_string_equal(e->product_id[p], a->product_id[q]);
    assert_true(same_f(e->base_price[p], a->base_price[q]) && same_f(e->min_price[p], a->min_price[q]) &&
                same_f(e->max_price[p], a->max_price[q]) && same_f(e->unit_cost[p], a->unit_cost[q]));
    assert_int_equal(e->price_scale[p], a->price_scale[q]);
    for (int t = 0; t < T; t++) {
        size_t c = (size_t)p * T + t, d = (size_t)q * T + t;
        assert_int_equal(e->present[c], a->present[d]);
        assert_true(same_f(e->price[c], a->price[d]) && same_f(e->units[c], a->units[d]) &&
                    same_f(e->revenue[c], a->revenue[d]) && same_f(e->traffic[c], a->traffic[d]));
        assert_int_equal(e->comp_off[c + 1] - e->comp_off[c], a->comp_off[d + 1] - a->comp_off[d]);
        for (int64_t k = 0; k < e->comp_off[c + 1] - e->comp_off[c]; k++) {
            assert_string_equal(e->competitor_names[e->comp_id[e->comp_off[c] + k]],
                                a->competitor_names[a->comp_id[a->comp_off[d] + k]]);
            assert_true(same_f(e->comp_price[e->comp_off[c] + k], a->comp_price[a->comp_off[d] + k]));
        }
    }
}

/* The catalogue (ids in the loader's order, its calendar) and a sharded load: two halves of the
 * catalogue loaded with its calendar and expanded give, product by product, the one-process
 * history (own products whole, the others blank), in the same slots. */
static void test_catalogue_and_expand(void **state) {
    (void)state;
    db_load_opts o;
    db_load_opts_default(&o);
    o.min_periods = 1;
    db_history *all = NULL;
    db_load_report rep;
    assert_int_equal(db_load_history(conn, &o, &all, &rep), ENG_OK);
    const int64_t rejected_all = rep.n_rejected, sales_all = rep.rows_sales;
    db_load_report_free(&rep);
    db_catalogue cat;
    assert_int_equal(db_load_catalogue(conn, &o, &cat), ENG_OK);
    db_load_report unk = {0};
    assert_int_equal(db_load_unknown(conn, &o, &unk), ENG_OK); /* X's sales row, Y's competitor price */
    assert_int_equal(unk.n_rejects, 2);
    assert_int_equal(unk.by_reason[DB_REJ_UNKNOWN_PRODUCT], 2);
    assert_string_equal(unk.rejects[0].row_key, "X|2024-01-01");
    assert_string_equal(unk.rejects[1].row_key, "Y|2024-01-01|acme");
    int64_t rejected_sum = unk.n_rejected, sales_sum = unk.rows_sales;
    db_load_report_free(&unk);
    assert_int_equal(cat.n, all->n_products + 1); /* Z: bad_product, in the catalogue, not loaded */
    assert_int_equal(cat.day0, all->day0);
    assert_int_equal(cat.n_periods, all->n_periods);
    assert_int_equal(cat.period_days, all->period_days);
    for (int i = 0, q = 0; i < cat.n; i++)
        if (q < all->n_products && !strcmp(cat.ids[i], all->product_id[q])) q++;
        else assert_string_equal(cat.ids[i], "Z");
    for (int half = 0; half < 2; half++) {
        const char *own[16];
        int n_own = 0;
        for (int i = 0; i < cat.n; i++)
            if (i % 2 == half) own[n_own++] = cat.ids[i];
        db_load_opts so = o;
        so.products = own;
        so.n_filter = n_own;
        so.cal_fixed = 1;
        so.cal_day0 = cat.day0;
        so.cal_n_periods = cat.n_periods;
        so.period_days = cat.period_days;
        db_history *mine = NULL, *e = NULL;
        assert_int_equal(db_load_history(conn, &so, &mine, &rep), ENG_OK);
        assert_int_equal(mine->n_periods, all->n_periods);
        int slot[16], k = 0;
        for (int q = 0; q < all->n_products; q++)
            if (k < mine->n_products && !strcmp(mine->product_id[k], all->product_id[q])) slot[k++] = q;
        assert_int_equal(k, mine->n_products);
        assert_int_equal(db_history_expand(mine, all->n_products, all->product_id, all->name, slot, &e), ENG_OK);
        assert_int_equal(e->n_products, all->n_products);
        for (int q = 0, m = 0; q < all->n_products; q++) {
            if (m < mine->n_products && slot[m] == q) { assert_same_product(e, q, all, q); m++; continue; }
            assert_string_equal(e->product_id[q], all->product_id[q]);
            assert_true(isnan(e->base_price[q]) && e->explore_off[q] == 1 && e->price_scale[q] == -1);
            for (int t = 0; t < e->n_periods; t++) {
                assert_int_equal(e->present[(size_t)q * e->n_periods + t], 0);
                assert_int_equal(e->comp_off[(size_t)q * e->n_periods + t + 1], e->comp_off[(size_t)q * e->n_periods + t]);
            }
        }
        rejected_sum += rep.n_rejected;
        sales_sum += rep.rows_sales;
        db_history_free(mine);
        db_history_free(e);
        db_load_report_free(&rep);
    }
    assert_true(rejected_sum == rejected_all); /* the halves and the unknown rows: every reject */
    assert_true(sales_sum == sales_all);
    db_catalogue_free(&cat);
    db_history_free(all);
}

/* db_history_expand alone: one product moved to slot 2 of 4 with its logged cell re-indexed; the
 * others blank; slots must increase. */
static void test_expand_one_product(void **state) {
    (void)state;
    db_history *own = NULL, *e = NULL;
    assert_int_equal(db_history_alloc(&own, 1, 3, 100, 1), ENG_OK);
    own->product_id[0] = strdup("P");
    own->base_price[0] = 2.5;
    own->price_scale[0] = 2;
    own->present[1] = 1;
    own->price[1] = 2.25;
    own->units[1] = 4;
    own->revenue[1] = 9;
    own->n_logged = 1;
    own->logged_cell = malloc(sizeof(int64_t));
    own->logged_prop = malloc(sizeof(double));
    own->logged_off = malloc(2 * sizeof(int32_t));
    own->logged_sprice = malloc(sizeof(double));
    own->logged_sprob = malloc(sizeof(double));
    own->logged_cell[0] = 1;
    own->logged_prop[0] = 0.5;
    own->logged_off[0] = 0, own->logged_off[1] = 1;
    own->logged_sprice[0] = 2.25, own->logged_sprob[0] = 1;
    char *ids[4] = {"a", "b", "P", "d"};
    int slot = 2;
    assert_int_equal(db_history_expand(own, 4, ids, NULL, &slot, &e), ENG_OK);
    assert_int_equal(e->n_products, 4);
    assert_string_equal(e->product_id[2], "P");
    assert_true(e->base_price[2] == 2.5 && e->price_scale[2] == 2 && e->explore_off[2] == 0);
    assert_true(e->present[2 * 3 + 1] == 1 && e->price[2 * 3 + 1] == 2.25 && e->units[7] == 4);
    assert_int_equal(e->n_logged, 1);
    assert_int_equal(e->logged_cell[0], 2 * 3 + 1);
    assert_int_equal(db_history_logged_find(e, 7), 0);
    for (int p = 0; p < 4; p++) {
        if (p == 2) continue;
        assert_true(isnan(e->base_price[p]) && e->explore_off[p] == 1);
        for (int t = 0; t < 3; t++) assert_int_equal(e->present[p * 3 + t], 0);
    }
    db_history_free(e);
    slot = 4; /* outside the catalogue */
    assert_int_equal(db_history_expand(own, 4, ids, NULL, &slot, &e), ENG_EINVAL);
    assert_null(e);
    db_history_free(own);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_validation_rules, NULL),
        cmocka_unit_test_prestate(test_validation_rules, (void *)&text_mode),
        cmocka_unit_test(test_window_and_filter),
        cmocka_unit_test(test_weekly_and_off_calendar),
        cmocka_unit_test(test_shards_split_products),
        cmocka_unit_test(test_catalogue_and_expand),
        cmocka_unit_test(test_expand_one_product),
        cmocka_unit_test_prestate(test_odd_product_id, NULL),
        cmocka_unit_test_prestate(test_odd_product_id, (void *)&text_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
