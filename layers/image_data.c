/* ImageData: PNG images named by a list file of `path label` lines, or found in
 * a folder with one directory per class. The list is read and every file
 * checked at setup; the prefetch thread decodes each batch (libpng), converts
 * the channels, resizes when asked and applies the shared transforms. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/layer.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/prefetch.h"
#include "io/transform.h"

#define LIST_MAX_BYTES ((size_t)1 << 30)
#define MAX_MISSING    10 /* missing files reported before giving up */

typedef struct {
  char source[DL_STR_MAX];
  char root_folder[DL_STR_MAX];
  int batch_size;
  int shuffle;
  int channels;
  int new_height, new_width;
  int max_examples;
  dl_transform_param tf;
} image_param;

static const dl_param_spec image_schema[] = {
    DL_P_STRING(image_param, source, "",
                "list file of `path label` lines (paths relative to the list file; # comments); "
                "relative to the net file",
                "image_data_param { source }"),
    DL_P_STRING(image_param, root_folder, "",
                "instead of source: a folder with one directory of .png files per class (classes "
                "numbered in name order)",
                "(Caffe's root_folder is a prefix for the paths in source)"),
    DL_P_INT(image_param, batch_size, NULL, 1, 1 << 20, "examples per batch",
             "image_data_param { batch_size }"),
    DL_P_ENUM(image_param, shuffle, "auto", dl_shuffle_names,
              "reshuffle every epoch (auto: in the train phase only)",
              "image_data_param { shuffle }"),
    DL_P_INT(image_param, channels, "3", 1, 3,
             "1 (grey) or 3 (RGB): images are converted as needed, alpha dropped",
             "image_data_param { is_color }"),
    DL_P_INT(image_param, new_height, "0", 0, DL_IMAGE_MAX_SIDE,
             "resize every image to this height (bilinear; with new_width; 0: no resize)",
             "image_data_param { new_height }"),
    DL_P_INT(image_param, new_width, "0", 0, DL_IMAGE_MAX_SIDE,
             "resize every image to this width (bilinear; with new_height; 0: no resize)",
             "image_data_param { new_width }"),
    DL_P_INT(image_param, max_examples, "0", 0, 1 << 30, "use only the first N images (0: all)",
             "(none)"),
    DL_TRANSFORM_SPECS(image_param, tf, "1"),
    DL_SPEC_END};

typedef struct {
  char *path; /* resolved */
  int label;
  int line; /* in the list file; 0 for root_folder */
} image_entry;

typedef struct {
  char list[4096]; /* the list file, for messages; "" with root_folder */
  image_entry *items;
  int count; /* items read */
  int channels, height, width, resize;
  dl_transform tf;
  uint8_t *resized; /* (channels, height, width) */
  dl_batcher b;     /* n, batch, cursor, epoch order, prefetch thread */
} image_priv;

/* ---- the prefetch thread -------------------------------------------------------- */

/* "list.txt:12: " for list entries, "" for folder entries (the path says it all). */
static void where(const image_priv *p, const image_entry *e, char *buf, size_t n) {
  if (e->line)
    snprintf(buf, n, "%s:%d: ", p->list, e->line);
  else
    buf[0] = 0;
}

/* Decodes one image into the stored size; 0 or an error message in err. */
static int load(image_priv *p, const image_entry *e, const uint8_t **pixels, dl_image *img,
                char *err, size_t errlen) {
  char at[4200], msg[600];
  where(p, e, at, sizeof at);
  if (dl_png_read(e->path, p->channels, img, msg, sizeof msg)) {
    snprintf(err, errlen, "%s%s", at, msg);
    return 1;
  }
  if (p->resize) {
    dl_image_resize(img->pixels, p->channels, img->height, img->width, p->resized, p->height,
                    p->width);
    *pixels = p->resized;
  } else if (img->height != p->height || img->width != p->width) {
    snprintf(err, errlen,
             "%s'%s' is %d wide and %d high, but this layer's images are %dx%d (the size of "
             "'%s'); set new_height and new_width to resize them",
             at, e->path, img->width, img->height, p->width, p->height, p->items[0].path);
    dl_image_free(img);
    return 1;
  } else {
    *pixels = img->pixels;
  }
  return 0;
}

