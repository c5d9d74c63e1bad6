/* See axis_span.h. */
#include "layers/axis_span.h"

dl_status dl_axis_span_learned(dl_layer *l, const dl_blob *x, int axis_param, int num_axes,
                               dl_axis_span *out) {
  char buf[128];
  int axis = dl_blob_axis(x, axis_param);
  if (axis < 0)
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for the %d-axis input %s",
                          axis_param, x->ndim, dl_blob_shape_str(x, buf, sizeof buf));
  int n = num_axes < 0 ? x->ndim - axis : num_axes;
  if (axis + n > x->ndim)
    return dl_layer_error(
        l, DL_ECONFIG, "axis %d with num_axes %d needs %d axes, but the input %s has %d",
        axis_param, num_axes, axis + n, dl_blob_shape_str(x, buf, sizeof buf), x->ndim);
  out->axis = axis;
  out->ndim = n;
  for (int i = 0; i < n; i++)
    out->shape[i] = x->shape[axis + i];
  return DL_OK;
}

dl_status dl_axis_span_bottom(dl_layer *l, const dl_blob *x, const dl_blob *b, int axis_param,
                              const char *what, dl_axis_span *out) {
  char sa[128], sb[128];
  int axis = b->ndim == 0 ? 0 : dl_blob_axis(x, axis_param); /* a scalar ignores axis (Caffe) */
  if (axis < 0)
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for the %d-axis input %s",
                          axis_param, x->ndim, dl_blob_shape_str(x, sa, sizeof sa));
  int ok = axis + b->ndim <= x->ndim;
  for (int i = 0; ok && i < b->ndim; i++)
    ok = b->shape[i] == x->shape[axis + i];
  if (!ok)
    return dl_layer_error(l, DL_ECONFIG, "the %s bottom %s must match the input %s from axis %d on",
                          what, dl_blob_shape_str(b, sb, sizeof sb),
                          dl_blob_shape_str(x, sa, sizeof sa), axis);
  out->axis = axis;
  out->ndim = b->ndim;
  for (int i = 0; i < b->ndim; i++)
    out->shape[i] = b->shape[i];
  return DL_OK;
}
