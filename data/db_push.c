/* db_push.c - atomic push of a pricing run (see db_push.h). */
#include "db_push.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_conn.h"
#include "db_history.h"
#include "db_load.h"
#include "db_runlock.h"
#include "eng_util.h"

void db_push_opts_default(db_push_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_retries = 5;
    o->backoff_s = 0.05;
}

/* Result check that keeps the SQLSTATE (sqlstate[6]) for the retry decision. */
static int check(PGconn *conn, PGresult *r, ExecStatusType want, const char *what, char *sqlstate) {
    int st = ENG_OK;
    if (PQresultStatus(r) != want) {
        const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        snprintf(sqlstate, 6, "%s", code ? code : "");
        char msg[1024];
        st = eng_err_set(ENG_EDB, "%s: %s", what, db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
    }
    PQclear(r);
    return st;
}

/* Append text that needs no escaping (numbers, dates, the NULL marker \N). */
static int append_raw(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 2 > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n + 2) nc *= 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return eng_err_set(ENG_ENOMEM, "out of memory building COPY data");
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    return ENG_OK;
}

static int append_num(char **buf, size_t *len, size_t *cap, double v) {
    char tmp[40];
    if (isnan(v)) snprintf(tmp, sizeof tmp, "\\N");
    else snprintf(tmp, sizeof tmp, "%.15g", v);
    return append_raw(buf, len, cap, tmp);
}

char *db_price_format(char *buf, size_t n, double v, int scale) {
    if (!buf || n == 0) return buf;
    buf[0] = '\0';
    if (!isfinite(v)) return buf;
    int len = snprintf(buf, n, "%.15g", v);
    if (len < 0 || (size_t)len >= n || strpbrk(buf, "eEn")) return buf;
    if (scale > DB_PRICE_SCALE_MAX) scale = DB_PRICE_SCALE_MAX;
    char *dot = strchr(buf, '.');
    int have = dot ? (int)strlen(dot + 1) : 0;
    if (have >= scale) return buf;
    size_t o = (size_t)len;
    if (!dot && o + 1 < n) buf[o++] = '.';
    for (int k = have; k < scale && o + 1 < n; k++) buf[o++] = '0';
    buf[o] = '\0';
    return buf;
}

static int append_price(char **buf, size_t *len, size_t *cap, double v, int scale) {
    char tmp[48];
    if (isnan(v)) return append_raw(buf, len, cap, "\\N");
    return append_raw(buf, len, cap, db_price_format(tmp, sizeof tmp, v, scale));
}

/* Check r's distribution (see db_recommendation); 0 or ENG_EINVAL naming record i. */
static int check_support(const db_recommendation *r, size_t i) {
    if (r->n_support == 0) return ENG_OK;
    if (r->n_support < 0 || !r->support_price || !r->support_prob || !(r->propensity > 0 && r->propensity <= 1))
        return eng_err_set(ENG_EINVAL, "db_push: recommendation %zu (%s): a support needs prices, probabilities and a "
                           "propensity in (0, 1]", i, r->product_id);
    double sum = 0;
    int found = 0;
    for (int k = 0; k < r->n_support; k++) {
        double q = r->support_price[k], w = r->support_prob[k];
        if (!(q > 0 && q <= DB_PRICE_MAX) || !(w > 0 && w <= 1))
            return eng_err_set(ENG_EINVAL, "db_push: recommendation %zu (%s): support entry %d (%g with %g) is not a "
                               "price with a probability in (0, 1]", i, r->product_id, k, q, w);
        for (int j = 0; j < k; j++)
            if (fabs(r->support_price[j] - q) < 0.005)
                return eng_err_set(ENG_EINVAL, "db_push: recommendation %zu (%s): support price %g twice", i,
                                   r->product_id, q);
        sum += w;
        if (fabs(q - r->price) < 0.005) {
            found = 1;
            if (fabs(w - r->propensity) > 1e-12)
                return eng_err_set(ENG_EINVAL, "db_push: recommendation %zu (%s): propensity %.17g is not the "
                                   "probability %.17g of the pushed price", i, r->product_id, r->propensity, w);
        }
    }
    if (!found || fabs(sum - 1) > 1e-9)
        return eng_err_set(ENG_EINVAL, "db_push: recommendation %zu (%s): the support must hold the pushed price and "
                           "its probabilities sum to 1 (sum %.17g)", i, r->product_id, sum);
    return ENG_OK;
}

