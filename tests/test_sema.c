/* test_sema.c - semantic checks: const evaluation, clause reading against
 * schemas (attention, repulsion, data, train), `use` search order and
 * cycles, extern forms, train/data binding and `--set`. */
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../compiler/clauses.h"
#include "testutil.h"

typedef struct Ctx {
  Arena arena;
  SrcSet src;
  DiagList diags;
  Program *p;
} Ctx;

static Ctx *ctx_new(void) {
  Ctx *c = calloc(1, sizeof *c);
  arena_init(&c->arena, ra_alloc_default());
  src_init(&c->src, &c->arena);
  diag_init(&c->diags, &c->arena, &c->src);
  return c;
}

static void ctx_free(Ctx *c) {
  arena_free(&c->arena);
  free(c);
}

/* Full check of a source text (path only names it). */
static Ctx *check_opt(const char *path, const char *text, const CompileOptions *opt) {
  Ctx *c = ctx_new();
  int f = src_add(&c->src, path, text, strlen(text));
  cr_assert_geq(f, 0);
  CompileOptions none = {.stdlib_dir = NULL};
  c->p = sema_program(&c->arena, &c->src, &c->diags, f, opt ? opt : &none);
  cr_assert_not_null(c->p);
  return c;
}

static Ctx *check(const char *text) { return check_opt("t.ra", text, NULL); }

/* Parse only: a Program holding the one file, for calling readers directly. */
static Ctx *parse_only(const char *text) {
  Ctx *c = ctx_new();
  int f = src_add(&c->src, "t.ra", text, strlen(text));
  AstFile *af = ra_parse(&c->arena, &c->src, f, &c->diags);
  cr_assert_not_null(af);
  cr_assert_eq(c->diags.nerrors, 0, "parse errors:\n%s", diag_render(&c->diags, 0));
  Program *p = arena_alloc(&c->arena, sizeof *p);
  p->arena = &c->arena;
  p->src = &c->src;
  p->diags = &c->diags;
  p->files = arena_alloc(&c->arena, sizeof(AstFile *));
  p->files[0] = af;
  p->nfiles = 1;
  c->p = p;
  return c;
}

static const char *rendered(Ctx *c) { return diag_render(&c->diags, 0); }

static void expect_clean(Ctx *c) {
  cr_assert_eq(c->diags.nerrors, 0, "unexpected errors:\n%s", rendered(c));
}

/* Exactly one error, containing msg, at line. */
static void expect_error(Ctx *c, int line, const char *msg) {
  const char *out = rendered(c);
  cr_assert_eq(c->diags.nerrors, 1, "want one error, got %d:\n%s", c->diags.nerrors, out);
  const Diag *g = c->diags.head;
  while (g && g->level != DIAG_ERROR) g = g->next;
  cr_assert_not_null(g);
  cr_assert(strstr(g->msg, msg) != NULL, "want '%s', got '%s'", msg, g->msg);
  cr_assert_eq(g->span.line, line, "'%s' at line %d, want %d", g->msg, g->span.line, line);
}

static bool has_note(Ctx *c, const char *msg, int line) {
  for (const Diag *g = c->diags.head; g; g = g->next)
    for (const Diag *n = g->notes; n; n = n->next)
      if (strstr(n->msg, msg) && (line < 0 || n->span.line == line)) return true;
  return false;
}

static int64_t const_value(Ctx *c, const char *name) {
  for (int i = 0; i < c->p->nconsts; i++)
    if (strcmp(c->p->consts[i].name, name) == 0) {
      cr_assert(!c->p->consts[i].failed, "const %s failed", name);
      return c->p->consts[i].value;
    }
  cr_assert_fail("no const %s", name);
  return 0;
}

/* ---- const evaluation ---- */

Test(consts, arithmetic) {
  Ctx *c = check("const a = 2 + 3 * 4\n"
                 "const b = (a - 4) / 2 % 3\n"
                 "const c = -a + 100\n"
                 "const d = -7 / 2\n"
                 "const e = -7 % 3\n");
  expect_clean(c);
  cr_assert_eq(const_value(c, "a"), 14);
  cr_assert_eq(const_value(c, "b"), 2);
  cr_assert_eq(const_value(c, "c"), 86);
  cr_assert_eq(const_value(c, "d"), -3);
  cr_assert_eq(const_value(c, "e"), -1);
  ctx_free(c);
}

Test(consts, defined_later) {
  Ctx *c = check("const a = b * 2\nconst b = c + 1\nconst c = 20\n");
  expect_clean(c);
  cr_assert_eq(const_value(c, "a"), 42);
  cr_assert_eq(const_value(c, "b"), 21);
  ctx_free(c);
}

Test(consts, cycle) {
  Ctx *c = check("const a = b + 1\nconst b = a * 2\nconst z = a + 1\n");
  expect_error(c, 2, "const 'a' depends on itself");
  cr_assert(has_note(c, "'a' uses 'b' here", 1), "%s", rendered(c));
  ctx_free(c);
}

Test(consts, self) {
  Ctx *c = check("const n = n + 1\n");
  expect_error(c, 1, "const 'n' depends on itself");
  ctx_free(c);
}

Test(consts, overflow) {
  Ctx *c = check("const big = 4611686018427387904\nconst x = big * 2\n");
  expect_error(c, 2, "integer overflow");
  ctx_free(c);
  c = check("const x = 9223372036854775807 + 1\n");
  expect_error(c, 1, "integer overflow");
  ctx_free(c);
  c = check("const m = -9223372036854775807 - 1\nconst x = m / -1\n");
  expect_error(c, 2, "integer overflow");
  ctx_free(c);
}

Test(consts, division_by_zero) {
  Ctx *c = check("const z = 0\nconst x = 10 / z\n");
  expect_error(c, 2, "division by zero");
  ctx_free(c);
  c = check("const x = 10 % (3 - 3)\n");
  expect_error(c, 1, "modulo by zero");
  ctx_free(c);
}

Test(consts, unknown_name) {
  Ctx *c = check("const dim = 64\nconst h = dimm / 2\n");
  expect_error(c, 2, "unknown name 'dimm'; did you mean 'dim'?");
  ctx_free(c);
}

