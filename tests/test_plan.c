/* test_plan.c - the memory plan: storage kinds, views, constants, and (checked
 * exhaustively on several functions) that no two values live at the same
 * time share bytes of the arena. */
#include <criterion/criterion.h>

#include "../compiler/autodiff.h"
#include "../runtime/exec/exec.h"
#include "irutil.h"

#define ty tu_type


static Arena A;
static void setup(void) { arena_init(&A, ra_alloc_default()); }
static void teardown(void) { arena_free(&A); }
TestSuite(plan, .init = setup, .fini = teardown);


static size_t al(size_t n) { return (n + 63) & ~(size_t)63; }

/* Recomputes lifetimes independently and checks every pair of arena
 * values; returns the naive size. */
static size_t check_plan(const IrFunc *f, const MemPlan *p) {
  int n = f->n;
  int32_t *root = calloc((size_t)n, sizeof *root);
  int32_t *end = calloc((size_t)n, sizeof *end);
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &f->nodes[i];
    root[i] = i;
    end[i] = i;
    if (nd->op == OP_RESHAPE) {
      cr_assert_eq(p->kind[i], STORE_VIEW, "%%%d is a view", i);
      root[i] = root[nd->in[0]];
      cr_assert_eq(p->offset[i], root[i], "%%%d views %%%d", i, root[i]);
      cr_assert_neq(p->kind[root[i]], STORE_VIEW);
    }
    for (int k = 0; k < nd->nin; k++)
      if (end[root[nd->in[k]]] < i) end[root[nd->in[k]]] = i;
  }
  for (int i = 0; i < f->nout; i++) end[root[f->outs[i].value]] = n;
  /* a chain runs slice by slice through all its nodes: what is made or
   * last read inside it lives from its start or to its end */
  int32_t *from = calloc((size_t)n, sizeof *from), *read = calloc((size_t)n, sizeof *read);
  for (int i = 0; i < n; i++) {
    from[i] = i;
    read[i] = end[i];
    for (int c = 0; c < p->nchains; c++) {
      const Chain *ch = &p->chains[c];
      if (i >= ch->first && i <= ch->last) from[i] = ch->first;
      if (end[i] >= ch->first && end[i] <= ch->last) {
        if (i >= ch->first && p->kind[i] == STORE_SCRATCH) {
          cr_assert_leq(p->offset[i] + (int64_t)chain_slice_bytes(ch, &f->nodes[i].type),
                        (int64_t)ch->scratch, "%%%d fits its chain's scratch", i);
          int64_t a0 = p->offset[i], a1 = a0 + (int64_t)chain_slice_bytes(ch, &f->nodes[i].type);
          for (int j = ch->first; j < i; j++) {
            if (p->kind[j] != STORE_SCRATCH) continue;
            int64_t b0 = p->offset[j], b1 = b0 + (int64_t)chain_slice_bytes(ch, &f->nodes[j].type);
            cr_assert(a1 <= b0 || b1 <= a0, "scratch %%%d and %%%d overlap", j, i);
          }
        }
        end[i] = ch->last;
      }
    }
    cr_assert(p->kind[i] != STORE_SCRATCH || end[i] < n, "%%%d: an output in scratch", i);
  }
  size_t naive = 0;
  for (int i = 0; i < n; i++) {
    const IrNode *nd = &f->nodes[i];
    StoreKind want = nd->op == OP_PARAM ? STORE_PARAM
                     : nd->op == OP_INPUT ? STORE_INPUT
                     : nd->op == OP_CONST ? STORE_CONST
                     : nd->op == OP_RESHAPE ? STORE_VIEW
                                            : STORE_ARENA;
    if (want == STORE_ARENA && p->kind[i] == STORE_SCRATCH) {
      const Chain *ch = NULL;
      for (int c = 0; c < p->nchains; c++)
        if (i >= p->chains[c].first && i <= p->chains[c].last) ch = &p->chains[c];
      cr_assert(ch && end[i] <= ch->last, "%%%d in scratch is read after its chain", i);
      continue;
    }
    cr_assert_eq(p->kind[i], want, "%%%d kind", i);
    if (want == STORE_CONST) {
      cr_assert_eq(p->offset[i] % 64, 0);
      cr_assert_leq((size_t)p->offset[i] + ir_bytes(&nd->type), p->const_bytes);
      for (int j = 0; j < i; j++)
        if (p->kind[j] == STORE_CONST)
          cr_assert(p->offset[j] + (int64_t)ir_bytes(&f->nodes[j].type) <= p->offset[i],
                    "constants %%%d and %%%d overlap", j, i);
    }
    if (want != STORE_ARENA) continue;
    naive += al(ir_bytes(&nd->type));
    cr_assert_eq(p->offset[i] % 64, 0, "%%%d aligned", i);
    cr_assert_leq((size_t)p->offset[i] + ir_bytes(&nd->type), p->arena_bytes, "%%%d fits", i);
    cr_assert_geq(p->last_use[i], read[i], "%%%d lives long enough", i);
    for (int j = 0; j < i; j++) {
      if (p->kind[j] != STORE_ARENA) continue;
      bool live_together = end[j] >= from[i]; /* j still needed when i is written */
      if (!live_together) continue;
      int64_t a0 = p->offset[i], a1 = a0 + (int64_t)ir_bytes(&nd->type);
      int64_t b0 = p->offset[j], b1 = b0 + (int64_t)ir_bytes(&f->nodes[j].type);
      cr_assert(a1 <= b0 || b1 <= a0, "%%%d [%lld, %lld) and %%%d [%lld, %lld) overlap while both live", i,
                (long long)a0, (long long)a1, j, (long long)b0, (long long)b1);
    }
  }
  cr_assert_leq(p->arena_bytes, naive, "peak <= naive");
  free(root);
  free(end);
  free(from);
  free(read);
  return naive;
}

