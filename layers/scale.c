/* Scale (as Caffe): y = x * s (+ b), s broadcast over x: s has the shape of
 * x's axes [axis, axis + num_axes) and repeats over the axes before and after
 * (per channel with the defaults). s is a learned parameter, or a second bottom
 * whose shape lines up with x's from `axis` on (then it gets a gradient too). */
#include <stdlib.h>

#include "core/filler.h"
#include "core/layer.h"
#include "core/math.h"
#include "layers/axis_span.h"

typedef struct {
  int axis, num_axes;
  int bias_term;
  dl_filler filler, bias_filler;
} scale_param;

static const dl_param_spec scale_schema[] = {
    DL_P_INT(scale_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "first axis of x that s spans (negative counts from the end); with two bottoms, "
             "where the second bottom's axes line up",
             "scale_param { axis }"),
    DL_P_INT(scale_param, num_axes, "1", -1, DL_MAX_AXES,
             "number of x's axes the learned s spans (0: one scalar; -1: all from `axis` on); "
             "ignored with two bottoms",
             "scale_param { num_axes }"),
    DL_P_BOOL(scale_param, bias_term, "false", "also learn a bias b of s's shape: y = x * s + b",
              "scale_param { bias_term }"),
    DL_P_FILLER(scale_param, filler, "{type: constant, value: 1}", "initial s (one bottom only)",
                "scale_param { filler }"),
    DL_P_FILLER(scale_param, bias_filler, "{type: constant, value: 0}", "initial b",
                "scale_param { bias_filler }"),
    DL_SPEC_END};

typedef struct {
  int axis;                 /* resolved, non-negative */
  int sdim;                 /* axes of s */
  int sshape[DL_MAX_AXES];  /* s's shape */
  size_t outer, dim, inner; /* x viewed as outer x dim x inner; dim = count of s */
  float *x_copy;            /* (count) in place: x, which the top overwrites */
  size_t capacity;          /* floats x_copy holds */
} scale_priv;

/* Where the parameter lies in x, into the priv's fields. */
static void keep_span(const dl_axis_span *span, scale_priv *s) {
  s->axis = span->axis;
  s->sdim = span->ndim;
  for (int i = 0; i < span->ndim; i++)
    s->sshape[i] = span->shape[i];
}

static dl_status learned_shape(dl_layer *l, const dl_blob *x, scale_priv *s) {
  const scale_param *p = l->param;
  dl_axis_span span;
  dl_status st = dl_axis_span_learned(l, x, p->axis, p->num_axes, &span);
  if (!st) keep_span(&span, s);
  return st;
}

static dl_status bottom_shape(dl_layer *l, const dl_blob *x, const dl_blob *b, scale_priv *s) {
  const scale_param *p = l->param;
  dl_axis_span span;
  dl_status st = dl_axis_span_bottom(l, x, b, p->axis, "scale", &span);
  if (!st) keep_span(&span, s);
  return st;
}

static dl_status scale_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)top, (void)nt;
  const scale_param *p = l->param;
  scale_priv *s = dl_calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  dl_status st = nb > 1 ? bottom_shape(l, bottom[0], bottom[1], s) : learned_shape(l, bottom[0], s);
  if (st) return st;
  dl_rng rng;
  dl_blob *b;
  if (nb == 1) {
    if ((st = dl_layer_add_param(l, "scale", s->sdim, s->sshape, &b))) return st;
    dl_layer_rng(l, 0, &rng);
    dl_fill(&p->filler, b, &rng);
  }
  if (p->bias_term) {
    if ((st = dl_layer_add_param(l, "bias", s->sdim, s->sshape, &b))) return st;
    dl_layer_rng(l, 1, &rng);
    dl_fill(&p->bias_filler, b, &rng);
  }
  return DL_OK;
}

