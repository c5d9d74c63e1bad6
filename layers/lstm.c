/* LSTM (Caffe's LSTMLayer): a long short-term memory over T steps of N
 * sequences. Per step, with hp = cont_t * h_{t-1} and cp = cont_t * c_{t-1}:
 *   [i f o g] = [sigmoid sigmoid sigmoid tanh](W_x x_t + b + W_h hp)
 *   c_t = f * cp + i * g,   h_t = o * tanh(c_t)
 * Gate blocks are in Caffe's order (i, f, o, g), so weights load across tools.
 * The frame (bottoms, state carried across forwards, GEMMs) is layers/recurrent.h. */
#include "core/layer.h"
#include "layers/recurrent.h"

static const dl_param_spec lstm_schema[] = {
    DL_P_INT(dl_rec_param, num_output, NULL, 1, 1 << 28, "hidden size H",
             "recurrent_param { num_output }"),
    DL_P_FILLER(dl_rec_param, weight_filler, "{type: xavier}",
                "initial W_x (4H x D) and W_h (4H x H); xavier draws uniform +-sqrt(3 / fan_in) "
                "(+-0.108 at D = H = 256, close to the +-0.1 of the usual word-level models)",
                "recurrent_param { weight_filler }"),
    DL_P_FILLER(dl_rec_param, bias_filler, "{type: constant, value: 0}", "initial b (4H)",
                "recurrent_param { bias_filler }"),
    DL_P_FLOAT(dl_rec_param, forget_bias, "0", -100, 100,
               "added to the forget gate's bias at init (after bias_filler). 0 as in Caffe, "
               "PyTorch and the DLBench LSTM; 1 (TensorFlow's and Keras's default) helps long "
               "memories train (Jozefowicz et al. 2015)",
               "(none: set the f block of the bias by hand)"),
    DL_SPEC_END};

static dl_status lstm_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)top, (void)nt;
  return dl_rec_setup(l, bottom, 4, 1);
}

static dl_status lstm_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  return dl_rec_reshape(l, bottom, top);
}

/* Gate math for len units of one row (one sequence) at step t. a* hold the
 * pre-activations without the bias and get the activations; hn and cn receive
 * m * h and m * c for the next step (m = its cont flag). */
DL_VINLINE void lstm_cells(int len, float *restrict ai, float *restrict af, float *restrict ao,
                              float *restrict ag, const float *restrict bi,
                              const float *restrict bf, const float *restrict bo,
                              const float *restrict bg, const float *restrict cp,
                              float *restrict tc, float *restrict h, float *restrict hn,
                              float *restrict cn, float m) {
  for (int j = 0; j < len; j++) {
    float i = dl_vsigmoid(ai[j] + bi[j]);
    float f = dl_vsigmoid(af[j] + bf[j]);
    float o = dl_vsigmoid(ao[j] + bo[j]);
    float g = dl_vtanh(ag[j] + bg[j]);
    float c = f * cp[j] + i * g;
    float t = dl_vtanh(c);
    ai[j] = i, af[j] = f, ao[j] = o, ag[j] = g;
    tc[j] = t;
    h[j] = o * t;
    hn[j] = m * (o * t);
    cn[j] = m * c;
  }
}

/* One row: a (4H) gate pre-activations, b (4H), cp, tc, h, hn, cn (H). Blocks
 * of constant length vectorize (layers/recurrent.h). */
DL_VCLONES static void lstm_row(int H, float *a, const float *b, const float *cp, float *tc,
                                   float *h, float *hn, float *cn, float m) {
  int j = 0;
  for (; j + DL_VBLOCK <= H; j += DL_VBLOCK)
    lstm_cells(DL_VBLOCK, a + j, a + H + j, a + 2 * H + j, a + 3 * H + j, b + j, b + H + j,
               b + 2 * H + j, b + 3 * H + j, cp + j, tc + j, h + j, hn + j, cn + j, m);
  lstm_cells(H - j, a + j, a + H + j, a + 2 * H + j, a + 3 * H + j, b + j, b + H + j, b + 2 * H + j,
             b + 3 * H + j, cp + j, tc + j, h + j, hn + j, cn + j, m);
}

