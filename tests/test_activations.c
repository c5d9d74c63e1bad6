/* Sigmoid and TanH: hand-computed forward and backward values, saturation
 * without overflow, in-place use, gradient checks on an aligned and an odd shape. */
#include <math.h>

#include "core/math.h"
#include "tests/testutil.h"

/* Forward of `in` (n values), then backward of dy = 1 everywhere; y and dx out. */
static void run_hand(const char *yaml, const float *in, size_t n, float *y, float *dx) {
  dl_blob *x = dl_test_blob("x", 1, (int[]){(int)n}, 0, 1, 1), *t = dl_blob_new("y");
  memcpy(dl_data(x), in, n * sizeof(float));
  dl_layer *l = dl_test_layer(yaml, &x, 1, &t, 1);
  ck_assert(l->ops->forward(l, &x, 1, &t, 1) == DL_OK);
  ck_assert_int_eq(t->ndim, 1);
  ck_assert_int_eq(t->shape[0], (int)n);
  dl_set(n, 1.0f, dl_diff(t));
  l->ops->backward(l, &t, 1, (int[]){1}, &x, 1);
  memcpy(y, dl_cdata(t), n * sizeof(float));
  memcpy(dx, dl_cdiff(x), n * sizeof(float));
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(t);
}

START_TEST(sigmoid_forward_backward_hand) {
  const float ln3 = logf(3);
  const float in[6] = {0, ln3, -ln3, 2, -2, 10};
  /* sigmoid(ln 3) = 3 / 4; dx = y (1 - y). */
  const float s2 = 0.88079708f, s10 = 0.9999546f;
  const float want_y[6] = {0.5f, 0.75f, 0.25f, s2, 1 - s2, s10};
  const float want_dx[6] = {0.25f, 0.1875f, 0.1875f, s2 * (1 - s2), s2 * (1 - s2), s10 * (1 - s10)};
  float y[6], dx[6];
  run_hand("{name: s, type: Sigmoid}", in, 6, y, dx);
  dl_check_close(y, want_y, 6, 1e-6, "y");
  dl_check_close(dx, want_dx, 6, 1e-6, "dx");
}
END_TEST

/* Large |x|: no NaN or inf, exact saturation above, a tiny non-negative value
 * below (1 / (1 + exp(100)) would go through exp overflow). Below about -87 the
 * fast exp stops at exp(-87) ~ 1.6e-38 instead of reaching the denormals:
 * indistinguishable from 0 for training. */
START_TEST(sigmoid_large_inputs) {
  const float in[6] = {100, -100, 1000, -1000, -20, 88.8f};
  float y[6], dx[6];
  run_hand("{name: s, type: Sigmoid}", in, 6, y, dx);
  for (int i = 0; i < 6; i++) {
    ck_assert_msg(isfinite(y[i]) && isfinite(dx[i]), "x = %g: y = %g, dx = %g", in[i], y[i], dx[i]);
    ck_assert_msg(y[i] >= 0 && y[i] <= 1, "x = %g: y = %g", in[i], y[i]);
  }
  ck_assert_float_eq(y[0], 1.0f);
  ck_assert_float_eq(y[2], 1.0f);
  ck_assert_msg(y[3] >= 0 && y[3] <= 1.7e-38f, "y(-1000) = %g", y[3]);
  ck_assert_float_eq(y[5], 1.0f);
  ck_assert_msg(y[1] > 0 && y[1] <= 1.7e-38f, "y(-100) = %g", y[1]);
  ck_assert_msg(fabs(y[4] - 2.0611537e-9) <= 1e-5 * 2.0611537e-9, "y(-20) = %g", y[4]);
  ck_assert_float_eq(dx[0], 0.0f);
}
END_TEST

START_TEST(tanh_forward_backward_hand) {
  const float ln2 = logf(2), ln3 = logf(3);
  /* tanh(ln k) = (k^2 - 1) / (k^2 + 1): 0.6 for k = 2, 0.8 for k = 3; dx = 1 - y^2. */
  const float in[6] = {0, ln2, -ln2, ln3, 1, -1};
  const float t1 = 0.76159416f;
  const float want_y[6] = {0, 0.6f, -0.6f, 0.8f, t1, -t1};
  const float want_dx[6] = {1, 0.64f, 0.64f, 0.36f, 1 - t1 * t1, 1 - t1 * t1};
  float y[6], dx[6];
  run_hand("{name: t, type: TanH}", in, 6, y, dx);
  dl_check_close(y, want_y, 6, 1e-6, "y");
  dl_check_close(dx, want_dx, 6, 1e-6, "dx");
}
END_TEST

