/* Data layers (MnistData, SyntheticData, CSVData) and the prefetcher: decoding,
 * epoch wrap, deterministic shuffles, exact resume from a cursor, and the
 * DL_EDATA messages for broken files. Tiny idx and CSV files are written to a
 * temp dir; the real Fashion-MNIST test set is loaded when installed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "io/prefetch.h"
#include "tests/testutil.h"

static const dl_ctx ctx_seed5 = {.seed = 5, .threads = 1};
static const dl_ctx ctx_seed6 = {.seed = 6, .threads = 1};

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers -------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Writes dir/name: an idx header (magic, dims) then `len` payload bytes; gzip
 * when the name ends in ".gz". Returns the path (caller frees). */
static char *write_idx(const char *dir, const char *name, uint32_t magic, int ndim,
                       const uint32_t *dims, const uint8_t *payload, size_t len) {
  char *path = dl_test_write(dir, name, "");
  uint8_t head[16];
  put_be32(head, magic);
  for (int d = 0; d < ndim; d++)
    put_be32(head + 4 + 4 * d, dims[d]);
  size_t hlen = 4 + 4 * (size_t)ndim;
  size_t nl = strlen(name);
  if (nl > 3 && strcmp(name + nl - 3, ".gz") == 0) {
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, head, (unsigned)hlen), (int)hlen);
    if (len) ck_assert_int_eq(gzwrite(gz, payload, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(gz), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(head, 1, hlen, f), hlen);
    if (len) ck_assert_uint_eq(fwrite(payload, 1, len, f), len);
    fclose(f);
  }
  return path;
}

static uint8_t pixel(int image, int k) { return (uint8_t)((image * 37 + k * 11) & 255); }

/* n images of rows x cols with pixel(i, k), label i (so n <= 256), as
 * dir/<prefix>-images and dir/<prefix>-labels (+ ".gz" when gz). */
static void write_mnist(const char *dir, const char *prefix, int n, int rows, int cols, int gz,
                        char **images, char **labels) {
  size_t pixels = (size_t)rows * cols;
  uint8_t *img = malloc((size_t)n * pixels), *lab = malloc((size_t)n);
  for (int i = 0; i < n; i++) {
    for (size_t k = 0; k < pixels; k++)
      img[(size_t)i * pixels + k] = pixel(i, (int)k);
    lab[i] = (uint8_t)i;
  }
  char name[64];
  snprintf(name, sizeof name, "%s-images%s", prefix, gz ? ".gz" : "");
  *images =
      write_idx(dir, name, 0x803, 3, (uint32_t[]){(uint32_t)n, (uint32_t)rows, (uint32_t)cols}, img,
                (size_t)n * pixels);
  snprintf(name, sizeof name, "%s-labels%s", prefix, gz ? ".gz" : "");
  *labels = write_idx(dir, name, 0x801, 1, (uint32_t[]){(uint32_t)n}, lab, (size_t)n);
  free(img);
  free(lab);
}

static void forward(dl_layer *l, dl_blob *const *top, int nt) {
  dl_status st = l->ops->forward(l, NULL, 0, top, nt);
  ck_assert_msg(st == DL_OK, "forward: %s", dl_diag_text());
}

static char *mnist_yaml(const char *images, const char *labels, int batch, const char *extra) {
  static char buf[2048];
  snprintf(buf, sizeof buf,
           "{name: mnist, type: MnistData, source: '%s', label_source: '%s', batch_size: %d%s%s}",
           images, labels, batch, extra[0] ? ", " : "", extra);
  return buf;
}

/* The labels of `batches` forwards, concatenated into out. */
static void read_labels(dl_layer *l, dl_blob *const *top, int batches, int *out) {
  for (int b = 0; b < batches; b++) {
    forward(l, top, 2);
    const float *lab = dl_cdata(top[1]); /* (N) */
    for (int j = 0; j < top[1]->shape[0]; j++)
      out[b * top[1]->shape[0] + j] = (int)lab[j];
  }
}

static int is_permutation(const int *v, int n) {
  int seen[256] = {0};
  for (int i = 0; i < n; i++) {
    if (v[i] < 0 || v[i] >= n || seen[v[i]]) return 0;
    seen[v[i]] = 1;
  }
  return 1;
}

static void expect_diag(const char *what) {
  ck_assert_msg(strstr(dl_diag_text(), what) != NULL, "diagnostic lacks '%s': %s", what,
                dl_diag_text());
}

