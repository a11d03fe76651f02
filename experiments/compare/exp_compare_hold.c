/* exp_compare_hold.c - compare.hold_z: the agents' next price holds the incumbent unless the
 * ensemble's members agree that the move pays (docs/compare.md, "Hold unless the members
 * agree").  The members of compare.ensemble are trained on the same rows from their own random
 * streams, so their spread is the noise of one training run; a move whose advantage lies
 * within that spread is noise, and on a loss-averse market every move costs. */
#include <math.h>

#include "exp_compare_int.h"

/* Mean and standard deviation (n - 1) of x [n], n >= 2. */
static void hold_moments(const double *x, int n, double *mean, double *sd) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = sqrt(v / (n - 1));
}

/* Whether the rule applies to act at all: hold_z > 0, at least two members. */
static int hold_on(const cmp_ctx *c, const cmp_actions *act) {
    return c->cfg->hold_z > 0 && act->ens_E >= 2 && act->ens_E <= CMP_ENS_MAX;
}

int cmp_hold_dqn(const cmp_ctx *c, const cmp_actions *act, int t, int level, double u) {
    if (!hold_on(c, act) || !act->ens_q || !(u > 0) || !isfinite(u)) return 0;
    const int K = c->K, E = act->ens_E;
    const double step = 2.0 * c->cfg->grid.band / (K - 1);
    double f = (u - (1.0 - c->cfg->grid.band)) / step; /* the incumbent's fractional level */
    f = f < 0 ? 0 : f > K - 1 ? K - 1 : f;
    const int k0 = (int)floor(f) < K - 1 ? (int)floor(f) : K - 2;
    const double w = f - k0;
    double adv[CMP_ENS_MAX], mean, sd;
    for (int e = 0; e < E; e++) {
        const float *q = act->ens_q + (size_t)e * act->ens_q_stride + (size_t)t * K;
        adv[e] = (double)q[level] - ((1 - w) * q[k0] + w * q[k0 + 1]);
    }
    hold_moments(adv, E, &mean, &sd);
    return !(mean > c->cfg->hold_z * sd); /* a non-finite member output holds */
}

int cmp_hold_ddpg(const cmp_ctx *c, const cmp_actions *act, int t, double u) {
    if (!hold_on(c, act) || !act->ens_a || !(u > 0) || !isfinite(u)) return 0;
    const int E = act->ens_E;
    const double band = (float)cmp_ddpg_band(c->cfg); /* the DDPG's band (cmp_group_create_agents) */
    double step[CMP_ENS_MAX], mean, sd;
    for (int e = 0; e < E; e++) step[e] = 1.0 + band * act->ens_a[(size_t)e * act->ens_a_stride + t] - u;
    hold_moments(step, E, &mean, &sd);
    return !(fabs(mean) > c->cfg->hold_z * sd); /* a non-finite member output holds */
}
