/* GPU parity: synced memory (round trips, views, head states), the GPU math
 * against the CPU code (GEMM in every transposition on odd sizes), every GPU
 * twin's forward and backward against the CPU code on random inputs (relative
 * error at most 1e-4, fp32), each solver type's fused update against the host one, and
 * short training runs following the CPU's losses, snapshots moving between
 * the two. Without a GPU, and in the CPU-only build, each test prints a SKIP
 * line and passes.
 * Each test makes its own CUDA context: Check runs every test in a forked
 * process, and a context does not survive a fork, so nothing here touches
 * CUDA in the runner's parent process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/math.h"
#include "core/net.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

#ifdef DL_GPU
#include "core/gpu.h"
#include "core/math_gpu.h"

#define TOL 1e-4 /* the parity bound for fp32 */

/* 1 (after printing the SKIP line) when there is no GPU to test on;
 * otherwise makes GPU 0 this process's device. */
static int no_gpu(const char *test) {
  char why[256] = "";
  if (dl_cuda_device_count(why, sizeof why) <= 0) {
    printf("SKIP gpu suite (%s): no CUDA GPU found: %s\n", test, why);
    fflush(stdout);
    return 1;
  }
  dl_diag_clear();
  ck_assert_msg(dl_gpu_require(0) == DL_OK, "%s", dl_diag_text());
  return 0;
}
#define REQUIRE_GPU(test)                                                                          \
  do {                                                                                             \
    if (no_gpu(test)) return;                                                                      \
  } while (0)

static void sync_ok(void) { ck_assert_msg(dl_gpu_sync() == DL_OK, "%s", dl_diag_text()); }

static float *random_floats(size_t n, float lo, float hi, uint64_t seed) {
  dl_rng rng;
  dl_rng_seed(&rng, seed);
  float *x = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    x[i] = dl_rng_uniform_range(&rng, lo, hi);
  return x;
}

/* A mem holding a copy of x, fresh on the device. */
static dl_mem *device_copy(const float *x, size_t n) {
  dl_mem *m = dl_mem_new(n);
  memcpy(dl_mem_host_mut(m), x, n * sizeof(float));
  ck_assert_ptr_nonnull(dl_mem_device(m));
  return m;
}

/* ---- synced memory ---------------------------------------------------------- */

START_TEST(gpu_mem_round_trip) {
  REQUIRE_GPU("mem_round_trip");
  size_t before = dl_mem_device_bytes_allocated();
  dl_mem *m = dl_mem_new(1000);
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_UNINIT);
  ck_assert_ptr_nonnull(dl_mem_device(m)); /* first touch on the device: zeros */
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_AT_DEVICE);
  ck_assert_uint_eq(dl_mem_device_bytes_allocated(), before + 1000 * sizeof(float));
  const float *h = dl_mem_host(m);
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_SYNCED);
  for (int i = 0; i < 1000; i++)
    ck_assert(h[i] == 0);
  float *hm = dl_mem_host_mut(m);
  ck_assert_ptr_eq(hm, h);
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_AT_HOST);
  ck_assert(dl_mem_host_fresh(m));
  for (int i = 0; i < 1000; i++)
    hm[i] = 0.5f * (float)i;
  float *d = dl_mem_device_mut(m); /* uploads, then the device is the head */
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_AT_DEVICE);
  ck_assert(!dl_mem_host_fresh(m));
  dl_gpu_scal(1000, 2.0f, d);
  const float *back = dl_mem_host(m); /* downloads after the kernel */
  ck_assert_int_eq(dl_mem_state(m), DL_MEM_SYNCED);
  ck_assert_ptr_eq(back, h);
  for (int i = 0; i < 1000; i++)
    ck_assert_float_eq(back[i], (float)i);
  ck_assert_ptr_eq(dl_mem_device(m), d); /* synced: same buffer, no copy */
  dl_mem_release(m);
  ck_assert_uint_eq(dl_mem_device_bytes_allocated(), before);
  sync_ok();
}
END_TEST

START_TEST(gpu_mem_views) {
  REQUIRE_GPU("mem_views");
  dl_mem *parent = dl_mem_new(100);
  float *p = dl_mem_host_mut(parent);
  for (int i = 0; i < 100; i++)
    p[i] = (float)i;
  dl_mem *v = dl_mem_view(parent, 10, 20), *vv = dl_mem_view(v, 5, 5);
  const float *dv = dl_mem_device(v);
  ck_assert_ptr_eq(dv, dl_mem_device(parent) + 10);
  ck_assert_ptr_eq(dl_mem_device(vv), dl_mem_device(parent) + 15);
  ck_assert_int_eq(dl_mem_state(parent), DL_MEM_SYNCED);
  ck_assert_int_eq(dl_mem_state(v), DL_MEM_SYNCED); /* a view has its owner's state */
  dl_gpu_set(20, -1.0f, dl_mem_device_mut(v));
  ck_assert_int_eq(dl_mem_state(parent), DL_MEM_AT_DEVICE);
  const float *hp = dl_mem_host(parent);
  ck_assert_float_eq(hp[9], 9);
  for (int i = 10; i < 30; i++)
    ck_assert_float_eq(hp[i], -1);
  ck_assert_float_eq(hp[30], 30);
  ck_assert_ptr_eq(dl_mem_host(vv), hp + 15);
  dl_mem_host_mut(vv)[0] = 42; /* through the nested view: the owner's host is the head */
  ck_assert_int_eq(dl_mem_state(parent), DL_MEM_AT_HOST);
  ck_assert_int_eq((int)dl_gpu_sumsq(1, dl_mem_device(parent) + 15), 42 * 42);
  dl_mem_release(v); /* the views keep their owner alive */
  ck_assert_float_eq(dl_mem_host(vv)[0], 42);
  dl_mem_release(vv);
  dl_mem_release(parent);

  /* Blob accessors: data and diff are separate mems. */
  dl_blob *b = dl_test_blob("b", 2, (int[]){3, 7}, -1, 1, 5);
  float want = dl_cdata(b)[20];
  dl_gpu_scal(b->count, 3.0f, dl_gpu_data(b));
  dl_gpu_set(b->count, 0.25f, dl_gpu_diff(b));
  ck_assert_float_eq_tol(dl_cdata(b)[20], 3 * want, 1e-6);
  ck_assert_float_eq(dl_cdiff(b)[6], 0.25f);
  ck_assert_ptr_nonnull(dl_gpu_cdata(b));
  ck_assert_ptr_nonnull(dl_gpu_cdiff(b));
  dl_blob_free(b);
  sync_ok();
}
END_TEST

