/* parser.y - the grammar of .ra files (lemon; language.md §3, §7-§9).
 *
 * Actions are one call into the builders of ast.c (astb.h); the parse state
 * travels in %extra_context, so there are no globals.  Every node lives in
 * the compilation arena, so no %destructor is needed: abandoning a partial
 * tree on an error frees nothing and leaks nothing.
 *
 * Keywords fall back to NAME (%fallback): where a keyword cannot start
 * anything it is read as a name, and the builders report "'train' is a
 * keyword and cannot be used as a name" - except inside clause blocks,
 * where every identifier and keyword is a plain word.
 *
 * Recovery: `error` productions resynchronise at the end of a statement, of
 * a body or clause block, or of an item, so one run reports several syntax
 * errors.  parse.c skips whole { } groups while the parser discards tokens,
 * so a bad line with a block does not close the enclosing body.
 *
 * The stack is a fixed array (YYSTACKDEPTH) inside the parser object, which
 * lives in the arena; overflowing it is a located error, never a crash.
 */

%name lang_parser
%token_prefix TK_
%token_type {Tok}
%extra_context {PState *ps}
%stack_size 2048
%start_symbol file

%include {
/* no tracing globals and no assert() (the library never aborts) */
#define NDEBUG 1
#define lang_parser_ENGINEALWAYSONSTACK 1
#include <stdbool.h>
#include <string.h>

#include "astb.h"

struct yyParser;
static void rap_syntax_error(struct yyParser *p, PState *ps, Tok t);
/* After an error production is reduced the parser is back in step: let the
 * next error be reported at once (lemon would wait for three shifts). */
#define RESYNCED() (yypParser->yyerrcnt = -1)
}

%syntax_error { rap_syntax_error(yypParser, ps, TOKEN); }

%stack_overflow { parse_too_deep(ps); }

/* Token codes: fixed order, so parser.h is stable. */
%token NAME NUMBER STRING NEWLINE SEMI LPAREN RPAREN LBRACKET RBRACKET LBRACE RBRACE
       COMMA COLON EQ PLUS MINUS STAR SLASH PERCENT AT ARROW DOTDOT CMP
       USE CONST DATA MODEL BLOCK TRAIN ON INPUT TARGET OUTPUT LOSS REPEAT RETURN
       EXTERN FN FROM GRAD.

%fallback NAME USE CONST DATA MODEL BLOCK TRAIN ON INPUT TARGET OUTPUT LOSS REPEAT RETURN
          EXTERN FN FROM GRAD.

/* `f(x) {` takes the block as the call's clauses (so `repeat f(x) { }`
 * cannot be written; repeat counts are constants anyway). */
%nonassoc CALL_NOBLOCK.
%nonassoc LBRACE.

%type name {Tok}
%type xfrom {Tok}
%type xgrad {Tok}
%type expr {AstExpr *}
%type sum {AstExpr *}
%type term {AstExpr *}
%type unary {AstExpr *}
%type primary {AstExpr *}
%type call {AstExpr *}
%type litem {AstExpr *}
%type wvalue {AstExpr *}
%type rbound {AstExpr *}
%type args {ArgBuf *}
%type arglist {ArgBuf *}
%type litems {PtrVec *}
%type llist {PtrVec *}
%type exprs {PtrVec *}
%type words {WordBuf *}
%type cblock {AstClauses *}
%type type {AstType *}
%type tdims {TDims *}
%type xret {AstType *}
%type stmts {PtrVec *}
%type stmt {AstStmt *}
%type body {Body *}
%type bparams {ParamBuf *}
%type bplist {ParamBuf *}
%type xparams {ParamBuf *}
%type xplist {ParamBuf *}

/* ---- file and items ---- */

file ::= items.

items ::= .
items ::= items sep.
items ::= items item sep.
items ::= items error sep.                  { RESYNCED(); }

sep ::= NEWLINE.
sep ::= SEMI.

item ::= USE(K) STRING(S).                  { astb_use(ps, K, S); }
item ::= CONST(K) name(N) EQ expr(E).       { astb_const(ps, K, N, E); }
item ::= DATA(K) name(N) EQ expr(E).        { astb_data(ps, K, N, E); }
item ::= BLOCK(K) name(N) LPAREN bparams(P) RPAREN body(B).
                                            { astb_block(ps, K, N, P, B); }
item ::= MODEL(K) name(N) body(B).          { astb_model(ps, K, N, B); }
item ::= TRAIN(K) name(M) ON name(D) cblock(C).
                                            { astb_train(ps, K, M, D, C); }
