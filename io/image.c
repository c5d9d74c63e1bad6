/* PNG reading and writing with libpng, and the bilinear resize (io/image.h). */
#include "io/image.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpng reports errors by longjmp; the handler leaves the message here. */
typedef struct {
  const char *path;
  char *err;
  size_t errlen;
  FILE *f;
  png_structp png;
  png_infop info;
  uint8_t *buf;    /* the decoded rows, interleaved */
  png_bytep *rows; /* (height) pointers into buf */
} png_job;

static void on_error(png_structp png, png_const_charp msg) {
  png_job *j = png_get_error_ptr(png);
  snprintf(j->err, j->errlen, "'%s' is not a readable PNG: %s", j->path, msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png, (void)msg; /* e.g. "known incorrect sRGB profile": the pixels are fine */
}

static void job_end(png_job *j) {
  if (j->png) png_destroy_read_struct(&j->png, j->info ? &j->info : NULL, NULL);
  if (j->f) fclose(j->f);
  free(j->buf);
  free(j->rows);
}

/* Opens the file, checks the signature and creates the read structs. */
static dl_status job_open(png_job *j) {
  j->f = fopen(j->path, "rb");
  if (!j->f) {
    snprintf(j->err, j->errlen, "cannot open '%s': %s", j->path, strerror(errno));
    return DL_EDATA;
  }
  uint8_t sig[8];
  if (fread(sig, 1, 8, j->f) != 8 || png_sig_cmp(sig, 0, 8)) {
    snprintf(j->err, j->errlen, "'%s' is not a PNG file (its first bytes are not a PNG signature)",
             j->path);
    return DL_EDATA;
  }
  j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, on_error, on_warning);
  if (j->png) j->info = png_create_info_struct(j->png);
  if (!j->info) {
    snprintf(j->err, j->errlen, "cannot read '%s': out of memory", j->path);
    return DL_ENOMEM;
  }
  png_set_user_limits(j->png, DL_IMAGE_MAX_SIDE, DL_IMAGE_MAX_SIDE);
  png_init_io(j->png, j->f);
  png_set_sig_bytes(j->png, 8);
  return DL_OK;
}

/* Asks libpng for 8-bit samples; the channel count (1 to 4) stays as stored
 * (alpha is dropped later, so a tRNS chunk needs no special case). */
static void set_transforms(png_job *j) {
  int type = png_get_color_type(j->png, j->info), depth = png_get_bit_depth(j->png, j->info);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(j->png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(j->png);
  if (depth == 16) png_set_scale_16(j->png);
  png_set_interlace_handling(j->png);
  png_read_update_info(j->png, j->info);
}

/* From interleaved rows of `have` channels (grey, grey+alpha, RGB, RGBA) to
 * `want` CHW planes. */
static void to_planes(const png_job *j, int have, int h, int w, int want, uint8_t *dst) {
  size_t plane = (size_t)h * w;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *s = j->rows[y] + (size_t)x * have;
      size_t k = (size_t)y * w + x;
      if (have <= 2) { /* grey */
        for (int c = 0; c < want; c++)
          dst[c * plane + k] = s[0];
      } else if (want == 3) {
        dst[k] = s[0], dst[plane + k] = s[1], dst[2 * plane + k] = s[2];
      } else { /* ITU-R BT.601 luma, as OpenCV's and PIL's grey conversion */
        dst[k] = (uint8_t)((299 * s[0] + 587 * s[1] + 114 * s[2] + 500) / 1000);
      }
    }
}

/* The part that may longjmp back to dl_png_read: everything it allocates is
 * reachable from j, so the handler can free it. */
static dl_status decode(png_job *j, int want, dl_image *out) {
  png_read_info(j->png, j->info);
  set_transforms(j);
  int h = (int)png_get_image_height(j->png, j->info), w = (int)png_get_image_width(j->png, j->info);
  int have = png_get_channels(j->png, j->info);
  size_t rowbytes = png_get_rowbytes(j->png, j->info);
  if (rowbytes != (size_t)w * have) { /* cannot happen with the transforms above */
    snprintf(j->err, j->errlen, "'%s': unexpected PNG layout", j->path);
    return DL_EDATA;
  }
  j->buf = malloc(rowbytes * h);
  j->rows = malloc(sizeof *j->rows * h);
  out->pixels = malloc((size_t)want * h * w);
  if (!j->buf || !j->rows || !out->pixels) {
    snprintf(j->err, j->errlen, "cannot decode '%s' (%dx%d): out of memory", j->path, w, h);
    return DL_ENOMEM;
  }
  for (int y = 0; y < h; y++)
    j->rows[y] = j->buf + (size_t)y * rowbytes;
  png_read_image(j->png, j->rows);
  png_read_end(j->png, NULL); /* checks the CRCs of what follows the pixels */
  to_planes(j, have, h, w, want, out->pixels);
  out->channels = want, out->height = h, out->width = w;
  return DL_OK;
}

