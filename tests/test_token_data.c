/* TokenData and the vocabulary: stream batching (stream i starts at i * L,
 * targets are the next token, cont is 0 only where a stream starts over),
 * words through a vocab with <unk>, the ids format, exact resume, the errors
 * naming file:line, and `dltrain vocab`'s ordering. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/vocab.h"
#include "tests/testutil.h"

static const dl_ctx ctx_seed5 = {.seed = 5, .threads = 1};

static dl_status build(const char *yaml, dl_blob *const *top, int nt, dl_layer **out) {
  return dl_test_build_data(yaml, DL_TRAIN, &ctx_seed5, top, nt, out);
}

static dl_layer *must_build(const char *yaml, dl_blob *const *top, int nt) {
  dl_layer *l = NULL;
  ck_assert_msg(build(yaml, top, nt, &l) == DL_OK, "%s: %s", yaml, dl_diag_text());
  return l;
}

static void build_fails(const char *yaml, dl_status want, dl_blob *const *top, int nt) {
  dl_layer *l = NULL;
  dl_status st = build(yaml, top, nt, &l);
  ck_assert_msg(st == want, "%s: status %d, want %d: %s", yaml, st, want, dl_diag_text());
  dl_layer_free(l);
}

static void forward(dl_layer *l, dl_blob *const *top, int nt) {
  ck_assert_msg(l->ops->forward(l, NULL, 0, top, nt) == DL_OK, "forward: %s", dl_diag_text());
}

static void expect_diag(const char *what) {
  ck_assert_msg(strstr(dl_diag_text(), what) != NULL, "diagnostic lacks '%s': %s", what,
                dl_diag_text());
}

static char *token_yaml(const char *source, const char *extra) {
  static char buf[2048];
  snprintf(buf, sizeof buf, "{name: tok, type: TokenData, source: '%s', %s}", source, extra);
  return buf;
}

/* "0 1 2 ... n-1", `per_line` to a line. */
static char *write_ids(const char *dir, const char *name, int n, int per_line) {
  char *text = malloc((size_t)n * 8 + 1);
  size_t off = 0;
  for (int i = 0; i < n; i++)
    off += (size_t)sprintf(text + off, "%d%s", i, (i + 1) % per_line ? " " : "\n");
  char *path = dl_test_write(dir, name, text);
  free(text);
  return path;
}

