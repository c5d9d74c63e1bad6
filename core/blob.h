/* Blob: an N-d float32 array with a gradient (diff) of the same shape.
 * Axis 0 is the batch axis by convention; images are N x C x H x W. */
#ifndef DL_BLOB_H
#define DL_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "core/mem.h"
#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DL_MAX_AXES 8
/* No single blob may hold more than this many elements (16 GiB of floats):
 * a config asking for more is an error, not an OOM kill. */
#define DL_MAX_BLOB_COUNT ((size_t)1 << 32)

typedef struct dl_blob {
  char *name;
  int ndim;
  int shape[DL_MAX_AXES];
  size_t count;     /* product of shape (1 for a 0-d scalar) */
  size_t capacity;  /* floats that data/diff can hold without reallocating */
  dl_mem *data;
  dl_mem *diff;
  /* 0: N x C x H x W as the shape says. 1: oneDNN's blocked layout nChw16c
   * (N x C/16 x H x W x 16, C a multiple of DL_BLOCK), for data and diff
   * alike; only the net sets it (core/net.c, plan_layouts), on blobs whose
   * producer and every consumer work on it, so that oneDNN convolutions and
   * the pooling and ReLU between them run without converting. */
  int blocked;
} dl_blob;

#define DL_BLOCK 16 /* channels per block of the blocked layout */

dl_blob *dl_blob_new(const char *name);
void dl_blob_free(dl_blob *b);

/* Sets the shape; grows storage when needed (contents are then lost).
 * Fails with DL_ECONFIG on a non-positive dim, overflow or the size limit. */
dl_status dl_blob_reshape(dl_blob *b, int ndim, const int *shape);
dl_status dl_blob_reshape_like(dl_blob *b, const dl_blob *other);
/* Convenience for up to 4 axes: pass -1 for unused trailing axes. */
dl_status dl_blob_reshape4(dl_blob *b, int n, int c, int h, int w);

/* Shares storage: b's data (or diff) becomes other's; b takes other's shape. */
void dl_blob_share_data(dl_blob *b, dl_blob *other);
void dl_blob_share_diff(dl_blob *b, dl_blob *other);

/* Host pointers: mutable ones mark the host copy as the fresh one. */
float *dl_data(dl_blob *b);
float *dl_diff(dl_blob *b);
const float *dl_cdata(dl_blob *b);
const float *dl_cdiff(dl_blob *b);
/* Device pointers, for GPU twins (GPU build only; the CPU-only build never
 * calls them): mutable ones mark the device copy as the fresh one. */
float *dl_gpu_data(dl_blob *b);
float *dl_gpu_diff(dl_blob *b);
const float *dl_gpu_cdata(dl_blob *b);
const float *dl_gpu_cdiff(dl_blob *b);

int dl_blob_axis(const dl_blob *b, int axis); /* negative counts from the end; -1 if out of range */
int dl_blob_dim(const dl_blob *b, int axis);  /* 1 for axes beyond ndim */
size_t dl_blob_count_range(const dl_blob *b, int start, int end); /* product of shape[start:end) */
/* "64 x 1 x 28 x 28" into buf. */
const char *dl_blob_shape_str(const dl_blob *b, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
