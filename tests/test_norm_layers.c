/* LRN, BatchNorm, Scale and Bias: naive double-precision references, hand
 * cases for BatchNorm's running statistics, gradient checks (aligned and odd
 * shapes, every axis variant), in-place runs, config errors, and in a net:
 * BatchNorm's statistics are saved but never touched by the solver. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/math.h"
#include "core/net.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

static void free_blobs(dl_blob **b, int n) {
  for (int i = 0; i < n; i++)
    dl_blob_free(b[i]);
}

static void set_values(dl_blob *b, const float *v) { memcpy(dl_data(b), v, b->count * sizeof *v); }

static void gradcheck_ok(dl_layer *l, dl_blob **bottom, int nb, dl_blob **top, int nt,
                         const dl_gradcheck_opts *o) {
  char msg[512];
  int bad = dl_gradcheck(l, bottom, nb, top, nt, o, msg, sizeof msg);
  ck_assert_msg(bad == 0, "%s: %d gradient mismatches: %s", l->ops->type, bad, msg);
}

/* Builds a layer in the given phase; NULL ctx: the default one. */
static dl_layer *make(const char *yaml, dl_phase phase, dl_blob **bottom, int nb, dl_blob **top,
                      int nt) {
  dl_diag_clear();
  dl_layer *l = NULL;
  ck_assert_msg(dl_layer_from_yaml(yaml, phase, NULL, &l) == DL_OK, "%s: %s", yaml, dl_diag_text());
  ck_assert_msg(dl_layer_setup(l, bottom, nb, top, nt) == DL_OK, "%s: %s", yaml, dl_diag_text());
  return l;
}

static void forward(dl_layer *l, dl_blob **bottom, int nb, dl_blob **top, int nt) {
  ck_assert_msg(l->ops->forward(l, bottom, nb, top, nt) == DL_OK, "%s", dl_diag_text());
}

/* Setting the layer up must fail with DL_ECONFIG and a message containing `want`. */
static void expect_config_error(const char *yaml, dl_blob **bottom, int nb, const char *want) {
  dl_blob *y = dl_blob_new("y");
  dl_layer *l = NULL;
  dl_diag_clear();
  dl_status st = dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l);
  if (st == DL_OK) st = dl_layer_setup(l, bottom, nb, &y, 1);
  ck_assert_msg(st == DL_ECONFIG, "%s: expected a config error, got %d", yaml, st);
  ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "%s: message '%s' lacks '%s'", yaml,
                dl_diag_text(), want);
  dl_layer_free(l);
  dl_blob_free(y);
}

/* ---- LRN ----------------------------------------------------------------- */

typedef struct {
  int n;
  double alpha, beta, k;
  int within;
} lrn_ref;

/* Naive: every window summed from scratch, in double. */
static void lrn_reference(const lrn_ref *r, const dl_blob *xb, double *y) {
  const float *x = dl_cdata((dl_blob *)xb);
  int N = xb->shape[0], C = xb->shape[1], H = xb->shape[2], W = xb->shape[3], pad = (r->n - 1) / 2;
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++) {
          double sum = 0;
          if (!r->within) {
            for (int j = c - pad; j <= c + pad; j++)
              if (j >= 0 && j < C) {
                double v = x[((n * C + j) * H + h) * W + w];
                sum += v * v;
              }
          } else {
            for (int i = h - pad; i <= h + pad; i++)
              for (int j = w - pad; j <= w + pad; j++)
                if (i >= 0 && i < H && j >= 0 && j < W) {
                  double v = x[((n * C + c) * H + i) * W + j];
                  sum += v * v;
                }
          }
          double m = r->within ? (double)r->n * r->n : r->n;
          size_t e = (((size_t)n * C + c) * H + h) * W + w;
          y[e] = x[e] * pow(r->k + r->alpha / m * sum, -r->beta);
        }
}

static void lrn_case(const char *yaml, const lrn_ref *r, const int shape[4], uint64_t seed) {
  dl_blob *x = dl_test_blob("x", 4, shape, -2, 2, seed), *y = dl_blob_new("y");
  dl_layer *l = make(yaml, DL_TRAIN, &x, 1, &y, 1);
  forward(l, &x, 1, &y, 1);
  double *want = malloc(x->count * sizeof(double));
  lrn_reference(r, x, want);
  const float *got = dl_cdata(y);
  for (size_t i = 0; i < x->count; i++)
    ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 * fmax(1, fabs(want[i])),
                  "%s on %dx%dx%dx%d: y[%zu] = %.7g, want %.7g", yaml, shape[0], shape[1], shape[2],
                  shape[3], i, got[i], want[i]);
  free(want);
  /* Smaller inputs for the gradient: the reference already covers the values. */
  float *xv = dl_data(x);
  for (size_t i = 0; i < x->count; i++)
    xv[i] *= 0.5f;
  gradcheck_ok(l, &x, 1, &y, 1, NULL);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}

static const int lrn_shapes[3][4] = {{2, 8, 4, 4}, {2, 7, 5, 3}, {1, 2, 3, 1}};