START_TEST(token_streams_targets_and_cont) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  /* 41 tokens, 2 streams: L = 20, stream 1 starts at token 20; T = 3 gives
   * (20 - 1) / 3 = 6 batches an epoch. Token k has id k. */
  char *ids = write_ids(dir, "ids.txt", 41, 7);
  dl_blob *t[3] = {dl_blob_new("data"), dl_blob_new("target"), dl_blob_new("cont")};
  dl_layer *l = must_build(token_yaml(ids, "format: ids, batch_size: 2, seq_len: 3"), t, 3);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(t[i]->ndim, 2);
    ck_assert_int_eq(t[i]->shape[0], 3); /* T x N */
    ck_assert_int_eq(t[i]->shape[1], 2);
  }
  int64_t c[4];
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[2], 6);
  for (int epoch = 0; epoch < 2; epoch++)
    for (int b = 0; b < 6; b++) {
      forward(l, t, 3);
      for (int step = 0; step < 3; step++)
        for (int i = 0; i < 2; i++) {
          int o = step * 2 + i, k = i * 20 + b * 3 + step;
          ck_assert_float_eq(dl_cdata(t[0])[o], k);
          ck_assert_float_eq(dl_cdata(t[1])[o], k + 1);
          ck_assert_float_eq(dl_cdata(t[2])[o], b == 0 && step == 0 ? 0 : 1);
        }
    }
  l->ops->get_cursor(l, c);
  ck_assert_int_eq(c[0], 2);
  ck_assert_int_eq(c[1], 0);
  dl_layer_free(l);

  /* One top is enough. */
  l = must_build(token_yaml(ids, "format: ids, batch_size: 4, seq_len: 9"), t, 1);
  forward(l, t, 1);
  ck_assert_float_eq(dl_cdata(t[0])[4 * 8 + 3], 3 * 10 + 8); /* L = 10: stream 3, step 8 */
  dl_layer_free(l);
  for (int i = 0; i < 3; i++)
    dl_blob_free(t[i]);
  free(ids);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(token_words_through_the_vocab) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *vocab = dl_test_write(dir, "vocab.txt", "<unk>\r\nthe\r\ncat\r\n\r\nsat\n");
  char *text = dl_test_write(dir, "text.txt", "the cat\tsat on\n\nthe  mat .\nthe cat\n");
  /* ids: the 1, cat 2, sat 3, on 0, the 1, mat 0, . 0, the 1, cat 2 */
  const float want[9] = {1, 2, 3, 0, 1, 0, 0, 1, 2};
  char extra[600];
  snprintf(extra, sizeof extra, "vocab: '%s', batch_size: 1, seq_len: 4", vocab);
  dl_blob *t[2] = {dl_blob_new("data"), dl_blob_new("target")};
  dl_layer *l = must_build(token_yaml(text, extra), t, 2);
  for (int b = 0; b < 2; b++) { /* (9 - 1) / 4 = 2 batches */
    forward(l, t, 2);
    dl_check_close(dl_cdata(t[0]), want + 4 * b, 4, 0, "ids");
    dl_check_close(dl_cdata(t[1]), want + 4 * b + 1, 4, 0, "targets");
  }
  forward(l, t, 2); /* the next epoch starts over */
  dl_check_close(dl_cdata(t[0]), want, 4, 0, "ids, epoch 2");
  dl_layer_free(l);

  /* The ids format checks ids against the vocab's size. */
  char *ids = dl_test_write(dir, "ids.txt", "1 2 3\n4 0\n");
  snprintf(extra, sizeof extra, "format: ids, vocab: '%s', batch_size: 1, seq_len: 1", vocab);
  build_fails(token_yaml(ids, extra), DL_EDATA, t, 2);
  char want_at[300];
  snprintf(want_at, sizeof want_at, "%s:2: token id 4 is not below the vocabulary size 4", ids);
  expect_diag(want_at);
  for (int i = 0; i < 2; i++)
    dl_blob_free(t[i]);
  free(vocab), free(text), free(ids);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(token_errors_name_file_and_line) {
  char dir[64], extra[600], want[400];
  dl_test_tmpdir(dir, sizeof dir);
  dl_blob *t[1] = {dl_blob_new("data")};
  char *text = dl_test_write(dir, "text.txt", "a b c d e f\n");

  char *nounk = dl_test_write(dir, "nounk.txt", "a\nb\n");
  snprintf(extra, sizeof extra, "vocab: '%s', batch_size: 1, seq_len: 1", nounk);
  build_fails(token_yaml(text, extra), DL_EDATA, t, 1);
  expect_diag("has no '<unk>' line");

  char *dup = dl_test_write(dir, "dup.txt", "<unk>\na\n\nb\na\n");
  snprintf(extra, sizeof extra, "vocab: '%s', batch_size: 1, seq_len: 1", dup);
  build_fails(token_yaml(text, extra), DL_EDATA, t, 1);
  snprintf(want, sizeof want, "%s:5: 'a' is already on line 2", dup);
  expect_diag(want);

  char *two = dl_test_write(dir, "two.txt", "<unk>\na b\n");
  snprintf(extra, sizeof extra, "vocab: '%s', batch_size: 1, seq_len: 1", two);
  build_fails(token_yaml(text, extra), DL_EDATA, t, 1);
  snprintf(want, sizeof want, "%s:2: more than one word", two);
  expect_diag(want);

  char *bad = dl_test_write(dir, "bad.txt", "1 2\n3 x4 5\n");
  build_fails(token_yaml(bad, "format: ids, batch_size: 1, seq_len: 1"), DL_EDATA, t, 1);
  snprintf(want, sizeof want, "%s:2: 'x4' is not a token id", bad);
  expect_diag(want);

  /* 6 tokens cannot feed 2 streams of 3 steps plus a target. */
  char *vocab = dl_test_write(dir, "vocab.txt", "<unk>\n");
  snprintf(extra, sizeof extra, "vocab: '%s', batch_size: 2, seq_len: 3", vocab);
  build_fails(token_yaml(text, extra), DL_EDATA, t, 1);
  expect_diag("holds 6 tokens, too few for 2 streams of seq_len 3");
  expect_diag("at least 8 tokens");

  build_fails(token_yaml(text, "batch_size: 1, seq_len: 1"), DL_ECONFIG, t, 1);
  expect_diag("needs a vocab file");
  snprintf(extra, sizeof extra, "vocab: '%s', vocab_size: 5, batch_size: 1, seq_len: 1", vocab);
  build_fails(token_yaml(text, extra), DL_ECONFIG, t, 1);
  expect_diag("vocab_size is 5");

  dl_blob_free(t[0]);
  free(text), free(nounk), free(dup), free(two), free(bad), free(vocab);
  dl_test_rmdir(dir);
}
END_TEST

