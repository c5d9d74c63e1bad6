/* Snapshot files: one self-contained file per snapshot.
 *   header (32 bytes, little-endian): "DLSNAP01" magic, u32 format version,
 *   u32 kind (0 full training state, 1 weights only), u64 payload bytes,
 *   u32 CRC-32 of the payload, u32 CRC-32 of the compressed bytes; then the
 *   zlib-compressed payload.
 * The payload is a sequence of records built with dl_sbuf and read back with
 * dl_sreader, which checks every length against what is left. Files are
 * written to "<path>.tmp", fsync'd, renamed over <path>, and the directory is
 * fsync'd, so a crash leaves either the old file or the new one. */
#ifndef DL_SNAPSHOT_H
#define DL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Version 2 added the carried state of recurrent layers after the data
 * cursors; version 1 files (without it) are still read. */
#define DL_SNAP_VERSION     2
#define DL_SNAP_VERSION_MIN 1
enum { DL_SNAP_FULL = 0, DL_SNAP_WEIGHTS = 1 };

typedef struct {
  unsigned char *p;
  size_t n, cap;
  int failed;
} dl_sbuf;

void dl_sbuf_u32(dl_sbuf *b, uint32_t v);
void dl_sbuf_u64(dl_sbuf *b, uint64_t v);
void dl_sbuf_f64(dl_sbuf *b, double v);
void dl_sbuf_str(dl_sbuf *b, const char *s);
void dl_sbuf_floats(dl_sbuf *b, const float *x, size_t n);
void dl_sbuf_free(dl_sbuf *b);

typedef struct {
  const unsigned char *p;
  size_t n, off;
  const char *file;
  int failed;
} dl_sreader;

uint32_t dl_sread_u32(dl_sreader *r);
uint64_t dl_sread_u64(dl_sreader *r);
double dl_sread_f64(dl_sreader *r);
/* Returns a pointer into the payload and its length (not NUL-terminated). */
const char *dl_sread_str(dl_sreader *r, uint32_t *len);
/* Points at n floats in the payload (copy them out with memcpy). */
const unsigned char *dl_sread_floats(dl_sreader *r, size_t n);

/* Compresses and writes atomically. */
dl_status dl_snapshot_write_file(const char *path, uint32_t kind, const dl_sbuf *payload);
/* Reads, checks magic/version/sizes/CRCs, inflates. *payload is malloc'd;
 * *version gets the file's format version (DL_SNAP_VERSION_MIN..DL_SNAP_VERSION). */
dl_status dl_snapshot_read_file(const char *path, uint32_t *kind, uint32_t *version,
                                unsigned char **payload, size_t *len);

#endif
