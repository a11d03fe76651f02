/* agt_ddpg.c - see agt_ddpg.h. */
#include "agt_ddpg.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agt_replay.h"

#define AGT_FULL_CHECK 100 /* steps between full parameter scans */

struct agt_ddpg {
    agt_ddpg_cfg cfg;
    int P;
    eng_model *actor, *critic, *actor_t, *critic_t;
    agt_replay *rb;
    eng_rng *rng;     /* [P] */
    float *ou;        /* [P] OU state */
    unsigned char *bad, *mask, *newbad, *cbad;
    long steps;
    float *s, *s2, *a, *r, *done; /* [P][B][S] x2, [P][B] x3 */
    float *x;         /* [P][B][S+1] critic input */
    float *dx;        /* [P][B][S+1] */
    float *mu, *q, *dq, *da; /* [P][B] */
    float *loss;      /* [P] */
    float *gn_c, *gn_a; /* [P] gradient norms (critic, actor) */
    float *s1;        /* [P][S] */
};

agt_ddpg_cfg agt_ddpg_default(void) {
    agt_ddpg_cfg c;
    memset(&c, 0, sizeof c);
    c.state_dim = 32; c.hidden1 = 256; c.hidden2 = 256;
    c.actor_lr = 1e-4f; c.critic_lr = 1e-3f; c.gamma = 0.99f; c.tau = 0.005f; c.clip_norm = 10.0f;
    c.batch = 64; c.replay = 100000; c.learn_start = 32; c.band = 0.25f;
    c.bc = 1; c.bc_alpha = 2.5f; c.noise = 0; c.noise_sigma = 0.1f; c.ou_theta = 0.15f;
    c.seed = 1; c.product_base = 0;
    return c;
}

#define F(name, type, help) {#name, type, offsetof(agt_ddpg_cfg, name), help}
static const agt_cfg_field ddpg_fields[] = {
    F(state_dim, AGT_CFG_INT, "state features"),
    F(hidden1, AGT_CFG_INT, "first hidden layer width"),
    F(hidden2, AGT_CFG_INT, "second hidden layer width"),
    F(actor_lr, AGT_CFG_FLOAT, "actor Adam learning rate"),
    F(critic_lr, AGT_CFG_FLOAT, "critic Adam learning rate"),
    F(gamma, AGT_CFG_FLOAT, "discount factor"),
    F(tau, AGT_CFG_FLOAT, "Polyak rate of the targets"),
    F(clip_norm, AGT_CFG_FLOAT, "per-product gradient norm clip (0 = off)"),
    F(batch, AGT_CFG_INT, "minibatch per product"),
    F(replay, AGT_CFG_LONG, "replay capacity per product"),
    F(learn_start, AGT_CFG_LONG, "transitions a product needs before it trains"),
    F(band, AGT_CFG_FLOAT, "price ratio band (ratio = 1 + band * action)"),
    F(bc, AGT_CFG_INT, "1 = TD3+BC behaviour regularisation"),
    F(bc_alpha, AGT_CFG_FLOAT, "TD3+BC alpha"),
    F(noise, AGT_CFG_INT, "exploration noise: 0 Gaussian, 1 Ornstein-Uhlenbeck"),
    F(noise_sigma, AGT_CFG_FLOAT, "exploration noise scale"),
    F(ou_theta, AGT_CFG_FLOAT, "OU mean reversion"),
    F(seed, AGT_CFG_U64, "random seed"),
    F(product_base, AGT_CFG_LONG, "catalogue index of the group's first product (RNG streams)"),
};
#undef F

const agt_cfg_field *agt_ddpg_fields(int *n) {
    if (n) *n = (int)(sizeof ddpg_fields / sizeof ddpg_fields[0]);
    return ddpg_fields;
}

static int check_cfg(const agt_ddpg_cfg *c, int P) {
    if (P < 1) return eng_err_set(ENG_EINVAL, "ddpg: P must be >= 1 (got %d)", P);
    if (c->state_dim < 1 || c->hidden1 < 1 || c->hidden2 < 1) return eng_err_set(ENG_EINVAL, "ddpg: sizes must be >= 1");
    if (!(c->actor_lr > 0) || !(c->critic_lr > 0) || !(c->gamma >= 0 && c->gamma <= 1) || !(c->tau > 0 && c->tau <= 1) ||
        !(c->clip_norm >= 0))
        return eng_err_set(ENG_EINVAL, "ddpg: need learning rates > 0, gamma in [0,1], tau in (0,1], clip_norm >= 0");
    if (c->batch < 1 || c->replay < 1 || c->learn_start < 1) return eng_err_set(ENG_EINVAL, "ddpg: batch, replay, learn_start must be >= 1");
    if (!(c->band > 0 && c->band < 1)) return eng_err_set(ENG_EINVAL, "ddpg: band must be in (0, 1) (got %g)", (double)c->band);
    if (!(c->bc_alpha > 0) || (c->noise != 0 && c->noise != 1) || !(c->noise_sigma >= 0) || !(c->ou_theta >= 0 && c->ou_theta <= 1))
        return eng_err_set(ENG_EINVAL, "ddpg: need bc_alpha > 0, noise 0|1, noise_sigma >= 0, ou_theta in [0,1]");
    return ENG_OK;
}

