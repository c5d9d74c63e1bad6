/* CPU math backend: OpenBLAS plus simple loops. */
#include <cblas.h>
#ifdef DL_ONEDNN
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/parallel.h"
#include "core/vmath.h"

#include "core/math.h"

#ifdef DL_ONEDNN
/* Shapes where oneDNN's matmul primitive (brgemm kernels) beats its sgemm,
 * measured on one thread here (Zen 5):
 * - C (M x N) = A B with a few columns (N <= 128) and many rows: InnerProduct's
 *   forward y^T = W x^T with a batch of up to 128 (FCN-S, AlexNet-S's fully
 *   connected layers). brgemm reads A in place, where sgemm packs it first
 *   (A is the big weight matrix here): FCN-S's output layer, 26752 x 2048
 *   times 2048 x 64, 226 against 181 GFLOP/s; AlexNet-S's fc7 (16 columns)
 *   149 against 116.
 * - C = A B^T with few rows (M <= 256) and a long reduction (K >= 1024): a
 *   native convolution's weight gradient dY col^T, a sum over the batch's
 *   positions. LeNet's conv2, 50 x 500 x 4096, 202 against 146 GFLOP/s (its
 *   backward at 1 thread 3.24-3.49 -> 2.86-3.08 ms); 64 x 576 x 1024 229
 *   against 168; 128 x 1152 x 1024 246 against 206; 20 x 25 x 18432 118
 *   against 36. With more rows sgemm is as fast or faster (1024 x 4096 x
 *   2048: 237 against 241; 4096 x 10000 x 256: 229 against 259), and so with
 *   a short reduction added into C: the LSTM's per-step 128 x 1024 x 256
 *   (beta 1) took its forward from 21 to 23.5 ms.
 * alpha is 1; beta 0, or 1 through a sum post-op (the weight gradient adds
 * into the diff). Primitives are made once per shape per thread (each pool
 * thread runs its own slice: see gemm_ld) and kept; where oneDNN cannot make
 * one, sgemm does the product. */
typedef struct matmul_prim {
  int tb, M, N, K, lda, ldb, ldc, accumulate;
  dnnl_primitive_t prim; /* NULL: oneDNN refused this shape */
  dnnl_memory_t a, b, c;
  struct matmul_prim *next;
} matmul_prim;

static dnnl_engine_t matmul_engine;
static pthread_once_t matmul_engine_once = PTHREAD_ONCE_INIT;
static _Thread_local dnnl_stream_t matmul_stream;
static _Thread_local matmul_prim *matmul_prims;

static void matmul_engine_create(void) {
  if (dnnl_engine_create(&matmul_engine, dnnl_cpu, 0) != dnnl_success) matmul_engine = NULL;
}

/* For A B^T, brgemm wants A, B and C dense (lda = ldb = K, ldc = N); with
 * other strides oneDNN runs it through its sgemm, no faster. */
static int matmul_shape(int ta, int tb, int M, int N, int K, float alpha, float beta, int lda,
                        int ldb, int ldc) {
  if (ta || alpha != 1.0f || (beta != 0.0f && beta != 1.0f)) return 0;
  if (!tb) return beta == 0.0f && N <= 128 && N % 16 == 0 && M >= 256 && K >= 64;
  return M <= 256 && K >= 1024 && 2.0 * M * N * K >= 1e5 && /* tiny: the call costs more */
         lda == K && ldb == K && ldc == N;
}

