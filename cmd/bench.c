/* dltrain bench: times training iterations (forward, backward, solver update),
 * or test-phase forward passes, after a warm-up and reports where the time goes,
 * per layer, beside the net's memory plan. --peak measures the machine's sgemm
 * rate through dl_gemm; --suite dlbench runs the DLBench study's five nets over
 * a list of thread counts and prints (and plots) ms per mini-batch. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/device.h"
#include "core/math.h"
#include "core/mem.h"
#include "io/plot.h"
#include "layers/conv_onednn.h"
#include "solvers/solver.h"

#define MAX_THREAD_LIST 32
#define MAX_BATCH       (1 << 20)

static void bench_usage(FILE *f) {
  fprintf(f,
          "usage: dltrain bench NET.yaml [options]\n"
          "       dltrain bench --peak [--threads N] [--peak-size N]\n"
          "       dltrain bench --suite dlbench [--threads 1,2,...] [--plot FILE.png] [options]\n\n"
          "Times training iterations of the net's train phase (forward, backward and an SGD\n"
          "momentum update), or with --phase test forward passes of its test phase, and prints\n"
          "the memory plan, forward and backward time per layer, then the whole iteration\n"
          "(median, min, max), samples/s, GFLOP/s and the peak RSS beside the plan.\n\n"
          "options:\n"
          "  --iterations N   timed iterations (default 20; 10 with --suite)\n"
          "  --warmup N       untimed iterations first (default 3; 2 with --suite)\n"
          "  --threads N      CPU threads (default: all cores); with --suite a list, 1,2,4\n"
          "                   (default: 1, 2, 4, ... up to all cores)\n"
          "  --batch N        replace the batch size of every data layer (batch_size, or\n"
          "                   SyntheticData's shape[batch_axis])\n"
          "  --phase P        train (default) or test: forward passes of the test-phase net\n"
          "  --solver FILE    use this solver file's update rule instead of SGD, momentum 0.9\n"
          "  --peak           also measure the sgemm rate of dl_gemm at these threads (the\n"
          "                   median of 7) and print the iteration's median GFLOP/s as a\n"
          "                   fraction of it (alone: just the rate)\n"
          "  --peak-size N    the sgemm's M = N = K (default 2048)\n"
          "  --json FILE      also write the results as JSON\n"
          "  --suite dlbench  run fcn_s, fcn_r, alexnet_s, alexnet_r and lstm at their CPU\n"
          "                   batch sizes for each thread count; print ms per mini-batch\n"
          "  --configs DIR    where the suite's nets are (default configs/dlbench)\n"
          "  --plot FILE.png  with --suite: a line chart of ms per mini-batch against threads\n"
          "  --gpu N          run on GPU N (a GPU build; ./dltrain hands over to dltrain-gpu):\n"
          "                   the GPU is waited for after each layer and iteration, and the\n"
          "                   device memory is reported (peak of dltrain's buffers, and all\n"
          "                   in use on the GPU); with --suite one column for the GPU\n"
          "  --gpu-batches    with --suite --gpu: the study's GPU batch sizes (FCN-S 1024,\n"
          "                   FCN-R 4096, AlexNet-S 128, AlexNet-R 1024, LSTM 1024)\n\n"
          "Layer times add up to the mean iteration; the rest is the solver update. GF/s\n"
          "counts the GEMM-like work (Convolution, InnerProduct, LSTM, RNN) only.\n");
}

/* ---- arguments ------------------------------------------------------------- */

typedef struct {
  const char *net, *solver, *json, *plot, *configs, *suite;
  int iterations, warmup; /* -1: the default */
  int batch;              /* 0: the nets' own */
  int peak, peak_size;
  int gpu;         /* -1: the CPU */
  int gpu_batches; /* --suite --gpu: the study's GPU batch sizes */
  dl_phase phase;
  int nthreads, threads[MAX_THREAD_LIST]; /* none given: all cores (suite: 1, 2, 4, ...) */
} bench_args;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "dltrain bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n\n");
  va_end(ap);
  bench_usage(stderr);
  return DL_EUSAGE;
}

/* "1,2,4" into a->threads. */
static int parse_threads(const char *value, bench_args *a) {
  char buf[256];
  if (strlen(value) >= sizeof buf) return usage_error("--threads: the list is too long");
  snprintf(buf, sizeof buf, "%s", value);
  a->nthreads = 0;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    int64_t v;
    if (a->nthreads == MAX_THREAD_LIST)
      return usage_error("--threads: at most %d thread counts", MAX_THREAD_LIST);
    if (!cmd_parse_int("--threads", tok, 1, 1024, &v)) return DL_EUSAGE;
    a->threads[a->nthreads++] = (int)v;
  }
  if (!a->nthreads) return usage_error("--threads expects an integer or a list, got '%s'", value);
  return 0;
}

