/* passes.c - IR-to-IR optimisation passes: dead-code elimination, common
 * subexpression elimination, constant folding and algebraic
 * simplification, and the pipeline that runs them to a fixed point.
 *
 * Each pass builds a new function in the given arena (the input is left
 * untouched) with the same name, batch and outputs (remapped).  A fill
 * constant is a CONST without data: every element is attr.f[0].  What a
 * pass must know about an op comes from its ops.def row (OPF_COMMUTE,
 * OPF_IMPURE) and, for folding, from opmath.h.
 */
#include <math.h>
#include <string.h>

#include "opmath.h"
#include "program.h"

/* ---- shared ---- */

static IrFunc *func_like(Arena *arena, const IrFunc *f) {
  IrFunc *g = ir_func_new(arena, f->name, f->batch);
  if (!g) return NULL;
  return g;
}

static int copy_outputs(IrFunc *g, const IrFunc *f, const int32_t *map) {
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    if (ir_add_output(g, o->name, map[o->value], (IrOutRole)o->role, o->index) != 0) return -1;
  }
  return 0;
}

static int32_t *new_map(Arena *arena, int n) {
  int32_t *map = arena_alloc(arena, (size_t)(n > 0 ? n : 1) * sizeof *map);
  if (map)
    for (int i = 0; i < n; i++) map[i] = -1;
  return map;
}

/* ---- dead-code elimination ---- */

static IrFunc *dce(Arena *arena, const IrFunc *f, int *changed) {
  bool *live = arena_alloc(arena, (size_t)(f->n > 0 ? f->n : 1) * sizeof *live);
  int32_t *map = new_map(arena, f->n);
  IrFunc *g = func_like(arena, f);
  if (!live || !map || !g) return NULL;
  for (int i = 0; i < f->nout; i++) live[f->outs[i].value] = true;
  for (int i = f->n - 1; i >= 0; i--) {
    if (!live[i]) continue;
    const IrNode *n = &f->nodes[i];
    for (int k = 0; k < n->nin; k++) live[n->in[k]] = true;
  }
  for (int i = 0; i < f->n; i++) {
    if (!live[i]) {
      (*changed)++;
      continue;
    }
    IrNode n = f->nodes[i];
    for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
    map[i] = ir_append(g, &n);
    if (map[i] < 0) return NULL;
  }
  if (copy_outputs(g, f, map) != 0) return NULL;
  return g;
}

IrFunc *pass_dce(Arena *arena, const IrFunc *f) {
  int changed = 0;
  return dce(arena, f, &changed);
}

/* ---- common subexpressions ---- */

static bool cse_allowed(const IrNode *n) { return !(ir_op_info[n->op].flags & OPF_IMPURE); }

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}

static uint64_t node_hash(const IrNode *n) {
  uint64_t h = mix(1469598103934665603ull, n->op);
  h = mix(h, n->nin);
  for (int k = 0; k < n->nin; k++) h = mix(h, (uint64_t)n->in[k]);
  h = mix(h, n->type.dtype);
  h = mix(h, n->type.rank);
  for (int k = 0; k < n->type.rank; k++) h = mix(h, (uint64_t)n->type.dim[k]);
  uint64_t bits[IR_MAX_RANK + 2];
  memcpy(bits, &n->attr, sizeof bits);
  for (int k = 0; k < IR_MAX_RANK + 2; k++) h = mix(h, bits[k]);
  h = mix(h, (uint64_t)(uintptr_t)n->data);
  h = mix(h, (uint64_t)(uintptr_t)n->fused);
  return h;
}

static bool node_same(const IrNode *a, const IrNode *b) {
  if (a->op != b->op || a->nin != b->nin || a->data != b->data || a->fused != b->fused)
    return false;
  for (int k = 0; k < a->nin; k++)
    if (a->in[k] != b->in[k]) return false;
  if (!ir_type_eq(&a->type, &b->type) || a->type.batched != b->type.batched) return false;
  return memcmp(&a->attr, &b->attr, sizeof a->attr) == 0;
}

