/* The solver types (sgd, nesterov, adagrad, rmsprop, adadelta, adam, adamw)
 * against Caffe's formulas computed here in double precision, exact resume
 * from a snapshot for each, the refusal to resume under another type, and
 * the solver file's checks of the keys these types add. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/net.h"
#include "solvers/sgd_gemm.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

static dl_solver *make_solver(const char *net_yaml, const char *solver_yaml, const char *dir) {
  return dl_test_solver(net_yaml, solver_yaml, dir, "snap");
}

/* ---- the reference: Caffe's update rules, one weight, in double ----------- */

/* Returns the new weight; h0 and h1 are the weight's two history slots. */
static double ref_update(const dl_solver_param *p, int64_t iter, double lr, double lr_mult,
                         double decay_mult, double w, double grad, double *h0, double *h1) {
  double rate = lr * lr_mult, decay = p->weight_decay * decay_mult;
  double mom = p->momentum, b2 = p->momentum2, eps = p->delta, rd = p->rms_decay;
  double sign = (w > 0) - (w < 0);
  double g = grad;
  if (p->type != DL_SOLVER_ADAMW) g += p->regularization == DL_REG_L1 ? decay * sign : decay * w;
  switch (p->type) {
  case DL_SOLVER_SGD: *h0 = mom * *h0 + rate * g; return w - *h0;
  case DL_SOLVER_NESTEROV: {
    double old = *h0;
    *h0 = mom * *h0 + rate * g;
    return w - ((1 + mom) * *h0 - mom * old);
  }
  case DL_SOLVER_ADAGRAD: *h0 += g * g; return w - rate * g / (sqrt(*h0) + eps);
  case DL_SOLVER_RMSPROP:
    *h0 = rd * *h0 + (1 - rd) * g * g;
    return w - rate * g / (sqrt(*h0) + eps);
  case DL_SOLVER_ADADELTA: {
    *h0 = mom * *h0 + (1 - mom) * g * g;
    double d = g * sqrt((*h1 + eps) / (*h0 + eps));
    *h1 = mom * *h1 + (1 - mom) * d * d;
    return w - rate * d;
  }
  default: { /* adam, adamw */
    double t = (double)iter + 1;
    double corr = sqrt(1 - pow(b2, t)) / (1 - pow(mom, t));
    *h0 = mom * *h0 + (1 - mom) * g;
    *h1 = b2 * *h1 + (1 - b2) * g * g;
    double decoupled = p->type == DL_SOLVER_ADAMW ? rate * decay * w : 0;
    return w - decoupled - rate * corr * *h0 / (sqrt(*h1) + eps);
  }
  }
}

/* ---- a two-parameter quadratic, its gradient in closed form ---------------- */

/* loss = (x w + b - y)^2 / 2 with x = 2, y = 1: dL/dw = 2 r, dL/db = r,
 * r = 2 w + b - 1. From w = 1.5, b = 0 with weight_decay 0.1 on w only (the
 * bias has decay_mult 0 and lr_mult 2), the first gradient of w is
 * 4 + 0.1 * 1.5 = 4.15. */
static const char *scalar_net =
    "name: scalar\nlayers:\n"
    "  - {name: x, type: SyntheticData, top: x, shape: [1, 1], fill: constant, value: 2}\n"
    "  - {name: y, type: SyntheticData, top: y, shape: [1, 1], fill: constant, value: 1}\n"
    "  - {name: ip, type: InnerProduct, bottom: x, top: p, num_output: 1,\n"
    "     weight_filler: {type: constant, value: 1.5},\n"
    "     param: [{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0}]}\n"
    "  - {name: loss, type: EuclideanLoss, bottom: [p, y], top: loss}\n";

/* w after the first step, worked out by hand from Caffe's formulas. */
static const struct {
  const char *yaml;
  double w1;
} scalar_cases[DL_SOLVER_COUNT] = {
    /* 1.5 - 0.1 * 4.15 */
    [DL_SOLVER_SGD] = {"type: sgd\nbase_lr: 0.1\nmomentum: 0.9\n", 1.085},
    /* v = 0.415; w -= 1.9 v */
    [DL_SOLVER_NESTEROV] = {"type: nesterov\nbase_lr: 0.1\nmomentum: 0.9\n", 0.7115},
    /* g / sqrt(g^2): the first step is lr */
    [DL_SOLVER_ADAGRAD] = {"type: adagrad\nbase_lr: 0.1\n", 1.4},
    /* g / sqrt(0.01 g^2): the first step is 10 lr */
    [DL_SOLVER_RMSPROP] = {"type: rmsprop\nbase_lr: 0.1\n", 0.5},
    /* g sqrt(1e-6 / (0.05 g^2 + 1e-6)) ~ sqrt(1e-6 / 0.05) = 0.0044721 */
    [DL_SOLVER_ADADELTA] = {"type: adadelta\nbase_lr: 1\nmomentum: 0.95\ndelta: 1e-6\n", 1.4955279},
    /* m = 0.1 g, sqrt(v) = sqrt(0.001) g, correction sqrt(0.001) / 0.1: the step is lr */
    [DL_SOLVER_ADAM] = {"type: adam\nbase_lr: 0.1\nmomentum: 0.9\n", 1.4},
    /* g = 4 without decay: an adam step of lr, then 0.1 * 0.1 * 1.5 decoupled */
    [DL_SOLVER_ADAMW] = {"type: adamw\nbase_lr: 0.1\nmomentum: 0.9\n", 1.385},
};