static int image_fill(void *user, const int64_t pos[4], float *const *out, char *err,
                      size_t errlen) {
  image_priv *p = user;
  float *data = out[0];  /* (batch, channels, out_h, out_w) */
  float *label = out[1]; /* (batch) */
  size_t per = (size_t)p->channels * p->tf.out_h * p->tf.out_w;
  dl_order_batch(&p->b.order, pos, p->b.batch, p->b.batch_idx);
  for (int j = 0; j < p->b.batch; j++) {
    const image_entry *e = &p->items[p->b.batch_idx[j]];
    const uint8_t *pixels;
    dl_image img;
    if (load(p, e, &pixels, &img, err, errlen)) return 1;
    dl_transform_apply(&p->tf, pixels, pos[0] * p->b.n + pos[1] + j, data + j * per);
    label[j] = (float)e->label;
    dl_image_free(&img);
  }
  return 0;
}

/* ---- reading the list ----------------------------------------------------------- */

static dl_status add_item(image_priv *p, int *cap, char *path, int label, int line) {
  if (p->count == *cap) {
    int grown = *cap ? 2 * *cap : 256;
    image_entry *bigger = realloc(p->items, (size_t)grown * sizeof *bigger);
    if (!bigger) {
      free(path);
      return dl_error(DL_ENOMEM, "out of memory reading the image list");
    }
    p->items = bigger, *cap = grown;
  }
  p->items[p->count++] = (image_entry){path, label, line};
  return DL_OK;
}

/* `given` from the list, relative to the list file's directory. */
static char *resolve(const char *list, const char *given) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", list);
  int relative = given[0] != '/' && strchr(list, '/');
  size_t n = strlen(given) + (relative ? strlen(dir) + 2 : 1);
  char *out = malloc(n);
  if (!out) return NULL;
  if (relative)
    snprintf(out, n, "%s/%s", dirname(dir), given);
  else
    snprintf(out, n, "%s", given);
  return out;
}

/* A regular file we can open; else a message for the user. */
static const char *missing(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  return NULL;
}

/* One `path label` line (already trimmed, not blank, not a comment). The
 * label is the last field, so paths may hold spaces. */
static dl_status parse_line(dl_layer *l, image_priv *p, int *cap, char *s, int line,
                            int *nmissing) {
  char *lab = s + strlen(s);
  while (lab > s && !isspace((unsigned char)lab[-1]))
    lab--;
  char *end = lab;
  while (end > s && isspace((unsigned char)end[-1]))
    end--;
  if (end == s)
    return dl_layer_error(l, DL_EDATA, "%s:%d: expected 'path label', got '%s'", p->list, line, s);
  *end = 0;
  char *stop;
  errno = 0;
  long v = strtol(lab, &stop, 10);
  if (*stop || stop == lab || errno || v < 0 || v > (1 << 30))
    return dl_layer_error(l, DL_EDATA,
                          "%s:%d: bad label '%s' for '%s' (expected a non-negative integer)",
                          p->list, line, lab, s);
  char *path = resolve(p->list, s);
  if (!path) return DL_ENOMEM;
  const char *why = missing(path);
  if (why) {
    ++*nmissing;
    dl_layer_error(l, DL_EDATA, "%s:%d: image '%s' cannot be read (looked at '%s'): %s", p->list,
                   line, s, path, why);
    free(path);
    return DL_OK; /* keep going: report the first few missing files together */
  }
  return add_item(p, cap, path, (int)v, line);
}

static dl_status read_list(dl_layer *l, image_priv *p, const char *given) {
  dl_status st = dl_data_path(l, "source", given, p->list, sizeof p->list);
  if (st) return st;
  char err[600];
  uint8_t *text;
  size_t len;
  if ((st = dl_read_file(p->list, LIST_MAX_BYTES, &text, &len, err, sizeof err)))
    return dl_layer_error(l, st, "source: %s", err);
  int cap = 0, nmissing = 0, line = 0;
  for (char *s = (char *)text, *next; s && !st && nmissing < MAX_MISSING; s = next) {
    line++;
    next = strchr(s, '\n');
    if (next) *next++ = 0;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) /* also the \r of CRLF files */
      *--e = 0;
    while (isspace((unsigned char)*s))
      s++;
    if (*s && *s != '#') st = parse_line(l, p, &cap, s, line, &nmissing);
  }
  free(text);
  if (st) return st;
  if (nmissing) return DL_EDATA;
  if (p->count == 0) return dl_layer_error(l, DL_EDATA, "'%s' lists no images", p->list);
  return DL_OK;
}