Test(consts, float_is_not_integer) {
  Ctx *c = check("const a = 2.5\n");
  expect_error(c, 1, "expected an integer, found 2.5");
  ctx_free(c);
}

Test(consts, failed_const_reported_once) {
  Ctx *c = check("const a = 1 / 0\nconst b = a + 1\nconst c = b * a\n");
  expect_error(c, 1, "division by zero");
  ctx_free(c);
}

static AstExpr *num(Arena *a, double v, bool is_int) {
  AstExpr *e = arena_alloc(a, sizeof *e);
  e->kind = EX_NUM;
  e->num = v;
  e->is_int = is_int;
  e->ival = (int64_t)v;
  e->span = SPAN_NONE;
  return e;
}

static AstExpr *bin(Arena *a, char op, AstExpr *x, AstExpr *y) {
  AstExpr *e = arena_alloc(a, sizeof *e);
  e->kind = EX_BINARY;
  e->op = op;
  e->a = x;
  e->b = y;
  e->span = SPAN_NONE;
  return e;
}

static AstExpr *name(Arena *a, const char *s) {
  AstExpr *e = arena_alloc(a, sizeof *e);
  e->kind = EX_NAME;
  e->str = s;
  e->len = (uint32_t)strlen(s);
  e->span = SPAN_NONE;
  return e;
}

static bool scope_lookup(void *ud, const char *nm, int64_t *v) {
  (void)ud;
  if (strcmp(nm, "d") == 0) {
    *v = 5;
    return true;
  }
  return false;
}

Test(consts, eval_num_and_scope) {
  Ctx *c = check("const d = 64\nconst k = 3\n");
  expect_clean(c);
  Arena *a = &c->arena;
  double v;
  cr_assert_eq(sema_eval_num(c->p, bin(a, '*', num(a, 0.5, false), num(a, 3, true)), NULL, &v), 0);
  cr_assert_float_eq(v, 1.5, 1e-12);
  cr_assert_eq(sema_eval_num(c->p, bin(a, '/', num(a, 1, true), num(a, 1000, true)), NULL, &v), 0);
  cr_assert_float_eq(v, 1e-3, 1e-15);
  int64_t iv;
  /* the scope comes first, then the program's consts */
  ConstScope sc = {scope_lookup, NULL};
  cr_assert_eq(sema_eval_int(c->p, bin(a, '+', name(a, "d"), name(a, "k")), &sc, &iv), 0);
  cr_assert_eq(iv, 8);
  cr_assert_eq(sema_eval_int(c->p, bin(a, '+', name(a, "d"), name(a, "k")), NULL, &iv), 0);
  cr_assert_eq(iv, 67);
  /* a float where an integer is needed */
  cr_assert_eq(sema_eval_int(c->p, num(a, 2.5, false), NULL, &iv), -1);
  cr_assert_eq(c->diags.nerrors, 1);
  ctx_free(c);
}

/* ---- attention clauses ---- */

/* The clause block of the first call to fn in the first model. */
static const AstExpr *find_call(const AstExpr *e, const char *fn) {
  if (!e) return NULL;
  if (e->kind == EX_CALL && strcmp(e->str, fn) == 0) return e;
  const AstExpr *r;
  if ((r = find_call(e->a, fn)) || (r = find_call(e->b, fn))) return r;
  for (int i = 0; i < e->nargs; i++)
    if ((r = find_call(e->args[i], fn))) return r;
  return NULL;
}

static const AstExpr *model_call(Ctx *c, const char *fn) {
  const AstFile *f = c->p->files[0];
  for (int i = 0; i < f->nitems; i++) {
    const AstItem *it = f->items[i];
    if (it->kind != IT_MODEL) continue;
    for (int s = 0; s < it->nbody; s++) {
      const AstExpr *e = find_call(it->body[s]->expr, fn);
      if (e) return e;
    }
  }
  cr_assert_fail("no call to %s", fn);
  return NULL;
}

static Ctx *attn(const char *clauses, bool pool, AttnOptions *o, int *rc) {
  char buf[2048];
  snprintf(buf, sizeof buf,
           "const h = 4\nmodel m {\n  input x : f32[8, 16]\n  y = %s(x) {\n%s\n  }\n}\n",
           pool ? "attnpool" : "attention", clauses);
  Ctx *c = parse_only(buf);
  const AstExpr *call = model_call(c, pool ? "attnpool" : "attention");
  *rc = clauses_attention(c->p, call->clauses, call->span, pool, NULL, o);
  return c;
}

Test(attention, all_clauses) {
  AttnOptions o;
  int rc;
  Ctx *c = attn("heads 8 head_dim 16 causal dropout 0.1\n"
                "repulsion spos { alpha 0.5 stepsize 2 beta 0.01 every 3 bandwidth 0.7 "
                "kernel rbf group joint particles qkvo }",
                false, &o, &rc);
  cr_assert_eq(rc, 0, "%s", rendered(c));
  expect_clean(c);
  cr_assert_eq(o.heads, 8);
  cr_assert_eq(o.head_dim, 16);
  cr_assert(o.causal);
  cr_assert_float_eq(o.dropout, 0.1, 1e-12);
  cr_assert_eq(o.rep.kind, REP_SPOS);
  cr_assert_float_eq(o.rep.alpha, 0.5, 1e-12);
  cr_assert_float_eq(o.rep.stepsize, 2, 1e-12);
  cr_assert_float_eq(o.rep.beta, 0.01, 1e-12);
  cr_assert_eq(o.rep.every, 3);
  cr_assert(!o.rep.bw_median);
  cr_assert_float_eq(o.rep.bandwidth, 0.7, 1e-12);
  cr_assert_eq(o.rep.group, GROUP_JOINT);
  cr_assert_eq(o.rep.particles, (unsigned)(PART_Q | PART_K | PART_V | PART_O));
  ctx_free(c);
}