/* ---- MnistData ------------------------------------------------------------------ */

START_TEST(mnist_decodes_raw_and_gzip) {
  char dir[64], *img, *lab, *gimg, *glab;
  dl_test_tmpdir(dir, sizeof dir);
  write_mnist(dir, "raw", 5, 2, 3, 0, &img, &lab);
  write_mnist(dir, "gz", 5, 2, 3, 1, &gimg, &glab);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_blob *g[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l = dl_test_must_build_data(
      mnist_yaml(img, lab, 2, "scale: 0.5, mean: 10, shuffle: false"), DL_TRAIN, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->ndim, 4);
  ck_assert_int_eq(t[0]->shape[0], 2);
  ck_assert_int_eq(t[0]->shape[1], 1);
  ck_assert_int_eq(t[0]->shape[2], 2);
  ck_assert_int_eq(t[0]->shape[3], 3);
  ck_assert_int_eq(t[1]->ndim, 1);
  ck_assert_int_eq(t[1]->shape[0], 2);
  forward(l, t, 2);
  float want[12];
  for (int j = 0; j < 2; j++)
    for (int k = 0; k < 6; k++)
      want[j * 6 + k] = ((float)pixel(j, k) - 10) * 0.5f;
  dl_check_close(dl_cdata(t[0]), want, 12, 0, "data");
  dl_check_close(dl_cdata(t[1]), (const float[]){0, 1}, 2, 0, "label");

  /* The gzip copy decodes to the same bytes. */
  dl_layer *lg =
      dl_test_must_build_data(mnist_yaml(gimg, glab, 2, "scale: 0.5, mean: 10, shuffle: false"),
                              DL_TRAIN, &ctx_seed5, g, 2);
  forward(lg, g, 2);
  ck_assert_mem_eq(dl_cdata(g[0]), dl_cdata(t[0]), 12 * sizeof(float));
  ck_assert_mem_eq(dl_cdata(g[1]), dl_cdata(t[1]), 2 * sizeof(float));
  dl_layer_free(lg);

  /* Defaults: scale 1/256, no mean, and no shuffle in the test phase. */
  dl_layer *ld = dl_test_must_build_data(mnist_yaml(img, lab, 2, ""), DL_TEST, &ctx_seed5, g, 2);
  forward(ld, g, 2);
  forward(ld, g, 2);
  for (int k = 0; k < 6; k++)
    want[k] = (float)pixel(2, k) / 256;
  dl_check_close(dl_cdata(g[0]), want, 6, 0, "data with default scale");
  dl_check_close(dl_cdata(g[1]), (const float[]){2, 3}, 2, 0, "labels in file order");
  dl_layer_free(ld);

  dl_layer_free(l);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]), dl_blob_free(g[i]);
  free(img), free(lab), free(gimg), free(glab);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(mnist_batches_wrap_across_epochs) {
  char dir[64], *img, *lab;
  dl_test_tmpdir(dir, sizeof dir);
  write_mnist(dir, "m", 5, 2, 2, 0, &img, &lab);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l = dl_test_must_build_data(mnist_yaml(img, lab, 3, "shuffle: false"), DL_TRAIN,
                                        &ctx_seed5, t, 2);
  int got[12];
  int64_t c[4];
  read_labels(l, t, 2, got);
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[0], 1);
  ck_assert_int_eq(c[1], 1);
  ck_assert_int_eq(c[2], 5);
  read_labels(l, t, 2, got + 6);
  const int want[12] = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1};
  for (int i = 0; i < 12; i++)
    ck_assert_int_eq(got[i], want[i]);
  /* The images follow the labels: this batch (labels 2, 3, 4) starts with image 2. */
  forward(l, t, 2);
  ck_assert_float_eq(dl_cdata(t[0])[0], (float)pixel(2, 0) / 256);
  dl_layer_free(l);

  /* A batch bigger than the epoch spans several epochs. */
  l = dl_test_must_build_data(mnist_yaml(img, lab, 5, "shuffle: false, max_examples: 2"), DL_TRAIN,
                              &ctx_seed5, t, 2);
  read_labels(l, t, 1, got);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(got[i], i % 2);
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[0], 2);
  ck_assert_int_eq(c[1], 1);
  ck_assert_int_eq(c[2], 2);
  dl_layer_free(l);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(img), free(lab);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(mnist_shuffle_is_deterministic) {
  char dir[64], *img, *lab;
  dl_test_tmpdir(dir, sizeof dir);
  write_mnist(dir, "m", 20, 1, 2, 0, &img, &lab);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  int a[42], b[42], c[42], d[42], e[42];
  dl_layer *l =
      dl_test_must_build_data(mnist_yaml(img, lab, 7, "shuffle: true"), DL_TRAIN, &ctx_seed5, t, 2);
  read_labels(l, t, 6, a);
  dl_layer_free(l);
  /* Every example exactly once per epoch, in a new order each epoch. */
  ck_assert(is_permutation(a, 20));
  ck_assert(is_permutation(a + 20, 20));
  int identity = 1, same_as_epoch0 = 1;
  for (int i = 0; i < 20; i++)
    identity &= a[i] == i, same_as_epoch0 &= a[i] == a[20 + i];
  ck_assert_msg(!identity, "shuffle: true left the file order");
  ck_assert_msg(!same_as_epoch0, "epoch 1 repeats epoch 0's order");

  /* Same seed: same order; the train phase shuffles by default. */
  l = dl_test_must_build_data(mnist_yaml(img, lab, 7, ""), DL_TRAIN, &ctx_seed5, t, 2);
  read_labels(l, t, 6, b);
  dl_layer_free(l);
  ck_assert_mem_eq(a, b, sizeof a);
  /* Another seed: another order. */
  l = dl_test_must_build_data(mnist_yaml(img, lab, 7, "shuffle: true"), DL_TRAIN, &ctx_seed6, t, 2);
  read_labels(l, t, 6, c);
  dl_layer_free(l);
  ck_assert(is_permutation(c, 20));
  ck_assert_mem_ne(a, c, sizeof a);
  /* The test phase keeps file order unless asked; shuffle: true works there too. */
  l = dl_test_must_build_data(mnist_yaml(img, lab, 7, ""), DL_TEST, &ctx_seed5, t, 2);
  read_labels(l, t, 6, d);
  dl_layer_free(l);
  for (int i = 0; i < 42; i++)
    ck_assert_int_eq(d[i], i % 20);
  l = dl_test_must_build_data(mnist_yaml(img, lab, 7, "shuffle: true"), DL_TEST, &ctx_seed5, t, 2);
  read_labels(l, t, 6, e);
  dl_layer_free(l);
  ck_assert_mem_eq(a, e, sizeof a);

  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(img), free(lab);
  dl_test_rmdir(dir);
}
END_TEST

