/* layers.c - the built-in operations of the language (language.md §5) as IR:
 * argument checking (positional count, keyword names and kinds) and one
 * expansion function per op, with the numerics the language fixes.
 *
 * Parameters are created in the order listed below (it is their order in
 * the model's parameter buffer), with their initialisation:
 *   embed       table [vocab, dim]              normal(0, 0.02)
 *   position    table [n, dim] (kind: learned)  normal(0, 0.02)
 *   linear      w [in, out], b [out]            w uniform(+-1/sqrt(in)), b zeros
 *   ffn         w1 [d, h], b1, w2 [h, d], b2    uniform(+-1/sqrt(fan_in)), zeros
 *   layernorm   gain [d], bias [d]              ones, zeros
 *   attention   wq bq wk bk wv bv wo bo         uniform(+-1/sqrt(fan_in)), zeros
 *   attnpool    w1 [d, hidden], w2 [hidden, H]  uniform(+-1/sqrt(fan_in))
 * `position(n, dim:, kind: sinusoid)` is a constant table:
 *   PE[p, 2i] = sin(p / 10000^(2i/dim)),  PE[p, 2i+1] = cos(p / 10000^(2i/dim)).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lower_int.h"

/* KA_FUNC: a function of one tensor - an elementwise built-in (from the
 * table below) or a block of one positional argument. */
typedef enum { KA_INT, KA_POS, KA_NUM, KA_BOOL, KA_CHOICE, KA_LIST, KA_FUNC } KwKind;

typedef struct KwSpec {
  const char *name;
  uint8_t kind;          /* KwKind; KA_POS: an integer >= 1 */
  bool required;
  const char *choices[4];
} KwSpec;

typedef struct KwVal {
  bool given;
  Span span;
  Num num;
  bool b;
  const char *ident;
  int64_t list[IR_MAX_RANK];
  int nlist;
  IrOp op;               /* KA_FUNC: the built-in's op, or */
  const AstItem *blk;    /* KA_FUNC: the block (NULL for a built-in) */
} KwVal;

#define MAX_POS 64

typedef struct Builtin Builtin;

typedef struct Call {
  const Builtin *bi;
  Lower *L;
  Frame *fr;
  PNode *stmt;
  const AstExpr *e;
  PNode *pn;             /* names this call's parameters */
  int32_t a[MAX_POS];    /* positional values (-1: raw or failed) */
  int na;
  KwVal kw[3];
} Call;

typedef int32_t (*BuiltinFn)(Call *c);

struct Builtin {
  const char *name;
  int8_t pmin, pmax;     /* positional arguments */
  uint8_t raw;           /* bit i: positional i is read, not lowered */
  bool clauses;          /* takes a { } block */
  KwSpec kw[3];
  BuiltinFn fn;
  IrOp op;               /* b_unary: the op applied */
};

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

/* The builder for the nodes of this call, at the call's span. */
static IrBuilder *B(const Call *c) { return lw_at(c->L, c->fr, c->e->span); }

static const char *name_of(const Call *c) { return c->e->str; }
static Span arg_span(const Call *c, int i) { return c->e->args[i]->span; }
static const IrType *ty(const Call *c, int32_t v) { return lw_vtype(c->L, v); }
static int64_t last_dim(const Call *c, int32_t v) {
  const IrType *t = ty(c, v);
  return t->rank ? t->dim[t->rank - 1] : 1;
}

static bool want_f32(Call *c, int i) {
  if (ty(c, c->a[i])->dtype == IR_F32) return true;
  lw_error(c->L, c->fr, arg_span(c, i), "%s needs f32 values; this is %s (embed integer ids first)",
           name_of(c), lw_vstr(c->L, c->a[i]));
  return false;
}

/* at least min axes per example */
static bool want_axes(Call *c, int i, int min, const char *shape) {
  if (lw_perank(c->L, c->a[i]) >= min) return true;
  lw_error(c->L, c->fr, arg_span(c, i), "%s needs %s per example; this is %s", name_of(c), shape,
           lw_vstr(c->L, c->a[i]));
  return false;
}

static int32_t param(Call *c, const char *pname, int rank, const int64_t *dims, InitKind init,
                     double scale, int32_t *index) {
  IrType t = ir_type_make(IR_F32, rank, dims, false);
  return lw_param(c->L, c->pn, pname, t, init, scale, c->e->span, index);
}

static int32_t param1(Call *c, const char *pname, int64_t n, InitKind init, double scale,
                      int32_t *index) {
  return param(c, pname, 1, &n, init, scale, index);
}

static int32_t param2(Call *c, const char *pname, int64_t r, int64_t k, InitKind init,
                      double scale, int32_t *index) {
  int64_t d[2] = {r, k};
  return param(c, pname, 2, d, init, scale, index);
}

/* x @ w (+ b), for x of any rank >= 1 */
static int32_t affine(Call *c, int32_t x, int32_t w, int32_t b) {
  Lower *L = c->L;
  Span at = c->e->span;
  if (x < 0 || w < 0) return -1;
  int32_t y;
  if (ty(c, x)->rank == 1) {
    int64_t d1[2] = {1, ty(c, x)->dim[0]};
    IrType t1 = ir_type_make(IR_F32, 2, d1, false);
    y = ir_matmul(B(c), ir_reshape(B(c), x, &t1), w, false, false);
    if (y < 0) return -1;
    int64_t d2 = last_dim(c, y);
    IrType t2 = ir_type_make(IR_F32, 1, &d2, false);
    y = ir_reshape(B(c), y, &t2);
  } else {
    y = ir_matmul(B(c), x, w, false, false);
  }
  return b >= 0 ? lw_arith(L, c->fr, OP_ADD, y, b, at) : y;
}

/* per-example axis k (negative counts from the end) to a full axis, or -1 */
static int full_axis(Call *c, int32_t v, int64_t k, Span at) {
  int pr = lw_perank(c->L, v);
  int64_t kk = k < 0 ? k + pr : k;
  if (kk < 0 || kk >= pr) {
    lw_error(c->L, c->fr, at, "axis %lld is out of range for %s (%d %s per example)",
             (long long)k, lw_vstr(c->L, v), pr, pr == 1 ? "axis" : "axes");
    return -1;
  }
  return (int)kk + (ty(c, v)->batched ? 1 : 0);
}

/* ------------------------------------------------------------------------ */
/* layers with parameters                                                    */

