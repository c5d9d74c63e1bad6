/* Eltwise, Concat, Slice and Silence: hand-computed forwards and backwards,
 * gradient checks on an aligned and an odd shape, errors that name what is
 * wrong, and Silence inside a net. */
#include <math.h>
#include <stdio.h>

#include "core/math.h"
#include "core/net.h"
#include "tests/testutil.h"

static void free_blobs(dl_blob **b, int n) {
  for (int i = 0; i < n; i++)
    dl_blob_free(b[i]);
}

static void set_values(dl_blob *b, const float *v) { memcpy(dl_data(b), v, b->count * sizeof *v); }

static void gradcheck_ok(dl_layer *l, dl_blob **bottom, int nb, dl_blob **top, int nt,
                         const char *what) {
  char msg[512];
  int bad = dl_gradcheck(l, bottom, nb, top, nt, NULL, msg, sizeof msg);
  ck_assert_msg(bad == 0, "%s: %d gradient mismatches: %s", what, bad, msg);
}

/* Building or setting up `yaml` on these blobs must fail with DL_ECONFIG and
 * `want` in the message. */
static void expect_config_error(const char *yaml, dl_blob **bottom, int nb, dl_blob **top, int nt,
                                const char *want) {
  dl_layer *l = NULL;
  dl_diag_clear();
  dl_status st = dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l);
  if (st == DL_OK) st = dl_layer_setup(l, bottom, nb, top, nt);
  ck_assert_msg(st == DL_ECONFIG, "%s: status %d", yaml, st);
  ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "%s: message '%s' lacks '%s'", yaml,
                dl_diag_text(), want);
  dl_layer_free(l);
}

/* Forward, then backward of `dy` with every bottom propagating. */
static void run_layer(dl_layer *l, dl_blob **bottom, int nb, dl_blob **top, int nt,
                      const float *const *dy) {
  ck_assert_msg(l->ops->forward(l, bottom, nb, top, nt) == DL_OK, "%s", dl_diag_text());
  for (int t = 0; t < nt; t++)
    memcpy(dl_diff(top[t]), dy[t], top[t]->count * sizeof(float));
  int prop[DL_MAX_LAYER_BLOBS];
  for (int b = 0; b < nb; b++)
    prop[b] = 1;
  l->ops->backward(l, top, nt, prop, bottom, nb);
}

/* ---- Eltwise ---------------------------------------------------------------- */

typedef struct {
  const char *yaml;
  float y[6];
  float dx[3][6]; /* per bottom, for dy = 1..6 */
} eltwise_case;

/* Three bottoms of 2 x 3; bottom 0 holds a 0, so prod's gradient must be
 * multiplied out (y / x would give 0 / 0 there); max has a tie between bottoms
 * 0 and 2 at position 2, which the earlier bottom wins. */
START_TEST(eltwise_hand) {
  static const float a[6] = {1, 2, 3, 4, 0, 5}, b[6] = {2, -1, 2, 0.5f, 7, -5},
                     c[6] = {-1, 1, 3, 2, 2, 1};
  static const float dy[6] = {1, 2, 3, 4, 5, 6};
  static const eltwise_case cases[] = {
      {"{name: e, type: Eltwise}",
       {2, 2, 8, 6.5f, 9, 1},
       {{1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 5, 6}}},
      {"{name: e, type: Eltwise, operation: sum, coeff: [2, -1, 0.5]}",
       {-0.5f, 5.5f, 5.5f, 8.5f, -6, 15.5f},
       {{2, 4, 6, 8, 10, 12}, {-1, -2, -3, -4, -5, -6}, {0.5f, 1, 1.5f, 2, 2.5f, 3}}},
      {"{name: e, type: Eltwise, operation: prod}",
       {-2, -2, 18, 4, 0, -25},
       {{-2, -2, 18, 4, 70, -30}, {-1, 4, 27, 32, 0, 30}, {2, -4, 18, 8, 0, -150}}},
      {"{name: e, type: Eltwise, operation: MAX}",
       {2, 2, 3, 4, 7, 5},
       {{0, 2, 3, 4, 0, 6}, {1, 0, 0, 0, 5, 0}, {0, 0, 0, 0, 0, 0}}},
  };
  for (int k = 0; k < 4; k++) {
    dl_blob *x[3], *y = dl_blob_new("y");
    const float *v[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
      x[i] = dl_test_blob(i == 0 ? "a" : i == 1 ? "b" : "c", 2, (int[]){2, 3}, 0, 1, 1);
      set_values(x[i], v[i]);
    }
    dl_layer *l = dl_test_layer(cases[k].yaml, x, 3, &y, 1);
    run_layer(l, x, 3, &y, 1, (const float *const[]){dy});
    ck_assert_int_eq(y->ndim, 2);
    ck_assert_int_eq(y->shape[1], 3);
    dl_check_close(dl_cdata(y), cases[k].y, 6, 1e-6, cases[k].yaml);
    for (int i = 0; i < 3; i++)
      dl_check_close(dl_cdiff(x[i]), cases[k].dx[i], 6, 1e-6, cases[k].yaml);
    dl_layer_free(l);
    free_blobs(x, 3);
    dl_blob_free(y);
  }
}
END_TEST

