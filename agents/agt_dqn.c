/* agt_dqn.c - see agt_dqn.h. */
#include "agt_dqn.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agt_replay.h"

#define AGT_FULL_CHECK 100 /* steps between full parameter scans */

struct agt_dqn {
    agt_dqn_cfg cfg;
    int P;
    const eng_backend *be;
    eng_model *online, *target;
    agt_replay *rb;
    eng_rng *rng;          /* [P] */
    unsigned char *bad;    /* [P] diverged */
    unsigned char *mask;   /* [P] trains this step */
    unsigned char *newbad; /* [P] */
    unsigned char *frozen; /* [P] early-stopped: no Adam step */
    unsigned char *skip;   /* [P] bad | frozen, for the sampler */
    unsigned char *support;/* [P][A] allowed target / greedy levels, NULL = all */
    float *hq;             /* host [4][P][B][A]: q2on, q2t, qcur, dy of the host path (CQL,
                              smoothness, support); NULL until needed */
    long steps, acts;
    /* The minibatch lives in ONE host block `hb` (backend host memory, pinned on CUDA) and is
     * uploaded in one copy to the backend block `db` of the same layout:
     *   s [P][B][S], s2 [P][B][S], a [P][B], r [P][B], done [P][B], maskf [P] */
    float *hb, *db;
    size_t nbatch;                   /* floats in hb / db */
    float *s, *s2, *a, *r, *done, *maskf; /* views of hb */
    float *dq;                       /* backend [4][P][B][A]: q2on, q2t, tgt, w */
    float *loss;                     /* [P] */
    float *gnorm;                    /* [P] gradient norms from the Adam step */
    unsigned char *pmask;            /* [P] mask of the step whose statistics are pending */
    unsigned char *amask;            /* [P] slots taking the Adam step (cfg.grad_hook) */
    int pending;                     /* that step's loss / gradient norms are posted, unchecked */
    long pending_step;
    float *s1, *q1;                  /* [P][S], [P][A] for acting */
    void *graph;                     /* the device step as a CUDA graph (be->graph_end) */
};

agt_dqn_cfg agt_dqn_default(void) {
    agt_dqn_cfg c;
    memset(&c, 0, sizeof c);
    c.state_dim = 32; c.n_actions = 21; c.hidden1 = 256; c.hidden2 = 256;
    c.lr = 1e-3f; c.gamma = 0.99f; c.huber_delta = 1.0f; c.clip_norm = 10.0f;
    c.batch = 64; c.target_sync = 100; c.tau = 0.005f; c.replay = 100000; c.learn_start = 32;
    c.double_dqn = 1; c.eps_start = 1.0f; c.eps_end = 0.05f; c.eps_decay = 10000;
    c.cql_alpha = 0.0f; c.smooth = 0.0f; c.seed = 1; c.product_base = 0;
    return c;
}

#define F(name, type, help) {#name, type, offsetof(agt_dqn_cfg, name), help}
static const agt_cfg_field dqn_fields[] = {
    F(state_dim, AGT_CFG_INT, "state features"),
    F(n_actions, AGT_CFG_INT, "price levels"),
    F(hidden1, AGT_CFG_INT, "first hidden layer width"),
    F(hidden2, AGT_CFG_INT, "second hidden layer width"),
    F(lr, AGT_CFG_FLOAT, "Adam learning rate"),
    F(gamma, AGT_CFG_FLOAT, "discount factor"),
    F(huber_delta, AGT_CFG_FLOAT, "Huber loss threshold"),
    F(clip_norm, AGT_CFG_FLOAT, "per-product gradient norm clip (0 = off)"),
    F(batch, AGT_CFG_INT, "minibatch per product"),
    F(target_sync, AGT_CFG_INT, "hard target copy period in steps (0 = Polyak)"),
    F(tau, AGT_CFG_FLOAT, "Polyak rate when target_sync = 0"),
    F(replay, AGT_CFG_LONG, "replay capacity per product"),
    F(learn_start, AGT_CFG_LONG, "transitions a product needs before it trains"),
    F(double_dqn, AGT_CFG_INT, "1 = Double DQN target"),
    F(eps_start, AGT_CFG_FLOAT, "initial exploration rate"),
    F(eps_end, AGT_CFG_FLOAT, "final exploration rate"),
    F(eps_decay, AGT_CFG_LONG, "act() calls over which epsilon decays linearly"),
    F(cql_alpha, AGT_CFG_FLOAT, "conservative Q-learning weight (0 = off)"),
    F(smooth, AGT_CFG_FLOAT, "smoothness penalty across neighbouring levels (0 = off)"),
    F(seed, AGT_CFG_U64, "random seed"),
    F(product_base, AGT_CFG_LONG, "catalogue index of the group's first product (RNG streams)"),
};
#undef F

