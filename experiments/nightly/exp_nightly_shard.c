/* exp_nightly_shard.c - each MPI rank loads only its own products (exp_nightly_shard.h). */
#include "exp_nightly_shard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db_load_shard.h"
#include "eng_hash.h"
#include "eng_log.h"
#include "eng_par.h"
#include "eng_status.h"
#include "eng_util.h"
#include "exp_compare.h"

enum { SH_NONE = 0, SH_SKIPPED = 1, SH_LOADED = 2 }; /* a catalogue product on its owner rank */

static uint64_t sh_hash(uint64_t h, const char *s) {
    const unsigned char sep = 0xff; /* separator */
    return eng_fnv1a(eng_fnv1a_str(h, s), &sep, 1);
}

/* Every rank read the same catalogue and calendar: min == max of (n, hash, calendar). */
static int sh_check_catalogue(const db_catalogue *cat) {
    uint64_t h = ENG_FNV1A_BASIS_RLP;
    for (int i = 0; i < cat->n; i++) h = sh_hash(h, cat->ids[i]);
    int64_t lo[5] = {cat->n, (int64_t)(h >> 2), cat->day0, cat->n_periods, cat->period_days}, hi[5];
    memcpy(hi, lo, sizeof lo);
    int st = eng_par_allreduce_i64(lo, 5, ENG_PAR_MIN);
    if (!st) st = eng_par_allreduce_i64(hi, 5, ENG_PAR_MAX);
    if (!st && memcmp(lo, hi, sizeof lo))
        st = eng_err_set(ENG_EFORMAT, "nightly: the ranks read different product catalogues or calendars (the "
                                      "products or sales tables changed during the load?)");
    return st;
}

static const char *const sh_tables[] = {"sales", "competitor_prices", "products"};

/* Rank 0's rejects := every rank's (gathered, rank order, then one per (table, key, reason)). */
static int sh_gather_rejects(db_load_report *rep) {
    const int K = eng_par_size();
    size_t len = 0;
    for (size_t i = 0; i < rep->n_rejects; i++) len += 2 + strlen(rep->rejects[i].row_key) + 1;
    char *buf = eng_malloc(len + 1), *all = NULL, *o = buf;
    size_t *counts = eng_calloc((size_t)K, sizeof *counts);
    int st = buf && counts ? ENG_OK : ENG_ENOMEM;
    for (size_t i = 0; !st && i < rep->n_rejects; i++) {
        int t = 0;
        while (t < 2 && strcmp(sh_tables[t], rep->rejects[i].table)) t++;
        *o++ = (char)t;
        *o++ = (char)rep->rejects[i].reason;
        size_t kl = strlen(rep->rejects[i].row_key) + 1;
        memcpy(o, rep->rejects[i].row_key, kl);
        o += kl;
    }
    st = eng_par_agree(st);
    if (!st) st = eng_par_gatherv(buf, len, 0, &all, counts);
    if (!st && eng_par_rank() == 0) {
        size_t total = 0, n = 0;
        for (int k = 0; k < K; k++) total += counts[k];
        for (size_t i = 0; i + 2 < total; i += 2 + strlen(all + i + 2) + 1) n++;
        db_reject *nr = eng_calloc(n ? n : 1, sizeof *nr);
        if (!nr) st = ENG_ENOMEM;
        size_t m = 0;
        for (size_t i = 0; !st && i + 2 < total; i += 2 + strlen(all + i + 2) + 1, m++) {
            nr[m].table = sh_tables[(unsigned char)all[i] < 3 ? (unsigned char)all[i] : 0];
            nr[m].reason = (unsigned char)all[i + 1];
            if (!(nr[m].row_key = strdup(all + i + 2))) st = ENG_ENOMEM;
        }
        if (st) {
            for (size_t i = 0; nr && i < m; i++) free(nr[i].row_key);
            free(nr);
        } else {
            for (size_t i = 0; i < rep->n_rejects; i++) free(rep->rejects[i].row_key);
            free(rep->rejects);
            rep->rejects = nr;
            rep->n_rejects = rep->cap_rejects = n;
            db_load_unique_rejects(rep);
        }
    }
    free(all);
    free(buf);
    free(counts);
    return st == ENG_ENOMEM ? eng_err_set(ENG_ENOMEM, "out of memory gathering the rejected rows") : st;
}

