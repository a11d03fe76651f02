/* env_behaviour_cmd.c - `rlprice behaviour eval` (see rlp_cmd.h): behaviour models against the
 * simulator's true propensities (env_behaviour_sim_compare). */
#include "rlp_cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_parse.h"
#include "eng_util.h"
#include "env_behaviour.h"

static int parse_dbl(const char *s, double *v) {
    double x;
    if (eng_parse_double(s, &x) || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

int env_behaviour_cmd_eval(int argc, char **argv) {
    long products = 200, days = 60, seed = 1, split = -1;
    env_behaviour_cfg cfg[2];
    cfg[0] = env_behaviour_default();
    cfg[0].kind = ENV_BEHAV_COUNTS;
    cfg[1] = env_behaviour_default();
    cfg[1].kind = ENV_BEHAV_MNL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = !v;
        if (!strcmp(a, "--products")) bad = bad || eng_parse_long(v, 1, 10000000, &products);
        else if (!strcmp(a, "--days")) bad = bad || eng_parse_long(v, 3, 100000, &days);
        else if (!strcmp(a, "--seed")) bad = bad || eng_parse_long(v, 0, 0x7fffffffL, &seed);
        else if (!strcmp(a, "--split")) bad = bad || eng_parse_long(v, 1, 100000, &split);
        else if (!strcmp(a, "--shrink")) bad = bad || parse_dbl(v, &cfg[1].shrink);
        else if (!strcmp(a, "--eps")) bad = bad || parse_dbl(v, &cfg[1].eps);
        else if (!strcmp(a, "--l2")) bad = bad || parse_dbl(v, &cfg[1].l2);
        else if (!strcmp(a, "--alpha")) bad = bad || parse_dbl(v, &cfg[0].alpha);
        else {
            fprintf(stderr, "behaviour eval: unknown option '%s'\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "behaviour eval: bad or missing value for %s\n", a);
            return 2;
        }
        i++;
    }
    if (split < 0) split = days * 3 / 4;
    if (split >= days) {
        fprintf(stderr, "behaviour eval: --split must be below --days\n");
        return 2;
    }
    for (int c = 0; c < 2; c++)
        if (env_behaviour_cfg_check(&cfg[c])) {
            fprintf(stderr, "behaviour eval: %s\n", eng_err_msg());
            return 2;
        }
    env_behaviour_eval e[3];
    double tll = NAN;
    int rc = env_behaviour_sim_compare((int)products, (int)days, (uint64_t)seed, (int)split, cfg, 2, e, &tll);
    if (rc) {
        fprintf(stderr, "behaviour eval: %s\n", eng_err_msg());
        return rc == ENG_EINVAL ? 2 : 1;
    }
    printf("behaviour models on %ld simulated products x %ld days (seed %ld), fit t < %ld, test t >= %ld\n", products,
           days, seed, split, split);
    printf("train %ld, test %ld transitions; true propensities' held-out log-likelihood %.4f\n", e[0].n_train,
           e[0].n_test, tll);
    printf("%-28s %12s %14s %12s\n", "model", "MAE(logged)", "held-out LL", "mean TV");
    char counts_name[64];
    snprintf(counts_name, sizeof counts_name, "counts (alpha %g, beta %g)", cfg[0].alpha, cfg[0].beta);
    const char *names[3] = {"uniform", counts_name, "mnl"};
    for (int c = 0; c < 3; c++) printf("%-28s %12.5f %14.4f %12.4f\n", names[c], e[c].mae, e[c].loglik, e[c].tv);
    printf("mnl: shrink %g, l2 %g, eps %g\n", cfg[1].shrink, cfg[1].l2, cfg[1].eps);
    return 0;
}
