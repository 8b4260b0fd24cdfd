/* test_autodiff.c - reverse-mode rules and the autodiff transform.
 *
 * How to differentiate a hand-built function (also what the numeric
 * gradient checks do): build an IrFunc with ir_func_new and the builder
 * (ir_builder, ir_op, ir_unary, ...), give every
 * PARAM node attr.i[0] = its parameter index, add an OUT_LOSS output (a
 * rank-0 f32 value), then fill a Model with just fwd, params (path and type
 * per index) and nparams, and call autodiff (with the extern declarations
 * when the function calls externs).  See make_model() below.
 */
#include <criterion/criterion.h>

#include "../compiler/autodiff.h"
#include "irutil.h"

#define parse_type tu_type


typedef struct Fix {
  Arena arena;
  SrcSet src;
  DiagList diags;
  IrFunc *f;
  IrBuilder b;
  ParamInfo params[16];
  int nparams;
  Model m;
} Fix;

static void fix_init(Fix *x, int64_t batch) {
  memset(x, 0, sizeof *x);
  arena_init(&x->arena, ra_alloc_default());
  src_init(&x->src, &x->arena);
  const char *text = "model tiny { }\n";
  src_add(&x->src, "tiny.ra", text, strlen(text));
  diag_init(&x->diags, &x->arena, &x->src);
  x->f = ir_func_new(&x->arena, "tiny.fwd", batch);
  x->b = tu_builder(x->f);
}

static void fix_free(Fix *x) { arena_free(&x->arena); }


static int32_t param(Fix *x, const char *path, const char *type) {
  int p = x->nparams++;
  x->params[p].path = path;
  x->params[p].type = parse_type(type);
  x->params[p].span = (Span){0, 1, 1, 0, 5};
  return ir_op(&x->b, (IrNode){.op = OP_PARAM, .name = path, .attr.i = {p}, .type = parse_type(type)});
}

static int32_t input(Fix *x, const char *name, int idx, const char *type) {
  return ir_op(&x->b, (IrNode){.op = OP_INPUT, .name = name, .attr.i = {idx}, .type = parse_type(type)});
}


static Model *make_model(Fix *x, int32_t loss) {
  if (loss >= 0) cr_assert_eq(ir_add_output(x->f, "loss", loss, OUT_LOSS, 0), 0);
  x->m.name = "tiny";
  x->m.span = (Span){0, 1, 1, 0, 5};
  x->m.fwd = x->f;
  x->m.params = x->params;
  x->m.nparams = x->nparams;
  return &x->m;
}

/* Sums v down to a scalar (axis 0 repeatedly). */
static int32_t to_scalar(Fix *x, int32_t v) {
  while (x->f->nodes[v].type.rank > 0) v = ir_op(&x->b, (IrNode){.op = OP_SUM, .nin = 1, .in = {v}});
  return v;
}

static bool has_op_after(const IrFunc *f, int from, IrOp op) {
  for (int i = from; i < f->n; i++)
    if (f->nodes[i].op == op) return true;
  return false;
}

static void check_grads(const Model *m, const IrFunc *g) {
  int ngrad = 0;
  for (int i = 0; i < g->nout; i++) {
    const IrOutput *o = &g->outs[i];
    if (o->role != OUT_GRAD) continue;
    ngrad++;
    cr_assert(o->index >= 0 && o->index < m->nparams);
    char t1[96], t2[96];
    cr_assert(ir_type_eq(&g->nodes[o->value].type, &m->params[o->index].type),
              "grad of %s is %s, want %s", m->params[o->index].path,
              ir_type_str(&g->nodes[o->value].type, t1, sizeof t1),
              ir_type_str(&m->params[o->index].type, t2, sizeof t2));
    char want[128];
    snprintf(want, sizeof want, "grad:%s", m->params[o->index].path);
    cr_assert_str_eq(o->name, want);
  }
  cr_assert_eq(ngrad, m->nparams);
}