void agt_ddpg_free(agt_ddpg *q) {
    if (!q) return;
    eng_model_free(q->actor); eng_model_free(q->critic); eng_model_free(q->actor_t); eng_model_free(q->critic_t);
    agt_replay_free(q->rb);
    free(q->rng); free(q->ou); free(q->bad); free(q->mask); free(q->newbad); free(q->cbad);
    free(q->s); free(q->s2); free(q->a); free(q->r); free(q->done); free(q->x); free(q->dx);
    free(q->mu); free(q->q); free(q->dq); free(q->da); free(q->loss); free(q->gn_c); free(q->gn_a); free(q->s1);
    free(q);
}

int agt_ddpg_create(agt_ddpg **out, const eng_backend *be, const agt_ddpg_cfg *cfg, int P) {
    if (!out || !be || !cfg) return eng_err_set(ENG_EINVAL, "ddpg_create: NULL argument");
    *out = NULL;
    int st = check_cfg(cfg, P);
    if (st) return st;
    agt_ddpg *q = eng_calloc(1, sizeof *q);
    if (!q) return ENG_ENOMEM;
    q->cfg = *cfg;
    q->P = P;
    const int S = cfg->state_dim;
    eng_arch aa, ca;
    const int asz[4] = {S, cfg->hidden1, cfg->hidden2, 1}, csz[4] = {S + 1, cfg->hidden1, cfg->hidden2, 1};
    if ((st = eng_arch_mlp(&aa, asz, 4, ENG_ACT_RELU, ENG_ACT_TANH))) goto cleanup;
    if ((st = eng_arch_mlp(&ca, csz, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY))) goto cleanup;
    const uint64_t cseed = eng_seed_derive(cfg->seed, 0xC217u);
    if ((st = eng_model_create(&q->actor, be, &aa, P, cfg->seed))) goto cleanup;
    if ((st = eng_model_create(&q->actor_t, be, &aa, P, cfg->seed))) goto cleanup;
    if ((st = eng_model_create(&q->critic, be, &ca, P, cseed))) goto cleanup;
    if ((st = eng_model_create(&q->critic_t, be, &ca, P, cseed))) goto cleanup;
    if ((st = agt_ddpg_sync_targets(q))) goto cleanup;
    if ((st = agt_replay_create(&q->rb, P, S, 1, cfg->replay))) goto cleanup;
    const size_t PB = (size_t)P * cfg->batch;
    q->rng = eng_calloc(P, sizeof(eng_rng)); q->ou = eng_calloc(P, sizeof(float));
    q->bad = eng_calloc(P, 1); q->mask = eng_calloc(P, 1); q->newbad = eng_calloc(P, 1); q->cbad = eng_calloc(P, 1);
    q->s = eng_calloc(PB * S, sizeof(float)); q->s2 = eng_calloc(PB * S, sizeof(float));
    q->a = eng_calloc(PB, sizeof(float)); q->r = eng_calloc(PB, sizeof(float)); q->done = eng_calloc(PB, sizeof(float));
    q->x = eng_calloc(PB * (S + 1), sizeof(float)); q->dx = eng_calloc(PB * (S + 1), sizeof(float));
    q->mu = eng_calloc(PB, sizeof(float)); q->q = eng_calloc(PB, sizeof(float));
    q->dq = eng_calloc(PB, sizeof(float)); q->da = eng_calloc(PB, sizeof(float));
    q->loss = eng_calloc(P, sizeof(float)); q->gn_c = eng_calloc(P, sizeof(float));
    q->gn_a = eng_calloc(P, sizeof(float)); q->s1 = eng_calloc((size_t)P * S, sizeof(float));
    if (!q->rng || !q->ou || !q->bad || !q->mask || !q->newbad || !q->cbad || !q->s || !q->s2 || !q->a || !q->r || !q->done ||
        !q->x || !q->dx || !q->mu || !q->q || !q->dq || !q->da || !q->loss || !q->gn_c || !q->gn_a || !q->s1) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    for (int p = 0; p < P; p++) eng_rng_seed(&q->rng[p], eng_seed_derive(cfg->seed ^ 0xDD96u, (uint64_t)(cfg->product_base + p)));
    *out = q;
    return ENG_OK;
cleanup:
    agt_ddpg_free(q);
    return st;
}

