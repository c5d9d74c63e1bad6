/* SoftmaxWithLoss: softmax over `axis` then the mean negative log-likelihood
 * of the labels, in one layer because the fused gradient p - onehot(label) is
 * both cheaper and more stable than chaining Softmax and a log loss. */
#include <math.h>
#include <stdlib.h>

#include "core/math.h"
#include "core/parallel.h"
#include "core/vmath.h"
#include "layers/softmax_loss.h"

static const char *const norm_names[] = {"valid", "batch_size", "full", "none", NULL};

static const dl_param_spec sl_schema[] = {
    DL_P_INT(sl_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "the class axis of the scores (1 for N x C; 2 for per-step T x N x V outputs)",
             "softmax_param { axis }"),
    DL_P_INT(sl_param, ignore_label, "-1", -(1 << 30), 1 << 30,
             "samples with this label add no loss and no gradient (-1: none, since labels are "
             "never negative)",
             "loss_param { ignore_label }"),
    DL_P_ENUM(sl_param, normalization, "valid", norm_names,
              "divide the summed loss by: valid = the labels not ignored, batch_size = axis-0 "
              "size, full = all labels, none = 1",
              "loss_param { normalization }"),
    DL_P_BOOL(sl_param, perplexity, "false",
              "also report exp(mean loss), the perplexity of a language model, in test results "
              "(log and metrics) and the training display; needs normalization valid or full",
              "(none)"),
    DL_SPEC_END};

static dl_status sl_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                          int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const sl_param *p = l->param;
  if (p->perplexity && p->normalization != NORM_VALID && p->normalization != NORM_FULL)
    return dl_layer_error(l, DL_ECONFIG,
                          "perplexity is exp(the mean loss per label): it needs normalization "
                          "valid or full, not %s",
                          norm_names[p->normalization]);
  sl_priv *s = calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  s->prob = dl_blob_new("prob");
  s->gpu_norm = dl_mem_new(1);
  return s->prob && s->gpu_norm ? DL_OK : DL_ENOMEM;
}

static dl_status sl_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb;
  const sl_param *p = l->param;
  sl_priv *s = l->priv;
  int axis = dl_blob_axis(bottom[0], p->axis);
  if (axis < 0)
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for %d-axis scores", p->axis,
                          bottom[0]->ndim);
  s->outer = (int)dl_blob_count_range(bottom[0], 0, axis);
  s->C = bottom[0]->shape[axis];
  s->inner = (int)dl_blob_count_range(bottom[0], axis + 1, bottom[0]->ndim);
  if (bottom[1]->count != (size_t)s->outer * s->inner) {
    char a[128], b[128];
    return dl_layer_error(l, DL_ECONFIG,
                          "scores %s need %d labels (one per position outside axis %d), but the "
                          "label blob %s has %zu",
                          dl_blob_shape_str(bottom[0], a, sizeof a), s->outer * s->inner, axis,
                          dl_blob_shape_str(bottom[1], b, sizeof b), bottom[1]->count);
  }
  if (s->outer > s->rows_cap) {
    free(s->row_max), free(s->row_sum);
    s->row_max = malloc((size_t)s->outer * sizeof(float));
    s->row_sum = malloc((size_t)s->outer * sizeof(float));
    s->rows_cap = s->row_max && s->row_sum ? s->outer : 0;
    if (!s->rows_cap) return DL_ENOMEM;
  }
  dl_status st = dl_blob_reshape_like(s->prob, bottom[0]);
  if (!st) st = dl_blob_reshape(top[0], 0, NULL);
  if (!st && nt > 1) st = dl_blob_reshape_like(top[1], bottom[0]);
  return st;
}

static float sl_normalizer(const sl_param *p, const sl_priv *s, const dl_blob *scores, int valid) {
  float n = 1;
  switch (p->normalization) {
  case NORM_VALID: n = (float)valid; break;
  case NORM_BATCH_SIZE: n = (float)scores->shape[0]; break;
  case NORM_FULL: n = (float)s->outer * (float)s->inner; break;
  default: break;
  }
  return n > 1 ? n : 1; /* all labels ignored: loss 0, not NaN */
}

static dl_status bad_label(dl_layer *l, int y, int position, int C) {
  return dl_layer_error(l, DL_EDATA,
                        "label %d at position %d is outside [0, %d) (the number of classes on "
                        "the score axis)",
                        y, position, C);
}

dl_status dl_softmax_loss_check_labels(dl_layer *l, const float *label) {
  const sl_param *p = l->param;
  const sl_priv *s = l->priv;
  for (int k = 0; k < s->outer * s->inner; k++) {
    int y = (int)label[k];
    if (y != p->ignore_label && (y < 0 || y >= s->C)) return bad_label(l, y, k, s->C);
  }
  return DL_OK;
}

/* The label's probability at (o, i): stored, or made again from the row's
 * max and sum with dl_softmax's arithmetic (the same bits). */
static float label_prob(const sl_priv *s, const float *x, const float *prob, int o, int i, int y) {
  size_t at = ((size_t)o * s->C + y) * s->inner + i;
  if (s->prob_kept) return prob[at];
  return dl_vexp(x[at] - s->row_max[o]) * (1.0f / s->row_sum[o]);
}

