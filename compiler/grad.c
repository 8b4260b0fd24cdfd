/* grad.c - the reverse-mode rule of every differentiable op (one
 * grad_<lower> per ops.def row marked Y, collected into grad_fns).
 *
 * Rules emit ordinary IR nodes through the builder (ir.h), so their output
 * is checked by the shape rules like any other node; see autodiff.h for the contract
 * and docs/ir.md for the rule of each op.
 */
#include <stdio.h>
#include <string.h>

#include "autodiff.h"

/* ---- helpers over the builder (ir.h): a failed emit yields -1, which the
 * next builder call passes through ---- */

static IrType type_of(const GradCtx *g, int32_t v) { return g->b.f->nodes[v].type; }
static IrNode node_of(const GradCtx *g, int32_t v) { return g->b.f->nodes[v]; }

/* x summed down to t (NumPy broadcasting backwards); x itself if it already
 * has t's dims. */
static int32_t sum_to(GradCtx *g, int32_t x, const IrType *t) {
  if (x < 0) return -1;
  IrType tx = type_of(g, x);
  if (ir_type_eq(&tx, t)) return x;
  return ir_typed(&g->b, OP_SUM_TO, x, t, 0, 0);
}

/* x viewed with t's dims; x itself if it already has them. */
static int32_t reshape(GradCtx *g, int32_t x, const IrType *t) {
  if (x < 0) return -1;
  IrType tx = type_of(g, x);
  if (ir_type_eq(&tx, t)) return x;
  return ir_reshape(&g->b, x, t);
}

static int done(GradCtx *g) { return g->b.failed ? -1 : 0; }

/* ---- elementwise ---- */

int grad_add(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  for (int k = 0; k < 2; k++) {
    IrType t = type_of(g, n.in[k]);
    if (g->need[k]) dx[k] = sum_to(g, dy, &t);
  }
  return done(g);
}

int grad_sub(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrType ta = type_of(g, n.in[0]), tb = type_of(g, n.in[1]);
  if (g->need[0]) dx[0] = sum_to(g, dy, &ta);
  if (g->need[1]) dx[1] = ir_unary(&g->b, OP_NEG, sum_to(g, dy, &tb));
  return done(g);
}

int grad_mul(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrType ta = type_of(g, n.in[0]), tb = type_of(g, n.in[1]);
  if (g->need[0]) dx[0] = sum_to(g, ir_binary(&g->b, OP_MUL, dy, n.in[1]), &ta);
  if (g->need[1]) dx[1] = sum_to(g, ir_binary(&g->b, OP_MUL, dy, n.in[0]), &tb);
  return done(g);
}

/* y = a / b: da = dy / b, db = -dy y / b. */
int grad_div(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrType ta = type_of(g, n.in[0]), tb = type_of(g, n.in[1]);
  if (g->need[0]) dx[0] = sum_to(g, ir_binary(&g->b, OP_DIV, dy, n.in[1]), &ta);
  if (g->need[1]) {
    int32_t q = ir_binary(&g->b, OP_DIV, node, n.in[1]);
    dx[1] = ir_unary(&g->b, OP_NEG, sum_to(g, ir_binary(&g->b, OP_MUL, dy, q), &tb));
  }
  return done(g);
}

int grad_neg(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  (void)node;
  dx[0] = ir_unary(&g->b, OP_NEG, dy);
  return done(g);
}

int grad_scale(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  dx[0] = ir_scale(&g->b, dy, node_of(g, node).attr.f[0]);
  return done(g);
}

int grad_square(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  dx[0] = ir_scale(&g->b, ir_binary(&g->b, OP_MUL, dy, node_of(g, node).in[0]), 2.0);
  return done(g);
}

/* The activations and softmax: dx = <op>_grad(a, dy), where a is the
 * node's input x or, for ops whose derivative is cheaper from the result,
 * the node itself (y). */
static int grad_by(GradCtx *g, IrOp op, int32_t a, int32_t dy, int32_t *dx) {
  dx[0] = ir_binary(&g->b, op, a, dy);
  return done(g);
}

int grad_relu(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  return grad_by(g, OP_RELU_GRAD, node_of(g, node).in[0], dy, dx);
}
int grad_gelu(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  return grad_by(g, OP_GELU_GRAD, node_of(g, node).in[0], dy, dx);
}
int grad_silu(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  return grad_by(g, OP_SILU_GRAD, node_of(g, node).in[0], dy, dx);
}
int grad_tanh(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  return grad_by(g, OP_TANH_GRAD, node, dy, dx);
}
int grad_sigmoid(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  return grad_by(g, OP_SIGMOID_GRAD, node, dy, dx);
}