/* B (K x N) is stored N x K (ldb) when tb: its element (k, n) at n * ldb + k. */
static dnnl_primitive_t matmul_make(matmul_prim *q) {
  dnnl_memory_desc_t a, b, c;
  dnnl_matmul_desc_t d;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_dims_t b_strides = {q->ldb, 1};
  if (q->tb) b_strides[0] = 1, b_strides[1] = q->ldb;
  int ok = dnnl_memory_desc_init_by_strides(&a, 2, (dnnl_dims_t){q->M, q->K}, dnnl_f32,
                                            (dnnl_dims_t){q->lda, 1}) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&b, 2, (dnnl_dims_t){q->K, q->N}, dnnl_f32,
                                            b_strides) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&c, 2, (dnnl_dims_t){q->M, q->N}, dnnl_f32,
                                            (dnnl_dims_t){q->ldc, 1}) == dnnl_success &&
           dnnl_matmul_desc_init(&d, &a, &b, NULL, &c) == dnnl_success &&
           dnnl_primitive_attr_create(&attr) == dnnl_success;
  if (ok && q->accumulate) /* C += A B */
    ok = dnnl_post_ops_create(&ops) == dnnl_success &&
         dnnl_post_ops_append_sum(ops, 1.0f) == dnnl_success &&
         dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
  ok = ok && dnnl_primitive_desc_create(&pd, &d, attr, matmul_engine, NULL) == dnnl_success &&
       dnnl_primitive_create(&q->prim, pd) == dnnl_success &&
       dnnl_memory_create(&q->a, &a, matmul_engine, DNNL_MEMORY_NONE) == dnnl_success &&
       dnnl_memory_create(&q->b, &b, matmul_engine, DNNL_MEMORY_NONE) == dnnl_success &&
       dnnl_memory_create(&q->c, &c, matmul_engine, DNNL_MEMORY_NONE) == dnnl_success;
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (ops) dnnl_post_ops_destroy(ops);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (!ok && q->prim) dnnl_primitive_destroy(q->prim), q->prim = NULL;
  return q->prim;
}

/* This thread's primitive for the shape, made on first use; NULL if oneDNN
 * cannot do it (the caller falls back to sgemm). */
static matmul_prim *matmul_find(int tb, int M, int N, int K, int lda, int ldb, int ldc,
                                int accumulate) {
  for (matmul_prim *q = matmul_prims; q; q = q->next)
    if (q->tb == tb && q->M == M && q->N == N && q->K == K && q->lda == lda && q->ldb == ldb &&
        q->ldc == ldc && q->accumulate == accumulate)
      return q->prim ? q : NULL;
  pthread_once(&matmul_engine_once, matmul_engine_create);
  if (!matmul_engine) return NULL;
  if (!matmul_stream &&
      dnnl_stream_create(&matmul_stream, matmul_engine, dnnl_stream_default_flags) != dnnl_success)
    return NULL;
  matmul_prim *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  *q = (matmul_prim){tb, M, N, K, lda, ldb, ldc, accumulate, NULL, NULL, NULL, NULL, matmul_prims};
  matmul_prims = q; /* kept also when refused, so the refusal is not retried */
  return matmul_make(q) ? q : NULL;
}

/* C = A op(B) (+ C when beta is 1) by the matmul primitive; 0 if it cannot. */
static int matmul_gemm(int tb, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc) {
  matmul_prim *q = matmul_find(tb, M, N, K, lda, ldb, ldc, beta != 0.0f);
  if (!q) return 0;
  dnnl_memory_set_data_handle(q->a, (void *)A);
  dnnl_memory_set_data_handle(q->b, (void *)B);
  dnnl_memory_set_data_handle(q->c, C);
  dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, q->a}, {DNNL_ARG_WEIGHTS, q->b}, {DNNL_ARG_DST, q->c}};
  return dnnl_primitive_execute(q->prim, matmul_stream, 3, args) == dnnl_success &&
         dnnl_stream_wait(matmul_stream) == dnnl_success;
}

/* With oneDNN built in, its sgemm does the GEMMs: Debian's OpenBLAS 0.3.21
 * does not know newer CPUs (Zen 5 here) and falls back to its AVX2 kernels,
 * while oneDNN picks AVX-512 at run time (about twice the rate here). Each
 * pool thread calls it on its own slice with an OpenMP team of one, so
 * libgomp never starts threads of its own (see layers/conv_onednn.c). */
