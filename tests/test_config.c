/* Configuration errors: every broken file must give a message naming the
 * position and what was expected, and a config status (never a crash). */
#include <stdio.h>
#include <stdlib.h>

#include "core/net.h"
#include "io/yaml.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

#define DATA "  - {name: d, type: SyntheticData, top: [data, label], shape: [4, 3], num_classes: 2}\n"
#define HEAD "name: t\nlayers:\n" DATA

typedef struct {
  const char *yaml;
  const char *expect; /* substring of the diagnostics */
  int line, col;      /* 0: position not asserted */
} bad_case;

static const bad_case bad_nets[] = {
    {"name: t\nlayers: [\n", "YAML syntax error", 0, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_outptu: 3}\n",
     "unknown key 'num_outptu' (did you mean 'num_output'?)", 4, 59},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: abc}\n",
     "num_output: expected a positive integer, got 'abc'", 4, 71},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip}\n",
     "missing required key 'num_output'", 4, 5},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: dat, top: ip, num_output: 2}\n",
     "bottom 'dat' is not produced by any earlier layer in the train phase (did you mean 'data'?)", 4, 0},
    {HEAD "  - {name: ip, type: InnerProdct, bottom: data, top: ip, num_output: 2}\n",
     "unknown layer type 'InnerProdct'; did you mean 'InnerProduct'", 4, 22},
    {"name: &a t\nlayers: []\n", "anchors", 1, 7},
    {"name: t\nlayers:\n  - &l {name: r, type: ReLU}\n  - *l\n", "anchors", 3, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 1e30}\n",
     "expected a positive integer", 4, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 2, num_output: 3}\n",
     "duplicate key 'num_output'", 4, 0},
    {HEAD "  - {name: d, type: ReLU, bottom: data, top: data}\n", "defined earlier", 4, 0},
    {HEAD "  - {name: r, type: ReLU, bottom: label, top: data}\n", "top 'data' is already produced", 4, 0},
    {"name: t\nlayer: []\n", "unknown key 'layer' (did you mean 'layers'?)", 2, 1},
    {"name: t\nlayers: []\n", "'layers' must be a non-empty list", 2, 9},
    {HEAD "  - {name: r, type: ReLU, bottom: data, top: r, include: {phase: trian}}\n",
     "expected one of train, test, got 'trian' (did you mean 'train'?)", 4, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 2, loss_weight: [1, 2]}\n",
     "loss_weight has 2 values but the layer has 1 tops", 4, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 2, param: [{}, {}, {}]}\n",
     "param lists 3 entries but the layer has 2 parameters", 4, 0},
    {HEAD "  - {name: a, type: InnerProduct, bottom: data, top: a, num_output: 2, param: [{name: w}]}\n"
          "  - {name: b, type: InnerProduct, bottom: a, top: b, num_output: 2, param: [{name: w}]}\n",
     "shared parameter 'w' has shape 2 x 2 here but 2 x 3", 5, 0},
    {"name: t\nlayers:\n  - {name: d, type: SyntheticData, top: data, shape: [100000, 100000, 100]}\n",
     "limit", 0, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 2}\n"
          "  - {name: s, type: Sigmoid, bottom: ip, top: s}\n"
          "  - {name: r, type: ReLU, bottom: ip, top: ip}\n",
     "works on it in place", 0, 0},
    {HEAD "  - {name: s, type: Sigmoid, bottom: data, top: s}\n"
          "  - {name: f, type: Flatten, bottom: s, top: f}\n"
          "  - {name: drop, type: Dropout, bottom: f, top: f}\n",
     "works in place on 'f', whose data is shared", 6, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 2, weight_filler: {type: xavir}}\n",
     "did you mean 'xavier'", 4, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 2, bias_term: maybe}\n",
     "bias_term: expected true or false, got 'maybe'", 4, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: -3}\n",
     "expected a positive integer in [1,", 4, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 1}\n"
          "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n",
     "the labels from 'd' go up to 1, but the scores 'ip' have only 1 classes", 5, 0},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 1}\n"
          "  - {name: acc, type: Accuracy, bottom: [ip, label], top: acc}\n"
          "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n",
     "layer 'acc' (Accuracy): the labels from 'd' go up to 1", 5, 0},
    {"- just\n- a list\n", "a net file is a mapping", 1, 1},
    {HEAD "  - [name, type]\n", "a layer must be a mapping", 4, 5},
    {HEAD "  - {name: ip, type: InnerProduct, bottom: [data, label, data], top: ip, num_output: 2}\n",
     "expected exactly 1 bottom blobs, got 3", 4, 0},
    {HEAD "  - {name: r, type: ReLU, bottom: data, top: r, exclude: train, include: test}\n",
     "include or exclude, not both", 0, 0},
};