const agt_cfg_field *agt_dqn_fields(int *n) {
    if (n) *n = (int)(sizeof dqn_fields / sizeof dqn_fields[0]);
    return dqn_fields;
}

static int check_cfg(const agt_dqn_cfg *c, int P) {
    if (P < 1) return eng_err_set(ENG_EINVAL, "dqn: P must be >= 1 (got %d)", P);
    if (c->state_dim < 1 || c->n_actions < 2 || c->hidden1 < 1 || c->hidden2 < 1)
        return eng_err_set(ENG_EINVAL, "dqn: state_dim, hidden sizes must be >= 1 and n_actions >= 2");
    if (!(c->lr > 0) || !(c->gamma >= 0 && c->gamma <= 1) || !(c->huber_delta > 0) || !(c->clip_norm >= 0))
        return eng_err_set(ENG_EINVAL, "dqn: need lr > 0, gamma in [0,1], huber_delta > 0, clip_norm >= 0");
    if (c->batch < 1 || c->target_sync < 0 || c->replay < 1 || c->learn_start < 1)
        return eng_err_set(ENG_EINVAL, "dqn: need batch >= 1, target_sync >= 0, replay >= 1, learn_start >= 1");
    if (c->target_sync == 0 && !(c->tau > 0 && c->tau <= 1))
        return eng_err_set(ENG_EINVAL, "dqn: tau must be in (0, 1] when target_sync = 0");
    if (!(c->eps_start >= 0 && c->eps_start <= 1 && c->eps_end >= 0 && c->eps_end <= 1) || c->eps_decay < 0)
        return eng_err_set(ENG_EINVAL, "dqn: epsilons must be in [0,1] and eps_decay >= 0");
    if (!(c->cql_alpha >= 0) || !(c->smooth >= 0)) return eng_err_set(ENG_EINVAL, "dqn: cql_alpha and smooth must be >= 0");
    return ENG_OK;
}

void agt_dqn_free(agt_dqn *q) {
    if (!q) return;
    eng_model_free(q->online);
    eng_model_free(q->target);
    agt_replay_free(q->rb);
    const eng_backend *be = q->be;
    free(q->rng); free(q->bad); free(q->mask); free(q->newbad); free(q->pmask); free(q->amask);
    free(q->frozen); free(q->skip); free(q->support); free(q->hq);
    if (be) {
        be->graph_free(q->graph);
        be->host_free(q->hb);
        be->free(q->db);
        be->free(q->dq);
    }
    free(q->loss); free(q->gnorm);
    free(q->s1); free(q->q1);
    free(q);
}

