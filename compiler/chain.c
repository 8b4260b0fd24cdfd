/* chain.c - chains: runs of nodes executed batch item by batch item.
 *
 * Attention computes, for each (example, head), scores S = Q K^T, P =
 * softmax(S) and P V; its backward dP, dS, dQ, dK and dV the same way.
 * Node by node, each of these is a tensor of every item (medium: 128 items
 * of 64 KiB, 8 MiB), written to memory by one node and read back by the
 * next.  A chain is a run of consecutive nodes that each compute item b of
 * their result from item b of their operands alone (the same leading
 * dims); the executor runs the whole run on one slice of items, then the
 * next, so what one node writes the next reads from the cache, and a value
 * used only inside the chain (S, dP, dS) needs one slice's bytes per worker
 * instead of its whole tensor (STORE_SCRATCH, plan.c).
 *
 * Each node of a chain runs its ordinary kernel on the slice function: the
 * chain's nodes with their types cut to one slice (the leading dims 1,
 * the last of them the items per slice), operands from outside the chain as
 * leaves.  A kernel computes an item the same way whatever the number of
 * items (products are one GEMM per item, rows are rows), so the results
 * have the bits of the unchained function on any number of threads
 * (tests/test_chain.c).
 *
 * What may be in a chain: elementwise ops that are functions of their
 * inputs (not dropout, whose masks are keyed by the element's index in
 * the whole tensor, nor extern calls), softmax, layernorm and their
 * gradients, causal_mask, fused nodes of those, and batched matmuls whose
 * operands both have the result's batch dims.  A chain has two nodes or
 * more, one of them a matmul.
 */
#include <string.h>

#include "program.h"

/* A slice's working set (every value of the chain, one slice of each) is
 * kept under this many bytes when items can be grouped: a quarter of a
 * 1 MiB L2, so the operands stay in it between the nodes. */
#define CHAIN_SLICE_BYTES (256 * 1024)

static bool item_op(int op) {
  unsigned fl = ir_op_info[op].flags;
  if (fl & OPF_IMPURE) return false;
  if (fl & OPF_EW) return true;
  switch ((IrOp)op) {
  case OP_SOFTMAX:
  case OP_SOFTMAX_GRAD:
  case OP_LAYERNORM:
  case OP_LAYERNORM_GRAD:
  case OP_CAUSAL_MASK:
  case OP_MATMUL:
    return true;
  default:
    return false;
  }
}

static bool same_lead(const IrType *t, const IrType *d, int r) {
  if (t->rank < r) return false;
  for (int j = 0; j < r; j++)
    if (t->dim[j] != d->dim[j]) return false;
  return true;
}

/* t, broadcast against a result of rank R (right-aligned), is the same for
 * every item of the first r dims. */
static bool same_for_items(const IrType *t, int R, int r) {
  int off = R - t->rank;
  for (int j = 0; j < r; j++)
    if (j - off >= 0 && t->dim[j - off] != 1) return false;
  return true;
}

/* The dims an op's types must keep beyond the sliced ones: a product's
 * matrices, and the [T, T] matrices of causal masks and of softmax rows
 * over causal prefixes (whose row index in its matrix counts). */
static int kept_dims(int op, const IrAttr *a) {
  bool causal = (op == OP_SOFTMAX || op == OP_SOFTMAX_GRAD) && a->i[0];
  return op == OP_MATMUL || op == OP_CAUSAL_MASK || causal ? 2 : 1;
}

/* Node i computes item b (of the first r dims of d) from item b of its
 * operands. */
static bool sliceable(const IrFunc *f, int32_t i, int r, const IrType *d) {
  const IrNode *n = &f->nodes[i];
  if (r < 1 || (!item_op(n->op) && n->op != OP_FUSED)) return false;
  if (n->type.rank < r + kept_dims(n->op, &n->attr) || !same_lead(&n->type, d, r)) return false;
  bool bcast = (ir_op_info[n->op].flags & OPF_BCAST) || n->op == OP_FUSED;
  if (n->op == OP_FUSED) {
    const IrFused *p = n->fused;
    if (!p) return false;
    for (int k = 0; k < p->n; k++) {
      const IrMicro *m = &p->ops[k];
      if (m->op == OP_SUM_TO || !item_op(m->op)) return false;
      if (m->type.rank < r + kept_dims(m->op, &m->attr) || !same_lead(&m->type, d, r)) return false;
    }
  }
  for (int k = 0; k < n->nin; k++) {
    const IrType *t = &f->nodes[n->in[k]].type;
    if (n->op == OP_MATMUL) {
      if (k > 1 || t->rank != n->type.rank || !same_lead(t, d, r)) return false;
    } else if (!same_lead(t, d, r)) {
      /* read whole by every slice: a broadcast operand smaller than the
       * result (a fused node reads one of the result's size flat, which
       * an operand of another shape would not be per item) */
      if (!bcast || ir_numel(t) == ir_numel(&n->type) || !same_for_items(t, n->type.rank, r))
        return false;
    }
  }
  return true;
}

static int max_lead(const IrFunc *f, int32_t i) {
  const IrType *t = &f->nodes[i].type;
  for (int r = t->rank; r >= 1; r--)
    if (sliceable(f, i, r, t)) return r;
  return 0;
}

static int64_t lead_items(const IrType *d, int r) {
  int64_t m = 1;
  for (int j = 0; j < r; j++) m *= d->dim[j];
  return m;
}

