/* Reshape: gives the bottom a new shape of the same count, as Caffe. In `shape`,
 * 0 copies the bottom's dim at that position and one -1 is inferred; axis and
 * num_axes limit the change to a range of the bottom's axes. The top is a view
 * of the bottom: data and diff are shared, so neither pass copies anything. */
#include <limits.h>
#include <stdio.h>

#include "core/layer.h"
#include "core/math.h"

typedef struct {
  dl_ints shape;
  int axis, num_axes;
} reshape_param;

static const dl_param_spec reshape_schema[] = {
    DL_P_INTS(reshape_param, shape, NULL, -1, INT_MAX,
              "the new dims: 0 copies the bottom's dim, one -1 is inferred from the count; "
              "[0, -1] flattens N x C x H x W to N x CHW",
              "reshape_param { shape { dim } }"),
    DL_P_INT(reshape_param, axis, "0", -DL_MAX_AXES - 1, DL_MAX_AXES,
             "first bottom axis that `shape` replaces (negative: -1 is just past the last axis)",
             "reshape_param { axis }"),
    DL_P_INT(reshape_param, num_axes, "-1", -1, DL_MAX_AXES,
             "how many bottom axes from `axis` on `shape` replaces (-1: all the rest)",
             "reshape_param { num_axes }"),
    DL_SPEC_END};

/* "2 x -1 x 5" into buf, like dl_blob_shape_str. */
static const char *dims_str(const int *d, int n, char *buf, size_t len) {
  size_t off = 0;
  buf[0] = 0;
  if (n == 0) snprintf(buf, len, "scalar");
  for (int i = 0; i < n && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, i ? " x %d" : "%d", d[i]);
  return buf;
}

static dl_status reshape_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const dl_ints *s = &((const reshape_param *)l->param)->shape;
  int first = -1;
  for (int i = 0; i < s->n; i++) {
    if (s->v[i] != -1) continue;
    if (first >= 0)
      return dl_layer_error(l, DL_ECONFIG,
                            "shape has -1 at positions %d and %d; at most one dim can be inferred",
                            first, i);
    first = i;
  }
  return DL_OK;
}

/* The bottom axes [*start, *end) that `shape` replaces, as Caffe resolves them. */
static dl_status replaced_range(dl_layer *l, const dl_blob *x, int *start, int *end) {
  const reshape_param *p = l->param;
  char s[128];
  *start = p->axis >= 0 ? p->axis : x->ndim + p->axis + 1;
  if (*start < 0 || *start > x->ndim)
    return dl_layer_error(l, DL_ECONFIG,
                          "axis %d is out of range for the bottom '%s' (%s: %d axes)", p->axis,
                          x->name, dl_blob_shape_str(x, s, sizeof s), x->ndim);
  *end = p->num_axes < 0 ? x->ndim : *start + p->num_axes;
  if (*end > x->ndim)
    return dl_layer_error(
        l, DL_ECONFIG, "num_axes %d from axis %d runs past the last axis of the bottom '%s' (%s)",
        p->num_axes, *start, x->name, dl_blob_shape_str(x, s, sizeof s));
  return DL_OK;
}

/* Fills the top's shape (-1 still unresolved) and returns where the -1 is. */
static dl_status requested_shape(dl_layer *l, const dl_blob *x, int *shape, int *nd,
                                 int *inferred) {
  const dl_ints *s = &((const reshape_param *)l->param)->shape;
  int start = 0, end = 0;
  dl_status st = replaced_range(l, x, &start, &end);
  if (st) return st;
  char b[128];
  *nd = start + s->n + x->ndim - end;
  if (*nd > DL_MAX_AXES)
    return dl_layer_error(l, DL_ECONFIG, "the top would have %d axes; at most %d are supported",
                          *nd, DL_MAX_AXES);
  int k = 0;
  *inferred = -1;
  for (int i = 0; i < start; i++)
    shape[k++] = x->shape[i];
  for (int i = 0; i < s->n; i++, k++) {
    shape[k] = s->v[i];
    if (s->v[i] == -1) *inferred = k;
    if (s->v[i] != 0) continue;
    if (start + i >= x->ndim)
      return dl_layer_error(l, DL_ECONFIG,
                            "shape[%d] is 0 (copy the bottom's axis %d), but the bottom '%s' (%s) "
                            "has only %d axes",
                            i, start + i, x->name, dl_blob_shape_str(x, b, sizeof b), x->ndim);
    shape[k] = x->shape[start + i];
  }
  for (int i = end; i < x->ndim; i++)
    shape[k++] = x->shape[i];
  return DL_OK;
}

