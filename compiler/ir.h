/* ir.h - the IR: SSA values with static shapes, one node per value.
 *
 * A function (IrFunc) is an ordered list of nodes; node i defines value %i.
 * Inputs, parameters and constants are nodes too.  Every op is declared once
 * in ops.def, from which the enum, the names, the flags, and the shape,
 * kernel and gradient dispatch tables are generated.
 *
 * Shapes are full and concrete: a value that carries the batch has it as
 * dim 0 (type.batched = 1), and the IR is built for one batch size.
 */
#ifndef RA_IR_H
#define RA_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/arena.h"
#include "../lang/diag.h"

#define IR_MAX_RANK 8
#define IR_MAX_IN 8

typedef enum { IR_F32, IR_I32 } IrDtype;

typedef struct IrType {
  uint8_t dtype;    /* IrDtype */
  uint8_t rank;     /* 0 = scalar */
  uint8_t batched;  /* dim[0] is the batch */
  int64_t dim[IR_MAX_RANK];
} IrType;

enum {
  OPF_LEAF = 1 << 0,    /* no inputs; storage provided from outside */
  OPF_EW = 1 << 1,      /* elementwise */
  OPF_BCAST = 1 << 2,   /* NumPy broadcasting between inputs */
  OPF_COMMUTE = 1 << 3, /* inputs may be swapped (CSE canonical order) */
  OPF_VIEW = 1 << 4,    /* output may share its input's storage */
  OPF_LOSS = 1 << 5,    /* yields a rank-0 loss */
  OPF_IMPURE = 1 << 6,  /* its value is not a function of its inputs and
                           attributes alone (outside storage, an RNG stream,
                           native code): never merged (CSE) or folded */
};

typedef enum {
#define OP(U, l, a, f, g) OP_##U,
#include "ops.def"
#undef OP
  OP_COUNT
} IrOp;

typedef struct IrOpInfo {
  const char *name;
  int arity;   /* -1 variadic */
  unsigned flags;
  bool has_grad;
} IrOpInfo;

extern const IrOpInfo ir_op_info[OP_COUNT];  /* constant table, not state */

/* MATMUL's i[2], set by pass_causal (causal.c): a is square and exactly
 * zero above its diagonal (its products there are left out), or the
 * result is square and read only on and below its diagonal (the entries
 * above are finite: the product's, or 0 where it was not computed). */
enum { IR_MM_TRI_A = 1, IR_MM_TRI_OUT = 2 };

typedef struct IrAttr {
  int64_t i[IR_MAX_RANK];
  double f[2];
} IrAttr;

/* The micro-program of a FUSED node (compiler/fuse.c): a flat list of
 * micro-ops, each an op of ops.def with its attributes, reading the node's
 * external inputs and earlier micro-ops; the last entry is the node's value.
 *
 *   in[k] < 0   external input -1 - in[k] (IR_FUSED_EXT(j) names node.in[j])
 *   in[k] >= 0  the value of micro-op in[k] (always < its own index)
 *
 * Every micro-op has the type its node had before fusion.  Elementwise
 * micro-ops (OPF_EW rows, causal_mask) have the node's output type: they are
 * evaluated once per output element (flat index i), in list order, each by
 * the same scalar expression as its kernel (compiler/opmath.h), so the
 * result has the unfused chain's bits.  An external input is read as the
 * op's kernel reads it: with NumPy broadcasting against the node's type for
 * add, sub, mul and div; flat (same element count) otherwise.  dropout,
 * dropout_grad and causal_mask use the element's index in the output, which
 * is their own index since their type is the output's: dropout's mask bits
 * are those of (seed, step, stream attr.i[0], i), as unfused.
 *
 * At most one micro-op may be a row op (kernel over the last axis) -
 * softmax, softmax_grad, layernorm, layernorm_grad - or, as the last entry
 * only, sum_to.  The micro-ops before it (the prologue) have the row op's
 * input type and compute at most one of its operands; those after it (the
 * epilogue) have its output type.  rowop is the index of that entry, or -1.
 * A code generator compiles the list as it stands: one loop over the
 * elements (rows, for a row op), the micro-ops inlined in order. */
