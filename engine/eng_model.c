/* eng_model.c - model groups: P identical-shape MLPs trained together on one backend.
 *
 * Layout (see eng_model.h): one backend allocation `mem` of 4 * P * ld floats holds the
 * params, grads, adam_m and adam_v views back to back; inside each view product p owns ld
 * consecutive floats (ld = nparams rounded up to a multiple of ENG_MODEL_PAD = 32 floats, so
 * every product block starts 128-byte aligned) laid out W_0 [out_0][in_0], b_0 [out_0], W_1,
 * b_1, ..., then zeros.  Layer l of all products is a strided batch (stride ld) for one GEMM
 * call.  The padding never leaves the model: get/set, checkpoints and the host see
 * [P][nparams]; the pad floats stay 0 (no gradient reaches them, so Adam and Polyak keep them 0).
 *
 * A third backend allocation `smem` holds per-product step values that stay on the backend:
 * gsum [P] doubles (the gradient's sum of squares), psum [P] doubles (the parameters', for
 * the divergence scan), loss [P], mask [P] (the Adam mask as floats, uploaded only when the
 * host mask changes).  eng_model_stats_post copies gsum, psum and loss into pinned host memory
 * `h_stats` in one copy without waiting; eng_model_stats_fetch waits once.
 *
 * A second backend allocation `amem` holds the per-batch buffers, sized for the largest
 * batch seen so far (grown on demand, never per call):
 *     act[0]   [P][B][sizes[0]]   the input X
 *     act[l+1] [P][B][sizes[l+1]] the output of layer l after its activation
 *     g0, g1   [P][B][max size]   gradient ping-pong buffers for backward
 *     tgt, wgt [P][B][outputs]    loss target and weight
 */
#include "eng_model.h"
#include "eng_model_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ENG_MODEL_PAD 32 /* floats: product blocks start 128-byte aligned */
#define ENG_MODEL_IO_CHUNK 256 /* products per staged copy of a whole view */

struct eng_model {
    const eng_backend *be;
    eng_arch arch;
    int P;
    size_t np;                     /* parameters per product */
    size_t ld;                     /* floats per product block (np padded) */
    size_t off_w[ENG_MAX_LAYERS];  /* offset of W_l inside a product's block */
    size_t off_b[ENG_MAX_LAYERS];  /* offset of b_l inside a product's block */
    float *mem;                    /* [4][P][np]: one backend allocation */
    float *params;                 /* [P][np] view of mem */
    float *grads;                  /* [P][np] view of mem */
    float *adam_m;                 /* [P][np] view of mem */
    float *adam_v;                 /* [P][np] view of mem */
    long step;                     /* Adam steps taken */
    int grads_stale;               /* zero_grad pending: grads hold garbage that the next
                                    * backward overwrites (beta 0) instead of adding to */

    int cap_B;                     /* batch size amem is sized for (0 = none yet) */
    int B;                         /* batch size of the last forward */
    int have_forward;              /* activations hold a forward pass */
    float *amem;                   /* backend allocation for the buffers below */
    float *act[ENG_MAX_LAYERS + 1]; /* act[l]: [P][B][sizes[l]] */
    float *g0, *g1;                /* [P][B][max_width] */
    float *tgt, *wgt;              /* [P][B][sizes[n_layers]] */
    const float *x0;               /* layer-0 input of the last forward: act[0] or caller memory */

    double *h_sumsq;               /* host [P] scratch: per-product sums of squares */
    float *smem;                   /* backend [6P]: d_sumsq, d_psum (P doubles each), d_loss, d_mask */
    double *d_sumsq, *d_psum;
    float *d_loss, *d_mask;
    int have_norms;                /* d_sumsq holds the last Adam step's sums of squares */
    int want_norms;                /* stats were posted once: always compute the sums */
    unsigned char *h_mask;         /* host [P]: the mask d_mask holds (mask_valid) */
    float *h_maskf;                /* host [P]: staging of the float mask */
    int mask_valid;
    float *h_stats;                /* backend host memory [5P]: gsum, psum (P doubles each), loss [P] */
    void *stats_ev;                /* event after the last posted stats copy */
    int stats_posted;
    int stats_scan;                /* the posted stats include the parameter scan */
};

/* ---- architecture ------------------------------------------------------------------ */

static int arch_check(const eng_arch *a) {
    if (!a) return eng_err_set(ENG_EINVAL, "model: arch is NULL");
    if (a->n_layers < 1 || a->n_layers > ENG_MAX_LAYERS)
        return eng_err_set(ENG_EINVAL, "model: n_layers %d outside 1..%d", a->n_layers, ENG_MAX_LAYERS);
    for (int l = 0; l <= a->n_layers; l++)
        if (a->sizes[l] <= 0 || a->sizes[l] > (1 << 20))
            return eng_err_set(ENG_EINVAL, "model: layer size %d = %d outside 1..%d", l, a->sizes[l], 1 << 20);
    for (int l = 0; l < a->n_layers; l++)
        if (a->acts[l] != ENG_ACT_IDENTITY && a->acts[l] != ENG_ACT_RELU && a->acts[l] != ENG_ACT_TANH)
            return eng_err_set(ENG_EINVAL, "model: layer %d has unknown activation %d", l, (int)a->acts[l]);
    return ENG_OK;
}

