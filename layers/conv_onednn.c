/* Convolution on oneDNN's CPU primitives: the `engine: onednn` of layers/conv.c,
 * which stays the readable reference (tests/test_conv_onednn.c compares the two).
 *
 * Layouts. The caller's arrays are NCHW, or nChw16c where the net chose the
 * blocked layout for the blob (d->x_blocked, d->y_blocked), and OIHW (goihw
 * with groups); each primitive is created with dnnl_format_tag_any and picks
 * its own (nChw16c, OIhw16i16o, ...), and a reorder primitive with its
 * buffer, made at reshape, converts where the two differ. Everything is
 * created and allocated at reshape, including a user-mode scratchpad: an
 * iteration only sets data handles and executes.
 *
 * Threads. Debian's libdnnl2 2.6 is built with the OpenMP CPU runtime (GNU
 * libgomp: dnnl_version()->cpu_runtime is DNNL_RUNTIME_OMP, and the library
 * links libgomp.so.1); the threadpool interface is not in that build. Left
 * alone, every primitive would start an OpenMP team of all the cores, whatever
 * --threads says, and libgomp's threads spin-wait after each region while our
 * pool's threads want the same cores. So oneDNN never runs threaded here: each
 * thread of our pool takes a slice of the batch and runs its own primitives on
 * it, with its OpenMP team size set to one (omp_set_num_threads(1) in that
 * thread, before primitives are created and before they run), so libgomp never
 * starts a thread. --threads is then exactly the number of threads, and the
 * weight and bias gradients are each slice's own, summed in slice order (the
 * results are the same for the same thread count). */
#include "layers/conv_onednn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/status.h"

static int pretend_missing;

void dl_onednn_pretend_missing(int missing) { pretend_missing = missing; }

#ifndef DL_ONEDNN

int dl_onednn_available(void) { return 0; }

const char *dl_onednn_info(void) { return "none (built without oneDNN)"; }

int dl_onednn_blocks_of_16(void) { return 0; }

dl_status dl_conv_onednn_reshape(dl_conv_onednn **e, const dl_conv_desc *d, char *err,
                                 size_t errlen) {
  (void)e, (void)d;
  snprintf(err, errlen, "this dltrain was built without oneDNN");
  return DL_ECONFIG;
}

void dl_conv_onednn_forward(dl_conv_onednn *e, const float *x, const float *w, const float *bias,
                            float *y) {
  (void)e, (void)x, (void)w, (void)bias, (void)y;
  DL_ASSERT(!"oneDNN engine without oneDNN");
}

void dl_conv_onednn_backward(dl_conv_onednn *e, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db) {
  (void)e, (void)x, (void)w, (void)dy, (void)dx, (void)dw, (void)db;
  DL_ASSERT(!"oneDNN engine without oneDNN");
}

void dl_conv_onednn_forget(dl_conv_onednn *e) { (void)e; }

void dl_conv_onednn_free(dl_conv_onednn *e) { (void)e; }

#else

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>

int dl_onednn_available(void) { return !pretend_missing; }

int dl_onednn_blocks_of_16(void) {
  return dl_onednn_available() &&
         (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
}

const char *dl_onednn_info(void) {
  static char buf[160];
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (CPU runtime %s, run single-threaded per pool thread)",
           v->major, v->minor, v->patch, dnnl_runtime2str(v->cpu_runtime));
  return buf;
}

/* The CPU engine and one stream per pool thread, made once per process. */
static dnnl_engine_t engine;
static dnnl_stream_t *streams;
static int nstreams;