static IrFunc *cse(Arena *arena, const IrFunc *f, int *changed) {
  int32_t *map = new_map(arena, f->n);
  size_t cap = 16;
  while (cap < (size_t)f->n * 2) cap *= 2;
  int32_t *tab = arena_alloc(arena, cap * sizeof *tab);
  IrFunc *g = func_like(arena, f);
  if (!map || !tab || !g) return NULL;
  for (size_t i = 0; i < cap; i++) tab[i] = -1;
  for (int i = 0; i < f->n; i++) {
    IrNode n = f->nodes[i];
    for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
    if ((ir_op_info[n.op].flags & OPF_COMMUTE) && n.nin == 2 && n.in[0] > n.in[1]) {
      int32_t t = n.in[0];
      n.in[0] = n.in[1];
      n.in[1] = t;
    }
    if (cse_allowed(&n)) {
      size_t slot = node_hash(&n) & (cap - 1);
      while (tab[slot] >= 0 && !node_same(&g->nodes[tab[slot]], &n)) slot = (slot + 1) & (cap - 1);
      if (tab[slot] >= 0) {
        map[i] = tab[slot];
        (*changed)++;
        continue;
      }
      map[i] = ir_append(g, &n);
      if (map[i] < 0) return NULL;
      tab[slot] = map[i];
    } else {
      map[i] = ir_append(g, &n);
      if (map[i] < 0) return NULL;
    }
  }
  if (copy_outputs(g, f, map) != 0) return NULL;
  return g;
}

IrFunc *pass_cse(Arena *arena, const IrFunc *f) {
  int changed = 0;
  return cse(arena, f, &changed);
}

/* ---- constant folding and simplification ---- */

static bool fill_of(const IrFunc *g, int32_t v, float *val) {
  const IrNode *n = &g->nodes[v];
  if (n->op != OP_CONST || n->data || n->type.dtype != IR_F32) return false;
  *val = (float)n->attr.f[0];
  return true;
}

static bool fill_is(const IrFunc *g, int32_t v, float want) {
  float x;
  return fill_of(g, v, &x) && x == want;
}

/* n copies of c summed in any order give exactly n * c (so the kernels'
 * sums, whatever their partition, give that value): every partial sum k * c
 * is a float when c's significand, odd part m, has m * n <= 2^24.  -0 is
 * left out (a sum that starts from +0 ends at +0). */
static bool exact_multiple(float c, int64_t n, float *out) {
  if (c == 0) {
    if (signbit(c)) return false;
    *out = 0.0f;
    return true;
  }
  if (!isfinite(c) || n < 1) return false;
  int e;
  int64_t m = (int64_t)ldexp(fabs(frexp(c, &e)), 24); /* |c| = m 2^(e - 24) */
  while (!(m & 1)) m >>= 1;
  if (m > ((int64_t)1 << 24) / n) return false;
  float v = c * (float)n;
  if (!isfinite(v)) return false;
  *out = v;
  return true;
}

/* The value of a node whose inputs are all fill constants c[], when it is
 * again a fill constant and the value is the one its kernel would compute;
 * false when the op is not folded.  Elementwise ops run their kernels'
 * expressions (opmath.h); sums fold only when exact. */
static bool fold_value(const IrFunc *g, const IrNode *n, const float *c, float *out) {
  if (ir_op_info[n->op].flags & OPF_IMPURE) return false;
  const float s = (float)n->attr.f[0];
  (void)s;
  switch ((IrOp)n->op) {
#define FOLD_BINARY(U, l, EXPR) \
  case OP_##U: {                \
    float x = c[0], y = c[1];   \
    *out = (EXPR);              \
    return true;                \
  }
#define FOLD_UNARY(U, l, COST, EXPR) \
  case OP_##U: {                     \
    float x = c[0];                  \
    *out = (EXPR);                   \
    return true;                     \
  }
#define FOLD_GRAD(U, l, COST, EXPR) \
  case OP_##U: {                    \
    float a = c[0], dy = c[1];      \
    *out = (EXPR);                  \
    return true;                    \
  }
    OPMATH_BINARY(FOLD_BINARY)
    OPMATH_UNARY(FOLD_UNARY)
    OPMATH_GRAD(FOLD_GRAD)
#undef FOLD_BINARY
#undef FOLD_UNARY
#undef FOLD_GRAD
  case OP_SUM:
    return exact_multiple(c[0], g->nodes[n->in[0]].type.dim[n->attr.i[0]], out);
  case OP_MEAN: {
    float sum;  /* the kernel divides the exact sum: c again */
    if (!exact_multiple(c[0], g->nodes[n->in[0]].type.dim[n->attr.i[0]], &sum)) return false;
    *out = c[0];
    return true;
  }
  case OP_SUM_TO:
    return exact_multiple(c[0], ir_numel(&g->nodes[n->in[0]].type) / ir_numel(&n->type), out);
  case OP_MAX:
  case OP_BROADCAST:
  case OP_RESHAPE:
  case OP_TRANSPOSE:
  case OP_SLICE:
    *out = c[0];
    return true;
  case OP_CONCAT:
    for (int k = 1; k < n->nin; k++)
      if (c[k] != c[0]) return false;
    *out = c[0];
    return true;
  default:
    return false;
  }
}

static bool identity_perm(const IrNode *n) {
  for (int k = 0; k < n->type.rank; k++)
    if (n->attr.i[k] != k) return false;
  return true;
}

