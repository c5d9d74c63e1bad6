/* The net: layers in file order, blobs by name, splits where a blob feeds
 * several layers, backward only where it reaches a loss, and every learnable
 * parameter stored in one flat buffer (data) plus one (diff), each layer's
 * blobs being views into them: the solver updates them in one pass and a
 * snapshot writes them in one go. */
#ifndef DL_NET_H
#define DL_NET_H

#include <stdio.h>

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dl_net_step {
  dl_layer *layer;
  int nb, nt;
  dl_blob *bottom[DL_MAX_LAYER_BLOBS];
  dl_blob *top[DL_MAX_LAYER_BLOBS];
  int prop_down[DL_MAX_LAYER_BLOBS];
  float loss_weight[DL_MAX_LAYER_BLOBS];
  int need_backward;
  int source; /* position among the file's active layers; -1 for inserted splits */
  double fwd_seconds, bwd_seconds; /* accumulated by dl_net_forward/backward when timing */
} dl_net_step;

typedef struct dl_net {
  char *name;
  char *file;
  dl_phase phase;
  dl_ctx *ctx; /* shared with the solver: seed, iteration */
  int nsteps;
  dl_net_step *steps;
  int nblobs;
  dl_blob **blobs; /* every distinct blob (in-place tops are not repeated) */
  /* Learnable parameters (owners only; shared ones appear once). */
  int nparams;
  dl_blob **params;
  float *lr_mult, *decay_mult;
  size_t *param_offset; /* into the flat buffers, in floats */
  size_t param_count;
  dl_mem *flat_data, *flat_diff;
  /* Per parameter, set by the solver: updated during backward, so its diff is
   * neither written nor zeroed (those pages are never touched). NULL: none. */
  unsigned char *in_backward;
  dl_mem *loss; /* GPU mode: the weighted loss sum of the last forward, on the device */
  /* Outputs: tops no layer consumes (losses, accuracies), reported by train/test. */
  int noutputs;
  dl_blob **outputs;
  float *output_weight;
  uint64_t structure_hash; /* layer names, types and parameter shapes */
  int timing;              /* measure per-layer times */
} dl_net;

/* Builds and sets up a net for one phase. `ctx` must outlive the net. */
dl_status dl_net_from_file(const char *path, dl_phase phase, dl_ctx *ctx, dl_net **out);
dl_status dl_net_from_string(const char *yaml, const char *name, dl_phase phase, dl_ctx *ctx,
                             dl_net **out);
void dl_net_free(dl_net *net);

/* Forward over all layers; *loss = sum of weighted loss tops (in GPU mode
 * reading it waits for the GPU: pass NULL to skip that; net->loss keeps it
 * on the device). GPU failures are returned here (dl_gpu_error). */
dl_status dl_net_forward(dl_net *net, double *loss);
/* Backward from the losses (diffs of loss tops seeded with their weights). */
void dl_net_backward(dl_net *net);
void dl_net_zero_param_diffs(dl_net *net);
/* Gradient values the net stores: param_count less those updated during backward. */
size_t dl_net_stored_grad_count(const dl_net *net);
/* GPU mode (net->ctx->gpu): one line per layer type without GPU code (once per
 * type in the process; data layers, which always run on the host, are not
 * listed): those layers run on the CPU. Nothing in CPU mode or for NULL. */
void dl_net_report_cpu_layers(const dl_net *net, FILE *f);

/* Makes `test` use `train`'s weights (by layer name and parameter index). */
dl_status dl_net_share_params(dl_net *test, const dl_net *train);

/* Non-zero when output o is the loss of a layer that asks for its perplexity,
 * exp(mean loss), to be reported (SoftmaxWithLoss with perplexity: true). */
int dl_net_output_perplexity(const dl_net *net, int o);

dl_blob *dl_net_blob(const dl_net *net, const char *name);
dl_layer *dl_net_layer(const dl_net *net, const char *name);
/* Layer/param of the k-th learnable parameter, for reports. */
const char *dl_net_param_name(const dl_net *net, int k);

/* The batch size of a data layer, found through its schema: the `batch_size`
 * parameter (MnistData, CifarData, ImageData, CsvData, TokenData's N streams),
 * or `shape[batch_axis]` (SyntheticData). A pointer into the layer's parameters,
 * so that building a net with ctx->batch > 0 can replace it before setup; NULL
 * for a layer without one. */
int *dl_layer_batch_slot(dl_layer *l);
/* The batch size the net's first data layer produces (0: no data layer). */
int dl_net_batch_size(const dl_net *net);

/* The table printed at start: layer, type, tops, params, memory. */
void dl_net_print_summary(const dl_net *net, FILE *f);
size_t dl_net_activation_bytes(const dl_net *net);

#ifdef __cplusplus
}
#endif

#endif
