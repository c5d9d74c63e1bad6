/* ReLU: hand-computed forward, in-place use, gradient check. */
#include "tests/testutil.h"

START_TEST(relu_forward_hand) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, 0, 1, 1), *y = dl_blob_new("y");
  const float in[6] = {-2, -0.5f, 0, 0.5f, 1, 3}, want[6] = {-0.2f, -0.05f, 0, 0.5f, 1, 3};
  memcpy(dl_data(x), in, sizeof in);
  dl_layer *l = dl_test_layer("{name: r, type: ReLU, negative_slope: 0.1}", &x, 1, &y, 1);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  ck_assert_int_eq(y->ndim, 2);
  dl_check_close(dl_cdata(y), want, 6, 1e-6, "y");
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(relu_in_place) {
  dl_blob *x = dl_test_blob("x", 1, (int[]){4}, -1, 1, 2);
  const float in[4] = {-1, 2, -3, 4};
  memcpy(dl_data(x), in, sizeof in);
  dl_layer *l = dl_test_layer("{name: r, type: ReLU}", &x, 1, &x, 1);
  ck_assert(l->ops->forward(l, &x, 1, &x, 1) == DL_OK);
  dl_check_close(dl_cdata(x), (const float[]){0, 2, 0, 4}, 4, 0, "x");
  dl_layer_free(l);
  dl_blob_free(x);
}
END_TEST

START_TEST(relu_gradcheck) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 4, 5}, -1, 1, 3), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: r, type: ReLU, negative_slope: 0.01}", &x, 1, &y, 1);
  char msg[512];
  dl_gradcheck_opts o = {.kink = 0, .kink_range = 0.02};
  ck_assert_msg(dl_gradcheck(l, &x, 1, &y, 1, &o, msg, sizeof msg) == 0, "%s", msg);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(relu_rejects_bad_slope) {
  dl_diag_clear();
  dl_layer *l = NULL;
  ck_assert_int_eq(dl_layer_from_yaml("{name: r, type: ReLU, negative_slope: abc}", DL_TRAIN,
                                      NULL, &l),
                   DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "negative_slope"));
}
END_TEST

Suite *suite_relu(void) {
  Suite *s = suite_create("relu");
  TCase *tc = tcase_create("relu");
  tcase_add_test(tc, relu_forward_hand);
  tcase_add_test(tc, relu_in_place);
  tcase_add_test(tc, relu_gradcheck);
  tcase_add_test(tc, relu_rejects_bad_slope);
  suite_add_tcase(s, tc);
  return s;
}
