/* Pooling with Caffe's semantics: max or average over windows of each channel,
 * output size rounded up (Caffe) or down (PyTorch's default). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "core/parallel.h"
#include "core/vmath.h"
#include "layers/pooling.h"

enum { POOL_MAX, POOL_AVE };
static const char *const pool_names[] = {"max", "ave", NULL};
enum { ROUND_CEIL, ROUND_FLOOR };
static const char *const round_names[] = {"ceil", "floor", NULL};

typedef struct {
  int pool;
  dl_ints kernel_size, stride, pad;
  int global_pooling;
  int round_mode;
} pool_param;

static const dl_param_spec pool_schema[] = {
    DL_P_ENUM(pool_param, pool, "max", pool_names, "max, or ave (average)",
              "pooling_param { pool: MAX | AVE }"),
    DL_P_INTS(pool_param, kernel_size, "[]", 1, 65536,
              "window size: k or [kh, kw]; required unless global_pooling",
              "pooling_param { kernel_size | kernel_h, kernel_w }"),
    DL_P_INTS(pool_param, stride, "1", 1, 65536, "step between windows: s or [sh, sw]",
              "pooling_param { stride | stride_h, stride_w }"),
    DL_P_INTS(pool_param, pad, "0", 0, 65536,
              "padding on each side: p or [ph, pw], smaller than the kernel; max ignores it, "
              "ave counts it in the divisor",
              "pooling_param { pad | pad_h, pad_w }"),
    DL_P_BOOL(pool_param, global_pooling, "false",
              "one window over the whole input (output H = W = 1); then kernel_size, stride and "
              "pad are not given",
              "pooling_param { global_pooling }"),
    DL_P_ENUM(pool_param, round_mode, "ceil", round_names,
              "output size rounding: ceil (Caffe) or floor (PyTorch's default); either way the "
              "last window starts inside the input or its leading pad",
              "pooling_param { round_mode: CEIL | FLOOR }"),
    DL_SPEC_END};

typedef struct {
  int kh, kw, sh, sw, ph, pw; /* kernel, stride, pad */
  int planes, h, w, oh, ow;   /* planes = N * C */
  size_t nmask;
  int *mask; /* (planes, oh, ow): max pooling's argmax, iy * w + ix within its plane;
                (planes / 16, oh, ow, 16) in the blocked layout */
  float *scratch; /* a blocked x with a plain y: one block's (oh, ow, 16) outputs a thread */
  int scratch_parts;
} pool_priv;

/* ---- setup and reshape -------------------------------------------------- */

/* A DL_P_INTS value of one int or a pair into (a, b). */
static dl_status pair(dl_layer *l, const char *key, const dl_ints *v, int *a, int *b) {
  if (v->n != 1 && v->n != 2)
    return dl_layer_error(l, DL_ECONFIG, "%s: expected one value or two [h, w], got %d", key, v->n);
  *a = v->v[0];
  *b = v->v[v->n - 1];
  return DL_OK;
}

static dl_status check_global(dl_layer *l) {
  const pool_param *p = l->param;
  pool_priv *s = l->priv;
  if (p->kernel_size.n)
    return dl_layer_error(l, DL_ECONFIG,
                          "kernel_size cannot be given with global_pooling: true (the window "
                          "is the whole input)");
  dl_status st = pair(l, "stride", &p->stride, &s->sh, &s->sw);
  if (!st) st = pair(l, "pad", &p->pad, &s->ph, &s->pw);
  if (!st && (s->sh != 1 || s->sw != 1 || s->ph || s->pw))
    return dl_layer_error(l, DL_ECONFIG, "global_pooling: true takes no stride or pad");
  return st;
}

static dl_status read_geometry(dl_layer *l) {
  const pool_param *p = l->param;
  pool_priv *s = l->priv;
  if (p->global_pooling) return check_global(l);
  if (!p->kernel_size.n)
    return dl_layer_error(l, DL_ECONFIG, "kernel_size is required unless global_pooling: true");
  dl_status st = pair(l, "kernel_size", &p->kernel_size, &s->kh, &s->kw);
  if (!st) st = pair(l, "stride", &p->stride, &s->sh, &s->sw);
  if (!st) st = pair(l, "pad", &p->pad, &s->ph, &s->pw);
  if (!st && (s->ph >= s->kh || s->pw >= s->kw))
    return dl_layer_error(l, DL_ECONFIG,
                          "pad %dx%d must be smaller than the kernel %dx%d (a window would "
                          "cover only padding)",
                          s->ph, s->pw, s->kh, s->kw);
  return st;
}

static dl_status pool_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                            int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  l->priv = dl_calloc(1, sizeof(pool_priv));
  return l->priv ? read_geometry(l) : DL_ENOMEM;
}

/* Output size along one axis, or 0 when the kernel does not fit. Caffe's rule
 * drops a last window that would start in the trailing pad; Caffe applies it
 * only with padding, but without padding it fires only for stride > kernel,
 * where Caffe's last window would be empty. */
static int pooled_size(int in, int k, int stride, int pad, int ceil_mode) {
  int room = in + 2 * pad - k;
  if (room < 0) return 0;
  int out = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  if ((out - 1) * stride >= in + pad) out--;
  return out;
}

static dl_status size_output(dl_layer *l, pool_priv *s) {
  const pool_param *p = l->param;
  if (p->global_pooling) s->kh = s->h, s->kw = s->w;
  s->oh = pooled_size(s->h, s->kh, s->sh, s->ph, p->round_mode == ROUND_CEIL);
  s->ow = pooled_size(s->w, s->kw, s->sw, s->pw, p->round_mode == ROUND_CEIL);
  if (s->oh > 0 && s->ow > 0) return DL_OK;
  return dl_layer_error(l, DL_ECONFIG, "kernel %dx%d with pad %dx%d does not fit input %dx%d",
                        s->kh, s->kw, s->ph, s->pw, s->h, s->w);
}