/* An op marked N (no rule) on the path to the loss is an error at its
 * node; the same op off the path is fine.  (A row marked Y without its
 * grad_<lower> does not link: grad_fns names it.) */
Test(autodiff, op_without_rule_on_path_is_located) {
  Fix x;
  fix_init(&x, 1);
  int32_t w = param(&x, "w", "f32[3]");
  Span at = {0, 1, 4, 3, 9};
  x.b.span = at;
  int32_t r = ir_binary(&x.b, OP_RELU_GRAD, w, w);
  x.b.span = SPAN_NONE;
  Model *m = make_model(&x, to_scalar(&x, r));
  cr_assert_null(autodiff(&x.arena, m, NULL, 0, &x.diags));
  cr_assert_eq(x.diags.nerrors, 1);
  cr_assert_str_eq(x.diags.head->msg,
                   "'relu_grad' has no gradient rule but it lies on the path to the loss");
  cr_assert_eq(x.diags.head->span.col, 4);
  fix_free(&x);
}

/* One case per differentiable op: f32 operands are parameters, i32
 * operands inputs; `expect` must appear in the backward part. */
typedef struct Case {
  IrOp op;
  const char *in[3];
  int64_t i[3];
  double f0;
  const char *given;
  IrOp expect;
} Case;

static const Case cases[] = {
    {OP_ADD, {"f32[4, 3]", "f32[3]"}, {0}, 0, 0, OP_SUM_TO},
    {OP_SUB, {"f32[4, 3]", "f32[4, 1]"}, {0}, 0, 0, OP_NEG},
    {OP_MUL, {"f32[4, 3]", "f32[3]"}, {0}, 0, 0, OP_MUL},
    {OP_DIV, {"f32[4, 3]", "f32[4, 3]"}, {0}, 0, 0, OP_DIV},
    {OP_NEG, {"f32[4, 3]"}, {0}, 0, 0, OP_NEG},
    {OP_SCALE, {"f32[4, 3]"}, {0}, 0.5, 0, OP_SCALE},
    {OP_SQUARE, {"f32[4, 3]"}, {0}, 0, 0, OP_MUL},
    {OP_RELU, {"f32[4, 3]"}, {0}, 0, 0, OP_RELU_GRAD},
    {OP_GELU, {"f32[4, 3]"}, {0}, 0, 0, OP_GELU_GRAD},
    {OP_TANH, {"f32[4, 3]"}, {0}, 0, 0, OP_TANH_GRAD},
    {OP_SIGMOID, {"f32[4, 3]"}, {0}, 0, 0, OP_SIGMOID_GRAD},
    {OP_SILU, {"f32[4, 3]"}, {0}, 0, 0, OP_SILU_GRAD},
    {OP_SOFTMAX, {"f32[4, 3]"}, {0}, 0, 0, OP_SOFTMAX_GRAD},
    {OP_LAYERNORM, {"f32[4, 3]"}, {0}, 1e-5, 0, OP_LAYERNORM_GRAD},
    {OP_MATMUL, {"f32[2, 4, 3]", "f32[5, 3]"}, {0, 1, 0}, 0, 0, OP_RESHAPE},
    {OP_MATMUL, {"f32[3, 4]", "f32[2, 3, 5]"}, {1, 0, 0}, 0, 0, OP_SUM_TO},
    {OP_GATHER, {"f32[10, 3]", "i32[4, 2]"}, {0}, 0, 0, OP_SCATTER_ADD},
    {OP_SUM, {"f32[4, 3]"}, {1, 0, 0}, 0, 0, OP_BROADCAST},
    {OP_MEAN, {"f32[4, 3]"}, {1, 0, 0}, 0, 0, OP_SCALE},
    {OP_MAX, {"f32[4, 3]"}, {1, 0, 0}, 0, 0, OP_MAX_GRAD},
    {OP_BROADCAST, {"f32[4]"}, {1, 0, 0}, 0, "f32[4, 3]", OP_SUM},
    {OP_SUM_TO, {"f32[2, 4, 3]"}, {0}, 0, "f32[4, 1]", OP_BROADCAST},
    {OP_RESHAPE, {"f32[4, 3]"}, {0}, 0, "f32[2, 6]", OP_RESHAPE},
    {OP_TRANSPOSE, {"f32[2, 3, 4]"}, {1, 2, 0}, 0, 0, OP_TRANSPOSE},
    {OP_CONCAT, {"f32[4, 3]", "f32[4, 2]"}, {1, 0, 0}, 0, 0, OP_SLICE},
    {OP_SLICE, {"f32[4, 6]"}, {1, 2, 0}, 0, "f32[4, 3]", OP_CONCAT},
    {OP_DROPOUT, {"f32[4, 3]"}, {7, 0, 0}, 0.25, 0, OP_DROPOUT_GRAD},
    {OP_CAUSAL_MASK, {"f32[2, 3, 3]"}, {0}, -INFINITY, 0, OP_CAUSAL_MASK},
    {OP_CROSS_ENTROPY, {"f32[4, 5]", "i32[4]"}, {0}, 0, 0, OP_CROSS_ENTROPY_GRAD},
    {OP_EXTERN, {"f32[4, 3]"}, {0}, 0, 0, OP_EXTERN_GRAD},
};

