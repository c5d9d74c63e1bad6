/* Convolution with Caffe's semantics, as im2col + GEMM. Several images share one
 * GEMM (their columns side by side), because LeNet-sized per-image matrices
 * (50 x 64 x 500) are too thin to keep BLAS busy. This is the readable
 * reference; `engine: onednn` runs the same layer on oneDNN's primitives
 * (layers/conv_onednn.c); `engine: auto` (the default) takes oneDNN when the
 * build has it, and `engine: fastest` times both at reshape. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/filler.h"
#include "core/layer.h"
#include "core/math.h"
#include "core/parallel.h"
#include "layers/conv.h"
#include "layers/conv_onednn.h"

enum { ENGINE_AUTO, ENGINE_NATIVE, ENGINE_ONEDNN, ENGINE_FASTEST };
static const char *const engine_names[] = {"auto", "native", "onednn", "fastest", NULL};

typedef struct {
  int num_output;
  dl_ints kernel_size, stride, pad, dilation;
  int group;
  int bias_term;
  dl_filler weight_filler, bias_filler;
  int gemm_images;
  int engine;
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
             "images per GEMM (a speed knob; results do not change); 0: the whole batch when "
             "its column buffer fits 16 MiB, else as many as fit 4 MiB (native engine)",
             "(none)"),
    DL_P_ENUM(conv_param, engine, "auto", engine_names,
              "what computes it: native (im2col + BLAS, the reference), onednn (oneDNN's CPU "
              "primitives; needs a build with libdnnl), auto (onednn when the build has it and "
              "it can run the layer, else native: the same choice on every run, so runs repeat "
              "bit for bit and resume exactly), or fastest (the faster of the two on this "
              "layer's shapes, timed once at setup and logged; two runs may then choose "
              "differently and differ in the last bits)",
              "convolution_param { engine }"),
    DL_SPEC_END};

/* Column buffer sizes, in floats. Up to CONV_KEEP_BUDGET the whole batch goes
 * in one block, and backward reuses forward's columns instead of running
 * im2col again (a quarter of LeNet's conv time). Larger batches go in blocks
 * of CONV_COL_BUDGET: thousands of GEMM columns, still within the L3 cache. */
#define CONV_KEEP_BUDGET ((size_t)4 << 20)
#define CONV_COL_BUDGET  ((size_t)1 << 20)

/* Everything im2col needs; sizes of one image. */
typedef struct {
  int c, h, w;        /* input channels and size */
  int kh, kw, sh, sw; /* kernel, stride */
  int ph, pw, dh, dw; /* pad, dilation */
  int oh, ow;         /* output size */
} conv_geom;

/* engine: fastest's measurements of one layer's shapes (see choose_engine). */
enum { T_FWD, T_BWD, T_BWD_DX, T_PARTS }; /* forward, backward without dx, with dx */
typedef struct {
  dl_conv_desc d; /* the shapes timed: d.n is the timing batch */
  int threads, phase, batch;
  double ms[3][T_PARTS]; /* by engine */
} auto_times;

typedef struct {
  conv_geom g;
  int n, m;    /* images, output channels */
  int block;   /* images per GEMM */
  size_t kdim; /* c * kh * kw: rows of the column buffer */
  size_t ohw;  /* oh * ow */
  size_t img;  /* c * h * w: floats in one input image */
  size_t ncol, ntmp;
  float *col;          /* (kdim, block * ohw): im2col of a block of images */
  float *tmp;          /* (m, block * ohw): GEMM result, or the gathered top diff */
  int col_is_batch;    /* forward left the whole batch's im2col in col, for backward */
  int engine;          /* ENGINE_NATIVE or ENGINE_ONEDNN, once reshape has chosen */
  dl_conv_onednn *dnn; /* the oneDNN engine's primitives, when it runs */
  int pending;         /* fastest: both engines ready until the first backward picks by dx */
  auto_times times;    /* fastest: what the choice was made on */
  dl_conv_cudnn *cudnn; /* the GPU twin's state (layers/conv.cu) */
} conv_priv;

/* ---- small vector loops ------------------------------------------------- */

