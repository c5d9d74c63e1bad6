/* MnistData: MNIST / Fashion-MNIST idx files (gzip or raw), read whole into memory
 * at setup; batches are converted to floats, (pixel - mean) * scale, and
 * optionally padded, cropped and mirrored (io/transform.h) by the prefetch
 * thread while the net computes. */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "io/idx.h"
#include "io/prefetch.h"
#include "io/transform.h"

typedef struct {
  char source[DL_STR_MAX];
  char label_source[DL_STR_MAX];
  int batch_size;
  float scale;
  float mean;
  int shuffle;
  int max_examples;
  int mirror;
  int crop_size;
  int pad;
} mnist_param;

static const dl_param_spec mnist_schema[] = {
    DL_P_STRING(mnist_param, source, NULL,
                "images idx file (...-images-idx3-ubyte, optionally .gz), relative to the net file",
                "data_param { source } (Caffe reads an LMDB made by convert_mnist_data)"),
    DL_P_STRING(mnist_param, label_source, NULL,
                "labels idx file (...-labels-idx1-ubyte, optionally .gz), relative to the net file",
                "(part of the LMDB in Caffe)"),
    DL_P_INT(mnist_param, batch_size, NULL, 1, 1 << 20, "examples per batch",
             "data_param { batch_size }"),
    DL_P_FLOAT(mnist_param, scale, "0.00390625", -1e9, 1e9,
               "multiplies each pixel after the mean is subtracted (1/256 maps bytes into [0, 1))",
               "transform_param { scale }"),
    DL_P_FLOAT(mnist_param, mean, "0", -1e9, 1e9, "subtracted from each pixel (0..255) first",
               "transform_param { mean_value }"),
    DL_P_ENUM(mnist_param, shuffle, "auto", dl_shuffle_names,
              "reshuffle every epoch (auto: in the train phase only)",
              "(Caffe shuffles once, when the LMDB is made)"),
    DL_P_INT(mnist_param, max_examples, "0", 0, 1 << 30,
             "use only the first N examples of the files (0: all)", "(none)"),
    DL_P_BOOL(mnist_param, mirror, "false",
              "flip half of the images left-right at random (train phase only)",
              "transform_param { mirror } (Caffe also mirrors in the test phase)"),
    DL_P_INT(mnist_param, crop_size, "0", 0, 1 << 15,
             "crop a square this size: at a random place in train, the centre in test (0: no crop)",
             "transform_param { crop_size }"),
    DL_P_INT(mnist_param, pad, "0", 0, 1 << 10,
             "add this many pixels on every side before cropping; padded pixels read 0", "(none)"),
    DL_SPEC_END};

typedef struct {
  dl_idx images, labels;
  size_t pixels; /* rows * cols */
  dl_transform tf;
  dl_batcher b; /* n, batch, cursor, epoch order, prefetch thread */
} mnist_priv;

/* Runs on the prefetch thread: pure function of pos, reads only immutable data. */
static int mnist_fill(void *user, const int64_t pos[4], float *const *out, char *err,
                      size_t errlen) {
  (void)err, (void)errlen;
  mnist_priv *p = user;
  float *data = out[0];  /* (batch, 1, out_h, out_w) */
  float *label = out[1]; /* (batch) */
  size_t out_pixels = (size_t)p->tf.out_h * p->tf.out_w;
  dl_order_batch(&p->b.order, pos, p->b.batch, p->b.batch_idx);
  for (int j = 0; j < p->b.batch; j++) {
    int ex = p->b.batch_idx[j];
    const uint8_t *src = p->images.data + (size_t)ex * p->pixels;
    /* The example's place in the stream keys its crop and mirror. */
    dl_transform_apply(&p->tf, src, pos[0] * p->b.n + pos[1] + j, data + (size_t)j * out_pixels);
    label[j] = (float)p->labels.data[ex];
  }
  return 0;
}

static void mnist_destroy(dl_layer *l) {
  mnist_priv *p = l->priv;
  if (!p) return;
  dl_batcher_free(&p->b); /* joins the thread before the data it reads goes away */
  dl_idx_free(&p->images);
  dl_idx_free(&p->labels);
  dl_transform_free(&p->tf);
  free(p);
  l->priv = NULL;
}

/* Reads one idx file named by `key`, reporting errors at the layer; `path`
 * receives the resolved path for later messages. */
