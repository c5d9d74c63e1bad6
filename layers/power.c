/* Power: y = (shift + scale x)^power, as Caffe's PowerLayer. */
#include <math.h>

#include "core/layer.h"
#include "core/math.h"

typedef struct {
  float power, scale, shift;
} power_param;

static const dl_param_spec power_schema[] = {
    DL_P_FLOAT(power_param, power, "1", -1e9, 1e9,
               "the exponent (a non-integer power of a negative base gives NaN)",
               "power_param { power }"),
    DL_P_FLOAT(power_param, scale, "1", -1e9, 1e9, "multiplies x before the shift",
               "power_param { scale }"),
    DL_P_FLOAT(power_param, shift, "0", -1e9, 1e9, "added to scale x before the power",
               "power_param { shift }"),
    DL_SPEC_END};

static dl_status power_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)l, (void)nb, (void)nt;
  return dl_blob_reshape_like(top[0], bottom[0]);
}

static dl_status power_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nb, (void)nt;
  const power_param *p = l->param;
  const float *x = dl_cdata(bottom[0]); /* (count) */
  float *y = dl_data(top[0]);           /* (count) */
  for (size_t i = 0; i < bottom[0]->count; i++)
    y[i] = powf(p->shift + p->scale * x[i], p->power);
  return DL_OK;
}

/* dx = dy power scale (shift + scale x)^(power - 1). Computed from x, not as
 * power scale y / (shift + scale x) (Caffe), which is 0 / 0 where the base is
 * 0; a zero power or scale gives exactly 0, where the power could be inf. */
static void power_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                           dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const power_param *p = l->param;
  size_t n = top[0]->count;
  float *dx = dl_diff(bottom[0]); /* (count) */
  float diff_scale = p->power * p->scale;
  if (diff_scale == 0) {
    dl_set(n, 0, dx);
    return;
  }
  const float *x = dl_cdata(bottom[0]), *dy = dl_cdiff(top[0]); /* (count) */
  for (size_t i = 0; i < n; i++)
    dx[i] = dy[i] * diff_scale * powf(p->shift + p->scale * x[i], p->power - 1);
}

const dl_layer_ops dl_layer_power = {
    .type = "Power",
    .summary = "y = (shift + scale x)^power",
    .schema = power_schema,
    .param_size = sizeof(power_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x",
    .reshape = power_reshape,
    .forward = power_forward,
    .backward = power_backward,
};
