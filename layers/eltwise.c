/* Eltwise: combines two or more bottoms of one shape element by element, as
 * Caffe's EltwiseLayer: a product, a weighted sum (coeff) or a maximum. */
#include <stdlib.h>

#include "core/layer.h"
#include "core/math.h"
#include "layers/eltwise.h"

enum { OP_PROD = DL_ELTWISE_PROD, OP_SUM = DL_ELTWISE_SUM, OP_MAX = DL_ELTWISE_MAX };
static const char *const op_names[] = {"prod", "sum", "max", NULL};

static const dl_param_spec eltwise_schema[] = {
    DL_P_ENUM(eltwise_param, operation, "sum", op_names,
              "prod: y = x1 * x2 * ...; sum: y = c1 x1 + c2 x2 + ...; max: y = max(x1, x2, ...)",
              "eltwise_param { operation }"),
    DL_P_FLOATS(eltwise_param, coeff, "[]", -1e9, 1e9,
                "operation sum only: one weight per bottom, e.g. [1, -1] for a difference "
                "(empty: all 1)",
                "eltwise_param { coeff }"),
    DL_SPEC_END};

typedef struct {
  int *argmax;     /* (capacity) operation max: which bottom won each element */
  size_t capacity; /* ints argmax holds */
} eltwise_priv;

static dl_status eltwise_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)top, (void)nt;
  const eltwise_param *p = l->param;
  if (p->coeff.n && p->operation != OP_SUM)
    return dl_layer_error(l, DL_ECONFIG, "coeff applies to operation sum only (this one is %s)",
                          op_names[p->operation]);
  if (p->coeff.n && p->coeff.n != nb)
    return dl_layer_error(l, DL_ECONFIG,
                          "coeff has %d values but the layer has %d bottoms; give one per bottom",
                          p->coeff.n, nb);
  l->priv = dl_calloc(1, sizeof(eltwise_priv));
  return l->priv ? DL_OK : DL_ENOMEM;
}

static int same_shape(const dl_blob *a, const dl_blob *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

static dl_status eltwise_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nt;
  const eltwise_param *p = l->param;
  eltwise_priv *s = l->priv;
  for (int i = 1; i < nb; i++) {
    if (same_shape(bottom[i], bottom[0])) continue;
    char a[128], b[128];
    return dl_layer_error(l, DL_ECONFIG,
                          "bottom %d '%s' is %s but bottom 0 '%s' is %s; all bottoms must have "
                          "the same shape",
                          i, bottom[i]->name, dl_blob_shape_str(bottom[i], b, sizeof b),
                          bottom[0]->name, dl_blob_shape_str(bottom[0], a, sizeof a));
  }
  dl_status st = dl_blob_reshape_like(top[0], bottom[0]);
  size_t n = bottom[0]->count;
  if (st || p->operation != OP_MAX || n <= s->capacity) return st;
  int *m = dl_malloc(n * sizeof *m);
  if (!m) return DL_ENOMEM;
  free(s->argmax);
  s->argmax = m;
  s->capacity = n;
  return DL_OK;
}

/* On a tie the earlier bottom wins (strict >), so the gradient goes to one
 * bottom only and the choice does not depend on the bottom count. */
static void forward_max(eltwise_priv *s, dl_blob *const *bottom, int nb, float *y) {
  size_t n = bottom[0]->count;
  int *arg = s->argmax; /* (count) */
  dl_copy(n, dl_cdata(bottom[0]), y);
  for (size_t k = 0; k < n; k++)
    arg[k] = 0;
  for (int i = 1; i < nb; i++) {
    const float *x = dl_cdata(bottom[i]); /* (count) */
    for (size_t k = 0; k < n; k++)
      if (x[k] > y[k]) y[k] = x[k], arg[k] = i;
  }
}

static dl_status eltwise_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nt;
  const eltwise_param *p = l->param;
  size_t n = bottom[0]->count;
  float *y = dl_data(top[0]); /* (count) */
  switch (p->operation) {
  case OP_PROD:
    dl_copy(n, dl_cdata(bottom[0]), y);
    for (int i = 1; i < nb; i++) {
      const float *x = dl_cdata(bottom[i]);
      for (size_t k = 0; k < n; k++)
        y[k] *= x[k];
    }
    break;
  case OP_SUM:
    dl_set(n, 0, y);
    for (int i = 0; i < nb; i++)
      dl_axpy(n, p->coeff.n ? p->coeff.v[i] : 1, dl_cdata(bottom[i]), y);
    break;
  default: forward_max(l->priv, bottom, nb, y); break;
  }
  return DL_OK;
}

/* prod: dx_i = dy * prod_{j != i} x_j, multiplied out rather than taken as
 * y / x_i, which breaks where x_i is 0 (Caffe's stable_prod_grad). */
static void backward_prod(dl_blob *const *bottom, int nb, int i, const float *dy, float *dx) {
  size_t n = bottom[i]->count;
  dl_copy(n, dy, dx);
  for (int j = 0; j < nb; j++) {
    if (j == i) continue;
    const float *x = dl_cdata(bottom[j]);
    for (size_t k = 0; k < n; k++)
      dx[k] *= x[k];
  }
}

/* sum: dx_i = c_i dy;  max: dx_i = dy where bottom i won, else 0. */
static void eltwise_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                             dl_blob *const *bottom, int nb) {
  (void)nt;
  const eltwise_param *p = l->param;
  const eltwise_priv *s = l->priv;
  const float *dy = dl_cdiff(top[0]); /* (count) */
  size_t n = top[0]->count;
  for (int i = 0; i < nb; i++) {
    if (!propagate_down[i]) continue;
    float *dx = dl_diff(bottom[i]); /* (count) */
    if (p->operation == OP_PROD) {
      backward_prod(bottom, nb, i, dy, dx);
    } else if (p->operation == OP_SUM) {
      float c = p->coeff.n ? p->coeff.v[i] : 1;
      for (size_t k = 0; k < n; k++)
        dx[k] = c * dy[k];
    } else {
      for (size_t k = 0; k < n; k++)
        dx[k] = s->argmax[k] == i ? dy[k] : 0;
    }
  }
}

static void eltwise_destroy(dl_layer *l) {
  eltwise_priv *s = l->priv;
  if (!s) return;
  free(s->argmax);
  free(s);
}

const dl_layer_ops dl_layer_eltwise = {
    .type = "Eltwise",
    .summary = "elementwise product, weighted sum or maximum of bottoms of one shape",
    .schema = eltwise_schema,
    .param_size = sizeof(eltwise_param),
    .min_bottoms = 2,
    .max_bottoms = DL_MAX_LAYER_BLOBS,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x1, x2, ...: two or more blobs of the same shape",
    .tops_doc = "y: that shape",
    .setup = eltwise_setup,
    .reshape = eltwise_reshape,
    .forward = eltwise_forward,
    .backward = eltwise_backward,
    .destroy = eltwise_destroy,
#ifdef DL_GPU
    .forward_gpu = dl_eltwise_forward_gpu,
    .backward_gpu = dl_eltwise_backward_gpu,
#endif
};