enum { RESUME_BATCH = 5, RESUME_PIX = 6, RESUME_TOTAL = 12 };

/* One batch's data and labels as bytes. */
typedef struct {
  float data[RESUME_BATCH * RESUME_PIX], label[RESUME_BATCH];
} batch_bytes;

static void grab(dl_layer *l, dl_blob *const *t, batch_bytes *out) {
  forward(l, t, 2);
  memcpy(out->data, dl_cdata(t[0]), sizeof out->data);
  memcpy(out->label, dl_cdata(t[1]), sizeof out->label);
}

START_TEST(mnist_resume_is_exact) {
  char dir[64], *img, *lab;
  dl_test_tmpdir(dir, sizeof dir);
  write_mnist(dir, "m", 23, 2, 3, 1, &img, &lab);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  const char *yaml = mnist_yaml(img, lab, RESUME_BATCH, "shuffle: true");
  batch_bytes ref[RESUME_TOTAL], got;
  dl_layer *a = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  for (int k = 0; k < RESUME_TOTAL; k++)
    grab(a, t, &ref[k]);
  dl_layer_free(a);

  /* Interrupted after 4 batches: the cursor names batch 4, not what the
   * prefetch thread has already read ahead. */
  dl_layer *b = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  for (int k = 0; k < 4; k++)
    grab(b, t, &got);
  int64_t cur[4];
  b->ops->get_cursor(b, cur);
  ck_assert_int_eq(cur[0], 0);
  ck_assert_int_eq(cur[1], 20);
  ck_assert_int_eq(cur[2], 23);

  /* A fresh layer resumed there continues exactly, across the epoch boundary. */
  dl_layer *c = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  grab(c, t, &got); /* consume a batch first: set_cursor must drop the read-ahead */
  ck_assert_int_eq(c->ops->set_cursor(c, cur), DL_OK);
  for (int k = 4; k < RESUME_TOTAL; k++) {
    grab(c, t, &got);
    ck_assert_msg(memcmp(&got, &ref[k], sizeof got) == 0, "batch %d differs after resume", k);
  }
  dl_layer_free(c);

  /* Rewinding the same layer mid-run works too. */
  grab(b, t, &got), grab(b, t, &got);
  ck_assert_int_eq(b->ops->set_cursor(b, cur), DL_OK);
  grab(b, t, &got);
  ck_assert_mem_eq(&got, &ref[4], sizeof got);

  /* Cursors that cannot belong to this data set are refused. */
  ck_assert_int_eq(b->ops->set_cursor(b, (int64_t[]){0, 23, 23, 0}), DL_EDATA);
  ck_assert_int_eq(b->ops->set_cursor(b, (int64_t[]){1, 0, 60000, 0}), DL_EDATA);
  expect_diag("60000");
  /* ... and leave the layer where it was. */
  grab(b, t, &got);
  ck_assert_mem_eq(&got, &ref[5], sizeof got);
  dl_layer_free(b);

  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(img), free(lab);
  dl_test_rmdir(dir);
}
END_TEST

