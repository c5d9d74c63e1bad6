/* dltrain test NET.yaml WEIGHTS [--iterations N]: mean of every net output
 * (losses, accuracies) over N test-phase batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/device.h"
#include "core/math.h"
#include "solvers/solver.h"

static void test_usage(FILE *f) {
  fprintf(f,
          "usage: dltrain test NET.yaml WEIGHTS [options]\n\n"
          "Runs the test phase of NET over N batches with WEIGHTS (a snapshot or an exported\n"
          "weights file) and prints the mean of every output (loss, accuracy).\n\n"
          "options:\n"
          "  --iterations N   batches to evaluate (default 100)\n"
          "  --threads N      CPU threads (default: all cores)\n"
          "  --gpu N          run on GPU N\n");
}

int cmd_test(int argc, char **argv) {
  const char *pos[2] = {0};
  int npos = 0, threads = 0, gpu = -1;
  int64_t iterations = 100, v;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      test_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--iterations")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 100000000, &iterations)) return DL_EUSAGE;
    } else if (!strcmp(a, "--threads")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 1024, &v)) return DL_EUSAGE;
      threads = (int)v;
    } else if (!strcmp(a, "--gpu")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 0, 64, &v)) return DL_EUSAGE;
      gpu = (int)v;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "dltrain test: unknown or incomplete option '%s'\n\n", a);
      test_usage(stderr);
      return DL_EUSAGE;
    } else if (npos < 2) {
      pos[npos++] = a;
    } else {
      fprintf(stderr, "dltrain test: too many arguments ('%s')\n", a);
      return DL_EUSAGE;
    }
  }
  if (npos != 2) {
    test_usage(stderr);
    return DL_EUSAGE;
  }
  if (gpu >= 0) {
    dl_status st = dl_gpu_require(gpu);
    if (st) return cmd_fail(st);
  }
  dl_set_threads(threads);
  dl_ctx ctx = {.seed = 1, .threads = dl_get_threads(), .gpu = gpu >= 0};
  dl_net *net = NULL;
  dl_status st = dl_net_from_file(pos[0], DL_TEST, &ctx, &net);
  if (st) return cmd_fail(st);
  cmd_print_header(dl_get_threads(), -1);
  if (gpu >= 0) fprintf(stderr, "%s\n", dl_gpu_startup_line());
  dl_net_print_summary(net, stderr);
  dl_net_report_cpu_layers(net, stderr);
  int loaded = 0;
  st = dl_net_load_weights(net, pos[1], stderr, &loaded);
  if (!st && loaded < net->nparams)
    st = dl_error(DL_ECONFIG, "%s: only %d of the net's %d parameters were found in the file", pos[1],
                  loaded, net->nparams);
  double *sums = calloc((size_t)net->noutputs + 1, sizeof(double));
  for (int64_t it = 0; !st && it < iterations; it++) {
    st = dl_net_forward(net, NULL);
    for (int o = 0; !st && o < net->noutputs; o++) {
      const float *y = dl_cdata(net->outputs[o]);
      for (size_t e = 0; e < net->outputs[o]->count; e++) sums[o] += y[e];
    }
  }
  if (!st)
    for (int o = 0; o < net->noutputs; o++) {
      double mean = sums[o] / ((double)iterations * (double)net->outputs[o]->count);
      printf("%s = %.6g\n", net->outputs[o]->name, mean);
      if (dl_net_output_perplexity(net, o))
        printf("%s_perplexity = %.6g\n", net->outputs[o]->name, exp(mean));
    }
  free(sums);
  dl_net_free(net);
  return st ? cmd_fail(st) : 0;
}