static int32_t b_embed(Call *c) {
  if (ty(c, c->a[0])->dtype != IR_I32) {
    lw_error(c->L, c->fr, arg_span(c, 0), "embed needs integer ids (int or class); this is %s",
             lw_vstr(c->L, c->a[0]));
    return -1;
  }
  int32_t table = param2(c, "table", c->kw[0].num.i, c->kw[1].num.i, INIT_NORMAL, 0.02, NULL);
  return lw_arith(c->L, c->fr, OP_GATHER, table, c->a[0], c->e->span);
}

static int32_t b_position(Call *c) {
  Lower *L = c->L;
  Num n;
  if (lw_eval_num(L, c->fr, c->e->args[0], &n)) return -1;
  if (!n.is_int || n.i < 1) {
    lw_error(L, c->fr, arg_span(c, 0), "position needs a positive integer length; got %g", n.f);
    return -1;
  }
  int64_t dim = c->kw[0].num.i;
  bool sinusoid = c->kw[1].given && strcmp(c->kw[1].ident, "sinusoid") == 0;
  if (!sinusoid) return param2(c, "table", n.i, dim, INIT_NORMAL, 0.02, NULL);
  if (n.i * dim > ((int64_t)1 << 28)) {
    lw_error(L, c->fr, c->e->span, "position table of %lld x %lld is too large",
             (long long)n.i, (long long)dim);
    return -1;
  }
  float *data = arena_alloc(L->A, sizeof *data * (size_t)(n.i * dim));
  for (int64_t p = 0; p < n.i; p++)
    for (int64_t j = 0; j < dim; j++) {
      double freq = pow(10000.0, -(double)(j - (j & 1)) / (double)dim);
      double a = (double)p * freq;
      data[p * dim + j] = (float)((j & 1) ? cos(a) : sin(a));
    }
  int64_t d[2] = {n.i, dim};
  IrType t = ir_type_make(IR_F32, 2, d, false);
  return ir_const_data(B(c), &t, data);
}

static int32_t b_linear(Call *c) {
  if (!want_f32(c, 0) || !want_axes(c, 0, 1, "f32[.., k]")) return -1;
  int64_t in = last_dim(c, c->a[0]), out = c->kw[0].num.i;
  bool bias = !c->kw[1].given || c->kw[1].b;
  int32_t w = param2(c, "w", in, out, INIT_UNIFORM, 1.0 / sqrt((double)in), NULL);
  int32_t b = bias ? param1(c, "b", out, INIT_ZEROS, 0, NULL) : -1;
  return affine(c, c->a[0], w, b);
}

static int32_t b_ffn(Call *c) {
  if (!want_f32(c, 0) || !want_axes(c, 0, 1, "f32[.., d]")) return -1;
  int64_t d = last_dim(c, c->a[0]), h = c->kw[0].num.i;
  int32_t w1 = param2(c, "w1", d, h, INIT_UNIFORM, 1.0 / sqrt((double)d), NULL);
  int32_t b1 = param1(c, "b1", h, INIT_ZEROS, 0, NULL);
  int32_t w2 = param2(c, "w2", h, d, INIT_UNIFORM, 1.0 / sqrt((double)h), NULL);
  int32_t b2 = param1(c, "b2", d, INIT_ZEROS, 0, NULL);
  int32_t y = affine(c, c->a[0], w1, b1);
  if (!c->kw[1].given)
    y = ir_unary(B(c), OP_GELU, y);
  else if (c->kw[1].blk)
    y = lw_block_apply(c->L, c->fr, c->pn, c->kw[1].blk, y, c->kw[1].span);
  else
    y = ir_unary(B(c), c->kw[1].op, y);
  return affine(c, y, w2, b2);
}

static int32_t b_layernorm(Call *c) {
  if (!want_f32(c, 0) || !want_axes(c, 0, 1, "f32[.., d]")) return -1;
  int64_t d = last_dim(c, c->a[0]);
  int32_t gain = param1(c, "gain", d, INIT_ONES, 0, NULL);
  int32_t bias = param1(c, "bias", d, INIT_ZEROS, 0, NULL);
  int32_t y = ir_op(B(c), (IrNode){.op = OP_LAYERNORM, .nin = 1, .in = {c->a[0]}, .attr.f = {1e-5}});
  y = lw_arith(c->L, c->fr, OP_MUL, y, gain, c->e->span);
  return lw_arith(c->L, c->fr, OP_ADD, y, bias, c->e->span);
}

static HeadGroup *add_group(Lower *L) {
  Model *m = L->m;
  m->groups = arena_grow(L->A, m->groups, m->ngroups, &L->gcap, sizeof *m->groups, 4);
  HeadGroup *g = &m->groups[m->ngroups++];
  memset(g, 0, sizeof *g);
  g->wq = g->wk = g->wv = g->wo = g->w2 = -1;
  return g;
}

/* Clause names of attention, attnpool and repulsion blocks: never replaced
 * by a block's keyword parameter of the same name. */
static const char *const CLAUSE_WORDS[] = {
    "heads", "head_dim", "causal", "dropout", "repulsion", "hidden", "penalty", "alpha",
    "stepsize", "beta", "every", "bandwidth", "kernel", "group", "particles", "weight", "start",
    "stop", "when"};

static bool clause_word(const char *s) {
  for (size_t i = 0; i < sizeof CLAUSE_WORDS / sizeof CLAUSE_WORDS[0]; i++)
    if (strcmp(CLAUSE_WORDS[i], s) == 0) return true;
  return false;
}

/* Inside a block, a clause word naming one of the block's keyword parameters
 * stands for its value: `repulsion rep` with rep: svgd reads `repulsion
 * svgd`, and `alpha (a)` with a: 0.1 reads `alpha 0.1`.  Returns c itself
 * when nothing is replaced, else a copy. */
static const AstClauses *subst_clauses(Lower *L, const Frame *fr, const AstClauses *c) {
  if (!c || !fr->block) return c;
  AstClauses *out = NULL;
  for (int i = 0; i < c->n; i++) {
    const AstWord *w = &c->w[i];
    AstWord nw = *w;
    const char *name = NULL;
    if (w->kind == W_IDENT && !clause_word(w->ident)) name = w->ident;
    if (w->kind == W_VALUE && w->value && w->value->kind == EX_NAME) name = w->value->str;
    const Binding *b = name ? lw_lookup(fr, name) : NULL;
    if (b && b->kind == BIND_IDENT) {
      nw.kind = W_IDENT;
      nw.ident = b->ident;
      nw.value = NULL;
    } else if (b && b->kind == BIND_NUM) {
      AstExpr *e = arena_alloc(L->A, sizeof *e);
      e->kind = EX_NUM;
      e->span = w->span;
      e->num = b->num.f;
      e->ival = b->num.i;
      e->is_int = b->num.is_int;
      nw.kind = W_VALUE;
      nw.value = e;
      nw.ident = NULL;
    } else if (w->kind == W_BLOCK) {
      nw.block = (AstClauses *)subst_clauses(L, fr, w->block);
    }
    if (!out && memcmp(&nw, w, sizeof nw) != 0) {
      out = arena_alloc(L->A, sizeof *out);
      *out = *c;
      out->w = arena_alloc(L->A, sizeof *out->w * (size_t)(c->n + 1));
      memcpy(out->w, c->w, sizeof *out->w * (size_t)c->n);
    }
    if (out) out->w[i] = nw;
  }
  return out ? out : c;
}