/* ---- math --------------------------------------------------------------------- */

START_TEST(gpu_gemm_all_transposes) {
  REQUIRE_GPU("gemm_all_transposes");
  const int M = 37, N = 29, K = 53;
  float *A = random_floats((size_t)M * K, -1, 1, 1), *B = random_floats((size_t)K * N, -1, 1, 2);
  float *C0 = random_floats((size_t)M * N, -1, 1, 3), *C = malloc((size_t)M * N * sizeof(float));
  dl_mem *a = device_copy(A, (size_t)M * K), *bm = device_copy(B, (size_t)K * N);
  for (int t = 0; t < 8; t++) {
    int ta = t & 1, tb = (t >> 1) & 1;
    float beta = t & 4 ? 0.3f : 0.0f;
    memcpy(C, C0, (size_t)M * N * sizeof(float));
    dl_mem *c = device_copy(C0, (size_t)M * N);
    /* op(A) is M x K either way: A is stored K x M when transposed. */
    dl_gemm(ta, tb, M, N, K, 0.7f, A, B, beta, C);
    dl_gpu_gemm(ta, tb, M, N, K, 0.7f, dl_mem_device(a), dl_mem_device(bm), beta,
                dl_mem_device_mut(c));
    char what[64];
    snprintf(what, sizeof what, "gemm(trans_a %d, trans_b %d, beta %g)", ta, tb, beta);
    dl_check_close(dl_mem_host(c), C, (size_t)M * N, TOL, what);
    dl_mem_release(c);
  }
  /* gemv both ways */
  float *x = random_floats(N > M ? N : M, -1, 1, 4), *y0 = random_floats(N > M ? N : M, -1, 1, 5);
  dl_mem *xd = device_copy(x, N > M ? N : M);
  for (int ta = 0; ta < 2; ta++) {
    int out = ta ? N : M;
    float *y = malloc((size_t)out * sizeof(float));
    memcpy(y, y0, (size_t)out * sizeof(float));
    dl_mem *yd = device_copy(y0, (size_t)out);
    dl_gemv(ta, M, N, 1.3f, A, x, 0.4f, y); /* A viewed as M x N here */
    dl_gpu_gemv(ta, M, N, 1.3f, dl_mem_device(a), dl_mem_device(xd), 0.4f, dl_mem_device_mut(yd));
    dl_check_close(dl_mem_host(yd), y, (size_t)out, TOL, ta ? "gemv^T" : "gemv");
    dl_mem_release(yd);
    free(y);
  }
  dl_mem_release(a);
  dl_mem_release(bm);
  dl_mem_release(xd);
  free(A), free(B), free(C0), free(C), free(x), free(y0);
  sync_ok();
}
END_TEST

START_TEST(gpu_vector_ops) {
  REQUIRE_GPU("vector_ops");
  const size_t n = 1237;
  float *x = random_floats(n, -2, 2, 7), *y = random_floats(n, -2, 2, 8);
  float *want = malloc(n * sizeof(float));
  dl_mem *xd = device_copy(x, n), *yd = device_copy(y, n);

  memcpy(want, y, n * sizeof(float));
  dl_axpy(n, 0.3f, x, want);
  dl_gpu_axpy(n, 0.3f, dl_mem_device(xd), dl_mem_device_mut(yd));
  dl_check_close(dl_mem_host(yd), want, n, TOL, "axpy");
  dl_axpby(n, -1.5f, x, 0.25f, want);
  dl_gpu_axpby(n, -1.5f, dl_mem_device(xd), 0.25f, dl_mem_device_mut(yd));
  dl_check_close(dl_mem_host(yd), want, n, TOL, "axpby");
  dl_scal(n, 0.5f, want);
  dl_gpu_scal(n, 0.5f, dl_mem_device_mut(yd));
  dl_check_close(dl_mem_host(yd), want, n, TOL, "scal");
  double dot = dl_gpu_dot(n, dl_mem_device(xd), dl_mem_device(yd));
  ck_assert_double_eq_tol(dot, dl_dot(n, x, want), 1e-6 * fmax(1, fabs(dot)));
  ck_assert_double_eq_tol(dl_gpu_asum(n, dl_mem_device(xd)), dl_asum(n, x), 1e-6 * n);
  ck_assert_double_eq_tol(dl_gpu_sumsq(n, dl_mem_device(xd)), dl_sumsq(n, x), 1e-6 * n);
  dl_gpu_copy(n, dl_mem_device(xd), dl_mem_device_mut(yd));
  ck_assert_int_eq(memcmp(dl_mem_host(yd), x, n * sizeof(float)), 0);
  dl_gpu_set(n, 1.25f, dl_mem_device_mut(yd));
  ck_assert_float_eq(dl_mem_host(yd)[n - 1], 1.25f);

  /* out = beta out + scale sum(x y), on the device */
  dl_mem *out = dl_mem_new(1);
  dl_mem_host_mut(out)[0] = 2;
  dl_gpu_reduce_into(n, dl_mem_device(xd), NULL, 0.5f, 3.0f, dl_mem_device_mut(out));
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += x[i];
  ck_assert_double_eq_tol(dl_mem_host(out)[0], 6 + 0.5 * sum, 1e-4);

  /* bias rows and column sums on an M x N matrix with a ragged last block */
  const int M = 45, N = 70;
  float *mat = random_floats((size_t)M * N, -1, 1, 9), *b = random_floats(N, -1, 1, 10);
  dl_mem *md = device_copy(mat, (size_t)M * N), *bd = device_copy(b, N);
  dl_gpu_add_row(M, N, dl_mem_device(bd), dl_mem_device_mut(md));
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      mat[i * N + j] += b[j];
  dl_check_close(dl_mem_host(md), mat, (size_t)M * N, TOL, "add_row");
  dl_gpu_col_sum_add(M, N, dl_mem_device(md), dl_mem_device_mut(bd));
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++)
      b[j] += mat[i * N + j];
  dl_check_close(dl_mem_host(bd), b, N, TOL, "col_sum_add");

  /* softmax: rows (inner 1, wider than a block) and strided columns */
  int shapes[2][3] = {{7, 1000, 1}, {3, 11, 13}};
  for (int k = 0; k < 2; k++) {
    int o = shapes[k][0], c = shapes[k][1], in = shapes[k][2];
    size_t cnt = (size_t)o * c * in;
    float *s = random_floats(cnt, -8, 8, 11 + k), *sy = malloc(cnt * sizeof(float));
    dl_mem *sd = device_copy(s, cnt);
    dl_softmax(o, c, in, s, sy);
    dl_gpu_softmax(o, c, in, dl_mem_device(sd), dl_mem_device_mut(sd)); /* in place */
    dl_check_close(dl_mem_host(sd), sy, cnt, TOL, k ? "softmax (inner 13)" : "softmax (rows)");
    dl_mem_release(sd);
    free(s), free(sy);
  }
  dl_mem_release(xd), dl_mem_release(yd), dl_mem_release(out), dl_mem_release(md);
  dl_mem_release(bd);
  free(x), free(y), free(want), free(mat), free(b);
  sync_ok();
}
END_TEST

