/* Convolution: hand-computed cases, a naive double-precision reference for
 * forward and backward over a table of geometries, gradient checks, the
 * backward conventions (overwrite bottom diff, accumulate params), config errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/math.h"
#include "core/rng.h"
#include "tests/conv_cases.h"
#include "tests/testutil.h"

/* Aligned shapes and odd ones; each line stresses one feature. */
const conv_case dl_conv_cases[] = {
    {2, 4, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}, /* aligned, "same" padding */
    {2, 3, 7, 5, 5, 3, 2, 2, 1, 1, 0, 1, 1, 1, 1, 0}, /* odd shape, rectangular everything */
    {2, 4, 6, 6, 6, 3, 3, 1, 1, 0, 0, 1, 1, 2, 1, 0}, /* two groups */
    {3, 6, 5, 6, 3, 3, 1, 2, 2, 1, 1, 1, 1, 3, 1, 0}, /* three groups, stride 2 */
    {1, 2, 7, 7, 3, 3, 3, 1, 1, 1, 1, 2, 2, 1, 1, 0}, /* dilation */
    {2, 2, 9, 8, 4, 2, 3, 2, 3, 2, 1, 2, 1, 1, 0, 0}, /* dilation + stride, no bias */
    {5, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2}, /* blocks of 2 images: 2, 2, 1 */
    {2, 5, 4, 3, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0}, /* 1x1 kernel */
    {1, 1, 3, 3, 2, 2, 2, 2, 2, 3, 3, 1, 1, 1, 1, 0}, /* pad > kernel: windows on pure padding */
    {2, 2, 7, 7, 2, 1, 1, 3, 3, 0, 0, 1, 1, 1, 1, 0}, /* stride > kernel */
};
const int dl_conv_ncases = (int)(sizeof dl_conv_cases / sizeof dl_conv_cases[0]);

/* The case as a layer on `engine` (native here: the reference engine). */
void dl_conv_case_yaml(const conv_case *k, const char *engine, char *buf, size_t n) {
  snprintf(buf, n,
           "{name: c, type: Convolution, num_output: %d, kernel_size: [%d, %d], stride: [%d, %d], "
           "pad: [%d, %d], dilation: [%d, %d], group: %d, bias_term: %s, gemm_images: %d, "
           "engine: %s, weight_filler: {type: gaussian, std: 1}, "
           "bias_filler: {type: gaussian, std: 1}}",
           k->m, k->kh, k->kw, k->sh, k->sw, k->ph, k->pw, k->dh, k->dw, k->group,
           k->bias ? "true" : "false", k->gemm_images, engine);
}

static int out_dim(int in, int kk, int s, int p, int d) {
  return (in + 2 * p - d * (kk - 1) - 1) / s + 1;
}

/* The definition, one output at a time, in double:
 *   y[b][o][oy][ox] = bias[o] + sum_{ci, i, j} w[o][ci][i][j] x[b][g*cg + ci][iy][ix]
 * with iy = oy*sh - ph + i*dh, ix = ox*sw - pw + j*dw (zero outside), and its
 * adjoint for a given dy: dx, dw and db (all accumulated from zero). */
typedef struct {
  const float *x, *w, *bias, *dy; /* bias may be NULL */
  double *y, *dx, *dw, *db;
} conv_ref;

static void reference(const conv_case *k, conv_ref *r) {
  int oh = out_dim(k->h, k->kh, k->sh, k->ph, k->dh),
      ow = out_dim(k->w, k->kw, k->sw, k->pw, k->dw);
  int cg = k->c / k->group, mg = k->m / k->group;
  for (int b = 0; b < k->n; b++)
    for (int o = 0; o < k->m; o++)
      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
          size_t yi = (((size_t)b * k->m + o) * oh + oy) * ow + ox;
          double acc = r->bias ? r->bias[o] : 0, g = r->dy[yi];
          if (r->bias) r->db[o] += g;
          for (int ci = 0; ci < cg; ci++)
            for (int i = 0; i < k->kh; i++)
              for (int j = 0; j < k->kw; j++) {
                int iy = oy * k->sh - k->ph + i * k->dh, ix = ox * k->sw - k->pw + j * k->dw;
                if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w) continue;
                int cin = (o / mg) * cg + ci;
                size_t xi = (((size_t)b * k->c + cin) * k->h + iy) * k->w + ix;
                size_t wi = (((size_t)o * cg + ci) * k->kh + i) * k->kw + j;
                acc += (double)r->w[wi] * r->x[xi];
                r->dx[xi] += (double)r->w[wi] * g;
                r->dw[wi] += (double)r->x[xi] * g;
              }
          r->y[yi] = acc;
        }
}

