/* exp_compare_fqe.c - Fitted Q Evaluation of every agent's long-term value inside the comparison
 * (docs/compare.md, "Long-term value: FQE").
 *
 * After every product has been evaluated (its guarded price per period is in
 * res->products[p].agent_price), the products chosen for FQE (all, or a seeded random sample of
 * compare.fqe_products) are evaluated in chunks of compare.fqe_chunk products (0: group_size):
 *   - the four discrete policies (history, fixed, LinUCB, DQN) in ONE ope_fqe_estimate call with
 *     4 x chunk networks (K outputs each): history's target is the behaviour distribution at the
 *     next state, the others the one-hot at their guarded level for the next period;
 *   - DDPG in a second call with continuous actions: (ratio - 1) / band of the guarded price.
 * Data: every logged transition of the product (training and evaluation window: Q^pi is a
 * property of the logged dynamics and the target policy, more rows fit it better); the value is
 * the mean of V^pi over the states that start the product's evaluation episodes, the same
 * starting points as PDIS/WPDIS.  No per-product interval (n_boot 0 by default: each refit costs
 * a whole fit); the total's interval is the bootstrap over products. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_compare_int.h"

#define N_DISC 4 /* history, fixed, linucb, dqn */

/* Level and centred ratio ((ratio - 1) / band) of agent a's guarded price in period t (t == T:
 * the next period's price).  Returns 0, or -1 when there is no price (then the logged level). */
static int agent_action(const cmp_ctx *c, const exp_product_result *pr, int a, int t, double ref, int *level,
                        float *cont) {
    double price = t >= c->T ? pr->price[a] : (double)pr->agent_price[a][t], ratio = 1;
    if (!(price > 0) || !isfinite(price) || env_grid_map_price(&c->cfg->grid, price, ref, level, &ratio, NULL)) {
        eng_err_clear();
        return -1;
    }
    *cont = (float)((ratio - 1.0) / c->cfg->grid.band);
    return 0;
}

/* 1 when product p takes part in FQE: in the totals and with evaluation rows. */
static int fqe_eligible(const cmp_ctx *c, int p) {
    const exp_product_result *pr = &c->res->products[p];
    if (pr->status != EXP_OK && pr->status != EXP_DIVERGED) return 0;
    return c->has_eval[p]; /* its owner's rows (exchanged under MPI) */
}

typedef struct fqe_buf {
    float *s, *s_next, *s0, *acont, *tnext, *t0;
    double *reward, *pi_next, *pi0;
    unsigned char *done, *valid;
    int *action;
    ope_result *out;
} fqe_buf;

static void buf_free(fqe_buf *b) {
    free(b->s);
    free(b->s_next);
    free(b->s0);
    free(b->acont);
    free(b->tnext);
    free(b->t0);
    free(b->reward);
    free(b->pi_next);
    free(b->pi0);
    free(b->done);
    free(b->valid);
    free(b->action);
    free(b->out);
    memset(b, 0, sizeof *b);
}

/* The chunk's row count n (the largest transition count) and n0 (the largest number of
 * evaluation episodes). */
static void fqe_sizes(const cmp_ctx *c, const int *prod, int m, int *n_out, int *n0_out) {
    int n = 1, n0 = 1;
    for (int i = 0; i < m; i++) {
        int p = prod[i], e = 0, prev_t = -2, prev_done = 1;
        size_t cnt = c->off[p + 1] - c->off[p];
        if ((int)cnt > n) n = (int)cnt;
        for (size_t r = c->off[p]; r < c->off[p + 1]; r++) {
            if (!cmp_is_eval(c, r)) continue;
            if (prev_done || c->tr->t[r] != prev_t + 1) e++;
            prev_t = c->tr->t[r];
            prev_done = c->tr->done[r];
        }
        if (e > n0) n0 = e;
    }
    *n_out = n;
    *n0_out = n0;
}

/* The chunk's arrays (PD = N_DISC * m networks).  Returns 0 or ENG_ENOMEM (b partly filled:
 * buf_free). */
