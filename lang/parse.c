/* parse.c - ra_parse: drives the lexer and the lemon parser over one file,
 * and words syntax errors.
 *
 * Tokens stream from the lexer straight into the parser (no token array).
 * Each token is checked against the parser state before it is fed, so a
 * syntax error is worded from what the state expected ("expected ',' or
 * ')' before '2'") before lemon's default reductions blur it.  While the
 * parser discards tokens after an error, whole { } groups are skipped, so a
 * bad line that opens a block cannot close the body around it.  A
 * declaration keyword at the start of a statement means the body before it
 * lacks its '}': that is reported once and the body is closed there.  Parsing stops at the end of the file, after a fatal lexical
 * error (nesting limit), when the parser stack is full, or once the error
 * limit of the DiagList is passed.  Running out of memory unwinds through
 * the arena's oom_jmp and returns NULL.
 */
#include <setjmp.h>
#include <string.h>

#include "astb.h"
#include "parser.h"
#include "../base/sbuf.h"

/* parser.c (generated from parser.y) */
size_t lang_parser_size(void);
void lang_parser_init(void *p, PState *ps);
bool lang_parser_recovering(const void *p);
bool lang_parser_precheck(void *parser, PState *ps, Tok t);
bool lang_parser_expects(const void *parser, int kind);
void lang_parser(void *p, int major, Tok minor);
void lang_parserFinalize(void *p);

/* ---- syntax error messages ---- */

/* How the offending token is named: 'text', end of line, end of file. */
static const char *tok_desc(PState *ps, Tok t) {
  if (t.kind == TK_EOF) return "end of file";
  if (t.kind == TK_NEWLINE)
    return t.span.off >= ps->src->len ? "end of file" : "end of line";
  size_t off = t.span.off, n = t.span.len;
  if (off > ps->src->len) off = ps->src->len;
  if (n > ps->src->len - off) n = ps->src->len - off;
  const unsigned char *s = (const unsigned char *)ps->src->text + off;
  bool cut = false;
  if (n > 32) {
    n = 32;
    while (n > 0 && (s[n] & 0xC0) == 0x80) n--;
    cut = true;
  }
  return arena_printf(ps->arena, "'%.*s%s'", (int)n, (const char *)s, cut ? "..." : "");
}

static void add_part(const char **parts, int *np, const char *p) {
  if (*np < 6) parts[(*np)++] = p;
}

void parse_syntax_error(PState *ps, Tok t, const bool *acc, int nacc) {
  if (ps->lex->closing) return;  /* after "expected '}' to close '{'" */
  if (nacc <= TK_GRAD) return;
  if (t.kw && acc[TK_NAME]) {
    diag_error(ps->diags, t.span, "'%s' is a keyword and cannot be used as a name", t.str);
    return;
  }
  Tok p = ps->prev;
  if (t.kind == TK_EQ && p.kw && !acc[TK_EQ] &&
      (p.kind == TK_LOSS || p.kind == TK_REPEAT || p.kind == TK_RETURN)) {
    diag_error(ps->diags, p.span, "'%s' is a keyword and cannot be used as a name", p.str);
    return;
  }

  const char *parts[6];
  int np = 0;
  bool expr = acc[TK_NUMBER] && acc[TK_NAME] && acc[TK_LPAREN] && acc[TK_MINUS];
  bool stmt = acc[TK_INPUT] && acc[TK_LOSS] && acc[TK_NAME];
  bool item = acc[TK_MODEL] && acc[TK_TRAIN] && !acc[TK_NAME];
  bool words = !stmt && acc[TK_NAME] && acc[TK_NUMBER] && acc[TK_LBRACE] && acc[TK_RBRACE];
  if (item) {
    add_part(parts, &np,
             "a declaration ('model', 'train', 'data', 'const', 'block', 'extern' or 'use')");
  } else if (stmt) {
    add_part(parts, &np, "a statement");
    if (acc[TK_RBRACE]) add_part(parts, &np, "'}'");
  } else if (words) {
    add_part(parts, &np, "a clause word");
    add_part(parts, &np, "a value");
    add_part(parts, &np, "'}'");
  } else {
    if (expr) add_part(parts, &np, "an expression");
    else if (acc[TK_NAME]) add_part(parts, &np, "a name");
    else if (acc[TK_NUMBER]) add_part(parts, &np, "a number");
    if (acc[TK_STRING] && !expr) add_part(parts, &np, "a string");
    static const int punct[] = {TK_EQ,     TK_COLON, TK_COMMA, TK_RPAREN, TK_RBRACKET,
                                TK_LPAREN, TK_LBRACKET, TK_LBRACE, TK_RBRACE, TK_ARROW,
                                TK_DOTDOT, TK_ON,    TK_FN,    TK_FROM,   TK_GRAD};
    for (size_t i = 0; i < sizeof punct / sizeof punct[0]; i++) {
      int k = punct[i];
      if (!acc[k]) continue;
      /* '(' '[' '{' that would only continue an operand are not worth naming */
      if ((k == TK_LPAREN || k == TK_LBRACKET) && (expr || acc[TK_PLUS])) continue;
      if (k == TK_LBRACE && acc[TK_PLUS]) continue;
      if (k == TK_RBRACE && acc[TK_NEWLINE]) continue;
      add_part(parts, &np, lex_kind_name(k));
    }
    if (acc[TK_NEWLINE]) add_part(parts, &np, "end of line");
    if (np == 0) {
      static const int ops[] = {TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_PERCENT, TK_AT};
      for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (acc[ops[i]]) add_part(parts, &np, lex_kind_name(ops[i]));
    }
    if (np == 0 && acc[TK_EOF]) add_part(parts, &np, "end of file");
  }
  SBuf b;
  sbuf_init(&b, ps->arena);
  for (int i = 0; i < np; i++) {
    if (i) sbuf_add(&b, i == np - 1 ? " or " : ", ");
    sbuf_add(&b, parts[i]);
  }
  const char *what = np ? sbuf_str(&b) : NULL;
  if (what)
    diag_error(ps->diags, t.span, "expected %s before %s", what, tok_desc(ps, t));
  else
    diag_error(ps->diags, t.span, "unexpected %s", tok_desc(ps, t));
}

