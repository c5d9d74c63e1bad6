/* EuclideanLoss's state, shared by layers/euclidean_loss.c and its GPU twin
 * layers/euclidean_loss.cu. */
#ifndef DL_LAYERS_EUCLIDEAN_LOSS_H
#define DL_LAYERS_EUCLIDEAN_LOSS_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  dl_blob *diff; /* a - b, kept for backward */
} el_priv;

DL_GPU_TWINS(euclidean_loss);

#ifdef __cplusplus
}
#endif

#endif
