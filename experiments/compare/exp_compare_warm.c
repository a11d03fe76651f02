/* exp_compare_warm.c - warm nights (docs/nightly.md, "Warm nights"): the FQE Q networks of
 * every chunk are stored beside the night's other checkpoints and start the next night's fit,
 * which then runs compare.fqe_warm_iterations target refreshes instead of fqe.iterations; the
 * behaviour model's pooled coefficients (behav-pool.bin) start the next night's pooled Newton
 * fit (the same optimum from any start: fewer steps, not a cached result).
 *
 * A stored chunk is keyed by a hash of everything its networks' meaning depends on: the
 * feature layout and the stored normalisation (the states' scale), the network shape, the
 * discount, the chunk's product ids in order, and which call it is (the four discrete policies
 * or DDPG).  Any change gives another key and the chunk is fitted from scratch.  The file
 * carries a checksum of its parameters; a bad, truncated or non-finite file is refused with one
 * line and never copied forward (the night writes what it fitted, not what it read). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_file.h"
#include "exp_compare_int.h"

static _Thread_local int fqe_warm_n, fqe_cold_n;

void exp_compare_last_fqe_warm(int *warm, int *cold) {
    if (warm) *warm = fqe_warm_n;
    if (cold) *cold = fqe_cold_n;
}

void cmp_fqe_warm_reset(void) { fqe_warm_n = fqe_cold_n = 0; }

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* The key of a chunk's networks (see the file comment). */
static uint64_t chunk_key(const cmp_ctx *c, const int *prod, int m, int K, int nets, size_t np) {
    const ope_fqe_cfg *f = &c->cfg->fqe;
    float flat[FEAT_NORM_FLAT_LEN];
    feat_norm_to_array(&c->norm, flat);
    uint64_t h = fnv(1469598103934665603ULL, "rlprice-fqe-warm 1", 18);
    h = fnv(h, FEAT_LAYOUT_VERSION, strlen(FEAT_LAYOUT_VERSION));
    uint64_t lh = feat_layout_get()->hash;
    h = fnv(h, &lh, sizeof lh);
    h = fnv(h, flat, sizeof flat);
    int shape[6] = {c->F, K, nets, f->n_hidden, f->hidden[0], f->hidden[1]};
    h = fnv(h, shape, sizeof shape);
    h = fnv(h, &np, sizeof np);
    double g = c->cfg->ope.gamma;
    h = fnv(h, &g, sizeof g);
    for (int i = 0; i < m; i++) h = fnv(h, c->h->product_id[prod[i]], strlen(c->h->product_id[prod[i]]) + 1);
    return h;
}

static void warm_path(char *out, size_t n, const char *dir, const char *stem) { snprintf(out, n, "%s/%s.bin", dir, stem); }

/* One stored vector: "<magic> 1 <key> <count>\n", the values raw (host order, elem bytes each),
 * then their FNV-1a 64. */
typedef struct warm_blob {
    const char *magic;
    uint64_t key;
    size_t count, elem;
    const void *v;
} warm_blob;

static int blob_write_cb(FILE *f, void *ctx) {
    const warm_blob *w = ctx;
    uint64_t sum = fnv(1469598103934665603ULL, w->v, w->count * w->elem);
    if (fprintf(f, "%s 1 %016" PRIx64 " %zu\n", w->magic, w->key, w->count) < 0 ||
        fwrite(w->v, w->elem, w->count, f) != w->count || fwrite(&sum, sizeof sum, 1, f) != 1)
        return eng_err_set(ENG_EIO, "write failed: %s", strerror(errno));
    return ENG_OK;
}

/* Reads and closes f, a blob of `want` values of w->elem bytes (4: float, 8: double) under
 * w->magic and w->key. NULL and *out = the values (caller frees) when usable; otherwise why not
 * (`changed` when the key or count differs: a meaning change, not damage) and *out = NULL. */
static const char *blob_read(FILE *f, const warm_blob *w, size_t want, const char *changed, void **out) {
    char magic[32] = "";
    uint64_t have = 0, sum = 0;
    size_t count = 0;
    void *v = NULL;
    const char *why = NULL;
    *out = NULL;
    if (fscanf(f, "%31s 1 %" SCNx64 " %zu", magic, &have, &count) != 3 || fgetc(f) != '\n' || strcmp(magic, w->magic))
        why = "not a warm-start file of this kind";
    else if (have != w->key || count != want) why = changed;
    else if (!(v = malloc(want * w->elem))) why = "out of memory";
    else if (fread(v, w->elem, want, f) != want || fread(&sum, sizeof sum, 1, f) != 1 || fgetc(f) != EOF)
        why = "truncated";
    else if (sum != fnv(1469598103934665603ULL, v, want * w->elem)) why = "checksum mismatch";
    for (size_t i = 0; !why && i < want; i++)
        if (!isfinite(w->elem == sizeof(float) ? ((const float *)v)[i] : ((const double *)v)[i])) why = "non-finite value";
    fclose(f);
    if (why) free(v);
    else *out = v;
    return why;
}

