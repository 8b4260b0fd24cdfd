/* test_bpe.c - tokenize bpe: merges and token ids against the independent
 * implementation of tests/gen_golden_bpe.py, the tie rule, merges learned
 * from the train lines only, and a model's checkpoint that predicts alone
 * (the merges in its metadata, output that is valid UTF-8), run on the
 * built rac. */
#include <stdint.h>
#include <unistd.h>

#include "testutil.h"
#include "../base/utf8.h"
#include "../runtime/data/ckpt.h"
#include "../runtime/data/data.h"

static char err[512];

static DataDecl bpe_decl(const char *path, int64_t vocab, int64_t window) {
  DataDecl d;
  memset(&d, 0, sizeof d);
  d.name = "t";
  d.loader = LOADER_TEXT;
  d.path = path;
  d.tokenize = TOK_BPE;
  d.vocab = vocab;
  d.window = window;
  d.split[0] = 1.0;
  d.seed = 7;
  return d;
}

static DataSet *load_ok(const DataDecl *d) {
  err[0] = 0;
  DataSet *ds = data_load(ra_alloc_default(), d, err, sizeof err);
  cr_assert(ds != NULL, "load failed: %s", err);
  return ds;
}

/* The integers of a golden file, in order. */
static int64_t read_ints(const char *path, int64_t *out, int64_t max) {
  char *s = tu_read_file(path, NULL);
  cr_assert(s, "cannot read %s", path);
  int64_t n = 0;
  char *p = s, *e;
  for (;;) {
    long long v = strtoll(p, &e, 10);
    if (e == p) break;
    cr_assert(n < max);
    out[n++] = v;
    p = e;
  }
  free(s);
  return n;
}

Test(bpe, merges_and_ids_match_the_independent_implementation) {
  DataDecl d = bpe_decl("tests/data/bpe_corpus.txt", 400, 16);
  DataSet *ds = load_ok(&d);
  static int64_t want[1 << 16];
  int64_t n = read_ints("tests/golden/bpe/corpus.merges", want, 1 << 16);
  cr_assert_eq(n % 2, 0);
  cr_assert_gt(n / 2, 100, "the golden corpus gives %lld merges", (long long)(n / 2));
  cr_assert_eq(ds->bpe.n, n / 2, "%lld merges, the reference has %lld", (long long)ds->bpe.n,
               (long long)(n / 2));
  for (int64_t k = 0; k < n / 2; k++)
    cr_assert(ds->bpe.merge[k][0] == want[2 * k] && ds->bpe.merge[k][1] == want[2 * k + 1],
              "merge %lld is (%d, %d), the reference (%lld, %lld)", (long long)k,
              ds->bpe.merge[k][0], ds->bpe.merge[k][1], (long long)want[2 * k],
              (long long)want[2 * k + 1]);
  cr_assert_eq(ds->vocab.n, BPE_FIRST + n / 2);
  /* the windows are the reference's token ids, in order */
  int64_t m = read_ints("tests/golden/bpe/corpus.ids", want, 1 << 16);
  int64_t N = 16;
  cr_assert_eq(ds->n, (m - 1) / N);
  const int32_t *in = ds->in_data[0];
  for (int64_t i = 0; i < ds->n; i++)
    for (int64_t j = 0; j < N; j++) {
      cr_assert_eq(in[i * N + j], want[i * N + j], "window %lld token %lld", (long long)i, (long long)j);
      cr_assert_eq(ds->tgt_data[i * N + j], want[i * N + j + 1]);
    }
  /* each merge's token is its two tokens' bytes */
  for (int64_t k = 0; k < ds->bpe.n; k++) {
    char both[512];
    snprintf(both, sizeof both, "%s%s", ds->vocab.words[ds->bpe.merge[k][0]],
             ds->vocab.words[ds->bpe.merge[k][1]]);
    cr_assert_str_eq(ds->vocab.words[BPE_FIRST + k], both);
  }
  /* predict's encoding is the loader's: the corpus's first line */
  int32_t ids[64];
  int got = data_encode_text(ds, 0, "  in\tthere\tnight\tcafé", ids);
  cr_assert_gt(got, 0);
  for (int j = 0; j < got; j++) cr_assert_eq(ids[j], want[j], "token %d", j);
  data_free(ds);
}

