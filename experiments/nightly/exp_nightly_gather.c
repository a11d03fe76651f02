/* exp_nightly_gather.c - the nightly's decisions made on the rank that owns each product, and
 * gathered to rank 0 (see exp_nightly_gather.h, docs/mpi.md). */
#include "exp_nightly_gather.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_par.h"
#include "eng_util.h"

/* ---- rank 0's shrunk uplifts to the owners --------------------------------------------------- */

/* The numbers of one ope_value the gate reads (exp_gate_pick: availability, estimate, interval,
 * sd); the note stays rank 0's (the report's). */
typedef struct shrunk_rec {
    int32_t available, n_used;
    double estimate, ci_low, ci_high, boot_se;
} shrunk_rec;

int exp_nightly_share_shrunk(exp_results *res, int status) {
    if (eng_par_size() <= 1) return status;
    int st = eng_par_agree(status);
    if (st) return st;
    const int P = res->n_products, me = eng_par_rank();
    size_t n = 0;
    for (int i = 0; i < P; i++) n += res->products[i].rank != 0; /* rank 0's own stay where they are */
    shrunk_rec *buf = eng_calloc(n * EXP_N_AGENTS + 1, sizeof *buf);
    st = eng_par_agree(buf ? ENG_OK : ENG_ENOMEM);
    if (st) goto cleanup;
    size_t k = 0;
    for (int i = 0; i < P && me == 0; i++) {
        const exp_product_result *pr = &res->products[i];
        if (pr->rank == 0) continue;
        for (int a = 0; a < EXP_N_AGENTS; a++, k++) {
            const ope_value *v = &pr->uplift_shrunk[a];
            buf[k] = (shrunk_rec){v->available, v->n_used, v->estimate, v->ci_low, v->ci_high, v->boot_se};
        }
    }
    if ((st = eng_par_bcast(buf, n * EXP_N_AGENTS * sizeof *buf, 0))) goto cleanup;
    k = 0;
    for (int i = 0; i < P && me != 0; i++) {
        exp_product_result *pr = &res->products[i];
        if (pr->rank == 0) continue;
        for (int a = 0; a < EXP_N_AGENTS; a++, k++) {
            if (pr->rank != me) continue;
            ope_value *v = &pr->uplift_shrunk[a];
            const shrunk_rec *s = &buf[k];
            v->available = s->available, v->n_used = s->n_used;
            v->estimate = s->estimate, v->ci_low = s->ci_low, v->ci_high = s->ci_high, v->boot_se = s->boot_se;
        }
    }
cleanup:
    free(buf);
    return st;
}

/* ---- deciding the own products --------------------------------------------------------------- */

int exp_nightly_decide_own(const exp_nightly_cfg *cfg, const db_history *h, const exp_results *res,
                           exp_nightly_decision *dec, exp_explore_cand *cand, int *n_own, int status) {
    *n_own = 0;
    if (eng_par_size() > 1) status = eng_par_agree(status);
    if (status) return status;
    const int P = res->n_products, me = eng_par_rank();
    int n = 0, done = 0;
    for (int i = 0; i < P; i++) n += res->products[i].rank == me;
    for (int i = 0; i < P; i++) {
        const exp_product_result *p = &res->products[i];
        if (p->rank != me) continue;
        exp_nightly_decision *d = &dec[i];
        if (exp_nightly_decide(cfg, h, p, d)) exp_nightly_hold_failed(cfg, h, p, d); /* this product only */
        done++;
        if (cfg->progress && (done % 1024 == 0 || done == n)) cfg->progress(cfg->progress_ctx, "decide", done, n);
    }
    *n_own = done;
    if (!(cfg->explore.share > 0)) return ENG_OK;
    int st = ENG_OK;
    for (int i = 0; i < P && !st; i++)
        if (res->products[i].rank == me) st = exp_explore_candidate(cfg, h, res->products[i].index, &dec[i], &cand[i]);
    return eng_par_size() > 1 ? eng_par_agree(st) : st;
}

/* ---- the records --------------------------------------------------------------------------- */

/* One decision's fixed-size head; the candidate (exploration on) and the reason and note
 * (without their terminating zeros) follow it. */
typedef struct dec_head {
    int32_t i, rank, failed, hold, agent, seen, by_model, capped, has_cand;
    uint32_t guard;
    int32_t reason_len, note_len;
    double price, incumbent, uplift, lo, hi, per_unit, mean_period, plausible, frac;
} dec_head;

/* Bytes of product i's record. */
static size_t rec_len(const exp_nightly_decision *d, int has_cand) {
    return sizeof(dec_head) + (has_cand ? sizeof(exp_explore_cand) : 0) + strnlen(d->reason, sizeof d->reason - 1) +
           strnlen(d->note, sizeof d->note - 1);
}