START_TEST(lrn_across_channels) {
  static const struct {
    const char *yaml;
    lrn_ref r;
  } cases[] = {
      {"{name: n, type: LRN}", {5, 1, 0.75, 1, 0}},
      {"{name: n, type: LRN, local_size: 3, alpha: 2, beta: 0.6, k: 2}", {3, 2, 0.6, 2, 0}},
      {"{name: n, type: LRN, local_size: 1, alpha: 0.5, beta: 1}", {1, 0.5, 1, 1, 0}},
      /* A window wider than the channels. */
      {"{name: n, type: LRN, local_size: 11, alpha: 3, beta: 0.75, k: 1.5}", {11, 3, 0.75, 1.5, 0}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int s = 0; s < 3; s++)
      lrn_case(cases[c].yaml, &cases[c].r, lrn_shapes[s], 10 + c * 3 + (uint64_t)s);
}
END_TEST

START_TEST(lrn_within_channel) {
  static const struct {
    const char *yaml;
    lrn_ref r;
  } cases[] = {
      {"{name: n, type: LRN, norm_region: within_channel}", {5, 1, 0.75, 1, 1}},
      {"{name: n, type: LRN, norm_region: within_channel, local_size: 3, alpha: 4, beta: 0.5}",
       {3, 4, 0.5, 1, 1}},
      {"{name: n, type: LRN, norm_region: within_channel, local_size: 7, alpha: 9, k: 2}",
       {7, 9, 0.75, 2, 1}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int s = 0; s < 3; s++)
      lrn_case(cases[c].yaml, &cases[c].r, lrn_shapes[s], 40 + c * 3 + (uint64_t)s);
}
END_TEST

/* A second reshape to a shape with fewer channels but larger planes. */
START_TEST(lrn_reshape_to_larger_planes) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){1, 6, 2, 2}, -1, 1, 3), *y = dl_blob_new("y");
  static const char *const cfg[] = {
      "{name: n, type: LRN, local_size: 3}",
      "{name: n, type: LRN, local_size: 3, norm_region: within_channel}"};
  for (int k = 0; k < 2; k++) {
    ck_assert(dl_blob_reshape(x, 4, (int[]){1, 6, 2, 2}) == DL_OK);
    dl_layer *l = make(cfg[k], DL_TRAIN, &x, 1, &y, 1);
    ck_assert(dl_blob_reshape(x, 4, (int[]){1, 1, 5, 5}) == DL_OK);
    float *xv = dl_data(x);
    for (int i = 0; i < 25; i++)
      xv[i] = (float)(i % 7) / 7 - 0.4f;
    ck_assert(l->ops->reshape(l, &x, 1, &y, 1) == DL_OK);
    forward(l, &x, 1, &y, 1);
    double want[25];
    lrn_ref r = {3, 1, 0.75, 1, k};
    lrn_reference(&r, x, want);
    for (int i = 0; i < 25; i++)
      ck_assert_double_eq_tol(dl_cdata(y)[i], want[i], 1e-5);
    gradcheck_ok(l, &x, 1, &y, 1, NULL);
    dl_layer_free(l);
  }
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* ---- BatchNorm ------------------------------------------------------------ */

/* Per channel of an N x C x inner blob: mean and (biased) variance in double. */
static void channel_stats(dl_blob *b, int c, double *mean, double *var) {
  int N = b->shape[0], C = b->ndim > 1 ? b->shape[1] : 1;
  size_t inner = b->count / ((size_t)N * C);
  const float *v = dl_cdata(b);
  double s = 0, sq = 0;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < inner; i++)
      s += v[((size_t)n * C + c) * inner + i];
  *mean = s / (N * (double)inner);
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < inner; i++) {
      double d = v[((size_t)n * C + c) * inner + i] - *mean;
      sq += d * d;
    }
  *var = sq / (N * (double)inner);
}

START_TEST(bn_train_normalizes_per_channel) {
  static const int shapes[3][4] = {{4, 3, 2, 5}, {5, 3, 3, 1}, {6, 4, 1, 1}};
  static const int ndims[3] = {4, 3, 2};
  for (int k = 0; k < 3; k++) {
    dl_blob *x = dl_test_blob("x", ndims[k], shapes[k], -3, 5, 20 + (uint64_t)k);
    dl_blob *y = dl_blob_new("y");
    dl_layer *l = make("{name: bn, type: BatchNorm}", DL_TRAIN, &x, 1, &y, 1);
    ck_assert_int_eq(l->nparams, 3);
    for (int p = 0; p < 3; p++) {
      ck_assert_float_eq(l->lr_mult[p], 0);
      ck_assert_float_eq(l->decay_mult[p], 0);
    }
    ck_assert_int_eq(l->params[0]->count, shapes[k][1]);
    ck_assert_int_eq(l->params[1]->count, shapes[k][1]);
    ck_assert_int_eq(l->params[2]->count, 1);
    forward(l, &x, 1, &y, 1);
    for (int c = 0; c < shapes[k][1]; c++) {
      double mean, var;
      channel_stats(y, c, &mean, &var);
      ck_assert_double_eq_tol(mean, 0, 1e-5);
      ck_assert_double_eq_tol(var, 1, 1e-3);
    }
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, y}, 2);
  }
}
END_TEST

/* N = 2, C = 2, 2 values per image and channel (m = 4), fraction 0.5.
 * Batch 1: channel 0 {1, 2, 3, 6}: mean 3, var 3.5 (unbiased 14/3);
 *          channel 1 {0, 0, 2, 2}: mean 1, var 1 (unbiased 4/3).
 * Batch 2: channel 0 {2, 2, 2, 2}: mean 2, var 0;
 *          channel 1 {-1, 1, -1, 1}: mean 0, var 1 (unbiased 4/3).
 * Running sums: after 1: normalizer 1, mean {3, 1}, var {14/3, 4/3};
 * after 2: normalizer 1.5, mean {3.5, 0.5}, var {7/3, 2}. */
