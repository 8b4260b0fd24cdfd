/* test_fuse.c - the fusion pass: random chains of elementwise ops (with
 * broadcasting, dropout, masks, row ops and bias sums) give the same bits
 * fused and unfused on one and two threads; what stays materialised; the
 * printed form; and every example's training steps fused and unfused, bit
 * for bit. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../compiler/program.h"
#include "../runtime/exec/exec.h"
#include "../runtime/exec/pool.h"
#include "irutil.h"
#include "ra.h"
#include "trainutil.h"

static Arena A;
static void setup(void) { arena_init(&A, ra_alloc_default()); }
static void teardown(void) { arena_free(&A); }
TestSuite(fuse, .init = setup, .fini = teardown);

static int count_op(const IrFunc *f, IrOp op) {
  int c = 0;
  for (int i = 0; i < f->n; i++) c += f->nodes[i].op == op;
  return c;
}

/* ---- random chains ---- */

typedef struct Gen {
  IrFunc *f;
  IrBuilder B;
  uint64_t s;
  int nparams;
  float *pv;          /* parameter values, by index, PMAX floats each */
  int64_t off[32];
} Gen;

#define PMAX 4096

static uint32_t rnd(Gen *g, uint32_t n) {
  g->s = g->s * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(g->s >> 33) % n;
}

static float rndf(Gen *g, float lo, float hi) {
  return lo + (hi - lo) * (float)rnd(g, 1u << 24) / 16777216.0f;
}

/* A parameter of type t with values in [lo, hi). */
static int32_t leaf(Gen *g, IrType t, float lo, float hi) {
  int k = g->nparams++;
  cr_assert(k < 32);
  t.batched = 0;
  int32_t v = ir_op(&g->B, (IrNode){.op = OP_PARAM, .name = "p", .attr.i = {k}, .type = t});
  g->off[k] = (int64_t)k * PMAX;
  for (int64_t i = 0; i < ir_numel(&t); i++) g->pv[g->off[k] + i] = rndf(g, lo, hi);
  return v;
}

/* A type that broadcasts to s: a suffix of its dims, some set to 1. */
static IrType bcast_of(Gen *g, const IrType *s) {
  IrType t = *s;
  int drop = (int)rnd(g, (uint32_t)s->rank + 1);
  t.rank = (uint8_t)(s->rank - drop);
  for (int j = 0; j < t.rank; j++) {
    t.dim[j] = s->dim[j + drop];
    if (rnd(g, 4) == 0) t.dim[j] = 1;
  }
  for (int j = t.rank; j < IR_MAX_RANK; j++) t.dim[j] = 0;
  return t;
}

static const IrOp unary_ops[] = {OP_NEG, OP_SCALE, OP_SQUARE, OP_RELU, OP_GELU,
                                 OP_TANH, OP_SIGMOID, OP_SILU};
static const IrOp binary_ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV};
static const IrOp grad_ops[] = {OP_RELU_GRAD, OP_GELU_GRAD, OP_TANH_GRAD, OP_SIGMOID_GRAD,
                                OP_SILU_GRAD};
#define NA(a) ((uint32_t)(sizeof a / sizeof a[0]))

/* A random chain over shape s from value x; vals collects what it made.
 * Values stay finite (no NaN: the kernels' exp takes finite arguments):
 * operands other than the chain are parameters in [-2, 2) (divisors in
 * [0.5, 2)) except for add and sub, and square comes at most twice. */
