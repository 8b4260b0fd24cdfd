/* plan.c - the memory plan: where every value of a function lives.
 *
 * Parameters, inputs and constants live outside the arena (the model's
 * parameter buffer, the caller's input buffers, one constant buffer filled
 * once).  A RESHAPE is a view of its input's storage.  Every other value
 * gets a 64-byte aligned range of one arena: lifetimes run from the defining
 * node to the last reader (outputs to the end of the function; a value's
 * views keep it alive), and ranges are placed greedily, best fit among the
 * ranges freed so far, else at the top.  A node's result never overlaps its
 * inputs.  arena_bytes is the peak.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../base/sbuf.h"

#include "program.h"

#define ALIGN 64

static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/* Free ranges sorted by offset, coalesced; the top of the arena in use. */
typedef struct FreeList {
  int64_t *off, *size;
  int n;
  int64_t top, peak;
} FreeList;

static void fl_remove(FreeList *fl, int k) {
  memmove(fl->off + k, fl->off + k + 1, (size_t)(fl->n - k - 1) * sizeof *fl->off);
  memmove(fl->size + k, fl->size + k + 1, (size_t)(fl->n - k - 1) * sizeof *fl->size);
  fl->n--;
}

static int64_t fl_alloc(FreeList *fl, int64_t size) {
  int best = -1;
  for (int k = 0; k < fl->n; k++)
    if (fl->size[k] >= size && (best < 0 || fl->size[k] < fl->size[best])) best = k;
  int64_t off;
  if (best >= 0) {
    off = fl->off[best];
    fl->off[best] += size;
    fl->size[best] -= size;
    if (fl->size[best] == 0) fl_remove(fl, best);
  } else if (fl->n > 0 && fl->off[fl->n - 1] + fl->size[fl->n - 1] == fl->top) {
    off = fl->off[fl->n - 1];   /* grow the last free range past the top */
    fl_remove(fl, fl->n - 1);
    fl->top = off + size;
  } else {
    off = fl->top;
    fl->top += size;
  }
  if (fl->top > fl->peak) fl->peak = fl->top;
  return off;
}

static void fl_free(FreeList *fl, int64_t off, int64_t size) {
  if (off + size == fl->top) {   /* lower the top, then absorb a free range below */
    fl->top = off;
    if (fl->n > 0 && fl->off[fl->n - 1] + fl->size[fl->n - 1] == fl->top) {
      fl->top = fl->off[fl->n - 1];
      fl_remove(fl, fl->n - 1);
    }
    return;
  }
  int k = 0;
  while (k < fl->n && fl->off[k] < off) k++;
  memmove(fl->off + k + 1, fl->off + k, (size_t)(fl->n - k) * sizeof *fl->off);
  memmove(fl->size + k + 1, fl->size + k, (size_t)(fl->n - k) * sizeof *fl->size);
  fl->off[k] = off;
  fl->size[k] = size;
  fl->n++;
  if (k + 1 < fl->n && fl->off[k] + fl->size[k] == fl->off[k + 1]) {
    fl->size[k] += fl->size[k + 1];
    fl_remove(fl, k + 1);
  }
  if (k > 0 && fl->off[k - 1] + fl->size[k - 1] == fl->off[k]) {
    fl->size[k - 1] += fl->size[k];
    fl_remove(fl, k);
  }
}

MemPlan *plan_memory(Arena *arena, const IrFunc *f) {
  int n = f->n, cnt = n > 0 ? n : 1;
  MemPlan *p = arena_alloc(arena, sizeof *p);
  if (!p) return NULL;
  p->kind = arena_alloc(arena, (size_t)cnt * sizeof *p->kind);
  p->offset = arena_alloc(arena, (size_t)cnt * sizeof *p->offset);
  p->last_use = arena_alloc(arena, (size_t)cnt * sizeof *p->last_use);
  int32_t *head = arena_alloc(arena, (size_t)(n + 1) * sizeof *head);
  int32_t *next = arena_alloc(arena, (size_t)cnt * sizeof *next);
  FreeList fl = {arena_alloc(arena, (size_t)(cnt + 1) * sizeof(int64_t)),
                 arena_alloc(arena, (size_t)(cnt + 1) * sizeof(int64_t)), 0, 0, 0};
  if (!p->kind || !p->offset || !p->last_use || !head || !next || !fl.off || !fl.size)
    return NULL;

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

  /* Arena placement: allocate node i's result, then free what dies at i. */
  for (int t = 0; t <= n; t++) head[t] = -1;
  for (int i = n - 1; i >= 0; i--) {
    if (p->kind[i] != STORE_ARENA) continue;
    int32_t t = p->last_use[i];
    next[i] = head[t];
    head[t] = i;
  }
  for (int i = 0; i < n; i++) {
    if (p->kind[i] == STORE_ARENA)
      p->offset[i] = fl_alloc(&fl, (int64_t)align_up(ir_bytes(&f->nodes[i].type)));
    for (int32_t v = head[i]; v >= 0; v = next[v])
      fl_free(&fl, p->offset[v], (int64_t)align_up(ir_bytes(&f->nodes[v].type)));
  }
  p->arena_bytes = (size_t)fl.peak;
  return p;
}

/* ---- text form ---- */

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
    case STORE_PARAM:
      sbuf_printf(&o, "  %%%d %s params : %s\n", i, op, tb);
      break;
    case STORE_INPUT:
      sbuf_printf(&o, "  %%%d %s inputs : %s\n", i, op, tb);
      break;
    }
  }
  sbuf_printf(&o, "consts %zu bytes\n", p->const_bytes);
  sbuf_printf(&o, "peak %zu bytes (%.2f MiB), naive %zu bytes\n", p->arena_bytes,
          (double)p->arena_bytes / (1024.0 * 1024.0), naive);
  return sbuf_str(&o);
}
