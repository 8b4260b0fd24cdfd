/* test_ir.c - the IR core: every op's shape rule (a valid and an invalid
 * case each, with the exact message), ir_emit's checks, type helpers and the
 * text form (golden). */
#include <criterion/criterion.h>

#include "../compiler/ir.h"
#include "irutil.h"

#define parse_type tu_type

/* "f32[2, 3]", "i32[]"; a leading 'B' marks the type batched. */

typedef struct Case {
  IrOp op;
  const char *in[3];
  int64_t i[3];
  double f0;
  const char *given;  /* result type for ops whose type is given */
  const char *want;   /* result type, or the error message */
  int batched;        /* expected flag of a valid result; -1: not checked */
} Case;

#define NOI {0, 0, 0}

/* relu(x + b) over f32[4, 3], and the same reading an input it lacks */
#define T43 {.dtype = IR_F32, .rank = 2, .dim = {4, 3}}
static const IrMicro add_relu[] = {
    {.op = OP_ADD, .nin = 2, .in = {IR_FUSED_EXT(0), IR_FUSED_EXT(1)}, .type = T43},
    {.op = OP_RELU, .nin = 1, .in = {0}, .type = T43},
};
static const IrMicro add_relu_bad[] = {
    {.op = OP_ADD, .nin = 2, .in = {IR_FUSED_EXT(0), IR_FUSED_EXT(2)}, .type = T43},
    {.op = OP_RELU, .nin = 1, .in = {0}, .type = T43},
};
/* FUSED cases: i[0] picks the program */
static const IrFused fused_progs[] = {{2, -1, add_relu}, {2, -1, add_relu_bad}};

