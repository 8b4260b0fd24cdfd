/* test_passes.c - dead-code elimination, CSE, constant folding (with the
 * kernels' bits) and the optimisation pipeline on hand-built IR. */
#include <criterion/criterion.h>

#include "../compiler/autodiff.h"
#include "../runtime/exec/exec.h"
#include "../runtime/exec/kernels.h"
#include "irutil.h"

#define ty tu_type


static Arena A;
static void setup(void) { arena_init(&A, ra_alloc_default()); }
static void teardown(void) { arena_free(&A); }

static void out(IrFunc *f, int32_t v) { cr_assert_eq(ir_add_output(f, "y", v, OUT_OUTPUT, f->nout), 0); }
static const IrNode *res(const IrFunc *g, int k) { return &g->nodes[g->outs[k].value]; }

TestSuite(passes, .init = setup, .fini = teardown);

Test(passes, dce_keeps_what_outputs_need) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[3]");
  int32_t dead = ir_unary(&B, OP_TANH, x);
  int32_t y = ir_unary(&B, OP_RELU, x);
  ir_unary(&B, OP_NEG, dead);
  out(f, y);
  char *before = ir_print(&A, f, NULL, false);
  IrFunc *g = pass_dce(&A, f);
  cr_assert_eq(g->n, 2);
  cr_assert_eq(g->nodes[1].op, OP_RELU);
  cr_assert_eq(g->nodes[1].in[0], 0);
  cr_assert_eq(g->outs[0].value, 1);
  cr_assert_str_eq(g->name, "f");
  cr_assert_str_eq(ir_print(&A, f, NULL, false), before, "the input is not changed");
}

Test(passes, cse_merges_equal_nodes) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[2, 3]"), w = tu_input(&B, "x", 0, "f32[3, 4]");
  int32_t m1 = ir_binary(&B, OP_MATMUL, x, w), m2 = ir_binary(&B, OP_MATMUL, x, w);
  int32_t a1 = ir_binary(&B, OP_ADD, m1, m2), a2 = ir_binary(&B, OP_ADD, m2, m1); /* commutative */
  int32_t s1 = ir_binary(&B, OP_SUB, m1, m2);
  int32_t d1 = ir_op(&B, (IrNode){.op = OP_DROPOUT, .nin = 1, .in = {x}, .attr.f = {0.5}});
  int32_t d2 = ir_op(&B, (IrNode){.op = OP_DROPOUT, .nin = 1, .in = {x}, .attr.f = {0.5}});
  int32_t c1 = tu_fill(&B, "f32[3]", 2), c2 = tu_fill(&B, "f32[3]", 2), c3 = tu_fill(&B, "f32[3]", 3);
  static const float data[3] = {1, 2, 3}, data2[3] = {1, 2, 3};
  int32_t t1 = ir_op(&B, (IrNode){.op = OP_CONST, .data = data, .type = ty("f32[3]")});
  int32_t t2 = ir_op(&B, (IrNode){.op = OP_CONST, .data = data2, .type = ty("f32[3]")});
  int32_t t3 = ir_op(&B, (IrNode){.op = OP_CONST, .data = data, .type = ty("f32[3]")});
  int32_t i2 = tu_input(&B, "x", 0, "f32[2, 3]");
  int32_t sc1 = ir_scale(&B, x, 2.0), sc2 = ir_scale(&B, x, 3.0);
  int32_t vals[] = {a1, a2, s1, d1, d2, c1, c2, c3, t1, t2, t3, i2, sc1, sc2};
  for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) out(f, vals[k]);
  IrFunc *g = pass_cse(&A, f);
  cr_assert_eq(g->outs[0].value, g->outs[1].value, "add(a,b) = add(b,a)");
  cr_assert_eq(g->nodes[g->outs[2].value].in[0], g->nodes[g->outs[2].value].in[1], "matmuls merged");
  cr_assert_neq(g->outs[3].value, g->outs[4].value, "dropouts never merged");
  cr_assert_eq(g->outs[5].value, g->outs[6].value, "equal fills merged");
  cr_assert_neq(g->outs[5].value, g->outs[7].value, "different fills kept");
  cr_assert_neq(g->outs[8].value, g->outs[9].value, "different data kept");
  cr_assert_eq(g->outs[8].value, g->outs[10].value, "same data merged");
  cr_assert_neq(g->outs[11].value, 0, "inputs never merged");
  cr_assert_neq(g->outs[12].value, g->outs[13].value, "attributes compared");
  cr_assert_eq(g->n, f->n - 4);
}

