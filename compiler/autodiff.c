/* autodiff.c - reverse-mode differentiation as an IR-to-IR transform.
 *
 * The result is a copy of the model's forward function extended with the
 * backward pass: d loss / d loss = 1 is seeded at the OUT_LOSS value, nodes
 * are visited in reverse order, and each node that lies on a path from a
 * parameter to the loss hands its gradient to its op's rule (grad.c), which
 * emits the nodes for its inputs' gradients; several contributions to one
 * value are summed with ADD.  One OUT_GRAD output per parameter is added
 * (name "grad:<path>", index = parameter index); the forward outputs stay.
 *
 * Using it on a hand-built model (tests, finite-difference checks): make an
 * IrFunc with ir_func_new and the builder (ir.h) whose PARAM nodes carry
 * attr.i[0] = the parameter index, add an OUT_LOSS output (a rank-0 f32
 * value), and fill a Model with fwd, params (path and type per index) and
 * nparams; everything else may stay zero.
 */
#include <stdio.h>
#include <string.h>

#include "autodiff.h"

static const char *model_name(const Model *m) { return m->name ? m->name : "?"; }

/* "x.fwd" -> "x.grad"; otherwise name + ".grad". */
static const char *grad_name(Arena *a, const char *name) {
  if (!name) return "grad";
  size_t len = strlen(name);
  if (len > 4 && strcmp(name + len - 4, ".fwd") == 0)
    return arena_printf(a, "%.*s.grad", (int)(len - 4), name);
  return arena_printf(a, "%s.grad", name);
}

/* An internal error at `at` when an emit of autodiff itself failed. */
static int32_t checked(GradCtx *g, int32_t v, Span at) {
  if (v < 0 && g->diags) diag_error(g->diags, at, "internal error in autodiff: %s", g->b.err);
  return v;
}

/* acc + v (or v when there is no acc yet); -1 on failure. */
static int32_t accumulate(GradCtx *g, int32_t acc, int32_t v, Span span) {
  if (acc < 0) return v;
  g->b.span = span;
  return checked(g, ir_binary(&g->b, OP_ADD, acc, v), span);
}

/* The loss value of m->fwd, or -1 with a diagnostic at the model: no
 * forward function, no loss, a loss that is not a scalar f32, no
 * parameters, a parameter node without a valid index. */
static int32_t check_model(const Model *m, DiagList *diags) {
  const IrFunc *fw = m->fwd;
  if (!fw) {
    if (diags) diag_error(diags, m->span, "model '%s' has no forward function", model_name(m));
    return -1;
  }
  const IrOutput *lo = ir_find_output(fw, OUT_LOSS, -1);
  if (!lo) {
    if (diags)
      diag_error(diags, m->span, "model '%s' has no loss: add `loss cross_entropy(logits, label)`",
                 model_name(m));
    return -1;
  }
  int32_t loss = lo->value;
  if (loss < 0 || loss >= fw->n) {
    if (diags) diag_error(diags, m->span, "model '%s': the loss refers to no value", model_name(m));
    return -1;
  }
  const IrType *lt = &fw->nodes[loss].type;
  if (lt->rank != 0 || lt->dtype != IR_F32) {
    char tb[96];
    if (diags)
      diag_error(diags, fw->nodes[loss].span, "the loss of model '%s' must be a scalar f32, got %s",
                 model_name(m), ir_type_str(lt, tb, sizeof tb));
    return -1;
  }
  if (m->nparams <= 0) {
    if (diags) diag_error(diags, m->span, "model '%s' has no parameters to train", model_name(m));
    return -1;
  }
  for (int i = 0; i < fw->n; i++) {
    const IrNode *n = &fw->nodes[i];
    if (n->op == OP_PARAM && (n->attr.i[0] < 0 || n->attr.i[0] >= m->nparams)) {
      if (diags)
        diag_error(diags, n->span, "internal error: parameter node %%%d has index %lld of %d", i,
                   (long long)n->attr.i[0], m->nparams);
      return -1;
    }
  }
  return loss;
}

/* A copy of fw (nodes and outputs) under the gradient function's name. */
static IrFunc *copy_forward(Arena *arena, const IrFunc *fw) {
  IrFunc *f = ir_func_new(arena, grad_name(arena, fw->name), fw->batch);
  if (!f) return NULL;
  for (int i = 0; i < fw->n; i++)
    if (ir_append(f, &fw->nodes[i]) < 0) return NULL;
  for (int i = 0; i < fw->nout; i++) {
    const IrOutput *o = &fw->outs[i];
    if (ir_add_output(f, o->name, o->value, (IrOutRole)o->role, o->index) != 0) return NULL;
  }
  return f;
}

/* On a path from a parameter to the loss: dep[i] (node i depends on a
 * parameter) and live[i] (the loss depends on node i). */
static void mark_paths(const IrFunc *fw, int32_t loss, bool *dep, bool *live) {
  for (int i = 0; i < fw->n; i++) {
    const IrNode *n = &fw->nodes[i];
    dep[i] = n->op == OP_PARAM;
    for (int k = 0; k < n->nin && !dep[i]; k++) dep[i] = dep[n->in[k]];
  }
  live[loss] = true;
  for (int i = fw->n - 1; i >= 0; i--) {
    if (!live[i]) continue;
    const IrNode *n = &fw->nodes[i];
    for (int k = 0; k < n->nin; k++) live[n->in[k]] = true;
  }
}

/* Runs node i's rule with its gradient grad[i] and adds what it gives to
 * the gradients of its inputs.  0; 1 when the rule failed (diagnosed, keep
 * going to report more); -1 when autodiff itself failed. */
