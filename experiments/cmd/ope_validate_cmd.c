/* ope_validate_cmd.c - `rlprice ope-validate` (see rlp_cmd.h): the OPE estimators against the
 * simulator's truth (ope_sim_validate). */
#include "rlp_cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_backend.h"
#include "eng_parse.h"
#include "eng_util.h"
#include "ope_sim.h"

static int parse_int(const char *s, int lo, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

int ope_cmd_validate(int argc, char **argv) {
    ope_sim_cfg c = ope_sim_cfg_default();
    c.n_products = 20;
    c.n_seeds = 10;
    const char *device = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--no-fqe")) { c.fqe.iterations = 0; continue; }
        if (!strcmp(a, "--no-seq")) { c.sequential = 0; continue; }
        if (!v) bad = 1;
        else if (!strcmp(a, "--products")) bad = parse_int(v, 1, &c.n_products);
        else if (!strcmp(a, "--seeds")) bad = parse_int(v, 1, &c.n_seeds);
        else if (!strcmp(a, "--seq-seeds")) bad = parse_int(v, 1, &c.seq_seeds);
        else if (!strcmp(a, "--periods")) bad = parse_int(v, 10, &c.n_periods);
        else if (!strcmp(a, "--episodes")) bad = parse_int(v, 10, &c.n_episodes);
        else if (!strcmp(a, "--horizon")) bad = parse_int(v, 1, &c.horizon);
        else if (!strcmp(a, "--bootstrap")) bad = parse_int(v, 0, &c.n_boot);
        else if (!strcmp(a, "--fqe-boot")) bad = parse_int(v, 0, &c.fqe.n_boot) || c.fqe.n_boot == 1;
        else if (!strcmp(a, "--seed")) {
            uint64_t s;
            bad = eng_parse_u64(v, &s) != ENG_OK; /* digits only: no sign, no blanks, no overflow */
            if (!bad) c.seed = s;
        } else if (!strcmp(a, "--device")) device = v;
        else bad = 1;
        if (bad) {
            fprintf(stderr,
                    "usage: rlprice ope-validate [--products N] [--seeds S] [--seq-seeds S] [--periods T] [--episodes M]\n"
                    "       [--horizon H] [--bootstrap B] [--fqe-boot B (0 or >= 2)] [--no-fqe] [--no-seq] [--seed S]\n"
                    "       [--device cpu|cuda|auto]\n"
                    "bad or incomplete option: %s\n",
                    a);
            return 2;
        }
        i++;
    }
    const eng_backend *be = NULL;
    if (eng_backend_select(device, &be)) {
        fprintf(stderr, "rlprice ope-validate: %s\n", eng_err_msg());
        return 2;
    }
    ope_sim_stat *s = NULL;
    int n = 0;
    if (ope_sim_validate(&c, be, &s, &n)) {
        fprintf(stderr, "rlprice ope-validate: %s\n", eng_err_msg());
        return 1;
    }
    printf("OPE vs simulator truth: %d products; one-step %d seeds x %d rows; sequential %d seeds x %d episodes x %d "
           "periods (gamma %g, %s); bootstrap %d; FQE %s (%d refits)\n",
           c.n_products, c.n_seeds, c.n_periods, c.seq_seeds > 0 ? c.seq_seeds : c.n_seeds, c.n_episodes, c.horizon,
           c.gamma, c.sequential ? "on" : "off", c.n_boot, c.fqe.iterations > 0 ? "on" : "off", c.fqe.n_boot);
    printf("relative error = (estimate - truth) / truth over cases with adequate overlap (poor ones counted apart)\n\n");
    printf("%-10s %-12s %-9s %5s %5s %11s %9s %6s %9s %9s %10s\n", "design", "target", "estimator", "cases", "poor",
           "mean err %", "se %", "z", "|err| %", "coverage", "mean truth");
    for (int k = 0; k < n; k++) {
        const ope_sim_stat *r = &s[k];
        printf("%-10s %-12s %-9s %5d %5d %11.2f %9.2f %6.2f %9.2f %9.3f %10.5f\n", r->design, r->target,
               ope_est_name(r->est), r->n_cases, r->n_poor, 100 * r->mean_rel, 100 * r->se_rel,
               r->se_rel > 0 ? r->mean_rel / r->se_rel : NAN, 100 * r->mean_abs_rel, r->coverage, r->mean_truth);
    }
    free(s);
    return 0;
}
