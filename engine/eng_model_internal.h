/* eng_model_internal.h - engine-internal access to a model group, for the engine's own tests
 * (tests/test_engine_pad.c): not part of the interface the rest of rlprice uses. */
#ifndef ENG_MODEL_INTERNAL_H
#define ENG_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "eng_model.h"

/* eng_model_create with product blocks of nparams rounded up to a multiple of `pad` floats
 * instead of 32 (pad = 1: no padding, the reference layout).  Same ownership and failures as
 * eng_model_create; ENG_EINVAL for pad outside 1..32. */
int eng_model_create_padded(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                            size_t pad);

/* The model's one backend allocation: the params, grads, adam_m and adam_v views back to back,
 * each [P][eng_model_stride(m)] (host memory on the CPU backend).  Owned by the model; NULL
 * for a NULL model. */
const float *eng_model_mem(const eng_model *m);

#endif
