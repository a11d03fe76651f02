/* exp_bench_agents.h - `rlprice bench agents`: training and decision throughput of the agents
 * (DQN, DDPG, LinUCB, a DQN model group) printed beside the project's goals. */
#ifndef EXP_BENCH_AGENTS_H
#define EXP_BENCH_AGENTS_H

/* `rlprice bench agents` after its flags (only: "dqn", "ddpg", "linucb", "group" or NULL = all;
 * threads 0 = default).  Returns the exit code: 0, 2 (bad device), 1 (failure). */
int exp_bench_agents_run(const char *device, double seconds, int products, int budget, const char *only, int threads);

#endif
