/* Net wiring, the SGD update against closed forms, lr policies, snapshots
 * (round trip, corruption, exact resume) and signals. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/net.h"
#include "io/snapshot.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

/* ---- lr policies ---------------------------------------------------------- */

START_TEST(lr_policies_closed_forms) {
  dl_solver_param p = {.base_lr = 0.1f, .gamma = 0.5f, .power = 2, .stepsize = 10, .max_iter = 100};
  p.lr_policy = DL_LR_FIXED;
  ck_assert_double_eq_tol(dl_lr_at(&p, 57), 0.1, 1e-7);
  p.lr_policy = DL_LR_STEP;
  ck_assert_double_eq_tol(dl_lr_at(&p, 9), 0.1, 1e-7);
  ck_assert_double_eq_tol(dl_lr_at(&p, 25), 0.1 * 0.25, 1e-7);
  p.lr_policy = DL_LR_EXP;
  ck_assert_double_eq_tol(dl_lr_at(&p, 3), 0.1 * 0.125, 1e-7);
  p.lr_policy = DL_LR_INV;
  p.gamma = 1e-4f, p.power = 0.75f;
  ck_assert_double_eq_tol(dl_lr_at(&p, 10000), 0.1 * pow(1 + 1e-4f * 10000.0, -0.75f), 1e-7);
  p.lr_policy = DL_LR_MULTISTEP;
  p.gamma = 0.1f;
  p.stepvalue = (dl_ints){2, {20, 50}};
  ck_assert_double_eq_tol(dl_lr_at(&p, 19), 0.1, 1e-7);
  ck_assert_double_eq_tol(dl_lr_at(&p, 20), 0.01, 1e-7);
  ck_assert_double_eq_tol(dl_lr_at(&p, 99), 0.001, 1e-7);
  p.lr_policy = DL_LR_POLY;
  p.power = 2;
  ck_assert_double_eq_tol(dl_lr_at(&p, 50), 0.1 * 0.25, 1e-7);
  ck_assert_double_eq_tol(dl_lr_at(&p, 100), 0, 1e-12);
  p.lr_policy = DL_LR_SIGMOID;
  p.gamma = -0.1f;
  p.stepsize = 30;
  ck_assert_double_eq_tol(dl_lr_at(&p, 30), 0.05, 1e-7);
  ck_assert_double_eq_tol(dl_lr_at(&p, 40), 0.1 / (1 + exp(-(-0.1f) * 10.0)), 1e-7);
}
END_TEST

/* ---- net wiring ------------------------------------------------------------- */

static const char *branchy_net =
    "name: branchy\n"
    "layers:\n"
    "  - {name: d, type: SyntheticData, top: [data, label], shape: [4, 6], num_classes: 3}\n"
    "  - {name: ip, type: InnerProduct, bottom: data, top: ip, num_output: 3}\n"
    "  - {name: acc, type: Accuracy, bottom: [ip, label], top: acc}\n"
    "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n"
    "  - {name: only_test, type: ReLU, bottom: ip, top: r, include: {phase: test}}\n";

START_TEST(net_inserts_splits_and_plans_backward) {
  dl_ctx ctx = {.seed = 3};
  dl_net *net = NULL;
  dl_diag_clear();
  ck_assert_msg(dl_net_from_string(branchy_net, "<net>", DL_TRAIN, &ctx, &net) == DL_OK, "%s", dl_diag_text());
  /* ip and label each feed two layers: two splits; the test-only layer is gone. */
  int splits = 0;
  for (int i = 0; i < net->nsteps; i++) splits += !strcmp(net->steps[i].layer->ops->type, "Split");
  ck_assert_int_eq(splits, 2);
  ck_assert_ptr_null(dl_net_layer(net, "only_test"));
  ck_assert_int_eq(dl_net_layer(net, "ip")->nparams, 2);
  ck_assert_int_eq(net->nparams, 2);
  ck_assert_uint_eq(net->param_count, 3 * 6 + 3);
  /* Backward: ip yes, data layer and accuracy no. */
  for (int i = 0; i < net->nsteps; i++) {
    const char *n = net->steps[i].layer->name;
    if (!strcmp(n, "ip") || !strcmp(n, "loss")) ck_assert_msg(net->steps[i].need_backward, "%s", n);
    if (!strcmp(n, "d") || !strcmp(n, "acc")) ck_assert_msg(!net->steps[i].need_backward, "%s", n);
    if (!strcmp(n, "loss")) ck_assert_int_eq(net->steps[i].prop_down[1], 0); /* labels */
  }
  ck_assert_int_eq(net->noutputs, 2); /* acc and loss */
  /* Parameters are views of the flat buffer. */
  dl_layer *ip = dl_net_layer(net, "ip");
  ck_assert_ptr_eq(dl_cdata(ip->params[0]), dl_mem_host(net->flat_data));
  double loss;
  ck_assert_int_eq(dl_net_forward(net, &loss), DL_OK);
  ck_assert(loss > 0 && isfinite(loss));
  dl_net_free(net);
}
END_TEST

