/* dltrain bench beyond the per-layer table (that is in test_cli.c): --batch,
 * --phase test, the memory plan, --peak, --suite with its table, JSON and
 * PNG chart, usage errors, bench/compare.sh with a stand-in peer; and the
 * rasterizer of io/plot.c. Runs dltrain through DLTRAIN_BIN on tiny nets. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/device.h"
#include "core/net.h"
#include "io/plot.h"
#include "tests/testutil.h"

static const char *bin(void) { return dl_test_bin(); }

/* Runs `PREFIX dltrain ARGS` (PREFIX: environment assignments or a shell
 * command; NULL: dltrain itself) with stdout+stderr captured; returns the exit code. */
static int run_cmd(const char *cmd, char *out, size_t n) { return dl_test_run(cmd, 1, out, n); }

static int run(const char *args, char *out, size_t n) {
  char cmd[3000];
  snprintf(cmd, sizeof cmd, "%s %s", bin(), args);
  return run_cmd(cmd, out, n);
}

#define NEED_BIN()                                                                                 \
  if (!bin()) {                                                                                    \
    printf("SKIP %s: DLTRAIN_BIN not set (run through `make test`)\n", __func__);                  \
    return;                                                                                        \
  }

static char out[1 << 18];

static const char *tiny_net =
    "name: tiny\nlayers:\n"
    "  - {name: d, type: SyntheticData, top: [x, y], shape: [32, 6], num_classes: 3}\n"
    "  - {name: ip, type: InnerProduct, bottom: x, top: ip, num_output: 3}\n"
    "  - {name: acc, type: Accuracy, bottom: [ip, y], top: acc, include: test}\n"
    "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, y], top: loss}\n";

/* ---- --batch ----------------------------------------------------------------- */

/* Built in-process: ctx.batch replaces shape[batch_axis] before setup, on
 * batch-first and time-major nets alike, and batch_size on the file readers. */
START_TEST(batch_override_when_building) {
  dl_diag_clear();
  dl_ctx ctx = {.seed = 1, .threads = 1, .batch = 8};
  dl_net *net = NULL;
  ck_assert_msg(dl_net_from_string(tiny_net, "tiny.yaml", DL_TRAIN, &ctx, &net) == DL_OK, "%s",
                dl_diag_text());
  ck_assert_int_eq(dl_net_batch_size(net), 8);
  ck_assert_int_eq(dl_blob_dim(dl_net_blob(net, "x"), 0), 8);
  ck_assert_int_eq(dl_blob_dim(dl_net_blob(net, "x"), 1), 6);
  ck_assert_int_eq((int)dl_net_blob(net, "y")->count, 8);
  dl_net_free(net);

  const char *seq = "name: seq\nlayers:\n"
                    "  - {name: d, type: SyntheticData, top: [x, y], shape: [5, 3, 4], "
                    "batch_axis: 1, num_classes: 7}\n"
                    "  - {name: s, type: Silence, bottom: [x, y]}\n";
  ctx.batch = 2;
  ck_assert_msg(dl_net_from_string(seq, "seq.yaml", DL_TRAIN, &ctx, &net) == DL_OK, "%s",
                dl_diag_text());
  ck_assert_int_eq(dl_net_batch_size(net), 2);
  dl_blob *x = dl_net_blob(net, "x"), *y = dl_net_blob(net, "y");
  ck_assert_int_eq(x->ndim, 3);
  ck_assert_int_eq(dl_blob_dim(x, 0), 5);
  ck_assert_int_eq(dl_blob_dim(x, 1), 2);
  ck_assert_int_eq(y->ndim, 2); /* labels: (T, N) */
  ck_assert_int_eq(dl_blob_dim(y, 0), 5);
  ck_assert_int_eq(dl_blob_dim(y, 1), 2);
  dl_net_free(net);

  /* Without an override the file's batch stands; batch_axis out of range is an error. */
  ctx.batch = 0;
  ck_assert(dl_net_from_string(seq, "seq.yaml", DL_TRAIN, &ctx, &net) == DL_OK);
  ck_assert_int_eq(dl_net_batch_size(net), 3);
  dl_net_free(net);
  dl_diag_clear();
  ck_assert(dl_net_from_string("name: b\nlayers:\n  - {name: d, type: SyntheticData, top: x, "
                               "shape: [4], batch_axis: 1}\n",
                               "b.yaml", DL_TRAIN, &ctx, &net) == DL_ECONFIG);
  ck_assert_ptr_nonnull(strstr(dl_diag_text(), "batch_axis 1 is not an axis"));
  dl_diag_clear();

  /* The file readers' batch_size is found through their schema. */
  dl_layer *l = NULL;
  ck_assert(dl_layer_from_yaml("{name: m, type: MnistData, top: [x, y], source: a, "
                               "label_source: b, batch_size: 17}",
                               DL_TRAIN, NULL, &l) == DL_OK);
  ck_assert_ptr_nonnull(dl_layer_batch_slot(l));
  ck_assert_int_eq(*dl_layer_batch_slot(l), 17);
  dl_layer_free(l);
  ck_assert(dl_layer_from_yaml("{name: r, type: ReLU, bottom: x, top: x}", DL_TRAIN, NULL, &l) ==
            DL_OK);
  ck_assert_ptr_null(dl_layer_batch_slot(l));
  dl_layer_free(l);
}
END_TEST

