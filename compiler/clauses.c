/* clauses.c - clause blocks read against schemas (clauses.h).
 *
 * A clause block is a flat list of words (ast.h).  A cursor walks it: a
 * clause is an identifier naming it, followed by the arguments its schema
 * says; a line end (W_SEP) ends nothing by itself, except that a clause's
 * arguments never cross it, so `{ lr 3e-3  weight_decay 0.01 }` and one
 * clause per line mean the same.  The readers here are the schemas:
 * attention and attnpool calls, repulsion blocks, data loaders and their
 * fields, train blocks and optimizer blocks.  Every error is located; after
 * one, the reader skips to the end of the line and goes on, so one run
 * reports several.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clauses.h"
#include "settings.h"

/* ---- the cursor ---- */

enum { MAX_CLAUSES = 32 };

typedef struct Cur {
  Program *p;
  const AstClauses *c;
  int i;
  const char *ctx;                 /* "attention", for messages */
  const ConstScope *scope;
  const char *const *names;        /* the schema's clause names */
  int nnames;
  int nlisted;                     /* names[0..nlisted) shown in "expected ..." */
  const char *const *foreign;      /* clauses of a nested block, for a hint */
  int nforeign;
  const char *foreign_hint;        /* "... inside %s { ... }" */
  Span first[MAX_CLAUSES];         /* where each clause was first given */
  bool seen[MAX_CLAUSES];
  bool bad;                        /* an error was reported */
  bool unknown;                    /* an unknown clause was reported (then a
                                      missing required clause is not: it is
                                      most likely the misspelt one) */
} Cur;

static void cur_init(Cur *k, Program *p, const AstClauses *c, const char *ctx,
                     const ConstScope *scope, const char *const *names, int nnames) {
  memset(k, 0, sizeof *k);
  k->p = p;
  k->c = c;
  k->ctx = ctx;
  k->scope = scope;
  k->names = names;
  k->nnames = nnames < MAX_CLAUSES ? nnames : MAX_CLAUSES;
  k->nlisted = k->nnames;
}

static Diag *cerr(Cur *k, Span at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static Diag *cerr(Cur *k, Span at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Diag *d = diag_verror(k->p->diags, DIAG_ERROR, at, fmt, ap);
  va_end(ap);
  k->bad = true;
  return d;
}

static const AstWord *peek(const Cur *k) {
  return k->c && k->i < k->c->n ? &k->c->w[k->i] : NULL;
}

/* Is the next word an argument (not the end, not a line end)? */
static bool at_arg(const Cur *k) {
  const AstWord *w = peek(k);
  return w && w->kind != W_SEP;
}

static void skip_line(Cur *k) {
  while (at_arg(k)) k->i++;
}

static int name_index(const char *const *names, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], s) == 0) return i;
  return -1;
}

static bool is_clause_name(const Cur *k, const char *s) {
  return name_index(k->names, k->nnames, s) >= 0;
}

/* "a, b or c" for messages. */
static const char *name_list(Arena *a, const char *const *names, int n) {
  size_t len = 1;
  for (int i = 0; i < n; i++) len += strlen(names[i]) + 4;
  char *s = arena_alloc(a, len);
  if (!s) return "";
  for (int i = 0; i < n; i++) {
    if (i) strcat(s, i == n - 1 ? " or " : ", ");
    strcat(s, names[i]);
  }
  return s;
}

/* What a word is, for "found ..." messages. */
static const char *word_desc(const Cur *k, const AstWord *w) {
  if (!w || w->kind == W_SEP) return "the end of the line";
  if (w->kind == W_BLOCK) return "a block";
  const char *d;
  if (w->kind == W_IDENT) {
    d = arena_printf(k->p->arena, "'%s'", w->ident);
    return d ? d : "a name";
  }
  const AstExpr *e = w->value;
  if (e->kind == EX_NUM || e->kind == EX_NEG)
    return sema_span_text(k->p, w->span);
  return sema_expr_kind(e);
}

/* Next clause: its index in the schema, or -1 at the end of the block.
 * Unknown names and stray values are reported and skipped. */
static int next_clause(Cur *k, Span *at) {
  for (;;) {
    const AstWord *w = peek(k);
    if (!w) return -1;
    if (w->kind == W_SEP) {
      k->i++;
      continue;
    }
    if (w->kind == W_IDENT) {
      int idx = name_index(k->names, k->nnames, w->ident);
      k->i++;
      if (idx >= 0) {
        *at = w->span;
        return idx;
      }
      const char *s = diag_suggest(w->ident, k->names, k->nnames);
      k->unknown = true;
      if (k->foreign && name_index(k->foreign, k->nforeign, w->ident) >= 0) {
        Diag *d = cerr(k, w->span, "unknown clause '%s' in %s", w->ident, k->ctx);
        diag_note(k->p->diags, d, w->span, "'%s' %s", w->ident, k->foreign_hint);
      } else if (s) {
        cerr(k, w->span, "unknown clause '%s' in %s; did you mean '%s'?", w->ident, k->ctx, s);
      } else {
        cerr(k, w->span, "unknown clause '%s' in %s (expected %s)", w->ident, k->ctx,
             name_list(k->p->arena, k->names, k->nlisted));
      }
      skip_line(k);
      continue;
    }
    if (w->kind == W_BLOCK)
      cerr(k, w->span, "expected a clause name, found a block");
    else
      cerr(k, w->span, "expected a clause name, found %s", word_desc(k, w));
    k->i++;
    skip_line(k);
  }
}

/* Marks clause idx as given; a second one is an error pointing at the first. */
static void once(Cur *k, int idx, Span at) {
  if (idx < 0 || idx >= MAX_CLAUSES) return;
  if (k->seen[idx]) {
    Diag *d = cerr(k, at, "duplicate clause '%s'", k->names[idx]);
    diag_note(k->p->diags, d, k->first[idx], "'%s' was first given here", k->names[idx]);
    return;
  }
  k->seen[idx] = true;
  k->first[idx] = at;
}

static bool has(const Cur *k, int idx) { return idx >= 0 && idx < MAX_CLAUSES && k->seen[idx]; }

/* ---- arguments ---- */

static int missing(Cur *k, const char *clause, Span at, const char *what) {
  cerr(k, at, "missing value after '%s' (expected %s)", clause, what);
  return -1;
}

/* An integer or number argument: a literal, an expression, or a const. */
static int arg_value(Cur *k, const char *clause, Span at, bool want_int, int64_t *iv,
                     double *dv, Span *where) {
  const char *what = want_int ? "an integer" : "a number";
  const AstWord *w = peek(k);
  if (!at_arg(k)) return missing(k, clause, at, what);
  if (w->kind == W_IDENT && is_clause_name(k, w->ident)) return missing(k, clause, at, what);
  if (where) *where = w->span;
  if (w->kind == W_BLOCK) {
    cerr(k, w->span, "'%s' expects %s, found a block", clause, what);
    k->i++;
    return -1;
  }
  AstExpr tmp;
  const AstExpr *e = w->value;
  if (w->kind == W_IDENT) {
    memset(&tmp, 0, sizeof tmp);
    tmp.kind = EX_NAME;
    tmp.span = w->span;
    tmp.str = w->ident;
    tmp.len = (uint32_t)strlen(w->ident);
    e = &tmp;
  } else if (e->kind == EX_STR || e->kind == EX_LIST || e->kind == EX_RANGE ||
             e->kind == EX_CALL) {
    cerr(k, w->span, "'%s' expects %s, found %s", clause, what, sema_expr_kind(e));
    k->i++;
    return -1;
  } else if (want_int && e->kind == EX_NUM && !e->is_int) {
    const char *t = sema_span_text(k->p, w->span);
    if (strpbrk(t, ".eE"))
      cerr(k, w->span, "'%s' expects an integer, found %s", clause, t);
    else
      cerr(k, w->span, "integer %s does not fit in 64 bits", t);
    k->i++;
    return -1;
  }
  k->i++;
  int rc = want_int ? sema_eval_int(k->p, e, k->scope, iv) : sema_eval_num(k->p, e, k->scope, dv);
  if (rc) k->bad = true;
  return rc;
}

