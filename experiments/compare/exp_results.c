/* exp_results.c - names and the destructor of the comparison results (exp_results.h). */
#include "exp_results.h"

#include <stdlib.h>

const char *exp_agent_name(exp_agent a) {
    static const char *const names[EXP_N_AGENTS] = {"history", "fixed", "linucb", "dqn", "ddpg"};
    return (a >= 0 && a < EXP_N_AGENTS) ? names[a] : "?";
}

const char *exp_status_name(exp_status s) {
    switch (s) {
    case EXP_OK: return "ok";
    case EXP_SKIP_SHORT: return "skip_short";
    case EXP_DIVERGED: return "diverged";
    case EXP_FAILED: return "failed";
    }
    return "?";
}

void exp_results_free(exp_results *r) {
    if (!r) return;
    if (r->products) {
        for (int i = 0; i < r->n_products; i++) {
            exp_product_result *p = &r->products[i];
            free(p->product_id);
            free(p->hist_price);
            for (int a = 0; a < EXP_N_AGENTS; a++) free(p->agent_price[a]);
        }
        free(r->products);
    }
    free(r->run_id);
    free(r->run_date);
    free(r->config_text);
    free(r->reward_text);
    free(r->data_source);
    free(r);
}