/* The most arena bytes live at any one node: no placement does better. */
static size_t max_live(const IrFunc *f, const MemPlan *p) {
  size_t best = 0;
  for (int t = 0; t < f->n; t++) {
    size_t live = 0;
    for (int i = 0; i <= t; i++)
      if (p->kind[i] == STORE_ARENA && p->last_use[i] >= t) live += al(ir_bytes(&f->nodes[i].type));
    if (live > best) best = live;
  }
  return best;
}

Test(plan, chain_reuses_memory) {
  IrFunc *f = ir_func_new(&A, "chain", 1);
  IrBuilder B = tu_builder(f);
  int32_t v = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty("f32[1000]")});
  for (int i = 0; i < 10; i++) v = ir_unary(&B, i % 2 ? OP_TANH : OP_RELU, v);
  ir_add_output(f, "y", v, OUT_OUTPUT, 0);
  MemPlan *p = plan_memory(&A, f);
  cr_assert_not_null(p);
  size_t naive = check_plan(f, p);
  cr_assert_eq(naive, 10 * al(4000));
  cr_assert_eq(p->arena_bytes, 2 * al(4000), "two buffers ping-pong");
  cr_assert_eq(p->last_use[v], f->n, "outputs live to the end");
}

Test(plan, views_extend_lifetimes) {
  IrFunc *f = ir_func_new(&A, "views", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty("f32[4, 6]")});
  int32_t w = ir_op(&B, (IrNode){.op = OP_PARAM, .name = "w", .type = ty("f32[24]")});
  int32_t a = ir_unary(&B, OP_TANH, x);
  int32_t r1 = tu_reshape(&B, a, "f32[24]");
  int32_t r2 = tu_reshape(&B, r1, "f32[6, 4]");
  int32_t wv = tu_reshape(&B, w, "f32[4, 6]");
  int32_t c = ir_unary(&B, OP_RELU, x);
  int32_t d = ir_unary(&B, OP_SIGMOID, c);
  int32_t e = ir_binary(&B, OP_ADD, ir_unary(&B, OP_NEG, r2), tu_reshape(&B, d, "f32[6, 4]"));
  int32_t g = ir_binary(&B, OP_MUL, wv, x);
  static const float data[5] = {1, 2, 3, 4, 5};
  int32_t k1 = ir_op(&B, (IrNode){.op = OP_CONST, .data = data, .type = ty("f32[5]")});
  int32_t k2 = ir_op(&B, (IrNode){.op = OP_CONST, .attr.f = {2}, .type = ty("f32[100]")});
  ir_add_output(f, "e", e, OUT_OUTPUT, 0);
  ir_add_output(f, "g", g, OUT_OUTPUT, 1);
  ir_add_output(f, "k1", k1, OUT_OUTPUT, 2);
  ir_add_output(f, "k2", k2, OUT_OUTPUT, 3);
  MemPlan *p = plan_memory(&A, f);
  check_plan(f, p);
  cr_assert_eq(p->kind[r2], STORE_VIEW);
  cr_assert_eq(p->offset[r2], a, "a view of a view names the root");
  cr_assert_eq(p->offset[wv], w);
  cr_assert_geq(p->last_use[a], e - 1, "the root lives while its views are read");
  cr_assert_eq(p->offset[k1], 0);
  cr_assert_eq(p->offset[k2], 64);
  cr_assert_eq(p->const_bytes, 64 + al(400));
}

