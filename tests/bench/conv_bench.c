/* Times Convolution and Pooling forward and backward on LeNet's shapes (batch
 * 64), for tuning the im2col + GEMM path. Not part of the test binary; build
 * and run with
 *   make GPU=0 && cc -O2 -I. tests/bench/conv_bench.c \
 *     build/release/{core,layers,io,solvers}/[a-z]*.o build/release/cmd/[!m]*.o \
 *     $(pkg-config --libs yaml-0.1 libpng zlib openblas) -ldnnl -lgomp -lm -pthread \
 *     -o /tmp/conv_bench
 * (-ldnnl -lgomp: a build with oneDNN, the default where libdnnl-dev is installed; the
 * convolution's engine is auto unless the extra keys say ", engine: native")
 *   /tmp/conv_bench [threads] [extra conv keys, e.g. ", gemm_images: 8"]
 * Each time is the best of 200 runs, so a busy machine shows less. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/layer.h"
#include "core/math.h"
#include "core/rng.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best forward and backward milliseconds of a layer on a (64, c, hw, hw) input;
 * prop 0 skips the bottom diff, as for a net's first layer. */
static void time_layer(const char *name, const char *yaml, int c, int hw, int prop, double *sum) {
  dl_layer *l = NULL;
  dl_blob *x = dl_blob_new("x"), *y = dl_blob_new("y");
  if (dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l) || dl_blob_reshape4(x, 64, c, hw, hw) ||
      dl_layer_setup(l, &x, 1, &y, 1)) {
    dl_diag_print(stderr);
    exit(1);
  }
  dl_rng rng; /* random data: max pooling's winners are then unpredictable, as in training */
  dl_rng_seed(&rng, 1);
  float *xd = dl_data(x); /* (64, c, hw, hw) */
  for (size_t i = 0; i < x->count; i++)
    xd[i] = dl_rng_uniform_range(&rng, -1, 1);
  float *dy = dl_diff(y); /* like y */
  for (size_t i = 0; i < y->count; i++)
    dy[i] = dl_rng_uniform_range(&rng, -1, 1);
  double fwd = 1e9, bwd = 1e9;
  for (int rep = 0; rep < 200; rep++) {
    double t0 = now();
    l->ops->forward(l, &x, 1, &y, 1);
    double t1 = now();
    l->ops->backward(l, &y, 1, &prop, &x, 1);
    double t2 = now();
    fwd = t1 - t0 < fwd ? t1 - t0 : fwd;
    bwd = t2 - t1 < bwd ? t2 - t1 : bwd;
  }
  printf("  %-6s forward %6.3f ms  backward %6.3f ms\n", name, fwd * 1e3, bwd * 1e3);
  *sum += (fwd + bwd) * 1e3;
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

int main(int argc, char **argv) {
  dl_set_threads(argc > 1 ? atoi(argv[1]) : 0);
  const char *extra = argc > 2 ? argv[2] : "";
  char c1[300], c2[300];
  snprintf(c1, sizeof c1, "{name: conv1, type: Convolution, num_output: 20, kernel_size: 5%s}",
           extra);
  snprintf(c2, sizeof c2, "{name: conv2, type: Convolution, num_output: 50, kernel_size: 5%s}",
           extra);
  const char *pool = "{name: pool, type: Pooling, kernel_size: 2, stride: 2}";
  double sum = 0;
  printf("%s, %d threads\n", dl_blas_info(), dl_get_threads());
  time_layer("conv1", c1, 1, 28, 0, &sum);
  time_layer("pool1", pool, 20, 24, 1, &sum);
  time_layer("conv2", c2, 20, 12, 1, &sum);
  time_layer("pool2", pool, 50, 8, 1, &sum);
  printf("  total  %.3f ms\n", sum);
  return 0;
}