/* Rows are short (LeNet's are 8 and 24 floats), so a call per row would cost
 * more than the copy, and GCC turns plain copy loops into memmove calls.
 * Fixed-size memcpy is inlined as vector moves: whole chunks of 8, then one
 * overlapping chunk for the rest (d and s never overlap each other). */
static inline void copy_floats(float *restrict d, const float *restrict s, int n) {
  if (n >= 8) {
    int k = 0;
    for (; k + 8 <= n; k += 8)
      memcpy(d + k, s + k, 8 * sizeof(float));
    if (k < n) memcpy(d + n - 8, s + n - 8, 8 * sizeof(float));
  } else if (n >= 4) {
    memcpy(d, s, 4 * sizeof(float));
    memcpy(d + n - 4, s + n - 4, 4 * sizeof(float));
  } else {
    if (n > 0) d[0] = s[0];
    if (n > 1) d[1] = s[1];
    if (n > 2) d[2] = s[2];
  }
}

/* The loops below work in chunks of 8 that -O2 vectorizes; its cost model
 * skips plain loops of unknown length. */
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

/* One kernel tap (i, j): output row oy reads input row oy*sh + yoff, which is
 * inside [0, h) exactly for oy in [y0, y1); columns likewise with xoff and
 * [x0, x1). Outside those ranges the tap reads padding. */
typedef struct {
  int yoff, y0, y1, xoff, x0, x1;
} conv_tap;

/* [*lo, *hi) = {o in [0, out) : 0 <= o*stride + off < in}. */
static void valid_range(int off, int stride, int in, int out, int *lo, int *hi) {
  int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int b = off > in - 1 ? 0 : (in - 1 - off) / stride + 1;
  *lo = a < out ? a : out;
  *hi = b < out ? b : out;
  if (*hi < *lo) *hi = *lo;
}

static conv_tap make_tap(const conv_geom *g, int i, int j) {
  conv_tap t = {i * g->dh - g->ph, 0, 0, j * g->dw - g->pw, 0, 0};
  valid_range(t.yoff, g->sh, g->h, g->oh, &t.y0, &t.y1);
  valid_range(t.xoff, g->sw, g->w, g->ow, &t.x0, &t.x1);
  return t;
}

/* One output row of a tap: r[ox] = xr[ox*sw + xoff], zero in the padding. */
static inline void im2col_row(const conv_geom *g, const conv_tap *t, const float *xr, float *r) {
  int n = t->x1 - t->x0;
  const float *s = xr + t->x0 * g->sw + t->xoff; /* first input column read */
  if (t->x0 > 0) memset(r, 0, (size_t)t->x0 * sizeof(float));
  if (g->sw == 1)
    copy_floats(r + t->x0, s, n);
  else
    for (int k = 0; k < n; k++)
      r[t->x0 + k] = s[k * g->sw];
  if (t->x1 < g->ow) memset(r + t->x1, 0, (size_t)(g->ow - t->x1) * sizeof(float));
}

/* dst[oy][ox] = xc[oy*sh + yoff][ox*sw + xoff] for one image channel xc (h, w),
 * zero in the padding. Padding rows are cleared in bulk, so the loop over
 * valid rows has no bounds checks. */
static void im2col_tap(const conv_geom *g, const conv_tap *t, const float *xc, float *dst) {
  size_t ow = (size_t)g->ow;
  if (t->y1 <= t->y0 || t->x1 <= t->x0) {
    memset(dst, 0, (size_t)g->oh * ow * sizeof(float));
    return;
  }
  if (t->y0 > 0) memset(dst, 0, (size_t)t->y0 * ow * sizeof(float));
  if (t->y1 < g->oh) memset(dst + t->y1 * ow, 0, (size_t)(g->oh - t->y1) * ow * sizeof(float));
  if (g->sh == 1 && g->sw == 1 && g->ow == g->w && t->xoff == 0) { /* rows are contiguous */
    memcpy(dst + t->y0 * ow, xc + (size_t)(t->y0 + t->yoff) * g->w,
           (size_t)(t->y1 - t->y0) * ow * sizeof(float));
    return;
  }
  if (g->sw == 1 && t->x0 == 0 && t->x1 == g->ow) { /* no padding on this tap's columns */
    for (int oy = t->y0; oy < t->y1; oy++)
      copy_floats(dst + oy * ow, xc + (size_t)(oy * g->sh + t->yoff) * g->w + t->xoff, g->ow);
    return;
  }
  for (int oy = t->y0; oy < t->y1; oy++)
    im2col_row(g, t, xc + (size_t)(oy * g->sh + t->yoff) * g->w, dst + oy * ow);
}

