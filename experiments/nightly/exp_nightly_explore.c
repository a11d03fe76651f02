/* exp_nightly_explore.c - logged exploration: a step of its own after the nightly's decisions
 * (see exp_nightly_explore in exp_nightly.h and docs/nightly.md, "Logged exploration").
 *
 * The decision (the gate) chooses one price per product.  Exploration then, for a budgeted
 * share of the products, pushes a neighbouring price instead, drawn from a known distribution,
 * and records that distribution with the push (price_recommendations.propensity,
 * support_prices, support_probs), so that OPE can later use the exact propensity of the rows
 * it produced (docs/ope.md, "Logged propensities"). */
#include "exp_nightly_explore.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_hash.h"
#include "eng_rng.h"
#include "eng_util.h"
#include "env_action.h"
#include "feat_demand.h"

/* The engine's demand estimate of one product: the product's demand model (feat_demand.h, the
 * one the gate and the agents' model-based transitions use) in a normal period now. */
typedef struct expl_demand {
    feat_demand m;
    feat_demand_ctx now;
} expl_demand;

/* Fit product p's demand model at price scale inc (> 0) over its present periods into *m;
 * m->m.ok = 0 when it could not be fitted (too few rows, no sales); prior: the night's pooled slope
 * prior (feat_demand.h).  0 or ENG_ENOMEM. */
static int demand_fit(const db_history *h, int p, double inc, const feat_demand_prior *prior, expl_demand *m) {
    feat_demand_row *rows = eng_malloc((size_t)(h->n_periods > 0 ? h->n_periods : 1) * sizeof *rows);
    memset(m, 0, sizeof *m);
    if (!rows) return ENG_ENOMEM;
    size_t n = 0;
    feat_demand_rows_history(h, p, inc, inc, rows, &n, &m->now);
    if (feat_demand_fit_prior(&m->m, rows, n, inc, -1, prior)) {
        eng_err_clear();
        m->m.ok = 0;
    }
    free(rows);
    return ENG_OK;
}

/* Expected revenue per period at price q (0 without a usable fit). */
static double demand_revenue(const expl_demand *m, double q) {
    const double r = feat_demand_rate(&m->m, q, &m->now, 0.0, NULL);
    return isfinite(r) ? r * m->m.traffic_mean : 0.0;
}

/* A float setting as the decimal a team typed (0.2f -> 0.2, not 0.20000000298...), so the
 * logged probabilities are the ones set. */
static double setting(float x) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

/* Neighbouring prices of product p's decided price d->price: the grid levels j = 1, 2, ... on
 * either side (steps of 2 band / (K - 1) of the reference price), each through the deployment's
 * guardrails (bounds, change limit from the incumbent, margin, price band, endings), kept when
 * the guarded price differs from the decided one and from every kept price by a cent and lies
 * within max_step of the decided price.  Returns the number m (<= 2 EXP_EXPLORE_MAX_SIDE) written
 * to nb[]. */
static int neighbours(const exp_nightly_cfg *cfg, const db_history *h, int p, const exp_nightly_decision *d,
                      double *nb) {
    double ref = NAN;
    if (env_reference_price(h, p, &ref, NULL) != ENG_OK) {
        eng_err_clear();
        return 0;
    }
    const env_grid *g = &cfg->compare.grid;
    const double step = ref * 2.0 * g->band / (g->K - 1), p0 = d->price, lim = setting(cfg->explore.max_step) * p0 + 1e-9;
    env_guard_bounds b = env_guard_bounds_band(h, p, d->incumbent, g);
    int m = 0;
    for (int side = -1; side <= 1; side += 2) {
        int taken = 0;
        for (int j = 1; j <= 4 * EXP_EXPLORE_MAX_SIDE && taken < EXP_EXPLORE_MAX_SIDE; j++) {
            double cand = p0 + side * j * step, q = NAN;
            if (!(cand > 0) || fabs(cand - p0) > lim + step) break; /* past the largest step */
            if (env_guard_apply(&cfg->compare.guard, &b, cand, &q, NULL, NULL, NULL)) {
                eng_err_clear();
                break;
            }
            if (!(q > 0) || fabs(q - p0) < 0.005 || fabs(q - p0) > lim || (q - p0) * side < 0) continue;
            int dup = 0;
            for (int k = 0; k < m; k++) dup |= fabs(nb[k] - q) < 0.005;
            if (dup) continue;
            nb[m++] = q;
            taken++;
        }
    }
    return m;
}

