/* autodiff.h - reverse-mode rules (grad.c), the autodiff entry points
 * beyond program.h's autodiff() (autodiff.c) and the plan printer (plan.c).
 *
 * Every op whose ops.def row says Y has a rule
 *
 *   int grad_<lower>(GradCtx *g, int32_t node, int32_t dy, int32_t *dx);
 *
 * that emits IR (through ir_emit, into g->f) computing d loss / d input k of
 * `node` from dy = d loss / d node, and stores the value id in dx[k] (the
 * caller sets every dx[k] to -1 first; a rule leaves -1 for inputs that get
 * no gradient, such as integer indices, or whose g->need[k] is false).
 * Every dx[k] has exactly the type (dtype and dims) of input k.  A rule
 * returns 0, or -1 with g->err set (or a diagnostic already recorded, then
 * g->diagnosed is true).
 */
#ifndef RA_AUTODIFF_H
#define RA_AUTODIFF_H

#include "program.h"

typedef struct GradCtx {
  IrFunc *f;                        /* the function being extended */
  DiagList *diags;                  /* may be NULL */
  const bool *extern_has_grad;      /* by extern index (EXTERN i[0]); NULL: none */
  const char *const *extern_names;  /* by extern index, for messages; may be NULL */
  int nexterns;
  bool need[IR_MAX_IN];             /* input k wants a gradient */
  Span span;                        /* given to every emitted node */
  bool failed;                      /* an emit failed: err says why */
  bool diagnosed;                   /* a diagnostic was recorded */
  char err[256];
} GradCtx;

typedef int (*GradFn)(GradCtx *g, int32_t node, int32_t dy, int32_t *dx);

#define GRAD_DECL_Y(l) int grad_##l(GradCtx *g, int32_t node, int32_t dy, int32_t *dx);
#define GRAD_DECL_N(l)
#define OP(U, l, a, f, g) GRAD_DECL_##g(l)
#include "ops.def"
#undef OP
#undef GRAD_DECL_Y
#undef GRAD_DECL_N

/* grad_<lower> for rows marked Y, NULL for rows marked N. */
extern const GradFn grad_fns[OP_COUNT];

/* autodiff() when the model calls extern functions: externs[i] is extern
 * index i (EXTERN's i[0]); an extern whose `grad` is NULL has no gradient,
 * and its use on a path to the loss is a located error.  autodiff() is this
 * with no externs known. */
IrFunc *autodiff_externs(Arena *arena, const Model *m, const ExternDecl *externs, int nexterns,
                         DiagList *diags);

/* The core, with the extern facts as plain arrays (either may be NULL). */
IrFunc *autodiff_with(Arena *arena, const Model *m, const bool *extern_has_grad,
                      const char *const *extern_names, int nexterns, DiagList *diags);

/* plan.c: the memory plan as text (`rac ir --plan`): one line per value
 * (storage and byte range, or the value it views), then
 * "peak N bytes (X MiB), naive M bytes".  plan_print is the same. */
char *ir_plan_print(Arena *arena, const IrFunc *f, const MemPlan *plan);
char *plan_print(Arena *arena, const IrFunc *f, const MemPlan *plan);

#endif
