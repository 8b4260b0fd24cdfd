/* lexer.re - the lexer of .ra files (re2c; see lex.h and language.md §2).
 *
 * re2c turns the rules below into a DFA over bytes.  The source copy in the
 * SrcSet always ends with a NUL, which is the sentinel: no rule but the
 * explicit "\x00" one can match a NUL, so the DFA never reads past it, and a
 * NUL before the end is reported as an error.  Strings and comments are
 * scanned by plain C loops (escapes, UTF-8 validation).
 *
 * Newlines: a NEWLINE token ends each line, except inside ( ) and [ ] (a
 * stack of open brackets tells; inside { } newlines are emitted).  Runs of
 * blank lines and comment lines give one NEWLINE, none comes before the
 * first token, and one is added at the end of the file if missing.  At the
 * end of the file every unclosed bracket is reported once and then closed
 * by a synthetic token, so the parser can finish the tree.
 *
 * Type words: `f32`, `int` and `class` are plain identifiers, not keywords;
 * the parser checks them where a type is expected, so they stay usable as
 * names elsewhere.  The keywords are those of language.md §2.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"
#include "parser.h"
#include "../base/sbuf.h"

void lex_init(Lexer *L, Arena *arena, DiagList *diags, const SrcFile *f, int file) {
  memset(L, 0, sizeof *L);
  L->arena = arena;
  L->diags = diags;
  L->file = file;
  L->text = (const unsigned char *)f->text;
  L->cur = L->text;
  L->end = L->text + f->len;
  L->line_start = L->text;
  L->line = 1;
  L->last_kind = -2;
}

static Span span_at(const Lexer *L, const unsigned char *p, size_t len) {
  Span s;
  s.file = L->file;
  s.line = L->line;
  s.col = (int32_t)(p - L->line_start) + 1;
  s.off = (uint32_t)(p - L->text);
  s.len = (uint32_t)len;
  return s;
}

static Diag *lex_error(Lexer *L, const unsigned char *p, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static Diag *lex_error(Lexer *L, const unsigned char *p, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Diag *g = diag_verror(L->diags, DIAG_ERROR, span_at(L, p, len), fmt, ap);
  va_end(ap);
  if (L->diags->max_errors > 0 && L->diags->nerrors > L->diags->max_errors) L->stopped = true;
  return g;
}

static Tok tok_make(Lexer *L, int kind, const unsigned char *p, const unsigned char *q) {
  Tok t;
  memset(&t, 0, sizeof t);
  t.kind = kind;
  t.span = span_at(L, p, (size_t)(q - p));
  L->last_kind = kind;
  return t;
}

static Tok tok_kw(Lexer *L, int kind, const char *word, const unsigned char *p,
                  const unsigned char *q) {
  Tok t = tok_make(L, kind, p, q);
  t.str = word;
  t.len = (uint32_t)(q - p);
  t.kw = true;
  return t;
}

/* An operator token that is also a clause word (its text in str). */
static Tok tok_op(Lexer *L, int kind, const char *text, const unsigned char *p,
                  const unsigned char *q) {
  Tok t = tok_make(L, kind, p, q);
  t.str = text;
  t.len = (uint32_t)(q - p);
  return t;
}

static Tok tok_stop(Lexer *L) {
  L->stopped = true;
  Tok t;
  memset(&t, 0, sizeof t);
  t.kind = TK_STOP;
  t.span = span_at(L, L->cur, 0);
  return t;
}

static const char *closer_of(unsigned char open) {
  return open == '(' ? ")" : open == '[' ? "]" : "}";
}

static int closer_kind(unsigned char open) {
  return open == '(' ? TK_RPAREN : open == '[' ? TK_RBRACKET : TK_RBRACE;
}

/* An opening bracket: pushed, or a fatal error past the nesting limit. */
static int lex_open(Lexer *L, unsigned char c, const unsigned char *p) {
  if (L->depth >= LEX_MAX_DEPTH) {
    lex_error(L, p, 1, "nesting is too deep (more than %d levels)", LEX_MAX_DEPTH);
    L->stopped = true;
    return 0;
  }
  L->open[L->depth] = c;
  L->open_span[L->depth] = span_at(L, p, 1);
  L->depth++;
  return 1;
}

