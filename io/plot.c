/* The canvas, its drawing calls, the 5x7 font and the line chart (plot.h). */
#include "io/plot.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- font ------------------------------------------------------------------ */

/* Each glyph is 7 rows of 5 pixels, '#' set. Lowercase has its own shapes. */
static const struct {
  char c;
  const char *rows; /* 35 characters */
} font[] = {
    {'0', ".###."
          "#...#"
          "#..##"
          "#.#.#"
          "##..#"
          "#...#"
          ".###."},
    {'1', "..#.."
          ".##.."
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          ".###."},
    {'2', ".###."
          "#...#"
          "....#"
          "...#."
          "..#.."
          ".#..."
          "#####"},
    {'3', "#####"
          "...#."
          "..#.."
          "...#."
          "....#"
          "#...#"
          ".###."},
    {'4', "...#."
          "..##."
          ".#.#."
          "#..#."
          "#####"
          "...#."
          "...#."},
    {'5', "#####"
          "#...."
          "####."
          "....#"
          "....#"
          "#...#"
          ".###."},
    {'6', "..##."
          ".#..."
          "#...."
          "####."
          "#...#"
          "#...#"
          ".###."},
    {'7', "#####"
          "....#"
          "...#."
          "..#.."
          ".#..."
          ".#..."
          ".#..."},
    {'8', ".###."
          "#...#"
          "#...#"
          ".###."
          "#...#"
          "#...#"
          ".###."},
    {'9', ".###."
          "#...#"
          "#...#"
          ".####"
          "....#"
          "...#."
          ".##.."},
    {'A', ".###."
          "#...#"
          "#...#"
          "#####"
          "#...#"
          "#...#"
          "#...#"},
    {'B', "####."
          "#...#"
          "#...#"
          "####."
          "#...#"
          "#...#"
          "####."},
    {'C', ".###."
          "#...#"
          "#...."
          "#...."
          "#...."
          "#...#"
          ".###."},
    {'D', "###.."
          "#..#."
          "#...#"
          "#...#"
          "#...#"
          "#..#."
          "###.."},
    {'E', "#####"
          "#...."
          "#...."
          "####."
          "#...."
          "#...."
          "#####"},
    {'F', "#####"
          "#...."
          "#...."
          "####."
          "#...."
          "#...."
          "#...."},
    {'G', ".###."
          "#...#"
          "#...."
          "#.###"
          "#...#"
          "#...#"
          ".####"},
    {'H', "#...#"
          "#...#"
          "#...#"
          "#####"
          "#...#"
          "#...#"
          "#...#"},
    {'I', ".###."
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          ".###."},
    {'J', "..###"
          "...#."
          "...#."
          "...#."
          "...#."
          "#..#."
          ".##.."},
    {'K', "#...#"
          "#..#."
          "#.#.."
          "##..."
          "#.#.."
          "#..#."
          "#...#"},
    {'L', "#...."
          "#...."
          "#...."
          "#...."
          "#...."
          "#...."
          "#####"},
    {'M', "#...#"
          "##.##"
          "#.#.#"
          "#.#.#"
          "#...#"
          "#...#"
          "#...#"},
    {'N', "#...#"
          "#...#"
          "##..#"
          "#.#.#"
          "#..##"
          "#...#"
          "#...#"},
    {'O', ".###."
          "#...#"
          "#...#"
          "#...#"
          "#...#"
          "#...#"
          ".###."},
    {'P', "####."
          "#...#"
          "#...#"
          "####."
          "#...."
          "#...."
          "#...."},
    {'Q', ".###."
          "#...#"
          "#...#"
          "#...#"
          "#.#.#"
          "#..#."
          ".##.#"},
    {'R', "####."
          "#...#"
          "#...#"
          "####."
          "#.#.."
          "#..#."
          "#...#"},
    {'S', ".####"
          "#...."
          "#...."
          ".###."
          "....#"
          "....#"
          "####."},
    {'T', "#####"
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          "..#.."},
    {'U', "#...#"
          "#...#"
          "#...#"
          "#...#"
          "#...#"
          "#...#"
          ".###."},
    {'V', "#...#"
          "#...#"
          "#...#"
          "#...#"
          "#...#"
          ".#.#."
          "..#.."},
    {'W', "#...#"
          "#...#"
          "#...#"
          "#.#.#"
          "#.#.#"
          "#.#.#"
          ".#.#."},
    {'X', "#...#"
          "#...#"
          ".#.#."
          "..#.."
          ".#.#."
          "#...#"
          "#...#"},
    {'Y', "#...#"
          "#...#"
          ".#.#."
          "..#.."
          "..#.."
          "..#.."
          "..#.."},
    {'Z', "#####"
          "....#"
          "...#."
          "..#.."
          ".#..."
          "#...."
          "#####"},
    {'a', "....."
          "....."
          ".###."
          "....#"
          ".####"
          "#...#"
          ".####"},
    {'b', "#...."
          "#...."
          "#.##."
          "##..#"
          "#...#"
          "#...#"
          "####."},
    {'c', "....."
          "....."
          ".###."
          "#...."
          "#...."
          "#...#"
          ".###."},
    {'d', "....#"
          "....#"
          ".##.#"
          "#..##"
          "#...#"
          "#...#"
          ".####"},
    {'e', "....."
          "....."
          ".###."
          "#...#"
          "#####"
          "#...."
          ".###."},
    {'f', "..##."
          ".#..#"
          ".#..."
          "###.."
          ".#..."
          ".#..."
          ".#..."},
    {'g', "....."
          ".####"
          "#...#"
          "#...#"
          ".####"
          "....#"
          ".###."},
    {'h', "#...."
          "#...."
          "#.##."
          "##..#"
          "#...#"
          "#...#"
          "#...#"},
    {'i', "..#.."
          "....."
          ".##.."
          "..#.."
          "..#.."
          "..#.."
          ".###."},
    {'j', "...#."
          "....."
          "..##."
          "...#."
          "...#."
          "#..#."
          ".##.."},
    {'k', "#...."
          "#...."
          "#..#."
          "#.#.."
          "##..."
          "#.#.."
          "#..#."},
    {'l', ".##.."
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          ".###."},
    {'m', "....."
          "....."
          "##.#."
          "#.#.#"
          "#.#.#"
          "#...#"
          "#...#"},
    {'n', "....."
          "....."
          "#.##."
          "##..#"
          "#...#"
          "#...#"
          "#...#"},
    {'o', "....."
          "....."
          ".###."
          "#...#"
          "#...#"
          "#...#"
          ".###."},
    {'p', "....."
          "....."
          "####."
          "#...#"
          "####."
          "#...."
          "#...."},
    {'q', "....."
          "....."
          ".##.#"
          "#..##"
          ".####"
          "....#"
          "....#"},
    {'r', "....."
          "....."
          "#.##."
          "##..#"
          "#...."
          "#...."
          "#...."},
    {'s', "....."
          "....."
          ".###."
          "#...."
          ".###."
          "....#"
          "####."},
    {'t', ".#..."
          ".#..."
          "###.."
          ".#..."
          ".#..."
          ".#..#"
          "..##."},
    {'u', "....."
          "....."
          "#...#"
          "#...#"
          "#...#"
          "#..##"
          ".##.#"},
    {'v', "....."
          "....."
          "#...#"
          "#...#"
          "#...#"
          ".#.#."
          "..#.."},
    {'w', "....."
          "....."
          "#...#"
          "#...#"
          "#.#.#"
          "#.#.#"
          ".#.#."},
    {'x', "....."
          "....."
          "#...#"
          ".#.#."
          "..#.."
          ".#.#."
          "#...#"},
    {'y', "....."
          "....."
          "#...#"
          "#...#"
          ".####"
          "....#"
          ".###."},
    {'z', "....."
          "....."
          "#####"
          "...#."
          "..#.."
          ".#..."
          "#####"},
    {' ', "....."
          "....."
          "....."
          "....."
          "....."
          "....."
          "....."},
    {'.', "....."
          "....."
          "....."
          "....."
          "....."
          ".##.."
          ".##.."},
    {',', "....."
          "....."
          "....."
          "....."
          ".##.."
          "..#.."
          ".#..."},
    {'-', "....."
          "....."
          "....."
          "#####"
          "....."
          "....."
          "....."},
    {'_', "....."
          "....."
          "....."
          "....."
          "....."
          "....."
          "#####"},
    {'/', "....."
          "....#"
          "...#."
          "..#.."
          ".#..."
          "#...."
          "....."},
    {'(', "...#."
          "..#.."
          ".#..."
          ".#..."
          ".#..."
          "..#.."
          "...#."},
    {')', ".#..."
          "..#.."
          "...#."
          "...#."
          "...#."
          "..#.."
          ".#..."},
    {'[', ".###."
          ".#..."
          ".#..."
          ".#..."
          ".#..."
          ".#..."
          ".###."},
    {']', ".###."
          "...#."
          "...#."
          "...#."
          "...#."
          "...#."
          ".###."},
    {':', "....."
          ".##.."
          ".##.."
          "....."
          ".##.."
          ".##.."
          "....."},
    {'%', "##..."
          "##..#"
          "...#."
          "..#.."
          ".#..."
          "#..##"
          "...##"},
    {'+', "....."
          "..#.."
          "..#.."
          "#####"
          "..#.."
          "..#.."
          "....."},
    {'=', "....."
          "....."
          "#####"
          "....."
          "#####"
          "....."
          "....."},
    {'*', "....."
          "..#.."
          "#.#.#"
          ".###."
          "#.#.#"
          "..#.."
          "....."},
    {'<', "...#."
          "..#.."
          ".#..."
          "#...."
          ".#..."
          "..#.."
          "...#."},
    {'>', ".#..."
          "..#.."
          "...#."
          "....#"
          "...#."
          "..#.."
          ".#..."},
    {'!', "..#.."
          "..#.."
          "..#.."
          "..#.."
          "..#.."
          "....."
          "..#.."},
    {'?', ".###."
          "#...#"
          "....#"
          "...#."
          "..#.."
          "....."
          "..#.."},
    {'\'', "..#.."
           "..#.."
           ".#..."
           "....."
           "....."
           "....."
           "....."},
    {'^', "..#.."
          ".#.#."
          "#...#"
          "....."
          "....."
          "....."
          "....."},
};