/* A range error at where, worded by settings.c. */
static int range_error(Cur *k, Span where, const char *msg) {
  cerr(k, where, "%s", msg);
  return -1;
}

static int arg_int_lim(Cur *k, const char *clause, Span at, const Limits *lim, int64_t *out) {
  int64_t v;
  Span where;
  char msg[256];
  if (arg_value(k, clause, at, true, &v, NULL, &where)) return -1;
  if (limits_check_int(clause, lim, v, msg, sizeof msg)) return range_error(k, where, msg);
  *out = v;
  return 0;
}

static int arg_int(Cur *k, const char *clause, Span at, int64_t min, int64_t *out) {
  Limits lim = {LIM_MIN, (double)min, 0};
  return arg_int_lim(k, clause, at, &lim, out);
}

static const Limits L_POS = {LIM_GT, 0, 0}, L_NONNEG = {LIM_MIN, 0, 0},
                    L_UNIT_OPEN = {LIM_HALF_OPEN, 0, 1}, L_UNIT = {LIM_CLOSED, 0, 1};

static int arg_num(Cur *k, const char *clause, Span at, const Limits *lim, double *out) {
  double v;
  Span where;
  char msg[256];
  if (arg_value(k, clause, at, false, NULL, &v, &where)) return -1;
  if (limits_check_num(clause, lim, v, msg, sizeof msg)) return range_error(k, where, msg);
  *out = v;
  return 0;
}

static int arg_str(Cur *k, const char *clause, Span at, const char **out, Span *where) {
  const AstWord *w = peek(k);
  if (!at_arg(k) || (w->kind == W_IDENT && is_clause_name(k, w->ident)))
    return missing(k, clause, at, "a string");
  if (w->kind != W_VALUE || w->value->kind != EX_STR) {
    cerr(k, w->span, "'%s' expects a string, found %s", clause, word_desc(k, w));
    k->i++;
    return -1;
  }
  *out = w->value->str;
  if (where) *where = w->span;
  k->i++;
  return 0;
}

/* One of a fixed set of identifiers; *out is its index. */
static int arg_choice(Cur *k, const char *clause, Span at, const char *const *choices, int n,
                      int *out) {
  const AstWord *w = peek(k);
  const char *list = name_list(k->p->arena, choices, n);
  if (!at_arg(k)) {
    cerr(k, at, "missing value after '%s' (expected %s)", clause, list);
    return -1;
  }
  if (w->kind != W_IDENT) {
    cerr(k, w->span, "'%s' expects %s, found %s", clause, list, word_desc(k, w));
    k->i++;
    return -1;
  }
  int idx = name_index(choices, n, w->ident);
  if (idx < 0) {
    if (is_clause_name(k, w->ident)) {
      cerr(k, at, "missing value after '%s' (expected %s)", clause, list);
      return -1;
    }
    /* worded as for --set (settings.c) */
    size_t len = strlen(w->ident), cap = len + 2 * strlen(list) + strlen(clause) + 64;
    char *msg = arena_alloc(k->p->arena, cap);
    if (msg) words_parse(clause, choices, n, w->ident, (int)len, msg, cap);
    cerr(k, w->span, "%s", msg ? msg : "unknown word");
    k->i++;
    return -1;
  }
  k->i++;
  *out = idx;
  return 0;
}

/* The next word if it is one of choices (consumed), else -1. */
static int opt_choice(Cur *k, const char *const *choices, int n) {
  const AstWord *w = peek(k);
  if (!w || w->kind != W_IDENT) return -1;
  int idx = name_index(choices, n, w->ident);
  if (idx >= 0) k->i++;
  return idx;
}

static const AstClauses *opt_block(Cur *k) {
  const AstWord *w = peek(k);
  if (!w || w->kind != W_BLOCK) return NULL;
  k->i++;
  return w->block;
}

/* After a clause: an error inside it skips the rest of its line. */
static void clause_end(Cur *k, int rc) {
  if (rc) skip_line(k);
}

/* ---- repulsion (language.md §6) ---- */

void repulsion_defaults(Repulsion *r) {
  memset(r, 0, sizeof *r);
  r->kind = REP_NONE;
  r->group = GROUP_EACH;
  r->particles = PART_Q | PART_K | PART_V;
  r->every = 1;
  r->bw_median = true;
  r->bandwidth = 0;
  r->alpha = 1;
  r->stepsize = 1;
  r->beta = 1;
  r->weight = 1;
  r->span = SPAN_NONE;
}

enum { RC_ALPHA, RC_STEPSIZE, RC_BETA, RC_EVERY, RC_BANDWIDTH, RC_KERNEL, RC_GROUP, RC_PARTICLES,
       RC_WEIGHT, RC_START, RC_STOP, RC_WHEN, NREP_CLAUSES };
static const char *const REP_CLAUSES[NREP_CLAUSES] = {
    "alpha", "stepsize", "beta",   "every", "bandwidth", "kernel", "group",
    "particles", "weight", "start", "stop", "when"};

/* `when diversity < X` (<, <=, >, >=; X in [0, 1]) after `when` at `at`. */
static int parse_when(Cur *k, Span at, Repulsion *r) {
  const AstWord *w = peek(k);
  if (!at_arg(k)) return missing(k, "when", at, "diversity, a comparison and a number");
  if (w->kind != W_IDENT || strcmp(w->ident, "diversity") != 0) {
    cerr(k, w->span, "'when' measures diversity (as in 'when diversity < 0.6'), found %s",
         word_desc(k, w));
    k->i++;
    return -1;
  }
  k->i++;
  static const char *const cmps[] = {"<", "<=", ">", ">="};
  w = peek(k);
  if (!at_arg(k)) return missing(k, "when diversity", at, "<, <=, > or >=");
  int c = w->kind == W_IDENT ? name_index(cmps, 4, w->ident) : -1;
  if (c < 0) {
    cerr(k, w->span, "unknown comparison %s in 'when' (expected <, <=, > or >=)", word_desc(k, w));
    k->i++;
    return -1;
  }
  k->i++;
  if (arg_num(k, "when diversity", at, &L_UNIT, &r->threshold)) return -1;
  r->when = REP_WHEN_LT + c;
  return 0;
}

static int parse_particles(Cur *k, Span at, unsigned *mask) {
  const AstWord *w = peek(k);
  if (!at_arg(k)) return missing(k, "particles", at, "q, k, v, qk, qkv or qkvo");
  const char *s = w->kind == W_IDENT ? w->ident : NULL;
  unsigned m = 0;
  bool ok = s && *s;
  for (const char *c = s; ok && *c; c++) {
    unsigned bit = *c == 'q' ? PART_Q : *c == 'k' ? PART_K : *c == 'v' ? PART_V
                 : *c == 'o' ? PART_O : 0;
    if (!bit || (m & bit)) ok = false;
    m |= bit;
  }
  k->i++;
  if (!ok) {
    cerr(k, w->span, "'particles' expects letters from q, k, v, o (such as qkv), found %s",
         word_desc(k, w));
    return -1;
  }
  *mask = m;
  return 0;
}