static int32_t chain(Gen *g, const IrType *s, int32_t x, int len, int32_t *vals, int *nv) {
  bool square = s->rank >= 2 && s->dim[s->rank - 1] == s->dim[s->rank - 2];
  int squares = 0;
  for (int k = 0; k < len; k++) {
    uint32_t kind = rnd(g, 6);
    int32_t y;
    if (kind == 0) {
      IrOp op = unary_ops[rnd(g, NA(unary_ops))];
      if (op == OP_SQUARE && ++squares > 2) op = OP_TANH;
      y = op == OP_SCALE ? ir_scale(&g->B, x, rndf(g, -2, 2)) : ir_unary(&g->B, op, x);
    } else if (kind == 1 || kind == 2) {
      IrOp op = binary_ops[rnd(g, NA(binary_ops))];
      int32_t o;
      if (*nv > 0 && (op == OP_ADD || op == OP_SUB) && rnd(g, 3) == 0) o = vals[rnd(g, (uint32_t)*nv)];
      else o = leaf(g, bcast_of(g, s), op == OP_DIV ? 0.5f : -2, 2);
      y = rnd(g, 2) || op == OP_DIV ? ir_binary(&g->B, op, x, o) : ir_binary(&g->B, op, o, x);
    } else if (kind == 3) {
      IrOp op = grad_ops[rnd(g, NA(grad_ops))];
      int32_t a = leaf(g, *s, -2, 2);
      y = ir_binary(&g->B, op, a, x);
    } else if (kind == 4) {
      IrNode n = {.op = rnd(g, 2) ? OP_DROPOUT : OP_DROPOUT_GRAD, .nin = 1, .in = {x},
                  .attr.f = {rnd(g, 4) == 0 ? 0.0 : 0.05 + 0.5 * rndf(g, 0, 1)},
                  .attr.i = {rnd(g, 3)}};
      y = ir_op(&g->B, n);
    } else if (square) {
      IrNode n = {.op = OP_CAUSAL_MASK, .nin = 1, .in = {x}, .attr.f = {rnd(g, 2) ? -1e9 : 0}};
      y = ir_op(&g->B, n);
    } else {
      y = ir_unary(&g->B, OP_TANH, x);
    }
    cr_assert(y >= 0, "%s", g->B.err);
    if (g->f->nodes[y].type.rank != s->rank) continue;
    vals[(*nv)++] = y;
    x = y;
  }
  return x;
}

/* Runs f (optimised, fused or not) on threads threads; the bytes of every
 * output, concatenated, in *bytes. */
static char *run_func(Gen *g, const IrFunc *f, bool fuse, int threads, size_t *bytes,
                      int *nfused) {
  IrFunc *h = pass_compile(&A, f, fuse);
  cr_assert(h);
  if (nfused) *nfused = count_op(h, OP_FUSED);
  MemPlan *p = plan_memory(&A, h);
  cr_assert(p);
  Exec *ex = exec_new(ra_alloc_default(), h, p, g->pv, g->off, 0);
  cr_assert(ex);
  KernelCtx kc = {.pool = threads > 1 ? pool_new(ra_alloc_default(), threads) : NULL,
                  .seed = 99, .step = 3, .training = true};
  kc.threads = pool_size(kc.pool);
  cr_assert_eq(exec_run(ex, &kc), 0, "%s", kc.err);
  size_t n = 0;
  for (int i = 0; i < h->nout; i++) n += ir_bytes(&h->nodes[h->outs[i].value].type);
  char *out = arena_alloc(&A, n + 1), *at = out;
  for (int i = 0; i < h->nout; i++) {
    size_t b = ir_bytes(&h->nodes[h->outs[i].value].type);
    memcpy(at, exec_ptr(ex, h->outs[i].value), b);
    at += b;
  }
  *bytes = n;
  pool_free(kc.pool);
  exec_free(ex);
  return out;
}

/* One random function: a chain, maybe a row op or a bias sum with an
 * epilogue, and outputs (sometimes an intermediate as well). */
