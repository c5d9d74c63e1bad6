/* Embed, LSTM and RNN: hand cases, naive double-precision references unrolled
 * step by step (with cont resets in the middle), gradient checks through
 * several steps, state carried across forwards, bad indices and shapes, the
 * vectorized exp/sigmoid/tanh against libm, a small language model net, and
 * the carried state in snapshots (exact resume of an LSTM language model on
 * TokenData, other batch sizes refused, format 1 snapshots still read). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "core/math.h"
#include "core/net.h"
#include "io/snapshot.h"
#include "layers/recurrent.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

static void free_blobs(dl_blob **b, int n) {
  for (int i = 0; i < n; i++)
    dl_blob_free(b[i]);
}

static void set_values(dl_blob *b, const float *v) { memcpy(dl_data(b), v, b->count * sizeof *v); }

static void forward(dl_layer *l, dl_blob **bottom, int nb, dl_blob **top, int nt) {
  ck_assert_msg(l->ops->forward(l, bottom, nb, top, nt) == DL_OK, "%s", dl_diag_text());
}

static void gradcheck_ok(dl_layer *l, dl_blob **bottom, int nb, dl_blob **top, int nt,
                         const dl_gradcheck_opts *o) {
  char msg[512];
  int bad = dl_gradcheck(l, bottom, nb, top, nt, o, msg, sizeof msg);
  ck_assert_msg(bad == 0, "%s: %d gradient mismatches: %s", l->ops->type, bad, msg);
}

/* ---- Embed ---------------------------------------------------------------- */

START_TEST(embed_forward_hand) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 2}, 0, 1, 1), *y = dl_blob_new("y");
  set_values(x, (const float[]){2, 0, 2, 3});
  for (int bias = 0; bias < 2; bias++) {
    dl_layer *l = dl_test_layer(bias ? "{name: e, type: Embed, num_output: 2, input_dim: 4, "
                                       "bias_term: true}"
                                     : "{name: e, type: Embed, num_output: 2, input_dim: 4}",
                                &x, 1, &y, 1);
    ck_assert_int_eq(l->nparams, 1 + bias);
    ck_assert_int_eq(l->params[0]->shape[0], 4);
    ck_assert_int_eq(l->params[0]->shape[1], 2);
    set_values(l->params[0], (const float[]){1, 2, 3, 4, 5, 6, 7, 8}); /* W: 4 x 2 */
    if (bias) set_values(l->params[1], (const float[]){10, 20});
    forward(l, &x, 1, &y, 1);
    ck_assert_int_eq(y->ndim, 3);
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[1], 2);
    ck_assert_int_eq(y->shape[2], 2);
    float want[8] = {5, 6, 1, 2, 5, 6, 7, 8};
    for (int i = 0; bias && i < 8; i++)
      want[i] += i % 2 ? 20 : 10;
    dl_check_close(dl_cdata(y), want, 8, 0, "y");
    dl_layer_free(l);
  }
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* Repeated indices must accumulate into the same row. */
START_TEST(embed_gradcheck_and_accumulation) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){3, 2, 2}, 0, 1, 1), *y = dl_blob_new("y");
  float *xv = dl_data(x);
  for (size_t i = 0; i < x->count; i++)
    xv[i] = (float)((i * 5) % 7); /* 0 and 5 repeat */
  dl_layer *l =
      dl_test_layer("{name: e, type: Embed, num_output: 5, input_dim: 7, bias_term: true, "
                    "bias_filler: {type: uniform, min: -1, max: 1}}",
                    &x, 1, &y, 1);
  gradcheck_ok(l, &x, 1, &y, 1, NULL);
  /* By hand: all-ones top diff adds 1 per occurrence to each row. */
  forward(l, &x, 1, &y, 1);
  dl_set(y->count, 1, dl_diff(y));
  dl_set(l->params[0]->count, 0, dl_diff(l->params[0]));
  dl_set(l->params[1]->count, 0, dl_diff(l->params[1]));
  l->ops->backward(l, &y, 1, (int[]){0}, &x, 1);
  int seen[7] = {0};
  for (size_t i = 0; i < x->count; i++)
    seen[(int)xv[i]]++;
  for (int v = 0; v < 7; v++)
    for (int d = 0; d < 5; d++)
      ck_assert_float_eq(dl_cdiff(l->params[0])[v * 5 + d], seen[v]);
  ck_assert_float_eq(dl_cdiff(l->params[1])[3], (float)x->count);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

START_TEST(embed_bad_index_is_a_data_error) {
  dl_blob *x = dl_test_blob("x", 2, (int[]){2, 2}, 0, 1, 1), *y = dl_blob_new("y");
  dl_layer *l = dl_test_layer("{name: e, type: Embed, num_output: 3, input_dim: 5}", &x, 1, &y, 1);
  static const float bad[][4] = {{0, 1, 7, 2}, {0, -1, 1, 1}, {0, 1, 2, 1.5f}, {0, 0, 0, NAN}};
  static const char *const want[] = {"index 7 at position 2 is not an integer in [0, 5)",
                                     "index -1 at position 1", "index 1.5 at position 3",
                                     "index nan at position 3"};
  for (int c = 0; c < 4; c++) {
    set_values(x, bad[c]);
    dl_diag_clear();
    ck_assert_int_eq(l->ops->forward(l, &x, 1, &y, 1), DL_EDATA);
    ck_assert_msg(strstr(dl_diag_text(), want[c]) != NULL, "'%s' lacks '%s'", dl_diag_text(),
                  want[c]);
  }
  set_values(x, (const float[]){0, 4, 4, 0});
  forward(l, &x, 1, &y, 1);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, y}, 2);
}
END_TEST

/* ---- The naive references --------------------------------------------------- */

#define MAXH 32

static double sigm(double v) { return 1 / (1 + exp(-v)); }

