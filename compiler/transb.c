/* transb.c - products with a large transposed weight read one copy of it.
 *
 * A product A B^T whose B is a matrix (a layer's input gradient dY W^T, an
 * output projection tied to an embedding) gives the GEMM backend a
 * transposed B, which libxsmm's kernels cannot read: gemm_xsmm.c copies
 * B^T into a panel first, for every block of rows k_gemm cuts the product
 * into, from a B that is usually out of cache.  That copy was the largest
 * symbol of rac's own code in the profiles of the benchmark models (2-2.5%
 * of a step).  Here such a product becomes a transpose node, B^T made once
 * in the step's memory plan, and the product A (B^T) with tb = 0.  Each
 * element of C stays one chain of FMAs in k order on libxsmm (the bits do
 * not change); OpenBLAS, which packs either operand, agrees to float
 * tolerance.
 *
 * Rewritten: matmul with tb = 1 and ta = 0, B of rank 2 ([n, k]), not
 * marked causal, whose rows m (A's rows, its batch dims flattened) are at
 * least n, and m n k at least TRANSB_MIN.  Below that the product runs as
 * one block (k_gemm) and copies B once anyway; with m < n it is cut by
 * columns, each block copying only its own rows of B.
 */
#include "program.h"

/* m n k from which k_gemm cuts a product into blocks (4 K_SMALL_GEMM,
 * runtime/exec/kernels_linalg.c). */
#define TRANSB_MIN (1 << 20)

static bool wants_transb(const IrFunc *f, const IrNode *n) {
  if (n->op != OP_MATMUL || n->attr.i[0] || !n->attr.i[1] || n->attr.i[2]) return false;
  const IrType *B = &f->nodes[n->in[1]].type;
  if (B->rank != 2 || B->dtype != IR_F32) return false;
  int64_t nn = B->dim[0], k = B->dim[1], out = ir_numel(&n->type);
  if (nn <= 0 || k <= 0 || out % nn) return false;
  int64_t m = out / nn;
  return m >= nn && m * nn * k >= TRANSB_MIN;
}

IrFunc *pass_transb(Arena *arena, const IrFunc *f) {
  IrFunc *g = ir_func_new(arena, f->name, f->batch);
  int32_t *map = arena_alloc(arena, sizeof *map * (size_t)(f->n > 0 ? f->n : 1));
  if (!g || !map) return NULL;
  for (int32_t i = 0; i < f->n; i++) {
    IrNode n = f->nodes[i];
    for (int j = 0; j < n.nin; j++) n.in[j] = map[n.in[j]];
    if (wants_transb(f, &f->nodes[i])) {
      IrNode t = {.op = OP_TRANSPOSE, .nin = 1, .in = {n.in[1]}, .span = n.span};
      t.attr.i[0] = 1, t.attr.i[1] = 0;
      char err[256];
      int32_t bt = ir_emit(g, &t, err, sizeof err);
      if (bt < 0) return NULL;
      n.in[1] = bt;
      n.attr.i[1] = 0;
    }
    if ((map[i] = ir_append(g, &n)) < 0) return NULL;
  }
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    if (ir_add_output(g, o->name, map[o->value], (IrOutRole)o->role, o->index) != 0) return NULL;
  }
  return g;
}