/* ---- reading a folder of class folders ------------------------------------------ */

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_png_name(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* The sorted names in dir that are directories (want_dirs) or .png files. */
static dl_status list_dir(const char *dir, int want_dirs, char ***names, int *count, char *err,
                          size_t errlen) {
  *names = NULL, *count = 0;
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(err, errlen, "cannot open folder '%s': %s", dir, strerror(errno));
    return DL_EDATA;
  }
  int cap = 0;
  dl_status st = DL_OK;
  for (struct dirent *e; !st && (e = readdir(d));) {
    char full[8192];
    struct stat sb;
    snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
    int ok = want_dirs ? e->d_name[0] != '.' && stat(full, &sb) == 0 && S_ISDIR(sb.st_mode)
                       : is_png_name(e->d_name);
    if (!ok) continue;
    if (*count == cap) {
      cap = cap ? 2 * cap : 64;
      char **bigger = realloc(*names, (size_t)cap * sizeof *bigger);
      if (!bigger) {
        st = DL_ENOMEM;
        break;
      }
      *names = bigger;
    }
    if (!((*names)[*count] = strdup(e->d_name)))
      st = DL_ENOMEM;
    else
      ++*count;
  }
  closedir(d);
  if (st) snprintf(err, errlen, "out of memory listing '%s'", dir);
  if (*count > 1) qsort(*names, (size_t)*count, sizeof **names, by_name);
  return st;
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* Adds the images of one class folder with label `label`. */
static dl_status add_class(dl_layer *l, image_priv *p, int *cap, const char *root, const char *cls,
                           int label) {
  char dir[8192], err[600];
  snprintf(dir, sizeof dir, "%s/%s", root, cls);
  char **files;
  int n;
  dl_status st = list_dir(dir, 0, &files, &n, err, sizeof err);
  if (st) return dl_layer_error(l, st, "root_folder: %s", err);
  if (n == 0) st = dl_layer_error(l, DL_EDATA, "class folder '%s' holds no .png files", dir);
  for (int i = 0; i < n && !st; i++) {
    size_t len = strlen(dir) + strlen(files[i]) + 2;
    char *path = malloc(len);
    if (!path) {
      st = DL_ENOMEM;
      break;
    }
    snprintf(path, len, "%s/%s", dir, files[i]);
    st = add_item(p, cap, path, label, 0);
  }
  free_names(files, n);
  return st;
}

/* Tells the user which class got which number: the net only sees numbers. */
static void print_classes(const dl_layer *l, const image_priv *p, const char *root,
                          char *const *classes, int n) {
  fprintf(stderr, "layer '%s' (ImageData): %d images in %d classes from '%s':", l->name, p->count,
          n, root);
  for (int i = 0; i < n; i++)
    fprintf(stderr, "%s %d = %s", i ? "," : "", i, classes[i]);
  fprintf(stderr, "\n");
}

static dl_status read_folder(dl_layer *l, image_priv *p, const char *given) {
  char root[4096], err[600];
  dl_status st = dl_data_path(l, "root_folder", given, root, sizeof root);
  if (st) return st;
  char **classes;
  int n, cap = 0;
  if ((st = list_dir(root, 1, &classes, &n, err, sizeof err)))
    return dl_layer_error(l, st, "root_folder: %s", err);
  if (n == 0) st = dl_layer_error(l, DL_EDATA, "root_folder '%s' holds no class folders", root);
  for (int i = 0; i < n && !st; i++)
    st = add_class(l, p, &cap, root, classes[i], i);
  if (!st) print_classes(l, p, root, classes, n);
  free_names(classes, n);
  return st;
}

/* ---- the layer ------------------------------------------------------------------ */

static void image_destroy(dl_layer *l) {
  image_priv *p = l->priv;
  if (!p) return;
  dl_batcher_free(&p->b); /* joins the thread before the data it reads goes away */
  for (int i = 0; i < p->count; i++)
    free(p->items[i].path);
  free(p->items);
  dl_transform_free(&p->tf);
  free(p->resized);
  free(p);
  l->priv = NULL;
}

/* The stored size: new_height x new_width, or the first image's size. */
static dl_status image_size(dl_layer *l, image_priv *p) {
  const image_param *prm = l->param;
  if (!prm->new_height != !prm->new_width)
    return dl_layer_error(l, DL_ECONFIG, "give both new_height and new_width, or neither");
  p->resize = prm->new_height > 0;
  if (p->resize) {
    p->height = prm->new_height, p->width = prm->new_width;
    p->resized = dl_malloc((size_t)p->channels * p->height * p->width);
    return p->resized ? DL_OK : DL_ENOMEM;
  }
  char at[4200], err[600];
  where(p, &p->items[0], at, sizeof at);
  if (dl_png_size(p->items[0].path, &p->height, &p->width, err, sizeof err))
    return dl_layer_error(l, DL_EDATA, "%s%s", at, err);
  return DL_OK;
}

static dl_status image_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const image_param *prm = l->param;
  if (!prm->source[0] == !prm->root_folder[0])
    return dl_layer_error(l, DL_ECONFIG, "give source (a list file) or root_folder, not %s",
                          prm->source[0] ? "both" : "neither");
  if (prm->channels == 2)
    return dl_layer_error(l, DL_ECONFIG, "channels: 1 (grey) or 3 (RGB), got 2");
  image_priv *p = dl_calloc(1, sizeof *p);
  if (!p) return DL_ENOMEM;
  l->priv = p;
  p->channels = prm->channels;
  dl_status st =
      prm->source[0] ? read_list(l, p, prm->source) : read_folder(l, p, prm->root_folder);
  if (!st) st = image_size(l, p);
  if (!st) st = dl_transform_init(&p->tf, l, &prm->tf, p->channels, p->height, p->width);
  if (st) return st;
  p->b.n = prm->max_examples > 0 && prm->max_examples < p->count ? prm->max_examples : p->count;
  p->b.batch = prm->batch_size;
  size_t counts[2] = {(size_t)p->b.batch * p->channels * p->tf.out_h * p->tf.out_w,
                      (size_t)p->b.batch};
  return dl_batcher_init(&p->b, l, p->b.n, p->b.batch, prm->shuffle, 2, counts, image_fill, p);
}

