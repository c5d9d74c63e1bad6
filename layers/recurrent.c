/* The parts LSTM and RNN share (layers/recurrent.h): parameters, buffers,
 * carried state and the big GEMMs; each layer adds its per-step gate math. */
#include "layers/recurrent.h"

#include <stdlib.h>

#include "core/filler.h"
#include "core/math.h"
#ifdef DL_GPU
#include "core/gpu.h"
#endif

static dl_status check_bottoms(dl_layer *l, dl_blob *const *bottom) {
  const dl_blob *x = bottom[0], *cont = bottom[1];
  char a[128], b[128];
  if (x->ndim < 2)
    return dl_layer_error(l, DL_ECONFIG, "x must be T x N x ... (time, batch, features), got %s",
                          dl_blob_shape_str(x, a, sizeof a));
  if (cont->ndim != 2 || cont->shape[0] != x->shape[0] || cont->shape[1] != x->shape[1])
    return dl_layer_error(l, DL_ECONFIG,
                          "cont must be T x N = %d x %d (one 0/1 flag per step and sequence, "
                          "like x's first two axes %s), got %s",
                          x->shape[0], x->shape[1], dl_blob_shape_str(x, b, sizeof b),
                          dl_blob_shape_str(cont, a, sizeof a));
  return DL_OK;
}

static dl_status add_params(dl_layer *l, int G, int D) {
  const dl_rec_param *p = l->param;
  int H = p->num_output, rows = G * H;
  static const char *const names[] = {"weight_x", "bias", "weight_h"};
  const dl_filler *fill[] = {&p->weight_filler, &p->bias_filler, &p->weight_filler};
  int cols[] = {D, 0, H};
  for (int k = DL_REC_WX; k <= DL_REC_WH; k++) {
    dl_blob *b;
    dl_rng rng;
    dl_status st = k == DL_REC_B ? dl_layer_add_param(l, names[k], 1, &rows, &b)
                                 : dl_layer_add_param(l, names[k], 2, (int[]){rows, cols[k]}, &b);
    if (st) return st;
    dl_layer_rng(l, k, &rng);
    dl_fill(fill[k], b, &rng);
  }
  if (G == 4) { /* gate blocks i, f, o, g: the forget gate is block 1 */
    float *b = dl_data(l->params[DL_REC_B]) + H;
    for (int j = 0; j < H; j++)
      b[j] += p->forget_bias;
  }
  return DL_OK;
}

dl_status dl_rec_setup(dl_layer *l, dl_blob *const *bottom, int G, int cell) {
  const dl_rec_param *p = l->param;
  dl_status st = check_bottoms(l, bottom);
  if (st) return st;
  size_t D = dl_blob_count_range(bottom[0], 2, bottom[0]->ndim);
  if (D > (size_t)1 << 30 || (size_t)G * (size_t)p->num_output > (size_t)1 << 30)
    return dl_layer_error(l, DL_ECONFIG, "%zu inputs and %d outputs per step: too large", D,
                          p->num_output);
  dl_rec *s = dl_calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  s->G = G;
  s->cell = cell;
  s->D = (int)D;
  s->H = p->num_output;
  return add_params(l, G, s->D);
}

/* One block holds every (T, N, .) buffer; four small ones the (N, H) rows. */
static dl_status alloc_buffers(dl_rec *s) {
  size_t seq = (size_t)s->T * s->N * s->H;
  size_t need = seq * (size_t)(s->G + 1 + 2 * s->cell);
  if (need > s->cap_seq) {
    free(s->gates);
    s->gates = dl_malloc(need * sizeof(float));
    s->cap_seq = s->gates ? need : 0;
    if (!s->gates) return DL_ENOMEM;
  }
  s->hprev = s->gates + seq * s->G;
  s->cprev = s->cell ? s->hprev + seq : NULL;
  s->tanh_c = s->cell ? s->cprev + seq : NULL;
  if (s->N <= s->cap_n) return DL_OK;
  float **rows[] = {&s->h_state, &s->c_state, &s->dh_rec, &s->dc_rec};
  for (int k = 0; k < 4; k++) {
    free(*rows[k]);
    *rows[k] = dl_calloc((size_t)s->N * s->H, sizeof(float));
    if (!*rows[k]) return DL_ENOMEM;
  }
  s->cap_n = s->N;
  return DL_OK;
}

