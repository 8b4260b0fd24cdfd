/* lower.c - a model's statements to its forward IR function (language.md
 * §5, §7), with the metadata the runtime needs: parameters and their paths,
 * inputs, targets, outputs and head groups.
 *
 * One pass over the model body: `repeat` is unrolled, block calls are
 * inlined (each call site owns its parameters), built-in layers are expanded
 * by layers.c.  Every value has a full concrete shape: batched values carry
 * the batch as dim 0, parameters and constants do not.  Errors are located
 * diagnostics; a failed statement poisons its name so later uses stay quiet.
 *
 * Parameter paths: model name, `r<k>` per repeat iteration (numbered across
 * the repeat statements of one scope), the statement's bound name (`loss`,
 * the output's name; a re-bound name that already owns parameters in the same
 * scope gets `_2`, `_3`), then - unless the layer call is the statement's
 * whole value - the op name (`layernorm`, `layernorm_2`, ...), then the
 * parameter name.  A block call adds its bound name as one more scope.
 *
 * Losses: `loss expr` is the one rank-0 f32 loss; attnpool `penalty c`
 * terms are added to it automatically (a model without a loss statement
 * has no loss, penalties included).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lower_int.h"

/* ------------------------------------------------------------------------ */
/* diagnostics                                                               */

static bool diag_same(const Diag *a, DiagLevel lvl, Span at, const char *msg) {
  return a->level == lvl && a->span.file == at.file && a->span.off == at.off &&
         a->span.len == at.len && a->span.line == at.line && strcmp(a->msg, msg) == 0;
}

Diag *lw_error(Lower *L, const Frame *fr, Span at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->err, sizeof L->err, fmt, ap);
  va_end(ap);
  L->nerr++;
  for (const Diag *g = L->d->head; g; g = g->next)
    if (diag_same(g, DIAG_ERROR, at, L->err)) return NULL;
  Diag *g = diag_error(L->d, at, "%s", L->err);
  if (!g) return NULL;
  for (const Frame *c = fr; c && c->block; c = c->caller)
    diag_note(L->d, g, c->call, "in block '%s', called here", c->block->name);
  return g;
}

void lw_note(Lower *L, Diag *g, Span at, const char *fmt, ...) {
  if (!g) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->err, sizeof L->err, fmt, ap);
  va_end(ap);
  diag_note(L->d, g, at, "%s", L->err);
}

void lw_dedup_since(Lower *L, Diag *mark) {
  Diag *prev = mark;
  Diag *g = mark ? mark->next : L->d->head;
  while (g) {
    bool dup = false;
    for (const Diag *o = L->d->head; o && o != g; o = o->next)
      if (diag_same(o, g->level, g->span, g->msg)) { dup = true; break; }
    if (!dup) { prev = g; g = g->next; continue; }
    Diag *next = g->next;
    if (prev) prev->next = next; else L->d->head = next;
    if (L->d->tail == g) L->d->tail = prev;
    if (g->level == DIAG_ERROR && L->d->nerrors > 0) L->d->nerrors--;
    g = next;
  }
}

const char *lw_tstr(Lower *L, const IrType *t) {
  char buf[160];
  ir_type_str_b(t, buf, sizeof buf);
  return arena_strdup(L->A, buf);
}

const char *lw_vstr(Lower *L, int32_t v) { return lw_tstr(L, lw_vtype(L, v)); }

/* ------------------------------------------------------------------------ */
/* IR building                                                               */

const IrType *lw_vtype(const Lower *L, int32_t v) { return &L->f->nodes[v].type; }

int lw_perank(const Lower *L, int32_t v) {
  const IrType *t = lw_vtype(L, v);
  return t->rank - (t->batched ? 1 : 0);
}

/* The builder's failures become located errors, with the block-call chain
 * of the frame they were made in. */
static void report(void *ud, Span at, const char *msg) {
  Lower *L = ud;
  lw_error(L, L->bfr, at, "%s", msg);
}

IrBuilder *lw_at(Lower *L, const Frame *fr, Span at) {
  L->b.span = at;
  L->bfr = fr;
  return &L->b;
}

/* A batched value with fewer per-example axes than pe gets unit axes after
 * the batch ([B, 4] -> [B, 1, 4]), so broadcasting lines up per-example
 * shapes as the language says, never the batch with a per-example axis. */
static int32_t align_batched(Lower *L, const Frame *fr, int32_t x, int pe, Span at) {
  const IrType *t = lw_vtype(L, x);
  int have = t->rank - 1;
  if (!t->batched || have >= pe) return x;
  IrType to = *t;
  to.rank = (uint8_t)(1 + pe);
  for (int i = have - 1; i >= 0; i--) to.dim[1 + (pe - have) + i] = t->dim[1 + i];
  for (int i = 0; i < pe - have; i++) to.dim[1 + i] = 1;
  return ir_reshape(lw_at(L, fr, at), x, &to);
}

int32_t lw_arith(Lower *L, const Frame *fr, IrOp op, int32_t a, int32_t b, Span at) {
  if (a < 0 || b < 0) return -1;
  if (ir_op_info[op].flags & OPF_BCAST) {
    const IrType *ta = lw_vtype(L, a), *tb = lw_vtype(L, b);
    int pa = ta->rank - ta->batched, pb = tb->rank - tb->batched;
    int pe = pa > pb ? pa : pb;
    a = align_batched(L, fr, a, pe, at);
    b = align_batched(L, fr, b, pe, at);
  }
  return ir_binary(lw_at(L, fr, at), op, a, b);
}

int32_t lw_dropout(Lower *L, const Frame *fr, int32_t x, double p, Span at) {
  if (x < 0) return -1;
  IrNode n = {.op = OP_DROPOUT, .nin = 1, .in = {x}};
  n.attr.f[0] = p;
  n.attr.i[0] = L->m->ndropout++;
  return ir_op(lw_at(L, fr, at), n);
}