START_TEST(each_type_follows_its_formula_on_a_quadratic) {
  char dir[64], yaml[512];
  dl_test_tmpdir(dir, sizeof dir);
  snprintf(yaml, sizeof yaml, "%sweight_decay: 0.1\nmax_iter: 100\n", scalar_cases[_i].yaml);
  dl_solver *s = make_solver(scalar_net, yaml, dir);
  ck_assert_int_eq(s->param.type, _i);
  ck_assert_uint_eq(s->train->param_count, 2);
  const float *wb = dl_mem_host(s->train->flat_data);
  double w = 1.5, b = 0, hw[2] = {0, 0}, hb[2] = {0, 0};
  for (int it = 0; it < 6; it++) {
    double r = 2 * w + b - 1, lr = s->param.base_lr;
    ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
    w = ref_update(&s->param, it, lr, 1, 1, w, 2 * r, &hw[0], &hw[1]);
    b = ref_update(&s->param, it, lr, 2, 0, b, r, &hb[0], &hb[1]);
    if (it == 0)
      ck_assert_msg(fabs(wb[0] - scalar_cases[_i].w1) < 1e-6, "%s: first w %.9g, by hand %.9g",
                    dl_solver_type_names[_i], wb[0], scalar_cases[_i].w1);
    ck_assert_msg(fabs(wb[0] - w) < 2e-6 && fabs(wb[1] - b) < 2e-6,
                  "%s iter %d: (w, b) = (%.9g, %.9g), want (%.9g, %.9g)", dl_solver_type_names[_i],
                  it, wb[0], wb[1], w, b);
  }
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- many parameters, both regularizations, per-blob multipliers --------- */

/* Weights 7 x 5 (lr_mult 1, decay_mult 1) and bias 7 (lr_mult 2, decay_mult
 * 0.5): odd sizes, so a vectorized loop's tail is covered too. */
static const char *quad_net =
    "name: q\nlayers:\n"
    "  - {name: x, type: SyntheticData, top: x, shape: [8, 5]}\n"
    "  - {name: y, type: SyntheticData, top: y, shape: [8, 7]}\n"
    "  - {name: ip, type: InnerProduct, bottom: x, top: p, num_output: 7,\n"
    "     weight_filler: {type: gaussian, std: 0.5}, bias_filler: {type: uniform, min: -1, max: "
    "1},\n"
    "     param: [{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0.5}]}\n"
    "  - {name: loss, type: EuclideanLoss, bottom: [p, y], top: loss}\n";

static const char *type_hyper[DL_SOLVER_COUNT] = {
    [DL_SOLVER_SGD] = "base_lr: 0.1\nmomentum: 0.9\n",
    [DL_SOLVER_NESTEROV] = "base_lr: 0.1\nmomentum: 0.9\n",
    [DL_SOLVER_ADAGRAD] = "base_lr: 0.1\ndelta: 1e-7\n",
    [DL_SOLVER_RMSPROP] = "base_lr: 0.01\nrms_decay: 0.9\n",
    [DL_SOLVER_ADADELTA] = "base_lr: 1\nmomentum: 0.95\ndelta: 1e-6\n",
    [DL_SOLVER_ADAM] = "base_lr: 0.01\nmomentum: 0.9\nmomentum2: 0.99\n",
    [DL_SOLVER_ADAMW] = "base_lr: 0.01\nmomentum: 0.9\ndelta: 1e-6\n",
};

/* Four steps with a step lr policy, each checked against the reference from
 * the weights before it and the net's gradient; the histories too, which
 * pins their layout (slot k of parameter i at k * param_count + i). */
static void check_against_reference(int type, const char *regularization) {
  char dir[64], yaml[512];
  dl_test_tmpdir(dir, sizeof dir);
  snprintf(yaml, sizeof yaml,
           "type: %s\n%sweight_decay: 0.05\nregularization: %s\nlr_policy: step\ngamma: 0.5\n"
           "stepsize: 2\nmax_iter: 100\nupdate_during_backward: false\n",
           dl_solver_type_names[type], type_hyper[type], regularization);
  dl_solver *s = make_solver(quad_net, yaml, dir);
  dl_net *net = s->train;
  size_t n = net->param_count;
  int slots = dl_solver_history_slots(type);
  ck_assert_int_eq(net->nparams, 2);
  ck_assert_uint_eq(n, 7 * 5 + 7);
  ck_assert_uint_eq(s->history->count, slots * n);
  float *w0 = malloc(n * sizeof(float));
  double *h = calloc(2 * n, sizeof(double));
  for (int it = 0; it < 4; it++) {
    memcpy(w0, dl_mem_host(net->flat_data), n * sizeof(float));
    double lr = dl_lr_at(&s->param, s->iter);
    size_t bytes = dl_mem_bytes_allocated();
    ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
    if (it > 0) ck_assert_uint_eq(dl_mem_bytes_allocated(), bytes); /* buffers come lazily, once */
    const float *g = dl_mem_host(net->flat_diff), *w1 = dl_mem_host(net->flat_data);
    const float *hist = dl_mem_host(s->history);
    for (size_t i = 0; i < n; i++) {
      int bias = i >= 35;
      double want = ref_update(&s->param, it, lr, bias ? 2 : 1, bias ? 0.5 : 1, w0[i], g[i], &h[i],
                               &h[n + i]);
      ck_assert_msg(fabs(w1[i] - want) <= 1e-5 * fmax(1, fabs(want)),
                    "%s %s iter %d param %zu: got %.9g want %.9g", dl_solver_type_names[type],
                    regularization, it, i, w1[i], want);
      for (int k = 0; k < slots; k++)
        ck_assert_msg(fabs(hist[k * n + i] - h[k * n + i]) <= 1e-5 * fmax(1, fabs(h[k * n + i])),
                      "%s iter %d history %d of param %zu: got %.9g want %.9g",
                      dl_solver_type_names[type], it, k, i, hist[k * n + i], h[k * n + i]);
    }
  }
  free(w0);
  free(h);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}

START_TEST(each_type_matches_the_reference_on_many_parameters) {
  check_against_reference(_i, "L2");
  if (_i != DL_SOLVER_ADAMW) check_against_reference(_i, "L1");
}
END_TEST

/* ---- update during backward -------------------------------------------------- */

/* ip1's weights (70 x 2512) come to the solver in each of InnerProduct's
 * three forms, by batch: 16, tiles of whole rows (52 rows, then 18; for sgd,
 * made in registers, 48 and 22); 120, tiles cut on both axes (60 and 10 rows
 * by 2176 and 336 columns; for sgd 56 and 14 by 2160 and 352); 200, made
 * whole and handed over in bands. ip2's (5 x 70, lr_mult 2) come in one tile
 * (70 columns: never from registers); the biases are updated after backward
 * as usual. */
static void tiled_net(char *buf, size_t n, int batch) {
  snprintf(buf, n,
           "name: tiles\nlayers:\n"
           "  - {name: d, type: SyntheticData, top: [data, label], shape: [%d, 2512], "
           "num_classes: 5,\n"
           "     fixed: false}\n"
           "  - {name: ip1, type: InnerProduct, bottom: data, top: ip1, num_output: 70}\n"
           "  - {name: relu, type: ReLU, bottom: ip1, top: ip1}\n"
           "  - {name: ip2, type: InnerProduct, bottom: ip1, top: ip2, num_output: 5,\n"
           "     param: [{lr_mult: 2, decay_mult: 0.5}, {lr_mult: 1}]}\n"
           "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip2, label], top: loss}\n",
           batch);
}

static void close_arrays(const float *a, const float *b, size_t n, float tol, const char *what) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(fabsf(a[i] - b[i]) <= tol * fmaxf(1, fabsf(b[i])), "%s %zu: %.9g vs %.9g", what,
                  i, a[i], b[i]);
}

