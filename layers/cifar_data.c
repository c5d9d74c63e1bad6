/* CifarData: the CIFAR-10 binary format (records of 1 label byte + 3072 pixel
 * bytes, 3 x 32 x 32 CHW), one file or several (data_batch_1.bin ...), read
 * whole at setup (gzip or raw). The prefetch thread gathers each batch in a
 * per-epoch order and applies the shared transforms (io/transform.h). */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "io/idx.h"
#include "io/prefetch.h"
#include "io/transform.h"

#define CIFAR_SIDE      32
#define CIFAR_PIXELS    (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD    (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES   10
#define CIFAR_MAX_BYTES ((size_t)4 << 30)

typedef struct {
  dl_strings source;
  int batch_size;
  int shuffle;
  int max_examples;
  dl_transform_param tf;
} cifar_param;

static const dl_param_spec cifar_schema[] = {
    DL_P_STRINGS(cifar_param, source, NULL,
                 "CIFAR-10 .bin file, or a list of them read in order (e.g. [data_batch_1.bin, "
                 "data_batch_2.bin]); gzip or raw; relative to the net file",
                 "data_param { source } (Caffe reads an LMDB made by convert_cifar_data)"),
    DL_P_INT(cifar_param, batch_size, NULL, 1, 1 << 20, "examples per batch",
             "data_param { batch_size }"),
    DL_P_ENUM(cifar_param, shuffle, "auto", dl_shuffle_names,
              "reshuffle every epoch (auto: in the train phase only)",
              "(Caffe shuffles once, when the LMDB is made)"),
    DL_P_INT(cifar_param, max_examples, "0", 0, 1 << 30,
             "use only the first N records of the files (0: all)", "(none)"),
    DL_TRANSFORM_SPECS(cifar_param, tf, "1"),
    DL_SPEC_END};

typedef struct {
  int nfiles;
  uint8_t *files[DL_LIST_MAX]; /* each file's bytes, whole */
  const uint8_t **rec;         /* (n) each record: label byte, then 3 x 32 x 32 pixels */
  dl_transform tf;
  dl_batcher b; /* n, batch, cursor, epoch order, prefetch thread */
} cifar_priv;

/* Runs on the prefetch thread: a pure function of pos and immutable data. */
static int cifar_fill(void *user, const int64_t pos[4], float *const *out, char *err,
                      size_t errlen) {
  (void)err, (void)errlen;
  cifar_priv *p = user;
  float *data = out[0];  /* (batch, 3, out_h, out_w) */
  float *label = out[1]; /* (batch) */
  size_t per = (size_t)3 * p->tf.out_h * p->tf.out_w;
  dl_order_batch(&p->b.order, pos, p->b.batch, p->b.batch_idx);
  for (int j = 0; j < p->b.batch; j++) {
    const uint8_t *r = p->rec[p->b.batch_idx[j]];
    dl_transform_apply(&p->tf, r + 1, pos[0] * p->b.n + pos[1] + j, data + j * per);
    label[j] = (float)r[0];
  }
  return 0;
}

static void cifar_destroy(dl_layer *l) {
  cifar_priv *p = l->priv;
  if (!p) return;
  dl_batcher_free(&p->b); /* joins the thread before the data it reads goes away */
  for (int i = 0; i < p->nfiles; i++)
    free(p->files[i]);
  free(p->rec);
  dl_transform_free(&p->tf);
  free(p);
  l->priv = NULL;
}

/* Reads one file and checks its records; *records receives their count. */
static dl_status read_cifar(dl_layer *l, cifar_priv *p, const char *given, size_t *records) {
  char path[4096], err[600];
  dl_status st = dl_data_path(l, "source", given, path, sizeof path);
  if (st) return st;
  uint8_t *buf;
  size_t len;
  if ((st = dl_read_file(path, CIFAR_MAX_BYTES, &buf, &len, err, sizeof err)))
    return dl_layer_error(l, st, "source: %s", err);
  p->files[p->nfiles++] = buf;
  size_t n = len / CIFAR_RECORD;
  if (len % CIFAR_RECORD)
    return dl_layer_error(l, DL_EDATA,
                          "'%s': truncated: %zu bytes is not a whole number of %d-byte CIFAR-10 "
                          "records; record %zu (0-based) has only %zu bytes",
                          path, len, CIFAR_RECORD, n, len % CIFAR_RECORD);
  if (n == 0) return dl_layer_error(l, DL_EDATA, "'%s' holds no records", path);
  for (size_t r = 0; r < n; r++)
    if (buf[r * CIFAR_RECORD] >= CIFAR_CLASSES)
      return dl_layer_error(l, DL_EDATA,
                            "'%s': record %zu (0-based, at byte %zu) has label %u; CIFAR-10 "
                            "labels are 0-9 (CIFAR-100 files, with 2 label bytes, are not "
                            "supported)",
                            path, r, r * CIFAR_RECORD, buf[r * CIFAR_RECORD]);
  *records = n;
  return DL_OK;
}