static void gemm_ld(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
  static _Thread_local int team_of_one;
  if (!team_of_one) omp_set_num_threads(1), team_of_one = 1;
  if (matmul_shape(ta, tb, M, N, K, alpha, beta, lda, ldb, ldc) &&
      matmul_gemm(tb, M, N, K, A, lda, B, ldb, beta, C, ldc))
    return;
  /* A narrow product (N <= 512) of two plain matrices with many rows runs
   * 5-12% faster in bands of 512 rows than whole in oneDNN 2.6's sgemm: the
   * LSTM projection's input gradient, 4096 x 256 from K = 10000, 100 -> 89 ms
   * on one thread; 4096 x 256 x 4096 42 -> 39. Wider outputs gain nothing
   * or lose (4096 x 1024 x 4096: 144 -> 153), so they stay whole. */
  const int band = 512;
  if (!ta && !tb && N <= 512 && M > band) {
    for (int m = 0; m < M; m += band)
      dnnl_sgemm('N', 'N', M - m < band ? M - m : band, N, K, alpha, A + (size_t)m * lda, lda, B,
                 ldb, beta, C + (size_t)m * ldc, ldc);
    return;
  }
  dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#else
static void gemm_ld(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

typedef struct {
  int ta, tb, M, N, K;
  float alpha, beta;
  const float *A, *B;
  float *C;
  char split;     /* 'm', 'n' or 'k'; 'r': along M in rows of 1 (see dense_rows_fast) */
  float *partial; /* split k: (nparts - 1) x M x N sums of the other parts */
} gemm_job;

/* [lo, hi) of part p when n items are cut in nparts, in multiples of `align`. */
static void part_range(int n, int p, int nparts, int align, int *lo, int *hi) {
  int chunks = (n + align - 1) / align;
  *lo = (int)((long)chunks * p / nparts) * align;
  *hi = (int)((long)chunks * (p + 1) / nparts) * align;
  if (*hi > n) *hi = n;
  if (*lo > n) *lo = n;
}

static void gemm_part(void *arg, int p, int nparts) {
  const gemm_job *j = arg;
  int lda = j->ta ? j->M : j->K, ldb = j->tb ? j->K : j->N, lo, hi;
  if (j->split == 'm' || j->split == 'r') {
    part_range(j->M, p, nparts, j->split == 'r' ? 1 : 16, &lo, &hi);
    if (hi > lo)
      gemm_ld(j->ta, j->tb, hi - lo, j->N, j->K, j->alpha,
              j->ta ? j->A + lo : j->A + (size_t)lo * lda, lda, j->B, ldb, j->beta,
              j->C + (size_t)lo * j->N, j->N);
  } else if (j->split == 'n') {
    part_range(j->N, p, nparts, 16, &lo, &hi);
    if (hi > lo)
      gemm_ld(j->ta, j->tb, j->M, hi - lo, j->K, j->alpha, j->A, lda,
              j->tb ? j->B + (size_t)lo * ldb : j->B + lo, ldb, j->beta, j->C + lo, j->N);
  } else { /* k: part 0 writes C (with beta), the others their own partial sums */
    part_range(j->K, p, nparts, 64, &lo, &hi);
    float *out = p == 0 ? j->C : j->partial + (size_t)(p - 1) * j->M * j->N;
    if (hi > lo)
      gemm_ld(j->ta, j->tb, j->M, j->N, hi - lo, j->alpha,
              j->ta ? j->A + (size_t)lo * lda : j->A + lo, lda,
              j->tb ? j->B + lo : j->B + (size_t)lo * ldb, ldb, p == 0 ? j->beta : 0.0f, out, j->N);
    else if (p > 0)
      dl_set((size_t)j->M * j->N, 0, out);
    else
      dl_scal((size_t)j->M * j->N, j->beta, out);
  }
}

void dl_gemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  gemm_ld(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Scratch for split-k partial sums; grows to the largest need, then stays. */
static float *partial_buffer(size_t floats) {
  static float *buf;
  static size_t cap;
  if (floats > cap) {
    free(buf);
    buf = malloc(floats * sizeof *buf);
    cap = buf ? floats : 0;
  }
  return buf;
}

/* Whether each thread's rows (a split along M, which keeps A, B and C
 * dense) go to the matmul primitive: then that split, in single rows for
 * balance, beats the K split, whose column ranges of A and B are strided and
 * go to sgemm. LeNet's conv2 backward at 2 threads 1.53-1.67 -> 1.41-1.52 ms
 * (25 of its 50 rows a thread). */
static int dense_rows_fast(int ta, int tb, int M, int N, int K, float alpha, float beta, int nt) {
#ifdef DL_ONEDNN
  return M >= 8 * nt && matmul_shape(ta, tb, M / nt, N, K, alpha, beta, K, K, N);
#else
  return (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)beta, (void)nt, 0;
#endif
}

/* Cuts one GEMM across the pool (OpenBLAS itself runs single-threaded): along
 * M or N when the output is large, along K (then summing the parts) when a
 * small output comes from a long reduction, like a conv weight gradient over
 * a whole batch's columns. Small products run on the caller alone. */
void dl_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             const float *B, float beta, float *C) {
  int nt = dl_parallel_threads();
  double flops = 2.0 * M * N * K;
  gemm_job j = {trans_a, trans_b, M, N, K, alpha, beta, A, B, C, 0, NULL};
  if (nt > 1 && flops >= 4e6) {
    if (dense_rows_fast(trans_a, trans_b, M, N, K, alpha, beta, nt))
      j.split = 'r';
    else if ((size_t)M * N <= ((size_t)1 << 16) && K >= 8 * (M > N ? M : N) && K >= 64 * nt)
      j.split = 'k';
    else if (M >= N && M >= 16 * nt)
      j.split = 'm';
    else if (N >= 16 * nt)
      j.split = 'n';
    else if (M >= 16 * nt)
      j.split = 'm';
  }
  if (j.split == 'k' && !(j.partial = partial_buffer((size_t)(nt - 1) * M * N))) j.split = 0;
  if (!j.split) {
    gemm_ld(trans_a, trans_b, M, N, K, alpha, A, trans_a ? M : K, B, trans_b ? K : N, beta, C, N);
    return;
  }
  dl_parallel_run(nt, gemm_part, &j);
  if (j.split == 'k')
    for (int p = 1; p < nt; p++)
      dl_axpy((size_t)M * N, 1.0f, j.partial + (size_t)(p - 1) * M * N, C);
}

void dl_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x, float beta,
             float *y) {
  cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, M, N, alpha, A, N, x, 1, beta, y,
              1);
}

