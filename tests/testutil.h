/* Shared helpers for the Check suites: finite-difference gradient checks,
 * building layers from YAML snippets, random blobs. */
#ifndef DL_TESTUTIL_H
#define DL_TESTUTIL_H

#include <check.h>
#include <string.h>

#include "core/layer.h"
#include "solvers/solver.h"

typedef struct {
  double step;       /* central-difference step (default 1e-2 on float32 data) */
  double threshold;  /* relative tolerance (default 1e-2) */
  int max_per_blob;  /* check at most this many elements per blob, spread out (default 200) */
  double kink;       /* skip bottom elements within kink_range of kink (ReLU, max pool) */
  double kink_range; /* 0: no kink skipping */
  int skip_params;   /* only check bottoms */
  unsigned skip_param_mask; /* bit p: do not check param p (e.g. statistics the layer keeps) */
} dl_gradcheck_opts;

/* Checks every bottom (except the layer's no_grad_bottoms) and every param.
 * Objective: sum over tops t of dot(top_t, R_t) with fixed random R_t. Returns the
 * number of mismatches; a description of the first few goes to msg. */
int dl_gradcheck(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top, int nt,
                 const dl_gradcheck_opts *opts, char *msg, size_t msglen);

/* Builds and sets up a layer from YAML; fails the test (ck_abort) with the
 * diagnostics on any error. */
dl_layer *dl_test_layer(const char *yaml, dl_blob *const *bottom, int nb, dl_blob *const *top,
                        int nt);
/* New blob of the given shape (ndim axes), data uniform in [lo, hi) from seed. */
dl_blob *dl_test_blob(const char *name, int ndim, const int *shape, float lo, float hi,
                      uint64_t seed);
/* Asserts |a - b| <= tol * max(1, |a|, |b|) elementwise, naming the first mismatch. */
void dl_check_close(const float *got, const float *want, size_t n, double tol, const char *what);

/* Temp directory for a test, removed by the caller with dl_test_rmdir. */
const char *dl_test_tmpdir(char *buf, size_t n);
void dl_test_rmdir(const char *dir);
/* Writes text to dir/name and returns the path in a static-ish buffer the caller owns. */
char *dl_test_write(const char *dir, const char *name, const char *text);

/* A layer without bottoms (data layers) from YAML, set up with `top`; *out is
 * set (maybe NULL) for dl_layer_free, diagnostics are in dl_diag_text(). */
dl_status dl_test_build_data(const char *yaml, dl_phase phase, const dl_ctx *ctx,
                             dl_blob *const *top, int nt, dl_layer **out);
/* The same, failing the test (with the diagnostics) on any error. */
dl_layer *dl_test_must_build_data(const char *yaml, dl_phase phase, const dl_ctx *ctx,
                                  dl_blob *const *top, int nt);

/* $DLTRAIN_BIN when it is set and executable (through `make test`), else NULL. */
const char *dl_test_bin(void);
/* Runs the shell command `cmd`, its stdout (and stderr too when with_stderr,
 * else discarded) into out, NUL-terminated; returns the exit code (-1: it did
 * not exit normally). */
int dl_test_run(const char *cmd, int with_stderr, char *out, size_t n);

/* Writes net_yaml and solver_yaml to dir as net.yaml and solver.yaml and
 * makes a quiet CPU solver from them (failing the test on any error);
 * "snapshot_prefix: DIR/PREFIX" is added to the solver file. */
dl_solver *dl_test_solver(const char *net_yaml, const char *solver_yaml, const char *dir,
                          const char *prefix);

/* Every suite's constructor (tests/suites.h lists them). */
#define DL_SUITE(name) Suite *suite_##name(void);
#include "tests/suites.h"
#undef DL_SUITE

#endif
