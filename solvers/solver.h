/* The solver: owns the train net (and a test net sharing its weights), runs
 * the iteration loop (forward, backward, regularize, clip, update), tests,
 * displays, snapshots, handles signals and stops on divergence. */
#ifndef DL_SOLVER_H
#define DL_SOLVER_H

#include <signal.h>
#include <stdio.h>

#include "core/net.h"
#include "core/schema.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caffe's solver types plus AdamW; docs/solvers.md has the formulas. */
typedef enum {
  DL_SOLVER_SGD,
  DL_SOLVER_NESTEROV,
  DL_SOLVER_ADAGRAD,
  DL_SOLVER_RMSPROP,
  DL_SOLVER_ADADELTA,
  DL_SOLVER_ADAM,
  DL_SOLVER_ADAMW,
  DL_SOLVER_COUNT
} dl_solver_type;
typedef enum { DL_LR_FIXED, DL_LR_STEP, DL_LR_EXP, DL_LR_INV, DL_LR_MULTISTEP, DL_LR_POLY, DL_LR_SIGMOID } dl_lr_policy;
typedef enum { DL_REG_L2, DL_REG_L1 } dl_regularization;
typedef enum { DL_BWU_AUTO, DL_BWU_ON, DL_BWU_OFF } dl_backward_update_mode;

typedef struct dl_solver_param {
  char net[DL_STR_MAX];
  int type;
  float base_lr, momentum, weight_decay;
  float momentum2; /* adam, adamw: beta2 */
  float delta;     /* adaptive types: epsilon of the denominator */
  float rms_decay; /* rmsprop */
  int regularization;
  int lr_policy;
  float gamma, power;
  int stepsize;
  dl_ints stepvalue;
  int max_iter, display, average_loss;
  int test_interval, test_iter, test_initialization;
  int snapshot;
  char snapshot_prefix[DL_STR_MAX];
  int snapshot_keep, snapshot_after_train;
  int seed; /* -1: pick one from the clock, and print it */
  int mode; /* 0 cpu, 1 gpu */
  int device_id;
  int iter_size;
  float clip_gradients; /* <= 0: off */
  int update_during_backward; /* DL_BWU_AUTO, _ON or _OFF */
  int precision;              /* DL_PRECISION_FP32 or _TF32 (GPU runs) */
  int deterministic;          /* GPU: only algorithms that repeat bit for bit */
  int threads;          /* 0: all cores */
} dl_solver_param;

enum { DL_PRECISION_FP32, DL_PRECISION_TF32 };

extern const dl_param_spec dl_solver_schema[];
extern const char *const dl_solver_type_names[];
extern const char *const dl_lr_policy_names[];

/* Parses a solver file; `net_override` (may be NULL) replaces its `net`. */
dl_status dl_solver_param_load(const char *path, dl_solver_param *p);
dl_status dl_solver_param_from_string(const char *yaml, const char *name, dl_solver_param *p);

/* The learning rate at `iter` for the policy (closed forms as Caffe). */
double dl_lr_at(const dl_solver_param *p, int64_t iter);

/* History floats per parameter the type keeps: 1 (momentum, or a running
 * average of squared gradients) or 2 (adadelta, adam, adamw). */
int dl_solver_history_slots(int type);

typedef struct dl_solver {
  dl_solver_param param;
  char *solver_file;
  char *net_file;
  dl_ctx ctx;
  dl_net *train, *test;
  dl_mem *history; /* (slots, param_count): slot k of parameter i at k * param_count + i */
  int64_t iter;
  dl_mem *loss_window; /* (average_loss): the last losses, slot iter % average_loss; in
                          GPU mode written on the device and read at display iterations */
  int64_t losses_seen;
  double smoothed_loss;
  FILE *metrics; /* JSON lines next to the snapshots */
  FILE *log;     /* human log (stderr) */
  int quiet;
  char last_snapshot[1024];
  double data_wait_seconds;
  int64_t clipped;      /* iterations whose gradient was clipped since the last display */
  double clip_norm_max; /* the largest gradient norm among them */
  double start_time;
  struct dl_solver_gpu *gpu; /* GPU mode: device-side state (solvers/solver_gpu.cu) */
  struct dl_backward_update *bwu; /* update during backward; NULL when off */
} dl_solver;

typedef struct dl_solver_opts {
  const char *net_path;   /* overrides the solver's `net` */
  int64_t seed;           /* >= 0 overrides the solver's seed */
  int threads;            /* > 0 overrides */
  int gpu;                /* >= 0: asks for that GPU */
  int batch;              /* > 0: overrides the data layers' batch size (dl_ctx.batch) */
  const char *metrics_path; /* NULL: <snapshot_prefix>_metrics.jsonl */
  int quiet;
} dl_solver_opts;

