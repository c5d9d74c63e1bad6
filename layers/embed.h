/* Embed's parameters and state, shared by layers/embed.c and its GPU twin
 * layers/embed.cu. */
#ifndef DL_LAYERS_EMBED_H
#define DL_LAYERS_EMBED_H

#include <stddef.h>

#include "core/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int num_output; /* D */
  int input_dim;  /* V */
  int bias_term;
  dl_filler weight_filler, bias_filler;
} embed_param;

/* The GPU twin's weight-gradient plan: the batch's positions grouped by token
 * (a counting sort on the host, uploaded each backward), so that each row of
 * dW is summed by one thread per column in the CPU's order, without atomics. */
typedef struct {
  int *order, *starts, *tokens; /* host: positions by token; run starts; the tokens */
  int *count;                   /* host: per token (V) */
  float *dev;                   /* device: tokens, starts, order (as int bits) */
  size_t cap_m;                 /* positions the buffers hold */
  int cap_v;                    /* vocabulary size `count` holds */
} embed_priv;

/* Each index an integer in [0, input_dim), else a data error naming it. */
dl_status dl_embed_check(dl_layer *l, const float *x, size_t M);

DL_GPU_TWINS(embed);
void dl_embed_gpu_free(embed_priv *e);

#ifdef __cplusplus
}
#endif

#endif