static dl_status lstm_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  dl_rec *s = l->priv;
  dl_status st = dl_rec_forward_begin(l, bottom);
  if (st) return st;
  const float *cont = dl_cdata(bottom[1]);        /* (T, N) */
  const float *b = dl_cdata(l->params[DL_REC_B]); /* (4H) */
  float *h = dl_data(top[0]);                     /* (T, N, H) */
  int N = s->N, H = s->H;
  for (int t = 0; t < s->T; t++) {
    dl_rec_step_gemm(l, t);
    float *hn = dl_rec_next_h(s, t), *cn = dl_rec_next_c(s, t); /* (N, H) */
    for (int n = 0; n < N; n++) {
      size_t r = (size_t)t * N + n; /* row of the (T*N) x . buffers */
      float m = t + 1 < s->T ? cont[r + N] : 1.0f;
      lstm_row(H, s->gates + r * 4 * H, b, s->cprev + r * H, s->tanh_c + r * H, h + r * H,
               hn + (size_t)n * H, cn + (size_t)n * H, m);
    }
  }
  return DL_OK;
}

/* Backward of len units of one row at step t, from dh = dtop + m * dh_rec
 * (m = cont_{t+1}):
 *   do = dh tanh(c);  dc = dh o (1 - tanh^2(c)) + dc_rec
 *   di = dc g;  df = dc cp;  dg = dc i;  dc_rec <- dc f cont_t   (for c_{t-1})
 * then through the nonlinearities: da_i = di i (1 - i), da_f = df f (1 - f),
 * da_o = do o (1 - o), da_g = dg (1 - g^2), written over the activations. */
DL_VINLINE void lstm_cells_backward(int len, float *restrict ai, float *restrict af,
                                       float *restrict ao, float *restrict ag,
                                       const float *restrict cp, const float *restrict tc,
                                       const float *restrict dtop, const float *restrict dh_rec,
                                       float *restrict dc_rec, float m, float cont) {
  for (int j = 0; j < len; j++) {
    float i = ai[j], f = af[j], o = ao[j], g = ag[j];
    float dh = dtop[j] + m * dh_rec[j];
    float dc = dh * o * (1.0f - tc[j] * tc[j]) + dc_rec[j];
    dc_rec[j] = dc * f * cont;
    ai[j] = dc * g * i * (1.0f - i);
    af[j] = dc * cp[j] * f * (1.0f - f);
    ao[j] = dh * tc[j] * o * (1.0f - o);
    ag[j] = dc * i * (1.0f - g * g);
  }
}

DL_VCLONES static void lstm_row_backward(int H, float *a, const float *cp, const float *tc,
                                            const float *dtop, const float *dh_rec, float *dc_rec,
                                            float m, float cont) {
  int j = 0;
  for (; j + DL_VBLOCK <= H; j += DL_VBLOCK)
    lstm_cells_backward(DL_VBLOCK, a + j, a + H + j, a + 2 * H + j, a + 3 * H + j, cp + j,
                        tc + j, dtop + j, dh_rec + j, dc_rec + j, m, cont);
  lstm_cells_backward(H - j, a + j, a + H + j, a + 2 * H + j, a + 3 * H + j, cp + j, tc + j,
                      dtop + j, dh_rec + j, dc_rec + j, m, cont);
}

/* dh_rec carries dLoss/dh_t from step t + 1: dgates_{t+1} W_h, times cont_{t+1}
 * (hp_{t+1} = cont_{t+1} h_t). The gate activations are consumed: one backward
 * per forward. */
static void lstm_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
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
      lstm_row_backward(H, s->gates + r * 4 * H, s->cprev + r * H, s->tanh_c + r * H, dtop + r * H,
                        s->dh_rec + (size_t)n * H, s->dc_rec + (size_t)n * H, m, cont[r]);
    }
    dl_rec_backward_step_gemm(l, t);
  }
  dl_rec_backward_end(l, propagate_down, bottom);
}

const dl_layer_ops dl_layer_lstm = {
    .type = "LSTM",
    .summary = "long short-term memory over T x N sequences (Caffe's LSTM: gates i, f, o, g; "
               "state carried across batches)",
    .schema = lstm_schema,
    .param_size = sizeof(dl_rec_param),
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: T x N x D (time, sequences, features; axes from 2 on are flattened); "
                   "cont: T x N, 0 where a sequence starts (the carried h and c are multiplied "
                   "by it), else 1",
    .tops_doc = "h: T x N x num_output, the hidden state at every step",
    .no_grad_bottoms = 1u << 1,
    .setup = lstm_setup,
    .reshape = lstm_reshape,
    .forward = lstm_forward,
    .backward = lstm_backward,
    .destroy = dl_rec_destroy,
    .flops = dl_rec_flops,
    .state_size = dl_rec_state_size,
#ifdef DL_GPU
    .forward_gpu = dl_lstm_forward_gpu,
    .backward_gpu = dl_lstm_backward_gpu,
#endif
    .get_state = dl_rec_get_state,
    .set_state = dl_rec_set_state,
};