/* Rewrites n (inputs already in g's numbering).  Returns the id of an
 * existing value of g that n equals, or -1 to append n (possibly changed;
 * *changed counts every rewrite). */
static int32_t simplify(const IrFunc *g, IrNode *n, int *changed) {
  const IrNode *x = n->nin > 0 ? &g->nodes[n->in[0]] : NULL;
  switch ((IrOp)n->op) {
  case OP_NEG:
    if (x->op == OP_NEG) return x->in[0];
    break;
  case OP_SCALE:
    if (n->attr.f[0] == 1.0) return n->in[0];
    if (x->op == OP_SCALE) {
      n->attr.f[0] *= x->attr.f[0];
      n->in[0] = x->in[0];
      (*changed)++;
      if (n->attr.f[0] == 1.0) return n->in[0];
    }
    break;
  case OP_RESHAPE:
    if (x->op == OP_RESHAPE) {
      n->in[0] = x->in[0];
      (*changed)++;
      x = &g->nodes[n->in[0]];
    }
    if (ir_type_eq(&x->type, &n->type)) return n->in[0];
    break;
  case OP_SUM_TO:
    if (ir_type_eq(&x->type, &n->type)) return n->in[0];
    break;
  case OP_TRANSPOSE:
    if (x->op == OP_TRANSPOSE) {
      IrAttr a = n->attr;
      for (int k = 0; k < n->type.rank; k++) a.i[k] = x->attr.i[n->attr.i[k]];
      n->attr = a;
      n->in[0] = x->in[0];
      (*changed)++;
    }
    if (identity_perm(n)) return n->in[0];
    break;
  case OP_ADD:
  case OP_SUB:
  case OP_MUL:
  case OP_DIV: {
    float unit = (n->op == OP_ADD || n->op == OP_SUB) ? 0.0f : 1.0f;
    const IrNode *b = &g->nodes[n->in[1]];
    if (fill_is(g, n->in[1], unit) && ir_type_eq(&x->type, &n->type)) return n->in[0];
    if ((n->op == OP_ADD || n->op == OP_MUL) && fill_is(g, n->in[0], unit) &&
        ir_type_eq(&b->type, &n->type))
      return n->in[1];
    /* x * c with a fill c that does not broadcast x: scale (x / c is left
     * alone: x * (1/c) would round differently) */
    float c;
    for (int side = 0; side < 2 && n->op == OP_MUL; side++) {
      int32_t xv = n->in[1 - side];
      if (fill_of(g, n->in[side], &c) && ir_type_eq(&g->nodes[xv].type, &n->type)) {
        n->op = OP_SCALE;
        n->nin = 1;
        n->in[0] = xv;
        n->in[1] = 0;
        n->attr.f[0] = c;
        (*changed)++;
      }
    }
    break;
  }
  default:
    break;
  }
  return -1;
}

static IrFunc *fold(Arena *arena, const IrFunc *f, int *changed) {
  int32_t *map = new_map(arena, f->n);
  IrFunc *g = func_like(arena, f);
  if (!map || !g) return NULL;
  for (int i = 0; i < f->n; i++) {
    IrNode n = f->nodes[i];
    for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
    float c[IR_MAX_IN], v;
    bool all = n.nin > 0 && n.type.dtype == IR_F32;
    for (int k = 0; all && k < n.nin; k++) all = fill_of(g, n.in[k], &c[k]);
    if (all && fold_value(g, &n, c, &v)) {
      IrNode k;
      memset(&k, 0, sizeof k);
      k.op = OP_CONST;
      k.type = n.type;
      k.attr.f[0] = v;
      k.span = n.span;
      map[i] = ir_append(g, &k);
      if (map[i] < 0) return NULL;
      (*changed)++;
      continue;
    }
    int32_t same = simplify(g, &n, changed);
    if (same >= 0) {
      map[i] = same;
      (*changed)++;
      continue;
    }
    map[i] = ir_append(g, &n);
    if (map[i] < 0) return NULL;
  }
  if (copy_outputs(g, f, map) != 0) return NULL;
  return g;
}

/* ---- the pipeline ---- */

IrFunc *pass_optimize(Arena *arena, const IrFunc *f) {
  const IrFunc *cur = f;
  IrFunc *out = NULL;
  for (int round = 0; round < 8; round++) {
    int changed = 0;
    IrFunc *a = fold(arena, cur, &changed);
    IrFunc *b = a ? cse(arena, a, &changed) : NULL;
    out = b ? dce(arena, b, &changed) : NULL;
    if (!out) return NULL;
    cur = out;
    if (!changed) break;
  }
  return out;
}