/* The adjoint of im2col_tap: dxc[oy*sh + yoff][ox*sw + xoff] += src[oy][ox]. */
static void col2im_tap(const conv_geom *g, const conv_tap *t, const float *src, float *dxc) {
  int n = t->x1 - t->x0;
  for (int oy = t->y0; oy < t->y1; oy++) {
    const float *s = src + (size_t)oy * g->ow + t->x0;                                /* (n) */
    float *d = dxc + (size_t)(oy * g->sh + t->yoff) * g->w + t->x0 * g->sw + t->xoff; /* (n*sw) */
    if (g->sw == 1)
      add_floats(d, s, n);
    else
      for (int k = 0; k < n; k++)
        d[k * g->sw] += s[k];
  }
}

/* For nb images x side by side:
 *   col[(ci*kh + i)*kw + j][b*oh*ow + oy*ow + ox] = x[b][ci][oy*sh - ph + i*dh][ox*sw - pw + j*dw]
 * (zero in the padding). Taps outermost, images inside: a tap's ranges are
 * worked out once, and the planes it reads stay in cache for the next tap. */
/* The images of one job are cut between the threads: rows of different
 * images never overlap, in col or in dx. */
typedef struct {
  const conv_geom *g;
  const float *x; /* im2col: the block's images; col2im: the columns */
  float *out;     /* im2col: the columns; col2im: dx of the block's images */
  int nb;
} cols_job;

static void im2col_images(void *arg, int b0, int b1) {
  const cols_job *j = arg;
  const conv_geom *g = j->g;
  size_t plane = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  float *row = j->out; /* (nb * ohw): row (ci, i, j) */
  for (int ci = 0; ci < g->c; ci++)
    for (int i = 0; i < g->kh; i++)
      for (int k = 0; k < g->kw; k++, row += (size_t)j->nb * ohw) {
        conv_tap t = make_tap(g, i, k);
        for (int b = b0; b < b1; b++)
          im2col_tap(g, &t, j->x + ((size_t)b * g->c + ci) * plane, row + b * ohw);
      }
}

static void im2col(const conv_geom *g, const float *x, int nb, float *col) {
  cols_job j = {g, x, col, nb};
  dl_parallel_for(nb, 1, im2col_images, &j);
}

static void col2im_images(void *arg, int b0, int b1) {
  const cols_job *j = arg;
  const conv_geom *g = j->g;
  size_t plane = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
  memset(j->out + (size_t)b0 * g->c * plane, 0, (size_t)(b1 - b0) * g->c * plane * sizeof(float));
  const float *row = j->x; /* (nb * ohw): row (ci, i, j) */
  for (int ci = 0; ci < g->c; ci++)
    for (int i = 0; i < g->kh; i++)
      for (int k = 0; k < g->kw; k++, row += (size_t)j->nb * ohw) {
        conv_tap t = make_tap(g, i, k);
        for (int b = b0; b < b1; b++)
          col2im_tap(g, &t, row + b * ohw, j->out + ((size_t)b * g->c + ci) * plane);
      }
}

/* dx = col2im(col) (overwritten), the adjoint of im2col; same layouts. */
static void col2im(const conv_geom *g, const float *col, int nb, float *dx) {
  cols_job j = {g, col, dx, nb};
  dl_parallel_for(nb, 1, col2im_images, &j);
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
  const conv_param *p = l->param;
  conv_priv *s = dl_calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  dl_status st = read_geometry(l, &s->g);
  if (!st) st = check_input(l, bottom[0]);
  if (!st && p->engine == ENGINE_ONEDNN && !dl_onednn_available())
    return dl_layer_error(l, DL_ECONFIG,
                          "engine: onednn: this dltrain was built without oneDNN (libdnnl); "
                          "install libdnnl-dev (scripts/setup.sh) and rebuild (make ONEDNN=1), "
                          "or use engine: native or auto");
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
  if (!b && per_image * (size_t)s->n <= CONV_KEEP_BUDGET) b = (size_t)s->n;
  if (!b) b = per_image >= CONV_COL_BUDGET ? 1 : CONV_COL_BUDGET / per_image;
  return b < (size_t)s->n ? (int)b : s->n;
}

