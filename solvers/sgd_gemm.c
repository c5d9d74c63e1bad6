/* The SGD step from registers: see solvers/sgd_gemm.h. */
#include <string.h>

#include "core/parallel.h"
#include "solvers/sgd_gemm.h"

enum {
  PANEL = 48, /* columns per block: 3 AVX-512 vectors */
  ROWS = 8,   /* rows per block: 8 x 3 accumulators, 3 loads, 1 broadcast of 32 registers */
  AHEAD = 2,  /* blocks between a prefetch and its use: 1 to 8 measured alike */
};

static int disabled;

void dl_sgd_gemm_disable(int off) { disabled = off; }

size_t dl_sgd_gemm_packed_floats(int M, int K) {
  return (size_t)M * ((K + PANEL - 1) / PANEL) * PANEL;
}

typedef struct {
  int M, cols; /* rows and columns of the matrix packed: x (M x K) or dy (M x N) */
  const float *x;
  float *packed;
} pack_job;

static void pack_panels(void *arg, int p0, int p1) {
  const pack_job *j = arg;
  for (int p = p0; p < p1; p++) {
    int c0 = p * PANEL, width = j->cols - c0 < PANEL ? j->cols - c0 : PANEL;
    float *dst = j->packed + (size_t)p * j->M * PANEL;
    for (int k = 0; k < j->M; k++, dst += PANEL) {
      memcpy(dst, j->x + (size_t)k * j->cols + c0, (size_t)width * sizeof(float));
      memset(dst + width, 0, (size_t)(PANEL - width) * sizeof(float));
    }
  }
}

void dl_sgd_gemm_pack(int M, int K, const float *x, float *packed) {
  pack_job j = {M, K, x, packed};
  dl_parallel_for((K + PANEL - 1) / PANEL, 16, pack_panels, &j);
}

size_t dl_sgd_gemm_packed_dy_floats(int M, int N) {
  return (size_t)M * ((N + ROWS - 1) / ROWS) * ROWS;
}

/* Blocks of 8 rows of dy^T, [block][m][8]: two blocks per step, so that each
 * batch row's 64 bytes of dy are read at once, as one cache line. */
static void pack_dy_blocks(void *arg, int q0, int q1) {
  const pack_job *j = arg;
  int N = j->cols, M = j->M;
  for (int q = q0; q < q1; q++)
    for (int m = 0; m < M; m++)
      for (int half = 0; half < 2; half++) {
        int b = 2 * q + half, r0 = b * ROWS, n = N - r0 < ROWS ? N - r0 : ROWS;
        if (n <= 0) break;
        float *dst = j->packed + ((size_t)b * M + m) * ROWS;
        memcpy(dst, j->x + (size_t)m * N + r0, (size_t)n * sizeof(float));
        if (n < ROWS) memset(dst + n, 0, (size_t)(ROWS - n) * sizeof(float));
      }
}

void dl_sgd_gemm_pack_dy(int M, int N, const float *dy, float *packed) {
  pack_job j = {M, N, dy, packed};
  dl_parallel_for((N + 2 * ROWS - 1) / (2 * ROWS), 16, pack_dy_blocks, &j);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512        __attribute__((target("avx512f")))
#define INLINE_AVX512 __attribute__((always_inline, target("avx512f"))) static inline

int dl_sgd_gemm_usable(int M, int K) {
  return !disabled && M >= 1 && M <= 128 && K > 0 && K % 16 == 0 &&
         __builtin_cpu_supports("avx512f");
}

/* (w > 0) - (w < 0), as dl_reg_grad takes it. */
INLINE_AVX512 __m512 sign_ps(__m512 w) {
  __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  return _mm512_sub_ps(_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(w, zero, _CMP_GT_OQ), one),
                       _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(w, zero, _CMP_LT_OQ), one));
}

/* dl_rule_sgd on 16 values, operation for operation (the same bits for the
 * same g). Without decay (REG 0) the two decay terms, which then add zeros,
 * are left out. *bad collects g * 0: NaN for an infinite or NaN g. */
INLINE_AVX512 void sgd16(int REG, const dl_upd *u, float *w, float *v, __m512 g, __m512 *bad) {
  *bad = _mm512_fmadd_ps(g, _mm512_setzero_ps(), *bad);
  __m512 wv = _mm512_loadu_ps(w);
  __m512 gi = _mm512_mul_ps(g, _mm512_set1_ps(u->scale));
  if (REG) {
    gi = _mm512_add_ps(gi, _mm512_mul_ps(_mm512_set1_ps(u->l2), wv));
    gi = _mm512_add_ps(gi, _mm512_mul_ps(_mm512_set1_ps(u->l1), sign_ps(wv)));
  }
  __m512 vv = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(u->mom), _mm512_loadu_ps(v)),
                            _mm512_mul_ps(_mm512_set1_ps(u->rate), gi));
  _mm512_storeu_ps(v, vv);
  _mm512_storeu_ps(w, _mm512_sub_ps(wv, vv));
}

/* One block: NR rows (8 or 1) of NV vectors (1 to 3). The sums over the M
 * batch rows stay in registers; one prefetch per batch row brings in a line
 * of a later block (npf lines in all, listed in pf). */
