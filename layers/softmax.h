/* Softmax's view of its input, shared by layers/softmax.c and its GPU twin
 * layers/softmax.cu. */
#ifndef DL_LAYERS_SOFTMAX_H
#define DL_LAYERS_SOFTMAX_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The outer x C x inner view of x around the layer's softmax axis. */
dl_status dl_softmax_layer_dims(dl_layer *l, const dl_blob *x, int *outer, int *C, int *inner);

DL_GPU_TWINS(softmax);

#ifdef __cplusplus
}
#endif

#endif