START_TEST(bench_batch_changes_the_samples) {
  NEED_BIN();
  char dir[64], args[1000], json[200];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml", tiny_net);
  snprintf(json, sizeof json, "%s/b.json", dir);
  snprintf(args, sizeof args, "bench %s --batch 8 --iterations 2 --warmup 1 --threads 1 --json %s",
           net, json);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  ck_assert_msg(strstr(out, "train phase, batch 8, 1 thread,") != NULL, "%s", out);
  /* The memory plan first, the peak RSS beside it at the end. */
  const char *plan = strstr(out, "memory plan: parameters "), *table = strstr(out, "layer  ");
  ck_assert_msg(plan && table && plan < table, "%s", out);
  ck_assert_ptr_nonnull(strstr(plan, "solver history"));
  ck_assert_ptr_nonnull(strstr(plan, "activations and gradients"));
  ck_assert_ptr_nonnull(strstr(out, "peak RSS "));
  ck_assert_ptr_nonnull(strstr(out, " MiB (plan "));
  FILE *f = fopen(json, "r");
  ck_assert_ptr_nonnull(f);
  static char text[1 << 14];
  text[fread(text, 1, sizeof text - 1, f)] = 0;
  fclose(f);
  ck_assert_msg(strstr(text, "\"batch\": 8,") != NULL, "%s", text);
  /* 6*3 weights + 3 biases with momentum: 21 floats each; the weights are
   * updated during backward, so only the biases' gradients are stored. */
  ck_assert_msg(strstr(text, "\"params_bytes\": 84, \"grads_bytes\": 12, \"history_bytes\": 84") !=
                    NULL,
                "%s", text);
  ck_assert_msg(strstr(out, "gradients 0.0 MiB (the rest updated during backward)") != NULL, "%s",
                out);
  /* Without --batch: the file's 32. */
  snprintf(args, sizeof args, "bench %s --iterations 1 --warmup 0 --threads 1", net);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "batch 32,"));
  free(net);
  dl_test_rmdir(dir);
}
END_TEST

/* The plan's workspace: what the C heap took besides the blobs, parameters
 * and history, here at least one image's im2col columns of a native
 * convolution (16 x 3 x 3 rows of 64 x 64 positions: 2.25 MiB); printed by
 * bench (and in its JSON, adding up to the total) and at train start. A
 * sanitizer's allocator hides the heap from glibc: then it says so. */
