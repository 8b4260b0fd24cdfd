/* test_gradcheck.c - finite-difference checks of every differentiable op.
 *
 * For each op whose ops.def row says Y, a case builds a tiny IrFunc around
 * it (random PARAM inputs), adds the loss L = sum(w * op(x)) with a fixed
 * random w (MUL, RESHAPE, SUM), differentiates it with autodiff, plans its
 * memory, runs it with the interpreter and compares every analytic gradient
 * with central differences of L.  The case table is checked against
 * ir_op_info, so a new differentiable op without a case fails the suite.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compiler/autodiff.h"
#include "../compiler/lower_int.h"
#include "../compiler/program.h"
#include "../runtime/exec/exec.h"
#include "../runtime/exec/externfn.h"
#include "../runtime/exec/kernels.h"
#include "irutil.h"
#include "testutil.h"
#include "jitutil.h"

#define GB_MAXP 8
#define GB_MAXI 4

/* A function being built: its params and integer inputs. */
typedef struct GB {
  Arena *ar;
  IrFunc *f;
  IrBuilder B;
  ParamInfo params[GB_MAXP];
  float *pdata[GB_MAXP];   /* initial values per param */
  int np;
  int32_t *idata[GB_MAXI];  /* i32 input buffers */
  int ni;
  uint64_t rng;
  bool fail;
  char err[256];
} GB;

static float gb_rand(GB *b, float lo, float hi) {
  b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((b->rng >> 40) * (1.0 / 16777216.0));
}


/* A parameter with values in +-[lo, hi] (random sign when sym). */
static int32_t param_s(GB *b, int rank, const int64_t *d, float lo, float hi, bool sym) {
  cr_assert(b->np < GB_MAXP);
  int k = b->np++;
  IrNode n = {.op = OP_PARAM};
  n.type = ir_type_make(IR_F32, rank, d, false);
  n.name = arena_printf(b->ar, "p%d", k);
  n.attr.i[0] = k;
  int32_t id = ir_op(&b->B, n);
  b->params[k].path = n.name;
  b->params[k].type = n.type;
  int64_t m = ir_numel(&n.type);
  b->pdata[k] = malloc((size_t)(m ? m : 1) * sizeof(float));
  for (int64_t i = 0; i < m; i++) {
    float v = gb_rand(b, lo, hi);
    if (sym && gb_rand(b, 0, 1) < 0.5f) v = -v;
    b->pdata[k][i] = v;
  }
  return id;
}

static int32_t param(GB *b, int rank, const int64_t *d) { return param_s(b, rank, d, -1, 1, false); }

/* An i32 input with values in [0, hi). */
static int32_t ints(GB *b, int rank, const int64_t *d, int32_t hi) {
  cr_assert(b->ni < GB_MAXI);
  int k = b->ni++;
  IrNode n = {.op = OP_INPUT, .name = "ids"};
  n.type = ir_type_make(IR_I32, rank, d, false);
  n.attr.i[0] = k;
  int32_t id = ir_op(&b->B, n);
  int64_t m = ir_numel(&n.type);
  b->idata[k] = malloc((size_t)(m ? m : 1) * sizeof(int32_t));
  for (int64_t i = 0; i < m; i++) b->idata[k][i] = (int32_t)(gb_rand(b, 0, 1) * (float)hi) % hi;
  return id;
}


#define D(...) ((const int64_t[]){__VA_ARGS__})

/* ---- the cases: each returns the value the loss is built on ---------------- */