static int buf_alloc(fqe_buf *b, size_t PD, int m, int n, int n0, int F, int K) {
    b->s = calloc(PD * n * F, sizeof *b->s);
    b->s_next = calloc(PD * n * F, sizeof *b->s_next);
    b->s0 = calloc(PD * n0 * F, sizeof *b->s0);
    b->reward = calloc(PD * n, sizeof *b->reward);
    b->done = calloc(PD * n, sizeof *b->done);
    b->valid = calloc(PD * n, sizeof *b->valid);
    b->action = calloc(PD * n, sizeof *b->action);
    b->pi_next = calloc(PD * n * K, sizeof *b->pi_next);
    b->pi0 = calloc(PD * n0 * K, sizeof *b->pi0);
    b->acont = calloc((size_t)m * n, sizeof *b->acont);
    b->tnext = calloc((size_t)m * n, sizeof *b->tnext);
    b->t0 = calloc((size_t)m * n0, sizeof *b->t0);
    b->out = calloc(PD, sizeof *b->out);
    if (!b->s || !b->s_next || !b->s0 || !b->reward || !b->done || !b->valid || !b->action || !b->pi_next ||
        !b->pi0 || !b->acont || !b->tnext || !b->t0 || !b->out)
        return eng_err_set(ENG_ENOMEM, "compare: out of memory (FQE)");
    return ENG_OK;
}

/* Product prod[i]'s rows (slot i of every network, n rows, n0 initial states) into b: the
 * logged transitions, each discrete policy's target at s' and at the initial states, DDPG's
 * centred ratios.  Returns 0 or ENG_EINVAL (no reference price). */
static int fqe_fill(const cmp_ctx *c, const fqe_buf *bp, const int *prod, int m, int i, int n, int n0) {
    const int F = c->F, K = c->K;
    const exp_compare_cfg *cfg = c->cfg;
    const env_transitions *tr = c->tr;
    const fqe_buf b = *bp; /* the arrays (shared, written through) */
    int p = prod[i], from_median;
    const exp_product_result *pr = &c->res->products[p];
    double ref;
    if (env_reference_price(c->h, p, &ref, &from_median)) { /* eligible products have one */
        return eng_err_set(ENG_EINVAL, "compare: FQE: product %s has no reference price", pr->product_id);
    }
    int j = 0, e = 0, prev_t = -2, prev_done = 1;
    for (size_t r = c->off[p]; r < c->off[p + 1]; r++, j++) {
        int t = tr->t[r], lv;
        float ct;
        /* history's target at s': the behaviour distribution of the next logged row of the
         * same period t+1 (its own row's when the next period was not logged; ignored where
         * the episode ends) */
        const float *bnext = tr->behav_probs + r * (size_t)K;
        if (r + 1 < c->off[p + 1] && tr->t[r + 1] == t + 1) bnext = tr->behav_probs + (r + 1) * (size_t)K;
        for (int a = 0; a < N_DISC; a++) {
            size_t q = (size_t)a * m + i, row = q * n + j;
            memcpy(b.s + row * F, tr->state + r * F, (size_t)F * sizeof *b.s);
            memcpy(b.s_next + row * F, tr->next_state + r * F, (size_t)F * sizeof *b.s_next);
            b.reward[row] = tr->reward[r];
            b.done[row] = tr->done[r];
            b.valid[row] = 1;
            b.action[row] = tr->level[r];
            double *pn = b.pi_next + row * K;
            if (a == EXP_AGENT_HISTORY) {
                double s = 0;
                for (int k = 0; k < K; k++) s += pn[k] = bnext[k];
                for (int k = 0; k < K; k++) pn[k] /= s;
            } else {
                pn[agent_action(c, pr, a, t + 1, ref, &lv, &ct) ? tr->level[r] : lv] = 1.0;
            }
        }
        b.acont[(size_t)i * n + j] = (float)((tr->ratio[r] - 1.0) / cfg->grid.band);
        b.tnext[(size_t)i * n + j] =
            agent_action(c, pr, EXP_AGENT_DDPG, t + 1, ref, &lv, &ct) ? b.acont[(size_t)i * n + j] : ct;
        if (cmp_is_eval(c, r)) {
            if (prev_done || t != prev_t + 1) { /* initial state e of the product */
                int slot = e;
                for (int a = 0; a < N_DISC; a++) {
                    size_t q = (size_t)a * m + i, s0r = q * n0 + slot;
                    memcpy(b.s0 + s0r * F, tr->state + r * F, (size_t)F * sizeof *b.s0);
                    double *p0 = b.pi0 + s0r * K;
                    if (a == EXP_AGENT_HISTORY) {
                        double s = 0;
                        for (int k = 0; k < K; k++) s += p0[k] = tr->behav_probs[r * (size_t)K + k];
                        for (int k = 0; k < K; k++) p0[k] /= s;
                    } else {
                        p0[agent_action(c, pr, a, t, ref, &lv, &ct) ? tr->level[r] : lv] = 1.0;
                    }
                }
                b.t0[(size_t)i * n0 + slot] = agent_action(c, pr, EXP_AGENT_DDPG, t, ref, &lv, &ct)
                                                  ? (float)((tr->ratio[r] - 1.0) / cfg->grid.band)
                                                  : ct;
                e++;
            }
            prev_t = t;
            prev_done = tr->done[r];
        }
    }
    /* fewer initial states than n0: repeat the product's own in turn */
    for (int slot = e; slot < n0; slot++) {
        int src = slot % e;
        for (int a = 0; a < N_DISC; a++) {
            size_t q = (size_t)a * m + i;
            memcpy(b.s0 + (q * n0 + slot) * F, b.s0 + (q * n0 + src) * F, (size_t)F * sizeof *b.s0);
            memcpy(b.pi0 + (q * n0 + slot) * K, b.pi0 + (q * n0 + src) * K, (size_t)K * sizeof *b.pi0);
        }
        b.t0[(size_t)i * n0 + slot] = b.t0[(size_t)i * n0 + src];
    }
    return ENG_OK;
}