void dl_axpy(size_t n, float alpha, const float *x, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] += alpha * x[i];
}

void dl_axpby(size_t n, float alpha, const float *x, float beta, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = alpha * x[i] + beta * y[i];
}

void dl_scal(size_t n, float alpha, float *x) {
  for (size_t i = 0; i < n; i++)
    x[i] *= alpha;
}

void dl_set(size_t n, float value, float *x) {
  for (size_t i = 0; i < n; i++)
    x[i] = value;
}

void dl_copy(size_t n, const float *x, float *y) {
  if (x != y)
    for (size_t i = 0; i < n; i++)
      y[i] = x[i];
}

double dl_dot(size_t n, const float *x, const float *y) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += (double)x[i] * y[i];
  return s;
}

double dl_asum(size_t n, const float *x) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += fabs((double)x[i]);
  return s;
}

double dl_sumsq(size_t n, const float *x) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += (double)x[i] * x[i];
  return s;
}

DL_VCLONES int dl_all_finite(size_t n, const float *x) {
  /* NaN and infinity are the floats whose exponent bits are all ones. An
   * integer OR-reduction vectorizes (a float sum would be a serial chain). */
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, x + i, sizeof bits); /* no aliasing through a cast */
    bad |= (bits & 0x7f800000u) == 0x7f800000u;
  }
  return !bad;
}

static int threads_now = 0;