/* Fills *a from a size list; returns ENG_EINVAL for 1 or more than ENG_MAX_LAYERS+1
 * sizes or a non-positive size. */
int eng_arch_mlp(eng_arch *a, const int *sizes, int n_sizes, eng_act hidden, eng_act output) {
    if (!a || !sizes) return eng_err_set(ENG_EINVAL, "eng_arch_mlp: NULL argument");
    if (n_sizes < 2 || n_sizes > ENG_MAX_LAYERS + 1)
        return eng_err_set(ENG_EINVAL, "eng_arch_mlp: %d sizes given, need 2..%d", n_sizes, ENG_MAX_LAYERS + 1);
    memset(a, 0, sizeof *a);
    a->n_layers = n_sizes - 1;
    for (int l = 0; l < n_sizes; l++) a->sizes[l] = sizes[l];
    for (int l = 0; l < a->n_layers; l++) a->acts[l] = l + 1 < a->n_layers ? hidden : output;
    return arch_check(a);
}

size_t eng_arch_nparams(const eng_arch *a) {
    if (!a || a->n_layers < 1 || a->n_layers > ENG_MAX_LAYERS) return 0;
    size_t n = 0;
    for (int l = 0; l < a->n_layers; l++) n += (size_t)a->sizes[l + 1] * ((size_t)a->sizes[l] + 1);
    return n;
}

eng_adam_cfg eng_adam_default(void) {
    eng_adam_cfg c = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .clip_norm = 0.0f};
    return c;
}

/* ---- create / free ------------------------------------------------------------------- */

/* Product p's initial parameters into host buffer w [np]: He-uniform (limit sqrt(6/in))
 * for layers followed by ReLU, Xavier-uniform (sqrt(6/(in+out))) otherwise; biases 0. */
static void init_product(const eng_model *m, uint64_t seed, uint64_t p, float *w) {
    eng_rng r;
    eng_rng_seed(&r, eng_seed_derive(seed, p));
    memset(w, 0, m->np * sizeof(float));
    for (int l = 0; l < m->arch.n_layers; l++) {
        int in = m->arch.sizes[l], out = m->arch.sizes[l + 1];
        double lim = m->arch.acts[l] == ENG_ACT_RELU ? sqrt(6.0 / in) : sqrt(6.0 / (in + out));
        float *W = w + m->off_w[l];
        for (size_t k = 0; k < (size_t)in * out; k++) W[k] = (float)((2.0 * eng_rng_uniform(&r) - 1.0) * lim);
    }
}

int eng_model_create(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed) {
    return eng_model_create_at(out, be, arch, P, seed, 0);
}

static int model_create(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                        long first_product, const uint64_t *keys, size_t pad);

int eng_model_create_at(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                        long first_product) {
    return model_create(out, be, arch, P, seed, first_product, NULL, ENG_MODEL_PAD);
}

int eng_model_create_keyed(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                           const uint64_t *keys) {
    return model_create(out, be, arch, P, seed, 0, keys, ENG_MODEL_PAD);
}

/* See eng_model_internal.h: eng_model_create with product blocks padded to a multiple of pad. */
int eng_model_create_padded(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                            size_t pad) {
    if (pad < 1 || pad > ENG_MODEL_PAD)
        return eng_err_set(ENG_EINVAL, "eng_model_create_padded: pad %zu outside 1..%d", pad, ENG_MODEL_PAD);
    return model_create(out, be, arch, P, seed, 0, NULL, pad);
}

const float *eng_model_mem(const eng_model *m) { return m ? m->mem : NULL; }

/* eng_model_create_at / _keyed / _padded: product i's stream is keys[i] when keys, else
 * first_product + i; product blocks are nparams rounded up to a multiple of pad floats. */
