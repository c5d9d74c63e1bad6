/* Flatten and Reshape: resulting shapes (with 0, -1, axis, num_axes), views
 * that share the bottom's data and diff, gradients passed through, errors that
 * name what is wrong, and both layers inside a net. */
#include <math.h>

#include "core/math.h"
#include "core/net.h"
#include "tests/testutil.h"

typedef struct {
  const char *yaml;
  int ndim, shape[DL_MAX_AXES]; /* the expected top shape */
} shape_case;

/* Each case on a 2 x 3 x 4 x 5 bottom: the top's shape, and the top being a
 * view (same data and diff storage, same values). */
static void check_shapes(const shape_case *cases, int n) {
  for (int k = 0; k < n; k++) {
    const shape_case *c = &cases[k];
    dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 4, 5}, -1, 1, 1), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer(c->yaml, &x, 1, &y, 1);
    ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
    char got[128];
    dl_blob_shape_str(y, got, sizeof got);
    ck_assert_msg(y->ndim == c->ndim, "%s: top %s", c->yaml, got);
    for (int i = 0; i < c->ndim; i++)
      ck_assert_msg(y->shape[i] == c->shape[i], "%s: top %s", c->yaml, got);
    ck_assert_uint_eq(y->count, x->count);
    ck_assert_ptr_eq(y->data, x->data);
    ck_assert_ptr_eq(y->diff, x->diff);
    ck_assert_ptr_eq(dl_cdata(y), dl_cdata(x));
    dl_layer_free(l);
    dl_blob_free(x);
    dl_blob_free(y);
  }
}

START_TEST(flatten_shapes) {
  static const shape_case cases[] = {
      {"{name: f, type: Flatten}", 2, {2, 60}},
      {"{name: f, type: Flatten, axis: 0}", 1, {120}},
      {"{name: f, type: Flatten, axis: 1, end_axis: 2}", 3, {2, 12, 5}},
      {"{name: f, type: Flatten, axis: -3, end_axis: -2}", 3, {2, 12, 5}},
      {"{name: f, type: Flatten, axis: -2}", 3, {2, 3, 20}},
      {"{name: f, type: Flatten, axis: 2, end_axis: 2}", 4, {2, 3, 4, 5}},
      {"{name: f, type: Flatten, axis: 0, end_axis: 1}", 3, {6, 4, 5}},
  };
  check_shapes(cases, (int)(sizeof cases / sizeof *cases));
}
END_TEST

START_TEST(reshape_shapes) {
  static const shape_case cases[] = {
      {"{name: r, type: Reshape, shape: [0, -1]}", 2, {2, 60}},
      {"{name: r, type: Reshape, shape: [-1]}", 1, {120}},
      {"{name: r, type: Reshape, shape: [4, 0, -1]}", 3, {4, 3, 10}},
      {"{name: r, type: Reshape, shape: [0, 0, 2, 2, 5]}", 5, {2, 3, 2, 2, 5}},
      {"{name: r, type: Reshape, shape: [5, 4, 3, 2]}", 4, {5, 4, 3, 2}},
      {"{name: r, type: Reshape, shape: [-1, 5, 1, 1]}", 4, {24, 5, 1, 1}},
      {"{name: r, type: Reshape, shape: [2, -1], axis: 2}", 4, {2, 3, 2, 10}},
      {"{name: r, type: Reshape, shape: [2, 2], axis: 2, num_axes: 1}", 5, {2, 3, 2, 2, 5}},
      {"{name: r, type: Reshape, shape: [-1], axis: 1, num_axes: 2}", 3, {2, 12, 5}},
      {"{name: r, type: Reshape, shape: [1], axis: -1, num_axes: 0}", 5, {2, 3, 4, 5, 1}},
      {"{name: r, type: Reshape, shape: [1], axis: 0, num_axes: 0}", 5, {1, 2, 3, 4, 5}},
  };
  check_shapes(cases, (int)(sizeof cases / sizeof *cases));
}
END_TEST

/* Builds the layer on a bottom of the given shape; expects DL_ECONFIG from
 * building or setup, with `want` in the message. */
