/* exp_compare_warm.c - what one night stores for the next (docs/nightly.md, "Warm nights";
 * docs/checkpoints.md): the groups' DQN/DDPG checkpoints with their manifests, the state
 * normalisation, and the warm starts below.  The FQE Q networks of
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

#include <unistd.h>

#include "eng_file.h"
#include "eng_h5.h"
#include "eng_hash.h"
#include "eng_par.h"
#include "exp_compare_int.h"

static _Thread_local int fqe_warm_n, fqe_cold_n;

void exp_compare_last_fqe_warm(int *warm, int *cold) {
    if (warm) *warm = fqe_warm_n;
    if (cold) *cold = fqe_cold_n;
}

void cmp_fqe_warm_reset(void) { fqe_warm_n = fqe_cold_n = 0; }

/* The key of a chunk's networks (see the file comment). */
static uint64_t chunk_key(const cmp_ctx *c, const int *prod, int m, int K, int nets, size_t np) {
    const ope_fqe_cfg *f = &c->cfg->fqe;
    float flat[FEAT_NORM_FLAT_LEN];
    feat_norm_to_array(&c->norm, flat);
    uint64_t h = eng_fnv1a(ENG_FNV1A_BASIS_RLP, "rlprice-fqe-warm 1", 18);
    h = eng_fnv1a(h, FEAT_LAYOUT_VERSION, strlen(FEAT_LAYOUT_VERSION));
    uint64_t lh = feat_layout_get()->hash;
    h = eng_fnv1a(h, &lh, sizeof lh);
    h = eng_fnv1a(h, flat, sizeof flat);
    int shape[6] = {c->F, K, nets, f->n_hidden, f->hidden[0], f->hidden[1]};
    h = eng_fnv1a(h, shape, sizeof shape);
    h = eng_fnv1a(h, &np, sizeof np);
    double g = c->cfg->ope.gamma;
    h = eng_fnv1a(h, &g, sizeof g);
    for (int i = 0; i < m; i++) h = eng_fnv1a(h, c->h->product_id[prod[i]], strlen(c->h->product_id[prod[i]]) + 1);
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
    uint64_t sum = eng_fnv1a(ENG_FNV1A_BASIS_RLP, w->v, w->count * w->elem);
    if (fprintf(f, "%s 1 %016" PRIx64 " %zu\n", w->magic, w->key, w->count) < 0 ||
        fwrite(w->v, w->elem, w->count, f) != w->count || fwrite(&sum, sizeof sum, 1, f) != 1)
        return eng_err_set(ENG_EIO, "write failed: %s", strerror(errno));
    return ENG_OK;
}

/* Reads and closes f, a blob of w->count values of w->elem bytes (4: float, 8: double) under
 * w->magic and w->key (w->v unused). NULL and *out = the values (caller frees) when usable; otherwise why not
 * (`changed` when the key or count differs: a meaning change, not damage) and *out = NULL. */
static const char *blob_read(FILE *f, const warm_blob *w, const char *changed, void **out) {
    const size_t want = w->count;
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
    else if (sum != eng_fnv1a(ENG_FNV1A_BASIS_RLP, v, want * w->elem)) why = "checksum mismatch";
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
    const char *why = blob_read(f, &w, changed, &v);
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
    uint64_t h = eng_fnv1a(ENG_FNV1A_BASIS_RLP, "rlprice-behav-warm 1", 20);
    h = eng_fnv1a(h, FEAT_LAYOUT_VERSION, strlen(FEAT_LAYOUT_VERSION));
    uint64_t lh = feat_layout_get()->hash;
    h = eng_fnv1a(h, &lh, sizeof lh);
    int shape[4] = {c->K, ENV_BEHAV_NX, ENV_BEHAV_NZ, (int)b->kind};
    h = eng_fnv1a(h, shape, sizeof shape);
    double v[4] = {c->cfg->grid.band, b->l2, b->shrink, b->eps};
    return eng_fnv1a(h, v, sizeof v);
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
    const char *why = blob_read(f, &w, changed, &v);
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
            ENG_INFO("compare: behaviour model: pooled fit in %d Newton steps, %d Hessians (%s)", iters,
                     env_behaviour_fit_hessians(c->tr->behaviour), init ? "from last night's coefficients" : "from zero");
        rc = cmp_behav_warm_save(c, c->tr->behaviour);
    }
    free(init);
    return rc;
}