static const float bn_batch1[8] = {1, 2, 0, 0, 3, 6, 2, 2};
static const float bn_batch2[8] = {2, 2, -1, 1, 2, 2, -1, 1};

START_TEST(bn_running_stats_follow_caffe) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){2, 2, 2}, 0, 1, 1), *y = dl_blob_new("y");
  dl_layer *l =
      make("{name: bn, type: BatchNorm, moving_average_fraction: 0.5}", DL_TRAIN, &x, 1, &y, 1);
  set_values(x, bn_batch1);
  forward(l, &x, 1, &y, 1);
  dl_check_close(dl_cdata(l->params[0]), (const float[]){3, 1}, 2, 1e-6, "mean after 1");
  dl_check_close(dl_cdata(l->params[1]), (const float[]){14.0f / 3, 4.0f / 3}, 2, 1e-6,
                 "variance after 1");
  dl_check_close(dl_cdata(l->params[2]), (const float[]){1}, 1, 0, "normalizer after 1");
  /* The output uses the batch's statistics (biased variance). */
  float s0 = 1 / sqrtf(3.5f + 1e-5f), s1 = 1 / sqrtf(1 + 1e-5f);
  dl_check_close(dl_cdata(y), (const float[]){-2 * s0, -1 * s0, -s1, -s1, 0, 3 * s0, s1, s1}, 8,
                 1e-6, "y after 1");
  set_values(x, bn_batch2);
  forward(l, &x, 1, &y, 1);
  dl_check_close(dl_cdata(l->params[0]), (const float[]){3.5f, 0.5f}, 2, 1e-6, "mean after 2");
  dl_check_close(dl_cdata(l->params[1]), (const float[]){7.0f / 3, 2}, 2, 1e-6, "variance after 2");
  dl_check_close(dl_cdata(l->params[2]), (const float[]){1.5f}, 1, 0, "normalizer after 2");
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* Running sums {3.5, 0.5} / 1.5 and {7/3, 2} / 1.5: mean {7/3, 1/3}, var {14/9, 4/3}. */
static void set_bn_stats(dl_layer *l) {
  set_values(l->params[0], (const float[]){3.5f, 0.5f});
  set_values(l->params[1], (const float[]){7.0f / 3, 2});
  set_values(l->params[2], (const float[]){1.5f});
}

START_TEST(bn_global_stats_in_test_phase) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){2, 2, 2}, 0, 1, 1), *y = dl_blob_new("y");
  const double mean[2] = {7.0 / 3, 1.0 / 3}, var[2] = {14.0 / 9, 4.0 / 3};
  /* Test phase by default, and use_global_stats: true in train. */
  static const char *const cfg[] = {"{name: bn, type: BatchNorm}",
                                    "{name: bn, type: BatchNorm, use_global_stats: true}"};
  for (int k = 0; k < 2; k++) {
    dl_layer *l = make(cfg[k], k == 0 ? DL_TEST : DL_TRAIN, &x, 1, &y, 1);
    set_bn_stats(l);
    set_values(x, bn_batch1);
    forward(l, &x, 1, &y, 1);
    float want[8];
    for (int i = 0; i < 8; i++) {
      int c = (i / 2) % 2;
      want[i] = (float)((bn_batch1[i] - mean[c]) / sqrt(var[c] + 1e-5));
    }
    dl_check_close(dl_cdata(y), want, 8, 1e-6, cfg[k]);
    /* The statistics are read, not updated. */
    dl_check_close(dl_cdata(l->params[0]), (const float[]){3.5f, 0.5f}, 2, 0, "mean");
    dl_check_close(dl_cdata(l->params[2]), (const float[]){1.5f}, 1, 0, "normalizer");
    dl_layer_free(l);
  }
  /* use_global_stats: false in the test phase normalizes with the batch. */
  dl_layer *l = make("{name: bn, type: BatchNorm, use_global_stats: false}", DL_TEST, &x, 1, &y, 1);
  set_values(x, bn_batch1);
  forward(l, &x, 1, &y, 1);
  ck_assert_float_eq_tol(dl_cdata(y)[4], 0, 1e-6); /* channel 0's 3 is its batch mean */
  ck_assert_float_eq(dl_cdata(l->params[2])[0], 1);
  dl_layer_free(l);
  /* Never trained (normalizer 0): mean 0, variance 0, as Caffe. */
  l = make("{name: bn, type: BatchNorm, eps: 1}", DL_TEST, &x, 1, &y, 1);
  forward(l, &x, 1, &y, 1);
  dl_check_close(dl_cdata(y), bn_batch1, 8, 1e-6, "untrained");
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* Random gamma and beta, so that their gradients and the affine path matter. */
static void randomize_affine(dl_layer *l) {
  ck_assert_int_eq(l->nparams, 5);
  ck_assert_float_eq(l->lr_mult[3], 1);
  ck_assert_float_eq(l->lr_mult[4], 1);
  dl_check_close(dl_cdata(l->params[3]), (const float[]){1, 1, 1}, 3, 0, "gamma init");
  dl_check_close(dl_cdata(l->params[4]), (const float[]){0, 0, 0}, 3, 0, "beta init");
  set_values(l->params[3], (const float[]){1.5f, -0.7f, 0.4f});
  set_values(l->params[4], (const float[]){0.3f, -1, 2});
}

