/* InnerProduct (fully connected): y = x W^T + b over the axes from `axis` on.
 * x is viewed as M x K (M = product of the axes before `axis`), W is N x K as
 * in Caffe, so weights load across tools without transposing. */
#include <stdlib.h>

#include "core/filler.h"
#include "core/math.h"
#include "core/parallel.h"
#include "layers/inner_product.h"
#include "solvers/sgd_gemm.h"

static const dl_param_spec ip_schema[] = {
    DL_P_INT(ip_param, num_output, NULL, 1, 1 << 30, "number of outputs N",
             "inner_product_param { num_output }"),
    DL_P_BOOL(ip_param, bias_term, "true", "learn a bias b (N)",
              "inner_product_param { bias_term }"),
    DL_P_INT(ip_param, axis, "1", -DL_MAX_AXES, DL_MAX_AXES - 1,
             "first axis folded into the input vector; axes before it are rows "
             "(2 with a T x N x D sequence gives per-step outputs)",
             "inner_product_param { axis }"),
    DL_P_FILLER(ip_param, weight_filler, "{type: xavier}", "initial W (N x K)",
                "inner_product_param { weight_filler }"),
    DL_P_FILLER(ip_param, bias_filler, "{type: constant, value: 0}", "initial b",
                "inner_product_param { bias_filler }"),
    DL_SPEC_END};

/* Which forward form (see forward_transposed). */
static int transposed_forward(int M, int N, int K) {
  (void)N, (void)K;
  return M <= 128;
}

/* Grows *buf to n floats. */
static dl_status reserve(float **buf, size_t *cap, size_t n) {
  if (n <= *cap) return DL_OK;
  free(*buf);
  *buf = dl_malloc(n * sizeof(float));
  *cap = *buf ? n : 0;
  return *buf ? DL_OK : DL_ENOMEM;
}

static dl_status ip_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                          int nt) {
  (void)nb, (void)top, (void)nt;
  const ip_param *p = l->param;
  int axis = dl_blob_axis(bottom[0], p->axis);
  if (axis < 0)
    return dl_layer_error(l, DL_ECONFIG, "axis %d is out of range for a %d-axis input", p->axis,
                          bottom[0]->ndim);
  size_t K = dl_blob_count_range(bottom[0], axis, bottom[0]->ndim);
  if (K > (size_t)1 << 30)
    return dl_layer_error(l, DL_ECONFIG, "input has %zu features per row; at most 2^30", K);
  ip_priv *s = calloc(1, sizeof *s);
  if (!s) return DL_ENOMEM;
  s->axis = axis;
  s->K = (int)K;
  l->priv = s;
  dl_blob *w, *b;
  dl_rng rng;
  dl_status st = dl_layer_add_param(l, "weight", 2, (int[]){p->num_output, s->K}, &w);
  if (st) return st;
  dl_layer_rng(l, 0, &rng);
  dl_fill(&p->weight_filler, w, &rng);
  if (!p->bias_term) return DL_OK;
  if ((st = dl_layer_add_param(l, "bias", 1, (int[]){p->num_output}, &b))) return st;
  dl_layer_rng(l, 1, &rng);
  dl_fill(&p->bias_filler, b, &rng);
  return DL_OK;
}

