/* test_diag.c - source sets, spans, clang-style rendering and "did you mean". */
#include <criterion/criterion.h>
#include <string.h>

#include "../lang/diag.h"
#include "testutil.h"

typedef struct Fix {
  Arena a;
  SrcSet s;
  DiagList d;
} Fix;

static void fix_init(Fix *f) {
  arena_init(&f->a, ra_alloc_default());
  src_init(&f->s, &f->a);
  diag_init(&f->d, &f->a, &f->s);
}

static Span sp(int file, int line, int col, unsigned off, unsigned len) {
  Span s = {file, line, col, off, len};
  return s;
}

Test(diag, src_add_copies_and_finds_dir) {
  Fix f;
  fix_init(&f);
  char text[] = "abc";
  int a = src_add(&f.s, "examples/licenses.ra", text, 3);
  int b = src_add(&f.s, "top.ra", "x\0y", 3);
  int c = src_add(&f.s, "/root.ra", "", 0);
  int d = src_add(&f.s, "a/b/c.ra", "", 0);
  int e = src_add(&f.s, "x5.ra", "", 0);  /* grows the file array */
  text[0] = 'z';
  cr_assert_eq(a, 0);
  cr_assert_eq(b, 1);
  cr_assert_eq(e, 4);
  cr_assert_str_eq(f.s.files[a].text, "abc");
  cr_assert_str_eq(f.s.files[a].dir, "examples");
  cr_assert_str_eq(f.s.files[b].dir, ".");
  cr_assert_str_eq(f.s.files[c].dir, "/");
  cr_assert_str_eq(f.s.files[d].dir, "a/b");
  cr_assert_eq(f.s.files[b].len, 3);
  cr_assert_eq(f.s.files[b].text[2], 'y');
  cr_assert_eq(f.s.files[b].text[3], 0);
  arena_free(&f.a);
}

Test(diag, span_join_covers_both) {
  Span a = sp(0, 1, 3, 2, 4), b = sp(0, 1, 10, 9, 2);
  Span j = span_join(a, b);
  cr_assert_eq(j.off, 2);
  cr_assert_eq(j.len, 9);
  cr_assert_eq(j.col, 3);
  Span k = span_join(b, a);
  cr_assert_eq(k.off, 2);
  cr_assert_eq(k.len, 9);
  Span n = span_join(SPAN_NONE, b);
  cr_assert_eq(n.off, 9);
}

Test(diag, error_with_caret_and_range) {
  Fix f;
  fix_init(&f);
  int id = src_add(&f.s, "m.ra", "model m {\n  x = foo(y)\n}\n", 25);
  diag_error(&f.d, sp(id, 2, 7, 16, 3), "unknown function '%s'", "foo");
  cr_assert_eq(f.d.nerrors, 1);
  cr_assert_str_eq(diag_render(&f.d, 0),
                   "m.ra:2:7: error: unknown function 'foo'\n"
                   "  x = foo(y)\n"
                   "      ^~~\n");
  arena_free(&f.a);
}

Test(diag, notes_have_their_own_snippet) {
  Fix f;
  fix_init(&f);
  int id = src_add(&f.s, "n.ra", "a = 1\nb = a\n", 12);
  Diag *g = diag_error(&f.d, sp(id, 2, 5, 10, 1), "'a' is used wrongly");
  diag_note(&f.d, g, sp(id, 1, 1, 0, 1), "'a' was bound here");
  diag_note(&f.d, g, SPAN_NONE, "a note without a place");
  diag_warning(&f.d, sp(id, 1, 5, 4, 1), "just a warning");
  cr_assert_eq(f.d.nerrors, 1);
  cr_assert_str_eq(diag_render(&f.d, 0),
                   "n.ra:2:5: error: 'a' is used wrongly\n"
                   "b = a\n"
                   "    ^\n"
                   "n.ra:1:1: note: 'a' was bound here\n"
                   "a = 1\n"
                   "^\n"
                   "rac: note: a note without a place\n"
                   "n.ra:1:5: warning: just a warning\n"
                   "a = 1\n"
                   "    ^\n");
  cr_assert_str_eq(diag_render_one(&f.d, g, 0),
                   "n.ra:2:5: error: 'a' is used wrongly\n"
                   "b = a\n"
                   "    ^\n"
                   "n.ra:1:1: note: 'a' was bound here\n"
                   "a = 1\n"
                   "^\n"
                   "rac: note: a note without a place\n");
  arena_free(&f.a);
}