/* Bottoms whose values differ by at least 0.25 everywhere (much more than the
 * gradient check's step), so that max never meets a kink. */
static void fill_distinct(dl_blob **x, int nb, uint64_t seed) {
  dl_rng rng;
  dl_rng_seed(&rng, seed);
  for (size_t k = 0; k < x[0]->count; k++) {
    float base = dl_rng_uniform_range(&rng, -1, 1);
    size_t rot = dl_rng_u64(&rng) % (uint64_t)nb;
    for (int i = 0; i < nb; i++)
      dl_data(x[i])[k] = base + 0.25f * (float)((i + rot) % (size_t)nb);
  }
}

START_TEST(eltwise_gradcheck) {
  static const char *const cfg[] = {"{name: e, type: Eltwise, coeff: [0.5, -2, 1.5]}",
                                    "{name: e, type: Eltwise, operation: prod}",
                                    "{name: e, type: Eltwise, operation: max}"};
  const int shapes[2][4] = {{2, 3, 4, 4}, {3, 5, 7, 1}};
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 2; k++) {
      dl_blob *x[3], *y = dl_blob_new("y");
      for (int i = 0; i < 3; i++)
        x[i] = dl_test_blob("x", 4, shapes[k], -1.5f, 1.5f, 10 + (uint64_t)(i + 3 * k));
      if (c == 2) fill_distinct(x, 3, 99 + (uint64_t)k);
      dl_layer *l = dl_test_layer(cfg[c], x, 3, &y, 1);
      gradcheck_ok(l, x, 3, &y, 1, cfg[c]);
      dl_layer_free(l);
      free_blobs(x, 3);
      dl_blob_free(y);
    }
}
END_TEST

/* A larger batch after setup: max's index buffer grows with it (ASan would
 * catch a write past the old one) and the answers stay right. */
START_TEST(eltwise_max_follows_a_reshape) {
  dl_blob *x[2] = {dl_test_blob("a", 2, (int[]){2, 3}, -1, 1, 1),
                   dl_test_blob("b", 2, (int[]){2, 3}, -1, 1, 2)};
  dl_blob *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: e, type: Eltwise, operation: max}", x, 2, &y, 1);
  for (int i = 0; i < 2; i++)
    ck_assert(dl_blob_reshape(x[i], 3, (int[]){5, 3, 7}) == DL_OK);
  fill_distinct(x, 2, 5);
  ck_assert(l->ops->reshape(l, x, 2, &y, 1) == DL_OK);
  ck_assert_uint_eq(y->count, 105);
  dl_set(105, 1, dl_diff(y));
  ck_assert(l->ops->forward(l, x, 2, &y, 1) == DL_OK);
  l->ops->backward(l, &y, 1, (int[]){1, 1}, x, 2);
  const float *a = dl_cdata(x[0]), *b = dl_cdata(x[1]);
  for (size_t k = 0; k < 105; k++) {
    int a_wins = a[k] > b[k];
    ck_assert_float_eq(dl_cdata(y)[k], a_wins ? a[k] : b[k]);
    ck_assert_float_eq(dl_cdiff(x[0])[k], a_wins ? 1 : 0);
    ck_assert_float_eq(dl_cdiff(x[1])[k], a_wins ? 0 : 1);
  }
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x[0], x[1], y}, 3);
}
END_TEST