static int read_repulsion_block(Program *p, const AstClauses *c, bool attnpool,
                                const ConstScope *scope, Repulsion *r) {
  Cur k;
  cur_init(&k, p, c, "repulsion", scope, REP_CLAUSES, NREP_CLAUSES);
  Span at, beta_at = SPAN_NONE, weight_at = SPAN_NONE, stop_at = SPAN_NONE;
  int idx;
  while ((idx = next_clause(&k, &at)) >= 0) {
    once(&k, idx, at);
    int rc = 0, ch;
    switch (idx) {
    case RC_ALPHA: rc = arg_num(&k, "alpha", at, &L_NONNEG, &r->alpha); break;
    case RC_STEPSIZE: rc = arg_num(&k, "stepsize", at, &L_POS, &r->stepsize); break;
    case RC_BETA:
      rc = arg_num(&k, "beta", at, &L_NONNEG, &r->beta);
      beta_at = at;
      break;
    case RC_EVERY: rc = arg_int(&k, "every", at, 1, &r->every); break;
    case RC_BANDWIDTH: {
      const AstWord *w = peek(&k);
      if (w && w->kind == W_IDENT && strcmp(w->ident, "median") == 0) {
        k.i++;
        r->bw_median = true;
        break;
      }
      if (!at_arg(&k) || (w->kind == W_IDENT && is_clause_name(&k, w->ident))) {
        rc = missing(&k, "bandwidth", at, "median or a number");
        break;
      }
      rc = arg_num(&k, "bandwidth", at, &L_POS, &r->bandwidth);
      if (!rc) r->bw_median = false;
      break;
    }
    case RC_KERNEL: {
      static const char *const kernels[] = {"rbf"};
      rc = arg_choice(&k, "kernel", at, kernels, 1, &ch);
      break;
    }
    case RC_GROUP: {
      static const char *const groups[] = {"each", "joint"};
      if (attnpool) {
        cerr(&k, at, "'group' does not apply to attnpool: its particles are the rows of W2");
        rc = -1;
        break;
      }
      rc = arg_choice(&k, "group", at, groups, 2, &ch);
      if (!rc) r->group = ch ? GROUP_JOINT : GROUP_EACH;
      break;
    }
    case RC_PARTICLES:
      if (attnpool) {
        cerr(&k, at, "'particles' does not apply to attnpool: its particles are the rows of W2");
        rc = -1;
        break;
      }
      rc = parse_particles(&k, at, &r->particles);
      break;
    case RC_WEIGHT:
      rc = arg_num(&k, "weight", at, &L_NONNEG, &r->weight);
      weight_at = at;
      break;
    case RC_START: rc = arg_int(&k, "start", at, 0, &r->start); break;
    case RC_STOP:
      rc = arg_int(&k, "stop", at, 1, &r->stop);
      stop_at = at;
      break;
    case RC_WHEN: rc = parse_when(&k, at, r); break;
    }
    clause_end(&k, rc);
  }
  if (r->kind == REP_SVGD && beta_at.file >= 0 && k.seen[RC_BETA])
    diag_warning(p->diags, beta_at, "'beta' only applies to spos; svgd ignores it");
  if (stop_at.file >= 0 && k.seen[RC_STOP] && r->stop > 0 && r->stop <= r->start) {
    cerr(&k, stop_at, "'stop %lld' is not after 'start %lld': repulsion would never apply",
         (long long)r->stop, (long long)r->start);
    k.bad = true;
  }
  if (r->kind == REP_PENALTY && (k.seen[RC_START] || k.seen[RC_STOP] || k.seen[RC_WHEN])) {
    cerr(&k, r->span, "'start', 'stop' and 'when' schedule svgd and spos updates; penalty is a "
                      "loss term of every step");
    k.bad = true;
  }
  if (r->kind != REP_PENALTY && weight_at.file >= 0 && k.seen[RC_WEIGHT])
    diag_warning(p->diags, weight_at, "'weight' only applies to penalty; %s ignores it",
                 setting_repulsions[r->kind]);
  return k.bad ? -1 : 0;
}

/* `repulsion KIND [{ ... }]` after the clause name at `at`. */
static int read_repulsion(Cur *k, Span at, bool attnpool, Repulsion *r) {
  int kind;
  if (arg_choice(k, "repulsion", at, setting_repulsions, NREPULSIONS, &kind)) return -1;
  r->kind = (RepKind)kind;
  r->span = at;
  const AstClauses *b = opt_block(k);
  if (b) {
    r->span = span_join(at, b->span);
    if (read_repulsion_block(k->p, b, attnpool, k->scope, r)) k->bad = true;
  }
  return 0;
}

/* ---- attention and attnpool (language.md §5) ---- */

enum { AC_HEADS, AC_HEAD_DIM, AC_CAUSAL, AC_DROPOUT, AC_REPULSION, AC_HIDDEN, AC_PENALTY };
static const char *const ATTN_CLAUSES[] = {"heads", "head_dim", "causal", "dropout", "repulsion"};
static const char *const POOL_CLAUSES[] = {"heads", "hidden", "penalty", "repulsion"};

int clauses_attention(Program *p, const AstClauses *c, Span call, bool attnpool,
                      const ConstScope *scope, AttnOptions *out) {
  memset(out, 0, sizeof *out);
  repulsion_defaults(&out->rep);
  const char *ctx = attnpool ? "attnpool" : "attention";
  Cur k;
  if (attnpool)
    cur_init(&k, p, c, ctx, scope, POOL_CLAUSES, 4);
  else
    cur_init(&k, p, c, ctx, scope, ATTN_CLAUSES, 5);
  k.foreign = REP_CLAUSES;
  k.nforeign = 8;
  k.foreign_hint = "is a repulsion option: write it in the repulsion block, as in "
                   "repulsion svgd { alpha 0.1 }";
  Span at;
  int idx;
  while ((idx = next_clause(&k, &at)) >= 0) {
    once(&k, idx, at);
    const char *name = k.names[idx];
    int rc = 0;
    /* map attnpool's table onto the common clause ids */
    int id = attnpool ? (idx == 0 ? AC_HEADS : idx == 1 ? AC_HIDDEN : idx == 2 ? AC_PENALTY
                                                                              : AC_REPULSION)
                      : idx;
    switch (id) {
    case AC_HEADS: rc = arg_int(&k, name, at, 1, &out->heads); break;
    case AC_HEAD_DIM: rc = arg_int(&k, name, at, 1, &out->head_dim); break;
    case AC_CAUSAL: out->causal = true; break;
    case AC_DROPOUT: rc = arg_num(&k, name, at, &L_UNIT_OPEN, &out->dropout); break;
    case AC_REPULSION: rc = read_repulsion(&k, at, attnpool, &out->rep); break;
    case AC_HIDDEN: rc = arg_int(&k, name, at, 1, &out->hidden); break;
    case AC_PENALTY: rc = arg_num(&k, name, at, &L_NONNEG, &out->penalty); break;
    }
    clause_end(&k, rc);
  }
  if (!k.seen[AC_HEADS] && !k.unknown) {
    Diag *d = cerr(&k, c ? c->span : call, "%s needs a 'heads' clause", ctx);
    if (!c) diag_note(p->diags, d, call, "add a block such as %s(x) { heads 4 }", ctx);
  }
  return k.bad ? -1 : 0;
}

/* ---- data (language.md §8) ---- */

static const char *const LOADERS[] = {"tsv", "csv", "text", "synthetic", "npy"};
static const char *const TOKENIZERS[] = {"chars", "words", "bpe"};
/* tokenize bpe: <pad>, <unk> and the 256 bytes come before any merge */
#define BPE_MIN_VOCAB 258
#define BPE_MAX_VOCAB 1000000

static const char *const TSV_CLAUSES[] = {"text", "features", "label", "labels", "header", "split",
                                          "seed",
                                          /* field sub-clauses, misplaced at top level */
                                          "column", "columns", "tokenize", "vocab", "maxlen",
                                          "shape"};
