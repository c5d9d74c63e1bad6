/* Pooling: what its GPU twin (layers/pooling.cu) and the tests reach beyond the
 * layer interface. */
#ifndef DL_LAYERS_POOLING_H
#define DL_LAYERS_POOLING_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The layer's windows as of its last reshape. */
typedef struct {
  int max;                    /* 1: max pooling, 0: average */
  int kh, kw, sh, sw, ph, pw; /* kernel, stride, pad */
  int planes, h, w, oh, ow;   /* planes = N * C */
} dl_pool_geom;

dl_pool_geom dl_pooling_geom(const dl_layer *l);

/* With on != 0, max pooling's stride-2 rows take the portable path even
 * where the AVX-512 one would run, so the tests cover both on one machine. */
void dl_pooling_portable_only(int on);

DL_GPU_TWINS(pooling);

#ifdef __cplusplus
}
#endif

#endif
