// Convolution's GPU twin on cuDNN (layers/conv.c has the CPU reference and the
// Caffe semantics). Descriptors and algorithms are made on the first call for
// a set of shapes and kept until the shapes change: each of the three
// algorithms (forward, backward data, backward filter) is the fastest that
// cudnnFind*Algorithm measures on this GPU among those whose workspace fits
// WORKSPACE_LIMIT (and deterministic under `deterministic: true`). fp32 math
// unless `precision: tf32` (CUDNN_FMA_MATH: no TF32 tensor cores, as cuBLAS). One workspace serves
// every convolution of the process: layers run one at a time on the one stream.
//
// Caffe's padding is symmetric (pad on both sides, the output size rounded
// down), which is what cuDNN computes. Weight and bias gradients are added
// to the diffs (beta 1), as on the CPU; the input gradient is overwritten.
#include <stdlib.h>
#include <string.h>

#include "core/gpu.h"
#include "layers/conv.h"

#define WORKSPACE_LIMIT ((size_t)512 << 20)
#define DL_ARGS(...)    __VA_ARGS__ /* a macro argument with commas */

struct dl_conv_cudnn {
  dl_conv_desc d; // the shapes the descriptors were made for
  int ready;
  cudnnTensorDescriptor_t x, y, bias;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  cudnnConvolutionFwdAlgo_t fwd;
  cudnnConvolutionBwdDataAlgo_t bwd_data;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter;
  size_t workspace; // bytes the three algorithms need at most
};

static void *workspace;
static size_t workspace_bytes;

// The shared workspace grown to `bytes`; NULL and a sticky error on failure.
static dl_status reserve_workspace(size_t bytes, void **out) {
  *out = workspace;
  if (bytes <= workspace_bytes) return DL_OK;
  if (workspace) cudaFree(workspace);
  workspace = NULL;
  workspace_bytes = 0;
  dl_status st = CHECK_CUDA(cudaMalloc(&workspace, bytes));
  if (st) return st;
  workspace_bytes = bytes;
  *out = workspace;
  return DL_OK;
}

static void destroy_descriptors(dl_conv_cudnn *e) {
  if (e->x) cudnnDestroyTensorDescriptor(e->x);
  if (e->y) cudnnDestroyTensorDescriptor(e->y);
  if (e->bias) cudnnDestroyTensorDescriptor(e->bias);
  if (e->w) cudnnDestroyFilterDescriptor(e->w);
  if (e->conv) cudnnDestroyConvolutionDescriptor(e->conv);
  e->x = e->y = e->bias = NULL;
  e->w = NULL;
  e->conv = NULL;
  e->ready = 0;
}

extern "C" void dl_conv_cudnn_free(dl_conv_cudnn *e) {
  if (!e) return;
  destroy_descriptors(e);
  free(e);
}

