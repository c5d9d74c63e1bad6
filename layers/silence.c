/* Silence: consumes blobs and produces nothing, as Caffe's SilenceLayer, so a
 * top nobody needs (a data layer's label in an unsupervised net) is not
 * reported as a net output. */
#include "core/layer.h"
#include "core/math.h"
#ifdef DL_GPU
#include "core/gpu.h"
#include "core/math_gpu.h"
#endif

static dl_status silence_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)l, (void)bottom, (void)nb, (void)top, (void)nt;
  return DL_OK;
}

static dl_status silence_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)l, (void)bottom, (void)nb, (void)top, (void)nt;
  return DL_OK;
}

/* Nothing downstream depends on the bottoms, so their gradient is zero. The
 * diffs are written all the same: bottom diffs are overwritten by convention,
 * and a stale value left there would leak into whoever reads it. */
static void silence_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                             dl_blob *const *bottom, int nb) {
  (void)l, (void)top, (void)nt;
  for (int i = 0; i < nb; i++)
    if (propagate_down[i]) dl_set(bottom[i]->count, 0, dl_diff(bottom[i]));
}

#ifdef DL_GPU
static void silence_backward_gpu(dl_layer *l, dl_blob *const *top, int nt,
                                 const int *propagate_down, dl_blob *const *bottom, int nb) {
  (void)l, (void)top, (void)nt;
  for (int i = 0; i < nb; i++) {
    float *dx = propagate_down[i] ? dl_gpu_diff(bottom[i]) : NULL;
    if (dx) dl_gpu_set(bottom[i]->count, 0, dx);
  }
}
#endif

const dl_layer_ops dl_layer_silence = {
    .type = "Silence",
    .summary = "consumes blobs that nothing else uses; no tops, zero gradients",
    .min_bottoms = 1,
    .max_bottoms = DL_MAX_LAYER_BLOBS,
    .min_tops = 0,
    .max_tops = 0,
    .bottoms_doc = "x1, x2, ...: any shapes",
    .tops_doc = "(none)",
    .reshape = silence_reshape,
    .forward = silence_forward,
    .backward = silence_backward,
#ifdef DL_GPU
    .forward_gpu = silence_forward, /* touches nothing */
    .backward_gpu = silence_backward_gpu,
#endif
};
