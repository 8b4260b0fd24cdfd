/* test_lower.c - lowering models to IR (compiler/lower.c, compiler/layers.c)
 * and the stdlib blocks: parameter paths, shapes, initialisation, head
 * groups, outputs, golden IR dumps, and every lowering diagnostic with its
 * line:col. */
#include <criterion/criterion.h>

#include "../compiler/clauses.h"
#include "../compiler/program.h"
#include "testutil.h"

/* ---- fixture ---- */

typedef struct Fx {
  Arena a;
  SrcSet src;
  DiagList d;
  Program *p;
} Fx;

static Program *compile(Fx *fx, const char *text) {
  arena_init(&fx->a, ra_alloc_default());
  src_init(&fx->src, &fx->a);
  diag_init(&fx->d, &fx->a, &fx->src);
  int f = src_add(&fx->src, "t.ra", text, strlen(text));
  CompileOptions o = {.stdlib_dir = "stdlib"};
  fx->p = sema_program(&fx->a, &fx->src, &fx->d, f, &o);
  return fx->p;
}

static const char *diags(Fx *fx) { return diag_render(&fx->d, 0); }

/* Compiles text (which must be free of errors) and lowers model name. */
static Model *lower_ok(Fx *fx, const char *text, const char *name, int64_t batch) {
  Program *p = compile(fx, text);
  cr_assert_not_null(p);
  cr_assert_eq(fx->d.nerrors, 0, "unexpected errors:\n%s", diags(fx));
  const AstItem *it = sema_find_model(p, name);
  cr_assert_not_null(it, "no model %s", name);
  Model *m = lower_model(p, it, batch);
  cr_assert_not_null(m, "lowering failed:\n%s", diags(fx));
  cr_assert_eq(fx->d.nerrors, 0, "%s", diags(fx));
  return m;
}

/* Compiles text and expects each of the NULL-terminated lines (exact
 * "t.ra:L:C: error: message" text) in the diagnostics, and nerr errors. */
static void expect_errors(const char *text, int nerr, const char *const *want) {
  Fx fx;
  compile(&fx, text);
  const char *out = diags(&fx);
  for (int i = 0; want[i]; i++)
    cr_expect(strstr(out, want[i]) != NULL, "missing diagnostic:\n  %s\ngot:\n%s", want[i], out);
  if (nerr >= 0) cr_expect_eq(fx.d.nerrors, nerr, "want %d errors, got %d:\n%s", nerr,
                              fx.d.nerrors, out);
  arena_free(&fx.a);
}

#define EXPECT_ERR(text, n, ...)                                \
  do {                                                          \
    const char *const w_[] = {__VA_ARGS__, NULL};               \
    expect_errors(text, n, w_);                                 \
  } while (0)

static int find_param(const Model *m, const char *path) {
  for (int i = 0; i < m->nparams; i++)
    if (strcmp(m->params[i].path, path) == 0) return i;
  return -1;
}

static const char *tstr(const IrType *t) {
  static char buf[8][128];
  static int k;
  k = (k + 1) % 8;
  return ir_type_str(t, buf[k], sizeof buf[k]);
}

static const IrOutput *output_named(const Model *m, const char *name) {
  for (int i = 0; i < m->fwd->nout; i++)
    if (m->fwd->outs[i].name && strcmp(m->fwd->outs[i].name, name) == 0) return &m->fwd->outs[i];
  return NULL;
}

static const char *out_type(const Model *m, const char *name) {
  const IrOutput *o = output_named(m, name);
  cr_assert_not_null(o, "no output %s", name);
  return tstr(&m->fwd->nodes[o->value].type);
}

static int count_op(const Model *m, IrOp op) {
  int n = 0;
  for (int i = 0; i < m->fwd->n; i++) n += m->fwd->nodes[i].op == op;
  return n;
}

static void check_paths(const Model *m, const char *const *want) {
  int n = 0;
  while (want[n]) n++;
  for (int i = 0; i < n && i < m->nparams; i++)
    cr_expect_str_eq(m->params[i].path, want[i], "param %d", i);
  cr_assert_eq(m->nparams, n, "want %d params, got %d", n, m->nparams);
}

/* ---- sources ---- */

static const char *CLASSIFIER =
    "# a small classifier (language.md §1)\n"
    "const d = 16\n"
    "\n"
    "model classifier {\n"
    "  input  tokens : int[12]\n"
    "  target label  : class(4)\n"
    "\n"
    "  x = embed(tokens, vocab: 50, dim: d) + position(12, dim: d)\n"
    "  repeat 2 {\n"
    "    a = attention(layernorm(x)) {\n"
    "      heads 4\n"
    "      repulsion svgd { alpha 0.1 }\n"
    "    }\n"
    "    x = x + a\n"
    "    x = x + ffn(layernorm(x), hidden: 4 * d, act: gelu)\n"
    "  }\n"
    "  logits = linear(mean(x), out: 4)\n"
    "  loss   cross_entropy(logits, label)\n"
    "  output probs = softmax(logits)\n"
    "}\n";

static const char *ATTNPOOL =
    "model pool {\n"
    "  input  x : f32[10, 8]\n"
    "  target y : class(3)\n"
    "  h = tanh(linear(x, out: 8))\n"
    "  m = attnpool(h) { heads 2  hidden 6  penalty 0.5  repulsion spos }\n"
    "  logits = linear(flatten(m), out: 3)\n"
    "  loss cross_entropy(logits, y)\n"
    "}\n";

static const char *CAUSAL_LM =
    "use \"std/causal_encoder\"\n"
    "\n"
    "model lm {\n"
    "  input  x : int[8]\n"
    "  target y : class(20)[8]\n"
    "  h = embed(x, vocab: 20, dim: 16) + position(8, dim: 16, kind: sinusoid)\n"
    "  h = causal_encoder(h, heads: 2, hidden: 32, rep: svgd, alpha: 0.5)\n"
    "  logits = linear(layernorm(h), out: 20)\n"
    "  loss cross_entropy(logits, y)\n"
    "  output next = softmax(logits)\n"
    "}\n";

/* ---- the classifier ---- */

