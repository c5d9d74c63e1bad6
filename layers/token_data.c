/* TokenData: a token stream for language models, cut into batch_size parallel
 * streams (stream i starts at token i * (ntokens / N), the classic PTB
 * batching) and handed out seq_len steps at a time, time-major as Caffe's
 * recurrent layers expect. The corpus is read whole at setup; a batch is a few
 * copies, so no prefetch thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "io/idx.h"
#include "io/prefetch.h"
#include "io/vocab.h"

#define CORPUS_MAX_BYTES ((size_t)4 << 30)
#define MAX_ID           (1 << 24) /* ids travel as float32, exact below 2^24 */

enum { FORMAT_TEXT, FORMAT_IDS };
static const char *const format_names[] = {"text", "ids", NULL};

typedef struct {
  char source[DL_STR_MAX];
  int format;
  char vocab[DL_STR_MAX];
  int vocab_size;
  int batch_size;
  int seq_len;
} token_param;

static const dl_param_spec token_schema[] = {
    DL_P_STRING(token_param, source, NULL,
                "the corpus (gzip or raw), relative to the net file: words separated by "
                "whitespace (format: text) or token ids (format: ids)",
                "(none: Caffe's LSTM examples feed HDF5)"),
    DL_P_ENUM(token_param, format, "text", format_names,
              "text: words looked up in vocab (unknown ones become <unk>); ids: non-negative "
              "integers separated by whitespace",
              "(none)"),
    DL_P_STRING(token_param, vocab, "",
                "vocabulary file, one word per line, id = line rank (required for text; must "
                "hold <unk>); see dltrain vocab",
                "(none)"),
    DL_P_INT(token_param, vocab_size, "0", 0, MAX_ID,
             "ids: every id must be below this (0: the vocab's size, or no check without one)",
             "(none)"),
    DL_P_INT(token_param, batch_size, NULL, 1, 1 << 20,
             "N: parallel streams, each a contiguous slice of the corpus", "(none)"),
    DL_P_INT(token_param, seq_len, NULL, 1, 1 << 20,
             "T: time steps per batch (truncated backpropagation through time)", "(none)"),
    DL_SPEC_END};

typedef struct {
  int *tokens; /* (ntokens) ids */
  int64_t ntokens;
  int64_t stream_len; /* L = ntokens / N: tokens per stream */
  int64_t batches;    /* per epoch: (L - 1) / T, the last input needs a target */
  int n, t;           /* streams, steps */
  int64_t cursor[4];  /* the next batch: {epoch, batch in the epoch, batches, 0} */
} token_priv;

static dl_status push(token_priv *p, int64_t *cap, int id) {
  if (p->ntokens == *cap) {
    int64_t grown = *cap ? 2 * *cap : 1 << 16;
    int *bigger = realloc(p->tokens, (size_t)grown * sizeof *bigger);
    if (!bigger) return dl_error(DL_ENOMEM, "out of memory reading the corpus");
    p->tokens = bigger, *cap = grown;
  }
  p->tokens[p->ntokens++] = id;
  return DL_OK;
}

/* format: text: every whitespace-separated word through the vocabulary. */
static dl_status read_words(dl_layer *l, token_priv *p, const char *text, const dl_words *vocab,
                            const char *vocab_path) {
  int unk = dl_words_find(vocab, DL_UNK, strlen(DL_UNK));
  if (unk < 0)
    return dl_layer_error(l, DL_EDATA,
                          "vocab '%s' has no '%s' line (unknown words map to it; dltrain vocab "
                          "writes it first)",
                          vocab_path, DL_UNK);
  int line = 1;
  int64_t cap = 0;
  size_t len;
  for (const char *tok; (tok = dl_next_token(&text, &len, &line));) {
    int id = dl_words_find(vocab, tok, len);
    dl_status st = push(p, &cap, id < 0 ? unk : id);
    if (st) return st;
  }
  return DL_OK;
}

/* format: ids: decimal integers, each below vocab_size when that is known. */
static dl_status read_ids(dl_layer *l, token_priv *p, const char *text, const char *path,
                          int vocab_size) {
  int line = 1;
  int64_t cap = 0;
  size_t len;
  for (const char *tok; (tok = dl_next_token(&text, &len, &line));) {
    char *end;
    errno = 0;
    long v = strtol(tok, &end, 10);
    if (end != tok + len || errno || v < 0 || v >= MAX_ID)
      return dl_layer_error(l, DL_EDATA, "%s:%d: '%.*s' is not a token id (an integer in [0, %d))",
                            path, line, (int)len > 40 ? 40 : (int)len, tok, MAX_ID);
    if (vocab_size > 0 && v >= vocab_size)
      return dl_layer_error(l, DL_EDATA, "%s:%d: token id %ld is not below the vocabulary size %d",
                            path, line, v, vocab_size);
    dl_status st = push(p, &cap, (int)v);
    if (st) return st;
  }
  return DL_OK;
}

