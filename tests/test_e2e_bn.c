/* End to end: configs/fashion_bn (a residual net with BatchNorm + Scale and
 * Eltwise sums, crop and mirror augmentation) trains at a reduced iteration
 * count, and its test phase normalizes with the running statistics that
 * training accumulated. The full recipe and its accuracy are in
 * docs/benchmarks_fashion_bn.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/net.h"
#include "solvers/solver.h"
#include "tests/testutil.h"

#define FASHION     "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define NET_FILE    "configs/fashion_bn/net.yaml"
#define SOLVER_FILE "configs/fashion_bn/solver.yaml"

static int quick(void) { return getenv("DLTRAIN_QUICK") != NULL; }

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(text);
  ck_assert_int_eq(fread(text, 1, (size_t)n, f), n);
  text[n] = 0;
  fclose(f);
  return text;
}

/* `text` with every occurrence of `from` replaced by `to` (malloc'd). */
static char *replace_all(const char *text, const char *from, const char *to, int *count) {
  size_t lf = strlen(from), lt = strlen(to), n = 0;
  for (const char *p = strstr(text, from); p; p = strstr(p + lf, from))
    n++;
  char *out = malloc(strlen(text) + n * (lt > lf ? lt - lf : 0) + 1), *o = out;
  ck_assert_ptr_nonnull(out);
  const char *p = text;
  for (const char *q = strstr(p, from); q; q = strstr(p, from)) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, to, lt);
    o += lt;
    p = q + lf;
  }
  strcpy(o, p);
  *count = (int)n;
  return out;
}

/* A test-phase net of the config, edited by one textual replacement (NULL: as
 * shipped), using the trained weights and statistics of `train`. */
static dl_net *test_net(const dl_net *train, dl_ctx *ctx, const char *from, const char *to,
                        int expect) {
  char *yaml = read_text(NET_FILE);
  if (from) {
    int n = 0;
    char *edited = replace_all(yaml, from, to, &n);
    ck_assert_msg(n == expect, "'%s' found %d times in %s, expected %d", from, n, NET_FILE, expect);
    free(yaml);
    yaml = edited;
  }
  dl_net *net = NULL;
  dl_diag_clear();
  ck_assert_msg(dl_net_from_string(yaml, NET_FILE, DL_TEST, ctx, &net) == DL_OK, "%s",
                dl_diag_text());
  free(yaml);
  ck_assert_msg(dl_net_share_params(net, train) == DL_OK, "%s", dl_diag_text());
  return net;
}

/* Mean accuracy of `net` over `batches` test batches: the one it has just
 * computed and the next batches - 1. */
