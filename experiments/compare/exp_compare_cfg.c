/* exp_compare_cfg.c - the comparison's configuration: defaults, key=value files, flags and
 * the text dump recorded with every run (exp_compare.h).
 *
 * The comparison's own settings (sections compare, reward, grid, guard, behaviour, ope,
 * linucb) are described by one table below; the DQN and DDPG sections reuse the agents'
 * field tables (agt_dqn_fields, agt_ddpg_fields) through agt_cfg_set, so every agent key is
 * settable here exactly as in the agents' own files. */
#include "exp_compare.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_backend.h"
#include "feat_agent.h"
#include "eng_parse.h"
#include "eng_util.h"

exp_compare_cfg exp_compare_default(void) {
    exp_compare_cfg c;
    memset(&c, 0, sizeof c);
    c.seed = 1;
    snprintf(c.device, sizeof c.device, "auto");
    c.reward = env_reward_default();
    c.grid = env_grid_default();
    /* a wider grid at the same 0.025 step for the DQN (21 levels over +-0.25 before), with its
     * smoothness terms on its support and 5 steps beyond the logged range: docs/compare.md,
     * "Held out: the wider grid as the default (session 11)" */
    c.grid.K = 29, c.grid.band = 0.35;
    c.guard = env_guard_default();
    c.behaviour = env_behaviour_default();
    c.train_frac = 0.8;
    c.eval_all = 0;
    c.min_history = 8;
    c.fixed_min_support = 3;
    c.pooled_q = 1;
    c.uplift_ref = 0;
    c.like_periods = 1;
    c.promo_state = 1;
    c.group_size = 256;
    c.dqn_steps = 60;
    c.ddpg_steps = 60;
    c.warm_frac = 0.25;
    c.warm_patience = 1;
    c.fqe_warm_iterations = 1;
    c.fqe_chunk = 64;
    c.linucb_passes = 1;
    c.agent_state = 1;
    c.shared = 1;
    c.shared_steps = 3000;
    c.shared_batch = 256;
    c.ft_steps = 0;
    c.val_frac = 0.2;
    c.es_every = 50;
    c.es_patience = 4;
    c.dqn_support = 2;
    c.ddpg_support = 1;
    c.support_steps = 5;      /* 3 before session 11 */
    c.dqn_smooth_support = 1; /* 0 before session 11 */
    c.dyna = 8;
    c.dyna_kappa = 0.0;
    c.dyna_max = 2000000;
    c.dyna_carry = 1;
    c.dyna_memory = 1;
    c.dyna_horizon = 1;
    c.agent_desc = 0;
    c.agent_best = 1; /* docs/compare.md, "The DQN learns the uplift over the incumbent" (0 before session 15) */
    c.ddpg_demand_pool = 2; /* docs/compare.md, "A demand model per agent" (-1, the DQN's, before session 14) */
    c.ddpg_agent_best = 1;
    c.ddpg_support_steps = 6; /* docs/compare.md, "Context descriptors (q12desc)" (-1 = support_steps before) */
    c.ddpg_band = 0.0;        /* grid.band: a band of DDPG's own is valued by OPE at the grid's edge */
    c.dyna_real = 0.0;
    c.dqn_uplift = 1; /* docs/compare.md, "The DQN learns the uplift over the incumbent" (0 before session 15) */
    c.dqn_uplift_scale = 1000.0; /* docs/compare.md, "The uplift targets' scale (session 16)" (10 before) */
    c.ensemble = 5; /* docs/compare.md, "An ensemble of the shared networks" (1 before) */
    c.demand_pool = 2; /* docs/compare.md, "The DQN learns the uplift over the incumbent" (3 in sessions 11-14, 1 before) */
    c.refit = 1; /* docs/compare.md, "Refit on every day for the next price" (0 before) */
    c.refit_frac = 0.25;
    c.refit_carry = 1;
    c.dyna_cut_standing = 0;
    c.demand_asym = 0;
    c.demand_ref_pool = 0;
    c.demand_pool_tau_scale = 1.0;
    c.demand_pool_np = 0; /* docs/backtest.md, "A nonparametric pooled prior on the slope (session 18)": an option */
    c.dqn = agt_dqn_default();
    c.dqn.hidden1 = c.dqn.hidden2 = 64;
    c.dqn.batch = 32;
    c.dqn.replay = 4096;
    c.dqn.learn_start = 8;
    c.dqn.target_sync = 20;
    c.dqn.gamma = 0.0f;   /* one-day price decision: see docs/compare.md, "Agents that learn to price" */
    c.dqn.smooth = 1.0f; /* with compare.dqn_uplift (5 before session 15) */
    c.dqn.huber_delta = 10.0f; /* squared error on the scaled rewards: the Huber's robust fit is
                                  not the mean a price decision needs (docs/compare.md) */
    c.ddpg = agt_ddpg_default();
    c.ddpg.hidden1 = c.ddpg.hidden2 = 64;
    c.ddpg.batch = 32;
    c.ddpg.replay = 4096;
    c.ddpg.learn_start = 8;
    c.ddpg.tau = 0.05f;
    c.ddpg.gamma = 0.0f;
    c.ddpg.bc_alpha = 25.0f; /* with the model-based rows the critic, not the logged action, leads */
    c.linucb = agt_linucb_default();
    c.ope = ope_config_default();
    c.ope.n_boot = 200;
    c.ope.gamma = 0.9;
    c.total_boot = 1000;
    c.fqe_products = 1000;
    c.fqe = ope_fqe_cfg_default();
    c.fqe.iterations = 10;
    c.fqe.steps = 20;
    c.fqe.batch = 32;
    c.fqe.hidden[0] = c.fqe.hidden[1] = 32;
    c.ckpt_dir = NULL;
    c.fault_diverge = -1;
    c.fault_kill_rank = -1;
    return c;
}