Test(attention, defaults_and_layout) {
  AttnOptions a, b;
  int rc;
  Ctx *c1 = attn("heads h\nrepulsion svgd", false, &a, &rc);
  cr_assert_eq(rc, 0, "%s", rendered(c1));
  Ctx *c2 = attn("heads h; repulsion svgd {\n alpha 1\n}", false, &b, &rc);
  cr_assert_eq(rc, 0, "%s", rendered(c2));
  cr_assert_eq(a.heads, 4);
  cr_assert_eq(a.head_dim, 0);
  cr_assert(!a.causal);
  cr_assert_eq(a.rep.kind, REP_SVGD);
  cr_assert_eq(a.rep.group, GROUP_EACH);
  cr_assert_eq(a.rep.particles, (unsigned)(PART_Q | PART_K | PART_V));
  cr_assert_eq(a.rep.every, 1);
  cr_assert(a.rep.bw_median);
  cr_assert_float_eq(a.rep.alpha, 1, 0);
  cr_assert_float_eq(a.rep.stepsize, 1, 0);
  cr_assert_float_eq(a.rep.beta, 1, 0);
  cr_assert_eq(b.heads, a.heads);
  cr_assert_eq(b.rep.kind, a.rep.kind);
  Repulsion r;
  repulsion_defaults(&r);
  cr_assert_eq(r.kind, REP_NONE);
  cr_assert_eq(r.particles, (unsigned)(PART_Q | PART_K | PART_V));
  ctx_free(c1);
  ctx_free(c2);
}