static int model_create(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                        long first_product, const uint64_t *keys, size_t pad) {
    int rc = ENG_OK;
    eng_model *m = NULL;
    float *host = NULL;
    if (!out) return eng_err_set(ENG_EINVAL, "eng_model_create: out is NULL");
    *out = NULL;
    if (!be) return eng_err_set(ENG_EINVAL, "eng_model_create: backend is NULL");
    if ((rc = arch_check(arch)) != ENG_OK) return rc;
    if (P < 1) return eng_err_set(ENG_EINVAL, "eng_model_create: P = %d, need >= 1", P);
    if (first_product < 0)
        return eng_err_set(ENG_EINVAL, "eng_model_create: first product %ld is negative", first_product);
    size_t np = eng_arch_nparams(arch);
    if (np > INT_MAX) return eng_err_set(ENG_EINVAL, "eng_model_create: %zu parameters per network is too many", np);
    if ((size_t)P > ((size_t)-1 / sizeof(float)) / 4 / (np + ENG_MODEL_PAD))
        return eng_err_set(ENG_ENOMEM, "eng_model_create: %d x %zu parameters overflow", P, np);

    m = eng_calloc(1, sizeof *m);
    if (!m) return ENG_ENOMEM;
    m->be = be;
    m->arch = *arch;
    m->P = P;
    m->np = np;
    m->ld = (np + pad - 1) / pad * pad;
    size_t off = 0;
    for (int l = 0; l < arch->n_layers; l++) {
        m->off_w[l] = off;
        off += (size_t)arch->sizes[l] * arch->sizes[l + 1];
        m->off_b[l] = off;
        off += (size_t)arch->sizes[l + 1];
    }
    m->h_sumsq = eng_calloc((size_t)P, sizeof(double));
    m->h_mask = eng_calloc((size_t)P, 1);
    m->h_maskf = eng_calloc((size_t)P, sizeof(float));
    const int chunk = P < ENG_MODEL_IO_CHUNK ? P : ENG_MODEL_IO_CHUNK;
    host = eng_calloc((size_t)chunk * m->ld, sizeof(float));
    if (!m->h_sumsq || !m->h_mask || !m->h_maskf || !host) {
        rc = ENG_ENOMEM;
        goto cleanup;
    }
    size_t view = (size_t)P * m->ld;
    if ((rc = be->alloc(&m->mem, 4 * view)) != ENG_OK) goto cleanup;
    if ((rc = be->alloc(&m->smem, 6 * (size_t)P)) != ENG_OK) goto cleanup;
    if ((rc = be->host_alloc(&m->h_stats, 5 * (size_t)P)) != ENG_OK) goto cleanup;
    m->d_sumsq = (double *)(void *)m->smem; /* backend allocations are at least 8-byte aligned */
    m->d_psum = (double *)(void *)(m->smem + 2 * (size_t)P);
    m->d_loss = m->smem + 4 * (size_t)P;
    m->d_mask = m->smem + 5 * (size_t)P;
    m->params = m->mem;
    m->grads = m->mem + view;
    m->adam_m = m->mem + 2 * view;
    m->adam_v = m->mem + 3 * view;
    /* one upload per chunk of products (the pad floats stay 0) */
    for (int p0 = 0; p0 < P; p0 += chunk) {
        int n = P - p0 < chunk ? P - p0 : chunk;
        for (int k = 0; k < n; k++)
            init_product(m, seed, keys ? keys[p0 + k] : (uint64_t)first_product + (uint64_t)(p0 + k),
                         host + (size_t)k * m->ld);
        if ((rc = be->to_device(m->params + (size_t)p0 * m->ld, host, (size_t)n * m->ld)) != ENG_OK) goto cleanup;
    }
    *out = m;
    m = NULL;
cleanup:
    free(host);
    eng_model_free(m);
    return rc;
}

void eng_model_free(eng_model *m) {
    if (!m) return;
    /* a posted statistics copy may still be writing h_stats: let it land first */
    if (m->stats_posted && m->stats_ev) (void)m->be->event_wait(m->stats_ev);
    if (m->stats_ev) m->be->event_free(m->stats_ev);
    m->be->free(m->mem);
    m->be->free(m->amem);
    m->be->free(m->smem);
    m->be->host_free(m->h_stats);
    free(m->h_sumsq);
    free(m->h_mask);
    free(m->h_maskf);
    free(m);
}

int eng_model_P(const eng_model *m) { return m->P; }
const eng_arch *eng_model_arch(const eng_model *m) { return &m->arch; }
size_t eng_model_nparams(const eng_model *m) { return m->np; }
size_t eng_model_stride(const eng_model *m) { return m->ld; }
const eng_backend *eng_model_backend(const eng_model *m) { return m->be; }
long eng_model_step(const eng_model *m) { return m->step; }
void eng_model_set_step(eng_model *m, long step) { m->step = step; }

/* ---- batch buffers ------------------------------------------------------------------------ */

static int ensure_batch(eng_model *m, int B) {
    if (B <= m->cap_B) return ENG_OK;
    const eng_arch *a = &m->arch;
    size_t pb = (size_t)m->P * (size_t)B;
    int maxw = 0;
    size_t total = 0;
    for (int l = 0; l <= a->n_layers; l++) {
        total += pb * a->sizes[l];
        if (a->sizes[l] > maxw) maxw = a->sizes[l];
    }
    size_t out = (size_t)a->sizes[a->n_layers];
    total += 2 * pb * maxw + 2 * pb * out;
    if (pb * (size_t)maxw > (size_t)LONG_MAX / 2)
        return eng_err_set(ENG_EINVAL, "model: batch %d x %d products is too large", B, m->P);
    m->be->free(m->amem);
    m->amem = NULL;
    m->cap_B = 0;
    m->have_forward = 0;
    int rc = m->be->alloc(&m->amem, total);
    if (rc != ENG_OK) return rc;
    float *p = m->amem;
    for (int l = 0; l <= a->n_layers; l++) {
        m->act[l] = p;
        p += pb * a->sizes[l];
    }
    m->g0 = p;
    p += pb * maxw;
    m->g1 = p;
    p += pb * maxw;
    m->tgt = p;
    p += pb * out;
    m->wgt = p;
    m->cap_B = B;
    return ENG_OK;
}

