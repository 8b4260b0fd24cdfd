/* test_parser.c - the lemon grammar and the AST: every item and statement
 * form, clause word lists, precedence, golden AST dumps, syntax errors with
 * exact messages and places, and hostile inputs (deep nesting, huge tokens,
 * NUL bytes, invalid UTF-8, failing allocations) that must end in located
 * errors, never a crash. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <string.h>

#include "../lang/ast.h"
#include "testutil.h"

typedef struct Parsed {
  Arena a;
  SrcSet s;
  DiagList d;
  AstFile *f;
  const char *diags;
} Parsed;

static Parsed *parse_n(const char *path, const char *text, size_t len) {
  Parsed *p = calloc(1, sizeof *p);
  cr_assert_not_null(p);
  arena_init(&p->a, ra_alloc_default());
  src_init(&p->s, &p->a);
  diag_init(&p->d, &p->a, &p->s);
  int id = src_add(&p->s, path, text, len);
  cr_assert_geq(id, 0);
  p->f = ra_parse(&p->a, &p->s, id, &p->d);
  p->diags = diag_render(&p->d, 0);
  return p;
}

static Parsed *parse(const char *text) { return parse_n("p.ra", text, strlen(text)); }

static void parsed_free(Parsed *p) {
  arena_free(&p->a);
  free(p);
}

static void no_errors(const Parsed *p) {
  cr_assert_eq(p->d.nerrors, 0, "unexpected errors:\n%s", p->diags);
  cr_assert_not_null(p->f);
}

static void has_error(const Parsed *p, const char *want) {
  cr_assert(strstr(p->diags, want) != NULL, "missing diagnostic\n  %s\ngot:\n%s", want,
            p->diags);
}

static const AstItem *item(const Parsed *p, int i) {
  cr_assert_not_null(p->f);
  cr_assert(i < p->f->nitems, "item %d of %d", i, p->f->nitems);
  return p->f->items[i];
}

/* ---- items ---- */

Test(parser, use_and_const) {
  Parsed *p = parse("use \"std/encoder\"\nconst d = 64\nconst h = 4 * d");
  no_errors(p);
  cr_assert_eq(p->f->nitems, 3);
  const AstItem *u = item(p, 0);
  cr_assert_eq(u->kind, IT_USE);
  cr_assert_str_eq(u->path, "std/encoder");
  cr_assert_eq(u->path_span.col, 5);
  const AstItem *c = item(p, 1);
  cr_assert_eq(c->kind, IT_CONST);
  cr_assert_str_eq(c->name, "d");
  cr_assert_eq(c->name_span.col, 7);
  cr_assert_eq(c->expr->kind, EX_NUM);
  cr_assert_eq(c->expr->ival, 64);
  cr_assert_eq(c->span.line, 2);
  cr_assert_eq(c->span.len, 12);
  cr_assert_eq(item(p, 2)->expr->kind, EX_BINARY);
  cr_assert_eq(item(p, 2)->expr->op, '*');
  parsed_free(p);
}

Test(parser, data_with_and_without_clauses) {
  Parsed *p = parse("data a = tsv(\"f.tsv\") {\n  text column 1\n  seed 7\n}\n"
                    "data b = synthetic(task: copy, length: 12)\n");
  no_errors(p);
  const AstItem *a = item(p, 0);
  cr_assert_eq(a->kind, IT_DATA);
  cr_assert_str_eq(a->name, "a");
  cr_assert_eq(a->expr->kind, EX_CALL);
  cr_assert_str_eq(a->expr->str, "tsv");
  cr_assert_eq(a->expr->nargs, 1);
  cr_assert_str_eq(a->expr->args[0]->str, "f.tsv");
  cr_assert_not_null(a->clauses);
  cr_assert_eq(a->clauses, a->expr->clauses);
  cr_assert_eq(a->clauses->n, 6);  /* text column 1 SEP seed 7 */
  const AstItem *b = item(p, 1);
  cr_assert_null(b->clauses);
  cr_assert_eq(b->expr->nkwargs, 2);
  cr_assert_str_eq(b->expr->kwargs[0].name, "task");
  cr_assert_eq(b->expr->kwargs[0].value->kind, EX_NAME);
  cr_assert_str_eq(b->expr->kwargs[1].name, "length");
  cr_assert_eq(b->expr->kwargs[1].value->ival, 12);
  cr_assert_eq(b->expr->kwargs[1].name_span.col, 32);
  parsed_free(p);
}