Test(attention, errors) {
  struct {
    const char *clauses;
    const char *msg;
  } cases[] = {
      {"hedas 4", "unknown clause 'hedas' in attention; did you mean 'heads'?"},
      {"heads 4 heads 8", "duplicate clause 'heads'"},
      {"causal", "attention needs a 'heads' clause"},
      {"heads 0", "heads must be at least 1"},
      {"heads 4 dropout 1.5", "dropout must be in [0, 1)"},
      {"heads \"four\"", "'heads' expects an integer, found a string"},
      {"heads 8 9", "expected a clause name, found 9"},
      {"heads 2.5", "'heads' expects an integer, found 2.5"},
      {"heads", "missing value after 'heads'"},
      {"heads 4 repulsion svdg", "did you mean 'svgd'?"},
      {"heads 4 repulsion svgd { stepsize 0 }", "stepsize must be greater than 0"},
      {"heads 4 repulsion svgd { every 0 }", "every must be at least 1"},
      {"heads 4 repulsion svgd { particles qx }", "'particles' expects letters"},
      {"heads 4 repulsion svgd { group both }", "'group' expects each or joint"},
      {"heads 4 repulsion svgd { bandwidth -1 }", "bandwidth must be greater than 0"},
      {"heads 4 repulsion svgd { kernel laplace }", "'kernel' expects rbf"},
      {"heads 4 repulsion spos { beta -1 }", "beta must be at least 0"},
      {"heads nope", "unknown name 'nope'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    AttnOptions o;
    int rc;
    Ctx *c = attn(cases[i].clauses, false, &o, &rc);
    cr_assert_eq(rc, -1, "'%s' accepted", cases[i].clauses);
    cr_assert_eq(c->diags.nerrors, 1, "'%s':\n%s", cases[i].clauses, rendered(c));
    cr_assert(strstr(c->diags.head->msg, cases[i].msg), "'%s': want '%s', got '%s'",
              cases[i].clauses, cases[i].msg, c->diags.head->msg);
    cr_assert_geq(c->diags.head->span.line, 4, "'%s' located at line %d", cases[i].clauses,
                  c->diags.head->span.line);
    ctx_free(c);
  }
}

Test(attention, duplicate_note_points_at_first) {
  AttnOptions o;
  int rc;
  Ctx *c = attn("heads 4\ncausal\nheads 8", false, &o, &rc);
  cr_assert_eq(rc, -1);
  expect_error(c, 7, "duplicate clause 'heads'");
  cr_assert(has_note(c, "first given here", 5), "%s", rendered(c));
  ctx_free(c);
}

Test(attention, missing_block) {
  Ctx *c = parse_only("model m {\n  input x : f32[8, 16]\n  y = attention(x)\n}\n");
  const AstExpr *call = model_call(c, "attention");
  AttnOptions o;
  cr_assert_eq(clauses_attention(c->p, NULL, call->span, false, NULL, &o), -1);
  expect_error(c, 3, "attention needs a 'heads' clause");
  ctx_free(c);
}

Test(attention, attnpool) {
  AttnOptions o;
  int rc;
  Ctx *c = attn("heads 6 hidden 32 penalty 0.1 repulsion svgd { alpha 0.1 }", true, &o, &rc);
  cr_assert_eq(rc, 0, "%s", rendered(c));
  cr_assert_eq(o.heads, 6);
  cr_assert_eq(o.hidden, 32);
  cr_assert_float_eq(o.penalty, 0.1, 1e-12);
  cr_assert_eq(o.rep.kind, REP_SVGD);
  ctx_free(c);
  c = attn("heads 6 repulsion svgd { particles qk }", true, &o, &rc);
  cr_assert_eq(rc, -1);
  expect_error(c, 5, "'particles' does not apply to attnpool");
  ctx_free(c);
  c = attn("heads 6 causal", true, &o, &rc);
  cr_assert_eq(rc, -1);
  expect_error(c, 5, "unknown clause 'causal' in attnpool");
  ctx_free(c);
  c = attn("heads 6 penalty -1", true, &o, &rc);
  expect_error(c, 5, "penalty must be at least 0");
  ctx_free(c);
}

Test(attention, beta_with_svgd_warns) {
  AttnOptions o;
  int rc;
  Ctx *c = attn("heads 2 repulsion svgd { beta 0.5 }", false, &o, &rc);
  cr_assert_eq(rc, 0);
  cr_assert_eq(c->diags.nerrors, 0);
  cr_assert_not_null(c->diags.head);
  cr_assert_eq(c->diags.head->level, DIAG_WARNING);
  cr_assert(strstr(c->diags.head->msg, "only applies to spos"));
  ctx_free(c);
}

/* ---- data ---- */

static int read_data(Ctx *c, DataDecl *d) {
  const AstFile *f = c->p->files[0];
  for (int i = 0; i < f->nitems; i++)
    if (f->items[i]->kind == IT_DATA) return clauses_data(c->p, f->items[i], "specs", d);
  cr_assert_fail("no data item");
  return -1;
}

Test(data, tsv_fields) {
  Ctx *c = parse_only("data lic = tsv(\"lic.tsv\") {\n"
                      "  text column 1 tokenize chars vocab 300 maxlen 48\n"
                      "  features columns 2..5 shape [2, 2]\n"
                      "  label column 0\n"
                      "  split train 0.7 valid 0.2 test 0.1; seed 7\n"
                      "}\n");
  DataDecl d;
  cr_assert_eq(read_data(c, &d), 0, "%s", rendered(c));
  cr_assert_str_eq(d.name, "lic");
  cr_assert_eq(d.loader, LOADER_TSV);
  cr_assert_str_eq(d.path, "lic.tsv");
  cr_assert_str_eq(d.spec_dir, "specs");
  cr_assert_eq(d.nfields, 3);
  cr_assert_eq(d.fields[0].role, FIELD_TEXT);
  cr_assert_eq(d.fields[0].column, 1);
  cr_assert_eq(d.fields[0].tokenize, TOK_CHARS);
  cr_assert_eq(d.fields[0].vocab, 300);
  cr_assert_eq(d.fields[0].maxlen, 48);
  cr_assert_eq(d.fields[0].shape.dtype, IR_I32);
  cr_assert_eq(d.fields[0].shape.rank, 1);
  cr_assert_eq(d.fields[0].shape.dim[0], 48);
  cr_assert_eq(d.fields[1].role, FIELD_FEATURES);
  cr_assert_eq(d.fields[1].col_lo, 2);
  cr_assert_eq(d.fields[1].col_hi, 5);
  cr_assert_eq(d.fields[1].shape.rank, 2);
  cr_assert_eq(d.fields[1].shape.dtype, IR_F32);
  cr_assert_eq(d.fields[2].role, FIELD_LABEL);
  cr_assert_eq(d.fields[2].column, 0);
  cr_assert(!d.header);
  cr_assert_float_eq(d.split[0], 0.7, 1e-12);
  cr_assert_float_eq(d.split[1], 0.2, 1e-12);
  cr_assert_float_eq(d.split[2], 0.1, 1e-12);
  cr_assert_eq(d.seed, 7);
  ctx_free(c);
}

Test(data, named_columns_turn_header_on) {
  Ctx *c = parse_only("data d = csv(\"x.csv\") {\n"
                      "  text column sentence maxlen 10\n"
                      "  label column \"class\"\n"
                      "}\n");
  DataDecl d;
  cr_assert_eq(read_data(c, &d), 0, "%s", rendered(c));
  cr_assert_eq(d.loader, LOADER_CSV);
  cr_assert(d.header);
  cr_assert_eq(d.fields[0].column, -1);
  cr_assert_str_eq(d.fields[0].column_name, "sentence");
  cr_assert_eq(d.fields[0].tokenize, TOK_WORDS);
  cr_assert_str_eq(d.fields[1].column_name, "class");
  /* default split */
  cr_assert_float_eq(d.split[0], 0.8, 1e-12);
  ctx_free(c);
}

Test(data, field_clauses_on_next_lines) {
  Ctx *c = parse_only("data d = tsv(\"x.tsv\") {\n"
                      "  text column 2\n"
                      "    maxlen 12\n"
                      "    tokenize chars; vocab 50\n"
                      "  label column 0\n"
                      "}\n");
  DataDecl d;
  cr_assert_eq(read_data(c, &d), 0, "%s", rendered(c));
  cr_assert_eq(d.nfields, 2);
  cr_assert_eq(d.fields[0].column, 2);
  cr_assert_eq(d.fields[0].maxlen, 12);
  cr_assert_eq(d.fields[0].tokenize, TOK_CHARS);
  cr_assert_eq(d.fields[0].vocab, 50);
  cr_assert_eq(d.fields[0].shape.dim[0], 12);
  ctx_free(c);
}

Test(data, text_and_synthetic) {
  Ctx *c = parse_only("data t = text(\"c.txt\") { tokenize words; window 32; vocab 500 }\n");
  DataDecl d;
  cr_assert_eq(read_data(c, &d), 0, "%s", rendered(c));
  cr_assert_eq(d.loader, LOADER_TEXT);
  cr_assert_eq(d.tokenize, TOK_WORDS);
  cr_assert_eq(d.window, 32);
  cr_assert_eq(d.vocab, 500);
  ctx_free(c);
  c = parse_only("data s = synthetic(task: recall, length: 10, vocab: 12) { seed 4 }\n");
  cr_assert_eq(read_data(c, &d), 0, "%s", rendered(c));
  cr_assert_eq(d.loader, LOADER_SYNTHETIC);
  cr_assert_eq(d.task, SYN_RECALL);
  cr_assert_eq(d.length, 10);
  cr_assert_eq(d.vocab, 12);
  cr_assert_eq(d.examples, 1000);
  cr_assert_eq(d.seed, 4);
  cr_assert_null(d.path);
  ctx_free(c);
}

Test(data, errors) {
  struct {
    const char *src;
    int line;
    const char *msg;
  } cases[] = {
      {"data d = tvs(\"a.tsv\") { }", 1, "unknown loader 'tvs'; did you mean 'tsv'?"},
      {"data d = tsv() {\n text column 0 maxlen 4\n}", 1, "tsv needs a path"},
      {"data d = tsv(3) {\n text column 0 maxlen 4\n}", 1, "the path of tsv must be a string"},
      {"data d = synthetic(task: copy, lenght: 4, vocab: 8) { }", 1,
       "unknown argument 'lenght' for synthetic; did you mean 'length'?"},
      {"data d = synthetic(task: sort, length: 4, vocab: 8) { }", 1, "'task' expects copy, reverse or recall, found 'sort'"},
      {"data d = synthetic(task: copy, vocab: 8) { }", 1, "synthetic needs 'length:'"},
      {"data d = synthetic(task: recall,\n length: 21, vocab: 12) { }", 2,
       "recall of length 21 holds 10 key/value pairs, which needs vocab at least 22; found 12"},
      {"data d = text(\"a.txt\") {\n tokenize chars\n}", 1, "text data needs 'window N'"},
      {"data d = tsv(\"a.tsv\") {\n text column 0 maxlen 4\n split train 0.8 valid 0.3\n}", 3,
       "add up to 1.1"},
      {"data d = tsv(\"a.tsv\") {\n text column 0 maxlen 4\n split train 1.5\n}", 3,
       "train must be in [0, 1]"},
      {"data d = tsv(\"a.tsv\") {\n text column 0\n}", 2, "a text field needs 'maxlen N'"},
      {"data d = tsv(\"a.tsv\") {\n text column -1 maxlen 3\n}", 2,
       "a column index must be at least 0"},
      {"data d = tsv(\"a.tsv\") {\n text column 0 maxlen 3 tokenize bytes\n}", 2,
       "'tokenize' expects chars or words"},
      {"data d = tsv(\"a.tsv\") {\n text column 0 maxlen 3\n label column 1\n vocab 30\n}", 4,
       "'vocab' belongs to a 'text' field, but the field before it is 'label'"},
      {"data d = tsv(\"a.tsv\") {\n maxlen 30\n text column 0 maxlen 3\n}", 2,
       "'maxlen' belongs to a 'text' field; write it after one"},
      {"data d = tsv(\"a.tsv\") {\n label column 0\n}", 1,
       "tsv data needs at least one 'text' or 'features' field"},
      {"data d = tsv(\"a.tsv\") {\n features columns 1..4 shape [3]\n}", 2,
       "shape holds 3 values but columns 1..4 are 4"},
      {"data d = tsv(\"a.tsv\") {\n text colum 0 maxlen 3\n}", 2,
       "unknown clause 'colum' in a text field; did you mean 'column'?"},
      {"data d = tsv(\"a.tsv\") {\n text column 0 maxlen 3\n seed 1 seed 2\n}", 3,
       "duplicate clause 'seed'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Ctx *c = parse_only(cases[i].src);
    DataDecl d;
    cr_assert_eq(read_data(c, &d), -1, "accepted: %s", cases[i].src);
    cr_assert_eq(c->diags.nerrors, 1, "%s\n%s", cases[i].src, rendered(c));
    cr_assert(strstr(c->diags.head->msg, cases[i].msg), "%s: want '%s', got '%s'", cases[i].src,
              cases[i].msg, c->diags.head->msg);
    cr_assert_eq(c->diags.head->span.line, cases[i].line, "%s: line %d", cases[i].msg,
                 c->diags.head->span.line);
    ctx_free(c);
  }
}

/* ---- train ---- */

static int read_train(Ctx *c, TrainDecl *t) {
  const AstFile *f = c->p->files[0];
  for (int i = 0; i < f->nitems; i++)
    if (f->items[i]->kind == IT_TRAIN) return clauses_train(c->p, f->items[i], t);
  cr_assert_fail("no train item");
  return -1;
}

Test(train, clauses) {
  Ctx *c = parse_only("train m on d {\n"
                      "  optimizer adamw { lr 3e-3  betas 0.8 0.99  eps 1e-6 }\n"
                      "  schedule warmup 100 cosine\n"
                      "  batch 32; steps 1500\n"
                      "  clip 1.0  seed 9\n"
                      "  eval valid every 500 steps\n"
                      "  metrics accuracy perplexity head_diversity\n"
                      "  save \"runs/m.safetensors\"\n"
                      "  log \"runs/m.jsonl\"\n"
                      "  threads 2\n"
                      "}\n");
  TrainDecl t;
  cr_assert_eq(read_train(c, &t), 0, "%s", rendered(c));
  cr_assert_str_eq(t.model, "m");
  cr_assert_str_eq(t.data, "d");
  cr_assert_eq(t.opt, OPT_ADAMW);
  cr_assert_float_eq(t.lr, 3e-3, 1e-15);
  cr_assert_float_eq(t.beta1, 0.8, 1e-12);
  cr_assert_float_eq(t.beta2, 0.99, 1e-12);
  cr_assert_float_eq(t.eps, 1e-6, 1e-18);
  cr_assert_float_eq(t.weight_decay, 0.01, 1e-12);
  cr_assert_eq(t.sched, SCHED_WARMUP_COSINE);
  cr_assert_eq(t.warmup, 100);
  cr_assert_eq(t.batch, 32);
  cr_assert_eq(t.steps, 1500);
  cr_assert_eq(t.epochs, 0);
  cr_assert_float_eq(t.clip, 1.0, 0);
  cr_assert_eq(t.seed, 9);
  cr_assert(t.eval_on);
  cr_assert_eq(t.eval_split, SPLIT_VALID);
  cr_assert_eq(t.eval_every_steps, 500);
  cr_assert_eq(t.metrics, (unsigned)(MET_ACCURACY | MET_PERPLEXITY | MET_HEAD_DIVERSITY));
  cr_assert_str_eq(t.save, "runs/m.safetensors");
  cr_assert_str_eq(t.log, "runs/m.jsonl");
  cr_assert_eq(t.threads, 2);
  ctx_free(c);
}

Test(train, defaults) {
  Ctx *c = parse_only("train m on d { optimizer sgd { momentum 0.9 }; batch 4; epochs 2 }\n");
  TrainDecl t;
  cr_assert_eq(read_train(c, &t), 0, "%s", rendered(c));
  cr_assert_eq(t.opt, OPT_SGD);
  cr_assert_float_eq(t.lr, 1e-3, 1e-15);
  cr_assert_float_eq(t.momentum, 0.9, 1e-12);
  cr_assert_float_eq(t.weight_decay, 0, 0);
  cr_assert_eq(t.sched, SCHED_CONSTANT);
  cr_assert_eq(t.epochs, 2);
  cr_assert_eq(t.seed, 1);
  cr_assert_eq(t.metrics, (unsigned)MET_LOSS);
  cr_assert(!t.eval_on);
  ctx_free(c);
  c = parse_only("train m on d { optimizer adam; batch 4; epochs 1; eval test every epoch }\n");
  cr_assert_eq(read_train(c, &t), 0, "%s", rendered(c));
  cr_assert_float_eq(t.beta1, 0.9, 1e-12);
  cr_assert_float_eq(t.beta2, 0.999, 1e-12);
  cr_assert_float_eq(t.eps, 1e-8, 1e-20);
  cr_assert_float_eq(t.weight_decay, 0, 0);
  cr_assert_eq(t.eval_split, SPLIT_TEST);
  cr_assert_eq(t.eval_every_steps, 0);
  ctx_free(c);
  c = parse_only("train m on d { optimizer adamw; batch 4; epochs 1 }\n");
  cr_assert_eq(read_train(c, &t), 0, "%s", rendered(c));
  cr_assert_float_eq(t.weight_decay, 0.01, 1e-12);
  ctx_free(c);
}

Test(train, errors) {
  struct {
    const char *src;
    int line;
    const char *msg;
  } cases[] = {
      {"train m on d {\n  batch 4\n  epochs 2\n  steps 10\n}", 4,
       "give either 'epochs' or 'steps', not both"},
      {"train m on d {\n  batch 4\n}", 1, "train needs 'epochs N' or 'steps N'"},
      {"train m on d {\n  epochs 4\n}", 1, "train needs 'batch N'"},
      {"train m on d {\n  batch 4; epochs 1\n  optimizer adma\n}", 3, "did you mean 'adam'?"},
      {"train m on d {\n  batch 4; epochs 1\n  optimizer adam { momentum 0.9 }\n}", 3,
       "'momentum' applies to sgd"},
      {"train m on d {\n  batch 4; epochs 1\n  optimizer sgd { lr 0 }\n}", 3,
       "lr must be greater than 0"},
      {"train m on d {\n  batch 4; epochs 1\n  metrics accuracy precision\n}", 3,
       "'metrics' expects accuracy, loss, perplexity, head_diversity or effective_heads, found 'precision'"},
      {"train m on d {\n  batch 4; epochs 1\n  save runs\n}", 3, "'save' expects a string"},
      {"train m on d {\n  batch 4; epochs 1\n  eval dev\n}", 3, "'eval' expects train, valid or test"},
      {"train m on d {\n  batch 0; epochs 1\n}", 2, "batch must be at least 1"},
      {"train m on d {\n  bacth 4; epochs 1\n}", 2, "unknown clause 'bacth' in train; did you mean 'batch'?"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Ctx *c = parse_only(cases[i].src);
    TrainDecl t;
    int rc = read_train(c, &t);
    cr_assert_eq(rc, -1, "accepted: %s", cases[i].src);
    cr_assert_geq(c->diags.nerrors, 1, "%s", cases[i].src);
    cr_assert(strstr(c->diags.head->msg, cases[i].msg), "%s: want '%s', got '%s'", cases[i].src,
              cases[i].msg, c->diags.head->msg);
    cr_assert_eq(c->diags.head->span.line, cases[i].line, "%s: line %d", cases[i].msg,
                 c->diags.head->span.line);
    ctx_free(c);
  }
}

/* ---- use ---- */

static char tmpdir[256];

static void mkfile(const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
  for (char *s = path + strlen(tmpdir) + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      mkdir(path, 0755);
      *s = '/';
    }
  cr_assert_eq(tu_write_file(path, text), 0, "cannot write %s", path);
}

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ra_sema_XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  (void)!system(cmd);
}

static Ctx *check_file(const char *rel, const CompileOptions *opt) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
  char *text = tu_read_file(path, NULL);
  cr_assert_not_null(text);
  Ctx *c = check_opt(path, text, opt);
  free(text);
  return c;
}

Test(use, search_order) {
  make_tmpdir();
  mkfile("lib/std/m.ra", "const where = 1\n");
  mkfile("proj/std/m.ra", "const where = 2\n");
  mkfile("extra/std/m.ra", "const where = 3\n");
  mkfile("extra/only.ra", "const only = 4\n");
  mkfile("proj/main.ra", "use \"std/m\"\nuse \"only\"\nconst x = where * 10 + only\n");
  char lib[300], extra[300], path[700];
  snprintf(lib, sizeof lib, "%s/lib", tmpdir);
  snprintf(extra, sizeof extra, "%s/extra", tmpdir);
  snprintf(path, sizeof path, "/nonexistent:%s", extra);
  CompileOptions opt = {.stdlib_dir = lib, .ra_path = path};
  Ctx *c = check_file("proj/main.ra", &opt);
  expect_clean(c);
  cr_assert_eq(const_value(c, "x"), 14, "the stdlib folder comes first");
  cr_assert_eq(c->p->nfiles, 3);
  ctx_free(c);
  /* without the stdlib copy: the file's own folder */
  char rm[600];
  snprintf(rm, sizeof rm, "%s/lib/std/m.ra", tmpdir);
  unlink(rm);
  c = check_file("proj/main.ra", &opt);
  expect_clean(c);
  cr_assert_eq(const_value(c, "x"), 24);
  ctx_free(c);
  /* then RA_PATH */
  snprintf(rm, sizeof rm, "%s/proj/std/m.ra", tmpdir);
  unlink(rm);
  c = check_file("proj/main.ra", &opt);
  expect_clean(c);
  cr_assert_eq(const_value(c, "x"), 34);
  ctx_free(c);
  remove_tree(tmpdir);
}

Test(use, loaded_once) {
  make_tmpdir();
  mkfile("a.ra", "const a = 1\n");
  mkfile("b.ra", "use \"a\"\nconst b = a + 1\n");
  mkfile("main.ra", "use \"a\"\nuse \"b\"\nuse \"a.ra\"\nconst c = a + b\n");
  Ctx *c = check_file("main.ra", NULL);
  expect_clean(c);
  cr_assert_eq(c->p->nfiles, 3);
  cr_assert_eq(const_value(c, "c"), 3);
  ctx_free(c);
  remove_tree(tmpdir);
}

Test(use, cycle) {
  make_tmpdir();
  mkfile("a.ra", "use \"b\"\nconst a = 1\n");
  mkfile("b.ra", "const b = 2\nuse \"c\"\n");
  mkfile("c.ra", "use \"a\"\n");
  Ctx *c = check_file("a.ra", NULL);
  const char *out = rendered(c);
  cr_assert_eq(c->diags.nerrors, 1, "%s", out);
  cr_assert(strstr(out, "use cycle: "), "%s", out);
  cr_assert(strstr(out, "a.ra -> "), "%s", out);
  cr_assert(strstr(out, "c.ra:1:5: error"), "%s", out);
  cr_assert(has_note(c, "b.ra is used here", 1), "%s", out);
  cr_assert(has_note(c, "c.ra is used here", 2), "%s", out);
  ctx_free(c);
  remove_tree(tmpdir);
}

Test(use, missing_module) {
  make_tmpdir();
  mkfile("main.ra", "const a = 1\nuse \"std/encodr\"\n");
  CompileOptions opt = {.stdlib_dir = "/nonexistent/stdlib"};
  Ctx *c = check_file("main.ra", &opt);
  expect_error(c, 2, "cannot find module \"std/encodr\"");
  cr_assert(has_note(c, "looked for /nonexistent/stdlib/std/encodr.ra", -1), "%s", rendered(c));
  cr_assert(has_note(c, "/main.ra", -1) == false);
  cr_assert(strstr(rendered(c), "std/encodr.ra"));
  ctx_free(c);
  remove_tree(tmpdir);
}

Test(use, duplicate_across_files) {
  make_tmpdir();
  mkfile("m.ra", "const width = 3\n");
  mkfile("main.ra", "use \"m\"\nmodel width {\n  input x : f32[4]\n}\n");
  Ctx *c = check_file("main.ra", NULL);
  const char *out = rendered(c);
  /* the main file's items come first, then the modules' */
  cr_assert(strstr(out, "m.ra:1:7: error: 'width' is already defined as a model"), "%s", out);
  cr_assert(has_note(c, "first defined here", 2), "%s", out);
  ctx_free(c);
  remove_tree(tmpdir);
}

/* ---- externs ---- */

Test(extern_fn, forms) {
  Ctx *c = check("extern fn swish(x: f32) -> f32 from \"./libops.so\" grad swish_grad\n"
                 "extern fn swish_grad(x: f32) -> f32 from \"./libops.so\"\n"
                 "extern fn fill(x: f32[], n: int) from host\n");
  expect_clean(c);
  cr_assert_eq(c->p->nexterns, 3);
  cr_assert_str_eq(c->p->externs[0].name, "swish");
  cr_assert_str_eq(c->p->externs[0].lib, "./libops.so");
  cr_assert_str_eq(c->p->externs[0].grad, "swish_grad");
  cr_assert(!c->p->externs[0].array_form);
  cr_assert(c->p->externs[2].array_form);
  cr_assert_null(c->p->externs[2].lib);
  ctx_free(c);
}

Test(extern_fn, errors) {
  Ctx *c = check("extern fn f(x: f32, y: f32) -> f32 from host\n");
  expect_error(c, 1, "extern 'f' has an unsupported signature");
  cr_assert(has_note(c, "(x: f32) -> f32", 1));
  ctx_free(c);
  c = check("extern fn f(x: f32[], n: int) -> f32 from host\n");
  expect_error(c, 1, "unsupported signature");
  ctx_free(c);
  c = check("extern fn f(x: f32) -> f32 from host grad f_grd\n"
            "extern fn f_grad(x: f32) -> f32 from host\n");
  expect_error(c, 1, "unknown extern function 'f_grd'; did you mean 'f_grad'?");
  ctx_free(c);
  c = check("extern fn f(x: f32) -> f32 from host grad g\n"
            "extern fn g(x: f32[], n: int) from host\n");
  expect_error(c, 1, "grad 'g' must have the same form as 'f' (scalar)");
  cr_assert(has_note(c, "array form", 2));
  ctx_free(c);
  c = check("extern fn f(x: f32) -> f32 from host grad f\n");
  expect_error(c, 1, "must be another extern function");
  ctx_free(c);
}

/* ---- train against model and data ---- */

static const char *MODEL =
    "model clf {\n"
    "  input  tokens : int[48]\n"
    "  target label  : class(4)\n"
    "  x = embed(tokens, vocab: 100, dim: 16)\n"
    "  logits = linear(mean(x), out: 4)\n"
    "  loss cross_entropy(logits, label)\n"
    "}\n";

static Ctx *with_model(const char *rest) {
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s%s", MODEL, rest);
  return check(buf);
}

Test(binding, good) {
  Ctx *c = with_model("data lic = tsv(\"x.tsv\") {\n"
                      "  text column 1 maxlen 48\n"
                      "  label column 0\n"
                      "}\n"
                      "train clf on lic { batch 8; epochs 1 }\n");
  expect_clean(c);
  cr_assert_eq(c->p->ntrains, 1);
  cr_assert_eq(c->p->ndata, 1);
  cr_assert_eq(c->p->nmodels, 1);
  cr_assert_not_null(sema_find_model(c->p, "clf"));
  cr_assert_null(sema_find_model(c->p, "lic"));
  ctx_free(c);
}

Test(binding, shape_mismatch) {
  Ctx *c = with_model("data lic = tsv(\"x.tsv\") {\n"
                      "  text column 1 maxlen 64\n"
                      "  label column 0\n"
                      "}\n"
                      "train clf on lic { batch 8; epochs 1 }\n");
  expect_error(c, 12, "data 'lic' gives int[64] for input 'tokens' : int[48]");
  cr_assert(has_note(c, "'tokens' is declared here", 2), "%s", rendered(c));
  ctx_free(c);
}

Test(binding, count_and_target) {
  Ctx *c = with_model("data s = synthetic(task: copy, length: 48, vocab: 10) { }\n"
                      "train clf on s { batch 8; epochs 1 }\n");
  expect_error(c, 9, "data 's' gives int[48] for target 'label' : class(4)");
  ctx_free(c);
  c = with_model("data d = tsv(\"x.tsv\") {\n"
                 "  text column 1 maxlen 48\n"
                 "  text column 2 maxlen 48\n"
                 "  label column 0\n"
                 "}\n"
                 "train clf on d { batch 8; epochs 1 }\n");
  expect_error(c, 13, "data 'd' gives 2 inputs but model 'clf' takes 1");
  ctx_free(c);
  c = with_model("data d = tsv(\"x.tsv\") {\n"
                 "  text column 1 maxlen 48\n"
                 "}\n"
                 "train clf on d { batch 8; epochs 1 }\n");
  expect_error(c, 11, "data 'd' gives no target for target 'label'");
  ctx_free(c);
}

Test(binding, unknown_names) {
  Ctx *c = with_model("data lic = tsv(\"x.tsv\") { text column 1 maxlen 48; label column 0 }\n"
                      "train clff on lic { batch 8; epochs 1 }\n");
  expect_error(c, 9, "unknown model 'clff'; did you mean 'clf'?");
  ctx_free(c);
  c = with_model("data lic = tsv(\"x.tsv\") { text column 1 maxlen 48; label column 0 }\n"
                 "train clf on lc { batch 8; epochs 1 }\n");
  expect_error(c, 9, "unknown data set 'lc'; did you mean 'lic'?");
  ctx_free(c);
  c = with_model("data lic = tsv(\"x.tsv\") { text column 1 maxlen 48; label column 0 }\n"
                 "train lic on clf { batch 8; epochs 1 }\n");
  const char *out = rendered(c);
  cr_assert_eq(c->diags.nerrors, 2, "%s", out);
  cr_assert(strstr(out, "'lic' is a data set, not a model"), "%s", out);
  cr_assert(strstr(out, "'clf' is a model, not a data set"), "%s", out);
  ctx_free(c);
}

/* ---- --set ---- */

Test(train_set, values) {
  Ctx *c = with_model("data lic = tsv(\"x.tsv\") { text column 1 maxlen 48; label column 0 }\n"
                      "train clf on lic { optimizer adam; batch 8; epochs 3 }\n");
  expect_clean(c);
  TrainDecl *t = &c->p->trains[0];
  char err[256];
  cr_assert_eq(sema_train_set(c->p, t, "steps", "100", err, sizeof err), 0, "%s", err);
  cr_assert_eq(t->steps, 100);
  cr_assert_eq(t->epochs, 0);
  cr_assert_eq(sema_train_set(c->p, t, "epochs", "2", err, sizeof err), 0);
  cr_assert_eq(t->epochs, 2);
  cr_assert_eq(t->steps, 0);
  cr_assert_eq(sema_train_set(c->p, t, "lr", "3e-4", err, sizeof err), 0);
  cr_assert_float_eq(t->lr, 3e-4, 1e-16);
  cr_assert_eq(sema_train_set(c->p, t, "batch", "16", err, sizeof err), 0);
  cr_assert_eq(t->batch, 16);
  cr_assert_eq(sema_train_set(c->p, t, "clip", "0.5", err, sizeof err), 0);
  cr_assert_eq(sema_train_set(c->p, t, "seed", "42", err, sizeof err), 0);
  cr_assert_eq(t->seed, 42);
  cr_assert_eq(sema_train_set(c->p, t, "threads", "2", err, sizeof err), 0);
  cr_assert_eq(sema_train_set(c->p, t, "warmup", "10", err, sizeof err), 0);
  cr_assert_eq(t->warmup, 10);
  cr_assert_eq(t->sched, SCHED_WARMUP_CONSTANT);
  cr_assert_eq(sema_train_set(c->p, t, "weight_decay", "0.1", err, sizeof err), 0);
  cr_assert_eq(sema_train_set(c->p, t, "save", "out.safetensors", err, sizeof err), 0);
  cr_assert_str_eq(t->save, "out.safetensors");
  cr_assert_eq(sema_train_set(c->p, t, "eval", "test every 50 steps", err, sizeof err), 0, "%s", err);
  cr_assert(t->eval_on);
  cr_assert_eq(t->eval_split, SPLIT_TEST);
  cr_assert_eq(t->eval_every_steps, 50);
  cr_assert_eq(sema_train_set(c->p, t, "eval", "off", err, sizeof err), 0);
  cr_assert(!t->eval_on);
  cr_assert_eq(sema_train_set(c->p, t, "repulsion", "spos", err, sizeof err), 0);
  cr_assert(t->has_repulsion_override);
  cr_assert_eq(t->repulsion_override, REP_SPOS);
  cr_assert_eq(sema_train_set(c->p, t, "metrics", "loss,accuracy", err, sizeof err), 0);
  cr_assert_eq(t->metrics, (unsigned)(MET_LOSS | MET_ACCURACY));
  ctx_free(c);
}

Test(train_set, errors) {
  Ctx *c = with_model("data lic = tsv(\"x.tsv\") { text column 1 maxlen 48; label column 0 }\n"
                      "train clf on lic { optimizer adam; batch 8; epochs 3 }\n");
  TrainDecl *t = &c->p->trains[0];
  TrainDecl before = *t;
  char err[256];
  struct {
    const char *k, *v, *msg;
  } cases[] = {
      {"epoch", "3", "unknown setting 'epoch'; did you mean 'epochs'?"},
      {"epochs", "three", "'epochs' expects an integer, found 'three'"},
      {"epochs", "0", "epochs must be at least 1, found 0"},
      {"batch", "8x", "'batch' expects an integer, found '8x'"},
      {"lr", "-1", "lr must be greater than 0, found -1"},
      {"lr", "fast", "'lr' expects a number, found 'fast'"},
      {"lr", "nan", "'lr' expects a number, found 'nan'"},
      {"lr", "inf", "'lr' expects a number, found 'inf'"},
      {"lr", "1e999", "'lr' expects a number, found '1e999'"},
      {"lr", "0", "lr must be greater than 0"},
      {"clip", "inf", "'clip' expects a number, found 'inf'"},
      {"weight_decay", "Infinity", "'weight_decay' expects a number, found 'Infinity'"},
      {"weight_decay", "-0.1", "weight_decay must be at least 0"},
      {"eps", "-inf", "'eps' expects a number, found '-inf'"},
      {"momentum", "0.9", "'momentum' applies to sgd, not adam"},
      {"clip", "-2", "clip must be at least 0"},
      {"eval", "dev", "'eval' expects train, valid, test or off (then 'every epoch' or 'every N steps'), found 'dev'"},
      {"repulsion", "magic", "'repulsion' expects none, svgd, spos or penalty, found 'magic'"},
      {"metrics", "acuracy", "did you mean 'accuracy'?"},
      {"optimizer", "rmsprop", "'optimizer' expects sgd, adam or adamw, found 'rmsprop'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_eq(sema_train_set(c->p, t, cases[i].k, cases[i].v, err, sizeof err), -1,
                 "%s=%s accepted", cases[i].k, cases[i].v);
    cr_assert(strstr(err, cases[i].msg), "%s=%s: want '%s', got '%s'", cases[i].k, cases[i].v,
              cases[i].msg, err);
  }
  cr_assert_eq(memcmp(&before, t, sizeof before), 0, "a failed --set changed the train block");
  ctx_free(c);
}
