/* Convolution's oneDNN engine against the native one (the reference that
 * tests/test_conv.c checks): the same forward and backward on the reference
 * geometries at 1 and 2 threads, on a batch run in several chunks per thread
 * and on wide 3x3 layers (Winograd); gradient checks; the backward conventions; no OpenMP threads;
 * auto; and the config error of a build without oneDNN, which is checked in every build (the other
 * tests print a SKIP line there). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/math.h"
#include "core/net.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "layers/conv_onednn.h"
#include "tests/conv_cases.h"
#include "tests/testutil.h"

/* Ends a test that needs oneDNN with a SKIP line (once per test, not per loop run). */
#define SKIP_WITHOUT_ONEDNN(name, first)                                                           \
  do {                                                                                             \
    if (!dl_onednn_available()) {                                                                  \
      if (first) printf("SKIP %s: this build has no oneDNN (make ONEDNN=1, libdnnl-dev)\n", name); \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* A layer's outputs after a forward and a backward with dy, from zeroed
 * parameter diffs and a bottom diff full of garbage (it must be overwritten). */
typedef struct {
  float *y, *dx, *dw, *db;
  size_t ny, nx, nw, nb;
} conv_out;

static void run_layer(const char *yaml, const int shape[4], uint64_t seed, conv_out *o) {
  dl_blob *x = dl_test_blob("x", 4, shape, -1, 1, seed), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_rng rng;
  dl_rng_seed(&rng, seed + 1);
  for (size_t i = 0; i < y->count; i++)
    dl_diff(y)[i] = dl_rng_uniform_range(&rng, -1, 1);
  dl_set(x->count, 1e6f, dl_diff(x));
  for (int p = 0; p < l->nparams; p++)
    dl_set(l->params[p]->count, 0, dl_diff(l->params[p]));
  l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
  o->ny = y->count, o->nx = x->count, o->nw = l->params[0]->count;
  o->nb = l->nparams > 1 ? l->params[1]->count : 0;
  o->y = malloc(o->ny * sizeof(float));
  o->dx = malloc(o->nx * sizeof(float));
  o->dw = malloc(o->nw * sizeof(float));
  o->db = malloc((o->nb + 1) * sizeof(float));
  memcpy(o->y, dl_cdata(y), o->ny * sizeof(float));
  memcpy(o->dx, dl_cdiff(x), o->nx * sizeof(float));
  memcpy(o->dw, dl_cdiff(l->params[0]), o->nw * sizeof(float));
  if (o->nb) memcpy(o->db, dl_cdiff(l->params[1]), o->nb * sizeof(float));
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

static void out_free(conv_out *o) { free(o->y), free(o->dx), free(o->dw), free(o->db); }

/* |got - want| <= tol * max(1, the largest |want|): for sums of thousands of
 * terms that cancel, whose rounding error scales with the terms, not the sum. */
static void check_close_to_max(const float *got, const float *want, size_t n, double tol,
                               const char *what) {
  double big = 1;
  for (size_t i = 0; i < n; i++)
    big = fmax(big, fabs(want[i]));
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(fabs(got[i] - want[i]) <= tol * big, "%s[%zu]: got %.7g, want %.7g (max %.4g)",
                  what, i, got[i], want[i], big);
}

/* The engines agree to 1e-4 relative: of max(1, |a|, |b|) elementwise
 * (dl_check_close), or for big sums of the largest value (`of_max`). */
static void check_engines_agree(const conv_case *k, int threads, int of_max) {
  char yn[600], yo[600];
  dl_conv_case_yaml(k, "native", yn, sizeof yn);
  dl_conv_case_yaml(k, "onednn", yo, sizeof yo);
  dl_set_threads(threads);
  const int shape[4] = {k->n, k->c, k->h, k->w};
  conv_out n, o;
  run_layer(yn, shape, 40, &n);
  run_layer(yo, shape, 40, &o);
  ck_assert(n.ny == o.ny && n.nx == o.nx && n.nw == o.nw && n.nb == o.nb);
  void (*check)(const float *, const float *, size_t, double, const char *) =
      of_max ? check_close_to_max : dl_check_close;
  check(o.y, n.y, n.ny, 1e-4, "y");
  check(o.dx, n.dx, n.nx, 1e-4, "dx");
  check(o.dw, n.dw, n.nw, 1e-4, "dw");
  if (n.nb) check(o.db, n.db, n.nb, 1e-4, "db");
  out_free(&n);
  out_free(&o);
  dl_set_threads(1);
}

/* Reference case _i / 2 at 1 + _i % 2 threads. */
START_TEST(onednn_matches_native) {
  SKIP_WITHOUT_ONEDNN("onednn_matches_native", _i == 0);
  check_engines_agree(&dl_conv_cases[_i / 2], 1 + _i % 2, 0);
}
END_TEST

/* 1.5 MiB of reordered activations per image: chunks of 5 (DL_ONEDNN_CHUNK_BYTES
 * of 8 MiB), so 13 images run as 5 + 5 + 3 at one thread and 5 + 1, 5 + 2 at
 * two: both chunk sizes, weight gradients summed over chunks and slices. Each
 * weight gradient sums 53,248 products that mostly cancel. */
START_TEST(onednn_matches_native_in_chunks) {
  SKIP_WITHOUT_ONEDNN("onednn_matches_native_in_chunks", _i == 0);
  const conv_case k = {13, 16, 64, 64, 32, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, 0};
  size_t image = 2 * sizeof(float) * ((size_t)16 * 64 * 64 + (size_t)32 * 64 * 64);
  ck_assert_int_eq((int)(DL_ONEDNN_CHUNK_BYTES / image), 5);
  check_engines_agree(&k, 1 + _i, 1);
}
END_TEST

/* AlexNet's 3x3 layers, small: on AVX-512 all three directions run Winograd
 * (jit_wino_4x3: dnnl_convolution_auto picks it for the weight gradient, and
 * channels this wide ask for it in the forward and data gradient), less exact
 * than direct convolution but within 1e-4 of the largest value. */
START_TEST(onednn_matches_native_3x3_wide) {
  SKIP_WITHOUT_ONEDNN("onednn_matches_native_3x3_wide", _i == 0);
  const conv_case k = {4, 256, 13, 13, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0};
  check_engines_agree(&k, 1 + _i, 1);
}
END_TEST

static void gradcheck_yaml(const char *yaml, int n, int c, int h, int w) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){n, c, h, w}, -1, 1, 5), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer(yaml, &x, 1, &y, 1);
  ck_assert_str_eq(dl_conv_engine(l), "onednn");
  char msg[512];
  ck_assert_msg(dl_gradcheck(l, &x, 1, &y, 1, NULL, msg, sizeof msg) == 0, "%s", msg);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
}