dl_status dl_solver_create(const dl_solver_param *p, const char *solver_file,
                           const dl_solver_opts *opts, dl_solver **out);
void dl_solver_free(dl_solver *s);

/* Runs until max_iter (or a signal). */
dl_status dl_solver_solve(dl_solver *s);
/* One training iteration (forward, backward, update); *loss gets its loss.
 * In GPU mode the loss stays on the device when `loss` is NULL (no wait for
 * the GPU); divergence is then found at the next call that reads it (and
 * reported at the iteration where it happened), and smoothed_loss is
 * brought up to date there too. */
dl_status dl_solver_step(dl_solver *s, double *loss);
/* Runs the test net over test_iter batches; means of each output into `means`
 * (noutputs of the test net), printed to the log. */
dl_status dl_solver_test(dl_solver *s, double *means);

/* Internal to solvers/: the update of the flat weights from the flat
 * gradients (scaled by 1/iter_size, clipped, regularized) at rate `lr`. The
 * gradient buffer is left as the net wrote it. In GPU mode SGD runs as one
 * fused kernel over all parameters; the other types run on the host (the
 * buffers are copied there and back). Returns 0, stopping early, when a
 * gradient is NaN or infinite (the host update checks it in the same pass;
 * the GPU kernel flags it on the device and returns 1). */
int dl_solver_update(dl_solver *s, double lr);
/* Internal to solvers/: update during backward (solvers/solver_update.c).
 * _setup picks the parameters whose layers can hand their gradients to the
 * solver in backward (CPU, iter_size 1, no clipping, not shared, learned) and
 * installs the hook (s->bwu stays NULL when none qualifies or the mode is
 * off); _begin prepares one iteration's rates; _failed returns 1 + the net
 * index of a blob whose gradient was not finite (0: none). dl_solver_update skips those
 * parameters, and the net neither zeroes nor stores their diffs. */
dl_status dl_solver_backward_update_setup(dl_solver *s);
void dl_solver_backward_update_free(dl_solver *s);
void dl_solver_backward_update_begin(dl_solver *s, double lr);
int dl_solver_backward_update_failed(const dl_solver *s);
/* 1 when dl_solver_update runs on the GPU for this solver. */
int dl_solver_update_on_gpu(const dl_solver *s);

#ifdef DL_GPU
/* Internal to solvers/ (solvers/solver_gpu.cu), GPU mode only. */
dl_status dl_solver_gpu_create(dl_solver *s); /* device tables and flags */
void dl_solver_gpu_free(dl_solver *s);
void dl_solver_gpu_loss_begin(dl_solver *s);         /* the iteration's loss sum = 0 */
void dl_solver_gpu_loss_add(dl_solver *s);           /* += the train net's loss */
void dl_solver_gpu_loss_end(dl_solver *s, int slot); /* window[slot] = sum / iter_size */
/* The solver type's step over all learned parameters in one kernel (corr:
 * Adam's bias correction, 0 for the other types); non-finite gradients mark
 * the iteration as diverged. */
void dl_solver_gpu_update(dl_solver *s, float lr, float scale, float corr);
/* Waits for the GPU; *bad_iter = 1 + the first iteration whose loss or
 * gradient was not finite, 0 if none. */
dl_status dl_solver_gpu_diverged(dl_solver *s, int64_t *bad_iter);
#endif

/* Snapshot to <prefix>_iter_<N>.dlsnap (atomically), keeping the last K. */
dl_status dl_solver_snapshot(dl_solver *s);
dl_status dl_solver_restore(dl_solver *s, const char *path);
dl_status dl_solver_load_weights(dl_solver *s, const char *path, FILE *report);

/* Weights only (for fine-tuning or `dltrain test`), same file format. */
dl_status dl_net_export_weights(const dl_net *net, const char *path);
/* Loads parameters by name and shape; prints one line per parameter to
 * `report` (may be NULL): loaded / shape mismatch / not in file / not in net. */
dl_status dl_net_load_weights(dl_net *net, const char *path, FILE *report, int *loaded);

/* Signal handling for train: SIGINT/SIGTERM stop with a snapshot (a second
 * SIGINT exits at once), SIGHUP snapshots and continues. */
void dl_solver_install_signals(void);
extern volatile sig_atomic_t dl_stop_requested, dl_snapshot_requested;

#ifdef __cplusplus
}
#endif

#endif
