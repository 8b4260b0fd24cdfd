/* test_chain.c - chains (compiler/chain.c): which runs of nodes become
 * chains and which values go to scratch; an attention step's gradients
 * with and without chains, bit for bit on 1 to 3 threads (causal or not);
 * every example's training steps the same way. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../compiler/autodiff.h"
#include "../runtime/exec/exec.h"
#include "../runtime/exec/pool.h"
#include "irutil.h"
#include "ra.h"
#include "trainutil.h"

#define ty tu_type

static Arena A;
static void setup(void) { arena_init(&A, ra_alloc_default()); }
static void teardown(void) { arena_free(&A); }
TestSuite(chain, .init = setup, .fini = teardown);

static int32_t mm(IrBuilder *B, int32_t a, int32_t b, bool ta, bool tb) {
  return ir_op(B, (IrNode){.op = OP_MATMUL, .nin = 2, .in = {a, b}, .attr.i = {ta, tb}});
}

/* The chain holding node v, or NULL. */
static const Chain *chain_of(const MemPlan *p, int32_t v) {
  for (int c = 0; c < p->nchains; c++)
    if (v >= p->chains[c].first && v <= p->chains[c].last) return &p->chains[c];
  return NULL;
}

/* softmax(Q K^T) V over [2, 3, 8, 4] heads, plus a bias on the way out: one
 * chain of four nodes over the two leading dims; the scores are scratch,
 * the probabilities (an output) and the result are not. */
Test(chain, attention_is_one_chain) {
  IrFunc *f = ir_func_new(&A, "att", 2);
  IrBuilder B = tu_builder(f);
  int32_t q = tu_input(&B, "q", 0, "f32[2, 3, 8, 4]");
  int32_t k = tu_input(&B, "k", 1, "f32[2, 3, 8, 4]");
  int32_t v = tu_input(&B, "v", 2, "f32[2, 3, 8, 4]");
  int32_t bias = ir_op(&B, (IrNode){.op = OP_PARAM, .name = "b", .type = ty("f32[4]")});
  int32_t s = mm(&B, q, k, false, true);
  int32_t p = ir_unary(&B, OP_SOFTMAX, s);
  int32_t o = mm(&B, p, v, false, false);
  int32_t y = ir_binary(&B, OP_ADD, o, bias);
  int32_t t = ir_transpose(&B, y, (const int64_t[]){0, 2, 1, 3});
  ir_add_output(f, "t", t, OUT_OUTPUT, 0);
  ir_add_output(f, "p", p, OUT_OUTPUT, 1);
  MemPlan *pl = plan_memory(&A, f);
  cr_assert_not_null(pl);
  cr_assert_eq(pl->nchains, 1);
  const Chain *c = &pl->chains[0];
  cr_assert_eq(c->first, s);
  cr_assert_eq(c->last, y, "the transpose is not per item");
  cr_assert_eq(c->lead, 1, "all three heads of an example fit one slice");
  cr_assert_eq(c->items, 2);
  cr_assert_eq(c->per, 1);
  cr_assert_eq(c->slices, 2);
  cr_assert_eq(pl->kind[s], STORE_SCRATCH, "the scores are read only inside");
  cr_assert_eq(pl->kind[o], STORE_SCRATCH);
  cr_assert_eq(pl->kind[p], STORE_ARENA, "an output");
  cr_assert_eq(pl->kind[y], STORE_ARENA, "read after the chain");
  cr_assert_eq(c->scratch, 3 * 8 * 8 * 4 + 3 * 8 * 4 * 4);
  cr_assert_eq(pl->scratch_bytes, c->scratch);
  /* the slice function: operands q, k, v, b as leaves, the bias whole */
  cr_assert_eq(c->nouter, 4);
  cr_assert_eq(c->slice->n, 8);
  cr_assert_eq(c->slice->nodes[c->nouter].type.dim[0], 1);
  cr_assert_eq(c->slice->nodes[c->nouter].type.dim[1], 3);
  for (int e = 0; e < c->nouter; e++)
    cr_assert_eq(c->ext_sliced[e], c->ext[e] != bias, "operand %d", e);
  /* without chains: none, and no scratch */
  MemPlan *flat = plan_memory_chains(&A, f, false);
  cr_assert_eq(flat->nchains, 0);
  cr_assert_eq(flat->kind[s], STORE_ARENA);
  char *text = plan_print(&A, f, pl);
  cr_assert(strstr(text, "chain %4..%7 over 1 dims of f32[2, 3, 8, 8]: 2 items, 1 per slice"), "%s",
            text);
  cr_assert(strstr(text, "matmul scratch 0 +768 until 5"), "%s", text);
}

