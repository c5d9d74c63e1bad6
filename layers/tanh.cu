// TanH's GPU twin (layers/tanh.c has the CPU reference).
#include "core/pointwise_gpu.cuh"

extern "C" {
DL_GPU_TWINS(tanh);
}

struct tanh_op {
  // tanhf saturates to +-1 for large |x| without overflow.
  __device__ float fwd(float x) const { return tanhf(x); }
  __device__ float bwd(float y, float dy) const { return dy * (1.0f - y * y); }
};

extern "C" dl_status dl_tanh_forward_gpu(dl_layer *, dl_blob *const *bottom, int,
                                         dl_blob *const *top, int) {
  return dl_pointwise_forward_gpu(tanh_op(), bottom, top);
}

extern "C" void dl_tanh_backward_gpu(dl_layer *, dl_blob *const *top, int,
                                     const int *propagate_down, dl_blob *const *bottom, int) {
  dl_pointwise_backward_gpu(tanh_op(), top, propagate_down, bottom);
}
