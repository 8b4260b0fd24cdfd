/* test_lexer.c - the re2c lexer: every token kind, escapes, newline rules,
 * numbers, and every lexical error with its line:col. */
#include <criterion/criterion.h>
#include <string.h>

#include "../lang/ast.h"
#include "../lang/lex.h"
#include "parser.h"
#include "testutil.h"

enum { MAXTOK = 4096 };

typedef struct Lexed {
  Arena a;
  SrcSet s;
  DiagList d;
  Tok t[MAXTOK];
  int n;
} Lexed;

static Lexed *lex_all(const char *text, size_t len) {
  Lexed *x = calloc(1, sizeof *x);
  cr_assert_not_null(x);
  arena_init(&x->a, ra_alloc_default());
  src_init(&x->s, &x->a);
  diag_init(&x->d, &x->a, &x->s);
  int id = src_add(&x->s, "t.ra", text, len);
  Lexer L;
  lex_init(&L, &x->a, &x->d, &x->s.files[id], id);
  for (;;) {
    cr_assert(x->n < MAXTOK, "too many tokens");
    Tok t = lex_next(&L);
    x->t[x->n++] = t;
    if (t.kind == TK_EOF || t.kind == TK_STOP) break;
  }
  /* the end is sticky */
  if (x->t[x->n - 1].kind == TK_EOF) cr_assert_eq(lex_next(&L).kind, TK_EOF);
  return x;
}

static Lexed *lex_str(const char *text) { return lex_all(text, strlen(text)); }

static void lexed_free(Lexed *x) {
  arena_free(&x->a);
  free(x);
}

static void expect_kinds(const Lexed *x, const int *kinds, int n) {
  for (int i = 0; i < n && i < x->n; i++)
    cr_assert_eq(x->t[i].kind, kinds[i], "token %d: kind %d (%s), want %d (%s)", i,
                 x->t[i].kind, lex_kind_name(x->t[i].kind), kinds[i], lex_kind_name(kinds[i]));
  cr_assert_eq(x->n, n, "got %d tokens, want %d", x->n, n);
}

#define KINDS(x, ...)                                              \
  do {                                                             \
    static const int k_[] = {__VA_ARGS__};                         \
    expect_kinds((x), k_, (int)(sizeof k_ / sizeof k_[0]));        \
  } while (0)

/* The rendered diagnostics, for exact comparisons. */
static const char *diags(Lexed *x) { return diag_render(&x->d, 0); }

static void expect_error(Lexed *x, const char *want) {
  const char *got = diags(x);
  cr_assert(strstr(got, want) != NULL, "missing diagnostic\n  %s\ngot:\n%s", want, got);
}

Test(lexer, keywords) {
  Lexed *x = lex_str("use const data model block train on input target output loss repeat "
                     "return extern fn from grad");
  KINDS(x, TK_USE, TK_CONST, TK_DATA, TK_MODEL, TK_BLOCK, TK_TRAIN, TK_ON, TK_INPUT, TK_TARGET,
        TK_OUTPUT, TK_LOSS, TK_REPEAT, TK_RETURN, TK_EXTERN, TK_FN, TK_FROM, TK_GRAD,
        TK_NEWLINE, TK_EOF);
  for (int i = 0; i < 17; i++) {
    cr_assert(x->t[i].kw);
    cr_assert(ast_is_keyword(x->t[i].str), "%s", x->t[i].str);
  }
  cr_assert_str_eq(x->t[5].str, "train");
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
}

Test(lexer, identifiers_and_type_words) {
  Lexed *x = lex_str("f32 int class foo_1 _x X9 useful fnord");
  KINDS(x, TK_NAME, TK_NAME, TK_NAME, TK_NAME, TK_NAME, TK_NAME, TK_NAME, TK_NAME, TK_NEWLINE,
        TK_EOF);
  const char *want[] = {"f32", "int", "class", "foo_1", "_x", "X9", "useful", "fnord"};
  for (int i = 0; i < 8; i++) {
    cr_assert_str_eq(x->t[i].str, want[i]);
    cr_assert_eq(x->t[i].len, strlen(want[i]));
    cr_assert(!x->t[i].kw);
  }
  cr_assert(!ast_is_keyword("f32") && !ast_is_keyword("int") && !ast_is_keyword("class"));
  lexed_free(x);
}

