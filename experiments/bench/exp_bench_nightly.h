/* exp_bench_nightly.h - `rlprice bench nightly`: a whole nightly run at paper scale. */
#ifndef EXP_BENCH_NIGHTLY_H
#define EXP_BENCH_NIGHTLY_H

#include <stdint.h>

#include "exp_nightly.h"

/* The night's settings of `bench nightly` in cfg (from exp_nightly_default; the caller frees
 * cfg->compare with exp_compare_cfg_free): --device and --seed first, then settings[n_settings]
 * (may be NULL when 0): --nightly.KEY=VALUE flags into the nightly's own fields
 * (exp_nightly_fields), every other --section.KEY=VALUE into cfg->compare, so an explicit
 * --compare.device= or --compare.seed= wins over --device / --seed.  settings[] is reordered
 * (the comparison's flags first; --nightly.window_days is refused: the bench's window is its
 * --days).  Returns 0, or an ENG_* code with the message set (a bad device, an unknown key, a
 * value that does not parse, a bad compare setting or window_carryover_* out of range; the other
 * nightly settings' ranges are checked by exp_nightly_run). */
int exp_bench_nightly_config(exp_nightly_cfg *cfg, const char *device, uint64_t seed, int n_settings, char **settings);

/* `rlprice bench nightly` after its flags; settings [n_settings] (may be NULL when 0): the
 * comparison's setting flags (e.g. "--compare.agent_desc=2", exp_compare_cfg_parse_flags) applied
 * to the night's config.  Returns the exit code: 0, 3 (database), 1 (other), 4 (some products
 * failed), 2 (a bad setting). */
int exp_bench_nightly_run(const char *dbarg, const char *device, const char *out, int n_products, int n_days, int keep,
                          uint64_t seed, int n_settings, char **settings);

#endif