START_TEST(eltwise_errors) {
  dl_blob *a = dl_test_blob("a", 2, (int[]){2, 3}, -1, 1, 1),
          *b = dl_test_blob("b", 2, (int[]){2, 4}, -1, 1, 2);
  dl_blob *c = dl_test_blob("c", 3, (int[]){2, 3, 1}, -1, 1, 3), *y = dl_blob_new("y");
  expect_config_error("{name: e, type: Eltwise}", (dl_blob *[]){a, b}, 2, &y, 1,
                      "bottom 1 'b' is 2 x 4 but bottom 0 'a' is 2 x 3; all bottoms must have the "
                      "same shape");
  expect_config_error("{name: e, type: Eltwise, operation: prod}", (dl_blob *[]){a, a, c}, 3, &y, 1,
                      "bottom 2 'c' is 2 x 3 x 1 but bottom 0 'a' is 2 x 3");
  expect_config_error("{name: e, type: Eltwise, coeff: [1, 2, 3]}", (dl_blob *[]){a, a}, 2, &y, 1,
                      "coeff has 3 values but the layer has 2 bottoms; give one per bottom");
  expect_config_error("{name: e, type: Eltwise, operation: max, coeff: [1, 2]}",
                      (dl_blob *[]){a, a}, 2, &y, 1,
                      "coeff applies to operation sum only (this one is max)");
  expect_config_error("{name: e, type: Eltwise}", &a, 1, &y, 1,
                      "expected 2 to 16 bottom blobs, got 1");
  expect_config_error("{name: e, type: Eltwise, operation: mux}", (dl_blob *[]){a, a}, 2, &y, 1,
                      "did you mean 'max'");
  free_blobs((dl_blob *[]){a, b, c, y}, 4);
}
END_TEST

/* ---- Concat ----------------------------------------------------------------- */