/* Product i's record into out (rec_len bytes). */
static void rec_pack(int i, const exp_nightly_decision *d, const exp_explore_cand *c, int has_cand, char *out) {
    dec_head hd;
    memset(&hd, 0, sizeof hd); /* the padding too: the bytes travel */
    hd.i = i, hd.rank = eng_par_rank(), hd.failed = d->failed, hd.hold = d->hold, hd.agent = (int32_t)d->agent;
    hd.seen = d->seen, hd.by_model = d->by_model, hd.capped = d->capped, hd.has_cand = has_cand, hd.guard = d->guard;
    hd.reason_len = (int32_t)strnlen(d->reason, sizeof d->reason - 1);
    hd.note_len = (int32_t)strnlen(d->note, sizeof d->note - 1);
    hd.price = d->price, hd.incumbent = d->incumbent, hd.uplift = d->uplift, hd.lo = d->lo, hd.hi = d->hi;
    hd.per_unit = d->per_unit, hd.mean_period = d->mean_period, hd.plausible = d->plausible, hd.frac = d->frac;
    memcpy(out, &hd, sizeof hd);
    out += sizeof hd;
    if (has_cand) {
        memcpy(out, c, sizeof *c);
        out += sizeof *c;
    }
    memcpy(out, d->reason, (size_t)hd.reason_len);
    memcpy(out + hd.reason_len, d->note, (size_t)hd.note_len);
}

/* The record at in (avail bytes left) into dec / cand; *used = its length.  0 or ENG_EFORMAT. */
static int rec_unpack(const char *in, size_t avail, int P, exp_nightly_decision *dec, exp_explore_cand *cand,
                      size_t *used) {
    dec_head hd;
    if (avail < sizeof hd) return eng_err_set(ENG_EFORMAT, "nightly: a decision record is cut short");
    memcpy(&hd, in, sizeof hd);
    size_t len = sizeof hd + (hd.has_cand ? sizeof(exp_explore_cand) : 0);
    if (hd.i < 0 || hd.i >= P || hd.reason_len < 0 || hd.note_len < 0 ||
        hd.reason_len >= (int32_t)sizeof dec->reason || hd.note_len >= (int32_t)sizeof dec->note ||
        avail < len + (size_t)hd.reason_len + (size_t)hd.note_len)
        return eng_err_set(ENG_EFORMAT, "nightly: rank %d sent a bad decision record (product %d)", hd.rank, hd.i);
    exp_nightly_decision *d = &dec[hd.i];
    memset(d, 0, sizeof *d);
    d->failed = hd.failed, d->hold = hd.hold, d->agent = (exp_agent)hd.agent, d->seen = hd.seen;
    d->by_model = hd.by_model, d->capped = hd.capped, d->guard = hd.guard;
    d->price = hd.price, d->incumbent = hd.incumbent, d->uplift = hd.uplift, d->lo = hd.lo, d->hi = hd.hi;
    d->per_unit = hd.per_unit, d->mean_period = hd.mean_period, d->plausible = hd.plausible, d->frac = hd.frac;
    if (hd.has_cand) memcpy(&cand[hd.i], in + sizeof hd, sizeof *cand);
    else memset(&cand[hd.i], 0, sizeof *cand);
    memcpy(d->reason, in + len, (size_t)hd.reason_len);
    memcpy(d->note, in + len + hd.reason_len, (size_t)hd.note_len);
    *used = len + (size_t)hd.reason_len + (size_t)hd.note_len;
    return ENG_OK;
}

/* Rank 0: every record of all[0..total) into dec / cand, each product exactly once; by_rank
 * counted.  0 or ENG_EFORMAT / ENG_ENOMEM. */
static int unpack_all(const char *all, size_t total, int P, exp_nightly_decision *dec, exp_explore_cand *cand,
                      int *by_rank) {
    char *seen = eng_calloc((size_t)P + 1, 1);
    if (!seen) return ENG_ENOMEM;
    int st = ENG_OK, got = 0;
    for (size_t o = 0, used = 0; o < total && !st; o += used) {
        if ((st = rec_unpack(all + o, total - o, P, dec, cand, &used))) break;
        dec_head hd;
        memcpy(&hd, all + o, sizeof hd);
        if (seen[hd.i]++) st = eng_err_set(ENG_EFORMAT, "nightly: product %d decided twice", hd.i);
        else if (hd.rank < 0 || hd.rank >= eng_par_size()) st = eng_err_set(ENG_EFORMAT, "nightly: record from rank %d", hd.rank);
        else by_rank[hd.rank]++, got++;
    }
    if (!st && got != P) st = eng_err_set(ENG_EFORMAT, "nightly: %d of %d products' decisions arrived", got, P);
    free(seen);
    return st;
}