START_TEST(token_resume_is_exact) {
  char dir[64];
  dl_test_tmpdir(dir, sizeof dir);
  char *ids = write_ids(dir, "ids.txt", 100, 10);
  const char *yaml = token_yaml(ids, "format: ids, batch_size: 3, seq_len: 4");
  dl_blob *t[3] = {dl_blob_new("data"), dl_blob_new("target"), dl_blob_new("cont")};
  enum { TOTAL = 12, PER = 3 * 12 };
  float ref[TOTAL][PER], got[PER];
  dl_layer *l = must_build(yaml, t, 3);
  for (int b = 0; b < TOTAL; b++) { /* L = 33: 8 batches an epoch, so this wraps */
    forward(l, t, 3);
    for (int i = 0; i < 3; i++)
      memcpy(ref[b] + 12 * i, dl_cdata(t[i]), 12 * sizeof(float));
  }
  dl_layer_free(l);
  l = must_build(yaml, t, 3);
  int64_t cur[4];
  for (int b = 0; b < 7; b++)
    forward(l, t, 3);
  l->ops->get_cursor(l, cur);
  ck_assert_int_eq(cur[0], 0);
  ck_assert_int_eq(cur[1], 7);
  ck_assert_int_eq(cur[2], 8);
  dl_layer_free(l);
  l = must_build(yaml, t, 3);
  forward(l, t, 3);
  ck_assert_int_eq(l->ops->set_cursor(l, cur), DL_OK);
  for (int b = 7; b < TOTAL; b++) {
    forward(l, t, 3);
    for (int i = 0; i < 3; i++)
      memcpy(got + 12 * i, dl_cdata(t[i]), 12 * sizeof(float));
    ck_assert_msg(memcmp(got, ref[b], sizeof got) == 0, "batch %d differs after resume", b);
  }
  ck_assert_float_eq(ref[8][24], 0); /* the wrap-around restarts the streams: cont 0 */
  ck_assert_int_eq(l->ops->set_cursor(l, (int64_t[]){0, 8, 8, 0}), DL_EDATA);
  ck_assert_int_eq(l->ops->set_cursor(l, (int64_t[]){0, 1, 9, 0}), DL_EDATA);
  dl_layer_free(l);
  for (int i = 0; i < 3; i++)
    dl_blob_free(t[i]);
  free(ids);
  dl_test_rmdir(dir);
}
END_TEST

/* ---- the vocabulary ------------------------------------------------------------- */

START_TEST(vocab_ranking) {
  dl_words w = {0};
  const char *text = "b a c <unk> b d a\n a b d <unk>";
  const char *pos = text, *tok;
  size_t n;
  int line = 1;
  while ((tok = dl_next_token(&pos, &n, &line)))
    ck_assert_int_ge(dl_words_add(&w, tok, n, line), 0);
  ck_assert_int_eq(line, 2);
  ck_assert_int_eq(w.n, 5);
  ck_assert_int_eq(dl_words_find(&w, "d", 1), 4);
  ck_assert_int_eq(dl_words_find(&w, "e", 1), -1);
  ck_assert_int_eq(w.counts[dl_words_find(&w, "a", 1)], 3);
  int order[5];
  /* a and b 3 times (a first by name), d twice, c once; <unk> is left out. */
  const char *want[4] = {"a", "b", "d", "c"};
  ck_assert_int_eq(dl_words_ranked(&w, 1, 0, order), 4);
  for (int i = 0; i < 4; i++)
    ck_assert_str_eq(w.words[order[i]], want[i]);
  ck_assert_int_eq(dl_words_ranked(&w, 2, 0, order), 3);
  ck_assert_int_eq(dl_words_ranked(&w, 1, 3, order), 2); /* 3 lines with <unk> */
  ck_assert_str_eq(w.words[order[1]], "b");
  dl_words_free(&w);

  /* Many words: the table grows and keeps every id. */
  char word[16];
  for (int i = 0; i < 5000; i++) {
    snprintf(word, sizeof word, "w%d", i);
    ck_assert_int_eq(dl_words_add(&w, word, strlen(word), 1), i);
  }
  for (int i = 0; i < 5000; i += 7) {
    snprintf(word, sizeof word, "w%d", i);
    ck_assert_int_eq(dl_words_find(&w, word, strlen(word)), i);
  }
  dl_words_free(&w);
}
END_TEST

