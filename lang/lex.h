/* lex.h - the lexer's tokens and state (internal to lang/).
 *
 * The lexer (lexer.re, compiled by re2c) turns one source file into tokens
 * whose kinds are the TK_ codes lemon writes to parser.h.  It reports its own
 * errors (with exact line:col) to the DiagList and recovers by skipping the
 * bad bytes, so the parser only ever sees well-formed tokens.
 */
#ifndef RA_LEX_H
#define RA_LEX_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/arena.h"
#include "diag.h"

enum {
  LEX_MAX_DEPTH = 256,  /* ( [ { nesting limit */
  LEX_MAX_IDENT = 255,  /* identifier length limit in bytes */
  TK_EOF = 0,           /* lemon's end of input */
  TK_STOP = -1,         /* fatal lexical error: stop parsing */
};

typedef struct Tok {
  int kind;           /* TK_ code */
  Span span;
  const char *str;    /* NAME and keywords: the identifier; STRING: decoded text */
  uint32_t len;       /* bytes in str */
  double num;         /* NUMBER */
  int64_t ival;       /* NUMBER when is_int */
  bool is_int;        /* NUMBER written without '.' or exponent */
  bool kw;            /* a keyword (kept when lemon falls it back to NAME) */
} Tok;

typedef struct Lexer {
  Arena *arena;
  DiagList *diags;
  int file;
  const unsigned char *text, *cur, *end;
  const unsigned char *line_start;
  int32_t line;
  int last_kind;      /* kind of the last token returned; -2 before any */
  bool stopped;       /* a fatal error was reported; only TK_STOP from now */
  bool closing;       /* at the end: unclosed brackets reported, now closing */
  int depth;          /* open ( [ { */
  unsigned char open[LEX_MAX_DEPTH];
  Span open_span[LEX_MAX_DEPTH];
} Lexer;

void lex_init(Lexer *L, Arena *arena, DiagList *diags, const SrcFile *f, int file);
/* The next token; TK_EOF at the end (forever), TK_STOP after a fatal error. */
Tok lex_next(Lexer *L);
/* How a token kind is named in messages: "'('", "a name", "end of line". */
const char *lex_kind_name(int kind);

#endif
