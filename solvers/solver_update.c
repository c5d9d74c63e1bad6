/* The update rules, after Caffe's sgd, nesterov, adagrad, rmsprop, adadelta and
 * adam solvers, plus AdamW's decoupled weight decay: one fused pass per
 * parameter blob over the flat weight, gradient and history buffers, with no
 * temporaries, so an update runs at memory bandwidth. docs/solvers.md has the
 * formulas. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/math.h"
#include "core/parallel.h"
#include "core/vmath.h"
#include "solvers/sgd_gemm.h"
#include "solvers/solver.h"
#include "solvers/update_rule.h"

#ifdef DL_GPU
#include "core/math_gpu.h"
#endif

/* What one blob's pass needs. Passed by value: the loops then read locals
 * that stores through `w` or the history cannot change, so nothing is
 * reloaded per element and the loops vectorize. */
typedef dl_upd upd;

/* h1 is the second history slot of the blob (NULL for one-slot types). */
typedef void (*upd_fn)(upd u, size_t n, float *restrict w, const float *restrict g,
                       float *restrict h0, float *restrict h1);

/* The rules (solvers/update_rule.h) over n values, compiled for AVX-512 and
 * AVX2 besides the baseline (DL_VCLONES; the same IEEE operations, so the
 * same bits). They are memory-bound, but with 4-wide SSE one core streamed an
 * SGD update at 33 GB/s against 65 with AVX-512 here (Zen 5): FCN-S's first
 * layer's backward, updating during backward, 40 -> 35 ms at 2 threads. */
#define ONE_SLOT_LOOP(name, rule)                                                                  \
  DL_VCLONES static void name(upd u, size_t n, float *restrict w, const float *restrict g,         \
                              float *restrict h0, float *restrict h1) {                            \
    (void)h1;                                                                                      \
    for (size_t i = 0; i < n; i++)                                                                 \
      rule(&u, &w[i], g[i], &h0[i], NULL);                                                         \
  }
#define TWO_SLOT_LOOP(name, rule)                                                                  \
  DL_VCLONES static void name(upd u, size_t n, float *restrict w, const float *restrict g,         \
                              float *restrict h0, float *restrict h1) {                            \
    for (size_t i = 0; i < n; i++)                                                                 \
      rule(&u, &w[i], g[i], &h0[i], &h1[i]);                                                       \
  }
ONE_SLOT_LOOP(sgd, dl_rule_sgd)
ONE_SLOT_LOOP(nesterov, dl_rule_nesterov)
ONE_SLOT_LOOP(adagrad, dl_rule_adagrad)
ONE_SLOT_LOOP(rmsprop, dl_rule_rmsprop)
TWO_SLOT_LOOP(adadelta, dl_rule_adadelta)
TWO_SLOT_LOOP(adam, dl_rule_adam)

static const struct {
  upd_fn fn;
  int slots;
} rules[] = {
    [DL_SOLVER_SGD] = {sgd, 1},           [DL_SOLVER_NESTEROV] = {nesterov, 1},
    [DL_SOLVER_ADAGRAD] = {adagrad, 1},   [DL_SOLVER_RMSPROP] = {rmsprop, 1},
    [DL_SOLVER_ADADELTA] = {adadelta, 2}, [DL_SOLVER_ADAM] = {adam, 2},
    [DL_SOLVER_ADAMW] = {adam, 2},
};
_Static_assert(sizeof rules / sizeof rules[0] == DL_SOLVER_COUNT,
               "one update rule per solver type");

int dl_solver_history_slots(int type) {
  DL_ASSERT(type >= 0 && type < DL_SOLVER_COUNT);
  return rules[type].slots;
}

/* 1 / iter_size, reduced further when the gradient's global L2 norm (after
 * averaging) exceeds clip_gradients. `sumsq` gives the squared norm. */
