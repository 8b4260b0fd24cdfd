/* causal.c - the causal pass: matmuls of causal attention that need not
 * touch the triangle above the diagonal.
 *
 * Causal attention (layers.c) masks its scores with causal_mask (-inf above
 * the diagonal) before the softmax, so the probabilities P are exactly zero
 * there, and its gradient masks dS with causal_mask (0).  Of the six
 * products per layer, four read such a triangular operand and two make
 * values whose upper triangle nobody reads:
 *
 *   P V, dS K        A is zero above its diagonal: row i needs k <= i
 *   P^T dctx, dS^T Q A^T is zero below: row i needs k >= i
 *   Q K^T, dctx V^T  only entries j <= i are read (the mask overwrites the
 *                    rest; softmax_grad multiplies them by P = 0)
 *
 * The pass marks them in the matmul's i[2] (IR_MM_TRI_A, IR_MM_TRI_OUT);
 * the kernel (kernels_linalg.c) then runs blocks of rows with the shortened
 * inner dimension, or only the columns up to the block's diagonal (the
 * columns beyond are written as 0, so every entry stays finite).  The terms left out are products with
 * an exact zero, and each element of a JIT GEMM is one FMA chain in k
 * order, so the results keep their bits; an OpenBLAS kernel may sum in
 * another order (float tolerance).
 *
 * Facts the pass proves, per value (last two dims square):
 *   upper(v)   ZERO or NEGINF: every entry above the diagonal is exactly 0
 *              or -inf, whatever the inputs' values
 *   lower_only(v)  no reader of v depends on its entries above the
 *              diagonal (as long as they are finite)
 * both through plain nodes and through the micro-programs of fused ones.
 */
#include <math.h>
#include <string.h>

#include "program.h"

enum { UP_NONE, UP_ZERO, UP_NEGINF };

static bool square_last(const IrType *t) {
  return t->dtype == IR_F32 && t->rank >= 2 && t->dim[t->rank - 1] == t->dim[t->rank - 2];
}

/* upper() of one op given its inputs' (a, b) and attributes. */
static int upper_op(int op, const IrAttr *at, int a, int b) {
  switch (op) {
  case OP_CAUSAL_MASK:
    if (at->f[0] == 0.0) return UP_ZERO;
    if (isinf(at->f[0]) && at->f[0] < 0) return UP_NEGINF;
    return UP_NONE;
  case OP_SCALE:
    if (a == UP_ZERO && isfinite(at->f[0])) return UP_ZERO;
    if (a == UP_NEGINF && at->f[0] > 0 && isfinite(at->f[0])) return UP_NEGINF;
    return UP_NONE;
  case OP_SOFTMAX: return a == UP_NEGINF ? UP_ZERO : UP_NONE;
  case OP_SOFTMAX_GRAD: return a == UP_ZERO ? UP_ZERO : UP_NONE; /* y (dy - ...) */
  case OP_DROPOUT:
  case OP_DROPOUT_GRAD: return a == UP_ZERO ? UP_ZERO : UP_NONE; /* scales or zeroes */
  default: (void)b; return UP_NONE;
  }
}

static int upper(const IrFunc *f, int32_t v, int depth);

/* The micro-op values' upper() of a fused node, into u[]. */
static void upper_micro(const IrFunc *f, const IrNode *n, int *u, int depth) {
  const IrFused *p = n->fused;
  for (int k = 0; k < p->n; k++) {
    const IrMicro *m = &p->ops[k];
    int in[2] = {UP_NONE, UP_NONE};
    for (int q = 0; q < m->nin && q < 2; q++) {
      int32_t r = m->in[q];
      const IrType *t = r < 0 ? &f->nodes[n->in[-1 - r]].type : &p->ops[r].type;
      if (!ir_type_eq(t, &m->type)) continue; /* broadcast: nothing known */
      in[q] = r < 0 ? upper(f, n->in[-1 - r], depth + 1) : u[r];
    }
    u[k] = square_last(&m->type) ? upper_op(m->op, &m->attr, in[0], in[1]) : UP_NONE;
  }
}

static int upper(const IrFunc *f, int32_t v, int depth) {
  const IrNode *n = &f->nodes[v];
  if (depth > 8 || !square_last(&n->type)) return UP_NONE;
  if (n->op == OP_FUSED) {
    if (!n->fused || n->fused->n > IR_FUSED_MAX) return UP_NONE;
    int u[IR_FUSED_MAX];
    upper_micro(f, n, u, depth);
    return u[n->fused->n - 1];
  }
  int a = n->nin > 0 && ir_type_eq(&f->nodes[n->in[0]].type, &n->type) ? upper(f, n->in[0], depth + 1)
                                                                        : UP_NONE;
  return upper_op(n->op, &n->attr, a, UP_NONE);
}

static bool lower_only(const IrFunc *f, int32_t v, int depth);

/* Whether micro-op k's value (or, k == -1 - j, external input j) is read
 * by the fused node n only below the diagonal; need_out: the node's value
 * itself is needed only there. */
