/* The command line, run as users run it: exit codes, messages, the generated
 * docs, `dltrain test` on exported weights. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

static const char *bin(void) { return dl_test_bin(); }

/* Runs `BINARY ARGS` with stdout+stderr captured into out; returns the exit code. */
static int run_bin(const char *binary, const char *args, char *out, size_t n) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s", binary, args);
  return dl_test_run(cmd, 1, out, n);
}

static int run(const char *args, char *out, size_t n) { return run_bin(bin(), args, out, n); }

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

/* The CPU-only ./dltrain (DLTRAIN_CPU_BIN, set by `make test` in a GPU build)
 * hands a GPU request to the GPU build beside it, dltrain-gpu: the answer
 * comes from the GPU build (no GPU here: exit 6 naming the CUDA runtime; with
 * a GPU: training runs), never the CPU build's "built without CUDA". */
START_TEST(cpu_build_hands_gpu_requests_to_the_gpu_build) {
  const char *cpu = getenv("DLTRAIN_CPU_BIN");
  if (!cpu || access(cpu, X_OK) != 0) {
    printf("SKIP %s: DLTRAIN_CPU_BIN not set (a CPU-only build has no GPU build beside it)\n",
           __func__);
    return;
  }
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml",
                            "name: n\nlayers:\n"
                            "  - {name: d, type: SyntheticData, top: [x, l], shape: [2, 3], "
                            "num_classes: 3}\n"
                            "  - {name: ip, type: InnerProduct, bottom: x, top: y, num_output: 3}\n"
                            "  - {name: loss, type: SoftmaxWithLoss, bottom: [y, l], top: loss}\n");
  char yaml[200];
  snprintf(yaml, sizeof yaml, "base_lr: 0.1\nmax_iter: 2\nmode: gpu\nsnapshot_prefix: %s/s\n", dir);
  char *solver = dl_test_write(dir, "solver.yaml", yaml);
  char args[1200];
  snprintf(args, sizeof args, "train %s %s", net, solver);
  int code = run_bin(cpu, args, out, sizeof out);
  ck_assert_msg(strstr(out, "built without CUDA") == NULL, "%s", out);
  if (code == 6)
    ck_assert_msg(strstr(out, "no CUDA GPU is visible") && strstr(out, "CUDA runtime"), "%s", out);
  else
    ck_assert_msg(code == 0, "exit %d: %s", code, out);
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

/* dltrain bench on a small net: one row per layer (Split included), GFLOP/s on
 * the GEMM layers, and per-layer times that add up to no more than the mean
 * iteration (no nested timers) while covering most of it. */
START_TEST(bench_reports_layers_that_add_up) {
  NEED_BIN();
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml",
                            "name: b\nlayers:\n"
                            "  - {name: d, type: SyntheticData, top: [x, y], shape: [32, 3, 12, 12], num_classes: 5}\n"
                            "  - {name: c, type: Convolution, bottom: x, top: c, num_output: 8, kernel_size: 3}\n"
                            "  - {name: r, type: ReLU, bottom: c, top: c}\n"
                            "  - {name: ip, type: InnerProduct, bottom: c, top: ip, num_output: 5}\n"
                            "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, y], top: loss}\n");
  char args[1200], json[700];
  snprintf(json, sizeof json, "%s/b.json", dir);
  snprintf(args, sizeof args, "bench %s --iterations 30 --warmup 2 --threads 1 --json %s", net, json);
  ck_assert_int_eq(run(args, out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "fwd GF/s"));
  ck_assert_ptr_nonnull(strstr(out, "iteration: median"));
  FILE *f = fopen(json, "r");
  ck_assert_ptr_nonnull(f);
  static char text[1 << 16];
  text[fread(text, 1, sizeof text - 1, f)] = 0;
  fclose(f);
  double sum = 0, v, mean = 0, gflop = 0;
  int rows = 0;
  for (const char *q = text; (q = strstr(q, "\"fwd_ms\": ")); rows++) {
    ck_assert_int_eq(sscanf(q, "\"fwd_ms\": %lf", &v), 1);
    sum += v;
    q = strstr(q, "\"bwd_ms\": ");
    ck_assert_int_eq(sscanf(q, "\"bwd_ms\": %lf", &v), 1);
    sum += v;
  }
  ck_assert_int_eq(rows, 5);
  const char *m = strstr(text, "\"mean_ms\": ");
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(sscanf(m, "\"mean_ms\": %lf", &mean), 1);
  ck_assert_int_eq(sscanf(strstr(text, "\"gflop\": "), "\"gflop\": %lf", &gflop), 1);
  /* conv 2*32*8*100*27 and ip 2*32*5*800 forward, each x2 backward (conv: no dx) */
  ck_assert_double_eq_tol(gflop, (2.0 * 32 * 8 * 100 * 27 * 2 + 2.0 * 32 * 5 * 800 * 3) * 1e-9, 1e-6);
  ck_assert_msg(sum <= mean * 1.05 && sum >= mean * 0.5, "layers %.4f ms of a %.4f ms iteration", sum, mean);
  free(net);
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
  tcase_add_test(tc, cpu_build_hands_gpu_requests_to_the_gpu_build);
  tcase_add_test(tc, train_export_then_test);
  tcase_add_test(tc, bench_reports_layers_that_add_up);
  suite_add_tcase(s, tc);
  return s;
}