/* Counts of every rank; the skipped list from the agreed flags (catalogue order). */
static int sh_merge_counts(db_load_report *rep, const db_catalogue *cat, const int64_t *flag) {
    int64_t v[4 + DB_REJ_COUNT] = {rep->rows_products, rep->rows_sales, rep->rows_competitor, rep->n_rejected};
    memcpy(v + 4, rep->by_reason, sizeof rep->by_reason);
    int st = eng_par_allreduce_i64(v, 4 + DB_REJ_COUNT, ENG_PAR_SUM);
    if (st) return st;
    rep->rows_products = v[0], rep->rows_sales = v[1], rep->rows_competitor = v[2], rep->n_rejected = v[3];
    memcpy(rep->by_reason, v + 4, sizeof rep->by_reason);
    for (int i = 0; i < rep->n_skipped; i++) free(rep->skipped[i]);
    rep->n_skipped = 0;
    int n = 0;
    for (int i = 0; i < cat->n; i++) n += flag[i] == SH_SKIPPED;
    char **s = realloc(rep->skipped, (size_t)(n ? n : 1) * sizeof *s);
    if (!s) return eng_err_set(ENG_ENOMEM, "out of memory");
    rep->skipped = s;
    rep->cap_skipped = n ? n : 1;
    for (int i = 0; i < cat->n; i++)
        if (flag[i] == SH_SKIPPED && !(rep->skipped[rep->n_skipped++] = strdup(cat->ids[i]))) {
            rep->n_skipped--;
            return eng_err_set(ENG_ENOMEM, "out of memory");
        }
    return ENG_OK;
}

/* Rank 0 logs what each rank loaded (16 B per rank gathered; a rank's own log lines stay in
 * its own stream).  Collective; returns 0 or the exchange's failure. */
static int sh_log_per_rank(int n_own, int n_cat, int64_t rows) {
    const int K = eng_par_size();
    int64_t mine[2] = {n_own, rows};
    char *all = NULL, line[1024];
    size_t *counts = eng_calloc((size_t)K, sizeof *counts);
    int st = counts ? ENG_OK : eng_err_set(ENG_ENOMEM, "out of memory");
    if ((st = eng_par_agree(st))) { free(counts); return st; }
    st = eng_par_gatherv(mine, sizeof mine, 0, &all, counts);
    if (!st && all) {
        const int64_t *v = (const int64_t *)(void *)all;
        size_t o = (size_t)snprintf(line, sizeof line, "nightly: products loaded per rank (of %d in the catalogue):", n_cat);
        for (int k = 0; k < K && o < sizeof line; k++)
            o += (size_t)snprintf(line + o, sizeof line - o, " rank %d: %lld (%lld sales rows)", k, (long long)v[2 * k],
                                  (long long)v[2 * k + 1]);
        ENG_INFO("%s", line);
    }
    free(all);
    free(counts);
    return st;
}

/* unk's rejects and counts moved into rep (unk keeps nothing). */
static int sh_add_unknown(db_load_report *rep, db_load_report *unk) {
    if (!unk->n_rejects) return ENG_OK;
    db_reject *nr = realloc(rep->rejects, (rep->n_rejects + unk->n_rejects) * sizeof *nr);
    if (!nr) return eng_err_set(ENG_ENOMEM, "out of memory");
    memcpy(nr + rep->n_rejects, unk->rejects, unk->n_rejects * sizeof *nr);
    rep->rejects = nr;
    rep->n_rejects += unk->n_rejects;
    rep->cap_rejects = rep->n_rejects;
    rep->rows_sales += unk->rows_sales;
    rep->rows_competitor += unk->rows_competitor;
    rep->n_rejected += unk->n_rejected;
    for (int k = 0; k < DB_REJ_COUNT; k++) rep->by_reason[k] += unk->by_reason[k];
    unk->n_rejects = 0;
    return ENG_OK;
}

/* Own flags (the own ids in catalogue order: the loaded and the skipped are subsequences). */
static void sh_own_flags(const db_catalogue *cat, const int *own, int n_own, const db_history *h,
                         const db_load_report *rep, int64_t *flag) {
    int k = 0, s = 0;
    for (int j = 0; j < n_own; j++) {
        const char *id = cat->ids[own[j]];
        if (k < h->n_products && !strcmp(h->product_id[k], id)) flag[own[j]] = SH_LOADED, k++;
        else if (s < rep->n_skipped && !strcmp(rep->skipped[s], id)) flag[own[j]] = SH_SKIPPED, s++;
    }
}