/* A closing bracket pops its opener (and any unclosed ones above it); a
 * closer without an opener is left to the parser to report. */
static void lex_close(Lexer *L, unsigned char open) {
  for (int i = L->depth - 1; i >= 0; i--) {
    if (L->open[i] == open) {
      L->depth = i;
      return;
    }
  }
}

/* At the end of the file: report the innermost unclosed bracket once, then
 * close all of them with synthetic tokens. */
static Tok lex_at_end(Lexer *L) {
  const unsigned char *p = L->end;
  if (L->depth > 0 && !L->closing) {
    L->closing = true;
    int i = L->depth - 1;
    Span o = L->open_span[i];
    unsigned char c = L->open[i];
    /* shown at the end of the last line, not on the empty line after it */
    Span at = span_at(L, p, 0);
    if (p > L->text && p[-1] == '\n') {
      const unsigned char *ls = p - 1;
      while (ls > L->text && ls[-1] != '\n') ls--;
      at.line = L->line - 1;
      at.col = (int32_t)(p - 1 - ls) + 1;
      at.off = (uint32_t)(p - 1 - L->text);
    }
    Diag *g = diag_error(L->diags, at, "expected '%s' to close '%c' opened at line %d",
                         closer_of(c), c, (int)o.line);
    if (L->diags->max_errors > 0 && L->diags->nerrors > L->diags->max_errors) L->stopped = true;
    diag_note(L->diags, g, o, "to match this '%c'", c);
    if (L->stopped) return tok_stop(L);
  }
  if (L->depth > 0) {
    L->depth--;
    return tok_make(L, closer_kind(L->open[L->depth]), p, p);
  }
  if (L->last_kind != -2 && L->last_kind != TK_NEWLINE && L->last_kind != TK_SEMI &&
      L->last_kind != TK_EOF)
    return tok_make(L, TK_NEWLINE, p, p);
  return tok_make(L, TK_EOF, p, p);
}

/* A comment from '#' to the end of the line: UTF-8 must be valid there. */
static void lex_comment(Lexer *L, const unsigned char *p) {
  while (p < L->end && *p != '\n' && !L->stopped) {
    unsigned c = *p;
    if (c < 0x80) {
      if (c == 0) lex_error(L, p, 1, "NUL byte in a comment");
      p++;
      continue;
    }
    int k = utf8_seq_len(p, (size_t)(L->end - p), NULL);
    if (k == 0) {
      lex_error(L, p, 1, "invalid UTF-8 byte 0x%02X in a comment", c);
      k = 1;
    }
    p += k;
  }
  L->cur = p;
}

/* A string after its opening quote q.  Escapes: \" \\ \n \t. */
static Tok lex_string(Lexer *L, const unsigned char *q) {
  const unsigned char *p = q + 1, *end = L->end;
  /* find the end first, to size the decoded copy */
  const unsigned char *e = p;
  while (e < end && *e != '"' && *e != '\n') {
    if (*e == '\\' && e + 1 < end && e[1] != '\n') e++;
    e++;
  }
  bool closed = e < end && *e == '"';
  char *out = arena_alloc(L->arena, (size_t)(e - p) + 1);
  size_t n = 0;
  while (p < e && !L->stopped) {
    unsigned c = *p;
    if (c == '\\') {
      unsigned x = p + 1 < e ? p[1] : 0;
      if (p + 1 >= e) {  /* a backslash right before the end of the line */
        p++;
        continue;
      }
      char r = x == '"' ? '"' : x == '\\' ? '\\' : x == 'n' ? '\n' : x == 't' ? '\t' : 0;
      if (r) {
        if (out) out[n++] = r;
      } else if (x >= 0x20 && x < 0x7f) {
        lex_error(L, p, 2, "unknown escape sequence '\\%c' (known: \\\" \\\\ \\n \\t)", (char)x);
      } else {
        lex_error(L, p, 2, "unknown escape sequence: '\\' followed by byte 0x%02X", x);
      }
      p += 2;
      continue;
    }
    if (c == 0) {
      lex_error(L, p, 1, "NUL byte in a string");
      p++;
      continue;
    }
    if (c >= 0x80) {
      int k = utf8_seq_len(p, (size_t)(e - p), NULL);
      if (k == 0) {
        lex_error(L, p, 1, "invalid UTF-8 byte 0x%02X in a string", c);
        p++;
        continue;
      }
      if (out) memcpy(out + n, p, (size_t)k);
      n += (size_t)k;
      p += k;
      continue;
    }
    if (out) out[n++] = (char)c;
    p++;
  }
  if (!closed)
    lex_error(L, q, (size_t)(e - q), "missing closing '\"' before end of %s",
              e < end ? "line" : "file");
  L->cur = closed ? e + 1 : e;
  Tok t = tok_make(L, TK_STRING, q, L->cur);
  if (out) out[n] = 0;
  t.str = out ? out : "";
  t.len = out ? (uint32_t)n : 0;
  return t;
}

