/* db_import_cmd.c - the `rlprice import` and `rlprice cache` commands (argument parsing and
 * printing only; the work is in db_import.c, db_dominicks.c, db_h5store.c, db_load.c). */
#include "rlp_cmd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_conn.h"
#include "db_h5store.h"
#include "db_import.h"
#include "db_load.h"
#include "eng_util.h"

static int exit_code(int st) {
    return st == ENG_EDB ? 3 : st == ENG_EINVAL ? 2 : 1;
}

static void print_issues(const db_import_report *r) {
    const db_csv_log *l = &r->log;
    if (!l->bad) return;
    if (l->n_issues > DB_CSV_PRINT_ISSUES || l->quiet) {
        long shown = l->quiet ? 0 : DB_CSV_PRINT_ISSUES;
        printf("skipped records (line: reason), %ld more after the %ld warnings above:\n", l->bad - shown, shown);
        for (long i = shown; i < l->n_issues && i < shown + 100; i++)
            printf("  line %ld: %s\n", l->issues[i].line, l->issues[i].reason);
        if (l->bad > shown + 100) printf("  ... %ld more\n", l->bad - shown - 100);
    }
}

static void import_usage(FILE *f) {
    fprintf(f,
            "usage: rlprice import --csv FILE --table products|sales|competitor_prices [--map TARGET=CSVCOL,...]\n"
            "                      [--db CONNINFO] [--date-format FMT] [--delimiter C|tab] [--no-header]\n"
            "                      [--create-products] [--strict] [--dry-run]\n"
            "       rlprice import --preset dominicks [--dir DIR|FILE] [--stores 2,5,8-12] [--weeks A-B]\n"
            "                      [--db CONNINFO] [--dry-run]\n"
            "--map sources: a header name, #N (1-based column), or TARGET:=CONSTANT; unmapped targets take\n"
            "the header column of the same name.  See docs/import.md.\n");
}

int db_cmd_import(int argc, char **argv) {
    db_import_opts o;
    memset(&o, 0, sizeof o);
    db_dominicks_opts d;
    memset(&d, 0, sizeof d);
    const char *csv = NULL, *preset = NULL, *db = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "--csv") && v) csv = v;
        else if (!strcmp(a, "--table") && v) o.table = v;
        else if (!strcmp(a, "--map") && v) o.map = v;
        else if (!strcmp(a, "--db") && v) db = v;
        else if (!strcmp(a, "--date-format") && v) o.date_format = v;
        else if (!strcmp(a, "--delimiter") && v) o.delim = !strcmp(v, "tab") ? '\t' : v[0];
        else if (!strcmp(a, "--preset") && v) preset = v;
        else if (!strcmp(a, "--dir") && v) d.dir = v;
        else if (!strcmp(a, "--stores") && v) d.stores = v;
        else if (!strcmp(a, "--weeks") && v) {
            if (sscanf(v, "%d-%d", &d.week_lo, &d.week_hi) != 2 || d.week_lo < 1 || d.week_hi < d.week_lo) {
                fprintf(stderr, "rlprice import: --weeks '%s': expected FIRST-LAST, e.g. 40-160\n", v);
                return 2;
            }
        } else {
            takes = 0;
            if (!strcmp(a, "--no-header")) o.no_header = 1;
            else if (!strcmp(a, "--create-products")) o.create_products = 1;
            else if (!strcmp(a, "--strict")) o.strict = 1;
            else if (!strcmp(a, "--dry-run")) o.dry_run = 1;
            else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { import_usage(stdout); return 0; }
            else {
                fprintf(stderr, "rlprice import: unknown or incomplete option '%s'\n", a);
                import_usage(stderr);
                return 2;
            }
        }
        i += takes;
    }
    if (preset && strcmp(preset, "dominicks") != 0) {
        fprintf(stderr, "rlprice import: unknown preset '%s' (known: dominicks)\n", preset);
        return 2;
    }
    if (!preset && (!csv || !o.table)) {
        fprintf(stderr, "rlprice import: give --csv FILE and --table, or --preset dominicks\n");
        import_usage(stderr);
        return 2;
    }
    PGconn *c = NULL;
    /* a dry run uses the database when one is named (--db or PG* variables), so that it skips
     * exactly what a real import would (it rolls back); it never starts the embedded cluster */
    int named_db = (db && *db) || getenv("PGHOST") || getenv("PGDATABASE") || getenv("PGSERVICE") || getenv("PGPORT");
    if ((!o.dry_run || (named_db && !preset)) && db_resolve(&c, db) != 0) {
        fprintf(stderr, "rlprice import: %s\n", eng_err_msg());
        return 3;
    }
    if (o.dry_run && !c && !preset)
        fprintf(stderr, "rlprice import: dry run without a database (give --db or PG* variables): the file's own "
                        "checks only; rows the database would refuse (a new product without base_price, a sale of an "
                        "unknown product) are not counted\n");
    db_import_report r;
    int st = preset ? db_import_dominicks(c, &d, o.dry_run, &r) : db_import_csv(c, csv, &o, &r);
    if (c) db_disconnect(c);
    print_issues(&r);
    if (st) {
        fprintf(stderr, "rlprice import: %s\n", eng_err_msg());
        db_import_report_free(&r);
        return exit_code(st);
    }
    const db_csv_log *l = &r.log;
    printf("import: %s: %ld records, %ld skipped%s\n", l->path, l->records, l->bad,
           o.dry_run ? " (dry run: nothing written)" : "");
    if (preset)
        printf("import: dominicks: %ld rows outside --stores/--weeks; sales %ld inserted, %ld updated; "
               "%ld new products; %ld competitor prices\n",
               r.filtered, r.inserted, r.updated, r.products_created, r.comp_rows);
    else
        printf("import: %s: %ld inserted, %ld updated, %ld replaced by a later duplicate, %ld products created\n",
               o.table, r.inserted, r.updated, r.duplicates, r.products_created);
    printf("import: %.2f s\n", r.seconds);
    db_import_report_free(&r);
    return 0;
}

