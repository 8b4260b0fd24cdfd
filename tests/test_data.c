/* test_data.c - the data loaders (tsv, csv, text, synthetic), tokenizers,
 * vocabularies, splits, shuffles, batches and every malformed-input error. */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "testutil.h"
#include "../runtime/data/data.h"
#include "../runtime/exec/rng.h"

static char err[512];

static DataDecl decl(LoaderKind k, const char *path) {
  DataDecl d;
  memset(&d, 0, sizeof d);
  d.name = "t";
  d.loader = k;
  d.path = path;
  d.split[0] = 1.0;
  d.seed = 7;
  return d;
}

static DataField text_field(int64_t col, const char *name, TokKind tok, int64_t vocab, int64_t maxlen) {
  DataField f;
  memset(&f, 0, sizeof f);
  f.role = FIELD_TEXT;
  f.column = col;
  f.column_name = name;
  f.tokenize = tok;
  f.vocab = vocab;
  f.maxlen = maxlen;
  return f;
}

static DataField label_field(int64_t col, const char *name) {
  DataField f;
  memset(&f, 0, sizeof f);
  f.role = FIELD_LABEL;
  f.column = col;
  f.column_name = name;
  return f;
}

static DataField feat_field(int64_t lo, int64_t hi, const char *lon, const char *hin) {
  DataField f;
  memset(&f, 0, sizeof f);
  f.role = FIELD_FEATURES;
  f.col_lo = lo;
  f.col_hi = hi;
  f.col_lo_name = lon;
  f.col_hi_name = hin;
  return f;
}

/* small.tsv: label, text (words), x1..x2 */
static DataDecl small_decl(bool by_name) {
  DataDecl d = decl(LOADER_TSV, "tests/data/small.tsv");
  d.header = true;
  d.fields[0] = by_name ? text_field(-1, "text", TOK_WORDS, 100, 8) : text_field(1, NULL, TOK_WORDS, 100, 8);
  d.fields[1] = by_name ? feat_field(-1, -1, "x1", "x2") : feat_field(2, 3, NULL, NULL);
  d.fields[1].shape.rank = 1;
  d.fields[1].shape.dim[0] = 2;
  d.fields[2] = by_name ? label_field(-1, "label") : label_field(0, NULL);
  d.nfields = 3;
  return d;
}

static DataSet *load_ok(const DataDecl *d) {
  err[0] = 0;
  DataSet *ds = data_load(ra_alloc_default(), d, err, sizeof err);
  cr_assert(ds != NULL, "load failed: %s", err);
  return ds;
}

static void expect_error(const DataDecl *d, const char *want) {
  err[0] = 0;
  DataSet *ds = data_load(ra_alloc_default(), d, err, sizeof err);
  cr_assert(ds == NULL, "expected an error: %s", want);
  cr_assert_str_eq(err, want);
}

/* Token ids of example ex, field k, as words joined by '|'. */
static const char *decode(const DataSet *ds, int k, int64_t ex, char *buf, size_t n) {
  int64_t T = ds->in_type[k].dim[0];
  int32_t x[256];
  void *in[8] = {NULL};
  cr_assert(T <= 256);
  in[k] = x;
  data_example(ds, ex, in, NULL);
  buf[0] = 0;
  for (int64_t j = 0; j < T; j++) {
    if (j) strncat(buf, "|", n - strlen(buf) - 1);
    strncat(buf, ds->vocab.words[x[j]], n - strlen(buf) - 1);
  }
  return buf;
}

Test(data, tsv_columns_by_name) {
  DataDecl d = small_decl(true);
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->n, 20);
  cr_assert_eq(ds->nin, 2);
  cr_assert_eq(ds->in_type[0].dtype, IR_I32);
  cr_assert_eq(ds->in_type[0].rank, 1);
  cr_assert_eq(ds->in_type[0].dim[0], 8);
  cr_assert_eq(ds->in_type[1].dtype, IR_F32);
  cr_assert_eq(ds->in_type[1].dim[0], 2);
  cr_assert_eq(ds->classes, 3);
  cr_assert_str_eq(ds->label_names[0], "eggs");
  cr_assert_str_eq(ds->label_names[1], "ham");
  cr_assert_str_eq(ds->label_names[2], "spam");
  cr_assert_eq(ds->tgt_type.rank, 0);
  cr_assert_eq(ds->tgt_data[0], 2);  /* spam */
  cr_assert_eq(ds->tgt_data[1], 1);  /* ham */
  cr_assert_eq(ds->tgt_data[2], 0);  /* eggs */
  char buf[256];
  cr_assert_str_eq(decode(ds, 0, 0, buf, sizeof buf), "win|a|free|prize|now|!|<pad>|<pad>");
  cr_assert_str_eq(decode(ds, 0, 2, buf, sizeof buf), "scrambled|,|fried|or|boiled|?|<pad>|<pad>");
  const float *x = ds->in_data[1];
  cr_assert_float_eq(x[0], 1.0f, 0);
  cr_assert_float_eq(x[1], 0.5f, 0);
  cr_assert_float_eq(x[2 * 6 + 1], 0.125f, 0);
  data_free(ds);
}

Test(data, tsv_columns_by_index_match_names) {
  DataDecl a = small_decl(true), b = small_decl(false);
  DataSet *x = load_ok(&a), *y = load_ok(&b);
  cr_assert_eq(x->n, y->n);
  cr_assert_eq(x->vocab.n, y->vocab.n);
  cr_assert(memcmp(x->in_data[0], y->in_data[0], sizeof(int32_t) * 20 * 8) == 0);
  cr_assert(memcmp(x->in_data[1], y->in_data[1], sizeof(float) * 20 * 2) == 0);
  cr_assert(memcmp(x->tgt_data, y->tgt_data, sizeof(int32_t) * 20) == 0);
  data_free(x);
  data_free(y);
}

Test(data, truncation_to_maxlen) {
  DataDecl d = small_decl(false);
  d.fields[0].maxlen = 3;
  DataSet *ds = load_ok(&d);
  char buf[256];
  cr_assert_str_eq(decode(ds, 0, 0, buf, sizeof buf), "win|a|free");
  data_free(ds);
}