/* ---- forward / backward ------------------------------------------------------------------- */

/* The layers of a forward on input X (backend memory, m->act[0] or the caller's) already
 * checked and sized for B. */
static int forward_layers(eng_model *m, const float *X, int B) {
    const eng_backend *be = m->be;
    const eng_arch *a = &m->arch;
    const int P = m->P, L = a->n_layers;
    int rc = ENG_OK;
    m->x0 = X;
    for (int l = 0; l < L; l++) {
        int in = a->sizes[l], out = a->sizes[l + 1];
        const float *xin = l == 0 ? X : m->act[l];
        /* Y_l = X_l W_l^T for every product: [B][in] x [out][in]^T -> [B][out] */
        rc = be->gemm(0, 1, B, out, in, 1.0f, xin, in, (long)B * in, m->params + m->off_w[l], in, (long)m->ld, 0.0f,
                      m->act[l + 1], out, (long)B * out, P);
        if (rc != ENG_OK) return rc;
        rc = be->bias_act(m->act[l + 1], m->params + m->off_b[l], (long)m->ld, P, B, out, a->acts[l]);
        if (rc != ENG_OK) return rc;
    }
    m->B = B;
    m->have_forward = 1;
    return ENG_OK;
}

int eng_model_forward(eng_model *m, const float *X, int B, float *Y) {
    if (!m || !X) return eng_err_set(ENG_EINVAL, "eng_model_forward: NULL argument");
    if (B < 1) return eng_err_set(ENG_EINVAL, "eng_model_forward: batch size %d, need >= 1", B);
    const eng_arch *a = &m->arch;
    int rc = ensure_batch(m, B);
    if (rc != ENG_OK) return rc;
    m->have_forward = 0;
    const int P = m->P, L = a->n_layers;
    if ((rc = m->be->to_device(m->act[0], X, (size_t)P * B * a->sizes[0])) != ENG_OK) return rc;
    if ((rc = forward_layers(m, m->act[0], B)) != ENG_OK) return rc;
    if (Y) return m->be->to_host(Y, m->act[L], (size_t)P * B * a->sizes[L]);
    return ENG_OK;
}

int eng_model_forward_dev(eng_model *m, const float *X, int B) {
    if (!m || !X) return eng_err_set(ENG_EINVAL, "eng_model_forward_dev: NULL argument");
    if (B < 1) return eng_err_set(ENG_EINVAL, "eng_model_forward_dev: batch size %d, need >= 1", B);
    int rc = ensure_batch(m, B);
    if (rc != ENG_OK) return rc;
    m->have_forward = 0;
    return forward_layers(m, X, B);
}

const float *eng_model_output_dev(const eng_model *m) {
    return m && m->have_forward ? m->act[m->arch.n_layers] : NULL;
}

/* Inference layers: X (backend memory) through the gradient ping-pong buffers g0/g1 (free
 * between steps: backward refills g0 first), the last layer into Y (backend memory), so the
 * cached activations of the last forward stay valid for a later backward. */
static int infer_layers(eng_model *m, const float *X, int B, float *Y) {
    const eng_backend *be = m->be;
    const eng_arch *a = &m->arch;
    const int P = m->P, L = a->n_layers;
    const float *cur = X;
    float *buf[2] = {m->g0, m->g1};
    for (int l = 0; l < L; l++) {
        int in = a->sizes[l], out = a->sizes[l + 1];
        float *dst = l == L - 1 ? Y : buf[l & 1];
        int rc = be->gemm(0, 1, B, out, in, 1.0f, cur, in, (long)B * in, m->params + m->off_w[l], in, (long)m->ld,
                          0.0f, dst, out, (long)B * out, P);
        if (rc != ENG_OK) return rc;
        rc = be->bias_act(dst, m->params + m->off_b[l], (long)m->ld, P, B, out, a->acts[l]);
        if (rc != ENG_OK) return rc;
        cur = dst;
    }
    return ENG_OK;
}

/* Inference from host memory.  On the CPU backend (host memory) the input is read from the
 * caller's X and the last layer written straight into Y: no copies.  Elsewhere X goes to g1
 * (read by layer 0 only) and the last layer lands in the ping-pong buffer it would use. */
int eng_model_infer(eng_model *m, const float *X, int B, float *Y) {
    if (!m || !X || !Y) return eng_err_set(ENG_EINVAL, "eng_model_infer: NULL argument");
    if (B < 1) return eng_err_set(ENG_EINVAL, "eng_model_infer: batch size %d, need >= 1", B);
    const eng_backend *be = m->be;
    const eng_arch *a = &m->arch;
    int rc = ensure_batch(m, B); /* growing drops a cached forward (have_forward = 0) */
    if (rc != ENG_OK) return rc;
    if (be->kind == ENG_BACKEND_CPU) return infer_layers(m, X, B, Y);
    float *last = (a->n_layers - 1) & 1 ? m->g1 : m->g0;
    if ((rc = be->to_device(m->g1, X, (size_t)m->P * B * a->sizes[0])) != ENG_OK) return rc;
    if ((rc = infer_layers(m, m->g1, B, last)) != ENG_OK) return rc;
    return be->to_host(Y, last, (size_t)m->P * B * a->sizes[a->n_layers]);
}