void exp_compare_cfg_free(exp_compare_cfg *cfg) {
    if (!cfg) return;
    free(cfg->ckpt_dir);
    cfg->ckpt_dir = NULL;
}

/* ---- the comparison's own fields ------------------------------------------------------ */

typedef enum {
    T_INT, T_LONG, T_U64, T_DOUBLE, T_FLOAT, T_DEVICE, T_REWARD, T_FALLBACK, T_ENDINGS, T_CKPT, T_LINKIND
} ftype;

typedef struct field {
    const char *key; /* "section.name" */
    ftype type;
    size_t off;
    const char *help;
} field;

#define F(k, t, m, h) {k, t, offsetof(exp_compare_cfg, m), h}
static const field fields[] = {
    F("compare.seed", T_U64, seed, "seed of every random stream"),
    F("compare.device", T_DEVICE, device, "auto, cpu or cuda"),
    F("compare.train_frac", T_DOUBLE, train_frac, "training window = first share of the periods"),
    F("compare.eval_all", T_INT, eval_all, "1 = evaluate on every period, 0 = on the holdout"),
    F("compare.min_history", T_INT, min_history, "training transitions for an own model (else pooled)"),
    F("compare.fixed_min_support", T_INT, fixed_min_support, "logged rows a level needs to be the fixed price"),
    F("compare.pooled_q", T_INT, pooled_q, "1: pooled reward model for DM/DR; 0: per-product ridge (before 2024-06)"),
    F("compare.uplift_ref", T_INT, uplift_ref, "uplift against: 0 = history's on-policy mean, 1 = history's DR, 2 = the incumbent price (paired DR)"),
    F("compare.like_periods", T_INT, like_periods, "1: fixed price, agents and uplift within normal (non-promotion) periods"),
    F("compare.promo_state", T_INT, promo_state, "1: the DM/DR reward model reads the priced period's promotion flag as state"),
    F("compare.group_size", T_INT, group_size, "products per model group P"),
    F("compare.dqn_steps", T_LONG, dqn_steps, "DQN training steps per group"),
    F("compare.ddpg_steps", T_LONG, ddpg_steps, "DDPG training steps per group"),
    F("compare.warm_frac", T_DOUBLE, warm_frac, "share of the step budget after a warm start"),
    F("compare.warm_patience", T_INT, warm_patience, "early-stopping patience after a warm start (checks)"),
    F("compare.fqe_warm_iterations", T_INT, fqe_warm_iterations, "FQE refreshes when started from the last night's networks"),
    F("compare.fqe_chunk", T_INT, fqe_chunk, "products per FQE chunk (0: compare.group_size)"),
    F("compare.linucb_passes", T_INT, linucb_passes, "LinUCB passes over the training transitions"),
    F("compare.agent_state", T_INT, agent_state, "1: cross-product agent state and scaled rewards; 0: feat-v1 state"),
    F("compare.shared", T_INT, shared, "1: one DQN/DDPG on all products, fine-tuned per product; 0: per product"),
    F("compare.shared_steps", T_LONG, shared_steps, "most steps of the shared networks"),
    F("compare.shared_batch", T_INT, shared_batch, "minibatch of the shared networks"),
    F("compare.shared_shards", T_INT, shared_shards, "data-parallel shards of the shared networks: 0 = one per MPI rank"),
    F("compare.ft_steps", T_LONG, ft_steps, "most per-product fine-tuning steps after the shared model"),
    F("compare.val_frac", T_DOUBLE, val_frac, "share of training rows held out for early stopping (0 = off)"),
    F("compare.es_every", T_INT, es_every, "steps between early-stopping checks"),
    F("compare.es_patience", T_INT, es_patience, "checks without improvement before stopping"),
    F("compare.dqn_support", T_INT, dqn_support, "DQN levels: 0 all, 1 logged, 2 logged range +- one step"),
    F("compare.dqn_smooth_support", T_INT, dqn_smooth_support, "1: the DQN's smoothness / CQL terms over the levels its products may choose (the union for a shared network); 0: every grid level"),
    F("compare.ddpg_support", T_INT, ddpg_support, "1: DDPG ratio clipped to the logged range +- support_steps"),
    F("compare.support_steps", T_INT, support_steps, "grid steps the supports reach beyond the logged range"),
    F("compare.dyna", T_INT, dyna, "model-based transitions per training row for the shared networks (0 off)"),
    F("compare.dyna_kappa", T_DOUBLE, dyna_kappa, "uncertainty penalty of the model-based rewards (standard errors)"),
    F("compare.dyna_max", T_LONG, dyna_max, "most model-based transitions in all (memory bound)"),
    F("compare.ddpg_band", T_DOUBLE, ddpg_band, "DDPG's price band (ratio = 1 + band x action; its guard's band): 0 = grid.band"),
    F("compare.ddpg_support_steps", T_INT, ddpg_support_steps, "DDPG's support: the logged ratio range +- this many grid steps (-1: support_steps)"),
    F("compare.agent_desc", T_INT, agent_desc, "agent state's demand-model descriptors: 0 at the mean logged price, 1 / 2 the model's relative rates at 2 / 4 ratios around the incumbent in its context"),
    F("compare.ddpg_demand_pool", T_INT, ddpg_demand_pool, "DDPG's own demand models' slope prior: 2 the night's pooled prior, 3 its centre at the weak width, 0 or 1 none; -1 the DQN's (compare.demand_pool); another value than the DQN's gives DDPG its own demand models and states (with compare.agent_state 1; without a pooled prior, demand_pool 0, 2 and 3 are the weak prior)"),
    F("compare.ddpg_agent_best", T_INT, ddpg_agent_best, "DDPG's best-price slots (as compare.agent_best): 0 or 1 (nothing without compare.agent_state 1); -1 the DQN's (compare.agent_best)"),
    F("compare.agent_best", T_INT, agent_best, "1: two more agent-state slots, the demand model's best price for the state in its context (log ratio to the incumbent) and its relative gain (nothing without compare.agent_state 1); 0 off"),
    F("compare.dyna_memory", T_INT, dyna_memory, "1: the agents' model's lag is a smoothed past price (0: the previous price)"),
    F("compare.dyna_horizon", T_INT, dyna_horizon, "nights a model row's price is valued over, held (1: that day)"),
    F("compare.dyna_cut_standing", T_INT, dyna_cut_standing, "1: a model row's cut below the smoothed past price valued at its standing rate, a rise over dyna_horizon nights held (carry-over products only); 0 off"),
    F("compare.dyna_carry", T_INT, dyna_carry, "1: a model row's next state carries its price (0: the logged one)"),
    F("compare.ensemble", T_INT, ensemble, "members of the shared networks; the next price from their mean Q-values / actor outputs (1 = one)"),
    F("compare.hold_z", T_DOUBLE, hold_z, "hold the incumbent unless the ensemble's advantage of the new price beats hold_z times its spread across the members (0 = off)"),
    F("compare.dqn_uplift_scale", T_DOUBLE, dqn_uplift_scale, "the DQN's uplift targets' scale s: s (rate - m) / m (0 < s <= 1e6)"),
    F("compare.dqn_uplift", T_INT, dqn_uplift, "1: the DQN learns each price's relative uplift over its demand model's rate at the state's incumbent (only with model-based rows and dqn.gamma 0); 0: the logged reward"),
    F("compare.dyna_real", T_DOUBLE, dyna_real, "real rows' reward: weight of the demand model's rate at the logged price against the observed rate (0 observed .. 1 model); only with model-based rows (shared, dyna > 0, an rcr/drcr reward), else no effect"),
    F("compare.refit", T_INT, refit, "1: the DQN/DDPG next prices from the agents refitted on every day (training + OPE holdout; OPE keeps the training window's); 0: the training window's agents"),
    F("compare.refit_carry", T_INT, refit_carry, "1: the refit reprices every product; 0: products whose every-day demand model shows carry-over keep the training window's agents' price"),
    F("compare.refit_frac", T_DOUBLE, refit_frac, "the refit's step budget on a cold night: share of shared_steps (0, and after a warm start: none, every day's statistics only)"),
    F("compare.demand_asym", T_INT, demand_asym, "1: the demand model tries an asymmetric (gain/loss) reference column when the likelihood supports it; 0 the symmetric lag"),
    F("compare.demand_ref_pool", T_INT, demand_ref_pool, "1: pooled empirical-Bayes prior on the demand model's reference columns (lag, loss) for the gate/exploration fits (the agents' with demand_pool 2 or 3); 0 the ridge"),
    F("compare.demand_pool_np", T_INT, demand_pool_np, "1: the pooled slope prior is nonparametric (NPMLE over the night's products; each fit takes its matched Gaussian prior); 0 the normal (DerSimonian-Laird) prior"),
    F("compare.demand_pool_tau_scale", T_DOUBLE, demand_pool_tau_scale, "the pooled slope prior's sd (tau) times this: 1 as estimated, > 1 pools less, < 1 more (0.1 .. 10)"),
    F("compare.demand_pool", T_INT, demand_pool, "pooled empirical-Bayes prior on the demand price slope: 0 off, 1 the gate/exploration fits, 2 also the agents' models, 3 the agents' models with the pooled centre at the weak prior's width"),
    F("compare.total_boot", T_INT, total_boot, "bootstrap resamples of the totals over products"),
    F("compare.ckpt_dir", T_CKPT, ckpt_dir, "warm-start folder (empty = none)"),
    F("compare.fault_diverge", T_INT, fault_diverge, "test hook: poison this product's DQN (-1 off)"),
    F("compare.fqe_products", T_INT, fqe_products, "FQE on this many products (seeded sample); -1 all, 0 off"),
    F("fqe.iterations", T_INT, fqe.iterations, "FQE target refreshes"),
    F("fqe.steps", T_INT, fqe.steps, "FQE Adam steps per refresh"),
    F("fqe.batch", T_INT, fqe.batch, "FQE minibatch rows per product"),
    F("fqe.hidden1", T_INT, fqe.hidden[0], "FQE first hidden layer"),
    F("fqe.hidden2", T_INT, fqe.hidden[1], "FQE second hidden layer"),
    F("fqe.lr", T_FLOAT, fqe.lr, "FQE Adam learning rate"),
    F("fqe.n_boot", T_INT, fqe.n_boot, "FQE refits per product for an interval (0 = none)"),
    F("reward.kind", T_REWARD, reward.kind, "revenue, rcr, drcr, profit, pcr, dpcr"),
    F("reward.tau", T_INT, reward.tau, "lag of differenced rewards"),
    F("reward.fallback", T_FALLBACK, reward.fallback, "proxy1, level or error"),
    F("reward.min_traffic_frac", T_DOUBLE, reward.min_traffic_frac, "traffic coverage needed for rates"),
    F("grid.K", T_INT, grid.K, "price levels"),
    F("grid.band", T_DOUBLE, grid.band, "half-width of the price band, share of the reference"),
    F("guard.min_margin", T_DOUBLE, guard.min_margin, "margin floor (price - cost) / price"),
    F("guard.default_max_change_pct", T_DOUBLE, guard.default_max_change_pct,
      "max change per period when the product has none (none = no limit)"),
    F("guard.endings", T_ENDINGS, guard, "allowed price endings in cents, e.g. 99,49 (none = whole cents)"),
    F("behaviour.alpha", T_DOUBLE, behaviour.alpha, "per-product shrinkage to the pool"),
    F("behaviour.beta", T_DOUBLE, behaviour.beta, "pooled smoothing to uniform"),
    F("ope.seed", T_U64, ope.seed, "mixed into the OPE streams derived from compare.seed (and the product index)"),
    F("ope.n_boot", T_INT, ope.n_boot, "bootstrap resamples per product"),
    F("ope.alpha", T_DOUBLE, ope.alpha, "interval level (0.05 = 95%)"),
    F("ope.switch_tau", T_DOUBLE, ope.switch_tau, "Switch-DR weight threshold"),
    F("ope.ridge_lambda", T_DOUBLE, ope.ridge_lambda, "ridge penalty of the reward model"),
    F("ope.cross_folds", T_INT, ope.cross_folds, "cross-fitting folds of the reward model"),
    F("ope.gamma", T_DOUBLE, ope.gamma, "discount of the long-term estimates"),
    F("ope.bandwidth", T_DOUBLE, ope.bandwidth, "kernel bandwidth (<= 0: Silverman)"),
    F("ope.min_ess_frac", T_DOUBLE, ope.min_ess_frac, "overlap rule: ESS share"),
    F("ope.min_ess_abs", T_DOUBLE, ope.min_ess_abs, "overlap rule: ESS"),
    F("ope.max_unsupported", T_DOUBLE, ope.max_unsupported, "overlap rule: unsupported mass"),
    F("linucb.kind", T_LINKIND, linucb.kind, "disjoint (the comparison uses the disjoint model)"),
    F("linucb.alpha", T_FLOAT, linucb.alpha, "exploration width (scoring uses the greedy mean)"),
    F("linucb.ridge", T_FLOAT, linucb.ridge, "ridge lambda"),
};
#undef F
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

