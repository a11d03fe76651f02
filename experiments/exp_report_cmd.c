/* exp_report_cmd.c - `rlprice report`: load a history (database, HDF5 cache or the Dominick's
 * preset), run the comparison (exp_compare_run) and write the HTML + JSON report. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_conn.h"
#include "db_csvread.h"
#include "db_h5store.h"
#include "db_history.h"
#include "db_import.h"
#include "db_load.h"
#include "eng_backend.h"
#include "eng_util.h"
#include "exp_compare.h"
#include "exp_report.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rlprice report [--db CONNINFO | --cache FILE.h5 | --preset dominicks] [--config FILE]\n"
            "                      [--device auto|cpu|cuda] [--<setting> VALUE ...] --out DIR\n"
            "  Runs the comparison (see `rlprice compare`, docs/compare.md) and writes DIR/report.html\n"
            "  (self-contained page) and DIR/report.json (docs/report.md).  DIR is created when missing.\n"
            "  Without --db/--cache/--preset the history is loaded from PG* / the embedded cluster.\n"
            "  Setting flags are the keys of the configuration file, e.g. --seed 7 --compare.dqn_steps 200.\n");
}

/* Where the history comes from. */
typedef struct src {
    const char *db, *cache, *preset;
} src;

/* Load the history; *desc receives a malloc'd description for the report.  Returns an exit
 * code (0, 2 usage/config, 3 database, 1 other). */
static int load_history(const src *s, db_history **h, char **desc) {
    char buf[1200];
    int st;
    if (s->cache) {
        if ((st = db_history_load_h5(h, s->cache)) != ENG_OK) {
            fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
            return st == ENG_ENOTFOUND || st == ENG_EFORMAT ? 2 : 1;
        }
        snprintf(buf, sizeof buf, "HDF5 cache %s", s->cache);
    } else if (s->preset) {
        if (strcmp(s->preset, "dominicks") != 0) {
            fprintf(stderr, "rlprice report: unknown preset '%s' (known: dominicks)\n", s->preset);
            return 2;
        }
        db_dominicks_opts o = {0};
        db_csv_log log = {0};
        long filtered = 0;
        st = db_dominicks_read(h, &o, &log, &filtered);
        char sum[512] = "";
        db_csv_log_summary(&log, sum, sizeof sum);
        db_csv_log_free(&log);
        if (st != ENG_OK) {
            fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
            return 2;
        }
        snprintf(buf, sizeof buf, "Dominick's orange juice preset (%s)", sum);
    } else {
        PGconn *c = NULL;
        if (db_resolve(&c, s->db) != ENG_OK) {
            fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
            return 3;
        }
        db_load_opts o;
        db_load_opts_default(&o);
        db_load_report rep;
        st = db_load_history(c, &o, h, &rep);
        snprintf(buf, sizeof buf, "PostgreSQL %s", db_describe(c));
        db_load_report_free(&rep);
        db_disconnect(c);
        if (st != ENG_OK) {
            fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
            return st == ENG_EDB ? 3 : 1;
        }
    }
    *desc = malloc(strlen(buf) + 1);
    if (!*desc) {
        db_history_free(*h);
        *h = NULL;
        fprintf(stderr, "rlprice report: out of memory\n");
        return 1;
    }
    strcpy(*desc, buf);
    return 0;
}

int exp_cmd_report(int argc, char **argv) {
    src s = {0};
    const char *config = NULL, *out = NULL;
    char **flags = calloc((size_t)argc + 1, sizeof *flags);
    int nflags = 0, rc = 2;
    exp_compare_cfg cfg = exp_compare_default();
    db_history *h = NULL;
    exp_results *res = NULL;
    char *desc = NULL, *hp = NULL, *jp = NULL;
    if (!flags) {
        fprintf(stderr, "rlprice report: out of memory\n");
        rc = 1;
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--db")       ? &s.db
                           : !strcmp(a, "--cache")  ? &s.cache
                           : !strcmp(a, "--preset") ? &s.preset
                           : !strcmp(a, "--config") ? &config
                           : !strcmp(a, "--out")    ? &out
                                                    : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = 0;
            goto done;
        }
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "rlprice report: %s needs a value\n", a);
                usage(stderr);
                goto done;
            }
            *dst = argv[++i];
        } else if (!strncmp(a, "--", 2)) { /* a setting: --key=value or --key value */
            flags[nflags++] = argv[i];
            if (!strchr(a, '=') && i + 1 < argc) flags[nflags++] = argv[++i];
        } else {
            fprintf(stderr, "rlprice report: unexpected argument '%s'\n", a);
            usage(stderr);
            goto done;
        }
    }
    if (!out) {
        fprintf(stderr, "rlprice report: --out DIR is required\n");
        usage(stderr);
        goto done;
    }
    if (!!s.db + !!s.cache + !!s.preset > 1) {
        fprintf(stderr, "rlprice report: give at most one of --db, --cache, --preset\n");
        goto done;
    }
    if ((config && exp_compare_cfg_load_file(&cfg, config) != ENG_OK) ||
        exp_compare_cfg_parse_flags(&cfg, nflags, flags) != ENG_OK || exp_compare_cfg_check(&cfg) != ENG_OK) {
        fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
        goto done;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "rlprice report: cannot create %s: %s\n", out, strerror(errno));
        rc = 1;
        goto done;
    }
    const eng_backend *be = NULL;
    if (eng_backend_select(cfg.device, &be) != ENG_OK) {
        fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
        goto done;
    }
    double t0 = eng_now();
    if ((rc = load_history(&s, &h, &desc)) != 0) goto done;
    double t_load = eng_now() - t0;
    rc = 1;
    if (exp_compare_run(h, &cfg, be, NULL, NULL, &res) != ENG_OK) {
        fprintf(stderr, "rlprice report: comparison failed: %s\n", eng_err_msg());
        goto done;
    }
    free(res->data_source);
    res->data_source = desc;
    desc = NULL;
    res->seconds_load = t_load;
    double t1 = eng_now();
    if (exp_report_write(res, out, &hp, &jp) != ENG_OK) {
        fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
        goto done;
    }
    ENG_INFO("report: %d products written in %.2f s", res->n_products, eng_now() - t1);
    printf("report: %s\njson:   %s\nbest on immediate reward: %s; on long-term value: %s\n", hp, jp,
           exp_agent_name(res->winner_immediate), exp_agent_name(res->winner_longterm));
    rc = 0;
done:
    free(hp);
    free(jp);
    free(desc);
    exp_results_free(res);
    db_history_free(h);
    exp_compare_cfg_free(&cfg);
    free(flags);
    return rc;
}