void dl_set_threads(int n) {
  if (n <= 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (int)c : 1;
  }
  threads_now = n;
  /* One runtime: our pool splits the GEMMs; OpenBLAS stays single-threaded. */
  openblas_set_num_threads(1);
  dl_parallel_init(n);
}

int dl_get_threads(void) { return threads_now > 0 ? threads_now : 1; }

const char *dl_blas_info(void) {
  static char buf[256];
  snprintf(buf, sizeof buf, "OpenBLAS (%s)", openblas_get_config());
  return buf;
}

/* The max of one contiguous row, over blocks of DL_VBLOCK with separate
 * running maxima (lanes), so that the loop vectorizes. max_lanes_start,
 * max_lanes_over and max_lanes_end are its steps: max_lanes_over can be
 * called on consecutive stretches, with the same result. */
DL_VINLINE void max_lanes_start(const float *restrict x, float *m) {
  for (int q = 0; q < DL_VBLOCK; q++)
    m[q] = x[0];
}

/* Advances the lanes over x[lo, hi), whole blocks of DL_VBLOCK. */
DL_VINLINE void max_lanes_over(const float *restrict x, int lo, int hi, float *m) {
  for (int i = lo; i < hi; i += DL_VBLOCK)
    for (int q = 0; q < DL_VBLOCK; q++)
      m[q] = dl_vpick(x[i + q] > m[q], x[i + q], m[q]);
}

/* The lanes' max, with the columns past the last whole block. */
DL_VINLINE float max_lanes_end(int C, const float *restrict x, const float *m) {
  float mx = m[0];
  for (int q = 1; q < DL_VBLOCK; q++)
    mx = m[q] > mx ? m[q] : mx;
  for (int i = C / DL_VBLOCK * DL_VBLOCK; i < C; i++)
    mx = x[i] > mx ? x[i] : mx;
  return mx;
}

DL_VINLINE float row_max(int C, const float *restrict x) {
  float m[DL_VBLOCK];
  max_lanes_start(x, m);
  max_lanes_over(x, 0, C / DL_VBLOCK * DL_VBLOCK, m);
  return max_lanes_end(C, x, m);
}

/* The sum of exp(x - mx) over a row with nothing stored, its exps in blocks
 * (dl_vexp_block) and added in DL_VBLOCK running sums. When `next` is not
 * NULL, the max lanes of the next row (`next_max`) are advanced over the same
 * columns block by block: that row then streams in from memory while this
 * one's exps are computed, instead of in a pass of its own. */
DL_VINLINE float row_exp_sum_pipelined(int C, const float *restrict x, float mx,
                                       const float *restrict next, float *next_max) {
  float acc[DL_VBLOCK] = {0}, sum = 0, t[DL_VEXP_BLOCK], e[DL_VEXP_BLOCK];
  int nb = C / DL_VBLOCK * DL_VBLOCK, nbb = C / DL_VEXP_BLOCK * DL_VEXP_BLOCK;
  for (int i = 0; i < nbb; i += DL_VEXP_BLOCK) {
    for (int k = 0; k < DL_VEXP_BLOCK; k++)
      t[k] = x[i + k] - mx;
    dl_vexp_block(t, e);
    for (int k = 0; k < DL_VEXP_BLOCK; k += DL_VBLOCK)
      for (int q = 0; q < DL_VBLOCK; q++)
        acc[q] += e[k + q];
    if (next) max_lanes_over(next, i, i + DL_VEXP_BLOCK, next_max);
  }
  if (next) max_lanes_over(next, nbb, nb, next_max);
  for (int i = nbb; i < nb; i += DL_VBLOCK)
    for (int q = 0; q < DL_VBLOCK; q++)
      acc[q] += dl_vexp(x[i + q] - mx);
  for (int i = nb; i < C; i++)
    sum += dl_vexp(x[i] - mx);
  for (int q = 0; q < DL_VBLOCK; q++)
    sum += acc[q];
  return sum;
}

/* The sum of exp(x - mx) over a row, in blocks of DL_VBLOCK with separate
 * running sums; each exp is also stored in y. */
