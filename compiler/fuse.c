/* fuse.c - the fusion pass: chains of elementwise ops become one FUSED
 * node whose micro-program (ir.h, IrFused) the interpreter runs in one pass
 * over the elements, and a code generator can compile as one loop.
 *
 * A group grows from a root (the value that stays materialised) back
 * through its operands: an operand joins when it is a fusable op of the
 * root's type and every reader of it is already in the group, and it is
 * not an output of the function.  Elementwise groups may also end in a row
 * op (softmax, softmax_grad, layernorm, layernorm_grad: the prologue
 * computes one of its operands) or in sum_to down to a suffix of the
 * operand's dims (a bias gradient), or start from a row op whose value is
 * read only by the chain (the epilogue).  The members keep their order, so
 * each micro-op is the same float operation on the same operands as
 * before: the fused node gives the unfused chain's bits.
 *
 * The pass runs after pass_optimize (pass_compile): fused nodes are never
 * folded or merged, and autodiff never sees them.
 */
#include <stdio.h>
#include <string.h>

#include "opmath.h"
#include "program.h"

/* ---- what may be a micro-op ---- */

/* The ops of opmath.h's lists (whose expressions the fused kernel runs),
 * dropout, dropout_grad and causal_mask; not extern, whose native code runs
 * over whole arrays. */
static bool is_ew_micro(int op) {
  switch ((IrOp)op) {
#define M2(U, l, EXPR) case OP_##U:
#define M3(U, l, COST, EXPR) case OP_##U:
    OPMATH_BINARY(M2)
    OPMATH_UNARY(M3)
    OPMATH_GRAD(M3)
#undef M2
#undef M3
  case OP_DROPOUT:
  case OP_DROPOUT_GRAD:
  case OP_CAUSAL_MASK:
    return true;
  default:
    return false;
  }
}

static bool is_row_micro(int op) {
  return op == OP_SOFTMAX || op == OP_SOFTMAX_GRAD || op == OP_LAYERNORM ||
         op == OP_LAYERNORM_GRAD;
}

/* sum_to x down to y where y's dims are a suffix of x's (more than one
 * element, more than one row): the [rows, C] -> [C] column sum of the
 * kernel, which adds the rows in order. */
static bool is_suffix_sum(const IrType *x, const IrType *y) {
  if (y->rank > x->rank || y->rank < 1) return false;
  for (int j = 0; j < y->rank; j++)
    if (x->dim[x->rank - y->rank + j] != y->dim[j]) return false;
  int64_t c = ir_numel(y), all = ir_numel(x);
  return c >= 2 && all / c >= 2;
}

/* Does external operand t of a micro-op of type out (op op) read as its
 * kernel reads it? */
static bool ext_ok(int op, const IrType *t, const IrType *out) {
  if (t->dtype != IR_F32) return false;
  if (ir_numel(t) == ir_numel(out)) return true;
  if (!(ir_op_info[op].flags & OPF_BCAST)) return false;
  if (t->rank > out->rank) return false;
  for (int j = 0; j < t->rank; j++) {
    int64_t d = t->dim[t->rank - 1 - j], o = out->dim[out->rank - 1 - j];
    if (d != o && d != 1) return false;
  }
  return true;
}

