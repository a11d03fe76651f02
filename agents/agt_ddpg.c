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
    const eng_backend *be;
    eng_model *actor, *critic, *actor_t, *critic_t;
    agt_replay *rb;
    eng_rng *rng;     /* [P] */
    float *ou;        /* [P] OU state */
    unsigned char *bad, *mask, *newbad, *cbad;
    unsigned char *frozen, *skip; /* [P] early-stopped; bad | frozen for the sampler */
    long steps;
    /* The minibatch lives in ONE host block `hb` (backend host memory, pinned on CUDA) and goes
     * up in one copy to the backend block `db` of the same layout:
     *   s [P][B][S], s2 [P][B][S], a [P][B], r [P][B], done [P][B], w [P][B] (critic loss
     *   weights: the product's mask), maskf [P] */
    float *hb, *db;
    size_t nbatch;
    float *s, *s2, *a, *r, *done, *w, *maskf; /* views of hb */
    /* backend scratch: x, dx [P][B][S+1] (critic input and its gradient), mu, qv, y, dq, da
     * [P][B], qmean [P] */
    float *dbuf;
    float *x, *dx, *mu, *qv, *y, *dq, *da, *qmean;
    unsigned char *pmask;  /* mask of the step whose statistics are pending */
    unsigned char *amask;  /* slots taking the Adam step (cfg.grad_hook) */
    int pending;
    long pending_step;
    float *loss;      /* [P] */
    float *gn_c, *gn_a; /* [P] gradient norms (critic, actor) */
    float *s1;        /* [P][S] */
    void *graph; /* the device step as a CUDA graph (be->graph_end) */
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
    free(q->frozen); free(q->skip);
    if (q->be) {
        q->be->graph_free(q->graph);
        q->be->host_free(q->hb);
        q->be->free(q->db);
        q->be->free(q->dbuf);
    }
    free(q->pmask); free(q->amask); free(q->loss); free(q->gn_c); free(q->gn_a); free(q->s1);
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
    q->be = be;
    const int S = cfg->state_dim;
    eng_arch aa, ca;
    const int asz[4] = {S, cfg->hidden1, cfg->hidden2, 1}, csz[4] = {S + 1, cfg->hidden1, cfg->hidden2, 1};
    if ((st = eng_arch_mlp(&aa, asz, 4, ENG_ACT_RELU, ENG_ACT_TANH))) goto cleanup;
    if ((st = eng_arch_mlp(&ca, csz, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY))) goto cleanup;
    const uint64_t cseed = eng_seed_derive(cfg->seed, 0xC217u);
    if ((st = eng_model_create_keyed(&q->actor, be, &aa, P, cfg->seed, cfg->keys))) goto cleanup;
    if ((st = eng_model_create_keyed(&q->actor_t, be, &aa, P, cfg->seed, cfg->keys))) goto cleanup;
    if ((st = eng_model_create_keyed(&q->critic, be, &ca, P, cseed, cfg->keys))) goto cleanup;
    if ((st = eng_model_create_keyed(&q->critic_t, be, &ca, P, cseed, cfg->keys))) goto cleanup;
    if ((st = agt_ddpg_sync_targets(q))) goto cleanup;
    if ((st = agt_replay_create(&q->rb, P, S, 1, cfg->replay))) goto cleanup;
    const size_t PB = (size_t)P * cfg->batch;
    q->rng = eng_calloc(P, sizeof(eng_rng)); q->ou = eng_calloc(P, sizeof(float));
    q->bad = eng_calloc(P, 1); q->mask = eng_calloc(P, 1); q->newbad = eng_calloc(P, 1); q->cbad = eng_calloc(P, 1);
    q->frozen = eng_calloc(P, 1); q->skip = eng_calloc(P, 1);
    q->pmask = eng_calloc(P, 1);
    q->amask = eng_calloc(P, 1);
    q->loss = eng_calloc(P, sizeof(float)); q->gn_c = eng_calloc(P, sizeof(float));
    q->gn_a = eng_calloc(P, sizeof(float)); q->s1 = eng_calloc((size_t)P * S, sizeof(float));
    if (!q->rng || !q->ou || !q->bad || !q->mask || !q->newbad || !q->cbad || !q->frozen || !q->skip || !q->pmask || !q->amask || !q->loss || !q->gn_c ||
        !q->gn_a || !q->s1) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    q->nbatch = 2 * PB * S + 4 * PB + (size_t)P;
    const size_t nx = PB * (S + 1);
    if ((st = be->host_alloc(&q->hb, q->nbatch)) || (st = be->alloc(&q->db, q->nbatch)) ||
        (st = be->alloc(&q->dbuf, 2 * nx + 5 * PB + (size_t)P)))
        goto cleanup;
    q->s = q->hb; q->s2 = q->s + PB * S; q->a = q->s2 + PB * S; q->r = q->a + PB; q->done = q->r + PB;
    q->w = q->done + PB; q->maskf = q->w + PB;
    q->x = q->dbuf; q->dx = q->x + nx; q->mu = q->dx + nx; q->qv = q->mu + PB; q->y = q->qv + PB;
    q->dq = q->y + PB; q->da = q->dq + PB; q->qmean = q->da + PB;
    for (int p = 0; p < P; p++)
        eng_rng_seed(&q->rng[p], eng_seed_derive(cfg->seed ^ 0xDD96u, cfg->keys ? cfg->keys[p] : (uint64_t)(cfg->product_base + p)));
    q->cfg.keys = NULL; /* borrowed for creation only */
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

