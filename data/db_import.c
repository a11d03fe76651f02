/* db_import.c - generic CSV import (see db_import.h and docs/import.md). */
#include "db_import.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "db_copybuf.h"
#include "db_history.h"
#include "eng_parse.h"
#include "eng_util.h"

/* ---- target tables ---- */
typedef struct {
    const char *name;
    char type;  /* 't' text, 'n' numeric, 'd' date, 'b' boolean */
    int key;    /* part of the primary key (required) */
} imp_col;

typedef struct {
    const char *table;
    const imp_col *cols;
    int ncols;
} imp_table;

static const imp_col products_cols[] = {
    {"product_id", 't', 1}, {"name", 't', 0},      {"base_price", 'n', 0},     {"unit_cost", 'n', 0},
    {"min_price", 'n', 0},  {"max_price", 'n', 0}, {"max_change_pct", 'n', 0}, {"category", 't', 0},
};
static const imp_col sales_cols[] = {
    {"product_id", 't', 1}, {"day", 'd', 1},     {"price", 'n', 0}, {"units", 'n', 0},
    {"revenue", 'n', 0},    {"traffic", 'n', 0}, {"promo", 'b', 0},
};
static const imp_col comp_cols[] = {
    {"product_id", 't', 1}, {"day", 'd', 1}, {"competitor", 't', 1}, {"price", 'n', 0},
};
static const imp_table imp_tables[] = {
    {"products", products_cols, 8}, {"sales", sales_cols, 7}, {"competitor_prices", comp_cols, 4}};

#define IMP_MAXCOLS 8

enum { SRC_NONE = 0, SRC_COLUMN, SRC_CONST };

typedef struct {
    const imp_table *tab;
    const db_import_opts *o;
    const char *fmt;
    int kind[IMP_MAXCOLS];
    int index[IMP_MAXCOLS];        /* source column (0-based) */
    char *src_name[IMP_MAXCOLS];   /* as written in --map (owned) */
    char *constant[IMP_MAXCOLS];   /* owned */
    db_copybuf *cb;
    db_csv_log *log;
} imp_ctx;

void db_import_report_free(db_import_report *r) {
    if (r) db_csv_log_free(&r->log);
}

static int col_index(const imp_table *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0) return i;
    return -1;
}

/* Parse "target=src,target:=const" into the ctx (names resolved later). */
static int imp_parse_map(imp_ctx *x, const char *map) {
    if (!map || !*map) return ENG_OK;
    char *copy = strdup(map);
    if (!copy) return eng_err_set(ENG_ENOMEM, "--map: out of memory");
    int st = ENG_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) { st = eng_err_set(ENG_EINVAL, "--map: '%s' is not target=source", item); goto cleanup; }
        int is_const = eq > item && eq[-1] == ':';
        *eq = '\0';
        if (is_const) eq[-1] = '\0';
        char *target = eng_trim(item), *src = is_const ? eq + 1 : eng_trim(eq + 1);
        int i = col_index(x->tab, target);
        if (i < 0) {
            char cols[256] = "";
            for (int k = 0; k < x->tab->ncols; k++)
                snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s%s", k ? ", " : "", x->tab->cols[k].name);
            st = eng_err_set(ENG_EINVAL, "--map: table %s has no column '%s' (columns: %s)", x->tab->table, target, cols);
            goto cleanup;
        }
        if (x->kind[i] != SRC_NONE) { st = eng_err_set(ENG_EINVAL, "--map: '%s' is mapped twice", target); goto cleanup; }
        if (!is_const && !*src) { st = eng_err_set(ENG_EINVAL, "--map: '%s=' names no CSV column", target); goto cleanup; }
        x->kind[i] = is_const ? SRC_CONST : SRC_COLUMN;
        char **slot = is_const ? &x->constant[i] : &x->src_name[i];
        *slot = strdup(src);
        if (!*slot) { st = eng_err_set(ENG_ENOMEM, "--map: out of memory"); goto cleanup; }
    }
cleanup:
    free(copy);
    return st;
}