Test(bpe, ties_go_to_the_smallest_pair_and_merging_stops_below_two) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  Bpe b;
  /* (a,b) and (b,a) both occur three times, more than (' ',b): (a,b) has
   * the smaller left id */
  const char *s = "abab baba";
  cr_assert_eq(bpe_learn(&a, ra_alloc_default(), s, strlen(s), 10, &b), 0);
  cr_assert_geq(b.n, 1);
  cr_assert_eq(b.merge[0][0], BPE_BYTE0 + 'a');
  cr_assert_eq(b.merge[0][1], BPE_BYTE0 + 'b');
  /* no pair occurs twice: no merge, whatever the vocabulary allows */
  const char *t = "abcdef";
  cr_assert_eq(bpe_learn(&a, ra_alloc_default(), t, strlen(t), 10, &b), 0);
  cr_assert_eq(b.n, 0);
  /* overlapping pairs count: "aaa aaa" holds (a,a) four times; merged left
   * to right, each chunk becomes (aa, a) */
  const char *u = "aaa aaa";
  cr_assert_eq(bpe_learn(&a, ra_alloc_default(), u, strlen(u), 1, &b), 0);
  cr_assert_eq(b.n, 1);
  cr_assert_eq(b.merge[0][0], BPE_BYTE0 + 'a');
  cr_assert_eq(b.merge[0][1], BPE_BYTE0 + 'a');
  arena_free(&a);
}

/* Line i holds a letter pair of its own (three times), so a token that
 * holds the pair exists exactly when line i is in the train split. */
Test(bpe, merges_come_from_the_train_lines_only) {
  char text[8192];
  size_t n = 0;
  for (int i = 0; i < 120; i++) {
    char p[3] = {(char)('A' + i % 26), (char)('a' + i / 26), 0};
    n += (size_t)snprintf(text + n, sizeof text - n, "%s %s %s\n", p, p, p);
  }
  const char *path = tu_tmp("lines.txt");
  cr_assert(tu_write_file(path, text) == 0);
  DataDecl d = bpe_decl(path, 2000, 2);
  d.split[0] = 0.5;
  d.split[1] = 0.5;
  DataSet *ds = load_ok(&d);
  /* the train windows' text, back from the tokens */
  char train[8192];
  size_t m = 0;
  const int32_t *in = ds->in_data[0];
  for (int64_t i = 0; i < ds->split_n[0]; i++) {
    int64_t e = ds->split_idx[0][i];
    for (int j = 0; j < 2; j++) m += (size_t)snprintf(train + m, sizeof train - m, "%s", ds->vocab.words[in[e * 2 + j]]);
  }
  int in_train = 0, merged = 0;
  for (int i = 0; i < 120; i++) {
    char p[3] = {(char)('A' + i % 26), (char)('a' + i / 26), 0};
    bool is_merge = false; /* a token holds the pair ("Ba", " Ba", ...) */
    for (int64_t k = 0; k < ds->bpe.n; k++) is_merge |= strstr(ds->vocab.words[BPE_FIRST + k], p) != NULL;
    bool seen = strstr(train, p) != NULL;
    cr_assert_eq(is_merge, seen, "line %d (%s): merged %d, in the train text %d", i, p, is_merge, seen);
    in_train += seen;
    merged += is_merge;
  }
  cr_assert(in_train > 30 && in_train < 90, "%d of 120 lines in train", in_train);
  cr_assert_gt(ds->split_n[1], 0);
  data_free(ds);
}

Test(bpe, errors_name_the_file) {
  DataDecl d = bpe_decl("tests/data/bpe_corpus.txt", 100, 16);
  cr_assert_null(data_load(ra_alloc_default(), &d, err, sizeof err));
  cr_assert_str_eq(err, "tests/data/bpe_corpus.txt: tokenize bpe needs a vocab of at least 258, not 100");
  const char *path = tu_tmp("short.txt");
  cr_assert(tu_write_file(path, "a b c\nd e f\n") == 0);
  d = bpe_decl(path, 300, 16);
  d.split[0] = 0.5;
  d.split[1] = 0.5;
  cr_assert_null(data_load(ra_alloc_default(), &d, err, sizeof err));
  cr_assert(strstr(err, "split's 1 lines give 6 tokens, fewer than one window of 16 plus 1"), "%s", err);
  cr_assert(tu_write_file(path, "ok\n\xC3\x28 bad\n") == 0);
  cr_assert_null(data_load(ra_alloc_default(), &d, err, sizeof err));
  cr_assert(strstr(err, ":2: invalid UTF-8 (byte 0xc3)"), "%s", err);
}

/* ---- a model on the built rac ---- */

static const char *spec, *ck, *dir;