Test(autodiff, every_rule_gives_parameter_types) {
  static const char *const paths[] = {"p0", "p1", "p2"};
  bool seen[OP_COUNT] = {0};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const Case *k = &cases[c];
    Fix x;
    fix_init(&x, 4);
    IrNode n = {.op = k->op, .attr.i = {k->i[0], k->i[1], k->i[2]}, .attr.f = {k->f0}};
    for (int j = 0; j < 3 && k->in[j]; j++)
      n.in[n.nin++] = k->in[j][0] == 'i' ? input(&x, "idx", j, k->in[j]) : param(&x, paths[j], k->in[j]);
    if (k->given) n.type = parse_type(k->given);
    int32_t y = ir_op(&x.b, n);
    Model *m = make_model(&x, to_scalar(&x, y));
    ExternDecl ex[1] = {{.name = "swish", .grad = "swish_grad"}};
    IrFunc *g = autodiff(&x.arena, m, ex, 1, &x.diags);
    cr_assert_not_null(g, "case %zu (%s): %s", c, ir_op_info[k->op].name, diag_render(&x.diags, 0));
    cr_assert_eq(x.diags.nerrors, 0);
    cr_assert_null(x.diags.head, "case %zu: no warning expected", c);
    check_grads(m, g);
    cr_assert(has_op_after(g, x.f->n, k->expect), "case %zu (%s): no %s in the backward pass", c,
              ir_op_info[k->op].name, ir_op_info[k->expect].name);
    /* every gradient depends on the seed, i.e. none is a zero constant */
    for (int i = 0; i < g->nout; i++)
      if (g->outs[i].role == OUT_GRAD) cr_assert_neq(g->nodes[g->outs[i].value].op, OP_CONST);
    /* forward outputs kept, function name derived */
    cr_assert_not_null(ir_find_output(g, OUT_LOSS, -1));
    cr_assert_str_eq(g->name, "tiny.grad");
    seen[k->op] = true;
    fix_free(&x);
  }
  for (int op = 0; op < OP_COUNT; op++)
    if (ir_op_info[op].has_grad) cr_assert(seen[op], "no autodiff case for %s", ir_op_info[op].name);
}

Test(autodiff, transpose_uses_inverse_permutation) {
  Fix x;
  fix_init(&x, 2);
  int32_t p = param(&x, "w", "f32[2, 3, 4]");
  int32_t t = ir_op(&x.b, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {p}, .attr.i = {1, 2, 0}});
  Model *m = make_model(&x, to_scalar(&x, t));
  IrFunc *g = autodiff(&x.arena, m, NULL, 0, &x.diags);
  cr_assert_not_null(g);
  const IrNode *d = &g->nodes[ir_find_output(g, OUT_GRAD, 0)->value];
  cr_assert_eq(d->op, OP_TRANSPOSE);
  cr_assert(d->attr.i[0] == 2 && d->attr.i[1] == 0 && d->attr.i[2] == 1);
  fix_free(&x);
}