/* ---- the groups' checkpoints and the stored normalisation ------------------------------------------------------------------------- */

/* The manifest: everything a saved group must agree on to be reused.  Product ids are
 * written percent-encoded (anything outside printable ASCII, and '%'), one per line. */
static char *group_meta(const cmp_ctx *c, const cmp_group *g) {
    const exp_compare_cfg *cfg = c->cfg;
    float flat[FEAT_NORM_FLAT_LEN];
    feat_norm_to_array(&c->norm, flat);
    uint64_t nh = eng_fnv1a(ENG_FNV1A_BASIS_RLP, flat, sizeof flat);
    size_t cap = 512;
    /* the agent state's descriptors (compare.agent_desc): a line only when not the default, so
     * the checkpoints of before stay valid for agent_desc 0 and are refused (trained from
     * scratch) for another mode, whose states mean something else in the same slots */
    char desc[128] = "";
    if (cfg->agent_state && cfg->agent_desc) snprintf(desc, sizeof desc, "agent_desc %d\n", cfg->agent_desc);
    if (cfg->agent_state && cfg->agent_best) /* the best-price slots (compare.agent_best): likewise */
        snprintf(desc + strlen(desc), sizeof desc - strlen(desc), "agent_best %d\n", cfg->agent_best);
    if (c->split) /* DDPG's own view (compare.ddpg_demand_pool / ddpg_agent_best): likewise */
        snprintf(desc + strlen(desc), sizeof desc - strlen(desc), "ddpg_view %d %d\n", c->av[1].demand_pool, c->av[1].best);
    if (cmp_dqn_uplift_on(cfg)) { /* the DQN's Q-values are uplifts, on their scale (session 15's 10: its line) */
        const size_t k = strlen(desc);
        if (cfg->dqn_uplift_scale == 10.0) snprintf(desc + k, sizeof desc - k, "dqn_uplift 1\n");
        else snprintf(desc + k, sizeof desc - k, "dqn_uplift 1 scale %.6g\n", cfg->dqn_uplift_scale);
    }
    if (cfg->ddpg_band > 0) /* DDPG's actions mean other ratios (compare.ddpg_band): likewise */
        snprintf(desc + strlen(desc), sizeof desc - strlen(desc), "ddpg_band %.6g\n", cfg->ddpg_band);
    for (int i = 0; i < g->n; i++) cap += 3 * strlen(c->h->product_id[g->prod[i]]) + 2;
    char *s = malloc(cap);
    if (!s) {
        eng_err_set(ENG_ENOMEM, "compare: out of memory (checkpoint manifest)");
        return NULL;
    }
    size_t n = (size_t)snprintf(s, cap,
                                "rlprice-compare-group 1\nlayout %s %016llx\nnorm %016llx\nslots %d pooled %d\n"
                                "grid %d %.9g\nreward %s tau %d fallback %s min_traffic_frac %.9g\n"
                                "dqn %d %d gamma %.9g\nddpg %d %d gamma %.9g\nagent_state %d shared %d\n%sproducts %d\n",
                                FEAT_LAYOUT_VERSION, (unsigned long long)feat_layout_get()->hash,
                                (unsigned long long)nh, g->P, g->pooled, cfg->grid.K, cfg->grid.band,
                                env_reward_name(cfg->reward.kind), cfg->reward.tau,
                                env_fallback_name(cfg->reward.fallback), cfg->reward.min_traffic_frac,
                                cfg->dqn.hidden1, cfg->dqn.hidden2, (double)cfg->dqn.gamma, cfg->ddpg.hidden1,
                                cfg->ddpg.hidden2, (double)cfg->ddpg.gamma, cfg->agent_state, cfg->shared, desc, g->n);
    for (int i = 0; i < g->n; i++) {
        for (const unsigned char *p = (const unsigned char *)c->h->product_id[g->prod[i]]; *p; p++) {
            if (*p > 32 && *p < 127 && *p != '%') s[n++] = (char)*p;
            else n += (size_t)sprintf(s + n, "%%%02X", *p);
        }
        s[n++] = '\n';
    }
    s[n] = 0;
    return s;
}

