/* Synced memory: one float array that may live on the host, on a GPU, or both,
 * with the "head" saying where the fresh copy is (after Caffe's SyncedMemory).
 * Layers ask for a host or device pointer; copies happen lazily here, so CPU
 * layer code never changes when a GPU backend is added.
 * A mem is either an owner or a view of a range of another mem (how the flat
 * parameter buffer hands each layer its own blob). Reference counted, so that
 * blobs can share storage (split layers, in-place layers, shared params). */
#ifndef DL_MEM_H
#define DL_MEM_H

#include <stddef.h>

typedef enum { DL_MEM_UNINIT, DL_MEM_AT_HOST, DL_MEM_AT_DEVICE, DL_MEM_SYNCED } dl_mem_head;

typedef struct dl_mem {
  size_t count;         /* floats */
  float *host;          /* owner: allocated lazily; view: NULL (see parent) */
  float *device;        /* reserved for the GPU backend */
  dl_mem_head head;
  struct dl_mem *parent; /* non-NULL for a view */
  size_t offset;         /* view offset into parent, in floats */
  int refs;
} dl_mem;

dl_mem *dl_mem_new(size_t count);                   /* NULL + diagnostic on failure */
dl_mem *dl_mem_view(dl_mem *parent, size_t offset, size_t count);
void dl_mem_retain(dl_mem *m);
void dl_mem_release(dl_mem *m); /* frees at zero refs; NULL is fine */

const float *dl_mem_host(dl_mem *m);   /* fresh host copy, read only */
float *dl_mem_host_mut(dl_mem *m);     /* fresh host copy; marks host as the head */
size_t dl_mem_bytes_allocated(void);   /* total host bytes held by owners now */

#endif
