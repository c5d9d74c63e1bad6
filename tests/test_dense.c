/* InnerProduct, Softmax, SoftmaxWithLoss, EuclideanLoss, Accuracy: hand-computed
 * forwards, naive double-precision references, gradient checks, shape errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/math.h"
#include "tests/testutil.h"

static void free_blobs(dl_blob **b, int n) {
  for (int i = 0; i < n; i++) dl_blob_free(b[i]);
}

static void set_values(dl_blob *b, const float *v) { memcpy(dl_data(b), v, b->count * sizeof *v); }

static int gradcheck_ok(dl_layer *l, dl_blob **bottom, int nb, dl_blob **top, int nt,
                        const dl_gradcheck_opts *o) {
  char msg[512];
  int bad = dl_gradcheck(l, bottom, nb, top, nt, o, msg, sizeof msg);
  ck_assert_msg(bad == 0, "%d gradient mismatches: %s", bad, msg);
  return bad;
}

/* ---- InnerProduct ---------------------------------------------------------- */

START_TEST(ip_forward_hand) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, 0, 1, 1), *y = dl_blob_new("y");
  set_values(x, (const float[]){1, 2, 3, -1, 0, 1});
  dl_layer *l = dl_test_layer("{name: ip, type: InnerProduct, num_output: 2}", &x, 1, &y, 1);
  ck_assert_int_eq(l->nparams, 2);
  set_values(l->params[0], (const float[]){1, 0, -1, 0.5f, 0.5f, 0.5f}); /* W: 2 x 3 */
  set_values(l->params[1], (const float[]){10, 20});
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  ck_assert_int_eq(y->shape[0], 2);
  ck_assert_int_eq(y->shape[1], 2);
  dl_check_close(dl_cdata(y), (const float[]){8, 23, 8, 20}, 4, 1e-6, "y");
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* Aligned and odd shapes, with and without bias, flattening C x H x W. */
START_TEST(ip_gradcheck) {
  static const char *const cfg[] = {
      "{name: ip, type: InnerProduct, num_output: 4, weight_filler: {type: gaussian, std: 0.5}, "
      "bias_filler: {type: uniform, min: -1, max: 1}}",
      "{name: ip, type: InnerProduct, num_output: 3, bias_term: false}"};
  const int shapes[2][4] = {{2, 4, 2, 2}, {3, 5, 1, 1}};
  for (int c = 0; c < 2; c++) {
    dl_blob *x = dl_test_blob("x", 4, shapes[c], -1, 1, 7 + (uint64_t)c), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer(cfg[c], &x, 1, &y, 1);
    ck_assert_int_eq(l->nparams, c == 0 ? 2 : 1);
    ck_assert_int_eq(l->params[0]->shape[1], shapes[c][1] * shapes[c][2] * shapes[c][3]);
    gradcheck_ok(l, &x, 1, &y, 1, NULL);
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, y}, 2);
  }
}
END_TEST

/* Both forward forms (y^T = W x^T through transposes for up to 128 rows, x W^T
 * above) against a double-precision reference, with sizes that leave partial
 * 32 x 32 transpose blocks. */
START_TEST(ip_forward_forms_match_reference) {
  static const int rows[] = {100, 150};
  for (int c = 0; c < 2; c++) {
    int M = rows[c], K = 70, N = 45;
    dl_blob *x = dl_test_blob("x", 2, (int[]){M, K}, -1, 1, 11), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer("{name: ip, type: InnerProduct, num_output: 45, "
                                "bias_filler: {type: uniform, min: -1, max: 1}}",
                                &x, 1, &y, 1);
    ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
    const float *xv = dl_cdata(x), *w = dl_cdata(l->params[0]), *b = dl_cdata(l->params[1]);
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        double want = b[j];
        for (int k = 0; k < K; k++) want += (double)xv[i * K + k] * w[j * K + k];
        ck_assert_msg(fabs(dl_cdata(y)[i * N + j] - want) < 1e-4, "M %d: y[%d][%d] = %g, want %g",
                      M, i, j, dl_cdata(y)[i * N + j], want);
      }
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, y}, 2);
  }
}
END_TEST

/* axis 2 on T x N x D: one output vector per time step. */
START_TEST(ip_axis_two_keeps_leading_axes) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){5, 2, 3}, -1, 1, 3), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: ip, type: InnerProduct, num_output: 4, axis: 2}", &x, 1, &y, 1);
  ck_assert_int_eq(y->ndim, 3);
  ck_assert_int_eq(y->shape[0], 5);
  ck_assert_int_eq(y->shape[1], 2);
  ck_assert_int_eq(y->shape[2], 4);
  gradcheck_ok(l, &x, 1, &y, 1, NULL);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* ---- Softmax ------------------------------------------------------------- */