Test(parser, block_params_and_body) {
  Parsed *p = parse("block enc(x, y, heads: 4, mult: 2,) {\n  a = x + y\n  return a\n}");
  no_errors(p);
  const AstItem *b = item(p, 0);
  cr_assert_eq(b->kind, IT_BLOCK);
  cr_assert_str_eq(b->name, "enc");
  cr_assert_eq(b->nparams, 4);
  cr_assert_str_eq(b->params[0].name, "x");
  cr_assert_null(b->params[0].def);
  cr_assert_str_eq(b->params[2].name, "heads");
  cr_assert_eq(b->params[2].def->ival, 4);
  cr_assert_eq(b->nbody, 2);
  cr_assert_eq(b->body[1]->kind, ST_RETURN);
  cr_assert_eq(b->body_span.line, 1);
  cr_assert_eq(b->body_span.col, 37);
  cr_assert_eq(b->span.line, 1);
  cr_assert_eq(b->span.len, strlen("block enc(x, y, heads: 4, mult: 2,) {\n  a = x + y\n  return a\n}"));
  parsed_free(p);
}

Test(parser, model_and_train) {
  Parsed *p = parse("model m { loss x }\ntrain m on d { batch 32; epochs 2 }\n");
  no_errors(p);
  const AstItem *m = item(p, 0);
  cr_assert_eq(m->kind, IT_MODEL);
  cr_assert_eq(m->nbody, 1);
  cr_assert_eq(m->body[0]->kind, ST_LOSS);
  const AstItem *t = item(p, 1);
  cr_assert_eq(t->kind, IT_TRAIN);
  cr_assert_str_eq(t->name, "m");
  cr_assert_str_eq(t->on, "d");
  cr_assert_eq(t->on_span.col, 12);
  cr_assert_eq(t->clauses->n, 5);
  cr_assert_eq(t->clauses->w[2].kind, W_SEP);
  parsed_free(p);
}

Test(parser, extern_forms) {
  Parsed *p = parse("extern fn swish(x: f32) -> f32 from \"./lib.so\" grad swish_grad\n"
                    "extern fn f(x: f32[], n: int) from host\n"
                    "extern fn g() from \"g.so\"\n");
  no_errors(p);
  const AstItem *a = item(p, 0);
  cr_assert_eq(a->kind, IT_EXTERN);
  cr_assert_str_eq(a->name, "swish");
  cr_assert_eq(a->nparams, 1);
  cr_assert_eq(a->params[0].type->base, TY_F32);
  cr_assert_eq(a->ret->base, TY_F32);
  cr_assert_str_eq(a->path, "./lib.so");
  cr_assert(!a->from_host);
  cr_assert_str_eq(a->grad, "swish_grad");
  cr_assert_eq(a->grad_span.col, 53);
  const AstItem *b = item(p, 1);
  cr_assert(b->from_host);
  cr_assert_null(b->path);
  cr_assert_null(b->ret);
  cr_assert_null(b->grad);
  cr_assert(b->params[0].type->unsized);
  cr_assert(b->params[0].type->has_dims);
  cr_assert_eq(b->params[0].type->ndims, 0);
  cr_assert_eq(b->params[1].type->base, TY_INT);
  cr_assert_eq(item(p, 2)->nparams, 0);
  parsed_free(p);
}

/* ---- statements ---- */

Test(parser, statement_forms) {
  Parsed *p = parse("model m {\n"
                    "  input  tokens : int[48]\n"
                    "  target label  : class(8)\n"
                    "  x = embed(tokens, vocab: 100, dim: 8)\n"
                    "  repeat 2 { x = x + 1; y = x }\n"
                    "  loss cross_entropy(x, label)\n"
                    "  output probs = softmax(x)\n"
                    "  ;;\n\n"
                    "}\n");
  no_errors(p);
  const AstItem *m = item(p, 0);
  cr_assert_eq(m->nbody, 6);
  AstStmt *const *s = m->body;
  cr_assert_eq(s[0]->kind, ST_INPUT);
  cr_assert_str_eq(s[0]->name, "tokens");
  cr_assert_eq(s[0]->type->base, TY_INT);
  cr_assert_eq(s[0]->type->ndims, 1);
  cr_assert_eq(s[0]->type->dims[0]->ival, 48);
  cr_assert_eq(s[1]->kind, ST_TARGET);
  cr_assert_eq(s[1]->type->base, TY_CLASS);
  cr_assert_eq(s[1]->type->classes->ival, 8);
  cr_assert(!s[1]->type->has_dims);
  cr_assert_eq(s[2]->kind, ST_BIND);
  cr_assert_str_eq(s[2]->name, "x");
  cr_assert_eq(s[3]->kind, ST_REPEAT);
  cr_assert_eq(s[3]->expr->ival, 2);
  cr_assert_eq(s[3]->nbody, 2);
  cr_assert_eq(s[3]->body[1]->kind, ST_BIND);
  cr_assert_str_eq(s[3]->body[1]->name, "y");
  cr_assert_eq(s[3]->body_span.col, 12);
  cr_assert_eq(s[4]->kind, ST_LOSS);
  cr_assert_eq(s[4]->expr->kind, EX_CALL);
  cr_assert_eq(s[5]->kind, ST_OUTPUT);
  cr_assert_str_eq(s[5]->name, "probs");
  cr_assert_eq(s[5]->name_span.col, 10);
  cr_assert_eq(s[5]->span.line, 7);
  cr_assert_eq(s[5]->span.col, 3);
  parsed_free(p);
}

