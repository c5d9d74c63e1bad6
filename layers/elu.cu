// ELU's GPU twin (layers/elu.c has the CPU reference and the formulas).
#include "core/pointwise_gpu.cuh"
#include "layers/elu.h"

struct elu_op {
  float alpha;
  __device__ float fwd(float x) const { return x > 0 ? x : alpha * expm1f(x); }
  // y > 0 exactly where x > 0 (alpha >= 0), so this works from y, in place too.
  __device__ float bwd(float y, float dy) const { return y > 0 ? dy : dy * (y + alpha); }
};

extern "C" dl_status dl_elu_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                        dl_blob *const *top, int) {
  elu_op op = {((const elu_param *)l->param)->alpha};
  return dl_pointwise_forward_gpu(op, bottom, top);
}

extern "C" void dl_elu_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                    const int *propagate_down, dl_blob *const *bottom, int) {
  elu_op op = {((const elu_param *)l->param)->alpha};
  dl_pointwise_backward_gpu(op, top, propagate_down, bottom);
}
