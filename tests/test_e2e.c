/* End to end: the shipped configs train (at reduced iteration counts where
 * the full run is long) and reach an asserted outcome. Fashion-MNIST comes from
 * the dataset-fashion-mnist package (scripts/setup.sh installs it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "solvers/solver.h"
#include "tests/testutil.h"

#define FASHION "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

static int quick(void) { return getenv("DLTRAIN_QUICK") != NULL; }

/* Trains configs/NAME with max_iter (0: as shipped); returns the test output
 * `metric` (NULL: the final smoothed training loss). */
static double train_config(const char *name, int max_iter, const char *metric, char *tmp, size_t n) {
  char solver_path[256];
  snprintf(solver_path, sizeof solver_path, "configs/%s/solver.yaml", name);
  dl_solver_param p;
  dl_diag_clear();
  ck_assert_msg(dl_solver_param_load(solver_path, &p) == DL_OK, "%s", dl_diag_text());
  if (max_iter) p.max_iter = max_iter;
  dl_test_tmpdir(tmp, n);
  snprintf(p.snapshot_prefix, sizeof p.snapshot_prefix, "%s/%s", tmp, name);
  if (p.seed < 0) p.seed = 1;
  p.display = 0;
  dl_solver_opts o = {.seed = -1, .gpu = -1, .quiet = 1};
  dl_solver *s = NULL;
  ck_assert_msg(dl_solver_create(&p, solver_path, &o, &s) == DL_OK, "%s", dl_diag_text());
  ck_assert_msg(dl_solver_solve(s) == DL_OK, "%s", dl_diag_text());
  double result = s->smoothed_loss;
  if (metric) {
    double means[64];
    ck_assert_ptr_nonnull(s->test);
    ck_assert_int_eq(dl_solver_test(s, means), DL_OK);
    int found = 0;
    for (int o2 = 0; o2 < s->test->noutputs; o2++)
      if (!strcmp(s->test->outputs[o2]->name, metric)) result = means[o2], found = 1;
    ck_assert_msg(found, "no test output named %s", metric);
  }
  printf("e2e %s: %d iterations, %s = %.4f\n", name, p.max_iter, metric ? metric : "train loss", result);
  dl_solver_free(s);
  return result;
}

START_TEST(mlp_one_epoch_reaches_84_percent) {
  if (access(FASHION, R_OK) != 0) {
    printf("SKIP: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
    return;
  }
  char tmp[64];
  double acc = train_config("fashion_mlp", quick() ? 300 : 0, "accuracy", tmp, sizeof tmp);
  ck_assert_msg(acc >= (quick() ? 0.78 : 0.84), "accuracy %.4f", acc);
  dl_test_rmdir(tmp);
}
END_TEST

START_TEST(lenet_short_run) {
  if (access(FASHION, R_OK) != 0) {
    printf("SKIP: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
    return;
  }
  /* The full recipe (10,000 iterations) reaches 0.905+ (docs/benchmarks.md);
   * 1,500 iterations are enough to show it learns. */
  char tmp[64];
  double acc = train_config("fashion_lenet", quick() ? 200 : 1500, "accuracy", tmp, sizeof tmp);
  ck_assert_msg(acc >= (quick() ? 0.70 : 0.85), "accuracy %.4f", acc);
  dl_test_rmdir(tmp);
}
END_TEST

START_TEST(softmax_regression) {
  if (access(FASHION, R_OK) != 0) {
    printf("SKIP: Fashion-MNIST not installed\n");
    return;
  }
  char tmp[64];
  double acc = train_config("fashion_softmax", quick() ? 200 : 0, "accuracy", tmp, sizeof tmp);
  ck_assert_msg(acc >= (quick() ? 0.70 : 0.78), "accuracy %.4f", acc);
  dl_test_rmdir(tmp);
}
END_TEST

START_TEST(two_layer_fits_random_data) {
  char tmp[64];
  double loss = train_config("two_layer", 0, NULL, tmp, sizeof tmp);
  /* Starts near 64 * 10 * E[(y - 0)^2] ~ 640; the net memorises 64 points. */
  ck_assert_msg(loss < 1.0, "loss %.4f", loss);
  dl_test_rmdir(tmp);
}
END_TEST

START_TEST(linear_regression_finds_least_squares) {
  char tmp[64];
  double loss = train_config("linreg", 0, NULL, tmp, sizeof tmp); /* fast even under ASan */
  /* The least-squares fit corn = 31.98 + 0.65 f + 1.11 i leaves a mean squared
   * residual of about 2.5 (EuclideanLoss reports half of it per example). */
  ck_assert_msg(loss < 3.0, "loss %.4f", loss);
  dl_test_rmdir(tmp);
}
END_TEST

Suite *suite_e2e(void) {
  Suite *s = suite_create("e2e");
  TCase *tc = tcase_create("e2e");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, two_layer_fits_random_data);
  tcase_add_test(tc, linear_regression_finds_least_squares);
  tcase_add_test(tc, softmax_regression);
  tcase_add_test(tc, mlp_one_epoch_reaches_84_percent);
  tcase_add_test(tc, lenet_short_run);
  suite_add_tcase(s, tc);
  return s;
}
