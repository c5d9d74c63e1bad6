/* EuclideanLoss: sum of squared differences / (2 N), N the size of axis 0
 * (Caffe's definition; PyTorch's MSELoss(reduction='sum') / (2 N)). */
#include <stdlib.h>

#include "core/math.h"
#include "layers/euclidean_loss.h"

static dl_status el_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                          int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  el_priv *s = calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  l->priv = s;
  s->diff = dl_blob_new("diff");
  return s->diff ? DL_OK : DL_ENOMEM;
}

static dl_status el_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)nt;
  el_priv *s = l->priv;
  if (bottom[0]->count != bottom[1]->count || bottom[0]->shape[0] != bottom[1]->shape[0]) {
    char a[128], b[128];
    return dl_layer_error(l, DL_ECONFIG, "the two inputs must have the same size: %s vs %s",
                          dl_blob_shape_str(bottom[0], a, sizeof a),
                          dl_blob_shape_str(bottom[1], b, sizeof b));
  }
  dl_status st = dl_blob_reshape_like(s->diff, bottom[0]);
  return st ? st : dl_blob_reshape(top[0], 0, NULL);
}

static dl_status el_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)nt;
  el_priv *s = l->priv;
  const float *a = dl_cdata(bottom[0]), *b = dl_cdata(bottom[1]);
  float *d = dl_data(s->diff); /* (count) */
  double sum = 0;
  for (size_t i = 0; i < s->diff->count; i++) {
    d[i] = a[i] - b[i];
    sum += (double)d[i] * d[i];
  }
  dl_data(top[0])[0] = (float)(sum / (2.0 * bottom[0]->shape[0]));
  return DL_OK;
}

/* da = (a - b) dloss / N; db = -da. */
static void el_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                        dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  el_priv *s = l->priv;
  float scale = dl_cdiff(top[0])[0] / (float)bottom[0]->shape[0];
  for (int k = 0; k < 2; k++)
    if (propagate_down[k])
      dl_axpby(s->diff->count, k == 0 ? scale : -scale, dl_cdata(s->diff), 0.0f,
               dl_diff(bottom[k]));
}

static void el_destroy(dl_layer *l) {
  el_priv *s = l->priv;
  if (!s) return;
  dl_blob_free(s->diff);
  free(s);
}

const dl_layer_ops dl_layer_euclidean_loss = {
    .type = "EuclideanLoss",
    .summary = "squared error: sum((a - b)^2) / (2 N), N = batch size",
    .min_bottoms = 2, .max_bottoms = 2, .min_tops = 1, .max_tops = 1,
    .bottoms_doc = "a: N x ...; b: same count as a (prediction and target, either may learn)",
    .tops_doc = "loss: a scalar",
    .flags = DL_LAYER_LOSS,
    .setup = el_setup,
    .reshape = el_reshape,
    .forward = el_forward,
    .backward = el_backward,
    .destroy = el_destroy,
#ifdef DL_GPU
    .forward_gpu = dl_euclidean_loss_forward_gpu,
    .backward_gpu = dl_euclidean_loss_backward_gpu,
#endif
};
