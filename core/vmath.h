/* Fast elementwise math for the CPU layers. */
#ifndef DL_VMATH_H
#define DL_VMATH_H

#include <stdint.h>
#include <string.h>

/* Vectorizable elementwise math (exp, sigmoid, tanh), shared by the layers. GCC at -O2 vectorizes a loop only when
 * its trip count is a constant and it has no branches, so the loops run over
 * blocks of DL_VBLOCK units (then a scalar tail), float ?: (a branch under
 * the default -ftrapping-math) is replaced by a bit-mask select, and exp is our
 * own: glibc's expf is a scalar call. */
#define DL_VBLOCK 16

/* The row functions of the step loops are compiled three times on x86-64, for
 * the baseline (SSE4.2: -march=x86-64-v2), AVX2 and AVX-512 (2 and 4 times the
 * vector width), and the loader picks one (target_clones): the elementwise part
 * of an LSTM forward at the DLBench size runs about 3 times as fast on AVX-512
 * (Zen 5). The results are bit for bit the same: the same IEEE operations per
 * element, and ISO C mode does not contract a*b+c to fma. What a clone calls
 * must be inlined into it: GCC does not inline across targets unless told to
 * (DL_VINLINE). -DDL_VCLONES= turns the clones off. */
#if !defined(DL_VCLONES) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define DL_VCLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef DL_VCLONES
#define DL_VCLONES
#endif
#define DL_VINLINE __attribute__((always_inline)) static inline

/* c ? a : b, branch-free. */
DL_VINLINE float dl_vpick(int c, float a, float b) {
  int32_t m = -(int32_t)c, ai, bi;
  memcpy(&ai, &a, sizeof ai);
  memcpy(&bi, &b, sizeof bi);
  ai = (ai & m) | (bi & ~m);
  memcpy(&a, &ai, sizeof a);
  return a;
}

/* exp(x) as 2^n p(r), r = x - n ln2 in [-ln2/2, ln2/2], p the Cephes degree-5
 * polynomial (within 2 ulp of expf); x is clamped to [-87, 88] so the result
 * stays a finite normal number. The steps, shared by dl_vexp and
 * dl_vexp_block: */
DL_VINLINE float exp_clamp(float x) {
  x = dl_vpick(x < -87.0f, -87.0f, x);
  return dl_vpick(x > 88.0f, 88.0f, x);
}

/* n = round(x / ln2), and its bits plus 1.5 * 2^23 in *kb (for exp_scale). */
DL_VINLINE float exp_round(float x, uint32_t *kb) {
  const float shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  float k = x * 1.44269504f + shift;
  memcpy(kb, &k, sizeof *kb);
  return k - shift;
}

DL_VINLINE float exp_reduce(float x, float n) {
  return x - n * 0.693359375f + n * 2.12194440e-4f; /* ln2 split in two parts */
}

DL_VINLINE float exp_poly(float r) {
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}

DL_VINLINE float exp_scale(float p, uint32_t kb) {
  uint32_t eb = (kb - 0x4B400000u + 127u) << 23; /* 2^n: n + 127 in the exponent field */
  float e;
  memcpy(&e, &eb, sizeof e);
  return p * e;
}

DL_VINLINE float dl_vexp(float x) {
  uint32_t kb;
  x = exp_clamp(x);
  float n = exp_round(x, &kb);
  return exp_scale(exp_poly(exp_reduce(x, n)), kb);
}

DL_VINLINE float dl_vsigmoid(float x) { return 1.0f / (1.0f + dl_vexp(-x)); }

/* dl_vexp over a block of DL_VEXP_BLOCK floats, with the same bits: each step
 * runs over the whole block before the next, unrolled, so 8 AVX-512 vectors
 * are independent at every step. One vector at a time through the whole chain
 * kept Zen 5 at under 2 instructions a cycle: a sigmoid over 7.3 M floats in
 * cache took 2.85 ms that way, 1.6 ms this way. `in` and `out` are the
 * caller's local arrays (no aliasing for the vectorizer to fear). */
enum { DL_VEXP_BLOCK = 128 };
#ifdef __CUDACC__ /* nvcc's front end (layers/lstm.cu) rejects the pragma; no use for it there */
#define DL_UNROLLED
#else
#define DL_UNROLLED _Pragma("GCC unroll 16")
#endif
DL_VINLINE void dl_vexp_block(const float *in, float *out) {
  float x[DL_VEXP_BLOCK], n[DL_VEXP_BLOCK];
  uint32_t kb[DL_VEXP_BLOCK];
  DL_UNROLLED for (int q = 0; q < DL_VEXP_BLOCK; q++) x[q] = exp_clamp(in[q]);
  DL_UNROLLED for (int q = 0; q < DL_VEXP_BLOCK; q++) n[q] = exp_round(x[q], &kb[q]);
  DL_UNROLLED for (int q = 0; q < DL_VEXP_BLOCK; q++) x[q] = exp_reduce(x[q], n[q]);
  DL_UNROLLED for (int q = 0; q < DL_VEXP_BLOCK; q++) x[q] = exp_poly(x[q]);
  DL_UNROLLED for (int q = 0; q < DL_VEXP_BLOCK; q++) out[q] = exp_scale(x[q], kb[q]);
}

/* tanh: an odd polynomial (Cephes) for |x| < 0.625, keeping full relative
 * precision near 0, else sign(x) (1 - 2 / (e^2|x| + 1)); both are computed. */
DL_VINLINE float dl_vtanh(float x) {
  float a = dl_vpick(x < 0, -x, x);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (dl_vexp(2.0f * a) + 1.0f);
  return dl_vpick(a < 0.625f, small, dl_vpick(x < 0, -big, big));
}

#endif
