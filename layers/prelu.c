/* PReLU: y = max(x, 0) + a_c min(x, 0) with a learned slope a_c per channel
 * (axis 1), or one slope for all (He et al. 2015, Caffe's PReLULayer). */
#include <stdlib.h>

#include "core/filler.h"
#include "core/layer.h"
#include "core/math.h"

typedef struct {
  int channel_shared;
  dl_filler filler;
} prelu_param;

static const dl_param_spec prelu_schema[] = {
    DL_P_BOOL(prelu_param, channel_shared, "false",
              "one slope for every channel instead of one per channel (axis 1)",
              "prelu_param { channel_shared }"),
    DL_P_FILLER(prelu_param, filler, "{type: constant, value: 0.25}", "initial slopes",
                "prelu_param { filler }"),
    DL_SPEC_END};

typedef struct {
  int C;      /* channels: the bottom's axis 1 */
  size_t dim; /* values per channel per sample: the axes after 1 */
  dl_blob *x; /* in place: forward's input, which the top overwrites */
} prelu_priv;

static dl_status need_channels(dl_layer *l, const dl_blob *x) {
  if (x->ndim >= 2) return DL_OK;
  char b[128];
  return dl_layer_error(l, DL_ECONFIG,
                        "bottom '%s' is %s; it needs at least 2 axes (N x C x ...), the slopes "
                        "being per channel on axis 1",
                        x->name, dl_blob_shape_str(x, b, sizeof b));
}

static dl_status prelu_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)top, (void)nt;
  const prelu_param *p = l->param;
  dl_status st = need_channels(l, bottom[0]);
  if (st) return st;
  prelu_priv *s = dl_calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  s->C = bottom[0]->shape[1];
  dl_blob *a;
  if ((st = dl_layer_add_param(l, "slope", 1, (int[]){p->channel_shared ? 1 : s->C}, &a)))
    return st;
  dl_rng rng;
  dl_layer_rng(l, 0, &rng);
  dl_fill(&p->filler, a, &rng);
  return DL_OK;
}

static dl_status prelu_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nb, (void)nt;
  const prelu_param *p = l->param;
  prelu_priv *s = l->priv;
  dl_blob *x = bottom[0];
  dl_status st = need_channels(l, x);
  if (st) return st;
  if (!p->channel_shared && x->shape[1] != s->C) {
    char b[128];
    return dl_layer_error(l, DL_ECONFIG,
                          "bottom '%s' (%s) has %d channels but the slopes are for %d", x->name,
                          dl_blob_shape_str(x, b, sizeof b), x->shape[1], s->C);
  }
  s->C = x->shape[1];
  s->dim = dl_blob_count_range(x, 2, x->ndim);
  if (top[0] != x) return dl_blob_reshape_like(top[0], x);
  /* In place: the copy of x, touched now so that forward allocates nothing. */
  if (!s->x && !(s->x = dl_blob_new("prelu_input"))) return DL_ENOMEM;
  if ((st = dl_blob_reshape_like(s->x, x))) return st;
  return dl_data(s->x) ? DL_OK : DL_ENOMEM;
}

static dl_status prelu_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nb, (void)nt;
  const prelu_param *p = l->param;
  const prelu_priv *s = l->priv;
  size_t count = bottom[0]->count, N = count / ((size_t)s->C * s->dim);
  const float *x = dl_cdata(bottom[0]);       /* (N x C x dim) */
  const float *a = dl_cdata(l->params[0]);    /* (C) or (1) */
  float *y = dl_data(top[0]);                 /* (N x C x dim), may alias x */
  if (s->x) dl_copy(count, x, dl_data(s->x)); /* in place: keep x for backward */
  for (size_t i = 0, n = 0; n < N; n++)
    for (int c = 0; c < s->C; c++) {
      float ac = a[p->channel_shared ? 0 : c];
      for (size_t k = 0; k < s->dim; k++, i++)
        y[i] = x[i] > 0 ? x[i] : ac * x[i];
    }
  return DL_OK;
}

/* da_c += sum over channel c of dy x [x <= 0];  dx = dy (x > 0 ? 1 : a_c).
 * da comes first: in place, dx overwrites dy. */
static void prelu_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                           dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  const prelu_param *p = l->param;
  const prelu_priv *s = l->priv;
  size_t N = top[0]->count / ((size_t)s->C * s->dim);
  const float *x = dl_cdata(s->x ? s->x : bottom[0]); /* (N x C x dim) */
  const float *dy = dl_cdiff(top[0]);                 /* (N x C x dim) */
  const float *a = dl_cdata(l->params[0]);            /* (C) or (1) */
  float *da = dl_diff(l->params[0]);                  /* (C) or (1) */
  for (size_t i = 0, n = 0; n < N; n++)
    for (int c = 0; c < s->C; c++) {
      double sum = 0; /* per row, so long rows lose little to float rounding */
      for (size_t k = 0; k < s->dim; k++, i++)
        if (x[i] <= 0) sum += (double)dy[i] * x[i];
      da[p->channel_shared ? 0 : c] += (float)sum;
    }
  if (!propagate_down[0]) return;
  float *dx = dl_diff(bottom[0]); /* (N x C x dim), may alias dy */
  for (size_t i = 0, n = 0; n < N; n++)
    for (int c = 0; c < s->C; c++) {
      float ac = a[p->channel_shared ? 0 : c];
      for (size_t k = 0; k < s->dim; k++, i++)
        dx[i] = x[i] > 0 ? dy[i] : ac * dy[i];
    }
}

static void prelu_destroy(dl_layer *l) {
  prelu_priv *s = l->priv;
  if (!s) return;
  dl_blob_free(s->x);
  free(s);
}

const dl_layer_ops dl_layer_prelu = {
    .type = "PReLU",
    .summary = "leaky ReLU with a learned slope per channel (or one shared); works in place",
    .schema = prelu_schema,
    .param_size = sizeof(prelu_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: N x C x ... (at least 2 axes)",
    .tops_doc = "y: same shape as x",
    .flags = DL_LAYER_IN_PLACE,
    .setup = prelu_setup,
    .reshape = prelu_reshape,
    .forward = prelu_forward,
    .backward = prelu_backward,
    .destroy = prelu_destroy,
};
