/* LRN (local response normalization, as Caffe): y = x * scale^-beta, where
 * scale = k + alpha/n * (sum of x^2 over n neighbouring channels) across
 * channels, or k + alpha/n^2 * (sum over an n x n spatial window, zero padded)
 * within each channel. */
#include <math.h>
#include <stdlib.h>

#include "core/layer.h"

enum { LRN_ACROSS, LRN_WITHIN };
static const char *const lrn_region_names[] = {"across_channels", "within_channel", NULL};

typedef struct {
  int local_size;
  float alpha, beta, k;
  int norm_region;
} lrn_param;

static const dl_param_spec lrn_schema[] = {
    DL_P_INT(lrn_param, local_size, "5", 1, 1000000,
             "window size n (odd): n channels across, or n x n pixels within a channel",
             "lrn_param { local_size }"),
    DL_P_FLOAT(lrn_param, alpha, "1", 0, 1e30,
               "scaling of the sum of squares (divided by n, or n^2)", "lrn_param { alpha }"),
    DL_P_FLOAT(lrn_param, beta, "0.75", -1e30, 1e30, "exponent: y = x * scale^-beta",
               "lrn_param { beta }"),
    DL_P_FLOAT(lrn_param, k, "1", 1e-30, 1e30,
               "constant added to the scale, in both regions (Caffe's within_channel ignores k and "
               "uses 1: the same at the default)",
               "lrn_param { k }"),
    DL_P_ENUM(lrn_param, norm_region, "across_channels", lrn_region_names,
              "across_channels: sum over neighbouring channels at one pixel; within_channel: "
              "over a spatial window in one channel",
              "lrn_param { norm_region }"),
    DL_SPEC_END};

typedef struct {
  int N, C, H, W;
  size_t plane; /* H * W */
  float *scale; /* (N x C x H x W) k + alpha/n * window sum, kept for backward */
  float *ratio; /* (max(C, 2) x H x W) across: dy * y / scale of one image;
                   within: that ratio and its box sum, one plane each */
  double *run;  /* (H x W) across: the running window sum */
  float *tmp;   /* (H x W) within: row sums of one plane */
  size_t cap_scale, cap_ratio, cap_run, cap_tmp; /* elements each buffer holds */
} lrn_priv;

static dl_status lrn_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                           int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const lrn_param *p = l->param;
  if (p->local_size % 2 == 0)
    return dl_layer_error(l, DL_ECONFIG,
                          "local_size must be odd (the window is centred), got %d; try %d",
                          p->local_size, p->local_size + 1);
  l->priv = dl_calloc(1, sizeof(lrn_priv));
  return l->priv ? DL_OK : DL_ENOMEM;
}

/* Returns a buffer of at least `need` elements of `size` bytes: `old` when it
 * is big enough, else a new one (contents not kept). Out of memory: frees
 * `old`, sets *cap to 0 and returns NULL. */
static void *regrow(void *old, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return old;
  free(old);
  void *b = dl_malloc(need * size);
  *cap = b ? need : 0;
  return b;
}

static dl_status lrn_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  lrn_priv *s = l->priv;
  if (bottom[0]->ndim != 4) {
    char buf[128];
    return dl_layer_error(l, DL_ECONFIG, "needs an N x C x H x W input (4 axes), got %s",
                          dl_blob_shape_str(bottom[0], buf, sizeof buf));
  }
  s->N = bottom[0]->shape[0];
  s->C = bottom[0]->shape[1];
  s->H = bottom[0]->shape[2];
  s->W = bottom[0]->shape[3];
  s->plane = (size_t)s->H * (size_t)s->W;
  size_t planes = s->C > 2 ? (size_t)s->C : 2;
  if (!(s->scale = regrow(s->scale, &s->cap_scale, bottom[0]->count, sizeof(float))) ||
      !(s->ratio = regrow(s->ratio, &s->cap_ratio, planes * s->plane, sizeof(float))) ||
      !(s->run = regrow(s->run, &s->cap_run, s->plane, sizeof(double))) ||
      !(s->tmp = regrow(s->tmp, &s->cap_tmp, s->plane, sizeof(float))))
    return DL_ENOMEM;
  return dl_blob_reshape_like(top[0], bottom[0]);
}

