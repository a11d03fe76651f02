/* eng_model.h - model groups: P dense networks of identical shape trained together.
 *
 * A model group holds P independent multilayer perceptrons (one per product).  One call
 * runs P forward / backward / Adam steps.  P = 1 is an ordinary single network.
 *
 * Memory: ONE backend allocation per model, split into named views
 *     params [P][nparams]   weights then bias per layer: W_l [out_l][in_l], b_l [out_l]
 *     grads  [P][nparams]
 *     adam_m [P][nparams]
 *     adam_v [P][nparams]
 * so each product's parameters are contiguous (checkpoints, per-product clipping,
 * divergence checks) and layer l of all products is a strided batch for GEMM.  In backend
 * memory each product block is padded to eng_model_stride() floats (a multiple of 32, so
 * blocks start 128-byte aligned); the host always sees [P][nparams].
 * Activation buffers for the current batch size live in a second allocation.
 *
 * Data passed to and from these functions is HOST memory laid out [P][B][features];
 * the model moves it to and from the backend.
 */
#ifndef ENG_MODEL_H
#define ENG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "eng_backend.h"
#include "eng_util.h"

#define ENG_MAX_LAYERS 8

typedef struct eng_arch {
    int n_layers;                     /* dense layers, 1..ENG_MAX_LAYERS */
    int sizes[ENG_MAX_LAYERS + 1];    /* sizes[0] = inputs, sizes[n_layers] = outputs */
    eng_act acts[ENG_MAX_LAYERS];     /* activation applied after layer l */
} eng_arch;

/* Build an arch from a size list and a hidden/output activation.
 * e.g. eng_arch_mlp(&a, (int[]){32,256,256,21}, 4, ENG_ACT_RELU, ENG_ACT_IDENTITY). */
int eng_arch_mlp(eng_arch *a, const int *sizes, int n_sizes, eng_act hidden, eng_act output);
size_t eng_arch_nparams(const eng_arch *a); /* parameters of ONE network */

typedef struct eng_model eng_model; /* opaque */

/* Create P networks; weights initialised from `seed` (He-uniform, limit sqrt(6/in), for
 * layers followed by ReLU; Xavier-uniform, sqrt(6/(in+out)), before tanh/identity; biases 0).
 * Product p draws from the stream eng_seed_derive(seed, p), so product p's initial weights do
 * not depend on P, and a group equals P single models made with eng_model_create_at(.., p).
 * Caller frees with eng_model_free.  ENG_EINVAL for a bad arch or P < 1, ENG_ENOMEM. */
int eng_model_create(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed);
/* Same, but the group holds products first_product .. first_product+P-1 of a larger set:
 * product i of the group draws from eng_seed_derive(seed, first_product + i).  Lets a
 * caller split many products into chunks that initialise exactly like one big group. */
int eng_model_create_at(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                        long first_product);
/* Same, product i of the group initialised from eng_seed_derive(seed, keys[i]) (keys NULL:
 * i, as eng_model_create): a product keeps its initial weights whichever group or slot it is
 * in.  keys is read during the call only. */
int eng_model_create_keyed(eng_model **out, const eng_backend *be, const eng_arch *arch, int P, uint64_t seed,
                           const uint64_t *keys);
void eng_model_free(eng_model *m);

int eng_model_P(const eng_model *m);
const eng_arch *eng_model_arch(const eng_model *m);
size_t eng_model_nparams(const eng_model *m); /* per product */
size_t eng_model_stride(const eng_model *m);  /* floats per product block in backend memory (>= nparams) */
const eng_backend *eng_model_backend(const eng_model *m);
long eng_model_step(const eng_model *m);      /* Adam steps taken */

/* Forward all P networks on X [P][B][in] (host).  Keeps activations for backward.
 * Y [P][B][out] (host) receives the outputs; may be NULL. */
int eng_model_forward(eng_model *m, const float *X, int B, float *Y);

/* Inference only: Y [P][B][out] (host, required) = the networks on X [P][B][in] (host), bit
 * for bit what eng_model_forward gives, without touching the activations cached for
 * backward (so it may run between a forward and its backward, e.g. DQN target values).  On
 * the CPU backend it reads X and writes Y in place (no copies).  A batch larger than any
 * before grows the buffers and drops the cached forward (a later backward then fails with
 * ENG_EINVAL).  ENG_EINVAL for NULL arguments or B < 1, ENG_ENOMEM. */
int eng_model_infer(eng_model *m, const float *X, int B, float *Y);

/* Backward after a forward: dY [P][B][out] (host) is dL/dY.  ACCUMULATES into grads
 * (call eng_model_zero_grad first).  dX [P][B][in] (host) receives dL/dX when non-NULL. */
int eng_model_backward(eng_model *m, const float *dY, float *dX);

