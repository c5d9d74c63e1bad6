/* dltrain convert: data sets from other formats, so that CIFAR-format and PNG
 * data exist without a download (data/make_*.sh call these on Fashion-MNIST).
 *   cifar: idx images + labels -> one CIFAR-10 binary file
 *   png:   idx images + labels -> a folder per class of PNGs and a list file
 *   mean:  CIFAR-10 files -> the mean image, for mean_file */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "io/idx.h"
#include "io/image.h"

#define CIFAR_SIDE   32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define MAX_CLASSES  256

static void convert_usage(FILE *f) {
  fprintf(f,
          "usage: dltrain convert cifar IMAGES LABELS OUT.bin [--first K] [--count N] [--resize]\n"
          "       dltrain convert png IMAGES LABELS OUTDIR [--first K] [--count N]\n"
          "                           [--list FILE] [--classes NAME,NAME,...]\n"
          "       dltrain convert mean OUT.mean CIFAR.bin...\n\n"
          "IMAGES and LABELS are idx files (MNIST, Fashion-MNIST; gzip or raw); --first and\n"
          "--count pick examples K .. K+N-1 (default: from 0, all).\n\n"
          "cifar  writes CIFAR-10 binary records (label byte + 3x32x32 pixels, CHW): each grey\n"
          "       image is centred on a black 32x32 canvas (--resize: resized bilinearly\n"
          "       instead) and copied to the 3 channels. Labels must be 0-9.\n"
          "png    writes OUTDIR/CLASS/NNNNN.png (8-bit grey; CLASS is the label, or its name\n"
          "       from --classes) and appends `path label` lines to the list file (--list;\n"
          "       paths relative to the list file's folder when the images are inside it).\n"
          "mean   writes the mean image of CIFAR-10 files as 3x32x32 little-endian float32s\n"
          "       (CHW), the mean_file format of the image data layers.\n\n"
          "See docs/data.md and data/make_*.sh.\n");
}

/* ---- shared: the idx pair and the options ------------------------------------------- */

typedef struct {
  const char *pos[3];
  int npos;
  int64_t first, count;
  int resize;
  const char *list, *classes;
} convert_opts;

static int parse_opts(const char *what, int argc, char **argv, convert_opts *o) {
  *o = (convert_opts){.count = -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--first")) {
      if (!cmd_parse_int(a, next, 0, 1 << 30, &o->first)) return 0;
      i++;
    } else if (!strcmp(a, "--count")) {
      if (!cmd_parse_int(a, next, 1, 1 << 30, &o->count)) return 0;
      i++;
    } else if (!strcmp(a, "--resize") && !strcmp(what, "cifar")) {
      o->resize = 1;
    } else if (!strcmp(a, "--list") && next && !strcmp(what, "png")) {
      o->list = argv[++i];
    } else if (!strcmp(a, "--classes") && next && !strcmp(what, "png")) {
      o->classes = argv[++i];
    } else if ((a[0] == '-' && a[1]) || o->npos == 3) {
      fprintf(stderr, "dltrain convert %s: unexpected '%s'\n\n", what, a);
      return 0;
    } else {
      o->pos[o->npos++] = a;
    }
  }
  if (o->npos == 3) return 1;
  fprintf(stderr, "dltrain convert %s: expected IMAGES LABELS %s\n\n", what,
          !strcmp(what, "png") ? "OUTDIR" : "OUT");
  return 0;
}

