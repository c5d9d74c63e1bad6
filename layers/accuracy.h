/* Accuracy's parameters, shared by layers/accuracy.c and its GPU twin layers/accuracy.cu. */
#ifndef DL_LAYERS_ACCURACY_H
#define DL_LAYERS_ACCURACY_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int top_k;
  int axis;
  int ignore_label;
} acc_param;

typedef struct {
  int outer, C, inner;
} acc_dims;

/* Scores viewed as outer x C x inner (the class axis resolved). */
dl_status dl_accuracy_dims(dl_layer *l, dl_blob *const *bottom, acc_dims *d);
/* DL_EDATA with the CPU code's message when a label that is not ignored is
 * outside [0, C). */
dl_status dl_accuracy_check_labels(dl_layer *l, const acc_dims *d, const float *label);

DL_GPU_TWINS(accuracy);

#ifdef __cplusplus
}
#endif

#endif