/* a (G*H) = b + W_x x + W_h hp for one sequence at one step. */
static void ref_preact(int G, int D, int H, const float *x, const double *hp, const float *wx,
                       const float *b, const float *wh, double *a) {
  for (int k = 0; k < G * H; k++) {
    a[k] = b[k];
    for (int d = 0; d < D; d++)
      a[k] += (double)wx[k * D + d] * x[d];
    for (int j = 0; j < H; j++)
      a[k] += (double)wh[k * H + j] * hp[j];
  }
}

/* The LSTM (G = 4) or RNN (G = 1) over T x N, step by step, from the state
 * h0, c0 (N x H, updated to the last step's). h: (T, N, H). */
static void ref_forward(int G, int T, int N, int D, int H, const float *x, const float *cont,
                        dl_layer *l, double *h0, double *c0, double *h) {
  const float *wx = dl_cdata(l->params[0]), *b = dl_cdata(l->params[1]);
  const float *wh = dl_cdata(l->params[2]);
  for (int t = 0; t < T; t++)
    for (int n = 0; n < N; n++) {
      double hp[MAXH], cp[MAXH], a[4 * MAXH];
      double m = cont[t * N + n];
      for (int j = 0; j < H; j++)
        hp[j] = m * h0[n * H + j], cp[j] = m * c0[n * H + j];
      ref_preact(G, D, H, x + (size_t)(t * N + n) * D, hp, wx, b, wh, a);
      for (int j = 0; j < H; j++) {
        double hv, c = 0;
        if (G == 4) {
          double i = sigm(a[j]), f = sigm(a[H + j]), o = sigm(a[2 * H + j]), g = tanh(a[3 * H + j]);
          c = f * cp[j] + i * g;
          hv = o * tanh(c);
        } else {
          hv = tanh(a[j]);
        }
        h[(t * N + n) * H + j] = hv;
        h0[n * H + j] = hv;
        c0[n * H + j] = c;
      }
    }
}

typedef struct {
  int T, N, D, H;
} rec_case;

/* Odd sizes, and H = 19 for the vectorized blocks of 16 plus a tail. */
static const rec_case ref_cases[] = {{3, 2, 4, 3}, {4, 3, 4, 3}, {5, 3, 4, 3}, {3, 2, 5, 19}};

/* cont with sequence starts at t = 0 and in the middle (step 1 of sequence 0
 * and, from T = 4, step 2 of the last sequence). */
static dl_blob *make_cont(int T, int N) {
  dl_blob *c = dl_test_blob("cont", 2, (int[]){T, N}, 0, 1, 1);
  dl_set(c->count, 1, dl_data(c));
  float *cv = dl_data(c);
  for (int n = 0; n < N; n++)
    cv[n] = 0;
  cv[1 * N + 0] = 0;
  if (T >= 4) cv[2 * N + N - 1] = 0;
  return c;
}

static char *rec_yaml(char *buf, size_t n, const char *type, int H, const char *extra) {
  snprintf(buf, n,
           "{name: r, type: %s, num_output: %d, weight_filler: {type: uniform, min: -0.6, max: "
           "0.6}, bias_filler: {type: uniform, min: -0.5, max: 0.5}%s}",
           type, H, extra);
  return buf;
}

/* Two forwards in a row: the second starts from the first one's last state. */
static void check_against_reference(const char *type, int G) {
  for (size_t c = 0; c < sizeof ref_cases / sizeof *ref_cases; c++) {
    rec_case k = ref_cases[c];
    dl_blob *x = dl_test_blob("x", 3, (int[]){k.T, k.N, k.D}, -1, 1, 3 + c);
    dl_blob *cont = make_cont(k.T, k.N), *h = dl_blob_new("h");
    dl_blob *bottom[2] = {x, cont};
    char yaml[300];
    dl_layer *l = dl_test_layer(rec_yaml(yaml, sizeof yaml, type, k.H, ""), bottom, 2, &h, 1);
    ck_assert_int_eq(h->ndim, 3);
    ck_assert_int_eq(h->shape[0], k.T);
    ck_assert_int_eq(h->shape[1], k.N);
    ck_assert_int_eq(h->shape[2], k.H);
    double h0[4 * MAXH] = {0}, c0[4 * MAXH] = {0}, want[5 * 3 * MAXH];
    float wantf[5 * 3 * MAXH];
    size_t count = (size_t)k.T * k.N * k.H;
    for (int pass = 0; pass < 2; pass++) {
      if (pass == 1) dl_data(cont)[k.N - 1] = 1; /* the last sequence continues */
      forward(l, bottom, 2, &h, 1);
      ref_forward(G, k.T, k.N, k.D, k.H, dl_cdata(x), dl_cdata(cont), l, h0, c0, want);
      for (size_t i = 0; i < count; i++)
        wantf[i] = (float)want[i];
      char what[64];
      snprintf(what, sizeof what, "%s T=%d N=%d H=%d pass %d: h", type, k.T, k.N, k.H, pass);
      dl_check_close(dl_cdata(h), wantf, count, 2e-6, what);
    }
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, cont, h}, 3);
  }
}

/* Gradient checks through all steps. Every forward the checker makes starts
 * from cont_0 = 0 (a fresh sequence), so the carried state does not change the
 * objective; sequences also restart in the middle. */
static void check_gradients(const char *type, const char *extra) {
  static const rec_case cases[] = {{4, 3, 4, 3}, {5, 2, 4, 3}, {3, 2, 3, 17}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    rec_case k = cases[c];
    dl_blob *x = dl_test_blob("x", 3, (int[]){k.T, k.N, k.D}, -1, 1, 11 + c);
    dl_blob *cont = make_cont(k.T, k.N), *h = dl_blob_new("h");
    dl_blob *bottom[2] = {x, cont};
    char yaml[300];
    dl_layer *l = dl_test_layer(rec_yaml(yaml, sizeof yaml, type, k.H, extra), bottom, 2, &h, 1);
    gradcheck_ok(l, bottom, 2, &h, 1, NULL);
    dl_layer_free(l);
    free_blobs((dl_blob *[]){x, cont, h}, 3);
  }
}