/* Failure of a call that cannot fail once reshape succeeded: a bug. */
#define DNNL_CHECK(call)                                                                           \
  do {                                                                                             \
    dnnl_status_t st_ = (call);                                                                    \
    if (st_ != dnnl_success) {                                                                     \
      fprintf(stderr, "oneDNN: %s: %s\n", #call, dnnl_status2str(st_));                            \
      DL_ASSERT(st_ == dnnl_success);                                                              \
    }                                                                                              \
  } while (0)

/* A slice's buffers, each shared by its chunk sizes (used one at a time). B_X
 * belongs to the layer: it keeps forward's reordered x for backward. The others
 * hold nothing from one call to the next, and since layers run one at a time
 * they are the process's, one set per pool thread, as large as the largest
 * layer needs: a Winograd weight gradient's scratchpad alone is 60 MiB for
 * AlexNet-S's conv4, which every layer keeping its own would add up. */
enum { B_X, B_Y, B_DYD, B_DX, B_XW, B_DYW, B_DW, B_SCRATCH, NBUF };

typedef struct {
  void *buf[NBUF]; /* B_X unused */
  size_t size[NBUF];
} shared_bufs;

static shared_bufs *shared; /* by pool thread */
static int nshared;
static dl_conv_onednn *engines; /* all of them, to point at the buffers when these move */

/* One argument of a primitive: the caller's array (`user`: data handle set per
 * call, or fixed at reshape) and what the primitive reads or writes (`mem`:
 * user itself, or one of the slice's buffers in the primitive's layout, with a
 * reorder between). */
typedef struct {
  dnnl_memory_t user, mem;
  dnnl_primitive_t reorder; /* user -> mem for inputs, mem -> user for outputs; NULL: mem is user */
  int buf;                  /* the slice buffer behind mem (-1: none) */
  void *own;                /* or a buffer of its own (the weights) */
} darg;

/* The primitives for chunks of nb images. */
typedef struct {
  int nb;
  dnnl_primitive_t fwd, bwd_data, bwd_weights;
  darg x, w, y;         /* forward: src, weights, dst */
  darg dy_d, w_d, dx;   /* backward data: diff_dst, weights, diff_src */
  darg x_w, dy_w, dw;   /* backward weights: src, diff_dst, diff_weights (+= into dw_part) */
  int x_w_shares_x;     /* backward weights can read forward's reordered x */
  int dy_w_shares_dy_d; /* backward weights reads backward data's reordered dy */
  dnnl_memory_t bias;   /* the caller's bias (handle per call); NULL without bias */
  dnnl_memory_t db;     /* diff bias, into db_chunk */
  dnnl_memory_t scratch;
  int w_ready, w_d_ready; /* this call's weights are reordered */
} dset;

/* One pool thread's slice of the batch: images [n0, n0 + nb) in chunks. */
typedef struct {
  int index; /* the pool thread's: which shared buffers */
  int n0, nb, chunk;
  dset full, rest;   /* chunks of `chunk` images, and the last of nb % chunk (rest.nb 0: none) */
  size_t size[NBUF]; /* what the slice needs */
  void *x_buf;       /* B_X */
  float *dw_part;    /* (m, c / group, kh, kw): this slice's weight gradient; NULL for the
                        first slice, which adds into the layer's dw directly */
  float *db_part;    /* (m) */
  float *db_chunk;   /* (m) */
} dpart;

struct dl_conv_onednn {
  dl_conv_onednn *next; /* in `engines` */
  dl_conv_desc d;
  int threads; /* the pool size it was made for */
  int nparts;
  dpart *parts;
  size_t nw;                          /* weights count */
  const float *x_fwd;                 /* the x the last forward left reordered (NULL: none) */
  const float *cx, *cw, *cbias, *cdy; /* the current call's arrays */
  float *cy, *cdx, *cdw;
};

static void *alloc_aligned(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? (bytes + 63) / 64 * 64 : 64)) return NULL;
  return p;
}

static void darg_free(darg *a) {
  if (a->reorder) dnnl_primitive_destroy(a->reorder);
  if (a->mem && a->mem != a->user) dnnl_memory_destroy(a->mem);
  if (a->user) dnnl_memory_destroy(a->user);
  free(a->own);
  memset(a, 0, sizeof *a);
}

static void set_free(dset *t) {
  darg *args[] = {&t->x, &t->w, &t->y, &t->dy_d, &t->w_d, &t->dx, &t->x_w, &t->dy_w, &t->dw};
  for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
    darg_free(args[i]);
  dnnl_primitive_t prims[] = {t->fwd, t->bwd_data, t->bwd_weights};
  for (int i = 0; i < 3; i++)
    if (prims[i]) dnnl_primitive_destroy(prims[i]);
  dnnl_memory_t mems[] = {t->bias, t->db, t->scratch};
  for (int i = 0; i < 3; i++)
    if (mems[i]) dnnl_memory_destroy(mems[i]);
  memset(t, 0, sizeof *t);
}

static void part_free(dpart *p) {
  set_free(&p->full);
  set_free(&p->rest);
  free(p->x_buf);
  free(p->dw_part);
  free(p->db_part);
  free(p->db_chunk);
  memset(p, 0, sizeof *p);
}

static void parts_free(dl_conv_onednn *e) {
  for (int i = 0; i < e->nparts; i++)
    part_free(&e->parts[i]);
  free(e->parts);
  e->parts = NULL;
  e->nparts = 0;
}

void dl_conv_onednn_free(dl_conv_onednn *e) {
  if (!e) return;
  parts_free(e);
  for (dl_conv_onednn **q = &engines; *q; q = &(*q)->next)
    if (*q == e) {
      *q = e->next;
      break;
    }
  free(e);
  if (engines) return;
  for (int i = 0; i < nshared; i++) /* the last one gives the shared buffers back */
    for (int k = 0; k < NBUF; k++)
      free(shared[i].buf[k]);
  free(shared);
  shared = NULL;
  nshared = 0;
}