Test(passes, fold_constants) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t two = tu_fill(&B, "f32[]", 2);
  int32_t v = ir_scale(&B, two, 3);                                  /* 6 */
  int32_t w = ir_binary(&B, OP_ADD, v, tu_fill(&B, "f32[2, 2]", 1));        /* 7, [2, 2] */
  int32_t s = ir_op(&B, (IrNode){.op = OP_SUM, .nin = 1, .in = {w}}); /* 14, [2] */
  int32_t r = ir_unary(&B, OP_RELU, ir_unary(&B, OP_NEG, s));                 /* 0 */
  int32_t st = ir_op(&B, (IrNode){.op = OP_SUM_TO, .nin = 1, .in = {w}, .type = ty("f32[2, 1]")}); /* 14 */
  out(f, v);
  out(f, w);
  out(f, s);
  out(f, r);
  out(f, st);
  IrFunc *g = pass_optimize(&A, f);
  double want[] = {6, 7, 14, 0, 14};
  const char *types[] = {"f32[]", "f32[2, 2]", "f32[2]", "f32[2]", "f32[2, 1]"};
  for (int k = 0; k < 5; k++) {
    const IrNode *n = res(g, k);
    cr_assert_eq(n->op, OP_CONST, "output %d folded", k);
    cr_assert_null(n->data);
    cr_assert_float_eq(n->attr.f[0], want[k], 1e-6, "output %d", k);
    char tb[64];
    cr_assert_str_eq(ir_type_str(&n->type, tb, sizeof tb), types[k]);
  }
  cr_assert_eq(g->n, 5, "only the five constants remain");
}

Test(passes, fold_identities) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[2, 3]");
  int32_t nn = ir_unary(&B, OP_NEG, ir_unary(&B, OP_NEG, x));
  int32_t s1 = ir_scale(&B, x, 1.0);
  int32_t ss = ir_scale(&B, ir_scale(&B, x, 2.0), 0.5);
  int32_t r = ir_op(&B, (IrNode){.op = OP_RESHAPE, .nin = 1, .in = {x}, .type = ty("f32[3, 2]")});
  int32_t rr = ir_op(&B, (IrNode){.op = OP_RESHAPE, .nin = 1, .in = {r}, .type = ty("f32[2, 3]")});
  int32_t t = ir_op(&B, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {x}, .attr.i = {1, 0}});
  int32_t tt = ir_op(&B, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {t}, .attr.i = {1, 0}});
  int32_t a0 = ir_binary(&B, OP_ADD, x, tu_fill(&B, "f32[3]", 0));
  int32_t m1 = ir_binary(&B, OP_MUL, tu_fill(&B, "f32[]", 1), x);
  int32_t m3 = ir_binary(&B, OP_MUL, x, tu_fill(&B, "f32[]", 3));
  int32_t abig = ir_binary(&B, OP_ADD, x, tu_fill(&B, "f32[4, 2, 3]", 0)); /* broadcasts x: kept */
  int32_t vals[] = {nn, s1, ss, rr, tt, a0, m1};
  for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) out(f, vals[k]);
  out(f, m3);
  out(f, abig);
  IrFunc *g = pass_optimize(&A, f);
  for (int k = 0; k < 7; k++) cr_assert_eq(g->outs[k].value, 0, "output %d is x itself", k);
  cr_assert_eq(res(g, 7)->op, OP_SCALE, "x * 3 is a scale");
  cr_assert_eq(res(g, 7)->attr.f[0], 3.0);
  cr_assert_eq(res(g, 7)->in[0], 0);
  cr_assert_eq(res(g, 8)->op, OP_ADD);
}

