/* Flatten: merges axes [axis, end_axis] into one, as Caffe; 64 x 3 x 4 x 4
 * becomes 64 x 48 with the defaults. The top is a view of the bottom: data and
 * diff are shared, so neither pass copies anything. */
#include <limits.h>

#include "core/layer.h"
#include "core/math.h"

typedef struct {
  int axis, end_axis;
} flatten_param;

static const dl_param_spec flatten_schema[] = {
    DL_P_INT(flatten_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "first axis to merge (negative counts from the end)", "flatten_param { axis }"),
    DL_P_INT(flatten_param, end_axis, "-1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "last axis to merge, inclusive (-1: the last axis)", "flatten_param { end_axis }"),
    DL_SPEC_END};

/* top[0] becomes a view of bottom[0] with another shape of the same count.
 * The reshape cannot reallocate: sharing gave top the bottom's capacity. */
static dl_status share_as(dl_blob *top, dl_blob *bottom, int ndim, const int *shape) {
  dl_blob_share_data(top, bottom);
  dl_blob_share_diff(top, bottom);
  dl_status st = dl_blob_reshape(top, ndim, shape);
  DL_ASSERT(st || (top->data == bottom->data && top->diff == bottom->diff));
  return st;
}

static dl_status flatten_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nb, (void)nt;
  const flatten_param *p = l->param;
  dl_blob *x = bottom[0];
  int start = dl_blob_axis(x, p->axis), end = dl_blob_axis(x, p->end_axis);
  char s[128];
  if (start < 0 || end < 0)
    return dl_layer_error(l, DL_ECONFIG, "%s %d is out of range for the bottom '%s' (%s: %d axes)",
                          start < 0 ? "axis" : "end_axis", start < 0 ? p->axis : p->end_axis,
                          x->name, dl_blob_shape_str(x, s, sizeof s), x->ndim);
  if (end < start)
    return dl_layer_error(l, DL_ECONFIG,
                          "end_axis %d (axis %d) comes before axis %d (axis %d) in the bottom %s",
                          p->end_axis, end, p->axis, start, dl_blob_shape_str(x, s, sizeof s));
  size_t merged = dl_blob_count_range(x, start, end + 1);
  if (merged > INT_MAX) /* blob axes are ints, though a blob may hold 2^32 values */
    return dl_layer_error(l, DL_ECONFIG, "merging axes %d to %d of %s gives %zu, over %d per axis",
                          start, end, dl_blob_shape_str(x, s, sizeof s), merged, INT_MAX);
  int shape[DL_MAX_AXES], nd = 0;
  for (int i = 0; i < start; i++)
    shape[nd++] = x->shape[i];
  shape[nd++] = (int)merged;
  for (int i = end + 1; i < x->ndim; i++)
    shape[nd++] = x->shape[i];
  return share_as(top[0], x, nd, shape);
}

static dl_status flatten_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)l, (void)bottom, (void)nb, (void)top, (void)nt; /* data is shared */
  return DL_OK;
}

/* dx = dy. The diff is shared, so there is nothing to do; the copy only runs
 * if something re-pointed the top's diff after reshape. */
static void flatten_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                             dl_blob *const *bottom, int nb) {
  (void)l, (void)nt, (void)nb;
  if (propagate_down[0] && top[0]->diff != bottom[0]->diff)
    dl_copy(top[0]->count, dl_cdiff(top[0]), dl_diff(bottom[0]));
}

const dl_layer_ops dl_layer_flatten = {
    .type = "Flatten",
    .summary = "merges a range of axes into one (N x C x H x W to N x CHW); no copy",
    .schema = flatten_schema,
    .param_size = sizeof(flatten_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape with an axis `axis`",
    .tops_doc = "y: x's axes [axis, end_axis] merged into one; a view of x",
    .reshape = flatten_reshape,
    .forward = flatten_forward,
    .backward = flatten_backward,
#ifdef DL_GPU
    .forward_gpu = dl_view_forward_gpu,
    .backward_gpu = dl_view_backward_gpu,
#endif
};