static const struct {
  int kind;
  const char *word;
} KEYWORDS[] = {
#define KW(tok, word) {tok, #word},
#include "keywords.def"
#undef KW
};

/* An identifier, or a keyword of keywords.def. */
static Tok lex_ident(Lexer *L, const unsigned char *p, const unsigned char *q) {
  size_t n = (size_t)(q - p);
  for (size_t i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++)
    if (strlen(KEYWORDS[i].word) == n && memcmp(KEYWORDS[i].word, p, n) == 0)
      return tok_kw(L, KEYWORDS[i].kind, KEYWORDS[i].word, p, q);
  if (n > LEX_MAX_IDENT) {
    lex_error(L, p, n, "identifier is %zu bytes long; the limit is %d", n, LEX_MAX_IDENT);
    n = LEX_MAX_IDENT;
  }
  Tok t = tok_make(L, TK_NAME, p, q);
  const char *s = arena_strndup(L->arena, (const char *)p, n);
  t.str = s ? s : "";
  t.len = s ? (uint32_t)n : 0;
  return t;
}

static Tok lex_int(Lexer *L, const unsigned char *p, const unsigned char *q) {
  Tok t = tok_make(L, TK_NUMBER, p, q);
  uint64_t v = 0;
  bool over = false;
  for (const unsigned char *s = p; s < q; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > ((uint64_t)INT64_MAX - d) / 10) { over = true; break; }
    v = v * 10 + d;
  }
  if (over) {
    lex_error(L, p, (size_t)(q - p), "integer literal does not fit in 64 bits");
    v = 0;
  }
  t.is_int = true;
  t.ival = (int64_t)v;
  t.num = (double)v;
  return t;
}

/* A float: digits [. digits] [e [+-] digits].  strtod reads the locale's
 * decimal point, so the digits are passed without one ("12.5e3" is read
 * as "125e2"), which every locale reads the same way. */
static Tok lex_float(Lexer *L, const unsigned char *p, const unsigned char *q) {
  Tok t = tok_make(L, TK_NUMBER, p, q);
  size_t n = (size_t)(q - p);
  char small[96];
  char *buf = n + 32 < sizeof small ? small : arena_alloc(L->arena, n + 32);
  if (!buf) return t;
  size_t k = 0;
  int64_t frac = 0, exp = 0;
  bool nonzero = false, in_frac = false;
  const unsigned char *s = p;
  for (; s < q && *s != 'e' && *s != 'E'; s++) {
    if (*s == '.') { in_frac = true; continue; }
    if (*s != '0') nonzero = true;
    buf[k++] = (char)*s;
    if (in_frac) frac++;
  }
  if (s < q) {  /* the exponent, saturated far beyond any double */
    s++;
    bool neg = s < q && *s == '-';
    if (s < q && (*s == '-' || *s == '+')) s++;
    for (; s < q; s++)
      if (exp < 100000000) exp = exp * 10 + (*s - '0');
    if (neg) exp = -exp;
  }
  exp -= frac;
  snprintf(buf + k, 32, "e%lld", (long long)exp);
  double v = strtod(buf, NULL);
  if (isinf(v) || (v == 0 && nonzero)) {
    lex_error(L, p, n, "floating-point literal is out of range");
    v = 0;
  }
  t.num = v;
  return t;
}

