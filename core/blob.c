/* Blob shape bookkeeping; storage is in core/mem.c. */
#include "core/blob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dl_blob *dl_blob_new(const char *name) {
  dl_blob *b = dl_calloc(1, sizeof *b);
  if (!b) return NULL;
  b->name = dl_strdup(name ? name : "");
  b->count = 1;
  return b;
}

void dl_blob_free(dl_blob *b) {
  if (!b) return;
  dl_mem_release(b->data);
  dl_mem_release(b->diff);
  free(b->name);
  free(b);
}

dl_status dl_blob_reshape(dl_blob *b, int ndim, const int *shape) {
  if (ndim < 0 || ndim > DL_MAX_AXES)
    return dl_error(DL_ECONFIG, "blob '%s': %d axes requested, at most %d are supported", b->name,
                    ndim, DL_MAX_AXES);
  size_t count = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] <= 0)
      return dl_error(DL_ECONFIG, "blob '%s': axis %d has size %d, expected a positive size",
                      b->name, i, shape[i]);
    if (count > DL_MAX_BLOB_COUNT / (size_t)shape[i])
      return dl_error(DL_ECONFIG,
                      "blob '%s': shape asks for more than %zu elements (the per-blob limit)",
                      b->name, (size_t)DL_MAX_BLOB_COUNT);
    count *= (size_t)shape[i];
  }
  b->ndim = ndim;
  for (int i = 0; i < DL_MAX_AXES; i++) b->shape[i] = i < ndim ? shape[i] : 0;
  b->count = count;
  if (count > b->capacity || !b->data) {
    dl_mem *d = dl_mem_new(count), *g = dl_mem_new(count);
    if (!d || !g) {
      dl_mem_release(d);
      dl_mem_release(g);
      return DL_ENOMEM;
    }
    dl_mem_release(b->data);
    dl_mem_release(b->diff);
    b->data = d;
    b->diff = g;
    b->capacity = count;
  }
  return DL_OK;
}

dl_status dl_blob_reshape_like(dl_blob *b, const dl_blob *other) {
  return dl_blob_reshape(b, other->ndim, other->shape);
}

dl_status dl_blob_reshape4(dl_blob *b, int n, int c, int h, int w) {
  int s[4] = {n, c, h, w}, nd = 0;
  while (nd < 4 && s[nd] >= 0) nd++;
  return dl_blob_reshape(b, nd, s);
}

static void copy_shape(dl_blob *b, const dl_blob *o) {
  b->ndim = o->ndim;
  memcpy(b->shape, o->shape, sizeof b->shape);
  b->count = o->count;
  b->capacity = o->capacity;
}

void dl_blob_share_data(dl_blob *b, dl_blob *other) {
  dl_mem_retain(other->data);
  dl_mem_release(b->data);
  b->data = other->data;
  if (!b->diff) {
    b->diff = dl_mem_new(other->count);
  }
  copy_shape(b, other);
}

void dl_blob_share_diff(dl_blob *b, dl_blob *other) {
  dl_mem_retain(other->diff);
  dl_mem_release(b->diff);
  b->diff = other->diff;
  copy_shape(b, other);
}

float *dl_data(dl_blob *b) { return dl_mem_host_mut(b->data); }
float *dl_diff(dl_blob *b) { return dl_mem_host_mut(b->diff); }
const float *dl_cdata(dl_blob *b) { return dl_mem_host(b->data); }
const float *dl_cdiff(dl_blob *b) { return dl_mem_host(b->diff); }
float *dl_gpu_data(dl_blob *b) { return dl_mem_device_mut(b->data); }
float *dl_gpu_diff(dl_blob *b) { return dl_mem_device_mut(b->diff); }
const float *dl_gpu_cdata(dl_blob *b) { return dl_mem_device(b->data); }
const float *dl_gpu_cdiff(dl_blob *b) { return dl_mem_device(b->diff); }

int dl_blob_axis(const dl_blob *b, int axis) {
  if (axis < 0) axis += b->ndim;
  return axis >= 0 && axis < b->ndim ? axis : -1;
}

int dl_blob_dim(const dl_blob *b, int axis) {
  if (axis < 0) axis += b->ndim;
  return axis >= 0 && axis < b->ndim ? b->shape[axis] : 1;
}

size_t dl_blob_count_range(const dl_blob *b, int start, int end) {
  size_t c = 1;
  for (int i = start; i < end && i < b->ndim; i++) c *= (size_t)b->shape[i];
  return c;
}

const char *dl_blob_shape_str(const dl_blob *b, char *buf, size_t n) {
  size_t off = 0;
  buf[0] = 0;
  if (b->ndim == 0) snprintf(buf, n, "scalar");
  for (int i = 0; i < b->ndim && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, i ? " x %d" : "%d", b->shape[i]);
  return buf;
}
