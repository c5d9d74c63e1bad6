/* Sigmoid: y = 1 / (1 + exp(-x)), computed so that no exp() overflows. */
#include <math.h>

#include "core/layer.h"

static dl_status sigmoid_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)l, (void)nb, (void)nt;
  return top[0] == bottom[0] ? DL_OK : dl_blob_reshape_like(top[0], bottom[0]);
}

/* exp() only ever sees -|x| <= 0, so it never overflows: far below zero y stays
 * the tiny positive value it should be instead of going through 1 / inf. */
static inline float sigmoid(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

static dl_status sigmoid_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)l, (void)nb, (void)nt;
  const float *x = dl_cdata(bottom[0]); /* (count) */
  float *y = dl_data(top[0]);           /* (count), may alias x */
  for (size_t i = 0; i < bottom[0]->count; i++)
    y[i] = sigmoid(x[i]);
  return DL_OK;
}

/* dx = dy * y * (1 - y): only y is needed, which is what makes in place work. */
static void sigmoid_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                             dl_blob *const *bottom, int nb) {
  (void)l, (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const float *y = dl_cdata(top[0]), *dy = dl_cdiff(top[0]); /* (count) */
  float *dx = dl_diff(bottom[0]);                            /* (count), may alias dy */
  for (size_t i = 0; i < top[0]->count; i++)
    dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

const dl_layer_ops dl_layer_sigmoid = {
    .type = "Sigmoid",
    .summary = "logistic function 1 / (1 + exp(-x)); works in place",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x, in (0, 1)",
    .flags = DL_LAYER_IN_PLACE,
    .reshape = sigmoid_reshape,
    .forward = sigmoid_forward,
    .backward = sigmoid_backward,
};