/* First record: resolve the mapped (and same-named) columns. */
static int imp_first(void *ctx, int nf, char **f, int has_header) {
    imp_ctx *x = ctx;
    const char *path = x->log->path;
    for (int i = 0; i < x->tab->ncols; i++) {
        if (x->kind[i] == SRC_COLUMN) {
            const char *s = x->src_name[i];
            int k = -1;
            if (s[0] == '#') {
                char *end;
                long v = strtol(s + 1, &end, 10);
                if (*end || v < 1 || v > nf)
                    return eng_err_set(ENG_EINVAL, "--map %s=%s: the file has columns #1..#%d", x->tab->cols[i].name, s, nf);
                k = (int)v - 1;
            } else if (!has_header) {
                return eng_err_set(ENG_EINVAL, "--map %s=%s: with --no-header, name columns as #N", x->tab->cols[i].name, s);
            } else {
                for (int j = 0; j < nf && k < 0; j++)
                    if (strcmp(eng_trim(f[j]), s) == 0) k = j;
                for (int j = 0; j < nf && k < 0; j++)
                    if (strcasecmp(f[j], s) == 0) k = j;
                if (k < 0) {
                    char cols[512] = "";
                    for (int j = 0; j < nf && strlen(cols) < 400; j++)
                        snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s%s", j ? ", " : "", f[j]);
                    return eng_err_set(ENG_EINVAL, "--map %s=%s: '%s' has no column '%s' (header: %s)",
                                       x->tab->cols[i].name, s, path, s, cols);
                }
            }
            x->index[i] = k;
        } else if (x->kind[i] == SRC_NONE && has_header) { /* same name in the header */
            for (int j = 0; j < nf; j++)
                if (strcasecmp(eng_trim(f[j]), x->tab->cols[i].name) == 0) {
                    x->kind[i] = SRC_COLUMN;
                    x->index[i] = j;
                    break;
                }
        }
    }
    for (int i = 0; i < x->tab->ncols; i++)
        if (x->tab->cols[i].key && x->kind[i] == SRC_NONE)
            return eng_err_set(ENG_EINVAL, "%s: no column for %s.%s (add --map %s=CSVCOLUMN)", path, x->tab->table,
                               x->tab->cols[i].name, x->tab->cols[i].name);
    return ENG_OK;
}

static int is_null_word(const char *s) {
    return !*s || !strcasecmp(s, "NA") || !strcasecmp(s, "NULL") || !strcasecmp(s, "N/A");
}

/* A plain decimal number PostgreSQL's numeric accepts: [+-]digits[.digits][e[+-]digits]. */
static int is_decimal(const char *s) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) p++, digits++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) p++, digits++;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return 0;
        int e = 0;
        while (isdigit((unsigned char)*p)) p++, e++;
        if (e > 3) return 0;
    }
    return *p == '\0';
}

static int is_utf8(const unsigned char *s) {
    while (*s) {
        int n = *s < 0x80 ? 0 : (*s >> 5) == 6 ? 1 : (*s >> 4) == 14 ? 2 : (*s >> 3) == 30 ? 3 : -1;
        if (n < 0) return 0;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xC0) != 0x80) return 0;
    }
    return 1;
}

/* Parse a date with fmt into YYYY-MM-DD; 0 or -1. */
static int parse_date(const char *s, const char *fmt, char out[11]) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, fmt, &tm);
    if (!end) return -1;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    if (tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) return -1;
    struct tm chk = tm;
    time_t t = timegm(&chk);
    if (chk.tm_mday != tm.tm_mday || chk.tm_mon != tm.tm_mon || chk.tm_year != tm.tm_year) return -1; /* 2023-02-30 */
    long long days = (long long)t / 86400 - ((long long)t % 86400 < 0);
    db_copybuf_fmt_date(out, (int32_t)days);
    return 0;
}

static int parse_bool(const char *s) {
    static const char *yes[] = {"1", "t", "true", "y", "yes"}, *no[] = {"0", "f", "false", "n", "no"};
    for (int i = 0; i < 5; i++) {
        if (!strcasecmp(s, yes[i])) return 1;
        if (!strcasecmp(s, no[i])) return 0;
    }
    return -1;
}