static void train_bpe(void) {
  char text[4096];
  snprintf(text, sizeof text,
           "data d = text(\"%s/tests/data/bpe_corpus.txt\") { tokenize bpe  window 16  vocab 320  "
           "split train 0.8 valid 0.2 }\n"
           "model lm {\n"
           "  input t : int[16]\n"
           "  target next : class(320)[16]\n"
           "  x = embed(t, vocab: 320, dim: 16) + position(16, dim: 16)\n"
           "  x = x + attention(layernorm(x)) { heads 2; causal }\n"
           "  logits = linear(layernorm(x), out: 320)\n"
           "  loss cross_entropy(logits, next)\n"
           "}\n"
           "train lm on d {\n  batch 8\n  steps 20\n  optimizer adam { lr 1e-2 }\n}\n",
           getcwd((char[4096]){0}, 4096));
  spec = tu_tmp("bpe.ra");
  cr_assert(tu_write_file(spec, text) == 0);
  ck = tu_tmp("bpe.safetensors");
  TuRun r = tu_sh(120, "$RAC run %s --quiet --set save=%s", spec, ck);
  cr_assert_eq(r.status, 0, "train: %d\n%s", r.status, r.err);
  tu_run_free(&r);
  dir = tu_tmp("");
}

Test(bpe_model, predicts_from_the_checkpoint_alone_in_valid_utf8, .init = train_bpe) {
  /* the spec without its data file: the merges come from the checkpoint */
  char alone[600];
  snprintf(alone, sizeof alone, "%snodata.ra", dir);
  TuRun r = tu_sh(30, "sed 's#text(\"[^\"]*\")#text(\"/nonexistent/corpus.txt\")#' %s > %s", spec, alone);
  cr_assert_eq(r.status, 0);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input 'the beginning' --tokens 300 --temperature 3 --seed 5",
            alone, ck);
  cr_assert_eq(r.status, 0, "predict: %d\n%s", r.status, r.err);
  cr_assert(strncmp(r.out, "the beginning", 13) == 0, "%s", r.out);
  cr_assert(strlen(r.out) > 40, "%s", r.out);
  /* sampled bytes that join into no character are U+FFFD, never raw */
  cr_assert(utf8_valid(r.out), "not valid UTF-8: %s", r.out);
  tu_run_free(&r);
  /* greedy continuation is deterministic */
  TuRun a = tu_sh(60, "$RAC predict %s --ckpt %s --input 'the' --tokens 20 --greedy", alone, ck);
  TuRun b = tu_sh(60, "$RAC predict %s --ckpt %s --input 'the' --tokens 20 --greedy", alone, ck);
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_str_eq(a.out, b.out);
  tu_run_free(&a);
  tu_run_free(&b);
  /* eval with the data encodes it with the checkpoint's merges */
  r = tu_sh(60, "$RAC eval %s --ckpt %s --split valid", spec, ck);
  cr_assert_eq(r.status, 0, "eval: %d\n%s", r.status, r.err);
  cr_assert(strstr(r.out, "valid:"), "%s", r.out);
  tu_run_free(&r);
}

/* A checkpoint with its metadata changed: rewritten through ckpt_write. */
static void rewrite_meta(const char *from, const char *to, const char *key, const char *value) {
  Ckpt *c = ckpt_read(ra_alloc_default(), from, err, sizeof err);
  cr_assert(c, "%s", err);
  CkptMeta meta[32];
  int n = 0;
  for (int i = 0; i < c->nmeta && n < 32; i++) {
    if (strcmp(c->meta[i].key, key) == 0) {
      if (value) meta[n++] = (CkptMeta){key, value};
    } else {
      meta[n++] = c->meta[i];
    }
  }
  cr_assert_eq(ckpt_write(to, c->t, c->n, meta, n, err, sizeof err), 0, "%s", err);
  ckpt_free(c);
}

Test(bpe_model, corrupt_merges_are_refused, .init = train_bpe) {
  const char *bad = tu_tmp("bad.safetensors");
  struct {
    const char *value, *want;
  } cases[] = {
      {"[[2,258]]", "metadata 'bpe_merges': merge 0 [2, 258] uses a token not made before it (ids 2 .. 257)"},
      {"[[1,3]]", "metadata 'bpe_merges': merge 0 [1, 3] uses a token not made before it"},
      {"[[2,3],[4]]", "metadata 'bpe_merges': entry 1 is not a pair of token ids"},
      {"{\"a\":1}", "metadata 'bpe_merges' is not a JSON array of [left, right] pairs"},
      {NULL, "metadata 'tokenizer' is bpe, but 'bpe_merges' is missing"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rewrite_meta(ck, bad, "bpe_merges", cases[i].value);
    TuRun r = tu_sh(60, "$RAC predict %s --ckpt %s --input 'the' --tokens 2", spec, bad);
    cr_assert_neq(r.status, 0, "case %zu accepted", i);
    cr_assert(strstr(r.err, cases[i].want), "case %zu: %s", i, r.err);
    tu_run_free(&r);
  }
}