#define IR_FUSED_MAX 16                    /* micro-ops per fused node */
#define IR_FUSED_EXT(j) (-1 - (int32_t)(j)) /* ref of external input j */

typedef struct IrMicro {
  uint16_t op;            /* IrOp */
  uint8_t nin;            /* 1 or 2 */
  int32_t in[2];          /* refs, as above */
  IrAttr attr;            /* the op's attributes, as its node had them */
  IrType type;            /* its result type before fusion */
} IrMicro;

typedef struct IrFused {
  int n;                  /* 1..IR_FUSED_MAX micro-ops; ops[n - 1] is the value */
  int rowop;              /* index of the row op, or -1 */
  const IrMicro *ops;     /* n entries */
} IrFused;

typedef struct IrNode {
  uint16_t op;
  uint8_t nin;
  int32_t in[IR_MAX_IN];
  IrType type;
  IrAttr attr;
  const char *name;   /* INPUT: input name; PARAM: path; else NULL */
  const float *data;  /* CONST tensor data (numel floats), or NULL */
  const IrFused *fused; /* FUSED: the micro-program (in the function's arena) */
  Span span;          /* the .ra expression the node comes from */
} IrNode;

/* What a function hands back, by role. */
typedef enum {
  OUT_LOSS,    /* the rank-0 training loss */
  OUT_OUTPUT,  /* `output name = expr` */
  OUT_PRED,    /* logits fed to cross_entropy (for accuracy); index = target */
  OUT_HEADS,   /* per-head outputs of a head group [B, H, ...]; index = group */
  OUT_GRAD,    /* d loss / d param; index = param index */
} IrOutRole;

typedef struct IrOutput {
  const char *name;
  int32_t value;
  uint8_t role;
  int32_t index;
} IrOutput;

typedef struct IrFunc {
  Arena *arena;
  const char *name;
  int64_t batch;
  IrNode *nodes;
  int n, cap;
  IrOutput *outs;
  int nout, outcap;
} IrFunc;

/* ---- construction ---- */
IrFunc *ir_func_new(Arena *arena, const char *name, int64_t batch);
/* Appends a node as given (type and attributes already set); returns its id.
 * No checks: for the passes, which copy nodes already checked; new nodes go
 * through ir_emit (the builder below). */
int32_t ir_append(IrFunc *f, const IrNode *node);
/* Builds node (op, inputs, attributes, span; for ops whose result type is
 * given - RESHAPE, BROADCAST, SUM_TO, SCATTER_ADD, SLICE, CONST, INPUT,
 * PARAM - also node->type), runs the op's shape rule and appends it.
 * Returns the id, or -1 with a message in err (e.g. "cannot add f32[4, 8]
 * and f32[4, 9]") when the shapes do not fit; nothing is appended then. */
int32_t ir_emit(IrFunc *f, IrNode *node, char *err, size_t errlen);

/* ---- building: one API for the lowering, autodiff, the passes' tests and
 * the benchmarks ----
 * An IrBuilder appends checked nodes (ir_emit) to f, each with the
 * builder's span.  Every call takes value ids and returns one; when an
 * input is -1 (an earlier failure) the call appends nothing and returns -1
 * quietly, so callers chain calls and check the last result.  A node that
 * fails its own checks returns -1, sets failed, keeps the message of the
 * first such failure in err, and is passed to report (when set): each
 * failure is reported once, where it happens, never again downstream. */
typedef struct IrBuilder {
  IrFunc *f;
  Span span;                 /* given to every node */
  void (*report)(void *ud, Span at, const char *msg);  /* may be NULL */
  void *ud;
  bool failed;
  char err[256];
} IrBuilder;

IrBuilder ir_builder(IrFunc *f, Span span);
/* Any node: n.op, nin, in, attr, and for ops whose result type is given
 * (ir_emit) n.type; name and data for leaves. */