/* Anything no rule accepts: an ASCII character that is not part of the
 * language, a control byte, or a non-ASCII character outside strings and
 * comments (reported whole if it is valid UTF-8). */
static void lex_invalid(Lexer *L, const unsigned char *p) {
  unsigned c = *p;
  if (c >= 0x80) {
    unsigned cp = 0;
    int k = utf8_seq_len(p, (size_t)(L->end - p), &cp);
    if (k > 0) {
      lex_error(L, p, (size_t)k,
                "invalid character '%.*s' (U+%04X); outside strings and comments only ASCII "
                "is allowed",
                k, (const char *)p, cp);
      L->cur = p + k;
      return;
    }
    lex_error(L, p, 1, "invalid UTF-8 byte 0x%02X", c);
  } else if (c >= 0x20 && c < 0x7f) {
    lex_error(L, p, 1, "invalid character '%c'", (char)c);
  } else {
    lex_error(L, p, 1, "invalid character (byte 0x%02X)", c);
  }
  L->cur = p + 1;
}

/* A line end: a NEWLINE token (true, in *t) where statements can end,
 * nothing inside parentheses or after another line end. */
static bool lex_newline(Lexer *L, const unsigned char *tok, const unsigned char *cur, Tok *t) {
  L->cur = cur;
  bool in_parens = L->depth > 0 && L->open[L->depth - 1] != '{';
  bool emit = !in_parens && L->last_kind != -2 && L->last_kind != TK_NEWLINE;
  if (emit) *t = tok_make(L, TK_NEWLINE, tok, tok);
  L->line++;
  L->line_start = cur;
  return emit;
}

/* A number followed by letters: the error points at what follows the
 * number's own digits, fraction and exponent. */
static Tok lex_bad_suffix(Lexer *L, const unsigned char *tok, const unsigned char *cur) {
  const unsigned char *s = tok;
  while (s < cur && ((*s >= '0' && *s <= '9') || *s == '.')) s++;
  if (s < cur && (*s == 'e' || *s == 'E')) {
    const unsigned char *x = s + 1;
    if (x < cur && (*x == '+' || *x == '-')) x++;
    if (x < cur && *x >= '0' && *x <= '9') {
      s = x;
      while (s < cur && *s >= '0' && *s <= '9') s++;
    }
  }
  lex_error(L, s, (size_t)(cur - s), "invalid suffix '%.*s' on a number",
            (int)(cur - s > 32 ? 32 : cur - s), (const char *)s);
  Tok t = tok_make(L, TK_NUMBER, tok, cur);
  t.is_int = true;
  return t;
}