static float gradient_scale(dl_solver *s, const float *g, double (*sumsq)(size_t, const float *)) {
  const dl_solver_param *p = &s->param;
  float scale = 1.0f / (float)p->iter_size;
  if (p->clip_gradients <= 0) return scale;
  double norm = sqrt(sumsq(s->train->param_count, g)) * scale;
  if (norm <= p->clip_gradients) return scale;
  s->clipped++; /* counted, and shown on the next display line */
  s->clip_norm_max = norm > s->clip_norm_max ? norm : s->clip_norm_max;
  return scale * (float)(p->clip_gradients / norm);
}

/* Adam's bias correction sqrt(1 - b2^t) / (1 - b1^t), t = iter + 1, in
 * double and rounded to float as Caffe does. */
static float adam_correction(const dl_solver_param *p, int64_t iter) {
  double t = (double)(iter + 1);
  return (float)(sqrt(1 - pow((double)p->momentum2, t)) / (1 - pow((double)p->momentum, t)));
}

/* One blob's pass, cut between the threads: the rules are elementwise, so
 * any split gives the same bits. */
typedef struct {
  upd u;
  upd_fn fn;
  float *w, *h0, *h1;
  const float *g;
  size_t n;
  atomic_int bad; /* a non-finite gradient was seen */
} blob_job;

/* Checks each 16 KiB chunk of the gradient for NaN/inf while it is in cache,
 * then updates it: one pass over memory instead of two. A bad chunk stops
 * the part; the caller reports divergence (the weights no longer matter). */
static void update_range(void *arg, int lo, int hi) {
  blob_job *j = arg;
  for (size_t a = (size_t)lo * 4096; a < (size_t)hi * 4096 && a < j->n; a += 4096) {
    size_t m = j->n - a < 4096 ? j->n - a : 4096;
    if (!dl_all_finite(m, j->g + a)) {
      atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
      return;
    }
    j->fn(j->u, m, j->w + a, j->g + a, j->h0 + a, j->h1 ? j->h1 + a : NULL);
  }
}

/* Returns 0 when a gradient value was not finite (parts of the blob may then
 * be updated, others not: training stops, the last snapshot is what counts). */
static int update_blob(upd u, upd_fn fn, size_t n, float *w, const float *g, float *h0,
                       float *h1) {
  blob_job j = {u, fn, w, h0, h1, g, n, 0};
  int chunks = (int)((n + 4095) / 4096);
  dl_parallel_for(chunks, 16, update_range, &j);
  return !atomic_load(&j.bad);
}

int dl_solver_update_on_gpu(const dl_solver *s) { return s->gpu != NULL; }

/* Blob j's constants for this iteration (scale: 1 / iter_size and clipping). */
static upd blob_upd(const dl_solver *s, double lr, int j, float scale) {
  const dl_solver_param *p = &s->param;
  const dl_net *net = s->train;
  int type = p->type, decoupled = type == DL_SOLVER_ADAMW;
  float corr = type == DL_SOLVER_ADAM || decoupled ? adam_correction(p, s->iter) : 0;
  float decay = p->weight_decay * net->decay_mult[j];
  upd u = {.scale = scale,
           .rate = (float)lr * net->lr_mult[j],
           .mom = p->momentum,
           .mom2 = p->momentum2,
           .delta = p->delta,
           .rms_decay = p->rms_decay};
  u.l2 = !decoupled && p->regularization == DL_REG_L2 ? decay : 0;
  u.l1 = !decoupled && p->regularization == DL_REG_L1 ? decay : 0;
  u.wd = decoupled ? u.rate * decay : 0;
  u.adam_rate = u.rate * corr;
  return u;
}