START_TEST(bn_gradcheck_batch_stats) {
  static const int shapes[2][4] = {{2, 3, 2, 3}, {5, 3, 1, 1}};
  static const char *const cfg[] = {"{name: bn, type: BatchNorm}",
                                    "{name: bn, type: BatchNorm, affine: true}"};
  /* The default step and threshold hold: the statistics are summed in double. */
  for (int k = 0; k < 2; k++)
    for (int s = 0; s < 2; s++) {
      dl_blob *x = dl_test_blob("x", 4, shapes[s], -2, 2, 30 + (uint64_t)(k * 2 + s));
      dl_blob *y = dl_blob_new("y");
      dl_layer *l = make(cfg[k], DL_TRAIN, &x, 1, &y, 1);
      if (k) randomize_affine(l);
      gradcheck_ok(l, &x, 1, &y, 1, NULL);
      dl_layer_free(l);
      free_blobs((dl_blob *[]){x, y}, 2);
    }
}
END_TEST

START_TEST(bn_gradcheck_global_stats) {
  static const int shapes[2][4] = {{2, 3, 2, 3}, {5, 3, 1, 1}};
  static const char *const cfg[] = {"{name: bn, type: BatchNorm}",
                                    "{name: bn, type: BatchNorm, affine: true}"};
  /* The statistics are constants here, with no gradient of their own. */
  dl_gradcheck_opts o = {.skip_param_mask = 0x7};
  for (int k = 0; k < 2; k++)
    for (int s = 0; s < 2; s++) {
      dl_blob *x = dl_test_blob("x", 4, shapes[s], -2, 2, 40 + (uint64_t)(k * 2 + s));
      dl_blob *y = dl_blob_new("y");
      dl_layer *l = make(cfg[k], DL_TEST, &x, 1, &y, 1);
      set_values(l->params[0], (const float[]){0.5f, -1, 2});
      set_values(l->params[1], (const float[]){2, 0.5f, 1});
      set_values(l->params[2], (const float[]){2});
      if (k) randomize_affine(l);
      gradcheck_ok(l, &x, 1, &y, 1, &o);
      dl_layer_free(l);
      free_blobs((dl_blob *[]){x, y}, 2);
    }
}
END_TEST

/* Runs `yaml` out of place and in place on the same input and upstream
 * gradient: tops, bottom gradients and param gradients must agree. */
static void check_in_place(const char *yaml, dl_phase phase, const int *shape, int ndim) {
  dl_blob *x = dl_test_blob("x", ndim, shape, -2, 2, 5), *y = dl_blob_new("y");
  dl_blob *z = dl_test_blob("x", ndim, shape, -2, 2, 5);
  dl_blob *dy = dl_test_blob("dy", ndim, shape, -1, 1, 6);
  size_t n = x->count;
  dl_layer *a = make(yaml, phase, &x, 1, &y, 1), *b = make(yaml, phase, &z, 1, &z, 1);
  forward(a, &x, 1, &y, 1);
  forward(b, &z, 1, &z, 1);
  dl_check_close(dl_cdata(z), dl_cdata(y), n, 1e-6, "in-place top");
  dl_copy(n, dl_cdata(dy), dl_diff(y));
  dl_copy(n, dl_cdata(dy), dl_diff(z));
  for (int p = 0; p < a->nparams; p++) {
    dl_set(a->params[p]->count, 0, dl_diff(a->params[p]));
    dl_set(b->params[p]->count, 0, dl_diff(b->params[p]));
  }
  /* What a later in-place layer would do to the shared blob before backward. */
  dl_set(n, 7, dl_data(z));
  a->ops->backward(a, &y, 1, (int[]){1}, &x, 1);
  b->ops->backward(b, &z, 1, (int[]){1}, &z, 1);
  dl_check_close(dl_cdiff(z), dl_cdiff(x), n, 1e-6, "in-place bottom diff");
  for (int p = 0; p < a->nparams; p++)
    dl_check_close(dl_cdiff(b->params[p]), dl_cdiff(a->params[p]), a->params[p]->count, 1e-5,
                   "in-place param diff");
  dl_layer_free(a);
  dl_layer_free(b);
  free_blobs((dl_blob *[]){x, y, z, dy}, 4);
}

START_TEST(in_place_matches_out_of_place) {
  const int shape[4] = {3, 4, 2, 3};
  check_in_place("{name: bn, type: BatchNorm}", DL_TRAIN, shape, 4);
  check_in_place("{name: bn, type: BatchNorm, affine: true}", DL_TRAIN, shape, 4);
  check_in_place("{name: bn, type: BatchNorm, affine: true}", DL_TEST, shape, 4);
  check_in_place(
      "{name: s, type: Scale, bias_term: true, filler: {type: uniform, min: -1, max: 1}}", DL_TRAIN,
      shape, 4);
  check_in_place("{name: b, type: Bias, filler: {type: uniform, min: -1, max: 1}}", DL_TRAIN, shape,
                 4);
}
END_TEST

/* ---- Scale and Bias --------------------------------------------------------- */

