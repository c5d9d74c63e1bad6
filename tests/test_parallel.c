/* The threading runtime: split GEMMs (along M, N and K, every transpose) and
 * a threaded Convolution give the single-thread results; all_finite. */
#include <math.h>
#include <stdlib.h>

#include "core/math.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "tests/testutil.h"

static float *random_floats(size_t n, uint64_t seed) {
  float *v = malloc(n * sizeof *v);
  dl_rng r;
  dl_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++)
    v[i] = dl_rng_uniform_range(&r, -1, 1);
  return v;
}

/* C = alpha op(A) op(B) + beta C in double, the reference. */
static void naive_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                       const float *B, float beta, float *C) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++)
        s += (double)(ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k]) *
             (tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j]);
      C[(size_t)i * N + j] = (float)(alpha * s + beta * C[(size_t)i * N + j]);
    }
}

/* Shapes that take each split: tall (M), wide (N), long reduction (K), and
 * one too small to split; odd sizes to hit the ragged tails. */
START_TEST(split_gemm_matches_reference) {
  static const int shapes[][3] = {
      {301, 40, 177}, {20, 517, 230}, {20, 25, 9001}, {7, 5, 3}, {50, 500, 4096}};
  dl_set_threads(2);
  ck_assert_int_eq(dl_parallel_threads(), 2);
  for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
    for (int t = 0; t < 4; t++) {
      int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2], ta = t & 1, tb = t >> 1;
      float *A = random_floats((size_t)M * K, 1), *B = random_floats((size_t)K * N, 2);
      float *C = random_floats((size_t)M * N, 3), *R = malloc((size_t)M * N * sizeof *R);
      memcpy(R, C, (size_t)M * N * sizeof *R);
      dl_gemm(ta, tb, M, N, K, 0.5f, A, B, 0.25f, C);
      naive_gemm(ta, tb, M, N, K, 0.5f, A, B, 0.25f, R);
      for (size_t i = 0; i < (size_t)M * N; i++)
        ck_assert_msg(fabsf(C[i] - R[i]) <= 1e-4f * (1 + sqrtf((float)K)),
                      "shape %d x %d x %d ta %d tb %d: [%zu] %g vs %g", M, N, K, ta, tb, i, C[i],
                      R[i]);
      free(A), free(B), free(C), free(R);
    }
  dl_set_threads(1);
}
END_TEST

/* Products with a few columns (N <= 128, a multiple of 16) and many rows go
 * to oneDNN's matmul primitive (core/math_cpu.c: InnerProduct's forward with
 * a small batch); the others, and alpha != 1 or beta != 0, to sgemm. Each at
 * one and two threads (each thread then makes its own primitive). */
START_TEST(skinny_gemm_matches_reference) {
  static const int shapes[][3] = {
      {600, 16, 300}, {700, 64, 129}, {513, 128, 64}, {600, 40, 300}, {200, 64, 300}};
  for (int threads = 1; threads <= 2; threads++) {
    dl_set_threads(threads);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
      for (int scaled = 0; scaled < 2; scaled++) {
        int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
        float alpha = scaled ? 0.5f : 1.0f, beta = scaled ? 0.25f : 0.0f;
        float *A = random_floats((size_t)M * K, 4), *B = random_floats((size_t)K * N, 5);
        float *C = random_floats((size_t)M * N, 6), *R = malloc((size_t)M * N * sizeof *R);
        memcpy(R, C, (size_t)M * N * sizeof *R);
        for (int rep = 0; rep < 2; rep++) /* the second call reuses the primitive */
          dl_gemm(0, 0, M, N, K, alpha, A, B, beta, C);
        if (scaled) /* beta applied twice above */
          naive_gemm(0, 0, M, N, K, alpha * (1 + beta), A, B, beta * beta, R);
        else
          naive_gemm(0, 0, M, N, K, alpha, A, B, beta, R);
        for (size_t i = 0; i < (size_t)M * N; i++)
          ck_assert_msg(fabsf(C[i] - R[i]) <= 1e-4f * (1 + sqrtf((float)K)),
                        "%d threads, %d x %d x %d, alpha %g: [%zu] %g vs %g", threads, M, N, K,
                        alpha, i, C[i], R[i]);
        free(A), free(B), free(C), free(R);
      }
  }
  dl_set_threads(1);
}
END_TEST