Test(lexer, punctuation) {
  Lexed *x = lex_str("( ) [ ] { } , : ; = + - * / % @ -> ..");
  KINDS(x, TK_LPAREN, TK_RPAREN, TK_LBRACKET, TK_RBRACKET, TK_LBRACE, TK_RBRACE, TK_COMMA,
        TK_COLON, TK_SEMI, TK_EQ, TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_PERCENT, TK_AT,
        TK_ARROW, TK_DOTDOT, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->t[16].span.len, 2);
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
}

Test(lexer, numbers) {
  Lexed *x = lex_str("12 0.5 3e-3 1E5 2.5e+2 007 9223372036854775807");
  KINDS(x, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NUMBER,
        TK_NEWLINE, TK_EOF);
  cr_assert(x->t[0].is_int);
  cr_assert_eq(x->t[0].ival, 12);
  cr_assert_eq(x->t[0].num, 12.0);
  cr_assert(!x->t[1].is_int);
  cr_assert_eq(x->t[1].num, 0.5);
  cr_assert(!x->t[2].is_int);
  cr_assert_float_eq(x->t[2].num, 3e-3, 1e-18);
  cr_assert_eq(x->t[3].num, 1e5);
  cr_assert(!x->t[3].is_int);
  cr_assert_eq(x->t[4].num, 250.0);
  cr_assert_eq(x->t[5].ival, 7);
  cr_assert_eq(x->t[6].ival, INT64_MAX);
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
}

Test(lexer, float_values_are_exact) {
  Lexed *x = lex_str("0.1 123.456e2 1.5e-3 0.000125 6.02214076e23 00.50 1e0 2.0E-0");
  double want[] = {0.1, 123.456e2, 1.5e-3, 0.000125, 6.02214076e23, 0.5, 1.0, 2.0};
  for (int i = 0; i < 8; i++) {
    cr_assert_eq(x->t[i].kind, TK_NUMBER);
    cr_assert(!x->t[i].is_int);
    cr_assert_eq(x->t[i].num, want[i], "token %d: %.17g want %.17g", i, x->t[i].num, want[i]);
  }
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
}

Test(lexer, range_is_not_a_float) {
  Lexed *x = lex_str("1..64 [a..b]");
  KINDS(x, TK_NUMBER, TK_DOTDOT, TK_NUMBER, TK_LBRACKET, TK_NAME, TK_DOTDOT, TK_NAME,
        TK_RBRACKET, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->t[0].ival, 1);
  cr_assert(x->t[0].is_int);
  cr_assert_eq(x->t[2].ival, 64);
  cr_assert_eq(x->t[2].span.col, 4);
  lexed_free(x);
}

Test(lexer, string_escapes) {
  Lexed *x = lex_str("\"a\\\"b\\\\c\\nd\\te\" \"\" \"caf\xc3\xa9 # not a comment\"");
  KINDS(x, TK_STRING, TK_STRING, TK_STRING, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->t[0].len, 9);
  cr_assert(memcmp(x->t[0].str, "a\"b\\c\nd\te", 9) == 0);
  cr_assert_eq(x->t[0].span.len, 15);  /* the source text, quotes included */
  cr_assert_eq(x->t[1].len, 0);
  cr_assert_str_eq(x->t[1].str, "");
  cr_assert_str_eq(x->t[2].str, "caf\xc3\xa9 # not a comment");
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
}

Test(lexer, newline_tokens_and_merging) {
  Lexed *x = lex_str("\n\n# leading comment\na\n\n  # comment line\n\nb # trailing\nc");
  KINDS(x, TK_NAME, TK_NEWLINE, TK_NAME, TK_NEWLINE, TK_NAME, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->t[0].span.line, 4);
  cr_assert_eq(x->t[1].span.line, 4);  /* the newline token sits at the line end */
  cr_assert_eq(x->t[1].span.col, 2);
  cr_assert_eq(x->t[2].span.line, 8);
  cr_assert_eq(x->t[4].span.line, 9);
  cr_assert_eq(x->t[5].span.len, 0);   /* added at the end of the file */
  lexed_free(x);
}