static dl_status pool_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  pool_priv *s = l->priv;
  const dl_blob *x = bottom[0];
  char buf[128];
  if (x->ndim != 4)
    return dl_layer_error(l, DL_ECONFIG, "expects a 4-d input N x C x H x W, got %s",
                          dl_blob_shape_str(x, buf, sizeof buf));
  s->planes = x->shape[0] * x->shape[1], s->h = x->shape[2], s->w = x->shape[3];
  dl_status st = size_output(l, s);
  if (st) return st;
  size_t n = (size_t)s->planes * s->oh * s->ow;
  if (n > s->nmask) {
    free(s->mask);
    s->mask = dl_malloc(n * sizeof(int));
    s->nmask = s->mask ? n : 0;
    if (!s->mask) return DL_ENOMEM;
  }
  free(s->scratch);
  s->scratch_parts = dl_parallel_threads();
  s->scratch = dl_malloc((size_t)s->scratch_parts * s->oh * s->ow * DL_BLOCK * sizeof(float));
  if (!s->scratch) return DL_ENOMEM;
  return dl_blob_reshape4(top[0], x->shape[0], x->shape[1], s->oh, s->ow);
}

dl_pool_geom dl_pooling_geom(const dl_layer *l) {
  const pool_param *p = l->param;
  const pool_priv *s = l->priv;
  return (dl_pool_geom){p->pool == POOL_MAX, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw,
                        s->planes,           s->h,  s->w,  s->oh, s->ow};
}

static void pool_destroy(dl_layer *l) {
  pool_priv *s = l->priv;
  if (!s) return;
  free(s->mask);
  free(s->scratch);
  free(s);
  l->priv = NULL;
}

/* ---- windows ------------------------------------------------------------ */

/* Output (oy, ox)'s window: input rows [h0, h1), columns [w0, w1), clipped to
 * the input; `area` is its size clipped to the padded input instead, which is
 * Caffe's divisor for average pooling. */
typedef struct {
  int h0, h1, w0, w1, area;
} pool_win;

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

static inline pool_win window(const pool_priv *s, int oy, int ox) {
  int h0 = oy * s->sh - s->ph, w0 = ox * s->sw - s->pw;
  int h1 = imin(h0 + s->kh, s->h + s->ph), w1 = imin(w0 + s->kw, s->w + s->pw);
  pool_win win = {imax(h0, 0), imin(h1, s->h), imax(w0, 0), imin(w1, s->w), (h1 - h0) * (w1 - w0)};
  return win;
}

/* ---- forward ------------------------------------------------------------ */

/* Max of one window into *y, its position into *mask. The first element seeds
 * the max, so a window of NaNs yields NaN (for the NaN guard) and a valid index. */
static void max_window(const pool_priv *s, const float *x, int oy, int ox, float *y, int *mask) {
  pool_win win = window(s, oy, ox);
  int arg = win.h0 * s->w + win.w0;
  float best = x[arg];
  for (int iy = win.h0; iy < win.h1; iy++)
    for (int ix = win.w0; ix < win.w1; ix++)
      if (x[iy * s->w + ix] > best) best = x[iy * s->w + ix], arg = iy * s->w + ix;
  *y = best;
  *mask = arg;
}

/* The common 2x2, stride 2 case for n whole windows on input rows r0 and r0 + 1
 * (r0 indexes the plane x): a compare tree two compares deep rather than four,
 * with ties going to the earlier element as in max_window. Winners are random,
 * so it is written for selects (maxss, arithmetic) rather than branches. */
static void max_row_2x2(const float *x, int w, int r0, int n, float *y, int *mask) {
  const float *a = x + (size_t)r0 * w, *c = a + w; /* (w): the two input rows */
  for (int ox = 0; ox < n; ox++) {
    int gab = a[2 * ox + 1] > a[2 * ox], gcd = c[2 * ox + 1] > c[2 * ox];
    float m1 = a[2 * ox + gab], m2 = c[2 * ox + gcd];
    int low = m2 > m1; /* the second row wins */
    y[ox] = m2 > m1 ? m2 : m1;
    mask[ox] = r0 * w + 2 * ox + gab + low * (w + gcd - gab);
  }
}

/* (best, arg) = (v, at) when v > best: selects by masks, never a branch
 * (winners are random; mispredicted branches made the generic loop 3x slower). */
static inline void take_if_greater(float v, int at, float *best, int *arg) {
  int take = -(v > *best); /* all ones or zero */
  *best = v > *best ? v : *best;
  *arg ^= (*arg ^ at) & take;
}

/* The 3x3 window at x[base] (whole: inside the plane), with max_window's
 * result: the first maximum in raster order, a NaN first element kept. Each
 * row's maximum first (three short chains the CPU runs side by side), then
 * the rows in order, strict >, so an earlier row keeps a tie. */
static inline void max_3x3(const float *x, int w, int base, float *y, int *mask) {
  float m[3];
  int a[3];
  for (int r = 0; r < 3; r++) {
    int at = base + r * w;
    m[r] = x[at], a[r] = at;
    take_if_greater(x[at + 1], at + 1, &m[r], &a[r]);
    take_if_greater(x[at + 2], at + 2, &m[r], &a[r]);
  }
  take_if_greater(m[1], a[1], &m[0], &a[0]);
  take_if_greater(m[2], a[2], &m[0], &a[0]);
  *y = m[0];
  *mask = a[0];
}

/* (best, pos) = (c, k) where c > best, lane by lane (vectorized: masks). */
DL_VINLINE void take_greater(int n, const float *restrict c, int k, float *restrict best,
                             int *restrict pos) {
  for (int i = 0; i < n; i++) {
    float b = best[i], v = c[i];
    int take = v > b, m = -take;
    best[i] = dl_vpick(take, v, b);
    pos[i] = (pos[i] & ~m) | (k & m);
  }
}

enum { S2_ROW_MAX = 1024, S2_LANES = 512 }; /* widest input row; lanes per pass */