static int32_t c_add(GB *b) { return ir_binary(&b->B, OP_ADD, param(b, 3, D(2, 3, 4)), param(b, 1, D(4))); }
static int32_t c_add_mid(GB *b) { return ir_binary(&b->B, OP_ADD, param(b, 3, D(2, 1, 4)), param(b, 2, D(3, 1))); }
static int32_t c_sub(GB *b) { return ir_binary(&b->B, OP_SUB, param(b, 2, D(3, 4)), param(b, 3, D(2, 3, 4))); }
static int32_t c_mul(GB *b) { return ir_binary(&b->B, OP_MUL, param(b, 3, D(2, 3, 4)), param(b, 3, D(2, 3, 1))); }
static int32_t c_mul_scalar(GB *b) { return ir_binary(&b->B, OP_MUL, param(b, 0, NULL), param(b, 2, D(3, 4))); }
static int32_t c_div(GB *b) {
  return ir_binary(&b->B, OP_DIV, param(b, 2, D(3, 4)), param_s(b, 1, D(4), 0.5f, 2, true));
}
static int32_t c_neg(GB *b) { return ir_unary(&b->B, OP_NEG, param(b, 2, D(3, 5))); }
static int32_t c_scale(GB *b) {
  IrNode n = {.op = OP_SCALE, .nin = 1, .in = {param(b, 2, D(3, 5))}};
  n.attr.f[0] = -0.7;
  return ir_op(&b->B, n);
}
static int32_t c_square(GB *b) { return ir_unary(&b->B, OP_SQUARE, param(b, 2, D(3, 5))); }
static int32_t c_relu(GB *b) { return ir_unary(&b->B, OP_RELU, param_s(b, 2, D(3, 5), 0.1f, 1, true)); }
static int32_t c_gelu(GB *b) { return ir_unary(&b->B, OP_GELU, param_s(b, 2, D(3, 5), 0, 3, true)); }
static int32_t c_tanh(GB *b) { return ir_unary(&b->B, OP_TANH, param_s(b, 2, D(3, 5), 0, 2, true)); }
static int32_t c_sigmoid(GB *b) { return ir_unary(&b->B, OP_SIGMOID, param_s(b, 2, D(3, 5), 0, 3, true)); }
static int32_t c_silu(GB *b) { return ir_unary(&b->B, OP_SILU, param_s(b, 2, D(3, 5), 0, 4, true)); }
static int32_t c_softmax(GB *b) { return ir_unary(&b->B, OP_SOFTMAX, param_s(b, 3, D(2, 3, 5), 0, 2, true)); }
static int32_t c_layernorm(GB *b) {
  IrNode n = {.op = OP_LAYERNORM, .nin = 1, .in = {param_s(b, 2, D(3, 6), 0, 2, true)}};
  n.attr.f[0] = 1e-5;
  return ir_op(&b->B, n);
}
static int32_t c_matmul(GB *b) { return ir_matmul(&b->B, param(b, 3, D(2, 3, 4)), param(b, 2, D(4, 5)), 0, 0); }
static int32_t c_matmul_tt(GB *b) { return ir_matmul(&b->B, param(b, 3, D(2, 4, 3)), param(b, 2, D(5, 4)), 1, 1); }
static int32_t c_matmul_batched(GB *b) {
  return ir_matmul(&b->B, param(b, 4, D(2, 2, 3, 4)), param(b, 4, D(2, 2, 5, 4)), 0, 1);
}
static int32_t c_matmul_bcast(GB *b) {
  return ir_matmul(&b->B, param(b, 3, D(3, 4, 2)), param(b, 4, D(2, 1, 4, 3)), 1, 0);
}
static int32_t c_gather(GB *b) {
  int32_t tab = param(b, 2, D(5, 3));
  int32_t ids = ints(b, 2, D(2, 4), 5);
  b->idata[b->ni - 1][1] = b->idata[b->ni - 1][6];  /* a repeated id */
  return ir_binary(&b->B, OP_GATHER, tab, ids);
}
static int32_t c_sum(GB *b) { return ir_reduce(&b->B, OP_SUM, param(b, 3, D(2, 3, 4)), 1); }
static int32_t c_mean(GB *b) { return ir_reduce(&b->B, OP_MEAN, param(b, 3, D(2, 3, 4)), 2); }
static int32_t c_max(GB *b) {
  /* distinct values far apart (no ties within the step) */
  int32_t x = param(b, 3, D(2, 4, 3));
  float *v = b->pdata[b->np - 1];
  for (int i = 0; i < 24; i++) v[i] = (float)((i * 7) % 24) * 0.1f - 1.2f;
  return ir_reduce(&b->B, OP_MAX, x, 1);
}
static int32_t c_broadcast(GB *b) {
  IrNode n = {.op = OP_BROADCAST, .nin = 1, .in = {param(b, 2, D(2, 4))}};
  n.attr.i[0] = 1;
  n.type = ir_type_make(IR_F32, 3, D(2, 3, 4), false);
  return ir_op(&b->B, n);
}
static int32_t c_sum_to(GB *b) {
  IrNode n = {.op = OP_SUM_TO, .nin = 1, .in = {param(b, 3, D(2, 3, 4))}};
  n.type = ir_type_make(IR_F32, 2, D(1, 4), false);
  return ir_op(&b->B, n);
}
static int32_t c_reshape(GB *b) {
  IrNode n = {.op = OP_RESHAPE, .nin = 1, .in = {param(b, 3, D(2, 3, 4))}};
  n.type = ir_type_make(IR_F32, 2, D(6, 4), false);
  return ir_op(&b->B, n);
}
static int32_t c_transpose(GB *b) {
  IrNode n = {.op = OP_TRANSPOSE, .nin = 1, .in = {param(b, 3, D(2, 3, 4))}};
  n.attr.i[0] = 2;
  n.attr.i[1] = 0;
  n.attr.i[2] = 1;
  return ir_op(&b->B, n);
}
static int32_t c_concat(GB *b) {
  IrNode n = {.op = OP_CONCAT, .nin = 3,
              .in = {param(b, 2, D(2, 3)), param(b, 2, D(2, 1)), param(b, 2, D(2, 2))}};
  n.attr.i[0] = 1;
  return ir_op(&b->B, n);
}
static int32_t c_slice(GB *b) {
  IrNode n = {.op = OP_SLICE, .nin = 1, .in = {param(b, 3, D(2, 5, 3))}};
  n.attr.i[0] = 1;
  n.attr.i[1] = 1;
  n.type = ir_type_make(IR_F32, 3, D(2, 3, 3), false);
  return ir_op(&b->B, n);
}
static int32_t c_dropout(GB *b) {
  IrNode n = {.op = OP_DROPOUT, .nin = 1, .in = {param(b, 2, D(4, 8))}};
  n.attr.f[0] = 0.3;
  n.attr.i[0] = 1;
  return ir_op(&b->B, n);
}
static int32_t c_causal_mask(GB *b) {
  IrNode n = {.op = OP_CAUSAL_MASK, .nin = 1, .in = {param(b, 3, D(2, 4, 4))}};
  n.attr.f[0] = 0;
  return ir_op(&b->B, n);
}
static int32_t c_causal_softmax(GB *b) {
  IrNode n = {.op = OP_CAUSAL_MASK, .nin = 1, .in = {param(b, 3, D(2, 4, 4))}};
  n.attr.f[0] = -INFINITY;
  return ir_unary(&b->B, OP_SOFTMAX, ir_op(&b->B, n));
}
static int32_t c_cross_entropy(GB *b) {
  int32_t lg = param_s(b, 3, D(2, 3, 5), 0, 2, true);
  return ir_binary(&b->B, OP_CROSS_ENTROPY, lg, ints(b, 2, D(2, 3), 5));
}

