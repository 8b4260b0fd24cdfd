/* shape.c - the shape and type rule of every IR op (one shape_<lower> per
 * row of ops.def, collected into ir_shape_fns).
 *
 * A rule reads the node's inputs' types from the function and the node's
 * attributes, and sets n->type (or validates the given type for RESHAPE,
 * BROADCAST, SUM_TO, SCATTER_ADD, SLICE, CONST, INPUT and PARAM).  It fails
 * with a message that names the op and the offending types.
 *
 * The batched flag: a result is batched when its dim 0 is an input's batch
 * dim 0 - so ops that drop or move axis 0, or reduce to a scalar, give an
 * unbatched result.  For ops with a given type the caller's flag is kept and
 * the flag is also inferred when dim 0 carries over from a batched input.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"

#define OP(U, l, a, f, g) static int shape_##l(const IrFunc *, IrNode *, char *, size_t);
#include "ops.def"
#undef OP

#define IN(k) (&f->nodes[n->in[k]].type)
#define TS(t, buf) ir_type_str_b((t), (buf), sizeof(buf))

static const char *opname(const IrNode *n) { return ir_op_info[n->op].name; }

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (errlen) vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- shared checks ---- */

static int need_f32(const IrNode *n, const IrType *t, const char *what, char *err, size_t errlen) {
  if (t->dtype == IR_F32) return 0;
  char b[96];
  return fail(err, errlen, "%s: %s must be f32, got %s", opname(n), what, TS(t, b));
}

static int need_rank(const IrNode *n, const IrType *t, int min, const char *what, char *err,
                     size_t errlen) {
  if (t->rank >= min) return 0;
  char b[96];
  return fail(err, errlen, "%s: %s must have rank >= %d, got %s", opname(n), what, min, TS(t, b));
}

/* A type given by the caller (leaves, reshape, ...): sane rank and dims. */
static int check_given(const IrNode *n, char *err, size_t errlen) {
  const IrType *t = &n->type;
  if (t->rank > IR_MAX_RANK)
    return fail(err, errlen, "%s: rank %d exceeds the maximum %d", opname(n), t->rank, IR_MAX_RANK);
  if (t->dtype != IR_F32 && t->dtype != IR_I32)
    return fail(err, errlen, "%s: unknown element type %d", opname(n), t->dtype);
  for (int i = 0; i < t->rank; i++)
    if (t->dim[i] < 1)
      return fail(err, errlen, "%s: dimension %d is %lld (must be >= 1)", opname(n), i,
                  (long long)t->dim[i]);
  return 0;
}

static void clear_unused(IrType *t) {
  for (int i = t->rank; i < IR_MAX_RANK; i++) t->dim[i] = 0;
  if (t->rank == 0) t->batched = 0;
}

static int check_axis(const IrNode *n, int64_t axis, int rank, char *err, size_t errlen) {
  if (axis >= 0 && axis < rank) return 0;
  return fail(err, errlen, "%s: axis %lld out of range for rank %d", opname(n), (long long)axis,
              rank);
}

/* The result of dropping axis `axis` of t. */
static IrType drop_axis(const IrType *t, int axis) {
  IrType r = *t;
  r.rank = (uint8_t)(t->rank - 1);
  for (int i = axis; i < r.rank; i++) r.dim[i] = t->dim[i + 1];
  r.batched = (uint8_t)(t->batched && axis != 0 && r.rank > 0);
  clear_unused(&r);
  return r;
}

/* NumPy broadcasting of a and b (right-aligned).  verb names the operation
 * for the message ("add"). */
static int bcast(const IrType *a, const IrType *b, IrType *out, const char *verb, char *err,
                 size_t errlen) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  IrType t;
  memset(&t, 0, sizeof t);
  t.dtype = a->dtype;
  t.rank = (uint8_t)r;
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char b1[96], b2[96];
      return fail(err, errlen, "cannot %s %s and %s: dimension %d is %lld vs %lld", verb,
                  TS(a, b1), TS(b, b2), i, (long long)da, (long long)db);
    }
    t.dim[i] = da == 1 ? db : da;
  }
  t.batched = (uint8_t)(r > 0 && ((a->rank == r && a->batched) || (b->rank == r && b->batched)));
  *out = t;
  return 0;
}

