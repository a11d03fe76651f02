/* tests/test_demand_rows.h - the simulated transitions of one product that the agents' demand
 * model suites share (test_agt_learn, test_exp_compare_real): daily rows logged at six levels
 * 0.85..1.15 x ref, conversion logistic(a + b (p / ref - 1)).  Include after test_common.h and
 * feat.h (FEAT_*), with eng_rng.h. */
#ifndef TEST_DEMAND_ROWS_H
#define TEST_DEMAND_ROWS_H

#include <math.h>
#include <string.h>

/* n rows into the caller's arrays (s1, s2: n x FEAT_N; price: n; truth: n or NULL): s1 the states
 * before (the previous period's price), s2 the priced periods' outcomes (units, revenue and the
 * traffic `traffic`; traffic 0 means a shop without traffic: the feature stays 0 and the units
 * are drawn as for 800 visitors), truth[i] the expected revenue per visitor of the logged price.
 * Units are a rounded normal approximation of the binomial, at least 0. */
static inline void tdr_rows(float *s1, float *s2, float *price, double *truth, int n, double ref, double a, double b,
                            double traffic, eng_rng *r) {
    memset(s1, 0, (size_t)n * FEAT_N * sizeof *s1);
    memset(s2, 0, (size_t)n * FEAT_N * sizeof *s2);
    for (int i = 0; i < n; i++) {
        const double p = ref * (0.85 + 0.06 * (int)(eng_rng_uniform(r) * 6));
        const double q = 1.0 / (1.0 + exp(-(a + b * (p / ref - 1)))), mu = (traffic > 0 ? traffic : 800) * q;
        double u = floor(mu + sqrt(mu * (1 - q)) * eng_rng_normal(r) + 0.5);
        if (u < 0) u = 0;
        float *y = s2 + (size_t)i * FEAT_N;
        y[FEAT_TRAFFIC_1] = (float)traffic, y[FEAT_UNITS_1] = (float)u, y[FEAT_REVENUE_1] = (float)(u * p);
        y[FEAT_PRICE_CUR] = (float)p;
        price[i] = (float)p;
        if (truth) truth[i] = p * q;
        s1[(size_t)i * FEAT_N + FEAT_PRICE_CUR] = i ? price[i - 1] : (float)ref;
    }
}

#endif