static void check_close_d(const float *got, const double *want, size_t n, double tol,
                          const char *what, int ci) {
  for (size_t i = 0; i < n; i++) {
    double scale = fmax(1.0, fabs(want[i]));
    ck_assert_msg(fabs(got[i] - want[i]) <= tol * scale, "case %d: %s[%zu]: got %.7g, want %.7g",
                  ci, what, i, got[i], want[i]);
  }
}

static void run_reference_case(int ci) {
  const conv_case *k = &dl_conv_cases[ci];
  char yaml[600];
  dl_conv_case_yaml(k, "native", yaml, sizeof yaml);
  dl_blob *x = dl_test_blob("x", 4, (int[]){k->n, k->c, k->h, k->w}, -1, 1, 10 + ci);
  dl_blob *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
  int oh = out_dim(k->h, k->kh, k->sh, k->ph, k->dh),
      ow = out_dim(k->w, k->kw, k->sw, k->pw, k->dw);
  ck_assert_msg(y->ndim == 4 && y->shape[0] == k->n && y->shape[1] == k->m && y->shape[2] == oh &&
                    y->shape[3] == ow,
                "case %d: top shape", ci);
  ck_assert_int_eq(l->nparams, k->bias ? 2 : 1);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);

  dl_rng rng;
  dl_rng_seed(&rng, 99 + ci);
  float *dy = dl_diff(y);
  for (size_t i = 0; i < y->count; i++)
    dy[i] = dl_rng_uniform_range(&rng, -1, 1);
  dl_set(x->count, 1e6f, dl_diff(x)); /* must be overwritten, not added to */
  for (int p = 0; p < l->nparams; p++)
    dl_set(l->params[p]->count, 0, dl_diff(l->params[p]));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);

  conv_ref r = {dl_cdata(x),
                dl_cdata(l->params[0]),
                k->bias ? dl_cdata(l->params[1]) : NULL,
                dl_cdiff(y),
                calloc(y->count, sizeof(double)),
                calloc(x->count, sizeof(double)),
                calloc(l->params[0]->count, sizeof(double)),
                calloc((size_t)k->m, sizeof(double))};
  reference(k, &r);
  check_close_d(dl_cdata(y), r.y, y->count, 1e-4, "y", ci);
  check_close_d(dl_cdiff(x), r.dx, x->count, 1e-4, "dx", ci);
  check_close_d(dl_cdiff(l->params[0]), r.dw, l->params[0]->count, 1e-4, "dw", ci);
  if (k->bias) check_close_d(dl_cdiff(l->params[1]), r.db, (size_t)k->m, 1e-4, "db", ci);
  free(r.y), free(r.dx), free(r.dw), free(r.db);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(conv_matches_reference) { run_reference_case(_i); }
END_TEST

/* Sets a layer's weights (and bias) to given values. */
static void set_params(dl_layer *l, const float *w, const float *b) {
  memcpy(dl_data(l->params[0]), w, l->params[0]->count * sizeof(float));
  if (b) memcpy(dl_data(l->params[1]), b, l->params[1]->count * sizeof(float));
}

/* x = 1..9 as a 3x3 image. */
static dl_blob *image_1to9(void) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){1, 1, 3, 3}, 0, 1, 1);
  for (int i = 0; i < 9; i++)
    dl_data(x)[i] = (float)(i + 1);
  return x;
}

