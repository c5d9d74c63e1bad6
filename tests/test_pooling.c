/* Pooling: hand-computed max and average (with Caffe's padded divisor), output
 * sizes in ceil and floor mode, global pooling, a reference by brute force,
 * gradient checks, config errors. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/math.h"
#include "core/rng.h"
#include "layers/pooling.h"
#include "tests/testutil.h"

/* Builds a pooling layer on x (shape n x c x h x w, values set by the caller). */
static dl_layer *pool_layer(const char *yaml, dl_blob *x, dl_blob *y) {
  return dl_test_layer(yaml, &x, 1, &y, 1);
}

static dl_blob *blob4(int n, int c, int h, int w, const float *v) {
  dl_blob *b = dl_test_blob("x", 4, (int[]){n, c, h, w}, -1, 1, 4);
  if (v) memcpy(dl_data(b), v, b->count * sizeof(float));
  return b;
}

static int imin_(int a, int b) { return a < b ? a : b; }
static int imax_(int a, int b) { return a > b ? a : b; }

static void expect_shape(const dl_blob *y, int n, int c, int h, int w) {
  ck_assert_int_eq(y->ndim, 4);
  ck_assert_msg(y->shape[0] == n && y->shape[1] == c && y->shape[2] == h && y->shape[3] == w,
                "top is %d x %d x %d x %d, want %d x %d x %d x %d", y->shape[0], y->shape[1],
                y->shape[2], y->shape[3], n, c, h, w);
}