static int backprop_node(GradCtx *g, int32_t i, const bool *dep, int32_t *grad) {
  IrFunc *f = g->b.f;
  IrNode n = f->nodes[i];
  GradFn rule = grad_fns[n.op];
  if (!rule) {
    if (g->diags)
      diag_error(g->diags, n.span, "'%s' has no gradient rule but it lies on the path to the loss",
                 ir_op_info[n.op].name);
    return 1;
  }
  int32_t dx[IR_MAX_IN];
  for (int k = 0; k < IR_MAX_IN; k++) {
    dx[k] = -1;
    g->need[k] = k < n.nin && dep[n.in[k]] && f->nodes[n.in[k]].type.dtype == IR_F32;
  }
  g->b.span = n.span;
  g->b.failed = g->diagnosed = false;
  g->b.err[0] = 0;
  if (rule(g, i, grad[i], dx) != 0) {
    if (!g->diagnosed && g->diags)
      diag_error(g->diags, n.span, "internal error in the gradient of '%s': %s",
                 ir_op_info[n.op].name, g->b.err);
    return 1;
  }
  int rc = 0;
  for (int k = 0; k < n.nin; k++) {
    if (dx[k] < 0 || !g->need[k]) continue;
    int32_t in = n.in[k];
    if (!ir_type_eq(&f->nodes[dx[k]].type, &f->nodes[in].type)) {
      char t1[96], t2[96];
      if (g->diags)
        diag_error(g->diags, n.span,
                   "internal error: the gradient rule of '%s' gives %s for input %d of type %s",
                   ir_op_info[n.op].name, ir_type_str(&f->nodes[dx[k]].type, t1, sizeof t1), k,
                   ir_type_str(&f->nodes[in].type, t2, sizeof t2));
      rc = 1;
      continue;
    }
    grad[in] = accumulate(g, grad[in], dx[k], n.span);
    if (grad[in] < 0) return -1;
  }
  return rc;
}

/* One OUT_GRAD output per parameter: the sum over its param nodes, or a
 * zero constant (with a warning) when the loss does not depend on it. */
static int grad_outputs(GradCtx *g, Arena *arena, const Model *m, const IrFunc *fw,
                        const int32_t *grad) {
  for (int p = 0; p < m->nparams; p++) {
    const ParamInfo *pi = &m->params[p];
    int32_t total = -1;
    for (int i = 0; i < fw->n; i++) {
      const IrNode *n = &fw->nodes[i];
      if (n->op != OP_PARAM || n->attr.i[0] != p || grad[i] < 0) continue;
      if (!ir_type_eq(&n->type, &pi->type)) {
        char t1[96], t2[96];
        if (g->diags)
          diag_error(g->diags, n->span,
                     "internal error: parameter '%s' is %s here but %s in the model",
                     pi->path ? pi->path : "?", ir_type_str(&n->type, t1, sizeof t1),
                     ir_type_str(&pi->type, t2, sizeof t2));
        return -1;
      }
      total = accumulate(g, total, grad[i], n->span);
      if (total < 0) return -1;
    }
    if (total < 0) {
      if (g->diags)
        diag_warning(g->diags, pi->span,
                     "parameter '%s' does not affect the loss; its gradient is zero",
                     pi->path ? pi->path : "?");
      g->b.span = pi->span;
      total = checked(g, ir_fill(&g->b, &pi->type, 0.0), pi->span);
      if (total < 0) return -1;
    }
    const char *name = arena_printf(arena, "grad:%s", pi->path ? pi->path : "?");
    if (!name || ir_add_output(g->b.f, name, total, OUT_GRAD, p) != 0) return -1;
  }
  return 0;
}

IrFunc *autodiff(Arena *arena, const Model *m, const ExternDecl *externs, int nexterns,
                 DiagList *diags) {
  int32_t loss = check_model(m, diags);
  if (loss < 0) return NULL;
  const IrFunc *fw = m->fwd;
  IrFunc *f = copy_forward(arena, fw);
  int n0 = fw->n;
  bool *dep = arena_alloc(arena, (size_t)n0 * sizeof *dep);
  bool *live = arena_alloc(arena, (size_t)n0 * sizeof *live);
  int32_t *grad = arena_alloc(arena, (size_t)n0 * sizeof *grad);
  if (!f || !dep || !live || !grad) return NULL;
  mark_paths(fw, loss, dep, live);
  for (int i = 0; i < n0; i++) grad[i] = -1;

  GradCtx g;
  memset(&g, 0, sizeof g);
  g.b = ir_builder(f, fw->nodes[loss].span);
  g.diags = diags;
  g.externs = externs;
  g.nexterns = externs ? nexterns : 0;

  /* d loss / d loss = 1, then every node on a path, in reverse */
  if (dep[loss]) {
    IrType scalar = ir_type_make(IR_F32, 0, NULL, false);
    grad[loss] = checked(&g, ir_fill(&g.b, &scalar, 1.0), fw->nodes[loss].span);
    if (grad[loss] < 0) return NULL;
  }
  bool ok = true;
  for (int i = loss; i >= 0; i--) {
    if (!dep[i] || !live[i] || grad[i] < 0) continue;
    if (ir_op_info[f->nodes[i].op].flags & OPF_LEAF) continue;
    int rc = backprop_node(&g, i, dep, grad);
    if (rc < 0) return NULL;
    if (rc > 0) ok = false;
  }
  if (!ok || grad_outputs(&g, arena, m, fw, grad) != 0) return NULL;
  return f;
}