/* Reads every file and indexes the records, in file order. */
static dl_status read_all(dl_layer *l, cifar_priv *p) {
  const cifar_param *prm = l->param;
  size_t counts[DL_LIST_MAX], total = 0;
  for (int i = 0; i < prm->source.n; i++) {
    dl_status st = read_cifar(l, p, prm->source.v[i], &counts[i]);
    if (st) return st;
    total += counts[i];
  }
  if (total > (1u << 30))
    return dl_layer_error(l, DL_EDATA, "%zu records is more than supported", total);
  p->b.n = (int)total;
  if (prm->max_examples > 0 && prm->max_examples < p->b.n) p->b.n = prm->max_examples;
  p->rec = dl_malloc((size_t)p->b.n * sizeof *p->rec);
  if (!p->rec) return DL_ENOMEM;
  int k = 0;
  for (int i = 0; i < p->nfiles; i++)
    for (size_t r = 0; r < counts[i] && k < p->b.n; r++)
      p->rec[k++] = p->files[i] + r * CIFAR_RECORD;
  return DL_OK;
}

static dl_status cifar_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const cifar_param *prm = l->param;
  if (prm->source.n == 0) return dl_layer_error(l, DL_ECONFIG, "source: give at least one file");
  cifar_priv *p = dl_calloc(1, sizeof *p);
  if (!p) return DL_ENOMEM;
  l->priv = p;
  dl_status st = read_all(l, p);
  if (!st) st = dl_transform_init(&p->tf, l, &prm->tf, 3, CIFAR_SIDE, CIFAR_SIDE);
  if (st) return st;
  p->b.batch = prm->batch_size;
  size_t counts[2] = {(size_t)p->b.batch * 3 * p->tf.out_h * p->tf.out_w, (size_t)p->b.batch};
  return dl_batcher_init(&p->b, l, p->b.n, p->b.batch, prm->shuffle, 2, counts, cifar_fill, p);
}

static dl_status cifar_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  const cifar_priv *p = l->priv;
  dl_status st = dl_blob_reshape4(top[0], p->b.batch, 3, p->tf.out_h, p->tf.out_w);
  if (!st && nt > 1) st = dl_blob_reshape(top[1], 1, (int[]){p->b.batch});
  return st;
}

static dl_status cifar_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  cifar_priv *p = l->priv;
  return dl_batcher_forward(l, &p->b, top, nt);
}

static int cifar_max_label(const dl_layer *l, int t) {
  const cifar_priv *p = l->priv;
  int mx = -1;
  for (int i = 0; t == 1 && i < p->b.n; i++)
    if (p->rec[i][0] > mx) mx = p->rec[i][0];
  return mx;
}

static void cifar_get_cursor(dl_layer *l, int64_t cursor[4]) {
  const cifar_priv *p = l->priv;
  dl_batcher_get_cursor(&p->b, cursor);
}

static dl_status cifar_set_cursor(dl_layer *l, const int64_t cursor[4]) {
  cifar_priv *p = l->priv;
  return dl_batcher_set_cursor(l, &p->b, cursor, &p->tf);
}

const dl_layer_ops dl_layer_cifar_data = {
    .type = "CifarData",
    .summary = "CIFAR-10 binary batches (label byte + 3x32x32 pixels), transformed, prefetched",
    .schema = cifar_schema,
    .param_size = sizeof(cifar_param),
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .bottoms_doc = "none",
    .tops_doc = "data: N x 3 x 32 x 32 (crop_size x crop_size when cropping); label: N (0-9)",
    .flags = DL_LAYER_DATA,
    .setup = cifar_setup,
    .reshape = cifar_reshape,
    .forward = cifar_forward,
    .destroy = cifar_destroy,
    .get_cursor = cifar_get_cursor,
    .max_label = cifar_max_label,
    .set_cursor = cifar_set_cursor,
};
