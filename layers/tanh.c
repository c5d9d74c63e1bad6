/* TanH: y = tanh(x). */
#include <math.h>

#include "core/layer.h"
#include "core/math.h"

#ifdef DL_GPU
DL_GPU_TWINS(tanh); /* layers/tanh.cu */
#endif

static dl_status tanh_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)l, (void)nb, (void)nt;
  return top[0] == bottom[0] ? DL_OK : dl_blob_reshape_like(top[0], bottom[0]);
}

/* Saturates to +-1 for large |x| without overflow, unlike the
 * (e^x - e^-x) / (e^x + e^-x) textbook form (see dl_vtanh). */
static dl_status tanh_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)l, (void)nb, (void)nt;
  const float *x = dl_cdata(bottom[0]); /* (count) */
  float *y = dl_data(top[0]);           /* (count), may alias x */
  dl_tanh(bottom[0]->count, x, y);
  return DL_OK;
}

/* dx = dy * (1 - y^2): only y is needed, which is what makes in place work. */
static void tanh_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                          dl_blob *const *bottom, int nb) {
  (void)l, (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const float *y = dl_cdata(top[0]), *dy = dl_cdiff(top[0]); /* (count) */
  float *dx = dl_diff(bottom[0]);                            /* (count), may alias dy */
  dl_tanh_grad(top[0]->count, y, dy, dx);
}

const dl_layer_ops dl_layer_tanh = {
    .type = "TanH",
    .summary = "hyperbolic tangent; works in place",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x, in (-1, 1)",
    .flags = DL_LAYER_IN_PLACE,
    .reshape = tanh_reshape,
    .forward = tanh_forward,
    .backward = tanh_backward,
#ifdef DL_GPU
    .forward_gpu = dl_tanh_forward_gpu,
    .backward_gpu = dl_tanh_backward_gpu,
#endif
};