/* tmp_g = W_g * col_g for each group g: tmp is (m, cols), W (m, kdim / group). */
static void gemm_forward(const conv_priv *s, int group, const float *w, size_t cols) {
  int mg = s->m / group, kg = (int)s->kdim / group;
  for (int g = 0; g < group; g++)
    dl_gemm(0, 0, mg, (int)cols, kg, 1, w + (size_t)g * mg * kg, s->col + g * kg * cols, 0,
            s->tmp + g * mg * cols);
}

/* y[n0 + b][o][:] = tmp[o][b*ohw :] + bias[o]; bias may be NULL. */
typedef struct {
  const conv_priv *s;
  const float *bias;
  const float *dy;
  float *y;
  int n0, nb;
} top_job;

static void scatter_images(void *arg, int b0, int b1) {
  const top_job *j = arg;
  const conv_priv *s = j->s;
  const float *bias = j->bias;
  int n0 = j->n0;
  float *y = j->y;
  size_t cols = (size_t)j->nb * s->ohw;
  for (int b = b0; b < b1; b++)
    for (int o = 0; o < s->m; o++) {
      const float *src = s->tmp + o * cols + b * s->ohw;       /* (ohw) */
      float *dst = y + ((size_t)(n0 + b) * s->m + o) * s->ohw; /* (ohw) */
      copy_plus(dst, src, (int)s->ohw, bias ? bias[o] : 0);
    }
}

static void scatter_top(const conv_priv *s, const float *bias, int n0, int nb, float *y) {
  top_job j = {s, bias, NULL, y, n0, nb};
  dl_parallel_for(nb, 4, scatter_images, &j);
}

/* y = conv(x, w) + bias (bias NULL: none), block by block. */
static void native_forward(const conv_param *p, conv_priv *s, const float *x, const float *w,
                           const float *bias, float *y) {
  for (int n0 = 0; n0 < s->n; n0 += s->block) {
    int nblk = s->n - n0 < s->block ? s->n - n0 : s->block;
    im2col(&s->g, x + n0 * s->img, nblk, s->col);
    gemm_forward(s, p->group, w, (size_t)nblk * s->ohw);
    scatter_top(s, bias, n0, nblk, y);
  }
  s->col_is_batch = s->block >= s->n;
}

/* ---- backward ----------------------------------------------------------- */

/* tmp[o][b*ohw :] = dy[n0 + b][o][:], the inverse of scatter_top. */
static void gather_images(void *arg, int b0, int b1) {
  const top_job *j = arg;
  const conv_priv *s = j->s;
  size_t cols = (size_t)j->nb * s->ohw;
  for (int b = b0; b < b1; b++)
    for (int o = 0; o < s->m; o++)
      memcpy(s->tmp + o * cols + b * s->ohw, j->dy + ((size_t)(j->n0 + b) * s->m + o) * s->ohw,
             s->ohw * sizeof(float));
}

static void gather_top_diff(const conv_priv *s, const float *dy, int n0, int nb) {
  top_job j = {s, NULL, dy, NULL, n0, nb};
  dl_parallel_for(nb, 4, gather_images, &j);
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
  col2im(&s->g, s->col, nb, dx + n0 * s->img);
}

/* With y = W * col(x) + b per image:
 *   dW += dy * col(x)^T,  db += sum over positions of dy,  dx = col2im(W^T * dy).
 * col(x) comes from forward when it held the whole batch (bottoms do not change
 * between a layer's forward and backward), else it is rebuilt block by block.
 * Computing dx overwrites col, so a second backward rebuilds it. db and dx may
 * be NULL. */
