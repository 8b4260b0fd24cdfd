/* ckpt.c - checkpoints as .safetensors files.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON (padded
 * with spaces so the data starts 8-byte aligned), then the tensors' raw
 * little-endian bytes back to back.  The header maps each tensor name to
 * {"dtype": "F32"|"I32", "shape": [...], "data_offsets": [begin, end]}
 * (offsets relative to the data section) and "__metadata__" to an object of
 * strings.  The writer formats the header itself (no allocation), writes a
 * temporary beside the target (ckpt_temp_name), fsyncs and renames it; any
 * failed write, fsync or close removes the temporary and leaves the target.
 * The reader reads the length and the header first (streamed to jansson),
 * checks everything, and only then reads the data section into a buffer of
 * its validated size. */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/file.h"
#include "../../base/utf8.h"
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_MAX_HEADER ((uint64_t)100 << 20) /* as the reference implementation */

static int ckpt_fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ckpt_fail(char *err, size_t errlen, const char *path, const char *fmt, ...) {
  if (!err || !errlen) return -1;
  int k = snprintf(err, errlen, "%s: ", path ? path : "checkpoint");
  if (k < 0) k = 0;
  if ((size_t)k < errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static const char *const dtype_name[2] = {"F32", "I32"};

/* ---- writing ---- */

/* Counts bytes (fd < 0) or writes them through a small buffer. */
typedef struct Sink {
  int fd;
  int failed;
  uint64_t total;
  size_t n;
  char buf[8192];
} Sink;

static void sink_flush(Sink *s) {
  size_t off = 0;
  while (s->fd >= 0 && !s->failed && off < s->n) {
    ssize_t w = write(s->fd, s->buf + off, s->n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) s->failed = w < 0 && errno ? errno : EIO;
    else off += (size_t)w;
  }
  s->n = 0;
}

static void sink_put(Sink *s, const void *p, size_t n) {
  s->total += n;
  if (s->fd < 0 || s->failed) return;
  const char *c = p;
  while (n) {
    if (s->n == sizeof s->buf) sink_flush(s);
    size_t k = sizeof s->buf - s->n;
    if (k > n) k = n;
    memcpy(s->buf + s->n, c, k);
    s->n += k;
    c += k;
    n -= k;
  }
}

static void sink_str(Sink *s, const char *str) { sink_put(s, str, strlen(str)); }

static void sink_fmt(Sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sink_fmt(Sink *s, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) sink_put(s, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string (the text is valid UTF-8, checked before). */
static void sink_json_str(Sink *s, const char *str) {
  sink_put(s, "\"", 1);
  for (const unsigned char *u = (const unsigned char *)str; *u; u++) {
    if (*u == '"' || *u == '\\') {
      char e[2] = {'\\', (char)*u};
      sink_put(s, e, 2);
    } else if (*u == '\n' || *u == '\t' || *u == '\r') {
      char e[2] = {'\\', *u == '\n' ? 'n' : *u == '\t' ? 't' : 'r'};
      sink_put(s, e, 2);
    } else if (*u < 0x20) {
      sink_fmt(s, "\\u%04x", *u);
    } else {
      sink_put(s, u, 1);
    }
  }
  sink_put(s, "\"", 1);
}

static uint64_t tensor_bytes(const CkptTensor *t) {
  uint64_t n = 4;
  for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
  return n;
}

/* The header JSON without padding. */
static void write_header(Sink *s, const CkptTensor *t, int n, const CkptMeta *meta, int nmeta) {
  sink_put(s, "{", 1);
  bool first = true;
  if (nmeta > 0) {
    sink_str(s, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) sink_put(s, ",", 1);
      sink_json_str(s, meta[i].key);
      sink_put(s, ":", 1);
      sink_json_str(s, meta[i].value);
    }
    sink_put(s, "}", 1);
    first = false;
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    if (!first) sink_put(s, ",", 1);
    first = false;
    sink_json_str(s, t[i].name);
    sink_fmt(s, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name[t[i].dtype]);
    for (int d = 0; d < t[i].ndim; d++) sink_fmt(s, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
    uint64_t b = tensor_bytes(&t[i]);
    sink_fmt(s, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
             (unsigned long long)(off + b));
    off += b;
  }
  sink_put(s, "}", 1);
}

static int check_tensors(const char *path, const CkptTensor *t, int n, const CkptMeta *meta,
                         int nmeta, char *err, size_t errlen) {
  if (n < 0 || nmeta < 0 || (n > 0 && !t) || (nmeta > 0 && !meta))
    return ckpt_fail(err, errlen, path, "invalid tensor or metadata list");
  uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    const char *name = t[i].name;
    if (!name || !*name) return ckpt_fail(err, errlen, path, "tensor %d has no name", i);
    if (!utf8_valid(name)) return ckpt_fail(err, errlen, path, "tensor %d: the name is not valid UTF-8", i);
    if (strcmp(name, "__metadata__") == 0)
      return ckpt_fail(err, errlen, path, "'__metadata__' cannot name a tensor");
    if (t[i].dtype != 0 && t[i].dtype != 1)
      return ckpt_fail(err, errlen, path, "tensor '%s': unknown dtype %d", name, t[i].dtype);
    if (t[i].ndim < 0 || t[i].ndim > 8)
      return ckpt_fail(err, errlen, path, "tensor '%s': %d dimensions (at most 8)", name, t[i].ndim);
    uint64_t b = 4;
    for (int d = 0; d < t[i].ndim; d++) {
      if (t[i].shape[d] < 0 || (t[i].shape[d] > 0 && b > (UINT64_MAX >> 2) / (uint64_t)t[i].shape[d]))
        return ckpt_fail(err, errlen, path, "tensor '%s': invalid shape", name);
      b *= (uint64_t)t[i].shape[d];
    }
    if (b > 0 && !t[i].data) return ckpt_fail(err, errlen, path, "tensor '%s' has no data", name);
    if (total > (UINT64_MAX >> 2) - b) return ckpt_fail(err, errlen, path, "tensors too large");
    total += b;
    for (int j = 0; j < i; j++)
      if (strcmp(t[j].name, name) == 0)
        return ckpt_fail(err, errlen, path, "two tensors are named '%s'", name);
  }
  for (int i = 0; i < nmeta; i++) {
    if (!meta[i].key || !meta[i].value)
      return ckpt_fail(err, errlen, path, "metadata entry %d has no key or value", i);
    if (!utf8_valid(meta[i].key) || !utf8_valid(meta[i].value))
      return ckpt_fail(err, errlen, path, "metadata '%s' is not valid UTF-8", meta[i].key);
    for (int j = 0; j < i; j++)
      if (strcmp(meta[j].key, meta[i].key) == 0)
        return ckpt_fail(err, errlen, path, "two metadata entries are named '%s'", meta[i].key);
  }
  return 0;
}

int ckpt_temp_name(const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(path, '/');
  size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
  int n = snprintf(out, outlen, "%.*s.%s.rac-tmp", (int)dir, path, path + dir);
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static void fsync_dir(const char *path) {
  char dir[4096];
  size_t n = strlen(path);
  if (n >= sizeof dir) return;
  memcpy(dir, path, n + 1);
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

int ckpt_write(const char *path, const CkptTensor *t, int n, const CkptMeta *meta, int nmeta,
               char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!path || !*path) return ckpt_fail(err, errlen, path, "no file name");
  if (check_tensors(path, t, n, meta, nmeta, err, errlen)) return -1;
  char tmp[4096];
  if (ckpt_temp_name(path, tmp, sizeof tmp) != 0)
    return ckpt_fail(err, errlen, path, "the path is too long");
  /* a temporary of this name is ours, left by a save that was killed */
  if (unlink(tmp) != 0 && errno != ENOENT)
    return ckpt_fail(err, errlen, path, "cannot remove the stale temporary '%s': %s", tmp, strerror(errno));

  /* pass 1: the header's length */
  Sink *s = NULL;
  Sink count;
  count.fd = -1;
  count.failed = 0;
  count.total = 0;
  count.n = 0;
  write_header(&count, t, n, meta, nmeta);
  uint64_t hlen = (count.total + 7) & ~(uint64_t)7;

  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return ckpt_fail(err, errlen, path, "cannot create '%s': %s", tmp, strerror(errno));
  Sink out;
  s = &out;
  s->fd = fd;
  s->failed = 0;
  s->total = 0;
  s->n = 0;
  unsigned char le[8];
  for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hlen >> (8 * i));
  sink_put(s, le, 8);
  write_header(s, t, n, meta, nmeta);
  while (s->total < 8 + hlen) sink_put(s, " ", 1);
  for (int i = 0; i < n; i++) {
    uint64_t b = tensor_bytes(&t[i]);
    if (b == 0) continue;
    if (b >= sizeof s->buf) {
      sink_flush(s);
      const char *p = t[i].data;
      uint64_t off = 0;
      while (!s->failed && off < b) {
        size_t chunk = b - off > ((size_t)1 << 30) ? ((size_t)1 << 30) : (size_t)(b - off);
        ssize_t w = write(fd, p + off, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) s->failed = w < 0 && errno ? errno : EIO;
        else off += (uint64_t)w;
      }
      s->total += b;
    } else {
      sink_put(s, t[i].data, (size_t)b);
    }
  }
  sink_flush(s);
  int e = s->failed;
  if (!e && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) {
    unlink(tmp);
    return ckpt_fail(err, errlen, path, "cannot write the checkpoint: %s", strerror(e));
  }
  fsync_dir(path);
  return 0;
}

/* ---- reading ---- */

typedef struct CkptBox {
  Ckpt c;
  Arena arena;
} CkptBox;

static int cmp_offset(const void *a, const void *b) {
  const int64_t *x = a, *y = b; /* {begin, end, index} */
  if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
  if (x[1] != y[1]) return x[1] < y[1] ? -1 : 1;
  return (x[2] > y[2]) - (x[2] < y[2]);
}

static bool json_nonneg_int(const json_t *v, int64_t *out) {
  if (!json_is_integer(v)) return false;
  json_int_t i = json_integer_value(v);
  if (i < 0) return false;
  *out = (int64_t)i;
  return true;
}

/* Validates one tensor entry into t; begin/end into be. */
static int read_tensor(const char *path, const char *name, json_t *v, uint64_t data_len,
                       CkptTensor *t, int64_t be[2], char *err, size_t errlen) {
  if (!json_is_object(v))
    return ckpt_fail(err, errlen, path, "tensor '%s': expected an object with dtype, shape and data_offsets", name);
  const char *key;
  json_t *val;
  json_object_foreach(v, key, val) {
    if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
      return ckpt_fail(err, errlen, path, "tensor '%s': unexpected key '%s'", name, key);
  }
  json_t *dt = json_object_get(v, "dtype");
  json_t *sh = json_object_get(v, "shape");
  json_t *of = json_object_get(v, "data_offsets");
  if (!dt) return ckpt_fail(err, errlen, path, "tensor '%s': missing \"dtype\"", name);
  if (!sh) return ckpt_fail(err, errlen, path, "tensor '%s': missing \"shape\"", name);
  if (!of) return ckpt_fail(err, errlen, path, "tensor '%s': missing \"data_offsets\"", name);
  if (!json_is_string(dt)) return ckpt_fail(err, errlen, path, "tensor '%s': dtype is not a string", name);
  const char *ds = json_string_value(dt);
  static const char *const known[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                                      "BF16", "U32", "F32", "F64", "I32", "I64", "U64", NULL};
  if (strcmp(ds, "F32") == 0) {
    t->dtype = 0;
  } else if (strcmp(ds, "I32") == 0) {
    t->dtype = 1;
  } else {
    for (int i = 0; known[i]; i++)
      if (strcmp(ds, known[i]) == 0)
        return ckpt_fail(err, errlen, path, "tensor '%s': dtype %s is not supported (only F32 and I32)", name, ds);
    return ckpt_fail(err, errlen, path, "tensor '%s': unknown dtype '%.32s'", name, ds);
  }
  if (!json_is_array(sh)) return ckpt_fail(err, errlen, path, "tensor '%s': shape is not an array", name);
  size_t nd = json_array_size(sh);
  if (nd > 8) return ckpt_fail(err, errlen, path, "tensor '%s': %zu dimensions (at most 8)", name, nd);
  t->ndim = (int)nd;
  uint64_t bytes = 4;
  bool overflow = false;
  for (size_t d = 0; d < nd; d++) {
    int64_t x;
    if (!json_nonneg_int(json_array_get(sh, d), &x))
      return ckpt_fail(err, errlen, path, "tensor '%s': shape[%zu] is not a non-negative integer", name, d);
    t->shape[d] = x;
    if (x > 0 && bytes > UINT64_MAX / 2 / (uint64_t)x) overflow = true;
    else bytes *= (uint64_t)x;
  }
  if (!json_is_array(of) || json_array_size(of) != 2)
    return ckpt_fail(err, errlen, path, "tensor '%s': data_offsets is not a pair [begin, end]", name);
  if (!json_nonneg_int(json_array_get(of, 0), &be[0]) || !json_nonneg_int(json_array_get(of, 1), &be[1]))
    return ckpt_fail(err, errlen, path, "tensor '%s': data_offsets are not non-negative integers", name);
  if (be[1] < be[0])
    return ckpt_fail(err, errlen, path, "tensor '%s': data_offsets [%lld, %lld] end before they begin", name,
                     (long long)be[0], (long long)be[1]);
  if ((uint64_t)be[1] > data_len)
    return ckpt_fail(err, errlen, path,
                     "tensor '%s': data_offsets [%lld, %lld] reach past the data (%llu bytes; file truncated?)",
                     name, (long long)be[0], (long long)be[1], (unsigned long long)data_len);
  if (overflow || bytes != (uint64_t)(be[1] - be[0]))
    return ckpt_fail(err, errlen, path, "tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, but %s with %zu dimensions needs %llu",
                     name, (long long)be[0], (long long)be[1], (long long)(be[1] - be[0]), ds, nd,
                     overflow ? 0ull : (unsigned long long)bytes);
  return 0;
}

static Ckpt *read_fail(CkptBox *box, RaAlloc *alloc, json_t *root) {
  if (root) json_decref(root);
  if (box) {
    if (box->c.blob) ra_free_mem(alloc, box->c.blob, box->c.blob_len);
    arena_free(&box->arena);
    ra_free_mem(alloc, box, sizeof *box);
  }
  return NULL;
}

/* Reads exactly n bytes at the file's position; false on a short read. */
static bool read_exact(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += (size_t)r;
  }
  return true;
}

/* The header, fed to jansson as it is read: never more than its length,
 * and nothing of the file is held but a small buffer. */
typedef struct HeaderSrc {
  int fd;
  uint64_t left;
  int first;             /* the byte already read, or -1 */
  bool failed;
} HeaderSrc;

static size_t header_chunk(void *buf, size_t len, void *ud) {
  HeaderSrc *h = ud;
  if (len == 0) return 0;
  if (h->first >= 0) {
    *(char *)buf = (char)h->first;
    h->first = -1;
    return 1;
  }
  if (h->left == 0) return 0;
  size_t k = len < h->left ? len : (size_t)h->left;
  ssize_t r;
  do r = read(h->fd, buf, k);
  while (r < 0 && errno == EINTR);
  if (r <= 0) {
    h->failed = true;
    return (size_t)-1;
  }
  h->left -= (uint64_t)r;
  return (size_t)r;
}

static Ckpt *read_fail_fd(CkptBox *box, RaAlloc *alloc, json_t *root, int fd) {
  if (fd >= 0) close(fd);
  return read_fail(box, alloc, root);
}

/* The 8-byte length and the first byte of the header: the file's descriptor
 * (positioned after the '{') and the header's length, or -1. */
static int open_header(const char *path, uint64_t *size, uint64_t *hlen, char *err,
                       size_t errlen) {
  char why[256];
  int fd = file_open_regular(path, size, why, sizeof why);
  if (fd < 0) return ckpt_fail(err, errlen, path, "cannot open the checkpoint: %s", why);
  unsigned char le[9];
  int rc = -1;
  if (*size < 8)
    ckpt_fail(err, errlen, path, "truncated: %llu bytes, but a .safetensors file starts with an 8-byte header length",
              (unsigned long long)*size);
  else if (*size > ((uint64_t)1 << 40))
    ckpt_fail(err, errlen, path, "the file is too large (%llu bytes)", (unsigned long long)*size);
  else if (!read_exact(fd, le, 8))
    ckpt_fail(err, errlen, path, "cannot read the file");
  else
    rc = 0;
  if (rc == 0) {
    *hlen = 0;
    for (int i = 0; i < 8; i++) *hlen |= (uint64_t)le[i] << (8 * i);
    rc = -1;
    if (*hlen > *size - 8)
      ckpt_fail(err, errlen, path,
                "truncated or not a .safetensors file: the header length %llu is larger than the rest of the file (%llu bytes)",
                (unsigned long long)*hlen, (unsigned long long)(*size - 8));
    else if (*hlen > CKPT_MAX_HEADER)
      ckpt_fail(err, errlen, path, "the header length %llu is above the limit of %llu bytes",
                (unsigned long long)*hlen, (unsigned long long)CKPT_MAX_HEADER);
    else if (*hlen < 2 || !read_exact(fd, le + 8, 1) || le[8] != '{')
      ckpt_fail(err, errlen, path, "not a .safetensors file: the header does not start with '{'");
    else
      rc = 0;
  }
  if (rc) {
    close(fd);
    return -1;
  }
  return fd;
}

/* "__metadata__": an object of strings, copied into the box. */
static int read_metadata(CkptBox *box, const char *path, json_t *md, char *err, size_t errlen) {
  Ckpt *c = &box->c;
  if (!json_is_object(md))
    return ckpt_fail(err, errlen, path, "\"__metadata__\" is not an object of strings");
  c->meta = arena_alloc(&box->arena, sizeof(CkptMeta) * (json_object_size(md) + 1));
  if (!c->meta) return ckpt_fail(err, errlen, path, "out of memory");
  const char *k;
  json_t *v;
  json_object_foreach(md, k, v) {
    if (!json_is_string(v)) return ckpt_fail(err, errlen, path, "metadata '%s' is not a string", k);
    char *kk = arena_strdup(&box->arena, k);
    char *vv = arena_strndup(&box->arena, json_string_value(v), json_string_length(v));
    if (!kk || !vv) return ckpt_fail(err, errlen, path, "out of memory");
    c->meta[c->nmeta].key = kk;
    c->meta[c->nmeta].value = vv;
    c->nmeta++;
  }
  return 0;
}

/* The tensor entries, each checked, into tmp[nt] with be[i] = {begin, end,
 * i} sorted by their data; they must tile the data section exactly. */
static int read_layout(CkptBox *box, const char *path, json_t *root, uint64_t data_len,
                       CkptTensor *tmp, int64_t (*be)[3], int nt, char *err, size_t errlen) {
  const char *k;
  json_t *v;
  int i = 0;
  json_object_foreach(root, k, v) {
    if (strcmp(k, "__metadata__") == 0) continue;
    CkptTensor *t = &tmp[i];
    memset(t, 0, sizeof *t);
    if (read_tensor(path, k, v, data_len, t, be[i], err, errlen)) return -1;
    t->name = arena_strdup(&box->arena, k);
    if (!t->name) return ckpt_fail(err, errlen, path, "out of memory");
    be[i][2] = i;
    i++;
  }
  qsort(be, (size_t)nt, sizeof be[0], cmp_offset);
  int64_t at = 0;
  for (int j = 0; j < nt; j++) {
    const CkptTensor *t = &tmp[be[j][2]];
    if (be[j][0] < at)
      return ckpt_fail(err, errlen, path, "tensor '%s': data_offsets [%lld, %lld] overlap '%s'", t->name,
                       (long long)be[j][0], (long long)be[j][1], tmp[be[j - 1][2]].name);
    if (be[j][0] > at)
      return ckpt_fail(err, errlen, path, "tensor '%s': data_offsets [%lld, %lld] leave a gap after byte %lld",
                       t->name, (long long)be[j][0], (long long)be[j][1], (long long)at);
    at = be[j][1];
  }
  if ((uint64_t)at != data_len)
    return ckpt_fail(err, errlen, path, "the data section has %llu bytes, but the tensors cover %lld",
                     (unsigned long long)data_len, (long long)at);
  return 0;
}

/* The header after its first byte: metadata and the tensors' layout.
 * Returns the number of tensors, or -1. */
static int read_header(CkptBox *box, const char *path, int fd, uint64_t hlen, uint64_t data_len,
                       CkptTensor **tmp, int64_t (**be)[3], char *err, size_t errlen) {
  HeaderSrc hs = {fd, hlen - 1, '{', false};
  json_error_t je;
  json_t *root = json_load_callback(header_chunk, &hs, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    if (hs.failed) return ckpt_fail(err, errlen, path, "cannot read the header");
    return ckpt_fail(err, errlen, path, "invalid JSON in the header at byte %d: %s", je.position, je.text);
  }
  int nt = -1;
  size_t nkeys = json_object_size(root);
  json_t *md = json_object_get(root, "__metadata__");
  if (!json_is_object(root)) {
    ckpt_fail(err, errlen, path, "the header is not a JSON object");
  } else if (nkeys > 1000000) {
    ckpt_fail(err, errlen, path, "too many header entries (%zu)", nkeys);
  } else if (!md || read_metadata(box, path, md, err, errlen) == 0) {
    int n = (int)(nkeys - (md ? 1 : 0));
    box->c.t = arena_alloc(&box->arena, sizeof(CkptTensor) * (size_t)(n ? n : 1));
    *tmp = arena_alloc(&box->arena, sizeof(CkptTensor) * (size_t)(n ? n : 1));
    *be = arena_alloc(&box->arena, sizeof(int64_t[3]) * (size_t)(n ? n : 1));
    if (!box->c.t || !*tmp || !*be) ckpt_fail(err, errlen, path, "out of memory");
    else if (read_layout(box, path, root, data_len, *tmp, *be, n, err, errlen) == 0) nt = n;
  }
  json_decref(root);
  return nt;
}

/* The 8-byte length and the header are read and checked first; the data
 * section is read only into a layout that covers it exactly, so a large
 * file that is not a checkpoint costs a few small reads. */
Ckpt *ckpt_read(RaAlloc alloc, const char *path, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!path) {
    ckpt_fail(err, errlen, path, "no file name");
    return NULL;
  }
  uint64_t size = 0, hlen = 0;
  int fd = open_header(path, &size, &hlen, err, errlen);
  if (fd < 0) return NULL;
  CkptBox *box = ra_malloc(&alloc, sizeof *box);
  if (!box) {
    close(fd);
    ckpt_fail(err, errlen, path, "out of memory");
    return NULL;
  }
  memset(box, 0, sizeof *box);
  arena_init(&box->arena, alloc);
  box->c.alloc = alloc;
  uint64_t data_len = size - 8 - hlen;
  CkptTensor *tmp = NULL;
  int64_t(*be)[3] = NULL;
  int nt = read_header(box, path, fd, hlen, data_len, &tmp, &be, err, errlen);
  if (nt < 0) return read_fail_fd(box, &alloc, NULL, fd);
  /* the data, into its own (aligned) buffer */
  Ckpt *c = &box->c;
  c->blob_len = (size_t)(data_len ? data_len : 1);
  c->blob = ra_malloc(&alloc, c->blob_len);
  if (!c->blob) {
    c->blob_len = 0;
    ckpt_fail(err, errlen, path, "out of memory reading %llu bytes of tensor data", (unsigned long long)data_len);
    return read_fail_fd(box, &alloc, NULL, fd);
  }
  bool got = read_exact(fd, c->blob, (size_t)data_len);
  close(fd);
  if (!got) {
    ckpt_fail(err, errlen, path, "cannot read the tensor data (the file changed while it was read?)");
    return read_fail(box, &alloc, NULL);
  }
  unsigned char *data = c->blob;
  for (int j = 0; j < nt; j++) {
    c->t[j] = tmp[be[j][2]];
    c->t[j].data = data + be[j][0];
  }
  c->n = nt;
  return c;
}

void ckpt_free(Ckpt *c) {
  if (!c) return;
  CkptBox *box = (CkptBox *)c;
  RaAlloc alloc = c->alloc;
  if (c->blob) ra_free_mem(&alloc, c->blob, c->blob_len);
  arena_free(&box->arena);
  ra_free_mem(&alloc, box, sizeof *box);
}

const CkptTensor *ckpt_find(const Ckpt *c, const char *name) {
  if (!c || !name) return NULL;
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
  return NULL;
}

const char *ckpt_meta(const Ckpt *c, const char *key) {
  if (!c || !key) return NULL;
  for (int i = 0; i < c->nmeta; i++)
    if (strcmp(c->meta[i].key, key) == 0) return c->meta[i].value;
  return NULL;
}
