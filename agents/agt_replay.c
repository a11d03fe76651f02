/* agt_replay.c - see agt_replay.h. */
#include "agt_replay.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int agt_replay_create(agt_replay **out, int P, int S, int A, long capacity) {
    if (!out) return eng_err_set(ENG_EINVAL, "replay_create: NULL argument");
    *out = NULL;
    if (P < 1 || S < 1 || A < 1 || capacity < 1)
        return eng_err_set(ENG_EINVAL, "replay_create: P, state size, action size and capacity must be >= 1 (got %d, %d, %d, %ld)",
                           P, S, A, capacity);
    agt_replay *r = eng_calloc(1, sizeof *r);
    if (!r) return ENG_ENOMEM;
    r->P = P; r->S = S; r->A = A; r->cap = capacity;
    const size_t n = (size_t)P * (size_t)capacity;
    r->state = eng_malloc(sizeof(float) * n * S);
    r->next = eng_malloc(sizeof(float) * n * S);
    r->action = eng_malloc(sizeof(float) * n * A);
    r->reward = eng_malloc(sizeof(float) * n);
    r->done = eng_malloc(n);
    r->size = eng_calloc(P, sizeof(long));
    r->head = eng_calloc(P, sizeof(long));
    if (!r->state || !r->next || !r->action || !r->reward || !r->done || !r->size || !r->head) {
        agt_replay_free(r);
        return ENG_ENOMEM;
    }
    *out = r;
    return ENG_OK;
}

void agt_replay_free(agt_replay *r) {
    if (!r) return;
    free(r->state); free(r->next); free(r->action); free(r->reward); free(r->done); free(r->size); free(r->head);
    free(r);
}

int agt_replay_push(agt_replay *r, int p, const float *s, const float *a, float reward, const float *s2, int done) {
    if (!r || !s || !a || !s2) return eng_err_set(ENG_EINVAL, "replay_push: NULL argument");
    if (p < 0 || p >= r->P) return eng_err_set(ENG_EINVAL, "replay_push: product %d outside 0..%d", p, r->P - 1);
    if (!isfinite(reward)) return eng_err_set(ENG_ENUM, "replay_push: product %d: non-finite reward", p);
    for (int i = 0; i < r->S; i++)
        if (!isfinite(s[i]) || !isfinite(s2[i])) return eng_err_set(ENG_ENUM, "replay_push: product %d: non-finite state feature %d", p, i);
    for (int i = 0; i < r->A; i++)
        if (!isfinite(a[i])) return eng_err_set(ENG_ENUM, "replay_push: product %d: non-finite action", p);
    const size_t slot = (size_t)p * r->cap + (size_t)r->head[p];
    memcpy(r->state + slot * r->S, s, sizeof(float) * r->S);
    memcpy(r->next + slot * r->S, s2, sizeof(float) * r->S);
    memcpy(r->action + slot * r->A, a, sizeof(float) * r->A);
    r->reward[slot] = reward;
    r->done[slot] = done ? 1 : 0;
    r->head[p] = (r->head[p] + 1) % r->cap;
    if (r->size[p] < r->cap) r->size[p]++;
    return ENG_OK;
}

int agt_replay_sample(const agt_replay *r, int p, eng_rng *rng, int B, float *s, float *a, float *rew,
                      float *s2, float *done) {
    if (!r || !rng || B < 1) return eng_err_set(ENG_EINVAL, "replay_sample: bad argument");
    if (p < 0 || p >= r->P) return eng_err_set(ENG_EINVAL, "replay_sample: product %d outside 0..%d", p, r->P - 1);
    if (r->size[p] == 0) return eng_err_set(ENG_EINVAL, "replay_sample: product %d has no transitions", p);
    const int S = r->S, A = r->A;
    for (int i = 0; i < B; i++) {
        const size_t slot = (size_t)p * r->cap + (size_t)eng_rng_below(rng, (uint64_t)r->size[p]);
        const size_t o = (size_t)p * B + i;
        if (s) memcpy(s + o * S, r->state + slot * S, sizeof(float) * S);
        if (s2) memcpy(s2 + o * S, r->next + slot * S, sizeof(float) * S);
        if (a) memcpy(a + o * A, r->action + slot * A, sizeof(float) * A);
        if (rew) rew[o] = r->reward[slot];
        if (done) done[o] = r->done[slot];
    }
    return ENG_OK;
}

int agt_replay_sample_group(const agt_replay *r, eng_rng *rng, const unsigned char *bad, long learn_start, int B,
                            unsigned char *mask, int *any, float *s, float *a, float *rew, float *s2, float *done) {
    const int S = r->S, A = r->A;
    int st;
    *any = 0;
    for (int p = 0; p < r->P; p++) {
        mask[p] = !bad[p] && r->size[p] >= learn_start;
        *any |= mask[p];
        if (mask[p]) {
            if ((st = agt_replay_sample(r, p, &rng[p], B, s, a, rew, s2, done))) return st;
        } else {
            memset(s + (size_t)p * B * S, 0, sizeof(float) * B * S);
            memset(s2 + (size_t)p * B * S, 0, sizeof(float) * B * S);
            memset(a + (size_t)p * B * A, 0, sizeof(float) * B * A);
            memset(rew + (size_t)p * B, 0, sizeof(float) * B);
            memset(done + (size_t)p * B, 0, sizeof(float) * B);
        }
    }
    return ENG_OK;
}