item ::= EXTERN(K) FN name(N) LPAREN xparams(P) RPAREN xret(R) FROM xfrom(F) xgrad(G).
                                            { astb_extern(ps, K, N, P, R, F, G); }

name(A) ::= NAME(T).                        { A = astb_name_tok(ps, T); }

/* block parameters: x, key: default */
bparams(A) ::= .                            { A = NULL; }
bparams(A) ::= bplist(L).                   { A = L; }
bparams(A) ::= bplist(L) COMMA.             { A = L; }
bplist(A) ::= name(N).                      { A = astb_bparam(ps, NULL, N, NULL); }
bplist(A) ::= name(N) COLON expr(E).        { A = astb_bparam(ps, NULL, N, E); }
bplist(A) ::= bplist(L) COMMA name(N).      { A = astb_bparam(ps, L, N, NULL); }
bplist(A) ::= bplist(L) COMMA name(N) COLON expr(E).
                                            { A = astb_bparam(ps, L, N, E); }

/* extern parameters: x: f32, n: int */
xparams(A) ::= .                            { A = NULL; }
xparams(A) ::= xplist(L).                   { A = L; }
xparams(A) ::= xplist(L) COMMA.             { A = L; }
xplist(A) ::= name(N) COLON type(T).        { A = astb_xparam(ps, NULL, N, T); }
xplist(A) ::= xplist(L) COMMA name(N) COLON type(T).
                                            { A = astb_xparam(ps, L, N, T); }
xret(A) ::= .                               { A = NULL; }
xret(A) ::= ARROW type(T).                  { A = T; }
xfrom(A) ::= STRING(S).                     { A = S; }
xfrom(A) ::= NAME(H).                       { A = H; }
xgrad(A) ::= .                              { memset(&A, 0, sizeof A); }
xgrad(A) ::= GRAD name(N).                  { A = N; }

/* ---- types: f32[8, 8], int, class(8)[T], f32[] ---- */

type(A) ::= NAME(W) tdims(D).               { A = astb_type(ps, W, NULL, W, D); }
type(A) ::= NAME(W) LPAREN expr(K) RPAREN(R) tdims(D).
                                            { A = astb_type(ps, W, K, R, D); }
tdims(A) ::= .                              { A = NULL; }
tdims(A) ::= LBRACKET(L) RBRACKET(R).       { A = astb_dims(ps, L, NULL, R); }
tdims(A) ::= LBRACKET(L) exprs(E) RBRACKET(R).
                                            { A = astb_dims(ps, L, E, R); }
tdims(A) ::= LBRACKET(L) exprs(E) COMMA RBRACKET(R).
                                            { A = astb_dims(ps, L, E, R); }
exprs(A) ::= expr(E).                       { A = astb_exprs(ps, NULL, E); }
exprs(A) ::= exprs(L) COMMA expr(E).        { A = astb_exprs(ps, L, E); }

/* ---- statements ---- */

body(A) ::= LBRACE(L) stmts(S) RBRACE(R).   { A = astb_body(ps, S, NULL, L, R); }
body(A) ::= LBRACE(L) stmts(S) stmt(T) RBRACE(R).
                                            { A = astb_body(ps, S, T, L, R); }
body(A) ::= LBRACE(L) stmts(S) error RBRACE(R).
                                            { A = astb_body(ps, S, NULL, L, R); RESYNCED(); }

stmts(A) ::= .                              { A = NULL; }
stmts(A) ::= stmts(L) sep.                  { A = L; }
stmts(A) ::= stmts(L) stmt(T) sep.          { A = astb_stmts(ps, L, T); }
stmts(A) ::= stmts(L) error sep.            { A = L; RESYNCED(); }

stmt(A) ::= INPUT(K) name(N) COLON type(T). { A = astb_decl(ps, ST_INPUT, K, N, T); }
stmt(A) ::= TARGET(K) name(N) COLON type(T).
                                            { A = astb_decl(ps, ST_TARGET, K, N, T); }
stmt(A) ::= name(N) EQ expr(E).             { A = astb_bind(ps, N, E); }
stmt(A) ::= OUTPUT(K) name(N) EQ expr(E).   { A = astb_output(ps, K, N, E); }
stmt(A) ::= LOSS(K) expr(E).                { A = astb_keyexpr(ps, ST_LOSS, K, E); }
stmt(A) ::= RETURN(K) expr(E).              { A = astb_keyexpr(ps, ST_RETURN, K, E); }
stmt(A) ::= REPEAT(K) expr(E) body(B).      { A = astb_repeat(ps, K, E, B); }

/* ---- expressions: + - < * / % @ < unary - < call ---- */

