// EuclideanLoss's GPU twin (layers/euclidean_loss.c has the CPU reference):
// the loss is reduced on the device, straight into the top.
#include "core/gpu.h"
#include "core/math_gpu.h"
#include "layers/euclidean_loss.h"

extern "C" {
DL_GPU_TWINS(euclidean_loss);
}

__global__ static void sub_kernel(size_t n, const float *a, const float *b, float *d) {
  DL_GPU_LOOP(i, n) d[i] = a[i] - b[i];
}

// dx = sign * dloss / N * (a - b), dloss read on the device (the top's diff).
__global__ static void scale_kernel(size_t n, const float *dloss, float sign, float batch,
                                    const float *d, float *dx) {
  float scale = dloss[0] / batch;
  scale = sign > 0 ? scale : -scale;
  DL_GPU_LOOP(i, n) dx[i] = scale * d[i];
}

// loss = sum((a - b)^2) / (2 N)
extern "C" dl_status dl_euclidean_loss_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                                   dl_blob *const *top, int) {
  el_priv *s = (el_priv *)l->priv;
  size_t n = s->diff->count;
  const float *a = dl_gpu_cdata(bottom[0]), *b = dl_gpu_cdata(bottom[1]);
  float *d = dl_gpu_data(s->diff), *loss = dl_gpu_data(top[0]);
  if (!a || !b || !d || !loss) return dl_gpu_error();
  sub_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, a, b, d);
  dl_status st = CHECK_LAUNCH();
  if (st) return st;
  dl_gpu_reduce_into(n, d, d, (float)(1.0 / (2.0 * bottom[0]->shape[0])), 0, loss);
  return dl_gpu_error();
}

// da = (a - b) dloss / N; db = -da.
extern "C" void dl_euclidean_loss_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                               const int *propagate_down, dl_blob *const *bottom,
                                               int) {
  el_priv *s = (el_priv *)l->priv;
  size_t n = s->diff->count;
  const float *dloss = dl_gpu_cdiff(top[0]), *d = dl_gpu_cdata(s->diff);
  if (!dloss || !d) return;
  float batch = (float)bottom[0]->shape[0];
  for (int k = 0; k < 2; k++) {
    if (!propagate_down[k]) continue;
    float *dx = dl_gpu_diff(bottom[k]);
    if (!dx) return;
    scale_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
        n, dloss, k == 0 ? 1.0f : -1.0f, batch, d, dx);
    if (CHECK_LAUNCH()) return;
  }
}
