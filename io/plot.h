/* A tiny rasterizer for charts written as PNG: an RGB canvas, lines,
 * rectangles, text in a built-in 5x7 bitmap font, and a line chart (one line
 * per series over categorical x positions, linear or log-scale y, ticks,
 * grid and legend) on top of them. libpng writes the file; nothing else is
 * needed. Like io/image.h, these record no diagnostics: they return a status
 * and write a message to err. */
#ifndef DL_PLOT_H
#define DL_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct {
  uint8_t r, g, b;
} dl_rgb;

typedef struct {
  int width, height;
  uint8_t *rgb; /* (height, width, 3), row-major */
} dl_canvas;

/* Glyph cell of the font at scale 1: 5 x 7 pixels plus 1 column of spacing. */
#define DL_FONT_W 5
#define DL_FONT_H 7

/* Allocates a canvas filled with `background`. Errors: DL_ENOMEM, DL_EUSAGE (size). */
dl_status dl_canvas_init(dl_canvas *c, int width, int height, dl_rgb background);
void dl_canvas_free(dl_canvas *c);
/* Pixels outside the canvas are ignored by every drawing call. */
void dl_canvas_pixel(dl_canvas *c, int x, int y, dl_rgb color);
dl_rgb dl_canvas_get(const dl_canvas *c, int x, int y);
/* A filled rectangle with its top-left corner at (x, y). */
void dl_canvas_rect(dl_canvas *c, int x, int y, int w, int h, dl_rgb color);
/* A straight line from (x0, y0) to (x1, y1), both ends included, `thickness`
 * pixels wide (a square pen centred on the line). */
void dl_canvas_line(dl_canvas *c, int x0, int y0, int x1, int y1, int thickness, dl_rgb color);
/* Text with its top-left corner at (x, y), each font pixel drawn as a
 * scale x scale square; '\n' is not special. Characters outside the font
 * (printable ASCII) are drawn as a box. Returns the width drawn. */
int dl_canvas_text(dl_canvas *c, int x, int y, const char *text, int scale, dl_rgb color);
int dl_text_width(const char *text, int scale);
/* Writes an 8-bit RGB PNG. Errors: DL_EIO. */
dl_status dl_canvas_save_png(const dl_canvas *c, const char *path, char *err, size_t errlen);

/* A line chart. values[s * npoints + i] is series s at x position i; a
 * missing value is NaN (or <= 0 on a log scale) and breaks the line. */
typedef struct {
  const char *title, *xlabel, *ylabel;
  int npoints;
  const char *const *xticks; /* (npoints) labels of the x positions, equally spaced */
  int nseries;
  const char *const *names; /* (nseries) legend entries */
  const double *values;     /* (nseries, npoints) */
  int log_y;                /* 1: log10 y axis */
} dl_chart;

/* Draws the chart over the whole canvas. */
void dl_chart_draw(dl_canvas *c, const dl_chart *chart);

#endif
