// Dropout's GPU twin (layers/dropout.c has the CPU code): the same
// counter-based mask (dl_uniform_at), drawn again in backward instead of
// stored. Train phase only; the test phase is the identity.
#include "core/gpu.h"
#include "core/math_gpu.h"
#include "core/rng.h"
#include "layers/dropout.h"

// out = keep(i) ? in * scale : 0, keep(i) = dl_uniform_at(key, i) >= ratio.
__global__ static void dropout_kernel(size_t n, uint64_t key, float ratio, float scale,
                                      const float *in, float *out) {
  DL_GPU_LOOP(i, n) out[i] = dl_uniform_at(key, i) >= ratio ? in[i] * scale : 0.0f;
}

static void apply(const dl_layer *l, size_t n, const float *in, float *out) {
  float ratio = ((const dropout_param *)l->param)->dropout_ratio;
  dropout_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
      n, dl_dropout_key(l), ratio, 1.0f / (1.0f - ratio), in, out);
  CHECK_LAUNCH();
}

extern "C" dl_status dl_dropout_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                            dl_blob *const *top, int) {
  size_t n = bottom[0]->count;
  const float *x = dl_gpu_cdata(bottom[0]); // (count)
  float *y = dl_gpu_data(top[0]);           // (count), may alias x
  if (!x || !y) return dl_gpu_error();
  if (l->phase != DL_TRAIN) {
    if (y != x) dl_gpu_copy(n, x, y);
  } else {
    apply(l, n, x, y);
  }
  return dl_gpu_error();
}

extern "C" void dl_dropout_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                        const int *propagate_down, dl_blob *const *bottom, int) {
  if (!propagate_down[0]) return;
  size_t n = top[0]->count;
  const float *dy = dl_gpu_cdiff(top[0]); // (count)
  float *dx = dl_gpu_diff(bottom[0]);     // (count), may alias dy
  if (!dy || !dx) return;
  if (l->phase != DL_TRAIN) {
    if (dx != dy) dl_gpu_copy(n, dy, dx);
  } else {
    apply(l, n, dy, dx);
  }
}