static int imp_row(void *ctx, long line, int nf, char **f) {
    (void)nf;
    imp_ctx *x = ctx;
    const char *val[IMP_MAXCOLS];
    char dates[IMP_MAXCOLS][11];
    int bools[IMP_MAXCOLS];
    for (int i = 0; i < x->tab->ncols; i++) {
        const imp_col *col = &x->tab->cols[i];
        val[i] = NULL;
        if (x->kind[i] == SRC_NONE) continue;
        char *raw = x->kind[i] == SRC_CONST ? x->constant[i] : eng_trim(f[x->index[i]]);
        const char *src = x->kind[i] == SRC_CONST ? "constant" : x->src_name[i] ? x->src_name[i] : col->name;
        if (col->type != 't' && is_null_word(raw)) raw = NULL;
        if (col->type == 't' && !*raw && col->key) raw = NULL;
        if (!raw) {
            if (col->key) {
                db_csv_log_bad(x->log, line, "%s (from %s) is empty", col->name, src);
                return 1;
            }
            continue;
        }
        switch (col->type) {
        case 'n':
            if (!is_decimal(raw)) {
                db_csv_log_bad(x->log, line, "%s (from %s): '%.40s' is not a number", col->name, src, raw);
                return 1;
            }
            if ((strstr(col->name, "price") || !strcmp(col->name, "unit_cost")) && !(fabs(strtod(raw, NULL)) <= DB_PRICE_MAX)) {
                db_csv_log_bad(x->log, line, "%s (from %s): %.40s is above %.0f, the largest price rlprice carries exactly",
                               col->name, src, raw, DB_PRICE_MAX);
                return 1;
            }
            val[i] = raw;
            break;
        case 'd':
            if (parse_date(raw, x->fmt, dates[i]) != 0) {
                db_csv_log_bad(x->log, line, "%s (from %s): '%.40s' is not a date in the format '%s'", col->name, src,
                               raw, x->fmt);
                return 1;
            }
            val[i] = dates[i];
            break;
        case 'b':
            bools[i] = parse_bool(raw);
            if (bools[i] < 0) {
                db_csv_log_bad(x->log, line, "%s (from %s): '%.40s' is not a boolean (1/0, true/false, yes/no)",
                               col->name, src, raw);
                return 1;
            }
            val[i] = bools[i] ? "t" : "f";
            break;
        default:
            if (!is_utf8((const unsigned char *)raw)) {
                db_csv_log_bad(x->log, line, "%s (from %s) is not valid UTF-8", col->name, src);
                return 1;
            }
            val[i] = raw;
        }
    }
    db_copybuf_long(x->cb, line);
    for (int i = 0; i < x->tab->ncols; i++) db_copybuf_text(x->cb, val[i]);
    return db_copybuf_eol(x->cb) ? x->cb->status : 0;
}