DL_VINLINE float row_exp_sum(int C, const float *restrict x, float mx, float *restrict y) {
  float acc[DL_VBLOCK] = {0}, sum = 0;
  int nb = C / DL_VBLOCK * DL_VBLOCK;
  for (int i = 0; i < nb; i += DL_VBLOCK)
    for (int q = 0; q < DL_VBLOCK; q++)
      acc[q] += y[i + q] = dl_vexp(x[i + q] - mx);
  for (int i = nb; i < C; i++)
    sum += y[i] = dl_vexp(x[i] - mx);
  for (int q = 0; q < DL_VBLOCK; q++)
    sum += acc[q];
  return sum;
}

/* One contiguous row: y = softmax(x). */
DL_VCLONES static void softmax_row(int C, const float *restrict x, float *restrict y) {
  float sum = row_exp_sum(C, x, row_max(C, x), y);
  float inv = 1.0f / sum;
  for (int i = 0; i < C; i++)
    y[i] *= inv;
}

/* softmax_row's max and sum without the exps stored, and from them the
 * softmax again times `scale`: a softmax loss needs no stored probabilities
 * (dl_softmax_stats, dl_softmax_row_scaled in core/math.h). With nothing
 * stored these are bound by the exps, so they take them in blocks; the stats
 * of rows [lo, hi) find each row's max while the row before it is summed
 * (row_exp_sum_pipelined): the LSTM's loss forward, 4096 rows of 10000,
 * 15.3 -> 13.9 ms on one thread. The same bits as max, then sum, row by row. */
DL_VCLONES static void softmax_stats_range(int C, const float *restrict x, int lo, int hi,
                                           float *mx, float *sum) {
  float next_max[DL_VBLOCK];
  if (lo < hi) mx[lo] = row_max(C, x + (size_t)lo * C);
  for (int o = lo; o < hi; o++) {
    const float *row = x + (size_t)o * C, *next = o + 1 < hi ? row + C : NULL;
    if (next) max_lanes_start(next, next_max);
    sum[o] = row_exp_sum_pipelined(C, row, mx[o], next, next_max);
    if (next) mx[o + 1] = max_lanes_end(C, next, next_max);
  }
}

DL_VCLONES void dl_softmax_row_scaled(int C, const float *restrict x, float mx, float sum,
                                      float scale, float *restrict y) {
  float inv = 1.0f / sum, t[DL_VEXP_BLOCK];
  int nbb = C / DL_VEXP_BLOCK * DL_VEXP_BLOCK;
  for (int i = 0; i < nbb; i += DL_VEXP_BLOCK) {
    for (int k = 0; k < DL_VEXP_BLOCK; k++)
      t[k] = x[i + k] - mx;
    dl_vexp_block(t, y + i);
    for (int k = 0; k < DL_VEXP_BLOCK; k++)
      y[i + k] = y[i + k] * inv * scale;
  }
  for (int i = nbb; i < C; i++)
    y[i] = dl_vexp(x[i] - mx) * inv * scale;
}

typedef struct {
  int C;
  const float *x;
  float *mx, *sum;
} stats_job;

static void stats_rows(void *arg, int lo, int hi) {
  const stats_job *j = arg;
  softmax_stats_range(j->C, j->x, lo, hi, j->mx, j->sum);
}

void dl_softmax_stats(int outer, int C, const float *x, float *mx, float *sum) {
  stats_job j = {C, x, mx, sum};
  dl_parallel_for(outer, (int)(65536 / ((size_t)C + 1)) + 1, stats_rows, &j);
}

typedef struct {
  int C, inner;
  const float *x;
  float *y;
} softmax_job;