static const Case cases[] = {
    /* leaves */
    {OP_INPUT, {0}, NOI, 0, "Bi32[4, 6]", "i32[4, 6]", 1},
    {OP_INPUT, {0}, NOI, 0, "f32[4, 0]", "input: dimension 1 is 0 (must be >= 1)", -1},
    {OP_PARAM, {0}, NOI, 0, "f32[3, 4]", "f32[3, 4]", 0},
    {OP_PARAM, {0}, NOI, 0, "i32[3]", "param: parameters must be f32", -1},
    {OP_CONST, {0}, NOI, 1, "f32[]", "f32[]", 0},
    {OP_CONST, {0}, NOI, 1, "f32[0]", "const: dimension 0 is 0 (must be >= 1)", -1},
    /* broadcasting binaries */
    {OP_ADD, {"Bf32[32, 48, 64]", "f32[48, 64]"}, NOI, 0, 0, "f32[32, 48, 64]", 1},
    {OP_ADD, {"f32[32, 48, 64]", "f32[48, 65]"}, NOI, 0, 0,
     "cannot add f32[32, 48, 64] and f32[48, 65]: dimension 2 is 64 vs 65", -1},
    {OP_SUB, {"f32[4, 1]", "f32[3]"}, NOI, 0, 0, "f32[4, 3]", 0},
    {OP_SUB, {"f32[4]", "f32[5]"}, NOI, 0, 0, "cannot subtract f32[4] and f32[5]: dimension 0 is 4 vs 5", -1},
    {OP_MUL, {"f32[]", "Bf32[2, 3]"}, NOI, 0, 0, "f32[2, 3]", 1},
    {OP_MUL, {"i32[2]", "f32[2]"}, NOI, 0, 0, "cannot multiply i32[2] and f32[2]: operands must be f32", -1},
    {OP_DIV, {"Bf32[8, 3]", "f32[5, 1, 3]"}, NOI, 0, 0, "f32[5, 8, 3]", 0},
    {OP_DIV, {"f32[2, 3]", "f32[3, 3]"}, NOI, 0, 0, "cannot divide f32[2, 3] and f32[3, 3]: dimension 0 is 2 vs 3", -1},
    /* unary elementwise */
    {OP_NEG, {"Bf32[3, 2]"}, NOI, 0, 0, "f32[3, 2]", 1},
    {OP_NEG, {"i32[3]"}, NOI, 0, 0, "neg: operand must be f32, got i32[3]", -1},
    {OP_SCALE, {"f32[3]"}, NOI, 0.5, 0, "f32[3]", 0},
    {OP_SCALE, {"f32[3]"}, NOI, INFINITY, 0, "scale: factor must be finite, got inf", -1},
    {OP_SQUARE, {"f32[3]"}, NOI, 0, 0, "f32[3]", 0},
    {OP_SQUARE, {"i32[3]"}, NOI, 0, 0, "square: operand must be f32, got i32[3]", -1},
    {OP_RELU, {"f32[3]"}, NOI, 0, 0, "f32[3]", 0},
    {OP_RELU, {"i32[3]"}, NOI, 0, 0, "relu: operand must be f32, got i32[3]", -1},
    {OP_GELU, {"f32[3]"}, NOI, 0, 0, "f32[3]", 0},
    {OP_GELU, {"i32[3]"}, NOI, 0, 0, "gelu: operand must be f32, got i32[3]", -1},
    {OP_TANH, {"f32[3]"}, NOI, 0, 0, "f32[3]", 0},
    {OP_TANH, {"i32[3]"}, NOI, 0, 0, "tanh: operand must be f32, got i32[3]", -1},
    {OP_SIGMOID, {"f32[3]"}, NOI, 0, 0, "f32[3]", 0},
    {OP_SIGMOID, {"i32[3]"}, NOI, 0, 0, "sigmoid: operand must be f32, got i32[3]", -1},
    {OP_SILU, {"Bf32[2, 3]"}, NOI, 0, 0, "f32[2, 3]", 1},
    {OP_SILU, {"i32[3]"}, NOI, 0, 0, "silu: operand must be f32, got i32[3]", -1},
    {OP_RELU_GRAD, {"Bf32[2, 3]", "f32[2, 3]"}, NOI, 0, 0, "f32[2, 3]", 1},
    {OP_RELU_GRAD, {"f32[2, 3]", "f32[3, 2]"}, NOI, 0, 0, "relu_grad: operands differ: f32[2, 3] vs f32[3, 2]", -1},
    {OP_GELU_GRAD, {"f32[2, 3]", "f32[2, 3]"}, NOI, 0, 0, "f32[2, 3]", 0},
    {OP_GELU_GRAD, {"f32[2]", "f32[3]"}, NOI, 0, 0, "gelu_grad: operands differ: f32[2] vs f32[3]", -1},
    {OP_TANH_GRAD, {"f32[2, 3]", "f32[2, 3]"}, NOI, 0, 0, "f32[2, 3]", 0},
    {OP_TANH_GRAD, {"f32[2]", "f32[3]"}, NOI, 0, 0, "tanh_grad: operands differ: f32[2] vs f32[3]", -1},
    {OP_SIGMOID_GRAD, {"f32[2, 3]", "f32[2, 3]"}, NOI, 0, 0, "f32[2, 3]", 0},
    {OP_SIGMOID_GRAD, {"f32[2]", "i32[2]"}, NOI, 0, 0, "sigmoid_grad: operand 2 must be f32, got i32[2]", -1},
    {OP_SILU_GRAD, {"f32[2, 3]", "Bf32[2, 3]"}, NOI, 0, 0, "f32[2, 3]", 1},
    {OP_SILU_GRAD, {"f32[2]", "f32[3]"}, NOI, 0, 0, "silu_grad: operands differ: f32[2] vs f32[3]", -1},
    /* normalisations */
    {OP_SOFTMAX, {"Bf32[4, 10]"}, NOI, 0, 0, "f32[4, 10]", 1},
    {OP_SOFTMAX, {"f32[]"}, NOI, 0, 0, "softmax: operand must have rank >= 1, got f32[]", -1},
    {OP_SOFTMAX_GRAD, {"f32[4, 10]", "f32[4, 10]"}, NOI, 0, 0, "f32[4, 10]", 0},
    {OP_SOFTMAX_GRAD, {"f32[4, 10]", "f32[4, 9]"}, NOI, 0, 0, "softmax_grad: operands differ: f32[4, 10] vs f32[4, 9]", -1},
    {OP_LAYERNORM, {"f32[4, 10]"}, NOI, 1e-5, 0, "f32[4, 10]", 0},
    {OP_LAYERNORM, {"f32[4, 10]"}, NOI, -1, 0, "layernorm: epsilon must be finite and >= 0, got -1", -1},
    {OP_LAYERNORM_GRAD, {"f32[4, 10]", "f32[4, 10]"}, NOI, 1e-5, 0, "f32[4, 10]", 0},
    {OP_LAYERNORM_GRAD, {"f32[4, 10]", "f32[10]"}, NOI, 1e-5, 0, "layernorm_grad: operands differ: f32[4, 10] vs f32[10]", -1},
    /* contractions */
    {OP_MATMUL, {"Bf32[32, 48, 64]", "f32[64, 16]"}, NOI, 0, 0, "f32[32, 48, 16]", 1},
    {OP_MATMUL, {"f32[5, 3]", "f32[4, 5]"}, {1, 1, 0}, 0, 0, "f32[3, 4]", 0},
    {OP_MATMUL, {"Bf32[8, 5]", "f32[5, 2]"}, NOI, 0, 0, "f32[8, 2]", 1},
    {OP_MATMUL, {"Bf32[8, 5]", "f32[8, 2]"}, {1, 0, 0}, 0, 0, "f32[5, 2]", 0},
    {OP_MATMUL, {"f32[2, 1, 3, 4]", "f32[5, 4, 6]"}, NOI, 0, 0, "f32[2, 5, 3, 6]", 0},
    {OP_MATMUL, {"f32[32, 48, 64]", "f32[32, 16]"}, NOI, 0, 0, "matmul: inner dimensions differ (64 vs 32)", -1},
    {OP_MATMUL, {"f32[4]", "f32[4, 2]"}, NOI, 0, 0, "matmul: left operand must have rank >= 2, got f32[4]", -1},
    {OP_MATMUL, {"f32[2, 3, 4]", "f32[5, 4, 6]"}, NOI, 0, 0,
     "matmul: cannot broadcast the leading dimensions of f32[2, 3, 4] and f32[5, 4, 6]: dimension 0 is 2 vs 5", -1},
    {OP_GATHER, {"f32[100, 8]", "Bi32[32, 10]"}, NOI, 0, 0, "f32[32, 10, 8]", 1},
    {OP_GATHER, {"f32[100, 8]", "f32[32, 10]"}, NOI, 0, 0, "gather: index must be i32, got f32[32, 10]", -1},
    {OP_GATHER, {"f32[100]", "i32[3]"}, NOI, 0, 0, "gather: table must be f32[V, d], got f32[100]", -1},
    {OP_SCATTER_ADD, {"i32[4, 5]", "f32[4, 5, 8]"}, NOI, 0, "f32[100, 8]", "f32[100, 8]", 0},
    {OP_SCATTER_ADD, {"i32[4, 5]", "f32[4, 5, 8]"}, NOI, 0, "f32[100, 7]",
     "scatter_add: gradient f32[4, 5, 8] does not fit index i32[4, 5] and result f32[100, 7]", -1},
    /* reductions */
    {OP_SUM, {"Bf32[32, 10]"}, {1, 0, 0}, 0, 0, "f32[32]", 1},
    {OP_SUM, {"Bf32[32, 10]"}, {0, 0, 0}, 0, 0, "f32[10]", 0},
    {OP_SUM, {"f32[32, 10]"}, {2, 0, 0}, 0, 0, "sum: axis 2 out of range for rank 2", -1},
    {OP_MEAN, {"Bf32[32]"}, {0, 0, 0}, 0, 0, "f32[]", 0},
    {OP_MEAN, {"f32[]"}, {0, 0, 0}, 0, 0, "mean: operand must have rank >= 1, got f32[]", -1},
    {OP_MAX, {"Bf32[3, 4, 5]"}, {2, 0, 0}, 0, 0, "f32[3, 4]", 1},
    {OP_MAX, {"i32[3]"}, {0, 0, 0}, 0, 0, "max: operand must be f32, got i32[3]", -1},
    {OP_MAX_GRAD, {"f32[4, 5]", "f32[4]", "f32[4]"}, {1, 0, 0}, 0, 0, "f32[4, 5]", 0},
    {OP_MAX_GRAD, {"f32[4, 5]", "f32[5]", "f32[4]"}, {1, 0, 0}, 0, 0,
     "max_grad: f32[5] and f32[4] must both be f32[4] (f32[4, 5] without axis 1)", -1},
    {OP_BROADCAST, {"Bf32[4]"}, {1, 0, 0}, 0, "f32[4, 5]", "f32[4, 5]", 1},
    {OP_BROADCAST, {"f32[4]"}, {1, 0, 0}, 0, "f32[3, 5]", "broadcast: f32[4] is not f32[3, 5] without axis 1", -1},
    {OP_SUM_TO, {"f32[4, 5]"}, NOI, 0, "f32[1, 5]", "f32[1, 5]", 0},
    {OP_SUM_TO, {"f32[4, 5]"}, NOI, 0, "f32[4]", "sum_to: cannot sum f32[4, 5] down to f32[4]", -1},
    /* layout */
    {OP_RESHAPE, {"Bf32[4, 6]"}, NOI, 0, "f32[-1, 3]", "f32[8, 3]", 0},
    {OP_RESHAPE, {"Bf32[4, 6]"}, NOI, 0, "f32[4, 2, 3]", "f32[4, 2, 3]", 1},
    {OP_RESHAPE, {"f32[4, 6]"}, NOI, 0, "f32[5, 5]", "reshape: f32[4, 6] and f32[5, 5] have different sizes (24 vs 25)", -1},
    {OP_TRANSPOSE, {"Bf32[2, 3, 4]"}, {0, 2, 1}, 0, 0, "f32[2, 4, 3]", 1},
    {OP_TRANSPOSE, {"f32[2, 3, 4]"}, {0, 0, 1}, 0, 0, "transpose: [0,0,1] is not a permutation of 0..2", -1},
    {OP_CONCAT, {"Bf32[2, 3]", "Bf32[2, 4]"}, {1, 0, 0}, 0, 0, "f32[2, 7]", 1},
    {OP_CONCAT, {"f32[2, 3]", "f32[3, 4]"}, {1, 0, 0}, 0, 0, "concat: cannot join f32[2, 3] and f32[3, 4] along axis 1", -1},
    {OP_SLICE, {"Bf32[2, 10]"}, {1, 2, 0}, 0, "f32[2, 5]", "f32[2, 5]", 1},
    {OP_SLICE, {"f32[2, 10]"}, {1, 7, 0}, 0, "f32[2, 5]", "slice: [7, 12) is outside axis 1 of f32[2, 10]", -1},
    /* stochastic and masking */
    {OP_DROPOUT, {"Bf32[2, 3]"}, NOI, 0.1, 0, "f32[2, 3]", 1},
    {OP_DROPOUT, {"f32[2, 3]"}, NOI, 1, 0, "dropout: probability must be in [0, 1), got 1", -1},
    {OP_DROPOUT_GRAD, {"f32[2, 3]"}, NOI, 0.1, 0, "f32[2, 3]", 0},
    {OP_DROPOUT_GRAD, {"f32[2, 3]"}, NOI, -0.5, 0, "dropout_grad: probability must be in [0, 1), got -0.5", -1},
    {OP_CAUSAL_MASK, {"Bf32[2, 5, 5]"}, NOI, -INFINITY, 0, "f32[2, 5, 5]", 1},
    {OP_CAUSAL_MASK, {"f32[2, 5, 6]"}, NOI, -INFINITY, 0, "causal_mask: last two dimensions differ (5 vs 6)", -1},
    /* losses */
    {OP_CROSS_ENTROPY, {"Bf32[4, 7, 10]", "Bi32[4, 7]"}, NOI, 0, 0, "f32[]", 0},
    {OP_CROSS_ENTROPY, {"f32[4, 7, 10]", "f32[4, 7]"}, NOI, 0, 0, "cross_entropy: target must be i32, got f32[4, 7]", -1},
    {OP_CROSS_ENTROPY, {"f32[4, 7, 10]", "i32[4]"}, NOI, 0, 0,
     "cross_entropy: target i32[4] does not match logits f32[4, 7, 10] (expected i32[4, 7])", -1},
    {OP_CROSS_ENTROPY_GRAD, {"Bf32[4, 10]", "i32[4]", "f32[]"}, NOI, 0, 0, "f32[4, 10]", 1},
    {OP_CROSS_ENTROPY_GRAD, {"f32[4, 10]", "i32[4]", "f32[1]"}, NOI, 0, 0,
     "cross_entropy_grad: the loss gradient must be f32[], got f32[1]", -1},
    /* native functions */
    {OP_EXTERN, {"f32[3]"}, NOI, 0, 0, "f32[3]", 0},
    {OP_EXTERN, {"i32[3]"}, NOI, 0, 0, "extern: operand must be f32, got i32[3]", -1},
    {OP_EXTERN_GRAD, {"f32[3]", "f32[3]"}, NOI, 0, 0, "f32[3]", 0},
    {OP_EXTERN_GRAD, {"f32[3]", "f32[3]"}, {-1, 0, 0}, 0, 0, "extern_grad: function index -1 is negative", -1},
    /* fusion */
    {OP_FUSED, {"Bf32[4, 3]", "f32[3]"}, {0, 0, 0}, 0, 0, "f32[4, 3]", 0},
    {OP_FUSED, {"f32[4, 3]", "f32[3]"}, {1, 0, 0}, 0, 0, "fused: micro-op 0 reads input 2 of 2", -1},
};