expr(A) ::= sum(E).                         { A = E; }
sum(A) ::= sum(L) PLUS(O) term(R).          { A = astb_binary(ps, L, O, R); }
sum(A) ::= sum(L) MINUS(O) term(R).         { A = astb_binary(ps, L, O, R); }
sum(A) ::= term(E).                         { A = E; }
term(A) ::= term(L) STAR(O) unary(R).       { A = astb_binary(ps, L, O, R); }
term(A) ::= term(L) SLASH(O) unary(R).      { A = astb_binary(ps, L, O, R); }
term(A) ::= term(L) PERCENT(O) unary(R).    { A = astb_binary(ps, L, O, R); }
term(A) ::= term(L) AT(O) unary(R).         { A = astb_binary(ps, L, O, R); }
term(A) ::= unary(E).                       { A = E; }
unary(A) ::= MINUS(O) unary(E).             { A = astb_neg(ps, O, E); }
unary(A) ::= primary(E).                    { A = E; }
primary(A) ::= NUMBER(T).                   { A = astb_num(ps, T); }
primary(A) ::= STRING(T).                   { A = astb_str(ps, T); }
primary(A) ::= NAME(T).                     { A = astb_name(ps, T); }
primary(A) ::= LPAREN(L) expr(E) RPAREN(R). { A = astb_paren(ps, L, E, R); }
primary(A) ::= LBRACKET(L) litems(I) RBRACKET(R).
                                            { A = astb_list(ps, L, I, R); }
primary(A) ::= call(E).                     { A = E; }

call(A) ::= NAME(N) LPAREN args(G) RPAREN(R). [CALL_NOBLOCK]
                                            { A = astb_call(ps, N, G, R, NULL); }
call(A) ::= NAME(N) LPAREN args(G) RPAREN(R) cblock(C).
                                            { A = astb_call(ps, N, G, R, C); }
args(A) ::= .                               { A = NULL; }
args(A) ::= arglist(L).                     { A = L; }
args(A) ::= arglist(L) COMMA.               { A = L; }
arglist(A) ::= expr(E).                     { A = astb_arg(ps, NULL, E); }
arglist(A) ::= NAME(K) COLON expr(E).       { A = astb_kwarg(ps, NULL, K, E); }
arglist(A) ::= arglist(L) COMMA expr(E).    { A = astb_arg(ps, L, E); }
arglist(A) ::= arglist(L) COMMA NAME(K) COLON expr(E).
                                            { A = astb_kwarg(ps, L, K, E); }

/* list items, with a..b ranges */
litems(A) ::= .                             { A = NULL; }
litems(A) ::= llist(L).                     { A = L; }
litems(A) ::= llist(L) COMMA.               { A = L; }
llist(A) ::= litem(E).                      { A = astb_exprs(ps, NULL, E); }
llist(A) ::= llist(L) COMMA litem(E).       { A = astb_exprs(ps, L, E); }
litem(A) ::= expr(E).                       { A = E; }
litem(A) ::= expr(L) DOTDOT expr(R).        { A = astb_range(ps, L, R); }

/* ---- clause blocks: flat word lists ---- */

cblock(A) ::= LBRACE(L) words(W) RBRACE(R). { A = astb_clauses(ps, L, W, R); }
cblock(A) ::= LBRACE(L) words(W) error RBRACE(R).
                                            { A = astb_clauses(ps, L, W, R); RESYNCED(); }

words(A) ::= .                              { A = astb_words(ps); }
words(A) ::= words(L) NAME(T).              { A = astb_word_ident(ps, L, T); }
/* < <= > >= (a repulsion block's `when diversity < 0.6`): a word of its own */
words(A) ::= words(L) CMP(T).               { A = astb_word_ident(ps, L, T); }
words(A) ::= words(L) wvalue(V).            { A = astb_word_value(ps, L, V); }
words(A) ::= words(L) rbound(X) DOTDOT rbound(Y).
                                            { A = astb_word_value(ps, L, astb_range(ps, X, Y)); }
words(A) ::= words(L) cblock(C).            { A = astb_word_block(ps, L, C); }
words(A) ::= words(L) NEWLINE(T).           { A = astb_word_sep(ps, L, T); }
words(A) ::= words(L) SEMI(T).              { A = astb_word_sep(ps, L, T); }

wvalue(A) ::= NUMBER(T).                    { A = astb_num(ps, T); }
wvalue(A) ::= MINUS(M) NUMBER(T).           { A = astb_neg(ps, M, astb_num(ps, T)); }
wvalue(A) ::= STRING(T).                    { A = astb_str(ps, T); }
wvalue(A) ::= LBRACKET(L) litems(I) RBRACKET(R).
                                            { A = astb_list(ps, L, I, R); }
