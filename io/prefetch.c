/* The prefetch thread and the helpers the data layers share (io/prefetch.h). */
#include "io/prefetch.h"

#include "io/transform.h"

#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { PF_IDLE, PF_REQUESTED, PF_DONE } pf_state;

struct dl_prefetch {
  const dl_layer *owner;
  int nout;
  size_t counts[DL_PREFETCH_MAX_OUT];
  float *bufs[2][DL_PREFETCH_MAX_OUT]; /* two sets: front (handed out) and back (being filled) */
  int back;                            /* which set the thread fills next */
  dl_prefetch_fill_fn fill;
  void *user;

  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pf_state state;
  int quit;
  int64_t pos[4];  /* what to fill */
  int fill_failed; /* the last fill's result ... */
  char err[400];   /* ... and its message */

  double wait_seconds; /* written and read by the owner's thread only */
  struct dl_prefetch *next_live;
};

/* Every live prefetcher, so dl_data_layer_wait_seconds can find a layer's
 * without knowing the layout of its priv. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static dl_prefetch *live;

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *worker(void *arg) {
  dl_prefetch *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->state != PF_REQUESTED && !p->quit)
      pthread_cond_wait(&p->wake, &p->mu);
    if (p->quit) break;
    int64_t pos[4];
    memcpy(pos, p->pos, sizeof pos);
    float *const *out = p->bufs[p->back];
    pthread_mutex_unlock(&p->mu);
    /* Fill without the lock: the owner only waits on `done` meanwhile. */
    char err[sizeof p->err] = "";
    int failed = p->fill(p->user, pos, out, err, sizeof err);
    pthread_mutex_lock(&p->mu);
    p->fill_failed = failed;
    if (failed) memcpy(p->err, err, sizeof err);
    p->state = PF_DONE;
    pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

dl_status dl_prefetch_create(const dl_layer *owner, int nout, const size_t *counts,
                             dl_prefetch_fill_fn fill, void *user, dl_prefetch **out) {
  DL_ASSERT(nout >= 1 && nout <= DL_PREFETCH_MAX_OUT);
  *out = NULL;
  dl_prefetch *p = dl_calloc(1, sizeof *p);
  if (!p) return DL_ENOMEM;
  p->owner = owner;
  p->nout = nout;
  p->fill = fill;
  p->user = user;
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < nout; i++) {
      p->counts[i] = counts[i];
      p->bufs[s][i] = dl_calloc(counts[i] ? counts[i] : 1, sizeof(float));
      if (!p->bufs[s][i]) goto nomem;
    }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  /* The worker blocks every signal so that SIGINT/SIGTERM reach the main
   * thread, whose handler asks the solver to snapshot and stop. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&p->thread, NULL, worker, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) {
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    for (int s = 0; s < 2; s++)
      for (int i = 0; i < nout; i++)
        free(p->bufs[s][i]);
    free(p);
    return dl_error(DL_ENOMEM, "cannot start the data prefetch thread: %s", strerror(rc));
  }
  pthread_mutex_lock(&live_mu);
  p->next_live = live;
  live = p;
  pthread_mutex_unlock(&live_mu);
  *out = p;
  return DL_OK;
nomem:
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < nout; i++)
      free(p->bufs[s][i]);
  free(p);
  return DL_ENOMEM;
}

void dl_prefetch_start(dl_prefetch *p, const int64_t pos[4]) {
  pthread_mutex_lock(&p->mu);
  DL_ASSERT(p->state == PF_IDLE);
  memcpy(p->pos, pos, sizeof p->pos);
  p->state = PF_REQUESTED;
  pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->mu);
}

/* Waits for the started fill (called with the lock held). */
static void wait_done(dl_prefetch *p) {
  while (p->state == PF_REQUESTED)
    pthread_cond_wait(&p->done, &p->mu);
}

