/* diag.c - source sets, spans and clang-style diagnostics (see diag.h).
 *
 * Rendering follows clang and gcc:
 *
 *   path:line:col: error: message
 *   <the source line, tabs kept, unsafe bytes shown as '?'>
 *   <caret line: '^' at the start of the span, '~' under the rest>
 *
 * Lines longer than RENDER_WIDTH bytes are clipped to a window around the
 * caret ("..." marks the cut).  A span with file -1 renders as
 * "rac: error: message".  After max_errors errors one final "too many
 * errors" line is recorded and further errors are dropped; nerrors then
 * exceeds max_errors, which is how callers know to stop.
 */
#include "diag.h"

#include <string.h>

#include "../base/sbuf.h"

enum {
  RENDER_WIDTH = 120,  /* longest source line shown unclipped */
  RENDER_BEFORE = 40,  /* bytes kept before the caret when clipping */
  SUGGEST_MAX = 255,   /* longest name diag_suggest compares */
};

/* ---- source sets ---- */

void src_init(SrcSet *s, Arena *arena) {
  memset(s, 0, sizeof *s);
  s->arena = arena;
}

static const char *dir_of(Arena *a, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return arena_strdup(a, ".");
  if (slash == path) return arena_strdup(a, "/");
  return arena_strndup(a, path, (size_t)(slash - path));
}

int src_add(SrcSet *s, const char *path, const char *text, size_t len) {
  if (!path) path = "<input>";
  if (!text) len = 0;
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 4;
    SrcFile *nf = arena_alloc(s->arena, sizeof(SrcFile) * (size_t)cap);
    if (!nf) return -1;
    if (s->n) memcpy(nf, s->files, sizeof(SrcFile) * (size_t)s->n);
    s->files = nf;
    s->cap = cap;
  }
  char *copy = arena_alloc(s->arena, len + 1);
  const char *p = arena_strdup(s->arena, path);
  const char *d = p ? dir_of(s->arena, p) : NULL;
  if (!copy || !p || !d) return -1;
  if (len) memcpy(copy, text, len);
  copy[len] = 0;
  SrcFile *f = &s->files[s->n];
  f->path = p;
  f->dir = d;
  f->text = copy;
  f->len = len;
  return s->n++;
}

Span span_join(Span a, Span b) {
  if (a.file < 0) return b;
  if (b.file < 0) return a;
  Span first = a.off <= b.off ? a : b;
  uint64_t end_a = (uint64_t)a.off + a.len, end_b = (uint64_t)b.off + b.len;
  uint64_t end = end_a > end_b ? end_a : end_b;
  Span r = first;
  r.len = (uint32_t)(end - first.off);
  return r;
}

/* ---- recording ---- */

void diag_init(DiagList *d, Arena *arena, const SrcSet *src) {
  memset(d, 0, sizeof *d);
  d->arena = arena;
  d->src = src;
  d->max_errors = 50;
}

static Diag *diag_new(DiagList *d, DiagLevel lvl, Span at, const char *fmt, va_list ap) {
  Diag *g = arena_alloc(d->arena, sizeof *g);
  if (!g) return NULL;
  SBuf b;
  sbuf_init(&b, d->arena);
  sbuf_vprintf(&b, fmt, ap);
  const char *m = sbuf_str(&b);
  g->level = lvl;
  g->span = at;
  g->msg = m ? m : "(out of memory while formatting a message)";
  return g;
}

static void diag_append(DiagList *d, Diag *g) {
  if (d->tail) d->tail->next = g;
  else d->head = g;
  d->tail = g;
}

static Diag *diag_too_many(DiagList *d, ...) {
  va_list ap;
  va_start(ap, d);
  Diag *g = diag_new(d, DIAG_ERROR, SPAN_NONE, "too many errors (more than %d); stopping here", ap);
  va_end(ap);
  return g;
}

Diag *diag_verror(DiagList *d, DiagLevel lvl, Span at, const char *fmt, va_list ap) {
  if (lvl == DIAG_ERROR) {
    if (d->max_errors > 0 && d->nerrors >= d->max_errors) {
      if (d->nerrors == d->max_errors) {
        d->nerrors++;
        Diag *g = diag_too_many(d, d->max_errors);
        if (g) diag_append(d, g);
      }
      return NULL;
    }
    d->nerrors++;
  }
  Diag *g = diag_new(d, lvl, at, fmt, ap);
  if (g) diag_append(d, g);
  return g;
}

