/* test_jit.c - the LLVM JIT (compiler/jit) against the interpreter: every
 * compiled op bit for bit on values that reach every branch of opmath.h,
 * broadcasting, rows of every length class, the optimizers, the caches, and
 * training trajectories of the examples and of specs with causal masks,
 * dropout, svgd, spos and joint particles.  In a build without LLVM the
 * suite checks that asking for the JIT is a usage error with a clear
 * message. */
#include <math.h>

#include "../compiler/jit/jit.h"
#include "../compiler/opmath.h"
#include "../compiler/program.h"
#include "../include/ra.h"
#include "../runtime/exec/exec.h"
#include "../runtime/exec/exec_jit.h"
#include "../runtime/train/optim.h"
#include "../runtime/train/particles.h"
#include "irutil.h"

/* ---- helpers ---- */

static Jit *jit_or_skip(void) {
  if (!exec_jit_available()) {
    cr_skip_test("this build has no LLVM JIT");
    return NULL;
  }
  char err[512];
  Jit *j = exec_jit_new(ra_alloc_default(), err, sizeof err);
  cr_assert(j != NULL, "%s", err);
  return j;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float urand(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f;
}

/* Values through every branch: zeros of both signs, the thresholds of
 * km_exp (-87.3, 88.3), km_tanh (0.4), tails of the cdf, infinities, NaN,
 * and a spread of ordinary values. */
static void fill_values(float *x, int64_t n, int seed) {
  static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.4f, -0.4f, 0.39999998f, 87.3f,
                                  -87.3f, -87.30001f, 88.3f, 88.31f, -88.3f, 20.0f, -20.0f,
                                  1e-30f, -1e-30f, 5.0f, -5.0f, 1e30f, -1e30f, INFINITY,
                                  -INFINITY, NAN, 3.4e38f, -3.4e38f, 1e-45f};
  int ns = (int)(sizeof special / sizeof *special);
  rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)seed * 7919;
  for (int64_t i = 0; i < n; i++) {
    if (i % 7 == 3) x[i] = special[(i / 7 + seed) % ns];
    else x[i] = (urand() * 2 - 1) * (i % 3 == 0 ? 30.0f : 3.0f);
  }
}

typedef struct Pair {
  Arena ar;
  IrFunc *f;
  MemPlan *plan;
  float *in[4];
  int64_t nin_el[4];
  int nin;
} Pair;

/* Runs f on the interpreter and on the JIT (threads 1 and pool) and
 * compares value v bit for bit. */
static void run_both(Jit *j, IrFunc *f, float **inputs, int nin, int32_t v, int threads,
                     const char *what) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  MemPlan *plan = plan_memory(&ar, f);
  cr_assert(plan != NULL);
  Exec *a = exec_new(ra_alloc_default(), f, plan, NULL, NULL, nin);
  Exec *b = exec_new(ra_alloc_default(), f, plan, NULL, NULL, nin);
  cr_assert(a && b);
  for (int k = 0; k < nin; k++) a->inputs[k] = b->inputs[k] = inputs[k];
  char err[512];
  cr_assert_eq(exec_jit_attach(b, j, err, sizeof err), 0, "%s: %s", what, err);
  cr_assert(b->jit != NULL && b->jit->node[v].fn != NULL, "%s: node %d was not compiled", what, v);
  Pool *pool = threads > 1 ? pool_new(ra_alloc_default(), threads) : NULL;
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);
  kc.pool = pool;
  kc.threads = pool_size(pool);
  cr_assert_eq(exec_run(a, &kc), 0, "%s", kc.err);
  cr_assert_eq(exec_run(b, &kc), 0, "%s", kc.err);
  const IrType *t = &f->nodes[v].type;
  int64_t n = ir_numel(t);
  const uint32_t *pa = exec_ptr(a, v), *pb = exec_ptr(b, v);
  for (int64_t i = 0; i < n; i++)
    if (pa[i] != pb[i]) {
      float fa, fb;
      memcpy(&fa, &pa[i], 4);
      memcpy(&fb, &pb[i], 4);
      /* a NaN's sign and payload are not kept: x86 passes on the NaN of an
       * instruction's first operand, and compilers order the operands of
       * commutative ops as they like */
      if (isnan(fa) && isnan(fb)) continue;
      cr_assert_fail("%s (%d threads): element %lld: interpreter %a (%08x), jit %a (%08x)", what,
                     threads, (long long)i, (double)fa, pa[i], (double)fb, pb[i]);
    }
  pool_free(pool);
  exec_free(a);
  exec_free(b);
  arena_free(&ar);
}