dl_status dl_prefetch_wait(dl_prefetch *p, float *const **out, char *err, size_t errlen) {
  double t0 = now_seconds();
  pthread_mutex_lock(&p->mu);
  DL_ASSERT(p->state != PF_IDLE); /* a wait without a start is a bug in the layer */
  wait_done(p);
  p->state = PF_IDLE;
  int failed = p->fill_failed;
  if (failed && err && errlen) snprintf(err, errlen, "%s", p->err);
  *out = p->bufs[p->back];
  p->back ^= 1; /* the next fill goes to the other set while this one is read */
  pthread_mutex_unlock(&p->mu);
  p->wait_seconds += now_seconds() - t0;
  return failed ? DL_EDATA : DL_OK;
}

void dl_prefetch_cancel(dl_prefetch *p) {
  pthread_mutex_lock(&p->mu);
  wait_done(p);
  p->state = PF_IDLE;
  pthread_mutex_unlock(&p->mu);
}

void dl_prefetch_free(dl_prefetch *p) {
  if (!p) return;
  pthread_mutex_lock(&live_mu);
  for (dl_prefetch **q = &live; *q; q = &(*q)->next_live)
    if (*q == p) {
      *q = p->next_live;
      break;
    }
  pthread_mutex_unlock(&live_mu);
  pthread_mutex_lock(&p->mu);
  wait_done(p);
  p->quit = 1;
  pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->thread, NULL);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mu);
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < p->nout; i++)
      free(p->bufs[s][i]);
  free(p);
}

double dl_prefetch_wait_seconds(const dl_prefetch *p) { return p ? p->wait_seconds : 0; }

double dl_data_layer_wait_seconds(dl_layer *l) {
  if (!l || !l->ops || !(l->ops->flags & DL_LAYER_DATA)) return 0;
  double total = 0;
  pthread_mutex_lock(&live_mu);
  for (const dl_prefetch *p = live; p; p = p->next_live)
    if (p->owner == l) total += p->wait_seconds;
  pthread_mutex_unlock(&live_mu);
  return total;
}

/* ---- shared by the data layers ------------------------------------------------ */

const char *const dl_shuffle_names[] = {"auto", "true", "false", NULL};

int dl_data_shuffles(const dl_layer *l, int shuffle) {
  if (shuffle == DL_SHUFFLE_AUTO) return l->phase == DL_TRAIN;
  return shuffle == DL_SHUFFLE_TRUE;
}

dl_status dl_data_path(const dl_layer *l, const char *key, const char *path, char *out, size_t n) {
  const char *file = l->loc.file;
  int as_given = path[0] == '/' || !file || !file[0] || file[0] == '<' || !strchr(file, '/');
  int len;
  if (as_given) {
    len = snprintf(out, n, "%s", path);
  } else {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    len = snprintf(out, n, "%s/%s", dirname(dir), path);
  }
  if (len < 0 || (size_t)len >= n)
    return dl_layer_error(l, DL_ECONFIG, "%s: path '%s' is too long once resolved", key, path);
  return DL_OK;
}

uint64_t dl_data_key(const dl_layer *l) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a of the name */
  for (const char *c = l->name; *c; c++)
    h = (h ^ (unsigned char)*c) * 1099511628211ull;
  return dl_seed_mix(l->ctx->seed, 0xDA7A, h);
}

dl_status dl_order_init(dl_order *o, int n, int shuffle, uint64_t key) {
  *o = (dl_order){.n = n, .shuffle = shuffle, .key = key, .epoch = -1};
  if (!shuffle) return DL_OK;
  o->perm = dl_malloc((size_t)n * sizeof *o->perm);
  return o->perm ? DL_OK : DL_ENOMEM;
}

void dl_order_free(dl_order *o) {
  free(o->perm);
  o->perm = NULL;
}

static int order_at(dl_order *o, int64_t epoch, int64_t i) {
  if (!o->shuffle) return (int)i;
  if (o->epoch != epoch) {
    for (int k = 0; k < o->n; k++)
      o->perm[k] = k;
    dl_rng rng;
    dl_rng_seed(&rng, dl_seed_mix(o->key, (uint64_t)epoch, 0));
    dl_rng_shuffle(&rng, o->perm, o->n);
    o->epoch = epoch;
  }
  return o->perm[i];
}