START_TEST(softmax_forward_and_gradcheck) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 5, 3, 1}, -3, 3, 4), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: s, type: Softmax}", &x, 1, &y, 1);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  const float *xv = dl_cdata(x), *yv = dl_cdata(y);
  for (int n = 0; n < 2; n++)
    for (int i = 0; i < 3; i++) {
      double z = 0, sum = 0;
      for (int c = 0; c < 5; c++) z += exp(xv[(n * 5 + c) * 3 + i]);
      for (int c = 0; c < 5; c++) {
        double want = exp(xv[(n * 5 + c) * 3 + i]) / z;
        ck_assert_double_eq_tol(yv[(n * 5 + c) * 3 + i], want, 1e-6);
        sum += yv[(n * 5 + c) * 3 + i];
      }
      ck_assert_double_eq_tol(sum, 1, 1e-6);
    }
  gradcheck_ok(l, &x, 1, &y, 1, NULL);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

START_TEST(softmax_is_stable_for_huge_scores) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){1, 3}, 0, 1, 1), *y = dl_blob_new("y");
  set_values(x, (const float[]){1000, 1000, -1000});
  dl_layer *l = dl_test_layer("{name: s, type: Softmax}", &x, 1, &y, 1);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_check_close(dl_cdata(y), (const float[]){0.5f, 0.5f, 0}, 3, 1e-6, "y");
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* ---- SoftmaxWithLoss ------------------------------------------------------ */

START_TEST(softmax_loss_hand) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, 0, 1, 1), *lab = dl_test_blob("l", 1, (int[]){2}, 0, 1, 1);
  dl_blob *loss = dl_blob_new("loss");
  set_values(x, (const float[]){0, 0, 0, 1, 2, 3});
  set_values(lab, (const float[]){1, 2});
  dl_blob *bottom[2] = {x, lab};
  dl_layer *l = dl_test_layer("{name: loss, type: SoftmaxWithLoss}", bottom, 2, &loss, 1);
  ck_assert(l->ops->forward(l, bottom, 2, &loss, 1) == DL_OK);
  double l0 = log(3.0), l1 = -(3 - log(exp(1.0) + exp(2.0) + exp(3.0)));
  ck_assert_double_eq_tol(dl_cdata(loss)[0], (l0 + l1) / 2, 1e-6);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, lab, loss}, 3);
}
END_TEST

/* Random labels over an odd spatial layout, each normalization, ignore_label. */
START_TEST(softmax_loss_gradcheck) {
  static const char *const cfg[] = {
      "{name: loss, type: SoftmaxWithLoss}",
      "{name: loss, type: SoftmaxWithLoss, normalization: batch_size}",
      "{name: loss, type: SoftmaxWithLoss, normalization: none, ignore_label: 2}",
      "{name: loss, type: SoftmaxWithLoss, normalization: full, ignore_label: 0}"};
  for (int c = 0; c < 4; c++) {
    dl_blob *x = dl_test_blob("x", 4, (int[]){3, 4, 2, 3}, -2, 2, 11 + (uint64_t)c);
    dl_blob *lab = dl_test_blob("l", 3, (int[]){3, 2, 3}, 0, 1, 1), *loss = dl_blob_new("loss");
    float *lv = dl_data(lab);
    for (size_t i = 0; i < lab->count; i++) lv[i] = (float)((i * 7 + (size_t)c) % 4);
    dl_blob *bottom[2] = {x, lab};
    dl_layer *l = dl_test_layer(cfg[c], bottom, 2, &loss, 1);
    gradcheck_ok(l, bottom, 2, &loss, 1, NULL);
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, lab, loss}, 3);
  }
}
END_TEST

START_TEST(softmax_loss_ignored_labels_give_no_gradient) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, -1, 1, 2), *lab = dl_test_blob("l", 1, (int[]){2}, 0, 1, 1);
  dl_blob *loss = dl_blob_new("loss");
  set_values(lab, (const float[]){255, 1});
  dl_blob *bottom[2] = {x, lab};
  dl_layer *l = dl_test_layer("{name: loss, type: SoftmaxWithLoss, ignore_label: 255}", bottom, 2, &loss, 1);
  ck_assert(l->ops->forward(l, bottom, 2, &loss, 1) == DL_OK);
  dl_diff(loss)[0] = 1;
  l->ops->backward(l, &loss, 1, (int[]){1, 0}, bottom, 2);
  dl_check_close(dl_cdiff(x), (const float[]){0, 0, 0}, 3, 0, "ignored row");
  ck_assert_float_lt(dl_cdiff(x)[4], 0); /* the label's score is pushed up */
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, lab, loss}, 3);
}
END_TEST