static float *values(const IrType *t, int seed) {
  int64_t n = ir_numel(t);
  float *x = malloc((size_t)n * sizeof *x);
  fill_values(x, n, seed);
  return x;
}

/* One op on inputs of the given types. */
static void check_op(Jit *j, IrOp op, const char *ta, const char *tb, double attr, int threads) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "t", 1);
  IrBuilder b = tu_builder(f);
  IrType A = tu_type(ta), Bt = tb ? tu_type(tb) : A;
  int32_t x = tu_input(&b, "a", 0, ta);
  int32_t y = tb ? tu_input(&b, "b", 1, tb) : -1;
  IrNode n = {.op = op, .nin = (uint8_t)(tb ? 2 : 1), .in = {x, y}};
  n.attr.f[0] = attr;
  int32_t v = ir_op(&b, n);
  ir_add_output(f, "out", v, OUT_OUTPUT, 0);
  float *in[2] = {values(&A, op), values(&Bt, op + 100)};
  /* gradients of y-ops take y in (0, 1) and tanh's in (-1, 1) as well */
  char what[128];
  snprintf(what, sizeof what, "%s %s%s%s", ir_op_info[op].name, ta, tb ? ", " : "", tb ? tb : "");
  run_both(j, f, in, tb ? 2 : 1, v, threads, what);
  free(in[0]);
  free(in[1]);
  arena_free(&ar);
}

/* ---- elementwise ---- */

Test(jit, every_elementwise_op_of_opmath_compiles_bit_for_bit) {
  Jit *j = jit_or_skip();
  int nops = 0;
#define B2(U, l, E) check_op(j, OP_##U, "f32[3, 37, 45]", "f32[3, 37, 45]", 0, 1), nops++;
#define U1(U, l, c, E) check_op(j, OP_##U, "f32[3, 37, 45]", NULL, 0.37, 1), nops++;
#define G2(U, l, c, E) check_op(j, OP_##U, "f32[5001]", "f32[5001]", 0, 1), nops++;
  OPMATH_BINARY(B2)
  OPMATH_UNARY(U1)
  OPMATH_GRAD(G2)
#undef B2
#undef U1
#undef G2
  /* every op of the lists is one the JIT compiles */
  int listed = 0;
#define CNT3(U, l, E) { cr_assert(exec_jit_op_compiles(OP_##U), #l " has no code generation"); listed++; }
#define CNT4(U, l, c, E) { cr_assert(exec_jit_op_compiles(OP_##U), #l " has no code generation"); listed++; }
  OPMATH_BINARY(CNT3)
  OPMATH_UNARY(CNT4)
  OPMATH_GRAD(CNT4)
  cr_assert_eq(nops, listed);
  exec_jit_free(j);
}

Test(jit, large_tensors_on_a_pool_bit_for_bit) {
  Jit *j = jit_or_skip();
  check_op(j, OP_GELU, "f32[64, 4097]", NULL, 0, 3);
  check_op(j, OP_GELU_GRAD, "f32[64, 4097]", "f32[64, 4097]", 0, 2);
  check_op(j, OP_ADD, "f32[64, 9000]", "f32[9000]", 0, 3);
  exec_jit_free(j);
}