/* An unknown character: a box. */
static const char *const box = "#####"
                               "#...#"
                               "#...#"
                               "#...#"
                               "#...#"
                               "#...#"
                               "#####";

static const char *glyph(char c) {
  for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
    if (font[i].c == c) return font[i].rows;
  return box;
}

/* ---- canvas ---------------------------------------------------------------- */

dl_status dl_canvas_init(dl_canvas *c, int width, int height, dl_rgb background) {
  *c = (dl_canvas){0};
  if (width < 1 || height < 1 || width > 16384 || height > 16384) return DL_EUSAGE;
  c->rgb = malloc((size_t)width * (size_t)height * 3);
  if (!c->rgb) return DL_ENOMEM;
  c->width = width;
  c->height = height;
  for (size_t i = 0; i < (size_t)width * (size_t)height; i++) {
    c->rgb[3 * i] = background.r;
    c->rgb[3 * i + 1] = background.g;
    c->rgb[3 * i + 2] = background.b;
  }
  return DL_OK;
}

void dl_canvas_free(dl_canvas *c) {
  free(c->rgb);
  *c = (dl_canvas){0};
}

void dl_canvas_pixel(dl_canvas *c, int x, int y, dl_rgb color) {
  if (x < 0 || y < 0 || x >= c->width || y >= c->height) return;
  uint8_t *p = c->rgb + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
  p[0] = color.r;
  p[1] = color.g;
  p[2] = color.b;
}