enum { DC_TEXT, DC_FEATURES, DC_LABEL, DC_LABELS, DC_HEADER, DC_SPLIT, DC_SEED, DC_COLUMN, DC_COLUMNS,
       DC_TOKENIZE, DC_VOCAB, DC_MAXLEN, DC_SHAPE };
static const char *const TEXT_CLAUSES[] = {"tokenize", "window", "vocab", "split", "seed"};
enum { TC_TOKENIZE, TC_WINDOW, TC_VOCAB, TC_SPLIT, TC_SEED };
static const char *const SYN_CLAUSES[] = {"split", "seed"};
static const char *const NPY_CLAUSES[] = {"label", "input", "split", "seed"};
enum { NC_LABEL, NC_INPUT, NC_SPLIT, NC_SEED };

static int read_split(Cur *k, Span at, double split[3]) {
  bool got[3] = {false, false, false};
  double v[3] = {0, 0, 0};
  int rc = 0, n = 0;
  while (at_arg(k)) {
    int which = opt_choice(k, setting_splits, NSPLITS);
    const AstWord *w = peek(k);
    if (which < 0) {
      if (n > 0 && w && w->kind == W_IDENT && is_clause_name(k, w->ident)) break;
      cerr(k, w ? w->span : at, "'split' expects train, valid or test followed by a fraction, "
                                "found %s", word_desc(k, w));
      return -1;
    }
    Span wat = k->c->w[k->i - 1].span;
    if (got[which]) {
      cerr(k, wat, "'%s' is given twice in 'split'", setting_splits[which]);
      rc = -1;
    }
    got[which] = true;
    if (arg_num(k, setting_splits[which], wat, &L_UNIT, &v[which])) return -1;
    n++;
  }
  if (n == 0) return missing(k, "split", at, "train, valid or test followed by a fraction");
  if (rc) return rc;
  double sum = v[0] + v[1] + v[2];
  if (sum > 1 + 1e-9) {
    cerr(k, at, "the split fractions add up to %g, more than 1", sum);
    return -1;
  }
  for (int i = 0; i < 3; i++) split[i] = v[i];
  return 0;
}

/* A column: an index (from 0), a string or an identifier naming a header
 * column. */
static int read_column_ref(Cur *k, const char *clause, Span at, int64_t *index,
                           const char **name) {
  const AstWord *w = peek(k);
  if (!at_arg(k)) return missing(k, clause, at, "a column index or name");
  if (w->kind == W_IDENT) {
    *index = -1;
    *name = w->ident;
    k->i++;
    return 0;
  }
  if (w->kind == W_VALUE && w->value->kind == EX_STR) {
    *index = -1;
    *name = w->value->str;
    k->i++;
    return 0;
  }
  int64_t v;
  Span where = w->span;
  if (arg_value(k, clause, at, true, &v, NULL, &where)) return -1;
  if (v < 0) {
    cerr(k, where, "a column index must be at least 0 (columns count from 0), found %lld",
         (long long)v);
    return -1;
  }
  *index = v;
  *name = NULL;
  return 0;
}

static int range_end(Cur *k, const AstExpr *e, int64_t *index, const char **name) {
  if (e->kind == EX_NAME || e->kind == EX_STR) {
    *index = -1;
    *name = e->str;
    return 0;
  }
  if (e->kind == EX_NUM && !e->is_int) {
    cerr(k, e->span, "a column index must be an integer, found %s", sema_span_text(k->p, e->span));
    return -1;
  }
  if (sema_eval_int(k->p, e, k->scope, index)) {
    k->bad = true;
    return -1;
  }
  if (*index < 0) {
    cerr(k, e->span, "a column index must be at least 0 (columns count from 0), found %lld",
         (long long)*index);
    return -1;
  }
  *name = NULL;
  return 0;
}

static int read_shape(Cur *k, Span at, IrType *t) {
  const AstWord *w = peek(k);
  if (!at_arg(k)) return missing(k, "shape", at, "a list of sizes such as [4, 8]");
  k->i++;
  if (w->kind != W_VALUE || w->value->kind != EX_LIST) {
    cerr(k, w->span, "'shape' expects a list of sizes such as [4, 8], found %s", word_desc(k, w));
    return -1;
  }
  const AstExpr *l = w->value;
  if (l->nargs == 0 || l->nargs > IR_MAX_RANK - 1) {
    cerr(k, w->span, "a shape has 1 to %d sizes, found %d", IR_MAX_RANK - 1, l->nargs);
    return -1;
  }
  memset(t, 0, sizeof *t);
  t->dtype = IR_F32;
  t->rank = (uint8_t)l->nargs;
  for (int i = 0; i < l->nargs; i++) {
    int64_t v;
    if (sema_eval_int(k->p, l->args[i], k->scope, &v)) {
      k->bad = true;
      return -1;
    }
    if (v < 1) {
      cerr(k, l->args[i]->span, "a size must be at least 1, found %lld", (long long)v);
      return -1;
    }
    t->dim[i] = v;
  }
  return 0;
}

/* A field being read: its own clauses may follow it on its line or on the
 * next lines (`text column 1` then `maxlen 48` means the same as one line). */
typedef struct FieldState {
  int kind;              /* DC_TEXT, DC_FEATURES, DC_LABEL, DC_LABELS */
  Span seen[4];          /* where each of its clauses was given */
  bool shape_given;
  bool bad;              /* an error in its clauses: skip the final checks */
} FieldState;

static const char *const TEXT_SUBS[] = {"column", "tokenize", "vocab", "maxlen"};
static const char *const FEAT_SUBS[] = {"columns", "shape"};
static const char *const LABEL_SUBS[] = {"column"};

static const char *const *field_subs(int kind, int *n) {
  *n = kind == DC_TEXT ? 4 : kind == DC_FEATURES || kind == DC_LABELS ? 2 : 1;
  return kind == DC_TEXT ? TEXT_SUBS
       : kind == DC_FEATURES || kind == DC_LABELS ? FEAT_SUBS : LABEL_SUBS;
}

static const char *field_name(int kind) {
  return kind == DC_TEXT ? "text" : kind == DC_FEATURES ? "features"
       : kind == DC_LABELS ? "labels" : "label";
}

static void field_start(int kind, Span at, DataField *f, FieldState *st) {
  memset(f, 0, sizeof *f);
  memset(st, 0, sizeof *st);
  st->kind = kind;
  f->role = kind == DC_TEXT ? FIELD_TEXT : kind == DC_FEATURES ? FIELD_FEATURES : FIELD_LABEL;
  f->range = kind == DC_FEATURES || kind == DC_LABELS;
  f->span = at;
  f->column = -1;
  f->tokenize = kind == DC_TEXT ? TOK_WORDS : TOK_NONE;
}

