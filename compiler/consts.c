/* consts.c - compile-time values: integer (and number) arithmetic over
 * literals, consts and scope names (clauses.h).
 *
 * Consts are evaluated on demand, so a const may use one defined later in
 * the file or in another module; a chain of consts being evaluated lives on
 * the C stack and a name that appears twice in it is a cycle.  A const whose
 * definition fails is recorded as failed, so its uses fail quietly instead
 * of repeating the error.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clauses.h"

/* A value during evaluation: an exact integer or a float. */
typedef struct Num {
  bool is_int;
  int64_t i;
  double d;
} Num;

/* A const being evaluated, linked towards the outermost one. */
typedef struct Frame {
  const AstItem *item;
  Span use;              /* where the next const in the chain is used */
  const struct Frame *up;
} Frame;

static double num_d(Num n) { return n.is_int ? (double)n.i : n.d; }

/* The source text of a span, shortened for messages. */
const char *sema_span_text(const Program *p, Span s) {
  if (!p->src || s.file < 0 || s.file >= p->src->n) return "?";
  const SrcFile *f = &p->src->files[s.file];
  if ((size_t)s.off + s.len > f->len) return "?";
  size_t n = s.len;
  const char *t = f->text + s.off;
  const char *nl = memchr(t, '\n', n);
  if (nl) n = (size_t)(nl - t);
  bool cut = n > 40;
  if (cut) n = 37;
  char *out = arena_alloc(p->arena, n + 4);
  if (!out) return "?";
  memcpy(out, t, n);
  if (cut) memcpy(out + n, "...", 4);
  return out;
}

/* What kind of thing an expression is, for "found ..." messages. */
const char *sema_expr_kind(const AstExpr *e) {
  switch (e->kind) {
  case EX_NUM: return e->is_int ? "an integer" : "a number";
  case EX_STR: return "a string";
  case EX_NAME: return "a name";
  case EX_BINARY: return e->op == '@' ? "a matrix product" : "an expression";
  case EX_NEG: return "an expression";
  case EX_CALL: return "a call";
  case EX_LIST: return "a list";
  case EX_RANGE: return "a range";
  }
  return "an expression";
}

/* ---- const table ---- */

static int count_const_items(const Program *p) {
  int n = 0;
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++)
      if (p->files[f]->items[i]->kind == IT_CONST) n++;
  return n;
}

static ConstVal *const_find(const Program *p, const char *name) {
  for (int i = 0; i < p->nconsts; i++)
    if (strcmp(p->consts[i].name, name) == 0) return &p->consts[i];
  return NULL;
}

static ConstVal *const_find_item(const Program *p, const AstItem *it) {
  for (int i = 0; i < p->nconsts; i++) {
    const ConstVal *c = &p->consts[i];
    if (c->span.file == it->name_span.file && c->span.off == it->name_span.off &&
        strcmp(c->name, it->name) == 0)
      return &p->consts[i];
  }
  return NULL;
}

static const AstItem *const_item(const Program *p, const char *name) {
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (it->kind == IT_CONST && it->name && strcmp(it->name, name) == 0) return it;
    }
  return NULL;
}

static void const_record(Program *p, const AstItem *it, int64_t v, bool failed) {
  if (!p->consts) {
    int cap = count_const_items(p);
    if (cap == 0) return;
    p->consts = arena_alloc(p->arena, sizeof(ConstVal) * (size_t)cap);
    if (!p->consts) return;
  }
  if (p->nconsts >= count_const_items(p)) return;
  ConstVal *c = &p->consts[p->nconsts++];
  c->name = it->name;
  c->span = it->name_span;
  c->value = v;
  c->failed = failed;
}

/* ---- evaluation ---- */

static int eval(Program *p, const AstExpr *e, const ConstScope *scope, const Frame *chain,
                bool want_int, Num *out);