/* A B^T with few rows (M <= 256) and a long reduction (K >= 1024): a native
 * convolution's weight gradient, which goes to oneDNN's matmul primitive,
 * with beta 0 or 1 (a sum post-op); at two threads split along M in single
 * rows, so that each thread's operands stay dense (core/math_cpu.c). */
START_TEST(matmul_nt_matches_reference) {
  static const int shapes[][3] = {{50, 500, 2048}, {21, 37, 1100}, {3, 200, 4096}, {256, 64, 1024}};
  for (int threads = 1; threads <= 2; threads++) {
    dl_set_threads(threads);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
      for (int accumulate = 0; accumulate < 2; accumulate++) {
        int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
        float beta = (float)accumulate;
        float *A = random_floats((size_t)M * K, 10), *B = random_floats((size_t)N * K, 11);
        float *C = random_floats((size_t)M * N, 12), *R = malloc((size_t)M * N * sizeof *R);
        memcpy(R, C, (size_t)M * N * sizeof *R);
        for (int rep = 0; rep < 2; rep++) /* the second call reuses the primitive */
          dl_gemm(0, 1, M, N, K, 1.0f, A, B, beta, C);
        naive_gemm(0, 1, M, N, K, 1.0f + beta, A, B, beta, R); /* C twice added to */
        for (size_t i = 0; i < (size_t)M * N; i++)
          ck_assert_msg(fabsf(C[i] - R[i]) <= 1e-4f * (1 + sqrtf((float)K)),
                        "%d threads, %d x %d x %d, beta %g: [%zu] %g vs %g", threads, M, N, K, beta,
                        i, C[i], R[i]);
        free(A), free(B), free(C), free(R);
      }
  }
  dl_set_threads(1);
}
END_TEST

/* Narrow products of plain matrices with more than 512 rows run in bands of
 * 512 rows (core/math_cpu.c, gemm_ld); a ragged last band at one thread, and
 * at two, where each thread's slice is banded again. */
START_TEST(banded_gemm_matches_reference) {
  static const int shapes[][3] = {{1100, 200, 300}, {1300, 512, 70}, {1030, 48, 100}};
  for (int threads = 1; threads <= 2; threads++) {
    dl_set_threads(threads);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
      int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
      float *A = random_floats((size_t)M * K, 7), *B = random_floats((size_t)K * N, 8);
      float *C = random_floats((size_t)M * N, 9), *R = malloc((size_t)M * N * sizeof *R);
      memcpy(R, C, (size_t)M * N * sizeof *R);
      dl_gemm(0, 0, M, N, K, 0.5f, A, B, 0.25f, C);
      naive_gemm(0, 0, M, N, K, 0.5f, A, B, 0.25f, R);
      for (size_t i = 0; i < (size_t)M * N; i++)
        ck_assert_msg(fabsf(C[i] - R[i]) <= 1e-4f * (1 + sqrtf((float)K)),
                      "%d threads, %d x %d x %d: [%zu] %g vs %g", threads, M, N, K, i, C[i], R[i]);
      free(A), free(B), free(C), free(R);
    }
  }
  dl_set_threads(1);
}
END_TEST

/* Convolution forward and backward at 2 threads equal 1 thread's to rounding
 * (the K split of the weight gradient reorders a sum). */