wvalue(A) ::= LPAREN(L) expr(E) RPAREN(R).  { A = astb_paren(ps, L, E, R); }
rbound(A) ::= NUMBER(T).                    { A = astb_num(ps, T); }
rbound(A) ::= MINUS(M) NUMBER(T).           { A = astb_neg(ps, M, astb_num(ps, T)); }
rbound(A) ::= NAME(T).                      { A = astb_name(ps, T); }

%code {
/* yy_find_shift_action without keyword fallback: a keyword counts as
 * expected only where the grammar names it. */
static YYACTIONTYPE rap_shift_action(YYCODETYPE look, YYACTIONTYPE stateno) {
  if (stateno > YY_MAX_SHIFT) return stateno;
  int i = yy_shift_ofst[stateno] + look;
  if (i < 0 || i >= (int)YY_NLOOKAHEAD || yy_lookahead[i] != look) return yy_default[stateno];
  return yy_action[i];
}

/* Would the parser, in its current state, accept token kind tok?  Runs the
 * LR automaton (reductions only) until the token would be shifted or
 * rejected.  The state stack is not copied: states pushed by reductions go
 * to a small overlay above the part of the real stack still in use. */
static bool rap_accepts(const yyParser *p, int tok, bool fallback) {
  YYACTIONTYPE over[64];
  int m = 0;
  int base = (int)(p->yytos - p->yystack);
  YYACTIONTYPE act = p->yytos->stateno;
  for (int guard = 0; guard < 4 * YYSTACKDEPTH; guard++) {
    act = fallback ? yy_find_shift_action((YYCODETYPE)tok, act)
                   : rap_shift_action((YYCODETYPE)tok, act);
    if (act >= YY_MIN_REDUCE && act <= YY_MAX_REDUCE) {
      unsigned r = (unsigned)(act - YY_MIN_REDUCE);
      int k = -yyRuleInfoNRhs[r];
      if (m >= k) {
        m -= k;
      } else {
        base -= k - m;
        m = 0;
        if (base < 0) return false;
      }
      YYACTIONTYPE top = m > 0 ? over[m - 1] : p->yystack[base].stateno;
      act = yy_find_reduce_action(top, (YYCODETYPE)yyRuleInfoLhs[r]);
      if (m >= (int)(sizeof over / sizeof over[0])) return true;
      over[m++] = act;
    } else if (act <= YY_MAX_SHIFTREDUCE || act == YY_ACCEPT_ACTION) {
      return true;
    } else {
      return false;
    }
  }
  return false;
}

/* The token kinds the parser would accept now (keywords only where the
 * grammar names them, not through the fallback to NAME). */
static void rap_expected(const yyParser *p, bool *acc) {
  for (int k = 0; k < YYNTOKEN; k++) acc[k] = k != YYERRORSYMBOL && rap_accepts(p, k, false);
}

/* Only reached when parse.c did not see the error coming (it checks every
 * token first, while the stack still shows what was expected). */
static void rap_syntax_error(yyParser *p, PState *ps, Tok t) {
  if (ps->reported) return;
  bool acc[YYNTOKEN];
  rap_expected(p, acc);
  parse_syntax_error(ps, t, acc, YYNTOKEN);
}

/* Whether the grammar names token kind `kind` as acceptable now. */
bool lang_parser_expects(const void *parser, int kind) {
  return rap_accepts(parser, kind, false);
}

/* Reports a syntax error at t before it is fed, if the parser will reject
 * it and lemon would report it (not during recovery).  Returns whether it
 * reported. */
bool lang_parser_precheck(void *parser, PState *ps, Tok t) {
  yyParser *p = parser;
  if (p->yyerrcnt >= 0 || rap_accepts(p, t.kind, true)) return false;
  bool acc[YYNTOKEN];
  rap_expected(p, acc);
  parse_syntax_error(ps, t, acc, YYNTOKEN);
  return true;
}

/* The engine is a fixed-size struct (its stack inside); parse.c allocates
 * it through the RaAlloc, unzeroed, since only the used part of the stack
 * is ever touched. */
size_t lang_parser_size(void) { return sizeof(yyParser); }

void lang_parser_init(void *p, PState *ps) { lang_parserInit(p, ps); }

/* True while the parser is discarding tokens after a syntax error. */
bool lang_parser_recovering(const void *p) {
  const yyParser *q = p;
  return q->yytos > q->yystack && q->yytos->major == YYERRORSYMBOL;
}
}