START_TEST(conv_forward_hand) {
  /* [1 2 3; 4 5 6; 7 8 9] with the 2x2 kernel [1 2; 3 4] and bias 0.5:
   * 1+4+12+20 = 37, 2+6+15+24 = 47, 4+10+21+32 = 67, 5+12+24+36 = 77. */
  dl_blob *x = image_1to9(), *y = dl_blob_new("y");
  dl_layer *l =
      dl_test_layer("{name: c, type: Convolution, num_output: 1, kernel_size: 2}", &x, 1, &y, 1);
  set_params(l, (const float[]){1, 2, 3, 4}, (const float[]){0.5f});
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  ck_assert_int_eq(y->shape[2], 2);
  ck_assert_int_eq(y->shape[3], 2);
  dl_check_close(dl_cdata(y), (const float[]){37.5f, 47.5f, 67.5f, 77.5f}, 4, 1e-6, "y");
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(conv_forward_hand_pad_stride) {
  /* 2x2 ones, pad 1, stride 2: windows start at -1 and 1 on each axis, so
   * they cover {1}, {2, 3}, {4, 7} and {5, 6, 8, 9}. */
  dl_blob *x = image_1to9(), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: c, type: Convolution, num_output: 1, kernel_size: 2, pad: 1, "
                              "stride: 2, bias_term: false}",
                              &x, 1, &y, 1);
  set_params(l, (const float[]){1, 1, 1, 1}, NULL);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  ck_assert_int_eq(y->shape[2], 2);
  ck_assert_int_eq(y->shape[3], 2);
  dl_check_close(dl_cdata(y), (const float[]){1, 5, 11, 28}, 4, 1e-6, "y");
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(conv_forward_hand_dilation_group) {
  /* Two channels [1..9] and [10..18], group 2, 2x2 kernel of ones with dilation 2:
   * each output is the sum of its channel's four corners. */
  dl_blob *x = dl_test_blob("x", 4, (int[]){1, 2, 3, 3}, 0, 1, 1), *y = dl_blob_new("y");
  for (int i = 0; i < 18; i++)
    dl_data(x)[i] = (float)(i + 1);
  dl_layer *l = dl_test_layer("{name: c, type: Convolution, num_output: 2, kernel_size: 2, "
                              "dilation: 2, group: 2, bias_term: false}",
                              &x, 1, &y, 1);
  ck_assert_int_eq(l->params[0]->shape[1], 1);
  set_params(l, (const float[]){1, 1, 1, 1, 1, 1, 1, 1}, NULL);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  ck_assert_int_eq(y->count, 2);
  dl_check_close(dl_cdata(y), (const float[]){1 + 3 + 7 + 9, 10 + 12 + 16 + 18}, 2, 1e-6, "y");
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(conv_param_shapes_and_default_fillers) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 6, 9, 9}, -1, 1, 2), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: c, type: Convolution, num_output: 4, kernel_size: [3, 2], "
                              "group: 2}",
                              &x, 1, &y, 1);
  ck_assert_int_eq(l->nparams, 2);
  const int want[4] = {4, 3, 3, 2};
  ck_assert_int_eq(l->params[0]->ndim, 4);
  for (int a = 0; a < 4; a++)
    ck_assert_int_eq(l->params[0]->shape[a], want[a]);
  ck_assert_int_eq(l->params[1]->ndim, 1);
  ck_assert_int_eq(l->params[1]->shape[0], 4);
  /* xavier: uniform in +-sqrt(3 / fan_in), fan_in = 3 * 3 * 2 */
  double lim = sqrt(3.0 / 18), sumsq = dl_sumsq(l->params[0]->count, dl_cdata(l->params[0]));
  for (size_t i = 0; i < l->params[0]->count; i++)
    ck_assert(fabs(dl_cdata(l->params[0])[i]) <= lim);
  ck_assert(sumsq > 0);
  ck_assert(dl_asum(4, dl_cdata(l->params[1])) == 0);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

static void gradcheck_yaml(const char *yaml, int n, int c, int h, int w) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){n, c, h, w}, -1, 1, 5), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
  char msg[512];
  ck_assert_msg(dl_gradcheck(l, &x, 1, &y, 1, NULL, msg, sizeof msg) == 0, "%s", msg);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(conv_gradcheck) {
  gradcheck_yaml("{name: c, type: Convolution, num_output: 4, kernel_size: 3, stride: 2, pad: 1, "
                 "engine: native, bias_filler: {type: gaussian, std: 1}}",
                 2, 3, 5, 5);
}
END_TEST

START_TEST(conv_gradcheck_group_dilation) {
  gradcheck_yaml("{name: c, type: Convolution, num_output: 4, kernel_size: [2, 3], pad: 1, "
                 "dilation: [2, 1], group: 2, gemm_images: 1, engine: native}",
                 3, 4, 6, 5);
}
END_TEST

/* Backward with propagate_down 0 leaves the bottom diff alone but still gives
 * the parameter gradients; each further backward adds them again and gives the
 * same bottom diff. Run with the whole batch in one block (backward reuses
 * forward's columns, and must rebuild them once computing dx overwrote them)
 * and in blocks of 2 images (columns rebuilt every time). */