static void softmax_rows(void *arg, int lo, int hi) {
  const softmax_job *j = arg;
  size_t plane = (size_t)j->C * j->inner;
  if (j->inner == 1) {
    for (int o = lo; o < hi; o++)
      softmax_row(j->C, j->x + o * plane, j->y + o * plane);
    return;
  }
  for (int o = lo; o < hi; o++)
    for (int i = 0; i < j->inner; i++) {
      const float *xs = j->x + o * plane + i; /* (C), stride inner */
      float *ys = j->y + o * plane + i;
      float mx = xs[0], sum = 0;
      for (int c = 1; c < j->C; c++)
        mx = fmaxf(mx, xs[(size_t)c * j->inner]);
      for (int c = 0; c < j->C; c++)
        sum += ys[(size_t)c * j->inner] = dl_vexp(xs[(size_t)c * j->inner] - mx);
      float inv = 1.0f / sum;
      for (int c = 0; c < j->C; c++)
        ys[(size_t)c * j->inner] *= inv;
    }
}

void dl_softmax(int outer, int C, int inner, const float *x, float *y) {
  softmax_job j = {C, inner, x, y};
  int per = (int)(65536 / ((size_t)C * inner + 1)) + 1; /* rows worth a thread's wake-up */
  dl_parallel_for(outer, per, softmax_rows, &j);
}

/* exp only sees -|x|, so nothing overflows, and far below zero y keeps a tiny
 * positive value (down to exp(-87)) instead of 1 / inf. */
DL_VINLINE float neg_abs(float x) { return dl_vpick(x < 0, x, -x); }

/* The sigmoid of x from e = exp(-|x|). */
DL_VINLINE float sigmoid_of(float x, float e) {
  float r = 1.0f / (1.0f + e);
  return dl_vpick(x < 0, e * r, r);
}

DL_VINLINE float stable_sigmoid(float x) { return sigmoid_of(x, dl_vexp(neg_abs(x))); }

/* Sigmoid over n floats, a DL_VEXP_BLOCK at a time (see dl_vexp_block), the
 * same bits as stable_sigmoid on each; y may alias x. */
DL_VCLONES static void sigmoid_span(size_t n, const float *x, float *y) {
  size_t i = 0;
  for (; i + DL_VEXP_BLOCK <= n; i += DL_VEXP_BLOCK) {
    float v[DL_VEXP_BLOCK], t[DL_VEXP_BLOCK], e[DL_VEXP_BLOCK];
    memcpy(v, x + i, sizeof v);
    DL_UNROLLED for (int q = 0; q < DL_VEXP_BLOCK; q++) t[q] = neg_abs(v[q]);
    dl_vexp_block(t, e);
    DL_UNROLLED for (int q = 0; q < DL_VEXP_BLOCK; q++) t[q] = sigmoid_of(v[q], e[q]);
    memcpy(y + i, t, sizeof t);
  }
  for (; i < n; i++)
    y[i] = stable_sigmoid(x[i]);
}

/* The elementwise kernels, one place: out = f(a, b) over n floats. Blocks of
 * DL_VBLOCK through local copies (out may alias a or b, and GCC -O2
 * vectorizes only fixed trip counts; fixed-size copies are inlined), cut in
 * 16 KiB chunks between the threads, compiled per vector width. */
enum { EW_SIGMOID, EW_TANH, EW_SIGMOID_GRAD, EW_TANH_GRAD, EW_RELU }; /* sigmoid: sigmoid_span */

typedef struct {
  int op;
  float slope;        /* EW_RELU */
  const float *a, *b; /* sigmoid, tanh: x, x; grads: y, dy; relu: sign source, values */
  float *out;
  size_t n;
} ew_job;

DL_VINLINE float ew_one(int op, float slope, float a, float b) {
  switch (op) {
  case EW_TANH: return dl_vtanh(a);
  case EW_SIGMOID_GRAD: return b * a * (1.0f - a);
  case EW_TANH_GRAD: return b * (1.0f - a * a);
  default: return dl_vpick(a > 0, b, slope * b);
  }
}

#define EW_BLOCK_LOOP(OP)                                                                          \
  for (int q = 0; q < DL_VBLOCK; q++)                                                              \
  o[q] = ew_one(OP, slope, x[q], y[q])