START_TEST(net_shared_params_accumulate) {
  dl_ctx ctx = {.seed = 3};
  dl_net *net = NULL;
  const char *yaml =
      "name: shared\nlayers:\n"
      "  - {name: d, type: SyntheticData, top: [x, label], shape: [2, 4], num_classes: 4}\n"
      "  - {name: a, type: InnerProduct, bottom: x, top: a, num_output: 4, param: [{name: w}, {name: b}]}\n"
      "  - {name: b, type: InnerProduct, bottom: a, top: y, num_output: 4, param: [{name: w}, {name: b}]}\n"
      "  - {name: loss, type: SoftmaxWithLoss, bottom: [y, label], top: loss}\n";
  dl_diag_clear();
  ck_assert_msg(dl_net_from_string(yaml, "<net>", DL_TRAIN, &ctx, &net) == DL_OK, "%s", dl_diag_text());
  ck_assert_int_eq(net->nparams, 2); /* w and b once */
  dl_layer *a = dl_net_layer(net, "a"), *b = dl_net_layer(net, "b");
  ck_assert_ptr_eq(dl_cdata(a->params[0]), dl_cdata(b->params[0]));
  ck_assert_ptr_eq(dl_cdiff(a->params[0]), dl_cdiff(b->params[0]));
  dl_net_free(net);
}
END_TEST

/* ---- the SGD update ----------------------------------------------------------- */

static const char *quad_net =
    "name: q\nlayers:\n"
    "  - {name: x, type: SyntheticData, top: x, shape: [8, 5]}\n"
    "  - {name: y, type: SyntheticData, top: y, shape: [8, 3]}\n"
    "  - {name: ip, type: InnerProduct, bottom: x, top: p, num_output: 3, weight_filler: {type: gaussian, std: 0.5}}\n"
    "  - {name: loss, type: EuclideanLoss, bottom: [p, y], top: loss}\n";

static dl_solver *make_solver(const char *net_yaml, const char *solver_yaml, const char *dir) {
  return dl_test_solver(net_yaml, solver_yaml, dir, "snap");
}

static void check_update(const char *solver_yaml, int l1) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s = make_solver(quad_net, solver_yaml, dir);
  size_t n = s->train->param_count;
  float *w0 = malloc(n * sizeof(float)), *v = calloc(n, sizeof(float));
  float mom = s->param.momentum, wd = s->param.weight_decay;
  for (int it = 0; it < 3; it++) {
    memcpy(w0, dl_mem_host(s->train->flat_data), n * sizeof(float));
    double lr = dl_lr_at(&s->param, s->iter);
    ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
    const float *g = dl_mem_host(s->train->flat_diff), *w1 = dl_mem_host(s->train->flat_data);
    for (size_t i = 0; i < n; i++) {
      /* ip bias has lr_mult 1 here too: all params share the rule. */
      float reg = l1 ? (float)((w0[i] > 0) - (w0[i] < 0)) : w0[i];
      v[i] = mom * v[i] + (float)lr * (g[i] + wd * reg);
      ck_assert_msg(fabsf(w1[i] - (w0[i] - v[i])) <= 1e-6f * fmaxf(1, fabsf(w1[i])),
                    "iter %d param %zu: got %g want %g", it, i, w1[i], w0[i] - v[i]);
    }
  }
  free(w0);
  free(v);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}

START_TEST(sgd_matches_closed_form) {
  /* The separate update (the test reads the stored gradients). */
  check_update("base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.01\nlr_policy: step\ngamma: 0.5\nstepsize: 1\nmax_iter: 10\nupdate_during_backward: false\n", 0);
  check_update("base_lr: 0.05\nweight_decay: 0.1\nregularization: L1\nmax_iter: 10\nupdate_during_backward: false\n", 1);
}
END_TEST

