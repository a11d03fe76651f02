/* eng_backend_cpu_rl.c - the CPU backend's ops for the agents' device-resident steps
 * (dqn_targets, concat_cols and the DDPG pieces; see eng_backend.h): the host arithmetic the
 * agents used to run themselves, unchanged, so the CPU results stay bit for bit the same. */
#include "eng_backend_cpu_rl.h"

#include "eng_util.h"

#include <math.h>
#include <string.h>

/* DQN targets: the host loop agt_dqn.c used to run, in backend memory. */
int eng_cpu_dqn_targets(const float *q_sel, const float *q_tgt, const float *q_cur, const float *act,
                           const float *r, const float *done, const float *mask, float gamma, int P, int B, int A,
                           float *tgt, float *w) {
    if (P < 0 || B < 0 || A < 1)
        return eng_err_set(ENG_EINVAL, "cpu dqn_targets: bad size (P %d B %d A %d)", P, B, A);
    const size_t PB = (size_t)P * (size_t)B;
    if (PB == 0) return ENG_OK;
    eng_cpu_count_launch();
    for (size_t i = 0; i < PB; i++) {
        const float *sel = q_sel + i * A;
        int astar = 0;
        for (int j = 1; j < A; j++)
            if (sel[j] > sel[astar]) astar = j;
        const float boot = done[i] != 0.0f ? 0.0f : gamma * q_tgt[i * A + astar];
        const float y = r[i] + boot;
        int a = (int)act[i];
        if (a < 0) a = 0;
        if (a >= A) a = A - 1;
        float *trow = tgt + i * A, *wrow = w + i * A;
        const float *qrow = q_cur + i * A;
        for (int j = 0; j < A; j++) {
            trow[j] = qrow[j];
            wrow[j] = 0.0f;
        }
        trow[a] = y;
        wrow[a] = mask[i / (size_t)B] != 0.0f ? 1.0f : 0.0f;
    }
    return ENG_OK;
}

/* ---- row concatenation and the DDPG pieces (see eng_backend.h) ---- */
int eng_cpu_concat_cols(float *dst, const float *a, int na, const float *b, int nb, size_t rows) {
    if (na < 0 || nb < 0) return eng_err_set(ENG_EINVAL, "cpu concat_cols: negative width");
    if (rows == 0 || na + nb == 0) return ENG_OK;
    eng_cpu_count_launch();
    const size_t w = (size_t)na + (size_t)nb;
    for (size_t i = 0; i < rows; i++) {
        memcpy(dst + i * w, a + i * (size_t)na, (size_t)na * sizeof(float));
        memcpy(dst + i * w + na, b + i * (size_t)nb, (size_t)nb * sizeof(float));
    }
    return ENG_OK;
}

int eng_cpu_ddpg_critic_target(float *y, const float *r, const float *done, const float *q, float gamma, size_t n) {
    if (n == 0) return ENG_OK;
    eng_cpu_count_launch();
    for (size_t i = 0; i < n; i++) y[i] = r[i] + (done[i] != 0.0f ? 0.0f : gamma * q[i]);
    return ENG_OK;
}

int eng_cpu_ddpg_actor_dq(float *dq, float *q_mean, const float *q, const float *mask, int bc, float bc_alpha, int P,
                             int B) {
    if (P < 0 || B < 1) return eng_err_set(ENG_EINVAL, "cpu ddpg_actor_dq: bad size (P %d B %d)", P, B);
    if (P == 0) return ENG_OK;
    eng_cpu_count_launch();
    for (int p = 0; p < P; p++) {
        const float *qp = q + (size_t)p * B;
        double sabs = 0, sq = 0;
        for (int b = 0; b < B; b++) {
            sabs += fabs(qp[b]);
            sq += qp[b];
        }
        if (q_mean) q_mean[p] = (float)(sq / B);
        float lambda = 1.0f;
        if (bc) lambda = (float)(bc_alpha / fmax(sabs / B, 1e-6));
        const float g = mask[p] != 0.0f ? -lambda / (float)B : 0.0f;
        for (int b = 0; b < B; b++) dq[(size_t)p * B + b] = g;
    }
    return ENG_OK;
}

int eng_cpu_ddpg_action_grad(float *da, const float *dx, int dx_stride, int dx_col, const float *mu, const float *a,
                                const float *mask, int bc, int P, int B) {
    if (P < 0 || B < 1 || dx_col < 0 || dx_col >= dx_stride)
        return eng_err_set(ENG_EINVAL, "cpu ddpg_action_grad: bad size (P %d B %d col %d of %d)", P, B, dx_col, dx_stride);
    const size_t n = (size_t)P * B;
    if (n == 0) return ENG_OK;
    eng_cpu_count_launch();
    for (size_t i = 0; i < n; i++) {
        float g = dx[i * dx_stride + dx_col];
        if (bc) g += 2.0f * (mu[i] - a[i]) / (float)B;
        da[i] = mask[i / (size_t)B] != 0.0f ? g : 0.0f;
    }
    return ENG_OK;
}
