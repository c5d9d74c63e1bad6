/* The project's one threading runtime: a small persistent pool that runs a
 * task split in parts, the caller taking part 0. OpenBLAS is kept at one thread
 * and GEMMs are split here instead, so two runtimes never spin against each
 * other on the same cores, and splits OpenBLAS would not make (along K, for
 * LeNet-sized weight gradients) are possible. Idle workers poll for about
 * 150 us (yielding now and then), then sleep on a condition variable. Calls from inside a part run
 * serially. */
#ifndef DL_PARALLEL_H
#define DL_PARALLEL_H

typedef void (*dl_part_fn)(void *arg, int part, int nparts);

/* Sets the pool to n threads in all (the caller included); n >= 1. */
void dl_parallel_init(int n);
int dl_parallel_threads(void);
/* Runs fn(arg, p, nparts) for p in [0, nparts), nparts <= dl_parallel_threads(),
 * and returns when all are done. */
void dl_parallel_run(int nparts, dl_part_fn fn, void *arg);

/* Splits [0, n) into contiguous ranges, one per thread, and runs fn(arg, lo, hi)
 * on each (serially when n < min_per_part * 2). */
typedef void (*dl_range_fn)(void *arg, int lo, int hi);
void dl_parallel_for(int n, int min_per_part, dl_range_fn fn, void *arg);

#endif