int agt_dqn_create(agt_dqn **out, const eng_backend *be, const agt_dqn_cfg *cfg, int P) {
    if (!out || !be || !cfg) return eng_err_set(ENG_EINVAL, "dqn_create: NULL argument");
    *out = NULL;
    int st = check_cfg(cfg, P);
    if (st) return st;
    agt_dqn *q = eng_calloc(1, sizeof *q);
    if (!q) return ENG_ENOMEM;
    q->cfg = *cfg;
    q->P = P;
    q->be = be;
    eng_arch arch;
    const int sizes[4] = {cfg->state_dim, cfg->hidden1, cfg->hidden2, cfg->n_actions};
    if ((st = eng_arch_mlp(&arch, sizes, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY))) goto cleanup;
    if ((st = eng_model_create_keyed(&q->online, be, &arch, P, cfg->seed, cfg->keys))) goto cleanup;
    if ((st = eng_model_create_keyed(&q->target, be, &arch, P, cfg->seed, cfg->keys))) goto cleanup;
    if ((st = eng_model_copy_params(q->target, q->online))) goto cleanup;
    if ((st = agt_replay_create(&q->rb, P, cfg->state_dim, 1, cfg->replay))) goto cleanup;
    const size_t PB = (size_t)P * cfg->batch, S = (size_t)cfg->state_dim, A = (size_t)cfg->n_actions;
    q->rng = eng_calloc(P, sizeof(eng_rng));
    q->bad = eng_calloc(P, 1); q->mask = eng_calloc(P, 1); q->newbad = eng_calloc(P, 1); q->pmask = eng_calloc(P, 1);
    q->amask = eng_calloc(P, 1);
    q->frozen = eng_calloc(P, 1); q->skip = eng_calloc(P, 1);
    q->loss = eng_calloc(P, sizeof(float)); q->gnorm = eng_calloc(P, sizeof(float));
    q->s1 = eng_calloc((size_t)P * S, sizeof(float)); q->q1 = eng_calloc((size_t)P * A, sizeof(float));
    if (!q->rng || !q->bad || !q->mask || !q->newbad || !q->pmask || !q->amask || !q->frozen || !q->skip || !q->loss || !q->gnorm || !q->s1 || !q->q1) {
        st = ENG_ENOMEM;
        goto cleanup;
    }
    q->nbatch = 2 * PB * S + 3 * PB + (size_t)P;
    if ((st = be->host_alloc(&q->hb, q->nbatch)) || (st = be->alloc(&q->db, q->nbatch)) ||
        (st = be->alloc(&q->dq, 4 * PB * A)))
        goto cleanup;
    q->s = q->hb; q->s2 = q->s + PB * S; q->a = q->s2 + PB * S; q->r = q->a + PB; q->done = q->r + PB;
    q->maskf = q->done + PB;
    for (int p = 0; p < P; p++)
        eng_rng_seed(&q->rng[p], eng_seed_derive(cfg->seed ^ 0x5151u, cfg->keys ? cfg->keys[p] : (uint64_t)(cfg->product_base + p)));
    q->cfg.keys = NULL; /* borrowed for creation only */
    *out = q;
    return ENG_OK;
cleanup:
    agt_dqn_free(q);
    return st;
}

int agt_dqn_P(const agt_dqn *q) { return q->P; }
const agt_dqn_cfg *agt_dqn_config(const agt_dqn *q) { return &q->cfg; }
eng_model *agt_dqn_online(agt_dqn *q) { return q->online; }
eng_model *agt_dqn_target(agt_dqn *q) { return q->target; }
int agt_dqn_sync_target(agt_dqn *q) { return eng_model_copy_params(q->target, q->online); }
long agt_dqn_steps(const agt_dqn *q) { return q->steps; }
long agt_dqn_replay_size(const agt_dqn *q, int p) { return p >= 0 && p < q->P ? q->rb->size[p] : 0; }

static int dqn_settle(agt_dqn *q);

const unsigned char *agt_dqn_diverged(const agt_dqn *q, int *n_bad) {
    /* the last step's statistics first (the agent is not really const: flags are lazily
     * brought up to date); a failure to fetch them is logged and leaves the flags as they are */
    if (q->pending && dqn_settle((agt_dqn *)q) != ENG_OK)
        ENG_WARN("dqn: the last step's divergence check failed: %s", eng_err_msg());
    if (n_bad) {
        int n = 0;
        for (int p = 0; p < q->P; p++) n += q->bad[p];
        *n_bad = n;
    }
    return q->bad;
}

int agt_dqn_push(agt_dqn *q, int p, const float *s, int action, float reward, const float *s2, int done) {
    if (!q) return eng_err_set(ENG_EINVAL, "dqn_push: NULL agent");
    if (action < 0 || action >= q->cfg.n_actions)
        return eng_err_set(ENG_EINVAL, "dqn_push: product %d: level %d outside 0..%d", p, action, q->cfg.n_actions - 1);
    const float a = (float)action;
    return agt_replay_push(q->rb, p, s, &a, reward, s2, done);
}

static int argmax_allowed(const float *v, int A, const unsigned char *allowed) {
    int best = -1;
    for (int a = 0; a < A; a++) {
        if (allowed && !allowed[a]) continue;
        if (best < 0 || v[a] > v[best]) best = a;
    }
    return best;
}

static float huber(float d, float delta, float *grad) {
    float ad = fabsf(d);
    if (ad <= delta) {
        *grad = d;
        return 0.5f * d * d;
    }
    *grad = d > 0 ? delta : -delta;
    return delta * (ad - 0.5f * delta);
}