/* One ope_fqe_estimate call of a chunk, warm-started from the previous night's networks stored
 * as <stem>.bin when they match (then compare.fqe_warm_iterations refreshes), and its networks
 * stored for the next night.  K: actions (0 continuous).  Returns 0 or the failure. */
static int fqe_call(cmp_ctx *c, const ope_fqe_data *dd, ope_fqe_cfg fc, const char *stem, const int *prod, int m,
                    ope_result *out) {
    const size_t np = ope_fqe_nparams(dd->d, dd->K, &fc);
    float *init = NULL, *fin = NULL;
    int rc = 0, warm = cmp_fqe_warm_load(c, stem, prod, m, dd->K, dd->P, np, &init);
    if (warm) fc.iterations = c->cfg->fqe_warm_iterations;
    fc.init_params = init;
    if (c->cfg->ckpt_dir && np && !(fin = malloc((size_t)dd->P * np * sizeof *fin))) {
        rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (FQE)");
        goto done;
    }
    fc.final_params = fin;
    if ((rc = ope_fqe_estimate(dd, &fc, c->be, out))) goto done;
    cmp_fqe_warm_count(warm);
    if (fin) rc = cmp_fqe_warm_save(c, stem, prod, m, dd->K, dd->P, np, fin);
done:
    free(init);
    free(fin);
    return rc;
}

/* FQE for products prod[0..m) (chunk number `chunk`).  n = the largest transition count, n0 the
 * largest number of evaluation episodes; a product with fewer initial states repeats them. */
static int fqe_chunk(cmp_ctx *c, const int *prod, int m, int chunk) {
    const int F = c->F, K = c->K;
    const exp_compare_cfg *cfg = c->cfg;
    int n, n0, rc = 0;
    char stem[64];
    fqe_sizes(c, prod, m, &n, &n0);
    const size_t PD = (size_t)N_DISC * m;
    fqe_buf b;
    memset(&b, 0, sizeof b);
    if ((rc = buf_alloc(&b, PD, m, n, n0, F, K))) goto done;
    for (int i = 0; i < m; i++)
        if ((rc = fqe_fill(c, &b, prod, m, i, n, n0))) goto done;
    ope_fqe_cfg fc = cfg->fqe;
    fc.gamma = cfg->ope.gamma;
    fc.seed = eng_seed_derive(cfg->seed, 0x667165ULL + (uint64_t)prod[0]);
    ope_fqe_data dd = {(int)PD, n, F, K, b.s, b.s_next, b.reward, b.done, b.valid, b.action, b.pi_next,
                       NULL, NULL, NULL, n0, b.s0, b.pi0, NULL};
    snprintf(stem, sizeof stem, "fqe-c%d-disc", chunk);
    if ((rc = fqe_call(c, &dd, fc, stem, prod, m, b.out))) goto done;
    for (int a = 0; a < N_DISC; a++)
        for (int i = 0; i < m; i++) c->res->products[prod[i]].longterm[a].v[OPE_FQE] = b.out[(size_t)a * m + i].v[OPE_FQE];
    /* DDPG: continuous actions; the first m networks' rows are every agent's common data */
    ope_fqe_data dc = {m, n, F, 0, b.s, b.s_next, b.reward, b.done, b.valid, NULL, NULL,
                       b.acont, b.tnext, NULL, n0, b.s0, NULL, b.t0};
    fc.seed = eng_seed_derive(fc.seed, 1);
    snprintf(stem, sizeof stem, "fqe-c%d-cont", chunk);
    if ((rc = fqe_call(c, &dc, fc, stem, prod, m, b.out))) goto done;
    for (int i = 0; i < m; i++) c->res->products[prod[i]].longterm[EXP_AGENT_DDPG].v[OPE_FQE] = b.out[i].v[OPE_FQE];
done:
    buf_free(&b);
    return rc;
}

