/* Helpers shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd.h"
#include "core/device.h"
#include "core/math.h"
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
