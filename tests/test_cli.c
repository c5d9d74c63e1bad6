/* The command line, run as users run it: exit codes, messages, the generated
 * docs, `dltrain test` on exported weights. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

static const char *bin(void) {
  const char *b = getenv("DLTRAIN_BIN");
  return b && access(b, X_OK) == 0 ? b : NULL;
}

/* Runs `dltrain ARGS` with stdout+stderr captured into out; returns the exit code. */
static int run(const char *args, char *out, size_t n) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin(), args);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t len = fread(out, 1, n - 1, p);
  out[len] = 0;
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define NEED_BIN()                                                                   \
  if (!bin()) {                                                                      \
    printf("SKIP %s: DLTRAIN_BIN not set (run through `make test`)\n", __func__);    \
    return;                                                                          \
  }

static char out[1 << 20];

START_TEST(help_version_and_usage_errors) {
  NEED_BIN();
  ck_assert_int_eq(run("--help", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "exit codes"));
  ck_assert_int_eq(run("--version", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "dltrain 0."));
  ck_assert_int_eq(run("trian", out, sizeof out), 2);
  ck_assert_ptr_nonnull(strstr(out, "unknown command 'trian'"));
  ck_assert_int_eq(run("train --help", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "--snapshot"));
  ck_assert_int_eq(run("train a.yaml b.yaml --threads abc", out, sizeof out), 2);
  ck_assert_ptr_nonnull(strstr(out, "--threads expects an integer"));
  ck_assert_int_eq(run("test", out, sizeof out), 2);
}
END_TEST

START_TEST(layers_listing_and_suggestions) {
  NEED_BIN();
  ck_assert_int_eq(run("layers", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "ReLU"));
  ck_assert_int_eq(run("layers ReLU", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "negative_slope"));
  ck_assert_int_eq(run("layers Relu6", out, sizeof out), 3);
  ck_assert_ptr_nonnull(strstr(out, "did you mean"));
}
END_TEST

START_TEST(docs_config_md_is_generated_from_the_schemas) {
  NEED_BIN();
  ck_assert_int_eq(run("layers --markdown", out, sizeof out), 0);
  FILE *f = fopen("docs/config.md", "rb");
  ck_assert_msg(f != NULL, "docs/config.md missing");
  static char doc[1 << 20];
  size_t n = fread(doc, 1, sizeof doc - 1, f);
  doc[n] = 0;
  fclose(f);
  ck_assert_msg(strcmp(doc, out) == 0,
                "docs/config.md is out of date: run `./dltrain layers --markdown > docs/config.md`");
}
END_TEST

START_TEST(config_errors_exit_3_with_position) {
  NEED_BIN();
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml",
                            "name: n\nlayers:\n"
                            "  - {name: d, type: SyntheticData, top: x, shape: [2, 3]}\n"
                            "  - {name: r, type: ReLu, bottom: x, top: y}\n");
  char *solver = dl_test_write(dir, "solver.yaml", "base_lr: 0.1\nmax_iter: 3\n");
  char args[600];
  snprintf(args, sizeof args, "train %s %s", net, solver);
  ck_assert_int_eq(run(args, out, sizeof out), 3);
  ck_assert_ptr_nonnull(strstr(out, "net.yaml:4:21: layer 'r': unknown layer type 'ReLu'; did you mean 'ReLU'"));
  /* A GPU request without a usable GPU: exit 6, one clear line. */
  free(solver);
  solver = dl_test_write(dir, "solver.yaml", "base_lr: 0.1\nmax_iter: 3\nmode: gpu\n");
  ck_assert_int_eq(run(args, out, sizeof out), 6);
  ck_assert_ptr_nonnull(strstr(out, "GPU 0 requested"));
  free(net);
  free(solver);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(train_export_then_test) {
  NEED_BIN();
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml",
                            "name: n\nlayers:\n"
                            "  - {name: d, type: SyntheticData, top: [x, label], shape: [8, 4], num_classes: 2}\n"
                            "  - {name: ip, type: InnerProduct, bottom: x, top: ip, num_output: 2}\n"
                            "  - {name: acc, type: Accuracy, bottom: [ip, label], top: acc, include: test}\n"
                            "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n");
  char solver_text[600];
  snprintf(solver_text, sizeof solver_text,
           "base_lr: 0.1\nmax_iter: 20\ndisplay: 5\nseed: 4\nsnapshot_prefix: %s/m\n", dir);
  char *solver = dl_test_write(dir, "solver.yaml", solver_text);
  char args[800];
  snprintf(args, sizeof args, "train %s %s --export %s/w.dlweights --threads 1", net, solver, dir);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "seed: 4"));
  ck_assert_ptr_nonnull(strstr(out, "iter 20/20"));
  ck_assert_ptr_nonnull(strstr(out, "snapshot written"));
  snprintf(args, sizeof args, "test %s %s/w.dlweights --iterations 3", net, dir);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "acc = "));
  ck_assert_ptr_nonnull(strstr(out, "loaded"));
  /* The metrics log is JSON lines with the iteration. */
  char path[200];
  snprintf(path, sizeof path, "%s/m_metrics.jsonl", dir);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char line[400];
  ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
  ck_assert_ptr_nonnull(strstr(line, "{\"iter\": 1, \"time\""));
  fclose(f);
  free(net);
  free(solver);
  dl_test_rmdir(dir);
}
END_TEST

Suite *suite_cli(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, help_version_and_usage_errors);
  tcase_add_test(tc, layers_listing_and_suggestions);
  tcase_add_test(tc, docs_config_md_is_generated_from_the_schemas);
  tcase_add_test(tc, config_errors_exit_3_with_position);
  tcase_add_test(tc, train_export_then_test);
  suite_add_tcase(s, tc);
  return s;
}