/* ---- reshape: primitives, reorders, buffers --------------------------------- */

/* What reshape is building, and the first error. */
typedef struct {
  char *err;
  size_t errlen;
  dl_status st;
  dnnl_primitive_attr_t attr;     /* user-mode scratchpad */
  dnnl_primitive_attr_t attr_sum; /* the same, and the reorder adds to its output */
  dpart *p;                       /* the slice being built */
  int threads;                    /* slices, each with its own scratchpad */
} build;

static int failed(build *b, dnnl_status_t st, const char *what) {
  if (st == dnnl_success) return 0;
  if (!b->st) {
    snprintf(b->err, b->errlen, "oneDNN: %s: %s", what, dnnl_status2str(st));
    b->st = st == dnnl_out_of_memory ? DL_ENOMEM : DL_ECONFIG;
  }
  return 1;
}

static void need(build *b, int buf, size_t bytes) {
  if (bytes > b->p->size[buf]) b->p->size[buf] = bytes;
}

/* A primitive from pd (which is destroyed). */
static dnnl_primitive_t make_prim(build *b, dnnl_primitive_desc_t pd, const char *what) {
  dnnl_primitive_t prim = NULL;
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  need(b, B_SCRATCH, md ? dnnl_memory_desc_get_size(md) : 0);
  failed(b, dnnl_primitive_create(&prim, pd), what);
  dnnl_primitive_desc_destroy(pd);
  return prim;
}

/* a: the caller's layout `user_md` (data handle `handle`, or set per call when
 * NULL) as seen by a primitive wanting `prim_md`, in slice buffer `buf` (-1: a
 * buffer of its own) when the two differ or `sum` is set. An input (to_prim) is
 * reordered user -> mem, an output mem -> user; with `sum` the reorder adds
 * into user. */
static void make_arg(build *b, darg *a, const dnnl_memory_desc_t *user_md,
                     const dnnl_memory_desc_t *prim_md, int to_prim, void *handle, int buf,
                     int sum) {
  a->buf = -1;
  if (b->st) return;
  if (failed(b, dnnl_memory_create(&a->user, user_md, engine, handle ? handle : DNNL_MEMORY_NONE),
             "memory"))
    return;
  if (!sum && dnnl_memory_desc_equal(user_md, prim_md)) {
    a->mem = a->user;
    return;
  }
  size_t bytes = dnnl_memory_desc_get_size(prim_md);
  void *h = DNNL_MEMORY_NONE;
  if (buf >= 0) {
    a->buf = buf;
    need(b, buf, bytes);
  } else if (!(h = a->own = alloc_aligned(bytes))) {
    failed(b, dnnl_out_of_memory, "buffer");
    return;
  }
  if (failed(b, dnnl_memory_create(&a->mem, prim_md, engine, h), "memory")) return;
  dnnl_primitive_desc_t pd = NULL;
  const dnnl_memory_desc_t *from = to_prim ? user_md : prim_md, *to = to_prim ? prim_md : user_md;
  if (failed(b,
             dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine,
                                                sum ? b->attr_sum : b->attr),
             "reorder"))
    return;
  a->reorder = make_prim(b, pd, "reorder");
}

static void md_init(build *b, dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims,
                    dnnl_format_tag_t tag) {
  failed(b, dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag), "memory descriptor");
}