/* 0: run; -1: --help printed; else a usage exit code. */
static int parse_args(int argc, char **argv, bench_args *a) {
  *a =
      (bench_args){.iterations = -1, .warmup = -1, .peak_size = 2048, .gpu = -1, .phase = DL_TRAIN};
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int64_t v;
    int has_value = i + 1 < argc;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      bench_usage(stdout);
      return -1;
    } else if (!strcmp(o, "--peak")) {
      a->peak = 1;
      continue;
    } else if (!strcmp(o, "--gpu-batches")) {
      a->gpu_batches = 1;
      continue;
    } else if (o[0] == '-' && !has_value) {
      return usage_error("unexpected argument '%s' (or it needs a value)", o);
    }
    const char *val = o[0] == '-' ? argv[i + 1] : NULL;
    if (!strcmp(o, "--iterations") || !strcmp(o, "--warmup")) {
      if (!cmd_parse_int(o, val, o[2] == 'w' ? 0 : 1, 1000000, &v)) return DL_EUSAGE;
      *(o[2] == 'w' ? &a->warmup : &a->iterations) = (int)v;
    } else if (!strcmp(o, "--batch")) {
      if (!cmd_parse_int(o, val, 1, MAX_BATCH, &v)) return DL_EUSAGE;
      a->batch = (int)v;
    } else if (!strcmp(o, "--gpu")) {
      if (!cmd_parse_int(o, val, 0, 63, &v)) return DL_EUSAGE;
      a->gpu = (int)v;
    } else if (!strcmp(o, "--peak-size")) {
      if (!cmd_parse_int(o, val, 16, 16384, &v)) return DL_EUSAGE;
      a->peak_size = (int)v;
    } else if (!strcmp(o, "--threads")) {
      int rc = parse_threads(val, a);
      if (rc) return rc;
    } else if (!strcmp(o, "--phase")) {
      if (strcmp(val, "train") && strcmp(val, "test"))
        return usage_error("--phase expects train or test, got '%s'", val);
      a->phase = val[1] == 'e' ? DL_TEST : DL_TRAIN;
    } else if (!strcmp(o, "--suite")) {
      if (strcmp(val, "dlbench"))
        return usage_error("--suite: the only suite is dlbench, got '%s'", val);
      a->suite = val;
    } else if (!strcmp(o, "--solver")) {
      a->solver = val;
    } else if (!strcmp(o, "--json")) {
      a->json = val;
    } else if (!strcmp(o, "--plot")) {
      a->plot = val;
    } else if (!strcmp(o, "--configs")) {
      a->configs = val;
    } else if (o[0] == '-' || a->net) {
      return usage_error("unexpected argument '%s'", o);
    } else {
      a->net = o;
      continue;
    }
    i++; /* the option's value */
  }
  if (a->suite && a->net)
    return usage_error("give NET.yaml or --suite, not both (got '%s')", a->net);
  if (!a->suite && (a->plot || a->configs))
    return usage_error("--plot and --configs only go with --suite dlbench");
  if (!a->suite && a->nthreads > 1)
    return usage_error("--threads: several thread counts only go with --suite");
  if (a->phase == DL_TEST && a->solver) return usage_error("--solver: --phase test runs no solver");
  if (a->gpu >= 0 && a->peak)
    return usage_error("--peak measures the CPU's sgemm rate; it does not go with --gpu");
  if (a->gpu >= 0 && a->plot)
    return usage_error("--plot draws CPU thread scaling; it does not go with --gpu");
  if (a->gpu_batches && !(a->suite && a->gpu >= 0))
    return usage_error("--gpu-batches only goes with --suite dlbench --gpu N");
  if (!a->suite && !a->net && !a->peak) {
    bench_usage(stderr);
    return DL_EUSAGE;
  }
  if (a->iterations < 0) a->iterations = a->suite ? 10 : 20;
  if (a->warmup < 0) a->warmup = a->suite ? 2 : 3;
  return 0;
}

/* ---- measuring ------------------------------------------------------------- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

/* Peak resident memory of this process: VmHWM, which (unlike getrusage's
 * maximum) reset_peak_rss can lower between the suite's nets. */
static double peak_rss_mib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  if (kb >= 0) return kb / 1024.0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