/* ---- leaves ---- */

static int shape_input(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  (void)f;
  if (check_given(n, err, errlen)) return -1;
  clear_unused(&n->type);
  return 0;
}

static int shape_param(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  (void)f;
  if (check_given(n, err, errlen)) return -1;
  if (n->type.dtype != IR_F32) return fail(err, errlen, "param: parameters must be f32");
  n->type.batched = 0;
  clear_unused(&n->type);
  return 0;
}

static int shape_const(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  (void)f;
  if (check_given(n, err, errlen)) return -1;
  if (n->data && n->type.dtype != IR_F32)
    return fail(err, errlen, "const: a tensor constant must be f32");
  clear_unused(&n->type);
  return 0;
}

/* ---- elementwise ---- */

static int binary(const IrFunc *f, IrNode *n, const char *verb, char *err, size_t errlen) {
  const IrType *a = IN(0), *b = IN(1);
  if (a->dtype != IR_F32 || b->dtype != IR_F32) {
    char b1[96], b2[96];
    return fail(err, errlen, "cannot %s %s and %s: operands must be f32", verb, TS(a, b1),
                TS(b, b2));
  }
  return bcast(a, b, &n->type, verb, err, errlen);
}

static int shape_add(const IrFunc *f, IrNode *n, char *e, size_t el) { return binary(f, n, "add", e, el); }
static int shape_sub(const IrFunc *f, IrNode *n, char *e, size_t el) { return binary(f, n, "subtract", e, el); }
static int shape_mul(const IrFunc *f, IrNode *n, char *e, size_t el) { return binary(f, n, "multiply", e, el); }
static int shape_div(const IrFunc *f, IrNode *n, char *e, size_t el) { return binary(f, n, "divide", e, el); }

static int unary(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (need_f32(n, IN(0), "operand", err, errlen)) return -1;
  n->type = *IN(0);
  return 0;
}

static int shape_neg(const IrFunc *f, IrNode *n, char *e, size_t el) { return unary(f, n, e, el); }
static int shape_square(const IrFunc *f, IrNode *n, char *e, size_t el) { return unary(f, n, e, el); }
static int shape_relu(const IrFunc *f, IrNode *n, char *e, size_t el) { return unary(f, n, e, el); }
static int shape_gelu(const IrFunc *f, IrNode *n, char *e, size_t el) { return unary(f, n, e, el); }
static int shape_tanh(const IrFunc *f, IrNode *n, char *e, size_t el) { return unary(f, n, e, el); }
static int shape_sigmoid(const IrFunc *f, IrNode *n, char *e, size_t el) { return unary(f, n, e, el); }
static int shape_silu(const IrFunc *f, IrNode *n, char *e, size_t el) { return unary(f, n, e, el); }

static int shape_scale(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (!isfinite(n->attr.f[0]))
    return fail(err, errlen, "scale: factor must be finite, got %g", n->attr.f[0]);
  return unary(f, n, err, errlen);
}

/* (x, dy) pairs of one type: the *_GRAD ops and the normalisation grads. */
static int same_pair(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *a = IN(0), *b = IN(1);
  if (need_f32(n, a, "operand 1", err, errlen) || need_f32(n, b, "operand 2", err, errlen))
    return -1;
  if (!ir_type_eq(a, b)) {
    char b1[96], b2[96];
    return fail(err, errlen, "%s: operands differ: %s vs %s", opname(n), TS(a, b1), TS(b, b2));
  }
  n->type = *a;
  n->type.batched = (uint8_t)(a->batched || b->batched);
  clear_unused(&n->type);
  return 0;
}

static int shape_relu_grad(const IrFunc *f, IrNode *n, char *e, size_t el) { return same_pair(f, n, e, el); }
static int shape_gelu_grad(const IrFunc *f, IrNode *n, char *e, size_t el) { return same_pair(f, n, e, el); }
static int shape_tanh_grad(const IrFunc *f, IrNode *n, char *e, size_t el) { return same_pair(f, n, e, el); }
static int shape_sigmoid_grad(const IrFunc *f, IrNode *n, char *e, size_t el) { return same_pair(f, n, e, el); }
static int shape_silu_grad(const IrFunc *f, IrNode *n, char *e, size_t el) { return same_pair(f, n, e, el); }