/* Reads the idx pair and clips [first, first + count) to it. */
static int read_pair(convert_opts *o, dl_idx *images, dl_idx *labels) {
  char err[600];
  *images = (dl_idx){0}, *labels = (dl_idx){0};
  if (dl_idx_read(o->pos[0], DL_IDX_IMAGES, images, err, sizeof err) ||
      dl_idx_read(o->pos[1], DL_IDX_LABELS, labels, err, sizeof err)) {
    fprintf(stderr, "dltrain convert: %s\n", err);
    return DL_EDATA;
  }
  uint32_t n = images->dims[0];
  if (labels->dims[0] != n) {
    fprintf(stderr, "dltrain convert: '%s' holds %u labels but '%s' holds %u images\n", o->pos[1],
            labels->dims[0], o->pos[0], n);
    return DL_EDATA;
  }
  if (o->first >= n) {
    fprintf(stderr, "dltrain convert: --first %lld is past the %u images of '%s'\n",
            (long long)o->first, n, o->pos[0]);
    return DL_EUSAGE;
  }
  if (o->count < 0 || o->first + o->count > n) o->count = n - o->first;
  return 0;
}

/* ---- cifar ------------------------------------------------------------------------- */

/* One grey image (h, w) as a CIFAR record: label, then 3 equal 32x32 planes. */
static void to_record(const uint8_t *img, int h, int w, int resize, uint8_t label, uint8_t *rec) {
  uint8_t *plane = rec + 1; /* (32, 32) */
  rec[0] = label;
  if (resize) {
    dl_image_resize(img, 1, h, w, plane, CIFAR_SIDE, CIFAR_SIDE);
  } else { /* centred; the border stays black */
    memset(plane, 0, CIFAR_SIDE * CIFAR_SIDE);
    int top = (CIFAR_SIDE - h) / 2, left = (CIFAR_SIDE - w) / 2;
    for (int y = 0; y < h; y++)
      memcpy(plane + (top + y) * CIFAR_SIDE + left, img + (size_t)y * w, (size_t)w);
  }
  memcpy(plane + CIFAR_SIDE * CIFAR_SIDE, plane, CIFAR_SIDE * CIFAR_SIDE);
  memcpy(plane + 2 * CIFAR_SIDE * CIFAR_SIDE, plane, CIFAR_SIDE * CIFAR_SIDE);
}

static int write_cifar(const convert_opts *o, const dl_idx *images, const dl_idx *labels) {
  int h = (int)images->dims[1], w = (int)images->dims[2];
  if (!o->resize && (h > CIFAR_SIDE || w > CIFAR_SIDE)) {
    fprintf(stderr, "dltrain convert cifar: %dx%d images do not fit in 32x32; use --resize\n", h,
            w);
    return DL_EUSAGE;
  }
  FILE *f = fopen(o->pos[2], "wb");
  if (!f) {
    fprintf(stderr, "dltrain convert: cannot write '%s': %s\n", o->pos[2], strerror(errno));
    return DL_EIO;
  }
  uint8_t rec[CIFAR_RECORD];
  int rc = 0;
  for (int64_t i = o->first; i < o->first + o->count && !rc; i++) {
    uint8_t label = labels->data[i];
    if (label > 9) {
      fprintf(stderr, "dltrain convert cifar: '%s': label %u of example %lld is not 0-9\n",
              o->pos[1], label, (long long)i);
      rc = DL_EDATA;
    } else {
      to_record(images->data + (size_t)i * h * w, h, w, o->resize, label, rec);
      if (fwrite(rec, 1, sizeof rec, f) != sizeof rec) rc = DL_EIO;
    }
  }
  if (fclose(f) && !rc) rc = DL_EIO;
  if (rc == DL_EIO) fprintf(stderr, "dltrain convert: cannot write '%s'\n", o->pos[2]);
  if (!rc)
    fprintf(stderr, "wrote %s: %lld records\n", o->pos[2], (long long)o->count);
  else
    remove(o->pos[2]); /* no half-written data set */
  return rc;
}

/* ---- png --------------------------------------------------------------------------- */

static int make_dir(const char *path) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
  fprintf(stderr, "dltrain convert: cannot create folder '%s': %s\n", path, strerror(errno));
  return DL_EIO;
}