START_TEST(pool_max_hand) {
  const float in[16] = {1, 2, 5, 3, /**/ 4, 0, 1, 1, /**/ -1, -2, 7, 8, /**/ -3, -4, 9, 6};
  dl_blob *x = blob4(1, 1, 4, 4, in), *y = dl_blob_new("y");
  dl_layer *l = pool_layer("{name: p, type: Pooling, kernel_size: 2, stride: 2}", x, y);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  expect_shape(y, 1, 1, 2, 2);
  dl_check_close(dl_cdata(y), (const float[]){4, 5, -1, 9}, 4, 0, "y");
  /* Backward sends each gradient to its window's max and nowhere else. */
  memcpy(dl_diff(y), (const float[]){10, 20, 30, 40}, 4 * sizeof(float));
  dl_set(x->count, 5, dl_diff(x));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  const float want[16] = {0, 0, 20, 0, /**/ 10, 0, 0, 0, /**/ 30, 0, 0, 0, /**/ 0, 0, 40, 0};
  dl_check_close(dl_cdiff(x), want, 16, 0, "dx");
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(pool_max_overlap_backward) {
  /* 3x3 windows with stride 1 on a 4x4 input: the 9 is the max of all four
   * windows, so it collects all four gradients. */
  const float in[16] = {0, 1, 2, 3, /**/ 4, 9, 5, 6, /**/ 7, 8, 1, 2, /**/ 3, 4, 5, 6};
  dl_blob *x = blob4(1, 1, 4, 4, in), *y = dl_blob_new("y");
  dl_layer *l = pool_layer("{name: p, type: Pooling, kernel_size: 3}", x, y);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  expect_shape(y, 1, 1, 2, 2);
  dl_check_close(dl_cdata(y), (const float[]){9, 9, 9, 9}, 4, 0, "y");
  memcpy(dl_diff(y), (const float[]){1, 2, 3, 4}, 4 * sizeof(float));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  ck_assert_float_eq(dl_cdiff(x)[5], 10);
  ck_assert_float_eq(dl_asum(16, dl_cdiff(x)), 10);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(pool_ave_pad_divisor) {
  /* Ones, kernel 3, stride 2, pad 1, ceil: 3x3 output. Windows start at -1, 1, 3;
   * the last spans rows 3..4 of the padded input (size 2), so the divisor is
   * the window clipped to the padded input, while only real pixels are summed:
   *   (0,0): 2x2 real / 3x3 = 4/9, (0,2): 2x1 real / (3x2) = 1/3, (2,2): 1/4. */
  dl_blob *x = blob4(1, 1, 4, 4, NULL), *y = dl_blob_new("y");
  dl_set(x->count, 1, dl_data(x));
  dl_layer *l =
      pool_layer("{name: p, type: Pooling, pool: ave, kernel_size: 3, stride: 2, pad: 1}", x, y);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  expect_shape(y, 1, 1, 3, 3);
  const float want[9] = {4.f / 9, 6.f / 9,      1.f / 3, /**/ 6.f / 9, 1,
                         0.5f,    /**/ 1.f / 3, 0.5f,    0.25f};
  dl_check_close(dl_cdata(y), want, 9, 1e-6, "y");
  /* Backward of a unit gradient at (2,2) puts 1/4 on the one real pixel. */
  dl_set(y->count, 0, dl_diff(y));
  dl_diff(y)[8] = 1;
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  ck_assert_float_eq_tol(dl_cdiff(x)[15], 0.25f, 1e-7);
  ck_assert_float_eq_tol(dl_asum(16, dl_cdiff(x)), 0.25f, 1e-7);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

/* Output size of a (1, 1, h, w) input under the given pooling YAML. */
static void expect_out(const char *yaml, int h, int w, int oh, int ow) {
  dl_blob *x = blob4(1, 1, h, w, NULL), *y = dl_blob_new("y");
  dl_layer *l = pool_layer(yaml, x, y);
  ck_assert_msg(y->shape[2] == oh && y->shape[3] == ow, "%s on %dx%d: got %dx%d, want %dx%d", yaml,
                h, w, y->shape[2], y->shape[3], oh, ow);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(pool_output_sizes) {
  expect_out("{name: p, type: Pooling, kernel_size: 3, stride: 2}", 6, 6, 3, 3);
  expect_out("{name: p, type: Pooling, kernel_size: 3, stride: 2, round_mode: floor}", 6, 6, 2, 2);
  expect_out("{name: p, type: Pooling, kernel_size: 2, stride: 2}", 24, 24, 12, 12);
  expect_out("{name: p, type: Pooling, kernel_size: [3, 2], stride: [2, 1]}", 7, 5, 3, 4);
  /* 5x5, kernel 2, stride 2, pad 1: ceil gives 4, but the 4th window would
   * start at 5 = H + pad, inside the trailing pad, so Caffe drops it. */
  expect_out("{name: p, type: Pooling, kernel_size: 2, stride: 2, pad: 1}", 5, 5, 3, 3);
  expect_out("{name: p, type: Pooling, kernel_size: 2, stride: 2, pad: 1, round_mode: floor}", 5, 5,
             3, 3);
  expect_out("{name: p, type: Pooling, kernel_size: 1, stride: 3}", 5, 5, 2, 2);
  expect_out("{name: p, type: Pooling, global_pooling: true}", 5, 3, 1, 1);
}
END_TEST

START_TEST(pool_global) {
  dl_blob *x = blob4(2, 3, 5, 4, NULL), *y = dl_blob_new("y"), *z = dl_blob_new("z");
  dl_layer *mx = pool_layer("{name: p, type: Pooling, global_pooling: true}", x, y);
  dl_layer *av = pool_layer("{name: q, type: Pooling, pool: ave, global_pooling: true}", x, z);
  ck_assert(mx->ops->forward(mx, &x, 1, &y, 1) == DL_OK);
  ck_assert(av->ops->forward(av, &x, 1, &z, 1) == DL_OK);
  expect_shape(y, 2, 3, 1, 1);
  expect_shape(z, 2, 3, 1, 1);
  for (int c = 0; c < 6; c++) {
    const float *p = dl_cdata(x) + c * 20; /* (5, 4) */
    float best = -FLT_MAX;
    double sum = 0;
    for (int i = 0; i < 20; i++)
      best = fmaxf(best, p[i]), sum += p[i];
    ck_assert_float_eq(dl_cdata(y)[c], best);
    ck_assert_float_eq_tol(dl_cdata(z)[c], sum / 20, 1e-6);
  }
  dl_layer_free(mx);
  dl_layer_free(av);
  dl_blob_free(x);
  dl_blob_free(y);
  dl_blob_free(z);
}
END_TEST

/* Brute force from the definition: an input cell belongs to output (oy, ox)
 * when oy*s - p <= iy < oy*s - p + k (and likewise for x); the divisor counts
 * the window's cells inside [-p, H + p); max takes the first of equal values in
 * row-major order. Forward and backward (dx += dy into the winners or evenly
 * over the window), with loops unlike the layer's. */
typedef struct {
  int ave, kh, kw, sh, sw, ph, pw, h, w, floor, oh, ow;
} pool_case;

static const pool_case pool_cases[] = {
    {0, 3, 2, 2, 3, 1, 1, 8, 5, 0, 5, 2}, /* rectangular, pad; ceil drops a last column */
    {1, 3, 2, 2, 3, 1, 1, 8, 5, 0, 5, 2},
    {0, 3, 2, 2, 3, 1, 1, 8, 5, 1, 4, 2}, /* the same, floor */
    {1, 3, 2, 2, 3, 1, 1, 8, 5, 1, 4, 2},
    {0, 2, 2, 2, 2, 0, 0, 7, 5, 0, 4, 3}, /* 2x2 stride 2: fast path plus partial edges */
    {0, 2, 2, 2, 2, 0, 0, 7, 5, 1, 3, 2},
    {0, 2, 2, 2, 2, 0, 0, 8, 6, 0, 4, 3}, /* all fast path */
    {1, 2, 2, 2, 2, 0, 0, 7, 5, 0, 4, 3},
    {0, 2, 2, 2, 2, 1, 1, 6, 6, 0, 4, 4},      /* 2x2 stride 2 with pad: general path */
    {0, 2, 2, 2, 2, 0, 0, 7, 71, 0, 4, 36},    /* 2x2 rows of 35 whole windows: 16 + 16 + 3 */
    {0, 3, 3, 1, 1, 1, 1, 5, 6, 0, 5, 6},      /* overlapping windows */
    {0, 3, 3, 2, 2, 0, 0, 32, 32, 1, 15, 15},  /* 3x3 stride 2 (AlexNet-R): the vector path */
    {0, 3, 3, 2, 2, 0, 0, 16, 17, 0, 8, 8},    /* the same with a clipped last row (ceil) */
    {0, 3, 3, 2, 2, 0, 0, 7, 40, 1, 3, 19},    /* rows of 19 windows: vectors and a remainder */
    {0, 3, 3, 2, 2, 0, 0, 5, 1024, 1, 2, 511}, /* the widest rows the vector path takes */
    {0, 3, 3, 2, 2, 0, 0, 5, 1030, 1, 2, 514}, /* wider: the general path */
    {0, 3, 3, 2, 2, 0, 0, 9, 35, 1, 4, 17},    /* gathered backward: 16 + 1 windows a row */
    {0, 2, 2, 2, 2, 0, 0, 6, 30, 1, 3, 15},    /* the same for 2x2 */
    {0, 2, 2, 2, 2, 0, 0, 7, 41, 1, 3, 20},    /* a last row and column under no window */
    {1, 3, 3, 2, 2, 0, 0, 8, 8, 1, 3, 3},      /* average, whole 3x3 windows (AlexNet-R's pool3) */
    {1, 3, 3, 1, 1, 0, 0, 5, 6, 0, 3, 4},      /* the same, overlapping more */
    {0, 6, 7, 1, 1, 0, 0, 6, 7, 0, 1, 1},      /* one window over the whole input */
    {1, 6, 7, 1, 1, 0, 0, 6, 7, 0, 1, 1},
};

static void brute_output(const pool_case *k, const float *x, float dy, int oy, int ox, double *y,
                         double *dx) {
  int y0 = oy * k->sh - k->ph, x0 = ox * k->sw - k->pw, area = 0, arg = -1;
  double sum = 0;
  for (int iy = -k->ph; iy < k->h + k->ph; iy++)
    for (int ix = -k->pw; ix < k->w + k->pw; ix++) {
      if (iy < y0 || iy >= y0 + k->kh || ix < x0 || ix >= x0 + k->kw) continue;
      area++;
      if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w) continue;
      sum += x[iy * k->w + ix];
      if (arg < 0 || x[iy * k->w + ix] > x[arg]) arg = iy * k->w + ix;
    }
  *y = k->ave ? sum / area : x[arg];
  if (!k->ave) dx[arg] += dy;
  for (int iy = imax_(y0, 0); k->ave && iy < imin_(y0 + k->kh, k->h); iy++)
    for (int ix = imax_(x0, 0); ix < imin_(x0 + k->kw, k->w); ix++)
      dx[iy * k->w + ix] += (double)dy / area;
}

static void case_yaml(const pool_case *k, char *yaml, size_t n) {
  snprintf(yaml, n,
           "{name: p, type: Pooling, pool: %s, kernel_size: [%d, %d], stride: [%d, %d], "
           "pad: [%d, %d], round_mode: %s}",
           k->ave ? "ave" : "max", k->kh, k->kw, k->sh, k->sw, k->ph, k->pw,
           k->floor ? "floor" : "ceil");
}

static void run_pool_case(int ci) {
  const pool_case *k = &pool_cases[ci];
  char yaml[256];
  case_yaml(k, yaml, sizeof yaml);
  dl_blob *x = blob4(2, 3, k->h, k->w, NULL), *y = dl_blob_new("y");
  for (size_t i = 0; i < x->count; i++) /* quarters in [-1, 1]: many ties */
    dl_data(x)[i] = roundf(4 * dl_cdata(x)[i]) / 4;
  dl_layer *l = pool_layer(yaml, x, y);
  expect_shape(y, 2, 3, k->oh, k->ow);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  for (size_t i = 0; i < y->count; i++)
    dl_diff(y)[i] = (float)(i % 7) - 3;
  dl_set(x->count, 9, dl_diff(x));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  size_t in = (size_t)k->h * k->w;
  double *dx = calloc(x->count, sizeof(double)), want;
  for (int c = 0; c < 6; c++)
    for (int oy = 0; oy < k->oh; oy++)
      for (int ox = 0; ox < k->ow; ox++) {
        size_t o = ((size_t)c * k->oh + oy) * k->ow + ox;
        brute_output(k, dl_cdata(x) + c * in, dl_cdiff(y)[o], oy, ox, &want, dx + c * in);
        ck_assert_msg(fabs(dl_cdata(y)[o] - want) < 1e-6, "%s: y[%zu]: got %g, want %g", yaml, o,
                      dl_cdata(y)[o], want);
      }
  for (size_t i = 0; i < x->count; i++)
    ck_assert_msg(fabs(dl_cdiff(x)[i] - dx[i]) < 1e-5, "%s: dx[%zu]: got %g, want %g", yaml, i,
                  dl_cdiff(x)[i], dx[i]);
  free(dx);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(pool_matches_brute_force) { run_pool_case(_i); }
END_TEST

/* The same cases on the portable path (the AVX-512 one runs above where the
 * CPU has it). */
START_TEST(pool_matches_brute_force_portable) {
  dl_pooling_portable_only(1);
  run_pool_case(_i);
  dl_pooling_portable_only(0);
}
END_TEST

/* The backward's gathered AVX-512 form (rows of >= 12 whole windows) adds
 * each input's windows in the scatter's order: the same bits as the portable
 * path, with a dy whose sums round differently in another order. */
START_TEST(pool_backward_paths_agree_bitwise) {
  static const int shapes[][4] = {{3, 32, 32, 15}, {3, 9, 35, 17}, {2, 6, 30, 15}, {3, 5, 70, 34}};
  for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
    int k = shapes[t][0], h = shapes[t][1], w = shapes[t][2];
    char yaml[160];
    snprintf(yaml, sizeof yaml,
             "{name: p, type: Pooling, pool: max, kernel_size: %d, stride: 2, round_mode: floor}",
             k);
    float *dx[2];
    for (int portable = 0; portable < 2; portable++) {
      dl_pooling_portable_only(portable);
      dl_blob *x = blob4(2, 3, h, w, NULL), *y = dl_blob_new("y");
      for (size_t i = 0; i < x->count; i++) /* ties, so some inputs win several windows */
        dl_data(x)[i] = roundf(3 * dl_cdata(x)[i]) / 3;
      dl_layer *l = pool_layer(yaml, x, y);
      expect_shape(y, 2, 3, (h - k) / 2 + 1, shapes[t][3]);
      ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
      for (size_t i = 0; i < y->count; i++)
        dl_diff(y)[i] = 0.1f + 1.0f / (float)(i % 13 + 1) + 1e-3f * (float)i;
      dl_set(x->count, 9, dl_diff(x));
      l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
      dx[portable] = malloc(x->count * sizeof(float));
      memcpy(dx[portable], dl_cdiff(x), x->count * sizeof(float));
      dl_layer_free(l);
      dl_blob_free(y);
      if (portable) {
        for (size_t i = 0; i < x->count; i++)
          ck_assert_msg(memcmp(&dx[0][i], &dx[1][i], sizeof(float)) == 0,
                        "%s on %d x %d: dx[%zu] %.9g, portable %.9g", yaml, h, w, i, dx[0][i],
                        dx[1][i]);
      }
      dl_blob_free(x);
    }
    dl_pooling_portable_only(0);
    free(dx[0]), free(dx[1]);
  }
}
END_TEST

/* NCHW <-> nChw16c (core/blob.h), c a multiple of 16. */
static void to_blocked(const float *src, int n, int c, int hw, float *dst, int back) {
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (int p = 0; p < hw; p++) {
        size_t plain = ((size_t)i * c + ch) * hw + p;
        size_t blocked =
            (((size_t)i * (c / DL_BLOCK) + ch / DL_BLOCK) * hw + p) * DL_BLOCK + ch % DL_BLOCK;
        if (back)
          dst[plain] = src[blocked];
        else
          dst[blocked] = src[plain];
      }
}

/* One case on x (2 x 32 x h x w: two blocks of channels), plain (layout 0),
 * blocked (1), or blocked with a plain y (2); y and dx come back in NCHW. */
static void pool_in_layout(const char *yaml, const float *x_nchw, int h, int w, int layout,
                           float **y_out, float **dx_out, size_t *ny) {
  dl_blob *x = blob4(2, 32, h, w, NULL), *y = dl_blob_new("y");
  x->blocked = layout > 0, y->blocked = layout == 1;
  int blocked = layout == 1;
  dl_layer *l = pool_layer(yaml, x, y);
  int hw = h * w, ohw = y->shape[2] * y->shape[3];
  if (x->blocked)
    to_blocked(x_nchw, 2, 32, hw, dl_data(x), 0);
  else
    memcpy(dl_data(x), x_nchw, x->count * sizeof(float));
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  float *dy = malloc(y->count * sizeof(float));
  for (size_t i = 0; i < y->count; i++) /* sums that round differently in another order */
    dy[i] = 0.1f + 1.0f / (float)(i % 13 + 1) + 1e-3f * (float)i;
  if (blocked)
    to_blocked(dy, 2, 32, ohw, dl_diff(y), 0);
  else
    memcpy(dl_diff(y), dy, y->count * sizeof(float));
  dl_set(x->count, 9, dl_diff(x));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  *ny = y->count;
  *y_out = malloc(y->count * sizeof(float));
  *dx_out = malloc(x->count * sizeof(float));
  if (blocked)
    to_blocked(dl_cdata(y), 2, 32, ohw, *y_out, 1);
  else
    memcpy(*y_out, dl_cdata(y), y->count * sizeof(float));
  if (x->blocked)
    to_blocked(dl_cdiff(x), 2, 32, hw, *dx_out, 1);
  else
    memcpy(*dx_out, dl_cdiff(x), x->count * sizeof(float));
  free(dy);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

/* The blocked layout (16 channels interleaved, what the net gives pooling
 * between oneDNN convolutions), with a blocked or a plain y, gives the plain
 * layout's outputs and gradients bit for bit, every case above, on the
 * AVX-512 and portable paths, with ties (and on AVX-512 a few NaNs) among the
 * inputs. */
START_TEST(pool_blocked_matches_plain) {
  const pool_case *k = &pool_cases[_i];
  char yaml[256];
  case_yaml(k, yaml, sizeof yaml);
  size_t count = (size_t)2 * 32 * k->h * k->w, ny;
  float *x = malloc(count * sizeof(float));
  for (int portable = 0; portable < 2; portable++) {
    dl_rng rng;
    dl_rng_seed(&rng, 5 + (uint64_t)_i);
    for (size_t i = 0; i < count; i++)
      x[i] = roundf(4 * (2 * dl_rng_uniform(&rng) - 1)) / 4;
    for (size_t i = 7; !portable && i < count; i += 101) /* the plain portable 2x2 tree */
      x[i] = NAN; /* puts NaNs otherwise than max_window (a diverged net either way) */
    dl_pooling_portable_only(portable);
    float *y[3], *dx[3];
    for (int layout = 0; layout < 3; layout++)
      pool_in_layout(yaml, x, k->h, k->w, layout, &y[layout], &dx[layout], &ny);
    for (int layout = 1; layout < 3; layout++) {
      for (size_t i = 0; i < ny; i++)
        ck_assert_msg(memcmp(&y[0][i], &y[layout][i], sizeof(float)) == 0,
                      "%s (portable %d, layout %d): y[%zu] plain %.9g, blocked %.9g", yaml,
                      portable, layout, i, y[0][i], y[layout][i]);
      for (size_t i = 0; i < count; i++)
        ck_assert_msg(memcmp(&dx[0][i], &dx[layout][i], sizeof(float)) == 0,
                      "%s (portable %d, layout %d): dx[%zu] plain %.9g, blocked %.9g", yaml,
                      portable, layout, i, dx[0][i], dx[layout][i]);
    }
    for (int b = 0; b < 3; b++)
      free(y[b]), free(dx[b]);
  }
  dl_pooling_portable_only(0);
  free(x);
}
END_TEST

/* Max pooling is piecewise linear: with values at least 0.05 apart and a
 * finite-difference step of 0.01, no perturbation changes which element wins. */
static dl_blob *distinct_values(int n, int c, int h, int w) {
  dl_blob *x = blob4(n, c, h, w, NULL);
  int count = (int)x->count, *perm = malloc((size_t)count * sizeof(int));
  dl_rng rng;
  dl_rng_seed(&rng, 17);
  for (int i = 0; i < count; i++)
    perm[i] = i;
  for (int i = count - 1; i > 0; i--) {
    int j = (int)(dl_rng_uniform_range(&rng, 0, 1) * (i + 1)) % (i + 1), t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  for (int i = 0; i < count; i++)
    dl_data(x)[i] = 0.05f * (float)(perm[i] - count / 2);
  free(perm);
  return x;
}

static void gradcheck_pool(const char *yaml, dl_blob *x) {
  dl_blob *y = dl_blob_new("y");
  dl_layer *l = pool_layer(yaml, x, y);
  char msg[512];
  dl_gradcheck_opts o = {.max_per_blob = 1000};
  ck_assert_msg(dl_gradcheck(l, &x, 1, &y, 1, &o, msg, sizeof msg) == 0, "%s: %s", yaml, msg);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(pool_gradcheck_max) {
  gradcheck_pool("{name: p, type: Pooling, kernel_size: 3, stride: 2, pad: 1}",
                 distinct_values(2, 3, 7, 5));
  gradcheck_pool("{name: p, type: Pooling, kernel_size: [2, 3], stride: 1}",
                 distinct_values(1, 2, 4, 6));
}
END_TEST

START_TEST(pool_gradcheck_ave) {
  gradcheck_pool("{name: p, type: Pooling, pool: ave, kernel_size: 3, stride: 2, pad: 1}",
                 blob4(2, 3, 7, 5, NULL));
  gradcheck_pool("{name: p, type: Pooling, pool: ave, kernel_size: [2, 3], stride: [1, 2], "
                 "round_mode: floor}",
                 blob4(1, 2, 5, 6, NULL));
  gradcheck_pool("{name: p, type: Pooling, pool: ave, global_pooling: true}",
                 blob4(2, 2, 3, 4, NULL));
}
END_TEST

START_TEST(pool_propagate_down_off) {
  dl_blob *x = blob4(1, 2, 4, 4, NULL), *y = dl_blob_new("y");
  dl_layer *l = pool_layer("{name: p, type: Pooling, kernel_size: 2, stride: 2}", x, y);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_set(y->count, 1, dl_diff(y));
  dl_set(x->count, 3, dl_diff(x));
  l->ops->backward(l, &y, 1, (int[]){0}, &x, 1);
  for (size_t i = 0; i < x->count; i++)
    ck_assert_float_eq(dl_cdiff(x)[i], 3);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

/* Setup must fail with DL_ECONFIG and a message containing `want`. */
static void expect_error(const char *yaml, int ndim, const int *shape, const char *want) {
  dl_diag_clear();
  dl_layer *l = NULL;
  dl_blob *x = dl_test_blob("x", ndim, shape, 0, 1, 1), *y = dl_blob_new("y");
  dl_status st = dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l);
  if (st == DL_OK) st = dl_layer_setup(l, &x, 1, &y, 1);
  ck_assert_int_eq(st, DL_ECONFIG);
  ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "wanted '%s' in: %s", want, dl_diag_text());
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(pool_config_errors) {
  const int img[4] = {1, 2, 4, 4};
  expect_error("{name: p, type: Pooling, stride: 2}", 4, img,
               "layer 'p' (Pooling): kernel_size is required unless global_pooling: true");
  expect_error("{name: p, type: Pooling, pool: avg, kernel_size: 2}", 4, img, "did you mean 'ave'");
  expect_error("{name: p, type: Pooling, kernel_size: 2, pad: 2}", 4, img,
               "pad 2x2 must be smaller than the kernel 2x2");
  expect_error("{name: p, type: Pooling, global_pooling: true, kernel_size: 2}", 4, img,
               "kernel_size cannot be given with global_pooling: true");
  expect_error("{name: p, type: Pooling, global_pooling: true, stride: 2}", 4, img,
               "global_pooling: true takes no stride or pad");
  expect_error("{name: p, type: Pooling, kernel_size: 5}", 4, img,
               "kernel 5x5 with pad 0x0 does not fit input 4x4");
  expect_error("{name: p, type: Pooling, kernel_size: 2}", 3, (const int[]){1, 4, 4},
               "expects a 4-d input N x C x H x W, got 1 x 4 x 4");
  expect_error("{name: p, type: Pooling, kernel_size: 2, round_mode: up}", 4, img, "round_mode");
  expect_error("{name: p, type: Pooling, kernel_size: [2, 2, 2]}", 4, img,
               "kernel_size: expected one value or two [h, w], got 3");
}
END_TEST

Suite *suite_pooling(void) {
  Suite *s = suite_create("pooling");
  TCase *tc = tcase_create("pooling");
  tcase_add_test(tc, pool_max_hand);
  tcase_add_test(tc, pool_max_overlap_backward);
  tcase_add_test(tc, pool_ave_pad_divisor);
  tcase_add_test(tc, pool_output_sizes);
  tcase_add_test(tc, pool_global);
  tcase_add_loop_test(tc, pool_matches_brute_force, 0,
                      (int)(sizeof pool_cases / sizeof pool_cases[0]));
  tcase_add_loop_test(tc, pool_matches_brute_force_portable, 0,
                      (int)(sizeof pool_cases / sizeof pool_cases[0]));
  tcase_add_test(tc, pool_backward_paths_agree_bitwise);
  tcase_add_loop_test(tc, pool_blocked_matches_plain, 0,
                      (int)(sizeof pool_cases / sizeof pool_cases[0]));
  tcase_add_test(tc, pool_gradcheck_max);
  tcase_add_test(tc, pool_gradcheck_ave);
  tcase_add_test(tc, pool_propagate_down_off);
  tcase_add_test(tc, pool_config_errors);
  suite_add_tcase(s, tc);
  return s;
}
