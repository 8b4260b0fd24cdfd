/* test_kernels.c - every kernel against a naive reference on small random
 * shapes (broadcasting, odd sizes, transposes), run-time index errors,
 * determinism with two threads, the interpreter (exec) on a hand-made
 * memory plan, and the thread pool (pool_for) itself. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../compiler/ir.h"
#include "../compiler/opmath.h"
#include "irutil.h"
#include "../runtime/exec/exec.h"
#include "../runtime/exec/externfn.h"
#include "../runtime/exec/kernels.h"
#include "../runtime/exec/pool.h"
#include "../runtime/exec/rng.h"
#include "testutil.h"

#define KH_MAXV 64

typedef struct KH {
  Arena ar;
  IrFunc *f;
  IrBuilder B;          /* nodes through the shape rules (irutil.h) */
  KernelCtx kc;
  void *buf[KH_MAXV];
  uint64_t rng;
} KH;

static inline void kh_init(KH *h, int threads) {
  memset(h, 0, sizeof *h);
  arena_init(&h->ar, ra_alloc_default());
  h->f = ir_func_new(&h->ar, "t", 1);
  h->B = tu_builder(h->f);
  cr_assert(h->f);
  h->kc.pool = threads > 1 ? pool_new(ra_alloc_default(), threads) : NULL;
  cr_assert(threads <= 1 || h->kc.pool, "pool_new(%d) failed", threads);
  h->kc.threads = pool_size(h->kc.pool);
  h->kc.seed = 1234;
  h->kc.step = 7;
  h->kc.training = true;
  h->rng = 0x9E3779B97F4A7C15ull;
}

static inline void kh_free(KH *h) {
  for (int i = 0; i < KH_MAXV; i++) free(h->buf[i]);
  arena_free(&h->ar);
  pool_free(h->kc.pool);
}

/* Uniform in [lo, hi), from a fixed LCG. */
static inline float kh_rand(KH *h, float lo, float hi) {
  h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((h->rng >> 40) * (1.0 / 16777216.0));
}

static inline void *kh_buf(KH *h, int32_t v) {
  cr_assert(v >= 0 && v < KH_MAXV);
  if (!h->buf[v]) {
    int64_t n = ir_numel(&h->f->nodes[v].type);
    h->buf[v] = calloc((size_t)(n ? n : 1), 4);
  }
  return h->buf[v];
}

static inline float *kh_f(KH *h, int32_t v) { return (float *)kh_buf(h, v); }
static inline int32_t *kh_i(KH *h, int32_t v) { return (int32_t *)kh_buf(h, v); }

/* A PARAM leaf of the given type, filled with uniforms in [lo, hi). */
static inline int32_t kh_leaf(KH *h, int rank, const int64_t *d, float lo, float hi) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.op = OP_PARAM;
  n.type = ir_type_make(IR_F32, rank, d, false);
  n.name = "p";
  n.span = SPAN_NONE;
  int32_t id = ir_append(h->f, &n);
  cr_assert(id >= 0);
  h->f->nodes[id].attr.i[0] = id;
  float *x = kh_f(h, id);
  int64_t m = ir_numel(&n.type);
  for (int64_t i = 0; i < m; i++) x[i] = kh_rand(h, lo, hi);
  return id;
}

/* An i32 INPUT leaf filled with integers in [0, hi). */
static inline int32_t kh_ileaf(KH *h, int rank, const int64_t *d, int32_t hi) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.op = OP_INPUT;
  n.type = ir_type_make(IR_I32, rank, d, false);
  n.name = "idx";
  n.span = SPAN_NONE;
  int32_t id = ir_append(h->f, &n);
  cr_assert(id >= 0);
  int32_t *x = kh_i(h, id);
  int64_t m = ir_numel(&n.type);
  for (int64_t i = 0; i < m; i++) {
    int32_t v = (int32_t)kh_rand(h, 0, (float)hi);
    x[i] = v >= hi ? hi - 1 : v;
  }
  return id;
}

/* Runs node v's kernel into its buffer; returns the kernel's status. */
static inline int kh_run(KH *h, int32_t v) {
  const IrNode *n = &h->f->nodes[v];
  void *in[IR_MAX_IN];
  for (int k = 0; k < n->nin; k++) in[k] = kh_buf(h, n->in[k]);
  h->kc.err[0] = 0;
  return kernel_table[n->op](&h->kc, h->f, n, kh_buf(h, v), in);
}

static inline void kh_run_ok(KH *h, int32_t v) {
  int rc = kh_run(h, v);
  cr_assert(rc == 0, "%s failed: %s", ir_op_info[h->f->nodes[v].op].name, h->kc.err);
}

#define D(...) ((const int64_t[]){__VA_ARGS__})


/* ---- naive references ------------------------------------------------------ */

/* Index of out's flat element i in operand x (NumPy broadcasting). */
static int64_t bidx(const IrType *out, const IrType *x, int64_t i) {
  int64_t off = 0, st = 1;
  for (int j = out->rank - 1; j >= 0; j--) {
    int64_t ix = i % out->dim[j];
    i /= out->dim[j];
    int xj = j - (out->rank - x->rank);
    if (xj >= 0) {
      if (x->dim[xj] != 1) off += ix * st;
      st *= x->dim[xj];
    }
  }
  return off;
}

static const IrType *T(KH *h, int32_t v) { return &h->f->nodes[v].type; }

static void check_binary(int threads, int ra, const int64_t *da, int rb, const int64_t *db) {
  static const IrOp ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV};
  for (int k = 0; k < 4; k++) {
    KH h;
    kh_init(&h, threads);
    int32_t a = kh_leaf(&h, ra, da, 0.5f, 2.0f);
    int32_t b = kh_leaf(&h, rb, db, 0.5f, 2.0f);
    int32_t y = ir_op(&h.B, (IrNode){.op = (uint16_t)ops[k], .nin = 2, .in = {a, b}});
    kh_run_ok(&h, y);
    int64_t n = ir_numel(T(&h, y));
    float *want = malloc((size_t)n * 4);
    const float *pa = kh_f(&h, a), *pb = kh_f(&h, b);
    for (int64_t i = 0; i < n; i++) {
      float x = pa[bidx(T(&h, y), T(&h, a), i)], z = pb[bidx(T(&h, y), T(&h, b), i)];
      want[i] = k == 0 ? x + z : k == 1 ? x - z : k == 2 ? x * z : x / z;
    }
    tu_allclose(kh_f(&h, y), want, n, 1e-6, 0, ir_op_info[ops[k]].name);
    free(want);
    kh_free(&h);
  }
}

Test(kernels, binary_same_shape) { check_binary(1, 3, D(3, 5, 7), 3, D(3, 5, 7)); }
Test(kernels, binary_scalar) {
  check_binary(1, 3, D(3, 5, 7), 0, NULL);
  check_binary(1, 0, NULL, 2, D(4, 3));
  check_binary(1, 1, D(1), 2, D(4, 3));
}
Test(kernels, binary_bias_suffix) {
  check_binary(1, 3, D(4, 5, 6), 1, D(6));
  check_binary(1, 1, D(6), 3, D(4, 5, 6));
  check_binary(1, 3, D(4, 5, 6), 2, D(5, 6));
}
Test(kernels, binary_prefix_and_general) {
  check_binary(1, 3, D(4, 5, 6), 3, D(4, 5, 1));
  check_binary(1, 3, D(4, 1, 6), 2, D(5, 1));
  check_binary(1, 4, D(3, 1, 4, 1), 3, D(2, 1, 5));
  check_binary(1, 4, D(2, 3, 1, 5), 4, D(1, 3, 7, 1));
  check_binary(1, 3, D(1, 1, 1), 2, D(1, 1));
}
Test(kernels, binary_large_threads) {
  check_binary(2, 3, D(9, 77, 131), 1, D(131));
  check_binary(2, 3, D(9, 77, 131), 3, D(9, 77, 1));
  check_binary(2, 2, D(3, 70001), 2, D(3, 70001));
  check_binary(2, 3, D(5, 33, 65), 3, D(5, 1, 65));
}

/* ---- unary and activation gradients ------------------------------------------ */

static double ref_unary(IrOp op, double x, double s) {
  switch (op) {
  case OP_NEG: return -x;
  case OP_SCALE: return x * s;
  case OP_SQUARE: return x * x;
  case OP_RELU: return x > 0 ? x : 0;
  case OP_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  case OP_TANH: return tanh(x);
  case OP_SIGMOID: return 1 / (1 + exp(-x));
  case OP_SILU: return x / (1 + exp(-x));
  default: return NAN;
  }
}

static void check_unary(IrOp op, float lo, float hi, int64_t n, int threads) {
  KH h;
  kh_init(&h, threads);
  int32_t x = kh_leaf(&h, 1, D(n), lo, hi);
  float *px = kh_f(&h, x);
  /* a few fixed points: zero, tiny, the branch edges of the approximations */
  const float fixed[] = {0, 1e-6f, -1e-6f, 0.39f, 0.41f, -0.41f, 0.49f, 0.51f, -0.51f,
                         0.7f, -0.7f, 3.5f, -3.5f, 9, -9, 20, -20, 87, -87, 100, -100};
  for (int i = 0; i < (int)(sizeof fixed / sizeof *fixed) && i < n; i++) px[i] = fixed[i];
  IrNode nd = {.op = (uint16_t)op, .nin = 1, .in = {x}};
  nd.attr.f[0] = 0.375;
  int32_t y = ir_op(&h.B, nd);
  kh_run_ok(&h, y);
  float *want = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = (float)ref_unary(op, px[i], 0.375);
  tu_allclose(kh_f(&h, y), want, n, 3e-6, 2e-7, ir_op_info[op].name);
  free(want);
  kh_free(&h);
}

Test(kernels, unary) {
  IrOp ops[] = {OP_NEG, OP_SCALE, OP_SQUARE, OP_RELU, OP_GELU, OP_TANH, OP_SIGMOID, OP_SILU};
  for (int k = 0; k < 8; k++) {
    check_unary(ops[k], -6, 6, 1001, 1);
    check_unary(ops[k], -30, 30, 100003, 2);
  }
}