int eng_model_infer_dev(eng_model *m, const float *X, int B, float *Y) {
    if (!m || !X || !Y) return eng_err_set(ENG_EINVAL, "eng_model_infer_dev: NULL argument");
    if (B < 1) return eng_err_set(ENG_EINVAL, "eng_model_infer_dev: batch size %d, need >= 1", B);
    int rc = ensure_batch(m, B);
    if (rc != ENG_OK) return rc;
    return infer_layers(m, X, B, Y);
}
/* Backward from dL/d(output) already in m->g0; accumulates grads (skipped when !want_grads:
 * only dL/dX is wanted); dX may be NULL, else it receives dL/dX: host memory, or backend memory
 * when dx_dev. */
static int backward_from_g0(eng_model *m, float *dX, int dx_dev, int want_grads) {
    float *dX_host = dX;
    const eng_backend *be = m->be;
    const eng_arch *a = &m->arch;
    const int P = m->P, B = m->B;
    float *cur = m->g0, *other = m->g1;
    const float beta = m->grads_stale ? 0.0f : 1.0f; /* overwrite after zero_grad, else accumulate */
    int rc = ENG_OK;
    for (int l = a->n_layers - 1; l >= 0; l--) {
        int in = a->sizes[l], out = a->sizes[l + 1];
        if ((rc = be->act_backward(cur, m->act[l + 1], (size_t)P * B * out, a->acts[l])) != ENG_OK) return rc;
        if (want_grads) {
            /* dW_l += dY^T X: [out][B] x [B][in] -> [out][in] */
            const float *xin = l == 0 ? m->x0 : m->act[l];
            rc = be->gemm(1, 0, out, in, B, 1.0f, cur, out, (long)B * out, xin, in, (long)B * in, beta,
                          m->grads + m->off_w[l], in, (long)m->ld, P);
            if (rc != ENG_OK) return rc;
            rc = be->bias_grad(m->grads + m->off_b[l], (long)m->ld, cur, P, B, out, beta != 0.0f);
            if (rc != ENG_OK) return rc;
        }
        if (l > 0 || dX_host) {
            /* dX_l = dY W_l: [B][out] x [out][in] -> [B][in] */
            rc = be->gemm(0, 0, B, in, out, 1.0f, cur, out, (long)B * out, m->params + m->off_w[l], in,
                          (long)m->ld, 0.0f, other, in, (long)B * in, P);
            if (rc != ENG_OK) return rc;
            float *t = cur;
            cur = other;
            other = t;
        }
    }
    if (want_grads) m->grads_stale = 0; /* every weight and bias of every product was written */
    if (dX && dx_dev) return be->copy(dX, cur, (size_t)P * B * a->sizes[0]);
    if (dX_host) return be->to_host(dX_host, cur, (size_t)P * B * a->sizes[0]);
    return ENG_OK;
}

int eng_model_backward(eng_model *m, const float *dY, float *dX) {
    if (!m || !dY) return eng_err_set(ENG_EINVAL, "eng_model_backward: NULL argument");
    if (!m->have_forward) return eng_err_set(ENG_EINVAL, "eng_model_backward: no forward pass to go back through");
    int rc = m->be->to_device(m->g0, dY, (size_t)m->P * m->B * m->arch.sizes[m->arch.n_layers]);
    if (rc != ENG_OK) return rc;
    return backward_from_g0(m, dX, 0, 1);
}

int eng_model_backward_input(eng_model *m, const float *dY, float *dX) {
    if (!m || !dY || !dX) return eng_err_set(ENG_EINVAL, "eng_model_backward_input: NULL argument");
    if (!m->have_forward)
        return eng_err_set(ENG_EINVAL, "eng_model_backward_input: no forward pass to go back through");
    int rc = m->be->to_device(m->g0, dY, (size_t)m->P * m->B * m->arch.sizes[m->arch.n_layers]);
    if (rc != ENG_OK) return rc;
    return backward_from_g0(m, dX, 0, 0);
}

int eng_model_loss_backward(eng_model *m, eng_loss kind, float huber_delta, const float *target,
                            const float *weight, float *loss_out) {
    if (!m || !target) return eng_err_set(ENG_EINVAL, "eng_model_loss_backward: NULL argument");
    if (!m->have_forward)
        return eng_err_set(ENG_EINVAL, "eng_model_loss_backward: no forward pass to compute a loss on");
    const eng_backend *be = m->be;
    const int L = m->arch.n_layers, out = m->arch.sizes[L];
    size_t n = (size_t)m->P * m->B * out;
    int rc = be->to_device(m->tgt, target, n);
    if (rc == ENG_OK && weight) rc = be->to_device(m->wgt, weight, n);
    if (rc != ENG_OK) return rc;
    rc = be->loss_dev(kind, huber_delta, m->act[L], m->tgt, weight ? m->wgt : NULL, m->g0, m->d_loss, m->P, m->B, out);
    if (rc == ENG_OK && loss_out) rc = be->to_host(loss_out, m->d_loss, (size_t)m->P);
    if (rc != ENG_OK) return rc;
    return backward_from_g0(m, NULL, 0, 1);
}