static bool is_type_text(const char *s) { return strncmp(s, "f32[", 4) == 0 || strncmp(s, "i32[", 4) == 0; }

/* Runs one case; returns the emitted id (or -1) and the message in err. */
static int32_t run_case(Arena *a, const Case *c, char *err, size_t errlen, IrFunc **out) {
  IrFunc *f = ir_func_new(a, "t", 4);
  IrNode n;
  memset(&n, 0, sizeof n);
  for (int k = 0; k < 3 && c->in[k]; k++) {
    IrNode leaf;
    memset(&leaf, 0, sizeof leaf);
    leaf.op = OP_INPUT;
    leaf.name = "x";
    leaf.type = parse_type(c->in[k]);
    char e2[256];
    int32_t id = ir_emit(f, &leaf, e2, sizeof e2);
    cr_assert(id >= 0, "leaf %s: %s", c->in[k], e2);
    n.in[n.nin++] = id;
  }
  n.op = (uint16_t)c->op;
  for (int k = 0; k < 3; k++) n.attr.i[k] = c->i[k];
  n.attr.f[0] = c->f0;
  if (c->given) n.type = parse_type(c->given);
  if (c->op == OP_FUSED) n.fused = &fused_progs[c->i[0]];
  *out = f;
  return ir_emit(f, &n, err, errlen);
}