Test(parser, types) {
  Parsed *p = parse("model m {\n input a : f32[8, 8]\n input b : class(128)[T]\n"
                    " input c : int\n input d : f32[n * 2,]\n}");
  no_errors(p);
  AstStmt *const *s = item(p, 0)->body;
  cr_assert_eq(s[0]->type->ndims, 2);
  cr_assert_eq(s[0]->type->span.col, 12);
  cr_assert_eq(s[0]->type->span.len, 9);
  cr_assert_eq(s[1]->type->base, TY_CLASS);
  cr_assert_eq(s[1]->type->classes->ival, 128);
  cr_assert_eq(s[1]->type->ndims, 1);
  cr_assert_str_eq(s[1]->type->dims[0]->str, "T");
  cr_assert(!s[2]->type->has_dims);
  cr_assert_eq(s[3]->type->dims[0]->kind, EX_BINARY);
  parsed_free(p);
}

Test(parser, type_errors) {
  Parsed *p = parse("model m {\n input a : f33[2]\n input b : class\n input c : int(3)\n"
                    " input d : vector\n}");
  has_error(p, "p.ra:2:12: error: unknown type 'f33'; did you mean 'f32'?\n");
  has_error(p, "p.ra:3:12: error: 'class' needs the number of classes, as in class(8)\n");
  has_error(p, "p.ra:4:16: error: only 'class' takes a count in parentheses\n");
  has_error(p, "p.ra:5:12: error: unknown type 'vector' (expected f32, int or class(K))\n");
  cr_assert_eq(p->d.nerrors, 4);
  parsed_free(p);
}

/* ---- expressions ---- */

Test(parser, precedence) {
  Parsed *p = parse("const a = x + y * -z @ w - v % 2\nconst b = -f(x)\nconst c = (a + b) * c\n"
                    "const d = a - b - c\n");
  no_errors(p);
  const AstExpr *e = item(p, 0)->expr;
  /* ((x + ((y * (-z)) @ w)) - (v % 2)) */
  cr_assert_eq(e->op, '-');
  cr_assert_eq(e->b->op, '%');
  cr_assert_eq(e->a->op, '+');
  cr_assert_str_eq(e->a->a->str, "x");
  const AstExpr *m = e->a->b;
  cr_assert_eq(m->op, '@');
  cr_assert_eq(m->a->op, '*');
  cr_assert_eq(m->a->b->kind, EX_NEG);
  cr_assert_str_eq(m->a->b->a->str, "z");
  cr_assert_eq(e->depth, 6);
  const AstExpr *b = item(p, 1)->expr;
  cr_assert_eq(b->kind, EX_NEG);
  cr_assert_eq(b->a->kind, EX_CALL);
  const AstExpr *c = item(p, 2)->expr;
  cr_assert_eq(c->op, '*');
  cr_assert_eq(c->a->op, '+');
  cr_assert_eq(c->a->span.col, 11);  /* the parenthesised span includes '(' */
  cr_assert_eq(c->a->span.len, 7);
  const AstExpr *d = item(p, 3)->expr;  /* left associative */
  cr_assert_eq(d->a->op, '-');
  cr_assert_str_eq(d->b->str, "c");
  parsed_free(p);
}

