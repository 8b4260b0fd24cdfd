/* diag.h - source files, spans and clang-style diagnostics.
 *
 * A SrcSet owns every source text of one compilation (the main file and the
 * modules it uses).  A Span points into one of them.  Diagnostics are
 * collected in a DiagList (never printed by the library) and rendered on
 * demand as
 *
 *   file:line:col: error: message
 *     x = foo(y)
 *         ^~~
 *   file:line:col: note: 'y' was bound here
 *     ...
 */
#ifndef RA_DIAG_H
#define RA_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/arena.h"

typedef struct Span {
  int32_t file;   /* index in SrcSet; -1 = no location */
  int32_t line;   /* 1-based */
  int32_t col;    /* 1-based, in bytes */
  uint32_t off;   /* byte offset of the first byte */
  uint32_t len;   /* bytes covered (0 is shown as one caret) */
} Span;

#define SPAN_NONE ((Span){-1, 0, 0, 0, 0})

typedef struct SrcFile {
  const char *path;  /* as the user named it (shown in diagnostics) */
  const char *dir;   /* directory of path, for `use` resolution */
  const char *text;  /* NUL-terminated copy; may contain NUL bytes inside */
  size_t len;
} SrcFile;

typedef struct SrcSet {
  Arena *arena;
  SrcFile *files;
  int n, cap;
} SrcSet;

void src_init(SrcSet *s, Arena *arena);
/* Adds a copy of text; returns the file index. */
int src_add(SrcSet *s, const char *path, const char *text, size_t len);
/* Span covering both a and b (same file assumed). */
Span span_join(Span a, Span b);

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
  DiagLevel level;
  Span span;
  const char *msg;
  struct Diag *notes;  /* linked notes attached to this diagnostic */
  struct Diag *next;
} Diag;

typedef struct DiagList {
  Arena *arena;
  const SrcSet *src;
  Diag *head, *tail;
  int nerrors;
  int max_errors;      /* stop recording after this many (default 50) */
} DiagList;

void diag_init(DiagList *d, Arena *arena, const SrcSet *src);
/* Records an error; returns it so notes can be attached. */
Diag *diag_error(DiagList *d, Span at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
Diag *diag_warning(DiagList *d, Span at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_note(DiagList *d, Diag *parent, Span at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
Diag *diag_verror(DiagList *d, DiagLevel lvl, Span at, const char *fmt, va_list ap);

/* Renders all diagnostics (with source lines and carets) into a NUL-terminated
 * string allocated in the list's arena.  color != 0 adds ANSI colors. */
char *diag_render(const DiagList *d, int color);
/* Renders one diagnostic (with its notes). */
char *diag_render_one(const DiagList *d, const Diag *g, int color);

/* "did you mean": the candidate closest to name by edit distance, or NULL
 * when none is close enough. */
const char *diag_suggest(const char *name, const char *const *cands, int n);

#endif
