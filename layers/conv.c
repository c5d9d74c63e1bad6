/* Convolution with Caffe's semantics, as im2col + GEMM. Several images share one
 * GEMM (their columns side by side), because LeNet-sized per-image matrices
 * (50 x 64 x 500) are too thin to keep BLAS busy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/filler.h"
#include "core/layer.h"
#include "core/math.h"

typedef struct {
  int num_output;
  dl_ints kernel_size, stride, pad, dilation;
  int group;
  int bias_term;
  dl_filler weight_filler, bias_filler;
  int gemm_images;
} conv_param;

static const dl_param_spec conv_schema[] = {
    DL_P_INT(conv_param, num_output, NULL, 1, 1000000, "number of output channels (filters)",
             "convolution_param { num_output }"),
    DL_P_INTS(conv_param, kernel_size, NULL, 1, 65536, "filter size: k or [kh, kw]",
              "convolution_param { kernel_size | kernel_h, kernel_w }"),
    DL_P_INTS(conv_param, stride, "1", 1, 65536, "step between windows: s or [sh, sw]",
              "convolution_param { stride | stride_h, stride_w }"),
    DL_P_INTS(conv_param, pad, "0", 0, 65536, "zeros added on each side: p or [ph, pw]",
              "convolution_param { pad | pad_h, pad_w }"),
    DL_P_INTS(conv_param, dilation, "1", 1, 65536,
              "spacing between filter taps: d or [dh, dw] (1: dense filter)",
              "convolution_param { dilation }"),
    DL_P_INT(conv_param, group, "1", 1, 1000000,
             "independent channel groups; input channels and num_output must both divide by it",
             "convolution_param { group }"),
    DL_P_BOOL(conv_param, bias_term, "true", "learn a bias per output channel",
              "convolution_param { bias_term }"),
    DL_P_FILLER(conv_param, weight_filler, "{type: xavier}",
                "initial weights; default xavier (uniform +-sqrt(3 / fan_in)), unlike Caffe's "
                "constant 0, which cannot break the symmetry between filters",
                "convolution_param { weight_filler }"),
    DL_P_FILLER(conv_param, bias_filler, "{type: constant, value: 0}", "initial bias",
                "convolution_param { bias_filler }"),
    DL_P_INT(conv_param, gemm_images, "0", 0, 1000000,
             "images per GEMM (a speed knob; results do not change); 0: as many as fit a "
             "4 MiB column buffer",
             "(none)"),
    DL_SPEC_END};

/* The column buffer aims at this many floats: big enough that one GEMM has
 * thousands of columns, small enough to stay in the last-level cache. */
#define CONV_COL_BUDGET ((size_t)1 << 20)

/* Everything im2col needs; sizes of one image. */
typedef struct {
  int c, h, w;        /* input channels and size */
  int kh, kw, sh, sw; /* kernel, stride */
  int ph, pw, dh, dw; /* pad, dilation */
  int oh, ow;         /* output size */
} conv_geom;

typedef struct {
  conv_geom g;
  int n, m;    /* images, output channels */
  int block;   /* images per GEMM */
  size_t kdim; /* c * kh * kw: rows of the column buffer */
  size_t ohw;  /* oh * ow */
  size_t img;  /* c * h * w: floats in one input image */
  size_t ncol, ntmp;
  float *col; /* (kdim, block * ohw): im2col of a block of images */
  float *tmp; /* (m, block * ohw): GEMM result, or the gathered top diff */
} conv_priv;

/* ---- small vector loops ------------------------------------------------- */

/* Rows are short (LeNet's are 8 and 24 floats): these work in chunks of 8 that
 * -O2 vectorizes (its cost model skips plain loops of unknown length), with no
 * call per row as memcpy would cost. */
static inline void copy_floats(float *restrict d, const float *restrict s, int n) {
  int k = 0;
  for (; k + 8 <= n; k += 8)
    for (int q = 0; q < 8; q++)
      d[k + q] = s[k + q];
  for (; k < n; k++)
    d[k] = s[k];
}

static inline void add_floats(float *restrict d, const float *restrict s, int n) {
  int k = 0;
  for (; k + 8 <= n; k += 8)
    for (int q = 0; q < 8; q++)
      d[k + q] += s[k + q];
  for (; k < n; k++)
    d[k] += s[k];
}

