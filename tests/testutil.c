/* Gradient checking after Caffe's GradientChecker: central differences in double
 * against the layer's analytic backward, relative threshold, kinks skipped. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/math.h"
#include "core/rng.h"

static double objective(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top, int nt,
                        float **weights) {
  dl_status st = l->ops->forward(l, bottom, nb, top, nt);
  ck_assert_msg(st == DL_OK, "forward failed: %s", dl_diag_text());
  double f = 0;
  for (int t = 0; t < nt; t++) {
    const float *y = dl_cdata(top[t]);
    for (size_t i = 0; i < top[t]->count; i++)
      f += (double)y[i] * weights[t][i];
  }
  return f;
}

static int check_blob(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top, int nt,
                      float **weights, dl_blob *b, const float *analytic, int is_bottom,
                      const dl_gradcheck_opts *o, char *msg, size_t msglen, size_t *msgoff) {
  int bad = 0;
  size_t stride = b->count > (size_t)o->max_per_blob ? b->count / (size_t)o->max_per_blob : 1;
  for (size_t i = 0; i < b->count; i += stride) {
    float *x = dl_data(b);
    float orig = x[i];
    if (is_bottom && o->kink_range > 0 && fabs(orig - o->kink) < o->kink_range) continue;
    x[i] = (float)(orig + o->step);
    double fp = objective(l, bottom, nb, top, nt, weights);
    x = dl_data(b);
    x[i] = (float)(orig - o->step);
    double fm = objective(l, bottom, nb, top, nt, weights);
    x = dl_data(b);
    x[i] = orig;
    double numeric = (fp - fm) / (2 * o->step), a = analytic[i];
    double scale = fmax(fmax(fabs(a), fabs(numeric)), 1.0);
    if (fabs(a - numeric) > o->threshold * scale) {
      if (bad < 3 && *msgoff < msglen)
        *msgoff += (size_t)snprintf(msg + *msgoff, msglen - *msgoff,
                                    "%s '%s'[%zu]: analytic %.6g, numeric %.6g; ",
                                    is_bottom ? "bottom" : "param", b->name, i, a, numeric);
      bad++;
    }
  }
  return bad;
}

int dl_gradcheck(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top, int nt,
                 const dl_gradcheck_opts *opts, char *msg, size_t msglen) {
  dl_gradcheck_opts o = opts ? *opts : (dl_gradcheck_opts){0};
  if (o.step == 0) o.step = 1e-2;
  if (o.threshold == 0) o.threshold = 1e-2;
  if (o.max_per_blob == 0) o.max_per_blob = 200;
  msg[0] = 0;
  size_t msgoff = 0;
  ck_assert_int_le(nt, DL_MAX_LAYER_BLOBS);

  /* Random objective weights; forward once so tops have their shapes. */
  dl_rng rng;
  dl_rng_seed(&rng, 12345);
  dl_status st = l->ops->forward(l, bottom, nb, top, nt);
  ck_assert_msg(st == DL_OK, "forward failed: %s", dl_diag_text());
  float *weights[DL_MAX_LAYER_BLOBS];
  for (int t = 0; t < nt; t++) {
    weights[t] = malloc(top[t]->count * sizeof(float));
    for (size_t i = 0; i < top[t]->count; i++)
      weights[t][i] = dl_rng_uniform_range(&rng, -1, 1);
  }

  /* Analytic gradients: top diff = weights, param diffs zeroed (they accumulate). */
  objective(l, bottom, nb, top, nt, weights);
  for (int t = 0; t < nt; t++)
    memcpy(dl_diff(top[t]), weights[t], top[t]->count * sizeof(float));
  for (int p = 0; p < l->nparams; p++)
    dl_set(l->params[p]->count, 0, dl_diff(l->params[p]));
  int prop[DL_MAX_LAYER_BLOBS];
  for (int b = 0; b < nb; b++)
    prop[b] = !(l->ops->no_grad_bottoms & (1u << b));
  ck_assert_msg(l->ops->backward != NULL, "layer %s has no backward", l->ops->type);
  l->ops->backward(l, top, nt, prop, bottom, nb);
  float *bottom_grad[DL_MAX_LAYER_BLOBS] = {0}, *param_grad[DL_MAX_LAYER_PARAMS] = {0};
  for (int b = 0; b < nb; b++)
    if (prop[b]) {
      bottom_grad[b] = malloc(bottom[b]->count * sizeof(float));
      memcpy(bottom_grad[b], dl_cdiff(bottom[b]), bottom[b]->count * sizeof(float));
    }
  for (int p = 0; p < l->nparams; p++) {
    param_grad[p] = malloc(l->params[p]->count * sizeof(float));
    memcpy(param_grad[p], dl_cdiff(l->params[p]), l->params[p]->count * sizeof(float));
  }

  int bad = 0;
  for (int b = 0; b < nb; b++)
    if (prop[b])
      bad += check_blob(l, bottom, nb, top, nt, weights, bottom[b], bottom_grad[b], 1, &o, msg,
                        msglen, &msgoff);
  if (!o.skip_params)
    for (int p = 0; p < l->nparams; p++)
      if (!(o.skip_param_mask & (1u << p)))
        bad += check_blob(l, bottom, nb, top, nt, weights, l->params[p], param_grad[p], 0, &o, msg,
                          msglen, &msgoff);
  for (int t = 0; t < nt; t++)
    free(weights[t]);
  for (int b = 0; b < nb; b++)
    free(bottom_grad[b]);
  for (int p = 0; p < l->nparams; p++)
    free(param_grad[p]);
  return bad;
}