/* a (2 x 2) and b (2 x 3) on axis 1 (also written -1); a (1 x 3)... on axis 0. */
START_TEST(concat_hand) {
  static const char *const cfg[] = {"{name: c, type: Concat}", "{name: c, type: Concat, axis: -1}"};
  for (int k = 0; k < 2; k++) {
    dl_blob *a = dl_test_blob("a", 2, (int[]){2, 2}, 0, 1, 1),
            *b = dl_test_blob("b", 2, (int[]){2, 3}, 0, 1, 2);
    dl_blob *y = dl_blob_new("y");
    set_values(a, (const float[]){1, 2, 3, 4});
    set_values(b, (const float[]){5, 6, 7, 8, 9, 10});
    dl_layer *l = dl_test_layer(cfg[k], (dl_blob *[]){a, b}, 2, &y, 1);
    const float dy[10] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
    run_layer(l, (dl_blob *[]){a, b}, 2, &y, 1, (const float *const[]){dy});
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[1], 5);
    dl_check_close(dl_cdata(y), (const float[]){1, 2, 5, 6, 7, 3, 4, 8, 9, 10}, 10, 0, "y");
    dl_check_close(dl_cdiff(a), (const float[]){10, 20, 60, 70}, 4, 0, "da");
    dl_check_close(dl_cdiff(b), (const float[]){30, 40, 50, 80, 90, 100}, 6, 0, "db");
    dl_layer_free(l);
    free_blobs((dl_blob *[]){a, b, y}, 3);
  }
  dl_blob *a = dl_test_blob("a", 2, (int[]){1, 3}, 0, 1, 1),
          *b = dl_test_blob("b", 2, (int[]){2, 3}, 0, 1, 2);
  dl_blob *y = dl_blob_new("y");
  set_values(a, (const float[]){1, 2, 3});
  set_values(b, (const float[]){4, 5, 6, 7, 8, 9});
  dl_layer *l = dl_test_layer("{name: c, type: Concat, axis: 0}", (dl_blob *[]){a, b}, 2, &y, 1);
  const float dy[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
  run_layer(l, (dl_blob *[]){a, b}, 2, &y, 1, (const float *const[]){dy});
  ck_assert_int_eq(y->shape[0], 3);
  ck_assert_int_eq(y->shape[1], 3);
  dl_check_close(dl_cdata(y), (const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, 9, 0, "y");
  dl_check_close(dl_cdiff(a), dy, 3, 0, "da");
  dl_check_close(dl_cdiff(b), dy + 3, 6, 0, "db");
  dl_layer_free(l);
  free_blobs((dl_blob *[]){a, b, y}, 3);
}
END_TEST

typedef struct {
  const char *yaml;
  int ndim, nb;
  int shape[3][4]; /* per bottom */
  int top_shape[4];
} concat_case;

START_TEST(concat_gradcheck) {
  static const concat_case cases[] = {
      {"{name: c, type: Concat}", 4, 3, {{2, 4, 4, 4}, {2, 2, 4, 4}, {2, 2, 4, 4}}, {2, 8, 4, 4}},
      {"{name: c, type: Concat}", 3, 2, {{3, 5, 7}, {3, 2, 7}}, {3, 7, 7}},
      {"{name: c, type: Concat, axis: 0}", 3, 2, {{2, 4, 4}, {2, 4, 4}}, {4, 4, 4}},
      {"{name: c, type: Concat, axis: 0}", 3, 3, {{1, 5, 3}, {3, 5, 3}, {2, 5, 3}}, {6, 5, 3}},
      {"{name: c, type: Concat, axis: -1}", 3, 2, {{3, 2, 5}, {3, 2, 1}}, {3, 2, 6}},
  };
  for (int k = 0; k < 5; k++) {
    const concat_case *c = &cases[k];
    dl_blob *x[3], *y = dl_blob_new("y");
    for (int i = 0; i < c->nb; i++)
      x[i] = dl_test_blob("x", c->ndim, c->shape[i], -1, 1, 20 + (uint64_t)(i + 3 * k));
    dl_layer *l = dl_test_layer(c->yaml, x, c->nb, &y, 1);
    ck_assert_int_eq(y->ndim, c->ndim);
    for (int d = 0; d < c->ndim; d++)
      ck_assert_int_eq(y->shape[d], c->top_shape[d]);
    gradcheck_ok(l, x, c->nb, &y, 1, c->yaml);
    dl_layer_free(l);
    free_blobs(x, c->nb);
    dl_blob_free(y);
  }
}
END_TEST

START_TEST(concat_errors) {
  dl_blob *a = dl_test_blob("a", 3, (int[]){2, 3, 4}, -1, 1, 1),
          *b = dl_test_blob("b", 3, (int[]){2, 5, 5}, -1, 1, 2);
  dl_blob *c = dl_test_blob("c", 2, (int[]){2, 3}, -1, 1, 3), *y = dl_blob_new("y");
  expect_config_error("{name: c, type: Concat}", (dl_blob *[]){a, a, b}, 3, &y, 1,
                      "bottom 2 'b' (2 x 5 x 5) differs from bottom 0 'a' (2 x 3 x 4) at axis 2 (5 "
                      "vs 4); only the concat axis 1 may differ");
  expect_config_error("{name: c, type: Concat, axis: 0}", (dl_blob *[]){a, b}, 2, &y, 1,
                      "at axis 1 (5 vs 3); only the concat axis 0 may differ");
  expect_config_error("{name: c, type: Concat}", (dl_blob *[]){a, c}, 2, &y, 1,
                      "bottom 1 'c' (2 x 3) has 2 axes but bottom 0 'a' (2 x 3 x 4) has 3");
  expect_config_error("{name: c, type: Concat, axis: 3}", (dl_blob *[]){a, a}, 2, &y, 1,
                      "axis 3 is out of range for bottom 0 'a' (2 x 3 x 4)");
  expect_config_error("{name: c, type: Concat, axis: -4}", (dl_blob *[]){a, a}, 2, &y, 1,
                      "axis -4 is out of range");
  free_blobs((dl_blob *[]){a, b, c, y}, 4);
}
END_TEST

/* Concat of one bottom and Slice into one top: the top is a view of the
 * bottom, as in Caffe (no copy), and gradients pass through. */
START_TEST(one_blob_concat_and_slice_are_views) {
  static const char *const cfg[] = {"{name: c, type: Concat}", "{name: s, type: Slice}"};
  for (int k = 0; k < 2; k++) {
    dl_blob *x = dl_test_blob("x", 3, (int[]){2, 3, 5}, -1, 1, 1), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer(cfg[k], &x, 1, &y, 1);
    ck_assert_ptr_eq(y->data, x->data);
    ck_assert_ptr_eq(y->diff, x->diff);
    ck_assert_int_eq(y->ndim, 3);
    ck_assert_int_eq(y->shape[1], 3);
    gradcheck_ok(l, &x, 1, &y, 1, cfg[k]);
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, y}, 2);
  }
}
END_TEST