/* Host path.  The CQL / smoothness loss after a forward (qcur) with targets y in q->r: per row
 * Huber(Q(s,a) - y) + alpha (logsumexp_j Q(s,j) - Q(s,a)) + smooth mean_j (second difference
 * of Q over the levels)^2, its gradient dY = (h'(d) e_a + alpha (softmax - e_a) + smoothness) / B
 * back through the online network (zero for idle products); per-product mean loss in q->loss.
 * With a support (agt_dqn_set_support) both terms run over the product's allowed levels only:
 * the logsumexp over them, the second differences whose three levels are all allowed (their
 * mean); a level outside it gets no gradient, so levels no row reaches do not pull the levels
 * the product may choose (docs/compare.md, "A wider grid for the DQN (q12grid)"). */
static int dqn_cql_backward(agt_dqn *q, const float *qcur, float *dyb) {
    const int P = q->P, B = q->cfg.batch, A = q->cfg.n_actions;
    const float al = q->cfg.cql_alpha, sm = q->cfg.smooth, invb = 1.0f / (float)B;
    for (int p = 0; p < P; p++) {
        const unsigned char *su = q->support ? q->support + (size_t)p * A : NULL;
        int n2 = 0; /* second differences inside the support */
        for (int j = 1; j + 1 < A; j++) n2 += !su || (su[j - 1] && su[j] && su[j + 1]);
        double lsum = 0;
        for (int b = 0; b < B; b++) {
            const size_t i = (size_t)p * B + b;
            const float *qr = qcur + i * A;
            float *dy = dyb + i * A;
            memset(dy, 0, sizeof(float) * A);
            if (!q->mask[p]) continue;
            const int a = (int)q->a[i];
            float g, l = huber(qr[a] - q->r[i], q->cfg.huber_delta, &g);
            lsum += l;
            if (al > 0) {
                float mx = -INFINITY;
                for (int j = 0; j < A; j++)
                    if ((!su || su[j] || j == a) && qr[j] > mx) mx = qr[j];
                double z = 0;
                for (int j = 0; j < A; j++)
                    if (!su || su[j] || j == a) z += exp((double)(qr[j] - mx));
                lsum += al * ((double)mx + log(z) - qr[a]);
                for (int j = 0; j < A; j++)
                    if (!su || su[j] || j == a) dy[j] = al * (float)(exp((double)(qr[j] - mx)) / z) * invb;
            }
            dy[a] += (g - al) * invb;
            if (sm > 0 && n2 > 0) {
                const float c2 = 2.0f * sm / (float)n2 * invb;
                for (int j = 1; j + 1 < A; j++) {
                    if (su && !(su[j - 1] && su[j] && su[j + 1])) continue;
                    const float d2 = qr[j - 1] - 2.0f * qr[j] + qr[j + 1];
                    lsum += sm * (double)d2 * d2 / n2;
                    dy[j - 1] += c2 * d2, dy[j] -= 2.0f * c2 * d2, dy[j + 1] += c2 * d2;
                }
            }
        }
        q->loss[p] = q->mask[p] ? (float)(lsum / B) : 0.0f;
    }
    int st = eng_model_zero_grad(q->online);
    return st ? st : eng_model_backward(q->online, dyb, NULL);
}

int agt_dqn_set_support(agt_dqn *q, const unsigned char *allowed) {
    if (!q) return eng_err_set(ENG_EINVAL, "dqn_set_support: NULL agent");
    const int P = q->P, A = q->cfg.n_actions;
    if (!allowed) {
        free(q->support);
        q->support = NULL;
        return ENG_OK;
    }
    for (int p = 0; p < P; p++) {
        int n = 0;
        for (int a = 0; a < A; a++) n += allowed[(size_t)p * A + a] != 0;
        if (!n) return eng_err_set(ENG_EINVAL, "dqn_set_support: product %d allows no level", p);
    }
    if (!q->support && !(q->support = eng_malloc((size_t)P * A))) return ENG_ENOMEM;
    for (size_t i = 0; i < (size_t)P * A; i++) q->support[i] = allowed[i] != 0;
    return ENG_OK;
}

int agt_dqn_freeze(agt_dqn *q, int p, int on) {
    if (!q || p < 0 || p >= q->P) return eng_err_set(ENG_EINVAL, "dqn_freeze: bad product %d", p);
    q->frozen[p] = on ? 1 : 0;
    return ENG_OK;
}

