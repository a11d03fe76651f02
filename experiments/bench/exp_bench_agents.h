/* exp_bench_agents.h - `rlprice bench agents`: training and decision throughput of the agents
 * (DQN, DDPG, LinUCB, a DQN model group) printed beside the project's goals. */
#ifndef EXP_BENCH_AGENTS_H
#define EXP_BENCH_AGENTS_H

/* Command: rlprice bench agents [--device cpu|cuda|auto] [--seconds S] [--products N]
 *                               [--budget STEPS] [--only dqn|ddpg|linucb|group]
 * Prints one line per figure to stdout.  Returns 0, 2 (usage), 1 (failure). */
int exp_cmd_bench_agents(int argc, char **argv);

#endif