Test(jit, broadcasting_bit_for_bit) {
  Jit *j = jit_or_skip();
  static const char *cases[][2] = {
      {"f32[4, 5, 6]", "f32[6]"},       {"f32[4, 5, 6]", "f32[5, 1]"}, {"f32[4, 1, 6]", "f32[4, 5, 1]"},
      {"f32[4, 5, 6]", "f32[]"},        {"f32[]", "f32[4, 5, 6]"},     {"f32[6]", "f32[4, 5, 6]"},
      {"f32[2, 3, 4, 33]", "f32[3, 1, 33]"}, {"f32[1]", "f32[7, 1]"},   {"f32[32, 64, 128]", "f32[128]"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    check_op(j, OP_ADD, cases[c][0], cases[c][1], 0, 1);
    check_op(j, OP_SUB, cases[c][0], cases[c][1], 0, 1);
    check_op(j, OP_MUL, cases[c][0], cases[c][1], 0, 2);
    check_op(j, OP_DIV, cases[c][0], cases[c][1], 0, 1);
  }
  exec_jit_free(j);
}

/* ---- rows ---- */

/* rows of L, or with causal (softmax rows over pass_causal's prefixes)
 * rows matrices of [L, L] */
static void check_rows(Jit *j, IrOp op, int64_t rows, int64_t L, bool masked, bool causal,
                       int threads) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "t", 1);
  IrBuilder b = tu_builder(f);
  char ts[64];
  if (causal)
    snprintf(ts, sizeof ts, "f32[%lld, %lld, %lld]", (long long)rows, (long long)L, (long long)L);
  else
    snprintf(ts, sizeof ts, "f32[%lld, %lld]", (long long)rows, (long long)L);
  IrType T = tu_type(ts);
  int two = op == OP_SOFTMAX_GRAD || op == OP_LAYERNORM_GRAD;
  int32_t x = tu_input(&b, "x", 0, ts);
  int32_t d = two ? tu_input(&b, "d", 1, ts) : -1;
  IrNode n = {.op = op, .nin = (uint8_t)(two ? 2 : 1), .in = {x, d}, .attr.i = {causal}};
  n.attr.f[0] = 1e-5;
  int32_t v = ir_op(&b, n);
  ir_add_output(f, "out", v, OUT_OUTPUT, 0);
  int64_t N = ir_numel(&T);
  float *in[2] = {malloc((size_t)N * 4), malloc((size_t)N * 4)};
  rng_state = 77 + (uint64_t)L;
  for (int64_t i = 0; i < N; i++) {
    in[0][i] = (urand() * 2 - 1) * 4;
    in[1][i] = urand() * 2 - 1;
  }
  if (masked)
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < L; c++)
        if (c > r % L || r % 5 == 4) in[0][r * L + c] = -INFINITY; /* causal, and whole rows */
  char what[128];
  snprintf(what, sizeof what, "%s%s %s%s", ir_op_info[op].name, causal ? " [causal]" : "", ts,
           masked ? " masked" : "");
  run_both(j, f, in, two ? 2 : 1, v, threads, what);
  free(in[0]);
  free(in[1]);
  arena_free(&ar);
}

Test(jit, softmax_and_layernorm_rows_bit_for_bit) {
  Jit *j = jit_or_skip();
  static const int64_t lens[] = {1, 3, 15, 16, 17, 31, 48, 64, 100, 129, 512};
  static const IrOp ops[] = {OP_SOFTMAX, OP_SOFTMAX_GRAD, OP_LAYERNORM, OP_LAYERNORM_GRAD};
  for (size_t o = 0; o < 4; o++)
    for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
      check_rows(j, ops[o], 7, lens[l], false, false, 1);
  check_rows(j, OP_SOFTMAX, 40, 12, true, false, 1);
  check_rows(j, OP_SOFTMAX, 2048, 64, true, false, 3);
  check_rows(j, OP_LAYERNORM_GRAD, 2048, 128, false, false, 2);
  exec_jit_free(j);
}

/* ---- fused nodes with a row op ---- */

/* One fused node over [B, L, L] (a causal program) or [B * L, L] rows:
 * ops[] of nm micro-ops with the row op at ro, inputs of the region's
 * shape except those marked in vec (one row of L), values from
 * fill_values' ordinary range and -inf in some rows. */