/* scale^-beta; AlexNet's 0.75 without pow(). */
static inline float pow_neg_beta(float scale, float beta) {
  if (beta == 0.75f) {
    float r = sqrtf(scale);
    return 1.0f / (r * sqrtf(r));
  }
  return powf(scale, -beta);
}

/* out (H x W) = sums of in over an n x n window centred on each pixel, zero
 * padded; separable: rows into tmp, then columns. */
static void box_sum(const float *in, float *tmp, float *out, int H, int W, int n) {
  int pad = (n - 1) / 2;
  for (int h = 0; h < H; h++) {
    const float *row = in + (size_t)h * W;
    for (int w = 0; w < W; w++) {
      int lo = w - pad < 0 ? 0 : w - pad, hi = w + pad >= W ? W - 1 : w + pad;
      float sum = 0;
      for (int j = lo; j <= hi; j++)
        sum += row[j];
      tmp[(size_t)h * W + w] = sum;
    }
  }
  for (int h = 0; h < H; h++) {
    int lo = h - pad < 0 ? 0 : h - pad, hi = h + pad >= H ? H - 1 : h + pad;
    float *o = out + (size_t)h * W;
    for (int w = 0; w < W; w++)
      o[w] = 0;
    for (int i = lo; i <= hi; i++)
      for (int w = 0; w < W; w++)
        o[w] += tmp[(size_t)i * W + w];
  }
}

/* Across channels, per image: the window sum for channel c is the one for c-1
 * plus the square entering at c+pad minus the one leaving at c-pad-1 (summed in
 * double so that C steps of add/subtract do not drift). */
static void across_forward(const lrn_param *p, lrn_priv *s, const float *x, float *y) {
  int C = s->C, pad = (p->local_size - 1) / 2;
  size_t P = s->plane;
  double a = (double)p->alpha / p->local_size;
  for (int n = 0; n < s->N; n++) {
    const float *xn = x + (size_t)n * C * P; /* (C x P) */
    float *yn = y + (size_t)n * C * P, *sn = s->scale + (size_t)n * C * P;
    for (size_t i = 0; i < P; i++)
      s->run[i] = 0;
    for (int c = 0; c < pad && c < C; c++)
      for (size_t i = 0; i < P; i++)
        s->run[i] += (double)xn[c * P + i] * xn[c * P + i];
    for (int c = 0; c < C; c++) {
      int head = c + pad, tail = c - pad - 1;
      if (head < C)
        for (size_t i = 0; i < P; i++)
          s->run[i] += (double)xn[head * P + i] * xn[head * P + i];
      if (tail >= 0)
        for (size_t i = 0; i < P; i++)
          s->run[i] -= (double)xn[tail * P + i] * xn[tail * P + i];
      for (size_t i = 0; i < P; i++) {
        float sc = (float)(p->k + a * s->run[i]);
        sn[c * P + i] = sc;
        yn[c * P + i] = xn[c * P + i] * pow_neg_beta(sc, p->beta);
      }
    }
  }
}

static void within_forward(const lrn_param *p, lrn_priv *s, const float *x, float *y) {
  size_t P = s->plane;
  float a = p->alpha / ((float)p->local_size * (float)p->local_size);
  for (size_t q = 0; q < (size_t)s->N * s->C; q++) {
    const float *xq = x + q * P;
    float *yq = y + q * P, *sq = s->scale + q * P;
    for (size_t i = 0; i < P; i++)
      s->ratio[i] = xq[i] * xq[i];
    box_sum(s->ratio, s->tmp, sq, s->H, s->W, p->local_size);
    for (size_t i = 0; i < P; i++) {
      sq[i] = p->k + a * sq[i];
      yq[i] = xq[i] * pow_neg_beta(sq[i], p->beta);
    }
  }
}

static dl_status lrn_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  const lrn_param *p = l->param;
  const float *x = dl_cdata(bottom[0]); /* (N x C x H x W) */
  float *y = dl_data(top[0]);           /* (N x C x H x W) */
  if (p->norm_region == LRN_ACROSS)
    across_forward(p, l->priv, x, y);
  else
    within_forward(p, l->priv, x, y);
  return DL_OK;
}