Test(data, vocab_cap_specials_and_order) {
  DataDecl d = small_decl(false);
  d.fields[0].vocab = 5;
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->vocab.n, 5);
  cr_assert_str_eq(ds->vocab.words[0], "<pad>");
  cr_assert_str_eq(ds->vocab.words[1], "<unk>");
  /* eggs x5, then four tokens x4 ordered by bytes: ",", free, win, you */
  cr_assert_str_eq(ds->vocab.words[2], "eggs");
  cr_assert_str_eq(ds->vocab.words[3], ",");
  cr_assert_str_eq(ds->vocab.words[4], "free");
  char buf[256];
  cr_assert_str_eq(decode(ds, 0, 0, buf, sizeof buf), "<unk>|<unk>|free|<unk>|<unk>|<unk>|<pad>|<pad>");
  cr_assert_eq(vocab_lookup(&ds->vocab, "FREE", 4, 1), 4);
  cr_assert_eq(vocab_lookup(&ds->vocab, "zzz", 3, 1), -1);
  data_free(ds);
}

Test(data, vocab_from_train_split_only) {
  DataDecl d = small_decl(false);
  d.split[0] = 0.5;
  d.split[1] = 0.5;
  DataSet *ds = load_ok(&d);
  /* every vocabulary word occurs in a train example, and some test-only
   * word of the file is <unk> */
  bool *seen = calloc((size_t)ds->vocab.n, 1);
  const int32_t *x = ds->in_data[0];
  for (int64_t i = 0; i < ds->split_n[0]; i++)
    for (int j = 0; j < 8; j++) seen[x[ds->split_idx[0][i] * 8 + j]] = true;
  for (int64_t v = 2; v < ds->vocab.n; v++) cr_assert(seen[v], "'%s' is not from train", ds->vocab.words[v]);
  int unk = 0;
  for (int64_t i = 0; i < ds->split_n[1]; i++)
    for (int j = 0; j < 8; j++) unk += x[ds->split_idx[1][i] * 8 + j] == 1;
  cr_assert(unk > 0);
  free(seen);
  data_free(ds);
}

Test(data, encode_text_for_predict) {
  DataDecl d = small_decl(false);
  DataSet *ds = load_ok(&d);
  int32_t out[8];
  int n = data_encode_text(ds, 0, "Free PRIZE zzzq, now", out);
  cr_assert_eq(n, 5);
  cr_assert_eq(out[0], vocab_lookup(&ds->vocab, "free", 4, 0));
  cr_assert_eq(out[1], vocab_lookup(&ds->vocab, "prize", 5, 0));
  cr_assert_eq(out[2], 1);
  cr_assert_eq(out[3], vocab_lookup(&ds->vocab, ",", 1, 0));
  cr_assert_eq(out[5], 0);
  cr_assert_eq(out[7], 0);
  cr_assert_eq(data_encode_text(ds, 1, "x", out), -1); /* features */
  cr_assert_eq(data_encode_text(ds, 0, "bad \xff", out), -1);
  data_free(ds);
}

/* ---- tokenizers ---- */

typedef struct Toks {
  char s[512];
  int n;
} Toks;

static int collect(void *ud, const char *tok, size_t len) {
  Toks *t = ud;
  if (t->n++) strcat(t->s, "|");
  strncat(t->s, tok, len);
  return 0;
}

Test(tokenize, chars_are_code_points) {
  Toks t = {{0}, 0};
  const char *s = "Caf\xc3\xa9 \xe2\x80\x94!";
  cr_assert_eq(tok_split(TOK_CHARS, s, strlen(s), collect, &t, NULL), 0);
  cr_assert_eq(t.n, 7);
  cr_assert_str_eq(t.s, "C|a|f|\xc3\xa9| |\xe2\x80\x94|!");
}

Test(tokenize, words_lowercase_and_punctuation) {
  Toks t = {{0}, 0};
  const char *s = "Don't STOP,  caf\xc3\xa9\xe2\x80\x94ok\t(x_1)\n";
  cr_assert_eq(tok_split(TOK_WORDS, s, strlen(s), collect, &t, NULL), 0);
  /* tokens point into the text: folding happens in the vocabulary */
  cr_assert_str_eq(t.s, "Don|'|t|STOP|,|caf\xc3\xa9|\xe2\x80\x94|ok|(|x_1|)");
  Arena a;
  arena_init(&a, ra_alloc_default());
  Vocab v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(vocab_intern(&a, &v, "STOP", 4, 1), 0);
  cr_assert_eq(vocab_intern(&a, &v, "stop", 4, 1), 0);
  cr_assert_eq(vocab_intern(&a, &v, "Stop", 4, 0), 1);
  cr_assert_str_eq(v.words[0], "stop");
  cr_assert_str_eq(v.words[1], "Stop");
  arena_free(&a);
}

Test(tokenize, invalid_utf8_is_found) {
  const char *bad[] = {"ab\xff", "a\xc0\xaf", "\xed\xa0\x80x", "xy\xe2\x82", "\xf5\x80\x80\x80", "ok\x80"};
  size_t where[] = {2, 1, 0, 2, 0, 2};
  for (int i = 0; i < 6; i++) {
    Toks t = {{0}, 0};
    size_t at = 99;
    cr_assert_eq(tok_split(TOK_CHARS, bad[i], strlen(bad[i]), collect, &t, &at), -1, "case %d", i);
    cr_assert_eq(at, where[i], "case %d: at %zu", i, at);
  }
  size_t at = 0;
  Toks t = {{0}, 0};
  cr_assert_eq(tok_split(TOK_WORDS, "a\0b", 3, collect, &t, &at), -1);
  cr_assert_eq(at, 1);
}