Test(lower, classifier_params) {
  Fx fx;
  Model *m = lower_ok(&fx, CLASSIFIER, "classifier", 3);
  const char *const want[] = {
      "classifier.x.embed.table", "classifier.x.position.table",
      "classifier.r0.a.layernorm.gain", "classifier.r0.a.layernorm.bias",
      "classifier.r0.a.wq", "classifier.r0.a.bq", "classifier.r0.a.wk", "classifier.r0.a.bk",
      "classifier.r0.a.wv", "classifier.r0.a.bv", "classifier.r0.a.wo", "classifier.r0.a.bo",
      "classifier.r0.x.layernorm.gain", "classifier.r0.x.layernorm.bias",
      "classifier.r0.x.ffn.w1", "classifier.r0.x.ffn.b1", "classifier.r0.x.ffn.w2",
      "classifier.r0.x.ffn.b2",
      "classifier.r1.a.layernorm.gain", "classifier.r1.a.layernorm.bias",
      "classifier.r1.a.wq", "classifier.r1.a.bq", "classifier.r1.a.wk", "classifier.r1.a.bk",
      "classifier.r1.a.wv", "classifier.r1.a.bv", "classifier.r1.a.wo", "classifier.r1.a.bo",
      "classifier.r1.x.layernorm.gain", "classifier.r1.x.layernorm.bias",
      "classifier.r1.x.ffn.w1", "classifier.r1.x.ffn.b1", "classifier.r1.x.ffn.w2",
      "classifier.r1.x.ffn.b2",
      "classifier.logits.w", "classifier.logits.b", NULL};
  check_paths(m, want);
  /* shapes, inits, offsets */
  const ParamInfo *P = m->params;
  cr_expect_str_eq(tstr(&P[0].type), "f32[50, 16]");
  cr_expect_eq(P[0].init, INIT_NORMAL);
  cr_expect_float_eq(P[0].scale, 0.02, 1e-12);
  cr_expect_str_eq(tstr(&P[1].type), "f32[12, 16]");
  cr_expect_eq(P[1].init, INIT_NORMAL);
  cr_expect_eq(P[2].init, INIT_ONES);
  cr_expect_eq(P[3].init, INIT_ZEROS);
  cr_expect_str_eq(tstr(&P[4].type), "f32[16, 16]");
  cr_expect_eq(P[4].init, INIT_UNIFORM);
  cr_expect_float_eq(P[4].scale, 0.25, 1e-12);
  cr_expect_eq(P[5].init, INIT_ZEROS);
  int w1 = find_param(m, "classifier.r0.x.ffn.w1"), w2 = find_param(m, "classifier.r0.x.ffn.w2");
  cr_expect_str_eq(tstr(&P[w1].type), "f32[16, 64]");
  cr_expect_float_eq(P[w1].scale, 0.25, 1e-12);
  cr_expect_str_eq(tstr(&P[w2].type), "f32[64, 16]");
  cr_expect_float_eq(P[w2].scale, 0.125, 1e-12);
  cr_expect_str_eq(tstr(&P[34].type), "f32[16, 4]");
  cr_expect_str_eq(tstr(&P[35].type), "f32[4]");
  int64_t off = 0;
  for (int i = 0; i < m->nparams; i++) {
    cr_expect_eq(P[i].offset, off, "offset of %s", P[i].path);
    cr_expect_eq(P[i].type.batched, 0);
    off += ir_numel(&P[i].type);
  }
  cr_expect_eq(m->nweights, 7620);
  cr_expect_eq(off, 7620);
  /* every PARAM node names its parameter */
  int nparam_nodes = 0;
  for (int i = 0; i < m->fwd->n; i++) {
    const IrNode *n = &m->fwd->nodes[i];
    if (n->op != OP_PARAM) continue;
    nparam_nodes++;
    cr_expect_str_eq(n->name, P[n->attr.i[0]].path);
  }
  cr_expect_eq(nparam_nodes, 36);
  arena_free(&fx.a);
}

Test(lower, classifier_meta) {
  Fx fx;
  Model *m = lower_ok(&fx, CLASSIFIER, "classifier", 3);
  cr_expect_str_eq(m->name, "classifier");
  cr_assert_eq(m->ninputs, 1);
  cr_assert_eq(m->ntargets, 1);
  cr_expect_str_eq(m->inputs[0].name, "tokens");
  cr_expect_str_eq(tstr(&m->inputs[0].type), "i32[12]");
  cr_expect_eq(m->inputs[0].classes, 0);
  cr_expect_str_eq(m->targets[0].name, "label");
  cr_expect_str_eq(tstr(&m->targets[0].type), "i32[]");
  cr_expect_eq(m->targets[0].classes, 4);
  /* INPUT nodes: full batched types, targets indexed after the inputs */
  int seen = 0;
  for (int i = 0; i < m->fwd->n; i++) {
    const IrNode *n = &m->fwd->nodes[i];
    if (n->op != OP_INPUT) continue;
    if (strcmp(n->name, "tokens") == 0) {
      cr_expect_eq(n->attr.i[0], 0);
      cr_expect_str_eq(tstr(&n->type), "i32[3, 12]");
      cr_expect_eq(n->type.batched, 1);
      seen++;
    } else if (strcmp(n->name, "label") == 0) {
      cr_expect_eq(n->attr.i[0], 1);
      cr_expect_str_eq(tstr(&n->type), "i32[3]");
      seen++;
    }
  }
  cr_expect_eq(seen, 2);
  /* head groups */
  cr_assert_eq(m->ngroups, 2);
  const HeadGroup *g = &m->groups[0];
  cr_expect_str_eq(g->path, "classifier.r0.a");
  cr_expect_str_eq(m->groups[1].path, "classifier.r1.a");
  cr_expect_not(g->attnpool);
  cr_expect_eq(g->heads, 4);
  cr_expect_eq(g->head_dim, 4);
  cr_expect_eq(g->dim, 16);
  cr_expect_not(g->causal);
  cr_expect_eq(g->wq, find_param(m, "classifier.r0.a.wq"));
  cr_expect_eq(g->wk, find_param(m, "classifier.r0.a.wk"));
  cr_expect_eq(g->wv, find_param(m, "classifier.r0.a.wv"));
  cr_expect_eq(g->wo, find_param(m, "classifier.r0.a.wo"));
  cr_expect_eq(g->w2, -1);
  cr_expect_eq(g->rep.kind, REP_SVGD);
  cr_expect_float_eq(g->rep.alpha, 0.1, 1e-12);
  cr_expect_eq(g->span.line, 10);
  cr_expect_eq(g->span.col, 9);
  cr_expect_eq(m->groups[1].wq, find_param(m, "classifier.r1.a.wq"));
  cr_expect_eq(m->ndropout, 0);
  /* outputs, in order: loss, outputs, preds, heads */
  const IrFunc *f = m->fwd;
  cr_assert_eq(f->nout, 5);
  cr_expect_eq(f->outs[0].role, OUT_LOSS);
  cr_expect_str_eq(tstr(&f->nodes[f->outs[0].value].type), "f32[]");
  cr_expect_eq(f->nodes[f->outs[0].value].op, OP_CROSS_ENTROPY);
  cr_expect_eq(f->outs[1].role, OUT_OUTPUT);
  cr_expect_str_eq(f->outs[1].name, "probs");
  cr_expect_eq(f->outs[1].index, 0);
  cr_expect_str_eq(tstr(&f->nodes[f->outs[1].value].type), "f32[3, 4]");
  cr_expect_eq(f->outs[2].role, OUT_PRED);
  cr_expect_eq(f->outs[2].index, 0);
  cr_expect_str_eq(tstr(&f->nodes[f->outs[2].value].type), "f32[3, 4]");
  cr_expect_eq(f->outs[3].role, OUT_HEADS);
  cr_expect_eq(f->outs[3].index, 0);
  cr_expect_str_eq(f->outs[3].name, "classifier.r0.a");
  cr_expect_str_eq(tstr(&f->nodes[f->outs[3].value].type), "f32[3, 4, 12, 4]");
  cr_expect_eq(f->outs[4].index, 1);
  arena_free(&fx.a);
}