/* ---- normalisations ---- */

int grad_softmax(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  return grad_by(g, OP_SOFTMAX_GRAD, node, dy, dx);
}

int grad_layernorm(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrNode m = {.op = OP_LAYERNORM_GRAD, .nin = 2, .in = {n.in[0], dy}, .attr.f = {n.attr.f[0]}};
  dx[0] = ir_op(&g->b, m);
  return done(g);
}

/* ---- contractions ----
 * C = op(A) op(B).  Per transpose case:
 *   ta tb   dA                 dB
 *   0  0    dC B^T             A^T dC
 *   0  1    dC B               dC^T A
 *   1  0    B dC^T             A dC
 *   1  1    B^T dC^T           dC^T A^T
 * then summed down over broadcast leading dims.  When B is a 2-D weight and
 * A (not transposed) carries leading dims, dB is one GEMM over the
 * [-1, k] views of A and dC instead of a batched product and a sum. */
int grad_matmul(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  int32_t a = n.in[0], b = n.in[1];
  int ta = (int)n.attr.i[0], tb = (int)n.attr.i[1];
  IrType TA = type_of(g, a), TB = type_of(g, b), TC = n.type;
  if (g->need[0]) {
    int32_t m;
    if (!ta)
      m = ir_matmul(&g->b, dy, b, 0, !tb);
    else
      m = ir_matmul(&g->b, b, dy, tb, 1);
    dx[0] = sum_to(g, m, &TA);
  }
  if (g->need[1]) {
    if (TB.rank == 2 && TA.rank > 2 && !ta) {
      int64_t k = TA.dim[TA.rank - 1], nn = TC.dim[TC.rank - 1];
      IrType a2 = ir_type_make(IR_F32, 2, (int64_t[]){ir_numel(&TA) / k, k}, false);
      IrType c2 = ir_type_make(IR_F32, 2, (int64_t[]){ir_numel(&TC) / nn, nn}, false);
      int32_t av = reshape(g, a, &a2), cv = reshape(g, dy, &c2);
      dx[1] = tb ? ir_matmul(&g->b, cv, av, 1, 0) : ir_matmul(&g->b, av, cv, 1, 0);
    } else {
      int32_t m;
      if (!tb)
        m = ta ? ir_matmul(&g->b, a, dy, 0, 0) : ir_matmul(&g->b, a, dy, 1, 0);
      else
        m = ta ? ir_matmul(&g->b, dy, a, 1, 1) : ir_matmul(&g->b, dy, a, 1, 0);
      dx[1] = sum_to(g, m, &TB);
    }
  }
  return done(g);
}

int grad_gather(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  if (g->need[0]) {
    IrType tt = type_of(g, n.in[0]);
    dx[0] = ir_op(&g->b, (IrNode){.op = OP_SCATTER_ADD, .nin = 2, .in = {n.in[1], dy}, .type = tt});
  }
  return done(g); /* the index gets no gradient */
}

/* ---- reductions ---- */

int grad_sum(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrType tx = type_of(g, n.in[0]);
  dx[0] = ir_typed(&g->b, OP_BROADCAST, dy, &tx, n.attr.i[0], 0);
  return done(g);
}

int grad_mean(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrType tx = type_of(g, n.in[0]);
  int32_t b = ir_typed(&g->b, OP_BROADCAST, dy, &tx, n.attr.i[0], 0);
  dx[0] = ir_scale(&g->b, b, 1.0 / (double)tx.dim[n.attr.i[0]]);
  return done(g);
}

int grad_max(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrNode m = {.op = OP_MAX_GRAD, .nin = 3, .in = {n.in[0], node, dy}, .attr.i = {n.attr.i[0]}};
  dx[0] = ir_op(&g->b, m);
  return done(g);
}

int grad_broadcast(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  dx[0] = ir_reduce(&g->b, OP_SUM, dy, (int)n.attr.i[0]);
  return done(g);
}

/* The adjoint of sum_to is broadcasting back: drop the size-1 axes that were
 * summed (a reshape), then insert every summed axis with BROADCAST, in
 * increasing axis order. */
