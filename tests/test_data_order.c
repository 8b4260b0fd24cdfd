/* test_data_order.c - the examples every loader gives, in order: for each
 * data set of the examples (data/ from `make data`) and of specs over
 * tests/data, a hash of the examples (inputs and targets), of the three
 * splits' example indices and of the shuffles of epochs 0 and 1, against
 * tests/golden/data_order.txt.  Recorded before the table and text
 * loaders read through a mapping: a reader that changed which example is
 * which, or which split or position one lands in, fails here.
 * RA_UPDATE_GOLDEN=1 rewrites the file (review the diff: it should not
 * change). */
#include <stdint.h>
#include <unistd.h>

#include "../base/sbuf.h"
#include "../compiler/clauses.h"
#include "testutil.h"
#include "../runtime/data/data.h"

typedef struct Fnv {
  uint64_t h;
} Fnv;

static void fnv(Fnv *f, const void *p, size_t n) {
  const unsigned char *u = p;
  for (size_t i = 0; i < n; i++) f->h = (f->h ^ u[i]) * 1099511628211ull;
}

static void fnv_idx(Fnv *f, const uint32_t *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    int64_t v = x[i];
    fnv(f, &v, sizeof v);
  }
}

static int64_t numel(const IrType *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dim[i];
  return n;
}

/* One line per data set of the spec text (named name). */
static void describe(const char *name, const char *path, const char *text, SBuf *out) {
  Arena arena;
  arena_init(&arena, ra_alloc_default());
  SrcSet src;
  DiagList diags;
  src_init(&src, &arena);
  diag_init(&diags, &arena, &src);
  int f = src_add(&src, path, text, strlen(text));
  cr_assert_geq(f, 0);
  CompileOptions none = {0};
  Program *p = sema_program(&arena, &src, &diags, f, &none);
  cr_assert(p && diags.nerrors == 0, "%s:\n%s", name, diag_render(&diags, 0));
  for (int i = 0; i < p->ndata; i++) {
    char err[512];
    DataSet *ds = data_load(ra_alloc_default(), &p->data[i], err, sizeof err);
    cr_assert(ds, "%s: %s", name, err);
    Fnv ex = {1469598103934665603ull}, sp = ex, sh = ex;
    /* every input of every example, then every target: the bytes of
     * in_data[0 ..] and tgt_data when a loader holds them, read through
     * data_example (the text loader reads them from the file) */
    static char one[1 << 16];
    for (int k = 0; k < ds->nin; k++) {
      size_t sz = (size_t)numel(&ds->in_type[k]) * 4;
      cr_assert(sz <= sizeof one);
      void *in[8] = {NULL};
      in[k] = one;
      for (int64_t e = 0; e < ds->n; e++) {
        data_example(ds, e, in, NULL);
        fnv(&ex, one, sz);
      }
    }
    if (ds->tgt_data || ds->text)
      for (int64_t e = 0; e < ds->n; e++) {
        data_example(ds, e, NULL, (int32_t *)one);
        fnv(&ex, one, (size_t)numel(&ds->tgt_type) * 4);
      }
    /* the indices' values as int64 (as they were recorded) */
    for (int s = 0; s < 3; s++) fnv_idx(&sp, ds->split_idx[s], ds->split_n[s]);
    DataOrder o;
    cr_assert(data_order_init(&o, ds, 0) == 0 && o.perm);
    for (int64_t e = 0; e < 2; e++) {
      data_shuffle(ds, 0, 1, e, &o);
      fnv_idx(&sh, o.perm, ds->split_n[0]);
    }
    sbuf_printf(out, "%s %s: %lld examples (%lld/%lld/%lld), vocab %lld, examples %016llx, splits %016llx, shuffles %016llx; first train examples",
                name, p->data[i].name, (long long)ds->n, (long long)ds->split_n[0],
                (long long)ds->split_n[1], (long long)ds->split_n[2], (long long)ds->vocab.n,
                (unsigned long long)ex.h, (unsigned long long)sp.h, (unsigned long long)sh.h);
    for (int64_t j = 0; j < 8 && j < ds->split_n[0]; j++)
      sbuf_printf(out, " %lld", (long long)ds->split_idx[0][o.perm[j]]);
    sbuf_printf(out, "\n");
    data_order_free(&o);
    data_free(ds);
  }
  arena_free(&arena);
}

static void spec_file(const char *path, SBuf *out) {
  cr_assert(access("data/corpus.txt", R_OK) == 0 && access("data/fortunes.tsv", R_OK) == 0 &&
                access("data/licenses.tsv", R_OK) == 0,
            "data/ is missing: run `make data` first");
  char *text = tu_read_file(path, NULL);
  cr_assert(text, "%s", path);
  describe(path, path, text, out);
  free(text);
}

Test(data_order, examples_splits_and_shuffles_are_as_recorded, .timeout = 300) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  SBuf out;
  sbuf_init(&out, &a);
  spec_file("examples/fortunes.ra", &out);
  spec_file("examples/licenses.ra", &out);
  spec_file("examples/charlm.ra", &out);
  spec_file("examples/charlm_bpe.ra", &out);
  spec_file("examples/reverse.ra", &out);
  describe("small.tsv", "t.ra",
           "data d = tsv(\"tests/data/small.tsv\") {\n"
           "  text column text tokenize words vocab 100 maxlen 8\n"
           "  features columns 2..3\n  label column label\n"
           "  split train 0.5 valid 0.25 test 0.25\n  seed 3\n}\n",
           &out);
  describe("quoted.csv", "t.ra",
           "data d = csv(\"tests/data/quoted.csv\") {\n"
           "  header\n  text column 2 tokenize chars maxlen 12\n  label column 1\n  split train 0.6 valid 0.2 test 0.2\n}\n",
           &out);
  describe("crlf.tsv", "t.ra",
           "data d = tsv(\"tests/data/crlf.tsv\") {\n"
           "  text column 1 maxlen 4\n  label column 0\n  split train 0.67 valid 0.33\n}\n",
           &out);
  describe("tiny.txt chars", "t.ra",
           "data d = text(\"tests/data/tiny.txt\") {\n  tokenize chars  window 4  vocab 40\n"
           "  split train 0.6 valid 0.2 test 0.2\n  seed 11\n}\n",
           &out);
  describe("tiny.txt words", "t.ra",
           "data d = text(\"tests/data/tiny.txt\") {\n  tokenize words  window 2\n"
           "  split train 0.5 valid 0.25 test 0.25\n}\n",
           &out);
  describe("bpe_corpus.txt", "t.ra",
           "data d = text(\"tests/data/bpe_corpus.txt\") {\n  tokenize bpe  window 8  vocab 300\n"
           "  split train 0.8 valid 0.1 test 0.1\n  seed 5\n}\n",
           &out);
  tu_golden("tests/golden/data_order.txt", sbuf_str(&out));
  arena_free(&a);
}