static dl_status ip_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)nt;
  const ip_param *p = l->param;
  ip_priv *s = l->priv;
  size_t K = dl_blob_count_range(bottom[0], s->axis, bottom[0]->ndim);
  if (K != (size_t)s->K) {
    char buf[128];
    return dl_layer_error(l, DL_ECONFIG,
                          "input %s has %zu features from axis %d on, but the weights expect %d",
                          dl_blob_shape_str(bottom[0], buf, sizeof buf), K, s->axis, s->K);
  }
  s->M = (int)dl_blob_count_range(bottom[0], 0, s->axis);
  /* xt and dyt also hold x and dy packed for dl_sgd_gemm_tile in backward */
  size_t xt_floats = (size_t)s->M * s->K, packed = dl_sgd_gemm_packed_floats(s->M, s->K);
  if (transposed_forward(s->M, p->num_output, s->K) &&
      (reserve(&s->yt, &s->yt_cap, (size_t)s->M * p->num_output) ||
       reserve(&s->xt, &s->xt_cap, packed > xt_floats ? packed : xt_floats) ||
       reserve(&s->dyt, &s->dyt_cap, dl_sgd_gemm_packed_dy_floats(s->M, p->num_output))))
    return DL_ENOMEM;
  int shape[DL_MAX_AXES];
  for (int i = 0; i < s->axis; i++)
    shape[i] = bottom[0]->shape[i];
  shape[s->axis] = p->num_output;
  return dl_blob_reshape(top[0], s->axis + 1, shape);
}

/* y (M x N) = x (M x K) * W^T (K x N) + b */
/* y^T (N x M) = W x^T, with x^T made first, then transposed: with a few rows
 * (M <= 128: FCN-S, AlexNet-S's fully connected layers) GEMM libraries run
 * W (x^T) with no transposed operand much faster than x W^T: with oneDNN's
 * sgemm on FCN-S's output layer (64 x 2048 -> 26752) 209 against 158 GFLOP/s,
 * on its first layer (64 x 26752 -> 2048) 241 against 127 (one thread). The
 * two transposes touch only x and y, which are small beside W. */
typedef struct {
  const float *src;
  float *dst;
  int rows, cols; /* of src */
  const float *bias; /* added per column of dst (per row of src); may be NULL */
} transpose_job;

/* dst (cols x rows) = src^T (+ bias[src row]), in 32 x 32 blocks; parts take
 * ranges of src's columns. */
static void transpose_part(void *arg, int c0, int c1) {
  const transpose_job *j = arg;
  for (int cb = c0; cb < c1; cb += 32)
    for (int rb = 0; rb < j->rows; rb += 32)
      for (int c = cb; c < c1 && c < cb + 32; c++)
        for (int r = rb; r < j->rows && r < rb + 32; r++)
          j->dst[(size_t)c * j->rows + r] =
              j->src[(size_t)r * j->cols + c] + (j->bias ? j->bias[r] : 0.0f);
}

static void transpose(const float *src, int rows, int cols, const float *bias, float *dst) {
  transpose_job j = {src, dst, rows, cols, bias};
  dl_parallel_for(cols, 4096 / (rows > 0 ? rows : 1) + 32, transpose_part, &j);
}

static void forward_transposed(const ip_priv *s, int M, int N, int K, const float *x,
                               const float *w, const float *b, float *y) {
  transpose(x, M, K, NULL, s->xt);
  dl_gemm(0, 0, N, M, K, 1.0f, w, s->xt, 0.0f, s->yt);
  transpose(s->yt, N, M, b, y);
}

static dl_status ip_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)nb, (void)nt;
  const ip_param *p = l->param;
  const ip_priv *s = l->priv;
  int M = s->M, N = p->num_output, K = s->K;
  float *y = dl_data(top[0]);
  const float *b = p->bias_term ? dl_cdata(l->params[1]) : NULL;
  if (transposed_forward(M, N, K)) {
    forward_transposed(s, M, N, K, dl_cdata(bottom[0]), dl_cdata(l->params[0]), b, y);
    return DL_OK;
  }
  dl_gemm(0, 1, M, N, K, 1.0f, dl_cdata(bottom[0]), dl_cdata(l->params[0]), 0.0f, y);
  if (b) dl_add_bias_rows(M, N, b, y);
  return DL_OK;
}