/* The folder name of each label: from --classes, else the number. */
static int class_names(const char *classes, char names[MAX_CLASSES][128]) {
  for (int i = 0; i < MAX_CLASSES; i++)
    snprintf(names[i], sizeof names[i], "%d", i);
  if (!classes) return 0;
  int i = 0;
  for (const char *s = classes; *s && i < MAX_CLASSES; i++) {
    size_t n = strcspn(s, ",");
    if (n == 0 || n >= sizeof names[i] || memchr(s, '/', n) || (s[0] == '.')) {
      fprintf(stderr, "dltrain convert png: --classes: bad name '%.*s'\n", (int)n, s);
      return DL_EUSAGE;
    }
    snprintf(names[i], sizeof names[i], "%.*s", (int)n, s);
    s += n + (s[n] == ',');
  }
  return 0;
}

/* `path` as the list file should name it: relative to the list's folder when
 * it is inside it, otherwise absolute. */
static void list_name(const char *listdir, const char *path, char *out, size_t n) {
  char abs[PATH_MAX];
  if (!realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
  size_t k = strlen(listdir);
  if (listdir[0] && !strncmp(abs, listdir, k) && abs[k] == '/')
    snprintf(out, n, "%s", abs + k + 1);
  else
    snprintf(out, n, "%s", abs);
}

/* The list file (appended to) and the real path of its folder. */
static FILE *open_list(const char *list, char *dir, size_t n) {
  dir[0] = 0;
  if (!list) return NULL;
  FILE *f = fopen(list, "a");
  if (!f) {
    fprintf(stderr, "dltrain convert: cannot write '%s': %s\n", list, strerror(errno));
    return NULL;
  }
  char copy[PATH_MAX], abs[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", list);
  if (realpath(dirname(copy), abs)) snprintf(dir, n, "%s", abs);
  return f;
}

static int write_one_png(const char *outdir, const char *cls, int64_t i, const uint8_t *pixels,
                         int h, int w, char *path, size_t n) {
  char err[600], dir[PATH_MAX];
  int len = snprintf(dir, sizeof dir, "%s/%s", outdir, cls);
  if (len < 0 || (size_t)len >= sizeof dir - 32) {
    fprintf(stderr, "dltrain convert: the path '%s/%s' is too long\n", outdir, cls);
    return DL_EUSAGE;
  }
  int rc = make_dir(dir);
  if (rc) return rc;
  len = snprintf(path, n, "%s/%05lld.png", dir, (long long)i);
  if (len < 0 || (size_t)len >= n) return DL_EUSAGE; /* cannot happen: dir left room */
  dl_image img = {1, h, w, (uint8_t *)pixels};
  if (dl_png_write(path, &img, err, sizeof err)) {
    fprintf(stderr, "dltrain convert: %s\n", err);
    return DL_EIO;
  }
  return 0;
}

static int write_pngs(const convert_opts *o, const dl_idx *images, const dl_idx *labels) {
  static char names[MAX_CLASSES][128];
  int rc = class_names(o->classes, names);
  if (!rc) rc = make_dir(o->pos[2]);
  if (rc) return rc;
  char listdir[PATH_MAX];
  FILE *list = open_list(o->list, listdir, sizeof listdir);
  if (o->list && !list) return DL_EIO;
  int h = (int)images->dims[1], w = (int)images->dims[2];
  for (int64_t i = o->first; i < o->first + o->count && !rc; i++) {
    char path[PATH_MAX], rel[PATH_MAX];
    uint8_t label = labels->data[i];
    rc = write_one_png(o->pos[2], names[label], i, images->data + (size_t)i * h * w, h, w, path,
                       sizeof path);
    if (!rc && list) {
      list_name(listdir, path, rel, sizeof rel);
      if (fprintf(list, "%s %u\n", rel, label) < 0) rc = DL_EIO;
    }
  }
  if (list && fclose(list) && !rc) rc = DL_EIO;
  if (rc == DL_EIO && list) fprintf(stderr, "dltrain convert: cannot write '%s'\n", o->list);
  if (!rc) fprintf(stderr, "wrote %lld PNGs under %s\n", (long long)o->count, o->pos[2]);
  return rc;
}

/* ---- mean -------------------------------------------------------------------------- */

/* Adds the pixels of every record of one CIFAR file to sum. */
static int add_cifar(const char *path, double *sum, int64_t *records) {
  char err[600];
  uint8_t *buf;
  size_t len;
  if (dl_read_file(path, (size_t)4 << 30, &buf, &len, err, sizeof err)) {
    fprintf(stderr, "dltrain convert mean: %s\n", err);
    return DL_EDATA;
  }
  if (len % CIFAR_RECORD || len == 0) {
    fprintf(stderr,
            "dltrain convert mean: '%s' (%zu bytes) is not a whole number of %d-byte "
            "CIFAR-10 records\n",
            path, len, CIFAR_RECORD);
    free(buf);
    return DL_EDATA;
  }
  for (size_t r = 0; r < len / CIFAR_RECORD; r++)
    for (int k = 0; k < CIFAR_PIXELS; k++)
      sum[k] += buf[r * CIFAR_RECORD + 1 + k];
  *records += (int64_t)(len / CIFAR_RECORD);
  free(buf);
  return 0;
}

static int write_mean(const char *out, const double *sum, int64_t records) {
  uint8_t bytes[4 * CIFAR_PIXELS];
  for (int k = 0; k < CIFAR_PIXELS; k++) {
    float v = (float)(sum[k] / (double)records);
    uint32_t bits;
    memcpy(&bits, &v, 4);
    for (int b = 0; b < 4; b++) /* little-endian, whatever the host */
      bytes[4 * k + b] = (uint8_t)(bits >> (8 * b));
  }
  FILE *f = fopen(out, "wb");
  int ok = f && fwrite(bytes, 1, sizeof bytes, f) == sizeof bytes;
  if (f && fclose(f)) ok = 0;
  if (!ok) {
    fprintf(stderr, "dltrain convert mean: cannot write '%s': %s\n", out, strerror(errno));
    return DL_EIO;
  }
  fprintf(stderr, "wrote %s: the mean of %lld records\n", out, (long long)records);
  return 0;
}

static int cmd_mean(int argc, char **argv) {
  if (argc < 3 || argv[1][0] == '-') {
    fprintf(stderr, "dltrain convert mean: expected OUT.mean CIFAR.bin...\n\n");
    convert_usage(stderr);
    return DL_EUSAGE;
  }
  static double sum[CIFAR_PIXELS];
  memset(sum, 0, sizeof sum);
  int64_t records = 0;
  for (int i = 2; i < argc; i++) {
    int rc = add_cifar(argv[i], sum, &records);
    if (rc) return rc;
  }
  return write_mean(argv[1], sum, records);
}

/* ---- the command ------------------------------------------------------------------- */

int cmd_convert(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "--help") || !strcmp(what, "-h")) {
    convert_usage(stdout);
    return 0;
  }
  if (!strcmp(what, "mean")) return cmd_mean(argc - 1, argv + 1);
  if (strcmp(what, "cifar") && strcmp(what, "png")) {
    if (what[0]) fprintf(stderr, "dltrain convert: unknown format '%s'\n\n", what);
    convert_usage(stderr);
    return DL_EUSAGE;
  }
  convert_opts o;
  if (!parse_opts(what, argc - 1, argv + 1, &o)) {
    convert_usage(stderr);
    return DL_EUSAGE;
  }
  dl_idx images, labels;
  int rc = read_pair(&o, &images, &labels);
  if (!rc)
    rc = !strcmp(what, "cifar") ? write_cifar(&o, &images, &labels)
                                : write_pngs(&o, &images, &labels);
  dl_idx_free(&images);
  dl_idx_free(&labels);
  return rc;
}