Test(diag, no_location_and_no_line) {
  Fix f;
  fix_init(&f);
  int id = src_add(&f.s, "big.ra", "", 0);
  diag_error(&f.d, SPAN_NONE, "cannot open '%s'", "x.ra");
  diag_error(&f.d, sp(id, 0, 0, 0, 0), "file is too large");
  cr_assert_str_eq(diag_render(&f.d, 0),
                   "rac: error: cannot open 'x.ra'\n"
                   "big.ra: error: file is too large\n");
  arena_free(&f.a);
}

Test(diag, tabs_kept_and_caret_aligned) {
  Fix f;
  fix_init(&f);
  const char *t = "\tx =\tbad\n";
  int id = src_add(&f.s, "t.ra", t, strlen(t));
  diag_error(&f.d, sp(id, 1, 6, 5, 3), "bad");
  cr_assert_str_eq(diag_render(&f.d, 0),
                   "t.ra:1:6: error: bad\n"
                   "\tx =\tbad\n"
                   "\t   \t^~~\n");
  arena_free(&f.a);
}

Test(diag, unsafe_bytes_shown_as_question_marks) {
  Fix f;
  fix_init(&f);
  const char t[] = "a\x01" "b\0c\xff" "d \xc3\xa9 e\x1b[31m\n";
  int id = src_add(&f.s, "u.ra", t, sizeof t - 1);
  /* the caret under 'e' counts the two-byte 'é' as one column */
  diag_error(&f.d, sp(id, 1, 12, 11, 1), "here");
  diag_error(&f.d, SPAN_NONE, "message with \x01 and \xff bytes");
  cr_assert_str_eq(diag_render(&f.d, 0),
                   "u.ra:1:12: error: here\n"
                   "a?b?c?d \xc3\xa9 e?[31m\n"
                   "          ^\n"
                   "rac: error: message with ? and ? bytes\n");
  arena_free(&f.a);
}

Test(diag, span_clipped_to_its_line) {
  Fix f;
  fix_init(&f);
  const char *t = "abc def\nnext\n";
  int id = src_add(&f.s, "c.ra", t, strlen(t));
  diag_error(&f.d, sp(id, 1, 5, 4, 100), "long span");
  diag_error(&f.d, sp(id, 1, 8, 7, 0), "at the end of the line");
  diag_error(&f.d, sp(id, 3, 1, 13, 0), "at the end of the file");
  cr_assert_str_eq(diag_render(&f.d, 0),
                   "c.ra:1:5: error: long span\n"
                   "abc def\n"
                   "    ^~~\n"
                   "c.ra:1:8: error: at the end of the line\n"
                   "abc def\n"
                   "       ^\n"
                   "c.ra:3:1: error: at the end of the file\n"
                   "\n"
                   "^\n");
  arena_free(&f.a);
}

Test(diag, crlf_line_end_not_shown) {
  Fix f;
  fix_init(&f);
  const char *t = "x = 1\r\ny = 2\r\n";
  int id = src_add(&f.s, "w.ra", t, strlen(t));
  diag_error(&f.d, sp(id, 2, 5, 11, 1), "two");
  cr_assert_str_eq(diag_render(&f.d, 0), "w.ra:2:5: error: two\ny = 2\n    ^\n");
  arena_free(&f.a);
}

Test(diag, long_lines_clipped_around_caret) {
  Fix f;
  fix_init(&f);
  char t[1001];
  for (int i = 0; i < 1000; i++) t[i] = (char)('a' + i % 26);
  t[1000] = 0;
  t[500] = '@';
  int id = src_add(&f.s, "l.ra", t, 1000);
  diag_error(&f.d, sp(id, 1, 501, 500, 1), "at");
  char *r = diag_render(&f.d, 0);
  const char *line2 = strchr(r, '\n') + 1;
  const char *line3 = strchr(line2, '\n') + 1;
  cr_assert(strncmp(line2, "...", 3) == 0, "clipped start: %s", line2);
  size_t n2 = (size_t)(strchr(line2, '\n') - line2);
  cr_assert_eq(n2, 3 + 120 + 3, "window is 120 bytes plus two ellipses, got %zu", n2);
  cr_assert(strncmp(line2 + n2 - 3, "...", 3) == 0);
  /* the caret sits under the '@' */
  const char *caret = strchr(line3, '^');
  cr_assert_not_null(caret);
  cr_assert_eq(line2[caret - line3], '@');
  arena_free(&f.a);
}