/* native functions: plain C, scalar and array forms */
static float softplus(float x) { return log1pf(expf(x)); }
static float softplus_d(float x) { return 1.0f / (1.0f + expf(-x)); }
static void cube_arr(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] = x[i] * x[i] * x[i];
}
static void cube_arr_d(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] = 3 * x[i] * x[i];
}
static int32_t c_extern(GB *b) {
  IrNode n = {.op = OP_EXTERN, .nin = 1, .in = {param(b, 2, D(3, 4))}};
  n.attr.i[0] = 0;
  return ir_op(&b->B, n);
}
static int32_t c_extern_array(GB *b) {
  IrNode n = {.op = OP_EXTERN, .nin = 1, .in = {param(b, 2, D(3, 4))}};
  n.attr.i[0] = 1;
  return ir_op(&b->B, n);
}
/* a small composite: one layer of attention-like math */
static int32_t c_attention(GB *b) {
  int32_t x = param(b, 3, D(2, 4, 6));
  int32_t wq = param(b, 2, D(6, 6)), wk = param(b, 2, D(6, 6));
  int32_t q = ir_matmul(&b->B, x, wq, 0, 0), k = ir_matmul(&b->B, x, wk, 0, 0);
  int32_t s = ir_matmul(&b->B, q, k, 0, 1);
  IrNode sc = {.op = OP_SCALE, .nin = 1, .in = {s}};
  sc.attr.f[0] = 0.4;
  IrNode cm = {.op = OP_CAUSAL_MASK, .nin = 1, .in = {ir_op(&b->B, sc)}};
  cm.attr.f[0] = -INFINITY;
  int32_t p = ir_unary(&b->B, OP_SOFTMAX, ir_op(&b->B, cm));
  int32_t o = ir_matmul(&b->B, p, x, 0, 0);
  IrNode ln = {.op = OP_LAYERNORM, .nin = 1, .in = {ir_binary(&b->B, OP_ADD, o, x)}};
  ln.attr.f[0] = 1e-5;
  return ir_unary(&b->B, OP_GELU, ir_op(&b->B, ln));
}