static const dnnl_memory_desc_t *query(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
  return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* oneDNN's `auto` takes Winograd for the weight gradient of 3x3 layers, whose
 * scratchpad can be large, and every pool thread has one sized for the
 * largest layer. Above SCRATCH_BUDGET over all threads the direct algorithm is
 * used instead, when oneDNN has one. AlexNet-S (46 MiB for conv3 and conv5, 62
 * for conv4): peak RSS at 2 threads 881 MiB with Winograd everywhere, 848 with
 * conv4 direct (50 MiB a thread), 768 with all three direct, the iteration
 * 1-2% and 3-4% slower. One thread keeps Winograd for conv4 (62 MiB <= 100). The
 * descriptor cd is rewritten. */
#define SCRATCH_BUDGET ((size_t)100 << 20)
static int scratch_fits(const_dnnl_primitive_desc_t pd, int threads) {
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  return !md || dnnl_memory_desc_get_size(md) * (size_t)threads <= SCRATCH_BUDGET;
}

static dnnl_primitive_desc_t direct_if_scratch_large(dnnl_primitive_desc_t pd,
                                                     dnnl_convolution_desc_t *cd,
                                                     const_dnnl_primitive_attr_t attr,
                                                     const_dnnl_primitive_desc_t hint,
                                                     int threads) {
  if (scratch_fits(pd, threads)) return pd;
  dnnl_primitive_desc_t direct = NULL;
  cd->alg_kind = dnnl_convolution_direct;
  if (dnnl_primitive_desc_create(&direct, cd, attr, engine, hint) != dnnl_success) return pd;
  dnnl_primitive_desc_destroy(pd);
  return direct;
}

/* oneDNN's `auto` weighs Winograd against direct by the batch it is given,
 * and our chunks are small (7 to 9 images for AlexNet-S's 13x13 layers, see
 * DL_ONEDNN_CHUNK_BYTES): it took Winograd for the forward and data gradient of
 * a 9-image chunk but not of the 7- and 8-image ones. Where both channel
 * counts are wide (>= 128) the forward and data gradient ask for Winograd
 * themselves, within the same scratchpad budget: AlexNet-S at 2 threads 261 ->
 * 248 ms (conv4's forward 15.3 -> 10.9 ms), at 1 thread conv4 fwd + bwd 83 ->
 * 62-68 ms; 3x3 stride 1 only (oneDNN has no other Winograd): elsewhere the
 * descriptor is refused and pd stays. cd is rewritten. */
static dnnl_primitive_desc_t winograd_if_fits(dnnl_primitive_desc_t pd, dnnl_convolution_desc_t *cd,
                                              const_dnnl_primitive_attr_t attr,
                                              const_dnnl_primitive_desc_t hint, int threads,
                                              const dl_conv_desc *d) {
  if (d->c / d->group < 128 || d->m / d->group < 128) return pd;
  dnnl_primitive_desc_t w = NULL;
  cd->alg_kind = dnnl_convolution_winograd;
  if (dnnl_primitive_desc_create(&w, cd, attr, engine, hint) != dnnl_success) return pd;
  if (!scratch_fits(w, threads)) {
    dnnl_primitive_desc_destroy(w);
    return pd;
  }
  dnnl_primitive_desc_destroy(pd);
  return w;
}

/* The three primitives for chunks of t->nb images, and their arguments. */
static void build_set(build *b, const dl_conv_desc *d, dpart *p, dset *t) {
  int g = d->group;
  dnnl_dims_t xd = {t->nb, d->c, d->h, d->w}, yd = {t->nb, d->m, d->oh, d->ow}, bd = {d->m};
  dnnl_dims_t wd = {d->m, d->c, d->kh, d->kw}, gwd = {g, d->m / g, d->c / g, d->kh, d->kw};
  dnnl_dims_t strides = {d->sh, d->sw}, dilates = {d->dh - 1, d->dw - 1};
  dnnl_dims_t pad_l = {d->ph, d->pw};
  /* Caffe rounds the output size down; oneDNN wants the right padding that
   * makes the last window end exactly (it may be negative). */
  dnnl_dims_t pad_r = {(d->oh - 1) * d->sh + d->dh * (d->kh - 1) + 1 - d->h - d->ph,
                       (d->ow - 1) * d->sw + d->dw * (d->kw - 1) + 1 - d->w - d->pw};
  dnnl_memory_desc_t x_user, y_user, w_user, b_md, x_any, y_any, w_any;
  md_init(b, &x_user, 4, xd, d->x_blocked ? dnnl_nChw16c : dnnl_nchw);
  md_init(b, &y_user, 4, yd, d->y_blocked ? dnnl_nChw16c : dnnl_nchw);
  md_init(b, &w_user, g > 1 ? 5 : 4, g > 1 ? gwd : wd, g > 1 ? dnnl_goihw : dnnl_oihw);
  md_init(b, &b_md, 1, bd, dnnl_x);
  md_init(b, &x_any, 4, xd, dnnl_format_tag_any);
  md_init(b, &y_any, 4, yd, dnnl_format_tag_any);
  md_init(b, &w_any, g > 1 ? 5 : 4, g > 1 ? gwd : wd, dnnl_format_tag_any);
  if (b->st) return;
  const dnnl_memory_desc_t *bias = d->bias ? &b_md : NULL;

  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
  if (failed(b,
             dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_training,
                                                        dnnl_convolution_auto, &x_any, &w_any, bias,
                                                        &y_any, strides, dilates, pad_l, pad_r),
             "convolution forward") ||
      failed(b, dnnl_primitive_desc_create(&fwd_pd, &cd, b->attr, engine, NULL),
             "convolution forward"))
    return;
  fwd_pd = winograd_if_fits(fwd_pd, &cd, b->attr, NULL, b->threads, d);
  dnnl_memory_desc_t src_fwd = *query(fwd_pd, dnnl_query_src_md), dy_d = y_user;
  make_arg(b, &t->x, &x_user, &src_fwd, 1, NULL, B_X, 0);
  make_arg(b, &t->w, &w_user, query(fwd_pd, dnnl_query_weights_md), 1, NULL, -1, 0);
  make_arg(b, &t->y, &y_user, query(fwd_pd, dnnl_query_dst_md), 0, NULL, B_Y, 0);
  if (d->bias && !b->st)
    failed(b, dnnl_memory_create(&t->bias, &b_md, engine, DNNL_MEMORY_NONE), "memory");

  if (!b->st &&
      !failed(b,
              dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_auto, &x_any,
                                                               &w_any, &y_any, strides, dilates,
                                                               pad_l, pad_r),
              "convolution backward data") &&
      !failed(b, dnnl_primitive_desc_create(&pd, &cd, b->attr, engine, fwd_pd),
              "convolution backward data")) {
    pd = winograd_if_fits(pd, &cd, b->attr, fwd_pd, b->threads, d);
    dy_d = *query(pd, dnnl_query_diff_dst_md);
    make_arg(b, &t->dy_d, &y_user, &dy_d, 1, NULL, B_DYD, 0);
    make_arg(b, &t->w_d, &w_user, query(pd, dnnl_query_weights_md), 1, NULL, -1, 0);
    make_arg(b, &t->dx, &x_user, query(pd, dnnl_query_diff_src_md), 0, NULL, B_DX, 0);
    t->bwd_data = make_prim(b, pd, "convolution backward data");
  }

  if (!b->st &&
      !failed(b,
              dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_auto,
                                                                  &x_any, &w_any, bias, &y_any,
                                                                  strides, dilates, pad_l, pad_r),
              "convolution backward weights") &&
      !failed(b, dnnl_primitive_desc_create(&pd, &cd, b->attr, engine, fwd_pd),
              "convolution backward weights")) {
    pd = direct_if_scratch_large(pd, &cd, b->attr, fwd_pd, b->threads);
    const dnnl_memory_desc_t *xw = query(pd, dnnl_query_src_md),
                             *dyw = query(pd, dnnl_query_diff_dst_md);
    /* Read the x and dy that the other primitives reordered, when the layouts agree. */
    t->x_w_shares_x = t->x.reorder && dnnl_memory_desc_equal(xw, &src_fwd);
    t->dy_w_shares_dy_d = t->dy_d.reorder && dnnl_memory_desc_equal(dyw, &dy_d);
    if (!t->x_w_shares_x) make_arg(b, &t->x_w, &x_user, xw, 1, NULL, B_XW, 0);
    if (!t->dy_w_shares_dy_d) make_arg(b, &t->dy_w, &y_user, dyw, 1, NULL, B_DYW, 0);
    make_arg(b, &t->dw, &w_user, query(pd, dnnl_query_diff_weights_md), 0, p->dw_part, B_DW, 1);
    if (d->bias && !b->st)
      failed(b, dnnl_memory_create(&t->db, &b_md, engine, p->db_chunk), "memory");
    t->bwd_weights = make_prim(b, pd, "convolution backward weights");
  }
  t->fwd = make_prim(b, fwd_pd, "convolution forward");
}