static IrFunc *random_func(Gen *g, uint64_t seed) {
  g->f = ir_func_new(&A, "r", 1);
  g->B = tu_builder(g->f);
  g->s = seed * 0x9E3779B97F4A7C15ull + 1;
  g->nparams = 0;
  IrType s;
  memset(&s, 0, sizeof s);
  s.dtype = IR_F32;
  s.rank = (uint8_t)(1 + rnd(g, 3));
  for (int j = 0; j < s.rank; j++) s.dim[j] = 1 + rnd(g, j == s.rank - 1 ? 40 : 6);
  if (s.rank >= 2 && rnd(g, 2)) s.dim[s.rank - 2] = s.dim[s.rank - 1] = 2 + rnd(g, 9);
  int32_t vals[64];
  int nv = 0;
  int32_t x = leaf(g, s, -2, 2);
  vals[nv++] = x;
  x = chain(g, &s, x, 1 + (int)rnd(g, 7), vals, &nv);
  uint32_t tail = rnd(g, 7);
  int32_t y = x;
  if (tail == 0) y = ir_unary(&g->B, OP_SOFTMAX, x);
  if (tail == 1) y = ir_op(&g->B, (IrNode){.op = OP_LAYERNORM, .nin = 1, .in = {x}, .attr.f = {1e-5}});
  if (tail == 2) y = ir_op(&g->B, (IrNode){.op = OP_LAYERNORM_GRAD, .nin = 2, .in = {leaf(g, s, -2, 2), x}, .attr.f = {1e-5}});
  if (tail == 3) y = ir_binary(&g->B, OP_SOFTMAX_GRAD, leaf(g, s, 0, 1), x);
  if (tail <= 3 && rnd(g, 2)) {
    int32_t ev[64];
    int ne = 0;
    y = chain(g, &s, y, 1 + (int)rnd(g, 4), ev, &ne);
  }
  if (tail == 4 && s.rank >= 2) {
    IrType t = s;
    t.rank = (uint8_t)(1 + rnd(g, (uint32_t)s.rank - 1));
    for (int j = 0; j < t.rank; j++) t.dim[j] = s.dim[s.rank - t.rank + j];
    for (int j = t.rank; j < IR_MAX_RANK; j++) t.dim[j] = 0;
    y = ir_typed(&g->B, OP_SUM_TO, x, &t, 0, 0);
  }
  cr_assert(y >= 0, "%s", g->B.err);
  cr_assert_eq(ir_add_output(g->f, "y", y, OUT_OUTPUT, 0), 0);
  if (nv > 2 && rnd(g, 3) == 0)
    cr_assert_eq(ir_add_output(g->f, "mid", vals[1 + rnd(g, (uint32_t)nv - 2)], OUT_OUTPUT, 1), 0);
  return g->f;
}

Test(fuse, random_chains_fused_and_unfused_give_the_same_bits) {
  Gen g;
  memset(&g, 0, sizeof g);
  g.pv = arena_alloc(&A, 32 * PMAX * sizeof(float));
  cr_assert(g.pv);
  int fused_funcs = 0, row_fused = 0;
  for (uint64_t seed = 1; seed <= 400; seed++) {
    IrFunc *f = random_func(&g, seed);
    size_t nu = 0, nf = 0, n2 = 0;
    int nfused = 0;
    char *u = run_func(&g, f, false, 1, &nu, NULL);
    char *v = run_func(&g, f, true, 1, &nf, &nfused);
    char *w = run_func(&g, f, true, 2, &n2, NULL);
    cr_assert_eq(nu, nf);
    cr_assert_eq(nu, n2);
    if (memcmp(u, v, nu) != 0 || memcmp(u, w, nu) != 0) {
      IrFunc *h = pass_compile(&A, f, true);
      cr_assert_fail("seed %llu: fused result differs\n%s", (unsigned long long)seed,
                     ir_print(&A, h, NULL, false));
    }
    fused_funcs += nfused > 0;
    IrFunc *h = pass_compile(&A, f, true);
    for (int i = 0; i < h->n; i++)
      row_fused += h->nodes[i].op == OP_FUSED && h->nodes[i].fused->rowop >= 0;
  }
  /* the cases exercise the pass, not just the unfused path */
  cr_assert_gt(fused_funcs, 200, "only %d of 400 functions fused", fused_funcs);
  cr_assert_gt(row_fused, 40, "only %d fused row ops", row_fused);
}

/* A value read outside the chain, and an output, stay materialised; a
 * chain through them is cut there. */