Test(ir_shape, every_case) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const Case *c = &cases[i];
    char err[256] = "";
    IrFunc *f;
    int32_t id = run_case(&a, c, err, sizeof err, &f);
    const char *op = ir_op_info[c->op].name;
    if (is_type_text(c->want)) {
      cr_assert(id >= 0, "case %zu (%s): unexpected error: %s", i, op, err);
      char tb[128];
      cr_assert_str_eq(ir_type_str(&f->nodes[id].type, tb, sizeof tb), c->want, "case %zu (%s)", i, op);
      if (c->batched >= 0)
        cr_assert_eq(f->nodes[id].type.batched, c->batched, "case %zu (%s): batched flag", i, op);
    } else {
      cr_assert(id < 0, "case %zu (%s): expected the error '%s'", i, op, c->want);
      cr_assert_str_eq(err, c->want, "case %zu (%s)", i, op);
      cr_assert_eq(f->n, c->in[0] ? (c->in[1] ? (c->in[2] ? 3 : 2) : 1) : 0,
                   "case %zu: nothing appended on error", i);
    }
  }
  arena_free(&a);
}

/* Every op of the table has a rule, a valid case and an invalid case. */
Test(ir_shape, every_op_is_covered) {
  for (int op = 0; op < OP_COUNT; op++) {
    cr_assert(ir_shape_fns[op] != NULL, "op %s has no shape rule", ir_op_info[op].name);
    bool good = false, bad = false;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      if ((int)cases[i].op != op) continue;
      if (is_type_text(cases[i].want)) good = true;
      else bad = true;
    }
    cr_assert(good && bad, "op %s lacks a %s case", ir_op_info[op].name, good ? "failing" : "valid");
  }
}

