/* BatchNorm (as Caffe): y = (x - mean) / sqrt(var + eps) per channel, the
 * statistics taken over N x H x W (all axes but 1). Training uses the batch's
 * statistics and folds them into running sums; testing (use_global_stats) uses
 * the running ones. Like Caffe it keeps three parameter blobs that are not
 * learned: the running mean (C), the running variance (C) and the running
 * normalizer (1); the true estimates are those divided by the normalizer. They
 * have lr_mult and decay_mult 0, so the solver leaves them alone, and are saved
 * in snapshots like any parameter. With `affine: true` the layer also learns a
 * per-channel gamma and beta (y = gamma * xhat + beta, params 3 and 4), which
 * Caffe does with a separate Scale layer (bias_term: true); both ways work. */
#include <math.h>
#include <stdlib.h>

#include "core/layer.h"
#include "core/math.h"

enum { GLOBAL_FALSE, GLOBAL_TRUE, GLOBAL_AUTO };
static const char *const global_names[] = {"false", "true", "auto", NULL};

typedef struct {
  int use_global_stats;
  float moving_average_fraction;
  float eps;
  int affine;
} bn_param;

static const dl_param_spec bn_schema[] = {
    DL_P_ENUM(bn_param, use_global_stats, "auto", global_names,
              "true: normalize with the running statistics (no update); false: with the batch's "
              "and update the running ones; auto: false in the train phase, true in test",
              "batch_norm_param { use_global_stats }"),
    DL_P_FLOAT(bn_param, moving_average_fraction, "0.999", 0, 1,
               "decay of the running statistics per forward: "
               "s = fraction * s + batch value (and the normalizer n = fraction * n + 1)",
               "batch_norm_param { moving_average_fraction }"),
    DL_P_FLOAT(bn_param, eps, "1e-5", 0, 1e30, "added to the variance before the square root",
               "batch_norm_param { eps }"),
    DL_P_BOOL(bn_param, affine, "false",
              "also learn a per-channel scale gamma (init 1) and shift beta (init 0): y = gamma * "
              "xhat + beta; Caffe instead follows BatchNorm with a Scale layer (bias_term: true)",
              "(none: a Scale layer with bias_term: true)"),
    DL_SPEC_END};

enum { BN_MEAN, BN_VAR, BN_NORMALIZER, BN_GAMMA, BN_BETA };

typedef struct {
  int global; /* resolved use_global_stats */
  int C;
  int outer, inner;      /* N and spatial size: x is outer x C x inner */
  float *mean, *inv_std; /* (C) of the last forward: batch or global */
  float *xhat;           /* (outer x C x inner) normalized x, kept for backward
                            (a later in-place layer may overwrite the top) */
  size_t capacity;       /* floats xhat holds */
} bn_priv;

static dl_status bn_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                          int nt) {
  (void)nb, (void)top, (void)nt;
  const bn_param *p = l->param;
  int C = bottom[0]->ndim > 1 ? bottom[0]->shape[1] : 1;
  bn_priv *s = dl_calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  s->global =
      p->use_global_stats == GLOBAL_AUTO ? l->phase == DL_TEST : p->use_global_stats == GLOBAL_TRUE;
  s->C = C;
  s->mean = dl_calloc((size_t)C, sizeof(float));
  s->inv_std = dl_calloc((size_t)C, sizeof(float));
  if (!s->mean || !s->inv_std) return DL_ENOMEM;
  static const char *const names[] = {"mean", "variance", "normalizer", "gamma", "beta"};
  int nparams = p->affine ? 5 : 3;
  for (int k = 0; k < nparams; k++) {
    dl_blob *b;
    int one = 1;
    dl_status st = dl_layer_add_param(l, names[k], 1, k == BN_NORMALIZER ? &one : &C, &b);
    if (st) return st;
    dl_set(b->count, k == BN_GAMMA ? 1.0f : 0.0f, dl_data(b));
    if (k <= BN_NORMALIZER) l->lr_mult[k] = l->decay_mult[k] = 0; /* not learned */
  }
  return DL_OK;
}

