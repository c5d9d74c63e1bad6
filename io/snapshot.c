/* Snapshot file format and atomic writing (see io/snapshot.h). */
#include "io/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char magic[8] = {'D', 'L', 'S', 'N', 'A', 'P', '0', '1'};
#define HEADER_BYTES 32
#define MAX_PAYLOAD ((uint64_t)64 << 30)

static void grow(dl_sbuf *b, size_t extra) {
  if (b->failed || b->n + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->n + extra) cap *= 2;
  unsigned char *p = realloc(b->p, cap);
  if (!p) {
    b->failed = 1;
    return;
  }
  b->p = p;
  b->cap = cap;
}

static void put(dl_sbuf *b, const void *x, size_t n) {
  grow(b, n);
  if (b->failed) return;
  memcpy(b->p + b->n, x, n);
  b->n += n;
}

/* x86-64 and aarch64 are little-endian; the format is defined as such. */
void dl_sbuf_u32(dl_sbuf *b, uint32_t v) { put(b, &v, 4); }
void dl_sbuf_u64(dl_sbuf *b, uint64_t v) { put(b, &v, 8); }
void dl_sbuf_f64(dl_sbuf *b, double v) { put(b, &v, 8); }
void dl_sbuf_str(dl_sbuf *b, const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  dl_sbuf_u32(b, n);
  put(b, s, n);
}
void dl_sbuf_floats(dl_sbuf *b, const float *x, size_t n) { put(b, x, n * sizeof(float)); }
void dl_sbuf_free(dl_sbuf *b) {
  free(b->p);
  *b = (dl_sbuf){0};
}

static const unsigned char *take(dl_sreader *r, size_t n) {
  if (r->failed || n > r->n - r->off) {
    r->failed = 1;
    return NULL;
  }
  const unsigned char *p = r->p + r->off;
  r->off += n;
  return p;
}

uint32_t dl_sread_u32(dl_sreader *r) {
  uint32_t v = 0;
  const unsigned char *p = take(r, 4);
  if (p) memcpy(&v, p, 4);
  return v;
}
uint64_t dl_sread_u64(dl_sreader *r) {
  uint64_t v = 0;
  const unsigned char *p = take(r, 8);
  if (p) memcpy(&v, p, 8);
  return v;
}
double dl_sread_f64(dl_sreader *r) {
  double v = 0;
  const unsigned char *p = take(r, 8);
  if (p) memcpy(&v, p, 8);
  return v;
}
const char *dl_sread_str(dl_sreader *r, uint32_t *len) {
  *len = dl_sread_u32(r);
  const unsigned char *p = take(r, *len);
  if (!p) *len = 0;
  return (const char *)p;
}
const unsigned char *dl_sread_floats(dl_sreader *r, size_t n) {
  if (n > SIZE_MAX / sizeof(float)) {
    r->failed = 1;
    return NULL;
  }
  return take(r, n * sizeof(float));
}

static dl_status write_all(int fd, const void *p, size_t n, const char *path) {
  const unsigned char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return dl_error(DL_EIO, "%s: write failed: %s", path, strerror(errno));
    c += w;
    n -= (size_t)w;
  }
  return DL_OK;
}

static void fsync_dir_of(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(copy);
}