/* One forward over 2T steps equals two forwards over T steps each (the second
 * with cont = 1 everywhere); then cont_0 = 0 gives what a fresh layer gives. */
static void check_state_carry(const char *type) {
  enum { T = 3, N = 2, D = 4, H = 3 };
  dl_blob *xl = dl_test_blob("x", 3, (int[]){2 * T, N, D}, -1, 1, 21);
  dl_blob *cl = dl_test_blob("cont", 2, (int[]){2 * T, N}, 0, 1, 1);
  dl_blob *xs = dl_test_blob("x", 3, (int[]){T, N, D}, 0, 1, 1);
  dl_blob *cs = dl_test_blob("cont", 2, (int[]){T, N}, 0, 1, 1);
  dl_blob *hl = dl_blob_new("h"), *hs = dl_blob_new("h"), *hf = dl_blob_new("h");
  dl_set(cl->count, 1, dl_data(cl));
  dl_set(N, 0, dl_data(cl));
  char yaml[300];
  rec_yaml(yaml, sizeof yaml, type, H, "");
  dl_blob *bl[2] = {xl, cl}, *bs[2] = {xs, cs};
  dl_layer *whole = dl_test_layer(yaml, bl, 2, &hl, 1);
  dl_layer *split = dl_test_layer(yaml, bs, 2, &hs, 1); /* same name and seed: same weights */
  dl_layer *fresh = dl_test_layer(yaml, bs, 2, &hf, 1);
  dl_check_close(dl_cdata(split->params[2]), dl_cdata(whole->params[2]), split->params[2]->count, 0,
                 "W_h");
  forward(whole, bl, 2, &hl, 1);
  size_t half = (size_t)T * N * H;
  for (int part = 0; part < 2; part++) {
    memcpy(dl_data(xs), dl_cdata(xl) + (size_t)part * T * N * D, (size_t)T * N * D * sizeof(float));
    memcpy(dl_data(cs), dl_cdata(cl) + (size_t)part * T * N, (size_t)T * N * sizeof(float));
    forward(split, bs, 2, &hs, 1);
    dl_check_close(dl_cdata(hs), dl_cdata(hl) + part * half, half, 1e-6, "carried h");
  }
  /* Continuing (cont = 1) differs from a fresh start; cont_0 = 0 is a fresh start. */
  dl_set(cs->count, 1, dl_data(cs));
  forward(split, bs, 2, &hs, 1);
  forward(fresh, bs, 2, &hf, 1);
  ck_assert_float_gt(fabsf(dl_cdata(hs)[0] - dl_cdata(hf)[0]), 1e-4);
  dl_set(N, 0, dl_data(cs));
  forward(split, bs, 2, &hs, 1);
  dl_check_close(dl_cdata(hs), dl_cdata(hf), half, 1e-6, "reset h");
  dl_layer_free(whole);
  dl_layer_free(split);
  dl_layer_free(fresh);
  free_blobs((dl_blob *[]){xl, cl, xs, cs, hl, hs, hf}, 7);
}

/* Truncated BPTT: after a first batch leaves a state S, the gradients of the
 * second batch's objective treat S as a constant (W_h still sees it at step 0).
 * The objective runs batch 1 (from a zero state) with the original weights and
 * batch 2 with b[i] = v (b NULL: unchanged); returns dot(h, r). */
static double second_batch_objective(dl_layer *l, dl_blob **b1, dl_blob **b2, dl_blob *h,
                                     const float *r, dl_blob *b, size_t i, float v) {
  forward(l, b1, 2, &h, 1);
  float orig = b ? dl_data(b)[i] : 0;
  if (b) dl_data(b)[i] = v;
  forward(l, b2, 2, &h, 1);
  if (b) dl_data(b)[i] = orig;
  double f = 0;
  for (size_t j = 0; j < h->count; j++)
    f += (double)dl_cdata(h)[j] * r[j];
  return f;
}

static void check_truncated_gradient(const char *type) {
  enum { T = 3, N = 2, D = 4, H = 5 };
  dl_blob *x1 = dl_test_blob("x", 3, (int[]){T, N, D}, -1, 1, 31);
  dl_blob *x2 = dl_test_blob("x", 3, (int[]){T, N, D}, -1, 1, 32);
  dl_blob *cont1 = dl_test_blob("cont", 2, (int[]){T, N}, 1, 1, 1);
  dl_blob *cont2 = dl_test_blob("cont", 2, (int[]){T, N}, 1, 1, 1);
  dl_blob *r = dl_test_blob("r", 3, (int[]){T, N, H}, -1, 1, 33), *h = dl_blob_new("h");
  dl_set(N, 0, dl_data(cont1)); /* batch 1 starts from zero, batch 2 continues */
  dl_blob *b1[2] = {x1, cont1}, *b2[2] = {x2, cont2};
  char yaml[300];
  dl_layer *l = dl_test_layer(rec_yaml(yaml, sizeof yaml, type, H, ""), b1, 2, &h, 1);
  const float *rv = dl_cdata(r);
  second_batch_objective(l, b1, b2, h, rv, NULL, 0, 0);
  memcpy(dl_diff(h), rv, h->count * sizeof(float));
  for (int p = 0; p < 3; p++)
    dl_set(l->params[p]->count, 0, dl_diff(l->params[p]));
  l->ops->backward(l, &h, 1, (int[]){1, 0}, b2, 2);
  dl_blob *check[4] = {l->params[0], l->params[1], l->params[2], x2};
  for (int k = 0; k < 4; k++) {
    dl_blob *b = check[k];
    float *analytic = malloc(b->count * sizeof(float));
    memcpy(analytic, dl_cdiff(b), b->count * sizeof(float));
    for (size_t i = 0; i < b->count; i++) {
      const float step = 1e-2f, orig = dl_data(b)[i];
      double fp = second_batch_objective(l, b1, b2, h, rv, b, i, orig + step);
      double fm = second_batch_objective(l, b1, b2, h, rv, b, i, orig - step);
      double numeric = (fp - fm) / (2 * step);
      ck_assert_msg(fabs(numeric - analytic[i]) <= 1e-2 * fmax(1, fabs(numeric)),
                    "%s blob %d [%zu]: analytic %.6g, numeric %.6g", type, k, i, analytic[i],
                    numeric);
    }
    free(analytic);
  }
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x1, x2, cont1, cont2, r, h}, 6);
}

