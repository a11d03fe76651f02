/* env_sim_family.c - demand families of the backtest and the truth they value prices with
 * (env_sim.h, docs/simulator.md "Demand families"). */
#include "env_sim.h"

#include <math.h>
#include <string.h>

static const char *const family_names[ENV_SIM_FAMILY_COUNT] = {"preset", "logit", "ce", "ref"};

/* Static name or NULL. */
const char *env_sim_family_name(env_sim_family f) {
    return f >= 0 && f < ENV_SIM_FAMILY_COUNT ? family_names[f] : NULL;
}

/* 0 or ENG_EINVAL naming the value. */
int env_sim_family_parse(const char *s, env_sim_family *out) {
    for (int f = 0; s && f < ENV_SIM_FAMILY_COUNT; f++)
        if (!strcmp(s, family_names[f])) {
            *out = (env_sim_family)f;
            return ENG_OK;
        }
    return eng_err_set(ENG_EINVAL, "unknown demand family '%s' (preset, logit, ce, ref)", s ? s : "(null)");
}

static double unif(eng_rng *r, double a, double b) { return a + (b - a) * eng_rng_uniform(r); }

/* Draws from the family's own stream (seed, i, 5) so the preset's draw stays as it was. 0 or
 * ENG_EINVAL. */
int env_sim_family_apply(env_sim_family f, double misset_lo, double misset_hi, uint64_t seed, int i, env_sim_params *p) {
    if (f <= ENV_SIM_FAMILY_NONE || f >= ENV_SIM_FAMILY_COUNT)
        return eng_err_set(ENG_EINVAL, "env_sim_family_apply: bad family %d", (int)f);
    if (!(misset_lo > 0) || !(misset_hi >= misset_lo) || !isfinite(misset_hi))
        return eng_err_set(ENG_EINVAL, "env_sim_family_apply: need 0 < misset_lo <= misset_hi");
    eng_rng r;
    eng_rng_seed(&r, eng_seed_derive(eng_seed_derive(seed, (uint64_t)i), 5));
    p->promo_lift = 0;
    p->promo_threshold = 0.5; /* the history never flags a promotion */
    p->log_uniform = 1;
    p->ref0 = 1.0;
    if (f == ENV_SIM_FAMILY_CE) {
        p->demand = ENV_SIM_DEMAND_CE;
        p->elasticity = -unif(&r, 0.3, 2.5);
        p->conv_base = log(unif(&r, 0.01, 0.08));
        p->ref_gain = p->ref_loss = 0;
        return env_sim_params_check(p);
    }
    /* logit linear in x = p / p0: the optimum x* solves 1 + b x* (1 - q*) = 0; with x* = 1 / m
     * (p0 = m p*) and q* drawn, b = -m / (1 - q*) and a = logit(q*) - b (x* - 1) */
    double m = unif(&r, misset_lo, misset_hi), qs = unif(&r, 0.02, 0.08);
    p->demand = ENV_SIM_DEMAND_LOGIT;
    p->elasticity = -m / (1 - qs);
    p->conv_base = log(qs / (1 - qs)) - p->elasticity * (1.0 / m - 1.0);
    if (f == ENV_SIM_FAMILY_LOGIT) p->ref_gain = p->ref_loss = 0;
    return env_sim_params_check(p);
}

double env_sim_rpv(const env_sim_params *p, double price, double ref, double cbar) {
    return env_sim_purchase_prob(p, price, ref, cbar) * price;
}

/* The whole-cent argmax of f over [lo, hi] (env_sim.h).  Both ends first, then every cent inside
 * in ascending order (a stride of whole cents past max_cents of them); ties keep the first;
 * non-finite values are skipped.  0 or ENG_EINVAL. */
int env_sim_cent_argmax(double lo, double hi, long max_cents, double (*f)(double price, void *ctx), void *ctx,
                        double *best_price, double *best_value) {
    if (!(lo > 0) || !(hi >= lo) || !isfinite(hi))
        return eng_err_set(ENG_EINVAL, "env_sim_cent_argmax: bad interval [%g, %g]", lo, hi);
    double bp = lo, bv = -INFINITY, v; /* non-finite values never win */
    if (isfinite(v = f(lo, ctx))) bv = v;
    if (isfinite(v = f(hi, ctx)) && v > bv) bp = hi, bv = v;
    const long long c0 = (long long)ceil(lo * 100 - 1e-9), c1 = (long long)floor(hi * 100 + 1e-9);
    const long long step = max_cents > 0 && c1 - c0 > max_cents ? (c1 - c0) / max_cents + 1 : 1;
    for (long long c = c0; c <= c1; c += step)
        if (isfinite(v = f(c / 100.0, ctx)) && v > bv) bp = c / 100.0, bv = v;
    if (!isfinite(bv)) return eng_err_set(ENG_EINVAL, "env_sim_cent_argmax: no finite value in [%g, %g]", lo, hi);
    *best_price = bp;
    *best_value = bv;
    return ENG_OK;
}

typedef struct { const env_sim_params *p; double ref, cbar; } rpv_at;
static double rpv_of(double price, void *ctx) {
    const rpv_at *a = ctx;
    return env_sim_rpv(a->p, price, a->ref, a->cbar);
}

/* The truth's best price (env_sim.h); 0 or ENG_EINVAL. */
int env_sim_best_price(const env_sim_params *p, double ref, double cbar, double lo, double hi, double *best_price,
                       double *best_rpv) {
    rpv_at a = {p, ref, cbar};
    return env_sim_cent_argmax(lo, hi, 20000, rpv_of, &a, best_price, best_rpv);
}