static int eval_const_item(Program *p, const AstItem *it, Span use, const Frame *chain,
                           int64_t *out) {
  ConstVal *done = const_find_item(p, it);
  if (done) {
    *out = done->value;
    return done->failed ? -1 : 0;
  }
  for (const Frame *f = chain; f; f = f->up) {
    if (f->item != it) continue;
    Diag *d = diag_error(p->diags, use, "const '%s' depends on itself", it->name);
    /* the chain, from the const itself to the use that closes the cycle */
    const Frame *seq[64];
    int n = 0;
    for (const Frame *g = chain; g && n < 64; g = g->up) {
      seq[n++] = g;
      if (g == f) break;
    }
    for (int k = n - 1; k > 0; k--)
      diag_note(p->diags, d, seq[k]->use, "'%s' uses '%s' here", seq[k]->item->name,
                seq[k - 1]->item->name);
    return -1;
  }
  Frame fr = {it, SPAN_NONE, chain};
  Num v = {0};
  int rc = -1;
  const ConstOverride *ov = NULL;
  for (int i = 0; i < p->noverrides; i++)
    if (!strcmp(p->overrides[i].name, it->name)) ov = &p->overrides[i];
  if (ov) v = (Num){true, ov->value, 0}, rc = 0; /* --set NAME=VALUE */
  else if (it->expr) rc = eval(p, it->expr, NULL, &fr, true, &v);
  if (rc == 0 && !v.is_int) rc = -1;
  /* a cycle may have recorded this const while we were inside it */
  done = const_find_item(p, it);
  if (done) {
    *out = done->value;
    return done->failed ? -1 : 0;
  }
  const_record(p, it, rc == 0 ? v.i : 0, rc != 0);
  *out = rc == 0 ? v.i : 0;
  return rc;
}

bool sema_has_const(const Program *p, const char *name, const char **suggest) {
  const char *cands[256];
  int k = 0;
  *suggest = NULL;
  if (const_item(p, name)) return true;
  for (int f = 0; f < p->nfiles && k < 256; f++)
    for (int i = 0; i < p->files[f]->nitems && k < 256; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (it->kind == IT_CONST && it->name) cands[k++] = it->name;
    }
  *suggest = k ? diag_suggest(name, cands, k) : NULL;
  return false;
}

static void unknown_name(Program *p, const AstExpr *e) {
  const char *cands[256];
  int k = 0;
  for (int f = 0; f < p->nfiles && k < 256; f++)
    for (int i = 0; i < p->files[f]->nitems && k < 256; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (it->kind == IT_CONST && it->name) cands[k++] = it->name;
    }
  const char *s = k ? diag_suggest(e->str, cands, k) : NULL;
  if (s)
    diag_error(p->diags, e->span, "unknown name '%s'; did you mean '%s'?", e->str, s);
  else
    diag_error(p->diags, e->span, "unknown name '%s' (a compile-time value must use numbers "
                                  "and consts)", e->str);
}

static int eval_name(Program *p, const AstExpr *e, const ConstScope *scope, const Frame *chain,
                     Num *out) {
  int64_t v;
  if (scope && scope->lookup && scope->lookup(scope->ud, e->str, &v)) {
    *out = (Num){true, v, 0};
    return 0;
  }
  const AstItem *it = const_item(p, e->str);
  if (!it) {
    /* consts recorded without an item (a program built by hand) */
    const ConstVal *c = const_find(p, e->str);
    if (c) {
      *out = (Num){true, c->value, 0};
      return c->failed ? -1 : 0;
    }
    unknown_name(p, e);
    return -1;
  }
  /* the evaluating const records where it uses this one (for cycle notes) */
  Frame top;
  const Frame *ch = NULL;
  if (chain) {
    top = *chain;
    top.use = e->span;
    ch = &top;
  }
  int rc = eval_const_item(p, it, e->span, ch, &v);
  *out = (Num){true, v, 0};
  return rc;
}

static int int_arith(Program *p, const AstExpr *e, int64_t a, int64_t b, int64_t *r) {
  bool ovf = false;
  switch (e->op) {
  case '+': ovf = __builtin_add_overflow(a, b, r); break;
  case '-': ovf = __builtin_sub_overflow(a, b, r); break;
  case '*': ovf = __builtin_mul_overflow(a, b, r); break;
  case '/':
  case '%':
    if (b == 0) {
      diag_error(p->diags, e->b->span, "%s by zero", e->op == '/' ? "division" : "modulo");
      return -1;
    }
    if (a == INT64_MIN && b == -1) {
      ovf = true;
      break;
    }
    *r = e->op == '/' ? a / b : a % b;
    break;
  default:
    diag_error(p->diags, e->span, "'%c' is not allowed in a compile-time value", e->op);
    return -1;
  }
  if (ovf) {
    diag_error(p->diags, e->span, "integer overflow: %lld %c %lld does not fit in 64 bits",
               (long long)a, e->op, (long long)b);
    return -1;
  }
  return 0;
}