/* One clause of a field, its name at `sat` already consumed. */
static int field_clause(Cur *k, DataField *f, FieldState *st, int sub, Span sat) {
  int nsubs;
  const char *const *subs = field_subs(st->kind, &nsubs);
  const char *sname = subs[sub];
  if (st->seen[sub].line > 0) {
    Diag *d = cerr(k, sat, "duplicate clause '%s'", sname);
    diag_note(k->p->diags, d, st->seen[sub], "'%s' was first given here", sname);
  }
  st->seen[sub] = sat;
  int rc = 0, ch;
  if (strcmp(sname, "column") == 0) {
    rc = read_column_ref(k, "column", sat, &f->column, &f->column_name);
  } else if (strcmp(sname, "tokenize") == 0) {
    const AstWord *w = peek(k);
    if (at_arg(k) && w->kind == W_IDENT && strcmp(w->ident, "bpe") == 0) {
      cerr(k, w->span, "tokenize bpe is read by the text loader only; a text field of tsv or "
                       "csv data takes chars or words");
      k->i++;
      rc = -1;
    } else {
      rc = arg_choice(k, "tokenize", sat, TOKENIZERS, 2, &ch); /* chars, words */
    }
    if (!rc) f->tokenize = ch ? TOK_WORDS : TOK_CHARS;
  } else if (strcmp(sname, "vocab") == 0) {
    rc = arg_int(k, "vocab", sat, 3, &f->vocab);
  } else if (strcmp(sname, "maxlen") == 0) {
    rc = arg_int(k, "maxlen", sat, 1, &f->maxlen);
  } else if (strcmp(sname, "columns") == 0) {
    const AstWord *v = peek(k);
    if (!at_arg(k)) {
      rc = missing(k, "columns", sat, "a range of columns such as 2..9");
    } else if (v->kind == W_VALUE && v->value->kind == EX_RANGE) {
      k->i++;
      int r1 = range_end(k, v->value->a, &f->col_lo, &f->col_lo_name);
      int r2 = range_end(k, v->value->b, &f->col_hi, &f->col_hi_name);
      rc = r1 || r2 ? -1 : 0;
      if (!rc && f->col_lo >= 0 && f->col_hi >= 0 && f->col_hi < f->col_lo) {
        cerr(k, v->span, "the column range %lld..%lld is empty", (long long)f->col_lo,
             (long long)f->col_hi);
        rc = -1;
      }
    } else {
      rc = read_column_ref(k, "columns", sat, &f->col_lo, &f->col_lo_name);
      f->col_hi = f->col_lo;
      f->col_hi_name = f->col_lo_name;
    }
  } else if (strcmp(sname, "shape") == 0) {
    rc = read_shape(k, sat, &f->shape);
    st->shape_given = rc == 0;
  }
  return rc;
}

/* The field's clauses on the rest of its line. */
static int field_line(Cur *k, DataField *f, FieldState *st) {
  int nsubs;
  const char *const *subs = field_subs(st->kind, &nsubs);
  while (at_arg(k)) {
    const AstWord *w = peek(k);
    int sub = w->kind == W_IDENT ? name_index(subs, nsubs, w->ident) : -1;
    if (sub < 0) {
      if (w->kind == W_IDENT && is_clause_name(k, w->ident) &&
          name_index(k->names, DC_COLUMN, w->ident) >= 0)
        return 0; /* the next top-level clause */
      if (w->kind == W_IDENT) {
        const char *s = diag_suggest(w->ident, subs, nsubs);
        if (s)
          cerr(k, w->span, "unknown clause '%s' in a %s field; did you mean '%s'?", w->ident,
               field_name(st->kind), s);
        else
          cerr(k, w->span, "unknown clause '%s' in a %s field (expected %s)", w->ident,
               field_name(st->kind), name_list(k->p->arena, subs, nsubs));
        k->unknown = true;
      } else {
        cerr(k, w->span, "expected a clause name, found %s", word_desc(k, w));
      }
      return -1;
    }
    Span sat = w->span;
    k->i++;
    if (field_clause(k, f, st, sub, sat)) return -1;
  }
  return 0;
}

/* Checks a field once the block is read and fills its shape. */
static void field_finish(Cur *k, DataField *f, FieldState *st) {
  int nsubs;
  const char *const *subs = field_subs(st->kind, &nsubs);
  if (st->bad || k->unknown) return;
  if (st->seen[0].line == 0) {
    cerr(k, f->span, "a %s field needs '%s' (%s)", field_name(st->kind), subs[0],
         st->kind == DC_FEATURES ? "a range of columns such as 2..9"
                                 : "a column index from 0, or a header name");
    return;
  }
  if (st->kind == DC_TEXT) {
    if (f->maxlen == 0) {
      cerr(k, f->span, "a text field needs 'maxlen N' (the length of the model input it feeds)");
      return;
    }
    memset(&f->shape, 0, sizeof f->shape);
    f->shape.dtype = IR_I32;
    f->shape.rank = 1;
    f->shape.dim[0] = f->maxlen;
  } else if (st->kind == DC_FEATURES || st->kind == DC_LABELS) {
    bool named = f->col_lo < 0 || f->col_hi < 0;
    int64_t count = named ? 0 : f->col_hi - f->col_lo + 1;
    if (st->shape_given) {
      int64_t numel = 1;
      for (int i = 0; i < f->shape.rank; i++) numel *= f->shape.dim[i];
      if (!named && numel != count)
        cerr(k, st->seen[1], "shape holds %lld values but columns %lld..%lld are %lld",
             (long long)numel, (long long)f->col_lo, (long long)f->col_hi, (long long)count);
    } else if (named) {
      cerr(k, f->span, "%s given by column names need 'shape [N]' (the count is not "
                       "known before the header is read)", field_name(st->kind));
    } else {
      memset(&f->shape, 0, sizeof f->shape);
      f->shape.dtype = IR_F32;
      f->shape.rank = 1;
      f->shape.dim[0] = count;
    }
  } else {
    memset(&f->shape, 0, sizeof f->shape);
    f->shape.dtype = IR_I32;
  }
}

static int read_tsv_block(Cur *k, Span call, DataDecl *d) {
  Span at;
  int idx;
  bool header = false;
  Span label_at = SPAN_NONE;
  FieldState st[8];
  DataField *last = NULL;
  FieldState *last_st = NULL;
  while ((idx = next_clause(k, &at)) >= 0) {
    int rc = 0;
    switch (idx) {
    case DC_TEXT:
    case DC_FEATURES:
    case DC_LABEL:
    case DC_LABELS: {
      if (idx == DC_LABEL || idx == DC_LABELS) {
        if (label_at.line > 0) {
          Diag *g = cerr(k, at, "a data set has one target: a second '%s' field", k->names[idx]);
          diag_note(k->p->diags, g, label_at, "the first is here");
        }
        label_at = at;
      }
      if (d->nfields >= 8) {
        cerr(k, at, "too many fields (at most 8)");
        rc = -1;
        last = NULL;
        break;
      }
      last = &d->fields[d->nfields];
      last_st = &st[d->nfields];
      d->nfields++;
      field_start(idx, at, last, last_st);
      rc = field_line(k, last, last_st);
      if (rc) last_st->bad = true;
      break;
    }
    case DC_HEADER:
      once(k, idx, at);
      header = true;
      break;
    case DC_SPLIT:
      once(k, idx, at);
      rc = read_split(k, at, d->split);
      break;
    case DC_SEED: {
      once(k, idx, at);
      int64_t v;
      rc = arg_int(k, "seed", at, 0, &v);
      if (!rc) d->seed = (uint64_t)v;
      break;
    }
    default: {
      /* a field's clause on a line of its own: it continues the last field */
      int nsubs, sub = -1;
      const char *const *subs = last ? field_subs(last_st->kind, &nsubs) : NULL;
      if (subs) sub = name_index(subs, nsubs, k->names[idx]);
      if (sub < 0) {
        const char *owner = idx == DC_COLUMN ? "a 'text' or 'label'"
                          : idx == DC_COLUMNS || idx == DC_SHAPE ? "a 'features'" : "a 'text'";
        k->unknown = true;
        if (last)
          cerr(k, at, "'%s' belongs to %s field, but the field before it is '%s'",
               k->names[idx], owner, field_name(last_st->kind));
        else
          cerr(k, at, "'%s' belongs to %s field; write it after one, as in text column 1 "
                      "maxlen 48", k->names[idx], owner);
        rc = -1;
        break;
      }
      rc = field_clause(k, last, last_st, sub, at);
      if (!rc) rc = field_line(k, last, last_st);
      if (rc) last_st->bad = true;
      break;
    }
    }
    clause_end(k, rc);
  }
  bool named = false, input = false;
  for (int i = 0; i < d->nfields; i++) {
    DataField *f = &d->fields[i];
    field_finish(k, f, &st[i]);
    if (f->column_name || f->col_lo_name || f->col_hi_name) named = true;
    if (f->role != FIELD_LABEL) input = true;
  }
  d->header = header || named;
  if (!input && !k->bad) {
    const char *ln = d->loader == LOADER_CSV ? "csv" : "tsv";
    cerr(k, k->c ? k->c->span : call, "%s data needs at least one 'text' or 'features' field",
         ln);
  }
  return 0;
}

