/* Accuracy: the fraction of positions whose label is among the top_k scores.
 * Ties count against the label (a score equal to the label's is not "above"
 * it), as in Caffe. No backward. */
#include <stdlib.h>

#include "layers/accuracy.h"

static const dl_param_spec acc_schema[] = {
    DL_P_INT(acc_param, top_k, "1", 1, 1 << 30, "count a hit when the label is among the k best",
             "accuracy_param { top_k }"),
    DL_P_INT(acc_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1, "the class axis of the scores",
             "accuracy_param { axis }"),
    DL_P_INT(acc_param, ignore_label, "-1", -(1 << 30), 1 << 30,
             "positions with this label are not counted (-1: none)",
             "accuracy_param { ignore_label }"),
    DL_SPEC_END};

dl_status dl_accuracy_dims(dl_layer *l, dl_blob *const *bottom, acc_dims *d) {
  const acc_param *p = l->param;
  int axis = dl_blob_axis(bottom[0], p->axis);
  if (axis < 0)
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for %d-axis scores", p->axis,
                          bottom[0]->ndim);
  d->outer = (int)dl_blob_count_range(bottom[0], 0, axis);
  d->C = bottom[0]->shape[axis];
  d->inner = (int)dl_blob_count_range(bottom[0], axis + 1, bottom[0]->ndim);
  return DL_OK;
}

static dl_status acc_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  const acc_param *p = l->param;
  acc_dims d;
  dl_status st = dl_accuracy_dims(l, bottom, &d);
  if (st) return st;
  if (bottom[1]->count != (size_t)d.outer * d.inner) {
    char a[128], b[128];
    return dl_layer_error(l, DL_ECONFIG, "scores %s need %d labels, but the label blob %s has %zu",
                          dl_blob_shape_str(bottom[0], a, sizeof a), d.outer * d.inner,
                          dl_blob_shape_str(bottom[1], b, sizeof b), bottom[1]->count);
  }
  if (!l->priv && !(l->priv = dl_calloc(1, sizeof(int)))) return DL_ENOMEM;
  *(int *)l->priv = d.C; /* for the net's label check */
  if (p->top_k > d.C)
    return dl_layer_error(l, DL_ECONFIG, "top_k %d is more than the %d classes", p->top_k, d.C);
  return dl_blob_reshape(top[0], 0, NULL);
}

dl_status dl_accuracy_check_labels(dl_layer *l, const acc_dims *d, const float *label) {
  const acc_param *p = l->param;
  for (size_t k = 0; k < (size_t)d->outer * d->inner; k++) {
    int y = (int)label[k];
    if (y != p->ignore_label && (y < 0 || y >= d->C))
      return dl_layer_error(l, DL_EDATA, "label %d is outside [0, %d)", y, d->C);
  }
  return DL_OK;
}

static dl_status acc_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)nb, (void)nt;
  const acc_param *p = l->param;
  acc_dims d;
  dl_accuracy_dims(l, bottom, &d);
  const float *x = dl_cdata(bottom[0]), *label = dl_cdata(bottom[1]);
  int hits = 0, counted = 0;
  for (int o = 0; o < d.outer; o++)
    for (int i = 0; i < d.inner; i++) {
      int y = (int)label[(size_t)o * d.inner + i];
      if (y == p->ignore_label) continue;
      if (y < 0 || y >= d.C)
        return dl_layer_error(l, DL_EDATA, "label %d is outside [0, %d)", y, d.C);
      const float *xs = x + (size_t)o * d.C * d.inner + i; /* (C), stride inner */
      float target = xs[(size_t)y * d.inner];
      int above = 0;
      for (int c = 0; c < d.C && above < p->top_k; c++)
        above += xs[(size_t)c * d.inner] > target;
      hits += above < p->top_k;
      counted++;
    }
  dl_data(top[0])[0] = counted ? (float)hits / (float)counted : 0.0f;
  return DL_OK;
}

static int acc_num_classes(const dl_layer *l) { return l->priv ? *(const int *)l->priv : -1; }

static void acc_destroy(dl_layer *l) { free(l->priv); }

const dl_layer_ops dl_layer_accuracy = {
    .type = "Accuracy",
    .summary = "fraction of labels among the top_k scores (test metric, no gradient)",
    .schema = acc_schema,
    .param_size = sizeof(acc_param),
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "scores: outer x C x inner; labels: outer x inner",
    .tops_doc = "accuracy: a scalar in [0, 1]",
    .no_grad_bottoms = 3,
    .reshape = acc_reshape,
    .forward = acc_forward,
    .destroy = acc_destroy,
    .num_classes = acc_num_classes,
#ifdef DL_GPU
    .forward_gpu = dl_accuracy_forward_gpu,
#endif
};