Test(lower, classifier_golden) {
  Fx fx;
  Model *m = lower_ok(&fx, CLASSIFIER, "classifier", 3);
  tu_golden("tests/golden/lower/classifier.ir", ir_print(&fx.a, m->fwd, &fx.src, true));
  arena_free(&fx.a);
}

/* ---- attnpool ---- */

Test(lower, attnpool) {
  Fx fx;
  Model *m = lower_ok(&fx, ATTNPOOL, "pool", 2);
  const char *const want[] = {"pool.h.linear.w", "pool.h.linear.b", "pool.m.w1", "pool.m.w2",
                              "pool.logits.w", "pool.logits.b", NULL};
  check_paths(m, want);
  cr_expect_str_eq(tstr(&m->params[2].type), "f32[8, 6]");
  cr_expect_str_eq(tstr(&m->params[3].type), "f32[6, 2]");
  cr_expect_eq(m->params[3].init, INIT_UNIFORM);
  cr_expect_float_eq(m->params[3].scale, 1 / sqrt(6.0), 1e-12);
  cr_expect_str_eq(tstr(&m->params[4].type), "f32[16, 3]");
  cr_assert_eq(m->ngroups, 1);
  const HeadGroup *g = &m->groups[0];
  cr_expect(g->attnpool);
  cr_expect_str_eq(g->path, "pool.m");
  cr_expect_eq(g->heads, 2);
  cr_expect_eq(g->head_dim, 6);
  cr_expect_eq(g->dim, 8);
  cr_expect_eq(g->w2, 3);
  cr_expect_eq(g->wq, -1);
  cr_expect_eq(g->rep.kind, REP_SPOS);
  /* the penalty is added to the loss */
  const IrOutput *lo = ir_find_output(m->fwd, OUT_LOSS, -1);
  cr_assert_not_null(lo);
  const IrNode *ln = &m->fwd->nodes[lo->value];
  cr_expect_eq(ln->op, OP_ADD);
  cr_expect_eq(m->fwd->nodes[ln->in[0]].op, OP_CROSS_ENTROPY);
  const IrNode *pen = &m->fwd->nodes[ln->in[1]];
  cr_expect_eq(pen->op, OP_SCALE);
  cr_expect_float_eq(pen->attr.f[0], 0.5, 1e-12);
  const IrOutput *ho = ir_find_output(m->fwd, OUT_HEADS, 0);
  cr_assert_not_null(ho);
  cr_expect_str_eq(tstr(&m->fwd->nodes[ho->value].type), "f32[2, 2, 8]");
  tu_golden("tests/golden/lower/attnpool.ir", ir_print(&fx.a, m->fwd, &fx.src, true));
  arena_free(&fx.a);
}

/* ---- causal language model through std/causal_encoder ---- */

Test(lower, causal_lm) {
  Fx fx;
  Model *m = lower_ok(&fx, CAUSAL_LM, "lm", 2);
  const char *const want[] = {
      "lm.h.embed.table",
      "lm.h_2.a.layernorm.gain", "lm.h_2.a.layernorm.bias",
      "lm.h_2.a.wq", "lm.h_2.a.bq", "lm.h_2.a.wk", "lm.h_2.a.bk",
      "lm.h_2.a.wv", "lm.h_2.a.bv", "lm.h_2.a.wo", "lm.h_2.a.bo",
      "lm.h_2.x.layernorm.gain", "lm.h_2.x.layernorm.bias",
      "lm.h_2.x.ffn.w1", "lm.h_2.x.ffn.b1", "lm.h_2.x.ffn.w2", "lm.h_2.x.ffn.b2",
      "lm.logits.layernorm.gain", "lm.logits.layernorm.bias", "lm.logits.w", "lm.logits.b",
      NULL};
  check_paths(m, want);
  cr_assert_eq(m->ngroups, 1);
  cr_expect(m->groups[0].causal);
  cr_expect_eq(m->groups[0].heads, 2);
  cr_expect_eq(m->groups[0].head_dim, 8);
  cr_expect_eq(m->groups[0].rep.kind, REP_SVGD);
  cr_expect_float_eq(m->groups[0].rep.alpha, 0.5, 1e-12);
  cr_expect_str_eq(m->groups[0].path, "lm.h_2.a");
  cr_expect_eq(count_op(m, OP_CAUSAL_MASK), 1);
  cr_expect_eq(count_op(m, OP_GELU), 1);
  cr_expect_str_eq(tstr(&m->targets[0].type), "i32[8]");
  cr_expect_eq(m->targets[0].classes, 20);
  const IrOutput *po = ir_find_output(m->fwd, OUT_PRED, 0);
  cr_assert_not_null(po);
  cr_expect_str_eq(tstr(&m->fwd->nodes[po->value].type), "f32[2, 8, 20]");
  cr_expect_str_eq(out_type(m, "next"), "f32[2, 8, 20]");
  tu_golden("tests/golden/lower/causal_lm.ir", ir_print(&fx.a, m->fwd, &fx.src, true));
  arena_free(&fx.a);
}