static dl_status scale_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nt;
  scale_priv *s = l->priv;
  const dl_blob *x = bottom[0];
  if (nb > 1) {
    dl_status st = bottom_shape(l, x, bottom[1], s);
    if (st) return st;
  } else {
    int ok = s->axis + s->sdim <= x->ndim;
    for (int i = 0; ok && i < s->sdim; i++)
      ok = s->sshape[i] == x->shape[s->axis + i];
    if (!ok) {
      char a[128], b[128];
      return dl_layer_error(l, DL_ECONFIG, "input %s no longer matches the learned scale %s",
                            dl_blob_shape_str(x, a, sizeof a),
                            dl_blob_shape_str(l->params[0], b, sizeof b));
    }
  }
  s->outer = dl_blob_count_range(x, 0, s->axis);
  s->dim = dl_blob_count_range(x, s->axis, s->axis + s->sdim);
  s->inner = dl_blob_count_range(x, s->axis + s->sdim, x->ndim);
  if (top[0] == bottom[0] && x->count > s->capacity) {
    float *c = dl_malloc(x->count * sizeof(float));
    if (!c) return DL_ENOMEM;
    free(s->x_copy);
    s->x_copy = c;
    s->capacity = x->count;
  }
  return top[0] == bottom[0] ? DL_OK : dl_blob_reshape_like(top[0], bottom[0]);
}

/* The scale blob: the second bottom, or param 0. */
static dl_blob *scale_blob(dl_layer *l, dl_blob *const *bottom, int nb) {
  return nb > 1 ? bottom[1] : l->params[0];
}

static dl_status scale_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nt;
  const scale_param *p = l->param;
  scale_priv *s = l->priv;
  const float *x = dl_cdata(bottom[0]);                  /* (outer x dim x inner) */
  const float *sc = dl_cdata(scale_blob(l, bottom, nb)); /* (dim) */
  const float *b = p->bias_term ? dl_cdata(l->params[nb > 1 ? 0 : 1]) : NULL; /* (dim) */
  float *y = dl_data(top[0]); /* (outer x dim x inner), may alias x */
  if (top[0] == bottom[0]) dl_copy(bottom[0]->count, x, s->x_copy);
  for (size_t o = 0; o < s->outer; o++)
    for (size_t d = 0; d < s->dim; d++) {
      size_t off = (o * s->dim + d) * s->inner;
      float k = sc[d], c = b ? b[d] : 0.0f;
      for (size_t i = 0; i < s->inner; i++)
        y[off + i] = x[off + i] * k + c;
    }
  return DL_OK;
}

/* ds += sum over outer and inner of dy * x (a second bottom's diff is
 * overwritten instead); db += sum of dy; dx = dy * s. */
static void scale_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                           dl_blob *const *bottom, int nb) {
  (void)nt;
  const scale_param *p = l->param;
  scale_priv *s = l->priv;
  const float *dy = dl_cdiff(top[0]);
  const float *x = top[0] == bottom[0] ? s->x_copy : dl_cdata(bottom[0]);
  int learned = nb == 1;
  float *ds = learned ? dl_diff(l->params[0]) : propagate_down[1] ? dl_diff(bottom[1]) : NULL;
  float *db = p->bias_term ? dl_diff(l->params[learned ? 1 : 0]) : NULL;
  if (ds || db)
    for (size_t d = 0; d < s->dim; d++) {
      double sum_s = 0, sum_b = 0;
      for (size_t o = 0; o < s->outer; o++) {
        size_t off = (o * s->dim + d) * s->inner;
        for (size_t i = 0; i < s->inner; i++) {
          sum_s += (double)dy[off + i] * x[off + i];
          sum_b += dy[off + i];
        }
      }
      if (ds) ds[d] = (learned ? ds[d] : 0.0f) + (float)sum_s;
      if (db) db[d] += (float)sum_b;
    }
  if (!propagate_down[0]) return;
  const float *sc = dl_cdata(scale_blob(l, bottom, nb));
  float *dx = dl_diff(bottom[0]); /* may alias dy */
  for (size_t o = 0; o < s->outer; o++)
    for (size_t d = 0; d < s->dim; d++) {
      size_t off = (o * s->dim + d) * s->inner;
      for (size_t i = 0; i < s->inner; i++)
        dx[off + i] = dy[off + i] * sc[d];
    }
}

static void scale_destroy(dl_layer *l) {
  scale_priv *s = l->priv;
  if (!s) return;
  free(s->x_copy);
  free(s);
}

const dl_layer_ops dl_layer_scale = {
    .type = "Scale",
    .summary = "y = x * s (+ b), per channel by default; s learned or a second bottom",
    .schema = scale_schema,
    .param_size = sizeof(scale_param),
    .min_bottoms = 1,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape; optional s: x's shape from `axis` on (for example C, or N x C)",
    .tops_doc = "y: same shape as x",
    .flags = DL_LAYER_IN_PLACE,
    .setup = scale_setup,
    .reshape = scale_reshape,
    .forward = scale_forward,
    .backward = scale_backward,
    .destroy = scale_destroy,
};
