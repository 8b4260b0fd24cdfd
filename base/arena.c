/* arena.c - default allocator and bump arenas (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaChunk {
  ArenaChunk *next;
  size_t size, used;
  max_align_t data[];
};

static void *default_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

RaAlloc ra_alloc_default(void) {
  RaAlloc a = {default_fn, NULL};
  return a;
}

void *ra_malloc(const RaAlloc *a, size_t n) {
  if (n == 0) n = 1;
  return a->fn(a->ud, NULL, 0, n);
}

void *ra_calloc(const RaAlloc *a, size_t count, size_t n) {
  if (n && count > SIZE_MAX / n) return NULL;
  size_t bytes = count * n;
  void *p = ra_malloc(a, bytes);
  if (p) memset(p, 0, bytes > 0 ? bytes : 1);
  return p;
}

void *ra_realloc(const RaAlloc *a, void *p, size_t osize, size_t nsize) {
  if (nsize == 0) nsize = 1;
  return a->fn(a->ud, p, osize, nsize);
}

void ra_free_mem(const RaAlloc *a, void *p, size_t n) {
  if (p) a->fn(a->ud, p, n, 0);
}

void arena_init(Arena *a, RaAlloc alloc) {
  memset(a, 0, sizeof *a);
  a->alloc = alloc;
}

void arena_free(Arena *a) {
  ArenaChunk *c = a->head;
  while (c) {
    ArenaChunk *next = c->next;
    ra_free_mem(&a->alloc, c, sizeof *c + c->size);
    c = next;
  }
  a->head = NULL;
  a->used_total = 0;
}

static void *arena_fail(Arena *a) {
  a->failed = 1;
  if (a->oom_jmp) longjmp(*a->oom_jmp, 1);
  return NULL;
}

void *arena_alloc(Arena *a, size_t n) {
  if (n > ((size_t)1 << 40)) return arena_fail(a);
  n = (n + 15) & ~(size_t)15;
  if (n == 0) n = 16;
  ArenaChunk *c = a->head;
  if (!c || c->size - c->used < n) {
    size_t size = 64 * 1024;
    if (n > size / 4) size = n;
    c = ra_malloc(&a->alloc, sizeof *c + size);
    if (!c) return arena_fail(a);
    c->size = size;
    c->used = 0;
    if (n == size && a->head) {
      /* a big block: keep the current chunk for small allocations */
      c->next = a->head->next;
      a->head->next = c;
    } else {
      c->next = a->head;
      a->head = c;
    }
  }
  void *p = (char *)c->data + c->used;
  c->used += n;
  a->used_total += n;
  memset(p, 0, n);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(Arena *a, const char *s) {
  return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  char *p = arena_alloc(a, (size_t)n + 1);
  if (!p) return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

void *arena_grow(Arena *a, void *arr, int n, int *cap, size_t elem, int first) {
  if (n < *cap) return arr;
  if (*cap > (1 << 29)) return NULL;
  int ncap = *cap ? *cap * 2 : first;
  void *na = arena_alloc(a, elem * (size_t)ncap);
  if (!na) return NULL;
  if (n) memcpy(na, arr, elem * (size_t)n);
  *cap = ncap;
  return na;
}

void ptrvec_push(Arena *a, PtrVec *pv, void *p) {
  void **v = arena_grow(a, pv->v, pv->n, &pv->cap, sizeof(void *), 8);
  if (!v) return;
  pv->v = v;
  pv->v[pv->n++] = p;
}