static inline void copy_plus(float *restrict d, const float *restrict s, int n, float v) {
  int k = 0;
  for (; k + 8 <= n; k += 8)
    for (int q = 0; q < 8; q++)
      d[k + q] = s[k + q] + v;
  for (; k < n; k++)
    d[k] = s[k] + v;
}

/* Eight running sums, so the reduction vectorizes without -ffast-math. */
static inline float sum_floats(const float *s, size_t n) {
  float acc[8] = {0}, t = 0;
  size_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int q = 0; q < 8; q++)
      acc[q] += s[k + q];
  for (; k < n; k++)
    t += s[k];
  for (int q = 0; q < 8; q++)
    t += acc[q];
  return t;
}

/* ---- im2col / col2im ---------------------------------------------------- */

/* One kernel tap's input columns: output column ox reads input column
 * ox*sw + off, which lies inside [0, w) exactly for ox in [lo, hi). */
typedef struct {
  int off, lo, hi;
} conv_tap;

static conv_tap tap_cols(const conv_geom *g, int j) {
  conv_tap t = {j * g->dw - g->pw, 0, 0};
  int a = t.off >= 0 ? 0 : (-t.off + g->sw - 1) / g->sw;
  int b = t.off > g->w - 1 ? 0 : (g->w - 1 - t.off) / g->sw + 1;
  t.lo = a < g->ow ? a : g->ow;
  t.hi = b < g->ow ? b : g->ow;
  if (t.hi < t.lo) t.hi = t.lo;
  return t;
}

/* dst[oy][ox] = xc[oy*sh - ph + i*dh][ox*sw + t.off], zero in the padding. */
static void im2col_tap(const conv_geom *g, const float *xc, int i, conv_tap t, float *dst) {
  for (int oy = 0; oy < g->oh; oy++, dst += g->ow) {
    int iy = oy * g->sh - g->ph + i * g->dh;
    if (iy < 0 || iy >= g->h) {
      memset(dst, 0, (size_t)g->ow * sizeof(float));
      continue;
    }
    const float *src = xc + (size_t)iy * g->w; /* (w) */
    for (int ox = 0; ox < t.lo; ox++)
      dst[ox] = 0;
    if (g->sw == 1)
      copy_floats(dst + t.lo, src + t.lo + t.off, t.hi - t.lo);
    else
      for (int ox = t.lo; ox < t.hi; ox++)
        dst[ox] = src[ox * g->sw + t.off];
    for (int ox = t.hi; ox < g->ow; ox++)
      dst[ox] = 0;
  }
}

/* The adjoint of im2col_tap: dxc[...] += src[...] over the same index map. */
static void col2im_tap(const conv_geom *g, const float *src, int i, conv_tap t, float *dxc) {
  for (int oy = 0; oy < g->oh; oy++, src += g->ow) {
    int iy = oy * g->sh - g->ph + i * g->dh;
    if (iy < 0 || iy >= g->h) continue;
    float *dst = dxc + (size_t)iy * g->w; /* (w) */
    if (g->sw == 1)
      add_floats(dst + t.lo + t.off, src + t.lo, t.hi - t.lo);
    else
      for (int ox = t.lo; ox < t.hi; ox++)
        dst[ox * g->sw + t.off] += src[ox];
  }
}

/* For nb images x side by side:
 *   col[(ci*kh + i)*kw + j][b*oh*ow + oy*ow + ox] = x[b][ci][oy*sh - ph + i*dh][ox*sw - pw + j*dw]
 * (zero in the padding). Taps outermost, images inside: a tap's column range is
 * worked out once, and the planes it reads stay in cache for the next tap. */
static void im2col(const conv_geom *g, const float *x, int nb, float *col) {
  size_t plane = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  float *row = col; /* (nb * ohw): row (ci, i, j) */
  for (int ci = 0; ci < g->c; ci++)
    for (int i = 0; i < g->kh; i++)
      for (int j = 0; j < g->kw; j++) {
        conv_tap t = tap_cols(g, j);
        for (int b = 0; b < nb; b++, row += ohw)
          im2col_tap(g, x + ((size_t)b * g->c + ci) * plane, i, t, row);
      }
}