/* km_exp: a few ulp over its whole range, 0 below -87.3, NaN for NaN. */
Test(kernels, exp_over_its_range) {
  double worst = 0;
  for (int i = 0; i <= 1000000; i++) {
    float x = -87.0f + (float)i * 175e-6f;
    double want = exp((double)x);
    worst = fmax(worst, fabs(km_exp(x) - want) / want);
  }
  cr_assert_lt(worst, 2.5e-7, "relative error %.3g", worst);
  cr_assert_eq(km_exp(-88.0f), 0.0f);
  cr_assert_eq(km_exp(-INFINITY), 0.0f);
  cr_assert_eq(km_exp(0.0f), 1.0f);
  cr_assert(isnan(km_exp(NAN)));
}

/* Phi in both tails (opmath.h, km_cdf_e): relative error against erfc for
 * x < 0 down to where e^(-x^2/2) underflows, absolute error for x >= 0;
 * e is e^(-x^2/2). */
Test(kernels, normal_cdf_in_both_tails) {
  double worst_rel = 0, worst_abs = 0, worst_e = 0;
  for (int i = 0; i <= 260000; i++) {
    float x = -13.0f + (float)i * 1e-4f * 0.8f;
    float e;
    double c = km_cdf_e(x, &e), want = 0.5 * erfc(-(double)x / sqrt(2.0));
    double ew = exp(-0.5 * (double)x * (double)x);
    if (x < 0) worst_rel = fmax(worst_rel, fabs(c - want) / want);
    else worst_abs = fmax(worst_abs, fabs(c - want));
    if (ew > 1e-30) worst_e = fmax(worst_e, fabs(e - ew) / ew);
  }
  /* the tails' error grows with x^2 (the rounding of -z^2 before e^): at
   * x = -13, 1.5e-5 */
  cr_assert_lt(worst_rel, 2e-5, "relative error %.3g for x < 0", worst_rel);
  cr_assert_lt(worst_abs, 2.5e-7, "absolute error %.3g for x >= 0", worst_abs);
  cr_assert_lt(worst_e, 2e-5, "e^(-x^2/2): relative error %.3g", worst_e);
  for (float x = -5.0f; x < 0; x += 0.001f) {
    float e;
    double c = km_cdf_e(x, &e), want = 0.5 * erfc(-(double)x / sqrt(2.0));
    cr_assert_lt(fabs(c - want) / want, 2.5e-6, "Phi(%g) = %.9g, want %.9g", x, c, want);
  }
}

static double ref_grad(IrOp op, double a, double dy) {
  switch (op) {
  case OP_RELU_GRAD: return a > 0 ? dy : 0;
  case OP_GELU_GRAD: {
    double cdf = 0.5 * (1 + erf(a / sqrt(2.0)));
    return dy * (cdf + a * exp(-0.5 * a * a) / sqrt(2 * M_PI));
  }
  case OP_TANH_GRAD: return dy * (1 - a * a);
  case OP_SIGMOID_GRAD: return dy * a * (1 - a);
  case OP_SILU_GRAD: {
    double sg = 1 / (1 + exp(-a));
    return dy * sg * (1 + a * (1 - sg));
  }
  default: return NAN;
  }
}

Test(kernels, activation_grads) {
  IrOp ops[] = {OP_RELU_GRAD, OP_GELU_GRAD, OP_TANH_GRAD, OP_SIGMOID_GRAD, OP_SILU_GRAD};
  for (int k = 0; k < 5; k++) {
    for (int t = 1; t <= 2; t++) {
      KH h;
      kh_init(&h, t);
      int64_t n = t == 1 ? 777 : 70000;
      int32_t a = kh_leaf(&h, 2, D(n / 7, 7), -5, 5);
      int32_t d = kh_leaf(&h, 2, D(n / 7, 7), -2, 2);
      int32_t y = ir_op(&h.B, (IrNode){.op = (uint16_t)ops[k], .nin = 2, .in = {a, d}});
      kh_run_ok(&h, y);
      int64_t m = ir_numel(T(&h, y));
      float *want = malloc((size_t)m * 4);
      for (int64_t i = 0; i < m; i++) want[i] = (float)ref_grad(ops[k], kh_f(&h, a)[i], kh_f(&h, d)[i]);
      tu_allclose(kh_f(&h, y), want, m, 3e-6, 1e-6, ir_op_info[ops[k]].name);
      free(want);
      kh_free(&h);
    }
  }
}

/* gelu_grad agrees with a central difference of the gelu kernel itself */
Test(kernels, gelu_grad_matches_difference) {
  KH h;
  kh_init(&h, 1);
  int64_t n = 401;
  int32_t x = kh_leaf(&h, 1, D(n), -6, 6);
  int32_t xp = kh_leaf(&h, 1, D(n), 0, 1), xm = kh_leaf(&h, 1, D(n), 0, 1);
  int32_t one = kh_leaf(&h, 1, D(n), 1, 1);
  for (int64_t i = 0; i < n; i++) {
    double v = -6 + 12.0 * (double)i / (double)(n - 1);
    kh_f(&h, x)[i] = (float)v;
    kh_f(&h, xp)[i] = (float)(v + 1e-2);
    kh_f(&h, xm)[i] = (float)(v - 1e-2);
  }
  int32_t gp = ir_op(&h.B, (IrNode){.op = OP_GELU, .nin = 1, .in = {xp}});
  int32_t gm = ir_op(&h.B, (IrNode){.op = OP_GELU, .nin = 1, .in = {xm}});
  int32_t g = ir_op(&h.B, (IrNode){.op = OP_GELU_GRAD, .nin = 2, .in = {x, one}});
  kh_run_ok(&h, gp);
  kh_run_ok(&h, gm);
  kh_run_ok(&h, g);
  float *want = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++)
    want[i] = (kh_f(&h, gp)[i] - kh_f(&h, gm)[i]) / (kh_f(&h, xp)[i] - kh_f(&h, xm)[i]);
  tu_allclose(kh_f(&h, g), want, n, 2e-3, 2e-3, "gelu_grad vs difference");
  free(want);
  kh_free(&h);
}

/* ---- softmax and layernorm ------------------------------------------------------ */

static void ref_softmax(const float *x, float *y, int64_t L) {
  double mx = -INFINITY, s = 0;
  for (int64_t j = 0; j < L; j++) mx = x[j] > mx ? x[j] : mx;
  if (mx == -INFINITY) {
    for (int64_t j = 0; j < L; j++) y[j] = 0;
    return;
  }
  for (int64_t j = 0; j < L; j++) s += exp((double)x[j] - mx);
  for (int64_t j = 0; j < L; j++) y[j] = (float)(exp((double)x[j] - mx) / s);
}

Test(kernels, softmax_and_grad) {
  for (int t = 1; t <= 2; t++) {
    KH h;
    kh_init(&h, t);
    int64_t R = t == 1 ? 13 : 3000, L = 17;
    int32_t x = kh_leaf(&h, 3, D(R / 1, 1, L), -20, 20);
    float *px = kh_f(&h, x);
    for (int64_t j = 3; j < L; j++) px[0 * L + j] = -INFINITY;   /* a causal-like row */
    for (int64_t j = 0; j < L; j++) px[1 * L + j] = -INFINITY;   /* fully masked */
    px[2 * L + 4] = 80;                                         /* large logit */
    int32_t y = ir_op(&h.B, (IrNode){.op = OP_SOFTMAX, .nin = 1, .in = {x}});
    kh_run_ok(&h, y);
    float *want = malloc((size_t)(R * L) * 4);
    for (int64_t r = 0; r < R; r++) ref_softmax(px + r * L, want + r * L, L);
    tu_allclose(kh_f(&h, y), want, R * L, 2e-6, 1e-8, "softmax");
    for (int64_t j = 0; j < L; j++) cr_assert(kh_f(&h, y)[L + j] == 0.0f, "masked row is zeros");
    int32_t dy = kh_leaf(&h, 3, D(R, 1, L), -1, 1);
    int32_t dx = ir_op(&h.B, (IrNode){.op = OP_SOFTMAX_GRAD, .nin = 2, .in = {y, dy}});
    kh_run_ok(&h, dx);
    for (int64_t r = 0; r < R; r++) {
      const float *yr = kh_f(&h, y) + r * L, *dr = kh_f(&h, dy) + r * L;
      double s = 0;
      for (int64_t j = 0; j < L; j++) s += (double)yr[j] * dr[j];
      for (int64_t j = 0; j < L; j++) want[r * L + j] = (float)(yr[j] * (dr[j] - s));
    }
    tu_allclose(kh_f(&h, dx), want, R * L, 1e-5, 1e-7, "softmax_grad");
    free(want);
    kh_free(&h);
  }
}

Test(kernels, layernorm_and_grad) {
  for (int t = 1; t <= 2; t++) {
    KH h;
    kh_init(&h, t);
    int64_t R = t == 1 ? 5 : 2048, L = t == 1 ? 9 : 128;
    int32_t x = kh_leaf(&h, 2, D(R, L), -3, 5);
    IrNode nd = {.op = OP_LAYERNORM, .nin = 1, .in = {x}};
    nd.attr.f[0] = 1e-5;
    int32_t y = ir_op(&h.B, nd);
    kh_run_ok(&h, y);
    int32_t dy = kh_leaf(&h, 2, D(R, L), -1, 1);
    IrNode ng = {.op = OP_LAYERNORM_GRAD, .nin = 2, .in = {x, dy}};
    ng.attr.f[0] = 1e-5;
    int32_t dx = ir_op(&h.B, ng);
    kh_run_ok(&h, dx);
    float *wy = malloc((size_t)(R * L) * 4), *wd = malloc((size_t)(R * L) * 4);
    for (int64_t r = 0; r < R; r++) {
      const float *xr = kh_f(&h, x) + r * L, *dr = kh_f(&h, dy) + r * L;
      double mu = 0, var = 0;
      for (int64_t j = 0; j < L; j++) mu += xr[j];
      mu /= (double)L;
      for (int64_t j = 0; j < L; j++) var += (xr[j] - mu) * (xr[j] - mu);
      var /= (double)L;
      double rs = 1 / sqrt(var + 1e-5), md = 0, mdx = 0;
      for (int64_t j = 0; j < L; j++) {
        md += dr[j];
        mdx += dr[j] * (xr[j] - mu) * rs;
      }
      md /= (double)L;
      mdx /= (double)L;
      for (int64_t j = 0; j < L; j++) {
        double xh = (xr[j] - mu) * rs;
        wy[r * L + j] = (float)xh;
        wd[r * L + j] = (float)(rs * (dr[j] - md - xh * mdx));
      }
    }
    tu_allclose(kh_f(&h, y), wy, R * L, 1e-5, 1e-5, "layernorm");
    tu_allclose(kh_f(&h, dx), wd, R * L, 1e-4, 1e-5, "layernorm_grad");
    free(wy);
    free(wd);
    kh_free(&h);
  }
}