dl_status dl_png_read(const char *path, int channels, dl_image *out, char *err, size_t errlen) {
  *out = (dl_image){0};
  png_job j = {.path = path, .err = err, .errlen = errlen};
  dl_status st = job_open(&j);
  if (!st) {
    if (setjmp(png_jmpbuf(j.png)))
      st = DL_EDATA; /* on_error wrote the message */
    else
      st = decode(&j, channels, out);
  }
  job_end(&j);
  if (st) dl_image_free(out);
  return st;
}

dl_status dl_png_size(const char *path, int *height, int *width, char *err, size_t errlen) {
  png_job j = {.path = path, .err = err, .errlen = errlen};
  dl_status st = job_open(&j);
  if (!st) {
    if (setjmp(png_jmpbuf(j.png))) {
      st = DL_EDATA;
    } else {
      png_read_info(j.png, j.info);
      *height = (int)png_get_image_height(j.png, j.info);
      *width = (int)png_get_image_width(j.png, j.info);
    }
  }
  job_end(&j);
  return st;
}

void dl_image_free(dl_image *img) {
  free(img->pixels);
  img->pixels = NULL;
}

/* ---- writing ---------------------------------------------------------------- */

typedef struct {
  const char *path;
  char *err;
  size_t errlen;
  FILE *f;
  png_structp png;
  png_infop info;
  uint8_t *row; /* one interleaved row */
} png_out;

static void on_write_error(png_structp png, png_const_charp msg) {
  png_out *o = png_get_error_ptr(png);
  snprintf(o->err, o->errlen, "cannot write '%s': %s", o->path, msg);
  png_longjmp(png, 1);
}

static void encode(png_out *o, const dl_image *img) {
  int c = img->channels, h = img->height, w = img->width;
  png_init_io(o->png, o->f);
  png_set_IHDR(o->png, o->info, (png_uint_32)w, (png_uint_32)h, 8,
               c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(o->png, o->info);
  size_t plane = (size_t)h * w;
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++)
        o->row[(size_t)x * c + k] = img->pixels[k * plane + (size_t)y * w + x];
    png_write_row(o->png, o->row);
  }
  png_write_end(o->png, NULL);
}

dl_status dl_png_write(const char *path, const dl_image *img, char *err, size_t errlen) {
  if (img->channels != 1 && img->channels != 3) {
    snprintf(err, errlen, "cannot write '%s': %d channels (1 or 3 expected)", path, img->channels);
    return DL_EIO;
  }
  png_out o = {.path = path, .err = err, .errlen = errlen};
  dl_status st = DL_OK;
  o.f = fopen(path, "wb");
  if (!o.f) {
    snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
    return DL_EIO;
  }
  o.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &o, on_write_error, on_warning);
  if (o.png) o.info = png_create_info_struct(o.png);
  o.row = malloc((size_t)img->width * img->channels);
  if (!o.info || !o.row) {
    snprintf(err, errlen, "cannot write '%s': out of memory", path);
    st = DL_ENOMEM;
  } else if (setjmp(png_jmpbuf(o.png))) {
    st = DL_EIO;
  } else {
    encode(&o, img);
  }
  if (o.png) png_destroy_write_struct(&o.png, o.info ? &o.info : NULL);
  free(o.row);
  if (fclose(o.f) && !st) {
    snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
    st = DL_EIO;
  }
  return st;
}

/* ---- resizing --------------------------------------------------------------- */

/* Source coordinate of output index i: the centre of output pixel i mapped
 * into the input, clamped to the edge pixels. */
static void sample_at(int i, int in, int outn, int *lo, int *hi, float *frac) {
  float f = ((float)i + 0.5f) * (float)in / (float)outn - 0.5f;
  if (f < 0) f = 0;
  *lo = (int)f;
  if (*lo > in - 1) *lo = in - 1;
  *hi = *lo + 1 < in ? *lo + 1 : in - 1;
  *frac = f - (float)*lo;
  if (*frac > 1) *frac = 1;
}

void dl_image_resize(const uint8_t *src, int channels, int h, int w, uint8_t *dst, int oh, int ow) {
  for (int c = 0; c < channels; c++) {
    const uint8_t *in = src + (size_t)c * h * w; /* (h, w) */
    uint8_t *out = dst + (size_t)c * oh * ow;    /* (oh, ow) */
    for (int y = 0; y < oh; y++) {
      int y0, y1;
      float fy;
      sample_at(y, h, oh, &y0, &y1, &fy);
      for (int x = 0; x < ow; x++) {
        int x0, x1;
        float fx;
        sample_at(x, w, ow, &x0, &x1, &fx);
        float top = (1 - fx) * in[y0 * w + x0] + fx * in[y0 * w + x1];
        float bottom = (1 - fx) * in[y1 * w + x0] + fx * in[y1 * w + x1];
        float v = (1 - fy) * top + fy * bottom + 0.5f;
        out[(size_t)y * ow + x] = (uint8_t)(v > 255 ? 255 : v);
      }
    }
  }
}