/* causal attention long enough for the triangular products and rows of
 * pass_causal (the case runs the compiled pipeline): q, k, v of 2 heads,
 * 32 positions */
static int32_t c_causal_attention(GB *b) {
  int32_t q = param(b, 4, D(1, 2, 32, 3)), k = param(b, 4, D(1, 2, 32, 3));
  int32_t v = param(b, 4, D(1, 2, 32, 3));
  int32_t s = ir_scale(&b->B, ir_matmul(&b->B, q, k, 0, 1), 0.5);
  IrNode cm = {.op = OP_CAUSAL_MASK, .nin = 1, .in = {s}};
  cm.attr.f[0] = -INFINITY;
  int32_t p = ir_unary(&b->B, OP_SOFTMAX, ir_op(&b->B, cm));
  return ir_unary(&b->B, OP_TANH, ir_matmul(&b->B, p, v, 0, 0));
}

/* `repulsion penalty`: the mean squared cosine between heads'
 * contributions, on rows given directly and through per-head rows of wo */
static int32_t c_heads_cos2(GB *b) {
  return lw_heads_cos2(&b->B, b->ar, param(b, 3, D(2, 3, 5)), 3);
}
static int32_t c_heads_cos2_wo(GB *b) {
  int32_t ctx = param(b, 4, D(2, 3, 2, 2)), wo = param(b, 2, D(6, 4));
  IrType tw = ir_type_make(IR_F32, 3, D(3, 2, 4), false);
  int32_t u = ir_matmul(&b->B, ctx, ir_reshape(&b->B, wo, &tw), 0, 0);
  IrType tu = ir_type_make(IR_F32, 3, D(2, 3, 8), false);
  return ir_scale(&b->B, lw_heads_cos2(&b->B, b->ar, ir_reshape(&b->B, u, &tu), 3), 0.7);
}

typedef struct Case {
  IrOp op;
  const char *name;
  int32_t (*build)(GB *);
  int tri;  /* > 0: run the gradient through pass_compile (fusion and
               pass_causal), which must mark at least this many matmuls */
  bool unfused; /* with tri: pass_compile without fusion */
} Case;

static const Case cases[] = {
    {OP_ADD, "add", c_add, 0, false},
    {OP_ADD, "add_mid", c_add_mid, 0, false},
    {OP_SUB, "sub", c_sub, 0, false},
    {OP_MUL, "mul", c_mul, 0, false},
    {OP_MUL, "mul_scalar", c_mul_scalar, 0, false},
    {OP_DIV, "div", c_div, 0, false},
    {OP_NEG, "neg", c_neg, 0, false},
    {OP_SCALE, "scale", c_scale, 0, false},
    {OP_SQUARE, "square", c_square, 0, false},
    {OP_RELU, "relu", c_relu, 0, false},
    {OP_GELU, "gelu", c_gelu, 0, false},
    {OP_TANH, "tanh", c_tanh, 0, false},
    {OP_SIGMOID, "sigmoid", c_sigmoid, 0, false},
    {OP_SILU, "silu", c_silu, 0, false},
    {OP_SOFTMAX, "softmax", c_softmax, 0, false},
    {OP_LAYERNORM, "layernorm", c_layernorm, 0, false},
    {OP_MATMUL, "matmul", c_matmul, 0, false},
    {OP_MATMUL, "matmul_tt", c_matmul_tt, 0, false},
    {OP_MATMUL, "matmul_batched", c_matmul_batched, 0, false},
    {OP_MATMUL, "matmul_bcast", c_matmul_bcast, 0, false},
    {OP_GATHER, "gather", c_gather, 0, false},
    {OP_SUM, "sum", c_sum, 0, false},
    {OP_MEAN, "mean", c_mean, 0, false},
    {OP_MAX, "max", c_max, 0, false},
    {OP_BROADCAST, "broadcast", c_broadcast, 0, false},
    {OP_SUM_TO, "sum_to", c_sum_to, 0, false},
    {OP_RESHAPE, "reshape", c_reshape, 0, false},
    {OP_TRANSPOSE, "transpose", c_transpose, 0, false},
    {OP_CONCAT, "concat", c_concat, 0, false},
    {OP_SLICE, "slice", c_slice, 0, false},
    {OP_DROPOUT, "dropout", c_dropout, 0, false},
    {OP_CAUSAL_MASK, "causal_mask", c_causal_mask, 0, false},
    {OP_CAUSAL_MASK, "causal_softmax", c_causal_softmax, 0, false},
    {OP_CROSS_ENTROPY, "cross_entropy", c_cross_entropy, 0, false},
    {OP_EXTERN, "extern", c_extern, 0, false},
    {OP_EXTERN, "extern_array", c_extern_array, 0, false},
    {OP_COUNT, "attention", c_attention, 0, false},
    {OP_COUNT, "causal_attention", c_causal_attention, 6, false},
    {OP_COUNT, "causal_attention_unfused", c_causal_attention, 6, true},
    {OP_COUNT, "heads_cos2", c_heads_cos2, 0, false},
    {OP_COUNT, "heads_cos2_wo", c_heads_cos2_wo, 0, false},
};
#define NCASES ((int)(sizeof cases / sizeof *cases))