static void *slice_buf(const dpart *p, int k) {
  return k == B_X ? p->x_buf : shared[p->index].buf[k];
}

/* Points the set's memories at the slice's buffers (again when they moved). */
static void bind_set(const dpart *p, const dset *t) {
  const darg *args[] = {&t->x, &t->y, &t->dy_d, &t->dx, &t->x_w, &t->dy_w, &t->dw};
  for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
    if (args[i]->mem && args[i]->mem != args[i]->user && args[i]->buf >= 0)
      DNNL_CHECK(dnnl_memory_set_data_handle(args[i]->mem, slice_buf(p, args[i]->buf)));
  if (t->scratch) DNNL_CHECK(dnnl_memory_set_data_handle(t->scratch, slice_buf(p, B_SCRATCH)));
}

static void bind_part(const dpart *p) {
  bind_set(p, &p->full);
  if (p->rest.nb) bind_set(p, &p->rest);
}

/* The scratchpad memory of a set, its buffer bound later. */
static void make_scratch(build *b, const dpart *p, dset *t) {
  dnnl_memory_desc_t md;
  if (!b->st &&
      !failed(b,
              dnnl_memory_desc_init_by_tag(
                  &md, 1, (dnnl_dims_t){(dnnl_dim_t)p->size[B_SCRATCH] + 1}, dnnl_u8, dnnl_x),
              "memory descriptor"))
    failed(b, dnnl_memory_create(&t->scratch, &md, engine, DNNL_MEMORY_NONE), "memory");
}

/* Grows the shared buffers of p's pool thread to what p needs; *moved when any did. */
static void grow_shared(build *b, const dpart *p, int *moved) {
  shared_bufs *sb = &shared[p->index];
  for (int k = 0; k < NBUF && !b->st; k++) {
    if (k == B_X || p->size[k] + 1 <= sb->size[k]) continue;
    free(sb->buf[k]);
    sb->size[k] = 0;
    if (!(sb->buf[k] = alloc_aligned(p->size[k] + 1))) {
      failed(b, dnnl_out_of_memory, "buffer");
      return;
    }
    sb->size[k] = p->size[k] + 1;
    *moved = 1;
  }
}