START_TEST(iter_size_averages_gradients) {
  char d1[64], d2[64];
  dl_test_tmpdir(d1, sizeof d1);
  dl_test_tmpdir(d2, sizeof d2);
  dl_solver *a = make_solver(quad_net, "base_lr: 0.1\nmax_iter: 5\nseed: 5\n", d1);
  dl_solver *b = make_solver(quad_net, "base_lr: 0.1\nmax_iter: 5\nseed: 5\niter_size: 3\n", d2);
  /* Fixed synthetic inputs: three identical batches average to one. */
  ck_assert_int_eq(dl_solver_step(a, NULL), DL_OK);
  ck_assert_int_eq(dl_solver_step(b, NULL), DL_OK);
  dl_check_close(dl_mem_host(b->train->flat_data), dl_mem_host(a->train->flat_data),
                 a->train->param_count, 1e-6, "weights");
  dl_solver_free(a);
  dl_solver_free(b);
  dl_test_rmdir(d1);
  dl_test_rmdir(d2);
}
END_TEST

START_TEST(clip_gradients_limits_the_norm) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s = make_solver(quad_net, "base_lr: 1\nmax_iter: 5\nclip_gradients: 0.001\n", dir);
  size_t n = s->train->param_count;
  float *w0 = malloc(n * sizeof(float));
  memcpy(w0, dl_mem_host(s->train->flat_data), n * sizeof(float));
  ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
  const float *w1 = dl_mem_host(s->train->flat_data);
  double step = 0;
  for (size_t i = 0; i < n; i++) step += (double)(w1[i] - w0[i]) * (w1[i] - w0[i]);
  ck_assert_double_eq_tol(sqrt(step), 0.001, 1e-6);
  free(w0);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- snapshots ------------------------------------------------------------- */

static const char *data_net =
    "name: resume\nlayers:\n"
    "  - name: d\n    type: MnistData\n    top: [data, label]\n"
    "    source: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
    "    label_source: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
    "    batch_size: 16\n    max_examples: 200\n"
    "  - {name: ip1, type: InnerProduct, bottom: data, top: ip1, num_output: 20}\n"
    "  - {name: relu, type: ReLU, bottom: ip1, top: ip1}\n"
    "  - {name: drop, type: Dropout, bottom: ip1, top: ip1, dropout_ratio: 0.3}\n"
    "  - {name: ip2, type: InnerProduct, bottom: ip1, top: ip2, num_output: 10}\n"
    "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip2, label], top: loss}\n";
#define DATA_SOLVER_COMMON "base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.001\nseed: 11\naverage_loss: 5\n"
static const char *data_solver = DATA_SOLVER_COMMON "max_iter: 40\n";

START_TEST(resume_is_bit_identical) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *a = make_solver(data_net, data_solver, dir);
  double la[30], lb[30];
  for (int i = 0; i < 17; i++) ck_assert_int_eq(dl_solver_step(a, NULL), DL_OK); /* crosses an epoch */
  ck_assert_int_eq(dl_solver_snapshot(a), DL_OK);
  for (int i = 0; i < 30; i++) ck_assert_int_eq(dl_solver_step(a, &la[i]), DL_OK);
  char snap[600];
  snprintf(snap, sizeof snap, "%s/snap_iter_17.dlsnap", dir);
  dl_solver *b = make_solver(data_net, "base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.001\nmax_iter: 40\nseed: 99\naverage_loss: 5\n", dir);
  dl_diag_clear();
  ck_assert_msg(dl_solver_restore(b, snap) == DL_OK, "%s", dl_diag_text());
  ck_assert_int_eq(b->iter, 17);
  ck_assert_int_eq(b->param.seed, 11); /* the snapshot's seed wins */
  for (int i = 0; i < 30; i++) ck_assert_int_eq(dl_solver_step(b, &lb[i]), DL_OK);
  for (int i = 0; i < 30; i++) ck_assert_msg(la[i] == lb[i], "iteration %d: %.17g vs %.17g", 17 + i, la[i], lb[i]);
  ck_assert_int_eq(memcmp(dl_mem_host(a->train->flat_data), dl_mem_host(b->train->flat_data),
                          a->train->param_count * sizeof(float)), 0);
  ck_assert(a->smoothed_loss == b->smoothed_loss);
  dl_solver_free(a);
  dl_solver_free(b);
  dl_test_rmdir(dir);
}
END_TEST

/* Convolutions with the default engine (auto: a fixed rule, not a timing)
 * repeat bit for bit, so runs and resumes are exact with oneDNN too. */