/* ---- Slice ------------------------------------------------------------------ */

/* x (2 x 5) = 0..9 cut at [1, 3]; then Concat puts the tops back together. */
START_TEST(slice_points_hand) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 5}, 0, 1, 1), *t[3], *z = dl_blob_new("z");
  for (int i = 0; i < 3; i++)
    t[i] = dl_blob_new("t");
  set_values(x, (const float[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  dl_layer *l = dl_test_layer("{name: s, type: Slice, slice_point: [1, 3]}", &x, 1, t, 3);
  const float d0[2] = {-1, -2}, d1[4] = {-3, -4, -5, -6}, d2[4] = {-7, -8, -9, -10};
  run_layer(l, &x, 1, t, 3, (const float *const[]){d0, d1, d2});
  const int w[3] = {1, 2, 2};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(t[i]->ndim, 2);
    ck_assert_int_eq(t[i]->shape[0], 2);
    ck_assert_int_eq(t[i]->shape[1], w[i]);
  }
  dl_check_close(dl_cdata(t[0]), (const float[]){0, 5}, 2, 0, "t0");
  dl_check_close(dl_cdata(t[1]), (const float[]){1, 2, 6, 7}, 4, 0, "t1");
  dl_check_close(dl_cdata(t[2]), (const float[]){3, 4, 8, 9}, 4, 0, "t2");
  dl_check_close(dl_cdiff(x), (const float[]){-1, -3, -4, -7, -8, -2, -5, -6, -9, -10}, 10, 0,
                 "dx");
  dl_layer *c = dl_test_layer("{name: c, type: Concat}", t, 3, &z, 1);
  ck_assert(c->ops->forward(c, t, 3, &z, 1) == DL_OK);
  ck_assert_int_eq(memcmp(dl_cdata(z), dl_cdata(x), 10 * sizeof(float)), 0);
  dl_layer_free(l);
  dl_layer_free(c);
  free_blobs((dl_blob *[]){x, t[0], t[1], t[2], z}, 5);
}
END_TEST

/* No slice_point: equal pieces, on axis 1 and on axis 0. */
START_TEST(slice_equal_split) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){4, 6, 2}, -1, 1, 3), *t[3];
  for (int i = 0; i < 3; i++)
    t[i] = dl_blob_new("t");
  dl_layer *l = dl_test_layer("{name: s, type: Slice}", &x, 1, t, 3);
  ck_assert(l->ops->forward(l, &x, 1, t, 3) == DL_OK);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(t[i]->shape[0], 4);
    ck_assert_int_eq(t[i]->shape[1], 2);
    ck_assert_int_eq(t[i]->shape[2], 2);
    for (int n = 0; n < 4; n++) /* top i, sample n = x[n, 2i:2i+2, :] */
      ck_assert_int_eq(
          memcmp(dl_cdata(t[i]) + n * 4, dl_cdata(x) + n * 12 + i * 4, 4 * sizeof(float)), 0);
  }
  dl_layer_free(l);
  l = dl_test_layer("{name: s, type: Slice, axis: 0}", &x, 1, t, 2);
  ck_assert(l->ops->forward(l, &x, 1, t, 2) == DL_OK);
  ck_assert_int_eq(t[1]->shape[0], 2);
  ck_assert_int_eq(t[1]->shape[1], 6);
  ck_assert_int_eq(memcmp(dl_cdata(t[1]), dl_cdata(x) + 24, 24 * sizeof(float)), 0);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, t[0], t[1], t[2]}, 4);
}
END_TEST

