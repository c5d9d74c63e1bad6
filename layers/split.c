/* Split: hands one blob to several consumers. The tops share the bottom's data
 * (no copy); each has its own diff, and backward sums them into the bottom's.
 * The net inserts splits automatically; writing one explicitly is also fine. */
#include "core/layer.h"
#include "core/math.h"

#ifdef DL_GPU
DL_GPU_TWINS(split); /* layers/split.cu */
#endif

static dl_status split_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)l, (void)nb;
  for (int t = 0; t < nt; t++) {
    dl_status st = dl_blob_reshape_like(top[t], bottom[0]);
    if (st) return st;
    dl_blob_share_data(top[t], bottom[0]);
  }
  return DL_OK;
}

static dl_status split_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)l, (void)bottom, (void)nb, (void)top, (void)nt; /* data is shared */
  return DL_OK;
}

/* dx = sum_t dy_t. A consumer that does not back-propagate leaves its top's
 * diff at zero (the net zeroes it at setup), so summing all tops is right. */
static void split_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                           dl_blob *const *bottom, int nb) {
  (void)l, (void)nb;
  if (!propagate_down[0]) return;
  size_t n = bottom[0]->count;
  float *dx = dl_diff(bottom[0]); /* (count) */
  dl_copy(n, dl_cdiff(top[0]), dx);
  for (int t = 1; t < nt; t++) dl_axpy(n, 1.0f, dl_cdiff(top[t]), dx);
}

const dl_layer_ops dl_layer_split = {
    .type = "Split",
    .summary = "copies a blob to several tops without copying data; sums their gradients",
    .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = DL_MAX_LAYER_BLOBS,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y1, y2, ...: views of x",
    .reshape = split_reshape,
    .forward = split_forward,
    .backward = split_backward,
#ifdef DL_GPU
    .forward_gpu = dl_split_forward_gpu,
    .backward_gpu = dl_split_backward_gpu,
#endif
};
