/* eng_backend_cpu_rl.h - internal to the CPU backend: its reinforcement-learning step ops
 * (engine/eng_backend_cpu_rl.c), which eng_backend_cpu.c puts in its op table.  Each counts
 * one launch (eng_cpu_count_launch) when it does work; see eng_backend.h for what it computes
 * and returns. */
#ifndef ENG_BACKEND_CPU_RL_H
#define ENG_BACKEND_CPU_RL_H

#include <stddef.h>

#include "eng_backend.h"

void eng_cpu_count_launch(void);
int eng_cpu_dqn_targets(const float *q_sel, const float *q_tgt, const float *q_cur, const float *act, const float *r,
                        const float *done, const float *mask, float gamma, int P, int B, int A, float *tgt, float *w);
int eng_cpu_concat_cols(float *dst, const float *a, int na, const float *b, int nb, size_t rows);
int eng_cpu_ddpg_critic_target(float *y, const float *r, const float *done, const float *q, float gamma, size_t n);
int eng_cpu_ddpg_actor_dq(float *dq, float *q_mean, const float *q, const float *mask, int bc, float bc_alpha, int P,
                          int B);
int eng_cpu_ddpg_action_grad(float *da, const float *dx, int dx_stride, int dx_col, const float *mu, const float *a,
                             const float *mask, int bc, int P, int B);

#endif