int ir_fused_check(const IrFunc *f, const IrNode *n, char *err, size_t errlen) {
  const IrFused *p = n->fused;
#define BAD(...) (snprintf(err, errlen, "fused: " __VA_ARGS__), -1)
  if (!p) return BAD("no micro-program");
  if (p->n < 1 || p->n > IR_FUSED_MAX) return BAD("%d micro-ops (1 to %d)", p->n, IR_FUSED_MAX);
  if (p->rowop >= p->n || p->rowop < -1) return BAD("row op %d out of range", p->rowop);
  bool used[IR_MAX_IN] = {0};
  for (int k = 0; k < p->n; k++) {
    const IrMicro *m = &p->ops[k];
    if (m->op >= OP_COUNT) return BAD("micro-op %d: unknown op", k);
    const char *name = ir_op_info[m->op].name;
    bool row = k == p->rowop;
    if (row ? !(is_row_micro(m->op) || (m->op == OP_SUM_TO && k == p->n - 1))
            : !is_ew_micro(m->op))
      return BAD("micro-op %d: %s cannot be %s", k, name, row ? "the row op" : "a micro-op");
    if (m->nin != ir_op_info[m->op].arity || m->nin < 1 || m->nin > 2)
      return BAD("micro-op %d: %s takes %d operands, has %d", k, name, ir_op_info[m->op].arity,
                 m->nin);
    if (m->type.dtype != IR_F32) return BAD("micro-op %d: %s is not f32", k, name);
    /* its region: the prologue has the row op's operand type, the rest
     * the row op's (or the node's) type */
    const IrType *want = &p->ops[p->n - 1].type;
    if (p->rowop >= 0 && k < p->rowop) {
      const IrMicro *r = &p->ops[p->rowop];
      const IrMicro *src = NULL;
      for (int j = 0; j < r->nin; j++)
        if (r->in[j] >= 0) src = &p->ops[r->in[j]];
      want = src ? &src->type : want;
    } else if (p->rowop >= 0 && k > p->rowop) {
      want = &p->ops[p->rowop].type;
    }
    if (!row && !ir_type_eq(&m->type, want)) return BAD("micro-op %d: %s has another type", k, name);
    int internal = 0;
    for (int j = 0; j < m->nin; j++) {
      int32_t r = m->in[j];
      if (r >= 0) {
        if (r >= k) return BAD("micro-op %d reads micro-op %d, not before it", k, (int)r);
        internal++;
        continue;
      }
      int32_t e = -1 - r;
      if (e >= n->nin) return BAD("micro-op %d reads input %d of %d", k, (int)e, n->nin);
      used[e] = true;
      const IrType *t = &f->nodes[n->in[e]].type;
      bool ok = row ? (m->op == OP_SUM_TO ? false : ir_type_eq(t, &m->type))
                    : ext_ok(m->op, t, &m->type);
      if (!ok) return BAD("micro-op %d (%s): input %d has a type it cannot read", k, name, (int)e);
    }
    if (row && (m->op == OP_SUM_TO ? internal != 1 : internal > 1))
      return BAD("row op %s: %d operands from the prologue", name, internal);
    for (int j = 0; j < m->nin; j++) {
      int32_t r = m->in[j];
      if (row && r >= 0 && r != k - 1) return BAD("row op %s: the prologue's value is not last", name);
      if (p->rowop >= 0 && k > p->rowop && r >= 0 && r < p->rowop)
        return BAD("micro-op %d: the epilogue reads the prologue", k);
    }
    if (p->rowop > 0 && k == p->rowop && internal == 0)
      return BAD("row op %s: reads nothing of its prologue", name);
  }
  for (int e = 0; e < n->nin; e++)
    if (!used[e]) return BAD("input %d is not read", e);
  if (p->rowop >= 0 && p->ops[p->rowop].op == OP_SUM_TO) {
    const IrMicro *s = &p->ops[p->rowop];
    if (!is_suffix_sum(&p->ops[s->in[0]].type, &s->type))
      return BAD("sum_to is not a sum over leading axes");
  }
#undef BAD
  return 0;
}

/* ---- grouping ---- */

typedef struct Fuser {
  const IrFunc *f;
  int32_t *uses;     /* readers (an output counts as f->n + 1 readers) */
  int32_t *group;    /* the root a member belongs to, or -1 */
  bool *mat;         /* value must stay materialised (an output) */
} Fuser;

typedef struct Group {
  int32_t root;
  int32_t mem[IR_FUSED_MAX];
  int n;
  int32_t ext[IR_MAX_IN];
  int next;
  int rowpos;         /* member that is a row op, or -1 */
} Group;

static int find(const int32_t *a, int n, int32_t v) {
  for (int k = 0; k < n; k++)
    if (a[k] == v) return k;
  return -1;
}

/* Readers of v inside the group. */
static int uses_in(const Fuser *F, const Group *g, int32_t v) {
  int c = 0;
  for (int k = 0; k < g->n; k++) {
    const IrNode *m = &F->f->nodes[g->mem[k]];
    for (int j = 0; j < m->nin; j++) c += m->in[j] == v;
  }
  return c;
}

/* The external inputs the group would have. */
static int count_ext(const Fuser *F, const Group *g, int32_t *ext) {
  int ne = 0;
  for (int k = 0; k < g->n; k++) {
    const IrNode *m = &F->f->nodes[g->mem[k]];
    for (int j = 0; j < m->nin; j++) {
      int32_t v = m->in[j];
      if (find(g->mem, g->n, v) >= 0 || find(ext, ne, v) >= 0) continue;
      if (ne == IR_MAX_IN) return IR_MAX_IN + 1;
      ext[ne++] = v;
    }
  }
  return ne;
}

/* Whether v may join the group.  Without a row op, every member has the
 * root's type; a row op may join as the head of that chain (its epilogue).
 * With a row op R, a value computed before R joins its prologue: R's one
 * operand from the group (R's other operands stay inputs) and what only
 * that operand's chain reads, all of that operand's type; a value after R
 * is epilogue, of R's type. */
