/* The solver file: its schema (which is also its documentation) and the
 * cross-key checks a schema cannot express (a policy's required keys). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "io/config.h"
#include "solvers/solver.h"

/* Lowercase; the parser ignores case, so Caffe's "Adam" or "RMSProp" work too. */
const char *const dl_solver_type_names[] = {"sgd",      "nesterov", "adagrad", "rmsprop",
                                            "adadelta", "adam",     "adamw",   NULL};
_Static_assert(sizeof dl_solver_type_names / sizeof dl_solver_type_names[0] == DL_SOLVER_COUNT + 1,
               "one name per solver type");
const char *const dl_lr_policy_names[] = {"fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid", NULL};
static const char *const reg_names[] = {"L2", "L1", NULL};
static const char *const mode_names[] = {"cpu", "gpu", NULL};
static const char *const bwu_names[] = {"auto", "true", "false", NULL};
static const char *const precision_names[] = {"fp32", "tf32", NULL};

#define S dl_solver_param
const dl_param_spec dl_solver_schema[] = {
    DL_P_STRING(S, net, "", "net file (relative to the solver file); the command line may give it instead", "net"),
    DL_P_ENUM(
        S, type, "sgd", dl_solver_type_names,
        "update rule, formulas in docs/solvers.md; adamw is adam with decoupled weight decay; "
        "case is ignored, so Caffe's \"AdaGrad\" works",
        "type: \"SGD\", \"Nesterov\", \"AdaGrad\", \"RMSProp\", \"AdaDelta\", \"Adam\" (adamw: "
        "none)"),
    DL_P_FLOAT(S, base_lr, NULL, 0, 1e6,
               "base learning rate (adadelta: a multiplier, Caffe uses 1)", "base_lr"),
    DL_P_FLOAT(S, momentum, "0", 0, 1,
               "sgd, nesterov: momentum (0: none); adam, adamw: beta1 (below 1; the default 0 is "
               "Caffe's, 0.9 is usual); adadelta: decay of its running averages (0.95 is usual); "
               "adagrad, rmsprop: must be 0",
               "momentum"),
    DL_P_FLOAT(S, momentum2, "0.999", 0, 1,
               "adam, adamw: beta2, the decay of the squared-gradient average (below 1)",
               "momentum2"),
    DL_P_FLOAT(
        S, delta, "1e-8", 0, 1,
        "adagrad, rmsprop, adadelta, adam, adamw: epsilon added to the denominator (positive)",
        "delta"),
    DL_P_FLOAT(S, rms_decay, "0.99", 0, 1, "rmsprop: decay of the squared-gradient average",
               "rms_decay"),
    DL_P_FLOAT(S, weight_decay, "0", 0, 1e6,
               "weight decay: added to the gradient (see regularization), except for adamw, which "
               "takes lr * weight_decay * w off the weights directly",
               "weight_decay"),
    DL_P_ENUM(S, regularization, "L2", reg_names, "L2 or L1 weight decay (adamw: L2 only)",
              "regularization_type"),
    DL_P_ENUM(S, lr_policy, "fixed", dl_lr_policy_names,
              "fixed, step (gamma, stepsize), exp (gamma), inv (gamma, power), multistep (gamma, "
              "stepvalue), poly (power, max_iter), sigmoid (gamma, stepsize)", "lr_policy"),
    DL_P_FLOAT(S, gamma, "0", -1e6, 1e6, "lr policy gamma", "gamma"),
    DL_P_FLOAT(S, power, "0", -1e6, 1e6, "lr policy power", "power"),
    DL_P_INT(S, stepsize, "0", 0, 2e9, "lr policy step size (iterations)", "stepsize"),
    DL_P_INTS(S, stepvalue, "[]", 0, 2e9, "multistep: iterations at which lr is multiplied by gamma", "stepvalue (repeated)"),
    DL_P_INT(S, max_iter, NULL, 1, 2e9, "iterations to train", "max_iter"),
    DL_P_INT(S, display, "100", 0, 2e9, "log every N iterations (0: never)", "display"),
    DL_P_INT(S, average_loss, "1", 1, 100000, "the displayed loss is the mean of the last N", "average_loss"),
    DL_P_INT(S, test_interval, "0", 0, 2e9, "test every N iterations (0: only at the end)", "test_interval"),
    DL_P_INT(S, test_iter, "0", 0, 2e9, "batches per test (0: no testing)", "test_iter"),
    DL_P_BOOL(S, test_initialization, "true", "also test before the first iteration", "test_initialization"),
    DL_P_INT(S, snapshot, "0", 0, 2e9, "snapshot every N iterations (0: only at the end)", "snapshot"),
    DL_P_STRING(S, snapshot_prefix, "snapshots/model", "path prefix of snapshot files (relative to the working directory)", "snapshot_prefix"),
    DL_P_INT(S, snapshot_keep, "3", 1, 1000000, "keep the last K snapshots", "(none)"),
    DL_P_BOOL(S, snapshot_after_train, "true", "write a snapshot when training ends", "snapshot_after_train"),
    DL_P_INT(S, seed, "-1", -1, 2147483647, "random seed (-1: from the clock, printed)", "random_seed"),
    DL_P_ENUM(S, mode, "cpu", mode_names, "cpu or gpu", "solver_mode"),
    DL_P_INT(S, device_id, "0", 0, 64, "GPU index in gpu mode", "device_id"),
    DL_P_ENUM(S, precision, "fp32", precision_names,
              "GPU math: fp32 (exact fp32 everywhere, TF32 off) or tf32 (TF32 tensor cores for "
              "the GEMMs and convolutions: about 8x the fp32 rate on an H100, 10-bit mantissa "
              "products); the CPU always computes in fp32",
              "(none)"),
    DL_P_BOOL(S, deterministic, "false",
              "GPU: only cuDNN algorithms that give the same bits on every run (the fastest of "
              "those, not of all); the CPU is deterministic for a given thread count anyway",
              "(none)"),
    DL_P_INT(S, iter_size, "1", 1, 100000, "accumulate gradients over N batches per update", "iter_size"),
    DL_P_FLOAT(S, clip_gradients, "0", 0, 1e30, "scale gradients down when their global L2 norm exceeds this (0: off)", "clip_gradients"),
    DL_P_ENUM(S, update_during_backward, "auto", bwu_names,
              "CPU: apply the update to a layer's weights during backward, tile by tile while the "
              "gradient is in cache, instead of storing all gradients and updating after "
              "backward (same rule, same results up to rounding, less memory traffic, no "
              "gradient buffer for those weights). auto: where possible (InnerProduct weights "
              "not shared with another layer, iter_size 1, no clip_gradients); true: the same, "
              "but iter_size or clip_gradients is an error; false: never",
              "(none)"),
    DL_P_INT(S, threads, "0", 0, 1024, "CPU threads (0: all cores; --threads overrides)", "(none)"),
    DL_SPEC_END};