/* ---- LSTM ------------------------------------------------------------------ */

START_TEST(lstm_params_in_caffe_order) {
  dl_blob *x = dl_test_blob("x", 4, (int[]){3, 2, 2, 3}, -1, 1, 1);
  dl_blob *cont = dl_test_blob("cont", 2, (int[]){3, 2}, 1, 1, 1), *h = dl_blob_new("h");
  dl_blob *bottom[2] = {x, cont};
  dl_layer *l =
      dl_test_layer("{name: r, type: LSTM, num_output: 5, forget_bias: 1.5}", bottom, 2, &h, 1);
  ck_assert_int_eq(l->nparams, 3);
  int want[3][2] = {{20, 6}, {20, 0}, {20, 5}}; /* W_x: 4H x D (D = 2 x 3 flattened), b, W_h */
  for (int p = 0; p < 3; p++) {
    ck_assert_int_eq(l->params[p]->ndim, p == 1 ? 1 : 2);
    ck_assert_int_eq(l->params[p]->shape[0], want[p][0]);
    if (p != 1) ck_assert_int_eq(l->params[p]->shape[1], want[p][1]);
  }
  ck_assert_ptr_nonnull(strstr(l->params[0]->name, "r/weight_x"));
  const float *b = dl_cdata(l->params[1]);
  for (int j = 0; j < 20; j++)
    ck_assert_float_eq(b[j], j >= 5 && j < 10 ? 1.5f : 0.0f);
  ck_assert_int_eq(h->shape[2], 5);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, cont, h}, 3);
}
END_TEST

/* One step, one unit, by hand: W_x = [1 2 3 4] (i f o g), b = 0, h0 = 0, x = 0.5:
 * i = s(0.5), f = s(1), o = s(1.5), g = tanh(2), c = i g, h = o tanh(c). */
START_TEST(lstm_forward_hand) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){1, 1, 1}, 0.5f, 0.5f, 1);
  dl_blob *cont = dl_test_blob("cont", 2, (int[]){1, 1}, 0, 0, 1), *h = dl_blob_new("h");
  dl_blob *bottom[2] = {x, cont};
  dl_layer *l = dl_test_layer("{name: r, type: LSTM, num_output: 1}", bottom, 2, &h, 1);
  set_values(l->params[0], (const float[]){1, 2, 3, 4});
  forward(l, bottom, 2, &h, 1);
  double c = sigm(0.5) * tanh(2.0), want = sigm(1.5) * tanh(c);
  ck_assert_double_eq_tol(dl_cdata(h)[0], want, 1e-6);
  dl_layer_free(l);
  free_blobs((dl_blob *[]){x, cont, h}, 3);
}
END_TEST

START_TEST(lstm_matches_reference) { check_against_reference("LSTM", 4); }
END_TEST

START_TEST(lstm_gradcheck) { check_gradients("LSTM", ", forget_bias: 1"); }
END_TEST

START_TEST(lstm_state_carries_across_forwards) { check_state_carry("LSTM"); }
END_TEST

START_TEST(lstm_truncated_gradient_with_carried_state) { check_truncated_gradient("LSTM"); }
END_TEST

START_TEST(lstm_bad_shapes_are_config_errors) {
  dl_blob *x = dl_test_blob("x", 3, (int[]){3, 2, 4}, -1, 1, 1), *h = dl_blob_new("h");
  dl_blob *conts[] = {dl_test_blob("cont", 2, (int[]){3, 3}, 1, 1, 1),
                      dl_test_blob("cont", 1, (int[]){6}, 1, 1, 1)};
  for (int c = 0; c < 2; c++) {
    dl_blob *bottom[2] = {x, conts[c]};
    dl_layer *l = NULL;
    ck_assert(dl_layer_from_yaml("{name: r, type: LSTM, num_output: 3}", DL_TRAIN, NULL, &l) ==
              DL_OK);
    dl_diag_clear();
    ck_assert_int_eq(dl_layer_setup(l, bottom, 2, &h, 1), DL_ECONFIG);
    ck_assert_msg(strstr(dl_diag_text(), "cont must be T x N = 3 x 2") != NULL, "%s",
                  dl_diag_text());
    dl_layer_free(l);
  }
  free_blobs((dl_blob *[]){x, h, conts[0], conts[1]}, 4);
}
END_TEST

/* ---- RNN ------------------------------------------------------------------- */

START_TEST(rnn_matches_reference) { check_against_reference("RNN", 1); }
END_TEST

START_TEST(rnn_gradcheck) { check_gradients("RNN", ""); }
END_TEST

START_TEST(rnn_state_carries_across_forwards) { check_state_carry("RNN"); }
END_TEST

START_TEST(rnn_truncated_gradient_with_carried_state) { check_truncated_gradient("RNN"); }
END_TEST

/* ---- The elementwise math ---------------------------------------------------- */