/* The longest chain from node i, or first > last when there is none. */
static Chain grow(const IrFunc *f, int32_t i) {
  Chain c = {.first = i, .last = i - 1};
  int r = max_lead(f, i);
  if (r < 1) return c;
  const IrType *d = &f->nodes[i].type;
  bool product = f->nodes[i].op == OP_MATMUL;
  int32_t j = i;
  while (j + 1 < f->n && j + 1 - i < CHAIN_MAX) {
    int rj = max_lead(f, j + 1), r2 = r < rj ? r : rj;
    while (r2 >= 1 && !same_lead(&f->nodes[j + 1].type, d, r2)) r2--;
    if (r2 < 1 || lead_items(d, r2) < 2 || !sliceable(f, j + 1, r2, d)) break;
    r = r2;
    j++;
    product |= f->nodes[j].op == OP_MATMUL;
  }
  if (j == i || !product || lead_items(d, r) < 2) return c;
  c.last = j;
  c.lead = r;
  c.items = lead_items(d, r);
  return c;
}

/* The slice of t: its first r dims 1, the r-th per. */
static IrType slice_type(IrType t, int r, int64_t per) {
  for (int j = 0; j < r; j++) t.dim[j] = 1;
  t.dim[r - 1] = per;
  return t;
}

/* Items per slice, the slice function, and the chain's external inputs. */
static int finish(Arena *a, const IrFunc *f, Chain *c) {
  const IrType *d = &f->nodes[c->first].type;
  int len = c->last - c->first + 1;
  int32_t *ext = arena_alloc(a, (size_t)len * IR_MAX_IN * sizeof *ext);
  if (!ext) return -1;
  int ne = 0;
  size_t item_bytes = 0;
  for (int32_t i = c->first; i <= c->last; i++) {
    const IrNode *n = &f->nodes[i];
    item_bytes += ir_bytes(&n->type) / (size_t)c->items;
    for (int k = 0; k < n->nin; k++) {
      int32_t v = n->in[k];
      bool seen = v >= c->first;
      for (int e = 0; e < ne && !seen; e++) seen = ext[e] == v;
      if (seen) continue;
      ext[ne++] = v;
      if (same_lead(&f->nodes[v].type, d, c->lead))
        item_bytes += ir_bytes(&f->nodes[v].type) / (size_t)c->items;
    }
  }
  /* Items per slice: as many as fit the budget, dividing the last sliced
   * dim; when all of it fits, whole rows of the dim before (every head of
   * some examples rather than some heads of one). */
  for (;;) {
    int64_t last_dim = d->dim[c->lead - 1];
    c->per = 1;
    for (int64_t p = last_dim; p > 1; p--)
      if (last_dim % p == 0 && (size_t)p * item_bytes <= CHAIN_SLICE_BYTES && c->items / p >= 2) {
        c->per = p;
        break;
      }
    if (c->per < last_dim || c->lead == 1 || d->dim[c->lead - 2] < 2) break;
    c->lead--;
    c->items /= last_dim;
    item_bytes *= (size_t)last_dim;
  }
  c->slices = c->items / c->per;

  IrFunc *s = ir_func_new(a, f->name, f->batch);
  uint8_t *sliced = arena_alloc(a, (size_t)(ne > 0 ? ne : 1));
  if (!s || !sliced) return -1;
  c->ext_sliced = sliced;
  for (int e = 0; e < ne; e++) {
    const IrNode *src = &f->nodes[ext[e]];
    bool sl = same_lead(&src->type, d, c->lead);
    sliced[e] = sl;
    IrNode leaf = {.op = OP_INPUT, .type = sl ? slice_type(src->type, c->lead, c->per) : src->type,
                   .span = src->span};
    if (ir_append(s, &leaf) < 0) return -1;
  }
  for (int32_t i = c->first; i <= c->last; i++) {
    IrNode n = f->nodes[i];
    n.type = slice_type(n.type, c->lead, c->per);
    for (int k = 0; k < n.nin; k++) {
      int32_t v = n.in[k];
      if (v >= c->first) {
        n.in[k] = ne + (v - c->first);
      } else {
        for (int e = 0; e < ne; e++)
          if (ext[e] == v) n.in[k] = e;
      }
    }
    if (n.op == OP_FUSED) {
      IrFused *p = arena_alloc(a, sizeof *p);
      IrMicro *ops = p ? arena_alloc(a, (size_t)n.fused->n * sizeof *ops) : NULL;
      if (!ops) return -1;
      *p = *n.fused;
      for (int k = 0; k < p->n; k++) {
        ops[k] = n.fused->ops[k];
        ops[k].type = slice_type(ops[k].type, c->lead, c->per);
      }
      p->ops = ops;
      n.fused = p;
    }
    if (ir_append(s, &n) < 0) return -1;
  }
  c->slice = s;
  c->ext = ext;
  c->nouter = ne;
  return 0;
}

int chain_find(Arena *a, const IrFunc *f, Chain **out) {
  *out = NULL;
  int nc = 0, cap = 0;
  Chain *cs = NULL;
  for (int32_t i = 0; i < f->n;) {
    Chain c = grow(f, i);
    if (c.last < c.first) {
      i++;
      continue;
    }
    if (finish(a, f, &c)) return -1;
    if (nc == cap) {
      int nc2 = cap ? 2 * cap : 8;
      Chain *grown = arena_alloc(a, (size_t)nc2 * sizeof *grown);
      if (!grown) return -1;
      if (nc) memcpy(grown, cs, (size_t)nc * sizeof *cs);
      cs = grown;
      cap = nc2;
    }
    cs[nc++] = c;
    i = c.last + 1;
  }
  *out = cs;
  return nc;
}

size_t chain_slice_bytes(const Chain *c, const IrType *t) {
  return ir_bytes(t) / (size_t)c->items * (size_t)c->per;
}