static int ddpg_settle(agt_ddpg *q);

const unsigned char *agt_ddpg_diverged(const agt_ddpg *q, int *n_bad) {
    /* the last update's statistics first (flags are brought up to date lazily); a failure to
     * fetch them is logged and leaves the flags as they are */
    if (q->pending && ddpg_settle((agt_ddpg *)q) != ENG_OK)
        ENG_WARN("ddpg: the last update's divergence check failed: %s", eng_err_msg());
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

/* Check the posted statistics of step q->pending_step (critic loss and both gradient norms of
 * the products that trained then; every AGT_FULL_CHECK steps the parameter scans of both
 * networks, which ride on the same copies): a non-finite value flags the product (logged once,
 * masked out from then on).  Two event waits, the first of which (the critic's, recorded
 * earlier) is already known complete after the second: one host sync.  No-op when nothing is
 * pending. */
static int ddpg_settle(agt_ddpg *q) {
    if (!q->pending) return ENG_OK;
    q->pending = 0;
    int st = eng_model_stats_fetch(q->actor, NULL, q->gn_a, q->newbad);
    if (st < 0) return st;
    if ((st = eng_model_stats_fetch(q->critic, q->loss, q->gn_c, q->cbad)) < 0) return st;
    for (int p = 0; p < q->P; p++) {
        int b = q->newbad[p] || q->cbad[p] ||
                (q->pmask[p] && (!isfinite(q->loss[p]) || !isfinite(q->gn_c[p]) || !isfinite(q->gn_a[p])));
        if (b && !q->bad[p]) {
            q->bad[p] = 1;
            ENG_WARN("ddpg: product %ld diverged at step %ld (non-finite parameters or loss); it is excluded from further training",
                     q->cfg.product_base + p, q->pending_step);
        }
    }
    return ENG_OK;
}

/* One group update on the backend: the minibatch goes up in one copy; the critic targets, the
 * critic inputs [state, action], the actor's gradient through the critic and the
 * behaviour-cloning term are built there; losses and gradient norms come back one step late
 * (as in agt_dqn.c).  Per update on a device: one upload (plus the masks when they change),
 * one host wait; critic_loss / actor_q ask for this update's values at once (more waits). */
/* Adam on network m (critic or actor) over the slots of q->mask, or, with cfg.grad_hook (shared
 * networks trained data-parallel), over the slots the hook chose after tying the gradients.
 * Returns 0 or the hook's / Adam's failure. */
static int ddpg_adam(agt_ddpg *q, eng_model *m, const eng_adam_cfg *ac) {
    const unsigned char *mk = q->mask;
    if (q->cfg.grad_hook) {
        int st = q->cfg.grad_hook(q->cfg.grad_ctx, m, q->mask, q->amask);
        if (st) return st;
        mk = q->amask;
    }
    return eng_model_adam_step(m, ac, mk, NULL);
}

/* The device work of a step, after the minibatch upload: the critic's targets, forward,
 * backward and Adam step, then the actor's (through the critic's input gradient), then the
 * Polyak updates of both target networks (ddpg_adam: a gradient hook inside makes the rest of
 * the step run as plain launches, see be->graph_begin).  Returns 0 or a status. */
static int ddpg_device_step(agt_ddpg *q) {
    const int P = q->P, B = q->cfg.batch, S = q->cfg.state_dim;
    const size_t PB = (size_t)P * B;
    const eng_backend *be = q->be;
    int st;
    const float *ds = q->db, *ds2 = ds + PB * S, *da = ds2 + PB * S, *dr = da + PB, *ddone = dr + PB, *dw = ddone + PB,
                *dmask = dw + PB;
    eng_adam_cfg ac = eng_adam_default();
    ac.clip_norm = q->cfg.clip_norm;
    /* ---- critic: y = r + gamma (1 - done) Q'(s', mu'(s')) ---- */
    if (q->cfg.gamma != 0.0f) { /* at gamma 0 Q' is multiplied by 0 and not computed: qv stays zero */
        if ((st = eng_model_infer_dev(q->actor_t, ds2, B, q->mu))) return st;
        if ((st = be->concat_cols(q->x, ds2, S, q->mu, 1, PB))) return st;
        if ((st = eng_model_infer_dev(q->critic_t, q->x, B, q->qv))) return st;
    }
    if ((st = be->ddpg_critic_target(q->y, dr, ddone, q->qv, q->cfg.gamma, PB))) return st;
    if ((st = be->concat_cols(q->x, ds, S, da, 1, PB))) return st;
    if ((st = eng_model_forward_dev(q->critic, q->x, B))) return st;
    if ((st = eng_model_zero_grad(q->critic))) return st;
    if ((st = eng_model_loss_backward_dev(q->critic, ENG_LOSS_MSE, 1.0f, q->y, dw))) return st;
    ac.lr = q->cfg.critic_lr;
    if ((st = ddpg_adam(q, q->critic, &ac))) return st;
    /* ---- actor: maximise lambda Q(s, mu(s)) [- (mu(s) - a)^2] ---- */
    if ((st = eng_model_forward_dev(q->actor, ds, B))) return st;
    const float *mu = eng_model_output_dev(q->actor);
    if ((st = be->concat_cols(q->x, ds, S, mu, 1, PB))) return st;
    if ((st = eng_model_forward_dev(q->critic, q->x, B))) return st;
    if ((st = be->ddpg_actor_dq(q->dq, q->qmean, eng_model_output_dev(q->critic), dmask, q->cfg.bc, q->cfg.bc_alpha, P,
                                B)))
        return st;
    /* dL/dX of the critic only (its parameter gradients are not needed here) */
    if ((st = eng_model_backward_input_dev(q->critic, q->dq, q->dx))) return st;
    if ((st = be->ddpg_action_grad(q->da, q->dx, S + 1, S, mu, da, dmask, q->cfg.bc, P, B))) return st;
    if ((st = eng_model_zero_grad(q->actor))) return st;
    if ((st = eng_model_backward_dev(q->actor, q->da, NULL))) return st;
    ac.lr = q->cfg.actor_lr;
    if ((st = ddpg_adam(q, q->actor, &ac))) return st;
    /* ---- targets (inside the step's graph; the statistics after it do not read them) ---- */
    if ((st = eng_model_polyak(q->actor_t, q->actor, q->cfg.tau))) return st;
    return eng_model_polyak(q->critic_t, q->critic, q->cfg.tau);
}

int agt_ddpg_train_step(agt_ddpg *q, float *critic_loss, float *actor_q) {
    if (!q) return eng_err_set(ENG_EINVAL, "ddpg_train_step: NULL agent");
    const int P = q->P, B = q->cfg.batch;
    const size_t PB = (size_t)P * B;
    const eng_backend *be = q->be;
    int st, any;
    for (int p = 0; p < P; p++) {
        if (critic_loss) critic_loss[p] = NAN;
        if (actor_q) actor_q[p] = NAN;
    }
    for (int p = 0; p < P; p++) q->skip[p] = q->bad[p] | q->frozen[p];
    if ((st = agt_replay_sample_group(q->rb, q->rng, q->skip, q->cfg.learn_start, B, q->mask, &any, q->s, q->a, q->r,
                                      q->s2, q->done)))
        return st;
    if (!any && !q->cfg.grad_hook) return ENG_OK;
    for (int p = 0; p < P; p++) q->maskf[p] = q->mask[p] ? 1.0f : 0.0f;
    for (size_t i = 0; i < PB; i++) q->w[i] = q->maskf[i / (size_t)B]; /* idle products: weight 0 */
    if ((st = be->to_device(q->db, q->hb, q->nbatch))) return st;
    /* the device work of the step: one CUDA graph launch when graphs are on (be->graph_begin) */
    if ((st = be->graph_begin())) return st;
    if ((st = be->graph_end(&q->graph, ddpg_device_step(q)))) return st;
    q->steps++;
    /* ---- divergence, one step late (ddpg_settle) ---- */
    if ((st = ddpg_settle(q))) return st;
    const int scan = q->steps % AGT_FULL_CHECK == 0;
    if ((st = eng_model_stats_post(q->critic, scan)) || (st = eng_model_stats_post(q->actor, scan))) return st;
    memcpy(q->pmask, q->mask, (size_t)P);
    q->pending = 1;
    q->pending_step = q->steps;
    if (actor_q) {
        if ((st = be->to_host(q->gn_a, q->qmean, (size_t)P))) return st; /* gn_a as scratch, refilled below */
        for (int p = 0; p < P; p++)
            if (q->mask[p]) actor_q[p] = q->gn_a[p];
    }
    if (critic_loss || actor_q) {
        if ((st = ddpg_settle(q))) return st;
        if (critic_loss)
            for (int p = 0; p < P; p++)
                if (q->mask[p]) critic_loss[p] = q->loss[p];
    }
    return ENG_OK;
}

/* x[i] = [s[i][:], act[i]] on the host. */
static void pack_host(float *x, const float *s, const float *act, size_t PB, int S) {
    for (size_t i = 0; i < PB; i++) {
        memcpy(x + i * (S + 1), s + i * S, sizeof(float) * S);
        x[i * (S + 1) + S] = act[i];
    }
}

int agt_ddpg_freeze(agt_ddpg *q, int p, int on) {
    if (!q || p < 0 || p >= q->P) return eng_err_set(ENG_EINVAL, "ddpg_freeze: bad product %d", p);
    q->frozen[p] = on ? 1 : 0;
    return ENG_OK;
}

int agt_ddpg_eval_loss(agt_ddpg *q, const float *s, const float *ratio, const float *reward, const float *s2,
                       const float *done, const float *weight, int B, float *loss) {
    if (!q || !s || !ratio || !reward || !s2 || !done || !weight || !loss || B < 1)
        return eng_err_set(ENG_EINVAL, "ddpg_eval_loss: bad argument");
    const int P = q->P, S = q->cfg.state_dim;
    const size_t PB = (size_t)P * B;
    int st = ENG_ENOMEM;
    const int boot = q->cfg.gamma != 0.0f; /* at gamma 0, y = r: the target networks are not run on s' */
    float *x = eng_malloc(PB * (S + 1) * sizeof(float)), *mu = boot ? eng_malloc(PB * sizeof(float)) : NULL;
    float *qn = boot ? eng_malloc(PB * sizeof(float)) : NULL, *qc = eng_malloc(PB * sizeof(float)),
          *a = eng_malloc(PB * sizeof(float));
    if (!x || (boot && (!mu || !qn)) || !qc || !a) goto cleanup;
    for (size_t i = 0; i < PB; i++) {
        float v = (ratio[i] - 1.0f) / q->cfg.band;
        a[i] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
    }
    if (boot) {
        if ((st = eng_model_infer(q->actor_t, s2, B, mu))) goto cleanup;
        pack_host(x, s2, mu, PB, S);
        if ((st = eng_model_infer(q->critic_t, x, B, qn))) goto cleanup;
    }
    pack_host(x, s, a, PB, S);
    if ((st = eng_model_infer(q->critic, x, B, qc))) goto cleanup;
    for (int p = 0; p < P; p++) {
        double ls = 0, ws = 0;
        for (int b = 0; b < B; b++) {
            const size_t i = (size_t)p * B + b;
            if (!(weight[i] > 0)) continue;
            double y = reward[i] + (!boot || done[i] != 0.0f ? 0.0 : q->cfg.gamma * qn[i]), d = qc[i] - y;
            ls += weight[i] * d * d;
            ws += weight[i];
        }
        loss[p] = ws > 0 ? (float)(ls / ws) : NAN;
    }
    st = ENG_OK;
cleanup:
    free(x);
    free(mu);
    free(qn);
    free(qc);
    free(a);
    return st;
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
    int st0 = ddpg_settle(q);
    if (st0) return st0;
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
