// Concat's GPU twin (layers/concat.c has the CPU reference): each bottom is an
// outer x (its size on the axis x inner) block of the top, rows top_ax x inner
// apart: one strided 2-D copy each way (dl_gpu_copy_rows).
#include "core/gpu.h"
#include "core/math_gpu.h"
#include "layers/concat.h"

extern "C" dl_status dl_concat_forward_gpu(dl_layer *l, dl_blob *const *bottom, int nb,
                                           dl_blob *const *top, int) {
  const concat_priv *s = (const concat_priv *)l->priv;
  if (top[0]->data == bottom[0]->data) return DL_OK; // one bottom, shared
  float *y = dl_gpu_data(top[0]);
  if (!y) return dl_gpu_error();
  size_t row = (size_t)s->top_ax * s->inner;
  for (int i = 0, off = 0; i < nb; off += bottom[i]->shape[s->axis], i++) {
    size_t block = (size_t)bottom[i]->shape[s->axis] * s->inner;
    const float *x = dl_gpu_cdata(bottom[i]);
    if (!x) return dl_gpu_error();
    dl_status st = dl_gpu_copy_rows(s->outer, block, x, block, y + (size_t)off * s->inner, row);
    if (st) return st;
  }
  return DL_OK;
}

extern "C" void dl_concat_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                       const int *propagate_down, dl_blob *const *bottom,
                                       int nb) {
  const concat_priv *s = (const concat_priv *)l->priv;
  if (top[0]->diff == bottom[0]->diff) return; // one bottom, shared
  const float *dy = dl_gpu_cdiff(top[0]);
  if (!dy) return;
  size_t row = (size_t)s->top_ax * s->inner;
  for (int i = 0, off = 0; i < nb; off += bottom[i]->shape[s->axis], i++) {
    if (!propagate_down[i]) continue;
    size_t block = (size_t)bottom[i]->shape[s->axis] * s->inner;
    float *dx = dl_gpu_diff(bottom[i]);
    if (!dx || dl_gpu_copy_rows(s->outer, block, dy + (size_t)off * s->inner, row, dx, block))
      return;
  }
}