static void check_fused(Jit *j, const IrMicro *ops, int nm, int ro, int nin, unsigned vec,
                        int64_t B, int64_t L, int threads, const char *what) {
  bool ninf = ops[ro].op == OP_SOFTMAX; /* masked entries and whole rows */
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "t", 1);
  IrBuilder b = tu_builder(f);
  char ts[64], vs[64];
  snprintf(ts, sizeof ts, "f32[%lld, %lld, %lld]", (long long)B, (long long)L, (long long)L);
  snprintf(vs, sizeof vs, "f32[%lld]", (long long)L);
  IrType T = tu_type(ts);
  int32_t x[4];
  float *in[4];
  for (int q = 0; q < nin; q++) {
    bool v1 = vec >> q & 1;
    x[q] = tu_input(&b, "x", q, v1 ? vs : ts);
    int64_t N = v1 ? L : ir_numel(&T);
    in[q] = malloc((size_t)N * 4);
    rng_state = 91 + (uint64_t)(L * 7 + q);
    for (int64_t i = 0; i < N; i++) in[q][i] = (urand() * 2 - 1) * (q == 0 ? 4 : 1);
    if (q == 0 && ninf)
      for (int64_t i = 0; i < N; i++)
        if (i % (5 * L) == 0 || (i / L) % 7 == 3) in[q][i] = -INFINITY;
  }
  IrMicro *m = arena_alloc(&ar, (size_t)nm * sizeof *m);
  IrFused *fz = arena_alloc(&ar, sizeof *fz);
  for (int k = 0; k < nm; k++) {
    m[k] = ops[k];
    m[k].type = T;
  }
  *fz = (IrFused){.n = nm, .rowop = ro, .ops = m};
  IrNode n = {.op = OP_FUSED, .nin = (uint8_t)nin, .type = T, .fused = fz};
  for (int q = 0; q < nin; q++) n.in[q] = x[q];
  int32_t v = ir_append(f, &n);
  ir_add_output(f, "out", v, OUT_OUTPUT, 0);
  char w[160];
  snprintf(w, sizeof w, "fused %s over %s", what, ts);
  run_both(j, f, in, nin, v, threads, w);
  for (int q = 0; q < nin; q++) free(in[q]);
  arena_free(&ar);
}

#define MICRO(o, k, a, b, f0, i0) \
  (IrMicro) { .op = (o), .nin = (k), .in = {(a), (b)}, .attr = {.i = {(i0)}, .f = {(f0)}} }
#define X(j) IR_FUSED_EXT(j)

Test(jit, fused_rows_bit_for_bit) {
  Jit *j = jit_or_skip();
  /* bench/charlm.ra's and medium's programs */
  IrMicro scale_softmax[] = {MICRO(OP_SCALE, 1, X(0), 0, 0.25, 0),
                             MICRO(OP_SOFTMAX, 1, 0, 0, 0, 0)};
  IrMicro causal_softmax[] = {MICRO(OP_SCALE, 1, X(0), 0, 0.25, 0),
                              MICRO(OP_CAUSAL_MASK, 1, 0, 0, -INFINITY, 0),
                              MICRO(OP_SOFTMAX, 1, 1, 0, 0, 1)};
  IrMicro causal_grad[] = {MICRO(OP_SOFTMAX_GRAD, 2, X(0), X(1), 0, 1),
                           MICRO(OP_CAUSAL_MASK, 1, 0, 0, 0, 0), MICRO(OP_SCALE, 1, 1, 0, 0.25, 0)};
  IrMicro norm_grad[] = {MICRO(OP_MUL, 2, X(0), X(1), 0, 0),
                         MICRO(OP_LAYERNORM_GRAD, 2, X(2), 0, 1e-5, 0),
                         MICRO(OP_ADD, 2, X(3), 1, 0, 0)};
  IrMicro norm_affine[] = {MICRO(OP_LAYERNORM, 1, X(0), 0, 1e-5, 0),
                           MICRO(OP_MUL, 2, 0, X(1), 0, 0),
                           MICRO(OP_ADD, 2, 1, X(2), 0, 0), MICRO(OP_GELU, 1, 2, 0, 0, 0)};
  IrMicro grad_of_sum[] = {MICRO(OP_ADD, 2, X(0), X(1), 0, 0),
                           MICRO(OP_SOFTMAX_GRAD, 2, 0, X(2), 0, 0),
                           MICRO(OP_TANH, 1, 1, 0, 0, 0)};
  static const int64_t lens[] = {1, 3, 16, 17, 48, 64, 129};
  for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
    int64_t L = lens[l];
    check_fused(j, scale_softmax, 2, 1, 1, 0, 3, L, 1, "scale; softmax");
    check_fused(j, causal_softmax, 3, 2, 1, 0, 3, L, 1, "scale; causal_mask; softmax [causal]");
    check_fused(j, causal_grad, 3, 0, 2, 0, 3, L, 1, "softmax_grad [causal]; causal_mask; scale");
    check_fused(j, norm_grad, 3, 1, 4, 1, 3, L, 1, "mul; layernorm_grad; add");
    check_fused(j, norm_affine, 4, 0, 3, 6, 3, L, 1, "layernorm; mul; add; gelu");
    check_fused(j, grad_of_sum, 3, 1, 3, 0, 3, L, 1, "add; softmax_grad; tanh");
  }
  check_fused(j, causal_softmax, 3, 2, 1, 0, 64, 64, 3, "scale; causal_mask; softmax [causal]");
  check_fused(j, norm_grad, 3, 1, 4, 1, 16, 128, 2, "mul; layernorm_grad; add");
  exec_jit_free(j);
}

