/* Softmax over one axis: y_c = exp(x_c) / sum_k exp(x_k). */
#include "layers/softmax.h"
#include "core/layer.h"
#include "core/math.h"

typedef struct {
  int axis;
} softmax_param;

static const dl_param_spec softmax_schema[] = {
    DL_P_INT(softmax_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "the axis normalised over (negative counts from the end)", "softmax_param { axis }"),
    DL_SPEC_END};

/* The outer x C x inner view of x around the softmax axis. */
dl_status dl_softmax_layer_dims(dl_layer *l, const dl_blob *x, int *outer, int *C, int *inner) {
  const softmax_param *p = l->param;
  int axis = dl_blob_axis(x, p->axis);
  if (axis < 0)
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for a %d-axis input", p->axis,
                          x->ndim);
  *outer = (int)dl_blob_count_range(x, 0, axis);
  *C = x->shape[axis];
  *inner = (int)dl_blob_count_range(x, axis + 1, x->ndim);
  return DL_OK;
}

static dl_status softmax_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nb, (void)nt;
  int outer, C, inner;
  dl_status st = dl_softmax_layer_dims(l, bottom[0], &outer, &C, &inner);
  if (st) return st;
  return dl_blob_reshape_like(top[0], bottom[0]);
}

static dl_status softmax_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nb, (void)nt;
  int outer, C, inner;
  dl_softmax_layer_dims(l, bottom[0], &outer, &C, &inner);
  dl_softmax(outer, C, inner, dl_cdata(bottom[0]), dl_data(top[0]));
  return DL_OK;
}

/* dx_c = y_c (dy_c - sum_k dy_k y_k) */
static void softmax_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                             dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  int outer, C, inner;
  dl_softmax_layer_dims(l, bottom[0], &outer, &C, &inner);
  const float *y = dl_cdata(top[0]), *dy = dl_cdiff(top[0]);
  float *dx = dl_diff(bottom[0]);
  for (int o = 0; o < outer; o++)
    for (int i = 0; i < inner; i++) {
      size_t base = (size_t)o * C * inner + i;
      float dot = 0;
      for (int c = 0; c < C; c++) dot += dy[base + (size_t)c * inner] * y[base + (size_t)c * inner];
      for (int c = 0; c < C; c++) {
        size_t k = base + (size_t)c * inner;
        dx[k] = y[k] * (dy[k] - dot);
      }
    }
}

const dl_layer_ops dl_layer_softmax = {
    .type = "Softmax",
    .summary = "softmax over one axis (probabilities; for training use SoftmaxWithLoss)",
    .schema = softmax_schema,
    .param_size = sizeof(softmax_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x, summing to 1 along `axis`",
    .reshape = softmax_reshape,
    .forward = softmax_forward,
    .backward = softmax_backward,
#ifdef DL_GPU
    .forward_gpu = dl_softmax_forward_gpu,
    .backward_gpu = dl_softmax_backward_gpu,
#endif
};
