/* ELU: y = x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2015,
 * Caffe's ELULayer). */
#include <math.h>

#include "core/layer.h"
#include "layers/elu.h"

static const dl_param_spec elu_schema[] = {
    DL_P_FLOAT(elu_param, alpha, "1", 0, 1e9,
               "the value y approaches as x -> -inf is -alpha (not negative: backward tells x's "
               "sign from y's, which is what makes in place work)",
               "elu_param { alpha }"),
    DL_SPEC_END};

static dl_status elu_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)l, (void)nb, (void)nt;
  return top[0] == bottom[0] ? DL_OK : dl_blob_reshape_like(top[0], bottom[0]);
}

static dl_status elu_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  float alpha = ((const elu_param *)l->param)->alpha;
  const float *x = dl_cdata(bottom[0]); /* (count) */
  float *y = dl_data(top[0]);           /* (count), may alias x */
  for (size_t i = 0; i < bottom[0]->count; i++)
    y[i] = x[i] > 0 ? x[i] : alpha * expm1f(x[i]);
  return DL_OK;
}

/* dx = dy for x > 0, dy alpha exp(x) = dy (y + alpha) otherwise. With alpha >= 0,
 * y > 0 exactly when x > 0, so y alone suffices and x may be overwritten. */
static void elu_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                         dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  float alpha = ((const elu_param *)l->param)->alpha;
  const float *y = dl_cdata(top[0]), *dy = dl_cdiff(top[0]); /* (count) */
  float *dx = dl_diff(bottom[0]);                            /* (count), may alias dy */
  for (size_t i = 0; i < top[0]->count; i++)
    dx[i] = y[i] > 0 ? dy[i] : dy[i] * (y[i] + alpha);
}

const dl_layer_ops dl_layer_elu = {
    .type = "ELU",
    .summary = "exponential linear unit: x for x > 0, alpha (exp(x) - 1) below; works in place",
    .schema = elu_schema,
    .param_size = sizeof(elu_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x",
    .flags = DL_LAYER_IN_PLACE,
    .reshape = elu_reshape,
    .forward = elu_forward,
    .backward = elu_backward,
#ifdef DL_GPU
    .forward_gpu = dl_elu_forward_gpu,
    .backward_gpu = dl_elu_backward_gpu,
#endif
};
