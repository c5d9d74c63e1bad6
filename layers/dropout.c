/* Dropout (inverted, as Caffe): at train time each value is zeroed with
 * probability dropout_ratio and the survivors are scaled by 1 / (1 - ratio), so
 * the test phase is the identity. The mask is a pure function of (seed, layer
 * name, iteration, substep, element), so runs repeat bit for bit and a resumed
 * run draws the same masks with no saved state. */
#include <stdint.h>
#include <stdlib.h>

#include "core/layer.h"
#include "core/math.h"
#include "layers/dropout.h"


static const dl_param_spec dropout_schema[] = {
    DL_P_FLOAT(dropout_param, dropout_ratio, "0.5", 0, 1,
               "probability in [0, 1) that a value is zeroed at train time; the kept ones are "
               "scaled by 1 / (1 - dropout_ratio)",
               "dropout_param { dropout_ratio }"),
    DL_SPEC_END};

typedef struct {
  uint8_t *mask; /* (capacity) 1: kept; train phase only */
  size_t capacity;
} dropout_priv;

/* An arbitrary stream number for dl_layer_rng, apart from any filler's. */
enum { DROPOUT_STREAM = 0x64726f70 };

static dl_status dropout_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const dropout_param *p = l->param;
  /* The schema's range is inclusive; 1 would divide by zero. */
  if (p->dropout_ratio >= 1)
    return dl_layer_error(l, DL_ECONFIG,
                          "dropout_ratio must be below 1 (got %g): 1 would drop every value",
                          (double)p->dropout_ratio);
  l->priv = dl_calloc(1, sizeof(dropout_priv));
  return l->priv ? DL_OK : DL_ENOMEM;
}

static dl_status dropout_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nb, (void)nt;
  dropout_priv *d = l->priv;
  if (top[0] != bottom[0]) {
    dl_status st = dl_blob_reshape_like(top[0], bottom[0]);
    if (st) return st;
  }
  size_t n = bottom[0]->count;
  if (l->phase != DL_TRAIN || n <= d->capacity) return DL_OK;
  uint8_t *m = dl_malloc(n);
  if (!m) return DL_ENOMEM;
  free(d->mask);
  d->mask = m;
  d->capacity = n;
  return DL_OK;
}

/* Read at every forward, not cached at setup: restoring a snapshot may change
 * ctx->seed after the net is built. Keyed by the layer's name (through
 * dl_layer_rng), so adding a layer elsewhere leaves this mask alone. */
uint64_t dl_dropout_key(const dl_layer *l) {
  dl_rng r;
  dl_layer_rng(l, DROPOUT_STREAM, &r);
  return dl_seed_mix(dl_rng_u64(&r), (uint64_t)l->ctx->iter, (uint64_t)l->ctx->substep);
}

static dl_status dropout_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nb, (void)nt;
  const float *x = dl_cdata(bottom[0]); /* (count) */
  float *y = dl_data(top[0]);           /* (count), may alias x */
  size_t n = bottom[0]->count;
  if (l->phase != DL_TRAIN) {
    if (y != x) dl_copy(n, x, y);
    return DL_OK;
  }
  const dropout_param *p = l->param;
  dropout_priv *d = l->priv;
  float ratio = p->dropout_ratio, scale = 1.0f / (1.0f - ratio);
  uint64_t key = dl_dropout_key(l);
  for (size_t i = 0; i < n; i++) {
    d->mask[i] = dl_uniform_at(key, i) >= ratio;
    y[i] = d->mask[i] ? x[i] * scale : 0.0f;
  }
  return DL_OK;
}

/* dx = dy * mask / (1 - ratio) at train time, dx = dy at test time. */
static void dropout_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                             dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const float *dy = dl_cdiff(top[0]); /* (count) */
  float *dx = dl_diff(bottom[0]);     /* (count), may alias dy */
  size_t n = top[0]->count;
  if (l->phase != DL_TRAIN) {
    if (dx != dy) dl_copy(n, dy, dx);
    return;
  }
  const dropout_param *p = l->param;
  const dropout_priv *d = l->priv;
  float scale = 1.0f / (1.0f - p->dropout_ratio);
  for (size_t i = 0; i < n; i++)
    dx[i] = d->mask[i] ? dy[i] * scale : 0.0f;
}

static void dropout_destroy(dl_layer *l) {
  dropout_priv *d = l->priv;
  if (d) free(d->mask);
  free(d);
  l->priv = NULL;
}

const dl_layer_ops dl_layer_dropout = {
    .type = "Dropout",
    .summary = "zeroes random values at train time and rescales the rest; identity at test "
               "time; works in place",
    .schema = dropout_schema,
    .param_size = sizeof(dropout_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: same shape as x",
    .flags = DL_LAYER_IN_PLACE,
    .setup = dropout_setup,
    .reshape = dropout_reshape,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .destroy = dropout_destroy,
#ifdef DL_GPU
    .forward_gpu = dl_dropout_forward_gpu,
    .backward_gpu = dl_dropout_backward_gpu,
#endif
};
