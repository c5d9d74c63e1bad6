/* The update rules, after Caffe's sgd, nesterov, adagrad, rmsprop, adadelta and
 * adam solvers, plus AdamW's decoupled weight decay: one fused pass per
 * parameter blob over the flat weight, gradient and history buffers, with no
 * temporaries, so an update runs at memory bandwidth. docs/solvers.md has the
 * formulas. */
#include <math.h>
#include <stdatomic.h>

#include "core/math.h"
#include "core/parallel.h"
#include "solvers/solver.h"

#ifdef DL_GPU
#include "core/math_gpu.h"
#endif

/* What one blob's pass needs. Passed by value: the loops then read locals
 * that stores through `w` or the history cannot change, so nothing is
 * reloaded per element and the loops vectorize. */
typedef struct {
  float scale;  /* 1 / iter_size, times the clipping factor */
  float rate;   /* lr * lr_mult */
  float l2, l1; /* weight_decay * decay_mult added to the gradient; one is 0 */
  float wd;     /* adamw: rate * weight_decay * decay_mult, taken off w directly */
  float mom, mom2, delta, rms_decay;
  float adam_rate; /* adam, adamw: rate * bias correction (float, as Caffe) */
} upd;

/* h1 is the second history slot of the blob (NULL for one-slot types). */
typedef void (*upd_fn)(upd u, size_t n, float *restrict w, const float *restrict g,
                       float *restrict h0, float *restrict h1);

/* The regularized gradient. L2 and L1 as two coefficients, one of them 0,
 * keep the loops free of branches (and vectorizable). */
static inline float reg_grad(const upd *u, float g, float w) {
  return g * u->scale + u->l2 * w + u->l1 * (float)((w > 0) - (w < 0));
}

/* v = mom v + rate g;  w -= v */
static void sgd(upd u, size_t n, float *restrict w, const float *restrict g, float *restrict v,
                float *restrict unused) {
  (void)unused;
  for (size_t i = 0; i < n; i++) {
    v[i] = u.mom * v[i] + u.rate * reg_grad(&u, g[i], w[i]);
    w[i] -= v[i];
  }
}

/* v' = mom v + rate g;  w -= (1 + mom) v' - mom v  (Caffe's "step back, then
 * over-step" form of Nesterov's lookahead) */
static void nesterov(upd u, size_t n, float *restrict w, const float *restrict g, float *restrict v,
                     float *restrict unused) {
  (void)unused;
  for (size_t i = 0; i < n; i++) {
    float old = v[i];
    v[i] = u.mom * v[i] + u.rate * reg_grad(&u, g[i], w[i]);
    w[i] -= (1 + u.mom) * v[i] - u.mom * old;
  }
}

/* h += g^2;  w -= rate g / (sqrt(h) + delta) */
static void adagrad(upd u, size_t n, float *restrict w, const float *restrict g, float *restrict h,
                    float *restrict unused) {
  (void)unused;
  for (size_t i = 0; i < n; i++) {
    float gi = reg_grad(&u, g[i], w[i]);
    h[i] += gi * gi;
    w[i] -= u.rate * (gi / (sqrtf(h[i]) + u.delta));
  }
}

/* h = rms_decay h + (1 - rms_decay) g^2;  w -= rate g / (sqrt(h) + delta) */
static void rmsprop(upd u, size_t n, float *restrict w, const float *restrict g, float *restrict h,
                    float *restrict unused) {
  (void)unused;
  for (size_t i = 0; i < n; i++) {
    float gi = reg_grad(&u, g[i], w[i]);
    h[i] = u.rms_decay * h[i] + (1 - u.rms_decay) * (gi * gi);
    w[i] -= u.rate * (gi / (sqrtf(h[i]) + u.delta));
  }
}

/* Zeiler's AdaDelta with Caffe's placement of delta and base_lr kept as a
 * multiplier: hg = mom hg + (1 - mom) g^2;
 * d = g sqrt((hd + delta) / (hg + delta));  hd = mom hd + (1 - mom) d^2;
 * w -= rate d */
static void adadelta(upd u, size_t n, float *restrict w, const float *restrict g,
                     float *restrict hg, float *restrict hd) {
  for (size_t i = 0; i < n; i++) {
    float gi = reg_grad(&u, g[i], w[i]);
    hg[i] = u.mom * hg[i] + (1 - u.mom) * (gi * gi);
    float d = gi * sqrtf((hd[i] + u.delta) / (hg[i] + u.delta));
    hd[i] = u.mom * hd[i] + (1 - u.mom) * (d * d);
    w[i] -= u.rate * d;
  }
}

/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 * w -= rate sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + delta), t = iter + 1.
 * For adamw the gradient carries no decay (l2 = l1 = 0) and wd takes
 * rate * weight_decay * w off the weights instead. */
static void adam(upd u, size_t n, float *restrict w, const float *restrict g, float *restrict m,
                 float *restrict v) {
  for (size_t i = 0; i < n; i++) {
    float gi = reg_grad(&u, g[i], w[i]);
    m[i] = u.mom * m[i] + (1 - u.mom) * gi;
    v[i] = u.mom2 * v[i] + (1 - u.mom2) * (gi * gi);
    w[i] -= u.wd * w[i] + u.adam_rate * (m[i] / (sqrtf(v[i]) + u.delta));
  }
}

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

int dl_solver_update_on_gpu(const dl_solver *s) {
  return s->gpu && s->param.type == DL_SOLVER_SGD;
}

int dl_solver_update(dl_solver *s, double lr) {
  dl_net *net = s->train;
  const dl_solver_param *p = &s->param;
#ifdef DL_GPU
  /* The gradients stay on the device; clipping reads back one number. */
  if (dl_solver_update_on_gpu(s)) {
    const float *gd = dl_mem_device(net->flat_diff);
    if (gd) dl_solver_gpu_sgd(s, (float)lr, gradient_scale(s, gd, dl_gpu_sumsq));
    return 1; /* non-finite values are flagged on the device */
  }
#endif
  float *w = dl_mem_host_mut(net->flat_data), *h = dl_mem_host_mut(s->history);
  const float *g = dl_mem_host(net->flat_diff);
  int type = p->type, decoupled = type == DL_SOLVER_ADAMW;
  float corr = type == DL_SOLVER_ADAM || decoupled ? adam_correction(p, s->iter) : 0;
  upd u = {.scale = gradient_scale(s, g, dl_sumsq),
           .mom = p->momentum,
           .mom2 = p->momentum2,
           .delta = p->delta,
           .rms_decay = p->rms_decay};
  size_t total = net->param_count;
  for (int j = 0; j < net->nparams; j++) {
    size_t off = net->param_offset[j], n = net->params[j]->count;
    /* lr_mult 0 freezes a blob: no step, no decay, no history change (this
     * keeps BatchNorm's running statistics out of the update). */
    if (net->lr_mult[j] == 0) continue;
    float decay = p->weight_decay * net->decay_mult[j];
    u.rate = (float)lr * net->lr_mult[j];
    u.l2 = !decoupled && p->regularization == DL_REG_L2 ? decay : 0;
    u.l1 = !decoupled && p->regularization == DL_REG_L1 ? decay : 0;
    u.wd = decoupled ? u.rate * decay : 0;
    u.adam_rate = u.rate * corr;
    float *h1 = rules[type].slots > 1 ? h + total + off : NULL;
    if (!update_blob(u, rules[type].fn, n, w + off, g + off, h + off, h1)) return 0;
  }
  return 1;
}