START_TEST(tanh_large_inputs) {
  const float in[4] = {50, -50, 1e4f, -1e4f};
  const float want_y[4] = {1, -1, 1, -1}, want_dx[4] = {0, 0, 0, 0};
  float y[4], dx[4];
  run_hand("{name: t, type: TanH}", in, 4, y, dx);
  dl_check_close(y, want_y, 4, 0, "y");
  dl_check_close(dx, want_dx, 4, 0, "dx");
}
END_TEST

/* In place (top == bottom) must give bit for bit what separate blobs give,
 * for forward and for backward (which then reads y and overwrites dy). */
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
  a->ops->backward(a, &y, 1, (int[]){1}, &x, 1);
  b->ops->backward(b, &z, 1, (int[]){1}, &z, 1);
  ck_assert_int_eq(memcmp(dl_cdiff(x), dl_cdiff(z), n * sizeof(float)), 0);
  ck_assert(memcmp(dl_cdiff(z), dl_cdata(dy), n * sizeof(float)) != 0);
  dl_layer_free(a);
  dl_layer_free(b);
  dl_blob_free(x);
  dl_blob_free(y);
  dl_blob_free(z);
  dl_blob_free(dy);
}

/* Long runs go through the blocked exp (core/vmath.h: dl_vexp_block), a
 * tail value by value: both must give the same bits, close to the exact
 * sigmoid, including the saturated ends. */
START_TEST(sigmoid_blocks_match_one_by_one) {
  enum { N = 3 * 128 + 5 };
  float x[N], y[N];
  for (int i = 0; i < N; i++)
    x[i] = -100.0f + 200.0f * (float)i / (N - 1) + (i % 7 ? 0.0f : 0.37f);
  x[10] = 0.0f, x[11] = -0.0f, x[12] = 1000.0f, x[13] = -1000.0f;
  dl_sigmoid(N, x, y);
  for (int i = 0; i < N; i++) {
    float one;
    dl_sigmoid(1, &x[i], &one);
    ck_assert_msg(memcmp(&one, &y[i], sizeof one) == 0, "x = %.9g: block %.9g, alone %.9g", x[i],
                  y[i], one);
    double exact = 1.0 / (1.0 + exp(-(double)x[i]));
    ck_assert_msg(fabs(y[i] - exact) <= 3e-7 * exact + 2e-38, "x = %.9g: %.9g, exact %.9g", x[i],
                  y[i], exact);
  }
}
END_TEST

START_TEST(sigmoid_in_place) { check_in_place("{name: s, type: Sigmoid}"); }
END_TEST

START_TEST(tanh_in_place) { check_in_place("{name: t, type: TanH}"); }
END_TEST

/* An aligned shape and an odd one. */
static void check_grad(const char *yaml) {
  const int shapes[2][4] = {{2, 3, 4, 4}, {3, 5, 7, 1}};
  for (int k = 0; k < 2; k++) {
    dl_blob *x = dl_test_blob("x", 4, shapes[k], -3, 3, 7 + (uint64_t)k), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
    char msg[512];
    ck_assert_msg(dl_gradcheck(l, &x, 1, &y, 1, NULL, msg, sizeof msg) == 0, "shape %d: %s", k,
                  msg);
    dl_layer_free(l);
    dl_blob_free(x);
    dl_blob_free(y);
  }
}

START_TEST(sigmoid_gradcheck) { check_grad("{name: s, type: Sigmoid}"); }
END_TEST

START_TEST(tanh_gradcheck) { check_grad("{name: t, type: TanH}"); }
END_TEST

Suite *suite_activations(void) {
  Suite *s = suite_create("activations");
  TCase *tc = tcase_create("activations");
  tcase_add_test(tc, sigmoid_forward_backward_hand);
  tcase_add_test(tc, sigmoid_large_inputs);
  tcase_add_test(tc, sigmoid_blocks_match_one_by_one);
  tcase_add_test(tc, sigmoid_in_place);
  tcase_add_test(tc, sigmoid_gradcheck);
  tcase_add_test(tc, tanh_forward_backward_hand);
  tcase_add_test(tc, tanh_large_inputs);
  tcase_add_test(tc, tanh_in_place);
  tcase_add_test(tc, tanh_gradcheck);
  suite_add_tcase(s, tc);
  return s;
}