Test(autodiff, causal_mask_gradient_fills_zero) {
  Fix x;
  fix_init(&x, 2);
  int32_t p = param(&x, "w", "f32[3, 3]");
  int32_t t = ir_op(&x.b, (IrNode){.op = OP_CAUSAL_MASK, .nin = 1, .in = {p}, .attr.f = {-INFINITY}});
  Model *m = make_model(&x, to_scalar(&x, ir_unary(&x.b, OP_TANH, t)));
  IrFunc *g = autodiff(&x.arena, m, NULL, 0, &x.diags);
  const IrNode *d = &g->nodes[ir_find_output(g, OUT_GRAD, 0)->value];
  cr_assert_eq(d->op, OP_CAUSAL_MASK);
  cr_assert_eq(d->attr.f[0], 0.0);
  fix_free(&x);
}

/* x[B, T, k] @ W[k, n]: dW is one GEMM over [-1, k] views, no sum. */
Test(autodiff, weight_gradient_is_one_gemm) {
  Fix x;
  fix_init(&x, 8);
  int32_t in = input(&x, "x", 0, "Bf32[8, 5, 3]");
  int32_t w = param(&x, "w", "f32[3, 4]");
  int32_t y = ir_binary(&x.b, OP_MATMUL, in, w);
  Model *m = make_model(&x, to_scalar(&x, y));
  IrFunc *g = autodiff(&x.arena, m, NULL, 0, &x.diags);
  cr_assert_not_null(g);
  const IrNode *d = &g->nodes[ir_find_output(g, OUT_GRAD, 0)->value];
  cr_assert_eq(d->op, OP_MATMUL);
  cr_assert_eq(d->attr.i[0], 1);
  char tb[64];
  cr_assert_str_eq(ir_type_str(&g->nodes[d->in[0]].type, tb, sizeof tb), "f32[40, 3]");
  cr_assert_str_eq(ir_type_str(&g->nodes[d->in[1]].type, tb, sizeof tb), "f32[40, 4]");
  cr_assert(!has_op_after(g, x.f->n, OP_SUM_TO), "no per-example products summed");
  /* the input needs no gradient: no matmul with W transposed */
  int mm = 0;
  for (int i = x.f->n; i < g->n; i++) mm += g->nodes[i].op == OP_MATMUL;
  cr_assert_eq(mm, 1);
  fix_free(&x);
}

Test(autodiff, shared_parameter_accumulates) {
  Fix x;
  fix_init(&x, 1);
  int32_t w = param(&x, "w", "f32[3]");
  int32_t a = ir_unary(&x.b, OP_TANH, w);
  int32_t b = ir_unary(&x.b, OP_SQUARE, w);
  int32_t s = ir_binary(&x.b, OP_ADD, a, b);
  Model *m = make_model(&x, to_scalar(&x, s));
  IrFunc *g = autodiff(&x.arena, m, NULL, 0, &x.diags);
  cr_assert_not_null(g);
  const IrNode *d = &g->nodes[ir_find_output(g, OUT_GRAD, 0)->value];
  cr_assert_eq(d->op, OP_ADD, "two contributions summed");
  fix_free(&x);
}

Test(autodiff, no_loss) {
  Fix x;
  fix_init(&x, 1);
  param(&x, "w", "f32[3]");
  Model *m = make_model(&x, -1);
  cr_assert_null(autodiff(&x.arena, m, NULL, 0, &x.diags));
  cr_assert_eq(x.diags.nerrors, 1);
  cr_assert_str_eq(x.diags.head->msg, "model 'tiny' has no loss: add `loss cross_entropy(logits, label)`");
  cr_assert_eq(x.diags.head->span.line, 1);
  fix_free(&x);
}

