/* exp_bench_db.c - `rlprice bench db` (see exp_bench_db.h). */
#include "exp_bench_db.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db_conn.h"
#include "db_history.h"
#include "db_load.h"
#include "db_push.h"
#include "db_schema.h"
#include "eng_util.h"

/* The same rows and columns the loader's sales phase streams. */
#define PSQL_COPY "\\copy (SELECT product_id, day, price, units, revenue, traffic, promo FROM sales) to '/dev/null'"

static int run_sql(PGconn *c, const char *sql, int n, const char *const *vals, const char *what) {
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    PQclear(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return ENG_OK;
    char msg[1024];
    return eng_err_set(ENG_EDB, "%s: %s", what, db_redact(msg, sizeof msg, PQerrorMessage(c), NULL));
}

/* Time `psql -X -q -c "\copy ..."` against the bench database; password via the environment. */
static int time_psql(PGconn *c, double *sec) {
    double t0 = eng_now();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return eng_err_set(ENG_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        setenv("PGHOST", PQhost(c), 1);
        setenv("PGPORT", PQport(c), 1);
        setenv("PGUSER", PQuser(c), 1);
        setenv("PGDATABASE", PQdb(c), 1);
        if (PQpass(c) && *PQpass(c)) setenv("PGPASSWORD", PQpass(c), 1);
        execlp("psql", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", PSQL_COPY, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    *sec = eng_now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return eng_err_set(ENG_EIO, "psql \\copy failed (exit %d); is psql on PATH?",
                           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return ENG_OK;
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

int exp_cmd_bench_db(int argc, char **argv) {
    const char *dbarg = NULL;
    int n_products = 40000, n_days = 60, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) dbarg = argv[++i];
        else if (!strcmp(argv[i], "--products") && i + 1 < argc) n_products = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--days") && i + 1 < argc) n_days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else { fprintf(stderr, "usage: rlprice bench db [--db CONNINFO] [--products N] [--days N] [--keep]\n"); return 2; }
    }
    if (n_products <= 0 || n_days <= 0) { fprintf(stderr, "rlprice: --products and --days must be > 0\n"); return 2; }
    PGconn *m = NULL, *c = NULL;
    db_history *h = NULL, *kept = NULL;
    db_load_report rep = {0};
    db_recommendation *recs = NULL;
    int rc = 3, created = 0;
    char dbname[64], np[16], nd[16];
    snprintf(dbname, sizeof dbname, "rlprice_bench_%d", (int)getpid());
    snprintf(np, sizeof np, "%d", n_products);
    snprintf(nd, sizeof nd, "%d", n_days);
    const char *gen[2] = {np, nd};
    if (db_resolve(&m, dbarg)) goto done;
    if (db_database_create(m, dbname)) goto done;
    created = 1;
    if (db_connect_like(&c, m, dbname) || db_schema_apply(c)) goto done;
    printf("bench db: %s, database %s\n", db_describe(m), dbname);
    double t = eng_now();
    if (run_sql(c, Q_GEN_PRODUCTS, 1, gen, "generating products") || run_sql(c, Q_GEN_SALES, 2, gen, "generating sales") ||
        run_sql(c, Q_GEN_COMP, 2, gen, "generating competitor prices") ||
        run_sql(c, "VACUUM ANALYZE products", 0, NULL, "vacuum") || run_sql(c, "VACUUM ANALYZE sales", 0, NULL, "vacuum") ||
        run_sql(c, "VACUUM ANALYZE competitor_prices", 0, NULL, "vacuum"))
        goto done;
    printf("  generated %d products x %d days server-side in %.1f s\n", n_products, n_days, eng_now() - t);

    /* warm the cache once, then alternate psql and the loader; best of three each (the
     * machine may be shared: the best run is the least disturbed one) */
    double psql_s = INFINITY, sales_s = INFINITY, load_s = INFINITY, tmp;
    if (time_psql(c, &tmp)) goto done;
    size_t rss0 = eng_peak_rss(), rss_growth = 0, hist_bytes = 0;
    int64_t sales_rows = 0, comp_rows = 0;
    for (int rep_i = 0; rep_i < 3; rep_i++) {
        if (time_psql(c, &tmp)) goto done;
        if (tmp < psql_s) psql_s = tmp;
        db_load_opts o;
        db_load_opts_default(&o);
        o.min_periods = 1;
        t = eng_now();
        if (db_load_history(c, &o, &h, &rep)) goto done;
        tmp = eng_now() - t;
        if (tmp < load_s) load_s = tmp;
        if (rep.sec_sales < sales_s) sales_s = rep.sec_sales;
        if (rep_i == 0) {
            size_t peak = eng_peak_rss();
            rss_growth = peak > rss0 ? peak - rss0 : 0;
            hist_bytes = db_history_bytes(h);
            sales_rows = rep.rows_sales;
            comp_rows = rep.rows_competitor;
            if (rep.n_rejected || h->n_products != n_products || h->n_periods != n_days) {
                eng_err_set(ENG_EDB, "bench data loaded wrongly: %lld rejected, %d x %d", (long long)rep.n_rejected,
                            h->n_products, h->n_periods);
                goto done;
            }
        }
        if (rep_i == 0) { /* keep the first history for the push */
            kept = h;
            h = NULL;
        }
        db_history_free(h);
        h = NULL;
        db_load_report_free(&rep);
    }
    h = kept;
    kept = NULL;
    /* push one recommendation per product */
    recs = calloc((size_t)n_products, sizeof *recs);
    if (!recs) { eng_err_set(ENG_ENOMEM, "out of memory"); goto done; }
    int32_t last = h->day0 + (h->n_periods - 1) * h->period_days;
    for (int p = 0; p < h->n_products; p++) {
        double inc = h->price[(size_t)p * h->n_periods + h->n_periods - 1];
        recs[p] = (db_recommendation){h->product_id[p], last + 1, round(inc * 102.0) / 100.0, inc, "dqn", "bench",
                                      0.01, -0.01, 0.03, 2};
    }
    db_run run = {"bench-run", last + 1, "finished", "{\"bench\":true}", n_products, n_products, 0, 0, "bench db"};
    t = eng_now();
    if (db_push(c, &run, recs, (size_t)n_products, NULL)) goto done;
    double push_s = eng_now() - t;

    double raw = (double)sales_rows * (4 * sizeof(float) + 1) + (double)comp_rows * (sizeof(int32_t) + sizeof(float));
    printf("  rows: sales %lld, competitor_prices %lld\n", (long long)sales_rows, (long long)comp_rows);
    printf("  psql \\copy (same sales columns)    %.3f s  %10.0f rows/s\n", psql_s, sales_rows / psql_s);
    printf("  loader, sales phase (COPY + checks) %.3f s  %10.0f rows/s  = %.0f%% of psql (goal >= 80%%)\n", sales_s,
           sales_rows / sales_s, 100.0 * psql_s / sales_s);
    printf("  loader, whole load (+ products, competitors, calendar) %.3f s  %.0f rows/s (sales + competitor rows)\n",
           load_s, (sales_rows + comp_rows) / load_s);
    printf("  memory: raw columns %.1f MB, db_history_bytes %.1f MB (%.2fx), peak RSS growth %.1f MB (%.2fx; goal <= 2x)\n",
           raw / 1e6, hist_bytes / 1e6, hist_bytes / raw, rss_growth / 1e6, rss_growth / raw);
    printf("  push %d recommendations (one transaction): %.3f s  %.0f rows/s\n", n_products, push_s, n_products / push_s);
    rc = 0;
done:
    if (rc) fprintf(stderr, "rlprice: %s\n", eng_err_msg());
    free(recs);
    db_history_free(h);
    db_history_free(kept);
    db_load_report_free(&rep);
    db_disconnect(c);
    if (created && !keep && db_database_drop(m, dbname)) fprintf(stderr, "rlprice: %s\n", eng_err_msg());
    if (created && keep) printf("  kept database %s\n", dbname);
    db_disconnect(m);
    return rc;
}