static double accuracy_over(dl_net *net, int batches) {
  dl_blob *acc = dl_net_blob(net, "accuracy");
  ck_assert_ptr_nonnull(acc);
  double sum = dl_cdata(acc)[0];
  for (int i = 1; i < batches; i++) {
    ck_assert_int_eq(dl_net_forward(net, NULL), DL_OK);
    sum += dl_cdata(acc)[0];
  }
  return sum / batches;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

START_TEST(bn_resnet_short_run) {
  if (access(FASHION, R_OK) != 0) {
    printf("SKIP: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
    return;
  }
  /* The recipe (12 epochs, lr 0.1 decaying linearly to 0) compressed into
   * max_iter iterations: the poly schedule reaches 0 at the end, so the last
   * iterations settle the weights and the running statistics follow them. */
  dl_solver_param p;
  dl_diag_clear();
  ck_assert_msg(dl_solver_param_load(SOLVER_FILE, &p) == DL_OK, "%s", dl_diag_text());
  p.max_iter = quick() ? 150 : 400;
  p.test_iter = quick() ? 10 : 100; /* batches of 100: 1,000 or all 10,000 test images */
  p.display = 0;
  p.snapshot = 0;
  p.snapshot_after_train = 0;
  char tmp[64];
  dl_test_tmpdir(tmp, sizeof tmp);
  snprintf(p.snapshot_prefix, sizeof p.snapshot_prefix, "%s/fashion_bn", tmp);
  dl_solver_opts o = {.seed = -1, .gpu = -1, .quiet = 1};
  dl_solver *s = NULL;
  ck_assert_msg(dl_solver_create(&p, SOLVER_FILE, &o, &s) == DL_OK, "%s", dl_diag_text());
  while (s->iter < p.max_iter)
    ck_assert_msg(dl_solver_step(s, NULL) == DL_OK, "%s", dl_diag_text());

  /* Every BatchNorm of the test net reads the train net's statistics, which
   * training filled (the normalizer grows to 1 / (1 - fraction); untrained it is 0). */
  int nbn = 0;
  for (int i = 0; i < s->test->nsteps; i++) {
    dl_layer *l = s->test->steps[i].layer;
    if (strcmp(l->ops->type, "BatchNorm") != 0) continue;
    dl_layer *src = dl_net_layer(s->train, l->name);
    ck_assert_ptr_nonnull(src);
    for (int k = 0; k < 3; k++)
      ck_assert_ptr_eq(dl_cdata(l->params[k]), dl_cdata(src->params[k]));
    ck_assert_msg(dl_cdata(l->params[2])[0] > 1, "%s: normalizer %g", l->name,
                  dl_cdata(l->params[2])[0]);
    nbn++;
  }
  ck_assert_int_ge(nbn, 2);

  /* The solver's test net (use_global_stats: auto, so the running statistics). */
  double means[64];
  ck_assert_int_eq(dl_solver_test(s, means), DL_OK);
  double acc = -1;
  for (int k = 0; k < s->test->noutputs; k++)
    if (!strcmp(s->test->outputs[k]->name, "accuracy")) acc = means[k];

  /* With global statistics an image's scores do not depend on the rest of its
   * batch: the first 50 test images give the same scores in batches of 50 as
   * in batches of 100. */
  dl_ctx ctx = {.seed = 1, .threads = s->ctx.threads};
  dl_net *n100 = test_net(s->train, &ctx, NULL, NULL, 0);
  dl_net *n50 = test_net(s->train, &ctx, "batch_size: 100", "batch_size: 50", 1);
  ck_assert_int_eq(dl_net_forward(n100, NULL), DL_OK);
  ck_assert_int_eq(dl_net_forward(n50, NULL), DL_OK);
  dl_blob *fc100 = dl_net_blob(n100, "fc"), *fc50 = dl_net_blob(n50, "fc");
  ck_assert_int_eq(fc50->count * 2, fc100->count);
  double batch_dep = max_abs_diff(dl_cdata(fc100), dl_cdata(fc50), fc50->count);
  ck_assert_msg(batch_dep < 1e-3, "scores change with the batch: %g", batch_dep);
  float *scores0 = malloc(fc100->count * sizeof(float)); /* batch 0, running statistics */
  ck_assert_ptr_nonnull(scores0);
  memcpy(scores0, dl_cdata(fc100), fc100->count * sizeof(float));
  int batches = quick() ? 5 : 20;
  double acc_global = accuracy_over(n100, batches);

  /* Normalizing with each batch's own statistics instead (use_global_stats:
   * false) gives other scores, but about the same accuracy: the running
   * statistics match the trained weights. (Last: this net updates the shared
   * statistics.) */
  dl_net *nbatch = test_net(s->train, &ctx, "type: BatchNorm,",
                            "type: BatchNorm, use_global_stats: false,", nbn);
  ck_assert_int_eq(dl_net_forward(nbatch, NULL), DL_OK);
  double batch_vs_global = max_abs_diff(dl_cdata(dl_net_blob(nbatch, "fc")), scores0, fc100->count);
  double acc_batch = accuracy_over(nbatch, batches);

  printf("e2e fashion_bn: %d iterations, accuracy = %.4f (running statistics); first %d test "
         "images: %.4f with running statistics, %.4f with batch statistics; max score change "
         "%.3g between the two, %.3g between batch sizes 100 and 50\n",
         p.max_iter, acc, batches * 100, acc_global, acc_batch, batch_vs_global, batch_dep);
  ck_assert_msg(batch_vs_global > 1e-3, "use_global_stats: false made no difference (%g)",
                batch_vs_global);
  ck_assert_msg(fabs(acc_global - acc_batch) < (quick() ? 0.06 : 0.03),
                "running statistics %.4f vs batch statistics %.4f", acc_global, acc_batch);
  ck_assert_msg(acc >= (quick() ? 0.65 : 0.80), "accuracy %.4f", acc);
  free(scores0);
  dl_net_free(nbatch);
  dl_net_free(n50);
  dl_net_free(n100);
  dl_solver_free(s);
  dl_test_rmdir(tmp);
}
END_TEST

Suite *suite_e2e_bn(void) {
  Suite *s = suite_create("e2e_bn");
  TCase *tc = tcase_create("e2e_bn");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, bn_resnet_short_run);
  suite_add_tcase(s, tc);
  return s;
}