int exp_nightly_gather_decisions(const exp_nightly_cfg *cfg, const exp_results *res, exp_nightly_decision *dec,
                                 exp_explore_cand *cand, int *by_rank, int status) {
    int st = eng_par_agree(status);
    if (st) return st;
    const int P = res->n_products, me = eng_par_rank(), K = eng_par_size(), has_cand = cfg->explore.share > 0;
    size_t n = 0;
    for (int i = 0; i < P; i++)
        if (res->products[i].rank == me) n += rec_len(&dec[i], has_cand);
    char *buf = eng_malloc(n + 1), *all = NULL;
    size_t *counts = eng_calloc((size_t)K, sizeof *counts);
    st = eng_par_agree(buf && counts ? ENG_OK : ENG_ENOMEM);
    if (!st) {
        size_t o = 0;
        for (int i = 0; i < P; i++)
            if (res->products[i].rank == me) {
                rec_pack(i, &dec[i], &cand[i], has_cand, buf + o);
                o += rec_len(&dec[i], has_cand);
            }
        st = eng_par_gatherv(buf, n, 0, &all, counts);
    }
    if (!st && me == 0) {
        size_t total = 0;
        for (int r = 0; r < K; r++) total += counts[r], by_rank[r] = 0;
        st = unpack_all(all, total, P, dec, cand, by_rank);
        if (!st && K > 1)
            ENG_INFO("nightly: rank 0 received %zu bytes of decisions from %d other rank(s) (%zu of its own)", total - n,
                     K - 1, n);
    }
    free(buf);
    free(all);
    free(counts);
    return st;
}

/* ---- test hook ------------------------------------------------------------------------------ */

void exp_nightly_drop_foreign_rows(db_history *h, const exp_results *res) {
    const int me = eng_par_rank(), T = h->n_periods;
    for (int i = 0; i < res->n_products; i++) {
        const int p = res->products[i].index;
        if (res->products[i].rank == me || p < 0 || p >= h->n_products) continue;
        h->base_price[p] = h->unit_cost[p] = h->min_price[p] = h->max_price[p] = h->max_change_pct[p] = NAN;
        if (h->price_scale) h->price_scale[p] = -1;
        if (h->explore_off) h->explore_off[p] = 1;
        for (int t = 0; t < T; t++) {
            size_t c = (size_t)p * T + t;
            h->price[c] = NAN;
            h->units[c] = h->revenue[c] = h->traffic[c] = NAN;
            if (h->promo) h->promo[c] = 1;
            h->present[c] = 0;
            if (h->comp_off)
                for (int64_t o = h->comp_off[c]; o < h->comp_off[c + 1]; o++) h->comp_price[o] = NAN;
        }
    }
}

/* ---- the whole step ------------------------------------------------------------------------ */

int exp_nightly_decide_gather(const exp_nightly_cfg *cfg, db_history *h, exp_results *res, exp_nightly_decision **dec,
                              exp_explore_cand **cand, exp_nightly_summary *sum, int status) {
    const int K = eng_par_size();
    int *by = NULL; /* products decided per rank (rank 0) */
    int st = exp_nightly_share_shrunk(res, status); /* each step agrees on the status first */
    if (!st) {
        const size_t P = (size_t)res->n_products;
        *dec = eng_calloc(P + 1, sizeof **dec);
        *cand = eng_calloc(P + 1, sizeof **cand);
        by = eng_calloc((size_t)K, sizeof *by);
        if (!*dec || !*cand || !by) st = ENG_ENOMEM;
        else if (cfg->test_drop_foreign) exp_nightly_drop_foreign_rows(h, res);
    }
    st = exp_nightly_decide_own(cfg, h, res, st ? NULL : *dec, st ? NULL : *cand, &sum->n_decided_here, st);
    st = exp_nightly_gather_decisions(cfg, res, st ? NULL : *dec, st ? NULL : *cand, by, st);
    if (!st && eng_par_rank() == 0) {
        char line[512];
        size_t o = (size_t)snprintf(line, sizeof line, "nightly: decisions made per rank:");
        for (int k = 0; k < K && o < sizeof line; k++)
            o += (size_t)snprintf(line + o, sizeof line - o, " rank %d: %d", k, by[k]);
        ENG_INFO("%s", line);
        if (K > 1) sum->n_decided_by_rank = by, by = NULL; /* the summary's (MPI only) */
    }
    free(by);
    return st;
}