int dl_solver_update(dl_solver *s, double lr) {
  dl_net *net = s->train;
#ifdef DL_GPU
  /* The gradients stay on the device; clipping reads back one number. */
  if (dl_solver_update_on_gpu(s)) {
    const float *gd = dl_mem_device(net->flat_diff);
    int adam = s->param.type == DL_SOLVER_ADAM || s->param.type == DL_SOLVER_ADAMW;
    float corr = adam ? adam_correction(&s->param, s->iter) : 0;
    if (gd) dl_solver_gpu_update(s, (float)lr, gradient_scale(s, gd, dl_gpu_sumsq), corr);
    return 1; /* non-finite values are flagged on the device */
  }
#endif
  float *w = dl_mem_host_mut(net->flat_data), *h = dl_mem_host_mut(s->history);
  const float *g = dl_mem_host(net->flat_diff);
  int type = s->param.type;
  float scale = gradient_scale(s, g, dl_sumsq);
  size_t total = net->param_count;
  for (int j = 0; j < net->nparams; j++) {
    size_t off = net->param_offset[j], n = net->params[j]->count;
    /* lr_mult 0 freezes a blob: no step, no decay, no history change (this
     * keeps BatchNorm's running statistics out of the update). Blobs updated
     * during backward are done already. */
    if (net->lr_mult[j] == 0 || (net->in_backward && net->in_backward[j])) continue;
    float *h1 = rules[type].slots > 1 ? h + total + off : NULL;
    if (!update_blob(blob_upd(s, lr, j, scale), rules[type].fn, n, w + off, g + off, h + off, h1))
      return 0;
  }
  return 1;
}

/* ---- update during backward --------------------------------------------- */

typedef struct {
  upd u;
  float *w, *h0, *h1; /* the blob's weights and history */
} bwu_blob;

struct dl_backward_update {
  dl_update_hook hook;
  upd_fn fn;
  bwu_blob *blob;     /* per net parameter; used where net->in_backward is set */
  dl_sgd_target *sgd; /* the same for layers applying SGD themselves; NULL for other rules */
  atomic_int bad;     /* 1 + the blob whose gradient was not finite; 0: none */
};

/* Asks for `rows` runs of `cols` values from p on, `stride` apart, into L1:
 * the runs of a tile (4 KiB each on FCN-S) are too short for the hardware
 * prefetchers to find. */
static void prefetch_runs(const float *p, int rows, int cols, size_t stride) {
  for (int r = 0; r < rows; r++, p += stride)
    for (int i = 0; i < cols; i += 16)
      __builtin_prefetch(p + i, 1, 3);
}

static void prefetch_blob_runs(const bwu_blob *q, size_t off, int rows, int cols, size_t stride) {
  prefetch_runs(q->w + off, rows, cols, stride);
  prefetch_runs(q->h0 + off, rows, cols, stride);
  if (q->h1) prefetch_runs(q->h1 + off, rows, cols, stride);
}

/* The hook: a tile of blob j (see dl_update_hook). Called from pool threads
 * on disjoint tiles; each run is asked for two runs ahead. Each run is
 * checked for NaN/inf just before its update, so the update reads it from
 * L1: FCN-R hands over whole 33 MB gradients, which a check of the whole
 * tile first read from memory twice (1 thread: 359 -> 356 ms). A bad run
 * stops the tile there; training stops, as in update_range. */
static int apply_in_backward(void *ctx, int j, size_t off, int rows, int cols, size_t stride,
                             const float *g) {
  struct dl_backward_update *b = ctx;
  const bwu_blob *q = &b->blob[j];
  enum { ahead = 2 }; /* runs asked for ahead: 1 and 3 measured slower on FCN-S */
  int short_runs = cols < 4096 && stride != (size_t)cols; /* long runs: the hardware finds them */
  for (int r = 0; r < rows; r++, off += stride, g += cols) {
    for (int a = r == 0 ? 1 : ahead; short_runs && a <= ahead && r + a < rows; a++)
      prefetch_blob_runs(q, off + a * stride, 1, cols, stride);
    if (!dl_all_finite((size_t)cols, g)) {
      atomic_store_explicit(&b->bad, j + 1, memory_order_relaxed);
      return 0;
    }
    b->fn(q->u, (size_t)cols, q->w + off, g, q->h0 + off, q->h1 ? q->h1 + off : NULL);
  }
  return 1;
}

static const dl_sgd_target *sgd_target(void *ctx, int j) {
  const struct dl_backward_update *b = ctx;
  return b->sgd ? &b->sgd[j] : NULL;
}