/* Slice p of d: chunk size, primitives for it and the last chunk, buffers.
 * Chunks bound the memory the reordered copies take (AlexNet-R's whole slices
 * took 350 MiB more) and keep them in cache between the reorder and the
 * primitive; chunk size made no difference to speed on AlexNet-R or -S. A
 * blocked x or y has no copy, and with neither the slice is one chunk: the
 * weights and their gradient are then reordered once a call rather than once
 * a chunk (AlexNet-S at one thread 451-465 -> 419-422 ms). */
static void build_part(build *b, const dl_conv_desc *d, dpart *p, size_t nw) {
  size_t image = 2 * sizeof(float) *
                 ((d->x_blocked ? 0 : (size_t)d->c * d->h * d->w) +
                  (d->y_blocked ? 0 : (size_t)d->m * d->oh * d->ow));
  if (!image) image = 1;
  size_t chunk = DL_ONEDNN_CHUNK_BYTES / image;
  p->chunk = chunk < 1 ? 1 : chunk > (size_t)p->nb ? p->nb : (int)chunk;
  p->full.nb = p->chunk;
  p->rest.nb = p->nb % p->chunk;
  /* the first slice adds into the layer's dw itself (its handle is set per call) */
  p->dw_part = p->n0 == 0 ? NULL : alloc_aligned(nw * sizeof(float));
  p->db_part = alloc_aligned((size_t)d->m * sizeof(float));
  p->db_chunk = alloc_aligned((size_t)d->m * sizeof(float));
  if ((p->n0 && !p->dw_part) || !p->db_part || !p->db_chunk) {
    failed(b, dnnl_out_of_memory, "buffer");
    return;
  }
  b->p = p;
  build_set(b, d, p, &p->full);
  if (p->rest.nb) build_set(b, d, p, &p->rest);
  make_scratch(b, p, &p->full);
  if (p->rest.nb) make_scratch(b, p, &p->rest);
  if (!b->st && !(p->x_buf = alloc_aligned(p->size[B_X]))) failed(b, dnnl_out_of_memory, "buffer");
}

/* Once per process: the engine, and this thread's OpenMP team size. */
static int engine_init(build *b) {
  omp_set_num_threads(1); /* primitives made here plan for one thread */
  if (!engine && failed(b, dnnl_engine_create(&engine, dnnl_cpu, 0), "engine")) return 0;
  return 1;
}

/* A stream and shared buffers for each of the first n pool threads. */
static int streams_init(build *b, int n) {
  if (n > nshared) {
    shared_bufs *sb = realloc(shared, (size_t)n * sizeof *sb);
    if (!sb) return !failed(b, dnnl_out_of_memory, "buffers");
    memset(sb + nshared, 0, (size_t)(n - nshared) * sizeof *sb);
    shared = sb;
    nshared = n;
  }
  if (n <= nstreams) return 1;
  dnnl_stream_t *s = realloc(streams, (size_t)n * sizeof *s);
  if (!s) return !failed(b, dnnl_out_of_memory, "streams");
  streams = s;
  for (; nstreams < n; nstreams++)
    if (failed(b, dnnl_stream_create(&streams[nstreams], engine, dnnl_stream_default_flags),
               "stream"))
      return 0;
  return 1;
}