static int read_text_block(Cur *k, Span call, DataDecl *d) {
  Span at;
  int idx, ch;
  while ((idx = next_clause(k, &at)) >= 0) {
    once(k, idx, at);
    int rc = 0;
    int64_t v;
    switch (idx) {
    case TC_TOKENIZE:
      rc = arg_choice(k, "tokenize", at, TOKENIZERS, 3, &ch);
      if (!rc) d->tokenize = ch == 2 ? TOK_BPE : ch ? TOK_WORDS : TOK_CHARS;
      break;
    case TC_WINDOW: rc = arg_int(k, "window", at, 1, &d->window); break;
    case TC_VOCAB: rc = arg_int(k, "vocab", at, 3, &d->vocab); break;
    case TC_SPLIT: rc = read_split(k, at, d->split); break;
    case TC_SEED:
      rc = arg_int(k, "seed", at, 0, &v);
      if (!rc) d->seed = (uint64_t)v;
      break;
    }
    clause_end(k, rc);
  }
  if (!has(k, TC_WINDOW) && !k->unknown)
    cerr(k, k->c ? k->c->span : call, "text data needs 'window N' (the length of each example)");
  if (d->tokenize == TOK_BPE && !k->unknown) {
    if (!has(k, TC_VOCAB))
      cerr(k, k->first[TC_TOKENIZE], "tokenize bpe needs 'vocab N', the size of the vocabulary "
                                     "(at least %d: <pad>, <unk>, the 256 bytes, then the merges)",
           BPE_MIN_VOCAB);
    else if (d->vocab > 0 && d->vocab < BPE_MIN_VOCAB)
      cerr(k, k->first[TC_VOCAB], "vocab %lld is too small for tokenize bpe: <pad>, <unk> and "
                                  "the 256 bytes take %d ids before the first merge",
           (long long)d->vocab, BPE_MIN_VOCAB);
    else if (d->vocab > BPE_MAX_VOCAB)
      cerr(k, k->first[TC_VOCAB], "vocab %lld is too large for tokenize bpe (at most %d: "
                                  "%d merges)",
           (long long)d->vocab, BPE_MAX_VOCAB, BPE_MAX_VOCAB - BPE_MIN_VOCAB);
  }
  return 0;
}

static int read_syn_block(Cur *k, DataDecl *d) {
  Span at;
  int idx;
  while ((idx = next_clause(k, &at)) >= 0) {
    once(k, idx, at);
    int rc = 0;
    int64_t v;
    if (idx == 0) {
      rc = read_split(k, at, d->split);
    } else {
      rc = arg_int(k, "seed", at, 0, &v);
      if (!rc) d->seed = (uint64_t)v;
    }
    clause_end(k, rc);
  }
  return 0;
}

/* npy("x.npy") { label npy("y.npy")  split ...  seed N }: the input is the
 * first array, the target (if any) the label's. */
/* The path of an array clause: npy("y.npy") or a bare string. */
static int npy_path(Cur *k, const char *clause, Span at, DataField *f) {
  const AstWord *w = peek(k);
  if (at_arg(k) && w->kind == W_IDENT && strcmp(w->ident, "npy") == 0) k->i++;
  w = peek(k);
  int rc;
  if (at_arg(k) && !(w->kind == W_VALUE && w->value->kind == EX_STR)) {
    cerr(k, w->span, "the %s of npy data is an array, as in %s npy(\"%s.npy\"); found %s",
         clause, clause, strcmp(clause, "label") == 0 ? "y" : "x2", word_desc(k, w));
    k->i++;
    rc = -1;
  } else {
    rc = arg_str(k, clause, at, &f->path, &f->path_span);
  }
  if (!rc && !*f->path) {
    cerr(k, f->path_span, "the path of the %s array is empty", clause);
    rc = -1;
  }
  return rc;
}

/* npy("x.npy") { input npy("x2.npy") ... label npy("y.npy") }: the inputs
 * in order (the loader's array first), then the label. */
static int read_npy_block(Cur *k, DataDecl *d) {
  Span at;
  int idx;
  DataField *in = &d->fields[0];
  memset(in, 0, sizeof *in);
  in->role = FIELD_FEATURES;
  in->span = d->path_span;
  in->path = d->path;
  in->path_span = d->path_span;
  d->nfields = 1;
  DataField label;
  bool has_label = false;
  while ((idx = next_clause(k, &at)) >= 0) {
    if (idx != NC_INPUT) once(k, idx, at);
    int rc = 0;
    int64_t v;
    if (idx == NC_LABEL) {
      DataField *f = &label;
      memset(f, 0, sizeof *f);
      f->role = FIELD_LABEL;
      f->span = at;
      f->column = -1;
      f->shape.dtype = IR_I32;
      rc = npy_path(k, "label", at, f);
      if (!rc) has_label = true;
    } else if (idx == NC_INPUT) {
      if (d->nfields >= 7) {
        cerr(k, at, "npy data has at most 7 input arrays");
        rc = -1;
      } else {
        DataField *f = &d->fields[d->nfields];
        memset(f, 0, sizeof *f);
        f->role = FIELD_FEATURES;
        f->span = at;
        f->column = -1;
        rc = npy_path(k, "input", at, f);
        if (!rc) d->nfields++;
      }
    } else if (idx == NC_SPLIT) {
      rc = read_split(k, at, d->split);
    } else {
      rc = arg_int(k, "seed", at, 0, &v);
      if (!rc) d->seed = (uint64_t)v;
    }
    clause_end(k, rc);
  }
  if (has_label) d->fields[d->nfields++] = label;
  return 0;
}