/* ---- matmul ------------------------------------------------------------------- */

static void check_matmul(int threads, int ra, const int64_t *da, int rb, const int64_t *db,
                         int ta, int tb) {
  KH h;
  kh_init(&h, threads);
  int32_t a = kh_leaf(&h, ra, da, -1, 1), b = kh_leaf(&h, rb, db, -1, 1);
  IrNode nd = {.op = OP_MATMUL, .nin = 2, .in = {a, b}};
  nd.attr.i[0] = ta;
  nd.attr.i[1] = tb;
  int32_t y = ir_op(&h.B, nd);
  kh_run_ok(&h, y);
  const IrType *Y = T(&h, y), *A = T(&h, a), *B = T(&h, b);
  int R = Y->rank;
  int64_t m = Y->dim[R - 2], n = Y->dim[R - 1];
  int64_t k = ta ? A->dim[ra - 2] : A->dim[ra - 1];
  int64_t nb = ir_numel(Y) / (m * n);
  /* batch broadcasting through bidx on the batch-only shapes */
  IrType Yb = *Y, Ab = *A, Bb = *B;
  Yb.rank = (uint8_t)(R - 2);
  Ab.rank = (uint8_t)(ra - 2);
  Bb.rank = (uint8_t)(rb - 2);
  float *want = malloc((size_t)ir_numel(Y) * 4);
  const float *pa = kh_f(&h, a), *pb = kh_f(&h, b);
  for (int64_t bi = 0; bi < nb; bi++) {
    const float *ma = pa + bidx(&Yb, &Ab, bi) * m * k, *mb = pb + bidx(&Yb, &Bb, bi) * k * n;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t l = 0; l < k; l++)
          s += (double)(ta ? ma[l * m + i] : ma[i * k + l]) * (tb ? mb[j * k + l] : mb[l * n + j]);
        want[(bi * m + i) * n + j] = (float)s;
      }
  }
  tu_allclose(kh_f(&h, y), want, ir_numel(Y), 1e-4, 1e-4, "matmul");
  free(want);
  kh_free(&h);
}

Test(kernels, matmul_2d_weight) {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      check_matmul(1, 2, D(5, 7), 2, D(7, 3), 0, 0);
      check_matmul(1, 2, ta ? D(7, 5) : D(5, 7), 2, tb ? D(3, 7) : D(7, 3), ta, tb);
      check_matmul(1, 3, ta ? D(2, 7, 5) : D(2, 5, 7), 2, tb ? D(3, 7) : D(7, 3), ta, tb);
      check_matmul(2, 3, ta ? D(4, 33, 65) : D(4, 65, 33), 2, tb ? D(31, 33) : D(33, 31), ta, tb);
    }
}

Test(kernels, matmul_batched_and_broadcast) {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      check_matmul(1, 4, ta ? D(2, 3, 5, 4) : D(2, 3, 4, 5), 4, tb ? D(2, 3, 6, 5) : D(2, 3, 5, 6),
                   ta, tb);
      check_matmul(2, 3, ta ? D(3, 5, 4) : D(3, 4, 5), 4, tb ? D(2, 1, 6, 5) : D(2, 1, 5, 6), ta,
                   tb);
      check_matmul(1, 2, ta ? D(5, 4) : D(4, 5), 3, tb ? D(3, 6, 5) : D(3, 5, 6), ta, tb);
      check_matmul(2, 4, ta ? D(4, 8, 16, 33) : D(4, 8, 33, 16), 4,
                   tb ? D(4, 8, 29, 16) : D(4, 8, 16, 29), ta, tb);
    }
  /* large products: each GEMM threaded by BLAS */
  check_matmul(2, 3, D(2, 130, 150), 3, D(2, 150, 140), 0, 0);
  check_matmul(2, 3, D(2, 150, 130), 3, D(2, 140, 150), 1, 1);
}

Test(kernels, gemm_direct) {
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {10, 10, 10, 10};
  /* [2,3] x [3,2] with beta 1 */
  k_gemm(NULL, false, false, 2, 2, 3, 1.0f, a, 3, b, 2, 1.0f, c, 2);
  float want[4] = {10 + 1 + 3, 10 + 2 + 3, 10 + 4 + 6, 10 + 5 + 6};
  tu_allclose(c, want, 4, 0, 0, "k_gemm");
  /* 2 a^T b[:2]: a^T is [3, 2], b's first two rows [2, 2] */
  float c6[6];
  Pool *pool = pool_new(ra_alloc_default(), 2);
  cr_assert(pool);
  k_gemm(pool, true, false, 3, 2, 2, 2.0f, a, 3, b, 2, 0.0f, c6, 2);
  float want6[6] = {2 * 1, 2 * 4, 2 * 2, 2 * 5, 2 * 3, 2 * 6};
  tu_allclose(c6, want6, 6, 0, 0, "k_gemm transposed");
  /* a product large enough to be split: by rows, then by columns */
  for (int cols = 0; cols < 2; cols++) {
    int64_t m = cols ? 64 : 300, n = cols ? 300 : 64, k = 200;
    float *A = malloc((size_t)(m * k) * 4), *B = malloc((size_t)(k * n) * 4);
    float *C1 = malloc((size_t)(m * n) * 4), *C2 = malloc((size_t)(m * n) * 4);
    cr_assert(A && B && C1 && C2);
    for (int64_t i = 0; i < m * k; i++) A[i] = (float)((i * 7) % 13) - 6.0f;
    for (int64_t i = 0; i < k * n; i++) B[i] = (float)((i * 5) % 11) - 5.0f;
    k_gemm(NULL, false, false, m, n, k, 1.0f, A, k, B, n, 0.0f, C1, n);
    k_gemm(pool, false, false, m, n, k, 1.0f, A, k, B, n, 0.0f, C2, n);
    cr_assert(memcmp(C1, C2, (size_t)(m * n) * 4) == 0, "split GEMM differs (cols %d)", cols);
    free(A);
    free(B);
    free(C1);
    free(C2);
  }
  pool_free(pool);
}

/* ---- gather and scatter_add ---------------------------------------------------- */

Test(kernels, gather_scatter) {
  for (int t = 1; t <= 2; t++) {
    KH h;
    kh_init(&h, t);
    int64_t V = 11, d = t == 1 ? 5 : 96, B = 7, L = t == 1 ? 3 : 200;
    int32_t tab = kh_leaf(&h, 2, D(V, d), -1, 1);
    int32_t idx = kh_ileaf(&h, 2, D(B, L), (int32_t)V);
    int32_t y = ir_op(&h.B, (IrNode){.op = OP_GATHER, .nin = 2, .in = {tab, idx}});
    kh_run_ok(&h, y);
    for (int64_t p = 0; p < B * L; p++)
      for (int64_t c = 0; c < d; c++)
        cr_assert_eq(kh_f(&h, y)[p * d + c], kh_f(&h, tab)[kh_i(&h, idx)[p] * d + c]);
    int32_t dy = kh_leaf(&h, 3, D(B, L, d), -1, 1);
    IrNode ns = {.op = OP_SCATTER_ADD, .nin = 2, .in = {idx, dy}};
    ns.type = ir_type_make(IR_F32, 2, D(V, d), false);
    int32_t s = ir_op(&h.B, ns);
    for (int64_t i = 0; i < V * d; i++) kh_f(&h, s)[i] = 99;  /* must be overwritten */
    kh_run_ok(&h, s);
    double *want = calloc((size_t)(V * d), sizeof *want);
    for (int64_t p = 0; p < B * L; p++)
      for (int64_t c = 0; c < d; c++) want[kh_i(&h, idx)[p] * d + c] += kh_f(&h, dy)[p * d + c];
    float *wf = malloc((size_t)(V * d) * 4);
    for (int64_t i = 0; i < V * d; i++) wf[i] = (float)want[i];
    tu_allclose(kh_f(&h, s), wf, V * d, 1e-5, 1e-5, "scatter_add");
    free(want);
    free(wf);
    kh_free(&h);
  }
}

Test(kernels, index_range_errors) {
  KH h;
  kh_init(&h, 1);
  int32_t tab = kh_leaf(&h, 2, D(4000, 3), -1, 1);
  int32_t idx = kh_ileaf(&h, 1, D(6), 4000);
  kh_i(&h, idx)[4] = 5012;
  int32_t y = ir_op(&h.B, (IrNode){.op = OP_GATHER, .nin = 2, .in = {tab, idx}});
  cr_assert_eq(kh_run(&h, y), -1);
  cr_assert(strstr(h.kc.err, "token id 5012 is outside the vocabulary of 4000"), "%s", h.kc.err);
  kh_i(&h, idx)[4] = -1;
  cr_assert_eq(kh_run(&h, y), -1);
  cr_assert(strstr(h.kc.err, "token id -1"), "%s", h.kc.err);
  int32_t dy = kh_leaf(&h, 2, D(6, 3), -1, 1);
  IrNode ns = {.op = OP_SCATTER_ADD, .nin = 2, .in = {idx, dy}};
  ns.type = ir_type_make(IR_F32, 2, D(4000, 3), false);
  int32_t s = ir_op(&h.B, ns);
  cr_assert_eq(kh_run(&h, s), -1);
  cr_assert(strstr(h.kc.err, "outside the vocabulary of 4000"), "%s", h.kc.err);
  /* cross entropy targets */
  int32_t lg = kh_leaf(&h, 2, D(3, 5), -1, 1);
  int32_t tg = kh_ileaf(&h, 1, D(3), 5);
  kh_i(&h, tg)[2] = 5;
  int32_t ce = ir_op(&h.B, (IrNode){.op = OP_CROSS_ENTROPY, .nin = 2, .in = {lg, tg}});
  cr_assert_eq(kh_run(&h, ce), -1);
  cr_assert(strstr(h.kc.err, "target 5 is outside the 5 classes (at position 2)"), "%s", h.kc.err);
  kh_free(&h);
}

