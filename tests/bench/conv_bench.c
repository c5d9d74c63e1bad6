/* Times Convolution forward + backward on LeNet's shapes (batch 64), for tuning
 * the im2col + GEMM path. Not part of the test binary; build and run with
 *   make GPU=0 && cc -O2 -I. -Ibuild tests/bench/conv_bench.c \
 *     build/release/{core,layers,io,solvers}/*.o build/release/cmd/[!m]*.o \
 *     $(pkg-config --libs yaml-0.1 libpng zlib openblas) -lm -pthread -o /tmp/conv_bench
 *   /tmp/conv_bench [threads] [gemm_images] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/layer.h"
#include "core/math.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Mean milliseconds of one forward + backward over `iters` runs. */
static double time_layer(const char *yaml, int c, int hw, int prop, int iters) {
  dl_layer *l = NULL;
  dl_blob *x = dl_blob_new("x"), *y = dl_blob_new("y");
  if (dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l) || dl_blob_reshape4(x, 64, c, hw, hw) ||
      dl_layer_setup(l, &x, 1, &y, 1)) {
    dl_diag_print(stderr);
    exit(1);
  }
  float *xd = dl_data(x); /* (64, c, hw, hw) */
  for (size_t i = 0; i < x->count; i++)
    xd[i] = (float)(i % 13) * 0.1f;
  float *dy = dl_diff(y); /* (64, m, oh, ow) */
  for (size_t i = 0; i < y->count; i++)
    dy[i] = (float)(i % 7) * 0.1f;
  double best = 1e9;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
    for (int it = 0; it < iters; it++) {
      l->ops->forward(l, &x, 1, &y, 1);
      l->ops->backward(l, &y, 1, &prop, &x, 1);
    }
    double ms = (now() - t0) * 1e3 / iters;
    if (ms < best) best = ms;
  }
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
  return best;
}

int main(int argc, char **argv) {
  dl_set_threads(argc > 1 ? atoi(argv[1]) : 0);
  int gi = argc > 2 ? atoi(argv[2]) : 0;
  char y1[200], y2[200];
  snprintf(y1, sizeof y1,
           "{name: conv1, type: Convolution, num_output: 20, kernel_size: 5, "
           "gemm_images: %d}",
           gi);
  snprintf(y2, sizeof y2,
           "{name: conv2, type: Convolution, num_output: 50, kernel_size: 5, "
           "gemm_images: %d}",
           gi);
  double a = time_layer(y1, 1, 28, 0, 50), b = time_layer(y2, 20, 12, 1, 50);
  printf("threads %d gemm_images %d: conv1 %.3f ms, conv2 %.3f ms, total %.3f ms (fwd+bwd)\n",
         dl_get_threads(), gi, a, b, a + b);
  return 0;
}
