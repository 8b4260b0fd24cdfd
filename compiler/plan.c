/* plan.c - the memory plan: where every value of a function lives.
 *
 * Parameters, inputs and constants live outside the arena (the model's
 * parameter buffer, the caller's input buffers, one constant buffer filled
 * once).  A RESHAPE is a view of its input's storage.  Every other value
 * gets a 64-byte aligned range of one arena: lifetimes run from the defining
 * node to the last reader (outputs to the end of the function; a value's
 * views keep it alive).  Ranges are placed largest first, each at the
 * lowest offset where it meets no range placed before it whose lifetime
 * overlaps its own (ties by value index, so the plan is a function of the
 * IR).  A node's result never overlaps its inputs.  arena_bytes is the
 * peak: on the benchmark models and the examples, the most bytes live at
 * any one node (placing them in node order, best fit among the ranges
 * freed so far, had left bench/charlm.ra's step 23% above that).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/sbuf.h"

#include "program.h"

#define ALIGN 64

static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/* An arena value's lifetime and bytes, for placement. */
typedef struct Life {
  int32_t v, from, to;
  int64_t bytes;
} Life;

static int by_size(const void *a, const void *b) {
  const Life *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return x->v < y->v ? -1 : x->v > y->v;
}

static int by_offset(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Chain c's values read only inside it go to the scratch of a slice. */
static void chain_scratch(const IrFunc *f, MemPlan *p, Chain *c) {
  size_t off = 0;
  for (int32_t v = c->first; v <= c->last; v++) {
    if (p->kind[v] != STORE_ARENA || p->last_use[v] > c->last) continue;
    p->kind[v] = STORE_SCRATCH;
    p->offset[v] = (int64_t)off;
    off += align_up(chain_slice_bytes(c, &f->nodes[v].type));
  }
  c->scratch = off;
  if (off > p->scratch_bytes) p->scratch_bytes = off;
}

MemPlan *plan_memory_chains(Arena *arena, const IrFunc *f, bool chains) {
  int n = f->n, cnt = n > 0 ? n : 1;
  MemPlan *p = arena_alloc(arena, sizeof *p);
  if (!p) return NULL;
  p->kind = arena_alloc(arena, (size_t)cnt * sizeof *p->kind);
  p->offset = arena_alloc(arena, (size_t)cnt * sizeof *p->offset);
  p->last_use = arena_alloc(arena, (size_t)cnt * sizeof *p->last_use);
  Life *life = arena_alloc(arena, (size_t)cnt * sizeof *life);
  int64_t *span = arena_alloc(arena, (size_t)cnt * 2 * sizeof *span); /* [start, end) pairs */
  if (!p->kind || !p->offset || !p->last_use || !life || !span) return NULL;

  for (int i = 0; i < n; i++) {
    const IrNode *nd = &f->nodes[i];
    p->last_use[i] = i;
    for (int k = 0; k < nd->nin; k++)
      if (p->last_use[nd->in[k]] < i) p->last_use[nd->in[k]] = i;
  }
  for (int i = 0; i < f->nout; i++) p->last_use[f->outs[i].value] = n;

  /* Kinds, views and constants. */
  size_t cbytes = 0;
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &f->nodes[i];
    switch ((IrOp)nd->op) {
    case OP_PARAM: p->kind[i] = STORE_PARAM; break;
    case OP_INPUT: p->kind[i] = STORE_INPUT; break;
    case OP_CONST:
      p->kind[i] = STORE_CONST;
      p->offset[i] = (int64_t)cbytes;
      cbytes += align_up(ir_bytes(&nd->type));
      break;
    default:
      if (ir_op_info[nd->op].flags & OPF_VIEW) {
        int32_t src = nd->in[0];
        int32_t root = p->kind[src] == STORE_VIEW ? (int32_t)p->offset[src] : src;
        p->kind[i] = STORE_VIEW;
        p->offset[i] = root;
      } else {
        p->kind[i] = STORE_ARENA;
      }
    }
  }
  p->const_bytes = cbytes;
  /* A view keeps its storage alive. */
  for (int i = 0; i < n; i++) {
    if (p->kind[i] != STORE_VIEW) continue;
    int32_t root = (int32_t)p->offset[i];
    if (p->last_use[root] < p->last_use[i]) p->last_use[root] = p->last_use[i];
  }

  p->chains = NULL;
  p->nchains = 0;
  p->scratch_bytes = 0;
  if (chains) {
    p->nchains = chain_find(arena, f, &p->chains);
    if (p->nchains < 0) return NULL;
    for (int c = 0; c < p->nchains; c++) chain_scratch(f, p, &p->chains[c]);
  }

  /* Arena placement, largest first: the lowest offset clear of every
   * range already placed whose lifetime meets this one's.  A chain's
   * slices run one after another through all its nodes, so a value made
   * or last read inside a chain lives from its start or to its end. */
  int nl = 0;
  for (int i = 0; i < n; i++)
    if (p->kind[i] == STORE_ARENA)
      life[nl++] = (Life){i, i, p->last_use[i], (int64_t)align_up(ir_bytes(&f->nodes[i].type))};
  for (int c = 0; c < p->nchains; c++)
    for (int l = 0; l < nl; l++) {
      const Chain *ch = &p->chains[c];
      if (life[l].from >= ch->first && life[l].from <= ch->last) life[l].from = ch->first;
      if (life[l].to >= ch->first && life[l].to <= ch->last) life[l].to = ch->last;
    }
  qsort(life, (size_t)nl, sizeof *life, by_size);
  int64_t peak = 0;
  for (int a = 0; a < nl; a++) {
    int ns = 0;
    for (int b = 0; b < a; b++)
      if (life[b].from <= life[a].to && life[a].from <= life[b].to) {
        span[2 * ns] = p->offset[life[b].v];
        span[2 * ns + 1] = p->offset[life[b].v] + life[b].bytes;
        ns++;
      }
    qsort(span, (size_t)ns, 2 * sizeof *span, by_offset);
    int64_t off = 0;
    for (int k = 0; k < ns && span[2 * k] < off + life[a].bytes; k++)
      if (span[2 * k + 1] > off) off = span[2 * k + 1];
    p->offset[life[a].v] = off;
    if (off + life[a].bytes > peak) peak = off + life[a].bytes;
  }
  p->arena_bytes = (size_t)peak;
  return p;
}

