/* ast.c - AST builders for the grammar, the AST dump and keyword lookup.
 *
 * The builders (astb.h) allocate every node in the compilation arena and
 * compute its span from the tokens around it.  They also report what the
 * grammar cannot: a keyword where a name belongs, an unknown type word, a
 * data set that is not a loader call, a positional argument after keyword
 * ones, a repeated keyword argument, and expressions nested deeper than
 * AST_MAX_DEPTH (replaced by a leaf, so every walk of the tree is bounded).
 *
 * ast_dump prints one node per line, indented two spaces per level, each
 * with its kind, names or value and @line:col - a stable form for golden
 * tests and `rac --dump=ast`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astb.h"
#include "parser.h"
#include "../base/sbuf.h"

static const char *const KEYWORDS[] = {
#define KW(tok, word) #word,
#include "keywords.def"
#undef KW
};

bool ast_is_keyword(const char *ident) {
  if (!ident) return false;
  for (size_t i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++)
    if (strcmp(ident, KEYWORDS[i]) == 0) return true;
  return false;
}

/* ---- helpers ---- */

static void *node(PState *ps, size_t n) { return arena_alloc(ps->arena, n); }

static Span tok_join(Tok a, Tok b) { return span_join(a.span, b.span); }

static Span expr_span(const AstExpr *e) { return e ? e->span : SPAN_NONE; }

static Span join3(Span a, Span b) {
  if (a.file < 0) return b;
  if (b.file < 0) return a;
  return span_join(a, b);
}

Tok astb_name_tok(PState *ps, Tok t) {
  if (t.kw)
    diag_error(ps->diags, t.span, "'%s' is a keyword and cannot be used as a name", t.str);
  return t;
}

static int depth_of(const AstExpr *e) { return e ? e->depth : 0; }

/* Sets e->depth from its children, or replaces an over-deep tree by a leaf
 * (after one error per file). */
static AstExpr *finish(PState *ps, AstExpr *e, int child_depth) {
  if (!e) return NULL;
  e->depth = child_depth + 1;
  if (e->depth <= AST_MAX_DEPTH) return e;
  if (!ps->deep_reported) {
    ps->deep_reported = true;
    diag_error(ps->diags, e->span, "expression is nested too deeply (more than %d levels)",
               AST_MAX_DEPTH);
  }
  AstExpr *leaf = node(ps, sizeof *leaf);
  if (!leaf) return NULL;
  leaf->kind = EX_NUM;
  leaf->span = e->span;
  leaf->is_int = true;
  leaf->depth = 1;
  return leaf;
}

/* ---- expressions ---- */

AstExpr *astb_num(PState *ps, Tok t) {
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_NUM;
  e->span = t.span;
  e->num = t.num;
  e->ival = t.ival;
  e->is_int = t.is_int;
  return finish(ps, e, 0);
}

AstExpr *astb_str(PState *ps, Tok t) {
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_STR;
  e->span = t.span;
  e->str = t.str ? t.str : "";
  e->len = t.len;
  return finish(ps, e, 0);
}

AstExpr *astb_name(PState *ps, Tok t) {
  astb_name_tok(ps, t);
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_NAME;
  e->span = t.span;
  e->str = t.str ? t.str : "";
  e->len = t.len;
  return finish(ps, e, 0);
}

AstExpr *astb_binary(PState *ps, AstExpr *a, Tok op, AstExpr *b) {
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_BINARY;
  e->span = join3(join3(expr_span(a), op.span), expr_span(b));
  e->op = op.kind == TK_PLUS ? '+' : op.kind == TK_MINUS ? '-' : op.kind == TK_STAR ? '*'
          : op.kind == TK_SLASH ? '/' : op.kind == TK_PERCENT ? '%' : '@';
  e->a = a;
  e->b = b;
  int d = depth_of(a) > depth_of(b) ? depth_of(a) : depth_of(b);
  return finish(ps, e, d);
}

AstExpr *astb_neg(PState *ps, Tok minus, AstExpr *a) {
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_NEG;
  e->span = join3(minus.span, expr_span(a));
  e->op = '-';
  e->a = a;
  return finish(ps, e, depth_of(a));
}