/* synthetic(task: copy|reverse|recall, length: N, vocab: N, examples: N) */
static int read_synthetic_args(Program *p, const AstExpr *call, DataDecl *d) {
  static const char *const KW[] = {"task", "length", "vocab", "examples"};
  static const char *const TASKS[] = {"copy", "reverse", "recall"};
  bool bad = false, unknown = false;
  Span seen[4] = {SPAN_NONE, SPAN_NONE, SPAN_NONE, SPAN_NONE};
  if (call->nargs > 0) {
    diag_error(p->diags, call->args[0]->span,
               "synthetic takes keyword arguments only (task:, length:, vocab:, examples:)");
    bad = true;
  }
  for (int i = 0; i < call->nkwargs; i++) {
    const AstKwarg *kw = &call->kwargs[i];
    int idx = name_index(KW, 4, kw->name);
    if (idx < 0) {
      const char *s = diag_suggest(kw->name, KW, 4);
      if (s)
        diag_error(p->diags, kw->name_span, "unknown argument '%s' for synthetic; did you mean "
                                            "'%s'?", kw->name, s);
      else
        diag_error(p->diags, kw->name_span, "unknown argument '%s' for synthetic (expected task, "
                                            "length, vocab or examples)", kw->name);
      bad = unknown = true;
      continue;
    }
    if (seen[idx].line > 0) {
      Diag *g = diag_error(p->diags, kw->name_span, "argument '%s' is given twice", kw->name);
      diag_note(p->diags, g, seen[idx], "first given here");
      bad = true;
    }
    seen[idx] = kw->name_span;
    const AstExpr *v = kw->value;
    if (idx == 0) {
      const char *t = v && (v->kind == EX_NAME || v->kind == EX_STR) ? v->str : NULL;
      int ti = t ? name_index(TASKS, 3, t) : -1;
      if (ti < 0) {
        const char *s = t ? diag_suggest(t, TASKS, 3) : NULL;
        if (s)
          diag_error(p->diags, v->span, "unknown task '%s'; did you mean '%s'?", t, s);
        else if (t)
          diag_error(p->diags, v->span, "'task' expects copy, reverse or recall, found '%s'", t);
        else
          diag_error(p->diags, v ? v->span : kw->name_span,
                     "'task' expects copy, reverse or recall, found %s",
                     v ? sema_expr_kind(v) : "nothing");
        bad = true;
        continue;
      }
      d->task = (SynTask)ti;
      continue;
    }
    int64_t n;
    if (sema_eval_int(p, v, NULL, &n)) {
      bad = true;
      continue;
    }
    int64_t min = idx == 2 ? 3 : 1;
    if (n < min) {
      diag_error(p->diags, v->span, "%s must be at least %lld, found %lld", kw->name,
                 (long long)min, (long long)n);
      bad = true;
      continue;
    }
    if (idx == 1) d->length = n;
    if (idx == 2) d->vocab = n;
    if (idx == 3) d->examples = n;
  }
  if (!bad && d->task == SYN_RECALL && seen[1].line > 0 && seen[2].line > 0) {
    /* (T-1)/2 key/value pairs, keys and values from disjoint halves of the
     * V-2 symbols (docs/data.md) */
    int64_t pairs = (d->length - 1) / 2, keys = (d->vocab - 2) / 2;
    if (d->length < 3) {
      diag_error(p->diags, seen[1], "recall needs length at least 3 (pairs and a query), "
                                    "found %lld", (long long)d->length);
      bad = true;
    } else if (pairs > keys) {
      diag_error(p->diags, seen[2], "recall of length %lld holds %lld key/value pairs, which "
                                    "needs vocab at least %lld; found %lld",
                 (long long)d->length, (long long)pairs, (long long)(2 * pairs + 2),
                 (long long)d->vocab);
      bad = true;
    }
  }
  for (int i = 0; i < 3 && !unknown; i++)
    if (seen[i].line == 0) {
      diag_error(p->diags, call->span, "synthetic needs '%s:' (%s)", KW[i],
                 i == 0 ? "copy, reverse or recall" : i == 1 ? "the sequence length"
                                                             : "the number of token ids");
      bad = true;
    }
  return bad ? -1 : 0;
}

int clauses_data(Program *p, const AstItem *it, const char *spec_dir, DataDecl *d) {
  memset(d, 0, sizeof *d);
  d->name = it->name;
  d->span = it->span;
  d->spec_dir = spec_dir;
  d->split[0] = 0.8;
  d->split[1] = 0.1;
  d->split[2] = 0.1;
  d->path_span = SPAN_NONE;
  d->examples = 1000;
  d->tokenize = TOK_CHARS;
  const AstExpr *call = it->expr;
  if (!call || call->kind != EX_CALL) {
    diag_error(p->diags, call ? call->span : it->span,
               "a data set is made by a loader call such as tsv(\"data.tsv\") { ... }");
    return -1;
  }
  int li = name_index(LOADERS, 5, call->str);
  if (li < 0) {
    const char *s = diag_suggest(call->str, LOADERS, 5);
    if (s)
      diag_error(p->diags, call->name_span, "unknown loader '%s'; did you mean '%s'?", call->str,
                 s);
    else
      diag_error(p->diags, call->name_span,
                 "unknown loader '%s' (expected tsv, csv, text, synthetic or npy)", call->str);
    return -1;
  }
  d->loader = (LoaderKind)li;
  bool bad = false;
  if (d->loader == LOADER_SYNTHETIC) {
    if (read_synthetic_args(p, call, d)) bad = true;
  } else {
    const char *ln = LOADERS[li];
    if (call->nargs == 0) {
      diag_error(p->diags, call->span, "%s needs a path, as in %s(\"data.%s\")", ln, ln,
                 li == LOADER_TEXT ? "txt" : ln);
      bad = true;
    } else if (call->args[0]->kind != EX_STR) {
      diag_error(p->diags, call->args[0]->span, "the path of %s must be a string, found %s", ln,
                 sema_expr_kind(call->args[0]));
      bad = true;
    } else {
      d->path = call->args[0]->str;
      d->path_span = call->args[0]->span;
      if (!*d->path) {
        diag_error(p->diags, d->path_span, "the path of %s is empty", ln);
        bad = true;
      }
    }
    for (int i = 1; i < call->nargs; i++) {
      diag_error(p->diags, call->args[i]->span, "%s takes one argument, the path; found another",
                 ln);
      bad = true;
    }
    for (int i = 0; i < call->nkwargs; i++) {
      diag_error(p->diags, call->kwargs[i].name_span,
                 "%s takes no keyword arguments ('%s' is a clause: write it in the block)", ln,
                 call->kwargs[i].name);
      bad = true;
    }
  }
  Cur k;
  memset(&k, 0, sizeof k);
  switch (d->loader) {
  case LOADER_TSV:
  case LOADER_CSV:
    cur_init(&k, p, call->clauses, LOADERS[li], NULL, TSV_CLAUSES, 13);
    k.nlisted = DC_COLUMN;
    read_tsv_block(&k, call->span, d);
    break;
  case LOADER_TEXT:
    cur_init(&k, p, call->clauses, "text", NULL, TEXT_CLAUSES, 5);
    read_text_block(&k, call->span, d);
    break;
  case LOADER_SYNTHETIC:
    cur_init(&k, p, call->clauses, "synthetic", NULL, SYN_CLAUSES, 2);
    read_syn_block(&k, d);
    break;
  case LOADER_NPY:
    cur_init(&k, p, call->clauses, "npy", NULL, NPY_CLAUSES, 4);
    read_npy_block(&k, d);
    break;
  }
  if (k.bad) bad = true;
  return bad ? -1 : 0;
}

/* ---- train and optimizer blocks (language.md §8) ----
 * Their clauses are the settings of settings.def: the names, the limits,
 * the word lists and the optimizers a setting applies to come from there. */

void train_opt_defaults(TrainDecl *t, OptKind k) {
  t->opt = k;
  t->lr = 1e-3;
  t->momentum = 0;
  t->beta1 = 0.9;
  t->beta2 = 0.999;
  t->eps = 1e-8;
  t->weight_decay = k == OPT_ADAMW ? 0.01 : 0;
}

static void *field_of(TrainDecl *t, const Setting *s) { return (char *)t + s->field; }

/* A name where a setting's number is expected is a const (or a misspelt
 * one: sema_eval_int says "did you mean"); any other name is the wrong
 * value, worded as for --set ("'threads' expects an integer, found 'abc'").
 * True when that error was reported. */
static bool bare_word(Cur *k, const Setting *s) {
  const AstWord *w = peek(k);
  if (!w || w->kind != W_IDENT || is_clause_name(k, w->ident)) return false;
  const char *cands[256];
  int n = 0;
  for (int f = 0; f < k->p->nfiles; f++)
    for (int i = 0; i < k->p->files[f]->nitems && n < 256; i++) {
      const AstItem *it = k->p->files[f]->items[i];
      if (it && it->kind == IT_CONST && it->name) cands[n++] = it->name;
    }
  if (name_index(cands, n, w->ident) >= 0 || diag_suggest(w->ident, cands, n)) return false;
  cerr(k, w->span, "'%s' expects %s, found '%s'", s->key,
       s->kind == SETK_INT ? "an integer" : "a number", w->ident);
  k->i++;
  return true;
}

/* An integer or number setting: checked against its limits, stored in its
 * field. */