/* causal softmax rows (pass_causal's prefixes) compile as plain nodes too */
Test(jit, causal_rows_bit_for_bit) {
  Jit *j = jit_or_skip();
  for (int64_t L = 1; L <= 40; L += 13) {
    check_rows(j, OP_SOFTMAX, 5, L, false, true, 1);
    check_rows(j, OP_SOFTMAX_GRAD, 5, L, false, true, 1);
  }
  exec_jit_free(j);
}

#undef MICRO
#undef X

/* ---- the optimizer ---- */

static void check_optim(Jit *j, OptKind kind, double momentum, double wd, int threads) {
  int64_t n = 100003;
  float *w0 = malloc((size_t)n * 4), *g = malloc((size_t)n * 4);
  float *w[2], *m[2], *v[2];
  rng_state = 99;
  for (int64_t i = 0; i < n; i++) {
    w0[i] = urand() * 2 - 1;
    g[i] = (urand() * 2 - 1) * (i % 11 == 0 ? 1e-6f : 0.1f);
  }
  Pool *pool = threads > 1 ? pool_new(ra_alloc_default(), threads) : NULL;
  for (int s = 0; s < 2; s++) {
    w[s] = malloc((size_t)n * 4);
    memcpy(w[s], w0, (size_t)n * 4);
    m[s] = calloc((size_t)n, 4);
    v[s] = calloc((size_t)n, 4);
    Optim o = {.kind = kind, .lr = 1e-3, .momentum = momentum, .beta1 = 0.9, .beta2 = 0.999,
               .eps = 1e-8, .weight_decay = wd, .n = n, .m = m[s], .v = v[s], .pool = pool};
    if (s == 1) {
      char err[512];
      int k = kind == OPT_SGD ? (momentum != 0 ? JIT_OPT_SGD_MOMENTUM : JIT_OPT_SGD)
              : kind == OPT_ADAM ? JIT_OPT_ADAM : JIT_OPT_ADAMW;
      o.jit = exec_jit_optimizer(j, k, NULL, err, sizeof err);
      cr_assert(o.jit != NULL, "%s", err);
    }
    for (int step = 0; step < 5; step++) optim_step(&o, w[s], g, 1e-3 * (step + 1), NULL);
  }
  cr_assert(memcmp(w[0], w[1], (size_t)n * 4) == 0, "optimizer %d: weights differ", kind);
  cr_assert(memcmp(m[0], m[1], (size_t)n * 4) == 0, "optimizer %d: first moments differ", kind);
  cr_assert(memcmp(v[0], v[1], (size_t)n * 4) == 0, "optimizer %d: second moments differ", kind);
  for (int s = 0; s < 2; s++) {
    free(w[s]);
    free(m[s]);
    free(v[s]);
  }
  free(w0);
  free(g);
  pool_free(pool);
}

