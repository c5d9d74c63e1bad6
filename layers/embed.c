/* Embed (as Caffe): a learned lookup table. Each input value is a token index
 * k in [0, V) and selects row k of the weight W (V x D): y[..., :] = W[k, :]
 * (+ b). Equal to an InnerProduct on one-hot inputs, without building them. */
#include <stdlib.h>
#include <string.h>

#include "core/filler.h"
#include "core/layer.h"
#include "core/math.h"
#include "layers/embed.h"

static const dl_param_spec embed_schema[] = {
    DL_P_INT(embed_param, num_output, NULL, 1, 1 << 30, "embedding size D (columns of W)",
             "embed_param { num_output }"),
    DL_P_INT(embed_param, input_dim, NULL, 1, 1 << 30,
             "vocabulary size V: inputs must be integers in [0, V)", "embed_param { input_dim }"),
    DL_P_BOOL(embed_param, bias_term, "false",
              "learn a bias b (D) added to every looked-up row; off by default (Caffe's default "
              "is true) because the next layer (LSTM, InnerProduct) has its own bias",
              "embed_param { bias_term }"),
    DL_P_FILLER(embed_param, weight_filler, "{type: uniform, min: -0.1, max: 0.1}",
                "initial W (V x D); uniform +-0.1 as in the usual word-level language models "
                "(Zaremba et al., the DLBench LSTM)",
                "embed_param { weight_filler }"),
    DL_P_FILLER(embed_param, bias_filler, "{type: constant, value: 0}", "initial b",
                "embed_param { bias_filler }"),
    DL_SPEC_END};

static dl_status embed_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const embed_param *p = l->param;
  if (!(l->priv = dl_calloc(1, sizeof(embed_priv)))) return DL_ENOMEM;
  if ((size_t)p->input_dim * (size_t)p->num_output > DL_MAX_BLOB_COUNT)
    return dl_layer_error(l, DL_ECONFIG, "a %d x %d table is over the blob size limit",
                          p->input_dim, p->num_output);
  dl_blob *w, *b;
  dl_rng rng;
  dl_status st = dl_layer_add_param(l, "weight", 2, (int[]){p->input_dim, p->num_output}, &w);
  if (st) return st;
  dl_layer_rng(l, 0, &rng);
  dl_fill(&p->weight_filler, w, &rng);
  if (!p->bias_term) return DL_OK;
  if ((st = dl_layer_add_param(l, "bias", 1, (int[]){p->num_output}, &b))) return st;
  dl_layer_rng(l, 1, &rng);
  dl_fill(&p->bias_filler, b, &rng);
  return DL_OK;
}

static dl_status embed_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nb, (void)nt;
  const embed_param *p = l->param;
  const dl_blob *x = bottom[0];
  if (x->ndim >= DL_MAX_AXES)
    return dl_layer_error(l, DL_ECONFIG, "input has %d axes; the output adds one, at most %d",
                          x->ndim, DL_MAX_AXES);
  int shape[DL_MAX_AXES];
  for (int i = 0; i < x->ndim; i++)
    shape[i] = x->shape[i];
  shape[x->ndim] = p->num_output;
  return dl_blob_reshape(top[0], x->ndim + 1, shape);
}

dl_status dl_embed_check(dl_layer *l, const float *x, size_t M) {
  const embed_param *p = l->param;
  for (size_t i = 0; i < M; i++) {
    float v = x[i];
    if (!(v >= 0 && v < (float)p->input_dim) || v != (float)(int)v)
      return dl_layer_error(l, DL_EDATA,
                            "index %g at position %zu is not an integer in [0, %d) (input_dim, "
                            "the vocabulary size)",
                            (double)v, i, p->input_dim);
  }
  return DL_OK;
}

static void embed_destroy(dl_layer *l) {
  embed_priv *e = l->priv;
  if (!e) return;
#ifdef DL_GPU
  dl_embed_gpu_free(e);
#endif
  free(e);
  l->priv = NULL;
}

/* y[i, :] = W[x[i], :] (+ b). Indices are checked here, not trusted: a bad
 * token id is a data error naming the value and its position. */
static dl_status embed_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nb, (void)nt;
  const embed_param *p = l->param;
  const float *x = dl_cdata(bottom[0]);    /* (M) token indices */
  const float *w = dl_cdata(l->params[0]); /* (V, D) */
  float *y = dl_data(top[0]);              /* (M, D) */
  size_t M = bottom[0]->count, D = (size_t)p->num_output;
  dl_status st = dl_embed_check(l, x, M);
  if (st) return st;
  for (size_t i = 0; i < M; i++)
    memcpy(y + i * D, w + (size_t)x[i] * D, D * sizeof *y);
  if (p->bias_term) {
    const float *b = dl_cdata(l->params[1]); /* (D) */
    for (size_t i = 0; i < M; i++)
      dl_axpy(D, 1.0f, b, y + i * D);
  }
  return DL_OK;
}

/* dW[x[i], :] += dy[i, :];  db += sum_i dy[i, :]. No gradient to the indices. */
static void embed_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                           dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb, (void)propagate_down;
  const embed_param *p = l->param;
  const float *x = dl_cdata(bottom[0]); /* (M), checked by forward */
  const float *dy = dl_cdiff(top[0]);   /* (M, D) */
  float *dw = dl_diff(l->params[0]);    /* (V, D) */
  size_t M = bottom[0]->count, D = (size_t)p->num_output;
  for (size_t i = 0; i < M; i++)
    dl_axpy(D, 1.0f, dy + i * D, dw + (size_t)x[i] * D);
  if (p->bias_term) {
    float *db = dl_diff(l->params[1]); /* (D) */
    for (size_t i = 0; i < M; i++)
      dl_axpy(D, 1.0f, dy + i * D, db);
  }
}

const dl_layer_ops dl_layer_embed = {
    .type = "Embed",
    .summary = "lookup table: each integer index k in [0, input_dim) becomes row k of W",
    .schema = embed_schema,
    .param_size = sizeof(embed_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "indices: any shape (e.g. T x N token ids), integer values in [0, input_dim)",
    .tops_doc = "y: the input shape x num_output",
    .no_grad_bottoms = 1u << 0,
    .destroy = embed_destroy,
#ifdef DL_GPU
    .forward_gpu = dl_embed_forward_gpu,
    .backward_gpu = dl_embed_backward_gpu,
#endif
    .setup = embed_setup,
    .reshape = embed_reshape,
    .forward = embed_forward,
    .backward = embed_backward,
};