static void reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return; /* an older kernel: the suite's peaks are then cumulative */
  fputs("5", f);
  fclose(f);
}

/* The sgemm rate of n x n x n through dl_gemm at the current thread count: the
 * median and the best of SGEMM_RUNS (after one warm-up). The iteration is set
 * against the median: on a shared machine a median set against a best
 * understates how close it runs (FCN-R at 1 thread read 91% and 98% a minute
 * apart that way). */
enum { SGEMM_RUNS = 7 };
typedef struct {
  double median, best; /* GFLOP/s */
} sgemm_rate;

static dl_status sgemm_peak(int n, sgemm_rate *rate) {
  size_t nn = (size_t)n * (size_t)n;
  float *A = malloc(nn * sizeof *A), *B = malloc(nn * sizeof *B), *C = malloc(nn * sizeof *C);
  dl_status st = DL_OK;
  if (!A || !B || !C) {
    st = dl_error(DL_ENOMEM, "--peak: out of memory for three %d x %d matrices", n, n);
  } else {
    for (size_t i = 0; i < nn; i++) {
      A[i] = (float)(i % 97) * 0.01f - 0.5f;
      B[i] = (float)(i % 89) * 0.01f - 0.4f;
    }
    double t[SGEMM_RUNS + 1];
    for (int r = 0; r <= SGEMM_RUNS; r++) {
      double t0 = now_s();
      dl_gemm(0, 0, n, n, n, 1.0f, A, B, 0.0f, C);
      t[r] = now_s() - t0;
    }
    qsort(t + 1, SGEMM_RUNS, sizeof *t, by_value); /* t[0]: the warm-up */
    double flop = 2.0 * n * n * (double)n;
    *rate = (sgemm_rate){flop / t[1 + SGEMM_RUNS / 2] * 1e-9, flop / t[1] * 1e-9};
  }
  free(A);
  free(B);
  free(C);
  return st;
}

/* ---- one net --------------------------------------------------------------- */

typedef struct {
  dl_solver *solver; /* train phase */
  dl_net *net;       /* the timed net: the solver's train net, or a test-phase net */
  dl_ctx ctx;        /* test phase (the net keeps a pointer to it) */
  size_t history_bytes;
  cmd_heap_mark mark;  /* the heap before the net was built */
  cmd_memory_plan mem; /* measured after the timed iterations (time_net) */
  double *t; /* (iterations) ms, sorted once timed */
  double median, mean, flops, rss;
  double gpu_peak, gpu_in_use; /* MiB: dltrain's device buffers at most; all in use on the GPU */
} bench_run;

static size_t plan_bytes(const bench_run *r) { return cmd_memory_plan_total(&r->mem); }

static dl_status open_net(const bench_args *a, const char *path, int threads, bench_run *r) {
  *r = (bench_run){.mark = cmd_heap_mark_now()};
  dl_status st;
  dl_mem_device_peak_reset(); /* each net's own peak */
  if (a->phase == DL_TEST) {
    dl_set_threads(threads);
    if (a->gpu >= 0 && (st = dl_gpu_require(a->gpu))) return st;
    r->ctx =
        (dl_ctx){.seed = 1, .threads = dl_get_threads(), .batch = a->batch, .gpu = a->gpu >= 0};
    st = dl_net_from_file(path, DL_TEST, &r->ctx, &r->net);
  } else {
    dl_solver_param p;
    st = a->solver ? dl_solver_param_load(a->solver, &p)
                   : dl_solver_param_from_string("base_lr: 0.01\nmomentum: 0.9\nmax_iter: 1\n",
                                                 "<bench>", &p);
    if (st) return st;
    p.max_iter = a->warmup + a->iterations;
    p.display = 0;
    p.test_iter = 0;
    p.test_interval = 0;
    dl_solver_opts o = {.net_path = path,
                        .seed = 1,
                        .gpu = a->gpu,
                        .threads = threads,
                        .batch = a->batch,
                        .metrics_path = "/dev/null",
                        .quiet = 1};
    st = dl_solver_create(&p, a->solver ? a->solver : path, &o, &r->solver);
    if (!st) {
      r->net = r->solver->train;
      r->history_bytes =
          (size_t)dl_solver_history_slots(p.type) * r->net->param_count * sizeof(float);
    }
  }
  if (!st && a->batch && !dl_net_batch_size(r->net))
    st = dl_error(DL_ECONFIG, "%s: --batch %d: the net has no data layer", path, a->batch);
  if (!st && !(r->t = calloc((size_t)a->iterations, sizeof *r->t)))
    st = dl_error(DL_ENOMEM, "out of memory");
  return st;
}

