/* exp_report_cmd.c - `rlprice report`: load a history (database, HDF5 cache or the Dominick's
 * preset), run the comparison (exp_compare_run) and write the HTML + JSON report. */
#include "rlp_cmd.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_history.h"
#include "eng_backend.h"
#include "eng_util.h"
#include "exp_compare.h"
#include "db_history_src.h"
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

int exp_cmd_report(int argc, char **argv) {
    db_history_src s = {NULL, NULL, NULL, NULL, 0};
    const char *config = NULL, *out = NULL;
    char **flags = calloc((size_t)argc + 1, sizeof *flags);
    int nflags = 0, rc = 2;
    exp_compare_cfg cfg = exp_compare_default();
    db_history *h = NULL;
    exp_results *res = NULL;
    char desc[1200] = "", *hp = NULL, *jp = NULL;
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
    if ((rc = db_history_src_load(&s, &h, desc, sizeof desc)) != 0) {
        fprintf(stderr, "rlprice report: %s\n", eng_err_msg());
        goto done;
    }
    double t_load = eng_now() - t0;
    rc = 1;
    if (exp_compare_run(h, &cfg, be, NULL, NULL, &res) != ENG_OK) {
        fprintf(stderr, "rlprice report: comparison failed: %s\n", eng_err_msg());
        goto done;
    }
    free(res->data_source);
    if (!(res->data_source = strdup(desc))) {
        fprintf(stderr, "rlprice report: out of memory\n");
        goto done;
    }
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
    exp_results_free(res);
    db_history_free(h);
    exp_compare_cfg_free(&cfg);
    free(flags);
    return rc;
}