Test(lower, stdlib_encoder_and_classifier) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "use \"std/encoder\"\n"
                      "use \"std/classifier\"\n"
                      "model c {\n"
                      "  input  t : int[6]\n"
                      "  target y : class(3)\n"
                      "  x = embed(t, vocab: 10, dim: 8)\n"
                      "  repeat 2 { x = encoder(x, heads: 2, hidden: 16, act: relu) }\n"
                      "  logits = classifier_head(x, classes: 3, pool: max)\n"
                      "  loss cross_entropy(logits, y)\n"
                      "}\n",
                      "c", 2);
  cr_expect_geq(find_param(m, "c.r0.x.a.wq"), 0);
  cr_expect_geq(find_param(m, "c.r1.x.x.ffn.w2"), 0);
  cr_expect_geq(find_param(m, "c.logits.w"), 0);
  cr_expect_str_eq(tstr(&m->params[find_param(m, "c.logits.w")].type), "f32[8, 3]");
  cr_expect_str_eq(tstr(&m->params[find_param(m, "c.r0.x.x.ffn.w1")].type), "f32[8, 16]");
  cr_expect_eq(m->ngroups, 2);
  cr_expect_eq(m->groups[1].rep.kind, REP_NONE);
  cr_expect_not(m->groups[0].causal);
  cr_expect_eq(count_op(m, OP_RELU), 2);
  cr_expect_eq(count_op(m, OP_GELU), 0);
  cr_expect_eq(count_op(m, OP_MAX), 1);
  cr_expect_eq(m->nparams, 2 * 16 + 1 + 2);
  arena_free(&fx.a);
}

/* ---- activations ---- */

/* Every elementwise built-in names its op, as a call and as `act:` of ffn;
 * a block of one argument is inlined as the activation. */
Test(lower, act_names_give_their_ops) {
  static const struct { const char *name; IrOp op; } acts[] = {
      {"relu", OP_RELU}, {"gelu", OP_GELU}, {"tanh", OP_TANH}, {"sigmoid", OP_SIGMOID},
      {"silu", OP_SILU}};
  for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
    for (int as_call = 0; as_call < 2; as_call++) {
      char text[512];
      snprintf(text, sizeof text,
               "model m {\n"
               "  input x : f32[4]\n"
               "  output y = %s%s%s\n"
               "}\n",
               as_call ? acts[k].name : "ffn(x, hidden: 8, act: ",
               as_call ? "(x)" : acts[k].name, as_call ? "" : ")");
      Fx fx;
      Model *m = lower_ok(&fx, text, "m", 2);
      for (size_t j = 0; j < sizeof acts / sizeof acts[0]; j++)
        cr_expect_eq(count_op(m, acts[j].op), j == k, "%s: %s count", text, acts[j].name);
      arena_free(&fx.a);
    }
  }
}

Test(lower, act_block) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "block gated(x, k: 2) {\n"
                      "  g = linear(x, out: 8)\n"
                      "  return x * sigmoid(g * k)\n"
                      "}\n"
                      "block enc(x, act: relu) { return ffn(x, hidden: 8, act: act) }\n"
                      "model m {\n"
                      "  input x : f32[4]\n"
                      "  h = ffn(x, hidden: 8, act: gated)\n"
                      "  output y = enc(h, act: silu) + enc(h, act: gated)\n"
                      "}\n",
                      "m", 2);
  const char *const want[] = {
      "m.h.w1", "m.h.b1", "m.h.w2", "m.h.b2", "m.h.gated.g.w", "m.h.gated.g.b",
      "m.y.enc.w1", "m.y.enc.b1", "m.y.enc.w2", "m.y.enc.b2",
      "m.y.enc_2.w1", "m.y.enc_2.b1", "m.y.enc_2.w2", "m.y.enc_2.b2",
      "m.y.enc_2.gated.g.w", "m.y.enc_2.gated.g.b", NULL};
  check_paths(m, want);
  cr_expect_eq(count_op(m, OP_SIGMOID), 2);
  cr_expect_eq(count_op(m, OP_SILU), 1);
  cr_expect_eq(count_op(m, OP_RELU), 0);
  cr_expect_eq(count_op(m, OP_GELU), 0);
  arena_free(&fx.a);
}

/* ---- naming rules ---- */

Test(lower, path_rules) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "block mlp(x, width: 8, act: relu) {\n"
                      "  h = linear(x, out: width)\n"
                      "  h = act(h)\n"
                      "  return linear(h, out: 4)\n"
                      "}\n"
                      "model n {\n"
                      "  input  x : f32[4]\n"
                      "  target t : f32[2]\n"
                      "  y = linear(x, out: 4)\n"
                      "  y = layernorm(y) + layernorm(y)\n"
                      "  y = relu(y)\n"
                      "  z = mlp(y, width: 6)\n"
                      "  z = z + mlp(y, act: tanh)\n"
                      "  repeat 2 { y = linear(y, out: 4) }\n"
                      "  repeat 1 {\n"
                      "    y = linear(y, out: 4)\n"
                      "    repeat 1 { y = y + linear(y, out: 4) }\n"
                      "  }\n"
                      "  output o = linear(z + y, out: 2)\n"
                      "  loss mse(o, t)\n"
                      "}\n",
                      "n", 2);
  const char *const want[] = {
      "n.y.w", "n.y.b",
      "n.y_2.layernorm.gain", "n.y_2.layernorm.bias",
      "n.y_2.layernorm_2.gain", "n.y_2.layernorm_2.bias",
      "n.z.h.w", "n.z.h.b", "n.z.w", "n.z.b",
      "n.z_2.mlp.h.w", "n.z_2.mlp.h.b", "n.z_2.mlp.w", "n.z_2.mlp.b",
      "n.r0.y.w", "n.r0.y.b", "n.r1.y.w", "n.r1.y.b",
      "n.r2.y.w", "n.r2.y.b", "n.r2.r0.y.linear.w", "n.r2.r0.y.linear.b",
      "n.o.w", "n.o.b", NULL};
  check_paths(m, want);
  cr_expect_str_eq(tstr(&m->params[find_param(m, "n.z.h.w")].type), "f32[4, 6]");
  cr_expect_str_eq(tstr(&m->params[find_param(m, "n.z_2.mlp.h.w")].type), "f32[4, 8]");
  cr_expect_eq(count_op(m, OP_TANH), 1);
  cr_expect_eq(count_op(m, OP_RELU), 2);
  /* mse: sub, square, reshape to [N], mean over axis 0 */
  const IrOutput *lo = ir_find_output(m->fwd, OUT_LOSS, -1);
  const IrNode *mean = &m->fwd->nodes[lo->value];
  cr_expect_eq(mean->op, OP_MEAN);
  const IrNode *flat = &m->fwd->nodes[mean->in[0]];
  cr_expect_eq(flat->op, OP_RESHAPE);
  cr_expect_str_eq(tstr(&flat->type), "f32[4]");
  cr_expect_eq(m->fwd->nodes[flat->in[0]].op, OP_SQUARE);
  cr_expect_null(ir_find_output(m->fwd, OUT_PRED, -1));
  arena_free(&fx.a);
}