int agt_dqn_eval_loss(agt_dqn *q, const float *s, const float *action, const float *reward, const float *s2,
                      const float *done, const float *weight, int B, float *loss) {
    if (!q || !s || !action || !reward || !s2 || !done || !weight || !loss || B < 1)
        return eng_err_set(ENG_EINVAL, "dqn_eval_loss: bad argument");
    const int P = q->P, A = q->cfg.n_actions;
    const size_t PB = (size_t)P * B;
    int st = ENG_ENOMEM;
    const int boot = q->cfg.gamma != 0.0f; /* at gamma 0, y = r: the networks are not run on s' */
    float *qon = boot ? eng_malloc(PB * A * sizeof(float)) : NULL, *qt = boot ? eng_malloc(PB * A * sizeof(float)) : NULL;
    float *qc = eng_malloc(PB * A * sizeof(float));
    if ((boot && (!qon || !qt)) || !qc) goto cleanup;
    if ((boot && ((st = eng_model_infer(q->online, s2, B, qon)) || (st = eng_model_infer(q->target, s2, B, qt)))) ||
        (st = eng_model_infer(q->online, s, B, qc)))
        goto cleanup;
    for (int p = 0; p < P; p++) {
        double ls = 0, ws = 0;
        for (int b = 0; b < B; b++) {
            const size_t i = (size_t)p * B + b;
            const float w = weight[i];
            if (!(w > 0)) continue;
            const int a = (int)action[i];
            if (a < 0 || a >= A) {
                st = eng_err_set(ENG_EINVAL, "dqn_eval_loss: level %d outside 0..%d", a, A - 1);
                goto cleanup;
            }
            float y = reward[i], g;
            if (boot) {
                const float *sel = q->cfg.double_dqn ? qon + i * A : qt + i * A;
                int astar = argmax_allowed(sel, A, q->support ? q->support + (size_t)p * A : NULL);
                y = reward[i] + (done[i] != 0.0f ? 0.0f : q->cfg.gamma * qt[i * A + astar]);
            }
            ls += w * huber(qc[i * A + a] - y, q->cfg.huber_delta, &g);
            ws += w;
        }
        loss[p] = ws > 0 ? (float)(ls / ws) : NAN;
    }
    st = ENG_OK;
cleanup:
    free(qon);
    free(qt);
    free(qc);
    return st;
}

static int argmax_both(const float *v, int A, const unsigned char *al1, const unsigned char *al2) {
    int best = -1;
    for (int a = 0; a < A; a++) {
        if ((al1 && !al1[a]) || (al2 && !al2[a])) continue;
        if (best < 0 || v[a] > v[best]) best = a;
    }
    return best;
}

/* Check the posted statistics of step q->pending_step: a non-finite loss or gradient norm of a
 * product that trained then, or (every AGT_FULL_CHECK steps, when the post scanned them) a
 * non-finite parameter of any product flags the product (logged once, masked out from then
 * on).  Waits for that step once.  No-op when nothing is pending. */
static int dqn_settle(agt_dqn *q) {
    if (!q->pending) return ENG_OK;
    q->pending = 0;
    int st = eng_model_stats_fetch(q->online, q->loss, q->gnorm, q->newbad);
    if (st < 0) return st;
    for (int p = 0; p < q->P; p++)
        if ((q->newbad[p] || (q->pmask[p] && (!isfinite(q->loss[p]) || !isfinite(q->gnorm[p])))) && !q->bad[p]) {
            q->bad[p] = 1;
            ENG_WARN("dqn: product %ld diverged at step %ld (non-finite parameters or loss); it is excluded from further training",
                     q->cfg.product_base + p, q->pending_step);
        }
    return ENG_OK;
}

/* The Adam step of the online network over the slots of q->mask, or, with cfg.grad_hook (shared
 * networks trained data-parallel), over the slots the hook chose after tying the gradients.
 * Returns 0 or the hook's / Adam's failure. */
static int dqn_adam(agt_dqn *q, const eng_adam_cfg *ac, float *gnorm) {
    const unsigned char *m = q->mask;
    if (q->cfg.grad_hook) {
        int st = q->cfg.grad_hook(q->cfg.grad_ctx, q->online, q->mask, q->amask);
        if (st) return st;
        m = q->amask;
    }
    return eng_model_adam_step(q->online, ac, m, gnorm);
}