Test(parser, calls_lists_and_trailing_blocks) {
  Parsed *p = parse("model m {\n"
                    "  a = attention(layernorm(x), kv,) { heads 8 }\n"
                    "  b = f()\n"
                    "  c = [1, [2, 3], 4..8, \"s\",]\n"
                    "  d = g(x,\n        key: [],\n        other: 1)\n"
                    "}");
  no_errors(p);
  AstStmt *const *s = item(p, 0)->body;
  const AstExpr *a = s[0]->expr;
  cr_assert_eq(a->kind, EX_CALL);
  cr_assert_str_eq(a->str, "attention");
  cr_assert_eq(a->name_span.col, 7);
  cr_assert_eq(a->nargs, 2);
  cr_assert_str_eq(a->args[0]->str, "layernorm");
  cr_assert_not_null(a->clauses);
  cr_assert_eq(a->clauses->n, 2);
  cr_assert_eq(a->span.len, strlen("attention(layernorm(x), kv,) { heads 8 }"));
  cr_assert_eq(s[1]->expr->nargs, 0);
  cr_assert_null(s[1]->expr->clauses);
  const AstExpr *c = s[2]->expr;
  cr_assert_eq(c->kind, EX_LIST);
  cr_assert_eq(c->nargs, 4);
  cr_assert_eq(c->args[1]->kind, EX_LIST);
  cr_assert_eq(c->args[2]->kind, EX_RANGE);
  cr_assert_eq(c->args[2]->a->ival, 4);
  cr_assert_eq(c->args[2]->b->ival, 8);
  const AstExpr *d = s[3]->expr;
  cr_assert_eq(d->nkwargs, 2);
  cr_assert_eq(d->kwargs[0].value->kind, EX_LIST);
  cr_assert_eq(d->kwargs[0].value->nargs, 0);
  cr_assert_eq(d->kwargs[1].name_span.line, 7);
  parsed_free(p);
}

Test(parser, argument_errors) {
  Parsed *p = parse("const a = f(x: 1, y)\nconst b = g(k: 1, k: 2)\n");
  has_error(p, "p.ra:1:19: error: positional argument after keyword argument 'x'\n");
  has_error(p, "p.ra:2:19: error: keyword argument 'k' is given twice\n");
  has_error(p, "p.ra:2:13: note: first given here\n");
  parsed_free(p);
  p = parse("block b(x: 1, y) { return x }\nblock c(x, x) { return x }\n");
  has_error(p, "p.ra:1:15: error: parameter 'y' without a default follows one with a default\n");
  has_error(p, "p.ra:2:12: error: parameter 'x' is declared twice\n");
  parsed_free(p);
}

/* ---- clause blocks ---- */

Test(parser, clause_words) {
  Parsed *p = parse("train m on d {\n\n"
                    "  optimizer adamw { lr 3e-3  weight_decay 0.01 }\n\n\n"
                    "  split train 0.8 ; ; metrics accuracy loss\n"
                    "  columns 2..10 a..b -1..1 shift -3 list [1, 2] expr (2 * 3) path \"p\"\n"
                    "  repeat input on from grad\n\n"
                    "}");
  no_errors(p);
  const AstClauses *c = item(p, 0)->clauses;
  const AstWord *w = c->w;
  int i = 0;
  cr_assert_eq(w[i].kind, W_IDENT);  /* no separator at the start */
  cr_assert_str_eq(w[i++].ident, "optimizer");
  cr_assert_str_eq(w[i++].ident, "adamw");
  cr_assert_eq(w[i].kind, W_BLOCK);
  cr_assert_eq(w[i].block->n, 4);
  cr_assert_str_eq(w[i].block->w[0].ident, "lr");
  cr_assert_eq(w[i].block->w[1].kind, W_VALUE);
  cr_assert_float_eq(w[i].block->w[1].value->num, 3e-3, 1e-15);
  cr_assert_eq(w[i].block->w[3].value->num, 0.01);
  i++;
  cr_assert_eq(w[i++].kind, W_SEP);  /* blank lines merge into one */
  cr_assert_str_eq(w[i++].ident, "split");
  cr_assert_eq(w[i].kind, W_IDENT);  /* keywords are plain words here */
  cr_assert_str_eq(w[i++].ident, "train");
  cr_assert_eq(w[i++].kind, W_VALUE);
  cr_assert_eq(w[i++].kind, W_SEP);  /* " ; ; " is one separator */
  cr_assert_str_eq(w[i++].ident, "metrics");
  cr_assert_str_eq(w[i++].ident, "accuracy");
  cr_assert_str_eq(w[i++].ident, "loss");
  cr_assert_eq(w[i++].kind, W_SEP);
  cr_assert_str_eq(w[i++].ident, "columns");
  cr_assert_eq(w[i].value->kind, EX_RANGE);
  cr_assert_eq(w[i].value->a->ival, 2);
  cr_assert_eq(w[i].span.len, 5);
  i++;
  cr_assert_eq(w[i].value->kind, EX_RANGE);
  cr_assert_str_eq(w[i].value->a->str, "a");
  i++;
  cr_assert_eq(w[i].value->kind, EX_RANGE);
  cr_assert_eq(w[i].value->a->kind, EX_NEG);
  i++;
  cr_assert_str_eq(w[i++].ident, "shift");
  cr_assert_eq(w[i].value->kind, EX_NEG);
  cr_assert_eq(w[i].value->a->ival, 3);
  cr_assert_eq(w[i].span.len, 2);
  i++;
  cr_assert_str_eq(w[i++].ident, "list");
  cr_assert_eq(w[i++].value->kind, EX_LIST);
  cr_assert_str_eq(w[i++].ident, "expr");
  cr_assert_eq(w[i++].value->op, '*');
  cr_assert_str_eq(w[i++].ident, "path");
  cr_assert_str_eq(w[i++].value->str, "p");
  cr_assert_eq(w[i++].kind, W_SEP);
  const char *kws[] = {"repeat", "input", "on", "from", "grad"};
  for (int k = 0; k < 5; k++) {
    cr_assert_eq(w[i].kind, W_IDENT);
    cr_assert_str_eq(w[i++].ident, kws[k]);
  }
  cr_assert_eq(i, c->n, "no separator at the end: %d words, %d read", c->n, i);
  parsed_free(p);
}

