/* RNN: a plain (Elman) tanh recurrence over T steps of N sequences,
 *   h_t = tanh(W_x x_t + b + W_h (cont_t * h_{t-1})),
 * on the same frame as LSTM (layers/recurrent.h). Caffe's RNNLayer adds an
 * output o_t = tanh(W_o h_t + b_o); here that is an InnerProduct (axis: 2) and
 * a TanH after this layer. */
#include "core/layer.h"
#include "layers/recurrent.h"

static const dl_param_spec rnn_schema[] = {
    DL_P_INT(dl_rec_param, num_output, NULL, 1, 1 << 30, "hidden size H",
             "recurrent_param { num_output }"),
    DL_P_FILLER(dl_rec_param, weight_filler, "{type: xavier}",
                "initial W_x (H x D) and W_h (H x H); xavier draws uniform +-sqrt(3 / fan_in)",
                "recurrent_param { weight_filler }"),
    DL_P_FILLER(dl_rec_param, bias_filler, "{type: constant, value: 0}", "initial b (H)",
                "recurrent_param { bias_filler }"),
    DL_SPEC_END};

static dl_status rnn_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                           int nt) {
  (void)nb, (void)top, (void)nt;
  return dl_rec_setup(l, bottom, 1, 0);
}

static dl_status rnn_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  return dl_rec_reshape(l, bottom, top);
}

/* len units of one row: a (pre-activation without b) becomes h = tanh(a + b);
 * hn gets m * h for the next step (m = its cont flag). */
DL_VINLINE void rnn_cells(int len, float *restrict a, const float *restrict b, float *restrict h,
                             float *restrict hn, float m) {
  for (int j = 0; j < len; j++) {
    float v = dl_vtanh(a[j] + b[j]);
    a[j] = v;
    h[j] = v;
    hn[j] = m * v;
  }
}

/* Blocks of constant length vectorize (layers/recurrent.h). */
DL_VCLONES static void rnn_row(int H, float *a, const float *b, float *h, float *hn, float m) {
  int j = 0;
  for (; j + DL_VBLOCK <= H; j += DL_VBLOCK)
    rnn_cells(DL_VBLOCK, a + j, b + j, h + j, hn + j, m);
  rnn_cells(H - j, a + j, b + j, h + j, hn + j, m);
}

static dl_status rnn_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  dl_rec *s = l->priv;
  dl_status st = dl_rec_forward_begin(l, bottom);
  if (st) return st;
  const float *cont = dl_cdata(bottom[1]);        /* (T, N) */
  const float *b = dl_cdata(l->params[DL_REC_B]); /* (H) */
  float *h = dl_data(top[0]);                     /* (T, N, H) */
  int N = s->N, H = s->H;
  for (int t = 0; t < s->T; t++) {
    dl_rec_step_gemm(l, t);
    float *hn = dl_rec_next_h(s, t); /* (N, H) */
    for (int n = 0; n < N; n++) {
      size_t r = (size_t)t * N + n;
      float m = t + 1 < s->T ? cont[r + N] : 1.0f;
      rnn_row(H, s->gates + r * H, b, h + r * H, hn + (size_t)n * H, m);
    }
  }
  return DL_OK;
}

/* da = (dtop + m * dh_rec) (1 - h^2), written over h in a; m = cont_{t+1}. */
DL_VINLINE void rnn_cells_backward(int len, float *restrict a, const float *restrict dtop,
                                      const float *restrict dh_rec, float m) {
  for (int j = 0; j < len; j++)
    a[j] = (dtop[j] + m * dh_rec[j]) * (1.0f - a[j] * a[j]);
}

DL_VCLONES static void rnn_row_backward(int H, float *a, const float *dtop, const float *dh_rec,
                                           float m) {
  int j = 0;
  for (; j + DL_VBLOCK <= H; j += DL_VBLOCK)
    rnn_cells_backward(DL_VBLOCK, a + j, dtop + j, dh_rec + j, m);
  rnn_cells_backward(H - j, a + j, dtop + j, dh_rec + j, m);
}

/* dh_rec = da_{t+1} W_h is dLoss/dh_t through step t + 1, before its cont factor.
 * The kept activations are consumed: one backward per forward. */
static void rnn_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                         dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  dl_rec *s = l->priv;
  const float *cont = dl_cdata(bottom[1]); /* (T, N) */
  const float *dtop = dl_cdiff(top[0]);    /* (T, N, H) */
  int N = s->N, H = s->H;
  dl_rec_backward_begin(l);
  for (int t = s->T - 1; t >= 0; t--) {
    for (int n = 0; n < N; n++) {
      size_t r = (size_t)t * N + n;
      float m = t + 1 < s->T ? cont[r + N] : 0.0f;
      rnn_row_backward(H, s->gates + r * H, dtop + r * H, s->dh_rec + (size_t)n * H, m);
    }
    dl_rec_backward_step_gemm(l, t);
  }
  dl_rec_backward_end(l, propagate_down, bottom);
}

const dl_layer_ops dl_layer_rnn = {
    .type = "RNN",
    .summary = "plain tanh recurrence h_t = tanh(W_x x_t + b + W_h h_{t-1}) over T x N "
               "sequences (state carried across batches)",
    .schema = rnn_schema,
    .param_size = sizeof(dl_rec_param),
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: T x N x D (time, sequences, features; axes from 2 on are flattened); "
                   "cont: T x N, 0 where a sequence starts (the carried h is multiplied by it), "
                   "else 1",
    .tops_doc = "h: T x N x num_output, the hidden state at every step",
    .no_grad_bottoms = 1u << 1,
    .setup = rnn_setup,
    .reshape = rnn_reshape,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .destroy = dl_rec_destroy,
    .flops = dl_rec_flops,
    .state_size = dl_rec_state_size,
    .get_state = dl_rec_get_state,
    .set_state = dl_rec_set_state,
};