/* 3x3 stride 2 (AlexNet's pooling), the first `rows` output rows and `n`
 * windows of each, all whole. Every input row is split into its even and odd
 * columns, so the three candidates of window ox are even[ox], odd[ox] and
 * even[ox + 1]: contiguous across windows, and across output rows too when
 * the rows' splits are laid end to end (sv lanes a row), so one pass compares
 * a candidate for a group of rows (planes are small: a loop per row of 15
 * windows cost more than its work). Candidates go in raster order with
 * strict >, which is max_window's result; pos is the winner's place in the
 * window (0..8). Lanes past n are computed and dropped. */
DL_VCLONES static void max_rows_3x3s2(const float *restrict x, int w, int rows, int n, int ow,
                                      float *restrict y, int *restrict mask) {
  enum { LANES = 8 };
  float even[3][S2_LANES + 1], odd[3][S2_LANES], best[S2_LANES];
  int pos[S2_LANES];
  int sv = (n + 1 + LANES - 1) / LANES * LANES, group = S2_LANES / sv;
  for (int oy0 = 0; oy0 < rows; oy0 += group) {
    int g = rows - oy0 < group ? rows - oy0 : group, lanes = g * sv;
    for (int r = 0; r < 3; r++)
      for (int q = 0; q < g; q++) {
        const float *a = x + (size_t)(2 * (oy0 + q) + r) * w;
        float *e = even[r] + q * sv, *o = odd[r] + q * sv;
        for (int j = 0; j <= n; j++)
          e[j] = a[2 * j];
        for (int j = 0; j < n; j++)
          o[j] = a[2 * j + 1];
        for (int j = n + 1; j < sv; j++)
          e[j] = 0;
        for (int j = n; j < sv; j++)
          o[j] = 0;
      }
    for (int r = 0; r < 3; r++)
      even[r][lanes] = 0;
    for (int i = 0; i < lanes; i++)
      best[i] = even[0][i], pos[i] = 0;
    for (int r = 0; r < 3; r++) {
      if (r) take_greater(lanes, even[r], 3 * r, best, pos);
      take_greater(lanes, odd[r], 3 * r + 1, best, pos);
      take_greater(lanes, even[r] + 1, 3 * r + 2, best, pos);
    }
    for (int q = 0; q < g; q++) {
      int oy = oy0 + q;
      float *yo = y + (size_t)oy * ow;
      int *mo = mask + (size_t)oy * ow;
      for (int j = 0; j < n; j++) {
        int k = pos[q * sv + j];
        yo[j] = best[q * sv + j];
        mo[j] = (2 * oy + k / 3) * w + 2 * j + k % 3;
      }
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static int portable_only; /* tests: the portable path on an AVX-512 machine too */

void dl_pooling_portable_only(int on) { portable_only = on; }

static int use_avx512(void) { return !portable_only && __builtin_cpu_supports("avx512f"); }

/* (best, arg) = (v, at) in the lanes where v > best (false for NaNs, as in C). */
__attribute__((target("avx512f"))) static inline void take_gt(__m512 v, __m512i at, __m512 *best,
                                                              __m512i *arg) {
  __mmask16 gt = _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ);
  *best = _mm512_mask_mov_ps(*best, gt, v);
  *arg = _mm512_mask_mov_epi32(*arg, gt, at);
}

/* Max pooling with stride 2 and a k x k window, k = 2 or 3, with AVX-512 (the
 * portable versions: max_row_2x2, max_rows_3x3s2): the first `rows` output
 * rows and `n` windows of each, all whole. 16 windows of a row at a time,
 * their candidates split out of two vectors of an input row by permutes; the
 * candidates in raster order with strict >, as max_window. Loads are whole
 * vectors wherever they stay inside the plane (of `plane` floats), running
 * into the next rows, whose lanes are dropped; only the last rows of a plane
 * take masked loads, which are slow on Zen 5 when the data comes from memory
 * (AlexNet-R's pool1 at one thread: 25 ms with masked loads throughout, 6 ms
 * so, 20 ms for the portable version). */
__attribute__((target("avx512f"))) static void max_rows_s2_avx512(const float *x, int plane, int w,
                                                                  int k, int rows, int n, int ow,
                                                                  float *y, int *mask) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i next = _mm512_add_epi32(even, _mm512_set1_epi32(2)); /* lane 15: 32, see below */
  for (int oy = 0; oy < rows; oy++)
    for (int j0 = 0; j0 < n; j0 += 16) {
      int c0 = 2 * j0, avail = w - c0, m = n - j0 < 16 ? n - j0 : 16;
      __mmask16 ka = avail >= 16 ? 0xffff : (__mmask16)((1u << avail) - 1);
      __mmask16 kb = avail >= 32 ? 0xffff : avail > 16 ? (__mmask16)((1u << (avail - 16)) - 1) : 0;
      __m512 best = _mm512_setzero_ps();
      __m512i arg = _mm512_setzero_si512();
      for (int r = 0; r < k; r++) {
        int at = (2 * oy + r) * w + c0;
        const float *row = x + at;
        __m512 a, b;
        if (at + 32 <= plane) /* may run into the next row: those lanes are dropped */
          a = _mm512_loadu_ps(row), b = _mm512_loadu_ps(row + 16);
        else
          a = _mm512_maskz_loadu_ps(ka, row), b = _mm512_maskz_loadu_ps(kb, row + 16);
        __m512 e = _mm512_permutex2var_ps(a, even, b), o = _mm512_permutex2var_ps(a, odd, b);
        __m512i pos = _mm512_add_epi32(even, _mm512_set1_epi32(at));
        if (r == 0)
          best = e, arg = pos;
        else
          take_gt(e, pos, &best, &arg);
        take_gt(o, _mm512_add_epi32(pos, _mm512_set1_epi32(1)), &best, &arg);
        if (k == 3) { /* index 32 wraps to a[0]; the 16th window's third column is row[32] */
          __m512 e1 = _mm512_permutex2var_ps(a, next, b);
          if (m == 16) e1 = _mm512_mask_mov_ps(e1, 0x8000, _mm512_set1_ps(row[32]));
          take_gt(e1, _mm512_add_epi32(pos, _mm512_set1_epi32(2)), &best, &arg);
        }
      }
      __mmask16 out = (__mmask16)((1u << m) - 1);
      _mm512_mask_storeu_ps(y + (size_t)oy * ow + j0, out, best);
      _mm512_mask_storeu_epi32(mask + (size_t)oy * ow + j0, out, arg);
    }
}

/* 16 lanes of dy and of the mask from `at` on, of which the lanes in k are
 * used: whole-vector loads where they stay inside [lo, hi), the readable
 * outputs around this plane (the other lanes are dropped), masked ones only
 * at the ends of the blob (slow on Zen 5, see above). */
__attribute__((target("avx512f"))) static inline void load_outputs(const float *dy, const int *mask,
                                                                   int at, int lo, int hi,
                                                                   __mmask16 k, __m512 *d,
                                                                   __m512i *g) {
  if (at >= lo && at + 16 <= hi) {
    *d = _mm512_loadu_ps(dy + at), *g = _mm512_loadu_si512(mask + at);
  } else {
    *d = _mm512_maskz_loadu_ps(k, dy + at), *g = _mm512_maskz_loadu_epi32(k, mask + at);
  }
}

/* Columns [c0, c0 + 32) of an input row from the sums at its even and odd
 * columns; `avail` columns are left in the row. */
__attribute__((target("avx512f"))) static inline void store_interleaved(float *row, int avail,
                                                                        __m512 even, __m512 odd) {
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  __m512 a = _mm512_permutex2var_ps(even, first, odd),
         b = _mm512_permutex2var_ps(even, second, odd);
  if (avail >= 16)
    _mm512_storeu_ps(row, a);
  else
    _mm512_mask_storeu_ps(row, (__mmask16)((1u << avail) - 1), a);
  if (avail >= 32)
    _mm512_storeu_ps(row + 16, b);
  else if (avail > 16)
    _mm512_mask_storeu_ps(row + 16, (__mmask16)((1u << (avail - 16)) - 1), b);
}

/* The backward of max_rows_s2_avx512 over a whole plane whose windows are all
 * whole (stride 2, k x k, k = 2 or 3): dx = the sum of dy over the windows
 * whose maximum each input was, as backward_planes' scatter makes it, in its
 * order (windows in raster order), so the same bits. But gathered: each input
 * row is summed in registers, 32 columns (16 windows) at a time, from the
 * output rows over it, and stored once, with no clearing before and no
 * read-modify-write after (AlexNet-R's pool1 at one thread: 9.1 -> 6.0 ms,
 * near memory speed). Output rows are read once each, in order; with
 * k = 3 the row under two of them (2 oy + 2) is carried to the next. The
 * candidates of window j are columns 2j, 2j + 1 (and 2j + 2, window j + 1's
 * first, for k = 3); masks compare the argmax with each. */
__attribute__((target("avx512f"))) static void max_back_plane_s2_avx512(const float *dy,
                                                                        const int *mask, int lo,
                                                                        int hi, int h, int w, int k,
                                                                        int oh, int ow, float *dx) {
  const __m512i two = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512 zero = _mm512_setzero_ps();
  int covered = 2 * oh + (k == 3);         /* input rows under some window */
  for (int j0 = 0; 2 * j0 < w; j0 += 16) { /* to the row's end: columns past the windows get 0 */
    int c0 = 2 * j0, m = imax(imin(ow - j0, 16), 0);
    __mmask16 kout = (__mmask16)((1u << m) - 1);
    __mmask16 kprev = (__mmask16)(((unsigned)kout << 1 | (j0 > 0 && j0 <= ow)) & 0xffff);
    __m512 carry_even = zero, carry_odd = zero;
    for (int oy = 0; oy < oh; oy++) {
      int at = oy * ow + j0;
      __m512 d, dp = zero;
      __m512i g, gp = _mm512_setzero_si512();
      load_outputs(dy, mask, at, lo, hi, kout, &d, &g);
      if (k == 3) load_outputs(dy, mask, at - 1, lo, hi, kprev, &dp, &gp);
      for (int r = 0; r < k; r++) {
        int iy = 2 * oy + r;
        __m512i col = _mm512_add_epi32(two, _mm512_set1_epi32(iy * w + c0)); /* column 2j */
        __m512 even = r == 0 ? carry_even : zero, odd = r == 0 ? carry_odd : zero;
        if (k == 3) /* window j - 1's third column is 2j: it comes first in raster order */
          even = _mm512_mask_add_ps(even, _mm512_mask_cmpeq_epi32_mask(kprev, gp, col), even, dp);
        __mmask16 first = _mm512_mask_cmpeq_epi32_mask(kout, g, col);
        __mmask16 second =
            _mm512_mask_cmpeq_epi32_mask(kout, g, _mm512_add_epi32(col, _mm512_set1_epi32(1)));
        even = _mm512_mask_add_ps(even, first, even, d);
        odd = _mm512_mask_add_ps(odd, second, odd, d);
        if (r == 2) /* also under output row oy + 1 */
          carry_even = even, carry_odd = odd;
        else
          store_interleaved(dx + (size_t)iy * w + c0, w - c0, even, odd);
      }
    }
    if (k == 3) store_interleaved(dx + (size_t)(2 * oh) * w + c0, w - c0, carry_even, carry_odd);
    for (int iy = covered; iy < h; iy++)
      store_interleaved(dx + (size_t)iy * w + c0, w - c0, zero, zero);
  }
}
#else
void dl_pooling_portable_only(int on) { (void)on; }
static int use_avx512(void) { return 0; }
static void max_rows_s2_avx512(const float *x, int plane, int w, int k, int rows, int n, int ow,
                               float *y, int *mask) {
  (void)x, (void)plane, (void)w, (void)k, (void)rows, (void)n, (void)ow, (void)y, (void)mask;
}
static void max_back_plane_s2_avx512(const float *dy, const int *mask, int lo, int hi, int h, int w,
                                     int k, int oh, int ow, float *dx) {
  (void)dy, (void)mask, (void)lo, (void)hi, (void)h, (void)w, (void)k, (void)oh, (void)ow, (void)dx;
}
#endif

/* y = max over each window of one plane x (h, w), mask = where it is. Whole
 * 2x2 stride 2 and 3x3 stride 2 windows (the common kernels) take the fast
 * paths; the rest, and windows clipped by padding or ceil rounding, max_window. */
static void max_plane(const pool_priv *s, const float *x, float *y, int *mask) {
  int fast = s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && !s->ph && !s->pw;
  int fy = fast ? s->h / 2 : 0, fx = fast ? s->w / 2 : 0; /* whole 2x2 windows */
  int s2 = s->kh == 3 && s->kw == 3 && s->sh == 2 && s->sw == 2 && !s->ph && !s->pw &&
           s->w >= 3 && s->h >= 3 && s->w <= S2_ROW_MAX;
  int wy = s2 ? imin((s->h - 3) / 2 + 1, s->oh) : 0, wx = s2 ? imin((s->w - 3) / 2 + 1, s->ow) : 0;
  int vec = use_avx512();
  if (wy && vec)
    max_rows_s2_avx512(x, s->h * s->w, s->w, 3, wy, wx, s->ow, y, mask);
  else if (wy)
    max_rows_3x3s2(x, s->w, wy, wx, s->ow, y, mask);
  if (fy && fx && vec) max_rows_s2_avx512(x, s->h * s->w, s->w, 2, fy, fx, s->ow, y, mask);
  for (int oy = 0; oy < s->oh; oy++, y += s->ow, mask += s->ow) {
    int ox = oy < wy ? wx : 0;
    if (oy < fy) {
      ox = fx;
      if (!vec) max_row_2x2(x, s->w, 2 * oy, ox, y, mask);
    }
    for (; ox < s->ow; ox++)
      max_window(s, x, oy, ox, y + ox, mask + ox);
  }
}

/* Whether every window lies inside the input (no padding, none cut by ceil
 * rounding): the area is then kh x kw everywhere and no window is clipped. */
static int windows_whole(const pool_priv *s) {
  return !s->ph && !s->pw && (s->oh - 1) * s->sh + s->kh <= s->h &&
         (s->ow - 1) * s->sw + s->kw <= s->w;
}

/* ave_plane for whole 3 x 3 windows (AlexNet-R's pool3): the same sums in the
 * same order, unrolled (one window's two-deep loop of three cost more than
 * its nine adds: 3.0 -> 1.35 ms at one thread). */
static void ave_plane_3x3(const pool_priv *s, const float *x, float *y) {
  int w = s->w;
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++) {
      const float *a = x + (size_t)oy * s->sh * w + (size_t)ox * s->sw, *b = a + w, *c = b + w;
      float sum = 0;
      sum += a[0], sum += a[1], sum += a[2];
      sum += b[0], sum += b[1], sum += b[2];
      sum += c[0], sum += c[1], sum += c[2];
      *y++ = sum / 9.0f;
    }
}