START_TEST(onednn_gradcheck) {
  SKIP_WITHOUT_ONEDNN("onednn_gradcheck", _i == 0);
  gradcheck_yaml("{name: c, type: Convolution, num_output: 4, kernel_size: 3, stride: 2, pad: 1, "
                 "engine: onednn, bias_filler: {type: gaussian, std: 1}}",
                 2, 3, 5, 5);
  gradcheck_yaml("{name: c, type: Convolution, num_output: 4, kernel_size: [2, 3], pad: 1, "
                 "dilation: [2, 1], group: 2, bias_term: false, engine: onednn}",
                 3, 4, 6, 5);
}
END_TEST

/* Backward with propagate_down 0 leaves the bottom diff alone but still gives
 * the parameter gradients; each further backward adds them again (oneDNN
 * overwrites its own gradients: the engine adds them in) and gives the same
 * bottom diff. At 1 and 2 threads, and in chunks (_i 2, 3). */
START_TEST(onednn_backward_conventions) {
  SKIP_WITHOUT_ONEDNN("onednn_backward_conventions", _i == 0);
  dl_set_threads(1 + _i % 2);
  int big = _i >= 2;
  dl_blob *x = dl_test_blob("x", 4, big ? (int[]){13, 16, 64, 64} : (int[]){3, 2, 6, 6}, -1, 1, 7),
          *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: c, type: Convolution, num_output: 3, kernel_size: 3, "
                              "engine: onednn, bias_filler: {type: gaussian, std: 1}}",
                              &x, 1, &y, 1);
  ck_assert(l->ops->forward(l, &x, 1, &y, 1) == DL_OK);
  dl_rng rng;
  dl_rng_seed(&rng, 3);
  for (size_t i = 0; i < y->count; i++)
    dl_diff(y)[i] = dl_rng_uniform_range(&rng, -1, 1);
  size_t nw = l->params[0]->count;
  float *once = malloc(nw * sizeof(float)), *dx = malloc(x->count * sizeof(float)), db_once[3];

  dl_set(x->count, 7, dl_diff(x));
  dl_set(nw, 0, dl_diff(l->params[0]));
  dl_set(3, 0, dl_diff(l->params[1]));
  l->ops->backward(l, &y, 1, (int[]){0}, &x, 1);
  for (size_t i = 0; i < x->count; i++)
    ck_assert_float_eq(dl_cdiff(x)[i], 7);
  memcpy(once, dl_cdiff(l->params[0]), nw * sizeof(float));
  memcpy(db_once, dl_cdiff(l->params[1]), sizeof db_once);
  ck_assert(dl_asum(nw, once) > 0);

  for (int k = 2; k <= 3; k++) {
    l->ops->backward(l, &y, 1, (int[]){1}, &x, 1);
    for (size_t i = 0; i < nw; i++)
      ck_assert_float_eq_tol(dl_cdiff(l->params[0])[i], k * once[i], 1e-5 * (1 + fabs(once[i])));
    for (int o = 0; o < 3; o++)
      ck_assert_float_eq_tol(dl_cdiff(l->params[1])[o], k * db_once[o],
                             1e-5 * (1 + fabs(db_once[o])));
    if (k == 2) memcpy(dx, dl_cdiff(x), x->count * sizeof(float));
  }
  ck_assert(dl_cdiff(x)[0] != 7);
  dl_check_close(dl_cdiff(x), dx, x->count, 0, "dx of the third backward");
  free(once);
  free(dx);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
  dl_set_threads(1);
}
END_TEST

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* oneDNN here is built on OpenMP; run inside our pool it must not start an
 * OpenMP team of its own: the process keeps its pool's threads, no more. */