static int read_attn(Call *c, bool pool, AttnOptions *o) {
  Lower *L = c->L;
  ConstScope scope = lw_scope(c->fr);
  memset(o, 0, sizeof *o);
  Diag *mark = L->d->tail;
  int rc = clauses_attention(L->p, subst_clauses(L, c->fr, c->e->clauses), c->e->span, pool,
                             &scope, o);
  lw_dedup_since(L, mark);
  if (rc) L->nerr++;
  return rc;
}

/* x with its last two axes swapped */
static int32_t swap_last(IrBuilder *b, int32_t x) {
  if (x < 0) return -1;
  int r = b->f->nodes[x].type.rank;
  int64_t perm[IR_MAX_RANK];
  for (int i = 0; i < r; i++) perm[i] = i;
  if (r >= 2) {
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
  }
  return ir_transpose(b, x, perm);
}

/* [.., T, H*hd] -> [.., H, T, hd] */
static int32_t split_heads(Call *c, int32_t x, int64_t H, int64_t hd) {
  if (x < 0) return -1;
  const IrType *t = ty(c, x);
  int64_t d[IR_MAX_RANK];
  int r = t->rank;
  if (r + 1 > IR_MAX_RANK) {
    lw_error(c->L, c->fr, c->e->span, "attention: too many axes in %s", lw_tstr(c->L, t));
    return -1;
  }
  for (int i = 0; i < r - 1; i++) d[i] = t->dim[i];
  d[r - 1] = H;
  d[r] = hd;
  IrType nt = ir_type_make((IrDtype)t->dtype, r + 1, d, t->batched);
  int32_t y = ir_reshape(B(c), x, &nt);
  if (y < 0) return -1;
  int64_t perm[IR_MAX_RANK];
  for (int i = 0; i <= r; i++) perm[i] = i;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return ir_transpose(B(c), y, perm);
}

/* [.., H, T, hd] -> [.., T, H*hd] */
static int32_t merge_heads(Call *c, int32_t x) {
  if (x < 0) return -1;
  int r = ty(c, x)->rank;
  int64_t perm[IR_MAX_RANK];
  for (int i = 0; i < r; i++) perm[i] = i;
  perm[r - 3] = r - 2;
  perm[r - 2] = r - 3;
  int32_t y = ir_transpose(B(c), x, perm);
  if (y < 0) return -1;
  const IrType *t = ty(c, y);
  int64_t d[IR_MAX_RANK];
  for (int i = 0; i < r - 2; i++) d[i] = t->dim[i];
  d[r - 2] = t->dim[r - 2] * t->dim[r - 1];
  IrType nt = ir_type_make((IrDtype)t->dtype, r - 1, d, t->batched);
  return ir_reshape(B(c), y, &nt);
}

/* x's type with its last axis split into (a, b) or, b = 0, the last two
 * axes merged into one. */
static IrType reshaped_last(const IrType *t, int64_t a, int64_t b) {
  int64_t d[IR_MAX_RANK];
  int r = t->rank;
  for (int i = 0; i < r; i++) d[i] = t->dim[i];
  if (b) {
    d[r - 1] = a;
    d[r] = b;
    r++;
  } else {
    d[r - 2] *= d[r - 1];
    r--;
  }
  return ir_type_make((IrDtype)t->dtype, r, d, t->batched);
}

int32_t lw_heads_cos2(IrBuilder *b, Arena *A, int32_t u, int64_t H) {
  if (u < 0 || H < 2) return -1;
  const IrType *t = &b->f->nodes[u].type;
  if (t->rank < 2 || t->rank + 1 > IR_MAX_RANK) return -1;
  int32_t g = ir_matmul(b, u, u, false, true);                  /* [.., H, H] */
  int32_t n = ir_reduce(b, OP_SUM, ir_unary(b, OP_SQUARE, u), t->rank - 1);
  if (n < 0) return -1;
  IrType tn = reshaped_last(&b->f->nodes[n].type, H, 1);
  n = ir_reshape(b, n, &tn);                                   /* [.., H, 1] */
  int32_t den = ir_matmul(b, n, n, false, true);               /* |u_i|² |u_j|² */
  IrType ts = ir_type_make(IR_F32, 0, NULL, false);
  den = ir_binary(b, OP_ADD, den, ir_fill(b, &ts, 1e-12));
  int32_t c2 = ir_binary(b, OP_DIV, ir_unary(b, OP_SQUARE, g), den);
  /* off the diagonal, each pair weighted 1 / (H (H - 1)) */
  float *mask = arena_alloc(A, sizeof *mask * (size_t)(H * H));
  for (int64_t i = 0; i < H; i++)
    for (int64_t j = 0; j < H; j++) mask[i * H + j] = i == j ? 0.0f : 1.0f / (float)(H * (H - 1));
  int64_t hh[2] = {H, H};
  IrType tm = ir_type_make(IR_F32, 2, hh, false);
  int32_t p = ir_binary(b, OP_MUL, c2, ir_const_data(b, &tm, mask));
  if (p < 0) return -1;
  int r = b->f->nodes[p].type.rank;
  p = ir_reduce(b, OP_SUM, p, r - 1);
  p = ir_reduce(b, OP_SUM, p, r - 2);
  while (p >= 0 && b->f->nodes[p].type.rank > 0) p = ir_reduce(b, OP_MEAN, p, 0);
  return p;
}

/* The kind of a layer's repulsion, --repulsion included. */
static RepKind rep_kind(const Lower *L, const AttnOptions *o) {
  return L->rep_override >= 0 ? (RepKind)L->rep_override : o->rep.kind;
}

/* `repulsion penalty { weight c }`: c · lw_heads_cos2 of the heads'
 * contributions u, added to the loss. */
static int add_rep_penalty(Call *c, const AttnOptions *o, int32_t u, int64_t H) {
  if (rep_kind(c->L, o) != REP_PENALTY || H < 2) return 0;
  int32_t p = ir_scale(B(c), lw_heads_cos2(B(c), c->L->A, u, H), o->rep.weight);
  if (p < 0) return -1;
  lw_add_penalty(c->L, p, c->e->span);
  return 0;
}

