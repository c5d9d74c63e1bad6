/* The image data layers and what they share: CifarData (records, several files,
 * truncated files and bad labels), the transforms (mean, scale, std, pad, crop,
 * mirror; the same seed gives the same augmentation; exact resume), ImageData
 * (every PNG colour type decoded by libpng, list files, class folders, resize,
 * errors naming file:line) and `dltrain convert`. Every file is written by the
 * test into a temp dir. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/image.h"
#include "io/transform.h"
#include "tests/testutil.h"

static const dl_ctx ctx_seed5 = {.seed = 5, .threads = 1};
static const dl_ctx ctx_seed6 = {.seed = 6, .threads = 1};

/* ---- helpers -------------------------------------------------------------------- */

/* Builds expecting `want`, then frees the layer. */
static void build_fails(const char *yaml, dl_status want, dl_blob *const *top, int nt) {
  dl_layer *l = NULL;
  dl_status st = dl_test_build_data(yaml, DL_TRAIN, &ctx_seed5, top, nt, &l);
  ck_assert_msg(st == want, "%s: status %d, want %d: %s", yaml, st, want, dl_diag_text());
  dl_layer_free(l);
}

static void forward(dl_layer *l, dl_blob *const *top, int nt) {
  dl_status st = l->ops->forward(l, NULL, 0, top, nt);
  ck_assert_msg(st == DL_OK, "forward: %s", dl_diag_text());
}

static void expect_diag(const char *what) {
  ck_assert_msg(strstr(dl_diag_text(), what) != NULL, "diagnostic lacks '%s': %s", what,
                dl_diag_text());
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

static char *join(const char *dir, const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

static void free_tops(dl_blob **t, int n) {
  for (int i = 0; i < n; i++)
    dl_blob_free(t[i]);
}

/* ---- CifarData ------------------------------------------------------------------ */

#define REC 3073

static uint8_t cifar_pixel(int rec, int k) { return (uint8_t)(rec * 7 + k * 3); }

/* Writes n records numbered from `first`: label (first + r) % 10, cifar_pixel. */
static char *write_cifar(const char *dir, const char *name, int first, int n) {
  uint8_t *buf = malloc((size_t)n * REC);
  for (int r = 0; r < n; r++) {
    buf[r * REC] = (uint8_t)((first + r) % 10);
    for (int k = 0; k < 3072; k++)
      buf[r * REC + 1 + k] = cifar_pixel(first + r, k);
  }
  char *path = join(dir, name);
  write_bytes(path, buf, (size_t)n * REC);
  free(buf);
  return path;
}

START_TEST(cifar_reads_records_from_several_files) {
  char dir[64], yaml[1024];
  dl_test_tmpdir(dir, sizeof dir);
  char *a = write_cifar(dir, "a.bin", 0, 3), *b = write_cifar(dir, "b.bin", 3, 2);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  snprintf(yaml, sizeof yaml,
           "{name: c, type: CifarData, source: ['%s', '%s'], batch_size: 4, shuffle: false}", a, b);
  dl_layer *l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->ndim, 4);
  ck_assert_int_eq(t[0]->shape[0], 4);
  ck_assert_int_eq(t[0]->shape[1], 3);
  ck_assert_int_eq(t[0]->shape[2], 32);
  ck_assert_int_eq(t[0]->shape[3], 32);
  ck_assert_int_eq(t[1]->shape[0], 4);
  forward(l, t, 2); /* records 0-3: across the two files */
  for (int j = 0; j < 4; j++)
    for (int k = 0; k < 3072; k += 97)
      ck_assert_float_eq(dl_cdata(t[0])[j * 3072 + k], cifar_pixel(j, k));
  dl_check_close(dl_cdata(t[1]), (const float[]){0, 1, 2, 3}, 4, 0, "labels");
  forward(l, t, 2); /* record 4, then the next epoch */
  dl_check_close(dl_cdata(t[1]), (const float[]){4, 0, 1, 2}, 4, 0, "labels, wrapped");
  ck_assert_float_eq(dl_cdata(t[0])[5], cifar_pixel(4, 5));
  int64_t c[4];
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[0], 1);
  ck_assert_int_eq(c[1], 3);
  ck_assert_int_eq(c[2], 5);
  dl_layer_free(l);

  /* One file as a plain string; scale and a mean per channel. */
  snprintf(yaml, sizeof yaml,
           "{name: c, type: CifarData, source: '%s', batch_size: 1, scale: 0.5, "
           "mean_value: [1, 2, 3]}",
           a);
  l = dl_test_must_build_data(yaml, DL_TEST, &ctx_seed5, t, 2);
  forward(l, t, 2);
  for (int ch = 0; ch < 3; ch++)
    ck_assert_float_eq(dl_cdata(t[0])[ch * 1024 + 10],
                       ((float)cifar_pixel(0, ch * 1024 + 10) - (float)(ch + 1)) * 0.5f);
  dl_layer_free(l);
  free_tops(t, 2);
  free(a), free(b);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(cifar_errors_name_file_and_record) {
  char dir[64], yaml[1024];
  dl_test_tmpdir(dir, sizeof dir);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  char *good = write_cifar(dir, "good.bin", 0, 2);

  /* Two whole records and 100 bytes of a third. */
  char *cut = write_cifar(dir, "cut.bin", 0, 3);
  ck_assert_int_eq(truncate(cut, 2 * REC + 100), 0);
  snprintf(yaml, sizeof yaml, "{name: c, type: CifarData, source: ['%s', '%s'], batch_size: 1}",
           good, cut);
  build_fails(yaml, DL_EDATA, t, 2);
  expect_diag(cut);
  expect_diag("truncated");
  expect_diag("record 2 (0-based) has only 100 bytes");

  /* A label of 10 in the second record. */
  uint8_t bad[2 * REC] = {3};
  bad[REC] = 10;
  char *lab = join(dir, "label.bin");
  write_bytes(lab, bad, sizeof bad);
  snprintf(yaml, sizeof yaml, "{name: c, type: CifarData, source: '%s', batch_size: 1}", lab);
  build_fails(yaml, DL_EDATA, t, 2);
  expect_diag(lab);
  expect_diag("record 1 (0-based, at byte 3073) has label 10");

  char *missing = join(dir, "missing.bin");
  snprintf(yaml, sizeof yaml, "{name: c, type: CifarData, source: '%s', batch_size: 1}", missing);
  build_fails(yaml, DL_EDATA, t, 2);
  expect_diag(missing);

  snprintf(yaml, sizeof yaml, "{name: c, type: CifarData, source: [], batch_size: 1}");
  build_fails(yaml, DL_ECONFIG, t, 2);
  expect_diag("at least one file");
  snprintf(yaml, sizeof yaml, "{name: c, type: CifarData, source: {a: 1}, batch_size: 1}");
  build_fails(yaml, DL_ECONFIG, t, 2);
  expect_diag("list of strings");

  free_tops(t, 2);
  free(good), free(cut), free(lab), free(missing);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- transforms ----------------------------------------------------------------- */

/* A layer to hang a transform on: name, phase and seed are what matter. */
static dl_layer *host(dl_phase phase, const dl_ctx *ctx) {
  dl_layer *l = NULL;
  ck_assert_int_eq(
      dl_layer_from_yaml("{name: img, type: CifarData, source: x, batch_size: 1}", phase, ctx, &l),
      DL_OK);
  return l;
}

START_TEST(transform_mean_scale_std) {
  dl_layer *l = host(DL_TRAIN, &ctx_seed5);
  uint8_t src[3 * 2 * 3]; /* (3, 2, 3) */
  for (int k = 0; k < 18; k++)
    src[k] = (uint8_t)(10 * k + 5);
  dl_transform_param p = {.scale = 0.5f, .mean_value = {3, {10, 20, 30}}, .std = {3, {1, 2, 4}}};
  dl_transform t;
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 3, 2, 3), DL_OK);
  ck_assert_int_eq(t.out_h, 2);
  ck_assert_int_eq(t.out_w, 3);
  float out[18], want[18];
  dl_transform_apply(&t, src, 0, out);
  for (int k = 0; k < 18; k++) {
    int c = k / 6;
    want[k] = ((float)src[k] - (float)(10 * (c + 1))) * 0.5f / (float)(1 << c);
  }
  dl_check_close(out, want, 18, 1e-6, "per-channel mean, scale, std");
  dl_transform_free(&t);

  /* One mean for every channel. */
  p = (dl_transform_param){.scale = 2, .mean_value = {1, {100}}};
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 3, 2, 3), DL_OK);
  dl_transform_apply(&t, src, 0, out);
  ck_assert_float_eq(out[17], ((float)src[17] - 100) * 2);
  dl_transform_free(&t);

  /* Lists of the wrong length, a crop larger than the image. */
  dl_diag_clear();
  p = (dl_transform_param){.scale = 1, .mean_value = {2, {1, 2}}};
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 3, 2, 3), DL_ECONFIG);
  expect_diag("mean_value: 2 values for 3-channel images");
  dl_transform_free(&t);
  p = (dl_transform_param){.scale = 1, .std = {2, {1, 2}}};
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 3, 2, 3), DL_ECONFIG);
  expect_diag("std: 2 values");
  dl_transform_free(&t);
  p = (dl_transform_param){.scale = 1, .crop_size = 3};
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 3, 2, 3), DL_ECONFIG);
  expect_diag("crop_size 3 is larger than the 2x3 images");
  dl_transform_free(&t);
  dl_layer_free(l);
}
END_TEST