START_TEST(threaded_conv_matches_serial) {
  const char *cfg = "{name: c, type: Convolution, num_output: 6, kernel_size: 3, pad: 1, stride: "
                    "2, engine: native}";
  float *out[2][3];
  for (int threads = 1; threads <= 2; threads++) {
    dl_set_threads(threads);
    dl_blob *x = dl_test_blob("x", 4, (int[]){9, 4, 11, 7}, -1, 1, 5), *y = dl_blob_new("y");
    dl_layer *l = dl_test_layer(cfg, &x, 1, &y, 1);
    ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
    float *dy = dl_diff(y);
    for (size_t i = 0; i < y->count; i++)
      dy[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    dl_set(l->params[0]->count, 0, dl_diff(l->params[0]));
    l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
    dl_blob *res[3] = {y, x, l->params[0]};
    for (int r = 0; r < 3; r++) {
      size_t n = res[r]->count;
      out[threads - 1][r] = malloc(n * sizeof(float));
      memcpy(out[threads - 1][r], r == 0 ? dl_cdata(y) : dl_cdiff(res[r]), n * sizeof(float));
    }
    if (threads == 2) {
      dl_check_close(out[1][0], out[0][0], y->count, 1e-5, "y");
      dl_check_close(out[1][1], out[0][1], x->count, 1e-5, "dx");
      dl_check_close(out[1][2], out[0][2], l->params[0]->count, 1e-5, "dW");
    }
    dl_layer_free(l);
    dl_blob_free(x);
    dl_blob_free(y);
  }
  for (int t = 0; t < 2; t++)
    for (int r = 0; r < 3; r++)
      free(out[t][r]);
  dl_set_threads(1);
}
END_TEST

/* Layers whose threads split independent elements or planes give the same
 * bits at 1 and 2 threads, forward and backward. Sizes are large enough to be
 * split, with ragged tails. */
START_TEST(threaded_layers_match_serial_bitwise) {
  static const char *const cfgs[] = {
      "{name: p, type: Pooling, pool: max, kernel_size: 3, stride: 2}",
      "{name: p, type: Pooling, pool: ave, kernel_size: 3, stride: 2, pad: 1}",
      "{name: r, type: ReLU, negative_slope: 0.1}",
      "{name: s, type: Sigmoid}",
      "{name: t, type: TanH}",
      "{name: s, type: Softmax}",
  };
  for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
    float *res[2][2];
    size_t ny = 0, nx = 0;
    for (int threads = 1; threads <= 2; threads++) {
      dl_set_threads(threads);
      dl_blob *x = dl_test_blob("x", 4, (int[]){37, 13, 41, 19}, -3, 3, 9), *y = dl_blob_new("y");
      dl_layer *l = dl_test_layer(cfgs[c], &x, 1, &y, 1);
      ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
      float *dy = dl_diff(y);
      for (size_t i = 0; i < y->count; i++)
        dy[i] = (float)((i * 29) % 13) / 13.0f - 0.5f;
      l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
      ny = y->count, nx = x->count;
      res[threads - 1][0] = malloc(ny * sizeof(float));
      res[threads - 1][1] = malloc(nx * sizeof(float));
      memcpy(res[threads - 1][0], dl_cdata(y), ny * sizeof(float));
      memcpy(res[threads - 1][1], dl_cdiff(x), nx * sizeof(float));
      dl_layer_free(l);
      dl_blob_free(x);
      dl_blob_free(y);
    }
    ck_assert_msg(memcmp(res[0][0], res[1][0], ny * sizeof(float)) == 0, "%s: forward differs",
                  cfgs[c]);
    ck_assert_msg(memcmp(res[0][1], res[1][1], nx * sizeof(float)) == 0, "%s: backward differs",
                  cfgs[c]);
    for (int t = 0; t < 2; t++)
      free(res[t][0]), free(res[t][1]);
  }
  dl_set_threads(1);
}
END_TEST

START_TEST(all_finite_finds_nan_and_inf) {
  float v[37] = {0};
  ck_assert(dl_all_finite(37, v));
  v[36] = INFINITY;
  ck_assert(!dl_all_finite(37, v));
  v[36] = -3e38f;
  v[5] = NAN;
  ck_assert(!dl_all_finite(37, v));
  v[5] = 1e-40f; /* denormals are finite */
  ck_assert(dl_all_finite(37, v));
}
END_TEST

Suite *suite_parallel(void) {
  Suite *s = suite_create("parallel");
  TCase *tc = tcase_create("parallel");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, split_gemm_matches_reference);
  tcase_add_test(tc, skinny_gemm_matches_reference);
  tcase_add_test(tc, banded_gemm_matches_reference);
  tcase_add_test(tc, matmul_nt_matches_reference);
  tcase_add_test(tc, threaded_conv_matches_serial);
  tcase_add_test(tc, threaded_layers_match_serial_bitwise);
  tcase_add_test(tc, all_finite_finds_nan_and_inf);
  suite_add_tcase(s, tc);
  return s;
}
