/* ir.c - the IR core: the op table generated from ops.def, function
 * construction (ir_func_new, ir_append, ir_emit, the builder, outputs) and
 * type helpers.
 */
#include "ir.h"

#include <stdio.h>
#include <string.h>

const IrOpInfo ir_op_info[OP_COUNT] = {
#define Y true
#define N false
#define OP(U, l, a, f, g) [OP_##U] = {#l, a, f, g},
#include "ops.def"
#undef OP
#undef Y
#undef N
};

/* ---- construction ---- */

IrFunc *ir_func_new(Arena *arena, const char *name, int64_t batch) {
  IrFunc *f = arena_alloc(arena, sizeof *f);
  if (!f) return NULL;
  f->arena = arena;
  f->name = arena_strdup(arena, name ? name : "f");
  if (!f->name) return NULL;
  f->batch = batch;
  return f;
}

int32_t ir_append(IrFunc *f, const IrNode *node) {
  IrNode *nodes = arena_grow(f->arena, f->nodes, f->n, &f->cap, sizeof *nodes, 64);
  if (!nodes) return -1;
  f->nodes = nodes;
  f->nodes[f->n] = *node;
  return f->n++;
}

int32_t ir_emit(IrFunc *f, IrNode *node, char *err, size_t errlen) {
  if (errlen) err[0] = 0;
  if (node->op >= OP_COUNT) {
    snprintf(err, errlen, "unknown op %u", (unsigned)node->op);
    return -1;
  }
  const IrOpInfo *info = &ir_op_info[node->op];
  if (info->arity >= 0 && node->nin != info->arity) {
    snprintf(err, errlen, "%s: expects %d input%s, got %u", info->name, info->arity,
             info->arity == 1 ? "" : "s", (unsigned)node->nin);
    return -1;
  }
  if (info->arity < 0 && (node->nin < 1 || node->nin > IR_MAX_IN)) {
    snprintf(err, errlen, "%s: expects 1 to %d inputs, got %u", info->name, IR_MAX_IN,
             (unsigned)node->nin);
    return -1;
  }
  for (int k = 0; k < node->nin; k++) {
    if (node->in[k] < 0 || node->in[k] >= f->n) {
      snprintf(err, errlen, "%s: input %d refers to %%%d, which is not defined yet", info->name,
               k, (int)node->in[k]);
      return -1;
    }
  }
  for (int k = node->nin; k < IR_MAX_IN; k++) node->in[k] = 0;
  IrNode tmp = *node;
  if (ir_shape_fns[node->op](f, &tmp, err, errlen) != 0) return -1;
  if (ir_type_check_size(&tmp.type, err, errlen) != 0) return -1;
  int32_t id = ir_append(f, &tmp);
  if (id < 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  node->type = tmp.type;
  return id;
}

/* ---- the builder ---- */

IrBuilder ir_builder(IrFunc *f, Span span) {
  IrBuilder b;
  memset(&b, 0, sizeof b);
  b.f = f;
  b.span = span;
  return b;
}

int32_t ir_op(IrBuilder *b, IrNode n) {
  for (int k = 0; k < n.nin && k < IR_MAX_IN; k++)
    if (n.in[k] < 0) return -1;
  n.span = b->span;
  char msg[sizeof b->err];
  int32_t id = ir_emit(b->f, &n, msg, sizeof msg);
  if (id >= 0) return id;
  if (!msg[0]) snprintf(msg, sizeof msg, "%s: invalid operation",
                        n.op < OP_COUNT ? ir_op_info[n.op].name : "?");
  if (!b->failed) memcpy(b->err, msg, sizeof msg);
  b->failed = true;
  if (b->report) b->report(b->ud, n.span, msg);
  return -1;
}

static IrNode node_of(IrOp op, int nin, int32_t x, int32_t y) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.op = (uint16_t)op;
  n.nin = (uint8_t)nin;
  n.in[0] = x;
  n.in[1] = y;
  return n;
}

int32_t ir_unary(IrBuilder *b, IrOp op, int32_t x) { return ir_op(b, node_of(op, 1, x, 0)); }

int32_t ir_binary(IrBuilder *b, IrOp op, int32_t x, int32_t y) {
  return ir_op(b, node_of(op, 2, x, y));
}

int32_t ir_scale(IrBuilder *b, int32_t x, double s) {
  IrNode n = node_of(OP_SCALE, 1, x, 0);
  n.attr.f[0] = s;
  return ir_op(b, n);
}

int32_t ir_matmul(IrBuilder *b, int32_t x, int32_t y, bool tx, bool ty) {
  IrNode n = node_of(OP_MATMUL, 2, x, y);
  n.attr.i[0] = tx;
  n.attr.i[1] = ty;
  return ir_op(b, n);
}

int32_t ir_reduce(IrBuilder *b, IrOp op, int32_t x, int axis) {
  IrNode n = node_of(op, 1, x, 0);
  n.attr.i[0] = axis;
  return ir_op(b, n);
}