typedef struct {
  const char *yaml;
  int ndim;
  int shape[4];
  int pdim;       /* axes of the learned blob */
  int pshape[4];  /* its shape */
  int outer, dim; /* x as outer x dim x inner */
} bcast_case;

static const bcast_case bcast_cases[] = {
    {"axis: 1", 4, {2, 3, 4, 2}, 1, {3}, 2, 3},                   /* per channel (default) */
    {"axis: 1, num_axes: 2", 4, {2, 3, 4, 2}, 2, {3, 4}, 2, 12},  /* C x H */
    {"axis: -1", 3, {3, 5, 2}, 1, {2}, 15, 2},                    /* last axis */
    {"axis: 0", 3, {3, 5, 2}, 1, {3}, 1, 3},                      /* per example */
    {"num_axes: 0", 3, {3, 5, 2}, 0, {0}, 1, 1},                  /* one scalar */
    {"axis: 2, num_axes: -1", 4, {2, 3, 4, 3}, 2, {4, 3}, 6, 12}, /* to the end */
    {"axis: 1", 2, {5, 7}, 1, {7}, 5, 7},                         /* N x C */
};

/* y from x and the broadcast blobs, in double. */
static void bcast_reference(const dl_blob *xb, const bcast_case *c, const float *s, const float *b,
                            double *y) {
  const float *x = dl_cdata((dl_blob *)xb);
  size_t inner = xb->count / ((size_t)c->outer * c->dim);
  for (int o = 0; o < c->outer; o++)
    for (int d = 0; d < c->dim; d++)
      for (size_t i = 0; i < inner; i++) {
        size_t e = ((size_t)o * c->dim + d) * inner + i;
        y[e] = (double)x[e] * (s ? s[d] : 1) + (b ? b[d] : 0);
      }
}

static void bcast_run(const char *type, const bcast_case *c, int bias_term, uint64_t seed) {
  int is_scale = !strcmp(type, "Scale");
  char yaml[300];
  snprintf(yaml, sizeof yaml,
           "{name: s, type: %s, %s%s, filler: {type: uniform, min: -2, max: 2}%s}", type, c->yaml,
           bias_term ? ", bias_term: true" : "",
           bias_term ? ", bias_filler: {type: gaussian, std: 1}" : "");
  dl_blob *x = dl_test_blob("x", c->ndim, c->shape, -1, 1, seed), *y = dl_blob_new("y");
  dl_layer *l = make(yaml, DL_TRAIN, &x, 1, &y, 1);
  ck_assert_int_eq(l->nparams, 1 + bias_term);
  for (int p = 0; p < l->nparams; p++) {
    ck_assert_int_eq(l->params[p]->ndim, c->pdim);
    for (int a = 0; a < c->pdim; a++)
      ck_assert_int_eq(l->params[p]->shape[a], c->pshape[a]);
  }
  forward(l, &x, 1, &y, 1);
  double *want = malloc(x->count * sizeof(double));
  const float *s = is_scale ? dl_cdata(l->params[0]) : NULL;
  const float *b = is_scale ? (bias_term ? dl_cdata(l->params[1]) : NULL) : dl_cdata(l->params[0]);
  bcast_reference(x, c, s, b, want);
  for (size_t i = 0; i < x->count; i++)
    ck_assert_msg(fabs(dl_cdata(y)[i] - want[i]) <= 1e-6 * fmax(1, fabs(want[i])),
                  "%s: y[%zu] = %g, want %g", yaml, i, dl_cdata(y)[i], want[i]);
  free(want);
  gradcheck_ok(l, &x, 1, &y, 1, NULL);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}

START_TEST(scale_learned_axis_variants) {
  for (size_t k = 0; k < sizeof bcast_cases / sizeof bcast_cases[0]; k++) {
    bcast_run("Scale", &bcast_cases[k], 0, 50 + k);
    bcast_run("Scale", &bcast_cases[k], 1, 60 + k);
  }
}
END_TEST

START_TEST(bias_learned_axis_variants) {
  for (size_t k = 0; k < sizeof bcast_cases / sizeof bcast_cases[0]; k++)
    bcast_run("Bias", &bcast_cases[k], 0, 70 + k);
}
END_TEST