/* ---- reductions ------------------------------------------------------------- */

Test(kernels, reductions_every_axis) {
  IrOp ops[] = {OP_SUM, OP_MEAN, OP_MAX};
  const int64_t shapes[2][3] = {{3, 4, 5}, {2, 70, 600}};
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < 3; k++)
      for (int ax = 0; ax < 3; ax++) {
        KH h;
        kh_init(&h, s + 1);
        const int64_t *sh = shapes[s];
        int32_t x = kh_leaf(&h, 3, sh, -1, 1);
        IrNode nd = {.op = (uint16_t)ops[k], .nin = 1, .in = {x}};
        nd.attr.i[0] = ax;
        int32_t y = ir_op(&h.B, nd);
        kh_run_ok(&h, y);
        int64_t outer = 1, inner = 1, len = sh[ax];
        for (int j = 0; j < ax; j++) outer *= sh[j];
        for (int j = ax + 1; j < 3; j++) inner *= sh[j];
        float *want = malloc((size_t)(outer * inner) * 4);
        const float *px = kh_f(&h, x);
        for (int64_t o = 0; o < outer; o++)
          for (int64_t c = 0; c < inner; c++) {
            double acc = k == 2 ? -INFINITY : 0;
            for (int64_t l = 0; l < len; l++) {
              double v = px[(o * len + l) * inner + c];
              acc = k == 2 ? (v > acc ? v : acc) : acc + v;
            }
            want[o * inner + c] = (float)(k == 1 ? acc / (double)len : acc);
          }
        tu_allclose(kh_f(&h, y), want, outer * inner, 1e-5, 1e-5, ir_op_info[ops[k]].name);
        if (k == 2) {
          int32_t dy = kh_leaf(&h, 2, D(outer, inner), 1, 2);
          /* shape [outer, inner] matches the reduced type only by numel; use the node type */
          h.f->nodes[dy].type = *T(&h, y);
          int32_t g = ir_op(&h.B, (IrNode){.op = OP_MAX_GRAD, .nin = 3, .in = {x, y, dy},
                                           .attr = nd.attr});
          kh_run_ok(&h, g);
          const float *pg = kh_f(&h, g), *pd = kh_f(&h, dy);
          for (int64_t o = 0; o < outer; o++)
            for (int64_t c = 0; c < inner; c++) {
              int64_t best = 0;
              for (int64_t l = 1; l < len; l++)
                if (px[(o * len + l) * inner + c] > px[(o * len + best) * inner + c]) best = l;
              for (int64_t l = 0; l < len; l++)
                cr_assert_eq(pg[(o * len + l) * inner + c], l == best ? pd[o * inner + c] : 0.0f);
            }
        }
        free(want);
        kh_free(&h);
      }
}

Test(kernels, max_grad_first_argmax) {
  KH h;
  kh_init(&h, 1);
  int32_t x = kh_leaf(&h, 1, D(5), 0, 1);
  float v[5] = {1, 3, 2, 3, 0};
  memcpy(kh_f(&h, x), v, sizeof v);
  IrNode nd = {.op = OP_MAX, .nin = 1, .in = {x}};
  int32_t y = ir_op(&h.B, nd);
  kh_run_ok(&h, y);
  cr_assert_eq(kh_f(&h, y)[0], 3.0f);
  int32_t dy = kh_leaf(&h, 0, NULL, 5, 5);
  int32_t g = ir_op(&h.B, (IrNode){.op = OP_MAX_GRAD, .nin = 3, .in = {x, y, dy}});
  kh_run_ok(&h, g);
  float want[5] = {0, 5, 0, 0, 0};
  tu_allclose(kh_f(&h, g), want, 5, 0, 0, "max_grad");
  kh_free(&h);
}

Test(kernels, broadcast_axis) {
  for (int ax = 0; ax < 3; ax++) {
    KH h;
    kh_init(&h, 2);
    int32_t x = kh_leaf(&h, 2, D(30, 500), -1, 1);
    IrNode nd = {.op = OP_BROADCAST, .nin = 1, .in = {x}};
    nd.attr.i[0] = ax;
    int64_t d3[3];
    for (int j = 0, s = 0; j < 3; j++) d3[j] = j == ax ? 7 : (s++ == 0 ? 30 : 500);
    nd.type = ir_type_make(IR_F32, 3, d3, false);
    int32_t y = ir_op(&h.B, nd);
    kh_run_ok(&h, y);
    int64_t outer = 1, inner = 1;
    for (int j = 0; j < ax; j++) outer *= d3[j];
    for (int j = ax + 1; j < 3; j++) inner *= d3[j];
    for (int64_t o = 0; o < outer; o++)
      for (int64_t l = 0; l < 7; l++)
        for (int64_t c = 0; c < inner; c++)
          cr_assert_eq(kh_f(&h, y)[(o * 7 + l) * inner + c], kh_f(&h, x)[o * inner + c]);
    kh_free(&h);
  }
}

static void check_sum_to(int threads, int rx, const int64_t *dx, int ry, const int64_t *dy) {
  KH h;
  kh_init(&h, threads);
  int32_t x = kh_leaf(&h, rx, dx, -1, 1);
  IrNode nd = {.op = OP_SUM_TO, .nin = 1, .in = {x}};
  nd.type = ir_type_make(IR_F32, ry, dy, false);
  int32_t y = ir_op(&h.B, nd);
  kh_run_ok(&h, y);
  int64_t m = ir_numel(T(&h, y)), n = ir_numel(T(&h, x));
  double *acc = calloc((size_t)m, sizeof *acc);
  for (int64_t i = 0; i < n; i++) acc[bidx(T(&h, x), T(&h, y), i)] += kh_f(&h, x)[i];
  float *want = malloc((size_t)m * 4);
  for (int64_t i = 0; i < m; i++) want[i] = (float)acc[i];
  tu_allclose(kh_f(&h, y), want, m, 1e-4, 1e-4, "sum_to");
  free(acc);
  free(want);
  kh_free(&h);
}

Test(kernels, sum_to_patterns) {
  for (int t = 1; t <= 2; t++) {
    check_sum_to(t, 3, D(4, 5, 6), 1, D(6));       /* bias: leading rows */
    check_sum_to(t, 3, D(4, 5, 6), 2, D(5, 6));
    check_sum_to(t, 3, D(4, 5, 6), 3, D(4, 5, 1)); /* trailing */
    check_sum_to(t, 3, D(4, 5, 6), 0, NULL);       /* everything */
    check_sum_to(t, 3, D(4, 5, 6), 3, D(4, 5, 6)); /* nothing */
    check_sum_to(t, 3, D(4, 5, 6), 3, D(4, 1, 6)); /* middle: general */
    check_sum_to(t, 4, D(2, 3, 4, 5), 4, D(1, 3, 1, 5));
    check_sum_to(t, 3, D(64, 32, 128), 1, D(128));
    check_sum_to(t, 2, D(300, 301), 0, NULL);
  }
}

/* ---- layout ------------------------------------------------------------------ */

static void check_transpose(int threads, const int64_t *dx, const int64_t *perm) {
  KH h;
  kh_init(&h, threads);
  int32_t x = kh_leaf(&h, 4, dx, -1, 1);
  IrNode nd = {.op = OP_TRANSPOSE, .nin = 1, .in = {x}};
  for (int k = 0; k < 4; k++) nd.attr.i[k] = perm[k];
  int32_t y = ir_op(&h.B, nd);
  kh_run_ok(&h, y);
  const IrType *Y = T(&h, y);
  int64_t xs[4] = {dx[1] * dx[2] * dx[3], dx[2] * dx[3], dx[3], 1};
  int64_t n = ir_numel(Y);
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i, off = 0;
    for (int k = 3; k >= 0; k--) {
      off += (r % Y->dim[k]) * xs[perm[k]];
      r /= Y->dim[k];
    }
    cr_assert_eq(kh_f(&h, y)[i], kh_f(&h, x)[off], "transpose element %ld", (long)i);
  }
  kh_free(&h);
}

Test(kernels, transpose_perms) {
  const int64_t perms[][4] = {{0, 2, 1, 3}, {0, 1, 3, 2}, {3, 2, 1, 0}, {1, 0, 2, 3},
                              {0, 1, 2, 3}, {2, 0, 3, 1}, {0, 3, 1, 2}};
  for (int p = 0; p < 7; p++) {
    check_transpose(1, D(2, 3, 4, 5), perms[p]);
    check_transpose(2, D(8, 33, 8, 17), perms[p]);
  }
  /* the last two swapped: matrices in 16x16 tiles, their edges, one matrix
   * cut into blocks of rows */
  const int64_t last2[4] = {0, 1, 3, 2};
  for (int t = 1; t <= 3; t++) {
    check_transpose(t, D(3, 2, 37, 50), last2);
    check_transpose(t, D(1, 1, 130, 67), last2);
    check_transpose(t, D(1, 1, 512, 128), last2);
  }
}

Test(kernels, concat_slice_reshape) {
  for (int ax = 0; ax < 3; ax++) {
    KH h;
    kh_init(&h, 2);
    int64_t da[3] = {3, 4, 5}, db[3] = {3, 4, 5}, dc[3] = {3, 4, 5};
    da[ax] = 2;
    db[ax] = 1;
    dc[ax] = 4;
    int32_t a = kh_leaf(&h, 3, da, -1, 1), b = kh_leaf(&h, 3, db, -1, 1),
            c = kh_leaf(&h, 3, dc, -1, 1);
    IrNode nd = {.op = OP_CONCAT, .nin = 3, .in = {a, b, c}};
    nd.attr.i[0] = ax;
    int32_t y = ir_op(&h.B, nd);
    kh_run_ok(&h, y);
    cr_assert_eq(T(&h, y)->dim[ax], 7);
    /* slices of y give back a, b, c */
    int32_t parts[3] = {a, b, c};
    int64_t from = 0;
    for (int k = 0; k < 3; k++) {
      IrNode ns = {.op = OP_SLICE, .nin = 1, .in = {y}};
      ns.attr.i[0] = ax;
      ns.attr.i[1] = from;
      ns.type = *T(&h, parts[k]);
      int32_t s = ir_op(&h.B, ns);
      kh_run_ok(&h, s);
      tu_allclose(kh_f(&h, s), kh_f(&h, parts[k]), ir_numel(T(&h, s)), 0, 0, "slice(concat)");
      from += T(&h, parts[k])->dim[ax];
    }
    IrNode nr = {.op = OP_RESHAPE, .nin = 1, .in = {y}};
    nr.type = ir_type_make(IR_F32, 1, D(ir_numel(T(&h, y))), false);
    int32_t r = ir_op(&h.B, nr);
    kh_run_ok(&h, r);
    tu_allclose(kh_f(&h, r), kh_f(&h, y), ir_numel(T(&h, y)), 0, 0, "reshape");
    kh_free(&h);
  }
}

