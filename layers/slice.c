/* Slice: cuts a bottom into consecutive pieces along one axis, one per top, as
 * Caffe's SliceLayer; the inverse of Concat. */
#include <stdlib.h>

#include "core/layer.h"
#include "core/math.h"
#ifdef DL_GPU
#include "core/gpu.h"
#include "core/math_gpu.h"
#endif

typedef struct {
  int axis;
  dl_ints slice_point;
} slice_param;

static const dl_param_spec slice_schema[] = {
    DL_P_INT(slice_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "the axis to cut (1: channels of N x C x H x W; negative counts from the end)",
             "slice_param { axis }"),
    DL_P_INTS(slice_param, slice_point, "[]", 1, 1 << 30,
              "increasing indices on `axis` where a new top starts, one fewer than the tops "
              "([2, 5] cuts 8 channels into 2, 3 and 3); empty: equal pieces",
              "slice_param { slice_point }"),
    DL_SPEC_END};

typedef struct {
  int axis;                     /* resolved, non-negative */
  int outer, inner;             /* products of the axes before and after `axis` */
  int size[DL_MAX_LAYER_BLOBS]; /* each top's size on `axis` */
} slice_priv;

static dl_status slice_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb, (void)top;
  const slice_param *p = l->param;
  if (p->slice_point.n && p->slice_point.n != nt - 1)
    return dl_layer_error(l, DL_ECONFIG,
                          "slice_point has %d values, which makes %d pieces, but the layer has %d "
                          "tops",
                          p->slice_point.n, p->slice_point.n + 1, nt);
  l->priv = dl_calloc(1, sizeof(slice_priv));
  return l->priv ? DL_OK : DL_ENOMEM;
}

/* Each top's size on an axis of `dim` entries, from slice_point or an equal
 * split. The schema keeps every point >= 1. */
static dl_status piece_sizes(dl_layer *l, const dl_blob *x, int axis, int nt, int *size) {
  const dl_ints *pt = &((const slice_param *)l->param)->slice_point;
  int dim = x->shape[axis];
  char b[128];
  dl_blob_shape_str(x, b, sizeof b);
  if (!pt->n) {
    if (dim % nt)
      return dl_layer_error(l, DL_ECONFIG,
                            "axis %d of bottom '%s' (%s) has %d entries, which %d tops cannot "
                            "share equally; give slice_point",
                            axis, x->name, b, dim, nt);
    for (int t = 0; t < nt; t++)
      size[t] = dim / nt;
    return DL_OK;
  }
  for (int i = 0; i < pt->n; i++) {
    if (pt->v[i] >= dim)
      return dl_layer_error(l, DL_ECONFIG,
                            "slice_point[%d] is %d, but axis %d of bottom '%s' (%s) has %d "
                            "entries; points lie in 1..%d",
                            i, pt->v[i], axis, x->name, b, dim, dim - 1);
    if (i && pt->v[i] <= pt->v[i - 1])
      return dl_layer_error(l, DL_ECONFIG,
                            "slice_point[%d] (%d) does not come after slice_point[%d] (%d); the "
                            "points must increase",
                            i, pt->v[i], i - 1, pt->v[i - 1]);
    size[i] = pt->v[i] - (i ? pt->v[i - 1] : 0);
  }
  size[pt->n] = dim - pt->v[pt->n - 1];
  return DL_OK;
}

static dl_status slice_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nb;
  const slice_param *p = l->param;
  slice_priv *s = l->priv;
  dl_blob *x = bottom[0];
  int axis = dl_blob_axis(x, p->axis);
  if (axis < 0) {
    char b[128];
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for bottom '%s' (%s)", p->axis,
                          x->name, dl_blob_shape_str(x, b, sizeof b));
  }
  dl_status st = piece_sizes(l, x, axis, nt, s->size);
  if (st) return st;
  s->axis = axis;
  s->outer = (int)dl_blob_count_range(x, 0, axis);
  s->inner = (int)dl_blob_count_range(x, axis + 1, x->ndim);
  int shape[DL_MAX_AXES];
  for (int k = 0; k < x->ndim; k++)
    shape[k] = x->shape[k];
  for (int t = 0; t < nt && !st; t++) {
    shape[axis] = s->size[t];
    st = dl_blob_reshape(top[t], x->ndim, shape);
  }
  if (st || nt > 1) return st;
  /* One top: it is the bottom, so share instead of copying (Caffe). */
  dl_blob_share_data(top[0], x);
  dl_blob_share_diff(top[0], x);
  return DL_OK;
}