static void close_net(bench_run *r) {
  if (r->solver)
    dl_solver_free(r->solver);
  else
    dl_net_free(r->net);
  free(r->t);
  *r = (bench_run){0};
}

static dl_status step(bench_run *r) {
  if (r->solver) return dl_solver_step(r->solver, NULL);
  dl_status st = dl_net_forward(r->net, NULL);
  r->ctx.iter++;
  return st;
}

/* GEMM-like FLOPs of a step's forward and backward (the weight gradient, plus
 * the input gradient when it propagates); no backward in the test phase. */
static void step_flops(const dl_net_step *s, double *fwd, double *bwd) {
  *fwd = s->layer->ops->flops ? s->layer->ops->flops(s->layer) : 0;
  *bwd = s->need_backward && s->layer->phase == DL_TRAIN
             ? *fwd * (1 + (s->nb > 0 && s->prop_down[0]))
             : 0;
}

static double net_flops(const dl_net *net) {
  double sum = 0, f, b;
  for (int i = 0; i < net->nsteps; i++) {
    step_flops(&net->steps[i], &f, &b);
    sum += f + b;
  }
  return sum;
}

static dl_status time_net(const bench_args *a, bench_run *r) {
  dl_status st = DL_OK;
  int gpu = a->gpu >= 0;
  for (int i = 0; i < a->warmup && !st; i++)
    if (!(st = step(r)) && gpu) st = dl_gpu_sync();
  r->net->timing = 1;
  double total = 0;
  for (int i = 0; i < a->iterations && !st; i++) {
    double t0 = now_s();
    st = step(r);
    if (!st && gpu) st = dl_gpu_sync(); /* the iteration ends when the GPU is done */
    total += r->t[i] = 1e3 * (now_s() - t0);
    if (gpu) r->gpu_in_use = fmax(r->gpu_in_use, mib((double)dl_gpu_memory_in_use()));
  }
  r->net->timing = 0;
  if (st) return st;
  r->gpu_peak = mib((double)dl_mem_device_bytes_peak());
  qsort(r->t, (size_t)a->iterations, sizeof *r->t, by_value);
  r->median = r->t[a->iterations / 2];
  r->mean = total / a->iterations;
  r->flops = net_flops(r->net);
  r->rss = peak_rss_mib();
  r->mem = cmd_memory_plan_of(r->net, r->history_bytes, r->mark);
  return DL_OK;
}

static double gflops(double flops, double ms) { return ms > 0 ? flops / ms * 1e-6 : 0; }

/* The per-layer table: forward and backward (train) or forward only (test). */
static void print_layers(const bench_args *a, const bench_run *r) {
  const dl_net *net = r->net;
  int train = a->phase == DL_TRAIN;
  double sum = 0, data_ms = 0;
  if (train)
    printf("%-20s %-16s %9s %9s %7s %9s %9s\n", "layer", "type", "fwd ms", "bwd ms", "share",
           "fwd GF/s", "bwd GF/s");
  else
    printf("%-20s %-16s %9s %7s %9s\n", "layer", "type", "fwd ms", "share", "fwd GF/s");
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    double f = 1e3 * s->fwd_seconds / a->iterations, b = 1e3 * s->bwd_seconds / a->iterations;
    double ff, bf;
    step_flops(s, &ff, &bf);
    sum += f + b;
    if (s->layer->ops->flags & DL_LAYER_DATA) data_ms += f;
    printf("%-20s %-16s %9.3f ", s->layer->name, s->layer->ops->type, f);
    if (train) printf("%9.3f ", b);
    printf("%6.1f%%", 100 * (f + b) / r->mean);
    if (ff > 0) printf(" %9.1f", gflops(ff, f));
    if (ff > 0 && train) printf(" %9.1f", gflops(bf, b));
    printf("\n");
  }
  double rest = r->mean - sum;
  printf("%-20s %-16s %*.3f %6.1f%%\n", train ? "(update, other)" : "(other)", "", train ? 19 : 9,
         rest, 100 * rest / r->mean);
  printf("data layers: %.3f ms of the iteration (%.1f%%)\n", data_ms, 100 * data_ms / r->mean);
}