static void native_backward(const conv_param *p, conv_priv *s, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db) {
  int have_col = s->col_is_batch;
  s->col_is_batch &= !dx;
  for (int n0 = 0; n0 < s->n; n0 += s->block) {
    int nblk = s->n - n0 < s->block ? s->n - n0 : s->block;
    size_t cols = (size_t)nblk * s->ohw;
    gather_top_diff(s, dy, n0, nblk);
    if (db) bias_grad(s, cols, db);
    if (!have_col) im2col(&s->g, x + n0 * s->img, nblk, s->col);
    weight_grad(s, p->group, cols, dw);
    if (dx) bottom_grad(s, p->group, w, n0, nblk, dx);
  }
}

/* ---- reshape: sizes, buffers and the engine ------------------------------ */

static dl_status native_reshape(const conv_param *p, conv_priv *s) {
  s->block = pick_block(s, p->gemm_images);
  size_t cols = (size_t)s->block * s->ohw;
  dl_status st = grow(&s->col, &s->ncol, s->kdim * cols);
  if (!st) st = grow(&s->tmp, &s->ntmp, (size_t)s->m * cols);
  s->col_is_batch = 0;
  return st;
}

static void native_release(conv_priv *s) {
  free(s->col);
  free(s->tmp);
  s->col = s->tmp = NULL;
  s->ncol = s->ntmp = 0;
  s->col_is_batch = 0;
}

static dl_conv_desc describe(const conv_param *p, const conv_priv *s) {
  const conv_geom *g = &s->g;
  return (dl_conv_desc){.n = s->n,
                        .c = g->c,
                        .h = g->h,
                        .w = g->w,
                        .m = s->m,
                        .oh = g->oh,
                        .ow = g->ow,
                        .kh = g->kh,
                        .kw = g->kw,
                        .sh = g->sh,
                        .sw = g->sw,
                        .ph = g->ph,
                        .pw = g->pw,
                        .dh = g->dh,
                        .dw = g->dw,
                        .group = p->group,
                        .bias = p->bias_term};
}