Test(ir_emit, checks_arity_and_inputs) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  IrFunc *f = ir_func_new(&a, "t", 1);
  IrNode x = {.op = OP_INPUT, .type = parse_type("f32[2]"), .name = "x"};
  char err[256];
  int32_t v = ir_emit(f, &x, err, sizeof err);
  cr_assert_eq(v, 0);
  IrNode n = {.op = OP_ADD, .nin = 1, .in = {v}};
  cr_assert_eq(ir_emit(f, &n, err, sizeof err), -1);
  cr_assert_str_eq(err, "add: expects 2 inputs, got 1");
  IrNode m = {.op = OP_NEG, .nin = 1, .in = {5}};
  cr_assert_eq(ir_emit(f, &m, err, sizeof err), -1);
  cr_assert_str_eq(err, "neg: input 0 refers to %5, which is not defined yet");
  IrNode c = {.op = OP_CONCAT, .nin = 0};
  cr_assert_eq(ir_emit(f, &c, err, sizeof err), -1);
  cr_assert_str_eq(err, "concat: expects 1 to 8 inputs, got 0");
  cr_assert_eq(f->n, 1);
  arena_free(&a);
}

Test(ir_types, helpers) {
  IrType t = ir_type_make(IR_F32, 3, (int64_t[]){2, 3, 4}, true);
  cr_assert_eq(ir_numel(&t), 24);
  cr_assert_eq(ir_bytes(&t), 96);
  char b[64];
  cr_assert_str_eq(ir_type_str(&t, b, sizeof b), "f32[2, 3, 4]");
  IrType s = ir_type_make(IR_I32, 0, NULL, true);
  cr_assert_str_eq(ir_type_str(&s, b, sizeof b), "i32[]");
  cr_assert_eq(s.batched, 0, "a scalar is never batched");
  IrType u = t;
  u.batched = 0;
  cr_assert(ir_type_eq(&t, &u), "the batched flag is not part of equality");
  u.dim[2] = 5;
  cr_assert(!ir_type_eq(&t, &u));
  char tiny[6];
  ir_type_str(&t, tiny, sizeof tiny);
  cr_assert_str_eq(tiny, "f32[2");
}