int agt_ddpg_P(const agt_ddpg *q) { return q->P; }
const agt_ddpg_cfg *agt_ddpg_config(const agt_ddpg *q) { return &q->cfg; }
eng_model *agt_ddpg_actor(agt_ddpg *q) { return q->actor; }
eng_model *agt_ddpg_critic(agt_ddpg *q) { return q->critic; }
long agt_ddpg_steps(const agt_ddpg *q) { return q->steps; }
long agt_ddpg_replay_size(const agt_ddpg *q, int p) { return p >= 0 && p < q->P ? q->rb->size[p] : 0; }

int agt_ddpg_sync_targets(agt_ddpg *q) {
    int st = eng_model_copy_params(q->actor_t, q->actor);
    return st ? st : eng_model_copy_params(q->critic_t, q->critic);
}

const unsigned char *agt_ddpg_diverged(const agt_ddpg *q, int *n_bad) {
    if (n_bad) {
        int n = 0;
        for (int p = 0; p < q->P; p++) n += q->bad[p];
        *n_bad = n;
    }
    return q->bad;
}

int agt_ddpg_push(agt_ddpg *q, int p, const float *s, float ratio, float reward, const float *s2, int done) {
    if (!q) return eng_err_set(ENG_EINVAL, "ddpg_push: NULL agent");
    if (!isfinite(ratio) || !(ratio > 0)) return eng_err_set(ENG_ENUM, "ddpg_push: product %d: bad price ratio %g", p, (double)ratio);
    float a = (ratio - 1.0f) / q->cfg.band;
    a = a < -1.0f ? -1.0f : a > 1.0f ? 1.0f : a;
    return agt_replay_push(q->rb, p, s, &a, reward, s2, done);
}

/* x[p][b] = [s[p][b][:], act[p][b]] */
static void pack_critic_input(float *x, const float *s, const float *act, size_t PB, int S) {
    for (size_t i = 0; i < PB; i++) {
        memcpy(x + i * (S + 1), s + i * S, sizeof(float) * S);
        x[i * (S + 1) + S] = act[i];
    }
}