START_TEST(fast_exp_sigmoid_tanh_match_libm) {
  double worst[3] = {0};
  for (int i = -200000; i <= 200000; i++) {
    float v = (float)i * 4.35e-4f; /* [-87, 87] */
    double e = exp((double)v), s = 1 / (1 + exp(-(double)v)), t = tanh((double)v);
    worst[0] = fmax(worst[0], fabs(dl_vexp(v) - e) / e);
    worst[1] = fmax(worst[1], fabs(dl_vsigmoid(v) - s) / s);
    worst[2] = fmax(worst[2], fabs(dl_vtanh(v) - t) / fmax(fabs(t), 1e-30));
  }
  ck_assert_msg(worst[0] < 3e-7 && worst[1] < 3e-7 && worst[2] < 3e-7,
                "relative errors: exp %.3g, sigmoid %.3g, tanh %.3g", worst[0], worst[1], worst[2]);
  /* Tiny arguments keep their relative precision; huge ones saturate, finitely. */
  ck_assert_float_eq(dl_vtanh(1e-20f), 1e-20f);
  ck_assert_float_eq(dl_vtanh(-1e-20f), -1e-20f);
  ck_assert_float_eq(dl_vtanh(1000), 1);
  ck_assert_float_eq(dl_vtanh(-1000), -1);
  ck_assert_float_eq(dl_vsigmoid(1000), 1);
  ck_assert(dl_vsigmoid(-1000) >= 0 && dl_vsigmoid(-1000) < 1e-37f);
  ck_assert(isfinite(dl_vexp(1000)) && dl_vexp(-1000) >= 0);
  ck_assert(isnan(dl_vexp(NAN)) && isnan(dl_vsigmoid(NAN)) && isnan(dl_vtanh(NAN)));
}
END_TEST

/* ---- In a net ---------------------------------------------------------------- */

/* Embed -> LSTM -> InnerProduct (axis 2) -> SoftmaxWithLoss on a fixed random
 * token batch, the label at step t being the token of step t - 1 (rotated by
 * Slice + Concat), which the recurrence makes learnable: the loss starts near
 * log(V) and falls below 1.2 in 150 plain SGD steps (0.76 now). All parameters
 * (embed 1, LSTM 3, ip 2) are in the net. */
START_TEST(language_model_net_learns) {
  enum { V = 11 }; /* T = 6, N = 4 */
  static const char *const net_yaml =
      "name: lm\n"
      "layers:\n"
      "- {name: tok, type: SyntheticData, shape: [24, 1], num_classes: 11, top: [junk, tokflat]}\n"
      "- {name: cont, type: SyntheticData, shape: [6, 4], fill: constant, value: 1, top: [cont]}\n"
      "- {name: tokr, type: Reshape, bottom: [tokflat], top: [tok], shape: [6, 4]}\n"
      "- {name: cut, type: Slice, bottom: [tok], top: [head, last], axis: 0, slice_point: [5]}\n"
      "- {name: lab, type: Concat, bottom: [last, head], top: [label], axis: 0}\n"
      "- {name: sil, type: Silence, bottom: [junk]}\n"
      "- {name: emb, type: Embed, bottom: [tok], top: [e], num_output: 8, input_dim: 11}\n"
      "- {name: lstm, type: LSTM, bottom: [e, cont], top: [h], num_output: 7}\n"
      "- {name: ip, type: InnerProduct, bottom: [h], top: [s], num_output: 11, axis: 2}\n"
      "- {name: loss, type: SoftmaxWithLoss, bottom: [s, label], top: [loss], axis: 2}\n";
  dl_ctx ctx = {.seed = 3, .threads = 1};
  dl_net *net = NULL;
  dl_diag_clear();
  ck_assert_msg(dl_net_from_string(net_yaml, "lm", DL_TRAIN, &ctx, &net) == DL_OK, "%s",
                dl_diag_text());
  ck_assert_int_eq(net->nparams, 6);
  ck_assert_uint_eq(net->param_count, V * 8 + (4 * 7 * 8 + 4 * 7 + 4 * 7 * 7) + 7 * V + V);
  double first = 0, loss = 0;
  for (int it = 0; it < 150; it++) {
    dl_net_zero_param_diffs(net);
    ck_assert_msg(dl_net_forward(net, &loss) == DL_OK, "%s", dl_diag_text());
    if (it == 0) first = loss;
    dl_net_backward(net);
    for (int p = 0; p < net->nparams; p++)
      dl_axpy(net->params[p]->count, -0.5f, dl_cdiff(net->params[p]), dl_data(net->params[p]));
  }
  ck_assert_msg(fabs(first - log(V)) < 0.3, "first loss %.4f, log V %.4f", first, log(V));
  ck_assert_msg(loss < 1.2, "loss %.4f after 150 steps, from %.4f", loss, first);
  dl_net_free(net);
}
END_TEST

/* ---- Carried state in snapshots -------------------------------------------- */

/* get_state / set_state: a fresh layer given another's state continues exactly
 * as it would; a state of another size is refused, naming both sizes. */
static void check_state_ops(const char *type, int cell) {
  enum { T = 3, N = 2, D = 4, H = 5 };
  dl_blob *x = dl_test_blob("x", 3, (int[]){T, N, D}, -1, 1, 31);
  dl_blob *cont = dl_test_blob("cont", 2, (int[]){T, N}, 0, 1, 1);
  dl_blob *ha = dl_blob_new("h"), *hb = dl_blob_new("h");
  dl_set(cont->count, 1, dl_data(cont));
  char yaml[300];
  rec_yaml(yaml, sizeof yaml, type, H, "");
  dl_blob *bottom[2] = {x, cont};
  dl_layer *a = dl_test_layer(yaml, bottom, 2, &ha, 1);
  dl_layer *b = dl_test_layer(yaml, bottom, 2, &hb, 1); /* same weights */
  ck_assert_ptr_nonnull(a->ops->state_size);
  ck_assert_ptr_nonnull(a->ops->get_state);
  ck_assert_ptr_nonnull(a->ops->set_state);
  size_t n = a->ops->state_size(a);
  ck_assert_uint_eq(n, (size_t)N * H * (cell ? 2 : 1));
  forward(a, bottom, 2, &ha, 1);
  float state[2 * N * H], zero[2 * N * H] = {0};
  a->ops->get_state(a, state);
  ck_assert_int_ne(memcmp(state, zero, n * sizeof(float)), 0);
  dl_diag_clear();
  ck_assert_int_eq(b->ops->set_state(b, state, n), DL_OK);
  float got[2 * N * H];
  b->ops->get_state(b, got);
  ck_assert_int_eq(memcmp(got, state, n * sizeof(float)), 0);
  forward(a, bottom, 2, &ha, 1); /* both continue from the same state */
  forward(b, bottom, 2, &hb, 1);
  ck_assert_int_eq(memcmp(dl_cdata(ha), dl_cdata(hb), ha->count * sizeof(float)), 0);
  dl_diag_clear();
  ck_assert_int_eq(b->ops->set_state(b, state, n - 1), DL_ECONFIG);
  char want[128];
  snprintf(want, sizeof want, "holds %zu floats, but this layer carries %zu", n - 1, n);
  ck_assert_msg(strstr(dl_diag_text(), want) != NULL, "%s", dl_diag_text());
  dl_layer_free(a);
  dl_layer_free(b);
  free_blobs((dl_blob *[]){x, cont, ha, hb}, 4);
}