START_TEST(transform_mean_file) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  dl_layer *l = host(DL_TEST, &ctx_seed5);
  float mean[2 * 2 * 2]; /* (2, 2, 2) */
  uint8_t bytes[sizeof mean], src[8];
  for (int k = 0; k < 8; k++) {
    mean[k] = 1.5f * (float)k;
    src[k] = (uint8_t)(20 + k);
  }
  for (int k = 0; k < 8; k++) { /* little-endian, as the format says */
    uint32_t bits;
    memcpy(&bits, &mean[k], 4);
    for (int b = 0; b < 4; b++)
      bytes[4 * k + b] = (uint8_t)(bits >> (8 * b));
  }
  char *path = join(dir, "m.mean");
  write_bytes(path, bytes, sizeof bytes);
  dl_transform_param p = {.scale = 0.25f};
  snprintf(p.mean_file, sizeof p.mean_file, "%s", path);
  dl_transform t;
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 2, 2, 2), DL_OK);
  float out[8];
  dl_transform_apply(&t, src, 0, out);
  for (int k = 0; k < 8; k++)
    ck_assert_float_eq(out[k], ((float)src[k] - mean[k]) * 0.25f);
  dl_transform_free(&t);

  /* Cropped (centre, test phase): the mean is taken at the pixel's own place. */
  p.crop_size = 1;
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 2, 2, 2), DL_OK);
  dl_transform_apply(&t, src, 0, out);
  ck_assert_float_eq(out[0], ((float)src[0] - mean[0]) * 0.25f);
  ck_assert_float_eq(out[1], ((float)src[4] - mean[4]) * 0.25f);
  dl_transform_free(&t);

  dl_diag_clear();
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 3, 2, 2), DL_EDATA); /* 8 floats, not 12 */
  expect_diag("holds 32 bytes");
  expect_diag("12 float32s");
  dl_transform_free(&t);
  p.mean_value = (dl_floats){1, {3}};
  ck_assert_int_eq(dl_transform_init(&t, l, &p, 2, 2, 2), DL_ECONFIG);
  expect_diag("not both");
  dl_transform_free(&t);
  dl_layer_free(l);
  free(path);
  dl_test_rmdir(dir);
}
END_TEST

/* src: 4x5 single channel, pixel = 10 * y + x (so the value says where it came from). */
static void grid(uint8_t *src) {
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 5; x++)
      src[y * 5 + x] = (uint8_t)(10 * y + x + 1);
}