/* A JSON string (names and paths: only quotes and backslashes need escaping). */
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void write_json(FILE *f, const bench_args *a, const bench_run *r, sgemm_rate peak) {
  const dl_net *net = r->net;
  int batch = dl_net_batch_size(net), n = a->iterations;
  const cmd_memory_plan *m = &r->mem;
  fprintf(f, "{\"net\": ");
  json_str(f, a->net);
  fprintf(f,
          ", \"phase\": \"%s\", \"batch\": %d, \"threads\": %d, \"iterations\": %d, "
          "\"warmup\": %d, \"memory_plan\": {\"params_bytes\": %zu, \"grads_bytes\": %zu, "
          "\"history_bytes\": %zu, \"activations_bytes\": %zu, \"workspace_bytes\": ",
          a->phase == DL_TEST ? "test" : "train", batch, dl_get_threads(), n, a->warmup, m->params,
          m->grads, m->history, m->activations);
  if (m->workspace_known)
    fprintf(f, "%zu", m->workspace);
  else
    fprintf(f, "null"); /* not measured: see cmd_print_memory_plan */
  fprintf(f, ", \"total_bytes\": %zu}, \"layers\": [", plan_bytes(r));
  for (int i = 0; i < net->nsteps; i++) {
    const dl_net_step *s = &net->steps[i];
    double ff, bf;
    step_flops(s, &ff, &bf);
    fprintf(f, "%s{\"layer\": ", i ? ", " : "");
    json_str(f, s->layer->name);
    fprintf(f,
            ", \"type\": \"%s\", \"fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"fwd_gflop\": %.6f, "
            "\"bwd_gflop\": %.6f}",
            s->layer->ops->type, 1e3 * s->fwd_seconds / n, 1e3 * s->bwd_seconds / n, ff * 1e-9,
            bf * 1e-9);
  }
  fprintf(f,
          "], \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"mean_ms\": %.4f, "
          "\"samples_per_s\": %.2f, \"gflop\": %.6f, \"gflops\": %.2f, \"peak_rss_mb\": %.1f",
          r->median, r->t[0], r->t[n - 1], r->mean, 1e3 * batch / r->median, r->flops * 1e-9,
          gflops(r->flops, r->median), r->rss);
  if (peak.median > 0)
    fprintf(f,
            ", \"sgemm_peak_gflops\": %.2f, \"sgemm_best_gflops\": %.2f, \"peak_fraction\": %.4f",
            peak.median, peak.best, gflops(r->flops, r->median) / peak.median);
  if (a->gpu >= 0)
    fprintf(f, ", \"gpu\": %d, \"peak_gpu_mb\": %.1f, \"gpu_in_use_mb\": %.1f", a->gpu, r->gpu_peak,
            r->gpu_in_use);
  fprintf(f, "}\n");
}

static dl_status open_json(const char *path, FILE **f) {
  *f = NULL;
  if (!path) return DL_OK;
  if (!(*f = fopen(path, "w")))
    return dl_error(DL_EIO, "cannot write %s: %s", path, strerror(errno));
  return DL_OK;
}

static dl_status close_json(const char *path, FILE *f) {
  if (f && fclose(f)) return dl_error(DL_EIO, "cannot write %s: %s", path, strerror(errno));
  return DL_OK;
}

static void thread_label(int t, char *buf, size_t n) {
  snprintf(buf, n, "%d thread%s", t, t == 1 ? "" : "s");
}

