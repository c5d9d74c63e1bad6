/* The solver types' update of one parameter value, shared by the CPU loops
 * (solvers/solver_update.c) and the GPU kernel (solvers/solver_gpu.cu), so
 * that both do the same arithmetic in the same order (nvcc may still fuse a
 * multiply and an add: the GPU results agree to rounding, not bit for bit).
 *
 * w is the weight, g its gradient (summed over iter_size), h0 and h1 the
 * history slots of the type (h1 unused by the one-slot types). */
#ifndef DL_SOLVERS_UPDATE_RULE_H
#define DL_SOLVERS_UPDATE_RULE_H

#include <math.h>

#ifdef __CUDACC__
#define DL_RULE static __host__ __device__ __forceinline__
#else
/* Inlined into each target clone of the CPU loops (GCC does not inline
 * across targets unless told to). */
#define DL_RULE __attribute__((always_inline)) static inline
#endif

/* One blob's constants for one iteration. */
typedef struct {
  float scale;  /* 1 / iter_size, times the clipping factor */
  float rate;   /* lr * lr_mult */
  float l2, l1; /* weight_decay * decay_mult added to the gradient; one is 0 */
  float wd;     /* adamw: rate * weight_decay * decay_mult, taken off w directly */
  float mom, mom2, delta, rms_decay;
  float adam_rate; /* adam, adamw: rate * bias correction (float, as Caffe) */
} dl_upd;

/* The regularized gradient. L2 and L1 as two coefficients, one of them 0,
 * keep the loops free of branches (and vectorizable). */
DL_RULE float dl_reg_grad(const dl_upd *u, float g, float w) {
  return g * u->scale + u->l2 * w + u->l1 * (float)((w > 0) - (w < 0));
}

/* v = mom v + rate g;  w -= v */
DL_RULE void dl_rule_sgd(const dl_upd *u, float *w, float g, float *v, float *unused) {
  (void)unused;
  *v = u->mom * *v + u->rate * dl_reg_grad(u, g, *w);
  *w -= *v;
}

/* v' = mom v + rate g;  w -= (1 + mom) v' - mom v  (Caffe's "step back, then
 * over-step" form of Nesterov's lookahead) */
DL_RULE void dl_rule_nesterov(const dl_upd *u, float *w, float g, float *v, float *unused) {
  (void)unused;
  float old = *v;
  *v = u->mom * *v + u->rate * dl_reg_grad(u, g, *w);
  *w -= (1 + u->mom) * *v - u->mom * old;
}

/* h += g^2;  w -= rate g / (sqrt(h) + delta) */
DL_RULE void dl_rule_adagrad(const dl_upd *u, float *w, float g, float *h, float *unused) {
  (void)unused;
  float gi = dl_reg_grad(u, g, *w);
  *h += gi * gi;
  *w -= u->rate * (gi / (sqrtf(*h) + u->delta));
}

/* h = rms_decay h + (1 - rms_decay) g^2;  w -= rate g / (sqrt(h) + delta) */
DL_RULE void dl_rule_rmsprop(const dl_upd *u, float *w, float g, float *h, float *unused) {
  (void)unused;
  float gi = dl_reg_grad(u, g, *w);
  *h = u->rms_decay * *h + (1 - u->rms_decay) * (gi * gi);
  *w -= u->rate * (gi / (sqrtf(*h) + u->delta));
}

/* Zeiler's AdaDelta with Caffe's placement of delta and base_lr kept as a
 * multiplier: hg = mom hg + (1 - mom) g^2;
 * d = g sqrt((hd + delta) / (hg + delta));  hd = mom hd + (1 - mom) d^2;
 * w -= rate d */
DL_RULE void dl_rule_adadelta(const dl_upd *u, float *w, float g, float *hg, float *hd) {
  float gi = dl_reg_grad(u, g, *w);
  *hg = u->mom * *hg + (1 - u->mom) * (gi * gi);
  float d = gi * sqrtf((*hd + u->delta) / (*hg + u->delta));
  *hd = u->mom * *hd + (1 - u->mom) * (d * d);
  *w -= u->rate * d;
}

/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 * w -= rate sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + delta), t = iter + 1.
 * For adamw the gradient carries no decay (l2 = l1 = 0) and wd takes
 * rate * weight_decay * w off the weights instead. */
DL_RULE void dl_rule_adam(const dl_upd *u, float *w, float g, float *m, float *v) {
  float gi = dl_reg_grad(u, g, *w);
  *m = u->mom * *m + (1 - u->mom) * gi;
  *v = u->mom2 * *v + (1 - u->mom2) * (gi * gi);
  *w -= u->wd * *w + u->adam_rate * (*m / (sqrtf(*v) + u->delta));
}

#endif