Test(kernels, slice_out_of_range) {
  KH h;
  kh_init(&h, 1);
  int32_t x = kh_leaf(&h, 2, D(4, 6), -1, 1);
  IrNode ns = {.op = OP_SLICE, .nin = 1, .in = {x}};
  ns.attr.i[0] = 1;
  ns.attr.i[1] = 2;
  ns.type = ir_type_make(IR_F32, 2, D(4, 3), false);
  int32_t s = ir_op(&h.B, ns);
  h.f->nodes[s].attr.i[1] = 5;  /* corrupted after the shape check */
  cr_assert_eq(kh_run(&h, s), -1);
  cr_assert(strstr(h.kc.err, "outside axis 1"), "%s", h.kc.err);
  kh_free(&h);
}

Test(kernels, causal_mask) {
  KH h;
  kh_init(&h, 1);
  int32_t x = kh_leaf(&h, 3, D(2, 5, 5), -1, 1);
  IrNode nd = {.op = OP_CAUSAL_MASK, .nin = 1, .in = {x}};
  nd.attr.f[0] = -INFINITY;
  int32_t y = ir_op(&h.B, nd);
  kh_run_ok(&h, y);
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < 5; i++)
      for (int j = 0; j < 5; j++) {
        float got = kh_f(&h, y)[(b * 5 + i) * 5 + j];
        if (j > i) cr_assert(isinf(got) && got < 0);
        else cr_assert_eq(got, kh_f(&h, x)[(b * 5 + i) * 5 + j]);
      }
  kh_free(&h);
}

/* ---- causal attention (pass_causal's marks) ------------------------------------ */

/* A [B, H, T, T] leaf lower triangular (zeros above the diagonal). */
static int32_t tri_leaf(KH *h, int64_t T) {
  int32_t a = kh_leaf(h, 4, D(2, 3, T, T), -1, 1);
  float *p = kh_f(h, a);
  for (int64_t m = 0; m < 6; m++)
    for (int64_t i = 0; i < T; i++)
      for (int64_t j = i + 1; j < T; j++) p[(m * T + i) * T + j] = 0.0f;
  return a;
}

/* Bits of matmul(a, b) with mode against the unmarked product; only the
 * entries on and below the diagonal for IR_MM_TRI_OUT (finite above). */
static void check_tri(KH *h, int32_t a, int32_t b, bool ta, bool tb, int64_t mode) {
  IrNode nd = {.op = OP_MATMUL, .nin = 2, .in = {a, b}, .attr.i = {ta, tb, 0}};
  int32_t full = ir_op(&h->B, nd);
  nd.attr.i[2] = mode;
  int32_t tri = ir_op(&h->B, nd);
  cr_assert(full >= 0 && tri >= 0, "%s", h->B.err);
  kh_run_ok(h, full);
  kh_run_ok(h, tri);
  const IrType *t = &h->f->nodes[full].type;
  int64_t m = t->dim[2], n = t->dim[3];
  const float *x = kh_f(h, full), *y = kh_f(h, tri);
  /* libxsmm sums each element in k order, so the products left out (exact
   * zeros) change no bit; OpenBLAS's kernels block k their own way */
  bool exact = !strcmp(k_gemm_backend(NULL), "libxsmm");
  for (int64_t e = 0; e < 6 * m * n; e++) {
    int64_t i = e / n % m, j = e % n;
    if (mode == IR_MM_TRI_OUT && j > i) {
      cr_assert(isfinite(y[e]), "T %lld: entry %lld above the diagonal is %g", (long long)m,
                (long long)e, y[e]);
      continue;
    }
    if (exact)
      cr_assert(memcmp(&x[e], &y[e], 4) == 0, "T %lld ta %d tb %d mode %lld: element %lld %.9g vs %.9g",
                (long long)m, ta, tb, (long long)mode, (long long)e, x[e], y[e]);
    else
      cr_assert(fabsf(x[e] - y[e]) <= 1e-5f * (1 + fabsf(x[e])), "element %lld", (long long)e);
  }
}

/* Every product of causal attention, with sequence lengths that are and are
 * not multiples of the row blocks (and too short for them: the full
 * product), on 1 and 3 threads: the same bits as the full products. */
Test(kernels, causal_products_keep_the_bits) {
  const int64_t Ts[] = {8, 33, 48, 64, 100, 128, 160, 192};
  for (int t = 1; t <= 3; t += 2)
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
      int64_t T = Ts[ti], hd = 16;
      KH h;
      kh_init(&h, t);
      int32_t p = tri_leaf(&h, T);
      int32_t v = kh_leaf(&h, 4, D(2, 3, T, hd), -1, 1), q = kh_leaf(&h, 4, D(2, 3, T, hd), -1, 1);
      check_tri(&h, p, v, false, false, IR_MM_TRI_A); /* P V, dS K */
      check_tri(&h, p, q, true, false, IR_MM_TRI_A);  /* P^T dctx, dS^T Q */
      check_tri(&h, q, v, false, true, IR_MM_TRI_OUT); /* Q K^T, dctx V^T */
      kh_free(&h);
    }
}

/* Causal rows (softmax over x masked with -inf, softmax_grad of such a y):
 * the prefixes give the full rows' bits, zeros above the diagonal. */
Test(kernels, causal_softmax_rows_keep_the_bits) {
  for (int64_t T = 5; T <= 70; T += 13) {
    KH h;
    kh_init(&h, 2);
    int32_t x = kh_leaf(&h, 3, D(3, T, T), -8, 8);
    IrNode mk = {.op = OP_CAUSAL_MASK, .nin = 1, .in = {x}, .attr.f = {-INFINITY}};
    int32_t xm = ir_op(&h.B, mk);
    IrNode sm = {.op = OP_SOFTMAX, .nin = 1, .in = {xm}};
    int32_t y0 = ir_op(&h.B, sm);
    sm.attr.i[0] = 1;
    int32_t y1 = ir_op(&h.B, sm);
    int32_t dy = kh_leaf(&h, 3, D(3, T, T), -1, 1);
    IrNode sg = {.op = OP_SOFTMAX_GRAD, .nin = 2, .in = {y0, dy}};
    int32_t g0 = ir_op(&h.B, sg);
    sg.attr.i[0] = 1;
    int32_t g1 = ir_op(&h.B, sg);
    kh_run_ok(&h, xm);
    kh_run_ok(&h, y0);
    kh_run_ok(&h, y1);
    kh_run_ok(&h, g0);
    kh_run_ok(&h, g1);
    int64_t N = 3 * T * T;
    cr_assert(memcmp(kh_f(&h, y0), kh_f(&h, y1), (size_t)N * 4) == 0, "T %lld: softmax", (long long)T);
    for (int64_t e = 0; e < N; e++) {
      int64_t i = e / T % T, j = e % T;
      float a = kh_f(&h, g0)[e], b = kh_f(&h, g1)[e];
      if (j > i) cr_assert(b == 0.0f && a == 0.0f, "T %lld: gradient above the diagonal", (long long)T);
      else cr_assert(memcmp(&a, &b, 4) == 0, "T %lld: softmax_grad element %lld", (long long)T, (long long)e);
    }
    kh_free(&h);
  }
}

/* ---- cross entropy ------------------------------------------------------------- */

Test(kernels, cross_entropy_and_grad) {
  for (int t = 1; t <= 2; t++) {
    KH h;
    kh_init(&h, t);
    int64_t B = t == 1 ? 3 : 64, L = t == 1 ? 4 : 50, K = t == 1 ? 7 : 300;
    int32_t lg = kh_leaf(&h, 3, D(B, L, K), -8, 8);
    kh_f(&h, lg)[3] = 90;  /* large logit: still finite */
    int32_t tg = kh_ileaf(&h, 2, D(B, L), (int32_t)K);
    int32_t ce = ir_op(&h.B, (IrNode){.op = OP_CROSS_ENTROPY, .nin = 2, .in = {lg, tg}});
    kh_run_ok(&h, ce);
    double s = 0;
    float *want = malloc((size_t)(B * L * K) * 4);
    for (int64_t r = 0; r < B * L; r++) {
      const float *xr = kh_f(&h, lg) + r * K;
      ref_softmax(xr, want + r * K, K);
      double mx = -INFINITY, z = 0;
      for (int64_t j = 0; j < K; j++) mx = xr[j] > mx ? xr[j] : mx;
      for (int64_t j = 0; j < K; j++) z += exp(xr[j] - mx);
      s += mx + log(z) - xr[kh_i(&h, tg)[r]];
    }
    float wl = (float)(s / (double)(B * L));
    tu_allclose(kh_f(&h, ce), &wl, 1, 1e-5, 1e-6, "cross_entropy");
    int32_t dl = kh_leaf(&h, 0, NULL, 0.5f, 0.5f);
    int32_t g = ir_op(&h.B, (IrNode){.op = OP_CROSS_ENTROPY_GRAD, .nin = 3, .in = {lg, tg, dl}});
    kh_run_ok(&h, g);
    for (int64_t r = 0; r < B * L; r++) {
      want[r * K + kh_i(&h, tg)[r]] -= 1.0f;
      for (int64_t j = 0; j < K; j++) want[r * K + j] *= 0.5f / (float)(B * L);
    }
    tu_allclose(kh_f(&h, g), want, B * L * K, 1e-5, 1e-8, "cross_entropy_grad");
    free(want);
    kh_free(&h);
  }
}

/* ---- dropout --------------------------------------------------------------- */