/* Update during backward. With a batch of up to 128 rows (FCN-S, AlexNet-S's
 * fully connected layers) dW = dy^T x is made a tile at a time (see
 * tile_cols) in each thread's scratch and handed to the solver while it is in
 * cache: W and its history are read and written once and dW is never stored
 * (no zeroing, no write, no re-read, no gradient buffer). Tiles go to the
 * threads in column-major order so each keeps its block of x in cache. A
 * longer batch makes dW compute-bound: it is then made whole in the diff and
 * handed over in bands of rows, which still saves zeroing the diff and
 * re-reading it in the GEMM. With the SGD rule (and AVX-512) the tiles skip
 * the scratch too: dl_sgd_gemm_tile applies the step to dW straight from
 * registers while the weights of later blocks stream in (FCN-S's first layer's
 * backward 35 -> 20 ms at 2 threads). Measured on the DLBench nets
 * (docs/benchmarks.md). */
typedef struct {
  const float *dy, *x; /* tiles: dy is dy^T (N x M): no transposed GEMM operand, 13% faster;
                          with sgd, dy and x as dl_sgd_gemm packs them */
  const float *dw;     /* whole-gradient form */
  int M, N, K, rows, cols, row_tiles, tiles;
  const dl_update_hook *hook;
  int param;
  const dl_sgd_target *sgd; /* SGD from registers (then x is packed) */
} update_job;

/* The tile shape for a batch of M <= 128 rows, 0 columns otherwise: columns
 * as many as keep x's block (M x cols) within 1 MiB of cache, all of them
 * when they fit, so that a tile is whole rows of W, one contiguous run of W
 * and its history (FCN-S's output layer: 61 -> 47 ms with whole rows against
 * 64 x 1024 tiles); rows to fill DL_UPDATE_TILE. */
enum { X_BLOCK = 262144 }; /* floats */
static int tile_cols(int M, int K, int registers) {
  if (M > 128) return 0;
  int multiple = registers ? 48 : 32; /* dl_sgd_gemm_tile: panels of 48 */
  int widest = X_BLOCK / M;
  widest = widest > DL_UPDATE_TILE / 4 ? DL_UPDATE_TILE / 4 : widest / multiple * multiple;
  return K <= widest ? K : widest;
}

static void update_tiles(void *arg, int p, int nparts) {
  const update_job *j = arg;
  float *tile = j->hook->scratch + (size_t)p * DL_UPDATE_TILE;
  int first = (int)((long)j->tiles * p / nparts), last = (int)((long)j->tiles * (p + 1) / nparts);
  for (int t = first; t < last; t++) {
    int r0 = (t % j->row_tiles) * j->rows, c0 = (t / j->row_tiles) * j->cols;
    int rn = j->N - r0 < j->rows ? j->N - r0 : j->rows;
    int cn = j->K - c0 < j->cols ? j->K - c0 : j->cols;
    if (j->sgd) {
      if (!dl_sgd_gemm_tile(j->sgd, j->M, j->K, j->dy, j->x, r0, rn, c0, cn)) return;
      continue;
    }
    dl_gemm_serial(0, 0, rn, cn, j->M, 1.0f, j->dy + (size_t)r0 * j->M, j->M, j->x + c0, j->K,
                   0.0f, tile, cn);
    if (!j->hook->apply(j->hook->ctx, j->param, (size_t)r0 * j->K + c0, rn, cn, (size_t)j->K,
                        tile))
      return; /* not finite: the solver stops training and says so */
  }
}

static void update_bands(void *arg, int p, int nparts) {
  const update_job *j = arg;
  int lo = (int)((long)j->N * p / nparts), hi = (int)((long)j->N * (p + 1) / nparts);
  if (hi > lo)
    j->hook->apply(j->hook->ctx, j->param, (size_t)lo * j->K, hi - lo, j->K, (size_t)j->K,
                   j->dw + (size_t)lo * j->K);
}