Test(parser, empty_clause_block) {
  Parsed *p = parse("train m on d {}\ntrain m on d {\n\n}\n");
  no_errors(p);
  cr_assert_eq(item(p, 0)->clauses->n, 0);
  cr_assert_eq(item(p, 1)->clauses->n, 0);
  cr_assert_eq(item(p, 1)->clauses->span.line, 1 + 1);
  parsed_free(p);
}

/* ---- golden dumps ---- */

static void golden_case(const char *name) {
  char src[256], ast[256];
  snprintf(src, sizeof src, "tests/golden/ast/%s.ra", name);
  snprintf(ast, sizeof ast, "tests/golden/ast/%s.ast", name);
  size_t len = 0;
  char *text = tu_read_file(src, &len);
  cr_assert_not_null(text, "cannot read %s", src);
  Parsed *p = parse_n(src, text, len);
  tu_golden(ast, ast_dump(&p->a, p->f));
  if (strcmp(name, "errors") == 0) {
    char diag[256];
    snprintf(diag, sizeof diag, "tests/golden/ast/%s.diag", name);
    tu_golden(diag, p->diags);
  } else {
    no_errors(p);
  }
  parsed_free(p);
  free(text);
}

Test(parser, golden_licenses) { golden_case("licenses"); }
Test(parser, golden_blocks) { golden_case("blocks"); }
Test(parser, golden_lm) { golden_case("lm"); }
Test(parser, golden_errors) { golden_case("errors"); }

/* ---- syntax errors ---- */

Test(parser, keyword_as_name) {
  Parsed *p = parse("const train = 3\nmodel m {\n  x = loss + 1\n  loss = 2\n  input data : int\n"
                    "  y = f(from: 2)\n}\n");
  cr_assert_str_eq(p->diags,
                   "p.ra:1:7: error: 'train' is a keyword and cannot be used as a name\n"
                   "const train = 3\n"
                   "      ^~~~~\n"
                   "p.ra:3:7: error: 'loss' is a keyword and cannot be used as a name\n"
                   "  x = loss + 1\n"
                   "      ^~~~\n"
                   "p.ra:4:3: error: 'loss' is a keyword and cannot be used as a name\n"
                   "  loss = 2\n"
                   "  ^~~~\n"
                   "p.ra:5:9: error: 'data' is a keyword and cannot be used as a name\n"
                   "  input data : int\n"
                   "        ^~~~\n"
                   "p.ra:6:9: error: 'from' is a keyword and cannot be used as a name\n"
                   "  y = f(from: 2)\n"
                   "        ^~~~\n");
  /* the tree is still complete */
  cr_assert_eq(p->f->nitems, 2);
  cr_assert_eq(item(p, 1)->nbody, 3);
  parsed_free(p);
}