/* More elements than the capped grid has threads: the grid-stride loops. */
START_TEST(gpu_large_counts) {
  REQUIRE_GPU("large_counts");
  size_t n = (size_t)65536 * 256 * 2 + 12345;
  dl_mem *m = dl_mem_new(n), *o = dl_mem_new(n);
  dl_gpu_set(n, 1.0f, dl_mem_device_mut(m));
  dl_gpu_set(n, 2.0f, dl_mem_device_mut(o));
  dl_gpu_axpy(n, 3.0f, dl_mem_device(m), dl_mem_device_mut(o));
  ck_assert_double_eq_tol(dl_gpu_asum(n, dl_mem_device(o)), 5.0 * (double)n, 1e-6 * n);
  const float *h = dl_mem_host(o);
  ck_assert_float_eq(h[0], 5);
  ck_assert_float_eq(h[n - 1], 5);
  dl_mem_release(m);
  dl_mem_release(o);
  sync_ok();
}
END_TEST

/* ---- layers: GPU twin against the CPU code -------------------------------------- */

static void copy_out(float **dst, dl_blob *b, int diff) {
  *dst = malloc(b->count * sizeof(float));
  memcpy(*dst, diff ? dl_cdiff(b) : dl_cdata(b), b->count * sizeof(float));
}

/* Builds the layer on `bottom`, runs forward + backward on the CPU, then the
 * GPU twins on the same inputs, and compares tops, bottom diffs and param
 * diffs. Top diffs are random (the loss weight, for a scalar loss). */
static void parity(const char *yaml, dl_blob **bottom, int nb, int nt) {
  dl_blob *top[4];
  for (int t = 0; t < nt; t++)
    top[t] = dl_blob_new("top");
  dl_layer *l = dl_test_layer(yaml, bottom, nb, top, nt);
  ck_assert_msg(l->ops->forward_gpu != NULL, "%s: no GPU forward", l->ops->type);
  ck_assert_msg(!l->ops->backward || l->ops->backward_gpu, "%s: no GPU backward", l->ops->type);
  int prop[4];
  for (int b = 0; b < nb; b++)
    prop[b] = !(l->ops->no_grad_bottoms & (1u << b));
  float *want_top[4], *want_dx[4] = {0}, *want_dp[DL_MAX_LAYER_PARAMS] = {0};
  float *dy[4];
  char what[300];

  ck_assert_msg(l->ops->forward(l, bottom, nb, top, nt) == DL_OK, "%s", dl_diag_text());
  for (int t = 0; t < nt; t++) {
    copy_out(&want_top[t], top[t], 0);
    dy[t] = random_floats(top[t]->count, -1, 1, 100 + (uint64_t)t);
  }
  if (l->ops->backward) {
    for (int t = 0; t < nt; t++)
      memcpy(dl_diff(top[t]), dy[t], top[t]->count * sizeof(float));
    for (int p = 0; p < l->nparams; p++)
      dl_set(l->params[p]->count, 0, dl_diff(l->params[p]));
    l->ops->backward(l, top, nt, prop, bottom, nb);
    for (int b = 0; b < nb; b++)
      if (prop[b]) copy_out(&want_dx[b], bottom[b], 1);
    for (int p = 0; p < l->nparams; p++)
      copy_out(&want_dp[p], l->params[p], 1);
  }

  /* The GPU run: outputs and diffs overwritten first, so nothing the CPU
   * wrote survives (except tops that share a bottom's data, as Split's). */
  for (int t = 0; t < nt; t++)
    if (top[t]->data->refs == 1) dl_set(top[t]->count, NAN, dl_data(top[t]));
  ck_assert_msg(l->ops->forward_gpu(l, bottom, nb, top, nt) == DL_OK, "%s", dl_diag_text());
  sync_ok();
  for (int t = 0; t < nt; t++) {
    snprintf(what, sizeof what, "%s: top %d", yaml, t);
    dl_check_close(dl_cdata(top[t]), want_top[t], top[t]->count, TOL, what);
  }
  if (l->ops->backward) {
    for (int t = 0; t < nt; t++)
      memcpy(dl_diff(top[t]), dy[t], top[t]->count * sizeof(float));
    for (int p = 0; p < l->nparams; p++)
      dl_set(l->params[p]->count, 0, dl_diff(l->params[p]));
    for (int b = 0; b < nb; b++) {
      int shared = 0; /* a view's bottom diff is its top's: dy, set above */
      for (int t = 0; t < nt; t++)
        shared |= top[t]->diff == bottom[b]->diff;
      if (prop[b] && !shared) dl_set(bottom[b]->count, 7, dl_diff(bottom[b])); /* overwritten */
    }
    l->ops->backward_gpu(l, top, nt, prop, bottom, nb);
    sync_ok();
    for (int b = 0; b < nb; b++) {
      if (!prop[b]) continue;
      snprintf(what, sizeof what, "%s: bottom %d diff", yaml, b);
      dl_check_close(dl_cdiff(bottom[b]), want_dx[b], bottom[b]->count, TOL, what);
    }
    for (int p = 0; p < l->nparams; p++) {
      snprintf(what, sizeof what, "%s: param %d diff", yaml, p);
      dl_check_close(dl_cdiff(l->params[p]), want_dp[p], l->params[p]->count, TOL, what);
    }
  }
  for (int t = 0; t < nt; t++)
    free(want_top[t]), free(dy[t]), dl_blob_free(top[t]);
  for (int b = 0; b < nb; b++)
    free(want_dx[b]);
  for (int p = 0; p < DL_MAX_LAYER_PARAMS; p++)
    free(want_dp[p]);
  dl_layer_free(l);
}