START_TEST(transform_crop_and_mirror) {
  uint8_t src[20];
  grid(src);
  dl_transform_param p = {.scale = 1, .crop_size = 2, .mirror = 1};
  dl_layer *train = host(DL_TRAIN, &ctx_seed5), *test = host(DL_TEST, &ctx_seed5);
  dl_transform t;
  ck_assert_int_eq(dl_transform_init(&t, train, &p, 1, 4, 5), DL_OK);
  int seen_y[3] = {0}, seen_x[4] = {0}, flips = 0;
  for (int pos = 0; pos < 400; pos++) {
    int y0, x0, flip;
    float out[4];
    dl_transform_choice(&t, pos, &y0, &x0, &flip);
    ck_assert(y0 >= 0 && y0 <= 2 && x0 >= 0 && x0 <= 3);
    seen_y[y0]++, seen_x[x0]++, flips += flip;
    dl_transform_apply(&t, src, pos, out);
    for (int y = 0; y < 2; y++)
      for (int x = 0; x < 2; x++) {
        int sx = flip ? x0 + 1 - x : x0 + x;
        ck_assert_float_eq(out[y * 2 + x], src[(y0 + y) * 5 + sx]);
      }
  }
  for (int i = 0; i < 3; i++)
    ck_assert_int_gt(seen_y[i], 80); /* every offset, about uniformly */
  for (int i = 0; i < 4; i++)
    ck_assert_int_gt(seen_x[i], 60);
  ck_assert(flips > 150 && flips < 250);
  dl_transform_free(&t);

  /* Test phase: the centre ((4-2)/2, (5-2)/2) = (1, 1), never mirrored. */
  ck_assert_int_eq(dl_transform_init(&t, test, &p, 1, 4, 5), DL_OK);
  for (int pos = 0; pos < 50; pos++) {
    float out[4];
    dl_transform_apply(&t, src, pos, out);
    dl_check_close(out, (const float[]){12, 13, 22, 23}, 4, 0, "centre crop");
  }
  dl_transform_free(&t);

  /* Same seed, same choices; another seed, other choices. */
  dl_transform a, b, c;
  dl_layer *again = host(DL_TRAIN, &ctx_seed5), *other = host(DL_TRAIN, &ctx_seed6);
  ck_assert_int_eq(dl_transform_init(&a, train, &p, 1, 4, 5), DL_OK);
  ck_assert_int_eq(dl_transform_init(&b, again, &p, 1, 4, 5), DL_OK);
  ck_assert_int_eq(dl_transform_init(&c, other, &p, 1, 4, 5), DL_OK);
  int differ = 0;
  for (int pos = 0; pos < 100; pos++) {
    float oa[4], ob[4], oc[4];
    dl_transform_apply(&a, src, pos, oa);
    dl_transform_apply(&b, src, pos, ob);
    dl_transform_apply(&c, src, pos, oc);
    ck_assert_mem_eq(oa, ob, sizeof oa);
    differ += memcmp(oa, oc, sizeof oa) != 0;
  }
  ck_assert_int_gt(differ, 50);
  dl_transform_free(&a), dl_transform_free(&b), dl_transform_free(&c);
  dl_layer_free(again), dl_layer_free(other);
  dl_layer_free(train), dl_layer_free(test);
}
END_TEST

START_TEST(transform_pad) {
  uint8_t src[20];
  grid(src);
  dl_layer *train = host(DL_TRAIN, &ctx_seed5), *test = host(DL_TEST, &ctx_seed5);
  /* Padding 1 and a crop of the original size: test phase gives the image back. */
  dl_transform_param p = {.scale = 1, .mean_value = {1, {1}}, .crop_size = 4, .pad = 1};
  dl_transform t;
  ck_assert_int_eq(dl_transform_init(&t, test, &p, 1, 4, 5), DL_OK);
  ck_assert_int_eq(t.out_h, 4);
  float out[20];
  dl_transform_apply(&t, src, 0, out);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) /* the centre window of the 6x7 padded image starts at (1, 1) */
      ck_assert_float_eq(out[y * 4 + x], (float)src[y * 5 + x] - 1);
  dl_transform_free(&t);
  /* Train phase: a window at the top-left corner reads padding (0) in row 0. */
  ck_assert_int_eq(dl_transform_init(&t, train, &p, 1, 4, 5), DL_OK);
  int corners = 0;
  for (int pos = 0; pos < 200; pos++) {
    int y0, x0, flip;
    dl_transform_choice(&t, pos, &y0, &x0, &flip);
    if (y0 != 0 || x0 != 0) continue;
    corners++;
    dl_transform_apply(&t, src, pos, out);
    for (int x = 0; x < 4; x++)
      ck_assert_float_eq(out[x], 0);
    ck_assert_float_eq(out[4], 0);                 /* column 0 too */
    ck_assert_float_eq(out[5], (float)src[0] - 1); /* the image starts at (1, 1) */
  }
  ck_assert_int_gt(corners, 0);
  /* No crop: the output is the padded size. */
  dl_transform_free(&t);
  p.crop_size = 0;
  ck_assert_int_eq(dl_transform_init(&t, train, &p, 1, 4, 5), DL_OK);
  ck_assert_int_eq(t.out_h, 6);
  ck_assert_int_eq(t.out_w, 7);
  dl_transform_free(&t);
  dl_layer_free(train), dl_layer_free(test);
}
END_TEST

/* Labels and the first pixel of each example of `batches` forwards. */
typedef struct {
  float label[8], first[8], sum[8];
} batch_sig;

static void grab(dl_layer *l, dl_blob *const *t, batch_sig *s) {
  forward(l, t, 2);
  int n = t[0]->shape[0];
  size_t per = t[0]->count / (size_t)n;
  memset(s, 0, sizeof *s);
  for (int j = 0; j < n; j++) {
    s->label[j] = dl_cdata(t[1])[j];
    s->first[j] = dl_cdata(t[0])[j * per];
    for (size_t k = 0; k < per; k++)
      s->sum[j] += dl_cdata(t[0])[j * per + k] * (float)(k % 7);
  }
}