static bool micro_lower_only(const IrFunc *f, const IrNode *n, const int *u, int32_t ref,
                             bool need_out) {
  const IrFused *p = n->fused;
  if (ref >= 0 && ref == p->n - 1 && !need_out) return false;
  for (int k = 0; k < p->n; k++) {
    const IrMicro *m = &p->ops[k];
    for (int q = 0; q < m->nin && q < 2; q++) {
      if (m->in[q] != ref) continue;
      switch (m->op) {
      case OP_CAUSAL_MASK: break; /* overwrites the upper triangle */
      case OP_SCALE:
        if (!micro_lower_only(f, n, u, k, need_out)) return false;
        break;
      case OP_SOFTMAX_GRAD: /* (y, dy): y zero above, so dy's entries there meet 0 */
        if (q != 1) return false;
        {
          int32_t y = m->in[0];
          int uy = y < 0 ? upper(f, n->in[-1 - y], 1) : u[y];
          if (uy != UP_ZERO) return false;
        }
        break;
      default: return false;
      }
    }
  }
  return true;
}

/* No reader of v (nor an output) depends on v's entries above the diagonal. */
static bool lower_only(const IrFunc *f, int32_t v, int depth) {
  if (depth > 8 || !square_last(&f->nodes[v].type)) return false;
  for (int o = 0; o < f->nout; o++)
    if (f->outs[o].value == v) return false;
  for (int32_t i = v + 1; i < f->n; i++) {
    const IrNode *c = &f->nodes[i];
    for (int q = 0; q < c->nin; q++) {
      if (c->in[q] != v) continue;
      if (!ir_type_eq(&c->type, &f->nodes[v].type) && c->op != OP_MATMUL) return false;
      switch (c->op) {
      case OP_CAUSAL_MASK: break;
      case OP_SCALE:
        if (!lower_only(f, i, depth + 1)) return false;
        break;
      case OP_SOFTMAX_GRAD:
        if (q != 1 || upper(f, c->in[0], 0) != UP_ZERO) return false;
        break;
      case OP_MATMUL: /* a triangular A: the kernel reads only its lower part */
        if (q != 0 || upper(f, v, 0) != UP_ZERO) return false;
        break;
      case OP_FUSED: {
        if (!c->fused || c->fused->n > IR_FUSED_MAX) return false;
        int u[IR_FUSED_MAX];
        upper_micro(f, c, u, 0);
        /* every micro-op of c reading external input q */
        if (!micro_lower_only(f, c, u, IR_FUSED_EXT(q), lower_only(f, i, depth + 1))) return false;
        break;
      }
      default: return false;
      }
    }
  }
  return true;
}

/* The triangular mode of matmul node i (IR_MM_TRI_*), 0 for none. */
static int64_t tri_mode(const IrFunc *f, int32_t i) {
  const IrNode *n = &f->nodes[i];
  const IrType *A = &f->nodes[n->in[0]].type;
  if (square_last(A) && upper(f, n->in[0], 0) == UP_ZERO) return IR_MM_TRI_A;
  if (square_last(&n->type) && lower_only(f, i, 0)) return IR_MM_TRI_OUT;
  return 0;
}

/* Whether a softmax (its input's upper() is a) or softmax_grad (y's is a;
 * need: whether a reader needs its result above the diagonal) may run over
 * row prefixes. */
static bool causal_row(int op, int a, bool lower_read) {
  if (op == OP_SOFTMAX) return a == UP_NEGINF;
  if (op == OP_SOFTMAX_GRAD) return a == UP_ZERO && lower_read;
  return false;
}

/* The fused node's micro-program with its softmax row op marked causal
 * (i[0] = 1) when it may be; the same program when not; NULL when out of
 * memory. */
static const IrFused *causal_fused(Arena *arena, const IrFunc *f, int32_t i) {
  const IrNode *n = &f->nodes[i];
  const IrFused *p = n->fused;
  if (!p || p->rowop < 0 || p->n > IR_FUSED_MAX || !square_last(&p->ops[p->rowop].type))
    return p;
  const IrMicro *rm = &p->ops[p->rowop];
  if (rm->op != OP_SOFTMAX && rm->op != OP_SOFTMAX_GRAD) return p;
  int u[IR_FUSED_MAX];
  upper_micro(f, n, u, 0);
  int32_t x = rm->in[0];
  int a = x < 0 ? upper(f, n->in[-1 - x], 1) : u[x];
  bool lower_read = rm->op == OP_SOFTMAX_GRAD &&
                    micro_lower_only(f, n, u, p->rowop, lower_only(f, i, 0));
  if (!causal_row(rm->op, a, lower_read)) return p;
  IrMicro *ops = arena_alloc(arena, sizeof *ops * (size_t)p->n);
  IrFused *q = arena_alloc(arena, sizeof *q);
  if (!ops || !q) return NULL;
  memcpy(ops, p->ops, sizeof *ops * (size_t)p->n);
  ops[p->rowop].attr.i[0] = 1;
  *q = (IrFused){p->n, p->rowop, ops};
  return q;
}

IrFunc *pass_causal(Arena *arena, const IrFunc *f) {
  IrFunc *g = ir_func_new(arena, f->name, f->batch);
  if (!g) return NULL;
  for (int32_t i = 0; i < f->n; i++) {
    IrNode n = f->nodes[i];
    if (n.op == OP_MATMUL) n.attr.i[2] = tri_mode(f, i);
    if ((n.op == OP_SOFTMAX || n.op == OP_SOFTMAX_GRAD) && square_last(&n.type))
      n.attr.i[0] = causal_row(n.op, upper(f, n.in[0], 1), n.op == OP_SOFTMAX_GRAD && lower_only(f, i, 0));
    if (n.op == OP_FUSED && !(n.fused = causal_fused(arena, f, i))) return NULL;
    if (ir_append(g, &n) != i) return NULL;
  }
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    if (ir_add_output(g, o->name, o->value, (IrOutRole)o->role, o->index) != 0) return NULL;
  }
  return g;
}
