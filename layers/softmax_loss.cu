// SoftmaxWithLoss's GPU twin (layers/softmax_loss.c has the CPU reference):
// softmax, then the loss and its normalizer reduced on the device, so the
// loss never visits the host. Labels are checked on the host when their host
// copy is fresh (they come from data layers: no copy is needed); labels made
// on the device are not checked, and an invalid one counts as ignored.
#include <float.h>

#include "core/gpu.h"
#include "core/math_gpu.h"
#include "layers/softmax_loss.h"

extern "C" {
DL_GPU_TWINS(softmax_loss);
}

// One block: -log p[label] summed in double over the positions, the count of
// labels not ignored, the normalizer, and loss / normalizer into top[0].
__global__ static void loss_kernel(int outer, int C, int inner, const float *prob,
                                   const float *label, int ignore, int normalization, int batch,
                                   float *top, float *norm_out) {
  __shared__ double sh[DL_GPU_THREADS];
  double loss = 0, valid = 0;
  size_t positions = (size_t)outer * inner;
  for (size_t p = threadIdx.x; p < positions; p += blockDim.x) {
    int y = (int)label[p];
    if (y == ignore || y < 0 || y >= C) continue;
    size_t o = p / inner, i = p % inner;
    float py = prob[(o * C + y) * inner + i];
    loss -= log(fmax((double)py, (double)FLT_MIN)); // log(0) would be -inf
    valid += 1;
  }
  loss = dl_block_reduce(loss, sh, dl_op_sum());
  valid = dl_block_reduce(valid, sh, dl_op_sum());
  if (threadIdx.x != 0) return;
  float n = 1;
  switch (normalization) {
  case NORM_VALID: n = (float)valid; break;
  case NORM_BATCH_SIZE: n = (float)batch; break;
  case NORM_FULL: n = (float)outer * (float)inner; break;
  default: break;
  }
  n = n > 1 ? n : 1; // all labels ignored: loss 0, not NaN
  norm_out[0] = n;
  top[0] = (float)(loss / n);
}

// dx = (p - onehot(label)) * dloss / norm; zero where the label is ignored.
__global__ static void backward_kernel(size_t n, int C, int inner, const float *prob,
                                       const float *label, int ignore, const float *dloss,
                                       const float *norm, float *dx) {
  float scale = dloss[0] / norm[0];
  size_t plane = (size_t)C * inner;
  DL_GPU_LOOP(e, n) {
    size_t o = e / plane, r = e - o * plane, c = r / inner, i = r - c * inner;
    int y = (int)label[o * inner + i];
    if (y == ignore || y < 0 || y >= C)
      dx[e] = 0;
    else
      dx[e] = prob[e] * scale - ((int)c == y ? scale : 0.0f);
  }
}

extern "C" dl_status dl_softmax_loss_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                                 dl_blob *const *top, int nt) {
  const sl_param *p = (const sl_param *)l->param;
  sl_priv *s = (sl_priv *)l->priv;
  if (dl_mem_host_fresh(bottom[1]->data)) {
    dl_status st = dl_softmax_loss_check_labels(l, dl_cdata(bottom[1]));
    if (st) return st;
  }
  const float *x = dl_gpu_cdata(bottom[0]);     // (outer x C x inner)
  const float *label = dl_gpu_cdata(bottom[1]); // (outer x inner)
  float *prob = dl_gpu_data(s->prob);           // (outer x C x inner)
  float *loss = dl_gpu_data(top[0]), *norm = dl_mem_device_mut(s->gpu_norm);
  if (!x || !label || !prob || !loss || !norm) return dl_gpu_error();
  dl_gpu_softmax(s->outer, s->C, s->inner, x, prob);
  loss_kernel<<<1, DL_GPU_THREADS, 0, dl_gpu_stream()>>>(s->outer, s->C, s->inner, prob, label,
                                                         p->ignore_label, p->normalization,
                                                         bottom[0]->shape[0], loss, norm);
  dl_status st = CHECK_LAUNCH();
  if (!st && nt > 1) {
    float *out = dl_gpu_data(top[1]);
    if (!out) return dl_gpu_error();
    dl_gpu_copy(s->prob->count, prob, out);
  }
  return st ? st : dl_gpu_error();
}

extern "C" void dl_softmax_loss_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                             const int *propagate_down, dl_blob *const *bottom,
                                             int) {
  if (!propagate_down[0]) return;
  const sl_param *p = (const sl_param *)l->param;
  const sl_priv *s = (const sl_priv *)l->priv;
  const float *label = dl_gpu_cdata(bottom[1]), *prob = dl_gpu_cdata(s->prob);
  const float *dloss = dl_gpu_cdiff(top[0]), *norm = dl_mem_device(s->gpu_norm);
  float *dx = dl_gpu_diff(bottom[0]);
  if (!label || !prob || !dloss || !norm || !dx) return;
  size_t n = s->prob->count;
  backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
      n, s->C, s->inner, prob, label, p->ignore_label, dloss, norm, dx);
  CHECK_LAUNCH();
}
