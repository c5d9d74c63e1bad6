/* idx reader and whole-file reader (io/idx.h). */
#include "io/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Files bigger than this are refused rather than read (the largest idx set in
 * common use, EMNIST byclass, is about 550 MB). */
#define IDX_MAX_BYTES ((size_t)4 << 30)

/* How many bytes the file will decompress to, as a first buffer size: the
 * file size for raw files, the gzip trailer's ISIZE (size mod 2^32) for gzip. */
static size_t size_hint(int fd, const struct stat *st) {
  if (!S_ISREG(st->st_mode) || st->st_size <= 0) return 1 << 16;
  unsigned char head[2], tail[4];
  if (st->st_size >= 18 && pread(fd, head, 2, 0) == 2 && head[0] == 0x1f && head[1] == 0x8b &&
      pread(fd, tail, 4, st->st_size - 4) == 4)
    return (size_t)tail[0] | (size_t)tail[1] << 8 | (size_t)tail[2] << 16 | (size_t)tail[3] << 24;
  return (size_t)st->st_size;
}

dl_status dl_read_file(const char *path, size_t limit, uint8_t **out, size_t *len, char *err,
                       size_t errlen) {
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
    return DL_EDATA;
  }
  struct stat st;
  int stat_failed = fstat(fd, &st) != 0;
  if (stat_failed || S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "cannot read '%s': %s", path,
             stat_failed ? strerror(errno) : "it is a directory");
    close(fd);
    return DL_EDATA;
  }
  size_t cap = size_hint(fd, &st);
  if (cap > limit) cap = limit;
  cap += 1; /* room to see EOF without growing, and for the terminating 0 */
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) {
    close(fd);
    snprintf(err, errlen, "cannot read '%s': out of memory", path);
    return DL_ENOMEM;
  }
  gzbuffer(gz, 1 << 17);
  uint8_t *buf = malloc(cap);
  size_t n = 0;
  dl_status status = DL_OK;
  for (;;) {
    if (!buf) {
      snprintf(err, errlen, "cannot read '%s': out of memory (%zu bytes)", path, cap);
      status = DL_ENOMEM;
      break;
    }
    if (n == cap) {
      if (cap > limit) {
        snprintf(err, errlen, "'%s' is larger than %zu bytes; refusing to read it", path, limit);
        status = DL_EDATA;
        break;
      }
      size_t grown = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
      uint8_t *bigger = realloc(buf, grown);
      if (!bigger) free(buf);
      buf = bigger;
      cap = grown;
      continue;
    }
    size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
    int got = gzread(gz, buf + n, (unsigned)want);
    if (got < 0) {
      int code;
      const char *msg = gzerror(gz, &code);
      snprintf(err, errlen, "cannot read '%s': %s", path, code == Z_ERRNO ? strerror(errno) : msg);
      status = DL_EDATA;
      break;
    }
    if (got == 0) {
      int code;
      gzerror(gz, &code);
      if (code == Z_BUF_ERROR) { /* the input ended inside a gzip stream */
        snprintf(err, errlen, "'%s': truncated: the file ends in the middle of its gzip stream",
                 path);
        status = DL_EDATA;
      }
      break;
    }
    n += (size_t)got;
  }
  gzclose(gz); /* also closes fd */
  if (status) {
    free(buf);
    return status;
  }
  if (n == cap) { /* keep the promised spare byte */
    uint8_t *bigger = realloc(buf, cap + 1);
    if (!bigger) {
      free(buf);
      snprintf(err, errlen, "cannot read '%s': out of memory", path);
      return DL_ENOMEM;
    }
    buf = bigger;
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return DL_OK;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* "60000 images of 28x28", "60000 labels". */
static void describe(const dl_idx *x, char *buf, size_t n) {
  if (x->ndim == 3)
    snprintf(buf, n, "%u images of %ux%u", x->dims[0], x->dims[1], x->dims[2]);
  else
    snprintf(buf, n, "%u labels", x->dims[0]);
}

dl_status dl_idx_read(const char *path, uint32_t magic, dl_idx *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  size_t len;
  uint8_t *file;
  dl_status st = dl_read_file(path, IDX_MAX_BYTES, &file, &len, err, errlen);
  if (st) return st;
  int ndim = (int)(magic & 0xff);
  const char *kind = magic == DL_IDX_IMAGES ? "image" : "label";
  size_t header = 4 + 4 * (size_t)ndim;
  if (len < 4) {
    snprintf(err, errlen, "'%s' holds %zu bytes, too short for an idx %s file", path, len, kind);
    goto bad;
  }
  uint32_t found = be32(file);
  if (found != magic) {
    const char *hint = "";
    if (found == DL_IDX_LABELS && magic == DL_IDX_IMAGES)
      hint = " (that is a label file: are source and label_source swapped?)";
    else if (found == DL_IDX_IMAGES && magic == DL_IDX_LABELS)
      hint = " (that is an image file: are source and label_source swapped?)";
    else if ((found & 0xffff0000u) == 0 && (found & 0xff00u) != 0x0800u)
      hint = " (an idx file of another element type; only unsigned bytes are supported)";
    snprintf(err, errlen,
             "'%s': bad magic number 0x%08x, expected 0x%08x (idx %s file, unsigned "
             "bytes, %d dims)%s",
             path, found, magic, kind, ndim, hint);
    goto bad;
  }
  if (len < header) {
    snprintf(err, errlen, "'%s': truncated: %zu bytes, less than its %zu-byte idx header", path,
             len, header);
    goto bad;
  }
  out->magic = magic;
  out->ndim = ndim;
  uint64_t count = 1;
  for (int d = 0; d < ndim; d++) {
    out->dims[d] = be32(file + 4 + 4 * d);
    /* Capped at each step, so a hostile header cannot overflow the product. */
    count *= out->dims[d];
    if (count > IDX_MAX_BYTES) count = IDX_MAX_BYTES + 1;
  }
  char what[120];
  describe(out, what, sizeof what);
  size_t have = len - header;
  if (count != have) {
    snprintf(err, errlen,
             "'%s': %sheader says %s (%llu bytes of %s) but the file holds %zu bytes "
             "of %s",
             path, count > have ? "truncated: " : "", what, (unsigned long long)count,
             ndim == 3 ? "pixels" : "labels", have, ndim == 3 ? "pixels" : "labels");
    goto bad;
  }
  out->count = (size_t)count;
  out->file = file;
  out->data = file + header;
  return DL_OK;
bad:
  free(file);
  memset(out, 0, sizeof *out);
  return DL_EDATA;
}

void dl_idx_free(dl_idx *x) {
  free(x->file);
  memset(x, 0, sizeof *x);
}
