/* Helpers shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd.h"
#include "core/device.h"
#include "core/math.h"
#include "core/mem.h"
#include "core/net.h"
#include "core/status.h"
#include "layers/conv_onednn.h"

int cmd_parse_int(const char *opt, const char *value, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  errno = 0;
  long long v = value ? strtoll(value, &end, 10) : 0;
  if (!value || end == value || *end || errno || v < lo || v > hi) {
    fprintf(stderr, "dltrain: %s expects an integer in [%lld, %lld], got '%s'\n", opt,
            (long long)lo, (long long)hi, value ? value : "(nothing)");
    return 0;
  }
  *out = v;
  return 1;
}

int cmd_fail(int status) {
  dl_diag_print(stderr);
  if (!dl_diag_count()) fprintf(stderr, "error: %s\n", dl_status_name(status));
  return status;
}

void cmd_print_header(int threads, long long seed) {
  fprintf(stderr, "dltrain %s (C11, %s; %s)\n", DLTRAIN_VERSION,
#ifdef __OPTIMIZE__
          "optimized",
#else
          "debug",
#endif
          dl_gpu_build_info());
  fprintf(stderr, "threads: %d   BLAS: %s\n", threads, dl_blas_info());
  fprintf(stderr, "oneDNN: %s\n", dl_onednn_info());
  if (seed >= 0) fprintf(stderr, "seed: %lld\n", seed);
}

cmd_heap_mark cmd_heap_mark_now(void) {
  return (cmd_heap_mark){dl_heap_bytes(), dl_mem_heap_bytes_allocated()};
}

cmd_memory_plan cmd_memory_plan_of(const dl_net *net, size_t history_bytes, cmd_heap_mark since) {
  cmd_memory_plan m = {.params = net->param_count * sizeof(float),
                       .grads = dl_net_stored_grad_count(net) * sizeof(float),
                       .history = history_bytes,
                       .activations = dl_net_activation_bytes(net)};
  /* The heap's growth less the synced buffers that came from it (the small
   * ones: the large ones are mapped, outside the heap). */
  size_t heap = dl_heap_bytes(), mem = dl_mem_heap_bytes_allocated() - since.mem_heap;
  m.workspace_known = heap && since.heap;
  if (m.workspace_known && heap > since.heap + mem) m.workspace = heap - since.heap - mem;
  return m;
}

size_t cmd_memory_plan_total(const cmd_memory_plan *m) {
  return m->params + m->grads + m->history + m->activations + m->workspace;
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

void cmd_print_memory_plan(FILE *f, const cmd_memory_plan *m, const char *when) {
  fprintf(f,
          "memory plan: parameters %.1f MiB, gradients %.1f MiB%s, solver history %.1f MiB, "
          "activations and gradients %.1f MiB, ",
          mib(m->params), mib(m->grads),
          m->grads < m->params ? " (the rest updated during backward)" : "", mib(m->history),
          mib(m->activations));
  if (m->workspace_known)
    fprintf(f, "workspace %.1f MiB (layer buffers, data held in memory, library scratch; %s)",
            mib(m->workspace), when);
  else
    fprintf(f, "workspace not measured (glibc's mallinfo2 is needed)");
  fprintf(f, "; total %.1f MiB\n", mib(cmd_memory_plan_total(m)));
}
