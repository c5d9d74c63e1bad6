/* SoftmaxWithLoss's parameters and state, shared by layers/softmax_loss.c and its GPU twin
 * layers/softmax_loss.cu. */
#ifndef DL_LAYERS_SOFTMAX_LOSS_H
#define DL_LAYERS_SOFTMAX_LOSS_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { NORM_VALID, NORM_BATCH_SIZE, NORM_FULL, NORM_NONE };

typedef struct {
  int axis;
  int ignore_label;
  int normalization;
  int perplexity; /* report exp(mean loss) (language models) */
} sl_param;

typedef struct {
  int outer, C, inner; /* scores viewed as outer x C x inner */
  dl_blob *prob;       /* softmax output, same shape as the scores (see prob_kept) */
  float norm;          /* what the loss was divided by in the last forward */
  dl_mem *gpu_norm;    /* the GPU twin's norm (1 float), kept on the device */
  /* The CPU code with the classes contiguous (inner 1) and no probability
   * top keeps each row's max and sum of exps instead of prob, and backward
   * makes the probabilities again from the scores: prob_kept 0. */
  int prob_kept;
  float *row_max, *row_sum; /* (outer) */
  int rows_cap;
} sl_priv;

/* DL_EDATA with the CPU code's message when a label (outer x inner) is not an
 * ignored one and outside [0, C). */
dl_status dl_softmax_loss_check_labels(dl_layer *l, const float *label);

DL_GPU_TWINS(softmax_loss);

#ifdef __cplusplus
}
#endif

#endif
