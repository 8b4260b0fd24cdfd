/* utf8.h - the one UTF-8 decoder of the project (sources, diagnostics,
 * tokenizers, checkpoint metadata). */
#ifndef RA_UTF8_H
#define RA_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s (at most n bytes
 * available), or 0 if the bytes there are not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static inline int utf8_seq_len(const unsigned char *s, size_t n, unsigned *cp) {
  if (n == 0) return 0;
  unsigned c = s[0];
  int k;
  unsigned v, min;
  if (c < 0x80) { if (cp) *cp = c; return 1; }
  if (c >= 0xC2 && c <= 0xDF) { k = 2; v = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { k = 3; v = c & 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { k = 4; v = c & 0x07; min = 0x10000; }
  else return 0;
  if ((size_t)k > n) return 0;
  for (int i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  if (cp) *cp = v;
  return k;
}

/* Is the NUL-terminated string s valid UTF-8 throughout? */
static inline int utf8_valid(const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = 0;
  while (u[n]) n++;
  while (n > 0) {
    int k = utf8_seq_len(u, n, NULL);
    if (k == 0) return 0;
    u += k;
    n -= (size_t)k;
  }
  return 1;
}

#endif
