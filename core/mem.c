/* Synced memory. The host half is here; the device half (cudaMalloc, copies
 * on the GPU context's stream) is in core/mem_gpu.cu and is called only in
 * the GPU build (DL_GPU), so the CPU-only build contains no CUDA. */
#include "core/mem.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef DL_GPU
#include "core/gpu.h"
#endif

static size_t bytes_allocated, heap_bytes_allocated, device_bytes_allocated, device_bytes_peak;

/* Host buffers of 2 MiB and more are mapped on 2 MiB boundaries and asked to
 * be backed by huge pages (Debian's transparent huge pages are in "madvise"
 * mode: nothing is huge unless asked). A training step walks hundreds of MiB
 * of weights, gradients and history, often a short run per row (weight
 * tiles, convolution columns); with 4 KiB pages each run is a TLB miss.
 * Like calloc, the memory is zero and pages never touched cost nothing.
 * AddressSanitizer builds keep calloc, whose buffers it checks. */
#if defined(__SANITIZE_ADDRESS__) || !defined(MADV_HUGEPAGE)
static int from_heap(size_t count) { return (void)count, 1; }
static float *host_alloc(size_t count) { return calloc(count ? count : 1, sizeof(float)); }
static void host_free(float *p, size_t count) { (void)count, free(p); }
#else
enum { HUGE_BYTES = 2 << 20 };

static int from_heap(size_t count) { return count * sizeof(float) < HUGE_BYTES; }