/* The per-product stream: the run's seed, the date and the product id (FNV-1a). */
static uint64_t product_seed(const exp_nightly_cfg *cfg, const char *id) {
    const uint64_t hsh = eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, id);
    return eng_seed_derive(eng_seed_derive(cfg->compare.seed ^ 0x6578706c6f7265ULL /* "explore" */, (uint64_t)(uint32_t)cfg->date),
                           hsh);
}

/* d is pushed at neighbour k of it, drawn with probability prop: its price, propensity and
 * expected cost (the engine's estimate), the reason's label, and the summary's count and cost. */
static void explored_at(const exp_explore_cand *it, int k, double prop, const char *label, exp_nightly_decision *d,
                        exp_explore_summary *s) {
    d->explored = 1;
    d->price = it->nb[k];
    d->propensity = prop;
    d->explore_cost = it->r0 - it->r[k];
    s->n_explored++;
    s->cost += d->explore_cost;
    size_t len = strlen(d->reason);
    snprintf(d->reason + len, sizeof d->reason - len, "%s", label);
}

/* Draw product i's price (item it, probability q) into d; updates the summary. */
static void draw_one(const exp_nightly_cfg *cfg, const char *id, const exp_explore_cand *it, double q, exp_nightly_decision *d,
                     exp_explore_summary *s) {
    eng_rng rng;
    eng_rng_seed(&rng, product_seed(cfg, id));
    const double u = eng_rng_uniform(&rng);
    const int k = (int)eng_rng_below(&rng, (uint64_t)it->m); /* drawn either way: one stream shape */
    const int keep = q < 1; /* q = 1: the decided price cannot be drawn, so it is not in the support */
    d->n_support = keep + it->m;
    d->support_price[0] = d->decided_price;
    d->support_prob[0] = 1.0 - q;
    for (int j = 0; j < it->m; j++) d->support_price[keep + j] = it->nb[j], d->support_prob[keep + j] = q / it->m;
    if (!(u < q)) {
        d->propensity = d->support_prob[0];
        return;
    }
    explored_at(it, k, d->support_prob[keep + k], "|explore", d, s);
}

/* Thompson mode: draw product i's price from {decided: 1 - q + q w0, nb[k]: q w[k]} (one uniform
 * of the product's stream) into d; updates the summary. */
static void draw_thompson(const exp_nightly_cfg *cfg, const char *id, const exp_explore_cand *it, double q,
                          exp_nightly_decision *d, exp_explore_summary *s) {
    eng_rng rng;
    eng_rng_seed(&rng, product_seed(cfg, id));
    const double u = eng_rng_uniform(&rng), pd = 1.0 - q + q * it->w0;
    int n = 0, pick = -1; /* -1: the decided price */
    if (pd > 0) d->support_price[n] = d->decided_price, d->support_prob[n] = pd, n++;
    for (int k = 0; k < it->m; k++) d->support_price[n] = it->nb[k], d->support_prob[n] = q * it->w[k], n++;
    if (!(u < pd)) { /* inverse CDF over the neighbours (the last one takes any rounding left) */
        double acc = pd;
        pick = it->m - 1;
        for (int k = 0; k < it->m; k++)
            if (u < (acc += q * it->w[k])) {
                pick = k;
                break;
            }
    }
    d->n_support = n;
    if (pick < 0) {
        d->propensity = pd;
        return;
    }
    explored_at(it, pick, q * it->w[pick], "|explore:thompson", d, s);
}

int exp_explore_candidate(const exp_nightly_cfg *cfg, const db_history *h, int p, const exp_nightly_decision *d,
                          exp_explore_cand *c) {
    memset(c, 0, sizeof *c);
    c->carry = -1;
    c->kind = EXP_EXPLORE_NONE;
    if (p < 0 || p >= h->n_products || !(isfinite(d->price) && d->price > 0)) return ENG_OK;
    expl_demand m;
    int st = demand_fit(h, p, d->incumbent > 0 ? d->incumbent : d->price, &cfg->compare.demand_prior, &m);
    if (st) return st;
    c->r0 = demand_revenue(&m, d->price);
    c->kind = EXP_EXPLORE_FAILED;
    if (d->failed) return ENG_OK;
    c->kind = EXP_EXPLORE_PINNED;
    if (h->explore_off && h->explore_off[p]) return ENG_OK;
    c->kind = EXP_EXPLORE_NO_NEIGHBOUR;
    if (cfg->explore.held_only && d->hold < 0) return ENG_OK; /* moved by the gate: pushed as decided */
    if (cfg->explore.mode == EXP_EXPLORE_THOMPSON) c->m = exp_explore_thompson(cfg, h, p, d, &c->w0, c->nb, c->w, &c->carry);
    else {
        c->m = neighbours(cfg, h, p, d, c->nb);
        for (int k = 0; k < c->m; k++) c->w[k] = 1.0 / c->m;
    }
    if (c->m == 0) return ENG_OK;
    c->kind = EXP_EXPLORE_ELIGIBLE;
    for (int k = 0; k < c->m; k++) {
        c->r[k] = demand_revenue(&m, c->nb[k]);
        c->cost += fmax(c->r0 - c->r[k], 0.0) * c->w[k]; /* a neighbour that looks better funds nothing */
    }
    return ENG_OK;
}