/* dx += col2im(col), the adjoint of im2col; same layouts. */
static void col2im(const conv_geom *g, const float *col, int nb, float *dx) {
  size_t plane = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  const float *row = col; /* (nb * ohw): row (ci, i, j) */
  for (int ci = 0; ci < g->c; ci++)
    for (int i = 0; i < g->kh; i++)
      for (int j = 0; j < g->kw; j++) {
        conv_tap t = tap_cols(g, j);
        for (int b = 0; b < nb; b++, row += ohw)
          col2im_tap(g, row, i, t, dx + ((size_t)b * g->c + ci) * plane);
      }
}

/* ---- setup and reshape -------------------------------------------------- */

/* A DL_P_INTS value of one int or a pair into (a, b). */
static dl_status pair(dl_layer *l, const char *key, const dl_ints *v, int *a, int *b) {
  if (v->n != 1 && v->n != 2)
    return dl_layer_error(l, DL_ECONFIG, "%s: expected one value or two [h, w], got %d", key, v->n);
  *a = v->v[0];
  *b = v->v[v->n - 1];
  return DL_OK;
}

static dl_status read_geometry(dl_layer *l, conv_geom *g) {
  const conv_param *p = l->param;
  dl_status st = pair(l, "kernel_size", &p->kernel_size, &g->kh, &g->kw);
  if (!st) st = pair(l, "stride", &p->stride, &g->sh, &g->sw);
  if (!st) st = pair(l, "pad", &p->pad, &g->ph, &g->pw);
  if (!st) st = pair(l, "dilation", &p->dilation, &g->dh, &g->dw);
  return st;
}

static dl_status check_input(dl_layer *l, const dl_blob *x) {
  char buf[128];
  if (x->ndim != 4)
    return dl_layer_error(l, DL_ECONFIG, "expects a 4-d input N x C x H x W, got %s",
                          dl_blob_shape_str(x, buf, sizeof buf));
  const conv_param *p = l->param;
  int c = x->shape[1];
  if (c % p->group || p->num_output % p->group)
    return dl_layer_error(l, DL_ECONFIG,
                          "group %d must divide both the input channels (%d) and num_output (%d)",
                          p->group, c, p->num_output);
  return DL_OK;
}

static dl_status add_params(dl_layer *l, int c) {
  const conv_param *p = l->param;
  const conv_priv *s = l->priv;
  dl_blob *w, *b;
  int wshape[4] = {p->num_output, c / p->group, s->g.kh, s->g.kw};
  dl_status st = dl_layer_add_param(l, "weight", 4, wshape, &w);
  if (st) return st;
  dl_rng rng;
  dl_layer_rng(l, 0, &rng);
  dl_fill(&p->weight_filler, w, &rng);
  if (!p->bias_term) return DL_OK;
  if ((st = dl_layer_add_param(l, "bias", 1, &p->num_output, &b))) return st;
  dl_layer_rng(l, 1, &rng);
  dl_fill(&p->bias_filler, b, &rng);
  return DL_OK;
}

static dl_status conv_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)top, (void)nt;
  conv_priv *s = dl_calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  dl_status st = read_geometry(l, &s->g);
  if (!st) st = check_input(l, bottom[0]);
  return st ? st : add_params(l, bottom[0]->shape[1]);
}

/* Output size along one axis; <= 0 when the dilated kernel does not fit. */
static int out_size(int in, int k, int s, int p, int d) {
  int room = in + 2 * p - (d * (k - 1) + 1);
  return room < 0 ? 0 : room / s + 1;
}

static dl_status size_output(dl_layer *l, conv_geom *g) {
  g->oh = out_size(g->h, g->kh, g->sh, g->ph, g->dh);
  g->ow = out_size(g->w, g->kw, g->sw, g->pw, g->dw);
  if (g->oh > 0 && g->ow > 0) return DL_OK;
  char dil[64] = "", pad[32];
  if (g->dh != 1 || g->dw != 1) snprintf(dil, sizeof dil, " and dilation %dx%d", g->dh, g->dw);
  if (g->ph == g->pw)
    snprintf(pad, sizeof pad, "%d", g->ph);
  else
    snprintf(pad, sizeof pad, "%dx%d", g->ph, g->pw);
  return dl_layer_error(l, DL_ECONFIG, "kernel %dx%d%s with pad %s does not fit input %dx%d", g->kh,
                        g->kw, dil, pad, g->h, g->w);
}