static size_t mapped_bytes(size_t count) {
  return (count * sizeof(float) + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;
}

static float *host_alloc(size_t count) {
  if (from_heap(count)) return calloc(count ? count : 1, sizeof(float));
  size_t bytes = mapped_bytes(count);
  char *p = mmap(NULL, bytes + HUGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return NULL;
  size_t lead = (HUGE_BYTES - (uintptr_t)p % HUGE_BYTES) % HUGE_BYTES;
  if (lead) munmap(p, lead);
  munmap(p + lead + bytes, HUGE_BYTES - lead);
  madvise(p + lead, bytes, MADV_HUGEPAGE); /* a hint: refused, the pages stay small */
  return (float *)(p + lead);
}

static void host_free(float *p, size_t count) {
  if (from_heap(count))
    free(p);
  else
    munmap(p, mapped_bytes(count));
}
#endif

dl_mem *dl_mem_new(size_t count) {
  dl_mem *m = dl_calloc(1, sizeof *m);
  if (!m) return NULL;
  m->count = count;
  m->refs = 1;
  return m;
}

dl_mem *dl_mem_view(dl_mem *parent, size_t offset, size_t count) {
  DL_ASSERT(offset + count <= parent->count);
  dl_mem *m = dl_mem_new(count);
  if (!m) return NULL;
  m->parent = parent;
  m->offset = offset;
  dl_mem_retain(parent);
  return m;
}

void dl_mem_retain(dl_mem *m) { m->refs++; }

void dl_mem_release(dl_mem *m) {
  if (!m || --m->refs > 0) return;
  if (m->parent) {
    dl_mem_release(m->parent);
  } else {
    if (m->host) {
      bytes_allocated -= m->count * sizeof(float);
      if (from_heap(m->count)) heap_bytes_allocated -= m->count * sizeof(float);
      host_free(m->host, m->count);
    }
#ifdef DL_GPU
    if (m->device) {
      device_bytes_allocated -= m->count * sizeof(float);
      dl_mem_gpu_free(m->device);
    }
#endif
  }
  free(m);
}

/* The owner whose storage m uses, and m's offset into it. */
static dl_mem *owner_of(dl_mem *m, size_t *offset) {
  size_t off = 0;
  for (; m->parent; m = m->parent)
    off += m->offset;
  *offset = off;
  return m;
}

dl_mem_head dl_mem_state(const dl_mem *m) {
  while (m->parent)
    m = m->parent;
  return m->head;
}

int dl_mem_host_fresh(const dl_mem *m) {
  dl_mem_head h = dl_mem_state(m);
  return h == DL_MEM_AT_HOST || h == DL_MEM_SYNCED;
}

/* Makes the owner's host copy fresh. Owners allocate zeroed storage on first
 * touch, so unused diffs cost nothing. */
static float *owner_to_host(dl_mem *o) {
  if (!o->host) {
    o->host = host_alloc(o->count);
    if (!o->host) return NULL;
    bytes_allocated += o->count * sizeof(float);
    if (from_heap(o->count)) heap_bytes_allocated += o->count * sizeof(float);
  }
  if (o->head == DL_MEM_UNINIT) {
    o->head = DL_MEM_AT_HOST;
  } else if (o->head == DL_MEM_AT_DEVICE) {
#ifdef DL_GPU
    /* A failed copy is the sticky GPU error, which the net and the solver
     * return at their next check; the caller still gets a valid buffer. */
    if (dl_mem_gpu_download(o->host, o->device, o->count)) return o->host;
#endif
    o->head = DL_MEM_SYNCED;
  }
  return o->host;
}

static float *to_host(dl_mem *m, int mut) {
  size_t off;
  dl_mem *o = owner_of(m, &off);
  float *p = owner_to_host(o);
  if (!p) return NULL;
  if (mut) o->head = DL_MEM_AT_HOST;
  return p + off;
}

const float *dl_mem_host(dl_mem *m) { return to_host(m, 0); }
float *dl_mem_host_mut(dl_mem *m) { return to_host(m, 1); }
size_t dl_mem_bytes_allocated(void) { return bytes_allocated; }
size_t dl_mem_heap_bytes_allocated(void) { return heap_bytes_allocated; }

size_t dl_heap_bytes(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33) && !defined(__SANITIZE_ADDRESS__)
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#else
  return 0;
#endif
}
size_t dl_mem_device_bytes_allocated(void) { return device_bytes_allocated; }
size_t dl_mem_device_bytes_peak(void) { return device_bytes_peak; }
void dl_mem_device_peak_reset(void) { device_bytes_peak = device_bytes_allocated; }

#ifdef DL_GPU

static dl_status owner_alloc_device(dl_mem *o) {
  if (o->device) return DL_OK;
  o->device = dl_mem_gpu_alloc(o->count ? o->count : 1);
  if (!o->device) return dl_gpu_error() ? dl_gpu_error() : DL_ENOMEM;
  device_bytes_allocated += o->count * sizeof(float);
  if (device_bytes_allocated > device_bytes_peak) device_bytes_peak = device_bytes_allocated;
  return DL_OK;
}

/* Makes the owner's device copy fresh; what nothing wrote yet reads as zeros. */
static float *owner_to_device(dl_mem *o) {
  if (owner_alloc_device(o)) return NULL;
  /* As in owner_to_host, a failed copy is left to the sticky error. */
  if (o->head == DL_MEM_UNINIT) {
    if (!dl_mem_gpu_zero(o->device, o->count)) o->head = DL_MEM_AT_DEVICE;
  } else if (o->head == DL_MEM_AT_HOST) {
    if (!dl_mem_gpu_upload(o->device, o->host, o->count)) o->head = DL_MEM_SYNCED;
  }
  return o->device;
}

static float *to_device(dl_mem *m, int mut) {
  size_t off;
  dl_mem *o = owner_of(m, &off);
  float *p = owner_to_device(o);
  if (!p) return NULL;
  if (mut) o->head = DL_MEM_AT_DEVICE;
  return p + off;
}

const float *dl_mem_device(dl_mem *m) { return to_device(m, 0); }
float *dl_mem_device_mut(dl_mem *m) { return to_device(m, 1); }

dl_status dl_mem_reserve_device(dl_mem *m) {
  size_t off;
  dl_mem *o = owner_of(m, &off);
  dl_status st = owner_alloc_device(o);
  if (st || o->head != DL_MEM_UNINIT) return st;
  if ((st = dl_mem_gpu_zero(o->device, o->count))) return st;
  o->head = DL_MEM_AT_DEVICE;
  return DL_OK;
}

#else

/* The CPU-only build has no device memory: reaching these is a bug. */
const float *dl_mem_device(dl_mem *m) {
  (void)m;
  dl_assert_fail("dl_mem_device in a CPU-only build", __FILE__, __LINE__);
}

float *dl_mem_device_mut(dl_mem *m) {
  (void)m;
  dl_assert_fail("dl_mem_device_mut in a CPU-only build", __FILE__, __LINE__);
}

dl_status dl_mem_reserve_device(dl_mem *m) {
  (void)m;
  dl_assert_fail("dl_mem_reserve_device in a CPU-only build", __FILE__, __LINE__);
}

#endif