Diag *diag_error(DiagList *d, Span at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Diag *g = diag_verror(d, DIAG_ERROR, at, fmt, ap);
  va_end(ap);
  return g;
}

Diag *diag_warning(DiagList *d, Span at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Diag *g = diag_verror(d, DIAG_WARNING, at, fmt, ap);
  va_end(ap);
  return g;
}

void diag_note(DiagList *d, Diag *parent, Span at, const char *fmt, ...) {
  if (!parent) return;  /* the parent was dropped (too many errors) */
  va_list ap;
  va_start(ap, fmt);
  Diag *g = diag_new(d, DIAG_NOTE, at, fmt, ap);
  va_end(ap);
  if (!g) return;
  Diag **pp = &parent->notes;
  while (*pp) pp = &(*pp)->next;
  *pp = g;
}

/* ---- rendering ---- */

#define C_BOLD "\033[1m"
#define C_RED "\033[1;31m"
#define C_MAGENTA "\033[1;35m"
#define C_GRAY "\033[1;30m"
#define C_GREEN "\033[1;32m"
#define C_RESET "\033[0m"

/* Appends text with control characters and invalid UTF-8 shown as '?'
 * (tabs kept).  Runs of plain ASCII are copied at once. */
static void add_safe(SBuf *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && ((u[j] >= 0x20 && u[j] < 0x7f) || u[j] == '\t')) j++;
    if (j > i) {
      sbuf_addn(b, s + i, j - i);
      i = j;
      continue;
    }
    int k = u[i] >= 0x80 ? utf8_seq_len(u + i, n - i, NULL) : 0;
    if (k > 0) {
      sbuf_addn(b, s + i, (size_t)k);
      i += (size_t)k;
    } else {
      sbuf_addc(b, '?');
      i++;
    }
  }
}

static const SrcFile *span_file(const DiagList *d, Span s) {
  if (s.file < 0 || !d->src || s.file >= d->src->n) return NULL;
  return &d->src->files[s.file];
}

/* The source line under the span and the caret line below it. */
static void render_snippet(SBuf *b, const SrcFile *f, Span s, int color) {
  const unsigned char *t = (const unsigned char *)f->text;
  size_t len = f->len;
  size_t off = s.off <= len ? s.off : len;
  size_t ls = off;
  while (ls > 0 && t[ls - 1] != '\n') ls--;
  const unsigned char *nl = memchr(t + off, '\n', len - off);
  size_t le = nl ? (size_t)(nl - t) : len;
  if (le > ls && t[le - 1] == '\r' && off < le) le--;
  size_t end = off + (s.len ? s.len : 1);
  if (end > le) end = le;

  /* the window shown */
  size_t ws = ls, we = le;
  if (le - ls > RENDER_WIDTH) {
    ws = off > ls + RENDER_BEFORE ? off - RENDER_BEFORE : ls;
    while (ws < off && (t[ws] & 0xC0) == 0x80) ws++;
    we = ws + RENDER_WIDTH < le ? ws + RENDER_WIDTH : le;
    while (we > off && we < le && (t[we] & 0xC0) == 0x80) we--;
  }
  if (end > we) end = we;

  /* the source line, then the caret line: one mark per character shown
   * (a tab under a tab keeps the alignment on any terminal) */
  if (ws > ls) sbuf_add(b, "...");
  add_safe(b, (const char *)t + ws, we - ws);
  if (we < le) sbuf_add(b, "...");
  sbuf_addc(b, '\n');

  char caret[RENDER_WIDTH + 16];
  size_t cn = 0;
  if (ws > ls) {
    memcpy(caret, "   ", 3);
    cn = 3;
  }
  int caret_done = 0;
  size_t i = ws;
  while (i < we && cn < sizeof caret - 1) {
    unsigned c = t[i];
    size_t k = 1;
    if (c >= 0x80) {
      int q = utf8_seq_len(t + i, we - i, NULL);
      if (q > 0) k = (size_t)q;
    }
    if (i + k <= off) caret[cn++] = c == '\t' ? '\t' : ' ';
    else if (!caret_done) { caret[cn++] = '^'; caret_done = 1; }
    else if (i < end) caret[cn++] = '~';
    else break;
    i += k;
  }
  if (!caret_done && cn < sizeof caret - 1) caret[cn++] = '^';  /* at the end of the line */
  size_t lead = 0;
  while (lead < cn && (caret[lead] == ' ' || caret[lead] == '\t')) lead++;
  sbuf_addn(b, caret, lead);
  if (color) sbuf_add(b, C_GREEN);
  sbuf_addn(b, caret + lead, cn - lead);
  if (color) sbuf_add(b, C_RESET);
  sbuf_addc(b, '\n');
}