static dl_status bn_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)nt;
  bn_priv *s = l->priv;
  int C = bottom[0]->ndim > 1 ? bottom[0]->shape[1] : 1;
  if (C != s->C) {
    char buf[128];
    return dl_layer_error(l, DL_ECONFIG, "input %s has %d channels, but the statistics have %d",
                          dl_blob_shape_str(bottom[0], buf, sizeof buf), C, s->C);
  }
  s->outer = bottom[0]->ndim > 0 ? bottom[0]->shape[0] : 1;
  s->inner = (int)(bottom[0]->count / ((size_t)s->outer * (size_t)C));
  if (bottom[0]->count > s->capacity) {
    float *x = dl_malloc(bottom[0]->count * sizeof(float));
    if (!x) return DL_ENOMEM;
    free(s->xhat);
    s->xhat = x;
    s->capacity = bottom[0]->count;
  }
  return top[0] == bottom[0] ? DL_OK : dl_blob_reshape_like(top[0], bottom[0]);
}

/* Batch statistics in double (mean first, then the mean squared deviation, as
 * Caffe), folded into the running sums:
 *   normalizer = f * normalizer + 1, mean_sum = f * mean_sum + mean,
 *   var_sum = f * var_sum + m / (m - 1) * var   (m = N x H x W, unbiased). */
static void batch_stats(dl_layer *l, bn_priv *s, const float *x) {
  const bn_param *p = l->param;
  int C = s->C;
  size_t m = (size_t)s->outer * (size_t)s->inner, inner = (size_t)s->inner;
  float *run_mean = dl_data(l->params[BN_MEAN]), *run_var = dl_data(l->params[BN_VAR]);
  float *norm = dl_data(l->params[BN_NORMALIZER]);
  float f = p->moving_average_fraction;
  float correction = m > 1 ? (float)((double)m / (double)(m - 1)) : 1.0f;
  for (int c = 0; c < C; c++) {
    double sum = 0, sq = 0;
    for (int n = 0; n < s->outer; n++) {
      const float *xc = x + ((size_t)n * C + c) * inner;
      for (size_t i = 0; i < inner; i++)
        sum += xc[i];
    }
    double mean = sum / (double)m;
    for (int n = 0; n < s->outer; n++) {
      const float *xc = x + ((size_t)n * C + c) * inner;
      for (size_t i = 0; i < inner; i++)
        sq += (xc[i] - mean) * (xc[i] - mean);
    }
    float var = (float)(sq / (double)m);
    s->mean[c] = (float)mean;
    s->inv_std[c] = (float)(1.0 / sqrt((double)var + p->eps));
    run_mean[c] = f * run_mean[c] + (float)mean;
    run_var[c] = f * run_var[c] + correction * var;
  }
  norm[0] = f * norm[0] + 1;
}

static void global_stats(dl_layer *l, bn_priv *s) {
  const bn_param *p = l->param;
  const float *run_mean = dl_cdata(l->params[BN_MEAN]), *run_var = dl_cdata(l->params[BN_VAR]);
  float norm = dl_cdata(l->params[BN_NORMALIZER])[0];
  /* Never trained (normalizer 0): Caffe's choice, mean 0 and variance 0. */
  double scale = norm == 0 ? 0 : 1.0 / norm;
  for (int c = 0; c < s->C; c++) {
    s->mean[c] = (float)(scale * run_mean[c]);
    s->inv_std[c] = (float)(1.0 / sqrt(scale * run_var[c] + p->eps));
  }
}