static void ave_plane(const pool_priv *s, const float *x, float *y) {
  if (s->kh == 3 && s->kw == 3 && windows_whole(s)) {
    ave_plane_3x3(s, x, y);
    return;
  }
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, y++) {
      pool_win win = window(s, oy, ox);
      float sum = 0;
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++)
          sum += x[iy * s->w + ix];
      *y = sum / (float)win.area;
    }
}

/* Planes are independent, so the threads take whole planes. */
typedef struct {
  const pool_priv *s;
  int max;
  const float *x, *dy; /* forward: x (planes, h, w); backward: dy (planes, oh, ow) */
  float *y, *dx;       /* forward: y (planes, oh, ow); backward: dx (planes, h, w) */
} pool_job;

static void forward_planes(void *arg, int c0, int c1) {
  const pool_job *j = arg;
  const pool_priv *s = j->s;
  size_t in = (size_t)s->h * s->w, out = (size_t)s->oh * s->ow;
  for (int c = c0; c < c1; c++) {
    if (j->max)
      max_plane(s, j->x + c * in, j->y + c * out, s->mask + c * out);
    else
      ave_plane(s, j->x + c * in, j->y + c * out);
  }
}

/* ---- the blocked layout (core/blob.h): blocks of 16 planes, interleaved ---
 * A block is (h, w, 16): the windows are the plain layout's, each now 16
 * lanes wide, and every lane gets the same values, masks and adds in the same
 * order as its plane would in the plain layout, so results are bit for bit
 * the same (tests/test_pooling.c). */