static int arg_setting(Cur *k, const Setting *s, Span at, TrainDecl *t) {
  if (bare_word(k, s)) return -1;
  if (s->kind == SETK_INT) {
    int64_t v;
    if (arg_int_lim(k, s->key, at, &s->lim, &v)) return -1;
    memcpy(field_of(t, s), &v, sizeof v); /* int64_t, or the uint64_t seed */
    return 0;
  }
  double v;
  if (arg_num(k, s->key, at, &s->lim, &v)) return -1;
  memcpy(field_of(t, s), &v, sizeof v);
  return 0;
}

static int read_opt_block(Program *p, const AstClauses *c, TrainDecl *t) {
  static const char *const CTX[] = {"optimizer sgd", "optimizer adam", "optimizer adamw"};
  const char *names[SETTING_COUNT];
  SettingId ids[SETTING_COUNT];
  int n = setting_keys(IN_OPTIMIZER, names, ids);
  Cur k;
  cur_init(&k, p, c, CTX[t->opt], NULL, names, n);
  Span at;
  int idx;
  while ((idx = next_clause(&k, &at)) >= 0) {
    once(&k, idx, at);
    const Setting *s = setting_get(ids[idx]);
    char msg[128];
    int rc = 0;
    if (setting_check_optimizer(s, t->opt, msg, sizeof msg)) {
      cerr(&k, at, "%s", msg);
      rc = -1;
    } else if (ids[idx] == SET_betas) {
      rc = arg_num(&k, s->key, at, &s->lim, &t->beta1);
      if (!rc) rc = arg_num(&k, s->key, at, &s->lim, &t->beta2);
    } else {
      rc = arg_setting(&k, s, at, t);
    }
    clause_end(&k, rc);
  }
  return k.bad ? -1 : 0;
}

static int read_eval(Cur *k, Span at, TrainDecl *t) {
  int split;
  if (arg_choice(k, "eval", at, setting_splits, NSPLITS, &split)) return -1;
  t->eval_split = (SplitKind)split;
  t->eval_on = true;
  t->eval_every_steps = 0;
  const AstWord *w = peek(k);
  if (!w || w->kind != W_IDENT || strcmp(w->ident, "every") != 0) return 0;
  Span every = w->span;
  k->i++;
  w = peek(k);
  if (w && w->kind == W_IDENT && strcmp(w->ident, "epoch") == 0) {
    k->i++;
    return 0;
  }
  int64_t n;
  if (!at_arg(k)) return missing(k, "every", every, "'epoch' or a number of steps");
  if (arg_int(k, "every", every, 1, &n)) return -1;
  t->eval_every_steps = n;
  w = peek(k);
  if (w && w->kind == W_IDENT && (strcmp(w->ident, "steps") == 0 || strcmp(w->ident, "step") == 0))
    k->i++;
  return 0;
}

/* schedule constant | warmup N [constant|linear|cosine] */
static int read_schedule(Cur *k, const Setting *s, Span at, TrainDecl *t) {
  int ch;
  if (arg_choice(k, s->key, at, s->words, s->nwords, &ch)) return -1;
  if (ch == 0) {
    t->sched = SCHED_CONSTANT;
    return 0;
  }
  Span wat = k->c->w[k->i - 1].span;
  const AstWord *nw = peek(k);
  if (!at_arg(k) ||
      (nw->kind == W_IDENT && name_index(setting_schedule_after, NSCHEDULE_AFTER, nw->ident) >= 0))
    return missing(k, "warmup", wat, "the number of warmup steps, as in warmup 100 cosine");
  if (arg_setting(k, setting_get(SET_warmup), wat, t)) return -1;
  int after = opt_choice(k, setting_schedule_after, NSCHEDULE_AFTER);
  t->sched = after == 1 ? SCHED_WARMUP_LINEAR : after == 2 ? SCHED_WARMUP_COSINE
                                                           : SCHED_WARMUP_CONSTANT;
  return 0;
}

static int read_metrics(Cur *k, const Setting *s, Span at, TrainDecl *t) {
  int n = 0, ch;
  while (at_arg(k)) {
    const AstWord *w = peek(k);
    if (w->kind == W_IDENT && is_clause_name(k, w->ident)) break;
    if (arg_choice(k, s->key, at, s->words, s->nwords, &ch)) return -1;
    t->metrics |= 1u << ch;
    n++;
  }
  if (n == 0)
    return missing(k, s->key, at, name_list(k->p->arena, s->words, s->nwords));
  return 0;
}

int clauses_train(Program *p, const AstItem *it, TrainDecl *t) {
  memset(t, 0, sizeof *t);
  t->model = it->name;
  t->data = it->on;
  t->span = it->span;
  t->model_span = it->name_span;
  t->data_span = it->on_span;
  train_opt_defaults(t, OPT_ADAM);
  t->sched = SCHED_CONSTANT;
  t->metrics = 0;
  t->seed = 1;
  const char *names[SETTING_COUNT], *opt_names[SETTING_COUNT];
  SettingId ids[SETTING_COUNT];
  int n = setting_keys(IN_TRAIN, names, ids);
  int nopt = setting_keys(IN_OPTIMIZER, opt_names, NULL);
  Cur k;
  cur_init(&k, p, it->clauses, "train", NULL, names, n);
  k.foreign = opt_names;
  k.nforeign = nopt;
  k.foreign_hint = "is an optimizer setting: write it in the optimizer block, as in "
                   "optimizer adam { lr 1e-3 }";
  Span at, epochs_at = SPAN_NONE, steps_at = SPAN_NONE;
  bool batch = false;
  int idx, ch;
  while ((idx = next_clause(&k, &at)) >= 0) {
    once(&k, idx, at);
    const Setting *s = setting_get(ids[idx]);
    int rc = 0;
    switch (ids[idx]) {
    case SET_optimizer: {
      rc = arg_choice(&k, s->key, at, s->words, s->nwords, &ch);
      if (rc) break;
      train_opt_defaults(t, (OptKind)ch);
      const AstClauses *b = opt_block(&k);
      if (b && read_opt_block(p, b, t)) k.bad = true;
      break;
    }
    case SET_schedule: rc = read_schedule(&k, s, at, t); break;
    case SET_eval: rc = read_eval(&k, at, t); break;
    case SET_metrics: rc = read_metrics(&k, s, at, t); break;
    case SET_save:
    case SET_log: {
      const char *v;
      rc = arg_str(&k, s->key, at, &v, NULL);
      if (!rc) memcpy(field_of(t, s), &v, sizeof v);
      break;
    }
    default:
      if (ids[idx] == SET_batch) batch = true;
      if (ids[idx] == SET_epochs) epochs_at = at;
      if (ids[idx] == SET_steps) steps_at = at;
      rc = arg_setting(&k, s, at, t);
      break;
    }
    clause_end(&k, rc);
  }
  Span where = it->clauses ? it->clauses->span : it->span;
  bool epochs = epochs_at.line > 0, steps = steps_at.line > 0;
  if (k.unknown) {
    /* a misspelt clause: do not also report it missing */
  } else if (!batch) cerr(&k, where, "train needs 'batch N' (examples per step)");
  if (epochs && steps) {
    bool steps_last = steps_at.off > epochs_at.off;
    Diag *d = cerr(&k, steps_last ? steps_at : epochs_at, "%s",
                   settings_exclusive("epochs", "steps"));
    diag_note(p->diags, d, steps_last ? epochs_at : steps_at, "the other one is here");
  } else if (!epochs && !steps && !k.unknown) {
    cerr(&k, where, "train needs 'epochs N' or 'steps N' (how long to train)");
  }
  if (!t->metrics) t->metrics = MET_LOSS;
  return k.bad ? -1 : 0;
}
