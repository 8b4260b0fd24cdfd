/* npy.c - NumPy's .npy format (docs/data.md): the magic, the version, the
 * header length (2 bytes in 1.0, 4 in 2.0 and 3.0), a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } and the data.
 * Every byte is checked before it is trusted. */
#include "npy.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int perr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err && errlen) vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

typedef struct Hdr {
  const char *p, *end;
} Hdr;

static void ws(Hdr *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
    h->p++;
}

/* A quoted string ('...' or "...", no escapes) into out. */
static bool str(Hdr *h, char *out, size_t n) {
  ws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
  char q = *h->p++;
  size_t k = 0;
  while (h->p < h->end && *h->p != q) {
    if (k + 1 < n) out[k++] = *h->p;
    h->p++;
  }
  if (h->p >= h->end) return false;
  h->p++;
  out[k] = 0;
  return true;
}

static bool lit(Hdr *h, const char *s) {
  ws(h);
  size_t n = strlen(s);
  if ((size_t)(h->end - h->p) < n || memcmp(h->p, s, n) != 0) return false;
  h->p += n;
  return true;
}

static int shape(Hdr *h, NpyArray *a, char *err, size_t errlen) {
  if (!lit(h, "(")) return perr(err, errlen, "the header's 'shape' is not a tuple");
  a->ndim = 0;
  for (;;) {
    ws(h);
    if (lit(h, ")")) break;
    bool neg = h->p < h->end && *h->p == '-';
    if (neg) h->p++;
    if (h->p >= h->end || *h->p < '0' || *h->p > '9')
      return perr(err, errlen, "the header's 'shape' holds something other than integers");
    int64_t v = 0;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
      if (v > (INT64_MAX - 9) / 10) return perr(err, errlen, "a dimension of 'shape' is too large");
      v = v * 10 + (*h->p++ - '0');
    }
    if (h->p < h->end && *h->p == 'L') h->p++; /* Python 2 writers */
    if (neg) return perr(err, errlen, "the shape has a negative dimension (-%lld)", (long long)v);
    if (a->ndim >= 8) return perr(err, errlen, "the array has more than 8 dimensions");
    a->shape[a->ndim++] = v;
    ws(h);
    if (lit(h, ",")) continue;
    if (lit(h, ")")) break;
    return perr(err, errlen, "the header's 'shape' is not a tuple of integers");
  }
  return 0;
}

const char *npy_dtype_name(NpyDtype t) {
  static const char *const names[] = {"float32", "float64", "int32", "int64"};
  return names[t];
}

static int descr(const char *d, NpyArray *a, char *err, size_t errlen) {
  static const char *const known[] = {"f4", "f8", "i4", "i8"};
  if (d[0] == '>' && strlen(d) > 1)
    return perr(err, errlen, "the array is big-endian ('%s'); save it little-endian "
                             "(a.astype(a.dtype.newbyteorder('<')))", d);
  const char *t = d[0] == '<' || d[0] == '=' ? d + 1 : d;
  for (int i = 0; i < 4; i++)
    if (d[0] == '<' && strcmp(t, known[i]) == 0) {
      a->dtype = (NpyDtype)i;
      return 0;
    }
  return perr(err, errlen, "dtype '%s' is not supported (float32, float64, int32 or int64, "
                           "little-endian)", d);
}