/* type_hyper[type] with the adaptive rules' delta set to 1e-3, for comparing
 * the two update paths: those rules divide a gradient by its own magnitude
 * (the first rmsprop step is about +-3 rate whatever |g| is), so a gradient
 * within rounding of zero, summed in another order by the tile GEMMs, could
 * flip its sign and move the weight by a whole step (seen with OpenBLAS on
 * one of 176,000 weights). With this delta such gradients move their weights
 * by almost nothing; everything else about the rules is unchanged. */
static void hyper_for_comparison(int type, char *buf, size_t n) {
  buf[0] = 0;
  for (const char *line = type_hyper[type]; *line;) {
    const char *end = strchr(line, '\n') + 1;
    if (strncmp(line, "delta:", 6) != 0) strncat(buf, line, (size_t)(end - line));
    line = end;
  }
  if (type != DL_SOLVER_SGD && type != DL_SOLVER_NESTEROV && strlen(buf) + 14 < n)
    strcat(buf, "delta: 1e-3\n");
}

static void compare_update_during_backward(int type) {
  static const int batches[] = {16, 120, 200};
  const char *name = dl_solver_type_names[type];
  for (int k = 0; k < 3; k++) {
    char d1[64], d2[64], yaml[512], net[1024];
    dl_test_tmpdir(d1, sizeof d1);
    dl_test_tmpdir(d2, sizeof d2);
    tiled_net(net, sizeof net, batches[k]);
    char hyper[256];
    hyper_for_comparison(type, hyper, sizeof hyper);
    snprintf(yaml, sizeof yaml, "type: %s\n%sweight_decay: 0.01\nmax_iter: 100\nseed: 3\n", name,
             hyper);
    dl_solver *a = make_solver(net, yaml, d1); /* auto: on */
    strcat(yaml, "update_during_backward: false\n");
    dl_solver *b = make_solver(net, yaml, d2);
    ck_assert_ptr_nonnull(a->bwu);
    ck_assert_ptr_null(b->bwu);
    const unsigned char *on = a->train->in_backward;
    ck_assert_msg(on && on[0] && !on[1] && on[2] && !on[3], "%s: weights only", name);
    for (int it = 0; it < 5; it++) {
      double la, lb;
      ck_assert_int_eq(dl_solver_step(a, &la), DL_OK);
      ck_assert_int_eq(dl_solver_step(b, &lb), DL_OK);
      ck_assert_msg(fabs(la - lb) <= 1e-5 * fmax(1, fabs(lb)), "%s batch %d iter %d: loss %.9g vs %.9g",
                    name, batches[k], it, la, lb);
    }
    /* The tile GEMMs sum in another order than the whole one (bits differ by
     * BLAS: with OpenBLAS up to 2e-5 after 5 adagrad steps, whose
     * g / sqrt(sum g^2) magnifies the last bits of small gradients). */
    size_t n = b->train->param_count;
    close_arrays(dl_mem_host(a->train->flat_data), dl_mem_host(b->train->flat_data), n, 1e-4f, name);
    close_arrays(dl_mem_host(a->history), dl_mem_host(b->history), b->history->count, 1e-4f, name);
    dl_solver_free(a);
    dl_solver_free(b);
    dl_test_rmdir(d1);
    dl_test_rmdir(d2);
  }
}

