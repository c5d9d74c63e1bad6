/* Diagnostics: a bounded, thread-local list of error messages. */
#include "core/status.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DL_DIAG_MAX 20
#define DL_DIAG_LEN 512

static _Thread_local char diag_msgs[DL_DIAG_MAX][DL_DIAG_LEN];
static _Thread_local int diag_n;
static _Thread_local int diag_dropped;
static _Thread_local char diag_joined[DL_DIAG_MAX * (DL_DIAG_LEN + 1) + 64];

static void diag_push(const char *prefix, const char *fmt, va_list ap) {
  if (diag_n >= DL_DIAG_MAX) {
    diag_dropped++;
    return;
  }
  char *m = diag_msgs[diag_n++];
  int off = snprintf(m, DL_DIAG_LEN, "%s", prefix);
  if (off < 0) off = 0;
  if (off < DL_DIAG_LEN) vsnprintf(m + off, DL_DIAG_LEN - (size_t)off, fmt, ap);
}

dl_status dl_error(dl_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_push("", fmt, ap);
  va_end(ap);
  return code;
}

dl_status dl_error_at(dl_status code, const dl_loc *loc, const char *fmt, ...) {
  char prefix[256] = "";
  if (loc && loc->file && loc->line > 0)
    snprintf(prefix, sizeof prefix, "%s:%d:%d: ", loc->file, loc->line, loc->col);
  else if (loc && loc->file)
    snprintf(prefix, sizeof prefix, "%s: ", loc->file);
  va_list ap;
  va_start(ap, fmt);
  diag_push(prefix, fmt, ap);
  va_end(ap);
  return code;
}

int dl_diag_count(void) { return diag_n; }

const char *dl_diag_text(void) {
  size_t off = 0;
  diag_joined[0] = 0;
  for (int i = 0; i < diag_n; i++)
    off += (size_t)snprintf(diag_joined + off, sizeof diag_joined - off, "%s\n", diag_msgs[i]);
  if (diag_dropped)
    snprintf(diag_joined + off, sizeof diag_joined - off, "(%d more errors not shown)\n",
             diag_dropped);
  return diag_joined;
}

void dl_diag_print(FILE *f) {
  for (int i = 0; i < diag_n; i++) fprintf(f, "error: %s\n", diag_msgs[i]);
  if (diag_dropped) fprintf(f, "error: (%d more errors not shown)\n", diag_dropped);
}

void dl_diag_clear(void) { diag_n = diag_dropped = 0; }

const char *dl_status_name(dl_status s) {
  switch (s) {
  case DL_OK: return "ok";
  case DL_EINTERNAL: return "internal error";
  case DL_EUSAGE: return "usage error";
  case DL_ECONFIG: return "configuration error";
  case DL_EDATA: return "data error";
  case DL_EDIVERGED: return "training diverged";
  case DL_EDEVICE: return "device error";
  case DL_EIO: return "i/o error";
  case DL_ENOMEM: return "out of memory";
  case DL_EINTERRUPTED: return "interrupted";
  }
  return "unknown error";
}

void dl_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "dltrain: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  abort();
}

void *dl_malloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) dl_error(DL_ENOMEM, "out of memory allocating %zu bytes", bytes);
  return p;
}

void *dl_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) dl_error(DL_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
  return p;
}

char *dl_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = dl_malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}