START_TEST(memory_plan_counts_the_workspace) {
  NEED_BIN();
  char dir[64], args[1000], json[200];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(
      dir, "net.yaml",
      "name: columns\nlayers:\n"
      "  - {name: d, type: SyntheticData, top: [x, y], shape: [2, 16, 64, 64], num_classes: 3}\n"
      "  - {name: c, type: Convolution, bottom: x, top: c, num_output: 4, kernel_size: 3, pad: 1, "
      "engine: native}\n"
      "  - {name: ip, type: InnerProduct, bottom: c, top: ip, num_output: 3}\n"
      "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, y], top: loss}\n");
  snprintf(json, sizeof json, "%s/b.json", dir);
  snprintf(args, sizeof args, "bench %s --iterations 1 --warmup 1 --threads 1 --json %s", net,
           json);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  const char *plan = strstr(out, "memory plan: ");
  ck_assert_msg(plan != NULL, "%s", out);
  FILE *f = fopen(json, "r");
  ck_assert_ptr_nonnull(f);
  static char text[1 << 14];
  text[fread(text, 1, sizeof text - 1, f)] = 0;
  fclose(f);
  const char *mp = strstr(text, "\"memory_plan\": {");
  ck_assert_msg(mp != NULL, "%s", text);
  size_t part[5], total;
  int known = sscanf(mp,
                     "\"memory_plan\": {\"params_bytes\": %zu, \"grads_bytes\": %zu, "
                     "\"history_bytes\": %zu, \"activations_bytes\": %zu, \"workspace_bytes\": "
                     "%zu, \"total_bytes\": %zu}",
                     &part[0], &part[1], &part[2], &part[3], &part[4], &total) == 6;
  if (known) {
    ck_assert_msg(strstr(plan, ", workspace ") != NULL, "%s", plan);
    ck_assert_msg(part[4] >= (size_t)16 * 9 * 64 * 64 * sizeof(float), "%s", mp);
    ck_assert_uint_eq(total, part[0] + part[1] + part[2] + part[3] + part[4]);
  } else {
    ck_assert_msg(strstr(mp, "\"workspace_bytes\": null, \"total_bytes\": ") != NULL, "%s", mp);
    ck_assert_msg(strstr(plan, "workspace not measured") != NULL, "%s", plan);
    printf("NOTE %s: this build's allocator hides the heap: workspace not measured\n", __func__);
  }
  /* train prints the same plan after its net summary */
  char *solver = dl_test_write(dir, "solver.yaml", "base_lr: 0.01\nmax_iter: 1\n");
  snprintf(args, sizeof args, "train %s %s --threads 1", net, solver);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  plan = strstr(out, "  memory plan: parameters ");
  ck_assert_msg(plan && strstr(plan, ", solver history ") &&
                    strstr(plan, known ? "after setup); total " : "workspace not measured"),
                "%s", out);
  free(net), free(solver);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- --phase test ------------------------------------------------------------ */

START_TEST(bench_test_phase_is_forward_only) {
  NEED_BIN();
  char dir[64], args[1000];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml", tiny_net);
  snprintf(args, sizeof args, "bench %s --phase test --iterations 2 --warmup 1 --threads 1", net);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "test phase (forward passes only)"));
  ck_assert_ptr_nonnull(strstr(out, "fwd ms"));
  ck_assert_msg(strstr(out, "bwd ms") == NULL, "%s", out);
  ck_assert_msg(strstr(out, "(update, other)") == NULL, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "(other)"));
  ck_assert_ptr_nonnull(strstr(out, "\nacc ")); /* the test-phase-only layer has a row */
  ck_assert_ptr_nonnull(strstr(out, "solver history 0.0 MiB"));
  ck_assert_ptr_nonnull(strstr(out, "iteration: median"));
  free(net);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- --peak -------------------------------------------------------------------- */