/* n labels in [0, classes), every fifth one `ignore` when ignore >= 0. */
static dl_blob *labels(int ndim, const int *shape, int classes, int ignore, uint64_t seed) {
  dl_blob *b = dl_test_blob("label", ndim, shape, 0, 1, seed);
  float *y = dl_data(b);
  for (size_t i = 0; i < b->count; i++) {
    y[i] = (float)((int)(y[i] * (float)classes) % classes);
    if (ignore >= 0 && i % 5 == 2) y[i] = (float)ignore;
  }
  return b;
}

START_TEST(gpu_parity_activations) {
  REQUIRE_GPU("parity_activations");
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 5, 7}, -1, 1, 21);
  parity("{name: r, type: ReLU}", &x, 1, 1);
  parity("{name: r, type: ReLU, negative_slope: 0.1}", &x, 1, 1);
  parity("{name: s, type: Sigmoid}", &x, 1, 1);
  parity("{name: t, type: TanH}", &x, 1, 1);
  parity("{name: e, type: ELU, alpha: 0.7}", &x, 1, 1);
  parity("{name: s, type: Softmax}", &x, 1, 1);           /* over C = 3, inner 35 */
  parity("{name: s, type: Softmax, axis: -1}", &x, 1, 1); /* rows of 7 */
  dl_blob_free(x);
  x = dl_test_blob("x", 2, (int[]){3, 1031}, -60, 60, 22); /* saturation */
  parity("{name: s, type: Sigmoid}", &x, 1, 1);
  parity("{name: t, type: TanH}", &x, 1, 1);
  dl_blob_free(x);
}
END_TEST

START_TEST(gpu_parity_inner_product) {
  REQUIRE_GPU("parity_inner_product");
  dl_blob *x = dl_test_blob("x", 4, (int[]){5, 3, 4, 3}, -1, 1, 31);
  parity("{name: ip, type: InnerProduct, num_output: 7, bias_filler: {type: uniform}}", &x, 1, 1);
  parity("{name: ip, type: InnerProduct, num_output: 9, bias_term: false}", &x, 1, 1);
  dl_blob_free(x);
  x = dl_test_blob("x", 3, (int[]){4, 3, 11}, -1, 1, 32);
  parity("{name: ip, type: InnerProduct, num_output: 13, axis: 2}", &x, 1, 1);
  dl_blob_free(x);
  x = dl_test_blob("x", 2, (int[]){64, 1000}, -1, 1, 33);
  parity("{name: ip, type: InnerProduct, num_output: 100, bias_filler: {type: uniform}}", &x, 1, 1);
  dl_blob_free(x);
}
END_TEST

/* cuDNN's convolution against the CPU reference (im2col + GEMM): padding,
 * rectangular kernels and strides, dilation, groups, with and without bias. */
START_TEST(gpu_parity_convolution) {
  REQUIRE_GPU("parity_convolution");
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 4, 9, 7}, -1, 1, 35);
  parity("{name: c, type: Convolution, num_output: 6, kernel_size: 3, pad: 1, engine: native, "
         "bias_filler: {type: uniform}}",
         &x, 1, 1);
  parity("{name: c, type: Convolution, num_output: 5, kernel_size: [3, 2], stride: [2, 1], "
         "bias_term: false, engine: native}",
         &x, 1, 1);
  parity("{name: c, type: Convolution, num_output: 6, kernel_size: 3, dilation: 2, pad: 2, "
         "group: 2, engine: native, bias_filler: {type: uniform}}",
         &x, 1, 1);
  dl_blob_free(x);
  x = dl_test_blob("x", 4, (int[]){3, 3, 32, 32}, -1, 1, 36); /* AlexNet-R's first layer */
  parity("{name: c, type: Convolution, num_output: 32, kernel_size: 5, pad: 2, engine: native}", &x,
         1, 1);
  dl_blob_free(x);
}
END_TEST

/* Pooling's kernels against the CPU code: max and average, padding (counted
 * in the average's divisor), ceil and floor rounding, overlapping windows,
 * global pooling. Inputs are distinct random values: no ties. */