/* Resolves the -1 (if any) and checks the count; both shapes go in the message. */
static dl_status resolve_count(dl_layer *l, const dl_blob *x, int *shape, int nd, int inferred) {
  size_t prod = 1, n = x->count;
  int over = 0; /* prod already exceeds the bottom's count (and might overflow) */
  for (int i = 0; i < nd && !over; i++) {
    if (i == inferred) continue;
    if (prod > n / (size_t)shape[i])
      over = 1;
    else
      prod *= (size_t)shape[i];
  }
  char a[128], b[128];
  dl_blob_shape_str(x, a, sizeof a);
  dims_str(shape, nd, b, sizeof b);
  if (inferred >= 0) {
    if (over)
      return dl_layer_error(l, DL_ECONFIG,
                            "cannot reshape %s (%zu values) to %s: the dims besides -1 already "
                            "make more than %zu values",
                            a, n, b, n);
    if (n % prod)
      return dl_layer_error(l, DL_ECONFIG,
                            "cannot reshape %s (%zu values) to %s: %zu is not a multiple of %zu "
                            "(the product of the dims besides -1)",
                            a, n, b, n, prod);
    if (n / prod > INT_MAX) /* blob axes are ints, though a blob may hold 2^32 values */
      return dl_layer_error(l, DL_ECONFIG, "cannot reshape %s to %s: the -1 dim would be %zu", a, b,
                            n / prod);
    shape[inferred] = (int)(n / prod);
  } else if (over || prod != n) {
    return dl_layer_error(l, DL_ECONFIG, "cannot reshape %s (%zu values) to %s (%s%zu values)", a,
                          n, b, over ? "more than " : "", over ? n : prod);
  }
  return DL_OK;
}

static dl_status reshape_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)nb, (void)nt;
  dl_blob *x = bottom[0];
  int shape[DL_MAX_AXES], nd = 0, inferred = -1;
  dl_status st = requested_shape(l, x, shape, &nd, &inferred);
  if (!st) st = resolve_count(l, x, shape, nd, inferred);
  if (st) return st;
  /* Share, then reshape: the count is equal, so this cannot reallocate. */
  dl_blob_share_data(top[0], x);
  dl_blob_share_diff(top[0], x);
  st = dl_blob_reshape(top[0], nd, shape);
  DL_ASSERT(st || (top[0]->data == x->data && top[0]->diff == x->diff));
  return st;
}

static dl_status reshape_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                                 int nt) {
  (void)l, (void)bottom, (void)nb, (void)top, (void)nt; /* data is shared */
  return DL_OK;
}

/* dx = dy. The diff is shared, so there is nothing to do; the copy only runs
 * if something re-pointed the top's diff after reshape. */
static void reshape_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                             dl_blob *const *bottom, int nb) {
  (void)l, (void)nt, (void)nb;
  if (propagate_down[0] && top[0]->diff != bottom[0]->diff)
    dl_copy(top[0]->count, dl_cdiff(top[0]), dl_diff(bottom[0]));
}

const dl_layer_ops dl_layer_reshape = {
    .type = "Reshape",
    .summary = "gives a blob a new shape of the same count (0: keep a dim, -1: infer); no copy",
    .schema = reshape_schema,
    .param_size = sizeof(reshape_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: any shape",
    .tops_doc = "y: x's values in the new shape; a view of x",
    .setup = reshape_setup,
    .reshape = reshape_reshape,
    .forward = reshape_forward,
    .backward = reshape_backward,
#ifdef DL_GPU
    .forward_gpu = dl_view_forward_gpu,
    .backward_gpu = dl_view_backward_gpu,
#endif
};
