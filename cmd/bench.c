/* dltrain bench NET.yaml: times full training iterations (forward, backward,
 * solver update) after a warm-up and reports where the time goes, per layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cmd/cmd.h"
#include "core/math.h"
#include "solvers/solver.h"

static void bench_usage(FILE *f) {
  fprintf(f, "usage: dltrain bench NET.yaml [options]\n\n"
             "Times training iterations of the net's train phase (forward, backward and an SGD\n"
             "momentum update) and prints forward and backward time per layer, then the whole\n"
             "iteration (median, min, max), samples/s, GFLOP/s and the peak memory.\n\n"
             "options:\n"
             "  --iterations N   timed iterations (default 20)\n"
             "  --warmup N       untimed iterations first (default 3)\n"
             "  --threads N      CPU threads (default: all cores)\n"
             "  --solver FILE    use this solver file's update rule instead of SGD, momentum 0.9\n"
             "  --json FILE      also write the results as JSON\n\n"
             "Layer times add up to the mean iteration; the rest is the solver update. GF/s\n"
             "counts the GEMM-like work (Convolution, InnerProduct, LSTM, RNN) only.\n");
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
  const char *net, *solver, *json;
  int iterations, warmup, threads;
} bench_args;

/* 0: run; -1: --help printed; else a usage exit code. */
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
    } else if (!strcmp(o, "--json") && i + 1 < argc) {
      a->json = argv[++i];
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

/* GEMM-like FLOPs of a step's forward and backward (the weight gradient, plus
 * the input gradient when it propagates). */
static void step_flops(const dl_net_step *s, double *fwd, double *bwd) {
  *fwd = s->layer->ops->flops ? s->layer->ops->flops(s->layer) : 0;
  *bwd = s->need_backward ? *fwd * (1 + (s->nb > 0 && s->prop_down[0])) : 0;
}

static double gflops(double flops, double ms) { return ms > 0 ? flops / ms * 1e-6 : 0; }

/* Prints the per-layer table (and its JSON); returns the iteration's FLOPs. */
static double print_layers(const dl_net *net, int iters, double mean_ms, FILE *json) {
  double sum = 0, flops = 0, data_ms = 0;
  printf("%-20s %-16s %9s %9s %7s %9s %9s\n", "layer", "type", "fwd ms", "bwd ms", "share",
         "fwd GF/s", "bwd GF/s");
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    double f = 1e3 * s->fwd_seconds / iters, b = 1e3 * s->bwd_seconds / iters, ff, bf;
    step_flops(s, &ff, &bf);
    sum += f + b;
    flops += ff + bf;
    if (s->layer->ops->flags & DL_LAYER_DATA) data_ms += f;
    printf("%-20s %-16s %9.3f %9.3f %6.1f%%", s->layer->name, s->layer->ops->type, f, b,
           100 * (f + b) / mean_ms);
    if (ff > 0) printf(" %9.1f %9.1f", gflops(ff, f), gflops(bf, b));
    printf("\n");
    if (json)
      fprintf(json,
              "%s{\"layer\": \"%s\", \"type\": \"%s\", \"fwd_ms\": %.4f, \"bwd_ms\": %.4f, "
              "\"fwd_gflop\": %.6f, \"bwd_gflop\": %.6f}",
              i ? ", " : "", s->layer->name, s->layer->ops->type, f, b, ff * 1e-9, bf * 1e-9);
  }
  double rest = mean_ms - sum;
  printf("%-20s %-16s %19.3f %6.1f%%\n", "(update, other)", "", rest, 100 * rest / mean_ms);
  printf("data layers: %.3f ms of the iteration (%.1f%%)\n", data_ms, 100 * data_ms / mean_ms);
  return flops;
}

static void report(const bench_args *a, dl_solver *s, double *t, FILE *json) {
  double total = 0;
  for (int i = 0; i < a->iterations; i++)
    total += t[i];
  qsort(t, (size_t)a->iterations, sizeof *t, by_value);
  int batch = s->train->nblobs ? dl_blob_dim(s->train->blobs[0], 0) : 1;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (json)
    fprintf(json, "{\"net\": \"%s\", \"threads\": %d, \"layers\": [", a->net, dl_get_threads());
  printf("net %s, %d threads, %d timed iterations after %d warm-up\n", a->net, dl_get_threads(),
         a->iterations, a->warmup);
  double flops = print_layers(s->train, a->iterations, total / a->iterations, json);
  double med = t[a->iterations / 2], rss = ru.ru_maxrss / 1024.0;
  printf("iteration: median %.3f ms, min %.3f, max %.3f; %.0f samples/s; %.1f GFLOP/s; "
         "peak RSS %.1f MiB\n",
         med, t[0], t[a->iterations - 1], 1e3 * batch / med, gflops(flops, med), rss);
  if (json)
    fprintf(json,
            "], \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"mean_ms\": %.4f, "
            "\"samples_per_s\": %.2f, \"gflop\": %.6f, \"peak_rss_mb\": %.1f}\n",
            med, t[0], t[a->iterations - 1], total / a->iterations, 1e3 * batch / med, flops * 1e-9,
            rss);
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
  FILE *json = a.json ? fopen(a.json, "w") : NULL;
  if (a.json && !json) st = dl_error(DL_EIO, "cannot write %s", a.json);
  for (int i = 0; i < a.warmup && !st; i++)
    st = dl_solver_step(s, NULL);
  double *t = calloc((size_t)a.iterations, sizeof *t);
  if (!t && !st) st = dl_error(DL_ENOMEM, "out of memory");
  s->train->timing = 1;
  for (int i = 0; i < a.iterations && !st; i++) {
    double t0 = now_s();
    st = dl_solver_step(s, NULL);
    t[i] = 1e3 * (now_s() - t0);
  }
  if (!st) report(&a, s, t, json);
  if (json) fclose(json);
  free(t);
  dl_solver_free(s);
  return st ? cmd_fail(st) : 0;
}