/* max_window over the 16 lanes of every output of one block. */
static void max_block(const pool_priv *s, const float *x, float *y, int *mask) {
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, y += DL_BLOCK, mask += DL_BLOCK) {
      pool_win win = window(s, oy, ox);
      int first = win.h0 * s->w + win.w0, arg[DL_BLOCK];
      float best[DL_BLOCK];
      for (int c = 0; c < DL_BLOCK; c++)
        best[c] = x[(size_t)first * DL_BLOCK + c], arg[c] = first;
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++) {
          int at = iy * s->w + ix;
          const float *v = x + (size_t)at * DL_BLOCK;
          for (int c = 0; c < DL_BLOCK; c++) {
            int greater = v[c] > best[c];
            best[c] = greater ? v[c] : best[c];
            arg[c] = greater ? at : arg[c];
          }
        }
      for (int c = 0; c < DL_BLOCK; c++)
        y[c] = best[c], mask[c] = arg[c];
    }
}

static void ave_block(const pool_priv *s, const float *x, float *y) {
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, y += DL_BLOCK) {
      pool_win win = window(s, oy, ox);
      float sum[DL_BLOCK] = {0};
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++)
          for (int c = 0; c < DL_BLOCK; c++)
            sum[c] += x[(size_t)(iy * s->w + ix) * DL_BLOCK + c];
      for (int c = 0; c < DL_BLOCK; c++)
        y[c] = sum[c] / (float)win.area;
    }
}

