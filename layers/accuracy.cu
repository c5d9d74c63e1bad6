// Accuracy's GPU twin (layers/accuracy.c has the CPU reference): counted in
// one block on the device, so the scores never visit the host. Labels are
// checked on the host when that needs no copy (see layers/softmax_loss.cu).
#include "core/gpu.h"
#include "layers/accuracy.h"

extern "C" {
DL_GPU_TWINS(accuracy);
}

// A hit when fewer than top_k classes score strictly above the label's (ties
// count against the label, as on the CPU).
__global__ static void accuracy_kernel(int outer, int C, int inner, const float *x,
                                       const float *label, int top_k, int ignore, float *out) {
  __shared__ double sh[DL_GPU_THREADS];
  double hits = 0, counted = 0;
  size_t positions = (size_t)outer * inner;
  for (size_t p = threadIdx.x; p < positions; p += blockDim.x) {
    int y = (int)label[p];
    if (y == ignore || y < 0 || y >= C) continue;
    size_t o = p / inner, i = p % inner;
    const float *xs = x + o * C * inner + i; // (C), stride inner
    float target = xs[(size_t)y * inner];
    int above = 0;
    for (int c = 0; c < C && above < top_k; c++)
      above += xs[(size_t)c * inner] > target;
    hits += above < top_k;
    counted += 1;
  }
  hits = dl_block_reduce(hits, sh, dl_op_sum());
  counted = dl_block_reduce(counted, sh, dl_op_sum());
  if (threadIdx.x == 0) out[0] = counted > 0 ? (float)hits / (float)counted : 0.0f;
}

extern "C" dl_status dl_accuracy_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                             dl_blob *const *top, int) {
  const acc_param *p = (const acc_param *)l->param;
  acc_dims d;
  dl_status st = dl_accuracy_dims(l, bottom, &d);
  if (st) return st;
  if (dl_mem_host_fresh(bottom[1]->data) &&
      (st = dl_accuracy_check_labels(l, &d, dl_cdata(bottom[1]))))
    return st;
  const float *x = dl_gpu_cdata(bottom[0]), *label = dl_gpu_cdata(bottom[1]);
  float *out = dl_gpu_data(top[0]);
  if (!x || !label || !out) return dl_gpu_error();
  accuracy_kernel<<<1, DL_GPU_THREADS, 0, dl_gpu_stream()>>>(d.outer, d.C, d.inner, x, label,
                                                             p->top_k, p->ignore_label, out);
  return CHECK_LAUNCH();
}
