/* ELU, PReLU, Power, AbsVal and SigmoidCrossEntropyLoss: hand-computed forward
 * and backward values, in-place use, gradient checks on an aligned and an odd
 * shape, saturation without overflow, and errors that name what is wrong. */
#include <math.h>

#include "core/math.h"
#include "tests/testutil.h"

static void free_blobs(dl_blob **b, int n) {
  for (int i = 0; i < n; i++)
    dl_blob_free(b[i]);
}

static void set_values(dl_blob *b, const float *v) { memcpy(dl_data(b), v, b->count * sizeof *v); }

/* The element-wise layers on a 1-d x of n values: forward, then backward of dy
 * (NULL: all ones); y and dx out. */
static void run_hand(const char *yaml, const float *in, const float *dy, size_t n, float *y,
                     float *dx) {
  dl_blob *x = dl_test_blob("x", 1, (int[]){(int)n}, 0, 1, 1), *t = dl_blob_new("y");
  memcpy(dl_data(x), in, n * sizeof(float));
  dl_layer *l = dl_test_layer(yaml, &x, 1, &t, 1);
  ck_assert(l->ops->forward(l, &x, 1, &t, 1) == DL_OK);
  ck_assert_int_eq(t->ndim, 1);
  ck_assert_int_eq(t->shape[0], (int)n);
  if (dy)
    memcpy(dl_diff(t), dy, n * sizeof(float));
  else
    dl_set(n, 1.0f, dl_diff(t));
  l->ops->backward(l, &t, 1, (int[]){1}, &x, 1);
  memcpy(y, dl_cdata(t), n * sizeof(float));
  memcpy(dx, dl_cdiff(x), n * sizeof(float));
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, t}, 2);
}

/* Gradient check on an aligned shape and an odd one, inputs uniform in [lo, hi);
 * elements within kink_range of 0 are skipped when kink_range > 0. */
static void check_grad(const char *yaml, float lo, float hi, double kink_range) {
  const int shapes[2][4] = {{2, 3, 4, 4}, {3, 5, 7, 1}};
  dl_gradcheck_opts o = {.kink = 0, .kink_range = kink_range};
  for (int k = 0; k < 2; k++) {
    dl_blob *x = dl_test_blob("x", 4, shapes[k], lo, hi, 7 + (uint64_t)k), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
    char msg[512];
    int bad = dl_gradcheck(l, &x, 1, &y, 1, &o, msg, sizeof msg);
    ck_assert_msg(bad == 0, "%s, shape %d: %d mismatches: %s", yaml, k, bad, msg);
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, y}, 2);
  }
}

/* In place (top == bottom) must give bit for bit what separate blobs give: y,
 * dx and any parameter gradient (PReLU's needs the input the top overwrote). */
static void check_in_place(const char *yaml) {
  const int shape[3] = {3, 5, 7};
  dl_blob *x = dl_test_blob("x", 3, shape, -4, 4, 5), *y = dl_blob_new("y");
  dl_blob *z = dl_test_blob("x", 3, shape, -4, 4, 5); /* same values as x */
  dl_blob *dy = dl_test_blob("dy", 3, shape, -1, 1, 6);
  size_t n = x->count;
  dl_layer *a = dl_test_layer(yaml, &x, 1, &y, 1), *b = dl_test_layer(yaml, &z, 1, &z, 1);
  ck_assert(a->ops->forward(a, &x, 1, &y, 1) == DL_OK);
  ck_assert(b->ops->forward(b, &z, 1, &z, 1) == DL_OK);
  ck_assert_int_eq(memcmp(dl_cdata(y), dl_cdata(z), n * sizeof(float)), 0);
  ck_assert(memcmp(dl_cdata(x), dl_cdata(z), n * sizeof(float)) != 0); /* z did change */
  dl_copy(n, dl_cdata(dy), dl_diff(y));
  dl_copy(n, dl_cdata(dy), dl_diff(z));
  for (int p = 0; p < a->nparams; p++) {
    dl_set(a->params[p]->count, 0, dl_diff(a->params[p]));
    dl_set(b->params[p]->count, 0, dl_diff(b->params[p]));
  }
  a->ops->backward(a, &y, 1, (int[]){1}, &x, 1);
  b->ops->backward(b, &z, 1, (int[]){1}, &z, 1);
  ck_assert_int_eq(memcmp(dl_cdiff(x), dl_cdiff(z), n * sizeof(float)), 0);
  ck_assert(memcmp(dl_cdiff(z), dl_cdata(dy), n * sizeof(float)) != 0);
  for (int p = 0; p < a->nparams; p++) {
    size_t m = a->params[p]->count;
    ck_assert(dl_asum(m, dl_cdiff(a->params[p])) > 0);
    ck_assert_int_eq(memcmp(dl_cdiff(a->params[p]), dl_cdiff(b->params[p]), m * sizeof(float)), 0);
  }
  dl_layer_free(a);
  dl_layer_free(b);
  free_blobs((dl_blob *[]){x, y, z, dy}, 4);
}

