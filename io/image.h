/* PNG images through libpng, held as 8-bit CHW planes (the layout of CIFAR and of
 * the nets' inputs), and the bilinear resize of ImageData. Like io/idx.h, these
 * record no diagnostics: they return a status and write a message naming the
 * file to err, so the prefetch thread can call them. */
#ifndef DL_IMAGE_H
#define DL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DL_IMAGE_MAX_SIDE 16384

typedef struct {
  int channels, height, width;
  uint8_t *pixels; /* (channels, height, width) */
} dl_image;

/* Reads a PNG of any colour type and depth (grey, grey+alpha, RGB, RGBA,
 * palette; 1 to 16 bits), expanded to 8 bits (16-bit samples are rounded,
 * v * 255 / 65535) and converted to `channels`: 1 (RGB becomes the luma
 * 0.299 R + 0.587 G + 0.114 B) or 3 (grey is replicated); alpha is dropped.
 * Errors (DL_EDATA, DL_ENOMEM) name the file. */
dl_status dl_png_read(const char *path, int channels, dl_image *out, char *err, size_t errlen);
/* Only the header: the stored size. */
dl_status dl_png_size(const char *path, int *height, int *width, char *err, size_t errlen);
/* Writes an 8-bit grey (1 channel) or RGB (3 channels) PNG. Errors: DL_EIO. */
dl_status dl_png_write(const char *path, const dl_image *img, char *err, size_t errlen);
void dl_image_free(dl_image *img);

/* Bilinear resize of each of `channels` planes from h x w to oh x ow, sampling
 * at pixel centres (as OpenCV's INTER_LINEAR), rounded to the nearest byte. */
void dl_image_resize(const uint8_t *src, int channels, int h, int w, uint8_t *dst, int oh, int ow);

#endif