START_TEST(lstm_state_ops) { check_state_ops("LSTM", 1); }
END_TEST

START_TEST(rnn_state_ops) { check_state_ops("RNN", 0); }
END_TEST

/* A 2-layer LSTM language model on TokenData (token ids with some structure:
 * each token depends on the one before), train N = %d streams of T = 5; the
 * test phase reads another file with N = 3, T = 4. */
#define LM_NET                                                                                     \
  "name: lm\n"                                                                                     \
  "layers:\n"                                                                                      \
  "- {name: text, type: TokenData, top: [data, target, cont], include: {phase: train},\n"          \
  "   source: train.ids, format: ids, vocab_size: 20, batch_size: %d, seq_len: 5}\n"               \
  "- {name: text, type: TokenData, top: [data, target, cont], include: {phase: test},\n"           \
  "   source: valid.ids, format: ids, vocab_size: 20, batch_size: 3, seq_len: 4}\n"                \
  "- {name: emb, type: Embed, bottom: data, top: x, input_dim: 20, num_output: 8}\n"               \
  "- {name: lstm1, type: LSTM, bottom: [x, cont], top: h1, num_output: 8}\n"                       \
  "- {name: lstm2, type: LSTM, bottom: [h1, cont], top: h2, num_output: 8}\n"                      \
  "- {name: ip, type: InnerProduct, bottom: h2, top: s, num_output: 20, axis: 2}\n"                \
  "- {name: loss, type: SoftmaxWithLoss, bottom: [s, target], top: loss, axis: 2,\n"               \
  "   perplexity: true}\n"

static void write_ids(const char *dir, const char *name, int n, unsigned seed) {
  char *text = malloc((size_t)n * 4 + 1), *p = text;
  unsigned v = seed, x = 0;
  for (int i = 0; i < n; i++) {
    v = v * 1103515245u + 12345u;
    x = (3 * x + ((v >> 16) % 3)) % 20;
    p += sprintf(p, "%u%c", x, i % 16 == 15 ? '\n' : ' ');
  }
  free(dl_test_write(dir, name, text));
  free(text);
}

/* The same net on SyntheticData tokens: no TokenData cursor to refuse another N. */
#define SYN_NET                                                                                    \
  "name: lm\n"                                                                                     \
  "layers:\n"                                                                                      \
  "- {name: tok, type: SyntheticData, top: data, shape: [5, %d], fill: classes, num_classes: "     \
  "20}\n"                                                                                          \
  "- {name: tgt, type: SyntheticData, top: target, shape: [5, %d], fill: classes, num_classes: "   \
  "20}\n"                                                                                          \
  "- {name: cont, type: SyntheticData, top: cont, shape: [5, %d], fill: constant, value: 1}\n"     \
  "- {name: emb, type: Embed, bottom: data, top: x, input_dim: 20, num_output: 8}\n"               \
  "- {name: lstm1, type: LSTM, bottom: [x, cont], top: h1, num_output: 8}\n"                       \
  "- {name: lstm2, type: LSTM, bottom: [h1, cont], top: h2, num_output: 8}\n"                      \
  "- {name: ip, type: InnerProduct, bottom: h2, top: s, num_output: 20, axis: 2}\n"                \
  "- {name: loss, type: SoftmaxWithLoss, bottom: [s, target], top: loss, axis: 2}\n"

/* A solver on net text `net` in dir (tests with test_iter 3 when `test`). */
static dl_solver *lm_solver_net(const char *dir, const char *net, int test) {
  char solver[512];
  snprintf(solver, sizeof solver,
           "base_lr: 0.5\nmomentum: 0.9\nclip_gradients: 1\nseed: 7\nmax_iter: 100\n"
           "test_iter: %d\naverage_loss: 4\n",
           test ? 3 : 0);
  return dl_test_solver(net, solver, dir, "lm");
}

static dl_solver *lm_solver(const char *dir, int batch) {
  char net[2048];
  snprintf(net, sizeof net, LM_NET, batch);
  return lm_solver_net(dir, net, 1);
}

static const char *lm_dir(char *dir, size_t n) {
  dl_test_tmpdir(dir, n);
  write_ids(dir, "train.ids", 400, 1); /* N = 4: 100 per stream, 19 batches an epoch */
  write_ids(dir, "valid.ids", 150, 2); /* N = 3: 50 per stream, 12 batches */
  return dir;
}

/* 30 steps with tests after steps 5 and 20: losses into loss[30], test means
 * (the loss) into test[2]. */
static void lm_continue(dl_solver *s, double *loss, double *test) {
  for (int i = 0; i < 30; i++) {
    dl_diag_clear();
    ck_assert_msg(dl_solver_step(s, &loss[i]) == DL_OK, "%s", dl_diag_text());
    if (i == 5 || i == 20) ck_assert_int_eq(dl_solver_test(s, &test[i == 20]), DL_OK);
  }
}

/* Snapshot at iteration 17 of a run that tested at 13 (so both nets carry
 * state), then 30 more steps crossing the epoch boundary at 19: the resumed
 * run's losses and test results equal the uninterrupted run's bit for bit.
 * Without the carried state (zeroed after the restore) they would not. */