START_TEST(cifar_augmented_resume_is_exact) {
  char dir[64], yaml[1024];
  dl_test_tmpdir(dir, sizeof dir);
  char *a = write_cifar(dir, "a.bin", 0, 7);
  snprintf(yaml, sizeof yaml,
           "{name: c, type: CifarData, source: '%s', batch_size: 3, crop_size: 28, mirror: true, "
           "mean_value: 100, scale: 0.01}",
           a);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  enum { TOTAL = 8 };
  batch_sig ref[TOTAL], got;
  dl_layer *l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->shape[2], 28);
  for (int k = 0; k < TOTAL; k++)
    grab(l, t, &ref[k]);
  dl_layer_free(l);
  /* The same example is augmented differently in different epochs. */
  int differs = 0;
  for (int k = 0; k < TOTAL; k++)
    for (int m = 0; m < TOTAL; m++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          differs += ref[k].label[i] == ref[m].label[j] && ref[k].sum[i] != ref[m].sum[j];
  ck_assert_int_gt(differs, 0);

  /* Stop after 3 batches; a fresh layer resumed there continues exactly. */
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  int64_t cur[4];
  for (int k = 0; k < 3; k++)
    grab(l, t, &got);
  l->ops->get_cursor(l, cur);
  dl_layer_free(l);
  dl_ctx ctx = {.seed = 6, .threads = 1};
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx, t, 2); /* built with another seed... */
  ctx.seed = 5;                               /* ...then given the snapshot's, as on resume */
  ck_assert_int_eq(l->ops->set_cursor(l, cur), DL_OK);
  for (int k = 3; k < TOTAL; k++) {
    grab(l, t, &got);
    ck_assert_msg(memcmp(&got, &ref[k], sizeof got) == 0, "batch %d differs after resume", k);
  }
  dl_layer_free(l);
  free_tops(t, 2);
  free(a);
  dl_test_rmdir(dir);
}
END_TEST

/* MnistData takes crop_size, pad and mirror too (Fashion-MNIST augmentation). */
START_TEST(mnist_crop_and_mirror) {
  char dir[64], yaml[1024];
  dl_test_tmpdir(dir, sizeof dir);
  uint8_t head[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 6}, img[16 + 72];
  memcpy(img, head, 16);
  for (int k = 0; k < 72; k++)
    img[16 + k] = (uint8_t)(k + 1);
  uint8_t lab[10] = {0, 0, 8, 1, 0, 0, 0, 2, 4, 7};
  char *ip = join(dir, "img"), *lp = join(dir, "lab");
  write_bytes(ip, img, sizeof img);
  write_bytes(lp, lab, sizeof lab);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  snprintf(yaml, sizeof yaml,
           "{name: m, type: MnistData, source: '%s', label_source: '%s', batch_size: 2, "
           "scale: 1, crop_size: 4, pad: 1, mirror: true}",
           ip, lp);
  dl_layer *l = dl_test_must_build_data(yaml, DL_TEST, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->shape[2], 4);
  ck_assert_int_eq(t[0]->shape[3], 4);
  forward(l, t, 2);
  /* Centre of the 8x8 padded image: rows and columns 1..4 of the 6x6 original. */
  ck_assert_float_eq(dl_cdata(t[0])[0], 1 * 6 + 1 + 1);
  ck_assert_float_eq(dl_cdata(t[0])[15], 4 * 6 + 4 + 1);
  ck_assert_float_eq(dl_cdata(t[0])[16], 36 + 1 * 6 + 1 + 1);
  dl_check_close(dl_cdata(t[1]), (const float[]){4, 7}, 2, 0, "labels");
  dl_layer_free(l);
  /* Train: the windows move and flip. */
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  int moved = 0;
  for (int b = 0; b < 10; b++) {
    forward(l, t, 2);
    moved += dl_cdata(t[0])[0] != 8 || dl_cdata(t[0])[16] != 44;
  }
  ck_assert_int_gt(moved, 0);
  dl_layer_free(l);
  free_tops(t, 2);
  free(ip), free(lp);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- PNG files ------------------------------------------------------------------ */

/* Writes a PNG with libpng: `raw` holds h rows of interleaved samples as the
 * colour type and depth store them (16-bit samples big-endian). */
static void write_png(const char *path, int w, int h, int color, int depth, const uint8_t *raw,
                      const png_color *pal, int npal, const uint8_t *trns, int ntrns) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  ck_assert(png && info);
  ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (pal) png_set_PLTE(png, info, pal, npal);
  if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
  png_write_info(png, info);
  int channels = color == PNG_COLOR_TYPE_RGB ? 3 : color == PNG_COLOR_TYPE_RGBA ? 4 : 1;
  size_t rowbytes = (size_t)w * channels * (depth == 16 ? 2 : 1);
  if (depth < 8) rowbytes = ((size_t)w * depth + 7) / 8;
  for (int y = 0; y < h; y++)
    png_write_row(png, raw + y * rowbytes);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  fclose(f);
}

/* 3x2 test pictures, one per colour type; the grey values are g[k] = 40 k + 7. */
static void write_pictures(const char *dir) {
  uint8_t grey[6], grey16[12], rgb[18], rgba[24], idx[6];
  for (int k = 0; k < 6; k++) {
    grey[k] = (uint8_t)(40 * k + 7);
    grey16[2 * k] = grey16[2 * k + 1] = grey[k]; /* 257 g: exactly g after scaling */
    rgb[3 * k] = (uint8_t)(10 * k), rgb[3 * k + 1] = (uint8_t)(200 - 20 * k),
            rgb[3 * k + 2] = (uint8_t)(33 * k);
    memcpy(rgba + 4 * k, rgb + 3 * k, 3);
    rgba[4 * k + 3] = (uint8_t)(k % 2 ? 0 : 128); /* transparent pixels keep their colour */
    idx[k] = (uint8_t)(k % 3);
  }
  grey16[0] = 0x06, grey16[1] = 0xFF; /* 1791 rounds to 7 (1791 * 255 / 65535 = 6.97) */
  char *p;
  write_png(p = join(dir, "grey8.png"), 3, 2, PNG_COLOR_TYPE_GRAY, 8, grey, NULL, 0, NULL, 0);
  free(p);
  write_png(p = join(dir, "grey16.png"), 3, 2, PNG_COLOR_TYPE_GRAY, 16, grey16, NULL, 0, NULL, 0);
  free(p);
  write_png(p = join(dir, "rgb.png"), 3, 2, PNG_COLOR_TYPE_RGB, 8, rgb, NULL, 0, NULL, 0);
  free(p);
  write_png(p = join(dir, "rgba.png"), 3, 2, PNG_COLOR_TYPE_RGBA, 8, rgba, NULL, 0, NULL, 0);
  free(p);
  const png_color pal[3] = {{255, 0, 0}, {0, 128, 0}, {1, 2, 250}};
  const uint8_t trns[3] = {255, 0, 64}; /* a palette with transparency */
  write_png(p = join(dir, "palette.png"), 3, 2, PNG_COLOR_TYPE_PALETTE, 8, idx, pal, 3, trns, 3);
  free(p);
}