/* The distribution columns: propensity, support_prices, support_probs, decided_price. */
static int append_support(char **buf, size_t *len, size_t *cap, const db_recommendation *r) {
    char tmp[64];
    const int det = r->n_support == 0;
    snprintf(tmp, sizeof tmp, "\t%.17g\t{", det ? 1.0 : r->propensity);
    int st = append_raw(buf, len, cap, tmp);
    for (int k = 0; k < (det ? 1 : r->n_support) && !st; k++) {
        if (k) st = append_raw(buf, len, cap, ",");
        if (!st) st = append_price(buf, len, cap, det ? r->price : r->support_price[k], r->price_scale);
    }
    if (!st) st = append_raw(buf, len, cap, "}\t{");
    for (int k = 0; k < (det ? 1 : r->n_support) && !st; k++) {
        snprintf(tmp, sizeof tmp, "%s%.17g", k ? "," : "", det ? 1.0 : r->support_prob[k]);
        st = append_raw(buf, len, cap, tmp);
    }
    if (!st) st = append_raw(buf, len, cap, "}\t");
    if (!st) st = append_price(buf, len, cap, isfinite(r->decided_price) && r->decided_price > 0 ? r->decided_price : r->price,
                               r->price_scale);
    return st;
}

/* COPY text rows for the temp table; validates each record. */
static int build_copy(const db_recommendation *recs, size_t n, char **out, size_t *out_len) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int st = ENG_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const db_recommendation *r = &recs[i];
        if (!r->product_id || !r->agent || !isfinite(r->price) || !(r->price > 0)) {
            st = eng_err_set(ENG_EINVAL, "db_push: recommendation %zu: needs product_id, agent and a price > 0", i);
            break;
        }
        if (!(r->price <= DB_PRICE_MAX) || (isfinite(r->incumbent_price) && !(r->incumbent_price <= DB_PRICE_MAX))) {
            st = eng_err_set(ENG_EINVAL, "db_push: recommendation %zu (%s): price above %.0f, more than a double carries "
                             "to the cent", i, r->product_id, DB_PRICE_MAX);
            break;
        }
        if ((st = check_support(r, i))) break;
        char day[16];
        db_day_format(r->effective_day, day);
        st = db_copy_escape(&buf, &len, &cap, r->product_id);
        if (!st) { buf[len++] = '\t'; st = append_raw(&buf, &len, &cap, day); }
        if (!st) { buf[len++] = '\t'; st = append_price(&buf, &len, &cap, r->price, r->price_scale); }
        if (!st) { buf[len++] = '\t'; st = append_price(&buf, &len, &cap, r->incumbent_price, r->price_scale); }
        if (!st) { buf[len++] = '\t'; st = db_copy_escape(&buf, &len, &cap, r->agent); }
        if (!st) {
            buf[len++] = '\t';
            st = r->reason ? db_copy_escape(&buf, &len, &cap, r->reason) : append_raw(&buf, &len, &cap, "\\N");
        }
        if (!st) { buf[len++] = '\t'; st = append_num(&buf, &len, &cap, r->expected_uplift); }
        if (!st) { buf[len++] = '\t'; st = append_num(&buf, &len, &cap, r->ci_low); }
        if (!st) { buf[len++] = '\t'; st = append_num(&buf, &len, &cap, r->ci_high); }
        if (!st) st = append_support(&buf, &len, &cap, r);
        if (!st) buf[len++] = '\n';
    }
    if (st) { free(buf); return st; }
    *out = buf;
    *out_len = len;
    return ENG_OK;
}

static void rollback(PGconn *conn) {
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) PQclear(PQexec(conn, "ROLLBACK"));
}

static const char Q_RUN_UPSERT[] =
    "INSERT INTO pricing_runs (run_id, run_date, status, config, n_products, n_repriced, n_held,"
    " n_rejected_rows, summary, n_explored, explore_cost, explore_cost_share, started_at, finished_at)"
    " VALUES ($1, DATE '1970-01-01' + $2::int, $3::text, $4, $5::int, $6::int, $7::int, $8::int, $9, $10::int,"
    "  $11::float8, $12::float8, now(), CASE WHEN $3::text = 'running' THEN NULL ELSE now() END)"
    " ON CONFLICT (run_id) DO UPDATE SET run_date = EXCLUDED.run_date, status = EXCLUDED.status,"
    "  config = EXCLUDED.config, n_products = EXCLUDED.n_products, n_repriced = EXCLUDED.n_repriced,"
    "  n_held = EXCLUDED.n_held, n_rejected_rows = EXCLUDED.n_rejected_rows, summary = EXCLUDED.summary,"
    "  n_explored = EXCLUDED.n_explored, explore_cost = EXCLUDED.explore_cost,"
    "  explore_cost_share = EXCLUDED.explore_cost_share, finished_at = EXCLUDED.finished_at";