START_TEST(conv_runs_repeat_bit_for_bit) {
  static const char *conv_net =
      "name: c\nlayers:\n"
      "  - {name: d, type: SyntheticData, top: [x, y], shape: [16, 3, 12, 12], num_classes: 4, fixed: false}\n"
      "  - {name: c1, type: Convolution, bottom: x, top: c1, num_output: 8, kernel_size: 3}\n"
      "  - {name: r1, type: ReLU, bottom: c1, top: c1}\n"
      "  - {name: c2, type: Convolution, bottom: c1, top: c2, num_output: 8, kernel_size: 3, pad: 1}\n"
      "  - {name: ip, type: InnerProduct, bottom: c2, top: ip, num_output: 4}\n"
      "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, y], top: loss}\n";
  double l[2][6];
  for (int run = 0; run < 2; run++) {
    char dir[64];
    dl_test_tmpdir(dir, sizeof dir);
    dl_solver *s = make_solver(conv_net, "base_lr: 0.05\nmomentum: 0.9\nmax_iter: 10\nseed: 3\n", dir);
    for (int i = 0; i < 6; i++) ck_assert_int_eq(dl_solver_step(s, &l[run][i]), DL_OK);
    dl_solver_free(s);
    dl_test_rmdir(dir);
  }
  for (int i = 0; i < 6; i++) ck_assert_msg(l[0][i] == l[1][i], "step %d: %.17g vs %.17g", i, l[0][i], l[1][i]);
}
END_TEST

static long file_size(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

START_TEST(corrupt_and_truncated_snapshots_refused) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s = make_solver(quad_net, "base_lr: 0.1\nmax_iter: 5\n", dir);
  ck_assert_int_eq(dl_solver_step(s, NULL), DL_OK);
  ck_assert_int_eq(dl_solver_snapshot(s), DL_OK);
  char good[600], bad[640], cmd[2400];
  snprintf(good, sizeof good, "%s/snap_iter_1.dlsnap", dir);
  long size = file_size(good);
  ck_assert_int_gt(size, 32);
  /* Truncated by half. */
  snprintf(bad, sizeof bad, "%s/trunc.dlsnap", dir);
  snprintf(cmd, sizeof cmd, "head -c %ld '%s' > '%s'", size / 2, good, bad);
  ck_assert_int_eq(system(cmd), 0);
  dl_diag_clear();
  ck_assert_int_eq(dl_solver_restore(s, bad), DL_EIO);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "truncated or corrupt"));
  /* One flipped byte in the payload. */
  snprintf(bad, sizeof bad, "%s/flip.dlsnap", dir);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s' && printf '\\377' | dd of='%s' bs=1 seek=%ld conv=notrunc status=none",
           good, bad, bad, size - 5);
  ck_assert_int_eq(system(cmd), 0);
  dl_diag_clear();
  ck_assert_int_eq(dl_solver_restore(s, bad), DL_EIO);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "corrupt"));
  /* Not a snapshot at all, and missing. */
  char *junk = dl_test_write(dir, "junk.dlsnap", "name: not a snapshot, just some text here\n");
  dl_diag_clear();
  ck_assert_int_eq(dl_solver_restore(s, junk), DL_EIO);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "not a dltrain snapshot"));
  dl_diag_clear();
  ck_assert_int_eq(dl_solver_restore(s, "/nonexistent.dlsnap"), DL_EIO);
  /* The good one still loads; no temporary file is left behind. */
  dl_diag_clear();
  ck_assert_msg(dl_solver_restore(s, good) == DL_OK, "%s", dl_diag_text());
  snprintf(bad, sizeof bad, "%s.tmp", good);
  ck_assert_int_eq(file_size(bad), -1);
  free(junk);
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(snapshot_of_other_net_refused_weights_report) {
  char d1[64], d2[64];
  dl_test_tmpdir(d1, sizeof d1);
  dl_test_tmpdir(d2, sizeof d2);
  dl_solver *a = make_solver(quad_net, "base_lr: 0.1\nmax_iter: 5\n", d1);
  ck_assert_int_eq(dl_solver_snapshot(a), DL_OK);
  char snap[600];
  snprintf(snap, sizeof snap, "%s/snap_iter_0.dlsnap", d1);
  const char *other =
      "name: q2\nlayers:\n"
      "  - {name: x, type: SyntheticData, top: x, shape: [8, 5]}\n"
      "  - {name: y, type: SyntheticData, top: y, shape: [8, 4]}\n"
      "  - {name: ip, type: InnerProduct, bottom: x, top: p, num_output: 4}\n"
      "  - {name: extra, type: InnerProduct, bottom: p, top: p2, num_output: 4}\n"
      "  - {name: loss, type: EuclideanLoss, bottom: [p2, y], top: loss}\n";
  dl_solver *b = make_solver(other, "base_lr: 0.1\nmax_iter: 5\n", d2);
  dl_diag_clear();
  ck_assert_int_eq(dl_solver_restore(b, snap), DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "different parameters"));
  char report[4096] = "";
  FILE *f = fmemopen(report, sizeof report, "w");
  dl_diag_clear();
  /* Nothing matches: refused (a wrong file is the likely cause), report still printed. */
  ck_assert_int_eq(dl_solver_load_weights(b, snap, f), DL_ECONFIG);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "no parameter of the net matches"));
  ck_assert_ptr_nonnull(strstr(report, "ip/weight"));
  ck_assert_ptr_nonnull(strstr(report, "shape mismatch: net 4 x 5, file 3 x 5"));
  ck_assert_ptr_nonnull(strstr(report, "extra/weight"));
  ck_assert_ptr_nonnull(strstr(report, "not in file"));
  dl_solver_free(a);
  dl_solver_free(b);
  dl_test_rmdir(d1);
  dl_test_rmdir(d2);
}
END_TEST