Test(diag, too_many_errors_then_one_line) {
  Fix f;
  fix_init(&f);
  int id = src_add(&f.s, "e.ra", "x\n", 2);
  cr_assert_eq(f.d.max_errors, 50);
  for (int i = 0; i < 70; i++) {
    Diag *g = diag_error(&f.d, sp(id, 1, 1, 0, 1), "error %d", i);
    diag_note(&f.d, g, sp(id, 1, 1, 0, 1), "note %d", i);  /* NULL parent is fine */
    if (i < 50) cr_assert_not_null(g);
    else cr_assert_null(g);
  }
  cr_assert_eq(f.d.nerrors, 51);
  int errors = 0, notes = 0, last_is_too_many = 0;
  for (Diag *g = f.d.head; g; g = g->next) {
    errors++;
    for (Diag *n = g->notes; n; n = n->next) notes++;
    last_is_too_many = strstr(g->msg, "too many errors") != NULL;
  }
  cr_assert_eq(errors, 51);
  cr_assert_eq(notes, 50);
  cr_assert(last_is_too_many);
  char *r = diag_render(&f.d, 0);
  cr_assert(strstr(r, "rac: error: too many errors (more than 50); stopping here\n") != NULL);
  cr_assert(strstr(r, "error 49") && !strstr(r, "error 50"));
  arena_free(&f.a);
}

Test(diag, color_codes_only_when_asked) {
  Fix f;
  fix_init(&f);
  int id = src_add(&f.s, "k.ra", "abc\n", 4);
  diag_error(&f.d, sp(id, 1, 2, 1, 1), "c");
  cr_assert(strchr(diag_render(&f.d, 0), '\033') == NULL);
  char *r = diag_render(&f.d, 1);
  cr_assert(strstr(r, "\033[1;31merror: ") != NULL, "%s", r);
  cr_assert(strstr(r, "\033[1;32m^") != NULL);
  arena_free(&f.a);
}

Test(diag, suggest_closest_name) {
  const char *c[] = {"embed", "linear", "layernorm", "attention", "softmax", "relu"};
  cr_assert_str_eq(diag_suggest("lienar", c, 6), "linear");       /* swap */
  cr_assert_str_eq(diag_suggest("atention", c, 6), "attention");  /* deletion */
  cr_assert_str_eq(diag_suggest("softmaxx", c, 6), "softmax");    /* insertion */
  cr_assert_str_eq(diag_suggest("rel", c, 6), "relu");            /* len 3: distance 1 */
  cr_assert_null(diag_suggest("xyz", c, 6));
  cr_assert_null(diag_suggest("lyrnrm", c, 6));  /* distance 3 > 6/3 */
  cr_assert_null(diag_suggest("embed", c, 6));   /* the name itself is no suggestion */
  cr_assert_null(diag_suggest("", c, 6));
  cr_assert_null(diag_suggest("x", NULL, 0));
}

Test(diag, suggest_threshold_and_ties) {
  const char *c[] = {"abcd", "abce", "abcf"};
  cr_assert_str_eq(diag_suggest("abcx", c, 3), "abcd");  /* ties go to the first */
  const char *d[] = {"a", "ab"};
  cr_assert_str_eq(diag_suggest("b", d, 2), "a");  /* max(1, 1/3) = 1 */
  const char *e[] = {"abcdefghi", "abcdefxyz"};
  cr_assert_str_eq(diag_suggest("abcdefgzz", e, 2), "abcdefghi");  /* distance 2 <= 3 */
  cr_assert_null(diag_suggest("abczzzzzz", e, 2));                  /* distance 5 > 3 */
  char big[400];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  const char *f[] = {big};
  cr_assert_null(diag_suggest(big, f, 1));  /* too long to compare: no crash */
}