/* Builds a MnistData layer on the given files, expecting DL_EDATA. */
static void expect_edata(const char *images, const char *labels) {
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l = NULL;
  ck_assert_int_eq(
      dl_test_build_data(mnist_yaml(images, labels, 2, ""), DL_TRAIN, &ctx_seed5, t, 2, &l),
      DL_EDATA);
  dl_layer_free(l);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
}

START_TEST(mnist_bad_files_name_the_file) {
  char dir[64], *img, *lab;
  dl_test_tmpdir(dir, sizeof dir);
  write_mnist(dir, "ok", 5, 2, 2, 0, &img, &lab);
  uint8_t junk[1234] = {0};

  char *trunc = write_idx(dir, "trunc", 0x803, 3, (uint32_t[]){10, 28, 28}, junk, sizeof junk);
  expect_edata(trunc, lab);
  expect_diag(trunc);
  expect_diag("truncated");
  expect_diag("10 images of 28x28");
  expect_diag("1234 bytes of pixels");

  char *magic = write_idx(dir, "magic", 0x801, 3, (uint32_t[]){5, 2, 2}, junk, 20);
  expect_edata(magic, lab);
  expect_diag(magic);
  expect_diag("bad magic number 0x00000801");
  expect_diag("swapped");

  char *lab4 = write_idx(dir, "lab4", 0x801, 1, (uint32_t[]){4}, junk, 4);
  expect_edata(img, lab4);
  expect_diag(lab4);
  expect_diag("4 labels");
  expect_diag("5 images");

  char *extra = write_idx(dir, "extra", 0x801, 1, (uint32_t[]){5}, junk, 9);
  expect_edata(img, extra);
  expect_diag(extra);
  expect_diag("5 labels");

  char missing[128];
  snprintf(missing, sizeof missing, "%s/no-such-file", dir);
  expect_edata(img, missing);
  expect_diag(missing);
  expect_diag("No such file");
  expect_diag("label_source");

  /* A gzip file cut in the middle of its stream. */
  char *gimg, *glab;
  write_mnist(dir, "cut", 5, 8, 8, 1, &gimg, &glab);
  FILE *f = fopen(gimg, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  ck_assert_int_eq(truncate(gimg, size / 2), 0);
  expect_edata(gimg, glab);
  expect_diag(gimg);
  expect_diag("truncated");

  /* Not a data error: the config misses a required key. */
  dl_layer *l = NULL;
  dl_diag_clear();
  char yaml[600];
  snprintf(yaml, sizeof yaml, "{name: m, type: MnistData, source: '%s', label_source: '%s'}", img,
           lab);
  ck_assert_int_eq(dl_layer_from_yaml(yaml, DL_TRAIN, &ctx_seed5, &l), DL_ECONFIG);
  expect_diag("batch_size");
  dl_layer_free(l);

  free(trunc), free(magic), free(lab4), free(extra), free(gimg), free(glab), free(img), free(lab);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(mnist_paths_are_relative_to_the_net_file) {
  char dir[64], *img, *lab, net[128];
  dl_test_tmpdir(dir, sizeof dir);
  write_mnist(dir, "m", 5, 2, 2, 0, &img, &lab);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  const char *yaml = mnist_yaml("m-images", "m-labels", 2, "shuffle: false");
  /* From a string, a relative path is taken as given (here: not found). */
  dl_layer *l = NULL;
  ck_assert_int_eq(dl_test_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2, &l), DL_EDATA);
  expect_diag("'m-images'");
  dl_layer_free(l);
  /* As if the layer came from dir/net.yaml. */
  ck_assert_int_eq(dl_layer_from_yaml(yaml, DL_TRAIN, &ctx_seed5, &l), DL_OK);
  snprintf(net, sizeof net, "%s/net.yaml", dir);
  free((char *)l->loc.file);
  l->loc.file = strdup(net);
  ck_assert_msg(dl_layer_setup(l, NULL, 0, t, 2) == DL_OK, "%s", dl_diag_text());
  forward(l, t, 2);
  dl_check_close(dl_cdata(t[1]), (const float[]){0, 1}, 2, 0, "label");
  dl_layer_free(l);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(img), free(lab);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(mnist_loads_fashion_mnist) {
  if (access(FASHION_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
    printf("SKIP mnist_loads_fashion_mnist: %s is not installed\n", FASHION_DIR);
    return;
  }
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l =
      dl_test_must_build_data(mnist_yaml(FASHION_DIR "/t10k-images-idx3-ubyte.gz",
                                         FASHION_DIR "/t10k-labels-idx1-ubyte.gz", 100, "scale: 1"),
                              DL_TEST, &ctx_seed5, t, 2);
  int64_t c[4];
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[2], 10000);
  ck_assert_int_eq(t[0]->shape[0], 100);
  ck_assert_int_eq(t[0]->shape[1], 1);
  ck_assert_int_eq(t[0]->shape[2], 28);
  ck_assert_int_eq(t[0]->shape[3], 28);
  forward(l, t, 2);
  const float *x = dl_cdata(t[0]), *y = dl_cdata(t[1]);
  double first_image = 0;
  for (int k = 0; k < 784; k++)
    first_image += x[k];
  ck_assert_double_eq(first_image, 33456); /* the pixel sum of t10k image 0 */
  const float first_labels[5] = {9, 2, 1, 1, 6};
  dl_check_close(y, first_labels, 5, 0, "t10k labels");
  for (int i = 0; i < 100 * 784; i++)
    ck_assert(x[i] >= 0 && x[i] <= 255);
  for (int i = 0; i < 100; i++)
    ck_assert(y[i] >= 0 && y[i] <= 9 && y[i] == floorf(y[i]));
  dl_layer_free(l);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
}
END_TEST

/* ---- SyntheticData -------------------------------------------------------------- */

START_TEST(synthetic_fixed_and_counter) {
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  float first[48], second[48];
  dl_layer *l =
      dl_test_must_build_data("{name: s, type: SyntheticData, shape: [4, 3, 2, 2], num_classes: 5}",
                              DL_TRAIN, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->ndim, 4);
  ck_assert_int_eq(t[0]->count, 48);
  ck_assert_int_eq(t[1]->ndim, 1);
  ck_assert_int_eq(t[1]->shape[0], 4);
  forward(l, t, 2);
  memcpy(first, dl_cdata(t[0]), sizeof first);
  float labels[4];
  memcpy(labels, dl_cdata(t[1]), sizeof labels);
  memset(dl_data(t[0]), 0, sizeof first); /* as if a layer had worked in place on it */
  forward(l, t, 2);
  ck_assert_mem_eq(dl_cdata(t[0]), first, sizeof first); /* fixed: the same batch every time */
  ck_assert_mem_eq(dl_cdata(t[1]), labels, sizeof labels);
  for (int j = 0; j < 4; j++)
    ck_assert(labels[j] >= 0 && labels[j] < 5 && labels[j] == floorf(labels[j]));
  dl_layer_free(l);

  /* fixed: false: a new batch each time, a pure function of the batch number. */
  const char *yaml =
      "{name: s, type: SyntheticData, shape: [4, 3, 2, 2], num_classes: 5, fixed: false}";
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  forward(l, t, 2);
  ck_assert_mem_eq(dl_cdata(t[0]), first, sizeof first); /* batch 0 is the fixed batch */
  forward(l, t, 2);
  forward(l, t, 2);
  memcpy(second, dl_cdata(t[0]), sizeof second); /* batch 2 */
  ck_assert_mem_ne(second, first, sizeof first);
  int64_t c[4];
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[0], 3);
  dl_layer_free(l);
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  ck_assert_int_eq(l->ops->set_cursor(l, (int64_t[]){2, 0, 0, 0}), DL_OK);
  forward(l, t, 2);
  ck_assert_mem_eq(dl_cdata(t[0]), second, sizeof second);
  ck_assert_int_eq(l->ops->set_cursor(l, (int64_t[]){-1, 0, 0, 0}), DL_EDATA);
  dl_layer_free(l);
  /* Another seed, other data. */
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed6, t, 2);
  forward(l, t, 2);
  ck_assert_mem_ne(dl_cdata(t[0]), first, sizeof first);
  dl_layer_free(l);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
}
END_TEST

