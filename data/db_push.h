/* db_push.h - write a pricing run back to PostgreSQL.
 *
 * db_push writes the pricing_runs row and ALL of the run's recommendations in ONE transaction:
 * upsert the run row, COPY the recommendations into a temporary table, delete the run's old
 * recommendations, insert the new ones.  So a run is all-or-nothing (a process killed before
 * COMMIT leaves nothing of it), and re-pushing the same run_id replaces its rows (never
 * duplicates).  Serialization failures (SQLSTATE 40001) and deadlocks (40P01) retry the whole
 * transaction with exponential backoff; other errors are returned with the server's message.
 * Every value travels as a parameter or COPY data, never pasted into SQL.
 */
#ifndef DB_PUSH_H
#define DB_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

typedef struct db_recommendation {
    const char *product_id;   /* required */
    int32_t effective_day;    /* days since 1970-01-01 */
    double price;             /* required, finite, > 0 */
    double incumbent_price;   /* NaN -> NULL */
    const char *agent;        /* required ("dqn", "ddpg", "linucb", "incumbent", ...) */
    const char *reason;       /* reason codes, NULL -> NULL */
    double expected_uplift;   /* NaN -> NULL */
    double ci_low, ci_high;   /* NaN -> NULL */
    int price_scale;          /* price and incumbent_price are written with at least this many
                                 decimals (the database's scale, e.g. 2 keeps 1.10); 0 = shortest */
    /* The distribution the price was drawn from (logged exploration, docs/nightly.md): n_support
     * prices support_price[] (distinct, each > 0) with probabilities support_prob[] (each in
     * (0, 1], summing to 1 within 1e-9), the pushed price among them (equal to the cent) with
     * probability `propensity`.  n_support 0 = deterministic: written as propensity 1, support
     * {price}, probabilities {1}.  Arrays borrowed (not copied past db_push). */
    int n_support;
    const double *support_price;
    const double *support_prob;
    double propensity;
    double decided_price;     /* the decision's price before exploration; NaN or <= 0 -> price */
} db_recommendation;

/* A price as the exact decimal text a pricing team would type: the shortest form that reads back
 * as the same double (%.15g; prices hold at most 15 significant digits, see DB_PRICE_MAX), padded
 * with zeros to `scale` decimals (0.9574 -> "0.9574", 1.1 at scale 2 -> "1.10", 1e12 ->
 * "1000000000000").  Writes into buf (n >= 40); NaN or infinite -> "".  Returns buf. */
char *db_price_format(char *buf, size_t n, double v, int scale);

typedef struct db_run {
    const char *run_id;       /* required */
    int32_t run_date;         /* days since 1970-01-01 */
    const char *status;       /* running|finished|failed|dry_run; NULL -> "finished" */
    const char *config;       /* NULL ok (JSON text of the run's configuration) */
    int n_products, n_repriced, n_held, n_rejected_rows; /* < 0 -> NULL */
    const char *summary;      /* NULL ok */
    /* Logged exploration of the run (pricing_runs.n_explored, explore_cost, explore_cost_share):
     * written when has_explore is 1, else NULL. */
    int has_explore;
    int n_explored;
    double explore_cost, explore_cost_share; /* NaN -> NULL */
} db_run;

typedef struct db_push_opts {
    int max_retries;          /* retries after 40001/40P01; default 5 */
    double backoff_s;         /* first backoff; doubles each retry; default 0.05 */
    /* Test hook: called inside the transaction right before COMMIT (attempt = 1, 2, ...).
     * Non-zero return aborts the push (ROLLBACK, ENG_EINVAL). */
    int (*before_commit)(void *ctx, int attempt);
    void *ctx;
    int *attempts_out;        /* if non-NULL: transactions tried */
    /* The nightly's extras, all inside the same transaction (NULL / 0 = not used): */
    const struct db_runlock *lock; /* the run lock must still be held (db_runlock_check) */
    int attempt;              /* > 0: pricing_run_attempts row (run_id, attempt) -> 'finished' */
    const struct db_load_report *rejects; /* the load's rejected rows replace the run's
                                           * rejected_rows (so a failed re-run leaves the earlier
                                           * finished run's rows as they were) */
} db_push_opts;

void db_push_opts_default(db_push_opts *o);

/* Push run + recommendations atomically (see above).  opts may be NULL (defaults).
 * Returns 0, ENG_EINVAL (bad record, named by index), ENG_ENOMEM or ENG_EDB. */
int db_push(PGconn *conn, const db_run *run, const db_recommendation *recs, size_t n, const db_push_opts *opts);

/* Run bookkeeping (each its own statement, autocommit):
 * db_run_open: insert the run row with status 'running' (started_at = now()), or reset a row
 *   that is not 'finished'; a finished row (an earlier attempt's) is left exactly as it is until
 *   this attempt's db_push commits.
 * db_run_finish: status 'finished', finished_at = now(), counters and summary from *run.
 * db_run_fail: status 'failed', finished_at = now(), summary = message, unless the row is
 *   'finished' (then left alone: see db_run_fail_attempt in db_runlock.h).
 * Return 0, ENG_EINVAL, ENG_ENOTFOUND (finish/fail of an unknown run) or ENG_EDB. */
int db_run_open(PGconn *conn, const char *run_id, int32_t run_date, const char *config);
int db_run_finish(PGconn *conn, const db_run *run);
int db_run_fail(PGconn *conn, const char *run_id, const char *message);

#endif