Test(parser, expected_messages) {
  struct {
    const char *src, *want;
  } cases[] = {
      {"const = 4", "p.ra:1:7: error: expected a name before '='\n"},
      {"const x 4", "p.ra:1:9: error: expected '=' before '4'\n"},
      {"const x =", "p.ra:1:10: error: expected an expression before end of file\n"},
      {"const x =\n", "p.ra:1:10: error: expected an expression before end of line\n"},
      {"const x = 3 4", "p.ra:1:13: error: expected end of line before '4'\n"},
      {"const x = f(1 2)", "p.ra:1:15: error: expected ',' or ')' before '2'\n"},
      {"const x = f(1,\n}", "p.ra:2:1: error: expected an expression or ')' before '}'\n"},
      {"const x = [1 2]", "p.ra:1:14: error: expected ',', ']' or '..' before '2'\n"},
      {"foo = 1", "p.ra:1:1: error: expected a declaration ('model', 'train', 'data', 'const', "
                  "'block', 'extern' or 'use') before 'foo'\n"},
      {"model m {\n  3\n}", "p.ra:2:3: error: expected a statement or '}' before '3'\n"},
      {"model m {\n  input x int\n}", "p.ra:2:11: error: expected ':' before 'int'\n"},
      {"model m\n{ }", "p.ra:1:8: error: expected '{' before end of line\n"},
      {"train m on { }", "p.ra:1:12: error: expected a name before '{'\n"},
      {"train m d { }", "p.ra:1:9: error: expected 'on' before 'd'\n"},
      {"extern f(x: f32) from host", "p.ra:1:8: error: expected 'fn' before 'f'\n"},
      {"extern fn f(x) from host", "p.ra:1:14: error: expected ':' before ')'\n"},
      {"extern fn f(x: f32) host", "p.ra:1:21: error: expected '->' or 'from' before 'host'\n"},
      {"extern fn f(x: f32) from lib",
       "p.ra:1:26: error: expected a library path string or 'host' after 'from', not 'lib'\n"},
      {"use std", "p.ra:1:5: error: expected a string before 'std'\n"},
      {"data d = 3", "p.ra:1:10: error: a data set is made by a loader call, such as "
                     "tsv(\"file.tsv\") or synthetic(task: copy)\n"},
      {"train m on d { lr = 3 }",
       "p.ra:1:19: error: expected a clause word, a value or '}' before '='\n"},
      {"const s = \"abc\" \"a very long string literal that gets cut\"",
       "p.ra:1:17: error: expected end of line before '\"a very long string literal that...'\n"},
      {"model m { x = 1 }\n)", "p.ra:2:1: error: expected a declaration ('model', 'train', "
                               "'data', 'const', 'block', 'extern' or 'use') before ')'\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Parsed *p = parse(cases[i].src);
    cr_assert_not_null(p->f);
    cr_assert(strstr(p->diags, cases[i].want) == p->diags,
              "case %zu: %s\nwant: %sgot:\n%s", i, cases[i].src, cases[i].want, p->diags);
    parsed_free(p);
  }
}

Test(parser, unclosed_brace_with_note) {
  Parsed *p = parse("const a = 1\n\nmodel m {\n  x = 1\n  loss x\n");
  cr_assert_str_eq(p->diags,
                   "p.ra:5:9: error: expected '}' to close '{' opened at line 3\n"
                   "  loss x\n"
                   "        ^\n"
                   "p.ra:3:9: note: to match this '{'\n"
                   "model m {\n"
                   "        ^\n");
  /* closed for the parser, so the model is in the tree */
  cr_assert_eq(p->f->nitems, 2);
  cr_assert_eq(item(p, 1)->nbody, 2);
  parsed_free(p);
}

Test(parser, missing_brace_before_next_declaration) {
  Parsed *p = parse("model a {\n  repeat 2 {\n    x = 1\nconst c = 1\nmodel b {\n  y = 2\n"
                    "model d { loss y }\n");
  cr_assert_str_eq(p->diags,
                   "p.ra:4:1: error: expected '}' to close '{' opened at line 2 before 'const'\n"
                   "const c = 1\n"
                   "^~~~~\n"
                   "p.ra:2:12: note: to match this '{'\n"
                   "  repeat 2 {\n"
                   "           ^\n"
                   "p.ra:7:1: error: expected '}' to close '{' opened at line 5 before 'model'\n"
                   "model d { loss y }\n"
                   "^~~~~\n"
                   "p.ra:5:9: note: to match this '{'\n"
                   "model b {\n"
                   "        ^\n");
  /* the bodies are closed where the next declaration starts */
  cr_assert_eq(p->f->nitems, 4);
  cr_assert_eq(item(p, 0)->nbody, 1);
  cr_assert_eq(item(p, 0)->body[0]->kind, ST_REPEAT);
  cr_assert_str_eq(item(p, 1)->name, "c");
  cr_assert_eq(item(p, 2)->nbody, 1);
  cr_assert_str_eq(item(p, 3)->name, "d");
  parsed_free(p);
}

Test(parser, several_errors_in_one_run) {
  Parsed *p = parse("const = 1\n"
                    "model m {\n"
                    "  x = = 2\n"
                    "  y = 3\n"
                    "  z = f(1 2) { heads 8 }\n"
                    "  w = 4\n"
                    "}\n"
                    "const ok = 5\n"
                    "model 9\n"
                    "const ok2 = 6\n");
  cr_assert_eq(p->d.nerrors, 4, "%s", p->diags);
  has_error(p, "p.ra:1:7: error: expected a name before '='\n");
  has_error(p, "p.ra:3:7: error: expected an expression before '='\n");
  has_error(p, "p.ra:5:11: error: expected ',' or ')' before '2'\n");
  has_error(p, "p.ra:9:7: error: expected a name before '9'\n");
  /* recovery keeps what is good, statement by statement */
  cr_assert_eq(p->f->nitems, 3);
  const AstItem *m = item(p, 0);
  cr_assert_eq(m->kind, IT_MODEL);
  cr_assert_eq(m->nbody, 2);
  cr_assert_str_eq(m->body[0]->name, "y");
  cr_assert_str_eq(m->body[1]->name, "w");
  cr_assert_str_eq(item(p, 1)->name, "ok");
  cr_assert_str_eq(item(p, 2)->name, "ok2");
  parsed_free(p);
}

Test(parser, errors_on_adjacent_lines_all_reported) {
  Parsed *p = parse("const = 1\nconst = 2\nconst = 3\nmodel m {\n x = )\n y = )\n}\n");
  cr_assert_eq(p->d.nerrors, 5, "%s", p->diags);
  has_error(p, "p.ra:2:7:");
  has_error(p, "p.ra:3:7:");
  has_error(p, "p.ra:5:6:");
  has_error(p, "p.ra:6:6:");
  parsed_free(p);
}

Test(parser, max_errors_stops_the_parse) {
  char src[20000];
  size_t n = 0;
  for (int i = 0; i < 1000; i++) n += (size_t)snprintf(src + n, sizeof src - n, "const = %d\n", i);
  Parsed *p = parse(src);
  cr_assert_eq(p->d.nerrors, 51);
  has_error(p, "p.ra:50:7: error: expected a name before '='\n");
  has_error(p, "rac: error: too many errors (more than 50); stopping here\n");
  parsed_free(p);
}

/* ---- hostile inputs ---- */

Test(parser, deep_nesting_is_an_error) {
  size_t n = 100000;
  char *src = malloc(2 * n + 32);
  size_t k = (size_t)sprintf(src, "const x = ");
  memset(src + k, '(', n);
  src[k + n] = '1';
  memset(src + k + n + 1, ')', n);
  src[k + 2 * n + 1] = 0;
  Parsed *p = parse(src);
  cr_assert_eq(p->d.nerrors, 1, "%s", p->diags);
  has_error(p, "p.ra:1:267: error: nesting is too deep (more than 256 levels)\n");
  parsed_free(p);
  /* the same with braces, brackets and calls */
  for (int kind = 0; kind < 3; kind++) {
    const char *open = kind == 0 ? "[" : kind == 1 ? "f(" : "{";
    size_t ol = strlen(open);
    k = (size_t)sprintf(src, kind == 2 ? "train m on d " : "const x = ");
    for (size_t i = 0; i < 50000; i++, k += ol) memcpy(src + k, open, ol);
    src[k] = 0;
    p = parse(src);
    has_error(p, "error: nesting is too deep (more than 256 levels)\n");
    parsed_free(p);
  }
  free(src);
}

Test(parser, long_operator_chains_are_errors_not_crashes) {
  size_t n = 100000;
  char *src = malloc(2 * n + 32);
  /* unary minus nests without brackets: the parser stack limit catches it */
  size_t k = (size_t)sprintf(src, "const x = ");
  memset(src + k, '-', n);
  strcpy(src + k + n, "1\n");
  Parsed *p = parse(src);
  cr_assert_eq(p->d.nerrors, 1, "%s", p->diags);
  has_error(p, "error: nested too deeply here (the parser's stack is full); simplify the "
               "expression\n");
  parsed_free(p);
  /* a left-deep chain stays within AST_MAX_DEPTH */
  k = (size_t)sprintf(src, "const x = 1");
  for (size_t i = 0; i < n / 2; i++, k += 2) memcpy(src + k, "+1", 2);
  strcpy(src + k, "\nconst y = 2\n");
  p = parse(src);
  cr_assert_eq(p->d.nerrors, 1, "%s", p->diags);
  has_error(p, "p.ra:1:11: error: expression is nested too deeply (more than 1024 levels)\n");
  cr_assert_eq(p->f->nitems, 2);
  cr_assert_leq(item(p, 0)->expr->depth, AST_MAX_DEPTH);
  char *dump = ast_dump(&p->a, p->f);
  cr_assert_not_null(dump);
  parsed_free(p);
  free(src);
}

Test(parser, huge_identifier) {
  size_t n = 1u << 20;
  char *src = malloc(n + 32);
  size_t k = (size_t)sprintf(src, "const ");
  memset(src + k, 'a', n);
  strcpy(src + k + n, " = 1\n");
  Parsed *p = parse(src);
  cr_assert_eq(p->d.nerrors, 1, "%s", p->diags);
  has_error(p, "p.ra:1:7: error: identifier is 1048576 bytes long; the limit is 255\n");
  cr_assert_eq(p->f->nitems, 1);
  cr_assert_eq(strlen(item(p, 0)->name), 255);
  parsed_free(p);
  free(src);
}

Test(parser, nul_bytes_and_invalid_utf8) {
  const char src[] = "const a\0 = 1\nconst b = \"x\xff\"\nconst \xc3\xa9 = 2\n\xfe\xfe\n";
  Parsed *p = parse_n("p.ra", src, sizeof src - 1);
  has_error(p, "p.ra:1:8: error: NUL byte in the source\nconst a? = 1\n       ^\n");
  has_error(p, "p.ra:2:13: error: invalid UTF-8 byte 0xFF in a string\n");
  has_error(p, "p.ra:3:7: error: invalid character '\xc3\xa9' (U+00E9)");
  has_error(p, "p.ra:4:1: error: invalid UTF-8 byte 0xFE\n");
  cr_assert_str_eq(item(p, 0)->name, "a");
  parsed_free(p);
}

Test(parser, huge_integers) {
  Parsed *p = parse("const a = 99999999999999999999999999\nmodel m { input x : int[18446744073709551616] }\n");
  cr_assert_eq(p->d.nerrors, 2, "%s", p->diags);
  has_error(p, "p.ra:1:11: error: integer literal does not fit in 64 bits\n");
  has_error(p, "p.ra:2:25: error: integer literal does not fit in 64 bits\n");
  parsed_free(p);
}

Test(parser, every_byte_value_survives) {
  char src[256 * 4];
  for (int i = 0; i < 256 * 4; i++) src[i] = (char)((i * 37 + i / 256) & 0xff);
  Parsed *p = parse_n("p.ra", src, sizeof src);
  cr_assert_not_null(p->f);
  cr_assert_gt(p->d.nerrors, 0);
  parsed_free(p);
}

/* A failing allocator: the n-th allocation and every later one fail. */
typedef struct Budget {
  int left;
} Budget;

static void *budget_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)osize;
  Budget *b = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (b->left-- <= 0) return NULL;
  return realloc(ptr, nsize);
}

