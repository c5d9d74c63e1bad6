/* The frame the recurrent layers (LSTM, RNN) share, as Caffe's RecurrentLayer:
 * bottoms x (T x N x D) and cont (T x N), top h (T x N x H), parameters
 * W_x (G*H x D), b (G*H), W_h (G*H x H) with G gate blocks per hidden unit.
 *
 * cont[t, n] = 0 marks the start of a new sequence: the carried state of
 * sample n is multiplied by cont before step t uses it. The last step's h and
 * c are kept as the initial state of the next forward (truncated BPTT); no
 * gradient flows across forwards.
 *
 * Speed: the input side of all T steps is one GEMM ((T*N) x D times D x G*H),
 * each step adds one N x H times H x G*H GEMM and a fused elementwise pass; the
 * backward runs one N x G*H times G*H x H GEMM per step, then one GEMM each for
 * dW_x, dW_h and dx over all steps. Buffers are sized in reshape. */
#ifndef DL_LAYERS_RECURRENT_H
#define DL_LAYERS_RECURRENT_H

#include <stdint.h>
#include <string.h>

#include "core/layer.h"

typedef struct {
  int num_output; /* H */
  dl_filler weight_filler, bias_filler;
  float forget_bias; /* LSTM only: added to the forget gate's bias at init */
} dl_rec_param;

enum { DL_REC_WX, DL_REC_B, DL_REC_WH }; /* parameter order */

typedef struct {
  int G;          /* gate blocks per hidden unit: 4 for LSTM (i, f, o, g), 1 for RNN */
  int cell;       /* keeps a cell state c (LSTM) */
  int T, N, D, H; /* sizes of the last reshape */
  size_t cap_seq; /* floats in the block behind gates, hprev, cprev, tanh_c */
  int cap_n;      /* rows each (N, H) buffer holds */
  int state_n;    /* N the carried state belongs to (0: none yet) */
  float *gates;   /* (T, N, G*H) pre-activations; activations after forward; their
                     gradients after backward */
  float *hprev;   /* (T, N, H) cont_t * h_{t-1}: step t's recurrent input */
  float *cprev;   /* (T, N, H) cont_t * c_{t-1} (cell only) */
  float *tanh_c;  /* (T, N, H) tanh(c_t) (cell only) */
  float *h_state; /* (N, H) h_T of the last forward */
  float *c_state; /* (N, H) c_T of the last forward (cell only) */
  float *dh_rec;  /* (N, H) backward: dLoss/d(hprev_{t+1}) W_h, before the cont factor */
  float *dc_rec;  /* (N, H) backward: dLoss/dc_t through c_{t+1} (cont included) */
} dl_rec;

/* Checks the bottoms, creates and fills W_x, b, W_h (G*H rows each) and the
 * layer's dl_rec. With forget_bias, adds it to bias block 1 (LSTM's f). */
dl_status dl_rec_setup(dl_layer *l, dl_blob *const *bottom, int G, int cell);
/* Sizes the buffers and the top (T x N x H); resets the state when N changes. */
dl_status dl_rec_reshape(dl_layer *l, dl_blob *const *bottom, dl_blob *const *top);
/* Forward prologue: errors if the bottoms changed shape since reshape; then
 * gates = x W_x^T for all steps (one GEMM, bias not added) and step 0's
 * hprev / cprev = cont_0 * carried state. */
dl_status dl_rec_forward_begin(dl_layer *l, dl_blob *const *bottom);
/* gates_t += hprev_t W_h^T */
void dl_rec_step_gemm(dl_layer *l, int t);
/* Where step t writes its h (and c) for step t + 1: hprev/cprev of t + 1 with
 * the factor cont_{t+1}, or after the last step the carried state with factor 1. */
float *dl_rec_next_h(dl_rec *s, int t);
float *dl_rec_next_c(dl_rec *s, int t);
/* Backward prologue: clears dh_rec and dc_rec. */
void dl_rec_backward_begin(dl_layer *l);
/* After step t's gate gradients are in gates_t: dh_rec = dgates_t W_h (t > 0). */
void dl_rec_backward_step_gemm(dl_layer *l, int t);
/* Backward epilogue over all steps: dW_x += dG^T x, dW_h += dG^T hprev,
 * db += column sums of dG, and (if propagate_down[0]) dx = dG W_x. */
void dl_rec_backward_end(dl_layer *l, const int *propagate_down, dl_blob *const *bottom);
void dl_rec_destroy(dl_layer *l);

/* Elementwise math the step loops use. GCC at -O2 vectorizes a loop only when
 * its trip count is a constant and it has no branches, so the loops run over
 * blocks of DL_REC_BLOCK units (then a scalar tail), float ?: (a branch under
 * the default -ftrapping-math) is replaced by a bit-mask select, and exp is our
 * own: glibc's expf is a scalar call. */
#define DL_REC_BLOCK 16

/* The row functions of the step loops are compiled three times on x86-64, for
 * the baseline (SSE4.2: -march=x86-64-v2), AVX2 and AVX-512 (2 and 4 times the
 * vector width), and the loader picks one (target_clones): the elementwise part
 * of an LSTM forward at the DLBench size runs about 3 times as fast on AVX-512
 * (Zen 5). The results are bit for bit the same: the same IEEE operations per
 * element, and ISO C mode does not contract a*b+c to fma. What a clone calls
 * must be inlined into it: GCC does not inline across targets unless told to
 * (DL_REC_INLINE). -DDL_REC_CLONES= turns the clones off. */
#if !defined(DL_REC_CLONES) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define DL_REC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef DL_REC_CLONES
#define DL_REC_CLONES
#endif
#define DL_REC_INLINE __attribute__((always_inline)) static inline

/* c ? a : b, branch-free. */
DL_REC_INLINE float dl_rec_pick(int c, float a, float b) {
  int32_t m = -(int32_t)c, ai, bi;
  memcpy(&ai, &a, sizeof ai);
  memcpy(&bi, &b, sizeof bi);
  ai = (ai & m) | (bi & ~m);
  memcpy(&a, &ai, sizeof a);
  return a;
}

/* exp(x) as 2^n p(r), r = x - n ln2 in [-ln2/2, ln2/2], p the Cephes degree-5
 * polynomial (within 2 ulp of expf); x is clamped to [-87, 88] so the result
 * stays a finite normal number. */
DL_REC_INLINE float dl_rec_exp(float x) {
  x = dl_rec_pick(x < -87.0f, -87.0f, x);
  x = dl_rec_pick(x > 88.0f, 88.0f, x);
  const float shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  float k = x * 1.44269504f + shift;
  uint32_t kb;
  memcpy(&kb, &k, sizeof kb);
  float n = k - shift;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* ln2 split in two parts */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  uint32_t eb = (kb - 0x4B400000u + 127u) << 23; /* 2^n: n + 127 in the exponent field */
  float e;
  memcpy(&e, &eb, sizeof e);
  return p * e;
}

DL_REC_INLINE float dl_rec_sigmoid(float x) { return 1.0f / (1.0f + dl_rec_exp(-x)); }

/* tanh: an odd polynomial (Cephes) for |x| < 0.625, keeping full relative
 * precision near 0, else sign(x) (1 - 2 / (e^2|x| + 1)); both are computed. */
DL_REC_INLINE float dl_rec_tanh(float x) {
  float a = dl_rec_pick(x < 0, -x, x);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (dl_rec_exp(2.0f * a) + 1.0f);
  return dl_rec_pick(a < 0.625f, small, dl_rec_pick(x < 0, -big, big));
}

#endif
