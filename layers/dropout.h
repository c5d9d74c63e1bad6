/* Dropout's parameters and mask key, shared by layers/dropout.c and its GPU
 * twin layers/dropout.cu. */
#ifndef DL_LAYERS_DROPOUT_H
#define DL_LAYERS_DROPOUT_H

#include <stdint.h>

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float dropout_ratio;
} dropout_param;

/* The key of this iteration's mask: value i is kept when
 * dl_uniform_at(key, i) >= dropout_ratio. A pure function of the seed, the
 * layer's name, the iteration and the substep, so forward and backward (and
 * the CPU and the GPU) draw the same mask without storing it. */
uint64_t dl_dropout_key(const dl_layer *l);

DL_GPU_TWINS(dropout);

#ifdef __cplusplus
}
#endif

#endif