/* Grows *buf to hold n floats; contents are scratch, so no copy. */
static dl_status grow(float **buf, size_t *cap, size_t n) {
  if (n <= *cap) return DL_OK;
  free(*buf);
  *buf = dl_malloc(n * sizeof(float));
  *cap = *buf ? n : 0;
  return *buf ? DL_OK : DL_ENOMEM;
}

static int pick_block(const conv_priv *s, int requested) {
  size_t per_image = s->kdim * s->ohw, b = (size_t)requested;
  if (!b) b = per_image >= CONV_COL_BUDGET ? 1 : CONV_COL_BUDGET / per_image;
  return b < (size_t)s->n ? (int)b : s->n;
}

static dl_status conv_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  const conv_param *p = l->param;
  conv_priv *s = l->priv;
  dl_blob *x = bottom[0];
  dl_status st = check_input(l, x);
  if (st) return st;
  if (x->shape[1] != l->params[0]->shape[1] * p->group)
    return dl_layer_error(l, DL_ECONFIG, "input channels changed from %d to %d after setup",
                          l->params[0]->shape[1] * p->group, x->shape[1]);
  s->n = x->shape[0], s->m = p->num_output;
  s->g.c = x->shape[1], s->g.h = x->shape[2], s->g.w = x->shape[3];
  if ((st = size_output(l, &s->g))) return st;
  s->kdim = (size_t)s->g.c * s->g.kh * s->g.kw;
  s->ohw = (size_t)s->g.oh * s->g.ow;
  s->block = pick_block(s, p->gemm_images);
  size_t cols = (size_t)s->block * s->ohw;
  s->img = (size_t)s->g.c * s->g.h * s->g.w;
  if ((st = grow(&s->col, &s->ncol, s->kdim * cols))) return st;
  if ((st = grow(&s->tmp, &s->ntmp, (size_t)s->m * cols))) return st;
  return dl_blob_reshape4(top[0], s->n, s->m, s->g.oh, s->g.ow);
}

static void conv_destroy(dl_layer *l) {
  conv_priv *s = l->priv;
  if (!s) return;
  free(s->col);
  free(s->tmp);
  free(s);
  l->priv = NULL;
}

/* tmp_g = W_g * col_g for each group g: tmp is (m, cols), W (m, kdim / group). */
static void gemm_forward(const conv_priv *s, int group, const float *w, size_t cols) {
  int mg = s->m / group, kg = (int)s->kdim / group;
  for (int g = 0; g < group; g++)
    dl_gemm(0, 0, mg, (int)cols, kg, 1, w + (size_t)g * mg * kg, s->col + g * kg * cols, 0,
            s->tmp + g * mg * cols);
}

/* y[n0 + b][o][:] = tmp[o][b*ohw :] + bias[o]; bias may be NULL. */
static void scatter_top(const conv_priv *s, const float *bias, int n0, int nb, float *y) {
  size_t cols = (size_t)nb * s->ohw;
  for (int b = 0; b < nb; b++)
    for (int o = 0; o < s->m; o++) {
      const float *src = s->tmp + o * cols + b * s->ohw;       /* (ohw) */
      float *dst = y + ((size_t)(n0 + b) * s->m + o) * s->ohw; /* (ohw) */
      copy_plus(dst, src, (int)s->ohw, bias ? bias[o] : 0);
    }
}

static dl_status conv_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  const conv_param *p = l->param;
  const conv_priv *s = l->priv;
  DL_ASSERT(bottom[0]->count == (size_t)s->n * s->g.c * s->g.h * s->g.w); /* reshape ran */
  const float *x = dl_cdata(bottom[0]);                                   /* (n, c, h, w) */
  const float *w = dl_cdata(l->params[0]);                          /* (m, c / group, kh, kw) */
  const float *bias = p->bias_term ? dl_cdata(l->params[1]) : NULL; /* (m) */
  float *y = dl_data(top[0]);                                       /* (n, m, oh, ow) */
  for (int n0 = 0; n0 < s->n; n0 += s->block) {
    int nblk = s->n - n0 < s->block ? s->n - n0 : s->block;
    im2col(&s->g, x + n0 * s->img, nblk, s->col);
    gemm_forward(s, p->group, w, (size_t)nblk * s->ohw);
    scatter_top(s, bias, n0, nblk, y);
  }
  return DL_OK;
}