int db_cmd_cache_info(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: rlprice cache info FILE\n");
        return 2;
    }
    db_h5_info in;
    int st = db_h5store_info(argv[1], &in);
    if (st) {
        fprintf(stderr, "rlprice cache info: %s\n", eng_err_msg());
        return exit_code(st);
    }
    char day0[16];
    db_day_format(in.day0, day0);
    printf("file: %s\nformat_version: %d\nsource: %s\nproducts: %d\nperiods: %d (every %d days from %s)\n"
           "competitors: %d\ncompetitor prices: %lld\n",
           argv[1], in.format_version, in.source, in.n_products, in.n_periods, in.period_days, day0,
           in.n_competitors, (long long)in.n_comp_prices);
    return 0;
}

int db_cmd_cache_save(int argc, char **argv) {
    const char *out = NULL, *db = NULL;
    db_load_opts lo;
    db_load_opts_default(&lo);
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--out") && v) out = v;
        else if (!strcmp(argv[i], "--db") && v) db = v;
        else if (!strcmp(argv[i], "--from") && v) lo.from = v;
        else if (!strcmp(argv[i], "--to") && v) lo.to = v;
        else {
            fprintf(stderr, "usage: rlprice cache save --out FILE [--db CONNINFO] [--from DAY] [--to DAY]\n");
            return 2;
        }
        i++;
    }
    if (!out) {
        fprintf(stderr, "usage: rlprice cache save --out FILE [--db CONNINFO] [--from DAY] [--to DAY]\n");
        return 2;
    }
    PGconn *c = NULL;
    if (db_resolve(&c, db) != 0) {
        fprintf(stderr, "rlprice cache save: %s\n", eng_err_msg());
        return 3;
    }
    char source[512];
    snprintf(source, sizeof source, "postgresql %s", db_describe(c));
    db_history *h = NULL;
    db_load_report rep;
    int st = db_load_history(c, &lo, &h, &rep);
    db_disconnect(c);
    if (!st) {
        db_load_report_print(stderr, &rep);
        st = db_history_save_h5_source(h, out, source);
    }
    db_load_report_free(&rep);
    if (st) {
        fprintf(stderr, "rlprice cache save: %s\n", eng_err_msg());
        db_history_free(h);
        return exit_code(st);
    }
    printf("cache: %s: %d products x %d periods, %zu bytes in memory\n", out, h->n_products, h->n_periods,
           db_history_bytes(h));
    db_history_free(h);
    return 0;
}