static int32_t b_attention(Call *c) {
  Lower *L = c->L;
  AttnOptions o;
  int rc = read_attn(c, false, &o);
  bool ok = true;
  for (int i = 0; i < c->na; i++)
    if (!want_f32(c, i) || !want_axes(c, i, 2, "f32[T, d]")) ok = false;
  if (rc || !ok) return -1;
  int32_t q = c->a[0], kv = c->na > 1 ? c->a[1] : c->a[0];
  int64_t d = last_dim(c, q), dkv = last_dim(c, kv), H = o.heads, hd = o.head_dim;
  if (H < 1) {
    lw_error(L, c->fr, c->e->span, "attention needs at least one head; got %lld", (long long)H);
    return -1;
  }
  if (hd <= 0) {
    if (d % H) {
      lw_error(L, c->fr, c->e->span,
               "attention: dimension %lld is not divisible by %lld heads; give head_dim",
               (long long)d, (long long)H);
      return -1;
    }
    hd = d / H;
  }
  const IrType *tq = ty(c, q), *tk = ty(c, kv);
  int64_t T = tq->dim[tq->rank - 2], S = tk->dim[tk->rank - 2];
  if (o.causal && T != S) {
    lw_error(L, c->fr, c->e->span,
             "causal attention needs as many keys as queries; got %lld queries and %lld keys",
             (long long)T, (long long)S);
    return -1;
  }
  int64_t Hd = H * hd;
  int32_t iq, ik, iv, io;
  int32_t wq = param2(c, "wq", d, Hd, INIT_UNIFORM, 1.0 / sqrt((double)d), &iq);
  int32_t bq = param1(c, "bq", Hd, INIT_ZEROS, 0, NULL);
  int32_t wk = param2(c, "wk", dkv, Hd, INIT_UNIFORM, 1.0 / sqrt((double)dkv), &ik);
  int32_t bk = param1(c, "bk", Hd, INIT_ZEROS, 0, NULL);
  int32_t wv = param2(c, "wv", dkv, Hd, INIT_UNIFORM, 1.0 / sqrt((double)dkv), &iv);
  int32_t bv = param1(c, "bv", Hd, INIT_ZEROS, 0, NULL);
  int32_t wo = param2(c, "wo", Hd, d, INIT_UNIFORM, 1.0 / sqrt((double)Hd), &io);
  int32_t bo = param1(c, "bo", d, INIT_ZEROS, 0, NULL);
  Span at = c->e->span;
  int32_t Q = split_heads(c, affine(c, q, wq, bq), H, hd);
  int32_t K = split_heads(c, affine(c, kv, wk, bk), H, hd);
  int32_t V = split_heads(c, affine(c, kv, wv, bv), H, hd);
  int32_t s = ir_scale(B(c), ir_matmul(B(c), Q, K, false, true), 1.0 / sqrt((double)hd));
  if (o.causal && s >= 0) {
    s = ir_op(B(c), (IrNode){.op = OP_CAUSAL_MASK, .nin = 1, .in = {s}, .attr.f = {-INFINITY}});
  }
  int32_t pr = ir_unary(B(c), OP_SOFTMAX, s);
  if (o.dropout > 0) pr = lw_dropout(L, c->fr, pr, o.dropout, at);
  int32_t ctx = ir_matmul(B(c), pr, V, false, false);
  if (ctx < 0) return -1;
  HeadGroup *g = add_group(L);
  g->path = lw_path(L, c->pn);
  g->span = at;
  g->heads = H;
  g->head_dim = hd;
  g->dim = d;
  g->causal = o.causal;
  g->wq = iq;
  g->wk = ik;
  g->wv = iv;
  g->wo = io;
  g->rep = o.rep;
  lw_add_output(L, g->path, ctx, OUT_HEADS, L->m->ngroups - 1);
  if (rep_kind(L, &o) == REP_PENALTY && H > 1) {
    /* head i's contribution: C_i · wo[i·hd:(i+1)·hd, :], [.., H, T·d] */
    int64_t w3[3] = {H, hd, d};
    IrType tw = ir_type_make(IR_F32, 3, w3, false);
    int32_t u = ir_matmul(B(c), ctx, ir_reshape(B(c), wo, &tw), false, false);
    if (u < 0) return -1;
    IrType tu = reshaped_last(ty(c, u), 0, 0);
    if (add_rep_penalty(c, &o, ir_reshape(B(c), u, &tu), H)) return -1;
  }
  return affine(c, merge_heads(c, ctx), wo, bo);
}

static int32_t b_attnpool(Call *c) {
  Lower *L = c->L;
  AttnOptions o;
  int rc = read_attn(c, true, &o);
  if (!want_f32(c, 0) || !want_axes(c, 0, 2, "f32[T, d]") || rc) return -1;
  int32_t x = c->a[0];
  int64_t d = last_dim(c, x), H = o.heads, hid = o.hidden > 0 ? o.hidden : d;
  if (H < 1) {
    lw_error(L, c->fr, c->e->span, "attnpool needs at least one head; got %lld", (long long)H);
    return -1;
  }
  Span at = c->e->span;
  int32_t i2;
  int32_t w1 = param2(c, "w1", d, hid, INIT_UNIFORM, 1.0 / sqrt((double)d), NULL);
  int32_t w2 = param2(c, "w2", hid, H, INIT_UNIFORM, 1.0 / sqrt((double)hid), &i2);
  int32_t hh = ir_unary(B(c), OP_TANH, ir_matmul(B(c), x, w1, false, false));
  int32_t s = swap_last(B(c), ir_matmul(B(c), hh, w2, false, false));
  int32_t A = ir_unary(B(c), OP_SOFTMAX, s);
  int32_t M = ir_matmul(B(c), A, x, false, false);
  if (M < 0) return -1;
  HeadGroup *g = add_group(L);
  g->path = lw_path(L, c->pn);
  g->span = at;
  g->attnpool = true;
  g->heads = H;
  g->head_dim = hid;
  g->dim = d;
  g->w2 = i2;
  g->rep = o.rep;
  lw_add_output(L, g->path, M, OUT_HEADS, L->m->ngroups - 1);
  if (add_rep_penalty(c, &o, M, H)) return -1;
  if (o.penalty > 0) {
    /* c * mean over the batch of ||A A^T - I||_F^2 */
    float *eye = arena_alloc(L->A, sizeof *eye * (size_t)(H * H));
    for (int64_t i = 0; i < H; i++) eye[i * H + i] = 1.0f;
    int64_t hh2[2] = {H, H};
    IrType ti = ir_type_make(IR_F32, 2, hh2, false);
    int32_t p = ir_matmul(B(c), A, A, false, true);
    p = lw_arith(L, c->fr, OP_SUB, p, ir_const_data(B(c), &ti, eye), at);
    p = ir_unary(B(c), OP_SQUARE, p);
    if (p < 0) return -1;
    int r = ty(c, p)->rank;
    p = ir_reduce(B(c), OP_SUM, p, r - 1);
    p = ir_reduce(B(c), OP_SUM, p, r - 2);
    while (p >= 0 && ty(c, p)->rank > 0) p = ir_reduce(B(c), OP_MEAN, p, 0);
    p = ir_scale(B(c), p, o.penalty);
    if (p < 0) return -1;
    lw_add_penalty(L, p, at);
  }
  return M;
}

