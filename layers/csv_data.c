/* CSVData: a numeric CSV table read whole at setup; the last `label_columns`
 * columns are labels (or regression targets), the rest the data. Batches are
 * gathered by the prefetch thread in a per-epoch order. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "io/csv.h"
#include "io/prefetch.h"

typedef struct {
  char source[DL_STR_MAX];
  int batch_size;
  int label_columns;
  int header;
  char delimiter[DL_STR_MAX];
  int shuffle;
} csv_param;

static const dl_param_spec csv_schema[] = {
    DL_P_STRING(csv_param, source, NULL,
                "CSV file of numbers (optionally .gz), relative to the net file", "(none)"),
    DL_P_INT(csv_param, batch_size, NULL, 1, 1 << 20, "rows per batch", "(none)"),
    DL_P_INT(csv_param, label_columns, "1", 0, 1 << 20,
             "how many of the LAST columns are labels/targets (0: no label top)", "(none)"),
    DL_P_BOOL(csv_param, header, "false", "skip the first non-empty line (column names)", "(none)"),
    DL_P_STRING(csv_param, delimiter, "','",
                "the field separator, one character (\"\\t\" for tabs)", "(none)"),
    DL_P_ENUM(csv_param, shuffle, "auto", dl_shuffle_names,
              "reshuffle the rows every epoch (auto: in the train phase only)", "(none)"),
    DL_SPEC_END};

typedef struct {
  dl_csv table;
  int dim, labels; /* data columns, label columns */
  dl_batcher b;    /* n, batch, cursor, epoch order, prefetch thread */
} csv_priv;

/* Runs on the prefetch thread: gathers the rows of the batch at pos. */
static int csv_fill(void *user, const int64_t pos[4], float *const *out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  csv_priv *p = user;
  float *data = out[0];  /* (batch, dim) */
  float *label = out[1]; /* (batch, labels) */
  int cols = p->table.cols;
  dl_order_batch(&p->b.order, pos, p->b.batch, p->b.batch_idx);
  for (int j = 0; j < p->b.batch; j++) {
    const float *row = p->table.values + (size_t)p->b.batch_idx[j] * cols; /* (cols) */
    memcpy(data + (size_t)j * p->dim, row, (size_t)p->dim * sizeof(float));
    memcpy(label + (size_t)j * p->labels, row + p->dim, (size_t)p->labels * sizeof(float));
  }
  return 0;
}

static void csv_destroy(dl_layer *l) {
  csv_priv *p = l->priv;
  if (!p) return;
  dl_batcher_free(&p->b); /* joins the thread before the data it reads goes away */
  dl_csv_free(&p->table);
  free(p);
  l->priv = NULL;
}

static dl_status csv_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                           int nt) {
  (void)bottom, (void)nb, (void)top;
  const csv_param *prm = l->param;
  const char *d = prm->delimiter;
  char delim = strcmp(d, "\\t") == 0 ? '\t' : d[0];
  if (!(strlen(d) == 1 || strcmp(d, "\\t") == 0) || isalnum((unsigned char)delim) ||
      strchr("\"\n\r.-+", delim))
    return dl_layer_error(l, DL_ECONFIG,
                          "delimiter: expected one character that cannot be part of a number "
                          "(',', ';', '\\t', ' '), got '%s'",
                          d);
  if (nt > 1 && prm->label_columns == 0)
    return dl_layer_error(l, DL_ECONFIG, "a second (label) top needs label_columns > 0");
  csv_priv *p = dl_calloc(1, sizeof *p);
  if (!p) return DL_ENOMEM;
  l->priv = p;
  char path[4096], err[600];
  dl_status st = dl_data_path(l, "source", prm->source, path, sizeof path);
  if (st) return st;
  if ((st = dl_csv_read(path, delim, prm->header, &p->table, err, sizeof err)))
    return dl_layer_error(l, st, "source: %s", err);
  if (prm->label_columns >= p->table.cols)
    return dl_layer_error(l, DL_EDATA,
                          "'%s' has %d columns, so label_columns: %d leaves no data columns", path,
                          p->table.cols, prm->label_columns);
  p->b.n = p->table.rows;
  p->labels = prm->label_columns;
  p->dim = p->table.cols - p->labels;
  p->b.batch = prm->batch_size;
  size_t counts[2] = {(size_t)p->b.batch * p->dim,
                      (size_t)p->b.batch * (p->labels ? p->labels : 1)};
  return dl_batcher_init(&p->b, l, p->b.n, p->b.batch, prm->shuffle, 2, counts, csv_fill, p);
}

static dl_status csv_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb;
  const csv_priv *p = l->priv;
  dl_status st = dl_blob_reshape(top[0], 2, (int[]){p->b.batch, p->dim});
  if (st || nt < 2) return st;
  if (p->labels == 1) return dl_blob_reshape(top[1], 1, (int[]){p->b.batch});
  return dl_blob_reshape(top[1], 2, (int[]){p->b.batch, p->labels});
}

static dl_status csv_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb;
  csv_priv *p = l->priv;
  return dl_batcher_forward(l, &p->b, top, nt);
}

static void csv_get_cursor(dl_layer *l, int64_t cursor[4]) {
  const csv_priv *p = l->priv;
  dl_batcher_get_cursor(&p->b, cursor);
}

static dl_status csv_set_cursor(dl_layer *l, const int64_t cursor[4]) {
  csv_priv *p = l->priv;
  return dl_batcher_set_cursor(l, &p->b, cursor, NULL);
}

const dl_layer_ops dl_layer_csv_data = {
    .type = "CSVData",
    .summary = "numeric CSV rows: last label_columns columns are labels, the rest data; prefetched",
    .schema = csv_schema,
    .param_size = sizeof(csv_param),
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .bottoms_doc = "none",
    .tops_doc = "data: N x D; label: N (one label column) or N x k",
    .flags = DL_LAYER_DATA,
    .setup = csv_setup,
    .reshape = csv_reshape,
    .forward = csv_forward,
    .destroy = csv_destroy,
    .get_cursor = csv_get_cursor,
    .set_cursor = csv_set_cursor,
};