static dl_status make_descriptors(dl_conv_cudnn *e, const dl_conv_desc *d) {
  dl_status st = CHECK_CUDNN(cudnnCreateTensorDescriptor(&e->x));
  if (!st) st = CHECK_CUDNN(cudnnCreateTensorDescriptor(&e->y));
  if (!st) st = CHECK_CUDNN(cudnnCreateTensorDescriptor(&e->bias));
  if (!st) st = CHECK_CUDNN(cudnnCreateFilterDescriptor(&e->w));
  if (!st) st = CHECK_CUDNN(cudnnCreateConvolutionDescriptor(&e->conv));
  if (!st)
    st = CHECK_CUDNN(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n,
                                                d->c, d->h, d->w));
  if (!st)
    st = CHECK_CUDNN(cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n,
                                                d->m, d->oh, d->ow));
  if (!st)
    st = CHECK_CUDNN(
        cudnnSetTensor4dDescriptor(e->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, d->m, 1, 1));
  if (!st)
    st = CHECK_CUDNN(cudnnSetFilter4dDescriptor(e->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->m,
                                                d->c / d->group, d->kh, d->kw));
  if (!st)
    st = CHECK_CUDNN(cudnnSetConvolution2dDescriptor(e->conv, d->ph, d->pw, d->sh, d->sw, d->dh,
                                                     d->dw, CUDNN_CROSS_CORRELATION,
                                                     CUDNN_DATA_FLOAT));
  if (!st) st = CHECK_CUDNN(cudnnSetConvolutionGroupCount(e->conv, d->group));
  if (!st)
    st = CHECK_CUDNN(
        cudnnSetConvolutionMathType(e->conv, dl_gpu_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  if (st) return st;
  // cuDNN's output size must be the layer's (Caffe's) one.
  int n, c, h, w;
  st = CHECK_CUDNN(cudnnGetConvolution2dForwardOutputDim(e->conv, e->x, e->w, &n, &c, &h, &w));
  if (!st && (n != d->n || c != d->m || h != d->oh || w != d->ow))
    st = dl_gpu_fail(DL_EDEVICE,
                     "Convolution on cuDNN: output %d x %d x %d x %d, but the layer expects "
                     "%d x %d x %d x %d",
                     n, c, h, w, d->n, d->m, d->oh, d->ow);
  return st;
}

// Measures cuDNN's candidates for one of the three passes (FIND: its
// cudnnFind*Algorithm, called with the descriptors in ARGS) and takes the
// fastest that ran, fits WORKSPACE_LIMIT and, under `deterministic: true`,
// repeats bit for bit: the first such one, as results come sorted by time.
// The workspace grows to what it needs.
#define CHOOSE(PERF, FIND, ARGS, OUT, WHAT)                                                        \
  do {                                                                                             \
    PERF r_[MAX_ALGOS];                                                                            \
    int n_ = 0, found_ = 0;                                                                        \
    dl_status st_ = CHECK_CUDNN(FIND(dl_gpu_cudnn(), ARGS, MAX_ALGOS, &n_, r_));                   \
    if (st_) return st_;                                                                           \
    for (int i_ = 0; i_ < n_ && !found_; i_++)                                                     \
      if (r_[i_].status == CUDNN_STATUS_SUCCESS && r_[i_].memory <= WORKSPACE_LIMIT &&             \
          (!dl_gpu_deterministic() || r_[i_].determinism == CUDNN_DETERMINISTIC)) {                \
        OUT = r_[i_].algo;                                                                         \
        if (r_[i_].memory > e->workspace) e->workspace = r_[i_].memory;                            \
        found_ = 1;                                                                                \
      }                                                                                            \
    if (!found_)                                                                                   \
      return dl_gpu_fail(DL_EDEVICE, "Convolution on cuDNN: no %s algorithm fits %zu MiB%s", WHAT, \
                         WORKSPACE_LIMIT >> 20,                                                    \
                         dl_gpu_deterministic() ? " among the deterministic ones" : "");           \
  } while (0)

static dl_status choose_algorithms(dl_conv_cudnn *e) {
  enum { MAX_ALGOS = 16 };
  e->workspace = 0;
  CHOOSE(cudnnConvolutionFwdAlgoPerf_t, cudnnFindConvolutionForwardAlgorithm,
         DL_ARGS(e->x, e->w, e->conv, e->y), e->fwd, "forward");
  CHOOSE(cudnnConvolutionBwdDataAlgoPerf_t, cudnnFindConvolutionBackwardDataAlgorithm,
         DL_ARGS(e->w, e->y, e->conv, e->x), e->bwd_data, "backward-data");
  CHOOSE(cudnnConvolutionBwdFilterAlgoPerf_t, cudnnFindConvolutionBackwardFilterAlgorithm,
         DL_ARGS(e->x, e->y, e->conv, e->w), e->bwd_filter, "backward-filter");
  return DL_OK;
}

// The state for d: made (or remade, when the shapes changed) on demand.
static dl_status prepare(dl_layer *l, dl_conv_cudnn **out) {
  dl_conv_cudnn **slot = dl_conv_layer_cudnn(l);
  dl_conv_desc d = dl_conv_layer_desc(l);
  dl_conv_cudnn *e = *slot;
  if (!e) {
    e = (dl_conv_cudnn *)calloc(1, sizeof *e);
    if (!e) return dl_error(DL_ENOMEM, "out of memory");
    *slot = e;
  }
  *out = e;
  if (e->ready && !memcmp(&e->d, &d, sizeof d)) return DL_OK;
  destroy_descriptors(e);
  e->d = d;
  dl_status st = make_descriptors(e, &d);
  if (!st) st = choose_algorithms(e);
  if (!st) e->ready = 1;
  return st;
}

extern "C" dl_status dl_conv_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                         dl_blob *const *top, int) {
  dl_conv_cudnn *e;
  void *ws;
  dl_status st = prepare(l, &e);
  if (!st) st = reserve_workspace(e->workspace, &ws);
  if (st) return st;
  const float *x = dl_gpu_cdata(bottom[0]); // (n, c, h, w)
  const float *w = dl_gpu_cdata(l->params[0]); // (m, c / group, kh, kw)
  float *y = dl_gpu_data(top[0]);              // (n, m, oh, ow)
  if (!x || !w || !y) return dl_gpu_error();
  const float one = 1.0f, zero = 0.0f;
  cudnnHandle_t h = dl_gpu_cudnn();
  st = CHECK_CUDNN(cudnnConvolutionForward(h, &one, e->x, x, e->w, w, e->conv, e->fwd, ws,
                                           e->workspace, &zero, e->y, y));
  if (!st && e->d.bias) {
    const float *b = dl_gpu_cdata(l->params[1]); // (m)
    if (!b) return dl_gpu_error();
    st = CHECK_CUDNN(cudnnAddTensor(h, &one, e->bias, b, &one, e->y, y));
  }
  return st ? st : dl_gpu_error();
}

extern "C" void dl_conv_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                     const int *propagate_down, dl_blob *const *bottom, int) {
  dl_conv_cudnn *e;
  void *ws;
  if (prepare(l, &e) || reserve_workspace(e->workspace, &ws)) return; // the sticky error says
  const float *dy = dl_gpu_cdiff(top[0]);      // (n, m, oh, ow)
  const float *x = dl_gpu_cdata(bottom[0]);    // (n, c, h, w)
  const float *w = dl_gpu_cdata(l->params[0]); // (m, c / group, kh, kw)
  float *dw = dl_gpu_diff(l->params[0]);
  if (!dy || !x || !w || !dw) return;
  const float one = 1.0f, zero = 0.0f;
  cudnnHandle_t h = dl_gpu_cudnn();
  if (e->d.bias) {
    float *db = dl_gpu_diff(l->params[1]);
    if (!db || CHECK_CUDNN(cudnnConvolutionBackwardBias(h, &one, e->y, dy, &one, e->bias, db)))
      return;
  }
  if (CHECK_CUDNN(cudnnConvolutionBackwardFilter(h, &one, e->x, x, e->y, dy, e->conv,
                                                 e->bwd_filter, ws, e->workspace, &one, e->w,
                                                 dw)))
    return;
  if (propagate_down[0]) {
    float *dx = dl_gpu_diff(bottom[0]);
    if (dx)
      CHECK_CUDNN(cudnnConvolutionBackwardData(h, &one, e->w, w, e->y, dy, e->conv, e->bwd_data,
                                               ws, e->workspace, &zero, e->x, dx));
  }
}
