/* ast.h - the syntax tree of a .ra file.
 *
 * Built by the lemon parser (parser.y) through the builders in ast.c; every
 * node lives in the compilation arena and carries a Span.  The tree is purely
 * syntactic: names are not resolved and clause blocks are kept as flat word
 * lists, which sema reads against a per-context schema (so `{ lr 3e-3
 * weight_decay 0.01 }` and one clause per line mean the same).
 */
#ifndef RA_AST_H
#define RA_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"

typedef struct AstExpr AstExpr;
typedef struct AstStmt AstStmt;
typedef struct AstClauses AstClauses;
typedef struct AstType AstType;

/* ---- expressions ---- */
typedef enum {
  EX_NUM,    /* 12, 0.5, 3e-3 */
  EX_STR,    /* "..." (escapes resolved) */
  EX_NAME,   /* x */
  EX_BINARY, /* a + b, a - b, a * b, a / b, a % b, a @ b */
  EX_NEG,    /* -a */
  EX_CALL,   /* f(a, b, key: v) [{ clauses }] */
  EX_LIST,   /* [a, b, c] */
  EX_RANGE,  /* a..b (only in clause words and lists) */
} ExprKind;

typedef struct AstKwarg {
  const char *name;
  Span name_span;
  AstExpr *value;
} AstKwarg;

struct AstExpr {
  ExprKind kind;
  Span span;
  /* EX_NUM */
  double num;
  int64_t ival;      /* exact value when is_int */
  bool is_int;       /* written without '.' or exponent and fits int64 */
  /* EX_STR: str/len; EX_NAME: str is the identifier; EX_CALL: str is callee */
  const char *str;
  uint32_t len;
  Span name_span;    /* EX_CALL: the callee name */
  /* EX_BINARY: op is one of + - * / % @ ; EX_NEG and EX_RANGE use a/b */
  char op;
  AstExpr *a, *b;
  /* EX_CALL: positional args and keyword args; EX_LIST: items in args */
  AstExpr **args;
  int nargs;
  AstKwarg *kwargs;
  int nkwargs;
  AstClauses *clauses; /* EX_CALL: optional trailing { ... } block */
  int depth;         /* height of this subtree (1 for a leaf); the parser keeps
                        it <= AST_MAX_DEPTH, so recursive walks stay shallow */
};

/* Deepest expression tree the parser builds (deeper is a located error). */
#define AST_MAX_DEPTH 1024

/* ---- clause blocks: flat word lists ---- */
typedef enum {
  W_IDENT, /* an identifier or keyword: heads, svgd, train, loss ... */
  W_VALUE, /* a number, string, [list], a..b range, -3, or (expr) */
  W_BLOCK, /* a nested { ... } block */
  W_SEP,   /* end of a line or ';' (consecutive separators are merged) */
} WordKind;

typedef struct AstWord {
  WordKind kind;
  Span span;
  const char *ident;   /* W_IDENT */
  AstExpr *value;      /* W_VALUE */
  AstClauses *block;   /* W_BLOCK */
} AstWord;

struct AstClauses {
  Span span;           /* from '{' to '}' */
  AstWord *w;
  int n;
};

/* ---- types: f32[8, 8], int[48], class(8), class(128)[T], f32[] ---- */
typedef enum { TY_F32, TY_INT, TY_CLASS } TypeBase;

struct AstType {
  TypeBase base;
  Span span;
  AstExpr *classes;    /* TY_CLASS: K */
  AstExpr **dims;      /* shape; may be empty */
  int ndims;
  bool unsized;        /* written with [] (extern array form) */
  bool has_dims;       /* written with [...] at all */
};

/* ---- statements of model and block bodies ---- */
typedef enum {
  ST_INPUT,   /* input name : type */
  ST_TARGET,  /* target name : type */
  ST_BIND,    /* name = expr */
  ST_OUTPUT,  /* output name = expr */
  ST_LOSS,    /* loss expr */
  ST_REPEAT,  /* repeat count { body } */
  ST_RETURN,  /* return expr */
} StmtKind;

struct AstStmt {
  StmtKind kind;
  Span span;           /* the whole statement */
  const char *name;    /* INPUT TARGET BIND OUTPUT */
  Span name_span;
  AstType *type;       /* INPUT TARGET */
  AstExpr *expr;       /* BIND OUTPUT LOSS RETURN; REPEAT: the count */
  AstStmt **body;      /* REPEAT */
  int nbody;
  Span body_span;      /* REPEAT: '{' .. '}' */
};

/* ---- items ---- */
typedef enum {
  IT_USE,     /* use "std/encoder" */
  IT_CONST,   /* const name = expr */
  IT_DATA,    /* data name = loader(args) { clauses } */
  IT_BLOCK,   /* block name(params) { body } */
  IT_MODEL,   /* model name { body } */
  IT_TRAIN,   /* train model on data { clauses } */
  IT_EXTERN,  /* extern fn name(params) [-> type] from "lib"|host [grad g] */
} ItemKind;

typedef struct AstParam {
  const char *name;
  Span span;
  AstExpr *def;        /* block: keyword default, NULL if positional */
  AstType *type;       /* extern: declared type */
} AstParam;

typedef struct AstItem {
  ItemKind kind;
  Span span;           /* the whole item */
  const char *name;    /* CONST DATA BLOCK MODEL EXTERN; TRAIN: model name */
  Span name_span;
  /* USE: path (a string); EXTERN: library path, NULL for `from host` */
  const char *path;
  Span path_span;
  /* CONST: value; DATA: the loader call (EX_CALL, its clauses are the block) */
  AstExpr *expr;
  /* BLOCK / EXTERN parameters */
  AstParam *params;
  int nparams;
  /* BLOCK / MODEL body */
  AstStmt **body;
  int nbody;
  Span body_span;
  /* TRAIN: data set name and clause block */
  const char *on;
  Span on_span;
  AstClauses *clauses;
  /* EXTERN: return type (NULL: none, array form), grad function name */
  AstType *ret;
  const char *grad;
  Span grad_span;
  bool from_host;
} AstItem;

typedef struct AstFile {
  int file;            /* SrcSet index */
  AstItem **items;
  int nitems;
} AstFile;

/* Parses one source file of s into an AST.  Syntax errors go to diags (the
 * parser recovers at item boundaries and reports several); returns the tree
 * (possibly partial) or NULL only when nothing could be built.  Never
 * crashes, whatever the bytes: NUL bytes, invalid UTF-8, deep nesting and
 * huge tokens all become located errors. */
AstFile *ra_parse(Arena *arena, SrcSet *s, int file, DiagList *diags);

/* A stable, indented text dump of the tree, for tests and `rac --dump=ast`. */
char *ast_dump(Arena *arena, const AstFile *f);

/* Whether ident is one of the language's keywords (for "'train' is a keyword"). */
bool ast_is_keyword(const char *ident);

#endif
