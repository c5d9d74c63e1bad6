/* Image transformations shared by the image data layers (CifarData, ImageData,
 * MnistData), after Caffe's DataTransformer: pad, crop, mirror, mean, scale and
 * std, applied by the prefetch thread to one 8-bit CHW image at a time.
 *
 *   out[c][y][x] = (pixel - mean[c] (or mean_file[c][sy][sx])) * scale / std[c]
 *
 * Random choices (crop offsets, mirror) are a pure function of (seed, layer,
 * position of the example in the stream: epoch * n + index), drawn with
 * counter-based randomness, so a run resumed from a cursor augments exactly as
 * an uninterrupted one and no generator state needs saving. In the test phase
 * the crop is centred and nothing is mirrored. */
#ifndef DL_TRANSFORM_H
#define DL_TRANSFORM_H

#include <stdint.h>

#include "core/layer.h"

/* The keys a layer exposes (embed this struct in the layer's param struct and
 * list DL_TRANSFORM_SPECS in its schema). */
typedef struct {
  float scale;
  dl_floats mean_value;       /* 0, 1 or `channels` values */
  char mean_file[DL_STR_MAX]; /* raw float32 C x H x W (see docs/data.md); "" for none */
  dl_floats std;              /* 0, 1 or `channels` values */
  int mirror;
  int crop_size;
  int pad;
} dl_transform_param;

/* Schema entries for a param struct `st` holding a dl_transform_param named
 * `tf`; `scale_def` is the default scale as YAML text. */
#define DL_TF_SPEC(st, tf, key, type, def, lo, hi, help, caffe)                                    \
  { #key, type, offsetof(st, tf.key), def, lo, hi, NULL, help, caffe }
/* clang-format off */
#define DL_TRANSFORM_SPECS(st, tf, scale_def)                                                      \
  DL_TF_SPEC(st, tf, scale, DL_PT_FLOAT, scale_def, -1e9, 1e9,                                     \
             "multiplies each pixel after the mean is subtracted (0.00390625 maps bytes into "    \
             "[0, 1))", "transform_param { scale }"),                                              \
  DL_TF_SPEC(st, tf, mean_value, DL_PT_FLOATS, "[]", -1e9, 1e9,                                    \
             "subtracted from each pixel (0..255) first: one value, or one per channel",           \
             "transform_param { mean_value }"),                                                    \
  DL_TF_SPEC(st, tf, mean_file, DL_PT_STRING, "", 0, 0,                                            \
             "a mean image to subtract instead: raw float32, channels x height x width of the "    \
             "stored images (dltrain convert mean), relative to the net file",                     \
             "transform_param { mean_file } (a binaryproto in Caffe)"),                            \
  DL_TF_SPEC(st, tf, std, DL_PT_FLOATS, "[]", 1e-6, 1e9,                                           \
             "divides each pixel after mean and scale: one value, or one per channel (default 1)", \
             "(none)"),                                                                            \
  DL_TF_SPEC(st, tf, mirror, DL_PT_BOOL, "false", 0, 1,                                            \
             "flip half of the images left-right at random (train phase only)",                    \
             "transform_param { mirror } (Caffe also mirrors in the test phase)"),                 \
  DL_TF_SPEC(st, tf, crop_size, DL_PT_INT, "0", 0, 1 << 15,                                        \
             "crop a square this size: at a random place in train, the centre in test (0: no "    \
             "crop)", "transform_param { crop_size }"),                                            \
  DL_TF_SPEC(st, tf, pad, DL_PT_INT, "0", 0, 1 << 10,                                              \
             "add this many pixels on every side before cropping; padded pixels read 0 after "     \
             "the mean and scale (random-crop-with-padding augmentation)", "(none)")
/* clang-format on */

typedef struct dl_transform {
  int channels, height, width; /* the stored image */
  int out_h, out_w;            /* what apply writes: crop_size, or the padded size */
  int pad, crop, mirror;
  int random;            /* train phase: random crop offsets and mirroring */
  float mean[4], mul[4]; /* per channel: (pixel - mean) * mul, mul = scale / std */
  float *mean_img;       /* (channels, height, width) or NULL */
  uint64_t key;
} dl_transform;

/* Checks the keys against images of channels x height x width (crop too big,
 * a mean or std list of the wrong length, mean_value with mean_file) and reads
 * the mean file; errors are reported at the layer (DL_ECONFIG, DL_EDATA). */
dl_status dl_transform_init(dl_transform *t, const dl_layer *l, const dl_transform_param *p,
                            int channels, int height, int width);
void dl_transform_free(dl_transform *t);
/* The key the random choices derive from (set_cursor calls this: the snapshot's
 * seed replaces the one the layer was built with). */
void dl_transform_rekey(dl_transform *t, const dl_layer *l);

/* Where the window of the example at `position` starts in the padded image,
 * and whether it is mirrored. */
void dl_transform_choice(const dl_transform *t, int64_t position, int *y0, int *x0, int *flip);
/* src: (channels, height, width) bytes; dst: (channels, out_h, out_w). Runs on
 * the prefetch thread: reads only immutable state. */
void dl_transform_apply(const dl_transform *t, const uint8_t *src, int64_t position, float *dst);

#endif