DL_VCLONES static void ew_span(int op, float slope, size_t n, const float *a, const float *b,
                               float *out) {
  size_t i = 0;
  for (; i + DL_VBLOCK <= n; i += DL_VBLOCK) {
    float x[DL_VBLOCK], y[DL_VBLOCK], o[DL_VBLOCK];
    memcpy(x, a + i, sizeof x);
    memcpy(y, b + i, sizeof y);
    switch (op) { /* constant op inside each loop, so each one vectorizes */
    case EW_TANH: EW_BLOCK_LOOP(EW_TANH); break;
    case EW_SIGMOID_GRAD: EW_BLOCK_LOOP(EW_SIGMOID_GRAD); break;
    case EW_TANH_GRAD: EW_BLOCK_LOOP(EW_TANH_GRAD); break;
    default: EW_BLOCK_LOOP(EW_RELU); break;
    }
    memcpy(out + i, o, sizeof o);
  }
  for (; i < n; i++)
    out[i] = ew_one(op, slope, a[i], b[i]);
}

static void ew_range(void *arg, int lo, int hi) {
  const ew_job *j = arg;
  size_t s0 = (size_t)lo * 4096, s1 = (size_t)hi * 4096;
  if (s1 > j->n) s1 = j->n;
  if (j->op == EW_SIGMOID)
    sigmoid_span(s1 - s0, j->a + s0, j->out + s0);
  else
    ew_span(j->op, j->slope, s1 - s0, j->a + s0, j->b + s0, j->out + s0);
}

static void ew_run(int op, float slope, size_t n, const float *a, const float *b, float *out) {
  ew_job j = {op, slope, a, b, out, n};
  dl_parallel_for((int)((n + 4095) / 4096), 8, ew_range, &j);
}

void dl_sigmoid(size_t n, const float *x, float *y) { ew_run(EW_SIGMOID, 0, n, x, x, y); }
void dl_tanh(size_t n, const float *x, float *y) { ew_run(EW_TANH, 0, n, x, x, y); }
void dl_sigmoid_grad(size_t n, const float *y, const float *dy, float *dx) {
  ew_run(EW_SIGMOID_GRAD, 0, n, y, dy, dx);
}
void dl_tanh_grad(size_t n, const float *y, const float *dy, float *dx) {
  ew_run(EW_TANH_GRAD, 0, n, y, dy, dx);
}
void dl_relu(size_t n, float slope, const float *x, float *y) {
  ew_run(EW_RELU, slope, n, x, x, y);
}
void dl_relu_grad(size_t n, float slope, const float *y, const float *dy, float *dx) {
  ew_run(EW_RELU, slope, n, y, dy, dx);
}

typedef struct {
  int M, N;
  const float *src;
  float *dst;
} rows_job;

/* Target clones for these two memory passes as well: the LSTM's 4096 x
 * 10000 projection, at 1 thread, forward 94 -> 91 ms, the iteration about 1%. */
DL_VCLONES static void add_bias_range(void *arg, int lo, int hi) {
  const rows_job *j = arg;
  for (int i = lo; i < hi; i++) {
    float *y = j->dst + (size_t)i * j->N;
    for (int k = 0; k < j->N; k++)
      y[k] += j->src[k];
  }
}

void dl_add_bias_rows(int M, int N, const float *b, float *y) {
  rows_job j = {M, N, b, y};
  dl_parallel_for(M, 1 + 65536 / (N + 1), add_bias_range, &j);
}

/* Columns [lo, hi) of every row, accumulated row by row (contiguous reads). */
DL_VCLONES static void sum_rows_range(void *arg, int lo, int hi) {
  const rows_job *j = arg;
  for (int i = 0; i < j->M; i++) {
    const float *r = j->src + (size_t)i * j->N;
    for (int k = lo; k < hi; k++)
      j->dst[k] += r[k];
  }
}

void dl_sum_rows(int M, int N, const float *dy, float *db) {
  rows_job j = {M, N, dy, db};
  dl_parallel_for(N, (int)(1 + 65536 / ((size_t)M + 1)), sum_rows_range, &j);
}