/* The host path of a step (CQL, smoothness or a support mask): targets with the support mask
 * at s', the loss's gradient computed here (dqn_cql_backward), Adam, and the divergence checks at
 * once (no posted statistics).  The minibatch is in the host views.  Returns 0 or a status. */
static int dqn_step_host(agt_dqn *q) {
    const int P = q->P, B = q->cfg.batch, A = q->cfg.n_actions;
    const size_t PB = (size_t)P * B;
    int st;
    if (!q->hq && !(q->hq = eng_malloc(4 * PB * A * sizeof(float)))) return ENG_ENOMEM;
    float *q2on = q->hq, *q2t = q2on + PB * A, *qcur = q2t + PB * A, *dyb = qcur + PB * A;
    if ((st = dqn_settle(q))) return st;
    if (q->cfg.gamma != 0.0f) { /* at gamma 0 the bootstrap is multiplied by 0: y = r, s' is not run */
        if (q->cfg.double_dqn && (st = eng_model_infer(q->online, q->s2, B, q2on))) return st;
        if ((st = eng_model_infer(q->target, q->s2, B, q2t))) return st;
        for (size_t i = 0; i < PB; i++) {
            const float *sel = q->cfg.double_dqn ? q2on + i * A : q2t + i * A;
            const size_t p = i / (size_t)B;
            int astar = argmax_allowed(sel, A, q->support ? q->support + p * A : NULL);
            q->r[i] += q->done[i] != 0.0f ? 0.0f : q->cfg.gamma * q2t[i * A + astar]; /* r := y */
        }
    }
    if ((st = eng_model_forward(q->online, q->s, B, qcur))) return st;
    if ((st = dqn_cql_backward(q, qcur, dyb))) return st;
    eng_adam_cfg ac = eng_adam_default();
    ac.lr = q->cfg.lr;
    ac.clip_norm = q->cfg.clip_norm;
    if ((st = dqn_adam(q, &ac, q->gnorm))) return st;
    q->steps++;
    if (q->steps % AGT_FULL_CHECK == 0) {
        if ((st = eng_model_check_finite(q->online, q->newbad)) < 0) return st;
    } else {
        memset(q->newbad, 0, (size_t)P);
    }
    for (int p = 0; p < P; p++) {
        if (q->mask[p] && (!isfinite(q->loss[p]) || !isfinite(q->gnorm[p]))) q->newbad[p] = 1;
        if (q->newbad[p] && !q->bad[p]) {
            q->bad[p] = 1;
            ENG_WARN("dqn: product %ld diverged at step %ld (non-finite parameters or loss); it is excluded from further training",
                     q->cfg.product_base + p, q->steps);
        }
    }
    return ENG_OK;
}

/* The device work of a step, after the minibatch upload: bootstrap values, the forward, the
 * targets (be->dqn_targets), the loss's backward and Adam (dqn_adam: a gradient hook inside
 * makes the rest of the step run as plain launches, see be->graph_begin).  Returns 0 or a
 * status. */
static int dqn_device_step(agt_dqn *q) {
    const int P = q->P, B = q->cfg.batch, A = q->cfg.n_actions, S = q->cfg.state_dim;
    const size_t PB = (size_t)P * B;
    const eng_backend *be = q->be;
    int st;
    const float *ds = q->db, *ds2 = ds + PB * S, *da = ds2 + PB * S, *dr = da + PB, *ddone = dr + PB,
                *dmask = ddone + PB;
    float *q2on = q->dq, *q2t = q2on + PB * A, *tgt = q2t + PB * A, *w = tgt + PB * A;
    /* bootstrap values: inference only (the online forward below is the one backward uses); at
     * gamma 0 they are multiplied by 0 and not computed: q2on and q2t stay as allocated (zero) */
    if (q->cfg.gamma != 0.0f) {
        if (q->cfg.double_dqn && (st = eng_model_infer_dev(q->online, ds2, B, q2on))) return st;
        if ((st = eng_model_infer_dev(q->target, ds2, B, q2t))) return st;
    }
    if ((st = eng_model_forward_dev(q->online, ds, B))) return st;
    /* target row = prediction except at the taken level (y there); weight one-hot */
    if ((st = be->dqn_targets(q->cfg.double_dqn ? q2on : q2t, q2t, eng_model_output_dev(q->online), da, dr, ddone,
                              dmask, q->cfg.gamma, P, B, A, tgt, w)))
        return st;
    if ((st = eng_model_zero_grad(q->online))) return st;
    if ((st = eng_model_loss_backward_dev(q->online, ENG_LOSS_HUBER, q->cfg.huber_delta, tgt, w))) return st;
    eng_adam_cfg ac = eng_adam_default();
    ac.lr = q->cfg.lr;
    ac.clip_norm = q->cfg.clip_norm;
    return dqn_adam(q, &ac, NULL);
}