int exp_explore_apply(const exp_nightly_cfg *cfg, const exp_results *res, const exp_explore_cand *cand,
                      exp_nightly_decision *d, int n, exp_explore_summary *out) {
    exp_explore_summary s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < n; i++) {
        d[i].decided_price = d[i].price;
        d[i].propensity = 1.0;
        d[i].n_support = 0;
        d[i].explored = 0;
        d[i].explore_cost = 0;
    }
    s.on = cfg->explore.share > 0;
    if (!s.on) {
        if (out) *out = s;
        return ENG_OK;
    }
    double cost_sum = 0; /* summed in catalogue order, whichever process made the candidates */
    int n_tested = 0, n_carry = 0;
    for (int i = 0; i < n; i++) {
        const exp_explore_cand *c = &cand[i];
        if (c->kind == EXP_EXPLORE_NONE) continue;
        if (c->carry >= 0) n_tested++, n_carry += c->carry;
        s.revenue += c->r0;
        if (c->kind == EXP_EXPLORE_PINNED) s.n_pinned++;
        else if (c->kind == EXP_EXPLORE_NO_NEIGHBOUR) s.n_no_neighbour++;
        else if (c->kind == EXP_EXPLORE_ELIGIBLE) {
            s.n_eligible++;
            cost_sum += c->cost;
        }
    }
    /* the budget: q x expected cost <= max_cost x the night's expected revenue */
    double q = setting(cfg->explore.share);
    const double budget = setting(cfg->explore.max_cost) * s.revenue;
    if (cost_sum > 0 && q * cost_sum > budget) q = budget / cost_sum;
    if (q > 1) q = 1;
    s.n_carry_tested = n_tested, s.n_carry = n_carry;
    const float cs = cfg->explore.carryover_share;
    if (cs > 0 && cfg->explore.mode == EXP_EXPLORE_THOMPSON && n_tested > 0) {
        const int off = n_carry > setting(cs) * n_tested;
        ENG_INFO("nightly: exploration: %d of %d fitted products show carry-over (limit %.3g of them)%s", n_carry, n_tested,
                 setting(cs), off ? ": no draws tonight" : "");
        if (off) q = 0;
    }
    s.prob = q;
    s.cost_expected = q * cost_sum;
    for (int i = 0; i < n && q > 0; i++)
        if (cand[i].kind == EXP_EXPLORE_ELIGIBLE && cfg->explore.mode == EXP_EXPLORE_THOMPSON)
            draw_thompson(cfg, res->products[i].product_id, &cand[i], q, &d[i], &s);
        else if (cand[i].kind == EXP_EXPLORE_ELIGIBLE) draw_one(cfg, res->products[i].product_id, &cand[i], q, &d[i], &s);
    s.cost_share = s.revenue > 0 ? s.cost / s.revenue : NAN;
    ENG_INFO("nightly: exploration: %d of %d eligible products explored (probability %.4g; %d pinned, %d without a "
             "neighbour inside the guardrails); expected revenue given up %.4g per period, %.3f%% of %.4g (budget %.3f%%)",
             s.n_explored, s.n_eligible, s.prob, s.n_pinned, s.n_no_neighbour, s.cost, 100.0 * s.cost_share, s.revenue,
             100.0 * cfg->explore.max_cost);
    if (out) *out = s;
    return ENG_OK;
}

int exp_nightly_explore(const exp_nightly_cfg *cfg, const db_history *h, const exp_results *res,
                        exp_nightly_decision *d, int n, exp_explore_summary *out) {
    exp_explore_cand *cand = eng_calloc((size_t)(n > 0 ? n : 1), sizeof *cand);
    int st = cand ? ENG_OK : ENG_ENOMEM;
    for (int i = 0; !st && cfg->explore.share > 0 && i < n; i++)
        st = exp_explore_candidate(cfg, h, res->products[i].index, &d[i], &cand[i]);
    if (!st) st = exp_explore_apply(cfg, res, cand, d, n, out);
    free(cand);
    return st;
}