START_TEST(lstm_lm_resume_is_bit_identical) {
  char dir[64], snap[600];
  lm_dir(dir, sizeof dir);
  dl_solver *a = lm_solver(dir, 4);
  ck_assert_int_eq(a->test->noutputs, 1);
  ck_assert(dl_net_output_perplexity(a->test, 0));
  double la[30], lb[30], lc, ta[2], tb[2], t0;
  for (int i = 0; i < 17; i++) {
    ck_assert_int_eq(dl_solver_step(a, NULL), DL_OK);
    if (i == 12) ck_assert_int_eq(dl_solver_test(a, &t0), DL_OK);
  }
  dl_diag_clear();
  ck_assert_msg(dl_solver_snapshot(a) == DL_OK, "%s", dl_diag_text());
  lm_continue(a, la, ta);
  snprintf(snap, sizeof snap, "%s/lm_iter_17.dlsnap", dir);

  dl_solver *b = lm_solver(dir, 4);
  dl_diag_clear();
  ck_assert_msg(dl_solver_restore(b, snap) == DL_OK, "%s", dl_diag_text());
  ck_assert_int_eq(b->iter, 17);
  lm_continue(b, lb, tb);
  for (int i = 0; i < 30; i++)
    ck_assert_msg(la[i] == lb[i], "iteration %d: %.17g vs %.17g", 17 + i, la[i], lb[i]);
  for (int i = 0; i < 2; i++)
    ck_assert_msg(ta[i] == tb[i], "test %d: %.17g vs %.17g", i, ta[i], tb[i]);
  ck_assert_int_eq(memcmp(dl_mem_host(a->train->flat_data), dl_mem_host(b->train->flat_data),
                          a->train->param_count * sizeof(float)),
                   0);

  /* The control: the same restore with the train LSTMs' state zeroed. */
  dl_solver *c = lm_solver(dir, 4);
  ck_assert_int_eq(dl_solver_restore(c, snap), DL_OK);
  float zero[2 * 4 * 8] = {0};
  for (int k = 0; k < 2; k++) {
    dl_layer *l = dl_net_layer(c->train, k ? "lstm2" : "lstm1");
    ck_assert_uint_eq(l->ops->state_size(l), 2 * 4 * 8);
    ck_assert_int_eq(l->ops->set_state(l, zero, 2 * 4 * 8), DL_OK);
  }
  ck_assert_int_eq(dl_solver_step(c, &lc), DL_OK);
  ck_assert_msg(lc != la[0], "zeroing the state changed nothing: the test would not see it");
  dl_solver_free(a);
  dl_solver_free(b);
  dl_solver_free(c);
  dl_test_rmdir(dir);
}
END_TEST

/* The carried state has N x H values: a snapshot of another batch size (the
 * parameters are the same) is refused with both sizes and a way out. (With
 * TokenData, the data cursor already refuses it: its epoch length changes.) */
START_TEST(lstm_lm_state_of_other_batch_size_refused) {
  char dir[64], snap[600], net[2048];
  dl_test_tmpdir(dir, sizeof dir);
  snprintf(net, sizeof net, SYN_NET, 4, 4, 4);
  dl_solver *a = lm_solver_net(dir, net, 0);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(dl_solver_step(a, NULL), DL_OK);
  ck_assert_int_eq(dl_solver_snapshot(a), DL_OK);
  snprintf(snap, sizeof snap, "%s/lm_iter_3.dlsnap", dir);
  snprintf(net, sizeof net, SYN_NET, 2, 2, 2);
  dl_solver *b = lm_solver_net(dir, net, 0);
  dl_diag_clear();
  ck_assert_int_eq(dl_solver_restore(b, snap), DL_ECONFIG);
  const char *msg = dl_diag_text();
  ck_assert_msg(strstr(msg, "carried state of layer 'lstm1' (train phase) holds 64 floats, but "
                            "the layer now carries 32") != NULL &&
                    strstr(msg, "--weights"),
                "%s", msg);
  dl_solver_free(a);
  dl_solver_free(b);
  dl_test_rmdir(dir);
}
END_TEST

/* Writes payload bytes [0, n) as a snapshot file of format `version`. */
static void write_snapshot_version(const char *path, uint32_t version, const unsigned char *p,
                                   size_t n) {
  uLongf zlen = compressBound((uLong)n);
  unsigned char *z = malloc(zlen);
  ck_assert_int_eq(compress2(z, &zlen, p, (uLong)n, 1), Z_OK);
  unsigned char header[32] = "DLSNAP01";
  uint32_t kind = DL_SNAP_FULL, crc_raw = (uint32_t)crc32_z(0, p, n),
           crc_z = (uint32_t)crc32_z(0, z, zlen);
  uint64_t raw = n;
  memcpy(header + 8, &version, 4);
  memcpy(header + 12, &kind, 4);
  memcpy(header + 16, &raw, 8);
  memcpy(header + 24, &crc_raw, 4);
  memcpy(header + 28, &crc_z, 4);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(header, 1, 32, f), 32);
  ck_assert_uint_eq(fwrite(z, 1, zlen, f), zlen);
  fclose(f);
  free(z);
}

/* A format 1 snapshot (written before the carried state was saved: the same
 * payload without the trailing state records) still resumes: the state starts
 * from zero, with a note saying so. Format 3 is refused. */
