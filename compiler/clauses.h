/* clauses.h - compile-time values and clause blocks read against a schema.
 *
 * A clause block is a flat word list (ast.h); the reader for a context
 * (attention, repulsion, optimizer, data fields, train) knows each clause's
 * arity, so one-per-line and several-per-line mean the same.  Unknown
 * clauses get "did you mean", duplicates point at the first one, values are
 * range-checked, required clauses are enforced.
 */
#ifndef RA_CLAUSES_H
#define RA_CLAUSES_H

#include "program.h"

/* Names visible to compile-time expressions besides the program's consts:
 * e.g. a block's keyword parameters inside a call.  lookup returns true and
 * sets *value when it knows name. */
typedef struct ConstScope {
  bool (*lookup)(void *ud, const char *name, int64_t *value);
  void *ud;
} ConstScope;

/* Compile-time integer arithmetic (+ - * / % unary -, parentheses) over
 * integer literals, consts and scope names.  Overflow, division by zero, a
 * non-integer or an unknown name is a located diagnostic; returns 0 or -1. */
int sema_eval_int(Program *p, const AstExpr *e, const ConstScope *scope, int64_t *out);
/* Same, but floats allowed (a value like `lr 3e-3` or `p: 0.1`). */
int sema_eval_num(Program *p, const AstExpr *e, const ConstScope *scope, double *out);

/* The options of an attention or attnpool call. */
typedef struct AttnOptions {
  int64_t heads;      /* required */
  int64_t head_dim;   /* 0 = dim / heads */
  bool causal;
  double dropout;     /* on attention weights */
  int64_t hidden;     /* attnpool: d_a (default dim) */
  double penalty;     /* attnpool: c (default 0) */
  Repulsion rep;      /* defaults: none, each, qkv, every 1, median, 1, 1, 1 */
} AttnOptions;

/* Reads an attention (attnpool = false) or attnpool clause block; c may be
 * NULL (then `heads` is reported missing at call).  0 or -1 (diagnosed). */
int clauses_attention(Program *p, const AstClauses *c, Span call, bool attnpool,
                      const ConstScope *scope, AttnOptions *out);
/* Defaults for a Repulsion. */
void repulsion_defaults(Repulsion *r);

/* ---- used by sema.c (and open to lower.c) ---- */
/* Evaluates every const of the program (consts.c), in file order; each
 * error is reported once.  0 or -1. */
int sema_eval_consts(Program *p);
/* The source text of a span (shortened to ~40 bytes), for messages. */
const char *sema_span_text(const Program *p, Span s);
/* "a string", "a list", "a call", ... for "found ..." messages. */
const char *sema_expr_kind(const AstExpr *e);
/* Reads a `data` item (loader call, kwargs, clause block) into d; spec_dir
 * is the folder of the file that holds it.  0 or -1 (diagnosed). */
int clauses_data(Program *p, const AstItem *it, const char *spec_dir, DataDecl *d);
/* Reads a `train` item's clause block into t (names and spans too; the model
 * and data are checked by sema).  0 or -1 (diagnosed). */
int clauses_train(Program *p, const AstItem *it, TrainDecl *t);
/* Defaults of an optimizer's settings (lr, momentum, betas, eps, decay). */
void train_opt_defaults(TrainDecl *t, OptKind k);

#endif