Test(lower, target_indices) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "model t {\n"
                      "  target y : f32[2]\n"
                      "  input a : f32[3]\n"
                      "  input b : f32[3]\n"
                      "  o = linear(a + b, out: 2)\n"
                      "  loss mse(o, y)\n"
                      "}\n",
                      "t", 5);
  cr_assert_eq(m->ninputs, 2);
  cr_assert_eq(m->ntargets, 1);
  cr_expect_str_eq(m->inputs[1].name, "b");
  cr_expect_str_eq(tstr(&m->targets[0].type), "f32[2]");
  for (int i = 0; i < m->fwd->n; i++) {
    const IrNode *n = &m->fwd->nodes[i];
    if (n->op != OP_INPUT) continue;
    int64_t want = strcmp(n->name, "y") == 0 ? 2 : strcmp(n->name, "a") == 0 ? 0 : 1;
    cr_expect_eq(n->attr.i[0], want, "%s", n->name);
  }
  arena_free(&fx.a);
}

/* ---- operations ---- */

Test(lower, layout_ops) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "const k = 3\n"
                      "model ops {\n"
                      "  input x : f32[6, 4]\n"
                      "  output a = reshape(x, [k, -1])\n"
                      "  output b = transpose(a)\n"
                      "  output c = transpose(x, perm: [1, 0])\n"
                      "  output e = concat(x, x, axis: 1)\n"
                      "  output f = flatten(e)\n"
                      "  output g = dropout(f, p: 0.1)\n"
                      "  output h = dropout(g, p: 0.2)\n"
                      "  output i = max(x, axis: 1)\n"
                      "  output j = sum(x)\n"
                      "  output l = concat(x, position(6, dim: 4, kind: sinusoid))\n"
                      "  output n = mean(x, axis: -1) * 2 - 1 / 4\n"
                      "  output s = sigmoid(-x) @ transpose(x)\n"
                      "}\n",
                      "ops", 2);
  cr_expect_str_eq(out_type(m, "a"), "f32[2, 3, 8]");
  cr_expect_str_eq(out_type(m, "b"), "f32[2, 8, 3]");
  cr_expect_str_eq(out_type(m, "c"), "f32[2, 4, 6]");
  cr_expect_str_eq(out_type(m, "e"), "f32[2, 6, 8]");
  cr_expect_str_eq(out_type(m, "f"), "f32[2, 48]");
  cr_expect_str_eq(out_type(m, "g"), "f32[2, 48]");
  cr_expect_str_eq(out_type(m, "i"), "f32[2, 6]");
  cr_expect_str_eq(out_type(m, "j"), "f32[2, 4]");
  cr_expect_str_eq(out_type(m, "l"), "f32[2, 12, 4]");
  cr_expect_str_eq(out_type(m, "n"), "f32[2, 6]");
  cr_expect_str_eq(out_type(m, "s"), "f32[2, 6, 6]");
  cr_expect_eq(m->ndropout, 2);
  cr_expect_eq(m->nparams, 0);
  cr_expect_null(ir_find_output(m->fwd, OUT_LOSS, -1));
  /* two dropout sites, two streams */
  int streams = 0;
  for (int i = 0; i < m->fwd->n; i++)
    if (m->fwd->nodes[i].op == OP_DROPOUT) {
      cr_expect_eq(m->fwd->nodes[i].attr.i[0], streams);
      streams++;
    }
  cr_expect_eq(streams, 2);
  /* transpose(x, perm: [1, 0]) keeps the batch axis first */
  const IrNode *c = &m->fwd->nodes[output_named(m, "c")->value];
  cr_expect_eq(c->attr.i[0], 0);
  cr_expect_eq(c->attr.i[1], 2);
  cr_expect_eq(c->attr.i[2], 1);
  /* the unbatched table is repeated along the batch before concat */
  cr_expect_eq(count_op(m, OP_BROADCAST), 1);
  /* 1 / 4 is folded at compile time */
  int quarter = 0;
  for (int i = 0; i < m->fwd->n; i++)
    if (m->fwd->nodes[i].op == OP_CONST && !m->fwd->nodes[i].data &&
        m->fwd->nodes[i].attr.f[0] == 0.25)
      quarter++;
  cr_expect_eq(quarter, 1);
  arena_free(&fx.a);
}

Test(lower, sinusoid_table) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "model s {\n"
                      "  input x : f32[4, 6]\n"
                      "  output p = x + position(4, dim: 6, kind: sinusoid)\n"
                      "}\n",
                      "s", 1);
  const IrNode *tab = NULL;
  for (int i = 0; i < m->fwd->n; i++)
    if (m->fwd->nodes[i].op == OP_CONST && m->fwd->nodes[i].data) tab = &m->fwd->nodes[i];
  cr_assert_not_null(tab);
  cr_expect_str_eq(tstr(&tab->type), "f32[4, 6]");
  for (int p = 0; p < 4; p++)
    for (int j = 0; j < 6; j++) {
      double a = p / pow(10000.0, (double)(j - j % 2) / 6.0);
      double want = j % 2 ? cos(a) : sin(a);
      cr_expect_float_eq(tab->data[p * 6 + j], want, 1e-6, "PE[%d, %d]", p, j);
    }
  cr_expect_eq(m->nparams, 0);
  arena_free(&fx.a);
}