INLINE_AVX512 void block(int NR, int NV, int REG, int M, const float *dyp, const float *xp,
                         float *w, float *v, size_t ld, const dl_upd *u, float *const *pf, int npf,
                         __m512 *bad) {
  __m512 acc[ROWS][3];
#pragma GCC unroll 8
  for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
    for (int j = 0; j < NV; j++)
      acc[r][j] = _mm512_setzero_ps();
  for (int k = 0; k < M; k++) {
    __m512 b[3];
#pragma GCC unroll 3
    for (int j = 0; j < NV; j++)
      b[j] = _mm512_loadu_ps(xp + (size_t)k * PANEL + 16 * j);
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) {
      __m512 a = _mm512_set1_ps(dyp[(size_t)k * ROWS + r]);
#pragma GCC unroll 3
      for (int j = 0; j < NV; j++)
        acc[r][j] = _mm512_fmadd_ps(a, b[j], acc[r][j]);
    }
    if (k < npf) _mm_prefetch((const char *)pf[k], _MM_HINT_T0);
  }
  for (int k = M; k < npf; k++)
    _mm_prefetch((const char *)pf[k], _MM_HINT_T0);
#pragma GCC unroll 8
  for (int r = 0; r < NR; r++)
#pragma GCC unroll 3
    for (int j = 0; j < NV; j++)
      sgd16(REG, u, w + r * ld + 16 * j, v + r * ld + 16 * j, acc[r][j], bad);
}

/* The blocks of a tile, 8 rows by 48 columns, in row-major order (each row's
 * weights and history are then read in runs of the tile's width); the rows
 * past the last multiple of 8 one at a time. */
typedef struct {
  const dl_sgd_target *t;
  int M, K;
  const float *dyp, *packed;
  int r0, c0, cols, panels;
} tile_ctx;

/* Lists the lines of block b's weights and history (rows of `width` values). */
static int block_lines(const tile_ctx *c, int b, float **pf) {
  int r = c->r0 + b / c->panels * ROWS, col = c->c0 + b % c->panels * PANEL;
  int width = c->c0 + c->cols - col < PANEL ? c->c0 + c->cols - col : PANEL, n = 0;
  for (int i = 0; i < ROWS; i++)
    for (int x = 0; x < width; x += 16) {
      size_t at = (size_t)(r + i) * c->K + col + x;
      pf[n++] = c->t->w + at;
      pf[n++] = c->t->v + at;
    }
  return n;
}

INLINE_AVX512 void run_block(int NR, int REG, const tile_ctx *c, int r, int col, float *const *pf,
                             int npf, __m512 *bad) {
  int width = c->c0 + c->cols - col < PANEL ? c->c0 + c->cols - col : PANEL;
  const float *dyp = c->dyp + (size_t)(r / ROWS) * c->M * ROWS + r % ROWS,
              *xp = c->packed + (size_t)(col / PANEL) * c->M * PANEL;
  size_t at = (size_t)r * c->K + col;
  float *w = c->t->w + at, *v = c->t->v + at;
  if (width > 32)
    block(NR, 3, REG, c->M, dyp, xp, w, v, (size_t)c->K, &c->t->u, pf, npf, bad);
  else if (width > 16)
    block(NR, 2, REG, c->M, dyp, xp, w, v, (size_t)c->K, &c->t->u, pf, npf, bad);
  else
    block(NR, 1, REG, c->M, dyp, xp, w, v, (size_t)c->K, &c->t->u, pf, npf, bad);
}

INLINE_AVX512 __m512 tile_blocks(int REG, const tile_ctx *c, int rows) {
  __m512 bad = _mm512_setzero_ps();
  float *pf[ROWS * PANEL / 16 * 2];
  int blocks = rows / ROWS * c->panels;
  for (int b = 0; b < blocks; b++) {
    int npf = b + AHEAD < blocks ? block_lines(c, b + AHEAD, pf) : 0;
    run_block(ROWS, REG, c, c->r0 + b / c->panels * ROWS, c->c0 + b % c->panels * PANEL, pf, npf,
              &bad);
  }
  for (int r = c->r0 + rows / ROWS * ROWS; r < c->r0 + rows; r++)
    for (int p = 0; p < c->panels; p++)
      run_block(1, REG, c, r, c->c0 + p * PANEL, NULL, 0, &bad);
  return bad;
}

AVX512 static int tile_avx512(const tile_ctx *c, int rows) {
  const dl_upd *u = &c->t->u;
  __m512 bad = u->l2 == 0 && u->l1 == 0 ? tile_blocks(0, c, rows) : tile_blocks(1, c, rows);
  return _mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) == 0;
}

int dl_sgd_gemm_tile(const dl_sgd_target *t, int M, int K, const float *dyp, const float *packed,
                     int r0, int rows, int c0, int cols) {
  tile_ctx c = {t, M, K, dyp, packed, r0, c0, cols, (cols + PANEL - 1) / PANEL};
  if (tile_avx512(&c, rows)) return 1;
  atomic_store_explicit(t->bad, t->id, memory_order_relaxed);
  return 0;
}

#else
int dl_sgd_gemm_usable(int M, int K) {
  (void)M, (void)K;
  return 0;
}

int dl_sgd_gemm_tile(const dl_sgd_target *t, int M, int K, const float *dyp, const float *packed,
                     int r0, int rows, int c0, int cols) {
  (void)t, (void)M, (void)K, (void)dyp, (void)packed, (void)r0, (void)rows, (void)c0, (void)cols;
  return 0;
}
#endif
