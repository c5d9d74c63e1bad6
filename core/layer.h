/* The layer interface. A layer type is a static const dl_layer_ops (a vtable
 * plus its parameter schema); an instance is a dl_layer.
 *
 * Conventions every layer follows:
 *  - setup() runs once: check bottoms, create learnable blobs (dl_layer_add_param)
 *    and fill them; reshape() sizes the tops from the bottoms and may run again
 *    when input shapes change. Neither runs during the iteration loop, so all
 *    buffers a layer needs are allocated there (the iteration allocates nothing).
 *  - forward() reads bottoms, writes tops.
 *  - backward() overwrites the diffs of bottoms whose propagate_down flag is set,
 *    and ACCUMULATES (+=) into parameter diffs; the net zeroes parameter diffs
 *    once per iteration, which is what makes iter_size and shared params work.
 *  - Loss layers write a scalar top; the net seeds its diff with loss_weight, and
 *    backward scales by top diff[0].
 *  - User errors return a dl_status with a diagnostic (dl_layer_error); never abort.
 * GPU twins: forward_gpu/backward_gpu, defined in layers/NAME.cu and set in
 * the ops table only in the GPU build (#ifdef DL_GPU). They take the same
 * arguments, use the device pointers (dl_gpu_data ...) and follow the same
 * conventions. In GPU mode the net runs a twin when there is one and the CPU
 * code otherwise (synced memory moves the data); a twin that needs a value on
 * the host reads it only where that costs no copy (dl_mem_host_fresh). */
#ifndef DL_LAYER_H
#define DL_LAYER_H

#include <stdint.h>

#include "core/blob.h"
#include "core/rng.h"
#include "core/schema.h"
#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DL_TRAIN = 0, DL_TEST = 1 } dl_phase;

#define DL_MAX_LAYER_PARAMS 8
#define DL_MAX_LAYER_BLOBS 16 /* bottoms or tops */

/* Run-wide settings a layer may read (owned by the net). */
typedef struct dl_ctx {
  uint64_t seed;  /* the solver's seed: all randomness derives from it */
  int64_t iter;   /* current training iteration (for counter-based RNG) */
  int substep;    /* forward pass number within the iteration (iter_size) */
  int threads;
  int batch; /* > 0: replaces every data layer's batch size when the net is built
              * (dltrain bench --batch; see dl_net_layer_batch in core/net.h) */
  int gpu; /* 1: GPU mode (layers run their GPU twins; GPU build only) */
  int plain_layouts; /* 1: no blob takes the blocked layout (tests compare the two) */
} dl_ctx;

typedef struct dl_layer dl_layer;
typedef struct dl_layer_ops dl_layer_ops;

typedef dl_status (*dl_forward_fn)(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                   int nt);
typedef void (*dl_backward_fn)(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                               dl_blob *const *bottom, int nb);

enum {
  DL_LAYER_DATA = 1 << 0,     /* produces data; has no bottoms; may save a cursor */
  DL_LAYER_LOSS = 1 << 1,     /* top 0 is a loss: loss_weight defaults to 1 */
  DL_LAYER_IN_PLACE = 1 << 2, /* top may be the same blob as bottom */
};

enum {
  DL_BLOCKED_BOTTOM = 1 << 0,
  DL_BLOCKED_TOP = 1 << 1,
  DL_BLOCKED_SAME = 1 << 2,        /* bottom 0 and top 0 in one layout */
  DL_BLOCKED_TOP_FOLLOWS = 1 << 3, /* top 0 blocked only if bottom 0 is */
};

/* Update during backward (the solver's update_during_backward): a layer whose
 * gradient for a parameter is final when its backward ends may hand it to the
 * solver in pieces, each applied while it is still in cache, instead of
 * writing the parameter's diff. `apply` runs the solver's rule on a tile of
 * net parameter `param`: `rows` runs of `cols` values, the first at `offset`,
 * the next ones `stride` values apart, with the gradient `grad` (rows x cols,
 * contiguous); it returns 0 when a gradient value is not finite (training
 * then stops). `scratch` has DL_UPDATE_TILE floats for each pool thread. */
#define DL_UPDATE_TILE 131072 /* 512 KiB: FCN-S 123.5 -> 122 ms (2T) against 256 KiB */
struct dl_sgd_target;         /* solvers/sgd_gemm.h */
typedef struct dl_update_hook {
  int (*apply)(void *ctx, int param, size_t offset, int rows, int cols, size_t stride,
               const float *grad);
  /* Net parameter `param`'s weights, history and step when the solver's rule
   * is SGD, else NULL: a layer may then apply the step itself to a gradient
   * it makes in registers (dl_sgd_gemm_tile). */
  const struct dl_sgd_target *(*sgd_target)(void *ctx, int param);
  void *ctx;
  float *scratch;
} dl_update_hook;

struct dl_layer_ops {
  const char *type;    /* "Convolution" */
  const char *summary; /* one line for `dltrain layers` */
  const dl_param_spec *schema;
  size_t param_size;   /* bytes of the param struct the schema fills */
  int min_bottoms, max_bottoms, min_tops, max_tops; /* max -1: unbounded */
  const char *bottoms_doc, *tops_doc;
  unsigned flags;
  unsigned no_grad_bottoms; /* bit i: bottom i never receives a gradient (labels) */
  unsigned backward_updates; /* bit k: backward can hand param k to an update hook */