/* Building or setting up `yaml` on x -> top must fail with DL_ECONFIG and
 * `want` in the message. */
static void expect_config_error(const char *yaml, dl_blob *x, dl_blob *top, const char *want) {
  dl_layer *l = NULL;
  dl_diag_clear();
  dl_status st = dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l);
  if (st == DL_OK) st = dl_layer_setup(l, &x, 1, &top, 1);
  ck_assert_msg(st == DL_ECONFIG, "%s: status %d", yaml, st);
  ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "%s: message '%s' lacks '%s'", yaml,
                dl_diag_text(), want);
  dl_layer_free(l);
}

/* ---- ELU -------------------------------------------------------------------- */

START_TEST(elu_hand) {
  const float in[6] = {-2, -1, 0, 0.5f, 3, -20};
  const float e2 = 0.13533528f, e1 = 0.36787944f;
  const float want_y[6] = {e2 - 1, e1 - 1, 0, 0.5f, 3, -1};
  const float want_dx[6] = {e2, e1, 1, 1, 1, 0}; /* at 0: the left side, alpha exp(0) */
  float y[6], dx[6];
  run_hand("{name: e, type: ELU}", in, NULL, 6, y, dx);
  dl_check_close(y, want_y, 6, 1e-6, "y");
  dl_check_close(dx, want_dx, 6, 1e-6, "dx");
  run_hand("{name: e, type: ELU, alpha: 0.5}", in, NULL, 6, y, dx);
  const float want_y2[6] = {0.5f * (e2 - 1), 0.5f * (e1 - 1), 0, 0.5f, 3, -0.5f};
  const float want_dx2[6] = {0.5f * e2, 0.5f * e1, 0.5f, 1, 1, 0};
  dl_check_close(y, want_y2, 6, 1e-6, "y, alpha 0.5");
  dl_check_close(dx, want_dx2, 6, 1e-6, "dx, alpha 0.5");
}
END_TEST

START_TEST(elu_in_place) {
  check_in_place("{name: e, type: ELU}");
  check_in_place("{name: e, type: ELU, alpha: 0.3}");
}
END_TEST

/* alpha != 1 has a kink at 0 (slopes alpha and 1). */
START_TEST(elu_gradcheck) {
  check_grad("{name: e, type: ELU}", -3, 3, 0);
  check_grad("{name: e, type: ELU, alpha: 0.3}", -3, 3, 0.02);
}
END_TEST

START_TEST(elu_negative_alpha_is_refused) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, -1, 1, 1), *y = dl_blob_new("y");
  expect_config_error("{name: e, type: ELU, alpha: -1}", x, y, "alpha");
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* ---- PReLU ------------------------------------------------------------------ */

/* x (1 x 2 x 3), slopes {0.25, 0.5}; then backward twice: slope gradients
 * accumulate, the bottom's diff does not. */