Test(jit, optimizers_bit_for_bit) {
  Jit *j = jit_or_skip();
  check_optim(j, OPT_ADAMW, 0, 0.01, 1);
  check_optim(j, OPT_ADAMW, 0, 0.01, 2);
  check_optim(j, OPT_ADAM, 0, 0.1, 1);
  check_optim(j, OPT_SGD, 0, 0, 1);
  check_optim(j, OPT_SGD, 0.9, 0.01, 2);
  exec_jit_free(j);
}

/* ---- the particle update's direction ---- */

/* The update of M particles of D coordinates, svgd or spos (with noise
 * xi or without), through the C loops and the compiled direction: the same
 * bits, on one thread and on a pool.  D runs past a block and is not a
 * multiple of eight, M past a group of four; the median and a fixed
 * bandwidth. */
static void check_particles(Jit *j, int M, int64_t D, RepKind kind, bool noise, bool median,
                            Pool *pool) {
  Repulsion rep = {.kind = kind, .alpha = 0.7, .stepsize = 0.05, .beta = 0.3,
                   .bw_median = median, .bandwidth = 1.5};
  int64_t n = (int64_t)M * D;
  float *theta = malloc((size_t)n * 4), *xi = malloc((size_t)n * 4), *g[2];
  float *work = malloc((size_t)particles_work_floats(M, D) * 4);
  rng_state = 7 + (uint64_t)M * 131 + (uint64_t)D;
  for (int64_t i = 0; i < n; i++) theta[i] = urand() * 2 - 1, xi[i] = urand() * 2 - 1;
  for (int s = 0; s < 2; s++) {
    g[s] = malloc((size_t)n * 4);
    rng_state = 11 + (uint64_t)D;
    for (int64_t i = 0; i < n; i++) g[s][i] = (urand() * 2 - 1) * (i % 7 == 0 ? 1e-4f : 0.5f);
    JitLoopFn dir = NULL;
    if (s == 1) {
      char err[512];
      dir = exec_jit_particles(j, NULL, err, sizeof err);
      cr_assert(dir != NULL, "%s", err);
    }
    cr_assert_eq(particles_update_noise(&rep, M, D, theta, g[s], work, noise ? xi : NULL, NULL,
                                        pool, dir), 0);
  }
  for (int64_t i = 0; i < n; i++)
    cr_assert(!memcmp(&g[0][i], &g[1][i], 4),
              "M %d D %lld kind %d noise %d: particle %lld coordinate %lld: %.9g against %.9g",
              M, (long long)D, kind, noise, (long long)(i / D), (long long)(i % D), g[0][i],
              g[1][i]);
  free(theta);
  free(xi);
  free(work);
  free(g[0]);
  free(g[1]);
}

Test(jit, particle_directions_bit_for_bit) {
  Jit *j = jit_or_skip();
  Pool *pool = pool_new(ra_alloc_default(), 3);
  const int ms[] = {1, 2, 3, 4, 5, 8, 9};
  const int64_t ds[] = {1, 7, 8, 300, 1029};
  for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
    for (size_t b = 0; b < sizeof ds / sizeof *ds; b++) {
      check_particles(j, ms[a], ds[b], REP_SVGD, false, true, NULL);
      check_particles(j, ms[a], ds[b], REP_SPOS, true, b % 2 == 0, a % 2 ? pool : NULL);
      check_particles(j, ms[a], ds[b], REP_SPOS, false, true, NULL);
    }
  check_particles(j, 8, 4096, REP_SVGD, false, false, pool);
  check_particles(j, 70, 300, REP_SPOS, true, true, pool);
  pool_free(pool);
  exec_jit_free(j);
}

/* ---- caches ---- */