dl_status dl_conv_onednn_reshape(dl_conv_onednn **ep, const dl_conv_desc *d, char *err,
                                 size_t errlen) {
  build b = {err, errlen, DL_OK, NULL, NULL, NULL, 1};
  dl_conv_onednn *e = *ep;
  if (!e) {
    if (!(e = *ep = calloc(1, sizeof *e))) {
      snprintf(err, errlen, "out of memory");
      return DL_ENOMEM;
    }
    e->next = engines;
    engines = e;
  }
  e->x_fwd = NULL;
  if (e->nparts && e->threads == dl_parallel_threads() && !memcmp(&e->d, d, sizeof *d))
    return DL_OK; /* made for these shapes already */
  parts_free(e);
  e->d = *d;
  e->threads = dl_parallel_threads();
  e->nw = (size_t)d->m * (d->c / d->group) * d->kh * d->kw;
  int np = dl_parallel_threads();
  if (np > d->n) np = d->n;
  b.threads = np;
  if (!engine_init(&b) || !streams_init(&b, np)) return b.st;
  if (!(e->parts = calloc((size_t)np, sizeof *e->parts))) {
    snprintf(err, errlen, "out of memory");
    return DL_ENOMEM;
  }
  e->nparts = np;
  dnnl_post_ops_t sum = NULL;
  if (!failed(&b, dnnl_primitive_attr_create(&b.attr), "attributes") &&
      !failed(&b, dnnl_primitive_attr_set_scratchpad_mode(b.attr, dnnl_scratchpad_mode_user),
              "attributes") &&
      !failed(&b, dnnl_primitive_attr_clone(&b.attr_sum, b.attr), "attributes") &&
      !failed(&b, dnnl_post_ops_create(&sum), "attributes") &&
      !failed(&b, dnnl_post_ops_append_sum(sum, 1.0f), "attributes"))
    failed(&b, dnnl_primitive_attr_set_post_ops(b.attr_sum, sum), "attributes");
  int moved = 0;
  for (int i = 0; i < np && !b.st; i++) {
    dpart *p = &e->parts[i];
    /* the same slice and chunk sizes give the same primitives: oneDNN's
     * primitive cache makes the second thread's quickly */
    p->index = i;
    p->n0 = (int)((long)d->n * i / np);
    p->nb = (int)((long)d->n * (i + 1) / np) - p->n0;
    build_part(&b, d, p, e->nw);
    grow_shared(&b, p, &moved);
  }
  if (sum) dnnl_post_ops_destroy(sum);
  if (b.attr) dnnl_primitive_attr_destroy(b.attr);
  if (b.attr_sum) dnnl_primitive_attr_destroy(b.attr_sum);
  if (b.st) parts_free(e);
  /* point the memories at the buffers: every engine's when the buffers moved */
  for (dl_conv_onednn *f = moved ? engines : e; f; f = moved ? f->next : NULL)
    for (int i = 0; i < f->nparts; i++)
      bind_part(&f->parts[i]);
  return b.st;
}

void dl_conv_onednn_forget(dl_conv_onednn *e) { e->x_fwd = NULL; }

/* ---- forward and backward ---------------------------------------------------- */

static void set_handle(dnnl_memory_t m, const void *p) {
  DNNL_CHECK(dnnl_memory_set_data_handle(m, (void *)p));
}

static void run(dnnl_primitive_t prim, dnnl_stream_t s, int nargs, const dnnl_exec_arg_t *args) {
  DNNL_CHECK(dnnl_primitive_execute(prim, s, nargs, args));
}

/* Runs a's reorder, if any: user -> mem (to_prim) or mem -> user. */
static void reorder(const darg *a, dnnl_stream_t s, dnnl_memory_t scratch, int to_prim) {
  if (!a->reorder) return;
  dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, to_prim ? a->user : a->mem},
                            {DNNL_ARG_TO, to_prim ? a->mem : a->user},
                            {DNNL_ARG_SCRATCHPAD, scratch}};
  run(a->reorder, s, 3, args);
}

/* Sets a's user array to p and brings it into the primitive's layout. */
static void load(const darg *a, const void *p, dnnl_stream_t s, dnnl_memory_t scratch) {
  set_handle(a->user, p);
  reorder(a, s, scratch, 1);
}

/* Runs fn on every slice: one per pool thread (serially when the pool has
 * shrunk since reshape). Each thread's oneDNN stays single-threaded. */
static void each_part(dl_conv_onednn *e, dl_part_fn fn) {
  if (e->nparts <= dl_parallel_threads())
    dl_parallel_run(e->nparts, fn, e);
  else
    for (int i = 0; i < e->nparts; i++)
      fn(e, i, e->nparts);
}

static size_t x_at(const dl_conv_desc *d, int n) { return (size_t)n * d->c * d->h * d->w; }
static size_t y_at(const dl_conv_desc *d, int n) { return (size_t)n * d->m * d->oh * d->ow; }

static void forward_part(void *arg, int i, int nparts) {
  (void)nparts;
  dl_conv_onednn *e = arg;
  const dl_conv_desc *d = &e->d;
  dpart *p = &e->parts[i];
  dnnl_stream_t s = streams[i];
  omp_set_num_threads(1);
  p->full.w_ready = p->rest.w_ready = 0;
  for (int n0 = p->n0; n0 < p->n0 + p->nb; n0 += p->chunk) {
    dset *t = p->n0 + p->nb - n0 >= p->chunk ? &p->full : &p->rest;
    if (!t->w_ready) load(&t->w, e->cw, s, t->scratch);
    t->w_ready = 1;
    load(&t->x, e->cx + x_at(d, n0), s, t->scratch);
    set_handle(t->y.user, e->cy + y_at(d, n0));
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, t->x.mem},
                               {DNNL_ARG_WEIGHTS, t->w.mem},
                               {DNNL_ARG_DST, t->y.mem},
                               {DNNL_ARG_SCRATCHPAD, t->scratch},
                               {DNNL_ARG_BIAS, t->bias}};
    if (t->bias) set_handle(t->bias, e->cbias);
    run(t->fwd, s, t->bias ? 5 : 4, args);
    reorder(&t->y, s, t->scratch, 0);
  }
  DNNL_CHECK(dnnl_stream_wait(s));
}