Test(autodiff, no_parameters) {
  Fix x;
  fix_init(&x, 1);
  int32_t i = input(&x, "x", 0, "f32[3]");
  Model *m = make_model(&x, to_scalar(&x, i));
  cr_assert_null(autodiff(&x.arena, m, NULL, 0, &x.diags));
  cr_assert_str_eq(x.diags.head->msg, "model 'tiny' has no parameters to train");
  fix_free(&x);
}

Test(autodiff, extern_without_gradient) {
  Fix x;
  fix_init(&x, 1);
  int32_t w = param(&x, "w", "f32[3]");
  Span at = {0, 1, 7, 6, 5};
  x.b.span = at;
  int32_t e = ir_op(&x.b, (IrNode){.op = OP_EXTERN, .nin = 1, .in = {w}, .attr.i = {1}});
  x.b.span = SPAN_NONE;
  Model *m = make_model(&x, to_scalar(&x, e));
  ExternDecl none[2] = {{.name = "other", .grad = "other_grad"}, {.name = "swish"}};
  cr_assert_null(autodiff(&x.arena, m, none, 2, &x.diags));
  cr_assert_eq(x.diags.nerrors, 1);
  cr_assert_str_eq(x.diags.head->msg,
                   "'swish' has no gradient (declare it with `grad NAME`) but it lies on the path to the loss");
  cr_assert_eq(x.diags.head->span.col, 7);
  /* with a gradient declared */
  Fix y;
  fix_init(&y, 1);
  w = param(&y, "w", "f32[3]");
  e = ir_op(&y.b, (IrNode){.op = OP_EXTERN, .nin = 1, .in = {w}, .attr.i = {0}});
  m = make_model(&y, to_scalar(&y, e));
  ExternDecl ex[1] = {{.name = "swish", .grad = "swish_grad"}};
  IrFunc *g = autodiff(&y.arena, m, ex, 1, &y.diags);
  cr_assert_not_null(g);
  cr_assert(has_op_after(g, y.f->n, OP_EXTERN_GRAD));
  fix_free(&x);
  fix_free(&y);
}

/* An extern off the path to the loss needs no gradient. */
Test(autodiff, extern_off_path_is_fine) {
  Fix x;
  fix_init(&x, 1);
  int32_t w = param(&x, "w", "f32[3]");
  int32_t i = input(&x, "x", 0, "f32[3]");
  int32_t e = ir_op(&x.b, (IrNode){.op = OP_EXTERN, .nin = 1, .in = {i}});
  int32_t s = ir_binary(&x.b, OP_MUL, w, e);
  Model *m = make_model(&x, to_scalar(&x, s));
  cr_assert_not_null(autodiff(&x.arena, m, NULL, 0, &x.diags));
  cr_assert_eq(x.diags.nerrors, 0);
  fix_free(&x);
}

Test(autodiff, unused_parameter_gets_zero_and_warning) {
  Fix x;
  fix_init(&x, 1);
  int32_t w = param(&x, "used", "f32[3]");
  param(&x, "unused", "f32[2, 2]");
  Model *m = make_model(&x, to_scalar(&x, ir_unary(&x.b, OP_TANH, w)));
  IrFunc *g = autodiff(&x.arena, m, NULL, 0, &x.diags);
  cr_assert_not_null(g);
  cr_assert_eq(x.diags.nerrors, 0);
  cr_assert_not_null(x.diags.head);
  cr_assert_eq(x.diags.head->level, DIAG_WARNING);
  cr_assert_str_eq(x.diags.head->msg, "parameter 'unused' does not affect the loss; its gradient is zero");
  const IrNode *z = &g->nodes[ir_find_output(g, OUT_GRAD, 1)->value];
  cr_assert_eq(z->op, OP_CONST);
  cr_assert_null(z->data);
  cr_assert_eq(z->attr.f[0], 0.0);
  check_grads(m, g);
  fix_free(&x);
}

/* ---- structure goldens ---- */

static void golden(Fix *x, Model *m, const char *path) {
  IrFunc *g = autodiff(&x->arena, m, NULL, 0, &x->diags);
  cr_assert_not_null(g, "%s", diag_render(&x->diags, 0));
  check_grads(m, g);
  char *text = ir_print(&x->arena, g, &x->src, false);
  cr_assert_not_null(text);
  tu_golden(path, text);
}