static int set_field(exp_compare_cfg *cfg, const field *f, const char *v, const char *where) {
    char *base = (char *)cfg + f->off;
    double d;
    long l;
    switch (f->type) {
    case T_INT:
        if (eng_parse_long(v, LONG_MIN, LONG_MAX, &l) || l < -2147483647L || l > 2147483647L) goto bad;
        *(int *)base = (int)l;
        return 0;
    case T_LONG:
        if (eng_parse_long(v, LONG_MIN, LONG_MAX, &l)) goto bad;
        *(long *)base = l;
        return 0;
    case T_U64: {
        uint64_t u; /* no sign, no blanks (eng_parse_u64_c) */
        if (eng_parse_u64_c(v, &u)) goto bad;
        *(uint64_t *)base = u;
        return 0;
    }
    case T_DOUBLE:
        if (!strcmp(v, "none")) { *(double *)base = NAN; return 0; } /* an unset value (eng_fmt_double) */
        if (eng_parse_double(v, &d)) goto bad;
        *(double *)base = d;
        return 0;
    case T_FLOAT:
        if (eng_parse_double(v, &d) || !isfinite(d)) goto bad;
        *(float *)base = (float)d;
        return 0;
    case T_DEVICE:
        if (eng_device_check(v, where)) return ENG_EINVAL;
        snprintf(cfg->device, sizeof cfg->device, "%s", v);
        return 0;
    case T_REWARD: {
        env_reward_kind k;
        int rc = env_reward_parse(v, &k);
        if (rc) return eng_err_set(rc, "%s: %s: %s", where, f->key, eng_err_msg());
        cfg->reward.kind = k;
        return 0;
    }
    case T_FALLBACK: {
        env_fallback fb;
        int rc = env_fallback_parse(v, &fb);
        if (rc) return eng_err_set(rc, "%s: %s: %s", where, f->key, eng_err_msg());
        cfg->reward.fallback = fb;
        return 0;
    }
    case T_ENDINGS: {
        env_guard_cfg g = cfg->guard;
        g.n_endings = 0;
        if (strcmp(v, "none") && *v) {
            const char *s = v;
            while (*s) {
                char *end;
                errno = 0;
                long c = strtol(s, &end, 10);
                if (end == s || errno || c < 0 || c > 99 || g.n_endings >= ENV_GUARD_MAX_ENDINGS) goto bad;
                g.endings_cents[g.n_endings++] = (int)c;
                s = end;
                if (*s == ',') s++;
                else if (*s) goto bad;
            }
        }
        cfg->guard = g;
        return 0;
    }
    case T_CKPT: {
        char *dup = NULL;
        if (*v && strcmp(v, "none")) {
            dup = strdup(v);
            if (!dup) return eng_err_set(ENG_ENOMEM, "%s: out of memory", where);
        }
        free(cfg->ckpt_dir);
        cfg->ckpt_dir = dup;
        return 0;
    }
    case T_LINKIND:
        if (strcmp(v, "disjoint"))
            return eng_err_set(ENG_EINVAL, "%s: %s: the comparison uses the disjoint LinUCB, not '%s'", where,
                               f->key, v);
        cfg->linucb.kind = AGT_LINUCB_DISJOINT;
        return 0;
    }
bad:
    return eng_err_set(ENG_EINVAL, "%s: bad value '%s' for %s (%s)", where, v, f->key, f->help);
}