void dl_conv_onednn_forward(dl_conv_onednn *e, const float *x, const float *w, const float *bias,
                            float *y) {
  DL_ASSERT(!e->d.bias || bias);
  e->cx = x, e->cw = w, e->cbias = bias, e->cy = y;
  each_part(e, forward_part);
  e->x_fwd = x;
}

static void backward_part(void *arg, int i, int nparts) {
  (void)nparts;
  dl_conv_onednn *e = arg;
  const dl_conv_desc *d = &e->d;
  dpart *p = &e->parts[i];
  dnnl_stream_t s = streams[i];
  omp_set_num_threads(1);
  if (p->dw_part) {
    memset(p->dw_part, 0, e->nw * sizeof(float));
  } else {
    set_handle(p->full.dw.user, e->cdw);
    if (p->rest.nb) set_handle(p->rest.dw.user, e->cdw);
  }
  memset(p->db_part, 0, (size_t)d->m * sizeof(float));
  p->full.w_d_ready = p->rest.w_d_ready = 0;
  /* forward's reordered x is still there when the slice is one chunk */
  int x_kept = e->x_fwd == e->cx && p->chunk == p->nb;
  for (int n0 = p->n0; n0 < p->n0 + p->nb; n0 += p->chunk) {
    dset *t = p->n0 + p->nb - n0 >= p->chunk ? &p->full : &p->rest;
    const float *x = e->cx + x_at(d, n0), *dy = e->cdy + y_at(d, n0);
    int dy_ready = 0; /* dy_d.mem holds this chunk's dy */
    if (e->cdx) {
      if (!t->w_d_ready) load(&t->w_d, e->cw, s, t->scratch);
      t->w_d_ready = 1;
      load(&t->dy_d, dy, s, t->scratch);
      dy_ready = 1;
      set_handle(t->dx.user, e->cdx + x_at(d, n0));
      dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, t->dy_d.mem},
                                {DNNL_ARG_WEIGHTS, t->w_d.mem},
                                {DNNL_ARG_DIFF_SRC, t->dx.mem},
                                {DNNL_ARG_SCRATCHPAD, t->scratch}};
      run(t->bwd_data, s, 4, args);
      reorder(&t->dx, s, t->scratch, 0);
    }
    dnnl_memory_t xm, dym;
    if (t->x_w_shares_x) {
      if (!x_kept) load(&t->x, x, s, t->scratch);
      xm = t->x.mem;
    } else {
      load(&t->x_w, x, s, t->scratch);
      xm = t->x_w.mem;
    }
    if (t->dy_w_shares_dy_d) {
      if (!dy_ready) load(&t->dy_d, dy, s, t->scratch);
      dym = t->dy_d.mem;
    } else {
      load(&t->dy_w, dy, s, t->scratch);
      dym = t->dy_w.mem;
    }
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, xm},
                              {DNNL_ARG_DIFF_DST, dym},
                              {DNNL_ARG_DIFF_WEIGHTS, t->dw.mem},
                              {DNNL_ARG_SCRATCHPAD, t->scratch},
                              {DNNL_ARG_DIFF_BIAS, t->db}};
    run(t->bwd_weights, s, t->db ? 5 : 4, args);
    reorder(&t->dw, s, t->scratch, 0); /* dw_part += this chunk's */
    for (int o = 0; t->db && o < d->m; o++)
      p->db_part[o] += p->db_chunk[o];
  }
  DNNL_CHECK(dnnl_stream_wait(s));
}

/* dw[k] += the other slices' dw_part[k], in slice order (the first slice
 * added its own into dw: one weight-sized buffer less per layer). */
static void sum_dw(void *arg, int lo, int hi) {
  const dl_conv_onednn *e = arg;
  for (int k = lo; k < hi; k++) {
    float t = e->cdw[k];
    for (int i = 1; i < e->nparts; i++)
      t += e->parts[i].dw_part[k];
    e->cdw[k] = t;
  }
}

void dl_conv_onednn_backward(dl_conv_onednn *e, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db) {
  DL_ASSERT(!db || e->d.bias);
  e->cx = x, e->cw = w, e->cdy = dy, e->cdx = dx, e->cdw = dw;
  each_part(e, backward_part);
  e->x_fwd = x; /* slices of one chunk that share forward's x hold this x there now */
  if (e->nparts > 1) dl_parallel_for((int)e->nw, 4096, sum_dw, e);
  for (int o = 0; db && o < e->d.m; o++) {
    float t = 0;
    for (int i = 0; i < e->nparts; i++)
      t += e->parts[i].db_part[o];
    db[o] += t;
  }
}

#endif
