/* Word tables, the tokenizer and vocabulary files (io/vocab.h). */
#include "io/vocab.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/idx.h"

#define VOCAB_MAX_BYTES ((size_t)1 << 30)

static uint64_t hash(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

void dl_words_free(dl_words *w) {
  for (int i = 0; i < w->n; i++)
    free(w->words[i]);
  free(w->words);
  free(w->counts);
  free(w->lines);
  free(w->slots);
  memset(w, 0, sizeof *w);
}

/* The slot holding s, or the empty slot where it would go. */
static size_t probe(const dl_words *w, const char *s, size_t len) {
  size_t i = hash(s, len) & w->mask;
  for (;; i = (i + 1) & w->mask) {
    int id = w->slots[i] - 1;
    if (id < 0 || (strncmp(w->words[id], s, len) == 0 && w->words[id][len] == 0)) return i;
  }
}

int dl_words_find(const dl_words *w, const char *s, size_t len) {
  return w->slots ? w->slots[probe(w, s, len)] - 1 : -1;
}

/* Doubles the slots (kept at most half full) and the per-word arrays. */
static int grow(dl_words *w) {
  int cap = w->cap ? 2 * w->cap : 1024;
  char **words = realloc(w->words, (size_t)cap * sizeof *words);
  if (words) w->words = words;
  int64_t *counts = realloc(w->counts, (size_t)cap * sizeof *counts);
  if (counts) w->counts = counts;
  int *lines = realloc(w->lines, (size_t)cap * sizeof *lines);
  if (lines) w->lines = lines;
  int *slots = calloc(2 * (size_t)cap, sizeof *slots);
  if (!words || !counts || !lines || !slots) {
    free(slots);
    return -1;
  }
  free(w->slots);
  w->slots = slots;
  w->mask = 2 * (size_t)cap - 1;
  w->cap = cap;
  for (int id = 0; id < w->n; id++)
    w->slots[probe(w, w->words[id], strlen(w->words[id]))] = id + 1;
  return 0;
}

int dl_words_add(dl_words *w, const char *s, size_t len, int line) {
  int id = dl_words_find(w, s, len);
  if (id >= 0) {
    w->counts[id]++;
    return id;
  }
  if (w->n == w->cap && (w->n >= (1 << 30) || grow(w))) return -1;
  char *copy = malloc(len + 1);
  if (!copy) return -1;
  memcpy(copy, s, len);
  copy[len] = 0;
  id = w->n++;
  w->words[id] = copy;
  w->counts[id] = 1;
  w->lines[id] = line;
  w->slots[probe(w, s, len)] = id + 1;
  return id;
}

const char *dl_next_token(const char **pos, size_t *len, int *line) {
  const char *s = *pos;
  while (*s && isspace((unsigned char)*s))
    if (*s++ == '\n') ++*line;
  if (!*s) return *pos = s, NULL;
  const char *start = s;
  while (*s && !isspace((unsigned char)*s))
    s++;
  *len = (size_t)(s - start);
  *pos = s;
  return start;
}

dl_status dl_vocab_read(const char *path, dl_words *w, char *err, size_t errlen) {
  uint8_t *text;
  size_t len;
  dl_status st = dl_read_file(path, VOCAB_MAX_BYTES, &text, &len, err, errlen);
  if (st) return st;
  int line = 1, prev_line = 0;
  const char *pos = (const char *)text, *tok;
  size_t n;
  while ((tok = dl_next_token(&pos, &n, &line))) {
    if (line == prev_line) {
      snprintf(err, errlen, "%s:%d: more than one word on the line (one word per line)", path,
               line);
      st = DL_EDATA;
      break;
    }
    prev_line = line;
    int seen = dl_words_find(w, tok, n);
    if (seen >= 0) {
      snprintf(err, errlen, "%s:%d: '%.*s' is already on line %d", path, line, (int)n, tok,
               w->lines[seen]);
      st = DL_EDATA;
      break;
    }
    if (dl_words_add(w, tok, n, line) < 0) {
      snprintf(err, errlen, "cannot read '%s': out of memory", path);
      st = DL_ENOMEM;
      break;
    }
  }
  free(text);
  return st;
}

static int by_count_then_name(const void *a, const void *b, void *words) {
  const dl_words *w = words;
  int x = *(const int *)a, y = *(const int *)b;
  if (w->counts[x] != w->counts[y]) return w->counts[x] > w->counts[y] ? -1 : 1;
  return strcmp(w->words[x], w->words[y]);
}

int dl_words_ranked(const dl_words *w, int64_t min_count, int64_t max_size, int *out) {
  int k = 0;
  for (int id = 0; id < w->n; id++)
    if (w->counts[id] >= min_count && strcmp(w->words[id], DL_UNK) != 0) out[k++] = id;
  qsort_r(out, (size_t)k, sizeof *out, by_count_then_name, (void *)w);
  if (max_size > 0 && k > max_size - 1) k = (int)(max_size - 1);
  return k;
}