Test(tokenize, many_tokens_grow_the_table) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  Vocab v;
  memset(&v, 0, sizeof v);
  char w[16];
  for (int i = 0; i < 5000; i++) {
    int n = snprintf(w, sizeof w, "w%d", i);
    cr_assert_eq(vocab_intern(&a, &v, w, (size_t)n, 0), i);
  }
  for (int i = 0; i < 5000; i += 7) {
    int n = snprintf(w, sizeof w, "w%d", i);
    cr_assert_eq(vocab_lookup(&v, w, (size_t)n, 0), i);
  }
  cr_assert_eq(v.n, 5000);
  arena_free(&a);
}

/* ---- csv ---- */

Test(data, csv_rfc4180_quoting_and_crlf) {
  DataDecl d = decl(LOADER_CSV, "tests/data/quoted.csv");
  d.header = true;
  d.fields[0] = text_field(-1, "comment", TOK_WORDS, 0, 6);
  d.fields[1] = feat_field(3, 3, NULL, NULL);
  d.fields[2] = label_field(1, NULL);
  d.nfields = 3;
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->n, 5);
  cr_assert_eq(ds->classes, 2);
  cr_assert_str_eq(ds->label_names[0], "neg");
  cr_assert_eq(ds->tgt_data[0], 1);
  cr_assert_eq(ds->tgt_data[1], 0);
  cr_assert_eq(ds->tgt_data[4], 1); /* "pos" quoted */
  char buf[256];
  cr_assert_str_eq(decode(ds, 0, 0, buf, sizeof buf), "good|,|really|good|<pad>|<pad>");
  cr_assert_str_eq(decode(ds, 0, 1, buf, sizeof buf), "he|said|\"|no|\"|twice");
  cr_assert_str_eq(decode(ds, 0, 2, buf, sizeof buf), "two|lines|<pad>|<pad>|<pad>|<pad>");
  const float *x = ds->in_data[1];
  cr_assert_float_eq(x[2], 0.8f, 1e-7);
  cr_assert_float_eq(x[3], 0.2f, 1e-7);
  data_free(ds);
}

Test(data, csv_chars_keep_quotes_content) {
  DataDecl d = decl(LOADER_CSV, "tests/data/quoted.csv");
  d.header = true;
  d.fields[0] = text_field(2, NULL, TOK_CHARS, 0, 20);
  d.fields[1] = label_field(1, NULL);
  d.nfields = 2;
  DataSet *ds = load_ok(&d);
  int32_t *x = ds->in_data[0];
  /* "He said ""no"" twice": the 9th char is a quote */
  cr_assert_str_eq(ds->vocab.words[x[20 + 8]], "\"");
  cr_assert_str_eq(ds->vocab.words[x[20 + 9]], "n");
  data_free(ds);
}

Test(data, crlf_and_empty_lines) {
  DataDecl d = decl(LOADER_TSV, "tests/data/crlf.tsv");
  d.fields[0] = text_field(1, NULL, TOK_CHARS, 0, 12);
  d.fields[1] = label_field(0, NULL);
  d.nfields = 2;
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->n, 3);
  cr_assert_eq(vocab_lookup(&ds->vocab, "\r", 1, 0), -1);
  char buf[256];
  cr_assert_str_eq(decode(ds, 0, 2, buf, sizeof buf), "g|o|o|d| |d|a|y|<pad>|<pad>|<pad>|<pad>");
  data_free(ds);
}

Test(data, integer_labels_used_as_is) {
  DataDecl d = decl(LOADER_TSV, "tests/data/intlabels.tsv");
  d.header = true;
  d.fields[0] = text_field(1, NULL, TOK_WORDS, 0, 4);
  d.fields[1] = label_field(0, NULL);
  d.nfields = 2;
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->classes, 4);
  cr_assert_eq(ds->tgt_data[0], 3);
  cr_assert_eq(ds->tgt_data[1], 0);
  cr_assert_eq(ds->tgt_data[2], 1);
  cr_assert_eq(ds->tgt_data[3], 3);
  cr_assert_str_eq(ds->label_names[2], "2");
  data_free(ds);
}

Test(data, huge_line) {
  char path[] = "/tmp/rac_data_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("a\t", f);
  for (int i = 0; i < 400000; i++) fputs("word ", f);
  fputs("\nb\tshort\n", f);
  fclose(f);
  DataDecl d = decl(LOADER_TSV, path);
  d.fields[0] = text_field(1, NULL, TOK_WORDS, 10, 16);
  d.fields[1] = label_field(0, NULL);
  d.nfields = 2;
  DataSet *ds = load_ok(&d);
  unlink(path);
  cr_assert_eq(ds->n, 2);
  cr_assert_eq(ds->vocab.n, 4);
  cr_assert_str_eq(ds->vocab.words[2], "word");
  const int32_t *x = ds->in_data[0];
  cr_assert_eq(x[15], 2);
  data_free(ds);
}

/* Long fields are read whole: a feature of 100 000 characters is still a
 * number, a word of 100 000 characters is one token. */
Test(data, huge_fields) {
  enum { N = 100000 };
  char path[] = "/tmp/rac_data_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("a\t2.", f);
  for (int i = 0; i < N; i++) fputc('0', f);
  fputs("\t", f);
  for (int i = 0; i < N; i++) fputc('w', f);
  fputs(" x\nb\t-0.5\tx\n", f);
  fclose(f);
  DataDecl d = decl(LOADER_TSV, path);
  d.fields[0] = feat_field(1, 1, NULL, NULL);
  d.fields[0].shape.rank = 1;
  d.fields[0].shape.dim[0] = 1;
  d.fields[1] = text_field(2, NULL, TOK_WORDS, 10, 4);
  d.fields[2] = label_field(0, NULL);
  d.nfields = 3;
  DataSet *ds = load_ok(&d);
  unlink(path);
  cr_assert_eq(ds->n, 2);
  const float *x = ds->in_data[0];
  cr_assert_float_eq(x[0], 2.0f, 0);
  cr_assert_float_eq(x[1], -0.5f, 0);
  cr_assert_eq(ds->vocab.n, 4);
  bool found = false;
  for (int64_t k = 0; k < ds->vocab.n; k++) found |= strlen(ds->vocab.words[k]) == N;
  cr_assert(found, "the long word is not one token");
  data_free(ds);
}