/* Survivors (flag LOADED) in catalogue order; slot[k] of own product k; then the expansion. */
static int sh_expand(const db_catalogue *cat, const int64_t *flag, const db_history *mine, db_history **out) {
    const int n = cat->n;
    char **ids = eng_malloc((size_t)(n ? n : 1) * sizeof *ids), **names = eng_malloc((size_t)(n ? n : 1) * sizeof *names);
    int *slot = eng_malloc((size_t)(mine->n_products ? mine->n_products : 1) * sizeof *slot);
    int st = ids && names && slot ? ENG_OK : ENG_ENOMEM, q = 0, k = 0;
    for (int i = 0; !st && i < n; i++) {
        if (flag[i] != SH_LOADED) continue;
        if (k < mine->n_products && !strcmp(mine->product_id[k], cat->ids[i])) slot[k++] = q;
        ids[q] = cat->ids[i];
        names[q++] = cat->names[i];
    }
    if (!st && k != mine->n_products) st = eng_err_set(ENG_EFORMAT, "nightly: a loaded product is not in the catalogue");
    if (!st) st = db_history_expand(mine, q, ids, names, slot, out);
    free(ids);
    free(names);
    free(slot);
    return st == ENG_ENOMEM ? eng_err_set(ENG_ENOMEM, "out of memory") : st;
}

int exp_nightly_load_shard(PGconn *conn, const db_load_opts *lo, db_history **out, db_load_report *rep, int status) {
    *out = NULL;
    const int K = eng_par_size(), me = eng_par_rank();
    if (K <= 1) return status ? status : db_load_history(conn, lo, out, rep);
    memset(rep, 0, sizeof *rep);
    db_catalogue cat = {0};
    db_history *mine = NULL;
    int64_t *flag = NULL;
    const char **own_ids = NULL;
    int *own = NULL, n_own = 0;
    int st = status;
    if (!st && lo->run_id) st = eng_err_set(ENG_EINVAL, "exp_nightly_load_shard: rejects are stored by the push");
    if (!st) st = db_load_catalogue(conn, lo, &cat);
    db_load_report unk = {0}; /* rank 0: rows of products not in the products table (no shard's) */
    if (!st && me == 0) st = db_load_unknown(conn, lo, &unk);
    if (!(st = eng_par_agree(st))) st = sh_check_catalogue(&cat);
    if (st) goto done;
    own = eng_malloc((size_t)(cat.n ? cat.n : 1) * sizeof *own);
    own_ids = eng_malloc((size_t)(cat.n ? cat.n : 1) * sizeof *own_ids);
    flag = eng_calloc((size_t)(cat.n ? cat.n : 1), sizeof *flag);
    if (!own || !own_ids || !flag) st = eng_err_set(ENG_ENOMEM, "out of memory");
    for (int i = 0; !st && i < cat.n; i++)
        if (exp_compare_shard_of_id(cat.ids[i], K) == me) own_ids[n_own] = cat.ids[i], own[n_own++] = i;
    db_load_opts o = *lo;
    o.products = own_ids; /* a parameter list (a temporary table filled by COPY), never SQL text */
    o.n_filter = n_own;
    o.shard_count = 0;
    o.cal_fixed = 1;
    o.cal_day0 = cat.day0;
    o.cal_n_periods = cat.n_periods;
    o.period_days = cat.period_days;
    if (!st) st = db_load_history(conn, &o, &mine, rep);
    if (!st)
        ENG_INFO("nightly: rank %d loaded %d of %d products (%lld sales rows, %lld competitor prices)", me, n_own,
                 cat.n, (long long)rep->rows_sales, (long long)rep->rows_competitor);
    if (!st) st = sh_log_per_rank(n_own, cat.n, rep->rows_sales);
    if (!st) sh_own_flags(&cat, own, n_own, mine, rep, flag);
    if (!st) st = sh_add_unknown(rep, &unk);
    if ((st = eng_par_agree(st))) goto done;
    if ((st = eng_par_allreduce_i64(flag, cat.n, ENG_PAR_SUM))) goto done; /* each product set by its owner only */
    st = sh_merge_counts(rep, &cat, flag);
    if (!(st = eng_par_agree(st))) st = sh_gather_rejects(rep);
    if (!st) st = sh_expand(&cat, flag, mine, out);
    st = eng_par_agree(st);
    if (st) { db_history_free(*out); *out = NULL; }
done:
    db_load_report_free(&unk);
    db_history_free(mine);
    db_catalogue_free(&cat);
    free(flag);
    free(own);
    free(own_ids);
    return st;
}
