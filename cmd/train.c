/* dltrain train NET.yaml SOLVER.yaml [options] */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/math.h"
#include "solvers/solver.h"

static void train_usage(FILE *f) {
  fprintf(f,
          "usage: dltrain train NET.yaml SOLVER.yaml [options]\n"
          "       dltrain train SOLVER.yaml [options]      (the solver names its net with 'net:')\n\n"
          "options:\n"
          "  --snapshot FILE  resume training exactly from a snapshot (.dlsnap)\n"
          "  --weights FILE   start from these weights (fine-tuning); prints what was loaded\n"
          "  --seed N         random seed (overrides the solver's 'seed')\n"
          "  --threads N      CPU threads for BLAS and dltrain's own loops (default: all cores)\n"
          "  --gpu N          train on GPU N (needs a GPU build and a GPU)\n"
          "  --export FILE    after training, also write the weights alone to FILE\n"
          "  --quiet          only errors and the final result\n\n"
          "Ctrl-C or SIGTERM writes a snapshot and exits (code 130); a second Ctrl-C exits at once.\n"
          "SIGHUP writes a snapshot and continues.\n");
}

int cmd_train(int argc, char **argv) {
  const char *pos[2] = {0}, *resume = NULL, *weights = NULL, *export_path = NULL;
  int npos = 0;
  dl_solver_opts opts = {.seed = -1, .gpu = -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int64_t v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      train_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--snapshot") && i + 1 < argc) {
      resume = argv[++i];
    } else if (!strcmp(a, "--weights") && i + 1 < argc) {
      weights = argv[++i];
    } else if (!strcmp(a, "--export") && i + 1 < argc) {
      export_path = argv[++i];
    } else if (!strcmp(a, "--seed")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 0, 2147483647, &v)) return DL_EUSAGE;
      opts.seed = v;
    } else if (!strcmp(a, "--threads")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 1024, &v)) return DL_EUSAGE;
      opts.threads = (int)v;
    } else if (!strcmp(a, "--gpu")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 0, 64, &v)) return DL_EUSAGE;
      opts.gpu = (int)v;
    } else if (!strcmp(a, "--quiet")) {
      opts.quiet = 1;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "dltrain train: unknown or incomplete option '%s'\n\n", a);
      train_usage(stderr);
      return DL_EUSAGE;
    } else if (npos < 2) {
      pos[npos++] = a;
    } else {
      fprintf(stderr, "dltrain train: too many arguments ('%s')\n\n", a);
      train_usage(stderr);
      return DL_EUSAGE;
    }
  }
  if (npos == 0) {
    train_usage(stderr);
    return DL_EUSAGE;
  }
  if (resume && weights) {
    fprintf(stderr, "dltrain train: give --snapshot (resume) or --weights (fine-tune), not both\n");
    return DL_EUSAGE;
  }
  const char *solver_file = npos == 2 ? pos[1] : pos[0];
  if (npos == 2) opts.net_path = pos[0];

  /* From here on, Ctrl-C during the (possibly long) setup also stops cleanly:
   * the loop sees the request before its first iteration. */
  dl_solver_install_signals();
  dl_solver_param p;
  dl_status st = dl_solver_param_load(solver_file, &p);
  if (st) return cmd_fail(st);
  dl_solver *s = NULL;
  cmd_heap_mark before = cmd_heap_mark_now();
  st = dl_solver_create(&p, solver_file, &opts, &s);
  if (st) return cmd_fail(st);
  if (!opts.quiet) {
    cmd_print_header(dl_get_threads(), s->param.seed);
    dl_net_print_summary(s->train, stderr);
    size_t history = (size_t)dl_solver_history_slots(s->param.type) * s->train->param_count;
    cmd_memory_plan plan = cmd_memory_plan_of(s->train, history * sizeof(float), before);
    fprintf(stderr, "  "); /* under the summary's lines */
    cmd_print_memory_plan(stderr, &plan, "after setup");
  }
  if (resume) st = dl_solver_restore(s, resume);
  if (!st && weights) st = dl_solver_load_weights(s, weights, opts.quiet ? NULL : stderr);
  if (st) {
    dl_solver_free(s);
    return cmd_fail(st);
  }
  st = dl_solver_solve(s);
  if ((st == DL_OK || st == DL_EINTERRUPTED) && export_path) {
    dl_status e = dl_net_export_weights(s->train, export_path);
    if (e) st = e;
    else if (!opts.quiet) fprintf(stderr, "weights written: %s\n", export_path);
  }
  if (st == DL_EINTERRUPTED) {
    fprintf(stderr, "interrupted; resume with: dltrain train %s%s%s --snapshot %s\n",
            npos == 2 ? pos[0] : "", npos == 2 ? " " : "", solver_file, s->last_snapshot);
  } else if (st == DL_OK) {
    fprintf(stderr, "done: %lld iterations; final snapshot %s\n", (long long)s->iter,
            s->last_snapshot[0] ? s->last_snapshot : "(none)");
  }
  int code = st && st != DL_EINTERRUPTED ? cmd_fail(st) : (int)st;
  dl_solver_free(s);
  return code;
}
