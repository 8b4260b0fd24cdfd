/* fuzz_frontend.c - libFuzzer target for the front end (lexer, parser,
 * AST dump, diagnostics rendering).
 *
 * Each input is parsed in a fresh arena which is freed afterwards, so any
 * leak, out-of-bounds access or undefined behaviour shows up under the
 * sanitizers.  fuzz_one is the whole harness: to fuzz more of the pipeline
 * (e.g. the checker), call it there.  Built by tests/fuzz/fuzz.mk, run by
 * tests/fuzz/run.sh.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../lang/ast.h"

static void fuzz_one(const uint8_t *data, size_t size) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  SrcSet s;
  src_init(&s, &a);
  DiagList d;
  diag_init(&d, &a, &s);
  int id = src_add(&s, "fuzz.ra", (const char *)data, size);
  if (id >= 0) {
    AstFile *f = ra_parse(&a, &s, id, &d);
    if (f) (void)ast_dump(&a, f);
    (void)diag_render(&d, 1);
  }
  arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size);
  return 0;
}