Test(lower, attention_options) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "model a {\n"
                      "  input q : f32[5, 12]\n"
                      "  input kv : f32[7, 6]\n"
                      "  c = attention(q, kv) { heads 3  head_dim 2  dropout 0.1 }\n"
                      "  output o = c\n"
                      "}\n",
                      "a", 2);
  cr_expect_str_eq(out_type(m, "o"), "f32[2, 5, 12]");
  cr_expect_str_eq(tstr(&m->params[find_param(m, "a.c.wq")].type), "f32[12, 6]");
  cr_expect_str_eq(tstr(&m->params[find_param(m, "a.c.wk")].type), "f32[6, 6]");
  cr_expect_float_eq(m->params[find_param(m, "a.c.wk")].scale, 1 / sqrt(6.0), 1e-12);
  cr_expect_str_eq(tstr(&m->params[find_param(m, "a.c.wo")].type), "f32[6, 12]");
  cr_expect_eq(m->groups[0].head_dim, 2);
  cr_expect_eq(m->groups[0].dim, 12);
  cr_expect_eq(m->ndropout, 1);
  cr_expect_eq(count_op(m, OP_CAUSAL_MASK), 0);
  const IrOutput *h = ir_find_output(m->fwd, OUT_HEADS, 0);
  cr_expect_str_eq(tstr(&m->fwd->nodes[h->value].type), "f32[2, 3, 5, 2]");
  /* the scores are scaled by 1/sqrt(head_dim) */
  int scaled = 0;
  for (int i = 0; i < m->fwd->n; i++)
    if (m->fwd->nodes[i].op == OP_SCALE && fabs(m->fwd->nodes[i].attr.f[0] - 1 / sqrt(2.0)) < 1e-12)
      scaled++;
  cr_expect_eq(scaled, 1);
  arena_free(&fx.a);
}

Test(lower, bias_false_and_extern) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "extern fn swish(x: f32) -> f32 from \"./libnothing.so\"\n"
                      "model e {\n"
                      "  input x : f32[3]\n"
                      "  output y = swish(linear(x, out: 2, bias: false))\n"
                      "}\n",
                      "e", 1);
  const char *const want[] = {"e.y.linear.w", NULL};
  check_paths(m, want);
  const IrNode *y = &m->fwd->nodes[output_named(m, "y")->value];
  cr_expect_eq(y->op, OP_EXTERN);
  cr_expect_eq(y->attr.i[0], 0);
  cr_expect_str_eq(tstr(&y->type), "f32[1, 2]");
  arena_free(&fx.a);
}

Test(lower, batch_sizes) {
  Fx fx;
  Program *p = compile(&fx, CLASSIFIER);
  cr_assert_eq(fx.d.nerrors, 0, "%s", diags(&fx));
  const AstItem *it = sema_find_model(p, "classifier");
  Model *a = lower_model(p, it, 1), *b = lower_model(p, it, 7);
  cr_assert(a && b);
  cr_expect_eq(a->nweights, b->nweights);
  cr_expect_eq(a->fwd->n, b->fwd->n);
  cr_expect_eq(b->fwd->batch, 7);
  cr_expect_str_eq(tstr(&b->fwd->nodes[ir_find_output(b->fwd, OUT_OUTPUT, 0)->value].type),
                   "f32[7, 4]");
  cr_expect_null(lower_model(p, it, 0));
  cr_expect_eq(fx.d.nerrors, 1);
  arena_free(&fx.a);
}

/* Broadcasting lines up per-example shapes: a per-example scalar scales a
 * whole example, and an unbatched [3, 4] meets a batched [4] per example -
 * even when the batch size equals a per-example axis (batch 4 here). */
Test(lower, per_example_broadcasting) {
  Fx fx;
  Model *m = lower_ok(&fx,
                      "model b {\n"
                      "  input x : f32[4, 6]\n"
                      "  input v : f32[4]\n"
                      "  s = mean(mean(x))\n"
                      "  output scaled = x * s\n"
                      "  output table = position(3, dim: 4) + v\n"
                      "  output mixed = v - mean(x, axis: 1)\n"
                      "}\n",
                      "b", 4);
  cr_expect_str_eq(out_type(m, "scaled"), "f32[4, 4, 6]");
  cr_expect_str_eq(out_type(m, "table"), "f32[4, 3, 4]");
  cr_expect_str_eq(out_type(m, "mixed"), "f32[4, 4]");
  arena_free(&fx.a);
  m = lower_ok(&fx,
               "model mm {\n"
               "  input t : f32[2, 4, 4]\n"
               "  input m : f32[4, 4]\n"
               "  output c = t @ m\n"
               "}\n",
               "mm", 4);
  cr_expect_str_eq(out_type(m, "c"), "f32[4, 2, 4, 4]");
  arena_free(&fx.a);
  const char *want[] = {"t.ra:4:14: error: '@' of two per-example values needs two axes on both "
                        "sides; got f32[B, 4] @ f32[B, 4, 4] (reshape a vector to [1, n])",
                        NULL};
  expect_errors("model mm {\n"
                "  input x : f32[4]\n"
                "  input m : f32[4, 4]\n"
                "  output a = x @ m\n"
                "}\n",
                1, want);
}

/* ---- diagnostics ---- */

Test(lower_errors, names) {
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = relu(xx)\n"
             "  z = y + y\n"
             "  output o = z\n"
             "}\n",
             1, "t.ra:3:12: error: unknown name 'xx'; did you mean 'x'?");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = fnn(x, hidden: 8)\n"
             "}\n",
             1, "t.ra:3:7: error: unknown function 'fnn'; did you mean 'ffn'?");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  input x : f32[4]\n"
             "}\n",
             1, "t.ra:3:9: error: 'x' is declared twice", "t.ra:2:3: note: 'x' was declared here");
}

