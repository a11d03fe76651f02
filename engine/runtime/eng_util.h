/* eng_util.h - the shared runtime of every layer, one header per job (engine/runtime/):
 *   eng_status.h  status codes, error messages, checked allocation / fopen
 *   eng_log.h     logging
 *   eng_rng.h     random numbers and seed derivation
 *   eng_file.h    atomic files, mkdir -p, rm -rf
 *   eng_time.h    monotonic time, peak memory
 *   eng_date.h    calendar dates <-> days since 1970-01-01
 *   eng_parse.h   trimming and strict number parsing
 *   eng_config.h  the key = value settings parser
 *   eng_h5.h      HDF5 helpers
 * This header includes the first five and eng_parse.h (what most files need).
 *
 * Shared by every layer of rlprice.  Conventions (see README "Code conventions"):
 *   - functions return 0 (ENG_OK) on success and a negative ENG_E* code on failure;
 *   - on failure they record a human-readable message with eng_err_set(), which the
 *     command prints; library code never calls exit();
 *   - "caller frees" / "callee owns" is stated on every function that allocates.
 */
#ifndef ENG_UTIL_H
#define ENG_UTIL_H

#include "eng_file.h"
#include "eng_log.h"
#include "eng_parse.h"
#include "eng_rng.h"
#include "eng_status.h"
#include "eng_time.h"

#endif