/* dx (cleared) += dy at each lane's argmax, or dy / area over the window,
 * output by output as the plain layout's scatter adds. Max adds 0 to the
 * window's other places, which leaves them as they are (dx starts at +0, so
 * never holds -0), and keeps the loop free of branches. */
static void back_block(const pool_priv *s, int max, const float *dy, const int *mask, float *dx) {
  memset(dx, 0, (size_t)s->h * s->w * DL_BLOCK * sizeof(float));
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, dy += DL_BLOCK, mask += DL_BLOCK) {
      pool_win win = window(s, oy, ox);
      float g[DL_BLOCK];
      for (int c = 0; c < DL_BLOCK; c++)
        g[c] = max ? dy[c] : dy[c] / (float)win.area;
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++) {
          int at = iy * s->w + ix;
          float *d = dx + (size_t)at * DL_BLOCK;
          for (int c = 0; c < DL_BLOCK; c++)
            d[c] += !max || mask[c] == at ? g[c] : 0.0f;
        }
    }
}

/* The same three with AVX-512, a lane per channel, the window's values and
 * argmax kept in registers (written portably above, GCC kept them on the
 * stack: AlexNet-R's pool1 took 38 ms instead of 8). Same compares, adds and
 * divisions, so the same bits. */
#if defined(__x86_64__) && defined(__GNUC__)
/* Output (oy, ox)'s window; whole windows skip window()'s clipping. */
static inline pool_win block_window(const pool_priv *s, int whole, int oy, int ox) {
  if (!whole) return window(s, oy, ox);
  int h0 = oy * s->sh, w0 = ox * s->sw;
  return (pool_win){h0, h0 + s->kh, w0, w0 + s->kw, s->kh * s->kw};
}

/* Loops over a window's nine places, unrolled so that its values stay in
 * registers (in a loop GCC kept them on the stack: 3x slower). */
#define UNROLL_9 _Pragma("GCC unroll 9")

/* A whole 3 x 3 window's nine places, by row, as offsets from its first. */
typedef struct {
  __m512i at[9];
} offsets_3x3;

__attribute__((target("avx512f"))) static offsets_3x3 offsets(int w) {
  offsets_3x3 o;
  for (int p = 0; p < 9; p++)
    o.at[p] = _mm512_set1_epi32(p / 3 * w + p % 3);
  return o;
}

/* max_window of whole 3 x 3 windows: the max as the sequential compares make
 * it (maxps(v, best) is v > best ? v : best, NaN seed kept), then the argmax
 * as the first place equal to it, found backwards: no chain through masks
 * (the general loop below took 19 ms a pass over AlexNet-R's pool1, this 10,
 * about the memory's time). */
__attribute__((target("avx512f"))) static void max_block_3x3(const pool_priv *s, const float *x,
                                                             float *y, int *mask) {
  const size_t row = (size_t)s->w * DL_BLOCK;
  const offsets_3x3 o = offsets(s->w);
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, y += DL_BLOCK, mask += DL_BLOCK) {
      int first = oy * s->sh * s->w + ox * s->sw;
      const float *a = x + (size_t)first * DL_BLOCK;
      __m512 v[9];
      UNROLL_9 for (int p = 0; p < 9; p++) v[p] =
          _mm512_loadu_ps(a + p / 3 * row + p % 3 * DL_BLOCK);
      __m512 best = v[0];
      UNROLL_9 for (int p = 1; p < 9; p++) best = _mm512_max_ps(v[p], best);
      __m512i off = _mm512_setzero_si512();
      UNROLL_9 for (int p = 8; p > 0; p--) off =
          _mm512_mask_mov_epi32(off, _mm512_cmp_ps_mask(v[p], best, _CMP_EQ_OQ), o.at[p]);
      off = _mm512_maskz_mov_epi32(~_mm512_cmp_ps_mask(v[0], best, _CMP_EQ_OQ), off);
      _mm512_storeu_ps(y, best);
      _mm512_storeu_si512(mask, _mm512_add_epi32(off, _mm512_set1_epi32(first)));
    }
}

__attribute__((target("avx512f"))) static void max_block_avx512(const pool_priv *s, const float *x,
                                                                float *y, int *mask) {
  int whole = windows_whole(s);
  if (whole && s->kh == 3 && s->kw == 3) {
    max_block_3x3(s, x, y, mask);
    return;
  }
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, y += DL_BLOCK, mask += DL_BLOCK) {
      pool_win win = block_window(s, whole, oy, ox);
      int first = win.h0 * s->w + win.w0;
      __m512 best = _mm512_loadu_ps(x + (size_t)first * DL_BLOCK);
      __m512i arg = _mm512_set1_epi32(first);
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++) {
          int at = iy * s->w + ix;
          __m512 v = _mm512_loadu_ps(x + (size_t)at * DL_BLOCK);
          __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
          best = _mm512_mask_mov_ps(best, gt, v);
          arg = _mm512_mask_mov_epi32(arg, gt, _mm512_set1_epi32(at));
        }
      _mm512_storeu_ps(y, best);
      _mm512_storeu_si512(mask, arg);
    }
}

__attribute__((target("avx512f"))) static void ave_block_avx512(const pool_priv *s, const float *x,
                                                                float *y) {
  int whole = windows_whole(s);
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, y += DL_BLOCK) {
      pool_win win = block_window(s, whole, oy, ox);
      __m512 sum = _mm512_setzero_ps();
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++)
          sum = _mm512_add_ps(sum, _mm512_loadu_ps(x + (size_t)(iy * s->w + ix) * DL_BLOCK));
      _mm512_storeu_ps(y, _mm512_div_ps(sum, _mm512_set1_ps((float)win.area)));
    }
}