AstExpr *astb_paren(PState *ps, Tok lp, AstExpr *e, Tok rp) {
  (void)ps;
  if (e) e->span = tok_join(lp, rp);
  return e;
}

AstExpr *astb_range(PState *ps, AstExpr *a, AstExpr *b) {
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_RANGE;
  e->span = join3(expr_span(a), expr_span(b));
  e->a = a;
  e->b = b;
  int d = depth_of(a) > depth_of(b) ? depth_of(a) : depth_of(b);
  return finish(ps, e, d);
}

PtrVec *astb_exprs(PState *ps, PtrVec *v, AstExpr *e) {
  if (!v) v = node(ps, sizeof *v);
  if (v && e) ptrvec_push(ps->arena, v, e);
  return v;
}

ArgBuf *astb_arg(PState *ps, ArgBuf *b, AstExpr *e) {
  if (!b) b = node(ps, sizeof *b);
  if (!b || !e) return b;
  if (b->nkw > 0)
    diag_error(ps->diags, e->span, "positional argument after keyword argument '%s'",
               b->kw[b->nkw - 1].name);
  ptrvec_push(ps->arena, &b->pos, e);
  return b;
}

ArgBuf *astb_kwarg(PState *ps, ArgBuf *b, Tok name, AstExpr *e) {
  if (!b) b = node(ps, sizeof *b);
  if (!b) return NULL;
  astb_name_tok(ps, name);
  for (int i = 0; i < b->nkw; i++) {
    if (strcmp(b->kw[i].name, name.str) == 0) {
      Diag *g = diag_error(ps->diags, name.span, "keyword argument '%s' is given twice", name.str);
      diag_note(ps->diags, g, b->kw[i].name_span, "first given here");
      return b;
    }
  }
  AstKwarg *nk = arena_grow(ps->arena, b->kw, b->nkw, &b->kwcap, sizeof *nk, 4);
  if (!nk) return b;
  b->kw = nk;
  AstKwarg *k = &b->kw[b->nkw++];
  k->name = name.str;
  k->name_span = name.span;
  k->value = e;
  return b;
}

static int max_depth(AstExpr **v, int n) {
  int d = 0;
  for (int i = 0; i < n; i++)
    if (depth_of(v[i]) > d) d = depth_of(v[i]);
  return d;
}

AstExpr *astb_call(PState *ps, Tok name, ArgBuf *args, Tok rp, AstClauses *cl) {
  astb_name_tok(ps, name);
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_CALL;
  e->span = cl ? span_join(name.span, cl->span) : tok_join(name, rp);
  e->str = name.str ? name.str : "";
  e->len = name.len;
  e->name_span = name.span;
  e->clauses = cl;
  int d = 0;
  if (args) {
    e->args = (AstExpr **)args->pos.v;
    e->nargs = args->pos.n;
    e->kwargs = args->kw;
    e->nkwargs = args->nkw;
    d = max_depth(e->args, e->nargs);
    for (int i = 0; i < e->nkwargs; i++)
      if (depth_of(e->kwargs[i].value) > d) d = depth_of(e->kwargs[i].value);
  }
  return finish(ps, e, d);
}

