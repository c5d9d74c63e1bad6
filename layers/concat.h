/* Concat's state, shared by layers/concat.c and its GPU twin layers/concat.cu. */
#ifndef DL_LAYERS_CONCAT_H
#define DL_LAYERS_CONCAT_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int axis;   /* resolved, non-negative */
  int outer;  /* product of the axes before `axis` */
  int inner;  /* product of the axes after `axis` */
  int top_ax; /* the top's size on `axis` */
} concat_priv;

DL_GPU_TWINS(concat);

#ifdef __cplusplus
}
#endif

#endif
