/* The axes a per-channel (or per-position) parameter spans, shared by Scale and
 * Bias: a learned blob over x's axes [axis, axis + num_axes), or a second
 * bottom whose shape must equal x's from `axis` on (0-d: a scalar). */
#ifndef DL_LAYERS_AXIS_SPAN_H
#define DL_LAYERS_AXIS_SPAN_H

#include "core/layer.h"

typedef struct {
  int axis;               /* resolved, non-negative */
  int ndim;               /* axes of the spanning blob */
  int shape[DL_MAX_AXES]; /* its shape */
} dl_axis_span;

/* A learned blob: num_axes < 0 means every axis from `axis` on. */
dl_status dl_axis_span_learned(dl_layer *l, const dl_blob *x, int axis, int num_axes,
                               dl_axis_span *out);
/* A second bottom `b` named `what` ("scale", "bias") in messages. */
dl_status dl_axis_span_bottom(dl_layer *l, const dl_blob *x, const dl_blob *b, int axis,
                              const char *what, dl_axis_span *out);

#endif