/* ---- backward ----------------------------------------------------------- */

/* tmp[o][b*ohw :] = dy[n0 + b][o][:], the inverse of scatter_top. */
static void gather_top_diff(const conv_priv *s, const float *dy, int n0, int nb) {
  size_t cols = (size_t)nb * s->ohw;
  for (int b = 0; b < nb; b++)
    for (int o = 0; o < s->m; o++)
      memcpy(s->tmp + o * cols + b * s->ohw, dy + ((size_t)(n0 + b) * s->m + o) * s->ohw,
             s->ohw * sizeof(float));
}

/* dbias[o] += sum of row o of tmp (m, cols). */
static void bias_grad(const conv_priv *s, size_t cols, float *db) {
  for (int o = 0; o < s->m; o++) {
    const float *r = s->tmp + o * cols;
    db[o] += sum_floats(r, cols);
  }
}

/* Per group: dW_g += dY_g * col_g^T, with dY_g = tmp rows of group g. */
static void weight_grad(const conv_priv *s, int group, size_t cols, float *dw) {
  int mg = s->m / group, kg = (int)s->kdim / group;
  for (int g = 0; g < group; g++)
    dl_gemm(0, 1, mg, kg, (int)cols, 1, s->tmp + g * mg * cols, s->col + g * kg * cols, 1,
            dw + (size_t)g * mg * kg);
}

/* dcol_g = W_g^T * dY_g into col, then dx = col2im(dcol) for the block (overwritten). */
static void bottom_grad(const conv_priv *s, int group, const float *w, int n0, int nb, float *dx) {
  int mg = s->m / group, kg = (int)s->kdim / group;
  size_t cols = (size_t)nb * s->ohw;
  for (int g = 0; g < group; g++)
    dl_gemm(1, 0, kg, (int)cols, mg, 1, w + (size_t)g * mg * kg, s->tmp + g * mg * cols, 0,
            s->col + g * kg * cols);
  memset(dx + n0 * s->img, 0, (size_t)nb * s->img * sizeof(float));
  col2im(&s->g, s->col, nb, dx + n0 * s->img);
}

/* With y = W * col(x) + b per image:
 *   dW += dy * col(x)^T,  db += sum over positions of dy,  dx = col2im(W^T * dy).
 * col(x) is rebuilt here rather than kept from forward, so memory stays one block. */
static void conv_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                          dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  const conv_param *p = l->param;
  const conv_priv *s = l->priv;
  const float *dy = dl_cdiff(top[0]);                        /* (n, m, oh, ow) */
  const float *x = dl_cdata(bottom[0]);                      /* (n, c, h, w) */
  const float *w = dl_cdata(l->params[0]);                   /* (m, c / group, kh, kw) */
  float *dw = dl_diff(l->params[0]);                         /* (m, c / group, kh, kw) */
  float *db = p->bias_term ? dl_diff(l->params[1]) : NULL;   /* (m) */
  float *dx = propagate_down[0] ? dl_diff(bottom[0]) : NULL; /* (n, c, h, w) */
  for (int n0 = 0; n0 < s->n; n0 += s->block) {
    int nblk = s->n - n0 < s->block ? s->n - n0 : s->block;
    size_t cols = (size_t)nblk * s->ohw;
    gather_top_diff(s, dy, n0, nblk);
    if (db) bias_grad(s, cols, db);
    im2col(&s->g, x + n0 * s->img, nblk, s->col);
    weight_grad(s, p->group, cols, dw);
    if (dx) bottom_grad(s, p->group, w, n0, nblk, dx);
  }
}

const dl_layer_ops dl_layer_conv = {
    .type = "Convolution",
    .summary = "2-d convolution (im2col + GEMM) with stride, pad, dilation and groups",
    .schema = conv_schema,
    .param_size = sizeof(conv_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: N x C x H x W",
    .tops_doc = "y: N x num_output x H' x W', H' = (H + 2 pad - (dilation (kernel - 1) + 1)) / "
                "stride + 1",
    .setup = conv_setup,
    .reshape = conv_reshape,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
};