dl_rgb dl_canvas_get(const dl_canvas *c, int x, int y) {
  if (x < 0 || y < 0 || x >= c->width || y >= c->height) return (dl_rgb){0, 0, 0};
  const uint8_t *p = c->rgb + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
  return (dl_rgb){p[0], p[1], p[2]};
}

void dl_canvas_rect(dl_canvas *c, int x, int y, int w, int h, dl_rgb color) {
  int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
  int x1 = x + w > c->width ? c->width : x + w, y1 = y + h > c->height ? c->height : y + h;
  for (int j = y0; j < y1; j++)
    for (int i = x0; i < x1; i++)
      dl_canvas_pixel(c, i, j, color);
}

/* Bresenham's line, stamping a square pen at each step. */
void dl_canvas_line(dl_canvas *c, int x0, int y0, int x1, int y1, int thickness, dl_rgb color) {
  if (thickness < 1) thickness = 1;
  int off = (thickness - 1) / 2;
  int dx = abs(x1 - x0), dy = -abs(y1 - y0);
  int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
  for (;;) {
    dl_canvas_rect(c, x0 - off, y0 - off, thickness, thickness, color);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * e;
    if (e2 >= dy) e += dy, x0 += sx;
    if (e2 <= dx) e += dx, y0 += sy;
  }
}