/* Builds the gradient of a small attention-like model. */
static IrFunc *attention_step(bool opt) {
  IrFunc *f = ir_func_new(&A, "att.fwd", 3);
  IrBuilder B = tu_builder(f);
  int32_t x = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty("f32[3, 5, 8]")});
  int32_t y = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "y", .attr.i = {1}, .type = ty("i32[3, 5]")});
  static ParamInfo ps[5];
  const char *names[5] = {"wq", "wk", "wv", "wo", "out"};
  int32_t w[5];
  for (int k = 0; k < 5; k++) {
    ps[k].path = names[k];
    ps[k].type = ty(k == 4 ? "f32[8, 4]" : "f32[8, 8]");
    w[k] = ir_op(&B, (IrNode){.op = OP_PARAM, .name = names[k], .attr.i = {k}, .type = ps[k].type});
  }
  int32_t h[3];
  for (int k = 0; k < 3; k++) {
    int32_t p = tu_reshape(&B, ir_binary(&B, OP_MATMUL, x, w[k]), "f32[3, 5, 2, 4]");
    h[k] = ir_op(&B, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {p}, .attr.i = {0, 2, 1, 3}});
  }
  int32_t s = ir_op(&B, (IrNode){.op = OP_MATMUL, .nin = 2, .in = {h[0], h[1]}, .attr.i = {0, 1}});
  s = ir_op(&B, (IrNode){.op = OP_CAUSAL_MASK, .nin = 1, .in = {s}, .attr.f = {-INFINITY}});
  s = ir_unary(&B, OP_SOFTMAX, s);
  int32_t a = ir_binary(&B, OP_MATMUL, s, h[2]);
  a = ir_op(&B, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {a}, .attr.i = {0, 2, 1, 3}});
  a = tu_reshape(&B, a, "f32[3, 5, 8]");
  int32_t o = ir_unary(&B, OP_GELU, ir_binary(&B, OP_ADD, x, ir_binary(&B, OP_MATMUL, a, w[3])));
  int32_t lg = ir_binary(&B, OP_MATMUL, o, w[4]);
  ir_add_output(f, "loss", ir_binary(&B, OP_CROSS_ENTROPY, lg, y), OUT_LOSS, 0);
  ir_add_output(f, "logits", lg, OUT_PRED, 0);
  Model m = {.name = "att", .fwd = f, .params = ps, .nparams = 5};
  DiagList dl;
  diag_init(&dl, &A, NULL);
  IrFunc *g = autodiff(&A, &m, NULL, 0, &dl);
  cr_assert_not_null(g);
  return opt ? pass_optimize(&A, g) : g;
}

Test(plan, attention_step_exhaustive) {
  for (int opt = 0; opt < 2; opt++) {
    IrFunc *f = attention_step(opt);
    MemPlan *p = plan_memory(&A, f);
    cr_assert_not_null(p);
    size_t naive = check_plan(f, p);
    cr_assert_lt(p->arena_bytes, naive, "reuse happens");
    /* largest first: 5% above the bound on this small function (placing in
     * node order, best fit, was 13% above); on the benchmark models and the
     * examples it reaches the bound (rac ir --grad --plan, the goldens) */
    size_t live = max_live(f, p);
    cr_assert_leq(p->arena_bytes * 100, live * 106, "peak %zu, %zu bytes live at most",
                  p->arena_bytes, live);
  }
}