START_TEST(gpu_parity_pooling) {
  REQUIRE_GPU("parity_pooling");
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 13, 11}, -1, 1, 37);
  static const char *cases[] = {
      "{name: p, type: Pooling, pool: max, kernel_size: 3, stride: 2}",
      "{name: p, type: Pooling, pool: max, kernel_size: 3, stride: 2, round_mode: floor}",
      "{name: p, type: Pooling, pool: max, kernel_size: 2, stride: 2}",
      "{name: p, type: Pooling, pool: max, kernel_size: [3, 2], stride: [1, 2], pad: [1, 1]}",
      "{name: p, type: Pooling, pool: ave, kernel_size: 3, stride: 2, pad: 1}",
      "{name: p, type: Pooling, pool: ave, kernel_size: 3, stride: 2, round_mode: floor}",
      "{name: p, type: Pooling, pool: ave, global_pooling: true}",
      "{name: p, type: Pooling, pool: max, global_pooling: true}",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    parity(cases[i], &x, 1, 1);
  dl_blob_free(x);
}
END_TEST

/* Dropout draws the CPU's mask (the same counter-based function) and again
 * in backward; a third of the values dropped. */
START_TEST(gpu_parity_dropout) {
  REQUIRE_GPU("parity_dropout");
  dl_blob *x = dl_test_blob("x", 2, (int[]){37, 101}, -1, 1, 38);
  parity("{name: d, type: Dropout, dropout_ratio: 0.3}", &x, 1, 1);
  dl_blob_free(x);
}
END_TEST

/* Embed: the lookup, and the weight gradient grouped by token (many repeats
 * of few tokens, and tokens that do not occur), with and without a bias. */
START_TEST(gpu_parity_embed) {
  REQUIRE_GPU("parity_embed");
  dl_blob *x = labels(2, (int[]){6, 10}, 7, -1, 39); /* token ids in [0, 7) */
  parity("{name: e, type: Embed, input_dim: 9, num_output: 33}", &x, 1, 1);
  parity("{name: e, type: Embed, input_dim: 9, num_output: 5, bias_term: true, "
         "bias_filler: {type: uniform}}",
         &x, 1, 1);
  dl_blob_free(x);
}
END_TEST

/* LSTM: the steps, the cell and the backward through time. Every sequence
 * starts at step 0 (cont 0: the state the CPU run carried over is not used)
 * and some restart later; the state the GPU run carries over is the CPU's. */
START_TEST(gpu_parity_lstm) {
  REQUIRE_GPU("parity_lstm");
  int T = 5, N = 3;
  dl_blob *b[2] = {dl_test_blob("x", 3, (int[]){T, N, 7}, -1, 1, 40),
                   dl_test_blob("cont", 2, (int[]){T, N}, 0, 1, 41)};
  float *cont = dl_data(b[1]);
  for (int i = 0; i < T * N; i++)
    cont[i] = i < N || i % 4 == 3 ? 0.0f : 1.0f;
  parity("{name: l, type: LSTM, num_output: 11, bias_filler: {type: uniform}}", b, 2, 1);
  dl_blob_free(b[0]), dl_blob_free(b[1]);
}
END_TEST

/* The views: the top shares the bottom's data and diff on the device too. */
START_TEST(gpu_parity_views) {
  REQUIRE_GPU("parity_views");
  dl_blob *x = dl_test_blob("x", 4, (int[]){2, 3, 4, 5}, -1, 1, 42);
  parity("{name: f, type: Flatten}", &x, 1, 1);
  parity("{name: r, type: Reshape, shape: [0, -1, 5]}", &x, 1, 1);
  dl_blob_free(x);
}
END_TEST

/* Eltwise: weighted sum, product and maximum of three bottoms (random values:
 * no ties for max). */
START_TEST(gpu_parity_eltwise) {
  REQUIRE_GPU("parity_eltwise");
  dl_blob *x[3] = {dl_test_blob("a", 2, (int[]){7, 13}, -1, 1, 43),
                   dl_test_blob("b", 2, (int[]){7, 13}, -1, 1, 44),
                   dl_test_blob("c", 2, (int[]){7, 13}, -1, 1, 45)};
  parity("{name: e, type: Eltwise, operation: sum, coeff: [1, -0.5, 2]}", x, 3, 1);
  parity("{name: e, type: Eltwise, operation: prod}", x, 3, 1);
  parity("{name: e, type: Eltwise, operation: max}", x, 3, 1);
  for (int i = 0; i < 3; i++)
    dl_blob_free(x[i]);
}
END_TEST

/* Concat along channels and along the last axis (two and three bottoms). */
START_TEST(gpu_parity_concat) {
  REQUIRE_GPU("parity_concat");
  dl_blob *x[3] = {dl_test_blob("a", 4, (int[]){2, 3, 4, 5}, -1, 1, 46),
                   dl_test_blob("b", 4, (int[]){2, 2, 4, 5}, -1, 1, 47),
                   dl_test_blob("c", 4, (int[]){2, 1, 4, 5}, -1, 1, 48)};
  parity("{name: c, type: Concat}", x, 3, 1);
  dl_blob_free(x[1]), dl_blob_free(x[2]);
  x[1] = dl_test_blob("b", 4, (int[]){2, 3, 4, 2}, -1, 1, 49);
  parity("{name: c, type: Concat, axis: -1}", x, 2, 1);
  dl_blob_free(x[0]), dl_blob_free(x[1]);
  /* Slice, Concat's inverse: uneven pieces along channels, equal ones along the last axis */
  x[0] = dl_test_blob("x", 4, (int[]){2, 6, 3, 4}, -1, 1, 50);
  parity("{name: s, type: Slice, slice_point: [1, 4]}", x, 1, 3);
  parity("{name: s, type: Slice, axis: -1}", x, 1, 2);
  dl_blob_free(x[0]);
}
END_TEST

