// The solver's GPU mode (solvers/solver.h): the fused update of each solver type over the
// flat buffers, and the loss and divergence bookkeeping kept on the device so
// that an iteration never waits for the GPU unless its loss is displayed.
#include <math.h>
#include <stdlib.h>

#include "core/gpu.h"
#include "core/math_gpu.h"
#include "solvers/solver.h"
#include "solvers/update_rule.h"

// A run of at most CHUNK floats of one learned parameter blob: the fused
// kernel's unit of work (a block takes whole chunks, so each knows its blob's
// multipliers without a search).
#define CHUNK 4096
typedef struct {
  size_t start; // offset in the flat buffers (weights, gradients, history slot 0)
  int n;        // floats, 1..CHUNK
  int blob;     // index into the multipliers
} chunk;

struct dl_solver_gpu {
  int nchunks;
  chunk *chunks;           // device (nchunks)
  float *mults;            // device (2 * nparams): lr_mult, decay_mult
  float *loss;             // device (1): the iteration's loss, summed over iter_size
  unsigned long long *bad; // device (1): 1 + first iteration not finite, 0 if none
};

typedef struct {
  float lr, scale, weight_decay, mom, mom2, delta, rms_decay;
  float corr;    // adam, adamw: the bias correction sqrt(1 - b2^t) / (1 - b1^t)
  int l1;        // L1 regularization (else L2)
  int decoupled; // adamw: the decay comes off the weights, not through the gradient
  size_t total;  // floats per history slot: slot 1 starts there
  unsigned long long iter1; // the iteration + 1, for the divergence flag
} update_args;

template <int TYPE> __device__ static void apply_rule(const dl_upd *u, float *w, float g, float *h0,
                                                     float *h1) {
  switch (TYPE) {
  case DL_SOLVER_SGD: dl_rule_sgd(u, w, g, h0, h1); break;
  case DL_SOLVER_NESTEROV: dl_rule_nesterov(u, w, g, h0, h1); break;
  case DL_SOLVER_ADAGRAD: dl_rule_adagrad(u, w, g, h0, h1); break;
  case DL_SOLVER_RMSPROP: dl_rule_rmsprop(u, w, g, h0, h1); break;
  case DL_SOLVER_ADADELTA: dl_rule_adadelta(u, w, g, h0, h1); break;
  default: dl_rule_adam(u, w, g, h0, h1); break; // adam, adamw
  }
}

// The solver type's rule (solvers/update_rule.h, the host code's arithmetic in
// the same order) on every learned value, with rate = lr lr_mult and the decay
// weight_decay decay_mult of the chunk's blob (as blob_upd in
// solvers/solver_update.c). Non-finite gradients flag the iteration.
template <int TYPE>
__global__ static void update_kernel(const chunk *chunks, int nchunks, const float *mults,
                                     update_args a, float *w, const float *g, float *h,
                                     unsigned long long *bad) {
  const int two_slots = TYPE == DL_SOLVER_ADADELTA || TYPE == DL_SOLVER_ADAM ||
                        TYPE == DL_SOLVER_ADAMW;
  for (int c = blockIdx.x; c < nchunks; c += gridDim.x) {
    chunk ch = chunks[c];
    float rate = a.lr * mults[2 * ch.blob], decay = a.weight_decay * mults[2 * ch.blob + 1];
    dl_upd u;
    u.scale = a.scale;
    u.rate = rate;
    u.l2 = !a.decoupled && !a.l1 ? decay : 0.0f;
    u.l1 = !a.decoupled && a.l1 ? decay : 0.0f;
    u.wd = a.decoupled ? rate * decay : 0.0f;
    u.mom = a.mom, u.mom2 = a.mom2, u.delta = a.delta, u.rms_decay = a.rms_decay;
    u.adam_rate = rate * a.corr;
    for (int i = threadIdx.x; i < ch.n; i += blockDim.x) {
      size_t k = ch.start + (size_t)i;
      float gk = g[k];
      if (!isfinite(gk) && *(volatile unsigned long long *)bad == 0) atomicCAS(bad, 0ull, a.iter1);
      apply_rule<TYPE>(&u, &w[k], gk, &h[k], two_slots ? &h[a.total + k] : NULL);
    }
  }
}

__global__ static void loss_end_kernel(const float *sum, double inv_iter_size, float *window,
                                       int slot, unsigned long long *bad,
                                       unsigned long long iter1) {
  float l = (float)(sum[0] * inv_iter_size);
  window[slot] = l;
  if (!isfinite(l)) atomicCAS(bad, 0ull, iter1);
}

extern "C" void dl_solver_gpu_free(dl_solver *s) {
  dl_solver_gpu *d = s->gpu;
  if (!d) return;
  cudaFree(d->chunks);
  cudaFree(d->mults);
  cudaFree(d->loss);
  cudaFree(d->bad);
  cudaGetLastError();
  free(d);
  s->gpu = NULL;
}