/* Whether the net's blob j may be updated during backward by layer l's
 * param k: learned, and no other layer uses it (a shared blob's gradient is
 * final only after every user's backward). */
static int may_update_in_backward(const dl_net *net, const dl_layer *l, int k, int j) {
  if (!(l->ops->backward_updates & (1u << k)) || net->lr_mult[j] == 0) return 0;
  int users = 0;
  for (int i = 0; i < net->nsteps; i++) {
    const dl_layer *o = net->steps[i].layer;
    for (int m = 0; m < o->nparams; m++)
      users += o->params[m]->data == net->params[j]->data;
  }
  return users == 1;
}

static int net_param_index(const dl_net *net, const dl_blob *b) {
  for (int j = 0; j < net->nparams; j++)
    if (net->params[j] == b) return j;
  return -1;
}

dl_status dl_solver_backward_update_setup(dl_solver *s) {
  const dl_solver_param *p = &s->param;
  dl_net *net = s->train;
  if (p->update_during_backward == DL_BWU_OFF || s->ctx.gpu || p->iter_size > 1 ||
      p->clip_gradients > 0 || !net->nparams)
    return DL_OK;
  struct dl_backward_update *b = calloc(1, sizeof *b);
  unsigned char *on = calloc((size_t)net->nparams, 1);
  if (b) b->blob = calloc((size_t)net->nparams, sizeof *b->blob);
  if (b) b->hook.scratch = dl_malloc((size_t)dl_parallel_threads() * DL_UPDATE_TILE * sizeof(float));
  if (b && p->type == DL_SOLVER_SGD) b->sgd = calloc((size_t)net->nparams, sizeof *b->sgd);
  if (!b || !on || !b->blob || !b->hook.scratch || (p->type == DL_SOLVER_SGD && !b->sgd)) {
    if (b) free(b->blob), free(b->hook.scratch), free(b->sgd);
    free(b), free(on);
    return dl_error(DL_ENOMEM, "out of memory");
  }
  b->hook.apply = apply_in_backward;
  b->hook.sgd_target = sgd_target;
  b->hook.ctx = b;
  b->fn = rules[p->type].fn;
  int any = 0;
  for (int i = 0; i < net->nsteps; i++) {
    dl_layer *l = net->steps[i].layer;
    for (int k = 0; k < l->nparams; k++) {
      int j = net_param_index(net, l->params[k]);
      if (j < 0 || !net->steps[i].need_backward || !may_update_in_backward(net, l, k, j)) continue;
      l->update_hook = &b->hook;
      l->update_param[k] = j + 1;
      on[j] = 1;
      any = 1;
    }
  }
  if (!any) {
    free(b->blob), free(b->hook.scratch), free(b->sgd), free(b), free(on);
    return DL_OK;
  }
  net->in_backward = on;
  s->bwu = b;
  return DL_OK;
}

void dl_solver_backward_update_free(dl_solver *s) {
  if (!s->bwu) return;
  free(s->bwu->blob);
  free(s->bwu->sgd);
  free(s->bwu->hook.scratch);
  free(s->bwu);
  s->bwu = NULL;
}

void dl_solver_backward_update_begin(dl_solver *s, double lr) {
  struct dl_backward_update *b = s->bwu;
  dl_net *net = s->train;
  float *w = dl_mem_host_mut(net->flat_data), *h = dl_mem_host_mut(s->history);
  size_t total = net->param_count;
  int two = rules[s->param.type].slots > 1;
  for (int j = 0; j < net->nparams; j++) {
    if (!net->in_backward[j]) continue;
    size_t off = net->param_offset[j];
    b->blob[j] = (bwu_blob){blob_upd(s, lr, j, 1.0f), w + off, h + off, two ? h + total + off : NULL};
    if (b->sgd) b->sgd[j] = (dl_sgd_target){b->blob[j].u, w + off, h + off, &b->bad, j + 1};
  }
  atomic_store(&b->bad, 0);
}

int dl_solver_backward_update_failed(const dl_solver *s) {
  return s->bwu ? atomic_load(&s->bwu->bad) : 0;
}