Test(fuse, shared_values_and_outputs_stay) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[4, 8]");
  int32_t b = tu_input(&B, "b", 1, "f32[8]");
  int32_t s = ir_binary(&B, OP_ADD, x, b);     /* read by the chain and a sum */
  int32_t g1 = ir_unary(&B, OP_GELU, s);
  int32_t t1 = ir_unary(&B, OP_TANH, g1);
  int32_t r = ir_binary(&B, OP_MUL, t1, s);
  int32_t o = ir_unary(&B, OP_SIGMOID, r);     /* an output, read below too */
  int32_t z = ir_scale(&B, o, 0.5);
  cr_assert_eq(ir_add_output(f, "o", o, OUT_OUTPUT, 0), 0);
  cr_assert_eq(ir_add_output(f, "z", z, OUT_OUTPUT, 1), 0);
  cr_assert_eq(ir_add_output(f, "s", ir_reduce(&B, OP_SUM, s, 1), OUT_OUTPUT, 2), 0);
  IrFunc *h = pass_compile(&A, f, true);
  cr_assert_eq(count_op(h, OP_FUSED), 1, "%s", ir_print(&A, h, NULL, false));
  /* add stays; gelu, tanh, mul, sigmoid are one node; scale alone stays */
  cr_assert_eq(count_op(h, OP_ADD), 1);
  cr_assert_eq(count_op(h, OP_SCALE), 1);
  const IrNode *fo = &h->nodes[h->outs[0].value];
  cr_assert_eq(fo->op, OP_FUSED);
  cr_assert_eq(fo->fused->n, 4);
  cr_assert_eq(fo->fused->ops[3].op, OP_SIGMOID);
  cr_assert_str_eq(ir_print(&A, h, NULL, false),
                   "func f batch 1 {\n"
                   "  %0 = input x #0 : f32[4, 8]\n"
                   "  %1 = input b #1 : f32[8]\n"
                   "  %2 = add %0, %1 : f32[4, 8]\n"
                   "  %3 = fused %2 {gelu $0; tanh @0; mul $0, @1; sigmoid @2} : f32[4, 8]\n"
                   "  %4 = scale %3 [f=0.5] : f32[4, 8]\n"
                   "  %5 = sum %2 [axis=1] : f32[4]\n"
                   "  out output o %3\n"
                   "  out output z %4\n"
                   "  out output s %5\n"
                   "}\n");
  cr_assert_eq(count_op(pass_compile(&A, f, false), OP_FUSED), 0);
}

/* Dropout keeps its attributes as a micro-op; extern never fuses. */
Test(fuse, dropout_keeps_its_stream_and_extern_stays) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[16]");
  int32_t d = ir_op(&B, (IrNode){.op = OP_DROPOUT, .nin = 1, .in = {x}, .attr.f = {0.25}, .attr.i = {3}});
  int32_t r = ir_unary(&B, OP_RELU, d);
  int32_t e = ir_op(&B, (IrNode){.op = OP_EXTERN, .nin = 1, .in = {r}});
  int32_t t = ir_unary(&B, OP_TANH, ir_unary(&B, OP_NEG, e));
  cr_assert_eq(ir_add_output(f, "y", t, OUT_OUTPUT, 0), 0);
  IrFunc *h = pass_compile(&A, f, true);
  cr_assert_eq(count_op(h, OP_FUSED), 2, "%s", ir_print(&A, h, NULL, false));
  cr_assert_eq(count_op(h, OP_EXTERN), 1);
  const IrNode *n = &h->nodes[1];
  cr_assert_eq(n->op, OP_FUSED, "%s", ir_print(&A, h, NULL, false));
  cr_assert_eq(n->fused->ops[0].op, OP_DROPOUT);
  cr_assert_eq(n->fused->ops[0].attr.i[0], 3);
  cr_assert_eq(n->fused->ops[0].attr.f[0], 0.25);
}

