/* Bias (as Caffe): y = x + b, b broadcast over x: b has the shape of x's axes
 * [axis, axis + num_axes) and repeats over the axes before and after (per
 * channel with the defaults). b is a learned parameter, or a second bottom
 * whose shape lines up with x's from `axis` on (then it gets a gradient too). */
#include <stdlib.h>

#include "core/filler.h"
#include "core/layer.h"
#include "core/math.h"
#include "layers/axis_span.h"

typedef struct {
  int axis, num_axes;
  dl_filler filler;
} bias_param;

static const dl_param_spec bias_schema[] = {
    DL_P_INT(bias_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "first axis of x that b spans (negative counts from the end); with two bottoms, "
             "where the second bottom's axes line up",
             "bias_param { axis }"),
    DL_P_INT(bias_param, num_axes, "1", -1, DL_MAX_AXES,
             "number of x's axes the learned b spans (0: one scalar; -1: all from `axis` on); "
             "ignored with two bottoms",
             "bias_param { num_axes }"),
    DL_P_FILLER(bias_param, filler, "{type: constant, value: 0}", "initial b (one bottom only)",
                "bias_param { filler }"),
    DL_SPEC_END};

typedef struct {
  int axis;                 /* resolved, non-negative */
  int bdim;                 /* axes of b */
  int bshape[DL_MAX_AXES];  /* b's shape */
  size_t outer, dim, inner; /* x viewed as outer x dim x inner; dim = count of b */
} bias_priv;

/* Where the parameter lies in x, into the priv's fields. */
static void keep_span(const dl_axis_span *span, bias_priv *s) {
  s->axis = span->axis;
  s->bdim = span->ndim;
  for (int i = 0; i < span->ndim; i++)
    s->bshape[i] = span->shape[i];
}

static dl_status learned_shape(dl_layer *l, const dl_blob *x, bias_priv *s) {
  const bias_param *p = l->param;
  dl_axis_span span;
  dl_status st = dl_axis_span_learned(l, x, p->axis, p->num_axes, &span);
  if (!st) keep_span(&span, s);
  return st;
}

static dl_status bottom_shape(dl_layer *l, const dl_blob *x, const dl_blob *b, bias_priv *s) {
  const bias_param *p = l->param;
  dl_axis_span span;
  dl_status st = dl_axis_span_bottom(l, x, b, p->axis, "bias", &span);
  if (!st) keep_span(&span, s);
  return st;
}

static dl_status bias_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)top, (void)nt;
  const bias_param *p = l->param;
  bias_priv *s = dl_calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  dl_status st = nb > 1 ? bottom_shape(l, bottom[0], bottom[1], s) : learned_shape(l, bottom[0], s);
  if (st || nb > 1) return st;
  dl_blob *b;
  dl_rng rng;
  if ((st = dl_layer_add_param(l, "bias", s->bdim, s->bshape, &b))) return st;
  dl_layer_rng(l, 0, &rng);
  dl_fill(&p->filler, b, &rng);
  return DL_OK;
}

static dl_status bias_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nt;
  bias_priv *s = l->priv;
  const dl_blob *x = bottom[0];
  if (nb > 1) {
    dl_status st = bottom_shape(l, x, bottom[1], s);
    if (st) return st;
  } else {
    int ok = s->axis + s->bdim <= x->ndim;
    for (int i = 0; ok && i < s->bdim; i++)
      ok = s->bshape[i] == x->shape[s->axis + i];
    if (!ok) {
      char a[128], b[128];
      return dl_layer_error(l, DL_ECONFIG, "input %s no longer matches the learned bias %s",
                            dl_blob_shape_str(x, a, sizeof a),
                            dl_blob_shape_str(l->params[0], b, sizeof b));
    }
  }
  s->outer = dl_blob_count_range(x, 0, s->axis);
  s->dim = dl_blob_count_range(x, s->axis, s->axis + s->bdim);
  s->inner = dl_blob_count_range(x, s->axis + s->bdim, x->ndim);
  return top[0] == bottom[0] ? DL_OK : dl_blob_reshape_like(top[0], bottom[0]);
}

static dl_status bias_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nt;
  const bias_priv *s = l->priv;
  const float *x = dl_cdata(bottom[0]);                         /* (outer x dim x inner) */
  const float *b = dl_cdata(nb > 1 ? bottom[1] : l->params[0]); /* (dim) */
  float *y = dl_data(top[0]); /* (outer x dim x inner), may alias x */
  for (size_t o = 0; o < s->outer; o++)
    for (size_t d = 0; d < s->dim; d++) {
      size_t off = (o * s->dim + d) * s->inner;
      for (size_t i = 0; i < s->inner; i++)
        y[off + i] = x[off + i] + b[d];
    }
  return DL_OK;
}

/* db += sum over outer and inner of dy (a second bottom's diff is overwritten
 * instead); dx = dy. */
static void bias_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                          dl_blob *const *bottom, int nb) {
  (void)nt;
  const bias_priv *s = l->priv;
  const float *dy = dl_cdiff(top[0]);
  int learned = nb == 1;
  float *db = learned ? dl_diff(l->params[0]) : propagate_down[1] ? dl_diff(bottom[1]) : NULL;
  if (db)
    for (size_t d = 0; d < s->dim; d++) {
      double sum = 0;
      for (size_t o = 0; o < s->outer; o++) {
        const float *g = dy + (o * s->dim + d) * s->inner;
        for (size_t i = 0; i < s->inner; i++)
          sum += g[i];
      }
      db[d] = (learned ? db[d] : 0.0f) + (float)sum;
    }
  if (propagate_down[0] && top[0] != bottom[0]) dl_copy(bottom[0]->count, dy, dl_diff(bottom[0]));
}

static void bias_destroy(dl_layer *l) { free(l->priv); }

const dl_layer_ops dl_layer_bias = {
    .type = "Bias",
    .summary = "y = x + b, b learned or a second bottom, broadcast per channel by default",
    .schema = bias_schema,
    .param_size = sizeof(bias_param),
    .min_bottoms = 1,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape; optional b: x's shape from `axis` on (for example C, or N x C)",
    .tops_doc = "y: same shape as x",
    .flags = DL_LAYER_IN_PLACE,
    .setup = bias_setup,
    .reshape = bias_reshape,
    .forward = bias_forward,
    .backward = bias_backward,
    .destroy = bias_destroy,
};