static int write_text_cb(FILE *f, void *ctx) {
    const char *s = ctx;
    return fputs(s, f) < 0 ? eng_err_set(ENG_EIO, "write failed: %s", strerror(errno)) : 0;
}

static char *read_small_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *q = realloc(buf, cap);
            if (!q) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = q;
        }
        size_t k = fread(buf + n, 1, 4096, f);
        n += k;
        if (k < 4096) break;
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* The folder warm starts are read from: ckpt_from when set, else ckpt_dir. */
static const char *ckpt_src(const cmp_ctx *c) { return c->cfg->ckpt_from ? c->cfg->ckpt_from : c->cfg->ckpt_dir; }

/* A group's file: in the source folder (src = 1, for loading) or in ckpt_dir (for saving). */
static void ckpt_path(char *out, size_t n, const cmp_ctx *c, const cmp_group *g, const char *suffix, int src) {
    snprintf(out, n, "%s/%s.%s", src ? ckpt_src(c) : c->cfg->ckpt_dir, g->name, suffix);
}

/* Load the group's agents when its manifest matches; 1 loaded, 0 not (any reason, logged). */
int cmp_group_try_load(const cmp_ctx *c, cmp_group *g) {
    char path[4096];
    int ok = 0;
    if (!*ckpt_src(c)) {
        ENG_INFO("compare: %s: no earlier checkpoints; training from scratch", g->name);
        return 0;
    }
    char *want = group_meta(c, g), *have = NULL;
    if (!want) return 0;
    ckpt_path(path, sizeof path, c, g, "meta", 1);
    have = read_small_file(path);
    if (!have || strcmp(have, want)) {
        ENG_INFO("compare: %s: %s; training from scratch", g->name,
                 have ? "product list, feature layout, agent descriptors, reward or network shape changed" : "no checkpoint");
        goto done;
    }
    /* a bad file (checksum, non-finite or implausible values, shape) is refused by the loader
     * with one line; the group then trains from scratch and the bad file is never written again */
    ckpt_path(path, sizeof path, c, g, "dqn.h5", 1);
    if (agt_dqn_load(&g->dqn, c->be, path)) goto fail;
    ckpt_path(path, sizeof path, c, g, "ddpg.h5", 1);
    if (agt_ddpg_load(&g->ddpg, c->be, path)) goto fail;
    const agt_dqn_cfg *dq = agt_dqn_config(g->dqn);
    const agt_ddpg_cfg *dd = agt_ddpg_config(g->ddpg);
    if (agt_dqn_P(g->dqn) != g->P || agt_ddpg_P(g->ddpg) != g->P || dq->state_dim != c->av[0].SA ||
        dq->n_actions != c->K || dd->state_dim != c->av[1].SA) {
        eng_err_set(ENG_EFORMAT, "saved agents do not fit the group");
        goto fail;
    }
    ok = 1;
    ENG_INFO("compare: %s: warm start from %s", g->name, ckpt_src(c));
    goto done;
fail:
    ENG_WARN("compare: %s: checkpoint unusable (%s); training from scratch", g->name, eng_err_msg());
    cmp_group_free_agents(g);
done:
    free(want);
    free(have);
    return ok;
}

/* Save what a warm start of the group needs (agt_*_save_warm: parameters as IEEE half, no Adam
 * moments, no replay; LinUCB is refit every run and not saved) into ckpt_dir.  A group with a
 * diverged (non-finite) network is not saved: its file is left out (any older one removed),
 * so bad parameters never reach a checkpoint.  0 or a status. */
int cmp_group_save(const cmp_ctx *c, cmp_group *g) {
    char path[4096];
    int rc = 0, n_bad_q = 0, n_bad_d = 0;
    char *meta = group_meta(c, g);
    if (!meta) return ENG_ENOMEM;
    /* The manifest goes first and comes back last: a crash in between leaves no manifest, so
     * the half-written agents are never taken for this product list. */
    ckpt_path(path, sizeof path, c, g, "meta", 0);
    if (unlink(path) && errno != ENOENT) {
        rc = eng_err_set(ENG_EIO, "%s: cannot remove: %s", path, strerror(errno));
        goto done;
    }
    agt_dqn_diverged(g->dqn, &n_bad_q);
    agt_ddpg_diverged(g->ddpg, &n_bad_d);
    if (n_bad_q + n_bad_d > 0) {
        ENG_WARN("compare: %s: not saved (%d DQN and %d DDPG networks diverged); the next run trains it from "
                 "scratch",
                 g->name, n_bad_q, n_bad_d);
        goto done;
    }
    ckpt_path(path, sizeof path, c, g, "dqn.h5", 0);
    if ((rc = agt_dqn_save_warm(g->dqn, path))) goto done;
    ckpt_path(path, sizeof path, c, g, "ddpg.h5", 0);
    if ((rc = agt_ddpg_save_warm(g->ddpg, path))) goto done;
    ckpt_path(path, sizeof path, c, g, "meta", 0);
    rc = eng_atomic_write(path, write_text_cb, meta);
done:
    free(meta);
    return rc;
}

