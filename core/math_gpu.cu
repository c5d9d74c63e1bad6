// GPU math (core/math_gpu.h): cuBLAS for the matrix products, small
// grid-stride kernels for the rest, two-stage reductions in double.
#include "core/gpu.h"
#include "core/math_gpu.h"

// cuBLAS is column-major, and a row-major M x N matrix is, to it, the N x M
// transpose. So C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in
// column-major: swap the operands and M with N, keep the transposition flags,
// and give as leading dimensions the row lengths of the row-major arrays.
extern "C" void dl_gpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float *A, const float *B, float beta, float *C) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { // no products: C = beta C (cuBLAS would reject a leading dimension of 0)
    dl_gpu_scal((size_t)M * N, beta, C);
    return;
  }
  int lda = trans_a ? M : K, ldb = trans_b ? K : N;
  cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  CHECK_CUBLAS(
      cublasSgemm(dl_gpu_cublas(), op_b, op_a, N, M, K, &alpha, B, ldb, A, lda, &beta, C, N));
}

// Row-major A (M x N) is column-major A^T (N x M, leading dimension N): the
// transposition flag flips.
extern "C" void dl_gpu_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x,
                            float beta, float *y) {
  if (M <= 0 || N <= 0) return;
  cublasOperation_t op = trans_a ? CUBLAS_OP_N : CUBLAS_OP_T;
  CHECK_CUBLAS(cublasSgemv(dl_gpu_cublas(), op, N, M, &alpha, A, N, x, 1, &beta, y, 1));
}

// ---- elementwise -------------------------------------------------------------

__global__ static void axpy_kernel(size_t n, float a, const float *x, float *y) {
  DL_GPU_LOOP(i, n) y[i] += a * x[i];
}

__global__ static void axpby_kernel(size_t n, float a, const float *x, float b, float *y) {
  DL_GPU_LOOP(i, n) y[i] = a * x[i] + b * y[i];
}

__global__ static void scal_kernel(size_t n, float a, float *x) { DL_GPU_LOOP(i, n) x[i] *= a; }

__global__ static void set_kernel(size_t n, float v, float *x) { DL_GPU_LOOP(i, n) x[i] = v; }

#define LAUNCH(kernel, n, ...)                                                                     \
  do {                                                                                             \
    if ((n) == 0) break;                                                                           \
    kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>((n), __VA_ARGS__);            \
    CHECK_LAUNCH();                                                                                \
  } while (0)

extern "C" void dl_gpu_axpy(size_t n, float alpha, const float *x, float *y) {
  LAUNCH(axpy_kernel, n, alpha, x, y);
}

extern "C" void dl_gpu_axpby(size_t n, float alpha, const float *x, float beta, float *y) {
  LAUNCH(axpby_kernel, n, alpha, x, beta, y);
}

extern "C" void dl_gpu_scal(size_t n, float alpha, float *x) { LAUNCH(scal_kernel, n, alpha, x); }

extern "C" void dl_gpu_set(size_t n, float value, float *x) { LAUNCH(set_kernel, n, value, x); }

extern "C" void dl_gpu_copy(size_t n, const float *x, float *y) {
  if (x == y || n == 0) return;
  CHECK_CUDA(cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, dl_gpu_stream()));
}

extern "C" dl_status dl_gpu_copy_rows(int rows, size_t width, const float *src, size_t sp,
                                      float *dst, size_t dp) {
  if (rows <= 0 || !width) return DL_OK;
  return CHECK_CUDA(cudaMemcpy2DAsync(dst, dp * sizeof(float), src, sp * sizeof(float),
                                      width * sizeof(float), (size_t)rows, cudaMemcpyDeviceToDevice,
                                      dl_gpu_stream()));
}

// y (M x N) += b on every row.
__global__ static void add_row_kernel(size_t n, int N, const float *b, float *y) {
  DL_GPU_LOOP(k, n) y[k] += b[k % (size_t)N];
}

extern "C" void dl_gpu_add_row(int M, int N, const float *b, float *y) {
  if (M <= 0 || N <= 0) return;
  LAUNCH(add_row_kernel, (size_t)M * N, N, b, y);
}

// db[j] += sum_i dy[i][j]: a block covers 32 columns (coalesced reads along
// a row), its 8 thread rows take every 8th row, then one row adds them up.
__global__ static void col_sum_add_kernel(int M, int N, const float *dy, float *db) {
  __shared__ float sh[8][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  float s = 0;
  if (j < N)
    for (int i = threadIdx.y; i < M; i += 8)
      s += dy[(size_t)i * N + j];
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && j < N) {
    float t = 0;
    for (int r = 0; r < 8; r++)
      t += sh[r][threadIdx.x];
    db[j] += t;
  }
}

extern "C" void dl_gpu_col_sum_add(int M, int N, const float *dy, float *db) {
  if (M <= 0 || N <= 0) return;
  col_sum_add_kernel<<<(N + 31) / 32, dim3(32, 8), 0, dl_gpu_stream()>>>(M, N, dy, db);
  CHECK_LAUNCH();
}

// ---- softmax -------------------------------------------------------------------

// inner == 1: a block per row (rows are contiguous), reductions in shared
// memory. Each thread rewrites only the elements it read, after the maximum
// is known, so y may alias x.
__global__ static void softmax_rows_kernel(int outer, int C, const float *x, float *y) {
  __shared__ float sh[DL_GPU_THREADS];
  for (int o = blockIdx.x; o < outer; o += gridDim.x) {
    const float *xr = x + (size_t)o * C;
    float *yr = y + (size_t)o * C;
    float m = -INFINITY;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
      m = fmaxf(m, xr[c]);
    m = dl_block_reduce(m, sh, dl_op_max());
    float sum = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      float e = expf(xr[c] - m);
      yr[c] = e;
      sum += e;
    }
    sum = dl_block_reduce(sum, sh, dl_op_sum());
    float inv = 1.0f / sum;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
      yr[c] *= inv;
  }
}

