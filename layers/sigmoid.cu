// Sigmoid's GPU twin (layers/sigmoid.c has the CPU reference).
#include "core/pointwise_gpu.cuh"

extern "C" {
DL_GPU_TWINS(sigmoid);
}

struct sigmoid_op {
  // exp only sees -|x|, so nothing overflows (as the CPU's stable_sigmoid).
  __device__ float fwd(float x) const {
    float e = expf(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x < 0 ? e * r : r;
  }
  __device__ float bwd(float y, float dy) const { return dy * (y * (1.0f - y)); }
};

extern "C" dl_status dl_sigmoid_forward_gpu(dl_layer *, dl_blob *const *bottom, int,
                                            dl_blob *const *top, int) {
  return dl_pointwise_forward_gpu(sigmoid_op(), bottom, top);
}

extern "C" void dl_sigmoid_backward_gpu(dl_layer *, dl_blob *const *top, int,
                                        const int *propagate_down, dl_blob *const *bottom, int) {
  dl_pointwise_backward_gpu(sigmoid_op(), top, propagate_down, bottom);
}