/* The device-resident backwards: dY (backend memory) is copied into g0 first (the backward
 * overwrites its input in place); dX backend memory or NULL. */
static int backward_dev(eng_model *m, const float *dY, float *dX, int want_grads, const char *fn) {
    if (!m || !dY || (!want_grads && !dX)) return eng_err_set(ENG_EINVAL, "%s: NULL argument", fn);
    if (!m->have_forward) return eng_err_set(ENG_EINVAL, "%s: no forward pass to go back through", fn);
    int rc = m->be->copy(m->g0, dY, (size_t)m->P * m->B * m->arch.sizes[m->arch.n_layers]);
    if (rc != ENG_OK) return rc;
    return backward_from_g0(m, dX, 1, want_grads);
}

int eng_model_backward_dev(eng_model *m, const float *dY, float *dX) {
    return backward_dev(m, dY, dX, 1, "eng_model_backward_dev");
}

int eng_model_backward_input_dev(eng_model *m, const float *dY, float *dX) {
    return backward_dev(m, dY, dX, 0, "eng_model_backward_input_dev");
}

int eng_model_loss_backward_dev(eng_model *m, eng_loss kind, float huber_delta, const float *target,
                                const float *weight) {
    if (!m || !target) return eng_err_set(ENG_EINVAL, "eng_model_loss_backward_dev: NULL argument");
    if (!m->have_forward)
        return eng_err_set(ENG_EINVAL, "eng_model_loss_backward_dev: no forward pass to compute a loss on");
    const int L = m->arch.n_layers, out = m->arch.sizes[L];
    int rc = m->be->loss_dev(kind, huber_delta, m->act[L], target, weight, m->g0, m->d_loss, m->P, m->B, out);
    if (rc != ENG_OK) return rc;
    return backward_from_g0(m, NULL, 0, 1);
}

/* Zeroing is lazy: the next backward writes the gradients (GEMM beta 0) instead of adding
 * to them, which saves a pass over P * nparams floats per step.  Anything else that reads
 * the grads view first materialises the zeros (grads_ready). */
int eng_model_zero_grad(eng_model *m) {
    if (!m) return eng_err_set(ENG_EINVAL, "eng_model_zero_grad: model is NULL");
    m->grads_stale = 1;
    return ENG_OK;
}

static int grads_ready(const eng_model *m) {
    if (!m->grads_stale) return ENG_OK;
    int rc = m->be->fill(m->grads, 0.0f, (size_t)m->P * m->ld);
    if (rc == ENG_OK) ((eng_model *)m)->grads_stale = 0;
    return rc;
}

/* ---- optimiser ----------------------------------------------------------------------------- */

int eng_model_adam_step(eng_model *m, const eng_adam_cfg *cfg, const unsigned char *mask, float *grad_norm_out) {
    if (!m || !cfg) return eng_err_set(ENG_EINVAL, "eng_model_adam_step: NULL argument");
    if (!(cfg->lr >= 0.0f) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) ||
        !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) || !(cfg->eps > 0.0f) || !(cfg->clip_norm >= 0.0f))
        return eng_err_set(ENG_EINVAL,
                           "eng_model_adam_step: bad config (lr %g, beta1 %g, beta2 %g, eps %g, clip_norm %g)",
                           (double)cfg->lr, (double)cfg->beta1, (double)cfg->beta2, (double)cfg->eps,
                           (double)cfg->clip_norm);
    const eng_backend *be = m->be;
    const int P = m->P;
    int rc = grads_ready(m);
    if (rc != ENG_OK) return rc;
    const int norms = cfg->clip_norm > 0.0f || grad_norm_out || m->want_norms;
    m->have_norms = 0;
    if (norms) {
        if ((rc = be->sumsq_dev(m->grads, (long)m->ld, (int)m->np, P, m->d_sumsq)) != ENG_OK) return rc;
        m->have_norms = 1;
        if (grad_norm_out) {
            if ((rc = be->to_host((float *)(void *)m->h_sumsq, (const float *)(const void *)m->d_sumsq,
                                  2 * (size_t)P)) != ENG_OK)
                return rc;
            for (int p = 0; p < P; p++) grad_norm_out[p] = (float)sqrt(m->h_sumsq[p]);
        }
    }
    /* the mask goes to the backend only when it changed since the last step */
    const float *dmask = NULL;
    if (mask) {
        if (!m->mask_valid || memcmp(m->h_mask, mask, (size_t)P) != 0) {
            for (int p = 0; p < P; p++) m->h_maskf[p] = mask[p] ? 1.0f : 0.0f;
            m->mask_valid = 0;
            if ((rc = be->to_device(m->d_mask, m->h_maskf, (size_t)P)) != ENG_OK) return rc;
            memcpy(m->h_mask, mask, (size_t)P);
            m->mask_valid = 1;
        }
        dmask = m->d_mask;
    }
    double t = (double)(m->step + 1);
    float bc1 = (float)(1.0 - pow(cfg->beta1, t)), bc2 = (float)(1.0 - pow(cfg->beta2, t));
    if (bc1 <= 0.0f) bc1 = 1.0f; /* beta1 == 0: no correction needed */
    if (bc2 <= 0.0f) bc2 = 1.0f;
    rc = be->adam_clip(m->params, m->grads, m->adam_m, m->adam_v, m->ld, P, dmask,
                       cfg->clip_norm > 0.0f ? m->d_sumsq : NULL, cfg->clip_norm, cfg->lr, cfg->beta1, cfg->beta2,
                       cfg->eps, bc1, bc2);
    if (rc != ENG_OK) return rc;
    m->step++;
    return ENG_OK;
}