START_TEST(scale_defaults) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 2, 2}, -1, 1, 1), *y = dl_blob_new("y");
  dl_layer *l = make("{name: s, type: Scale}", DL_TRAIN, &x, 1, &y, 1);
  ck_assert_int_eq(l->nparams, 1); /* no bias by default */
  dl_check_close(dl_cdata(l->params[0]), (const float[]){1, 1, 1}, 3, 0, "scale init");
  forward(l, &x, 1, &y, 1);
  dl_check_close(dl_cdata(y), dl_cdata(x), x->count, 0, "identity at init");
  dl_layer_free(l);
  l = make("{name: b, type: Bias}", DL_TRAIN, &x, 1, &y, 1);
  dl_check_close(dl_cdata(l->params[0]), (const float[]){0, 0, 0}, 3, 0, "bias init");
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* The scale (or bias) as a second bottom: hand forward and gradients into it. */
START_TEST(scale_and_bias_from_a_bottom) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){2, 3, 2}, -1, 1, 8);
  dl_blob *s = dl_test_blob("s", 2, (int[]){2, 3}, -2, 2, 9), *y = dl_blob_new("y");
  set_values(x, (const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  set_values(s, (const float[]){1, -1, 2, 0, 0.5f, 3});
  dl_blob *bottom[2] = {x, s};
  dl_layer *l = make("{name: s, type: Scale, axis: 0}", DL_TRAIN, bottom, 2, &y, 1);
  ck_assert_int_eq(l->nparams, 0);
  forward(l, bottom, 2, &y, 1);
  dl_check_close(dl_cdata(y), (const float[]){1, 2, -3, -4, 10, 12, 0, 0, 4.5f, 5, 33, 36}, 12,
                 1e-6, "scale by bottom");
  gradcheck_ok(l, bottom, 2, &y, 1, NULL);
  dl_layer_free(l);
  /* With a learned bias of s's shape, and s per channel (axis 1, 1-d). */
  dl_blob *c = dl_test_blob("c", 1, (int[]){3}, -2, 2, 10);
  bottom[1] = c;
  l = make("{name: s, type: Scale, bias_term: true, bias_filler: {type: uniform, min: -1, max: 1}}",
           DL_TRAIN, bottom, 2, &y, 1);
  ck_assert_int_eq(l->nparams, 1);
  ck_assert_int_eq(l->params[0]->count, 3);
  gradcheck_ok(l, bottom, 2, &y, 1, NULL);
  dl_layer_free(l);
  /* Bias from a bottom. */
  bottom[1] = s;
  l = make("{name: b, type: Bias, axis: 0}", DL_TRAIN, bottom, 2, &y, 1);
  ck_assert_int_eq(l->nparams, 0);
  forward(l, bottom, 2, &y, 1);
  dl_check_close(dl_cdata(y), (const float[]){2, 3, 2, 3, 7, 8, 7, 8, 9.5f, 10.5f, 14, 15}, 12,
                 1e-6, "bias by bottom");
  gradcheck_ok(l, bottom, 2, &y, 1, NULL);
  dl_layer_free(l);
  /* A scalar bottom (0-d) scales everything. */
  dl_blob *k = dl_blob_new("k");
  ck_assert(dl_blob_reshape(k, 0, NULL) == DL_OK);
  dl_data(k)[0] = -2;
  bottom[1] = k;
  l = make("{name: s, type: Scale}", DL_TRAIN, bottom, 2, &y, 1);
  forward(l, bottom, 2, &y, 1);
  ck_assert_float_eq(dl_cdata(y)[11], -24);
  gradcheck_ok(l, bottom, 2, &y, 1, NULL);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, s, c, k, y}, 5);
}
END_TEST

/* ---- config errors ---------------------------------------------------------- */

START_TEST(config_errors) {
  dl_blob *x4 = dl_test_blob("x", 4, (int[]){2, 3, 4, 4}, -1, 1, 1);
  dl_blob *x3 = dl_test_blob("x", 3, (int[]){2, 3, 4}, -1, 1, 1);
  dl_blob *s = dl_test_blob("s", 2, (int[]){3, 5}, -1, 1, 1);
  expect_config_error("{name: n, type: LRN, local_size: 4}", &x4, 1,
                      "layer 'n' (LRN): local_size must be odd (the window is centred), got 4");
  expect_config_error("{name: n, type: LRN, local_size: 0}", &x4, 1, "local_size");
  expect_config_error("{name: n, type: LRN, norm_region: within_chanel}", &x4, 1,
                      "did you mean 'within_channel'");
  expect_config_error("{name: n, type: LRN}", &x3, 1,
                      "needs an N x C x H x W input (4 axes), got 2 x 3 x 4");
  expect_config_error("{name: n, type: LRN, k: 0}", &x4, 1, "k: expected a number in");
  expect_config_error("{name: bn, type: BatchNorm, use_global_stats: maybe}", &x4, 1,
                      "expected one of false, true, auto");
  expect_config_error("{name: bn, type: BatchNorm, moving_average_fraction: 1.5}", &x4, 1,
                      "moving_average_fraction");
  expect_config_error(
      "{name: s, type: Scale, axis: 4}", &x4, 1,
      "layer 's' (Scale): axis 4 is out of range for the 4-axis input 2 x 3 x 4 x 4");
  expect_config_error("{name: s, type: Scale, axis: -5}", &x4, 1, "axis -5 is out of range");
  expect_config_error("{name: s, type: Scale, axis: 2, num_axes: 3}", &x4, 1,
                      "axis 2 with num_axes 3 needs 5 axes, but the input 2 x 3 x 4 x 4 has 4");
  expect_config_error("{name: b, type: Bias, axis: 3}", &x3, 1,
                      "layer 'b' (Bias): axis 3 is out of range for the 3-axis input");
  expect_config_error("{name: b, type: Bias, axis: 1, num_axes: 3}", &x3, 1, "needs 4 axes");
  dl_blob *bottom[2] = {x3, s};
  expect_config_error("{name: s, type: Scale}", bottom, 2,
                      "the scale bottom 3 x 5 must match the input 2 x 3 x 4 from axis 1 on");
  expect_config_error("{name: b, type: Bias}", bottom, 2,
                      "the bias bottom 3 x 5 must match the input 2 x 3 x 4 from axis 1 on");
  /* A learned scale whose input changes shape later. */
  dl_blob *y = dl_blob_new("y");
  dl_layer *l = make("{name: s, type: Scale}", DL_TRAIN, &x4, 1, &y, 1);
  ck_assert(dl_blob_reshape(x4, 4, (int[]){2, 5, 4, 4}) == DL_OK);
  dl_diag_clear();
  ck_assert_int_eq(l->ops->reshape(l, &x4, 1, &y, 1), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "no longer matches the learned scale 3"));
  dl_layer_free(l);
  l = make("{name: bn, type: BatchNorm}", DL_TRAIN, &x3, 1, &y, 1);
  ck_assert(dl_blob_reshape(x3, 3, (int[]){2, 4, 4}) == DL_OK);
  dl_diag_clear();
  ck_assert_int_eq(l->ops->reshape(l, &x3, 1, &y, 1), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "has 4 channels, but the statistics have 3"));
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x4, x3, s, y}, 4);
}
END_TEST

