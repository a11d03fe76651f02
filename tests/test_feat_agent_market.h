/* tests/test_feat_agent_market.h - the small market the agent-state suites share
 * (test_feat_agent_desc, test_feat_agent_best): a product whose conversion per visitor is a logit
 * of its price (slope bp on p / ref - 1) and of the competitors' mean price, its logged rows and a
 * raw state.  Include after test_common.h, eng_rng.h and feat_agent.h. */
#ifndef TEST_FEAT_AGENT_MARKET_H
#define TEST_FEAT_AGENT_MARKET_H

#define N 240
#define REF 10.0
#define TRAFFIC 2000.0
#define A0 -1.0 /* conversion ~27% at the reference price */
#define BC 3.0  /* competitors: log(mean competitor price / ref) */

/* The true conversion at price p, competitors' mean price comp, price slope bp. */
static inline double tfm_conv(double p, double comp, double bp) {
    return 1.0 / (1.0 + exp(-(A0 + bp * (p / REF - 1) + BC * log(comp / REF))));
}

/* N transitions: prices on six levels 0.85..1.15 x ref, the competitors' mean price uniform in
 * 0.85..1.15 x ref, units a rounded normal approximation of the binomial.  s1 the states before
 * (the previous price), s2 the priced periods' outcomes with their competitor ratio; the caller
 * owns s1 / s2 [N x FEAT_N] and price [N]. */
static inline void tfm_rows(float *s1, float *s2, float *price, eng_rng *r, double bp) {
    memset(s1, 0, (size_t)N * FEAT_N * sizeof *s1);
    memset(s2, 0, (size_t)N * FEAT_N * sizeof *s2);
    for (int i = 0; i < N; i++) {
        const double p = REF * (0.85 + 0.06 * (int)(eng_rng_uniform(r) * 6));
        const double cm = REF * (0.85 + 0.3 * eng_rng_uniform(r)), q = tfm_conv(p, cm, bp), mu = TRAFFIC * q;
        double u = floor(mu + sqrt(mu * (1 - q)) * eng_rng_normal(r) + 0.5);
        if (u < 0) u = 0;
        float *y = s2 + (size_t)i * FEAT_N;
        y[FEAT_TRAFFIC_1] = (float)TRAFFIC, y[FEAT_UNITS_1] = (float)u, y[FEAT_REVENUE_1] = (float)(u * p);
        y[FEAT_PRICE_CUR] = (float)p, y[FEAT_COMP_REL_MEAN] = (float)(p / cm), y[FEAT_COMP_REL_MIN] = (float)(p / cm);
        price[i] = (float)p;
        float *x = s1 + (size_t)i * FEAT_N;
        x[FEAT_PRICE_CUR] = i ? price[i - 1] : (float)REF;
        x[FEAT_COMP_MISSING] = 1.0f;
    }
}

/* A raw state: incumbent inc, moving averages ma3 / ma12, competitors' mean price cm. */
static inline void tfm_state(float *raw, double inc, double ma3, double ma12, double cm) {
    memset(raw, 0, FEAT_N * sizeof *raw);
    raw[FEAT_PRICE_CUR] = (float)inc, raw[FEAT_PRICE_MA3] = (float)ma3, raw[FEAT_PRICE_MA12] = (float)ma12;
    raw[FEAT_TRAFFIC_1] = (float)TRAFFIC, raw[FEAT_TRAFFIC_7] = (float)(7 * TRAFFIC);
    raw[FEAT_UNITS_1] = 300, raw[FEAT_REVENUE_1] = (float)(300 * inc);
    raw[FEAT_UNITS_7] = 2100, raw[FEAT_REVENUE_7] = (float)(2100 * inc);
    raw[FEAT_COMP_REL_MEAN] = (float)(inc / cm), raw[FEAT_COMP_REL_MIN] = (float)(inc / cm);
    raw[FEAT_DOW_SIN] = 0.3f;
}

#endif
