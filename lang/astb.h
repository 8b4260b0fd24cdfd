/* astb.h - the parse state and the AST builders the grammar calls
 * (internal to lang/).
 *
 * Grammar actions in parser.y stay one line: they hand tokens and finished
 * sub-trees to these builders (ast.c), which allocate nodes in the arena,
 * compute spans, and report the errors a grammar cannot express (keywords
 * used as names, unknown type words, over-deep expressions).  Items are
 * appended to PState.items as they complete, so error recovery never loses
 * the ones already built.
 */
#ifndef RA_ASTB_H
#define RA_ASTB_H

#include "ast.h"
#include "lex.h"

typedef struct PState {
  Arena *arena;
  DiagList *diags;
  int file;
  const SrcFile *src;
  Lexer *lex;
  PtrVec items;        /* AstItem* */
  Tok prev;            /* the token fed before `cur` */
  Tok cur;             /* the token being fed */
  bool stop;           /* parser stack overflow: stop feeding */
  bool reported;       /* the syntax error at `cur` is already reported */
  bool deep_reported;  /* "too deeply nested" already said once */
} PState;

/* growable lists used while a construct is open */
typedef struct ArgBuf {
  PtrVec pos;          /* AstExpr* */
  AstKwarg *kw;
  int nkw, kwcap;
} ArgBuf;

typedef struct WordBuf {
  AstWord *w;
  int n, cap;
} WordBuf;

typedef struct ParamBuf {
  AstParam *p;
  int n, cap;
} ParamBuf;

typedef struct TDims {
  PtrVec dims;         /* AstExpr* */
  bool unsized;
  Span span;           /* '[' .. ']' */
} TDims;

typedef struct Body {
  PtrVec stmts;        /* AstStmt* */
  Span span;           /* '{' .. '}' */
} Body;

/* the name in a name position; reports a keyword used as a name */
Tok astb_name_tok(PState *ps, Tok t);

/* expressions */
AstExpr *astb_num(PState *ps, Tok t);
AstExpr *astb_str(PState *ps, Tok t);
AstExpr *astb_name(PState *ps, Tok t);
AstExpr *astb_binary(PState *ps, AstExpr *a, Tok op, AstExpr *b);
AstExpr *astb_neg(PState *ps, Tok minus, AstExpr *a);
AstExpr *astb_paren(PState *ps, Tok lp, AstExpr *e, Tok rp);
AstExpr *astb_call(PState *ps, Tok name, ArgBuf *args, Tok rp, AstClauses *cl);
AstExpr *astb_list(PState *ps, Tok lb, PtrVec *items, Tok rb);
AstExpr *astb_range(PState *ps, AstExpr *a, AstExpr *b);
PtrVec *astb_exprs(PState *ps, PtrVec *v, AstExpr *e);   /* v NULL: a new list */
ArgBuf *astb_arg(PState *ps, ArgBuf *b, AstExpr *e);     /* b NULL: a new list */
ArgBuf *astb_kwarg(PState *ps, ArgBuf *b, Tok name, AstExpr *e);

/* clause blocks */
WordBuf *astb_words(PState *ps);
WordBuf *astb_word_ident(PState *ps, WordBuf *b, Tok t);
WordBuf *astb_word_value(PState *ps, WordBuf *b, AstExpr *e);
WordBuf *astb_word_block(PState *ps, WordBuf *b, AstClauses *c);
WordBuf *astb_word_sep(PState *ps, WordBuf *b, Tok t);
AstClauses *astb_clauses(PState *ps, Tok lb, WordBuf *b, Tok rb);

/* types */
TDims *astb_dims(PState *ps, Tok lb, PtrVec *dims, Tok rb);  /* dims NULL: [] */
AstType *astb_type(PState *ps, Tok word, AstExpr *classes, Tok rp, TDims *dims);

/* statements */
Body *astb_body(PState *ps, PtrVec *stmts, AstStmt *last, Tok lb, Tok rb);
PtrVec *astb_stmts(PState *ps, PtrVec *v, AstStmt *s);     /* v NULL: new */
AstStmt *astb_decl(PState *ps, StmtKind kind, Tok kw, Tok name, AstType *t);
AstStmt *astb_bind(PState *ps, Tok name, AstExpr *e);
AstStmt *astb_output(PState *ps, Tok kw, Tok name, AstExpr *e);
AstStmt *astb_keyexpr(PState *ps, StmtKind kind, Tok kw, AstExpr *e);
AstStmt *astb_repeat(PState *ps, Tok kw, AstExpr *count, Body *b);

/* parameters */
ParamBuf *astb_bparam(PState *ps, ParamBuf *b, Tok name, AstExpr *def);
ParamBuf *astb_xparam(PState *ps, ParamBuf *b, Tok name, AstType *t);

/* items (appended to ps->items) */
void astb_use(PState *ps, Tok kw, Tok path);
void astb_const(PState *ps, Tok kw, Tok name, AstExpr *e);
void astb_data(PState *ps, Tok kw, Tok name, AstExpr *e);
void astb_block(PState *ps, Tok kw, Tok name, ParamBuf *params, Body *b);
void astb_model(PState *ps, Tok kw, Tok name, Body *b);
void astb_train(PState *ps, Tok kw, Tok model, Tok data, AstClauses *c);
void astb_extern(PState *ps, Tok kw, Tok name, ParamBuf *params, AstType *ret, Tok from,
                 Tok grad);

/* parse.c: a syntax error at token t; acc[k] says which token kinds the
 * parser would have accepted instead (k < nacc). */
void parse_syntax_error(PState *ps, Tok t, const bool *acc, int nacc);
void parse_too_deep(PState *ps);

#endif
