/* Background prefetching for data layers, plus the small pieces every data layer
 * shares: where a batch comes from (the epoch order and the cursor), how paths in
 * a net file are resolved, and how much time the net spent waiting for data.
 *
 * The prefetcher is a double buffer with one worker thread: while the net
 * computes on batch k (copied out of buffer A), the thread fills batch k+1 into
 * buffer B. A layer's forward calls dl_prefetch_wait (blocks until the fill is
 * done), dl_prefetch_start with the next position (the thread now fills the
 * other buffer), then copies the waited-for buffer into its tops. */
#ifndef DL_PREFETCH_H
#define DL_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"

typedef struct dl_prefetch dl_prefetch;

/* Fills one batch: `pos` is the batch's position (opaque here: the layer's
 * cursor), out[i] holds counts[i] floats. Runs on the worker thread, so it must
 * not call dl_error (diagnostics are thread-local): on failure it writes a
 * message to err and returns nonzero; dl_prefetch_wait hands both back. */
typedef int (*dl_prefetch_fill_fn)(void *user, const int64_t pos[4], float *const *out, char *err,
                                   size_t errlen);

#define DL_PREFETCH_MAX_OUT 4

/* Allocates two sets of `nout` buffers and starts the (idle) worker thread.
 * `owner` (may be NULL) is the data layer it serves, for dl_data_layer_wait_seconds. */
dl_status dl_prefetch_create(const dl_layer *owner, int nout, const size_t *counts,
                             dl_prefetch_fill_fn fill, void *user, dl_prefetch **out);
/* Asks the thread to fill the batch at `pos` into the back buffer. The prefetcher
 * must be idle: no start without a wait or cancel in between. */
void dl_prefetch_start(dl_prefetch *p, const int64_t pos[4]);
/* Blocks until the started fill is done (the time spent blocked counts as data
 * wait) and makes that buffer the front one: *out[i] stays valid until the
 * second dl_prefetch_start after this call. On a fill failure returns DL_EDATA
 * with the thread's message in err; the prefetcher is idle either way. */
dl_status dl_prefetch_wait(dl_prefetch *p, float *const **out, char *err, size_t errlen);
/* Waits for a started fill, if any, and discards it (set_cursor). */
void dl_prefetch_cancel(dl_prefetch *p);
/* Cancels, joins the thread, frees the buffers. NULL is fine. */
void dl_prefetch_free(dl_prefetch *p);
/* Total seconds dl_prefetch_wait spent blocked. */
double dl_prefetch_wait_seconds(const dl_prefetch *p);

/* Total seconds the net has waited for this layer's data so far; 0 for layers
 * that are not data layers or that do not prefetch. */
double dl_data_layer_wait_seconds(dl_layer *l);

/* ---- shared by the data layers ------------------------------------------------ */

/* `shuffle` is an enum: auto (shuffle in the train phase only), true, false. */
enum { DL_SHUFFLE_AUTO, DL_SHUFFLE_TRUE, DL_SHUFFLE_FALSE };
extern const char *const dl_shuffle_names[];
int dl_data_shuffles(const dl_layer *l, int shuffle);

/* A path from the layer's YAML, relative to the directory of the net file
 * (as given when the layer came from a string or has no file). Fails with
 * DL_ECONFIG when the result does not fit in n bytes. */
dl_status dl_data_path(const dl_layer *l, const char *key, const char *path, char *out, size_t n);

/* The key all of this layer's data randomness derives from: (ctx->seed, layer
 * name), so the order does not change when other layers are added. */
uint64_t dl_data_key(const dl_layer *l);

/* The order of n examples in each epoch: identity, or a permutation that is a
 * pure function of (key, epoch), rebuilt on demand so that any cursor can be
 * resumed. Not thread-safe: one order belongs to one fill thread. */
typedef struct {
  int n, shuffle;
  uint64_t key;
  int64_t epoch; /* the epoch perm holds, -1 for none */
  int *perm;     /* (n) */
} dl_order;

dl_status dl_order_init(dl_order *o, int n, int shuffle, uint64_t key);
void dl_order_free(dl_order *o);
/* A new key (the seed changed on resume): the next batch rebuilds the order. */
void dl_order_rekey(dl_order *o, uint64_t key);
/* Example indices of the `count` examples starting at pos = {epoch, index}; a
 * batch that crosses the end of an epoch continues with the next epoch's order. */
void dl_order_batch(dl_order *o, const int64_t pos[4], int count, int *idx);

/* What every epoch-ordered, prefetched data layer keeps (MnistData, CifarData,
 * ImageData, CSVData): where the next batch comes from and the thread that
 * fills it. The layer's fill function reads `order` and `batch_idx` (they
 * belong to the fill thread while a fill runs). */
typedef struct {
  int n, batch;      /* examples in an epoch, examples per batch */
  int64_t cursor[4]; /* the batch the next forward hands out: {epoch, index, n, 0} */
  dl_prefetch *pf;
  dl_order order;
  int *batch_idx; /* (batch) example indices of the batch being filled */
} dl_batcher;

/* Sets up the order (shuffled per `shuffle`), the cursor and the prefetcher
 * (tops of `counts` floats, filled by fill(user, ...)), and starts batch 0. */
dl_status dl_batcher_init(dl_batcher *b, const dl_layer *l, int n, int batch, int shuffle, int nout,
                          const size_t *counts, dl_prefetch_fill_fn fill, void *user);
void dl_batcher_free(dl_batcher *b); /* joins the thread first; zeroed b is fine */
/* The forward of such a layer: waits for the batch, starts the next one,
 * copies the batch into the nt tops. */
dl_status dl_batcher_forward(dl_layer *l, dl_batcher *b, dl_blob *const *top, int nt);
void dl_batcher_get_cursor(const dl_batcher *b, int64_t cursor[4]);
/* Resumes at `cursor`; the order is re-keyed with the (restored) seed, and so
 * is `tf` (the layer's transform, may be NULL), before the next fill starts. */
struct dl_transform;
dl_status dl_batcher_set_cursor(dl_layer *l, dl_batcher *b, const int64_t cursor[4],
                                struct dl_transform *tf);

/* The cursor of a data set of n examples: {epoch, index in the epoch, n, 0}. */
void dl_cursor_init(int64_t cursor[4], int64_t n);
void dl_cursor_advance(int64_t cursor[4], int64_t n, int64_t steps);
/* Rejects a cursor that does not fit a data set of n examples (DL_EDATA). */
dl_status dl_cursor_check(const dl_layer *l, const int64_t cursor[4], int64_t n);

#endif