void parse_too_deep(PState *ps) {
  ps->stop = true;
  diag_error(ps->diags, ps->cur.span,
             "nested too deeply here (the parser's stack is full); simplify the expression");
}

/* ---- the driver ---- */

static bool over_limit(const DiagList *d) {
  return d->max_errors > 0 && d->nerrors > d->max_errors;
}

static void feed(PState *ps, void *parser, Tok t) {
  ps->cur = t;
  ps->reported = lang_parser_precheck(parser, ps, t);
  lang_parser(parser, t.kind, t);
  ps->prev = t;
}

static bool is_decl_keyword(int kind) {
  return kind == TK_MODEL || kind == TK_TRAIN || kind == TK_DATA || kind == TK_CONST ||
         kind == TK_BLOCK || kind == TK_EXTERN || kind == TK_USE;
}

/* A declaration keyword at the start of a statement: the body (or bodies)
 * before it lack their '}'.  Reports that once, then closes them with
 * synthetic tokens so the declaration parses normally. */
static Tok synthetic(Tok at, int kind) {
  Tok t = at;
  t.kind = kind;
  t.span.len = 0;
  t.kw = false;
  t.str = NULL;
  return t;
}

static void close_open_bodies(PState *ps, void *parser, Tok t) {
  Lexer *L = ps->lex;
  bool told = false;
  while (!ps->stop && L->depth > 0 && L->open[L->depth - 1] == '{' &&
         lang_parser_expects(parser, TK_INPUT) && lang_parser_expects(parser, TK_RBRACE)) {
    Span o = L->open_span[L->depth - 1];
    if (!told) {
      Diag *g = diag_error(ps->diags, t.span, "expected '}' to close '{' opened at line %d before %s",
                           (int)o.line, tok_desc(ps, t));
      diag_note(ps->diags, g, o, "to match this '{'");
      told = true;
    }
    L->depth--;
    feed(ps, parser, synthetic(t, TK_RBRACE));
    /* ends the statement (repeat) or the item the body belonged to */
    if (lang_parser_expects(parser, TK_NEWLINE)) feed(ps, parser, synthetic(t, TK_NEWLINE));
  }
}

static void parse_run(PState *ps, void *parser) {
  int skip = 0;  /* depth of a { } group being skipped during recovery */
  for (;;) {
    Tok t = lex_next(ps->lex);
    if (t.kind == TK_STOP) break;
    if (skip > 0 && t.kind != TK_EOF) {
      if (t.kind == TK_LBRACE) skip++;
      else if (t.kind == TK_RBRACE) skip--;
      continue;
    }
    if (t.kind == TK_LBRACE && lang_parser_recovering(parser)) {
      skip = 1;
      continue;
    }
    if (is_decl_keyword(t.kind) && (ps->prev.kind == TK_NEWLINE || ps->prev.kind == TK_SEMI))
      close_open_bodies(ps, parser, t);
    if (ps->stop || over_limit(ps->diags)) break;
    feed(ps, parser, t);
    if (ps->stop || t.kind == TK_EOF || over_limit(ps->diags)) break;
    if (t.kind == TK_LBRACE && lang_parser_recovering(parser)) skip = 1;
  }
}

AstFile *ra_parse(Arena *arena, SrcSet *s, int file, DiagList *diags) {
  if (!arena || !s || !diags || file < 0 || file >= s->n) return NULL;
  const SrcFile *f = &s->files[file];
  AstFile *af = arena_alloc(arena, sizeof *af);
  if (!af) return NULL;
  af->file = file;
  if (f->len >= (size_t)UINT32_MAX - 16) {
    Span where = {file, 0, 0, 0, 0};
    diag_error(diags, where, "the file is too large (%zu bytes; the limit is 4 GiB)", f->len);
    return af;
  }

  /* the parser engine (about 150 KB of stack) comes from the allocator
   * unzeroed and is freed here; everything else lives in the arena */
  size_t psize = lang_parser_size();
  void *volatile parser = ra_malloc(&arena->alloc, psize);
  if (!parser) {
    diag_error(diags, SPAN_NONE, "out of memory while parsing %s", f->path);
    return NULL;
  }

  jmp_buf jb;
  jmp_buf *saved = arena->oom_jmp;
  if (setjmp(jb)) {
    arena->oom_jmp = saved;
    ra_free_mem(&arena->alloc, parser, psize);
    diag_error(diags, SPAN_NONE, "out of memory while parsing %s", f->path);
    return NULL;
  }
  arena->oom_jmp = &jb;

  Lexer *lx = arena_alloc(arena, sizeof *lx);
  PState *ps = arena_alloc(arena, sizeof *ps);
  lex_init(lx, arena, diags, f, file);
  ps->arena = arena;
  ps->diags = diags;
  ps->file = file;
  ps->src = f;
  ps->lex = lx;
  lang_parser_init(parser, ps);
  parse_run(ps, parser);
  lang_parserFinalize(parser);

  af->items = (AstItem **)ps->items.v;
  af->nitems = ps->items.n;
  arena->oom_jmp = saved;
  ra_free_mem(&arena->alloc, parser, psize);
  return af;
}