/* One group step on the backend: the minibatch goes up in one copy, the bootstrap targets are
 * built there (be->dqn_targets), and the loss and gradient norms come back asynchronously:
 * they are checked for divergence one step late (at the next step, or at once when the caller
 * asks for the losses, or by agt_dqn_diverged / agt_dqn_save).  Per step on a device: one
 * upload (plus the mask when it changes), one host wait. */
int agt_dqn_train_step(agt_dqn *q, float *loss) {
    if (!q) return eng_err_set(ENG_EINVAL, "dqn_train_step: NULL agent");
    const int P = q->P, B = q->cfg.batch;
    const eng_backend *be = q->be;
    int st, any;
    for (int p = 0; p < P; p++) q->skip[p] = q->bad[p] | q->frozen[p];
    /* idle products: zeroed inputs, zero loss weight, no Adam step */
    if ((st = agt_replay_sample_group(q->rb, q->rng, q->skip, q->cfg.learn_start, B, q->mask, &any, q->s, q->a, q->r,
                                      q->s2, q->done)))
        return st;
    if (loss)
        for (int p = 0; p < P; p++) loss[p] = NAN;
    if (!any && !q->cfg.grad_hook) return ENG_OK;
    if (q->cfg.cql_alpha > 0 || q->cfg.smooth > 0 || q->support) {
        if ((st = dqn_step_host(q))) return st;
        if (loss)
            for (int p = 0; p < P; p++)
                if (q->mask[p]) loss[p] = q->loss[p];
        goto targets;
    }
    for (int p = 0; p < P; p++) q->maskf[p] = q->mask[p] ? 1.0f : 0.0f;
    if ((st = be->to_device(q->db, q->hb, q->nbatch))) return st;
    /* the device work of the step: one CUDA graph launch when graphs are on (be->graph_begin) */
    if ((st = be->graph_begin())) return st;
    if ((st = be->graph_end(&q->graph, dqn_device_step(q)))) return st;
    q->steps++;
    /* divergence: a non-finite loss or gradient norm (Adam then writes non-finite parameters)
     * flags a product, one step late (dqn_settle); a full parameter scan every AGT_FULL_CHECK
     * steps, carried by the same copy, catches anything else. */
    if ((st = dqn_settle(q))) return st;
    if ((st = eng_model_stats_post(q->online, q->steps % AGT_FULL_CHECK == 0))) return st;
    memcpy(q->pmask, q->mask, (size_t)P);
    q->pending = 1;
    q->pending_step = q->steps;
    if (loss && (st = dqn_settle(q))) return st;
    if (loss)
        for (int p = 0; p < P; p++)
            if (q->mask[p]) loss[p] = q->loss[p];
targets:
    if (q->cfg.target_sync > 0) {
        if (q->steps % q->cfg.target_sync == 0 && (st = eng_model_copy_params(q->target, q->online))) return st;
    } else if ((st = eng_model_polyak(q->target, q->online, q->cfg.tau))) {
        return st;
    }
    return ENG_OK;
}

int agt_dqn_q_values(agt_dqn *q, const float *s, int B, float *qv) {
    if (!q || !s || !qv) return eng_err_set(ENG_EINVAL, "dqn_q_values: NULL argument");
    return eng_model_infer(q->online, s, B, qv);
}

int agt_dqn_greedy(agt_dqn *q, const float *s, const unsigned char *allowed, int *action) {
    if (!q || !s || !action) return eng_err_set(ENG_EINVAL, "dqn_greedy: NULL argument");
    const int A = q->cfg.n_actions;
    int st = eng_model_infer(q->online, s, 1, q->q1);
    if (st) return st;
    for (int p = 0; p < q->P; p++) {
        int a = argmax_both(q->q1 + (size_t)p * A, A, allowed ? allowed + (size_t)p * A : NULL,
                            q->support ? q->support + (size_t)p * A : NULL);
        if (a < 0) return eng_err_set(ENG_EINVAL, "dqn_greedy: product %d has no allowed price level", p);
        action[p] = a;
    }
    return ENG_OK;
}

