/* The idx format of MNIST and Fashion-MNIST (big-endian magic 0x000008NN: unsigned
 * bytes, NN dimensions; then NN big-endian uint32 sizes; then the bytes), read
 * whole into memory, gzip or raw. Also the whole-file reader the CSV reader uses.
 * These functions record no diagnostics: they return a status and write the
 * message (which names the file) to err, so a layer can report it at its own
 * location and a worker thread could call them too. */
#ifndef DL_IDX_H
#define DL_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DL_IDX_IMAGES 0x00000803u /* unsigned bytes, 3 dims: count x rows x cols */
#define DL_IDX_LABELS 0x00000801u /* unsigned bytes, 1 dim: count */

typedef struct {
  uint32_t magic;
  int ndim;
  uint32_t dims[3];    /* dims[0] is the item count */
  size_t count;        /* product of dims: bytes of data */
  uint8_t *file;       /* the whole decompressed file */
  const uint8_t *data; /* (dims[0], dims[1], ...) unsigned bytes, inside file */
} dl_idx;

/* Reads an idx file whose magic must be `magic` (DL_IDX_IMAGES or DL_IDX_LABELS),
 * checking that the size matches the header exactly. Errors: DL_EDATA (missing,
 * unreadable, bad magic, truncated, trailing bytes), DL_ENOMEM. */
dl_status dl_idx_read(const char *path, uint32_t magic, dl_idx *out, char *err, size_t errlen);
void dl_idx_free(dl_idx *x);

/* Reads a whole file into a malloc'ed buffer (one spare byte at the end, set to 0),
 * decompressing gzip transparently; a file that decompresses to more than
 * `limit` bytes is an error. */
dl_status dl_read_file(const char *path, size_t limit, uint8_t **out, size_t *len, char *err,
                       size_t errlen);

#endif