/* With one top (no probabilities asked for) the loss keeps each row's max and
 * sum of exps instead of the probabilities, and backward makes them again
 * (the exps in blocks of 128): the loss and the gradient are bit for bit those
 * of the stored-probability path (a second top), over 300 classes (two
 * blocks, then 16-wide and single tails, each holding some row's max), with
 * an ignored label, at 1 and 2 threads. */
START_TEST(softmax_loss_without_stored_probabilities_matches) {
  dl_set_threads(1 + _i);
  float loss_value[2], *dx[2];
  size_t n = 0;
  for (int tops = 1; tops <= 2; tops++) {
    dl_blob *x = dl_test_blob("x", 2, (int[]){5, 300}, -6, 6, 7);
    dl_blob *lab = dl_test_blob("l", 1, (int[]){5}, 0, 1, 1);
    dl_blob *top[2] = {dl_blob_new("loss"), dl_blob_new("prob")};
    /* Each row's max where the next row's max is found (while this row is
     * summed): in a block of 128, in the 16-wide tail, in the scalar tail. */
    static const int max_at[5] = {0, 40, 200, 270, 295};
    for (int r = 0; r < 5; r++)
      dl_data(x)[r * 300 + max_at[r]] = 7.0f + (float)r / 8;
    set_values(lab, (const float[]){3, 299, 7, 128, 255});
    dl_blob *bottom[2] = {x, lab};
    dl_layer *l =
        dl_test_layer("{name: loss, type: SoftmaxWithLoss, ignore_label: 7}", bottom, 2, top, tops);
    ck_assert(l->ops->forward(l, bottom, 2, top, tops) == DL_OK);
    dl_diff(top[0])[0] = 0.3f; /* a scale that rounds */
    l->ops->backward(l, top, tops, (int[]){1, 0}, bottom, 2);
    loss_value[tops - 1] = dl_cdata(top[0])[0];
    n = x->count;
    dx[tops - 1] = malloc(n * sizeof(float));
    memcpy(dx[tops - 1], dl_cdiff(x), n * sizeof(float));
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, lab, top[0], top[1]}, 4);
  }
  ck_assert_msg(memcmp(&loss_value[0], &loss_value[1], sizeof(float)) == 0, "loss %.9g vs %.9g",
                loss_value[0], loss_value[1]);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(memcmp(&dx[0][i], &dx[1][i], sizeof(float)) == 0, "dx[%zu]: %.9g vs %.9g", i,
                  dx[0][i], dx[1][i]);
  ck_assert_float_eq(dx[0][2 * 300 + 5], 0); /* the ignored row */
  free(dx[0]), free(dx[1]);
  dl_set_threads(1);
}
END_TEST

START_TEST(softmax_loss_label_out_of_range_is_a_data_error) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 3}, -1, 1, 2), *lab = dl_test_blob("l", 1, (int[]){2}, 0, 1, 1);
  dl_blob *loss = dl_blob_new("loss");
  set_values(lab, (const float[]){0, 7});
  dl_blob *bottom[2] = {x, lab};
  dl_layer *l = dl_test_layer("{name: loss, type: SoftmaxWithLoss}", bottom, 2, &loss, 1);
  dl_diag_clear();
  ck_assert_int_eq(l->ops->forward(l, bottom, 2, &loss, 1), DL_EDATA);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "label 7 at position 1 is outside [0, 3)"));
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, lab, loss}, 3);
}
END_TEST

START_TEST(loss_label_count_mismatch_is_a_config_error) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){4, 3}, -1, 1, 2), *lab = dl_test_blob("l", 1, (int[]){3}, 0, 1, 1);
  dl_blob *loss = dl_blob_new("loss");
  dl_blob *bottom[2] = {x, lab};
  static const char *const cfg[] = {"{name: loss, type: SoftmaxWithLoss}",
                                    "{name: acc, type: Accuracy}"};
  for (int c = 0; c < 2; c++) {
    dl_layer *l = NULL;
    dl_diag_clear();
    ck_assert(dl_layer_from_yaml(cfg[c], DL_TRAIN, NULL, &l) == DL_OK);
    ck_assert_int_eq(dl_layer_setup(l, bottom, 2, &loss, 1), DL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(dl_diag_text(), "need 4 labels"));
    dl_layer_free(l);
  }
  free_blobs((dl_blob *[]){x, lab, loss}, 3);
}
END_TEST