/* ---- text(path) ---- */

Test(data, text_windows_shift_by_one) {
  DataDecl d = decl(LOADER_TEXT, "tests/data/tiny.txt");
  d.tokenize = TOK_CHARS;
  d.window = 8;
  DataSet *ds = load_ok(&d);
  /* 54 + 1 + 22 + 1 code points = 78 tokens -> (78 - 1) / 8 windows */
  cr_assert_eq(ds->n, 9);
  cr_assert_eq(ds->tgt_type.rank, 1);
  cr_assert_eq(ds->tgt_type.dim[0], 8);
  cr_assert_eq(ds->classes, ds->vocab.n);
  /* the text loader's examples are read from the file by data_example */
  cr_assert_null(ds->in_data[0]);
  int32_t in[9 * 8], tg[9 * 8];
  for (int64_t i = 0; i < ds->n; i++) data_example(ds, i, (void *[]){in + i * 8}, tg + i * 8);
  for (int64_t i = 0; i < ds->n; i++) {
    for (int j = 0; j < 7; j++) cr_assert_eq(tg[i * 8 + j], in[i * 8 + j + 1]);
    if (i + 1 < ds->n) cr_assert_eq(tg[i * 8 + 7], in[(i + 1) * 8]);
  }
  char buf[256];
  cr_assert_str_eq(decode(ds, 0, 0, buf, sizeof buf), "I|n| |t|h|e| |b");
  /* the second line "Café — naïve; the end." starts at token 55: é is 58 */
  cr_assert_str_eq(ds->vocab.words[in[7 * 8 + 2]], "\xc3\xa9");
  data_free(ds);
}

Test(data, text_words_and_vocab_cap) {
  DataDecl d = decl(LOADER_TEXT, "tests/data/tiny.txt");
  d.tokenize = TOK_WORDS;
  d.window = 4;
  d.vocab = 4;
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->vocab.n, 4);
  cr_assert_str_eq(ds->vocab.words[2], "the"); /* x4 */
  cr_assert_str_eq(ds->vocab.words[3], ".");   /* x2 like was, word: first by bytes */
  int32_t out[4];
  cr_assert_eq(data_encode_text(ds, 0, "The end", out), 2);
  cr_assert_eq(out[0], 2);
  cr_assert_eq(out[1], 1);
  cr_assert_eq(out[2], 0);
  data_free(ds);
}

/* ---- synthetic ---- */

static DataDecl syn(SynTask task, uint64_t seed) {
  DataDecl d = decl(LOADER_SYNTHETIC, NULL);
  d.task = task;
  d.length = 9;
  d.vocab = 20;
  d.examples = 50;
  d.seed = seed;
  d.split[0] = 0.8;
  d.split[1] = 0.2;
  return d;
}

Test(data, synthetic_copy_and_reverse) {
  DataDecl c = syn(SYN_COPY, 3), r = syn(SYN_REVERSE, 3);
  DataSet *a = load_ok(&c), *b = load_ok(&r);
  cr_assert_eq(a->n, 50);
  cr_assert_eq(a->classes, 20);
  cr_assert_eq(a->tgt_type.rank, 1);
  const int32_t *x = a->in_data[0], *y = b->in_data[0];
  cr_assert(memcmp(x, y, sizeof(int32_t) * 50 * 9) == 0, "same seed, same inputs");
  for (int i = 0; i < 50 * 9; i++) {
    cr_assert(x[i] >= 2 && x[i] < 20);
    cr_assert_eq(a->tgt_data[i], x[i]);
  }
  for (int i = 0; i < 50; i++)
    for (int j = 0; j < 9; j++) cr_assert_eq(b->tgt_data[i * 9 + j], y[i * 9 + 8 - j]);
  cr_assert_str_eq(a->vocab.words[0], "<pad>");
  cr_assert_str_eq(a->vocab.words[7], "7");
  data_free(a);
  data_free(b);
}

Test(data, synthetic_recall) {
  DataDecl d = syn(SYN_RECALL, 5);
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->tgt_type.rank, 0);
  const int32_t *x = ds->in_data[0];
  for (int i = 0; i < 50; i++) {
    const int32_t *e = x + i * 9;
    int found = 0;
    for (int k = 0; k < 4; k++) {
      cr_assert(e[2 * k] >= 2 && e[2 * k] < 11, "key range");
      cr_assert(e[2 * k + 1] >= 11 && e[2 * k + 1] < 20, "value range");
      for (int m = 0; m < k; m++) cr_assert_neq(e[2 * m], e[2 * k], "keys are distinct");
      if (e[2 * k] == e[8]) {
        found++;
        cr_assert_eq(ds->tgt_data[i], e[2 * k + 1]);
      }
    }
    cr_assert_eq(found, 1);
  }
  /* an even length leaves a <pad> before the query */
  d.length = 8;
  DataSet *ev = load_ok(&d);
  cr_assert_eq(((int32_t *)ev->in_data[0])[6], 0);
  data_free(ev);
  data_free(ds);
  d.vocab = 6;
  expect_error(&d, "data 't': synthetic recall with length 8 has 3 distinct keys, but vocab 6 gives only 2");
}

Test(data, synthetic_seed_changes_data) {
  DataDecl a = syn(SYN_COPY, 1), b = syn(SYN_COPY, 2);
  DataSet *x = load_ok(&a), *y = load_ok(&b);
  cr_assert(memcmp(x->in_data[0], y->in_data[0], sizeof(int32_t) * 50 * 9) != 0);
  data_free(x);
  data_free(y);
}

/* ---- splits, shuffles, batches ---- */