int npy_parse(const unsigned char *buf, size_t len, NpyArray *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  if (len < 6 || memcmp(buf, "\x93NUMPY", 6) != 0)
    return perr(err, errlen, "not a .npy file (it does not begin with \\x93NUMPY)");
  if (len < 10) return perr(err, errlen, "the file is truncated in its preamble (%zu bytes)", len);
  int major = buf[6], minor = buf[7];
  if (major < 1 || major > 3 || minor != 0)
    return perr(err, errlen, "format version %d.%d is not supported (1.0, 2.0 or 3.0)", major,
                minor);
  size_t pre = major == 1 ? 10 : 12;
  if (len < pre) return perr(err, errlen, "the file is truncated in its preamble (%zu bytes)", len);
  uint64_t hlen = major == 1 ? (uint64_t)buf[8] | (uint64_t)buf[9] << 8
                             : (uint64_t)buf[8] | (uint64_t)buf[9] << 8 |
                                   (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
  if (hlen > len - pre)
    return perr(err, errlen, "the header is truncated: it claims %llu bytes, the file has %zu "
                             "after the preamble", (unsigned long long)hlen, len - pre);
  Hdr h = {(const char *)buf + pre, (const char *)buf + pre + hlen};
  if (!lit(&h, "{")) return perr(err, errlen, "the header is not a dict");
  char key[32], dstr[32];
  bool got_descr = false, got_order = false, got_shape = false, fortran = false;
  for (;;) {
    if (lit(&h, "}")) break;
    if (!str(&h, key, sizeof key)) return perr(err, errlen, "the header is not a dict of quoted keys");
    if (!lit(&h, ":")) return perr(err, errlen, "the header is not a dict (no ':' after '%s')", key);
    if (strcmp(key, "descr") == 0) {
      if (!str(&h, dstr, sizeof dstr))
        return perr(err, errlen, "the header's 'descr' is not a string (structured dtypes are "
                                 "not supported)");
      got_descr = true;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (lit(&h, "True")) fortran = true;
      else if (!lit(&h, "False")) return perr(err, errlen, "the header's 'fortran_order' is not True or False");
      got_order = true;
    } else if (strcmp(key, "shape") == 0) {
      if (shape(&h, a, err, errlen)) return -1;
      got_shape = true;
    } else {
      return perr(err, errlen, "the header has an unexpected key '%s'", key);
    }
    if (lit(&h, ",")) continue;
    if (lit(&h, "}")) break;
    return perr(err, errlen, "the header is not a dict (expected ',' or '}' after '%s')", key);
  }
  ws(&h);
  if (h.p != h.end) return perr(err, errlen, "the header has text after its dict");
  if (!got_descr || !got_order || !got_shape)
    return perr(err, errlen, "the header has no '%s'",
                !got_descr ? "descr" : !got_order ? "fortran_order" : "shape");
  if (descr(dstr, a, err, errlen)) return -1;
  if (fortran)
    return perr(err, errlen, "the array is in Fortran order; save it in C order "
                             "(np.ascontiguousarray)");
  if (a->ndim == 0)
    return perr(err, errlen, "the array is a scalar; it needs a first dimension (the examples)");
  size_t isz = a->dtype == NPY_F4 || a->dtype == NPY_I4 ? 4 : 8;
  uint64_t count = 1;
  for (int i = 0; i < a->ndim; i++) {
    if (a->shape[i] > 0 && count > (UINT64_MAX / isz) / (uint64_t)a->shape[i])
      return perr(err, errlen, "the shape is too large");
    count *= (uint64_t)a->shape[i];
  }
  uint64_t have = len - pre - hlen;
  if (have < count * isz)
    return perr(err, errlen, "the data is truncated: the shape needs %llu bytes, the file has %llu",
                (unsigned long long)(count * isz), (unsigned long long)have);
  if (have > count * isz)
    return perr(err, errlen, "%llu bytes follow the data of the shape",
                (unsigned long long)(have - count * isz));
  a->count = (int64_t)count;
  a->data = buf + pre + hlen;
  return 0;
}

/* " (index [i, j, ...])" of flat element e, for arrays of rank above 1. */
static const char *index_of(const NpyArray *a, int64_t e, char *buf, size_t n) {
  buf[0] = 0;
  if (a->ndim < 2) return buf;
  int64_t idx[8];
  for (int d = a->ndim - 1; d >= 0; d--) {
    idx[d] = a->shape[d] ? e % a->shape[d] : 0;
    e = a->shape[d] ? e / a->shape[d] : 0;
  }
  size_t k = (size_t)snprintf(buf, n, " (index [");
  for (int d = 0; d < a->ndim && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)idx[d]);
  if (k < n) snprintf(buf + k, n - k, "])");
  return buf;
}

int npy_convert(const NpyArray *a, int64_t first, int64_t n, IrDtype to, void *out, char *err,
                size_t errlen) {
  char at[160];
  bool isint = a->dtype == NPY_I4 || a->dtype == NPY_I8;
  if (to == IR_I32 && !isint)
    return perr(err, errlen, "the array is %s, but what it feeds takes integers (int32 or int64)",
                npy_dtype_name(a->dtype));
  for (int64_t i = first; i < first + n; i++) {
    const unsigned char *p = a->data + (size_t)i * (a->dtype == NPY_F4 || a->dtype == NPY_I4 ? 4 : 8);
    double v;
    int64_t iv = 0;
    switch (a->dtype) {
    case NPY_F4: { float f; memcpy(&f, p, 4); v = f; break; }
    case NPY_F8: memcpy(&v, p, 8); break;
    case NPY_I4: { int32_t x; memcpy(&x, p, 4); iv = x; v = (double)x; break; }
    default: memcpy(&iv, p, 8); v = (double)iv; break;
    }
    if (to == IR_I32) {
      if (iv < INT32_MIN || iv > INT32_MAX)
        return perr(err, errlen, "element %lld%s is %lld, outside int32's range", (long long)i,
                    index_of(a, i, at, sizeof at), (long long)iv);
      ((int32_t *)out)[i - first] = (int32_t)iv;
    } else {
      if (!isfinite(v))
        return perr(err, errlen, "element %lld%s is %g (not a finite number)", (long long)i,
                    index_of(a, i, at, sizeof at), v);
      if (fabs(v) > 3.4028234663852886e38)
        return perr(err, errlen, "element %lld%s is %g, outside float32's range", (long long)i,
                    index_of(a, i, at, sizeof at), v);
      ((float *)out)[i - first] = (float)v;
    }
  }
  return 0;
}