/* What breaks a chain or stays out of one. */
Test(chain, what_stays_out) {
  IrFunc *f = ir_func_new(&A, "out", 2);
  IrBuilder B = tu_builder(f);
  int32_t q = tu_input(&B, "q", 0, "f32[2, 3, 8, 4]");
  int32_t w = ir_op(&B, (IrNode){.op = OP_PARAM, .name = "w", .type = ty("f32[4, 4]")});
  /* dropout masks are keyed by the index in the whole tensor */
  int32_t s = mm(&B, q, q, false, true);
  int32_t d = ir_op(&B, (IrNode){.op = OP_DROPOUT, .nin = 1, .in = {s}, .attr.f = {0.5}});
  int32_t o = mm(&B, d, q, false, false);
  /* a product with a shared 2-D operand is one GEMM over every row */
  int32_t l = mm(&B, o, w, false, false);
  int32_t g = ir_unary(&B, OP_TANH, l);
  /* a sum over the items */
  IrType t4 = ty("f32[8, 4]");
  int32_t r = ir_typed(&B, OP_SUM_TO, g, &t4, 0, 0);
  ir_add_output(f, "r", r, OUT_OUTPUT, 0);
  MemPlan *pl = plan_memory(&A, f);
  cr_assert_eq(pl->nchains, 0, "chain %d..%d", pl->nchains ? pl->chains[0].first : -1,
               pl->nchains ? pl->chains[0].last : -1);
  /* without the dropout, the two products and the softmax between them */
  IrFunc *h = ir_func_new(&A, "in", 2);
  IrBuilder C = tu_builder(h);
  q = tu_input(&C, "q", 0, "f32[2, 3, 8, 4]");
  s = mm(&C, q, q, false, true);
  d = ir_unary(&C, OP_SOFTMAX, s);
  o = mm(&C, d, q, false, false);
  ir_add_output(h, "o", o, OUT_OUTPUT, 0);
  pl = plan_memory(&A, h);
  cr_assert_eq(pl->nchains, 1);
  cr_assert(chain_of(pl, s) && chain_of(pl, o));

  /* a fused node reads an operand of its result's size flat: one of
   * another shape is not per item (here [6, 64] against [2, 3, 8, 8]) */
  IrFunc *fl = ir_func_new(&A, "flat", 2);
  IrBuilder G = tu_builder(fl);
  q = tu_input(&G, "q", 0, "f32[2, 3, 8, 4]");
  int32_t other = tu_input(&G, "o", 1, "f32[6, 64]");
  s = mm(&G, q, q, false, true);
  IrMicro *m = arena_alloc(&A, sizeof *m);
  *m = (IrMicro){.op = OP_ADD, .nin = 2, .in = {IR_FUSED_EXT(0), IR_FUSED_EXT(1)},
                 .type = fl->nodes[s].type};
  IrFused *fz = arena_alloc(&A, sizeof *fz);
  *fz = (IrFused){.n = 1, .rowop = -1, .ops = m};
  int32_t fa = ir_append(fl, &(IrNode){.op = OP_FUSED, .nin = 2, .in = {s, other},
                                      .type = fl->nodes[s].type, .fused = fz});
  o = mm(&G, fa, q, false, false);
  ir_add_output(fl, "o", o, OUT_OUTPUT, 0);
  pl = plan_memory(&A, fl);
  cr_assert(!chain_of(pl, fa), "the fused node is not per item");
}