typedef struct {
  const char *yaml;
  int ndim, shape[4], nt;
} slice_case;

START_TEST(slice_gradcheck) {
  static const slice_case cases[] = {
      {"{name: s, type: Slice}", 4, {2, 8, 4, 4}, 2},
      {"{name: s, type: Slice, slice_point: [1, 4]}", 3, {3, 7, 5}, 3},
      {"{name: s, type: Slice, axis: 0, slice_point: [2]}", 3, {5, 3, 3}, 2},
      {"{name: s, type: Slice, axis: -1}", 3, {3, 5, 6}, 3},
  };
  for (int k = 0; k < 4; k++) {
    const slice_case *c = &cases[k];
    dl_blob *x = dl_test_blob("x", c->ndim, c->shape, -1, 1, 30 + (uint64_t)k), *t[3];
    for (int i = 0; i < c->nt; i++)
      t[i] = dl_blob_new("t");
    dl_layer *l = dl_test_layer(c->yaml, &x, 1, t, c->nt);
    size_t total = 0;
    for (int i = 0; i < c->nt; i++)
      total += t[i]->count;
    ck_assert_uint_eq(total, x->count);
    gradcheck_ok(l, &x, 1, t, c->nt, c->yaml);
    dl_layer_free(l);
    dl_blob_free(x);
    free_blobs(t, c->nt);
  }
}
END_TEST

START_TEST(slice_errors) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 5}, -1, 1, 1), *t[3];
  for (int i = 0; i < 3; i++)
    t[i] = dl_blob_new("t");
  expect_config_error("{name: s, type: Slice}", &x, 1, t, 2,
                      "axis 1 of bottom 'x' (2 x 5) has 5 entries, which 2 tops cannot share "
                      "equally; give slice_point");
  expect_config_error("{name: s, type: Slice, slice_point: [1, 3]}", &x, 1, t, 2,
                      "slice_point has 2 values, which makes 3 pieces, but the layer has 2 tops");
  expect_config_error("{name: s, type: Slice, slice_point: [3, 2]}", &x, 1, t, 3,
                      "slice_point[1] (2) does not come after slice_point[0] (3); the points must "
                      "increase");
  expect_config_error("{name: s, type: Slice, slice_point: [3, 3]}", &x, 1, t, 3,
                      "slice_point[1] (3) does not come after slice_point[0] (3)");
  expect_config_error("{name: s, type: Slice, slice_point: [2, 5]}", &x, 1, t, 3,
                      "slice_point[1] is 5, but axis 1 of bottom 'x' (2 x 5) has 5 entries; points "
                      "lie in 1..4");
  expect_config_error("{name: s, type: Slice, slice_point: [0]}", &x, 1, t, 2, "slice_point");
  expect_config_error("{name: s, type: Slice, axis: 2}", &x, 1, t, 2,
                      "axis 2 is out of range for bottom 'x' (2 x 5)");
  free_blobs((dl_blob *[]){x, t[0], t[1], t[2]}, 4);
}
END_TEST

/* ---- Silence ---------------------------------------------------------------- */

/* Backward zeroes the diffs of the bottoms that propagate and no others; a
 * top is refused. */