Test(kernels, dropout_mask_and_grad) {
  KH h;
  kh_init(&h, 2);
  int64_t n = 100001;
  int32_t x = kh_leaf(&h, 1, D(n), 1, 2);
  IrNode nd = {.op = OP_DROPOUT, .nin = 1, .in = {x}};
  nd.attr.f[0] = 0.25;
  nd.attr.i[0] = 3;
  int32_t y = ir_op(&h.B, nd);
  nd.op = OP_DROPOUT_GRAD;
  int32_t ones = kh_leaf(&h, 1, D(n), 1, 1);
  nd.in[0] = ones;
  int32_t g = ir_op(&h.B, nd);
  kh_run_ok(&h, y);
  kh_run_ok(&h, g);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    float yi = kh_f(&h, y)[i], gi = kh_f(&h, g)[i];
    if (yi != 0) {
      kept++;
      cr_assert_float_eq(yi, kh_f(&h, x)[i] / 0.75f, 1e-6);
      cr_assert_float_eq(gi, 1 / 0.75f, 1e-6, "grad keeps the same elements");
    } else {
      cr_assert_eq(gi, 0.0f, "grad drops the same elements (%ld)", (long)i);
    }
  }
  /* the mask is the documented Philox draw: word i % 4 of block i / 4 */
  for (int64_t i = 0; i < n; i += 997) {
    uint32_t w[4];
    rng_philox(1234, RNG_STREAM_DROPOUT + 3, ((uint64_t)7 << 32) + (uint64_t)i / 4, w);
    bool keep = (double)(w[i % 4] >> 8) / 16777216.0 >= 0.25;
    cr_assert_eq(keep, kh_f(&h, y)[i] != 0, "element %ld", (long)i);
  }
  double frac = (double)kept / (double)n;
  cr_assert(fabs(frac - 0.75) < 0.01, "kept fraction %g", frac);
  /* another step gives another mask; eval mode is the identity */
  float *first = malloc((size_t)n * 4);
  memcpy(first, kh_f(&h, y), (size_t)n * 4);
  h.kc.step = 8;
  kh_run_ok(&h, y);
  int64_t same = 0;
  for (int64_t i = 0; i < n; i++) same += (first[i] != 0) == (kh_f(&h, y)[i] != 0);
  cr_assert(same < n * 0.7, "masks of two steps agree on %ld of %ld", (long)same, (long)n);
  h.kc.training = false;
  kh_run_ok(&h, y);
  tu_allclose(kh_f(&h, y), kh_f(&h, x), n, 0, 0, "dropout in eval");
  free(first);
  kh_free(&h);
}

/* ---- native functions --------------------------------------------------------- */

static float cube(float x) { return x * x * x; }
static float cube_d(float x) { return 3 * x * x; }
static void arr_double(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] *= 2;
}
static void arr_double_d(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] = 2;
}

Test(kernels, extern_scalar_and_array) {
  KH h;
  kh_init(&h, 1);
  ExternFn sc = {.name = "cube", .fn = cube, .grad = cube_d};
  ExternFn ar = {.name = "dbl", .array_form = true, .afn = arr_double, .agrad = arr_double_d};
  ExternFn *tab[2] = {&sc, &ar};
  h.kc.externs = tab;
  h.kc.nexterns = 2;
  int32_t x = kh_leaf(&h, 2, D(3, 4), -2, 2), dy = kh_leaf(&h, 2, D(3, 4), -1, 1);
  for (int e = 0; e < 2; e++) {
    IrNode nd = {.op = OP_EXTERN, .nin = 1, .in = {x}};
    nd.attr.i[0] = e;
    int32_t y = ir_op(&h.B, nd);
    kh_run_ok(&h, y);
    IrNode ng = {.op = OP_EXTERN_GRAD, .nin = 2, .in = {x, dy}};
    ng.attr.i[0] = e;
    int32_t g = ir_op(&h.B, ng);
    kh_run_ok(&h, g);
    for (int i = 0; i < 12; i++) {
      float xi = kh_f(&h, x)[i], di = kh_f(&h, dy)[i];
      cr_assert_float_eq(kh_f(&h, y)[i], e ? 2 * xi : xi * xi * xi, 1e-6);
      cr_assert_float_eq(kh_f(&h, g)[i], e ? 2 * di : 3 * xi * xi * di, 1e-6);
    }
  }
  IrNode nd = {.op = OP_EXTERN, .nin = 1, .in = {x}};
  nd.attr.i[0] = 5;
  int32_t bad = ir_op(&h.B, nd);
  cr_assert_eq(kh_run(&h, bad), -1);
  cr_assert(strstr(h.kc.err, "not loaded"), "%s", h.kc.err);
  sc.grad = NULL;
  IrNode ng = {.op = OP_EXTERN_GRAD, .nin = 2, .in = {x, dy}};
  int32_t g = ir_op(&h.B, ng);
  cr_assert_eq(kh_run(&h, g), -1);
  cr_assert(strstr(h.kc.err, "'cube' has no gradient"), "%s", h.kc.err);
  kh_free(&h);
}

/* ---- leaves ------------------------------------------------------------------- */

Test(kernels, const_fill_and_data) {
  KH h;
  kh_init(&h, 1);
  static const float data[6] = {1, 2, 3, 4, 5, 6};
  IrNode nd = {.op = OP_CONST};
  nd.type = ir_type_make(IR_F32, 2, D(2, 3), false);
  nd.data = data;
  int32_t c = ir_op(&h.B, nd);
  kh_run_ok(&h, c);
  tu_allclose(kh_f(&h, c), data, 6, 0, 0, "const data");
  nd.data = NULL;
  nd.attr.f[0] = -2.5;
  int32_t c2 = ir_op(&h.B, nd);
  kh_run_ok(&h, c2);
  for (int i = 0; i < 6; i++) cr_assert_eq(kh_f(&h, c2)[i], -2.5f);
  kh_free(&h);
}

/* ---- determinism ------------------------------------------------------------ */

/* Builds a mix of ops on large inputs and runs them; returns the outputs'
 * bytes concatenated (malloc'd) and their size. */
static float *det_run(int threads, size_t *count) {
  KH h;
  kh_init(&h, threads);
  int32_t x = kh_leaf(&h, 3, D(32, 64, 128), -2, 2);
  int32_t w = kh_leaf(&h, 2, D(128, 96), -0.1f, 0.1f);
  int32_t bias = kh_leaf(&h, 1, D(96), -1, 1);
  int32_t ids = kh_ileaf(&h, 2, D(32, 64), 500);
  int32_t r[16];
  int nr = 0;
  int32_t mm = r[nr++] = ir_op(&h.B, (IrNode){.op = OP_MATMUL, .nin = 2, .in = {x, w}});
  int32_t ad = r[nr++] = ir_op(&h.B, (IrNode){.op = OP_ADD, .nin = 2, .in = {mm, bias}});
  r[nr++] = ir_op(&h.B, (IrNode){.op = OP_GELU, .nin = 1, .in = {ad}});
  r[nr++] = ir_op(&h.B, (IrNode){.op = OP_SOFTMAX, .nin = 1, .in = {ad}});
  IrNode ln = {.op = OP_LAYERNORM, .nin = 1, .in = {x}};
  ln.attr.f[0] = 1e-5;
  r[nr++] = ir_op(&h.B, ln);
  IrNode st = {.op = OP_SUM_TO, .nin = 1, .in = {ad}};
  st.type = ir_type_make(IR_F32, 1, D(96), false);
  r[nr++] = ir_op(&h.B, st);
  st.type = ir_type_make(IR_F32, 0, NULL, false);
  r[nr++] = ir_op(&h.B, st);
  IrNode sm = {.op = OP_SUM, .nin = 1, .in = {x}};
  sm.attr.i[0] = 0;
  r[nr++] = ir_op(&h.B, sm);
  IrNode sc = {.op = OP_SCATTER_ADD, .nin = 2, .in = {ids, x}};
  sc.type = ir_type_make(IR_F32, 2, D(500, 128), false);
  r[nr++] = ir_op(&h.B, sc);
  int32_t tg = kh_ileaf(&h, 2, D(32, 64), 96);
  r[nr++] = ir_op(&h.B, (IrNode){.op = OP_CROSS_ENTROPY, .nin = 2, .in = {ad, tg}});
  IrNode dr = {.op = OP_DROPOUT, .nin = 1, .in = {x}};
  dr.attr.f[0] = 0.1;
  r[nr++] = ir_op(&h.B, dr);
  IrNode tp = {.op = OP_TRANSPOSE, .nin = 1, .in = {x}};
  tp.attr.i[0] = 2;
  tp.attr.i[1] = 0;
  tp.attr.i[2] = 1;
  r[nr++] = ir_op(&h.B, tp);
  size_t total = 0;
  for (int i = 0; i < nr; i++) {
    kh_run_ok(&h, r[i]);
    total += (size_t)ir_numel(T(&h, r[i]));
  }
  float *all = malloc(total * 4);
  size_t off = 0;
  for (int i = 0; i < nr; i++) {
    size_t m = (size_t)ir_numel(T(&h, r[i]));
    memcpy(all + off, kh_buf(&h, r[i]), m * 4);
    off += m;
  }
  *count = total;
  kh_free(&h);
  return all;
}

Test(kernels, deterministic_with_two_threads) {
  size_t n1, n2;
  float *a = det_run(2, &n1), *b = det_run(2, &n2);
  cr_assert_eq(n1, n2);
  cr_assert(memcmp(a, b, n1 * 4) == 0, "two runs with 2 threads differ");
  free(a);
  free(b);
}

/* GEMMs large enough to be cut into blocks give the same bits on 1, 2 and 3
 * threads, by rows and by columns, with either operand transposed, for
 * whatever kernel OpenBLAS runs (OPENBLAS_CORETYPE as the environment has
 * it; CI runs the suite again with it unset). */