/* The blobs' arrays on the host, or on the device for the GPU twins (NULL
 * there on a device failure, which the sticky error reports). */
static const float *read_of(int gpu, dl_blob *b, int diff) {
#ifdef DL_GPU
  if (gpu) return diff ? dl_gpu_cdiff(b) : dl_gpu_cdata(b);
#endif
  (void)gpu;
  return diff ? dl_cdiff(b) : dl_cdata(b);
}

static float *write_of(int gpu, dl_blob *b, int diff) {
#ifdef DL_GPU
  if (gpu) return diff ? dl_gpu_diff(b) : dl_gpu_data(b);
#endif
  (void)gpu;
  return diff ? dl_diff(b) : dl_data(b);
}

/* rows blocks of n floats, from src (rows x src_stride) to dst (rows x dst_stride). */
static dl_status copy_rows(int gpu, int rows, size_t n, const float *src, size_t src_stride,
                           float *dst, size_t dst_stride) {
#ifdef DL_GPU
  if (gpu) return dl_gpu_copy_rows(rows, n, src, src_stride, dst, dst_stride);
#endif
  (void)gpu;
  for (int r = 0; r < rows; r++)
    dl_copy(n, src + r * src_stride, dst + r * dst_stride);
  return DL_OK;
}

/* x (outer x dim x inner): top t (outer x size[t] x inner) is the part from
 * offset off_t on the axis, off_t being the sum of the earlier tops' sizes.
 * Forward copies x's parts to the tops; backward puts the tops' diffs back
 * side by side in dx. On the host, or on the device (gpu). */
static dl_status slice_copy(dl_layer *l, dl_blob *x, dl_blob *const *top, int nt, int gpu,
                            int backward) {
  const slice_priv *s = l->priv;
  const float *src = backward ? NULL : read_of(gpu, x, 0);
  float *dx = backward ? write_of(gpu, x, 1) : NULL;
  if (!src && !dx) return DL_EDEVICE;
  size_t row = (size_t)x->shape[s->axis] * s->inner;
  for (int t = 0, off = 0; t < nt; off += s->size[t], t++) {
    size_t block = (size_t)s->size[t] * s->inner, at = (size_t)off * s->inner;
    const float *dy = backward ? read_of(gpu, top[t], 1) : NULL;
    float *y = backward ? NULL : write_of(gpu, top[t], 0);
    if (!dy && !y) return DL_EDEVICE;
    dl_status st = backward ? copy_rows(gpu, s->outer, block, dy, block, dx + at, row)
                            : copy_rows(gpu, s->outer, block, src + at, row, y, block);
    if (st) return st;
  }
  return DL_OK;
}

static dl_status slice_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)nb;
  if (top[0]->data == bottom[0]->data) return DL_OK; /* one top, shared */
  return slice_copy(l, bottom[0], top, nt, 0, 0);
}

static void slice_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                           dl_blob *const *bottom, int nb) {
  (void)nb;
  if (propagate_down[0] && top[0]->diff != bottom[0]->diff) slice_copy(l, bottom[0], top, nt, 0, 1);
}

#ifdef DL_GPU
static dl_status slice_forward_gpu(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                   int nt) {
  (void)nb;
  if (top[0]->data == bottom[0]->data) return DL_OK;
  return slice_copy(l, bottom[0], top, nt, 1, 0) ? dl_gpu_error() : DL_OK;
}

static void slice_backward_gpu(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                               dl_blob *const *bottom, int nb) {
  (void)nb;
  if (propagate_down[0] && top[0]->diff != bottom[0]->diff)
    slice_copy(l, bottom[0], top, nt, 1, 1); /* a failure is the sticky error */
}
#endif

static void slice_destroy(dl_layer *l) { free(l->priv); }

const dl_layer_ops dl_layer_slice = {
    .type = "Slice",
    .summary = "cuts a blob along one axis into consecutive pieces, one per top",
    .schema = slice_schema,
    .param_size = sizeof(slice_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = DL_MAX_LAYER_BLOBS,
    .bottoms_doc = "x: any shape with at least `axis` + 1 axes",
    .tops_doc = "y1, y2, ...: x's shape with the pieces' sizes on `axis`",
    .setup = slice_setup,
    .reshape = slice_reshape,
    .forward = slice_forward,
    .backward = slice_backward,
#ifdef DL_GPU
    .forward_gpu = slice_forward_gpu,
    .backward_gpu = slice_backward_gpu,
#endif
    .destroy = slice_destroy,
};