/* Input gradient only: dX [P][B][in] (host, required) = dL/dX for dY [P][B][out] (host) = dL/dY
 * after a forward, bit for bit what eng_model_backward gives, without computing or touching
 * the parameter gradients (about half the work of eng_model_backward), e.g. DDPG's actor
 * update through the critic.  ENG_EINVAL for NULL arguments or no forward. */
int eng_model_backward_input(eng_model *m, const float *dY, float *dX);

/* Loss on the last forward's output against target [P][B][out] (host) with optional
 * weight [P][B][out] (host, NULL = all ones; 0 masks an element, e.g. untaken actions),
 * then backward through the network.  loss_out [P] (host, may be NULL). */
int eng_model_loss_backward(eng_model *m, eng_loss kind, float huber_delta, const float *target,
                            const float *weight, float *loss_out);

int eng_model_zero_grad(eng_model *m);

/* Data-parallel training of a shared (cross-product) model over MPI ranks (eng_par.h,
 * docs/mpi.md): after each rank's backward on its part of the global batch and before
 * eng_model_adam_step, grads := scale * (the sum of every rank's grads), added EXACTLY
 * (eng_xsum), so every rank gets the same bit-identical gradient and, from the same parameters,
 * takes the same step; the sum does not depend on the order of the ranks.  scale = 1 / ranks
 * turns per-rank batch means into the global mean (equal batch parts).  Collective: every rank
 * calls it at the same step.  One process: grads *= scale.  Costs a download, the exchange
 * (~550 bytes per parameter over the network) and an upload.  Returns 0, ENG_ENOMEM, eng_par's
 * failures (ENG_EIO: a rank died or did not answer). */
int eng_model_grads_allreduce(eng_model *m, double scale);
/* The data-parallel step of the comparison's shared networks (docs/mpi.md, "Shared networks"):
 * the model's P slots are SHARDS of one network (every slot holds the same parameters); slot p
 * took part in this step when mask[p] (its rows gave a gradient).  Every rank's slot gradients
 * are gathered (allgather, 4 bytes per parameter per slot) and summed in double in (rank, slot)
 * order over the slots with mask set, divided by their count, rounded to float and written into
 * EVERY slot; step_mask[p] (P entries) := 1 when any slot anywhere took part, so every slot
 * then takes the same Adam step.  The sum's order depends only on the shard order, so one
 * process holding all S shards as S slots and S ranks holding one slot each get bit-identical
 * gradients.  Collective under MPI (every rank at every step, even with no rows: mask all 0).
 * Returns 0, ENG_ENOMEM, eng_par's failures (ENG_EIO: a rank died or did not answer). */
int eng_model_grads_tie(eng_model *m, const unsigned char *mask, unsigned char *step_mask);

/* ---- device-resident steps (issue 16): inputs and outputs in BACKEND memory (be->alloc),
 * so a batch is uploaded once by the caller and intermediate values never visit the host.
 * Same arithmetic as the host-memory calls above, bit for bit on the same backend. ----
 *
 * eng_model_forward_dev: forward on X [P][B][in] (backend memory), which must stay unchanged
 * until the backward that follows (layer 0's weight gradient reads it; no copy is made).
 * eng_model_output_dev: the last forward's output [P][B][out] (backend memory, owned by the
 * model, valid until the next forward/infer that grows the batch); NULL without a forward.
 * eng_model_infer_dev: Y [P][B][out] = the networks on X, both backend memory (Y must not
 * overlap the model's buffers); keeps the cached forward like eng_model_infer.
 * eng_model_loss_backward_dev: as eng_model_loss_backward with target and weight (NULL = all
 * ones) in backend memory; the per-product loss stays on the backend for eng_model_stats_post.
 * eng_model_backward_dev / eng_model_backward_input_dev: as eng_model_backward /
 * eng_model_backward_input with dY [P][B][out] and dX [P][B][in] in backend memory (dX may be
 * NULL for eng_model_backward_dev; dY is copied first, so the caller's stays intact).
 * ENG_EINVAL for NULL arguments, B < 1 or no forward; backend errors as returned. */
int eng_model_backward_dev(eng_model *m, const float *dY, float *dX);
int eng_model_backward_input_dev(eng_model *m, const float *dY, float *dX);
int eng_model_forward_dev(eng_model *m, const float *X, int B);
const float *eng_model_output_dev(const eng_model *m);
int eng_model_infer_dev(eng_model *m, const float *X, int B, float *Y);
int eng_model_loss_backward_dev(eng_model *m, eng_loss kind, float huber_delta, const float *target,
                                const float *weight);

