// Split's GPU twin (layers/split.c): the tops share the bottom's data, and
// backward sums their diffs into the bottom's on the device.
#include "core/gpu.h"
#include "core/layer.h"
#include "core/math_gpu.h"

extern "C" {
DL_GPU_TWINS(split);
}

extern "C" dl_status dl_split_forward_gpu(dl_layer *, dl_blob *const *, int, dl_blob *const *,
                                          int) {
  return DL_OK; // data is shared
}

// dx = sum_t dy_t
extern "C" void dl_split_backward_gpu(dl_layer *, dl_blob *const *top, int nt,
                                      const int *propagate_down, dl_blob *const *bottom, int) {
  if (!propagate_down[0]) return;
  size_t n = bottom[0]->count;
  float *dx = dl_gpu_diff(bottom[0]);
  const float *dy0 = dl_gpu_cdiff(top[0]);
  if (!dx || !dy0) return;
  dl_gpu_copy(n, dy0, dx);
  for (int t = 1; t < nt; t++) {
    const float *dy = dl_gpu_cdiff(top[t]);
    if (dy) dl_gpu_axpy(n, 1.0f, dy, dx);
  }
}