/* The vocabulary file, when given (required for text). */
static dl_status read_vocab(dl_layer *l, dl_words *vocab, char *path, size_t pathlen) {
  const token_param *prm = l->param;
  path[0] = 0;
  if (!prm->vocab[0])
    return prm->format == FORMAT_TEXT
               ? dl_layer_error(l, DL_ECONFIG, "format: text needs a vocab file (dltrain vocab)")
               : DL_OK;
  char err[600];
  dl_status st = dl_data_path(l, "vocab", prm->vocab, path, pathlen);
  if (!st && (st = dl_vocab_read(path, vocab, err, sizeof err)))
    return dl_layer_error(l, st, "vocab: %s", err);
  if (!st && vocab->n > MAX_ID)
    return dl_layer_error(l, DL_EDATA, "vocab '%s' holds %d words; at most %d are supported", path,
                          vocab->n, MAX_ID);
  if (!st && prm->vocab_size && prm->vocab_size != vocab->n)
    return dl_layer_error(l, DL_ECONFIG, "vocab_size is %d but '%s' holds %d words",
                          prm->vocab_size, path, vocab->n);
  return st;
}

static dl_status read_corpus(dl_layer *l, token_priv *p) {
  const token_param *prm = l->param;
  char path[4096], vpath[4096], err[600];
  dl_words vocab = {0};
  dl_status st = read_vocab(l, &vocab, vpath, sizeof vpath);
  if (!st) st = dl_data_path(l, "source", prm->source, path, sizeof path);
  uint8_t *text = NULL;
  size_t len;
  if (!st && (st = dl_read_file(path, CORPUS_MAX_BYTES, &text, &len, err, sizeof err)))
    st = dl_layer_error(l, st, "source: %s", err);
  if (!st && prm->format == FORMAT_TEXT) st = read_words(l, p, (char *)text, &vocab, vpath);
  if (!st && prm->format == FORMAT_IDS)
    st = read_ids(l, p, (char *)text, path, prm->vocab_size ? prm->vocab_size : vocab.n);
  free(text);
  dl_words_free(&vocab);
  if (st) return st;
  p->stream_len = p->ntokens / p->n;
  p->batches = (p->stream_len - 1) / p->t;
  if (p->batches < 1)
    return dl_layer_error(l, DL_EDATA,
                          "'%s' holds %lld tokens, too few for %d streams of seq_len %d plus one "
                          "target (at least %lld tokens)",
                          path, (long long)p->ntokens, p->n, p->t, (long long)p->n * (p->t + 1));
  return DL_OK;
}

static void token_destroy(dl_layer *l) {
  token_priv *p = l->priv;
  if (!p) return;
  free(p->tokens);
  free(p);
  l->priv = NULL;
}

static dl_status token_setup(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                             int nt) {
  (void)bottom, (void)nb, (void)top, (void)nt;
  const token_param *prm = l->param;
  token_priv *p = dl_calloc(1, sizeof *p);
  if (!p) return DL_ENOMEM;
  l->priv = p;
  p->n = prm->batch_size;
  p->t = prm->seq_len;
  dl_status st = read_corpus(l, p);
  if (st) return st;
  dl_cursor_init(p->cursor, p->batches);
  return DL_OK;
}

static dl_status token_reshape(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  const token_priv *p = l->priv;
  dl_status st = DL_OK;
  for (int i = 0; i < nt && !st; i++)
    st = dl_blob_reshape(top[i], 2, (int[]){p->t, p->n});
  return st;
}

/* data[t][i] is token b*T + t of stream i, target[t][i] the token after it;
 * cont[t][i] is 0 only where a stream starts over (the first step of an
 * epoch), so a recurrent layer carries its state across batches. */
static dl_status token_forward(dl_layer *l, dl_blob *const *bottom, int nb, dl_blob *const *top,
                               int nt) {
  (void)bottom, (void)nb;
  token_priv *p = l->priv;
  int64_t b = p->cursor[1];
  float *data = dl_data(top[0]);                   /* (T, N) */
  float *target = nt > 1 ? dl_data(top[1]) : NULL; /* (T, N) */
  float *cont = nt > 2 ? dl_data(top[2]) : NULL;   /* (T, N) */
  for (int t = 0; t < p->t; t++)
    for (int i = 0; i < p->n; i++) {
      int64_t k = i * p->stream_len + b * p->t + t;
      size_t o = (size_t)t * p->n + i;
      data[o] = (float)p->tokens[k];
      if (target) target[o] = (float)p->tokens[k + 1];
      if (cont) cont[o] = b == 0 && t == 0 ? 0.0f : 1.0f;
    }
  dl_cursor_advance(p->cursor, p->batches, 1);
  return DL_OK;
}

static void token_get_cursor(dl_layer *l, int64_t cursor[4]) {
  const token_priv *p = l->priv;
  memcpy(cursor, p->cursor, sizeof p->cursor);
}

static dl_status token_set_cursor(dl_layer *l, const int64_t cursor[4]) {
  token_priv *p = l->priv;
  dl_status st = dl_cursor_check(l, cursor, p->batches);
  if (st) return st;
  p->cursor[0] = cursor[0];
  p->cursor[1] = cursor[1];
  return DL_OK;
}

const dl_layer_ops dl_layer_token_data = {
    .type = "TokenData",
    .summary = "a text corpus as N parallel token streams, T steps per batch, for language models",
    .schema = token_schema,
    .param_size = sizeof(token_param),
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 3,
    .bottoms_doc = "none",
    .tops_doc = "data: T x N token ids; target: T x N (the next token); cont: T x N (0 where a "
                "stream starts over, else 1)",
    .flags = DL_LAYER_DATA,
    .setup = token_setup,
    .reshape = token_reshape,
    .forward = token_forward,
    .destroy = token_destroy,
    .get_cursor = token_get_cursor,
    .set_cursor = token_set_cursor,
};