Test(lower_errors, kwargs) {
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = linear(x, outs: 3)\n"
             "}\n",
             1, "t.ra:3:17: error: linear has no argument 'outs'; did you mean 'out'?");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = linear(x)\n"
             "}\n",
             1, "t.ra:3:7: error: missing argument 'out:' of linear");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = linear(x, out: 2.5)\n"
             "}\n",
             1, "t.ra:3:22: error: 'out:' of linear must be an integer; got 2.5");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = ffn(x, hidden: 8, act: gelo)\n"
             "}\n",
             1, "t.ra:3:30: error: 'act:' of ffn must be an elementwise function (relu, gelu, "
                "tanh, sigmoid or silu) or a block of one argument; 'gelo' is unknown; did you "
                "mean 'gelu'?");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = ffn(x, hidden: 8, act: softmax)\n"
             "}\n",
             1, "t.ra:3:30: error: 'act:' of ffn must be an elementwise function (relu, gelu, "
                "tanh, sigmoid or silu) or a block of one argument; 'softmax' is not "
                "elementwise");
  EXPECT_ERR("block mish(x) { return x * tanh(x) }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = ffn(x, hidden: 8, act: mis)\n"
             "}\n",
             1, "t.ra:4:30: error: 'act:' of ffn must be an elementwise function (relu, gelu, "
                "tanh, sigmoid or silu) or a block of one argument; 'mis' is unknown; did you "
                "mean 'mish'?");
  EXPECT_ERR("block pair(x, y) { return x * y }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = ffn(x, hidden: 8, act: pair)\n"
             "}\n",
             1, "t.ra:4:30: error: 'act:' of ffn needs a function of one tensor; block 'pair' "
                "takes 2 positional arguments",
             "t.ra:1:7: note: 'pair' is defined here");
  EXPECT_ERR("block silu(x) { return x * 2 }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = silu(x)\n"
             "}\n",
             1, "t.ra:4:7: error: 'silu' is a built-in and also the name of a block; rename the "
                "block",
             "t.ra:1:7: note: block 'silu' is defined here");
  EXPECT_ERR("block relu(x) { return x * 2 }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = ffn(x, hidden: 8, act: relu)\n"
             "}\n",
             1, "t.ra:4:30: error: 'relu' is a built-in and also the name of a block; rename the "
                "block");
  EXPECT_ERR("block loop(x) { return ffn(x, hidden: 4, act: loop) }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = ffn(x, hidden: 8, act: loop)\n"
             "}\n",
             1, "t.ra:1:47: error: block 'loop' calls itself; recursion is not allowed");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = linear(x, out: 3, bias: maybe)\n"
             "}\n",
             1, "t.ra:3:31: error: 'bias:' of linear must be true or false");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = relu(x, x)\n"
             "}\n",
             1, "t.ra:3:7: error: relu takes 1 positional argument; got 2");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = linear(x, out: 0)\n"
             "}\n",
             1, "t.ra:3:22: error: 'out:' of linear must be at least 1; got 0");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = layernorm(x, eps: 1)\n"
             "}\n",
             1, "t.ra:3:20: error: layernorm takes no keyword arguments");
}

Test(lower_errors, loss) {
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  loss linear(x, out: 2)\n"
             "}\n",
             1, "t.ra:3:8: error: loss must be a scalar; cross_entropy(...) gives one "
                "(this is f32[B, 2])");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  target t : f32[4]\n"
             "  loss mse(x, t)\n"
             "  loss mse(x, t)\n"
             "}\n",
             1, "t.ra:5:3: error: a model has one loss statement; add the terms with '+'",
             "t.ra:4:3: note: the first loss is here");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  target label : class(4)\n"
             "  logits = linear(x, out: 5)\n"
             "  loss cross_entropy(logits, label)\n"
             "}\n",
             1, "t.ra:5:22: error: logits have 5 classes but target 'label' is class(4)");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  target t : class(4)[3]\n"
             "  loss cross_entropy(linear(x, out: 4), t)\n"
             "}\n",
             1, "t.ra:4:41: error: cross_entropy of logits f32[B, 4] needs a target i32[B]; "
                "this is i32[B, 3]");
}

Test(lower_errors, shapes) {
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = x + linear(x, out: 3)\n"
             "}\n",
             1, "t.ra:3:7: error: cannot add f32[B, 4] and f32[B, 3]: dimension 1 is 4 vs 3");
  EXPECT_ERR("model m {\n"
             "  input x : f32[6, 10]\n"
             "  a = attention(x) { heads 4 }\n"
             "}\n",
             1, "t.ra:3:7: error: attention: dimension 10 is not divisible by 4 heads; give "
                "head_dim");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = reshape(x, [3, 3])\n"
             "}\n",
             1, "t.ra:3:7: error: cannot reshape f32[B, 4] (4 elements per example) to 9 "
                "elements");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4, 3]\n"
             "  y = mean(x, axis: 2)\n"
             "}\n",
             1, "t.ra:3:21: error: axis 2 is out of range for f32[B, 4, 3] (2 axes per example)");
  EXPECT_ERR("model m {\n"
             "  input x : int[4]\n"
             "  y = x + 1\n"
             "}\n",
             1, "t.ra:3:7: error: '+' needs f32 values; this is i32[B, 4] (embed integer ids "
                "first)");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = embed(x, vocab: 4, dim: 2)\n"
             "}\n",
             1, "t.ra:3:13: error: embed needs integer ids (int or class); this is f32[B, 4]");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = x % 2\n"
             "}\n",
             1, "t.ra:3:7: error: '%' is only for compile-time numbers (consts)");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  a = attention(x) { heads 2 }\n"
             "}\n",
             1, "t.ra:3:17: error: attention needs f32[T, d] per example; this is f32[B, 4]");
}

Test(lower_errors, statements) {
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  return x\n"
             "}\n",
             1, "t.ra:3:3: error: 'return' is only allowed in a block");
  EXPECT_ERR("block b(x) {\n"
             "  input y : f32[4]\n"
             "  return x\n"
             "}\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  z = b(x)\n"
             "}\n",
             1, "t.ra:2:3: error: 'input' is only allowed in a model, not in block 'b'",
             "t.ra:7:7: note: in block 'b', called here");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  target t : f32[4]\n"
             "  repeat 0 { x = relu(x) }\n"
             "  repeat 2 { loss mse(x, t) }\n"
             "}\n",
             2, "t.ra:4:10: error: the repeat count must be at least 1; got 0",
             "t.ra:5:14: error: 'loss' must be at the top level of the model, not inside repeat");
  EXPECT_ERR("block b(x) {\n"
             "  return x\n"
             "  y = x\n"
             "}\n"
             "block c(x) {\n"
             "  y = x\n"
             "}\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  z = b(x) + c(x)\n"
             "}\n",
             2, "t.ra:3:3: error: statement after 'return'; 'return' ends a block",
             "t.ra:10:14: error: block 'c' has no return statement",
             "t.ra:5:7: note: 'c' is defined here");
}