/* ---- asynchronous step statistics ------------------------------------------------------------ */

int eng_model_stats_post(eng_model *m, int scan_params) {
    if (!m) return eng_err_set(ENG_EINVAL, "eng_model_stats_post: model is NULL");
    if (m->stats_posted)
        return eng_err_set(ENG_EINVAL, "eng_model_stats_post: the last posted statistics were not fetched");
    m->want_norms = 1;
    int rc = ENG_OK;
    if (!m->have_norms) /* first post: this step ran without the sums; compute them now */
        rc = m->be->sumsq_dev(m->grads, (long)m->ld, (int)m->np, m->P, m->d_sumsq);
    if (rc != ENG_OK) return rc;
    m->have_norms = 1;
    if (scan_params && (rc = m->be->sumsq_dev(m->params, (long)m->ld, (int)m->np, m->P, m->d_psum)) != ENG_OK)
        return rc;
    /* gsum, psum (2P floats each) and loss (P) are adjacent: one copy */
    rc = m->be->to_host_async(m->h_stats, m->smem, 5 * (size_t)m->P);
    if (rc == ENG_OK) rc = m->be->event_record(&m->stats_ev);
    if (rc == ENG_OK) {
        m->stats_posted = 1;
        m->stats_scan = scan_params != 0;
    }
    return rc;
}

int eng_model_stats_fetch(eng_model *m, float *loss, float *grad_norm, unsigned char *bad_params) {
    if (!m) return eng_err_set(ENG_EINVAL, "eng_model_stats_fetch: model is NULL");
    if (!m->stats_posted) return eng_err_set(ENG_EINVAL, "eng_model_stats_fetch: nothing was posted");
    m->stats_posted = 0;
    int rc = m->be->event_wait(m->stats_ev);
    if (rc != ENG_OK) return rc;
    const double *gs = (const double *)(const void *)m->h_stats, *ps = gs + m->P;
    const float *l = m->h_stats + 4 * (size_t)m->P;
    int nbad = 0;
    for (int p = 0; p < m->P; p++) {
        if (loss) loss[p] = l[p];
        if (grad_norm) grad_norm[p] = (float)sqrt(gs[p]);
        const int b = m->stats_scan && !isfinite(ps[p]);
        if (bad_params) bad_params[p] = (unsigned char)b;
        nbad += b;
    }
    return nbad;
}

/* ---- target networks ----------------------------------------------------------------------- */

static int same_shape(const eng_model *a, const eng_model *b, const char *fn) {
    if (!a || !b) return eng_err_set(ENG_EINVAL, "%s: model is NULL", fn);
    if (a->be != b->be) return eng_err_set(ENG_EINVAL, "%s: models live on different backends", fn);
    if (a->P != b->P || a->np != b->np || a->arch.n_layers != b->arch.n_layers ||
        memcmp(a->arch.sizes, b->arch.sizes, sizeof a->arch.sizes) != 0)
        return eng_err_set(ENG_EINVAL, "%s: models differ in shape (P %d vs %d, %zu vs %zu parameters)", fn, a->P,
                           b->P, a->np, b->np);
    return ENG_OK;
}

int eng_model_copy_params(eng_model *dst, const eng_model *src) {
    int rc = same_shape(dst, src, "eng_model_copy_params");
    if (rc != ENG_OK) return rc;
    return dst->be->copy(dst->params, src->params, (size_t)dst->P * dst->ld);
}

int eng_model_polyak(eng_model *dst, const eng_model *src, float tau) {
    int rc = same_shape(dst, src, "eng_model_polyak");
    if (rc != ENG_OK) return rc;
    if (!(tau >= 0.0f && tau <= 1.0f)) return eng_err_set(ENG_EINVAL, "eng_model_polyak: tau %g outside [0, 1]", (double)tau);
    return dst->be->polyak(dst->params, src->params, (size_t)dst->P * dst->ld, tau);
}

/* ---- views --------------------------------------------------------------------------------- */

static float *view_ptr(const eng_model *m, eng_view which) {
    if ((int)which < 0 || (int)which > 3) return NULL;
    return m->mem + (size_t)which * m->P * m->ld;
}