static int eval(Program *p, const AstExpr *e, const ConstScope *scope, const Frame *chain,
                bool want_int, Num *out) {
  if (!e) return -1;
  switch (e->kind) {
  case EX_NUM:
    if (e->is_int) {
      *out = (Num){true, e->ival, 0};
      return 0;
    }
    if (want_int) {
      const char *t = sema_span_text(p, e->span);
      if (!strpbrk(t, ".eE"))
        diag_error(p->diags, e->span, "integer %s does not fit in 64 bits", t);
      else
        diag_error(p->diags, e->span, "expected an integer, found %s", t);
      return -1;
    }
    *out = (Num){false, 0, e->num};
    return 0;
  case EX_NAME:
    return eval_name(p, e, scope, chain, out);
  case EX_NEG: {
    Num a;
    if (eval(p, e->a, scope, chain, want_int, &a)) return -1;
    if (!a.is_int) {
      *out = (Num){false, 0, -a.d};
      return 0;
    }
    if (a.i == INT64_MIN) {
      diag_error(p->diags, e->span, "integer overflow: -(%lld) does not fit in 64 bits",
                 (long long)a.i);
      return -1;
    }
    *out = (Num){true, -a.i, 0};
    return 0;
  }
  case EX_BINARY: {
    if (e->op == '@') {
      diag_error(p->diags, e->span, "'@' is not allowed in a compile-time value");
      return -1;
    }
    Num a, b;
    int ra = eval(p, e->a, scope, chain, want_int, &a);
    int rb = eval(p, e->b, scope, chain, want_int, &b);
    if (ra || rb) return -1;
    if (a.is_int && b.is_int) {
      if (!want_int && e->op == '/' && b.i != 0 && a.i % b.i != 0) {
        *out = (Num){false, 0, (double)a.i / (double)b.i};
        return 0;
      }
      int64_t r;
      if (int_arith(p, e, a.i, b.i, &r)) return -1;
      *out = (Num){true, r, 0};
      return 0;
    }
    double x = num_d(a), y = num_d(b), r = 0;
    switch (e->op) {
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': r = x * y; break;
    case '/':
      if (y == 0) {
        diag_error(p->diags, e->b->span, "division by zero");
        return -1;
      }
      r = x / y;
      break;
    case '%':
      diag_error(p->diags, e->span, "'%%' needs integers");
      return -1;
    default:
      diag_error(p->diags, e->span, "'%c' is not allowed in a compile-time value", e->op);
      return -1;
    }
    if (!isfinite(r)) {
      diag_error(p->diags, e->span, "the value is out of range");
      return -1;
    }
    *out = (Num){false, 0, r};
    return 0;
  }
  case EX_STR:
  case EX_CALL:
  case EX_LIST:
  case EX_RANGE:
    diag_error(p->diags, e->span, "expected %s, found %s", want_int ? "an integer" : "a number",
               sema_expr_kind(e));
    return -1;
  }
  return -1;
}

int sema_eval_int(Program *p, const AstExpr *e, const ConstScope *scope, int64_t *out) {
  Num v;
  if (eval(p, e, scope, NULL, true, &v)) return -1;
  if (!v.is_int) return -1;
  *out = v.i;
  return 0;
}

int sema_eval_num(Program *p, const AstExpr *e, const ConstScope *scope, double *out) {
  Num v;
  if (eval(p, e, scope, NULL, false, &v)) return -1;
  *out = num_d(v);
  return 0;
}

int sema_eval_consts(Program *p) {
  int bad = 0;
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (it->kind != IT_CONST || !it->name) continue;
      int64_t v;
      if (eval_const_item(p, it, it->name_span, NULL, &v)) bad = 1;
    }
  return bad ? -1 : 0;
}