Test(lexer, no_newlines_inside_parens_and_brackets) {
  Lexed *x = lex_str("f(a,\n  b)\n[1,\n 2]\n");
  KINDS(x, TK_NAME, TK_LPAREN, TK_NAME, TK_COMMA, TK_NAME, TK_RPAREN, TK_NEWLINE, TK_LBRACKET,
        TK_NUMBER, TK_COMMA, TK_NUMBER, TK_RBRACKET, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->t[4].span.line, 2);
  cr_assert_eq(x->t[4].span.col, 3);
  lexed_free(x);
}

Test(lexer, newlines_inside_braces_even_within_parens) {
  Lexed *x = lex_str("m {\n a\n}\nf(x {\n h 8\n })\n");
  KINDS(x, TK_NAME, TK_LBRACE, TK_NEWLINE, TK_NAME, TK_NEWLINE, TK_RBRACE, TK_NEWLINE,
        TK_NAME, TK_LPAREN, TK_NAME, TK_LBRACE, TK_NEWLINE, TK_NAME, TK_NUMBER, TK_NEWLINE,
        TK_RBRACE, TK_RPAREN, TK_NEWLINE, TK_EOF);
  lexed_free(x);
}

Test(lexer, semicolons_and_crlf) {
  Lexed *x = lex_str("a = 1; b\r\nc\r\n");
  KINDS(x, TK_NAME, TK_EQ, TK_NUMBER, TK_SEMI, TK_NAME, TK_NEWLINE, TK_NAME, TK_NEWLINE,
        TK_EOF);
  cr_assert_eq(x->t[6].span.line, 2);
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
}

Test(lexer, spans_line_and_column_in_bytes) {
  Lexed *x = lex_str("const d = 64\n\tx  = \"\xc3\xa9\" + y\n");
  cr_assert_eq(x->t[1].span.line, 1);
  cr_assert_eq(x->t[1].span.col, 7);
  cr_assert_eq(x->t[1].span.off, 6);
  cr_assert_eq(x->t[3].span.col, 11);
  cr_assert_eq(x->t[3].span.len, 2);
  Tok y = x->t[9];
  cr_assert_eq(y.kind, TK_NAME);
  cr_assert_str_eq(y.str, "y");
  cr_assert_eq(y.span.line, 2);
  cr_assert_eq(y.span.col, 14);  /* the tab and the two-byte character count as bytes */
  lexed_free(x);
}

Test(lexer, empty_and_comment_only_files) {
  Lexed *x = lex_str("");
  KINDS(x, TK_EOF);
  lexed_free(x);
  x = lex_str("# only a comment");
  KINDS(x, TK_EOF);
  lexed_free(x);
  x = lex_str("\n\n  \n");
  KINDS(x, TK_EOF);
  cr_assert_eq(x->t[0].span.line, 4);
  lexed_free(x);
}

/* ---- errors ---- */

Test(lexer, invalid_characters_are_located_and_skipped) {
  Lexed *x = lex_str("a $ b\n  \x07 c ! d");
  KINDS(x, TK_NAME, TK_NAME, TK_NEWLINE, TK_NAME, TK_NAME, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->d.nerrors, 3);
  expect_error(x, "t.ra:1:3: error: invalid character '$'\n");
  expect_error(x, "t.ra:2:3: error: invalid character (byte 0x07)\n");
  expect_error(x, "t.ra:2:7: error: invalid character '!'\n");
  lexed_free(x);
}

Test(lexer, nul_bytes) {
  Lexed *x = lex_all("a\0b\n\"x\0y\"\n# c\0d\n", 16);
  KINDS(x, TK_NAME, TK_NAME, TK_NEWLINE, TK_STRING, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->d.nerrors, 3);
  expect_error(x, "t.ra:1:2: error: NUL byte in the source\na?b\n ^\n");
  expect_error(x, "t.ra:2:3: error: NUL byte in a string\n");
  expect_error(x, "t.ra:3:4: error: NUL byte in a comment\n");
  cr_assert_str_eq(x->t[3].str, "xy");
  lexed_free(x);
}

Test(lexer, utf8_rules) {
  /* valid in strings and comments; outside them an error naming the char */
  Lexed *x = lex_str("\"\xe2\x82\xac\" # \xf0\x9f\x98\x80\nx \xc3\xa9 y");
  KINDS(x, TK_STRING, TK_NEWLINE, TK_NAME, TK_NAME, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->d.nerrors, 1);
  expect_error(x, "t.ra:2:3: error: invalid character '\xc3\xa9' (U+00E9); outside strings and "
                  "comments only ASCII is allowed\n");
  lexed_free(x);
}