float agt_dqn_epsilon(const agt_dqn *q) {
    const agt_dqn_cfg *c = &q->cfg;
    if (c->eps_decay <= 0 || q->acts >= c->eps_decay) return c->eps_end;
    double f = (double)q->acts / (double)c->eps_decay;
    return (float)(c->eps_start + (c->eps_end - c->eps_start) * f);
}

int agt_dqn_act(agt_dqn *q, const float *s, const unsigned char *allowed, int *action) {
    int st = agt_dqn_greedy(q, s, allowed, action);
    if (st) return st;
    const int A = q->cfg.n_actions;
    const float eps = agt_dqn_epsilon(q);
    for (int p = 0; p < q->P; p++) {
        double u = eng_rng_uniform(&q->rng[p]);
        if (u >= eps) continue;
        const unsigned char *al = allowed ? allowed + (size_t)p * A : NULL;
        const unsigned char *su = q->support ? q->support + (size_t)p * A : NULL;
        int n = 0;
        for (int a = 0; a < A; a++) n += (!al || al[a]) && (!su || su[a]);
        if (n == 0) continue; /* greedy already failed for such a product */
        int pick = (int)eng_rng_below(&q->rng[p], (uint64_t)n);
        for (int a = 0; a < A; a++) {
            if ((al && !al[a]) || (su && !su[a])) continue;
            if (pick-- == 0) { action[p] = a; break; }
        }
    }
    q->acts++;
    return ENG_OK;
}

static int dqn_save(agt_dqn *q, const char *path, const eng_ckpt_opts *o) {
    if (!q || !path) return eng_err_set(ENG_EINVAL, "dqn_save: NULL argument");
    int n;
    const agt_cfg_field *f = agt_dqn_fields(&n);
    int st0 = dqn_settle(q);
    if (st0) return st0;
    char *cfg = agt_cfg_to_string(&q->cfg, f, n, "dqn");
    if (!cfg) return ENG_ENOMEM;
    int st = eng_ckpt_save_opts(q->online, path, NULL, cfg, o);
    free(cfg);
    return st;
}

int agt_dqn_save(agt_dqn *q, const char *path) {
    const eng_ckpt_opts full = {1, 1, 0};
    return dqn_save(q, path, &full);
}

int agt_dqn_save_warm(agt_dqn *q, const char *path) {
    const eng_ckpt_opts warm = {0, 0, 1};
    return dqn_save(q, path, &warm);
}

int agt_dqn_load(agt_dqn **out, const eng_backend *be, const char *path) {
    if (!out || !be || !path) return eng_err_set(ENG_EINVAL, "dqn_load: NULL argument");
    *out = NULL;
    eng_model *m = NULL;
    char *cfgs = NULL;
    agt_dqn *q = NULL;
    int st = eng_ckpt_load(&m, be, path, NULL, &cfgs);
    if (st) goto cleanup;
    agt_dqn_cfg c = agt_dqn_default();
    int n;
    const agt_cfg_field *f = agt_dqn_fields(&n);
    if (!cfgs || (st = agt_cfg_load_string(&c, f, n, cfgs, "dqn", path)) != ENG_OK) {
        st = eng_err_set(ENG_EFORMAT, "dqn_load: '%s': no usable DQN config (%s)", path, cfgs ? eng_err_msg() : "missing");
        goto cleanup;
    }
    const eng_arch *a = eng_model_arch(m);
    if (a->n_layers != 3 || a->sizes[0] != c.state_dim || a->sizes[1] != c.hidden1 || a->sizes[2] != c.hidden2 ||
        a->sizes[3] != c.n_actions) {
        st = eng_err_set(ENG_EFORMAT, "dqn_load: '%s': network shape does not match its config", path);
        goto cleanup;
    }
    if ((st = agt_dqn_create(&q, be, &c, eng_model_P(m)))) goto cleanup;
    eng_model_free(q->online);
    q->online = m;
    m = NULL;
    if ((st = eng_model_copy_params(q->target, q->online))) goto cleanup;
    st = eng_model_check_finite(q->online, q->bad);
    if (st < 0) goto cleanup;
    st = ENG_OK;
    *out = q;
    q = NULL;
cleanup:
    eng_model_free(m);
    free(cfgs);
    agt_dqn_free(q);
    return st;
}