Test(data, split_sizes_cover_and_determinism) {
  DataDecl d = syn(SYN_COPY, 1);
  d.examples = 101;
  d.split[0] = 0.7;
  d.split[1] = 0.2;
  d.split[2] = 0.1;
  DataSet *a = load_ok(&d), *b = load_ok(&d);
  cr_assert_eq(a->split_n[0], 71);
  cr_assert_eq(a->split_n[1], 20);
  cr_assert_eq(a->split_n[2], 10);
  char seen[101] = {0};
  for (int s = 0; s < 3; s++)
    for (int64_t i = 0; i < a->split_n[s]; i++) {
      int64_t e = a->split_idx[s][i];
      cr_assert(e >= 0 && e < 101);
      cr_assert_eq(seen[e], 0, "example %lld twice", (long long)e);
      seen[e] = 1;
      if (i) cr_assert(a->split_idx[s][i - 1] < e, "ascending");
    }
  for (int s = 0; s < 3; s++)
    cr_assert(memcmp(a->split_idx[s], b->split_idx[s], sizeof(uint32_t) * (size_t)a->split_n[s]) == 0);
  d.seed = 2;
  DataSet *c = load_ok(&d);
  cr_assert(memcmp(a->split_idx[1], c->split_idx[1], sizeof(uint32_t) * 20) != 0, "another seed, another split");
  data_free(a);
  data_free(b);
  data_free(c);
}

Test(data, shuffle_is_a_deterministic_permutation) {
  DataDecl d = syn(SYN_COPY, 1);
  DataSet *ds = load_ok(&d);
  int64_t n = ds->split_n[0];
  cr_assert_eq(n, 40);
  DataOrder o1, o2, o3;
  cr_assert(data_order_init(&o1, ds, 0) == 0 && data_order_init(&o2, ds, 0) == 0 &&
            data_order_init(&o3, ds, 0) == 0);
  cr_assert(o1.perm, "a small split's order is stored");
  data_shuffle(ds, 0, 9, 0, &o1);
  data_shuffle(ds, 0, 9, 0, &o2);
  data_shuffle(ds, 0, 9, 1, &o3);
  cr_assert(memcmp(o1.perm, o2.perm, 40 * sizeof(uint32_t)) == 0);
  cr_assert(memcmp(o1.perm, o3.perm, 40 * sizeof(uint32_t)) != 0, "epochs differ");
  char seen[40] = {0};
  for (int i = 0; i < 40; i++) {
    int64_t p = data_order_at(&o1, i);
    cr_assert(p >= 0 && p < 40);
    cr_assert_eq(seen[p]++, 0);
  }
  data_order_free(&o1);
  data_order_free(&o2);
  data_order_free(&o3);
  data_free(ds);
}

Test(data, batches_pad_the_final_batch) {
  DataDecl d = syn(SYN_COPY, 1);
  DataSet *ds = load_ok(&d);
  DataOrder o;
  cr_assert(data_order_init(&o, ds, 0) == 0);
  data_shuffle(ds, 0, 3, 0, &o);
  const uint32_t *order = o.perm;
  int32_t in[16 * 9], tg[16 * 9];
  void *inputs[1] = {in};
  /* 40 examples in batches of 16: 16, 16, then 8 real + 8 repeated */
  cr_assert_eq(data_batch(ds, 0, &o, 0, 16, inputs, tg), 16);
  const int32_t *x = ds->in_data[0];
  cr_assert(memcmp(in + 5 * 9, x + ds->split_idx[0][order[5]] * 9, 9 * 4) == 0);
  cr_assert_eq(data_batch(ds, 0, &o, 32, 16, inputs, tg), 8);
  for (int r = 0; r < 16; r++) {
    int64_t ex = ds->split_idx[0][order[32 + r % 8]];
    cr_assert(memcmp(in + r * 9, x + ex * 9, 9 * 4) == 0, "row %d", r);
    cr_assert(memcmp(tg + r * 9, ds->tgt_data + ex * 9, 9 * 4) == 0, "row %d", r);
  }
  cr_assert_eq(data_batch(ds, 0, &o, 40, 16, inputs, tg), 0);
  /* split order without a permutation */
  cr_assert_eq(data_batch(ds, 1, NULL, 0, 4, inputs, tg), 4);
  cr_assert(memcmp(in, x + ds->split_idx[1][0] * 9, 9 * 4) == 0);
  data_order_free(&o);
  data_free(ds);
}

/* ---- errors ---- */

static DataDecl two_col(LoaderKind k, const char *path) {
  DataDecl d = decl(k, path);
  d.fields[0] = text_field(1, NULL, TOK_WORDS, 0, 8);
  d.fields[1] = label_field(0, NULL);
  d.nfields = 2;
  return d;
}

Test(data_errors, missing_file) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/nope.tsv");
  expect_error(&d, "tests/data/nope.tsv: cannot open the data file: No such file or directory");
}

Test(data_errors, empty_file) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/empty.tsv");
  expect_error(&d, "tests/data/empty.tsv: the file is empty");
}

Test(data_errors, only_blank_lines) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/blank_lines.tsv");
  expect_error(&d, "tests/data/blank_lines.tsv: no data (the file has only empty lines)");
}

Test(data_errors, header_only) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/header_only.tsv");
  d.header = true;
  expect_error(&d, "tests/data/header_only.tsv: no examples after the header line");
}

Test(data_errors, too_few_columns) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/bad_columns.tsv");
  d.header = true;
  expect_error(&d, "tests/data/bad_columns.tsv:4: expected at least 2 tab-separated columns, found 1");
}

Test(data_errors, non_numeric_feature) {
  DataDecl d = decl(LOADER_TSV, "tests/data/bad_number.tsv");
  d.header = true;
  d.fields[0] = feat_field(-1, -1, "a", "b");
  d.fields[1] = label_field(-1, "y");
  d.nfields = 2;
  expect_error(&d, "tests/data/bad_number.tsv:3: column 2: expected a number, found 'abc'");
}

Test(data_errors, unknown_header_column) {
  DataDecl d = small_decl(true);
  d.fields[0].column_name = "txt";
  expect_error(&d, "tests/data/small.tsv:1: no column named 'txt' in the header (columns: label, text, x1, x2)");
}

/* A header too long to list whole in the message says there is more, and
 * lists whole names only. */