static dl_status image_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  const image_priv *p = l->priv;
  dl_status st = dl_blob_reshape4(top[0], p->b.batch, p->channels, p->tf.out_h, p->tf.out_w);
  if (!st && nt > 1) st = dl_blob_reshape(top[1], 1, (int[]){p->b.batch});
  return st;
}

static dl_status image_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  image_priv *p = l->priv;
  return dl_batcher_forward(l, &p->b, top, nt);
}

static int image_max_label(const dl_layer *l, int t) {
  const image_priv *p = l->priv;
  int mx = -1;
  for (int i = 0; t == 1 && i < p->b.n; i++)
    if (p->items[i].label > mx) mx = p->items[i].label;
  return mx;
}

static void image_get_cursor(dl_layer *l, int64_t cursor[4]) {
  const image_priv *p = l->priv;
  dl_batcher_get_cursor(&p->b, cursor);
}

static dl_status image_set_cursor(dl_layer *l, const int64_t cursor[4]) {
  image_priv *p = l->priv;
  return dl_batcher_set_cursor(l, &p->b, cursor, &p->tf);
}

const dl_layer_ops dl_layer_image_data = {
    .type = "ImageData",
    .summary = "PNG images from a `path label` list or class folders; decoded and transformed "
               "in the prefetch thread",
    .schema = image_schema,
    .param_size = sizeof(image_param),
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .bottoms_doc = "none",
    .tops_doc = "data: N x channels x height x width (crop_size x crop_size when cropping); "
                "label: N",
    .flags = DL_LAYER_DATA,
    .setup = image_setup,
    .reshape = image_reshape,
    .forward = image_forward,
    .destroy = image_destroy,
    .get_cursor = image_get_cursor,
    .max_label = image_max_label,
    .set_cursor = image_set_cursor,
};