static uint8_t luma(int r, int g, int b) {
  return (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
}

START_TEST(png_decodes_every_colour_type) {
  char dir[64], err[600];
  dl_test_tmpdir(dir, sizeof dir);
  write_pictures(dir);
  const char *names[] = {"grey8.png", "grey16.png", "rgb.png", "rgba.png", "palette.png"};
  const uint8_t pal[3][3] = {{255, 0, 0}, {0, 128, 0}, {1, 2, 250}};
  for (int f = 0; f < 5; f++) {
    char *path = join(dir, names[f]);
    dl_image rgb, grey;
    ck_assert_msg(dl_png_read(path, 3, &rgb, err, sizeof err) == DL_OK, "%s", err);
    ck_assert_msg(dl_png_read(path, 1, &grey, err, sizeof err) == DL_OK, "%s", err);
    ck_assert_int_eq(rgb.channels, 3);
    ck_assert_int_eq(rgb.height, 2);
    ck_assert_int_eq(rgb.width, 3);
    ck_assert_int_eq(grey.channels, 1);
    for (int k = 0; k < 6; k++) {
      int r, g, b;
      if (f < 2) {
        r = g = b = 40 * k + 7;
      } else if (f < 4) {
        r = 10 * k, g = 200 - 20 * k, b = 33 * k;
      } else {
        r = pal[k % 3][0], g = pal[k % 3][1], b = pal[k % 3][2];
      }
      ck_assert_msg(rgb.pixels[k] == r && rgb.pixels[6 + k] == g && rgb.pixels[12 + k] == b,
                    "%s pixel %d: got (%d, %d, %d), want (%d, %d, %d)", names[f], k, rgb.pixels[k],
                    rgb.pixels[6 + k], rgb.pixels[12 + k], r, g, b);
      ck_assert_msg(grey.pixels[k] == (f < 2 ? r : luma(r, g, b)), "%s grey pixel %d: %d", names[f],
                    k, grey.pixels[k]);
    }
    dl_image_free(&rgb), dl_image_free(&grey);
    int h, w;
    ck_assert_int_eq(dl_png_size(path, &h, &w, err, sizeof err), DL_OK);
    ck_assert(h == 2 && w == 3);
    free(path);
  }
  /* Not a PNG, and a PNG cut short. */
  char *text = dl_test_write(dir, "text.png", "hello, not a picture\n"),
       *cut = join(dir, "rgb.png");
  dl_image img;
  ck_assert_int_eq(dl_png_read(text, 3, &img, err, sizeof err), DL_EDATA);
  ck_assert_ptr_nonnull(strstr(err, "not a PNG file"));
  ck_assert_ptr_nonnull(strstr(err, text));
  struct stat sb;
  ck_assert_int_eq(stat(cut, &sb), 0);
  ck_assert_int_eq(truncate(cut, sb.st_size - 20), 0);
  ck_assert_int_eq(dl_png_read(cut, 3, &img, err, sizeof err), DL_EDATA);
  ck_assert_ptr_nonnull(strstr(err, cut));
  free(text), free(cut);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(png_write_round_trip_and_resize) {
  char dir[64], err[600];
  dl_test_tmpdir(dir, sizeof dir);
  uint8_t px[2 * 3 * 4];
  for (int k = 0; k < 24; k++)
    px[k] = (uint8_t)(k * 11);
  dl_image img = {3, 2, 4, px}, back; /* (3, 2, 4) */
  char *path = join(dir, "w.png");
  ck_assert_msg(dl_png_write(path, &img, err, sizeof err) == DL_OK, "%s", err);
  ck_assert_int_eq(dl_png_read(path, 3, &back, err, sizeof err), DL_OK);
  ck_assert_mem_eq(back.pixels, px, 24);
  dl_image_free(&back);
  free(path);

  /* Resize: sampling at pixel centres. Up 2x2 -> 4x4: output (0, 1) sits at
   * x = 0.25 between the first two pixels; down 4 -> 2 averages pairs. */
  const uint8_t two[4] = {0, 100, 100, 200};
  uint8_t four[16];
  dl_image_resize(two, 1, 2, 2, four, 4, 4);
  const uint8_t want4[16] = {0,  25,  75,  100, 25,  50,  100, 125,
                             75, 100, 150, 175, 100, 125, 175, 200};
  ck_assert_mem_eq(four, want4, 16);
  uint8_t half[4];
  const uint8_t src4[16] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 161};
  dl_image_resize(src4, 1, 4, 4, half, 2, 2);
  const uint8_t want2[4] = {35, 55, 115, 135};
  ck_assert_mem_eq(half, want2, 4);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- ImageData ------------------------------------------------------------------ */

static char *image_yaml(const char *key, const char *path, int batch, const char *extra) {
  static char buf[2048];
  snprintf(buf, sizeof buf, "{name: img, type: ImageData, %s: '%s', batch_size: %d%s%s}", key, path,
           batch, extra[0] ? ", " : "", extra);
  return buf;
}

START_TEST(image_list_file) {
  char dir[64], sub[128];
  dl_test_tmpdir(dir, sizeof dir);
  snprintf(sub, sizeof sub, "%s/pics", dir);
  ck_assert_int_eq(mkdir(sub, 0755), 0);
  write_pictures(sub);
  /* CRLF, comments, blank lines, spaces around fields, a path with a folder. */
  char *list = dl_test_write(dir, "list.txt",
                             "# the pictures\r\n"
                             "pics/grey8.png 3\r\n"
                             "\r\n"
                             "   pics/rgb.png\t 1  \r\n"
                             "  # indented comment\r\n"
                             "pics/palette.png 0\r\n");
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l = dl_test_must_build_data(image_yaml("source", list, 3, "shuffle: false"), DL_TRAIN,
                                        &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->shape[0], 3);
  ck_assert_int_eq(t[0]->shape[1], 3);
  ck_assert_int_eq(t[0]->shape[2], 2);
  ck_assert_int_eq(t[0]->shape[3], 3);
  forward(l, t, 2);
  dl_check_close(dl_cdata(t[1]), (const float[]){3, 1, 0}, 3, 0, "labels");
  const float *x = dl_cdata(t[0]);                   /* (3, 3, 2, 3) */
  ck_assert_float_eq(x[0 * 18 + 6 + 5], 40 * 5 + 7); /* grey replicated into G */
  ck_assert_float_eq(x[1 * 18 + 12 + 2], 33 * 2);    /* rgb: B of pixel 2 */
  ck_assert_float_eq(x[2 * 18 + 0 + 2], 1);          /* palette entry 2: R */
  dl_layer_free(l);

  /* Grey, with a resize and the transforms. */
  l = dl_test_must_build_data(
      image_yaml("source", list, 1,
                 "shuffle: false, channels: 1, new_height: 4, new_width: 6, "
                 "scale: 0.5, mean_value: 7"),
      DL_TEST, &ctx_seed5, t, 2);
  ck_assert_int_eq(t[0]->shape[1], 1);
  ck_assert_int_eq(t[0]->shape[2], 4);
  ck_assert_int_eq(t[0]->shape[3], 6);
  forward(l, t, 2);
  ck_assert_float_eq(dl_cdata(t[0])[0], 0); /* corner pixel 7, minus the mean */
  ck_assert_float_eq(dl_cdata(t[0])[23], (40 * 5 + 7 - 7) * 0.5f);
  dl_layer_free(l);
  free_tops(t, 2);
  free(list);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(image_class_folders) {
  char dir[64], path[256];
  dl_test_tmpdir(dir, sizeof dir);
  const char *classes[] = {"zebra", "ant", "moth"}; /* numbered by name: ant 0, moth 1, zebra 2 */
  for (int c = 0; c < 3; c++) {
    snprintf(path, sizeof path, "%s/%s", dir, classes[c]);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    for (int i = 0; i <= c; i++) {
      uint8_t px[4] = {(uint8_t)(c * 50 + i), 0, 0, 0};
      snprintf(path, sizeof path, "%s/%s/img%d.PNG", dir, classes[c], i);
      write_png(path, 2, 2, PNG_COLOR_TYPE_GRAY, 8, px, NULL, 0, NULL, 0);
    }
    snprintf(path, sizeof path, "%s/%s", dir, classes[c]);
    free(dl_test_write(path, "notes.txt", "not an image")); /* only .png files count */
  }
  free(dl_test_write(dir, "README", "a file beside the class folders is ignored"));
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  dl_layer *l = dl_test_must_build_data(
      image_yaml("root_folder", dir, 6, "shuffle: false, channels: 1"), DL_TRAIN, &ctx_seed5, t, 2);
  forward(l, t, 2);
  /* zebra holds 1 image, ant 2, moth 3; in name order: ant (0), moth (1), zebra (2). */
  dl_check_close(dl_cdata(t[1]), (const float[]){0, 0, 1, 1, 1, 2}, 6, 0, "labels by name");
  const float first[6] = {50, 51, 100, 101, 102, 0};
  for (int j = 0; j < 6; j++)
    ck_assert_float_eq(dl_cdata(t[0])[j * 4], first[j]);
  int64_t c[4];
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[2], 6);
  dl_layer_free(l);

  /* An empty class folder is an error. */
  snprintf(path, sizeof path, "%s/empty", dir);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  build_fails(image_yaml("root_folder", dir, 1, ""), DL_EDATA, t, 2);
  expect_diag("empty' holds no .png files");
  free_tops(t, 2);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(image_errors_name_file_and_line) {
  char dir[64], want[300];
  dl_test_tmpdir(dir, sizeof dir);
  write_pictures(dir);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};

  char *missing = dl_test_write(dir, "missing.txt", "grey8.png 0\n# ok\nnope.png 1\n");
  build_fails(image_yaml("source", missing, 1, ""), DL_EDATA, t, 2);
  snprintf(want, sizeof want, "%s:3: image 'nope.png' cannot be read", missing);
  expect_diag(want);
  expect_diag("No such file");

  char *label = dl_test_write(dir, "label.txt", "grey8.png 0\nrgb.png cat\n");
  build_fails(image_yaml("source", label, 1, ""), DL_EDATA, t, 2);
  snprintf(want, sizeof want, "%s:2: bad label 'cat'", label);
  expect_diag(want);
  char *nolabel = dl_test_write(dir, "nolabel.txt", "grey8.png\n");
  build_fails(image_yaml("source", nolabel, 1, ""), DL_EDATA, t, 2);
  snprintf(want, sizeof want, "%s:1: expected 'path label'", nolabel);
  expect_diag(want);
  char *empty = dl_test_write(dir, "empty.txt", "# nothing\n\n");
  build_fails(image_yaml("source", empty, 1, ""), DL_EDATA, t, 2);
  expect_diag("lists no images");

  /* Undecodable: found at setup, reported by the forward that reads it. */
  free(dl_test_write(dir, "junk.png", "GIF89a, not a PNG"));
  char *junk = dl_test_write(dir, "junk.txt", "grey8.png 0\njunk.png 1\n");
  dl_layer *l = dl_test_must_build_data(image_yaml("source", junk, 1, "shuffle: false"), DL_TRAIN,
                                        &ctx_seed5, t, 2);
  forward(l, t, 2);
  dl_diag_clear();
  ck_assert_int_eq(l->ops->forward(l, NULL, 0, t, 2), DL_EDATA);
  snprintf(want, sizeof want, "%s:2: '%s/junk.png' is not a PNG file", junk, dir);
  expect_diag(want);
  dl_layer_free(l);

  /* Another size without new_height/new_width. */
  uint8_t px[16] = {0};
  char *big = join(dir, "big.png");
  write_png(big, 4, 4, PNG_COLOR_TYPE_GRAY, 8, px, NULL, 0, NULL, 0);
  char *sizes = dl_test_write(dir, "sizes.txt", "grey8.png 0\nbig.png 1\n");
  l = dl_test_must_build_data(image_yaml("source", sizes, 2, "shuffle: false"), DL_TRAIN,
                              &ctx_seed5, t, 2);
  dl_diag_clear();
  ck_assert_int_eq(l->ops->forward(l, NULL, 0, t, 2), DL_EDATA);
  snprintf(want, sizeof want, "%s:2: '%s' is 4 wide and 4 high, but this layer's images are 3x2",
           sizes, big);
  expect_diag(want);
  expect_diag("new_height");
  dl_layer_free(l);
  /* ... which resizing fixes. */
  l = dl_test_must_build_data(image_yaml("source", sizes, 2, "new_height: 5, new_width: 5"),
                              DL_TRAIN, &ctx_seed5, t, 2);
  forward(l, t, 2);
  ck_assert_int_eq(t[0]->shape[2], 5);
  dl_layer_free(l);

  /* Config mistakes. */
  build_fails("{name: i, type: ImageData, batch_size: 1}", DL_ECONFIG, t, 2);
  expect_diag("give source (a list file) or root_folder, not neither");
  build_fails(image_yaml("source", sizes, 1, "new_height: 5"), DL_ECONFIG, t, 2);
  expect_diag("both new_height and new_width");
  build_fails(image_yaml("source", sizes, 1, "channels: 2"), DL_ECONFIG, t, 2);
  expect_diag("channels");

  free_tops(t, 2);
  free(missing), free(label), free(nolabel), free(empty), free(junk), free(big), free(sizes);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(image_shuffle_and_resume) {
  char dir[64], path[256], list[2048] = "";
  dl_test_tmpdir(dir, sizeof dir);
  for (int i = 0; i < 9; i++) {
    uint8_t px[9];
    for (int k = 0; k < 9; k++)
      px[k] = (uint8_t)(i * 20 + k);
    snprintf(path, sizeof path, "%s/%d.png", dir, i);
    write_png(path, 3, 3, PNG_COLOR_TYPE_GRAY, 8, px, NULL, 0, NULL, 0);
    snprintf(list + strlen(list), sizeof list - strlen(list), "%d.png %d\n", i, i);
  }
  char *lp = dl_test_write(dir, "list.txt", list);
  const char *yaml = image_yaml("source", lp, 2, "channels: 1, crop_size: 2, mirror: true");
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  enum { TOTAL = 10 };
  batch_sig ref[TOTAL], got;
  dl_layer *l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  for (int k = 0; k < TOTAL; k++) {
    grab(l, t, &ref[k]);
    for (int j = 0; j < 2; j++) /* the pixels follow the label */
      ck_assert(ref[k].first[j] >= ref[k].label[j] * 20 &&
                ref[k].first[j] < ref[k].label[j] * 20 + 9);
  }
  dl_layer_free(l);
  int in_order = 1;
  for (int k = 0; k < 4; k++)
    in_order &= ref[k].label[0] == 2 * k && ref[k].label[1] == 2 * k + 1;
  ck_assert(!in_order); /* shuffled in train */
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  int64_t cur[4];
  for (int k = 0; k < 6; k++)
    grab(l, t, &got);
  l->ops->get_cursor(l, cur);
  ck_assert_int_eq(cur[0], 1);
  ck_assert_int_eq(cur[1], 3);
  dl_layer_free(l);
  l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  grab(l, t, &got);
  ck_assert_int_eq(l->ops->set_cursor(l, cur), DL_OK);
  for (int k = 6; k < TOTAL; k++) {
    grab(l, t, &got);
    ck_assert_msg(memcmp(&got, &ref[k], sizeof got) == 0, "batch %d differs after resume", k);
  }
  ck_assert_int_eq(l->ops->set_cursor(l, (int64_t[]){0, 0, 10, 0}), DL_EDATA);
  dl_layer_free(l);
  free_tops(t, 2);
  free(lp);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- dltrain convert ------------------------------------------------------------ */

static const char *bin(void) { return dl_test_bin(); }

/* Runs `dltrain ARGS` with stdout+stderr captured into out; returns the exit code. */
static int run(const char *args, char *out, size_t n) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s", bin(), args);
  return dl_test_run(cmd, 1, out, n);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* n idx images of 28x28, pixel (y, x) of image i = (i + y + 2 x) & 255, labels given. */
static void write_idx_pair(const char *dir, int n, const uint8_t *labels) {
  size_t isz = 16 + (size_t)n * 784, lsz = 8 + (size_t)n;
  uint8_t *img = malloc(isz), *lab = malloc(lsz);
  put_be32(img, 0x803), put_be32(img + 4, (uint32_t)n), put_be32(img + 8, 28),
      put_be32(img + 12, 28);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < 28; y++)
      for (int x = 0; x < 28; x++)
        img[16 + (size_t)i * 784 + y * 28 + x] = (uint8_t)(i + y + 2 * x);
  put_be32(lab, 0x801), put_be32(lab + 4, (uint32_t)n);
  memcpy(lab + 8, labels, (size_t)n);
  char *ip = join(dir, "img.idx"), *lp = join(dir, "lab.idx");
  write_bytes(ip, img, isz);
  write_bytes(lp, lab, lsz);
  free(ip), free(lp), free(img), free(lab);
}

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  static uint8_t buf[1 << 16];
  *n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return buf;
}

START_TEST(convert_cifar_png_and_mean) {
  if (!bin()) {
    printf("SKIP convert_cifar_png_and_mean: DLTRAIN_BIN not set (run through `make test`)\n");
    return;
  }
  char dir[64], args[1024], yaml[1024];
  static char out[1 << 16];
  dl_test_tmpdir(dir, sizeof dir);
  write_idx_pair(dir, 4, (const uint8_t[]){7, 0, 9, 7});

  /* Examples 1..3 to CIFAR: padded by 2 and copied to 3 channels. */
  snprintf(args, sizeof args, "convert cifar %s/img.idx %s/lab.idx %s/c.bin --first 1", dir, dir,
           dir);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  char *cb = join(dir, "c.bin");
  size_t n;
  const uint8_t *c = slurp(cb, &n);
  ck_assert_uint_eq(n, 3 * REC);
  ck_assert_int_eq(c[0], 0);
  ck_assert_int_eq(c[REC], 9);
  ck_assert_int_eq(c[2 * REC], 7);
  for (int ch = 0; ch < 3; ch++) {
    const uint8_t *plane = c + 1 + ch * 1024; /* record 0 = example 1 */
    ck_assert_int_eq(plane[0], 0);            /* black border */
    ck_assert_int_eq(plane[31 * 32 + 31], 0);
    ck_assert_int_eq(plane[2 * 32 + 2], 1);                       /* (0, 0): 1 + 0 + 0 */
    ck_assert_int_eq(plane[(2 + 5) * 32 + 2 + 3], 1 + 5 + 2 * 3); /* (5, 3) */
  }
  /* ... which CifarData reads back. */
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("label")};
  snprintf(yaml, sizeof yaml,
           "{name: c, type: CifarData, source: '%s', batch_size: 3, shuffle: false}", cb);
  dl_layer *l = dl_test_must_build_data(yaml, DL_TRAIN, &ctx_seed5, t, 2);
  forward(l, t, 2);
  dl_check_close(dl_cdata(t[1]), (const float[]){0, 9, 7}, 3, 0, "labels");
  ck_assert_float_eq(dl_cdata(t[0])[3072 + 2048 + 2 * 32 + 2], 2); /* example 2, blue, (0, 0) */
  dl_layer_free(l);

  /* Mean of that file: every pixel averaged over the 3 records. */
  snprintf(args, sizeof args, "convert mean %s/m.mean %s", dir, cb);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  char *mp = join(dir, "m.mean");
  const uint8_t *m = slurp(mp, &n);
  ck_assert_uint_eq(n, 3072 * 4);
  float v;
  memcpy(&v, m + 4 * (2 * 32 + 2), 4); /* little-endian host */
  ck_assert_float_eq_tol(v, (1 + 2 + 3) / 3.0f, 1e-6);

  /* PNG: class folders named by --classes and a list file. */
  snprintf(args, sizeof args,
           "convert png %s/img.idx %s/lab.idx %s/png --count 3 --list %s/list.txt "
           "--classes a,b,c,d,e,f,g,h,i,j",
           dir, dir, dir, dir);
  ck_assert_msg(run(args, out, sizeof out) == 0, "%s", out);
  char *lp = join(dir, "list.txt");
  const uint8_t *lt = slurp(lp, &n);
  ck_assert_str_eq((const char *)lt, "png/h/00000.png 7\npng/a/00001.png 0\npng/j/00002.png 9\n");
  l = dl_test_must_build_data(image_yaml("source", lp, 3, "shuffle: false, channels: 1"), DL_TRAIN,
                              &ctx_seed5, t, 2);
  forward(l, t, 2);
  dl_check_close(dl_cdata(t[1]), (const float[]){7, 0, 9}, 3, 0, "labels");
  ck_assert_float_eq(dl_cdata(t[0])[784 + 5 * 28 + 3], 1 + 5 + 6); /* example 1, (5, 3) */
  dl_layer_free(l);

  /* Mistakes: usage (2) and data (4). */
  ck_assert_int_eq(run("convert", out, sizeof out), 2);
  ck_assert_int_eq(run("convert gif a b c", out, sizeof out), 2);
  ck_assert_ptr_nonnull(strstr(out, "unknown format 'gif'"));
  snprintf(args, sizeof args, "convert cifar %s/img.idx %s/lab.idx %s/x.bin --count 0", dir, dir,
           dir);
  ck_assert_int_eq(run(args, out, sizeof out), 2);
  write_idx_pair(dir, 2, (const uint8_t[]){3, 12});
  snprintf(args, sizeof args, "convert cifar %s/img.idx %s/lab.idx %s/x.bin", dir, dir, dir);
  ck_assert_int_eq(run(args, out, sizeof out), 4);
  ck_assert_ptr_nonnull(strstr(out, "label 12 of example 1"));
  char *partial = join(dir, "x.bin");
  ck_assert_int_eq(access(partial, F_OK), -1); /* no half-written file is left */
  free(partial);
  snprintf(args, sizeof args, "convert cifar %s/nothing %s/lab.idx %s/x.bin", dir, dir, dir);
  ck_assert_int_eq(run(args, out, sizeof out), 4);
  ck_assert_ptr_nonnull(strstr(out, "nothing"));

  free_tops(t, 2);
  free(cb), free(mp), free(lp);
  dl_test_rmdir(dir);
}
END_TEST

Suite *suite_image_data(void) {
  Suite *s = suite_create("image_data");
  TCase *tc = tcase_create("image_data");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, cifar_reads_records_from_several_files);
  tcase_add_test(tc, cifar_errors_name_file_and_record);
  tcase_add_test(tc, transform_mean_scale_std);
  tcase_add_test(tc, transform_mean_file);
  tcase_add_test(tc, transform_crop_and_mirror);
  tcase_add_test(tc, transform_pad);
  tcase_add_test(tc, cifar_augmented_resume_is_exact);
  tcase_add_test(tc, mnist_crop_and_mirror);
  tcase_add_test(tc, png_decodes_every_colour_type);
  tcase_add_test(tc, png_write_round_trip_and_resize);
  tcase_add_test(tc, image_list_file);
  tcase_add_test(tc, image_class_folders);
  tcase_add_test(tc, image_errors_name_file_and_line);
  tcase_add_test(tc, image_shuffle_and_resume);
  tcase_add_test(tc, convert_cifar_png_and_mean);
  suite_add_tcase(s, tc);
  return s;
}
