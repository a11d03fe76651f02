/* tests/test_nightly.h - the shared set-up of the suites that run the nightly on a throwaway
 * database (test_db.h): a simulated history stored as a shop would hold it, and the small
 * nightly settings that make a run take about a second. */
#ifndef TEST_NIGHTLY_H
#define TEST_NIGHTLY_H

#include "test_db.h"

#include <stdio.h>

#include "db_store.h"
#include "env_sim.h"
#include "exp_nightly.h"

/* Simulate n_products x n_periods periods of period_days days from day0 (the default preset,
 * seed) and store them into c (products, sales, competitor prices).  Fails the test on error;
 * nothing to free. */
static inline void tnl_store_sim(PGconn *c, int n_products, int n_periods, int period_days, int32_t day0,
                                 uint64_t seed) {
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    if (env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, n_products, n_periods, period_days, day0, seed, &h, &lg))
        fail_msg("%s", eng_err_msg());
    if (db_history_store(c, h, NULL, NULL)) fail_msg("%s", eng_err_msg());
    db_history_free(h);
    env_sim_log_free(lg);
}

/* The nightly's defaults with small budgets (10 DQN / DDPG steps, groups of 8, n_boot bootstrap
 * replicates per product and in total) on the CPU, for date, a window of window_days, reports
 * under out_dir and checkpoints under ckpt_dir (borrowed: they must outlive the settings). */
static inline exp_nightly_cfg tnl_small_cfg(PGconn *c, int32_t date, int window_days, const char *out_dir,
                                            const char *ckpt_dir, int n_boot) {
    exp_nightly_cfg cfg = exp_nightly_default();
    cfg.conn = c;
    cfg.date = date;
    cfg.window_days = window_days;
    cfg.out_dir = out_dir;
    cfg.ckpt_dir = ckpt_dir;
    snprintf(cfg.compare.device, sizeof cfg.compare.device, "cpu");
    cfg.compare.dqn_steps = 10;
    cfg.compare.ddpg_steps = 10;
    cfg.compare.group_size = 8;
    cfg.compare.ope.n_boot = n_boot;
    cfg.compare.total_boot = n_boot;
    return cfg;
}

#endif
