/* test_diagnostics.c - the bad-input corpus and the good specs.
 *
 * Every tests/bad/NAME.ra is a mistake a new user might make.  Its first
 * line says where the error must be reported ("...; error at line N", or
 * "...; error in FILE" for an error inside a module it uses); the whole
 * rendered diagnostic output (no color) must match
 * tests/golden/diag/NAME.txt (RA_UPDATE_GOLDEN=1 rewrites them).  Every
 * tests/good/NAME.ra must check without errors or warnings.
 */
#include <dirent.h>

#include "../compiler/clauses.h"
#include "testutil.h"
#include <criterion/parameterized.h>

typedef struct Spec {
  char name[96];
} Spec;

static int cmp_spec(const void *a, const void *b) {
  return strcmp(((const Spec *)a)->name, ((const Spec *)b)->name);
}

/* The .ra files of a folder, sorted (at most cap). */
static size_t list_specs(const char *dir, Spec *out, size_t cap) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    size_t len = strlen(e->d_name);
    if (len < 4 || len >= sizeof out[0].name || strcmp(e->d_name + len - 3, ".ra") != 0) continue;
    memcpy(out[n].name, e->d_name, len - 3);
    out[n].name[len - 3] = 0;
    n++;
  }
  closedir(d);
  qsort(out, n, sizeof *out, cmp_spec);
  return n;
}

typedef struct Run {
  Arena arena;
  SrcSet src;
  DiagList diags;
  Program *p;
  char *text;
} Run;

static void run_check(Run *r, const char *path) {
  arena_init(&r->arena, ra_alloc_default());
  src_init(&r->src, &r->arena);
  diag_init(&r->diags, &r->arena, &r->src);
  size_t len = 0;
  r->text = tu_read_file(path, &len);
  cr_assert_not_null(r->text, "cannot read %s", path);
  int f = src_add(&r->src, path, r->text, len);
  cr_assert_geq(f, 0);
  CompileOptions opt = {.stdlib_dir = "stdlib"};
  r->p = sema_program(&r->arena, &r->src, &r->diags, f, &opt);
  cr_assert_not_null(r->p);
}

static void run_free(Run *r) {
  free(r->text);
  arena_free(&r->arena);
}

static Spec bad_specs[128];
static Spec good_specs[64];

ParameterizedTestParameters(diagnostics, bad) {
  size_t n = list_specs("tests/bad", bad_specs, 128);
  return cr_make_param_array(Spec, bad_specs, n);
}

ParameterizedTest(Spec *s, diagnostics, bad) {
  char path[256], golden[256];
  snprintf(path, sizeof path, "tests/bad/%s.ra", s->name);
  snprintf(golden, sizeof golden, "tests/golden/diag/%s.txt", s->name);
  Run r;
  run_check(&r, path);
  const char *out = diag_render(&r.diags, 0);
  cr_assert_not_null(out);
  cr_assert_gt(r.diags.nerrors, 0, "%s: no error reported", path);

  /* where the error must be */
  int want_line = 0;
  char want_file[128] = "";
  const char *at = strstr(r.text, "error at line ");
  const char *in = strstr(r.text, "error in ");
  const char *eol = strchr(r.text, '\n');
  if (at && (!eol || at < eol)) want_line = atoi(at + 14);
  else if (in && (!eol || in < eol)) sscanf(in + 9, "%127s", want_file);
  cr_assert(want_line > 0 || want_file[0], "%s: the first line must say where the error is", path);
  bool found = false;
  for (const Diag *g = r.diags.head; g && !found; g = g->next) {
    if (g->level != DIAG_ERROR || g->span.file < 0) continue;
    const char *fp = r.src.files[g->span.file].path;
    if (want_line > 0)
      found = g->span.file == 0 && g->span.line == want_line;
    else
      found = strlen(fp) >= strlen(want_file) &&
              strcmp(fp + strlen(fp) - strlen(want_file), want_file) == 0;
  }
  cr_assert(found, "%s: no error at %s%d:\n%s", path, want_file, want_line, out);
  tu_golden(golden, out);
  run_free(&r);
}

ParameterizedTestParameters(diagnostics, good) {
  size_t n = list_specs("tests/good", good_specs, 64);
  return cr_make_param_array(Spec, good_specs, n);
}

ParameterizedTest(Spec *s, diagnostics, good) {
  char path[256];
  snprintf(path, sizeof path, "tests/good/%s.ra", s->name);
  Run r;
  run_check(&r, path);
  const char *out = diag_render(&r.diags, 0);
  cr_assert_eq(r.diags.nerrors, 0, "%s:\n%s", path, out);
  cr_assert_null(r.diags.head, "%s: warnings:\n%s", path, out);
  cr_assert_gt(r.p->nfiles, 0);
  run_free(&r);
}

/* The corpus is big enough to mean something. */
Test(diagnostics, corpus_size) {
  cr_assert_geq(list_specs("tests/bad", bad_specs, 128), 35);
  cr_assert_geq(list_specs("tests/good", good_specs, 64), 3);
}

/* Every example checks clean too. */
Test(diagnostics, examples_check) {
  Spec ex[32];
  size_t n = list_specs("examples", ex, 32);
  cr_assert_gt(n, 0);
  for (size_t i = 0; i < n; i++) {
    char path[256];
    snprintf(path, sizeof path, "examples/%s.ra", ex[i].name);
    Run r;
    run_check(&r, path);
    cr_assert_eq(r.diags.nerrors, 0, "%s:\n%s", path, diag_render(&r.diags, 0));
    run_free(&r);
  }
}