/* Without stored probabilities the forward reads the scores once and writes
 * nothing, and backward makes them again while it writes the gradient (the
 * LSTM's 4096 x 10,000 at one thread: 30 -> 27.5 ms for the two, and 164 MB
 * less memory; docs/benchmarks.md). */
static dl_status sl_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb;
  const sl_param *p = l->param;
  sl_priv *s = l->priv;
  const float *label = dl_cdata(bottom[1]); /* (outer x inner) */
  const float *x = dl_cdata(bottom[0]), *prob = NULL;
  s->prob_kept = s->inner != 1 || nt > 1;
  if (s->prob_kept)
    dl_softmax(s->outer, s->C, s->inner, x, dl_data(s->prob)), prob = dl_cdata(s->prob);
  else
    dl_softmax_stats(s->outer, s->C, x, s->row_max, s->row_sum);
  double loss = 0;
  int valid = 0;
  for (int o = 0; o < s->outer; o++)
    for (int i = 0; i < s->inner; i++) {
      int y = (int)label[(size_t)o * s->inner + i];
      if (y == p->ignore_label) continue;
      if (y < 0 || y >= s->C) return bad_label(l, y, o * s->inner + i, s->C);
      float py = label_prob(s, x, prob, o, i, y);
      loss -= log(fmax(py, 1.1754944e-38)); /* FLT_MIN: log(0) would be -inf */
      valid++;
    }
  s->norm = sl_normalizer(p, s, bottom[0], valid);
  dl_data(top[0])[0] = (float)(loss / s->norm);
  if (nt > 1) dl_copy(s->prob->count, prob, dl_data(top[1]));
  return DL_OK;
}

/* dx = (p - onehot(label)) * dloss / norm; zero where the label is ignored.
 * Rows (outer) are independent: the threads take ranges of them (a 10,000-class
 * LM output is 45M values, memory-bound). */
typedef struct {
  const sl_param *p;
  const sl_priv *s;
  const float *label, *prob, *x;
  float *dx, scale;
} sl_back_job;

static void sl_backward_rows(void *arg, int o0, int o1) {
  const sl_back_job *j = arg;
  const sl_priv *s = j->s;
  size_t plane = (size_t)s->C * s->inner;
  for (int o = o0; o < o1; o++) {
    float *dxo = j->dx + o * plane;
    if (s->prob_kept) {
      const float *po = j->prob + o * plane;
      for (size_t k = 0; k < plane; k++)
        dxo[k] = po[k] * j->scale;
    } else {
      dl_softmax_row_scaled(s->C, j->x + o * plane, s->row_max[o], s->row_sum[o], j->scale, dxo);
    }
    for (int i = 0; i < s->inner; i++) {
      int y = (int)j->label[(size_t)o * s->inner + i];
      if (y == j->p->ignore_label) {
        for (int c = 0; c < s->C; c++) dxo[(size_t)c * s->inner + i] = 0;
        continue;
      }
      dxo[(size_t)y * s->inner + i] -= j->scale;
    }
  }
}

static void sl_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                        dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const sl_priv *s = l->priv;
  sl_back_job j = {l->param,
                   s,
                   dl_cdata(bottom[1]),
                   s->prob_kept ? dl_cdata(s->prob) : NULL,
                   dl_cdata(bottom[0]),
                   dl_diff(bottom[0]),
                   dl_cdiff(top[0])[0] / s->norm};
  /* at least 64K values a part: smaller losses are not worth a thread */
  int per = (int)(65536 / ((size_t)s->C * s->inner) + 1);
  dl_parallel_for(s->outer, per, sl_backward_rows, &j);
}

static int sl_num_classes(const dl_layer *l) { return ((const sl_priv *)l->priv)->C; }
static int sl_reports_perplexity(const dl_layer *l) {
  return ((const sl_param *)l->param)->perplexity;
}

static void sl_destroy(dl_layer *l) {
  sl_priv *s = l->priv;
  if (!s) return;
  dl_blob_free(s->prob);
  dl_mem_release(s->gpu_norm);
  free(s->row_max), free(s->row_sum);
  free(s);
}

const dl_layer_ops dl_layer_softmax_loss = {
    .type = "SoftmaxWithLoss",
    .summary = "softmax then multinomial logistic loss (cross-entropy) against integer labels",
    .schema = sl_schema,
    .param_size = sizeof(sl_param),
    .min_bottoms = 2, .max_bottoms = 2, .min_tops = 1, .max_tops = 2,
    .bottoms_doc = "scores: outer x C x inner (C classes on `axis`); labels: outer x inner "
                   "class indices",
    .tops_doc = "loss: a scalar; optional second top: the probabilities",
    .flags = DL_LAYER_LOSS,
    .no_grad_bottoms = 1u << 1,
    .setup = sl_setup,
    .reshape = sl_reshape,
    .forward = sl_forward,
    .backward = sl_backward,
    .destroy = sl_destroy,
    .num_classes = sl_num_classes,
    .reports_perplexity = sl_reports_perplexity,
#ifdef DL_GPU
    .forward_gpu = dl_softmax_loss_forward_gpu,
    .backward_gpu = dl_softmax_loss_backward_gpu,
#endif
};
