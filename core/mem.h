/* Synced memory: one float array that may live on the host, on a GPU, or both,
 * with the "head" saying where the fresh copy is (after Caffe's SyncedMemory).
 * Layers ask for a host or device pointer; copies happen lazily here, so CPU
 * layer code never changes when a GPU backend is added.
 * A mem is either an owner or a view of a range of another mem (how the flat
 * parameter buffer hands each layer its own blob). A view has no storage and
 * no head of its own: asking a view for a pointer syncs its owner (the whole
 * flat buffer), so the owner's head is the only state. Reference counted, so
 * that blobs can share storage (split layers, in-place layers, shared params).
 *
 * Heads: UNINIT (nothing allocated yet: the first touch gives zeros on either
 * side), AT_HOST / AT_DEVICE (only that side is fresh), SYNCED (both are).
 * A read-only access copies when the other side alone is fresh and leaves the
 * mem SYNCED; a mutable access also marks its side as the only fresh one. */
#ifndef DL_MEM_H
#define DL_MEM_H

#include <stddef.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DL_MEM_UNINIT, DL_MEM_AT_HOST, DL_MEM_AT_DEVICE, DL_MEM_SYNCED } dl_mem_head;

typedef struct dl_mem {
  size_t count;          /* floats */
  float *host;           /* owner: allocated lazily; view: NULL (see parent) */
  float *device;         /* owner in the GPU build: cudaMalloc'd lazily; view: NULL */
  dl_mem_head head;      /* owner only; a view's state is its owner's */
  struct dl_mem *parent; /* non-NULL for a view */
  size_t offset;         /* view offset into parent, in floats */
  int refs;
} dl_mem;

dl_mem *dl_mem_new(size_t count); /* NULL + diagnostic on failure */
dl_mem *dl_mem_view(dl_mem *parent, size_t offset, size_t count);
void dl_mem_retain(dl_mem *m);
void dl_mem_release(dl_mem *m); /* frees at zero refs; NULL is fine */

/* Host pointers; NULL only when the allocation failed. */
const float *dl_mem_host(dl_mem *m); /* fresh host copy, read only */
float *dl_mem_host_mut(dl_mem *m);   /* fresh host copy; marks host as the head */
size_t dl_mem_bytes_allocated(void); /* total host bytes held by owners now */
/* Of those, the bytes that came from the C heap (malloc): buffers under 2 MiB,
 * and all of them in AddressSanitizer builds; the rest are mapped directly. */
size_t dl_mem_heap_bytes_allocated(void);
/* Bytes the C heap holds for the whole process now (glibc's mallinfo2: chunks
 * in use, mapped ones included), for measuring what layers and libraries
 * allocate; 0 when it cannot tell (another C library, or a sanitizer's
 * allocator, which glibc does not see). */
size_t dl_heap_bytes(void);

/* The head of the storage behind m (its owner's for a view). */
dl_mem_head dl_mem_state(const dl_mem *m);
/* 1 when the host copy is fresh (AT_HOST or SYNCED): reading it costs no copy. */
int dl_mem_host_fresh(const dl_mem *m);

/* Device pointers (GPU build only: a CPU-only build has none to give, and
 * calling these there is a programmer error). NULL only when cudaMalloc
 * failed (a diagnostic, and the GPU's sticky error: dl_gpu_error). Copies run
 * on the GPU context's stream, so they are ordered with every kernel; a copy
 * to the host waits for it. A failed copy becomes the sticky error and the
 * pointer is still returned, so callers never see NULL for it. */
const float *dl_mem_device(dl_mem *m); /* fresh device copy, read only */
float *dl_mem_device_mut(dl_mem *m);   /* fresh device copy; marks device as the head */
/* Allocates the device buffer now (zeroed when nothing was written yet)
 * without moving data, so that out of memory is a setup error: DL_ENOMEM or
 * DL_EDEVICE with a diagnostic on failure. */
dl_status dl_mem_reserve_device(dl_mem *m);
size_t dl_mem_device_bytes_allocated(void); /* total device bytes held by owners now */
size_t dl_mem_device_bytes_peak(void);      /* the most held at once since the last reset */
void dl_mem_device_peak_reset(void);        /* the peak starts again from what is held now */

#ifdef __cplusplus
}
#endif

#endif
