/* Dropout: identity in the test phase; at train time the dropped fraction, the
 * 1 / (1 - p) scaling, masks that depend on (seed, iteration, substep, layer)
 * and nothing else, and a backward that applies the forward's mask. */
#include <math.h>
#include <stdlib.h>

#include "core/math.h"
#include "tests/testutil.h"

/* Like dl_test_layer, with a chosen phase and context. */
static dl_layer *make(const char *yaml, dl_phase phase, const dl_ctx *ctx, dl_blob *x, dl_blob *y) {
  dl_diag_clear();
  dl_layer *l = NULL;
  ck_assert_msg(dl_layer_from_yaml(yaml, phase, ctx, &l) == DL_OK, "%s", dl_diag_text());
  ck_assert_msg(dl_layer_setup(l, &x, 1, &y, 1) == DL_OK, "%s", dl_diag_text());
  return l;
}

static void forward(dl_layer *l, dl_blob *x, dl_blob *y) {
  ck_assert_msg(l->ops->forward(l, &x, 1, &y, 1) == DL_OK, "%s", dl_diag_text());
}

static void backward(dl_layer *l, dl_blob *y, dl_blob *x) {
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
}

START_TEST(test_phase_is_identity) {
  dl_ctx ctx = {.seed = 3, .iter = 5};
  dl_blob *x = dl_test_blob("x", 2, (int[]){7, 13}, -1, 1, 1), *y = dl_blob_new("y");
  dl_blob *dy = dl_test_blob("dy", 2, (int[]){7, 13}, -1, 1, 2);
  size_t n = x->count;
  dl_layer *l = make("{name: d, type: Dropout, dropout_ratio: 0.7}", DL_TEST, &ctx, x, y);
  forward(l, x, y);
  ck_assert_int_eq(memcmp(dl_cdata(y), dl_cdata(x), n * sizeof(float)), 0);
  dl_copy(n, dl_cdata(dy), dl_diff(y));
  backward(l, y, x);
  ck_assert_int_eq(memcmp(dl_cdiff(x), dl_cdata(dy), n * sizeof(float)), 0);
  dl_layer_free(l);

  /* In place: nothing changes. */
  dl_blob *z = dl_test_blob("x", 2, (int[]){7, 13}, -1, 1, 1);
  l = make("{name: d, type: Dropout}", DL_TEST, &ctx, z, z);
  forward(l, z, z);
  ck_assert_int_eq(memcmp(dl_cdata(z), dl_cdata(x), n * sizeof(float)), 0);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
  dl_blob_free(z);
  dl_blob_free(dy);
}
END_TEST

/* On 10k values in [0.5, 1.5) (never 0, so y == 0 means dropped): the dropped
 * fraction is within 0.02 of p (over 4 standard deviations), the kept values
 * are x / (1 - p), and the mean is about preserved. */
START_TEST(train_fraction_and_scale) {
  const char *yaml[] = {"{name: d, type: Dropout}", "{name: d, type: Dropout, dropout_ratio: 0.3}",
                        "{name: d, type: Dropout, dropout_ratio: 0.9}",
                        "{name: d, type: Dropout, dropout_ratio: 0}"};
  const float ratio[] = {0.5f, 0.3f, 0.9f, 0};
  dl_ctx ctx = {.seed = 1, .iter = 0};
  for (int k = 0; k < 4; k++) {
    dl_blob *x = dl_test_blob("x", 2, (int[]){100, 100}, 0.5f, 1.5f, 4), *y = dl_blob_new("y");
    dl_layer *l = make(yaml[k], DL_TRAIN, &ctx, x, y);
    forward(l, x, y);
    const float *xv = dl_cdata(x), *yv = dl_cdata(y);
    float scale = 1.0f / (1.0f - ratio[k]);
    size_t dropped = 0;
    double sx = 0, sy = 0;
    for (size_t i = 0; i < x->count; i++) {
      sx += xv[i], sy += yv[i];
      if (yv[i] == 0) {
        dropped++;
        continue;
      }
      ck_assert_msg(fabsf(yv[i] - xv[i] * scale) <= 1e-6f * fabsf(yv[i]),
                    "ratio %g, [%zu]: y %g, x %g", ratio[k], i, yv[i], xv[i]);
    }
    double frac = (double)dropped / (double)x->count;
    ck_assert_msg(fabs(frac - ratio[k]) < 0.02, "ratio %g: dropped %g", ratio[k], frac);
    ck_assert_msg(fabs(sy / sx - 1) < (k == 2 ? 0.1 : 0.03), "ratio %g: mean ratio %g", ratio[k],
                  sy / sx);
    dl_layer_free(l);
    dl_blob_free(x);
    dl_blob_free(y);
  }
}
END_TEST

