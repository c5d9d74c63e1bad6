/* ELU's parameters, shared by layers/elu.c and its GPU twin layers/elu.cu. */
#ifndef DL_LAYERS_ELU_H
#define DL_LAYERS_ELU_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float alpha;
} elu_param;

DL_GPU_TWINS(elu);

#ifdef __cplusplus
}
#endif

#endif