Test(parser, failing_allocations_never_crash) {
  size_t len = 0;
  char *text = tu_read_file("tests/golden/ast/licenses.ra", &len);
  cr_assert_not_null(text);
  int completed = 0;
  for (int n = 0; n < 40; n++) {
    Budget b = {n};
    RaAlloc al = {budget_fn, &b};
    Arena a;
    arena_init(&a, al);
    SrcSet s;
    src_init(&s, &a);
    DiagList d;
    diag_init(&d, &a, &s);
    int id = src_add(&s, "l.ra", text, len);
    if (id >= 0) {
      AstFile *f = ra_parse(&a, &s, id, &d);
      if (f && d.nerrors == 0) {
        cr_assert_eq(f->nitems, 4);
        completed++;
      }
    }
    cr_assert_null(a.oom_jmp);  /* restored */
    arena_free(&a);
  }
  cr_assert_gt(completed, 0);
  free(text);
}

/* ---- fuzz corpus and regressions ---- */

static int parse_dir(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp) return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(dp))) {
    if (de->d_name[0] == '.') continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    size_t len;
    char *text = tu_read_file(path, &len);
    if (!text) continue;
    Parsed *p = parse_n(path, text, len);
    cr_assert_not_null(p->f, "%s", path);
    cr_assert_not_null(ast_dump(&p->a, p->f));
    cr_assert_not_null(p->diags);
    parsed_free(p);
    free(text);
    n++;
  }
  closedir(dp);
  return n;
}

Test(parser, fuzz_corpus_and_regressions) {
  cr_assert_gt(parse_dir("tests/fuzz/corpus"), 3);
  parse_dir("tests/fuzz/regress");
}
