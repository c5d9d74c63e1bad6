/* Pad, crop, mirror, mean, scale and std for the image data layers (io/transform.h). */
#include "io/transform.h"

#include <stdlib.h>
#include <string.h>

#include "io/idx.h"
#include "io/prefetch.h"

/* A per-channel list may hold one value for every channel or one per channel. */
static dl_status per_channel(const dl_layer *l, const char *key, const dl_floats *v, int channels,
                             float def, float *out) {
  if (v->n != 0 && v->n != 1 && v->n != channels)
    return dl_layer_error(l, DL_ECONFIG, "%s: %d values for %d-channel images (give 1 or %d)", key,
                          v->n, channels, channels);
  for (int c = 0; c < channels; c++)
    out[c] = v->n == 0 ? def : v->v[v->n == 1 ? 0 : c];
  return DL_OK;
}

/* The mean file holds channels * height * width little-endian float32s. */
static dl_status read_mean(dl_transform *t, const dl_layer *l, const char *given) {
  char path[4096], err[600];
  dl_status st = dl_data_path(l, "mean_file", given, path, sizeof path);
  if (st) return st;
  uint8_t *buf;
  size_t len, want = (size_t)t->channels * t->height * t->width;
  if ((st = dl_read_file(path, want * 4 + 16, &buf, &len, err, sizeof err)))
    return dl_layer_error(l, st, "mean_file: %s", err);
  if (len != want * 4) {
    free(buf);
    return dl_layer_error(l, DL_EDATA,
                          "mean_file '%s' holds %zu bytes; a mean of %dx%dx%d images is %zu "
                          "float32s (%zu bytes)",
                          path, len, t->channels, t->height, t->width, want, want * 4);
  }
  t->mean_img = malloc(want * sizeof(float));
  if (!t->mean_img) {
    free(buf);
    return DL_ENOMEM;
  }
  for (size_t i = 0; i < want; i++) {
    const uint8_t *b = buf + 4 * i;
    uint32_t bits =
        (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    memcpy(&t->mean_img[i], &bits, 4);
  }
  free(buf);
  return DL_OK;
}

dl_status dl_transform_init(dl_transform *t, const dl_layer *l, const dl_transform_param *p,
                            int channels, int height, int width) {
  DL_ASSERT(channels >= 1 && channels <= 4);
  *t = (dl_transform){.channels = channels,
                      .height = height,
                      .width = width,
                      .pad = p->pad,
                      .crop = p->crop_size,
                      .mirror = p->mirror,
                      .random = l->phase == DL_TRAIN};
  dl_transform_rekey(t, l);
  int ph = height + 2 * p->pad, pw = width + 2 * p->pad;
  if (p->crop_size > ph || p->crop_size > pw)
    return dl_layer_error(l, DL_ECONFIG, "crop_size %d is larger than the %dx%d images%s",
                          p->crop_size, ph, pw, p->pad ? " (after padding)" : "");
  t->out_h = p->crop_size ? p->crop_size : ph;
  t->out_w = p->crop_size ? p->crop_size : pw;
  float std[4];
  dl_status st = per_channel(l, "mean_value", &p->mean_value, channels, 0, t->mean);
  if (!st) st = per_channel(l, "std", &p->std, channels, 1, std);
  if (st) return st;
  for (int c = 0; c < channels; c++)
    t->mul[c] = p->scale / std[c];
  if (!p->mean_file[0]) return DL_OK;
  if (p->mean_value.n)
    return dl_layer_error(l, DL_ECONFIG, "give mean_value or mean_file, not both");
  return read_mean(t, l, p->mean_file);
}

void dl_transform_free(dl_transform *t) {
  free(t->mean_img);
  t->mean_img = NULL;
}

void dl_transform_rekey(dl_transform *t, const dl_layer *l) {
  /* Apart from the order's key (same seed and layer), so that crops do not
   * correlate with the shuffle. */
  t->key = dl_seed_mix(dl_data_key(l), 0x7A4F, 0);
}

void dl_transform_choice(const dl_transform *t, int64_t position, int *y0, int *x0, int *flip) {
  int room_y = t->height + 2 * t->pad - t->out_h, room_x = t->width + 2 * t->pad - t->out_w;
  if (!t->random) {
    *y0 = room_y / 2, *x0 = room_x / 2, *flip = 0;
    return;
  }
  uint64_t k = 3 * (uint64_t)position;
  *y0 = (int)(dl_uniform_at(t->key, k) * (float)(room_y + 1));
  *x0 = (int)(dl_uniform_at(t->key, k + 1) * (float)(room_x + 1));
  if (*y0 > room_y) *y0 = room_y; /* float rounding at the top of [0, 1) */
  if (*x0 > room_x) *x0 = room_x;
  *flip = t->mirror && dl_uniform_at(t->key, k + 2) < 0.5f;
}

/* No window, no flip, no mean image: one straight (vectorizable) loop per
 * channel, the same arithmetic as the general case. */
static void apply_plain(const dl_transform *t, const uint8_t *src, float *dst) {
  size_t plane = (size_t)t->height * t->width;
  for (int c = 0; c < t->channels; c++) {
    const uint8_t *in = src + c * plane; /* (height * width) */
    float *out = dst + c * plane;        /* (height * width) */
    float mean = t->mean[c], mul = t->mul[c];
    for (size_t k = 0; k < plane; k++)
      out[k] = ((float)in[k] - mean) * mul;
  }
}

void dl_transform_apply(const dl_transform *t, const uint8_t *src, int64_t position, float *dst) {
  int y0, x0, flip;
  dl_transform_choice(t, position, &y0, &x0, &flip);
  if (!t->pad && !flip && !t->mean_img && t->out_h == t->height && t->out_w == t->width) {
    apply_plain(t, src, dst);
    return;
  }
  size_t plane = (size_t)t->height * t->width;
  for (int c = 0; c < t->channels; c++) {
    const uint8_t *in = src + c * plane;                              /* (height, width) */
    const float *mean = t->mean_img ? t->mean_img + c * plane : NULL; /* (height, width) */
    float *out = dst + (size_t)c * t->out_h * t->out_w;               /* (out_h, out_w) */
    for (int y = 0; y < t->out_h; y++) {
      int sy = y0 + y - t->pad; /* row in the stored image */
      for (int x = 0; x < t->out_w; x++) {
        int sx = x0 + x - t->pad;
        float v = 0; /* padding: already "mean-subtracted" */
        if (sy >= 0 && sy < t->height && sx >= 0 && sx < t->width) {
          size_t k = (size_t)sy * t->width + sx;
          v = ((float)in[k] - (mean ? mean[k] : t->mean[c])) * t->mul[c];
        }
        out[(size_t)y * t->out_w + (flip ? t->out_w - 1 - x : x)] = v;
      }
    }
  }
}