START_TEST(synthetic_fills) {
  dl_blob *t = dl_blob_new("data");
  dl_layer *l =
      dl_test_must_build_data("{name: s, type: SyntheticData, shape: [64, 1000], mean: 2, std: 3}",
                              DL_TRAIN, &ctx_seed5, &t, 1);
  forward(l, &t, 1);
  double sum = 0, sq = 0;
  const float *x = dl_cdata(t);
  for (size_t i = 0; i < t->count; i++)
    sum += x[i], sq += (double)x[i] * x[i];
  double mean = sum / (double)t->count, var = sq / (double)t->count - mean * mean;
  ck_assert_double_eq_tol(mean, 2, 0.05);
  ck_assert_double_eq_tol(sqrt(var), 3, 0.05);
  dl_layer_free(l);

  l = dl_test_must_build_data(
      "{name: s, type: SyntheticData, shape: [3, 5], fill: constant, value: 1.5}", DL_TRAIN,
      &ctx_seed5, &t, 1);
  forward(l, &t, 1);
  for (int i = 0; i < 15; i++)
    ck_assert_float_eq(dl_cdata(t)[i], 1.5f);
  dl_layer_free(l);

  l = dl_test_must_build_data(
      "{name: s, type: SyntheticData, shape: [7], fill: uniform, min: -1, max: -0.5, "
      "fixed: false}",
      DL_TRAIN, &ctx_seed5, &t, 1);
  for (int b = 0; b < 3; b++) {
    forward(l, &t, 1);
    for (int i = 0; i < 7; i++)
      ck_assert(dl_cdata(t)[i] >= -1 && dl_cdata(t)[i] < -0.5f);
  }
  dl_layer_free(l);

  /* A label top needs classes. */
  dl_blob *two[2] = {t, dl_blob_new("label")};
  l = NULL;
  ck_assert_int_eq(dl_test_build_data("{name: s, type: SyntheticData, shape: [2, 2]}", DL_TRAIN,
                                      &ctx_seed5, two, 2, &l),
                   DL_ECONFIG);
  expect_diag("num_classes");
  dl_layer_free(l);
  dl_blob_free(two[1]);
  dl_blob_free(t);
}
END_TEST

