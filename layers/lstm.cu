// LSTM's GPU twin (layers/lstm.c has the CPU code and the formulas): the same
// steps with the buffers of dl_rec on the device (s->dev) - one cuBLAS GEMM for
// the input side of all steps, one per step for the recurrent side, a kernel
// per step for the cell - and the same backward. The carried state (h_T, c_T)
// stays authoritative on the host, where snapshots read it: it is uploaded
// before a forward and read back after it (2 N x H floats each way).
#include "core/gpu.h"
#include "core/math_gpu.h"
#include "layers/recurrent.h"

// exp only sees -|x| (as the CPU's stable sigmoid).
__device__ static float sigmoid_of(float x) {
  float e = expf(-fabsf(x)), r = 1.0f / (1.0f + e);
  return x < 0 ? e * r : r;
}

struct dev_bufs {
  float *gates, *hprev, *cprev, *tanh_c; // (T*N, 4H), (T*N, H) x 3
  float *h_state, *c_state, *dh_rec, *dc_rec; // (N, H) each
};

// The device block, grown to the current T, N, H; NULL members on failure.
static dev_bufs device_buffers(dl_rec *s) {
  size_t TN = (size_t)s->T * s->N, NH = (size_t)s->N * s->H;
  size_t need = TN * 7 * (size_t)s->H + 4 * NH;
  dev_bufs b = {};
  if (need > s->dev_cap) {
    if (s->dev) dl_mem_gpu_free(s->dev);
    s->dev = dl_mem_gpu_alloc(need);
    s->dev_cap = s->dev ? need : 0;
    if (!s->dev) return b;
  }
  b.gates = s->dev;
  b.hprev = b.gates + TN * 4 * s->H;
  b.cprev = b.hprev + TN * s->H;
  b.tanh_c = b.cprev + TN * s->H;
  b.h_state = b.tanh_c + TN * s->H;
  b.c_state = b.h_state + NH;
  b.dh_rec = b.c_state + NH;
  b.dc_rec = b.dh_rec + NH;
  return b;
}

// hp (N, H) = cont (N) * state (N, H), and the same for the cell.
__global__ static void cont_rows_kernel(int N, int H, const float *cont, const float *h,
                                        const float *c, float *hp, float *cp) {
  DL_GPU_LOOP(k, (size_t)N * H) {
    float m = cont[k / H];
    hp[k] = m * h[k];
    cp[k] = m * c[k];
  }
}

// Step t's cells (lstm_cells on the CPU): a (N, 4H) pre-activations without
// the bias become the activations; h to the top; m * h and m * c to hn, cn.
__global__ static void cell_kernel(int N, int H, float *a, const float *b, const float *cp,
                                   float *tc, float *h, float *hn, float *cn,
                                   const float *cont_next) {
  DL_GPU_LOOP(k, (size_t)N * H) {
    int n = (int)(k / H), j = (int)(k % H);
    float *row = a + (size_t)n * 4 * H;
    float i = sigmoid_of(row[j] + b[j]);
    float f = sigmoid_of(row[H + j] + b[H + j]);
    float o = sigmoid_of(row[2 * H + j] + b[2 * H + j]);
    float g = tanhf(row[3 * H + j] + b[3 * H + j]);
    float c = f * cp[k] + i * g, t = tanhf(c);
    float m = cont_next ? cont_next[n] : 1.0f;
    row[j] = i, row[H + j] = f, row[2 * H + j] = o, row[3 * H + j] = g;
    tc[k] = t;
    h[k] = o * t;
    hn[k] = m * (o * t);
    cn[k] = m * c;
  }
}

// Step t's backward (lstm_cells_backward on the CPU): the activations in a
// become the gradients of the pre-activations; dc_rec carries dc to t - 1.
__global__ static void cell_backward_kernel(int N, int H, float *a, const float *cp,
                                            const float *tc, const float *dtop,
                                            const float *dh_rec, float *dc_rec,
                                            const float *cont_next, const float *cont) {
  DL_GPU_LOOP(k, (size_t)N * H) {
    int n = (int)(k / H), j = (int)(k % H);
    float *row = a + (size_t)n * 4 * H;
    float i = row[j], f = row[H + j], o = row[2 * H + j], g = row[3 * H + j];
    float m = cont_next ? cont_next[n] : 0.0f;
    float dh = dtop[k] + m * dh_rec[k];
    float dc = dh * o * (1.0f - tc[k] * tc[k]) + dc_rec[k];
    dc_rec[k] = dc * f * cont[n];
    row[j] = dc * g * i * (1.0f - i);
    row[H + j] = dc * cp[k] * f * (1.0f - f);
    row[2 * H + j] = dh * tc[k] * o * (1.0f - o);
    row[3 * H + j] = dc * i * (1.0f - g * g);
  }
}