Test(lower_errors, blocks) {
  EXPECT_ERR("block a(x) { return b(x) }\n"
             "block b(x) { return a(x) }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = a(x)\n"
             "}\n",
             1, "t.ra:2:21: error: block 'a' calls itself; recursion is not allowed",
             "t.ra:1:21: note: in block 'b', called here", "t.ra:5:7: note: in block 'a', called here");
  EXPECT_ERR("block b(x, width: 4) { return linear(x, out: width) }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = b(x, x)\n"
             "  z = b(x, widht: 3)\n"
             "}\n",
             2, "t.ra:4:7: error: block 'b' takes 1 positional argument; got 2",
             "t.ra:1:7: note: 'b' is defined here",
             "t.ra:5:12: error: block 'b' has no parameter 'widht'; did you mean 'width'?");
  /* an error inside a block called twice (in a repeat) is reported once */
  EXPECT_ERR("block b(x) { return relu(y) }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  repeat 3 { x = b(x) }\n"
             "}\n",
             1, "t.ra:1:26: error: unknown name 'y'", "t.ra:4:18: note: in block 'b', called here");
}

Test(lower_errors, several_independent) {
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  a = relu(q)\n"
             "  b = linear(x, out: -1)\n"
             "  c = a + b + sigmoid(x, 3)\n"
             "  d = softmax(c) + tanh(x)\n"
             "  output o = mean(x, axis: 5)\n"
             "}\n",
             4, "t.ra:3:12: error: unknown name 'q'",
             "t.ra:4:22: error: 'out:' of linear must be at least 1; got -1",
             "t.ra:5:15: error: sigmoid takes 1 positional argument; got 2",
             "t.ra:7:28: error: axis 5 is out of range for f32[B, 4] (1 axis per example)");
}

Test(lower_errors, clause_errors_once) {
  /* the clause reader runs for every repeat iteration; its error shows once */
  EXPECT_ERR("model m {\n"
             "  input x : f32[6, 8]\n"
             "  repeat 3 { x = attention(x) { heads 0 } }\n"
             "}\n",
             1, "t.ra:3:39: error: heads must be at least 1, found 0");
}

Test(lower_errors, misc) {
  EXPECT_ERR("extern fn swish(x: f32) -> f32 from \"./libnothing.so\"\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = swish(x, x)\n"
             "}\n",
             1, "t.ra:4:7: error: extern 'swish' is applied to one tensor; got 2 arguments",
             "t.ra:1:11: note: 'swish' is declared here");
  EXPECT_ERR("block b(x, act: relu) { return act }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = b(x)\n"
             "}\n",
             1, "t.ra:1:32: error: 'act' is the name 'relu' here, not a value");
  EXPECT_ERR("block b(x, n: 2) { return x * n }\n"
             "model m {\n"
             "  input x : f32[4]\n"
             "  y = b(x, n: relu(x))\n"
             "}\n",
             1, "t.ra:4:15: error: keyword arguments of blocks are numbers or names; pass "
                "tensors as positional arguments");
  EXPECT_ERR("model m {\n"
             "  input q : f32[4, 8]\n"
             "  input k : f32[5, 8]\n"
             "  a = attention(q, k) { heads 2  causal }\n"
             "}\n",
             1, "t.ra:4:7: error: causal attention needs as many keys as queries; got 4 "
                "queries and 5 keys");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = dropout(x, p: 1.5)\n"
             "}\n",
             1, "t.ra:3:21: error: dropout p must be in [0, 1); got 1.5");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  y = transpose(x, perm: [0, 0])\n"
             "}\n",
             1, "t.ra:3:26: error: perm must order all 1 axes of f32[B, 4] (per example), each "
                "once");
  EXPECT_ERR("model m {\n"
             "  input x : f32[4]\n"
             "  output o = x\n"
             "  output o = relu(x)\n"
             "}\n",
             1, "t.ra:4:10: error: output 'o' is declared twice", "t.ra:3:10: note: first declared here");
}

/* ---- out of memory: every failure point gives NULL and a diagnostic ---- */

typedef struct FailAlloc {
  int left;
} FailAlloc;

static void *fail_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)osize;
  FailAlloc *fa = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (fa->left-- <= 0) return NULL;
  return realloc(ptr, nsize);
}

Test(lower, out_of_memory) {
  bool done = false;
  int failures = 0;
  for (int k = 0; k < 64 && !done; k++) {
    Fx fx;
    Program *p = compile(&fx, CLASSIFIER);
    cr_assert_eq(fx.d.nerrors, 0);
    const AstItem *it = sema_find_model(p, "classifier");
    FailAlloc fa = {k};
    RaAlloc saved = fx.a.alloc;
    fx.a.alloc = (RaAlloc){fail_fn, &fa};
    Model *m = lower_model(p, it, 64);
    fx.a.alloc = saved;
    if (m) {
      done = true;
      cr_expect_eq(m->nparams, 36);
    } else {
      failures++;
      cr_expect_null(fx.a.oom_jmp, "the arena's jump target is restored");
      cr_expect_gt(fx.d.nerrors, 0);
    }
    arena_free(&fx.a);
  }
  cr_expect(done, "lowering never succeeded");
  cr_expect_gt(failures, 0, "no allocation failure was exercised");
}

/* ---- the lowered models are complete: autodiff takes every one ---- */

Test(lower, models_differentiate) {
  const char *srcs[] = {CLASSIFIER, ATTNPOOL, CAUSAL_LM};
  const char *names[] = {"classifier", "pool", "lm"};
  for (int i = 0; i < 3; i++) {
    Fx fx;
    Model *m = lower_ok(&fx, srcs[i], names[i], 2);
    IrFunc *g = autodiff(&fx.a, m, NULL, 0, &fx.d);
    cr_assert_not_null(g, "%s: %s", names[i], diags(&fx));
    for (int k = 0; k < m->nparams; k++)
      cr_expect_not_null(ir_find_output(g, OUT_GRAD, k), "%s: no gradient for %s", names[i],
                         m->params[k].path);
    arena_free(&fx.a);
  }
}