/* ---- the check ------------------------------------------------------------ */

typedef struct Run {
  Exec *ex;
  KernelCtx kc;
  int32_t loss;
} Run;

static double loss_at(Run *r) {
  int rc = exec_run(r->ex, &r->kc);
  cr_assert_eq(rc, 0, "exec: %s", r->kc.err);
  return *(const float *)exec_ptr(r->ex, r->loss);
}

static void gradcheck(const Case *c) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  GB b;
  memset(&b, 0, sizeof b);
  b.ar = &ar;
  b.rng = 0x1234567ull + (uint64_t)(c - cases) * 977;
  b.f = ir_func_new(&ar, c->name, 2);
  b.B = tu_builder(b.f);
  int32_t y = c->build(&b);

  /* L = sum(reshape(w * y)) with a fixed random w */
  IrType yt = b.f->nodes[y].type;
  int64_t ny = ir_numel(&yt);
  float *w = arena_alloc(&ar, (size_t)(ny ? ny : 1) * sizeof *w);
  for (int64_t i = 0; i < ny; i++) w[i] = gb_rand(&b, -1, 1);
  IrNode wc = {.op = OP_CONST, .data = w};
  wc.type = yt;
  wc.type.batched = 0;
  int32_t wy = ir_binary(&b.B, OP_MUL, y, ir_op(&b.B, wc));
  IrNode rs = {.op = OP_RESHAPE, .nin = 1, .in = {wy}};
  rs.type = ir_type_make(IR_F32, 1, D(ny), false);
  int32_t flat = ir_op(&b.B, rs);
  int32_t loss = ir_reduce(&b.B, OP_SUM, flat, 0);
  cr_assert(ir_add_output(b.f, "loss", loss, OUT_LOSS, 0) == 0);

  /* the model and its parameter buffer */
  Model m;
  memset(&m, 0, sizeof m);
  m.name = c->name;
  m.span = SPAN_NONE;
  m.fwd = b.f;
  m.params = b.params;
  m.nparams = b.np;
  int64_t total = 0, offs[GB_MAXP];
  for (int k = 0; k < b.np; k++) {
    offs[k] = total;
    b.params[k].offset = total;
    total += ir_numel(&b.params[k].type);
  }
  m.nweights = total;
  float *pbuf = malloc((size_t)(total ? total : 1) * sizeof *pbuf);
  for (int k = 0; k < b.np; k++)
    memcpy(pbuf + offs[k], b.pdata[k], (size_t)ir_numel(&b.params[k].type) * sizeof *pbuf);

  DiagList dl;
  diag_init(&dl, &ar, NULL);
  static const ExternDecl exts[2] = {{.name = "softplus", .grad = "softplus_d"},
                                      {.name = "cube_arr", .grad = "cube_arr_d"}};
  IrFunc *g = autodiff(&ar, &m, exts, 2, &dl);
  cr_assert(g != NULL, "%s: autodiff failed: %s", c->name,
            dl.head ? dl.head->msg : "(no diagnostic)");
  if (c->tri > 0) {
    g = pass_compile(&ar, g, !c->unfused);
    cr_assert(g != NULL, "%s: pass_compile failed", c->name);
    int marked = 0, rows = 0;
    for (int i = 0; i < g->n; i++) {
      const IrNode *n = &g->nodes[i];
      marked += n->op == OP_MATMUL && n->attr.i[2] != 0;
      if (n->op == OP_FUSED && n->fused->rowop >= 0)
        rows += n->fused->ops[n->fused->rowop].attr.i[0] != 0;
      rows += (n->op == OP_SOFTMAX || n->op == OP_SOFTMAX_GRAD) && n->attr.i[0] != 0;
    }
    cr_assert_geq(marked, c->tri, "%s: %d triangular matmuls", c->name, marked);
    cr_assert_eq(rows, 2, "%s: %d causal softmax rows", c->name, rows);
  }
  MemPlan *plan = plan_memory(&ar, g);
  cr_assert(plan != NULL, "%s: plan_memory failed", c->name);
  Exec *ex = exec_new(ra_alloc_default(), g, plan, pbuf, offs, b.ni);
  cr_assert(ex != NULL);
  tu_maybe_jit(ex);
  for (int k = 0; k < b.ni; k++) ex->inputs[k] = b.idata[k];

  ExternFn e0 = {.name = "softplus", .fn = softplus, .grad = softplus_d};
  ExternFn e1 = {.name = "cube_arr", .array_form = true, .afn = cube_arr, .agrad = cube_arr_d};
  ExternFn *ext[2] = {&e0, &e1};
  Run r;
  memset(&r, 0, sizeof r);
  r.ex = ex;
  r.kc.threads = 1;
  r.kc.seed = 42;
  r.kc.step = 3;
  r.kc.training = true;
  r.kc.externs = ext;
  r.kc.nexterns = 2;
  const IrOutput *lo = ir_find_output(g, OUT_LOSS, -1);
  cr_assert(lo != NULL);
  r.loss = lo->value;

  /* analytic gradients (copied: later runs overwrite the arena) */
  loss_at(&r);
  float *ana = malloc((size_t)(total ? total : 1) * sizeof *ana);
  for (int k = 0; k < b.np; k++) {
    const IrOutput *go = ir_find_output(g, OUT_GRAD, k);
    cr_assert(go != NULL, "%s: no gradient output for param %d", c->name, k);
    const IrType *gt = &g->nodes[go->value].type;
    cr_assert_eq(ir_numel(gt), ir_numel(&b.params[k].type), "%s: gradient %d has the wrong size",
                 c->name, k);
    memcpy(ana + offs[k], exec_ptr(ex, go->value), (size_t)ir_numel(gt) * sizeof *ana);
  }

  /* central differences, double-checked with a halved step on a mismatch */
  for (int64_t i = 0; i < total; i++) {
    float x0 = pbuf[i];
    double num = 0;
    bool ok = false;
    double eps = 1e-2 * (fabs(x0) > 1 ? fabs(x0) : 1);
    for (int attempt = 0; attempt < 3 && !ok; attempt++, eps /= 2) {
      pbuf[i] = (float)(x0 + eps);
      double lp = loss_at(&r);
      pbuf[i] = (float)(x0 - eps);
      double lm = loss_at(&r);
      pbuf[i] = x0;
      double h = (double)(float)(x0 + eps) - (double)(float)(x0 - eps);
      num = (lp - lm) / h;
      ok = fabs(num - ana[i]) <= 1e-3 + 1e-2 * fabs(num);
    }
    cr_expect(ok, "%s: d loss / d weight %ld: analytic %.6g, numeric %.6g", c->name, (long)i,
              (double)ana[i], num);
    if (!ok) break;
  }

  exec_free(ex);
  free(ana);
  free(pbuf);
  for (int k = 0; k < b.np; k++) free(b.pdata[k]);
  for (int k = 0; k < b.ni; k++) free(b.idata[k]);
  arena_free(&ar);
}

ParameterizedTestParameters(gradcheck, op) {
  static int idx[NCASES];
  for (int i = 0; i < NCASES; i++) idx[i] = i;
  return cr_make_param_array(int, idx, NCASES);
}

ParameterizedTest(int *i, gradcheck, op) { gradcheck(&cases[*i]); }

/* Every op with a gradient rule has a case; only leaves have none. */
Test(gradcheck, every_differentiable_op_has_a_case) {
  for (int op = 0; op < OP_COUNT; op++) {
    if (!ir_op_info[op].has_grad) continue;
    if (op == OP_INPUT || op == OP_PARAM || op == OP_CONST) continue;
    bool found = false;
    for (int c = 0; c < NCASES; c++) found |= cases[c].op == (IrOp)op;
    cr_expect(found, "op '%s' has a gradient rule but no finite-difference case",
              ir_op_info[op].name);
  }
}