static double conv_flops(const dl_layer *l) {
  const conv_param *p = l->param;
  const conv_priv *s = l->priv;
  return 2.0 * s->n * s->m * (double)s->ohw * (double)s->kdim / p->group;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- engine: fastest --------------------------------------------------------
 * At reshape both engines run this layer's shapes on scratch arrays. A big
 * batch is timed on fewer images (as many as make AUTO_FLOPS of forward, at
 * least four per thread, at most AUTO_IMAGES), so that setup stays short. Up
 * to three rounds alternate the engines and keep the best time of each part;
 * the timing stops after a round once the engines differ clearly (the first
 * round also pays for first touches of the buffers). The test phase compares
 * forwards. The train phase compares forward + backward with the bottom diff
 * and without it, since a net's first convolution computes none and oneDNN's
 * bottom diff is slow for one to three input channels; when the two disagree,
 * both engines stay ready until the first backward shows which applies. The
 * choice is logged, and the times kept for the process by shapes, phase and
 * threads: a net built again, or a test net's layer of the same shapes, reuses
 * them. */

#define AUTO_IMAGES 64
#define AUTO_FLOPS  1e9

#define AUTO_CACHE 64
static auto_times auto_cache[AUTO_CACHE];
static int auto_ncache;

static const auto_times *auto_find(const dl_conv_desc *d, int phase, int batch) {
  for (int i = 0; i < auto_ncache && i < AUTO_CACHE; i++) {
    const auto_times *c = &auto_cache[i];
    if (c->threads == dl_get_threads() && c->phase == phase && c->batch == batch &&
        !memcmp(&c->d, d, sizeof *d))
      return c;
  }
  return NULL;
}

/* The faster engine with or without dx, and the two times in ms. */
static int faster(const auto_times *c, int dx, double *ms_native, double *ms_onednn) {
  double t[3];
  for (int e = ENGINE_NATIVE; e <= ENGINE_ONEDNN; e++)
    t[e] =
        c->phase == DL_TEST ? c->ms[e][T_FWD] : c->ms[e][T_FWD] + c->ms[e][dx ? T_BWD_DX : T_BWD];
  *ms_native = t[ENGINE_NATIVE], *ms_onednn = t[ENGINE_ONEDNN];
  return t[ENGINE_ONEDNN] < t[ENGINE_NATIVE] ? ENGINE_ONEDNN : ENGINE_NATIVE;
}

static void log_choice(const dl_layer *l, const auto_times *c, int dx, int again) {
  double t[3];
  int e = faster(c, dx, &t[ENGINE_NATIVE], &t[ENGINE_ONEDNN]);
  int other = e == ENGINE_ONEDNN ? ENGINE_NATIVE : ENGINE_ONEDNN;
  const dl_conv_desc *d = &c->d;
  fprintf(stderr,
          "layer '%s' (Convolution): engine %s (%.3g ms) vs %s (%.3g ms) per %s of %d x %d x %d "
          "x %d at %d thread%s%s\n",
          l->name, engine_names[e], t[e], engine_names[other], t[other],
          c->phase == DL_TEST ? "forward"
          : dx                ? "forward + backward"
                              : "forward + backward without the bottom diff",
          d->n, d->c, d->h, d->w, c->threads, c->threads > 1 ? "s" : "",
          again ? " (measured before)" : "");
}

/* Scratch arrays for timing. */
typedef struct {
  float *x, *y, *dy, *dx, *dw, *db;
} conv_scratch;

/* Seconds of one forward, or backward (dx: with the bottom diff), of an engine. */
static double time_part(dl_layer *l, int engine, int part, const conv_scratch *b) {
  const conv_param *p = l->param;
  conv_priv *s = l->priv;
  const float *w = dl_cdata(l->params[0]), *bias = p->bias_term ? dl_cdata(l->params[1]) : NULL;
  float *db = p->bias_term ? b->db : NULL, *dx = part == T_BWD_DX ? b->dx : NULL;
  double t0 = now();
  if (engine == ENGINE_ONEDNN && part == T_FWD)
    dl_conv_onednn_forward(s->dnn, b->x, w, bias, b->y);
  else if (engine == ENGINE_ONEDNN)
    dl_conv_onednn_backward(s->dnn, b->x, w, b->dy, dx, b->dw, db);
  else if (part == T_FWD)
    native_forward(p, s, b->x, w, bias, b->y);
  else
    native_backward(p, s, b->x, w, b->dy, dx, b->dw, db);
  return now() - t0;
}

/* Fills c->ms; both engines are ready for c->d. */
static dl_status time_engines(dl_layer *l, auto_times *c) {
  const conv_priv *s = l->priv;
  size_t nx = (size_t)c->d.n * s->img, ny = (size_t)c->d.n * s->m * s->ohw;
  conv_scratch b = {dl_calloc(nx, sizeof(float)),
                    dl_calloc(ny, sizeof(float)),
                    dl_calloc(ny, sizeof(float)),
                    dl_calloc(nx, sizeof(float)),
                    dl_calloc(l->params[0]->count, sizeof(float)),
                    dl_calloc((size_t)s->m, sizeof(float))};
  dl_status st = b.x && b.y && b.dy && b.dx && b.dw && b.db ? DL_OK : DL_ENOMEM;
  int parts = c->phase == DL_TEST ? 1 : T_PARTS;
  for (int e = 0; e < 3; e++)
    for (int k = 0; k < T_PARTS; k++)
      c->ms[e][k] = 1e30;
  static const double margin[3] = {1.5, 1.2, 0}; /* enough after round r */
  for (int round = 0; round < 3 && !st; round++) {
    for (int k = 0; k < 2; k++) {
      int e = (round + k) % 2 ? ENGINE_ONEDNN : ENGINE_NATIVE;
      for (int part = 0; part < parts; part++) {
        double ms = 1e3 * time_part(l, e, part, &b);
        if (ms < c->ms[e][part]) c->ms[e][part] = ms;
      }
    }
    double t[3], u[3];
    faster(c, 1, &t[ENGINE_NATIVE], &t[ENGINE_ONEDNN]);
    faster(c, 0, &u[ENGINE_NATIVE], &u[ENGINE_ONEDNN]);
    if (fmax(t[1], t[2]) >= margin[round] * fmin(t[1], t[2]) &&
        fmax(u[1], u[2]) >= margin[round] * fmin(u[1], u[2]))
      break;
  }
  free(b.x), free(b.y), free(b.dy), free(b.dx), free(b.dw), free(b.db);
  return st;
}

/* Sets s->engine for d, and s->pending when the choice depends on whether
 * backward computes the bottom diff. *ready: s->dnn is set up for d already. */
static dl_status choose_engine(dl_layer *l, const dl_conv_desc *d, int *ready) {
  const conv_param *p = l->param;
  conv_priv *s = l->priv;
  dl_conv_desc dt = *d;
  double image = conv_flops(l) / d->n; /* of one image's forward */
  int threads = dl_get_threads();
  dt.n = image * AUTO_IMAGES > AUTO_FLOPS ? (int)(AUTO_FLOPS / image) : AUTO_IMAGES;
  if (dt.n < 4 * threads) dt.n = 4 * threads; /* fixed costs (weights) stay a small share */
  if (dt.n > d->n) dt.n = d->n;
  const auto_times *c = auto_find(&dt, l->phase, d->n);
  int again = c != NULL;
  if (!c) {
    auto_times n = {dt, dl_get_threads(), l->phase, d->n, {{0}}};
    char err[256];
    s->n = dt.n;
    dl_status st = native_reshape(p, s);
    if (!st && dl_conv_onednn_reshape(&s->dnn, &dt, err, sizeof err)) {
      fprintf(stderr, "layer '%s' (Convolution): engine native (oneDNN cannot run it: %s)\n",
              l->name, err);
      s->n = d->n;
      s->engine = ENGINE_NATIVE;
      return DL_OK;
    }
    if (!st) st = time_engines(l, &n);
    s->n = d->n;
    if (st) return st;
    auto_times *slot = &auto_cache[auto_ncache++ % AUTO_CACHE];
    *slot = n;
    c = slot;
    *ready = dt.n == d->n;
  }
  double t[3];
  s->times = *c;
  s->engine = faster(c, 1, &t[1], &t[2]);
  s->pending = l->phase == DL_TRAIN && faster(c, 0, &t[1], &t[2]) != s->engine;
  if (!s->pending) log_choice(l, c, 1, again);
  return DL_OK;
}

/* fastest, at the first backward: the engine for this layer's propagate_down. */
static void settle_engine(dl_layer *l, int dx) {
  conv_priv *s = l->priv;
  double t[3];
  s->engine = faster(&s->times, dx, &t[1], &t[2]);
  log_choice(l, &s->times, dx, 0);
  s->pending = 0;
  if (s->engine == ENGINE_ONEDNN) {
    native_release(s);
  } else {
    dl_conv_onednn_free(s->dnn);
    s->dnn = NULL;
  }
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
  s->img = (size_t)s->g.c * s->g.h * s->g.w;
  dl_conv_desc d = describe(p, s);
  d.x_blocked = x->blocked, d.y_blocked = top[0]->blocked; /* set by the net: conv_blocked_ok */
  int ready = 0;
  s->engine = p->engine;
  s->pending = 0;
  char err[256] = "";
  if (s->engine == ENGINE_AUTO) { /* a fixed rule, never a timing: runs must repeat */
    s->engine = ENGINE_NATIVE;
    if (dl_onednn_available() && !dl_conv_onednn_reshape(&s->dnn, &d, err, sizeof err))
      s->engine = ENGINE_ONEDNN, ready = 1;
  }
  if ((d.x_blocked || d.y_blocked) && s->engine != ENGINE_ONEDNN) /* the net asked only oneDNN */
    return dl_layer_error(l, DL_EINTERNAL, "the blocked layout needs engine onednn: %s", err);
  if (s->engine == ENGINE_FASTEST && !dl_onednn_available()) s->engine = ENGINE_NATIVE;
  if (s->engine == ENGINE_FASTEST && (st = choose_engine(l, &d, &ready))) return st;
  if (s->engine == ENGINE_ONEDNN || s->pending) {
    if (!ready && (st = dl_conv_onednn_reshape(&s->dnn, &d, err, sizeof err)))
      return dl_layer_error(l, st, "engine: onednn: %s", err);
    dl_conv_onednn_forget(s->dnn);
  } else {
    dl_conv_onednn_free(s->dnn);
    s->dnn = NULL;
  }
  if (s->engine == ENGINE_NATIVE || s->pending) {
    if ((st = native_reshape(p, s))) return st;
  } else {
    native_release(s);
  }
  return dl_blob_reshape4(top[0], s->n, s->m, s->g.oh, s->g.ow);
}

static void conv_destroy(dl_layer *l) {
  conv_priv *s = l->priv;
  if (!s) return;
  dl_conv_onednn_free(s->dnn);
#ifdef DL_GPU
  dl_conv_cudnn_free(s->cudnn);
#endif
  free(s->col);
  free(s->tmp);
  free(s);
  l->priv = NULL;
}

dl_conv_desc dl_conv_layer_desc(const dl_layer *l) {
  const conv_priv *s = l->priv;
  return describe(l->param, s);
}

dl_conv_cudnn **dl_conv_layer_cudnn(dl_layer *l) { return &((conv_priv *)l->priv)->cudnn; }

const char *dl_conv_engine(const dl_layer *l) {
  const conv_priv *s = l->priv;
  return engine_names[s->engine];
}

/* The blocked layout (core/blob.h) for x and y: oneDNN's own on AVX-512, so
 * with it their reorders go (AlexNet-R, docs/benchmarks.md); the native
 * engine reads NCHW. Not with `fastest`, whose timing at a new reshape could
 * pick the native engine, nor with groups. */
static unsigned conv_blocked_ok(const dl_layer *l, dl_blob *const *bottom, int nb,
                                dl_blob *const *top, int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const conv_param *p = l->param;
  const conv_priv *s = l->priv;
  if (s->engine != ENGINE_ONEDNN || s->pending || p->engine == ENGINE_FASTEST || p->group != 1 ||
      !dl_onednn_blocks_of_16())
    return 0;
  return (s->g.c % DL_BLOCK ? 0u : DL_BLOCKED_BOTTOM) | (s->m % DL_BLOCK ? 0u : DL_BLOCKED_TOP);
}

/* ---- the layer's forward and backward: the engine's ------------------- */

static dl_status conv_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  const conv_param *p = l->param;
  conv_priv *s = l->priv;
  DL_ASSERT(bottom[0]->count == (size_t)s->n * s->g.c * s->g.h * s->g.w); /* reshape ran */
  const float *x = dl_cdata(bottom[0]);                                   /* (n, c, h, w) */
  const float *w = dl_cdata(l->params[0]);                          /* (m, c / group, kh, kw) */
  const float *bias = p->bias_term ? dl_cdata(l->params[1]) : NULL; /* (m) */
  float *y = dl_data(top[0]);                                       /* (n, m, oh, ow) */
  if (s->engine == ENGINE_ONEDNN)
    dl_conv_onednn_forward(s->dnn, x, w, bias, y);
  else
    native_forward(p, s, x, w, bias, y);
  return DL_OK;
}