START_TEST(prelu_hand) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){1, 2, 3}, 0, 1, 1), *y = dl_blob_new("y");
  set_values(x, (const float[]){-2, 1, -0.5f, 3, -4, 0});
  dl_layer *l = dl_test_layer("{name: p, type: PReLU}", &x, 1, &y, 1);
  ck_assert_int_eq(l->nparams, 1);
  ck_assert_int_eq(l->params[0]->ndim, 1);
  ck_assert_int_eq(l->params[0]->shape[0], 2);
  dl_check_close(dl_cdata(l->params[0]), (const float[]){0.25f, 0.25f}, 2, 0, "default slope");
  set_values(l->params[0], (const float[]){0.25f, 0.5f});
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_check_close(dl_cdata(y), (const float[]){-0.5f, 1, -0.125f, 3, -2, 0}, 6, 1e-7, "y");
  memcpy(dl_diff(y), (const float[]){1, 2, 3, 4, 5, 6}, 6 * sizeof(float));
  dl_set(2, 0, dl_diff(l->params[0]));
  for (int pass = 1; pass <= 2; pass++) {
    l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
    /* x = 0 takes the slope, as in Caffe (x > 0 is the test). */
    dl_check_close(dl_cdiff(x), (const float[]){0.25f, 2, 0.75f, 4, 2.5f, 3}, 6, 1e-7, "dx");
    const float want_da[2] = {-3.5f * (float)pass, -20.0f * (float)pass};
    dl_check_close(dl_cdiff(l->params[0]), want_da, 2, 1e-6, "da");
  }
  l->ops->backward(l, &y, 1, (int[]){0}, &x, 1); /* no bottom gradient: slopes still learn */
  dl_check_close(dl_cdiff(l->params[0]), (const float[]){-10.5f, -60}, 2, 1e-6, "da, 3 passes");
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

START_TEST(prelu_channel_shared) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){1, 2, 3}, 0, 1, 1), *y = dl_blob_new("y");
  set_values(x, (const float[]){-2, 1, -0.5f, 3, -4, 0});
  dl_layer *l = dl_test_layer("{name: p, type: PReLU, channel_shared: true, filler: {type: "
                              "constant, value: 0.5}}",
                              &x, 1, &y, 1);
  ck_assert_int_eq(l->params[0]->count, 1);
  ck_assert_float_eq(dl_cdata(l->params[0])[0], 0.5f);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_check_close(dl_cdata(y), (const float[]){-1, 1, -0.25f, 3, -2, 0}, 6, 1e-7, "y");
  dl_set(6, 1, dl_diff(y));
  dl_set(1, 0, dl_diff(l->params[0]));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  ck_assert_float_eq_tol(dl_cdiff(l->params[0])[0], -6.5f, 1e-6f);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* Bottom and slopes, per channel and shared; the slopes start random so that a
 * mixed-up channel index shows. */
START_TEST(prelu_gradcheck) {
  check_grad("{name: p, type: PReLU, filler: {type: uniform, min: -0.5, max: 0.9}}", -3, 3, 0.02);
  check_grad("{name: p, type: PReLU, channel_shared: true, filler: {type: uniform, min: -0.5, max: "
             "0.9}}",
             -3, 3, 0.02);
}
END_TEST

START_TEST(prelu_in_place) {
  check_in_place("{name: p, type: PReLU, filler: {type: uniform, min: 0.1, max: 0.9}}");
  check_in_place("{name: p, type: PReLU, channel_shared: true}");
}
END_TEST

START_TEST(prelu_errors) {
  dl_blob *x1 = dl_test_blob("x", 1, (int[]){7}, -1, 1, 1), *y = dl_blob_new("y");
  expect_config_error("{name: p, type: PReLU}", x1, y,
                      "bottom 'x' is 7; it needs at least 2 axes (N x C x ...)");
  dl_blob *x = dl_test_blob("x", 3, (int[]){2, 3, 4}, -1, 1, 1);
  dl_layer *l = dl_test_layer("{name: p, type: PReLU}", &x, 1, &y, 1);
  ck_assert(dl_blob_reshape(x, 3, (int[]){2, 4, 4}) == DL_OK);
  dl_diag_clear();
  ck_assert_int_eq(l->ops->reshape(l, &x, 1, &y, 1), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "bottom 'x' (2 x 4 x 4) has 4 channels but the "
                                               "slopes are for 3"));
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x1, x, y}, 3);
}
END_TEST

/* ---- Power ------------------------------------------------------------------ */

typedef struct {
  const char *yaml;
  float x[4], y[4], dx[4];
} power_case;