static const char *bin(void) { return dl_test_bin(); }

/* Runs `dltrain ARGS`; stdout (only) into out; returns the exit code. */
static int run_stdout(const char *args, char *out, size_t n) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s", bin(), args);
  return dl_test_run(cmd, 0, out, n);
}

START_TEST(vocab_command) {
  if (!bin()) {
    printf("SKIP vocab_command: DLTRAIN_BIN not set (run through `make test`)\n");
    return;
  }
  char dir[64], args[600], out[4096];
  dl_test_tmpdir(dir, sizeof dir);
  char *a = dl_test_write(dir, "a.txt", "the cat sat on the mat\r\n");
  char *b = dl_test_write(dir, "b.txt", "the dog sat . <unk> zebra\n");
  snprintf(args, sizeof args, "vocab %s %s", a, b);
  ck_assert_int_eq(run_stdout(args, out, sizeof out), 0);
  ck_assert_str_eq(out, "<unk>\nthe\nsat\n.\ncat\ndog\nmat\non\nzebra\n");
  snprintf(args, sizeof args, "vocab %s %s --min-count 2", a, b);
  ck_assert_int_eq(run_stdout(args, out, sizeof out), 0);
  ck_assert_str_eq(out, "<unk>\nthe\nsat\n");
  snprintf(args, sizeof args, "vocab --max-size 4 %s %s", a, b);
  ck_assert_int_eq(run_stdout(args, out, sizeof out), 0);
  ck_assert_str_eq(out, "<unk>\nthe\nsat\n.\n");

  /* What it writes is a vocab TokenData takes. */
  char *vocab = dl_test_write(dir, "vocab.txt", out);
  char extra[600];
  snprintf(extra, sizeof extra, "vocab: '%s', batch_size: 1, seq_len: 5", vocab);
  dl_blob *t = dl_blob_new("data");
  dl_layer *l = must_build(token_yaml(a, extra), &t, 1);
  forward(l, &t, 1);
  dl_check_close(dl_cdata(t), (const float[]){1, 0, 2, 0, 1}, 5, 0, "ids");
  dl_layer_free(l);
  dl_blob_free(t);

  ck_assert_int_eq(run_stdout("vocab", out, sizeof out), 2);
  snprintf(args, sizeof args, "vocab %s --min-count x", a);
  ck_assert_int_eq(run_stdout(args, out, sizeof out), 2);
  snprintf(args, sizeof args, "vocab %s/none.txt", dir);
  ck_assert_int_eq(run_stdout(args, out, sizeof out), 4);
  ck_assert_int_eq(run_stdout("vocab --help", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "--min-count"));
  ck_assert_int_eq(run_stdout("--help", out, sizeof out), 0); /* listed with the commands */
  ck_assert_ptr_nonnull(strstr(out, "\n  vocab "));
  ck_assert_ptr_nonnull(strstr(out, "\n  convert "));
  free(a), free(b), free(vocab);
  dl_test_rmdir(dir);
}
END_TEST

Suite *suite_token_data(void) {
  Suite *s = suite_create("token_data");
  TCase *tc = tcase_create("token_data");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, token_streams_targets_and_cont);
  tcase_add_test(tc, token_words_through_the_vocab);
  tcase_add_test(tc, token_errors_name_file_and_line);
  tcase_add_test(tc, token_resume_is_exact);
  tcase_add_test(tc, vocab_ranking);
  tcase_add_test(tc, vocab_command);
  suite_add_tcase(s, tc);
  return s;
}