/* back_block of max pooling over whole 3 x 3 windows: the argmax compared
 * as an offset with the nine constant ones. */
__attribute__((target("avx512f"))) static void
max_back_block_3x3(const pool_priv *s, const float *dy, const int *mask, float *dx) {
  const size_t row = (size_t)s->w * DL_BLOCK;
  const offsets_3x3 o = offsets(s->w);
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, dy += DL_BLOCK, mask += DL_BLOCK) {
      int first = oy * s->sh * s->w + ox * s->sw;
      float *a = dx + (size_t)first * DL_BLOCK;
      __m512 g = _mm512_loadu_ps(dy);
      __m512i off = _mm512_sub_epi32(_mm512_loadu_si512(mask), _mm512_set1_epi32(first));
      UNROLL_9 for (int p = 0; p < 9; p++) {
        float *d = a + p / 3 * row + p % 3 * DL_BLOCK;
        __m512 v = _mm512_loadu_ps(d);
        _mm512_storeu_ps(d, _mm512_mask_add_ps(v, _mm512_cmpeq_epi32_mask(off, o.at[p]), v, g));
      }
    }
}

__attribute__((target("avx512f"))) static void
back_block_avx512(const pool_priv *s, int max, const float *dy, const int *mask, float *dx) {
  int whole = windows_whole(s);
  memset(dx, 0, (size_t)s->h * s->w * DL_BLOCK * sizeof(float));
  if (max && whole && s->kh == 3 && s->kw == 3) {
    max_back_block_3x3(s, dy, mask, dx);
    return;
  }
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, dy += DL_BLOCK, mask += DL_BLOCK) {
      pool_win win = block_window(s, whole, oy, ox);
      __m512 g = _mm512_loadu_ps(dy);
      __m512i arg = _mm512_loadu_si512(mask);
      if (!max) g = _mm512_div_ps(g, _mm512_set1_ps((float)win.area));
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++) {
          int at = iy * s->w + ix;
          float *d = dx + (size_t)at * DL_BLOCK;
          __mmask16 k = max ? _mm512_cmpeq_epi32_mask(arg, _mm512_set1_epi32(at)) : 0xffff;
          _mm512_storeu_ps(d, _mm512_mask_add_ps(_mm512_loadu_ps(d), k, _mm512_loadu_ps(d), g));
        }
    }
}
#else
static void max_block_avx512(const pool_priv *s, const float *x, float *y, int *mask) {
  (void)s, (void)x, (void)y, (void)mask;
}
static void ave_block_avx512(const pool_priv *s, const float *x, float *y) {
  (void)s, (void)x, (void)y;
}
static void back_block_avx512(const pool_priv *s, int max, const float *dy, const int *mask,
                              float *dx) {
  (void)s, (void)max, (void)dy, (void)mask, (void)dx;
}
#endif

/* A block's 16 lanes of n outputs (n, 16) from or to its 16 planes of the
 * plain layout (16, n): a blocked x with a plain y, as before an
 * InnerProduct (AlexNet-R's pool3), so that the convolution before needs no
 * reorder. */
static void lanes_to_planes(const float *lanes, size_t n, float *planes) {
  for (size_t o = 0; o < n; o++)
    for (int c = 0; c < DL_BLOCK; c++)
      planes[c * n + o] = lanes[o * DL_BLOCK + c];
}

static void planes_to_lanes(const float *planes, size_t n, float *lanes) {
  for (size_t o = 0; o < n; o++)
    for (int c = 0; c < DL_BLOCK; c++)
      lanes[o * DL_BLOCK + c] = planes[c * n + o];
}

/* One block's forward or backward. Its outputs and their gradients are the
 * top's own when the top is blocked; for a plain top they pass through the
 * part's scratch (`lanes`), one plane per lane. Either way the block's region
 * of the top starts at b * out. */
static void one_block(const pool_job *j, int blocked_top, int backward, size_t b, float *lanes) {
  const pool_priv *s = j->s;
  size_t ohw = (size_t)s->oh * s->ow, in = (size_t)s->h * s->w * DL_BLOCK, out = ohw * DL_BLOCK;
  int vec = use_avx512();
  int *mask = s->mask + b * out; /* forward writes it, backward reads it */
  if (backward) {
    const float *dy = j->dy + b * out;
    if (!blocked_top) planes_to_lanes(dy, ohw, lanes), dy = lanes;
    (vec ? back_block_avx512 : back_block)(s, j->max, dy, mask, j->dx + b * in);
    return;
  }
  float *y = blocked_top ? j->y + b * out : lanes;
  if (j->max)
    (vec ? max_block_avx512 : max_block)(s, j->x + b * in, y, mask);
  else
    (vec ? ave_block_avx512 : ave_block)(s, j->x + b * in, y);
  if (!blocked_top) lanes_to_planes(lanes, ohw, j->y + b * out);
}

typedef struct {
  const pool_job *j;
  int blocked_top, backward;
} blocks_job;

static void blocks_part(void *arg, int p, int nparts) {
  const blocks_job *bj = arg;
  const pool_priv *s = bj->j->s;
  size_t blocks = (size_t)s->planes / DL_BLOCK;
  float *lanes = s->scratch + (size_t)p * s->oh * s->ow * DL_BLOCK;
  for (size_t b = blocks * p / nparts; b < blocks * (p + 1) / nparts; b++)
    one_block(bj->j, bj->blocked_top, bj->backward, b, lanes);
}

/* The blocks across the pool, a scratch for each part. */
static void run_blocks(const pool_job *j, int blocked_top, int backward) {
  int parts = dl_parallel_threads(), blocks = j->s->planes / DL_BLOCK;
  if (parts > j->s->scratch_parts) parts = j->s->scratch_parts;
  if (parts > blocks) parts = blocks;
  blocks_job bj = {j, blocked_top, backward};
  dl_parallel_run(parts, blocks_part, &bj);
}