START_TEST(power_hand) {
  static const power_case cases[] = {
      {"{name: p, type: Power, power: 2, scale: 2, shift: 1}",
       {0, 1, -0.5f, 2},
       {1, 9, 0, 25},
       {4, 12, 0, 20}},
      {"{name: p, type: Power, power: 0.5}",
       {4, 9, 0.25f, 1},
       {2, 3, 0.5f, 1},
       {0.25f, 1 / 6.0f, 1, 0.5f}},
      {"{name: p, type: Power, power: -1, shift: 1}",
       {0, 1, 3, -0.5f},
       {1, 0.5f, 0.25f, 2},
       {-1, -0.25f, -0.0625f, -4}},
      {"{name: p, type: Power, scale: 3, shift: -1}",
       {0, 1, -0.5f, 2},
       {-1, 2, -2.5f, 5},
       {3, 3, 3, 3}},
      {"{name: p, type: Power, power: 0, scale: 3}", {0, 1, -0.5f, 2}, {1, 1, 1, 1}, {0, 0, 0, 0}},
      {"{name: p, type: Power, power: 3, scale: 0, shift: 2}",
       {0, 1, -0.5f, 2},
       {8, 8, 8, 8},
       {0, 0, 0, 0}},
      {"{name: p, type: Power}", {0, 1, -0.5f, 2}, {0, 1, -0.5f, 2}, {1, 1, 1, 1}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    float y[4], dx[4];
    run_hand(cases[k].yaml, cases[k].x, NULL, 4, y, dx);
    dl_check_close(y, cases[k].y, 4, 1e-6, cases[k].yaml);
    dl_check_close(dx, cases[k].dx, 4, 1e-6, cases[k].yaml);
  }
}
END_TEST

/* Inputs in [0.25, 2], so the bases below stay away from 0. */
START_TEST(power_gradcheck) {
  check_grad("{name: p, type: Power, power: 2, scale: 2, shift: 1}", 0.25f, 2, 0);
  check_grad("{name: p, type: Power, power: 0.5, scale: 0.5, shift: 1}", 0.25f, 2, 0);
  check_grad("{name: p, type: Power, power: -1.5, shift: 2}", 0.25f, 2, 0);
  check_grad("{name: p, type: Power, power: 3, scale: -1}", 0.25f, 2, 0);
}
END_TEST

/* ---- AbsVal ----------------------------------------------------------------- */

START_TEST(absval_hand) {
  float y[4], dx[4];
  run_hand("{name: a, type: AbsVal}", (const float[]){-2, 0, 3, -0.5f}, (const float[]){1, 2, 3, 4},
           4, y, dx);
  dl_check_close(y, (const float[]){2, 0, 3, 0.5f}, 4, 0, "y");
  dl_check_close(dx, (const float[]){-1, 0, 3, -4}, 4, 0, "dx");
}
END_TEST

START_TEST(absval_gradcheck) { check_grad("{name: a, type: AbsVal}", -1, 1, 0.02); }
END_TEST

/* Backward needs x's sign, which |x| lost: in place is refused, as for Power
 * (which needs x too). */
START_TEST(absval_and_power_refuse_in_place) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, -1, 1, 1);
  expect_config_error("{name: a, type: AbsVal}", x, x,
                      "cannot work in place (top 'x' is also a bottom)");
  expect_config_error("{name: p, type: Power, power: 2}", x, x, "cannot work in place");
  dl_blob_free(x);
}
END_TEST

/* ---- SigmoidCrossEntropyLoss ------------------------------------------------ */

/* -[t log p + (1 - t) log(1 - p)], p = sigmoid(x): the textbook form in double,
 * fine for moderate x (the layer uses a different, overflow-free one). */
static double naive_ce(double x, double t) {
  double p = 1 / (1 + exp(-x));
  return -(t * log(p) + (1 - t) * log(1 - p));
}

typedef struct {
  dl_layer *l;
  dl_blob *x, *t, *loss;
} sce_run;

/* Scores and targets (2 x n/2), forward and backward of dloss = 1. */
static sce_run sce_hand(const char *yaml, const float *x, const float *t, int n) {
  sce_run r = {NULL, dl_test_blob("x", 2, (int[]){2, n / 2}, 0, 1, 1),
               dl_test_blob("t", 2, (int[]){2, n / 2}, 0, 1, 2), dl_blob_new("loss")};
  set_values(r.x, x);
  set_values(r.t, t);
  dl_blob *bottom[2] = {r.x, r.t};
  r.l = dl_test_layer(yaml, bottom, 2, &r.loss, 1);
  ck_assert_int_eq(r.loss->ndim, 0);
  ck_assert_msg(r.l->ops->forward(r.l, bottom, 2, &r.loss, 1) == DL_OK, "%s", dl_diag_text());
  dl_diff(r.loss)[0] = 1;
  dl_set(r.t->count, 7, dl_diff(r.t));
  r.l->ops->backward(r.l, &r.loss, 1, (int[]){1, 1}, bottom, 2);
  return r;
}

