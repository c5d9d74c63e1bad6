// Softmax's GPU twin (layers/softmax.c has the CPU reference): forward on the
// shared softmax kernels, backward a thread per (outer, inner) position.
#include "core/gpu.h"
#include "core/math_gpu.h"
#include "layers/softmax.h"

// dx_c = y_c (dy_c - sum_k dy_k y_k) along C, for each (o, i).
__global__ static void softmax_backward_kernel(int outer, int C, int inner, const float *y,
                                               const float *dy, float *dx) {
  DL_GPU_LOOP(k, (size_t)outer * inner) {
    size_t o = k / inner, i = k % inner, base = o * C * inner + i;
    float dot = 0;
    for (int c = 0; c < C; c++)
      dot += dy[base + (size_t)c * inner] * y[base + (size_t)c * inner];
    for (int c = 0; c < C; c++) {
      size_t e = base + (size_t)c * inner;
      dx[e] = y[e] * (dy[e] - dot);
    }
  }
}

extern "C" dl_status dl_softmax_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                            dl_blob *const *top, int) {
  int outer, C, inner;
  dl_status st = dl_softmax_layer_dims(l, bottom[0], &outer, &C, &inner);
  if (st) return st;
  const float *x = dl_gpu_cdata(bottom[0]);
  float *y = dl_gpu_data(top[0]);
  if (!x || !y) return dl_gpu_error();
  dl_gpu_softmax(outer, C, inner, x, y);
  return dl_gpu_error();
}

extern "C" void dl_softmax_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                        const int *propagate_down, dl_blob *const *bottom, int) {
  int outer, C, inner;
  if (!propagate_down[0] || dl_softmax_layer_dims(l, bottom[0], &outer, &C, &inner)) return;
  const float *y = dl_gpu_cdata(top[0]), *dy = dl_gpu_cdiff(top[0]);
  float *dx = dl_gpu_diff(bottom[0]);
  if (!y || !dy || !dx) return;
  size_t n = (size_t)outer * inner;
  softmax_backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
      outer, C, inner, y, dy, dx);
  CHECK_LAUNCH();
}