static void expect_error(dl_status st, const bad_case *c, int index) {
  const char *text = dl_diag_text();
  ck_assert_msg(st == DL_ECONFIG, "case %d: status %d, want config error; diagnostics: %s", index,
                st, text);
  ck_assert_msg(strstr(text, c->expect) != NULL, "case %d: want '%s' in:\n%s", index, c->expect, text);
  if (c->line) {
    char pos[64];
    if (c->col)
      snprintf(pos, sizeof pos, "<net>:%d:%d:", c->line, c->col);
    else
      snprintf(pos, sizeof pos, "<net>:%d:", c->line);
    ck_assert_msg(strstr(text, pos) != NULL, "case %d: want position '%s' in:\n%s", index, pos, text);
  }
}

START_TEST(bad_net_files) {
  const bad_case *c = &bad_nets[_i];
  dl_diag_clear();
  dl_ctx ctx = {.seed = 1};
  dl_net *net = NULL;
  dl_status st = dl_net_from_string(c->yaml, "<net>", DL_TRAIN, &ctx, &net);
  expect_error(st, c, _i);
  ck_assert_ptr_null(net);
}
END_TEST

#define SOLVER_OK "base_lr: 0.01\nmax_iter: 10\n"
static const bad_case bad_solvers[] = {
    {SOLVER_OK "lr_policy: poly\n", "lr_policy 'poly' needs 'power'", 3, 12},
    {SOLVER_OK "base_rl: 0.1\n", "unknown key 'base_rl' (did you mean 'base_lr'?)", 3, 1},
    {"base_lr: 0.01\n", "missing required key 'max_iter'", 1, 1},
    {"base_lr: -1\nmax_iter: 10\n", "base_lr: expected a number in [0,", 1, 10},
    {SOLVER_OK "lr_policy: stepp\n", "did you mean 'step'", 3, 12},
    {SOLVER_OK "test_interval: 100\n", "test_iter is 0", 3, 16},
    {SOLVER_OK "momentum: .nan\n", "momentum: expected a finite number", 3, 11},
    {SOLVER_OK "lr_policy: step\ngamma: 0.1\n", "lr_policy 'step' needs 'stepsize'", 0, 0},
    {SOLVER_OK "lr_policy: multistep\ngamma: 0.1\nstepvalue: [100, 50]\n", "stepvalue must be increasing", 0, 0},
    {SOLVER_OK "max_iter: 20\n", "duplicate key 'max_iter'", 3, 1},
    {SOLVER_OK "display: {every: 10}\n", "display: expected a non-negative integer, got a mapping", 3, 10},
};

START_TEST(bad_solver_files) {
  const bad_case *c = &bad_solvers[_i];
  dl_diag_clear();
  dl_solver_param p;
  dl_status st = dl_solver_param_from_string(c->yaml, "<net>", &p);
  expect_error(st, c, _i);
}
END_TEST

