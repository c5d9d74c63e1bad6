// TanH's GPU twin (layers/tanh.c has the CPU reference).
#include "core/gpu.h"
#include "core/layer.h"

extern "C" {
DL_GPU_TWINS(tanh);
}

// tanhf saturates to +-1 for large |x| without overflow.
__global__ static void tanh_forward_kernel(size_t n, const float *x, float *y) {
  DL_GPU_LOOP(i, n) y[i] = tanhf(x[i]);
}

// dx = dy * (1 - y^2)
__global__ static void tanh_backward_kernel(size_t n, const float *y, const float *dy, float *dx) {
  DL_GPU_LOOP(i, n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

extern "C" dl_status dl_tanh_forward_gpu(dl_layer *, dl_blob *const *bottom, int,
                                         dl_blob *const *top, int) {
  size_t n = bottom[0]->count;
  const float *x = dl_gpu_cdata(bottom[0]); // (count)
  float *y = dl_gpu_data(top[0]);           // (count), may alias x
  if (!x || !y) return dl_gpu_error();
  tanh_forward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, x, y);
  return CHECK_LAUNCH();
}

extern "C" void dl_tanh_backward_gpu(dl_layer *, dl_blob *const *top, int,
                                     const int *propagate_down, dl_blob *const *bottom, int) {
  if (!propagate_down[0]) return;
  size_t n = top[0]->count;
  const float *y = dl_gpu_cdata(top[0]), *dy = dl_gpu_cdiff(top[0]);
  float *dx = dl_gpu_diff(bottom[0]); // may alias dy
  if (!y || !dy || !dx) return;
  tanh_backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, y, dy, dx);
  CHECK_LAUNCH();
}
