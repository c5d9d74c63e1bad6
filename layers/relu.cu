// ReLU's GPU twin (layers/relu.c has the CPU reference and the formulas).
#include "core/gpu.h"
#include "layers/relu.h"

extern "C" {
DL_GPU_TWINS(relu);
}

__global__ static void relu_forward_kernel(size_t n, float slope, const float *x, float *y) {
  DL_GPU_LOOP(i, n) {
    float v = x[i];
    y[i] = v > 0 ? v : slope * v;
  }
}

// dx = dy * (y > 0 ? 1 : slope): y has x's sign, so this works in place too.
__global__ static void relu_backward_kernel(size_t n, float slope, const float *y, const float *dy,
                                            float *dx) {
  DL_GPU_LOOP(i, n) dx[i] = y[i] > 0 ? dy[i] : slope * dy[i];
}

extern "C" dl_status dl_relu_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                         dl_blob *const *top, int) {
  const relu_param *p = (const relu_param *)l->param;
  size_t n = bottom[0]->count;
  const float *x = dl_gpu_cdata(bottom[0]); // (count)
  float *y = dl_gpu_data(top[0]);           // (count), may alias x
  if (!x || !y) return dl_gpu_error();
  relu_forward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
      n, p->negative_slope, x, y);
  return CHECK_LAUNCH();
}

extern "C" void dl_relu_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                     const int *propagate_down, dl_blob *const *bottom, int) {
  if (!propagate_down[0]) return;
  const relu_param *p = (const relu_param *)l->param;
  size_t n = top[0]->count;
  const float *y = dl_gpu_cdata(top[0]), *dy = dl_gpu_cdiff(top[0]);
  float *dx = dl_gpu_diff(bottom[0]); // may alias dy
  if (!y || !dy || !dx) return;
  relu_backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
      n, p->negative_slope, y, dy, dx);
  CHECK_LAUNCH();
}
