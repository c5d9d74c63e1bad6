/* Core: blob shapes and limits, registry, RNG, fillers. */
#include <math.h>

#include "core/filler.h"
#include "core/registry.h"
#include "tests/testutil.h"

START_TEST(blob_reshape_and_limits) {
  dl_blob *b = dl_blob_new("b");
  ck_assert_int_eq(dl_blob_reshape4(b, 2, 3, 4, 5), DL_OK);
  ck_assert_uint_eq(b->count, 120);
  ck_assert_int_eq(dl_blob_dim(b, -1), 5);
  ck_assert_uint_eq(dl_blob_count_range(b, 1, 4), 60);
  int eight[8] = {2, 2, 2, 2, 2, 2, 2, 2};
  ck_assert_int_eq(dl_blob_reshape(b, 8, eight), DL_OK);
  ck_assert_uint_eq(b->count, 256);
  dl_diag_clear();
  int huge[4] = {100000, 100000, 100, 1};
  ck_assert_int_eq(dl_blob_reshape(b, 4, huge), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "limit"));
  int overflow[8] = {1 << 30, 1 << 30, 1 << 30, 1 << 30, 2, 2, 2, 2};
  ck_assert_int_eq(dl_blob_reshape(b, 8, overflow), DL_ECONFIG);
  int zero[2] = {3, 0};
  ck_assert_int_eq(dl_blob_reshape(b, 2, zero), DL_ECONFIG);
  ck_assert_uint_eq(b->count, 256); /* unchanged after a failed reshape */
  dl_blob_free(b);
}
END_TEST

START_TEST(blob_share_data) {
  dl_blob *a = dl_test_blob("a", 2, (int[]){2, 2}, 0, 1, 1), *b = dl_blob_new("b");
  dl_blob_share_data(b, a);
  dl_data(a)[3] = 42;
  ck_assert_float_eq(dl_cdata(b)[3], 42);
  dl_blob_free(a);
  ck_assert_float_eq(dl_cdata(b)[3], 42); /* refcounted: still alive */
  dl_blob_free(b);
}
END_TEST

/* The host half of synced memory: heads, and views that share their owner's
 * state (tests/test_gpu.c covers the device half). */
START_TEST(mem_heads_and_views) {
  dl_mem *m = dl_mem_new(10);
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_UNINIT);
  ck_assert(!dl_mem_host_fresh(m));
  const float *h = dl_mem_host(m);
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_AT_HOST);
  for (int i = 0; i < 10; i++) ck_assert(h[i] == 0);
  dl_mem *v = dl_mem_view(m, 2, 6), *vv = dl_mem_view(v, 1, 3);
  ck_assert_int_eq(dl_mem_state(vv), DL_MEM_AT_HOST);
  ck_assert(dl_mem_host_fresh(vv));
  ck_assert_ptr_eq(dl_mem_host(v), h + 2);
  dl_mem_host_mut(vv)[0] = 5;
  ck_assert(h[3] == 5);
  dl_mem_release(m); /* the views keep their owner alive */
  dl_mem_release(v);
  ck_assert(dl_mem_host(vv)[0] == 5);
  dl_mem_release(vv);
}
END_TEST

START_TEST(registry_complete_and_unique) {
  ck_assert_int_gt(dl_registry_count(), 0);
  for (int i = 0; i < dl_registry_count(); i++) {
    const dl_layer_ops *o = dl_registry_at(i);
    ck_assert_ptr_nonnull(o->type);
    ck_assert_ptr_nonnull(o->summary);
    ck_assert_ptr_nonnull(o->forward);
    ck_assert_ptr_nonnull(o->reshape);
    ck_assert_msg((o->get_cursor != NULL) == (o->set_cursor != NULL), "%s cursor pair", o->type);
    /* a GPU backward comes with a GPU forward, and only where there is a backward */
    ck_assert_msg(!o->backward_gpu || (o->forward_gpu && o->backward), "%s GPU twins", o->type);
    for (int j = 0; j < i; j++) ck_assert_str_ne(o->type, dl_registry_at(j)->type);
    ck_assert_ptr_eq(dl_registry_find(o->type), o);
  }
}
END_TEST

START_TEST(registry_unknown_type_suggests) {
  dl_diag_clear();
  dl_layer *l;
  ck_assert_int_eq(dl_layer_from_yaml("{name: r, type: ReLu}", DL_TRAIN, NULL, &l), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "did you mean 'ReLU'"));
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "<string>:1:"));
}
END_TEST

START_TEST(rng_repeatable) {
  dl_rng a, b;
  dl_rng_seed(&a, 7);
  dl_rng_seed(&b, 7);
  for (int i = 0; i < 100; i++) ck_assert_uint_eq(dl_rng_u64(&a), dl_rng_u64(&b));
  dl_rng_seed(&b, 8);
  ck_assert_uint_ne(dl_rng_u64(&a), dl_rng_u64(&b));
  double sum = 0, sq = 0;
  for (int i = 0; i < 100000; i++) {
    float g = dl_rng_gaussian(&a, 1, 2);
    sum += g, sq += (double)g * g;
  }
  double mean = sum / 1e5, var = sq / 1e5 - mean * mean;
  ck_assert_double_eq_tol(mean, 1, 0.05);
  ck_assert_double_eq_tol(var, 4, 0.1);
}
END_TEST

static double blob_var(dl_blob *b) {
  const float *x = dl_cdata(b);
  double s = 0, q = 0;
  for (size_t i = 0; i < b->count; i++) s += x[i], q += (double)x[i] * x[i];
  s /= (double)b->count;
  return q / (double)b->count - s * s;
}

START_TEST(fillers_match_closed_forms) {
  dl_blob *w = dl_blob_new("w");
  ck_assert_int_eq(dl_blob_reshape(w, 2, (int[]){200, 500}), DL_OK);
  dl_rng r;
  dl_rng_seed(&r, 3);
  dl_filler f = {.type = DL_FILL_CONSTANT, .value = 2.5f};
  dl_fill(&f, w, &r);
  ck_assert_float_eq(dl_cdata(w)[777], 2.5f);
  f = (dl_filler){.type = DL_FILL_UNIFORM, .min = -1, .max = 3};
  dl_fill(&f, w, &r);
  ck_assert_double_eq_tol(blob_var(w), 16.0 / 12, 0.03);
  f = (dl_filler){.type = DL_FILL_GAUSSIAN, .std = 0.5f};
  dl_fill(&f, w, &r);
  ck_assert_double_eq_tol(blob_var(w), 0.25, 0.01);
  f = (dl_filler){.type = DL_FILL_XAVIER}; /* var = 1 / fan_in = 1/500 */
  dl_fill(&f, w, &r);
  ck_assert_double_eq_tol(blob_var(w), 1.0 / 500, 1e-4);
  f = (dl_filler){.type = DL_FILL_MSRA, .variance_norm = DL_FAN_OUT}; /* 2 / fan_out = 2/200 */
  dl_fill(&f, w, &r);
  ck_assert_double_eq_tol(blob_var(w), 2.0 / 200, 4e-4);
  dl_blob_free(w);
}
END_TEST

Suite *suite_core(void) {
  Suite *s = suite_create("core");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, blob_reshape_and_limits);
  tcase_add_test(tc, blob_share_data);
  tcase_add_test(tc, mem_heads_and_views);
  tcase_add_test(tc, registry_complete_and_unique);
  tcase_add_test(tc, registry_unknown_type_suggests);
  tcase_add_test(tc, rng_repeatable);
  tcase_add_test(tc, fillers_match_closed_forms);
  suite_add_tcase(s, tc);
  return s;
}