/* ------------------------------------------------------------------------ */
/* operations without parameters                                             */

/* One op applied to one tensor: the activations and softmax. */
static int32_t b_unary(Call *c) {
  IrOp op = c->bi->op;
  if (!want_f32(c, 0)) return -1;
  if (!(ir_op_info[op].flags & OPF_EW) && !want_axes(c, 0, 1, "an axis")) return -1;
  return ir_unary(B(c), op, c->a[0]);
}

static int32_t b_pool(Call *c, IrOp op) {
  if (!want_f32(c, 0) || !want_axes(c, 0, 1, "an axis to pool")) return -1;
  int64_t k = c->kw[0].given ? c->kw[0].num.i : 0;
  int ax = full_axis(c, c->a[0], k, c->kw[0].given ? c->kw[0].span : c->e->span);
  if (ax < 0) return -1;
  return ir_reduce(B(c), op, c->a[0], ax);
}
static int32_t b_mean(Call *c) { return b_pool(c, OP_MEAN); }
static int32_t b_max(Call *c) { return b_pool(c, OP_MAX); }
static int32_t b_sum(Call *c) { return b_pool(c, OP_SUM); }

static int32_t b_flatten(Call *c) {
  const IrType *t = ty(c, c->a[0]);
  int64_t n = 1;
  for (int i = t->batched ? 1 : 0; i < t->rank; i++) n *= t->dim[i];
  int64_t d[2] = {t->dim[0], n};
  IrType nt = t->batched ? ir_type_make((IrDtype)t->dtype, 2, d, true)
                         : ir_type_make((IrDtype)t->dtype, 1, &n, false);
  return ir_reshape(B(c), c->a[0], &nt);
}

static int32_t b_concat(Call *c) {
  Lower *L = c->L;
  bool batched = false, ok = true;
  for (int i = 0; i < c->na; i++) {
    if (ty(c, c->a[i])->batched) batched = true;
    if (ty(c, c->a[i])->dtype != ty(c, c->a[0])->dtype) {
      lw_error(L, c->fr, arg_span(c, i), "concat needs one element type; this is %s, the first "
               "is %s", lw_vstr(L, c->a[i]), lw_vstr(L, c->a[0]));
      ok = false;
    }
  }
  if (!ok) return -1;
  int32_t v[MAX_POS];
  for (int i = 0; i < c->na; i++) {
    v[i] = c->a[i];
    const IrType *t = ty(c, v[i]);
    if (batched && !t->batched) {
      /* repeat an unbatched value along a new batch axis */
      int64_t d[IR_MAX_RANK];
      if (t->rank + 1 > IR_MAX_RANK) return -1;
      d[0] = L->batch;
      for (int j = 0; j < t->rank; j++) d[j + 1] = t->dim[j];
      IrType bt = ir_type_make((IrDtype)t->dtype, t->rank + 1, d, true);
      v[i] = ir_typed(lw_at(L, c->fr, arg_span(c, i)), OP_BROADCAST, v[i], &bt, 0, 0);
      if (v[i] < 0) return -1;
    }
  }
  int pr = lw_perank(L, v[0]);
  for (int i = 1; i < c->na; i++)
    if (lw_perank(L, v[i]) != pr) {
      lw_error(L, c->fr, arg_span(c, i), "concat needs values with the same number of axes; "
               "this is %s, the first is %s", lw_vstr(L, v[i]), lw_vstr(L, v[0]));
      return -1;
    }
  if (pr < 1) {
    lw_error(L, c->fr, c->e->span, "concat needs at least one axis per example; got %s",
             lw_vstr(L, v[0]));
    return -1;
  }
  int ax = full_axis(c, v[0], c->kw[0].given ? c->kw[0].num.i : 0,
                     c->kw[0].given ? c->kw[0].span : c->e->span);
  if (ax < 0) return -1;
  int32_t acc = -1;
  for (int i = 0; i < c->na;) {
    IrNode n = {.op = OP_CONCAT, .attr.i = {ax}};
    if (acc >= 0) n.in[n.nin++] = acc;
    while (i < c->na && n.nin < IR_MAX_IN) n.in[n.nin++] = v[i++];
    acc = ir_op(B(c), n);
    if (acc < 0) return -1;
  }
  return acc;
}

static int32_t b_reshape(Call *c) {
  Lower *L = c->L;
  const AstExpr *le = c->e->args[1];
  if (le->kind != EX_LIST) {
    lw_error(L, c->fr, le->span, "reshape needs a list of dimensions like [4, -1]");
    return -1;
  }
  if (le->nargs < 1 || le->nargs > IR_MAX_RANK - 1) {
    lw_error(L, c->fr, le->span, "reshape needs 1 to %d dimensions; got %d", IR_MAX_RANK - 1,
             le->nargs);
    return -1;
  }
  int64_t dims[IR_MAX_RANK];
  int infer = -1;
  bool bad = false;
  for (int i = 0; i < le->nargs; i++) {
    Num n;
    if (lw_eval_num(L, c->fr, le->args[i], &n)) { bad = true; continue; }
    if (!n.is_int || (n.i < 1 && n.i != -1)) {
      lw_error(L, c->fr, le->args[i]->span, "a dimension must be a positive integer (or -1); "
               "got %g", n.f);
      bad = true;
      continue;
    }
    if (n.i == -1) {
      if (infer >= 0) {
        lw_error(L, c->fr, le->args[i]->span, "only one dimension may be -1");
        bad = true;
      }
      infer = i;
    }
    dims[i] = n.i;
  }
  if (bad || c->a[0] < 0) return -1;
  const IrType *t = ty(c, c->a[0]);
  int64_t have = 1, want = 1;
  for (int i = t->batched ? 1 : 0; i < t->rank; i++) have *= t->dim[i];
  for (int i = 0; i < le->nargs; i++)
    if (i != infer) want *= dims[i];
  if (infer >= 0 && want > 0 && have % want == 0) {
    dims[infer] = have / want;
    want = have;
  }
  if (want != have) {
    lw_error(L, c->fr, c->e->span, "cannot reshape %s (%lld elements per example) to %lld "
             "elements", lw_vstr(L, c->a[0]), (long long)have, (long long)want);
    return -1;
  }
  int64_t full[IR_MAX_RANK];
  int r = 0;
  if (t->batched) full[r++] = t->dim[0];
  for (int i = 0; i < le->nargs; i++) full[r++] = dims[i];
  IrType nt = ir_type_make((IrDtype)t->dtype, r, full, t->batched);
  return ir_reshape(B(c), c->a[0], &nt);
}