/* Read the normalisation stored in `path`, HDF5's error printing silenced: 0, or a status
 * with a one-line message (missing file, not HDF5, truncated, checksum, bad statistics). */
static int norm_read(feat_norm *nm, const char *path) {
    H5E_auto2_t fn;
    void *fd;
    H5Eget_auto2(H5E_DEFAULT, &fn, &fd);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc;
    hid_t f = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) {
        rc = eng_err_set(ENG_EFORMAT, "not a readable HDF5 file (truncated or corrupt)");
    } else {
        rc = feat_norm_load_h5(nm, f, "norm");
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, fn, fd);
    return rc;
}

/* Fit the normalisation on the training window: every product in one process; under MPI each
 * rank's own products, summed over every rank (collective).  0 or a status. */
static int norm_fit(cmp_ctx *c) {
    const int P = c->h->n_products;
    if (c->cfg->shard_count <= 1) return feat_norm_fit(&c->norm, c->h, NULL, 0, 0, c->train_end);
    int *own = malloc((size_t)(P ? P : 1) * sizeof *own), n = 0;
    int rc = eng_par_agree(own ? ENG_OK : eng_err_set(ENG_ENOMEM, "compare: out of memory"));
    if (rc) {
        free(own);
        return rc;
    }
    for (int p = 0; p < P; p++)
        if (c->mine[p]) own[n++] = p;
    rc = feat_norm_fit_ex(&c->norm, c->h, own, n, 0, c->train_end, 1);
    free(own);
    return rc;
}

/* The normalisation: reuse norm.h5 of the source folder (ckpt_from, else ckpt_dir) when present
 * and of this layout (so warm-started agents see states scaled as in training), else fit on the
 * training window; then save it into ckpt_dir (unless it was read from there).  A bad file is
 * reported in one line and refit, never copied forward. */
int cmp_norm_prepare(cmp_ctx *c) {
    int rc, loaded = 0, same = 0;
    char path[4096], src[4096], tmp[4200];
    if (c->cfg->ckpt_dir) {
        snprintf(src, sizeof src, "%s/norm.h5", ckpt_src(c));
        snprintf(path, sizeof path, "%s/norm.h5", c->cfg->ckpt_dir);
        if (*ckpt_src(c) && access(src, F_OK) == 0) {
            if (!(rc = norm_read(&c->norm, src))) {
                ENG_INFO("compare: using the stored normalisation %s (periods %d..%d)", src, c->norm.t_begin,
                         c->norm.t_end);
                loaded = 1;
                same = !strcmp(src, path);
            } else {
                ENG_WARN("compare: %s unusable (%s); fitting a new normalisation", src, eng_err_msg());
            }
        }
    }
    if (c->cfg->shard_count > 1) { /* MPI: every rank reads the stored one, or every rank fits */
        int64_t all = loaded;
        if ((rc = eng_par_allreduce_i64(&all, 1, ENG_PAR_MIN))) return rc;
        loaded = (int)all;
    }
    if (loaded && same) return 0;
    if (!loaded && (rc = norm_fit(c))) return rc;
    if (!c->cfg->ckpt_dir || (c->cfg->shard_count > 1 && c->cfg->shard_index != 0)) return 0; /* MPI: rank 0 saves */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return eng_err_set(ENG_EIO, "%s: cannot create", tmp);
    rc = feat_norm_save_h5(&c->norm, f, "norm");
    if (H5Fclose(f) < 0 && !rc) rc = eng_err_set(ENG_EIO, "%s: close failed", tmp);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    return eng_atomic_commit(tmp, path);
}
