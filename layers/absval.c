/* AbsVal: y = |x|, as Caffe's AbsValLayer. */
#include <math.h>

#include "core/layer.h"

static dl_status absval_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                int nt) {
  (void)l, (void)nb, (void)nt;
  return dl_blob_reshape_like(top[0], bottom[0]);
}

static dl_status absval_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                int nt) {
  (void)l, (void)nb, (void)nt;
  const float *x = dl_cdata(bottom[0]); /* (count) */
  float *y = dl_data(top[0]);           /* (count) */
  for (size_t i = 0; i < bottom[0]->count; i++)
    y[i] = fabsf(x[i]);
  return DL_OK;
}

/* dx = sign(x) dy, with sign(0) = 0. Needs x's sign, which y no longer has:
 * hence no in-place use (Caffe refuses it too). */
static void absval_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                            dl_blob *const *bottom, int nb) {
  (void)l, (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const float *x = dl_cdata(bottom[0]), *dy = dl_cdiff(top[0]); /* (count) */
  float *dx = dl_diff(bottom[0]);                               /* (count) */
  for (size_t i = 0; i < top[0]->count; i++)
    dx[i] = x[i] > 0 ? dy[i] : x[i] < 0 ? -dy[i] : 0;
}

const dl_layer_ops dl_layer_absval = {
    .type = "AbsVal",
    .summary = "absolute value |x|",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x",
    .reshape = absval_reshape,
    .forward = absval_forward,
    .backward = absval_backward,
};
