/* exp_publish.h - the nightly's report folders: staging, atomic publish, clean-up.
 *
 * Layout under out_dir (docs/nightly.md, "Report folders"):
 *   <name>.attempt-<N>/   one complete report per attempt at a run (N from pricing_run_attempts,
 *                         or the next free number for a dry run)
 *   <name> -> <name>.attempt-<N>    symlink: the run's current report
 *   latest -> <name>.attempt-<N>    symlink: the last report published
 *   .<name>.tmp.<pid>/    staging folder of a run in progress (removed when that pid is gone)
 * Publishing is: (1) rename the complete staging folder to its attempt folder, (2) switch
 * <name> with one rename of a new symlink over it, (3) the same for latest, (4) remove the
 * name's older attempt folders.  Each step is one rename, so a process killed between any two
 * steps leaves <name> and latest pointing at complete reports (the previous ones, or the new).
 */
#ifndef EXP_PUBLISH_H
#define EXP_PUBLISH_H

#include <stddef.h>

/* mkdir -p.  Returns 0, ENG_EINVAL (path too long), ENG_EIO. */
int exp_pub_mkdir_p(const char *path);

/* rm -rf (symlinks are removed, never followed).  Best effort, no status. */
void exp_pub_rm_rf(const char *path);

/* Remove staging folders and temporary links ("." names with ".tmp.<pid>") whose pid is no
 * longer alive: left by runs that were killed. */
void exp_pub_clean_stale(const char *out_dir);

/* Test hook, called after publish step 1, 2 and 3 (see above) with ctx. */
typedef void (*exp_pub_hook_fn)(void *ctx, int step);

/* Publish the complete folder `staging` as attempt `attempt` (<= 0: the next free number) of
 * `name` under out_dir, as described above.  final_out (size n) receives out_dir/name.
 * A real folder under out_dir/name (the layout before attempt folders) is first moved to
 * <name>.attempt-0.  Returns 0, or ENG_EIO with the failed step (staging is then left for the
 * caller to remove, and the links point where they pointed before that step). */
int exp_pub_publish(const char *out_dir, const char *staging, const char *name, int attempt, exp_pub_hook_fn hook,
                    void *hook_ctx, char *final_out, size_t n);

#endif
