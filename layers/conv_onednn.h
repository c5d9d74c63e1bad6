/* The oneDNN engine of Convolution (`engine: onednn`): forward, backward data and
 * backward weights as oneDNN CPU primitives, created at reshape. Built when the
 * Makefile finds dnnl.h (ONEDNN=auto|1, which defines DL_ONEDNN); without it the
 * functions below exist, dl_onednn_available() says 0 and reshape refuses. */
#ifndef DL_CONV_ONEDNN_H
#define DL_CONV_ONEDNN_H

#include <stddef.h>

#include "core/layer.h"

/* One convolution's shapes, Caffe's meaning (dilation 1 is a dense filter).
 * Only ints, so two descriptions compare with memcmp. */
typedef struct {
  int n, c, h, w;                     /* input: images, channels, size */
  int m, oh, ow;                      /* output: channels, size */
  int kh, kw, sh, sw, ph, pw, dh, dw; /* kernel, stride, pad, dilation */
  int group, bias;
  int x_blocked, y_blocked; /* x and dx, y and dy in the blocked layout nChw16c (core/blob.h) */
} dl_conv_desc;

typedef struct dl_conv_onednn dl_conv_onednn;

/* Each pool thread runs its slice of the batch in chunks of images whose
 * reordered copies (about 8 bytes per input and per output value of an image)
 * fit this many bytes. */
#define DL_ONEDNN_CHUNK_BYTES ((size_t)8 << 20)

/* 1 when this build has oneDNN (and a test has not switched it off). */
int dl_onednn_available(void);
/* "oneDNN 2.6.3 (CPU runtime OpenMP, ...)", or why there is none. */
const char *dl_onednn_info(void);
/* 1 when oneDNN's convolutions here work in 16-channel blocks (AVX-512), so
 * that blobs in the blocked layout reach them without a reorder. */
int dl_onednn_blocks_of_16(void);
/* For tests: act as a build without oneDNN (1) or as built (0). */
void dl_onednn_pretend_missing(int missing);

/* Makes *e (new when NULL) run d at the current thread count: primitives,
 * reorders and every buffer they need. On failure returns DL_ECONFIG or
 * DL_ENOMEM with the reason in err, and *e is left unusable (free it). */
dl_status dl_conv_onednn_reshape(dl_conv_onednn **e, const dl_conv_desc *d, char *err,
                                 size_t errlen);
/* y = conv(x, w) + bias; bias may be NULL only for a description without one.
 * x (n, c, h, w), w (m, c / group, kh, kw), bias (m), y (n, m, oh, ow). */
void dl_conv_onednn_forward(dl_conv_onednn *e, const float *x, const float *w, const float *bias,
                            float *y);
/* dx = conv_data_grad(dy, w) (overwritten; skipped when dx is NULL), dw += the
 * weight gradient, db += the bias gradient (db NULL: none). x must be what the
 * last forward read when it was the same pointer. */
void dl_conv_onednn_backward(dl_conv_onednn *e, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db);
/* Forget the x the last forward saw: the next backward reads x afresh. */
void dl_conv_onednn_forget(dl_conv_onednn *e);
void dl_conv_onednn_free(dl_conv_onednn *e);

/* The engine a set-up Convolution layer runs on: "native" or "onednn". */
const char *dl_conv_engine(const dl_layer *l);

#endif