AstExpr *astb_list(PState *ps, Tok lb, PtrVec *items, Tok rb) {
  AstExpr *e = node(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = EX_LIST;
  e->span = tok_join(lb, rb);
  if (items) {
    e->args = (AstExpr **)items->v;
    e->nargs = items->n;
  }
  return finish(ps, e, max_depth(e->args, e->nargs));
}

/* ---- clause blocks ---- */

WordBuf *astb_words(PState *ps) { return node(ps, sizeof(WordBuf)); }

static AstWord *word_push(PState *ps, WordBuf *b, WordKind kind, Span at) {
  if (!b) return NULL;
  AstWord *nw = arena_grow(ps->arena, b->w, b->n, &b->cap, sizeof *nw, 8);
  if (!nw) return NULL;
  b->w = nw;
  AstWord *w = &b->w[b->n++];
  memset(w, 0, sizeof *w);
  w->kind = kind;
  w->span = at;
  return w;
}

WordBuf *astb_word_ident(PState *ps, WordBuf *b, Tok t) {
  AstWord *w = word_push(ps, b, W_IDENT, t.span);
  if (w) w->ident = t.str ? t.str : "";
  return b;
}

WordBuf *astb_word_value(PState *ps, WordBuf *b, AstExpr *e) {
  if (!e) return b;
  AstWord *w = word_push(ps, b, W_VALUE, e->span);
  if (w) w->value = e;
  return b;
}

WordBuf *astb_word_block(PState *ps, WordBuf *b, AstClauses *c) {
  if (!c) return b;
  AstWord *w = word_push(ps, b, W_BLOCK, c->span);
  if (w) w->block = c;
  return b;
}

/* Separators are merged; none at the start (nor, see astb_clauses, at the
 * end). */
WordBuf *astb_word_sep(PState *ps, WordBuf *b, Tok t) {
  if (!b || b->n == 0 || b->w[b->n - 1].kind == W_SEP) return b;
  word_push(ps, b, W_SEP, t.span);
  return b;
}

AstClauses *astb_clauses(PState *ps, Tok lb, WordBuf *b, Tok rb) {
  AstClauses *c = node(ps, sizeof *c);
  if (!c) return NULL;
  c->span = tok_join(lb, rb);
  if (b) {
    while (b->n > 0 && b->w[b->n - 1].kind == W_SEP) b->n--;
    c->w = b->w;
    c->n = b->n;
  }
  return c;
}

/* ---- types ---- */

TDims *astb_dims(PState *ps, Tok lb, PtrVec *dims, Tok rb) {
  TDims *d = node(ps, sizeof *d);
  if (!d) return NULL;
  d->span = tok_join(lb, rb);
  if (dims) d->dims = *dims;
  else d->unsized = true;
  return d;
}

AstType *astb_type(PState *ps, Tok word, AstExpr *classes, Tok rp, TDims *dims) {
  AstType *t = node(ps, sizeof *t);
  if (!t) return NULL;
  const char *w = word.str ? word.str : "";
  t->span = dims ? span_join(word.span, dims->span) : tok_join(word, rp);
  if (strcmp(w, "f32") == 0) t->base = TY_F32;
  else if (strcmp(w, "int") == 0) t->base = TY_INT;
  else if (strcmp(w, "class") == 0) t->base = TY_CLASS;
  else {
    const char *const names[] = {"f32", "int", "class"};
    const char *s = diag_suggest(w, names, 3);
    if (s)
      diag_error(ps->diags, word.span, "unknown type '%s'; did you mean '%s'?", w, s);
    else
      diag_error(ps->diags, word.span, "unknown type '%s' (expected f32, int or class(K))", w);
    t->base = TY_F32;
  }
  if (t->base == TY_CLASS && !classes)
    diag_error(ps->diags, word.span, "'class' needs the number of classes, as in class(8)");
  if (t->base != TY_CLASS && classes) {
    diag_error(ps->diags, classes->span, "only 'class' takes a count in parentheses");
    classes = NULL;
  }
  t->classes = classes;
  if (dims) {
    t->has_dims = true;
    t->unsized = dims->unsized;
    t->dims = (AstExpr **)dims->dims.v;
    t->ndims = dims->dims.n;
  }
  return t;
}

/* ---- statements ---- */

PtrVec *astb_stmts(PState *ps, PtrVec *v, AstStmt *s) {
  if (!v) v = node(ps, sizeof *v);
  if (v && s) ptrvec_push(ps->arena, v, s);
  return v;
}

Body *astb_body(PState *ps, PtrVec *stmts, AstStmt *last, Tok lb, Tok rb) {
  Body *b = node(ps, sizeof *b);
  if (!b) return NULL;
  if (stmts) b->stmts = *stmts;
  if (last) ptrvec_push(ps->arena, &b->stmts, last);
  b->span = tok_join(lb, rb);
  return b;
}

static AstStmt *stmt_new(PState *ps, StmtKind kind, Span span) {
  AstStmt *s = node(ps, sizeof *s);
  if (!s) return NULL;
  s->kind = kind;
  s->span = span;
  return s;
}

AstStmt *astb_decl(PState *ps, StmtKind kind, Tok kw, Tok name, AstType *t) {
  AstStmt *s = stmt_new(ps, kind, t ? span_join(kw.span, t->span) : tok_join(kw, name));
  if (!s) return NULL;
  s->name = name.str;
  s->name_span = name.span;
  s->type = t;
  return s;
}

AstStmt *astb_bind(PState *ps, Tok name, AstExpr *e) {
  AstStmt *s = stmt_new(ps, ST_BIND, join3(name.span, expr_span(e)));
  if (!s) return NULL;
  s->name = name.str;
  s->name_span = name.span;
  s->expr = e;
  return s;
}

AstStmt *astb_output(PState *ps, Tok kw, Tok name, AstExpr *e) {
  AstStmt *s = stmt_new(ps, ST_OUTPUT, join3(kw.span, expr_span(e)));
  if (!s) return NULL;
  s->name = name.str;
  s->name_span = name.span;
  s->expr = e;
  return s;
}

AstStmt *astb_keyexpr(PState *ps, StmtKind kind, Tok kw, AstExpr *e) {
  AstStmt *s = stmt_new(ps, kind, join3(kw.span, expr_span(e)));
  if (s) s->expr = e;
  return s;
}

AstStmt *astb_repeat(PState *ps, Tok kw, AstExpr *count, Body *b) {
  AstStmt *s = stmt_new(ps, ST_REPEAT, b ? span_join(kw.span, b->span) : kw.span);
  if (!s) return NULL;
  s->expr = count;
  if (b) {
    s->body = (AstStmt **)b->stmts.v;
    s->nbody = b->stmts.n;
    s->body_span = b->span;
  }
  return s;
}

/* ---- parameters ---- */

static AstParam *param_push(PState *ps, ParamBuf *b, Tok name) {
  for (int i = 0; i < b->n; i++) {
    if (name.str && b->p[i].name && strcmp(b->p[i].name, name.str) == 0) {
      Diag *g = diag_error(ps->diags, name.span, "parameter '%s' is declared twice", name.str);
      diag_note(ps->diags, g, b->p[i].span, "first declared here");
      return NULL;
    }
  }
  AstParam *np = arena_grow(ps->arena, b->p, b->n, &b->cap, sizeof *np, 4);
  if (!np) return NULL;
  b->p = np;
  AstParam *p = &b->p[b->n++];
  memset(p, 0, sizeof *p);
  p->name = name.str;
  p->span = name.span;
  return p;
}

ParamBuf *astb_bparam(PState *ps, ParamBuf *b, Tok name, AstExpr *def) {
  if (!b) b = node(ps, sizeof *b);
  if (!b) return NULL;
  if (!def && b->n > 0 && b->p[b->n - 1].def)
    diag_error(ps->diags, name.span,
               "parameter '%s' without a default follows one with a default", name.str);
  AstParam *p = param_push(ps, b, name);
  if (p) p->def = def;
  return b;
}

ParamBuf *astb_xparam(PState *ps, ParamBuf *b, Tok name, AstType *t) {
  if (!b) b = node(ps, sizeof *b);
  if (!b) return NULL;
  AstParam *p = param_push(ps, b, name);
  if (p) p->type = t;
  return b;
}

/* ---- items ---- */

static AstItem *item_new(PState *ps, ItemKind kind, Span span) {
  AstItem *it = node(ps, sizeof *it);
  if (!it) return NULL;
  it->kind = kind;
  it->span = span;
  ptrvec_push(ps->arena, &ps->items, it);
  return it;
}

void astb_use(PState *ps, Tok kw, Tok path) {
  AstItem *it = item_new(ps, IT_USE, tok_join(kw, path));
  if (!it) return;
  it->path = path.str ? path.str : "";
  it->path_span = path.span;
}

void astb_const(PState *ps, Tok kw, Tok name, AstExpr *e) {
  AstItem *it = item_new(ps, IT_CONST, join3(kw.span, expr_span(e)));
  if (!it) return;
  it->name = name.str;
  it->name_span = name.span;
  it->expr = e;
}

void astb_data(PState *ps, Tok kw, Tok name, AstExpr *e) {
  if (e && e->kind != EX_CALL) {
    diag_error(ps->diags, e->span,
               "a data set is made by a loader call, such as tsv(\"file.tsv\") or "
               "synthetic(task: copy)");
    return;
  }
  AstItem *it = item_new(ps, IT_DATA, join3(kw.span, expr_span(e)));
  if (!it) return;
  it->name = name.str;
  it->name_span = name.span;
  it->expr = e;
  if (e) it->clauses = e->clauses;
}

static void set_body(AstItem *it, Body *b) {
  if (!b) return;
  it->body = (AstStmt **)b->stmts.v;
  it->nbody = b->stmts.n;
  it->body_span = b->span;
}

void astb_block(PState *ps, Tok kw, Tok name, ParamBuf *params, Body *b) {
  AstItem *it = item_new(ps, IT_BLOCK, b ? span_join(kw.span, b->span) : tok_join(kw, name));
  if (!it) return;
  it->name = name.str;
  it->name_span = name.span;
  if (params) {
    it->params = params->p;
    it->nparams = params->n;
  }
  set_body(it, b);
}

void astb_model(PState *ps, Tok kw, Tok name, Body *b) {
  AstItem *it = item_new(ps, IT_MODEL, b ? span_join(kw.span, b->span) : tok_join(kw, name));
  if (!it) return;
  it->name = name.str;
  it->name_span = name.span;
  set_body(it, b);
}

void astb_train(PState *ps, Tok kw, Tok model, Tok data, AstClauses *c) {
  AstItem *it = item_new(ps, IT_TRAIN, c ? span_join(kw.span, c->span) : tok_join(kw, data));
  if (!it) return;
  it->name = model.str;
  it->name_span = model.span;
  it->on = data.str;
  it->on_span = data.span;
  it->clauses = c;
}

void astb_extern(PState *ps, Tok kw, Tok name, ParamBuf *params, AstType *ret, Tok from,
                 Tok grad) {
  Span end = grad.kind ? grad.span : from.span;
  AstItem *it = item_new(ps, IT_EXTERN, span_join(kw.span, end));
  if (!it) return;
  it->name = name.str;
  it->name_span = name.span;
  if (params) {
    it->params = params->p;
    it->nparams = params->n;
  }
  it->ret = ret;
  it->path_span = from.span;
  if (from.kind == TK_STRING) {
    it->path = from.str ? from.str : "";
  } else {
    it->from_host = true;
    if (!from.str || strcmp(from.str, "host") != 0)
      diag_error(ps->diags, from.span,
                 "expected a library path string or 'host' after 'from', not '%s'",
                 from.str ? from.str : "");
  }
  if (grad.kind) {
    it->grad = grad.str;
    it->grad_span = grad.span;
  }
}

/* ---- dump ---- */

typedef struct Dump {
  SBuf b;
} Dump;

static void indent(Dump *d, int n) {
  static const char spaces[] = "                                                                ";
  for (size_t left = (size_t)n * 2; left > 0;) {
    size_t k = left < sizeof spaces - 1 ? left : sizeof spaces - 1;
    sbuf_addn(&d->b, spaces, k);
    left -= k;
  }
}

static void at(Dump *d, Span s) { sbuf_printf(&d->b, " @%d:%d\n", (int)s.line, (int)s.col); }

static void quoted(Dump *d, const char *s, size_t n) {
  sbuf_addc(&d->b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') { sbuf_addc(&d->b, '\\'); sbuf_addc(&d->b, (char)c); }
    else if (c == '\n') sbuf_add(&d->b, "\\n");
    else if (c == '\t') sbuf_add(&d->b, "\\t");
    else if (c < 0x20 || c >= 0x7f) sbuf_printf(&d->b, "\\x%02X", c);
    else sbuf_addc(&d->b, (char)c);
  }
  sbuf_addc(&d->b, '"');
}

/* The shortest %g form that reads back to the same double. */
static void number(Dump *d, double v) {
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  sbuf_add(&d->b, buf);
  if (!strpbrk(buf, ".eni")) sbuf_add(&d->b, ".0");  /* 1.0, not 1 */
}

static void dump_clauses(Dump *d, const AstClauses *c, int ind, const char *label);

static void dump_expr(Dump *d, const AstExpr *e, int ind, const char *label) {
  indent(d, ind);
  if (label) sbuf_printf(&d->b, "%s: ", label);
  if (!e) {
    sbuf_add(&d->b, "(null)\n");
    return;
  }
  switch (e->kind) {
  case EX_NUM:
    if (e->is_int) sbuf_printf(&d->b, "int %lld", (long long)e->ival);
    else {
      sbuf_add(&d->b, "float ");
      number(d, e->num);
    }
    at(d, e->span);
    break;
  case EX_STR:
    sbuf_add(&d->b, "str ");
    quoted(d, e->str, e->len);
    at(d, e->span);
    break;
  case EX_NAME:
    sbuf_printf(&d->b, "name %s", e->str);
    at(d, e->span);
    break;
  case EX_BINARY:
    sbuf_printf(&d->b, "binary %c", e->op);
    at(d, e->span);
    dump_expr(d, e->a, ind + 1, NULL);
    dump_expr(d, e->b, ind + 1, NULL);
    break;
  case EX_NEG:
    sbuf_add(&d->b, "neg");
    at(d, e->span);
    dump_expr(d, e->a, ind + 1, NULL);
    break;
  case EX_RANGE:
    sbuf_add(&d->b, "range");
    at(d, e->span);
    dump_expr(d, e->a, ind + 1, NULL);
    dump_expr(d, e->b, ind + 1, NULL);
    break;
  case EX_LIST:
    sbuf_printf(&d->b, "list %d", e->nargs);
    at(d, e->span);
    for (int i = 0; i < e->nargs; i++) dump_expr(d, e->args[i], ind + 1, NULL);
    break;
  case EX_CALL:
    sbuf_printf(&d->b, "call %s", e->str);
    at(d, e->span);
    for (int i = 0; i < e->nargs; i++) dump_expr(d, e->args[i], ind + 1, NULL);
    for (int i = 0; i < e->nkwargs; i++) {
      char lab[300];
      snprintf(lab, sizeof lab, "kw %s", e->kwargs[i].name);
      dump_expr(d, e->kwargs[i].value, ind + 1, lab);
    }
    if (e->clauses) dump_clauses(d, e->clauses, ind + 1, NULL);
    break;
  default:
    sbuf_printf(&d->b, "expr? %d", (int)e->kind);
    at(d, e->span);
  }
}

static void dump_clauses(Dump *d, const AstClauses *c, int ind, const char *label) {
  indent(d, ind);
  if (label) sbuf_printf(&d->b, "%s: ", label);
  sbuf_printf(&d->b, "clauses %d", c->n);
  at(d, c->span);
  for (int i = 0; i < c->n; i++) {
    const AstWord *w = &c->w[i];
    switch (w->kind) {
    case W_IDENT:
      indent(d, ind + 1);
      sbuf_printf(&d->b, "w-ident %s", w->ident);
      at(d, w->span);
      break;
    case W_VALUE:
      indent(d, ind + 1);
      sbuf_add(&d->b, "w-value");
      at(d, w->span);
      dump_expr(d, w->value, ind + 2, NULL);
      break;
    case W_BLOCK:
      indent(d, ind + 1);
      sbuf_add(&d->b, "w-block");
      at(d, w->span);
      dump_clauses(d, w->block, ind + 2, NULL);
      break;
    case W_SEP:
      indent(d, ind + 1);
      sbuf_add(&d->b, "w-sep");
      at(d, w->span);
      break;
    }
  }
}

static void dump_type(Dump *d, const AstType *t, int ind, const char *label) {
  static const char *const bases[] = {"f32", "int", "class"};
  indent(d, ind);
  if (label) sbuf_printf(&d->b, "%s: ", label);
  if (!t) {
    sbuf_add(&d->b, "(null)\n");
    return;
  }
  sbuf_printf(&d->b, "type %s", t->base <= TY_CLASS ? bases[t->base] : "?");
  if (t->unsized) sbuf_add(&d->b, "[]");
  else if (t->has_dims) sbuf_printf(&d->b, " dims %d", t->ndims);
  at(d, t->span);
  if (t->classes) dump_expr(d, t->classes, ind + 1, "classes");
  for (int i = 0; i < t->ndims; i++) dump_expr(d, t->dims[i], ind + 1, "dim");
}

static void dump_stmts(Dump *d, AstStmt *const *body, int n, int ind);

static void dump_stmt(Dump *d, const AstStmt *s, int ind) {
  indent(d, ind);
  switch (s->kind) {
  case ST_INPUT:
  case ST_TARGET:
    sbuf_printf(&d->b, "%s %s", s->kind == ST_INPUT ? "input" : "target", s->name);
    at(d, s->span);
    dump_type(d, s->type, ind + 1, NULL);
    break;
  case ST_BIND:
  case ST_OUTPUT:
    sbuf_printf(&d->b, "%s %s", s->kind == ST_BIND ? "bind" : "output", s->name);
    at(d, s->span);
    dump_expr(d, s->expr, ind + 1, NULL);
    break;
  case ST_LOSS:
  case ST_RETURN:
    sbuf_add(&d->b, s->kind == ST_LOSS ? "loss" : "return");
    at(d, s->span);
    dump_expr(d, s->expr, ind + 1, NULL);
    break;
  case ST_REPEAT:
    sbuf_printf(&d->b, "repeat (%d statements)", s->nbody);
    at(d, s->span);
    dump_expr(d, s->expr, ind + 1, "count");
    dump_stmts(d, s->body, s->nbody, ind + 1);
    break;
  default:
    sbuf_printf(&d->b, "stmt? %d", (int)s->kind);
    at(d, s->span);
  }
}

static void dump_stmts(Dump *d, AstStmt *const *body, int n, int ind) {
  for (int i = 0; i < n; i++)
    if (body[i]) dump_stmt(d, body[i], ind);
}

static void dump_item(Dump *d, const AstItem *it) {
  indent(d, 1);
  switch (it->kind) {
  case IT_USE:
    sbuf_add(&d->b, "use ");
    quoted(d, it->path, strlen(it->path));
    at(d, it->span);
    break;
  case IT_CONST:
    sbuf_printf(&d->b, "const %s", it->name);
    at(d, it->span);
    dump_expr(d, it->expr, 2, NULL);
    break;
  case IT_DATA:
    sbuf_printf(&d->b, "data %s", it->name);
    at(d, it->span);
    dump_expr(d, it->expr, 2, NULL);
    break;
  case IT_BLOCK:
    sbuf_printf(&d->b, "block %s (%d params, %d statements)", it->name, it->nparams, it->nbody);
    at(d, it->span);
    for (int i = 0; i < it->nparams; i++) {
      indent(d, 2);
      sbuf_printf(&d->b, "param %s", it->params[i].name);
      at(d, it->params[i].span);
      if (it->params[i].def) dump_expr(d, it->params[i].def, 3, "default");
    }
    dump_stmts(d, it->body, it->nbody, 2);
    break;
  case IT_MODEL:
    sbuf_printf(&d->b, "model %s (%d statements)", it->name, it->nbody);
    at(d, it->span);
    dump_stmts(d, it->body, it->nbody, 2);
    break;
  case IT_TRAIN:
    sbuf_printf(&d->b, "train %s on %s", it->name, it->on);
    at(d, it->span);
    if (it->clauses) dump_clauses(d, it->clauses, 2, NULL);
    break;
  case IT_EXTERN:
    sbuf_printf(&d->b, "extern %s from ", it->name);
    if (it->from_host) sbuf_add(&d->b, "host");
    else quoted(d, it->path, strlen(it->path));
    if (it->grad) sbuf_printf(&d->b, " grad %s", it->grad);
    at(d, it->span);
    for (int i = 0; i < it->nparams; i++) {
      indent(d, 2);
      sbuf_printf(&d->b, "param %s", it->params[i].name);
      at(d, it->params[i].span);
      dump_type(d, it->params[i].type, 3, NULL);
    }
    if (it->ret) dump_type(d, it->ret, 2, "returns");
    break;
  default:
    sbuf_printf(&d->b, "item? %d", (int)it->kind);
    at(d, it->span);
  }
}

char *ast_dump(Arena *arena, const AstFile *f) {
  Dump d;
  sbuf_init(&d.b, arena);
  if (!f) {
    sbuf_add(&d.b, "(no file)\n");
    return sbuf_str(&d.b);
  }
  sbuf_printf(&d.b, "file %d (%d items)\n", f->file, f->nitems);
  for (int i = 0; i < f->nitems; i++)
    if (f->items[i]) dump_item(&d, f->items[i]);
  return sbuf_str(&d.b);
}
