// Embed's GPU twin (layers/embed.c has the CPU code). The indices are checked
// on the host, where the data layer made them (a bad token id is the same
// data error as on the CPU); the lookup is a gather kernel. The weight
// gradient adds the rows of dy into dW grouped by token: the host sorts the
// batch's positions by token (a counting sort, stable), and one thread per
// (token, column) adds its token's rows in position order, as the CPU loop
// does: no atomics, the same sums in the same order on every run.
#include <stdlib.h>
#include <string.h>

#include "core/gpu.h"
#include "layers/embed.h"

// y[i, d] = W[x[i], d] (+ b[d])
__global__ static void gather_kernel(size_t M, int D, const float *x, const float *w,
                                     const float *b, float *y) {
  DL_GPU_LOOP(k, M * (size_t)D) {
    size_t i = k / (size_t)D;
    int d = (int)(k % (size_t)D);
    float v = w[(size_t)x[i] * D + d];
    y[k] = b ? v + b[d] : v;
  }
}

// dW[tokens[u], d] += dy[order[k], d] for k in [starts[u], starts[u + 1]).
__global__ static void scatter_rows_kernel(int U, int D, const int *tokens, const int *starts,
                                           const int *order, const float *dy, float *dw) {
  DL_GPU_LOOP(k, (size_t)U * D) {
    int u = (int)(k / (size_t)D), d = (int)(k % (size_t)D);
    float *row = dw + (size_t)tokens[u] * D;
    float acc = row[d];
    for (int j = starts[u]; j < starts[u + 1]; j++)
      acc += dy[(size_t)order[j] * D + d];
    row[d] = acc;
  }
}

// db[d] += dy[i, d] over all i, in order.
__global__ static void bias_kernel(size_t M, int D, const float *dy, float *db) {
  DL_GPU_LOOP(d, (size_t)D) {
    float acc = db[d];
    for (size_t i = 0; i < M; i++)
      acc += dy[i * D + d];
    db[d] = acc;
  }
}

extern "C" void dl_embed_gpu_free(embed_priv *e) {
  free(e->order);
  free(e->starts);
  free(e->tokens);
  free(e->count);
  if (e->dev) dl_mem_gpu_free(e->dev);
  memset(e, 0, sizeof *e);
}

// Grows the plan's buffers to M positions and V tokens.
static dl_status reserve(embed_priv *e, size_t M, int V) {
  if (M > e->cap_m) {
    free(e->order), free(e->starts), free(e->tokens);
    if (e->dev) dl_mem_gpu_free(e->dev);
    e->order = (int *)malloc(M * sizeof(int));
    e->starts = (int *)malloc((M + 1) * sizeof(int));
    e->tokens = (int *)malloc(M * sizeof(int));
    e->dev = dl_mem_gpu_alloc(3 * M + 1);
    e->cap_m = e->order && e->starts && e->tokens && e->dev ? M : 0;
    if (!e->cap_m) return e->dev ? dl_error(DL_ENOMEM, "out of memory") : dl_gpu_error();
  }
  if (V > e->cap_v) {
    free(e->count);
    e->count = (int *)malloc((size_t)V * sizeof(int));
    e->cap_v = e->count ? V : 0;
    if (!e->count) return dl_error(DL_ENOMEM, "out of memory");
  }
  return DL_OK;
}

// The batch's positions grouped by token (stable), uploaded as tokens (U),
// starts (U + 1), order (M); returns U, or -1 on failure.
static int plan(embed_priv *e, const float *x, size_t M, int V, const int **tokens,
                const int **starts, const int **order) {
  if (reserve(e, M, V)) return -1;
  memset(e->count, 0, (size_t)V * sizeof(int));
  for (size_t i = 0; i < M; i++)
    e->count[(int)x[i]]++;
  int U = 0, at = 0;
  for (int v = 0; v < V; v++) {
    if (!e->count[v]) continue;
    e->tokens[U] = v;
    e->starts[U++] = at;
    int n = e->count[v];
    e->count[v] = at; // from here: the next free slot of token v
    at += n;
  }
  e->starts[U] = at;
  for (size_t i = 0; i < M; i++)
    e->order[e->count[(int)x[i]]++] = (int)i;
  // one device buffer: tokens, starts, order (ints, copied as their bytes)
  float *dev = e->dev;
  if (dl_mem_gpu_upload(dev, (const float *)e->tokens, (size_t)U) ||
      dl_mem_gpu_upload(dev + U, (const float *)e->starts, (size_t)U + 1) ||
      dl_mem_gpu_upload(dev + 2 * U + 1, (const float *)e->order, M))
    return -1;
  *tokens = (const int *)dev;
  *starts = (const int *)(dev + U);
  *order = (const int *)(dev + 2 * U + 1);
  return U;
}

extern "C" dl_status dl_embed_forward_gpu(dl_layer *l, dl_blob *const *bottom, int,
                                          dl_blob *const *top, int) {
  const embed_param *p = (const embed_param *)l->param;
  size_t M = bottom[0]->count;
  dl_status st = dl_embed_check(l, dl_cdata(bottom[0]), M); // host: where the data layer made x
  if (st) return st;
  const float *x = dl_gpu_cdata(bottom[0]), *w = dl_gpu_cdata(l->params[0]);
  const float *b = p->bias_term ? dl_gpu_cdata(l->params[1]) : NULL;
  float *y = dl_gpu_data(top[0]);
  if (!x || !w || !y || (p->bias_term && !b)) return dl_gpu_error();
  size_t n = M * (size_t)p->num_output;
  gather_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(M, p->num_output, x, w,
                                                                          b, y);
  return CHECK_LAUNCH();
}

extern "C" void dl_embed_backward_gpu(dl_layer *l, dl_blob *const *top, int, const int *,
                                      dl_blob *const *bottom, int) {
  const embed_param *p = (const embed_param *)l->param;
  embed_priv *e = (embed_priv *)l->priv;
  size_t M = bottom[0]->count;
  int D = p->num_output;
  const float *dy = dl_gpu_cdiff(top[0]); // (M, D)
  float *dw = dl_gpu_diff(l->params[0]);  // (V, D)
  if (!dy || !dw) return;
  const int *tokens, *starts, *order;
  int U = plan(e, dl_cdata(bottom[0]), M, p->input_dim, &tokens, &starts, &order);
  if (U < 0) return; // the sticky error (or the diagnostic) says why
  size_t n = (size_t)U * D;
  if (n)
    scatter_rows_kernel<<<dl_gpu_blocks(n), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(
        U, D, tokens, starts, order, dy, dw);
  if (CHECK_LAUNCH() || !p->bias_term) return;
  float *db = dl_gpu_diff(l->params[1]);
  if (!db) return;
  bias_kernel<<<dl_gpu_blocks((size_t)D), DL_GPU_THREADS, 0, dl_gpu_stream()>>>(M, D, dy, db);
  CHECK_LAUNCH();
}
