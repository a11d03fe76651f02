/* exp_compare_shard.c - the comparison split over the ranks of an MPI run (docs/mpi.md).
 *
 * Rank r owns the products whose FNV-1a 64 hash of the id is r modulo the rank count: it
 * builds only their features and transitions, trains and evaluates them (the short-history
 * ones on its own pooled model); the cross-product fits (normalisation, behaviour, pooled
 * reward model) sum every rank's rows exactly (over_ranks) and the shared networks train
 * data-parallel, one shard per rank (exp_compare_agents.c).  A product's random streams are keyed by its
 * catalogue position (agt_*_cfg.keys), never by its group or slot, so its model and its OPE
 * are the same on any rank.  cmp_shard_gather then gives rank 0 every product's whole results
 * and every other rank every product's status and prices (all FQE needs);
 * FQE's chunks are formed per shard from the seeded sample (each rank its own products' rows;
 * one process with compare.shared_shards = K forms the same chunks) and their values sent to
 * rank 0 (cmp_shard_fqe_gather), which computes the totals and everything after them exactly
 * as one process does. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_hash.h"
#include "eng_par.h"
#include "eng_util.h"
#include "exp_compare_int.h"

void cmp_residual_total(cmp_ctx *c) {
    c->eval_res2 = 0;
    c->eval_res_n = 0;
    for (int p = 0; p < c->res->n_products; p++) c->eval_res2 += c->res2_p[p], c->eval_res_n += c->resn_p[p];
}

int cmp_shard_count(const cmp_ctx *c) {
    const exp_compare_cfg *cfg = c->cfg;
    return cfg->shard_count > 1 ? cfg->shard_count : cfg->shared_shards > 1 ? cfg->shared_shards : 1;
}

int cmp_shard_owner(const cmp_ctx *c, int p) { return cmp_shard_of(c, p, cmp_shard_count(c)); }

int cmp_shard_of(const cmp_ctx *c, int p, int count) {
    return exp_compare_shard_of_id(c->h->product_id[p], count);
}

int exp_compare_shard_of_id(const char *product_id, int count) {
    return count <= 1 ? 0 : (int)(eng_fnv1a_str(ENG_FNV1A_BASIS_RLP, product_id) % (uint64_t)count);
}

/* ope_result.q_source points at static strings; they travel as text. */
static const char *const q_sources[] = {"given", "none", "fqe", "ridge", "pooled", "per product"};
#define N_QSRC ((int)(sizeof q_sources / sizeof q_sources[0]))

static int8_t qsrc_code(const char *s) {
    for (int i = 0; s && i < N_QSRC; i++)
        if (!strcmp(s, q_sources[i])) return (int8_t)i;
    return -1;
}

/* One product's record: index, the result struct (its pointers are not used), q_source
 * codes, trajectories, the per-row sums, ESS and residual parts, its reward-model scale and
 * whether it has evaluation rows. */
typedef struct shard_head {
    int32_t p;
    int8_t qsrc[2 * EXP_N_AGENTS];
    exp_product_result pr;
    double sums[EXP_N_AGENTS * CMP_S_COUNT], ess[EXP_N_AGENTS], res2;
    double qscale; /* the pooled reward model's scale of the product (its owner's rows) */
    long resn;
    int32_t has_eval; /* evaluation rows (FQE's sample) */
} shard_head;

static size_t rec_size(const cmp_ctx *c) { return sizeof(shard_head) + (size_t)(1 + EXP_N_AGENTS) * c->T * sizeof(float); }

static void rec_pack(const cmp_ctx *c, int p, char *out) {
    shard_head hd;
    memset(&hd, 0, sizeof hd);
    const exp_product_result *pr = &c->res->products[p];
    hd.p = p;
    hd.pr = *pr;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        hd.qsrc[a] = qsrc_code(pr->immediate[a].q_source);
        hd.qsrc[EXP_N_AGENTS + a] = qsrc_code(pr->longterm[a].q_source);
    }
    memcpy(hd.sums, c->sums + (size_t)p * EXP_N_AGENTS * CMP_S_COUNT, sizeof hd.sums);
    memcpy(hd.ess, c->ess_p + (size_t)p * EXP_N_AGENTS, sizeof hd.ess);
    hd.res2 = c->res2_p[p];
    hd.resn = c->resn_p[p];
    hd.qscale = c->qm.D > 0 ? c->qm.scale[p] : 0.0;
    hd.has_eval = c->has_eval[p];
    memcpy(out, &hd, sizeof hd);
    float *f = (float *)(void *)(out + sizeof hd);
    memcpy(f, pr->hist_price, (size_t)c->T * sizeof *f);
    for (int a = 0; a < EXP_N_AGENTS; a++) memcpy(f + (size_t)(1 + a) * c->T, pr->agent_price[a], (size_t)c->T * sizeof *f);
}