START_TEST(data_wait_is_measured) {
  /* A big non-fixed batch takes the thread a while: the first forward waits. */
  dl_blob *t = dl_blob_new("data");
  dl_layer *l =
      dl_test_must_build_data("{name: s, type: SyntheticData, shape: [16, 65536], fixed: false}",
                              DL_TRAIN, &ctx_seed5, &t, 1);
  forward(l, &t, 1);
  ck_assert_double_gt(dl_data_layer_wait_seconds(l), 0);
  dl_layer *relu = dl_test_layer("{name: r, type: ReLU}", &t, 1, &t, 1);
  ck_assert_double_eq(dl_data_layer_wait_seconds(relu), 0);
  dl_layer_free(relu);
  dl_layer_free(l);
  dl_blob_free(t);
}
END_TEST

/* ---- the prefetcher itself ------------------------------------------------------ */

/* Writes the position into the batch after a short sleep; fails at position 3. */
static int slow_fill(void *user, const int64_t pos[4], float *const *out, char *err,
                     size_t errlen) {
  (void)user;
  nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
  if (pos[0] == 3) {
    snprintf(err, errlen, "boom at %lld", (long long)pos[0]);
    return 1;
  }
  out[0][0] = (float)pos[0];
  return 0;
}

START_TEST(prefetch_waits_swaps_and_reports) {
  dl_prefetch *p;
  ck_assert_int_eq(dl_prefetch_create(NULL, 1, (size_t[]){4}, slow_fill, NULL, &p), DL_OK);
  float *const *b0, *const *b1;
  char err[100] = "";
  dl_prefetch_start(p, (int64_t[]){7, 0, 0, 0});
  ck_assert_int_eq(dl_prefetch_wait(p, &b0, err, sizeof err), DL_OK);
  ck_assert_float_eq(b0[0][0], 7);
  ck_assert_double_gt(dl_prefetch_wait_seconds(p), 0.01); /* it waited for the 20 ms fill */
  /* The next fill goes to the other buffer: batch 7 stays readable meanwhile. */
  dl_prefetch_start(p, (int64_t[]){8, 0, 0, 0});
  ck_assert_float_eq(b0[0][0], 7);
  ck_assert_int_eq(dl_prefetch_wait(p, &b1, err, sizeof err), DL_OK);
  ck_assert_ptr_ne(b0[0], b1[0]);
  ck_assert_float_eq(b1[0][0], 8);
  /* Cancel drops a fill in flight. */
  dl_prefetch_start(p, (int64_t[]){9, 0, 0, 0});
  dl_prefetch_cancel(p);
  /* A failing fill comes back as DL_EDATA with the thread's message. */
  dl_prefetch_start(p, (int64_t[]){3, 0, 0, 0});
  ck_assert_int_eq(dl_prefetch_wait(p, &b1, err, sizeof err), DL_EDATA);
  ck_assert_str_eq(err, "boom at 3");
  dl_prefetch_start(p, (int64_t[]){4, 0, 0, 0}); /* free joins with a fill in flight */
  dl_prefetch_free(p);
}
END_TEST