START_TEST(gpu_parity_losses) {
  REQUIRE_GPU("parity_losses");
  dl_blob *ab[2] = {dl_test_blob("a", 2, (int[]){6, 13}, -1, 1, 41),
                    dl_test_blob("b", 2, (int[]){6, 13}, -1, 1, 42)};
  parity("{name: e, type: EuclideanLoss}", ab, 2, 1);
  dl_blob_free(ab[0]), dl_blob_free(ab[1]);

  dl_blob *sl[2] = {dl_test_blob("s", 2, (int[]){8, 10}, -3, 3, 43),
                    labels(1, (int[]){8}, 10, -1, 44)};
  parity("{name: l, type: SoftmaxWithLoss}", sl, 2, 1);
  parity("{name: l, type: SoftmaxWithLoss}", sl, 2, 2); /* with the probabilities */
  dl_blob_free(sl[0]), dl_blob_free(sl[1]);

  /* inner > 1, ignored labels, every normalization */
  sl[0] = dl_test_blob("s", 4, (int[]){4, 5, 3, 2}, -3, 3, 45);
  sl[1] = labels(3, (int[]){4, 3, 2}, 5, 4, 46);
  const char *norms[] = {"valid", "batch_size", "full", "none"};
  char yaml[200];
  for (int k = 0; k < 4; k++) {
    snprintf(yaml, sizeof yaml,
             "{name: l, type: SoftmaxWithLoss, ignore_label: 4, normalization: %s}", norms[k]);
    parity(yaml, sl, 2, 1);
  }
  dl_blob_free(sl[0]), dl_blob_free(sl[1]);

  /* many classes: a softmax row wider than a block */
  sl[0] = dl_test_blob("s", 2, (int[]){3, 1000}, -5, 5, 47);
  sl[1] = labels(1, (int[]){3}, 1000, -1, 48);
  parity("{name: l, type: SoftmaxWithLoss}", sl, 2, 1);
  dl_blob_free(sl[0]), dl_blob_free(sl[1]);
}
END_TEST

START_TEST(gpu_parity_accuracy_split) {
  REQUIRE_GPU("parity_accuracy_split");
  dl_blob *in[2] = {dl_test_blob("s", 2, (int[]){16, 10}, -1, 1, 51),
                    labels(1, (int[]){16}, 10, 3, 52)};
  parity("{name: a, type: Accuracy}", in, 2, 1);
  parity("{name: a, type: Accuracy, top_k: 3}", in, 2, 1);
  parity("{name: a, type: Accuracy, ignore_label: 3}", in, 2, 1);
  dl_blob_free(in[0]), dl_blob_free(in[1]);
  in[0] = dl_test_blob("s", 3, (int[]){4, 5, 6}, -1, 1, 53);
  in[1] = labels(2, (int[]){4, 6}, 5, -1, 54);
  parity("{name: a, type: Accuracy, top_k: 2}", in, 2, 1);
  dl_blob_free(in[0]), dl_blob_free(in[1]);

  dl_blob *x = dl_test_blob("x", 2, (int[]){3, 77}, -1, 1, 55);
  parity("{name: s, type: Split}", &x, 1, 3);
  dl_blob_free(x);
}
END_TEST

/* Labels out of range are a data error on the GPU too (checked on the host,
 * where they come from). */
START_TEST(gpu_bad_label_is_an_error) {
  REQUIRE_GPU("bad_label_is_an_error");
  dl_blob *in[2] = {dl_test_blob("s", 2, (int[]){4, 3}, -1, 1, 61),
                    labels(1, (int[]){4}, 3, -1, 62)};
  dl_data(in[1])[2] = 3;
  dl_blob *top = dl_blob_new("loss");
  dl_layer *l = dl_test_layer("{name: l, type: SoftmaxWithLoss}", in, 2, &top, 1);
  dl_diag_clear();
  ck_assert_int_eq(l->ops->forward_gpu(l, in, 2, &top, 1), DL_EDATA);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "label 3 at position 2"));
  dl_layer_free(l);
  dl_blob_free(top);
  dl_blob_free(in[0]), dl_blob_free(in[1]);
}
END_TEST

/* ---- solver ------------------------------------------------------------------------ */

static dl_solver *make_solver(const char *net_path, const char *solver_yaml, const char *dir,
                              int gpu) {
  char full[2048];
  snprintf(full, sizeof full, "%ssnapshot_prefix: %s/snap\nseed: 7\ndisplay: 0\n", solver_yaml,
           dir);
  char *solver_path = dl_test_write(dir, gpu ? "solver_gpu.yaml" : "solver_cpu.yaml", full);
  char metrics[256];
  snprintf(metrics, sizeof metrics, "%s/metrics_%d.jsonl", dir, gpu);
  dl_solver_param p;
  dl_diag_clear();
  ck_assert_msg(dl_solver_param_load(solver_path, &p) == DL_OK, "%s", dl_diag_text());
  dl_solver_opts o = {
      .net_path = net_path, .seed = -1, .gpu = gpu ? 0 : -1, .metrics_path = metrics, .quiet = 1};
  dl_solver *s = NULL;
  ck_assert_msg(dl_solver_create(&p, solver_path, &o, &s) == DL_OK, "%s", dl_diag_text());
  ck_assert_int_eq(s->ctx.gpu, gpu);
  free(solver_path);
  return s;
}

static const char *update_net =
    "name: upd\n"
    "layers:\n"
    "  - {name: d, type: SyntheticData, top: [x, label], shape: [8, 700], num_classes: 5}\n"
    "  - {name: ip1, type: InnerProduct, bottom: x, top: h, num_output: 9,\n"
    "     param: [{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0}]}\n"
    "  - {name: ip2, type: InnerProduct, bottom: h, top: y, num_output: 5,\n"
    "     param: [{lr_mult: 0.5, decay_mult: 3}, {lr_mult: 0}]}\n"
    "  - {name: loss, type: SoftmaxWithLoss, bottom: [y, label], top: loss}\n";