/* Asynchronous step statistics (one host wait per step, one step late):
 * eng_model_stats_post enqueues ONE copy of the last loss (from either loss_backward), the last
 * Adam step's gradient sums of squares and, when scan_params != 0, the parameters' sums of
 * squares (the divergence scan of eng_model_check_finite, computed now on the backend) into
 * pinned host memory and records an event; it does not wait.  From the first post on, every
 * Adam step computes the gradient sums (before, only clipping or grad_norm_out made it).
 * eng_model_stats_fetch waits for that event (one sync) and fills loss [P], grad_norm [P]
 * (norms before clipping) and bad_params [P] (1 where a parameter is NaN/Inf; all 0 when the
 * post did not scan); any may be NULL.  Returns the number of bad products (>= 0) or a
 * negative status.  The usual pattern: step t enqueued, fetch (step t-1's values, long since
 * complete), post.  ENG_EINVAL for posting twice without a fetch or fetching with nothing
 * posted. */
int eng_model_stats_post(eng_model *m, int scan_params);
int eng_model_stats_fetch(eng_model *m, float *loss, float *grad_norm, unsigned char *bad_params);

typedef struct eng_adam_cfg {
    float lr;        /* 1e-3 */
    float beta1;     /* 0.9 */
    float beta2;     /* 0.999 */
    float eps;       /* 1e-8 */
    float clip_norm; /* per-product global gradient-norm clip; 0 = off */
} eng_adam_cfg;
eng_adam_cfg eng_adam_default(void);

/* One Adam step for every product whose mask byte is non-zero (mask NULL = all).
 * grad_norm_out [P] (host, may be NULL) receives each product's gradient norm before
 * clipping. */
int eng_model_adam_step(eng_model *m, const eng_adam_cfg *cfg, const unsigned char *mask,
                        float *grad_norm_out);

/* Target networks: hard copy / Polyak average of all parameters (same arch and P). */
int eng_model_copy_params(eng_model *dst, const eng_model *src);
int eng_model_polyak(eng_model *dst, const eng_model *src, float tau);

/* Host access to the named views.  which: ENG_VIEW_PARAMS, _GRADS, _ADAM_M, _ADAM_V.
 * get/set of all products: buf is [P][nparams]; of one product: buf is [nparams]. */
typedef enum { ENG_VIEW_PARAMS = 0, ENG_VIEW_GRADS = 1, ENG_VIEW_ADAM_M = 2, ENG_VIEW_ADAM_V = 3 } eng_view;
int eng_model_get(const eng_model *m, eng_view which, float *buf);
int eng_model_set(eng_model *m, eng_view which, const float *buf);
int eng_model_get_product(const eng_model *m, eng_view which, int p, float *buf);
int eng_model_set_product(eng_model *m, eng_view which, int p, const float *buf);
void eng_model_set_step(eng_model *m, long step);

/* Divergence check: bad[p] = 1 when product p has a non-finite parameter. Returns the
 * number of bad products (>= 0) or a negative status. */
int eng_model_check_finite(const eng_model *m, unsigned char *bad);

/* ---- HDF5 checkpoints (eng_ckpt.c, docs/checkpoints.md) ----
 * Save the whole group (arch, params, Adam moments, step, RNG state, config string) to
 * `path` atomically (temp file, fsync, rename).  rng and config may be NULL.  Every dataset
 * is chunked with HDF5's Fletcher-32 checksum.  Returns 0 or a status (message set); a
 * failure leaves any earlier file at `path` as it was. */
int eng_ckpt_save(const eng_model *m, const char *path, const eng_rng *rng, const char *config);

/* What a save holds.  eng_ckpt_save = {1, 1, 0}: exact resume.  A warm-start save {0, 0, 1}
 * keeps only the parameters, as IEEE half where every value fits (else float32): about a
 * sixth of the full file; loading it restarts Adam (zero moments, step 0). */
typedef struct eng_ckpt_opts {
    int adam;   /* store /adam_m, /adam_v and the step */
    int layers; /* store the /layers/<l>/{W,b} copies for h5py readers */
    int half;   /* store /params as IEEE half (float16) when every value fits */
} eng_ckpt_opts;
int eng_ckpt_save_opts(const eng_model *m, const char *path, const eng_rng *rng, const char *config,
                       const eng_ckpt_opts *opts);

/* Largest |parameter| a checkpoint may hold; beyond it (or non-finite, or a negative Adam
 * second moment) the load fails with ENG_EFORMAT naming the network and parameter. */
#define ENG_CKPT_MAX_ABS 1.0e4f

/* Load a group saved by eng_ckpt_save(_opts) onto backend `be`.  Truncated, corrupt (a
 * checksum mismatch), wrong version, inconsistent files or bad values (see ENG_CKPT_MAX_ABS)
 * return ENG_EFORMAT/ENG_EIO with a one-line message, never crash or print HDF5's stack.
 * *out is caller-freed; rng (may be NULL) receives the saved RNG state; *config (may be
 * NULL) receives a malloc'd copy of the config string (caller frees). */
int eng_ckpt_load(eng_model **out, const eng_backend *be, const char *path, eng_rng *rng, char **config);

#endif
