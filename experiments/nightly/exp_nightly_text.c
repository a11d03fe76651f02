/* exp_nightly_text.c - the configuration text a nightly run's id hashes (exp_nightly_run_id):
 * the comparison's settings, the nightly's decision settings and the product list, without
 * paths, device or verbosity.  A setting added later enters the text only when it is on, so the
 * run id of a run without it is unchanged. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "exp_nightly.h"
#include "exp_nightly_explore.h"

typedef struct { char *t; size_t len, o; int full; } text_buf;

/* Append a formatted line to b; a text that would not fit marks b full (the caller fails). */
static void put(text_buf *b, const char *fmt, ...) {
    if (b->full) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->t + b->o, b->len - b->o, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= b->len - b->o) b->full = 1;
    else b->o += (size_t)k;
}

char *exp_nightly_config_text(const exp_nightly_cfg *cfg) {
    exp_compare_cfg c = cfg->compare;
    c.ckpt_dir = NULL;
    memset(c.device, 0, sizeof c.device);
    char *ct = exp_compare_cfg_text(&c);
    if (!ct) return NULL;
    /* the nightly's own lines take under 1,500 bytes with every option on; 4,096 leaves room */
    text_buf b = {NULL, strlen(ct) + 4096, 0, 0};
    for (int i = 0; i < cfg->n_products; i++) b.len += strlen(cfg->products[i]) + 1;
    if (!(b.t = eng_malloc(b.len))) { free(ct); return NULL; }
    put(&b, "%snightly.window_days = %d\nnightly.min_periods = %d\nnightly.gate_level = %g\n"
            "nightly.gate_mode = %d\nnightly.gate_steps = %d\nnightly.gate_extend = %d\nnightly.gate_select = %g\n"
            "nightly.gate_support_widen = %g\nproducts = ",
        ct, cfg->window_days, cfg->min_periods, cfg->gate_level, cfg->gate_mode, cfg->gate_steps, cfg->gate_extend,
        cfg->gate_select, cfg->gate_support_widen);
    free(ct);
    if (!cfg->products) put(&b, "*");
    for (int i = 0; i < cfg->n_products; i++) put(&b, "%s%s", i ? "," : "", cfg->products[i]);
    put(&b, "\n");
    if (cfg->gate_standing) put(&b, "nightly.gate_standing = %d\n", cfg->gate_standing);
    if (cfg->gate_model_dir) put(&b, "nightly.gate_model_dir = %d\n", cfg->gate_model_dir);
    if (cfg->gate_cut_standing) put(&b, "nightly.gate_cut_standing = %d\n", cfg->gate_cut_standing);
    if (cfg->gate_plan)
        put(&b, "nightly.gate_plan = %d\nnightly.gate_plan_nights = %d\nnightly.gate_plan_gamma = %g\n"
                "nightly.gate_plan_paths = %d\nnightly.gate_plan_model = %d\n",
            cfg->gate_plan, cfg->gate_plan_nights, cfg->gate_plan_gamma, cfg->gate_plan_paths, cfg->gate_plan_model);
    if (cfg->gate_min_gain > 0) put(&b, "nightly.gate_min_gain = %g\n", cfg->gate_min_gain);
    if (cfg->window_carryover_days > 0)
        put(&b, "nightly.window_carryover_days = %d\nnightly.window_carryover_share = %g\n", cfg->window_carryover_days,
            cfg->window_carryover_share);
    if (cfg->explore.share > 0 && !b.full) {
        char x[1024];
        exp_explore_cfg_text(&cfg->explore, x, sizeof x);
        put(&b, "%s", x);
    }
    if (b.full) { /* never with the sizes above; a cut text would let two settings share a run id */
        free(b.t);
        eng_err_set(ENG_ENOMEM, "nightly: the run's configuration text does not fit");
        return NULL;
    }
    return b.t;
}