/* ------------------------------------------------------------------------ */
/* parameter paths                                                           */

PNode *lw_pnode(Lower *L, PNode *parent, PNodeKind kind, const char *base, bool whole) {
  PNode *n = arena_alloc(L->A, sizeof *n);
  n->parent = parent;
  n->kind = (uint8_t)kind;
  n->base = base;
  n->whole = whole;
  if (kind == PN_SCOPE) n->comp = base ? base : "";
  return n;
}

/* Takes a name in a naming table: "x" the first time, then "x_2", ... */
static const char *take_name(Lower *L, PNode *table, const char *name) {
  for (NameCount *c = table->names; c; c = c->next)
    if (strcmp(c->name, name) == 0) {
      c->n++;
      return arena_printf(L->A, "%s_%d", name, c->n);
    }
  NameCount *c = arena_alloc(L->A, sizeof *c);
  c->name = name;
  c->n = 1;
  c->next = table->names;
  table->names = c;
  return name;
}

static void decide(Lower *L, PNode *n) {
  if (!n || n->comp) return;
  decide(L, n->parent);
  if (n->kind == PN_STMT)
    n->comp = n->base && n->parent ? take_name(L, n->parent, n->base) : "";
  else if (n->kind == PN_CALL)
    n->comp = n->whole || !n->parent ? "" : take_name(L, n->parent, n->base);
  else
    n->comp = n->base ? n->base : "";
}

const char *lw_path(Lower *L, PNode *n) {
  decide(L, n);
  const char *parts[256];
  int np = 0;
  for (PNode *c = n; c && np < 256; c = c->parent)
    if (c->comp && c->comp[0]) parts[np++] = c->comp;
  size_t len = 1;
  for (int i = 0; i < np; i++) len += strlen(parts[i]) + 1;
  char *s = arena_alloc(L->A, len);
  char *o = s;
  for (int i = np - 1; i >= 0; i--) {
    size_t k = strlen(parts[i]);
    memcpy(o, parts[i], k);
    o += k;
    if (i > 0) *o++ = '.';
  }
  *o = 0;
  return s;
}

static bool path_taken(const Lower *L, const char *path) {
  for (int i = 0; i < L->m->nparams; i++)
    if (strcmp(L->m->params[i].path, path) == 0) return true;
  return false;
}

int32_t lw_param(Lower *L, PNode *call, const char *pname, IrType t, InitKind init,
                 double scale, Span at, int32_t *index) {
  const char *prefix = lw_path(L, call);
  const char *path = prefix[0] ? arena_printf(L->A, "%s.%s", prefix, pname) : pname;
  for (int k = 2; path_taken(L, path); k++)
    path = arena_printf(L->A, "%s.%s_%d", prefix, pname, k);
  Model *m = L->m;
  m->params = arena_grow(L->A, m->params, m->nparams, &L->pcap, sizeof *m->params, 16);
  int32_t idx = m->nparams++;
  ParamInfo *pi = &m->params[idx];
  memset(pi, 0, sizeof *pi);
  pi->path = path;
  pi->type = t;
  pi->type.batched = 0;
  pi->init = init;
  pi->scale = scale;
  pi->span = at;
  pi->offset = m->nweights;
  m->nweights += ir_numel(&pi->type);
  if (index) *index = idx;
  IrNode n = {.op = OP_PARAM, .type = pi->type, .name = path, .attr.i = {idx}};
  return ir_op(lw_at(L, NULL, at), n);
}

void lw_add_output(Lower *L, const char *name, int32_t v, IrOutRole role, int32_t index) {
  L->outs = arena_grow(L->A, L->outs, L->nouts, &L->outcap, sizeof *L->outs, 8);
  PendingOut *o = &L->outs[L->nouts++];
  o->name = name;
  o->value = v;
  o->role = (uint8_t)role;
  o->index = index;
}

void lw_add_penalty(Lower *L, int32_t v, Span at) {
  if (L->npens == L->pencap) {
    int ncap = L->pencap ? L->pencap * 2 : 4;
    int32_t *nv = arena_alloc(L->A, sizeof *nv * (size_t)ncap);
    Span *ns = arena_alloc(L->A, sizeof *ns * (size_t)ncap);
    if (L->npens) {
      memcpy(nv, L->pens, sizeof *nv * (size_t)L->npens);
      memcpy(ns, L->pen_spans, sizeof *ns * (size_t)L->npens);
    }
    L->pens = nv;
    L->pen_spans = ns;
    L->pencap = ncap;
  }
  L->pens[L->npens] = v;
  L->pen_spans[L->npens++] = at;
}

/* ------------------------------------------------------------------------ */
/* names                                                                     */

const Binding *lw_lookup(const Frame *fr, const char *name) {
  for (int i = fr->n - 1; i >= 0; i--)
    if (strcmp(fr->b[i].name, name) == 0) return &fr->b[i];
  return NULL;
}

const ConstVal *lw_const(const Lower *L, const char *name) {
  for (int i = 0; i < L->p->nconsts; i++)
    if (L->p->consts[i].name && strcmp(L->p->consts[i].name, name) == 0)
      return &L->p->consts[i];
  return NULL;
}

static Binding *bind(Lower *L, Frame *fr, const char *name, Span at) {
  fr->b = arena_grow(L->A, fr->b, fr->n, &fr->cap, sizeof *fr->b, 16);
  Binding *b = &fr->b[fr->n++];
  memset(b, 0, sizeof *b);
  b->name = name;
  b->span = at;
  return b;
}

static void bind_value(Lower *L, Frame *fr, const char *name, Span at, int32_t v) {
  Binding *b = bind(L, fr, name, at);
  b->kind = BIND_VALUE;
  b->value = v;
  b->poisoned = v < 0;
}