static void check_error(const char *yaml, int ndim, const int *shape, const char *want) {
  dl_blob *x = dl_test_blob("x", ndim, shape, -1, 1, 1), *y = dl_blob_new("y");
  dl_layer *l = NULL;
  dl_diag_clear();
  dl_status st = dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l);
  if (st == DL_OK) st = dl_layer_setup(l, &x, 1, &y, 1);
  ck_assert_msg(st == DL_ECONFIG, "%s: status %d", yaml, st);
  ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "%s: message '%s' lacks '%s'", yaml,
                dl_diag_text(), want);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(flatten_errors) {
  const int s4[4] = {2, 3, 4, 5};
  check_error("{name: f, type: Flatten, axis: 4}", 4, s4,
              "axis 4 is out of range for the bottom 'x' (2 x 3 x 4 x 5: 4 axes)");
  check_error("{name: f, type: Flatten}", 1, (int[]){7}, "axis 1 is out of range");
  check_error("{name: f, type: Flatten, end_axis: -5}", 4, s4, "end_axis -5 is out of range");
  check_error("{name: f, type: Flatten, axis: 2, end_axis: 1}", 4, s4,
              "end_axis 1 (axis 1) comes before axis 2 (axis 2)");
  check_error("{name: f, type: Flatten, axis: 9}", 4, s4, "axis"); /* schema range */
  check_error("{name: f, type: Flatten, axes: 1}", 4, s4, "axes"); /* unknown key */
}
END_TEST

START_TEST(reshape_errors) {
  const int s4[4] = {2, 3, 4, 5};
  check_error("{name: r, type: Reshape, shape: [-1, 3, -1]}", 4, s4,
              "shape has -1 at positions 0 and 2; at most one dim can be inferred");
  check_error("{name: r, type: Reshape, shape: [5, 6]}", 4, s4,
              "cannot reshape 2 x 3 x 4 x 5 (120 values) to 5 x 6 (30 values)");
  check_error("{name: r, type: Reshape, shape: [0, 0, 0, 0, 0]}", 4, s4,
              "shape[4] is 0 (copy the bottom's axis 4), but the bottom 'x' (2 x 3 x 4 x 5) "
              "has only 4 axes");
  check_error("{name: r, type: Reshape, shape: [7, -1]}", 4, s4,
              "cannot reshape 2 x 3 x 4 x 5 (120 values) to 7 x -1: 120 is not a multiple of 7");
  check_error("{name: r, type: Reshape, shape: [1000, 1000, -1]}", 4, s4,
              "to 1000 x 1000 x -1: the dims besides -1 already make more than 120 values");
  check_error("{name: r, type: Reshape, shape: [100000, 100000, 100000, 100000]}", 4, s4,
              "(more than 120 values)");
  check_error("{name: r, type: Reshape, shape: [1], axis: 5}", 4, s4,
              "axis 5 is out of range for the bottom 'x'");
  check_error("{name: r, type: Reshape, shape: [1], axis: 3, num_axes: 2}", 4, s4,
              "num_axes 2 from axis 3 runs past the last axis");
  check_error("{name: r, type: Reshape, shape: [1, 1, 1, 1, 1, 1, 1, 1], axis: 1}", 4, s4,
              "the top would have 9 axes; at most 8");
  check_error("{name: r, type: Reshape, shape: [-2, 60]}", 4, s4, "shape"); /* schema range */
  check_error("{name: r, type: Reshape}", 4, s4, "shape");                  /* required */
}
END_TEST

/* Backward hands the top's diff to the bottom, shaped as the bottom: through
 * the shared diff, and by a copy should the top's diff ever be its own. */
static void check_backward(const char *yaml) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 4, 5}, -1, 1, 2), *y = dl_blob_new("y");
  dl_blob *dy = dl_test_blob("dy", 1, (int[]){120}, -1, 1, 3);
  dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
  dl_copy(120, dl_cdata(dy), dl_diff(y));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  ck_assert_int_eq(memcmp(dl_cdiff(x), dl_cdata(dy), 120 * sizeof(float)), 0);

  dl_mem *own = dl_mem_new(y->count);
  dl_mem_release(y->diff);
  y->diff = own;
  dl_set(120, 0.0f, dl_diff(x));
  dl_copy(120, dl_cdata(dy), dl_diff(y));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  ck_assert_int_eq(memcmp(dl_cdiff(x), dl_cdata(dy), 120 * sizeof(float)), 0);

  char msg[512];
  ck_assert_msg(dl_gradcheck(l, &x, 1, &y, 1, NULL, msg, sizeof msg) == 0, "%s", msg);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
  dl_blob_free(dy);
}