extern "C" dl_status dl_lstm_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                         dl_blob *const *top, int) {
  dl_rec *s = (dl_rec *)l->priv;
  if (bottom[0]->count != (size_t)s->T * s->N * s->D || bottom[1]->count != (size_t)s->T * s->N)
    return dl_layer_error(l, DL_ECONFIG, "x changed shape after setup (was %d x %d x %d)", s->T,
                          s->N, s->D);
  int T = s->T, N = s->N, H = s->H, TN = T * N;
  size_t NH = (size_t)N * H;
  dev_bufs d = device_buffers(s);
  const float *x = dl_gpu_cdata(bottom[0]), *cont = dl_gpu_cdata(bottom[1]); // (T*N, D), (T, N)
  const float *wx = dl_gpu_cdata(l->params[DL_REC_WX]), *wh = dl_gpu_cdata(l->params[DL_REC_WH]);
  const float *b = dl_gpu_cdata(l->params[DL_REC_B]); // (4H)
  float *h = dl_gpu_data(top[0]);                     // (T, N, H)
  if (!d.gates || !x || !cont || !wx || !wh || !b || !h) return dl_gpu_error();
  dl_status st = dl_mem_gpu_upload(d.h_state, s->h_state, NH);
  if (!st) st = dl_mem_gpu_upload(d.c_state, s->c_state, NH);
  if (st) return st;
  unsigned blocks = dl_gpu_blocks(NH);
  dl_gpu_gemm(0, 1, TN, 4 * H, s->D, 1.0f, x, wx, 0.0f, d.gates);
  cont_rows_kernel<<<blocks, DL_GPU_THREADS, 0, dl_gpu_stream()>>>(N, H, cont, d.h_state,
                                                                    d.c_state, d.hprev, d.cprev);
  for (int t = 0; t < T; t++) {
    float *g = d.gates + (size_t)t * N * 4 * H;
    dl_gpu_gemm(0, 1, N, 4 * H, H, 1.0f, d.hprev + t * NH, wh, 1.0f, g);
    int last = t + 1 == T;
    float *hn = last ? d.h_state : d.hprev + (t + 1) * NH;
    float *cn = last ? d.c_state : d.cprev + (t + 1) * NH;
    cell_kernel<<<blocks, DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
        N, H, g, b, d.cprev + t * NH, d.tanh_c + t * NH, h + t * NH, hn, cn,
        last ? NULL : cont + (size_t)(t + 1) * N);
  }
  if ((st = CHECK_LAUNCH())) return st;
  st = dl_mem_gpu_download(s->h_state, d.h_state, NH); // waits for the steps
  if (!st) st = dl_mem_gpu_download(s->c_state, d.c_state, NH);
  return st ? st : dl_gpu_error();
}

extern "C" void dl_lstm_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                     const int *propagate_down, dl_blob *const *bottom, int) {
  dl_rec *s = (dl_rec *)l->priv;
  int T = s->T, N = s->N, H = s->H, TN = T * N;
  size_t NH = (size_t)N * H;
  dev_bufs d = device_buffers(s); // as forward left them
  const float *x = dl_gpu_cdata(bottom[0]), *cont = dl_gpu_cdata(bottom[1]);
  const float *wx = dl_gpu_cdata(l->params[DL_REC_WX]), *wh = dl_gpu_cdata(l->params[DL_REC_WH]);
  const float *dtop = dl_gpu_cdiff(top[0]); // (T, N, H)
  float *dwx = dl_gpu_diff(l->params[DL_REC_WX]), *dwh = dl_gpu_diff(l->params[DL_REC_WH]);
  float *db = dl_gpu_diff(l->params[DL_REC_B]);
  if (!d.gates || !x || !cont || !wx || !wh || !dtop || !dwx || !dwh || !db) return;
  if (dl_mem_gpu_zero(d.dh_rec, NH) || dl_mem_gpu_zero(d.dc_rec, NH)) return;
  unsigned blocks = dl_gpu_blocks(NH);
  for (int t = T - 1; t >= 0; t--) {
    float *g = d.gates + (size_t)t * N * 4 * H;
    cell_backward_kernel<<<blocks, DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
        N, H, g, d.cprev + t * NH, d.tanh_c + t * NH, dtop + t * NH, d.dh_rec, d.dc_rec,
        t + 1 < T ? cont + (size_t)(t + 1) * N : NULL, cont + (size_t)t * N);
    if (t > 0) dl_gpu_gemm(0, 0, N, H, 4 * H, 1.0f, g, wh, 0.0f, d.dh_rec);
  }
  if (CHECK_LAUNCH()) return;
  dl_gpu_gemm(1, 0, 4 * H, s->D, TN, 1.0f, d.gates, x, 1.0f, dwx);
  dl_gpu_gemm(1, 0, 4 * H, H, TN, 1.0f, d.gates, d.hprev, 1.0f, dwh);
  dl_gpu_col_sum_add(TN, 4 * H, d.gates, db);
  if (propagate_down[0]) {
    float *dx = dl_gpu_diff(bottom[0]);
    if (dx) dl_gpu_gemm(0, 0, TN, s->D, 4 * H, 1.0f, d.gates, wx, 0.0f, dx);
  }
}