/* ---- EuclideanLoss -------------------------------------------------------- */

START_TEST(euclidean_loss_hand_and_gradcheck) {
  dl_blob *a = dl_test_blob("a", 2, (int[]){2, 2}, 0, 1, 1), *b = dl_test_blob("b", 2, (int[]){2, 2}, 0, 1, 2);
  dl_blob *loss = dl_blob_new("loss");
  set_values(a, (const float[]){1, 2, 3, 4});
  set_values(b, (const float[]){1, 0, 0, 4});
  dl_blob *bottom[2] = {a, b};
  dl_layer *l = dl_test_layer("{name: loss, type: EuclideanLoss}", bottom, 2, &loss, 1);
  ck_assert(l->ops->forward(l, bottom, 2, &loss, 1) == DL_OK);
  ck_assert_double_eq_tol(dl_cdata(loss)[0], (4.0 + 9.0) / 4, 1e-6); /* sum / (2 N), N = 2 */
  gradcheck_ok(l, bottom, 2, &loss, 1, NULL);
  dl_layer_free(l);
  dl_blob *c = dl_test_blob("c", 2, (int[]){2, 3}, 0, 1, 2);
  bottom[1] = c;
  ck_assert(dl_layer_from_yaml("{name: loss, type: EuclideanLoss}", DL_TRAIN, NULL, &l) == DL_OK);
  dl_diag_clear();
  ck_assert_int_eq(dl_layer_setup(l, bottom, 2, &loss, 1), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "same size: 2 x 2 vs 2 x 3"));
  dl_layer_free(l);
  free_blobs((dl_blob *[]){a, b, c, loss}, 4);
}
END_TEST

/* ---- Accuracy ------------------------------------------------------------- */

START_TEST(accuracy_top1_top2_and_ignore) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){4, 3}, 0, 1, 1), *lab = dl_test_blob("l", 1, (int[]){4}, 0, 1, 1);
  dl_blob *acc = dl_blob_new("acc");
  set_values(x, (const float[]){0.1f, 0.7f, 0.2f, /* best 1 */ 0.5f, 0.3f, 0.2f, /* best 0 */
                                0.2f, 0.3f, 0.5f, /* best 2 */ 0.4f, 0.4f, 0.2f /* tie */});
  set_values(lab, (const float[]){1, 1, 1, 1});
  dl_blob *bottom[2] = {x, lab};
  static const char *const cfg[] = {"{name: a, type: Accuracy}", "{name: a, type: Accuracy, top_k: 2}",
                                    "{name: a, type: Accuracy, ignore_label: 0}"};
  /* top-1: row 0 hits; the tie in row 3 counts (no score strictly above). */
  const double want[3] = {0.5, 1.0, 0.5};
  for (int c = 0; c < 3; c++) {
    if (c == 2) set_values(lab, (const float[]){1, 0, 1, 0}); /* rows 1, 3 ignored; row 2 misses */
    dl_layer *l = dl_test_layer(cfg[c], bottom, 2, &acc, 1);
    ck_assert(l->ops->forward(l, bottom, 2, &acc, 1) == DL_OK);
    ck_assert_double_eq_tol(dl_cdata(acc)[0], want[c], 1e-6);
    dl_layer_free(l);
  }
  free_blobs((dl_blob *[]){x, lab, acc}, 3);
}
END_TEST

Suite *suite_dense(void) {
  Suite *s = suite_create("dense");
  TCase *tc = tcase_create("dense");
  tcase_add_test(tc, ip_forward_hand);
  tcase_add_test(tc, ip_gradcheck);
  tcase_add_test(tc, ip_axis_two_keeps_leading_axes);
  tcase_add_test(tc, ip_forward_forms_match_reference);
  tcase_add_test(tc, softmax_forward_and_gradcheck);
  tcase_add_test(tc, softmax_is_stable_for_huge_scores);
  tcase_add_test(tc, softmax_loss_hand);
  tcase_add_test(tc, softmax_loss_gradcheck);
  tcase_add_test(tc, softmax_loss_ignored_labels_give_no_gradient);
  tcase_add_test(tc, softmax_loss_label_out_of_range_is_a_data_error);
  tcase_add_loop_test(tc, softmax_loss_without_stored_probabilities_matches, 0, 2);
  tcase_add_test(tc, loss_label_count_mismatch_is_a_config_error);
  tcase_add_test(tc, euclidean_loss_hand_and_gradcheck);
  tcase_add_test(tc, accuracy_top1_top2_and_ignore);
  suite_add_tcase(s, tc);
  return s;
}
