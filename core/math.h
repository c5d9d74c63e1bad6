/* CPU math: BLAS for the heavy work, plain loops the compiler vectorizes for
 * the rest. Row-major throughout. */
#ifndef DL_MATH_H
#define DL_MATH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha * op(A) * op(B) + beta * C, with op(A) M x K, op(B) K x N. */
void dl_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             const float *B, float beta, float *C);
/* The same with leading dimensions, on the calling thread only (for work that
 * is already cut between the threads, like tiles of a weight gradient). */
void dl_gemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* y = alpha * op(A) * x + beta * y, A is M x N. */
void dl_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x, float beta,
             float *y);
void dl_axpy(size_t n, float alpha, const float *x, float *y); /* y += alpha x */
void dl_axpby(size_t n, float alpha, const float *x, float beta, float *y);
void dl_scal(size_t n, float alpha, float *x);
void dl_set(size_t n, float value, float *x);
void dl_copy(size_t n, const float *x, float *y);
double dl_dot(size_t n, const float *x, const float *y);
double dl_asum(size_t n, const float *x);
double dl_sumsq(size_t n, const float *x);
int dl_all_finite(size_t n, const float *x);

/* Softmax over the middle axis of an outer x C x inner array; numerically
 * stable (the maximum is subtracted first). y may alias x. */
void dl_softmax(int outer, int C, int inner, const float *x, float *y);
/* For each of `outer` contiguous rows of C: the max mx and the sum of
 * exp(x - mx), with dl_softmax's arithmetic; then a row's softmax times scale
 * from them, the same bits as dl_softmax's times scale. */
void dl_softmax_stats(int outer, int C, const float *x, float *mx, float *sum);
void dl_softmax_row_scaled(int C, const float *x, float mx, float sum, float scale, float *y);

/* y = sigmoid(x), y = tanh(x) elementwise (vectorized, threaded); y may alias x. */
void dl_sigmoid(size_t n, const float *x, float *y);
void dl_tanh(size_t n, const float *x, float *y);
/* dx = dy * y (1 - y) and dx = dy * (1 - y^2) from the outputs y; dx may alias dy. */
void dl_sigmoid_grad(size_t n, const float *y, const float *dy, float *dx);
void dl_tanh_grad(size_t n, const float *y, const float *dy, float *dx);

/* y = x > 0 ? x : slope x; dx = y > 0 ? dy : slope dy. Branch-free (signs of
 * activations are random, so a branch mispredicts half the time), vectorized,
 * threaded; y may alias x and dx may alias dy. */
void dl_relu(size_t n, float slope, const float *x, float *y);
void dl_relu_grad(size_t n, float slope, const float *y, const float *dy, float *dx);

/* y (M x N) += 1 b^T: b added to every row; db (N) += column sums of dy (M x N).
 * Threaded (by rows, by columns), vectorized. */
void dl_add_bias_rows(int M, int N, const float *b, float *y);
void dl_sum_rows(int M, int N, const float *dy, float *db);

/* One place sets the thread count, for OpenBLAS and our own loops. */
void dl_set_threads(int n);
int dl_get_threads(void);
const char *dl_blas_info(void);

#ifdef __cplusplus
}
#endif

#endif