int exp_compare_cfg_set(exp_compare_cfg *cfg, const char *key, const char *value, const char *where) {
    if (!cfg || !key || !value) return eng_err_set(ENG_EINVAL, "exp_compare_cfg_set: NULL argument");
    if (!where) where = key;
    int n;
    const agt_cfg_field *af = NULL;
    void *obj = NULL;
    const char *sub = NULL;
    if (!strncmp(key, "dqn.", 4)) {
        af = agt_dqn_fields(&n);
        obj = &cfg->dqn;
        sub = key + 4;
    } else if (!strncmp(key, "ddpg.", 5)) {
        af = agt_ddpg_fields(&n);
        obj = &cfg->ddpg;
        sub = key + 5;
    }
    if (af) return agt_cfg_set(obj, af, n, sub, value, where);
    char full[96];
    if (!strchr(key, '.')) snprintf(full, sizeof full, "compare.%s", key);
    else snprintf(full, sizeof full, "%s", key);
    for (int i = 0; i < N_FIELDS; i++)
        if (!strcmp(fields[i].key, full)) return set_field(cfg, &fields[i], value, where);
    return eng_err_set(ENG_ENOTFOUND, "%s: unknown setting '%s'", where, key);
}

static int known_section(const char *key) {
    static const char *const secs[] = {"compare.", "reward.", "grid.", "guard.", "behaviour.",
                                       "ope.", "linucb.", "dqn.", "ddpg."};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++)
        if (!strncmp(key, secs[i], strlen(secs[i]))) return 1;
    return 0;
}