/* ---- in a net, with the solver ------------------------------------------------ */

static dl_solver *make_solver(const char *net_yaml, const char *solver_yaml, const char *dir) {
  return dl_test_solver(net_yaml, solver_yaml, dir, "snap");
}

static const char *bn_net =
    "name: bn\nlayers:\n"
    "  - {name: x, type: SyntheticData, top: x, shape: [8, 3, 2, 2], mean: 1, std: 2}\n"
    "  - {name: t, type: SyntheticData, top: t, shape: [8, 2]}\n"
    "  - {name: bn, type: BatchNorm, bottom: x, top: xn, moving_average_fraction: 0.9}\n"
    "  - {name: sc, type: Scale, bottom: xn, top: xn, bias_term: true}\n"
    "  - {name: ip, type: InnerProduct, bottom: xn, top: p, num_output: 2}\n"
    "  - {name: loss, type: EuclideanLoss, bottom: [p, t], top: loss}\n";

/* Index of `b` among the net's learnable blobs. */
static int param_index(const dl_net *net, const dl_blob *b) {
  for (int j = 0; j < net->nparams; j++)
    if (net->params[j] == b) return j;
  ck_abort_msg("blob %s is not a net parameter", b->name);
  return -1;
}

/* The fixed batch x goes through BatchNorm once per step; the solver (with
 * momentum and weight decay) must leave the statistics exactly as the running
 * formula leaves them, with no momentum of their own; Scale learns. The test
 * net, sharing the statistics, normalizes with them; a weights file carries them. */
START_TEST(bn_statistics_are_not_learned) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s = make_solver(bn_net,
                             "base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.5\nmax_iter: 10\n"
                             "test_iter: 1\ntest_interval: 100\n",
                             dir);
  dl_net *net = s->train;
  dl_layer *bn = dl_net_layer(net, "bn"), *sc = dl_net_layer(net, "sc");
  ck_assert_int_eq(net->nparams, 3 + 2 + 2);
  float sc0[3];
  memcpy(sc0, dl_cdata(sc->params[0]), sizeof sc0);
  double mean[3], var[3], f = 0.9, norm = 0;
  for (int it = 1; it <= 3; it++) {
    ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
    if (it == 1)
      for (int c = 0; c < 3; c++)
        channel_stats(dl_net_blob(net, "x"), c, &mean[c], &var[c]);
    norm = f * norm + 1;
    double m = 8 * 4;
    for (int c = 0; c < 3; c++) {
      ck_assert_double_eq_tol(dl_cdata(bn->params[0])[c], norm * mean[c], 1e-5 * norm);
      ck_assert_double_eq_tol(dl_cdata(bn->params[1])[c], norm * var[c] * m / (m - 1),
                              1e-5 * norm * var[c]);
    }
    ck_assert_double_eq_tol(dl_cdata(bn->params[2])[0], norm, 1e-6);
  }
  const float *hist = dl_mem_host(s->history);
  for (int k = 0; k < 3; k++) {
    int j = param_index(net, bn->params[k]);
    ck_assert_float_eq(net->lr_mult[j], 0);
    for (size_t i = 0; i < bn->params[k]->count; i++)
      ck_assert_float_eq(hist[net->param_offset[j] + i], 0);
  }
  ck_assert_msg(memcmp(sc0, dl_cdata(sc->params[0]), sizeof sc0) != 0, "Scale did not learn");

  /* The test net reads the same statistics: global mean and variance. */
  dl_layer *tbn = dl_net_layer(s->test, "bn");
  ck_assert_ptr_eq(dl_cdata(tbn->params[0]), dl_cdata(bn->params[0]));
  ck_assert_int_eq(dl_net_forward(s->test, NULL), DL_OK);
  dl_blob *tx = dl_net_blob(s->test, "x"), *txn = dl_net_blob(s->test, "xn");
  dl_blob *tsc = dl_net_layer(s->test, "sc")->params[0],
          *tsb = dl_net_layer(s->test, "sc")->params[1];
  const float *xv = dl_cdata(tx), *yv = dl_cdata(txn);
  double mean_rm = dl_cdata(bn->params[0])[1] / norm, var_rm = dl_cdata(bn->params[1])[1] / norm;
  for (int i = 0; i < 4; i++) { /* example 0, channel 1 */
    double want = (xv[4 + i] - mean_rm) / sqrt(var_rm + 1e-5) * dl_cdata(tsc)[1] + dl_cdata(tsb)[1];
    ck_assert_double_eq_tol(yv[4 + i], want, 1e-5);
  }

  /* Saved with the weights, and loaded back into a fresh net. */
  char path[600];
  snprintf(path, sizeof path, "%s/w.dlweights", dir);
  ck_assert_int_eq(dl_net_export_weights(net, path), DL_OK);
  dl_ctx ctx = {.seed = 77};
  dl_net *fresh = NULL;
  dl_diag_clear();
  ck_assert_msg(dl_net_from_string(bn_net, "<net>", DL_TRAIN, &ctx, &fresh) == DL_OK, "%s",
                dl_diag_text());
  int loaded = 0;
  ck_assert_msg(dl_net_load_weights(fresh, path, NULL, &loaded) == DL_OK, "%s", dl_diag_text());
  ck_assert_int_eq(loaded, net->nparams);
  dl_layer *fbn = dl_net_layer(fresh, "bn");
  for (int k = 0; k < 3; k++)
    dl_check_close(dl_cdata(fbn->params[k]), dl_cdata(bn->params[k]), bn->params[k]->count, 0,
                   "loaded statistics");
  dl_net_free(fresh);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* Any blob with lr_mult 0 is frozen: no step, no weight decay, no momentum. */