static int bench_one(const bench_args *a) {
  int threads = a->nthreads ? a->threads[0] : 0;
  sgemm_rate peak = {0, 0};
  char tl[32];
  dl_status st = DL_OK;
  if (!a->net) { /* --peak alone */
    dl_set_threads(threads);
    thread_label(dl_get_threads(), tl, sizeof tl);
    if (!(st = sgemm_peak(a->peak_size, &peak)))
      printf("sgemm peak: %.1f GFLOP/s (dl_gemm %d^3, %s, median of %d; best %.1f)\n", peak.median,
             a->peak_size, tl, SGEMM_RUNS, peak.best);
    return st ? cmd_fail(st) : 0;
  }
  bench_run r = {0};
  FILE *json = NULL;
  st = open_json(a->json, &json);
  if (!st) st = open_net(a, a->net, threads, &r);
  if (!st) {
    thread_label(dl_get_threads(), tl, sizeof tl);
    if (a->gpu >= 0) printf("%s\n", dl_gpu_startup_line());
    printf("net %s (%s), %s phase%s, batch %d, %s, %d timed iterations after %d warm-up\n",
           r.net->name, a->net, a->phase == DL_TEST ? "test" : "train",
           a->phase == DL_TEST ? " (forward passes only)" : "", dl_net_batch_size(r.net), tl,
           a->iterations, a->warmup);
    fflush(stdout);
    st = time_net(a, &r);
  }
  if (!st) {
    int batch = dl_net_batch_size(r.net);
    cmd_print_memory_plan(stdout, &r.mem, "after the timed iterations");
    print_layers(a, &r);
    printf("iteration: median %.3f ms, min %.3f, max %.3f; %.0f samples/s; %.1f GFLOP/s; "
           "peak RSS %.1f MiB (plan %.1f MiB)\n",
           r.median, r.t[0], r.t[a->iterations - 1], 1e3 * batch / r.median,
           gflops(r.flops, r.median), r.rss, mib((double)plan_bytes(&r)));
    if (a->gpu >= 0)
      printf("device memory: peak %.1f MiB of dltrain's buffers; %.1f MiB in use on the GPU "
             "(with the CUDA context and the libraries' workspaces)\n",
             r.gpu_peak, r.gpu_in_use);
    fflush(stdout);
  }
  if (!st && a->peak && !(st = sgemm_peak(a->peak_size, &peak)))
    printf("sgemm peak: %.1f GFLOP/s (dl_gemm %d^3, %s, median of %d; best %.1f); the iteration "
           "ran at %.1f GFLOP/s (median), %.1f%% of it (its best, %.1f GFLOP/s, %.1f%% of the "
           "best)\n",
           peak.median, a->peak_size, tl, SGEMM_RUNS, peak.best, gflops(r.flops, r.median),
           100 * gflops(r.flops, r.median) / peak.median, gflops(r.flops, r.t[0]),
           100 * gflops(r.flops, r.t[0]) / peak.best);
  if (!st && json) write_json(json, a, &r, peak);
  dl_status cst = close_json(a->json, json);
  if (!st) st = cst;
  if (r.net) close_net(&r);
  return st ? cmd_fail(st) : 0;
}

/* ---- the DLBench suite ----------------------------------------------------- */

static const char *const suite_nets[] = {"fcn_s", "fcn_r", "alexnet_s", "alexnet_r", "lstm"};
/* The study's GPU batch sizes (../shared/dlbench.md), for --gpu-batches. */
static const int suite_gpu_batches[] = {1024, 4096, 128, 1024, 1024};
#define NSUITE (int)(sizeof suite_nets / sizeof suite_nets[0])
_Static_assert(sizeof suite_gpu_batches / sizeof suite_gpu_batches[0] == NSUITE,
               "a GPU batch size for each suite net");

typedef struct {
  int batch;
  double median, min, max, gflop, rss, plan;
  double gpu_peak; /* MiB, with --gpu */
} suite_cell;

/* 1, 2, 4, ... below the core count, then the core count. */
static void default_threads(bench_args *a) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  a->nthreads = 0;
  for (int t = 1; t < cores && a->nthreads < MAX_THREAD_LIST - 1; t *= 2)
    a->threads[a->nthreads++] = t;
  a->threads[a->nthreads++] = (int)cores;
}

/* The suite's column j: a thread count, or the GPU. */
static void column_label(const bench_args *a, int j, char *buf, size_t n) {
  if (a->gpu >= 0)
    snprintf(buf, n, "GPU %d", a->gpu);
  else
    thread_label(a->threads[j], buf, n);
}

static void print_suite_table(const bench_args *a, const suite_cell *cells, const double *peaks) {
  char h[32];
  printf("\nDLBench: ms per mini-batch (median of %d iterations after %d warm-up), %s phase\n",
         a->iterations, a->warmup, a->phase == DL_TEST ? "test (forward only)" : "train");
  printf("%-10s %6s", "net", "batch");
  for (int j = 0; j < a->nthreads; j++) {
    column_label(a, j, h, sizeof h);
    printf(" %11s", h);
  }
  printf(" %9s %9s%s\n", "peak MiB", "plan MiB", a->gpu >= 0 ? "   GPU MiB" : "");
  for (int n = 0; n < NSUITE; n++) {
    const suite_cell *row = cells + (size_t)n * (size_t)a->nthreads;
    double rss = 0;
    printf("%-10s %6d", suite_nets[n], row[0].batch);
    for (int j = 0; j < a->nthreads; j++) {
      printf(row[j].median < 10 ? " %11.3f" : " %11.1f", row[j].median);
      rss = fmax(rss, row[j].rss);
    }
    printf(" %9.1f %9.1f", rss, row[0].plan);
    if (a->gpu >= 0) printf(" %9.1f", row[0].gpu_peak);
    printf("\n");
  }
  if (!peaks) return;
  printf("\nGFLOP/s over the iteration (%% of the sgemm peak at that thread count)\n");
  printf("%-10s %6s", "net", "");
  for (int j = 0; j < a->nthreads; j++) {
    thread_label(a->threads[j], h, sizeof h);
    printf(" %15s", h);
  }
  printf("\n%-10s %6s", "sgemm", "");
  for (int j = 0; j < a->nthreads; j++)
    printf(" %15.1f", peaks[j]);
  printf("\n");
  for (int n = 0; n < NSUITE; n++) {
    const suite_cell *row = cells + (size_t)n * (size_t)a->nthreads;
    printf("%-10s %6s", suite_nets[n], "");
    for (int j = 0; j < a->nthreads; j++) {
      double g = gflops(row[j].gflop * 1e9, row[j].median);
      snprintf(h, sizeof h, "%.1f (%.0f%%)", g, 100 * g / peaks[j]);
      printf(" %15s", h);
    }
    printf("\n");
  }
}

