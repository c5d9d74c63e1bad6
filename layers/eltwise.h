/* Eltwise's parameters, shared by layers/eltwise.c and its GPU twin
 * layers/eltwise.cu. */
#ifndef DL_LAYERS_ELTWISE_H
#define DL_LAYERS_ELTWISE_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { DL_ELTWISE_PROD, DL_ELTWISE_SUM, DL_ELTWISE_MAX };

typedef struct {
  int operation;
  dl_floats coeff;
} eltwise_param;

DL_GPU_TWINS(eltwise);

#ifdef __cplusplus
}
#endif

#endif