Tok lex_next(Lexer *L) {
  for (;;) {
    if (L->stopped) return tok_stop(L);
    const unsigned char *tok = L->cur, *cur = L->cur, *mar = L->cur;
    (void)mar;
/*!re2c
    re2c:define:YYCTYPE = "unsigned char";
    re2c:define:YYCURSOR = cur;
    re2c:define:YYMARKER = mar;
    re2c:yyfill:enable = 0;

    digit = [0-9];
    ident = [A-Za-z_][A-Za-z0-9_]*;
    frac  = "." digit+;
    exp   = [eE] [+-]? digit+;

    "\x00" {
      if (tok >= L->end) {
        L->cur = L->end;
        return lex_at_end(L);
      }
      L->cur = cur;
      lex_error(L, tok, 1, "NUL byte in the source");
      continue;
    }
    [ \t\r\f\v]+ { L->cur = cur; continue; }
    "\n" {
      Tok t;
      if (lex_newline(L, tok, cur, &t)) return t;
      continue;
    }
    "#" { lex_comment(L, cur); continue; }
    "\"" { return lex_string(L, tok); }

    ident    { L->cur = cur; return lex_ident(L, tok, cur); }

    digit+                       { L->cur = cur; return lex_int(L, tok, cur); }
    digit+ frac exp? | digit+ exp { L->cur = cur; return lex_float(L, tok, cur); }
    digit+ frac? [eE] [+-]? {
      L->cur = cur;
      lex_error(L, tok, (size_t)(cur - tok), "exponent has no digits");
      Tok t = tok_make(L, TK_NUMBER, tok, cur);
      t.is_int = true;
      return t;
    }
    digit+ frac? exp? ident { L->cur = cur; return lex_bad_suffix(L, tok, cur); }

    "(" { L->cur = cur; if (!lex_open(L, '(', tok)) return tok_stop(L); return tok_make(L, TK_LPAREN, tok, cur); }
    "[" { L->cur = cur; if (!lex_open(L, '[', tok)) return tok_stop(L); return tok_make(L, TK_LBRACKET, tok, cur); }
    "{" { L->cur = cur; if (!lex_open(L, '{', tok)) return tok_stop(L); return tok_make(L, TK_LBRACE, tok, cur); }
    ")" { L->cur = cur; lex_close(L, '('); return tok_make(L, TK_RPAREN, tok, cur); }
    "]" { L->cur = cur; lex_close(L, '['); return tok_make(L, TK_RBRACKET, tok, cur); }
    "}" { L->cur = cur; lex_close(L, '{'); return tok_make(L, TK_RBRACE, tok, cur); }
    "," { L->cur = cur; return tok_make(L, TK_COMMA, tok, cur); }
    ":" { L->cur = cur; return tok_make(L, TK_COLON, tok, cur); }
    ";" { L->cur = cur; return tok_make(L, TK_SEMI, tok, cur); }
    "=" { L->cur = cur; return tok_make(L, TK_EQ, tok, cur); }
    "+" { L->cur = cur; return tok_make(L, TK_PLUS, tok, cur); }
    "-" { L->cur = cur; return tok_make(L, TK_MINUS, tok, cur); }
    "*" { L->cur = cur; return tok_make(L, TK_STAR, tok, cur); }
    "/" { L->cur = cur; return tok_make(L, TK_SLASH, tok, cur); }
    "%" { L->cur = cur; return tok_make(L, TK_PERCENT, tok, cur); }
    "@" { L->cur = cur; return tok_make(L, TK_AT, tok, cur); }
    "->" { L->cur = cur; return tok_make(L, TK_ARROW, tok, cur); }
    "<=" { L->cur = cur; return tok_op(L, TK_CMP, "<=", tok, cur); }
    ">=" { L->cur = cur; return tok_op(L, TK_CMP, ">=", tok, cur); }
    "<" { L->cur = cur; return tok_op(L, TK_CMP, "<", tok, cur); }
    ">" { L->cur = cur; return tok_op(L, TK_CMP, ">", tok, cur); }
    ".." { L->cur = cur; return tok_make(L, TK_DOTDOT, tok, cur); }

    * { lex_invalid(L, tok); continue; }
*/
  }
}

const char *lex_kind_name(int kind) {
  switch (kind) {
  case TK_EOF: return "end of file";
  case TK_NEWLINE: return "end of line";
  case TK_NAME: return "a name";
  case TK_NUMBER: return "a number";
  case TK_STRING: return "a string";
  case TK_LPAREN: return "'('";
  case TK_RPAREN: return "')'";
  case TK_LBRACKET: return "'['";
  case TK_RBRACKET: return "']'";
  case TK_LBRACE: return "'{'";
  case TK_RBRACE: return "'}'";
  case TK_COMMA: return "','";
  case TK_COLON: return "':'";
  case TK_SEMI: return "';'";
  case TK_EQ: return "'='";
  case TK_PLUS: return "'+'";
  case TK_MINUS: return "'-'";
  case TK_STAR: return "'*'";
  case TK_SLASH: return "'/'";
  case TK_PERCENT: return "'%'";
  case TK_AT: return "'@'";
  case TK_ARROW: return "'->'";
  case TK_DOTDOT: return "'..'";
  case TK_CMP: return "a comparison";
#define KW(tok, word) \
  case tok: return "'" #word "'";
#include "keywords.def"
#undef KW
  default: return "a token";
  }
}