/* One attempt of the push transaction. */
static int push_once(PGconn *conn, const db_run *run, const char *copy, size_t copy_len, const db_push_opts *o,
                     int attempt, char *sqlstate) {
    const char *what = "db_push";
    char date[16], c[4][16];
    snprintf(date, sizeof date, "%d", (int)run->run_date);
    const int counts[4] = {run->n_products, run->n_repriced, run->n_held, run->n_rejected_rows};
    const char *vals[12] = {run->run_id, date, run->status ? run->status : "finished", run->config};
    for (int k = 0; k < 4; k++) {
        snprintf(c[k], sizeof c[k], "%d", counts[k]);
        vals[4 + k] = counts[k] < 0 ? NULL : c[k];
    }
    vals[8] = run->summary;
    char ex[3][40];
    if (run->has_explore) {
        snprintf(ex[0], sizeof ex[0], "%d", run->n_explored);
        snprintf(ex[1], sizeof ex[1], "%.17g", run->explore_cost);
        snprintf(ex[2], sizeof ex[2], "%.17g", run->explore_cost_share);
        vals[9] = ex[0];
        vals[10] = isfinite(run->explore_cost) ? ex[1] : NULL;
        vals[11] = isfinite(run->explore_cost_share) ? ex[2] : NULL;
    }
    int st = check(conn, PQexec(conn, "BEGIN"), PGRES_COMMAND_OK, what, sqlstate);
    if (!st) st = check(conn, PQexecParams(conn, Q_RUN_UPSERT, 12, NULL, vals, NULL, NULL, 0), PGRES_COMMAND_OK,
                        "db_push: pricing_runs row", sqlstate);
    if (!st && o->lock) st = db_runlock_check(conn, o->lock);
    if (!st && o->rejects) st = db_load_store_rejects(conn, run->run_id, o->rejects);
    if (!st && o->attempt > 0) {
        char a[16];
        snprintf(a, sizeof a, "%d", o->attempt);
        const char *av[2] = {run->run_id, a};
        st = check(conn,
                   PQexecParams(conn,
                                "UPDATE pricing_run_attempts SET status = 'finished', finished_at = now(),"
                                " message = NULL WHERE run_id = $1 AND attempt = $2::int",
                                2, NULL, av, NULL, NULL, 0),
                   PGRES_COMMAND_OK, "db_push: the run's attempt", sqlstate);
    }
    if (!st) st = check(conn,
                        PQexec(conn, "CREATE TEMP TABLE rlprice_push (product_id text, effective_day date,"
                                     " price numeric, incumbent_price numeric, agent text, reason text,"
                                     " expected_uplift numeric, ci_low numeric, ci_high numeric,"
                                     " propensity float8, support_prices numeric[], support_probs float8[],"
                                     " decided_price numeric) ON COMMIT DROP"),
                        PGRES_COMMAND_OK, what, sqlstate);
    if (!st) st = check(conn, PQexec(conn, "COPY pg_temp.rlprice_push FROM STDIN"), PGRES_COPY_IN, what, sqlstate);
    if (!st) st = db_copy_send(conn, copy, copy_len, "db_push: COPY recommendations");
    if (!st) st = check(conn,
                        PQexecParams(conn, "DELETE FROM price_recommendations WHERE run_id = $1", 1, NULL, vals,
                                     NULL, NULL, 0),
                        PGRES_COMMAND_OK, "db_push: replacing the run's rows", sqlstate);
    if (!st) st = check(conn,
                        PQexecParams(conn,
                                     "INSERT INTO price_recommendations (run_id, product_id, effective_day, price,"
                                     " incumbent_price, agent, reason, expected_uplift, ci_low, ci_high,"
                                     " propensity, support_prices, support_probs, decided_price)"
                                     " SELECT $1, product_id, effective_day, price, incumbent_price, agent, reason,"
                                     " expected_uplift, ci_low, ci_high, propensity, support_prices, support_probs,"
                                     " decided_price FROM pg_temp.rlprice_push",
                                     1, NULL, vals, NULL, NULL, 0),
                        PGRES_COMMAND_OK, "db_push: inserting recommendations", sqlstate);
    if (!st && o->before_commit && o->before_commit(o->ctx, attempt) != 0)
        st = eng_err_set(ENG_EINVAL, "db_push: aborted by the before-commit hook");
    if (!st) st = check(conn, PQexec(conn, "COMMIT"), PGRES_COMMAND_OK, "db_push: COMMIT", sqlstate);
    if (st) rollback(conn);
    return st;
}