static int32_t b_transpose(Call *c) {
  Lower *L = c->L;
  int32_t x = c->a[0];
  int pr = lw_perank(L, x), off = ty(c, x)->batched ? 1 : 0;
  if (!c->kw[0].given) {
    if (!want_axes(c, 0, 2, "two axes")) return -1;
    return swap_last(B(c), x);
  }
  const KwVal *k = &c->kw[0];
  bool seen[IR_MAX_RANK] = {false};
  bool ok = k->nlist == pr;
  for (int i = 0; ok && i < k->nlist; i++) {
    if (k->list[i] < 0 || k->list[i] >= pr || seen[k->list[i]]) ok = false;
    else seen[k->list[i]] = true;
  }
  if (!ok) {
    lw_error(L, c->fr, k->span, "perm must order all %d axes of %s (per example), each once",
             pr, lw_vstr(L, x));
    return -1;
  }
  int64_t perm[IR_MAX_RANK];
  if (off) perm[0] = 0;
  for (int i = 0; i < pr; i++) perm[i + off] = k->list[i] + off;
  return ir_transpose(B(c), x, perm);
}

static int32_t b_dropout(Call *c) {
  double p = c->kw[0].num.f;
  if (!(p >= 0 && p < 1)) {
    lw_error(c->L, c->fr, c->kw[0].span, "dropout p must be in [0, 1); got %g", p);
    return -1;
  }
  if (!want_f32(c, 0)) return -1;
  return p > 0 ? lw_dropout(c->L, c->fr, c->a[0], p, c->e->span) : c->a[0];
}

/* The target index of a value that is a target input, or -1. */
static int target_of(const Lower *L, int32_t v) {
  const IrNode *n = &L->f->nodes[v];
  if (n->op != OP_INPUT || n->attr.i[0] < L->ninputs_top) return -1;
  int t = (int)(n->attr.i[0] - L->ninputs_top);
  return t < L->m->ntargets ? t : -1;
}

static int32_t b_cross_entropy(Call *c) {
  Lower *L = c->L;
  int32_t lg = c->a[0], tg = c->a[1];
  if (!want_f32(c, 0) || !want_axes(c, 0, 1, "logits f32[.., K]")) return -1;
  const IrType *tl = ty(c, lg), *tt = ty(c, tg);
  IrType want = *tl;
  want.dtype = IR_I32;
  want.rank--;
  if (tt->dtype != IR_I32 || !ir_type_eq(tt, &want)) {
    lw_error(L, c->fr, arg_span(c, 1), "cross_entropy of logits %s needs a target %s; this is %s",
             lw_tstr(L, tl), lw_tstr(L, &want), lw_tstr(L, tt));
    return -1;
  }
  int t = target_of(L, tg);
  if (t >= 0) {
    const ModelVar *mv = &L->m->targets[t];
    int64_t K = tl->dim[tl->rank - 1];
    if (mv->classes && mv->classes != K) {
      Diag *g = lw_error(L, c->fr, arg_span(c, 0),
                         "logits have %lld classes but target '%s' is class(%lld)",
                         (long long)K, mv->name, (long long)mv->classes);
      lw_note(L, g, mv->span, "'%s' is declared here", mv->name);
      return -1;
    }
  }
  int32_t v = lw_arith(L, c->fr, OP_CROSS_ENTROPY, lg, tg, c->e->span);
  if (v >= 0 && t >= 0) lw_add_output(L, L->m->targets[t].name, lg, OUT_PRED, t);
  return v;
}

static int32_t b_mse(Call *c) {
  Lower *L = c->L;
  if (!want_f32(c, 0) || !want_f32(c, 1)) return -1;
  Span at = c->e->span;
  int32_t d = ir_unary(B(c), OP_SQUARE, lw_arith(L, c->fr, OP_SUB, c->a[0], c->a[1], at));
  if (d < 0) return -1;
  int64_t n = ir_numel(ty(c, d));
  IrType flat = ir_type_make(IR_F32, 1, &n, false);
  return ir_reduce(B(c), OP_MEAN, ir_reshape(B(c), d, &flat), 0);
}

/* ------------------------------------------------------------------------ */
/* the table: every built-in call of the language; the rows with b_unary and
 * an elementwise op are also the functions `act:` accepts                  */

#define NOKW {{NULL, 0, false, {NULL}}}
static const Builtin builtins[] = {
  {"embed", 1, 1, 0, false, {{"vocab", KA_POS, true, {NULL}}, {"dim", KA_POS, true, {NULL}}},
   b_embed, 0},
  {"position", 1, 1, 1, false,
   {{"dim", KA_POS, true, {NULL}}, {"kind", KA_CHOICE, false, {"learned", "sinusoid", NULL}}},
   b_position, 0},
  {"linear", 1, 1, 0, false, {{"out", KA_POS, true, {NULL}}, {"bias", KA_BOOL, false, {NULL}}},
   b_linear, 0},
  {"ffn", 1, 1, 0, false,
   {{"hidden", KA_POS, true, {NULL}}, {"act", KA_FUNC, false, {NULL}}}, b_ffn, 0},
  {"layernorm", 1, 1, 0, false, NOKW, b_layernorm, 0},
  {"attention", 1, 2, 0, true, NOKW, b_attention, 0},
  {"attnpool", 1, 1, 0, true, NOKW, b_attnpool, 0},
  {"relu", 1, 1, 0, false, NOKW, b_unary, OP_RELU},
  {"gelu", 1, 1, 0, false, NOKW, b_unary, OP_GELU},
  {"tanh", 1, 1, 0, false, NOKW, b_unary, OP_TANH},
  {"sigmoid", 1, 1, 0, false, NOKW, b_unary, OP_SIGMOID},
  {"silu", 1, 1, 0, false, NOKW, b_unary, OP_SILU},
  {"softmax", 1, 1, 0, false, NOKW, b_unary, OP_SOFTMAX},
  {"mean", 1, 1, 0, false, {{"axis", KA_INT, false, {NULL}}}, b_mean, 0},
  {"max", 1, 1, 0, false, {{"axis", KA_INT, false, {NULL}}}, b_max, 0},
  {"sum", 1, 1, 0, false, {{"axis", KA_INT, false, {NULL}}}, b_sum, 0},
  {"flatten", 1, 1, 0, false, NOKW, b_flatten, 0},
  {"concat", 1, MAX_POS, 0, false, {{"axis", KA_INT, false, {NULL}}}, b_concat, 0},
  {"reshape", 2, 2, 2, false, NOKW, b_reshape, 0},
  {"transpose", 1, 1, 0, false, {{"perm", KA_LIST, false, {NULL}}}, b_transpose, 0},
  {"dropout", 1, 1, 0, false, {{"p", KA_NUM, true, {NULL}}}, b_dropout, 0},
  {"cross_entropy", 2, 2, 0, false, NOKW, b_cross_entropy, 0},
  {"mse", 2, 2, 0, false, NOKW, b_mse, 0},
};
#define NBUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

