/* A fixed pool of worker threads for dl_parallel_run (see parallel.h). */
#include "core/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "core/status.h"

#define MAX_THREADS 256

/* How long a thread polls before it sleeps on a condition variable: a worker
 * waiting for the next task, the caller waiting for the parts to finish. A
 * wake-up through the kernel takes tens of microseconds on these VMs, and a
 * LeNet iteration runs dozens of parallel tasks of 20-200 us each with a
 * little serial work between them; polling first catches most of them awake
 * (LeNet 4.9 -> 4.1 ms per iteration at 2 threads, the LSTM 263 -> 257 ms).
 * Short enough that a long serial stretch costs little spinning. */
enum { POLL_ROUNDS = 4000 }; /* about 150 us: a pause takes 25 ns here (Zen 5), and 62 yields */

/* Round i of a poll: a pause, and every 64th round a yield, so that a pool
 * larger than the machine (or two runs sharing it) hands the core to a thread
 * with work instead of spinning it away: LeNet with 4 threads on these 2 cores
 * took 8.7 ms per iteration polling with pauses alone, 4.2-4.6 with the
 * yields, 5.0-5.1 never polling. */
static inline void poll_round(int i) {
  if ((i & 63) == 63) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static struct {
  pthread_mutex_t lock;
  pthread_cond_t work, done;
  int nthreads; /* pool size including the caller */
  int started;  /* workers created so far */
  atomic_ulong generation; /* written under lock; polled without it */
  dl_part_fn fn;
  void *arg;
  int nparts;
  atomic_int pending; /* parts not yet finished in this generation (written under lock) */
} pool = {PTHREAD_MUTEX_INITIALIZER,
          PTHREAD_COND_INITIALIZER,
          PTHREAD_COND_INITIALIZER,
          1,
          0,
          0,
          NULL,
          NULL,
          0,
          0};

static _Thread_local int in_part;

static void *worker(void *p) {
  int id = (int)(long)p; /* 1 .. nthreads-1 */
  unsigned long seen = 0;
  in_part = 1;
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    if (pool.generation == seen) { /* poll a while before sleeping */
      pthread_mutex_unlock(&pool.lock);
      for (int i = 0;
           i < POLL_ROUNDS && atomic_load_explicit(&pool.generation, memory_order_acquire) == seen;
           i++)
        poll_round(i);
      pthread_mutex_lock(&pool.lock);
    }
    while (pool.generation == seen)
      pthread_cond_wait(&pool.work, &pool.lock);
    seen = pool.generation;
    if (id >= pool.nparts) continue;
    dl_part_fn fn = pool.fn;
    void *arg = pool.arg;
    int nparts = pool.nparts;
    pthread_mutex_unlock(&pool.lock);
    fn(arg, id, nparts);
    pthread_mutex_lock(&pool.lock);
    if (--pool.pending == 0) pthread_cond_signal(&pool.done);
  }
  return NULL;
}

void dl_parallel_init(int n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&pool.lock);
  for (; pool.started < n - 1; pool.started++) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &a, worker, (void *)(long)(pool.started + 1));
    pthread_attr_destroy(&a);
    if (rc != 0) break; /* fewer threads: slower, still correct */
  }
  pool.nthreads = pool.started + 1 < n ? pool.started + 1 : n;
  pthread_mutex_unlock(&pool.lock);
}

int dl_parallel_threads(void) { return in_part ? 1 : pool.nthreads; }

void dl_parallel_run(int nparts, dl_part_fn fn, void *arg) {
  if (nparts <= 1 || in_part || pool.nthreads <= 1) {
    for (int p = 0; p < nparts; p++)
      fn(arg, p, nparts);
    return;
  }
  DL_ASSERT(nparts <= pool.nthreads);
  pthread_mutex_lock(&pool.lock);
  pool.fn = fn;
  pool.arg = arg;
  pool.nparts = nparts;
  pool.pending = nparts - 1;
  pool.generation++;
  pthread_cond_broadcast(&pool.work);
  pthread_mutex_unlock(&pool.lock);
  in_part = 1;
  fn(arg, 0, nparts);
  in_part = 0;
  for (int i = 0; i < POLL_ROUNDS && atomic_load_explicit(&pool.pending, memory_order_acquire) > 0;
       i++)
    poll_round(i);
  pthread_mutex_lock(&pool.lock);
  while (pool.pending > 0)
    pthread_cond_wait(&pool.done, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
}

typedef struct {
  int n;
  dl_range_fn fn;
  void *arg;
} range_job;

static void range_part(void *arg, int p, int nparts) {
  const range_job *j = arg;
  int lo = (int)((long)j->n * p / nparts), hi = (int)((long)j->n * (p + 1) / nparts);
  if (hi > lo) j->fn(j->arg, lo, hi);
}

void dl_parallel_for(int n, int min_per_part, dl_range_fn fn, void *arg) {
  int nt = dl_parallel_threads();
  if (min_per_part < 1) min_per_part = 1;
  if (nt > n / min_per_part) nt = n / min_per_part;
  if (nt <= 1) {
    if (n > 0) fn(arg, 0, n);
    return;
  }
  range_job j = {n, fn, arg};
  dl_parallel_run(nt, range_part, &j);
}
