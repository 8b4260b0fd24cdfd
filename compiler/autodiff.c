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
 * IrFunc with ir_func_new/ir_emit whose PARAM nodes carry attr.i[0] = the
 * parameter index, add an OUT_LOSS output (a rank-0 f32 value), and fill a
 * Model with fwd, params (path and type per index) and nparams; everything
 * else may stay zero.
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

static int32_t emit_or_diag(GradCtx *g, IrNode *n, DiagList *diags) {
  int32_t id = ir_emit(g->f, n, g->err, sizeof g->err);
  if (id < 0 && diags) diag_error(diags, n->span, "internal error in autodiff: %s", g->err);
  return id;
}

/* acc + v (or v when there is no acc yet); -1 on failure. */
static int32_t accumulate(GradCtx *g, int32_t acc, int32_t v, Span span, DiagList *diags) {
  if (acc < 0) return v;
  IrNode n;
  memset(&n, 0, sizeof n);
  n.op = OP_ADD;
  n.nin = 2;
  n.in[0] = acc;
  n.in[1] = v;
  n.span = span;
  return emit_or_diag(g, &n, diags);
}

IrFunc *autodiff_with(Arena *arena, const Model *m, const bool *extern_has_grad,
                      const char *const *extern_names, int nexterns, DiagList *diags) {
  const IrFunc *fw = m->fwd;
  if (!fw) {
    if (diags) diag_error(diags, m->span, "model '%s' has no forward function", model_name(m));
    return NULL;
  }
  const IrOutput *lo = ir_find_output(fw, OUT_LOSS, -1);
  if (!lo) {
    if (diags)
      diag_error(diags, m->span, "model '%s' has no loss: add `loss cross_entropy(logits, label)`",
                 model_name(m));
    return NULL;
  }
  int32_t loss = lo->value;
  if (loss < 0 || loss >= fw->n) {
    if (diags) diag_error(diags, m->span, "model '%s': the loss refers to no value", model_name(m));
    return NULL;
  }
  const IrType *lt = &fw->nodes[loss].type;
  if (lt->rank != 0 || lt->dtype != IR_F32) {
    char tb[96];
    if (diags)
      diag_error(diags, fw->nodes[loss].span, "the loss of model '%s' must be a scalar f32, got %s",
                 model_name(m), ir_type_str(lt, tb, sizeof tb));
    return NULL;
  }
  if (m->nparams <= 0) {
    if (diags) diag_error(diags, m->span, "model '%s' has no parameters to train", model_name(m));
    return NULL;
  }
  for (int i = 0; i < fw->n; i++) {
    const IrNode *n = &fw->nodes[i];
    if (n->op == OP_PARAM && (n->attr.i[0] < 0 || n->attr.i[0] >= m->nparams)) {
      if (diags)
        diag_error(diags, n->span, "internal error: parameter node %%%d has index %lld of %d", i,
                   (long long)n->attr.i[0], m->nparams);
      return NULL;
    }
  }

  /* The copy. */
  IrFunc *f = ir_func_new(arena, grad_name(arena, fw->name), fw->batch);
  if (!f) return NULL;
  for (int i = 0; i < fw->n; i++)
    if (ir_append(f, &fw->nodes[i]) < 0) return NULL;
  for (int i = 0; i < fw->nout; i++) {
    const IrOutput *o = &fw->outs[i];
    if (ir_add_output(f, o->name, o->value, (IrOutRole)o->role, o->index) != 0) return NULL;
  }

  /* On a path from a parameter to the loss: depends on a parameter, and the
   * loss depends on it. */
  int n0 = fw->n;
  bool *dep = arena_alloc(arena, (size_t)n0 * sizeof *dep);
  bool *live = arena_alloc(arena, (size_t)n0 * sizeof *live);
  int32_t *grad = arena_alloc(arena, (size_t)n0 * sizeof *grad);
  if (!dep || !live || !grad) return NULL;
  for (int i = 0; i < n0; i++) {
    const IrNode *n = &fw->nodes[i];
    dep[i] = n->op == OP_PARAM;
    for (int k = 0; k < n->nin && !dep[i]; k++) dep[i] = dep[n->in[k]];
    grad[i] = -1;
  }
  live[loss] = true;
  for (int i = n0 - 1; i >= 0; i--) {
    if (!live[i]) continue;
    const IrNode *n = &fw->nodes[i];
    for (int k = 0; k < n->nin; k++) live[n->in[k]] = true;
  }

  GradCtx g;
  memset(&g, 0, sizeof g);
  g.f = f;
  g.diags = diags;
  g.extern_has_grad = extern_has_grad;
  g.extern_names = extern_names;
  g.nexterns = nexterns;
  bool ok = true;

  if (dep[loss]) {
    IrNode seed;
    memset(&seed, 0, sizeof seed);
    seed.op = OP_CONST;
    seed.type = ir_type_make(IR_F32, 0, NULL, false);
    seed.attr.f[0] = 1.0;
    seed.span = fw->nodes[loss].span;
    grad[loss] = emit_or_diag(&g, &seed, diags);
    if (grad[loss] < 0) return NULL;
  }

  for (int i = loss; i >= 0; i--) {
    if (!dep[i] || !live[i] || grad[i] < 0) continue;
    IrNode n = f->nodes[i];
    if (ir_op_info[n.op].flags & OPF_LEAF) continue;
    GradFn rule = grad_fns[n.op];
    if (!rule) {
      if (diags)
        diag_error(diags, n.span, "'%s' has no gradient rule but it lies on the path to the loss",
                   ir_op_info[n.op].name);
      ok = false;
      continue;
    }
    int32_t dx[IR_MAX_IN];
    for (int k = 0; k < IR_MAX_IN; k++) {
      dx[k] = -1;
      g.need[k] = k < n.nin && dep[n.in[k]] && f->nodes[n.in[k]].type.dtype == IR_F32;
    }
    g.span = n.span;
    g.failed = g.diagnosed = false;
    g.err[0] = 0;
    if (rule(&g, i, grad[i], dx) != 0) {
      if (!g.diagnosed && diags)
        diag_error(diags, n.span, "internal error in the gradient of '%s': %s",
                   ir_op_info[n.op].name, g.err);
      ok = false;
      continue;
    }
    for (int k = 0; k < n.nin; k++) {
      if (dx[k] < 0 || !g.need[k]) continue;
      int32_t in = n.in[k];
      if (!ir_type_eq(&f->nodes[dx[k]].type, &f->nodes[in].type)) {
        char t1[96], t2[96];
        if (diags)
          diag_error(diags, n.span,
                     "internal error: the gradient rule of '%s' gives %s for input %d of type %s",
                     ir_op_info[n.op].name, ir_type_str(&f->nodes[dx[k]].type, t1, sizeof t1), k,
                     ir_type_str(&f->nodes[in].type, t2, sizeof t2));
        ok = false;
        continue;
      }
      grad[in] = accumulate(&g, grad[in], dx[k], n.span, diags);
      if (grad[in] < 0) return NULL;
    }
  }
  if (!ok) return NULL;

  /* One gradient output per parameter. */
  for (int p = 0; p < m->nparams; p++) {
    const ParamInfo *pi = &m->params[p];
    int32_t total = -1;
    for (int i = 0; i < n0; i++) {
      const IrNode *n = &fw->nodes[i];
      if (n->op != OP_PARAM || n->attr.i[0] != p || grad[i] < 0) continue;
      if (!ir_type_eq(&n->type, &pi->type)) {
        char t1[96], t2[96];
        if (diags)
          diag_error(diags, n->span, "internal error: parameter '%s' is %s here but %s in the model",
                     pi->path ? pi->path : "?", ir_type_str(&n->type, t1, sizeof t1),
                     ir_type_str(&pi->type, t2, sizeof t2));
        return NULL;
      }
      total = accumulate(&g, total, grad[i], n->span, diags);
      if (total < 0) return NULL;
    }
    if (total < 0) {
      if (diags)
        diag_warning(diags, pi->span,
                     "parameter '%s' does not affect the loss; its gradient is zero",
                     pi->path ? pi->path : "?");
      IrNode z;
      memset(&z, 0, sizeof z);
      z.op = OP_CONST;
      z.type = pi->type;
      z.type.batched = 0;
      z.span = pi->span;
      total = emit_or_diag(&g, &z, diags);
      if (total < 0) return NULL;
    }
    const char *name = arena_printf(arena, "grad:%s", pi->path ? pi->path : "?");
    if (!name || ir_add_output(f, name, total, OUT_GRAD, p) != 0) return NULL;
  }
  return f;
}

IrFunc *autodiff_externs(Arena *arena, const Model *m, const ExternDecl *externs, int nexterns,
                         DiagList *diags) {
  bool *has = NULL;
  const char **names = NULL;
  if (nexterns > 0) {
    has = arena_alloc(arena, (size_t)nexterns * sizeof *has);
    names = arena_alloc(arena, (size_t)nexterns * sizeof *names);
    if (!has || !names) return NULL;
    for (int i = 0; i < nexterns; i++) {
      has[i] = externs[i].grad != NULL;
      names[i] = externs[i].name;
    }
  }
  return autodiff_with(arena, m, has, (const char *const *)names, nexterns, diags);
}

IrFunc *autodiff(Arena *arena, const Model *m, DiagList *diags) {
  return autodiff_with(arena, m, NULL, NULL, 0, diags);
}
