/* lower_int.h - internals shared by the model lowering (lower.c) and the
 * built-in layer expansions (layers.c).
 *
 * Lowering walks a model body once, unrolling `repeat` and inlining block
 * calls, and emits IR nodes as it goes.  A failed expression yields value -1
 * ("poisoned"); names bound to a poisoned value stay quiet when used later,
 * so one mistake gives one error.
 *
 * Parameter paths are built from a tree of naming nodes (PNode) whose
 * components are decided lazily, when the first parameter below them is
 * created: that is how "x" becomes "x_2" only when an earlier "x" in the same
 * scope already owns parameters, and "layernorm" becomes "layernorm_2" only
 * for the second layernorm with parameters in one statement.
 */
#ifndef RA_LOWER_INT_H
#define RA_LOWER_INT_H

#include "clauses.h"
#include "program.h"

/* A compile-time number: integer when is_int (then f == i as well). */
typedef struct Num {
  bool is_int;
  int64_t i;
  double f;
} Num;

typedef enum { BIND_VALUE, BIND_NUM, BIND_IDENT } BindKind;

/* One name of a model or block body. */
typedef struct Binding {
  const char *name;
  Span span;
  uint8_t kind;        /* BindKind */
  bool poisoned;       /* BIND_VALUE whose expression failed */
  int32_t value;       /* BIND_VALUE: the IR value */
  Num num;             /* BIND_NUM: a block's keyword parameter */
  const char *ident;   /* BIND_IDENT: `act: gelu` passes "gelu" through */
} Binding;

/* The names of one body being lowered: the model, or one block call. */
typedef struct Frame {
  Binding *b;
  int n, cap;
  const AstItem *block;  /* NULL for the model body */
  struct Frame *caller;  /* the frame of the call site */
  Span call;             /* the call expression (blocks) */
} Frame;

/* Naming nodes for parameter paths. */
typedef enum {
  PN_SCOPE,  /* the model (base = model name) or a repeat iteration ("r3") */
  PN_STMT,   /* a statement: base = bound name, "loss", output name, or NULL */
  PN_CALL,   /* a layer or block call: base = op or block name */
} PNodeKind;

typedef struct NameCount {
  const char *name;
  int n;
  struct NameCount *next;
} NameCount;

typedef struct PNode {
  struct PNode *parent;
  uint8_t kind;         /* PNodeKind */
  bool whole;           /* PN_CALL: the call is the statement's whole value */
  const char *base;
  const char *comp;     /* the decided component ("" = none); NULL = not yet */
  NameCount *names;     /* scopes and block calls: statement names taken;
                           statements: op names taken */
  int nrepeat;          /* scopes and block calls: repeat iterations so far */
} PNode;

typedef struct PendingOut {
  const char *name;
  int32_t value;
  uint8_t role;         /* IrOutRole */
  int32_t index;
} PendingOut;

typedef struct Lower {
  Program *p;
  Arena *A;
  DiagList *d;
  IrFunc *f;
  Model *m;
  int64_t batch;
  int nerr;             /* errors found (deduplicated ones included) */
  int pcap, gcap, icap, tcap;
  PendingOut *outs;
  int nouts, outcap;
  int32_t loss;         /* -1: none */
  Span loss_span;
  const AstStmt *loss_stmt;
  int rep_override;      /* a RepKind for every layer (--repulsion), -1: none */
  int32_t *pens;        /* penalty terms (attnpool, repulsion penalty), added to the loss */
  Span *pen_spans;
  int npens, pencap;
  int ninputs_top;      /* inputs of the model: targets are indexed after */
  int noutputs;
  int depth;            /* block call nesting */
  IrBuilder b;          /* into f; see lw_at */
  const Frame *bfr;     /* the frame of the builder's next node */
  char err[512];
} Lower;

/* ---- lower.c: diagnostics ---- */
/* A located error (skipped when the same message at the same place was
 * already reported, e.g. by another repeat iteration), with notes for the
 * chain of block calls that led here.  Returns the diagnostic or NULL. */