dl_status dl_rec_reshape(dl_layer *l, dl_blob *const *bottom, dl_blob *const *top) {
  dl_rec *s = l->priv;
  dl_status st = check_bottoms(l, bottom);
  if (st) return st;
  size_t D = dl_blob_count_range(bottom[0], 2, bottom[0]->ndim);
  if (D != (size_t)s->D) {
    char a[128];
    return dl_layer_error(l, DL_ECONFIG, "x %s has %zu features per step, but W_x expects %d",
                          dl_blob_shape_str(bottom[0], a, sizeof a), D, s->D);
  }
  s->T = bottom[0]->shape[0];
  s->N = bottom[0]->shape[1];
  if ((size_t)s->T * s->N * s->G * s->H > DL_MAX_BLOB_COUNT)
    return dl_layer_error(l, DL_ECONFIG, "T x N = %d x %d is too many steps for %d gates", s->T,
                          s->N, s->G * s->H);
  if ((st = alloc_buffers(s))) return st;
  if (s->state_n != s->N) { /* a new batch size: nothing to carry over */
    memset(s->h_state, 0, (size_t)s->N * s->H * sizeof(float));
    memset(s->c_state, 0, (size_t)s->N * s->H * sizeof(float));
    s->state_n = s->N;
  }
  return dl_blob_reshape(top[0], 3, (int[]){s->T, s->N, s->H});
}

/* hp (N, H) = cont (N) * state (N, H), row by row. */
static void cont_rows(int N, int H, const float *cont, const float *state, float *hp) {
  for (int n = 0; n < N; n++)
    for (int j = 0; j < H; j++)
      hp[(size_t)n * H + j] = cont[n] * state[(size_t)n * H + j];
}

dl_status dl_rec_forward_begin(dl_layer *l, dl_blob *const *bottom) {
  dl_rec *s = l->priv;
  if (bottom[0]->count != (size_t)s->T * s->N * s->D || bottom[1]->count != (size_t)s->T * s->N) {
    char a[128];
    return dl_layer_error(l, DL_ECONFIG, "x changed shape to %s after setup (was %d x %d x %d)",
                          dl_blob_shape_str(bottom[0], a, sizeof a), s->T, s->N, s->D);
  }
  const float *x = dl_cdata(bottom[0]);    /* (T*N, D) */
  const float *cont = dl_cdata(bottom[1]); /* (T, N) */
  int TN = s->T * s->N, GH = s->G * s->H;
  dl_gemm(0, 1, TN, GH, s->D, 1.0f, x, dl_cdata(l->params[DL_REC_WX]), 0.0f, s->gates);
  cont_rows(s->N, s->H, cont, s->h_state, s->hprev);
  if (s->cell) cont_rows(s->N, s->H, cont, s->c_state, s->cprev);
  return DL_OK;
}

void dl_rec_step_gemm(dl_layer *l, int t) {
  dl_rec *s = l->priv;
  size_t NH = (size_t)s->N * s->H;
  int GH = s->G * s->H;
  float *g = s->gates + (size_t)t * s->N * GH; /* (N, G*H) */
  dl_gemm(0, 1, s->N, GH, s->H, 1.0f, s->hprev + t * NH, dl_cdata(l->params[DL_REC_WH]), 1.0f, g);
}

float *dl_rec_next_h(dl_rec *s, int t) {
  return t + 1 < s->T ? s->hprev + (size_t)(t + 1) * s->N * s->H : s->h_state;
}

float *dl_rec_next_c(dl_rec *s, int t) {
  return t + 1 < s->T ? s->cprev + (size_t)(t + 1) * s->N * s->H : s->c_state;
}

void dl_rec_backward_begin(dl_layer *l) {
  dl_rec *s = l->priv;
  memset(s->dh_rec, 0, (size_t)s->N * s->H * sizeof(float));
  memset(s->dc_rec, 0, (size_t)s->N * s->H * sizeof(float));
}