/* With s_i the scale of element i and W(i) its window (symmetric: j in W(i)
 * iff i in W(j)):
 *   dx_j = dy_j s_j^-beta - (2 alpha beta / m) x_j sum_{i in W(j)} dy_i y_i / s_i,
 * m = n across channels, n^2 within. The window sum of the ratios is again a
 * running sum across channels, a box sum within. */
static void across_backward(const lrn_param *p, lrn_priv *s, const float *x, const float *y,
                            const float *dy, float *dx) {
  int C = s->C, pad = (p->local_size - 1) / 2;
  size_t P = s->plane;
  float cache = 2.0f * p->alpha * p->beta / (float)p->local_size;
  for (int n = 0; n < s->N; n++) {
    size_t off = (size_t)n * C * P;
    const float *xn = x + off, *yn = y + off, *dyn = dy + off, *sn = s->scale + off;
    float *dxn = dx + off, *r = s->ratio; /* (C x P) */
    for (size_t i = 0; i < (size_t)C * P; i++)
      r[i] = dyn[i] * yn[i] / sn[i];
    for (size_t i = 0; i < P; i++)
      s->run[i] = 0;
    for (int c = 0; c < pad && c < C; c++)
      for (size_t i = 0; i < P; i++)
        s->run[i] += r[c * P + i];
    for (int c = 0; c < C; c++) {
      int head = c + pad, tail = c - pad - 1;
      if (head < C)
        for (size_t i = 0; i < P; i++)
          s->run[i] += r[head * P + i];
      if (tail >= 0)
        for (size_t i = 0; i < P; i++)
          s->run[i] -= r[tail * P + i];
      for (size_t i = 0; i < P; i++) {
        size_t e = c * P + i;
        dxn[e] = dyn[e] * pow_neg_beta(sn[e], p->beta) - cache * xn[e] * (float)s->run[i];
      }
    }
  }
}

static void within_backward(const lrn_param *p, lrn_priv *s, const float *x, const float *y,
                            const float *dy, float *dx) {
  size_t P = s->plane;
  float cache = 2.0f * p->alpha * p->beta / ((float)p->local_size * (float)p->local_size);
  float *r = s->ratio, *acc = s->ratio + P; /* (P) each */
  for (size_t q = 0; q < (size_t)s->N * s->C; q++) {
    size_t off = q * P;
    const float *xq = x + off, *yq = y + off, *dyq = dy + off, *sq = s->scale + off;
    float *dxq = dx + off;
    for (size_t i = 0; i < P; i++)
      r[i] = dyq[i] * yq[i] / sq[i];
    box_sum(r, s->tmp, acc, s->H, s->W, p->local_size);
    for (size_t i = 0; i < P; i++)
      dxq[i] = dyq[i] * pow_neg_beta(sq[i], p->beta) - cache * xq[i] * acc[i];
  }
}

static void lrn_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                         dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const lrn_param *p = l->param;
  const float *x = dl_cdata(bottom[0]), *y = dl_cdata(top[0]), *dy = dl_cdiff(top[0]);
  float *dx = dl_diff(bottom[0]);
  if (p->norm_region == LRN_ACROSS)
    across_backward(p, l->priv, x, y, dy, dx);
  else
    within_backward(p, l->priv, x, y, dy, dx);
}

static void lrn_destroy(dl_layer *l) {
  lrn_priv *s = l->priv;
  if (!s) return;
  free(s->scale), free(s->ratio), free(s->run), free(s->tmp);
  free(s);
}

const dl_layer_ops dl_layer_lrn = {
    .type = "LRN",
    .summary = "local response normalization across channels or within a channel (AlexNet)",
    .schema = lrn_schema,
    .param_size = sizeof(lrn_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: N x C x H x W",
    .tops_doc = "y: same shape as x",
    .setup = lrn_setup,
    .reshape = lrn_reshape,
    .forward = lrn_forward,
    .backward = lrn_backward,
    .destroy = lrn_destroy,
};