START_TEST(onednn_starts_no_threads) {
  SKIP_WITHOUT_ONEDNN("onednn_starts_no_threads", _i == 0);
  dl_set_threads(2);
  int before = count_threads();
  ck_assert_int_ge(before, 2);
  conv_out o;
  run_layer("{name: c, type: Convolution, num_output: 32, kernel_size: 3, pad: 1, engine: onednn}",
            (const int[]){8, 16, 20, 20}, 9, &o);
  out_free(&o);
  ck_assert_int_eq(count_threads(), before);
  dl_set_threads(1);
}
END_TEST

/* auto picks one of the two, and its results are the native engine's. */
START_TEST(auto_picks_an_engine) {
  SKIP_WITHOUT_ONEDNN("auto_picks_an_engine", _i == 0);
  const conv_case k = {4, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0};
  char ya[600], yn[600];
  dl_conv_case_yaml(&k, "auto", ya, sizeof ya);
  dl_conv_case_yaml(&k, "native", yn, sizeof yn);
  dl_blob *x = dl_test_blob("x", 4, (int[]){4, 8, 12, 12}, -1, 1, 2), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer(ya, &x, 1, &y, 1);
  const char *e = dl_conv_engine(l);
  ck_assert_msg(!strcmp(e, "native") || !strcmp(e, "onednn"), "engine %s", e);
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
  conv_out a, n;
  run_layer(ya, (const int[]){4, 8, 12, 12}, 11, &a);
  run_layer(yn, (const int[]){4, 8, 12, 12}, 11, &n);
  dl_check_close(a.y, n.y, n.ny, 1e-4, "y");
  dl_check_close(a.dw, n.dw, n.nw, 1e-4, "dw");
  out_free(&a);
  out_free(&n);
}
END_TEST