static void weight_grad_to_solver(dl_layer *l, int M, int N, int K, const float *dy,
                                  const float *x) {
  const ip_priv *s = l->priv;
  update_job j = {.dy = dy, .x = x, .M = M, .N = N, .K = K, .hook = l->update_hook,
                  .param = dl_layer_update_index(l, 0)};
  int threads = dl_parallel_threads();
  const dl_update_hook *h = l->update_hook;
  j.sgd = h->sgd_target && dl_sgd_gemm_usable(M, K) &&
                  s->xt_cap >= dl_sgd_gemm_packed_floats(M, K) &&
                  s->dyt_cap >= dl_sgd_gemm_packed_dy_floats(M, N)
              ? h->sgd_target(h->ctx, j.param)
              : NULL; /* the buffers: reserved at reshape for up to 128 rows */
  int cols = tile_cols(M, K, j.sgd != NULL);
  if (cols) {
    j.dy = s->dyt;
    if (j.sgd) { /* s->xt: forward's x^T, free now, reserved for this too */
      dl_sgd_gemm_pack_dy(M, N, dy, s->dyt);
      dl_sgd_gemm_pack(M, K, x, s->xt);
      j.x = s->xt;
    } else {
      transpose(dy, M, N, NULL, s->dyt);
    }
    j.cols = cols;
    j.rows = DL_UPDATE_TILE / cols < N ? DL_UPDATE_TILE / cols : N;
    if (j.sgd && j.rows < N) j.rows = j.rows < 8 ? 8 : j.rows / 8 * 8; /* whole 8-row blocks */
    j.row_tiles = (N + j.rows - 1) / j.rows;
    j.tiles = j.row_tiles * ((K + cols - 1) / cols);
    dl_parallel_run(threads < j.tiles ? threads : j.tiles, update_tiles, &j);
    return;
  }
  float *dw = dl_diff(l->params[0]);
  dl_gemm(1, 0, N, K, M, 1.0f, dy, x, 0.0f, dw);
  j.dw = dw;
  dl_parallel_run(threads < N ? threads : N, update_bands, &j);
}

/* dx (M x K) = dy W;  dW (N x K) += dy^T x;  db (N) += column sums of dy.
 * dx comes first: an update during backward changes W. */
static void ip_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                        dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  const ip_param *p = l->param;
  const ip_priv *s = l->priv;
  int M = s->M, N = p->num_output, K = s->K;
  const float *dy = dl_cdiff(top[0]); /* (M x N) */
  if (propagate_down[0])
    dl_gemm(0, 0, M, K, N, 1.0f, dy, dl_cdata(l->params[0]), 0.0f, dl_diff(bottom[0]));
  if (p->bias_term) dl_sum_rows(M, N, dy, dl_diff(l->params[1]));
  if (dl_layer_update_index(l, 0) >= 0)
    weight_grad_to_solver(l, M, N, K, dy, dl_cdata(bottom[0]));
  else
    dl_gemm(1, 0, N, K, M, 1.0f, dy, dl_cdata(bottom[0]), 1.0f, dl_diff(l->params[0]));
}

static void ip_destroy(dl_layer *l) {
  ip_priv *s = l->priv;
  if (s) free(s->yt), free(s->xt), free(s->dyt);
  free(s);
}

static double ip_flops(const dl_layer *l) {
  const ip_param *p = l->param;
  const ip_priv *s = l->priv;
  return 2.0 * s->M * (double)p->num_output * s->K;
}

const dl_layer_ops dl_layer_inner_product = {
    .type = "InnerProduct",
    .summary = "fully connected layer: y = x W^T + b",
    .schema = ip_schema,
    .param_size = sizeof(ip_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .backward_updates = 1u << 0, /* the weights (see weight_grad_to_solver) */
    .bottoms_doc = "x: d0 x ... x d(axis-1) x K (the axes from `axis` on are flattened to K)",
    .tops_doc = "y: d0 x ... x d(axis-1) x num_output",
    .setup = ip_setup,
    .reshape = ip_reshape,
    .forward = ip_forward,
    .backward = ip_backward,
    .destroy = ip_destroy,
    .flops = ip_flops,
#ifdef DL_GPU
    .forward_gpu = dl_inner_product_forward_gpu,
    .backward_gpu = dl_inner_product_backward_gpu,
#endif
};