int dl_text_width(const char *text, int scale) {
  size_t n = strlen(text);
  return n ? (int)n * (DL_FONT_W + 1) * scale - scale : 0;
}

int dl_canvas_text(dl_canvas *c, int x, int y, const char *text, int scale, dl_rgb color) {
  if (scale < 1) scale = 1;
  for (const char *t = text; *t; t++) {
    const char *rows = glyph(*t);
    int gx = x + (int)(t - text) * (DL_FONT_W + 1) * scale;
    for (int r = 0; r < DL_FONT_H; r++)
      for (int q = 0; q < DL_FONT_W; q++)
        if (rows[r * DL_FONT_W + q] == '#')
          dl_canvas_rect(c, gx + q * scale, y + r * scale, scale, scale, color);
  }
  return dl_text_width(text, scale);
}

dl_status dl_canvas_save_png(const dl_canvas *c, const char *path, char *err, size_t errlen) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)c->width;
  img.height = (png_uint_32)c->height;
  img.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&img, path, 0, c->rgb, c->width * 3, NULL)) {
    snprintf(err, errlen, "cannot write %s: %s", path, img.message);
    png_image_free(&img);
    return DL_EIO;
  }
  return DL_OK;
}

/* ---- the line chart -------------------------------------------------------- */

static const dl_rgb palette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                 {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                 {188, 189, 34},  {23, 190, 207}};
static const dl_rgb ink = {40, 40, 40}, grid = {225, 225, 225};
#define TEXT_SCALE 2
#define MAX_TICKS  64

static int usable(const dl_chart *ch, double v) { return isfinite(v) && (!ch->log_y || v > 0); }

/* The y range and its ticks: decades (with 2 and 5 when few) on a log axis;
 * 1, 2 or 5 times a power of ten steps from 0 on a linear one. */
static int y_ticks(const dl_chart *ch, double *lo, double *hi, double *ticks) {
  double mn = INFINITY, mx = -INFINITY;
  for (int i = 0; i < ch->nseries * ch->npoints; i++)
    if (usable(ch, ch->values[i])) {
      mn = fmin(mn, ch->values[i]);
      mx = fmax(mx, ch->values[i]);
    }
  int n = 0;
  if (ch->log_y) {
    if (!(mn <= mx)) mn = 1, mx = 10;
    int k0 = (int)floor(log10(mn) + 1e-9), k1 = (int)ceil(log10(mx) - 1e-9);
    if (k1 <= k0) k1 = k0 + 1;
    *lo = pow(10, k0);
    *hi = pow(10, k1);
    static const double m125[] = {1, 2, 5};
    int nm = k1 - k0 <= 3 ? 3 : 1;
    for (int k = k0; k <= k1 && n < MAX_TICKS; k++)
      for (int j = 0; j < nm && n < MAX_TICKS; j++)
        if (m125[j] * pow(10, k) <= *hi * (1 + 1e-9)) ticks[n++] = m125[j] * pow(10, k);
    return n;
  }
  if (!(mn <= mx)) mx = 1;
  if (mx <= 0) mx = 1;
  double raw = mx / 5, p = pow(10, floor(log10(raw))), step = p;
  if (raw > 5 * p)
    step = 10 * p;
  else if (raw > 2 * p)
    step = 5 * p;
  else if (raw > p)
    step = 2 * p;
  *lo = 0;
  *hi = ceil(mx / step - 1e-9) * step;
  for (double v = 0; v <= *hi * (1 + 1e-9) && n < MAX_TICKS; v += step)
    ticks[n++] = v;
  return n;
}

typedef struct {
  int left, right, top, bottom;
  double lo, hi;
  int log_y, npoints;
} frame;

static int y_pixel(const frame *f, double v) {
  double t = f->log_y ? (log10(v) - log10(f->lo)) / (log10(f->hi) - log10(f->lo))
                      : (v - f->lo) / (f->hi - f->lo);
  return f->bottom - (int)lround(t * (f->bottom - f->top));
}

static int x_pixel(const frame *f, int i) {
  return f->left + (int)((2L * i + 1) * (f->right - f->left) / (2L * f->npoints));
}

static void marker(dl_canvas *c, int x, int y, dl_rgb color) {
  dl_canvas_rect(c, x - 3, y - 3, 7, 7, color);
}