START_TEST(divergence_is_reported) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_solver *s = make_solver(quad_net, "base_lr: 1000000\nmomentum: 0.9\nmax_iter: 100\n", dir);
  dl_status st = DL_OK;
  for (int i = 0; i < 100 && st == DL_OK; i++) st = dl_solver_step(s, NULL);
  ck_assert_int_eq(st, DL_EDIVERGED);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "training diverged at iteration"));
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "first non-finite values are in"));
  dl_solver_free(s);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- signals: a real child process -------------------------------------------- */

START_TEST(sigint_leaves_a_loadable_snapshot) {
  const char *bin = getenv("DLTRAIN_BIN");
  if (!bin || access(bin, X_OK) != 0) {
    printf("SKIP sigint test: DLTRAIN_BIN not set (run through `make test`)\n");
    return;
  }
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml", data_net);
  char solver[1024];
  snprintf(solver, sizeof solver, DATA_SOLVER_COMMON "max_iter: 100000000\ndisplay: 1\nsnapshot_prefix: %s/snap\n", dir);
  char *sp = dl_test_write(dir, "solver.yaml", solver);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stderr)) _exit(126);
    execl(bin, bin, "train", net, sp, "--quiet", "--threads", "1", (char *)NULL);
    _exit(127);
  }
  /* Wait until the loop runs (signal handlers are installed before it):
   * the metrics log then has a few lines. */
  char metrics[600];
  snprintf(metrics, sizeof metrics, "%s/snap_metrics.jsonl", dir);
  for (int tries = 0; tries < 2400; tries++) { /* up to 2 minutes on a loaded machine */
    struct stat sb;
    if (stat(metrics, &sb) == 0 && sb.st_size > 300) break;
    usleep(50 * 1000);
  }
  kill(pid, SIGINT);
  int status;
  waitpid(pid, &status, 0);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "exit status %d (%s %d)",
                WEXITSTATUS(status), WIFSIGNALED(status) ? "killed by signal" : "signal",
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  char pattern[600], cmd[700], found[600] = "";
  snprintf(pattern, sizeof pattern, "%s/snap_iter_*.dlsnap", dir);
  snprintf(cmd, sizeof cmd, "ls %s | tail -n 1", pattern);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(fgets(found, sizeof found, p));
  pclose(p);
  found[strcspn(found, "\n")] = 0;
  dl_solver *s = make_solver(data_net, data_solver, dir);
  dl_diag_clear();
  ck_assert_msg(dl_solver_restore(s, found) == DL_OK, "%s: %s", found, dl_diag_text());
  ck_assert_int_gt(s->iter, 0);
  dl_solver_free(s);
  free(net);
  free(sp);
  dl_test_rmdir(dir);
}
END_TEST

Suite *suite_solver(void) {
  Suite *s = suite_create("solver");
  TCase *tc = tcase_create("solver");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, lr_policies_closed_forms);
  tcase_add_test(tc, net_inserts_splits_and_plans_backward);
  tcase_add_test(tc, net_shared_params_accumulate);
  tcase_add_test(tc, sgd_matches_closed_form);
  tcase_add_test(tc, iter_size_averages_gradients);
  tcase_add_test(tc, clip_gradients_limits_the_norm);
  tcase_add_test(tc, resume_is_bit_identical);
  tcase_add_test(tc, conv_runs_repeat_bit_for_bit);
  tcase_add_test(tc, corrupt_and_truncated_snapshots_refused);
  tcase_add_test(tc, snapshot_of_other_net_refused_weights_report);
  tcase_add_test(tc, divergence_is_reported);
  tcase_add_test(tc, sigint_leaves_a_loadable_snapshot);
  suite_add_tcase(s, tc);
  return s;
}