START_TEST(bench_peak_prints_gflops) {
  NEED_BIN();
  ck_assert_msg(run("bench --peak --peak-size 256 --threads 1", out, sizeof out) == 0, "%s", out);
  const char *p = strstr(out, "sgemm peak: ");
  ck_assert_msg(p != NULL, "%s", out);
  double g = 0;
  ck_assert_int_eq(sscanf(p, "sgemm peak: %lf GFLOP/s", &g), 1);
  ck_assert_msg(g > 0 && isfinite(g), "%s", out);
  /* With a net: the iteration as a fraction of it. */
  char dir[64], args[1000];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml", tiny_net);
  snprintf(args, sizeof args,
           "bench %s --peak --peak-size 128 --iterations 2 --warmup 1 --threads 1", net);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  p = strstr(out, "sgemm peak: ");
  ck_assert_msg(p && strstr(p, "% of it"), "%s", out);
  /* median against median, best against best: the best is the larger rate */
  double median = 0, best = 0;
  ck_assert_int_eq(
      sscanf(p, "sgemm peak: %lf GFLOP/s (dl_gemm 128^3, 1 thread, median of 7; best %lf)", &median,
             &best),
      2);
  ck_assert_msg(median > 0 && best >= median, "%s", out);
  ck_assert_msg(strstr(p, "% of the best") != NULL, "%s", out);
  free(net);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- --suite ------------------------------------------------------------------- */

static const char *const suite_names[] = {"fcn_s", "fcn_r", "alexnet_s", "alexnet_r", "lstm"};

/* Five tiny nets under the suite's names (the real ones take minutes). */
static void write_suite_configs(const char *dir) {
  for (int i = 0; i < 5; i++) {
    char name[64], text[600];
    snprintf(name, sizeof name, "%s.yaml", suite_names[i]);
    snprintf(text, sizeof text,
             "name: %s\nlayers:\n"
             "  - {name: d, type: SyntheticData, top: [x, y], shape: [%d, 5], num_classes: 4}\n"
             "  - {name: ip, type: InnerProduct, bottom: x, top: ip, num_output: 4}\n"
             "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, y], top: loss}\n",
             suite_names[i], 4 + i);
    free(dl_test_write(dir, name, text));
  }
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

START_TEST(bench_suite_table_json_and_plot) {
  NEED_BIN();
  char dir[64], args[1200];
  dl_test_tmpdir(dir, sizeof dir);
  write_suite_configs(dir);
  snprintf(args, sizeof args,
           "bench --suite dlbench --configs %s --threads 1,2 --iterations 2 --warmup 1 "
           "--plot %s/chart.png --json %s/suite.json",
           dir, dir, dir);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  /* The table: a header with one column per thread count, then one row per net. */
  const char *t = strstr(out, "DLBench: ms per mini-batch");
  ck_assert_msg(t != NULL, "%s", out);
  const char *hdr = strchr(t, '\n') + 1;
  ck_assert_msg(!strncmp(hdr, "net ", 4) && strstr(hdr, "1 thread") && strstr(hdr, "2 threads"),
                "%s", t);
  const char *row = strchr(hdr, '\n') + 1;
  for (int i = 0; i < 5; i++) {
    char name[32];
    int batch;
    double ms1, ms2, rss, plan;
    ck_assert_msg(sscanf(row, "%31s %d %lf %lf %lf %lf", name, &batch, &ms1, &ms2, &rss, &plan) ==
                      6,
                  "row %d: %s", i, row);
    ck_assert_str_eq(name, suite_names[i]);
    ck_assert_int_eq(batch, 4 + i);
    ck_assert_msg(ms1 > 0 && ms2 > 0 && rss > 0, "%s", row);
    const char *nl = strchr(row, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_msg(strchr(row, '\n') - row < 120, "%s", row);
    row = nl + 1;
  }
  /* The JSON has the ten runs. */
  char path[200];
  snprintf(path, sizeof path, "%s/suite.json", dir);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  static char text[1 << 14];
  text[fread(text, 1, sizeof text - 1, f)] = 0;
  fclose(f);
  int runs = 0;
  for (const char *q = text; (q = strstr(q, "\"median_ms\": ")); q++)
    runs++;
  ck_assert_int_eq(runs, 10);
  ck_assert_ptr_nonnull(strstr(text, "\"threads\": [1, 2]"));

  /* The PNG: signature, IHDR size, and drawn pixels. */
  snprintf(path, sizeof path, "%s/chart.png", dir);
  f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  unsigned char head[33];
  ck_assert_int_eq((int)fread(head, 1, sizeof head, f), 33);
  fclose(f);
  static const unsigned char sig[8] = {137, 'P', 'N', 'G', '\r', '\n', 26, '\n'};
  ck_assert(memcmp(head, sig, 8) == 0);
  ck_assert(be32(head + 8) == 13 && memcmp(head + 12, "IHDR", 4) == 0);
  uint32_t w = be32(head + 16), h = be32(head + 20);
  ck_assert_msg(w >= 400 && h >= 300, "%u x %u", w, h);
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  ck_assert_msg(png_image_begin_read_from_file(&img, path), "%s", img.message);
  img.format = PNG_FORMAT_RGB;
  ck_assert_uint_eq(img.width, w);
  unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
  ck_assert_ptr_nonnull(px);
  ck_assert_msg(png_image_finish_read(&img, NULL, px, 0, NULL), "%s", img.message);
  size_t drawn = 0, colored = 0;
  for (size_t i = 0; i < (size_t)w * h; i++) {
    const unsigned char *p = px + 3 * i;
    drawn += p[0] != 255 || p[1] != 255 || p[2] != 255;
    colored += abs(p[0] - p[1]) > 60 || abs(p[1] - p[2]) > 60; /* a series' colour */
  }
  free(px);
  ck_assert_msg(drawn > 2000 && drawn < (size_t)w * h / 2, "%zu pixels drawn", drawn);
  ck_assert_msg(colored > 100, "%zu coloured pixels", colored);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- usage errors ---------------------------------------------------------------- */

START_TEST(bench_usage_errors_exit_2) {
  NEED_BIN();
  static const struct {
    const char *args, *message;
  } cases[] = {
      {"bench", "usage: dltrain bench"},
      {"bench net.yaml --batch 0", "--batch expects an integer"},
      {"bench net.yaml --batch x", "--batch expects an integer"},
      {"bench net.yaml --phase dev", "--phase expects train or test"},
      {"bench net.yaml --threads 1,2", "several thread counts only go with --suite"},
      {"bench --suite dlbench --threads 1,,x", "--threads expects an integer"},
      {"bench --suite caffe", "the only suite is dlbench"},
      {"bench net.yaml --suite dlbench", "not both"},
      {"bench net.yaml --plot a.png", "only go with --suite"},
      {"bench net.yaml --configs d", "only go with --suite"},
      {"bench net.yaml --phase test --solver s.yaml", "runs no solver"},
      {"bench net.yaml --peak-size 1", "--peak-size expects an integer"},
      {"bench net.yaml --frobnicate 3", "unexpected argument '--frobnicate'"},
      {"bench net.yaml --json", "needs a value"},
      {"bench net.yaml --gpu -1", "--gpu expects an integer"},
      {"bench net.yaml --gpu 0 --peak", "does not go with --gpu"},
      {"bench --suite dlbench --gpu 0 --plot a.png", "does not go with --gpu"},
      {"bench net.yaml --gpu-batches", "only goes with --suite dlbench --gpu N"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ck_assert_msg(run(cases[i].args, out, sizeof out) == 2, "%s: %s", cases[i].args, out);
    ck_assert_msg(strstr(out, cases[i].message) != NULL, "%s: %s", cases[i].args, out);
  }
  /* A suite folder without the five nets: a config error before anything runs. */
  ck_assert_int_eq(run("bench --suite dlbench --configs /nonexistent-dir", out, sizeof out), 3);
  ck_assert_ptr_nonnull(strstr(out, "/nonexistent-dir/fcn_s.yaml"));
}
END_TEST

/* ---- --gpu -------------------------------------------------------------------- */

/* Without a GPU (CI, this machine): one line saying so and the device exit
 * code (6), before any other output, for a net and for the suite. With one:
 * the per-layer table and the device memory line (the rest of the GPU code is
 * checked by tests/test_gpu.c). */
START_TEST(bench_gpu_without_a_gpu_says_so) {
  NEED_BIN();
  char dir[64], args[1000];
  dl_test_tmpdir(dir, sizeof dir);
  char *net = dl_test_write(dir, "net.yaml", tiny_net);
  snprintf(args, sizeof args, "bench %s --gpu 0 --iterations 2 --warmup 1 --threads 1", net);
  int rc = run(args, out, sizeof out);
  if (dl_gpu_count() > 0) {
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "device memory: peak") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "iteration: median") != NULL, "%s", out);
  } else {
    printf("bench --gpu without a GPU: %s", out);
    ck_assert_msg(rc == 6, "rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "GPU 0 requested") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "iteration") == NULL, "%s", out);
    ck_assert_int_eq(run("bench --suite dlbench --gpu 0 --gpu-batches", out, sizeof out), 6);
    ck_assert_msg(strstr(out, "GPU 0 requested") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "DLBench suite") == NULL, "nothing before the error: %s", out);
  }
  free(net);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- bench/compare.sh ---------------------------------------------------------- */

/* compare.sh end to end with one stand-in peer (a shell script answering as
 * torch_dlbench.py would) and the others missing: no Python is run. */
START_TEST(compare_sh_runs_with_a_stand_in_peer) {
  NEED_BIN();
  if (access("bench/compare.sh", R_OK) != 0) {
    printf("SKIP %s: run from the repository root\n", __func__);
    return;
  }
  char dir[64], cmd[3000];
  dl_test_tmpdir(dir, sizeof dir);
  write_suite_configs(dir);
  char *py =
      dl_test_write(dir, "python",
                    "#!/bin/sh\n"
                    "if [ \"$1\" = -c ]; then echo 9.9; exit 0; fi\n"
                    "while [ $# -gt 0 ]; do [ \"$1\" = --json ] && out=$2; shift; done\n"
                    "printf '{\"results\": [\\n {\\n  \"net\": \"fcn-r\",\\n  \"batch\": 5,\\n"
                    "  \"median_ms\": 2000.0\\n }\\n]}\\n' > \"$out\"\n");
  ck_assert_int_eq(chmod(py, 0755), 0);
  free(dl_test_write(dir, "torch_dlbench.py", "# stand-in\n"));
  snprintf(cmd, sizeof cmd,
           "DLTRAIN=%s DLBENCH_CONFIGS=%s DLBENCH_ANCHORS=%s TORCH_PYTHON=%s "
           "TORCH_VENV=/nonexistent TF_VENV=/nonexistent sh bench/compare.sh --quick --rounds 2",
           bin(), dir, dir, py);
  ck_assert_msg(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "OPENBLAS_CORETYPE: "));
  ck_assert_ptr_nonnull(strstr(out, "cpu: "));
  ck_assert_ptr_nonnull(strstr(out, "torch-debian: torch 9.9"));
  ck_assert_ptr_nonnull(strstr(out, "torch-pypi: not installed (how to install: "));
  ck_assert_ptr_nonnull(strstr(out, "tf: not installed (how to install: "));
  const char *row = strstr(out, "\nfcn_r ");
  ck_assert_msg(row != NULL, "%s", out);
  char peer[32];
  int threads, batch;
  double mine, theirs, ratio;
  ck_assert_msg(sscanf(row, " fcn_r %d %d %lf %lf %31s %lf", &threads, &batch, &mine, &theirs, peer,
                       &ratio) == 6,
                "%s", row);
  ck_assert_int_eq(threads, 1);
  ck_assert_int_eq(batch, 5);
  ck_assert_double_eq_tol(theirs, 2000.0, 1e-9);
  ck_assert_str_eq(peer, "torch-debian");
  ck_assert_msg(ratio >= 0 && ratio < 0.5, "%s", row);
  /* --rounds 2: each round's ratio against that peer, then their range */
  const char *rounds = strstr(out, "\nfcn_r       1T vs torch-debian: ");
  ck_assert_msg(rounds != NULL, "%s", out);
  double r1, r2, lo, hi;
  ck_assert_msg(
      sscanf(rounds, " fcn_r 1T vs torch-debian: %lf %lf (%lf-%lf)", &r1, &r2, &lo, &hi) == 4, "%s",
      rounds);
  ck_assert_msg(lo <= r1 && r1 <= hi && lo <= r2 && r2 <= hi && hi < 0.5, "%s", rounds);
  free(py);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- bench/engines.sh ---------------------------------------------------------- */

/* engines.sh on a net that already names engines (flow and block mappings,
 * as configs/fashion_lenet/net.yaml does): each copy names its engine once on
 * each Convolution, and both run. */
START_TEST(engines_sh_replaces_named_engines) {
  NEED_BIN();
  if (access("bench/engines.sh", R_OK) != 0) {
    printf("SKIP %s: run from the repository root\n", __func__);
    return;
  }
  char dir[64], cmd[3000], path[128];
  dl_test_tmpdir(dir, sizeof dir);
  free(dl_test_write(
      dir, "net.yaml",
      "name: engines\nlayers:\n"
      "  - {name: data, type: SyntheticData, top: [data, label], shape: [2, 3, 8, 8], "
      "num_classes: 3}\n"
      "  - {engine: native, name: a, type: Convolution, bottom: data, top: a, num_output: 4, "
      "kernel_size: 3}\n"
      "  - name: b\n    type: Convolution\n    bottom: a\n    top: b\n    num_output: 4\n"
      "    # why the engine is named\n    engine: onednn   # a comment\n    kernel_size: 3\n"
      "  - {name: c, type: Convolution, bottom: b, top: c, num_output: 4, kernel_size: 1, "
      "engine: onednn}\n"
      "  - {name: ip, type: InnerProduct, bottom: c, top: ip, num_output: 3}\n"
      "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n"));
  snprintf(cmd, sizeof cmd,
           "DLTRAIN=%s sh bench/engines.sh --threads 1 --rounds 1 --iterations 1 --warmup 0 "
           "--keep %s %s/net.yaml",
           bin(), dir, dir);
  int rc = run_cmd(cmd, out, sizeof out);
  if (rc != 0 && strstr(out, "oneDNN")) { /* a build without oneDNN */
    printf("SKIP %s: %s\n", __func__, out);
    dl_test_rmdir(dir);
    return;
  }
  ck_assert_msg(rc == 0, "%s", out);
  ck_assert_msg(strstr(out, "\na ") && strstr(out, "\nb ") && strstr(out, "\nc "), "%s", out);
  static const char *const engines[] = {"native", "onednn"};
  for (int e = 0; e < 2; e++) {
    /* engines.sh names a copy DIRNAME_NETNAME.ENGINE.yaml */
    snprintf(path, sizeof path, "%s/%s_net.%s.yaml", dir, strrchr(dir, '/') + 1, engines[e]);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    static char text[1 << 12];
    text[fread(text, 1, sizeof text - 1, f)] = 0;
    fclose(f);
    int named = 0, total = 0;
    for (const char *q = text; (q = strstr(q, "engine:")); q++) {
      total++;
      if (!strncmp(q + strlen("engine:") + 1, engines[e], strlen(engines[e]))) named++;
    }
    ck_assert_msg(named == 3 && total == 3, "%s:\n%s", path, text);
  }
  dl_test_rmdir(dir);
}
END_TEST

/* ---- io/plot.c ------------------------------------------------------------------ */

static const dl_rgb white = {255, 255, 255}, black = {0, 0, 0}, red = {255, 0, 0};

static int is(dl_rgb a, dl_rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

static int count(const dl_canvas *c, int x0, int y0, int x1, int y1, dl_rgb col) {
  int n = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      n += is(dl_canvas_get(c, x, y), col);
  return n;
}

START_TEST(plot_text_renders_inside_its_box) {
  dl_canvas c;
  ck_assert(dl_canvas_init(&c, 64, 32, white) == DL_OK);
  int w = dl_canvas_text(&c, 3, 4, "H1", 1, black);
  ck_assert_int_eq(w, dl_text_width("H1", 1));
  ck_assert_int_eq(w, 11);
  /* 'H' has 7 + 7 + 3 pixels, '1' 1 + 2 + 1 + 1 + 1 + 1 + 3. */
  ck_assert_int_eq(count(&c, 3, 4, 3 + w, 4 + DL_FONT_H, black), 17 + 10);
  ck_assert_int_eq(count(&c, 0, 0, 64, 32, black), 27); /* nothing outside */
  /* The corners of 'H' are set, the middle of its top row is not. */
  ck_assert(is(dl_canvas_get(&c, 3, 4), black) && is(dl_canvas_get(&c, 7, 10), black));
  ck_assert(is(dl_canvas_get(&c, 5, 4), white));
  /* Scale 2 quadruples the pixels; an unknown character still draws (a box). */
  dl_canvas_free(&c);
  ck_assert(dl_canvas_init(&c, 64, 32, white) == DL_OK);
  dl_canvas_text(&c, 0, 0, "H", 2, red);
  ck_assert_int_eq(count(&c, 0, 0, 64, 32, red), 17 * 4);
  dl_canvas_text(&c, 20, 0, "\x01", 1, black);
  ck_assert_int_eq(count(&c, 20, 0, 25, 7, black), 20);
  dl_canvas_free(&c);
}
END_TEST

START_TEST(plot_line_sets_its_endpoints) {
  dl_canvas c;
  ck_assert(dl_canvas_init(&c, 50, 40, white) == DL_OK);
  dl_canvas_line(&c, 3, 5, 41, 30, 1, red);
  ck_assert(is(dl_canvas_get(&c, 3, 5), red));
  ck_assert(is(dl_canvas_get(&c, 41, 30), red));
  /* One pixel per step along the major axis, nothing else. */
  ck_assert_int_eq(count(&c, 0, 0, 50, 40, red), 41 - 3 + 1);
  dl_canvas_line(&c, 10, 38, 10, 20, 3, black); /* vertical, 3 wide */
  ck_assert(is(dl_canvas_get(&c, 9, 38), black) && is(dl_canvas_get(&c, 11, 20), black));
  ck_assert_int_eq(count(&c, 0, 0, 50, 40, black), 3 * (19 + 2)); /* the pen is centred */
  /* Off the canvas: clipped, no crash. */
  dl_canvas_line(&c, -100, -100, 200, 300, 2, black);
  dl_canvas_rect(&c, 45, 35, 20, 20, red);
  ck_assert_int_eq(count(&c, 45, 35, 50, 40, red), 25);
  dl_canvas_free(&c);
}
END_TEST

START_TEST(plot_chart_saves_a_png) {
  char dir[64], path[200], err[300];
  dl_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/c.png", dir);
  const char *xt[] = {"1", "2", "4"}, *names[] = {"a", "b"};
  const double v[] = {100, 60, NAN, 900, 500, 260};
  dl_chart ch = {.title = "T",
                 .xlabel = "threads",
                 .ylabel = "ms",
                 .npoints = 3,
                 .xticks = xt,
                 .nseries = 2,
                 .names = names,
                 .values = v,
                 .log_y = 1};
  dl_canvas c;
  ck_assert(dl_canvas_init(&c, 320, 200, white) == DL_OK);
  dl_chart_draw(&c, &ch);
  ck_assert(dl_canvas_save_png(&c, path, err, sizeof err) == DL_OK);
  ck_assert(dl_canvas_save_png(&c, "/nonexistent-dir/c.png", err, sizeof err) == DL_EIO);
  ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/c.png"));
  dl_canvas_free(&c);
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  ck_assert(png_image_begin_read_from_file(&img, path));
  ck_assert_uint_eq(img.width, 320);
  ck_assert_uint_eq(img.height, 200);
  png_image_free(&img);
  ck_assert(dl_canvas_init(&c, 0, 10, white) != DL_OK);
  dl_test_rmdir(dir);
}
END_TEST

Suite *suite_bench(void) {
  Suite *s = suite_create("bench");
  TCase *tc = tcase_create("bench");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, batch_override_when_building);
  tcase_add_test(tc, bench_batch_changes_the_samples);
  tcase_add_test(tc, bench_test_phase_is_forward_only);
  tcase_add_test(tc, bench_peak_prints_gflops);
  tcase_add_test(tc, bench_suite_table_json_and_plot);
  tcase_add_test(tc, bench_usage_errors_exit_2);
  tcase_add_test(tc, bench_gpu_without_a_gpu_says_so);
  tcase_add_test(tc, memory_plan_counts_the_workspace);
  tcase_add_test(tc, compare_sh_runs_with_a_stand_in_peer);
  tcase_add_test(tc, engines_sh_replaces_named_engines);
  tcase_add_test(tc, plot_text_renders_inside_its_box);
  tcase_add_test(tc, plot_line_sets_its_endpoints);
  tcase_add_test(tc, plot_chart_saves_a_png);
  suite_add_tcase(s, tc);
  return s;
}
