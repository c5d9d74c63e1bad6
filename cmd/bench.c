/* dltrain bench NET.yaml: times full training iterations (forward, backward,
 * solver update) after a warm-up and reports where the time goes, per layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cmd/cmd.h"
#include "core/math.h"
#include "io/prefetch.h"
#include "solvers/solver.h"

static void bench_usage(FILE *f) {
  fprintf(
      f,
      "usage: dltrain bench NET.yaml [options]\n\n"
      "Times training iterations of the net's train phase (forward, backward and an SGD\n"
      "momentum update) and prints forward and backward time per layer, then the whole\n"
      "iteration (median, min, max), samples/s and the peak memory.\n\n"
      "options:\n"
      "  --iterations N   timed iterations (default 20)\n"
      "  --warmup N       untimed iterations first (default 3)\n"
      "  --threads N      CPU threads (default: all cores)\n"
      "  --solver FILE    use this solver file's update rule instead of SGD with momentum 0.9\n");
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  const char *net, *solver;
  int iterations, warmup, threads;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a) {
  *a = (bench_args){.iterations = 20, .warmup = 3};
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int64_t v;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      bench_usage(stdout);
      return -1;
    } else if (!strcmp(o, "--iterations") || !strcmp(o, "--warmup") || !strcmp(o, "--threads")) {
      if (!cmd_parse_int(o, i + 1 < argc ? argv[++i] : NULL, o[2] == 'w' ? 0 : 1, 1000000, &v))
        return DL_EUSAGE;
      *(o[2] == 'i' ? &a->iterations : o[2] == 'w' ? &a->warmup : &a->threads) = (int)v;
    } else if (!strcmp(o, "--solver") && i + 1 < argc) {
      a->solver = argv[++i];
    } else if (o[0] == '-' || a->net) {
      fprintf(stderr, "dltrain bench: unexpected argument '%s'\n\n", o);
      bench_usage(stderr);
      return DL_EUSAGE;
    } else {
      a->net = o;
    }
  }
  if (!a->net) {
    bench_usage(stderr);
    return DL_EUSAGE;
  }
  return 0;
}

static void print_layers(const dl_net *net, int iters, double total_ms) {
  double sum = 0;
  printf("%-20s %-16s %10s %10s %7s\n", "layer", "type", "fwd ms", "bwd ms", "share");
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    double f = 1e3 * s->fwd_seconds / iters, b = 1e3 * s->bwd_seconds / iters;
    sum += f + b;
    printf("%-20s %-16s %10.3f %10.3f %6.1f%%\n", s->layer->name, s->layer->ops->type, f, b,
           100 * (f + b) / total_ms);
  }
  double rest = total_ms - sum;
  printf("%-20s %-16s %21.3f %6.1f%%\n", "(update, other)", "", rest, 100 * rest / total_ms);
}

int cmd_bench(int argc, char **argv) {
  bench_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  dl_solver_param p;
  dl_status st = a.solver ? dl_solver_param_load(a.solver, &p)
                          : dl_solver_param_from_string(
                                "base_lr: 0.01\nmomentum: 0.9\nmax_iter: 1\n", "<bench>", &p);
  if (st) return cmd_fail(st);
  p.max_iter = a.warmup + a.iterations;
  p.display = 0;
  p.test_iter = 0;
  p.test_interval = 0;
  dl_solver_opts o = {.net_path = a.net,
                      .seed = 1,
                      .gpu = -1,
                      .threads = a.threads,
                      .metrics_path = "/dev/null",
                      .quiet = 1};
  dl_solver *s = NULL;
  if ((st = dl_solver_create(&p, a.solver ? a.solver : a.net, &o, &s))) return cmd_fail(st);
  for (int i = 0; i < a.warmup && !st; i++)
    st = dl_solver_step(s, NULL);
  double *t = calloc((size_t)a.iterations, sizeof *t);
  s->train->timing = 1;
  for (int i = 0; i < a.iterations && !st && t; i++) {
    double t0 = now_s();
    st = dl_solver_step(s, NULL);
    t[i] = 1e3 * (now_s() - t0);
  }
  if (st || !t) {
    free(t);
    dl_solver_free(s);
    return cmd_fail(st ? st : DL_ENOMEM);
  }
  double total = 0;
  for (int i = 0; i < a.iterations; i++)
    total += t[i];
  qsort(t, (size_t)a.iterations, sizeof *t, by_value);
  int batch = s->train->nblobs ? dl_blob_dim(s->train->blobs[0], 0) : 1;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("net %s, %d threads, %d timed iterations after %d warm-up\n", a.net, dl_get_threads(),
         a.iterations, a.warmup);
  print_layers(s->train, a.iterations, total / a.iterations);
  printf("iteration: median %.3f ms, min %.3f, max %.3f; %.0f samples/s; peak RSS %.1f MiB\n",
         t[a.iterations / 2], t[0], t[a.iterations - 1], 1e3 * batch / t[a.iterations / 2],
         ru.ru_maxrss / 1024.0);
  free(t);
  dl_solver_free(s);
  return 0;
}