Test(kernels, gemm_bits_independent_of_threads) {
  const int64_t shapes[][3] = {{2048, 96, 128}, {1000, 130, 384}, {64, 2000, 384},
                               {128, 4000, 128}, {777, 555, 33}};
  Pool *pools[3] = {NULL, pool_new(ra_alloc_default(), 2), pool_new(ra_alloc_default(), 3)};
  cr_assert(pools[1] && pools[2]);
  uint64_t st = 12345;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    int64_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
    float *A = malloc((size_t)(m * k) * 4), *B = malloc((size_t)(k * n) * 4);
    float *C[3];
    for (int t = 0; t < 3; t++) C[t] = malloc((size_t)(m * n) * 4);
    cr_assert(A && B && C[0] && C[1] && C[2]);
    for (int64_t i = 0; i < m * k; i++) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      A[i] = (float)((st >> 40) & 0xffffff) / 16777216.0f - 0.5f;
    }
    for (int64_t i = 0; i < k * n; i++) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      B[i] = (float)((st >> 40) & 0xffffff) / 16777216.0f - 0.5f;
    }
    for (int tr = 0; tr < 4; tr++) {
      bool ta = tr & 1, tb = tr & 2;
      for (int t = 0; t < 3; t++)
        k_gemm(pools[t], ta, tb, m, n, k, 1.0f, A, ta ? m : k, B, tb ? k : n, 0.0f, C[t], n);
      for (int t = 1; t < 3; t++)
        cr_assert(memcmp(C[0], C[t], (size_t)(m * n) * 4) == 0,
                  "[%ld,%ld,%ld] ta %d tb %d: 1 and %d threads differ", (long)m, (long)n, (long)k,
                  ta, tb, t + 1);
    }
    free(A);
    free(B);
    for (int t = 0; t < 3; t++) free(C[t]);
  }
  pool_free(pools[1]);
  pool_free(pools[2]);
}

/* Batched products too small for k_gemm to cut (m*n*k under 4 x 262144:
 * attention's [128,128]x[128,32] and the like) are shared out over the
 * batch: each product has the bits of k_gemm alone, on 1, 2 and 3 threads,
 * with every transpose. */
Test(kernels, batched_products_shared_out_keep_the_bits) {
  const int64_t shapes[][4] = {{6, 128, 32, 128}, {5, 128, 128, 32}, {7, 64, 96, 80}};
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int tr = 0; tr < 4; tr++) {
      int64_t nb = shapes[si][0], m = shapes[si][1], n = shapes[si][2], k = shapes[si][3];
      bool ta = tr & 1, tb = tr & 2;
      float *out[3] = {NULL, NULL, NULL};
      for (int t = 1; t <= 3; t++) {
        KH h;
        kh_init(&h, t);
        int32_t a = kh_leaf(&h, 3, ta ? D(nb, k, m) : D(nb, m, k), -1, 1);
        int32_t b = kh_leaf(&h, 3, tb ? D(nb, n, k) : D(nb, k, n), -1, 1);
        IrNode nd = {.op = OP_MATMUL, .nin = 2, .in = {a, b}};
        nd.attr.i[0] = ta;
        nd.attr.i[1] = tb;
        int32_t y = ir_op(&h.B, nd);
        kh_run_ok(&h, y);
        out[t - 1] = malloc((size_t)(nb * m * n) * 4);
        cr_assert(out[t - 1]);
        memcpy(out[t - 1], kh_f(&h, y), (size_t)(nb * m * n) * 4);
        if (t == 1) {
          float *c = malloc((size_t)(m * n) * 4);
          cr_assert(c);
          for (int64_t i = 0; i < nb; i++) {
            k_gemm(NULL, ta, tb, m, n, k, 1.0f, kh_f(&h, a) + i * m * k, ta ? m : k,
                   kh_f(&h, b) + i * k * n, tb ? k : n, 0.0f, c, n);
            cr_assert(memcmp(c, out[0] + i * m * n, (size_t)(m * n) * 4) == 0,
                      "[%ld] x [%ld,%ld,%ld] ta %d tb %d: product %ld differs from k_gemm",
                      (long)nb, (long)m, (long)n, (long)k, ta, tb, (long)i);
          }
          free(c);
        }
        kh_free(&h);
      }
      for (int t = 1; t < 3; t++)
        cr_assert(memcmp(out[0], out[t], (size_t)(nb * m * n) * 4) == 0,
                  "[%ld] x [%ld,%ld,%ld] ta %d tb %d: 1 and %d threads differ", (long)nb, (long)m,
                  (long)n, (long)k, ta, tb, t + 1);
      for (int t = 0; t < 3; t++) free(out[t]);
    }
}

/* every sum across rows uses a partition fixed by the shape, and GEMMs are
 * cut into blocks fixed by the shape: 1 and 2 threads agree bit for bit */
Test(kernels, results_independent_of_threads) {
  size_t n1, n2;
  float *a = det_run(1, &n1), *b = det_run(2, &n2);
  cr_assert_eq(n1, n2);
  cr_assert(memcmp(a, b, n1 * 4) == 0, "1 and 2 threads differ");
  free(a);
  free(b);
}

/* ---- the interpreter ---------------------------------------------------------- */

Test(exec, runs_a_plan_with_every_storage_kind) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "t", 2);
  IrBuilder B = tu_builder(f);
  int32_t w = ir_op(&B, (IrNode){.op = OP_PARAM, .name = "w", .attr.i = {1}, .type = tu_type("f32[3]")});
  int32_t x = tu_input(&B, "x", 0, "f32[2, 3]");
  int32_t k = tu_fill(&B, "f32[]", 10);
  int32_t s = ir_binary(&B, OP_ADD, x, w);
  int32_t v = tu_reshape(&B, s, "f32[6]");
  int32_t y = ir_binary(&B, OP_MUL, v, k);

  uint8_t kind[6] = {STORE_PARAM, STORE_INPUT, STORE_CONST, STORE_ARENA, STORE_VIEW, STORE_ARENA};
  int64_t off[6] = {0, 0, 0, 64, 3 /* s */, 128};
  int32_t last[6] = {6, 6, 6, 6, 6, 6};
  MemPlan plan = {.kind = kind, .offset = off, .last_use = last,
                  .arena_bytes = 128 + 24, .const_bytes = 4};
  float params[8] = {9, 9, 1, 2, 3, 9, 9, 9};
  int64_t poff[2] = {0, 2};
  Exec *ex = exec_new(ra_alloc_default(), f, &plan, params, poff, 1);
  cr_assert(ex);
  cr_assert_eq((uintptr_t)ex->arena % 64, 0);
  KernelCtx kc = {.pool = pool_new(ra_alloc_default(), 2)};
  cr_assert(kc.pool);
  kc.threads = pool_size(kc.pool);
  cr_assert_eq(exec_run(ex, &kc), -1, "input not set");
  cr_assert_eq(ex->err_node, x);
  cr_assert(strstr(kc.err, "input 'x'"), "%s", kc.err);
  float xin[6] = {1, 2, 3, 4, 5, 6};
  ex->inputs[0] = xin;
  cr_assert_eq(exec_run(ex, &kc), 0, "%s", kc.err);
  cr_assert_eq(ex->err_node, -1);
  cr_assert_eq(exec_ptr(ex, v), exec_ptr(ex, s));
  cr_assert_eq(exec_ptr(ex, w), params + 2);
  cr_assert_eq(exec_ptr(ex, x), (void *)xin);
  float want[6] = {20, 40, 60, 50, 70, 90};
  tu_allclose(exec_ptr(ex, y), want, 6, 0, 0, "exec result");
  pool_free(kc.pool);
  exec_free(ex);
  arena_free(&ar);
}

Test(exec, reports_the_failing_node) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "t", 1);
  IrBuilder B = tu_builder(f);
  int32_t t = ir_op(&B, (IrNode){.op = OP_PARAM, .name = "emb", .type = tu_type("f32[10, 2]")});
  int32_t ids = tu_input(&B, "ids", 0, "i32[3]");
  int32_t y = ir_binary(&B, OP_GATHER, t, ids);
  uint8_t kind[3] = {STORE_PARAM, STORE_INPUT, STORE_ARENA};
  int64_t off[3] = {0, 0, 0};
  int32_t last[3] = {3, 3, 3};
  MemPlan plan = {.kind = kind, .offset = off, .last_use = last,
                  .arena_bytes = 24, .const_bytes = 0};
  float params[20] = {0};
  int64_t poff[1] = {0};
  Exec *ex = exec_new(ra_alloc_default(), f, &plan, params, poff, 1);
  cr_assert(ex);
  int32_t bad[3] = {1, 12, 2};
  ex->inputs[0] = bad;
  KernelCtx kc = {.threads = 1};
  cr_assert_eq(exec_run(ex, &kc), -1);
  cr_assert_eq(ex->err_node, y);
  cr_assert(strstr(kc.err, "token id 12 is outside the vocabulary of 10"), "%s", kc.err);
  exec_free(ex);
  arena_free(&ar);
}

/* exec_new takes all its memory through the allocator and fails cleanly */
static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  int *left = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (*left <= 0) return NULL;
  (*left)--;
  return realloc(ptr, nsize);
}

Test(exec, out_of_memory_is_clean) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "t", 1);
  IrBuilder B = tu_builder(f);
  tu_fill(&B, "f32[4]", 1);
  uint8_t kind[1] = {STORE_CONST};
  int64_t off[1] = {0};
  int32_t last[1] = {1};
  MemPlan plan = {.kind = kind, .offset = off, .last_use = last,
                  .arena_bytes = 0, .const_bytes = 16};
  for (int budget = 0; budget < 4; budget++) {
    int left = budget;
    RaAlloc a = {failing_alloc, &left};
    Exec *ex = exec_new(a, f, &plan, NULL, NULL, 0);
    cr_assert(ex == NULL, "budget %d", budget);
  }
  int left = 4;
  RaAlloc a = {failing_alloc, &left};
  Exec *ex = exec_new(a, f, &plan, NULL, NULL, 0);
  cr_assert(ex != NULL);
  cr_assert_eq(((float *)exec_ptr(ex, 0))[3], 1.0f);
  exec_free(ex);
  arena_free(&ar);
}

/* ---- the thread pool ---------------------------------------------------------- */

#define PT_MAXN 5000
#define PT_MAXW 8

/* What one pool_for saw: how often each index ran, each worker's chunk and
 * thread. */
typedef struct PoolTrace {
  _Atomic int hits[PT_MAXN];
  int64_t lo[PT_MAXW], hi[PT_MAXW];
  int calls[PT_MAXW];
  pthread_t th[PT_MAXW];
} PoolTrace;

static void pt_chunk(void *arg, int64_t lo, int64_t hi, int w) {
  PoolTrace *t = arg;
  cr_assert(w >= 0 && w < PT_MAXW);
  t->lo[w] = lo;
  t->hi[w] = hi;
  t->calls[w]++;
  t->th[w] = pthread_self();
  for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&t->hits[i], 1);
}

/* OpenMP's schedule(static) for n iterations on nw threads, written out
 * independently of pool.c: sizes n / nw, the first n % nw one longer. */