START_TEST(good_solver_file) {
  dl_diag_clear();
  dl_solver_param p;
  dl_status st = dl_solver_param_from_string(
      "net: n.yaml\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: multistep\ngamma: 0.5\n"
      "stepvalue: [10, 20]\nmax_iter: 30\nregularization: L1\ntype: sgd\n",
      "<s>", &p);
  ck_assert_msg(st == DL_OK, "%s", dl_diag_text());
  ck_assert_str_eq(p.net, "n.yaml");
  ck_assert_float_eq(p.momentum, 0.9f);
  ck_assert_int_eq(p.stepvalue.n, 2);
  ck_assert_int_eq(p.regularization, DL_REG_L1);
  ck_assert_int_eq(p.display, 100);     /* default */
  ck_assert_int_eq(p.iter_size, 1);     /* default */
  ck_assert_int_eq(p.seed, -1);         /* default: from the clock */
}
END_TEST

/* Hostile files: binary garbage, deep nesting, many nodes: fast, clear errors. */
START_TEST(hostile_files) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *path = malloc(strlen(dir) + 16);
  sprintf(path, "%s/garbage.yaml", dir);
  FILE *f = fopen(path, "wb");
  for (int i = 0; i < 4096; i++) fputc((i * 7919) & 0xff, f);
  fclose(f);
  dl_ydoc *doc = NULL;
  dl_diag_clear();
  ck_assert_int_eq(dl_yaml_load_file(path, &doc), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "NUL bytes"));

  /* 10,000 nested lists */
  char *deep = malloc(20002);
  memset(deep, '[', 10000);
  memset(deep + 10000, ']', 10000);
  deep[20000] = '\n';
  deep[20001] = 0;
  dl_diag_clear();
  ck_assert_int_eq(dl_yaml_load_string(deep, "<deep>", &doc), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "nesting deeper than"));

  /* Invalid UTF-8 / control characters without NULs */
  dl_diag_clear();
  ck_assert_int_eq(dl_yaml_load_string("name: \x01\x02\x03\nlayers: 1\n", "<ctl>", &doc), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "<ctl>:1:"));

  /* Too many nodes: a 300,000-element flow list */
  size_t n = 300000;
  char *wide = malloc(n * 2 + 4);
  wide[0] = '[';
  for (size_t i = 0; i < n; i++) wide[1 + 2 * i] = '1', wide[2 + 2 * i] = ',';
  wide[n * 2] = ']';
  wide[n * 2 + 1] = 0;
  dl_diag_clear();
  ck_assert_int_eq(dl_yaml_load_string(wide, "<wide>", &doc), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "more than 200000 YAML nodes"));

  dl_diag_clear();
  ck_assert_int_eq(dl_yaml_load_file("/nonexistent/net.yaml", &doc), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "/nonexistent/net.yaml: cannot open"));
  free(deep);
  free(wide);
  free(path);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(several_errors_reported_together) {
  dl_diag_clear();
  dl_ctx ctx = {.seed = 1};
  dl_net *net = NULL;
  dl_status st = dl_net_from_string(
      HEAD "  - {name: a, type: InnerProduct, bottom: data, top: a, num_outpt: 2}\n"
           "  - {name: b, type: InnerProduct, bottom: data, top: b, num_output: x}\n",
      "<net>", DL_TRAIN, &ctx, &net);
  ck_assert_int_eq(st, DL_ECONFIG);
  ck_assert_int_ge(dl_diag_count(), 2);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "<net>:4:"));
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "<net>:5:"));
}
END_TEST

Suite *suite_config(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  tcase_add_loop_test(tc, bad_net_files, 0, (int)(sizeof bad_nets / sizeof bad_nets[0]));
  tcase_add_loop_test(tc, bad_solver_files, 0, (int)(sizeof bad_solvers / sizeof bad_solvers[0]));
  tcase_add_test(tc, good_solver_file);
  tcase_add_test(tc, hostile_files);
  tcase_add_test(tc, several_errors_reported_together);
  suite_add_tcase(s, tc);
  return s;
}