int cmp_fqe_warm_load(const cmp_ctx *c, const char *stem, const int *prod, int m, int K, int nets, size_t np,
                      float **out) {
    *out = NULL;
    const char *src = c->cfg->ckpt_from ? c->cfg->ckpt_from : c->cfg->ckpt_dir;
    if (!src || !*src || np == 0) return 0;
    char path[4096];
    warm_path(path, sizeof path, src, stem);
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* no earlier FQE: fitted from scratch */
    size_t want = (size_t)nets * np;
    const char *changed = "products, normalisation, shape or discount changed";
    warm_blob w = {"rlprice-fqe-warm", chunk_key(c, prod, m, K, nets, np), want, sizeof(float), NULL};
    void *v = NULL;
    const char *why = blob_read(f, &w, want, changed, &v);
    if (why) {
        if (strcmp(why, changed))
            ENG_WARN("compare: FQE warm start %s unusable (%s); fitting from scratch", path, why);
        else
            ENG_INFO("compare: FQE %s: %s; fitting from scratch", stem, why);
        return 0;
    }
    *out = v;
    return 1;
}

int cmp_fqe_warm_save(const cmp_ctx *c, const char *stem, const int *prod, int m, int K, int nets, size_t np,
                      const float *params) {
    if (!c->cfg->ckpt_dir || !*c->cfg->ckpt_dir || np == 0) return ENG_OK;
    size_t count = (size_t)nets * np;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(params[i])) return ENG_OK; /* never store a diverged network */
    char path[4096];
    warm_path(path, sizeof path, c->cfg->ckpt_dir, stem);
    warm_blob w = {"rlprice-fqe-warm", chunk_key(c, prod, m, K, nets, np), count, sizeof *params, params};
    return eng_atomic_write(path, blob_write_cb, &w);
}

void cmp_fqe_warm_count(int warm) {
    if (warm) fqe_warm_n++;
    else fqe_cold_n++;
}

/* ---- the behaviour model's pooled coefficients ------------------------------------------------ */

#define BEHAV_STEM "behav-pool"

/* What the coefficients mean: the feature layout and the behaviour features, the grid, the
 * estimator's settings. */
static uint64_t behav_key(const cmp_ctx *c) {
    const env_behaviour_cfg *b = &c->cfg->behaviour;
    uint64_t h = fnv(1469598103934665603ULL, "rlprice-behav-warm 1", 20);
    h = fnv(h, FEAT_LAYOUT_VERSION, strlen(FEAT_LAYOUT_VERSION));
    uint64_t lh = feat_layout_get()->hash;
    h = fnv(h, &lh, sizeof lh);
    int shape[4] = {c->K, ENV_BEHAV_NX, ENV_BEHAV_NZ, (int)b->kind};
    h = fnv(h, shape, sizeof shape);
    double v[4] = {c->cfg->grid.band, b->l2, b->shrink, b->eps};
    return fnv(h, v, sizeof v);
}

int cmp_behav_warm_load(const cmp_ctx *c, double **out) {
    *out = NULL;
    const char *src = c->cfg->ckpt_from ? c->cfg->ckpt_from : c->cfg->ckpt_dir;
    if (!src || !*src || c->cfg->behaviour.kind != ENV_BEHAV_MNL) return 0;
    char path[4096];
    warm_path(path, sizeof path, src, BEHAV_STEM);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int want = ENV_BEHAV_POOL_LEN(c->K);
    const char *changed = "grid, feature layout or estimator changed";
    warm_blob w = {"rlprice-behav-warm", behav_key(c), (size_t)want, sizeof(double), NULL};
    void *v = NULL;
    const char *why = blob_read(f, &w, (size_t)want, changed, &v);
    if (why) {
        if (strcmp(why, changed))
            ENG_WARN("compare: behaviour model: %s unusable (%s); its pooled fit starts from zero", path, why);
        else
            ENG_INFO("compare: behaviour model: %s not used (%s); its pooled fit starts from zero", path, why);
        return 0;
    }
    *out = v;
    return want;
}

int cmp_behav_warm_save(const cmp_ctx *c, const env_behaviour *b) {
    if (!c->cfg->ckpt_dir || !*c->cfg->ckpt_dir) return ENG_OK;
    const int q = ENV_BEHAV_POOL_LEN(c->K);
    double *v = malloc((size_t)q * sizeof *v);
    if (!v) return eng_err_set(ENG_ENOMEM, "compare: out of memory (behaviour coefficients)");
    int n = env_behaviour_pool_coef(b, v, q), rc = ENG_OK;
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) n = 0; /* never store a diverged fit */
    if (n == q) {
        char path[4096];
        warm_path(path, sizeof path, c->cfg->ckpt_dir, BEHAV_STEM);
        warm_blob w = {"rlprice-behav-warm", behav_key(c), (size_t)q, sizeof *v, v};
        rc = eng_atomic_write(path, blob_write_cb, &w);
    }
    free(v);
    return rc;
}

int cmp_transitions_build(cmp_ctx *c, env_transitions_cfg *tc) {
    double *init = NULL;
    const int one = c->cfg->shard_count <= 1;
    if (one) tc->behaviour.pool_init_len = cmp_behav_warm_load(c, &init);
    tc->behaviour.pool_init = init;
    int rc = env_transitions_build(c->h, tc, &c->tr);
    tc->behaviour.pool_init = NULL, tc->behaviour.pool_init_len = 0;
    if (!rc && one && c->tr->behaviour) {
        int iters = 0;
        env_behaviour_fit_info(c->tr->behaviour, &iters, NULL);
        if (env_behaviour_kind_of(c->tr->behaviour) == ENV_BEHAV_MNL)
            ENG_INFO("compare: behaviour model: pooled fit in %d Newton steps (%s)", iters,
                     init ? "from last night's coefficients" : "from zero");
        rc = cmp_behav_warm_save(c, c->tr->behaviour);
    }
    free(init);
    return rc;
}