static const Builtin *find_builtin(const char *name) {
  for (int i = 0; i < NBUILTINS; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

bool lw_is_builtin(const char *name) { return find_builtin(name) != NULL; }

/* An elementwise built-in of one tensor (`relu`, `silu`, ...): what `act:`
 * accepts besides blocks. */
static bool is_unary_ew(const Builtin *bi) {
  return bi && bi->fn == b_unary && (ir_op_info[bi->op].flags & OPF_EW);
}

int lw_builtin_names(const char **out, int cap) {
  int n = 0;
  for (int i = 0; i < NBUILTINS && n < cap; i++) out[n++] = builtins[i].name;
  return n;
}

/* ------------------------------------------------------------------------ */
/* keyword arguments                                                         */

/* An identifier argument (`act: gelu`), through a block's keyword names. */
static const char *ident_arg(const Call *c, const AstExpr *v, const Num **num) {
  *num = NULL;
  if (v->kind == EX_STR) return v->str;
  if (v->kind != EX_NAME) return NULL;
  const Binding *b = lw_lookup(c->fr, v->str);
  if (b && b->kind == BIND_IDENT) return b->ident;
  if (b && b->kind == BIND_NUM) {
    *num = &b->num;
    return NULL;
  }
  return v->str;
}

/* "a, b or c" into buf (cut short if it does not fit). */
static void name_list(char *buf, size_t cap, const char *const *names, int n) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < n && k < cap; i++) {
    int w = snprintf(buf + k, cap - k, "%s%s", names[i],
                     i + 2 < n ? ", " : i + 1 < n ? " or " : "");
    if (w > 0) k += (size_t)w;
  }
}

/* A KA_FUNC argument named id (NULL: not a name): an elementwise built-in
 * or a block of one positional argument, else a located error with the
 * names that would do. */
static int read_func(Call *c, const Builtin *bi, const KwSpec *ks, const AstExpr *v,
                     const char *id, KwVal *o) {
  Lower *L = c->L;
  const Builtin *f = id ? find_builtin(id) : NULL;
  const AstItem *shadow = f ? lw_find_block(L, id) : NULL;
  if (shadow) {
    Diag *g = lw_error(L, c->fr, v->span,
                       "'%s' is a built-in and also the name of a block; rename the block", id);
    lw_note(L, g, shadow->name_span, "block '%s' is defined here", shadow->name);
    return -1;
  }
  if (is_unary_ew(f)) {
    o->ident = f->name;
    o->op = f->op;
    return 0;
  }
  const AstItem *blk = id && !f ? lw_find_block(L, id) : NULL;
  if (blk && lw_block_npos(blk) == 1) {
    o->ident = blk->name;
    o->blk = blk;
    return 0;
  }
  if (blk) {
    int np = lw_block_npos(blk);
    Diag *g = lw_error(L, c->fr, v->span,
                       "'%s:' of %s needs a function of one tensor; block '%s' takes %d "
                       "positional argument%s", ks->name, bi->name, blk->name, np,
                       np == 1 ? "" : "s");
    lw_note(L, g, blk->name_span, "'%s' is defined here", blk->name);
    return -1;
  }
  const char *names[NBUILTINS];
  char list[256];
  int nn = 0;
  for (int i = 0; i < NBUILTINS; i++)
    if (is_unary_ew(&builtins[i])) names[nn++] = builtins[i].name;
  name_list(list, sizeof list, names, nn);
  if (!id) {
    lw_error(L, c->fr, v->span, "'%s:' of %s must be an elementwise function (%s) or a block "
             "of one argument", ks->name, bi->name, list);
    return -1;
  }
  /* suggest among the elementwise built-ins and the blocks of one argument */
  const char **cand = arena_alloc(L->A, sizeof *cand * (size_t)(nn + L->p->nblocks + 1));
  int nc = 0;
  for (int i = 0; i < nn; i++) cand[nc++] = names[i];
  for (int i = 0; i < L->p->nblocks; i++)
    if (L->p->blocks[i]->name && lw_block_npos(L->p->blocks[i]) == 1)
      cand[nc++] = L->p->blocks[i]->name;
  const char *s = diag_suggest(id, cand, nc);
  lw_error(L, c->fr, v->span, "'%s:' of %s must be an elementwise function (%s) or a block of "
           "one argument; '%s' is %s%s%s%s", ks->name, bi->name, list, id,
           f ? "not elementwise" : "unknown", s ? "; did you mean '" : "", s ? s : "",
           s ? "'?" : "");
  return -1;
}

