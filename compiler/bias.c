/* bias.c - a layer's bias added by the product that makes its output.
 *
 * A linear layer is lowered as matmul then add(bias, product): the add
 * reads the whole product back from memory after the GEMM wrote it.  Here
 * such an add becomes the product's third input; the kernel adds the bias
 * to each block of rows right after computing it, while the block is in
 * the worker's cache (k_gemm_bias).  The sum is the add node's, element by
 * element, so the bits do not change.
 *
 * Rewritten: add of a rank-1 bias [n] and a matmul it alone reads (not an
 * output) with ta = 0, not marked causal, a matrix B ([k, n], so the
 * product is one GEMM over all of A's rows), and the bias defined before
 * the product.  The pass runs after the others (pass_compile).
 */
#include "program.h"

/* The matmul operand of an add that can take it as its bias, or -1; *bias
 * gets the other operand. */
static int32_t bias_product(const IrFunc *f, const IrNode *n, const int32_t *readers,
                            const bool *out, int32_t *bias) {
  if (n->op != OP_ADD || n->nin != 2) return -1;
  for (int j = 0; j < 2; j++) {
    int32_t p = n->in[j], c = n->in[1 - j];
    const IrNode *mm = &f->nodes[p];
    const IrType *ct = &f->nodes[c].type, *A, *B;
    if (mm->op != OP_MATMUL || mm->nin != 2 || mm->attr.i[0] || mm->attr.i[2]) continue;
    A = &f->nodes[mm->in[0]].type;
    B = &f->nodes[mm->in[1]].type;
    if (readers[p] != 1 || out[p] || c >= p || B->rank != 2 || A->rank != mm->type.rank) continue;
    if (ct->dtype != IR_F32 || ct->rank != 1 || mm->type.dtype != IR_F32 ||
        ct->dim[0] != mm->type.dim[mm->type.rank - 1] ||
        ir_numel(&n->type) != ir_numel(&mm->type) || n->type.rank != mm->type.rank)
      continue;
    *bias = c;
    return p;
  }
  return -1;
}

IrFunc *pass_bias(Arena *arena, const IrFunc *f) {
  size_t cnt = (size_t)(f->n > 0 ? f->n : 1);
  int32_t *map = arena_alloc(arena, sizeof *map * cnt);
  int32_t *readers = arena_alloc(arena, sizeof *readers * cnt);
  int32_t *with = arena_alloc(arena, sizeof *with * cnt); /* product -> its bias, or -1 */
  int32_t *into = arena_alloc(arena, sizeof *into * cnt); /* add -> its product, or -1 */
  bool *out = arena_alloc(arena, sizeof *out * cnt);
  IrFunc *g = ir_func_new(arena, f->name, f->batch);
  if (!g || !map || !readers || !with || !into || !out) return NULL;
  for (int i = 0; i < f->nout; i++) out[f->outs[i].value] = true;
  for (int32_t i = 0; i < f->n; i++) {
    with[i] = into[i] = -1;
    for (int j = 0; j < f->nodes[i].nin; j++) readers[f->nodes[i].in[j]]++;
  }
  for (int32_t i = 0; i < f->n; i++) {
    int32_t c, p = bias_product(f, &f->nodes[i], readers, out, &c);
    if (p >= 0 && with[p] < 0) with[p] = c, into[i] = p;
  }
  for (int32_t i = 0; i < f->n; i++) {
    if (into[i] >= 0) { /* the product made the sum */
      map[i] = map[into[i]];
      continue;
    }
    IrNode n = f->nodes[i];
    if (with[i] >= 0) n.in[n.nin++] = with[i];
    for (int j = 0; j < n.nin; j++) n.in[j] = map[n.in[j]];
    if (with[i] >= 0) {
      char err[256];
      if ((map[i] = ir_emit(g, &n, err, sizeof err)) < 0) return NULL;
    } else if ((map[i] = ir_append(g, &n)) < 0) {
      return NULL;
    }
  }
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    if (ir_add_output(g, o->name, map[o->value], (IrOutRole)o->role, o->index) != 0) return NULL;
  }
  return g;
}
