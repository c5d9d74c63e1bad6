/* Host side of synced memory. The device half arrives with the GPU backend and
 * plugs into to_host()/head handling below without touching layer code. */
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static size_t bytes_allocated;

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
  } else if (m->host) {
    bytes_allocated -= m->count * sizeof(float);
    free(m->host);
  }
  free(m);
}

/* Owners allocate zeroed storage on first touch, so unused diffs cost nothing. */
static float *to_host(dl_mem *m) {
  if (m->parent) return to_host(m->parent) + m->offset;
  if (!m->host) {
    m->host = calloc(m->count ? m->count : 1, sizeof(float));
    if (!m->host) return NULL;
    bytes_allocated += m->count * sizeof(float);
    m->head = DL_MEM_AT_HOST;
  }
  return m->host;
}

const float *dl_mem_host(dl_mem *m) { return to_host(m); }

float *dl_mem_host_mut(dl_mem *m) {
  float *p = to_host(m);
  m->head = DL_MEM_AT_HOST;
  return p;
}

size_t dl_mem_bytes_allocated(void) { return bytes_allocated; }