START_TEST(silence_zero_diffs) {
  const int odd[3] = {3, 5, 7}, aligned[4] = {2, 4, 4, 4};
  dl_blob *a = dl_test_blob("a", 3, odd, -1, 1, 1), *b = dl_test_blob("b", 4, aligned, -1, 1, 2);
  dl_blob *x[2] = {a, b};
  dl_layer *l = dl_test_layer("{name: s, type: Silence}", x, 2, NULL, 0);
  dl_set(a->count, 7, dl_diff(a));
  dl_set(b->count, 7, dl_diff(b));
  ck_assert(l->ops->forward(l, x, 2, NULL, 0) == DL_OK);
  l->ops->backward(l, NULL, 0, (int[]){1, 0}, x, 2);
  for (size_t i = 0; i < a->count; i++)
    ck_assert_float_eq(dl_cdiff(a)[i], 0);
  for (size_t i = 0; i < b->count; i++)
    ck_assert_float_eq(dl_cdiff(b)[i], 7);
  l->ops->backward(l, NULL, 0, (int[]){1, 1}, x, 2);
  for (size_t i = 0; i < b->count; i++)
    ck_assert_float_eq(dl_cdiff(b)[i], 0);
  dl_layer_free(l);
  dl_blob *y = dl_blob_new("y");
  expect_config_error("{name: s, type: Silence}", x, 2, &y, 1,
                      "expected exactly 0 top blobs, got 1");
  free_blobs((dl_blob *[]){a, b, y}, 3);
}
END_TEST

/* In a net: an unused top stops being a net output once a Silence consumes it,
 * and a Silence beside a loss (through the inserted Split) leaves the
 * gradients exactly as they were. */
START_TEST(silence_in_net) {
  static const char *const head =
      "name: s\nlayers:\n"
      "  - {name: data, type: SyntheticData, top: data, shape: [4, 6]}\n"
      "  - {name: target, type: SyntheticData, top: target, shape: [4, 2]}\n"
      "  - {name: cut, type: Slice, bottom: data, top: [a, b], slice_point: [3]}\n"
      "  - {name: ip, type: InnerProduct, bottom: a, top: ip, num_output: 2}\n"
      "  - {name: loss, type: EuclideanLoss, bottom: [ip, target], top: loss}\n";
  char yaml[2][1024];
  snprintf(yaml[0], sizeof yaml[0], "%s", head);
  snprintf(yaml[1], sizeof yaml[1], "%s  - {name: quiet, type: Silence, bottom: [b, ip]}\n", head);
  float grad[2][6];
  for (int k = 0; k < 2; k++) {
    dl_ctx ctx = {.seed = 1, .threads = 1};
    dl_net *net = NULL;
    dl_diag_clear();
    ck_assert_msg(dl_net_from_string(yaml[k], "s", DL_TRAIN, &ctx, &net) == DL_OK, "%s",
                  dl_diag_text());
    ck_assert_int_eq(net->noutputs, k == 0 ? 2 : 1);
    ck_assert_ptr_eq(net->outputs[net->noutputs - 1], dl_net_blob(net, "loss"));
    ck_assert_int_eq(net->nparams, 2);
    ck_assert_uint_eq(net->params[0]->count, 6);
    double loss = 0;
    dl_net_zero_param_diffs(net);
    ck_assert(dl_net_forward(net, &loss) == DL_OK);
    dl_net_backward(net);
    ck_assert_double_gt(loss, 0);
    memcpy(grad[k], dl_cdiff(net->params[0]), sizeof grad[k]);
    dl_net_free(net);
  }
  ck_assert(dl_asum(6, grad[0]) > 0);
  ck_assert_int_eq(memcmp(grad[0], grad[1], sizeof grad[0]), 0);
}
END_TEST

Suite *suite_join_layers(void) {
  Suite *s = suite_create("join_layers");
  TCase *tc = tcase_create("join_layers");
  tcase_add_test(tc, eltwise_hand);
  tcase_add_test(tc, eltwise_gradcheck);
  tcase_add_test(tc, eltwise_max_follows_a_reshape);
  tcase_add_test(tc, eltwise_errors);
  tcase_add_test(tc, concat_hand);
  tcase_add_test(tc, concat_gradcheck);
  tcase_add_test(tc, concat_errors);
  tcase_add_test(tc, one_blob_concat_and_slice_are_views);
  tcase_add_test(tc, slice_points_hand);
  tcase_add_test(tc, slice_equal_split);
  tcase_add_test(tc, slice_gradcheck);
  tcase_add_test(tc, slice_errors);
  tcase_add_test(tc, silence_zero_diffs);
  tcase_add_test(tc, silence_in_net);
  suite_add_tcase(s, tc);
  return s;
}