/* ---- last-axis normalisations ---- */

static int shape_softmax(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (need_rank(n, IN(0), 1, "operand", err, errlen)) return -1;
  return unary(f, n, err, errlen);
}

static int shape_softmax_grad(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (need_rank(n, IN(0), 1, "operand", err, errlen)) return -1;
  return same_pair(f, n, err, errlen);
}

static int check_eps(const IrNode *n, char *err, size_t errlen) {
  double eps = n->attr.f[0];
  if (!(eps >= 0) || !isfinite(eps))
    return fail(err, errlen, "%s: epsilon must be finite and >= 0, got %g", opname(n), eps);
  return 0;
}

static int shape_layernorm(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (check_eps(n, err, errlen) || need_rank(n, IN(0), 1, "operand", err, errlen)) return -1;
  return unary(f, n, err, errlen);
}

static int shape_layernorm_grad(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (check_eps(n, err, errlen) || need_rank(n, IN(0), 1, "operand", err, errlen)) return -1;
  return same_pair(f, n, err, errlen);
}

/* ---- contractions ---- */

static int shape_matmul(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (n->nin != 2 && n->nin != 3)
    return fail(err, errlen, "matmul: expects 2 inputs, or 3 with a bias, got %u",
                (unsigned)n->nin);
  const IrType *a = IN(0), *b = IN(1);
  if (need_f32(n, a, "left operand", err, errlen) || need_f32(n, b, "right operand", err, errlen))
    return -1;
  if (need_rank(n, a, 2, "left operand", err, errlen) ||
      need_rank(n, b, 2, "right operand", err, errlen))
    return -1;
  if ((uint64_t)n->attr.i[0] > 1 || (uint64_t)n->attr.i[1] > 1)
    return fail(err, errlen, "matmul: transpose flags must be 0 or 1, got ta=%lld tb=%lld",
                (long long)n->attr.i[0], (long long)n->attr.i[1]);
  bool ta = n->attr.i[0], tb = n->attr.i[1];
  int ra = a->rank, rb = b->rank;
  int64_t m = ta ? a->dim[ra - 1] : a->dim[ra - 2];
  int64_t ka = ta ? a->dim[ra - 2] : a->dim[ra - 1];
  int64_t kb = tb ? b->dim[rb - 1] : b->dim[rb - 2];
  int64_t nn = tb ? b->dim[rb - 2] : b->dim[rb - 1];
  if (ka != kb)
    return fail(err, errlen, "matmul: inner dimensions differ (%lld vs %lld)", (long long)ka,
                (long long)kb);
  int r = ra > rb ? ra : rb;
  IrType t;
  memset(&t, 0, sizeof t);
  t.dtype = IR_F32;
  t.rank = (uint8_t)r;
  for (int i = 0; i < r - 2; i++) {
    int ia = i - (r - ra), ib = i - (r - rb);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char b1[96], b2[96];
      return fail(err, errlen,
                  "matmul: cannot broadcast the leading dimensions of %s and %s: dimension %d "
                  "is %lld vs %lld",
                  TS(a, b1), TS(b, b2), i, (long long)da, (long long)db);
    }
    t.dim[i] = da == 1 ? db : da;
  }
  t.dim[r - 2] = m;
  t.dim[r - 1] = nn;
  if (r > 2)
    t.batched = (uint8_t)((ra == r && a->batched) || (rb == r && b->batched));
  else
    t.batched = (uint8_t)(a->batched && !ta);
  if (n->nin == 3) {
    const IrType *c = IN(2);
    if (c->dtype != IR_F32 || c->rank != 1 || c->dim[0] != nn) {
      char b1[96];
      return fail(err, errlen, "matmul: the bias must be f32[%lld], got %s", (long long)nn,
                  TS(c, b1));
    }
  }
  n->type = t;
  return 0;
}