/* ---- an attention step's gradients, with and without chains ---- */

/* x [3, T, 16] through one causal (or not) attention of 2 heads of 8 and a
 * classifier, differentiated and compiled. */
static IrFunc *attention_step(int64_t T, bool causal, ParamInfo *ps) {
  char xt[64], yt[64], ht[64];
  snprintf(xt, sizeof xt, "f32[3, %lld, 16]", (long long)T);
  snprintf(yt, sizeof yt, "i32[3, %lld]", (long long)T);
  snprintf(ht, sizeof ht, "f32[3, %lld, 2, 8]", (long long)T);
  IrFunc *f = ir_func_new(&A, "att.fwd", 3);
  IrBuilder B = tu_builder(f);
  int32_t x = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = ty(xt)});
  int32_t y = ir_op(&B, (IrNode){.op = OP_INPUT, .name = "y", .attr.i = {1}, .type = ty(yt)});
  const char *names[5] = {"wq", "wk", "wv", "wo", "out"};
  int32_t w[5];
  for (int k = 0; k < 5; k++) {
    ps[k].path = names[k];
    ps[k].type = ty(k == 4 ? "f32[16, 5]" : "f32[16, 16]");
    ps[k].offset = k * 256;
    w[k] = ir_op(&B, (IrNode){.op = OP_PARAM, .name = names[k], .attr.i = {k}, .type = ps[k].type});
  }
  int32_t h[3];
  for (int k = 0; k < 3; k++)
    h[k] = ir_transpose(&B, tu_reshape(&B, ir_binary(&B, OP_MATMUL, x, w[k]), ht),
                        (const int64_t[]){0, 2, 1, 3});
  int32_t s = ir_scale(&B, mm(&B, h[0], h[1], false, true), 0.35);
  if (causal) s = ir_op(&B, (IrNode){.op = OP_CAUSAL_MASK, .nin = 1, .in = {s}, .attr.f = {-INFINITY}});
  s = ir_unary(&B, OP_SOFTMAX, s);
  int32_t a = ir_transpose(&B, ir_binary(&B, OP_MATMUL, s, h[2]), (const int64_t[]){0, 2, 1, 3});
  a = tu_reshape(&B, a, xt);
  int32_t o = ir_unary(&B, OP_GELU, ir_binary(&B, OP_ADD, x, ir_binary(&B, OP_MATMUL, a, w[3])));
  int32_t lg = ir_binary(&B, OP_MATMUL, o, w[4]);
  ir_add_output(f, "loss", ir_binary(&B, OP_CROSS_ENTROPY, lg, y), OUT_LOSS, 0);
  ir_add_output(f, "probs", s, OUT_HEADS, 0);
  Model m = {.name = "att", .fwd = f, .params = ps, .nparams = 5};
  DiagList dl;
  diag_init(&dl, &A, NULL);
  IrFunc *g = autodiff(&A, &m, NULL, 0, &dl);
  cr_assert_not_null(g);
  IrFunc *c = pass_compile(&A, g, true);
  cr_assert_not_null(c);
  return c;
}

/* Every output's bytes after one run of f on its plan. */
static char *run(const IrFunc *f, const MemPlan *p, float *params, const int64_t *off,
                 void **inputs, int threads, size_t *bytes) {
  Exec *ex = exec_new(ra_alloc_default(), f, p, params, off, 2);
  cr_assert(ex);
  ex->inputs[0] = inputs[0];
  ex->inputs[1] = inputs[1];
  KernelCtx kc = {.pool = threads > 1 ? pool_new(ra_alloc_default(), threads) : NULL,
                  .training = true};
  kc.threads = pool_size(kc.pool);
  cr_assert_eq(exec_run(ex, &kc), 0, "%s", kc.err);
  size_t n = 0;
  for (int i = 0; i < f->nout; i++) n += ir_bytes(&f->nodes[f->outs[i].value].type);
  char *out = arena_alloc(&A, n + 1), *at = out;
  for (int i = 0; i < f->nout; i++) {
    size_t b = ir_bytes(&f->nodes[f->outs[i].value].type);
    memcpy(at, exec_ptr(ex, f->outs[i].value), b);
    at += b;
  }
  *bytes = n;
  pool_free(kc.pool);
  exec_free(ex);
  return out;
}

