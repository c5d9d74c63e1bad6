/* A numeric CSV table read whole into memory (gzip or raw): every field must be a
 * finite number, every row the same number of fields. Empty lines are skipped,
 * CRLF line ends and a UTF-8 byte-order mark are accepted, a field may be
 * wrapped in double quotes. Like io/idx.h, it records no diagnostics: the
 * message (file:line:column, what was found) goes to err. */
#ifndef DL_CSV_H
#define DL_CSV_H

#include <stddef.h>

#include "core/status.h"

typedef struct {
  int rows, cols;
  float *values; /* (rows, cols) */
} dl_csv;

/* header: skip the first non-empty line. Errors: DL_EDATA, DL_ENOMEM. */
dl_status dl_csv_read(const char *path, char delimiter, int header, dl_csv *out, char *err,
                      size_t errlen);
void dl_csv_free(dl_csv *c);

#endif