static int shape_gather(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *tab = IN(0), *idx = IN(1);
  char b1[96];
  if (tab->dtype != IR_F32 || tab->rank != 2)
    return fail(err, errlen, "gather: table must be f32[V, d], got %s", TS(tab, b1));
  if (idx->dtype != IR_I32)
    return fail(err, errlen, "gather: index must be i32, got %s", TS(idx, b1));
  if (idx->rank + 1 > IR_MAX_RANK)
    return fail(err, errlen, "gather: index rank %d is too large", idx->rank);
  IrType t = *idx;
  t.dtype = IR_F32;
  t.rank = (uint8_t)(idx->rank + 1);
  t.dim[idx->rank] = tab->dim[1];
  n->type = t;
  return 0;
}

static int shape_scatter_add(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *idx = IN(0), *dy = IN(1);
  char b1[96], b2[96], b3[96];
  if (check_given(n, err, errlen)) return -1;
  if (n->type.dtype != IR_F32 || n->type.rank != 2)
    return fail(err, errlen, "scatter_add: result must be f32[V, d], got %s", TS(&n->type, b1));
  if (idx->dtype != IR_I32)
    return fail(err, errlen, "scatter_add: index must be i32, got %s", TS(idx, b1));
  if (need_f32(n, dy, "gradient", err, errlen)) return -1;
  bool ok = dy->rank == idx->rank + 1 && dy->dim[idx->rank] == n->type.dim[1];
  for (int i = 0; ok && i < idx->rank; i++) ok = dy->dim[i] == idx->dim[i];
  if (!ok)
    return fail(err, errlen, "scatter_add: gradient %s does not fit index %s and result %s",
                TS(dy, b1), TS(idx, b2), TS(&n->type, b3));
  n->type.batched = 0;
  clear_unused(&n->type);
  return 0;
}

/* ---- reductions ---- */

static int reduce(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0);
  if (need_f32(n, x, "operand", err, errlen) || need_rank(n, x, 1, "operand", err, errlen))
    return -1;
  if (check_axis(n, n->attr.i[0], x->rank, err, errlen)) return -1;
  n->type = drop_axis(x, (int)n->attr.i[0]);
  return 0;
}

static int shape_sum(const IrFunc *f, IrNode *n, char *e, size_t el) { return reduce(f, n, e, el); }
static int shape_mean(const IrFunc *f, IrNode *n, char *e, size_t el) { return reduce(f, n, e, el); }
static int shape_max(const IrFunc *f, IrNode *n, char *e, size_t el) { return reduce(f, n, e, el); }

static int shape_max_grad(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0), *y = IN(1), *dy = IN(2);
  if (reduce(f, n, err, errlen)) return -1;
  char b1[96], b2[96], b3[96];
  if (!ir_type_eq(y, &n->type) || !ir_type_eq(dy, &n->type))
    return fail(err, errlen, "max_grad: %s and %s must both be %s (%s without axis %lld)",
                TS(y, b1), TS(dy, b2), TS(&n->type, b3), TS(x, (char[96]){0}),
                (long long)n->attr.i[0]);
  n->type = *x;
  return 0;
}

static int shape_broadcast(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0);
  if (check_given(n, err, errlen)) return -1;
  char b1[96], b2[96];
  if (n->type.rank != x->rank + 1)
    return fail(err, errlen, "broadcast: result %s must have rank %d (one more than %s)",
                TS(&n->type, b1), x->rank + 1, TS(x, b2));
  if (check_axis(n, n->attr.i[0], n->type.rank, err, errlen)) return -1;
  int axis = (int)n->attr.i[0];
  IrType back = drop_axis(&n->type, axis);
  back.dtype = n->type.dtype;
  if (!ir_type_eq(&back, x))
    return fail(err, errlen, "broadcast: %s is not %s without axis %d", TS(x, b1),
                TS(&n->type, b2), axis);
  if (axis != 0) n->type.batched = x->batched;
  clear_unused(&n->type);
  return 0;
}