/* Copy one record into product hd.p of c (root).  0 or ENG_EFORMAT. */
static int rec_unpack(cmp_ctx *c, const char *in) {
    shard_head hd;
    memcpy(&hd, in, sizeof hd);
    if (hd.p < 0 || hd.p >= c->res->n_products) return eng_err_set(ENG_EFORMAT, "compare: rank sent product %d", hd.p);
    exp_product_result *pr = &c->res->products[hd.p];
    char *id = pr->product_id;
    float *hist = pr->hist_price, *ag[EXP_N_AGENTS];
    memcpy(ag, pr->agent_price, sizeof ag);
    *pr = hd.pr;
    pr->product_id = id;
    pr->hist_price = hist;
    memcpy(pr->agent_price, ag, sizeof ag);
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        pr->immediate[a].q_source = hd.qsrc[a] >= 0 ? q_sources[hd.qsrc[a]] : NULL;
        pr->longterm[a].q_source = hd.qsrc[EXP_N_AGENTS + a] >= 0 ? q_sources[hd.qsrc[EXP_N_AGENTS + a]] : NULL;
    }
    memcpy(c->sums + (size_t)hd.p * EXP_N_AGENTS * CMP_S_COUNT, hd.sums, sizeof hd.sums);
    memcpy(c->ess_p + (size_t)hd.p * EXP_N_AGENTS, hd.ess, sizeof hd.ess);
    c->res2_p[hd.p] = hd.res2;
    c->resn_p[hd.p] = hd.resn;
    if (c->qm.D > 0) c->qm.scale[hd.p] = hd.qscale; /* the shrinkage's reward-scale units */
    c->has_eval[hd.p] = (unsigned char)(hd.has_eval != 0);
    const float *f = (const float *)(const void *)(in + sizeof hd);
    memcpy(pr->hist_price, f, (size_t)c->T * sizeof *f);
    for (int a = 0; a < EXP_N_AGENTS; a++) memcpy(pr->agent_price[a], f + (size_t)(1 + a) * c->T, (size_t)c->T * sizeof *f);
    return ENG_OK;
}

/* What the other ranks need of a product for FQE (exp_compare_fqe.c): its status and every
 * agent's price, then its agents' price trajectories (EXP_N_AGENTS x T floats). */
typedef struct shard_brief {
    int32_t p, status, has_eval, pad;
    double price[EXP_N_AGENTS];
} shard_brief;

static size_t brief_size(const cmp_ctx *c) { return sizeof(shard_brief) + (size_t)EXP_N_AGENTS * c->T * sizeof(float); }

static void brief_pack(const cmp_ctx *c, int p, char *out) {
    const exp_product_result *pr = &c->res->products[p];
    shard_brief b;
    memset(&b, 0, sizeof b);
    b.p = p, b.status = (int32_t)pr->status, b.has_eval = c->has_eval[p];
    memcpy(b.price, pr->price, sizeof b.price);
    memcpy(out, &b, sizeof b);
    for (int a = 0; a < EXP_N_AGENTS; a++)
        memcpy(out + sizeof b + (size_t)a * c->T * sizeof(float), pr->agent_price[a], (size_t)c->T * sizeof(float));
}

static int brief_unpack(cmp_ctx *c, const char *in) {
    shard_brief b;
    memcpy(&b, in, sizeof b);
    if (b.p < 0 || b.p >= c->res->n_products) return eng_err_set(ENG_EFORMAT, "compare: rank sent product %d", b.p);
    exp_product_result *pr = &c->res->products[b.p];
    pr->status = (exp_status)b.status;
    c->has_eval[b.p] = (unsigned char)(b.has_eval != 0);
    memcpy(pr->price, b.price, sizeof b.price);
    for (int a = 0; a < EXP_N_AGENTS; a++)
        memcpy(pr->agent_price[a], in + sizeof b + (size_t)a * c->T * sizeof(float), (size_t)c->T * sizeof(float));
    return ENG_OK;
}

/* Unpack every record of `all` (total bytes, records of rs bytes) that is not this rank's own
 * product.  Returns 0 or ENG_EFORMAT; *got = records unpacked. */
static int unpack_all(cmp_ctx *c, const char *all, size_t total, size_t rs, int brief, size_t *got) {
    *got = 0;
    if (total % rs) return eng_err_set(ENG_EFORMAT, "compare: gathered %zu bytes, not whole products", total);
    for (size_t o = 0; o < total; o += rs) {
        int32_t p;
        memcpy(&p, all + o, sizeof p);
        if (p >= 0 && p < c->res->n_products && c->mine[p]) continue; /* this rank's own */
        int st = brief ? brief_unpack(c, all + o) : rec_unpack(c, all + o);
        if (st) return st;
        (*got)++;
    }
    return ENG_OK;
}