/* Each solver type's fused kernel against the host loops, from the same
 * weights, gradients and history, under L2 and L1, iter_size 2 and clipping. */
START_TEST(gpu_fused_update_matches_host) {
  REQUIRE_GPU("fused_update_matches_host");
  static const char *hyper[] = {
      [DL_SOLVER_SGD] = "momentum: 0.9\n",
      [DL_SOLVER_NESTEROV] = "momentum: 0.9\n",
      [DL_SOLVER_ADAGRAD] = "delta: 1e-6\n",
      [DL_SOLVER_RMSPROP] = "rms_decay: 0.95\ndelta: 1e-6\n",
      [DL_SOLVER_ADADELTA] = "momentum: 0.95\ndelta: 1e-6\n",
      [DL_SOLVER_ADAM] = "momentum: 0.9\nmomentum2: 0.999\ndelta: 1e-8\n",
      [DL_SOLVER_ADAMW] = "momentum: 0.9\nmomentum2: 0.999\ndelta: 1e-8\n",
  };
  int type = _i;
  char dir[64], yaml[512];
  dl_test_tmpdir(dir, sizeof dir);
  char *net_path = dl_test_write(dir, "net.yaml", update_net);
  snprintf(yaml, sizeof yaml, "type: %s\nbase_lr: 0.1\n%sweight_decay: 0.01\nmax_iter: 10\n",
           dl_solver_type_names[type], hyper[type]);
  dl_solver *s = make_solver(net_path, yaml, dir, 1);
  ck_assert(dl_solver_update_on_gpu(s));
  s->iter = 3; /* Adam's bias correction at t = 4 */
  dl_net *net = s->train;
  size_t n = net->param_count, hn = s->history->count;
  ck_assert_uint_gt(n, 4096); /* ip1's weights span two chunks */
  float *w0 = random_floats(n, -1, 1, 71), *g0 = random_floats(n, -1, 1, 72);
  /* history: momentum-like values, and positive where it holds squares */
  float *h0 = random_floats(hn, type == DL_SOLVER_SGD || type == DL_SOLVER_NESTEROV ? -0.1f : 0.0f,
                            0.1f, 73);
  float *w = malloc(n * sizeof(float)), *h = malloc(hn * sizeof(float));
  for (int k = 0; k < 4; k++) {
    s->param.regularization = k & 1 ? DL_REG_L1 : DL_REG_L2;
    s->param.iter_size = k & 2 ? 2 : 1;
    s->param.clip_gradients = k == 3 ? 0.5f : 0;
    struct dl_solver_gpu *gpu = s->gpu;
    for (int side = 0; side < 2; side++) { /* 0: the fused kernel, 1: the host code */
      memcpy(dl_mem_host_mut(net->flat_data), w0, n * sizeof(float));
      memcpy(dl_mem_host_mut(net->flat_diff), g0, n * sizeof(float));
      memcpy(dl_mem_host_mut(s->history), h0, hn * sizeof(float));
      s->gpu = side ? NULL : gpu;
      dl_solver_update(s, 0.05);
      s->gpu = gpu;
      sync_ok();
      if (!side) {
        memcpy(w, dl_mem_host(net->flat_data), n * sizeof(float));
        memcpy(h, dl_mem_host(s->history), hn * sizeof(float));
        continue;
      }
      char what[96];
      snprintf(what, sizeof what, "%s weights (case %d)", dl_solver_type_names[type], k);
      dl_check_close(w, dl_mem_host(net->flat_data), n, 1e-5, what);
      snprintf(what, sizeof what, "%s history (case %d)", dl_solver_type_names[type], k);
      dl_check_close(h, dl_mem_host(s->history), hn, 1e-5, what);
    }
    /* ip2's bias (lr_mult 0, the last parameter) is untouched */
    size_t off = net->param_offset[net->nparams - 1];
    ck_assert_int_eq(memcmp(w + off, w0 + off, 5 * sizeof(float)), 0);
  }
  free(w0), free(g0), free(h0), free(w), free(h), free(net_path);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* Trains configs/two_layer (InnerProduct, ReLU, EuclideanLoss) on the CPU and
 * on the GPU from the same seed: the losses agree iteration by iteration. */
START_TEST(gpu_training_follows_cpu) {
  REQUIRE_GPU("training_follows_cpu");
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  const char *net = "configs/two_layer/net.yaml", *sv = "base_lr: 0.0001\nmax_iter: 60\n";
  dl_solver *c = make_solver(net, sv, dir, 0), *g = make_solver(net, sv, dir, 1);
  for (int it = 0; it < 60; it++) {
    double lc, lg;
    ck_assert_msg(dl_solver_step(c, &lc) == DL_OK, "%s", dl_diag_text());
    ck_assert_msg(dl_solver_step(g, it % 10 == 9 ? &lg : NULL) == DL_OK, "%s", dl_diag_text());
    if (it % 10 != 9) continue;
    printf("two_layer iter %d: cpu loss %.6g, gpu loss %.6g\n", it + 1, lc, lg);
    ck_assert_msg(fabs(lc - lg) <= 1e-3 * fmax(1, fabs(lc)), "iter %d: cpu %.8g gpu %.8g", it + 1,
                  lc, lg);
    ck_assert_double_eq_tol(g->smoothed_loss, c->smoothed_loss, 1e-3 * fmax(1, c->smoothed_loss));
  }
  dl_check_close(dl_mem_host(g->train->flat_data), dl_mem_host(c->train->flat_data),
                 c->train->param_count, 1e-3, "weights after 60 iterations");
  dl_solver_free(c);
  dl_solver_free(g);
  dl_test_rmdir(dir);
}
END_TEST

/* A snapshot written by a GPU run resumes on the CPU, and the reverse, for a
 * one-slot (SGD) and a two-slot (Adam) history. */
START_TEST(gpu_snapshots_cross_devices) {
  REQUIRE_GPU("snapshots_cross_devices");
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  const char *net = "configs/two_layer/net.yaml";
  const char *types[2] = {"type: SGD\nmomentum: 0.9\nbase_lr: 0.0001\nmax_iter: 40\n",
                          "type: Adam\nmomentum: 0.9\nbase_lr: 0.001\nmax_iter: 40\n"};
  for (int t = 0; t < 2; t++)
    for (int from_gpu = 0; from_gpu < 2; from_gpu++) {
      dl_solver *a = make_solver(net, types[t], dir, from_gpu);
      ck_assert_int_eq(dl_solver_update_on_gpu(a), from_gpu);
      double la, lb;
      for (int it = 0; it < 20; it++)
        ck_assert(dl_solver_step(a, NULL) == DL_OK);
      ck_assert_msg(dl_solver_step(a, &la) == DL_OK, "%s", dl_diag_text());
      ck_assert_msg(dl_solver_snapshot(a) == DL_OK, "%s", dl_diag_text());
      dl_solver *b = make_solver(net, types[t], dir, !from_gpu);
      ck_assert_msg(dl_solver_restore(b, a->last_snapshot) == DL_OK, "%s", dl_diag_text());
      ck_assert_int_eq(b->iter, a->iter);
      for (int it = 0; it < 10; it++) {
        ck_assert_msg(dl_solver_step(a, &la) == DL_OK, "%s", dl_diag_text());
        ck_assert_msg(dl_solver_step(b, &lb) == DL_OK, "%s", dl_diag_text());
        ck_assert_msg(fabs(la - lb) <= 1e-3 * fmax(1, fabs(la)),
                      "%s from %s, iter %lld: %.8g vs %.8g", t ? "adam" : "sgd",
                      from_gpu ? "gpu" : "cpu", (long long)a->iter, la, lb);
      }
      ck_assert_double_eq_tol(a->smoothed_loss, b->smoothed_loss, 1e-3 * fmax(1, a->smoothed_loss));
      dl_solver_free(a);
      dl_solver_free(b);
    }
  dl_test_rmdir(dir);
}
END_TEST

/* In GPU mode divergence is found when the loss is read, and reported at the
 * iteration where it began. */
START_TEST(gpu_divergence_is_reported) {
  REQUIRE_GPU("divergence_is_reported");
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s = make_solver("configs/two_layer/net.yaml", "base_lr: 10\nmax_iter: 100\n", dir, 1);
  dl_status st = DL_OK;
  for (int it = 0; it < 100 && !st; it++)
    st = dl_solver_step(s, NULL);
  ck_assert_int_eq(st, DL_OK);
  dl_diag_clear();
  double loss;
  ck_assert_int_eq(dl_solver_step(s, &loss), DL_EDIVERGED);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "training diverged at iteration"));
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(gpu_startup_line) {
  REQUIRE_GPU("startup_line");
  const char *line = dl_gpu_startup_line();
  printf("%s\n", line);
  ck_assert_ptr_nonnull(strstr(line, "GPU 0: "));
  ck_assert_ptr_nonnull(strstr(line, "cuDNN"));
  ck_assert_ptr_nonnull(strstr(line, "TF32"));
  /* a GPU that does not exist: one clear line */
  dl_diag_clear();
  ck_assert_int_eq(dl_gpu_require(64), DL_EDEVICE);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "GPU 64 requested"));
}
END_TEST