static int shape_sum_to(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0);
  const IrType *t = &n->type;
  if (check_given(n, err, errlen)) return -1;
  char b1[96], b2[96];
  bool ok = t->rank <= x->rank && t->dtype == x->dtype;
  for (int i = 0; ok && i < t->rank; i++) {
    int64_t dt = t->dim[i], dx = x->dim[i + x->rank - t->rank];
    ok = dt == dx || dt == 1;
  }
  if (!ok)
    return fail(err, errlen, "sum_to: cannot sum %s down to %s", TS(x, b1), TS(t, b2));
  if (t->rank == x->rank && t->rank > 0 && x->batched && t->dim[0] == x->dim[0])
    n->type.batched = 1;
  clear_unused(&n->type);
  return 0;
}

/* ---- layout ---- */

static int shape_reshape(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0);
  IrType *t = &n->type;
  char b1[96], b2[96];
  t->dtype = x->dtype;
  if (t->rank > IR_MAX_RANK) return fail(err, errlen, "reshape: rank %d is too large", t->rank);
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dim[i] == -1 && infer < 0) {
      infer = i;
    } else if (t->dim[i] < 1) {
      return fail(err, errlen, "reshape: dimension %d is %lld (must be >= 1, or one -1)", i,
                  (long long)t->dim[i]);
    } else {
      known *= t->dim[i];
    }
  }
  int64_t total = ir_numel(x);
  if (infer >= 0) {
    if (total % known != 0)
      return fail(err, errlen, "reshape: cannot view %s with %lld elements per row", TS(x, b1),
                  (long long)known);
    t->dim[infer] = total / known;
  }
  if (ir_numel(t) != total)
    return fail(err, errlen, "reshape: %s and %s have different sizes (%lld vs %lld)", TS(x, b1),
                TS(t, b2), (long long)total, (long long)ir_numel(t));
  if (t->rank > 0 && x->rank > 0 && x->batched && t->dim[0] == x->dim[0]) t->batched = 1;
  clear_unused(t);
  return 0;
}

static int shape_transpose(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0);
  bool seen[IR_MAX_RANK] = {0};
  for (int k = 0; k < x->rank; k++) {
    int64_t p = n->attr.i[k];
    if (p < 0 || p >= x->rank || seen[p]) {
      char buf[64] = "";
      size_t len = 0;
      for (int j = 0; j < x->rank && len < sizeof buf; j++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, j ? ",%lld" : "%lld",
                                (long long)n->attr.i[j]);
      return fail(err, errlen, "transpose: [%s] is not a permutation of 0..%d", buf,
                  x->rank - 1);
    }
    seen[p] = true;
  }
  IrType t = *x;
  for (int k = 0; k < x->rank; k++) t.dim[k] = x->dim[n->attr.i[k]];
  t.batched = (uint8_t)(x->batched && x->rank > 0 && n->attr.i[0] == 0);
  n->type = t;
  return 0;
}

static int shape_concat(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x0 = IN(0);
  if (need_rank(n, x0, 1, "operand", err, errlen)) return -1;
  if (check_axis(n, n->attr.i[0], x0->rank, err, errlen)) return -1;
  int axis = (int)n->attr.i[0];
  IrType t = *x0;
  for (int k = 1; k < n->nin; k++) {
    const IrType *x = IN(k);
    bool ok = x->dtype == x0->dtype && x->rank == x0->rank;
    for (int i = 0; ok && i < x->rank; i++) ok = i == axis || x->dim[i] == x0->dim[i];
    if (!ok) {
      char b1[96], b2[96];
      return fail(err, errlen, "concat: cannot join %s and %s along axis %d", TS(x0, b1),
                  TS(x, b2), axis);
    }
    t.dim[axis] += x->dim[axis];
    if (x->batched) t.batched = 1;
  }
  if (axis == 0) t.batched = 0;
  n->type = t;
  return 0;
}