int32_t ir_op(IrBuilder *b, IrNode n);
int32_t ir_unary(IrBuilder *b, IrOp op, int32_t x);
int32_t ir_binary(IrBuilder *b, IrOp op, int32_t x, int32_t y);
int32_t ir_scale(IrBuilder *b, int32_t x, double s);              /* x * s */
int32_t ir_matmul(IrBuilder *b, int32_t x, int32_t y, bool tx, bool ty);
/* sum, mean or max over full axis `axis` */
int32_t ir_reduce(IrBuilder *b, IrOp op, int32_t x, int axis);
int32_t ir_transpose(IrBuilder *b, int32_t x, const int64_t *perm);
/* ops with a given result type (broadcast, sum_to, slice, scatter_add...):
 * the type and attributes i[0], i[1] */
int32_t ir_typed(IrBuilder *b, IrOp op, int32_t x, const IrType *t, int64_t i0, int64_t i1);
/* to t's dims, keeping x's element type */
int32_t ir_reshape(IrBuilder *b, int32_t x, const IrType *t);
/* constants (never batched): every element v, or numel(t) floats */
int32_t ir_fill(IrBuilder *b, const IrType *t, double v);
int32_t ir_const_data(IrBuilder *b, const IrType *t, const float *data);

int ir_add_output(IrFunc *f, const char *name, int32_t value, IrOutRole role,
                  int32_t index);
/* First output with this role (and index, or any index if index < 0). */
const IrOutput *ir_find_output(const IrFunc *f, IrOutRole role, int32_t index);

/* ---- types ---- */
#define IR_MAX_NUMEL ((int64_t)1 << 36)
/* Every dimension >= 1 and the element count at most IR_MAX_NUMEL (so
 * byte sizes cannot overflow); ir_emit checks every result with it. */
int ir_type_check_size(const IrType *t, char *err, size_t errlen);
int64_t ir_numel(const IrType *t);
/* 2 m n k of a matmul node (its multiply-adds, twice), 0 for other ops. */
double ir_matmul_flops(const IrFunc *f, const IrNode *n);
size_t ir_bytes(const IrType *t);
bool ir_type_eq(const IrType *a, const IrType *b);
/* "f32[32, 48, 64]" into buf */
const char *ir_type_str(const IrType *t, char *buf, size_t n);
/* The same for messages: a batched value's dim 0 is written "B"
 * ("f32[B, 48, 64]"), since users think in per-example shapes. */
const char *ir_type_str_b(const IrType *t, char *buf, size_t n);
IrType ir_type_make(IrDtype dt, int rank, const int64_t *dims, bool batched);

/* ---- shape rules (compiler/shape.c), one per op via ops.def ---- */
/* Computes n->type from f's input types and n->attr; for ops with a given
 * result type, validates it.  0 or -1 with a message. */
typedef int (*IrShapeFn)(const IrFunc *f, IrNode *n, char *err, size_t errlen);
extern const IrShapeFn ir_shape_fns[OP_COUNT];

/* The checks of a FUSED node's micro-program (compiler/fuse.c), run by its
 * shape rule: 0, or -1 with a message. */
int ir_fused_check(const IrFunc *f, const IrNode *n, char *err, size_t errlen);

/* ---- text form (compiler/print.c) ---- */
/* Stable text form: one node per line, outputs at the end.  with_spans adds
 * "; line:col" comments. */
char *ir_print(Arena *arena, const IrFunc *f, const SrcSet *src, bool with_spans);
/* Node i as a kind, without value numbers: its op, micro-program and
 * attributes, its operands' types and its type ("matmul [ta=0 tb=1] :
 * f32[64, 16], f32[64, 16] -> f32[64, 64]"); nodes of one kind do the
 * same work.  NULL when out of memory. */
char *ir_node_kind(Arena *arena, const IrFunc *f, int32_t i);

#endif