Test(passes, fold_leaves_random_and_data_alone) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t one = tu_fill(&B, "f32[3]", 1);
  int32_t d = ir_op(&B, (IrNode){.op = OP_DROPOUT, .nin = 1, .in = {one}, .attr.f = {0.5}});
  static const float data[3] = {1, 2, 3};
  int32_t c = ir_op(&B, (IrNode){.op = OP_CONST, .data = data, .type = ty("f32[3]")});
  int32_t n = ir_unary(&B, OP_NEG, c);
  out(f, d);
  out(f, n);
  IrFunc *g = pass_optimize(&A, f);
  cr_assert_eq(res(g, 0)->op, OP_DROPOUT);
  cr_assert_eq(res(g, 1)->op, OP_NEG);
}

/* A small training step: optimizing reaches a fixed point, keeps outputs,
 * and removes the duplicate views autodiff makes. */
Test(passes, optimize_gradient_function) {
  IrFunc *f = ir_func_new(&A, "m.fwd", 2);
  IrBuilder B = tu_builder(f);
  int32_t x = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty("f32[2, 4, 6]")});
  int32_t y = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "y", .attr.i = {1}, .type = ty("i32[2, 4]")});
  ParamInfo ps[2] = {{.path = "m.w1", .type = ty("f32[6, 6]")}, {.path = "m.w2", .type = ty("f32[6, 5]")}};
  int32_t w1 = ir_op(&B, (IrNode){.op = OP_PARAM, .name = "m.w1", .attr.i = {0}, .type = ps[0].type});
  int32_t w2 = ir_op(&B, (IrNode){.op = OP_PARAM, .name = "m.w2", .attr.i = {1}, .type = ps[1].type});
  int32_t h1 = ir_unary(&B, OP_TANH, ir_binary(&B, OP_MATMUL, x, w1));
  int32_t h2 = ir_unary(&B, OP_TANH, ir_binary(&B, OP_MATMUL, x, w1)); /* the same again */
  int32_t h = ir_scale(&B, ir_binary(&B, OP_ADD, h1, h2), 1.0);
  int32_t lg = ir_binary(&B, OP_MATMUL, h, w2);
  int32_t loss = ir_binary(&B, OP_CROSS_ENTROPY, lg, y);
  ir_add_output(f, "loss", loss, OUT_LOSS, 0);
  Model m = {.name = "m", .fwd = f, .params = ps, .nparams = 2};
  DiagList dl;
  diag_init(&dl, &A, NULL);
  IrFunc *g = autodiff(&A, &m, NULL, 0, &dl);
  cr_assert_not_null(g);
  IrFunc *o = pass_optimize(&A, g);
  cr_assert_not_null(o);
  cr_assert_lt(o->n, g->n);
  cr_assert_eq(o->nout, g->nout);
  for (int k = 0; k < o->nout; k++) {
    cr_assert_eq(o->outs[k].role, g->outs[k].role);
    cr_assert(ir_type_eq(&o->nodes[o->outs[k].value].type, &g->nodes[g->outs[k].value].type));
  }
  int tanh = 0;
  for (int i = 0; i < o->n; i++) tanh += o->nodes[i].op == OP_TANH;
  cr_assert_eq(tanh, 1, "the duplicate tanh(x w1) is merged");
  IrFunc *again = pass_optimize(&A, o);
  cr_assert_str_eq(ir_print(&A, again, NULL, false), ir_print(&A, o, NULL, false), "fixed point");
  tu_golden("tests/golden/ir/opt_step.txt", ir_print(&A, o, NULL, false));
}

/* Folding an elementwise op gives the bits its kernel computes: every
 * elementwise op (that is not impure) folds, on values across the ranges of
 * the kernels' approximations. */
