/* CSV reader (io/csv.h). */
#include "io/csv.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/idx.h"

#define CSV_MAX_BYTES ((size_t)4 << 30)

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Appends one value, doubling the array when full. */
static int push(dl_csv *c, size_t *n, size_t *cap, float v) {
  if (*n == *cap) {
    size_t grown = *cap ? *cap * 2 : 1024;
    float *bigger = realloc(c->values, grown * sizeof *bigger);
    if (!bigger) return -1;
    c->values = bigger;
    *cap = grown;
  }
  c->values[(*n)++] = v;
  return 0;
}

dl_status dl_csv_read(const char *path, char delimiter, int header, dl_csv *out, char *err,
                      size_t errlen) {
  memset(out, 0, sizeof *out);
  uint8_t *file;
  size_t len;
  dl_status st = dl_read_file(path, CSV_MAX_BYTES, &file, &len, err, errlen);
  if (st) return st;
  char *text = (char *)file, *end = text + len;
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) text += 3;
  size_t n = 0, cap = 0;
  int line_no = 0, first_data_line = 0, skip = header;
  st = DL_EDATA;
  for (char *line = text; line < end;) {
    char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol) eol = end;
    char *next = eol < end ? eol + 1 : end;
    line_no++;
    char *stop = eol;
    if (stop > line && stop[-1] == '\r') stop--;
    *stop = 0; /* the buffer has a spare byte, so this is safe at the end too */
    char *s = line;
    while (is_blank(*s))
      s++;
    if (!*s || skip) {
      if (*s) skip = 0;
      line = next;
      continue;
    }
    if (memchr(line, 0, (size_t)(stop - line))) {
      snprintf(err, errlen, "%s:%d: a NUL byte: this is not a text file", path, line_no);
      goto fail;
    }
    int fields = 0;
    for (char *cell = line;; fields++) {
      char *cell_end = strchr(cell, delimiter);
      if (!cell_end) cell_end = stop;
      int col = (int)(cell - line) + 1;
      char *a = cell, *b = cell_end;
      while (a < b && is_blank(*a))
        a++;
      while (b > a && is_blank(b[-1]))
        b--;
      if (b - a >= 2 && *a == '"' && b[-1] == '"') a++, b--;
      char shown[48];
      int shown_len = (int)(b - a) > 40 ? 40 : (int)(b - a);
      snprintf(shown, sizeof shown, "%.*s%s", shown_len, a, b - a > 40 ? "..." : "");
      if (a == b) {
        snprintf(err, errlen, "%s:%d:%d: field %d is empty (CSVData reads numeric columns only)",
                 path, line_no, col, fields + 1);
        goto fail;
      }
      char saved = *b, *num_end;
      *b = 0;
      errno = 0;
      float v = strtof(a, &num_end);
      *b = saved;
      if (num_end != b || !isfinite(v)) {
        snprintf(err, errlen,
                 "%s:%d:%d: field %d is '%s', not a %snumber (CSVData reads "
                 "numeric columns only)",
                 path, line_no, col, fields + 1, shown, num_end == b ? "finite " : "");
        goto fail;
      }
      if (push(out, &n, &cap, v)) {
        snprintf(err, errlen, "cannot read '%s': out of memory", path);
        st = DL_ENOMEM;
        goto fail;
      }
      if (cell_end == stop) {
        fields++;
        break;
      }
      cell = cell_end + 1;
    }
    if (!out->rows) {
      out->cols = fields;
      first_data_line = line_no;
    } else if (fields != out->cols) {
      snprintf(err, errlen,
               "%s:%d: %d fields, but line %d has %d (every row needs the same "
               "columns)",
               path, line_no, fields, first_data_line, out->cols);
      goto fail;
    }
    if (out->rows == INT32_MAX) {
      snprintf(err, errlen, "'%s' has too many rows", path);
      goto fail;
    }
    out->rows++;
    line = next;
  }
  if (!out->rows) {
    snprintf(err, errlen, "'%s' has no data rows%s", path, header ? " after the header" : "");
    goto fail;
  }
  free(file);
  return DL_OK;
fail:
  free(file);
  dl_csv_free(out);
  return st;
}

void dl_csv_free(dl_csv *c) {
  free(c->values);
  memset(c, 0, sizeof *c);
}
