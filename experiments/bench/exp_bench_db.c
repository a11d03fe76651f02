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
#include "db_bench_gen.h"
#include "db_push.h"
#include "db_schema.h"
#include "eng_util.h"


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
        execlp("psql", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", db_bench_psql_copy, (char *)NULL);
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

int exp_bench_db_run(const char *dbarg, int n_products, int n_days, int keep) {
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
    if (db_bench_generate(c, gen)) goto done;
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
                                      0.01, -0.01, 0.03, 2, 0, NULL, NULL, 1, NAN};
    }
    db_run run = {"bench-run", last + 1, "finished", "{\"bench\":true}", n_products, n_products, 0, 0, "bench db", 0, 0, NAN, NAN};
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