static dl_status bn_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)nt;
  const bn_param *p = l->param;
  bn_priv *s = l->priv;
  const float *x = dl_cdata(bottom[0]); /* (outer x C x inner) */
  float *y = dl_data(top[0]);           /* (outer x C x inner), may alias x */
  if (s->global)
    global_stats(l, s);
  else
    batch_stats(l, s, x);
  const float *gamma = p->affine ? dl_cdata(l->params[BN_GAMMA]) : NULL; /* (C) */
  const float *beta = p->affine ? dl_cdata(l->params[BN_BETA]) : NULL;   /* (C) */
  size_t inner = (size_t)s->inner;
  for (int n = 0; n < s->outer; n++)
    for (int c = 0; c < s->C; c++) {
      size_t off = ((size_t)n * s->C + c) * inner;
      float mu = s->mean[c], is = s->inv_std[c];
      float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
      for (size_t i = 0; i < inner; i++) {
        float xh = (x[off + i] - mu) * is;
        s->xhat[off + i] = xh;
        y[off + i] = g * xh + b;
      }
    }
  return DL_OK;
}

/* With g = gamma * dy (dy itself without affine), per channel over its m values:
 *   batch statistics:  dx = (g - mean(g) - mean(g * xhat) * xhat) / sqrt(var + eps)
 *   global statistics: dx = g / sqrt(var + eps)   (the statistics are constants)
 *   dgamma += sum(dy * xhat), dbeta += sum(dy).
 * Each dx element depends on its own dy and on per-channel sums taken first,
 * so dx may alias dy (in place). */
static void bn_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                        dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  const bn_param *p = l->param;
  bn_priv *s = l->priv;
  const float *dy = dl_cdiff(top[0]); /* (outer x C x inner) */
  size_t inner = (size_t)s->inner;
  double m = (double)s->outer * (double)s->inner;
  const float *gamma = p->affine ? dl_cdata(l->params[BN_GAMMA]) : NULL;
  float *dgamma = p->affine ? dl_diff(l->params[BN_GAMMA]) : NULL;
  float *dbeta = p->affine ? dl_diff(l->params[BN_BETA]) : NULL;
  float *dx = propagate_down[0] ? dl_diff(bottom[0]) : NULL;
  for (int c = 0; c < s->C; c++) {
    double sum_dy = 0, sum_dy_xh = 0;
    for (int n = 0; n < s->outer; n++) {
      size_t off = ((size_t)n * s->C + c) * inner;
      for (size_t i = 0; i < inner; i++) {
        sum_dy += dy[off + i];
        sum_dy_xh += (double)dy[off + i] * s->xhat[off + i];
      }
    }
    float g = gamma ? gamma[c] : 1.0f;
    if (dgamma) {
      dgamma[c] += (float)sum_dy_xh;
      dbeta[c] += (float)sum_dy;
    }
    if (!dx) continue;
    float scale = g * s->inv_std[c];
    float mean_g = s->global ? 0.0f : (float)(sum_dy / m);
    float mean_gxh = s->global ? 0.0f : (float)(sum_dy_xh / m);
    for (int n = 0; n < s->outer; n++) {
      size_t off = ((size_t)n * s->C + c) * inner;
      for (size_t i = 0; i < inner; i++)
        dx[off + i] = scale * (dy[off + i] - mean_g - mean_gxh * s->xhat[off + i]);
    }
  }
}

static void bn_destroy(dl_layer *l) {
  bn_priv *s = l->priv;
  if (!s) return;
  free(s->mean);
  free(s->inv_std);
  free(s->xhat);
  free(s);
}

const dl_layer_ops dl_layer_batch_norm = {
    .type = "BatchNorm",
    .summary =
        "per-channel batch normalization (Caffe's); affine: true learns gamma/beta, or add a Scale",
    .schema = bn_schema,
    .param_size = sizeof(bn_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: N x C x ... (normalized per channel over every other axis)",
    .tops_doc = "y: same shape as x",
    .flags = DL_LAYER_IN_PLACE,
    .setup = bn_setup,
    .reshape = bn_reshape,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
};