#undef S

/* Which keys each policy needs, as Caffe reads them. */
static dl_status check_policy(const dl_ydoc *doc, const dl_ynode *root, dl_solver_param *p) {
  static const char *const needs[][3] = {
      [DL_LR_FIXED] = {NULL}, [DL_LR_STEP] = {"gamma", "stepsize", NULL},
      [DL_LR_EXP] = {"gamma", NULL}, [DL_LR_INV] = {"gamma", "power", NULL},
      [DL_LR_MULTISTEP] = {"gamma", "stepvalue", NULL}, [DL_LR_POLY] = {"power", NULL, NULL},
      [DL_LR_SIGMOID] = {"gamma", "stepsize", NULL}};
  dl_status first = DL_OK;
  const dl_ynode *pol = dl_ymap_get(root, "lr_policy");
  for (int i = 0; i < 3 && needs[p->lr_policy][i]; i++)
    if (!dl_ymap_get(root, needs[p->lr_policy][i])) {
      dl_loc loc = dl_yloc(doc, pol ? pol : root);
      dl_status st = dl_error_at(DL_ECONFIG, &loc, "solver: lr_policy '%s' needs '%s'",
                                 dl_lr_policy_names[p->lr_policy], needs[p->lr_policy][i]);
      if (!first) first = st;
    }
  if (p->lr_policy == DL_LR_STEP && p->stepsize < 1) {
    dl_loc loc = dl_yloc(doc, dl_ymap_get(root, "stepsize"));
    if (!first) first = dl_error_at(DL_ECONFIG, &loc, "solver: stepsize must be at least 1 for lr_policy 'step'");
  }
  for (int i = 1; i < p->stepvalue.n; i++)
    if (p->stepvalue.v[i] <= p->stepvalue.v[i - 1]) {
      dl_loc loc = dl_yloc(doc, dl_ymap_get(root, "stepvalue"));
      if (!first) first = dl_error_at(DL_ECONFIG, &loc, "solver: stepvalue must be increasing");
    }
  if (p->test_interval > 0 && p->test_iter == 0) {
    dl_loc loc = dl_yloc(doc, dl_ymap_get(root, "test_interval"));
    if (!first) first = dl_error_at(DL_ECONFIG, &loc, "solver: test_interval is set but test_iter is 0 (how many test batches?)");
  }
  return first;
}