dl_status dl_snapshot_write_file(const char *path, uint32_t kind, const dl_sbuf *payload) {
  if (payload->failed) return dl_error(DL_ENOMEM, "out of memory building snapshot %s", path);
  uLong bound = compressBound((uLong)payload->n);
  unsigned char *z = malloc(bound ? bound : 1);
  if (!z) return dl_error(DL_ENOMEM, "out of memory compressing snapshot %s", path);
  uLongf zlen = bound;
  /* Level 1: float weights barely compress; speed matters more. */
  if (compress2(z, &zlen, payload->p, (uLong)payload->n, 1) != Z_OK) {
    free(z);
    return dl_error(DL_EIO, "%s: compression failed", path);
  }
  unsigned char header[HEADER_BYTES] = {0};
  uint32_t version = DL_SNAP_VERSION, crc_raw = (uint32_t)crc32_z(0, payload->p, payload->n),
           crc_z = (uint32_t)crc32_z(0, z, zlen);
  uint64_t raw_len = payload->n;
  memcpy(header, magic, 8);
  memcpy(header + 8, &version, 4);
  memcpy(header + 12, &kind, 4);
  memcpy(header + 16, &raw_len, 8);
  memcpy(header + 24, &crc_raw, 4);
  memcpy(header + 28, &crc_z, 4);

  size_t tl = strlen(path) + 8;
  char *tmp = malloc(tl);
  if (!tmp) {
    free(z);
    return dl_error(DL_ENOMEM, "out of memory");
  }
  snprintf(tmp, tl, "%s.tmp", path);
  dl_status st = DL_OK;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    st = dl_error(DL_EIO, "cannot write snapshot %s: %s", tmp, strerror(errno));
  } else {
    st = write_all(fd, header, sizeof header, tmp);
    if (!st) st = write_all(fd, z, zlen, tmp);
    if (!st && fsync(fd) != 0) st = dl_error(DL_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !st) st = dl_error(DL_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
      st = dl_error(DL_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st)
      unlink(tmp);
    else
      fsync_dir_of(path);
  }
  free(tmp);
  free(z);
  return st;
}

dl_status dl_snapshot_read_file(const char *path, uint32_t *kind, uint32_t *version_out,
                                unsigned char **payload, size_t *len) {
  *payload = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return dl_error(DL_EIO, "%s: cannot open snapshot: %s", path, strerror(errno));
  struct stat sb;
  unsigned char header[HEADER_BYTES];
  dl_status st = DL_OK;
  unsigned char *z = NULL, *raw = NULL;
  if (fstat(fileno(f), &sb) != 0 || sb.st_size < HEADER_BYTES ||
      fread(header, 1, HEADER_BYTES, f) != HEADER_BYTES) {
    st = dl_error(DL_EIO, "%s: not a dltrain snapshot (file too short: %lld bytes)", path,
                  (long long)sb.st_size);
    goto out;
  }
  if (memcmp(header, magic, 8) != 0) {
    st = dl_error(DL_EIO, "%s: not a dltrain snapshot (bad magic bytes)", path);
    goto out;
  }
  uint32_t version, crc_raw, crc_z;
  uint64_t raw_len;
  memcpy(&version, header + 8, 4);
  memcpy(kind, header + 12, 4);
  memcpy(&raw_len, header + 16, 8);
  memcpy(&crc_raw, header + 24, 4);
  memcpy(&crc_z, header + 28, 4);
  if (version < DL_SNAP_VERSION_MIN || version > DL_SNAP_VERSION) {
    st = dl_error(DL_EIO, "%s: snapshot format version %u, this dltrain reads versions %d to %d",
                  path, version, DL_SNAP_VERSION_MIN, DL_SNAP_VERSION);
    goto out;
  }
  *version_out = version;
  if (raw_len > MAX_PAYLOAD || *kind > 1) {
    st = dl_error(DL_EIO, "%s: corrupt snapshot header", path);
    goto out;
  }
  size_t zlen = (size_t)sb.st_size - HEADER_BYTES;
  z = malloc(zlen ? zlen : 1);
  raw = malloc(raw_len ? raw_len : 1);
  if (!z || !raw) {
    st = dl_error(DL_ENOMEM, "%s: out of memory reading snapshot", path);
    goto out;
  }
  if (fread(z, 1, zlen, f) != zlen) {
    st = dl_error(DL_EIO, "%s: read error", path);
    goto out;
  }
  if ((uint32_t)crc32_z(0, z, zlen) != crc_z) {
    st = dl_error(DL_EIO, "%s: snapshot is truncated or corrupt (checksum mismatch)", path);
    goto out;
  }
  uLongf out_len = (uLongf)raw_len;
  if (uncompress(raw, &out_len, z, (uLong)zlen) != Z_OK || out_len != raw_len ||
      (uint32_t)crc32_z(0, raw, raw_len) != crc_raw) {
    st = dl_error(DL_EIO, "%s: snapshot is corrupt (cannot decompress)", path);
    goto out;
  }
  *payload = raw;
  *len = raw_len;
  raw = NULL;
out:
  fclose(f);
  free(z);
  free(raw);
  return st;
}