Test(lexer, invalid_utf8) {
  Lexed *x = lex_str("a \xff b\n\"o\xc3(k\"\n# \xed\xa0\x80 surrogate\n\xc0\xaf");
  KINDS(x, TK_NAME, TK_NAME, TK_NEWLINE, TK_STRING, TK_NEWLINE, TK_EOF);
  expect_error(x, "t.ra:1:3: error: invalid UTF-8 byte 0xFF\n");
  expect_error(x, "t.ra:2:3: error: invalid UTF-8 byte 0xC3 in a string\n");
  expect_error(x, "t.ra:3:3: error: invalid UTF-8 byte 0xED in a comment\n");
  expect_error(x, "t.ra:4:1: error: invalid UTF-8 byte 0xC0\n");  /* overlong form */
  cr_assert_str_eq(x->t[3].str, "o(k");
  lexed_free(x);
}

Test(lexer, identifier_too_long) {
  size_t n = 1u << 20;
  char *src = malloc(n + 16);
  memcpy(src, "x ", 2);
  memset(src + 2, 'q', n);
  strcpy(src + 2 + n, " y");
  Lexed *x = lex_str(src);
  KINDS(x, TK_NAME, TK_NAME, TK_NAME, TK_NEWLINE, TK_EOF);
  expect_error(x, "t.ra:1:3: error: identifier is 1048576 bytes long; the limit is 255\n");
  cr_assert_eq(x->t[1].len, 255);
  cr_assert_eq(x->t[1].span.len, n);
  cr_assert_eq(x->t[2].span.col, (int)n + 4);
  lexed_free(x);
  free(src);
  x = lex_str("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
              "aaaaaaaaaaaa");  /* exactly 255 bytes: fine */
  cr_assert_eq(x->t[0].len, 255);
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
}

Test(lexer, integer_overflow) {
  Lexed *x = lex_str("a = 9223372036854775808\nb = 99999999999999999999999");
  KINDS(x, TK_NAME, TK_EQ, TK_NUMBER, TK_NEWLINE, TK_NAME, TK_EQ, TK_NUMBER, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->d.nerrors, 2);
  expect_error(x, "t.ra:1:5: error: integer literal does not fit in 64 bits\n"
                  "a = 9223372036854775808\n"
                  "    ^~~~~~~~~~~~~~~~~~~\n");
  expect_error(x, "t.ra:2:5: error: integer literal does not fit in 64 bits\n");
  lexed_free(x);
}

Test(lexer, float_out_of_range) {
  Lexed *x = lex_str("1e999 1.5e-999 1e-300 0.0e-999");
  KINDS(x, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->d.nerrors, 2);
  expect_error(x, "t.ra:1:1: error: floating-point literal is out of range\n");
  expect_error(x, "t.ra:1:7: error: floating-point literal is out of range\n");
  cr_assert_float_eq(x->t[2].num, 1e-300, 1e-310);
  cr_assert_eq(x->t[3].num, 0.0);  /* zero written small is still zero */
  lexed_free(x);
}

Test(lexer, malformed_numbers) {
  Lexed *x = lex_str("3e 2.5E+ 12abc 1e5x 1.");
  KINDS(x, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NUMBER, TK_NEWLINE, TK_EOF);
  expect_error(x, "t.ra:1:1: error: exponent has no digits\n");
  expect_error(x, "t.ra:1:4: error: exponent has no digits\n");
  expect_error(x, "t.ra:1:12: error: invalid suffix 'abc' on a number\n");
  expect_error(x, "t.ra:1:19: error: invalid suffix 'x' on a number\n");
  expect_error(x, "t.ra:1:22: error: invalid character '.'\n");
  lexed_free(x);
}