// inner > 1: a thread per (outer, inner) position walks its C values with
// stride inner; neighbouring threads read neighbouring floats.
__global__ static void softmax_cols_kernel(size_t positions, int C, int inner, const float *x,
                                           float *y) {
  DL_GPU_LOOP(p, positions) {
    size_t o = p / inner, i = p % inner;
    const float *xs = x + o * C * inner + i;
    float *ys = y + o * C * inner + i;
    float m = xs[0];
    for (int c = 1; c < C; c++)
      m = fmaxf(m, xs[(size_t)c * inner]);
    float sum = 0;
    for (int c = 0; c < C; c++) {
      float e = expf(xs[(size_t)c * inner] - m);
      ys[(size_t)c * inner] = e;
      sum += e;
    }
    float inv = 1.0f / sum;
    for (int c = 0; c < C; c++)
      ys[(size_t)c * inner] *= inv;
  }
}

extern "C" void dl_gpu_softmax(int outer, int C, int inner, const float *x, float *y) {
  if (outer <= 0 || C <= 0 || inner <= 0) return;
  if (inner == 1) {
    int threads = 32; // a power of two (dl_block_reduce), no wider than the row needs
    while (threads < C && threads < DL_GPU_THREADS)
      threads *= 2;
    int blocks = outer < DL_GPU_MAX_BLOCKS ? outer : DL_GPU_MAX_BLOCKS;
    softmax_rows_kernel<<<blocks, threads, 0, dl_gpu_stream()>>>(outer, C, x, y);
  } else {
    size_t positions = (size_t)outer * inner;
    softmax_cols_kernel<<<dl_gpu_blocks(positions), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
        positions, C, inner, x, y);
  }
  CHECK_LAUNCH();
}

// ---- reductions --------------------------------------------------------------

enum { R_SUM, R_DOT, R_ASUM, R_SUMSQ };

// Stage 1: each block sums a grid-stride slice in double into part[block].
template <int MODE>
__global__ static void reduce_partial(size_t n, const float *x, const float *y, double *part) {
  __shared__ double sh[DL_GPU_THREADS];
  double s = 0;
  DL_GPU_LOOP(i, n) {
    double v = x[i];
    s += MODE == R_SUM ? v : MODE == R_DOT ? v * y[i] : MODE == R_ASUM ? fabs(v) : v * v;
  }
  s = dl_block_reduce(s, sh, dl_op_sum());
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// Stage 2, one block: the partial sums in a fixed order. The total goes to
// part[DL_GPU_REDUCE_BLOCKS] (for the host) or, scaled, into out[0].
__global__ static void reduce_final(int nb, double *part, float scale, float beta, float *out) {
  __shared__ double sh[DL_GPU_THREADS];
  double s = 0;
  for (int b = threadIdx.x; b < nb; b += blockDim.x)
    s += part[b];
  s = dl_block_reduce(s, sh, dl_op_sum());
  if (threadIdx.x != 0) return;
  if (out)
    out[0] = (beta == 0 ? 0.0f : beta * out[0]) + (float)(scale * s);
  else
    part[DL_GPU_REDUCE_BLOCKS] = s;
}

static void reduce(int mode, size_t n, const float *x, const float *y, float scale, float beta,
                   float *out) {
  cudaStream_t st = dl_gpu_stream();
  double *part = dl_gpu_scratch();
  unsigned nb = dl_gpu_blocks(n);
  if (nb > DL_GPU_REDUCE_BLOCKS) nb = DL_GPU_REDUCE_BLOCKS;
  switch (mode) {
  case R_SUM: reduce_partial<R_SUM><<<nb, DL_GPU_THREADS, 0, st>>>(n, x, y, part); break;
  case R_DOT: reduce_partial<R_DOT><<<nb, DL_GPU_THREADS, 0, st>>>(n, x, y, part); break;
  case R_ASUM: reduce_partial<R_ASUM><<<nb, DL_GPU_THREADS, 0, st>>>(n, x, y, part); break;
  default: reduce_partial<R_SUMSQ><<<nb, DL_GPU_THREADS, 0, st>>>(n, x, y, part); break;
  }
  if (CHECK_LAUNCH()) return;
  reduce_final<<<1, DL_GPU_THREADS, 0, st>>>((int)nb, part, scale, beta, out);
  CHECK_LAUNCH();
}

static double reduce_to_host(int mode, size_t n, const float *x, const float *y) {
  double h = 0;
  reduce(mode, n, x, y, 1, 0, NULL);
  if (CHECK_CUDA(cudaMemcpyAsync(&h, dl_gpu_scratch() + DL_GPU_REDUCE_BLOCKS, sizeof h,
                                 cudaMemcpyDeviceToHost, dl_gpu_stream())))
    return 0;
  if (CHECK_CUDA(cudaStreamSynchronize(dl_gpu_stream()))) return 0;
  return h;
}

extern "C" double dl_gpu_dot(size_t n, const float *x, const float *y) {
  return reduce_to_host(R_DOT, n, x, y);
}

extern "C" double dl_gpu_asum(size_t n, const float *x) {
  return reduce_to_host(R_ASUM, n, x, NULL);
}

extern "C" double dl_gpu_sumsq(size_t n, const float *x) {
  return reduce_to_host(R_SUMSQ, n, x, NULL);
}

extern "C" void dl_gpu_reduce_into(size_t n, const float *x, const float *y, float scale,
                                   float beta, float *out) {
  reduce(y ? R_DOT : R_SUM, n, x, y, scale, beta, out);
}
