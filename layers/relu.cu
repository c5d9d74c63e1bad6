// ReLU's GPU twin (layers/relu.c has the CPU reference and the formulas).
#include "core/pointwise_gpu.cuh"
#include "layers/relu.h"

extern "C" {
DL_GPU_TWINS(relu);
}

struct relu_op {
  float slope;
  __device__ float fwd(float x) const { return x > 0 ? x : slope * x; }
  // y has x's sign, so this works in place too.
  __device__ float bwd(float y, float dy) const { return y > 0 ? dy : slope * dy; }
};

extern "C" dl_status dl_relu_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                         dl_blob *const *top, int) {
  relu_op op = {((const relu_param *)l->param)->negative_slope};
  return dl_pointwise_forward_gpu(op, bottom, top);
}

extern "C" void dl_relu_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                     const int *propagate_down, dl_blob *const *bottom, int) {
  relu_op op = {((const relu_param *)l->param)->negative_slope};
  dl_pointwise_backward_gpu(op, top, propagate_down, bottom);
}