Test(data_errors, unknown_column_in_a_long_header) {
  char path[] = "/tmp/rac_data_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  for (int i = 0; i < 100; i++) fprintf(f, "%scolumn_number_%d", i ? "\t" : "", i);
  fputs("\n", f);
  for (int i = 0; i < 100; i++) fprintf(f, "%s%d", i ? "\t" : "", i);
  fputs("\n", f);
  fclose(f);
  DataDecl d = decl(LOADER_TSV, path);
  d.header = true;
  d.fields[0] = label_field(-1, "nosuch");
  d.nfields = 1;
  char err[2048] = "";
  DataSet *ds = data_load(ra_alloc_default(), &d, err, sizeof err);
  unlink(path);
  cr_assert_null(ds);
  cr_assert(strstr(err, ":1: no column named 'nosuch' in the header (columns: column_number_0, "), "%s", err);
  const char *tail = strstr(err, ", ...)");
  cr_assert(tail && tail[6] == 0, "%s", err);
  /* the last name listed is whole */
  const char *last = tail;
  while (last > err && last[-1] != ' ') last--;
  cr_assert_eq(strncmp(last, "column_number_", 14), 0, "%s", err);
  int n = atoi(last + 14);
  char name[32];
  snprintf(name, sizeof name, "column_number_%d,", n);
  cr_assert_eq(strncmp(last, name, strlen(name)), 0, "%s", err);
}

Test(data_errors, named_column_without_header) {
  DataDecl d = small_decl(true);
  d.header = false;
  expect_error(&d, "tests/data/small.tsv: column 'text' is named, but the data has no header line (add 'header')");
}

Test(data_errors, feature_shape_mismatch) {
  DataDecl d = small_decl(false);
  d.fields[1].shape.dim[0] = 3;
  expect_error(&d, "tests/data/small.tsv: features columns 2..3 give 2 values per example, but the shape has 3");
}

Test(data_errors, invalid_utf8) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/bad_utf8.tsv");
  expect_error(&d, "tests/data/bad_utf8.tsv:2: invalid UTF-8 in column 1 (byte 5 of the field)");
}

Test(data_errors, invalid_utf8_in_text_corpus) {
  char path[] = "/tmp/rac_text_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, "line one\nline two\nbad\xc3(\n", 23), 23);
  close(fd);
  DataDecl d = decl(LOADER_TEXT, path);
  d.tokenize = TOK_CHARS;
  d.window = 4;
  char want[128];
  snprintf(want, sizeof want, "%s:3: invalid UTF-8 (byte 0xc3)", path);
  expect_error(&d, want);
  unlink(path);
}

Test(data_errors, nul_byte) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/nul.tsv");
  expect_error(&d, "tests/data/nul.tsv:2: NUL byte at column 9 of the line");
}

Test(data_errors, csv_unterminated_quote) {
  DataDecl d = two_col(LOADER_CSV, "tests/data/bad_quote.csv");
  d.header = true;
  expect_error(&d, "tests/data/bad_quote.csv:2: a quoted field opened here is never closed");
}

Test(data_errors, csv_text_after_quote) {
  DataDecl d = two_col(LOADER_CSV, "tests/data/bad_after_quote.csv");
  d.header = true;
  expect_error(&d, "tests/data/bad_after_quote.csv:2: unexpected character 'x' after a closing quote "
                   "(expected ',' or the end of the line)");
}

Test(data_errors, csv_too_few_columns) {
  DataDecl d = two_col(LOADER_CSV, "tests/data/quoted.csv");
  d.fields[0].column = 7;
  expect_error(&d, "tests/data/quoted.csv:1: expected at least 8 comma-separated columns, found 4");
}

Test(data_errors, empty_split) {
  DataDecl d = two_col(LOADER_TSV, "tests/data/crlf.tsv");
  d.split[0] = 0.8;
  d.split[1] = 0.1;
  d.split[2] = 0.1;
  expect_error(&d, "tests/data/crlf.tsv: the test split is empty (3 examples, test fraction 0.1); "
                   "use more data or change the split");
}

Test(data_errors, text_shorter_than_a_window) {
  DataDecl d = decl(LOADER_TEXT, "tests/data/tiny.txt");
  d.tokenize = TOK_WORDS;
  d.window = 100;
  expect_error(&d, "tests/data/tiny.txt: the text has 20 tokens, fewer than one window of 100 plus 1");
}

Test(data_errors, bad_split_fractions) {
  DataDecl d = syn(SYN_COPY, 1);
  d.split[2] = 0.5;
  expect_error(&d, "data 't': split fractions add up to 1.5, more than 1");
}

Test(data, relative_to_spec_dir) {
  DataDecl d = two_col(LOADER_TSV, "crlf.tsv");
  d.spec_dir = "tests/data";
  DataSet *ds = load_ok(&d);
  cr_assert_eq(ds->n, 3);
  data_free(ds);
  d.path = "tests/data/crlf.tsv"; /* not under spec_dir: the working directory */
  d.spec_dir = "examples";
  ds = load_ok(&d);
  data_free(ds);
}

/* ---- allocation failures: every one is reported, nothing leaks ---- */

typedef struct Budget {
  long left;
  long live;
} Budget;

static void *budget_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  Budget *b = ud;
  if (nsize == 0) {
    if (ptr) b->live--;
    free(ptr);
    return NULL;
  }
  if (b->left-- <= 0) return NULL;
  void *p = realloc(ptr, nsize);
  if (p && !ptr) b->live++;
  (void)osize;
  return p;
}

Test(data, allocation_failures) {
  DataDecl decls[3] = {small_decl(true), decl(LOADER_TEXT, "tests/data/tiny.txt"), syn(SYN_RECALL, 1)};
  decls[1].tokenize = TOK_CHARS;
  decls[1].window = 4;
  for (int k = 0; k < 3; k++) {
    bool done = false;
    for (long n = 0; n < 5000 && !done; n++) {
      Budget b = {n, 0};
      RaAlloc al = {budget_fn, &b};
      err[0] = 0;
      DataSet *ds = data_load(al, &decls[k], err, sizeof err);
      if (ds) {
        done = true;
        data_free(ds);
      } else {
        cr_assert(strstr(err, "out of memory") != NULL, "decl %d, budget %ld: %s", k, n, err);
      }
      cr_assert_eq(b.live, 0, "decl %d, budget %ld: %ld blocks leaked", k, n, b.live);
    }
    cr_assert(done);
  }
}