int db_push(PGconn *conn, const db_run *run, const db_recommendation *recs, size_t n, const db_push_opts *opts) {
    db_push_opts dflt;
    if (!opts) { db_push_opts_default(&dflt); opts = &dflt; }
    if (opts->attempts_out) *opts->attempts_out = 0;
    if (!conn || !run || !run->run_id || (n && !recs) || opts->max_retries < 0)
        return eng_err_set(ENG_EINVAL, "db_push: bad arguments");
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return eng_err_set(ENG_EINVAL, "db_push: the connection is inside a transaction");
    char *copy = NULL;
    size_t copy_len = 0;
    int st = build_copy(recs, n, &copy, &copy_len);
    if (st) return st;
    double backoff = opts->backoff_s > 0 ? opts->backoff_s : 0.0;
    for (int attempt = 1;; attempt++) {
        char sqlstate[6] = "";
        if (opts->attempts_out) *opts->attempts_out = attempt;
        st = push_once(conn, run, copy, copy_len, opts, attempt, sqlstate);
        int retry = st == ENG_EDB && (!strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01"));
        if (!retry || attempt > opts->max_retries) break;
        ENG_WARN("db_push: run %s: %s (SQLSTATE %s); retrying in %.3f s (attempt %d of %d)", run->run_id,
                 eng_err_msg(), sqlstate, backoff, attempt + 1, opts->max_retries + 1);
        struct timespec ts = {(time_t)backoff, (long)((backoff - (double)(time_t)backoff) * 1e9)};
        nanosleep(&ts, NULL);
        backoff *= 2;
    }
    free(copy);
    return st;
}

int db_run_open(PGconn *conn, const char *run_id, int32_t run_date, const char *config) {
    if (!conn || !run_id) return eng_err_set(ENG_EINVAL, "db_run_open: bad arguments");
    char date[16], sqlstate[6];
    snprintf(date, sizeof date, "%d", (int)run_date);
    const char *vals[3] = {run_id, date, config};
    return check(conn,
                 PQexecParams(conn,
                              "INSERT INTO pricing_runs (run_id, run_date, status, config, started_at)"
                              " VALUES ($1, DATE '1970-01-01' + $2::int, 'running', $3, now())"
                              " ON CONFLICT (run_id) DO UPDATE SET run_date = EXCLUDED.run_date, status = 'running',"
                              "  config = EXCLUDED.config, started_at = now(), finished_at = NULL, n_products = NULL,"
                              "  n_repriced = NULL, n_held = NULL, n_rejected_rows = NULL, summary = NULL"
                              " WHERE pricing_runs.status <> 'finished'",
                              3, NULL, vals, NULL, NULL, 0),
                 PGRES_COMMAND_OK, "db_run_open", sqlstate);
}

/* UPDATE ... WHERE run_id = $1 expecting exactly one row. */
static int update_run(PGconn *conn, const char *sql, int nparams, const char *const *vals, const char *what) {
    PGresult *r = PQexecParams(conn, sql, nparams, NULL, vals, NULL, NULL, 0);
    int st = ENG_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char msg[1024];
        st = eng_err_set(ENG_EDB, "%s: %s", what, db_redact(msg, sizeof msg, PQerrorMessage(conn), NULL));
    } else if (strcmp(PQcmdTuples(r), "1") != 0) {
        st = eng_err_set(ENG_ENOTFOUND, "%s: no pricing run '%s'", what, vals[0]);
    }
    PQclear(r);
    return st;
}

int db_run_finish(PGconn *conn, const db_run *run) {
    if (!conn || !run || !run->run_id) return eng_err_set(ENG_EINVAL, "db_run_finish: bad arguments");
    char c[4][16];
    const int counts[4] = {run->n_products, run->n_repriced, run->n_held, run->n_rejected_rows};
    const char *vals[6] = {run->run_id};
    for (int k = 0; k < 4; k++) {
        snprintf(c[k], sizeof c[k], "%d", counts[k]);
        vals[1 + k] = counts[k] < 0 ? NULL : c[k];
    }
    vals[5] = run->summary;
    return update_run(conn,
                      "UPDATE pricing_runs SET status = 'finished', finished_at = now(), n_products = $2::int,"
                      " n_repriced = $3::int, n_held = $4::int, n_rejected_rows = $5::int, summary = $6"
                      " WHERE run_id = $1",
                      6, vals, "db_run_finish");
}

int db_run_fail(PGconn *conn, const char *run_id, const char *message) {
    return db_run_fail_attempt(conn, run_id, 0, message);
}