int cmp_shard_gather(cmp_ctx *c, int status) {
    const exp_compare_cfg *cfg = c->cfg;
    if (cfg->shard_count <= 1) return status;
    if (cfg->fault_kill_rank == eng_par_rank()) { /* TEST HOOK: a rank dies mid-run */
        ENG_WARN("compare: rank %d kills itself (test hook fault_kill_rank)", eng_par_rank());
        fflush(NULL);
        raise(SIGKILL);
    }
    int st = eng_par_agree(status);
    if (st) return st;
    const int P = c->res->n_products, K = eng_par_size();
    const size_t rs = rec_size(c), bs = brief_size(c);
    size_t n = 0, total = 0, btotal = 0, got = 0, bgot = 0;
    for (int p = 0; p < P; p++) n += c->mine[p];
    char *buf = eng_malloc(n * (rs > bs ? rs : bs) + 1), *all = NULL;
    size_t *counts = eng_calloc((size_t)K, sizeof *counts);
    if (!buf || !counts) st = ENG_ENOMEM;
    st = eng_par_agree(st);
    if (!st) { /* 1. whole results to rank 0 (totals, report, push) */
        size_t k = 0;
        for (int p = 0; p < P; p++)
            if (c->mine[p]) rec_pack(c, p, buf + rs * k++);
        st = eng_par_gatherv(buf, n * rs, 0, &all, counts);
    }
    if (!st && eng_par_rank() == 0) {
        for (int r = 0; r < K; r++) total += counts[r];
        st = unpack_all(c, all, total, rs, 0, &got);
    }
    st = eng_par_agree(st);
    free(all);
    all = NULL;
    if (!st) { /* 2. every product's prices to every rank (FQE needs them) */
        size_t k = 0;
        for (int p = 0; p < P; p++)
            if (c->mine[p]) brief_pack(c, p, buf + bs * k++);
        st = eng_par_allgatherv(buf, n * bs, &all, counts);
    }
    if (!st) {
        for (int r = 0; r < K; r++) btotal += counts[r];
        if (eng_par_rank() != 0) st = unpack_all(c, all, btotal, bs, 1, &bgot);
    }
    if (!st && eng_par_rank() == 0)
        ENG_INFO("compare: rank 0 received %zu products from %d other rank(s) (%.1f MiB; every rank then receives "
                 "every product's prices, %.1f MiB)",
                 got, K - 1, (double)(total - n * rs) / 1048576.0, (double)(btotal - n * bs) / 1048576.0);
    free(buf);
    free(all);
    free(counts);
    return st;
}

/* One product's FQE values: index and longterm[a].v[OPE_FQE] of every agent. */
typedef struct fqe_rec {
    int32_t p;
    ope_value v[EXP_N_AGENTS];
} fqe_rec;

int cmp_shard_fqe_gather(cmp_ctx *c, const int *el, int want, int status) {
    const exp_compare_cfg *cfg = c->cfg;
    if (cfg->shard_count <= 1) return status;
    int st = eng_par_agree(status);
    if (st) return st;
    fqe_rec *mine = eng_calloc((size_t)(want ? want : 1), sizeof *mine);
    size_t *counts = eng_calloc((size_t)eng_par_size(), sizeof *counts), n = 0;
    char *all = NULL;
    st = eng_par_agree(!mine || !counts ? ENG_ENOMEM : ENG_OK);
    if (!st) {
        for (int i = 0; i < want; i++) {
            if (!c->mine[el[i]]) continue;
            mine[n].p = el[i];
            for (int a = 0; a < EXP_N_AGENTS; a++) mine[n].v[a] = c->res->products[el[i]].longterm[a].v[OPE_FQE];
            n++;
        }
        st = eng_par_gatherv(mine, n * sizeof *mine, 0, &all, counts);
    }
    if (!st && eng_par_rank() == 0) {
        size_t total = 0;
        for (int r = 0; r < eng_par_size(); r++) total += counts[r];
        for (size_t o = 0; o + sizeof(fqe_rec) <= total; o += sizeof(fqe_rec)) {
            fqe_rec f;
            memcpy(&f, all + o, sizeof f);
            if (f.p < 0 || f.p >= c->res->n_products) {
                st = eng_err_set(ENG_EFORMAT, "compare: rank sent FQE of product %d", f.p);
                break;
            }
            for (int a = 0; a < EXP_N_AGENTS; a++) c->res->products[f.p].longterm[a].v[OPE_FQE] = f.v[a];
        }
    }
    free(mine);
    free(counts);
    free(all);
    return st;
}