START_TEST(format_1_snapshot_still_resumes) {
  char dir[64], snap[600], old[640];
  lm_dir(dir, sizeof dir);
  dl_solver *a = lm_solver(dir, 4);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(dl_solver_step(a, NULL), DL_OK);
  ck_assert_int_eq(dl_solver_test(a, (double[1]){0}), DL_OK);
  ck_assert_int_eq(dl_solver_snapshot(a), DL_OK);
  snprintf(snap, sizeof snap, "%s/lm_iter_5.dlsnap", dir);
  uint32_t kind, version;
  unsigned char *payload;
  size_t len;
  ck_assert_int_eq(dl_snapshot_read_file(snap, &kind, &version, &payload, &len), DL_OK);
  ck_assert_uint_eq(version, DL_SNAP_VERSION);
  /* The state records: a count, then per layer its key, a u64 count and the floats. */
  size_t records = 4;
  static const char *const keys[] = {"train/lstm1", "train/lstm2", "test/lstm1", "test/lstm2"};
  static const int streams[] = {4, 4, 3, 3};
  for (int k = 0; k < 4; k++)
    records += 4 + strlen(keys[k]) + 8 + 4 * (size_t)(2 * streams[k] * 8);
  ck_assert_uint_gt(len, records);
  uint32_t nstates;
  memcpy(&nstates, payload + len - records, 4);
  ck_assert_uint_eq(nstates, 4);
  snprintf(old, sizeof old, "%s/old_iter_5.dlsnap", dir);
  write_snapshot_version(old, 1, payload, len - records);

  dl_solver *b = lm_solver(dir, 4);
  char *log = NULL;
  size_t loglen = 0;
  b->quiet = 0;
  b->log = open_memstream(&log, &loglen);
  dl_diag_clear();
  ck_assert_msg(dl_solver_restore(b, old) == DL_OK, "%s", dl_diag_text());
  fclose(b->log);
  b->log = stderr;
  ck_assert_int_eq(b->iter, 5);
  ck_assert_msg(strstr(log, "format 1 snapshot") && strstr(log, "layer 'lstm1'"), "%s", log);
  free(log);
  dl_layer *l = dl_net_layer(b->train, "lstm2");
  float state[2 * 4 * 8], zero[2 * 4 * 8] = {0};
  l->ops->get_state(l, state);
  ck_assert_int_eq(memcmp(state, zero, sizeof state), 0);
  ck_assert_int_eq(memcmp(dl_mem_host(a->train->flat_data), dl_mem_host(b->train->flat_data),
                          a->train->param_count * sizeof(float)),
                   0);
  ck_assert_int_eq(dl_solver_step(b, NULL), DL_OK);

  write_snapshot_version(old, DL_SNAP_VERSION + 1, payload, len);
  dl_diag_clear();
  ck_assert_int_eq(dl_solver_restore(b, old), DL_EIO);
  char want[128];
  snprintf(want, sizeof want, "format version %d, this dltrain reads versions 1 to %d",
           DL_SNAP_VERSION + 1, DL_SNAP_VERSION);
  ck_assert_msg(strstr(dl_diag_text(), want), "%s", dl_diag_text());
  free(payload);
  dl_solver_free(a);
  dl_solver_free(b);
  dl_test_rmdir(dir);
}
END_TEST

/* perplexity: true needs the loss to be a mean per label. */
START_TEST(perplexity_needs_a_mean_per_label) {
  dl_blob *s = dl_test_blob("s", 3, (int[]){2, 3, 4}, -1, 1, 5);
  dl_blob *y = dl_test_blob("y", 2, (int[]){2, 3}, 0, 0, 5), *loss = dl_blob_new("loss");
  dl_blob *bottom[2] = {s, y};
  static const char *const norms[] = {"valid", "full", "batch_size", "none"};
  for (int k = 0; k < 4; k++) {
    char yaml[200];
    snprintf(yaml, sizeof yaml,
             "{name: loss, type: SoftmaxWithLoss, axis: 2, perplexity: true, normalization: %s}",
             norms[k]);
    dl_layer *l = NULL;
    ck_assert_int_eq(dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l), DL_OK);
    ck_assert_ptr_nonnull(l->ops->reports_perplexity);
    ck_assert(l->ops->reports_perplexity(l));
    dl_diag_clear();
    dl_status st = dl_layer_setup(l, bottom, 2, &loss, 1);
    if (k < 2) {
      ck_assert_msg(st == DL_OK, "%s", dl_diag_text());
    } else {
      ck_assert_int_eq(st, DL_ECONFIG);
      ck_assert_msg(strstr(dl_diag_text(), "needs normalization valid or full"), "%s",
                    dl_diag_text());
    }
    dl_layer_free(l);
  }
  free_blobs((dl_blob *[]){s, y, loss}, 3);
}
END_TEST

Suite *suite_recurrent(void) {
  Suite *s = suite_create("recurrent");
  TCase *tc = tcase_create("recurrent");
  tcase_add_test(tc, embed_forward_hand);
  tcase_add_test(tc, embed_gradcheck_and_accumulation);
  tcase_add_test(tc, embed_bad_index_is_a_data_error);
  tcase_add_test(tc, lstm_params_in_caffe_order);
  tcase_add_test(tc, lstm_forward_hand);
  tcase_add_test(tc, lstm_matches_reference);
  tcase_add_test(tc, lstm_gradcheck);
  tcase_add_test(tc, lstm_state_carries_across_forwards);
  tcase_add_test(tc, lstm_truncated_gradient_with_carried_state);
  tcase_add_test(tc, lstm_bad_shapes_are_config_errors);
  tcase_add_test(tc, rnn_matches_reference);
  tcase_add_test(tc, rnn_gradcheck);
  tcase_add_test(tc, rnn_state_carries_across_forwards);
  tcase_add_test(tc, rnn_truncated_gradient_with_carried_state);
  tcase_add_test(tc, fast_exp_sigmoid_tanh_match_libm);
  tcase_add_test(tc, language_model_net_learns);
  suite_add_tcase(s, tc);
  TCase *st = tcase_create("state");
  tcase_add_test(st, lstm_state_ops);
  tcase_add_test(st, rnn_state_ops);
  tcase_add_test(st, lstm_lm_resume_is_bit_identical);
  tcase_add_test(st, lstm_lm_state_of_other_batch_size_refused);
  tcase_add_test(st, format_1_snapshot_still_resumes);
  tcase_add_test(st, perplexity_needs_a_mean_per_label);
  suite_add_tcase(s, st);
  return s;
}