/* ---- CSVData -------------------------------------------------------------------- */

static char *csv_yaml(const char *path, const char *extra) {
  static char buf[1024];
  snprintf(buf, sizeof buf, "{name: csv, type: CSVData, source: '%s'%s%s}", path,
           extra[0] ? ", " : "", extra);
  return buf;
}

START_TEST(csv_reads_rows) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *path = dl_test_write(dir, "t.csv", "a,b,c\r\n1,2,3\r\n\r\n4, 5 ,\"6\"\r\n  \n7,8,-9e-1\n");
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l = dl_test_must_build_data(
      csv_yaml(path, "batch_size: 2, header: true, shuffle: false"), DL_TRAIN, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->ndim, 2);
  ck_assert_int_eq(t[0]->shape[0], 2);
  ck_assert_int_eq(t[0]->shape[1], 2);
  ck_assert_int_eq(t[1]->ndim, 1);
  ck_assert_int_eq(t[1]->shape[0], 2);
  forward(l, t, 2);
  dl_check_close(dl_cdata(t[0]), (const float[]){1, 2, 4, 5}, 4, 0, "data");
  dl_check_close(dl_cdata(t[1]), (const float[]){3, 6}, 2, 0, "label");
  forward(l, t, 2); /* row 3, then back to row 1 */
  dl_check_close(dl_cdata(t[0]), (const float[]){7, 8, 1, 2}, 4, 0, "data, wrapped");
  dl_check_close(dl_cdata(t[1]), (const float[]){-0.9f, 3}, 2, 0, "label, wrapped");
  dl_layer_free(l);

  /* Two label columns and another delimiter. */
  char *semi = dl_test_write(dir, "s.csv", "1;2;3;4\n5;6;7;8\n");
  l = dl_test_must_build_data(csv_yaml(semi, "batch_size: 2, label_columns: 2, delimiter: ';'"),
                              DL_TEST, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[1]->ndim, 2);
  ck_assert_int_eq(t[1]->shape[1], 2);
  forward(l, t, 2);
  dl_check_close(dl_cdata(t[0]), (const float[]){1, 2, 5, 6}, 4, 0, "data");
  dl_check_close(dl_cdata(t[1]), (const float[]){3, 4, 7, 8}, 4, 0, "labels");
  dl_layer_free(l);

  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(path), free(semi);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(csv_shuffles_and_resumes) {
  char dir[64], text[256] = "";
  dl_test_tmpdir(dir, sizeof dir);
  for (int i = 0; i < 10; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text), "%d,%d\n", i * 10, i);
  char *path = dl_test_write(dir, "r.csv", text);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  const char *yaml = csv_yaml(path, "batch_size: 3");
  int ref[30], got[30];
  dl_layer *l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  read_labels(l, t, 10, ref);
  dl_layer_free(l);
  ck_assert(is_permutation(ref, 10));
  ck_assert(is_permutation(ref + 10, 10));
  ck_assert(is_permutation(ref + 20, 10));
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  read_labels(l, t, 4, got);
  int64_t c[4];
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[0], 1);
  ck_assert_int_eq(c[1], 2);
  dl_layer_free(l);
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  ck_assert_int_eq(l->ops->set_cursor(l, c), DL_OK);
  read_labels(l, t, 6, got + 12);
  ck_assert_mem_eq(got + 12, ref + 12, 18 * sizeof(int));
  ck_assert_float_eq(dl_cdata(t[0])[0], 10 * dl_cdata(t[1])[0]); /* rows stay whole */
  dl_layer_free(l);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(path);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(csv_errors_point_at_the_cell) {
  char dir[64], want[200];
  dl_test_tmpdir(dir, sizeof dir);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l = NULL;

  char *bad = dl_test_write(dir, "bad.csv", "1,2,3\n4,x7,6\n");
  ck_assert_int_eq(
      dl_test_build_data(csv_yaml(bad, "batch_size: 1"), DL_TRAIN, &ctx_seed5, t, 2, &l), DL_EDATA);
  snprintf(want, sizeof want, "%s:2:3:", bad);
  expect_diag(want);
  expect_diag("'x7'");
  dl_layer_free(l);

  char *ragged = dl_test_write(dir, "ragged.csv", "1,2,3\n\n4,5\n");
  ck_assert_int_eq(
      dl_test_build_data(csv_yaml(ragged, "batch_size: 1"), DL_TRAIN, &ctx_seed5, t, 2, &l),
      DL_EDATA);
  snprintf(want, sizeof want, "%s:3:", ragged);
  expect_diag(want);
  expect_diag("2 fields");
  dl_layer_free(l);

  char *nan = dl_test_write(dir, "nan.csv", "1,nan\n");
  ck_assert_int_eq(
      dl_test_build_data(csv_yaml(nan, "batch_size: 1"), DL_TRAIN, &ctx_seed5, t, 2, &l), DL_EDATA);
  expect_diag("finite");
  dl_layer_free(l);

  char *one = dl_test_write(dir, "one.csv", "1\n2\n");
  ck_assert_int_eq(
      dl_test_build_data(csv_yaml(one, "batch_size: 1"), DL_TRAIN, &ctx_seed5, t, 2, &l), DL_EDATA);
  expect_diag("no data columns");
  dl_layer_free(l);

  char *empty = dl_test_write(dir, "empty.csv", "x,y\n\n");
  ck_assert_int_eq(dl_test_build_data(csv_yaml(empty, "batch_size: 1, header: true"), DL_TRAIN,
                                      &ctx_seed5, t, 2, &l),
                   DL_EDATA);
  expect_diag("no data rows");
  dl_layer_free(l);

  ck_assert_int_eq(dl_test_build_data(csv_yaml(bad, "batch_size: 1, delimiter: ab"), DL_TRAIN,
                                      &ctx_seed5, t, 2, &l),
                   DL_ECONFIG);
  expect_diag("delimiter");
  dl_layer_free(l);

  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(bad), free(ragged), free(nan), free(one), free(empty);
  dl_test_rmdir(dir);
}
END_TEST

Suite *suite_data(void) {
  Suite *s = suite_create("data");
  TCase *tc = tcase_create("data");
  tcase_add_test(tc, mnist_decodes_raw_and_gzip);
  tcase_add_test(tc, mnist_batches_wrap_across_epochs);
  tcase_add_test(tc, mnist_shuffle_is_deterministic);
  tcase_add_test(tc, mnist_resume_is_exact);
  tcase_add_test(tc, mnist_bad_files_name_the_file);
  tcase_add_test(tc, mnist_paths_are_relative_to_the_net_file);
  tcase_add_test(tc, mnist_loads_fashion_mnist);
  tcase_add_test(tc, synthetic_fixed_and_counter);
  tcase_add_test(tc, synthetic_fills);
  tcase_add_test(tc, data_wait_is_measured);
  tcase_add_test(tc, prefetch_waits_swaps_and_reports);
  tcase_add_test(tc, csv_reads_rows);
  tcase_add_test(tc, csv_shuffles_and_resumes);
  tcase_add_test(tc, csv_errors_point_at_the_cell);
  suite_add_tcase(s, tc);
  return s;
}