/* Random DAGs: any shape of liveness. */
Test(plan, random_functions) {
  uint64_t s = 12345;
  for (int round = 0; round < 30; round++) {
    IrFunc *f = ir_func_new(&A, "rnd", 1);
    IrBuilder B = tu_builder(f);
    const char *types[3] = {"f32[7]", "f32[100]", "f32[33]"};
    int32_t base[3];
    for (int k = 0; k < 3; k++) base[k] = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty(types[k])});
    int32_t last[3] = {base[0], base[1], base[2]};
    for (int i = 0; i < 60; i++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      int k = (int)((s >> 33) % 3), pick = (int)((s >> 40) % 4);
      int32_t other = pick == 0 ? base[k] : last[k];
      if (pick == 3) last[k] = tu_reshape(&B, last[k], types[k]);
      else last[k] = ir_binary(&B, OP_ADD, last[k], other);
      if ((s >> 50) % 7 == 0) ir_add_output(f, "o", last[k], OUT_OUTPUT, f->nout);
    }
    ir_add_output(f, "end", last[0], OUT_OUTPUT, f->nout);
    check_plan(f, plan_memory(&A, f));
  }
}

Test(plan, print) {
  IrFunc *f = ir_func_new(&A, "p", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty("f32[16]")});
  int32_t c = ir_op(&B, (IrNode){.op = OP_CONST, .attr.f = {1}, .type = ty("f32[16]")});
  int32_t a = ir_binary(&B, OP_ADD, x, c);
  int32_t r = tu_reshape(&B, a, "f32[4, 4]");
  int32_t t = ir_unary(&B, OP_TANH, r);
  ir_add_output(f, "t", t, OUT_OUTPUT, 0);
  MemPlan *p = plan_memory(&A, f);
  char *text = plan_print(&A, f, p);
  cr_assert_not_null(text);
  tu_golden("tests/golden/ir/plan_small.txt", text);
  cr_assert_not_null(strstr(text, "peak 128 bytes (0.00 MiB), naive 128 bytes"));
}

/* exec_redirect: an output computed into the caller's buffer, views of it
 * read there; anything else refused. */
Test(plan, redirected_outputs) {
  IrFunc *f = ir_func_new(&A, "redirect", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty("f32[2, 3]")});
  int32_t a = ir_unary(&B, OP_NEG, x);
  int32_t y = ir_unary(&B, OP_SQUARE, a);
  int32_t v = tu_reshape(&B, y, "f32[6]");
  int32_t z = ir_binary(&B, OP_ADD, v, v);
  ir_add_output(f, "y", y, OUT_OUTPUT, 0);
  ir_add_output(f, "z", z, OUT_OUTPUT, 1);
  MemPlan *p = plan_memory(&A, f);
  cr_assert(p);
  Exec *ex = exec_new(ra_alloc_default(), f, p, NULL, NULL, 1);
  cr_assert(ex);
  float in[6] = {1, -2, 3, -4, 5, -6}, mine[6] = {0};
  ex->inputs[0] = in;
  cr_assert_eq(exec_redirect(ex, x, mine), -1, "an input");
  cr_assert_eq(exec_redirect(ex, a, mine), -1, "a value that dies inside the function");
  cr_assert_eq(exec_redirect(ex, v, mine), -1, "a view");
  cr_assert_eq(exec_redirect(ex, y, NULL), -1);
  cr_assert_eq(exec_redirect(ex, y, mine), 0);
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);
  kc.threads = 1;
  cr_assert_eq(exec_run(ex, &kc), 0, "%s", kc.err);
  cr_assert_eq(exec_ptr(ex, y), (void *)mine);
  cr_assert_eq(exec_ptr(ex, v), (void *)mine, "a view of it reads the caller's buffer");
  const float *zz = exec_ptr(ex, z);
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(mine[i], in[i] * in[i]);
    cr_assert_eq(zz[i], 2 * in[i] * in[i]);
  }
  exec_free(ex);
}