/* ---- the blocked layout (core/blob.h) between oneDNN convolutions ---------- */

/* c1 -> max pool -> ReLU (in place) -> c2 -> ReLU -> average pool run
 * blocked, the pool making a plain top for the InnerProduct, which reads NCHW
 * (net 0). With 24 outputs c2 cannot be blocked, so it converts its input
 * only, and its ReLU and pool stay plain (net 1); there c2's plain y is
 * large enough that at one thread it runs in two chunks of images
 * (DL_ONEDNN_CHUNK_BYTES), the second at its offset in the blocked x. */
static const char *blocked_net(int which) {
  static char yaml[1200];
  snprintf(yaml, sizeof yaml,
           "name: blocked\n"
           "layers:\n"
           "  - {name: d, type: SyntheticData, top: [x, label], shape: [6, 3, %d, %d], "
           "num_classes: 5}\n"
           "  - {name: c1, type: Convolution, bottom: x, top: c1, num_output: 32, kernel_size: 3, "
           "pad: 1}\n"
           "  - {name: p1, type: Pooling, bottom: c1, top: p1, pool: max, kernel_size: 3, stride: "
           "2}\n"
           "  - {name: r1, type: ReLU, bottom: p1, top: p1}\n"
           "  - {name: c2, type: Convolution, bottom: p1, top: c2, num_output: %d, kernel_size: 3, "
           "pad: 1}\n"
           "  - {name: r2, type: ReLU, bottom: c2, top: c2}\n"
           "  - {name: p2, type: Pooling, bottom: c2, top: p2, pool: ave, kernel_size: 3, stride: "
           "2}\n"
           "  - {name: ip, type: InnerProduct, bottom: p2, top: ip, num_output: 5}\n"
           "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n",
           which ? 241 : 17, which ? 241 : 17, which ? 24 : 16);
  return yaml;
}

/* The net's loss and parameter gradients after one forward and backward. */
static float *run_blocked_net(int which, int plain, double *loss, size_t *n, dl_net **out) {
  dl_diag_clear();
  dl_ctx ctx = {.seed = 3, .threads = dl_parallel_threads(), .plain_layouts = plain};
  dl_net *net = NULL;
  ck_assert_msg(dl_net_from_string(blocked_net(which), "blocked.yaml", DL_TRAIN, &ctx, &net) ==
                    DL_OK,
                "%s", dl_diag_text());
  dl_net_zero_param_diffs(net);
  ck_assert(dl_net_forward(net, loss) == DL_OK);
  dl_net_backward(net);
  *n = 0;
  for (int k = 0; k < net->nparams; k++)
    *n += net->params[k]->count;
  float *g = malloc(*n * sizeof(float)), *at = g;
  for (int k = 0; k < net->nparams; k++, at += net->params[k - 1]->count)
    memcpy(at, dl_cdiff(net->params[k]), net->params[k]->count * sizeof(float));
  *out = net;
  return g;
}

/* Where oneDNN works in 16-channel blocks, the net keeps the blobs between
 * its convolutions in that layout (the pooling and ReLU on it), and the loss
 * and every gradient are the plain layout's, bit for bit (the same
 * primitives, without the reorders), or, where the chunks differ (net 1),
 * the loss bit for bit and the gradients to 1e-5: both nets at 1 and 2
 * threads. */