static void same_bits(int64_t T, bool causal) {
  ParamInfo ps[5];
  memset(ps, 0, sizeof ps);
  IrFunc *f = attention_step(T, causal, ps);
  MemPlan *pc = plan_memory(&A, f), *pf = plan_memory_chains(&A, f, false);
  cr_assert(pc && pf);
  cr_assert_geq(pc->nchains, 2, "forward and backward");
  int scratch = 0;
  for (int i = 0; i < f->n; i++) scratch += pc->kind[i] == STORE_SCRATCH;
  cr_assert_geq(scratch, 2, "the scores and their gradient");
  static float params[5 * 256];
  uint64_t s = 7;
  for (int i = 0; i < 5 * 256; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    params[i] = ((float)(s >> 40) / 16777216.0f - 0.5f) * 0.8f;
  }
  int64_t off[5] = {0, 256, 512, 768, 1024};
  float *x = arena_alloc(&A, (size_t)(3 * T * 16) * sizeof *x);
  int32_t *y = arena_alloc(&A, (size_t)(3 * T) * sizeof *y);
  for (int64_t i = 0; i < 3 * T * 16; i++) x[i] = sinf((float)i * 0.37f);
  for (int64_t i = 0; i < 3 * T; i++) y[i] = (int32_t)(i * 7 % 5);
  void *in[2] = {x, y};
  size_t nref = 0;
  char *ref = run(f, pf, params, off, in, 1, &nref);
  for (int t = 1; t <= 3; t++) {
    size_t n = 0;
    char *got = run(f, pc, params, off, in, t, &n);
    cr_assert_eq(n, nref);
    cr_assert(memcmp(got, ref, n) == 0, "T %lld causal %d, %d threads: outputs differ",
              (long long)T, causal, t);
  }
}

Test(chain, attention_gradients_keep_the_bits) {
  same_bits(12, false);
  same_bits(32, false);
}

/* T 64: the products are triangular (blocks of 16 rows) */
Test(chain, causal_gradients_keep_the_bits) {
  same_bits(12, true);
  same_bits(64, true);
}

/* ---- every example, with and without chains ---- */

/* 3 steps of spec without chains on one thread and with them on threads */
static void example_bits(const char *spec, const char *threads) {
  TuTrain a = {.spec = spec, .ckpt = tu_tmp("rac_chain_a.safetensors"), .steps = "3",
               .opt = {{"threads", "1"}, {"seed", "5"}, {"chains", "0"}}};
  TuTrain b = {.spec = spec, .ckpt = tu_tmp("rac_chain_b.safetensors"), .steps = "3",
               .opt = {{"threads", threads}, {"seed", "5"}, {"chains", "1"}}};
  tu_train(&a);
  tu_train(&b);
  cr_assert_eq(b.n, 3, "%s", spec);
  char what[256];
  snprintf(what, sizeof what, "%s without chains on 1 thread, with them on %s", spec, threads);
  tu_same_bits(&a, &b, what);
}

Test(chain, every_example_trains_to_the_same_bits, .timeout = 300) {
  const char *specs[] = {"examples/reverse.ra", "examples/fortunes.ra", "examples/licenses.ra",
                         "examples/charlm.ra", "bench/encoder.ra"};
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
    example_bits(specs[i], "2");
    example_bits(specs[i], "3");
  }
}