int exp_nightly_explore_step(const exp_nightly_cfg *cfg, const exp_explore_cand *cand, exp_results *res,
                             exp_nightly_decision *d, db_recommendation *recs, const exp_nightly_decision *const *rdec,
                             size_t nrec, exp_explore_summary *out) {
    int st = exp_explore_apply(cfg, res, cand, d, res->n_products, out);
    if (st) return st;
    res->explore_on = out->on; /* for the report */
    res->n_explore_eligible = out->n_eligible;
    res->n_explored = out->n_explored;
    res->explore_prob = out->prob;
    res->explore_cost = out->cost;
    res->explore_cost_share = out->cost_share;
    for (size_t j = 0; j < nrec; j++) {
        const exp_nightly_decision *dj = rdec[j];
        db_recommendation *rc = &recs[j];
        rc->price = dj->price;
        rc->decided_price = dj->decided_price;
        rc->propensity = dj->propensity;
        rc->n_support = dj->n_support;
        rc->support_price = dj->support_price;
        rc->support_prob = dj->support_prob;
    }
    return ENG_OK;
}

static json_object *jnum(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

/* A price as the exact decimal the database holds (db_price_format). */
static json_object *jprice(double v, int scale) {
    char t[48];
    return isfinite(v) ? json_object_new_double_s(v, db_price_format(t, sizeof t, v, scale)) : NULL;
}

json_object *exp_explore_summary_json(const exp_explore_summary *s) {
    json_object *ex = json_object_new_object();
    json_object_object_add(ex, "on", json_object_new_boolean(s->on));
    json_object_object_add(ex, "n_eligible", json_object_new_int(s->n_eligible));
    json_object_object_add(ex, "n_explored", json_object_new_int(s->n_explored));
    json_object_object_add(ex, "n_pinned", json_object_new_int(s->n_pinned));
    json_object_object_add(ex, "n_no_neighbour", json_object_new_int(s->n_no_neighbour));
    json_object_object_add(ex, "probability", jnum(s->prob));
    json_object_object_add(ex, "expected_revenue", jnum(s->revenue));
    json_object_object_add(ex, "cost", jnum(s->cost));
    json_object_object_add(ex, "cost_share", jnum(s->cost_share));
    json_object_object_add(ex, "cost_expected", jnum(s->cost_expected));
    return ex;
}

void exp_explore_decision_json(json_object *o, const exp_nightly_decision *d, int scale) {
    json_object_object_add(o, "decided_price", jprice(d->decided_price, scale));
    json_object_object_add(o, "explored", json_object_new_boolean(d->explored));
    json_object_object_add(o, "propensity", json_object_new_double(d->propensity));
    json_object *sp = json_object_new_array(), *sq = json_object_new_array();
    for (int k = 0; k < (d->n_support ? d->n_support : 1); k++) {
        json_object_array_add(sp, jprice(d->n_support ? d->support_price[k] : d->price, scale));
        json_object_array_add(sq, json_object_new_double(d->n_support ? d->support_prob[k] : 1.0));
    }
    json_object_object_add(o, "support_prices", sp);
    json_object_object_add(o, "support_probs", sq);
    if (d->explored) json_object_object_add(o, "explore_cost_per_period", jnum(d->explore_cost));
}

void exp_explore_cfg_text(const exp_explore_cfg *x, char *buf, size_t n) {
    size_t o = 0;
    if (!n) return;
    buf[0] = '\0';
    o += (size_t)snprintf(buf, n, "nightly.explore.share = %g\nnightly.explore.max_step = %g\nnightly.explore.max_cost = %g\n%s",
                          x->share, x->max_step, x->max_cost, x->mode == EXP_EXPLORE_THOMPSON ? "nightly.explore.mode = 1\n" : "");
    if (o < n && x->temper > 0 && x->temper != 1.0f)
        o += (size_t)snprintf(buf + o, n - o, "nightly.explore.temper = %g\n", x->temper);
    if (o < n && (x->skip_carryover || x->carryover_share > 0))
        o += (size_t)snprintf(buf + o, n - o, "nightly.explore.skip_carryover = %d\nnightly.explore.carryover_share = %g\n"
                              "nightly.explore.carryover_z = %g\n", x->skip_carryover, x->carryover_share, x->carryover_z);
    if (o < n && x->held_only) o += (size_t)snprintf(buf + o, n - o, "nightly.explore.held_only = %d\n", x->held_only);
    if (o < n && x->no_lag) snprintf(buf + o, n - o, "nightly.explore.no_lag = %d\n", x->no_lag);
}
