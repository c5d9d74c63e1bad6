/* Weight initialisation: constant, uniform, gaussian, xavier, msra (as Caffe). */
#ifndef DL_FILLER_H
#define DL_FILLER_H

#include "core/blob.h"
#include "core/rng.h"
#include "core/schema.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fan_in = count / shape[0], fan_out = count / shape[1] (Caffe's convention). */
void dl_fill(const dl_filler *f, dl_blob *b, dl_rng *rng);

#ifdef __cplusplus
}
#endif

#endif