static void conv_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                          dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  const conv_param *p = l->param;
  conv_priv *s = l->priv;
  const float *dy = dl_cdiff(top[0]);                        /* (n, m, oh, ow) */
  const float *x = dl_cdata(bottom[0]);                      /* (n, c, h, w) */
  const float *w = dl_cdata(l->params[0]);                   /* (m, c / group, kh, kw) */
  float *dw = dl_diff(l->params[0]);                         /* (m, c / group, kh, kw) */
  float *db = p->bias_term ? dl_diff(l->params[1]) : NULL;   /* (m) */
  float *dx = propagate_down[0] ? dl_diff(bottom[0]) : NULL; /* (n, c, h, w) */
  if (s->pending) settle_engine(l, dx != NULL);
  if (s->engine == ENGINE_ONEDNN)
    dl_conv_onednn_backward(s->dnn, x, w, dy, dx, dw, db);
  else
    native_backward(p, s, x, w, dy, dx, dw, db);
}

const dl_layer_ops dl_layer_conv = {
    .type = "Convolution",
    .summary = "2-d convolution (im2col + GEMM, or oneDNN) with stride, pad, dilation and groups",
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
    .flops = conv_flops,
    .blocked_ok = conv_blocked_ok,
#ifdef DL_GPU
    .forward_gpu = dl_conv_forward_gpu,
    .backward_gpu = dl_conv_backward_gpu,
#endif
};