static int read_kwarg(Call *c, const Builtin *bi, const KwSpec *ks, const AstKwarg *kw, KwVal *o) {
  Lower *L = c->L;
  const AstExpr *v = kw->value;
  o->given = true;
  o->span = v->span;
  switch (ks->kind) {
  case KA_INT:
  case KA_POS:
  case KA_NUM: {
    if (lw_eval_num(L, c->fr, v, &o->num)) return -1;
    if (ks->kind == KA_NUM) return 0;
    if (!o->num.is_int) {
      lw_error(L, c->fr, v->span, "'%s:' of %s must be an integer; got %g", ks->name, bi->name,
               o->num.f);
      return -1;
    }
    if (ks->kind == KA_POS && o->num.i < 1) {
      lw_error(L, c->fr, v->span, "'%s:' of %s must be at least 1; got %lld", ks->name, bi->name,
               (long long)o->num.i);
      return -1;
    }
    return 0;
  }
  case KA_BOOL: {
    const Num *n;
    const char *id = ident_arg(c, v, &n);
    Num tmp;
    if (!id && !n && v->kind == EX_NUM) {
      tmp = v->is_int ? (Num){true, v->ival, (double)v->ival} : (Num){false, 0, v->num};
      n = &tmp;
    }
    if (id && (strcmp(id, "true") == 0 || strcmp(id, "false") == 0)) {
      o->b = id[0] == 't';
      return 0;
    }
    if (n && n->is_int && (n->i == 0 || n->i == 1)) {
      o->b = n->i == 1;
      return 0;
    }
    lw_error(L, c->fr, v->span, "'%s:' of %s must be true or false", ks->name, bi->name);
    return -1;
  }
  case KA_CHOICE: {
    const Num *n;
    const char *id = ident_arg(c, v, &n);
    int nc = 0;
    while (nc < 4 && ks->choices[nc]) nc++;
    if (id)
      for (int i = 0; i < nc; i++)
        if (strcmp(id, ks->choices[i]) == 0) {
          o->ident = ks->choices[i];
          return 0;
        }
    char list[128];
    name_list(list, sizeof list, ks->choices, nc);
    const char *s = id ? diag_suggest(id, ks->choices, nc) : NULL;
    if (id)
      lw_error(L, c->fr, v->span, "'%s:' of %s must be %s; got '%s'%s%s%s", ks->name, bi->name,
               list, id, s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
    else
      lw_error(L, c->fr, v->span, "'%s:' of %s must be %s", ks->name, bi->name, list);
    return -1;
  }
  case KA_FUNC: {
    const Num *n;
    return read_func(c, bi, ks, v, ident_arg(c, v, &n), o);
  }
  case KA_LIST: {
    if (v->kind != EX_LIST || v->nargs > IR_MAX_RANK) {
      lw_error(L, c->fr, v->span, "'%s:' of %s must be a list of integers like [1, 0]", ks->name,
               bi->name);
      return -1;
    }
    int rc = 0;
    for (int i = 0; i < v->nargs; i++) {
      Num n;
      if (lw_eval_num(L, c->fr, v->args[i], &n)) { rc = -1; continue; }
      if (!n.is_int) {
        lw_error(L, c->fr, v->args[i]->span, "expected an integer; got %g", n.f);
        rc = -1;
        continue;
      }
      o->list[i] = n.i;
    }
    o->nlist = v->nargs;
    return rc;
  }
  }
  return -1;
}

static int read_kwargs(Call *c, const Builtin *bi) {
  Lower *L = c->L;
  const AstExpr *e = c->e;
  int nspec = 0;
  const char *names[3];
  while (nspec < 3 && bi->kw[nspec].name) {
    names[nspec] = bi->kw[nspec].name;
    nspec++;
  }
  int rc = 0;
  bool suggested[3] = {false, false, false};
  for (int j = 0; j < e->nkwargs; j++) {
    const AstKwarg *kw = &e->kwargs[j];
    int k = -1;
    for (int i = 0; i < nspec; i++)
      if (strcmp(names[i], kw->name) == 0) k = i;
    if (k < 0) {
      const char *s = diag_suggest(kw->name, names, nspec);
      for (int i = 0; i < nspec; i++)
        if (s && strcmp(s, names[i]) == 0) suggested[i] = true;
      if (!nspec)
        lw_error(L, c->fr, kw->name_span, "%s takes no keyword arguments", bi->name);
      else
        lw_error(L, c->fr, kw->name_span, "%s has no argument '%s'%s%s%s", bi->name, kw->name,
                 s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
      rc = -1;
      continue;
    }
    if (c->kw[k].given) {
      Diag *g = lw_error(L, c->fr, kw->name_span, "argument '%s:' given twice", kw->name);
      for (int i = 0; i < j; i++)
        if (strcmp(e->kwargs[i].name, kw->name) == 0) {
          lw_note(L, g, e->kwargs[i].name_span, "first given here");
          break;
        }
      rc = -1;
      continue;
    }
    if (read_kwarg(c, bi, &bi->kw[k], kw, &c->kw[k])) rc = -1;
  }
  for (int i = 0; i < nspec; i++)
    if (bi->kw[i].required && !c->kw[i].given) {
      bool failed = suggested[i];  /* already said: "did you mean" */
      for (int j = 0; j < e->nkwargs; j++)
        if (strcmp(e->kwargs[j].name, names[i]) == 0) failed = true;
      if (!failed)
        lw_error(L, c->fr, e->name_span, "missing argument '%s:' of %s", names[i], bi->name);
      rc = -1;
    }
  return rc;
}

int32_t lw_builtin(Lower *L, Frame *fr, PNode *stmt, const AstExpr *e, bool whole) {
  const Builtin *bi = find_builtin(e->str);
  if (!bi) return -1;
  Call c;
  memset(&c, 0, sizeof c);
  c.bi = bi;
  c.L = L;
  c.fr = fr;
  c.stmt = stmt;
  c.e = e;
  bool bad = false;
  if (e->nargs < bi->pmin || e->nargs > bi->pmax) {
    if (bi->pmin == bi->pmax)
      lw_error(L, fr, e->span, "%s takes %d positional argument%s; got %d", bi->name, bi->pmin,
               bi->pmin == 1 ? "" : "s", e->nargs);
    else if (bi->pmax == MAX_POS)
      lw_error(L, fr, e->span, "%s takes %d to %d positional arguments; got %d", bi->name,
               bi->pmin, MAX_POS, e->nargs);
    else
      lw_error(L, fr, e->span, "%s takes %d or %d positional arguments; got %d", bi->name,
               bi->pmin, bi->pmax, e->nargs);
    bad = true;
  }
  if (e->clauses && !bi->clauses) {
    lw_error(L, fr, e->clauses->span, "%s takes no { } clauses", bi->name);
    bad = true;
  }
  c.na = e->nargs < MAX_POS ? e->nargs : MAX_POS;
  for (int i = 0; i < c.na; i++) {
    c.a[i] = -1;
    if (i < 8 && (bi->raw >> i) & 1) continue;
    c.a[i] = lw_expr(L, fr, stmt, e->args[i], false);
    if (c.a[i] < 0) bad = true;
  }
  if (read_kwargs(&c, bi)) bad = true;
  if (bad) return -1;
  c.pn = lw_pnode(L, stmt, PN_CALL, bi->name, whole);
  return bi->fn(&c);
}
