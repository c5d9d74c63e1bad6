// Sigmoid's GPU twin (layers/sigmoid.c has the CPU reference).
#include "core/gpu.h"
#include "core/layer.h"

extern "C" {
DL_GPU_TWINS(sigmoid);
}

// exp only sees -|x|, so nothing overflows (as the CPU's stable_sigmoid).
__global__ static void sigmoid_forward_kernel(size_t n, const float *x, float *y) {
  DL_GPU_LOOP(i, n) {
    float v = x[i], e = expf(-fabsf(v)), r = 1.0f / (1.0f + e);
    y[i] = v < 0 ? e * r : r;
  }
}

// dx = dy * y (1 - y)
__global__ static void sigmoid_backward_kernel(size_t n, const float *y, const float *dy,
                                               float *dx) {
  DL_GPU_LOOP(i, n) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
}

extern "C" dl_status dl_sigmoid_forward_gpu(dl_layer *, dl_blob *const *bottom, int,
                                            dl_blob *const *top, int) {
  size_t n = bottom[0]->count;
  const float *x = dl_gpu_cdata(bottom[0]); // (count)
  float *y = dl_gpu_data(top[0]);           // (count), may alias x
  if (!x || !y) return dl_gpu_error();
  sigmoid_forward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, x, y);
  return CHECK_LAUNCH();
}

extern "C" void dl_sigmoid_backward_gpu(dl_layer *, dl_blob *const *top, int,
                                        const int *propagate_down, dl_blob *const *bottom, int) {
  if (!propagate_down[0]) return;
  size_t n = top[0]->count;
  const float *y = dl_gpu_cdata(top[0]), *dy = dl_gpu_cdiff(top[0]);
  float *dx = dl_gpu_diff(bottom[0]); // may alias dy
  if (!y || !dy || !dx) return;
  sigmoid_backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, y, dy, dx);
  CHECK_LAUNCH();
}