/* ---- random bytes: an error naming the file, or a data set; never a crash ---- */

Test(data, random_files_never_crash) {
  static const char alphabet[] = "ab,\t\n\r\"\" 1.5x\xc3\xa9\xff\x00;";
  char path[] = "/tmp/rac_fuzz_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  close(fd);
  char buf[300];
  int loaded = 0;
  for (uint64_t it = 0; it < 600; it++) {
    uint32_t r[4];
    rng_philox(3, 1, it, r);
    size_t n = r[0] % sizeof buf;
    for (size_t i = 0; i < n; i++) {
      uint32_t s[4];
      rng_philox(3, 2 + it, i, s);
      buf[i] = alphabet[s[0] % (sizeof alphabet - 1)];
    }
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    DataDecl d = decl(it % 3 == 0 ? LOADER_TSV : it % 3 == 1 ? LOADER_CSV : LOADER_TEXT, path);
    d.fields[0] = text_field(1, NULL, it % 2 ? TOK_WORDS : TOK_CHARS, 20, 6);
    d.fields[1] = feat_field(2, 2, NULL, NULL);
    d.fields[2] = label_field(0, NULL);
    d.nfields = it % 4 == 0 ? 3 : 1 + (int)(it % 2);
    if (d.nfields == 2) d.fields[1] = label_field(0, NULL);
    d.header = r[1] % 2;
    d.tokenize = TOK_CHARS;
    d.window = 2;
    d.split[0] = 0.5;
    d.split[1] = 0.5;
    err[0] = 0;
    DataSet *ds = data_load(ra_alloc_default(), &d, err, sizeof err);
    if (ds) {
      loaded++;
      int32_t out[8];
      if (ds->in_type[0].dtype == IR_I32) cr_assert(data_encode_text(ds, 0, "ab a", out) >= 0);
      data_free(ds);
    } else {
      cr_assert(strncmp(err, path, strlen(path)) == 0, "%s", err);
    }
  }
  unlink(path);
  cr_assert(loaded > 0);
}

/* ---- files read through a mapping ---- */

Test(data, text_crlf_is_lf_for_chars_and_words) {
  const char *lf = tu_tmp("lf.txt"), *crlf = tu_tmp("crlf.txt");
  cr_assert(tu_write_file(lf, "one two\nthree\r four\nfive six seven\n\neight nine\n") == 0);
  cr_assert(tu_write_file(crlf, "one two\r\nthree\r four\r\nfive six seven\r\n\r\neight nine\r\n") == 0);
  for (int kind = 0; kind < 2; kind++) {
    DataDecl a = decl(LOADER_TEXT, lf), b = decl(LOADER_TEXT, crlf);
    a.tokenize = b.tokenize = kind ? TOK_WORDS : TOK_CHARS;
    a.window = b.window = 2;
    DataSet *x = load_ok(&a), *y = load_ok(&b);
    cr_assert_eq(x->n, y->n);
    cr_assert_eq(x->vocab.n, y->vocab.n);
    for (int64_t i = 0; i < x->vocab.n; i++) cr_assert_str_eq(x->vocab.words[i], y->vocab.words[i]);
    /* a lone \r is a character of its own */
    if (!kind) cr_assert_geq(vocab_lookup(&x->vocab, "\r", 1, 0), 0);
    for (int64_t i = 0; i < x->n; i++) {
      int32_t p[2], q[2], tp[2], tq[2];
      data_example(x, i, (void *[]){p}, tp);
      data_example(y, i, (void *[]){q}, tq);
      cr_assert(p[0] == q[0] && p[1] == q[1] && tp[0] == tq[0] && tp[1] == tq[1], "window %lld", (long long)i);
    }
    data_free(x);
    data_free(y);
  }
}

/* A file the kernel cannot map (sysfs attributes cannot be) is refused by name. */
Test(data_errors, a_file_that_cannot_be_mapped) {
  const char *f = "/sys/devices/system/cpu/online";
  if (access(f, R_OK) != 0) cr_skip_test("no %s here", f);
  DataDecl d = decl(LOADER_TEXT, f);
  d.tokenize = TOK_CHARS;
  d.window = 2;
  expect_error(&d, "/sys/devices/system/cpu/online: cannot map the file: No such device (tsv, csv and "
                   "text files are read through a memory mapping)");
}

/* The text loader's examples are read from the mapped file: one truncated
 * after loading raises SIGBUS at the next batch (docs/data.md; rac says so
 * before it ends). */
#if defined(__SANITIZE_ADDRESS__)
#define DIES_OF_SIGBUS .exit_code = 1 /* ASan reports the SIGBUS, then exits 1 */
#else
#define DIES_OF_SIGBUS .signal = SIGBUS
#endif
Test(data, text_truncated_while_mapped_raises_sigbus, DIES_OF_SIGBUS) {
  const char *path = tu_tmp("shrinks.txt");
  static char text[1 << 16];
  for (size_t i = 0; i + 1 < sizeof text; i++) text[i] = (char)('a' + i % 26);
  cr_assert(tu_write_file(path, text) == 0);
  DataDecl d = decl(LOADER_TEXT, path);
  d.tokenize = TOK_CHARS;
  d.window = 16;
  DataSet *ds = load_ok(&d);
  cr_assert(truncate(path, 0) == 0);
  int32_t in[16 * 4], tg[16 * 4];
  data_batch(ds, 0, NULL, ds->split_n[0] - 4, 4, (void *[]){in}, tg);
  data_free(ds);
}

/* ---- large data sets: keyed split and shuffles ---- */

/* The keyed bijection is a permutation of [0, n) whose inverse undoes it,
 * the same for the same key, another for another stream. */
