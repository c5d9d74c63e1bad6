/* Times one LSTM (or RNN) layer's forward and backward at the DLBench LSTM
 * size (T = 32, N = 128, D = H = 256), median of several runs. Not part of the
 * test suite; build after `make GPU=0`:
 *   cc -O2 -I. $(pkg-config --cflags yaml-0.1 openblas) tests/bench/bench_recurrent.c \
 *     $(find build/release -name '*.o' ! -name main.o ! -path 'build/release/tests*') \
 *     $(pkg-config --libs yaml-0.1 libpng zlib openblas) -ldnnl -lgomp -lm -pthread \
 *     -o build/bench_recurrent
 * (-ldnnl -lgomp: a build with oneDNN, the default where libdnnl-dev is installed)
 *   build/bench_recurrent [LSTM|RNN] [threads] [T N D H] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/layer.h"
#include "core/math.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static dl_blob *blob(const char *name, int ndim, const int *shape, float value) {
  dl_blob *b = dl_blob_new(name);
  if (!b || dl_blob_reshape(b, ndim, shape)) exit(1);
  float *x = dl_data(b), *dx = dl_diff(b);
  for (size_t i = 0; i < b->count; i++)
    x[i] = value ? value : (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < b->count; i++)
    dx[i] = 1e-3f * (float)(i % 7);
  return b;
}

int main(int argc, char **argv) {
  const char *type = argc > 1 ? argv[1] : "LSTM";
  int threads = argc > 2 ? atoi(argv[2]) : 2;
  int T = argc > 6 ? atoi(argv[3]) : 32, N = argc > 6 ? atoi(argv[4]) : 128;
  int D = argc > 6 ? atoi(argv[5]) : 256, H = argc > 6 ? atoi(argv[6]) : 256;
  dl_set_threads(threads);
  dl_blob *x = blob("x", 3, (int[]){T, N, D}, 0), *cont = blob("cont", 2, (int[]){T, N}, 1);
  dl_blob *h = dl_blob_new("h"), *bottom[2] = {x, cont};
  char yaml[200];
  snprintf(yaml, sizeof yaml,
           "{name: r, type: %s, num_output: %d, weight_filler: {type: uniform, min: -0.1, max: "
           "0.1}}",
           type, H);
  dl_layer *l = NULL;
  if (dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l) || dl_layer_setup(l, bottom, 2, &h, 1)) {
    fprintf(stderr, "%s\n", dl_diag_text());
    return 1;
  }
  float *dh = dl_diff(h);
  for (size_t i = 0; i < h->count; i++)
    dh[i] = 1e-3f * (float)(i % 5);
  enum { RUNS = 15 };
  double fwd[RUNS], bwd[RUNS], tot[RUNS];
  for (int r = -2; r < RUNS; r++) { /* two warm-up runs */
    double t0 = now();
    if (l->ops->forward(l, bottom, 2, &h, 1)) return 1;
    double t1 = now();
    l->ops->backward(l, &h, 1, (int[]){1, 0}, bottom, 2);
    double t2 = now();
    if (r < 0) continue;
    fwd[r] = 1e3 * (t1 - t0), bwd[r] = 1e3 * (t2 - t1), tot[r] = 1e3 * (t2 - t0);
  }
  qsort(fwd, RUNS, sizeof *fwd, cmp_double);
  qsort(bwd, RUNS, sizeof *bwd, cmp_double);
  qsort(tot, RUNS, sizeof *tot, cmp_double);
  double gflop = 2.0 * T * N * (l->params[0]->shape[0]) * (D + H) * 3 / 1e9; /* fwd + 2x bwd */
  printf("%s T=%d N=%d D=%d H=%d threads=%d (%s): median forward %.1f ms, backward %.1f ms, "
         "total %.1f ms (min %.1f); %.1f GFLOP/s on the GEMMs\n",
         type, T, N, D, H, threads, dl_blas_info(), fwd[RUNS / 2], bwd[RUNS / 2], tot[RUNS / 2],
         tot[0], gflop / (tot[RUNS / 2] / 1e3));
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(cont);
  dl_blob_free(h);
  return 0;
}