static void render_diag(SBuf *b, const DiagList *d, const Diag *g, int color) {
  static const char *const names[] = {"error", "warning", "note"};
  static const char *const colors[] = {C_RED, C_MAGENTA, C_GRAY};
  int lvl = g->level >= DIAG_ERROR && g->level <= DIAG_NOTE ? (int)g->level : 0;
  const SrcFile *f = span_file(d, g->span);
  if (color) sbuf_add(b, C_BOLD);
  if (!f) sbuf_add(b, "rac: ");
  else {
    add_safe(b, f->path, strlen(f->path));
    if (g->span.line > 0) sbuf_printf(b, ":%d:%d: ", (int)g->span.line, (int)g->span.col);
    else sbuf_add(b, ": ");
  }
  if (color) sbuf_add(b, colors[lvl]);
  sbuf_add(b, names[lvl]);
  sbuf_add(b, ": ");
  if (color) sbuf_add(b, C_RESET C_BOLD);
  add_safe(b, g->msg, strlen(g->msg));
  if (color) sbuf_add(b, C_RESET);
  sbuf_addc(b, '\n');
  if (f && g->span.line > 0) render_snippet(b, f, g->span, color);
}

static void render_with_notes(SBuf *b, const DiagList *d, const Diag *g, int color) {
  render_diag(b, d, g, color);
  for (const Diag *n = g->notes; n; n = n->next) render_diag(b, d, n, color);
}

char *diag_render_one(const DiagList *d, const Diag *g, int color) {
  SBuf b;
  sbuf_init(&b, d->arena);
  if (g) render_with_notes(&b, d, g, color);
  return sbuf_str(&b);
}

char *diag_render(const DiagList *d, int color) {
  SBuf b;
  sbuf_init(&b, d->arena);
  for (const Diag *g = d->head; g; g = g->next) render_with_notes(&b, d, g, color);
  return sbuf_str(&b);
}

/* ---- "did you mean" ---- */

/* Optimal string alignment distance (Levenshtein plus adjacent swaps). */
static int edit_distance(const char *a, int n, const char *b, int m) {
  int rows[3][SUGGEST_MAX + 2];
  int *pp = rows[0], *prev = rows[1], *cur = rows[2];
  for (int j = 0; j <= m; j++) prev[j] = j;
  for (int i = 1; i <= n; i++) {
    cur[0] = i;
    for (int j = 1; j <= m; j++) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      if (prev[j - 1] + cost < v) v = prev[j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
        v = pp[j - 2] + 1;
      cur[j] = v;
    }
    int *t = pp;
    pp = prev;
    prev = cur;
    cur = t;
  }
  return prev[m];
}

const char *diag_suggest(const char *name, const char *const *cands, int n) {
  if (!name || !cands) return NULL;
  size_t nl = strlen(name);
  if (nl == 0 || nl > SUGGEST_MAX) return NULL;
  int limit = (int)nl / 3 > 1 ? (int)nl / 3 : 1;
  const char *best = NULL;
  int best_d = limit + 1;
  for (int i = 0; i < n; i++) {
    const char *c = cands[i];
    if (!c) continue;
    size_t cl = strlen(c);
    if (cl > SUGGEST_MAX) continue;
    int diff = (int)cl - (int)nl;
    if (diff < 0) diff = -diff;
    if (diff >= best_d) continue;
    if (strcmp(c, name) == 0) continue;  /* suggesting the name itself helps nobody */
    int dist = edit_distance(name, (int)nl, c, (int)cl);
    if (dist < best_d) {
      best_d = dist;
      best = c;
    }
  }
  return best;
}
