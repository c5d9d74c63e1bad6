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
#include "core/vmath.h"

#ifdef __cplusplus
extern "C" {
#endif

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
  float *dev;     /* GPU twin (layers/lstm.cu): the same buffers on the device */
  size_t dev_cap; /* floats in dev */
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
/* LSTM's GPU twin (layers/lstm.cu). */
DL_GPU_TWINS(lstm);
/* The GEMM work of one forward: 2 T N G H (D + H). */
double dl_rec_flops(const dl_layer *l);
/* The carried state for snapshots (dl_layer_ops state_size/get_state/set_state):
 * h_T (N x H), then c_T (N x H) for LSTM, N being the batch size of the last
 * reshape. set_state refuses another count (a snapshot of another batch size). */
size_t dl_rec_state_size(dl_layer *l);
void dl_rec_get_state(dl_layer *l, float *state);
dl_status dl_rec_set_state(dl_layer *l, const float *state, size_t n);

#ifdef __cplusplus
}
#endif

#endif