START_TEST(conv_backward_conventions) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){3, 2, 6, 6}, -1, 1, 7), *y = dl_blob_new("y");
  char yaml[200];
  snprintf(yaml, sizeof yaml,
           "{name: c, type: Convolution, num_output: 3, kernel_size: 3, gemm_images: %d, "
           "engine: native}",
           _i ? 2 : 0);
  dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_rng rng;
  dl_rng_seed(&rng, 3);
  for (size_t i = 0; i < y->count; i++)
    dl_diff(y)[i] = dl_rng_uniform_range(&rng, -1, 1);
  size_t nw = l->params[0]->count;
  float *once = malloc(nw * sizeof(float)), *dx = malloc(x->count * sizeof(float));

  dl_set(x->count, 7, dl_diff(x));
  dl_set(nw, 0, dl_diff(l->params[0]));
  l->ops->backward(l, &y, 1, (int[]){0}, &x, 1);
  for (size_t i = 0; i < x->count; i++)
    ck_assert_float_eq(dl_cdiff(x)[i], 7);
  memcpy(once, dl_cdiff(l->params[0]), nw * sizeof(float));
  ck_assert(dl_asum(nw, once) > 0);

  for (int k = 2; k <= 3; k++) {
    l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
    for (size_t i = 0; i < nw; i++)
      ck_assert_float_eq_tol(dl_cdiff(l->params[0])[i], k * once[i], 1e-5 * (1 + fabs(once[i])));
    if (k == 2) memcpy(dx, dl_cdiff(x), x->count * sizeof(float));
  }
  ck_assert(dl_cdiff(x)[0] != 7);
  dl_check_close(dl_cdiff(x), dx, x->count, 0, "dx of the third backward");
  free(once);
  free(dx);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

/* Setup must fail with DL_ECONFIG and a message naming the layer and `want`. */
static void expect_setup_error(const char *yaml, int ndim, const int *shape, const char *want) {
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

START_TEST(conv_config_errors) {
  const int img[4] = {1, 4, 3, 3};
  expect_setup_error("{name: c, type: Convolution, num_output: 6, kernel_size: 1, group: 3}", 4,
                     img,
                     "layer 'c' (Convolution): group 3 must divide both the input channels (4)");
  expect_setup_error("{name: c, type: Convolution, num_output: 5, kernel_size: 1, group: 2}", 4,
                     img, "and num_output (5)");
  expect_setup_error("{name: c, type: Convolution, num_output: 2, kernel_size: 5}", 4, img,
                     "kernel 5x5 with pad 0 does not fit input 3x3");
  expect_setup_error("{name: c, type: Convolution, num_output: 2, kernel_size: 3, dilation: 2, "
                     "pad: [1, 0]}",
                     4, img, "kernel 3x3 and dilation 2x2 with pad 1x0 does not fit input 3x3");
  expect_setup_error("{name: c, type: Convolution, num_output: 2, kernel_size: 1}", 2,
                     (const int[]){4, 9}, "expects a 4-d input N x C x H x W, got 4 x 9");
  expect_setup_error("{name: c, type: Convolution, num_output: 2, kernel_size: [1, 2, 3]}", 4, img,
                     "kernel_size: expected one value or two [h, w], got 3");
  expect_setup_error("{name: c, type: Convolution, kernel_size: 3}", 4, img, "num_output");
  expect_setup_error("{name: c, type: Convolution, num_output: 2, kernel_size: 0}", 4, img,
                     "kernel_size");
}
END_TEST

Suite *suite_conv(void) {
  Suite *s = suite_create("conv");
  TCase *tc = tcase_create("conv");
  tcase_add_loop_test(tc, conv_matches_reference, 0, dl_conv_ncases);
  tcase_add_test(tc, conv_forward_hand);
  tcase_add_test(tc, conv_forward_hand_pad_stride);
  tcase_add_test(tc, conv_forward_hand_dilation_group);
  tcase_add_test(tc, conv_param_shapes_and_default_fillers);
  tcase_add_test(tc, conv_gradcheck);
  tcase_add_test(tc, conv_gradcheck_group_dilation);
  tcase_add_loop_test(tc, conv_backward_conventions, 0, 2);
  tcase_add_test(tc, conv_config_errors);
  suite_add_tcase(s, tc);
  return s;
}