static void static_chunk(int64_t n, int nw, int w, int64_t *lo, int64_t *hi) {
  int64_t base = n / nw, extra = n % nw;
  *lo = w * base + (w < extra ? w : extra);
  *hi = *lo + base + (w < extra ? 1 : 0);
}

static void pt_check(Pool *p, int64_t n, int64_t minw) {
  static PoolTrace t;
  memset(&t, 0, sizeof t);
  pool_for(p, n, minw, pt_chunk, &t);
  for (int64_t i = 0; i < n; i++)
    cr_assert_eq(atomic_load(&t.hits[i]), 1, "n %lld: index %lld ran %d times", (long long)n,
                 (long long)i, atomic_load(&t.hits[i]));
  if (n <= 0) {
    for (int w = 0; w < PT_MAXW; w++) cr_assert_eq(t.calls[w], 0, "n %lld: a chunk ran", (long long)n);
    return;
  }
  int64_t want = pool_size(p), most = n / (minw < 1 ? 1 : minw);
  if (most < want) want = most;
  if (n < want) want = n;
  if (want < 1) want = 1;
  cr_assert_eq(pool_workers(p, n, minw), want, "n %lld min %lld", (long long)n, (long long)minw);
  for (int w = 0; w < PT_MAXW; w++) {
    if (w >= want) {
      cr_assert_eq(t.calls[w], 0, "n %lld: worker %d ran but only %lld chunks", (long long)n, w,
                   (long long)want);
      continue;
    }
    int64_t lo, hi;
    static_chunk(n, (int)want, w, &lo, &hi);
    cr_assert_eq(t.calls[w], 1, "n %lld: worker %d ran %d chunks", (long long)n, w, t.calls[w]);
    cr_assert(t.lo[w] == lo && t.hi[w] == hi, "n %lld of %lld chunks: worker %d got [%lld, %lld), "
              "static schedule gives [%lld, %lld)", (long long)n, (long long)want, w,
              (long long)t.lo[w], (long long)t.hi[w], (long long)lo, (long long)hi);
  }
  /* chunk 0 runs on the caller; the others on their workers, or on the
   * caller when it finds them not started */
  cr_assert(pthread_equal(t.th[0], pthread_self()), "chunk 0 runs on the caller");
}

Test(pool, covers_every_index_once_in_static_chunks) {
  for (int size = 2; size <= 4; size++) {
    Pool *p = pool_new(ra_alloc_default(), size);
    cr_assert(p);
    cr_assert_eq(pool_size(p), size);
    int64_t ns[] = {0, 1, 2, 3, 4, 5, 7, 64, 100, 1001, 4999};
    int64_t mins[] = {1, 2, 10, 1000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
      for (size_t j = 0; j < sizeof mins / sizeof mins[0]; j++) pt_check(p, ns[i], mins[j]);
    pool_free(p);
  }
}

/* Chunk 0 (the caller's) takes 100 ms: the others run meanwhile on the
 * workers, so the loop takes about 100 ms, not 300. */
static void slow_first(void *arg, int64_t lo, int64_t hi, int w) {
  pt_chunk(arg, lo, hi, w);
  if (w == 0) {
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
  }
}

Test(pool, chunks_run_on_worker_threads) {
  Pool *p = pool_new(ra_alloc_default(), 4);
  cr_assert(p);
  static PoolTrace t;
  memset(&t, 0, sizeof t);
  pool_for(p, 4, 1, slow_first, &t);
  for (int w = 0; w < 4; w++) cr_assert_eq(t.calls[w], 1);
  cr_assert(pthread_equal(t.th[0], pthread_self()));
  for (int w = 1; w < 4; w++) {
    cr_assert(!pthread_equal(t.th[w], pthread_self()), "chunk %d ran on the caller", w);
    for (int v = 1; v < w; v++)
      cr_assert(!pthread_equal(t.th[w], t.th[v]), "chunks %d and %d on one thread", v, w);
  }
  pool_free(p);
}

Test(pool, chunk_matches_static_schedule) {
  for (int64_t n = 0; n < 200; n++)
    for (int nw = 1; nw <= 7; nw++) {
      int64_t end = 0;
      for (int w = 0; w < nw; w++) {
        int64_t lo, hi, wlo, whi;
        pool_chunk(n, nw, w, &lo, &hi);
        static_chunk(n, nw, w, &wlo, &whi);
        cr_assert(lo == wlo && hi == whi, "n %lld nw %d w %d", (long long)n, nw, w);
        cr_assert_eq(lo, end, "chunks are contiguous");
        end = hi;
      }
      cr_assert_eq(end, n);
    }
}

Test(pool, null_pool_and_pool_of_one_run_serially) {
  cr_assert_eq(pool_size(NULL), 1);
  Pool *one = pool_new(ra_alloc_default(), 1);
  cr_assert(one);
  cr_assert_eq(pool_size(one), 1);
  Pool *ps[2] = {NULL, one};
  for (int k = 0; k < 2; k++) {
    static PoolTrace t;
    memset(&t, 0, sizeof t);
    pool_for(ps[k], 1000, 1, pt_chunk, &t);
    cr_assert_eq(t.calls[0], 1);
    cr_assert(t.lo[0] == 0 && t.hi[0] == 1000);
    cr_assert(pthread_equal(t.th[0], pthread_self()));
    for (int w = 1; w < PT_MAXW; w++) cr_assert_eq(t.calls[w], 0);
    for (int i = 0; i < 1000; i++) cr_assert_eq(atomic_load(&t.hits[i]), 1);
  }
  pool_free(one);
  pool_free(NULL);
}

/* Adds i + 1 for each i of the chunk into the worker's own slot. */
typedef struct SumJob {
  int64_t part[PT_MAXW * 8];  /* 8 apart: no false sharing worth a test */
} SumJob;

static void sum_chunk(void *arg, int64_t lo, int64_t hi, int w) {
  SumJob *j = arg;
  int64_t s = 0;
  for (int64_t i = lo; i < hi; i++) s += i + 1;
  j->part[w * 8] += s;
}

static int64_t sum_loops(Pool *p, int rounds) {
  int64_t bad = 0;
  for (int r = 0; r < rounds; r++) {
    SumJob j;
    memset(&j, 0, sizeof j);
    int64_t n = 1 + r % 97;
    pool_for(p, n, 1, sum_chunk, &j);
    int64_t s = 0;
    for (int w = 0; w < PT_MAXW; w++) s += j.part[w * 8];
    if (s != n * (n + 1) / 2) bad++;
  }
  return bad;
}

Test(pool, many_back_to_back_loops) {
  Pool *p = pool_new(ra_alloc_default(), 3);
  cr_assert(p);
  cr_assert_eq(sum_loops(p, 20000), 0);
  /* and after the workers have gone to sleep */
  for (int k = 0; k < 5; k++) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    cr_assert_eq(sum_loops(p, 3), 0);
  }
  pool_free(p);
}

static void *pool_thread(void *arg) {
  Pool *p = pool_new(ra_alloc_default(), 2);
  int64_t bad = p ? sum_loops(p, 5000) : -1;
  pool_free(p);
  *(int64_t *)arg = bad;
  return NULL;
}

Test(pool, two_pools_in_two_threads_at_once) {
  pthread_t a, b;
  int64_t ra = -2, rb = -2;
  cr_assert_eq(pthread_create(&a, NULL, pool_thread, &ra), 0);
  cr_assert_eq(pthread_create(&b, NULL, pool_thread, &rb), 0);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  cr_assert_eq(ra, 0, "first pool: %lld bad sums", (long long)ra);
  cr_assert_eq(rb, 0, "second pool: %lld bad sums", (long long)rb);
}

/* A chunk that runs a loop on the same pool: it runs serially there. */
typedef struct NestJob {
  Pool *p;
  _Atomic int64_t total;
} NestJob;

static void nest_inner(void *arg, int64_t lo, int64_t hi, int w) {
  NestJob *j = arg;
  atomic_fetch_add(&j->total, hi - lo);
}

static void nest_outer(void *arg, int64_t lo, int64_t hi, int w) {
  NestJob *j = arg;
  for (int64_t i = lo; i < hi; i++) pool_for(j->p, 10, 1, nest_inner, j);
}

Test(pool, nested_loops_run_serially) {
  NestJob j = {pool_new(ra_alloc_default(), 2), 0};
  cr_assert(j.p);
  pool_for(j.p, 4, 1, nest_outer, &j);
  cr_assert_eq(atomic_load(&j.total), 40);
  pool_free(j.p);
}

Test(pool, ensure_remakes_on_a_new_size) {
  Pool *slot = NULL;
  Pool *p2 = pool_ensure(&slot, ra_alloc_default(), 2);
  cr_assert(p2 && slot == p2 && pool_size(p2) == 2);
  cr_assert_eq(pool_ensure(&slot, ra_alloc_default(), 2), p2, "same size: same pool");
  Pool *p3 = pool_ensure(&slot, ra_alloc_default(), 3);
  cr_assert(p3 && pool_size(p3) == 3);
  cr_assert_eq(sum_loops(p3, 100), 0);
  cr_assert_eq(pool_size(pool_ensure(&slot, ra_alloc_default(), 0)), 1);
  pool_free(slot);
}

Test(pool, out_of_memory_gives_null) {
  for (int budget = 0; budget < 2; budget++) {
    int left = budget;
    RaAlloc a = {failing_alloc, &left};
    cr_assert(pool_new(a, 3) == NULL, "budget %d", budget);
  }
  int left = 2;
  RaAlloc a = {failing_alloc, &left};
  Pool *p = pool_new(a, 3);
  cr_assert(p);
  cr_assert_eq(sum_loops(p, 50), 0);
  pool_free(p);
}

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Idle workers sleep: a pool idle for 300 ms burns far less than the
 * 3 x 300 ms that spinning workers would (the bound leaves room for a
 * loaded machine and the test runner). */
Test(pool, idle_workers_sleep) {
  Pool *p = pool_new(ra_alloc_default(), 4);
  cr_assert(p);
  cr_assert_eq(sum_loops(p, 10), 0);
  double c0 = cpu_seconds();
  struct timespec ts = {0, 300000000};
  nanosleep(&ts, NULL);
  double used = cpu_seconds() - c0;
  cr_assert(used < 0.15, "idle pool used %.3f s of CPU in 0.3 s", used);
  pool_free(p);
}
