/* The DLBench configs: each builds, its parameter count is the one
 * ../shared/dlbench.md computes from the study's repository, and one training
 * iteration runs with a finite loss. */
#include <math.h>
#include <stdlib.h>

#include "core/net.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

static const struct {
  const char *file;
  size_t params;
} nets[] = {
    {"configs/dlbench/fcn_s.yaml", 117997696},
    {"configs/dlbench/fcn_r.yaml", 14205962},
    {"configs/dlbench/alexnet_s.yaml", 62378344},
    {"configs/dlbench/alexnet_r.yaml", 85098},
    {"configs/dlbench/lstm.yaml", 6180624},
};

START_TEST(dlbench_param_counts_and_one_iteration) {
  const char *file = nets[_i].file;
  dl_solver_param p;
  dl_diag_clear();
  ck_assert(dl_solver_param_from_string("base_lr: 0.01\nmomentum: 0.9\nmax_iter: 1\n", "<s>", &p) ==
            DL_OK);
  dl_solver_opts o = {
      .net_path = file, .seed = 1, .gpu = -1, .metrics_path = "/dev/null", .quiet = 1};
  dl_solver *s = NULL;
  ck_assert_msg(dl_solver_create(&p, file, &o, &s) == DL_OK, "%s", dl_diag_text());
  ck_assert_msg(s->train->param_count == nets[_i].params, "%s: %zu parameters, want %zu", file,
                s->train->param_count, nets[_i].params);
  if (!getenv("DLTRAIN_QUICK")) { /* ASan makes the big nets slow; the count is the point there */
    double loss = 0;
    ck_assert_msg(dl_solver_step(s, &loss) == DL_OK, "%s", dl_diag_text());
    ck_assert_msg(isfinite(loss) && loss > 0, "%s: loss %g", file, loss);
  }
  dl_solver_free(s);
}
END_TEST

Suite *suite_dlbench(void) {
  Suite *s = suite_create("dlbench");
  TCase *tc = tcase_create("dlbench");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, dlbench_param_counts_and_one_iteration, 0,
                      (int)(sizeof nets / sizeof nets[0]));
  suite_add_tcase(s, tc);
  return s;
}
