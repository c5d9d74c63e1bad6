// InnerProduct's GPU twin: the three GEMMs on cuBLAS (fp32), the bias as
// small kernels. layers/inner_product.c has the CPU reference.
#include "core/gpu.h"
#include "core/math_gpu.h"
#include "layers/inner_product.h"

extern "C" {
DL_GPU_TWINS(inner_product);
}

// y (M x N) = x (M x K) * W^T (K x N) + b
extern "C" dl_status dl_inner_product_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                                  dl_blob *const *top, int) {
  const ip_param *p = (const ip_param *)l->param;
  const ip_priv *s = (const ip_priv *)l->priv;
  int M = s->M, N = p->num_output, K = s->K;
  const float *x = dl_gpu_cdata(bottom[0]), *W = dl_gpu_cdata(l->params[0]);
  float *y = dl_gpu_data(top[0]);
  if (!x || !W || !y) return dl_gpu_error();
  dl_gpu_gemm(0, 1, M, N, K, 1.0f, x, W, 0.0f, y);
  if (p->bias_term) {
    const float *b = dl_gpu_cdata(l->params[1]); // (N)
    if (!b) return dl_gpu_error();
    dl_gpu_add_row(M, N, b, y);
  }
  return dl_gpu_error();
}

// dW (N x K) += dy^T x;  db (N) += column sums of dy;  dx (M x K) = dy W.
extern "C" void dl_inner_product_backward_gpu(dl_layer *l, dl_blob *const *top, int,
                                              const int *propagate_down, dl_blob *const *bottom,
                                              int) {
  const ip_param *p = (const ip_param *)l->param;
  const ip_priv *s = (const ip_priv *)l->priv;
  int M = s->M, N = p->num_output, K = s->K;
  const float *dy = dl_gpu_cdiff(top[0]); // (M x N)
  const float *x = dl_gpu_cdata(bottom[0]), *W = dl_gpu_cdata(l->params[0]);
  float *dW = dl_gpu_diff(l->params[0]);
  if (!dy || !x || !W || !dW) return;
  dl_gpu_gemm(1, 0, N, K, M, 1.0f, dy, x, 1.0f, dW);
  if (p->bias_term) {
    float *db = dl_gpu_diff(l->params[1]);
    if (db) dl_gpu_col_sum_add(M, N, dy, db);
  }
  if (propagate_down[0]) {
    float *dx = dl_gpu_diff(bottom[0]);
    if (dx) dl_gpu_gemm(0, 0, M, K, N, 1.0f, dy, W, 0.0f, dx);
  }
}