Test(passes, fold_has_the_kernels_bits) {
  static const float xs[] = {0,     1e-6f, -0.3f, 0.39f, 0.41f, -0.7f, 1.5f, 3.5f,
                             -9.0f, 20.0f, -87.5f, 100.0f, 0.1f, -2.75f};
  static const float ys[] = {0.5f, -1.25f, 3.0f, 1e-3f, -7.0f, 0.1f};
  enum { NX = sizeof xs / sizeof xs[0], NY = sizeof ys / sizeof ys[0] };
  int checked_ops = 0;
  for (int op = 0; op < OP_COUNT; op++) {
    const IrOpInfo *info = &ir_op_info[op];
    if (!(info->flags & OPF_EW) || (info->flags & OPF_IMPURE)) continue;
    cr_assert(info->arity == 1 || info->arity == 2, "%s", info->name);
    checked_ops++;
    for (int i = 0; i < NX; i++)
      for (int j = 0; j < (info->arity == 2 ? NY : 1); j++) {
        IrFunc *f = ir_func_new(&A, "f", 1);
        IrBuilder B = tu_builder(f);
        float c[2] = {xs[i], ys[j]};
        IrNode n = {.op = (uint16_t)op, .nin = (uint8_t)info->arity, .attr.f = {0.375}};
        for (int k = 0; k < info->arity; k++) n.in[k] = tu_fill(&B, "f32[4]", c[k]);
        int32_t y = ir_op(&B, n);
        out(f, y);
        IrFunc *g = pass_optimize(&A, f);
        const IrNode *r = res(g, 0);
        cr_assert_eq(r->op, OP_CONST, "%s(%g, %g) folds", info->name, c[0], c[1]);
        float folded = (float)r->attr.f[0];
        float a[2][4], o[4];
        for (int k = 0; k < 4; k++) a[0][k] = c[0], a[1][k] = c[1];
        void *in[2] = {a[0], a[1]};
        KernelCtx kc;
        memset(&kc, 0, sizeof kc);
        cr_assert_eq(kernel_table[op](&kc, f, &f->nodes[y], o, in), 0, "%s", kc.err);
        cr_assert(memcmp(&folded, &o[0], sizeof folded) == 0,
                  "%s(%.9g, %.9g): folded %.9g, kernel %.9g", info->name, c[0], c[1], folded,
                  o[0]);
      }
  }
  cr_assert_geq(checked_ops, 17);
}

/* Sums of a fill fold only when every partial sum is exact (then the
 * kernel's value is n * c, whatever its order); otherwise the kernel runs. */
