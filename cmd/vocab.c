/* dltrain vocab TEXT... [--min-count N] [--max-size N]: the vocabulary file
 * TokenData reads, written to stdout: <unk> first, then the words by
 * descending count, ties by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "io/idx.h"
#include "io/vocab.h"

#define TEXT_MAX_BYTES ((size_t)4 << 30)

static void vocab_usage(FILE *f) {
  fprintf(f,
          "usage: dltrain vocab TEXT... [--min-count N] [--max-size N] > vocab.txt\n\n"
          "Counts the whitespace-separated words of the TEXT files (gzip or raw) and writes a\n"
          "vocabulary for TokenData: '<unk>' first, then the words by descending count (ties in\n"
          "byte order), one per line; a word's id is its line number minus one.\n\n"
          "options:\n"
          "  --min-count N  leave out words seen fewer than N times (default 1)\n"
          "  --max-size N   write at most N lines, '<unk>' included (default: no limit)\n");
}

/* Adds every token of one file to the counts. */
static int count_file(const char *path, dl_words *w, int64_t *tokens) {
  char err[600];
  uint8_t *text;
  size_t len;
  dl_status st = dl_read_file(path, TEXT_MAX_BYTES, &text, &len, err, sizeof err);
  if (st) {
    fprintf(stderr, "dltrain vocab: %s\n", err);
    return st;
  }
  const char *pos = (const char *)text, *tok;
  size_t n;
  int line = 1;
  while ((tok = dl_next_token(&pos, &n, &line))) {
    if (dl_words_add(w, tok, n, line) < 0) {
      fprintf(stderr, "dltrain vocab: out of memory counting the words of '%s'\n", path);
      st = DL_ENOMEM;
      break;
    }
    ++*tokens;
  }
  free(text);
  return st;
}

/* Writes the vocabulary; a summary goes to stderr. */
static int write_vocab(const dl_words *w, int64_t tokens, int64_t min_count, int64_t max_size) {
  int *order = malloc(((size_t)w->n + 1) * sizeof *order);
  if (!order) {
    fprintf(stderr, "dltrain vocab: out of memory\n");
    return DL_ENOMEM;
  }
  int k = dl_words_ranked(w, min_count, max_size, order);
  int64_t covered = 0;
  printf("%s\n", DL_UNK);
  for (int i = 0; i < k; i++) {
    printf("%s\n", w->words[order[i]]);
    covered += w->counts[order[i]];
  }
  free(order);
  if (fflush(stdout) || ferror(stdout)) {
    fprintf(stderr, "dltrain vocab: cannot write the vocabulary to stdout\n");
    return DL_EIO;
  }
  fprintf(stderr,
          "vocab: %lld tokens, %d distinct words; wrote %d lines; %.2f%% of the tokens "
          "become %s\n",
          (long long)tokens, w->n, k + 1,
          tokens ? 100.0 * (double)(tokens - covered) / (double)tokens : 0.0, DL_UNK);
  return 0;
}

int cmd_vocab(int argc, char **argv) {
  int64_t min_count = 1, max_size = 0;
  int nfiles = 0;
  const char **files = calloc((size_t)argc, sizeof *files);
  if (!files) return DL_ENOMEM;
  int rc = 0;
  for (int i = 1; i < argc && !rc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      vocab_usage(stdout);
      free(files);
      return 0;
    } else if (!strcmp(a, "--min-count")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, INT64_MAX, &min_count))
        rc = DL_EUSAGE;
    } else if (!strcmp(a, "--max-size")) {
      if (!cmd_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 1 << 24, &max_size)) rc = DL_EUSAGE;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "dltrain vocab: unknown option '%s'\n\n", a);
      vocab_usage(stderr);
      rc = DL_EUSAGE;
    } else {
      files[nfiles++] = a;
    }
  }
  if (!rc && nfiles == 0) {
    vocab_usage(stderr);
    rc = DL_EUSAGE;
  }
  dl_words w = {0};
  int64_t tokens = 0;
  for (int i = 0; i < nfiles && !rc; i++)
    rc = count_file(files[i], &w, &tokens);
  if (!rc) rc = write_vocab(&w, tokens, min_count, max_size);
  dl_words_free(&w);
  free(files);
  return rc;
}
