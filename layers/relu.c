/* ReLU: y = max(x, 0) + negative_slope * min(x, 0) (leaky when slope > 0). */
#include "core/math.h"
#include "layers/relu.h"

static const dl_param_spec relu_schema[] = {
    DL_P_FLOAT(relu_param, negative_slope, "0", 0, 1e9,
               "slope for x < 0 (0: plain ReLU, 0.01: leaky ReLU)",
               "relu_param { negative_slope }"),
    DL_SPEC_END};

static dl_status relu_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)l, (void)nb, (void)nt;
  return top[0] == bottom[0] ? DL_OK : dl_blob_reshape_like(top[0], bottom[0]);
}

static dl_status relu_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  const relu_param *p = l->param;
  const float *x = dl_cdata(bottom[0]); /* (count) */
  float *y = dl_data(top[0]);           /* (count), may alias x */
  dl_relu(bottom[0]->count, p->negative_slope, x, y);
  return DL_OK;
}

/* dx = dy * (x > 0 ? 1 : slope). In place, x is gone but y has x's sign
 * (for slope >= 0), so the test reads y. */
static void relu_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                          dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const relu_param *p = l->param;
  const float *y = dl_cdata(top[0]), *dy = dl_cdiff(top[0]);
  float *dx = dl_diff(bottom[0]);
  dl_relu_grad(top[0]->count, p->negative_slope, y, dy, dx);
}

/* Element by element: any layout, the top's the same as the bottom's. */
static unsigned relu_blocked_ok(const dl_layer *l, dl_blob *const *bottom, int nb,
                                dl_blob *const *top, int nt) {
  (void)l, (void)bottom, (void)nb, (void)top, (void)nt;
  return DL_BLOCKED_BOTTOM | DL_BLOCKED_TOP | DL_BLOCKED_SAME;
}

const dl_layer_ops dl_layer_relu = {
    .type = "ReLU",
    .summary = "rectified linear unit, optionally leaky; works in place",
    .schema = relu_schema,
    .param_size = sizeof(relu_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x",
    .flags = DL_LAYER_IN_PLACE,
    .reshape = relu_reshape,
    .forward = relu_forward,
    .backward = relu_backward,
    .blocked_ok = relu_blocked_ok,
#ifdef DL_GPU
    .forward_gpu = dl_relu_forward_gpu,
    .backward_gpu = dl_relu_backward_gpu,
#endif
};
