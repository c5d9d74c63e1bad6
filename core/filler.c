#include "core/filler.h"

#include <math.h>

static float fan_scale(const dl_filler *f, dl_blob *b) {
  float fan_in = (float)b->count / (float)dl_blob_dim(b, 0);
  float fan_out = b->ndim > 1 ? (float)b->count / (float)dl_blob_dim(b, 1) : fan_in;
  if (f->variance_norm == DL_FAN_OUT) return fan_out;
  if (f->variance_norm == DL_FAN_AVERAGE) return (fan_in + fan_out) / 2.0f;
  return fan_in;
}

void dl_fill(const dl_filler *f, dl_blob *b, dl_rng *rng) {
  float *x = dl_data(b);
  size_t n = b->count;
  switch ((dl_fill_type)f->type) {
  case DL_FILL_CONSTANT:
    for (size_t i = 0; i < n; i++) x[i] = f->value;
    break;
  case DL_FILL_UNIFORM:
    for (size_t i = 0; i < n; i++) x[i] = dl_rng_uniform_range(rng, f->min, f->max);
    break;
  case DL_FILL_GAUSSIAN:
    for (size_t i = 0; i < n; i++) x[i] = dl_rng_gaussian(rng, f->mean, f->std);
    break;
  case DL_FILL_XAVIER: { /* uniform(-a, a), a = sqrt(3 / fan) keeps the variance 1/fan */
    float a = sqrtf(3.0f / fan_scale(f, b));
    for (size_t i = 0; i < n; i++) x[i] = dl_rng_uniform_range(rng, -a, a);
    break;
  }
  case DL_FILL_MSRA: { /* gaussian(0, sqrt(2 / fan)), He et al. 2015 */
    float s = sqrtf(2.0f / fan_scale(f, b));
    for (size_t i = 0; i < n; i++) x[i] = dl_rng_gaussian(rng, 0.0f, s);
    break;
  }
  }
}
