/* Convolution (layers/conv.c) as its GPU twin (layers/conv.cu, cuDNN) sees it. */
#ifndef DL_LAYERS_CONV_H
#define DL_LAYERS_CONV_H

#include "core/layer.h"
#include "layers/conv_onednn.h" /* dl_conv_desc */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dl_conv_cudnn dl_conv_cudnn;

/* The layer's shapes as of its last reshape. */
dl_conv_desc dl_conv_layer_desc(const dl_layer *l);
/* Where the GPU twin keeps its cuDNN state (NULL until its first call); the
 * layer frees it with dl_conv_cudnn_free when it goes. */
dl_conv_cudnn **dl_conv_layer_cudnn(dl_layer *l);
void dl_conv_cudnn_free(dl_conv_cudnn *e);

DL_GPU_TWINS(conv);

#ifdef __cplusplus
}
#endif

#endif