/* A whole view to (to_host != 0) or from the host buffer buf [P][np]: one copy when there is no
 * padding, otherwise one copy per chunk of ENG_MODEL_IO_CHUNK products through a host buffer
 * (setting writes the pad floats as 0). */
static int view_io(const eng_model *m, float *v, float *buf, int to_host) {
    const size_t np = m->np, ld = m->ld;
    if (ld == np)
        return to_host ? m->be->to_host(buf, v, (size_t)m->P * np) : m->be->to_device(v, buf, (size_t)m->P * np);
    const int chunk = m->P < ENG_MODEL_IO_CHUNK ? m->P : ENG_MODEL_IO_CHUNK;
    float *tmp = eng_calloc((size_t)chunk * ld, sizeof(float));
    if (!tmp) return ENG_ENOMEM;
    int rc = ENG_OK;
    for (int p0 = 0; p0 < m->P && rc == ENG_OK; p0 += chunk) {
        const int n = m->P - p0 < chunk ? m->P - p0 : chunk;
        float *dv = v + (size_t)p0 * ld, *hb = buf + (size_t)p0 * np;
        if (to_host) {
            rc = m->be->to_host(tmp, dv, (size_t)n * ld);
            for (int k = 0; rc == ENG_OK && k < n; k++) memcpy(hb + (size_t)k * np, tmp + (size_t)k * ld, np * sizeof(float));
        } else {
            for (int k = 0; k < n; k++) memcpy(tmp + (size_t)k * ld, hb + (size_t)k * np, np * sizeof(float));
            rc = m->be->to_device(dv, tmp, (size_t)n * ld);
        }
    }
    free(tmp);
    return rc;
}

int eng_model_get(const eng_model *m, eng_view which, float *buf) {
    if (!m || !buf) return eng_err_set(ENG_EINVAL, "eng_model_get: NULL argument");
    float *v = view_ptr(m, which);
    if (!v) return eng_err_set(ENG_EINVAL, "eng_model_get: unknown view %d", (int)which);
    int rc = which == ENG_VIEW_GRADS ? grads_ready(m) : ENG_OK;
    if (rc != ENG_OK) return rc;
    return view_io(m, v, buf, 1);
}

int eng_model_set(eng_model *m, eng_view which, const float *buf) {
    if (!m || !buf) return eng_err_set(ENG_EINVAL, "eng_model_set: NULL argument");
    float *v = view_ptr(m, which);
    if (!v) return eng_err_set(ENG_EINVAL, "eng_model_set: unknown view %d", (int)which);
    if (which == ENG_VIEW_GRADS) m->grads_stale = 0; /* fully overwritten */
    return view_io(m, v, (float *)buf, 0);
}

int eng_model_get_product(const eng_model *m, eng_view which, int p, float *buf) {
    if (!m || !buf) return eng_err_set(ENG_EINVAL, "eng_model_get_product: NULL argument");
    float *v = view_ptr(m, which);
    if (!v) return eng_err_set(ENG_EINVAL, "eng_model_get_product: unknown view %d", (int)which);
    if (p < 0 || p >= m->P) return eng_err_set(ENG_EINVAL, "eng_model_get_product: product %d outside 0..%d", p, m->P - 1);
    int rc = which == ENG_VIEW_GRADS ? grads_ready(m) : ENG_OK;
    if (rc != ENG_OK) return rc;
    return m->be->to_host(buf, v + (size_t)p * m->ld, m->np);
}

int eng_model_set_product(eng_model *m, eng_view which, int p, const float *buf) {
    if (!m || !buf) return eng_err_set(ENG_EINVAL, "eng_model_set_product: NULL argument");
    float *v = view_ptr(m, which);
    if (!v) return eng_err_set(ENG_EINVAL, "eng_model_set_product: unknown view %d", (int)which);
    if (p < 0 || p >= m->P) return eng_err_set(ENG_EINVAL, "eng_model_set_product: product %d outside 0..%d", p, m->P - 1);
    int rc = which == ENG_VIEW_GRADS ? grads_ready(m) : ENG_OK;
    if (rc != ENG_OK) return rc;
    return m->be->to_device(v + (size_t)p * m->ld, buf, m->np);
}

/* A product is bad when its parameters' sum of squares (accumulated in double, which
 * cannot overflow for finite floats) is not finite, i.e. it holds a NaN or an Inf. */
int eng_model_check_finite(const eng_model *m, unsigned char *bad) {
    if (!m) return eng_err_set(ENG_EINVAL, "eng_model_check_finite: model is NULL");
    eng_model *mm = (eng_model *)m; /* host scratch only */
    int rc = m->be->sumsq(m->params, (long)m->ld, (int)m->np, m->P, mm->h_sumsq);
    if (rc != ENG_OK) return rc;
    int nbad = 0;
    for (int p = 0; p < m->P; p++) {
        int b = !isfinite(m->h_sumsq[p]);
        if (bad) bad[p] = (unsigned char)b;
        nbad += b;
    }
    return nbad;
}