static dl_status read_idx(dl_layer *l, const char *key, const char *given, uint32_t magic,
                          dl_idx *out, char *path, size_t pathlen) {
  char err[600];
  dl_status st = dl_data_path(l, key, given, path, pathlen);
  if (st) return st;
  st = dl_idx_read(path, magic, out, err, sizeof err);
  return st ? dl_layer_error(l, st, "%s: %s", key, err) : DL_OK;
}

static dl_status mnist_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const mnist_param *prm = l->param;
  mnist_priv *p = dl_calloc(1, sizeof *p);
  if (!p) return DL_ENOMEM;
  l->priv = p;
  char images[4096], labels[4096];
  dl_status st =
      read_idx(l, "source", prm->source, DL_IDX_IMAGES, &p->images, images, sizeof images);
  if (!st)
    st = read_idx(l, "label_source", prm->label_source, DL_IDX_LABELS, &p->labels, labels,
                  sizeof labels);
  if (st) return st;
  if (p->images.dims[0] != p->labels.dims[0])
    return dl_layer_error(l, DL_EDATA,
                          "'%s' holds %u labels but '%s' holds %u images; they must match", labels,
                          p->labels.dims[0], images, p->images.dims[0]);
  if (p->images.dims[0] == 0 || p->images.dims[1] == 0 || p->images.dims[2] == 0)
    return dl_layer_error(l, DL_EDATA, "'%s' holds no pixels (header says %u images of %ux%u)",
                          images, p->images.dims[0], p->images.dims[1], p->images.dims[2]);
  if (p->images.dims[0] > (1u << 30) || p->images.dims[1] > (1u << 15) ||
      p->images.dims[2] > (1u << 15))
    return dl_layer_error(l, DL_EDATA, "'%s': %u images of %ux%u is more than supported", images,
                          p->images.dims[0], p->images.dims[1], p->images.dims[2]);
  p->b.n = (int)p->images.dims[0];
  if (prm->max_examples > 0 && prm->max_examples < p->b.n) p->b.n = prm->max_examples;
  p->pixels = (size_t)p->images.dims[1] * p->images.dims[2];
  p->b.batch = prm->batch_size;
  dl_transform_param tp = {.scale = prm->scale,
                           .mean_value = {1, {prm->mean}},
                           .mirror = prm->mirror,
                           .crop_size = prm->crop_size,
                           .pad = prm->pad};
  if ((st = dl_transform_init(&p->tf, l, &tp, 1, (int)p->images.dims[1], (int)p->images.dims[2])))
    return st;
  size_t counts[2] = {(size_t)p->b.batch * p->tf.out_h * p->tf.out_w, (size_t)p->b.batch};
  return dl_batcher_init(&p->b, l, p->b.n, p->b.batch, prm->shuffle, 2, counts, mnist_fill, p);
}

static dl_status mnist_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  const mnist_priv *p = l->priv;
  dl_status st = dl_blob_reshape4(top[0], p->b.batch, 1, p->tf.out_h, p->tf.out_w);
  if (!st && nt > 1) st = dl_blob_reshape(top[1], 1, (int[]){p->b.batch});
  return st;
}

static dl_status mnist_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  mnist_priv *p = l->priv;
  return dl_batcher_forward(l, &p->b, top, nt);
}

static int mnist_max_label(const dl_layer *l, int t) {
  const mnist_priv *p = l->priv;
  int mx = -1;
  for (int i = 0; t == 1 && i < p->b.n; i++)
    if (p->labels.data[i] > mx) mx = p->labels.data[i];
  return mx;
}

static void mnist_get_cursor(dl_layer *l, int64_t cursor[4]) {
  const mnist_priv *p = l->priv;
  dl_batcher_get_cursor(&p->b, cursor);
}

static dl_status mnist_set_cursor(dl_layer *l, const int64_t cursor[4]) {
  mnist_priv *p = l->priv;
  return dl_batcher_set_cursor(l, &p->b, cursor, &p->tf);
}

const dl_layer_ops dl_layer_mnist_data = {
    .type = "MnistData",
    .summary =
        "MNIST-format idx image and label files (gzip or raw), prefetched, shuffled per epoch",
    .schema = mnist_schema,
    .param_size = sizeof(mnist_param),
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .bottoms_doc = "none",
    .tops_doc = "data: N x 1 x rows x cols (crop_size x crop_size when cropping), "
                "(pixel - mean) * scale; label: N (class index)",
    .flags = DL_LAYER_DATA,
    .setup = mnist_setup,
    .reshape = mnist_reshape,
    .forward = mnist_forward,
    .destroy = mnist_destroy,
    .get_cursor = mnist_get_cursor,
    .max_label = mnist_max_label,
    .set_cursor = mnist_set_cursor,
};