/* "; did you mean 'x'?" or "" */
static const char *suggest_name(Lower *L, const Frame *fr, const char *name, bool values,
                                bool numbers) {
  int cap = (fr ? fr->n : 0) + L->p->nconsts + 1;
  const char **c = arena_alloc(L->A, sizeof *c * (size_t)cap);
  int n = 0;
  for (int i = 0; fr && i < fr->n; i++) {
    const Binding *b = &fr->b[i];
    if ((b->kind == BIND_VALUE && values) || (b->kind == BIND_NUM && numbers) ||
        (b->kind == BIND_IDENT && values))
      c[n++] = b->name;
  }
  for (int i = 0; i < L->p->nconsts; i++)
    if (L->p->consts[i].name) c[n++] = L->p->consts[i].name;
  const char *s = diag_suggest(name, c, n);
  return s ? arena_printf(L->A, "; did you mean '%s'?", s) : "";
}

/* ------------------------------------------------------------------------ */
/* compile-time numbers                                                      */

static Num num_int(int64_t i) { return (Num){true, i, (double)i}; }
static Num num_f(double f) { return (Num){false, 0, f}; }

bool lw_is_const(const Lower *L, const Frame *fr, const AstExpr *e) {
  switch (e->kind) {
  case EX_NUM: return true;
  case EX_NAME: {
    const Binding *b = fr ? lw_lookup(fr, e->str) : NULL;
    if (b) return b->kind == BIND_NUM;
    return lw_const(L, e->str) != NULL;
  }
  case EX_NEG: return lw_is_const(L, fr, e->a);
  case EX_BINARY:
    return e->op != '@' && lw_is_const(L, fr, e->a) && lw_is_const(L, fr, e->b);
  default: return false;
  }
}

/* a op b for the compile-time numbers of e = a op b: integers stay
 * integers (a division that is not exact gives a float).  0, or -1
 * diagnosed. */
static int eval_binary(Lower *L, const Frame *fr, const AstExpr *e, Num a, Num b, Num *out) {
  if (e->op == '@') {
    lw_error(L, fr, e->span, "'@' needs tensors, not numbers");
    return -1;
  }
  if ((e->op == '/' || e->op == '%') && (b.is_int ? b.i == 0 : b.f == 0)) {
    lw_error(L, fr, e->span, "division by zero");
    return -1;
  }
  if (e->op == '%') {
    if (!a.is_int || !b.is_int) {
      lw_error(L, fr, e->span, "'%%' needs integers");
      return -1;
    }
    *out = num_int(b.i == -1 ? 0 : a.i % b.i);
    return 0;
  }
  if (a.is_int && b.is_int) {
    int64_t r = 0;
    switch (e->op) {
    case '+': if (__builtin_add_overflow(a.i, b.i, &r)) goto overflow; break;
    case '-': if (__builtin_sub_overflow(a.i, b.i, &r)) goto overflow; break;
    case '*': if (__builtin_mul_overflow(a.i, b.i, &r)) goto overflow; break;
    default:
      if (b.i == -1 && a.i == INT64_MIN) goto overflow;
      if (a.i % b.i == 0) {
        r = a.i / b.i;
        break;
      }
      *out = num_f((double)a.i / (double)b.i);
      return 0;
    }
    *out = num_int(r);
    return 0;
  }
  double x = a.f, y = b.f, r;
  switch (e->op) {
  case '+': r = x + y; break;
  case '-': r = x - y; break;
  case '*': r = x * y; break;
  default: r = x / y; break;
  }
  *out = num_f(r);
  return 0;
overflow:
  lw_error(L, fr, e->span, "integer overflow in a compile-time expression");
  return -1;
}

int lw_eval_num(Lower *L, const Frame *fr, const AstExpr *e, Num *out) {
  switch (e->kind) {
  case EX_NUM:
    *out = e->is_int ? num_int(e->ival) : num_f(e->num);
    return 0;
  case EX_NAME: {
    const Binding *b = fr ? lw_lookup(fr, e->str) : NULL;
    if (b) {
      if (b->kind == BIND_NUM) {
        *out = b->num;
        return 0;
      }
      if (b->kind == BIND_IDENT)
        lw_error(L, fr, e->span, "'%s' is the name '%s' here, not a number", e->str, b->ident);
      else if (!b->poisoned)
        lw_error(L, fr, e->span, "'%s' is a tensor; a compile-time number is needed here",
                 e->str);
      return -1;
    }
    const ConstVal *c = lw_const(L, e->str);
    if (c) {
      *out = num_int(c->value);
      return 0;
    }
    lw_error(L, fr, e->span, "unknown name '%s'%s", e->str,
             suggest_name(L, fr, e->str, false, true));
    return -1;
  }
  case EX_NEG: {
    Num a;
    if (lw_eval_num(L, fr, e->a, &a)) return -1;
    if (a.is_int) {
      if (a.i == INT64_MIN) goto overflow;
      *out = num_int(-a.i);
    } else {
      *out = num_f(-a.f);
    }
    return 0;
  }
  case EX_BINARY: {
    Num a, b;
    int ra = lw_eval_num(L, fr, e->a, &a);
    int rb = lw_eval_num(L, fr, e->b, &b);
    if (ra || rb) return -1;
    return eval_binary(L, fr, e, a, b, out);
  }
  case EX_STR:
    lw_error(L, fr, e->span, "expected a number; got a string");
    return -1;
  case EX_LIST:
    lw_error(L, fr, e->span, "expected a number; got a list");
    return -1;
  case EX_CALL:
    lw_error(L, fr, e->span, "expected a compile-time number; '%s(...)' is computed at run time",
             e->str);
    return -1;
  default:
    lw_error(L, fr, e->span, "expected a number");
    return -1;
  }
overflow:
  lw_error(L, fr, e->span, "integer overflow in a compile-time expression");
  return -1;
}