int agt_ddpg_train_step(agt_ddpg *q, float *critic_loss, float *actor_q) {
    if (!q) return eng_err_set(ENG_EINVAL, "ddpg_train_step: NULL agent");
    const int P = q->P, B = q->cfg.batch, S = q->cfg.state_dim;
    const size_t PB = (size_t)P * B;
    int st, any;
    for (int p = 0; p < P; p++) {
        if (critic_loss) critic_loss[p] = NAN;
        if (actor_q) actor_q[p] = NAN;
    }
    if ((st = agt_replay_sample_group(q->rb, q->rng, q->bad, q->cfg.learn_start, B, q->mask, &any, q->s, q->a, q->r,
                                      q->s2, q->done)))
        return st;
    if (!any) return ENG_OK;
    eng_adam_cfg ac = eng_adam_default();
    ac.clip_norm = q->cfg.clip_norm;
    /* ---- critic: y = r + gamma (1 - done) Q'(s', mu'(s')) ---- */
    if ((st = eng_model_infer(q->actor_t, q->s2, B, q->mu))) return st;
    pack_critic_input(q->x, q->s2, q->mu, PB, S);
    if ((st = eng_model_infer(q->critic_t, q->x, B, q->q))) return st;
    for (size_t i = 0; i < PB; i++) q->r[i] += q->done[i] != 0.0f ? 0.0f : q->cfg.gamma * q->q[i]; /* r := y */
    pack_critic_input(q->x, q->s, q->a, PB, S);
    if ((st = eng_model_forward(q->critic, q->x, B, NULL))) return st;
    /* idle products: weight 0 */
    for (size_t i = 0; i < PB; i++) q->dq[i] = q->mask[i / (size_t)B] ? 1.0f : 0.0f;
    if ((st = eng_model_zero_grad(q->critic))) return st;
    if ((st = eng_model_loss_backward(q->critic, ENG_LOSS_MSE, 1.0f, q->r, q->dq, q->loss))) return st;
    ac.lr = q->cfg.critic_lr;
    if ((st = eng_model_adam_step(q->critic, &ac, q->mask, q->gn_c))) return st;
    if (critic_loss)
        for (int p = 0; p < P; p++)
            if (q->mask[p]) critic_loss[p] = q->loss[p];
    /* ---- actor: maximise lambda Q(s, mu(s)) [- (mu(s) - a)^2] ---- */
    if ((st = eng_model_forward(q->actor, q->s, B, q->mu))) return st;
    pack_critic_input(q->x, q->s, q->mu, PB, S);
    if ((st = eng_model_forward(q->critic, q->x, B, q->q))) return st;
    for (int p = 0; p < P; p++) {
        double sabs = 0, sq = 0;
        for (int b = 0; b < B; b++) {
            sabs += fabs(q->q[(size_t)p * B + b]);
            sq += q->q[(size_t)p * B + b];
        }
        if (actor_q && q->mask[p]) actor_q[p] = (float)(sq / B);
        float lambda = 1.0f;
        if (q->cfg.bc) lambda = (float)(q->cfg.bc_alpha / fmax(sabs / B, 1e-6));
        const float g = q->mask[p] ? -lambda / (float)B : 0.0f;
        for (int b = 0; b < B; b++) q->dq[(size_t)p * B + b] = g;
    }
    /* dL/dX of the critic only (its parameter gradients are not needed here) */
    if ((st = eng_model_backward_input(q->critic, q->dq, q->dx))) return st;
    for (size_t i = 0; i < PB; i++) {
        float g = q->dx[i * (S + 1) + S];
        if (q->cfg.bc) g += 2.0f * (q->mu[i] - q->a[i]) / (float)B;
        q->da[i] = q->mask[i / (size_t)B] ? g : 0.0f;
    }
    if ((st = eng_model_zero_grad(q->actor))) return st;
    if ((st = eng_model_backward(q->actor, q->da, NULL))) return st;
    ac.lr = q->cfg.actor_lr;
    if ((st = eng_model_adam_step(q->actor, &ac, q->mask, q->gn_a))) return st;
    q->steps++;
    /* ---- divergence (as in agt_dqn.c: loss / gradient norms every step, full parameter
     * scans every AGT_FULL_CHECK steps), targets ---- */
    unsigned char *cb = q->cbad;
    if (q->steps % AGT_FULL_CHECK == 0) {
        if ((st = eng_model_check_finite(q->actor, q->newbad)) < 0) return st;
        if ((st = eng_model_check_finite(q->critic, cb)) < 0) return st;
    } else {
        memset(q->newbad, 0, (size_t)P);
        memset(cb, 0, (size_t)P);
    }
    for (int p = 0; p < P; p++) {
        int b = q->newbad[p] || (q->mask[p] && (!isfinite(q->loss[p]) || !isfinite(q->gn_c[p]) || !isfinite(q->gn_a[p])));
        q->newbad[p] = (unsigned char)b;
    }
    for (int p = 0; p < P; p++) {
        if ((q->newbad[p] || cb[p]) && !q->bad[p]) {
            q->bad[p] = 1;
            ENG_WARN("ddpg: product %ld diverged at step %ld (non-finite parameters or loss); it is excluded from further training",
                     q->cfg.product_base + p, q->steps);
        }
    }
    if ((st = eng_model_polyak(q->actor_t, q->actor, q->cfg.tau))) return st;
    return eng_model_polyak(q->critic_t, q->critic, q->cfg.tau);
}

int agt_ddpg_ratio(agt_ddpg *q, const float *s, float *ratio) {
    if (!q || !s || !ratio) return eng_err_set(ENG_EINVAL, "ddpg_ratio: NULL argument");
    int st = eng_model_infer(q->actor, s, 1, ratio);
    if (st) return st;
    for (int p = 0; p < q->P; p++) ratio[p] = 1.0f + q->cfg.band * ratio[p];
    return ENG_OK;
}

void agt_ddpg_reset_noise(agt_ddpg *q, int p) {
    if (q && p >= 0 && p < q->P) q->ou[p] = 0.0f;
}

int agt_ddpg_act(agt_ddpg *q, const float *s, float *ratio) {
    if (!q || !s || !ratio) return eng_err_set(ENG_EINVAL, "ddpg_act: NULL argument");
    int st = eng_model_infer(q->actor, s, 1, ratio);
    if (st) return st;
    for (int p = 0; p < q->P; p++) {
        float n = (float)eng_rng_normal(&q->rng[p]) * q->cfg.noise_sigma;
        if (q->cfg.noise == 1) {
            q->ou[p] += -q->cfg.ou_theta * q->ou[p] + n;
            n = q->ou[p];
        }
        float a = ratio[p] + n;
        a = a < -1.0f ? -1.0f : a > 1.0f ? 1.0f : a;
        ratio[p] = 1.0f + q->cfg.band * a;
    }
    return ENG_OK;
}

