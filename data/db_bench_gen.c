/* db_bench_gen.c - the synthetic rows of `rlprice bench db`, generated server-side (see
 * db_bench_gen.h). */
#include "db_bench_gen.h"

#include "db_conn.h"
#include "eng_util.h"

/* The same rows and columns the loader's sales phase streams. */
const char db_bench_psql_copy[] =
    "\\copy (SELECT product_id, day, price, units, revenue, traffic, promo FROM sales) to '/dev/null'";

static int run_sql(PGconn *c, const char *sql, int n, const char *const *vals, const char *what) {
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    PQclear(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return ENG_OK;
    char msg[1024];
    return eng_err_set(ENG_EDB, "%s: %s", what, db_redact(msg, sizeof msg, PQerrorMessage(c), NULL));
}

static const char Q_GEN_PRODUCTS[] =
    "INSERT INTO products (product_id, name, base_price, unit_cost, min_price, max_price, max_change_pct)"
    " SELECT 'P' || lpad(i::text, 6, '0'), 'product ' || i, b, round(b * 0.6, 2), round(b * 0.7, 2),"
    "  round(b * 1.3, 2), 10"
    " FROM generate_series(1, $1::int) i, LATERAL (SELECT round(1 + (i % 50) * 0.1, 2) AS b) x";
static const char Q_GEN_SALES[] =
    "INSERT INTO sales (product_id, day, price, units, revenue, traffic, promo)"
    " SELECT 'P' || lpad(i::text, 6, '0'), DATE '2024-01-01' + d, pr, u, pr * u, u * 5 + 20, d % 14 = 0"
    " FROM generate_series(1, $1::int) i, generate_series(0, $2::int - 1) d,"
    " LATERAL (SELECT round((1 + (i % 50) * 0.1) * (0.9 + ((i * 7 + d * 13) % 21) / 100.0), 2) AS pr,"
    "                 (i * 31 + d * 17) % 40 AS u) x";
static const char Q_GEN_COMP[] =
    "INSERT INTO competitor_prices (product_id, day, competitor, price)"
    " SELECT 'P' || lpad(i::text, 6, '0'), DATE '2024-01-01' + d, c,"
    "  round((1 + (i % 50) * 0.1) * (0.85 + ((i * 11 + d * 3) % 31) / 100.0), 2)"
    " FROM generate_series(1, $1::int) i, generate_series(0, $2::int - 1) d, unnest(ARRAY['acme', 'best']) c"
    " WHERE (i + d) % (CASE c WHEN 'acme' THEN 2 ELSE 5 END) = 0";

int db_bench_generate(PGconn *c, const char *const gen[2]) {
    if (run_sql(c, Q_GEN_PRODUCTS, 1, gen, "generating products") || run_sql(c, Q_GEN_SALES, 2, gen, "generating sales") ||
        run_sql(c, Q_GEN_COMP, 2, gen, "generating competitor prices") ||
        run_sql(c, "VACUUM ANALYZE products", 0, NULL, "vacuum") || run_sql(c, "VACUUM ANALYZE sales", 0, NULL, "vacuum") ||
        run_sql(c, "VACUUM ANALYZE competitor_prices", 0, NULL, "vacuum"))
        return ENG_EDB;
    return ENG_OK;
}

int db_vacuum_analyze(PGconn *c) { return run_sql(c, "VACUUM ANALYZE", 0, NULL, "vacuum"); }