Test(ir_func, outputs_and_growth) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  IrFunc *f = ir_func_new(&a, "grow", 2);
  char err[256];
  IrNode x = {.op = OP_INPUT, .type = parse_type("f32[2]"), .name = "x"};
  int32_t v = ir_emit(f, &x, err, sizeof err);
  for (int i = 0; i < 300; i++) {
    IrNode n = {.op = OP_NEG, .nin = 1, .in = {v}};
    v = ir_emit(f, &n, err, sizeof err);
    cr_assert_eq(v, i + 1);
  }
  cr_assert_eq(f->nodes[300].in[0], 299);
  cr_assert_eq(ir_add_output(f, "y", v, OUT_OUTPUT, 0), 0);
  cr_assert_eq(ir_add_output(f, "loss", 3, OUT_LOSS, 0), 0);
  cr_assert_eq(ir_add_output(f, "bad", 999, OUT_OUTPUT, 1), -1);
  cr_assert_eq(ir_find_output(f, OUT_LOSS, -1)->value, 3);
  cr_assert_eq(ir_find_output(f, OUT_OUTPUT, 0)->value, 300);
  cr_assert_null(ir_find_output(f, OUT_GRAD, -1));
  arena_free(&a);
}

/* ir_op at the node's own span */
static int32_t emit_ok(IrBuilder *b, IrNode n) {
  b->span = n.span;
  return ir_op(b, n);
}