static int ddpg_save(agt_ddpg *q, const char *path, const eng_ckpt_opts *o);

int agt_ddpg_save(agt_ddpg *q, const char *path) {
    const eng_ckpt_opts full = {1, 1, 0};
    return ddpg_save(q, path, &full);
}

int agt_ddpg_save_warm(agt_ddpg *q, const char *path) {
    const eng_ckpt_opts warm = {0, 0, 1};
    return ddpg_save(q, path, &warm);
}

static int ddpg_save(agt_ddpg *q, const char *path, const eng_ckpt_opts *o) {
    if (!q || !path) return eng_err_set(ENG_EINVAL, "ddpg_save: NULL argument");
    int n;
    const agt_cfg_field *f = agt_ddpg_fields(&n);
    char *cfg = agt_cfg_to_string(&q->cfg, f, n, "ddpg");
    size_t len = strlen(path) + 16;
    char *cpath = eng_malloc(len);
    int st = ENG_ENOMEM;
    if (!cfg || !cpath) goto cleanup;
    snprintf(cpath, len, "%s.critic", path);
    if ((st = eng_ckpt_save_opts(q->critic, cpath, NULL, cfg, o))) goto cleanup;
    st = eng_ckpt_save_opts(q->actor, path, NULL, cfg, o);
cleanup:
    free(cfg);
    free(cpath);
    return st;
}

int agt_ddpg_load(agt_ddpg **out, const eng_backend *be, const char *path) {
    if (!out || !be || !path) return eng_err_set(ENG_EINVAL, "ddpg_load: NULL argument");
    *out = NULL;
    eng_model *am = NULL, *cm = NULL;
    char *cfgs = NULL, *cfgs2 = NULL, *cpath = NULL;
    agt_ddpg *q = NULL;
    size_t len = strlen(path) + 16;
    int st = ENG_ENOMEM;
    if (!(cpath = eng_malloc(len))) goto cleanup;
    snprintf(cpath, len, "%s.critic", path);
    if ((st = eng_ckpt_load(&am, be, path, NULL, &cfgs))) goto cleanup;
    if ((st = eng_ckpt_load(&cm, be, cpath, NULL, &cfgs2))) goto cleanup;
    agt_ddpg_cfg c = agt_ddpg_default();
    int n;
    const agt_cfg_field *f = agt_ddpg_fields(&n);
    if (!cfgs || (st = agt_cfg_load_string(&c, f, n, cfgs, "ddpg", path)) != ENG_OK) {
        st = eng_err_set(ENG_EFORMAT, "ddpg_load: '%s': no usable DDPG config", path);
        goto cleanup;
    }
    const eng_arch *aa = eng_model_arch(am), *ca = eng_model_arch(cm);
    if (aa->n_layers != 3 || aa->sizes[0] != c.state_dim || aa->sizes[1] != c.hidden1 || aa->sizes[2] != c.hidden2 ||
        aa->sizes[3] != 1 || ca->n_layers != 3 || ca->sizes[0] != c.state_dim + 1 || ca->sizes[3] != 1 ||
        eng_model_P(am) != eng_model_P(cm)) {
        st = eng_err_set(ENG_EFORMAT, "ddpg_load: '%s' and '%s' do not form an actor/critic pair of the saved config", path, cpath);
        goto cleanup;
    }
    if ((st = agt_ddpg_create(&q, be, &c, eng_model_P(am)))) goto cleanup;
    eng_model_free(q->actor);
    eng_model_free(q->critic);
    q->actor = am;
    q->critic = cm;
    am = cm = NULL;
    if ((st = agt_ddpg_sync_targets(q))) goto cleanup;
    if ((st = eng_model_check_finite(q->actor, q->bad)) < 0) goto cleanup;
    if ((st = eng_model_check_finite(q->critic, q->cbad)) < 0) goto cleanup;
    for (int p = 0; p < q->P; p++) q->bad[p] |= q->cbad[p];
    st = ENG_OK;
    *out = q;
    q = NULL;
cleanup:
    eng_model_free(am);
    eng_model_free(cm);
    free(cfgs);
    free(cfgs2);
    free(cpath);
    agt_ddpg_free(q);
    return st;
}
