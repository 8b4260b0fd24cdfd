/* arena.h - the allocator interface and bump arenas for compile-time data.
 *
 * Every byte the library takes goes through one RaAlloc (Lua style: a single
 * realloc-like function plus user data), so an embedding application or a
 * fault-injection test can control all allocation.  Compile-time data (tokens,
 * AST, IR) lives in arenas freed in one call.
 *
 * Out of memory inside an arena: arena_alloc returns NULL and sets
 * arena->failed; if arena->oom_jmp is set it longjmps there instead, which is
 * how the compiler unwinds from deep recursion without checking every call.
 */
#ifndef RA_ARENA_H
#define RA_ARENA_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

/* nsize == 0 frees ptr and returns NULL; otherwise behaves like realloc.
 * osize is the old size (0 for a new block). */
typedef void *(*RaAllocFn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct RaAlloc {
  RaAllocFn fn;
  void *ud;
} RaAlloc;

/* The default allocator over malloc/realloc/free. */
RaAlloc ra_alloc_default(void);

void *ra_malloc(const RaAlloc *a, size_t n);             /* NULL on failure */
void *ra_calloc(const RaAlloc *a, size_t count, size_t n);
void *ra_realloc(const RaAlloc *a, void *p, size_t osize, size_t nsize);
void ra_free_mem(const RaAlloc *a, void *p, size_t n);

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
  RaAlloc alloc;
  ArenaChunk *head;
  size_t used_total;   /* bytes handed out, for statistics */
  int failed;          /* set once an allocation failed */
  jmp_buf *oom_jmp;    /* if non-NULL, longjmp(*oom_jmp, 1) on failure */
} Arena;

void arena_init(Arena *a, RaAlloc alloc);
void arena_free(Arena *a);                     /* frees every chunk */
void *arena_alloc(Arena *a, size_t n);         /* 16-byte aligned, zeroed */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Room for one more element in an arena array of n elements and capacity
 * *cap: returns arr itself while n < *cap, else a copy with the capacity
 * doubled (first capacity `first`), or NULL when out of memory (*cap and arr
 * unchanged then).  The old storage is abandoned to the arena. */
void *arena_grow(Arena *a, void *arr, int n, int *cap, size_t elem, int first);

/* A growable array of pointers in an arena (old storage is abandoned to the
 * arena when it grows, which is fine for compile-time lifetimes). */
typedef struct PtrVec {
  void **v;
  int n, cap;
} PtrVec;

void ptrvec_push(Arena *a, PtrVec *pv, void *p);

#endif