Test(ir_print, golden) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  IrFunc *f = ir_func_new(&a, "classifier.fwd", 4);
  IrBuilder B = tu_builder(f);
  static const float w[6] = {0.5f, -1.25f, 3, 1e-3f, 2, 7};
  Span sp = {0, 14, 7, 0, 3};
  int32_t x = emit_ok(&B, (IrNode){.op = OP_INPUT, .name = "x", .type = parse_type("Bi32[4, 5]")});
  int32_t y = emit_ok(&B, (IrNode){.op = OP_INPUT, .name = "label", .attr.i = {1}, .type = parse_type("Bi32[4]")});
  int32_t t = emit_ok(&B, (IrNode){.op = OP_PARAM, .name = "classifier.embed.table", .attr.i = {0},
                                  .type = parse_type("f32[10, 3]"), .span = sp});
  int32_t o = emit_ok(&B, (IrNode){.op = OP_PARAM, .name = "odd name\"", .attr.i = {1}, .type = parse_type("f32[2, 3]")});
  int32_t c = emit_ok(&B, (IrNode){.op = OP_CONST, .data = w, .type = parse_type("f32[2, 3]")});
  int32_t h = emit_ok(&B, (IrNode){.op = OP_GATHER, .nin = 2, .in = {t, x}, .span = sp});
  int32_t s = emit_ok(&B, (IrNode){.op = OP_ADD, .nin = 2, .in = {o, c}});
  (void)s;
  int32_t m = emit_ok(&B, (IrNode){.op = OP_MATMUL, .nin = 2, .in = {h, h}, .attr.i = {0, 1}, .span = sp});
  int32_t k = emit_ok(&B, (IrNode){.op = OP_SCALE, .nin = 1, .in = {m}, .attr.f = {0.125}});
  int32_t p = emit_ok(&B, (IrNode){.op = OP_TRANSPOSE, .nin = 1, .in = {k}, .attr.i = {0, 2, 1}});
  int32_t mk = emit_ok(&B, (IrNode){.op = OP_CAUSAL_MASK, .nin = 1, .in = {p}, .attr.f = {-INFINITY}});
  int32_t mx = emit_ok(&B, (IrNode){.op = OP_MEAN, .nin = 1, .in = {mk}, .attr.i = {2}});
  int32_t sl = emit_ok(&B, (IrNode){.op = OP_SLICE, .nin = 1, .in = {mx}, .attr.i = {1, 1}, .type = parse_type("f32[4, 2]")});
  int32_t ln = emit_ok(&B, (IrNode){.op = OP_LAYERNORM, .nin = 1, .in = {sl}, .attr.f = {1e-5}});
  int32_t dr = emit_ok(&B, (IrNode){.op = OP_DROPOUT, .nin = 1, .in = {ln}, .attr.f = {0.1}, .attr.i = {3}});
  int32_t one = emit_ok(&B, (IrNode){.op = OP_CONST, .attr.f = {1}, .type = parse_type("f32[]")});
  int32_t cc = emit_ok(&B, (IrNode){.op = OP_CONCAT, .nin = 2, .in = {dr, dr}, .attr.i = {1}});
  int32_t loss = emit_ok(&B, (IrNode){.op = OP_CROSS_ENTROPY, .nin = 2, .in = {cc, y}, .span = sp});
  int32_t e = emit_ok(&B, (IrNode){.op = OP_EXTERN, .nin = 1, .in = {one}, .attr.i = {2}});
  cr_assert_eq(ir_add_output(f, "loss", loss, OUT_LOSS, 0), 0);
  cr_assert_eq(ir_add_output(f, "logits", cc, OUT_PRED, 0), 0);
  cr_assert_eq(ir_add_output(f, "e", e, OUT_OUTPUT, 0), 0);
  cr_assert_eq(ir_add_output(f, "grad:classifier.embed.table", e, OUT_GRAD, 0), 0);
  char *text = ir_print(&a, f, NULL, true);
  cr_assert_not_null(text);
  tu_golden("tests/golden/ir/print_basic.txt", text);
  char *plain = ir_print(&a, f, NULL, false);
  cr_assert_null(strstr(plain, ";"), "no span comments without with_spans");
  arena_free(&a);
}