static void write_suite_json(FILE *f, const bench_args *a, const char *dir, const suite_cell *cells,
                             const double *peaks) {
  fprintf(f, "{\"suite\": \"dlbench\", \"configs\": ");
  json_str(f, dir);
  fprintf(f, ", \"phase\": \"%s\", \"iterations\": %d, \"warmup\": %d, ",
          a->phase == DL_TEST ? "test" : "train", a->iterations, a->warmup);
  if (a->gpu >= 0) fprintf(f, "\"gpu\": %d, ", a->gpu);
  fprintf(f, "\"threads\": [");
  for (int j = 0; j < a->nthreads; j++)
    fprintf(f, "%s%d", j ? ", " : "", a->threads[j]);
  fprintf(f, "]");
  if (peaks) {
    fprintf(f, ", \"sgemm_peak_gflops\": [");
    for (int j = 0; j < a->nthreads; j++)
      fprintf(f, "%s%.2f", j ? ", " : "", peaks[j]);
    fprintf(f, "]");
  }
  fprintf(f, ", \"results\": [");
  for (int n = 0; n < NSUITE; n++)
    for (int j = 0; j < a->nthreads; j++) {
      const suite_cell *c = cells + (size_t)n * (size_t)a->nthreads + j;
      fprintf(f,
              "%s{\"net\": \"%s\", \"threads\": %d, \"batch\": %d, \"median_ms\": %.4f, "
              "\"min_ms\": %.4f, \"max_ms\": %.4f, \"gflop\": %.6f, \"peak_rss_mb\": %.1f, "
              "\"plan_mb\": %.1f",
              n || j ? ", " : "", suite_nets[n], a->threads[j], c->batch, c->median, c->min, c->max,
              c->gflop, c->rss, c->plan);
      if (a->gpu >= 0) fprintf(f, ", \"peak_gpu_mb\": %.1f", c->gpu_peak);
      fprintf(f, "}");
    }
  fprintf(f, "]}\n");
}

static dl_status write_suite_plot(const bench_args *a, const suite_cell *cells) {
  char labels[MAX_THREAD_LIST][16];
  const char *xticks[MAX_THREAD_LIST];
  double *values = calloc((size_t)NSUITE * (size_t)a->nthreads, sizeof *values);
  if (!values) return dl_error(DL_ENOMEM, "out of memory");
  for (int j = 0; j < a->nthreads; j++) {
    snprintf(labels[j], sizeof labels[j], "%d", a->threads[j]);
    xticks[j] = labels[j];
  }
  for (int i = 0; i < NSUITE * a->nthreads; i++)
    values[i] = cells[i].median;
  dl_chart chart = {.title = "DLBench on the CPU: time per mini-batch",
                    .xlabel = "threads",
                    .ylabel = "ms per mini-batch (log scale)",
                    .npoints = a->nthreads,
                    .xticks = xticks,
                    .nseries = NSUITE,
                    .names = suite_nets,
                    .values = values,
                    .log_y = 1};
  dl_canvas c;
  char err[600];
  dl_status st = dl_canvas_init(&c, 900, 560, (dl_rgb){255, 255, 255});
  if (st) st = dl_error(st, "--plot: cannot make a canvas");
  if (!st) {
    dl_chart_draw(&c, &chart);
    if ((st = dl_canvas_save_png(&c, a->plot, err, sizeof err))) st = dl_error(st, "%s", err);
  }
  dl_canvas_free(&c);
  free(values);
  return st;
}