START_TEST(flatten_backward) { check_backward("{name: f, type: Flatten, axis: 2}"); }
END_TEST

START_TEST(reshape_backward) { check_backward("{name: r, type: Reshape, shape: [-1, 4]}"); }
END_TEST

/* A larger batch later: reshape again re-shares the bottom's new storage. */
START_TEST(reshape_again_follows_bottom) {
  const char *yaml[2] = {"{name: f, type: Flatten}", "{name: r, type: Reshape, shape: [0, -1]}"};
  for (int k = 0; k < 2; k++) {
    dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 4, 5}, -1, 1, 2), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer(yaml[k], &x, 1, &y, 1);
    ck_assert(dl_blob_reshape(x, 4, (int[]){9, 3, 4, 5}) == DL_OK);
    ck_assert(l->ops->reshape(l, &x, 1, &y, 1) == DL_OK);
    ck_assert_int_eq(y->ndim, 2);
    ck_assert_int_eq(y->shape[0], 9);
    ck_assert_int_eq(y->shape[1], 60);
    ck_assert_ptr_eq(y->data, x->data);
    ck_assert_ptr_eq(y->diff, x->diff);
    dl_layer_free(l);
    dl_blob_free(x);
    dl_blob_free(y);
  }
}
END_TEST

/* In a net: the views' shapes reach the next layer, they share the data
 * layer's storage, and a Dropout (not in place: in place on a view is refused)
 * and a Sigmoid run on them. */
START_TEST(shape_layers_in_net) {
  static const char *net_yaml =
      "name: views\n"
      "layers:\n"
      "  - {name: data, type: SyntheticData, top: data, shape: [4, 3, 2, 2]}\n"
      "  - {name: flat, type: Flatten, bottom: data, top: flat}\n"
      "  - {name: back, type: Reshape, bottom: flat, top: back, shape: [0, 3, -1]}\n"
      "  - {name: drop, type: Dropout, bottom: back, top: dropped, dropout_ratio: 0.2}\n"
      "  - {name: act, type: Sigmoid, bottom: dropped, top: act}\n";
  dl_ctx ctx = {.seed = 1, .threads = 1};
  dl_net *net = NULL;
  dl_diag_clear();
  ck_assert_msg(dl_net_from_string(net_yaml, "views", DL_TEST, &ctx, &net) == DL_OK, "%s",
                dl_diag_text());
  dl_blob *data = dl_net_blob(net, "data"), *flat = dl_net_blob(net, "flat");
  dl_blob *back = dl_net_blob(net, "back"), *act = dl_net_blob(net, "act");
  ck_assert_int_eq(flat->ndim, 2);
  ck_assert_int_eq(flat->shape[1], 12);
  ck_assert_int_eq(back->ndim, 3);
  ck_assert_int_eq(back->shape[2], 4);
  ck_assert_ptr_eq(back->data, data->data);
  ck_assert(dl_net_forward(net, NULL) == DL_OK);
  /* Test phase: Dropout is the identity, so act = sigmoid(data). */
  const float *x = dl_cdata(data), *y = dl_cdata(act);
  for (int i = 0; i < 48; i++)
    ck_assert_float_eq_tol(y[i], 1 / (1 + expf(-x[i])), 1e-6f);
  dl_net_free(net);
}
END_TEST

Suite *suite_shape_layers(void) {
  Suite *s = suite_create("shape_layers");
  TCase *tc = tcase_create("shape_layers");
  tcase_add_test(tc, flatten_shapes);
  tcase_add_test(tc, reshape_shapes);
  tcase_add_test(tc, flatten_errors);
  tcase_add_test(tc, reshape_errors);
  tcase_add_test(tc, flatten_backward);
  tcase_add_test(tc, reshape_backward);
  tcase_add_test(tc, reshape_again_follows_bottom);
  tcase_add_test(tc, shape_layers_in_net);
  suite_add_tcase(s, tc);
  return s;
}
