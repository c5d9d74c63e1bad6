/* Subcommands and the small argument helpers they share. Only cmd/ prints
 * diagnostics and chooses exit codes. */
#ifndef DL_CMD_H
#define DL_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DLTRAIN_VERSION "0.1.0"

int cmd_train(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_layers(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_convert(int argc, char **argv);

/* Parses a non-negative integer option value; prints a usage error if bad. */
int cmd_parse_int(const char *opt, const char *value, int64_t lo, int64_t hi, int64_t *out);
/* Prints the diagnostics and returns the exit code for `status`. */
int cmd_fail(int status);
void cmd_print_header(int threads, long long seed);

/* The memory plan of a net (dltrain bench, and train at start): the buffers
 * its blobs, parameters and solver hold, counted from their sizes, and the
 * workspace: what else the C heap took since a mark (cmd_heap_mark) made
 * before the net was built: the layers' own buffers (im2col columns, packed
 * operands, LSTM gates, pooling masks), data layers' batches and oneDNN's
 * primitives and scratch. */
typedef struct {
  size_t heap, mem_heap; /* dl_heap_bytes, dl_mem_heap_bytes_allocated at the mark */
} cmd_heap_mark;

typedef struct {
  size_t params, grads, history, activations, workspace;
  int workspace_known; /* 0: the C library cannot tell (dl_heap_bytes) */
} cmd_memory_plan;

struct dl_net;
cmd_heap_mark cmd_heap_mark_now(void);
cmd_memory_plan cmd_memory_plan_of(const struct dl_net *net, size_t history_bytes,
                                   cmd_heap_mark since);
size_t cmd_memory_plan_total(const cmd_memory_plan *m);
/* "memory plan: parameters ..., workspace ... (..., WHEN); total ..." and a newline. */
void cmd_print_memory_plan(FILE *f, const cmd_memory_plan *m, const char *when);

#endif