static int shape_slice(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0);
  if (check_given(n, err, errlen)) return -1;
  if (need_rank(n, x, 1, "operand", err, errlen)) return -1;
  if (check_axis(n, n->attr.i[0], x->rank, err, errlen)) return -1;
  int axis = (int)n->attr.i[0];
  int64_t from = n->attr.i[1];
  char b1[96], b2[96];
  bool ok = n->type.rank == x->rank && n->type.dtype == x->dtype;
  for (int i = 0; ok && i < x->rank; i++) ok = i == axis || n->type.dim[i] == x->dim[i];
  if (!ok)
    return fail(err, errlen, "slice: result %s does not match %s outside axis %d",
                TS(&n->type, b1), TS(x, b2), axis);
  int64_t len = n->type.dim[axis];
  if (from < 0 || from + len > x->dim[axis])
    return fail(err, errlen, "slice: [%lld, %lld) is outside axis %d of %s", (long long)from,
                (long long)(from + len), axis, TS(x, b1));
  if (axis != 0) n->type.batched = x->batched;
  clear_unused(&n->type);
  return 0;
}

/* ---- stochastic and masking ---- */

static int check_dropout(const IrNode *n, char *err, size_t errlen) {
  double p = n->attr.f[0];
  if (!(p >= 0 && p < 1))
    return fail(err, errlen, "%s: probability must be in [0, 1), got %g", opname(n), p);
  if (n->attr.i[0] < 0)
    return fail(err, errlen, "%s: stream %lld is negative", opname(n), (long long)n->attr.i[0]);
  return 0;
}

static int shape_dropout(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (check_dropout(n, err, errlen)) return -1;
  return unary(f, n, err, errlen);
}

static int shape_dropout_grad(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (check_dropout(n, err, errlen)) return -1;
  return unary(f, n, err, errlen);
}

static int shape_causal_mask(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  const IrType *x = IN(0);
  if (need_rank(n, x, 2, "operand", err, errlen)) return -1;
  if (x->dim[x->rank - 1] != x->dim[x->rank - 2])
    return fail(err, errlen, "causal_mask: last two dimensions differ (%lld vs %lld)",
                (long long)x->dim[x->rank - 2], (long long)x->dim[x->rank - 1]);
  return unary(f, n, err, errlen);
}

/* ---- fusion ---- */

static int shape_fused(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (ir_fused_check(f, n, err, errlen)) return -1;
  n->type = n->fused->ops[n->fused->n - 1].type;
  return 0;
}

/* ---- losses ---- */

static int check_target(const IrFunc *f, const IrNode *n, char *err, size_t errlen) {
  const IrType *lg = IN(0), *tg = IN(1);
  char b1[96], b2[96];
  if (need_f32(n, lg, "logits", err, errlen) || need_rank(n, lg, 1, "logits", err, errlen))
    return -1;
  if (tg->dtype != IR_I32)
    return fail(err, errlen, "%s: target must be i32, got %s", opname(n), TS(tg, b1));
  IrType want = *lg;
  want.dtype = IR_I32;
  want.rank = (uint8_t)(lg->rank - 1);
  if (!ir_type_eq(tg, &want)) {
    char b3[96];
    return fail(err, errlen, "%s: target %s does not match logits %s (expected %s)", opname(n),
                TS(tg, b1), TS(lg, b2), TS(&want, b3));
  }
  return 0;
}

static int shape_cross_entropy(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (check_target(f, n, err, errlen)) return -1;
  n->type = ir_type_make(IR_F32, 0, NULL, false);
  return 0;
}

static int shape_cross_entropy_grad(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (check_target(f, n, err, errlen)) return -1;
  const IrType *dl = IN(2);
  if (dl->dtype != IR_F32 || dl->rank != 0) {
    char b1[96];
    return fail(err, errlen, "cross_entropy_grad: the loss gradient must be f32[], got %s",
                TS(dl, b1));
  }
  n->type = *IN(0);
  return 0;
}

/* ---- native functions ---- */

static int shape_extern(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (n->attr.i[0] < 0)
    return fail(err, errlen, "extern: function index %lld is negative", (long long)n->attr.i[0]);
  return unary(f, n, err, errlen);
}

static int shape_extern_grad(const IrFunc *f, IrNode *n, char *err, size_t errlen) {
  if (n->attr.i[0] < 0)
    return fail(err, errlen, "extern_grad: function index %lld is negative",
                (long long)n->attr.i[0]);
  return same_pair(f, n, err, errlen);
}

const IrShapeFn ir_shape_fns[OP_COUNT] = {
#define OP(U, l, a, fl, g) [OP_##U] = shape_##l,
#include "ops.def"
#undef OP
};