Test(passes, fold_sums_only_when_exact) {
  static const struct { float c; const char *t; IrOp op; bool folds; double want; } cases[] = {
      {0.5f, "f32[4, 3]", OP_SUM, true, 2.0},
      {0.5f, "f32[4, 3]", OP_MEAN, true, 0.5},
      {3.0f, "f32[4, 3]", OP_SUM, true, 12.0},
      {0.1f, "f32[3, 3]", OP_SUM, false, 0},
      {0.1f, "f32[3, 3]", OP_MEAN, false, 0},
      {-0.0f, "f32[3, 3]", OP_SUM, false, 0},
      {0.0f, "f32[3, 3]", OP_SUM, true, 0.0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    IrFunc *f = ir_func_new(&A, "f", 1);
    IrBuilder B = tu_builder(f);
    out(f, ir_reduce(&B, cases[k].op, tu_fill(&B, cases[k].t, cases[k].c), 0));
    IrFunc *g = pass_optimize(&A, f);
    cr_assert_eq(res(g, 0)->op == OP_CONST, cases[k].folds, "case %zu", k);
    if (cases[k].folds) cr_assert_eq(res(g, 0)->attr.f[0], cases[k].want, "case %zu", k);
  }
  /* sum_to: 3 copies of 0.1 are not exact, 3 copies of 0.25 are */
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  IrType t = ty("f32[1, 4]");
  out(f, ir_typed(&B, OP_SUM_TO, tu_fill(&B, "f32[3, 4]", 0.1f), &t, 0, 0));
  out(f, ir_typed(&B, OP_SUM_TO, tu_fill(&B, "f32[3, 4]", 0.25f), &t, 0, 0));
  IrFunc *g = pass_optimize(&A, f);
  cr_assert_eq(res(g, 0)->op, OP_SUM_TO);
  cr_assert_eq(res(g, 1)->op, OP_CONST);
  cr_assert_eq(res(g, 1)->attr.f[0], 0.75);
}

/* Ops marked OPF_IMPURE in ops.def are never merged nor folded. */
Test(passes, impure_ops_are_never_merged_or_folded) {
  int seen = 0;
  for (int op = 0; op < OP_COUNT; op++) {
    const IrOpInfo *info = &ir_op_info[op];
    if (!(info->flags & OPF_IMPURE)) continue;
    seen++;
    IrFunc *f = ir_func_new(&A, "f", 1);
    IrBuilder B = tu_builder(f);
    IrNode n = {.op = (uint16_t)op, .nin = (uint8_t)info->arity, .attr.f = {0.5}, .name = "v"};
    if (info->arity == 0) n.type = ty("f32[3]");
    for (int k = 0; k < info->arity; k++) n.in[k] = tu_fill(&B, "f32[3]", 1);
    out(f, ir_op(&B, n));
    out(f, ir_op(&B, n));
    IrFunc *g = pass_optimize(&A, f);
    cr_assert_neq(g->outs[0].value, g->outs[1].value, "%s merged", info->name);
    cr_assert_eq(res(g, 0)->op, op, "%s folded", info->name);
  }
  cr_assert_geq(seen, 5);
}

/* pass_transb: a large A B^T with a 2-D B reads one transpose of B; small
 * products, batched B, a transposed A and products cut by columns (m < n)
 * are left alone; the outputs are remapped. */
Test(passes, transb_transposes_a_large_weight_once) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[32, 64, 128]"), w = tu_input(&B, "w", 0, "f32[512, 128]");
  int32_t xs = tu_input(&B, "xs", 0, "f32[4, 128]"), b3 = tu_input(&B, "b3", 0, "f32[32, 64, 128]");
  int32_t xt = tu_input(&B, "xt", 0, "f32[128, 2048]"), wide = tu_input(&B, "wd", 0, "f32[4096, 128]");
  out(f, ir_matmul(&B, x, w, false, true));     /* rewritten */
  out(f, ir_matmul(&B, xs, w, false, true));    /* m 4 < n 512 */
  out(f, ir_matmul(&B, x, b3, false, true));    /* batched B */
  out(f, ir_matmul(&B, xt, w, true, true));     /* transposed A */
  out(f, ir_matmul(&B, x, wide, false, true));  /* m 2048 < n 4096: cut by columns */
  cr_assert(!B.failed, "%s", B.err);
  IrFunc *g = pass_transb(&A, f);
  cr_assert(g);
  cr_assert_eq(g->n, f->n + 1, "one transpose node");
  const IrNode *m = res(g, 0), *t = &g->nodes[m->in[1]];
  cr_assert_eq(m->op, OP_MATMUL);
  cr_assert_eq(m->attr.i[1], 0, "tb cleared");
  cr_assert_eq(t->op, OP_TRANSPOSE);
  cr_assert(t->attr.i[0] == 1 && t->attr.i[1] == 0);
  cr_assert(t->type.dim[0] == 128 && t->type.dim[1] == 512);
  cr_assert_str_eq(g->nodes[t->in[0]].name, "w");
  cr_assert(m->type.rank == 3 && m->type.dim[2] == 512, "the product's type is kept");
  for (int k = 1; k < 5; k++) {
    cr_assert_eq(res(g, k)->attr.i[1], 1, "output %d left alone", k);
    cr_assert_neq(g->nodes[res(g, k)->in[1]].op, OP_TRANSPOSE, "output %d", k);
  }
}

/* pass_bias: a linear layer's add becomes the product's third input, and
 * the step computes the same bits with it as without (at 1 and 3 threads,
 * a product large enough to be cut into blocks by rows and by columns). */
