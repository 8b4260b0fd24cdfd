/* jit.h - the LLVM backend: memory-bound loops of an IR function compiled
 * to native code for the host CPU (ORC LLJIT, explicit vector types).
 *
 * What compiles: every elementwise op (OPF_EW, but extern, extern_grad,
 * dropout and dropout_grad, which stay on the interpreter), taken as a
 * micro-program (JitProg: a one-op program for a plain node, several ops for
 * a fused node), softmax, softmax_grad, layernorm and layernorm_grad rows
 * (causal prefixes included), fused nodes with one of those as their row
 * op (their prologue and epilogue of such micro-ops and causal masks), the
 * optimizer update (sgd, adam, adamw) and the particle update's direction
 * (svgd, spos).  The code does the float
 * operations of compiler/opmath.h and of the kernels in the same order, so
 * its results have the interpreter's bits (docs/ir.md, "JIT").
 *
 * Every generated loop is a function fn(args, lo, hi) over work units
 * [lo, hi) (tiles of an elementwise node, rows of a row op, elements of the
 * optimizer); the runtime calls it through pool_for with its static
 * partition.  This folder includes base, lang and compiler only: the
 * runtime calls what it produces through the function pointers below.
 *
 * One Jit per context: an LLJIT instance and two caches, kernels by their
 * key (the micro-program and the operands' inner strides; shapes are run
 * time arguments, so repeated layers share code) and compiled functions by
 * a hash of the IR.  Allocations of ours go through the context allocator;
 * LLVM allocates on its own.  LLVM's targets are initialised once per
 * process (pthread_once).
 */
#ifndef RA_JIT_H
#define RA_JIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../../base/arena.h"
#include "../ir.h"

typedef struct Jit Jit;

/* A compiled loop over work units [lo, hi). */
typedef void (*JitLoopFn)(const void *args, int64_t lo, int64_t hi);

/* Elements of an elementwise tile and of the optimizer's chunks. */
#define JIT_TILE 4096

/* ---- micro-programs ----
 * A flat list of elementwise micro-ops; operand k < nin is input k of the
 * node, nin + j is the result of micro-op j; the last micro-op's value is
 * the node's result.  s is the op's float attribute (scale's factor). */
#define JIT_MAX_MICRO 64
typedef struct JitMicro {
  uint16_t op;   /* an IrOp with OPF_EW */
  uint8_t nin;   /* 1 or 2 */
  uint8_t in[2];
  float s;
} JitMicro;

typedef struct JitProg {
  int nin;       /* node inputs, <= IR_MAX_IN */
  int n;         /* micro-ops, 1..JIT_MAX_MICRO */
  JitMicro op[JIT_MAX_MICRO];
} JitProg;

/* The one-op program of a plain elementwise node; -1 if the op does not
 * compile. */
int jit_prog_of_node(const IrNode *n, JitProg *p);
/* Whether an op can be a micro-op. */
bool jit_op_compiles(int op);

/* ---- run-time arguments (the generated code reads them at these
 * offsets) ---- */
typedef struct JitEwArgs {
  float *out;
  const float *in[IR_MAX_IN];
  int64_t rank;                          /* collapsed rank, >= 1 */
  int64_t dim[IR_MAX_RANK];              /* collapsed dims of the result */
  int64_t stride[IR_MAX_IN][IR_MAX_RANK]; /* element strides, 0 = repeated */
  int64_t L;                             /* dim[rank - 1] */
  int64_t per_row;                       /* tiles of JIT_TILE per row */
} JitEwArgs;

typedef struct JitRowArgs {
  float *y;
  const float *x, *d;
  int64_t L;
  float eps;
} JitRowArgs;

/* A fused node with a row op (ir.h, IrFused), row by row: the prologue's
 * micro-ops into the output row, the row op on it in place, the epilogue's
 * over the row.  in[q] is external input q: the whole tensor (row r at
 * r L) or, for an input the same for every row, one row of L. */
typedef struct JitFRowArgs {
  float *y;
  const float *in[IR_MAX_IN];
  int64_t L;
  float eps;
} JitFRowArgs;

/* The optimizer update over elements [lo, hi) (runtime/train/optim.c has
 * the formulas): the step's scalars, each rounded once to float there, so
 * that the compiled loop and the C loop compute with the same numbers. */
typedef struct JitOptArgs {
  float *w;
  const float *g;
  float *m, *v;
  float wd;         /* weight decay (sgd, adam: added to the gradient) */
  float decay;      /* adamw: 1 - lr wd */
  float b1, omb1;   /* beta1, 1 - beta1 */
  float b2, omb2;   /* beta2, 1 - beta2 */
  float eps;
  float inv_sb;     /* 1 / sqrt(1 - beta2^t) */
  float nss;        /* -lr / (1 - beta1^t) */
  float nlr;        /* sgd: -lr */
  float mu;         /* sgd: momentum */
} JitOptArgs;

/* The particle update's direction (runtime/train/particles.c, svgd_block
 * and direction()) for a set of M particles [M][D], over blocks [lo, hi)
 * of JIT_PART_BLOCK coordinates: each block's direction of every particle
 * into out, then copied over g.  kern is the [M, M] kernel matrix; spos
 * not 0 adds beta g_i and, with xi [M][D] not NULL, takes off noise xi_i.
 * The sums run over the particles in index order in double, as the C
 * code's. */
#define JIT_PART_BLOCK 256
typedef struct JitPartArgs {
  const float *theta, *kern, *xi;
  float *g, *out;
  int64_t M, D, spos;
  double h2, alpha, inv_m, s, beta, noise;
} JitPartArgs;

enum { JIT_NONE = 0, JIT_EW, JIT_ROWS, JIT_FROWS };

/* What runs node i of a compiled function. */
typedef struct JitNode {
  JitLoopFn fn;     /* NULL: the interpreter runs the node */
  uint8_t kind;     /* JIT_EW or JIT_ROWS */
  int64_t units;    /* fn runs over [0, units) */
  int64_t work;     /* elements times cost: the thread decision */
  JitEwArgs ew;     /* shapes (pointers are set at run time) */
  JitRowArgs row;
  JitFRowArgs frow;
} JitNode;

typedef struct JitFunc {
  uint64_t hash;
  int n;
  JitNode *node;
  int ncompiled;    /* nodes with code */
  int nkernels;     /* distinct kernels they use */
  double compile_ms; /* time spent compiling for this function (0: cached) */
} JitFunc;

enum { JIT_OPT_SGD, JIT_OPT_SGD_MOMENTUM, JIT_OPT_ADAM, JIT_OPT_ADAMW, JIT_OPT_COUNT };

/* A Jit for the host CPU, or NULL with a message (LLVM's). */
Jit *jit_new(RaAlloc alloc, char *err, size_t errlen);
void jit_free(Jit *j);
/* Compiles the loops of f (or finds them in the cache).  The result belongs
 * to j; NULL with a message on an LLVM error or out of memory. */
const JitFunc *jit_compile(Jit *j, const IrFunc *f, char *err, size_t errlen);
/* The optimizer update of one kind (JIT_OPT_*), over elements [lo, hi) of
 * a JitOptArgs; NULL with a message. */
JitLoopFn jit_optimizer(Jit *j, int kind, double *compile_ms, char *err, size_t errlen);
/* The particle direction (svgd, spos) over blocks [lo, hi) of a
 * JitPartArgs; NULL with a message. */
JitLoopFn jit_particles(Jit *j, double *compile_ms, char *err, size_t errlen);
/* The host CPU and its vector width, for reports ("znver4, 16 floats"). */
const char *jit_target(const Jit *j);

#endif