Test(data_keyed, keyperm_is_a_deterministic_permutation) {
  static const uint64_t ns[] = {1, 2, 3, 4, 5, 17, 64, 255, 1000, 4097, 65537, 300001};
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    uint64_t n = ns[t];
    KeyPerm a, b, c;
    keyperm_init(&a, n, 5, RNG_STREAM_SHUFFLE);
    keyperm_init(&b, n, 5, RNG_STREAM_SHUFFLE);
    keyperm_init(&c, n, 5, RNG_STREAM_SHUFFLE + 1);
    unsigned char *seen = calloc(n, 1);
    cr_assert(seen);
    uint64_t fixed = 0, same_c = 0;
    for (uint64_t i = 0; i < n; i++) {
      uint64_t x = keyperm_fwd(&a, i);
      cr_assert(x < n, "n %llu: %llu -> %llu", (unsigned long long)n, (unsigned long long)i,
                (unsigned long long)x);
      cr_assert_eq(seen[x]++, 0, "n %llu: %llu twice", (unsigned long long)n, (unsigned long long)x);
      cr_assert_eq(keyperm_inv(&a, x), i);
      cr_assert_eq(keyperm_fwd(&b, i), x);
      fixed += x == i;
      same_c += keyperm_fwd(&c, i) == x;
    }
    if (n >= 1000) { /* shuffled: few fixed points, another key another order */
      cr_assert_lt(fixed, n / 50, "n %llu: %llu fixed points", (unsigned long long)n, (unsigned long long)fixed);
      cr_assert_lt(same_c, n / 50);
    }
    free(seen);
  }
}

/* A text of 2^24 + 2 characters in windows of 1 has DATA_KEYED_MIN + 1
 * examples: its split and its train split's shuffles are keyed (nothing
 * of n stored), every example in exactly one split, every train position
 * once in an epoch, the same on a second load; the windows are the file's
 * characters. */
Test(data_keyed, a_large_data_set_splits_and_shuffles_without_arrays, .timeout = 120) {
  const char *path = tu_tmp("large.txt");
  int64_t len = DATA_KEYED_MIN + 2;
  char *text = malloc((size_t)len + 1);
  cr_assert(text);
  for (int64_t i = 0; i < len; i++) text[i] = (char)('a' + (int)(((uint64_t)i * (uint64_t)i >> 3) % 26));
  text[len] = 0;
  cr_assert(tu_write_file(path, text) == 0);
  DataDecl d = decl(LOADER_TEXT, path);
  d.tokenize = TOK_CHARS;
  d.window = 1;
  d.split[0] = 0.8;
  d.split[1] = 0.1;
  d.split[2] = 0.1;
  DataSet *a = load_ok(&d), *b = load_ok(&d);
  int64_t n = a->n;
  cr_assert_eq(n, DATA_KEYED_MIN + 1);
  cr_assert(a->split_keyed && !a->split_idx[0] && !a->split_idx[1] && !a->split_idx[2]);
  cr_assert_eq(a->split_n[0] + a->split_n[1] + a->split_n[2], n);
  cr_assert_eq(a->split_n[0], (int64_t)floor((double)n * 0.8 + 0.5));
  bool letter[26] = {false};
  int64_t letters = 0;
  for (int64_t i = 0; i < len; i++) letter[text[i] - 'a'] = true;
  for (int k = 0; k < 26; k++) letters += letter[k];
  cr_assert_eq(a->vocab.n, 2 + letters);
  unsigned char *seen = calloc((size_t)n, 1);
  cr_assert(seen);
  for (int s = 0; s < 3; s++)
    for (int64_t j = 0; j < a->split_n[s]; j++) {
      int64_t e = data_split_example(a, s, j);
      cr_assert(e >= 0 && e < n);
      cr_assert_eq(seen[e]++, 0, "example %lld twice", (long long)e);
      if (j % 4099 == 0) {
        cr_assert_eq(data_split_example(b, s, j), e);
        int32_t in, tg;
        data_example(a, e, (void *[]){&in}, &tg);
        cr_assert(in >= 2 && tg >= 2 && in < a->vocab.n && tg < a->vocab.n);
        cr_assert_eq(a->vocab.words[in][0], text[e]);
        cr_assert_eq(a->vocab.words[tg][0], text[e + 1]);
      }
    }
  DataOrder o, p;
  cr_assert(data_order_init(&o, a, 0) == 0 && data_order_init(&p, b, 0) == 0);
  cr_assert(!o.perm, "no stored order");
  data_shuffle(a, 0, 11, 3, &o);
  data_shuffle(b, 0, 11, 3, &p);
  memset(seen, 0, (size_t)n);
  int64_t in_place = 0;
  for (int64_t i = 0; i < o.n; i++) {
    int64_t q = data_order_at(&o, i);
    cr_assert(q >= 0 && q < o.n);
    cr_assert_eq(seen[q]++, 0, "position %lld twice", (long long)q);
    in_place += q == i;
    if (i % 4099 == 0) cr_assert_eq(data_order_at(&p, i), q);
  }
  cr_assert_lt(in_place, o.n / 100);
  data_shuffle(a, 0, 11, 4, &p);
  int64_t same = 0;
  for (int64_t i = 0; i < 1000; i++) same += data_order_at(&p, i) == data_order_at(&o, i);
  cr_assert_lt(same, 50, "another epoch, another order");
  data_order_free(&o);
  data_order_free(&p);
  free(seen);
  free(text);
  data_free(a);
  data_free(b);
  unlink(path);
}

/* Below DATA_KEYED_MIN the split and shuffles are the stored Fisher-Yates
 * ones (tests/golden/data_order.txt holds their values). */
Test(data_keyed, below_the_threshold_orders_are_stored) {
  DataDecl d = decl(LOADER_TEXT, "tests/data/tiny.txt");
  d.tokenize = TOK_CHARS;
  d.window = 4;
  DataSet *ds = load_ok(&d);
  cr_assert(!ds->split_keyed && ds->split_idx[0]);
  DataOrder o;
  cr_assert(data_order_init(&o, ds, 0) == 0 && o.perm);
  data_order_free(&o);
  data_free(ds);
}
