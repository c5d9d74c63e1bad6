/* Concat: joins bottoms along one axis, as Caffe's ConcatLayer; every other
 * axis must match. Slice is its inverse. */
#include <limits.h>
#include <stdlib.h>

#include "core/layer.h"
#include "core/math.h"
#include "layers/concat.h"

typedef struct {
  int axis;
} concat_param;

static const dl_param_spec concat_schema[] = {
    DL_P_INT(concat_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "the axis to join along (1: channels of N x C x H x W; 0: the batch; negative "
             "counts from the end)",
             "concat_param { axis }"),
    DL_SPEC_END};

static dl_status concat_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  l->priv = dl_calloc(1, sizeof(concat_priv));
  return l->priv ? DL_OK : DL_ENOMEM;
}

/* Bottom i against bottom 0: same number of axes, same size off `axis`. */
static dl_status check_bottom(dl_layer *l, dl_blob *const *bottom, int i, int axis) {
  const dl_blob *a = bottom[0], *b = bottom[i];
  char sa[128], sb[128];
  dl_blob_shape_str(a, sa, sizeof sa);
  dl_blob_shape_str(b, sb, sizeof sb);
  if (b->ndim != a->ndim)
    return dl_layer_error(l, DL_ECONFIG,
                          "bottom %d '%s' (%s) has %d axes but bottom 0 '%s' (%s) has %d; all "
                          "bottoms need the same number",
                          i, b->name, sb, b->ndim, a->name, sa, a->ndim);
  for (int k = 0; k < a->ndim; k++)
    if (k != axis && b->shape[k] != a->shape[k])
      return dl_layer_error(l, DL_ECONFIG,
                            "bottom %d '%s' (%s) differs from bottom 0 '%s' (%s) at axis %d (%d vs "
                            "%d); only the concat axis %d may differ",
                            i, b->name, sb, a->name, sa, k, b->shape[k], a->shape[k], axis);
  return DL_OK;
}

static dl_status concat_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                int nt) {
  (void)nt;
  const concat_param *p = l->param;
  concat_priv *s = l->priv;
  int axis = dl_blob_axis(bottom[0], p->axis);
  if (axis < 0) {
    char b[128];
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for bottom 0 '%s' (%s)", p->axis,
                          bottom[0]->name, dl_blob_shape_str(bottom[0], b, sizeof b));
  }
  long total = 0;
  for (int i = 0; i < nb; i++) {
    dl_status st = i ? check_bottom(l, bottom, i, axis) : DL_OK;
    if (st) return st;
    total += bottom[i]->shape[axis];
  }
  if (total > INT_MAX)
    return dl_layer_error(l, DL_ECONFIG, "the joined axis %d would have %ld entries", axis, total);
  s->axis = axis;
  s->top_ax = (int)total;
  s->outer = (int)dl_blob_count_range(bottom[0], 0, axis);
  s->inner = (int)dl_blob_count_range(bottom[0], axis + 1, bottom[0]->ndim);
  int shape[DL_MAX_AXES];
  for (int k = 0; k < bottom[0]->ndim; k++)
    shape[k] = bottom[0]->shape[k];
  shape[axis] = s->top_ax;
  dl_status st = dl_blob_reshape(top[0], bottom[0]->ndim, shape);
  if (st || nb > 1) return st;
  /* One bottom: the top is that bottom, so share instead of copying (Caffe). */
  dl_blob_share_data(top[0], bottom[0]);
  dl_blob_share_diff(top[0], bottom[0]);
  return DL_OK;
}

/* rows blocks of n floats, from src (rows x src_stride) to dst (rows x dst_stride). */
static void copy_rows(int rows, size_t n, const float *src, size_t src_stride, float *dst,
                      size_t dst_stride) {
  for (int r = 0; r < rows; r++)
    dl_copy(n, src + r * src_stride, dst + r * dst_stride);
}

/* y (outer x top_ax x inner): bottom i (outer x ax_i x inner) goes at offset
 * off_i on the axis, off_i being the sum of the earlier bottoms' sizes. */
static dl_status concat_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                int nt) {
  (void)nt;
  const concat_priv *s = l->priv;
  if (top[0]->data == bottom[0]->data) return DL_OK; /* one bottom, shared */
  float *y = dl_data(top[0]);
  size_t row = (size_t)s->top_ax * s->inner;
  for (int i = 0, off = 0; i < nb; off += bottom[i]->shape[s->axis], i++) {
    size_t block = (size_t)bottom[i]->shape[s->axis] * s->inner;
    copy_rows(s->outer, block, dl_cdata(bottom[i]), block, y + (size_t)off * s->inner, row);
  }
  return DL_OK;
}

/* dx_i = the part of dy where bottom i went. */
static void concat_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                            dl_blob *const *bottom, int nb) {
  (void)nt;
  const concat_priv *s = l->priv;
  if (top[0]->diff == bottom[0]->diff) return; /* one bottom, shared */
  const float *dy = dl_cdiff(top[0]);
  size_t row = (size_t)s->top_ax * s->inner;
  for (int i = 0, off = 0; i < nb; off += bottom[i]->shape[s->axis], i++) {
    if (!propagate_down[i]) continue;
    size_t block = (size_t)bottom[i]->shape[s->axis] * s->inner;
    copy_rows(s->outer, block, dy + (size_t)off * s->inner, row, dl_diff(bottom[i]), block);
  }
}

static void concat_destroy(dl_layer *l) { free(l->priv); }

const dl_layer_ops dl_layer_concat = {
    .type = "Concat",
    .summary = "joins bottoms along one axis (channels by default)",
    .schema = concat_schema,
    .param_size = sizeof(concat_param),
    .min_bottoms = 1,
    .max_bottoms = DL_MAX_LAYER_BLOBS,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x1, x2, ...: the same shape except on `axis`",
    .tops_doc = "y: that shape with the bottoms' sizes on `axis` added up",
    .setup = concat_setup,
    .reshape = concat_reshape,
    .forward = concat_forward,
    .backward = concat_backward,
    .destroy = concat_destroy,
#ifdef DL_GPU
    .forward_gpu = dl_concat_forward_gpu,
    .backward_gpu = dl_concat_backward_gpu,
#endif
};