MemPlan *plan_memory(Arena *arena, const IrFunc *f) { return plan_memory_chains(arena, f, true); }

/* ---- text form ---- */

/* One slice's bytes of scratch value v. */
static size_t chain_of_bytes(const IrFunc *f, const MemPlan *p, int32_t v) {
  for (int c = 0; c < p->nchains; c++)
    if (v >= p->chains[c].first && v <= p->chains[c].last)
      return chain_slice_bytes(&p->chains[c], &f->nodes[v].type);
  return 0;
}

char *plan_print(Arena *arena, const IrFunc *f, const MemPlan *p) {
  SBuf o;
  sbuf_init(&o, arena);
  sbuf_printf(&o, "plan %s batch %lld\n", f->name, (long long)f->batch);
  size_t naive = 0;
  char tb[128];
  for (int i = 0; i < f->n; i++) {
    const IrNode *nd = &f->nodes[i];
    size_t bytes = ir_bytes(&nd->type);
    const char *op = ir_op_info[nd->op].name;
    ir_type_str(&nd->type, tb, sizeof tb);
    switch ((StoreKind)p->kind[i]) {
    case STORE_ARENA:
      naive += align_up(bytes);
      sbuf_printf(&o, "  %%%d %s arena %lld +%zu until %d : %s\n", i, op, (long long)p->offset[i],
              bytes, (int)p->last_use[i], tb);
      break;
    case STORE_CONST:
      sbuf_printf(&o, "  %%%d %s consts %lld +%zu : %s\n", i, op, (long long)p->offset[i], bytes, tb);
      break;
    case STORE_VIEW:
      sbuf_printf(&o, "  %%%d %s view of %%%lld : %s\n", i, op, (long long)p->offset[i], tb);
      break;
    case STORE_SCRATCH:
      sbuf_printf(&o, "  %%%d %s scratch %lld +%zu until %d : %s\n", i, op,
                  (long long)p->offset[i], chain_of_bytes(f, p, i), (int)p->last_use[i], tb);
      break;
    case STORE_PARAM:
      sbuf_printf(&o, "  %%%d %s params : %s\n", i, op, tb);
      break;
    case STORE_INPUT:
      sbuf_printf(&o, "  %%%d %s inputs : %s\n", i, op, tb);
      break;
    }
  }
  for (int c = 0; c < p->nchains; c++) {
    const Chain *ch = &p->chains[c];
    ir_type_str(&f->nodes[ch->first].type, tb, sizeof tb);
    sbuf_printf(&o,
                "chain %%%d..%%%d over %d dims of %s: %lld items, %lld per slice, "
                "scratch %zu bytes\n",
                (int)ch->first, (int)ch->last, ch->lead, tb, (long long)ch->items,
                (long long)ch->per, ch->scratch);
  }
  sbuf_printf(&o, "consts %zu bytes\n", p->const_bytes);
  if (p->nchains) sbuf_printf(&o, "scratch %zu bytes a worker\n", p->scratch_bytes);
  sbuf_printf(&o, "peak %zu bytes (%.2f MiB), naive %zu bytes\n", p->arena_bytes,
          (double)p->arena_bytes / (1024.0 * 1024.0), naive);
  return sbuf_str(&o);
}