int grad_sum_to(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrType tx = type_of(g, n.in[0]), ty = n.type;
  int rx = tx.rank, off = tx.rank - ty.rank;
  bool bc[IR_MAX_RANK];
  int64_t kept[IR_MAX_RANK] = {0};
  int nk = 0;
  for (int i = 0; i < rx; i++) {
    int j = i - off;
    bc[i] = j < 0 || (ty.dim[j] == 1 && tx.dim[i] != 1);
    if (!bc[i]) kept[nk++] = tx.dim[i];
  }
  IrType cur = ir_type_make(IR_F32, nk, kept, false);
  int32_t v = reshape(g, dy, &cur);
  for (int i = 0; i < rx; i++) {
    if (!bc[i]) continue;
    IrType next = cur;
    next.rank = (uint8_t)(cur.rank + 1);
    for (int k = next.rank - 1; k > i; k--) next.dim[k] = cur.dim[k - 1];
    next.dim[i] = tx.dim[i];
    v = ir_typed(&g->b, OP_BROADCAST, v, &next, i, 0);
    cur = next;
  }
  dx[0] = v;
  return done(g);
}

/* ---- layout ---- */

int grad_reshape(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrType tx = type_of(g, node_of(g, node).in[0]);
  dx[0] = ir_typed(&g->b, OP_RESHAPE, dy, &tx, 0, 0);
  return done(g);
}

int grad_transpose(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  int64_t inv[IR_MAX_RANK] = {0};
  for (int k = 0; k < n.type.rank; k++) inv[n.attr.i[k]] = k;
  dx[0] = ir_transpose(&g->b, dy, inv);
  return done(g);
}

int grad_concat(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  int64_t axis = n.attr.i[0], off = 0;
  for (int k = 0; k < n.nin; k++) {
    IrType tk = type_of(g, n.in[k]);
    if (g->need[k]) dx[k] = ir_typed(&g->b, OP_SLICE, dy, &tk, axis, off);
    off += tk.dim[axis];
  }
  return done(g);
}

/* dx is dy padded with zeros before and after the slice along the axis. */
int grad_slice(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  IrType tx = type_of(g, n.in[0]);
  int axis = (int)n.attr.i[0];
  int64_t from = n.attr.i[1], len = n.type.dim[axis], after = tx.dim[axis] - from - len;
  IrNode c = {.op = OP_CONCAT, .attr.i = {axis}};
  if (from > 0) {
    IrType z = tx;
    z.dim[axis] = from;
    c.in[c.nin++] = ir_fill(&g->b, &z, 0.0);
  }
  c.in[c.nin++] = dy;
  if (after > 0) {
    IrType z = tx;
    z.dim[axis] = after;
    c.in[c.nin++] = ir_fill(&g->b, &z, 0.0);
  }
  dx[0] = c.nin == 1 ? dy : ir_op(&g->b, c);
  return done(g);
}

/* ---- stochastic and masking ---- */

int grad_dropout(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  dx[0] = ir_op(&g->b, (IrNode){.op = OP_DROPOUT_GRAD, .nin = 1, .in = {dy}, .attr = n.attr});
  return done(g);
}

int grad_causal_mask(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  (void)node;
  dx[0] = ir_op(&g->b, (IrNode){.op = OP_CAUSAL_MASK, .nin = 1, .in = {dy}, .attr.f = {0.0}});
  return done(g);
}

/* ---- losses ---- */

int grad_cross_entropy(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  if (g->need[0]) {
    IrNode c = {.op = OP_CROSS_ENTROPY_GRAD, .nin = 3, .in = {n.in[0], n.in[1], dy}};
    dx[0] = ir_op(&g->b, c);
  }
  return done(g); /* the target gets no gradient */
}

/* ---- native functions ---- */

int grad_extern(GradCtx *g, int32_t node, int32_t dy, int32_t *dx) {
  IrNode n = node_of(g, node);
  int64_t fn = n.attr.i[0];
  const ExternDecl *x = fn >= 0 && fn < g->nexterns ? &g->externs[fn] : NULL;
  if (!x || !x->grad) {
    char num[32];
    const char *name = x ? x->name : NULL;
    if (!name) {
      snprintf(num, sizeof num, "extern #%lld", (long long)fn);
      name = num;
    }
    if (g->diags) {
      diag_error(g->diags, n.span,
                 "'%s' has no gradient (declare it with `grad NAME`) but it lies on the path "
                 "to the loss",
                 name);
      g->diagnosed = true;
    }
    snprintf(g->b.err, sizeof g->b.err, "'%s' has no gradient", name);
    return -1;
  }
  IrNode e = {.op = OP_EXTERN_GRAD, .nin = 2, .in = {n.in[0], dy}, .attr.i = {fn}};
  dx[0] = ir_op(&g->b, e);
  return done(g);
}

#define GRAD_FN_Y(l) grad_##l
#define GRAD_FN_N(l) NULL
const GradFn grad_fns[OP_COUNT] = {
#define OP(U, l, a, f, g) [OP_##U] = GRAD_FN_##g(l),
#include "ops.def"
#undef OP
};