Test(passes, bias_added_by_the_product) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[16, 130, 96]"), w = tu_input(&B, "w", 1, "f32[96, 200]");
  int32_t b = tu_input(&B, "b", 2, "f32[200]"), xt = tu_input(&B, "xt", 3, "f32[96, 40]");
  int32_t wide = tu_input(&B, "wd", 4, "f32[96, 3000]"), bw = tu_input(&B, "bw", 5, "f32[3000]");
  int32_t x2 = tu_input(&B, "x2", 6, "f32[40, 96]");
  int32_t kept = ir_matmul(&B, x, w, false, false);
  out(f, ir_binary(&B, OP_ADD, b, kept));                                  /* rewritten */
  out(f, ir_binary(&B, OP_ADD, ir_matmul(&B, x2, wide, false, false), bw)); /* by columns */
  int32_t twice = ir_matmul(&B, x, w, false, false);
  out(f, ir_binary(&B, OP_ADD, b, twice));
  out(f, twice);                                                        /* an output: kept */
  out(f, ir_binary(&B, OP_ADD, ir_matmul(&B, xt, w, true, false), b));  /* transposed A */
  cr_assert(!B.failed, "%s", B.err);
  IrFunc *g = pass_bias(&A, f);
  cr_assert(g);
  cr_assert_eq(res(g, 0)->op, OP_MATMUL);
  cr_assert_eq(res(g, 0)->nin, 3);
  cr_assert_str_eq(g->nodes[res(g, 0)->in[2]].name, "b");
  cr_assert(res(g, 0)->type.rank == 3 && res(g, 0)->type.dim[2] == 200);
  cr_assert_eq(res(g, 1)->op, OP_MATMUL);
  cr_assert_eq(res(g, 1)->nin, 3);
  cr_assert_eq(res(g, 2)->op, OP_ADD, "the product is an output too");
  cr_assert_eq(res(g, 4)->op, OP_ADD, "a transposed A is left alone");
  /* same bits */
  float *in[7];
  for (int k = 0; k < 7; k++) {
    const IrType *t = &f->nodes[(int32_t[]){x, w, b, xt, wide, bw, x2}[k]].type;
    int64_t nel = ir_numel(t);
    in[k] = malloc((size_t)nel * 4);
    for (int64_t i = 0; i < nel; i++) in[k][i] = (float)((i * 7919 + k * 104729) % 2003) / 1001.0f - 1.0f;
  }
  for (int threads = 1; threads <= 3; threads += 2) {
    Pool *pool = threads > 1 ? pool_new(ra_alloc_default(), threads) : NULL;
    const IrFunc *fs[2] = {f, g};
    float *res0[5] = {0};
    for (int v = 0; v < 2; v++) {
      MemPlan *p = plan_memory(&A, fs[v]);
      Exec *ex = exec_new(ra_alloc_default(), fs[v], p, NULL, NULL, 7);
      cr_assert(p && ex);
      for (int k = 0; k < 7; k++) ex->inputs[k] = in[k];
      KernelCtx kc;
      memset(&kc, 0, sizeof kc);
      kc.pool = pool;
      kc.threads = threads;
      cr_assert_eq(exec_run(ex, &kc), 0, "%s", kc.err);
      for (int o = 0; o < 5; o++) {
        const IrOutput *oo = &fs[v]->outs[o];
        size_t bytes = ir_bytes(&fs[v]->nodes[oo->value].type);
        if (!v) {
          res0[o] = malloc(bytes);
          memcpy(res0[o], exec_ptr(ex, oo->value), bytes);
        } else {
          cr_assert(memcmp(res0[o], exec_ptr(ex, oo->value), bytes) == 0,
                    "output %d differs with the bias in the product (%d threads)", o, threads);
          free(res0[o]);
        }
      }
      exec_free(ex);
    }
    pool_free(pool);
  }
  for (int k = 0; k < 7; k++) free(in[k]);
}