static void sce_free(sce_run *r) {
  dl_layer_free(r->l);
  free_blobs((dl_blob *[]){r->x, r->t, r->loss}, 3);
}

/* The default divides by the batch size (2 here), not by the 4 values: Caffe's
 * default for this layer. Targets get no gradient (their diff keeps its 7s). */
START_TEST(sce_hand_value) {
  const float x[4] = {0, 2, -1, 3}, t[4] = {1, 0, 0.5f, 1};
  sce_run r = sce_hand("{name: loss, type: SigmoidCrossEntropyLoss}", x, t, 4);
  double sum = 0;
  float want_dx[4];
  for (int i = 0; i < 4; i++) {
    sum += naive_ce(x[i], t[i]);
    want_dx[i] = (float)((1 / (1 + exp(-x[i])) - t[i]) / 2);
  }
  ck_assert_double_eq_tol(
      sum, log(2.0) + 2 + log1p(exp(-2.0)) + 0.5 + log1p(exp(-1.0)) + log1p(exp(-3.0)), 1e-12);
  ck_assert_double_eq_tol(dl_cdata(r.loss)[0], sum / 2, 1e-6);
  dl_check_close(dl_cdiff(r.x), want_dx, 4, 1e-6, "dx");
  dl_check_close(dl_cdiff(r.t), (const float[]){7, 7, 7, 7}, 4, 0, "targets' diff");
  ck_assert_uint_eq(r.l->ops->no_grad_bottoms, 1u << 1);
  ck_assert(r.l->ops->flags & DL_LAYER_LOSS);
  sce_free(&r);
}
END_TEST

/* Target 255 ignored: no loss, no gradient, and not counted by valid. */
START_TEST(sce_normalization_and_ignore) {
  const float x[4] = {0, 2, -1, 3}, t[4] = {1, 255, 0.5f, 1};
  static const char *const cfg[] = {
      "{name: loss, type: SigmoidCrossEntropyLoss, ignore_label: 255}",
      "{name: loss, type: SigmoidCrossEntropyLoss, ignore_label: 255, normalization: valid}",
      "{name: loss, type: SigmoidCrossEntropyLoss, ignore_label: 255, normalization: full}",
      "{name: loss, type: SigmoidCrossEntropyLoss, ignore_label: 255, normalization: none}"};
  const double norm[4] = {2, 3, 4, 1};
  double sum = naive_ce(0, 1) + naive_ce(-1, 0.5) + naive_ce(3, 1);
  for (int k = 0; k < 4; k++) {
    sce_run r = sce_hand(cfg[k], x, t, 4);
    ck_assert_double_eq_tol(dl_cdata(r.loss)[0], sum / norm[k], 1e-6);
    ck_assert_float_eq(dl_cdiff(r.x)[1], 0);
    ck_assert_double_eq_tol(dl_cdiff(r.x)[0], -0.5 / norm[k], 1e-6);
    sce_free(&r);
  }
}
END_TEST

/* |x| = 30, 100 and 1000: the textbook form takes log(0) here, and exp(|x|)
 * overflows even a double at 1000; the loss and gradient must stay finite and right. */
START_TEST(sce_stable_for_large_scores) {
  const float x[6] = {100, -100, 1000, -1000, 30, -30}, t[6] = {0, 1, 0, 0, 0.5f, 0.5f};
  sce_run r = sce_hand("{name: loss, type: SigmoidCrossEntropyLoss}", x, t, 6);
  ck_assert_msg(isfinite(dl_cdata(r.loss)[0]), "loss %g", dl_cdata(r.loss)[0]);
  ck_assert_double_eq_tol(dl_cdata(r.loss)[0], (100 + 100 + 1000 + 0 + 15 + 15) / 2.0, 1e-4);
  dl_check_close(dl_cdiff(r.x), (const float[]){0.5f, -0.5f, 0.5f, 0, 0.25f, -0.25f}, 6, 1e-7,
                 "dx");
  sce_free(&r);
}
END_TEST

