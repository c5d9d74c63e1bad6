/* Words for language models: a hash table from words to ids (with counts), the
 * whitespace tokenizer, vocabulary files (one word per line, the id is the
 * line's rank among the non-blank lines) and the ranking `dltrain vocab` writes.
 * Like io/idx.h, errors go to err with the file (and line) named. */
#ifndef DL_VOCAB_H
#define DL_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DL_UNK "<unk>"

typedef struct {
  char **words;    /* (n) by id */
  int64_t *counts; /* (n) how often dl_words_add saw each word */
  int *lines;      /* (n) line of first appearance (vocabulary files) */
  int n, cap;
  int *slots;  /* open addressing: id + 1, or 0 for empty */
  size_t mask; /* slots has mask + 1 entries, a power of two */
} dl_words;

void dl_words_free(dl_words *w);
/* The id of the word s[0..len), or -1. */
int dl_words_find(const dl_words *w, const char *s, size_t len);
/* Adds one occurrence (a new word gets the next id); the id, or -1 when out
 * of memory. */
int dl_words_add(dl_words *w, const char *s, size_t len, int line);

/* The next whitespace-separated token at or after *pos (NUL-terminated text);
 * NULL at the end. *line counts the newlines passed (start it at 1). */
const char *dl_next_token(const char **pos, size_t *len, int *line);

/* Reads a vocabulary file (gzip or raw). Errors: DL_EDATA for a line holding
 * two words or a word seen before (naming file:line), DL_ENOMEM. */
dl_status dl_vocab_read(const char *path, dl_words *w, char *err, size_t errlen);

/* The ids to write after <unk>: words seen at least min_count times, by
 * descending count, ties by name (byte order), at most max_size - 1 of them
 * (max_size 0: no limit); a `<unk>` in the text is left out (it comes first
 * anyway). Returns how many ids were written to out (w->n entries). */
int dl_words_ranked(const dl_words *w, int64_t min_count, int64_t max_size, int *out);

#endif