START_TEST(blocked_layout_matches_plain) {
  SKIP_WITHOUT_ONEDNN("blocked_layout_matches_plain", _i == 0);
  if (!dl_onednn_blocks_of_16()) {
    if (_i == 0) printf("SKIP blocked_layout_matches_plain: oneDNN here has no AVX-512 kernels\n");
    return;
  }
  int which = _i / 2;
  dl_set_threads(1 + _i % 2);
  double loss[2];
  size_t n[2];
  dl_net *net[2];
  float *g[2];
  for (int plain = 0; plain < 2; plain++)
    g[plain] = run_blocked_net(which, plain, &loss[plain], &n[plain], &net[plain]);
  static const char *const names[] = {"x", "c1", "p1", "c2", "p2", "ip"};
  static const int blocked[2][6] = {{0, 1, 1, 1, 0, 0}, {0, 1, 1, 0, 0, 0}};
  for (int b = 0; b < 6; b++) {
    ck_assert_msg(dl_net_blob(net[0], names[b])->blocked == blocked[which][b],
                  "net %d: blob %s blocked: %d", which, names[b],
                  dl_net_blob(net[0], names[b])->blocked);
    ck_assert_int_eq(dl_net_blob(net[1], names[b])->blocked, 0);
  }
  ck_assert_msg(loss[0] == loss[1], "net %d: loss %.9g blocked, %.9g plain", which, loss[0],
                loss[1]);
  ck_assert(n[0] == n[1]);
  if (which == 1) /* the layouts cut the batch into other chunks: the weight gradients' */
    dl_check_close(g[0], g[1], n[0], 1e-5, "gradient"); /* sums group differently */
  else
    for (size_t i = 0; i < n[0]; i++)
      ck_assert_msg(memcmp(&g[0][i], &g[1][i], sizeof(float)) == 0,
                    "net %d: gradient %zu: %.9g blocked, %.9g plain", which, i, g[0][i], g[1][i]);
  for (int plain = 0; plain < 2; plain++)
    dl_net_free(net[plain]), free(g[plain]);
  dl_set_threads(1);
}
END_TEST

/* Without oneDNN (this build's, or as a test pretends), engine onednn is a
 * config error that names the missing library, and auto runs native. */
START_TEST(onednn_missing_is_config_error) {
  if (dl_onednn_available()) dl_onednn_pretend_missing(1);
  dl_diag_clear();
  dl_layer *l = NULL;
  dl_blob *x = dl_test_blob("x", 4, (int[]){1, 2, 5, 5}, 0, 1, 1), *y = dl_blob_new("y");
  dl_status st = dl_layer_from_yaml(
      "{name: c, type: Convolution, num_output: 2, kernel_size: 3, engine: onednn}", DL_TRAIN, NULL,
      &l);
  if (st == DL_OK) st = dl_layer_setup(l, &x, 1, &y, 1);
  ck_assert_int_eq(st, DL_ECONFIG);
  const char *want = "layer 'c' (Convolution): engine: onednn: this dltrain was built without "
                     "oneDNN (libdnnl); install libdnnl-dev";
  ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "wanted '%s' in: %s", want, dl_diag_text());
  dl_layer_free(l);
  l = dl_test_layer("{name: c, type: Convolution, num_output: 2, kernel_size: 3}", &x, 1, &y, 1);
  ck_assert_str_eq(dl_conv_engine(l), "native");
  dl_layer_free(l);
  dl_blob_free(x);
  dl_blob_free(y);
  dl_onednn_pretend_missing(0);
}
END_TEST

Suite *suite_conv_onednn(void) {
  Suite *s = suite_create("conv_onednn");
  TCase *tc = tcase_create("conv_onednn");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, onednn_matches_native, 0, 2 * dl_conv_ncases);
  tcase_add_loop_test(tc, onednn_matches_native_in_chunks, 0, 2);
  tcase_add_loop_test(tc, onednn_matches_native_3x3_wide, 0, 2);
  tcase_add_test(tc, onednn_gradcheck);
  tcase_add_loop_test(tc, onednn_backward_conventions, 0, 4);
  tcase_add_test(tc, onednn_starts_no_threads);
  tcase_add_test(tc, auto_picks_an_engine);
  tcase_add_loop_test(tc, blocked_layout_matches_plain, 0, 4);
  tcase_add_test(tc, onednn_missing_is_config_error);
  suite_add_tcase(s, tc);
  if (!dl_onednn_available())
    printf("conv_onednn: this build has no oneDNN; only the config error is checked\n");
  return s;
}