/* Log each (line, product_id) row of `sql` as a bad record with `why`, then run `del`. */
static int imp_reject(PGconn *c, db_csv_log *log, const char *sql, const char *del, const char *why) {
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int st = eng_err_set(ENG_EDB, "import: checking products: %s", PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        db_csv_log_bad(log, atol(PQgetvalue(res, i, 0)), "product '%.80s' %s", PQgetvalue(res, i, 1), why);
    PQclear(res);
    return n ? db_copybuf_exec(c, del, "import: dropping rejected rows") : ENG_OK;
}

static long imp_count(PGconn *c, const char *sql, int *st) {
    PGresult *res = PQexec(c, sql);
    long v = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) *st = eng_err_set(ENG_EDB, "import: %s", PQresultErrorMessage(res));
    else v = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* Server side: checks on products, then the upsert. */
static int imp_apply(PGconn *c, imp_ctx *x, db_import_report *r) {
    const imp_table *t = x->tab;
    int st = ENG_OK;
    const char *sales = "sales", *prods = "products";
    const char *missing = " NOT EXISTS (SELECT 1 FROM products p WHERE p.product_id = s.product_id)";
    char sql[4096], del[1024];
    if (!strcmp(t->table, prods)) {
        snprintf(sql, sizeof sql, "SELECT line, product_id FROM rlp_imp s WHERE base_price IS NULL AND%s ORDER BY line", missing);
        snprintf(del, sizeof del, "DELETE FROM rlp_imp s WHERE base_price IS NULL AND%s", missing);
        st = imp_reject(c, &r->log, sql, del, "is new and has no base_price");
    } else if (!strcmp(t->table, sales)) {
        if (x->o->create_products) {
            snprintf(sql, sizeof sql,
                     "WITH n AS (INSERT INTO products (product_id, base_price) SELECT product_id,"
                     " (percentile_cont(0.5) WITHIN GROUP (ORDER BY price::float8))::numeric FROM rlp_imp s WHERE%s"
                     " GROUP BY product_id HAVING count(price) > 0 RETURNING 1) SELECT count(*) FROM n", missing);
            r->products_created = imp_count(c, sql, &st);
            if (st) return st;
        }
        snprintf(sql, sizeof sql, "SELECT line, product_id FROM rlp_imp s WHERE%s ORDER BY line", missing);
        snprintf(del, sizeof del, "DELETE FROM rlp_imp s WHERE%s", missing);
        st = imp_reject(c, &r->log, sql, del,
                        x->o->create_products ? "is unknown and has no price to create it from"
                                              : "is not in products (import products first, or pass --create-products)");
    } else {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM rlp_imp s WHERE%s", missing);
        r->unknown_products = imp_count(c, sql, &st);
        if (!st && r->unknown_products)
            ENG_WARN("import: %ld competitor_prices rows name products that are not in products (kept)", r->unknown_products);
    }
    if (st) return st;

    /* key list, insert column list, select list, update list */
    char keys[128] = "", cols[512] = "", sel[512] = "", upd[1536] = "", old_v[256] = "", new_v[256] = "";
    int derive_revenue = !strcmp(t->table, sales) && x->kind[col_index(t, "revenue")] == SRC_NONE &&
                         x->kind[col_index(t, "price")] != SRC_NONE && x->kind[col_index(t, "units")] != SRC_NONE;
    for (int i = 0; i < t->ncols; i++) {
        const char *n = t->cols[i].name;
        int rev = derive_revenue && !strcmp(n, "revenue");
        /* products.base_price is NOT NULL, checked before ON CONFLICT: an update that does not
           carry it takes the existing value (new products without one were rejected above) */
        int keep_bp = !strcmp(t->table, prods) && !strcmp(n, "base_price");
        if (x->kind[i] == SRC_NONE && !rev && !keep_bp) continue;
        snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s%s", *cols ? ", " : "", n);
        snprintf(sel + strlen(sel), sizeof sel - strlen(sel), "%s%s", *sel ? ", " : "",
                 rev ? "price * units"
                 : keep_bp ? "COALESCE(s.base_price, (SELECT p.base_price FROM products p WHERE p.product_id = s.product_id))"
                           : n);
        if (x->kind[i] == SRC_NONE && keep_bp) continue;
        if (t->cols[i].key)
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", *keys ? ", " : "", n);
        else {
            snprintf(upd + strlen(upd), sizeof upd - strlen(upd), "%s%s = EXCLUDED.%s", *upd ? ", " : "", n, n);
            snprintf(old_v + strlen(old_v), sizeof old_v - strlen(old_v), "%st.%s", *old_v ? ", " : "", n);
            snprintf(new_v + strlen(new_v), sizeof new_v - strlen(new_v), "%sEXCLUDED.%s", *new_v ? ", " : "", n);
        }
    }
    if (*upd) /* rows that already hold these values are left alone */
        snprintf(upd + strlen(upd), sizeof upd - strlen(upd), " WHERE (%s) IS DISTINCT FROM (%s)", old_v, new_v);
    snprintf(sql, sizeof sql, "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT %s FROM rlp_imp) d) FROM rlp_imp", keys);
    r->duplicates = imp_count(c, sql, &st);
    if (st) return st;
    if (r->duplicates) ENG_WARN("import: %ld rows repeat the key of a later row; the last one wins", r->duplicates);
    snprintf(sql, sizeof sql,
             "WITH u AS (INSERT INTO %s AS t (%s) SELECT %s FROM (SELECT DISTINCT ON (%s) * FROM rlp_imp"
             " ORDER BY %s, line DESC) s ON CONFLICT (%s) DO %s%s RETURNING (xmax = 0) AS ins)"
             " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM u",
             t->table, cols, sel, keys, keys, keys, *upd ? "UPDATE SET " : "NOTHING", upd);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        st = eng_err_set(ENG_EDB, "import: writing %s: %s", t->table, PQresultErrorMessage(res));
    } else {
        r->inserted = atol(PQgetvalue(res, 0, 0));
        r->updated = atol(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return st;
}

int db_import_csv(PGconn *c, const char *path, const db_import_opts *o, db_import_report *r) {
    memset(r, 0, sizeof *r);
    double t0 = eng_now();
    imp_ctx x;
    memset(&x, 0, sizeof x);
    db_copybuf cb;
    memset(&cb, 0, sizeof cb);
    int st = ENG_OK, in_tx = 0, in_copy = 0;
    for (size_t i = 0; i < sizeof imp_tables / sizeof *imp_tables; i++)
        if (o->table && !strcmp(o->table, imp_tables[i].table)) x.tab = &imp_tables[i];
    if (!x.tab)
        return eng_err_set(ENG_EINVAL, "import: --table must be products, sales or competitor_prices (got '%s')",
                           o->table ? o->table : "");
    if (!o->dry_run && !c) return eng_err_set(ENG_EINVAL, "import: no database connection");
    x.o = o;
    x.fmt = o->date_format && *o->date_format ? o->date_format : "%Y-%m-%d";
    x.cb = &cb;
    x.log = &r->log;
    st = imp_parse_map(&x, o->map);
    if (st) goto cleanup;

    /* a dry run with a connection does everything a real import does, then rolls back, so it
     * reports exactly the rows a real import would skip (also the server-side checks) */
    PGconn *conn = c;
    if (conn) {
        st = db_copybuf_exec(conn, "BEGIN", "import: BEGIN");
        if (st) goto cleanup;
        in_tx = 1;
        char sql[1024];
        int k = snprintf(sql, sizeof sql, "CREATE TEMP TABLE rlp_imp (line bigint");
        for (int i = 0; i < x.tab->ncols; i++) {
            char ty = x.tab->cols[i].type;
            k += snprintf(sql + k, sizeof sql - (size_t)k, ", %s %s", x.tab->cols[i].name,
                          ty == 'n' ? "numeric" : ty == 'd' ? "date" : ty == 'b' ? "boolean" : "text");
        }
        snprintf(sql + k, sizeof sql - (size_t)k, ") ON COMMIT DROP");
        st = db_copybuf_exec(conn, sql, "import: creating the staging table");
        if (st) goto cleanup;
    }
    st = db_copybuf_begin(&cb, conn, "COPY rlp_imp FROM STDIN");
    if (st) goto cleanup;
    in_copy = 1;
    db_csv_opts copts = {o->delim ? o->delim : ',', o->no_header};
    st = db_csv_read(path, &copts, imp_first, imp_row, &x, &r->log);
    in_copy = 0;
    if (st) {
        db_copybuf_abort(&cb);
        goto cleanup;
    }
    st = db_copybuf_end(&cb, "import: COPY");
    if (st) goto cleanup;
    if (conn) {
        st = imp_apply(conn, &x, r);
        if (st) goto cleanup;
    }
    if (o->strict && r->log.bad) {
        st = eng_err_set(ENG_EFORMAT, "import: %ld of %ld records of '%s' are bad and --strict is set; nothing written",
                         r->log.bad, r->log.records, path);
        goto cleanup;
    }
    if (conn && !o->dry_run) {
        st = db_copybuf_exec(conn, "COMMIT", "import: COMMIT");
        in_tx = 0;
    }
cleanup:
    if (in_copy) db_copybuf_abort(&cb);
    if (in_tx) {
        PGresult *res = PQexec(c, "ROLLBACK");
        PQclear(res);
    }
    for (int i = 0; i < IMP_MAXCOLS; i++) {
        free(x.src_name[i]);
        free(x.constant[i]);
    }
    r->seconds = eng_now() - t0;
    return st;
}