/* Which values a forward keeps, as a bit per value. */
static void mask_of(dl_layer *l, dl_blob *x, dl_blob *y, unsigned char *m) {
  forward(l, x, y);
  const float *yv = dl_cdata(y);
  for (size_t i = 0; i < y->count; i++)
    m[i] = yv[i] != 0;
}

static size_t differing(const unsigned char *a, const unsigned char *b, size_t n) {
  size_t d = 0;
  for (size_t i = 0; i < n; i++)
    d += a[i] != b[i];
  return d;
}

/* The mask is a function of (seed, iter, substep, layer name) alone: two
 * separately built layers agree, any one of those changing gives a new mask
 * (about half the values differ at p = 0.5), and going back to an iteration
 * gives its mask again, which is what resuming needs. */
START_TEST(mask_depends_on_ctx_only) {
  enum { N = 4096 };
  static unsigned char m0[N], m1[N];
  dl_ctx ca = {.seed = 7, .iter = 3}, cb = ca;
  dl_blob *x = dl_test_blob("x", 2, (int[]){64, 64}, 0.5f, 1.5f, 9), *y = dl_blob_new("y");
  dl_layer *a = make("{name: d, type: Dropout}", DL_TRAIN, &ca, x, y);
  dl_layer *b = make("{name: d, type: Dropout}", DL_TRAIN, &cb, x, y);
  dl_layer *c = make("{name: d2, type: Dropout}", DL_TRAIN, &cb, x, y);
  mask_of(a, x, y, m0);
  mask_of(b, x, y, m1);
  ck_assert_int_eq(differing(m0, m1, N), 0);
  mask_of(a, x, y, m1); /* a second forward of the same iteration */
  ck_assert_int_eq(differing(m0, m1, N), 0);
  mask_of(c, x, y, m1);
  ck_assert_uint_gt(differing(m0, m1, N), N / 4);

  ca.iter = 4;
  mask_of(a, x, y, m1);
  ck_assert_uint_gt(differing(m0, m1, N), N / 4);
  ca.iter = 3;
  ca.substep = 1;
  mask_of(a, x, y, m1);
  ck_assert_uint_gt(differing(m0, m1, N), N / 4);
  ca.substep = 0;
  ca.seed = 8; /* after setup, as a snapshot restore does */
  mask_of(a, x, y, m1);
  ck_assert_uint_gt(differing(m0, m1, N), N / 4);
  ca.seed = 7;
  mask_of(a, x, y, m1);
  ck_assert_int_eq(differing(m0, m1, N), 0);
  dl_layer_free(a);
  dl_layer_free(b);
  dl_layer_free(c);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

/* dx = dy / (1 - p) where the forward kept the value, 0 where it dropped it;
 * out of place and in place (where backward overwrites dy). */
static void check_backward(int in_place) {
  const float p = 0.4f, scale = 1.0f / (1.0f - p);
  dl_ctx ctx = {.seed = 2, .iter = 11};
  dl_blob *x = dl_test_blob("x", 3, (int[]){5, 7, 11}, 0.5f, 1.5f, 3);
  dl_blob *y = in_place ? x : dl_blob_new("y");
  dl_blob *dy = dl_test_blob("dy", 3, (int[]){5, 7, 11}, -1, 1, 4);
  size_t n = x->count, kept = 0;
  dl_layer *l = make("{name: d, type: Dropout, dropout_ratio: 0.4}", DL_TRAIN, &ctx, x, y);
  forward(l, x, y);
  float *yv = malloc(n * sizeof(float));
  memcpy(yv, dl_cdata(y), n * sizeof(float));
  dl_copy(n, dl_cdata(dy), dl_diff(y));
  ctx.iter = 12; /* backward must use the forward's mask, not the context's */
  backward(l, y, x);
  const float *dx = dl_cdiff(x), *g = dl_cdata(dy);
  for (size_t i = 0; i < n; i++) {
    float want = yv[i] != 0 ? g[i] * scale : 0.0f;
    kept += yv[i] != 0;
    ck_assert_msg(dx[i] == want, "[%zu]: dx %g, want %g (y %g)", i, dx[i], want, yv[i]);
  }
  ck_assert(kept > 0 && kept < n);
  free(yv);
  dl_layer_free(l);
  if (!in_place) dl_blob_free(y);
  dl_blob_free(x);
  dl_blob_free(dy);
}

START_TEST(backward_applies_mask) { check_backward(0); }
END_TEST

START_TEST(backward_applies_mask_in_place) { check_backward(1); }
END_TEST

/* The mask is fixed while (seed, iter, substep) are, so finite differences
 * see the same mask on every forward and the gradient check applies. */
START_TEST(dropout_gradcheck) {
  dl_ctx ctx = {.seed = 5, .iter = 2};
  dl_blob *x = dl_test_blob("x", 3, (int[]){3, 5, 7}, -1, 1, 8), *y = dl_blob_new("y");
  dl_layer *l = make("{name: d, type: Dropout, dropout_ratio: 0.3}", DL_TRAIN, &ctx, x, y);
  char msg[512];
  ck_assert_msg(dl_gradcheck(l, &x, 1, &y, 1, NULL, msg, sizeof msg) == 0, "%s", msg);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

/* A bigger batch after setup: reshape grows the mask, forward still works. */
START_TEST(reshape_grows_mask) {
  dl_ctx ctx = {.seed = 1};
  dl_blob *x = dl_test_blob("x", 1, (int[]){10}, 0.5f, 1.5f, 1), *y = dl_blob_new("y");
  dl_layer *l = make("{name: d, type: Dropout}", DL_TRAIN, &ctx, x, y);
  ck_assert(dl_blob_reshape(x, 1, (int[]){1000}) == DL_OK);
  dl_set(x->count, 1.0f, dl_data(x));
  ck_assert(l->ops->reshape(l, &x, 1, &y, 1) == DL_OK);
  ck_assert_uint_eq(y->count, 1000);
  forward(l, x, y);
  size_t kept = 0;
  for (size_t i = 0; i < y->count; i++)
    kept += dl_cdata(y)[i] == 2.0f;
  ck_assert_msg(kept > 400 && kept < 600, "kept %zu of 1000", kept);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

START_TEST(rejects_bad_ratio) {
  dl_blob *x = dl_test_blob("x", 1, (int[]){4}, 0, 1, 1), *y = dl_blob_new("y");
  dl_layer *l = NULL;
  dl_diag_clear();
  ck_assert_int_eq(
      dl_layer_from_yaml("{name: d, type: Dropout, dropout_ratio: 1}", DL_TRAIN, NULL, &l), DL_OK);
  ck_assert_int_eq(dl_layer_setup(l, &x, 1, &y, 1), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "dropout_ratio must be below 1"));
  dl_layer_free(l);
  dl_diag_clear();
  ck_assert_int_eq(
      dl_layer_from_yaml("{name: d, type: Dropout, dropout_ratio: 1.5}", DL_TRAIN, NULL, &l),
      DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "dropout_ratio"));
  dl_blob_free(x);
  dl_blob_free(y);
}
END_TEST

Suite *suite_dropout(void) {
  Suite *s = suite_create("dropout");
  TCase *tc = tcase_create("dropout");
  tcase_add_test(tc, test_phase_is_identity);
  tcase_add_test(tc, train_fraction_and_scale);
  tcase_add_test(tc, mask_depends_on_ctx_only);
  tcase_add_test(tc, backward_applies_mask);
  tcase_add_test(tc, backward_applies_mask_in_place);
  tcase_add_test(tc, dropout_gradcheck);
  tcase_add_test(tc, reshape_grows_mask);
  tcase_add_test(tc, rejects_bad_ratio);
  suite_add_tcase(s, tc);
  return s;
}