START_TEST(lr_mult_zero_is_frozen) {
  static const char *net_yaml =
      "name: q\nlayers:\n"
      "  - {name: x, type: SyntheticData, top: x, shape: [8, 5]}\n"
      "  - {name: y, type: SyntheticData, top: y, shape: [8, 3]}\n"
      "  - {name: ip, type: InnerProduct, bottom: x, top: p, num_output: 3,\n"
      "     param: [{lr_mult: 0}, {lr_mult: 1, decay_mult: 1}]}\n"
      "  - {name: loss, type: EuclideanLoss, bottom: [p, y], top: loss}\n";
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s =
      make_solver(net_yaml, "base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.5\nmax_iter: 10\n", dir);
  dl_layer *ip = dl_net_layer(s->train, "ip");
  size_t nw = ip->params[0]->count;
  float *w0 = malloc(nw * sizeof(float)), b0 = dl_cdata(ip->params[1])[0];
  memcpy(w0, dl_cdata(ip->params[0]), nw * sizeof(float));
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
  ck_assert_int_eq(memcmp(w0, dl_cdata(ip->params[0]), nw * sizeof(float)), 0);
  ck_assert_float_ne(dl_cdata(ip->params[1])[0], b0);
  free(w0);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* BatchNorm's statistics may carry lr_mult: 0 (Caffe's prototxts do), but not more. */
START_TEST(bn_statistics_cannot_be_given_a_learning_rate) {
  dl_ctx ctx = {.seed = 1};
  dl_net *net = NULL;
  const char *ok = "name: n\nlayers:\n"
                   "  - {name: x, type: SyntheticData, top: x, shape: [4, 3]}\n"
                   "  - {name: bn, type: BatchNorm, bottom: x, top: y,\n"
                   "     param: [{lr_mult: 0}, {lr_mult: 0}, {lr_mult: 0}]}\n";
  dl_diag_clear();
  ck_assert_msg(dl_net_from_string(ok, "<net>", DL_TRAIN, &ctx, &net) == DL_OK, "%s",
                dl_diag_text());
  for (int j = 0; j < net->nparams; j++) {
    ck_assert_float_eq(net->lr_mult[j], 0);
    ck_assert_float_eq(net->decay_mult[j], 0);
  }
  dl_net_free(net);
  const char *bad =
      "name: n\nlayers:\n"
      "  - {name: x, type: SyntheticData, top: x, shape: [4, 3]}\n"
      "  - {name: bn, type: BatchNorm, bottom: x, top: y, param: [{lr_mult: 0}, {lr_mult: 1}]}\n";
  dl_diag_clear();
  ck_assert_int_eq(dl_net_from_string(bad, "<net>", DL_TRAIN, &ctx, &net), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "<net>:4:"));
  ck_assert_ptr_nonnull(strstr(dl_diag_text(),
                               "parameter 1 ('bn/variance') is maintained by the layer and cannot "
                               "be learned"));
  ck_assert_ptr_null(net);
}
END_TEST

Suite *suite_norm_layers(void) {
  Suite *s = suite_create("norm_layers");
  TCase *tc = tcase_create("norm_layers");
  tcase_add_test(tc, lrn_across_channels);
  tcase_add_test(tc, lrn_within_channel);
  tcase_add_test(tc, lrn_reshape_to_larger_planes);
  tcase_add_test(tc, bn_train_normalizes_per_channel);
  tcase_add_test(tc, bn_running_stats_follow_caffe);
  tcase_add_test(tc, bn_global_stats_in_test_phase);
  tcase_add_test(tc, bn_gradcheck_batch_stats);
  tcase_add_test(tc, bn_gradcheck_global_stats);
  tcase_add_test(tc, in_place_matches_out_of_place);
  tcase_add_test(tc, scale_learned_axis_variants);
  tcase_add_test(tc, bias_learned_axis_variants);
  tcase_add_test(tc, scale_defaults);
  tcase_add_test(tc, scale_and_bias_from_a_bottom);
  tcase_add_test(tc, config_errors);
  tcase_add_test(tc, bn_statistics_are_not_learned);
  tcase_add_test(tc, lr_mult_zero_is_frozen);
  tcase_add_test(tc, bn_statistics_cannot_be_given_a_learning_rate);
  suite_add_tcase(s, tc);
  return s;
}
