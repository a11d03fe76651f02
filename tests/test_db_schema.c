/* tests/test_db_schema.c - schema creation is idempotent; required names exist; the
 * least-privilege role reads history and writes only run tables. */
#include "test_db.h"

static PGconn *conn;

static int setup(void **state) {
    (void)state;
    conn = tdb_create("schema");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tdb_drop(conn);
    return 0;
}

static long column_count(const char *table) {
    const char *v[1] = {table};
    return tdb_long(conn, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
                          " AND table_name = $1", 1, v);
}

static void test_schema_idempotent(void **state) {
    (void)state;
    /* tdb_create applied it once; again twice, with data in between */
    tdb_exec(conn, "INSERT INTO products (product_id, base_price) VALUES ('keep', 1)", 0, NULL);
    assert_int_equal(db_schema_apply(conn), ENG_OK);
    assert_int_equal(db_schema_apply(conn), ENG_OK);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM products", 0, NULL), 1);
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", 0, NULL), 7);
    const char *need[] = {"products", "sales", "competitor_prices", "pricing_runs", "price_recommendations",
                          "rejected_rows", "pricing_run_attempts"};
    for (int i = 0; i < 7; i++) assert_true(column_count(need[i]) >= 4);
    assert_int_equal(column_count("sales"), 7);
    assert_int_equal(column_count("rejected_rows"), 4);
    /* keys and the foreign key are there */
    assert_int_equal(tdb_long(conn, "SELECT count(*) FROM pg_constraint WHERE conname IN"
                                    " ('sales_pkey', 'competitor_prices_pkey', 'sales_product_id_fkey',"
                                    " 'price_recommendations_pkey', 'rejected_rows_pkey')", 0, NULL), 5);
    PGresult *r = PQexec(conn, "INSERT INTO sales (product_id, day) VALUES ('nope', '2024-01-01')");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    assert_non_null(strstr(db_schema_sql, "CREATE TABLE IF NOT EXISTS price_recommendations"));
}

static ExecStatusType try_sql(const char *sql) {
    PGresult *r = PQexec(conn, sql);
    ExecStatusType s = PQresultStatus(r);
    PQclear(r);
    return s;
}

static void test_roles(void **state) {
    (void)state;
    assert_int_equal(db_roles_apply(conn), ENG_OK);
    assert_int_equal(db_roles_apply(conn), ENG_OK); /* idempotent too */
    tdb_exec(conn, "SET ROLE rlprice_app", 0, NULL);
    assert_int_equal(try_sql("SELECT count(*) FROM sales"), PGRES_TUPLES_OK);
    assert_int_equal(try_sql("INSERT INTO products (product_id, base_price) VALUES ('x', 1)"), PGRES_FATAL_ERROR);
    assert_int_equal(try_sql("DELETE FROM sales"), PGRES_FATAL_ERROR);
    assert_int_equal(try_sql("INSERT INTO pricing_runs (run_id, run_date, status) VALUES ('r', '2024-01-01', 'running')"),
                     PGRES_COMMAND_OK);
    assert_int_equal(try_sql("INSERT INTO rejected_rows VALUES ('r', 'sales', 'k', 'bad_price')"), PGRES_COMMAND_OK);
    assert_int_equal(try_sql("DROP TABLE sales"), PGRES_FATAL_ERROR);
    tdb_exec(conn, "RESET ROLE", 0, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_idempotent),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