dl_layer *dl_test_layer(const char *yaml, dl_blob *const *bottom, int nb, dl_blob *const *top,
                        int nt) {
  dl_diag_clear();
  dl_layer *l = NULL;
  dl_status st = dl_layer_from_yaml(yaml, DL_TRAIN, NULL, &l);
  ck_assert_msg(st == DL_OK, "building layer from '%s' failed: %s", yaml, dl_diag_text());
  st = dl_layer_setup(l, bottom, nb, top, nt);
  ck_assert_msg(st == DL_OK, "setting up layer from '%s' failed: %s", yaml, dl_diag_text());
  return l;
}

dl_blob *dl_test_blob(const char *name, int ndim, const int *shape, float lo, float hi,
                      uint64_t seed) {
  dl_blob *b = dl_blob_new(name);
  ck_assert(dl_blob_reshape(b, ndim, shape) == DL_OK);
  dl_rng rng;
  dl_rng_seed(&rng, seed);
  float *x = dl_data(b);
  for (size_t i = 0; i < b->count; i++)
    x[i] = dl_rng_uniform_range(&rng, lo, hi);
  return b;
}

void dl_check_close(const float *got, const float *want, size_t n, double tol, const char *what) {
  for (size_t i = 0; i < n; i++) {
    double scale = fmax(1.0, fmax(fabs(got[i]), fabs(want[i])));
    ck_assert_msg(fabs((double)got[i] - want[i]) <= tol * scale, "%s[%zu]: got %.7g, want %.7g",
                  what, i, got[i], want[i]);
  }
}

const char *dl_test_tmpdir(char *buf, size_t n) {
  snprintf(buf, n, "/tmp/dltrain-test-XXXXXX");
  ck_assert(mkdtemp(buf) != NULL);
  return buf;
}

void dl_test_rmdir(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert(system(cmd) == 0);
}

char *dl_test_write(const char *dir, const char *name, const char *text) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *path = malloc(n);
  snprintf(path, n, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
  return path;
}

/* ---- layers without bottoms, the dltrain binary ---------------------------- */

dl_status dl_test_build_data(const char *yaml, dl_phase phase, const dl_ctx *ctx,
                             dl_blob *const *top, int nt, dl_layer **out) {
  dl_diag_clear();
  dl_status st = dl_layer_from_yaml(yaml, phase, ctx, out);
  if (!st) st = dl_layer_setup(*out, NULL, 0, top, nt);
  return st;
}

dl_layer *dl_test_must_build_data(const char *yaml, dl_phase phase, const dl_ctx *ctx,
                                  dl_blob *const *top, int nt) {
  dl_layer *l = NULL;
  dl_status st = dl_test_build_data(yaml, phase, ctx, top, nt, &l);
  ck_assert_msg(st == DL_OK, "%s: %s", yaml, dl_diag_text());
  return l;
}

const char *dl_test_bin(void) {
  const char *b = getenv("DLTRAIN_BIN");
  return b && access(b, X_OK) == 0 ? b : NULL;
}

int dl_test_run(const char *cmd, int with_stderr, char *out, size_t n) {
  char full[8192];
  snprintf(full, sizeof full, "%s %s", cmd, with_stderr ? "2>&1" : "2>/dev/null");
  FILE *p = popen(full, "r");
  ck_assert_ptr_nonnull(p);
  size_t len = fread(out, 1, n - 1, p);
  out[len] = 0;
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

dl_solver *dl_test_solver(const char *net_yaml, const char *solver_yaml, const char *dir,
                          const char *prefix) {
  char *net_path = dl_test_write(dir, "net.yaml", net_yaml);
  char full[4096];
  snprintf(full, sizeof full, "%ssnapshot_prefix: %s/%s\n", solver_yaml, dir, prefix);
  char *solver_path = dl_test_write(dir, "solver.yaml", full);
  dl_solver_param p;
  dl_diag_clear();
  ck_assert_msg(dl_solver_param_load(solver_path, &p) == DL_OK, "%s", dl_diag_text());
  dl_solver_opts o = {.net_path = net_path, .seed = -1, .gpu = -1, .quiet = 1};
  dl_solver *s = NULL;
  ck_assert_msg(dl_solver_create(&p, solver_path, &o, &s) == DL_OK, "%s", dl_diag_text());
  free(net_path);
  free(solver_path);
  return s;
}
