/* GPU math (GPU build only, core/math_gpu.cu): the twins of core/math.h on
 * device pointers, row-major throughout like the CPU code. Everything runs
 * on the GPU context's stream and returns at once, except the functions that
 * return a value to the host, which wait for it. Failures become the sticky
 * GPU error (dl_gpu_error). Counts are size_t: any blob size works. */
#ifndef DL_MATH_GPU_H
#define DL_MATH_GPU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha * op(A) * op(B) + beta * C, op(A) M x K, op(B) K x N (cuBLAS sgemm). */
void dl_gpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                 const float *B, float beta, float *C);
/* y = alpha * op(A) * x + beta * y, A is M x N. */
void dl_gpu_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x, float beta,
                 float *y);
void dl_gpu_axpy(size_t n, float alpha, const float *x, float *y); /* y += alpha x */
void dl_gpu_axpby(size_t n, float alpha, const float *x, float beta, float *y);
void dl_gpu_scal(size_t n, float alpha, float *x);
void dl_gpu_set(size_t n, float value, float *x);
void dl_gpu_copy(size_t n, const float *x, float *y);
/* `rows` rows of `width` floats from src (rows sp floats apart) to dst (dp
 * apart): one strided 2-D copy on the stream (Concat, Slice). */
dl_status dl_gpu_copy_rows(int rows, size_t width, const float *src, size_t sp, float *dst,
                           size_t dp);
/* Reductions in double, in a fixed order (the same bits on every run). */
double dl_gpu_dot(size_t n, const float *x, const float *y);
double dl_gpu_asum(size_t n, const float *x);
double dl_gpu_sumsq(size_t n, const float *x);
/* out[0] = beta * out[0] + scale * sum_i x_i y_i (y NULL: sum_i x_i), all on
 * the device: how losses are summed without a copy to the host. */
void dl_gpu_reduce_into(size_t n, const float *x, const float *y, float scale, float beta,
                        float *out);
/* Softmax over the middle axis of an outer x C x inner array, the maximum
 * subtracted first (as dl_softmax); y may alias x. */
void dl_gpu_softmax(int outer, int C, int inner, const float *x, float *y);
/* y (M x N) += b (N) on every row; db (N) += column sums of dy (M x N). */
void dl_gpu_add_row(int M, int N, const float *b, float *y);
void dl_gpu_col_sum_add(int M, int N, const float *dy, float *db);

#ifdef __cplusplus
}
#endif

#endif
