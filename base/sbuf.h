/* sbuf.h - a growable text buffer in an arena, for diagnostics and dumps.
 *
 * Internal to lang/.  Growth abandons the old storage to the arena, which is
 * fine for the short lifetimes of rendered text.  An allocation failure sets
 * `failed` and later appends become no-ops; sbuf_str then returns NULL.
 */
#ifndef RA_SBUF_H
#define RA_SBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "utf8.h"

typedef struct SBuf {
  Arena *arena;
  char *p;
  size_t n, cap;
  int failed;
} SBuf;

static inline void sbuf_init(SBuf *b, Arena *a) {
  b->arena = a;
  b->p = NULL;
  b->n = b->cap = 0;
  b->failed = 0;
}

/* Makes room for k more bytes plus the terminating NUL. */
static inline int sbuf_reserve(SBuf *b, size_t k) {
  if (b->failed) return 0;
  if (b->n + k + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + k + 1) {
    if (cap > ((size_t)1 << 40)) { b->failed = 1; return 0; }
    cap *= 2;
  }
  char *np = arena_alloc(b->arena, cap);
  if (!np) { b->failed = 1; return 0; }
  if (b->n) memcpy(np, b->p, b->n);
  b->p = np;
  b->cap = cap;
  return 1;
}

static inline void sbuf_addn(SBuf *b, const char *s, size_t k) {
  if (!sbuf_reserve(b, k)) return;
  memcpy(b->p + b->n, s, k);
  b->n += k;
  b->p[b->n] = 0;
}

static inline void sbuf_add(SBuf *b, const char *s) { sbuf_addn(b, s, strlen(s)); }

static inline void sbuf_addc(SBuf *b, char c) { sbuf_addn(b, &c, 1); }

static inline void sbuf_vprintf(SBuf *b, const char *fmt, va_list ap) {
  if (!sbuf_reserve(b, 64)) return;
  va_list aq;
  va_copy(aq, ap);
  size_t room = b->cap - b->n;
  int k = vsnprintf(b->p + b->n, room, fmt, aq);  /* usually fits at once */
  va_end(aq);
  if (k < 0) {
    b->p[b->n] = 0;
    return;
  }
  if ((size_t)k >= room) {
    if (!sbuf_reserve(b, (size_t)k)) return;
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
  }
  b->n += (size_t)k;
}

static inline void sbuf_printf(SBuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void sbuf_printf(SBuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sbuf_vprintf(b, fmt, ap);
  va_end(ap);
}

/* The NUL-terminated text ("" when empty), or NULL after a failure. */
static inline char *sbuf_str(SBuf *b) {
  if (!sbuf_reserve(b, 0)) return NULL;
  b->p[b->n] = 0;
  return b->p;
}

#endif