static int32_t linear(Fix *x, int32_t in, const char *wp, const char *bp, const char *wt, const char *bt) {
  int32_t w = param(x, wp, wt), b = param(x, bp, bt);
  return ir_binary(&x->b, OP_ADD, ir_binary(&x->b, OP_MATMUL, in, w), b);
}

Test(autodiff, golden_mlp) {
  Fix x;
  fix_init(&x, 4);
  int32_t in = input(&x, "x", 0, "Bf32[4, 3]");
  int32_t lab = input(&x, "label", 1, "Bi32[4]");
  int32_t h = ir_unary(&x.b, OP_RELU, linear(&x, in, "mlp.l1.w", "mlp.l1.b", "f32[3, 5]", "f32[5]"));
  int32_t logits = linear(&x, h, "mlp.l2.w", "mlp.l2.b", "f32[5, 2]", "f32[2]");
  int32_t loss = ir_binary(&x.b, OP_CROSS_ENTROPY, logits, lab);
  ir_add_output(x.f, "logits", logits, OUT_PRED, 0);
  golden(&x, make_model(&x, loss), "tests/golden/ir/grad_mlp.txt");
  fix_free(&x);
}

/* One causal self-attention block with 2 heads of 3, from primitive ops. */
Test(autodiff, golden_attention) {
  Fix x;
  fix_init(&x, 2);
  int32_t in = input(&x, "x", 0, "Bf32[2, 4, 6]");
  int32_t tgt = input(&x, "y", 1, "Bi32[2, 4]");
  int32_t proj[3];
  const char *names[3] = {"att.wq", "att.wk", "att.wv"};
  for (int k = 0; k < 3; k++) {
    int32_t w = param(&x, names[k], "f32[6, 6]");
    int32_t p = ir_binary(&x.b, OP_MATMUL, in, w);
    int32_t r = ir_op(&x.b, (IrNode){.op = OP_RESHAPE, .nin = 1, .in = {p}, .type = parse_type("Bf32[2, 4, 2, 3]")});
    proj[k] = ir_op(&x.b, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {r}, .attr.i = {0, 2, 1, 3}});
  }
  int32_t s = ir_op(&x.b, (IrNode){.op = OP_MATMUL, .nin = 2, .in = {proj[0], proj[1]}, .attr.i = {0, 1}});
  s = ir_op(&x.b, (IrNode){.op = OP_SCALE, .nin = 1, .in = {s}, .attr.f = {0.57735026918962584}});
  s = ir_op(&x.b, (IrNode){.op = OP_CAUSAL_MASK, .nin = 1, .in = {s}, .attr.f = {-INFINITY}});
  s = ir_unary(&x.b, OP_SOFTMAX, s);
  int32_t a = ir_binary(&x.b, OP_MATMUL, s, proj[2]);
  a = ir_op(&x.b, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {a}, .attr.i = {0, 2, 1, 3}});
  a = ir_op(&x.b, (IrNode){.op = OP_RESHAPE, .nin = 1, .in = {a}, .type = parse_type("Bf32[2, 4, 6]")});
  int32_t o = ir_binary(&x.b, OP_MATMUL, a, param(&x, "att.wo", "f32[6, 6]"));
  int32_t y = ir_op(&x.b, (IrNode){.op = OP_LAYERNORM, .nin = 1, .in = {ir_binary(&x.b, OP_ADD, in, o)}, .attr.f = {1e-5}});
  int32_t logits = ir_binary(&x.b, OP_MATMUL, y, param(&x, "head.w", "f32[6, 7]"));
  int32_t loss = ir_binary(&x.b, OP_CROSS_ENTROPY, logits, tgt);
  ir_add_output(x.f, "att", s, OUT_HEADS, 0);
  golden(&x, make_model(&x, loss), "tests/golden/ir/grad_attention.txt");
  fix_free(&x);
}