/* Records an error at `key`'s value (the file's start when the key is
 * absent) and keeps the first status in *first. */
static void key_error(const dl_ydoc *doc, const dl_ynode *root, const char *key, dl_status *first,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void key_error(const dl_ydoc *doc, const dl_ynode *root, const char *key, dl_status *first,
                      const char *fmt, ...) {
  const dl_ynode *n = dl_ymap_get(root, key);
  dl_loc loc = dl_yloc(doc, n ? n : root);
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dl_status st = dl_error_at(DL_ECONFIG, &loc, "solver: %s", msg);
  if (!*first) *first = st;
}

#define T(t) (1u << DL_SOLVER_##t)
/* The keys only some types read: given to another type they would silently do
 * nothing, which is more likely a mistake than a wish. */
static const struct {
  const char *key;
  unsigned types;
  const char *users;
} type_keys[] = {
    {"momentum2", T(ADAM) | T(ADAMW), "adam and adamw"},
    {"rms_decay", T(RMSPROP), "rmsprop"},
    {"delta", T(ADAGRAD) | T(RMSPROP) | T(ADADELTA) | T(ADAM) | T(ADAMW),
     "adagrad, rmsprop, adadelta, adam and adamw"},
};

/* What a type needs of the keys it shares with the others. */
static dl_status check_type(const dl_ydoc *doc, const dl_ynode *root, const dl_solver_param *p) {
  const char *name = dl_solver_type_names[p->type];
  unsigned me = 1u << p->type;
  dl_status first = DL_OK;
  for (size_t i = 0; i < sizeof type_keys / sizeof type_keys[0]; i++)
    if (dl_ymap_get(root, type_keys[i].key) && !(type_keys[i].types & me))
      key_error(doc, root, type_keys[i].key, &first,
                "'%s' is not used by type '%s' (only by %s); remove it or change the type",
                type_keys[i].key, name, type_keys[i].users);
  if (me & (T(ADAGRAD) | T(RMSPROP)) && p->momentum != 0)
    key_error(doc, root, "momentum", &first,
              "type '%s' takes no momentum (Caffe refuses it too); remove 'momentum'", name);
  if (me & (T(ADAM) | T(ADAMW)) && p->momentum >= 1)
    key_error(doc, root, "momentum", &first,
              "momentum (beta1) must be below 1 for type '%s': the bias correction divides by "
              "1 - beta1^t",
              name);
  if (me & (T(ADAM) | T(ADAMW)) && p->momentum2 >= 1)
    key_error(doc, root, "momentum2", &first, "momentum2 (beta2) must be below 1 (try 0.999)");
  if (!(me & (T(SGD) | T(NESTEROV))) && p->delta <= 0)
    key_error(doc, root, "delta", &first,
              "delta must be positive for type '%s': it keeps the division finite where the "
              "gradient history is 0 (try 1e-8)",
              name);
  if (me & T(ADAMW) && p->regularization != DL_REG_L2)
    key_error(doc, root, "regularization", &first,
              "type 'adamw' decays the weights as L2 only (decoupled); use type 'adam' for L1");
  if (p->update_during_backward == DL_BWU_ON && (p->iter_size > 1 || p->clip_gradients > 0))
    key_error(doc, root, "update_during_backward", &first,
              "update_during_backward: true needs each gradient to be final when its layer's "
              "backward ends, but %s; use 'auto' (off here) or remove %s",
              p->iter_size > 1 ? "iter_size accumulates several batches"
                               : "clip_gradients needs the norm of all gradients first",
              p->iter_size > 1 ? "iter_size" : "clip_gradients");
  return first;
}
#undef T

static dl_status from_doc(const dl_ydoc *doc, dl_solver_param *p) {
  dl_schema_defaults(dl_solver_schema, p);
  dl_status st = dl_schema_apply(dl_solver_schema, doc, doc->root, NULL, "solver", p);
  if (st) return st;
  /* Both, so that every cross-key error is listed at once. */
  dl_status policy = check_policy(doc, doc->root, p), type = check_type(doc, doc->root, p);
  return policy ? policy : type;
}

dl_status dl_solver_param_load(const char *path, dl_solver_param *p) {
  dl_ydoc *doc = NULL;
  dl_status st = dl_yaml_load_file(path, &doc);
  if (!st) st = from_doc(doc, p);
  dl_yaml_free(doc);
  return st;
}

dl_status dl_solver_param_from_string(const char *yaml, const char *name, dl_solver_param *p) {
  dl_ydoc *doc = NULL;
  dl_status st = dl_yaml_load_string(yaml, name, &doc);
  if (!st) st = from_doc(doc, p);
  dl_yaml_free(doc);
  return st;
}