void dl_order_batch(dl_order *o, const int64_t pos[4], int count, int *idx) {
  int64_t epoch = pos[0], i = pos[1];
  for (int j = 0; j < count; j++) {
    idx[j] = order_at(o, epoch, i);
    if (++i == o->n) i = 0, epoch++;
  }
}

void dl_cursor_init(int64_t cursor[4], int64_t n) {
  cursor[0] = cursor[1] = cursor[3] = 0;
  cursor[2] = n;
}

void dl_cursor_advance(int64_t cursor[4], int64_t n, int64_t steps) {
  cursor[1] += steps;
  cursor[0] += cursor[1] / n;
  cursor[1] %= n;
}

dl_status dl_cursor_check(const dl_layer *l, const int64_t cursor[4], int64_t n) {
  if (cursor[2] != 0 && cursor[2] != n)
    return dl_layer_error(l, DL_EDATA,
                          "cannot resume: the snapshot was taken with %lld examples per epoch, "
                          "the data now has %lld (a different file or max_examples?)",
                          (long long)cursor[2], (long long)n);
  if (cursor[0] < 0 || cursor[1] < 0 || cursor[1] >= n)
    return dl_layer_error(l, DL_EDATA,
                          "cannot resume: cursor (epoch %lld, example %lld) is outside a data "
                          "set of %lld examples",
                          (long long)cursor[0], (long long)cursor[1], (long long)n);
  return DL_OK;
}

void dl_order_rekey(dl_order *o, uint64_t key) {
  o->key = key;
  o->epoch = -1;
}

/* ---- the batcher ------------------------------------------------------------- */

dl_status dl_batcher_init(dl_batcher *b, const dl_layer *l, int n, int batch, int shuffle, int nout,
                          const size_t *counts, dl_prefetch_fill_fn fill, void *user) {
  b->n = n;
  b->batch = batch;
  dl_cursor_init(b->cursor, n);
  b->batch_idx = dl_malloc((size_t)batch * sizeof *b->batch_idx);
  if (!b->batch_idx) return DL_ENOMEM;
  dl_status st = dl_order_init(&b->order, n, dl_data_shuffles(l, shuffle), dl_data_key(l));
  if (!st) st = dl_prefetch_create(l, nout, counts, fill, user, &b->pf);
  if (!st) dl_prefetch_start(b->pf, b->cursor);
  return st;
}

void dl_batcher_free(dl_batcher *b) {
  dl_prefetch_free(b->pf); /* joins the thread before the data it reads goes away */
  b->pf = NULL;
  dl_order_free(&b->order);
  free(b->batch_idx);
  b->batch_idx = NULL;
}

dl_status dl_batcher_forward(dl_layer *l, dl_batcher *b, dl_blob *const *top, int nt) {
  float *const *batch;
  char err[400];
  dl_status st = dl_prefetch_wait(b->pf, &batch, err, sizeof err);
  if (st) {
    dl_prefetch_start(b->pf, b->cursor); /* a later forward retries the same batch */
    return dl_layer_error(l, st, "%s", err);
  }
  dl_cursor_advance(b->cursor, b->n, b->batch);
  dl_prefetch_start(b->pf, b->cursor); /* fills the other buffer while we copy this one */
  for (int t = 0; t < nt; t++)
    memcpy(dl_data(top[t]), batch[t], top[t]->count * sizeof(float));
  return DL_OK;
}

void dl_batcher_get_cursor(const dl_batcher *b, int64_t cursor[4]) {
  memcpy(cursor, b->cursor, sizeof b->cursor);
}

dl_status dl_batcher_set_cursor(dl_layer *l, dl_batcher *b, const int64_t cursor[4],
                                struct dl_transform *tf) {
  dl_status st = dl_cursor_check(l, cursor, b->n);
  if (st) return st;
  dl_prefetch_cancel(b->pf); /* the read-ahead batch is for the old position */
  /* Resuming: the snapshot's seed replaces the one the order was made with. */
  dl_order_rekey(&b->order, dl_data_key(l));
  if (tf) dl_transform_rekey(tf, l);
  b->cursor[0] = cursor[0];
  b->cursor[1] = cursor[1];
  dl_prefetch_start(b->pf, b->cursor);
  return DL_OK;
}