static bool can_join(const Fuser *F, const Group *g, int32_t v) {
  const IrFunc *f = F->f;
  const IrNode *x = &f->nodes[v];
  if (g->n >= IR_FUSED_MAX || F->group[v] >= 0 || F->mat[v]) return false;
  if (x->type.dtype != IR_F32 || F->uses[v] != uses_in(F, g, v)) return false;
  bool row = is_row_micro(x->op);
  if (!is_ew_micro(x->op) && !row) return false;
  if (row) {
    if (g->rowpos >= 0 || !ir_type_eq(&x->type, &f->nodes[g->root].type)) return false;
    for (int k = 0; k < g->n; k++)
      if (g->mem[k] < v) return false;        /* the chain so far follows it */
    for (int j = 0; j < x->nin; j++)
      if (!ir_type_eq(&f->nodes[x->in[j]].type, &x->type)) return false;
    return true;
  }
  for (int j = 0; j < x->nin; j++)
    if (!ext_ok(x->op, &f->nodes[x->in[j]].type, &x->type)) return false;
  if (x->op == OP_CAUSAL_MASK && !ir_type_eq(&x->type, &f->nodes[x->in[0]].type)) return false;
  if (g->rowpos < 0) return ir_type_eq(&x->type, &f->nodes[g->root].type);
  int32_t rid = g->mem[g->rowpos];
  const IrNode *r = &f->nodes[rid];
  if (v > rid) return ir_type_eq(&x->type, &r->type);  /* epilogue */
  /* prologue: the operand of R that the group computes */
  int32_t pin = -1;
  for (int j = 0; j < r->nin; j++)
    if (find(g->mem, g->n, r->in[j]) >= 0) pin = r->in[j];
  if (find(r->in, r->nin, v) >= 0) {
    if (pin >= 0) return false;               /* one operand from the prologue */
    for (int j = 0; j < r->nin; j++)
      if (r->in[j] == v && r->nin == 2 && r->in[1 - j] == v) return false;
    return true;
  }
  if (pin < 0 || !ir_type_eq(&x->type, &f->nodes[pin].type)) return false;
  /* every reader is in the prologue */
  for (int k = 0; k < g->n; k++) {
    const IrNode *m = &f->nodes[g->mem[k]];
    if (g->mem[k] > rid && find(m->in, m->nin, v) >= 0) return false;
  }
  return true;
}

static int32_t *sorted_members(Group *g) {
  for (int a = 1; a < g->n; a++)
    for (int b = a; b > 0 && g->mem[b - 1] > g->mem[b]; b--) {
      int32_t t = g->mem[b];
      g->mem[b] = g->mem[b - 1];
      g->mem[b - 1] = t;
    }
  return g->mem;
}

static void grow(Fuser *F, Group *g) {
  for (bool more = true; more;) {
    more = false;
    for (int k = 0; k < g->n && !more; k++) {
      const IrNode *m = &F->f->nodes[g->mem[k]];
      for (int j = 0; j < m->nin && !more; j++) {
        int32_t v = m->in[j];
        if (find(g->mem, g->n, v) >= 0 || !can_join(F, g, v)) continue;
        g->mem[g->n++] = v;
        int32_t ext[IR_MAX_IN];
        if (count_ext(F, g, ext) > IR_MAX_IN) {
          g->n--;
          continue;
        }
        if (is_row_micro(F->f->nodes[v].op)) g->rowpos = g->n - 1;
        more = true;
      }
    }
  }
}

/* ---- building the fused node ---- */

static int32_t emit_group(IrFunc *out, const Fuser *F, Group *g, const int32_t *map) {
  const IrFunc *f = F->f;
  sorted_members(g);
  g->next = count_ext(F, g, g->ext);
  IrFused *p = arena_alloc(out->arena, sizeof *p);
  IrMicro *ops = arena_alloc(out->arena, (size_t)g->n * sizeof *ops);
  if (!p || !ops) return -1;
  p->ops = ops;
  p->n = g->n;
  p->rowop = -1;
  for (int k = 0; k < g->n; k++) {
    const IrNode *m = &f->nodes[g->mem[k]];
    IrMicro *u = &ops[k];
    u->op = m->op;
    u->nin = m->nin;
    u->attr = m->attr;
    u->type = m->type;
    for (int j = 0; j < m->nin; j++) {
      int at = find(g->mem, g->n, m->in[j]);
      u->in[j] = at >= 0 ? at : IR_FUSED_EXT(find(g->ext, g->next, m->in[j]));
    }
    if (is_row_micro(m->op) || (m->op == OP_SUM_TO && k == g->n - 1 && g->n > 1)) p->rowop = k;
  }
  IrNode n;
  memset(&n, 0, sizeof n);
  n.op = OP_FUSED;
  n.nin = (uint8_t)g->next;
  for (int e = 0; e < g->next; e++) n.in[e] = map[g->ext[e]];
  n.fused = p;
  n.span = f->nodes[g->root].span;
  n.type = f->nodes[g->root].type;
  char err[256];
  int32_t id = ir_emit(out, &n, err, sizeof err);
  return id;
}