Test(jit, a_function_compiles_once_per_context) {
  Jit *j = jit_or_skip();
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "t", 1);
  IrBuilder b = tu_builder(f);
  int32_t x = tu_input(&b, "x", 0, "f32[8, 100]");
  int32_t g1 = ir_unary(&b, OP_GELU, x);
  int32_t g2 = ir_unary(&b, OP_GELU, ir_binary(&b, OP_ADD, g1, x));
  int32_t s = ir_op(&b, (IrNode){.op = OP_SOFTMAX, .nin = 1, .in = {g2}});
  ir_add_output(f, "out", s, OUT_OUTPUT, 0);
  char err[512];
  const JitFunc *c1 = exec_jit_compile(j, f, err, sizeof err);
  cr_assert(c1 != NULL, "%s", err);
  cr_assert_eq(c1->ncompiled, 4);
  cr_assert_eq(c1->nkernels, 3, "the two gelu nodes share one kernel");
  cr_assert(c1->node[g1].fn == c1->node[g2].fn);
  const JitFunc *c2 = exec_jit_compile(j, f, err, sizeof err);
  cr_assert(c2 == c1, "the same IR is found in the cache");
  cr_assert(c2->compile_ms == 0);
  /* another function with the same ops on other shapes reuses the kernels */
  IrFunc *h = ir_func_new(&ar, "u", 1);
  IrBuilder b2 = tu_builder(h);
  int32_t y = tu_input(&b2, "y", 0, "f32[3, 7]");
  int32_t gy = ir_unary(&b2, OP_GELU, y);
  ir_add_output(h, "out", gy, OUT_OUTPUT, 0);
  const JitFunc *c3 = exec_jit_compile(j, h, err, sizeof err);
  cr_assert(c3 != NULL && c3 != c1);
  cr_assert(c3->node[gy].fn == c1->node[g1].fn, "kernels are cached by their key, not by shape");
  arena_free(&ar);
  exec_jit_free(j);
}

/* ---- training: the interpreter's loss trajectory, bit for bit ---- */

typedef struct Traj {
  float loss[64];
  int n;
  char summary[512];
} Traj;

static int on_step(void *ud, int64_t step, double loss) {
  Traj *t = ud;
  if (t->n < 64) t->loss[t->n++] = (float)loss;
  return 0;
}

/* Trains spec (a file, or text when src is set) for 50 steps (or fewer when
 * the spec's budget is smaller) and evaluates the checkpoint on the test
 * split. */
