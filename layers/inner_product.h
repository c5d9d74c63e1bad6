/* InnerProduct's parameters and state, shared by layers/inner_product.c and its GPU twin
 * layers/inner_product.cu. */
#ifndef DL_LAYERS_INNER_PRODUCT_H
#define DL_LAYERS_INNER_PRODUCT_H

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int num_output;
  int bias_term;
  int axis;
  dl_filler weight_filler, bias_filler;
} ip_param;

typedef struct {
  int axis; /* resolved, non-negative */
  int M, K; /* rows and input features */
  float *yt; /* (N, M) few rows: forward as y^T = W x^T, then transposed */
  float *xt; /* (K, M) x^T, so that the GEMM needs no transposed operand */
  float *dyt; /* (N, M) dy^T for the weight-gradient tiles of an update during backward */
  size_t yt_cap, xt_cap, dyt_cap;
} ip_priv;

DL_GPU_TWINS(inner_product);

#ifdef __cplusplus
}
#endif

#endif