void dl_rec_backward_step_gemm(dl_layer *l, int t) {
  dl_rec *s = l->priv;
  if (t == 0) return; /* no gradient into the carried state */
  int GH = s->G * s->H;
  const float *dg = s->gates + (size_t)t * s->N * GH; /* (N, G*H) */
  dl_gemm(0, 0, s->N, s->H, GH, 1.0f, dg, dl_cdata(l->params[DL_REC_WH]), 0.0f, s->dh_rec);
}

/* y (len) += x (len); called with len DL_VBLOCK, so it vectorizes. */
DL_VINLINE void add_row(int len, const float *restrict x, float *restrict y) {
  for (int j = 0; j < len; j++)
    y[j] += x[j];
}

/* db (G*H) += sum over the T*N rows of dG */
static void bias_grad(size_t rows, int GH, const float *dg, float *db) {
  for (size_t r = 0; r < rows; r++) {
    const float *row = dg + r * GH; /* (G*H) */
    int j = 0;
    for (; j + DL_VBLOCK <= GH; j += DL_VBLOCK)
      add_row(DL_VBLOCK, row + j, db + j);
    add_row(GH - j, row + j, db + j);
  }
}

void dl_rec_backward_end(dl_layer *l, const int *propagate_down, dl_blob *const *bottom) {
  dl_rec *s = l->priv;
  int TN = s->T * s->N, GH = s->G * s->H;
  const float *dg = s->gates;           /* (T*N, G*H) */
  const float *x = dl_cdata(bottom[0]); /* (T*N, D) */
  dl_gemm(1, 0, GH, s->D, TN, 1.0f, dg, x, 1.0f, dl_diff(l->params[DL_REC_WX]));
  dl_gemm(1, 0, GH, s->H, TN, 1.0f, dg, s->hprev, 1.0f, dl_diff(l->params[DL_REC_WH]));
  bias_grad((size_t)TN, GH, dg, dl_diff(l->params[DL_REC_B]));
  if (propagate_down[0])
    dl_gemm(0, 0, TN, s->D, GH, 1.0f, dg, dl_cdata(l->params[DL_REC_WX]), 0.0f, dl_diff(bottom[0]));
}

void dl_rec_destroy(dl_layer *l) {
  dl_rec *s = l->priv;
  if (!s) return;
  free(s->gates); /* hprev, cprev and tanh_c live in the same block */
  free(s->h_state);
  free(s->c_state);
  free(s->dh_rec);
  free(s->dc_rec);
#ifdef DL_GPU
  if (s->dev) dl_mem_gpu_free(s->dev);
#endif
  free(s);
}

double dl_rec_flops(const dl_layer *l) {
  const dl_rec *s = l->priv;
  return 2.0 * s->T * s->N * (double)s->G * s->H * (double)(s->D + s->H);
}

size_t dl_rec_state_size(dl_layer *l) {
  const dl_rec *s = l->priv;
  return s ? (size_t)s->state_n * s->H * (size_t)(1 + s->cell) : 0;
}

void dl_rec_get_state(dl_layer *l, float *state) {
  const dl_rec *s = l->priv;
  size_t NH = (size_t)s->state_n * s->H;
  if (!NH) return;
  memcpy(state, s->h_state, NH * sizeof(float));
  if (s->cell) memcpy(state + NH, s->c_state, NH * sizeof(float));
}

dl_status dl_rec_set_state(dl_layer *l, const float *state, size_t n) {
  dl_rec *s = l->priv;
  size_t want = dl_rec_state_size(l), NH = (size_t)s->state_n * s->H;
  if (n != want)
    return dl_layer_error(l, DL_ECONFIG,
                          "the saved recurrent state holds %zu floats, but this layer carries "
                          "%zu (%s N x H = %d x %d); it was saved with another batch size or "
                          "num_output",
                          n, want, s->cell ? "h and c, each" : "h,", s->state_n, s->H);
  if (!NH) return DL_OK;
  memcpy(s->h_state, state, NH * sizeof(float));
  if (s->cell) memcpy(s->c_state, state + NH, NH * sizeof(float));
  return DL_OK;
}
