// Eltwise's GPU twin (layers/eltwise.c has the CPU reference): one kernel per
// pass over all bottoms, element by element, in the CPU's order of bottoms.
// Max keeps no argmax on the device: backward finds each element's winner
// again from the bottoms (the first maximum, strict >, as forward).
#include "core/gpu.h"
#include "layers/eltwise.h"

struct inputs {
  const float *x[DL_MAX_LAYER_BLOBS];
  float c[DL_MAX_LAYER_BLOBS]; // sum: the coefficients
  int nb;
};

__device__ static int winner(const inputs &in, size_t k) {
  float best = in.x[0][k];
  int arg = 0;
  for (int i = 1; i < in.nb; i++)
    if (in.x[i][k] > best) best = in.x[i][k], arg = i;
  return arg;
}

__global__ static void eltwise_forward_kernel(size_t n, int op, inputs in, float *y) {
  DL_GPU_LOOP(k, n) {
    float v;
    if (op == DL_ELTWISE_SUM) {
      v = 0;
      for (int i = 0; i < in.nb; i++)
        v += in.c[i] * in.x[i][k];
    } else if (op == DL_ELTWISE_PROD) {
      v = in.x[0][k];
      for (int i = 1; i < in.nb; i++)
        v *= in.x[i][k];
    } else {
      v = in.x[winner(in, k)][k];
    }
    y[k] = v;
  }
}

// dx of bottom b: sum c_b dy; prod dy times the other bottoms; max dy where b won.
__global__ static void eltwise_backward_kernel(size_t n, int op, inputs in, int b,
                                               const float *dy, float *dx) {
  DL_GPU_LOOP(k, n) {
    float v = dy[k];
    if (op == DL_ELTWISE_SUM) {
      v = in.c[b] * v;
    } else if (op == DL_ELTWISE_PROD) {
      for (int j = 0; j < in.nb; j++)
        if (j != b) v *= in.x[j][k];
    } else if (winner(in, k) != b) {
      v = 0;
    }
    dx[k] = v;
  }
}

static int gather_inputs(dl_layer *l, dl_blob *const *bottom, int nb, inputs *in) {
  const eltwise_param *p = (const eltwise_param *)l->param;
  in->nb = nb;
  for (int i = 0; i < nb; i++) {
    if (!(in->x[i] = dl_gpu_cdata(bottom[i]))) return 0;
    in->c[i] = p->coeff.n ? p->coeff.v[i] : 1.0f;
  }
  return 1;
}

extern "C" dl_status dl_eltwise_forward_gpu(dl_layer *l, dl_blob *const *bottom, int nb,
                                            dl_blob *const *top, int) {
  inputs in;
  float *y = dl_gpu_data(top[0]);
  if (!gather_inputs(l, bottom, nb, &in) || !y) return dl_gpu_error();
  size_t n = bottom[0]->count;
  int op = ((const eltwise_param *)l->param)->operation;
  eltwise_forward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, op, in, y);
  return CHECK_LAUNCH();
}

extern "C" void dl_eltwise_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                        const int *propagate_down, dl_blob *const *bottom,
                                        int nb) {
  inputs in;
  const float *dy = dl_gpu_cdiff(top[0]);
  if (!gather_inputs(l, bottom, nb, &in) || !dy) return;
  size_t n = top[0]->count;
  int op = ((const eltwise_param *)l->param)->operation;
  for (int b = 0; b < nb; b++) {
    if (!propagate_down[b]) continue;
    float *dx = dl_gpu_diff(bottom[b]);
    if (!dx) return;
    eltwise_backward_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(n, op, in,
                                                                                      b, dy, dx);
    if (CHECK_LAUNCH()) return;
  }
}