/* A fused node's shape rule checks its program. */
Test(fuse, bad_programs_are_refused) {
  IrFunc *f = ir_func_new(&A, "f", 1);
  IrBuilder B = tu_builder(f);
  int32_t x = tu_input(&B, "x", 0, "f32[4, 8]");
  IrType t = tu_type("f32[4, 8]"), small = tu_type("f32[3]");
  struct {
    IrMicro m[2];
    int n, rowop;
    const char *want;
  } cases[] = {
      {{{.op = OP_RELU, .nin = 1, .in = {1}, .type = t}}, 1, -1, "fused: micro-op 0 reads micro-op 1, not before it"},
      {{{.op = OP_MATMUL, .nin = 2, .in = {-1, -1}, .type = t}}, 1, -1, "fused: micro-op 0: matmul cannot be a micro-op"},
      {{{.op = OP_RELU, .nin = 1, .in = {-1}, .type = t}, {.op = OP_TANH, .nin = 1, .in = {0}, .type = small}}, 2, -1,
       "fused: micro-op 0: relu has another type"},
      {{{.op = OP_SOFTMAX, .nin = 1, .in = {-1}, .type = t}}, 1, -1, "fused: micro-op 0: softmax cannot be a micro-op"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    IrFused p = {cases[i].n, cases[i].rowop, cases[i].m};
    IrNode n = {.op = OP_FUSED, .nin = 1, .in = {x}, .fused = &p};
    char err[256];
    cr_assert_lt(ir_emit(f, &n, err, sizeof err), 0, "case %zu", i);
    cr_assert_str_eq(err, cases[i].want, "case %zu", i);
  }
}

/* ---- every example's training steps, fused and unfused ---- */

/* 3 steps of spec (source: its text, or NULL) fused and unfused; tag
 * names the checkpoints, one per test (the tests run in parallel) */
static void same_bits(const char *spec, const char *source, const char *threads, const char *tag) {
  char ca[128], cb[128];
  snprintf(ca, sizeof ca, "rac_fuse_%s_a.safetensors", tag);
  snprintf(cb, sizeof cb, "rac_fuse_%s_b.safetensors", tag);
  TuTrain a = {.spec = spec, .source = source, .ckpt = tu_tmp(ca), .steps = "3",
               .opt = {{"threads", threads}, {"seed", "11"}, {"fuse", "0"}}};
  TuTrain b = {.spec = spec, .source = source, .ckpt = tu_tmp(cb), .steps = "3",
               .opt = {{"threads", threads}, {"seed", "11"}, {"fuse", "1"}}};
  tu_train(&a);
  tu_train(&b);
  cr_assert_eq(a.n, 3, "%s", spec);
  tu_same_bits(&a, &b, spec);
}

Test(fuse, every_example_trains_to_the_same_bits) {
  const char *specs[] = {"examples/reverse.ra", "examples/fortunes.ra", "examples/licenses.ra",
                         "examples/charlm.ra", "bench/encoder.ra"};
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) same_bits(specs[i], NULL, "2", "ex");
}

/* reverse.ra with dropout after attention and the ffn: the fused masks are
 * the unfused ones */
Test(fuse, dropout_trains_to_the_same_bits) {
  size_t len = 0;
  char *src = tu_read_file("examples/reverse.ra", &len);
  cr_assert(src);
  const char *from = "x = x + ffn(layernorm(x), hidden: 2 * d, act: relu)";
  const char *to = "x = x + dropout(ffn(layernorm(x), hidden: 2 * d, act: relu), p: 0.2)";
  char *at = strstr(src, from);
  cr_assert(at);
  char *out = arena_alloc(&A, len + 64);
  memcpy(out, src, (size_t)(at - src));
  strcpy(out + (at - src), to);
  strcat(out, at + strlen(from));
  free(src);
  same_bits("reverse_dropout.ra", out, "1", "drop");
  same_bits("reverse_dropout.ra", out, "2", "drop");
  /* and the dropout is fused */
  ra_ctx *c = ra_new();
  ra_set_option(c, "stdlib", "stdlib");
  cr_assert_eq(ra_load_string(c, "reverse_dropout.ra", out), 0, "%s", ra_error(c));
  const char *text = NULL;
  cr_assert_eq(ra_dump(c, NULL, "grad+opt", &text), 0, "%s", ra_error(c));
  cr_assert(strstr(text, "{dropout $0 [p=0.2") || strstr(text, "; dropout "), "%s", text);
  ra_free(c);
}
