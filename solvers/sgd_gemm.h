/* The SGD step applied to a weight gradient while it is still in registers.
 *
 * A fully connected layer with a small batch (M <= 128 rows: FCN-S, AlexNet-S's
 * fully connected layers) makes its weight gradient dW = dy^T x with M
 * multiply-adds per value: compute-bound, but the SGD step that follows reads
 * and writes the weights and their history, 16 bytes per value, and is
 * memory-bound. Done one after the other (GEMM a tile, then update it) a core
 * waits on memory half the time. dl_sgd_gemm_tile makes dW in blocks of
 * 8 x 48 values in AVX-512 registers and applies the rule straight from them,
 * while software prefetches bring in the weights and history of the blocks two
 * ahead, so the memory traffic runs under the multiply-adds: FCN-S's first
 * layer's weight gradient and update 50 -> 20 ms at 2 threads, measured alone.
 * The arithmetic is dl_rule_sgd's (solvers/update_rule.h); only dW's summation
 * order differs from a BLAS GEMM's. */
#ifndef DL_SOLVERS_SGD_GEMM_H
#define DL_SOLVERS_SGD_GEMM_H

#include <stdatomic.h>
#include <stddef.h>

#include "solvers/update_rule.h"

/* One blob's SGD step, as the solver hands it to a layer (dl_update_hook's
 * sgd_target). */
typedef struct dl_sgd_target {
  dl_upd u;
  float *w, *v;    /* the weights and their momentum history, N x K row-major */
  atomic_int *bad; /* set to `id` when a gradient value is not finite */
  int id;
} dl_sgd_target;

/* Whether this CPU and the shape can take the register path: AVX-512, K a
 * multiple of 16, 1 <= M <= 128 (with longer batches the weight gradient is
 * compute-bound and oneDNN's GEMM then a separate pass measured faster: FCN-R
 * 183 against 190 ms at 2 threads). */
int dl_sgd_gemm_usable(int M, int K);

/* Tests: 1 turns the register path off (layers then use the solver's tiles). */
void dl_sgd_gemm_disable(int off);

/* x (M x K, row-major) repacked for the kernel: panels of 48 columns, each
 * M x 48 contiguous, the last one zero-padded. dl_sgd_gemm_packed_floats(M, K)
 * floats. Threaded over panels. */
size_t dl_sgd_gemm_packed_floats(int M, int K);
void dl_sgd_gemm_pack(int M, int K, const float *x, float *packed);

/* dy (M x N, row-major) repacked for the kernel: dy^T in blocks of 8 rows,
 * each M x 8 contiguous, the last one zero-padded.
 * dl_sgd_gemm_packed_dy_floats(M, N) floats. Threaded. */
size_t dl_sgd_gemm_packed_dy_floats(int M, int N);
void dl_sgd_gemm_pack_dy(int M, int N, const float *dy, float *packed);

/* For rows [r0, r0 + rows) and columns [c0, c0 + cols) of W (r0 a multiple of
 * 8, c0 of 48, rows and cols too unless the tile ends at N or K): dW = dy^T x
 * from the packed dy and x, then the SGD step on t's w and v.
 * Returns 0 (and sets *t->bad) when a dW value is not finite; that tile is
 * then updated anyway, and training stops. One thread's work: callers cut W
 * into tiles between threads. */
int dl_sgd_gemm_tile(const dl_sgd_target *t, int M, int K, const float *dyp, const float *packed,
                     int r0, int rows, int c0, int cols);

#endif