IrFunc *pass_fuse(Arena *arena, const IrFunc *f) {
  int cnt = f->n > 0 ? f->n : 1;
  Fuser F = {f, arena_alloc(arena, (size_t)cnt * sizeof(int32_t)),
             arena_alloc(arena, (size_t)cnt * sizeof(int32_t)),
             arena_alloc(arena, (size_t)cnt * sizeof(bool))};
  int32_t *map = arena_alloc(arena, (size_t)cnt * sizeof *map);
  Group *groups = arena_alloc(arena, (size_t)cnt * sizeof *groups);
  int32_t *gof = arena_alloc(arena, (size_t)cnt * sizeof *gof);  /* root -> group index */
  IrFunc *g = ir_func_new(arena, f->name, f->batch);
  if (!F.uses || !F.group || !F.mat || !map || !groups || !gof || !g) return NULL;
  for (int i = 0; i < f->n; i++) {
    F.group[i] = -1;
    gof[i] = -1;
    const IrNode *n = &f->nodes[i];
    for (int k = 0; k < n->nin; k++) F.uses[n->in[k]]++;
  }
  for (int i = 0; i < f->nout; i++) F.mat[f->outs[i].value] = true;

  int ng = 0;
  for (int i = f->n - 1; i >= 0; i--) {
    const IrNode *n = &f->nodes[i];
    if (F.group[i] >= 0 || n->type.dtype != IR_F32) continue;
    bool ew = is_ew_micro(n->op), row = is_row_micro(n->op);
    bool sum = n->op == OP_SUM_TO && is_suffix_sum(&f->nodes[n->in[0]].type, &n->type);
    if (!ew && !row && !sum) continue;
    if (ew)
      for (int j = 0; j < n->nin; j++)
        if (!ext_ok(n->op, &f->nodes[n->in[j]].type, &n->type)) ew = false;
    if (row)
      for (int j = 0; j < n->nin; j++)
        if (!ir_type_eq(&f->nodes[n->in[j]].type, &n->type)) row = false;
    if (!ew && !row && !sum) continue;
    Group *gr = &groups[ng];
    memset(gr, 0, sizeof *gr);
    gr->root = i;
    gr->mem[0] = i;
    gr->n = 1;
    gr->rowpos = (row || sum) ? 0 : -1;
    grow(&F, gr);
    if (gr->n < 2) continue;
    for (int k = 0; k < gr->n; k++) F.group[gr->mem[k]] = i;
    gof[i] = ng++;
  }

  for (int i = 0; i < f->n; i++) {
    map[i] = -1;
    if (F.group[i] >= 0 && F.group[i] != i) continue;  /* inside a fused node */
    if (F.group[i] == i) {
      Group *gr = &groups[gof[i]];
      map[i] = emit_group(g, &F, gr, map);
      if (map[i] >= 0) continue;
      if (arena->failed) return NULL;
      /* a program its shape rule refuses (a gap in the rules above): the
       * members as they were */
      for (int k = 0; k < gr->n; k++) {
        IrNode n = f->nodes[gr->mem[k]];
        for (int j = 0; j < n.nin; j++) n.in[j] = map[n.in[j]];
        map[gr->mem[k]] = ir_append(g, &n);
        if (map[gr->mem[k]] < 0) return NULL;
      }
      continue;
    }
    IrNode n = f->nodes[i];
    for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
    map[i] = ir_append(g, &n);
    if (map[i] < 0) return NULL;
  }
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    if (ir_add_output(g, o->name, map[o->value], (IrOutRole)o->role, o->index) != 0) return NULL;
  }
  return g;
}

IrFunc *pass_compile(Arena *arena, const IrFunc *f, bool fuse) {
  IrFunc *g = pass_optimize(arena, f);
  if (g && fuse) g = pass_fuse(arena, g);
  if (g) g = pass_transb(arena, g);
  if (g) g = pass_causal(arena, g);
  return g ? pass_bias(arena, g) : NULL;
}