int32_t ir_transpose(IrBuilder *b, int32_t x, const int64_t *perm) {
  if (x < 0) return -1;
  IrNode n = node_of(OP_TRANSPOSE, 1, x, 0);
  for (int k = 0; k < b->f->nodes[x].type.rank; k++) n.attr.i[k] = perm[k];
  return ir_op(b, n);
}

int32_t ir_typed(IrBuilder *b, IrOp op, int32_t x, const IrType *t, int64_t i0, int64_t i1) {
  IrNode n = node_of(op, 1, x, 0);
  n.type = *t;
  n.attr.i[0] = i0;
  n.attr.i[1] = i1;
  return ir_op(b, n);
}

int32_t ir_reshape(IrBuilder *b, int32_t x, const IrType *t) {
  if (x < 0) return -1;
  IrType to = *t;
  to.dtype = b->f->nodes[x].type.dtype;
  return ir_typed(b, OP_RESHAPE, x, &to, 0, 0);
}

static int32_t constant(IrBuilder *b, const IrType *t, double v, const float *data) {
  IrNode n = node_of(OP_CONST, 0, 0, 0);
  n.type = *t;
  n.type.batched = 0;
  n.attr.f[0] = v;
  n.data = data;
  return ir_op(b, n);
}

int32_t ir_fill(IrBuilder *b, const IrType *t, double v) { return constant(b, t, v, NULL); }

int32_t ir_const_data(IrBuilder *b, const IrType *t, const float *data) {
  return constant(b, t, 0.0, data);
}

/* ---- outputs ---- */

int ir_add_output(IrFunc *f, const char *name, int32_t value, IrOutRole role, int32_t index) {
  if (value < 0 || value >= f->n) return -1;
  IrOutput *outs = arena_grow(f->arena, f->outs, f->nout, &f->outcap, sizeof *outs, 16);
  if (!outs) return -1;
  f->outs = outs;
  IrOutput *o = &f->outs[f->nout];
  o->name = name ? arena_strdup(f->arena, name) : NULL;
  if (name && !o->name) return -1;
  o->value = value;
  o->role = (uint8_t)role;
  o->index = index;
  f->nout++;
  return 0;
}

const IrOutput *ir_find_output(const IrFunc *f, IrOutRole role, int32_t index) {
  for (int i = 0; i < f->nout; i++)
    if (f->outs[i].role == role && (index < 0 || f->outs[i].index == index)) return &f->outs[i];
  return NULL;
}

/* ---- types ---- */

int ir_type_check_size(const IrType *t, char *err, size_t errlen) {
  int64_t n = 1;
  char tb[160];
  for (int i = 0; i < t->rank; i++) {
    if (t->dim[i] < 1) {
      snprintf(err, errlen, "%s has a dimension of %lld; dimensions must be at least 1",
               ir_type_str_b(t, tb, sizeof tb), (long long)t->dim[i]);
      return -1;
    }
    if (__builtin_mul_overflow(n, t->dim[i], &n) || n > IR_MAX_NUMEL) {
      snprintf(err, errlen, "%s has more than 2^36 elements (256 GiB); that is too large",
               ir_type_str_b(t, tb, sizeof tb));
      return -1;
    }
  }
  return 0;
}

int64_t ir_numel(const IrType *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dim[i];
  return n;
}

size_t ir_bytes(const IrType *t) { return (size_t)ir_numel(t) * 4; /* f32 and i32 */ }

double ir_matmul_flops(const IrFunc *f, const IrNode *n) {
  if (n->op != OP_MATMUL) return 0;
  const IrType *a = &f->nodes[n->in[0]].type;
  int64_t k = n->attr.i[0] ? a->dim[a->rank - 2] : a->dim[a->rank - 1];
  return 2.0 * (double)ir_numel(&n->type) * (double)k;
}

/* Element type, rank and dims; the batched flag is not compared. */
bool ir_type_eq(const IrType *a, const IrType *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

static const char *type_str(const IrType *t, char *buf, size_t n, bool batch_as_b) {
  if (!n) return buf;
  size_t k = 0;
  int w = snprintf(buf, n, "%s[", t->dtype == IR_I32 ? "i32" : "f32");
  if (w > 0) k = (size_t)w;
  for (int i = 0; i < t->rank && i < IR_MAX_RANK && k < n; i++) {
    if (i == 0 && t->batched && batch_as_b)
      w = snprintf(buf + k, n - k, "B");
    else
      w = snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->dim[i]);
    if (w > 0) k += (size_t)w;
  }
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

const char *ir_type_str(const IrType *t, char *buf, size_t n) {
  return type_str(t, buf, n, false);
}

const char *ir_type_str_b(const IrType *t, char *buf, size_t n) {
  return type_str(t, buf, n, true);
}

IrType ir_type_make(IrDtype dt, int rank, const int64_t *dims, bool batched) {
  IrType t;
  memset(&t, 0, sizeof t);
  if (rank < 0) rank = 0;
  if (rank > IR_MAX_RANK) rank = IR_MAX_RANK;
  t.dtype = (uint8_t)dt;
  t.rank = (uint8_t)rank;
  for (int i = 0; i < rank; i++) t.dim[i] = dims[i];
  t.batched = (uint8_t)(batched && rank > 0);
  return t;
}
