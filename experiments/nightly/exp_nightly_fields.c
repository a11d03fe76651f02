/* exp_nightly_fields.c - the table of the nightly.* settings (exp_nightly_fields in
 * exp_nightly.h): `rlprice nightly --nightly.KEY=VALUE` and config files, and `rlprice bench
 * nightly --nightly.KEY=VALUE`. */
#include <stddef.h>
#include <string.h>

#include "eng_util.h"
#include "exp_nightly.h"

static const agt_cfg_field nightly_fields[] = {
    {"window_days", AGT_CFG_INT, offsetof(exp_nightly_cfg, window_days), "history window before the date (0 = all)"},
    {"window_carryover_days", AGT_CFG_INT, offsetof(exp_nightly_cfg, window_carryover_days),
     "> 0: when more than window_carryover_share of the window's fitted products show carry-over, price from the last N days only (0 = off)"},
    {"window_carryover_share", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, window_carryover_share),
     "window_carryover_days: the share of fitted products showing carry-over above which the short window is used"},
    {"min_periods", AGT_CFG_INT, offsetof(exp_nightly_cfg, min_periods), "clean periods a product needs"},
    {"gate_level", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, gate_level), "uplift interval level of the deploy gate"},
    {"gate_mode", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_mode), "gate evidence: 0 ope, 1 demand model, 2 both"},
    {"gate_steps", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_steps), "steps of a move the model gate tries"},
    {"gate_select", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, gate_select), "level ranking eligible moves (0 estimate, -1 gate_level)"},
    {"gate_min_gain", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, gate_min_gain), "model gate: lower bound of the uplift above this share of the incumbent's rate"},
    {"gate_support_widen", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, gate_support_widen), "widening of the normal-period price range (<0: none)"},
    {"gate_standing", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_standing), "1: the model gate values prices as standing prices (reference state at the price); H >= 2: over H nights"},
    {"gate_model_dir", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_model_dir), "1: an agent at the incumbent gets the extension in the model's direction; 2: also an agent pointing the other way; 3: as 2 at the band's edge only"},
    {"gate_cut_standing", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_cut_standing), "1 (with gate_standing >= 2): a cut is valued as a standing price (no credit for the lift below the customers' reference), a rise over the horizon; 2: every product's cut under its standing fit; 3: 2 when the night's products pool to a reference effect, else 1; 4: 1, and with a pooled reference effect no lag test for the horizon"},
    {"gate_plan", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_plan), "0 off; 1: the planning candidate (a DP over the demand model's carry-over within the change limit; needs gate_standing >= 2) deploys when its bound clears; 2: as 1, and a plan that holds first holds"},
    {"gate_plan_nights", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_plan_nights), "the planning candidate's horizon in nights"},
    {"gate_plan_gamma", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, gate_plan_gamma), "the planning candidate's discount per night"},
    {"gate_plan_paths", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_plan_paths), "the planning candidate's paths: 0 any (the DP), 1 monotone toward a target, then held"},
    {"gate_plan_model", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_plan_model), "the planning candidate's model: 0 the gate's demand fit, 1 the kinked reference model (a rise above the customers' reference may cost more than a cut gains)"},
    {"gate_extend", AGT_CFG_INT, offsetof(exp_nightly_cfg, gate_extend), "1: the model gate also steps to the guard's edge"},
    {"explore.share", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, explore.share),
     "probability that an eligible product is explored per night (0 = off)"},
    {"explore.max_step", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, explore.max_step),
     "largest exploration step, share of the decided price"},
    {"explore.max_cost", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, explore.max_cost),
     "exploration budget: expected revenue given up, share of the night's expected revenue"},
    {"explore.mode", AGT_CFG_INT, offsetof(exp_nightly_cfg, explore.mode),
     "how an explored price is drawn: 0 neighbouring levels (uniform), 1 Thompson (posterior sampling)"},
    {"explore.temper", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, explore.temper),
     "Thompson: scale of the posterior's standard deviation (1 = the posterior; < 1 draws nearer its mean optimum)"},
    {"explore.skip_carryover", AGT_CFG_INT, offsetof(exp_nightly_cfg, explore.skip_carryover),
     "Thompson: 1 = no draw for a product whose demand fit shows carry-over (the gate horizon's lag test)"},
    {"explore.held_only", AGT_CFG_INT, offsetof(exp_nightly_cfg, explore.held_only),
     "1 = explore only the products the gate held (a moved price is pushed as decided)"},
    {"explore.carryover_share", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, explore.carryover_share),
     "Thompson: no draw tonight when more than this share of the fitted products show carry-over (0 = off)"},
    {"explore.no_lag", AGT_CFG_INT, offsetof(exp_nightly_cfg, explore.no_lag),
     "Thompson: 1 = draw from the demand fit without the lag column when the product shows no carry-over"},
    {"explore.carryover_z", AGT_CFG_FLOAT, offsetof(exp_nightly_cfg, explore.carryover_z),
     "skip_carryover: the lag coefficient's distance from 0 in robust standard errors that counts as carry-over"},
};

const agt_cfg_field *exp_nightly_fields(int *n) {
    *n = (int)(sizeof nightly_fields / sizeof nightly_fields[0]);
    return nightly_fields;
}

int exp_nightly_set_flag(exp_nightly_cfg *cfg, const char *flag, const char *value) {
    /* the prefix first: the key starts 10 characters in, past the end of a shorter flag */
    if (strncmp(flag, "--nightly.", 10) != 0) return eng_err_set(ENG_EINVAL, "%s: not a --nightly.KEY flag", flag);
    char key[64];
    const char *k = flag + 10, *eq = strchr(k, '='), *val = eq ? eq + 1 : value;
    const size_t kl = eq ? (size_t)(eq - k) : strlen(k);
    if (!val || kl >= sizeof key)
        return eng_err_set(ENG_EINVAL, "%s needs a value (--nightly.KEY=VALUE or --nightly.KEY VALUE)", flag);
    memcpy(key, k, kl);
    key[kl] = '\0';
    int n;
    const agt_cfg_field *f = exp_nightly_fields(&n);
    return agt_cfg_set(cfg, f, n, key, val, flag);
}
