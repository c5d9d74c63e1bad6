/* CPU math backend: OpenBLAS plus simple loops. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "core/math.h"

void dl_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             const float *B, float beta, float *C) {
  int lda = trans_a ? M : K, ldb = trans_b ? K : N;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
}

void dl_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x, float beta,
             float *y) {
  cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, M, N, alpha, A, N, x, 1, beta,
              y, 1);
}

void dl_axpy(size_t n, float alpha, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void dl_axpby(size_t n, float alpha, const float *x, float beta, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];
}

void dl_scal(size_t n, float alpha, float *x) {
  for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

void dl_set(size_t n, float value, float *x) {
  for (size_t i = 0; i < n; i++) x[i] = value;
}

void dl_copy(size_t n, const float *x, float *y) {
  if (x != y)
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}

double dl_dot(size_t n, const float *x, const float *y) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * y[i];
  return s;
}

double dl_asum(size_t n, const float *x) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += fabs((double)x[i]);
  return s;
}

double dl_sumsq(size_t n, const float *x) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

int dl_all_finite(size_t n, const float *x) {
  /* Sum of x*0 is NaN iff some element is NaN or infinite; vectorizes well. */
  float acc = 0;
  for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
  return acc == 0.0f;
}

static int threads_now = 0;

void dl_set_threads(int n) {
  if (n <= 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (int)c : 1;
  }
  threads_now = n;
  openblas_set_num_threads(n);
}

int dl_get_threads(void) { return threads_now > 0 ? threads_now : openblas_get_num_threads(); }

const char *dl_blas_info(void) {
  static char buf[256];
  snprintf(buf, sizeof buf, "OpenBLAS (%s)", openblas_get_config());
  return buf;
}

void dl_softmax(int outer, int C, int inner, const float *x, float *y) {
  for (int o = 0; o < outer; o++)
    for (int i = 0; i < inner; i++) {
      const float *xs = x + (size_t)o * C * inner + i; /* (C), stride inner */
      float *ys = y + (size_t)o * C * inner + i;
      float mx = xs[0];
      for (int c = 1; c < C; c++) mx = fmaxf(mx, xs[(size_t)c * inner]);
      float sum = 0;
      for (int c = 0; c < C; c++) sum += ys[(size_t)c * inner] = expf(xs[(size_t)c * inner] - mx);
      float inv = 1.0f / sum;
      for (int c = 0; c < C; c++) ys[(size_t)c * inner] *= inv;
    }
}
