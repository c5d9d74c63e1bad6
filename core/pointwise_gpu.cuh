// The launch plumbing shared by the elementwise activations' GPU twins (ReLU,
// Sigmoid, TanH): y = op.fwd(x) in forward, dx = op.bwd(y, dy) in backward
// (from the outputs, so in-place layers work), one grid-stride kernel each.
// A twin defines its op as a small struct and calls these two.
#ifndef DL_POINTWISE_GPU_CUH
#define DL_POINTWISE_GPU_CUH

#include "core/gpu.h"
#include "core/layer.h"

template <class Op> __global__ void dl_pointwise_forward_kernel(size_t n, Op op, const float *x,
                                                                float *y) {
  DL_GPU_LOOP(i, n) y[i] = op.fwd(x[i]);
}

template <class Op>
__global__ void dl_pointwise_backward_kernel(size_t n, Op op, const float *y, const float *dy,
                                             float *dx) {
  DL_GPU_LOOP(i, n) dx[i] = op.bwd(y[i], dy[i]);
}

template <class Op> dl_status dl_pointwise_forward_gpu(Op op, dl_blob *const *bottom,
                                                       dl_blob *const *top) {
  size_t n = bottom[0]->count;
  const float *x = dl_gpu_cdata(bottom[0]); // (count)
  float *y = dl_gpu_data(top[0]);           // (count), may alias x
  if (!x || !y) return dl_gpu_error();
  dl_pointwise_forward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, op, x,
                                                                                        y);
  return CHECK_LAUNCH();
}

template <class Op> void dl_pointwise_backward_gpu(Op op, dl_blob *const *top,
                                                   const int *propagate_down,
                                                   dl_blob *const *bottom) {
  if (!propagate_down[0]) return;
  size_t n = top[0]->count;
  const float *y = dl_gpu_cdata(top[0]), *dy = dl_gpu_cdiff(top[0]);
  float *dx = dl_gpu_diff(bottom[0]); // may alias dy
  if (!y || !dy || !dx) return;
  dl_pointwise_backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, op, y,
                                                                                         dy, dx);
  CHECK_LAUNCH();
}

#endif