int cmp_fqe_run(cmp_ctx *c) {
    exp_results *res = c->res;
    const exp_compare_cfg *cfg = c->cfg;
    const int P = res->n_products;
    int rc = 0, n_el = 0;
    res->fqe_products = 0;
    res->fqe_eligible = 0;
    cmp_fqe_warm_reset();
    int *el = malloc((size_t)(P > 0 ? P : 1) * sizeof *el);
    if (!el) return eng_err_set(ENG_ENOMEM, "compare: out of memory (FQE)");
    for (int p = 0; p < P; p++)
        if (fqe_eligible(c, p)) el[n_el++] = p;
    res->fqe_eligible = n_el;
    int want = cfg->fqe_products < 0 || cfg->fqe_products > n_el ? n_el : cfg->fqe_products;
    const char *why = cfg->fqe_products == 0 ? "FQE off (compare.fqe_products = 0)" : "not in the FQE sample";
    if (want < n_el) { /* seeded partial Fisher-Yates, then back to product order */
        eng_rng rng;
        eng_rng_seed(&rng, eng_seed_derive(cfg->seed, 0x66717370ULL));
        for (int i = 0; i < want; i++) {
            int j = i + (int)eng_rng_below(&rng, (uint64_t)(n_el - i)), t = el[i];
            el[i] = el[j];
            el[j] = t;
        }
        for (int i = 1; i < want; i++) /* insertion sort keeps chunks in product order */
            for (int j = i; j > 0 && el[j - 1] > el[j]; j--) {
                int t = el[j];
                el[j] = el[j - 1];
                el[j - 1] = t;
            }
    }
    for (int p = 0; p < P; p++)
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            ope_value *v = &res->products[p].longterm[a].v[OPE_FQE];
            v->available = 0;
            v->estimate = v->ci_low = v->ci_high = v->boot_se = NAN;
            snprintf(v->note, sizeof v->note, "%s", fqe_eligible(c, p) ? why : "no evaluation rows in the totals");
        }
    double t0 = eng_now();
    /* chunks of compare.fqe_chunk (0: group_size) sample products, formed per shard (sample order within it),
     * so a chunk holds one shard's products: under MPI every rank evaluates its own products
     * from its own rows, and one process with compare.shared_shards = K forms the same chunks.
     * One shard: the sample's chunks in order.  A chunk's number (its warm-start file's name)
     * counts the chunks of every shard in shard order, so it is the same on every rank. */
    const int S = cmp_shard_count(c), csize = cfg->fqe_chunk > 0 ? cfg->fqe_chunk : cfg->group_size;
    int *chunk = malloc((size_t)(want > 0 ? want : 1) * sizeof *chunk);
    if (!chunk) rc = eng_err_set(ENG_ENOMEM, "compare: out of memory (FQE)");
    int nchunk = 0;
    for (int s = 0; s < S && !rc; s++) {
        int mine = !(cfg->shard_count > 1 && s != cfg->shard_index); /* MPI: its own shard */
        int m = 0;
        for (int i = 0; i < want && !rc; i++) {
            if (S > 1 && c->owner[el[i]] != s) continue;
            chunk[m++] = el[i];
            if (m == csize) {
                if (mine) rc = fqe_chunk(c, chunk, m, nchunk);
                nchunk++, m = 0;
            }
        }
        if (m && !rc) {
            if (mine) rc = fqe_chunk(c, chunk, m, nchunk);
            nchunk++;
        }
    }
    free(chunk);
    rc = cmp_shard_fqe_gather(c, el, want, rc); /* MPI: the values to rank 0; one process: rc */
    if (!rc) {
        res->fqe_products = want;
        res->seconds_fqe = eng_now() - t0;
        if (want)
            ENG_INFO("compare: FQE of 5 agents on %d of %d products (%s) in %.2fs (%.1f ms per product)", want, n_el,
                     want < n_el ? "seeded sample, compare.fqe_products" : "all", res->seconds_fqe,
                     1e3 * res->seconds_fqe / want);
    }
    free(el);
    return rc;
}