static bool scope_lookup(void *ud, const char *name, int64_t *value) {
  const Frame *fr = ud;
  const Binding *b = lw_lookup(fr, name);
  if (!b || b->kind != BIND_NUM) return false;
  if (b->num.is_int) {
    *value = b->num.i;
    return true;
  }
  if (b->num.f == floor(b->num.f) && fabs(b->num.f) < 9e15) {
    *value = (int64_t)b->num.f;
    return true;
  }
  return false;
}

ConstScope lw_scope(const Frame *fr) {
  ConstScope s = {scope_lookup, (void *)fr};
  return s;
}

static int eval_int(Lower *L, const Frame *fr, const AstExpr *e, const char *what, int64_t min,
                    int64_t *out) {
  Num v;
  if (lw_eval_num(L, fr, e, &v)) return -1;
  if (!v.is_int) {
    lw_error(L, fr, e->span, "%s must be an integer; got %g", what, v.f);
    return -1;
  }
  if (v.i < min) {
    lw_error(L, fr, e->span, "%s must be at least %lld; got %lld", what, (long long)min,
             (long long)v.i);
    return -1;
  }
  *out = v.i;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* expressions                                                               */

const AstItem *lw_find_block(const Lower *L, const char *name) {
  for (int i = 0; i < L->p->nblocks; i++)
    if (L->p->blocks[i]->name && strcmp(L->p->blocks[i]->name, name) == 0)
      return L->p->blocks[i];
  return NULL;
}

static int find_extern(const Lower *L, const char *name) {
  for (int i = 0; i < L->p->nexterns; i++)
    if (L->p->externs[i].name && strcmp(L->p->externs[i].name, name) == 0) return i;
  return -1;
}

static void lower_stmts(Lower *L, Frame *fr, PNode *scope, AstStmt **body, int n, bool top,
                        int32_t *ret, bool *returned);

/* A keyword argument of a block call: a number or a name passed through. */
static int block_kwarg(Lower *L, const Frame *fr, const AstExpr *v, Binding *out) {
  if (v->kind == EX_NAME) {
    const Binding *b = fr ? lw_lookup(fr, v->str) : NULL;
    if (b && b->kind != BIND_VALUE) {
      out->kind = b->kind;
      out->num = b->num;
      out->ident = b->ident;
      return 0;
    }
    if (b) {
      if (!b->poisoned)
        lw_error(L, fr, v->span,
                 "keyword arguments of blocks are numbers or names; '%s' is a tensor (pass it "
                 "as a positional argument)", v->str);
      return -1;
    }
    const ConstVal *c = lw_const(L, v->str);
    if (c) {
      out->kind = BIND_NUM;
      out->num = num_int(c->value);
      return 0;
    }
    out->kind = BIND_IDENT;
    out->ident = v->str;
    return 0;
  }
  if (v->kind == EX_STR) {
    out->kind = BIND_IDENT;
    out->ident = v->str;
    return 0;
  }
  if (v->kind == EX_CALL || v->kind == EX_LIST) {
    lw_error(L, fr, v->span,
             "keyword arguments of blocks are numbers or names; pass tensors as positional "
             "arguments");
    return -1;
  }
  Num n;
  if (lw_eval_num(L, fr, v, &n)) return -1;
  out->kind = BIND_NUM;
  out->num = n;
  return 0;
}

/* A call of blk from fr is allowed: no recursion, not too deep.  0, or -1
 * diagnosed at `at`. */
static int block_enter(Lower *L, const Frame *fr, const AstItem *blk, Span at) {
  for (const Frame *c = fr; c; c = c->caller)
    if (c->block == blk) {
      Diag *g = lw_error(L, fr, at, "block '%s' calls itself; recursion is not allowed",
                         blk->name);
      lw_note(L, g, blk->name_span, "'%s' is defined here", blk->name);
      return -1;
    }
  if (L->depth >= 64) {
    lw_error(L, fr, at, "block calls nested more than 64 deep");
    return -1;
  }
  return 0;
}

int lw_block_npos(const AstItem *blk) {
  int npos = 0;
  for (int i = 0; i < blk->nparams; i++)
    if (!blk->params[i].def) npos++;
  return npos;
}

/* The call's keyword arguments name keyword parameters of blk, once each.
 * false when one does not (diagnosed). */
static bool block_kwargs_ok(Lower *L, const Frame *fr, const AstExpr *e, const AstItem *blk) {
  const char **knames = arena_alloc(L->A, sizeof *knames * (size_t)(blk->nparams + 1));
  int nk = 0;
  for (int i = 0; i < blk->nparams; i++)
    if (blk->params[i].def) knames[nk++] = blk->params[i].name;
  bool ok = true;
  for (int j = 0; j < e->nkwargs; j++) {
    const AstKwarg *kw = &e->kwargs[j];
    int pi = -1;
    for (int i = 0; i < blk->nparams; i++)
      if (strcmp(blk->params[i].name, kw->name) == 0) pi = i;
    if (pi < 0) {
      const char *s = diag_suggest(kw->name, knames, nk);
      Diag *g = lw_error(L, fr, kw->name_span, "block '%s' has no parameter '%s'%s%s%s",
                         blk->name, kw->name, s ? "; did you mean '" : "", s ? s : "",
                         s ? "'?" : "");
      lw_note(L, g, blk->name_span, "'%s' is defined here", blk->name);
      ok = false;
      continue;
    }
    if (!blk->params[pi].def) {
      lw_error(L, fr, kw->name_span,
               "'%s' is a positional parameter of block '%s'; pass it without '%s:'", kw->name,
               blk->name, kw->name);
      ok = false;
      continue;
    }
    for (int i = 0; i < j; i++)
      if (strcmp(e->kwargs[i].name, kw->name) == 0) {
        Diag *g = lw_error(L, fr, kw->name_span, "argument '%s:' given twice", kw->name);
        lw_note(L, g, e->kwargs[i].name_span, "first given here");
        ok = false;
      }
  }
  return ok;
}

/* Binds blk's keyword parameters in nf: the value given in the call e (may
 * be NULL: no call expression), else the default.  false on an error. */
static bool block_bind_kwargs(Lower *L, const Frame *fr, Frame *nf, const AstExpr *e,
                              const AstItem *blk) {
  bool ok = true;
  for (int i = 0; i < blk->nparams; i++) {
    const AstParam *pa = &blk->params[i];
    if (!pa->def) continue;
    const AstKwarg *given = NULL;
    for (int j = 0; e && j < e->nkwargs; j++)
      if (strcmp(e->kwargs[j].name, pa->name) == 0) {
        given = &e->kwargs[j];
        break;
      }
    Binding b;
    memset(&b, 0, sizeof b);
    int rc = given ? block_kwarg(L, fr, given->value, &b) : block_kwarg(L, NULL, pa->def, &b);
    if (rc) {
      ok = false;
      continue;
    }
    Binding *nb = bind(L, nf, pa->name, pa->span);
    nb->kind = b.kind;
    nb->num = b.num;
    nb->ident = b.ident;
  }
  return ok;
}

/* Lowers blk's body in its frame nf (arguments bound); the value returned. */
static int32_t block_run(Lower *L, const Frame *fr, Frame *nf, PNode *parent, bool whole,
                         const AstItem *blk, Span call) {
  PNode *pn = lw_pnode(L, parent, PN_CALL, blk->name, whole);
  int32_t ret = -1;
  bool returned = false;
  L->depth++;
  lower_stmts(L, nf, pn, blk->body, blk->nbody, true, &ret, &returned);
  L->depth--;
  if (!returned) {
    Diag *g = lw_error(L, fr, call, "block '%s' has no return statement", blk->name);
    lw_note(L, g, blk->name_span, "'%s' is defined here", blk->name);
    return -1;
  }
  return ret;
}

static Frame block_frame(const AstItem *blk, Frame *caller, Span call) {
  Frame nf;
  memset(&nf, 0, sizeof nf);
  nf.block = blk;
  nf.caller = caller;
  nf.call = call;
  return nf;
}

static int32_t block_call(Lower *L, Frame *fr, PNode *stmt, const AstExpr *e, bool whole,
                          const AstItem *blk) {
  if (block_enter(L, fr, blk, e->name_span)) return -1;
  if (e->clauses)
    lw_error(L, fr, e->clauses->span, "block '%s' takes no { } clauses", blk->name);
  int npos = lw_block_npos(blk);
  bool bad = false;
  if (e->nargs != npos) {
    Diag *g = lw_error(L, fr, e->span, "block '%s' takes %d positional argument%s; got %d",
                       blk->name, npos, npos == 1 ? "" : "s", e->nargs);
    lw_note(L, g, blk->name_span, "'%s' is defined here", blk->name);
    bad = true;
  }
  Frame nf = block_frame(blk, fr, e->span);
  /* positional parameters, in order */
  int k = 0;
  for (int i = 0; i < blk->nparams; i++) {
    if (blk->params[i].def) continue;
    int32_t v = -1;
    if (k < e->nargs) v = lw_expr(L, fr, stmt, e->args[k], false);
    k++;
    bind_value(L, &nf, blk->params[i].name, blk->params[i].span, v);
  }
  for (; k < e->nargs; k++) (void)lw_expr(L, fr, stmt, e->args[k], false);
  if (!block_kwargs_ok(L, fr, e, blk)) bad = true;
  if (!block_bind_kwargs(L, fr, &nf, e, blk)) bad = true;
  if (bad) return -1;
  return block_run(L, fr, &nf, stmt, whole, blk, e->span);
}

int32_t lw_block_apply(Lower *L, Frame *fr, PNode *parent, const AstItem *blk, int32_t x,
                       Span at) {
  if (x < 0 || block_enter(L, fr, blk, at)) return -1;
  Frame nf = block_frame(blk, fr, at);
  for (int i = 0; i < blk->nparams; i++)
    if (!blk->params[i].def) {
      bind_value(L, &nf, blk->params[i].name, blk->params[i].span, x);
      break;
    }
  if (!block_bind_kwargs(L, fr, &nf, NULL, blk)) return -1;
  return block_run(L, fr, &nf, parent, false, blk, at);
}

static int32_t extern_call(Lower *L, Frame *fr, PNode *stmt, const AstExpr *e, int idx) {
  const ExternDecl *x = &L->p->externs[idx];
  bool bad = false;
  if (e->nargs != 1) {
    Diag *g = lw_error(L, fr, e->span, "extern '%s' is applied to one tensor; got %d arguments",
                       x->name, e->nargs);
    lw_note(L, g, x->span, "'%s' is declared here", x->name);
    bad = true;
  }
  if (e->nkwargs) {
    lw_error(L, fr, e->kwargs[0].name_span, "extern '%s' takes no keyword arguments", x->name);
    bad = true;
  }
  if (e->clauses) {
    lw_error(L, fr, e->clauses->span, "extern '%s' takes no { } clauses", x->name);
    bad = true;
  }
  int32_t v = -1;
  for (int i = 0; i < e->nargs; i++) {
    int32_t a = lw_expr(L, fr, stmt, e->args[i], false);
    if (i == 0) v = a;
  }
  if (bad || v < 0) return -1;
  if (lw_vtype(L, v)->dtype != IR_F32) {
    lw_error(L, fr, e->args[0]->span, "extern '%s' takes f32 values; this is %s", x->name,
             lw_vstr(L, v));
    return -1;
  }
  IrNode n = {.op = OP_EXTERN, .nin = 1, .in = {v}, .attr.i = {idx}};
  return ir_op(lw_at(L, fr, e->span), n);
}

static int32_t lower_call(Lower *L, Frame *fr, PNode *stmt, const AstExpr *e, bool whole) {
  /* a block's name parameter used as a function: `pool: max` then pool(x) */
  const Binding *nb = lw_lookup(fr, e->str);
  if (nb && nb->kind == BIND_IDENT) {
    AstExpr *ce = arena_alloc(L->A, sizeof *ce);
    *ce = *e;
    ce->str = nb->ident;
    ce->len = (uint32_t)strlen(nb->ident);
    e = ce;
  }
  const AstItem *blk = lw_find_block(L, e->str);
  if (lw_is_builtin(e->str) && blk) {
    /* never a silent choice between the two */
    Diag *g = lw_error(L, fr, e->name_span,
                       "'%s' is a built-in and also the name of a block; rename the block",
                       e->str);
    lw_note(L, g, blk->name_span, "block '%s' is defined here", blk->name);
    return -1;
  }
  if (lw_is_builtin(e->str)) return lw_builtin(L, fr, stmt, e, whole);
  if (blk) return block_call(L, fr, stmt, e, whole, blk);
  int xi = find_extern(L, e->str);
  if (xi >= 0) return extern_call(L, fr, stmt, e, xi);
  /* unknown: suggest among built-ins, blocks and externs */
  int cap = 64 + L->p->nblocks + L->p->nexterns;
  const char **c = arena_alloc(L->A, sizeof *c * (size_t)cap);
  int n = lw_builtin_names(c, 64);
  for (int i = 0; i < L->p->nblocks; i++) c[n++] = L->p->blocks[i]->name;
  for (int i = 0; i < L->p->nexterns; i++) c[n++] = L->p->externs[i].name;
  const char *s = diag_suggest(e->str, c, n);
  lw_error(L, fr, e->name_span, "unknown function '%s'%s%s%s", e->str,
           s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
  for (int i = 0; i < e->nargs; i++) (void)lw_expr(L, fr, stmt, e->args[i], false);
  return -1;
}

static bool need_f32(Lower *L, const Frame *fr, int32_t v, const AstExpr *e, const char *what) {
  if (lw_vtype(L, v)->dtype == IR_F32) return true;
  lw_error(L, fr, e->span, "%s needs f32 values; this is %s (embed integer ids first)", what,
           lw_vstr(L, v));
  return false;
}

int32_t lw_expr(Lower *L, Frame *fr, PNode *stmt, const AstExpr *e, bool whole) {
  if (lw_is_const(L, fr, e)) {
    Num v;
    if (lw_eval_num(L, fr, e, &v)) return -1;
    IrType scalar = ir_type_make(IR_F32, 0, NULL, false);
    return ir_fill(lw_at(L, fr, e->span), &scalar, v.f);
  }
  switch (e->kind) {
  case EX_NAME: {
    const Binding *b = lw_lookup(fr, e->str);
    if (b && b->kind == BIND_VALUE) return b->poisoned ? -1 : b->value;
    if (b && b->kind == BIND_IDENT) {
      lw_error(L, fr, e->span, "'%s' is the name '%s' here, not a value", e->str, b->ident);
      return -1;
    }
    lw_error(L, fr, e->span, "unknown name '%s'%s", e->str,
             suggest_name(L, fr, e->str, true, true));
    return -1;
  }
  case EX_NEG: {
    int32_t a = lw_expr(L, fr, stmt, e->a, false);
    if (a < 0 || !need_f32(L, fr, a, e->a, "'-'")) return -1;
    return ir_unary(lw_at(L, fr, e->span), OP_NEG, a);
  }
  case EX_BINARY: {
    int32_t a = lw_expr(L, fr, stmt, e->a, false);
    int32_t b = lw_expr(L, fr, stmt, e->b, false);
    if (e->op == '%') {
      if (a >= 0 && b >= 0)
        lw_error(L, fr, e->span, "'%%' is only for compile-time numbers (consts)");
      return -1;
    }
    if (a < 0 || b < 0) return -1;
    char opname[4] = {'\'', e->op, '\'', 0};
    if (!need_f32(L, fr, a, e->a, opname) || !need_f32(L, fr, b, e->b, opname)) return -1;
    IrOp op = e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB : e->op == '*' ? OP_MUL
            : e->op == '/' ? OP_DIV : OP_MATMUL;
    if (op == OP_MATMUL) {
      const IrType *ta = lw_vtype(L, a), *tb = lw_vtype(L, b);
      if (ta->rank < 2 || tb->rank < 2) {
        lw_error(L, fr, e->span, "'@' needs at least two axes on both sides; got %s @ %s",
                 lw_vstr(L, a), lw_vstr(L, b));
        return -1;
      }
      if (ta->batched && tb->batched) {
        /* both per example: matrices on both sides, batch lined up */
        int pa = ta->rank - 1, pb = tb->rank - 1;
        if (pa < 2 || pb < 2) {
          lw_error(L, fr, e->span,
                   "'@' of two per-example values needs two axes on both sides; got %s @ %s "
                   "(reshape a vector to [1, n])",
                   lw_vstr(L, a), lw_vstr(L, b));
          return -1;
        }
        int pe = pa > pb ? pa : pb;
        a = align_batched(L, fr, a, pe, e->span);
        b = align_batched(L, fr, b, pe, e->span);
      }
      return ir_matmul(lw_at(L, fr, e->span), a, b, false, false);
    }
    return lw_arith(L, fr, op, a, b, e->span);
  }
  case EX_CALL:
    return lower_call(L, fr, stmt, e, whole);
  case EX_STR:
    lw_error(L, fr, e->span, "a string is not a value");
    return -1;
  case EX_LIST:
    lw_error(L, fr, e->span, "a list is only an argument (of reshape or transpose), not a value");
    return -1;
  default:
    lw_error(L, fr, e->span, "this is not a value");
    return -1;
  }
}

/* ------------------------------------------------------------------------ */
/* statements                                                                */

static int read_type(Lower *L, const Frame *fr, const AstType *t, IrType *out, int64_t *classes) {
  *classes = 0;
  int64_t dims[IR_MAX_RANK];
  bool bad = false;
  if (t->base == TY_CLASS) {
    if (!t->classes || eval_int(L, fr, t->classes, "the class count", 2, classes)) bad = true;
  }
  if (t->unsized) {
    lw_error(L, fr, t->span, "a model value needs a full shape; '[]' is only for extern arrays");
    return -1;
  }
  if (t->ndims > IR_MAX_RANK - 1) {
    lw_error(L, fr, t->span, "at most %d axes per example; got %d", IR_MAX_RANK - 1, t->ndims);
    return -1;
  }
  for (int i = 0; i < t->ndims; i++)
    if (eval_int(L, fr, t->dims[i], "a dimension", 1, &dims[i])) bad = true;
  if (bad) return -1;
  *out = ir_type_make(t->base == TY_F32 ? IR_F32 : IR_I32, t->ndims, dims, false);
  return 0;
}

static void declare_var(Lower *L, Frame *fr, const AstStmt *s) {
  bool target = s->kind == ST_TARGET;
  Model *m = L->m;
  for (int i = 0; i < m->ninputs + m->ntargets; i++) {
    const ModelVar *o = i < m->ninputs ? &m->inputs[i] : &m->targets[i - m->ninputs];
    if (strcmp(o->name, s->name) == 0) {
      Diag *g = lw_error(L, fr, s->name_span, "'%s' is declared twice", s->name);
      lw_note(L, g, o->span, "'%s' was declared here", s->name);
      return;
    }
  }
  IrType pe;
  int64_t classes = 0;
  int rc = read_type(L, fr, s->type, &pe, &classes);
  ModelVar **arr = target ? &m->targets : &m->inputs;
  int *cnt = target ? &m->ntargets : &m->ninputs;
  int *cap = target ? &L->tcap : &L->icap;
  *arr = arena_grow(L->A, *arr, *cnt, cap, sizeof **arr, 4);
  int idx = (*cnt)++;
  ModelVar *v = &(*arr)[idx];
  memset(v, 0, sizeof *v);
  v->name = s->name;
  v->span = s->span;
  v->type = rc ? ir_type_make(IR_F32, 0, NULL, false) : pe;
  v->classes = classes;
  if (rc) {
    bind_value(L, fr, s->name, s->name_span, -1);
    return;
  }
  int64_t dims[IR_MAX_RANK];
  dims[0] = L->batch;
  for (int i = 0; i < pe.rank; i++) dims[i + 1] = pe.dim[i];
  IrNode n = {.op = OP_INPUT, .name = s->name};
  n.type = ir_type_make((IrDtype)pe.dtype, pe.rank + 1, dims, true);
  n.attr.i[0] = target ? L->ninputs_top + idx : idx;
  bind_value(L, fr, s->name, s->name_span, ir_op(lw_at(L, fr, s->span), n));
}

static const char *stmt_word(StmtKind k) {
  switch (k) {
  case ST_INPUT: return "input";
  case ST_TARGET: return "target";
  case ST_OUTPUT: return "output";
  case ST_LOSS: return "loss";
  case ST_REPEAT: return "repeat";
  case ST_RETURN: return "return";
  default: return "statement";
  }
}

/* `output name = expr`, statement i of body. */
static void lower_output(Lower *L, Frame *fr, PNode *scope, AstStmt **body, int i) {
  const AstStmt *s = body[i];
  PNode *sn = lw_pnode(L, scope, PN_STMT, s->name, false);
  int32_t v = lw_expr(L, fr, sn, s->expr, true);
  for (int j = 0; j < L->nouts; j++)
    if (L->outs[j].role == OUT_OUTPUT && strcmp(L->outs[j].name, s->name) == 0) {
      Diag *g = lw_error(L, fr, s->name_span, "output '%s' is declared twice", s->name);
      for (int k = 0; k < i; k++)
        if (body[k]->kind == ST_OUTPUT && strcmp(body[k]->name, s->name) == 0) {
          lw_note(L, g, body[k]->name_span, "first declared here");
          break;
        }
      v = -2;
      break;
    }
  if (v >= 0) lw_add_output(L, s->name, v, OUT_OUTPUT, L->noutputs++);
  bind_value(L, fr, s->name, s->name_span, v < 0 ? -1 : v);
}

/* `loss expr`: the model's one rank-0 f32 loss. */
static void lower_loss(Lower *L, Frame *fr, PNode *scope, const AstStmt *s) {
  PNode *sn = lw_pnode(L, scope, PN_STMT, "loss", false);
  int32_t v = lw_expr(L, fr, sn, s->expr, true);
  if (L->loss_stmt) {
    Diag *g = lw_error(L, fr, s->span, "a model has one loss statement; add the terms with '+'");
    lw_note(L, g, L->loss_stmt->span, "the first loss is here");
    return;
  }
  L->loss_stmt = s;
  if (v < 0) return;
  const IrType *t = lw_vtype(L, v);
  if (t->rank != 0 || t->dtype != IR_F32) {
    lw_error(L, fr, s->expr->span,
             "loss must be a scalar; cross_entropy(...) gives one (this is %s)", lw_tstr(L, t));
    return;
  }
  L->loss = v;
  L->loss_span = s->expr->span;
}

/* `repeat N { ... }`: the body unrolled N times, one naming scope each. */
static void lower_repeat(Lower *L, Frame *fr, PNode *scope, const AstStmt *s, int32_t *ret,
                         bool *returned) {
  int64_t count = 1;
  if (eval_int(L, fr, s->expr, "the repeat count", 1, &count)) count = 1;
  if (count > 4096) {
    lw_error(L, fr, s->expr->span, "repeat count %lld is too large (at most 4096)",
             (long long)count);
    count = 1;
  }
  for (int64_t k = 0; k < count && !*returned; k++) {
    PNode *it = lw_pnode(L, scope, PN_SCOPE, arena_printf(L->A, "r%d", scope->nrepeat++), false);
    lower_stmts(L, fr, it, s->body, s->nbody, false, ret, returned);
  }
}

static void lower_stmts(Lower *L, Frame *fr, PNode *scope, AstStmt **body, int n, bool top,
                        int32_t *ret, bool *returned) {
  for (int i = 0; i < n; i++) {
    const AstStmt *s = body[i];
    if (!s) continue;
    if (*returned) {
      lw_error(L, fr, s->span, "statement after 'return'; 'return' ends a block");
      return;
    }
    bool model_only = s->kind == ST_INPUT || s->kind == ST_TARGET || s->kind == ST_OUTPUT ||
                      s->kind == ST_LOSS;
    if (model_only && fr->block) {
      lw_error(L, fr, s->span, "'%s' is only allowed in a model, not in block '%s'",
               stmt_word(s->kind), fr->block->name);
      if (s->kind == ST_OUTPUT) bind_value(L, fr, s->name, s->name_span, -1);
      continue;
    }
    if (model_only && !top) {
      lw_error(L, fr, s->span, "'%s' must be at the top level of the model, not inside repeat",
               stmt_word(s->kind));
      if (s->kind != ST_LOSS) bind_value(L, fr, s->name, s->name_span, -1);
      continue;
    }
    switch (s->kind) {
    case ST_INPUT:
    case ST_TARGET:
      declare_var(L, fr, s);
      break;
    case ST_BIND: {
      PNode *sn = lw_pnode(L, scope, PN_STMT, s->name, false);
      bind_value(L, fr, s->name, s->name_span, lw_expr(L, fr, sn, s->expr, true));
      break;
    }
    case ST_OUTPUT:
      lower_output(L, fr, scope, body, i);
      break;
    case ST_LOSS:
      lower_loss(L, fr, scope, s);
      break;
    case ST_REPEAT:
      lower_repeat(L, fr, scope, s, ret, returned);
      break;
    case ST_RETURN: {
      if (!fr->block) {
        lw_error(L, fr, s->span, "'return' is only allowed in a block");
        break;
      }
      if (!top) {
        lw_error(L, fr, s->span, "'return' must be the last statement of a block, not inside "
                                 "repeat");
        break;
      }
      PNode *sn = lw_pnode(L, scope, PN_STMT, NULL, false);
      *ret = lw_expr(L, fr, sn, s->expr, true);
      *returned = true;
      break;
    }
    }
  }
}

/* ------------------------------------------------------------------------ */
/* the model                                                                 */

static Model *lower_run(Program *p, const AstItem *item, int64_t batch, int rep_override) {
  Lower Lv;
  Lower *L = &Lv;
  memset(L, 0, sizeof *L);
  L->rep_override = rep_override;
  L->p = p;
  L->A = p->arena;
  L->d = p->diags;
  L->batch = batch;
  L->loss = -1;
  Model *m = arena_alloc(L->A, sizeof *m);
  L->m = m;
  m->name = item->name;
  m->span = item->span;
  m->item = item;
  L->f = m->fwd = ir_func_new(L->A, item->name, batch);
  if (!m->fwd) return NULL;
  L->b = ir_builder(L->f, item->span);
  L->b.report = report;
  L->b.ud = L;
  for (int i = 0; i < item->nbody; i++)
    if (item->body[i] && item->body[i]->kind == ST_INPUT) L->ninputs_top++;
  Frame fr;
  memset(&fr, 0, sizeof fr);
  PNode *root = lw_pnode(L, NULL, PN_SCOPE, item->name, false);
  int32_t ret = -1;
  bool returned = false;
  lower_stmts(L, &fr, root, item->body, item->nbody, true, &ret, &returned);
  if (L->nerr) return NULL;
  /* the loss, with attnpool penalties added */
  int32_t loss = L->loss;
  if (loss >= 0)
    for (int i = 0; i < L->npens; i++)
      loss = lw_arith(L, NULL, OP_ADD, loss, L->pens[i], L->pen_spans[i]);
  if (L->nerr) return NULL;
  if (loss >= 0) ir_add_output(m->fwd, "loss", loss, OUT_LOSS, 0);
  static const IrOutRole order[] = {OUT_OUTPUT, OUT_PRED, OUT_HEADS};
  for (int r = 0; r < 3; r++)
    for (int i = 0; i < L->nouts; i++)
      if (L->outs[i].role == order[r])
        ir_add_output(m->fwd, L->outs[i].name, L->outs[i].value, order[r], L->outs[i].index);
  return m;
}

/* Model initialisation, drawn by the runtime from the seeded RNG (layers.c
 * records it per parameter):
 *   embed table, learned position table   normal(0, 0.02)
 *   linear, ffn, attention, attnpool       uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
 *   biases                                 zeros
 *   layernorm gain / bias                  ones / zeros */
Model *lower_model(Program *p, const AstItem *model, int64_t batch) {
  return lower_model_rep(p, model, batch, -1);
}

Model *lower_model_rep(Program *p, const AstItem *model, int64_t batch, int rep_override) {
  if (!p || !p->arena || !p->diags || !model) return NULL;
  if (model->kind != IT_MODEL) {
    diag_error(p->diags, model->span, "'%s' is not a model", model->name ? model->name : "?");
    return NULL;
  }
  if (batch < 1) {
    diag_error(p->diags, model->name_span, "batch size must be at least 1; got %lld",
               (long long)batch);
    return NULL;
  }
  Arena *A = p->arena;
  jmp_buf *saved = A->oom_jmp;
  jmp_buf jb;
  if (setjmp(jb)) {
    A->oom_jmp = saved;
    diag_error(p->diags, model->name_span, "out of memory while lowering model '%s'",
               model->name);
    return NULL;
  }
  A->oom_jmp = &jb;
  Model *m = lower_run(p, model, batch, rep_override);
  A->oom_jmp = saved;
  return m;
}