extern "C" dl_status dl_solver_gpu_create(dl_solver *s) {
  const dl_net *net = s->train;
  dl_solver_gpu *d = (dl_solver_gpu *)calloc(1, sizeof *d);
  if (!d) return dl_error(DL_ENOMEM, "out of memory");
  s->gpu = d;
  // Frozen blobs (lr_mult 0) get no chunk: no step, no decay, no history.
  size_t n = 0;
  for (int j = 0; j < net->nparams; j++)
    if (net->lr_mult[j] != 0) n += (net->params[j]->count + CHUNK - 1) / CHUNK;
  chunk *hc = (chunk *)malloc((n ? n : 1) * sizeof *hc);
  float *hm = (float *)malloc(2 * (size_t)(net->nparams + 1) * sizeof *hm);
  dl_status st = hc && hm ? DL_OK : dl_error(DL_ENOMEM, "out of memory");
  for (int j = 0; !st && j < net->nparams; j++) {
    hm[2 * j] = net->lr_mult[j];
    hm[2 * j + 1] = net->decay_mult[j];
    if (net->lr_mult[j] == 0) continue;
    for (size_t o = 0; o < net->params[j]->count; o += CHUNK) {
      size_t left = net->params[j]->count - o;
      chunk c = {net->param_offset[j] + o, (int)(left < CHUNK ? left : CHUNK), j};
      hc[d->nchunks++] = c;
    }
  }
  cudaStream_t stream = dl_gpu_stream();
  if (!st) st = CHECK_CUDA(cudaMalloc(&d->chunks, (n ? n : 1) * sizeof(chunk)));
  if (!st) st = CHECK_CUDA(cudaMalloc(&d->mults, 2 * (size_t)(net->nparams + 1) * sizeof(float)));
  if (!st) st = CHECK_CUDA(cudaMalloc(&d->loss, sizeof(float)));
  if (!st) st = CHECK_CUDA(cudaMalloc(&d->bad, sizeof(unsigned long long)));
  if (!st && n)
    st = CHECK_CUDA(
        cudaMemcpyAsync(d->chunks, hc, n * sizeof(chunk), cudaMemcpyHostToDevice, stream));
  if (!st && net->nparams)
    st = CHECK_CUDA(cudaMemcpyAsync(d->mults, hm, 2 * (size_t)net->nparams * sizeof(float),
                                    cudaMemcpyHostToDevice, stream));
  if (!st) st = CHECK_CUDA(cudaMemsetAsync(d->loss, 0, sizeof(float), stream));
  if (!st) st = CHECK_CUDA(cudaMemsetAsync(d->bad, 0, sizeof(unsigned long long), stream));
  // The host tables are pageable: the copies have staged them once this returns.
  if (!st) st = CHECK_CUDA(cudaStreamSynchronize(stream));
  free(hc);
  free(hm);
  if (!st) st = dl_mem_reserve_device(s->history);
  if (!st) st = dl_mem_reserve_device(s->loss_window);
  return st;
}

extern "C" void dl_solver_gpu_loss_begin(dl_solver *s) { dl_gpu_set(1, 0, s->gpu->loss); }

extern "C" void dl_solver_gpu_loss_add(dl_solver *s) {
  const float *net_loss = dl_mem_device(s->train->loss);
  if (net_loss) dl_gpu_axpy(1, 1.0f, net_loss, s->gpu->loss);
}

extern "C" void dl_solver_gpu_loss_end(dl_solver *s, int slot) {
  float *window = dl_mem_device_mut(s->loss_window);
  if (!window) return;
  loss_end_kernel<<<1, 1, 0, dl_gpu_stream()>>>(s->gpu->loss, 1.0 / s->param.iter_size, window,
                                                slot, s->gpu->bad, (unsigned long long)s->iter + 1);
  CHECK_LAUNCH();
}

template <int TYPE>
static void launch_update(const dl_solver_gpu *d, const update_args &a, float *w, const float *g,
                          float *h) {
  int blocks = d->nchunks < DL_GPU_MAX_BLOCKS ? d->nchunks : DL_GPU_MAX_BLOCKS;
  update_kernel<TYPE><<<blocks, DL_GPU_THREADS, 0, dl_gpu_stream()>>>(d->chunks, d->nchunks,
                                                                      d->mults, a, w, g, h, d->bad);
}

extern "C" void dl_solver_gpu_update(dl_solver *s, float lr, float scale, float corr) {
  dl_solver_gpu *d = s->gpu;
  dl_net *net = s->train;
  if (!d->nchunks) return;
  float *w = dl_mem_device_mut(net->flat_data), *h = dl_mem_device_mut(s->history);
  const float *g = dl_mem_device(net->flat_diff);
  if (!w || !h || !g) return;
  const dl_solver_param *p = &s->param;
  update_args a = {lr,
                   scale,
                   p->weight_decay,
                   p->momentum,
                   p->momentum2,
                   p->delta,
                   p->rms_decay,
                   corr,
                   p->regularization == DL_REG_L1,
                   p->type == DL_SOLVER_ADAMW,
                   net->param_count,
                   (unsigned long long)s->iter + 1};
  switch (p->type) {
  case DL_SOLVER_SGD: launch_update<DL_SOLVER_SGD>(d, a, w, g, h); break;
  case DL_SOLVER_NESTEROV: launch_update<DL_SOLVER_NESTEROV>(d, a, w, g, h); break;
  case DL_SOLVER_ADAGRAD: launch_update<DL_SOLVER_ADAGRAD>(d, a, w, g, h); break;
  case DL_SOLVER_RMSPROP: launch_update<DL_SOLVER_RMSPROP>(d, a, w, g, h); break;
  case DL_SOLVER_ADADELTA: launch_update<DL_SOLVER_ADADELTA>(d, a, w, g, h); break;
  case DL_SOLVER_ADAM: launch_update<DL_SOLVER_ADAM>(d, a, w, g, h); break;
  default: launch_update<DL_SOLVER_ADAMW>(d, a, w, g, h); break;
  }
  CHECK_LAUNCH();
}

extern "C" dl_status dl_solver_gpu_diverged(dl_solver *s, int64_t *bad_iter) {
  unsigned long long h = 0;
  dl_status st = CHECK_CUDA(
      cudaMemcpyAsync(&h, s->gpu->bad, sizeof h, cudaMemcpyDeviceToHost, dl_gpu_stream()));
  if (!st) st = CHECK_CUDA(cudaStreamSynchronize(dl_gpu_stream()));
  *bad_iter = st ? 0 : (int64_t)h;
  return st;
}