START_TEST(sce_gradcheck) {
  static const char *const cfg[] = {
      "{name: loss, type: SigmoidCrossEntropyLoss}",
      "{name: loss, type: SigmoidCrossEntropyLoss, normalization: valid, ignore_label: 255}",
      "{name: loss, type: SigmoidCrossEntropyLoss, normalization: full}",
      "{name: loss, type: SigmoidCrossEntropyLoss, normalization: none, ignore_label: -1}"};
  const int shapes[2][4] = {{2, 3, 4, 4}, {3, 5, 7, 1}};
  for (int c = 0; c < 4; c++)
    for (int k = 0; k < 2; k++) {
      dl_blob *x = dl_test_blob("x", 4, shapes[k], -3, 3, 40 + (uint64_t)(c * 2 + k));
      dl_blob *t = dl_test_blob("t", 4, shapes[k], 0, 1, 50 + (uint64_t)k),
              *loss = dl_blob_new("loss");
      float *tv = dl_data(t);
      for (size_t i = 0; i < t->count; i += 7)
        tv[i] = c == 1 ? 255 : c == 3 ? -1 : (float)(i % 2);
      dl_blob *bottom[2] = {x, t};
      dl_layer *l = dl_test_layer(cfg[c], bottom, 2, &loss, 1);
      char msg[512];
      int bad = dl_gradcheck(l, bottom, 2, &loss, 1, NULL, msg, sizeof msg);
      ck_assert_msg(bad == 0, "%s, shape %d: %d mismatches: %s", cfg[c], k, bad, msg);
      dl_layer_free(l);
      free_blobs((dl_blob *[]){x, t, loss}, 3);
    }
}
END_TEST

START_TEST(sce_errors) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, -1, 1, 1),
          *t = dl_test_blob("t", 2, (int[]){2, 2}, 0, 1, 2);
  dl_blob *loss = dl_blob_new("loss"), *bottom[2] = {x, t};
  dl_layer *l = NULL;
  dl_diag_clear();
  ck_assert(dl_layer_from_yaml("{name: loss, type: SigmoidCrossEntropyLoss}", DL_TRAIN, NULL, &l) ==
            DL_OK);
  ck_assert_int_eq(dl_layer_setup(l, bottom, 2, &loss, 1), DL_ECONFIG);
  ck_assert_ptr_nonnull(
      strstr(dl_diag_text(), "scores 2 x 3 and targets 2 x 2 must have the same count (6 vs 4)"));
  dl_layer_free(l);
  ck_assert(dl_blob_reshape(t, 2, (int[]){3, 2}) == DL_OK);
  l = dl_test_layer("{name: loss, type: SigmoidCrossEntropyLoss}", bottom, 2, &loss, 1);
  const float bad[2][6] = {{0, 1, 1.5f, 0, 0, 0}, {0, 0, 0, 0, NAN, 1}};
  const char *want[2] = {"target 1.5 at position 2 is outside [0, 1] (and is not ignore_label -1)",
                         "target nan at position 4 is outside [0, 1]"};
  for (int k = 0; k < 2; k++) {
    set_values(t, bad[k]);
    dl_diag_clear();
    ck_assert_int_eq(l->ops->forward(l, bottom, 2, &loss, 1), DL_EDATA);
    ck_assert_msg(strstr(dl_diag_text(), want[k]) != NULL, "'%s' lacks '%s'", dl_diag_text(),
                  want[k]);
  }
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, t, loss}, 3);
}
END_TEST

Suite *suite_pointwise(void) {
  Suite *s = suite_create("pointwise");
  TCase *tc = tcase_create("pointwise");
  tcase_add_test(tc, elu_hand);
  tcase_add_test(tc, elu_in_place);
  tcase_add_test(tc, elu_gradcheck);
  tcase_add_test(tc, elu_negative_alpha_is_refused);
  tcase_add_test(tc, prelu_hand);
  tcase_add_test(tc, prelu_channel_shared);
  tcase_add_test(tc, prelu_gradcheck);
  tcase_add_test(tc, prelu_in_place);
  tcase_add_test(tc, prelu_errors);
  tcase_add_test(tc, power_hand);
  tcase_add_test(tc, power_gradcheck);
  tcase_add_test(tc, absval_hand);
  tcase_add_test(tc, absval_gradcheck);
  tcase_add_test(tc, absval_and_power_refuse_in_place);
  tcase_add_test(tc, sce_hand_value);
  tcase_add_test(tc, sce_normalization_and_ignore);
  tcase_add_test(tc, sce_stable_for_large_scores);
  tcase_add_test(tc, sce_gradcheck);
  tcase_add_test(tc, sce_errors);
  suite_add_tcase(s, tc);
  return s;
}