  dl_status (*setup)(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top, int nt);
  dl_status (*reshape)(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top, int nt);
  dl_forward_fn forward;
  dl_backward_fn backward;      /* NULL: the layer has no backward (data, accuracy) */
  void (*destroy)(dl_layer *l); /* frees priv; may be NULL */
  /* Multiply-adds x 2 of one forward at the current shapes (GEMM-like work
   * only, for `dltrain bench`); NULL: none worth counting. */
  double (*flops)(const dl_layer *l);

  /* Data layers: where the next batch comes from, for exact resume. */
  void (*get_cursor)(dl_layer *l, int64_t cursor[4]);
  dl_status (*set_cursor)(dl_layer *l, const int64_t cursor[4]);
  /* Data layers: the largest label of top `t` (-1: unknown). Classifiers: the
   * number of classes their scores have (after reshape). With both, the net
   * checks at setup that the labels fit the classifier (not at iteration 1). */
  int (*max_label)(const dl_layer *l, int t);
  int (*num_classes)(const dl_layer *l);

  /* Layers that carry state from one forward to the next (LSTM and RNN: the
   * last step's h and c), for exact resume: the snapshot stores state_size()
   * floats written by get_state and hands them back to set_state, which
   * refuses another count with a diagnostic. All three or none. */
  size_t (*state_size)(dl_layer *l);
  void (*get_state)(dl_layer *l, float *state);
  dl_status (*set_state)(dl_layer *l, const float *state, size_t n);

  /* Loss layers: non-zero when exp(mean of top 0) is worth reporting as a
   * perplexity (SoftmaxWithLoss with `perplexity: true`). May be NULL. */
  int (*reports_perplexity)(const dl_layer *l);

  /* Optional, for the blocked layout (dl_blob.blocked): after reshape, which
   * of bottom 0 and top 0 the layer can take blocked (DL_BLOCKED_BOTTOM,
   * DL_BLOCKED_TOP), and DL_BLOCKED_SAME when the two must share a layout
   * or DL_BLOCKED_TOP_FOLLOWS when a blocked top needs a blocked bottom.
   * NULL or 0: every blob of the layer stays plain. */
  unsigned (*blocked_ok)(const dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                         int nt);

  /* Optional GPU twins (layers/NAME.cu); NULL: the CPU code runs in GPU mode. */
  dl_forward_fn forward_gpu;
  dl_backward_fn backward_gpu;
};

/* Declares a layer type's GPU twins, dl_NAME_forward_gpu and
 * dl_NAME_backward_gpu: defined in layers/NAME.cu (with C linkage), set in
 * the ops table of layers/NAME.c under #ifdef DL_GPU. */
#define DL_GPU_TWINS(name)                                                                         \
  dl_status dl_##name##_forward_gpu(dl_layer *l, dl_blob *const *bottom, int nb,                   \
                                    dl_blob *const *top, int nt);                                  \
  void dl_##name##_backward_gpu(dl_layer *l, dl_blob *const *top, int nt,                          \
                                const int *propagate_down, dl_blob *const *bottom, int nb)

/* The GPU side of the view layers (Flatten, Reshape), whose top shares the
 * bottom's data and diff: forward does nothing, backward copies dy to dx on
 * the device only if something re-pointed the top's diff. */
DL_GPU_TWINS(view);

struct dl_layer {
  const dl_layer_ops *ops;
  char *name;
  dl_phase phase;
  dl_loc loc;     /* where the layer is defined, for errors */
  int index;      /* position in the net */
  void *param;    /* ops->param_size bytes, filled from YAML through the schema */
  void *priv;     /* the layer's own state */
  const dl_ctx *ctx;
  int nparams;
  dl_blob *params[DL_MAX_LAYER_PARAMS];
  float lr_mult[DL_MAX_LAYER_PARAMS];
  float decay_mult[DL_MAX_LAYER_PARAMS];
  /* Set by the solver: param k goes to `update_hook` as net parameter
   * update_param[k] - 1 when update_param[k] > 0 (its diff is then not
   * written); see dl_layer_update_index. */
  const dl_update_hook *update_hook;
  int update_param[DL_MAX_LAYER_PARAMS];
};

/* The net index under which backward hands param k to l->update_hook, or -1
 * when param k's gradient goes to its diff as usual. */
static inline int dl_layer_update_index(const dl_layer *l, int k) {
  return l->update_hook && l->update_param[k] > 0 ? l->update_param[k] - 1 : -1;
}

/* Creates param blob number l->nparams ("<layer>/<suffix>") with the given shape. */
dl_status dl_layer_add_param(dl_layer *l, const char *suffix, int ndim, const int *shape,
                             dl_blob **out);
/* A deterministic RNG for this layer's fillers: same seed, same weights. */
void dl_layer_rng(const dl_layer *l, int stream, dl_rng *rng);
/* A user error about this layer, located at its definition. */
dl_status dl_layer_error(const dl_layer *l, dl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Builds a layer from one YAML mapping, e.g.
 *   "{name: ip, type: InnerProduct, num_output: 10}".
 * Used by tests and tools; nets use the same path. `ctx` may be NULL (a default
 * context with seed 1 is used). Does not run setup. */
dl_status dl_layer_from_yaml(const char *yaml_text, dl_phase phase, const dl_ctx *ctx,
                             dl_layer **out);
/* Checks arity, runs setup then reshape. */
dl_status dl_layer_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                         int nt);
void dl_layer_free(dl_layer *l);

#ifdef __cplusplus
}
#endif

#endif