static void trajectory(const char *spec, const char *src, bool jit, int threads, Traj *t) {
  memset(t, 0, sizeof *t);
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  char th[16];
  snprintf(th, sizeof th, "%d", threads);
  ra_set_option(c, "threads", th);
  cr_assert_eq(ra_set_option(c, "set.steps", "50"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_set_option(c, "jit", jit ? "1" : "0"), 0, "%s", ra_error(c));
  char ckpt[256];
  snprintf(ckpt, sizeof ckpt, "/tmp/rac_jit_%d_%d.safetensors", (int)getpid(), jit);
  ra_set_option(c, "set.save", ckpt);
  if (src) cr_assert_eq(ra_load_string(c, spec, src), 0, "%s", ra_error(c));
  else cr_assert_eq(ra_load_file(c, spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, on_step, t), 0, "%s: %s", spec, ra_error(c));
  const char *summary = NULL;
  cr_assert_eq(ra_eval(c, NULL, ckpt, "test", &summary), 0, "%s", ra_error(c));
  snprintf(t->summary, sizeof t->summary, "%s", summary);
  unlink(ckpt);
  ra_free(c);
}

static void same_trajectory(const char *spec, const char *src, int jit_threads) {
  if (!exec_jit_available()) cr_skip_test("this build has no LLVM JIT");
  Traj a, b;
  trajectory(spec, src, false, 2, &a);
  trajectory(spec, src, true, jit_threads, &b);
  cr_assert(a.n == 50 && b.n == 50, "%s: %d and %d steps", spec, a.n, b.n);
  for (int i = 0; i < a.n; i++)
    cr_assert(memcmp(&a.loss[i], &b.loss[i], sizeof(float)) == 0,
              "%s: step %d: interpreter loss %.9g, jit %.9g", spec, i + 1, (double)a.loss[i],
              (double)b.loss[i]);
  cr_assert_str_eq(a.summary, b.summary, "%s: the evaluations differ", spec);
}

Test(jit, reverse_trains_as_on_the_interpreter, .timeout = 300) {
  same_trajectory("examples/reverse.ra", NULL, 2);
}
Test(jit, fortunes_trains_as_on_the_interpreter, .timeout = 300) {
  cr_assert(access("data/fortunes.tsv", R_OK) == 0, "run `make data` first");
  same_trajectory("examples/fortunes.ra", NULL, 1);
}
Test(jit, licenses_trains_as_on_the_interpreter, .timeout = 300) {
  cr_assert(access("data/licenses.tsv", R_OK) == 0, "run `make data` first");
  same_trajectory("examples/licenses.ra", NULL, 2);
}
Test(jit, charlm_trains_as_on_the_interpreter, .timeout = 300) {
  cr_assert(access("data/corpus.txt", R_OK) == 0, "run `make data` first");
  same_trajectory("examples/charlm.ra", NULL, 3);
}
Test(jit, encoder_benchmark_trains_as_on_the_interpreter, .timeout = 300) {
  cr_assert(access("data/fortunes.tsv", R_OK) == 0, "run `make data` first");
  same_trajectory("bench/encoder.ra", NULL, 2);
}
Test(jit, causal_dropout_spos_joint_trains_as_on_the_interpreter, .timeout = 300) {
  same_trajectory("tests/jit/mix.ra", NULL, 1);
  same_trajectory("tests/jit/mix.ra", NULL, 3);
}
Test(jit, sgd_with_momentum_trains_as_on_the_interpreter, .timeout = 300) {
  char *src = tu_read_file("tests/jit/mix.ra", NULL);
  cr_assert(src);
  const char *from = "optimizer adamw { lr 3e-3  weight_decay 0.01 }";
  char *p = strstr(src, from);
  cr_assert(p, "tests/jit/mix.ra changed its optimizer line");
  char buf[8192];
  snprintf(buf, sizeof buf, "%.*soptimizer sgd { lr 0.1  momentum 0.9  weight_decay 0.001 }%s",
           (int)(p - src), src, p + strlen(from));
  same_trajectory("mix_sgd.ra", buf, 2);
  free(src);
}

/* ---- the option ---- */

Test(jit, the_option_and_builds_without_llvm) {
  ra_ctx *c = ra_new();
  int rc = ra_set_option(c, "jit", "1");
  if (exec_jit_available()) {
    cr_assert_eq(rc, RA_OK, "%s", ra_error(c));
    cr_assert_eq(ra_set_option(c, "jit", "0"), RA_OK);
  } else {
    cr_assert_eq(rc, RA_EUSAGE);
    cr_assert(strstr(ra_error(c), "this build of rac has no LLVM JIT"), "%s", ra_error(c));
    TuRun r = tu_sh(30, "\"$RAC\" run examples/reverse.ra --jit --set steps=1");
    cr_assert_eq(r.status, 2, "exit %d: %s", r.status, r.err);
    cr_assert(strstr(r.err, "this build of rac has no LLVM JIT"), "%s", r.err);
    tu_run_free(&r);
  }
  cr_assert_eq(ra_set_option(c, "jit", "maybe"), RA_EUSAGE);
  ra_set_option(c, "jit", "0");
  ra_free(c);
}

Test(jit, bench_reports_the_compile_time, .timeout = 120) {
  if (!exec_jit_available()) cr_skip_test("this build has no LLVM JIT");
  TuRun r = tu_sh(100, "\"$RAC\" bench tests/jit/mix.ra --steps 2 --jit");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "jit compile "), "%s", r.out);
  tu_run_free(&r);
  r = tu_sh(100, "\"$RAC\" bench tests/jit/mix.ra --steps 2");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(!strstr(r.out, "jit compile"), "%s", r.out);
  tu_run_free(&r);
}