/* A setting of a known section into the comparison's configuration (ctx); lines of other
 * sections (e.g. "nightly.") belong to other readers and are skipped. */
static int cfg_line(void *ctx, const char *key, const char *val, const char *where) {
    if (!known_section(key)) return ENG_OK;
    return exp_compare_cfg_set(ctx, key, val, where);
}

/* A flag: every key is the comparison's (bare keys are "compare.<key>"). */
static int cfg_flag(void *ctx, const char *key, const char *val, const char *where) {
    return exp_compare_cfg_set(ctx, key, val, where);
}

int exp_compare_cfg_load_file(exp_compare_cfg *cfg, const char *path) {
    if (!cfg || !path) return eng_err_set(ENG_EINVAL, "exp_compare_cfg_load_file: NULL argument");
    return agt_cfg_read_file(path, cfg_line, cfg);
}

int exp_compare_cfg_parse_flags(exp_compare_cfg *cfg, int argc, char **argv) {
    return agt_cfg_read_flags(argc, argv, cfg_flag, cfg);
}

int exp_compare_cfg_check(const exp_compare_cfg *c) {
    int rc;
    if (!c) return eng_err_set(ENG_EINVAL, "compare config: NULL");
    if ((rc = env_reward_cfg_check(&c->reward)) || (rc = env_grid_check(&c->grid)) ||
        (rc = env_guard_cfg_check(&c->guard)))
        return rc;
    if (!(c->behaviour.alpha > 0) || !(c->behaviour.beta > 0))
        return eng_err_set(ENG_EINVAL, "compare config: behaviour.alpha and behaviour.beta must be > 0");
    if (!(c->train_frac > 0.0 && c->train_frac <= 1.0))
        return eng_err_set(ENG_EINVAL, "compare config: compare.train_frac must be in (0, 1], not %g", c->train_frac);
    if (c->train_frac >= 1.0 && !c->eval_all)
        return eng_err_set(ENG_EINVAL, "compare config: train_frac 1 leaves no holdout; set compare.eval_all = 1");
    if (c->warm_patience < 1 || c->fqe_warm_iterations < 1 || c->fqe_chunk < 0)
        return eng_err_set(ENG_EINVAL, "compare config: compare.warm_patience and compare.fqe_warm_iterations >= 1, "
                                       "compare.fqe_chunk >= 0 needed");
    if (c->fqe_products < -1 || c->fqe.iterations < 1 || c->fqe.steps < 1 || c->fqe.batch < 1 || c->fqe.hidden[0] < 1 ||
        c->fqe.hidden[1] < 1 || !(c->fqe.lr > 0) || c->fqe.n_boot < 0 || c->fqe.n_boot == 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.fqe_products >= -1, fqe.iterations/steps/batch/hidden1/"
                                       "hidden2 >= 1, fqe.lr > 0, fqe.n_boot 0 or >= 2 needed");
    if (c->like_periods != 0 && c->like_periods != 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.like_periods must be 0 or 1, not %d", c->like_periods);
    if (c->promo_state != 0 && c->promo_state != 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.promo_state must be 0 or 1, not %d", c->promo_state);
    if (c->demand_asym != 0 && c->demand_asym != 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.demand_asym must be 0 or 1, not %d", c->demand_asym);
    if (c->demand_ref_pool != 0 && c->demand_ref_pool != 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.demand_ref_pool must be 0 or 1, not %d", c->demand_ref_pool);
    if (c->demand_pool_np != 0 && c->demand_pool_np != 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.demand_pool_np must be 0 or 1, not %d", c->demand_pool_np);
    if (c->demand_pool_np && c->demand_pool_tau_scale != 1.0)
        return eng_err_set(ENG_EINVAL,
                           "compare config: compare.demand_pool_tau_scale scales the normal pooled prior; set "
                           "compare.demand_pool_np 0 to use it (it is %g with the nonparametric prior on)",
                           c->demand_pool_tau_scale);
    if (!(c->demand_pool_tau_scale >= 0.1 && c->demand_pool_tau_scale <= 10))
        return eng_err_set(ENG_EINVAL, "compare config: compare.demand_pool_tau_scale must be in [0.1, 10], not %g",
                           c->demand_pool_tau_scale);
    if (!(c->ddpg_band == 0.0 || (c->ddpg_band >= 0.01 && c->ddpg_band <= 0.9)))
        return eng_err_set(ENG_EINVAL, "compare config: compare.ddpg_band must be 0 (grid.band) or in [0.01, 0.9], not %g", c->ddpg_band);
    if (c->ddpg_band > 0 && c->ddpg_band < c->grid.band) /* the logged ratios would be clamped into it */
        return eng_err_set(ENG_EINVAL, "compare config: compare.ddpg_band %g is narrower than grid.band %g (0: the grid's)",
                           c->ddpg_band, c->grid.band);
    if (c->ddpg_support_steps < -1 || c->ddpg_support_steps > 100)
        return eng_err_set(ENG_EINVAL, "compare config: compare.ddpg_support_steps must be -1 (support_steps) or 0..100, not %d",
                           c->ddpg_support_steps);
    if (c->dqn_uplift < 0 || c->dqn_uplift > 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.dqn_uplift must be 0 or 1, not %d", c->dqn_uplift);
    if (!(c->dqn_uplift_scale > 0 && c->dqn_uplift_scale <= 1e6))
        return eng_err_set(ENG_EINVAL, "compare config: compare.dqn_uplift_scale must be in (0, 1e6], not %g",
                           c->dqn_uplift_scale);
    if (c->agent_best < 0 || c->agent_best > 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.agent_best must be 0 or 1, not %d", c->agent_best);
    if (c->ddpg_agent_best < -1 || c->ddpg_agent_best > 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.ddpg_agent_best must be -1 (agent_best), 0 or 1, not %d",
                           c->ddpg_agent_best);
    if (c->ddpg_demand_pool < -1 || c->ddpg_demand_pool > 3)
        return eng_err_set(ENG_EINVAL, "compare config: compare.ddpg_demand_pool must be -1 (demand_pool), 0, 1, 2 or 3, not %d",
                           c->ddpg_demand_pool);
    if (c->dqn_smooth_support != 0 && c->dqn_smooth_support != 1)
        return eng_err_set(ENG_EINVAL, "compare config: compare.dqn_smooth_support must be 0 or 1, not %d", c->dqn_smooth_support);
    if (c->agent_desc < 0 || c->agent_desc > FEAT_AGENT_DESC_MAX)
        return eng_err_set(ENG_EINVAL, "compare config: compare.agent_desc must be 0, 1 or 2, not %d", c->agent_desc);
    if (c->demand_pool < 0 || c->demand_pool > 3)
        return eng_err_set(ENG_EINVAL, "compare config: compare.demand_pool must be 0, 1, 2 or 3, not %d", c->demand_pool);
    if (c->uplift_ref < 0 || c->uplift_ref > 2)
        return eng_err_set(ENG_EINVAL, "compare config: compare.uplift_ref must be 0 (on-policy mean), 1 (DR) or 2 "
                                       "(incumbent price), not %d",
                           c->uplift_ref);
    if (c->min_history < 1 || c->fixed_min_support < 1 || c->group_size < 1 || c->dqn_steps < 0 ||
        c->ddpg_steps < 0 || c->linucb_passes < 0 || c->total_boot < 0)
        return eng_err_set(ENG_EINVAL, "compare config: min_history, fixed_min_support, group_size must be >= 1 and "
                                       "steps, linucb_passes, total_boot >= 0");
    if ((c->agent_state != 0 && c->agent_state != 1) || (c->shared != 0 && c->shared != 1) || (c->shared && !c->agent_state))
        return eng_err_set(ENG_EINVAL, "compare config: compare.agent_state and compare.shared must be 0 or 1, and "
                                       "shared = 1 needs agent_state = 1");
    if (c->shared_steps < 0 || c->shared_batch < 1 || c->shared_shards < 0 || c->ft_steps < 0 || !(c->val_frac >= 0 && c->val_frac < 1) ||
        c->es_every < 1 || c->es_patience < 1 || c->dqn_support < 0 || c->dqn_support > 2 ||
        (c->ddpg_support != 0 && c->ddpg_support != 1) || c->support_steps < 0 || c->support_steps > 100 ||
        c->dyna < 0 || c->dyna > 64 || c->dyna_max < 0 || (c->dyna_carry != 0 && c->dyna_carry != 1) ||
        (c->dyna_memory != 0 && c->dyna_memory != 1) || c->dyna_horizon < 1 || c->dyna_horizon > 60 ||
        !(c->dyna_kappa >= 0) || !isfinite(c->dyna_kappa) || !(c->dyna_real >= 0 && c->dyna_real <= 1) ||
        c->ensemble < 1 || c->ensemble > 16)
        return eng_err_set(ENG_EINVAL, "compare config: shared_steps, ft_steps, shared_shards >= 0, shared_batch, es_every, "
                                       "es_patience >= 1, val_frac in [0, 1), dqn_support 0..2, ddpg_support 0 or 1, "
                                       "support_steps 0..100, dyna 0..64, dyna_max >= 0, dyna_carry and dyna_memory 0 or 1, "
                                       "dyna_horizon 1..60, dyna_kappa >= 0, dyna_real in [0, 1], ensemble 1..16 needed");
    if ((c->refit != 0 && c->refit != 1) || !(c->refit_frac >= 0.0 && c->refit_frac <= 1.0) ||
        (c->refit_carry != 0 && c->refit_carry != 1) || (c->dyna_cut_standing != 0 && c->dyna_cut_standing != 1))
        return eng_err_set(ENG_EINVAL, "compare config: compare.refit, refit_carry and dyna_cut_standing must be 0 or 1 "
                                       "and compare.refit_frac in [0, 1]");
    if (!(c->hold_z >= 0) || !isfinite(c->hold_z))
        return eng_err_set(ENG_EINVAL, "compare config: compare.hold_z must be finite and >= 0");
    if (!(c->warm_frac >= 0.0 && c->warm_frac <= 1.0))
        return eng_err_set(ENG_EINVAL, "compare config: compare.warm_frac must be in [0, 1]");
    if (c->ope.n_boot < 0 || !(c->ope.alpha > 0 && c->ope.alpha < 1) || !(c->ope.gamma >= 0 && c->ope.gamma <= 1) ||
        c->ope.cross_folds < 1 || !(c->ope.ridge_lambda > 0))
        return eng_err_set(ENG_EINVAL, "compare config: ope.n_boot >= 0, 0 < ope.alpha < 1, ope.gamma in [0, 1], "
                                       "ope.cross_folds >= 1, ope.ridge_lambda > 0 needed");
    if (!(c->linucb.ridge > 0) || !(c->linucb.alpha >= 0))
        return eng_err_set(ENG_EINVAL, "compare config: linucb.ridge > 0 and linucb.alpha >= 0 needed");
    if (c->dqn.hidden1 < 1 || c->dqn.hidden2 < 1 || c->ddpg.hidden1 < 1 || c->ddpg.hidden2 < 1 ||
        c->dqn.batch < 1 || c->ddpg.batch < 1 || c->dqn.replay < 1 || c->ddpg.replay < 1)
        return eng_err_set(ENG_EINVAL, "compare config: dqn/ddpg hidden sizes, batch and replay must be >= 1");
    return 0;
}

/* ---- text dump -------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 1024) + (size_t)k;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
}

char *exp_compare_cfg_text(const exp_compare_cfg *cfg) {
    if (!cfg) {
        eng_err_set(ENG_EINVAL, "exp_compare_cfg_text: NULL");
        return NULL;
    }
    sbuf b = {0};
    char num[32];
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &fields[i];
        const char *base = (const char *)cfg + f->off;
        switch (f->type) {
        case T_INT: sb_printf(&b, "%s = %d\n", f->key, *(const int *)base); break;
        case T_LONG: sb_printf(&b, "%s = %ld\n", f->key, *(const long *)base); break;
        case T_U64: sb_printf(&b, "%s = %llu\n", f->key, (unsigned long long)*(const uint64_t *)base); break;
        case T_DOUBLE: sb_printf(&b, "%s = %s\n", f->key, eng_fmt_double(num, *(const double *)base)); break;
        case T_FLOAT: sb_printf(&b, "%s = %s\n", f->key, eng_fmt_float(num, *(const float *)base)); break;
        case T_DEVICE: sb_printf(&b, "%s = %s\n", f->key, cfg->device); break;
        case T_REWARD: sb_printf(&b, "%s = %s\n", f->key, env_reward_name(cfg->reward.kind)); break;
        case T_FALLBACK: sb_printf(&b, "%s = %s\n", f->key, env_fallback_name(cfg->reward.fallback)); break;
        case T_ENDINGS:
            sb_printf(&b, "%s = ", f->key);
            if (!cfg->guard.n_endings) sb_printf(&b, "none");
            for (int e = 0; e < cfg->guard.n_endings; e++)
                sb_printf(&b, "%s%d", e ? "," : "", cfg->guard.endings_cents[e]);
            sb_printf(&b, "\n");
            break;
        case T_CKPT: sb_printf(&b, "%s = %s\n", f->key, cfg->ckpt_dir ? cfg->ckpt_dir : "none"); break;
        case T_LINKIND: sb_printf(&b, "%s = disjoint\n", f->key); break;
        }
    }
    /* The feature layout is fixed (windows of 1/3/7 periods, moving averages of 3/12). */
    sb_printf(&b, "features.layout = %s\nfeatures.hash = %016llx\n", FEAT_LAYOUT_VERSION,
              (unsigned long long)feat_layout_get()->hash);
    int n;
    const agt_cfg_field *af = agt_dqn_fields(&n);
    char *s = agt_cfg_to_string(&cfg->dqn, af, n, "dqn");
    if (!s) b.oom = 1;
    else sb_printf(&b, "%s", s);
    free(s);
    af = agt_ddpg_fields(&n);
    s = agt_cfg_to_string(&cfg->ddpg, af, n, "ddpg");
    if (!s) b.oom = 1;
    else sb_printf(&b, "%s", s);
    free(s);
    if (b.oom) {
        free(b.p);
        eng_err_set(ENG_ENOMEM, "exp_compare_cfg_text: out of memory");
        return NULL;
    }
    return b.p;
}