Suite *suite_gpu(void) {
  Suite *s = suite_create("gpu");
  TCase *tc = tcase_create("gpu");
  tcase_set_timeout(tc, 300); /* a CUDA context and cuDNN per test */
  tcase_add_test(tc, gpu_mem_round_trip);
  tcase_add_test(tc, gpu_mem_views);
  tcase_add_test(tc, gpu_gemm_all_transposes);
  tcase_add_test(tc, gpu_vector_ops);
  tcase_add_test(tc, gpu_large_counts);
  tcase_add_test(tc, gpu_parity_activations);
  tcase_add_test(tc, gpu_parity_inner_product);
  tcase_add_test(tc, gpu_parity_convolution);
  tcase_add_test(tc, gpu_parity_pooling);
  tcase_add_test(tc, gpu_parity_dropout);
  tcase_add_test(tc, gpu_parity_embed);
  tcase_add_test(tc, gpu_parity_lstm);
  tcase_add_test(tc, gpu_parity_views);
  tcase_add_test(tc, gpu_parity_eltwise);
  tcase_add_test(tc, gpu_parity_concat);
  tcase_add_test(tc, gpu_parity_losses);
  tcase_add_test(tc, gpu_parity_accuracy_split);
  tcase_add_test(tc, gpu_bad_label_is_an_error);
  tcase_add_loop_test(tc, gpu_fused_update_matches_host, 0, DL_SOLVER_COUNT);
  tcase_add_test(tc, gpu_training_follows_cpu);
  tcase_add_test(tc, gpu_snapshots_cross_devices);
  tcase_add_test(tc, gpu_divergence_is_reported);
  tcase_add_test(tc, gpu_startup_line);
  suite_add_tcase(s, tc);
  return s;
}

#else /* CPU-only build */

START_TEST(gpu_skipped) {
  ck_assert_int_eq(dl_gpu_count(), 0);
  printf("SKIP gpu suite: no CUDA GPU found (%s)\n", dl_gpu_build_info());
  fflush(stdout);
}
END_TEST

Suite *suite_gpu(void) {
  Suite *s = suite_create("gpu");
  TCase *tc = tcase_create("gpu");
  tcase_add_test(tc, gpu_skipped);
  suite_add_tcase(s, tc);
  return s;
}

#endif
