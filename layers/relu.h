/* ReLU's parameters, shared by layers/relu.c and its GPU twin layers/relu.cu. */
#ifndef DL_LAYERS_RELU_H
#define DL_LAYERS_RELU_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float negative_slope;
} relu_param;

DL_GPU_TWINS(relu);

#ifdef __cplusplus
}
#endif

#endif