static int bench_suite(bench_args *a) {
  const char *dir = a->configs ? a->configs : "configs/dlbench";
  if (!a->nthreads) default_threads(a);
  if (a->gpu >= 0) { /* one column: the GPU, its host side at the first thread count */
    if (a->nthreads > 1) a->threads[0] = a->threads[a->nthreads - 1];
    a->nthreads = 1;
  }
  suite_cell *cells = calloc((size_t)NSUITE * (size_t)a->nthreads, sizeof *cells);
  double peaks[MAX_THREAD_LIST];
  FILE *json = NULL;
  dl_status st = cells ? open_json(a->json, &json) : dl_error(DL_ENOMEM, "out of memory");
  char path[4096];
  for (int n = 0; n < NSUITE && !st; n++) { /* all five there before any runs */
    snprintf(path, sizeof path, "%s/%s.yaml", dir, suite_nets[n]);
    if (access(path, R_OK) != 0)
      st = dl_error(DL_ECONFIG, "--suite dlbench: cannot read %s: %s", path, strerror(errno));
  }
  if (st) {
    free(cells);
    if (json) fclose(json);
    return cmd_fail(st);
  }
  printf("DLBench suite: %d nets from %s; threads", NSUITE, dir);
  for (int j = 0; j < a->nthreads; j++)
    printf("%s%d", j ? "," : " ", a->threads[j]);
  printf("; %d timed iterations after %d warm-up each; BLAS: %s; oneDNN: %s\n", a->iterations,
         a->warmup, dl_blas_info(), dl_onednn_info());
  fflush(stdout);
  for (int j = 0; j < a->nthreads && a->peak && !st; j++) {
    dl_set_threads(a->threads[j]);
    char tl[32];
    thread_label(a->threads[j], tl, sizeof tl);
    sgemm_rate rate;
    if (!(st = sgemm_peak(a->peak_size, &rate)))
      printf("sgemm peak at %s: %.1f GFLOP/s (dl_gemm %d^3, median of %d; best %.1f)\n", tl,
             rate.median, a->peak_size, SGEMM_RUNS, rate.best);
    peaks[j] = rate.median;
  }
  for (int n = 0; n < NSUITE && !st; n++) {
    snprintf(path, sizeof path, "%s/%s.yaml", dir, suite_nets[n]);
    for (int j = 0; j < a->nthreads && !st; j++) {
      bench_run r = {0};
      suite_cell *c = cells + (size_t)n * (size_t)a->nthreads + j;
      reset_peak_rss(); /* each net's own peak, not the largest so far */
      bench_args net_args = *a;
      if (a->gpu_batches) net_args.batch = suite_gpu_batches[n];
      st = open_net(&net_args, path, a->threads[j], &r);
      if (!st && a->gpu >= 0 && n == 0) printf("%s\n", dl_gpu_startup_line());
      if (!st) st = time_net(a, &r);
      if (!st) {
        *c = (suite_cell){.batch = dl_net_batch_size(r.net),
                          .median = r.median,
                          .min = r.t[0],
                          .max = r.t[a->iterations - 1],
                          .gflop = r.flops * 1e-9,
                          .rss = r.rss,
                          .plan = mib((double)plan_bytes(&r)),
                          .gpu_peak = r.gpu_peak};
        char tl[32];
        column_label(a, j, tl, sizeof tl);
        printf("%-10s %s, batch %d: median %.3f ms (min %.3f, max %.3f), %.0f samples/s, "
               "%.1f GFLOP/s, peak RSS %.1f MiB (plan %.1f MiB)\n",
               suite_nets[n], tl, c->batch, c->median, c->min, c->max, 1e3 * c->batch / c->median,
               gflops(r.flops, c->median), c->rss, c->plan);
        fflush(stdout);
      }
      if (r.net) close_net(&r);
    }
  }
  if (!st) print_suite_table(a, cells, a->peak ? peaks : NULL);
  if (!st && json) write_suite_json(json, a, dir, cells, a->peak ? peaks : NULL);
  dl_status cst = close_json(a->json, json);
  if (!st) st = cst;
  if (!st && a->plot && !(st = write_suite_plot(a, cells))) printf("plot: %s\n", a->plot);
  free(cells);
  return st ? cmd_fail(st) : 0;
}

int cmd_bench(int argc, char **argv) {
  bench_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  if (a.gpu >= 0) { /* before any output: the CPU-only build hands over to dltrain-gpu here */
    dl_status st = dl_gpu_require(a.gpu);
    if (st) return cmd_fail(st);
  }
  return a.suite ? bench_suite(&a) : bench_one(&a);
}