Test(lexer, bad_strings) {
  Lexed *x = lex_str("a = \"x\\qy\"\nb = \"open\nc = \"\\\x01\" \"end");
  KINDS(x, TK_NAME, TK_EQ, TK_STRING, TK_NEWLINE, TK_NAME, TK_EQ, TK_STRING, TK_NEWLINE,
        TK_NAME, TK_EQ, TK_STRING, TK_STRING, TK_NEWLINE, TK_EOF);
  expect_error(x, "t.ra:1:7: error: unknown escape sequence '\\q' (known: \\\" \\\\ \\n \\t)\n"
                  "a = \"x\\qy\"\n"
                  "      ^~\n");
  expect_error(x, "t.ra:2:5: error: missing closing '\"' before end of line\n");
  expect_error(x, "t.ra:3:6: error: unknown escape sequence: '\\' followed by byte 0x01\n");
  expect_error(x, "t.ra:3:10: error: missing closing '\"' before end of file\n");
  cr_assert_str_eq(x->t[2].str, "xy");
  cr_assert_str_eq(x->t[6].str, "open");
  cr_assert_str_eq(x->t[11].str, "end");
  lexed_free(x);
}

Test(lexer, nesting_limit_stops) {
  char src[600];
  memset(src, '(', 300);
  memset(src + 300, ')', 300);
  src[599] = 0;
  Lexed *x = lex_str(src);
  cr_assert_eq(x->n, 257);  /* 256 '(' then the stop */
  cr_assert_eq(x->t[255].kind, TK_LPAREN);
  cr_assert_eq(x->t[256].kind, TK_STOP);
  cr_assert_eq(x->d.nerrors, 1);
  expect_error(x, "t.ra:1:257: error: nesting is too deep (more than 256 levels)\n");
  lexed_free(x);
  /* mixed brackets count together */
  char mix[800];
  for (int i = 0; i < 300; i++) mix[i] = "([{"[i % 3];
  mix[300] = 0;
  x = lex_str(mix);
  cr_assert_eq(x->t[x->n - 1].kind, TK_STOP);
  expect_error(x, "t.ra:1:257: error: nesting is too deep (more than 256 levels)\n");
  lexed_free(x);
}

Test(lexer, unclosed_brackets_reported_once_and_closed) {
  Lexed *x = lex_str("model m {\n  x = f(a,\n    [1\n");
  KINDS(x, TK_MODEL, TK_NAME, TK_LBRACE, TK_NEWLINE, TK_NAME, TK_EQ, TK_NAME, TK_LPAREN,
        TK_NAME, TK_COMMA, TK_LBRACKET, TK_NUMBER, TK_RBRACKET, TK_RPAREN, TK_RBRACE,
        TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->d.nerrors, 1);
  cr_assert_str_eq(diags(x), "t.ra:3:7: error: expected ']' to close '[' opened at line 3\n"
                             "    [1\n"
                             "      ^\n"
                             "t.ra:3:5: note: to match this '['\n"
                             "    [1\n"
                             "    ^\n");
  lexed_free(x);
}

Test(lexer, mismatched_closer_pops_to_its_opener) {
  /* ')' closes the '(' and the '[' left open inside it: the newline counts */
  Lexed *x = lex_str("f([a)\nb");
  KINDS(x, TK_NAME, TK_LPAREN, TK_LBRACKET, TK_NAME, TK_RPAREN, TK_NEWLINE, TK_NAME,
        TK_NEWLINE, TK_EOF);
  cr_assert_eq(x->d.nerrors, 0);
  lexed_free(x);
  /* a closer without an opener is left to the parser */
  x = lex_str("}\na");
  KINDS(x, TK_RBRACE, TK_NEWLINE, TK_NAME, TK_NEWLINE, TK_EOF);
  lexed_free(x);
}

Test(lexer, stops_after_max_errors) {
  char src[2001];
  memset(src, '$', 2000);
  src[2000] = 0;
  Lexed *x = lex_str(src);
  cr_assert_eq(x->t[x->n - 1].kind, TK_STOP);
  cr_assert_eq(x->d.nerrors, 51);
  expect_error(x, "t.ra:1:50: error: invalid character '$'\n");
  expect_error(x, "rac: error: too many errors (more than 50); stopping here\n");
  cr_assert(strstr(diags(x), "t.ra:1:51:") == NULL);
  lexed_free(x);
}

Test(lexer, kind_names) {
  cr_assert_str_eq(lex_kind_name(TK_NEWLINE), "end of line");
  cr_assert_str_eq(lex_kind_name(TK_EOF), "end of file");
  cr_assert_str_eq(lex_kind_name(TK_ARROW), "'->'");
  cr_assert_str_eq(lex_kind_name(TK_GRAD), "'grad'");
}