Diag *lw_error(Lower *L, const Frame *fr, Span at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void lw_note(Lower *L, Diag *g, Span at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Drops diagnostics recorded after mark (the tail before a call into
 * another part) that repeat one recorded earlier. */
void lw_dedup_since(Lower *L, Diag *mark);
const char *lw_tstr(Lower *L, const IrType *t);   /* "f32[1, 48, 64]" */
const char *lw_vstr(Lower *L, int32_t v);

/* ---- lower.c: IR building ----
 * Nodes are built with the IR builder (ir.h) that lw_at returns: it gives
 * them the span `at`, and a node that does not fit becomes a located error
 * with the block-call chain of fr.  lw_at sets shared state, so every
 * builder call nested in one expression must use the same fr and at. */
IrBuilder *lw_at(Lower *L, const Frame *fr, Span at);
const IrType *lw_vtype(const Lower *L, int32_t v);
/* per-example rank of a value (its rank without the batch dimension) */
int lw_perank(const Lower *L, int32_t v);
/* a binary op; for broadcasting ops, a batched operand with fewer
 * per-example axes first gets unit axes after the batch */
int32_t lw_arith(Lower *L, const Frame *fr, IrOp op, int32_t a, int32_t b, Span at);
/* dropout with the next stream of the model */
int32_t lw_dropout(Lower *L, const Frame *fr, int32_t x, double p, Span at);
/* a parameter owned by call (a PN_CALL node), in creation order */
int32_t lw_param(Lower *L, PNode *call, const char *pname, IrType t, InitKind init,
                 double scale, Span at, int32_t *index);
/* the dotted path of a naming node (deciding its components) */
const char *lw_path(Lower *L, PNode *n);
PNode *lw_pnode(Lower *L, PNode *parent, PNodeKind kind, const char *base, bool whole);
void lw_add_output(Lower *L, const char *name, int32_t v, IrOutRole role, int32_t index);
void lw_add_penalty(Lower *L, int32_t v, Span at);
/* The mean over the leading axes of u ([.., H, N]: H heads' contributions)
 * of the mean over head pairs i != j of cos²(u_i, u_j), a rank-0 value
 * built from IR ops (so autodiff differentiates it); -1 when H < 2. */
int32_t lw_heads_cos2(IrBuilder *b, Arena *A, int32_t u, int64_t H);

/* ---- lower.c: names and compile-time numbers ---- */
const Binding *lw_lookup(const Frame *fr, const char *name);
const ConstVal *lw_const(const Lower *L, const char *name);
/* Compile-time number: literals, consts, a block's keyword parameters and
 * + - * / % and unary minus.  0, or -1 diagnosed. */
int lw_eval_num(Lower *L, const Frame *fr, const AstExpr *e, Num *out);
bool lw_is_const(const Lower *L, const Frame *fr, const AstExpr *e);
/* the ConstScope that shows a frame's integer keyword parameters */
ConstScope lw_scope(const Frame *fr);
/* Lowers an expression to a value; stmt names the statement for parameter
 * paths and whole says the expression is the statement's entire value. */
int32_t lw_expr(Lower *L, Frame *fr, PNode *stmt, const AstExpr *e, bool whole);

/* ---- lower.c: blocks ---- */
const AstItem *lw_find_block(const Lower *L, const char *name);
/* the number of positional parameters of a block */
int lw_block_npos(const AstItem *blk);
/* Inlines a block of one positional argument applied to x (keyword
 * parameters take their defaults); its parameters are named below parent.
 * at is the place that names the block (for errors and the call chain). */
int32_t lw_block_apply(Lower *L, Frame *fr, PNode *parent, const AstItem *blk, int32_t x,
                       Span at);

/* ---- layers.c: built-in operations ---- */
bool lw_is_builtin(const char *name);
/* the names of the built-ins, for "did you mean" */
int lw_builtin_names(const char **out, int cap);
int32_t lw_builtin(Lower *L, Frame *fr, PNode *stmt, const AstExpr *e, bool whole);

#endif