START_TEST(each_type_updates_during_backward_as_after_it) { compare_update_during_backward(_i); }
END_TEST

/* SGD's tiles as on a CPU without AVX-512 (made by the BLAS, then handed over). */
START_TEST(sgd_updates_during_backward_without_registers) {
  dl_sgd_gemm_disable(1);
  compare_update_during_backward(DL_SOLVER_SGD);
  dl_sgd_gemm_disable(0);
}
END_TEST

/* Where a gradient is not final when its layer's backward ends, auto keeps
 * the separate update (and `true` is refused by the file check). */
START_TEST(update_during_backward_only_where_it_is_exact) {
  static const char *const off[] = {"iter_size: 2\n", "clip_gradients: 10\n",
                                    "update_during_backward: false\n"};
  for (int k = 0; k < 3; k++) {
    char dir[64], yaml[256];
    dl_test_tmpdir(dir, sizeof dir);
    snprintf(yaml, sizeof yaml, "base_lr: 0.01\nmax_iter: 10\n%s", off[k]);
    char net[1024];
    tiled_net(net, sizeof net, 16);
    dl_solver *s = make_solver(net, yaml, dir);
    ck_assert_msg(!s->bwu && !s->train->in_backward, "%s", off[k]);
    ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
    dl_solver_free(s);
    dl_test_rmdir(dir);
  }
  /* A weight shared by two layers is final only after both. */
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s = make_solver(
      "name: shared\nlayers:\n"
      "  - {name: d, type: SyntheticData, top: [data, label], shape: [4, 6], num_classes: 6}\n"
      "  - {name: a, type: InnerProduct, bottom: data, top: a, num_output: 6, param: [{name: w}]}\n"
      "  - {name: b, type: InnerProduct, bottom: a, top: b, num_output: 6, param: [{name: w}]}\n"
      "  - {name: c, type: InnerProduct, bottom: b, top: c, num_output: 6}\n"
      "  - {name: loss, type: SoftmaxWithLoss, bottom: [c, label], top: loss}\n",
      "base_lr: 0.01\nmax_iter: 10\n", dir);
  /* params: w, a's bias, b's bias, c's weights, c's bias */
  const unsigned char *on = s->train->in_backward;
  ck_assert_int_eq(s->train->nparams, 5);
  ck_assert_msg(on && !on[0] && !on[1] && !on[2] && on[3] && !on[4], "only c's weights");
  ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* A non-finite gradient handed over during backward is caught in the same
 * pass, row by row: the rows before it are updated, its own row and those
 * after it are not. It names its blob and stops training with the usual
 * message. */
START_TEST(update_during_backward_reports_divergence) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char net[1024];
  tiled_net(net, sizeof net, 16);
  dl_solver *s = make_solver(net, "base_lr: 0.01\nmax_iter: 10\n", dir);
  ck_assert_ptr_nonnull(s->bwu);
  dl_solver_backward_update_begin(s, 0.01);
  ck_assert_int_eq(dl_solver_backward_update_failed(s), 0);
  float tile[6] = {1, 2, 3, 4, NAN, 6};
  const float *w = dl_mem_host(s->train->flat_data) + s->train->param_offset[2];
  float row0 = w[0], row1 = w[70]; /* the tile's two rows are 70 apart */
  const dl_update_hook *h = s->train->steps[1].layer->update_hook; /* ip1's, the solver's */
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(h->apply(h->ctx, 2, 0, 2, 3, 70, tile), 0);
  ck_assert_int_eq(dl_solver_backward_update_failed(s), 3); /* ip2's weights, + 1 */
  ck_assert_float_eq_tol(w[0], row0 - 0.02f, 1e-6f);        /* lr 0.01, lr_mult 2: updated */
  ck_assert(w[70] == row1);                                 /* the NaN's row: untouched */
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- SGD from registers (solvers/sgd_gemm.h) ------------------------------ */

static float pseudo(unsigned i) { return (float)((i * 2654435761u) >> 8) / 16777216.0f - 0.5f; }

/* dl_sgd_gemm_tile against dW summed in double and dl_rule_sgd, on shapes
 * with partial panels (K % 48 of 16 and 32), rows past the last multiple of 8,
 * batches shorter than a block's prefetch list, and W cut into several tiles;
 * with L2, L1 and no decay. */
START_TEST(sgd_gemm_matches_the_rule) {
  if (!dl_sgd_gemm_usable(1, 16)) {
    printf("SKIP sgd_gemm_matches_the_rule: this CPU has no AVX-512\n");
    return;
  }
  static const int shapes[][5] = {/* N, K, M, tile rows, tile cols */
                                  {21, 80, 5, 21, 80}, {21, 80, 5, 8, 48}, {16, 144, 64, 16, 96},
                                  {9, 16, 128, 9, 16}, {8, 96, 1, 8, 96},  {35, 112, 50, 16, 48}};
  static const float decay[][2] = {{0.01f, 0}, {0, 0.02f}, {0, 0}}; /* l2, l1 */
  for (int c = 0; c < 6; c++)
    for (int d = 0; d < 3; d++) {
      int N = shapes[c][0], K = shapes[c][1], M = shapes[c][2];
      size_t nw = (size_t)N * K;
      float *dyt = malloc(sizeof(float) * N * M), *x = malloc(sizeof(float) * M * K);
      float *w = malloc(sizeof(float) * nw), *v = malloc(sizeof(float) * nw);
      float *rw = malloc(sizeof(float) * nw), *rv = malloc(sizeof(float) * nw);
      float *xp = malloc(sizeof(float) * dl_sgd_gemm_packed_floats(M, K));
      float *dyp = malloc(sizeof(float) * dl_sgd_gemm_packed_dy_floats(M, N));
      float *dy = malloc(sizeof(float) * N * M); /* dy = dyt^T, as the layer has it */
      for (int i = 0; i < N * M; i++)
        dyt[i] = pseudo(i + 1);
      for (int i = 0; i < M * K; i++)
        x[i] = pseudo(i + 77777);
      for (size_t i = 0; i < nw; i++)
        w[i] = rw[i] = pseudo(i + 555), v[i] = rv[i] = 0.1f * pseudo(i + 9);
      atomic_int bad = 0;
      dl_sgd_target t = {
          .u = {.scale = 1, .rate = 0.05f, .l2 = decay[d][0], .l1 = decay[d][1], .mom = 0.9f},
          .w = w,
          .v = v,
          .bad = &bad,
          .id = 4};
      for (int r = 0; r < N; r++)
        for (int k = 0; k < K; k++) {
          double g = 0;
          for (int m = 0; m < M; m++)
            g += (double)dyt[r * M + m] * x[(size_t)m * K + k];
          dl_rule_sgd(&t.u, &rw[(size_t)r * K + k], (float)g, &rv[(size_t)r * K + k], NULL);
        }
      for (int r = 0; r < N; r++)
        for (int m = 0; m < M; m++)
          dy[m * N + r] = dyt[r * M + m];
      dl_sgd_gemm_pack(M, K, x, xp);
      dl_sgd_gemm_pack_dy(M, N, dy, dyp);
      int tr = shapes[c][3], tc = shapes[c][4];
      for (int r0 = 0; r0 < N; r0 += tr)
        for (int c0 = 0; c0 < K; c0 += tc)
          ck_assert(dl_sgd_gemm_tile(&t, M, K, dyp, xp, r0, N - r0 < tr ? N - r0 : tr, c0,
                                     K - c0 < tc ? K - c0 : tc));
      for (size_t i = 0; i < nw; i++) {
        ck_assert_msg(fabsf(w[i] - rw[i]) <= 1e-6f && fabsf(v[i] - rv[i]) <= 1e-6f,
                      "shape %d decay %d at %zu: w %.9g vs %.9g, v %.9g vs %.9g", c, d, i, w[i],
                      rw[i], v[i], rv[i]);
      }
      ck_assert_int_eq(atomic_load(&bad), 0);
      dy[N - 1] = INFINITY; /* the last row's first batch value */
      dl_sgd_gemm_pack_dy(M, N, dy, dyp);
      ck_assert(!dl_sgd_gemm_tile(&t, M, K, dyp, xp, 0, N, 0, K));
      ck_assert_int_eq(atomic_load(&bad), 4);
      free(dyt), free(x), free(w), free(v), free(rw), free(rv), free(xp), free(dyp), free(dy);
    }
}
END_TEST

/* ---- every type trains ------------------------------------------------------ */

START_TEST(each_type_lowers_the_loss) {
  char dir[64], yaml[512];
  dl_test_tmpdir(dir, sizeof dir);
  snprintf(yaml, sizeof yaml, "type: %s\n%smax_iter: 300\n", dl_solver_type_names[_i],
           type_hyper[_i]);
  dl_solver *s = make_solver(quad_net, yaml, dir);
  double first, last;
  ck_assert_int_eq(dl_solver_step(s, &first), DL_OK);
  for (int it = 1; it < 300; it++)
    ck_assert_int_eq(dl_solver_step(s, &last), DL_OK);
  ck_assert_msg(last < 0.5 * first, "%s: loss %g -> %g", dl_solver_type_names[_i], first, last);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- snapshots ---------------------------------------------------------------- */

/* A fresh batch every iteration (fixed: false), so the data position matters. */
static const char *resume_net =
    "name: resume\nlayers:\n"
    "  - {name: d, type: SyntheticData, top: [data, label], shape: [6, 9], num_classes: 4, fixed: "
    "false}\n"
    "  - {name: ip1, type: InnerProduct, bottom: data, top: ip1, num_output: 11}\n"
    "  - {name: relu, type: ReLU, bottom: ip1, top: ip1}\n"
    "  - {name: ip2, type: InnerProduct, bottom: ip1, top: ip2, num_output: 4,\n"
    "     param: [{lr_mult: 1}, {lr_mult: 2, decay_mult: 0}]}\n"
    "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip2, label], top: loss}\n";

static void resume_yaml(char *buf, size_t n, int type, int seed) {
  snprintf(buf, n,
           "type: %s\n%sweight_decay: 0.01\nlr_policy: inv\ngamma: 0.1\npower: 0.75\n"
           "max_iter: 100\naverage_loss: 3\nseed: %d\n",
           dl_solver_type_names[type], type_hyper[type], seed);
}

START_TEST(each_type_resumes_bit_identically) {
  char dir[64], yaml[512], snap[600];
  dl_test_tmpdir(dir, sizeof dir);
  resume_yaml(yaml, sizeof yaml, _i, 7);
  dl_solver *a = make_solver(resume_net, yaml, dir);
  double la[8], lb[8];
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(dl_solver_step(a, NULL), DL_OK);
  ck_assert_int_eq(dl_solver_snapshot(a), DL_OK);
  for (int i = 0; i < 8; i++)
    ck_assert_int_eq(dl_solver_step(a, &la[i]), DL_OK);
  snprintf(snap, sizeof snap, "%s/snap_iter_5.dlsnap", dir);
  resume_yaml(yaml, sizeof yaml, _i, 99); /* other initial weights and data */
  dl_solver *b = make_solver(resume_net, yaml, dir);
  dl_diag_clear();
  ck_assert_msg(dl_solver_restore(b, snap) == DL_OK, "%s", dl_diag_text());
  ck_assert_int_eq(b->iter, 5);
  for (int i = 0; i < 8; i++)
    ck_assert_int_eq(dl_solver_step(b, &lb[i]), DL_OK);
  for (int i = 0; i < 8; i++)
    ck_assert_msg(la[i] == lb[i], "%s iteration %d: %.17g vs %.17g", dl_solver_type_names[_i],
                  5 + i, la[i], lb[i]);
  size_t n = a->train->param_count;
  ck_assert_int_eq(
      memcmp(dl_mem_host(a->train->flat_data), dl_mem_host(b->train->flat_data), n * sizeof(float)),
      0);
  ck_assert_uint_eq(b->history->count, dl_solver_history_slots(_i) * n);
  ck_assert_int_eq(
      memcmp(dl_mem_host(a->history), dl_mem_host(b->history), b->history->count * sizeof(float)),
      0);
  ck_assert(a->smoothed_loss == b->smoothed_loss);
  dl_solver_free(a);
  dl_solver_free(b);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(resume_under_another_type_is_refused) {
  char dir[64], yaml[512], snap[600];
  dl_test_tmpdir(dir, sizeof dir);
  resume_yaml(yaml, sizeof yaml, DL_SOLVER_ADAM, 7);
  dl_solver *a = make_solver(resume_net, yaml, dir);
  ck_assert_int_eq(dl_solver_step(a, NULL), DL_OK);
  ck_assert_int_eq(dl_solver_snapshot(a), DL_OK);
  snprintf(snap, sizeof snap, "%s/snap_iter_1.dlsnap", dir);
  static const int others[] = {DL_SOLVER_SGD, DL_SOLVER_ADAMW};
  for (int k = 0; k < 2; k++) {
    resume_yaml(yaml, sizeof yaml, others[k], 7);
    dl_solver *b = make_solver(resume_net, yaml, dir);
    dl_diag_clear();
    ck_assert_int_eq(dl_solver_restore(b, snap), DL_ECONFIG);
    char want[200];
    snprintf(want, sizeof want,
             "written by solver type 'adam', but this solver is '%s'; resume with 'type: adam', "
             "or start a new run from its weights with --weights",
             dl_solver_type_names[others[k]]);
    ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "want '%s' in:\n%s", want, dl_diag_text());
    ck_assert_int_eq(b->iter, 0); /* nothing was restored */
    /* What the message suggests works: its weights load. */
    dl_diag_clear();
    ck_assert_msg(dl_solver_load_weights(b, snap, NULL) == DL_OK, "%s", dl_diag_text());
    dl_solver_free(b);
  }
  dl_solver_free(a);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- the solver file ------------------------------------------------------------ */

START_TEST(caffe_type_names_and_defaults) {
  static const char *const caffe[DL_SOLVER_COUNT] = {"SGD",      "Nesterov", "AdaGrad", "RMSProp",
                                                     "AdaDelta", "Adam",     "AdamW"};
  for (int t = 0; t < DL_SOLVER_COUNT; t++) {
    char yaml[200];
    snprintf(yaml, sizeof yaml, "type: %s\nbase_lr: 0.01\nmax_iter: 10\n", caffe[t]);
    dl_solver_param p;
    dl_diag_clear();
    ck_assert_msg(dl_solver_param_from_string(yaml, "<s>", &p) == DL_OK, "%s: %s", caffe[t],
                  dl_diag_text());
    ck_assert_int_eq(p.type, t);
    ck_assert_float_eq(p.momentum, 0);
    ck_assert_float_eq(p.momentum2, 0.999f);
    ck_assert_float_eq(p.delta, 1e-8f);
    ck_assert_float_eq(p.rms_decay, 0.99f);
  }
  ck_assert_int_eq(dl_solver_history_slots(DL_SOLVER_SGD), 1);
  ck_assert_int_eq(dl_solver_history_slots(DL_SOLVER_RMSPROP), 1);
  ck_assert_int_eq(dl_solver_history_slots(DL_SOLVER_ADADELTA), 2);
  ck_assert_int_eq(dl_solver_history_slots(DL_SOLVER_ADAMW), 2);
}
END_TEST

#define OK "base_lr: 0.01\nmax_iter: 10\n"
static const struct {
  const char *yaml, *expect;
  int line, col;
} bad_solvers[] = {
    {OK "type: adma\n",
     "type: expected one of sgd, nesterov, adagrad, rmsprop, adadelta, adam, adamw, got 'adma' "
     "(did you mean 'adam'?)",
     3, 7},
    {OK "type: RMSprob\n", "(did you mean 'rmsprop'?)", 3, 7},
    {OK "type: adam\nmomentum2: 1.5\n", "momentum2: expected a number in [0, 1], got '1.5'", 4, 12},
    {OK "type: adam\nmomentum2: 1\n", "momentum2 (beta2) must be below 1", 4, 12},
    {OK "type: adamw\nmomentum: 1\n", "momentum (beta1) must be below 1 for type 'adamw'", 4, 11},
    {OK "type: rmsprop\nrms_decay: -0.5\n", "rms_decay: expected a number in [0, 1], got '-0.5'", 4,
     12},
    {OK "type: adagrad\ndelta: 0\n", "delta must be positive for type 'adagrad'", 4, 8},
    {OK "type: adam\ndelta: -1e-8\n", "delta: expected a number in [0, 1]", 4, 8},
    {OK "type: adagrad\nmomentum: 0.9\n", "type 'adagrad' takes no momentum (Caffe refuses it too)",
     4, 11},
    {OK "type: RMSProp\nmomentum: 0.5\n", "type 'rmsprop' takes no momentum", 4, 11},
    {OK "momentum2: 0.99\n", "'momentum2' is not used by type 'sgd' (only by adam and adamw)", 3,
     12},
    {OK "type: adam\nrms_decay: 0.9\n", "'rms_decay' is not used by type 'adam' (only by rmsprop)",
     4, 12},
    {OK "type: nesterov\ndelta: 1e-6\n", "'delta' is not used by type 'nesterov'", 4, 8},
    {OK "type: adamw\nweight_decay: 0.01\nregularization: L1\n",
     "type 'adamw' decays the weights as L2 only", 5, 17},
    {OK "iter_size: 2\nupdate_during_backward: true\n",
     "update_during_backward: true needs each gradient to be final when its layer's backward ends, "
     "but iter_size accumulates several batches",
     4, 25},
    {OK "clip_gradients: 5\nupdate_during_backward: true\n",
     "clip_gradients needs the norm of all gradients first", 4, 25},
    {OK "update_during_backward: yes\n", "update_during_backward: expected one of auto, true, false",
     3, 25},
    {OK "type: adam\nmomentum_2: 0.9\n", "unknown key 'momentum_2' (did you mean 'momentum2'?)", 4,
     1},
    {OK "precision: bf16\n", "precision: expected one of fp32, tf32", 3, 12},
    {OK "deterministic: maybe\n", "deterministic", 3, 16},
};
#undef OK

/* The GPU math keys parse (their effect is on the GPU: tests/test_gpu.c and
 * docs/gpu.md); fp32 and non-deterministic are the defaults. */
START_TEST(precision_and_deterministic_keys) {
  dl_solver_param p;
  ck_assert_int_eq(dl_solver_param_from_string("base_lr: 0.1\nmax_iter: 1\n", "<s>", &p), DL_OK);
  ck_assert_int_eq(p.precision, DL_PRECISION_FP32);
  ck_assert_int_eq(p.deterministic, 0);
  ck_assert_int_eq(dl_solver_param_from_string(
                       "base_lr: 0.1\nmax_iter: 1\nprecision: tf32\ndeterministic: true\n", "<s>",
                       &p),
                   DL_OK);
  ck_assert_int_eq(p.precision, DL_PRECISION_TF32);
  ck_assert_int_eq(p.deterministic, 1);
}
END_TEST

START_TEST(bad_solver_keys) {
  dl_diag_clear();
  dl_solver_param p;
  dl_status st = dl_solver_param_from_string(bad_solvers[_i].yaml, "<s>", &p);
  const char *text = dl_diag_text();
  ck_assert_msg(st == DL_ECONFIG, "case %d: status %d; %s", _i, st, text);
  ck_assert_msg(strstr(text, bad_solvers[_i].expect) != NULL, "case %d: want '%s' in:\n%s", _i,
                bad_solvers[_i].expect, text);
  char pos[64];
  snprintf(pos, sizeof pos, "<s>:%d:%d:", bad_solvers[_i].line, bad_solvers[_i].col);
  ck_assert_msg(strstr(text, pos) != NULL, "case %d: want position '%s' in:\n%s", _i, pos, text);
}
END_TEST

Suite *suite_solvers(void) {
  Suite *s = suite_create("solvers");
  TCase *tc = tcase_create("solvers");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, each_type_follows_its_formula_on_a_quadratic, 0, DL_SOLVER_COUNT);
  tcase_add_loop_test(tc, each_type_matches_the_reference_on_many_parameters, 0, DL_SOLVER_COUNT);
  tcase_add_loop_test(tc, each_type_lowers_the_loss, 0, DL_SOLVER_COUNT);
  tcase_add_loop_test(tc, each_type_updates_during_backward_as_after_it, 0, DL_SOLVER_COUNT);
  tcase_add_test(tc, update_during_backward_only_where_it_is_exact);
  tcase_add_test(tc, precision_and_deterministic_keys);
  tcase_add_test(tc, update_during_backward_reports_divergence);
  tcase_add_test(tc, sgd_gemm_matches_the_rule);
  tcase_add_test(tc, sgd_updates_during_backward_without_registers);
  tcase_add_loop_test(tc, each_type_resumes_bit_identically, 0, DL_SOLVER_COUNT);
  tcase_add_test(tc, resume_under_another_type_is_refused);
  tcase_add_test(tc, caffe_type_names_and_defaults);
  tcase_add_loop_test(tc, bad_solver_keys, 0, (int)(sizeof bad_solvers / sizeof bad_solvers[0]));
  suite_add_tcase(s, tc);
  return s;
}