/* Max and average pooling work on a blocked x, and make a blocked y from it
 * or a plain one. */
static unsigned pool_blocked_ok(const dl_layer *l, dl_blob *const *bottom, int nb,
                                dl_blob *const *top, int nt) {
  (void)l, (void)nb, (void)top, (void)nt;
  return bottom[0]->ndim == 4 && bottom[0]->shape[1] % DL_BLOCK == 0
             ? DL_BLOCKED_BOTTOM | DL_BLOCKED_TOP | DL_BLOCKED_TOP_FOLLOWS
             : 0;
}

static dl_status pool_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                              int nt) {
  (void)nb, (void)nt;
  const pool_param *p = l->param;
  const pool_priv *s = l->priv;
  DL_ASSERT(bottom[0]->count == (size_t)s->planes * s->h * s->w); /* reshape ran */
  DL_ASSERT(bottom[0]->blocked || !top[0]->blocked);              /* pool_blocked_ok */
  pool_job j = {s, p->pool == POOL_MAX, dl_cdata(bottom[0]), NULL, dl_data(top[0]), NULL};
  if (bottom[0]->blocked)
    run_blocks(&j, top[0]->blocked, 0);
  else
    dl_parallel_for(s->planes, 8, forward_planes, &j);
  return DL_OK;
}

/* ---- backward ----------------------------------------------------------- */

/* dx[window] += dy / area for each output of one plane. Whole 3 x 3 windows
 * unrolled, the same adds in the same order (AlexNet-R's pool3 at one
 * thread: 3.8 -> 2.65 ms). */
static void ave_plane_backward(const pool_priv *s, const float *dy, float *dx) {
  if (s->kh == 3 && s->kw == 3 && windows_whole(s)) {
    int w = s->w;
    for (int oy = 0; oy < s->oh; oy++)
      for (int ox = 0; ox < s->ow; ox++, dy++) {
        float g = *dy / 9.0f, *a = dx + (size_t)oy * s->sh * w + (size_t)ox * s->sw;
        for (int r = 0; r < 3; r++, a += w)
          a[0] += g, a[1] += g, a[2] += g;
      }
    return;
  }
  for (int oy = 0; oy < s->oh; oy++)
    for (int ox = 0; ox < s->ow; ox++, dy++) {
      pool_win win = window(s, oy, ox);
      float g = *dy / (float)win.area;
      for (int iy = win.h0; iy < win.h1; iy++)
        for (int ix = win.w0; ix < win.w1; ix++)
          dx[iy * s->w + ix] += g;
    }
}

/* Whether max_back_plane_s2_avx512 takes the planes: AVX-512, stride 2, a
 * 2 x 2 or 3 x 3 window, every window whole (no padding, no window cut by
 * ceil rounding: those take the scatter below), and rows of at least 12
 * windows. With fewer most lanes idle: AlexNet-R's pool2 (7 a row) took 3.1
 * ms gathered against 2.2 by the scatter, which is at memory speed there,
 * while pool1 (15 a row) took 6.0 against 9.1 (one thread). */
static int gathered_backward(const pool_priv *s) {
  int k = s->kh;
  return use_avx512() && (k == 2 || k == 3) && s->kw == k && s->sh == 2 && s->sw == 2 &&
         windows_whole(s) && s->ow >= 12 && (size_t)s->planes * s->oh * s->ow <= INT_MAX;
}

/* max: dx[argmax] += dy; ave: dx[window] += dy / area. dx is cleared first
 * (bottom diffs are overwritten), then overlapping windows add up. */
static void backward_planes(void *arg, int c0, int c1) {
  const pool_job *j = arg;
  const pool_priv *s = j->s;
  size_t in = (size_t)s->h * s->w, out = (size_t)s->oh * s->ow;
  if (j->max && gathered_backward(s)) {
    for (int c = c0; c < c1; c++) /* dy and the mask are readable over all planes */
      max_back_plane_s2_avx512(j->dy + c * out, s->mask + c * out, -(int)(c * out),
                               (int)((s->planes - c) * out), s->h, s->w, s->kh, s->oh, s->ow,
                               j->dx + c * in);
    return;
  }
  memset(j->dx + c0 * in, 0, (size_t)(c1 - c0) * in * sizeof(float));
  for (int c = c0; c < c1; c++) {
    if (j->max) {
      const int *mask = s->mask + c * out; /* (oh, ow) */
      for (size_t k = 0; k < out; k++)
        j->dx[c * in + mask[k]] += j->dy[c * out + k];
    } else {
      ave_plane_backward(s, j->dy + c * out, j->dx + c * in);
    }
  }
}

static void pool_backward(dl_layer *l, dl_blob *const *top, int nt, const int *propagate_down,
                          dl_blob *const *bottom, int nb) {
  (void)nt, (void)nb;
  if (!propagate_down[0]) return;
  const pool_param *p = l->param;
  const pool_priv *s = l->priv;
  pool_job j = {s, p->pool == POOL_MAX, NULL, dl_cdiff(top[0]), NULL, dl_diff(bottom[0])};
  if (bottom[0]->blocked)
    run_blocks(&j, top[0]->blocked, 1);
  else
    dl_parallel_for(s->planes, 8, backward_planes, &j);
}

const dl_layer_ops dl_layer_pooling = {
    .type = "Pooling",
    .summary = "max or average pooling over spatial windows (Caffe's ceil rounding or floor)",
    .schema = pool_schema,
    .param_size = sizeof(pool_param),
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .bottoms_doc = "x: N x C x H x W",
    .tops_doc = "y: N x C x H' x W', H' = ceil or floor((H + 2 pad - kernel) / stride) + 1",
    .setup = pool_setup,
    .reshape = pool_reshape,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = pool_destroy,
    .blocked_ok = pool_blocked_ok,
#ifdef DL_GPU
    .forward_gpu = dl_pooling_forward_gpu,
    .backward_gpu = dl_pooling_backward_gpu,
#endif
};