/* The builder: a node that does not fit is reported once, where it
 * happens; everything built on it passes -1 through quietly and appends
 * nothing; the first message is kept. */
typedef struct Reports {
  int n;
  char last[256];
  Span at;
} Reports;

static void count_report(void *ud, Span at, const char *msg) {
  Reports *r = ud;
  r->n++;
  r->at = at;
  snprintf(r->last, sizeof r->last, "%s", msg);
}

Test(ir_builder, failures_pass_through_and_are_reported_once) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  IrFunc *f = ir_func_new(&a, "f", 1);
  Reports r = {0};
  Span sp = {0, 3, 5, 20, 4};
  IrBuilder b = ir_builder(f, sp);
  b.report = count_report;
  b.ud = &r;
  int32_t x = tu_input(&b, "x", 0, "f32[2, 3]");
  int32_t w = tu_input(&b, "w", 1, "f32[4, 5]");
  cr_assert_eq(f->n, 2);
  cr_assert_eq(f->nodes[x].span.col, 5, "nodes get the builder's span");
  int32_t bad = ir_matmul(&b, x, w, false, false);
  cr_assert_eq(bad, -1);
  cr_assert_eq(r.n, 1);
  cr_assert_eq(r.at.col, 5);
  cr_assert_str_eq(r.last, "matmul: inner dimensions differ (3 vs 4)");
  /* a chain on the failed value: quiet, nothing appended */
  int32_t y = ir_scale(&b, ir_unary(&b, OP_TANH, ir_binary(&b, OP_ADD, bad, x)), 2.0);
  cr_assert_eq(y, -1);
  cr_assert_eq(r.n, 1);
  cr_assert_eq(f->n, 2);
  /* a second, independent failure is reported too; err keeps the first */
  cr_assert_eq(ir_binary(&b, OP_ADD, x, w), -1);
  cr_assert_eq(r.n, 2);
  cr_assert(b.failed);
  cr_assert_str_eq(b.err, "matmul: inner dimensions differ (3 vs 4)");
  /* good nodes still build */
  int32_t t = ir_unary(&b, OP_TANH, x);
  cr_assert_eq(t, 2);
  int64_t perm[2] = {1, 0};
  int32_t tt = ir_transpose(&b, t, perm);
  cr_assert_str_eq(ir_type_str(&f->nodes[tt].type, r.last, sizeof r.last), "f32[3, 2]");
  int32_t c = tu_fill(&b, "Bf32[3]", 2.5);
  cr_assert_eq(f->nodes[c].type.batched, 0, "constants are never batched");
  cr_assert_float_eq(f->nodes[c].attr.f[0], 2.5, 0);
  arena_free(&a);
}
