/* SigmoidCrossEntropyLoss: a sigmoid on each score, then the cross-entropy
 * against a target probability, summed, as Caffe's layer of that name (one
 * independent binary decision per value: multi-label classification). Fused,
 * because the gradient sigmoid(x) - t is simpler and more stable than the
 * two layers' chain. */
#include <math.h>
#include <stdlib.h>

#include "core/layer.h"

enum { NORM_VALID, NORM_BATCH_SIZE, NORM_FULL, NORM_NONE };
static const char *const norm_names[] = {"valid", "batch_size", "full", "none", NULL};

typedef struct {
  int ignore_label;
  int normalization;
} sce_param;

static const dl_param_spec sce_schema[] = {
    DL_P_INT(sce_param, ignore_label, "-1", -(1 << 30), 1 << 30,
             "values whose target equals this add no loss and no gradient (-1 by default: "
             "targets lie in [0, 1], so no real target is ignored)",
             "loss_param { ignore_label }"),
    DL_P_ENUM(sce_param, normalization, "batch_size", norm_names,
              "divide the summed loss by: batch_size = axis-0 size (Caffe's default for this "
              "layer), valid = the targets not ignored, full = all targets, none = 1",
              "loss_param { normalization }"),
    DL_SPEC_END};

typedef struct {
  float norm; /* what the last forward divided the loss by */
} sce_priv;

static dl_status sce_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                           int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  l->priv = dl_calloc(1, sizeof(sce_priv));
  return l->priv ? DL_OK : DL_ENOMEM;
}

static dl_status sce_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  if (bottom[0]->count != bottom[1]->count) {
    char a[128], b[128];
    return dl_layer_error(l, DL_ECONFIG,
                          "scores %s and targets %s must have the same count (%zu vs %zu): one "
                          "target per score",
                          dl_blob_shape_str(bottom[0], a, sizeof a),
                          dl_blob_shape_str(bottom[1], b, sizeof b), bottom[0]->count,
                          bottom[1]->count);
  }
  return dl_blob_reshape(top[0], 0, NULL);
}

/* -[t log s(x) + (1 - t) log(1 - s(x))] = max(x, 0) - x t + log(1 + exp(-|x|)):
 * exp() never sees a positive argument, so no overflow at any |x|. */
static double sce_term(float x, float t) {
  return fmax(x, 0) - (double)x * t + log1p(exp(-fabs((double)x)));
}

static float sce_normalizer(const sce_param *p, const dl_blob *scores, size_t valid) {
  double n = 1;
  switch (p->normalization) {
  case NORM_VALID: n = (double)valid; break;
  case NORM_BATCH_SIZE: n = dl_blob_dim(scores, 0); break;
  case NORM_FULL: n = (double)scores->count; break;
  default: break;
  }
  return n > 1 ? (float)n : 1; /* all targets ignored: loss 0, not NaN */
}

static dl_status sce_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  const sce_param *p = l->param;
  sce_priv *s = l->priv;
  const float *x = dl_cdata(bottom[0]), *t = dl_cdata(bottom[1]); /* (count) each */
  double loss = 0;
  size_t valid = 0;
  for (size_t i = 0; i < bottom[0]->count; i++) {
    if (t[i] == (float)p->ignore_label) continue;
    if (!(t[i] >= 0 && t[i] <= 1)) /* also catches NaN */
      return dl_layer_error(l, DL_EDATA,
                            "target %g at position %zu is outside [0, 1] (and is not "
                            "ignore_label %d)",
                            (double)t[i], i, p->ignore_label);
    loss += sce_term(x[i], t[i]);
    valid++;
  }
  s->norm = sce_normalizer(p, bottom[0], valid);
  dl_data(top[0])[0] = (float)(loss / s->norm);
  return DL_OK;
}

/* exp() of -|x| only, as in the loss. */
static float sigmoid(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* dx = (sigmoid(x) - t) dloss / norm; zero where the target is ignored. */
static void sce_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                         dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const sce_param *p = l->param;
  const sce_priv *s = l->priv;
  const float *x = dl_cdata(bottom[0]), *t = dl_cdata(bottom[1]); /* (count) each */
  float *dx = dl_diff(bottom[0]);                                 /* (count) */
  float scale = dl_cdiff(top[0])[0] / s->norm;
  for (size_t i = 0; i < bottom[0]->count; i++)
    dx[i] = t[i] == (float)p->ignore_label ? 0 : (sigmoid(x[i]) - t[i]) * scale;
}

static void sce_destroy(dl_layer *l) { free(l->priv); }

const dl_layer_ops dl_layer_sigmoid_ce_loss = {
    .type = "SigmoidCrossEntropyLoss",
    .summary = "sigmoid then binary cross-entropy against targets in [0, 1] (multi-label loss)",
    .schema = sce_schema,
    .param_size = sizeof(sce_param),
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "scores: any shape; targets: the same count, probabilities in [0, 1]",
    .tops_doc = "loss: a scalar",
    .flags = DL_LAYER_LOSS,
    .no_grad_bottoms = 1u << 1,
    .setup = sce_setup,
    .reshape = sce_reshape,
    .forward = sce_forward,
    .backward = sce_backward,
    .destroy = sce_destroy,
};
