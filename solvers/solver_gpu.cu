// The solver's GPU mode (solvers/solver.h): the fused SGD update over the
// flat buffers, and the loss and divergence bookkeeping kept on the device so
// that an iteration never waits for the GPU unless its loss is displayed.
#include <math.h>
#include <stdlib.h>

#include "core/gpu.h"
#include "core/math_gpu.h"
#include "solvers/solver.h"

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
  float lr, scale, weight_decay, mom;
  int l1;
  unsigned long long iter1; // the iteration + 1, for the divergence flag
} sgd_args;

// v = mom v + rate (g scale + l2 w + l1 sign(w));  w -= v, per element, with
// rate = lr lr_mult and the decay weight_decay decay_mult of the chunk's blob
// (the host code's arithmetic, in the same order).
__global__ static void sgd_kernel(const chunk *chunks, int nchunks, const float *mults, sgd_args a,
                                  float *w, const float *g, float *v, unsigned long long *bad) {
  for (int c = blockIdx.x; c < nchunks; c += gridDim.x) {
    chunk ch = chunks[c];
    float rate = a.lr * mults[2 * ch.blob], decay = a.weight_decay * mults[2 * ch.blob + 1];
    float l2 = a.l1 ? 0.0f : decay, l1 = a.l1 ? decay : 0.0f;
    for (int i = threadIdx.x; i < ch.n; i += blockDim.x) {
      size_t k = ch.start + (size_t)i;
      float wk = w[k], gk = g[k];
      if (!isfinite(gk) && *(volatile unsigned long long *)bad == 0) atomicCAS(bad, 0ull, a.iter1);
      float r = gk * a.scale + l2 * wk + l1 * (float)((wk > 0) - (wk < 0));
      float vk = a.mom * v[k] + rate * r;
      v[k] = vk;
      w[k] = wk - vk;
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

extern "C" void dl_solver_gpu_sgd(dl_solver *s, float lr, float scale) {
  dl_solver_gpu *d = s->gpu;
  dl_net *net = s->train;
  if (!d->nchunks) return;
  float *w = dl_mem_device_mut(net->flat_data), *v = dl_mem_device_mut(s->history);
  const float *g = dl_mem_device(net->flat_diff);
  if (!w || !v || !g) return;
  const dl_solver_param *p = &s->param;
  sgd_args a = {lr,
                scale,
                p->weight_decay,
                p->momentum,
                p->regularization == DL_REG_L1,
                (unsigned long long)s->iter + 1};
  int blocks = d->nchunks < DL_GPU_MAX_BLOCKS ? d->nchunks : DL_GPU_MAX_BLOCKS;
  sgd_kernel<<<blocks, DL_GPU_THREADS, 0, dl_gpu_stream()>>>(d->chunks, d->nchunks, d->mults, a, w,
                                                             g, v, d->bad);
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