void dl_chart_draw(dl_canvas *c, const dl_chart *ch) {
  const int cw = (DL_FONT_W + 1) * TEXT_SCALE, chh = DL_FONT_H * TEXT_SCALE;
  double ticks[MAX_TICKS];
  frame f = {.log_y = ch->log_y, .npoints = ch->npoints > 0 ? ch->npoints : 1};
  int nticks = y_ticks(ch, &f.lo, &f.hi, ticks);
  char label[64];
  int ylabel_w = 0, legend_w = 0;
  for (int i = 0; i < nticks; i++) {
    snprintf(label, sizeof label, "%g", ticks[i]);
    int w = dl_text_width(label, TEXT_SCALE);
    if (w > ylabel_w) ylabel_w = w;
  }
  for (int s = 0; s < ch->nseries; s++) {
    int w = dl_text_width(ch->names[s], TEXT_SCALE);
    if (w > legend_w) legend_w = w;
  }
  f.left = 16 + ylabel_w + 10;
  f.right = c->width - (ch->nseries ? legend_w + 3 * cw + 24 : 20);
  f.top = 24 + 3 * chh;
  f.bottom = c->height - (3 * chh + 24);
  if (f.right <= f.left + 10) f.right = f.left + 10;
  if (f.bottom <= f.top + 10) f.bottom = f.top + 10;

  if (ch->title)
    dl_canvas_text(c, (c->width - dl_text_width(ch->title, TEXT_SCALE)) / 2, 12, ch->title,
                   TEXT_SCALE, ink);
  if (ch->ylabel) dl_canvas_text(c, 16, f.top - chh - 12, ch->ylabel, TEXT_SCALE, ink);
  /* Grid and y ticks. */
  for (int i = 0; i < nticks; i++) {
    int y = y_pixel(&f, ticks[i]);
    dl_canvas_line(c, f.left, y, f.right, y, 1, grid);
    dl_canvas_line(c, f.left - 5, y, f.left, y, 1, ink);
    snprintf(label, sizeof label, "%g", ticks[i]);
    dl_canvas_text(c, f.left - 8 - dl_text_width(label, TEXT_SCALE), y - chh / 2, label, TEXT_SCALE,
                   ink);
  }
  /* x ticks. */
  for (int i = 0; i < ch->npoints; i++) {
    int x = x_pixel(&f, i);
    dl_canvas_line(c, x, f.bottom, x, f.bottom + 5, 1, ink);
    const char *t = ch->xticks ? ch->xticks[i] : "";
    dl_canvas_text(c, x - dl_text_width(t, TEXT_SCALE) / 2, f.bottom + 10, t, TEXT_SCALE, ink);
  }
  if (ch->xlabel)
    dl_canvas_text(c, (f.left + f.right - dl_text_width(ch->xlabel, TEXT_SCALE)) / 2,
                   f.bottom + 20 + chh, ch->xlabel, TEXT_SCALE, ink);
  /* Axes: a frame around the plot area. */
  dl_canvas_line(c, f.left, f.top, f.right, f.top, 1, ink);
  dl_canvas_line(c, f.left, f.bottom, f.right, f.bottom, 1, ink);
  dl_canvas_line(c, f.left, f.top, f.left, f.bottom, 1, ink);
  dl_canvas_line(c, f.right, f.top, f.right, f.bottom, 1, ink);
  /* Series, then the legend. */
  for (int s = 0; s < ch->nseries; s++) {
    dl_rgb col = palette[s % (int)(sizeof palette / sizeof palette[0])];
    const double *v = ch->values + (size_t)s * (size_t)ch->npoints;
    for (int i = 0; i < ch->npoints; i++) {
      if (!usable(ch, v[i])) continue;
      int x = x_pixel(&f, i), y = y_pixel(&f, v[i]);
      if (i + 1 < ch->npoints && usable(ch, v[i + 1]))
        dl_canvas_line(c, x, y, x_pixel(&f, i + 1), y_pixel(&f, v[i + 1]), 2, col);
      marker(c, x, y, col);
    }
    int lx = f.right + 16, ly = f.top + 4 + s * (chh + 10);
    dl_canvas_line(c, lx, ly + chh / 2, lx + 2 * cw, ly + chh / 2, 2, col);
    marker(c, lx + cw, ly + chh / 2, col);
    dl_canvas_text(c, lx + 2 * cw + 8, ly, ch->names[s], TEXT_SCALE, ink);
  }
}
