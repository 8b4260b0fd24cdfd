/* autodiff.h - the contract between autodiff (program.h's autodiff(),
 * autodiff.c) and the reverse-mode rules of the ops (grad.c).
 *
 * Every op whose ops.def row says Y has a rule
 *
 *   int grad_<lower>(GradCtx *g, int32_t node, int32_t dy, int32_t *dx);
 *
 * that emits IR (through the builder g->b) computing d loss / d input k of
 * `node` from dy = d loss / d node, and stores the value id in dx[k] (the
 * caller sets every dx[k] to -1 first; a rule leaves -1 for inputs that get
 * no gradient, such as integer indices, or whose g->need[k] is false).
 * Every dx[k] has exactly the type (dtype and dims) of input k.  A rule
 * returns 0, or -1 with g->b.err set (or a diagnostic already recorded, then
 * g->diagnosed is true).
 */
#ifndef RA_AUTODIFF_H
#define RA_AUTODIFF_H

#include "program.h"

typedef struct GradCtx {
  IrBuilder b;                      /* into the function being extended; its
                                       span is the forward node's, its err
                                       says why an emit failed */
  DiagList *diags;                  /* may be NULL */
  const ExternDecl *externs;        /* by extern index (EXTERN i[0]); an
                                       extern whose grad is NULL has none */
  int nexterns;
  bool need[IR_MAX_IN];             /* input k wants a gradient */
  bool diagnosed;                   /* a diagnostic was recorded */
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

#endif
